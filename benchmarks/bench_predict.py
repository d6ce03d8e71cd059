"""Screening benchmark: the whole real catalog against a night of frames.

    PYTHONPATH=. python benchmarks/bench_predict.py [--frames 1000] [--catalog PATH] [--verify]
    PYTHONPATH=. python benchmarks/bench_predict.py --residuals

Reports, in one run: raw ``SatrecArray`` throughput (propagations/s), the screening time and
its throughput in objects x frame-epochs per second, the ratio of the two, and the counts at
each stage. Fields: ``--frames`` exposures of 10 s spread over the night of 2021-05-29 at the
Iran station, pointed at random azimuths above 20 deg elevation (radius 2 deg, the camera's
field); a third of them centred on a visible catalog object.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import AltAz, SkyCoord
from astropy.table import Table
from astropy.time import Time
from sgp4.api import SatrecArray

from aposos import predict as P
from aposos import screen as S
from aposos import tle
from aposos.config import load_station

CATALOG = next((p / "shared" / "realdata" / "tle" / "full_catalog_2021-05-29.txt"
                for p in Path(__file__).resolve().parents[1:4]
                if (p / "shared" / "realdata").is_dir()), Path("full_catalog_2021-05-29.txt"))


def night_fields(catalog, station, n_frames, seed=0, exposure_s=10.0, radius_deg=2.0):
    rng = np.random.default_rng(seed)
    t0 = Time("2021-05-29T16:00:00", scale="utc")
    ts = t0 + np.sort(rng.uniform(0, 8.5 * 3600, n_frames)) * u.s
    loc = load_station(station).location
    altaz = SkyCoord(AltAz(az=rng.uniform(0, 360, n_frames) * u.deg,
                           alt=np.degrees(np.arcsin(rng.uniform(np.sin(np.radians(20)), 1, n_frames))) * u.deg,
                           obstime=ts, location=loc))
    icrs = altaz.icrs
    ra, dec = icrs.ra.deg, icrs.dec.deg
    sub = catalog.entries[:: max(1, len(catalog) // 3000)]
    pick = np.arange(0, n_frames, 3)
    pr = P.predict(sub, station, ts[pick] + exposure_s / 2 * u.s)
    for j, f in enumerate(pick):
        vis = np.flatnonzero(pr.elevation_deg[:, j] > 20)
        if len(vis):
            o = rng.choice(vis)
            ra[f], dec[f] = pr.ra_deg[o, j], pr.dec_deg[o, j]
    return Table(dict(t_start=ts, t_end=ts + exposure_s * u.s, ra_deg=ra, dec_deg=dec,
                      radius_deg=np.full(n_frames, radius_deg)))


def brute_force(entries, station, fields, step_s=0.25):
    """{(frame, norad)} of objects inside a field (above the horizon) at some instant sampled every ``step_s``."""
    hits = set()
    for f, row in enumerate(fields):
        dur = (row["t_end"] - row["t_start"]).to_value(u.s)
        p = P.predict(entries, station, row["t_start"] + np.linspace(0, dur, int(round(dur / step_s)) + 1) * u.s)
        c = np.radians([row["ra_deg"], row["dec_deg"]])
        ra, dec = np.radians(p.ra_deg), np.radians(p.dec_deg)
        cos_sep = np.sin(dec) * np.sin(c[1]) + np.cos(dec) * np.cos(c[1]) * np.cos(ra - c[0])
        inside = (cos_sep >= np.cos(np.radians(row["radius_deg"]))) & (p.elevation_deg > 0)
        hits |= {(f, int(n)) for n in p.norad_id[inside.any(axis=1)]}
    return hits


def residuals_vs_truth(n=60, hours=12, n_times=25):
    """Prediction minus the simulator's truth (skyfield path) for a synthetic catalog at the
    three stations: visible epochs only; returns {station: (median, max) arcsec}."""
    from astropy.coordinates import SkyCoord

    from aposos.simulate import satellites as truth
    from aposos.simulate.tles import random_catalog

    epoch = Time("2026-11-21T12:00:00", scale="utc")
    cat = random_catalog(n, epoch, seed=11)
    times = epoch + np.linspace(0, hours * 3600, n_times) * u.s
    out = {}
    for name in ("iran", "pakistan", "peru"):
        st = load_station(name)
        p = P.predict([(t.line1, t.line2) for t in cat], name, times)
        seps = []
        for i, t in enumerate(cat):
            ra, dec, _, _ = truth.star_relative(t, st, times)
            vis = p.elevation_deg[i] > 0
            sep = SkyCoord(ra * u.deg, dec * u.deg).separation(SkyCoord(p.ra_deg[i] * u.deg, p.dec_deg[i] * u.deg))
            seps.append(sep.arcsec[vis])
        seps = np.concatenate(seps)
        out[name] = (np.median(seps), seps.max(), len(seps))
    return out


def raw_throughput(catalog, n_times=200):
    sats = SatrecArray([e.satrec for e in catalog])
    t = Time("2021-05-29T20:00:00", scale="utc") + np.linspace(0, 3600, n_times) * u.s
    jd1, jd2 = np.ascontiguousarray(t.jd1), np.ascontiguousarray(t.jd2)
    best = np.inf
    for _ in range(3):
        t_ = time.perf_counter()
        sats.sgp4(jd1, jd2)
        best = min(best, time.perf_counter() - t_)
    return len(catalog) * n_times / best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--catalog", default=str(CATALOG))
    ap.add_argument("--station", default="iran")
    ap.add_argument("--step", type=float, default=240.0)
    ap.add_argument("--residuals", action="store_true",
                    help="only: prediction vs the simulator's skyfield truth (synthetic catalog, 3 stations)")
    ap.add_argument("--verify", action="store_true",
                    help="also check against brute force (every 7th object, 60 frames, 0.25 s steps)")
    args = ap.parse_args()
    if args.residuals:
        for name, (med, mx, n) in residuals_vs_truth().items():
            print(f"predict vs simulator truth, {name}: median {med:.5f} arcsec, max {mx:.5f} arcsec ({n} visible epochs)")
        return

    t = time.perf_counter()
    cat = tle.load_catalog(args.catalog)
    t_load = time.perf_counter() - t
    print(f"catalog: {cat.summary()} ({t_load:.2f} s)")
    fields = night_fields(cat, args.station, args.frames)
    raw = raw_throughput(cat)
    print(f"raw SatrecArray: {raw / 1e6:.2f} M propagations/s")
    S.screen(cat.entries[:50], args.station, fields[:5])  # compile the numba kernel (cached)
    t = time.perf_counter()
    out = S.screen(cat, args.station, fields, step_s=args.step)
    dt = time.perf_counter() - t
    m = out.meta
    pairs = len(cat) * len(fields)
    print(f"screen: {len(cat)} objects x {len(fields)} frames in {dt:.1f} s "
          f"({pairs / dt / 1e6:.2f} M object-frames/s; a brute-force SGP4 pass at 3 epochs per "
          f"frame would take {3 * pairs / raw:.0f} s, {3 * pairs / dt / raw:.1f}x slower)")
    print(f"  knots {m['knots']}, coarse propagations {m['propagations_coarse'] / 1e6:.1f} M "
          f"({m['propagations_coarse'] / raw:.1f} s of raw SGP4), gate candidates {m['candidates']}, "
          f"crossings {m['crossings']} in {len(np.unique(out['frame']))} frames")
    print("  seconds per stage: " + ", ".join(f"{k} {v:.1f}" for k, v in m["seconds"].items()))
    if args.verify:
        sub, few = cat.entries[::7], fields[::len(fields) // 60][:60]
        t = time.perf_counter()
        truth = brute_force(sub, args.station, few)
        tb = time.perf_counter() - t
        got = {(int(r["frame"]), int(r["norad_id"])) for r in S.screen(sub, args.station, few, step_s=args.step)}
        print(f"  verify: {len(sub)} objects x {len(few)} frames, brute force {len(truth)} crossings ({tb:.0f} s), "
              f"screen {len(got)}: missed {len(truth - got)}, extra {len(got - truth)}")
    print(f"  ratio screen time / raw-SGP4 time of the coarse grid: {dt / (m['propagations_coarse'] / raw):.2f}")


if __name__ == "__main__":
    main()
