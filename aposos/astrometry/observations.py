"""Star-relative RA/Dec, UTC time tags and uncertainties of the non-stellar sources of a frame.

Observations table (one row per measured position; the shared contract):

``time``          UTC astropy Time of the position.
``ra_deg, dec_deg``  star-relative ICRF direction (the plate maps pixels to catalog positions,
                  so annual aberration is removed: see ``shared/docs/astro-notes.md``).
``sigma_arcsec``  1-sigma per-axis uncertainty: centroid error (``x_err, y_err`` or
                  ``end_sigma_px``) times the local scale, combined in quadrature with the plate
                  model's error at that pixel.
``source_index``  row of the Sources table.
``kind``          'point' | 'streak_end' | 'streak_centre' | 'streak_point'.
``end``           0 / 1 for the two streak ends, -1 otherwise.
``x, y``          px, 0-based.
``mag``           calibrated against the catalog stars of the frame (catalog band, e.g. Gaia G)
                  from ``flux``; NaN when no flux or no zero point.
``station``, ``frame``  station name and frame path/id.
``star_like``     (extra) True when the source has the morphology of the frame's stars (an
                  unmatched point in a sidereal frame: maybe a star fainter than the catalog,
                  maybe a slow object); linking across frames decides.
``extrapolated``  (extra) True outside the convex hull of the plate's stars: the plate model is
                  extrapolated there and ``sigma_arcsec`` may be optimistic (sparse fields).

Time tags. Points: mid-exposure. Streak ends: the row with ``end=0`` (``x0, y0``) is tagged
``t_start`` and ``end=1`` (``x1, y1``) ``t_end`` -- *assuming* end 0 came first; one frame cannot
tell, so linking may swap the two times of a pair. Streak centre: mid-exposure (independent of
the direction; exact for a constant angular rate). ``streak_points`` interior points are
interpolated along the streak with linearly interpolated times (same direction assumption).

In rate-tracked frames the stars are trails: unmatched sources with the star trails' direction
and length (streaks, or elongated points when the trails are shorter than the detector's
streaks; :func:`.trails.trail_like`) are faint stars and are not reported. The target (a point)
is.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from astropy.table import Table
from astropy.time import TimeDelta

from ..errors import AposError
from . import flags as flagbits
from . import trails

OBSERVATION_COLUMNS = ("time", "ra_deg", "dec_deg", "sigma_arcsec", "source_index", "kind", "end", "x", "y",
                       "mag", "station", "frame", "star_like", "extrapolated")

DEFAULT_CENTROID_SIGMA_PX = 0.5


def measure(frame, sources: Table, solution, *, streak_points: int = 0, include_star_like: bool = True,
            reject_flags: int = flagbits.NOT_A_CANDIDATE) -> Table:
    """Observations (see the module docstring) of every non-stellar candidate in ``sources``.

    Candidates are sources not matched to catalog stars by ``solution`` and without artefact
    flags (``flags & reject_flags``; default: sharp, masked, star trail, failed fit -- see
    :mod:`.flags`). A streak flagged EDGE (or with an end within 2 px of the border) gives only
    its inner end: the other end and the centre are not shutter instants. Raises
    :class:`AposError` when the solution was not accepted (no positions from a guessed plate).
    """
    if not getattr(solution, "accepted", False):
        raise AposError(f"frame {frame.meta.path!r} has no accepted plate solution: {getattr(solution, 'reason', '?')}")
    meta = frame.meta
    n = len(sources)
    cand = _candidates(sources, solution, meta.tracking, reject_flags, meta, _pixels(frame))
    rows = _rows(sources, cand, meta.tracking, streak_points, include_star_like, frame.shape)
    x, y = rows["x"], rows["y"]
    t = Table()
    dt = (meta.t_mid - meta.t_start).sec, (meta.t_end - meta.t_start).sec
    offs = np.where(rows["tfrac"] < 0, dt[0], rows["tfrac"] * dt[1])
    t["time"] = meta.t_start.utc + TimeDelta(offs, format="sec")
    if len(x):
        ra, dec = solution.pixel_to_world(x, y)
    else:
        ra, dec = np.zeros(0), np.zeros(0)
    t["ra_deg"] = np.asarray(ra, float)
    t["dec_deg"] = np.asarray(dec, float)
    plate = solution.plate_sigma_arcsec(x, y) if len(x) else np.zeros(0)
    t["sigma_arcsec"] = np.hypot(rows["sigma_px"] * solution.scale_arcsec_px, plate)
    t["source_index"] = rows["source_index"]
    t["kind"] = rows["kind"].astype("<U13")
    t["end"] = rows["end"]
    t["x"], t["y"] = x, y
    t["mag"] = _magnitudes(sources, solution)[rows["source_index"]] if n else np.zeros(0)
    t["station"] = np.full(len(x), meta.station or "", dtype=object).astype(str)
    t["frame"] = np.full(len(x), meta.path or "", dtype=object).astype(str)
    t["star_like"] = rows["star_like"]
    t["extrapolated"] = ~solution.inside_star_hull(x, y) if len(x) else np.zeros(0, bool)
    for col, unit in (("ra_deg", "deg"), ("dec_deg", "deg"), ("sigma_arcsec", "arcsec"), ("x", "pix"), ("y", "pix")):
        t[col].unit = unit
    t.meta.update(frame=meta.path, station=meta.station, plate_rms_arcsec=solution.rms_arcsec,
                  plate_n_matched=solution.n_matched)
    return t


def _pixels(frame):
    """The frame's image (None for a placeholder frame without pixels, e.g. synthetic tests)."""
    data = getattr(frame, "data", None)
    if data is None or np.ndim(data) != 2 or (np.ndim(data) == 2 and data.strides == (0, 0)):
        return None
    return data


def _col(sources, name, default=np.nan):
    if name in sources.colnames:
        return np.asarray(sources[name], float) if name != "kind" else np.asarray(sources[name]).astype(str)
    return np.full(len(sources), default)


def _candidates(sources, solution, tracking, reject_flags, meta=None, data=None) -> np.ndarray:
    n = len(sources)
    ok = np.isfinite(_col(sources, "x")) & np.isfinite(_col(sources, "y"))
    ok[np.asarray(solution.matches["source_index"], int)] = False
    if "flags" in sources.colnames:
        ok &= (np.asarray(sources["flags"]).astype(np.int64) & reject_flags) == 0
    kind = _col(sources, "kind", "point") if "kind" in sources.colnames else np.full(n, "point")
    if tracking == "rate":
        ok &= ~_star_trails(sources, solution, kind, meta, data)
    return np.flatnonzero(ok)


def _star_trails(sources, solution, kind, meta=None, data=None) -> np.ndarray:
    """Sources shaped like the frame's star trails (rate-tracked frames): streaks of the trail's
    direction and length and, for trails shorter than the detector's streaks, points elongated
    along it (:func:`.trails.trail_like`; the direction is measured on the frame, the length
    comes from the tracking rates or from the matched star trails)."""
    model = trails.trail_model(sources, meta, solution.scale_arcsec_px)
    if model is not None and not model.from_rates:  # length from the stars the plate matched
        m = np.asarray(solution.matches["source_index"], int)
        lengths = trails._length_px(sources)[m]
        if np.isfinite(lengths).sum() >= 3:
            model = replace(model, length_px=float(np.nanmedian(lengths)))
    like = trails.trail_like(sources, model)
    if model is None:
        return like
    is_streak = kind == "streak"
    length = _col(sources, "length_px")
    # pieces and collinear merges of trails: parallel streaks up to 2.5 trail lengths, or merged
    parallel = is_streak & (trails._angle_diff_deg(_col(sources, "angle_deg"), model.angle_deg)
                            <= np.maximum(model.angle_tol_deg, np.degrees(np.arctan2(2.0, np.maximum(length, 1.0)))))
    merged = (_flags(sources) & flagbits.MERGED) != 0
    like |= parallel & ((length <= 2.5 * model.length_px + 3.0) | merged)
    if data is not None:
        # short trails come out as points (and blends of a few trails as short streaks) whose
        # moments crowding and saturation bend: decide on the pixels (point PSF vs trail)
        # a trail if most of the light fits the trail templates, or if the moments already say
        # so and the pixels do not clearly say point (or the source is too faint to tell)
        test = np.flatnonzero(~is_streak | (~like & (length <= 3.0 * model.length_px + 3.0)))
        frac = trails.trail_fraction(data, _col(sources, "x")[test], _col(sources, "y")[test], model,
                                     saturation_adu=getattr(meta, "saturation_adu", None))
        faint = _col(sources, "snr")[test] < 10.0  # too faint for the pixel test to overrule the moments
        like[test] = np.where(np.isfinite(frac), (frac > 0.5) | (like[test] & ((frac > 0.25) | faint)), like[test])
    return like


def _flags(sources) -> np.ndarray:
    if "flags" in sources.colnames:
        return np.asarray(sources["flags"]).astype(np.int64)
    return np.zeros(len(sources), np.int64)


def _rows(sources, cand, tracking, streak_points, include_star_like, shape) -> dict:
    kind = _col(sources, "kind") if "kind" in sources.colnames else np.full(len(sources), "point")
    x, y = _col(sources, "x"), _col(sources, "y")
    xe, ye = _col(sources, "x_err"), _col(sources, "y_err")
    sig_c = np.sqrt(0.5 * (xe ** 2 + ye ** 2))
    sig_c = np.where(np.isfinite(sig_c), sig_c, DEFAULT_CENTROID_SIGMA_PX)
    es = _col(sources, "end_sigma_px")
    es = np.where(np.isfinite(es), es, np.maximum(sig_c, DEFAULT_CENTROID_SIGMA_PX))
    x0, y0, x1, y1 = (_col(sources, c) for c in ("x0", "y0", "x1", "y1"))
    out = {k: [] for k in ("x", "y", "sigma_px", "source_index", "kind", "end", "tfrac", "star_like")}

    def add(xs, ys, sig, i, k, end, tfrac, star_like=False):
        out["x"].append(xs)
        out["y"].append(ys)
        out["sigma_px"].append(sig)
        out["source_index"].append(i)
        out["kind"].append(k)
        out["end"].append(end)
        out["tfrac"].append(tfrac)
        out["star_like"].append(star_like)

    ny, nx = shape
    flags = np.asarray(sources["flags"]).astype(np.int64) if "flags" in sources.colnames else np.zeros(len(x), int)

    def at_edge(xe, ye):
        return xe < 2.0 or ye < 2.0 or xe > nx - 3.0 or ye > ny - 3.0

    for i in cand:
        has_ends = np.all(np.isfinite([x0[i], y0[i], x1[i], y1[i]]))
        if kind[i] == "streak" and has_ends:
            cut = (at_edge(x0[i], y0[i]), at_edge(x1[i], y1[i]))
            if (flags[i] & flagbits.EDGE) and not any(cut):
                cut = (True, True)  # flagged at the edge but we cannot tell which end: no time tags
            if not cut[0]:
                add(x0[i], y0[i], es[i], i, "streak_end", 0, 0.0)
            if not cut[1]:
                add(x1[i], y1[i], es[i], i, "streak_end", 1, 1.0)
            if any(cut):
                continue
            add(x[i], y[i], sig_c[i], i, "streak_centre", -1, -1.0)
            for f in np.arange(1, streak_points + 1) / (streak_points + 1):
                add(x0[i] + f * (x1[i] - x0[i]), y0[i] + f * (y1[i] - y0[i]),
                    es[i] * np.hypot(1 - f, f),
                    i, "streak_point", -1, f)
        else:
            star_like = tracking == "sidereal" and kind[i] == "point"
            if star_like and not include_star_like:
                continue
            add(x[i], y[i], sig_c[i], i, "point", -1, -1.0, star_like)
    return {k: np.asarray(v, dtype={"kind": "<U13", "source_index": np.int64, "end": np.int64,
                                    "star_like": bool}.get(k, float)) for k, v in out.items()}


def _magnitudes(sources, solution) -> np.ndarray:
    """Catalog-band magnitudes from ``flux`` with the frame's median zero point (NaN if none)."""
    flux = _col(sources, "flux")
    m = solution.matches
    with np.errstate(divide="ignore", invalid="ignore"):
        inst = -2.5 * np.log10(np.where(flux > 0, flux, np.nan))
    si = np.asarray(m["source_index"], int)
    zp = np.asarray(m["mag"], float) - inst[si] if len(si) else np.zeros(0)
    zp = zp[np.isfinite(zp)]
    if len(zp) == 0:
        return np.full(len(sources), np.nan)
    return inst + np.median(zp)
