"""Angles-only initial orbit determination: Gauss's method with iterative refinement.

Three lines of sight ``L1, L2, L3`` from observer positions ``R1, R2, R3`` at times
``t1 < t2 < t3`` (one station or several).

1. Starting values of the geocentric distance ``r2``: the roots of Gauss's eighth-degree
   polynomial (truncated f and g series; good for short spacing), and the radii at which a
   *circular* orbit is consistent with the outer slant ranges (exact f, g of a circle; good
   for GEO tracklets hours apart, where the series fails).
2. From each start, the outer slant ranges ``rho1, rho3`` are iterated with exact two-body
   f and g (universal variable, :func:`~aposos.orbit.propagate.kepler_fg`; damped update,
   Curtis Algorithm 5.6). The middle state follows from ``r1, r3`` and f, g; the middle range
   of the classical formulas is not used because it is ill-conditioned for nearly coplanar
   lines of sight (GEO seen from one station). If the iteration diverges, the unrefined state
   is kept when it is a bound orbit above the Earth: the least-squares fit that follows
   decides.

Why Gauss and not Gooding: Gooding's method (R. H. Gooding, "A new procedure for orbit
determination based on three lines of sight (angles only)", DRA TR 93004, 1993) corrects two
ranges by Newton iteration through a multi-revolution Lambert solver, so it handles arcs
spanning revolutions and any site configuration. Here the two needs it covers are met
differently: a LEO pass alone spans 5-15 deg of geocentric arc (Gauss within one tracklet
works, ~1 km), GEO tracklets of one night are tens of degrees apart (Gauss with the circular
start), and revolutions between tracklets are bridged by the least-squares arc growth of
:mod:`aposos.orbit.solve`, which scans the mean motion for the revolution count. A single very
short arc (one GEO tracklet) gives no candidate: the caller reports it as undetermined.

Light time and aberration are ignored here (< 0.5 km in GEO); the least-squares fit models
them.
"""

from __future__ import annotations

import numpy as np

from .propagate import MU_KM3_S2, R_EARTH_KM, kepler_fg


def gauss(t_s, los, obs_km, mu=MU_KM3_S2, max_iter=100):
    """Candidate states at the middle time from three observations.

    Parameters
    ----------
    t_s : (3,) times, s (any origin), increasing
    los : (3, 3) unit lines of sight (rows), same frame as ``obs_km``
    obs_km : (3, 3) observer positions, km

    Returns
    -------
    list of (r2_km, v2_km_s) arrays, possibly empty.
    """
    t1, t2, t3 = t_s
    tau1, tau3 = t1 - t2, t3 - t2
    tau = tau3 - tau1
    L1, L2, L3 = los
    R1, R2, R3 = obs_km
    p1, p2, p3 = np.cross(L2, L3), np.cross(L1, L3), np.cross(L1, L2)
    D0 = L1 @ p1
    if abs(D0) < 1e-14 or not (tau1 < 0 < tau3):
        return []
    D = np.array([[R @ p for p in (p1, p2, p3)] for R in (R1, R2, R3)])  # D[i, j] = R_i . p_j
    starts = [_series_fg(r2, tau1, tau3, mu) for r2 in _series_roots(tau1, tau3, tau, D, D0, R2, L2, mu)]
    starts += [_circular_fg(r2, tau1, tau3, mu) for r2 in _circular_roots(tau1, tau3, D, D0, R1, L1, R3, L3, mu)]
    out = []
    for fg in starts:
        state = _refine(fg, (tau1, tau3), D, D0, los, obs_km, mu, max_iter)
        if state is None:  # iteration diverged: keep the unrefined state if it is an orbit
            rho = _ranges(fg, D, D0)
            raw = _state(fg, rho, los, obs_km)
            state = raw if rho[0] > 0 and rho[2] > 0 and _bound(*raw, mu) else None
        if state is not None and not any(np.linalg.norm(state[0] - o[0]) < 1e-3 for o in out):
            out.append(state)
    return out


def _series_roots(tau1, tau3, tau, D, D0, R2, L2, mu):
    """Roots r2 (km) of Gauss's eighth-degree polynomial (truncated f, g series)."""
    A = (-D[0, 1] * tau3 / tau + D[1, 1] + D[2, 1] * tau1 / tau) / D0
    B = (D[0, 1] * (tau3 ** 2 - tau ** 2) * tau3 / tau + D[2, 1] * (tau ** 2 - tau1 ** 2) * tau1 / tau) / (6 * D0)
    E = R2 @ L2
    a = -(A ** 2 + 2 * A * E + R2 @ R2)
    b = -2 * mu * B * (A + E)
    c = -(mu * B) ** 2
    roots = np.roots([1, 0, a, 0, 0, b, 0, 0, c])
    return roots[(np.abs(roots.imag) < 1e-6 * np.abs(roots)) & (roots.real > R_EARTH_KM)].real


def _series_fg(r2, tau1, tau3, mu):
    u = mu / r2 ** 3
    return (1 - 0.5 * u * tau1 ** 2, 1 - 0.5 * u * tau3 ** 2, tau1 - u * tau1 ** 3 / 6, tau3 - u * tau3 ** 3 / 6)


def _circular_fg(r2, tau1, tau3, mu):
    n = np.sqrt(mu / np.asarray(r2, float) ** 3)
    return np.cos(n * tau1), np.cos(n * tau3), np.sin(n * tau1) / n, np.sin(n * tau3) / n


def _ranges(fg, D, D0):
    """Slant ranges from f and g (Curtis eq. 5.117 with c1, c3 from f and g)."""
    f1, f3, g1, g3 = fg
    den = f1 * g3 - f3 * g1
    c1, c3 = g3 / den, -g1 / den
    return np.array([
        (-D[0, 0] + D[1, 0] / c1 - D[2, 0] * c3 / c1) / D0,
        (-c1 * D[0, 1] + D[1, 1] - c3 * D[2, 1]) / D0,
        (-c1 / c3 * D[0, 2] + D[1, 2] / c3 - D[2, 2]) / D0,
    ])


def _circular_roots(tau1, tau3, D, D0, R1, L1, R3, L3, mu):
    """Radii r (km) at which a circular orbit of radius r is consistent with the outer ranges.

    For each trial radius, f and g of the circular orbit give the outer slant ranges rho1,
    rho3; a root is where the mean of |r1|, |r3| equals r. Exact for circular orbits at any
    spacing shorter than half a revolution; the start of the iteration where the f, g series
    fails (GEO tracklets hours apart). The middle range (ill-conditioned when the three lines
    of sight are nearly coplanar) is not used.
    """
    def mismatch(r):
        rho = _ranges(_circular_fg(r, tau1, tau3, mu), D, D0)
        with np.errstate(invalid="ignore"):
            r1 = np.linalg.norm(R1 + np.multiply.outer(rho[0], L1), axis=-1)
            r3 = np.linalg.norm(R3 + np.multiply.outer(rho[2], L3), axis=-1)
        return np.where((rho[0] > 0) & (rho[2] > 0), 0.5 * (r1 + r3) - r, np.nan)

    grid = np.geomspace(R_EARTH_KM + 100, 200000.0, 600)
    resid = mismatch(grid)
    out = []
    for k in np.flatnonzero(np.sign(resid[:-1]) * np.sign(resid[1:]) < 0):
        lo, hi, flo = grid[k], grid[k + 1], resid[k]
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            fm = mismatch(mid)
            if np.sign(fm) == np.sign(flo):
                lo, flo = mid, fm
            else:
                hi = mid
        out.append(0.5 * (lo + hi))
    return out


def _state(fg, rho, los, obs_km):
    """Middle state (r2, v2) from the outer positions r1, r3 and f, g: r_k = f_k r2 + g_k v2."""
    f1, f3, g1, g3 = fg
    r1 = obs_km[0] + rho[0] * los[0]
    r3 = obs_km[2] + rho[2] * los[2]
    den = f1 * g3 - f3 * g1
    return (g3 * r1 - g1 * r3) / den, (-f3 * r1 + f1 * r3) / den


def _refine(fg, taus, D, D0, los, obs_km, mu, max_iter):
    """Iterate the outer slant ranges with exact two-body f and g from a first guess of f and g.

    Only rho1 and rho3 are iterated: the middle range (the D0-divided difference of the
    Gauss formulas) is ill-conditioned for near-coplanar geometry (GEO from one station); the
    middle state follows from r1, r3 and f, g instead.
    """
    rho = _ranges(fg, D, D0)
    for _ in range(max_iter):
        if not np.all(np.isfinite(rho[[0, 2]])) or (rho[[0, 2]] <= 0).any():
            return None
        r2v, v2 = _state(fg, rho, los, obs_km)
        if not _bound(r2v, v2, mu):
            return None
        f, g, _, _ = kepler_fg(r2v, v2, np.array(taus), mu)
        fg = tuple(0.5 * (a + b) for a, b in zip(fg, (f[0], f[1], g[0], g[1])))  # damped
        new = _ranges(fg, D, D0)
        done = max(abs(new[0] - rho[0]), abs(new[2] - rho[2])) < 1e-4
        rho = new
        if done:
            break
    else:
        return None
    r2v, v2 = _state(fg, rho, los, obs_km)
    return (r2v, v2) if _bound(r2v, v2, mu) else None


def _bound(r, v, mu):
    rn = np.linalg.norm(r)
    return bool(np.isfinite(rn) and np.all(np.isfinite(v)) and rn > R_EARTH_KM and 2 / rn - (v @ v) / mu > 0)
