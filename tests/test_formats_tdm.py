"""CCSDS TDM: hand-written messages in the 503.0-B-2 layout, and write -> read round trips."""

import astropy.units as u
import numpy as np
import pytest
from astropy.table import Table
from astropy.time import Time

from aposos.errors import AposError
from aposos.formats import detect_format, read_observations, write_tdm

KVN = """\
CCSDS_TDM_VERS = 2.0
COMMENT Optical angles, example in the layout of CCSDS 503.0-B-2
CREATION_DATE = 2026-325T04:00:00
ORIGINATOR = APOSOS

META_START
COMMENT first segment: TAI time tags, day-of-year epochs
TIME_SYSTEM = TAI
PARTICIPANT_1 = 2019-029BK
PARTICIPANT_2 = PERU-01
MODE = SEQUENTIAL
PATH = 1,2
ANGLE_TYPE = RADEC
REFERENCE_FRAME = ICRF
META_STOP

DATA_START
COMMENT SIGMA 2026-325T03:00:00.000 2.5 0.001
ANGLE_1 = 2026-325T03:00:00.000 10.000000000
ANGLE_2 = 2026-325T03:00:00.000 -20.000000000
ANGLE_1 = 2026-325T03:00:10.500Z 10.100000000
ANGLE_2 = 2026-325T03:00:10.500Z -20.100000000
ANGLE_1 = 2026-325T03:00:20.000 10.2
MAG = 2026-325T03:00:20.000 9.1
DATA_STOP

META_START
TIME_SYSTEM = UTC
PARTICIPANT_1 = IRAN-01
PARTICIPANT_2 = 44800
MODE = SEQUENTIAL
PATH = 2,1
ANGLE_TYPE = RADEC
REFERENCE_FRAME = TOD_EARTH
META_STOP
DATA_START
ANGLE_1 = 2026-11-21T03:00:00 10.0
ANGLE_2 = 2026-11-21T03:00:00 10.0
DATA_STOP

META_START
TIME_SYSTEM = UTC
PARTICIPANT_1 = 44800
PARTICIPANT_2 = IRAN-01
MODE = SEQUENTIAL
PATH = 1,2
ANGLE_TYPE = RADEC
REFERENCE_FRAME = EME2000
META_STOP
DATA_START
ANGLE_1 = 2026-11-21T03:00:00.25 359.9999
ANGLE_2 = 2026-11-21T03:00:00.25 95.0
ANGLE_1 = 2026-11-21T03:00:01.25 0.5
ANGLE_2 = 2026-11-21T03:00:01.25 -0.5
ANGLE_1 = 2026-11-21T03:00:02 oops
DATA_STOP
"""


def test_kvn_reader(tmp_path):
    path = tmp_path / "obs.kvn"
    path.write_text(KVN)
    assert detect_format(path) == "tdm-kvn"
    t = read_observations(path)
    assert t.meta["format"] == "tdm-kvn"
    assert len(t) == 3
    # TAI -> UTC: TAI - UTC = 37 s since 2017
    assert t["time"][0].isot == "2026-11-21T02:59:23.000"
    assert t["time"][1].isot == "2026-11-21T02:59:33.500"
    assert (t["ra_deg"][0], t["dec_deg"][0]) == (10.0, -20.0)
    assert (t["object_id"][0], t["cospar_id"][0], t["station"][0]) == ("2019-029BK",
                                                                      "2019-029BK", "PERU-01")
    assert t["sigma_arcsec"][0] == 2.5 and t["sigma_time_s"][0] == 0.001
    assert np.isnan(t["sigma_arcsec"][1])
    last = t[2]
    assert (last["object_id"], last["norad_id"], last["station"]) == ("44800", "44800",
                                                                      "IRAN-01")
    assert last["time"].isot == "2026-11-21T03:00:01.250"
    rejected = dict(t.meta["rejected"])
    assert "no ANGLE_2" in rejected[23]
    assert "TOD_EARTH" in rejected[37] and "TOD_EARTH" in rejected[38]
    assert "out of range" in rejected[51]
    assert "oops" in rejected[55]
    assert sorted(rejected) == [23, 37, 38, 51, 55]
    assert t["mag"][0] != t["mag"][0]  # MAG at 03:00:20 belongs to the unpaired epoch


def test_xml_reader_with_namespace_prefix(tmp_path):
    xml = """<?xml version="1.0" encoding="UTF-8"?>
<ndm:tdm xmlns:ndm="urn:ccsds:schema:ndmxml" id="CCSDS_TDM_VERS" version="2.0">
  <ndm:header><ndm:CREATION_DATE>2026-11-22T00:00:00</ndm:CREATION_DATE>
    <ndm:ORIGINATOR>TEST</ndm:ORIGINATOR></ndm:header>
  <ndm:body><ndm:segment>
    <ndm:metadata><ndm:TIME_SYSTEM>GPS</ndm:TIME_SYSTEM>
      <ndm:PARTICIPANT_1>25544</ndm:PARTICIPANT_1><ndm:PARTICIPANT_2>S1</ndm:PARTICIPANT_2>
      <ndm:PATH>1,2</ndm:PATH><ndm:ANGLE_TYPE>RADEC</ndm:ANGLE_TYPE>
      <ndm:REFERENCE_FRAME>EME2000</ndm:REFERENCE_FRAME></ndm:metadata>
    <ndm:data>
      <ndm:observation><ndm:EPOCH>2026-11-21T03:00:18</ndm:EPOCH>
        <ndm:ANGLE_1>120.5</ndm:ANGLE_1></ndm:observation>
      <ndm:observation><ndm:EPOCH>2026-11-21T03:00:18</ndm:EPOCH>
        <ndm:ANGLE_2>-5.25</ndm:ANGLE_2></ndm:observation>
      <ndm:observation><ndm:EPOCH>2026-11-21T03:00:28</ndm:EPOCH>
        <ndm:ANGLE_2>-5.5</ndm:ANGLE_2></ndm:observation>
    </ndm:data></ndm:segment></ndm:body></ndm:tdm>
"""
    path = tmp_path / "obs.xml"
    path.write_text(xml)
    t = read_observations(path)
    assert t.meta["format"] == "tdm-xml" and len(t) == 1
    assert t["time"][0].isot == "2026-11-21T03:00:00.000"  # GPS - UTC = 18 s
    assert (t["ra_deg"][0], t["dec_deg"][0], t["station"][0]) == (120.5, -5.25, "S1")
    assert t.meta["rejected"] == [(16, "TDM: ANGLE_2 at 2026-11-21T03:00:10.000 has no ANGLE_1")]


def test_malformed_xml_is_an_apos_error(tmp_path):
    path = tmp_path / "bad.xml"
    path.write_text("<tdm><body><segment></body></tdm>")
    with pytest.raises(AposError, match="bad.xml"):
        read_observations(path)


def _table(n=40, seed=5):
    rng = np.random.default_rng(seed)
    t0 = Time("2026-11-21T19:00:00", scale="utc")
    times = t0 + np.sort(rng.uniform(0, 7200, n)) * u.s
    return Table({"time": times, "ra_deg": rng.uniform(0, 360, n),
                  "dec_deg": rng.uniform(-89.9, 89.9, n),
                  "sigma_arcsec": rng.uniform(0.3, 6, n),
                  "sigma_time_s": rng.uniform(1e-4, 2e-2, n),
                  "object_id": rng.choice(["25544", "44800", "2021-001A"], n),
                  "station": rng.choice(["iran", "pakistan", "peru"], n),
                  "mag": np.where(rng.uniform(size=n) < 0.5, rng.uniform(5, 15, n), np.nan)})


@pytest.mark.parametrize("suffix", [".tdm", ".kvn", ".txt", ".xml"])
def test_round_trip(tmp_path, suffix):
    table = _table()
    path = tmp_path / f"out{suffix}"
    nseg = write_tdm(table, path)
    assert nseg == len(set(zip(table["station"], table["object_id"])))
    back = read_observations(path)
    assert back.meta["format"] == ("tdm-xml" if suffix == ".xml" else "tdm-kvn")
    assert back.meta["rejected"] == [] and len(back) == len(table)
    order = np.argsort(table["time"].mjd)
    back_order = np.argsort(back["time"].mjd)
    a, b = table[order], back[back_order]
    assert np.max(np.abs((a["time"] - b["time"]).sec)) <= 0.5e-6  # microsecond epochs
    assert np.max(np.abs(a["ra_deg"] - b["ra_deg"])) * 3600 < 1e-5
    assert np.max(np.abs(a["dec_deg"] - b["dec_deg"])) * 3600 < 1e-5
    assert np.allclose(a["sigma_arcsec"], b["sigma_arcsec"], atol=5e-5)
    assert np.allclose(a["sigma_time_s"], b["sigma_time_s"], atol=5e-5)
    assert list(a["station"]) == list(b["station"])
    assert list(a["object_id"]) == list(b["object_id"])
    assert np.allclose(a["mag"], b["mag"], atol=0.005, equal_nan=True)


def test_written_kvn_follows_the_standard_layout(tmp_path):
    path = tmp_path / "out.tdm"
    write_tdm(_table(6), path, reference_frame="ICRF", message_id="N1")
    lines = path.read_text().splitlines()
    assert lines[0] == "CCSDS_TDM_VERS = 2.0"
    header = [ln.split(" =")[0] for ln in lines[:6] if ln and not ln.startswith("COMMENT")]
    assert header == ["CCSDS_TDM_VERS", "CREATION_DATE", "ORIGINATOR", "MESSAGE_ID"]
    start = lines.index("META_START")
    keys = [ln.split(" =")[0] for ln in lines[start + 1:lines.index("META_STOP")]
            if not ln.startswith("COMMENT")]
    assert keys == ["TIME_SYSTEM", "START_TIME", "STOP_TIME", "PARTICIPANT_1",
                    "PARTICIPANT_2", "MODE", "PATH", "ANGLE_TYPE", "REFERENCE_FRAME"]
    assert "REFERENCE_FRAME = ICRF" in lines
    assert any("Star-relative" in ln and "minus the annual aberration" in ln for ln in lines)
    data = lines[lines.index("DATA_START") + 1:lines.index("DATA_STOP")]
    first_record = next(i for i, ln in enumerate(data) if not ln.startswith("COMMENT"))
    assert all(not ln.startswith("COMMENT") for ln in data[first_record:]), \
        "comments only at the start of the data section"


def test_writer_needs_positions(tmp_path):
    with pytest.raises(AposError, match="ra_deg"):
        write_tdm(Table({"time": Time(["2026-01-01T00:00:00"])}), tmp_path / "x.tdm")


def test_store_like_table_with_integer_norad_ids(tmp_path):
    """Store queries carry norad_id as int, 0 for an uncorrelated track (UCT)."""
    table = _table(8)
    del table["object_id"]
    table["norad_id"] = np.array([25544, 0, 25544, 0, 44800, 0, 0, 25544], dtype="i4")
    write_tdm(table, tmp_path / "s.tdm")
    back = read_observations(tmp_path / "s.tdm")
    assert len(back) == 8
    assert sorted(set(back["object_id"])) == ["", "25544", "44800"]
    text = (tmp_path / "s.tdm").read_text()
    assert "PARTICIPANT_1 = UNKNOWN" in text and "PARTICIPANT_1 = 0\n" not in text


def test_azel_segment_needs_the_station_site(tmp_path):
    """Two-way PATH (radar-like 1,2,1): station 1 observes participant 2."""
    text = KVN.split("META_START")[0] + """META_START
TIME_SYSTEM = UTC
PARTICIPANT_1 = 4171
PARTICIPANT_2 = 25544
PATH = 1,2,1
ANGLE_TYPE = AZEL
META_STOP
DATA_START
ANGLE_1 = 2026-11-21T20:00:00.000 135.0
ANGLE_2 = 2026-11-21T20:00:00.000 45.0
DATA_STOP
"""
    path = tmp_path / "azel.kvn"
    path.write_text(text)
    without = read_observations(path)
    assert len(without) == 0 and "station '4171'" in without.meta["rejected"][0][1]
    t = read_observations(path, sites={"4171": (52.8344, 6.3785, 10.0)})
    assert len(t) == 1 and t["equinox"][0] == "azel" and t["object_id"][0] == "25544"
    # 45 deg up in the south-east of a 52.8 N site: declination between -10 and +30 deg
    assert -10 < t["dec_deg"][0] < 30
