"""Truth observations for the orbit tests: SGP4 truth objects seen through aposos.directions.

Truth orbits are synthetic TLEs (sgp4init); directions are the reduction's star-relative
RA/Dec (light time, minus annual aberration) from the configured stations, with Gaussian
noise. Visibility: object >= 15 deg elevation while the Sun is below -12 deg.
"""

from __future__ import annotations

import functools

import astropy.units as u
import numpy as np
from astropy.coordinates import get_sun
from astropy.table import Table
from astropy.time import Time
from sgp4.api import WGS72, Satrec

from aposos import directions as d
from aposos.db import rows as db_rows, schema as db_schema
from aposos.config import load_station

EPOCH_1949 = 2433281.5  # JD of 1949-12-31 00:00 UTC, sgp4init's epoch origin


def satellite(epoch: Time, n_rev_day, e, i_deg, raan_deg, argp_deg, m_deg, bstar=0.0, satnum=90000):
    """A Satrec built from mean elements (the 'truth TLE')."""
    sat = Satrec()
    sat.sgp4init(WGS72, "i", satnum, epoch.utc.jd - EPOCH_1949, bstar, 0.0, 0.0, e,
                 np.radians(argp_deg), np.radians(i_deg), np.radians(m_deg),
                 n_rev_day * 2 * np.pi / 1440.0, np.radians(raan_deg))
    return sat


def gcrs_positions(sat, times: Time):
    err, r, v = sat.sgp4_array(times.jd1, times.jd2)
    assert not err.any()
    return d.teme_to_gcrs(r, times)


def position_function(sat, times):
    m = d.teme_to_gcrs_matrix(times)  # rotation constant over the light time

    def at(dt_s):
        err, r, _ = sat.sgp4_array(times.jd1, times.jd2 + np.asarray(dt_s) / 86400.0)
        assert not err.any()
        return np.einsum("nij,nj->ni", m, r)
    return at


def radec(sat, station, times):
    loc = load_station(station).location
    return d.star_relative_radec(position_function(sat, times), loc, times)


@functools.lru_cache(maxsize=32)
def _grid(station, t0_isot, hours, step_s):
    """Time grid, station 'up' vectors, Sun elevation and TEME->GCRS matrices (cached)."""
    loc = load_station(station).location
    times = Time(t0_isot, scale="utc") + np.arange(0, hours * 3600, step_s) * u.s
    obs_p, _ = d.observer_posvel_gcrs(loc, times)
    up = obs_p / np.linalg.norm(obs_p, axis=-1, keepdims=True)
    sun = get_sun(times).cartesian.xyz.value.T
    sun_elev = np.degrees(np.arcsin(np.sum(sun * up, -1) / np.linalg.norm(sun, axis=-1)))
    return times, obs_p, up, sun_elev, d.teme_to_gcrs_matrix_interpolated(times)


def visibility(sat, station, t0: Time, hours=14.0, step_s=60.0, min_elev_deg=15.0):
    """Times (Time array on a step grid) when the object is observable from the station."""
    times, obs_p, up, sun_elev, m = _grid(station, t0.isot, float(hours), float(step_s))
    err, r, _ = sat.sgp4_array(times.jd1, times.jd2)
    topo = np.einsum("nij,nj->ni", m, r) - obs_p
    elev = np.degrees(np.arcsin(np.sum(topo * up, -1) / np.linalg.norm(topo, axis=-1)))
    return times[(elev >= min_elev_deg) & (sun_elev < -12) & (err == 0)]


def tracklet(sat, station, t_start: Time, rng, n=10, span_s=120.0, sigma_arcsec=1.0):
    """One tracklet Table (time, ra_deg, dec_deg, sigma_arcsec, station) with Gaussian noise."""
    times = t_start + np.linspace(0, span_s, n) * u.s
    ra, dec, _ = radec(sat, station, times)
    dra = rng.normal(0, sigma_arcsec, n) / 3600 / np.cos(np.radians(dec))
    ddec = rng.normal(0, sigma_arcsec, n) / 3600
    return Table(dict(time=times, ra_deg=(ra + dra) % 360, dec_deg=dec + ddec,
                      sigma_arcsec=np.full(n, sigma_arcsec), station=np.full(n, station)))


def pick_starts(visible: Time, count: int, min_gap_s: float):
    """Up to ``count`` start times from a visibility grid, spread over it, >= min_gap_s apart."""
    if len(visible) == 0:
        return []
    sec = (visible - visible[0]).sec
    chosen = []
    for target in np.linspace(sec[0], sec[-1] - 180, count) if sec[-1] > 180 else [sec[0]]:
        k = int(np.argmin(np.abs(sec - target)))
        if all(abs(sec[k] - c) >= min_gap_s for c in chosen) and (k + 3 < len(sec) and sec[k + 3] - sec[k] <= 181):
            chosen.append(sec[k])
    return [visible[0] + c * u.s for c in chosen]


def separation_km(sat_a, sat_b, times):
    return np.linalg.norm(gcrs_positions(sat_a, times) - gcrs_positions(sat_b, times), axis=-1)


def pass_tracklets(sat, station, t0, rng, hours=22.0, per_pass=2, max_passes=3, min_len=8, sigma_arcsec=1.0):
    """Tracklets at the start and end of each visible pass (LEO), up to ``max_passes`` passes."""
    vis = visibility(sat, station, t0, hours=hours, step_s=30)
    if len(vis) == 0:
        return []
    sec = (vis - vis[0]).sec
    out = []
    for p in np.split(np.arange(len(vis)), np.flatnonzero(np.diff(sec) > 300) + 1)[:max_passes]:
        if len(p) < min_len:
            continue
        starts = [vis[p[0]]]
        if per_pass > 1 and (vis[p[-1]] - vis[p[0]]).sec >= 260:
            starts.append(vis[p[-1]] - 140 * u.s)
        out += [tracklet(sat, station, s, rng, sigma_arcsec=sigma_arcsec) for s in starts]
    return out


def mixed_night(seed=5):
    """A night of UCTs: two GEO and three LEO objects seen by the three stations.

    Returns (tracklets, truth object index per tracklet, list of truth Satrecs)."""
    rng = np.random.default_rng(seed)
    t0 = Time("2026-11-20T12:00:00", scale="utc")
    sats = [
        satellite(t0, 1.00272, 0.0004, 0.06, 0.0, 100, 200, satnum=90001),   # GEO ~60 E
        satellite(t0, 1.00275, 0.0002, 1.20, 5.0, 30, 268, satnum=90002),    # GEO ~65 E, inclined
        satellite(t0, 15.2, 0.001, 97.5, 120, 90, 270, bstar=1e-4, satnum=90003),
        satellite(t0, 15.05, 0.0015, 53.0, 40, 10, 100, bstar=5e-5, satnum=90004),
        satellite(t0, 14.3, 0.002, 70.0, 200, 200, 20, bstar=2e-5, satnum=90005),
    ]
    tracklets, truth = [], []
    for k, sat in enumerate(sats):
        for station in ("iran", "pakistan", "peru"):
            if sat.no_kozai * 1440 / (2 * np.pi) < 2:  # GEO: three tracklets over the night
                trs = [tracklet(sat, station, s, rng) for s in pick_starts(visibility(sat, station, t0, hours=22), 3, 3600)]
            else:
                trs = pass_tracklets(sat, station, t0, rng)
            tracklets += trs
            truth += [k] * len(trs)
    return tracklets, np.array(truth), sats


def small_mixed_night(seed=5):
    """Two GEO objects (one per station) and three LEO objects over the three stations,
    at most two passes per station: (tracklets, truth object per tracklet, satellites)."""
    rng = np.random.default_rng(seed)
    t0 = Time("2026-11-20T12:00:00", scale="utc")
    sats = [
        satellite(t0, 1.00272, 0.0004, 0.06, 0.0, 100, 200, satnum=90001),   # GEO ~60 E
        satellite(t0, 1.00275, 0.0002, 1.20, 5.0, 30, 268, satnum=90002),    # GEO ~65 E, inclined
        satellite(t0, 15.2, 0.001, 97.5, 120, 90, 270, bstar=1e-4, satnum=90003),
        satellite(t0, 15.05, 0.0015, 53.0, 40, 10, 100, bstar=5e-5, satnum=90004),
        satellite(t0, 14.3, 0.002, 70.0, 200, 200, 20, bstar=2e-5, satnum=90005),
    ]
    plan = {0: ["iran"], 1: ["pakistan"], 2: ["iran", "pakistan", "peru"], 3: ["iran", "pakistan", "peru"],
            4: ["iran", "pakistan", "peru"]}
    tracklets, truth = [], []
    for k, sat in enumerate(sats):
        for station in plan[k]:
            if k < 2:
                trs = [tracklet(sat, station, s, rng) for s in pick_starts(visibility(sat, station, t0, hours=22), 3, 3600)]
            else:
                trs = pass_tracklets(sat, station, t0, rng, max_passes=2)
            tracklets += trs
            truth += [k] * len(trs)
    order = rng.permutation(len(tracklets))  # no help from the input order
    return [tracklets[i] for i in order], np.array(truth)[order], sats


def association_score(object_of, truth):
    """(fraction of tracklets whose object is the truth's majority group, wrongly grouped count)."""
    right = wrong = 0
    for g in set(object_of[object_of >= 0]):
        members = truth[object_of == g]
        major = np.bincount(members).argmax()
        right += int(np.sum(members == major))
        wrong += int(np.sum(members != major))
    return right / len(truth), wrong


def commit_uct_run(db, station, tracklets):
    """Commit ``tracklets`` (Tables of :func:`tracklet`) of ``station`` to the store ``db`` as
    one run: a frame per tracklet holding its observations, the tracklets linked and
    correlated as UCTs (what ``aposos reduce`` commits for tracklets no TLE explains)."""
    db.begin_run(station, pipeline_version="0.1.0")
    members, labels = [], []
    for k, t in enumerate(tracklets):
        h = f"{station}-{k}-{t['time'][0].isot}"
        times = Time(t["time"])
        rec = db_rows.FrameRecord(path=f"/data/{station}/{k}.fits", content_hash=h, station=station,
                                  t_start=times[0], t_mid=times[len(t) // 2], t_end=times[-1],
                                  exposure_s=(times[-1] - times[0]).sec)
        obs = {"time_ns": db_schema.time_to_ns(times), "ra_deg": np.asarray(t["ra_deg"]),
               "dec_deg": np.asarray(t["dec_deg"]), "sigma_arcsec": np.asarray(t["sigma_arcsec"]),
               "kind": ["point"] * len(t), "end": np.full(len(t), -1), "source_index": np.arange(len(t))}
        db.commit_frame(rec, observations=obs)
        members += [(f"{station}{k}", h, i) for i in range(len(t))]
        labels.append(f"{station}{k}")
    n = len(labels)
    db.commit_tracklets(Table(rows=members, names=("tracklet", "content_hash", "obs_index")),
                        correlations=Table({"tracklet": labels, "norad_id": np.zeros(n, int), "status": ["uct"] * n,
                                            "along_track_arcsec": np.full(n, np.nan),
                                            "cross_track_arcsec": np.full(n, np.nan), "score": np.full(n, np.nan)}))
    db.end_run()
