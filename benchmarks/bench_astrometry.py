"""Plate solving: aposos (hinted) against astrometry.net (blind) on the same centroids.

    PYTHONPATH=. python benchmarks/bench_astrometry.py [--fields 10] [--sweep 0] [--hint 1.0]

Fields: synthetic source lists (``aposos.astrometry.synthetic.make_field``) of random sky
positions for the three stations, 1024 x 1024 binned frames (2-3 deg), TAN + SIP order 3
truth (astropy WCS) with 3 px at the corners, centroid noise, 5 % missing stars, 50 faint
non-catalog stars and 20 false sources; header hint ``--hint`` deg off.

Per solver: success rate, wrong solutions (solved but > 1 px off the truth anywhere on the
frame), median solve time and the RMS of the plate error over the frame vs truth (px). The
reference is astrometry.net through the PyPI package ``astrometry`` with Debian's
``astrometry-data-tycho2`` index files (/usr/share/astrometry), solving *blind* (no position
hint; scale hint +-20 %; both parities) from the brightest 60 centroids passed 1-based. Both
optional: without them only aposos is measured and the comparison is skipped with the reason.
Figures are ratios measured in one run (the machine is shared; absolute times are noisy).

``--sweep N`` additionally runs aposos alone on N fields per station (success and wrong-solution
counts for the quality bars, fields with >= 15 catalog stars).
"""

from __future__ import annotations

import argparse
import glob
import time

import numpy as np

from aposos.astrometry import solve
from aposos.astrometry.synthetic import make_field

STATIONS = {"iran": 4, "pakistan": 2, "peru": 3}
INDEX_GLOB = "/usr/share/astrometry/index-tycho2-*.fits"


def plate_errors_px(field, wcs, n=400):
    ny, nx = field.frame.shape
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0, nx - 1, n), rng.uniform(0, ny - 1, n)
    ra, dec = wcs.all_pix2world(x, y, 0)
    xt, yt = field.wcs.all_world2pix(ra, dec, 0, tolerance=1e-8, maxiter=100, quiet=True)
    return np.hypot(xt - x, yt - y)


def anet_solver():
    """astrometry.net solver on the Debian Tycho-2 index files, or (None, reason)."""
    try:
        import astrometry
    except ImportError:
        return None, "PyPI package 'astrometry' not installed"
    files = sorted(glob.glob(INDEX_GLOB))
    if not files:
        return None, f"no index files at {INDEX_GLOB} (apt-get install astrometry-data-tycho2)"
    import pathlib

    return astrometry.Solver([pathlib.Path(f) for f in files]), ""


def anet_solve(solver, field, scale_arcsec, n_stars=60):
    import astrometry

    src = field.sources
    order = np.argsort(-np.asarray(src["flux"]))[:n_stars]
    stars = [[float(src["x"][i]) + 1.0, float(src["y"][i]) + 1.0] for i in order]  # FITS 1-based
    t = time.perf_counter()
    sol = solver.solve(stars=stars,
                       size_hint=astrometry.SizeHint(lower_arcsec_per_pixel=0.8 * scale_arcsec,
                                                     upper_arcsec_per_pixel=1.2 * scale_arcsec),
                       position_hint=None,
                       solution_parameters=astrometry.SolutionParameters(sip_order=3, logodds_callback=lambda l: astrometry.Action.STOP))
    dt = time.perf_counter() - t
    if not sol.has_match():
        return False, dt, None
    return True, dt, sol.best_match().astropy_wcs()


def run(n_fields: int, hint_deg: float, use_anet: bool = True):
    solver, why = anet_solver() if use_anet else (None, "disabled")
    rows = []
    for station, binning in STATIONS.items():
        for k in range(n_fields):
            f = make_field(station, binning=binning, rng=5000 + 97 * k + len(station), hint_offset_deg=hint_deg)
            t = time.perf_counter()
            s = solve(f.frame, f.sources)
            dt = time.perf_counter() - t
            err = plate_errors_px(f, s.wcs) if s.accepted else None
            row = dict(station=station, n_cat=f.n_catalog_in_frame, ok=s.accepted, t=dt,
                       rms=np.sqrt(np.mean(err ** 2)) if err is not None else np.nan,
                       wrong=bool(err is not None and err.max() > 1.0))
            if solver is not None:
                scale = 3600 * np.sqrt(abs(np.linalg.det(f.wcs.wcs.cd)))
                ok2, dt2, w2 = anet_solve(solver, f, scale)
                err2 = plate_errors_px(f, w2) if ok2 else None
                row.update(a_ok=ok2, a_t=dt2, a_rms=np.sqrt(np.mean(err2 ** 2)) if ok2 else np.nan,
                           a_wrong=bool(ok2 and err2.max() > 1.0))
            rows.append(row)
    return rows, why


def summary(rows, why):
    n = len(rows)
    ok = np.array([r["ok"] for r in rows])
    t = np.array([r["t"] for r in rows])
    rms = np.array([r["rms"] for r in rows])
    print(f"aposos (hint): solved {ok.sum()}/{n}, wrong {sum(r['wrong'] for r in rows)}, "
          f"median time {np.median(t):.3f} s, median plate rms vs truth {np.nanmedian(rms):.4f} px")
    if "a_ok" not in rows[0]:
        print(f"astrometry.net comparison skipped: {why}")
        return
    aok = np.array([r["a_ok"] for r in rows])
    at = np.array([r["a_t"] for r in rows])
    arms = np.array([r["a_rms"] for r in rows])
    print(f"astrometry.net (blind, tycho2): solved {aok.sum()}/{n}, wrong {sum(r['a_wrong'] for r in rows)}, "
          f"median time {np.median(at):.3f} s, median plate rms vs truth {np.nanmedian(arms):.4f} px")
    both = ok & aok
    print(f"ratios: success aposos/anet {ok.mean() / max(aok.mean(), 1e-9):.2f}; "
          f"time anet/aposos (median of per-field ratios) {np.median(at / t):.2f}; "
          f"plate rms aposos/anet on fields both solved ({both.sum()}) "
          f"{np.median(rms[both] / arms[both]) if both.any() else np.nan:.3f}")


def sweep(n: int, hint_deg: float):
    solved = eligible = wrong = 0
    times = []
    for station, binning in STATIONS.items():
        for k in range(n):
            f = make_field(station, binning=binning, rng=20000 + k, hint_offset_deg=hint_deg)
            s = solve(f.frame, f.sources, blind=False)
            times.append(s.time_s)
            if s.accepted:
                wrong += plate_errors_px(f, s.wcs).max() > 1.0
            if f.n_catalog_in_frame >= 15:
                eligible += 1
                solved += s.accepted
    print(f"sweep: {solved}/{eligible} fields with >= 15 catalog stars solved from a {hint_deg:g} deg hint "
          f"({100 * solved / eligible:.2f} %), wrong solutions {wrong} of {3 * n} fields, "
          f"median time {np.median(times):.3f} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fields", type=int, default=10, help="fields per station for the comparison")
    ap.add_argument("--sweep", type=int, default=0, help="fields per station for the aposos-only sweep")
    ap.add_argument("--hint", type=float, default=1.0, help="pointing hint error (deg)")
    ap.add_argument("--no-anet", action="store_true")
    a = ap.parse_args()
    if a.fields:
        summary(*run(a.fields, a.hint, not a.no_anet))
    if a.sweep:
        sweep(a.sweep, a.hint)


if __name__ == "__main__":
    main()
