"""Connected-component labelling on runs of pixels (8- or 4-connectivity).

A thresholded frame is represented by its *runs*: maximal horizontal stretches of pixels above
the threshold, each ``(y, x0, x1)`` with ``x1`` inclusive, in raster order. Runs of consecutive
rows that touch are joined with a union-find; components are numbered in raster order of their
first pixel (as :func:`scipy.ndimage.label` does). No frame-sized label image is needed by the
detector; :func:`label` paints one for callers who want it.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..errors import AposError


@njit(cache=True)
def extract_runs(values, threshold, runs_per_row):
    """Kernel: runs of ``values >= threshold`` -> (y, x0, x1) int32 arrays in raster order."""
    ny, nx = values.shape
    start = np.zeros(ny + 1, np.int64)
    for y in range(ny):
        start[y + 1] = start[y] + runs_per_row[y]
    n = start[ny]
    ry = np.empty(n, np.int32)
    rx0 = np.empty(n, np.int32)
    rx1 = np.empty(n, np.int32)
    for y in range(ny):
        i = start[y]
        inside = False
        row = values[y]
        for x in range(nx):
            above = row[x] >= threshold
            if above and not inside:
                ry[i] = y
                rx0[i] = x
            elif inside and not above:
                rx1[i] = x - 1
                i += 1
            inside = above
        if inside:
            rx1[i] = nx - 1
    return ry, rx0, rx1


@njit(cache=True)
def _find(parent, i):
    root = i
    while parent[root] != root:
        root = parent[root]
    while parent[i] != root:  # path compression
        nxt = parent[i]
        parent[i] = root
        i = nxt
    return root


PARALLEL_MIN_RUNS = 20_000  # below this, one thread labels all runs


@njit(cache=True, parallel=True)
def link_runs(ry, rx0, rx1, connectivity):
    """Kernel: component number (0-based, raster order of first runs) of every run, and the
    component count.

    Above ``PARALLEL_MIN_RUNS`` runs, the top and bottom halves (split between two rows) are
    labelled in parallel, then the components that touch across the split are joined and all
    are renumbered.
    """
    n = ry.shape[0]
    reach = 1 if connectivity == 8 else 0
    comp = np.empty(n, np.int64)
    m = np.searchsorted(ry, ry[n // 2]) if n >= PARALLEL_MIN_RUNS else 0
    if m == 0:
        return comp, _link_part(ry, rx0, rx1, reach, 0, n, comp)
    counts = np.zeros(2, np.int64)
    for part in prange(2):
        lo, hi = (0, m) if part == 0 else (m, n)
        counts[part] = _link_part(ry, rx0, rx1, reach, lo, hi, comp)
    na, nb = counts[0], counts[1]
    parent = np.arange(na + nb)  # the halves' labels, bottom ones after the top ones
    if ry[m] == ry[m - 1] + 1:  # runs of the two rows beside the split that touch
        a0 = m - 1
        while a0 > 0 and ry[a0 - 1] == ry[m - 1]:
            a0 -= 1
        p = a0
        i = m
        while i < n and ry[i] == ry[m]:
            while p < m and rx1[p] + reach < rx0[i]:
                p += 1
            j = p
            while j < m and rx0[j] <= rx1[i] + reach:
                _union(parent, comp[j], na + comp[i])
                j += 1
            i += 1
    new = np.empty(na + nb, np.int64)  # a joined component keeps its smallest (first) label
    k = 0
    for lab in range(na + nb):
        root = _find(parent, lab)
        if root == lab:
            new[lab] = k
            k += 1
        else:
            new[lab] = new[root]
    for r in prange(n):
        comp[r] = new[comp[r] + (na if r >= m else 0)]
    return comp, k


@njit(cache=True)
def _union(parent, a, b):
    """Join the sets of ``a`` and ``b``; the smaller root becomes the root."""
    a, b = _find(parent, a), _find(parent, b)
    if a < b:
        parent[b] = a
    elif b < a:
        parent[a] = b


@njit(cache=True)
def _link_part(ry, rx0, rx1, reach, lo, hi, comp):
    """Label runs ``lo..hi-1`` by themselves into ``comp[lo:hi]`` (0-based, raster order of
    first runs; ``reach`` 1 for 8-connectivity, 0 for 4); returns the number of components."""
    n = hi - lo
    parent = np.arange(n)
    prev_lo = prev_hi = row_lo = p = 0  # runs of the previous row: [prev_lo, prev_hi)
    for i in range(n):
        y = ry[lo + i]
        if i == 0 or y != ry[lo + i - 1]:
            if i > 0 and y == ry[lo + i - 1] + 1:
                prev_lo, prev_hi = row_lo, i
            else:
                prev_lo = prev_hi = i
            row_lo = i
            p = prev_lo
        while p < prev_hi and rx1[lo + p] + reach < rx0[lo + i]:
            p += 1  # ends left of run i, hence left of the later runs of this row
        j = p
        while j < prev_hi and rx0[lo + j] <= rx1[lo + i] + reach:
            _union(parent, i, j)
            j += 1
    label = np.full(n, -1, np.int64)
    k = 0
    for i in range(n):
        root = _find(parent, i)
        if label[root] < 0:
            label[root] = k
            k += 1
        comp[lo + i] = label[root]
    return k


@njit(cache=True)
def paint(shape_y, shape_x, ry, rx0, rx1, comp):
    """Kernel: int32 label image (0 background, components 1..n) from runs."""
    out = np.zeros((shape_y, shape_x), np.int32)
    for i in range(ry.shape[0]):
        out[ry[i], rx0[i]:rx1[i] + 1] = comp[i] + 1
    return out


@njit(cache=True)
def _count_runs(mask):
    ny, nx = mask.shape
    counts = np.zeros(ny, np.int64)
    for y in range(ny):
        inside = False
        for x in range(nx):
            if mask[y, x] and not inside:
                counts[y] += 1
            inside = mask[y, x]
    return counts


def runs_of(mask):
    """Runs (y, x0, x1) of a boolean mask (2-D)."""
    m = np.ascontiguousarray(mask, dtype=np.uint8)
    return extract_runs(m, np.uint8(1), _count_runs(m))


def label(mask, connectivity: int = 8):
    """Label the connected components of a boolean 2-D ``mask``.

    Returns (labels int32 [ny, nx] with 0 for background and 1..n for components in raster
    order of their first pixel, n). Same result as ``scipy.ndimage.label`` with the full 3 x 3
    structure (8-connectivity) or the default cross (4-connectivity).
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise AposError(f"label needs a 2-D mask, got {mask.ndim} dimensions")
    if connectivity not in (4, 8):
        raise AposError(f"connectivity must be 4 or 8, got {connectivity}", key="connectivity")
    ry, rx0, rx1 = runs_of(mask)
    comp, n = link_runs(ry, rx0, rx1, connectivity)
    return paint(mask.shape[0], mask.shape[1], ry, rx0, rx1, comp), int(n)
