"""Two-body and two-body + J2 propagation, and classical elements.

* :func:`kepler_fg` -- exact two-body Lagrange coefficients f, g (universal variable,
  Stumpff functions), vectorised; the iteration step of Gauss's method uses it.
* :func:`propagate_kepler` -- two-body state at other times.
* :func:`propagate_j2` -- numerical two-body + J2 (scipy DOP853, rtol 1e-11) about a given
  Earth pole; used to check states and as a physics model independent of SGP4.
* :func:`elements_from_state` -- osculating classical elements from a state.

Units: km, s, km/s, radians. Gravity constants are WGS72 (the SGP4/TLE convention).
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

MU_KM3_S2 = 398600.8  # WGS72, as SGP4
R_EARTH_KM = 6378.135  # WGS72
J2 = 0.001082616


def stumpff(z):
    """Stumpff functions C(z), S(z), stable near z = 0."""
    z = np.asarray(z, float)
    c = np.empty_like(z)
    s = np.empty_like(z)
    small = np.abs(z) < 1e-6
    pos = (z >= 1e-6)
    neg = (z <= -1e-6)
    sz = np.sqrt(z[pos])
    c[pos] = (1 - np.cos(sz)) / z[pos]
    s[pos] = (sz - np.sin(sz)) / sz ** 3
    sn = np.sqrt(-z[neg])
    c[neg] = (np.cosh(sn) - 1) / (-z[neg])
    s[neg] = (np.sinh(sn) - sn) / sn ** 3
    zs = z[small]
    c[small] = 0.5 - zs / 24 + zs ** 2 / 720
    s[small] = 1 / 6 - zs / 120 + zs ** 2 / 5040
    return c, s


def kepler_fg(r0, v0, dt, mu=MU_KM3_S2, iterations=50):
    """Lagrange coefficients ``f, g, fdot, gdot`` for two-body motion from (r0, v0) over ``dt`` s.

    ``r0, v0`` (..., 3) km, km/s; ``dt`` broadcastable to ``r0[..., 0]``. Newton iteration
    on the universal anomaly (Curtis, Algorithm 3.3), any conic, any number of revolutions.
    """
    r0 = np.asarray(r0, float)
    v0 = np.asarray(v0, float)
    dt = np.asarray(dt, float)
    rn = np.linalg.norm(r0, axis=-1)
    vr = np.sum(r0 * v0, axis=-1) / rn
    alpha = 2 / rn - np.sum(v0 * v0, axis=-1) / mu  # 1/a
    rn, vr, alpha, dt = np.broadcast_arrays(rn, vr, alpha, dt)
    sqmu = np.sqrt(mu)
    chi = sqmu * np.abs(alpha) * dt
    chi = np.where(alpha > 1e-12, sqmu * alpha * dt, sqmu * dt / rn)
    for _ in range(iterations):
        z = alpha * chi ** 2
        c, s = stumpff(z)
        F = rn * vr / sqmu * chi ** 2 * c + (1 - alpha * rn) * chi ** 3 * s + rn * chi - sqmu * dt
        dF = rn * vr / sqmu * chi * (1 - z * s) + (1 - alpha * rn) * chi ** 2 * c + rn
        step = F / dF
        chi = chi - step
        if np.all(np.abs(step) < 1e-10 * np.maximum(1, np.abs(chi))):
            break
    z = alpha * chi ** 2
    c, s = stumpff(z)
    f = 1 - chi ** 2 / rn * c
    g = dt - chi ** 3 / sqmu * s
    r = chi ** 2 * c + rn * vr / sqmu * chi * (1 - z * s) + rn * (1 - z * c)  # |r(dt)|
    fdot = sqmu / (r * rn) * (alpha * chi ** 3 * s - chi)
    gdot = 1 - chi ** 2 / r * c
    return f, g, fdot, gdot


def propagate_kepler(r0, v0, dt, mu=MU_KM3_S2):
    """Two-body positions and velocities at ``dt`` seconds from (r0, v0); shapes (..., 3)."""
    f, g, fd, gd = kepler_fg(r0, v0, dt, mu)
    r = f[..., None] * r0 + g[..., None] * v0
    v = fd[..., None] * r0 + gd[..., None] * v0
    return r, v


def elements_from_state(r, v, mu=MU_KM3_S2):
    """Osculating elements of one state: dict a_km, e, i, raan, argp, M (rad), n_rad_s."""
    r = np.asarray(r, float)
    v = np.asarray(v, float)
    h = np.cross(r, v)
    rn = np.linalg.norm(r)
    node = np.cross([0.0, 0.0, 1.0], h)
    ev = ((v @ v - mu / rn) * r - (r @ v) * v) / mu
    e = np.linalg.norm(ev)
    a = 1 / (2 / rn - (v @ v) / mu)
    inc = np.arccos(np.clip(h[2] / np.linalg.norm(h), -1, 1))
    nn = np.linalg.norm(node)
    if nn < 1e-9 * np.linalg.norm(h):  # equatorial: node along x
        node = np.array([1.0, 0.0, 0.0])
        nn = 1.0
    raan = np.arctan2(node[1], node[0]) % (2 * np.pi)
    # perigee argument and true anomaly measured in the orbit plane from the node
    hz = h / np.linalg.norm(h)
    nx = node / nn
    ny = np.cross(hz, nx)
    if e < 1e-10:
        argp = 0.0
        nu = np.arctan2(r @ ny, r @ nx)
    else:
        argp = np.arctan2(ev @ ny, ev @ nx)
        nu = np.arctan2(np.cross(ev, r) @ hz, ev @ r)
    if e < 1:
        E = 2 * np.arctan2(np.sqrt(1 - e) * np.sin(nu / 2), np.sqrt(1 + e) * np.cos(nu / 2))
        M = E - e * np.sin(E)
        n = np.sqrt(mu / a ** 3)
    else:
        M, n = np.nan, np.nan
    return dict(a_km=a, e=e, i=inc, raan=raan, argp=argp % (2 * np.pi), M=M % (2 * np.pi), n_rad_s=n)


def j2_acceleration(r, pole, mu=MU_KM3_S2, j2=J2, re=R_EARTH_KM):
    """Two-body + J2 acceleration (km/s^2) at positions ``r`` (..., 3); ``pole`` is Earth's axis."""
    rn = np.linalg.norm(r, axis=-1, keepdims=True)
    z = np.sum(r * pole, axis=-1, keepdims=True)
    k = 1.5 * j2 * mu * re ** 2 / rn ** 5
    return -mu * r / rn ** 3 + k * ((5 * z ** 2 / rn ** 2 - 1) * r - 2 * z * pole)


def propagate_j2(state, dt_s, pole=(0.0, 0.0, 1.0), rtol=1e-11, j2=J2):
    """Two-body + J2 states (k, m, 6) at offsets ``dt_s`` (m,) from ``state`` (k, 6) (km, km/s).

    ``pole`` is the unit vector of Earth's rotation axis in the state's frame (in GCRS: the
    TEME z axis, :func:`aposos.directions.teme_to_gcrs_matrix` ``[..., :, 2]``). Forward and
    backward offsets are integrated separately from 0.
    """
    state = np.atleast_2d(np.asarray(state, float))
    dt_s = np.asarray(dt_s, float)
    pole = np.asarray(pole, float) / np.linalg.norm(pole)
    k = len(state)
    out = np.empty((k, dt_s.size, 6))

    def rhs(_t, y):
        y = y.reshape(k, 6)
        return np.concatenate([y[:, 3:], j2_acceleration(y[:, :3], pole, j2=j2)], axis=1).ravel()

    for sign in (1, -1):
        sel = np.flatnonzero(sign * dt_s > 0)
        zero = np.flatnonzero(dt_s == 0)
        out[:, zero] = state[:, None, :]
        if not sel.size:
            continue
        order = sel[np.argsort(sign * dt_s[sel])]
        sol = solve_ivp(rhs, (0.0, dt_s[order[-1]]), state.ravel(), method="DOP853",
                        t_eval=dt_s[order], rtol=rtol, atol=1e-9)
        if not sol.success:
            raise RuntimeError(f"J2 propagation failed: {sol.message}")
        out[:, order] = sol.y.reshape(k, 6, -1).transpose(0, 2, 1)
    return out
