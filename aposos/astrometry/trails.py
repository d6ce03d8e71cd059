"""Star trails of rate-tracked frames: which sources are stars, and where each star was at mid-exposure.

In a frame tracked on a satellite every star draws the same trail: the same direction and the
same length ``|rate| * exposure / scale`` (px), while the target is a point. The detector calls a
trail a ``streak`` only when it is longer than its ``streak_min_length_px`` (8 px by default): a
GEO tracked for 5 s at 10"/px leaves 7.5 px trails, which come out as elongated ``point`` rows.
So the star selection here works on the morphology, whatever the ``kind``:

* :func:`trail_model` -- direction (doubled-angle median of the streaks' ``angle_deg`` and the
  elongated points' ``theta_deg``) and length (from the tracking rates when the header has them,
  else from the measured trails) of the frame's star trails, with the PSF sigma across them.
* :func:`trail_like` -- mask of the sources with that direction and length (an elongated blob
  for short trails, a streak of the right length for long ones): the stars. A round point (the
  target, a hot pixel) is never trail-like.
* :func:`star_positions` -- mid-exposure star positions: the trail centre, or, for a trail cut by
  the frame edge, the inner end moved half a trail length outwards (the centroid of a cut trail
  is not the star). Recovered positions carry a larger error.

Angles are degrees from the +x axis towards +y, modulo 180 (the sign of a trail is unknown).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from astropy.table import Table

from . import flags as flagbits

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
#: error (px, per axis) given to a star position recovered from the inner end of a cut trail
RECOVERED_SIGMA_PX = 0.5
#: :func:`trail_fraction` fits the pixels where a template exceeds this fraction of its peak
SUPPORT_FRACTION = 0.02


@dataclass(frozen=True)
class TrailModel:
    """Common star trail of a rate-tracked frame.

    angle_deg : direction, deg from +x towards +y, in [-90, 90).
    length_px : end-to-end length (px) of the trail of a point source.
    sigma_px : PSF sigma across the trail (px).
    n_used : number of sources that fixed the direction.
    from_rates : True when ``length_px`` comes from the header tracking rates.
    """

    angle_deg: float
    length_px: float
    sigma_px: float
    n_used: int
    from_rates: bool

    @property
    def unit(self) -> np.ndarray:
        a = math.radians(self.angle_deg)
        return np.array([math.cos(a), math.sin(a)])

    @property
    def angle_tol_deg(self) -> float:
        """Direction tolerance (deg): 2 px at the trail end, at least 3 deg."""
        return max(3.0, math.degrees(math.atan2(2.0, max(self.length_px, 1.0))))


def _col(sources, name):
    if name in sources.colnames:
        return np.asarray(sources[name], float)
    return np.full(len(sources), np.nan)


def _kind(sources):
    if "kind" in sources.colnames:
        return np.asarray(sources["kind"]).astype(str)
    return np.full(len(sources), "point")


def _flags(sources):
    if "flags" in sources.colnames:
        return np.asarray(sources["flags"]).astype(np.int64)
    return np.zeros(len(sources), np.int64)


def _axis_angle_deg(sources) -> np.ndarray:
    """Long-axis direction of every source: ``angle_deg`` of streaks, ``theta_deg`` of points."""
    kind = _kind(sources)
    return np.where(kind == "streak", _col(sources, "angle_deg"), _col(sources, "theta_deg"))


def _angle_diff_deg(a, b):
    """|a - b| modulo 180, in [0, 90]."""
    return np.abs((np.asarray(a, float) - b + 90.0) % 180.0 - 90.0)


def _moment_length_px(sources) -> np.ndarray:
    """Trail length implied by the second moments (px): a^2 = sigma^2 + L^2/12, b = sigma."""
    a, b = _col(sources, "a"), _col(sources, "b")
    return np.sqrt(12.0 * np.clip(a ** 2 - b ** 2, 0.0, None))


def _length_px(sources) -> np.ndarray:
    kind = _kind(sources)
    return np.where(kind == "streak", _col(sources, "length_px"), _moment_length_px(sources))


def trail_model(sources: Table, meta=None, scale_arcsec_px: float | None = None,
                n_bright: int = 60) -> TrailModel | None:
    """The frame's star trail, or None when it cannot be told (too few elongated sources, or
    trails shorter than ~1.5 px: then stars are points and nothing needs doing).

    ``meta`` (FrameMeta, optional) gives ``rate_ra_arcsec_s, rate_dec_arcsec_s, exposure_s``:
    the expected length is ``hypot(rates) * exposure / scale_arcsec_px``.
    """
    n = len(sources)
    if n < 3:
        return None
    length_rates = None
    if meta is not None and scale_arcsec_px:
        rr, rd, exp = (getattr(meta, k, None) for k in ("rate_ra_arcsec_s", "rate_dec_arcsec_s", "exposure_s"))
        if rr is not None and rd is not None and exp:
            length_rates = math.hypot(rr, rd) * exp / scale_arcsec_px
            if not math.isfinite(length_rates):
                length_rates = None
    if length_rates is not None and length_rates < 1.5:
        return None
    ok = (_flags(sources) & (flagbits.NOT_A_STAR | flagbits.SATURATED | flagbits.BLENDED | flagbits.EDGE)) == 0
    ang = _axis_angle_deg(sources)
    elong = _col(sources, "elongation")
    kind = _kind(sources)
    ok &= np.isfinite(ang) & ((kind == "streak") | (elong > 1.4))
    idx = np.flatnonzero(ok)
    if len(idx) < 3:
        return None
    bright = np.nan_to_num(_col(sources, "flux")[idx], nan=-np.inf)
    idx = idx[np.argsort(-bright, kind="stable")[:n_bright]]
    two = np.radians(2.0 * ang[idx])
    a0 = 0.5 * math.degrees(math.atan2(np.median(np.sin(two)), np.median(np.cos(two))))
    near = idx[_angle_diff_deg(ang[idx], a0) < 10.0]
    if len(near) < 3:
        return None
    two = np.radians(2.0 * ang[near])
    a0 = 0.5 * math.degrees(math.atan2(np.mean(np.sin(two)), np.mean(np.cos(two))))
    a0 = (a0 + 90.0) % 180.0 - 90.0
    sigma = float(np.nanmedian(_col(sources, "b")[near])) if "b" in sources.colnames else 1.0
    if not np.isfinite(sigma) or sigma <= 0:
        sigma = 1.0
    length = length_rates if length_rates is not None else float(np.nanmedian(_length_px(sources)[near]))
    if not np.isfinite(length) or length < 1.5:
        return None
    return TrailModel(angle_deg=float(a0), length_px=float(length), sigma_px=sigma, n_used=len(near),
                      from_rates=length_rates is not None)


def trail_like(sources: Table, model: TrailModel | None) -> np.ndarray:
    """True for sources with the frame's star-trail direction and length.

    Streaks: direction within :attr:`TrailModel.angle_tol_deg` and length within 20 % + 3 px
    (or any length when cut by the edge). Points (trails shorter than the detector's streaks,
    pieces of faint long ones): elongated (a/b >= 1 + 40 % of the elongation a trail gives, at
    most 2) along the trail direction
    (within 15 deg, or the tolerance of a 1.5 px offset at the trail end). Saturated blobs are
    accepted when their long axis (bleeding aside) follows the trail. False for everything when
    ``model`` is None.
    """
    n = len(sources)
    if model is None:
        return np.zeros(n, bool)
    kind = _kind(sources)
    flags = _flags(sources)
    ang = _axis_angle_deg(sources)
    dang = _angle_diff_deg(ang, model.angle_deg)
    edge = (flags & flagbits.EDGE) != 0
    is_streak = kind == "streak"
    length = _col(sources, "length_px")
    ok_streak = is_streak & (dang <= model.angle_tol_deg) & (
        (np.abs(length - model.length_px) <= 0.2 * model.length_px + 3.0) | (edge & (length < model.length_px + 3.0)))
    s = model.sigma_px
    e_trail = math.sqrt(s ** 2 + model.length_px ** 2 / 12.0) / s
    elong = _col(sources, "elongation")
    tol_pt = max(15.0, math.degrees(math.atan2(1.5, 0.5 * model.length_px)))
    ok_point = (~is_streak) & (elong >= min(1.0 + 0.4 * (e_trail - 1.0), 2.0)) & (dang <= tol_pt)
    return ok_streak | ok_point


def star_positions(sources: Table, model: TrailModel | None, shape) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mid-exposure star positions ``(x, y, recovered)`` (px) for every source.

    For a streak cut by the frame edge (one end within 2 px of the border, the other inside),
    the star was at the inner end plus half a trail length towards the cut end; ``recovered``
    marks those rows. Other rows keep the source's ``x, y``.
    """
    x, y = _col(sources, "x").copy(), _col(sources, "y").copy()
    rec = np.zeros(len(sources), bool)
    if model is None or not {"x0", "y0", "x1", "y1"} <= set(sources.colnames):
        return x, y, rec
    ny, nx = shape
    ends = np.stack([_col(sources, c) for c in ("x0", "y0", "x1", "y1")], -1)

    def at_edge(px, py):
        return (px < 2.0) | (py < 2.0) | (px > nx - 3.0) | (py > ny - 3.0)

    cut0, cut1 = at_edge(ends[:, 0], ends[:, 1]), at_edge(ends[:, 2], ends[:, 3])
    fin = np.all(np.isfinite(ends), axis=1) & (_kind(sources) == "streak")
    half = 0.5 * model.length_px
    for inner, outer, sel in (((0, 1), (2, 3), fin & cut1 & ~cut0), ((2, 3), (0, 1), fin & cut0 & ~cut1)):
        d = ends[sel][:, outer] - ends[sel][:, inner]
        u = d / np.maximum(np.hypot(d[:, 0], d[:, 1]), 1e-9)[:, None]
        x[sel] = ends[sel, inner[0]] + half * u[:, 0]
        y[sel] = ends[sel, inner[1]] + half * u[:, 1]
        rec[sel] = True
    return x, y, rec


def star_view(sources: Table, model: TrailModel | None, shape) -> Table:
    """A copy of ``sources`` with the star positions of :func:`star_positions` in ``x, y`` and
    ``x_err, y_err`` raised to at least :data:`RECOVERED_SIGMA_PX` where recovered (for the
    plate solver; the detector's table is left untouched)."""
    x, y, rec = star_positions(sources, model, shape)
    if not rec.any():
        return sources
    out = sources.copy(copy_data=True)
    out["x"], out["y"] = x, y
    for c in ("x_err", "y_err"):
        if c in out.colnames:
            out[c] = np.where(rec, np.maximum(np.nan_to_num(np.asarray(out[c], float), nan=0.0),
                                              RECOVERED_SIGMA_PX), np.asarray(out[c], float))
    return out


def trail_fraction(data: np.ndarray, x, y, model: TrailModel | None, fwhm_px: float | None = None,
                   saturation_adu: float | None = None) -> np.ndarray:
    """Pixel test, per source at (x, y): share of its light taken by a star trail rather than a point.

    A stamp around each source is fitted by least squares with pixel-integrated templates
    starting at the source (rendered by :mod:`aposos.simulate.render`): a point PSF, and the
    two half trails (the model's direction, half its length) running from the source either
    way, plus a constant. The result is the half trails' share of the (non-negative) fitted
    flux: about 1 for a trail (its centre, or a piece of a long trail anywhere along it), about
    0 for a point; NaN where not computed. Unlike second moments this holds
    in crowded fields, where blends and saturation bend the moments of most sources. False for
    all when ``model`` is None or the trail is shorter than one FWHM (then stars and targets
    look alike). ``fwhm_px`` defaults to ``2.355 * model.sigma_px``. Only pixels where a template
    has light enter the fit (a bright neighbour elsewhere in the stamp would pull the
    amplitudes), and pixels at or above ``saturation_adu`` are left out (a clipped core is no
    PSF).
    """
    from ..simulate.render import add_points, add_streaks

    x, y = np.atleast_1d(np.asarray(x, float)), np.atleast_1d(np.asarray(y, float))
    out = np.full(len(x), np.nan)
    if model is None:
        return out
    fwhm = float(fwhm_px) if fwhm_px else FWHM_PER_SIGMA * model.sigma_px
    if model.length_px < fwhm:
        return out
    ny, nx = data.shape
    h = int(math.ceil(0.5 * model.length_px + 1.5 * fwhm))  # stamp half-size (px)
    u = model.unit * 0.5 * model.length_px
    for k in np.flatnonzero(np.isfinite(x) & np.isfinite(y)):
        ix, iy = int(round(x[k])), int(round(y[k]))
        xa, xb, ya, yb = max(ix - h, 0), min(ix + h + 1, nx), max(iy - h, 0), min(iy + h + 1, ny)
        if xb - xa < 3 or yb - ya < 3:
            continue
        stamp = np.asarray(data[ya:yb, xa:xb], float)
        good = np.isfinite(stamp)
        if saturation_adu:
            good &= stamp < saturation_adu
        if good.sum() < 9:
            continue
        cx, cy = x[k] - xa, y[k] - ya
        point = np.zeros(stamp.shape)
        add_points(point, [cx], [cy], [1.0], fwhm)
        halves = [np.zeros(stamp.shape), np.zeros(stamp.shape)]
        for sgn, half in zip((1.0, -1.0), halves):
            add_streaks(half, [cx], [cy], [cx + sgn * u[0]], [cy + sgn * u[1]], [0.5], fwhm)
        good &= np.any([t > SUPPORT_FRACTION * t.max() for t in (point, *halves)], axis=0)
        if good.sum() < 9:
            continue
        f = _joint_fluxes(stamp[good], point[good], halves[0][good], halves[1][good])
        total = f.sum()
        out[k] = (f[1] + f[2]) / total if total > 0 else np.nan
    return out


def _joint_fluxes(d: np.ndarray, *templates: np.ndarray) -> np.ndarray:
    """Non-negative least-squares amplitudes of d ~ sum_i f_i * template_i + constant (the
    constant of either sign): light off the templates (a neighbour beside the trail line) goes
    to none of them, and no template takes a negative flux to cancel another."""
    from scipy.optimize import nnls

    one = np.ones_like(d)
    coef, _ = nnls(np.stack([*templates, one, -one], -1), d)
    return coef[:-2]
