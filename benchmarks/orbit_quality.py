"""Print the quality figures of aposos.orbit (issue 6 bars) over many noise draws.

``python benchmarks/orbit_quality.py [geo|design|leo|assoc ...]`` (default: all; a few minutes).
Truth: SGP4 truth objects seen through aposos.directions (tests/orbit_truth.py), Gaussian
noise of 1 arcsec per coordinate.

* geo: GEO object, three tracklets from Iran spread over the night (11.5 h), 24 h
  prediction error vs the formal 1-sigma of the fit, fraction within 5 km, RMS / noise; for
  2-min tracklets of 10 points (the tests' design) and 10-min tracklets of 30 points.
* design: formal 24 h position sigma (1 arcsec) vs night span and tracklet length (GEO).
* leo: LEO seen by Pakistan and Iran in one night, 12 h prediction error over draws and objects.
* assoc: association of mixed nights (five UCTs as in the tests; twelve UCTs) over noise seeds.
* store: the mixed night committed per station into a store as UCTs, then the data-centre
  step (:func:`aposos.orbit.store_orbits`): association and 24 h prediction error per orbit.
"""

import sys
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.time import Time

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import orbit_truth as ot  # noqa: E402

from aposos.orbit import associate, determine_orbit  # noqa: E402

T0 = Time("2026-11-20T12:00:00", scale="utc")
GEO = dict(n_rev_day=1.00273, e=0.0003, i_deg=0.05, raan_deg=0.0, argp_deg=100, m_deg=200)


def geo_draws(n_points=10, span_s=120.0, draws=60, sigma=1.0, seed0=100):
    """(24 h errors km, formal sigmas km, rms/noise) of GEO fits over noise draws."""
    sat = ot.satellite(T0, **GEO)
    starts = ot.pick_starts(ot.visibility(sat, "iran", T0), 3, 3600)
    errors, sigmas, ratios = [], [], []
    for k in range(draws):
        rng = np.random.default_rng(seed0 + k)
        trs = [ot.tracklet(sat, "iran", s, rng, n=n_points, span_s=span_s, sigma_arcsec=sigma) for s in starts]
        sol = determine_orbit(trs)
        later = Time(trs[-1]["time"][-1]) + 24 * u.h
        if not sol.determined:
            errors.append(np.inf), sigmas.append(np.nan), ratios.append(np.nan)
            continue
        errors.append(ot.separation_km(sol.satrec, sat, later.reshape(1))[0])
        sigmas.append(sol.position_sigma_km(later))
        ratios.append(sol.rms_arcsec / sigma)
    return np.array(errors), np.array(sigmas), np.array(ratios)


def geo():
    for n_points, span_s in ((10, 120.0), (30, 600.0)):
        e, s, q = geo_draws(n_points, span_s)
        print(f"GEO, Iran, 3 x {n_points} points over {span_s:.0f} s, 11.5 h night, 1 arcsec, {len(e)} draws: "
              f"within 5 km {np.mean(e < 5):.0%}, 24 h error median {np.median(e):.2f} km, RMS {np.sqrt(np.mean(e ** 2)):.2f} km, "
              f"max {e.max():.1f} km; formal 1-sigma median {np.nanmedian(s):.2f} km; "
              f"RMS/noise mean {np.nanmean(q):.2f}, max {np.nanmax(q):.2f}")


def design():
    sat = ot.satellite(T0, **GEO)
    vis = ot.visibility(sat, "iran", T0)
    full_h = (vis[-1] - vis[0]).to_value(u.h)
    rng = np.random.default_rng(0)
    print("GEO formal 24 h position sigma (km) at 1 arcsec, three tracklets from Iran (start, middle, end of the span)")
    print("span h | " + " | ".join(f"3 x {n} pts / {s} s" for n, s in ((10, 120), (20, 300), (30, 600), (60, 600))))
    for span_h in (6.0, 8.0, 10.0, full_h - 0.1):
        row = []
        for n, length in ((10, 120), (20, 300), (30, 600), (60, 600)):
            starts = [vis[0] + f * (span_h * u.h - length * u.s) for f in (0, 0.5, 1)]
            trs = [ot.tracklet(sat, "iran", s, rng, n=n, span_s=length, sigma_arcsec=1e-5) for s in starts]
            for t in trs:
                t["sigma_arcsec"] = 1.0  # noise-free directions weighted as 1 arcsec: the formal sigma
            sol = determine_orbit(trs)
            row.append(sol.position_sigma_km(Time(trs[-1]["time"][-1]) + 24 * u.h) if sol.determined else np.nan)
        print(f"{span_h:6.1f} | " + " | ".join(f"{v:18.2f}" for v in row))


LEOS = [
    dict(n_rev_day=15.2, e=0.001, i_deg=97.5, raan_deg=120, argp_deg=90, m_deg=270, bstar=1e-4),
    dict(n_rev_day=15.05, e=0.0015, i_deg=53.0, raan_deg=40, argp_deg=10, m_deg=100, bstar=5e-5),
    dict(n_rev_day=14.3, e=0.002, i_deg=70.0, raan_deg=200, argp_deg=200, m_deg=20, bstar=2e-5),
]


def leo_draws(elements, draws=8, seed0=200):
    """12 h prediction errors (km) and rms/noise of a LEO seen by Pakistan and Iran (first pass each)."""
    sat = ot.satellite(T0, **elements)
    errors, ratios = [], []
    for k in range(draws):
        rng = np.random.default_rng(seed0 + k)
        trs = (ot.pass_tracklets(sat, "pakistan", T0, rng, hours=14, max_passes=1)
               + ot.pass_tracklets(sat, "iran", T0, rng, hours=14, max_passes=1))
        if len({t["station"][0] for t in trs}) < 2:
            return None
        sol = determine_orbit(trs)
        later = (max(Time(t["time"][-1]) for t in trs) + 12 * u.h).reshape(1)
        errors.append(ot.separation_km(sol.satrec, sat, later)[0] if sol.determined else np.inf)
        ratios.append(sol.rms_arcsec)
    return np.array(errors), np.array(ratios), len(trs)


def leo():
    for el in LEOS:
        out = leo_draws(el)
        if out is None:
            print(f"LEO n={el['n_rev_day']} i={el['i_deg']}: not seen by both stations in this night")
            continue
        e, q, n = out
        print(f"LEO n={el['n_rev_day']} rev/day i={el['i_deg']} deg, Pakistan + Iran, {n} tracklets, {len(e)} draws: "
              f"12 h error median {np.median(e):.2f} km, max {e.max():.2f} km, within 2 km {np.mean(e < 2):.0%}; "
              f"RMS/noise max {q.max():.2f}")


def large_night(seed):
    """Twelve UCTs (six GEO over Iran/Pakistan and Peru, six LEO) seen by the stations that can
    see them: (tracklets in random order, truth object per tracklet)."""
    rng = np.random.default_rng(seed)
    geo = [(55, 0.1), (62, 2.5), (75, 0.02), (95, 0.8), (-70, 0.05), (-85, 1.5)]  # east longitude, inclination
    sats = [ot.satellite(T0, 1.00273, 0.0003, inc, 0.0, 100, (200 + lon - 60) % 360, satnum=91000 + k)
            for k, (lon, inc) in enumerate(geo)]
    sats += [ot.satellite(T0, n, e, inc, raan, argp, m, bstar=b, satnum=91100 + k) for k, (n, e, inc, raan, argp, m, b) in
             enumerate([(15.2, 0.001, 97.5, 120, 90, 270, 1e-4), (15.05, 0.0015, 53.0, 40, 10, 100, 5e-5),
                        (14.3, 0.002, 70.0, 200, 200, 20, 2e-5), (14.8, 0.001, 98.2, 150, 40, 330, 8e-5),
                        (13.7, 0.004, 65.0, 300, 120, 200, 1e-5), (15.4, 0.0008, 51.6, 80, 60, 160, 2e-4)])]
    tracklets, truth = [], []
    for k, sat in enumerate(sats):
        for station in ("iran", "pakistan", "peru"):
            if k < len(geo):
                trs = [ot.tracklet(sat, station, s, rng)
                       for s in ot.pick_starts(ot.visibility(sat, station, T0, hours=22), 3, 3600)]
            else:
                trs = ot.pass_tracklets(sat, station, T0, rng, max_passes=2)
            tracklets += trs
            truth += [k] * len(trs)
    order = rng.permutation(len(tracklets))
    return [tracklets[i] for i in order], np.array(truth)[order]


def assoc(seeds=(5, 6)):
    for seed in seeds:
        for name, night in (("mixed_night", ot.mixed_night), ("large_night", large_night)):
            trs, truth = night(seed)[:2]
            res = associate(trs)
            frac, wrong = ot.association_score(res.object_of, truth)
            print(f"{name} seed {seed}: {len(trs)} tracklets of {len(set(truth))} objects from 3 stations: "
                  f"{frac:.1%} to the right object, {wrong} to a wrong one, {len(res.objects)} objects, "
                  f"{res.pairs_fitted} pairs fitted", flush=True)


def store(seed=5):
    import tempfile

    from sgp4.api import Satrec

    from aposos.db import Store
    from aposos.orbit import store_orbits

    trs, truth, sats = ot.mixed_night(seed)
    # truth by the first observation (GEO objects share stations and start times: time and RA)
    key = {(t["station"][0], Time(t["time"][0]).isot, round(float(t["ra_deg"][0]), 6)): k for t, k in zip(trs, truth)}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "store"
        with Store.open(path, "a") as db:
            for station in ("iran", "pakistan", "peru"):
                ot.commit_uct_run(db, station, [t for t in trs if t["station"][0] == station])
        res = store_orbits(path)
        with Store.open(path, "r") as db:
            stored = db.orbits()
            first = [db.observations(tracklet_id=int(tid))[0] for tid in res["tracklet_id"]]
    truth_of = np.array([key[(f["station"], Time(f["time"]).isot, round(float(f["ra_deg"]), 6))] for f in first])
    frac, wrong = ot.association_score(np.asarray(res["object"]), truth_of)
    print(f"store mixed_night seed {seed}: {len(res)} UCT tracklets of {len(set(truth))} objects from 3 stations: "
          f"{frac:.1%} to the right object, {wrong} to a wrong one, {res.meta['orbits']} orbits", flush=True)
    later = (max(Time(t["time"][-1]) for t in trs) + 24 * u.h).reshape(1)
    for o in stored:
        sel = res["orbit_id"] == o["orbit_id"]
        k = int(np.bincount(truth_of[sel]).argmax())
        err = ot.separation_km(Satrec.twoline2rv(o["tle_line1"], o["tle_line2"]), sats[k], later)[0]
        print(f"  object {k}: {int(sel.sum())} tracklets from {', '.join(sorted(set(res['station'][sel])))}, "
              f"rms {o['rms_arcsec']:.2f} arcsec, 24 h after the night's end {err:.2f} km", flush=True)


if __name__ == "__main__":
    parts = sys.argv[1:] or ["geo", "design", "leo", "assoc"]
    for part in parts:
        globals()[part]()
