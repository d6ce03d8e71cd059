"""aposos identify on real IOD lines from amateur stations (orbitdeterminator examples).

The observations are of 2004, 2016, 2018 and March 2020; the real TLE catalogs in
shared/realdata start in May 2020 (no catalog of March 2020 exists there), so no track can be
identified honestly: the test asserts that every file is read, cut into the expected tracks,
and reported with a status and a reason that says why (element sets too far in time, the
file's object missing from the catalogs, a single record).
"""

import json

import pytest

from aposos.cli import main
from aposos.formats import read_observations
from aposos.identify import IdentifyConfig, SiteResolver, identify, load_catalogs
from conftest import realdata

EXAMPLES = ("formats", "orbitdeterminator_examples")
#: file -> (tracks, records): 23908 has two passes 1.7 h apart; iod_sample mixes objects and
#: one az/el record placed by the sites list (and one broken line, rejected)
FILES = {"23908_20200316.txt": (2, 15), "SATOBS-ML-19200716.txt": (1, 6),
         "iod_data_af2.txt": (1, 8), "SourceTXT/iod_sample.txt": (3, 8)}


@pytest.fixture(scope="module")
def catalog():
    return load_catalogs([realdata("tle", "active_2020-06-05.txt")])


@pytest.mark.parametrize("name", sorted(FILES))
def test_real_iod_files_are_cut_into_tracks_and_reported_with_reasons(catalog, name):
    sites = realdata("formats", "cospar_sites.txt")
    table = read_observations(realdata(*EXAMPLES, *name.split("/")), sites=sites)
    n_tracks, n_records = FILES[name]
    assert len(table) == n_records
    results = identify(table, catalog, SiteResolver(sites=sites), IdentifyConfig())
    assert len(results) == n_tracks
    assert sum(r["n_obs"] for r in results) == n_records
    for r in results:
        assert r["status"] == "uct" and r["candidates"] == [] and r["reason"]
        assert ("no element set within 30 d" in r["reason"]) or ("single record" in r["reason"])
        assert r["timing_sigma_s"] == pytest.approx(0.1) and not r["timing_assumed"]  # code 17


def test_iss_2016_is_compared_with_its_2020_elements(catalog):
    """The file's object (ISS) is in the catalog: its residuals are reported even though a
    four-year-old element set is useless (hundreds of thousands of arcsec)."""
    sites = realdata("formats", "cospar_sites.txt")
    table = read_observations(realdata(*EXAMPLES, "SATOBS-ML-19200716.txt"), sites=sites)
    (r,) = identify(table, catalog, SiteResolver(sites=sites))
    assert r["claimed"]["norad_id"] == 25544
    assert r["claimed"]["tle_age_days"] < -1400 and r["claimed"]["median_arcsec"] > 3600


def test_cli_relaxed_age_still_uct_for_an_object_missing_from_the_catalogs(capsys):
    """23908 (1996-029C) is in none of the real catalogs: with the age limit relaxed to
    100 d, the tracks are compared with 2020-06 element sets and stay UCT, naming the
    nearest catalog object."""
    code = main(["identify", str(realdata(*EXAMPLES, "23908_20200316.txt")),
                 "--tle", str(realdata("tle", "active_2020-06-05.txt")),
                 "--sites", str(realdata("formats", "cospar_sites.txt")),
                 "--max-tle-age-days", "100", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    tracks = json.loads(out)
    assert [t["status"] for t in tracks] == ["uct", "uct"]
    for t in tracks:
        assert "nearest at t_ref: NORAD" in t["reason"] and "none of the catalogs" in t["reason"]
