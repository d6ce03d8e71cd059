"""Crash safety and concurrency of the store, by fault injection.

Writers run in forked child processes and are killed with SIGKILL: at random instants (the
parent kills them) and at each named step of a commit (the child kills itself there). After
every kill the store must open, hold every commit the writer reported before it died, whole,
and show nothing half-written. Small ``max_segments`` makes compactions frequent so kills also
land inside them.
"""

import os
import random
import select
import signal
import time

import numpy as np
from astropy.table import Table

from aposos.db import Store, store as store_module, synthetic

LINK_EVERY = 4


def _writer(root, station, first, report_fd, crash_at=None, max_segments=4):
    """Commit frames first, first+1, ... (and a tracklet every LINK_EVERY frames) forever,
    writing 'F i' / 'T i' to ``report_fd`` after each commit returns."""
    if crash_at:
        store_module.CRASH_AT.clear()
        store_module.CRASH_AT.update(crash_at)
    db = Store.open(root, "a", max_segments=max_segments)
    db.begin_run(station, pipeline_version="1.0")
    i = first
    while True:
        db.commit_frame(*synthetic.frame(station, i))
        os.write(report_fd, f"F {i}\n".encode())
        if i % LINK_EVERY == LINK_EVERY - 1:
            members, kw = _tracklet(station, i)
            db.commit_tracklets(members, **kw)
            os.write(report_fd, f"T {i}\n".encode())
        i += 1


def _tracklet(station, last):
    frames = [k for k in range(last - LINK_EVERY + 1, last + 1) if synthetic.n_obs(k)]
    members = Table({"tracklet": [f"t{last}"] * len(frames),
                     "content_hash": [synthetic.content_hash(station, k) for k in frames],
                     "obs_index": [0] * len(frames)})
    corr = Table({"tracklet": [f"t{last}"], "norad_id": [last], "status": ["identified"]})
    return members, {"correlations": corr}


def _spawn(target, *args, **kw):
    """Fork a child running ``target(*args, report_fd, **kw)``; returns (pid, read fd)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        try:
            target(*args, w, **kw)
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            os._exit(3)
    os.close(w)
    return pid, r


def _reports(fd):
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    lines = b"".join(chunks).decode().split("\n")
    frames = {int(x[2:]) for x in lines if x.startswith("F ")}
    tracklets = {int(x[2:]) for x in lines if x.startswith("T ")}
    return frames, tracklets


def _check(root, station, reported_frames, reported_tracklets):
    """The store opens, holds every reported commit whole, and nothing partial."""
    with Store.open(root, "r") as db:
        frames = db.frames()
        obs = db.observations()
        present = {int(p[-10:-5]) for p in frames["path"]}
        assert reported_frames <= present
        assert len(frames) == len(present)  # no duplicate frame
        s = db.summary()
        assert s["observations"] == sum(synthetic.n_obs(i) for i in present) == len(obs)
        for i in random.sample(sorted(present), min(5, len(present))):
            rec, exp = synthetic.frame(station, i)
            got = obs[obs["content_hash"] == rec.content_hash]
            assert np.array_equal(got["ra_deg"], exp["ra_deg"])
        trk = db.tracklets()
        labels = {int(x[1:]) for x in trk["label"]}
        assert reported_tracklets <= labels
        for last in labels:  # each tracklet whole: its members and its correlation
            expect = len([k for k in range(last - LINK_EVERY + 1, last + 1) if synthetic.n_obs(k)])
            assert len(db.object_history(last)) == expect
        assert s["correlations"] == len(labels)
    return present


#: Random kills per run (APOSOS_DB_KILLS=500 for a soak test).
N_KILLS = int(os.environ.get("APOSOS_DB_KILLS", "30"))


def test_sigkill_at_random_instants_never_loses_or_tears_a_commit(tmp_path):
    root = str(tmp_path / "store")
    rng = random.Random(7)
    kills, committed_total, linked_total, nxt = 0, set(), set(), 0
    for _ in range(N_KILLS):
        pid, fd = _spawn(_writer, root, "iran", nxt)
        select.select([fd], [], [], 30)  # the writer is at work: it reported a commit
        time.sleep(rng.uniform(0.0, 0.4))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status)
        kills += 1
        frames, tracklets = _reports(fd)
        committed_total |= frames
        linked_total |= tracklets
        present = _check(root, "iran", committed_total, linked_total)
        nxt = max(present, default=-1) + 1 - rng.randint(0, 2)  # also redo the last frames
    assert kills == N_KILLS and len(committed_total) >= N_KILLS and len(linked_total) >= 4


def test_sigkill_at_every_step_of_a_commit(tmp_path):
    points = ["locked", "segment_written", "segment_renamed", "manifest_written",
              "manifest_published", "compacting"]
    root = str(tmp_path / "store")
    reported, linked, nxt = set(), set(), 0
    leftovers, unlisted = [], []
    for point in points:
        for passes in (0, 5):  # the first time and a later time the writer gets there
            pid, fd = _spawn(_writer, root, "peru", nxt, crash_at={point: passes})
            _, status = os.waitpid(pid, 0)
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
            frames, tracklets = _reports(fd)
            reported |= frames
            linked |= tracklets
            present = _check(root, "peru", reported, linked)
            nxt = max(present, default=-1) + 1
            files = set(os.listdir(os.path.join(root, "segments")))
            listed = {e["name"] for e in Store.open(root, "r").manifest["segments"]}
            if point == "segment_written":  # a complete segment not yet renamed: invisible
                leftovers += [n for n in files if n.startswith(".tmp")]
            if point == "segment_renamed":  # renamed but not in the manifest: invisible
                unlisted += [n for n in files - listed if not n.startswith(".tmp")]
    with Store.open(root, "a") as db:  # a writer cleans what killed writers left
        db.begin_run("peru")
        assert not [n for n in os.listdir(os.path.join(root, "segments"))
                    if n.startswith(".tmp")]
        listed = {e["name"] for e in db.manifest["segments"]}
        assert set(os.listdir(os.path.join(root, "segments"))) == listed
    assert len(leftovers) == len(unlisted) == 2  # the kills did leave files behind


def _finite_writer(root, station, n, report_fd):
    db = Store.open(root, "a", max_segments=6)
    db.begin_run(station)
    for i in range(n):
        db.commit_frame(*synthetic.frame(station, i))
        if i % LINK_EVERY == LINK_EVERY - 1:
            members, kw = _tracklet(station, i)
            db.commit_tracklets(members, **kw)
    db.end_run()
    os._exit(0)


def test_concurrent_writers_are_serialised(tmp_path):
    root = str(tmp_path / "store")
    Store.open(root, "a").close()
    stations = ["iran", "pakistan", "peru"]
    children = [_spawn(_finite_writer, root, st, 12) for st in stations]
    seen, reads = 0, 0
    while seen < 12 * len(stations) and reads < 300:
        with Store.open(root, "r") as db:  # a reader while writers commit and compact
            n = db.summary()["frames"]
            assert n >= seen and len(db.observations()) == db.summary()["observations"]
            seen, reads = n, reads + 1
    assert reads > 1
    for pid, fd in children:
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        _reports(fd)
    with Store.open(root, "r") as db:
        s = db.summary()
        assert s["frames"] == 12 * len(stations)
        assert s["observations"] == len(stations) * sum(synthetic.n_obs(i) for i in range(12))
        assert s["tracklets"] == s["correlations"] == 3 * len(stations)
        assert s["runs"] == len(stations)
        for st in stations:
            assert len(db.observations(station=st)) == sum(synthetic.n_obs(i) for i in range(12))
        seqs = db.frames()["commit_seq"]
        assert len(np.unique(seqs)) == len(seqs)  # every commit had its own turn
