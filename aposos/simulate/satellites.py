"""Truth directions of satellites as seen against the stars (skyfield code path).

This is deliberately *not* the reduction's prediction code (which uses astropy's TEME
frame and ``SatrecArray``): it uses skyfield's ``EarthSatellite`` (TEME -> GCRS by
skyfield's own precession-nutation), the station from :func:`aposos.earth.skyfield_site` on
:func:`aposos.earth.timescale` (UT1 and polar motion from the offline IERS table), and the
observer's barycentric velocity from DE421. The tests hold it against an independent
astropy computation.

What is computed, for an exposure instant ``t`` (UTC) at the station:

1. **Light time**: the satellite is seen where it was at ``t - tau`` with
   ``tau = |r_sat(t - tau) - r_obs(t)| / c`` (iterated; GCRS, km).
2. **Geometric topocentric direction** ``u = r / |r|`` (GCRS axes = ICRS axes).
3. **Star-relative direction** (what a plate solution against catalog stars measures):
   the image shows the satellite aberrated by the observer's *geocentric* velocity
   ``v_d`` (the satellite moves with the Earth), and shows the stars aberrated by the
   observer's *barycentric* velocity ``v_E + v_d``; the plate solution removes the latter
   from everything in the frame. So the measured direction is
   ``aberrate(aberrate(u, v_d), -(v_E + v_d))``: to first order ``u`` displaced by minus
   the annual aberration (up to 20.5 arcsec). The diurnal part (0.3 arcsec) affects
   stars and satellite alike and cancels; what remains of it is second order
   (``v_E v_d / c^2`` ~ 1e-5 arcsec). Gravitational light deflection by the Sun (stars
   only, < 4 mas at night-time elongations) is neglected.

Also here: Earth-shadow illumination (conical: umbra, penumbra by disc overlap), altitude
above the horizon, solar phase angle, a diffuse-sphere brightness model, angular rates.
"""

from __future__ import annotations

import functools
import math

import astropy.units as u
import numpy as np
from astropy.time import Time

from .. import earth

C_KM_S = 299792.458
SUN_RADIUS_KM = 696_000.0
EARTH_RADIUS_KM = 6378.137  # WGS84 equatorial; shadow uses a sphere of this radius
SUN_V_MAG = -26.74
AU_KM = 149_597_870.700


def aberrate(u, v_km_s):
    """Direction ``u`` (unit vectors, (..., 3)) as seen by an observer moving at ``v_km_s``.

    Special-relativistic formula (the one the IAU SOFA ``ab`` routine implements without
    light deflection): ``u' = (u / gamma + beta + (u.beta) beta / (1 + 1/gamma)) / (1 + u.beta)``.
    Aberrating by ``-v`` inverts aberrating by ``v``.
    """
    u = np.asarray(u, float)
    beta = np.asarray(v_km_s, float) / C_KM_S
    b2 = np.sum(beta * beta, axis=-1, keepdims=True)
    inv_gamma = np.sqrt(1.0 - b2)
    ub = np.sum(u * beta, axis=-1, keepdims=True)
    w = (inv_gamma * u + beta + ub * beta / (1.0 + inv_gamma)) / (1.0 + ub)
    return w / np.linalg.norm(w, axis=-1, keepdims=True)


def radec_deg(u):
    """RA in [0, 360) and Dec (deg) of unit vectors (..., 3)."""
    u = np.asarray(u, float)
    ra = np.degrees(np.arctan2(u[..., 1], u[..., 0])) % 360.0
    dec = np.degrees(np.arcsin(np.clip(u[..., 2] / np.linalg.norm(u, axis=-1), -1, 1)))
    return ra, dec


@functools.cache
def _skyfield_satellite(line1: str, line2: str):
    from skyfield.api import EarthSatellite

    return EarthSatellite(line1, line2, ts=earth.timescale())


def _shifted(t_sf, seconds):
    """skyfield Time ``t_sf`` moved by ``seconds`` (array), keeping the two-part precision."""
    return earth.timescale().tt_jd(t_sf.whole, t_sf.tt_fraction - np.asarray(seconds) / 86400.0)


def topocentric(tle, station, times: Time, *, light_time: bool = True):
    """Geometric topocentric state of ``tle`` seen from ``station`` at UTC ``times``.

    Returns a dict of arrays: ``r_km`` (N, 3) satellite at emission minus observer at
    reception (GCRS/ICRS axes), ``sat_gcrs_km`` (N, 3) satellite position at emission,
    ``obs_gcrs_km`` and ``obs_vel_km_s`` (N, 3) observer geocentric position and velocity,
    ``light_time_s`` (N,), ``t_emit`` (skyfield Time), ``t`` (skyfield Time),
    ``sgp4_failed`` (N,) bool, True where SGP4 gave no position (decayed, bad elements).
    """
    times = Time(times, scale="utc")
    t = earth.skyfield_time(np.atleast_1d(times))
    sat = _skyfield_satellite(tle.line1, tle.line2)
    site = earth.skyfield_site(station.lat_deg, station.lon_deg, station.height_m)
    obs = site.at(t)
    obs_pos = obs.position.km.T
    lt = np.zeros(len(t))
    t_emit = t
    for _ in range(4 if light_time else 1):
        t_emit = _shifted(t, lt)
        geo = sat.at(t_emit)
        r = geo.position.km.T - obs_pos
        if not light_time:
            break
        lt = np.linalg.norm(r, axis=1) / C_KM_S
    return {"r_km": r, "sat_gcrs_km": geo.position.km.T, "obs_gcrs_km": obs_pos,
            "obs_vel_km_s": obs.velocity.km_per_s.T, "light_time_s": lt, "t_emit": t_emit, "t": t,
            "sgp4_failed": np.isnan(r).any(axis=1)}


def earth_velocity_km_s(t_sf):
    """Barycentric velocity of the geocentre (km/s, (N, 3), ICRS) from DE421."""
    return earth.ephemeris()["earth"].at(t_sf).velocity.km_per_s.T


def sun_gcrs_km(t_sf):
    """Geocentric position of the Sun (km, (N, 3)), geometric (no light time: < 0.01 deg)."""
    eph = earth.ephemeris()
    return (eph["sun"].at(t_sf).position.km - eph["earth"].at(t_sf).position.km).T


def star_relative(tle, station, times: Time):
    """Star-relative RA/Dec (deg) and range (km) of a satellite: see the module docstring.

    Returns ``(ra_deg, dec_deg, range_km, state)`` where ``state`` is the dict of
    :func:`topocentric`.
    """
    st = topocentric(tle, station, times)
    u = st["r_km"] / np.linalg.norm(st["r_km"], axis=1, keepdims=True)
    v_d = st["obs_vel_km_s"]
    v_bary = earth_velocity_km_s(st["t"]) + v_d
    seen = aberrate(u, v_d)  # what the camera sees of the satellite
    measured = aberrate(seen, -v_bary)  # the plate solution undoes the stars' aberration
    ra, dec = radec_deg(measured)
    return ra, dec, np.linalg.norm(st["r_km"], axis=1), st


def altitude_deg(station, t_sf, r_km):
    """Elevation (deg, geometric, no refraction) of topocentric GCRS vectors ``r_km`` (N, 3)."""
    from skyfield.functions import mxv

    site = earth.skyfield_site(station.lat_deg, station.lon_deg, station.height_m)
    R = site.rotation_at(t_sf)  # GCRS -> (north, west, up)
    local = mxv(R, np.asarray(r_km).T)
    return np.degrees(np.arcsin(local[2] / np.linalg.norm(local, axis=0)))


def _disc_overlap(r1, r2, d):
    """Overlap area of two discs of radii ``r1``, ``r2`` whose centres are ``d`` apart."""
    r1, r2, d = np.broadcast_arrays(*(np.asarray(a, float) for a in (r1, r2, d)))
    area = np.zeros(r1.shape)
    full = d <= np.abs(r1 - r2)
    area[full] = math.pi * np.minimum(r1, r2)[full] ** 2
    part = (~full) & (d < r1 + r2)
    a, b, c = r1[part], r2[part], d[part]
    al = np.arccos(np.clip((c**2 + a**2 - b**2) / (2 * c * a), -1, 1))
    be = np.arccos(np.clip((c**2 + b**2 - a**2) / (2 * c * b), -1, 1))
    area[part] = a**2 * (al - np.sin(2 * al) / 2) + b**2 * (be - np.sin(2 * be) / 2)
    return area


def illuminated_fraction(sat_gcrs_km, sun_gcrs_km):
    """Fraction of the solar disc visible from the satellite (1 sunlit, 0 umbra, between: penumbra).

    Conical shadow of a spherical Earth (radius 6378.137 km): the apparent discs of Sun and
    Earth seen from the satellite and their overlap. Inputs (N, 3) km, geocentric.
    """
    sat = np.atleast_2d(sat_gcrs_km)
    to_sun = np.atleast_2d(sun_gcrs_km) - sat
    to_earth = -sat
    ds, de = np.linalg.norm(to_sun, axis=1), np.linalg.norm(to_earth, axis=1)
    a_sun = np.arcsin(SUN_RADIUS_KM / ds)
    a_earth = np.arcsin(np.clip(EARTH_RADIUS_KM / de, -1, 1))
    sep = np.arccos(np.clip(np.sum(to_sun * to_earth, axis=1) / (ds * de), -1, 1))
    hidden = _disc_overlap(a_sun, a_earth, sep) / (math.pi * a_sun**2)
    return np.clip(1.0 - hidden, 0.0, 1.0)


def phase_angle_deg(sat_gcrs_km, obs_gcrs_km, sun_gcrs_km):
    """Sun-satellite-observer angle (deg): 0 is full phase (Sun behind the observer)."""
    to_sun = np.atleast_2d(sun_gcrs_km) - sat_gcrs_km
    to_obs = np.atleast_2d(obs_gcrs_km) - sat_gcrs_km
    c = np.sum(to_sun * to_obs, axis=1) / (np.linalg.norm(to_sun, axis=1) * np.linalg.norm(to_obs, axis=1))
    return np.degrees(np.arccos(np.clip(c, -1, 1)))


def diffuse_sphere_mag(radius_m, albedo, range_km, phase_deg, lit_fraction=1.0):
    """Visual magnitude of a Lambertian sphere (Bond albedo ``albedo``, radius ``radius_m``).

    ``F/F_sun = p (R/d)^2 phi(alpha)`` with geometric albedo ``p = 2/3 albedo`` and the
    Lambert phase law ``phi = (sin a + (pi - a) cos a) / pi``; scaled by the lit fraction
    of the Sun (penumbra). Fully eclipsed objects get ``inf``. A 1 m sphere of albedo 0.2 at
    1000 km and zero phase is magnitude 5.5; a 2.5 m one at GEO range ~ 12.
    """
    a = np.radians(phase_deg)
    phi = (np.sin(a) + (np.pi - a) * np.cos(a)) / np.pi
    ratio = (2.0 / 3.0) * albedo * (np.asarray(radius_m) / (np.asarray(range_km) * 1e3)) ** 2 * phi * lit_fraction
    with np.errstate(divide="ignore"):
        return np.where(ratio > 0, SUN_V_MAG - 2.5 * np.log10(np.maximum(ratio, 1e-300)), np.inf)


def observe(tle, station, times: Time):
    """Everything the simulator needs about one satellite at UTC ``times`` (arrays of length N).

    Returns a dict: ``ra_deg, dec_deg`` (star-relative), ``range_km``, ``alt_deg``,
    ``lit`` (illuminated fraction), ``phase_deg``, ``mag`` (diffuse sphere, inf when
    eclipsed), ``light_time_s``, ``rate_ra_arcsec_s`` (includes cos dec) and
    ``rate_dec_arcsec_s`` (by +-0.5 s central differences).
    """
    times = Time(times, scale="utc")
    times = times.reshape(-1) if times.shape else times.reshape(1)
    ra, dec, rng_km, st = star_relative(tle, station, times)
    sun = sun_gcrs_km(st["t_emit"])
    lit = illuminated_fraction(st["sat_gcrs_km"], sun)
    phase = phase_angle_deg(st["sat_gcrs_km"], st["obs_gcrs_km"], sun)
    mag = diffuse_sphere_mag(tle.radius_m, tle.albedo, rng_km, phase, lit)
    ra_p, dec_p, _, _ = star_relative(tle, station, times + 0.5 * u.s)
    ra_m, dec_m, _, _ = star_relative(tle, station, times - 0.5 * u.s)
    rate_ra = ((ra_p - ra_m + 180.0) % 360.0 - 180.0) * np.cos(np.radians(dec)) * 3600.0
    rate_dec = (dec_p - dec_m) * 3600.0
    return {"ra_deg": ra, "dec_deg": dec, "range_km": rng_km, "alt_deg": altitude_deg(station, st["t"], st["r_km"]),
            "lit": lit, "phase_deg": phase, "mag": mag, "light_time_s": st["light_time_s"],
            "rate_ra_arcsec_s": rate_ra, "rate_dec_arcsec_s": rate_dec}


def sun_altitude_deg(station, times: Time):
    """Altitude of the Sun's centre (deg, geometric) at the station: < -12 is nautical darkness."""
    times = Time(times, scale="utc")
    t = earth.skyfield_time(np.atleast_1d(times))
    site = earth.skyfield_site(station.lat_deg, station.lon_deg, station.height_m)
    r = sun_gcrs_km(t) - site.at(t).position.km.T
    return altitude_deg(station, t, r)

