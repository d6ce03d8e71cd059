"""Pixel-level rendering of a CCD exposure: PSFs, streaks, sky, noise and artefacts.

This is the forward model of the simulator. It knows nothing of the sky: callers give pixel
positions (0-based, ``data[y, x]``, pixel centres at integers) and fluxes in electrons, and
get images in electrons (before noise) or ADU (after :func:`expose`).

The PSF is a circular Gaussian integrated exactly over each pixel (error functions), so the
true centroid of a rendered point source is exactly the position given. A streak is the PSF
moved at constant speed along a segment during the exposure, integrated with sub-pixel steps.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erf

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def _pixel_integrated_gauss(centre, lo, n, sigma):
    """Fraction of a 1-D Gaussian (``centre``, ``sigma``) falling in pixels ``lo .. lo+n-1``.

    Shapes: ``centre`` (k,), ``lo`` (k,) int -> (k, n).
    """
    edges = lo[:, None] + np.arange(n + 1)[None, :] - 0.5
    cdf = 0.5 * (1.0 + erf((edges - centre[:, None]) / (math.sqrt(2.0) * sigma)))
    return np.diff(cdf, axis=1)


def add_points(image, x, y, flux_e, fwhm_px, *, radius_sigma=6.0):
    """Add Gaussian point sources to ``image`` in place.

    Parameters
    ----------
    image : 2-D float array (electrons)
    x, y : array (px, 0-based)
        Exact centroids. Sources may lie partly or wholly outside the image.
    flux_e : array
        Total flux of each source in electrons (the part outside the image is lost).
    fwhm_px : float or array
        PSF full width at half maximum in pixels.
    """
    x, y, flux_e = (np.atleast_1d(np.asarray(a, float)) for a in (x, y, flux_e))
    sigma = np.broadcast_to(np.asarray(fwhm_px, float) / FWHM_PER_SIGMA, x.shape)
    ny, nx = image.shape
    for s in np.unique(sigma):
        sel = sigma == s
        half = int(math.ceil(radius_sigma * s)) + 1
        n = 2 * half + 1
        xs, ys, fs = x[sel], y[sel], flux_e[sel]
        x0 = np.round(xs).astype(np.int64) - half
        y0 = np.round(ys).astype(np.int64) - half
        px = _pixel_integrated_gauss(xs, x0, n, s)
        py = _pixel_integrated_gauss(ys, y0, n, s)
        for i in range(len(xs)):
            ya, yb = max(y0[i], 0), min(y0[i] + n, ny)
            xa, xb = max(x0[i], 0), min(x0[i] + n, nx)
            if ya >= yb or xa >= xb:
                continue
            stamp = fs[i] * np.outer(py[i, ya - y0[i]:yb - y0[i]], px[i, xa - x0[i]:xb - x0[i]])
            image[ya:yb, xa:xb] += stamp
    return image


def add_streaks(image, x0, y0, x1, y1, flux_e, fwhm_px, *, step_px=0.1, chunk_px=48.0):
    """Add streaks: a point moving uniformly from (x0, y0) to (x1, y1) during the exposure.

    ``flux_e`` is the total flux of each streak in electrons; it is spread evenly along the
    segment, sampled every ``step_px`` pixels (each sample a pixel-integrated Gaussian, at
    the midpoints of equal sub-intervals: the time average of the moving PSF). Long streaks
    are cut into pieces of at most ``chunk_px``, each rendered as one small matrix product
    on its bounding box; pieces off the image are skipped.
    """
    x0, y0, x1, y1, flux_e = (np.atleast_1d(np.asarray(a, float)) for a in (x0, y0, x1, y1, flux_e))
    fwhm = np.broadcast_to(np.asarray(fwhm_px, float), x0.shape)
    for i in range(len(x0)):
        length = math.hypot(x1[i] - x0[i], y1[i] - y0[i])
        k = max(int(math.ceil(length / step_px)), 1)
        f = (np.arange(k) + 0.5) / k
        xs, ys = x0[i] + f * (x1[i] - x0[i]), y0[i] + f * (y1[i] - y0[i])
        per_chunk = max(int(chunk_px / step_px), 1)
        for j in range(0, k, per_chunk):
            _add_samples(image, xs[j:j + per_chunk], ys[j:j + per_chunk], flux_e[i] / k,
                         fwhm[i] / FWHM_PER_SIGMA)
    return image


def add_polylines(image, xs, ys, flux_e, fwhm_px, *, step_px=0.1):
    """Add sources moving along polylines: vertices ``xs, ys`` (n, k+1) px at equal time steps.

    ``flux_e`` (n, k) is the flux collected on each of the k sub-segments (equal durations, so
    a non-uniform angular rate shows as sub-segments of different lengths, each with its
    share of the flux). Used for curved LEO streaks and for stars in rate-tracked frames.
    """
    xs, ys = np.atleast_2d(xs), np.atleast_2d(ys)
    flux_e = np.broadcast_to(np.asarray(flux_e, float), (xs.shape[0], xs.shape[1] - 1))
    fwhm = np.broadcast_to(np.asarray(fwhm_px, float), (xs.shape[0],))
    for j in range(xs.shape[1] - 1):
        add_streaks(image, xs[:, j], ys[:, j], xs[:, j + 1], ys[:, j + 1], flux_e[:, j], fwhm, step_px=step_px)
    return image


def _add_samples(image, xs, ys, flux_each, sigma, radius_sigma=6.0):
    """Add ``len(xs)`` Gaussians of equal flux at (xs, ys) as one outer product on their box."""
    ny, nx = image.shape
    half = radius_sigma * sigma + 1
    xa, xb = max(int(math.floor(xs.min() - half)), 0), min(int(math.ceil(xs.max() + half)) + 1, nx)
    ya, yb = max(int(math.floor(ys.min() - half)), 0), min(int(math.ceil(ys.max() + half)) + 1, ny)
    if xa >= xb or ya >= yb:
        return
    px = _pixel_integrated_gauss(xs, np.full(len(xs), xa), xb - xa, sigma)
    py = _pixel_integrated_gauss(ys, np.full(len(ys), ya), yb - ya, sigma)
    image[ya:yb, xa:xb] += flux_each * (py.T @ px)


def sky(shape, level_e, gradient_e_per_px=(0.0, 0.0)):
    """Sky background in electrons per pixel: ``level_e`` at the image centre plus a linear gradient.

    ``gradient_e_per_px`` is (d/dx, d/dy) in electrons per pixel per pixel.
    """
    ny, nx = shape
    gx, gy = gradient_e_per_px
    yy, xx = np.mgrid[0:ny, 0:nx]
    return (level_e + gx * (xx - (nx - 1) / 2) + gy * (yy - (ny - 1) / 2)).astype(np.float64)


def expose(image_e, *, gain_e_per_adu, read_noise_e, bias_adu=0.0, saturation_adu=65535.0,
           full_well_e=None, bleed=True, rng=None):
    """Turn an expected image in electrons into a noisy image in ADU (float32).

    Poisson noise on the signal, Gaussian read noise, bias offset, then saturation: pixels
    above the full well spill their excess charge up and down the column (bleed trails) when
    ``bleed`` is true, and the ADU values are clipped at ``saturation_adu``.
    """
    rng = np.random.default_rng(rng)
    electrons = rng.poisson(np.clip(image_e, 0, None)).astype(np.float64)
    if full_well_e is None:
        full_well_e = (saturation_adu - bias_adu) * gain_e_per_adu
    if bleed and electrons.max() > full_well_e:
        electrons = _bleed_columns(electrons, full_well_e)
    electrons += rng.normal(0.0, read_noise_e, electrons.shape)
    adu = electrons / gain_e_per_adu + bias_adu
    return np.clip(adu, 0.0, saturation_adu).astype(np.float32)


def _bleed_columns(electrons, full_well_e):
    """Spread charge above ``full_well_e`` along each column, half up and half down."""
    out = electrons.copy()
    ys, xs = np.nonzero(out > full_well_e)
    for x in np.unique(xs):
        col = out[:, x]
        for y in ys[xs == x]:
            excess = col[y] - full_well_e
            if excess <= 0:
                continue
            col[y] = full_well_e
            for direction in (1, -1):
                left, yy = excess / 2.0, y + direction
                while left > 0 and 0 <= yy < len(col):
                    room = full_well_e - col[yy]
                    take = min(room, left) if room > 0 else 0.0
                    col[yy] += take
                    left -= take
                    yy += direction
    return out


def add_hot_pixels(image_e, count, level_e, rng=None):
    """Single hot pixels; returns their (y, x) indices."""
    rng = np.random.default_rng(rng)
    ny, nx = image_e.shape
    y = rng.integers(0, ny, count)
    x = rng.integers(0, nx, count)
    image_e[y, x] += level_e * rng.uniform(0.5, 2.0, count)
    return y, x


def add_cosmic_rays(image_e, count, rng=None, *, energy_e=(2e3, 5e4), max_length_px=6):
    """Cosmic-ray hits: sharp 1-2 px wide tracks a few pixels long (not PSF-shaped).

    Returns a table-like dict of their start points, angles and lengths.
    """
    rng = np.random.default_rng(rng)
    ny, nx = image_e.shape
    xs = rng.uniform(0, nx - 1, count)
    ys = rng.uniform(0, ny - 1, count)
    angle = rng.uniform(0, np.pi, count)
    length = rng.uniform(0, max_length_px, count)
    energy = rng.uniform(*energy_e, count)
    for i in range(count):
        k = max(int(length[i] * 2), 1)
        t = np.linspace(0, length[i], k)
        px = np.clip(np.round(xs[i] + t * np.cos(angle[i])).astype(int), 0, nx - 1)
        py = np.clip(np.round(ys[i] + t * np.sin(angle[i])).astype(int), 0, ny - 1)
        np.add.at(image_e, (py, px), energy[i] / k)
    return {"x": xs, "y": ys, "angle_rad": angle, "length_px": length, "energy_e": energy}
