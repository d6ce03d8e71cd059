"""Identification statistics of aposos.correlate against simulator truth (no images).

A simulated night for the three configured stations: a truth catalog (LEO/MEO/GEO mix, plus
crowded GEO clusters -- co-located satellites a few tenths of a degree apart -- over each
station), point observations of each visible object taken from the simulator's skyfield path
(:func:`aposos.simulate.satellites.star_relative`, never from :mod:`aposos.predict`) with
Gaussian noise and a per-tracklet clock error, linked into tracklets by
:func:`aposos.link.link`, then correlated against the *published* catalog: every object's TLE
aged by 0-3 days with :func:`aposos.simulate.tles.aged` (along-track error 1-3 km per day of
age, the growth seen in public catalogs) and a share of the observed objects removed
(uncatalogued objects, which must come out UCT).

Used by tests/test_correlate.py (a few hundred tracklets) and benchmarks/correlation.py (the
full measurement, thousands).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.table import Table, vstack
from astropy.time import Time

from aposos.config import load_station
from aposos.link import link
from aposos.simulate import satellites
from aposos.simulate import tles as simtles

STATIONS = ("iran", "pakistan", "peru")
DAY_START = Time("2026-11-21T12:00:00", scale="utc")  # the night of 21/22 Nov at all three
MIN_ALT_DEG = 20.0


@dataclass
class Night:
    """Truth catalog, tracklets (all stations) and the published catalog's ingredients."""

    truth: list            # simtles.Tle, perfect elements
    tracklets: Table       # link output + 'station', 'truth_norad', 'regime', 'cluster'
    observations: Table    # linked observations, tracklet ids unique over stations


@functools.cache
def night_window(station_name: str, step_s: float = 600.0) -> tuple[Time, Time]:
    """Start and end (UTC) of the station's astronomical-twilight-to-twilight night."""
    grid = DAY_START + np.arange(0, 86400, step_s) * u.s
    dark = satellites.sun_altitude_deg(load_station(station_name), grid) < -12.0
    k = np.flatnonzero(dark)
    return grid[k[0]], grid[k[-1]]


def _geo_clusters(rng, station_name, n_clusters, members, first_norad, spacing_deg):
    """Co-located GEO satellites over ``station_name``: longitudes ``spacing_deg`` apart."""
    station = load_station(station_name)
    t0, t1 = night_window(station_name)
    t_mid = t0 + (t1 - t0) / 2
    out, norad = [], first_norad
    for c in range(n_clusters):
        lon0 = station.lon_deg + rng.uniform(-45.0, 45.0)
        lons = lon0 + np.cumsum(rng.uniform(*spacing_deg, members))
        for lon in lons:
            out.append(simtles.designed_geo(norad, t_mid, float(lon), inc_deg=float(rng.uniform(0.0, 0.1)),
                                            name=f"SIM GEO CLUSTER {station_name} {c} {norad}"))
            norad += 1
    return out


def _twilight_leos(rng, station_name, n, first_norad):
    """LEOs passing within ~10 deg of the station's zenith in the first or last hour of its
    night (still sunlit at 600-1500 km): ``[(tle, t_pass)]``."""
    station = load_station(station_name)
    t0, t1 = night_window(station_name)
    out = []
    for k in range(n):
        late = rng.random() < 0.5
        t_pass = (t1 - rng.uniform(0, 3600) * u.s) if late else (t0 + rng.uniform(0, 3600) * u.s)
        inc = float(rng.choice([53.0, 70.0, 86.0, 98.0]))
        lat = float(np.clip(station.lat_deg + rng.uniform(-8, 8), -inc + 1, inc - 1))
        tle = simtles.designed_leo(first_norad + k, t_pass, lat, station.lon_deg + rng.uniform(-8, 8),
                                   alt_km=float(rng.uniform(600, 1500)), inc_deg=inc,
                                   descending=bool(rng.random() < 0.5))
        out.append((tle, t_pass))
    return out


def truth_catalog(n_random: int, seed: int, clusters_per_station: int = 3, cluster_members: int = 4,
                  cluster_spacing_deg=(0.1, 0.4), leo_per_station: int = 10):
    """Random LEO/MEO/GEO objects (epochs within 6 h before the nights), GEO clusters over each
    station and twilight LEO passes. Returns ``(tles, passes)``: ``passes[norad] = (station,
    t_pass)`` for the designed LEOs."""
    rng = np.random.default_rng(seed)
    cat = simtles.random_catalog(n_random, DAY_START, seed=seed, mix={"LEO": 0.3, "MEO": 0.3, "GEO": 0.4},
                                 epoch_spread_days=0.25)
    norad, passes = 70001, {}
    for name in STATIONS:
        cl = _geo_clusters(rng, name, clusters_per_station, cluster_members, norad, cluster_spacing_deg)
        cat += cl
        norad += len(cl)
        for tle, t_pass in _twilight_leos(rng, name, leo_per_station, norad):
            cat.append(tle)
            passes[tle.norad] = (name, t_pass)
        norad += leo_per_station
    return cat, passes


def _sequence_times(rng, t0, t1, regime, n_seq, t_pass=None):
    """``n_seq`` candidate sequences (start times s after ``t0``, frame offsets s) in the night
    (LEO passes: within 5 min of ``t_pass``)."""
    if regime == "LEO":  # short arcs: a LEO crosses a small field in seconds
        n_frames, cadence = int(rng.integers(4, 8)), rng.uniform(2.0, 6.0)
    else:
        n_frames, cadence = int(rng.integers(4, 8)), rng.uniform(20.0, 60.0)
    if t_pass is not None:
        starts = (t_pass - t0).to_value("s") + np.sort(rng.uniform(-300.0, 300.0, n_seq))
        return np.clip(starts, 0.0, None), np.arange(n_frames) * cadence
    span = (t1 - t0).to_value("s") - n_frames * cadence
    starts = np.sort(rng.uniform(0.0, span, n_seq))
    return starts, np.arange(n_frames) * cadence


def observe_sequences(tle, station_name, rng, n_seq=4, max_keep=2, sigma_arcsec=(0.7, 2.5), clock_sigma_s=3e-3,
                      t_pass=None):
    """Noisy point observations of up to ``max_keep`` visible (sunlit, alt > 20 deg) sequences.

    One skyfield call per object and station; returns a list of Tables (one per sequence),
    with the noise-free truth at the recorded times in ``ra_truth, dec_truth``.
    """
    station = load_station(station_name)
    t0, t1 = night_window(station_name)
    starts, offsets = _sequence_times(rng, t0, t1, tle.regime, n_seq, t_pass)
    t_rel = (starts[:, None] + offsets[None, :]).ravel()
    clock = rng.normal(0.0, clock_sigma_s, n_seq)  # the station's clock error, per sequence
    n_t = len(t_rel)
    # truth at the true exposure instants (observed) and at the recorded ones (physics checks)
    t_true = t_rel + np.repeat(clock, len(offsets))
    ra, dec, _, st = satellites.star_relative(tle, station, t0 + np.r_[t_true, t_rel] * u.s)
    ra_rec, dec_rec = ra[n_t:], dec[n_t:]
    alt = satellites.altitude_deg(station, st["t"], st["r_km"])[:n_t]
    lit = satellites.illuminated_fraction(st["sat_gcrs_km"], satellites.sun_gcrs_km(st["t_emit"]))[:n_t]
    ok = ((alt > MIN_ALT_DEG) & (lit > 0.99) & ~st["sgp4_failed"][:n_t]).reshape(n_seq, -1).all(axis=1)
    out = []
    for k in np.flatnonzero(ok)[:max_keep]:
        sl = slice(k * len(offsets), (k + 1) * len(offsets))
        sig = rng.uniform(*sigma_arcsec)
        n = len(offsets)
        d_dec = rng.normal(0.0, sig, n) / 3600.0
        d_ra = rng.normal(0.0, sig, n) / 3600.0 / np.cos(np.radians(dec[sl]))
        times = t0 + t_rel[sl] * u.s  # the recorded (clock) times
        out.append(Table({"time": times, "ra_deg": ra[sl] + d_ra, "dec_deg": dec[sl] + d_dec,
                          "sigma_arcsec": np.full(n, sig), "ra_truth": ra_rec[sl], "dec_truth": dec_rec[sl],
                          "source_index": np.zeros(n, int),
                          "kind": np.full(n, "point"), "end": np.full(n, -1),
                          "frame": [f"{station_name}_{tle.norad}_{k}_{i:02d}" for i in range(n)]}))
    return out


def simulate_night(truth, passes, seed: int, n_seq: int = 4, max_keep: int = 2) -> Night:
    """Tracklets of every visible truth object at every station (``max_keep`` per object and
    station); random LEOs (rarely sunlit at night) are left as catalog background."""
    rng = np.random.default_rng(seed)
    trk_tables, obs_tables = [], []
    tid = 0
    for name in STATIONS:
        for tle in truth:
            if tle.regime == "LEO" and passes.get(tle.norad, ("",))[0] != name:
                continue
            t_pass = passes[tle.norad][1] if tle.norad in passes else None
            for seq in observe_sequences(tle, name, rng, n_seq=n_seq, max_keep=max_keep, t_pass=t_pass):
                t, o = link(seq)
                if len(t) != 1:
                    continue
                o = o[o["tracklet"] >= 0]
                o["tracklet"] = tid
                t["tracklet"] = tid
                t["station"] = name
                t["truth_norad"] = tle.norad
                t["regime"] = tle.regime
                t["cluster"] = "CLUSTER" in tle.name
                trk_tables.append(t)
                obs_tables.append(o)
                tid += 1
    return Night(truth, vstack(trk_tables), vstack(obs_tables))


def published(truth, rng, max_age_days=2.2, km_per_day=(1.0, 3.0)) -> list:
    """The catalog an operator has: each TLE aged by up to ``max_age_days`` (uniform; a quarter
    of them fresh, age 0) with an along-track error growth drawn in ``km_per_day``."""
    out = []
    for t in truth:
        age = 0.0 if rng.random() < 0.25 else rng.uniform(0.0, max_age_days)
        out.append(simtles.aged(t, age, km_per_day=rng.uniform(*km_per_day), seed=int(rng.integers(1 << 30))))
    return out


def correlate_night(night: Night, catalog_tles, correlate_kw=None):
    """Correlate each station's tracklets against ``catalog_tles``; results with truth columns."""
    from aposos.correlate import correlate
    from aposos.tle import as_entries

    rows = []
    entries = as_entries([(t.line1, t.line2) for t in catalog_tles])
    for name in STATIONS:
        sel = night.tracklets["station"] == name
        if not sel.any():
            continue
        trk = night.tracklets[sel]
        obs = night.observations[np.isin(night.observations["tracklet"], trk["tracklet"])]
        res, _ = correlate(trk, obs, entries, load_station(name), **(correlate_kw or {}))
        for c in ("station", "truth_norad", "regime", "cluster"):
            res[c] = trk[c]
        res["truth_age_days"] = _truth_ages(entries, trk)
        rows.append(res)
    return vstack(rows)


def _truth_ages(entries, trk) -> np.ndarray:
    """Age (days) at ``t_ref`` of the published TLE of each tracklet's object (NaN: removed)."""
    epoch = {e.norad_id: e.epoch_jd for e in entries}
    t = Time(trk["t_ref"]).utc
    return np.array([(t.jd1[k] - epoch[n][0]) + (t.jd2[k] - epoch[n][1]) if n in epoch else np.nan
                     for k, n in enumerate(np.asarray(trk["truth_norad"], int))])


def figures(res: Table, removed: set, max_age_days: float = 3.0) -> dict:
    """The issue's figures: correct/wrong identification rates, UCT rate of removed objects."""
    truth = np.asarray(res["truth_norad"])
    is_removed = np.isin(truth, list(removed))
    ident = np.asarray(res["status"]) == "identified"
    right = ident & (np.asarray(res["norad_id"]) == truth)
    wrong = ident & ~right
    known = ~is_removed & (np.asarray(res["truth_age_days"], float) <= max_age_days)
    return {"tracklets": len(res), "known": int(known.sum()), "removed": int(is_removed.sum()),
            "correct": float(right[known].mean()), "wrong": float(wrong.mean()),
            "removed_uct": float((np.asarray(res["status"])[is_removed] == "uct").mean()),
            "n_wrong": int(wrong.sum()), "n_ambiguous": int((np.asarray(res["status"]) == "ambiguous").sum()),
            "n_known_uct": int(((np.asarray(res["status"]) == "uct") & ~is_removed).sum())}
