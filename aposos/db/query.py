"""Queries of an aposos store, returning astropy Tables.

Every query returns the *current* rows by default (the newest pipeline version of each frame,
the newest correlation of each tracklet, ...); ``history=True`` returns superseded rows too,
with a boolean ``current`` column. Times come back as UTC ``Time`` columns named without the
``_ns`` suffix (``time``, ``t_start``, ``tle_epoch``...); enums and strings as str columns.

Observation tables have the columns of the observation contract (``time``, ``ra_deg``,
``dec_deg``, ``sigma_arcsec``, ``mag``, ``x``, ``y``, ``kind``, ``end``, ``source_index``,
``station``, ``frame``) plus ``obs_index``, ``tracklet_id`` (0 if not linked), ``frame_uid``,
``content_hash``, ``pipeline_version``, ``run_id``. They are sorted by time.
"""

from __future__ import annotations

import numpy as np
from astropy.table import Table

from . import schema
from .schema import NO_TIME
from .view import ranges

__all__ = ["observations", "object_history", "frames", "tracklets", "correlations", "runs",
           "orbits", "unseen"]

_ENUM_OF = {("observations", "kind"): schema.OBS_KIND, ("frames", "status"): schema.FRAME_STATUS,
            ("correlations", "status"): schema.CORR_STATUS, ("runs", "status"): schema.RUN_STATUS}
_HIDDEN = {"frames": ("obs_start",), "tracklet_obs": ()}
#: Frames overlapping a time range are found with this margin (s) before the exact filter.
_MARGIN_NS = 1_000_000_000


def to_table(table: str, rows: np.ndarray) -> Table:
    """An astropy Table of stored rows: times to UTC Time, enums and bytes to str."""
    out = Table()
    for name in rows.dtype.names:
        if name in _HIDDEN.get(table, ()):
            continue
        col = rows[name]
        if (table, name) in _ENUM_OF:
            out[name] = schema.decode_enum(col, _ENUM_OF[(table, name)])
        elif col.dtype.kind == "S":
            out[name] = schema.decode_str(col)
        elif name.endswith("_ns"):
            out[name[:-3]] = _times(col)
        else:
            out[name] = np.asarray(col)
    return out


def _times(ns):
    """UTC Time column; rows without a time are masked."""
    ns = np.asarray(ns)
    missing = ns == NO_TIME
    t = schema.ns_to_time(np.where(missing, 0, ns))
    if missing.any():
        t = t.copy()
        t[missing] = np.ma.masked
    return t


def _obs_of_frames(view, fi) -> np.ndarray:
    """Observation rows of the frames at view rows ``fi``."""
    fi = np.asarray(fi, np.int64)
    seg = view.frame_seg[fi]
    parts = []
    for s in np.unique(seg):
        sel = seg == s
        rows = ranges(view.col("frames", "obs_start")[fi[sel]],
                       view.col("frames", "obs_count")[fi[sel]])
        parts.append(view.segs[s].observation_rows(np.sort(rows)))
    return np.concatenate(parts) if parts else schema.empty("observations")


def _obs_of_tracklets(view, tids) -> np.ndarray:
    """Observation rows of the tracklets ``tids`` (stored ids and later memberships)."""
    tids = np.unique(np.asarray(tids, np.int64))
    parts = []
    if len(tids) == 0:
        return schema.empty("observations")
    for seg in view.segs:
        if seg.n_obs == 0:
            continue
        lo = np.searchsorted(seg.tracklet_sorted, tids, "left")
        hi = np.searchsorted(seg.tracklet_sorted, tids, "right")
        if np.any(hi > lo):
            rows = np.sort(np.asarray(seg.tracklet_perm[ranges(lo, hi - lo)]))
            parts.append(seg.observation_rows(rows))
    wanted = set(tids.tolist())
    linked = [key for key, (t, _, _) in view.members.items() if t in wanted]
    if linked:
        f, i = np.array(linked).T
        fi = view.frame_index(f)
        seg = view.frame_seg[fi]
        rows = view.col("frames", "obs_start")[fi] + i
        for s in np.unique(seg):
            sel = seg == s
            parts.append(view.segs[s].observation_rows(np.sort(rows[sel])))
    return np.concatenate(parts) if parts else schema.empty("observations")


def _apply_links(view, obs) -> None:
    """Give observations the tracklet, time and end of memberships not yet compacted."""
    if not view.members:
        return
    for k in range(len(obs)):
        link = view.members.get((int(obs["frame_uid"][k]), int(obs["obs_index"][k])))
        if link is not None:
            obs["tracklet_id"][k], obs["time_ns"][k], obs["end"][k] = link


def _frame_mask(view, start_ns, end_ns, station, run_id, history):
    f = lambda name: view.col("frames", name)  # noqa: E731
    mask = np.ones(view.n("frames"), bool) if history else view.current_mask("frames").copy()
    if station is not None:
        mask &= f("station") == str(station).encode()
    if run_id is not None:
        mask &= f("run_id") == str(run_id).encode()
    if start_ns is not None:
        mask &= (f("t_end_ns") != NO_TIME) & (f("t_end_ns") >= start_ns - _MARGIN_NS)
    if end_ns is not None:
        mask &= (f("t_start_ns") != NO_TIME) & (f("t_start_ns") <= end_ns + _MARGIN_NS)
    return mask


def _ns(t, what):
    return None if t is None else int(schema.as_ns(t, what)[0])


def _tracklets_of_object(view, norad_id, history):
    """Correlation rows naming ``norad_id`` (current ones unless ``history``)."""
    rows = view.where("correlations", "norad_id", int(norad_id))
    if not history:
        rows = rows[view.correlations_current(rows)]
    return view.table("correlations", rows)


def observations(db, *, norad_id=None, start=None, end=None, station=None, tracklet_id=None,
                 run_id=None, history=False) -> Table:
    """Observations by object (NORAD id), time range [start, end] (Time), station, tracklet,
    run, or any combination (all filters apply). Current results only unless ``history``."""
    view = db.view
    start_ns, end_ns = _ns(start, "start"), _ns(end, "end")
    if norad_id is not None or tracklet_id is not None:
        tids = None
        if norad_id is not None:
            tids = np.unique(_tracklets_of_object(view, norad_id, history)["tracklet_id"])
        if tracklet_id is not None:
            want = np.atleast_1d(np.asarray(tracklet_id, np.int64))
            tids = want if tids is None else np.intersect1d(tids, want)
        obs = _obs_of_tracklets(view, tids)
    else:
        fi = np.nonzero(_frame_mask(view, start_ns, end_ns, station, run_id, history))[0]
        obs = _obs_of_frames(view, fi)
    return _observation_table(view, obs, start_ns, end_ns, station, run_id, history)


def _observation_table(view, obs, start_ns, end_ns, station, run_id, history) -> Table:
    """Filter, sort and decode observation rows, joined with their frames."""
    _apply_links(view, obs)
    fi = view.frame_index(obs["frame_uid"])
    cur = view.current_mask("frames")[fi]
    keep = np.ones(len(obs), bool) if history else cur.copy()
    if start_ns is not None:
        keep &= obs["time_ns"] >= start_ns
    if end_ns is not None:
        keep &= obs["time_ns"] <= end_ns
    if station is not None:
        keep &= view.col("frames", "station")[fi] == str(station).encode()
    if run_id is not None:
        keep &= view.col("frames", "run_id")[fi] == str(run_id).encode()
    obs, fi, cur = obs[keep], fi[keep], cur[keep]
    order = np.lexsort((obs["obs_index"], obs["frame_uid"], obs["time_ns"]))
    obs, fi, cur = obs[order], fi[order], cur[order]
    t = to_table("observations", obs)
    frames, inv = np.unique(fi, return_inverse=True)  # decode each frame's strings once
    for name, col in (("station", "station"), ("frame", "path"),
                      ("content_hash", "content_hash"), ("pipeline_version", "pipeline_version"),
                      ("run_id", "run_id")):
        t[name] = _narrowest(schema.decode_str(view.col("frames", col)[frames]))[inv]
    if history:
        t["current"] = cur
    return t


def _narrowest(strings: np.ndarray) -> np.ndarray:
    """The same strings in the narrowest unicode dtype that holds them (a frame's path is
    stored 255 wide: repeated for every observation, the full width costs ~1 kB a row)."""
    return strings.astype(f"U{int(np.char.str_len(strings).max(initial=1))}")


def object_history(db, norad_id, *, history=False) -> Table:
    """Every observation of one object across stations, joined with its correlation
    (``status``, ``rank``, ``along_track_arcsec``, ``cross_track_arcsec``, ``tle_epoch``,
    ``score``, ``orbit_id``), sorted by time."""
    view = db.view
    corr = _tracklets_of_object(view, norad_id, history)
    obs = observations(db, norad_id=norad_id, history=history)
    corr = corr[np.lexsort((-corr["commit_seq"], corr["tracklet_id"]))]
    pos = np.searchsorted(corr["tracklet_id"], obs["tracklet_id"])
    c = to_table("correlations", corr[np.minimum(pos, max(len(corr) - 1, 0))]) if len(obs) \
        else to_table("correlations", schema.empty("correlations"))
    for name in ("norad_id", "status", "rank", "along_track_arcsec", "cross_track_arcsec",
                 "tle_epoch", "score", "orbit_id"):
        obs[name] = c[name]
    return obs


def frames(db, *, start=None, end=None, station=None, run_id=None, history=False) -> Table:
    """Frames overlapping [start, end] (Times) of a station / run."""
    view = db.view
    start_ns, end_ns = _ns(start, "start"), _ns(end, "end")
    mask = _frame_mask(view, start_ns, end_ns, station, run_id, True)
    if start_ns is not None:
        mask &= view.col("frames", "t_end_ns") >= start_ns
    if end_ns is not None:
        mask &= view.col("frames", "t_start_ns") <= end_ns
    order = np.lexsort((view.col("frames", "frame_uid"), view.col("frames", "t_start_ns")))
    return _select(view, "frames", mask, history, order=order)


def _select(view, table, mask, history, order=None) -> Table:
    """Rows of ``table`` where ``mask`` (in ``order`` if given), current ones unless
    ``history`` (then a ``current`` column)."""
    rows = np.nonzero(mask)[0] if order is None else order[mask[order]]
    if table == "correlations":
        cur = view.correlations_current(rows)
    else:
        cur = view.current_mask(table)[rows]
    keep = rows if history else rows[cur]
    t = to_table(table, view.table(table, keep))
    if history:
        t["current"] = cur
    return t


def tracklets(db, *, norad_id=None, station=None, run_id=None, history=False) -> Table:
    """Tracklets (of an object, a station, a run)."""
    view = db.view
    m = np.ones(view.n("tracklets"), bool)
    if norad_id is not None:
        m &= np.isin(view.col("tracklets", "tracklet_id"),
                     _tracklets_of_object(view, norad_id, history)["tracklet_id"])
    if station is not None:
        m &= view.col("tracklets", "station") == str(station).encode()
    if run_id is not None:
        m &= view.col("tracklets", "run_id") == str(run_id).encode()
    return _select(view, "tracklets", m, history)


def correlations(db, *, norad_id=None, tracklet_id=None, status=None, history=False) -> Table:
    """Correlations (of an object, a tracklet, a status 'identified'/'ambiguous'/'uct')."""
    view = db.view
    m = np.ones(view.n("correlations"), bool)
    if norad_id is not None:
        m &= view.col("correlations", "norad_id") == int(norad_id)
    if tracklet_id is not None:
        m &= view.col("correlations", "tracklet_id") == int(tracklet_id)
    if status is not None:
        code = schema.encode_enum([status], schema.CORR_STATUS, "status")[0]
        m &= view.col("correlations", "status") == code
    return _select(view, "correlations", m, history)


def runs(db, *, history=False) -> Table:
    """Runs (the newest row of each run unless ``history``)."""
    return _select(db.view, "runs", np.ones(db.view.n("runs"), bool), history)


def orbits(db, *, history=False) -> Table:
    """UCT orbit solutions (the newest of each orbit_id unless ``history``)."""
    return _select(db.view, "orbits", np.ones(db.view.n("orbits"), bool), history)


def unseen(db, *, norad_id=None, station=None, history=False) -> Table:
    """Objects predicted in a frame but not detected, with the frame's station and time."""
    view = db.view
    m = np.ones(view.n("unseen"), bool)
    if norad_id is not None:
        m &= view.col("unseen", "norad_id") == int(norad_id)
    if station is not None:
        fi = view.frame_index(view.col("unseen", "frame_uid"))
        m &= view.col("frames", "station")[fi] == str(station).encode()
    t = _select(view, "unseen", m, history)
    fi = view.frame_index(t["frame_uid"])
    t["station"] = schema.decode_str(view.col("frames", "station")[fi])
    t["t_mid"] = _times(view.col("frames", "t_mid_ns")[fi])
    return t
