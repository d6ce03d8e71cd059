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


def adaptive_covariance(stamp: np.ndarray, x: float, y: float, sigma0: float, iters: int = 12):
    """Adaptive 2x2 covariance (px^2) of the source near (x, y) in a background-free stamp."""
    yy, xx = np.mgrid[: stamp.shape[0], : stamp.shape[1]]
    w_cov = np.eye(2) * sigma0**2
    xc, yc = x, y
    good = np.isfinite(stamp)
    z = np.where(good, stamp, 0.0)
    for _ in range(iters):
        dx, dy = xx - xc, yy - yc
        inv = np.linalg.inv(w_cov)
        q = inv[0, 0] * dx * dx + 2 * inv[0, 1] * dx * dy + inv[1, 1] * dy * dy
        with np.errstate(over="ignore", invalid="ignore"):
            w = np.exp(-0.5 * q) * z
        s = w.sum()
        if not np.isfinite(s) or s <= 0:
            return None
        mx, my = (w * dx).sum() / s, (w * dy).sum() / s
        m = np.array([[(w * dx * dx).sum(), (w * dx * dy).sum()],
                      [(w * dx * dy).sum(), (w * dy * dy).sum()]]) / s
        m -= np.outer([mx, my], [mx, my])
        new = 2.0 * m
        if not np.all(np.isfinite(new)) or np.linalg.det(new) <= 0:
            return None
        xc, yc = xc + mx, yc + my
        if np.allclose(new, w_cov, rtol=1e-3, atol=1e-4):
            w_cov = new
            break
        w_cov = new
    return w_cov


def estimate_fwhm(d_stamps, centres, sigma0: float, *, trailed: bool) -> float | None:
    """Median PSF FWHM (px) from background-subtracted stamps of bright isolated sources."""
    widths = []
    for stamp, (x, y) in zip(d_stamps, centres):
        c = adaptive_covariance(stamp, x, y, sigma0)
        if c is None:
            continue
        ev = np.linalg.eigvalsh(c)
        if ev[0] <= 0:
            continue
        widths.append(math.sqrt(ev[0]) if trailed else (ev[0] * ev[1]) ** 0.25)
    if len(widths) < 3:
        return None
    return float(np.median(widths)) * FWHM_PER_SIGMA
