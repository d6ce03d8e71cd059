"""Satellite truth (skyfield path) against an independent astropy computation, and the
illumination / brightness models against hand-checked geometry.

The independent path: SGP4 TEME state (python-sgp4 directly) -> astropy ``TEME`` frame ->
GCRS at the emission time; station from astropy ``EarthLocation.get_gcrs_posvel`` (IERS UT1
and polar motion); light time iterated; the topocentric direction aberrated by the
observer's geocentric velocity (ERFA ``ab``), then treated as a direction at infinity in
``GCRS(obstime, obsgeoloc, obsgeovel)`` and transformed to ICRS (astropy removes the
aberration of the observer's barycentric velocity, and light deflection).

Measure: ``pytest -q -s tests/test_simulate_satellites.py -k astropy`` prints the maximum
difference in arcsec.
"""

import math

import astropy.units as u
import erfa
import numpy as np
import pytest
from astropy.coordinates import GCRS, ICRS, TEME, CartesianDifferential, CartesianRepresentation, SkyCoord, \
    UnitSphericalRepresentation
from astropy.time import Time

from aposos.config import load_station
from aposos.simulate import satellites as S
from aposos.simulate import tles

C_KM_S = 299792.458
T0 = Time("2026-11-20T18:00:00", scale="utc")


def _astropy_star_relative(tle, station, times):
    sat = tle.satrec
    loc = station.location
    obs_pos, obs_vel = loc.get_gcrs_posvel(times)
    obs_km = obs_pos.xyz.to_value(u.km).T
    lt = np.zeros(len(times))
    for _ in range(4):
        te = times - lt * u.s
        err, r, v = sat.sgp4_array(te.utc.jd1, te.utc.jd2)
        assert not err.any()
        teme = TEME(CartesianRepresentation(r.T * u.km, differentials=CartesianDifferential(v.T * u.km / u.s)),
                    obstime=te)
        gcrs = teme.transform_to(GCRS(obstime=te))
        sat_km = gcrs.cartesian.xyz.to_value(u.km).T
        topo = sat_km - obs_km
        lt = np.linalg.norm(topo, axis=1) / C_KM_S
    unit = topo / np.linalg.norm(topo, axis=1, keepdims=True)
    vel = obs_vel.xyz.to_value(u.km / u.s).T / C_KM_S
    bm1 = np.sqrt(1 - np.sum(vel**2, axis=1))
    # ERFA ab(pnat, v, s, bm1): s = distance to the Sun in au only scales the (tiny) deflection
    # term; a huge s switches it off: the observer moves, the deflector is irrelevant here.
    seen = erfa.ab(unit, vel, np.full(len(times), 1e12), bm1)
    ra, dec = np.arctan2(seen[:, 1], seen[:, 0]), np.arcsin(seen[:, 2])
    frame = GCRS(obstime=times, obsgeoloc=obs_pos, obsgeovel=obs_vel)
    c = SkyCoord(UnitSphericalRepresentation(ra * u.rad, dec * u.rad), frame=frame).transform_to(ICRS())
    return c.ra.deg, c.dec.deg


def _sep_arcsec(ra1, dec1, ra2, dec2):
    return np.degrees(erfa.seps(np.radians(ra1), np.radians(dec1), np.radians(ra2), np.radians(dec2))) * 3600


def _objects(station):
    leo = tles.designed_leo(91001, T0, station.lat_deg - 3, station.lon_deg + 2, alt_km=550.0, inc_deg=60.0)
    meo = tles.make_tle(91002, T0 - 3600 * u.s, a_km=26560.0, ecc=0.005, inc_deg=55.0, raan_deg=40.0,
                        argp_deg=10.0, mean_anomaly_deg=0.0, regime="MEO")
    geo = tles.designed_geo(91003, T0, station.lon_deg + 10.0)
    return {"LEO": leo, "MEO": meo, "GEO": geo}


@pytest.mark.parametrize("name", ["iran", "pakistan", "peru"])
def test_star_relative_direction_matches_astropy(name):
    station = load_station(name)
    times = T0 + np.linspace(-600, 600, 9) * u.s
    worst = {}
    for regime, tle in _objects(station).items():
        ra1, dec1, _, _ = S.star_relative(tle, station, times)
        ra2, dec2 = _astropy_star_relative(tle, station, times)
        worst[regime] = _sep_arcsec(ra1, dec1, ra2, dec2).max()
    print(f"\n{name}: max |skyfield truth - astropy| arcsec: " + ", ".join(f"{k} {v:.4f}" for k, v in worst.items()))
    assert max(worst.values()) < 0.1, worst


def test_aberration_is_minus_annual_not_zero():
    """The star-relative direction differs from the geometric one by ~ annual aberration (10-20")."""
    station = load_station("iran")
    tle = _objects(station)["GEO"]
    ra, dec, _, st = S.star_relative(tle, station, T0)
    geo_ra, geo_dec = S.radec_deg(st["r_km"])
    off = _sep_arcsec(ra, dec, geo_ra, geo_dec)[0]
    assert 5.0 < off < 20.6
    # and it is minus the aberration of the Earth's velocity: moving the geometric direction
    # by +annual aberration from the star-relative one brings it back to < 0.5 arcsec (diurnal)
    v_e = S.earth_velocity_km_s(st["t"])
    back = S.aberrate(S.aberrate(st["r_km"] / np.linalg.norm(st["r_km"]), -v_e), v_e)
    assert _sep_arcsec(*S.radec_deg(back), geo_ra, geo_dec)[0] < 1e-6


def test_light_time_of_geo_is_an_eighth_of_a_second():
    station = load_station("pakistan")
    st = S.topocentric(_objects(station)["GEO"], station, T0)
    assert 0.119 < st["light_time_s"][0] < 0.135


def test_illumination_hand_checked_geometry():
    sun = np.array([[1.0 * S.AU_KM, 0.0, 0.0]])
    # on the day side, and far off the shadow axis at night side: sunlit
    assert S.illuminated_fraction([[7000.0, 0, 0]], sun)[0] == 1.0
    assert S.illuminated_fraction([[-7000.0, 7000.0, 0]], sun)[0] == 1.0
    # straight behind the Earth at LEO and GEO distance: umbra
    assert S.illuminated_fraction([[-7000.0, 0, 0]], sun)[0] == 0.0
    assert S.illuminated_fraction([[-42164.0, 0, 0]], sun)[0] == 0.0
    # at GEO distance the penumbra is ~ 2 * 42164 km * 0.267 deg ~ 390 km wide around the
    # geometric shadow edge (y = R_earth); half the Sun is hidden close to y = R_earth
    y = np.linspace(6000.0, 7000.0, 201)
    lit = S.illuminated_fraction(np.stack([np.full_like(y, -42164.0), y, 0 * y], axis=1),
                                 np.repeat(sun, len(y), axis=0))
    assert np.all(np.diff(lit) >= 0)
    half = y[np.argmin(abs(lit - 0.5))]
    assert abs(half - S.EARTH_RADIUS_KM * (1 + 42164.0 / S.AU_KM)) < 15.0
    assert lit[0] == 0.0 and lit[-1] == 1.0


def test_brightness_monotonic_with_range_and_phase():
    rng = np.linspace(400, 40000, 50)
    m = S.diffuse_sphere_mag(1.0, 0.2, rng, 30.0)
    assert np.all(np.diff(m) > 0)
    assert np.allclose(np.diff(m), 5 * np.log10(rng[1:] / rng[:-1]))
    assert np.all(np.diff(S.diffuse_sphere_mag(1.0, 0.2, 1000.0, np.linspace(0, 170, 30))) > 0)
    assert abs(S.diffuse_sphere_mag(1.0, 0.2, 1000.0, 0.0) - 5.45) < 0.01
    assert S.diffuse_sphere_mag(1.0, 0.2, 1000.0, 0.0, lit_fraction=0.0) == np.inf


def test_designed_objects_are_where_they_were_aimed():
    station = load_station("peru")
    o = _objects(station)
    obs = S.observe(o["GEO"], station, T0)
    assert abs(obs["range_km"][0] - 36500) < 1500 and obs["alt_deg"][0] > 40
    assert abs(obs["rate_ra_arcsec_s"][0] - 15.04) < 0.5  # GEO: fixed against the Earth
    times = T0 + np.arange(-600, 601, 10) * u.s
    alt = S.observe(o["LEO"], station, times)["alt_deg"]
    assert alt.max() > 50.0  # aimed 3 deg of latitude (~330 km) off the zenith at 550 km


def test_shadow_in_real_geometry():
    """Near local midnight in November: a LEO over the station is in the Earth's shadow, while a
    GEO is sunlit (the GEO eclipse seasons are around the equinoxes)."""
    station = load_station("iran")
    midnight = Time("2026-11-20T20:30:00", scale="utc")  # ~ 00:00 local solar time at 50.8 E
    leo = tles.designed_leo(91010, midnight, station.lat_deg, station.lon_deg, alt_km=800.0)
    geo = tles.designed_geo(91011, midnight, station.lon_deg)
    assert S.observe(leo, station, midnight)["lit"][0] == 0.0
    assert S.observe(leo, station, midnight)["mag"][0] == np.inf
    assert S.observe(geo, station, midnight)["lit"][0] == 1.0
    # at dusk the same kind of LEO high in the sky is sunlit
    dusk = Time("2026-11-20T14:50:00", scale="utc")
    leo2 = tles.designed_leo(91012, dusk, station.lat_deg, station.lon_deg, alt_km=1000.0)
    assert S.observe(leo2, station, dusk)["lit"][0] == 1.0
