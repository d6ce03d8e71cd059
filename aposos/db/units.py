"""The rows one commit adds: tracklets and memberships from linking results, correlations,
the rows another store can contribute to a merge, and the rows of a compaction."""

from __future__ import annotations

import numpy as np

from . import schema, segment
from .rows import colnames, nrows, row_bytes, rows_from
from .view import View
from ..errors import AposError


def tracklet_rows(view: View, members, pv: str, run_id: str, ids: dict) -> dict:
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
    ends = _observation_field(view, fi, index, "end")
    stored_tid = _observation_field(view, fi, index, "tracklet_id")
    names = colnames(members)
    if "time" in names or "time_ns" in names:  # times resolved by linking (streak ends)
        times = schema.as_ns(members["time" if "time" in names else "time_ns"], "members.time")
        t0 = view.col("frames", "t_start_ns")[fi]
        t1 = view.col("frames", "t_end_ns")[fi]
        bad = (times < t0 - 1_000_000_000) | (times > t1 + 1_000_000_000)
        if np.any(bad):
            raise AposError("tracklet member time is outside its frame's exposure",
                            key="members.time")
    if "end" in names:
        ends = np.asarray(members["end"]).astype(np.int8)
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
            other = view.members.get((int(uids[s]), int(index[s])), (int(stored_tid[s]),))[0]
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
                                frame_uid=uids[sel], obs_index=index[sel],
                                time_ns=times[sel], end=ends[sel], commit_seq=0))
    cat = lambda t, r: np.concatenate(r) if r else schema.empty(t)  # noqa: E731
    return {"tracklets": cat("tracklets", t_rows), "tracklet_obs": cat("tracklet_obs", m_rows)}


def _observation_field(view: View, fi: np.ndarray, index: np.ndarray, col: str) -> np.ndarray:
    out = np.empty(len(fi), schema.dtype("observations")[col])
    seg = view.frame_seg[fi]
    rows = view.col("frames", "obs_start")[fi] + index
    for s in np.unique(seg):
        sel = seg == s
        out[sel] = view.segs[s].obs[col][rows[sel]]
    return out


def correlation_rows(correlations, ids: dict, run_id: str) -> np.ndarray:
    names = colnames(correlations)
    n = nrows(correlations)
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


def merge_rows(view: View, src) -> dict[str, np.ndarray]:
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
        known = set(row_bytes(view.table(table)))
        mask = np.array([b not in known for b in row_bytes(rows)], bool)
        out[table] = rows[mask] if len(rows) else rows
    return {k: v.copy() for k, v in out.items()}


def compacted_rows(segs: list[segment.Segment]) -> dict[str, np.ndarray]:
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
        for col in ("tracklet_id", "time_ns", "end"):
            obs[col][order[pos[found]]] = m[col][found]
        tables["tracklet_obs"] = m[~found]
    tables["observations"] = obs
    return tables
