"""Detection time and output on each bundled sample frame (``data_samples/``).

Usage: ``python benchmarks/sample_frames.py [--repeats N]``

For every readable science frame of the sample night: its tracking mode and size, the best of
``N`` detection times (after one warm-up call that loads or compiles the kernels), and what
the detector reports (objects, streaks, streaks flagged as star trails). Rate-tracked frames
(stars are trails, each a streak candidate to fit) cost far more than sidereal ones of the same
size; this is where to watch that cost. Frames that fail to read (the sample night has bad
ones by design) are listed with the reason.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aposos.detect import detect  # noqa: E402
from aposos.detect.sources import STAR_TRAIL  # noqa: E402
from aposos.errors import AposError  # noqa: E402
from aposos.ingest import read_frame  # noqa: E402
from aposos.pipeline import _fwhm_guess  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="detections per frame (best is shown)")
    args = ap.parse_args(argv)
    total = {"rate": 0.0, "sidereal": 0.0}
    print(f"{'frame':34s} {'mode':8s} {'size':>9s} {'detect s':>9s} {'objects':>8s} "
          f"{'streaks':>8s} {'trails':>7s}")
    for path in sorted((ROOT / "data_samples").glob("*/*.fits")):
        try:
            frame = read_frame(path, path.parent.name)
        except AposError as exc:
            print(f"{path.name:34s} not read: {exc}")
            continue
        mode = "rate" if frame.meta.tracking == "rate" else "sidereal"
        kw = dict(mode=mode, saturation_adu=frame.meta.saturation_adu, **_fwhm_guess(frame))
        detect(frame.data, **kw)
        best = np.inf
        for _ in range(args.repeats):
            t = time.perf_counter()
            s = detect(frame.data, **kw)
            best = min(best, time.perf_counter() - t)
        total[mode] += best
        streaks = s[s["kind"] == "streak"]
        ny, nx = frame.data.shape
        print(f"{path.name:34s} {mode:8s} {nx:4d}x{ny:<4d} {best:9.2f} {len(s):8d} "
              f"{len(streaks):8d} {int(np.sum(streaks['flags'] & STAR_TRAIL > 0)):7d}")
    print(f"total detect time: rate-tracked {total['rate']:.2f} s, sidereal {total['sidereal']:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
