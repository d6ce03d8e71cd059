"""Detection on a 4096 x 4096 frame: aposos.detect vs SEP vs photutils vs a numpy pass.

All detectors use the same matched filter (Gaussian of the PSF FWHM) and the same threshold,
5 sigma of the filtered image, so their completeness is comparable. ``aposos_cold`` is the first
call in a fresh interpreter (import, numba cache load or compilation, detection); the others are
warm. Run: ``pytest benchmarks/bench_detect.py -p no:xdist``.
"""

import subprocess
import sys
import time

import numpy as np
import pytest
import sep
from astropy.convolution import convolve
from photutils.background import Background2D
from photutils.segmentation import SourceCatalog, detect_sources

from aposos.detect import detect
from aposos.detect.significance import gaussian_kernel_1d

from support import FWHM, ROOT, record

THRESH = 5.0
KERNEL_1D = gaussian_kernel_1d(FWHM)
KERNEL_2D = np.outer(KERNEL_1D, KERNEL_1D)


def run_sep(adu):
    bkg = sep.Background(adu, bw=64, bh=64)
    data = adu - bkg.back()
    sep.set_extract_pixstack(5_000_000)
    # SEP compares the convolved image with thresh * err ('conv' filtering with a scalar err):
    # the filtered noise is err * sqrt(sum k^2), so this is the same 5-sigma matched threshold
    return sep.extract(data, THRESH * np.sqrt((KERNEL_2D**2).sum()), err=bkg.globalrms,
                       filter_kernel=KERNEL_2D, filter_type="conv", minarea=3)


def run_photutils(adu):
    bkg = Background2D(adu, 64)
    data = adu - bkg.background
    conv = convolve(data, KERNEL_2D, normalize_kernel=False)
    # the filtered noise is rms * sqrt(sum k^2): the same 5-sigma matched-filter threshold
    seg = detect_sources(conv, THRESH * bkg.background_rms * np.sqrt((KERNEL_2D**2).sum()), npixels=3)
    cat = SourceCatalog(data, seg, convolved_data=conv)
    return cat.x_centroid, cat.y_centroid


def test_numpy_floor(benchmark, frame):
    adu, _ = frame
    benchmark(adu.sum)
    record("numpy_floor", benchmark)


def test_sep(benchmark, frame):
    adu, truth = frame
    objs = benchmark(run_sep, adu)
    record("sep", benchmark, objs["x"], objs["y"], truth, len(objs))


def test_photutils(benchmark, frame):
    adu, truth = frame
    x, y = benchmark.pedantic(run_photutils, args=(adu,), rounds=2, iterations=1)
    record("photutils", benchmark, x, y, truth, len(x))


def test_aposos_warm(benchmark, frame):
    adu, truth = frame
    detect(adu[:512, :512], fwhm_px=FWHM)  # JIT / cache load outside the timing
    s = benchmark.pedantic(detect, args=(adu,), kwargs={"fwhm_px": FWHM}, rounds=5, iterations=1,
                           warmup_rounds=1)
    pts = s[s["kind"] == "point"]
    record("aposos", benchmark, pts["x"], pts["y"], truth, len(s))
    benchmark.extra_info["streaks"] = int((s["kind"] == "streak").sum())


def test_aposos_auto_fwhm(benchmark, frame):
    adu, truth = frame
    s = benchmark.pedantic(detect, args=(adu,), rounds=5, iterations=1, warmup_rounds=1)
    pts = s[s["kind"] == "point"]
    record("aposos_auto_fwhm", benchmark, pts["x"], pts["y"], truth, len(s))


def test_aposos_hot_loop(benchmark, frame):
    """The numba kernels only: background, matched filter, runs, labels, component statistics."""
    from aposos.detect.sources import DEFAULTS, _Pass, background
    adu, _ = frame
    cfg = dict(DEFAULTS)

    def hot():  # as detect() runs them (work arrays kept by the thread between calls)
        bkg = background(adu)
        return _Pass(adu, bkg, FWHM, cfg, np.inf)

    benchmark.pedantic(hot, rounds=5, iterations=1, warmup_rounds=1)
    record("aposos_hot_loop", benchmark)


def test_aposos_cold(benchmark, tmp_path, frame):
    """First call in a fresh interpreter (numba cache on disk as left by the warm runs)."""
    adu, _ = frame
    path = tmp_path / "frame.npy"
    np.save(path, adu)
    code = ("import time, numpy as np; t = time.perf_counter(); from aposos.detect import detect; "
            f"detect(np.load({str(path)!r}), fwhm_px={FWHM}); print(time.perf_counter() - t)")

    def cold():
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                             text=True, check=True)
        return float(out.stdout.strip().splitlines()[-1])

    seconds = benchmark.pedantic(cold, rounds=1, iterations=1)
    benchmark.extra_info["first_call_s"] = seconds
    record("aposos_cold", benchmark)
