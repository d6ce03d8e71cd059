"""Simulated scenes with truth for the detection tests and benchmarks (no tests here).

Everything is rendered by :mod:`aposos.simulate.render` (exact pixel-integrated Gaussians).
Signal-to-noise figures of the truth are computed here independently of the detector:

* ``snr_ap``: the CCD-equation SNR in a circular aperture of radius one FWHM (94 % of the flux),
  the usual catalogue meaning of "a 5-sigma source";
* ``snr_opt``: the optimal (PSF-weighted) SNR, ``sqrt(sum (F p_i)^2 / (F p_i + s^2))`` over the
  pixels, the best any detector can do (``snr_opt ~ 1.26 snr_ap`` for faint sources);
* ``crb_px``: the Cramer-Rao bound of the x (= y) centroid of a pixel-integrated Gaussian with
  Poisson source noise, sky and read noise.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial import cKDTree
from scipy.special import erf

from aposos.simulate import render

GAIN = 1.5          # e/ADU
READ_NOISE = 9.0    # e
SKY_E = 400.0       # e/px
FWHM = 2.5          # px


def _pixel_profile(offset, sigma, half=8):
    """1-D pixel-integrated Gaussian and its derivative w.r.t. the centre, pixels -half..half."""
    edges = np.arange(-half, half + 2) - 0.5 - offset
    cdf = 0.5 * (1 + erf(edges / (math.sqrt(2) * sigma)))
    pdf = np.exp(-0.5 * (edges / sigma) ** 2) / (math.sqrt(2 * math.pi) * sigma)
    return np.diff(cdf), -np.diff(pdf)


def snr_opt(flux_e, fwhm=FWHM, sky_e=SKY_E, read_noise=READ_NOISE, offset=(0.0, 0.0)):
    """Optimal SNR of a point source of ``flux_e`` electrons."""
    sigma = fwhm / render.FWHM_PER_SIGMA
    px, _ = _pixel_profile(offset[0], sigma)
    py, _ = _pixel_profile(offset[1], sigma)
    p = np.outer(py, px)
    flux_e = np.atleast_1d(flux_e)[:, None, None]
    s = flux_e * p
    return np.sqrt((s**2 / (s + sky_e + read_noise**2)).sum(axis=(1, 2)))


def flux_for_snr_ap(snr, fwhm=FWHM, sky_e=SKY_E, read_noise=READ_NOISE):
    """Flux (e) with aperture SNR ``snr`` in a radius of one FWHM."""
    sigma = fwhm / render.FWHM_PER_SIGMA
    frac = 1 - math.exp(-(fwhm**2) / (2 * sigma**2))
    area_var = math.pi * fwhm**2 * (sky_e + read_noise**2)
    snr = np.asarray(snr, float)
    signal = 0.5 * (snr**2 + snr * np.sqrt(snr**2 + 4 * area_var))
    return signal / frac


def crb_px(flux_e, x, y, fwhm=FWHM, sky_e=SKY_E, read_noise=READ_NOISE):
    """Cramer-Rao bound (px) of the x centroid of each source (pixel-integrated Gaussian)."""
    sigma = fwhm / render.FWHM_PER_SIGMA
    out = []
    for f, xx, yy in zip(np.atleast_1d(flux_e), np.atleast_1d(x), np.atleast_1d(y)):
        px, dpx = _pixel_profile(xx - round(xx), sigma)
        py, _ = _pixel_profile(yy - round(yy), sigma)
        mean = f * np.outer(py, px)
        dmean = f * np.outer(py, dpx)
        info = (dmean**2 / (mean + sky_e + read_noise**2)).sum()
        out.append(1 / math.sqrt(info))
    return np.array(out)


def spaced_positions(n, shape, min_sep, rng, margin=12):
    """Up to ``n`` random positions at least ``min_sep`` px apart and from the edges."""
    ny, nx = shape
    pts = []
    tries = 0
    while len(pts) < n and tries < 50 * n:
        tries += 1
        p = (rng.uniform(margin, nx - 1 - margin), rng.uniform(margin, ny - 1 - margin))
        if all((p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2 >= min_sep**2 for q in pts):
            pts.append(p)
    pts = np.array(pts)
    return pts[:, 0], pts[:, 1]


def expose(image_e, rng, **kw):
    """ADU frame (bias 0) with the default camera."""
    return render.expose(image_e, gain_e_per_adu=GAIN, read_noise_e=READ_NOISE, bias_adu=0.0,
                         rng=rng, **kw)


def point_scene(shape=(512, 512), n=150, snr_ap=(3.0, 40.0), seed=1, fwhm=FWHM, min_sep=20.0):
    """Isolated point sources with log-uniform aperture SNR; returns (adu, truth dict)."""
    rng = np.random.default_rng(seed)
    x, y = spaced_positions(n, shape, min_sep, rng)
    snr = np.exp(rng.uniform(np.log(snr_ap[0]), np.log(snr_ap[1]), len(x)))
    flux = flux_for_snr_ap(snr, fwhm)
    img = render.sky(shape, SKY_E)
    render.add_points(img, x, y, flux, fwhm)
    truth = {"x": x, "y": y, "flux_e": flux, "snr_ap": snr, "snr_opt": snr_opt(flux, fwhm)}
    return expose(img, rng), truth


def streak_flux_for_snr(snr, length, fwhm=FWHM, sky_e=SKY_E, read_noise=READ_NOISE):
    """Flux (e) of a streak with *integrated* optimal SNR ``snr`` (background limited):
    ``F / (s sqrt(L * 2 sqrt(pi) sigma))`` for a line of length L much longer than the PSF."""
    sigma = fwhm / render.FWHM_PER_SIGMA
    s = math.sqrt(sky_e + read_noise**2)
    eff_len = np.asarray(length) + 2 * math.sqrt(math.pi) * sigma  # short-streak correction
    return np.asarray(snr) * s * np.sqrt(eff_len * 2 * math.sqrt(math.pi) * sigma)


def match(det_x, det_y, true_x, true_y, radius=2.0):
    """Index of the nearest detection within ``radius`` px of each truth position (-1: none)."""
    if len(det_x) == 0:
        return np.full(len(true_x), -1)
    dist, idx = cKDTree(np.column_stack([det_x, det_y])).query(np.column_stack([true_x, true_y]))
    return np.where(dist <= radius, idx, -1)


def benchmark_frame(shape=(4096, 4096), n_stars=5000, n_streaks=5, seed=42, fwhm=FWHM):
    """A crowded-ish frame: stars with log-uniform aperture SNR 3 .. 3000 and a few streaks.

    Returns (adu float32, truth dict with star ``x, y, flux_e, snr_ap`` and streak ends).
    """
    rng = np.random.default_rng(seed)
    ny, nx = shape
    x = rng.uniform(3, nx - 4, n_stars)
    y = rng.uniform(3, ny - 4, n_stars)
    snr = np.exp(rng.uniform(np.log(3.0), np.log(3000.0), n_stars))
    flux = flux_for_snr_ap(snr, fwhm)
    img = render.sky(shape, SKY_E, (0.01, -0.005))
    render.add_points(img, x, y, flux, fwhm)
    length = rng.uniform(30, 300, n_streaks)
    ang = rng.uniform(0, np.pi, n_streaks)
    cx, cy = rng.uniform(400, nx - 400, n_streaks), rng.uniform(400, ny - 400, n_streaks)
    x0, y0 = cx - 0.5 * length * np.cos(ang), cy - 0.5 * length * np.sin(ang)
    x1, y1 = cx + 0.5 * length * np.cos(ang), cy + 0.5 * length * np.sin(ang)
    render.add_streaks(img, x0, y0, x1, y1, streak_flux_for_snr(rng.uniform(20, 100, n_streaks), length), fwhm)
    adu = expose(img, rng)
    return adu, {"x": x, "y": y, "flux_e": flux, "snr_ap": snr,
                 "streaks": np.column_stack([x0, y0, x1, y1])}
