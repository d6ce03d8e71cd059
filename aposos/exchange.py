"""Observations between the store and the exchange formats: export, import.

Export (:func:`export_table`): the current observations of a store, selected by object,
station and night, as a table for :func:`aposos.formats.write_tdm` / ``write_iod``. Only
observations in a tracklet are exported; the object of each is the NORAD number of its
tracklet's current rank-0 correlation when that says 'identified', else the tracklet label
(a UCT designation; ``norad_id`` 0).

A **night** ``YYYY-MM-DD`` is the UTC interval from local *mean solar* noon of that date to
local mean noon of the next day at the station (noon UTC minus longitude / 15 h; the civil
time zone plays no part), for a configured station; without a station, or for a station that
is not configured (an imported observer code), it is the UTC date (00:00 to 24:00 UTC).

Import (:func:`import_file`): every good record of an observation file becomes one frame
with one observation (kind 'point', no pixel position, exposure unknown) in one commit. The
**synthetic frame key**: ``content_hash = sha256("<sha256 of the file bytes>:<line>:<k>")``
(hex), where ``line`` is the record's 1-based line number and ``k`` its rank among records on
that same line (0 except in one-line XML files); the frame ``path`` is ``<file>#L<line>``. The
same file imported twice (with the same pipeline version) therefore adds nothing. Imported
records are cut into tracks like :func:`aposos.identify.identify` does (object id, station,
time gaps); each track is committed as a tracklet labelled ``imp-<first 8 hex of the file
hash>-<track number>`` and, given TLE catalogs, with its correlations (every candidate by
rank, status = the track's verdict; a UCT as one row with ``norad_id`` 0).

Stations: ``station=NAME`` (a configured station) assigns every record to that station;
otherwise records keep the code the file gives, located with ``site`` (one site for all) or
``sites`` (a COSPAR sites list). The store keeps station names, not coordinates: correlating
an observer code again later needs the sites list again.

Not kept by the store: the records' time uncertainty (the schema has no column for it), so
an IOD export of imported observations needs ``sigma_time_s`` again.
"""

from __future__ import annotations

import hashlib
import math
import re

import astropy.units as u
import numpy as np
from astropy.table import Table
from astropy.time import Time

from .errors import AposError

_NIGHT = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# --------------------------------------------------------------------------- export

def configured_station(name: str | None):
    """The configured Station of ``name``, or None if no station file has that name."""
    from .config import STATIONS_DIR, load_station

    if name and (STATIONS_DIR / f"{name}.toml").exists():
        return load_station(name)
    return None


def night_interval(night: str, station: str | None = None) -> tuple[Time, Time, str]:
    """``(start, end, description)`` of night ``YYYY-MM-DD`` (see the module doc)."""
    if not _NIGHT.match(night or ""):
        raise AposError(f"night {night!r}: expected YYYY-MM-DD", key="--night")
    try:
        day = Time(f"{night}T00:00:00", scale="utc")
    except ValueError:
        raise AposError(f"night {night!r} is not a date", key="--night") from None
    st = configured_station(station)
    if st is None:
        return day, day + 1.0 * u.day, f"UTC date {night}"
    noon = day + (12.0 - st.lon_deg / 15.0) * u.hour
    return noon, noon + 1.0 * u.day, f"local mean noon to noon at {st.name} ({noon.isot[:16]} UTC +24 h)"


def export_table(db, *, obj: str | None = None, station: str | None = None,
                 night: str | None = None) -> Table:
    """Current linked observations of ``db`` with object ids (see the module doc).

    ``obj``: a NORAD number or a tracklet label. Columns: ``time``, ``ra_deg``, ``dec_deg``,
    ``sigma_arcsec``, ``mag``, ``station``, ``norad_id`` (int, 0 = not identified),
    ``object_id`` (NORAD number as text, or the tracklet label), ``tracklet_id``. ``meta``:
    ``unlinked`` (observations left out), ``night`` (description of the interval).
    """
    from .db import query

    kw = {}
    if night is not None:
        start, end, what = night_interval(night, station)
        kw.update(start=start, end=end)
    if station is not None:
        kw["station"] = station
    if obj is not None and str(obj).isdigit():
        obs = query.observations(db, norad_id=int(obj), **kw)
    elif obj is not None:
        trk = query.tracklets(db)
        tids = np.asarray(trk["tracklet_id"])[np.asarray(trk["label"]).astype(str) == str(obj)]
        if len(tids) == 0:
            raise AposError(f"no tracklet labelled {obj!r} (give a NORAD number or a label)",
                            path=db.root, key="--object")
        obs = query.observations(db, tracklet_id=tids, **kw)
    else:
        obs = query.observations(db, **kw)
    linked = np.asarray(obs["tracklet_id"]) != 0
    out = obs[linked]
    norad, label = _objects(db, np.asarray(out["tracklet_id"]))
    table = Table()
    for name in ("time", "ra_deg", "dec_deg", "sigma_arcsec", "mag", "station", "tracklet_id"):
        table[name] = out[name]
    table["norad_id"] = norad
    table["object_id"] = [str(n) if n else lab for n, lab in zip(norad, label)]
    table.meta.update(unlinked=int(np.sum(~linked)), night=what if night is not None else None)
    return table


def _objects(db, tids: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """(NORAD number if identified else 0, tracklet label) per tracklet id."""
    from .db import query

    corr = query.correlations(db)
    corr = corr[(np.asarray(corr["rank"]) == 0) & (np.asarray(corr["status"]).astype(str) == "identified")]
    ident = dict(zip(np.asarray(corr["tracklet_id"]).tolist(), np.asarray(corr["norad_id"]).tolist()))
    trk = query.tracklets(db)
    labels = dict(zip(np.asarray(trk["tracklet_id"]).tolist(), np.asarray(trk["label"]).astype(str).tolist()))
    norad = np.array([max(int(ident.get(t, 0)), 0) for t in tids.tolist()], dtype=np.int64)
    return norad, [labels.get(t, f"trk{t}") for t in tids.tolist()]


def station_sigma_time(station, given: float | None) -> float:
    """Time uncertainty (s) of a station's observations for IOD: the station config's
    ``timing.sigma_s`` when it has one, else ``given``; else an AposError (no silent value)."""
    station = str(station)
    st = configured_station(station)
    value = st.timing.get("sigma_s") if st is not None else None
    if value is None:
        value = given
    if value is None or not (math.isfinite(value) and value > 0):
        where = "its station config has no timing.sigma_s" if st is not None else "it is not a configured station"
        raise AposError(f"time uncertainty of station {station!r} unknown ({where}): pass "
                        "--sigma-time-s", key="--sigma-time-s")
    return float(value)


# --------------------------------------------------------------------------- import

def record_keys(file_hash: str, lines) -> list[str]:
    """Synthetic frame content hashes of records at ``lines`` of a file (module doc)."""
    seen: dict[int, int] = {}
    out = []
    for line in np.asarray(lines).tolist():
        k = seen.get(line, 0)
        seen[line] = k + 1
        out.append(hashlib.sha256(f"{file_hash}:{line}:{k}".encode()).hexdigest())
    return out


def import_file(db, path, *, station: str | None = None, site=None, sites=None, catalog=None,
                sigma_arcsec: float | None = None, config=None) -> dict:
    """Import the good records of ``path`` into ``db`` (open for writing); see the module doc.

    Returns counts: ``records``, ``rejected`` (list of (line, reason)), ``frames_added``,
    ``tracklets``, ``identified``, ``ambiguous``, ``uct`` (the last three only with a
    ``catalog``) and ``results`` (per track verdicts, :func:`aposos.identify.identify`).
    """
    from .db import schema
    from .db.store import content_hash, rows_from
    from .formats import read_observations
    from .config import load_station
    from .identify import IdentifyConfig, SiteResolver, fill_sigma, group_tracks, identify

    if station is not None:
        site = load_station(station).location  # an unknown name lists the configured ones
    table = read_observations(path, sites=sites)
    summary = {"records": len(table), "rejected": list(table.meta["rejected"]), "frames_added": 0,
               "tracklets": 0, "results": []}
    if len(table) == 0:
        return summary
    table = fill_sigma(table, sigma_arcsec, path)
    if station is not None:
        table["station"] = [station] * len(table)
    too_long = [s for s in set(np.asarray(table["station"]).astype(str)) if len(s.encode()) > 16 or not s]
    if too_long:
        raise AposError(f"station code {too_long[0]!r} cannot be stored (1 to 16 bytes)", path=path,
                        key="station")
    locate = SiteResolver(site, sites)
    file_hash = content_hash(path)
    hashes = record_keys(file_hash, table["line"])
    pv = db.pipeline_version or _version()
    uids = np.array([schema.frame_uid(h, pv) for h in hashes], dtype=np.int64)
    new = db.view.frame_index(uids) < 0
    cfg = config or IdentifyConfig()
    tracks = group_tracks(table, cfg.max_gap_s)
    results = identify(table, catalog, locate, cfg) if catalog is not None else []  # same tracks
    summary["results"] = results
    for status in ("identified", "ambiguous", "uct"):
        summary[status] = sum(r["status"] == status for r in results)
    labels = np.array([f"imp-{file_hash[:8]}-{k + 1:04d}" for k in tracks])
    correlations = _correlation_rows(results, file_hash)
    if not new.any() and not _correlations_new(db, correlations):
        summary["tracklets"] = int(tracks.max()) + 1
        return summary
    names = sorted(set(np.asarray(table["station"]).astype(str)))
    db.begin_run(names[0] if len(names) == 1 else "import", pipeline_version=pv)
    if new.any():
        t = Time(table["time"][new]).utc
        frames = rows_from("frames", {
            "path": [f"{path}#L{int(x)}" for x in table["line"][new]],
            "content_hash": [h for h, n in zip(hashes, new) if n],
            "station": list(np.asarray(table["station"][new]).astype(str)),
            "t_start": t, "t_mid": t, "t_end": t}, int(new.sum()), frame_uid=uids[new],
            pipeline_version=pv, run_id=db.run_id, status="ok", n_stars=-1, commit_seq=0)
        obs = rows_from("observations", {
            "time": t, "ra_deg": np.asarray(table["ra_deg"][new], float),
            "dec_deg": np.asarray(table["dec_deg"][new], float),
            "sigma_arcsec": np.asarray(table["sigma_arcsec"][new], float),
            "mag": np.asarray(table["mag"][new], float)}, int(new.sum()), frame_uid=uids[new],
            obs_index=0, kind="point", end=-1, source_index=0, tracklet_id=0,
            x=np.nan, y=np.nan)
        db.commit_arrays({"frames": frames, "observations": obs})
    keep = tracks >= 0
    members = Table({"tracklet": labels[keep], "content_hash": np.array(hashes)[keep],
                     "obs_index": np.zeros(int(keep.sum()), int)})
    db.commit_tracklets(members, correlations=correlations)
    db.end_run()
    summary.update(frames_added=int(new.sum()), tracklets=int(tracks.max()) + 1)
    return summary


def _version() -> str:
    from . import __version__

    return __version__


def _correlation_rows(results: list[dict], file_hash: str) -> Table | None:
    """Correlation rows (store contract) of per-track verdicts; None without verdicts."""
    rows = []
    for r in results:
        label = f"imp-{file_hash[:8]}-{r['track']:04d}"
        if r["status"] == "uct" or not r["candidates"]:
            rows.append((label, 0, 0, "uct", np.nan, np.nan, None, np.nan))
            continue
        for rank, c in enumerate(r["candidates"]):
            rows.append((label, c["norad_id"], rank, r["status"], _f(c["along_track_arcsec"]),
                         _f(c["cross_track_arcsec"]), c["tle_epoch"], _f(c["chi2"])))
    if not rows:
        return None
    label, norad, rank, status, along, cross, epoch, score = zip(*rows)
    out = Table({"tracklet": list(label), "norad_id": np.array(norad, np.int32),
                 "rank": np.array(rank, np.int16), "status": list(status),
                 "along_track_arcsec": np.array(along, float), "cross_track_arcsec": np.array(cross, float),
                 "score": np.array(score, float)})
    ns = np.full(len(rows), np.iinfo(np.int64).min, np.int64)
    have = [i for i, e in enumerate(epoch) if e is not None]
    if have:
        from .db.schema import time_to_ns

        ns[have] = time_to_ns(Time([epoch[i] for i in have], scale="utc"))
    out["tle_epoch_ns"] = ns
    return out


def _f(x):
    return np.nan if x is None else float(x)


def _correlations_new(db, correlations) -> bool:
    """Whether some tracklet of ``correlations`` has no current correlation in ``db`` yet."""
    if correlations is None:
        return False
    from .db import query

    current = query.correlations(db)
    have = set(np.asarray(current["tracklet_id"]).tolist())
    trk = query.tracklets(db)
    by_label = dict(zip(np.asarray(trk["label"]).astype(str).tolist(), np.asarray(trk["tracklet_id"]).tolist()))
    for label in set(np.asarray(correlations["tracklet"]).astype(str)):
        if by_label.get(label) not in have:
            return True
    return False
