"""Matched-filter significance map: background-subtracted image smoothed by the PSF, in sigmas.

``S = (k * (image - back)) / (rms * sqrt(sum k^2))`` with ``k`` a normalised circular Gaussian
of the PSF width (separable, truncated at ``radius`` pixels). For white noise of standard
deviation ``rms``, ``S`` is a unit-variance Gaussian field, and at the position of a point source
centred on a pixel it equals the source's optimal (PSF-weighted) signal-to-noise ratio. Non-finite
pixels count as background (zero after subtraction); pixels beyond the frame edge likewise.

The kernel works on blocks of rows (in parallel), never builds the background or noise map, and
also counts, per row, the runs of pixels with ``S >= threshold`` for the labelling pass.

Parallelism: only this kernel and the background's box statistics run ``parallel=True`` (they
are the compute-heavy, embarrassingly parallel ones). On the shared 2-core development machine
two threads measured no faster than one (the other core was busy); the lighter kernels (runs,
labels, per-object measurements) are serial.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .background import Background, interp_row, padded_grid

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
BLOCK_ROWS = 64


def gaussian_kernel_1d(fwhm_px: float, radius_sigma: float = 2.5) -> np.ndarray:
    """Normalised 1-D Gaussian (sum 1) of the given FWHM sampled at integer offsets."""
    sigma = fwhm_px / FWHM_PER_SIGMA
    r = max(1, int(math.ceil(radius_sigma * sigma)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    return k / k.sum()


@njit(cache=True)
def _row_runs(s, threshold):
    """Number of runs of ``s >= threshold`` in a row (branch-free count of rising edges)."""
    n = 0
    prev = 0
    for x in range(s.shape[0]):
        cur = 1 if s[x] >= threshold else 0
        n += cur * (1 - prev)
        prev = cur
    return n


@njit(cache=True, parallel=True)
def significance_kernel(image, bgrid, rgrid, ky, wy, seg_start, seg_knot, wx_t, k, threshold,
                        out, runs_per_row, nonfinite_per_row):
    """Kernel: fill ``out`` (float32 [ny, nx]) with S; count runs and non-finite pixels per row.

    Works on blocks of ``BLOCK_ROWS`` rows: background-subtracted rows (halo included) are
    smoothed along x into a block buffer, then along y into ``out``; every inner loop runs
    over contiguous float32 columns so that it vectorises.
    """
    ny, nx = image.shape
    r = (k.shape[0] - 1) // 2
    ntap = 2 * r + 1
    norm = 0.0
    for i in range(ntap):
        norm += k[i] * k[i]  # the 2-D kernel's sum of squares is norm**2
    kf = k.astype(np.float32)
    nblocks = (ny + BLOCK_ROWS - 1) // BLOCK_ROWS
    for b in prange(nblocks):
        y0 = b * BLOCK_ROWS
        y1 = min(ny, y0 + BLOCK_ROWS)
        h = np.zeros((y1 - y0 + 2 * r, nx), np.float32)
        brow = np.empty(nx, np.float32)
        d = np.zeros(nx + 2 * r, np.float32)
        for yy in range(max(0, y0 - r), min(ny, y1 + r)):
            interp_row(bgrid, ky[yy], wy[yy], seg_start, seg_knot, wx_t, brow)
            src = image[yy]
            bad = 0
            for x in range(nx):
                v = src[x] - brow[x]
                fin = abs(v) < np.inf  # False for NaN and +-inf
                d[x + r] = v if fin else np.float32(0.0)
                bad += 0 if fin else 1
            if y0 <= yy < y1:
                nonfinite_per_row[yy] = bad
            hrow = h[yy - y0 + r]
            for i in range(ntap):
                ki = kf[i]
                for x in range(nx):
                    hrow[x] += ki * d[x + i]
        rrow = np.empty(nx, np.float32)
        for y in range(y0, y1):
            interp_row(rgrid, ky[y], wy[y], seg_start, seg_knot, wx_t, rrow)
            orow = out[y]
            orow[:] = 0.0
            for j in range(ntap):
                kj = kf[j]
                hr = h[y - y0 + j]
                for x in range(nx):
                    orow[x] += kj * hr[x]
            inv = np.float32(1.0 / norm)
            for x in range(nx):
                orow[x] = orow[x] * inv / rrow[x]
            runs_per_row[y] = _row_runs(orow, threshold)
    return out


def significance(image, bkg: Background, fwhm_px: float, threshold: float = 3.0,
                 out: np.ndarray | None = None):
    """Matched-filter significance map of ``image`` (float32 [ny, nx], sigmas).

    Returns (S, runs_per_row, nonfinite_per_row): the map, the number of runs with
    ``S >= threshold`` in each row and the number of non-finite input pixels in each row.
    """
    ny, nx = image.shape
    if out is None:
        out = np.empty((ny, nx), np.float32)
    runs = np.zeros(ny, np.int64)
    nonfinite = np.zeros(ny, np.int64)
    significance_kernel(image, padded_grid(bkg.back_grid), padded_grid(bkg.rms_grid),
                        *bkg.row_plan(), gaussian_kernel_1d(fwhm_px), np.float32(threshold), out,
                        runs, nonfinite)
    return out, runs, nonfinite
