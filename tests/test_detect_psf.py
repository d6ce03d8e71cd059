"""PSF width from adaptive moments (aposos.detect.psf) against rendered Gaussians of known shape."""

import math

import numpy as np

from aposos.detect.psf import adaptive_covariances, estimate_fwhm
from aposos.detect.significance import FWHM_PER_SIGMA


def _gaussian_stamp(cov, x0, y0, shape=(35, 35), flux=1e5):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    d = np.stack([xx - x0, yy - y0], -1)
    inv = np.linalg.inv(cov)
    q = np.einsum("...i,ij,...j->...", d, inv, d)
    return flux * np.exp(-0.5 * q) / (2 * math.pi * math.sqrt(np.linalg.det(cov)))


def test_adaptive_covariances_recover_elliptical_gaussians():
    covs = [np.array([[4.0, 0.0], [0.0, 4.0]]), np.array([[9.0, 2.5], [2.5, 3.0]]),
            np.array([[2.0, -0.8], [-0.8, 6.0]])]
    centres = [(17.0, 17.0), (16.3, 18.6), (17.8, 15.2)]
    stamps = np.stack([_gaussian_stamp(c, x, y) for c, (x, y) in zip(covs, centres)])
    # started 0.7 px off and with a round window of the wrong size
    got = adaptive_covariances(stamps, [x + 0.7 for x, _ in centres], [y - 0.5 for _, y in centres], 1.0)
    for g, c in zip(got, covs):
        assert np.allclose(g, c, rtol=0.01, atol=0.01)


def test_failed_moments_are_nan_and_do_not_stop_the_others():
    good = _gaussian_stamp(np.eye(2) * 4.0, 17.0, 17.0)
    stamps = np.stack([good, np.full_like(good, np.nan), -good])
    got = adaptive_covariances(stamps, [17.0] * 3, [17.0] * 3, 2.0)
    assert np.allclose(got[0], np.eye(2) * 4.0, rtol=0.01)
    assert np.isnan(got[1]).all() and np.isnan(got[2]).all()


def test_estimate_fwhm_with_stamps_cut_by_the_edge():
    sigma = 2.2
    full = [_gaussian_stamp(np.eye(2) * sigma**2, 17.0, 17.0) for _ in range(4)]
    cut = _gaussian_stamp(np.eye(2) * sigma**2, 17.0, 12.0)[:25, 6:]  # a source near a corner
    stamps = full + [cut]
    centres = [(17.0, 17.0)] * 4 + [(11.0, 12.0)]
    assert math.isclose(estimate_fwhm(stamps, centres, 1.5, trailed=False), sigma * FWHM_PER_SIGMA,
                        rel_tol=0.01)
    assert estimate_fwhm(stamps[:2], centres[:2], 1.5, trailed=False) is None  # fewer than three
