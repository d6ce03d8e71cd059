"""Helpers shared by the benchmarks and ``quick.py``: scene, completeness, result table."""

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the scene builders live beside the tests

from test_detect_scenes import FWHM, benchmark_frame, match  # noqa: E402,F401

RESULTS: dict = {}


def completeness(x, y, truth, lo, hi=np.inf):
    """Fraction of truth stars with aperture SNR in [lo, hi) matched within 2 px."""
    sel = (truth["snr_ap"] >= lo) & (truth["snr_ap"] < hi)
    m = match(np.asarray(x), np.asarray(y), truth["x"][sel], truth["y"][sel], 2.0)
    return float((m >= 0).mean())


def record(name, benchmark, x=None, y=None, truth=None, n=None):
    """Store the median time (and completeness) of one benchmark for the summary."""
    info = {"median_s": benchmark.stats.stats.median}
    if truth is not None:
        info["compl_snr10"] = completeness(x, y, truth, 10)
        info["compl_snr5_10"] = completeness(x, y, truth, 5, 10)
        info["n"] = n
        benchmark.extra_info.update({k: v for k, v in info.items() if k != "median_s"})
    RESULTS[name] = info
