"""Tracklets: observations of one object by one station across consecutive frames.

Input is an Observations table (see :func:`aposos.astrometry.measure`) for one station and
night: points (rate-tracked frames) and streaks (sidereal frames: two ends at shutter open
and close, which is which unresolved, plus the centre at mid-exposure).

Linking works on one *anchor* position per detection and frame (a point, or a streak's
centre):

0. static sources (an anchor found again at the same place, within ``static_radius_arcsec``,
   in ``static_min_frames`` other frames taken long enough before or after it that an object
   at ``min_rate_deg_s`` would have moved away: stars too faint for the catalog) are set aside;
1. seeds: pairs of anchors in nearby frames whose implied angular rate is below
   ``max_rate_deg_s`` and, for streaks, agrees with the streak's own length and direction;
   pairs of streaks first, then nearest frames, slowest motion;
2. growth: each seed's motion is predicted into the other frames (nearest first, frames
   numbered in time order) and the nearest anchor within a gate (``gate_sigma`` times the
   combined uncertainty plus a floor) is attached; the motion is refitted after each
   attachment, and frames that failed are tried again with it;
3. acceptance: at least ``min_frames`` frames (short tracklets and every tracklet with
   streaks must fit within ``short_chi2_per_dof``), chi-square consistent with the
   measurement errors, and a rate above ``min_rate_deg_s`` (static sources -- stars missing
   from the catalog -- are not satellites).

Streaks carry their own velocity (end points / exposure, sigma from the ends' sigma plus
``exposure_sigma_s``; sign from the direction of motion between frames), so a tracklet with
streaks is fitted to positions *and* velocities together: 4 equations per frame, real degrees
of freedom even for 3 frames of a LEO whose angular rate changes by several per cent between
them. The same joint chi-square picks the member in each frame during growth (among the
anchors within a gate widened by an unmodelled angular acceleration, ``streak_acceleration``).

For streaks, the fitted direction of motion resolves which end was recorded at shutter open:
:func:`link` returns the observations with resolved times (``time`` of each end set to the
frame's open or close instant, ``end`` = 0 at open, 1 at close).

Two motion models, both about the tracklet's best-fitting great circle (refitted as it grows):

* *angles*: polynomials in time of the along-track and cross-track angles; degree 1 is
  exactly a great circle at constant rate; higher degrees (rate change, cross-track
  curvature) when the fit is poor or the next degree is significantly better (chi-square);
  with streaks the degree is at most the number of members;
* *projective* (tracklets with streaks): the direction of a topocentric position that is a
  polynomial in time (1: straight line at constant speed, 2: plus gravity, 3: long arcs),
  i.e. gnomonic coordinates ``X = Nx / D``, ``Y = Ny / D`` (rational in time). This is what a
  LEO does: it stays exact over the tens of degrees of a pass near culmination, where
  polynomials in angle fail (cross-track curvature, the arctangent-like along-track angle).

Positions are per axis: along track the sigma includes the motion times ``time_sigma_s``.
The model with the lower Akaike criterion (chi-square + 2 x parameters) is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.table import Table
from astropy.time import Time

from .directions import radec_deg, unit_from_radec

ARCSEC_PER_RAD = 206264.80624709636


@dataclass(frozen=True)
class LinkConfig:
    """Linking parameters (angles in degrees unless named otherwise)."""

    max_rate_deg_s: float = 2.0         # fastest object to link (LEO near zenith: ~1-2 deg/s)
    min_rate_deg_s: float = 2e-4        # slower than this is a static source (0.7 arcsec/s)
    max_gap_frames: int = 3             # frames an object may be missed between detections
    max_gap_s: float = 900.0            # ... and the longest time between detections
    min_frames: int = 3                 # frames for a tracklet of points (streaks: 2, their
                                        # own velocities must agree with the motion)
    short_frames: int = 4               # tracklets with fewer frames than this ...
    short_chi2_per_dof: float = 4.0     # ... must fit this well (no gate floor): chance
                                        # alignments of noise are then ~1e-2 per night
    gate_sigma: float = 5.0             # gate in units of the combined 1-sigma uncertainty
    gate_floor_arcsec: float = 5.0      # gate floor (model error, timing)
    streak_rate_tolerance: float = 0.25  # |rate from streak - rate from positions| / rate
    point_max_motion_arcsec: float = 30.0  # a point in a sidereal frame moved less than this
                                        # during its exposure (else it would be a streak)
    static_radius_arcsec: float = 3.0   # an anchor seen again this close is static ...
    static_min_frames: int = 2          # ... when seen in this many other frames
    time_sigma_s: float = 1e-3          # frame timing uncertainty: moves positions along track
    exposure_sigma_s: float = 1e-3      # shutter-duration uncertainty: scales streak rates
    streak_acceleration: float = 0.005  # 1/s: growth reach of streak tracklets allows an unmodelled
                                        # angular acceleration of this fraction of the rate per second
                                        # (LEO: the rate changes by several % in 20 s)
    max_degree: int = 5                 # highest polynomial degree (streak arcs of tens of degrees)
    point_acceleration: float = 6.0     # 1/rad: growth reach of point tracklets allows an angular
                                        # acceleration of this times the rate squared: a straight 3-D
                                        # path seen at angle th from its closest approach has
                                        # acceleration / rate^2 = 2 tan(th) (6: th = 72 deg; a LEO at
                                        # 0.2 deg/s low in the sky changes rate by ~1 % per second)


def _basis(centre):
    """East, north, centre unit vectors of the tangent plane at ``centre``."""
    z = centre / np.linalg.norm(centre)
    east = np.cross([0.0, 0.0, 1.0], z)
    if np.linalg.norm(east) < 1e-12:  # at a pole
        east = np.array([1.0, 0.0, 0.0])
    east /= np.linalg.norm(east)
    return east, np.cross(z, east), z


def _great_circle_basis(unit, weights):
    """(A, B, P): P the pole of the best-fitting great circle, A its point nearest the mean, B = P x A."""
    mean = (weights[:, None] * unit).sum(axis=0)
    if len(unit) == 2:
        pole = np.cross(unit[0], unit[1])
    else:
        _, vecs = np.linalg.eigh((weights[:, None] * unit).T @ unit)
        pole = vecs[:, 0]
    if np.linalg.norm(pole) < 1e-15:  # no motion: any great circle through the mean
        pole = np.cross(mean, [0.0, 0.0, 1.0] if abs(mean[2]) < 0.9 * np.linalg.norm(mean) else [1.0, 0.0, 0.0])
    pole /= np.linalg.norm(pole)
    a = mean - (mean @ pole) * pole
    a /= np.linalg.norm(a)
    return a, np.cross(pole, a), pole


def _project(unit, basis):
    """Great-circle coordinates (radians): along-track angle from A, cross-track angle from the circle."""
    a, b, pole = basis
    return np.stack([np.arctan2(unit @ b, unit @ a), np.arcsin(np.clip(unit @ pole, -1, 1))], axis=-1)


def _deproject(lam_beta, basis):
    a, b, pole = basis
    lam, beta = lam_beta[..., :1], lam_beta[..., 1:2]
    return np.cos(beta) * (np.cos(lam) * a + np.sin(lam) * b) + np.sin(beta) * pole


def _project_velocity(unit, velocity, basis):
    """Rates (rad/s) of the great-circle coordinates of a point at ``unit`` moving with ``velocity``."""
    a, b, pole = basis
    lam, beta = _project(unit, basis)
    e_lam = -np.sin(lam) * a + np.cos(lam) * b
    e_beta = -np.sin(beta) * (np.cos(lam) * a + np.sin(lam) * b) + np.cos(beta) * pole
    return np.array([velocity @ e_lam / np.cos(beta), velocity @ e_beta])


def _design(dt_s, degree, derivative, scale_s=1.0):
    """Rows of the polynomial in ``dt_s / scale_s`` (``derivative`` False) or of its time derivative."""
    powers = np.arange(degree + 1)
    tau = np.asarray(dt_s, float)[:, None] / scale_s
    if not derivative:
        return tau ** powers
    return powers * tau ** np.maximum(powers - 1, 0) / scale_s


def _fit(rows, values, sigma, degree, scale_s):
    """Weighted least squares of both axes.

    ``rows``: list of (dt_s, derivative) per equation block; ``values`` (n, 2) and ``sigma`` (n, 2)
    the measured coordinates (or rates) and their 1-sigma per axis. Returns (coeffs (deg+1, 2),
    chi2, coefficient covariance (2, deg+1, deg+1)).
    """
    design = np.concatenate([_design(dt, degree, deriv, scale_s) for dt, deriv in rows])
    coeffs, covs, chi2 = np.empty((degree + 1, 2)), np.empty((2, degree + 1, degree + 1)), 0.0
    for axis in range(2):
        a = design / sigma[:, axis:axis + 1]
        y = values[:, axis] / sigma[:, axis]
        covs[axis] = np.linalg.pinv(a.T @ a)
        coeffs[:, axis] = covs[axis] @ (a.T @ y)
        chi2 += float(np.sum((y - a @ coeffs[:, axis]) ** 2))
    return coeffs, chi2, covs


@dataclass
class _Motion:
    """A fitted tracklet motion: great-circle basis, time origin, polynomial, covariance."""

    basis: tuple
    t0_s: float
    coeffs: np.ndarray      # (degree + 1, 2): along-track, cross-track angle polynomials (rad, s)
    cov: np.ndarray         # (2, degree + 1, degree + 1): per axis
    chi2: float             # positions and streak velocities together
    degree: int
    n_equations: int        # scalar equations behind ``chi2``
    scale_s: float = 1.0    # the polynomials are in (t - t0_s) / scale_s

    @property
    def dof(self) -> int:
        return self.n_equations - 2 * (self.degree + 1)

    def position(self, t_s):
        """Unit vectors at times ``t_s`` (seconds since the night reference)."""
        dt = np.atleast_1d(np.asarray(t_s, float)) - self.t0_s
        return _deproject(_design(dt, self.degree, False, self.scale_s) @ self.coeffs, self.basis)

    def sigma_rad(self, t_s):
        """1-sigma per axis (RMS of the two axes) of the fitted position at ``t_s`` (radians)."""
        v = _design(np.atleast_1d(np.asarray(t_s, float)) - self.t0_s, self.degree, False, self.scale_s)
        var = np.einsum("ij,ajk,ik->ia", v, self.cov, v)
        return np.sqrt(var.mean(axis=1))

    def velocity_rad_s(self, t_s, dt_s=0.5):
        """Angular velocity (rad/s) at ``t_s`` as a 3-vector tangent to the sky."""
        p = self.position([t_s - dt_s, t_s + dt_s])
        return (p[1] - p[0]) / (2 * dt_s)


class _ProjectiveMotion:
    """Central projection of a 3-D polynomial motion: the model for streak tracklets.

    Over a minute or two a satellite's topocentric position is a low-degree polynomial in time
    (degree 1: straight line at constant speed; 2: plus gravity; 3: plus its turning), and its
    direction is that vector's central projection. In gnomonic coordinates (X along track, Y
    across, about the tracklet's great circle) this is ``X = Nx(tau) / D(tau)``,
    ``Y = Ny(tau) / D(tau)`` with polynomials of degree ``k`` and ``D(0) = 1`` (the unknown
    range scale): 3k + 2 parameters. Unlike polynomials in angle, this stays exact over the tens
    of degrees a LEO sweeps near culmination.
    """

    def __init__(self, basis, t0_s, scale_s, degree, params, cov, chi2, n_equations):
        self.basis, self.t0_s, self.scale_s, self.degree = basis, t0_s, scale_s, degree
        self.params, self.cov, self.chi2, self.n_equations = params, cov, chi2, n_equations

    @property
    def dof(self) -> int:
        return self.n_equations - (3 * self.degree + 2)

    def _split(self):
        k = self.degree
        return self.params[:k + 1], self.params[k + 1:2 * k + 2], np.concatenate([[1.0], self.params[2 * k + 2:]])

    def gnomonic(self, t_s, derivative=False):
        """(X, Y) (n, 2) at ``t_s``, or their time derivatives (1/s)."""
        dt = np.atleast_1d(np.asarray(t_s, float)) - self.t0_s
        p, dp = _design(dt, self.degree, False, self.scale_s), _design(dt, self.degree, True, self.scale_s)
        x, y, d = self._split()
        den, dden = p @ d, dp @ d
        xy = np.stack([p @ x, p @ y], axis=1) / den[:, None]
        if not derivative:
            return xy
        return (np.stack([dp @ x, dp @ y], axis=1) - xy * dden[:, None]) / den[:, None]

    def position(self, t_s):
        a, b, pole = self.basis
        xy = self.gnomonic(t_s)
        v = a + xy[:, :1] * b + xy[:, 1:] * pole
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def sigma_rad(self, t_s):
        """1-sigma per axis (RMS of the two) of the fitted position at ``t_s`` (radians)."""
        dt = np.atleast_1d(np.asarray(t_s, float)) - self.t0_s
        p = _design(dt, self.degree, False, self.scale_s)
        x, y, d = self._split()
        den = p @ d
        xy = np.stack([p @ x, p @ y], axis=1) / den[:, None]
        zero = np.zeros_like(p)
        gx = np.concatenate([p, zero, -xy[:, :1] * p[:, 1:]], axis=1) / den[:, None]
        gy = np.concatenate([zero, p, -xy[:, 1:] * p[:, 1:]], axis=1) / den[:, None]
        var = np.einsum("ij,jk,ik->i", gx, self.cov, gx) + np.einsum("ij,jk,ik->i", gy, self.cov, gy)
        return np.sqrt(var / 2) / (1 + np.sum(xy**2, axis=1))

    def velocity_rad_s(self, t_s, dt_s=0.5):
        p = self.position([t_s - dt_s, t_s + dt_s])
        return (p[1] - p[0]) / (2 * dt_s)


def _gnomonic(unit, basis):
    a, b, pole = basis
    c = unit @ a
    return np.stack([unit @ b / c, unit @ pole / c], axis=-1)


def _gnomonic_velocity(unit, velocity, basis):
    a, b, pole = basis
    c = unit @ a
    return np.array([velocity @ b - (unit @ b) * (velocity @ a) / c, velocity @ pole - (unit @ pole) * (velocity @ a) / c]) / c


def _fit_projective(dt, xy, sig, vdt, vxy, vsig, degree, scale, t0, basis, iterations=4):
    """Weighted fit of :class:`_ProjectiveMotion` to positions ``xy`` (n, 2) at ``dt`` and rates
    ``vxy`` (m, 2) at ``vdt`` (gnomonic, sigmas per axis): the equations ``N - X D = 0`` and
    ``N' - X' D - X D' = 0`` are linear in the parameters; weights are refined with the fitted
    ``D`` (a few iterations), and the chi-square is that of the true residuals."""
    k = degree
    p, vp, vdp = (_design(dt, k, False, scale), _design(vdt, k, False, scale), _design(vdt, k, True, scale))
    den, vden = np.ones(len(dt)), np.ones(len(vdt))
    vx_pos = np.empty((len(vdt), 2))
    for i, t in enumerate(vdt):
        vx_pos[i] = xy[np.argmin(np.abs(dt - t))]
    zp, zv = np.zeros_like(p), np.zeros_like(vp)
    for _ in range(iterations):
        blocks = [
            (np.concatenate([p, zp, -xy[:, :1] * p[:, 1:]], axis=1), xy[:, 0], sig[:, 0] * den),
            (np.concatenate([zp, p, -xy[:, 1:] * p[:, 1:]], axis=1), xy[:, 1], sig[:, 1] * den),
        ]
        for axis in range(2):
            lhs = [vdp if axis == 0 else zv, zv if axis == 0 else vdp,
                   -vxy[:, axis:axis + 1] * vp[:, 1:] - vx_pos[:, axis:axis + 1] * vdp[:, 1:]]
            blocks.append((np.concatenate(lhs, axis=1), vxy[:, axis], vsig[:, axis] * vden))
        a = np.concatenate([b[0] / b[2][:, None] for b in blocks])
        y = np.concatenate([b[1] / b[2] for b in blocks])
        cov = np.linalg.pinv(a.T @ a)
        params = cov @ (a.T @ y)
        motion = _ProjectiveMotion(basis, t0, scale, k, params, cov, 0.0, 2 * (len(dt) + len(vdt)))
        _, _, d = motion._split()
        den, vden = np.abs(p @ d), np.abs(vp @ d)
        vx_pos = motion.gnomonic(vdt + t0)
    model, vmodel = motion.gnomonic(dt + t0), motion.gnomonic(vdt + t0, derivative=True)
    motion.chi2 = float(np.sum(((model - xy) / sig) ** 2) + np.sum(((vmodel - vxy) / vsig) ** 2))
    return motion


CHI2_SIGNIFICANT_2 = 11.8  # chi-square with 2 degrees of freedom at 99.7 %: two more terms are real
CHI2_SIGNIFICANT_3 = 14.2  # ... with 3 degrees of freedom


def _fit_motion(members, max_degree=3, cfg=None) -> _Motion:
    """Fit positions and streak velocities together; raise the degree while it pays.

    The degree goes up while the fit is poor (chi-square per degree of freedom above
    ``short_chi2_per_dof``) or the next degree lowers the chi-square significantly.

    Streak velocities have an unknown sign: each takes the sign of the along-track motion
    between the members' positions. Along track, each equation's sigma includes the motion
    times the frame timing uncertainty (``time_sigma_s``).
    """
    cfg = cfg or LinkConfig()
    unit = np.array([m.unit for m in members])
    t = np.array([m.t_s for m in members])
    sig = np.array([m.sigma for m in members])
    basis = _great_circle_basis(unit, 1.0 / sig**2)
    xy = _project(unit, basis)
    t0 = float(t.mean())
    dt = t - t0
    lam_rate = np.polyfit(dt, xy[:, 0], 1)[0] if np.ptp(dt) > 0 else 0.0
    rows, values, sigma = [(dt, False)], [xy], []
    speed = np.full(len(members), abs(lam_rate))  # points: the chord rate
    vel_dt, vel_values, vel_sigma = [], [], []
    for k, m in enumerate(members):
        if m.velocity is None:
            continue
        rate = _project_velocity(m.unit, m.velocity, basis)
        if rate[0] * lam_rate < 0:
            rate = -rate
        speed[k] = np.hypot(rate[0], rate[1])
        vel_dt.append(dt[k])
        vel_values.append(rate)
        vel_sigma.append([np.hypot(m.velocity_sigma, speed[k] * cfg.exposure_sigma_s / m.exposure_s),
                          m.velocity_sigma])
    along = np.hypot(sig, speed * cfg.time_sigma_s)
    sigma.append(np.stack([along, sig], axis=1))
    if vel_dt:
        rows.append((np.array(vel_dt), True))
        values.append(np.array(vel_values))
        sigma.append(np.array(vel_sigma))
    scale = max(float(np.abs(dt).max()), 1.0)
    projective = None
    if vel_dt:
        projective = _select_projective(members, basis, t0, dt, sigma[0], np.array(vel_dt), np.array(vel_sigma),
                                        max_degree, scale, cfg)
        max_degree = min(max_degree, len(members))  # each axis keeps >= n - 1 degrees of freedom
    values, sigma = np.concatenate(values), np.concatenate(sigma)
    n_eq = 2 * len(values)
    best = None
    for degree in range(1, max(max_degree, 1) + 1):
        if degree > 1 and 2 * (degree + 1) > n_eq - 2:
            break
        coeffs, chi2, cov = _fit(rows, values, sigma, degree, scale)
        motion = _Motion(basis, t0, coeffs, cov, chi2, degree, n_eq, scale)
        if best is not None and best.chi2 - chi2 <= CHI2_SIGNIFICANT_2 and \
                best.chi2 <= cfg.short_chi2_per_dof * max(best.dof, 1):
            break  # the lower degree fits and the higher one is not significantly better
        best = motion
    if projective is not None and _information(projective) < _information(best):
        return projective
    return best


def _information(motion) -> float:
    """Akaike's criterion (chi-square + 2 x parameters): which model the data support."""
    return motion.chi2 + 2 * (motion.n_equations - motion.dof)


def _select_projective(members, basis, t0, dt, sig, vdt, vsig, max_degree, scale, cfg):
    """The projective motion of the lowest adequate degree (1-3) for a tracklet with streaks."""
    unit = np.array([m.unit for m in members])
    xy = _gnomonic(unit, basis)
    stretch = 1 + np.sum(xy**2, axis=1)  # gnomonic coordinates per radian on the sky
    x_rate = np.polyfit(dt, xy[:, 0], 1)[0] if np.ptp(dt) > 0 else 0.0
    with_v = [k for k, m in enumerate(members) if m.velocity is not None]
    vxy = np.array([_gnomonic_velocity(members[k].unit, members[k].velocity, basis) for k in with_v])
    vxy *= np.where(vxy[:, 0] * x_rate < 0, -1.0, 1.0)[:, None]  # streak direction: along the motion
    n_eq = 2 * (len(members) + len(with_v))
    best = None
    for degree in range(1, min(max_degree, 3) + 1):
        if 3 * degree + 2 > n_eq - (0 if degree == 1 else 1) or degree > len(members):
            break
        motion = _fit_projective(dt, xy, sig * stretch[:, None], vdt, vxy, vsig * stretch[with_v, None], degree,
                                 scale, t0, basis)
        span = np.linspace(dt.min() - scale, dt.max() + scale, 9)
        if np.any(_design(span, degree, False, scale) @ motion._split()[2] < 0.5):
            break  # the range would halve or vanish within the arc: not a physical motion
        if best is not None and best.chi2 - motion.chi2 <= CHI2_SIGNIFICANT_3 and \
                best.chi2 <= cfg.short_chi2_per_dof * max(best.dof, 1):
            break
        best = motion
    return best


@dataclass
class _Anchor:
    index: int                # row of the observations table
    frame: int                # frame number (0..)
    t_s: float                # seconds since the night reference
    unit: np.ndarray          # direction (ICRF unit vector)
    sigma: float              # rad
    velocity: np.ndarray | None  # streak end-to-end velocity (3-vector, rad/s, sign unknown)
    max_rate: float = np.inf     # fastest motion (rad/s) this detection allows
    velocity_sigma: float = np.inf  # 1-sigma per axis of ``velocity`` (rad/s), from the ends' sigma
    exposure_s: float = np.inf   # time between the streak's ends (s)


def _frame_numbers(frame_names, t_s):
    """Frame number of each row (0.., frames in time order: names need not sort by time) and the
    number of frames. Rows of one frame usually come together: only the first name of each run of
    equal names is sorted (the store's names are long fixed-width strings)."""
    names = np.asarray(frame_names)
    if len(names) == 0:
        return np.zeros(0, np.int64), 0
    starts = np.flatnonzero(np.concatenate([[True], names[1:] != names[:-1]]))
    frames, run_frame = np.unique(names[starts].astype(str), return_inverse=True)
    frame_index = np.repeat(run_frame.ravel(), np.diff(np.append(starts, len(names))))
    first = np.full(len(frames), np.inf)
    np.minimum.at(first, frame_index, t_s)
    return np.argsort(np.argsort(first, kind="stable"), kind="stable")[frame_index], len(frames)


def _streak_ends(obs: Table, frame_index) -> dict:
    """{(frame number, source_index): rows of that streak's ends (ascending)}."""
    ends_of = {}
    source = np.asarray(obs["source_index"])
    for i in np.flatnonzero(np.asarray(obs["kind"]).astype(str) == "streak_end"):
        ends_of.setdefault((frame_index[i], source[i]), []).append(i)
    return ends_of


def _anchors(obs: Table, rows, unit, t_s, frame_index, ends_of, cfg):
    """One anchor per detection at ``rows`` (points, streak centres), from the per-row arrays
    (``ends_of``: :func:`_streak_ends`).

    A point in a sidereal frame (columns ``tracking`` and ``exposure_s``, when present) cannot
    have moved more than ``point_max_motion_arcsec`` during its exposure: that bounds its rate.
    """
    sigma = np.asarray(obs["sigma_arcsec"], float) / ARCSEC_PER_RAD
    kind = np.asarray(obs["kind"]).astype(str)
    end = np.asarray(obs["end"])
    source = np.asarray(obs["source_index"])
    max_rate = np.full(len(obs), np.radians(cfg.max_rate_deg_s))
    if "tracking" in obs.colnames and "exposure_s" in obs.colnames:
        sidereal = np.asarray(obs["tracking"]).astype(str) == "sidereal"
        exposure = np.asarray(obs["exposure_s"], float)
        with np.errstate(divide="ignore", invalid="ignore"):
            bound = cfg.point_max_motion_arcsec / ARCSEC_PER_RAD / exposure
        sel = (kind == "point") & sidereal & (exposure > 0)
        max_rate[sel] = np.minimum(max_rate[sel], bound[sel])
    anchors = []
    for i in rows:
        velocity, velocity_sigma, dt = None, np.inf, np.inf
        if kind[i] == "streak_centre":
            ends = np.array(ends_of.get((frame_index[i], source[i]), []))
            if len(ends) == 2:
                e0, e1 = ends[np.argsort(end[ends])]
                dt = abs(t_s[e1] - t_s[e0])
                if dt > 0:
                    velocity = (unit[e1] - unit[e0]) / dt
                    velocity_sigma = float(np.hypot(sigma[e0], sigma[e1]) / dt)
        anchors.append(_Anchor(int(i), int(frame_index[i]), float(t_s[i]), unit[i], float(sigma[i]), velocity,
                               float(max_rate[i]), velocity_sigma, float(dt)))
    return anchors


class _FrameIndex:
    """The anchors of one frame with a k-d tree on their directions."""

    def __init__(self, anchors):
        from scipy.spatial import cKDTree

        self.anchors = anchors
        self.tree = cKDTree(np.array([a.unit for a in anchors]))
        self.max_sigma = max(a.sigma for a in anchors)
        self.t_s = float(np.mean([a.t_s for a in anchors]))
        self.t_spread = float(max(abs(a.t_s - self.t_s) for a in anchors))  # s

    def near(self, unit, radius_rad):
        """Anchors within ``radius_rad`` of ``unit``."""
        return [self.anchors[k] for k in self.tree.query_ball_point(unit, 2 * np.sin(min(radius_rad, np.pi) / 2))]


def static_separation_s(cfg) -> float:
    """Time (s) between two frames beyond which an object moving at ``min_rate_deg_s`` or faster has
    moved at least twice ``static_radius_arcsec``: only frames that far apart count as seeing a
    source again at the same place (in frames close in time a slow mover, or a GEO in a fast
    sequence, stays within the radius, yet it moves on the sky)."""
    if cfg.min_rate_deg_s <= 0:
        return np.inf
    return 2 * cfg.static_radius_arcsec / (cfg.min_rate_deg_s * 3600.0)


def _static(unit, frame, t_s, cfg) -> np.ndarray:
    """True for anchors found again at the same place (within ``static_radius_arcsec``) in
    ``static_min_frames`` other frames, each at least :func:`static_separation_s` away in time.

    ``unit`` (n, 3) directions, ``frame`` (n,) frame numbers, ``t_s`` (n,) seconds. Exact and
    cheap: the k nearest anchors within the radius are looked up (k doubled, for the anchors
    still undecided, while all k lie within the radius), not every pair of a star's detections.
    """
    from scipy.spatial import cKDTree

    n = len(unit)
    if cfg.static_min_frames < 1:
        return np.ones(n, bool)
    static = np.zeros(n, bool)
    if n < 2:
        return static
    tree = cKDTree(unit)
    radius = np.nextafter(cfg.static_radius_arcsec / ARCSEC_PER_RAD, np.inf)  # k-d tree bound is strict
    separation = static_separation_s(cfg)
    todo, k = np.arange(n), cfg.static_min_frames + 2
    while len(todo):
        k = min(k, n)
        idx = tree.query(unit[todo], k=k, distance_upper_bound=radius)[1].reshape(len(todo), k)
        found = idx < n
        j = np.where(found, idx, 0)
        counts = found & (frame[j] != frame[todo, None]) & (np.abs(t_s[j] - t_s[todo, None]) >= separation)
        seen = np.sort(np.where(counts, frame[j], -1), axis=1)
        n_frames = (seen[:, 0] >= 0) + np.sum((seen[:, 1:] != seen[:, :-1]) & (seen[:, 1:] >= 0), axis=1)
        static[todo] = n_frames >= cfg.static_min_frames
        todo = todo[~static[todo] & found[:, -1] & (k < n)]  # more may lie within the radius
        k *= 2
    return static


def _rates_agree(streak_velocity, velocity, tol):
    """A streak's velocity (sign unknown) agrees with a velocity from positions."""
    if streak_velocity is None:
        return True
    speed = np.linalg.norm(velocity)
    return min(np.linalg.norm(streak_velocity - velocity),
               np.linalg.norm(streak_velocity + velocity)) <= tol * max(speed, 1e-15)


def _angle(u, v):
    return float(np.arctan2(np.linalg.norm(np.cross(u, v)), u @ v))


def _grow(seed, by_frame, used, cfg, n_frames):
    """Grow a tracklet from a seed pair, nearest frames first; returns (members, motion).

    Point tracklets take the nearest anchor within the gate, widened by the unmodelled angular
    acceleration ``point_acceleration`` times the rate squared (negligible for GEO, several
    arcminutes for a LEO frame 10 s away). Tracklets with streaks carry
    their velocities, so the extrapolation is off only by the unmodelled acceleration
    (``streak_acceleration`` widens the gate by that much) and among the anchors in the gate
    the one whose joint refit (positions and velocities) has the lowest chi-square, and passes
    :func:`_acceptable`, is attached.
    """
    members = list(seed)
    motion = _fit_motion(members, cfg.max_degree, cfg)
    tried: set[int] = set()
    floor = cfg.gate_floor_arcsec / ARCSEC_PER_RAD
    search = None  # {frame: (predicted direction, search radius)} of the current motion
    while True:
        have = {m.frame for m in members}
        lo, hi = min(have), max(have)
        member_t = np.array([m.t_s for m in members])
        todo = [f for f in range(max(lo - cfg.max_gap_frames - 1, 0), min(hi + cfg.max_gap_frames + 2, n_frames))
                if f not in have and f not in tried and f in by_frame
                and np.min(np.abs(by_frame[f].t_s - member_t)) <= cfg.max_gap_s + by_frame[f].t_spread]
        if not todo:
            return members, motion
        f = min(todo, key=lambda g: min(abs(g - lo), abs(g - hi)))
        tried.add(f)
        with_velocities = any(m.velocity is not None for m in members)
        if search is None:  # every frame still to try, at once: most seeds attach nothing
            times = np.array([by_frame[g].t_s for g in todo])
            error = _model_error(motion, times, member_t, with_velocities, cfg)
            reach = cfg.gate_sigma * np.hypot([by_frame[g].max_sigma for g in todo], motion.sigma_rad(times)) + floor
            search = dict(zip(todo, zip(motion.position(times), 2 * reach + error)))
        best, best_score, best_motion = None, np.inf, None
        for a in by_frame[f].near(*search[f]):
            if a.index in used:
                continue
            d = _angle(a.unit, motion.position(a.t_s)[0])
            gate = cfg.gate_sigma * np.hypot(a.sigma, motion.sigma_rad(a.t_s)[0]) + floor + \
                _model_error(motion, a.t_s, member_t, with_velocities, cfg)[0]
            velocity = motion.velocity_rad_s(a.t_s)
            if np.min(np.abs(a.t_s - member_t)) > cfg.max_gap_s:
                continue
            if d >= gate or np.linalg.norm(velocity) > a.max_rate or \
                    not _rates_agree(a.velocity, velocity, cfg.streak_rate_tolerance):
                continue
            score, trial = d, None
            if with_velocities:
                trial = _fit_motion(members + [a], cfg.max_degree, cfg)
                if not _acceptable(members + [a], trial, cfg):
                    continue
                score = trial.chi2 - trial.dof  # candidates may add different numbers of equations
            if score < best_score:
                best, best_score, best_motion = a, score, trial
        if best is not None:
            members.append(best)
            tried.clear()  # the better motion may now reach frames that failed before
            motion = best_motion or _fit_motion(members, cfg.max_degree, cfg)
            search = None


def _model_error(motion, t_s, member_t, with_velocities, cfg):
    """Unmodelled displacement (rad) of the extrapolated motion at times ``t_s`` (s), from the
    nearest member (at ``member_t``): half an angular acceleration times the lever squared, the
    acceleration ``streak_acceleration`` x rate (tracklets with streaks) or ``point_acceleration``
    x rate^2 (points)."""
    t_s = np.atleast_1d(np.asarray(t_s, float))
    lever = np.min(np.abs(t_s[:, None] - member_t[None, :]), axis=1)
    ends = motion.position(np.concatenate([t_s - 0.5, t_s + 0.5]))  # as velocity_rad_s
    rate = np.linalg.norm(ends[len(t_s):] - ends[:len(t_s)], axis=1)
    accel = cfg.streak_acceleration * rate if with_velocities else cfg.point_acceleration * rate**2
    return 0.5 * accel * lever**2


def link(obs: Table, config: LinkConfig | None = None) -> tuple[Table, Table]:
    """Link observations of one station and night into tracklets.

    Returns
    -------
    tracklets : Table
        One row per tracklet: ``tracklet`` (int id), ``n_frames``, ``t_ref`` (UTC Time,
        the anchor time nearest the mean anchor time), ``ra_deg``, ``dec_deg`` (at ``t_ref``),
        ``ra_rate_deg_s`` (dRA/dt * cos(dec)), ``dec_rate_deg_s``, ``sigma_arcsec``
        (position at ``t_ref``, per axis), ``rms_arcsec`` (anchor residuals), ``model``
        ('angles': polynomials in along- and cross-track angle, ``degree`` 1 a great circle at
        constant rate, 2-5 rate change and curvature; 'projective': central projection of a 3-D
        polynomial motion, ``degree`` 1 straight line, 2 with gravity, 3 long arcs),
        ``degree``, ``t_first``, ``t_last`` (UTC Time).
    observations : Table
        A copy of ``obs`` with a ``tracklet`` column (-1: not linked), a ``static`` column
        (True: found again at the same place in other frames, :func:`_static`) and, for the ends of linked
        streaks, ``time`` and ``end`` resolved (0 = shutter open, 1 = close).
    """
    cfg = config or LinkConfig()
    out = obs.copy()
    out["tracklet"] = np.full(len(out), -1, dtype=np.int64)
    out["static"] = np.zeros(len(out), dtype=bool)
    if len(obs) == 0:
        return _tracklet_table([]), out
    t0 = Time(obs["time"]).min()
    unit_all = unit_from_radec(np.asarray(obs["ra_deg"], float), np.asarray(obs["dec_deg"], float))
    t_all = (obs["time"] - t0).to_value("s")
    frame_index, n_frames = _frame_numbers(obs["frame"], t_all)
    kind = np.asarray(obs["kind"]).astype(str)
    rows = np.flatnonzero((kind == "point") | (kind == "streak_centre"))
    static = _static(unit_all[rows], frame_index[rows], t_all[rows], cfg)
    out["static"][rows] = static
    moving: dict[int, list[_Anchor]] = {}
    ends_of = _streak_ends(obs, frame_index)
    for a in _anchors(obs, rows[~static], unit_all, t_all, frame_index, ends_of, cfg):
        moving.setdefault(a.frame, []).append(a)
    by_frame = {f: _FrameIndex(la) for f, la in moving.items()}
    used: set[int] = set()
    rows = []
    for *_, a, b in _seed_pairs(by_frame, n_frames, cfg):
        if a.index in used or b.index in used:
            continue
        members, motion = _grow((a, b), by_frame, used, cfg, n_frames)
        both_streaks = all(m.velocity is not None for m in members)
        if len(members) < (2 if both_streaks else cfg.min_frames) or not _acceptable(members, motion, cfg):
            continue
        tid = len(rows)
        used.update(m.index for m in members)
        _assign(out, members, tid, motion, unit_all, t_all, frame_index, ends_of)
        rows.append(_tracklet_row(tid, members, motion, t0))
    return _tracklet_table(rows), out


def _seed_pairs(by_frame, n_frames, cfg):
    """Candidate pairs (not both streaks, gap, speed, a, b) in nearby frames (at most
    ``max_gap_frames`` frames and ``max_gap_s`` apart), kinematically possible, best first: pairs
    of streaks (their velocities constrain the motion), then nearest frames, slowest."""
    pairs = []
    min_rate = np.radians(cfg.min_rate_deg_s)
    for f, index_f in by_frame.items():
        for g in range(f + 1, min(f + cfg.max_gap_frames + 2, n_frames)):
            index_g = by_frame.get(g)
            if index_g is None or (abs(index_g.t_s - index_f.t_s)
                                   > cfg.max_gap_s + index_f.t_spread + index_g.t_spread):
                continue  # (frames hours apart: no detection of one object bridges them)
            for a in index_f.anchors:
                dt_max = abs(index_g.t_s - a.t_s) + 60.0
                for b in index_g.near(a.unit, a.max_rate * dt_max):
                    dt = b.t_s - a.t_s
                    if dt <= 0:
                        continue
                    velocity = (b.unit - a.unit) / dt
                    speed = np.linalg.norm(velocity)
                    if not (min_rate <= speed <= min(a.max_rate, b.max_rate)):
                        continue
                    if _rates_agree(a.velocity, velocity, cfg.streak_rate_tolerance) and \
                            _rates_agree(b.velocity, velocity, cfg.streak_rate_tolerance):
                        pairs.append((a.velocity is None or b.velocity is None, g - f, speed, a, b))
    pairs.sort(key=lambda p: p[:3])
    return pairs


def _acceptable(members, motion, cfg) -> bool:
    """Fit consistent with the errors (positions and streak velocities together), and moving."""
    if motion.dof < 1:
        return False
    dof = motion.dof
    speed = np.linalg.norm(motion.velocity_rad_s(motion.t0_s))
    strict = len(members) < cfg.short_frames or any(m.velocity is not None for m in members)
    limit = cfg.short_chi2_per_dof if strict else cfg.gate_sigma ** 2
    return motion.chi2 / dof <= limit and speed >= np.radians(cfg.min_rate_deg_s)


def _assign(out, members, tid, motion, unit_all, t_all, frame_index, ends_of):
    """Mark members and their streak ends (``ends_of``: :func:`_streak_ends`); the end lying
    backwards along the motion is shutter open."""
    kind, src = out["kind"], out["source_index"]
    for m in members:
        out["tracklet"][m.index] = tid
        ends = ends_of.get((frame_index[m.index], src[m.index]), []) if kind[m.index] == "streak_centre" else []
        if len(ends) != 2:
            continue
        ends = np.array(ends)
        velocity = motion.velocity_rad_s(t_all[m.index])
        along = [(unit_all[e] - unit_all[m.index]) @ velocity for e in ends]
        first, last = (ends[0], ends[1]) if along[0] < along[1] else (ends[1], ends[0])
        t_open, t_close = min(t_all[ends]), max(t_all[ends])
        t_ref = Time(out["time"][m.index])
        out["time"][first] = t_ref + (t_open - t_all[m.index]) * u.s
        out["time"][last] = t_ref + (t_close - t_all[m.index]) * u.s
        out["end"][first], out["end"][last] = 0, 1
        out["tracklet"][first] = out["tracklet"][last] = tid


def _tracklet_row(tid, members, motion, t0):
    times = np.array([m.t_s for m in members])
    tm = float(times[np.argmin(np.abs(times - motion.t0_s))])  # a measured instant: no interpolation
    pos = motion.position(tm)[0]
    velocity = motion.velocity_rad_s(tm)
    ra, dec = radec_deg(pos)
    east, north, _ = _basis(pos)
    unit = np.array([m.unit for m in members])
    resid = [_angle(a, b) for a, b in zip(unit, motion.position(times))]
    return {"tracklet": tid, "n_frames": len(members), "t_ref": t0 + tm * u.s, "ra_deg": float(ra),
            "dec_deg": float(dec), "ra_rate_deg_s": float(np.degrees(velocity @ east)),
            "dec_rate_deg_s": float(np.degrees(velocity @ north)),
            "sigma_arcsec": float(motion.sigma_rad(tm)[0]) * ARCSEC_PER_RAD,
            "rms_arcsec": float(np.sqrt(np.mean(np.square(resid)))) * ARCSEC_PER_RAD,
            "degree": motion.degree, "model": "projective" if isinstance(motion, _ProjectiveMotion) else "angles",
            "t_first": t0 + times.min() * u.s, "t_last": t0 + times.max() * u.s}


def _tracklet_table(rows) -> Table:
    names = ("tracklet", "n_frames", "t_ref", "ra_deg", "dec_deg", "ra_rate_deg_s", "dec_rate_deg_s",
             "sigma_arcsec", "rms_arcsec", "degree", "model", "t_first", "t_last")
    times = ("t_ref", "t_first", "t_last")
    tab = Table({n: [r[n] for r in rows] for n in names if n not in times},
                dtype=[np.int64, int, float, float, float, float, float, float, int, "U10"])
    for c in times:
        tab[c] = Time([r[c] for r in rows]) if rows else Time([], format="mjd", scale="utc")
    for col, unit in (("ra_deg", "deg"), ("dec_deg", "deg"), ("ra_rate_deg_s", "deg/s"),
                      ("dec_rate_deg_s", "deg/s"), ("sigma_arcsec", "arcsec"), ("rms_arcsec", "arcsec")):
        tab[col].unit = unit
    return tab[list(names)]
