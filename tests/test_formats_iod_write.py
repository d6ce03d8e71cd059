"""IOD writer: round trip within the format's resolution, uncertainty codes from the data."""

import astropy.units as u
import numpy as np
import pytest
from astropy.table import Table
from astropy.time import Time

from aposos.errors import AposError
from aposos.formats import read_observations, write_iod
from aposos.formats.fields import layout_ulp_deg, mx_value
from aposos.formats.iod import ANGLE_FORMATS, parse_iod_line


def _table(n=200, seed=11):
    rng = np.random.default_rng(seed)
    times = Time("2026-11-21T19:00:00", scale="utc") + rng.uniform(0, 40000, n) * u.s
    return Table({"time": times, "ra_deg": rng.uniform(0, 360, n),
                  "dec_deg": rng.uniform(-89.5, 89.5, n),
                  "sigma_arcsec": rng.uniform(0.4, 40, n),
                  "sigma_time_s": 10 ** rng.uniform(-4, 0, n),
                  "norad_id": rng.choice(["25544", "00005", "44800"], n),
                  "cospar_id": rng.choice(["1998-067A", "1958-002B", "2019-074AB"], n),
                  "station": rng.choice(["iran", "peru"], n)})


@pytest.mark.parametrize("angle_format", [1, 2, 3, 7])
def test_round_trip_within_resolution(tmp_path, angle_format):
    table = _table()
    path = tmp_path / "out.iod"
    n = write_iod(table, path, station_codes={"iran": "9901", "peru": "9903"},
                  angle_format=angle_format)
    assert n == len(table)
    back = read_observations(path)
    assert back.meta["format"] == "iod" and back.meta["rejected"] == [] and len(back) == n
    layout_ra, layout_dec, _, _ = ANGLE_FORMATS[angle_format]
    cosd = np.cos(np.radians(table["dec_deg"]))
    dra = ((back["ra_deg"] - table["ra_deg"] + 180) % 360 - 180) * cosd
    assert np.max(np.abs(dra)) <= layout_ulp_deg(layout_ra) / 2 + 1e-12
    assert np.max(np.abs(back["dec_deg"] - table["dec_deg"])) <= \
        layout_ulp_deg(layout_dec) / 2 + 1e-12
    assert np.max(np.abs((back["time"] - table["time"]).sec)) <= 0.0005 + 1e-9
    # uncertainty codes follow the real uncertainties (nearest 1-9 mantissa), not a constant
    ratio_pos = back["sigma_arcsec"] / table["sigma_arcsec"]
    ratio_t = back["sigma_time_s"] / table["sigma_time_s"]
    assert np.all((ratio_pos > 1 / 1.5) & (ratio_pos < 1.5))
    assert np.all((ratio_t > 1 / 1.5) & (ratio_t < 1.5))
    assert len(set(back["sigma_arcsec"])) > 10 and len(set(back["sigma_time_s"])) > 10
    assert list(back["station"]) == ["9901" if s == "iran" else "9903" for s in table["station"]]
    assert list(back["norad_id"]) == list(table["norad_id"])
    assert list(back["cospar_id"]) == list(table["cospar_id"])
    assert set(back["equinox"]) == {"J2000"}


def test_line_layout_and_codes(tmp_path):
    table = Table({"time": Time(["2026-11-21T20:15:07.1234"]), "ra_deg": [15.0 * 12.5],
                   "dec_deg": [-0.25], "sigma_arcsec": [2.0], "sigma_time_s": [0.001],
                   "object_id": ["25544"], "station": ["4171"]})
    path = tmp_path / "one.iod"
    write_iod(table, path)
    line = path.read_text().rstrip("\n")
    #                 NORAD intl      stat s date/time (ms)     tt fe angles         pp
    assert line == "25544           4171   20261121201507123 15 25 1230000-001500 36"
    assert mx_value("36", "x") * 60 == pytest.approx(1.8)  # 2.0" -> 0.03' nearest
    rec = parse_iod_line(line)
    assert rec.a2_deg == -0.25  # sign kept for |dec| < 1 deg


def test_sigma_time_from_argument_and_errors(tmp_path):
    table = _table(3)
    del table["sigma_time_s"]
    codes = {"iran": "9901", "peru": "9903"}
    with pytest.raises(AposError, match="time uncertainty"):
        write_iod(table, tmp_path / "a.iod", station_codes=codes)
    write_iod(table, tmp_path / "a.iod", station_codes=codes, sigma_time_s=0.002)
    assert np.allclose(read_observations(tmp_path / "a.iod")["sigma_time_s"], 0.002)
    with pytest.raises(AposError, match="station"):
        write_iod(table, tmp_path / "b.iod", sigma_time_s=0.002)  # 'iran' is not a code
    table["sigma_arcsec"][1] = np.nan
    with pytest.raises(AposError, match="row 1: sigma_arcsec"):
        write_iod(table, tmp_path / "c.iod", station_codes=codes, sigma_time_s=0.002)
