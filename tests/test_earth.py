"""Offline Earth orientation: astropy and skyfield agree and use the shipped IERS tables."""

import numpy as np
from astropy.time import Time
from astropy.utils import iers

from aposos import earth


def test_astropy_is_offline():
    from astropy.utils.data import conf

    assert iers.conf.auto_download is False
    assert conf.allow_internet is False


def test_ut1_beyond_astropy_default_staleness_is_available_offline():
    # astropy's defaults fail for dates after late October 2026; the shipped table covers them.
    t = Time("2026-11-22T00:00:00", scale="utc")
    dut1 = t.delta_ut1_utc
    assert np.isfinite(dut1) and abs(dut1) < 0.9
    assert earth.iers_status().predicted_until > t


def test_skyfield_timescale_uses_the_same_ut1_and_has_polar_motion():
    times = Time(np.linspace(Time("2026-01-01").mjd, Time("2026-11-21").mjd, 12), format="mjd", scale="utc")
    st = earth.skyfield_time(times)
    # astropy takes Bulletin B where measured, skyfield Bulletin A: they differ by < 0.1 ms
    # (0.0015 arcsec of Earth rotation); predictions are identical.
    assert np.max(np.abs(st.dut1 - times.delta_ut1_utc)) < 1e-4  # seconds
    xp, yp = st.polar_motion_angles()[:2]
    assert np.all(np.abs(xp) > 0) or np.all(np.abs(yp) > 0)  # arcsec; zero would mean no table


def test_skyfield_builtin_ut1_is_stale_which_is_why_we_do_not_use_it():
    from skyfield.api import load

    t = Time("2026-11-21T00:00:00", scale="utc")
    builtin = load.timescale(builtin=True).utc(2026, 11, 21)
    assert abs(builtin.dut1 - t.delta_ut1_utc) > 0.05  # seconds: 0.17 s stale when written


def test_station_positions_agree_between_astropy_and_skyfield():
    from aposos.config import load_stations

    t = Time("2026-11-21T20:00:00", scale="utc")
    for st in load_stations().values():
        itrs_astropy = np.array(st.location.get_itrs().cartesian.xyz.to_value("km"))
        site = earth.skyfield_site(st.lat_deg, st.lon_deg, st.height_m)
        itrs_skyfield = site.itrs_xyz.km
        assert np.linalg.norm(itrs_astropy - itrs_skyfield) < 1e-6  # km: 1 mm
