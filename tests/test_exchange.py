"""aposos identify / import / export against simulator truth.

Observations come from the simulator's skyfield path (aposos.simulate.satellites.observe),
never from aposos.predict, which identification uses. They are written with the format
writers and read back by the commands, as a partner's file would be.
"""

import json

import astropy.units as u
import numpy as np
import pytest
from astropy.table import Table
from astropy.time import Time

from aposos.cli import main
from aposos.config import load_station
from aposos.db import Store
from aposos.db import query
from aposos.exchange import night_interval, record_keys
from aposos.formats import read_observations, write_iod, write_tdm
from aposos.simulate import satellites, tles as simtles

NIGHT = Time("2026-11-21T19:30:00", scale="utc")  # Iran: 23:00 local
NOISE_ARCSEC = 1.0
SIGMA_TIME_S = 0.002
N_OBJECTS = 5
IRAN_CODE = "9990"  # an IOD station code for the test (APOSOS has no COSPAR numbers yet)


def _site(st):
    return f"{st.lat_deg},{st.lon_deg},{st.height_m}"


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """Five sunlit objects seen from Iran, 6 points 20 s apart each; files and catalogs."""
    tmp = tmp_path_factory.mktemp("exchange")
    st = load_station("iran")
    truth = simtles.random_catalog(300, NIGHT - 0.5 * u.day, seed=3, mix={"LEO": 0.5, "MEO": 0.2, "GEO": 0.3})
    rng = np.random.default_rng(1)
    rows, seen = [], []
    for tle in truth:
        times = NIGHT + rng.uniform(0, 3000) * u.s + np.arange(6) * 20 * u.s
        o = satellites.observe(tle, st, times)
        if not (np.all(o["alt_deg"] > 20) and np.all(o["lit"] > 0.99)):
            continue
        cosd = np.cos(np.radians(o["dec_deg"]))
        for i in range(6):
            rows.append((times[i], o["ra_deg"][i] + rng.normal(0, NOISE_ARCSEC) / 3600 / cosd[i],
                         o["dec_deg"][i] + rng.normal(0, NOISE_ARCSEC) / 3600, NOISE_ARCSEC,
                         SIGMA_TIME_S, str(tle.norad), "iran"))
        seen.append(tle.norad)
        if len(seen) == N_OBJECTS:
            break
    obs = Table(rows=rows, names=("time", "ra_deg", "dec_deg", "sigma_arcsec", "sigma_time_s",
                                  "norad_id", "station"))
    obs["time"] = Time(list(obs["time"]))
    iod, tdm = tmp / "obs.iod", tmp / "obs.tdm"
    write_iod(obs, iod, station_codes={"iran": IRAN_CODE})
    write_tdm(obs, tdm)
    removed = seen[0]
    catalog = tmp / "catalog.tle"
    simtles.write_catalog(catalog, simtles.without(truth, removed))
    return {"tmp": tmp, "station": st, "truth": truth, "seen": seen, "removed": removed,
            "iod": iod, "tdm": tdm, "catalog": catalog, "obs": obs}


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


CANDIDATE_KEYS = {"norad_id", "median_arcsec", "along_track_arcsec", "cross_track_arcsec", "tle_epoch"}


@pytest.mark.parametrize("fmt", ["iod", "tdm"])
def test_identify_names_every_object_and_the_removed_one_uct(scene, capsys, fmt):
    code, out, err = _run(capsys, "identify", scene[fmt], "--tle", scene["catalog"],
                          "--site", _site(scene["station"]), "--json")
    assert code == 0, err
    tracks = json.loads(out)
    assert len(tracks) == N_OBJECTS
    by_object = {int(t["object_id"]): t for t in tracks}
    assert set(by_object) == set(scene["seen"])
    for norad, t in by_object.items():
        assert t["status"] in ("identified", "ambiguous", "uct") and t["reason"]
        assert t["n_obs"] == 6 and not t["timing_assumed"]
        assert t["timing_sigma_s"] == pytest.approx(SIGMA_TIME_S, rel=0.3)  # IOD MX code
        if norad == scene["removed"]:
            assert t["status"] == "uct" and t["candidates"] == [] and t["norad_id"] is None
            assert "none of the catalogs" in t["reason"]
            continue
        assert t["status"] == "identified" and t["norad_id"] == norad
        best = t["candidates"][0]
        assert CANDIDATE_KEYS <= set(best) and best["norad_id"] == norad
        # perfect TLEs, 1 arcsec noise per axis: the median total residual is ~1.2 arcsec
        assert best["median_arcsec"] < 3.0
        assert abs(best["along_track_arcsec"]) < 1.5 and abs(best["cross_track_arcsec"]) < 1.5
        assert Time(best["tle_epoch"]) < Time(t["t_first"])


def test_identify_uses_the_epoch_nearest_the_observations(scene, capsys):
    """A history: the first file holds a 20-day-older set of one object, the second the
    current one; the nearest epoch wins whatever the file order."""
    target = next(n for n in scene["seen"] if n != scene["removed"])
    tle = next(t for t in scene["truth"] if t.norad == target)
    old = scene["tmp"] / "old.tle"
    simtles.write_catalog(old, [simtles.aged(tle, 20.0, km_per_day=2.0)])
    code, out, err = _run(capsys, "identify", scene["iod"], "--tle", old, "--tle", scene["catalog"],
                          "--site", _site(scene["station"]), "--json")
    assert code == 0, err
    track = next(t for t in json.loads(out) if int(t["object_id"]) == target)
    assert track["status"] == "identified"
    epoch = Time(track["candidates"][0]["tle_epoch"])
    assert abs((epoch - tle.epoch).to_value("s")) < 1e-3


def test_identify_text_output_ranks_candidates(scene, capsys):
    code, out, err = _run(capsys, "identify", scene["iod"], "--tle", scene["catalog"],
                          "--site", _site(scene["station"]))
    assert code == 0, err
    assert out.count("-> IDENTIFIED") == N_OBJECTS - 1 and out.count("-> UCT") == 1
    assert "median" in out and "along" in out and "cross" in out


def test_import_twice_adds_nothing(scene, capsys, tmp_path):
    store = tmp_path / "store"
    args = ("import", scene["iod"], "--db", store, "--site", _site(scene["station"]),
            "--tle", scene["catalog"])
    code, out, err = _run(capsys, *args)
    assert code == 0, err
    assert f"{N_OBJECTS - 1} identified" in out and "1 uct" in out
    with Store.open(store) as db:
        first = db.summary()
    code, out, err = _run(capsys, *args)
    assert code == 0, err
    assert "nothing new" in out
    with Store.open(store) as db:
        assert db.summary() == first
    assert first["observations"] == 6 * N_OBJECTS and first["tracklets"] == N_OBJECTS
    assert first["identified"] == N_OBJECTS - 1 and first["uct"] == 1


def test_record_keys_are_unique_per_line_and_repeat():
    keys = record_keys("ab" * 32, [3, 4, 4])
    assert len(set(keys)) == 3 and keys == record_keys("ab" * 32, [3, 4, 4])
    assert keys[0] != record_keys("cd" * 32, [3])[0]


def _stored(store):
    with Store.open(store) as db:
        obs = query.observations(db)
        corr = query.correlations(db)
        trk = query.tracklets(db)
    ident = {int(c["tracklet_id"]): int(c["norad_id"]) for c in corr
             if c["status"] == "identified" and c["rank"] == 0}
    obs["norad"] = [ident.get(int(t), 0) for t in obs["tracklet_id"]]
    return obs, trk


@pytest.mark.parametrize("fmt", ["tdm", "iod", "xml"])
def test_round_trip_store_export_import(scene, capsys, tmp_path, fmt):
    a, b = tmp_path / "a", tmp_path / "b"
    site = _site(scene["station"])
    code, _, err = _run(capsys, "import", scene["tdm"], "--db", a, "--station", "iran", "--tle", scene["catalog"])
    assert code == 0, err
    out = tmp_path / ("export.xml" if fmt == "xml" else f"export.{fmt}")
    extra = ["--tdm-xml"] if fmt == "xml" else []
    if fmt == "iod":
        extra = ["--station-code", f"iran={IRAN_CODE}", "--sigma-time-s", SIGMA_TIME_S]
    code, _, err = _run(capsys, "export", "--db", a, "--format", "iod" if fmt == "iod" else "tdm",
                        "--out", out, "--station", "iran", "--night", "2026-11-21", *extra)
    assert code == 0, err
    code, _, err = _run(capsys, "import", out, "--db", b, "--site", site, "--tle", scene["catalog"])
    assert code == 0, err
    oa, ta = _stored(a)
    ob, tb = _stored(b)
    if fmt == "iod":  # IOD carries only identified objects
        oa = oa[oa["norad"] != 0]
        assert len(oa) == 6 * (N_OBJECTS - 1)
    assert len(ob) == len(oa)
    dt = np.abs((Time(ob["time"]) - Time(oa["time"])).to_value("s"))
    cosd = np.cos(np.radians(oa["dec_deg"]))
    dra = np.abs(((ob["ra_deg"] - oa["ra_deg"] + 180) % 360 - 180) * cosd) * 3600
    ddec = np.abs(ob["dec_deg"] - oa["dec_deg"]) * 3600
    # TDM keeps 1 us and 1e-9 deg; IOD angle format 2: RA 0.001 min of time, Dec 0.01 arcmin, 1 ms
    tol_t, tol_ra, tol_dec = (1e-6, 1e-4, 1e-4) if fmt != "iod" else (5e-4, 0.45, 0.3)
    assert dt.max() <= tol_t and dra.max() <= tol_ra and ddec.max() <= tol_dec
    assert np.all(ob["norad"] == oa["norad"])  # same identifications
    assert np.allclose(ob["sigma_arcsec"], oa["sigma_arcsec"], rtol=0.35 if fmt == "iod" else 1e-6)
    if fmt != "iod":  # the UCT travels under its tracklet label (PARTICIPANT_1): 5 tracks again
        assert len(tb) == len(ta) == N_OBJECTS


def test_export_selects_by_object_and_writes_uct_labels(scene, capsys, tmp_path):
    a = tmp_path / "a"
    _run(capsys, "import", scene["iod"], "--db", a, "--site", _site(scene["station"]), "--tle", scene["catalog"])
    target = next(n for n in scene["seen"] if n != scene["removed"])
    code, out, err = _run(capsys, "export", "--db", a, "--format", "tdm", "--object", target)
    assert code == 0, err
    assert out.count(f"PARTICIPANT_1 = {target}") == 1 and out.count("\nANGLE_1 =") == 6
    code, out, err = _run(capsys, "export", "--db", a, "--format", "tdm")
    assert code == 0, err
    assert out.count("PARTICIPANT_1 = imp-") == 1  # the UCT, under its tracklet label
    code, out, err = _run(capsys, "export", "--db", a, "--format", "iod", "--sigma-time-s", "0.01")
    assert code == 0, err
    assert len(out.splitlines()) == 6 * (N_OBJECTS - 1) and "not identified" in err


def test_night_is_local_mean_noon_to_noon_or_the_utc_date():
    start, end, _ = night_interval("2026-11-21", "iran")
    lon = load_station("iran").lon_deg
    assert abs((start - Time("2026-11-21T12:00:00", scale="utc")).to_value("s") + lon / 15 * 3600) < 1e-3
    assert abs((end - start).to_value("s") - 86400) < 1e-3
    start, end, what = night_interval("2026-11-21", "4171")
    assert start.isot == "2026-11-21T00:00:00.000" and "UTC" in what


def _one_line_error(code, err):
    assert code == 2
    assert err.startswith("aposos: error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_errors_are_one_line(scene, capsys, tmp_path):
    store = tmp_path / "s"
    _run(capsys, "import", scene["iod"], "--db", store, "--site", _site(scene["station"]))
    code, _, err = _run(capsys, "export", "--db", store, "--format", "iod")
    _one_line_error(code, err)  # no NORAD ids without a catalog -> nothing to export
    code, _, err = _run(capsys, "import", scene["iod"], "--db", store)
    _one_line_error(code, err)
    assert "--station" in err
    bad = tmp_path / "bad.txt"
    bad.write_text("hello\nworld\n")
    code, _, err = _run(capsys, "identify", bad, "--tle", scene["catalog"], "--site", "1,2,3")
    _one_line_error(code, err)
    assert str(bad) in err
    code, _, err = _run(capsys, "identify", scene["iod"], "--tle", scene["catalog"], "--site", "1,2")
    _one_line_error(code, err)
    assert "--site" in err
    code, _, err = _run(capsys, "identify", scene["iod"], "--tle", scene["catalog"])
    _one_line_error(code, err)
    assert IRAN_CODE in err and "--sites" in err
    # a record without a position uncertainty (IOD code M = 0) names its line
    lines = scene["iod"].read_text().splitlines()
    lines[3] = lines[3][:62] + "00" + lines[3][64:]
    nosig = tmp_path / "nosig.iod"
    nosig.write_text("\n".join(lines) + "\n")
    code, _, err = _run(capsys, "identify", nosig, "--tle", scene["catalog"], "--site", "1,2,3")
    _one_line_error(code, err)
    assert f"{nosig}:4" in err and "--sigma-arcsec" in err


def test_iod_export_needs_a_time_uncertainty(scene, capsys, tmp_path):
    store = tmp_path / "s"
    _run(capsys, "import", scene["tdm"], "--db", store, "--station", "iran", "--tle", scene["catalog"])
    code, _, err = _run(capsys, "export", "--db", store, "--format", "iod", "--station-code", "iran=9990")
    _one_line_error(code, err)
    assert "timing.sigma_s" in err and "--sigma-time-s" in err
    code, _, err = _run(capsys, "export", "--db", store, "--format", "iod", "--sigma-time-s", "0.01")
    _one_line_error(code, err)
    assert "--station-code iran=CODE" in err


def _identify(scene, catalog_tles, path="iod"):
    from aposos.identify import SiteResolver, identify, load_catalogs

    cat_path = scene["tmp"] / f"cat{len(catalog_tles)}_{id(catalog_tles)}.tle"
    simtles.write_catalog(cat_path, catalog_tles)
    table = read_observations(scene[path])
    return {int(t["object_id"]): t for t in identify(table, load_catalogs([cat_path]),
                                                    SiteResolver(site=scene["station"].location))}


def test_two_day_old_elements_still_identify_with_the_error_along_track(scene):
    """The catalog as published 2 days earlier (2 km/day along-track drift, the way TLE errors
    grow): every object is still identified, and the residual lies along the track."""
    old = [simtles.aged(t, 2.0, km_per_day=2.0) for t in scene["truth"] if t.norad != scene["removed"]]
    by_object = _identify(scene, old)
    along, cross = [], []
    for norad, t in by_object.items():
        if norad == scene["removed"]:
            assert t["status"] == "uct"
            continue
        assert t["status"] == "identified" and t["norad_id"] == norad
        best = t["candidates"][0]
        assert best["tle_age_days"] > 2.0
        along.append(abs(best["along_track_arcsec"]))
        cross.append(abs(best["cross_track_arcsec"]))
    assert np.all(np.array(along) > np.array(cross)) and np.median(along) > 20.0


def test_a_twin_in_the_catalog_makes_the_track_ambiguous(scene):
    """Two catalog numbers on one orbit (a pair just separated): both pass, neither stands out."""
    target = next(n for n in scene["seen"] if n != scene["removed"])
    tle = next(t for t in scene["truth"] if t.norad == target)
    twin_number = 99990

    def renumber(line):
        text = line[:2] + f"{twin_number:05d}" + line[7:68]
        return text + str(simtles.checksum(text))

    twin = simtles.Tle("TWIN", renumber(tle.line1), renumber(tle.line2))
    t = _identify(scene, [tle, twin])[target]
    assert t["status"] == "ambiguous" and t["norad_id"] in (target, twin_number)
    assert {c["norad_id"] for c in t["candidates"]} == {target, twin_number}
    assert "differ by less" in t["reason"]


@pytest.mark.parametrize("kind,span_s", [("leo", 60), ("leo", 120), ("geo", 300)])
def test_track_tracklet_position_and_rate_against_truth(kind, span_s):
    """The tracklet made of a track (8 records, 1 arcsec noise) sits on the simulator's truth:
    a 900 km LEO passing near the zenith (1700 arcsec/s, up to 100 deg of sky in 120 s) and
    a GEO."""
    from aposos.identify import track_tracklet

    st = load_station("iran")
    t_pass = Time("2026-11-21T15:10:00", scale="utc")
    tle = (simtles.designed_leo(90001, t_pass, st.lat_deg, st.lon_deg, alt_km=900.0) if kind == "leo"
           else simtles.designed_geo(90002, t_pass, st.lon_deg + 10.0))
    times = t_pass + np.linspace(-span_s / 2, span_s / 2, 8) * u.s
    o = satellites.observe(tle, st, times)
    rng = np.random.default_rng(4)
    ra = o["ra_deg"] + rng.normal(0, 1, 8) / 3600 / np.cos(np.radians(o["dec_deg"]))
    dec = o["dec_deg"] + rng.normal(0, 1, 8) / 3600
    trk = track_tracklet(times, ra, dec, np.ones(8))
    ref = satellites.observe(tle, st, trk["t_ref"])
    offset = np.hypot((trk["ra_deg"] - ref["ra_deg"][0]) * np.cos(np.radians(trk["dec_deg"])),
                      trk["dec_deg"] - ref["dec_deg"][0]) * 3600
    rate = np.hypot(trk["ra_rate_deg_s"], trk["dec_rate_deg_s"]) * 3600
    true_rate = np.hypot(ref["rate_ra_arcsec_s"][0], ref["rate_dec_arcsec_s"][0])
    assert offset < 3.0
    assert abs(rate / true_rate - 1) < 0.01
    assert abs(trk["ra_rate_deg_s"] * 3600 - ref["rate_ra_arcsec_s"][0]) < 0.01 * true_rate + 0.1


def test_station_timing_sigma_comes_from_the_config(tmp_path, monkeypatch):
    import aposos.exchange as exchange
    from aposos.config import STATIONS_DIR, load_station_file

    text = (STATIONS_DIR / "iran.toml").read_text().replace('time_source = "GPS"',
                                                             'time_source = "GPS"\nsigma_s = 0.0005')
    path = tmp_path / "iran.toml"
    path.write_text(text)
    monkeypatch.setattr(exchange, "configured_station", lambda name: load_station_file(path))
    assert exchange.station_sigma_time("iran", None) == 0.0005
    assert exchange.station_sigma_time("iran", 0.2) == 0.0005  # the config wins
