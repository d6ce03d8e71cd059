"""Data-centre UCT orbits over the shared store (aposos.orbit.uct.store_orbits, `aposos orbits`).

Truth: a LEO object (SGP4 truth TLE, tests/orbit_truth.py) seen by Pakistan and Iran on one
pass each, two tracklets per station, 1 arcsec noise; plus one tracklet of another LEO object.
Each station's run commits its tracklets as UCTs: no station alone has the three tracklets an
orbit needs, the network has four.
"""

import json

import astropy.units as u
import numpy as np
import pytest
from astropy.time import Time

import orbit_truth as ot
from aposos.cli import main
from aposos.db import Store, query
from aposos.orbit import store_orbits
from aposos.orbit.uct import summary_text

T0 = Time("2026-11-20T12:00:00", scale="utc")


@pytest.fixture(scope="module")
def truth():
    sat = ot.satellite(T0, 15.2, 0.001, 97.5, 120, 90, 270, bstar=1e-4)
    other = ot.satellite(T0, 14.3, 0.002, 70.0, 200, 200, 20, bstar=2e-5, satnum=90005)
    rng = np.random.default_rng(2)
    trs = ot.pass_tracklets(sat, "pakistan", T0, rng, hours=14) + ot.pass_tracklets(sat, "iran", T0, rng, hours=14)
    assert [t["station"][0] for t in trs] == ["pakistan"] * 2 + ["iran"] * 2
    lone = ot.pass_tracklets(other, "peru", T0, rng, per_pass=1, max_passes=1)
    assert len(lone) == 1
    return sat, trs, lone[0]


@pytest.fixture(scope="module")
def store(truth, tmp_path_factory):
    _, trs, lone = truth
    path = tmp_path_factory.mktemp("uct") / "store"
    with Store.open(path, "a") as db:
        ot.commit_uct_run(db, "pakistan", trs[:2])
        ot.commit_uct_run(db, "iran", trs[2:])
        ot.commit_uct_run(db, "peru", [lone])
    return path


@pytest.fixture(scope="module")
def first_run(store):
    return store_orbits(store)


def test_one_orbit_joins_both_stations_and_predicts_the_truth(truth, store, first_run):
    sat, trs, _ = truth
    res = first_run
    print(res)
    assert len(res) == 5 and res.meta["committed"]
    assert res.meta["objects"] == 1 and res.meta["orbits"] == 1
    joined = res[res["orbit_id"] != ""]
    assert sorted(joined["station"]) == ["iran", "iran", "pakistan", "pakistan"]
    assert list(res["station"][res["object"] < 0]) == ["peru"]  # the other object's lone tracklet
    with Store.open(store, "r") as db:
        orbits = query.orbits(db)
        corr = query.correlations(db, status="uct")
        hist = query.correlations(db, status="uct", history=True)
    assert len(orbits) == 1 and orbits["orbit_id"][0] == joined["orbit_id"][0]
    assert orbits["n_tracklets"][0] == 4 and orbits["rms_arcsec"][0] < 1.6  # noise: 1 arcsec
    linked = dict(zip(corr["tracklet_id"].tolist(), corr["orbit_id"]))
    assert {linked[int(t)] for t in joined["tracklet_id"]} == {orbits["orbit_id"][0]}
    assert len(hist) == len(corr) + 4  # the unlinked UCT rows are kept as history
    text = summary_text(res)
    assert "UCT tracklets considered: 5" in text and "orbits determined:        1" in text
    assert "tracklets left single:    1" in text and "4 tracklets from iran, pakistan" in text
    # the stored TLE predicts the object 12 h after the last observation within 2 km
    from sgp4.api import Satrec

    later = (Time(trs[-1]["time"][-1]) + 12 * u.h).reshape(1)
    err_km = ot.separation_km(Satrec.twoline2rv(orbits["tle_line1"][0], orbits["tle_line2"][0]), sat, later)[0]
    print(f"network orbit of pakistan+iran UCTs: rms {orbits['rms_arcsec'][0]:.2f} arcsec, 12 h error {err_km:.3f} km")
    assert err_km < 2.0


def test_rerun_adds_nothing(store, first_run, capsys):
    with Store.open(store, "r") as db:
        before = db.summary()
    assert main(["orbits", "--db", str(store), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["committed"] is False and out["orbits"] == 1 and out["single"] == 1
    with Store.open(store, "r") as db:
        assert db.summary() == before


def test_station_and_time_filters(store, first_run, truth, capsys):
    _, trs, _ = truth
    assert main(["orbits", "--db", str(store), "--station", "pakistan", "iran", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["uct_tracklets"] == 4 and out["orbits"] == 1 and out["single"] == 0 and not out["committed"]
    res = store_orbits(store, stations=["pakistan"])
    assert len(res) == 2 and res.meta["orbits"] == 0 and not res.meta["committed"]
    res = store_orbits(store, end=Time(trs[1]["time"][-1]) + 60 * u.s)
    assert set(res["station"]) <= {"pakistan", "peru"} and res.meta["orbits"] == 0


def test_bad_time_is_a_clear_error(store):
    from aposos.errors import AposError

    with pytest.raises(AposError, match="start"):
        store_orbits(store, start="yesterday")


def test_empty_store_and_missing_store(tmp_path):
    from aposos.errors import AposError

    Store.open(tmp_path / "empty", "a").close()
    res = store_orbits(tmp_path / "empty")
    assert len(res) == 0 and res.meta["orbits"] == 0 and not res.meta["committed"]
    with pytest.raises(AposError, match="no aposos store"):
        store_orbits(tmp_path / "absent")
    assert not (tmp_path / "absent").exists()


def test_tracklet_recorrelated_while_fitting_is_not_linked(truth, tmp_path, monkeypatch):
    """A station run identifies one of the UCTs while the data centre fits: its new
    correlation stands, the other three tracklets are linked to the orbit."""
    import aposos.orbit.uct as uct
    from astropy.table import Table

    _, trs, lone = truth
    path = tmp_path / "store"
    with Store.open(path, "a") as db:
        ot.commit_uct_run(db, "pakistan", trs[:2])
        ot.commit_uct_run(db, "iran", trs[2:])
    fit = uct.uct_orbits

    def fit_then_recorrelate(tables):
        out = fit(tables)
        with Store.open(path, "a") as db:
            tid = int(query.correlations(db, status="uct")["tracklet_id"][0])
            db.begin_run("pakistan")
            db.commit_tracklets(correlations=Table({"tracklet_id": [tid], "norad_id": [44444],
                                                    "status": ["identified"]}))
            db.end_run()
        return out

    monkeypatch.setattr(uct, "uct_orbits", fit_then_recorrelate)
    res = store_orbits(path)
    assert res.meta["orbits"] == 1 and res.meta["committed"]
    with Store.open(path, "r") as db:
        corr = query.correlations(db)
    assert sorted(corr["status"]) == ["identified", "uct", "uct", "uct"]
    assert set(corr["orbit_id"][corr["status"] == "uct"]) == {res["orbit_id"][0]}
    assert corr["orbit_id"][corr["status"] == "identified"][0] == ""
