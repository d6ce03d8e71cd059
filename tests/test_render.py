"""The pixel renderer is the truth for detection tests: check it against analytic results."""

import numpy as np
import pytest

from aposos.simulate import render


def _moments(im):
    yy, xx = np.mgrid[: im.shape[0], : im.shape[1]]
    s = im.sum()
    return s, (im * xx).sum() / s, (im * yy).sum() / s


@pytest.mark.parametrize("x, y", [(20.0, 30.0), (20.37, 30.81), (31.5, 12.25)])
def test_point_flux_and_centroid_are_exact(x, y):
    im = render.add_points(np.zeros((64, 64)), [x], [y], [5e4], 3.2)
    s, cx, cy = _moments(im)
    assert abs(s - 5e4) < 1e-6 and abs(cx - x) < 1e-9 and abs(cy - y) < 1e-9


def test_point_fwhm():
    im = render.add_points(np.zeros((101, 101)), [50.0], [50.0], [1.0], 4.0)
    sigma = np.sqrt(((np.arange(101) - 50.0) ** 2 * im.sum(axis=0)).sum())
    # pixel integration adds 1/12 px^2 of variance to the Gaussian's
    assert abs(sigma**2 - ((4.0 / render.FWHM_PER_SIGMA) ** 2 + 1 / 12)) < 1e-6


def test_streak_centre_flux_and_length():
    im = render.add_streaks(np.zeros((80, 80)), [10.0], [20.0], [60.0], [40.0], [1e5], 2.5)
    s, cx, cy = _moments(im)
    assert abs(s - 1e5) < 1e-6 and abs(cx - 35.0) < 1e-6 and abs(cy - 30.0) < 1e-6
    # variance along the track: L^2/12 (box) + sigma^2 + 1/12 (pixels), up to the sampling step
    ux, uy = np.array([50.0, 20.0]) / np.hypot(50.0, 20.0)
    yy, xx = np.mgrid[:80, :80]
    t = (xx - cx) * ux + (yy - cy) * uy
    var = (im * t**2).sum() / s
    expected = np.hypot(50, 20) ** 2 / 12 + (2.5 / render.FWHM_PER_SIGMA) ** 2
    assert abs(var - expected) / expected < 0.01


def test_sources_off_the_edge_lose_their_outer_flux_only():
    from scipy.stats import norm

    im = render.add_points(np.zeros((20, 20)), [0.0, -50.0], [10.0, 10.0], [1e3, 1e3], 3.0)
    # pixel 0 spans x in [-0.5, 0.5]: the part of the first star left of x = -0.5 is lost
    expected = 1e3 * norm.cdf(0.5 / (3.0 / render.FWHM_PER_SIGMA))
    assert abs(im.sum() - expected) < 1e-6


def test_expose_noise_statistics_and_saturation():
    flat = np.full((300, 300), 400.0)
    adu = render.expose(flat, gain_e_per_adu=2.0, read_noise_e=5.0, bias_adu=100.0, rng=0)
    assert adu.dtype == np.float32
    assert abs(adu.mean() - (100 + 200)) < 0.2
    expected_sd = np.sqrt(400 + 25) / 2.0
    assert abs(adu.std() - expected_sd) / expected_sd < 0.02
    bright = render.add_points(np.zeros((60, 20)), [10.0], [30.0], [5e7], 2.0)
    adu = render.expose(bright, gain_e_per_adu=1.0, read_noise_e=0.0, saturation_adu=60000.0, rng=0)
    column = adu[:, 10]
    assert adu.max() == 60000.0
    assert (column >= 60000.0).sum() > 5  # charge bled along the column
