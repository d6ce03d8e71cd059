"""Plate solving: which catalog stars are in the frame, and the TAN + SIP WCS that maps them.

Algorithm (all steps vectorised numpy/scipy; a few hundred ms per field with a good hint):

1. **Reference stars**: a catalog cone around the header pointing, wide enough for the field
   plus the hint error (``hint_radius_deg``, default 2), moved to the frame's mid-exposure epoch.
2. **Asterisms**: quads (:mod:`.quads`) of the brightest image sources (in pixel units, x axis
   mirrored for parity +1) and of density-matched catalog stars (standard coordinates at the
   hint); a k-d tree on the 4-d codes yields candidate correspondences. Quad sizes are limited
   by the expected pixel scale (``scale_tolerance``). Source depth grows in steps (20, 35, 60
   brightest) until a solution is accepted.
3. **Verification**: each candidate gives a similarity transform; the catalog is re-projected
   at the implied field centre and predicted in pixels. Acceptance is a likelihood test: the
   number ``k`` of catalog stars inside the frame that find an image source within ``r`` px is
   compared with what a random alignment gives (binomial, ``p0 = n_src * pi r^2 / area``). The
   false-alarm probability, multiplied by the number of hypotheses tried (Bonferroni), must be
   below ``10**log10_false_alarm`` (default 1e-9), with at least ``min_matches`` stars.
4. **Fit**: iterative TAN + SIP least squares (:mod:`.fit`), weighted by the centroid errors,
   with re-matching at a radius that shrinks with the residuals, sigma clipping on the
   leave-one-out residuals (``clip_sigma``; a flexible plate would hide an outlier by bending to
   it) and the plate model with the fewest parameters whose leave-one-out (held-out) error is
   within one standard error of the smallest (one-standard-error rule), among
   polynomial orders 1..``max_order`` and orders 1-2 plus a radial cubic (a refractor's
   distortion, affordable with 10-20 stars), capped by the star count and by how much of the
   frame the stars cover. The final fit uses a catalog cone centred on the solved field and
   leaves saturated/blended/edge stars out when enough clean ones remain.
Rate-tracked frames (:mod:`.trails`): the stars are trails of one direction and length
(``|rate| * exposure / scale``); the star list is the sources with that morphology whatever
the detector's ``kind`` (short trails come out as elongated points), a trail cut by the frame
edge is placed at its inner end plus half a trail length (it may lie outside the frame:
``_Field.outer_px``), and the target (a point) is never used as a star.

5. **Fallbacks**: a scale search (quad sizes +-35 %) when the configured pixel scale may be
   wrong, then a blind search over tiles of sky around the hint out to ``blind_radius_deg``
   (default 12, at most ``blind_time_limit_s``), then optionally astrometry.net
   (``fallback='astrometry.net'``, :mod:`.anet`) whose proposal is re-verified here. Nothing
   found: ``accepted=False`` with the reason; no WCS is returned.

Conventions: pixels 0-based (aposos), ``PlateSolution.wcs`` is a FITS-standard astropy WCS
(CRPIX 1-based), so use ``wcs.pixel_to_world_values(x, y)`` or ``wcs.all_pix2world(x, y, 0)``.
Parity +1 means east is left when north is up (``det(CD) < 0``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from astropy.table import Table
from scipy.spatial import cKDTree
from scipy.stats import binom

from ..errors import AposError
from . import flags as flagbits
from . import trails
from .fit import PlateFit, fit_tan_sip, n_terms
from .quads import QuadIndex, build_quads
from .refstars import reference_stars, unblended
from .tangent import deproject, project, separation_deg


#: star residuals (px) below this are never clipped as outliers
CLIP_FLOOR_PX = 0.3
#: frames with this many matched stars fit their own distortion, never a lent one (``distortion=``)
PRIOR_MAX_STARS = 25


@dataclass(frozen=True)
class SolveConfig:
    """Knobs of :func:`solve` (all have defaults; pass any as keyword to ``solve``).

    pixel_scale_arcsec, parity : None means "from the station config" (scale scaled by the
        frame's binning relative to the configured binning). ``parity=0`` tries both.
    hint_radius_deg : how far the true centre may be from the header pointing.
    scale_tolerance : fractional scale range of quads in the first pass.
    scale_search : retry with +-35 % scale when the first pass fails.
    blind, blind_radius_deg, blind_time_limit_s : tile search around the hint when all else fails.
    levels : numbers of brightest sources used for quads, tried in order.
    code_tol : radius in quad-code space.
    log10_false_alarm : acceptance threshold on the Bonferroni-corrected false-alarm probability.
    min_matches : fewest matched stars for an accepted solution.
    max_order : highest SIP order tried (1 = plain TAN).
    clip_sigma : outlier rejection threshold (in robust sigma of the residual norm).
    max_rms_px : a solution with larger star residuals is rejected.
    match_radius_px : largest star-source distance used for matching during refinement.
    star_kind : 'point' | 'streak' | None: source kind used as stars (None: from tracking).
    reject_flags : sources with ``flags & reject_flags`` are never used as stars (default:
        sharp, masked, failed streak fits -- see :mod:`.flags`).
    fit_flags : sources with these flags (saturated, blended, edge) help find the field but are
        left out of the final fit when enough clean stars remain.
    mag_limit : faintest catalog magnitude used.
    distortion : a known SIP distortion (astropy WCS with SIP, or a PlateSolution, of a frame of
        the same camera, binning and shape, e.g. a well-populated frame of the night), or a
        :class:`.distortion.DistortionCache`, which supplies the best one seen so far for the
        frame's camera setup and keeps this frame's if it is better. Adds the
        candidate model "that distortion + a linear plate" (6 parameters), which sparse fields
        (10-20 stars) can afford; the held-out residuals still choose. Frames with
        ``PRIOR_MAX_STARS`` (25) matched stars or more always fit their own distortion.
    fallback : 'astrometry.net' to try its blind solver (if installed, see :mod:`.anet`) when
        everything else failed; its WCS is re-verified and refitted here.
    """

    pixel_scale_arcsec: float | None = None
    parity: int | None = None
    hint_radius_deg: float = 2.0
    scale_tolerance: float = 0.05
    scale_search: bool = True
    blind: bool = True
    blind_radius_deg: float = 12.0
    blind_time_limit_s: float = 15.0
    levels: tuple = (20, 35, 60)
    code_tol: float = 0.012
    max_hypotheses: int = 3000
    log10_false_alarm: float = -9.0
    min_matches: int = 12
    max_order: int = 4
    clip_sigma: float = 4.0
    max_rms_px: float = 1.5
    match_radius_px: float = 6.0
    star_kind: str | None = None
    reject_flags: int = flagbits.NOT_A_STAR
    fit_flags: int = flagbits.IMPRECISE
    mag_limit: float = np.inf
    fallback: str | None = None
    distortion: object = None


@dataclass
class PlateSolution:
    """Result of :func:`solve`. When ``accepted`` is False, ``wcs`` is None and ``reason`` says why.

    Attributes
    ----------
    accepted : bool
    reason : str
        Why the frame was accepted ("ok: ...") or failed.
    wcs : astropy.wcs.WCS or None
        TAN or TAN-SIP, FITS convention: call with origin 0 for aposos pixels
        (``wcs.pixel_to_world_values(x, y)``).
    matches : Table
        One row per catalog star matched and kept in the fit: ``source_index`` (row in the
        Sources table), ``x, y`` (px), ``ra, dec`` (deg, catalog at frame epoch), ``mag``
        (catalog), ``catalog_id``, ``dx_px, dy_px`` (model minus measured pixel position),
        ``dra_arcsec, ddec_arcsec`` (catalog minus model, RA including cos dec).
    n_matched : int
    order : int
        Order of the plate's distortion polynomials (1 = TAN only, >= 2 TAN-SIP).
    model : str
        The plate model chosen by the held-out residuals, e.g. 'TAN+poly2+radial3'.
    rms_px, rms_arcsec : float
        RMS of the star residual norm (px, arcsec).
    ra_deg, dec_deg : float
        Sky position of the frame centre.
    scale_arcsec_px : float
        Mean pixel scale at the centre (arcsec/px); ``scale_ratio`` is it over the configured.
        (``sip_order`` property: SIP order of the WCS, 0 for plain TAN.)
    rotation_deg : float
        Position angle of the image +y axis, deg east of north.
    parity : int
        +1 east left when north up (det CD < 0), -1 mirrored.
    hint_ra_deg, hint_dec_deg, pointing_offset_deg : float
        Header pointing and its distance from the solved centre (telescope health).
    log10_false_alarm : float
        Bonferroni-corrected log10 probability that the match is chance.
    method : str
        'hint', 'scale-search', 'blind' or 'astrometry.net' (optional fallback).
    n_hypotheses, time_s : int, float
    """

    accepted: bool
    reason: str
    wcs: object = None
    matches: Table = field(default_factory=Table)
    n_matched: int = 0
    order: int = 0
    model: str = ""
    rms_px: float = np.nan
    rms_arcsec: float = np.nan
    ra_deg: float = np.nan
    dec_deg: float = np.nan
    scale_arcsec_px: float = np.nan
    scale_ratio: float = np.nan
    rotation_deg: float = np.nan
    parity: int = 0
    hint_ra_deg: float = np.nan
    hint_dec_deg: float = np.nan
    pointing_offset_deg: float = np.nan
    log10_false_alarm: float = np.nan
    method: str = ""
    n_hypotheses: int = 0
    time_s: float = 0.0
    shape: tuple = (0, 0)
    fit: PlateFit | None = field(default=None, repr=False)

    @property
    def sip_order(self) -> int:
        """Order of the SIP polynomials of the WCS (0 for a plain TAN plate)."""
        return self.order if self.order >= 2 else 0

    @property
    def coverage(self) -> float:
        """Fraction of the frame inside the convex hull of the matched stars (health figure;
        below ~0.5 the plate is extrapolated over much of the frame)."""
        if len(self.matches) < 3:
            return 0.0
        xy = np.stack([np.asarray(self.matches["x"]), np.asarray(self.matches["y"])], -1)
        return _coverage(xy, _Field(xy, self.shape, 1.0, 1))

    def inside_star_hull(self, x, y) -> np.ndarray:
        """True where pixels (x, y) lie inside the convex hull of the matched stars (the plate
        is interpolated there; outside it is extrapolated and less certain than its sigma)."""
        from scipy.spatial import ConvexHull, QhullError

        x, y = np.asarray(x, float), np.asarray(y, float)
        if len(self.matches) < 3:
            return np.zeros(x.shape, bool)
        try:
            hull = ConvexHull(np.stack([np.asarray(self.matches["x"]), np.asarray(self.matches["y"])], -1))
        except QhullError:
            return np.zeros(x.shape, bool)
        # inside: on the inner side of every facet (outward normal . p + offset <= 0)
        eq = hull.equations
        side = eq[:, 0] * x[..., None] + eq[:, 1] * y[..., None] + eq[:, 2]
        return np.all(side <= 1e-9, axis=-1)

    def pixel_to_world(self, x, y):
        """(ra, dec) in deg of 0-based pixels."""
        if self.wcs is None:
            raise AposError(f"frame has no accepted plate solution ({self.reason})")
        return self.wcs.all_pix2world(np.asarray(x, float), np.asarray(y, float), 0)

    def world_to_pixel(self, ra_deg, dec_deg):
        """0-based pixels of (ra, dec) in deg."""
        if self.wcs is None:
            raise AposError(f"frame has no accepted plate solution ({self.reason})")
        return self.wcs.all_world2pix(np.asarray(ra_deg, float), np.asarray(dec_deg, float), 0)

    def plate_sigma_arcsec(self, x, y) -> np.ndarray:
        """1-sigma per-axis error (arcsec) of the plate model at pixels (x, y)."""
        return self.fit.plate_sigma_deg(x, y) * 3600.0

    def health(self) -> dict:
        """Telescope-health figures for the night report."""
        return {k: getattr(self, k) for k in ("accepted", "reason", "n_matched", "order", "model", "rms_px",
                                              "rms_arcsec",
                                              "pointing_offset_deg", "rotation_deg", "scale_arcsec_px",
                                              "scale_ratio", "parity", "method", "time_s", "coverage")}

    def residual_pattern(self, n_bins: int = 4) -> Table:
        """Mean star residual (px) in an ``n_bins`` x ``n_bins`` grid over the image.

        Columns ``x, y`` (cell centre, px), ``n``, ``dx_px, dy_px`` (mean model minus measured).
        A pattern (not noise) means the plate model is missing distortion.
        """
        ny, nx = self.shape
        m = self.matches
        ix = np.clip((np.asarray(m["x"]) / nx * n_bins).astype(int), 0, n_bins - 1)
        iy = np.clip((np.asarray(m["y"]) / ny * n_bins).astype(int), 0, n_bins - 1)
        rows = []
        for j in range(n_bins):
            for i in range(n_bins):
                sel = (ix == i) & (iy == j)
                rows.append(((i + 0.5) * nx / n_bins, (j + 0.5) * ny / n_bins, int(sel.sum()),
                             float(np.mean(m["dx_px"][sel])) if sel.any() else np.nan,
                             float(np.mean(m["dy_px"][sel])) if sel.any() else np.nan))
        return Table(rows=rows, names=("x", "y", "n", "dx_px", "dy_px"))

    def plot_residuals(self, ax=None, scale: float = 500.0):
        """Quiver plot of the star residuals (arrows magnified ``scale`` times); returns the figure."""
        import matplotlib.pyplot as plt

        if ax is None:
            fig, ax = plt.subplots(figsize=(6, 6))
        else:
            fig = ax.figure
        m = self.matches
        if len(m):
            ax.quiver(m["x"], m["y"], m["dx_px"], m["dy_px"], angles="xy", scale_units="xy", scale=1.0 / scale)
        ax.set_xlim(0, self.shape[1])
        ax.set_ylim(0, self.shape[0])
        ax.set_aspect("equal")
        ax.set_title(f"{self.n_matched} stars, rms {self.rms_px:.3f} px ({self.rms_arcsec:.2f}\"), "
                     f"{self.model}; arrows x{scale:g}")
        ax.set_xlabel("x [px]")
        ax.set_ylabel("y [px]")
        return fig


# ----------------------------------------------------------------------------- inputs


def _station_defaults(frame, cfg: SolveConfig) -> tuple[float, int]:
    scale, parity = cfg.pixel_scale_arcsec, cfg.parity
    if scale is None or parity is None:
        station = getattr(frame.meta, "station", None)
        if station is None:
            raise AposError("pixel scale/parity unknown: frame has no station; pass pixel_scale_arcsec= and parity=",
                            key="pixel_scale_arcsec")
        from ..config import load_station

        st = load_station(station)
        if scale is None:
            scale = st.pixel_scale_arcsec * (frame.meta.binning or 1) / st.camera["binning"]
        if parity is None:
            parity = int(st.telescope["parity"])
    if not (np.isfinite(scale) and scale > 0):
        raise AposError(f"pixel scale {scale!r} arcsec/px is not positive", key="pixel_scale_arcsec")
    if parity not in (1, -1, 0):
        raise AposError(f"parity {parity!r} is not +1, -1 or 0 (try both)", key="parity")
    return float(scale), int(parity)


def star_sources(sources: Table, tracking: str, cfg: SolveConfig, trail=None) -> np.ndarray:
    """Indices of sources usable as stars, brightest first.

    Stars are points (and saturated blobs of any shape) in sidereal frames. In rate-tracked
    frames with a known star trail (``trail``, a :class:`.trails.TrailModel`) they are the
    sources with the trail's direction and length whatever their ``kind`` (short trails are
    detected as elongated points), except points touching the edge (their centroid is that of a
    cut trail); without a trail model, streaks. Flagged sources (``flags & reject_flags``) are
    left out.
    """
    n = len(sources)
    ok = np.isfinite(np.asarray(sources["x"], float)) & np.isfinite(np.asarray(sources["y"], float))
    if "flags" in sources.colnames:
        ok &= (np.asarray(sources["flags"]).astype(np.int64) & cfg.reject_flags) == 0
    if tracking == "rate" and trail is not None and cfg.star_kind is None:
        like = trails.trail_like(sources, trail)
        if "flags" in sources.colnames and "kind" in sources.colnames:
            cut_point = ((np.asarray(sources["flags"]).astype(np.int64) & flagbits.EDGE) != 0) & (
                np.asarray(sources["kind"]).astype(str) != "streak")
            like &= ~cut_point
        if np.count_nonzero(ok & like) >= 8:
            ok &= like
    elif "kind" in sources.colnames:
        kind = cfg.star_kind or {"sidereal": "point", "rate": "streak"}.get(tracking)
        if kind is not None:
            is_kind = np.asarray(sources["kind"]).astype(str) == kind
            if kind == "point" and "flags" in sources.colnames:  # saturated stars may bleed into streaks
                is_kind |= (np.asarray(sources["flags"]).astype(np.int64) & flagbits.SATURATED) != 0
            if np.count_nonzero(ok & is_kind) >= 8:
                ok &= is_kind
    idx = np.flatnonzero(ok)
    if "flux" in sources.colnames:
        bright = np.asarray(sources["flux"], float)[idx]
    elif "snr" in sources.colnames:
        bright = np.asarray(sources["snr"], float)[idx]
    else:
        bright = -np.arange(n, dtype=float)[idx]
    return idx[np.argsort(-np.nan_to_num(bright, nan=-np.inf), kind="stable")]


# ----------------------------------------------------------------------------- the solver


class _Field:
    """Everything that stays fixed while hypotheses are tried on one frame."""

    def __init__(self, xy: np.ndarray, shape, scale_deg: float, parity: int, weights=None, prior_sip=None,
                 outer_px: float = 0.0):
        self.xy = xy  # (n, 2) brightest first
        # stars may lie this far outside the frame (px): rate-tracked frames, where a star whose
        # trail is cut by the edge is placed at its mid-exposure position (see .trails)
        self.outer_px = float(outer_px)
        self.prior_sip = prior_sip  # (A, B) of a known distortion, or None
        self.weights = np.ones(len(xy)) if weights is None else weights  # fit weights, median ~1
        self.ny, self.nx = shape
        self.scale_deg = scale_deg
        self.parity = parity
        self.centre_px = np.array([(self.nx - 1) / 2.0, (self.ny - 1) / 2.0])
        self.tree = cKDTree(xy) if len(xy) else None

    def z(self, n=None):
        """Image positions as complex numbers with the sky's handedness (x mirrored for parity +1)."""
        xy = self.xy[:n]
        return (-self.parity * xy[:, 0]) + 1j * xy[:, 1]

    def to_xy(self, z):
        return np.stack([-self.parity * z.real, z.imag], -1)

    @property
    def width_px(self):
        return float(min(self.nx, self.ny))

    @property
    def radius_deg(self):
        return (0.5 * np.hypot(self.nx, self.ny) + self.outer_px) * self.scale_deg


def _similarity(z, w):
    """Least-squares w = a z + b (complex) from matched points."""
    zc, wc = z - z.mean(), w - w.mean()
    a = np.sum(np.conj(zc) * wc) / np.sum(np.abs(zc) ** 2)
    return a, w.mean() - a * z.mean()


def _match(pred_xy, fld: _Field, radius_px: float):
    """One-to-one matches of predicted star pixels to sources: (star idx, source idx, dist)."""
    if fld.tree is None or len(pred_xy) == 0:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0)
    d, j = fld.tree.query(pred_xy, distance_upper_bound=radius_px)
    i = np.flatnonzero(np.isfinite(d))
    d, j = d[i], j[i]
    order = np.argsort(d, kind="stable")
    i, j, d = i[order], j[order], d[order]
    _, first = np.unique(j, return_index=True)
    keep = np.sort(first)
    return i[keep], j[keep], d[keep]


def _inside(xy, fld: _Field, margin: float = 0.0):
    margin = margin - fld.outer_px
    return ((xy[:, 0] > -0.5 + margin) & (xy[:, 0] < fld.nx - 0.5 - margin)
            & (xy[:, 1] > -0.5 + margin) & (xy[:, 1] < fld.ny - 0.5 - margin))


def _log10_false_alarm(k: int, m: int, n_src: int, radius_px: float, fld: _Field) -> float:
    """log10 P(>= k of m catalog stars find one of n_src random sources within radius)."""
    if k <= 0 or m <= 0:
        return 0.0
    area = (fld.nx + 2 * fld.outer_px) * (fld.ny + 2 * fld.outer_px)
    p0 = min(n_src * np.pi * radius_px ** 2 / area, 0.999)
    lsf = binom.logsf(k - 1, m, p0)
    if not np.isfinite(lsf):  # underflow: the first term of the tail dominates
        lsf = binom.logpmf(k, m, p0)
    return float(lsf / np.log(10.0))


def _predict_linear(fit: PlateFit, ra, dec, fld: _Field):
    """Pixels of (ra, dec) through the linear part of a fit (fast, for matching)."""
    xi, eta = project(ra, dec, *fit.crval)
    uv = np.linalg.solve(fit.cd, np.stack([xi, eta]))
    return uv.T + np.asarray(fit.crpix0)


def _predict(fit: PlateFit, ra, dec, fld: _Field):
    if fit.sip_order < 2:
        return _predict_linear(fit, ra, dec, fld)
    x, y = fit.wcs.all_world2pix(ra, dec, 0, tolerance=1e-6, maxiter=50, quiet=True)
    return np.stack([x, y], -1)


def _max_order(n: int, cfg: SolveConfig, coverage: float = 1.0) -> int:
    """Highest order allowed by the star count (3 more stars than coefficients up to order 3, 3
    stars per coefficient above) and by how much of
    the frame the stars cover (polynomials extrapolate badly: < 25 % -> 1, < 50 % -> 2)."""
    order = 1
    while order < cfg.max_order and n >= (n_terms(order + 1) + 3 if order < 3 else 3 * n_terms(order + 1)):
        order += 1
    cap = 1 if coverage < 0.25 else 2 if coverage < 0.5 else cfg.max_order
    return min(order, cap)


def _coverage(xy: np.ndarray, fld: _Field) -> float:
    """Fraction of the frame inside the convex hull of the stars."""
    from scipy.spatial import ConvexHull, QhullError

    if len(xy) < 3:
        return 0.0
    try:
        return float(ConvexHull(xy).volume / (fld.nx * fld.ny))
    except QhullError:
        return 0.0


def _refine(ref, fld: _Field, crval, pairs, cfg: SolveConfig, final: bool):
    """Iterate match -> fit -> clip from initial star/source pairs; returns (fit, i_star, j_src, order)."""
    ra, dec = np.asarray(ref["ra"], float), np.asarray(ref["dec"], float)
    i, j = pairs
    fit = None
    radius = cfg.match_radius_px
    for it in range(6):
        if len(i) < 4:
            return None
        cover = _coverage(fld.xy[j], fld)
        top = _max_order(len(i), cfg, cover) if (final and it >= 2) else min(_max_order(len(i), cfg, cover),
                                                                              1 + (it >= 1))
        fit = _best_order(fld.xy[j], ra[i], dec[i], fld, crval, top, radial=final and it >= 2, w=fld.weights[j])
        if fit is None:
            return None
        crval = fit.crval
        pred = _predict(fit, ra, dec, fld)
        inside = np.flatnonzero(_inside(pred, fld, margin=-radius))
        resid = _resid_px(fit)
        sig = np.sqrt(np.median(resid ** 2) / 1.386) if len(resid) else radius
        radius = float(np.clip(cfg.clip_sigma * sig, 1.0, cfg.match_radius_px))
        ii, jj, _ = _match(pred[inside], fld, radius)
        i_new, j_new = inside[ii], jj
        if len(i_new) == len(i) and np.array_equal(np.sort(i_new), np.sort(i)) and it >= 2:
            i, j = i_new, j_new
            break
        i, j = i_new, j_new
    if len(i) < 4:
        return None
    cover = _coverage(fld.xy[j], fld)
    fit = _best_order(fld.xy[j], ra[i], dec[i], fld, crval, _max_order(len(i), cfg, cover) if final else 2,
                      radial=final, w=fld.weights[j])
    if fit is None:
        return None
    # final sigma clip on the residual norm in units of each star's centroid error
    for _ in range(5):
        # leave-one-out residuals: a star is judged by the plate fitted without it (a flexible
        # plate bends to an outlier, most at the frame edge); residuals under CLIP_FLOOR_PX are
        # never outliers (catalog and centroid systematics reach that)
        r_px = _loo_px(fit)
        z = r_px * np.sqrt(fld.weights[j])
        sig = np.sqrt(np.median(z ** 2) / 1.386)
        keep = (z <= max(cfg.clip_sigma * sig, 1e-6)) | (r_px <= CLIP_FLOOR_PX)
        if keep.all() or keep.sum() < 4:
            break
        refit = _best_order(fld.xy[j[keep]], ra[i[keep]], dec[i[keep]], fld, fit.crval,
                            _max_order(int(keep.sum()), cfg, cover) if final else 2, radial=final,
                            w=fld.weights[j[keep]])
        if refit is None:
            break
        i, j, fit = i[keep], j[keep], refit
    return fit, i, j, radius


def _best_order(xy, ra, dec, fld: _Field, crval, top: int, radial: bool = True, w=None) -> PlateFit:
    """The plate model chosen on the leave-one-out error (:func:`_parsimonious`) among polynomial
    orders 1..top and, if ``radial`` (final stage), orders 1 and 2 plus a radial cubic (one parameter:
    refractor distortion, which sparse fields cannot afford as a full order-3 polynomial) and a
    linear plate on a known distortion (``SolveConfig.distortion``)."""
    fits = []
    for order in range(1, max(top, 1) + 1):
        for rad in ((False, True) if radial and order <= 2 else (False,)):
            if len(xy) < n_terms(order) + 3 + rad:
                continue
            fits.append(fit_tan_sip(xy[:, 0], xy[:, 1], ra, dec, order, fld.centre_px, crval, radial=rad, weights=w))
    best = _parsimonious(fits)
    if radial and fld.prior_sip is not None and n_terms(1) + 3 <= len(xy) < PRIOR_MAX_STARS:
        # known distortion + linear plate, for sparse frames only, and it must beat every model
        # of the frame's own: which frame lent the distortion depends on the processing order
        # (serial or parallel), a frame's own plate does not
        f = fit_tan_sip(xy[:, 0], xy[:, 1], ra, dec, 1, fld.centre_px, crval, weights=w, prior_sip=fld.prior_sip)
        if best is None or f.press() < min(g.press() for g in fits):
            best = f
    return best


def _parsimonious(fits: list) -> PlateFit | None:
    """The plate with the fewest parameters whose held-out error (PRESS) is not significantly
    above the smallest one: the one-standard-error rule of cross-validation, on the per-star
    differences of the leave-one-out squared residuals (paired: same stars). Plain "smallest
    PRESS" picks a 12- or 30-term polynomial on the noise of a few stars, which then
    extrapolates badly into the corners."""
    if not fits:
        return None
    best = min(fits, key=lambda f: f.press())
    n = best.n
    for f in sorted(fits, key=lambda f: f.n_params):
        if f is best:
            return f
        d = f.loo_w_deg2 - best.loo_w_deg2
        # the tolerance settles near-identical plates (rounding differs between BLAS builds and
        # thread counts) always the same way: the simpler one
        if np.mean(d) <= np.std(d, ddof=1) / np.sqrt(n) + 1e-9 * best.press():
            return f
    return best


def _resid_px(fit: PlateFit) -> np.ndarray:
    """Residual norm (px) of the fitted stars, through the inverse of CD (local pixel units)."""
    return np.hypot(*np.linalg.solve(fit.cd, np.stack([fit.resid_xi_deg, fit.resid_eta_deg])))


def _loo_px(fit: PlateFit) -> np.ndarray:
    """Leave-one-out residual norm (px) of the fitted stars (each against the plate without it)."""
    return np.hypot(*np.linalg.solve(fit.cd, np.stack([fit.loo_xi_deg, fit.loo_eta_deg])))


class _Attempt:
    """Quad matching around one sky position (the hint, or a blind tile)."""

    def __init__(self, fld: _Field, ref: Table, ra0: float, dec0: float, search_radius_deg: float,
                 scale_tol: float, cfg: SolveConfig, cache: dict | None = None):
        self.fld, self.ref, self.cfg = fld, ref, cfg
        self.cache = {} if cache is None else cache
        self.ra0, self.dec0 = ra0, dec0
        self.scale_tol = scale_tol
        self.search_radius_deg = search_radius_deg
        self.ra, self.dec = np.asarray(ref["ra"], float), np.asarray(ref["dec"], float)
        self.mag = np.asarray(ref["mag"], float)
        xi, eta = project(self.ra, self.dec, ra0, dec0)
        self.w_all = xi + 1j * eta
        self.n_hypotheses = 0
        self.best_note = (0, "")

    def note(self, k: int, text: str):
        """Remember why the best rejected candidate was rejected (for the failure reason)."""
        if k > self.best_note[0]:
            self.best_note = (k, text)

    def _catalog_subset(self, n_img: int, d_max_deg: float):
        """Density-matched catalog stars (brightest per cell), indices into ref."""
        fld = self.fld
        area_img = fld.nx * fld.ny * fld.scale_deg ** 2
        cell = fld.width_px * fld.scale_deg / 3.0
        per_cell = max(2, int(np.ceil(1.5 * n_img / area_img * cell ** 2)))
        w = self.w_all
        ok = np.isfinite(w) & (np.abs(w) <= self.search_radius_deg + fld.radius_deg)
        idx = np.flatnonzero(ok)
        cx = np.floor(w[idx].real / cell).astype(np.int64)
        cy = np.floor(w[idx].imag / cell).astype(np.int64)
        key = (cx + 10000) * 20000 + (cy + 10000)
        order = np.lexsort((self.mag[idx], key))
        k_sorted = key[order]
        start = np.searchsorted(k_sorted, k_sorted, side="left")
        rank = np.arange(len(order)) - start
        chosen = idx[order[rank < per_cell]]
        return np.sort(chosen)  # ref is brightest first, so sorting indices keeps brightness order

    def hypotheses(self, n_img: int):
        fld, cfg = self.fld, self.cfg
        z = fld.z(n_img)
        w_px = fld.width_px
        d_max_px = w_px * min(0.7, 3.0 / np.sqrt(n_img))
        d_min_px = 0.08 * w_px
        img_quads = build_quads(z, d_min_px, d_max_px, n_inner=4)
        s = fld.scale_deg
        lo, hi = s * (1 - self.scale_tol), s * (1 + self.scale_tol)
        key = (self.ra0, self.dec0, self.scale_tol, n_img)
        if key not in self.cache:  # catalog quads do not depend on the parity tried
            cat = self._catalog_subset(n_img, d_max_px * hi)
            wc = self.w_all[cat]
            self.cache[key] = cat, QuadIndex(wc, build_quads(wc, d_min_px * lo, d_max_px * hi, n_inner=5))
        cat, index = self.cache[key]
        wc = index.z
        iq, rq, _ = index.matches(z, img_quads, cfg.code_tol)
        if len(iq) == 0:
            return
        scale = np.abs(wc[rq[:, 1]] - wc[rq[:, 0]]) / np.abs(z[iq[:, 1]] - z[iq[:, 0]])
        ok = (scale >= lo) & (scale <= hi)
        for a, b in zip(iq[ok], rq[ok]):
            yield a, cat[b]

    def verify(self, img_quad, cat_quad):
        """Try one correspondence; returns (fit, i_star, j_src, log10_fa) or None."""
        fld, cfg = self.fld, self.cfg
        self.n_hypotheses += 1
        z_all = fld.z()
        a, b = _similarity(z_all[img_quad], self.w_all[cat_quad])
        w_c = a * complex(-fld.parity * fld.centre_px[0], fld.centre_px[1]) + b
        ra_c, dec_c = deproject(w_c.real, w_c.imag, self.ra0, self.dec0)
        xi, eta = project(self.ra, self.dec, float(ra_c), float(dec_c))
        w_new = xi + 1j * eta
        a, b = _similarity(z_all[img_quad], w_new[cat_quad])
        pred = fld.to_xy((w_new - b) / a)
        good = np.isfinite(pred[:, 0])
        inside = np.flatnonzero(good & _inside(np.where(good[:, None], pred, -1e9), fld))
        inside = np.setdiff1d(inside, cat_quad)
        m = len(inside)
        if m + len(cat_quad) < cfg.min_matches:
            return None
        r1 = max(cfg.match_radius_px, 0.004 * max(fld.nx, fld.ny))
        ii, jj, _ = _match(pred[inside], fld, r1)
        k = len(ii)
        if k < cfg.min_matches - 4 or _log10_false_alarm(k, m, len(fld.xy), r1, fld) > -3.0:
            return None
        i0 = np.concatenate([inside[ii], cat_quad])
        j0 = np.concatenate([jj, img_quad])
        out = _refine(self.ref, fld, (float(ra_c), float(dec_c)), (i0, j0), cfg, final=False)
        if out is None:
            return None
        fit, i, j, radius = out
        pred = _predict(fit, self.ra, self.dec, fld)
        inside = np.flatnonzero(_inside(pred, fld))
        rf = float(np.clip(radius, 1.0, cfg.match_radius_px))
        ii, jj, _ = _match(pred[inside], fld, rf)
        lfa = _log10_false_alarm(len(ii), len(inside), len(fld.xy), rf, fld)
        return fit, i, j, lfa, len(ii)


def _fail(reason, **kw) -> PlateSolution:
    return PlateSolution(accepted=False, reason=reason, **kw)


def solve(frame, sources: Table, catalog=None, **config) -> PlateSolution:
    """Plate-solve one frame from its detected sources.

    Parameters
    ----------
    frame : aposos.model.Frame
        Uses ``meta.pointing_ra_deg/dec_deg`` (hint), ``meta.t_mid`` (catalog epoch),
        ``meta.tracking`` (points or streaks are stars), ``meta.station``/``binning`` (pixel
        scale and parity from the station config) and the image shape.
    sources : astropy Table
        Sources table of :func:`aposos.detect.detect` (``x, y`` 0-based px; ``flux`` orders
        them; ``kind`` and ``flags`` are used when present).
    catalog : aposos.catalog.StarCatalog, optional
        Default: the bundled Gaia DR3 G < 10 (:func:`aposos.catalog.gaia`).
    **config
        Any field of :class:`SolveConfig`.

    Returns
    -------
    PlateSolution
        ``accepted`` True with the WCS and quality figures, or False with ``reason`` (and no WCS).
        Bad configuration (unknown scale, bad parity) raises :class:`AposError`.
    """
    from .distortion import DistortionCache

    if isinstance(config.get("distortion"), DistortionCache):  # use, then feed, the night's distortion
        cache = config["distortion"]
        sol = solve(frame, sources, catalog, **{**config, "distortion": cache.get(frame)})
        cache.offer(frame, sol)
        return sol
    t0 = time.perf_counter()
    unknown = set(config) - set(SolveConfig.__dataclass_fields__)
    if unknown:
        raise AposError(f"unknown solve option(s): {', '.join(sorted(unknown))}", key=sorted(unknown)[0])
    cfg = SolveConfig(**config)
    scale_arcsec_px, parity = _station_defaults(frame, cfg)
    meta = frame.meta
    shape = tuple(frame.shape)
    hint = (meta.pointing_ra_deg, meta.pointing_dec_deg)
    base = dict(hint_ra_deg=np.nan if hint[0] is None else float(hint[0]),
                hint_dec_deg=np.nan if hint[1] is None else float(hint[1]), shape=shape)
    trail, outer_px = None, 0.0
    if meta.tracking == "rate":
        trail = trails.trail_model(sources, meta, scale_arcsec_px)
        sources = trails.star_view(sources, trail, shape)  # cut trails: star at mid-exposure
        outer_px = 0.0 if trail is None else 0.5 * trail.length_px
    idx = star_sources(sources, meta.tracking, cfg, trail)
    if len(idx) < cfg.min_matches:
        return _fail(f"too few usable star sources ({len(idx)} < {cfg.min_matches}): clouds, focus or exposure?",
                     time_s=time.perf_counter() - t0, **base)
    if hint[0] is None or hint[1] is None or not np.all(np.isfinite(hint)):
        return _fail("no pointing hint in the header (blind all-sky solving is not supported)",
                     time_s=time.perf_counter() - t0, **base)
    xy = np.stack([np.asarray(sources["x"], float)[idx], np.asarray(sources["y"], float)[idx]], -1)
    weights = fit_weights(sources, idx)
    prior = _prior_sip(cfg.distortion, shape)
    parities = (parity,) if parity else (1, -1)
    epoch = meta.t_mid
    n_hyp = 0
    best_fail = "no asterism of the image matched the catalog around the hint"
    max_catalog_seen = 0
    best_note = (0, "")
    blind_note = ""

    plan = [("hint", float(hint[0]), float(hint[1]), cfg.hint_radius_deg, cfg.scale_tolerance)]
    if cfg.scale_search:
        plan.append(("scale-search", float(hint[0]), float(hint[1]), cfg.hint_radius_deg, 0.35))
    if cfg.blind:
        plan += [("blind", ra, dec, r, cfg.scale_tolerance)
                 for ra, dec, r in _blind_tiles(float(hint[0]), float(hint[1]), cfg.hint_radius_deg,
                                                cfg.blind_radius_deg)]
    ref_cache, quad_cache = {}, {}
    t_blind = None
    for method, ra0, dec0, search_r, tol in plan:
        if method == "blind":
            t_blind = t_blind or time.perf_counter()
            if time.perf_counter() - t_blind > cfg.blind_time_limit_s:
                blind_note = f"; blind search stopped after {cfg.blind_time_limit_s:g} s"
                break
        for par in parities:
            fld = _Field(xy, shape, scale_arcsec_px / 3600.0, par, weights, prior, outer_px)
            key = (ra0, dec0)
            if key not in ref_cache:
                ref_cache[key] = _reference(catalog, ra0, dec0, search_r + fld.radius_deg * (1 + tol) + 0.2,
                                            epoch, cfg, fld)
            ref = ref_cache[key]
            max_catalog_seen = max(max_catalog_seen, len(ref))
            if len(ref) < cfg.min_matches:
                continue
            attempt = _Attempt(fld, ref, ra0, dec0, search_r, tol, cfg, quad_cache)
            levels = cfg.levels[:2] if method == "blind" else cfg.levels
            def finish(fit, i, j, ref=ref, fld=fld):
                return _final_fit(fit, ref, i, j, catalog, epoch, cfg, fld)

            result = _search(attempt, cfg, n_hyp, levels, finish)
            n_hyp += attempt.n_hypotheses
            if attempt.best_note[0] > best_note[0]:
                best_note = attempt.best_note
            if result is not None:
                fit, ref, i, j, lfa_total = result
                fit, i, j = _clean_fit(fit, ref, i, j, flags_of(sources, idx), cfg, fld)
                return _solution(fit, ref, idx, i, j, fld, lfa_total, method, n_hyp, scale_arcsec_px, base,
                                 time.perf_counter() - t0)
    fb_note = ""
    if cfg.fallback == "astrometry.net":
        out, fb_note = _anet_fallback(xy, shape, scale_arcsec_px, parities, weights, catalog, epoch, cfg)
        if out is not None:
            fit, ref, i, j, lfa, fld = out
            fit, i, j = _clean_fit(fit, ref, i, j, flags_of(sources, idx), cfg, fld)
            return _solution(fit, ref, idx, i, j, fld, lfa, "astrometry.net", n_hyp, scale_arcsec_px, base,
                             time.perf_counter() - t0)
    elif cfg.fallback is not None:
        raise AposError(f"unknown fallback {cfg.fallback!r} (only 'astrometry.net')", key="fallback")
    blind_note += fb_note
    if max_catalog_seen < cfg.min_matches:
        reason = (f"catalog has {max_catalog_seen} usable stars around the hint (< {cfg.min_matches}): "
                  "field too sparse for this catalog")
    elif best_note[1]:
        reason = f"no acceptable solution ({n_hyp} hypotheses tested); {best_note[1]}{blind_note}"
    else:
        reason = f"{best_fail} ({n_hyp} hypotheses tested, none significant){blind_note}"
    return _fail(reason, n_hypotheses=n_hyp, time_s=time.perf_counter() - t0, **base)


def _anet_fallback(xy, shape, scale_arcsec_px, parities, weights, catalog, epoch, cfg: SolveConfig):
    """astrometry.net's proposal, verified and refitted like our own; (result or None, note)."""
    from . import anet

    why = anet.available()
    if why:
        return None, f"; astrometry.net fallback unavailable: {why}"
    wcs = anet.propose_wcs(xy, scale_arcsec_px)
    if wcs is None:
        return None, "; astrometry.net found no solution either"
    fld = _Field(xy, shape, scale_arcsec_px / 3600.0, 1 if np.linalg.det(wcs.pixel_scale_matrix) < 0 else -1,
                 weights)
    if fld.parity not in parities:
        return None, "; astrometry.net proposed the other parity (rejected)"
    ra_c, dec_c = wcs.all_pix2world(fld.centre_px[0], fld.centre_px[1], 0)
    ref = _reference(catalog, float(ra_c), float(dec_c), fld.radius_deg * 1.3 + 0.1, epoch, cfg, fld)
    if len(ref) < cfg.min_matches:
        return None, "; astrometry.net proposed a field with too few catalog stars"
    ra, dec = np.asarray(ref["ra"], float), np.asarray(ref["dec"], float)
    px, py = wcs.all_world2pix(ra, dec, 0, quiet=True)
    pred = np.stack([px, py], -1)
    ok = np.isfinite(pred[:, 0])
    inside = np.flatnonzero(ok & _inside(np.where(ok[:, None], pred, -1e9), fld))
    ii, jj, _ = _match(pred[inside], fld, cfg.match_radius_px)
    out = _refine(ref, fld, (float(ra_c), float(dec_c)), (inside[ii], jj), cfg, final=True)
    if out is None:
        return None, "; astrometry.net proposal did not refit"
    fit, i, j, radius = out
    pred = _predict(fit, ra, dec, fld)
    inside = np.flatnonzero(_inside(pred, fld))
    rf = float(np.clip(radius, 1.0, cfg.match_radius_px))
    ii, jj, _ = _match(pred[inside], fld, rf)
    lfa = _log10_false_alarm(len(ii), len(inside), len(fld.xy), rf, fld) + np.log10(2.0)
    rms = float(np.sqrt(np.mean(_resid_px(fit) ** 2)))
    if len(i) < cfg.min_matches or lfa > cfg.log10_false_alarm or rms > cfg.max_rms_px:
        return None, (f"; astrometry.net proposal rejected: {len(i)} stars, rms {rms:.2f} px, "
                      f"log10 false alarm {lfa:.1f}")
    return (fit, ref, i, j, lfa, fld), ""


def _reference(catalog, ra0, dec0, radius_deg, epoch, cfg: SolveConfig, fld: _Field) -> Table:
    ref = reference_stars(catalog, ra0, dec0, radius_deg, epoch=epoch, mag_limit=cfg.mag_limit)
    if len(ref) > 1:
        keep = unblended(np.asarray(ref["ra"]), np.asarray(ref["dec"]), np.asarray(ref["mag"]),
                         3.0 * fld.scale_deg, (ra0, dec0))
        ref = ref[keep]
    return ref


def _final_fit(fit, ref, i, j, catalog, epoch, cfg: SolveConfig, fld: _Field):
    """Final refinement (full model choice) of an accepted hypothesis, against a fresh catalog
    cone centred on the solved field (the search cone may clip the frame, e.g. a blind tile).
    Returns (fit, ref, i, j) or None."""
    out = _polish(fit, ref, i, j, catalog, epoch, cfg, fld)
    if out is not None:
        return out
    out = _refine(ref, fld, fit.crval, (i, j), cfg, final=True)
    return None if out is None else (out[0], ref, out[1], out[2])


def _polish(fit, ref, i, j, catalog, epoch, cfg: SolveConfig, fld: _Field):
    """Refit on a catalog cone centred on the field; None if it matches fewer stars."""
    ra_c, dec_c = fit.wcs.all_pix2world(fld.centre_px[0], fld.centre_px[1], 0)
    ref2 = _reference(catalog, float(ra_c), float(dec_c), fld.radius_deg * 1.05 + 0.1, epoch, cfg, fld)
    ra2, dec2 = np.asarray(ref2["ra"], float), np.asarray(ref2["dec"], float)
    pred = _predict(fit, ra2, dec2, fld)
    inside = np.flatnonzero(np.isfinite(pred[:, 0]) & _inside(np.nan_to_num(pred, nan=-1e9), fld))
    rms = float(np.sqrt(np.mean(_resid_px(fit) ** 2)))
    ii, jj, _ = _match(pred[inside], fld, float(np.clip(4 * rms, 1.0, cfg.match_radius_px)))
    if len(ii) < len(i):
        return None
    out = _refine(ref2, fld, fit.crval, (inside[ii], jj), cfg, final=True)
    if out is None or len(out[1]) < len(i):
        return None
    return out[0], ref2, out[1], out[2]


def _prior_sip(distortion, shape):
    """(A, B) SIP arrays of a known distortion for frames of ``shape``, or None."""
    if distortion is None:
        return None
    from astropy.wcs import WCS

    wcs = distortion if isinstance(distortion, WCS) else getattr(distortion, "wcs", None)
    sip = getattr(wcs, "sip", None)
    if sip is None:
        raise AposError("distortion= needs a WCS (or PlateSolution) with SIP polynomials", key="distortion")
    ny, nx = shape
    if abs(wcs.wcs.crpix[0] - (nx + 1) / 2.0) > 0.5 or abs(wcs.wcs.crpix[1] - (ny + 1) / 2.0) > 0.5:
        raise AposError(f"distortion= has CRPIX {tuple(wcs.wcs.crpix)} but this {nx}x{ny} frame's centre is "
                        f"{((nx + 1) / 2.0, (ny + 1) / 2.0)} (different shape or binning?)", key="distortion")
    return np.array(sip.a, float), np.array(sip.b, float)


def fit_weights(sources: Table, idx: np.ndarray, floor_px: float = 0.02) -> np.ndarray:
    """Relative fit weights 1 / (sigma^2 + floor^2) from the centroid errors ``x_err, y_err``
    (px; ``floor_px`` stands for catalog and systematic errors), normalised to median 1."""
    if "x_err" not in sources.colnames or "y_err" not in sources.colnames:
        return np.ones(len(idx))
    sig2 = 0.5 * (np.asarray(sources["x_err"], float)[idx] ** 2 + np.asarray(sources["y_err"], float)[idx] ** 2)
    sig2 = np.where(np.isfinite(sig2), sig2, np.nanmedian(sig2) if np.isfinite(sig2).any() else 1.0)
    w = 1.0 / (sig2 + floor_px ** 2)
    return w / np.median(w)


def flags_of(sources: Table, idx: np.ndarray) -> np.ndarray:
    if "flags" not in sources.colnames:
        return np.zeros(len(idx), np.int64)
    return np.asarray(sources["flags"]).astype(np.int64)[idx]


def _clean_fit(fit, ref, i, j, flags, cfg: SolveConfig, fld: _Field):
    """Refit without saturated/blended/edge stars when enough clean ones remain."""
    clean = (flags[j] & cfg.fit_flags) == 0
    if clean.all() or clean.sum() < max(cfg.min_matches, 20, len(i) // 2):
        return fit, i, j
    i, j = i[clean], j[clean]
    ra, dec = np.asarray(ref["ra"], float)[i], np.asarray(ref["dec"], float)[i]
    refit = _best_order(fld.xy[j], ra, dec, fld, fit.crval, _max_order(len(i), cfg, _coverage(fld.xy[j], fld)),
                        w=fld.weights[j])
    return (refit, i, j) if refit is not None else (fit, i, j)


def _search(attempt: _Attempt, cfg: SolveConfig, n_hyp_before: int, levels, finish):
    """Try hypotheses level by level; the first that passes the false-alarm test and, after
    ``finish`` (the final fit), the star count and RMS checks, is returned as
    (fit, ref, i_star, j_src, log10_false_alarm)."""
    rejected = 0
    for level in levels:
        n_img = min(level, len(attempt.fld.xy))
        tried = 0
        for img_quad, cat_quad in attempt.hypotheses(n_img):
            if tried >= cfg.max_hypotheses:
                break
            tried += 1
            res = attempt.verify(img_quad, cat_quad)
            if res is None:
                continue
            fit, i, j, lfa, k = res
            n_total = n_hyp_before + attempt.n_hypotheses
            lfa_total = lfa + np.log10(max(n_total, 1))
            if k < cfg.min_matches or lfa_total > cfg.log10_false_alarm:
                attempt.note(k, f"best candidate: {k} stars matched, log10 false alarm {lfa_total:.1f} "
                                f"(need >= {cfg.min_matches} stars and <= {cfg.log10_false_alarm:g})")
                continue
            out = finish(fit, i, j)
            if out is None:
                continue
            fit, ref, i, j = out
            rms = float(np.sqrt(np.mean(_resid_px(fit) ** 2)))
            if len(i) < cfg.min_matches or rms > cfg.max_rms_px:
                attempt.note(len(i), f"best candidate: {len(i)} stars, rms {rms:.2f} px (need >= {cfg.min_matches} "
                                     f"stars and rms <= {cfg.max_rms_px:g} px)")
                rejected += 1
                if rejected >= 3:  # the field is found but its plate cannot be fitted: stop here
                    return None
                continue
            return fit, ref, i, j, lfa_total
        if n_img >= len(attempt.fld.xy):
            break
    return None


def _blind_tiles(ra0, dec0, tile_r, max_r):
    """Tile centres on rings around (ra0, dec0) out to ``max_r`` (deg), each searched ``tile_r`` wide."""
    step = 1.3 * tile_r
    out = []
    n_rings = int(np.ceil(max_r / step))
    for k in range(1, n_rings + 1):
        rho = min(k * step, 180.0)
        n_az = max(6, int(np.ceil(2 * np.pi * np.sin(np.radians(rho)) / np.radians(step))))
        for az in np.linspace(0, 2 * np.pi, n_az, endpoint=False) + 0.5 * k:
            # destination point at distance rho, azimuth az
            d0, r0, rr = np.radians(dec0), np.radians(ra0), np.radians(rho)
            dec = np.arcsin(np.sin(d0) * np.cos(rr) + np.cos(d0) * np.sin(rr) * np.cos(az))
            ra = r0 + np.arctan2(np.sin(az) * np.sin(rr) * np.cos(d0), np.cos(rr) - np.sin(d0) * np.sin(dec))
            out.append((float(np.degrees(ra) % 360.0), float(np.degrees(dec)), tile_r))
    return out


def _solution(fit: PlateFit, ref, idx, i, j, fld: _Field, lfa, method, n_hyp, scale_cfg, base, dt):
    fit = fit.with_inverse()
    ra, dec = np.asarray(ref["ra"])[i], np.asarray(ref["dec"])[i]
    xy = fld.xy[j]
    pred = _predict(fit, ra, dec, fld)
    d = pred - xy
    mra, mdec = fit.wcs.all_pix2world(xy[:, 0], xy[:, 1], 0)
    dra = ((ra - mra + 180.0) % 360.0 - 180.0) * np.cos(np.radians(dec)) * 3600.0
    ddec = (dec - mdec) * 3600.0
    matches = Table({"source_index": idx[j], "x": xy[:, 0], "y": xy[:, 1], "ra": ra, "dec": dec,
                     "mag": np.asarray(ref["mag"])[i], "catalog_id": np.asarray(ref["source_id"])[i],
                     "dx_px": d[:, 0], "dy_px": d[:, 1], "dra_arcsec": dra, "ddec_arcsec": ddec})
    cd = fit.cd
    ra_c, dec_c = fit.wcs.all_pix2world(fld.centre_px[0], fld.centre_px[1], 0)
    scale = float(np.sqrt(abs(np.linalg.det(cd))) * 3600.0)
    rms_px = float(np.sqrt(np.mean(np.sum(d ** 2, axis=1))))
    rms_arcsec = float(np.sqrt(np.mean(dra ** 2 + ddec ** 2)))
    offset = float(separation_deg(base["hint_ra_deg"], base["hint_dec_deg"], ra_c, dec_c))
    reason = (f"ok: {len(i)} stars, rms {rms_px:.3f} px, {fit.model}, "
              f"log10 false alarm {lfa:.1f} ({method})")
    ratio = scale / scale_cfg
    if abs(ratio - 1) > 0.05:
        reason += f"; pixel scale {scale:.3f}\"/px is {100 * (ratio - 1):+.1f}% off the configuration"
    return PlateSolution(
        accepted=True, reason=reason, wcs=fit.wcs, matches=matches, n_matched=len(i), order=max(fit.sip_order, 1),
        model=fit.model,
        rms_px=rms_px, rms_arcsec=rms_arcsec, ra_deg=float(ra_c), dec_deg=float(dec_c), scale_arcsec_px=scale,
        scale_ratio=float(ratio), rotation_deg=float(np.degrees(np.arctan2(cd[0, 1], cd[1, 1])) % 360.0),
        parity=1 if np.linalg.det(cd) < 0 else -1, pointing_offset_deg=offset, log10_false_alarm=float(lfa),
        method=method, n_hypotheses=n_hyp, time_s=dt, fit=fit, **base)
