"""Matched-filter significance map: background-subtracted image smoothed by the PSF, in sigmas.

``S = (k * (image - back)) / (rms * sqrt(sum k^2))`` with ``k`` a normalised circular Gaussian
of the PSF width (separable, truncated at ``radius`` pixels). For white noise of standard
deviation ``rms``, ``S`` is a unit-variance Gaussian field, and at the position of a point source
centred on a pixel it equals the source's optimal (PSF-weighted) signal-to-noise ratio. Non-finite
pixels count as background (zero after subtraction); pixels beyond the frame edge likewise.

The kernel works on blocks of rows (in parallel), never builds the background or noise map, and
while each row is still in cache also finds the runs of pixels with ``S >= threshold`` and takes
each run's pixel sums (:func:`~aposos.detect.measure.run_sums`: flux, moments, peaks), from which
the components' statistics are reduced after labelling. The image and the map are each read or
written once; later stages read them only around objects.

Parallelism: only this kernel and the background's box statistics run ``parallel=True`` (they
are the compute-heavy, embarrassingly parallel ones); the prange body is a plain function, which
numba compiles (and vectorises) as serial code. The lighter kernels (labels, the reduction to
components, per-object measurements) are serial.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange
from numba.cpython.unsafe.numbers import trailing_zeros

from .background import FAST, Background, cubic_weights
from .workspace import kept
from .measure import NRUN, R_NPEAKS, R_SMAX, _is_local_max, row_sums, run_stats

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
BLOCK_ROWS = 128


def gaussian_kernel_1d(fwhm_px: float, radius_sigma: float = 2.5) -> np.ndarray:
    """Normalised 1-D Gaussian (sum 1) of the given FWHM sampled at integer offsets."""
    sigma = fwhm_px / FWHM_PER_SIGMA
    r = max(1, int(math.ceil(radius_sigma * sigma)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    return k / k.sum()


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _row_edges(s, threshold, edges, mask):
    """Edges of the runs of ``s >= threshold`` in a row into ``edges``; returns their number.

    Even entries are the first pixels of the runs, odd entries one past their last pixels.
    ``mask``: uint8 work space, length a multiple of 8 above ``len(s)`` (see :func:`_mask_edges`).
    """
    nx = s.shape[0]
    for x in range(nx):
        mask[x] = 1 if s[x] >= threshold else 0
    return _mask_edges(mask, nx, edges)


@njit(cache=True, error_model="numpy")
def _mask_edges(mask, nx, edges):
    """Edges (as :func:`_row_edges`) of the runs of ones in ``mask[:nx]`` (uint8, 0 or 1; its
    length a multiple of 8 above ``nx``, the bytes from ``nx`` on are zeroed here).

    The mask is read 8 bytes at a time as little-endian integers (x86, ARM): a word XOR itself
    shifted by one byte (the previous word's last byte shifted in) has one bit set per change
    of state, found from its trailing zero bits; most words have none.
    """
    for x in range(nx, mask.shape[0]):
        mask[x] = 0
    words = mask.view(np.uint64)
    prev = np.uint64(0)
    e = 0
    for w in range(words.shape[0]):
        m = words[w]
        t = m ^ ((m << np.uint64(8)) | (prev >> np.uint64(56)))
        prev = m
        while t != 0:
            edges[e] = 8 * w + (trailing_zeros(t) >> 3)
            e += 1
            t &= t - np.uint64(1)
    return e


@njit(cache=True, error_model="numpy")
def _row_sums(image, out, y, y0, y1, row_edges, e, dring, dslot, pad, rcols, ky, wy,
              saturation, inv_gain, peak_thresh, sums, smaxes, nr, deferred, nd):
    """Sums of the runs of row ``y`` (edges ``row_edges[:e]``) into ``sums[nr:]``
    (:func:`~aposos.detect.measure.row_sums`); peak candidates of the block's first and last
    rows, whose other neighbours another block computes, go to ``deferred``. Returns the new
    (nr, nd), or (-1, nd) if ``sums`` is full."""
    if nr + e // 2 > sums.shape[0]:
        return -1, nd
    ny = image.shape[0]
    defer = (y == y0 and y > 0) or (y == y1 - 1 and y1 < ny)
    nd = row_sums(sums, smaxes, nr, image, out, dring, dslot, pad, rcols, ky, wy, y, row_edges, e,
                  saturation, inv_gain, peak_thresh, defer, deferred, nd)
    return nr + e // 2, nd


@njit(cache=True, parallel=True, fastmath=FAST, error_model="numpy")
def significance_kernel(image, bcols, rcols, ky, wy, taps, threshold, out, nonfinite_per_row,
                        runs_per_row, edges, nedges, sums, smaxes, nsums, deferred, ndeferred,
                        saturation, inv_gain, peak_thresh):
    """Kernel: fill ``out`` (float32 [ny, nx]) with S; count non-finite pixels and runs per row;
    sum the pixels of each run.

    ``bcols``, ``rcols``: background and noise grids interpolated along x (float32, see
    :attr:`~aposos.detect.background.Background.float32_columns`); ``ky``, ``wy``: the rows'
    knots and weights (float32); ``taps``: the 1-D kernel as a tuple of float32 (its length is
    then a compile-time constant: the tap loops unroll and the pixel loops vectorise). Works on
    blocks of ``BLOCK_ROWS`` rows: each background-subtracted row (halo included) is smoothed
    along x into a ring of ``len(taps)`` rows (in cache), and as soon as the ring holds a row's
    neighbourhood the row is smoothed along y into ``out``. The run edges of block ``b`` (see
    :func:`_row_edges`) go to ``edges[b]``, their number to ``nedges[b]``; the runs' sums
    (:func:`~aposos.detect.measure.run_sums`, one row behind, so that peak candidates see the
    rows on both sides) to ``sums[b]``, their number to ``nsums[b]``, the peak candidates of the
    block's first and last rows (whose neighbours another block computes) to ``deferred[b]``.
    ``nedges[b] = -1`` if the block's edges or sums do not fit: :func:`gather_runs` then reads
    its runs from ``out`` and sums them itself.
    """
    nblocks = (image.shape[0] + BLOCK_ROWS - 1) // BLOCK_ROWS
    for b in prange(nblocks):  # the body is a plain function: compiled as in serial code
        nedges[b], nsums[b], ndeferred[b] = _significance_block(
            b, image, bcols, rcols, ky, wy, taps, threshold, out, nonfinite_per_row,
            runs_per_row, edges[b], sums[b], smaxes[b], deferred[b], saturation, inv_gain,
            peak_thresh)
    return out


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _significance_block(b, image, bcols, rcols, ky, wy, taps, threshold, out, nonfinite_per_row,
                        runs_per_row, edges, sums, smaxes, deferred, saturation, inv_gain,
                        peak_thresh):
    """Block ``b`` of :func:`significance_kernel`; returns its numbers of edges (-1: did not
    fit), sums and deferred peak candidates."""
    ny, nx = image.shape
    ntap = len(taps)
    r = (ntap - 1) // 2
    norm = 0.0
    for i in range(ntap):
        norm += taps[i] * taps[i]  # the 2-D kernel's sum of squares is norm**2
    inv = np.float32(1.0 / norm)
    cap = edges.shape[0]
    y0 = b * BLOCK_ROWS
    y1 = min(ny, y0 + BLOCK_ROWS)
    # row yy smoothed along x at (yy - y0 + r) % ntap; rows padded by 16 floats, so that they do
    # not start 4 KiB apart (loads from 7-63 rows at once alias with each other and with the
    # output row: the vertical pass measured ~10 % slower)
    ring = np.empty((ntap, nx + 16), np.float32)
    # row yy background-subtracted (0 where not finite, r zeros on both sides) at
    # (yy - y0 + r) % nd_ring: the sums of row y - 1, taken after row y, read it
    nd_ring = ntap + 1
    dring = np.zeros((nd_ring, nx + 2 * r), np.float32)
    row_edges = np.empty((2, nx + 1), np.int32)  # this row's and the previous row's
    mask = np.empty((nx + 8) // 8 * 8, np.uint8)
    ne = nr = nd = 0
    e_prev = 0
    for yy in range(y0 - r, y1 + r):
        hrow = ring[(yy - y0 + r) % ntap]
        if yy < 0 or yy >= ny:
            hrow[:] = 0.0
        else:
            k = ky[yy]  # the background row: its 4 knot rows, interpolated in the pixel loop
            c0, c1, c2, c3 = bcols[k], bcols[k + 1], bcols[k + 2], bcols[k + 3]
            w0, w1, w2, w3 = wy[yy, 0], wy[yy, 1], wy[yy, 2], wy[yy, 3]
            src = image[yy]
            d = dring[(yy - y0 + r) % nd_ring]
            bad = np.float32(0.0)  # float32 lanes, exact up to 2**24
            for x in range(nx):
                v = src[x] - (w0 * c0[x] + w1 * c1[x] + w2 * c2[x] + w3 * c3[x])
                fin = abs(v) < np.float32(np.inf)  # False for NaN and +-inf
                d[x + r] = v if fin else np.float32(0.0)
                bad += np.float32(0.0) if fin else np.float32(1.0)
            if y0 <= yy < y1:
                nonfinite_per_row[yy] = int(bad)
            for x in range(nx):
                a = np.float32(0.0)
                for i in range(ntap):
                    a += taps[i] * d[x + i]
                hrow[x] = a
        y = yy - r
        if y < y0:
            continue
        k = ky[y]
        c0, c1, c2, c3 = rcols[k], rcols[k + 1], rcols[k + 2], rcols[k + 3]
        w0, w1, w2, w3 = wy[y, 0], wy[y, 1], wy[y, 2], wy[y, 3]
        first = y - y0  # ring slot of row y - r
        orow = out[y]
        for x in range(nx):
            a = np.float32(0.0)
            for j in range(ntap):
                a += taps[j] * ring[(first + j) % ntap, x]
            v = a * inv / (w0 * c0[x] + w1 * c1[x] + w2 * c2[x] + w3 * c3[x])
            orow[x] = v
            mask[x] = 1 if v >= threshold else 0
        cur = row_edges[(y - y0) % 2]
        e = _mask_edges(mask, nx, cur)
        runs_per_row[y] = e // 2
        if 0 <= ne and ne + e <= cap:
            edges[ne:ne + e] = cur[:e]
            ne += e
        else:
            ne = -1
        if y > y0 and ne >= 0:  # the previous row's runs, its neighbours now computed
            nr, nd = _row_sums(image, out, y - 1, y0, y1, row_edges[(y - 1 - y0) % 2],
                               e_prev, dring, (y - 1 - y0 + r) % nd_ring, r, rcols, ky, wy,
                               saturation, inv_gain, peak_thresh, sums, smaxes, nr, deferred,
                               nd)
            ne = -1 if nr < 0 else ne
        e_prev = e
    if ne >= 0:
        nr, nd = _row_sums(image, out, y1 - 1, y0, y1, row_edges[(y1 - 1 - y0) % 2], e_prev,
                           dring, (y1 - 1 - y0 + r) % nd_ring, r, rcols, ky, wy,
                           saturation, inv_gain, peak_thresh, sums, smaxes, nr, deferred, nd)
        ne = -1 if nr < 0 else ne
    return ne, nr, nd


@njit(cache=True, error_model="numpy")
def gather_runs(image, sig, threshold, runs_per_row, edges, nedges, sums, smaxes, deferred,
                ndeferred,
                bcols, rcols, ky, wy, saturation, inv_gain, peak_thresh, ry, rx0, rx1,
                sum_rows, extra, rsmax):
    """Kernel: the runs ``(y, x0, x1)`` (into ``ry``, ``rx0``, ``rx1``: int32, ``x1`` inclusive,
    raster order) of ``sig >= threshold`` from the blocks of :func:`significance_kernel`, and
    where their sums are: run ``i``'s in row ``sum_rows[i]`` of ``sums`` (its blocks stacked,
    [nblocks * capacity, NRUN]; left in place, not copied) or, for a block that did not fit
    (read again from the map and summed here), of ``extra`` (rows ``len(sums) + k``: callers
    stack ``extra`` below ``sums`` when it is not empty); each run's maximum of S into
    ``rsmax`` (float32).
    """
    ny, nx = sig.shape
    cap = sums.shape[1]
    flat = sums.reshape((-1, sums.shape[2]))
    row_edges = np.empty(nx + 1, np.int32)
    mask = np.empty((nx + 8) // 8 * 8, np.uint8)
    i = 0
    k = 0
    for b in range(nedges.shape[0]):
        y0 = b * BLOCK_ROWS
        start = i
        p = 0
        for y in range(y0, min(ny, y0 + BLOCK_ROWS)):
            if nedges[b] >= 0:
                e = edges[b]
            else:  # the block did not fit: read its runs again from the map
                _row_edges(sig[y], threshold, row_edges, mask)
                e, p = row_edges, 0
            for _ in range(runs_per_row[y]):
                ry[i], rx0[i], rx1[i] = y, e[p], e[p + 1] - 1
                p += 2
                i += 1
        if nedges[b] >= 0:
            for j in range(start, i):
                sum_rows[j] = b * cap + j - start
                rsmax[j] = smaxes[b, j - start]
            for q in range(ndeferred[b]):
                x, y, d = deferred[b, q, 0], deferred[b, q, 1], deferred[b, q, 2]
                if _is_local_max(sig, y, x, sig[y, x]):
                    flat[b * cap + d, R_NPEAKS] += 1
        else:
            extra[k:k + i - start] = run_stats(image, sig, bcols, rcols, ky, wy, ry[start:i],
                                               rx0[start:i], rx1[start:i], saturation,
                                               inv_gain, peak_thresh)
            for j in range(start, i):
                sum_rows[j] = flat.shape[0] + k + j - start
                rsmax[j] = extra[k + j - start, R_SMAX]
            k += i - start


TAP_COUNTS = (7, 11, 15, 23, 31, 47, 63)


def kernel_taps(fwhm_px: float) -> tuple:
    """:func:`gaussian_kernel_1d` as a tuple of float32, zero-padded on both sides to the next
    of ``TAP_COUNTS`` (each tuple length is one compilation of the kernel: a few of them cover
    all frames)."""
    k = gaussian_kernel_1d(fwhm_px)
    n = next((c for c in TAP_COUNTS if c >= len(k)), len(k))
    pad = (n - len(k)) // 2
    return tuple(np.float32(v) for v in np.pad(k, pad))


def significance(image, bkg: Background, fwhm_px: float, threshold: float = 3.0,
                 out: np.ndarray | None = None, *, saturation: float = np.inf,
                 inv_gain: float = 0.0, peak_thresh: float = np.inf, reuse: bool = False):
    """Matched-filter significance map of ``image`` (float32 [ny, nx], sigmas), its runs and
    their sums.

    Returns (S, (ry, rx0, rx1), sums, smax, nonfinite_per_row): the map (in ``out`` if given); the
    runs of ``S >= threshold`` (int32 row, first and last column, raster order, as
    :func:`~aposos.detect.label.extract_runs`); the runs' pixel sums as (table, rows): run
    ``i``'s sums are ``table[rows[i]]`` (float64, ``NRUN`` columns,
    :func:`~aposos.detect.measure.row_sums`: ``saturation`` in ADU, ``inv_gain`` in ADU/e-,
    peaks of S counted at or above ``peak_thresh``); each run's maximum of S (float32, also in
    its sums); the number of non-finite input pixels in each row. With ``reuse``, the work arrays, the runs and their sums (and the map, unless ``out``
    is given) are this thread's kept arrays (:mod:`~aposos.detect.workspace`): valid until the
    next such call in the thread.
    """
    ny, nx = image.shape
    new = (lambda name, shape, dtype=np.float32: kept(name, shape, dtype)) if reuse else (
        lambda name, shape, dtype=np.float32: np.empty(shape, dtype))
    if out is None:
        out = new("sig", (ny, nx))
    nonfinite = np.zeros(ny, np.int64)
    runs = np.zeros(ny, np.int64)
    nblocks = (ny + BLOCK_ROWS - 1) // BLOCK_ROWS
    # room for nx / 32 runs per row on average over a block (a crowded block rereads its rows)
    # and the sums of half of them (one sum per 64 pixels: 2 bytes per pixel of the frame)
    cap = BLOCK_ROWS * min(nx + 1, max(64, nx // 16))
    edges = new("edges", (nblocks, cap), np.int32)
    nedges = np.zeros(nblocks, np.int64)
    sums = new("block_sums", (nblocks, cap // 4, NRUN), np.float64)
    smaxes = new("block_smax", (nblocks, cap // 4), np.float32)
    nsums = np.zeros(nblocks, np.int64)
    deferred = new("deferred", (nblocks, 2 * (nx // 2 + 2), 3), np.int64)
    ndeferred = np.zeros(nblocks, np.int64)
    ky, wy = cubic_weights(ny, bkg.back_grid.shape[0])
    wy = wy.astype(np.float32)
    bcols, rcols = bkg.float32_columns
    t = np.float32(threshold)
    args = (float(saturation), float(inv_gain), float(peak_thresh))
    significance_kernel(image, bcols, rcols, ky, wy, kernel_taps(fwhm_px), t, out, nonfinite,
                        runs, edges, nedges, sums, smaxes, nsums, deferred, ndeferred, *args)
    n = int(runs.sum())
    ry, rx0, rx1 = (new(name, n, np.int32) for name in ("ry", "rx0", "rx1"))
    sum_rows = new("sum_rows", n, np.int64)
    rsmax = new("rsmax", n, np.float32)
    blocks = np.arange(nblocks) * BLOCK_ROWS
    reread = int(sum(runs[y0:y0 + BLOCK_ROWS].sum() for y0 in blocks[nedges < 0]))
    extra = np.empty((reread, NRUN))
    gather_runs(image, out, t, runs, edges, nedges, sums, smaxes, deferred, ndeferred, bcols,
                rcols, ky, wy, *args, ry, rx0, rx1, sum_rows, extra, rsmax)
    flat = sums.reshape(-1, NRUN)
    return out, (ry, rx0, rx1), ((flat, sum_rows) if not reread else
                                 (np.concatenate([flat, extra]), sum_rows)), rsmax, nonfinite
