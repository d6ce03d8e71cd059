"""Matched-filter significance map: background-subtracted image smoothed by the PSF, in sigmas.

``S = (k * (image - back)) / (rms * sqrt(sum k^2))`` with ``k`` a normalised circular Gaussian
of the PSF width (separable, truncated at ``radius`` pixels). For white noise of standard
deviation ``rms``, ``S`` is a unit-variance Gaussian field, and at the position of a point source
centred on a pixel it equals the source's optimal (PSF-weighted) signal-to-noise ratio. Non-finite
pixels count as background (zero after subtraction); pixels beyond the frame edge likewise.

The kernel works on blocks of rows (in parallel), never builds the background or noise map, and
also counts, per row, the runs of pixels with ``S >= threshold`` for the labelling pass.
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
    n = 0
    inside = False
    for x in range(s.shape[0]):
        above = s[x] >= threshold
        if above and not inside:
            n += 1
        inside = above
    return n


@njit(cache=True, parallel=True)
def significance_kernel(image, bgrid, rgrid, ky, wy, kx, wx, k, threshold, out, runs_per_row,
                        nonfinite_per_row):
    """Kernel: fill ``out`` (float32 [ny, nx]) with S; count runs and non-finite pixels per row."""
    ny, nx = image.shape
    r = (k.shape[0] - 1) // 2
    norm = 0.0
    for i in range(k.shape[0]):
        norm += k[i] * k[i]  # sum of the 2-D kernel's squares is norm**2
    nblocks = (ny + BLOCK_ROWS - 1) // BLOCK_ROWS
    for b in prange(nblocks):
        y0 = b * BLOCK_ROWS
        y1 = min(ny, y0 + BLOCK_ROWS)
        h = np.zeros((y1 - y0 + 2 * r, nx), np.float32)
        brow = np.empty(nx)
        d = np.zeros(nx + 2 * r, np.float32)
        for yy in range(y0 - r, y1 + r):
            if yy < 0 or yy >= ny:
                continue
            interp_row(bgrid, ky[yy], wy[yy], kx, wx, brow)
            bad = 0
            for x in range(nx):
                v = image[yy, x]
                if math.isfinite(v):
                    d[x + r] = v - brow[x]
                else:
                    d[x + r] = 0.0
                    bad += 1
            if y0 <= yy < y1:
                nonfinite_per_row[yy] = bad
            hrow = h[yy - y0 + r]
            for x in range(nx):
                acc = 0.0
                for i in range(2 * r + 1):
                    acc += k[i] * d[x + i]
                hrow[x] = acc
        rrow = np.empty(nx)
        v = np.empty(nx, np.float32)
        for y in range(y0, y1):
            interp_row(rgrid, ky[y], wy[y], kx, wx, rrow)
            v[:] = 0.0
            for j in range(2 * r + 1):
                kj = np.float32(k[j])
                hr = h[y - y0 + j]
                for x in range(nx):
                    v[x] += kj * hr[x]
            orow = out[y]
            for x in range(nx):
                orow[x] = v[x] / (rrow[x] * norm)
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
    ky, wy, kx, wx = bkg.weights()
    runs = np.zeros(ny, np.int64)
    nonfinite = np.zeros(ny, np.int64)
    significance_kernel(image, padded_grid(bkg.back_grid), padded_grid(bkg.rms_grid), ky, wy, kx,
                        wx, gaussian_kernel_1d(fwhm_px), float(threshold), out, runs, nonfinite)
    return out, runs, nonfinite
