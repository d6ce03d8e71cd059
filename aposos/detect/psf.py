"""PSF width from the data: adaptive (Gaussian-weighted, iterated) second moments of bright sources.

For a Gaussian source of covariance ``C`` weighted by a Gaussian window of covariance ``W``, the
weighted second-moment matrix is ``M = (C^-1 + W^-1)^-1``; iterating ``W <- 2 M`` converges to
``W = C``. The PSF width is the median over bright, unsaturated, isolated sources of the minor
axis of ``C`` (the across-track width for trailed stars) or of its geometric mean (round stars).
"""

from __future__ import annotations

import math

import numpy as np

from .significance import FWHM_PER_SIGMA


def adaptive_covariances(stamps: np.ndarray, x, y, sigma0: float, iters: int = 12) -> np.ndarray:
    """Adaptive 2x2 covariances (px^2) of the sources near (x[k], y[k]) in background-free
    stamps (k, ny, nx) (NaN pixels carry no weight), all iterated at once; a source stops when
    its window changes by less than 1e-3 relative (1e-4 px^2). Returns (k, 2, 2), NaN where the
    moments fail (no positive weight, or a covariance that is not positive definite)."""
    stamps = np.asarray(stamps, float)
    k = stamps.shape[0]
    yy, xx = np.mgrid[: stamps.shape[1], : stamps.shape[2]]
    z = np.nan_to_num(stamps, nan=0.0)
    w_cov = np.tile(np.eye(2) * sigma0**2, (k, 1, 1))
    xc, yc = np.asarray(x, float).copy(), np.asarray(y, float).copy()
    active = np.ones(k, bool)
    failed = np.zeros(k, bool)
    for _ in range(iters):
        a = np.flatnonzero(active)
        if not len(a):
            break
        dx, dy = xx[None] - xc[a, None, None], yy[None] - yc[a, None, None]
        inv = np.linalg.inv(w_cov[a])
        q = (inv[:, 0, 0, None, None] * dx * dx + 2 * inv[:, 0, 1, None, None] * dx * dy
             + inv[:, 1, 1, None, None] * dy * dy)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            w = np.exp(-0.5 * q) * z[a]
            s = w.sum(axis=(1, 2))
            mx, my = (w * dx).sum(axis=(1, 2)) / s, (w * dy).sum(axis=(1, 2)) / s
            mxx = (w * dx * dx).sum(axis=(1, 2)) / s - mx * mx
            mxy = (w * dx * dy).sum(axis=(1, 2)) / s - mx * my
            myy = (w * dy * dy).sum(axis=(1, 2)) / s - my * my
        new = 2.0 * np.stack([np.stack([mxx, mxy], -1), np.stack([mxy, myy], -1)], -2)
        bad = (~np.isfinite(s) | (s <= 0) | ~np.all(np.isfinite(new), axis=(1, 2))
               | ~(mxx * myy - mxy**2 > 0))
        failed[a[bad]] = True
        active[a[bad]] = False
        good = ~bad
        a, new = a[good], new[good]
        xc[a] += mx[good]
        yc[a] += my[good]
        done = np.all(np.abs(new - w_cov[a]) <= 1e-4 + 1e-3 * np.abs(w_cov[a]), axis=(1, 2))
        w_cov[a] = new
        active[a[done]] = False
    w_cov[failed] = np.nan
    return w_cov


def estimate_fwhm(d_stamps, centres, sigma0: float, *, trailed: bool) -> float | None:
    """Median PSF FWHM (px) from background-subtracted stamps of bright isolated sources
    (stamps of unequal size, e.g. cut by the frame edge, are padded with NaN)."""
    if not len(d_stamps):
        return None
    ny = max(s.shape[0] for s in d_stamps)
    nx = max(s.shape[1] for s in d_stamps)
    stack = np.full((len(d_stamps), ny, nx), np.nan)
    for i, s in enumerate(d_stamps):
        stack[i, : s.shape[0], : s.shape[1]] = s
    x, y = np.asarray(centres, float).reshape(-1, 2).T
    cov = adaptive_covariances(stack, x, y, sigma0)
    ok = np.all(np.isfinite(cov), axis=(1, 2))
    if not ok.any():
        return None
    ev = np.linalg.eigvalsh(cov[ok])
    ev = ev[ev[:, 0] > 0]
    widths = np.sqrt(ev[:, 0]) if trailed else (ev[:, 0] * ev[:, 1]) ** 0.25
    if len(widths) < 3:
        return None
    return float(np.median(widths)) * FWHM_PER_SIGMA
