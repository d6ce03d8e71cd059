"""The aposos observation store: a directory of immutable HDF5 segments and a manifest.

Layout of a store ``STORE/``::

    MANIFEST.json        the list of published segments, schema version, next commit number
    LOCK                 writer lock (fcntl.flock), see aposos.db.lock
    segments/*.h5        immutable segment files (aposos.db.segment), one per commit or
                         per compaction

Crash safety
------------
HDF5 files changed in place are not crash safe (a kill during a metadata flush can leave a
file that no longer opens), so nothing is ever changed in place. A commit, under the writer
lock: writes a new segment to ``segments/.tmp-*``, fsyncs it, renames it to its final name,
fsyncs the directory, then writes the new manifest to a temporary file, fsyncs it, renames it
over ``MANIFEST.json`` (atomic on POSIX) and fsyncs the directory. The commit exists exactly
when the new manifest is in place: a kill at any earlier instant leaves the old manifest,
which names only complete segments; the leftovers (temporary or unlisted files) are invisible
and deleted by the next writer. Readers take no lock: they read the manifest (always whole)
and open the segments it lists. Compaction publishes its merged segment the same way and only
then deletes the segments it replaced (a reader that raced it re-reads the manifest).

Write API (one writer per process; several processes are serialised by the lock)::

    with Store.open(path, "a") as db:
        run = db.begin_run("iran", config_hash=...)
        db.commit_frame(FrameRecord(...), observations=table)   # durable on return
        db.commit_frames([(record, observations, unseen), ...])  # several in one unit
        db.commit_tracklets(members, correlations=..., orbits=..., unseen=...)
        db.end_run()

Scale and partitioning
----------------------
The manifest keeps, for every segment, the byte offset of each column (a table of contents
written with the segment), so a reader opens a segment without any HDF5 call: a small segment
is read in one go, a large one is memory-mapped column by column (page-granular random
access, only the columns a query touches are read). The files stay ordinary HDF5 (h5py reads
them; a test checks both paths agree). Compression was weighed and left out: every random
lookup would decompress whole chunks, and the float columns compress poorly.

Per-frame commits make small segments; past ``max_segments`` the writer compacts the small
ones (< 1 M observations) into one, so a store is a few large segments plus a bounded tail of
recent ones. History is kept through compaction (superseded rows are rewritten, not dropped).
At 10 M observations (1 M tracklets, one year, three stations) a store is 1.2 GB (66 bytes per
observation + 16 of tracklet index + tracklets and correlations); an object's history takes
tens of ms, a night of 27 000 observations about 0.1-0.4 s (benchmarks/bench_db.py).

Beyond one store (plan, not built): one store per calendar month
(``archive/2026-11/``, the three stations merged into it with :meth:`Store.merge`), each
self-contained with its own manifest, plus a small top-level ``catalogue.json`` rebuilt after
each night listing each month's time span, stations, observation count and the set of NORAD
ids it holds. A time query opens only the months it overlaps; an object query opens only the
months whose id set names the object. A month of three stations is ~1 M observations, well
inside one store's comfortable range, and a month closed for writing is compacted to one
segment. Limits today: compaction and merge hold the rows of the segments involved in memory
(about 0.2 kB per observation at peak); the lock is ``flock``, reliable on a local disk, not
across hosts on NFS (stations send their stores and the data centre merges them).
"""

from __future__ import annotations

import json
import os
import socket
import uuid

import numpy as np

from . import schema, segment
from .lock import StoreLock
from .rows import FrameRecord, check_observations, colnames, content_hash, nrows, rows_from
from .units import compacted_rows, correlation_rows, merge_rows, tracklet_rows
from .view import View
from ..errors import AposError

__all__ = ["Store", "FrameRecord", "content_hash", "read_manifest", "write_manifest"]

MANIFEST = "MANIFEST.json"
SEGMENTS = "segments"

#: Test hook for fault injection: {crash point name: remaining passes before SIGKILL}.
CRASH_AT: dict[str, int] = {}


def _crash_point(name: str) -> None:
    """Kill this process (SIGKILL) when a fault-injection test armed ``name``."""
    if name in CRASH_AT:
        CRASH_AT[name] -= 1
        if CRASH_AT[name] < 0:
            import signal

            os.kill(os.getpid(), signal.SIGKILL)

# --------------------------------------------------------------------------- store

class Store:
    """An aposos observation store (see the module docstring for layout and guarantees).

    Open with :meth:`Store.open`. Reading methods see the store as of the last
    :meth:`refresh` (done on open and by every commit); queries live in
    :mod:`aposos.db.query` and are also methods here.
    """

    def __init__(self, root: str, mode: str, lock_timeout_s, max_segments: int):
        self.root = root
        self.mode = mode
        self.lock_timeout_s = lock_timeout_s
        self.max_segments = max_segments
        self.manifest: dict = {}
        self.segments: dict[str, segment.Segment] = {}
        self._view = None
        self.run_id: str | None = None
        self.pipeline_version: str | None = None
        self.refresh()

    # ---------------------------------------------------------------- opening

    @classmethod
    def open(cls, path, mode: str = "r", *, lock_timeout_s: float | None = 60.0,
             max_segments: int = 48) -> "Store":
        """Open the store at directory ``path``.

        ``mode`` 'r' reads an existing store; 'a' reads and writes, creating the store if
        ``path`` does not exist (or is an empty directory). A path that is not a store, or a
        store of a newer schema version, raises AposError.
        """
        root = os.path.abspath(os.fspath(path))
        if mode not in ("r", "a"):
            raise AposError(f"unknown store mode {mode!r} (use 'r' or 'a')")
        if mode == "a" and _is_new(root):
            _create(root)
        return cls(root, mode, lock_timeout_s, max_segments)

    def close(self) -> None:
        self.segments = {}
        self._view = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        return f"<aposos Store {self.root!r} {len(self.segments)} segments>"

    @property
    def generation(self) -> int:
        return int(self.manifest.get("generation", 0))

    def refresh(self) -> None:
        """Re-read the manifest and open any new segments (cheap when nothing changed)."""
        for _ in range(20):
            manifest = read_manifest(self.root)
            if manifest.get("generation") == self.manifest.get("generation") and self.segments:
                return
            try:
                segs = {}
                for entry in manifest["segments"]:
                    name = entry["name"]
                    seg = self.segments.get(name)
                    if seg is None:
                        path = os.path.join(self.root, SEGMENTS, name)
                        size = os.path.getsize(path)
                        if size != entry["size"]:
                            raise AposError(f"segment has {size} bytes, manifest says "
                                            f"{entry['size']}: the store was damaged", path=path)
                        seg = segment.Segment(path, name, entry)
                    segs[name] = seg
            except FileNotFoundError:
                continue  # a compaction replaced a segment meanwhile: read the manifest again
            self.manifest, self.segments, self._view = manifest, segs, None
            return
        raise AposError("store keeps changing under the reader; try again", path=self.root)

    @property
    def view(self) -> View:
        """The in-memory view of the small tables, rebuilt when the store changed."""
        if self._view is None:
            self._view = View(list(self.segments.values()))
        return self._view

    # ---------------------------------------------------------------- commit machinery

    def _writable(self):
        if self.mode != "a":
            raise AposError("store opened read-only (mode 'r')", path=self.root)

    def _publish(self, build) -> bool:
        """Under the lock: refresh, ``build(self)`` the rows, write and publish one segment.

        ``build`` returns ``(tables, n_seq)`` where rows carry commit_seq relative to this
        commit (0..n_seq-1), or None for nothing to do. Returns True if a segment was published.
        """
        self._writable()
        with StoreLock(self.root, self.lock_timeout_s):
            _crash_point("locked")
            self.refresh()
            self._collect_garbage()
            built = build(self)
            if built is None:
                return False
            tables, n_seq = built
            seq0 = int(self.manifest["next_seq"])
            for rows in tables.values():
                if "commit_seq" in (rows.dtype.names or ()):
                    rows["commit_seq"] += seq0
            self._write_segment(segment.arrange(tables), remove=(), seq=(seq0, seq0 + n_seq))
            if self.max_segments and len(self.segments) > self.max_segments:
                self._compact_locked(small_only=True)
        return True

    def _write_segment(self, tables, remove, seq) -> None:
        """Write a segment, publish a manifest that adds it and drops ``remove``."""
        segdir = os.path.join(self.root, SEGMENTS)
        name = f"{seq[0]:012d}-{uuid.uuid4().hex[:8]}.h5"
        tmp = os.path.join(segdir, ".tmp-" + name)
        toc = segment.write(tmp, tables, {"seq_first": seq[0], "seq_end": seq[1]})
        _crash_point("segment_written")
        os.rename(tmp, os.path.join(segdir, name))
        segment.fsync_path(segdir)
        _crash_point("segment_renamed")
        m = dict(self.manifest)
        entry = {"name": name, "size": os.path.getsize(os.path.join(segdir, name)),
                 "rows": {t: int(len(r)) for t, r in tables.items() if len(r)}, "toc": toc}
        m["segments"] = [e for e in m["segments"] if e["name"] not in remove] + [entry]
        m["next_seq"] = max(int(m["next_seq"]), seq[1])
        m["generation"] = int(m["generation"]) + 1
        write_manifest(self.root, m)
        _crash_point("manifest_published")
        for old in remove:
            try:
                os.remove(os.path.join(segdir, old))
            except FileNotFoundError:
                pass
        self.refresh()

    def _collect_garbage(self) -> None:
        """Delete files a killed writer left behind (call with the lock held)."""
        listed = {e["name"] for e in self.manifest["segments"]}
        segdir = os.path.join(self.root, SEGMENTS)
        for name in os.listdir(segdir):
            if name not in listed:
                os.remove(os.path.join(segdir, name))
        for name in os.listdir(self.root):
            if name.startswith(".MANIFEST"):
                os.remove(os.path.join(self.root, name))

    # ---------------------------------------------------------------- runs

    def begin_run(self, station: str, *, pipeline_version: str | None = None,
                  software_version: str | None = None, config_hash: str = "",
                  host: str | None = None, start=None) -> str:
        """Record the start of a run and make it the run of later commits; returns run_id."""
        from astropy.time import Time

        from .. import __version__

        run_id = uuid.uuid4().hex
        self.pipeline_version = pipeline_version or __version__
        row = rows_from("runs", None, 1, run_id=run_id, station=station,
                        pipeline_version=self.pipeline_version,
                        software_version=software_version or __version__,
                        config_hash=config_hash, host=host or socket.gethostname()[:64],
                        start_ns=start if start is not None else Time.now(),
                        status="running", commit_seq=0)
        self._publish(lambda db: ({"runs": row}, 1))
        self.run_id = run_id
        return run_id

    def end_run(self, status: str = "done", end=None) -> dict:
        """Record the end of the current run with its counts (computed from the store)."""
        from astropy.time import Time

        run_id = self._need_run()
        counts = {}

        def build(db):
            row = db.view.current("runs")
            row = row[row["run_id"] == run_id.encode()].copy()
            counts.update(db.view.run_counts(run_id))
            for k, v in counts.items():
                row[k] = v
            row["status"] = schema.encode_enum([status], schema.RUN_STATUS, "runs.status")
            row["end_ns"] = schema.as_ns(end if end is not None else Time.now(), "end")
            row["commit_seq"] = 0
            return {"runs": row}, 1

        self._publish(build)
        return counts

    def _need_run(self) -> str:
        if self.run_id is None:
            raise AposError("no run: call begin_run() before committing results", path=self.root)
        return self.run_id

    # ---------------------------------------------------------------- frames

    def has_frame(self, content_hash: str, pipeline_version: str | None = None) -> bool:
        """Whether results of this file (for this pipeline version) are committed."""
        self.refresh()
        pv = pipeline_version or self.pipeline_version
        if pv is None:
            return bool(np.any(self.view.col("frames", "content_hash") == content_hash.encode()))
        return self.view.frame_index(schema.frame_uid(content_hash, pv)) >= 0

    def commit_frame(self, frame: FrameRecord, observations=None, *, unseen=None) -> bool:
        """Commit one frame's results atomically; returns False if they were already in.

        ``observations`` follows the observation table contract (``time`` UTC Time,
        ``ra_deg``, ``dec_deg``, ``sigma_arcsec``, ``kind``, ``end``, ``x``, ``y``, ``mag``,
        ``source_index``; optional ``tracklet_id``); row i is stored as ``obs_index`` i.
        ``unseen``: objects predicted in this frame but not detected (``norad_id``,
        ``ra_deg``, ``dec_deg``, optional ``mag_pred``, ``tle_epoch``, ``reason``).
        """
        return self.commit_frames([(frame, observations, unseen)]) == 1

    def commit_frames(self, results) -> int:
        """Commit several frames' results as one unit (one segment, one manifest update:
        cheaper than one commit per frame); ``results`` = [(FrameRecord, observations,
        unseen)] (observations / unseen may be None). Frames already in are skipped.
        Returns the number of frames added."""
        run_id = self._need_run()
        units = [self._frame_rows(*r, run_id=run_id) for r in results]
        added = [0]

        def build(db):
            new = []
            for uid, f, obs, un in units:
                i = db.view.frame_index(uid)
                if i < 0:
                    new.append((f, obs, un))
                    continue
                old = db.view.table("frames", [i])[0]
                if (old["content_hash"], old["pipeline_version"]) != \
                        (f["content_hash"][0], f["pipeline_version"][0]):
                    raise AposError("frame key collision (two files share a 64-bit uid)",
                                    path=f["path"][0].decode())
            if len({int(f["frame_uid"][0]) for f, _, _ in new}) != len(new):
                raise AposError("the same frame twice in one commit", path=db.root)
            added[0] = len(new)
            if not new:
                return None
            return {"frames": np.concatenate([f for f, _, _ in new]),
                    "observations": np.concatenate([o for _, o, _ in new]),
                    "unseen": np.concatenate([u for _, _, u in new])}, 1

        self._publish(build)
        return added[0]

    def _frame_rows(self, frame: FrameRecord, observations=None, unseen=None, *, run_id):
        """(frame_uid, frames row, observation rows, unseen rows) of one frame's results."""
        pv = self.pipeline_version
        uid = schema.frame_uid(frame.content_hash, pv)
        f = rows_from("frames", {k: [getattr(frame, k)] for k in (
            "path", "content_hash", "station", "exposure_s", "status", "reason", "n_stars",
            "astrometric_rms_arcsec", "tracking", "pointing_offset_deg", "rotation_deg",
            "scale_arcsec_px")}, 1, frame_uid=uid, pipeline_version=pv, run_id=run_id,
            commit_seq=0)
        for name in ("t_start", "t_mid", "t_end"):
            t = getattr(frame, name)
            if t is not None:
                f[name + "_ns"] = schema.as_ns(t, name)
        nobs = nrows(observations)
        obs = rows_from("observations", observations, nobs, frame_uid=uid,
                        obs_index=np.arange(nobs, dtype=np.int32))
        if nobs:
            if "tracklet_id" not in colnames(observations):
                obs["tracklet_id"] = 0
            if "end" not in colnames(observations):
                obs["end"] = -1
            check_observations(obs, frame.path)
            if frame.status != "ok":
                raise AposError("a failed frame cannot carry observations", path=frame.path)
        un = rows_from("unseen", unseen, nrows(unseen), run_id=run_id, frame_uid=uid,
                       commit_seq=0)
        return uid, f, obs, un

    # ---------------------------------------------------------------- tracklets

    def commit_tracklets(self, members=None, *, correlations=None, orbits=None,
                         unseen=None) -> dict[str, int]:
        """Commit the linking, correlation and orbit results of the run in one unit.

        ``members``: one row per observation in a tracklet: ``tracklet`` (label, <= 32
        bytes), ``content_hash`` (of the frame) and ``obs_index`` (row of that frame's
        observations), all of frames committed by this pipeline version; optionally ``time``
        (Time) and ``end``, the values linking resolved (streak ends), which then replace
        the observation's (within its frame's exposure, +-1 s).
        ``correlations``: ``tracklet`` (label) or ``tracklet_id``, ``norad_id``, ``status``,
        ``rank``, ``along_track_arcsec``, ``cross_track_arcsec``, ``tle_epoch`` (Time),
        ``score``, ``orbit_id``. ``orbits``: ``orbit_id``, ``epoch`` (Time), ``frame``,
        ``state`` (n x 6, km and km/s), ``covariance`` (n x 6 x 6), ``tle_line1``,
        ``tle_line2``, ``rms_arcsec``, ``n_obs``, ``n_tracklets``. ``unseen`` as in
        :meth:`commit_frame` plus ``content_hash`` of the frame.

        Idempotent: tracklets already stored, and correlations / orbits identical to the
        current ones, are skipped. Returns {label: tracklet_id}.
        """
        run_id = self._need_run()
        pv = self.pipeline_version
        ids: dict[str, int] = {}

        def build(db):
            view = db.view
            tables = {}
            if nrows(members):
                tables.update(tracklet_rows(view, members, pv, run_id, ids))
            if nrows(correlations):
                c = correlation_rows(correlations, ids, run_id)
                tables["correlations"] = view.new_correlations(c)
            if nrows(orbits):
                tables["orbits"] = view.new_orbits(rows_from("orbits", orbits, run_id=run_id,
                                                             commit_seq=0))
            if nrows(unseen):
                uids = [schema.frame_uid(h, pv) for h in np.asarray(unseen["content_hash"]).astype(str)]
                u = rows_from("unseen", unseen, nrows(unseen), run_id=run_id, frame_uid=uids,
                              commit_seq=0)
                tables["unseen"] = view.new_unseen(u)
            tables = {k: v for k, v in tables.items() if len(v)}
            return (tables, 1) if tables else None

        self._publish(build)
        return ids

    # ---------------------------------------------------------------- bulk, merge, compaction

    def commit_arrays(self, tables: dict[str, np.ndarray]) -> bool:
        """Commit ready-made schema rows (bulk loaders, tests) as one unit, as they are.

        ``commit_seq`` values are taken as relative to this commit (0, 1, ... keep their
        order). No de-duplication beyond refusing frames already stored.
        """
        tables = {k: np.asarray(v) for k, v in tables.items()}

        def build(db):
            f = tables.get("frames")
            if f is not None and np.any(db.view.frame_index(f["frame_uid"]) >= 0):
                raise AposError("commit_arrays: some frames are already stored", path=db.root)
            n = 1 + max([int(r["commit_seq"].max()) for r in tables.values()
                         if len(r) and "commit_seq" in r.dtype.names] + [0])
            return {k: v.copy() for k, v in tables.items()}, n

        return self._publish(build)

    def merge(self, other) -> dict[str, int]:
        """Add another store's rows (e.g. another station's) without duplicates or conflicts.

        Frames already present (same content hash and pipeline version) are skipped with their
        observations; tracklets by id; correlations, orbits, runs and unseen rows identical to
        stored ones are skipped. The merged rows keep their relative commit order. Returns
        the number of rows added per table.
        """
        src = other if isinstance(other, Store) else Store.open(other, "r")
        src.refresh()
        added: dict[str, int] = {}

        def build(db):
            tables = merge_rows(db.view, src)
            added.update({k: int(len(v)) for k, v in tables.items()})
            if not any(added.values()):
                return None
            seqs = np.unique(np.concatenate([v["commit_seq"] for v in tables.values()
                                             if "commit_seq" in v.dtype.names and len(v)]
                                            or [np.zeros(0, "i8")]))
            for v in tables.values():
                if "commit_seq" in v.dtype.names and len(v):
                    v["commit_seq"] = np.searchsorted(seqs, v["commit_seq"])
            return tables, max(len(seqs), 1)

        self._publish(build)
        return added

    def compact(self, small_only: bool = False) -> int:
        """Merge segments into one (all, or only the small ones); returns segments replaced.

        History is kept; tracklet memberships committed after their observations are folded
        into ``observations.tracklet_id``.
        """
        self._writable()
        with StoreLock(self.root, self.lock_timeout_s):
            self.refresh()
            self._collect_garbage()
            return self._compact_locked(small_only)

    def _compact_locked(self, small_only: bool) -> int:
        entries = self.manifest["segments"]
        if small_only:
            entries = [e for e in entries if e["rows"].get("observations", 0) < 1_000_000]
        if len(entries) < 2:
            return 0
        segs = [self.segments[e["name"]] for e in entries]
        tables = compacted_rows(segs)
        _crash_point("compacting")
        self._write_segment(segment.arrange(tables), remove=[e["name"] for e in entries],
                            seq=(int(self.manifest["next_seq"]), int(self.manifest["next_seq"])))
        return len(segs)

    # ---------------------------------------------------------------- queries

    def summary(self) -> dict[str, int]:
        """Counts of every table (current rows, plus history totals), as a flat dict of ints."""
        return self.view.summary(len(self.segments))

    def observations(self, **filters):
        """Observations by object, time range, station, tracklet, run (query.observations)."""
        from . import query
        return query.observations(self, **filters)

    def object_history(self, norad_id, **kw):
        """An object's observations across stations with its correlations."""
        from . import query
        return query.object_history(self, norad_id, **kw)

    def frames(self, **filters):
        from . import query
        return query.frames(self, **filters)

    def tracklets(self, **filters):
        from . import query
        return query.tracklets(self, **filters)

    def correlations(self, **filters):
        from . import query
        return query.correlations(self, **filters)

    def runs(self, **kw):
        from . import query
        return query.runs(self, **kw)

    def orbits(self, **kw):
        from . import query
        return query.orbits(self, **kw)

    def unseen(self, **filters):
        from . import query
        return query.unseen(self, **filters)


# --------------------------------------------------------------------------- manifest

def _is_new(root: str) -> bool:
    """Whether ``root`` is absent or an empty directory (or one a concurrent creator has only
    begun: nothing but the lock file and an empty segments folder)."""
    if not os.path.exists(root):
        return True
    if not os.path.isdir(root) or os.path.exists(os.path.join(root, MANIFEST)):
        return False
    segdir = os.path.join(root, SEGMENTS)
    return set(os.listdir(root)) <= {"LOCK", SEGMENTS} and (
        not os.path.isdir(segdir) or not os.listdir(segdir))


def _create(root: str) -> None:
    os.makedirs(os.path.join(root, SEGMENTS), exist_ok=True)
    with StoreLock(root):
        if not os.path.exists(os.path.join(root, MANIFEST)):
            write_manifest(root, {"format": schema.FORMAT_NAME,
                                  "schema_version": schema.SCHEMA_VERSION,
                                  "generation": 0, "next_seq": 0, "segments": []})


def read_manifest(root: str) -> dict:
    """The manifest of the store at ``root``; AposError if it is not a (readable) store."""
    if os.path.isfile(root):
        raise AposError("is a file, not an aposos store (a store is a directory with "
                        f"{MANIFEST})", path=root)
    if not os.path.isdir(root):
        raise AposError("no such store", path=root)
    path = os.path.join(root, MANIFEST)
    try:
        with open(path) as f:
            m = json.load(f)
    except FileNotFoundError:
        raise AposError(f"not an aposos store (no {MANIFEST})", path=root) from None
    except (OSError, ValueError) as exc:
        raise AposError(f"unreadable store manifest ({exc})", path=path) from exc
    if not isinstance(m, dict) or m.get("format") != schema.FORMAT_NAME:
        raise AposError("not an aposos store manifest", path=path)
    version = m.get("schema_version")
    if not isinstance(version, int) or version > schema.SCHEMA_VERSION:
        raise AposError(f"store has schema version {version}, newer than this aposos "
                        f"understands ({schema.SCHEMA_VERSION}); upgrade aposos", path=path)
    return m


def write_manifest(root: str, manifest: dict) -> None:
    """Publish ``manifest`` atomically (temp file, fsync, rename, fsync directory)."""
    tmp = os.path.join(root, f".MANIFEST.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(json.dumps(manifest, separators=(",", ":")))  # dumps: the C encoder (dump's is Python)
        f.flush()
        os.fsync(f.fileno())
    _crash_point("manifest_written")
    os.replace(tmp, os.path.join(root, MANIFEST))
    segment.fsync_path(root)
