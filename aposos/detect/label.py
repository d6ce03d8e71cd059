"""Connected-component labelling on runs of pixels (8- or 4-connectivity).

A thresholded frame is represented by its *runs*: maximal horizontal stretches of pixels above
the threshold, each ``(y, x0, x1)`` with ``x1`` inclusive, in raster order. Runs of consecutive
rows that touch are joined with a union-find; components are numbered in raster order of their
first pixel (as :func:`scipy.ndimage.label` does). No frame-sized label image is needed by the
detector; :func:`label` paints one for callers who want it.
"""

from __future__ import annotations

import numpy as np
from numba import njit

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


@njit(cache=True)
def link_runs(ry, rx0, rx1, connectivity):
    """Kernel: component number (0-based, raster order) of every run, and the component count."""
    n = ry.shape[0]
    parent = np.arange(n)
    reach = 1 if connectivity == 8 else 0
    prev_lo = prev_hi = row_lo = p = 0  # runs of the previous row: [prev_lo, prev_hi)
    for i in range(n):
        if i == 0 or ry[i] != ry[i - 1]:
            if i > 0 and ry[i] == ry[i - 1] + 1:
                prev_lo, prev_hi = row_lo, i
            else:
                prev_lo = prev_hi = i
            row_lo = i
            p = prev_lo
        while p < prev_hi and rx1[p] + reach < rx0[i]:
            p += 1  # ends left of run i, hence left of the later runs of this row
        j = p
        while j < prev_hi and rx0[j] <= rx1[i] + reach:
            a, b = _find(parent, i), _find(parent, j)
            if a < b:
                parent[b] = a
            elif b < a:
                parent[a] = b
            j += 1
    comp = np.full(n, -1, np.int64)
    ncomp = 0
    for i in range(n):
        root = _find(parent, i)
        if comp[root] < 0:
            comp[root] = ncomp
            ncomp += 1
        comp[i] = comp[root]
    return comp, ncomp


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
