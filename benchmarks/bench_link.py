"""Linking a night's candidate observations: the serial night stage of ``aposos reduce``.

    PYTHONPATH=. python benchmarks/bench_link.py [--frames 60] [--stars 1600] [--noise 25] [--repeat 3]

A night of sidereal frames as the batch stores it (``bench_pipeline``: 8 s exposures every 40 s,
one field): every non-catalog source is a candidate observation. Per frame: faint static stars
(each detected with a probability of 0.3-1, so some are seen in only one or two frames), noise
points anywhere in the 2.1 deg field, and a GEO streak (15"/s) with its two ends. Prints the
number of candidates, those flagged static, the tracklets (expected: the GEO), and the seconds
of :func:`aposos.link.link` (best and median of ``--repeat``). Absolute times depend on the
shared machine; compare runs made at the same time.
"""

from __future__ import annotations

import argparse
import time

import astropy.units as u
import numpy as np
from astropy.table import Table
from astropy.time import Time

from aposos.directions import radec_deg, unit_from_radec
from aposos.link import link

T0 = Time("2026-11-20T15:00:00", scale="utc")
CENTRE = (35.0, 5.0)       # field centre (deg)
HALF_DEG = 1.05            # half the field width (2048 px x 3.7 arcsec)
CADENCE_S, EXPOSURE_S = 40.0, 8.0
SIGMA_ARCSEC = 1.0


def _geo(t_s):
    """Directions (n, 3) of a GEO crossing the field eastwards at 15 arcsec/s."""
    ra = CENTRE[0] - HALF_DEG * 0.9 + 15.0 / 3600 * np.asarray(t_s) / np.cos(np.radians(CENTRE[1]))
    return unit_from_radec(ra, np.full_like(ra, CENTRE[1] + 0.2))


def night(n_frames: int, n_stars: int, n_noise: int, seed: int = 0) -> Table:
    """Candidate observations (the columns :func:`aposos.link.link` reads) of one night."""
    rng = np.random.default_rng(seed)
    cos_dec = np.cos(np.radians(CENTRE[1]))
    star_ra = CENTRE[0] + rng.uniform(-HALF_DEG, HALF_DEG, n_stars) / cos_dec
    star_dec = CENTRE[1] + rng.uniform(-HALF_DEG, HALF_DEG, n_stars)
    p_seen = rng.uniform(0.3, 1.0, n_stars)
    cols = {k: [] for k in ("t_s", "ra_deg", "dec_deg", "source_index", "kind", "end", "frame")}

    def add(t_s, ra, dec, kind, end, frame):
        n = len(ra)
        jitter = rng.normal(0.0, SIGMA_ARCSEC / 3600, (2, n))
        for k, v in (("t_s", np.broadcast_to(t_s, n)), ("ra_deg", ra + jitter[0] / cos_dec),
                     ("dec_deg", dec + jitter[1]), ("kind", [kind] * n), ("end", np.broadcast_to(end, n)),
                     ("frame", [frame] * n)):
            cols[k].extend(v)
        cols["source_index"].extend(range(len(cols["source_index"]), len(cols["source_index"]) + n))

    for f in range(n_frames):
        t_open, frame = f * CADENCE_S, f"/night/bench_{f:03d}.fits"
        seen = rng.random(n_stars) < p_seen
        add(t_open + EXPOSURE_S / 2, star_ra[seen], star_dec[seen], "point", -1, frame)
        add(t_open + EXPOSURE_S / 2, CENTRE[0] + rng.uniform(-HALF_DEG, HALF_DEG, n_noise) / cos_dec,
            CENTRE[1] + rng.uniform(-HALF_DEG, HALF_DEG, n_noise), "point", -1, frame)
        ends = _geo([t_open, t_open + EXPOSURE_S / 2, t_open + EXPOSURE_S])
        ra, dec = radec_deg(ends)
        src = len(cols["source_index"])
        for j, kind, end in ((1, "streak_centre", -1), (0, "streak_end", 0), (2, "streak_end", 1)):
            add(t_open + j * EXPOSURE_S / 2, ra[j:j + 1], dec[j:j + 1], kind, end, frame)
        cols["source_index"][-3:] = [src] * 3  # one detection: the centre and its two ends
    tab = Table({k: v for k, v in cols.items() if k != "t_s"})
    tab["time"] = T0 + np.asarray(cols["t_s"]) * u.s
    tab["sigma_arcsec"] = SIGMA_ARCSEC
    tab["tracking"] = "sidereal"
    tab["exposure_s"] = EXPOSURE_S
    return tab


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--stars", type=int, default=1600)
    parser.add_argument("--noise", type=int, default=25)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    obs = night(args.frames, args.stars, args.noise)
    seconds = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        tracklets, linked = link(obs)
        seconds.append(time.perf_counter() - t)
    print(f"{len(obs)} candidates in {args.frames} frames: {int(linked['static'].sum())} static, "
          f"{len(tracklets)} tracklets ({', '.join(str(n) for n in tracklets['n_frames'])} frames); "
          f"link {min(seconds):.2f} s best, {float(np.median(seconds)):.2f} s median of {args.repeat}")


if __name__ == "__main__":
    main()
