"""Asterism hashing: quads of stars described by a code invariant to shift, rotation and scale.

For four stars A, B, C, D (A, B the most widely separated pair) put each point in the frame
where A is 0 and B is 1 (complex plane): ``t = (P - A) / (B - A)``. The code is
``(Re tC, Im tC, Re tD, Im tD)``. C and D lie inside the circle with diameter AB. Complex
division keeps orientation, so the code is *not* mirror-invariant: both point sets must be
given with the same parity (callers flip the image x axis for parity +1 so that pixel and sky
standard coordinates share a handedness).

Codes are canonical up to the order of A/B (``t -> 1 - t``) and of C/D; the reference side
stores one canonical code per quad and the image side queries all four variants, so noise near
the canonical boundaries cannot lose a match (after astrometry.net, Lang et al. 2010).
"""

from __future__ import annotations

from itertools import chain, combinations

import numpy as np
from numba import njit
from scipy.spatial import cKDTree


def build_quads(z: np.ndarray, d_min: float, d_max: float, n_inner: int) -> np.ndarray:
    """Quads (index array, shape (n, 4): A, B, C, D) of points ``z`` (complex, brightest first).

    Every pair A, B with ``d_min <= |AB| <= d_max`` is a quad backbone; C and D are taken from
    the ``n_inner`` brightest other points inside the circle with diameter AB (numba kernel;
    :func:`build_quads_reference` is the plain loop it reproduces).
    """
    n = len(z)
    if n < 4 or n_inner < 2:
        return np.zeros((0, 4), dtype=np.int64)
    i, j = np.triu_indices(n, 1)
    d = np.abs(z[i] - z[j])
    keep = (d >= d_min) & (d <= d_max)
    i, j = i[keep].astype(np.int64), j[keep].astype(np.int64)
    out = np.empty((len(i) * (n_inner * (n_inner - 1) // 2), 4), dtype=np.int64)
    by_x = np.argsort(z.real, kind="stable").astype(np.int64)
    k = _quads_kernel(np.ascontiguousarray(z.real), np.ascontiguousarray(z.imag), by_x,
                      np.ascontiguousarray(z.real[by_x]), i, j, n_inner, out)
    return out[:k]


@njit(cache=True)
def _quads_kernel(zr, zi, by_x, x_sorted, i_arr, j_arr, n_inner, out):
    """Fill ``out`` with quads; points inside each circle are searched in an x window of the
    x-sorted order and the ``n_inner`` smallest indices (brightest) kept."""
    n = len(zr)
    found = np.empty(n, np.int64)
    k = 0
    for p in range(len(i_arr)):
        a, b = i_arr[p], j_arr[p]
        mx, my = 0.5 * (zr[a] + zr[b]), 0.5 * (zi[a] + zi[b])
        r2 = 0.25 * ((zr[b] - zr[a]) ** 2 + (zi[b] - zi[a]) ** 2) * 0.999 ** 2
        rad = np.sqrt(r2)
        lo = np.searchsorted(x_sorted, mx - rad)
        hi = np.searchsorted(x_sorted, mx + rad, side="right")
        m = 0
        for q in range(lo, hi):
            c = by_x[q]
            if c != a and c != b and (zr[c] - mx) ** 2 + (zi[c] - my) ** 2 < r2:
                found[m] = c
                m += 1
        if m < 2:
            continue
        inside = np.sort(found[:m])[:n_inner]
        m = len(inside)
        for s in range(m):
            for t in range(s + 1, m):
                out[k, 0], out[k, 1], out[k, 2], out[k, 3] = a, b, inside[s], inside[t]
                k += 1
    return k


def build_quads_reference(z: np.ndarray, d_min: float, d_max: float, n_inner: int) -> np.ndarray:
    """Plain-loop reference implementation of :func:`build_quads` (for tests)."""
    n = len(z)
    out = []
    for a in range(n):
        for b in range(a + 1, n):
            dab = abs(z[b] - z[a])
            if not (d_min <= dab <= d_max):
                continue
            mid, rad = 0.5 * (z[a] + z[b]), 0.5 * dab
            inside = [k for k in range(n) if k not in (a, b) and abs(z[k] - mid) < rad * 0.999][:n_inner]
            out.extend((a, b, c, d) for c, d in combinations(inside, 2))
    return np.asarray(out, dtype=np.int64).reshape(-1, 4)


def quad_codes(z: np.ndarray, quads: np.ndarray) -> np.ndarray:
    """Codes (n, 4) of ``quads`` in the order given (no canonicalisation)."""
    a, b, c, d = (z[quads[:, k]] for k in range(4))
    tc, td = (c - a) / (b - a), (d - a) / (b - a)
    return np.stack([tc.real, tc.imag, td.real, td.imag], axis=-1)


def canonical(quads: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Reorder each quad so its code has Re tC <= Re tD and Re tC + Re tD <= 1."""
    q = quads.copy()
    code = quad_codes(z, q)
    swap_ab = code[:, 0] + code[:, 2] > 1.0
    q[swap_ab, 0], q[swap_ab, 1] = quads[swap_ab, 1], quads[swap_ab, 0]
    code = quad_codes(z, q)
    swap_cd = code[:, 0] > code[:, 2]
    q2 = q.copy()
    q2[swap_cd, 2], q2[swap_cd, 3] = q[swap_cd, 3], q[swap_cd, 2]
    return q2


def variants(quads: np.ndarray) -> np.ndarray:
    """The four orderings (A/B swapped, C/D swapped) of each quad, shape (4n, 4)."""
    a, b, c, d = quads.T
    return np.concatenate([np.stack(v, -1) for v in ((a, b, c, d), (b, a, c, d), (a, b, d, c), (b, a, d, c))])


class QuadIndex:
    """k-d tree over the canonical codes of a reference point set."""

    def __init__(self, z: np.ndarray, quads: np.ndarray):
        self.z = z
        self.quads = canonical(quads, z) if len(quads) else quads
        self.codes = quad_codes(z, self.quads) if len(quads) else np.zeros((0, 4))
        self.tree = cKDTree(self.codes, balanced_tree=False, compact_nodes=False) if len(quads) else None

    def __len__(self) -> int:
        return len(self.quads)

    def matches(self, z_img: np.ndarray, img_quads: np.ndarray, tol: float):
        """Candidate correspondences: (image quad (4,) ordered, reference quad (4,), code distance).

        Returns arrays ``img (m, 4)``, ``ref (m, 4)`` and ``dist (m,)`` sorted by distance.
        """
        empty = (np.zeros((0, 4), np.int64), np.zeros((0, 4), np.int64), np.zeros(0))
        if self.tree is None or len(img_quads) == 0:
            return empty
        allq = variants(img_quads)
        codes = quad_codes(z_img, allq)
        hits = self.tree.query_ball_point(codes, r=tol, return_sorted=False)
        counts = np.fromiter((len(h) for h in hits), dtype=np.int64, count=len(hits))
        if counts.sum() == 0:
            return empty
        qi = np.repeat(np.arange(len(allq)), counts)
        ri = np.fromiter(chain.from_iterable(hits), dtype=np.int64, count=int(counts.sum()))
        dist = np.linalg.norm(codes[qi] - self.codes[ri], axis=1)
        order = np.argsort(dist, kind="stable")
        return allq[qi[order]], self.quads[ri[order]], dist[order]
