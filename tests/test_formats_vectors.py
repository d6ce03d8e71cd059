"""The real IOD/UK/RDE test vectors (TruSat) and observers' files (orbitdeterminator).

Each line of the TruSat ``*_answers.txt`` files says whether the line is compliant. A
line counts as accepted here when it becomes a row or a compliant record without position
(``meta['skipped']``), and as rejected when it is listed in ``meta['rejected']``. The few
places where the answers contradict the format description or each other are listed in
``DISAGREEMENTS`` with the reason; every other line must agree.
"""

import erfa
import numpy as np
import pytest
from astropy.coordinates import Angle

from aposos.formats import detect_format, read_observations
from conftest import realdata

VEC = ("formats", "trusat_parser_vectors")
OD = ("formats", "orbitdeterminator_examples")
SITES = ("formats", "cospar_sites.txt")

DISAGREEMENTS = {
    "IOD_data_compliant.txt": {
        60: "Dec '1199' in angle format 2 is 11 deg 99 arcmin: rejected, not guessed"},
    "IOD_data_noncompliant.txt": {
        42: "station '270A': the answers file has '270I'/'270O' at this place (I and O are "
            "the excluded letters); 'ABCD', 'T123' are compliant",
        48: "blank sky status: the compliant file lists the same line as compliant",
        121: "flash period ' 12345' (cols 75-80) has the layout of the format "
             "description's own example '  10000', which the compliant file accepts"},
    "UK_data_compliant.txt": {
        45: "azimuth '172038  ' in format 4 (DDDMMSSs) is 172 deg 03 min 80 s: rejected"},
    "UK_data_noncompliant.txt": {
        51: "position accuracy '  1 ' (0.10 arcmin, digits in place); ' 1  ' and '   4' "
            "are compliant in the other file, no rule separates them"},
}


def _answers(name):
    """{line number: expected compliant?} (the answers repeat each line after 'True,')."""
    data = realdata(*VEC, name).read_text().splitlines()
    ans = realdata(*VEC, name.replace(".txt", "_answers.txt")).read_text().splitlines()
    by_text = {}
    for a in ans:
        verdict, _, text = a.partition(",")
        by_text.setdefault(text.strip(), verdict == "True")
    out = {}
    for number, text in enumerate(data, 1):
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        a = ans[number - 1].partition(",") if number <= len(ans) else ("", "", "")
        if a[2].strip() == text.strip():
            out[number] = a[0] == "True"
        elif "noncompliant" in name:
            out[number] = False  # "This file should return ZERO (0) valid IODs"
        else:
            out[number] = by_text[text.strip()]
    return out


def _verdicts(table):
    accepted = set(int(n) for n in table["line"]) | {n for n, _ in table.meta["skipped"]}
    rejected = {n for n, _ in table.meta["rejected"]}
    assert not accepted & rejected
    return accepted, rejected


@pytest.mark.parametrize("name", sorted(DISAGREEMENTS))
def test_trusat_answers(name):
    expected = _answers(name)
    table = read_observations(realdata(*VEC, name), sites=realdata(*SITES))
    accepted, rejected = _verdicts(table)
    assert accepted | rejected == set(expected), "every record line gets a verdict"
    disagree = {n for n, ok in expected.items() if (n in accepted) != ok}
    assert disagree == set(DISAGREEMENTS[name]), sorted(disagree)
    reasons = dict(table.meta["rejected"])
    assert all(len(reasons[n]) > 15 for n in rejected), "each rejection says why"


def test_trusat_vector_counts():
    """The figures of the report: rows / compliant without position / rejected."""
    counts = {}
    for name in sorted(DISAGREEMENTS):
        t = read_observations(realdata(*VEC, name), sites=realdata(*SITES))
        counts[name] = (len(t), len(t.meta["skipped"]), len(t.meta["rejected"]))
    assert counts == {"IOD_data_compliant.txt": (45, 5, 1),
                      "IOD_data_noncompliant.txt": (3, 0, 114),
                      "UK_data_compliant.txt": (51, 0, 2),
                      "UK_data_noncompliant.txt": (1, 0, 44)}


def test_iod_values_against_independent_decoding():
    t = read_observations(realdata(*VEC, "IOD_data_compliant.txt"))
    row = t[t["line"] == 2][0]  # 23794 96 010A 2701 G 20040506012614270 17 25 1100114-184298 38
    assert row["time"].isot == "2004-05-06T01:26:14.270"
    assert row["sigma_time_s"] == pytest.approx(0.1)
    assert row["ra_deg"] == pytest.approx(Angle("11h00.114m").deg, abs=1e-9)
    assert row["dec_deg"] == pytest.approx(-Angle("18d42.98m").deg, abs=1e-9)
    assert row["sigma_arcsec"] == pytest.approx(3 * 60.0)  # '38' = 3 arcmin in format 2
    assert (row["norad_id"], row["cospar_id"], row["station"], row["object_id"]) == \
        ("23794", "1996-010A", "2701", "23794")
    assert row["mag"] == pytest.approx(2.0) and row["behaviour"] == "I"
    # partial precision (format 2), format 3 and format 7
    r2 = t[t["line"] == 13][0]  # ... 2008112211223344  56 25 1122   +1122   28 R+05  1
    assert r2["time"].isot == "2008-11-22T11:22:33.440"
    assert r2["ra_deg"] == pytest.approx(Angle("11h22m").deg, abs=1e-9)
    assert r2["dec_deg"] == pytest.approx(Angle("11d22m").deg, abs=1e-9)
    r3 = t[t["line"] == 14][0]  # ... 200811221122334   27 35 11223  +112    27 S+070 10
    assert r3["time"].isot == "2008-11-22T11:22:33.400"
    assert r3["ra_deg"] == pytest.approx(Angle("11h22.3m").deg, abs=1e-9)
    assert r3["dec_deg"] == pytest.approx(11.2, abs=1e-9)
    assert r3["sigma_arcsec"] == pytest.approx(2e-1 * 3600)  # '27' = 0.2 deg
    assert r3["sigma_time_s"] == pytest.approx(2e-1)
    r7 = t[t["line"] == 15][0]  # 123LEO ... 18 75 1122334+112222 36
    assert r7["ra_deg"] == pytest.approx(Angle("11h22m33.4s").deg, abs=1e-9)
    assert r7["dec_deg"] == pytest.approx(11.2222, abs=1e-9)
    assert r7["cospar_id"] == "1998-123LEO"
    assert r7["sigma_time_s"] == pytest.approx(1.0)


def test_iod_equinox_codes_convert_to_icrs():
    """Lines 50-56 repeat one position with equinox codes 0..6 (IOD_data_compliant)."""
    t = read_observations(realdata(*VEC, "IOD_data_compliant.txt"))
    rows = {int(r["epoch_code"]): r for r in t if 50 <= r["line"] <= 56}
    ra0, dec0 = Angle("11h00.114m").rad, -Angle("18d42.98m").rad
    # B1950 (code 4): SOFA's FK4 -> FK5 J2000 (zero FK5 proper motion), an independent path
    ra, dec = erfa.fk45z(ra0, dec0, 1950.0)
    r = rows[4]
    sep = Angle(np.degrees(erfa.seps(ra, dec, np.radians(r["ra_deg"]),
                                     np.radians(r["dec_deg"]))), "deg")
    assert sep.arcsec < 0.1
    assert r["equinox"] == "B1950"
    # J2000 (code 5) is taken as is
    assert rows[5]["ra_deg"] == pytest.approx(np.degrees(ra0), abs=1e-12)
    # of date (code 0, 2004): about 4.5 years of precession (~50"/yr in longitude)
    moved = Angle(np.degrees(erfa.seps(ra0, dec0, np.radians(rows[0]["ra_deg"]),
                                       np.radians(rows[0]["dec_deg"]))), "deg").arcsec
    assert 150 < moved < 300
    assert [rows[c]["equinox"] for c in range(7)] == ["of date", "B1855", "B1875", "B1900",
                                                     "B1950", "J2000", "J2050"]


def test_uk_values_and_azel_with_sites():
    t = read_observations(realdata(*VEC, "UK_data_compliant.txt"), sites=realdata(*SITES))
    row = t[t["line"] == 3][0]  # 0401401 2675 040503 20170296 010 1 2 102706 +36412 50 5
    assert row["time"].isot == "2004-05-03T20:17:02.960"
    assert row["sigma_time_s"] == pytest.approx(0.1)
    assert row["ra_deg"] == pytest.approx(Angle("10h27.06m").deg, abs=1e-9)
    assert row["dec_deg"] == pytest.approx(Angle("36d41.2m").deg, abs=1e-9)
    assert row["sigma_arcsec"] == pytest.approx(5.0 * 60)  # " 50 " = MM.mm 05.0 arcmin
    assert (row["cospar_id"], row["object_id"], row["station"]) == ("2004-014A", "2004-014A",
                                                                   "2675")
    assert t[t["line"] == 23][0]["cospar_id"] == "1999-321DC"  # piece 99 -> letters
    azel = t[t["equinox"] == "azel"]
    assert sorted(azel["line"]) == [46, 47]  # formats 5 and 6 from site 2018
    assert np.all((azel["dec_deg"] > -90) & (azel["dec_deg"] < 90))


def test_uk_azel_without_sites_is_rejected_with_reason():
    t = read_observations(realdata(*VEC, "UK_data_compliant.txt"))
    reasons = dict(t.meta["rejected"])
    assert "station '2018'" in reasons[46] and "sites=" in reasons[46]


def test_rde_report():
    for name in ("RDE_data_compliant.txt", "RDE_data_noncompliant.txt"):
        # the 'noncompliant' file is byte-identical to the compliant one in the source repo
        t = read_observations(realdata(*VEC, name))
        assert t.meta["format"] == "rde" and len(t) == 14
        assert [n for n, _ in t.meta["rejected"]] == [2]  # 'SATOBS' e-mail subject line
    first = t[0]  # 2420 1909 0.211 1204 / 28 / 0502402 184758.93 193923+452358 3.1 3.1 0 S
    assert first["time"].isot == "2019-09-28T18:47:58.930"
    assert first["sigma_arcsec"] == 120 and first["sigma_time_s"] == pytest.approx(0.2)
    assert (first["station"], first["cospar_id"], first["equinox"]) == ("2420", "2005-024B",
                                                                       "B1950")
    ra, dec = erfa.fk45z(Angle("19h39m23s").rad, Angle("45d23m58s").rad, 1950.0)
    sep = erfa.seps(ra, dec, np.radians(first["ra_deg"]), np.radians(first["dec_deg"]))
    assert np.degrees(sep) * 3600 < 0.1
    assert first["mag"] == pytest.approx(3.1)


def test_uk_lines_are_not_taken_for_rde():
    path = realdata(*VEC, "DATA_UK_not_RDE.txt")
    assert detect_format(path) == "uk"
    t = read_observations(path)
    assert list(t["line"]) == [7, 8, 9]
    assert t["time"][1].isot == "2003-10-15T20:19:55.423"  # HHMMSSssss "201955423 "


@pytest.mark.parametrize("parts, rows, rejected, fmt", [
    (("23908_20200316.txt",), 15, 0, "iod"),
    (("iod_23908_20200316", "23908_2020031619.txt"), 9, 0, "iod"),
    (("iod_23908_20200316", "23908_2020031621.txt"), 6, 0, "iod"),
    (("iod_data_af2.txt",), 8, 0, "iod"),
    (("SATOBS-ML-19200716.txt",), 6, 0, "iod"),
    (("sampleukformatdata.txt",), 7, 0, "uk"),
    (("SourceTXT", "iod_sample.txt"), 8, 1, "iod"),   # line 3: az 102 deg 96 min (format 4)
    (("SourceTXT", "uk_sample.txt"), 52, 1, "uk"),    # line 2: az 102 deg 70 min (format 4)
    (("SourceTXT", "rde_sample.txt"), 6, 0, "rde"),
    (("SourceTXT", "satobs_sample.txt"), 26, 0, "mixed"),
])
def test_orbitdeterminator_examples(parts, rows, rejected, fmt):
    t = read_observations(realdata(*OD, *parts), sites=realdata(*SITES))
    assert (len(t), len(t.meta["rejected"]), t.meta["format"]) == (rows, rejected, fmt)
    assert np.all(np.isfinite(t["ra_deg"])) and np.all(np.abs(t["dec_deg"]) <= 90)


def test_real_station_observations():
    """Cees Bassa's station 4171: a 2-minute GEO-transfer pass, 10 s cadence, 37 = 0.3 arcmin."""
    t = read_observations(realdata(*OD, "23908_20200316.txt"))
    assert set(t["station"]) == {"4171"} and set(t["object_id"]) == {"23908"}
    assert np.allclose(t["sigma_arcsec"], 18.0) and np.allclose(t["sigma_time_s"], 0.1)
    dt = np.diff(t["time"][:9].unix)
    assert np.all((dt > 5) & (dt < 11))
