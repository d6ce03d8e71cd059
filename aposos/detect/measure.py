"""Per-object measurements on the pixels of each connected component, and windowed centroids.

Component statistics (:func:`component_stats`) are isophotal: sums over the pixels of the
component (the runs above the analysis threshold) of the background-subtracted image ``d``:

* first and second moments weighted by ``max(d, 0)`` -> isophotal centroid, ``a``, ``b``,
  ``theta`` (SExtractor definitions: ``a``, ``b`` the rms along the major/minor axis in pixels,
  ``theta`` the major-axis angle counter-clockwise from +x, degrees in (-90, 90]);
* the same moments weighted by the significance ``S`` (smooth, always positive) used to tell
  streaks from points;
* isophotal flux ``sum d`` and its variance ``sum rms^2 + sum max(d, 0) / gain``;
* peak of ``d``, maximum of ``S`` and its pixel, raw maximum (for saturation), area, bounding box,
  number of non-finite pixels and whether the component touches the frame edge.

Point sources are then measured with a Gaussian-windowed centroid (:func:`windowed_centroids`,
the SExtractor ``XWIN`` estimator, iterated to convergence). With the window equal to the PSF
this estimator reaches the Cramer-Rao bound for a Gaussian PSF on a background-limited frame;
its error is propagated from the pixel noise. The flux is the PSF-weighted (optimal) estimate.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .background import FAST

# Columns of the component statistics array (float64 [n, NSTAT]).
STAT_NAMES = ("npix", "flux", "var", "sw", "sx", "sy", "sxx", "syy", "sxy",
              "ssw", "ssx", "ssy", "ssxx", "ssyy", "ssxy", "peak", "smax", "xs", "ys",
              "rawmax", "nsat", "nbad", "edge", "xmin", "xmax", "ymin", "ymax", "xpk", "ypk",
              "npeaks")
COL = {name: i for i, name in enumerate(STAT_NAMES)}
NSTAT = len(STAT_NAMES)


@njit(cache=True)
def _is_local_max(sig, y, x, s):
    ny, nx = sig.shape
    for yy in range(max(0, y - 1), min(ny, y + 2)):
        for xx in range(max(0, x - 1), min(nx, x + 2)):
            if (yy != y or xx != x) and sig[yy, xx] > s:
                return False
    return True


@njit(cache=True)
def _count_major_peaks(sig, ry, rx0, rx1, order, q0, q1, level):
    n = 0
    for q in range(q0, q1):
        r = order[q]
        for x in range(rx0[r], rx1[r] + 1):
            s = sig[ry[r], x]
            if s >= level and _is_local_max(sig, ry[r], x, s):
                n += 1
    return n


# Per-run sums (float64 [nruns, NRUN]), computed where a run's row is in cache, then reduced to
# components: moments are relative to the run's first pixel (a run lies on one row).
RUN_NAMES = ("flux", "var", "sw", "swx", "swxx", "ssw", "ssx", "ssxx", "peak", "xpk", "smax",
             "xs", "rawmax", "nsat", "nbad", "npeaks")
NRUN = len(RUN_NAMES)
(R_FLUX, R_VAR, R_SW, R_SWX, R_SWXX, R_SSW, R_SSX, R_SSXX, R_PEAK, R_XPK, R_SMAX, R_XS,
 R_RAWMAX, R_NSAT, R_NBAD, R_NPEAKS) = range(NRUN)


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _cubic_at(cols, k, w0, w1, w2, w3, x):
    """A grid interpolated along y at column ``x`` (float32, as the matched filter computes
    it: ``cols``, rows ``k..k+3``, from :func:`~aposos.detect.background.interp_columns`)."""
    return w0 * cols[k, x] + w1 * cols[k + 1, x] + w2 * cols[k + 2, x] + w3 * cols[k + 3, x]


@njit(cache=True, error_model="numpy")
def row_sums(out, smax_out, i0, image, sig, dring, dslot, pad, rcols, ky, wy, y, edges, e,
             saturation, inv_gain, peak_thresh, defer, deferred, nd):
    """Kernel: the sums of the runs of row ``y`` into ``out[i0:]`` (``NRUN`` each), their
    maxima of S also into ``smax_out[i0:]`` (float32: a compact copy for the selection of
    components).

    The runs are given by their edges ``edges[:e]`` (even entries: first pixels, odd: one past
    the last). ``image``, ``sig``: the frame and S; ``dring[dslot, x + pad]``: the row's
    background-subtracted pixels (a row of a buffer the caller fills once per row); ``rcols``,
    ``ky``, ``wy``: the noise grid along x and the rows' knots and weights (float32), from
    which the noise is interpolated at each run pixel. Peaks of S at or above ``peak_thresh``
    (3 x 3 local maxima) are counted in ``npeaks``; with ``defer`` (the rows beside this one
    are not computed yet) their candidates, the S-row maxima, are listed in ``deferred[nd:]``
    as (x, y, run index) instead.
    Returns the new ``nd``. (One call per row: array arguments cost reference counting at every
    call, more than a short run's sums.)
    """
    nx = image.shape[1]
    k = ky[y]
    w0, w1, w2, w3 = wy[y, 0], wy[y, 1], wy[y, 2], wy[y, 3]
    for q in range(0, e, 2):
        i = i0 + q // 2
        xa, xb = edges[q], edges[q + 1] - 1
        flux = var = sw = swx = swxx = ssw = ssx = ssxx = npeaks = 0.0
        peak = smax = rawmax = -np.inf
        xs = xpk = xa
        nsat = nbad = 0
        for x in range(xa, xb + 1):
            dx = float(x - xa)
            s = float(sig[y, x])
            if s > smax:
                smax, xs = s, x
            ssw += s
            ssx += s * dx
            ssxx += s * dx * dx
            if (s >= peak_thresh and (x == 0 or sig[y, x - 1] <= sig[y, x])
                    and (x == nx - 1 or sig[y, x + 1] <= sig[y, x])):
                if defer:
                    deferred[nd, 0], deferred[nd, 1], deferred[nd, 2] = x, y, i
                    nd += 1
                elif _is_local_max(sig, y, x, sig[y, x]):
                    npeaks += 1.0
            v = image[y, x]
            if not math.isfinite(v):
                nbad += 1
                continue
            if v >= saturation:
                nsat += 1
            rawmax = max(rawmax, float(v))
            d = float(dring[dslot, x + pad])
            rms = float(_cubic_at(rcols, k, w0, w1, w2, w3, x))
            flux += d
            if d > peak:
                peak, xpk = d, x
            wt = max(d, 0.0)
            var += rms * rms + wt * inv_gain
            sw += wt
            swx += wt * dx
            swxx += wt * dx * dx
        out[i, R_FLUX], out[i, R_VAR], out[i, R_SW], out[i, R_SWX] = flux, var, sw, swx
        out[i, R_SWXX], out[i, R_SSW], out[i, R_SSX], out[i, R_SSXX] = swxx, ssw, ssx, ssxx
        out[i, R_PEAK], out[i, R_XPK], out[i, R_SMAX], out[i, R_XS] = peak, xpk, smax, xs
        smax_out[i] = smax
        out[i, R_RAWMAX], out[i, R_NSAT], out[i, R_NBAD], out[i, R_NPEAKS] = (rawmax, nsat, nbad,
                                                                             npeaks)
    return nd


@njit(cache=True, fastmath=FAST, error_model="numpy")
def interpolated_row(cols, k, w, out):
    """Kernel: a row of a grid interpolated along y (``cols``: along x already, float32; ``k``,
    ``w``: the row's first knot and 4 weights) into ``out`` (float32, length nx)."""
    w0, w1, w2, w3 = w[0], w[1], w[2], w[3]
    for x in range(out.shape[0]):
        out[x] = w0 * cols[k, x] + w1 * cols[k + 1, x] + w2 * cols[k + 2, x] + w3 * cols[k + 3, x]


@njit(cache=True, error_model="numpy")
def run_stats(image, sig, bcols, rcols, ky, wy, ry, rx0, rx1, saturation, inv_gain,
              peak_thresh):
    """Kernel: the sums of every run (float64 [nruns, NRUN], see ``RUN_NAMES``) of any set of
    runs in raster order; ``npeaks`` counts the local maxima (3 x 3) of S at or above
    ``peak_thresh``.

    The general (serial) path, for runs that do not come from the matched filter's own pass
    (:func:`measure`) or that did not fit its buffers; ``significance`` takes the same sums
    (:func:`row_sums`) while its rows are in cache.
    """
    nx = image.shape[1]
    out = np.empty((ry.shape[0], NRUN))
    smax = np.empty(ry.shape[0], np.float32)
    dring = np.empty((1, nx), np.float32)
    edges = np.empty(2 * nx + 2, np.int64)
    none = np.empty((0, 3), np.int64)
    r = 0
    while r < ry.shape[0]:
        y = ry[r]
        e = 0
        while r + e // 2 < ry.shape[0] and ry[r + e // 2] == y:
            edges[e], edges[e + 1] = rx0[r + e // 2], rx1[r + e // 2] + 1
            e += 2
        interpolated_row(bcols, ky[y], wy[y], dring[0])
        for x in range(nx):
            dring[0, x] = image[y, x] - dring[0, x]
        row_sums(out, smax, r, image, sig, dring, 0, 0, rcols, ky, wy, y, edges, e, saturation,
                 inv_gain, peak_thresh, False, none, 0)
        r += e // 2
    return out


@njit(cache=True)
def components_that_matter(ry, rx0, rx1, rsmax, comp, ncomp, smax_min, npix_min, extent_min):
    """Kernel: the runs of the components that reach ``smax_min`` in S (``rsmax``: each run's
    maximum), or hold at least ``npix_min`` pixels, or whose bounding box has a diagonal
    (between pixel centres) of at least ``extent_min`` px; the others (the many noise peaks
    between the analysis and the detection thresholds) need no statistics.

    ``comp``: each run's component (runs in raster order, components numbered in the raster
    order of their first runs, as :func:`~aposos.detect.label.link_runs` numbers them). Returns
    (runs, comp, ncomp): the indices of the kept runs (int64, raster order) and their
    components, renumbered 0.. in the order of the old numbers.
    """
    n = ry.shape[0]
    # per component, in one 32-byte row (one cache line touched per run): x_lo, x_hi, y_lo,
    # y_hi, pixels, reaches smax_min
    box = np.empty((ncomp, 8), np.int32)
    box[:, 0], box[:, 1], box[:, 2], box[:, 4], box[:, 5] = 1 << 30, -1, -1, 0, 0
    for r in range(n):
        c = comp[r]
        box[c, 0] = min(box[c, 0], rx0[r])
        box[c, 1] = max(box[c, 1], rx1[r])
        if box[c, 2] < 0:  # raster order: the first run has the lowest row, the last the highest
            box[c, 2] = ry[r]
        box[c, 3] = ry[r]
        box[c, 4] += rx1[r] - rx0[r] + 1
        box[c, 5] |= rsmax[r] >= smax_min
    new = np.full(ncomp, -1, np.int64)
    m = 0
    for c in range(ncomp):
        w, h = float(box[c, 1] - box[c, 0]), float(box[c, 3] - box[c, 2])
        if box[c, 5] or box[c, 4] >= npix_min or w * w + h * h >= extent_min * extent_min:
            new[c] = m
            m += 1
    runs = np.empty(n, np.int64)
    comp2 = np.empty(n, np.int64)
    k = 0
    for r in range(n):
        c = new[comp[r]]
        if c >= 0:
            runs[k], comp2[k] = r, c
            k += 1
    runs, comp2 = runs[:k], comp2[:k]
    return runs, comp2, m


@njit(cache=True, parallel=True, error_model="numpy")
def component_stats(runs, sum_rows, ry, rx0, rx1, comp, order, offsets, sig, shape, peak_thresh,
                    peak_frac, out):
    """Kernel: statistics (see ``STAT_NAMES``) of each component from its runs' sums, into
    ``out`` (float64 [ncomp, NSTAT], any content), which it returns.

    ``runs[sum_rows[r]]``: the sums of run ``r`` (:func:`run_stats`, or the matched filter's);
    ``comp``: each run's component, numbered in raster order of their first runs
    (:func:`~aposos.detect.label.link_runs`); ``order[offsets[c]:offsets[c + 1]]`` the run
    indices of component ``c``. Each component's moments are taken relative to its first pixel
    for numerical stability and made central at the end.

    The runs of the top and of the bottom half of the frame are reduced in parallel, each in
    raster order: components that start in the bottom half belong to it alone, and the few
    that reach across the middle collect their bottom runs in a side table, added at the end.
    """
    ny, nx = shape
    n = offsets.shape[0] - 1
    nr = ry.shape[0]
    x_ref = np.empty(n, np.int64)
    y_ref = np.empty(n, np.int64)
    for c in prange(n):
        first = order[offsets[c]] if offsets[c + 1] > offsets[c] else -1
        x_ref[c], y_ref[c] = (rx0[first], ry[first]) if first >= 0 else (0, 0)
        _empty_row(out, c, ny, nx)
    m = np.searchsorted(ry, ny // 2)  # first run of the bottom half
    k = comp[:m].max() + 1 if m > 0 else 0  # components starting in the top half: 0..k-1
    side_index = np.full(k, -1, np.int64)
    nside = 0
    for r in range(m, nr):
        if comp[r] < k and side_index[comp[r]] < 0:
            side_index[comp[r]] = nside
            nside += 1
    side = np.empty((nside, NSTAT))
    for i in range(nside):
        _empty_row(side, i, ny, nx)
    for part in prange(2):
        if part == 0:
            _add_runs(out, side, side_index, 0, runs, sum_rows, ry, rx0, rx1, comp, 0, m, x_ref,
                      y_ref, ny, nx)
        else:
            _add_runs(out, side, side_index, k, runs, sum_rows, ry, rx0, rx1, comp, m, nr,
                      x_ref, y_ref, ny, nx)
    for c in range(k):
        if side_index[c] >= 0:
            _merge_rows(out, c, side, side_index[c])
    for c in prange(n):
        if out[c, COL_NPEAKS] > 1:  # count only peaks that are a fair fraction of the brightest
            out[c, COL_NPEAKS] = _count_major_peaks(
                sig, ry, rx0, rx1, order, offsets[c], offsets[c + 1],
                max(peak_thresh, peak_frac * out[c, COL_SMAX]))
        # first moments relative to the reference pixel -> absolute positions; second moments
        # -> central, per unit weight
        _centre(out, c, COL_SW, COL_SX, COL_SY, COL_SXX, COL_SYY, COL_SXY, x_ref[c], y_ref[c])
        _centre(out, c, COL_SSW, COL_SSX, COL_SSY, COL_SSXX, COL_SSYY, COL_SSXY, x_ref[c],
                y_ref[c])
    return out


@njit(cache=True)
def _empty_row(out, c, ny, nx):
    """Row ``c`` of a statistics table before any run: zero sums, empty box and maxima."""
    out[c, :] = 0.0
    out[c, COL_PEAK] = out[c, COL_SMAX] = out[c, COL_RAWMAX] = -np.inf
    out[c, COL_XMIN], out[c, COL_YMIN], out[c, COL_XMAX], out[c, COL_YMAX] = nx, ny, -1, -1


@njit(cache=True, error_model="numpy")
def _add_runs(out, side, side_index, k_side, runs, sum_rows, ry, rx0, rx1, comp, r0, r1, x_ref,
              y_ref, ny, nx):
    """Add runs ``r0..r1-1`` to their components' rows: of ``side`` (row ``side_index[c]``) for
    components ``c < k_side``, of ``out`` for the others. (2-D indexing throughout: a view per
    run would cost more than its sums.)"""
    for r in range(r0, r1):
        c = comp[r]
        t, i = (side, side_index[c]) if c < k_side else (out, c)
        s = sum_rows[r]
        y, xa, xb = ry[r], rx0[r], rx1[r]
        t[i, COL_YMIN] = min(t[i, COL_YMIN], y)
        t[i, COL_YMAX] = max(t[i, COL_YMAX], y)
        t[i, COL_XMIN] = min(t[i, COL_XMIN], xa)
        t[i, COL_XMAX] = max(t[i, COL_XMAX], xb)
        if y == 0 or y == ny - 1 or xa == 0 or xb == nx - 1:
            t[i, COL_EDGE] = 1.0
        t[i, COL_NPIX] += xb - xa + 1
        dy = float(y - y_ref[c])
        off = float(xa - x_ref[c])
        _shifted_moments(t, i, runs[s, R_SW], runs[s, R_SWX], runs[s, R_SWXX], off, dy,
                         COL_SW, COL_SX, COL_SY, COL_SXX, COL_SYY, COL_SXY)
        _shifted_moments(t, i, runs[s, R_SSW], runs[s, R_SSX], runs[s, R_SSXX], off, dy,
                         COL_SSW, COL_SSX, COL_SSY, COL_SSXX, COL_SSYY, COL_SSXY)
        if runs[s, R_SMAX] > t[i, COL_SMAX]:
            t[i, COL_SMAX], t[i, COL_XS], t[i, COL_YS] = runs[s, R_SMAX], runs[s, R_XS], y
        if runs[s, R_PEAK] > t[i, COL_PEAK]:
            t[i, COL_PEAK], t[i, COL_XPK], t[i, COL_YPK] = runs[s, R_PEAK], runs[s, R_XPK], y
        t[i, COL_RAWMAX] = max(t[i, COL_RAWMAX], runs[s, R_RAWMAX])
        t[i, COL_NBAD] += runs[s, R_NBAD]
        t[i, COL_NSAT] += runs[s, R_NSAT]
        t[i, COL_FLUX] += runs[s, R_FLUX]
        t[i, COL_VAR] += runs[s, R_VAR]
        t[i, COL_NPEAKS] += runs[s, R_NPEAKS]


@njit(cache=True)
def _merge_rows(out, c, side, i):
    """Add the side table's row ``i`` (the same component, same reference pixel) to ``out[c]``
    (the top half's runs were visited first: ties of the maxima keep the top's pixel)."""
    for j in SUM_COLS:
        out[c, j] += side[i, j]
    out[c, COL_EDGE] = min(out[c, COL_EDGE], 1.0)
    out[c, COL_XMIN] = min(out[c, COL_XMIN], side[i, COL_XMIN])
    out[c, COL_YMIN] = min(out[c, COL_YMIN], side[i, COL_YMIN])
    out[c, COL_XMAX] = max(out[c, COL_XMAX], side[i, COL_XMAX])
    out[c, COL_YMAX] = max(out[c, COL_YMAX], side[i, COL_YMAX])
    out[c, COL_RAWMAX] = max(out[c, COL_RAWMAX], side[i, COL_RAWMAX])
    if side[i, COL_SMAX] > out[c, COL_SMAX]:
        out[c, COL_SMAX], out[c, COL_XS], out[c, COL_YS] = (side[i, COL_SMAX], side[i, COL_XS],
                                                            side[i, COL_YS])
    if side[i, COL_PEAK] > out[c, COL_PEAK]:
        out[c, COL_PEAK], out[c, COL_XPK], out[c, COL_YPK] = (side[i, COL_PEAK], side[i, COL_XPK],
                                                              side[i, COL_YPK])


@njit(cache=True)
def _shifted_moments(out, c, sw, swx, swxx, off, dy, w, x, y, xx, yy, xy):
    """Add a run's weight sums (x moments relative to its first pixel) to component ``c``'s
    row of ``out``, relative to the component's reference pixel (``off``, ``dy`` px away)."""
    sx = swx + off * sw
    out[c, w] += sw
    out[c, x] += sx
    out[c, y] += dy * sw
    out[c, xx] += swxx + off * (2.0 * swx + off * sw)
    out[c, yy] += dy * dy * sw
    out[c, xy] += dy * sx


@njit(cache=True)
def _centre(out, c, w, x, y, xx, yy, xy, x_ref, y_ref):
    """In row ``c`` of ``out``: sums of weights (column ``w``) relative to the reference pixel
    -> centroid (absolute px) and central second moments; the bounding box's centre and the
    raw sums where the weights sum to <= 0."""
    sw = out[c, w]
    if not sw > 0:
        out[c, x] = 0.5 * (out[c, COL_XMIN] + out[c, COL_XMAX])
        out[c, y] = 0.5 * (out[c, COL_YMIN] + out[c, COL_YMAX])
        return
    mx, my = out[c, x] / sw, out[c, y] / sw
    out[c, x], out[c, y] = mx + x_ref, my + y_ref
    out[c, xx] = out[c, xx] / sw - mx * mx
    out[c, yy] = out[c, yy] / sw - my * my
    out[c, xy] = out[c, xy] / sw - mx * my


COL_NPIX, COL_FLUX, COL_VAR, COL_SW, COL_SX, COL_SY, COL_SXX, COL_SYY, COL_SXY = range(9)
(COL_SSW, COL_SSX, COL_SSY, COL_SSXX, COL_SSYY, COL_SSXY, COL_PEAK, COL_SMAX, COL_XS, COL_YS,
 COL_RAWMAX, COL_NSAT, COL_NBAD, COL_EDGE, COL_XMIN, COL_XMAX, COL_YMIN, COL_YMAX, COL_XPK, COL_YPK,
 COL_NPEAKS) = range(9, NSTAT)

# columns added when two partial rows of one component are merged
SUM_COLS = (COL_NPIX, COL_FLUX, COL_VAR, COL_SW, COL_SX, COL_SY, COL_SXX, COL_SYY, COL_SXY,
            COL_SSW, COL_SSX, COL_SSY, COL_SSXX, COL_SSYY, COL_SSXY, COL_NSAT, COL_NBAD,
            COL_EDGE, COL_NPEAKS)


def shape_from_moments(mxx, myy, mxy):
    """(a, b, theta_deg) from central second moments (px^2): rms along major/minor axes."""
    mxx, myy, mxy = (np.asarray(v, float) for v in (mxx, myy, mxy))
    half_sum = 0.5 * (mxx + myy)
    root = np.sqrt((0.5 * (mxx - myy)) ** 2 + mxy**2)
    a = np.sqrt(np.clip(half_sum + root, 0, None))
    b = np.sqrt(np.clip(half_sum - root, 0, None))
    theta = np.degrees(0.5 * np.arctan2(2 * mxy, mxx - myy))
    return a, b, theta


@njit(cache=True)
def _window_box(xc, yc, half, shape):
    """First and last row and column (inclusive) of the window around (xc, yc)."""
    ny, nx = shape
    x0, x1 = max(0, int(xc) - half), min(nx - 1, int(xc) + half + 1)
    y0, y1 = max(0, int(yc) - half), min(ny - 1, int(yc) + half + 1)
    return x0, x1, y0, y1


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _gauss_1d(c, lo, hi, sigma, ex, dd):
    """``ex[j] = exp(-(lo + j - c)^2 / (2 sigma^2))`` and ``dd[j] = (lo + j - c)^2`` for
    ``lo + j`` in ``lo..hi``: the separable factors of the Gaussian window."""
    inv2s2 = 0.5 / (sigma * sigma)
    for j in range(hi - lo + 1):
        t = lo + j - c
        dd[j] = t * t
        ex[j] = math.exp(-t * t * inv2s2)


@njit(cache=True)
def _interp_cutout(gridp, ky, wy, kx, wx, ox, oy, out, knots):
    """The padded ``gridp`` interpolated on the cutout with corner (ox, oy) into ``out`` (0
    beyond the frame of ``ky``, ``kx``): per row, the grid interpolated along y to the few knot
    columns the cutout needs (``knots``: work space), then along x at each pixel. Everything
    it reads is a few cache lines (the frame-wide interpolated columns would be many)."""
    ny, nx = ky.shape[0], kx.shape[0]
    h, w = out.shape
    xa, xb = max(0, ox), min(nx, ox + w)
    out[:] = 0.0
    if xa >= xb:
        return
    k0 = kx[xa]
    nk = kx[xb - 1] + 4 - k0
    for i in range(h):
        y = oy + i
        if y < 0 or y >= ny:
            continue
        k = ky[y]
        for t in range(nk):
            knots[t] = (wy[y, 0] * gridp[k, k0 + t] + wy[y, 1] * gridp[k + 1, k0 + t]
                        + wy[y, 2] * gridp[k + 2, k0 + t] + wy[y, 3] * gridp[k + 3, k0 + t])
        for x in range(xa, xb):
            j = kx[x] - k0
            out[i, x - ox] = (wx[x, 0] * knots[j] + wx[x, 1] * knots[j + 1]
                              + wx[x, 2] * knots[j + 2] + wx[x, 3] * knots[j + 3])


@njit(cache=True)
def _fill_cutout(image, bgrid, ky, wy, kx, wx, ox, oy, cut, fin, knots):
    """Background-subtracted pixels of the cutout with corner (ox, oy) into ``cut`` (0 where
    non-finite or beyond the frame) and their finiteness (1.0 / 0.0) into ``fin``."""
    ny, nx = image.shape
    h, w = cut.shape
    _interp_cutout(bgrid, ky, wy, kx, wx, ox, oy, cut, knots)
    for i in range(h):
        y = oy + i
        for j in range(w):
            x = ox + j
            v = image[y, x] if (0 <= y < ny) & (0 <= x < nx) else np.float32(np.nan)
            ok = math.isfinite(v)
            cut[i, j] = v - cut[i, j] if ok else 0.0
            fin[i, j] = 1.0 if ok else 0.0


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _window_pass(cut, ox, oy, box, xc, yc, sigma, ex, ey, dx2, dy2):
    """(sum w d, sum w d (x - xc), sum w d (y - yc)) over the window ``box`` (x0, x1, y0, y1),
    ``w`` the Gaussian of ``sigma`` px around (xc, yc) cut at 4 sigma, ``d`` from the cutout
    (0 for non-finite pixels, which then add nothing)."""
    x0, x1, y0, y1 = box
    _gauss_1d(xc, x0, x1, sigma, ex, dx2)
    _gauss_1d(yc, y0, y1, sigma, ey, dy2)
    lim = 16 * sigma * sigma
    sw = swx = swy = 0.0
    for y in range(y0, y1 + 1):
        i = y - y0
        rw = rwx = 0.0
        for x in range(x0, x1 + 1):
            j = x - x0
            w = ex[j] * cut[y - oy, x - ox] if dx2[j] + dy2[i] <= lim else 0.0
            rw += w
            rwx += w * (x - xc)
        sw += ey[i] * rw
        swx += ey[i] * rwx
        swy += ey[i] * rw * (y - yc)
    return sw, swx, swy


@njit(cache=True, error_model="numpy")
def windowed_centroids(image, bgrid, rgrid, ky, wy, kx, wx, x_init, y_init, sigma, inv_gain,
                       max_iter, tol):
    """Kernel: Gaussian-windowed centroids (XWIN) with errors and PSF-weighted fluxes.

    ``sigma`` is the window (= PSF) standard deviation in px. The iteration ``xc += 2 * sum(w
    (x - xc) d) / sum(w d)`` converges to the window-weighted centroid (the factor 2 is the
    SExtractor acceleration). Returns (x, y, x_err, y_err, flux, flux_err, niter); the flux is
    ``sum(p d) / sum(p^2)`` with ``p`` the unit-flux Gaussian PSF at the centroid. The window
    is the product of two 1-D Gaussians (2 n exponentials for n x n pixels); the
    background-subtracted pixels come from a cutout with a margin, refilled only when the
    window leaves it.
    """
    n = x_init.shape[0]
    xo = np.empty(n)
    yo = np.empty(n)
    xe = np.empty(n)
    ye = np.empty(n)
    fo = np.empty(n)
    fe = np.empty(n)
    it_out = np.zeros(n, np.int64)
    half = int(math.ceil(4 * sigma)) + 1
    margin = 2
    size = 2 * half + 2 + 2 * margin
    ex, ey = np.empty(2 * half + 2), np.empty(2 * half + 2)
    dx2, dy2 = np.empty(2 * half + 2), np.empty(2 * half + 2)
    cut = np.empty((size, size))
    fin = np.empty((size, size))
    rms = np.empty((size, size))
    knots = np.empty(size + 8)
    for i in range(n):
        xc, yc = x_init[i], y_init[i]
        ox = oy = -(1 << 40)  # no cutout yet
        for it in range(max_iter):
            box = _window_box(xc, yc, half, image.shape)
            x0, x1, y0, y1 = box
            if x0 < ox or y0 < oy or x1 >= ox + size or y1 >= oy + size:
                ox, oy = x0 - margin, y0 - margin
                _fill_cutout(image, bgrid, ky, wy, kx, wx, ox, oy, cut, fin, knots)
            sw, swx, swy = _window_pass(cut, ox, oy, box, xc, yc, sigma, ex, ey, dx2, dy2)
            if sw <= 0:
                break
            dx, dy = 2.0 * swx / sw, 2.0 * swy / sw
            if abs(dx) > half or abs(dy) > half:
                break  # diverging: keep the previous estimate
            xc += dx
            yc += dy
            it_out[i] = it + 1
            if dx * dx + dy * dy < tol * tol:
                break
        xo[i], yo[i] = xc, yc
        box = _window_box(xc, yc, half, image.shape)
        x0, x1, y0, y1 = box
        if x0 < ox or y0 < oy or x1 >= ox + size or y1 >= oy + size:
            ox, oy = x0 - margin, y0 - margin
            _fill_cutout(image, bgrid, ky, wy, kx, wx, ox, oy, cut, fin, knots)
        _interp_cutout(rgrid, ky, wy, kx, wx, ox, oy, rms, knots)
        xe[i], ye[i], fo[i], fe[i] = _window_errors(cut, fin, rms, ox, oy, box, xc, yc, sigma,
                                                    inv_gain, ex, ey, dx2, dy2)
    return xo, yo, xe, ye, fo, fe, it_out


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _window_errors(cut, fin, rms_cut, ox, oy, box, xc, yc, sigma, inv_gain, ex, ey, dx2, dy2):
    """(x_err, y_err, flux, flux_err) at the final centroid: errors of the linearised
    estimator, PSF-weighted flux and its error (non-finite pixels left out)."""
    x0, x1, y0, y1 = box
    _gauss_1d(xc, x0, x1, sigma, ex, dx2)
    _gauss_1d(yc, y0, y1, sigma, ey, dy2)
    s2 = sigma * sigma
    lim = 16 * s2
    norm = 1.0 / (2 * math.pi * s2)
    num_x = num_y = den_x = den_y = sw = 0.0
    spd = spp = svp = 0.0
    for y in range(y0, y1 + 1):
        i = y - y0
        for x in range(x0, x1 + 1):
            j = x - x0
            ok = (fin[y - oy, x - ox] > 0) & (dx2[j] + dy2[i] <= lim)
            d = cut[y - oy, x - ox]
            rms = rms_cut[y - oy, x - ox]
            var = rms * rms + max(d, 0.0) * inv_gain
            w = ex[j] * ey[i] if ok else 0.0
            num_x += w * w * dx2[j] * var
            num_y += w * w * dy2[i] * var
            sw += w * d
            den_x += w * d * dx2[j]
            den_y += w * d * dy2[i]
            p = norm * w
            spd += p * d
            spp += p * p
            svp += p * p * var
    gx = sw - den_x / s2
    gy = sw - den_y / s2
    xerr = math.sqrt(num_x) / abs(gx) if gx != 0 else np.inf
    yerr = math.sqrt(num_y) / abs(gy) if gy != 0 else np.inf
    if spp > 0:
        return xerr, yerr, spd / spp, math.sqrt(svp) / spp
    return xerr, yerr, 0.0, np.inf


@njit(cache=True)
def sharpness(image, bgrid, ky, wy, kx, wx, xp, yp):
    """Kernel: ``(peak - mean of its 8 neighbours) / peak`` at integer pixels (background removed).

    Close to 1 for a single hot pixel or a cosmic-ray hit, bounded well below 1 for a PSF.
    """
    n = xp.shape[0]
    ny, nx = image.shape
    out = np.full(n, np.nan)
    back = np.empty((3, 3))
    knots = np.empty(16)
    for i in range(n):
        x, y = xp[i], yp[i]
        if x < 1 or y < 1 or x > nx - 2 or y > ny - 2:
            continue
        _interp_cutout(bgrid, ky, wy, kx, wx, x - 1, y - 1, back, knots)
        c = image[y, x] - back[1, 1]
        s = 0.0
        for dy in range(-1, 2):
            for dx in range(-1, 2):
                if dx != 0 or dy != 0:
                    s += image[y + dy, x + dx] - back[1 + dy, 1 + dx]
        if c > 0 and math.isfinite(s):
            out[i] = (c - s / 8.0) / c
    return out


@njit(cache=True)
def group_runs(comp, ncomp):
    """Kernel: (order, offsets): run indices sorted by component (a stable counting sort: runs
    of a component stay in raster order), and each component's slice in them."""
    offsets = np.zeros(ncomp + 1, np.int64)
    for i in range(comp.shape[0]):
        offsets[comp[i] + 1] += 1
    for c in range(ncomp):
        offsets[c + 1] += offsets[c]
    fill = offsets[:-1].copy()
    order = np.empty(comp.shape[0], np.int64)
    for i in range(comp.shape[0]):
        c = comp[i]
        order[fill[c]] = i
        fill[c] += 1
    return order, offsets


@njit(cache=True)
def runs_of_labels(labels):
    """Kernel: runs of constant positive label -> (y, x0, x1, label - 1) in raster order."""
    ny, nx = labels.shape
    n = 0
    for y in range(ny):
        for x in range(nx):
            v = labels[y, x]
            if v > 0 and (x == 0 or labels[y, x - 1] != v):
                n += 1
    ry = np.empty(n, np.int32)
    rx0 = np.empty(n, np.int32)
    rx1 = np.empty(n, np.int32)
    comp = np.empty(n, np.int64)
    i = 0
    for y in range(ny):
        for x in range(nx):
            v = labels[y, x]
            if v > 0 and (x == 0 or labels[y, x - 1] != v):
                ry[i], rx0[i], comp[i] = y, x, v - 1
            if v > 0 and (x == nx - 1 or labels[y, x + 1] != v):
                rx1[i] = x
                i += 1
    return ry, rx0, rx1, comp


def measure(image, labels, bkg=None, *, fwhm_px: float = 2.5, gain_e_per_adu=None,
            saturation_adu=np.inf):
    """Measure every labelled object of ``image`` (labels: int [ny, nx], 0 = none, 1..n).

    Returns an astropy Table with one row per label 1..max: isophotal ``area`` (px),
    ``flux_iso`` and ``flux_iso_err`` (ADU), ``x_iso, y_iso`` (flux-weighted centroid, px),
    ``a, b`` (px), ``theta_deg``, ``peak`` (ADU), ``sig`` (peak of the matched-filter map) and the
    windowed centroid ``x, y, x_err, y_err`` (px) with the PSF-weighted ``flux, flux_err`` (ADU).
    ``bkg`` defaults to :func:`~aposos.detect.background.background` of the image.
    """
    from astropy.table import Table

    from ..errors import AposError
    from .background import background, padded_grid
    from .significance import FWHM_PER_SIGMA, significance

    image = np.ascontiguousarray(image, dtype=np.float32)
    labels = np.asarray(labels)
    if image.ndim != 2 or labels.shape != image.shape:
        raise AposError(f"image {image.shape} and labels {labels.shape} must be equal 2-D shapes")
    if labels.dtype.kind not in "iu":
        raise AposError(f"labels must be integers, got {labels.dtype}")
    bkg = background(image) if bkg is None else bkg
    sig = significance(image, bkg, fwhm_px)[0]
    ry, rx0, rx1, comp = runs_of_labels(np.ascontiguousarray(labels, dtype=np.int64))
    ncomp = int(labels.max()) if labels.size else 0
    order, offsets = group_runs(comp, ncomp)
    ky, wy, kx, wx = bkg.weights()
    bgrid, rgrid = padded_grid(bkg.back_grid), padded_grid(bkg.rms_grid)
    inv_gain = 0.0 if gain_e_per_adu is None else 1.0 / gain_e_per_adu
    sums = run_stats(image, sig, *bkg.float32_columns, ky, wy.astype(np.float32), ry, rx0, rx1,
                     float(saturation_adu), inv_gain, np.inf)
    st = component_stats(sums, np.arange(len(ry)), ry, rx0, rx1, comp, order, offsets, sig,
                         image.shape, np.inf, 1.0, np.empty((ncomp, NSTAT)))
    a, b, theta = shape_from_moments(st[:, COL_SXX], st[:, COL_SYY], st[:, COL_SXY])
    x, y, xe, ye, f, fe, _ = windowed_centroids(
        image, bgrid, rgrid, ky, wy, kx, wx, st[:, COL_SX].copy(), st[:, COL_SY].copy(),
        fwhm_px / FWHM_PER_SIGMA, inv_gain, 30, 1e-4)
    return Table({"label": np.arange(1, ncomp + 1), "area": st[:, COL_NPIX],
                  "flux_iso": st[:, COL_FLUX], "flux_iso_err": np.sqrt(st[:, COL_VAR]),
                  "x_iso": st[:, COL_SX], "y_iso": st[:, COL_SY], "a": a, "b": b,
                  "theta_deg": theta, "peak": st[:, COL_PEAK], "sig": st[:, COL_SMAX],
                  "x": x, "y": y, "x_err": xe, "y_err": ye, "flux": f, "flux_err": fe})


@njit(cache=True)
def component_peaks(sig, ry, rx0, rx1, order, offsets, comps, levels):
    """Kernel: local maxima of S (3 x 3) at or above ``levels[k]`` in each component ``comps[k]``.

    Returns (x, y, k) int64 arrays: the peaks of blended components, from which each blended
    star gets its own windowed centroid (a light deblending).
    """
    cap = 16
    xs = np.empty(cap, np.int64)
    ys = np.empty(cap, np.int64)
    ks = np.empty(cap, np.int64)
    n = 0
    for k in range(comps.shape[0]):
        c = comps[k]
        for q in range(offsets[c], offsets[c + 1]):
            r = order[q]
            y = ry[r]
            for x in range(rx0[r], rx1[r] + 1):
                s = sig[y, x]
                if s >= levels[k] and _is_local_max(sig, y, x, s):
                    if n == cap:
                        cap *= 2
                        xs2 = np.empty(cap, np.int64)
                        ys2 = np.empty(cap, np.int64)
                        ks2 = np.empty(cap, np.int64)
                        xs2[:n], ys2[:n], ks2[:n] = xs[:n], ys[:n], ks[:n]
                        xs, ys, ks = xs2, ys2, ks2
                    xs[n], ys[n], ks[n] = x, y, k
                    n += 1
    return xs[:n], ys[:n], ks[:n]
