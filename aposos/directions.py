"""Where an Earth satellite appears against the stars from a station: the reduction's physics.

The chain, vectorised over any leading shape (objects, times):

1. satellite position in GCRS (km): SGP4 gives TEME; :func:`teme_to_gcrs_matrix` rotates it
   (astropy's TEME -> ITRS -> GCRS, IERS polar motion and UT1 included);
2. observer position and velocity in GCRS: :func:`observer_posvel_gcrs` (astropy, WGS84);
3. light time: the satellite is seen where it was ``range / c`` earlier
   (:func:`solve_light_time`);
4. the *star-relative* direction (:func:`star_relative_unit`): the topocentric geometric
   direction is aberrated by the observer's geocentric velocity (what the camera sees), then
   un-aberrated by the observer's full barycentric velocity (what a plate solution against
   catalog stars removes). Net effect: minus the annual aberration, up to ~20.5 arcsec.
   This is the convention of IOD/MPC/TDM angle reports and of :mod:`aposos.astrometry`.

Gravitational light deflection by the Sun, which the plate solution also removes from the
stars, is ignored: < 4 mas at solar elongations > 90 deg (night-time observing).

The simulator computes the same directions through skyfield by another code path; the tests
hold the two against each other.
"""

from __future__ import annotations

import erfa
import numpy as np
from astropy import units as u
from astropy.coordinates import GCRS, TEME, CartesianRepresentation, get_body_barycentric_posvel
from astropy.time import Time

from . import earth  # noqa: F401  (offline IERS)

C_KM_S = 299792.458
AU_KM = 149597870.700


def _times(times) -> Time:
    t = Time(times)
    return t.reshape((1,)) if t.isscalar else t


def teme_to_gcrs_matrix(times) -> np.ndarray:
    """Rotation matrices taking TEME vectors to GCRS at each time, shape ``times.shape + (3, 3)``.

    TEME -> GCRS is a pure rotation for geocentric vectors; each matrix is built by sending
    the three basis vectors through astropy's TEME -> GCRS transform.
    """
    t = _times(times)
    flat = t.ravel()
    n = flat.size
    basis = np.repeat(np.eye(3)[None, :, :] * 1e4, n, axis=0)  # (n, 3 vectors, 3 xyz), km
    tt = Time(np.repeat(flat.jd1, 3), np.repeat(flat.jd2, 3), format="jd", scale=flat.scale)
    xyz = basis.reshape(-1, 3).T
    teme = TEME(CartesianRepresentation(xyz * u.km), obstime=tt)
    gcrs = teme.transform_to(GCRS(obstime=tt))
    out = gcrs.cartesian.xyz.to_value(u.km).T.reshape(n, 3, 3) / 1e4  # rows: images of e_i
    return np.swapaxes(out, -1, -2).reshape(t.shape + (3, 3))


def teme_to_gcrs_matrix_interpolated(times, spacing_s: float = 1800.0) -> np.ndarray:
    """:func:`teme_to_gcrs_matrix` from exact matrices every ``spacing_s``, linearly interpolated.

    TEME -> GCRS holds no Earth rotation (GMST and polar motion cancel between TEME -> ITRS
    and ITRS -> GCRS up to sub-mas daily terms): precession, nutation and the GMST/ERA
    difference, so the elements are smooth. Measured interpolation error (max element, rad):
    7e-13 at 600 s nodes, 6e-12 at 1800 s (1.3 micro-arcsec), 2.5e-11 at 3600 s. Worth it
    for more than a few hundred times.
    """
    t = _times(times)
    flat = t.utc.ravel()
    t0 = flat.min()
    sec = (flat - t0).to_value(u.s)
    n_nodes = max(2, int(np.ceil(sec.max() / spacing_s)) + 1)
    if n_nodes >= flat.size:
        return teme_to_gcrs_matrix(t)
    node_sec = np.linspace(0.0, max(sec.max(), 1.0), n_nodes)
    nodes = teme_to_gcrs_matrix(t0 + node_sec * u.s).reshape(n_nodes, 9)
    out = np.stack([np.interp(sec, node_sec, nodes[:, k]) for k in range(9)], axis=-1)
    return out.reshape(t.shape + (3, 3))


def teme_to_gcrs(r_teme_km, times) -> np.ndarray:
    """Rotate TEME positions (``times.shape + (3,)`` or broadcastable) to GCRS, km."""
    m = teme_to_gcrs_matrix(times)
    return np.einsum("...ij,...j->...i", m, r_teme_km)


def observer_posvel_gcrs(location, times):
    """Station position (km) and velocity (km/s) in GCRS, each ``times.shape + (3,)``."""
    t = _times(times)
    pos, vel = location.get_gcrs_posvel(t.ravel())
    p = pos.xyz.to_value(u.km).T.reshape(t.shape + (3,))
    v = vel.xyz.to_value(u.km / u.s).T.reshape(t.shape + (3,))
    return p, v


def earth_barycentric_velocity(times) -> np.ndarray:
    """Velocity of the geocentre relative to the solar-system barycentre, km/s, ``times.shape + (3,)``.

    From astropy's built-in ephemeris (ERFA epv00; ~1 mm/s, i.e. far below a milli-arcsecond
    of aberration), no download.
    """
    t = _times(times)
    _, vel = get_body_barycentric_posvel("earth", t.ravel(), ephemeris="builtin")
    return vel.xyz.to_value(u.km / u.s).T.reshape(t.shape + (3,))


def sun_observer_distance_au(times) -> np.ndarray:
    """Sun-Earth distance in au (for the small gravitational term of the aberration formula)."""
    t = _times(times)
    pos, _ = get_body_barycentric_posvel("earth", t.ravel(), ephemeris="builtin")
    sun, _ = get_body_barycentric_posvel("sun", t.ravel(), ephemeris="builtin")
    return np.linalg.norm((pos - sun).xyz.to_value(u.au), axis=0).reshape(t.shape)


def solve_light_time(position_at, times, observer_km, iterations: int = 3):
    """Topocentric geometric vectors corrected for light time.

    Parameters
    ----------
    position_at : callable
        ``position_at(dt_s) -> r_km``: satellite GCRS position at ``times + dt_s`` (seconds,
        an array of the result's shape); must broadcast like ``observer_km[..., 0]``.
    times : Time
        Reception times (UTC).
    observer_km : array (..., 3)
        Observer GCRS positions at ``times``.

    Returns
    -------
    r_topo_km : array (..., 3)
        ``r_sat(t - lt) - r_obs(t)``.
    light_time_s : array (...)
    """
    lt = np.zeros(np.shape(observer_km)[:-1])
    for _ in range(iterations):
        r = position_at(-lt) - observer_km
        lt = np.linalg.norm(r, axis=-1) / C_KM_S
    return position_at(-lt) - observer_km, lt


def _unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _aberrate(n, v_km_s, s_au):
    """Relativistic aberration (ERFA ``ab``): natural direction ``n`` seen by an observer moving at ``v``."""
    beta = v_km_s / C_KM_S
    bm1 = np.sqrt(1.0 - np.sum(beta * beta, axis=-1))
    n, beta, s_au, bm1 = np.broadcast_arrays(n, beta, s_au[..., None], bm1[..., None])
    return erfa.ab(np.ascontiguousarray(n), np.ascontiguousarray(beta), s_au[..., 0], bm1[..., 0])


def _unaberrate(n_app, v_km_s, s_au, iterations: int = 3):
    """Inverse of :func:`_aberrate` (fixed-point iteration; converged to < 1e-15 rad in 3 steps)."""
    n = n_app
    for _ in range(iterations):
        n = _unit(n + (n_app - _aberrate(n, v_km_s, s_au)))
    return n


def star_relative_unit(r_topo_km, observer_vel_km_s, earth_vel_km_s, sun_distance_au=None):
    """Unit vectors (ICRF axes) of the star-relative direction of a nearby object.

    ``r_topo_km`` is the light-time corrected topocentric geometric vector in GCRS; the
    object appears aberrated by the observer's geocentric velocity, and the plate solution
    maps the image onto catalog stars, removing the aberration of the observer's
    barycentric velocity (``earth_vel + observer_vel``).
    """
    s = np.ones(np.shape(r_topo_km)[:-1]) if sun_distance_au is None else np.broadcast_to(
        sun_distance_au, np.shape(r_topo_km)[:-1])
    seen = _aberrate(_unit(r_topo_km), observer_vel_km_s, s)
    return _unaberrate(seen, np.asarray(earth_vel_km_s) + observer_vel_km_s, s)


def radec_deg(unit):
    """RA in [0, 360) and Dec (degrees) of unit vectors ``(..., 3)``."""
    x, y, z = unit[..., 0], unit[..., 1], unit[..., 2]
    return np.degrees(np.arctan2(y, x)) % 360.0, np.degrees(np.arctan2(z, np.hypot(x, y)))


def unit_from_radec(ra_deg, dec_deg):
    """Unit vectors ``(..., 3)`` from RA/Dec in degrees."""
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    cd = np.cos(dec)
    return np.stack([cd * np.cos(ra), cd * np.sin(ra), np.sin(dec)], axis=-1)


def star_relative_radec(position_at, location, times):
    """Star-relative RA/Dec (deg) and range (km) of an object seen from ``location`` at ``times``.

    ``position_at(dt_s)`` gives the object's GCRS position (km) at ``times + dt_s`` with the
    shape of ``times`` (plus a trailing 3); see :func:`solve_light_time`.
    """
    t = _times(times)
    obs_p, obs_v = observer_posvel_gcrs(location, t)
    r_topo, _ = solve_light_time(position_at, t, obs_p)
    unit = star_relative_unit(r_topo, obs_v, earth_barycentric_velocity(t), sun_observer_distance_au(t))
    ra, dec = radec_deg(unit)
    return ra, dec, np.linalg.norm(r_topo, axis=-1)
