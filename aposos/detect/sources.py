"""``detect``: background, matched filter, labelling, measurement and streak fitting of one frame.

Pipeline (each step a public function or kernel of this package):

1. :func:`~aposos.detect.background.background` -- box grids of background and noise.
2. :func:`~aposos.detect.significance.significance` -- PSF-matched significance map ``S``, the
   runs of ``S >= analysis_thresh``, each run's pixel sums and maximum of S, in one pass over
   the frame.
3. the runs' connected components (:mod:`aposos.detect.label`); only those that can be used
   are kept (:func:`~aposos.detect.measure.components_that_matter`: a peak at ``thresh``, or
   large enough to be oversized or a streak candidate), most noise peaks between the two
   thresholds are not.
4. :func:`~aposos.detect.measure.component_stats` -- isophotal statistics of each component,
   reduced from its runs' sums.
5. Components with a peak ``S >= thresh`` are objects. Elongated ones (significance-weighted
   moments) are streak candidates: collinear pieces are joined, walked out along S to the
   streak's ends, stars on them masked (a star's disk shrinks to its own light where it would
   hide an end), and a line segment is fitted (:mod:`aposos.detect.streaks`); a candidate is
   a streak if the fit is long, significant, PSF-wide and explains the signal (pairs of stars
   do not) and, if short (< 24 px), fits clearly better than two, three or four point sources.
   The rest are points, measured with a windowed centroid; blended components get one per
   major peak of S (light deblending), and the stars a streak's fit left out one each.

   Crowded sidereal fields: a short streak merged with stars of similar brightness makes a
   round, blended component whose moments say nothing of the streak. Ridges of S inside blended
   components (Hessian: one strong curvature, one near zero, flat ground) seed extra candidates;
   a candidate rejected on its own is refitted with the stars around it (round peaks of S, and
   peaks above the streak's own level) as free point sources; saturated pixels are left out.

Tracking modes: ``'sidereal'`` (stars are points, satellites streaks) and ``'rate'`` (stars are
trails of known angle and length, flagged ``STAR_TRAIL``; the target is a point). Both find
points and streaks; the mode sets which streaks are star trails and how the PSF width is
estimated (round stars or the across-track width of trails).
"""

from __future__ import annotations

import math

import numpy as np
from astropy import units as u
from astropy.table import Table
from scipy import ndimage
from scipy.spatial import cKDTree

from ..errors import AposError
from .measure import (COL, NSTAT, component_peaks, component_stats, components_that_matter,
                      group_runs, shape_from_moments, sharpness, windowed_centroids)
from .background import Background, background, padded_grid, patch
from .label import link_runs
from .psf import estimate_fwhm
from .significance import FWHM_PER_SIGMA, significance
from .workspace import kept
from .streaks import Line, StreakFit, fit_line, join_pieces

# Bits of the ``flags`` column.
SATURATED = 1      # contains pixels at or above the saturation level
EDGE = 2           # touches the frame edge (for streaks: an end lies at or beyond the edge)
BLENDED = 4        # more than one significant peak in the component
SHARP = 8          # sharper than the PSF allows: cosmic-ray hit or hot pixel
MASKED = 16        # contains non-finite (masked) pixels
MERGED = 32        # streak joined from several pieces
STAR_TRAIL = 64    # rate mode: streak with the expected star-trail angle and length
FIT_FAILED = 128   # streak fit did not converge (moment estimates reported)
FLAG_NAMES = {SATURATED: "saturated", EDGE: "edge", BLENDED: "blended", SHARP: "sharp",
              MASKED: "masked", MERGED: "merged", STAR_TRAIL: "star_trail",
              FIT_FAILED: "fit_failed"}

PSF_PERCENTILE = 90.0   # stars' S moments that a streak candidate must exceed (sidereal)
PAIR_TEST_MAX_PX = 24.0  # streaks shorter than this must beat a two-star model ...
PAIR_MARGIN_CHI2 = 25.0  # ... by this much chi^2 (5 sigma)
# ... and k point sources (3k parameters against the segment's 6) must not beat it by this
# much: beyond what noise gives the extra 3 or 6 parameters (chi^2_3 > 20 or chi^2_6 > 30:
# p ~ 2e-4, 4e-5); a real short streak is no sum of 3-4 stars (100 simulated ones, 8-24 px,
# SNR 12-30: differences >= -7 and >= -15; benchmarks/quality.py counts found short streaks
# and streaks on clumps)
CLUMP_MARGIN_CHI2 = {3: 20.0, 4: 30.0}
BESIDE_STAR_MIN_ELONGATION = 8.0  # a/b of what a component holds beyond its star's disk
PRE_FIT_SNR_FRACTION = 0.6  # short or joined candidates whose S along the line implies an SNR
                            # below this fraction of streak_min_snr are not fitted (noise, faint
                            # pairs, chains of faint star trails)
MASK_MAX_FWHM = 2.5  # largest disk masked around a star from a streak fit (FWHM)
CANDIDATE_LENGTH_FRACTION = 0.6  # streak candidates: S-moment length >= this x streak_min_length_px
OVERSIZED_STAR_AREAS = 4  # a component larger than this many lone-star areas holds more than a star
WALK_CORE_FRACTION = 0.3  # sidereal frames: a candidate's walk-out continues while S stays above
                          # this fraction of the S along its core (and above 2 sigma)

DEFAULTS = dict(
    thresh=5.0,                 # detection threshold: peak of S (matched-filter sigma)
    analysis_thresh=2.5,        # S level that delimits each object's pixels
    fwhm_px=None,               # PSF FWHM (px); None: estimated from the frame
    fwhm_guess_px=2.5,          # starting value of the estimate
    box_px=64,                  # background box size (px)
    bkg_nsigma=3.0,             # background clipping (sigma)
    gain_e_per_adu=None,        # adds the source photon noise to errors when given
    saturation_adu=None,        # None: the image maximum if several pixels sit at it
    minarea=3,                  # minimum pixels above analysis_thresh
    streak_min_length_px=8.0,   # shortest reported streak (fitted length)
    streak_min_elongation=1.8,  # a/b of the S-weighted moments of a streak candidate
    streak_min_snr=10.0,        # fitted flux / its error for a streak
    streak_max_excess=0.1,      # unexplained signal fraction of the line fit (plus noise)
    streak_max_excess_long=0.5,  # the same for streaks >= 40 px (real ones vary along track)
    merge_gap_px=30.0,          # largest gap along a streak joined into one
    star_angle_deg=None,        # rate mode: expected star-trail angle (deg, from +x to +y)
    star_length_px=None,        # rate mode: expected star-trail length (px)
    blend_fraction=0.1,         # secondary peaks above this fraction of the peak S blend
    sharp_margin=0.2,           # sharpness above the PSF's by this much flags SHARP
)

COLUMNS = {  # name: (unit, description)
    "x": (u.pix, "column of the centroid (0-based; windowed for points, fitted centre for streaks)"),
    "y": (u.pix, "row of the centroid (0-based)"),
    "x_err": (u.pix, "1-sigma error of x"),
    "y_err": (u.pix, "1-sigma error of y"),
    "flux": (u.adu, "flux above background: PSF-weighted for points, fitted total for streaks"),
    "flux_err": (u.adu, "1-sigma error of flux (for streaks: with the fitted geometry fixed)"),
    "snr": (None, "flux / flux_err"),
    "sig": (None, "peak of the matched-filter significance map S (sigma)"),
    "peak": (u.adu, "highest background-subtracted pixel"),
    "area": (u.pix**2, "pixels above the analysis threshold"),
    "a": (u.pix, "rms along the major axis (isophotal second moments)"),
    "b": (u.pix, "rms along the minor axis"),
    "theta_deg": (u.deg, "major-axis angle from +x toward +y, (-90, 90]"),
    "elongation": (None, "a / b"),
    "kind": (None, "'point' or 'streak'"),
    "flags": (None, "bit mask: " + ", ".join(f"{b}={n}" for b, n in FLAG_NAMES.items())),
    "angle_deg": (u.deg, "streak direction from +x toward +y, (-90, 90]; NaN for points"),
    "length_px": (u.pix, "streak length between its end points; NaN for points"),
    "width_px": (u.pix, "streak Gaussian width across the track (sigma); NaN for points"),
    "x0": (u.pix, "streak end 0 column (the end with smaller projection on the angle)"),
    "y0": (u.pix, "streak end 0 row"),
    "x1": (u.pix, "streak end 1 column"),
    "y1": (u.pix, "streak end 1 row"),
    "end_sigma_px": (u.pix, "1-sigma of the end points along the streak (larger of the two)"),
    "npieces": (None, "streak: number of detected pieces joined (0 for points)"),
    "fit_excess": (None, "streak fit: (chi^2 - n) / sum (model/sigma)^2, the fraction of the "
                         "signal power the line model leaves unexplained; NaN for points"),
}


def _config(mode: str, config: dict) -> dict:
    if mode not in ("sidereal", "rate"):
        raise AposError(f"mode must be 'sidereal' or 'rate', got {mode!r}", key="mode")
    unknown = set(config) - set(DEFAULTS)
    if unknown:
        raise AposError(f"unknown detect option(s) {sorted(unknown)}; known: {sorted(DEFAULTS)}",
                        key=sorted(unknown)[0])
    cfg = {**DEFAULTS, **config}
    for key in ("thresh", "analysis_thresh", "box_px", "minarea", "streak_min_length_px"):
        if not (np.isscalar(cfg[key]) and np.isfinite(cfg[key]) and cfg[key] > 0):
            raise AposError(f"must be a positive number, got {cfg[key]!r}", key=key)
    if cfg["analysis_thresh"] > cfg["thresh"]:
        raise AposError("must not exceed thresh", key="analysis_thresh")
    fwhm = cfg["fwhm_px"]
    if fwhm is not None and not (np.isfinite(fwhm) and 0.5 <= fwhm <= 50):
        raise AposError(f"FWHM must be 0.5 .. 50 px, got {fwhm!r}", key="fwhm_px")
    return cfg


def as_image(image) -> np.ndarray:
    """The image as a C-contiguous float32 2-D array, or AposError for what cannot be one."""
    arr = np.asarray(image)
    if arr.dtype.kind not in "fiu":
        raise AposError(f"image must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise AposError(f"image must be 2-D [y, x], got {arr.ndim} dimensions, shape {arr.shape}")
    if min(arr.shape) < 8:
        raise AposError(f"image too small for detection: shape {arr.shape} (need >= 8 x 8)")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _max_and_count(image, enough: int = 3):
    """(maximum over the non-NaN pixels, number of pixels equal to it): exact below
    ``enough``, at least ``enough`` otherwise (all a saturation test needs).

    Row maxima (numpy's vectorised reduction; rows holding NaN again without them), then the
    count over the first ``enough`` rows that reach the maximum.
    """
    rmax = image.max(axis=1).astype(float)
    for y in np.flatnonzero(np.isnan(rmax)):
        finite = image[y][~np.isnan(image[y])]
        rmax[y] = finite.max() if len(finite) else -np.inf
    m = rmax.max()
    rows = np.flatnonzero(rmax == m)[:enough]
    return m, int(np.count_nonzero(image[rows] == m))


def saturation_level(image, bkg: Background, given) -> float:
    """The saturation level: as given, else the image maximum if >= 3 pixels sit at it."""
    if given is not None:
        return float(given)
    m, count = _max_and_count(image, 3)
    if count >= 3 and m > bkg.global_back + 20 * max(bkg.global_rms, 1e-30):
        return float(m)
    return math.inf


class _Pass:
    """One pass of S map, runs, components and their statistics at a given FWHM.

    The map and the runs are the thread's kept arrays (:mod:`~aposos.detect.workspace`): a pass
    is valid until the next one in the same thread.
    """

    def __init__(self, image, bkg, fwhm, cfg, saturation):
        self.fwhm = fwhm
        self.sigma = fwhm / FWHM_PER_SIGMA
        gain = cfg["gain_e_per_adu"]
        self.sig, runs, (table, sum_rows), rsmax, nonfinite = significance(
            image, bkg, fwhm, cfg["analysis_thresh"], saturation=saturation,
            inv_gain=0.0 if gain is None else 1.0 / gain, peak_thresh=cfg["thresh"], reuse=True)
        self.n_nonfinite = int(nonfinite.sum())
        comp, ncomp = link_runs(*runs, 8)
        # only the components that can be used (_size_to_matter) are measured
        kept_runs, comp, ncomp = components_that_matter(
            *runs, rsmax, comp, ncomp, cfg["thresh"], *_size_to_matter(cfg, self.sigma))
        self.ry, self.rx0, self.rx1 = (r[kept_runs] for r in runs)
        self.order, self.offsets = group_runs(comp, ncomp)
        self.stats = component_stats(table, sum_rows[kept_runs], self.ry, self.rx0, self.rx1,
                                     comp, self.order, self.offsets, self.sig, image.shape,
                                     cfg["thresh"], cfg["blend_fraction"],
                                     kept("stats", (ncomp, NSTAT), float))

    def col(self, name):
        return self.stats[:, COL[name]]


def detect(image, mode: str = "sidereal", **config) -> Table:
    """Detect and measure point sources and streaks in one frame.

    Parameters
    ----------
    image : 2-D array [y, x]
        Bias-subtracted (and ideally flat-fielded) pixels in ADU; any real dtype (converted to
        float32). NaN/inf pixels are masked: treated as background, counted in
        ``meta['n_nonfinite']`` and flagged ``MASKED`` on objects that contain them.
    mode : {'sidereal', 'rate'}
        Tracking mode of the exposure.
    **config
        Options, see ``DEFAULTS`` in this module (thresholds in sigma of the matched-filter map,
        lengths in px, ``star_angle_deg``/``star_length_px`` for rate mode).

    Returns
    -------
    Sources : astropy Table
        One row per object, columns as in ``COLUMNS`` (units attached, descriptions set),
        sorted by decreasing ``sig``. ``meta`` holds ``shape``, ``mode``, ``fwhm_px``,
        ``background`` and ``rms`` (global medians, ADU), ``background_grid``/``rms_grid``
        (box grids), ``saturation_adu``, ``n_nonfinite``, ``thresh`` and ``flag_bits``.

    Raises
    ------
    AposError
        For input that cannot be an image (dtype, dimensionality, size, options, no finite
        pixel). A constant image gives an empty table.
    """
    cfg = _config(mode, config)
    img = as_image(image)
    bkg = background(img, box_px=cfg["box_px"], nsigma=cfg["bkg_nsigma"])
    meta = {"shape": img.shape, "mode": mode, "background": bkg.global_back,
            "rms": bkg.global_rms, "background_grid": bkg.back_grid, "rms_grid": bkg.rms_grid,
            "thresh": cfg["thresh"], "flag_bits": {n: b for b, n in FLAG_NAMES.items()}}
    if not bkg.global_rms > 0:
        meta.update(fwhm_px=cfg["fwhm_px"], saturation_adu=None, n_nonfinite=0,
                    note="constant image: no noise, no sources")
        return _table([], {}, meta)
    saturation = saturation_level(img, bkg, cfg["saturation_adu"])
    fwhm = cfg["fwhm_px"] if cfg["fwhm_px"] is not None else cfg["fwhm_guess_px"]
    p = _Pass(img, bkg, fwhm, cfg, saturation)
    if cfg["fwhm_px"] is None:
        est = _estimate_fwhm(img, bkg, p, cfg, mode)
        if est is not None and abs(est / fwhm - 1) > 0.15:
            p = _Pass(img, bkg, est, cfg, saturation)
        elif est is not None:
            p.fwhm, p.sigma = est, est / FWHM_PER_SIGMA
    meta.update(fwhm_px=p.fwhm, saturation_adu=None if math.isinf(saturation) else saturation,
                n_nonfinite=p.n_nonfinite)
    streaks, points = _objects(img, bkg, p, cfg, mode, saturation)
    return _table(streaks, points, meta)


def _estimate_fwhm(img, bkg, p: _Pass, cfg, mode):
    good = ((p.col("smax") >= 20) & (p.col("nsat") == 0) & (p.col("npeaks") <= 1)
            & (p.col("edge") == 0) & (p.col("nbad") == 0))
    idx = np.flatnonzero(good)
    idx = idx[np.argsort(-p.col("smax")[idx])][:25]
    half = int(max(8, math.ceil(3 * p.fwhm)))
    stamps, centres = [], []
    ny, nx = img.shape
    for i in idx:
        xc, yc = int(p.col("xs")[i]), int(p.col("ys")[i])
        y0, y1, x0, x1 = max(0, yc - half), min(ny, yc + half + 1), max(0, xc - half), min(nx, xc + half + 1)
        stamps.append(img[y0:y1, x0:x1] - patch(bkg, bkg.back_grid, y0, y1, x0, x1))
        centres.append((xc - x0, yc - y0))
    return estimate_fwhm(stamps, centres, p.sigma, trailed=(mode == "rate"))


def _psf_sharpness(sigma: float) -> float:
    """Sharpness (peak - mean of 8 neighbours) / peak of a pixel-centred pixel-integrated PSF."""
    from scipy.special import erf
    edges = np.array([-1.5, -0.5, 0.5, 1.5])
    c = np.diff(0.5 * (1 + erf(edges / (math.sqrt(2) * sigma))))
    psf = np.outer(c, c)
    return float((psf[1, 1] - (psf.sum() - psf[1, 1]) / 8) / psf[1, 1])


def _objects(img, bkg, p: _Pass, cfg, mode, saturation):
    """Objects of a pass: (streak rows as dicts, point sources as a dict of column arrays)."""
    stats, col = p.stats, p.col
    ky, wy, kx, wx = bkg.weights()
    bgrid, rgrid = padded_grid(bkg.back_grid), padded_grid(bkg.rms_grid)
    n = len(stats)
    keep = col("npix") >= cfg["minarea"]
    a_s, b_s, th_s = shape_from_moments(col("ssxx"), col("ssyy"), col("ssxy"))
    a, b, theta = shape_from_moments(col("sxx"), col("syy"), col("sxy"))
    sharp = sharpness(img, bgrid, ky, wy, kx, wx, col("xpk").astype(np.int64),
                         col("ypk").astype(np.int64)) if n else np.zeros(0)
    sharp_err = 3 * math.sqrt(1 + 1 / 8) * bkg.global_rms / np.maximum(col("peak"), 1e-30)
    is_sharp = sharp > _psf_sharpness(p.sigma) + np.maximum(cfg["sharp_margin"], sharp_err)
    flags = np.zeros(n, np.int64)
    flags |= np.where(col("nsat") > 0, SATURATED, 0)
    flags |= np.where(col("edge") > 0, EDGE, 0)
    flags |= np.where(col("npeaks") > 1, BLENDED, 0)
    flags |= np.where(is_sharp, SHARP, 0)
    flags |= np.where(col("nbad") > 0, MASKED, 0)
    # streak candidates: long and elongated in S, not a saturated column (bleed) nor sharp
    len_s = np.sqrt(12 * np.clip(a_s**2 - 2 * p.sigma**2, 0, None))
    bleed = (col("nsat") > 0) & (np.abs(th_s) > 70)
    cand = (keep & (len_s >= CANDIDATE_LENGTH_FRACTION * cfg["streak_min_length_px"])
            & (a_s >= cfg["streak_min_elongation"] * np.maximum(b_s, 1e-9)) & ~bleed & ~is_sharp)
    idx = np.flatnonzero(cand)
    len_s[idx] = np.sqrt(12 * np.clip(a_s[idx]**2 - _psf_variance_along(
        col, keep, is_sharp, th_s[idx], p.sigma, mode), 0, None))
    cand[idx] = len_s[idx] >= CANDIDATE_LENGTH_FRACTION * cfg["streak_min_length_px"]
    lines = [Line(col("ssx")[i], col("ssy")[i], math.radians(th_s[i]), max(len_s[i], 1.0), [i])
             for i in np.flatnonzero(cand)]
    # a blended component that dips between its peaks is a star pair or chain, not a streak
    # (a streak merged with stars is still seeded from its ridge, below)
    # (sidereal frames: in rate-tracked ones blended components are mostly crossing star trails)
    # and one whose major peaks are all round is a pair or group of stars
    lines = [ln for ln in lines if mode != "sidereal" or col("npeaks")[ln.members[0]] <= 1
             or (_flat_profile(p.sig, ln.xc, ln.yc, ln.phi, ln.length, max_length_px=np.inf)
                 and not _round_peaks_only(p, ln.members[0], cfg))]
    if mode == "sidereal":  # streaks merged with stars (crowded fields): seeds on ridges of S
        oversized = keep & (col("npix") > OVERSIZED_STAR_AREAS * _star_area(col("smax"), p.sigma,
                                                                           cfg))
        blended = np.flatnonzero(keep & ((col("npeaks") > 1) | oversized))
        seeds = _ridge_seeds(p.sig, stats, blended, p.sigma, cfg["streak_min_snr"], img,
                             saturation)
        # and, with the star's own disk left out, lines through the rest of the component
        lines += _lines_beside_star(p, np.flatnonzero(oversized), cfg)
    else:
        seeds = []
    # seeds are joined among themselves: a short seed would join any long line it touches
    groups = join_pieces(lines, max_gap_px=cfg["merge_gap_px"], max_offset_px=2 * p.sigma + 2)
    seed_groups = join_pieces(seeds, max_gap_px=2 * FWHM_PER_SIGMA * p.sigma,
                              max_offset_px=2 * p.sigma + 2)
    gain_inv = 0.0 if cfg["gain_e_per_adu"] is None else 1.0 / cfg["gain_e_per_adu"]

    def points_of(idx, stars_in=((), (), ())):
        """Windowed centroids: one per component, one per major peak of blended components, one
        per star beside a much brighter one (:func:`_minor_stars`), one per star at (x, y) in
        component k of ``stars_in`` (x, y, k)."""
        blended = idx[col("npeaks")[idx] > 1]
        px, py, pk = component_peaks(p.sig, p.ry, p.rx0, p.rx1, p.order, p.offsets, blended,
                                     np.maximum(cfg["thresh"], cfg["blend_fraction"] * col("smax")[blended]))
        single = idx[col("npeaks")[idx] <= 1]
        mx, my, mk = _minor_stars(p, idx, cfg)
        sx, sy, sk = (np.asarray(v) for v in stars_in)
        comp = np.concatenate([single, blended[pk], mk, sk]).astype(np.int64)
        extra = np.concatenate([np.zeros(len(single) + len(pk), np.int64),
                                np.full(len(mk) + len(sk), BLENDED)])
        x0 = np.concatenate([col("sx")[single], px.astype(float), mx.astype(float), sx])
        y0 = np.concatenate([col("sy")[single], py.astype(float), my.astype(float), sy])
        x, y, xe, ye, f, fe, _ = windowed_centroids(img, bgrid, rgrid, ky, wy, kx, wx, x0, y0,
                                                    p.sigma, gain_inv, 30, 1e-4)
        bad = ~np.isfinite(x) | ~np.isfinite(y)
        x, y = np.where(bad, x0, x), np.where(bad, y0, y)
        keep = _distinct(x, y, comp)
        return (comp[keep], x[keep], y[keep], xe[keep], ye[keep], f[keep], fe[keep],
                extra[keep])

    def accept(g, members, avoid, stars):
        """(fit, row) of a candidate's streak fit if it is accepted, else None."""
        fit = _fit_group(img, bkg, g, p.sigma, cfg, avoid, stars, saturation)
        row = _streak_row(fit, members, g.npieces, stats, flags, a, b, theta, img.shape, p.sigma, cfg)
        if row is None:
            return None
        xc, yc, phi, length = fit.params[:4]
        on = _saturated_on(img, saturation, xc, yc, phi, length, p.sigma)
        if on and length < 40:
            return None
        row["flags"] = (row["flags"] & ~SATURATED) | (SATURATED if on else 0)
        if not _uniform_along(p.sig, fit, bkg.global_rms):
            return None
        return fit, row

    def fit_and_accept(g, avoid):
        # first: a piece of a long streak is not a short candidate (rate-tracked frames: star
        # trails, the astrometric references, walk out to 2 sigma as they always did)
        g = _extended(p.sig, g, of_core=WALK_CORE_FRACTION if mode == "sidereal" else 0.0)
        if not _flat_profile(p.sig, g.xc, g.yc, g.phi, g.length):
            return None
        if ((g.length < PAIR_TEST_MAX_PX or g.npieces > 1) and _snr_along(p.sig, g, p.sigma)
                < PRE_FIT_SNR_FRACTION * cfg["streak_min_snr"]):
            return None  # too faint to be a reportable streak: not worth a fit
        members = list(g.members)
        if g.length < 40 and _saturated_on(img, saturation, g.xc, g.yc, g.phi, g.length, p.sigma):
            return None  # a short saturated object is a star (pair), not a streak
        peaks = _bright_peaks(p.sig, g.xc, g.yc, g.phi, g.length, p.sigma)
        if len(peaks):  # stars joined to the streak: mask them
            avoid = peaks if avoid is None or not len(avoid) else np.concatenate([avoid, peaks])
        res = accept(g, members, avoid, None)
        if res is None:  # crowded fields: stars on or beside the streak, fitted with it
            stars = _star_peaks(p.sig, g.xc, g.yc, g.phi, g.length, p.sigma, cfg["thresh"], avoid)
            if len(stars):
                res = accept(g, members, avoid, stars)
        if res is None:
            return None
        fit, row = res
        row["fit_excess"] = fit.excess
        return fit, row, members

    # 1. streaks, fitted once without knowledge of the stars
    streaks = [r for r in (fit_and_accept(g, None) for g in groups) if r is not None]
    for g in seed_groups:  # ridges not on a streak found already
        if not any(_on_segment(g.xc, g.yc, fit.params, p.sigma) for fit, _, _ in streaks):
            r = fit_and_accept(g, None)
            if r is not None:
                streaks.append(r)
    used = np.zeros(n, bool)
    for _, _, members in streaks:
        used[members] = True
    # 2. points (everything else above the detection threshold)
    pts = np.flatnonzero(keep & ~used & (col("smax") >= cfg["thresh"]))
    pts, x, y, xe, ye, f, fe, extra_flags = points_of(pts)
    # 3. refit streaks with the bright stars on them masked, then join collinear streaks
    streaks = _refit_masked(streaks, x, y, f, p, bkg.global_rms, fit_and_accept)
    trail = _star_trail_shape([row for _, row, _ in streaks], cfg, mode)
    streaks = _join_fitted(streaks, cfg, p, bkg.global_rms, fit_and_accept, x, y, f,
                           lambda row: trail is not None and _is_star_trail(row, *trail))
    streaks = _without_pieces(streaks, p.sigma)
    rows = [row for _, row, _ in streaks]
    _flag_star_trails(rows, cfg, mode)
    on_streak = _on_streaks(x, y, f, [(fit, row) for fit, row, _ in streaks], p.sigma)
    # 4. stars joined to a streak's component (left out of its fit) are points of their own
    seen = cKDTree(np.column_stack([x, y])) if len(x) else None
    more = points_of(np.zeros(0, np.int64), _stars_in_streaks(p, streaks, seen))
    if len(more[0]):
        pts, x, y, xe, ye, f, fe, extra_flags = (np.concatenate([a, b]) for a, b in
                                                 zip((pts, x, y, xe, ye, f, fe, extra_flags), more))
        on_streak = np.concatenate([on_streak, np.zeros(len(more[0]), bool)])
    k, i = np.flatnonzero(~on_streak), pts[~on_streak]
    with np.errstate(divide="ignore", invalid="ignore"):
        points = dict(
            x=x[k], y=y[k], x_err=xe[k], y_err=ye[k], flux=f[k], flux_err=fe[k],
            snr=np.where(fe[k] > 0, f[k] / fe[k], np.nan), sig=col("smax")[i],
            peak=col("peak")[i], area=col("npix")[i], a=a[i], b=b[i], theta_deg=theta[i],
            elongation=np.where(b[i] > 0, a[i] / b[i], np.inf), flags=flags[i] | extra_flags[k])
    return rows, points


def _star_radius(smax, sigma, cfg):
    """Radius (px) out to which a lone star whose S peaks at ``smax`` stays above
    ``analysis_thresh``: S of a Gaussian PSF of ``sigma`` px is a Gaussian of ``sqrt(2) sigma``."""
    ratio = np.maximum(smax / cfg["analysis_thresh"], 1.0)
    return math.sqrt(2) * sigma * np.sqrt(2 * np.log(ratio))


def _star_area(smax, sigma, cfg):
    """Pixels (px^2) of a lone star's component (its disk, plus a pixel's margin around it):
    a component much larger holds more than the star (a streak through a bright star does not
    make a second peak)."""
    return math.pi * _star_radius(smax, sigma, cfg) ** 2 + 9.0


def _size_to_matter(cfg, sigma):
    """(npix_min, extent_min_px): a component whose S stays below ``thresh`` is measured only if
    it holds at least ``npix_min`` pixels or its bounding box's diagonal (between pixel
    centres) is at least ``extent_min_px``: no other can be used by :func:`_objects`.

    Such a component is no point source (its S peaks below ``thresh``), not blended (no peak
    at ``thresh``), not oversized (``OVERSIZED_STAR_AREAS`` star areas, :func:`_star_area`,
    are at least those of a star at the analysis threshold) and no streak candidate: a
    candidate's S-weighted rms along its axis is at least ``sqrt((f L)^2 / 12 + 2 sigma^2)``
    (``f = CANDIDATE_LENGTH_FRACTION``, ``L = streak_min_length_px``), and no distribution on
    a segment of length D has an rms above D / 2. ``sigma`` is taken 1.2 times smaller: the
    pass's FWHM may be refined by up to 15 % after it.
    """
    npix_min = int(OVERSIZED_STAR_AREAS * _star_area(cfg["analysis_thresh"], sigma, cfg)) + 1
    length = CANDIDATE_LENGTH_FRACTION * cfg["streak_min_length_px"]
    return npix_min, 2 * math.sqrt(length**2 / 12 + 2 * (sigma / 1.2) ** 2)


def _component_pixels(p: _Pass, c: int):
    """(x, y) int arrays of the pixels of component ``c``."""
    runs = p.order[p.offsets[c]:p.offsets[c + 1]]
    counts = p.rx1[runs] - p.rx0[runs] + 1
    first = np.cumsum(counts) - counts  # index of each run's first pixel
    xs = np.repeat(p.rx0[runs], counts) + np.arange(counts.sum()) - np.repeat(first, counts)
    return xs, np.repeat(p.ry[runs], counts)


def _lines_beside_star(p: _Pass, comps, cfg) -> list:
    """Candidate lines from components far larger than a lone star of their peak, the pixels
    of that star left out (its disk, out to where its S falls to ``analysis_thresh``).

    A streak through a bright star makes one component with a single peak whose moments are
    the star's: the candidate from them is centred on the star and points a few degrees off,
    so the walk-out misses the streak. The S-weighted moments of what lies beyond the star's
    disk (pieces of the streak on either side, collinear) give its line, if they are as
    elongated as a streak of ~40 px or more (``BESIDE_STAR_MIN_ELONGATION``): the halos and
    neighbours of bright stars in crowded real fields leave less elongated remainders.
    """
    out = []
    for c in comps:
        xs, ys = _component_pixels(p, c)
        radius = _star_radius(p.col("smax")[c], p.sigma, cfg) + 1
        rest = np.hypot(xs - p.col("xpk")[c], ys - p.col("ypk")[c]) > radius
        if rest.sum() < cfg["minarea"]:
            continue
        x, y, w = xs[rest], ys[rest], p.sig[ys[rest], xs[rest]].astype(float)
        xm, ym = np.average(x, weights=w), np.average(y, weights=w)
        a, b, theta = shape_from_moments(*(np.array([np.average(d, weights=w)]) for d in
                                           ((x - xm) ** 2, (y - ym) ** 2, (x - xm) * (y - ym))))
        if a[0] < BESIDE_STAR_MIN_ELONGATION * max(b[0], 1e-9):
            continue
        length = math.sqrt(12 * max(a[0] ** 2 - 2 * p.sigma**2, 0.0))
        if length >= CANDIDATE_LENGTH_FRACTION * cfg["streak_min_length_px"]:
            out.append(Line(xm, ym, math.radians(theta[0]), length, [int(c)]))
    return out


def _psf_variance_along(col, keep, is_sharp, theta_deg, sigma, mode):
    """Second moment of S (px^2) that the PSF alone gives along directions ``theta_deg``.

    At least ``2 sigma^2`` (a Gaussian PSF of sigma px, matched-filtered). In sidereal frames,
    the ``PSF_PERCENTILE`` percentile of the moments of bright, unsaturated, isolated stars
    (>= 10 of them) along each direction: an elongated PSF (coma, wind shake, guiding) makes every star a
    short "streak" otherwise. Rate-tracked frames keep ``2 sigma^2``: their stars are trails.
    """
    floor = 2 * sigma**2
    ref = (keep & (col("smax") >= 20) & (col("nsat") == 0) & (col("npeaks") <= 1)
           & (col("edge") == 0) & (col("nbad") == 0) & ~is_sharp)
    if mode != "sidereal" or ref.sum() < 10 or not len(theta_deg):
        return np.full(len(theta_deg), floor)
    ref = np.flatnonzero(ref)
    ref = ref[np.linspace(0, len(ref) - 1, min(len(ref), 256)).astype(int)]  # enough for a percentile
    mxx, myy, mxy = (col(k)[ref][None, :] for k in ("ssxx", "ssyy", "ssxy"))
    c, s = (f(np.radians(theta_deg))[:, None] for f in (np.cos, np.sin))
    along = np.percentile(mxx * c * c + myy * s * s + 2 * mxy * c * s, PSF_PERCENTILE, axis=1)
    return np.maximum(floor, along)


def _minor_stars(p: _Pass, comps, cfg):
    """(x, y, component) of stars joined to a much brighter one: peaks of S below the
    component's blending level (``blend_fraction`` of its maximum) but at or above ``thresh``,
    round and sharply curved (both curvatures of S >= 1.5 per px^2, the smaller >= half the
    larger: far above what the smooth wings and halo of the bright star give), in components
    larger than the bright star alone would make (:func:`_star_area`)."""
    big = comps[p.col("npix")[comps] > _star_area(p.col("smax")[comps], p.sigma, cfg)]
    px, py, k = component_peaks(p.sig, p.ry, p.rx0, p.rx1, p.order, p.offsets, big,
                                np.full(len(big), float(cfg["thresh"])))
    minor = p.sig[py, px] < cfg["blend_fraction"] * p.col("smax")[big[k]]
    small, large = _curvatures(p.sig, px, py)
    keep = minor & (small >= 0.5 * large) & (small >= 1.5)
    return px[keep], py[keep], big[k[keep]]


def _round_peaks_only(p: _Pass, comp: int, cfg) -> bool:
    """True if every major peak of a blended component (S >= max(thresh, blend_fraction x its
    maximum)) is round: both curvatures of S large (the smaller >= half the larger and >= 1.5
    per px^2, far above what the noise gives along a streak's ridge). A streak's own peaks lie
    on its ridge, flat along it."""
    level = max(cfg["thresh"], cfg["blend_fraction"] * p.col("smax")[comp])
    px, py, _ = component_peaks(p.sig, p.ry, p.rx0, p.rx1, p.order, p.offsets,
                                np.array([comp]), np.array([level]))
    small, large = _curvatures(p.sig, px, py)
    return len(px) >= 2 and bool(np.all((small >= 0.5 * large) & (small >= 1.5)))


def _hessians(sig, px, py):
    """Hessian (hxx, hyy, hxy) of S at integer pixels, finite differences over +-2 px (edges
    clamped)."""
    ny, nx = sig.shape
    xm, xp = np.clip(px - 2, 0, nx - 1), np.clip(px + 2, 0, nx - 1)
    ym, yp = np.clip(py - 2, 0, ny - 1), np.clip(py + 2, 0, ny - 1)
    s0 = sig[py, px].astype(float)
    hxx = (sig[py, xp] + sig[py, xm] - 2 * s0) / 4
    hyy = (sig[yp, px] + sig[ym, px] - 2 * s0) / 4
    hxy = (sig[yp, xp].astype(float) - sig[yp, xm] - sig[ym, xp] + sig[ym, xm]) / 16
    return hxx, hyy, hxy


def _curvatures(sig, px, py):
    """Smaller and larger |eigenvalue| of the Hessian of S at peaks (S / px^2): both large for
    a star, the smaller near zero on a streak's ridge."""
    hxx, hyy, hxy = _hessians(sig, px, py)
    tr, det = hxx + hyy, hxx * hyy - hxy**2
    disc = np.sqrt(np.clip(0.25 * tr**2 - det, 0, None))
    l1, l2 = np.abs(0.5 * tr - disc), np.abs(0.5 * tr + disc)
    return np.minimum(l1, l2), np.maximum(l1, l2)


def _without_pieces(streaks, sigma):
    """Streaks without those centred on a longer one: a seed fitted on a piece of a streak, or
    across it (a ridge seed at a star on a bright streak). Two real streaks crossing at their
    centres would lose the shorter one."""
    order = sorted(range(len(streaks)), key=lambda k: -streaks[k][0].params[3])
    kept = []
    for k in order:
        xc, yc = streaks[k][0].params[:2]
        if not any(_on_segment(xc, yc, longer[0].params, sigma) for longer in kept):
            kept.append(streaks[k])
    return kept


def _on_segment(x, y, params, sigma) -> bool:
    """True if (x, y) lies on the band (2 sigma + 2 px) of a fitted segment, ends included."""
    xc, yc, phi, length = params[:4]
    u = (x - xc) * math.cos(phi) + (y - yc) * math.sin(phi)
    v = -(x - xc) * math.sin(phi) + (y - yc) * math.cos(phi)
    return abs(v) <= 2 * sigma + 2 and abs(u) <= 0.5 * length + 2 * sigma + 2


def _saturated_on(img, saturation, xc, yc, phi, length, sigma) -> bool:
    """True if a pixel at or above ``saturation`` lies on the segment's band (2 sigma + 1 px
    across, to its ends): saturation breaks the line model, and a short saturated object is a
    star (pair), not a streak. Saturated stars beside a streak do not count."""
    if not math.isfinite(saturation):
        return False
    band = 2 * sigma + 1
    half = 0.5 * length
    c, s = math.cos(phi), math.sin(phi)
    ny, nx = img.shape
    x0 = max(0, int(xc - half * abs(c) - band * abs(s)) - 1)
    x1 = min(nx, int(xc + half * abs(c) + band * abs(s)) + 2)
    y0 = max(0, int(yc - half * abs(s) - band * abs(c)) - 1)
    y1 = min(ny, int(yc + half * abs(s) + band * abs(c)) + 2)
    yy, xx = np.nonzero(img[y0:y1, x0:x1] >= saturation)
    if not len(yy):
        return False
    xx, yy = xx + x0 - xc, yy + y0 - yc
    return bool(np.any((np.abs(-xx * s + yy * c) <= band) & (np.abs(xx * c + yy * s) <= half)))


def _ridge_seeds(sig, stats, comps, sigma, level, img, saturation, max_ratio=0.25,
                 min_pixels=3):
    """Short lines along ridges of S in components ``comps``: streaks merged with stars.

    A ridge pixel of S (>= ``level``) has one strong negative curvature (across the streak)
    and a near-zero one (along it, below ``max_ratio`` of the other), and lies within 1 px of
    the ridge line and of flat ground along it (|grad S| <= |curvature across| x 1 px): the
    flank of a round star has the right curvatures at about one PSF sigma from its centre but
    a gradient too steep there. Pixels within 3 FWHM of saturated pixels (``img >=
    saturation``: bleed trails, rims of saturated stars) are no ridge. Connected ridge pixels (at least ``min_pixels``) give a line
    through their mean along their mean flat direction; the caller walks it out to the ends.
    """
    ny, nx = sig.shape
    out = []
    for c in comps:
        x0 = max(0, int(stats[c, COL["xmin"]]) - 2)
        x1 = min(nx, int(stats[c, COL["xmax"]]) + 3)
        y0 = max(0, int(stats[c, COL["ymin"]]) - 2)
        y1 = min(ny, int(stats[c, COL["ymax"]]) + 3)
        if x1 - x0 < 5 or y1 - y0 < 5:
            continue
        cut = sig[y0:y1, x0:x1].astype(float)
        gy, gx = np.gradient(cut)
        hyy = np.zeros_like(cut)
        hxx = np.zeros_like(cut)
        hxy = np.zeros_like(cut)
        hxx[:, 2:-2] = (cut[:, 4:] + cut[:, :-4] - 2 * cut[:, 2:-2]) / 4
        hyy[2:-2] = (cut[4:] + cut[:-4] - 2 * cut[2:-2]) / 4
        hxy[2:-2, 2:-2] = (cut[4:, 4:] - cut[4:, :-4] - cut[:-4, 4:] + cut[:-4, :-4]) / 16
        half_tr = 0.5 * (hxx + hyy)
        disc = np.sqrt(np.clip(half_tr**2 - (hxx * hyy - hxy**2), 0, None))
        across, along = half_tr - disc, half_tr + disc  # across <= along
        ridge = ((cut >= level) & (across < 0) & (np.abs(along) <= max_ratio * -across)
                 & (np.hypot(gx, gy) <= -across * 1.0))
        ridge[:2], ridge[-2:], ridge[:, :2], ridge[:, -2:] = False, False, False, False
        sat = img[y0:y1, x0:x1] >= saturation
        if sat.any():
            ridge &= ~ndimage.binary_dilation(sat, iterations=int(math.ceil(3 * FWHM_PER_SIGMA * sigma)))
        if ridge.sum() < min_pixels:
            continue
        lab, nlab = ndimage.label(ridge, structure=np.ones((3, 3)))
        for k in range(1, nlab + 1):
            yy, xx = np.nonzero(lab == k)
            if len(yy) < min_pixels:
                continue
            # flat direction per pixel: eigenvector of `along`; averaged as a doubled angle
            ang2 = np.arctan2(2 * hxy[yy, xx], hxx[yy, xx] - hyy[yy, xx])  # axis of `along`
            phi = 0.5 * math.atan2(np.sin(ang2).mean(), np.cos(ang2).mean())
            xc, yc = xx.mean() + x0, yy.mean() + y0
            t = (xx + x0 - xc) * math.cos(phi) + (yy + y0 - yc) * math.sin(phi)
            length = max(float(t.max() - t.min()) + 1, 2 * FWHM_PER_SIGMA * sigma)
            out.append(Line(xc, yc, phi, length, [int(c)]))
    return out


def _distinct(x, y, comp, min_sep=1.0):
    """Mask keeping the first of points of one component that converged within ``min_sep`` px."""
    keep = np.ones(len(x), bool)
    if len(x) < 2:
        return keep
    xy = np.column_stack([x, y])
    pairs = cKDTree(xy).query_pairs(min_sep, output_type="ndarray")  # i < j
    dist = np.hypot(*(xy[pairs[:, 0]] - xy[pairs[:, 1]]).T)
    pairs = pairs[(comp[pairs[:, 0]] == comp[pairs[:, 1]]) & (dist < min_sep)]
    for i, j in pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]:  # earlier points decide first
        if keep[i]:
            keep[j] = False
    return keep


def _bright_on(fit: StreakFit, x, y, f, sigma):
    """(x, y) of point sources on the streak's band that are much brighter than the streak."""
    xc, yc, phi, length, w, flux = fit.params
    uu = (x - xc) * math.cos(phi) + (y - yc) * math.sin(phi)
    vv = -(x - xc) * math.sin(phi) + (y - yc) * math.cos(phi)
    band = 4 * sigma + 4
    per_psf = flux / max(length, 1.0) * 2.5 * FWHM_PER_SIGMA * sigma
    sel = (np.abs(vv) <= band) & (np.abs(uu) <= 0.5 * length + band) & (f >= 3 * per_psf)
    return np.column_stack([x[sel], y[sel]])


def _band_window(shape, xc, yc, phi, length, sigma, extra_px=0.0):
    """Band of half-width ``4 sigma + 4 + extra_px`` px around a streak (centre, angle phi rad,
    length px): (band, half length + band, cos phi, sin phi, (x0, x1, y0, y1) its bounding box
    in the image)."""
    band = 4 * sigma + 4 + extra_px
    half = 0.5 * length + band
    c, s = math.cos(phi), math.sin(phi)
    ny, nx = shape
    return band, half, c, s, (max(0, int(xc - half * abs(c) - band * abs(s))),
                              min(nx, int(xc + half * abs(c) + band * abs(s)) + 2),
                              max(0, int(yc - half * abs(s) - band * abs(c))),
                              min(ny, int(yc + half * abs(s) + band * abs(c)) + 2))


def _stars_in_streaks(p: _Pass, streaks, seen):
    """(x, y, component) of the stars that a streak's fit left out (:func:`_bright_peaks` of
    its final geometry) and that lie in one of its components, so that no point was measured
    for them; peaks within 1.5 px of a point already measured (``seen``: a cKDTree of them, or
    None) are not repeated."""
    xs, ys, ks = [], [], []
    for fit, _, members in streaks:
        for x, y in _bright_peaks(p.sig, *fit.params[:4], p.sigma):
            if seen is not None and seen.query([x, y])[0] < 1.5:
                continue
            for c in members:
                runs = p.order[p.offsets[c]:p.offsets[c + 1]]
                if np.any((p.ry[runs] == y) & (p.rx0[runs] <= x) & (p.rx1[runs] >= x)):
                    xs.append(x)
                    ys.append(y)
                    ks.append(c)
                    break
    return np.array(xs, float), np.array(ys, float), np.array(ks, np.int64)


def _bright_peaks(sig, xc, yc, phi, length, sigma):
    """(x, y) of peaks of S far above the streak's own level (the median of S along it) on a
    streak's band, or beside it within the masking radius (2.5 FWHM: a bright star's wings
    reach into the fitted pixels): stars joined to the streak by the analysis threshold,
    masked from the fit."""
    band, half, c, s, (x0, x1, y0, y1) = _band_window(sig.shape, xc, yc, phi, length, sigma,
                                                      2.5 * FWHM_PER_SIGMA * sigma)
    prof = _profile_along(sig, xc, yc, phi, length, 0.9)
    if x1 - x0 < 3 or y1 - y0 < 3 or len(prof) == 0:
        return np.zeros((0, 2))
    cut = sig[y0:y1, x0:x1]
    level = 3 * max(float(np.median(prof)), 0.0) + 5
    peaks = (cut == ndimage.maximum_filter(cut, size=3)) & (cut > level)
    py, px = np.nonzero(peaks)
    px, py = px + x0, py + y0
    uu = (px - xc) * c + (py - yc) * s
    vv = -(px - xc) * s + (py - yc) * c
    sel = (np.abs(vv) <= band) & (np.abs(uu) <= half)
    return np.column_stack([px[sel], py[sel]]).astype(float)


def _star_peaks(sig, xc, yc, phi, length, sigma, thresh, avoid):
    """(x, y) of peaks of S near a streak candidate that the streak itself cannot make: point
    sources to fit jointly with it (crowded fields). A peak is a star when its S exceeds what
    the streak gives at its distance from the line (the streak's level on the ridge, Gaussian
    of sigma sqrt(2) sigma_PSF across) by ``max(thresh, 0.2 level)``. Peaks within 2 px of a
    masked point (``avoid``) are left out."""
    band, half, c, s, (x0, x1, y0, y1) = _band_window(sig.shape, xc, yc, phi, length, sigma)
    prof = _profile_along(sig, xc, yc, phi, length, 0.8)
    if x1 - x0 < 3 or y1 - y0 < 3 or len(prof) == 0:
        return np.zeros((0, 2))
    level = max(float(np.median(prof)), 0.0)
    cut = sig[y0:y1, x0:x1]
    py, px = np.nonzero((cut == ndimage.maximum_filter(cut, size=3)) & (cut >= thresh))
    sp = cut[py, px]
    px, py = px + x0, py + y0
    uu = (px - xc) * c + (py - yc) * s
    vv = -(px - xc) * s + (py - yc) * c
    # beyond the ends (6 px of slack: a walked-out candidate may stop short of the true end)
    along = np.clip(np.abs(uu) - 0.5 * length - 6.0, 0, None)
    ridge = level * np.exp(-(vv**2 + along**2) / (4 * sigma**2))
    # round (not a ridge): a star even where the streak's S is higher (a star beyond an end
    # the candidate was walked over); the smaller curvature must exceed what the noise of S
    # gives on a faint ridge (~0.5 / px^2; a star at S = 5 has ~1.8)
    small, large = _curvatures(sig, px, py)
    round_ = (small >= 0.5 * large) & (small >= 1.5) & (sp >= 0.5 * ridge + thresh)
    sel = (np.abs(vv) <= band) & (np.abs(uu) <= half) & (round_ | (sp >= ridge + max(thresh, 0.2 * level)))
    out = np.column_stack([px[sel], py[sel]]).astype(float)
    if avoid is not None and len(avoid) and len(out):
        dist = np.hypot(out[:, None, 0] - avoid[None, :, 0], out[:, None, 1] - avoid[None, :, 1])
        out = out[dist.min(axis=1) > 2.0]
    return out


def _refit_masked(streaks, x, y, f, p, rms, fit_and_accept):
    out = []
    for fit, row, members in streaks:
        avoid = _bright_on(fit, x, y, f, p.sigma)
        if len(avoid):
            xc, yc, phi, length = fit.params[:4]
            again = fit_and_accept(Line(xc, yc, phi, length, members, row["npieces"]), avoid)
            if again is not None:
                out.append(again)
                continue
        out.append((fit, row, members))
    return out


def _join_fitted(streaks, cfg, p, rms, fit_and_accept, x, y, f, complete=lambda row: False):
    """Join fitted streaks that are collinear pieces of one (gap up to merge_gap + half length).

    Two streaks that are each ``complete`` (rate mode: whole star trails) are not joined, and a
    pair whose joint fit was refused is not tried again. Pairs are tried in index order, from
    the start again after each join (the joined streak may join others).
    """
    sigma = p.sigma
    refused = set()
    offset = 2 * sigma + 1.5
    while True:
        lines = [_line_of(st) for st in streaks]
        for i, j in _pairs_within_reach(lines, cfg["merge_gap_px"], offset):
            pair = (id(streaks[i]), id(streaks[j]))
            if pair in refused or (complete(streaks[i][1]) and complete(streaks[j][1])):
                continue
            gap = cfg["merge_gap_px"] + 0.5 * min(lines[i].length, lines[j].length)
            groups = join_pieces([lines[i], lines[j]], max_gap_px=gap, max_offset_px=offset,
                                 max_angle_rad=math.radians(3.0))
            if len(groups) != 1:
                continue
            res = fit_and_accept(groups[0], None)
            if res is None:
                refused.add(pair)
                continue
            avoid = _bright_on(res[0], x, y, f, sigma)
            if len(avoid):
                res = fit_and_accept(_line_of(res), avoid) or res
            streaks = [st for k, st in enumerate(streaks) if k not in (i, j)] + [res]
            break
        else:
            return streaks


def _pairs_within_reach(lines, merge_gap_px, offset_px):
    """Index pairs (i < j, in order) of lines whose centres are close enough for
    :func:`_join_fitted` to join them: at most the half lengths, the allowed gap (merge gap
    plus half the shorter) and the offset apart (a necessary condition of ``join_pieces``)."""
    if len(lines) < 2:
        return []
    xy = np.array([(ln.xc, ln.yc) for ln in lines])
    length = np.array([ln.length for ln in lines])
    reach = (0.5 * (length[:, None] + length[None, :]) + merge_gap_px
             + 0.5 * np.minimum(length[:, None], length[None, :]) + offset_px)
    dist = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    i, j = np.nonzero(np.triu(dist <= reach, k=1))
    return list(zip(i.tolist(), j.tolist()))


def _line_of(streak) -> Line:
    fit, row, members = streak
    return Line(*fit.params[:4], list(members), row["npieces"])


def _fit_group(img, bkg, g: Line, sigma, cfg, avoid=None, stars=None,
               saturation=math.inf) -> StreakFit:
    """Fit the line model to a cutout around the candidate; refit (twice at most) if it grew.

    Pixels within ``MASK_MAX_FWHM`` FWHM of the points ``avoid`` ((k, 2) x, y) are left out of
    the fit, and so are pixels at or above ``saturation`` (ADU) with a 2 px margin (bleed
    trails, saturated stars); the point sources ``stars`` ((k, 2) x, y) are fitted jointly with
    the streak. An end fitted inside such a disk has no pixel against it (the streak may stop
    short of the star, or run on): the disk then shrinks to the star's own light
    (:func:`_mask_radius`) and the fit is repeated.
    """
    gain = cfg["gain_e_per_adu"]
    r_max = MASK_MAX_FWHM * FWHM_PER_SIGMA * sigma
    if avoid is None:
        avoid = np.zeros((0, 2))
    shrunk = np.zeros(len(avoid), bool)
    fit = None
    refits = 0
    while refits < 3:
        band = 4 * sigma + 4
        half = 0.5 * g.length + band
        c, s = abs(math.cos(g.phi)), abs(math.sin(g.phi))
        ny, nx = img.shape
        x0 = max(0, int(math.floor(g.xc - half * c - band * s)))
        x1 = min(nx, int(math.ceil(g.xc + half * c + band * s)) + 1)
        y0 = max(0, int(math.floor(g.yc - half * s - band * c)))
        y1 = min(ny, int(math.ceil(g.yc + half * s + band * c)) + 1)
        if x1 - x0 < 2 or y1 - y0 < 2:
            return StreakFit(np.array([g.xc, g.yc, g.phi, g.length, sigma, 0.0]),
                             np.full((6, 6), np.nan), False, 0)
        d = img[y0:y1, x0:x1] - patch(bkg, bkg.back_grid, y0, y1, x0, x1)
        var = patch(bkg, bkg.rms_grid, y0, y1, x0, x1) ** 2
        if gain is not None:
            var = var + np.clip(d, 0, None) / gain
        sat = img[y0:y1, x0:x1] >= saturation
        if sat.any():
            d[ndimage.binary_dilation(sat, iterations=2)] = np.nan
        own = np.array([_mask_radius(d, var, x0, y0, ax, ay, sigma) for ax, ay in avoid])
        if len(avoid):
            yy, xx = np.mgrid[y0:y1, x0:x1]
            for (ax, ay), r in zip(avoid, np.where(shrunk, own, r_max)):
                d[(xx - ax) ** 2 + (yy - ay) ** 2 <= r * r] = np.nan
        inside = None
        if stars is not None and len(stars):
            inside = stars[(stars[:, 0] >= x0) & (stars[:, 0] < x1) & (stars[:, 1] >= y0)
                           & (stars[:, 1] < y1)]
        fit = fit_line(d, var, x0, y0, g, sigma, inside)
        if not fit.success:
            break
        xc, yc, phi, length = fit.params[:4]
        grew = length > g.length + 2 * sigma + 2
        g = Line(xc, yc, phi, length, g.members, g.npieces)
        # (a disk that would shrink by less than a pixel is left as it is)
        hiding = ~shrunk & (own < r_max - 1.0) & _disks_on_ends(fit, avoid, r_max)
        if hiding.any():  # once per star: not counted as a refit
            shrunk |= hiding
            continue
        if not grew:
            break
        refits += 1
    return fit


def _disks_on_ends(fit: StreakFit, points, radius):
    """Which of the ``points`` ((k, 2) x, y) have an end of the fitted streak within
    ``radius`` px."""
    (xa, ya), (xb, yb) = fit.ends
    if not len(points):
        return np.zeros(0, bool)
    x, y = points[:, 0], points[:, 1]
    return (np.hypot(x - xa, y - ya) < radius) | (np.hypot(x - xb, y - yb) < radius)


def _mask_radius(d, var, x0, y0, ax, ay, sigma):
    """Radius (px) of the disk left out of a streak fit around the star at (ax, ay): where its
    light, a Gaussian of ``sigma`` px from its peak pixel in ``d`` (background-subtracted
    cutout with corner (x0, y0), variance ``var``), falls to the noise of a pixel; at most
    ``MASK_MAX_FWHM`` FWHM (also for a star outside the cutout or saturated, NaN in ``d``).

    A disk as large for every star hides the end of a streak that stops beside one: the fit
    then has no pixel against a longer segment (ends 6 px from a bright star were pulled 9 px
    into its disk).
    """
    r_max = MASK_MAX_FWHM * FWHM_PER_SIGMA * sigma
    i, j = int(round(ay)) - y0, int(round(ax)) - x0
    if not (0 <= i < d.shape[0] and 0 <= j < d.shape[1]) or not np.isfinite(d[i, j]):
        return r_max
    peak = d[i, j] / math.sqrt(var[i, j])
    return min(r_max, sigma * math.sqrt(2 * math.log(max(peak, 1.0))))


def _not_stars(fit: StreakFit) -> bool:
    """A short fitted streak is not a pair or a clump of stars: two point sources fit worse by
    ``PAIR_MARGIN_CHI2``, three or four do not fit better by ``CLUMP_MARGIN_CHI2``."""
    if not fit.stars_chi2(2) > fit.chi2 + PAIR_MARGIN_CHI2:
        return False
    return all(fit.stars_chi2(k) > fit.chi2 - margin for k, margin in CLUMP_MARGIN_CHI2.items())


def _streak_row(fit: StreakFit, members, npieces, stats, flags, a, b, theta, shape, sigma, cfg):
    """Row of an accepted streak, or None when the fit says it is not one."""
    xc, yc, phi, length, w, flux = fit.params
    err = np.sqrt(np.clip(np.diag(fit.cov), 0, None))
    flux_err = fit.flux_err  # with the geometry fixed: a masked end must not hide the streak
    snr = flux / flux_err if flux_err > 0 else 0.0
    # a line must explain the signal: pairs of stars leave > 10 % of it (beyond the noise);
    # long streaks may vary in brightness along the track (glints) and get more room
    signal = snr**2
    allowed = cfg["streak_max_excess"] if length < 40 else cfg["streak_max_excess_long"]
    excess_ok = fit.excess <= allowed + 3 * math.sqrt(2 * fit.npix) / max(signal, 1e-30)
    # saturation breaks the line model: a short saturated object is a star (pair), not a streak
    ok = (length >= cfg["streak_min_length_px"] and snr >= cfg["streak_min_snr"]
          and 0.5 * sigma <= w <= 3.0 * sigma and excess_ok)
    # short: two point sources must fit clearly worse than the segment (star pairs ~1.5 FWHM
    # apart look like 8-10 px streaks to the excess test), and three or four must not fit
    # clearly better (clumps of faint stars); last, as they cost fits
    if not ok or (length < PAIR_TEST_MAX_PX and not _not_stars(fit)):
        return None
    phi = (phi + math.pi / 2) % math.pi - math.pi / 2  # (-90, 90] deg
    fit.params[2] = phi
    (x0, y0), (x1, y1) = fit.ends
    ny, nx = shape
    f = int(np.bitwise_or.reduce(flags[members]))
    f &= ~(BLENDED | SHARP)
    if min(x0, x1) < 0.5 or min(y0, y1) < 0.5 or max(x0, x1) > nx - 1.5 or max(y0, y1) > ny - 1.5:
        f |= EDGE
    if npieces > 1:
        f |= MERGED
    if not fit.success:
        f |= FIT_FAILED
    main = max(members, key=lambda i: stats[i, COL["npix"]])
    col = lambda name: stats[members, COL[name]]  # noqa: E731
    return dict(
        x=xc, y=yc, x_err=err[0], y_err=err[1], flux=flux, flux_err=flux_err, snr=snr,
        sig=col("smax").max(), peak=col("peak").max(), area=col("npix").sum(), a=a[main],
        b=b[main], theta_deg=theta[main], elongation=a[main] / b[main] if b[main] > 0 else np.inf,
        kind="streak", flags=f, angle_deg=math.degrees(phi), length_px=length, width_px=w,
        x0=x0, y0=y0, x1=x1, y1=y1, end_sigma_px=max(fit.end_sigmas), npieces=npieces)


def _profile_along(sig, xc, yc, phi, length, frac=0.8):
    """S sampled every pixel (nearest) along the central ``frac`` of a segment."""
    t = np.arange(-0.5 * frac * length, 0.5 * frac * length + 1e-9, 1.0)
    xs = np.rint(xc + t * math.cos(phi)).astype(int)
    ys = np.rint(yc + t * math.sin(phi)).astype(int)
    ok = (xs >= 0) & (ys >= 0) & (xs < sig.shape[1]) & (ys < sig.shape[0])
    return sig[ys[ok], xs[ok]]


def _extended(sig, g: Line, *, window=12.0, level=2.0, step=2.0, of_core=0.0) -> Line:
    """The candidate line walked outwards along S while the streak continues.

    Pieces of a faint streak (or a streak cut by the analysis threshold) are shorter than the
    streak; beyond each end, the median of S over the next ``window`` px (best of the line and
    its two 1-px parallels; a median so that a star beyond the end does not carry the walk on)
    is tested against ``level`` sigma, or ``of_core`` times the median S along the candidate's
    central half where that is higher (a few stars beyond a bright streak's ends keep a
    window's median above a few sigma, far below the streak's own S), in steps of ``step`` px.
    """
    core = _profile_along(sig, g.xc, g.yc, g.phi, g.length, 0.5) if of_core > 0 else ()
    if len(core):
        level = max(level, of_core * float(np.median(core)))
    c, s = math.cos(g.phi), math.sin(g.phi)
    # from the central half: the ends of a component may be a star's; never much shorter than
    # the component itself
    ends = [max(_walk_end(sig, g.xc, g.yc, sign * c, sign * s, 0.25 * g.length, window, level,
                          step), 0.4 * g.length) for sign in (-1.0, 1.0)]
    lo, hi = -ends[0], ends[1]
    mid = 0.5 * (lo + hi)
    return Line(g.xc + mid * c, g.yc + mid * s, g.phi, hi - lo, g.members, g.npieces)


def _walk_end(sig, xc, yc, c, s, t, window, level, step, chunk=16):
    """Distance (px) from (xc, yc) along the unit direction (c, s), starting at ``t`` and in
    steps of ``step``, of the first window whose median S (best of three parallels 1 px apart,
    nearest pixels, at least half the window inside the frame) falls below ``level``.
    ``chunk`` steps are sampled at once."""
    ny, nx = sig.shape
    along = np.arange(0.0, window, 1.0)
    offsets = np.array([-1.0, 0.0, 1.0])[:, None, None]
    while True:
        starts = t + step * np.arange(chunk)
        tt = (starts[:, None] + along[None, :])[None]  # (1, chunk, window)
        xs = np.rint(xc + tt * c - offsets * s).astype(np.int64)  # (3, chunk, window)
        ys = np.rint(yc + tt * s + offsets * c).astype(np.int64)
        inside = (xs >= 0) & (ys >= 0) & (xs < nx) & (ys < ny)
        vals = np.where(inside, sig[np.clip(ys, 0, ny - 1), np.clip(xs, 0, nx - 1)], np.nan)
        vals.sort(axis=2)  # NaN (outside) last
        n = inside.sum(axis=2, keepdims=True)
        lo = np.take_along_axis(vals, np.maximum(n - 1, 0) // 2, axis=2)[..., 0]
        hi = np.take_along_axis(vals, np.minimum(n[..., 0] // 2, len(along) - 1)[..., None], axis=2)[..., 0]
        median = np.where(n[..., 0] >= window / 2, 0.5 * (lo.astype(float) + hi), -np.inf)
        stop = np.flatnonzero(~(median.max(axis=0) >= level))
        if len(stop):
            return float(starts[stop[0]])
        t = float(starts[-1]) + step


def _flat_profile(sig, xc, yc, phi, length, max_length_px=40.0) -> bool:
    """Cheap pre-fit test: no deep dip of S along the candidate (as between two bright stars).

    Quantiles, not extremes, so that a star crossing a streak does not count as a dip. Only
    candidates shorter than ``max_length_px`` are tested (by default 40 px, the size of star
    pairs: long ones are few, and real long streaks vary in brightness, glints and seeing).
    """
    if length >= max_length_px:
        return True
    prof = _profile_along(sig, xc, yc, phi, length, 0.5)
    if len(prof) == 0:
        return True
    lo, hi = np.percentile(prof, [10, 90])
    return lo >= 0.6 * hi - 2.0  # a streak's S varies by the noise (1 sigma), a pair's dips


def _snr_along(sig, g: Line, sigma) -> float:
    """SNR of a candidate segment estimated from S along it, before any fit.

    On the centre line of a streak of ``lambda`` ADU per px (Gaussian PSF of ``sigma`` px), S is
    ``lambda / rms``; the streak's optimal SNR is ``(lambda / rms) sqrt(L / (2 sqrt(pi) sigma))``.
    The median of S over the central 80 % stands for ``lambda / rms`` (robust to a star on it).
    """
    prof = _profile_along(sig, g.xc, g.yc, g.phi, g.length, 0.8)
    if len(prof) == 0:
        return 0.0
    return float(np.median(prof)) * math.sqrt(max(g.length, 1.0) / (2 * math.sqrt(math.pi) * sigma))


def _uniform_along(sig, fit: StreakFit, rms: float) -> bool:
    """True if S along the central 80 % of the fitted segment looks like a line, not points.

    On the centre line of a streak of ``F / L`` ADU per px, S is ``F / (L rms)`` whatever the
    PSF; two stars joined by the analysis threshold instead leave S low between them. The lower
    quartile of S sampled every pixel must reach half the expected level.
    """
    xc, yc, phi, length, w, flux = fit.params
    prof = _profile_along(sig, xc, yc, phi, length, 0.8)
    if len(prof) < 3:
        return False
    expected = flux / max(length, 1.0) / rms
    return bool(np.percentile(prof, 25) >= 0.5 * expected)


def _on_streaks(x, y, flux, bands, sigma):
    """Points that are pieces of a fitted streak (inside its band, not much brighter than it)."""
    out = np.zeros(len(x), bool)
    for fit, row in bands:
        xc, yc, phi, length, w, f = fit.params
        uu = (x - xc) * math.cos(phi) + (y - yc) * math.sin(phi)
        vv = -(x - xc) * math.sin(phi) + (y - yc) * math.cos(phi)
        per_psf = f / max(length, 1.0) * 2.5 * FWHM_PER_SIGMA * sigma
        out |= (np.abs(vv) <= 2 * w + 1) & (np.abs(uu) <= 0.5 * length + 2 * w) & (flux < 3 * per_psf)
    return out


def _star_trail_shape(rows, cfg, mode):
    """Rate mode: (angle deg, length px) of star trails, as configured or else the typical
    (median) streak's; None in sidereal mode or with fewer than three streaks to go by."""
    if mode != "rate" or not rows:
        return None
    ang, length = cfg["star_angle_deg"], cfg["star_length_px"]
    if ang is None or length is None:
        if len(rows) < 3:
            return None
        angles = np.radians([r["angle_deg"] for r in rows])
        ang = math.degrees(0.5 * math.atan2(np.median(np.sin(2 * angles)), np.median(np.cos(2 * angles))))
        length = float(np.median([r["length_px"] for r in rows]))
    return ang, length


def _is_star_trail(row, ang, length) -> bool:
    """True if a streak row has the star trails' angle and length (or is cut by the edge)."""
    d = (row["angle_deg"] - ang) % 180.0
    d = min(d, 180.0 - d)
    tol = max(3.0, math.degrees(math.atan2(2.0, max(length, 1.0))))
    return d <= tol and (abs(row["length_px"] - length) <= 0.2 * length + 3.0 or bool(row["flags"] & EDGE))


def _flag_star_trails(rows, cfg, mode):
    """Rate mode: flag streaks with the expected (or, if not given, the typical) star trail."""
    trail = _star_trail_shape(rows, cfg, mode)
    for r in rows if trail is not None else ():
        if _is_star_trail(r, *trail):
            r["flags"] |= STAR_TRAIL


def _table(streaks, points, meta) -> Table:
    """Table of streak rows (dicts) and point columns (arrays), columns as in ``COLUMNS``;
    what an object does not have is NaN (0 for ``npieces``)."""
    n_pts = len(points.get("x", ()))
    data = {}
    for name in COLUMNS:
        if name == "kind":
            data[name] = np.array(["streak"] * len(streaks) + ["point"] * n_pts, dtype="U6")
            continue
        dtype = np.int64 if name in ("flags", "npieces") else np.float64
        fill = 0 if dtype is np.int64 else np.nan
        head = np.array([r.get(name, fill) for r in streaks], dtype=dtype)
        tail = np.asarray(points.get(name, np.full(n_pts, fill)), dtype=dtype)
        data[name] = np.concatenate([head, tail])
    t = Table(data, meta=meta)
    for name, (unit, desc) in COLUMNS.items():
        t[name].unit = unit
        t[name].description = desc
    if len(t):
        t.sort("sig", reverse=True)
    return t
