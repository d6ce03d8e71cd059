"""Scale benchmark of the observation store: queries by object and by time at 10 M observations.

    PYTHONPATH=. python benchmarks/bench_db.py [--obs 10000000] [--dir /tmp/aposos-bench-db]

Builds a synthetic store (a year of nights, 3 stations, 100 observations per frame, tracklets
of 10 observations each identified with one of 20 000 NORAD ids) in one segment, then
times in a *fresh process state* (new Store object, files in the page cache):

* opening the store and the first query (which builds the in-memory view of the small tables);
* ``object_history(norad_id)`` and ``observations(norad_id=...)`` for random objects;
* ``observations(start=, end=)`` for random one-hour and 24-hour windows;
* the same after 40 per-frame commits (delta segments) are added on top;

and, as the reference of the same run, one numpy pass over the 10 M time column held in memory
(what a flat array scan costs). Times are medians (and max) over the repetitions.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time

import numpy as np

from aposos.db import Store, schema, synthetic


def _timed(fn, repeat):
    times, out = [], None
    for args in repeat:
        t = time.perf_counter()
        out = fn(*args)
        times.append(time.perf_counter() - t)
    return np.array(times), out


def build(path, n_obs, obs_per_frame=100):
    shutil.rmtree(path, ignore_errors=True)
    t = time.perf_counter()
    tables = synthetic.bulk_tables(n_obs // obs_per_frame, obs_per_frame)
    t_gen = time.perf_counter() - t
    t = time.perf_counter()
    with Store.open(path, "a") as db:
        db.commit_arrays(tables)
    t_write = time.perf_counter() - t
    size = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(path) for f in fs)
    return tables, t_gen, t_write, size


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--obs", type=int, default=10_000_000)
    ap.add_argument("--dir", default="/tmp/aposos-bench-db")
    ap.add_argument("--keep", action="store_true", help="keep the store afterwards")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(3)

    tables, t_gen, t_write, size = build(args.dir, args.obs)
    n_obs = len(tables["observations"])
    time_col = np.array(tables["observations"]["time_ns"])
    norads = rng.choice(np.unique(tables["correlations"]["norad_id"]), 20, replace=False)
    del tables
    print(f"store: {n_obs:,} observations, {size / 1e9:.2f} GB on disk; "
          f"generated in {t_gen:.1f} s, committed in {t_write:.1f} s")

    t = time.perf_counter()
    db = Store.open(args.dir, "r")
    t_open = time.perf_counter() - t
    t = time.perf_counter()
    first = db.object_history(int(norads[0]))
    t_first = time.perf_counter() - t
    print(f"open: {t_open * 1e3:.0f} ms; first query (builds the view): {t_first * 1e3:.0f} ms "
          f"({len(first)} rows)")

    obj, hist = _timed(lambda n: db.object_history(int(n)), [(n,) for n in norads])
    obs_only, _ = _timed(lambda n: db.observations(norad_id=int(n)), [(n,) for n in norads])
    t0, t1 = time_col.min(), time_col.max()
    hour = 3600 * 10**9
    nights = rng.integers(0, (t1 - t0) // (24 * hour), 20)  # windows starting in the night
    starts = t0 + nights * 24 * hour + rng.integers(0, 9 * hour, 20)
    win_h, got_h = _timed(lambda s: db.observations(start=schema.ns_to_time(s),
                                                    end=schema.ns_to_time(s + hour)),
                          [(s,) for s in starts])
    win_n, got_n = _timed(lambda s: db.observations(start=schema.ns_to_time(s),
                                                    end=schema.ns_to_time(s + 24 * hour)),
                          [(s,) for s in starts])
    scan, _ = _timed(lambda s: np.nonzero((time_col >= s) & (time_col <= s + hour))[0],
                     [(s,) for s in starts])
    ref = np.median(scan)

    def row(name, ts, rows):
        print(f"{name:42s} median {np.median(ts) * 1e3:8.1f} ms  max {ts.max() * 1e3:8.1f} ms"
              f"  {rows:>7} rows  {np.median(ts) / ref:6.1f} x numpy scan")

    print(f"reference: numpy pass over the {n_obs:,}-row time column in memory: "
          f"{ref * 1e3:.1f} ms")
    row("object_history(norad_id)", obj, len(hist))
    row("observations(norad_id=)", obs_only, len(hist))
    row("observations(start=, end=) 1 hour", win_h, len(got_h))
    row("observations(start=, end=) 24 hours", win_n, len(got_n))
    t = time.perf_counter()
    s = db.summary()
    print(f"summary: {(time.perf_counter() - t) * 1e3:.0f} ms  {s}")
    # a night being written on top: 40 per-frame commits (delta segments) not yet compacted
    with Store.open(args.dir, "a", max_segments=0) as w:
        w.begin_run("lab")
        for i in range(40):
            w.commit_frame(*synthetic.frame("lab", i))
    t = time.perf_counter()
    db2 = Store.open(args.dir, "r")
    db2.object_history(int(norads[1]))
    t_open2 = time.perf_counter() - t
    obj2, _ = _timed(lambda n: db2.object_history(int(n)), [(n,) for n in norads])
    win2, _ = _timed(lambda s: db2.observations(start=schema.ns_to_time(s),
                                                end=schema.ns_to_time(s + 24 * hour)),
                     [(s,) for s in starts])
    print(f"with {len(db2.segments) - 1} delta segments on top: open + first query "
          f"{t_open2 * 1e3:.0f} ms")
    row("  object_history(norad_id)", obj2, len(hist))
    row("  observations(start=, end=) 24 hours", win2, len(got_n))
    worst = max(obj.max(), win_n.max(), t_open + t_first, t_open2, obj2.max(), win2.max())
    print(f"WORST query (incl. open + first): {worst:.3f} s -> {'OK' if worst < 1 else 'SLOW'}"
          " (target < 1 s)")
    if not args.keep:
        shutil.rmtree(args.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
