"""Predicted star-relative positions of catalog objects from a station, vectorised.

For many objects and many times at once (``sgp4.api.SatrecArray``, arrays of shape
``(objects, times)``):

1. SGP4 position and velocity in TEME, rotated to GCRS by one matrix per time
   (:func:`aposos.directions.teme_to_gcrs_matrix`, applied with ``einsum``);
2. topocentric vector from the station (WGS84, IERS polar motion and UT1, astropy);
3. light time: ``r(t - lt) ~ r - v lt - (mu r / 2|r|^3) lt^2`` iterated (no re-propagation;
   the neglected jerk term is below 1 micrometre for Earth orbits);
4. star-relative direction (:func:`aposos.directions.star_relative_unit`: what a plate
   solution against catalog stars measures, i.e. minus the annual aberration);
5. angular rates, elevation, Earth shadow, solar phase angle.

Flags (``uint16`` bit mask, see :data:`SUNLIT`, :data:`ABOVE_HORIZON`): the SGP4 error code
(0 = fine; 1-6 as in ``sgp4.api.SGP4_ERRORS``) sits in bits 4-7 (:func:`sgp4_error`); where it
is non-zero the positions are NaN.

Rates: ``ra_rate_deg_s`` is dRA/dt * cos(Dec) (the on-sky rate), ``dec_rate_deg_s`` dDec/dt.
Sunlit follows skyfield's ``is_sunlit`` (the Sun's centre is not hidden by a spherical Earth
of radius 6378.1366 km; no penumbra); the Sun from astropy's built-in ephemeris.
Above horizon: geometric elevation > 0 (refraction not applied).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from astropy import units as u
from astropy.coordinates import EarthLocation, get_body_barycentric
from astropy.time import Time
from sgp4.api import Satrec, SatrecArray

from . import directions as d
from .errors import AposError
from .tle import TleEntry, as_entries

SUNLIT = 1
ABOVE_HORIZON = 2
SGP4_ERROR_SHIFT = 4
MU_KM3_S2 = 398600.4418
EARTH_RADIUS_SHADOW_KM = 6378.1366  # skyfield's ERAD


def sgp4_error(flags) -> np.ndarray:
    """SGP4 error code (0-6) held in ``flags``."""
    return (np.asarray(flags) >> SGP4_ERROR_SHIFT) & 0xF


def station_location(station) -> EarthLocation:
    """EarthLocation of a configured station name / config path, a Station, or an EarthLocation."""
    if isinstance(station, EarthLocation):
        return station
    if hasattr(station, "location"):
        return station.location
    if isinstance(station, str):
        from .config import load_station

        return load_station(station).location
    raise AposError(f"station must be a configured name or an EarthLocation, not {type(station).__name__}")


@dataclass(frozen=True)
class StationGeometry:
    """Everything per time that the prediction needs, computed once (arrays ``(T, ...)``).

    ``teme_to_gcrs`` rotation matrices; observer GCRS position (km) / velocity (km/s); local
    vertical (geodetic up, GCRS unit vector); Earth's barycentric velocity (km/s); Sun-Earth
    distance (au); geocentric Sun position (km, ICRF axes).
    """

    times: Time
    teme_to_gcrs: np.ndarray
    obs_pos_km: np.ndarray
    obs_vel_km_s: np.ndarray
    up: np.ndarray
    earth_vel_km_s: np.ndarray
    sun_distance_au: np.ndarray
    sun_pos_km: np.ndarray

    @property
    def jd(self):
        return self.times.jd1, self.times.jd2

    def take(self, index) -> "StationGeometry":
        """The geometry at a subset of its times (``index``: slice, integer or boolean array)."""
        return StationGeometry(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


def station_geometry(station, times) -> StationGeometry:
    """Per-time geometry of ``station`` at ``times`` (flattened to 1-D, UTC)."""
    loc = station_location(station)
    t = Time(times).utc
    t = t.reshape((1,)) if t.isscalar else t.ravel()
    pos, vel = d.observer_posvel_gcrs(loc, t)
    lon, lat, h = loc.to_geodetic("WGS84")
    lifted = EarthLocation.from_geodetic(lon, lat, h + 1 * u.km, ellipsoid="WGS84")
    up = d.observer_posvel_gcrs(lifted, t)[0] - pos  # 1 km along the geodetic normal
    earth_b = get_body_barycentric("earth", t, ephemeris="builtin")
    sun_b = get_body_barycentric("sun", t, ephemeris="builtin")
    sun = (sun_b - earth_b).xyz.to_value(u.km).T.reshape(-1, 3)
    return StationGeometry(
        times=t, teme_to_gcrs=d.teme_to_gcrs_matrix_interpolated(t), obs_pos_km=pos, obs_vel_km_s=vel,
        up=up / np.linalg.norm(up, axis=-1, keepdims=True),
        earth_vel_km_s=d.earth_barycentric_velocity(t),
        sun_distance_au=np.linalg.norm(sun, axis=-1) / d.AU_KM, sun_pos_km=sun,
    )


@dataclass
class Prediction:
    """Predictions, arrays of shape ``(objects, times)`` (see the module docstring)."""

    norad_id: np.ndarray
    times: Time
    ra_deg: np.ndarray
    dec_deg: np.ndarray
    range_km: np.ndarray
    ra_rate_deg_s: np.ndarray
    dec_rate_deg_s: np.ndarray
    elevation_deg: np.ndarray
    sunlit: np.ndarray
    error: np.ndarray
    phase_deg: np.ndarray | None = None

    @property
    def above_horizon(self) -> np.ndarray:
        return self.elevation_deg > 0

    @property
    def rate_deg_s(self) -> np.ndarray:
        return np.hypot(self.ra_rate_deg_s, self.dec_rate_deg_s)

    @property
    def flags(self) -> np.ndarray:
        f = self.sunlit.astype(np.uint16) * SUNLIT
        f |= self.above_horizon.astype(np.uint16) * ABOVE_HORIZON
        return f | (self.error.astype(np.uint16) << SGP4_ERROR_SHIFT)


def _satrecs(tles) -> tuple[list[Satrec], np.ndarray]:
    if isinstance(tles, Satrec):
        tles = [tles]
    tles = list(tles) if not hasattr(tles, "entries") else tles.entries
    if tles and all(isinstance(t, Satrec) for t in tles):
        return tles, np.array([t.satnum for t in tles], dtype=np.int64)
    entries: list[TleEntry] = as_entries(tles)
    return [e.satrec for e in entries], np.array([e.norad_id for e in entries], dtype=np.int64)


def observe(r_teme_km, v_teme_km_s, geom: StationGeometry, index=slice(None)) -> dict:
    """Star-relative observables of TEME states ``(..., 3)`` at ``geom`` times ``index``.

    ``index`` selects (and broadcasts) the per-time geometry against the states' leading
    shape: ``slice(None)`` for states shaped ``(objects, T, 3)``, an integer array of time
    indices for states shaped like that array (pairs). Returns a dict of arrays with the
    states' leading shape: ``ra_deg, dec_deg, range_km, ra_rate_deg_s, dec_rate_deg_s,
    elevation_deg, sunlit, phase_deg`` (Sun-object-observer angle, deg).
    """
    m = geom.teme_to_gcrs[index]
    r = np.einsum("...ij,...j->...i", m, r_teme_km, optimize=True)
    v = np.einsum("...ij,...j->...i", m, v_teme_km_s, optimize=True)
    obs_p, obs_v = geom.obs_pos_km[index], geom.obs_vel_km_s[index]
    acc = -MU_KM3_S2 * r / _norm(r)[..., None] ** 3
    lt = np.zeros(r.shape[:-1] + (1,))
    for _ in range(3):
        rho = r - v * lt + 0.5 * acc * lt * lt - obs_p
        lt = _norm(rho)[..., None] / d.C_KM_S
    rng = lt[..., 0] * d.C_KM_S
    n_geo = rho / rng[..., None]
    unit = d.star_relative_unit(rho, np.broadcast_to(obs_v, rho.shape),
                                np.broadcast_to(geom.earth_vel_km_s[index], rho.shape),
                                np.broadcast_to(geom.sun_distance_au[index], rng.shape))
    ra, dec = d.radec_deg(unit)
    w = v - obs_v  # relative velocity; rate changes from light time and aberration are < 1e-4
    dn = (w - n_geo * _dot(n_geo, w)[..., None]) / rng[..., None]  # d(unit)/dt, 1/s
    ra_r, dec_r = np.radians(ra), np.radians(dec)
    sin_ra, cos_ra, sin_dec = np.sin(ra_r), np.cos(ra_r), np.sin(dec_r)
    ra_rate = -sin_ra * dn[..., 0] + cos_ra * dn[..., 1]  # along e_ra = (-sin ra, cos ra, 0)
    dec_rate = -sin_dec * (cos_ra * dn[..., 0] + sin_ra * dn[..., 1]) + np.cos(dec_r) * dn[..., 2]
    elev = np.degrees(np.arcsin(np.clip(_dot(n_geo, np.broadcast_to(geom.up[index], n_geo.shape)), -1, 1)))
    sun = geom.sun_pos_km[index]
    return dict(
        ra_deg=ra, dec_deg=dec, range_km=rng,
        ra_rate_deg_s=np.degrees(ra_rate), dec_rate_deg_s=np.degrees(dec_rate),
        elevation_deg=elev, sunlit=is_sunlit(r, sun), phase_deg=phase_angle_deg(rho + obs_p, -rho, sun),
    )


def phase_angle_deg(r_km, to_observer_km, sun_km) -> np.ndarray:
    """Sun-object-observer angle (deg; 0 = full phase) of geocentric positions ``r_km`` (..., 3),
    with ``to_observer_km`` the vector object -> observer and ``sun_km`` the geocentric Sun."""
    to_sun = sun_km - r_km
    c = _dot(to_sun, to_observer_km) / (_norm(to_sun) * _norm(to_observer_km))
    return np.degrees(np.arccos(np.clip(c, -1.0, 1.0)))


def _dot(a, b):
    return np.einsum("...i,...i->...", a, b)


def _norm(a):
    return np.sqrt(_dot(a, a))


def is_sunlit(r_km, sun_km) -> np.ndarray:
    """True where the Sun's centre is visible from geocentric positions ``r_km`` (spherical Earth)."""
    to_sun = sun_km - r_km
    dirn = to_sun / _norm(to_sun)[..., None]
    b = _dot(r_km, dirn)  # ray r + s dirn, s >= 0, against |x| = R
    c = _dot(r_km, r_km) - EARTH_RADIUS_SHADOW_KM**2
    disc = b * b - c
    far = -b + np.sqrt(np.maximum(disc, 0))
    return ~((disc >= 0) & (far > 0))


def predict(tles, station, times) -> Prediction:
    """Predict star-relative RA/Dec, range, rates and flags for every object at every time.

    ``tles``: a :class:`~aposos.tle.TleCatalog`, a list of :class:`~aposos.tle.TleEntry`,
    of (line1, line2) pairs, or of ``Satrec``; ``station``: configured name, Station or
    EarthLocation; ``times``: astropy Time (scalar or 1-D). Arrays ``(objects, times)``.
    """
    sats, ids = _satrecs(tles)
    geom = station if isinstance(station, StationGeometry) else station_geometry(station, times)
    jd1, jd2 = geom.jd
    err, r, v = SatrecArray(sats).sgp4(np.ascontiguousarray(jd1), np.ascontiguousarray(jd2))
    bad = err != 0
    r[bad] = np.nan
    v[bad] = np.nan
    with np.errstate(invalid="ignore"):
        o = observe(r, v, geom)
    o["sunlit"] &= ~bad
    return Prediction(norad_id=ids, times=geom.times, error=err.astype(np.uint8), **o)


def predict_radec(tles, station, times):
    """``(ra_deg, dec_deg, range_km, flags)``, each ``(objects, times)``; see :func:`predict`."""
    p = predict(tles, station, times)
    return p.ra_deg, p.dec_deg, p.range_km, p.flags
