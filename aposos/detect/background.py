"""Sky background and noise maps: sigma-clipped mesh statistics and smooth interpolation.

The frame is tiled into a grid of boxes of about ``box_px`` pixels. In each box the finite
pixels of every 4th row are clipped iteratively at ``nsigma`` standard deviations around their
mean; at the converged bounds, one pass over all the box's pixels gives the background, the
SExtractor mode estimate ``2.5 median - 1.5 mean`` of the clipped pixels (the median smoothed
over +-0.4 std, see :func:`_smoothed_median`; the median itself when the box is crowded,
``|mean - median| > 0.3 std``), and the noise, their standard deviation corrected for the
truncation of a Gaussian at ``nsigma``. The grid is cleaned (empty boxes filled from their
neighbours, then a 3 x 3 median filter that removes boxes spoiled by bright stars or streaks)
and interpolated to any pixel with a Catmull-Rom cubic (C1, exact for linear gradients,
linearly extrapolated beyond the outer box centres).

Full-frame maps are never needed by the detector: the grids are interpolated along x once
(:func:`interp_columns`, ``nby + 4`` rows) and the kernels finish the interpolation along y row
by row (or interpolate small cutouts from the grids directly). :meth:`Background.back` and :meth:`Background.rms` build full maps on
request.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange
from scipy import ndimage, special

from ..errors import AposError

HIST_BINS = 256
SUBSAMPLE = 4  # the clipping bounds converge on every 4th row of a box
MEDIAN_WINDOW = 0.4  # half-width c of the smoothed median's window, in clipped standard deviations
# share of the clipped pixels within c of the median for which the smoothed median is used: 0.65 to
# 1.3 times a Gaussian's (beyond: a core 30 % narrower than the clipped std, or a flat or
# multimodal one)
WINDOW_SHARE = tuple(k * math.erf(MEDIAN_WINDOW / math.sqrt(2)) for k in (0.65, 1.3))
# fastmath without "nnan"/"ninf" (the kernels test for NaN/inf pixels explicitly) and without
# "nsz" (which turns a masked sum "s += m ? d : 0" into "s = m ? s + d : s", not vectorised)
FAST = {"arcp", "contract", "afn", "reassoc"}
ROWS_PER_PASS = 8  # image rows read together by the final pass (one vector of sums for them)


def truncated_std_factor(nsigma: float) -> float:
    """Std of a unit Gaussian truncated at +-nsigma (the bias of a clipped std)."""
    phi = math.exp(-0.5 * nsigma**2) / math.sqrt(2 * math.pi)
    mass = special.erf(nsigma / math.sqrt(2))
    return math.sqrt(1.0 - 2.0 * nsigma * phi / mass)


def box_edges(n: int, box_px: int) -> np.ndarray:
    """Edges of ``max(1, round(n / box_px))`` near-equal boxes tiling ``0..n`` (int64)."""
    nb = max(1, int(round(n / box_px)))
    return np.round(np.arange(nb + 1) * (n / nb)).astype(np.int64)


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _clip_sums(pixels, y, rows, x0, cols, step, lo, hi, m, inv_c):
    """Sums over the pixels ``pixels[y + r step, x0 + c step]`` (2-D array; ``r < rows``,
    ``c < cols``) with ``lo <= v <= hi`` (NaN pixels never are; +-inf ones are not for finite
    bounds): (count, sum and sum of squares of ``v - m``, sum of ``clamp((v - m) inv_c, -1, 1)``,
    number with ``|v - m| inv_c < 1``).

    The last two are the Huber function of location ``m`` (half-width ``1 / inv_c``) and minus
    its slope (see :func:`_smoothed_median`); ``inv_c=None``: the moments only (compiled without
    them). Branch-free, so that it vectorises along the columns; the ``rows`` of a column (pass
    a literal: a compile-time constant, the loop over them unrolled) add to the same vector of
    sums, one reduction for them all. The sums are in the type of ``m`` (float32 once ``m`` is
    near the mean: twice the lanes, and no cancellation). The Huber terms are those of
    ``d = v - m`` inside the bounds and 0 outside (no select of their own): the pixels outside
    are taken off the unclamped count at the end.
    """
    zero = m - m
    one = zero + np.float32(1.0)  # not "+ 1": float32 + int64 is float64 in numba
    s = s2 = c = f = n = zero  # c, n: counts, exact in float32 up to 2**24 (no int64 lanes)
    for i in range(cols):
        x = np.uint64(x0 + i * step)  # unsigned indices: no test for negative ones
        for r in range(rows):
            v = np.float32(pixels[np.uint64(y + r * step), x])
            inside = (v >= lo) & (v <= hi)
            d = v - m if inside else zero
            s += d
            s2 += d * d
            c += one if inside else zero
            if inv_c is not None:  # pruned at compile time for inv_c=None
                u = d * inv_c
                u = -one if u < -one else u
                u = one if u > one else u
                f += u
                n += one if abs(u) < one else zero
    if inv_c is None:
        return int(c), np.float64(s), np.float64(s2), np.float64(f), 0
    outside = rows * cols - int(c)
    return int(c), np.float64(s), np.float64(s2), np.float64(f), int(n) - outside


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _add_row_sums(image, y, rows, step, xedges, bounds, sums):
    """Adds to ``sums[i]`` (float64) the :func:`_clip_sums` of box ``i``'s pixels on the image
    rows ``y + r step`` (``r < rows``, a literal) within its ``bounds[i]`` (lo, hi, m, 1 / c, c;
    boxes without ``c > 0`` are skipped), in float32 around the float32 ``m``."""
    for i in range(len(xedges) - 1):
        if not (bounds[i, 4] > 0.0):
            continue
        x0 = xedges[i]
        cols = (xedges[i + 1] - x0 + step - 1) // step
        lo, hi = np.float32(bounds[i, 0]), np.float32(bounds[i, 1])
        m, inv_c = np.float32(bounds[i, 2]), np.float32(bounds[i, 3])
        if step == 1:  # compiled apart: contiguous vector loads
            k, s, s2, f, n = _clip_sums(image, y, rows, x0, cols, 1, lo, hi, m, inv_c)
        else:
            k, s, s2, f, n = _clip_sums(image, y, rows, x0, cols, step, lo, hi, m, inv_c)
        sums[i, 0] += k
        sums[i, 1] += s
        sums[i, 2] += s2
        sums[i, 3] += f
        sums[i, 4] += n


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _histogram_median(pixels, lo, hi, mean, scratch):
    """Median of the ``pixels`` (1-D) in ``[lo, hi)`` from a ``HIST_BINS`` histogram (interpolated within the bin), and their number; ``mean`` if there are none.

    Bin indices are computed in a vectorised pass into ``scratch`` (int32, >= pixels.size); four
    interleaved histograms break the store-to-load dependency of repeated bins.
    """
    scale = HIST_BINS / (hi - lo)
    lo32, scale32 = np.float32(lo), np.float32(scale)
    n = pixels.shape[0]
    for i in range(n):
        t = (pixels[i] - lo32) * scale32  # NaN for NaN pixels: out of range
        ok = (t >= np.float32(0.0)) & (t < np.float32(HIST_BINS))
        scratch[i] = np.int32(t) if ok else HIST_BINS  # bin HIST_BINS: outside
    hist = np.zeros((4, HIST_BINS + 1), np.int32)
    n4 = n - n % 4
    for i in range(0, n4, 4):
        hist[0, scratch[i]] += 1
        hist[1, scratch[i + 1]] += 1
        hist[2, scratch[i + 2]] += 1
        hist[3, scratch[i + 3]] += 1
    for i in range(n4, n):
        hist[0, scratch[i]] += 1
    for k in range(HIST_BINS):
        hist[0, k] += hist[1, k] + hist[2, k] + hist[3, k]
    c = 0
    for k in range(HIST_BINS):
        c += hist[0, k]
    half = 0.5 * c
    cum = 0.0
    for k in range(HIST_BINS):
        hk = hist[0, k]
        if cum + hk >= half:
            return lo + (k + (half - cum) / max(hk, 1)) / scale, c
        cum += hk
    return mean, c


FLOAT32_MAX = float(np.finfo(np.float32).max)


@njit(cache=True, error_model="numpy")
def _clip_stats(row, lo, hi, m, c):
    """(count, mean, std, Huber sum, Huber count) of the pixels of ``row`` (2-D, one row) in
    ``[lo, hi]`` (:func:`_clip_sums` at location ``m``, half-width ``c``; mean and std NaN if
    none).

    The sums are in float32 around the float32 ``m``, unless there are too many pixels for
    float32 counts; ``m`` NaN: the moments only, in float64 around 0 (no location yet; no
    cancellation in float64 for any image value).
    """
    cols = row.shape[1]
    if math.isnan(m):  # float32 bounds: the finite test before the conversion to float64
        shift = 0.0
        k, s, s2, f, n = _clip_sums(row, 0, 1, 0, cols, 1, np.float32(lo), np.float32(hi), shift,
                                    None)
    elif cols >= 1 << 24:  # beyond float32's exact integer counts
        shift = m
        k, s, s2, f, n = _clip_sums(row, 0, 1, 0, cols, 1, lo, hi, shift, 1.0 / c)
    else:
        shift = np.float64(np.float32(m))
        k, s, s2, f, n = _clip_sums(row, 0, 1, 0, cols, 1, np.float32(lo), np.float32(hi),
                                    np.float32(m), np.float32(1.0 / c))
    return _moments(k, s, s2, shift) + (f, n)


@njit(cache=True, error_model="numpy")
def _moments(k, s, s2, shift):
    """(k, mean, std) of ``k`` values with sum ``s`` and sum of squares ``s2`` of their
    differences to ``shift`` (mean and std NaN if ``k`` is 0)."""
    if k == 0:
        return 0, np.nan, np.nan
    d = s / k
    return k, d + shift, math.sqrt(max(s2 / k - d * d, 0.0))


@njit(cache=True, error_model="numpy")
def _huber_step(f, n, c):
    """Newton step of the root of the Huber function (sum ``f``, ``n`` pixels in its linear part,
    half-width ``c``), at most ``c``."""
    return min(max(c * f / max(n, 1), -c), c)


@njit(cache=True, error_model="numpy")
def _converged_clip(sub, nsigma, iters, min_count):
    """The clipping of the finite ``sub`` pixels (1-D float32) iterated to convergence:
    (count, mean, std, m, c) of its last pass; count 0 (mean NaN) if fewer than ``min_count``
    (or 3) are finite, or fewer than 3 remain.

    Each pass keeps the pixels within ``mean +- nsigma std`` of the previous one, until their
    number no longer changes (or ``std`` is 0, or after ``iters`` passes). ``m`` is the root of
    their Huber function of half-width ``c = MEDIAN_WINDOW std`` (:func:`_smoothed_median`),
    tracked by one Newton step per pass from the first pass's mean.
    """
    row = sub.reshape((1, sub.size))
    lo, hi = -FLOAT32_MAX, FLOAT32_MAX
    mean, std, m, window = np.nan, 0.0, np.nan, 0.0
    count = -1
    for it in range(iters):
        c, mean, std, f, n = _clip_stats(row, lo, hi, m, window)
        if c < max(3, min_count if it == 0 else 3):
            return 0, np.nan, np.nan, np.nan, 0.0
        m = mean if it == 0 else m + _huber_step(f, n, window)
        window = MEDIAN_WINDOW * std
        if c == count or std == 0.0:
            break
        count = c
        lo, hi = mean - nsigma * std, mean + nsigma * std
    return c, mean, std, m, window


@njit(cache=True, error_model="numpy")
def _smoothed_median(f, n, count, m, c, mean, std):
    """Median of ``count`` clipped pixels (``mean``, ``std``) smoothed over +-``c``: one Newton
    step from ``m`` on their Huber function (sum ``f``, ``n`` pixels in its linear part); NaN
    where the histogram's median is needed instead.

    The smoothed median is the root ``m`` of the Huber function ``sum clamp((v - m) / c, -1, 1)``,
    ``c = MEDIAN_WINDOW std`` (the median for ``c -> 0``; variance ``1.30 std^2 / n`` for a
    Gaussian against the median's ``1.57``; on a tail of faint stars it moves towards the mean
    by ``~c^2 / 6`` times the log-slope of the density at the median). NaN in a crowded box
    (``|mean - median| > 0.3 std``), when the root is not reached in one step, or when the
    window holds a share of the pixels unlike a Gaussian core's (:data:`WINDOW_SHARE`).
    """
    median = m + _huber_step(f, n, c)
    if (abs(median - m) < c and abs(mean - median) < 0.3 * std
            and WINDOW_SHARE[0] * count < n < WINDOW_SHARE[1] * count):
        return median
    return np.nan


@njit(cache=True, error_model="numpy")
def _copy_box(image, y0, rows, ystep, x0, cols, step, out):
    """Copies the pixels ``image[y0 + r ystep, x0 + c step]`` (``r < rows``, ``c < cols``) row by
    row into ``out[:rows * cols]`` (float32)."""
    for r in range(rows):
        row = image[y0 + r * ystep]
        a = np.uint64(r * cols)
        for c in range(cols):  # unsigned indices: a vectorised copy for step 1
            out[a + np.uint64(c)] = row[np.uint64(x0 + c * step)]


@njit(cache=True, parallel=True)
def mesh_stats(image, yedges, xedges, nsigma, iters, min_fraction, step):
    """Kernel: clipped (mode, std, count) of every box; NaN where too few finite pixels.

    Uses every ``step``-th pixel of every ``step``-th row of each box. Band by band of boxes:
    each box's subsample (every 4th row) is copied into a buffer, its rows read together (the
    memory latencies overlap), and the clipping iterates on these contiguous pixels (in place,
    the rows of a box are a frame row apart: they would share a few cache sets and be read from
    memory at every pass); the final pass at the converged bounds then streams through the
    band's rows once, ``ROWS_PER_PASS`` at a time, each row segment of a box adding to the box's
    sums (float64 across segments). ``std`` is the plain clipped standard deviation (not yet
    corrected for truncation; 0 for a constant box, whose count is then the subsample's);
    ``min_fraction`` applies to the finite pixels of the subsample.
    """
    nby, nbx = len(yedges) - 1, len(xedges) - 1
    back = np.full((nby, nbx), np.nan)
    std = np.full((nby, nbx), np.nan)
    count = np.zeros((nby, nbx), np.int64)
    wmax = 0
    for i in range(nbx):
        wmax = max(wmax, (xedges[i + 1] - xedges[i] + step - 1) // step)
    for j in prange(nby):
        y0, y1 = yedges[j], yedges[j + 1]
        rows = (y1 - y0 + step - 1) // step
        nsub = (rows + SUBSAMPLE - 1) // SUBSAMPLE
        box = np.empty(rows * wmax, np.float32)
        bounds = np.zeros((nbx, 5))  # lo, hi, m, 1 / c, c of the final pass (c 0: none)
        for i in range(nbx):
            x0 = xedges[i]
            cols = (xedges[i + 1] - x0 + step - 1) // step
            if step == 1:  # compiled apart: a vectorised copy
                _copy_box(image, y0, nsub, SUBSAMPLE, x0, cols, 1, box)
            else:
                _copy_box(image, y0, nsub, SUBSAMPLE * step, x0, cols, step, box)
            sub = box[:nsub * cols]
            c, mean, sd, m, window = _converged_clip(sub, nsigma, iters,
                                                     max(8, min_fraction * nsub * cols))
            if c > 0 and sd == 0.0:  # constant: no final pass
                back[j, i], std[j, i], count[j, i] = mean, 0.0, c
            elif c > 0:
                bounds[i] = mean - nsigma * sd, mean + nsigma * sd, m, 1.0 / window, window
        sums = np.zeros((nbx, 5))
        r = 0
        while r + ROWS_PER_PASS <= rows:
            _add_row_sums(image, y0 + r * step, ROWS_PER_PASS, step, xedges, bounds, sums)
            r += ROWS_PER_PASS
        for r in range(r, rows):
            _add_row_sums(image, y0 + r * step, 1, step, xedges, bounds, sums)
        scratch = np.empty(0, np.int32)  # for the histogram's median, if needed
        for i in range(nbx):
            k, s, s2, f, n = sums[i]
            c, mean, sd = _moments(int(k), s, s2, np.float64(np.float32(bounds[i, 2])))
            if c < 3:  # no final pass (too few pixels, or constant), or too few in it
                continue
            lo, hi, m, window = bounds[i, 0], bounds[i, 1], bounds[i, 2], bounds[i, 4]
            median = _smoothed_median(f, int(n), c, m, window, mean, sd)
            if math.isnan(median):
                x0 = xedges[i]
                cols = (xedges[i + 1] - x0 + step - 1) // step
                if scratch.size == 0:
                    scratch = np.empty(rows * wmax, np.int32)
                _copy_box(image, y0, rows, step, x0, cols, step, box)
                median = _histogram_median(box[:rows * cols], lo, hi, mean, scratch)[0]
            back[j, i] = 2.5 * median - 1.5 * mean if abs(mean - median) < 0.3 * sd else median
            std[j, i], count[j, i] = sd, c
    return back, std, count


def fill_and_filter(grid: np.ndarray, size: int = 3) -> np.ndarray:
    """Fill NaN boxes from the nearest valid box, then median-filter the grid (``size`` boxes).

    The filter removes boxes spoiled by bright stars or streaks; ``size`` must be 1, 3 or 5.
    """
    bad = ~np.isfinite(grid)
    if bad.all():
        raise AposError("no box of the frame has enough finite pixels to estimate the background")
    if bad.any():
        idx = ndimage.distance_transform_edt(bad, return_distances=False, return_indices=True)
        grid = grid[tuple(idx)]
    if size > 1:
        # pad by linear extrapolation so that a plane (a sky gradient) stays a plane at the
        # edges: plain 'nearest' padding biases the edge boxes of a tilted sky
        grid = median_filter(padded_grid(grid), size)
    return grid


@njit(cache=True)
def median_filter(pad, size):
    """Kernel: medians of the ``size`` x ``size`` (1, 3 or 5) boxes of ``pad`` (a grid with two
    rings of ghost boxes, :func:`padded_grid`) centred on its inner boxes: float64 [ny, nx]
    of the inner grid.

    The ``size**2`` shifted copies of the grid are sorted box by box by an odd-even
    transposition network, each compare-exchange a branch-free min/max over all the boxes
    (vectorised; a sort's data-dependent branches mispredict: ndimage's filter takes ~80 ns
    per box).
    """
    ny, nx, h = pad.shape[0] - 4, pad.shape[1] - 4, size // 2
    n = size * size
    w = np.empty((n, ny * nx))
    for a in range(size):
        for b in range(size):
            w[a * size + b] = pad[2 - h + a:2 - h + a + ny, 2 - h + b:2 - h + b + nx].ravel()
    for r in range(n):  # n rounds sort n values
        for i in range(r % 2, n - 1, 2):
            p, q = w[i], w[i + 1]
            for k in range(ny * nx):
                lo, hi = min(p[k], q[k]), max(p[k], q[k])
                p[k], q[k] = lo, hi
    return w[n // 2].reshape((ny, nx))


def padded_grid(grid: np.ndarray) -> np.ndarray:
    """Grid with two rings of linearly extrapolated ghost boxes (for the cubic interpolation)."""
    g = np.asarray(grid, np.float64)
    for axis in (0, 1):
        if g.shape[axis] == 1:
            g = np.concatenate([g] * 3, axis=axis)
            first = last = g.take([0], axis=axis)
            lo2 = hi2 = first
        else:
            a, b = g.take([0], axis=axis), g.take([1], axis=axis)
            z, w = g.take([-1], axis=axis), g.take([-2], axis=axis)
            first, last = 2 * a - b, 2 * z - w
            lo2, hi2 = 3 * a - 2 * b, 3 * z - 2 * w
        g = np.concatenate([lo2, first, g, last, hi2], axis=axis)
    return g


@functools.lru_cache(maxsize=16)
def cubic_weights(n_px: int, n_box: int):
    """Index of the first of 4 padded knots and the 4 Catmull-Rom weights for each pixel.

    Box centres are at ``(k + 0.5) * n_px / n_box - 0.5``; returns (int64 (n_px,), (n_px, 4)).
    """
    t = (np.arange(n_px) + 0.5) * (n_box / n_px) - 0.5
    k = np.floor(t).astype(np.int64)
    f = t - k
    f2, f3 = f * f, f * f * f
    w = np.stack([-0.5 * f3 + f2 - 0.5 * f,
                  1.5 * f3 - 2.5 * f2 + 1.0,
                  -1.5 * f3 + 2.0 * f2 + 0.5 * f,
                  0.5 * f3 - 0.5 * f2], axis=1)
    # padded index of knot k-1 is (k - 1) + 2; cached: callers must not modify the arrays
    k, w = k + 1, np.ascontiguousarray(w)
    k.flags.writeable = False
    w.flags.writeable = False
    return k, w


@njit(cache=True, parallel=True)
def interp_columns(gridp, kx, wx, out):
    """Kernel: every row of the padded grid interpolated to every column, into ``out`` ([nby+4,
    nx], float64 or float32: computed in float64, rounded once), which it returns.

    The interpolation is separable: a pixel's value is then the 4-knot cubic of this array along
    y (:func:`interp_row`), 4 multiply-adds instead of 16.
    """
    for j in prange(gridp.shape[0]):
        g = gridp[j]
        for x in range(kx.shape[0]):
            k = kx[x]
            out[j, x] = (wx[x, 0] * g[k] + wx[x, 1] * g[k + 1]
                         + wx[x, 2] * g[k + 2] + wx[x, 3] * g[k + 3])
    return out


@njit(cache=True, fastmath=FAST, error_model="numpy")
def interp_row(cols, k, w, out):
    """Kernel: one interpolated row into ``out`` from :func:`interp_columns` (float32 ``cols``).

    ``k``, ``w``: the row's first padded knot and its 4 weights (float32).
    """
    c0, c1, c2, c3 = cols[k], cols[k + 1], cols[k + 2], cols[k + 3]
    w0, w1, w2, w3 = w[0], w[1], w[2], w[3]
    for x in range(out.shape[0]):
        out[x] = w0 * c0[x] + w1 * c1[x] + w2 * c2[x] + w3 * c3[x]


@njit(cache=True)
def interp_map(cols, ky, wy, out):
    """Kernel: the full interpolated map into ``out`` (float32 [ny, nx])."""
    c = cols.astype(np.float32)
    w = wy.astype(np.float32)
    for y in range(out.shape[0]):
        interp_row(c, ky[y], w[y], out[y])
    return out


@dataclass(frozen=True)
class Background:
    """Background and noise of a frame, as box grids plus their interpolation.

    Attributes
    ----------
    shape : (ny, nx) of the frame.
    back_grid, rms_grid : float64 [nby, nbx]
        Background level and noise (per pixel standard deviation) of each box, in the image's
        unit (ADU), after filling and median filtering.
    yedges, xedges : int64
        Box edges in pixels.
    global_back, global_rms : float
        Medians of the grids.
    """

    shape: tuple
    back_grid: np.ndarray
    rms_grid: np.ndarray
    yedges: np.ndarray
    xedges: np.ndarray

    @property
    def global_back(self) -> float:
        return float(np.median(self.back_grid))

    @property
    def global_rms(self) -> float:
        return float(np.median(self.rms_grid))

    def weights(self):
        """(ky, wy, kx, wx): interpolation indices and weights of every row and column."""
        ky, wy = cubic_weights(self.shape[0], self.back_grid.shape[0])
        kx, wx = cubic_weights(self.shape[1], self.back_grid.shape[1])
        return ky, wy, kx, wx

    def columns(self, grid, dtype=np.float64) -> np.ndarray:
        """``grid`` (``back_grid`` or ``rms_grid``) interpolated along x: [nby + 4, nx] of
        ``dtype`` (float64 or float32)."""
        kx, wx = cubic_weights(self.shape[1], grid.shape[1])
        gridp = padded_grid(grid)
        return interp_columns(gridp, kx, wx, np.empty((gridp.shape[0], self.shape[1]), dtype))

    @functools.cached_property
    def float32_columns(self):
        """(back, rms) grids interpolated along x, float32 [nby + 4, nx], as the kernels read
        them (a pixel's value: the 4-knot cubic of these along y with ``weights()``); computed
        once per background."""
        return self.columns(self.back_grid, np.float32), self.columns(self.rms_grid, np.float32)

    def _map(self, grid):
        ky, wy = cubic_weights(self.shape[0], grid.shape[0])
        return interp_map(self.columns(grid), ky, wy, np.empty(self.shape, np.float32))

    def back(self) -> np.ndarray:
        """Full background map (float32 [ny, nx], image unit)."""
        return self._map(self.back_grid)

    def rms(self) -> np.ndarray:
        """Full noise map (float32 [ny, nx], image unit per pixel)."""
        return self._map(self.rms_grid)


def background(image, *, box_px: int = 64, nsigma: float = 3.0, iters: int = 10,
               filter_size: int = 3, min_fraction: float = 0.5, step: int = 1) -> Background:
    """Estimate the background and noise of ``image`` (2-D float array, NaN/inf ignored).

    Parameters
    ----------
    box_px : int
        Target box size in pixels (boxes tile the frame exactly; sizes differ by at most 1 px).
    nsigma, iters : float, int
        Clipping threshold (standard deviations) and maximum number of clipping iterations.
    filter_size : int
        Size of the median filter applied to the box grids (1: none).
    min_fraction : float
        Boxes with fewer finite pixels than this fraction (in every 4th row) are filled from
        their neighbours.
    step : int
        Subsampling of the box pixels for the statistics (1: all pixels, the default; 2 is
        about 1.7x faster but doubles the error of a box, ~0.053 instead of ~0.027 sigma).
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise AposError(f"background needs a 2-D image, got {image.ndim} dimensions")
    box_px = int(box_px)
    if box_px < 4:
        raise AposError(f"box_px must be >= 4 pixels, got {box_px}", key="box_px")
    if filter_size not in (1, 3, 5):
        raise AposError(f"filter_size must be 1, 3 or 5 boxes, got {filter_size}",
                        key="filter_size")
    yedges, xedges = box_edges(image.shape[0], box_px), box_edges(image.shape[1], box_px)
    step = max(1, min(int(step), box_px // 8))
    back, std, _ = mesh_stats(image, yedges, xedges, float(nsigma), int(iters), float(min_fraction),
                              step)
    rms = std / truncated_std_factor(nsigma)
    rms[~(rms > 0)] = np.nan  # constant boxes (saturated, blank) carry no noise estimate
    if not np.isfinite(rms).any():
        rms[:] = 0.0  # a constant image: the caller decides what to do
    back = fill_and_filter(back, filter_size)
    rms = fill_and_filter(rms, filter_size)
    return Background(tuple(image.shape), back, rms, yedges, xedges)


def patch(bkg: Background, grid: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """Interpolated ``grid`` (``bkg.back_grid`` or ``bkg.rms_grid``) on rows y0..y1-1, columns
    x0..x1-1 (float64), for cutouts around objects."""
    ky, wy, kx, wx = bkg.weights()
    gp = padded_grid(grid)
    rows = sum(wy[y0:y1, a, None] * gp[ky[y0:y1] + a] for a in range(4))   # (h, nbx+4)
    return sum(wx[None, x0:x1, b] * rows[:, kx[x0:x1] + b] for b in range(4))
