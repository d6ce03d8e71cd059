"""TLE catalog reading: formats, quirks, checksums, rejections, duplicates, precedence."""

import logging

import numpy as np
import pytest
from astropy.time import Time
from sgp4.api import Satrec

from aposos import tle
from aposos.errors import AposError

from conftest import realdata


def _fix(line: str) -> str:
    """Line with its checksum (column 69) recomputed."""
    return line[:68] + str(tle.checksum(line))


def make_tle(norad="90001", epoch="26325.50000000", inc="97.5000", mm="15.20000000", ndot=" .00010000"):
    l1 = _fix(f"1 {norad}U 26001A   {epoch} {ndot}  00000-0  50000-3 0  999 ")
    l2 = _fix(f"2 {norad} {float(inc):8.4f} 120.0000 0010000  90.0000 270.0000 {mm}100030")
    return l1, l2


def test_make_tle_is_valid_sgp4():
    l1, l2 = make_tle()
    assert len(l1) == len(l2) == 69
    assert Satrec.twoline2rv(l1, l2).error == 0


def test_alpha5_numbers_round_trip():
    assert tle.parse_catalog_number("A0001") == 100001
    assert tle.parse_catalog_number("Z9999") == 339999
    assert tle.parse_catalog_number("J0000") == 180000  # I skipped
    assert tle.parse_catalog_number("    5") == 5
    assert tle.parse_catalog_number("00005") == 5
    for n in (5, 99999, 100000, 123456, 339999):
        assert tle.parse_catalog_number(tle.format_catalog_number(n)) == n
    for bad in ("I0001", "O1234", "A00x1", ""):
        with pytest.raises(ValueError):
            tle.parse_catalog_number(bad)


def test_three_formats_and_alpha5(tmp_path):
    a = make_tle("A0001")
    b = make_tle("00042", mm="01.00270000", inc="0.05")
    c = make_tle("   77".replace(" ", " "))
    text = "\r\n".join(["0 ALPHA FIVE", *a, "PLAIN NAME", *b, *c]) + "\r\n"
    p = tmp_path / "mix.txt"
    p.write_text(text)
    cat = tle.load_catalog(p)
    assert len(cat) == 3 and not cat.rejected and not cat.checksum_errors
    assert list(cat.norad_ids) == [42, 77, 100001]
    assert cat[100001].name == "ALPHA FIVE" and cat[42].name == "PLAIN NAME"
    assert cat[77].name == "26001A"  # 2LE without a name: international designator
    assert cat[100001].satrec.satnum == 100001
    assert abs((cat[42].epoch - Time("2026-11-21T12:00:00", scale="utc")).sec) < 1e-3


def test_legacy_plus_signs_and_zero_padding(tmp_path):
    l1 = _fix("1    11U 59001A   20156.86638665 +.00000017 +00000-0 -43550-5 0  9990")
    l2 = _fix("2    11 032.8690 102.6409 1468328 180.4419 179.4866 11.85695043273480")
    p = tmp_path / "legacy.txt"
    p.write_text(f"0 VANGUARD 2\n{l1}\n{l2}\n")
    e = tle.load_catalog(p)[11]
    assert np.isclose(np.degrees(e.satrec.inclo), 32.869)
    assert e.satrec.bstar == pytest.approx(-4.355e-6)


def test_bad_checksum_is_kept_counted_and_logged(tmp_path, caplog):
    l1, l2 = make_tle("00100")
    bad = l1[:68] + str((int(l1[68]) + 1) % 10)
    p = tmp_path / "sum.txt"
    p.write_text(f"X\n{bad}\n{l2}\n")
    with caplog.at_level(logging.WARNING, logger="aposos.tle"):
        cat = tle.load_catalog(p)
    assert len(cat) == 1 and not cat[100].checksum_ok
    assert len(cat.checksum_errors) == 1 and cat.checksum_errors[0].line == 2
    assert "checksum" in caplog.text and "sum.txt:2" in caplog.text


def test_bad_sets_rejected_with_line_numbers_rest_loads(tmp_path):
    good = make_tle("00001")
    mism = make_tle("00002")[0], make_tle("00003")[1]  # numbers differ
    nonnum = make_tle("00004")
    nonnum = nonnum[0], _fix(nonnum[1][:8] + "9x.5000" + nonnum[1][15:])
    short = make_tle("00005")
    lines = ["A", *good, "B", *mism, "C", *nonnum, "D", short[0][:64], short[1],
             "E", make_tle("00006")[1], "F", *make_tle("00007")]
    p = tmp_path / "bad.txt"
    p.write_text("\n".join(lines) + "\n")
    cat = tle.load_catalog(p)
    assert sorted(cat.norad_ids) == [1, 7]
    where = {r.line: r.reason for r in cat.rejected}
    assert "differ" in where[5]
    assert "inclination" in where[9]
    assert "columns" in where[11]  # truncated line 1
    assert any("line 2 without" in r for r in where.values())
    assert all(r.path == str(p) for r in cat.rejected)
    assert len(cat.rejected) >= 4


def test_duplicates_keep_nearest_epoch_and_history(tmp_path):
    sets = [make_tle("00010", epoch=e) for e in ("26320.00000000", "26325.00000000", "26330.00000000")]
    p = tmp_path / "dup.txt"
    p.write_text("\n".join(l for s in sets for l in s) + "\n")
    cat = tle.load_catalog(p)
    assert len(cat) == 1 and len(cat.history[10]) == 3
    assert cat[10].line1 == sets[2][0]  # latest by default
    near = Time("2026-11-21T06:00:00", scale="utc")  # day 325.25
    sel = cat.select(near)
    assert sel[10].line1 == sets[1][0]
    assert sel[10].age_days(near) == pytest.approx(0.25)
    assert tle.load_catalog(p, near=near)[10].line1 == sets[1][0]
    assert sel.age_days(near) == pytest.approx([0.25])


def test_several_files_first_has_precedence(tmp_path):
    old = make_tle("00020", epoch="26300.00000000")
    new = make_tle("00020", epoch="26325.00000000")
    other = make_tle("00021")
    (tmp_path / "a.txt").write_text("\n".join(old) + "\n")
    (tmp_path / "b.txt").write_text("\n".join([*new, *other]) + "\n")
    cat = tle.load_catalog([tmp_path / "a.txt", tmp_path / "b.txt"])
    assert len(cat) == 2
    assert cat[20].line1 == old[0] and len(cat.history[20]) == 2  # precedence beats recency
    assert cat[21].path.endswith("b.txt")


def test_missing_file_is_an_apos_error(tmp_path):
    with pytest.raises(AposError, match="cannot read"):
        tle.load_catalog(tmp_path / "nope.txt")


def test_as_entries_accepts_pairs_and_triples():
    l1, l2 = make_tle("00033")
    es = tle.as_entries([(l1, l2), ("NAME", l1, l2)])
    assert [e.norad_id for e in es] == [33, 33]
    with pytest.raises(AposError):
        tle.as_entries([(l1[:40], l2)])


@pytest.mark.parametrize("name, n_objects", [
    ("full_catalog_2021-05-29.txt", 21584),
    ("legacy_3le_2020-06-04.txt", 3578),
    ("active_2020-06-05.txt", 2703),
])
def test_real_catalogs_load_completely(name, n_objects):
    path = realdata("tle", name)
    cat = tle.load_catalog(path)
    n_sets = sum(1 for line in path.read_text().splitlines() if line.startswith("1 "))
    # every element set is either loaded or rejected with a reason
    assert sum(len(h) for h in cat.history.values()) + len(cat.rejected) == n_sets
    assert len(cat) == n_objects and not cat.rejected
    assert all(e.name for e in cat)
    err, _, _ = cat.satrec_array().sgp4(np.array([cat[next(iter(cat.norad_ids))].epoch_jd[0]]), np.array([0.5]))
    assert (err == 0).mean() > 0.99


def test_missing_checksum_column_and_long_lines(tmp_path):
    l1, l2 = make_tle("00050")
    p = tmp_path / "edge.txt"
    p.write_text(f"0 NO SUM\n{l1[:68]}\n{l2}   trailing junk\n\n\n0 \n{make_tle('00051')[0]}\n{make_tle('00051')[1]}\n")
    cat = tle.load_catalog(p)
    assert list(cat.norad_ids) == [50, 51]
    assert not cat[50].checksum_ok and "missing" in cat.checksum_errors[0].reason
    assert cat[50].line2 == l2  # cut at column 69
    assert cat[51].name == "26001A"  # empty name line


def test_file_without_any_set_says_why(tmp_path):
    p = tmp_path / "junk.txt"
    p.write_text("hello\n1 garbage line that is not a tle at all but long enough to look like one\n")
    with pytest.raises(AposError, match="no element sets found.*rejected"):
        tle.load_catalog(p)
