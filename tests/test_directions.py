"""Reduction-side direction physics against astropy's own frame machinery."""

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import GCRS, ICRS, TEME, CartesianRepresentation as CR, SkyCoord, UnitSphericalRepresentation
from astropy.time import Time
from sgp4.api import Satrec

from aposos import directions as d
from aposos.config import load_station

TLES = {  # synthetic elements, epoch 2026-11-21
    "leo": ("1 90001U 26001A   26325.50000000  .00010000  00000-0  50000-3 0  9996",
            "2 90001  97.5000 120.0000 0010000  90.0000 270.0000 15.20000000 10003"),
    "geo": ("1 90002U 26001B   26325.50000000  .00000000  00000-0  00000-0 0  9998",
            "2 90002   0.0500  80.0000 0002000 100.0000 200.0000  1.00270000 10000"),
}


def _position_at(sat, times):
    def at(dt_s):
        tt = times + dt_s * u.s
        err, r, _ = sat.sgp4_array(tt.jd1, tt.jd2)
        assert not err.any()
        return d.teme_to_gcrs(r, tt)
    return at


def test_teme_matrix_equals_astropy_transform():
    times = Time("2026-11-21T18:00:00", scale="utc") + np.linspace(0, 3600, 5) * u.s
    r = np.array([7000.0, -1200.0, 300.0])
    ref = TEME(CR(np.tile(r, (5, 1)).T * u.km), obstime=times).transform_to(GCRS(obstime=times))
    ours = d.teme_to_gcrs(np.tile(r, (5, 1)), times)
    assert np.max(np.abs(ours - ref.cartesian.xyz.to_value(u.km).T)) < 1e-6  # km


@pytest.mark.parametrize("kind", ["leo", "geo"])
@pytest.mark.parametrize("station", ["iran", "pakistan", "peru"])
def test_star_relative_direction_matches_astropy_gcrs_to_icrs(kind, station):
    """The astro-notes recipe in astropy: aberrate by the observer's geocentric velocity, then
    treat as a direction at infinity in GCRS(obsgeoloc, obsgeovel) and transform to ICRS."""
    st = load_station(station)
    sat = Satrec.twoline2rv(*TLES[kind])
    times = Time("2026-11-21T20:00:00", scale="utc") + np.linspace(0, 1800, 4) * u.s
    at = _position_at(sat, times)
    ra, dec, rng = d.star_relative_radec(at, st.location, times)

    obs_p, obs_v = d.observer_posvel_gcrs(st.location, times)
    r_topo, lt = d.solve_light_time(at, times, obs_p)
    n = r_topo / np.linalg.norm(r_topo, axis=-1, keepdims=True)
    beta = obs_v / d.C_KM_S
    seen = n + beta - n * np.sum(n * beta, axis=-1, keepdims=True)  # first order is enough here
    frame = GCRS(obstime=times, obsgeoloc=CR(obs_p.T * u.km), obsgeovel=CR(obs_v.T * u.km / u.s))
    ref = SkyCoord(GCRS(CR(seen.T), obstime=times, obsgeoloc=frame.obsgeoloc, obsgeovel=frame.obsgeovel)
                   .represent_as(UnitSphericalRepresentation), frame=frame).transform_to(ICRS())
    sep = SkyCoord(ra * u.deg, dec * u.deg).separation(ref).arcsec
    # astropy also removes the Sun's light deflection (a few mas): we ignore it by design
    assert sep.max() < 0.02
    # and the effect being modelled is minus the annual aberration: |v_earth x n| / c
    geo = SkyCoord(*[a * u.deg for a in d.radec_deg(n)])
    shift = geo.separation(SkyCoord(ra * u.deg, dec * u.deg)).arcsec
    v_earth = d.earth_barycentric_velocity(times)
    expected = np.degrees(np.linalg.norm(np.cross(v_earth, n), axis=-1) / d.C_KM_S) * 3600
    assert np.max(np.abs(shift - expected)) < 0.5  # arcsec (diurnal part: < 0.32)


def test_light_time_is_range_over_c():
    st = load_station("peru")
    sat = Satrec.twoline2rv(*TLES["geo"])
    times = Time("2026-11-21T03:00:00", scale="utc") + np.arange(3) * u.min
    obs_p, _ = d.observer_posvel_gcrs(st.location, times)
    r, lt = d.solve_light_time(_position_at(sat, times), times, obs_p)
    assert np.allclose(lt, np.linalg.norm(r, axis=-1) / d.C_KM_S, rtol=0, atol=1e-12)
    assert (np.linalg.norm(r, axis=-1) > 35000).all()  # km: a GEO object


def test_aberration_round_trip():
    rng = np.random.default_rng(1)
    n = rng.normal(size=(100, 3))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    v = rng.normal(scale=20.0, size=(100, 3))
    back = d._unaberrate(d._aberrate(n, v, np.ones(100)), v, np.ones(100))
    assert np.max(np.linalg.norm(back - n, axis=1)) < 1e-14


def test_interpolated_teme_matrix_equals_exact():
    rng = np.random.default_rng(4)
    times = Time("2026-11-21T14:00:00", scale="utc") + np.sort(rng.uniform(0, 14 * 3600, 400)) * u.s
    exact = d.teme_to_gcrs_matrix(times)
    fast = d.teme_to_gcrs_matrix_interpolated(times)
    assert np.abs(fast - exact).max() < 1e-11  # 1e-11 rad = 2 micro-arcsec
    assert fast.shape == exact.shape == (400, 3, 3)
    few = times[:2]  # no fewer nodes than times: exact
    assert np.array_equal(d.teme_to_gcrs_matrix_interpolated(few), d.teme_to_gcrs_matrix(few))
