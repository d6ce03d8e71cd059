"""The read side of a store: all its segments seen as one set of tables.

Columns are concatenated on demand (memory maps are not read until a query touches them),
rows are found by binary search on the keys segments are sorted by, and which rows are
*current* (not superseded) is worked out here: the newest pipeline version of each file, the
newest commit of each tracklet's correlations, of each run and orbit.
"""

from __future__ import annotations

import numpy as np

from . import schema, segment
from .rows import same_rows


def newest_per_key(keys: np.ndarray, seq: np.ndarray) -> np.ndarray:
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


class View:
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
        #: (frame_uid, obs_index) -> (tracklet_id, time_ns, end) of memberships not yet
        #: folded into the observations by a compaction
        self.members = {(int(f), int(i)): (int(t), int(tn), int(e)) for t, f, i, tn, e in
                        zip(m["tracklet_id"], m["frame_uid"], m["obs_index"], m["time_ns"],
                            m["end"])}

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

    def take(self, table: str, name: str, rows) -> np.ndarray:
        """Values of one column at global row positions ``rows``, read from each segment in
        place (no concatenated copy of the column is made)."""
        rows = np.asarray(rows, np.int64)
        if len(self.segs) == 1 or (table, name) in self._cols:
            return self.col(table, name)[rows]
        dt = np.dtype(dict(schema.TABLES[table])[name])
        out = np.empty((len(rows),) + dt.shape, dt.base)
        seg = np.searchsorted(self.offsets[table], rows, "right") - 1
        for i in np.unique(seg):
            sel = seg == i
            out[sel] = self.segs[i].cols[table][name][rows[sel] - self.offsets[table][i]]
        return out

    def where(self, table: str, name: str, value) -> np.ndarray:
        """Global rows where a column equals ``value`` (scanned segment by segment)."""
        found = [self.offsets[table][i] + np.nonzero(s.cols[table][name] == value)[0]
                 for i, s in enumerate(self.segs)]
        return np.concatenate(found) if found else np.zeros(0, np.int64)

    def table(self, table: str, rows=None) -> np.ndarray:
        """Structured rows of ``table`` (all, a boolean mask or positions)."""
        if rows is None:
            get = lambda name: self.col(table, name)  # noqa: E731
        else:
            rows = np.asarray(rows)
            rows = np.nonzero(rows)[0] if rows.dtype == bool else rows
            get = lambda name: self.take(table, name, rows)  # noqa: E731
        names = [name for name, _ in schema.TABLES[table]]
        first = get(names[0])
        out = np.empty(len(first), schema.dtype(table))
        out[names[0]] = first
        for name in names[1:]:
            out[name] = get(name)
        return out

    def lookup(self, table: str, keys) -> np.ndarray:
        """Rows of ``table`` whose sort key (segment.SORTED_BY) is in ``keys``."""
        keys = sorted_unique(keys)
        name = segment.SORTED_BY[table]
        found = []
        for i, s in enumerate(self.segs):
            c = s.cols[table][name]
            if len(c) == 0:
                continue
            lo = np.searchsorted(c, keys, "left")
            hi = np.searchsorted(c, keys, "right")
            if np.any(hi > lo):
                found.append(self.offsets[table][i] + ranges(lo, hi - lo))
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
            return newest_per_key(col("run_id"), col("commit_seq"))
        if table == "orbits":
            return newest_per_key(col("orbit_id"), col("commit_seq"))
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
        tid = self.take("correlations", "tracklet_id", rows)
        seq = self.take("correlations", "commit_seq", rows)
        if len(rows) == self.n("correlations"):
            newest = newest_per_key(tid, seq)
        else:
            allr = self.lookup("correlations", tid)
            atid = self.take("correlations", "tracklet_id", allr)
            aseq = self.take("correlations", "commit_seq", allr)
            order = np.lexsort((aseq, atid))
            atid, aseq = atid[order], aseq[order]
            last = np.r_[atid[1:] != atid[:-1], True]
            newest = seq == aseq[last][np.searchsorted(atid[last], tid)]
        if len(rows) == self.n("correlations"):
            live = self.col("tracklets", "tracklet_id")[self.current_mask("tracklets")]
        else:
            tr = self.lookup("tracklets", tid)
            live = self.take("tracklets", "tracklet_id",
                             tr[self.frames_current(self.take("tracklets", "first_frame_uid", tr))])
        return newest & np.isin(tid, live)

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
            if same_rows(c[sel], cur[cur["tracklet_id"] == tid]):
                keep &= ~sel
        return c[keep]

    def new_orbits(self, o: np.ndarray) -> np.ndarray:
        cur = self.current("orbits")
        keep = [not same_rows(o[i:i + 1], cur[cur["orbit_id"] == o["orbit_id"][i]])
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


def sorted_unique(values) -> np.ndarray:
    """Sorted distinct values (a sort, cheaper than np.unique's hashing for large int keys)."""
    v = np.sort(np.asarray(values).ravel())
    return v[np.r_[True, v[1:] != v[:-1]]] if len(v) else v


def ranges(start, count) -> np.ndarray:
    """Concatenated ``arange(start[i], start[i] + count[i])``."""
    start = np.asarray(start, np.int64)
    count = np.asarray(count, np.int64)
    total = int(count.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    offsets = np.cumsum(count) - count
    return np.repeat(start - offsets, count) + np.arange(total)
