"""The observation store: schema, times, idempotency, versions, merge, queries, errors, CLI."""

import json
import os

import astropy.units as u
import numpy as np
import pytest
from astropy.table import Table
from astropy.time import Time

from aposos.cli import main
from aposos.db import FrameRecord, Store, schema, synthetic
from aposos.errors import AposError


def fill(db, station, frames, pipeline_version="0.1.0"):
    """Commit synthetic frames ``frames`` of ``station`` in one run; returns the run id."""
    run = db.begin_run(station, pipeline_version=pipeline_version, config_hash="c0ffee")
    for i in frames:
        rec, obs = synthetic.frame(station, i)
        db.commit_frame(rec, observations=obs)
    return run


def link(db, station, frames, label, norad_id, **corr):
    """Tracklet of observation 0 of each frame, correlated with ``norad_id``."""
    frames = [i for i in frames if synthetic.n_obs(i)]
    members = Table({"tracklet": [label] * len(frames),
                     "content_hash": [synthetic.content_hash(station, i) for i in frames],
                     "obs_index": [0] * len(frames)})
    c = {"tracklet": [label], "norad_id": [norad_id], "status": ["identified"],
         "along_track_arcsec": [corr.get("along", 1.5)], "cross_track_arcsec": [0.4],
         "tle_epoch": Time(["2026-11-20T00:00:00"]), "score": [0.2]}
    return db.commit_tracklets(members, correlations=Table(c))


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "store", "a") as db:
        yield db


# ---------------------------------------------------------------- times

def test_time_round_trip_is_exact_to_a_nanosecond_through_a_leap_second():
    t = Time(["2016-12-31T23:59:59.999999999", "2016-12-31T23:59:60.123456789",
              "2017-01-01T00:00:00.000000001", "2026-11-21T18:00:00.000000500"], scale="utc",
             precision=9)
    ns = schema.time_to_ns(t)
    assert np.all(np.diff(ns) > 0)  # monotonic through the leap second
    back = schema.ns_to_time(ns)
    assert back[1].iso.startswith("2016-12-31 23:59:60.123")
    assert np.max(np.abs((back - t).to_value(u.ns))) < 1.0
    assert ns[2] - ns[0] == 1_000_000_002  # 2 ns of UTC clock + the leap second


def test_stored_values_come_back_exactly(store):
    fill(store, "iran", range(5))
    rec, obs = synthetic.frame("iran", 4)
    got = store.observations(station="iran")
    got = got[got["content_hash"] == rec.content_hash]
    assert len(got) == synthetic.n_obs(4) == 6
    assert np.array_equal(schema.time_to_ns(got["time"]), obs["time_ns"])
    assert np.array_equal(got["ra_deg"], obs["ra_deg"])
    assert np.array_equal(got["dec_deg"], obs["dec_deg"])
    assert list(got["kind"]) == list(obs["kind"])
    assert list(got["end"]) == list(obs["end"])
    fr = store.frames(station="iran")
    assert len(fr) == 5 and set(fr["status"]) == {"ok"}
    assert abs((fr["t_mid"][4] - rec.t_mid).to_value(u.ns)) < 1


# ---------------------------------------------------------------- idempotency and versions

def test_recommitting_the_same_frames_and_tracklets_adds_nothing(store):
    fill(store, "iran", range(8))
    link(store, "iran", range(8), "t1", 25544)
    before = store.summary()
    run = fill(store, "iran", range(8))          # the same night reduced again
    ids = link(store, "iran", range(8), "t1", 25544)
    after = store.summary()
    assert {k: v for k, v in after.items() if k not in ("runs", "segments")} == \
        {k: v for k, v in before.items() if k not in ("runs", "segments")}
    assert after["runs"] == before["runs"] + 1
    assert store.has_frame(synthetic.content_hash("iran", 3))
    assert len(ids) == 1 and store.end_run()["n_frames"] == 0  # the rerun committed nothing new
    assert run in list(store.runs()["run_id"])


def test_astropy_table_with_units_and_masked_magnitudes(store):
    from astropy.table import MaskedColumn

    store.begin_run("pakistan")
    rec, obs = synthetic.frame("pakistan", 4)
    n = len(obs["ra_deg"])
    table = Table({"time": schema.ns_to_time(obs["time_ns"]), "ra_deg": obs["ra_deg"] * u.deg,
                   "dec_deg": obs["dec_deg"] * u.deg, "sigma_arcsec": obs["sigma_arcsec"],
                   "kind": obs["kind"], "end": obs["end"],
                   "mag": MaskedColumn(np.arange(n, dtype=float), mask=np.arange(n) % 2 == 1)})
    assert store.commit_frame(rec, observations=table)
    got = store.observations(station="pakistan")
    assert np.array_equal(got["ra_deg"], obs["ra_deg"])
    assert np.array_equal(np.isnan(got["mag"]), np.arange(n) % 2 == 1)


def test_batched_frames_commit_as_one_unit_and_skip_known_ones(store):
    store.begin_run("iran")
    assert store.commit_frames([(*synthetic.frame("iran", i), None) for i in range(3)]) == 3
    segments = store.summary()["segments"]
    batch = [(*synthetic.frame("iran", i), None) for i in range(1, 6)]
    assert store.commit_frames(batch) == 3          # frames 1 and 2 were in
    assert store.summary()["segments"] == segments + 1
    assert store.summary()["observations"] == sum(synthetic.n_obs(i) for i in range(6))
    assert store.commit_frames(batch) == 0


def test_a_held_lock_makes_a_second_writer_wait_then_fail_clearly(tmp_path):
    from aposos.db.lock import StoreLock

    db = Store.open(tmp_path / "s", "a", lock_timeout_s=0.2)
    with StoreLock(db.root):
        with pytest.raises(AposError, match=f"locked by another writer \\(pid {os.getpid()}\\)"):
            db.begin_run("iran")
    db.begin_run("iran")  # free again


def test_newer_pipeline_version_supersedes_with_history(store):
    fill(store, "iran", range(4), pipeline_version="0.1.0")
    fill(store, "iran", [1, 2], pipeline_version="0.2.0")
    fill(store, "iran", [3], pipeline_version="0.1.5")   # an older version committed later
    s = store.summary()
    assert s["frames"] == 4 and s["frames_superseded"] == 3
    cur = store.frames()
    assert dict(zip(cur["path"], cur["pipeline_version"])) == {
        "/data/iran/frame00000.fits": "0.1.0", "/data/iran/frame00001.fits": "0.2.0",
        "/data/iran/frame00002.fits": "0.2.0", "/data/iran/frame00003.fits": "0.1.5"}
    obs = store.observations()
    assert len(obs) == sum(synthetic.n_obs(i) for i in range(4))
    hist = store.observations(history=True)
    assert len(hist) == len(obs) + synthetic.n_obs(1) + synthetic.n_obs(2) + synthetic.n_obs(3)
    assert set(hist[~hist["current"]]["pipeline_version"]) == {"0.1.0"}


def test_redone_correlation_is_current_and_the_old_one_is_history(store):
    fill(store, "iran", range(6))
    (tid,) = link(store, "iran", range(6), "t", 25544, along=3.0).values()
    store.commit_tracklets(correlations=Table({"tracklet_id": [tid], "norad_id": [25544],
                                               "status": ["identified"],
                                               "along_track_arcsec": [0.7]}))
    c = store.correlations(norad_id=25544)
    assert len(c) == 1 and c["along_track_arcsec"][0] == 0.7
    h = store.correlations(norad_id=25544, history=True)
    assert sorted(h["along_track_arcsec"]) == [0.7, 3.0] and h["current"].sum() == 1
    hist = store.object_history(25544)
    assert np.all(hist["along_track_arcsec"] == 0.7)


# ---------------------------------------------------------------- queries

def test_queries_by_object_time_station_tracklet_and_run(store):
    run = fill(store, "iran", range(10))
    ids = link(store, "iran", range(0, 5), "a", 111)
    ids.update(link(store, "iran", range(5, 10), "b", 222))
    store.end_run()
    expected_a = [i for i in range(5) if synthetic.n_obs(i)]
    a = store.observations(norad_id=111)
    assert len(a) == len(expected_a) and np.all(a["tracklet_id"] == ids["a"])
    assert np.array_equal(a["frame"], [f"/data/iran/frame{i:05d}.fits" for i in expected_a])
    assert len(store.observations(tracklet_id=ids["b"])) == len(store.observations(norad_id=222))
    assert len(store.observations(run_id=run)) == sum(synthetic.n_obs(i) for i in range(10))
    assert len(store.observations(station="peru")) == 0
    # time range: frames 2..4 exactly, bounds inclusive
    t2 = schema.ns_to_time(synthetic.T0_NS + 2 * synthetic.FRAME_CADENCE_NS)
    t4_end = schema.ns_to_time(synthetic.T0_NS + 4 * synthetic.FRAME_CADENCE_NS
                               + synthetic.EXPOSURE_NS)
    got = store.observations(start=t2, end=t4_end)
    assert len(got) == sum(synthetic.n_obs(i) for i in (2, 3, 4))
    assert np.all(np.diff(schema.time_to_ns(got["time"])) >= 0)
    assert len(store.observations(start=t2 + 1 * u.ns, end=t4_end)) == len(got) - 1
    assert len(store.frames(start=t2, end=t4_end)) == 3
    assert len(store.tracklets(norad_id=222)) == 1
    r = store.runs()
    assert r["n_frames"][0] == 10 and r["n_identified"][0] == 2 and r["status"][0] == "done"


def test_late_tracklet_membership_survives_compaction(store):
    fill(store, "iran", range(12))
    link(store, "iran", range(12), "t", 7)
    before = store.object_history(7)
    assert store.summary()["segments"] > 1
    assert store.compact() > 1
    assert store.summary()["segments"] == 1
    after = store.object_history(7)
    assert len(after) == len(before) > 0
    for col in ("tracklet_id", "ra_deg", "frame", "along_track_arcsec"):
        assert np.array_equal(after[col], before[col])
    # folded into the observations: no separate membership rows remain
    assert next(iter(store.segments.values())).nrows("tracklet_obs") == 0


def test_streak_end_times_resolved_by_linking_replace_the_stored_ones(store):
    store.begin_run("iran")
    t = Time("2026-11-21T18:00:00", scale="utc") + [0, 2] * u.s  # shutter open, close
    for i in range(2):
        rec = FrameRecord(path=f"f{i}", content_hash=f"{i:064d}", station="iran",
                          t_start=t[0] + 10 * i * u.s, t_mid=t[0] + (10 * i + 1) * u.s,
                          t_end=t[1] + 10 * i * u.s)
        # measured before linking: end 0 at open, end 1 at close, which is which unknown
        store.commit_frame(rec, observations={
            "time": t + 10 * i * u.s, "ra_deg": [10.0, 10.1], "dec_deg": [5.0, 5.0],
            "sigma_arcsec": [1.0, 1.0], "kind": ["streak_end"] * 2, "end": [0, 1]})
    # linking finds the object moved the other way: position 1 was at shutter open
    hashes = [f"{i:064d}" for i in (0, 0, 1, 1)]
    members = {"tracklet": ["s"] * 4, "content_hash": hashes, "obs_index": [0, 1, 0, 1],
               "time": t[[1, 0, 1, 0]] + [0, 0, 10, 10] * u.s, "end": [1, 0, 1, 0]}
    store.commit_tracklets(members)
    def at_open(table):
        return table[table["end"] == 0]
    for when in ("before compaction", "after compaction"):
        obs = store.observations(station="iran")
        assert np.all(at_open(obs)["ra_deg"] == 10.1), when
        dt = (at_open(obs)["time"] - (t[0] + [0, 10] * u.s)).to_value(u.ns)
        assert np.all(np.abs(dt) < 1), when
        store.compact()
    bad = dict(members, time=t[[1, 0, 1, 0]] + [0, 0, 30, 30] * u.s, tracklet=["z"] * 4)
    with pytest.raises(AposError, match="outside its frame"):
        store.commit_tracklets(bad)


def test_failed_frames_orbits_and_unseen_are_kept(store):
    store.begin_run("peru")
    store.commit_frame(FrameRecord(path="/data/bad.fits", content_hash="ab" * 32, station="peru",
                                   status="failed", reason="no plate solution: 3 stars"))
    rec, obs = synthetic.frame("peru", 1)
    store.commit_frame(rec, observations=obs,
                       unseen={"norad_id": [43000], "ra_deg": [12.0], "dec_deg": [-5.0]})
    state = np.arange(6.0).reshape(1, 6)
    store.commit_tracklets(orbits={"orbit_id": ["UCT-0001"], "epoch": Time(["2026-11-22"]),
                                   "frame": ["TEME"], "state": state,
                                   "covariance": np.eye(6)[None], "rms_arcsec": [1.2],
                                   "tle_line1": ["1 99999U"], "tle_line2": ["2 99999"]})
    s = store.summary()
    assert (s["frames_failed"], s["frames_ok"], s["orbits"], s["unseen"]) == (1, 1, 1, 1)
    f = store.frames()
    assert f[f["status"] == "failed"]["reason"][0] == "no plate solution: 3 stars"
    o = store.orbits()
    assert np.array_equal(o["state"][0], state[0]) and o["frame"][0] == "TEME"
    un = store.unseen(norad_id=43000)
    assert un["station"][0] == "peru" and abs((un["t_mid"][0] - rec.t_mid).to_value(u.ns)) < 1


def test_segments_read_by_offset_match_hdf5(store):
    from aposos.db.segment import Segment

    fill(store, "iran", range(6))
    link(store, "iran", range(6), "t", 5)
    store.compact()
    (entry,) = store.manifest["segments"]
    fast = Segment(os.path.join(store.root, "segments", entry["name"]), "x", entry)
    slow = Segment(os.path.join(store.root, "segments", entry["name"]), "x")
    for table in schema.TABLES:
        for name in fast.cols[table]:
            assert np.array_equal(fast.cols[table][name], slow.cols[table][name],
                                  equal_nan=fast.cols[table][name].dtype.kind == "f"), name
    assert np.array_equal(fast.tracklet_perm, slow.tracklet_perm)


# ---------------------------------------------------------------- merge

def test_stations_merge_without_duplicates(tmp_path):
    parts = {}
    for st, norad in (("iran", 5), ("pakistan", 5), ("peru", 9)):
        with Store.open(tmp_path / st, "a") as db:
            fill(db, st, range(6))
            link(db, st, range(6), "x", norad)
            db.end_run()
            parts[st] = db.summary()
    with Store.open(tmp_path / "centre", "a") as centre:
        for st in parts:
            centre.merge(tmp_path / st)
        s = centre.summary()
        for st in parts:                      # merging again adds nothing
            assert not any(centre.merge(tmp_path / st).values())
        assert centre.summary() == s
        for key in ("runs", "frames", "observations", "tracklets", "identified"):
            assert s[key] == sum(p[key] for p in parts.values()), key
        hist = centre.object_history(5)
        assert set(hist["station"]) == {"iran", "pakistan"}
        assert len(hist) == 2 * len([i for i in range(6) if synthetic.n_obs(i)])


# ---------------------------------------------------------------- errors and CLI

def test_not_a_store_and_future_schema_are_clear_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("hi")
    (tmp_path / "file.h5").write_bytes(b"\x89HDF\r\n")
    for path, words in ((tmp_path / "empty", "no MANIFEST"), (tmp_path / "other", "no MANIFEST"),
                        (tmp_path / "file.h5", "is a file"), (tmp_path / "nope", "no such")):
        with pytest.raises(AposError, match=words):
            Store.open(path, "r")
    with Store.open(tmp_path / "s", "a") as db:
        fill(db, "iran", range(2))
    m = json.loads((tmp_path / "s" / "MANIFEST.json").read_text())
    m["schema_version"] = schema.SCHEMA_VERSION + 1
    (tmp_path / "s" / "MANIFEST.json").write_text(json.dumps(m))
    with pytest.raises(AposError, match="newer than this aposos"):
        Store.open(tmp_path / "s", "r")


def test_bad_input_is_an_aposerror(store):
    with pytest.raises(AposError, match="begin_run"):
        store.commit_frame(*synthetic.frame("iran", 1))
    store.begin_run("iran")
    rec, obs = synthetic.frame("iran", 1)
    obs["kind"] = ["blob"] * len(obs["kind"])
    with pytest.raises(AposError, match="observations.kind"):
        store.commit_frame(rec, observations=obs)
    rec, obs = synthetic.frame("iran", 1)
    obs["sigma_arcsec"] = obs["sigma_arcsec"][:2]
    with pytest.raises(AposError, match="observations.sigma_arcsec"):
        store.commit_frame(rec, observations=obs)
    rec, obs = synthetic.frame("iran", 1)
    obs["dec_deg"] = obs["dec_deg"] + 200
    with pytest.raises(AposError, match="RA/Dec"):
        store.commit_frame(rec, observations=obs)
    with pytest.raises(AposError, match="not committed"):
        store.commit_tracklets({"tracklet": ["t"], "content_hash": ["f" * 64], "obs_index": [0]})
    ro = Store.open(store.root, "r")
    with pytest.raises(AposError, match="read-only"):
        ro.begin_run("iran")


def test_cli_summary(tmp_path, capsys):
    with Store.open(tmp_path / "s", "a") as db:
        fill(db, "iran", range(5))
    assert main(["db", "summary", str(tmp_path / "s"), "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts["frames"] == 5 and counts["observations"] == sum(
        synthetic.n_obs(i) for i in range(5))
    assert all(isinstance(v, int) for v in counts.values())
    assert main(["db", "summary", str(tmp_path / "s")]) == 0
    assert "observations" in capsys.readouterr().out
    assert main(["db", "summary", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not an aposos store" in err
    assert not os.path.exists(tmp_path / "MANIFEST.json")


def test_benchmark_script_runs(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_db.py"
    spec = importlib.util.spec_from_file_location("bench_db", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.main(["--obs", "100000", "--dir", str(tmp_path / "bench")])
    out = capsys.readouterr().out
    assert "100,000 observations" in out and "24 hours" in out and "delta segments" in out
