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
        db.commit_tracklets(members, correlations=..., orbits=..., unseen=...)
        db.end_run()

Scale and partitioning
----------------------
One store holds the observations of every segment; a reader maps large columns from the files
(no decompression, page-granular random access) and keeps the small tables (frames, tracklets,
correlations, ...) in memory. Per-frame commits make small segments; when there are more than
``max_segments`` of them the writer compacts the small ones into one (history is kept:
superseded rows are rewritten, never dropped). At 10 million observations a store is about
0.8 GB on disk (66 bytes per observation plus a 16-byte index) and answers a query by object or
by night in milliseconds (benchmarks/bench_db.py). Beyond one store (plan): one store per
station and calendar month (``archive/2026-11/iran/``), each a self-contained directory with
its own manifest, plus a small top-level catalogue (a JSON file per month listing each
store's time span, stations and the NORAD ids it contains, rebuilt after each night). A time
query opens only the months it spans; an object query reads the catalogue to open only the
stores that saw the object. Merging the stations of a month into one store is ``merge``.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from dataclasses import dataclass

import numpy as np

from . import schema, segment
from .lock import StoreLock
from .schema import NO_TIME
from ..errors import AposError

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


def content_hash(path) -> str:
    """sha256 hex digest of a file's bytes (the frame key that survives renames and copies)."""
    import hashlib

    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError as exc:
        raise AposError(f"cannot read file to hash it ({exc.strerror})", path=path) from exc
    return h.hexdigest()


@dataclass(frozen=True)
class FrameRecord:
    """What the store keeps about one reduced (or failed) frame.

    ``t_start``/``t_mid``/``t_end`` are astropy Times (UTC) or None when unknown (a frame that
    failed before its header was read). ``status`` is 'ok' or 'failed' (then ``reason`` says
    why). ``n_stars`` and ``astrometric_rms_arcsec`` describe the plate solution.
    """

    path: str
    content_hash: str
    station: str
    t_start: object = None
    t_mid: object = None
    t_end: object = None
    exposure_s: float = float("nan")
    status: str = "ok"
    reason: str = ""
    n_stars: int = -1
    astrometric_rms_arcsec: float = float("nan")

    @classmethod
    def from_meta(cls, meta, content_hash: str, **kw) -> "FrameRecord":
        """Record of a :class:`aposos.model.FrameMeta` (``station`` may be overridden in kw)."""
        kw.setdefault("station", meta.station or "")
        return cls(path=meta.path, content_hash=content_hash, t_start=meta.t_start,
                   t_mid=meta.t_mid, t_end=meta.t_end, exposure_s=meta.exposure_s, **kw)


# --------------------------------------------------------------------------- row building

_ENUMS = {("observations", "kind"): schema.OBS_KIND, ("frames", "status"): schema.FRAME_STATUS,
          ("correlations", "status"): schema.CORR_STATUS, ("runs", "status"): schema.RUN_STATUS}
_TRUNCATE = {("frames", "reason"), ("unseen", "reason"), ("frames", "path")}


def _colnames(data) -> list[str]:
    if data is None:
        return []
    if hasattr(data, "colnames"):
        return list(data.colnames)
    if isinstance(data, np.ndarray) and data.dtype.names:
        return list(data.dtype.names)
    return list(data.keys())


def _nrows(data) -> int:
    """Rows of a Table / dict of columns / structured array (0 for None)."""
    names = _colnames(data)
    return len(data[names[0]]) if names else 0


def rows_from(table: str, data, n: int | None = None, **fixed) -> np.ndarray:
    """Rows of ``table`` from an astropy Table / dict of columns / structured array.

    Columns are matched by schema name; a ``*_ns`` column also accepts an astropy Time under
    the name without ``_ns`` (``time``, ``t_start``, ``tle_epoch``...). ``fixed`` gives values
    for every row. Missing columns get neutral values (NaN, '', 0, no time). Strings and enums
    are validated (AposError names the column).
    """
    names = _colnames(data)
    if n is None:
        n = _nrows(data) if names else 1
    for name in names:
        if np.ndim(data[name]) == 0 or len(data[name]) != n:
            raise AposError(f"column has {np.size(data[name])} rows, expected {n}",
                            key=f"{table}.{name}")
    rows = schema.empty(table, n)
    for name, _ in schema.TABLES[table]:
        if name in fixed:
            src = fixed[name]
        elif name in names:
            src = data[name]
        elif name.endswith("_ns") and name[:-3] in names:
            src = data[name[:-3]]
        else:
            continue
        if src is None:
            continue
        where = f"{table}.{name}"
        kind = rows.dtype[name].base.kind
        if (table, name) in _ENUMS:
            rows[name] = schema.encode_enum(src, _ENUMS[(table, name)], where)
        elif kind == "S":
            rows[name] = schema.encode_str(src, rows.dtype[name].itemsize, where,
                                           truncate=(table, name) in _TRUNCATE)
        elif name.endswith("_ns"):
            rows[name] = schema.as_ns(src, where)
        else:
            try:
                rows[name] = np.asarray(getattr(src, "value", src), dtype=rows.dtype[name].base)
            except (TypeError, ValueError) as exc:
                raise AposError(f"cannot store as {rows.dtype[name]}: {exc}", key=where) from exc
    return rows


def _check_observations(obs: np.ndarray, where: str) -> None:
    bad = ~(np.isfinite(obs["ra_deg"]) & np.isfinite(obs["dec_deg"])
            & (obs["dec_deg"] >= -90) & (obs["dec_deg"] <= 90) & (obs["time_ns"] != NO_TIME))
    if bad.any():
        raise AposError(f"observation {int(np.argmax(bad))} has no valid time or RA/Dec",
                        path=where, key="observations")


def _row_bytes(rows: np.ndarray, ignore=("commit_seq",)) -> list[bytes]:
    """Each row's bytes without the ``ignore`` fields (identity of content; NaN equals NaN)."""
    from numpy.lib.recfunctions import repack_fields

    keep = [n for n in rows.dtype.names if n not in ignore]
    packed = repack_fields(rows[keep])
    return [packed[i].tobytes() for i in range(len(packed))]


def _same_rows(a: np.ndarray, b: np.ndarray) -> bool:
    """Rows equal as multisets, ignoring commit_seq and run_id."""
    ignore = ("commit_seq", "run_id")
    return len(a) == len(b) and sorted(_row_bytes(a, ignore)) == sorted(_row_bytes(b, ignore))


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
        if mode == "a" and (not os.path.exists(root)
                            or (os.path.isdir(root) and not os.listdir(root))):
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
                        seg = segment.Segment(path, name)
                    segs[name] = seg
            except FileNotFoundError:
                continue  # a compaction replaced a segment meanwhile: read the manifest again
            self.manifest, self.segments, self._view = manifest, segs, None
            return
        raise AposError("store keeps changing under the reader; try again", path=self.root)

    @property
    def view(self) -> "_View":
        """The in-memory view of the small tables, rebuilt when the store changed."""
        if self._view is None:
            self._view = _View(list(self.segments.values()))
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
        segment.write(tmp, tables, {"seq_first": seq[0], "seq_end": seq[1]})
        _crash_point("segment_written")
        os.rename(tmp, os.path.join(segdir, name))
        segment.fsync_path(segdir)
        _crash_point("segment_renamed")
        m = dict(self.manifest)
        entry = {"name": name, "size": os.path.getsize(os.path.join(segdir, name)),
                 "rows": {t: int(len(r)) for t, r in tables.items() if len(r)}}
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
        run_id = self._need_run()
        pv = self.pipeline_version
        uid = schema.frame_uid(frame.content_hash, pv)
        f = rows_from("frames", {k: [getattr(frame, k)] for k in (
            "path", "content_hash", "station", "exposure_s", "status", "reason", "n_stars",
            "astrometric_rms_arcsec")}, 1, frame_uid=uid, pipeline_version=pv, run_id=run_id,
            commit_seq=0)
        for name in ("t_start", "t_mid", "t_end"):
            t = getattr(frame, name)
            if t is not None:
                f[name + "_ns"] = schema.as_ns(t, name)
        nobs = _nrows(observations)
        obs = rows_from("observations", observations, nobs, frame_uid=uid,
                        obs_index=np.arange(nobs, dtype=np.int32)) if nobs else None
        if obs is not None:
            if "tracklet_id" not in _colnames(observations):
                obs["tracklet_id"] = 0
            if "end" not in _colnames(observations):
                obs["end"] = -1
            _check_observations(obs, frame.path)
            if frame.status != "ok":
                raise AposError("a failed frame cannot carry observations", path=frame.path)
        un = None
        if _nrows(unseen):
            un = rows_from("unseen", unseen, _nrows(unseen), run_id=run_id, frame_uid=uid,
                           commit_seq=0)

        def build(db):
            i = db.view.frame_index(uid)
            if i >= 0:
                old = db.view.table("frames", [i])[0]
                if old["content_hash"] != f["content_hash"][0] or old["pipeline_version"] != \
                        f["pipeline_version"][0]:
                    raise AposError("frame key collision (two files share a 64-bit uid)",
                                    path=frame.path)
                return None
            tables = {"frames": f}
            if obs is not None:
                tables["observations"] = obs
            if un is not None:
                tables["unseen"] = un
            return tables, 1

        return self._publish(build)

    # ---------------------------------------------------------------- tracklets

    def commit_tracklets(self, members=None, *, correlations=None, orbits=None,
                         unseen=None) -> dict[str, int]:
        """Commit the linking, correlation and orbit results of the run in one unit.

        ``members``: one row per observation in a tracklet: ``tracklet`` (label, <= 32
        bytes), ``content_hash`` (of the frame) and ``obs_index`` (row of that frame's
        observations), all of frames committed by this pipeline version.
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
            if _nrows(members):
                tables.update(_tracklet_rows(view, members, pv, run_id, ids))
            if _nrows(correlations):
                c = _correlation_rows(correlations, ids, run_id)
                tables["correlations"] = view.new_correlations(c)
            if _nrows(orbits):
                tables["orbits"] = view.new_orbits(rows_from("orbits", orbits, run_id=run_id,
                                                             commit_seq=0))
            if _nrows(unseen):
                uids = [schema.frame_uid(h, pv) for h in np.asarray(unseen["content_hash"]).astype(str)]
                u = rows_from("unseen", unseen, _nrows(unseen), run_id=run_id, frame_uid=uids,
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
            tables = _merge_rows(db.view, src)
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
        tables = _compacted_rows(segs)
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
        json.dump(manifest, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    _crash_point("manifest_written")
    os.replace(tmp, os.path.join(root, MANIFEST))
    segment.fsync_path(root)


# --------------------------------------------------------------------------- in-memory view

def _newest_per_key(keys: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """Mask of rows whose commit_seq is the highest among rows with the same key."""
    if len(keys) == 0:
        return np.zeros(0, bool)
    order = np.lexsort((seq, keys))
    k, s = keys[order], seq[order]
    last = np.r_[k[1:] != k[:-1], True]
    best = np.repeat(s[last], np.diff(np.r_[0, np.nonzero(last)[0] + 1]))
    mask = np.empty(len(keys), bool)
    mask[order] = s == best
    return mask


class _View:
    """All segments seen as one set of tables: columns concatenated on demand (memory maps
    are not read until used), lookups by key, and which rows are current."""

    def __init__(self, segs: list[segment.Segment]):
        self.segs = segs
        self.offsets = {t: np.cumsum([0] + [s.nrows(t) for s in segs]) for t in schema.TABLES}
        self._cols: dict = {}
        self._current: dict[str, np.ndarray] = {}
        self.frame_seg = np.repeat(np.arange(len(segs)), np.diff(self.offsets["frames"]))
        uid = self.col("frames", "frame_uid")
        self._uid_order = np.argsort(uid, kind="stable")
        self._uid_sorted = uid[self._uid_order]
        m = self.table("tracklet_obs")
        self.members = {(int(f), int(i)): int(t) for t, f, i in
                        zip(m["tracklet_id"], m["frame_uid"], m["obs_index"])}

    def n(self, table: str) -> int:
        return int(self.offsets[table][-1])

    def col(self, table: str, name: str) -> np.ndarray:
        """One column of ``table`` over all segments (cached; a memory map if one segment)."""
        key = (table, name)
        if key not in self._cols:
            parts = [s.cols[table][name] for s in self.segs]
            if len(parts) == 1:
                self._cols[key] = parts[0]
            elif parts:
                self._cols[key] = np.concatenate(parts)
            else:
                self._cols[key] = schema.empty(table)[name]
        return self._cols[key]

    def table(self, table: str, rows=None) -> np.ndarray:
        """Structured rows of ``table`` (all, a boolean mask or positions)."""
        if rows is None:
            rows = slice(None)
        first = self.col(table, schema.TABLES[table][0][0])[rows]
        out = np.empty(len(first), schema.dtype(table))
        for name in out.dtype.names:
            out[name] = self.col(table, name)[rows]
        return out

    def lookup(self, table: str, keys) -> np.ndarray:
        """Rows of ``table`` whose sort key (segment.SORTED_BY) is in ``keys``."""
        keys = np.unique(np.asarray(keys))
        name = segment.SORTED_BY[table]
        found = []
        for i, s in enumerate(self.segs):
            c = s.cols[table][name]
            if len(c) == 0:
                continue
            lo = np.searchsorted(c, keys, "left")
            hi = np.searchsorted(c, keys, "right")
            if np.any(hi > lo):
                found.append(self.offsets[table][i] + _ranges(lo, hi - lo))
        return np.concatenate(found) if found else np.zeros(0, np.int64)

    def frame_index(self, uid):
        """Row in frames of frame uid(s), -1 where absent."""
        uid = np.asarray(uid, dtype=np.int64)
        if len(self._uid_sorted) == 0:
            return np.full(uid.shape, -1) if uid.ndim else -1
        pos = np.minimum(np.searchsorted(self._uid_sorted, uid), len(self._uid_sorted) - 1)
        out = np.where(self._uid_sorted[pos] == uid, self._uid_order[pos], -1)
        return out if uid.ndim else int(out)

    # ---- which rows are current

    def current_mask(self, table: str) -> np.ndarray:
        """Which rows of ``table`` are current (not superseded)."""
        if table not in self._current:
            self._current[table] = self._compute_current(table)
        return self._current[table]

    def _compute_current(self, table: str) -> np.ndarray:
        col = lambda name: self.col(table, name)  # noqa: E731
        if table == "frames":
            return self._current_frames()
        if table == "runs":
            return _newest_per_key(col("run_id"), col("commit_seq"))
        if table == "orbits":
            return _newest_per_key(col("orbit_id"), col("commit_seq"))
        if table in ("tracklets", "unseen"):
            return self.frames_current(col("first_frame_uid" if table == "tracklets"
                                           else "frame_uid"))
        if table == "correlations":
            return self.correlations_current(np.arange(self.n(table)))
        return np.ones(self.n(table), bool)

    def _current_frames(self) -> np.ndarray:
        pv = self.col("frames", "pipeline_version")
        n = len(pv)
        if n == 0 or np.all(pv == pv[0]):
            return np.ones(n, bool)  # one pipeline version: every frame result is current
        _, grp = np.unique(self.col("frames", "content_hash"), return_inverse=True)
        uv, inv = np.unique(pv, return_inverse=True)
        rank = schema.version_order(list(schema.decode_str(uv)))[inv]
        order = np.lexsort((self.col("frames", "commit_seq"), rank, grp))
        g = grp[order]
        mask = np.zeros(n, bool)
        mask[order[np.r_[g[1:] != g[:-1], True]]] = True
        return mask

    def frames_current(self, uids) -> np.ndarray:
        """Whether the frames of ``uids`` exist and are current."""
        i = self.frame_index(uids)
        return (i >= 0) & self.current_mask("frames")[np.maximum(i, 0)]

    def correlations_current(self, rows) -> np.ndarray:
        """Whether correlation rows ``rows`` are current: newest commit for their tracklet,
        and the tracklet current. Looks only at the tracklets concerned."""
        rows = np.asarray(rows, np.int64)
        if len(rows) == 0:
            return np.zeros(0, bool)
        tid = self.col("correlations", "tracklet_id")[rows]
        seq = self.col("correlations", "commit_seq")[rows]
        if len(rows) == self.n("correlations"):
            newest = _newest_per_key(tid, seq)
        else:
            allr = self.lookup("correlations", tid)
            atid = self.col("correlations", "tracklet_id")[allr]
            aseq = self.col("correlations", "commit_seq")[allr]
            order = np.lexsort((aseq, atid))
            atid, aseq = atid[order], aseq[order]
            last = np.r_[atid[1:] != atid[:-1], True]
            newest = seq == aseq[last][np.searchsorted(atid[last], tid)]
        tr = self.lookup("tracklets", tid)
        live = tr[self.frames_current(self.col("tracklets", "first_frame_uid")[tr])]
        return newest & np.isin(tid, self.col("tracklets", "tracklet_id")[live])

    def current(self, table: str) -> np.ndarray:
        return self.table(table, self.current_mask(table))

    # ---- de-duplication helpers for commits

    def new_correlations(self, c: np.ndarray) -> np.ndarray:
        """Drop the correlations of tracklets whose current correlations are identical."""
        rows = self.lookup("correlations", c["tracklet_id"])
        cur = self.table("correlations", rows[self.correlations_current(rows)])
        keep = np.ones(len(c), bool)
        for tid in np.unique(c["tracklet_id"]):
            sel = c["tracklet_id"] == tid
            if _same_rows(c[sel], cur[cur["tracklet_id"] == tid]):
                keep &= ~sel
        return c[keep]

    def new_orbits(self, o: np.ndarray) -> np.ndarray:
        cur = self.current("orbits")
        keep = [not _same_rows(o[i:i + 1], cur[cur["orbit_id"] == o["orbit_id"][i]])
                for i in range(len(o))]
        return o[np.array(keep, bool)] if len(o) else o

    def new_unseen(self, u: np.ndarray) -> np.ndarray:
        have = self.table("unseen", self.lookup("unseen", u["frame_uid"]))
        key = set(zip(have["frame_uid"].tolist(), have["norad_id"].tolist()))
        keep = np.array([(int(a), int(b)) not in key for a, b in
                         zip(u["frame_uid"], u["norad_id"])], bool)
        return u[keep] if len(u) else u

    # ---- counts

    def run_counts(self, run_id: str) -> dict[str, int]:
        rid = run_id.encode()
        f = self.col("frames", "run_id") == rid
        t = self.col("tracklets", "run_id") == rid
        c = self.current_mask("correlations") & (self.col("correlations", "run_id") == rid) \
            & (self.col("correlations", "rank") == 0)
        status = self.col("correlations", "status")
        return {"n_frames": int(f.sum()),
                "n_frames_failed": int(np.sum(self.col("frames", "status")[f] == 1)),
                "n_observations": int(self.col("frames", "obs_count")[f].sum()),
                "n_tracklets": int(t.sum()),
                "n_identified": int(np.sum(status[c] == 0)),
                "n_uct": int(np.sum(status[c] == 2))}

    def summary(self, n_segments: int) -> dict[str, int]:
        fr = self.current_mask("frames")
        status = self.col("frames", "status")
        count = self.col("frames", "obs_count")
        best = self.current_mask("correlations") & (self.col("correlations", "rank") == 0)
        cstat = self.col("correlations", "status")[best]
        return {"runs": int(self.current_mask("runs").sum()),
                "frames": int(fr.sum()),
                "frames_ok": int(np.sum(status[fr] == 0)),
                "frames_failed": int(np.sum(status[fr] == 1)),
                "frames_superseded": int(len(fr) - fr.sum()),
                "observations": int(count[fr].sum()),
                "observations_total": int(count.sum()),
                "tracklets": int(self.current_mask("tracklets").sum()),
                "correlations": int(self.current_mask("correlations").sum()),
                "identified": int(np.sum(cstat == 0)),
                "ambiguous": int(np.sum(cstat == 1)),
                "uct": int(np.sum(cstat == 2)),
                "orbits": int(self.current_mask("orbits").sum()),
                "unseen": int(self.current_mask("unseen").sum()),
                "segments": int(n_segments)}


def _ranges(start, count) -> np.ndarray:
    """Concatenated ``arange(start[i], start[i] + count[i])``."""
    start = np.asarray(start, np.int64)
    count = np.asarray(count, np.int64)
    total = int(count.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    offsets = np.cumsum(count) - count
    return np.repeat(start - offsets, count) + np.arange(total)


# --------------------------------------------------------------------------- row assembly

def _tracklet_rows(view: _View, members, pv: str, run_id: str, ids: dict) -> dict:
    labels = np.asarray(members["tracklet"]).astype(str)
    hashes = np.asarray(members["content_hash"]).astype(str)
    index = np.asarray(members["obs_index"]).astype(np.int64)
    uids = np.array([schema.frame_uid(h, pv) for h in hashes], dtype=np.int64)
    fi = view.frame_index(uids)
    if np.any(fi < 0):
        raise AposError(f"tracklet member refers to a frame not committed by pipeline "
                        f"{pv}: {hashes[np.argmax(fi < 0)]}", key="members.content_hash")
    if np.any((index < 0) | (index >= view.col("frames", "obs_count")[fi])):
        raise AposError("tracklet member obs_index out of range", key="members.obs_index")
    times = _observation_field(view, fi, index, "time_ns")
    stored_tid = _observation_field(view, fi, index, "tracklet_id")
    t_rows, m_rows = [], []
    for label in dict.fromkeys(labels.tolist()):
        sel = np.nonzero(labels == label)[0]
        station = np.unique(view.col("frames", "station")[fi[sel]])
        if len(station) != 1:
            raise AposError(f"tracklet {label!r} mixes stations", key="members")
        st = station[0].decode()
        tid = schema.tracklet_uid(pv, st, zip(hashes[sel], index[sel]))
        ids[label] = tid
        if len(view.lookup("tracklets", [tid])):
            continue  # this tracklet is stored already
        for s in sel:
            other = view.members.get((int(uids[s]), int(index[s])), int(stored_tid[s]))
            if other not in (0, tid):
                raise AposError(f"observation {hashes[s]}:{index[s]} of tracklet {label!r} "
                                f"already belongs to tracklet {other}", key="members")
        first = sel[np.argmin(times[sel])]
        t_rows.append(rows_from("tracklets", None, 1, tracklet_id=tid, label=label,
                                run_id=run_id, station=st, pipeline_version=pv,
                                first_frame_uid=uids[first], n_obs=len(sel),
                                t_first_ns=times[sel].min(), t_last_ns=times[sel].max(),
                                commit_seq=0))
        m_rows.append(rows_from("tracklet_obs", None, len(sel), tracklet_id=tid,
                                frame_uid=uids[sel], obs_index=index[sel], commit_seq=0))
    cat = lambda t, r: np.concatenate(r) if r else schema.empty(t)  # noqa: E731
    return {"tracklets": cat("tracklets", t_rows), "tracklet_obs": cat("tracklet_obs", m_rows)}


def _observation_field(view: _View, fi: np.ndarray, index: np.ndarray, col: str) -> np.ndarray:
    out = np.empty(len(fi), schema.dtype("observations")[col])
    seg = view.frame_seg[fi]
    rows = view.col("frames", "obs_start")[fi] + index
    for s in np.unique(seg):
        sel = seg == s
        out[sel] = view.segs[s].obs[col][rows[sel]]
    return out


def _correlation_rows(correlations, ids: dict, run_id: str) -> np.ndarray:
    names = _colnames(correlations)
    n = _nrows(correlations)
    if "tracklet_id" in names:
        tid = np.asarray(correlations["tracklet_id"], dtype=np.int64)
    elif "tracklet" in names:
        labels = np.asarray(correlations["tracklet"]).astype(str)
        missing = [x for x in labels if x not in ids]
        if missing:
            raise AposError(f"correlation refers to unknown tracklet {missing[0]!r}",
                            key="correlations.tracklet")
        tid = np.array([ids[x] for x in labels], dtype=np.int64)
    else:
        raise AposError("correlations need a 'tracklet' or 'tracklet_id' column",
                        key="correlations")
    c = rows_from("correlations", correlations, n, tracklet_id=tid, run_id=run_id,
                  commit_seq=0)
    if "rank" not in names:
        c["rank"] = 0
    if "norad_id" not in names:
        c["norad_id"] = 0
    return c


def _merge_rows(view: _View, src: Store) -> dict[str, np.ndarray]:
    """Rows of ``src`` that ``view`` does not have yet (full history of src)."""
    sv = src.view
    frames = sv.table("frames", view.frame_index(sv.col("frames", "frame_uid")) < 0)
    obs = [s.observation_slice(0, s.n_obs) for s in sv.segs]
    obs = np.concatenate(obs) if obs else schema.empty("observations")
    out = {"frames": frames,
           "observations": obs[np.isin(obs["frame_uid"], frames["frame_uid"])]}
    t = sv.table("tracklets")
    out["tracklets"] = t[~np.isin(t["tracklet_id"], view.col("tracklets", "tracklet_id"))]
    m = sv.table("tracklet_obs")
    out["tracklet_obs"] = m[np.isin(m["tracklet_id"], out["tracklets"]["tracklet_id"])]
    out["unseen"] = view.new_unseen(sv.table("unseen"))
    for table in ("runs", "correlations", "orbits"):
        rows = sv.table(table)
        known = set(_row_bytes(view.table(table)))
        mask = np.array([b not in known for b in _row_bytes(rows)], bool)
        out[table] = rows[mask] if len(rows) else rows
    return {k: v.copy() for k, v in out.items()}


def _compacted_rows(segs: list[segment.Segment]) -> dict[str, np.ndarray]:
    """All rows of ``segs`` as one segment's tables, memberships folded into observations."""
    tables = {t: np.concatenate([s.table(t) for s in segs]) for t in schema.SMALL_TABLES}
    obs = np.concatenate([s.observation_slice(0, s.n_obs) for s in segs])
    m = tables["tracklet_obs"]
    if len(m) and len(obs):
        key_obs = obs[["frame_uid", "obs_index"]].astype([("f", "i8"), ("i", "i4")])
        key_m = m[["frame_uid", "obs_index"]].astype([("f", "i8"), ("i", "i4")])
        order = np.argsort(key_obs, kind="stable")
        pos = np.searchsorted(key_obs, key_m, sorter=order)
        pos = np.minimum(pos, len(obs) - 1)
        found = key_obs[order[pos]] == key_m
        obs["tracklet_id"][order[pos[found]]] = m["tracklet_id"][found]
        tables["tracklet_obs"] = m[~found]
    tables["observations"] = obs
    return tables
