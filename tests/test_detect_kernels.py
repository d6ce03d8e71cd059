"""Each numba kernel of aposos.detect against a plain numpy/scipy reference (or SEP)."""

import importlib
import math

import numpy as np
import pytest
import sep
from scipy import ndimage, optimize

from aposos.detect import background, label, measure, significance, streaks
from aposos.detect.background import (box_edges, mesh_stats, padded_grid, patch,
                                      truncated_std_factor)
from aposos.detect.significance import BLOCK_ROWS, gaussian_kernel_1d, kernel_taps
from aposos.simulate import render

from test_detect_scenes import GAIN, SKY_E, expose, point_scene

RUN_COL = {n: i for i, n in enumerate(importlib.import_module("aposos.detect.measure").RUN_NAMES)}


@pytest.mark.parametrize("connectivity", [4, 8])
@pytest.mark.parametrize("fill, shape", [(0.05, (211, 307)), (0.3, (211, 307)), (0.55, (211, 307)),
                                         (0.7, (211, 307)), (0.5, (640, 480))])
def test_label_equals_scipy(connectivity, fill, shape):
    """The last case has more runs than ``PARALLEL_MIN_RUNS``: halves labelled apart, joined."""
    mask = np.random.default_rng(int(fill * 100)).random(shape) < fill
    got, n = label(mask, connectivity)
    structure = np.ones((3, 3)) if connectivity == 8 else None
    ref, nref = ndimage.label(mask, structure=structure)
    assert n == nref and np.array_equal(got, ref)


def _reference_box(box, nsigma=3.0, iters=10):
    """Plain numpy: iterative mean/std clipping of every 4th row, then all the pixels clipped at
    the converged bounds; their median smoothed over +-0.4 std (the root of the Huber function,
    by bisection), or a 256-bin histogram's median when it is over 0.3 std from the mean or the
    pixels within 0.4 std of it are not 0.65 to 1.3 times a Gaussian's share; SExtractor mode."""
    v = box[::4][np.isfinite(box[::4])].astype(float)
    keep = np.ones(v.size, bool)
    for _ in range(iters):
        mean, std = v[keep].mean(), v[keep].std()
        new = (v >= mean - nsigma * std) & (v <= mean + nsigma * std)
        if new.sum() == keep.sum():
            break
        keep = new
    mean, std = v[keep].mean(), v[keep].std()
    lo, hi = mean - nsigma * std, mean + nsigma * std
    x = box[np.isfinite(box)].astype(float)
    x = x[(x >= lo) & (x <= hi)]
    c = 0.4 * std
    huber = lambda m: np.clip((x - m) / c, -1, 1).sum()  # noqa: E731
    med = optimize.brentq(huber, x.min(), x.max(), xtol=1e-9 * c)
    share = np.mean(np.abs(x - med) < c) / math.erf(0.4 / math.sqrt(2))
    if not (abs(x.mean() - med) < 0.3 * x.std() and 0.65 < share < 1.3):
        hist, edges = np.histogram(x[x < hi], 256, range=(lo, hi))
        k = np.searchsorted(np.cumsum(hist), 0.5 * hist.sum())
        med = edges[k] + (0.5 * hist.sum() - hist[:k].sum()) / hist[k] * (edges[1] - edges[0])
    mean, std = x.mean(), x.std()
    mode = 2.5 * med - 1.5 * mean if abs(mean - med) < 0.3 * std else med
    return mode, std


def test_mesh_stats_equal_numpy_reference():
    adu, _ = point_scene((256, 256), n=60, seed=3)
    adu[10:20, 10:20] = np.nan
    adu[100, 30], adu[101, 31] = np.inf, -np.inf
    ye, xe = box_edges(256, 64), box_edges(256, 64)
    for step in (1, 2):
        _check_mesh(adu, ye, xe, step)
    _check_mesh(adu[:126, :65], np.array([0, 63, 126]), np.array([0, 65]), 1)  # 63 x 65 px boxes
    # the histogram's median: two values half and half (no pixel near the median); a crowded box
    # (a quarter of the pixels 10 std above the others)
    _check_mesh(np.tile(np.float32([100, 101]), (64, 32)), np.array([0, 64]), np.array([0, 64]), 1)
    rng = np.random.default_rng(1)
    crowded = rng.normal(100, 3, (64, 64)) + 30 * (rng.random((64, 64)) < 0.25)
    _check_mesh(crowded.astype(np.float32), np.array([0, 64]), np.array([0, 64]), 1)


def _check_mesh(adu, ye, xe, step):
    back, std, _ = mesh_stats(adu, ye, xe, 3.0, 10, 0.5, step)
    for j in range(len(ye) - 1):
        for i in range(len(xe) - 1):
            mode, s = _reference_box(adu[ye[j]:ye[j + 1]:step, xe[i]:xe[i + 1]:step])
            assert abs(std[j, i] - s) < 1e-4 * s
            # the kernel's median: one Newton step from the subsample's root (0.03 std noise)
            assert abs(back[j, i] - mode) < 0.01 * s


@pytest.mark.parametrize("shape", [(37, 41), (1, 7), (3, 1)])
def test_median_filter_equals_scipy(shape):
    from aposos.detect.background import median_filter
    grid = np.random.default_rng(shape[0]).normal(300, 1, shape).round(1)  # ties too
    pad = padded_grid(grid)
    for size in (1, 3, 5):
        ref = ndimage.median_filter(pad, size=size, mode="nearest")[2:-2, 2:-2]
        assert np.array_equal(median_filter(pad, size), ref)


def test_background_recovers_gradient_under_stars_and_streak():
    """Truth is the rendered sky; SEP is the peer. Both within a fraction of the noise."""
    rng = np.random.default_rng(7)
    shape = (512, 512)
    sky = render.sky(shape, SKY_E, (0.1, -0.06))  # 12 % across the frame
    img = sky.copy()
    x, y = rng.uniform(0, 512, 300), rng.uniform(0, 512, 300)
    render.add_points(img, x, y, 10 ** rng.uniform(3, 6, 300), 2.5)
    render.add_streaks(img, [30], [400], [480], [300], [2e5], 2.5)
    adu = expose(img, rng, bleed=False)
    bkg = background(adu)
    truth = (sky / GAIN).astype(np.float32)
    rms_truth = math.sqrt(SKY_E + 81) / GAIN
    err = bkg.back() - truth
    assert np.abs(err).max() < 0.25 * rms_truth
    noise_truth = np.sqrt(sky + 81.0) / GAIN  # per pixel, follows the sky gradient
    assert abs(np.median(bkg.rms() / noise_truth) - 1) < 0.03
    ref = sep.Background(adu.astype(np.float64), bw=64, bh=64)
    assert np.abs(ref.back() - truth).max() > np.abs(err).max() * 0.5  # same league as SEP
    assert np.median(np.abs(bkg.back() - ref.back())) < 0.1 * rms_truth


def test_truncated_std_factor():
    z = np.random.default_rng(0).normal(size=2_000_000)
    assert abs(z[np.abs(z) <= 3].std() - truncated_std_factor(3.0)) < 1e-3


def test_significance_equals_scipy_convolution():
    adu, _ = point_scene((200, 300), n=40, seed=4)
    adu[50, 60] = np.nan
    bkg = background(adu, box_px=50)
    sig, runs, _, smax, bad = significance(adu, bkg, 2.5, threshold=3.0)
    assert np.array_equal(smax, [sig[y, a:b + 1].max() for y, a, b in zip(*runs)])
    k = gaussian_kernel_1d(2.5)
    d = np.nan_to_num(adu.astype(float) - bkg.back(), nan=0.0)
    conv = ndimage.convolve1d(ndimage.convolve1d(d, k, axis=1, mode="constant"), k, axis=0,
                              mode="constant")
    ref = conv / (bkg.rms() * np.sqrt((k**2).sum()) ** 2)
    assert np.abs(sig - ref).max() < 2e-3 * np.abs(ref).max()
    assert bad.sum() == 1
    # a wider PSF: 9 taps, zero-padded to 11 for the kernel
    k = gaussian_kernel_1d(3.5)
    conv = ndimage.convolve1d(ndimage.convolve1d(d, k, axis=1, mode="constant"), k, axis=0,
                              mode="constant")
    ref4 = conv / (bkg.rms() * np.sqrt((k**2).sum()) ** 2)
    assert len(k) == 9 and len(kernel_taps(3.5)) == 11
    assert np.abs(significance(adu, bkg, 3.5)[0] - ref4).max() < 2e-3 * np.abs(ref4).max()
    assert all(np.array_equal(a, b) for a, b in zip(runs, _reference_runs(sig >= 3.0)))
    rising = (ref >= 3.0) & ~np.pad(ref >= 3.0, ((0, 0), (1, 0)))[:, :-1]
    per_row = np.bincount(runs[0], minlength=sig.shape[0])
    assert np.abs(per_row - rising.sum(axis=1)).sum() <= 2  # float32 rounding at the threshold
    # noise at threshold 0: more runs than the kernel's edge buffer holds (nx / 32 per row), so
    # that they are reread from the map
    noise = np.random.default_rng(1).normal(100.0, 5.0, (70, 1200)).astype(np.float32)
    nbkg = background(noise, box_px=50)
    sig, runs, (table, rows), smax, _ = significance(noise, nbkg, 2.5, threshold=0.0,
                                                     peak_thresh=2.0)
    sums = table[rows]
    assert np.array_equal(smax, [sig[y, a:b + 1].max() for y, a, b in zip(*runs)])  # reread
    assert len(runs[0]) > 2 * noise.size / 32
    assert all(np.array_equal(a, b) for a, b in zip(runs, _reference_runs(sig >= 0.0)))
    _check_run_sums(noise, nbkg, sig, runs, sums, np.inf, 0.0, 2.0)


@pytest.mark.parametrize("gain", [None, 1.7])
def test_run_sums_equal_numpy_reference(gain):
    """The sums the matched-filter pass takes of each run, peaks on block edges included."""
    adu, _ = point_scene((4 * BLOCK_ROWS + 40, 260), n=240, snr_ap=(10, 3000), seed=8)
    adu[150, 40:44] = np.nan
    bkg = background(adu, box_px=50)
    inv_gain = 0.0 if gain is None else 1 / gain
    saturation = float(np.percentile(adu, 99.9))
    sig, runs, (table, rows), _, _ = significance(adu, bkg, 2.5, threshold=2.5,
                                               saturation=saturation, inv_gain=inv_gain,
                                               peak_thresh=5.0)
    sums = table[rows]
    on_block_edge = np.isin(runs[0] % BLOCK_ROWS, [0, BLOCK_ROWS - 1])
    assert (sums[on_block_edge, RUN_COL['npeaks']] > 0).sum() >= 3  # the deferred test is used
    _check_run_sums(adu, bkg, sig, runs, sums, saturation, inv_gain, 5.0)


def _check_run_sums(adu, bkg, sig, runs, sums, saturation, inv_gain, peak_thresh):
    """Plain numpy: each run's sums over its pixels (see ``measure.RUN_NAMES``)."""
    d = adu.astype(float) - bkg.back()
    var = bkg.rms().astype(float) ** 2 + np.clip(d, 0, None) * inv_gain
    peaks = (sig >= peak_thresh) & (ndimage.maximum_filter(sig, 3, mode="nearest") == sig)
    col = RUN_COL
    for r, (y, x0, x1) in enumerate(zip(*runs)):
        raw, s = adu[y, x0:x1 + 1].astype(float), sig[y, x0:x1 + 1].astype(float)
        fin = np.isfinite(raw)
        dd, w, dx = d[y, x0:x1 + 1][fin], np.clip(d[y, x0:x1 + 1][fin], 0, None), np.arange(x1 - x0 + 1)
        ref = {"flux": dd.sum(), "var": var[y, x0:x1 + 1][fin].sum(), "sw": w.sum(),
               "swx": (w * dx[fin]).sum(), "swxx": (w * dx[fin] ** 2).sum(), "ssw": s.sum(),
               "ssx": (s * dx).sum(), "ssxx": (s * dx**2).sum(), "smax": s.max(),
               "xs": x0 + np.argmax(s), "nbad": (~fin).sum(), "nsat": (raw[fin] >= saturation).sum(),
               "npeaks": peaks[y, x0:x1 + 1].sum()}
        if fin.any():
            ref.update(peak=dd.max(), rawmax=raw[fin].max())
        # float32 arithmetic on the raw values (the background is subtracted in float32)
        scale = (1 + np.abs(raw[fin]).sum() + var[y, x0:x1 + 1][fin].sum()) * (1 + dx.max() ** 2)
        for name, value in ref.items():
            assert abs(sums[r, col[name]] - value) <= 1e-6 * scale, (r, name)


def _reference_runs(mask):
    """Plain numpy: (y, x0, x1) of the runs of a 2-D boolean mask in raster order."""
    step = np.diff(np.pad(mask, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    y, x0 = np.nonzero(step == 1)
    _, x1 = np.nonzero(step == -1)
    return y, x0, x1 - 1


def test_measure_equals_scipy_reference():
    adu, truth = point_scene((256, 256), n=30, snr_ap=(30, 300), seed=5)
    bkg = background(adu)
    d = adu - bkg.back()
    labels, n = ndimage.label(d > 5 * bkg.global_rms)
    t = measure(adu, labels, bkg, fwhm_px=2.5)
    idx = np.arange(1, n + 1)
    assert np.array_equal(t["area"], ndimage.sum(np.ones_like(d), labels, idx))
    assert np.allclose(t["flux_iso"], ndimage.sum(d, labels, idx), rtol=1e-4)
    w = np.clip(d, 0, None)
    com = np.array(ndimage.center_of_mass(w, labels, idx))
    assert np.allclose(t["y_iso"], com[:, 0], atol=1e-4) and np.allclose(t["x_iso"], com[:, 1], atol=1e-4)
    # windowed centroid: plain numpy fixed point sum w (r - c) d = 0 with a Gaussian window
    sigma = 2.5 / render.FWHM_PER_SIGMA
    yy, xx = np.mgrid[: d.shape[0], : d.shape[1]]
    for row in t[t["flux_iso"] > 0][:10]:
        xc, yc = row["x"], row["y"]
        r2 = (xx - xc) ** 2 + (yy - yc) ** 2
        win = np.exp(-0.5 * r2 / sigma**2) * (r2 <= 16 * sigma**2) * d
        assert abs((win * (xx - xc)).sum() / win.sum()) < 1e-3
        assert abs((win * (yy - yc)).sum() / win.sum()) < 1e-3
        # its errors and the PSF-weighted flux: plain numpy at the returned centroid
        w = np.exp(-0.5 * r2 / sigma**2) * (r2 <= 16 * sigma**2)
        p = w / (2 * np.pi * sigma**2)
        var = bkg.rms().astype(float) ** 2
        assert abs(row["flux"] - (p * d).sum() / (p * p).sum()) < 1e-4 * abs(row["flux"])
        assert abs(row["flux_err"] - np.sqrt((p * p * var).sum()) / (p * p).sum()) < 1e-4 * row["flux_err"]
        gx = (w * d).sum() - (w * d * (xx - xc) ** 2).sum() / sigma**2
        x_err = np.sqrt((w * w * (xx - xc) ** 2 * var).sum()) / abs(gx)
        assert abs(row["x_err"] - x_err) < 1e-4 * x_err


def test_component_stats_of_objects_across_the_middle_equal_numpy():
    """The reduction runs the frame's halves in parallel: objects that straddle the middle row
    (a vertical streak, stars on the split) must come out as if reduced in one piece."""
    adu, _ = point_scene((200, 160), n=25, snr_ap=(30, 300), seed=9)
    bkg = background(adu, box_px=50)
    d = (adu - bkg.back()).astype(float)
    d[60:140, 40:43] += 40.0 * bkg.global_rms  # a vertical bar through row 100
    d[97:104, 100:107] += 30.0 * bkg.global_rms  # a box on the split
    img = (d + bkg.back()).astype(np.float32)
    labels, n = ndimage.label(d > 5 * bkg.global_rms)
    straddle = set(np.unique(labels[99])) & set(np.unique(labels[100])) - {0}
    assert len(straddle) >= 2
    t = measure(img, labels, bkg, fwhm_px=2.5)
    idx = np.arange(1, n + 1)
    w = np.clip(d, 0, None)
    com = np.array(ndimage.center_of_mass(w, labels, idx))
    assert np.array_equal(t["area"], ndimage.sum(np.ones_like(d), labels, idx))
    assert np.allclose(t["flux_iso"], ndimage.sum(d, labels, idx), rtol=1e-5)
    assert np.allclose(t["y_iso"], com[:, 0], atol=1e-4) and np.allclose(t["x_iso"], com[:, 1], atol=1e-4)
    assert np.allclose(t["peak"], ndimage.maximum(d, labels, idx), rtol=1e-5)
    yy, xx = np.mgrid[: d.shape[0], : d.shape[1]]
    for k in straddle:  # second moments too: the halves' sums are merged with their offsets
        m = labels == k
        ww = w[m] / w[m].sum()
        mxx = (ww * (xx[m] - com[k - 1, 1]) ** 2).sum()
        myy = (ww * (yy[m] - com[k - 1, 0]) ** 2).sum()
        row = t[k - 1]
        assert abs(row["a"] ** 2 + row["b"] ** 2 - (mxx + myy)) < 1e-6 * (mxx + myy)


def test_components_that_matter_equals_numpy_reference():
    """Components kept: S peak at the threshold, or enough pixels, or a long enough bounding
    box diagonal; their runs in raster order, renumbered in order."""
    rng = np.random.default_rng(5)
    mask = rng.random((300, 400)) < 0.3
    labels, n = label(mask, 8)
    kernels = importlib.import_module("aposos.detect.measure")
    ry, rx0, rx1, comp = kernels.runs_of_labels(labels.astype(np.int64))
    rsmax = rng.uniform(2.5, 6.0, len(ry)).astype(np.float32)
    runs, new, m = kernels.components_that_matter(ry, rx0, rx1, rsmax, comp, n, 5.9, 9, 4.0)
    idx = np.arange(1, n + 1)
    smax = np.array([rsmax[comp == c].max() for c in range(n)])
    npix = ndimage.sum(np.ones(mask.shape), labels, idx)
    boxes = ndimage.find_objects(labels)
    diag = np.array([math.hypot(b[0].stop - b[0].start - 1, b[1].stop - b[1].start - 1)
                     for b in boxes])
    keep = (smax >= 5.9) | (npix >= 9) | (diag >= 4.0)
    assert 0 < keep.sum() < n and m == keep.sum()
    assert np.array_equal(runs, np.flatnonzero(keep[comp]))
    assert np.array_equal(new, (np.cumsum(keep) - 1)[comp[runs]])


def test_group_runs_equals_stable_argsort():
    group_runs = importlib.import_module("aposos.detect.measure").group_runs
    comp = np.random.default_rng(2).integers(0, 500, 5000)
    order, offsets = group_runs(comp, 600)
    assert np.array_equal(order, np.argsort(comp, kind="stable"))
    assert np.array_equal(offsets, np.concatenate([[0], np.cumsum(np.bincount(comp, minlength=600))]))


def test_sharpness_equals_numpy_reference():
    measure_kernels = importlib.import_module("aposos.detect.measure")
    adu, _ = point_scene((128, 160), n=25, seed=6)
    adu[60, 61] = np.nan
    bkg = background(adu)
    d = adu - patch(bkg, bkg.back_grid, 0, 128, 0, 160)  # float64 numpy interpolation
    rng = np.random.default_rng(6)
    xp = np.concatenate([rng.integers(0, 160, 300), [0, 159, 5, 60, 61]])
    yp = np.concatenate([rng.integers(0, 128, 300), [5, 7, 0, 60, 61]])
    got = measure_kernels.sharpness(adu, padded_grid(bkg.back_grid), *bkg.weights(), xp, yp)
    for g, x, y in zip(got, xp, yp):
        if x < 1 or y < 1 or x > 158 or y > 126:
            assert np.isnan(g)
            continue
        c, s = d[y, x], d[y - 1:y + 2, x - 1:x + 2].sum() - d[y, x]
        if c > 0 and np.isfinite(s):
            assert abs(g - (c - s / 8) / c) < 1e-4 * max(1.0, abs(g))
        else:
            assert np.isnan(g)


def _streak_problem(seed, nstars):
    """A noisy streak (plus ``nstars`` stars near it) sampled on a band of pixels, with a start
    off the truth, for the least-squares kernels."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:60, 0:120]
    x, y = xx.ravel().astype(float), yy.ravel().astype(float)
    truth = np.array([60.3, 30.2, 0.21, 70.0, 1.2, 4e4])
    stars = np.array([[40.0 + 25 * k, 36.0 - 9 * k, 2e4 / (k + 1)] for k in range(nstars)]).ravel()
    z = streaks.streak_model(truth, x, y)
    if nstars:
        z = z + streaks.stars_model(stars, x, y, 1.2)[0]
    inv_sigma = np.full(len(x), 1 / 5.0)
    z = z + rng.normal(0, 5.0, len(x))
    p0 = np.concatenate([truth + [1.5, -1.0, 0.03, -8.0, 0.2, -5e3],
                         stars + np.tile([0.6, -0.4, 3e3], nstars)])
    scale = np.concatenate([[1, 1, 0.01, 1, 0.3, 4e4], np.tile([0.5, 0.5, 4e4], nstars)])
    return p0, scale, x, y, z, inv_sigma


def test_streak_model_kernels_equal_numpy_reference():
    p0, _, x, y, _, _ = _streak_problem(0, 2)
    assert np.allclose(streaks.model_kernel(p0[:6], x, y), streaks.streak_model(p0[:6], x, y),
                       rtol=1e-12, atol=1e-12)
    model, jac6 = streaks.model_and_jacobian_kernel(p0[:6], x, y)
    assert np.allclose(model, streaks.streak_model(p0[:6], x, y), rtol=1e-12, atol=1e-12)
    assert np.allclose(jac6, streaks.streak_jacobian(p0[:6], x, y), rtol=1e-10, atol=1e-12)
    z = np.zeros(len(x))
    r, jac = streaks._residuals_jacobian(p0, x, y, z, np.ones(len(x)), 1.2, True, True)
    m = streaks.streak_model(p0[:6], x, y) + streaks.stars_model(p0[6:], x, y, 1.2)[0]
    assert np.allclose(r, -m, rtol=1e-12, atol=1e-12)
    ref = -np.hstack([streaks.streak_jacobian(p0[:6], x, y), streaks.stars_model(p0[6:], x, y, 1.2)[1]])
    assert np.allclose(jac, ref, rtol=1e-10, atol=1e-12)
    # and the analytic Jacobian against central differences of the model
    h = 1e-6 * np.maximum(np.abs(p0), 1)
    num = np.column_stack([(streaks._residuals_jacobian(p0 + h * e, x, y, z, np.ones(len(x)), 1.2, True, False)[0]
                            - streaks._residuals_jacobian(p0 - h * e, x, y, z, np.ones(len(x)), 1.2, True, False)[0])
                           / (2 * h[k]) for k, e in enumerate(np.eye(len(p0)))])
    assert np.allclose(jac, num, rtol=1e-5, atol=1e-6 * np.abs(jac).max())


@pytest.mark.parametrize("seed,nstars", [(1, 0), (2, 2), (3, 3)])
def test_lm_kernel_equals_scipy_least_squares(seed, nstars):
    from scipy import optimize
    p0, scale, x, y, z, inv_sigma = _streak_problem(seed, nstars)
    p, chi2, converged, nfev = streaks.lm_kernel(p0, scale, x, y, z, inv_sigma, 1.2, True, 400, 1e-8)

    def resid(q):
        return streaks._residuals_jacobian(q, x, y, z, inv_sigma, 1.2, True, False)[0]

    def jac(q):
        return streaks._residuals_jacobian(q, x, y, z, inv_sigma, 1.2, True, True)[1]

    ref = optimize.least_squares(resid, p0, jac=jac, method="lm", x_scale=scale)
    assert converged and ref.success
    assert chi2 <= (ref.fun @ ref.fun) * (1 + 1e-9)
    assert np.allclose(np.abs(p[:6]), np.abs(ref.x[:6]), rtol=1e-6, atol=1e-5)
    assert abs(chi2 / len(x) - 1) < 0.1  # the truth model fits to the noise



@pytest.mark.parametrize("has_streak, nstars", [(True, 0), (True, 2), (False, 2), (False, 1)])
def test_normal_equations_equal_numpy_from_the_jacobian(has_streak, nstars):
    rng = np.random.default_rng(nstars)
    y, x = (v.ravel().astype(float) for v in np.mgrid[0:40, 0:60])
    p = np.array([30.0, 20.0, 0.4, 25.0, 1.3, 5e3])[: 6 if has_streak else 0]
    stars = np.array([[22.0, 14.0, 900.0], [41.0, 27.0, 400.0]])[:nstars].ravel()
    p = np.concatenate([p, stars])
    z = rng.normal(0, 3.0, len(x)) + 5.0
    inv_sigma = 1.0 / rng.uniform(2.0, 4.0, len(x))
    r, jac = streaks._residuals_jacobian(p, x, y, z, inv_sigma, 1.2, has_streak, True)
    a, g = streaks._normal_equations(p, x, y, z, inv_sigma, 1.2, has_streak)
    assert np.allclose(a, jac.T @ jac, rtol=1e-10, atol=1e-12 * np.abs(jac.T @ jac).max())
    assert np.allclose(g, jac.T @ r, rtol=1e-10, atol=1e-12 * np.abs(jac.T @ r).max())
