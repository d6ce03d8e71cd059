"""Prediction against the simulator's truth path (:mod:`aposos.simulate.satellites`: skyfield
EarthSatellite, skyfield site and timescale, light time, minus annual aberration from DE421)."""

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.time import Time

from aposos import predict as P
from aposos.config import load_station
from aposos.simulate import satellites as truth
from aposos.simulate.tles import Tle
from aposos.tle import checksum

TLES = {  # synthetic elements, epoch 2026-11-21 12:00 UTC
    "leo": ("1 90001U 26001A   26325.50000000  .00010000  00000-0  50000-3 0  9996",
            "2 90001  97.5000 120.0000 0010000  90.0000 270.0000 15.20000000 10003"),
    "meo": ("1 90003U 26001C   26325.50000000  .00000000  00000-0  00000-0 0  9990",
            "2 90003  55.0000  40.0000 0050000  30.0000 100.0000  2.00560000 10003"),
    "geo": ("1 90002U 26001B   26325.50000000  .00000000  00000-0  00000-0 0  9998",
            "2 90002   0.0500  80.0000 0002000 100.0000 200.0000  1.00270000 10000"),
    "heo": ("1 90005U 26001E   26325.50000000  .00000000  00000-0  00000-0 0  9990",
            "2 90005  63.4000 300.0000 7200000 270.0000  10.0000  2.00600000 10000"),
}
TLES = {k: tuple(line[:68] + str(checksum(line)) for line in v) for k, v in TLES.items()}


def skyfield_truth(lines, station, times):
    """Star-relative RA/Dec (deg), range (km), elevation (deg) and lit fraction from the simulator."""
    st = load_station(station)
    tle = Tle("T", *lines)
    ra, dec, rng, state = truth.star_relative(tle, st, times)
    alt = truth.altitude_deg(st, state["t"], state["r_km"])
    lit = truth.illuminated_fraction(state["sat_gcrs_km"], truth.sun_gcrs_km(state["t_emit"]))
    return ra, dec, rng, alt, lit


TIMES = Time("2026-11-21T14:00:00", scale="utc") + np.linspace(0, 20 * 3600, 41) * u.s


@pytest.mark.parametrize("station", ["iran", "pakistan", "peru"])
def test_matches_skyfield_truth_leo_meo_geo(station):
    names = list(TLES)
    p = P.predict([TLES[k] for k in names], station, TIMES)
    assert (p.error == 0).all()
    for i, k in enumerate(names):
        ra, dec, rng, alt, lit = skyfield_truth(TLES[k], station, TIMES)
        sep = SkyCoord(ra * u.deg, dec * u.deg).separation(SkyCoord(p.ra_deg[i] * u.deg, p.dec_deg[i] * u.deg))
        assert sep.arcsec.max() < 0.1, (k, sep.arcsec.max())
        assert np.abs(p.range_km[i] - rng).max() < 0.005  # km
        assert np.abs(p.elevation_deg[i] - alt).max() < 0.01  # skyfield altaz: no refraction
        # sunlit = the Sun's centre is visible: lit fraction 1 -> True, 0 -> False
        full = (lit == 1) | (lit == 0)
        assert (p.sunlit[i][full] == (lit[full] == 1)).all()
        assert full.mean() > 0.9


def test_aberration_is_modelled():
    """The truth carries minus the annual aberration: a purely geometric direction is
    ~20 arcsec away from it, the prediction is not."""
    times = TIMES[:5]
    ra, dec, *_ = skyfield_truth(TLES["geo"], "peru", times)
    p = P.predict([TLES["geo"]], "peru", times)
    truth = SkyCoord(ra * u.deg, dec * u.deg)
    ours = SkyCoord(p.ra_deg[0] * u.deg, p.dec_deg[0] * u.deg)
    assert truth.separation(ours).arcsec.max() < 0.1
    # the same prediction without aberration: star_relative_unit with zero velocities
    g = P.station_geometry("peru", times)
    no_ab = P.StationGeometry(**{**g.__dict__, "earth_vel_km_s": 0 * g.earth_vel_km_s,
                                 "obs_vel_km_s": 0 * g.obs_vel_km_s})
    pg = P.predict([TLES["geo"]], no_ab, times)
    shift = truth.separation(SkyCoord(pg.ra_deg[0] * u.deg, pg.dec_deg[0] * u.deg)).arcsec
    assert 5 < shift.min() and shift.max() < 21.5


def test_rates_match_finite_differences():
    t = Time("2026-11-21T20:00:00", scale="utc") + np.array([-0.5, 0, 0.5]) * u.s
    p = P.predict([TLES["leo"], TLES["geo"]], "iran", t)
    dra = (p.ra_deg[:, 2] - p.ra_deg[:, 0]) * np.cos(np.radians(p.dec_deg[:, 1]))
    ddec = p.dec_deg[:, 2] - p.dec_deg[:, 0]
    assert np.allclose(p.ra_rate_deg_s[:, 1], dra, atol=1e-5, rtol=1e-3)
    assert np.allclose(p.dec_rate_deg_s[:, 1], ddec, atol=1e-5, rtol=1e-3)


def test_predict_radec_shapes_flags_and_errors():
    decayed = ("1 90004U 26001D   26325.50000000  .50000000  00000-0  50000-0 0  9990",
               "2 90004  51.6000 120.0000 0010000  90.0000 270.0000 16.40000000 10000")
    decayed = tuple(line[:68] + str(checksum(line)) for line in decayed)
    times = Time("2026-11-21T14:00:00", scale="utc") + np.arange(0, 40) * u.day / 4
    ra, dec, rng, flags = P.predict_radec([TLES["leo"], decayed, TLES["geo"]], load_station("iran").location, times)
    assert ra.shape == dec.shape == rng.shape == flags.shape == (3, 40)
    err = P.sgp4_error(flags)
    assert (err[0] == 0).all() and (err[2] == 0).all() and err[1].any()
    assert np.isnan(ra[1][err[1] > 0]).all() and np.isfinite(ra[0]).all()
    assert set(np.unique(flags[0] & 3)) <= {0, 1, 2, 3}
    # a GEO object fixed above (or below) the horizon of a station keeps its flag
    assert len(set((flags[2] & P.ABOVE_HORIZON).tolist())) == 1


def test_scalar_time_and_catalog_entries(tmp_path):
    from aposos import tle
    p = tmp_path / "c.txt"
    p.write_text("\n".join(["LEO", *TLES["leo"], "GEO", *TLES["geo"]]) + "\n")
    cat = tle.load_catalog(p)
    pr = P.predict(cat, "pakistan", Time("2026-11-21T18:00:00", scale="utc"))
    assert pr.ra_deg.shape == (2, 1) and list(pr.norad_id) == [90001, 90002]


