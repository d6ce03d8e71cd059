"""Synthetic TLE catalogs: valid lines, realistic regimes, aging that behaves like real TLE errors."""

import astropy.units as u
import numpy as np
import pytest
from astropy.time import Time
from sgp4.api import Satrec

from aposos.config import load_station
from aposos.simulate import satellites, tles

T0 = Time("2026-11-20T18:00:00", scale="utc")


@pytest.fixture(scope="module")
def catalog():
    return tles.random_catalog(300, T0, seed=11)


def test_lines_are_valid_and_parse_back(catalog):
    for t in catalog:
        assert len(t.line1) == 69 and len(t.line2) == 69
        assert tles.checksum(t.line1) == int(t.line1[68]) and tles.checksum(t.line2) == int(t.line2[68])
        s = Satrec.twoline2rv(t.line1, t.line2)
        err, r, _ = s.sgp4(T0.jd1, T0.jd2)
        assert err == 0 and 6500 < np.linalg.norm(r) < 50000
    assert len({t.norad for t in catalog}) == len(catalog)
    assert tles.random_catalog(300, T0, seed=11)[17].line2 == catalog[17].line2  # deterministic


def test_regimes_are_realistic(catalog):
    regimes = np.array([t.regime for t in catalog])
    assert 0.6 < (regimes == "LEO").mean() < 0.8 and (regimes == "GEO").sum() > 20
    for t in catalog:
        s = t.satrec
        a_km = s.a * 6378.135
        perigee = a_km * (1 - s.ecco) - 6378.135
        inc = np.degrees(s.inclo)
        if t.regime == "LEO":
            assert 240 < perigee < 1400 and s.ecco < 0.021
        elif t.regime == "GEO":
            assert abs(a_km - 42164) < 60 and inc <= 15.01
        elif t.regime == "MEO":
            assert 25000 < a_km < 30000 and 53 < inc < 67
        else:
            assert s.ecco > 0.6 and perigee > 150
    epochs = np.array([(t.epoch - T0).to_value(u.day) for t in catalog])
    assert np.all((epochs <= 0) & (epochs >= -1.5 - 1e-6))


@pytest.mark.parametrize("age_days, km_per_day", [(1.0, 2.0), (3.0, 1.5), (7.0, 3.0)])
def test_aged_tle_error_grows_along_track(catalog, age_days, km_per_day):
    checked = 0
    for t in catalog:
        if t.regime not in ("LEO", "MEO") or t.satrec.bstar > 2e-4:
            continue
        old = tles.aged(t, age_days, km_per_day=km_per_day)
        assert abs((t.epoch - old.epoch).to_value(u.day) - age_days) < 1e-7
        s, o = t.satrec, old.satrec
        _, r, v = s.sgp4(s.jdsatepoch, s.jdsatepochF)
        _, r2, _ = o.sgp4(s.jdsatepoch, s.jdsatepochF)
        d = np.subtract(r2, r)
        along = abs(np.dot(d, v) / np.linalg.norm(v))
        assert abs(np.linalg.norm(d) - km_per_day * age_days) < 0.15 * km_per_day * age_days
        assert along > 0.9 * np.linalg.norm(d)
        checked += 1
        if checked == 25:
            break
    assert checked == 25


def test_without_and_file_round_trip(tmp_path, catalog):
    drop = [catalog[0].norad, catalog[5].norad]
    kept = tles.without(catalog, drop)
    assert len(kept) == len(catalog) - 2 and not {t.norad for t in kept} & set(drop)
    tles.write_catalog(tmp_path / "cat.txt", kept)
    back = tles.read_catalog(tmp_path / "cat.txt")
    assert [(t.name, t.line1, t.line2) for t in back] == [(t.name, t.line1, t.line2) for t in kept]


def test_bad_checksum_is_an_error_naming_the_line(tmp_path, catalog):
    from aposos.errors import AposError

    t = catalog[0]
    bad = t.line2[:68] + str((int(t.line2[68]) + 1) % 10)
    (tmp_path / "bad.txt").write_text(f"{t.name}\n{t.line1}\n{bad}\n")
    with pytest.raises(AposError, match="checksum"):
        tles.read_catalog(tmp_path / "bad.txt")


def test_designed_orbits_are_where_they_were_aimed():
    station = load_station("iran")
    leo = tles.designed_leo(90100, T0, station.lat_deg, station.lon_deg, alt_km=700.0)
    times = T0 + np.arange(-300, 301, 5) * u.s
    alt = satellites.observe(leo, station, times)["alt_deg"]
    assert alt.max() > 80.0 and abs(times[np.argmax(alt)] - T0).to_value(u.s) < 60
    geo = tles.designed_geo(90101, T0, station.lon_deg)
    obs = satellites.observe(geo, station, T0)
    # over the station's meridian: altitude 90 - latitude - (parallax ~ 6 deg at 36 deg N)
    assert 45 < obs["alt_deg"][0] < 55
