"""Orbits of uncorrelated (UCT) tracklets: association and determination, at a station or at
the data centre over the shared store.

:func:`uct_orbits` is the one step both places run: given UCT tracklets (any stations, any
nights) it groups them into objects (:func:`aposos.orbit.associate`), fits the tracklets the
pair fits left over once more jointly, and returns the determined orbits as store rows.

The nightly batch (``aposos reduce``) runs it on one station's run. :func:`store_orbits`
(``aposos orbits``) runs it on the UCT tracklets of every station and night in the store (or a
time window / some stations), which is the point of the network: Iran, Pakistan and Peru see
the same object hours apart, and only their tracklets together determine its orbit. The
orbits and the tracklet -> orbit links are committed back as a run of station ``network``;
the links are new correlation rows (the UCT row with its ``orbit_id`` set), which supersede
the old ones with history kept. A rerun on an unchanged store commits nothing (no run).
Tracklets left single keep whatever orbit link they had. The store is read without the
writer lock (fitting takes minutes on a large store); at commit, under the lock, a tracklet
whose correlation changed meanwhile (re-correlated by a newer run) is not linked.
"""

from __future__ import annotations

import hashlib
import logging
import os

import numpy as np
from astropy.table import Table
from astropy.time import Time

from ..errors import AposError

__all__ = ["uct_orbits", "store_orbits", "NETWORK_STATION"]

log = logging.getLogger(__name__)

NETWORK_STATION = "network"  # station name of the data-centre runs in the store


def orbit_id_of(tle_line2: str) -> str:
    """Store key of an orbit: a hash of its TLE line 2 (the same fit gives the same id)."""
    return f"o{hashlib.sha256(tle_line2.encode()).hexdigest()[:12]}"


def uct_orbits(tables: list) -> tuple[Table | None, np.ndarray, np.ndarray]:
    """Associate UCT tracklets into objects and determine their orbits.

    ``tables``: one observation Table per tracklet (``time``, ``ra_deg``, ``dec_deg``,
    ``sigma_arcsec``, ``station``), any stations and nights.
    Returns (orbits as store rows or None, object number per tracklet (-1: left single),
    orbit_id per tracklet ('' when its object's orbit is undetermined or it is single)).
    Objects need at least three tracklets (:func:`aposos.orbit.associate`); undetermined fits
    are not returned.
    """
    from . import associate, determine_orbit

    object_of = np.full(len(tables), -1)
    orbit_ids = np.full(len(tables), "", dtype=object)
    if len(tables) < 3:
        return None, object_of, orbit_ids.astype(str)
    found = associate(tables, determine=True)
    objects = list(zip(found.objects, found.solutions or []))
    rest = [k for k in range(len(tables)) if found.object_of[k] < 0]
    if len(rest) >= 3:
        # pair fits can miss slow objects (GEO tracklets hours apart); one joint fit of the
        # rest is safe: determine_orbit refuses mixed objects (rejected tracklets, chi2 test)
        sol = determine_orbit([tables[k] for k in rest])
        if sol.determined and not sol.rejected_tracklets:
            objects.append((rest, sol))
    rows = []
    for n, (members, sol) in enumerate(objects):
        object_of[members] = n
        if sol is None or not sol.determined:
            continue
        orbit_id = orbit_id_of(sol.tle[1])
        rows.append({"orbit_id": orbit_id, "epoch": sol.epoch, "frame": "GCRS", "state": sol.state,
                     "covariance": sol.covariance, "tle_line1": sol.tle[0], "tle_line2": sol.tle[1],
                     "rms_arcsec": sol.rms_arcsec, "n_obs": len(sol.used), "n_tracklets": len(members)})
        orbit_ids[members] = orbit_id
    if not rows:
        return None, object_of, orbit_ids.astype(str)
    orbits = Table({k: [r[k] for r in rows] for k in rows[0] if k != "epoch"})
    orbits["epoch"] = Time([r["epoch"] for r in rows])
    return orbits, object_of, orbit_ids.astype(str)


def _uct_tracklets(db, start, end, stations) -> Table:
    """Current UCT correlation rows (rank 0) joined with their tracklets' station and times,
    restricted to tracklets inside [start, end] (Time) of ``stations``; sorted by first time."""
    from ..db import query

    corr = query.correlations(db, status="uct")
    corr = corr[corr["rank"] == 0]
    trk = query.tracklets(db)
    pos = {int(t): i for i, t in enumerate(trk["tracklet_id"])}
    corr = corr[np.array([int(t) in pos for t in corr["tracklet_id"]], bool)]
    k = np.array([pos[int(t)] for t in corr["tracklet_id"]], dtype=int)
    corr["station"] = np.asarray(trk["station"]).astype(str)[k]
    corr["t_first"], corr["t_last"] = trk["t_first"][k], trk["t_last"][k]
    keep = np.ones(len(corr), bool)
    if start is not None:
        keep &= (corr["t_last"] >= Time(start)).astype(bool)
    if end is not None:
        keep &= (corr["t_first"] <= Time(end)).astype(bool)
    if stations:
        keep &= np.isin(corr["station"], list(stations))
    corr = corr[keep]
    return corr[np.argsort(corr["t_first"].jd, kind="stable")]


def _tracklet_tables(db, tracklet_ids) -> list[Table]:
    """One observation Table per tracklet (streak centres left out: the ends carry the time)."""
    from ..db import query

    obs = query.observations(db, tracklet_id=np.asarray(tracklet_ids, np.int64))
    obs = obs[obs["kind"] != "streak_centre"]
    out = []
    for tid in tracklet_ids:
        rows = obs[obs["tracklet_id"] == tid]
        out.append(Table({"time": rows["time"], "ra_deg": rows["ra_deg"], "dec_deg": rows["dec_deg"],
                          "sigma_arcsec": rows["sigma_arcsec"], "station": rows["station"]}))
    return out


def _link_rows(corr: Table, orbit_ids) -> Table | None:
    """The UCT correlation rows ``corr`` (as queried) with their new ``orbit_id``: the
    correlation rows that link tracklets to orbits (None when there are none)."""
    if len(corr) == 0:
        return None
    keep = [c for c in corr.colnames if c not in ("station", "t_first", "t_last", "run_id", "commit_seq",
                                                   "tle_epoch", "current")]
    links = corr[keep]
    links["orbit_id"] = orbit_ids
    links["tle_epoch_ns"] = _ns_or_none(corr["tle_epoch"])
    return links


def _ns_or_none(t: Time) -> np.ndarray:
    """Store ns of a Time column whose masked rows (no time) become the store's NO_TIME."""
    from ..db import schema

    mask = np.broadcast_to(np.asarray(t.mask, bool), t.shape)
    ns = np.full(len(t), schema.NO_TIME, np.int64)
    if (~mask).any():
        ok = t[~mask]
        ns[~mask] = schema.time_to_ns(getattr(ok, "unmasked", ok))
    return ns


def _time(value, what: str):
    try:
        return None if value is None else Time(value, scale="utc")
    except ValueError as exc:
        raise AposError(f"not a time: {value!r} ({exc})", key=what) from exc


def store_orbits(db_path, *, start=None, end=None, stations=None) -> Table:
    """Associate the store's UCT tracklets across stations and nights, determine their orbits
    and commit orbits and tracklet -> orbit links back (see the module doc).

    ``start``/``end``: Times (or ISO strings, UTC) bounding the tracklets considered;
    ``stations``: station names (all when None). Returns one row per UCT tracklet considered:
    ``tracklet_id``, ``station``, ``t_first``, ``n_obs``, ``object`` (-1: left single),
    ``orbit_id`` ('' none); ``meta`` holds ``objects``, ``orbits``, ``committed`` (whether
    anything new went into the store) and ``run_id``.
    """
    from ..db import Store, query
    from ..db.store import MANIFEST

    start, end = _time(start, "start"), _time(end, "end")
    if not os.path.exists(os.path.join(db_path, MANIFEST)):
        raise AposError("no aposos store here (no MANIFEST.json)", path=db_path)
    with Store.open(db_path, "r") as db:  # no writer lock while fitting (minutes on a large store)
        corr = _uct_tracklets(db, start, end, stations)
        tids = [int(t) for t in corr["tracklet_id"]]
        tables = _tracklet_tables(db, tids)
        have = set(query.orbits(db)["orbit_id"])
    log.info("%d UCT tracklets from %s", len(tids), sorted(set(corr["station"])))
    orbits, object_of, orbit_ids = uct_orbits(tables)
    out = Table({"tracklet_id": np.asarray(tids, np.int64), "station": np.asarray(corr["station"], str),
                 "t_first": corr["t_first"], "n_obs": np.array([len(t) for t in tables], int),
                 "object": object_of, "orbit_id": orbit_ids})
    out.meta.update(objects=int(len(set(object_of[object_of >= 0].tolist()))),
                    orbits=0 if orbits is None else len(orbits), committed=False, run_id="")
    linked = orbit_ids != ""
    new_links = bool(np.any(np.asarray(corr["orbit_id"][linked]) != orbit_ids[linked]))
    new_orbits = orbits is not None and not set(orbits["orbit_id"]) <= have
    if new_links or new_orbits:
        with Store.open(db_path, "a") as db:
            # link only tracklets whose correlation did not change while fitting (still the UCT row read)
            now = query.correlations(db, status="uct")
            same = {(int(t), int(q)) for t, q in zip(now["tracklet_id"], now["commit_seq"])}
            linked &= np.array([(int(t), int(q)) in same for t, q in zip(corr["tracklet_id"], corr["commit_seq"])],
                               bool)
            out.meta["run_id"] = db.begin_run(NETWORK_STATION, config_hash="uct-orbits")
            db.commit_tracklets(correlations=_link_rows(corr[linked], orbit_ids[linked]), orbits=orbits)
            db.end_run()
        out.meta["committed"] = True
    return out


def summary_text(result: Table) -> str:
    """The lines ``aposos orbits`` prints."""
    single = int(np.sum(result["object"] < 0))
    stations = ", ".join(sorted(set(result["station"]))) or "none"
    lines = [f"UCT tracklets considered: {len(result)} (stations: {stations})",
             f"objects found:            {result.meta['objects']}",
             f"orbits determined:        {result.meta['orbits']}",
             f"tracklets left single:    {single}",
             "store: " + (f"orbits and links committed (run {result.meta['run_id']})" if result.meta["committed"]
                          else "nothing new")]
    for oid in sorted(set(result["orbit_id"]) - {""}):
        sel = result["orbit_id"] == oid
        lines.append(f"  {oid}: {int(sel.sum())} tracklets from {', '.join(sorted(set(result['station'][sel])))}")
    return "\n".join(lines)


def summary_dict(result: Table) -> dict:
    return {"uct_tracklets": len(result), "objects": result.meta["objects"], "orbits": result.meta["orbits"],
            "single": int(np.sum(result["object"] < 0)), "committed": result.meta["committed"],
            "run_id": result.meta["run_id"],
            "tracklets": {str(oid): [int(t) for t in result["tracklet_id"][result["orbit_id"] == oid]]
                          for oid in sorted(set(result["orbit_id"]) - {""})}}


def _cmd_orbits(args) -> int:
    import json

    result = store_orbits(args.db, start=args.start, end=args.end, stations=args.station)
    print(json.dumps(summary_dict(result)) if args.json else summary_text(result))
    return 0


def register_cli(subparsers) -> None:
    """Add ``aposos orbits`` (data-centre association and orbits of the store's UCTs)."""
    p = subparsers.add_parser("orbits", help="associate the store's UCT tracklets across stations and "
                                             "nights, determine and store their orbits")
    p.add_argument("--db", required=True, metavar="STORE", help="store directory")
    p.add_argument("--start", help="first time (ISO, UTC) of the tracklets considered")
    p.add_argument("--end", help="last time (ISO, UTC) of the tracklets considered")
    p.add_argument("--station", action="extend", nargs="+", metavar="S",
                   help="stations to include (default all)")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=_cmd_orbits)
