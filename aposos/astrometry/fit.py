"""Least-squares fit of a TAN + SIP plate model to matched stars.

The model (FITS WCS, SIP convention of Shupe et al. 2005), with ``u, v`` pixel offsets from
CRPIX and ``(xi, eta)`` the standard coordinates of :mod:`.tangent`::

    (xi, eta) = CD @ (u + f(u, v), v + g(u, v)),   f = sum A_pq u^p v^q,  g = sum B_pq u^p v^q

with ``2 <= p + q <= order``. Written as one polynomial per axis, ``xi = sum c_pq u^p v^q``
over ``p + q <= order``, the fit is *linear* once the tangent point is fixed; the constant
terms say how far the tangent point (CRVAL) must move to sit under CRPIX, so the fit iterates
CRVAL until they vanish (2-4 passes). CRPIX is fixed at the image centre.

Pixel coordinates here are aposos' 0-based ones; the astropy WCS that comes out is standard
FITS (``CRPIX`` 1-based), so call it with origin 0: ``wcs.all_pix2world(x, y, 0)`` or
``wcs.pixel_to_world_values(x, y)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.wcs import WCS, Sip

from .tangent import deproject, project


def exponents(order: int) -> list[tuple[int, int]]:
    """(p, q) exponents of a full 2-D polynomial of total degree <= order, constant first."""
    return [(p, n - p) for n in range(order + 1) for p in range(n, -1, -1)]


def design_matrix(u, v, order: int) -> np.ndarray:
    """Columns u^p v^q for :func:`exponents` (u, v already normalised to ~[-1, 1])."""
    return np.stack([u ** p * v ** q for p, q in exponents(order)], axis=-1)


def n_terms(order: int) -> int:
    return (order + 1) * (order + 2) // 2


@dataclass
class PlateFit:
    """One TAN + SIP fit.

    Attributes
    ----------
    wcs : astropy.wcs.WCS
        TAN (order 1) or TAN-SIP model, FITS convention (use origin 0 for aposos pixels).
    order : int
        Polynomial order (1 = linear plate, no SIP).
    crpix0 : (float, float)
        Reference pixel, 0-based.
    crval : (float, float)
        Tangent point RA, Dec (deg).
    norm_px : float
        Pixel offsets are divided by this before the polynomial (conditioning).
    cov_unit : ndarray (k, k)
        ``(Phi^T Phi)^-1`` of the normalised design matrix; times ``sigma2_deg2`` it is the
        covariance of each axis' coefficients.
    sigma2_deg2 : float
        Residual variance per axis (deg^2), from the fit residuals and degrees of freedom.
    resid_xi_deg, resid_eta_deg : ndarray
        Catalog minus model standard coordinates of the fitted stars.
    """

    wcs: WCS
    order: int
    crpix0: tuple
    crval: tuple
    norm_px: float
    cov_unit: np.ndarray
    sigma2_deg2: float
    resid_xi_deg: np.ndarray
    resid_eta_deg: np.ndarray
    cd: np.ndarray
    coef: np.ndarray = None
    press_deg2: float = np.nan

    def with_inverse(self) -> "PlateFit":
        """The same fit with the inverse SIP polynomials (AP, BP) in its WCS (for FITS export)."""
        from dataclasses import replace

        wcs, _ = _wcs_from_coefficients(self.coef, self.order, self.norm_px, self.crpix0, self.crval, inverse=True)
        return replace(self, wcs=wcs)

    @property
    def n(self) -> int:
        return len(self.resid_xi_deg)

    def bic(self) -> float:
        """Bayesian information criterion of the fit (both axes, Gaussian residuals)."""
        n_obs = 2 * self.n
        rss = float(np.sum(self.resid_xi_deg ** 2 + self.resid_eta_deg ** 2))
        k = 2 * n_terms(self.order) + 2
        return n_obs * np.log(max(rss, 1e-30) / n_obs) + k * np.log(n_obs)

    def press(self) -> float:
        """Leave-one-out (PRESS) mean squared residual per axis (deg^2): the held-out error
        used to choose the order; unlike the fit residuals it grows when a polynomial overfits."""
        return self.press_deg2

    def plate_sigma_deg(self, x, y) -> np.ndarray:
        """1-sigma (per axis, deg) error of the model's sky position at pixels (x, y) (0-based)."""
        u = (np.asarray(x, float) - self.crpix0[0]) / self.norm_px
        v = (np.asarray(y, float) - self.crpix0[1]) / self.norm_px
        phi = design_matrix(u, v, self.order)
        var = np.einsum("...i,ij,...j->...", phi, self.cov_unit, phi) * self.sigma2_deg2
        return np.sqrt(np.maximum(var, 0.0))


def fit_tan_sip(x, y, ra_deg, dec_deg, order: int, crpix0, crval, *, n_iter: int = 6,
                weights=None, inverse: bool = False) -> PlateFit:
    """Fit a TAN(+SIP) model of ``order`` to stars at pixels (x, y) with catalog (ra, dec).

    ``crpix0`` is the 0-based reference pixel (kept fixed), ``crval`` the starting tangent
    point (deg). ``weights`` (optional, per star) are relative inverse variances. ``inverse``
    adds the inverse SIP polynomials to the WCS (else see :meth:`PlateFit.with_inverse`).
    Needs at least ``n_terms(order)`` stars (caller checks for margin).
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    ra_deg, dec_deg = np.asarray(ra_deg, float), np.asarray(dec_deg, float)
    w = np.ones_like(x) if weights is None else np.asarray(weights, float)
    sw = np.sqrt(w)
    norm = max(np.max(np.abs(x - crpix0[0])), np.max(np.abs(y - crpix0[1])), 1.0)
    u, v = (x - crpix0[0]) / norm, (y - crpix0[1]) / norm
    phi = design_matrix(u, v, order)
    ra0, dec0 = float(crval[0]), float(crval[1])
    for _ in range(n_iter):
        xi, eta = project(ra_deg, dec_deg, ra0, dec0)
        coef, *_ = np.linalg.lstsq(phi * sw[:, None], np.stack([xi, eta], -1) * sw[:, None], rcond=None)
        c0 = coef[0]
        ra0, dec0 = deproject(c0[0], c0[1], ra0, dec0)
        if np.hypot(*c0) < 1e-10:
            break
    xi, eta = project(ra_deg, dec_deg, ra0, dec0)
    # Refit with the constant term pinned to zero (tangent point exactly under CRPIX).
    coef, *_ = np.linalg.lstsq(phi[:, 1:] * sw[:, None], np.stack([xi, eta], -1) * sw[:, None], rcond=None)
    coef = np.vstack([np.zeros((1, 2)), coef])
    model = phi @ coef
    rx, ry = xi - model[:, 0], eta - model[:, 1]
    k = n_terms(order)
    dof = max(len(x) - k, 1)
    sigma2 = float(np.sum(w * (rx ** 2 + ry ** 2)) / (2 * dof))
    cov_unit = np.linalg.pinv((phi * w[:, None]).T @ phi)
    # leave-one-out residuals of a linear fit: e_i / (1 - h_ii), h the hat matrix diagonal
    phi1 = phi[:, 1:]
    h = np.einsum("ij,jk,ik->i", phi1, np.linalg.pinv((phi1 * w[:, None]).T @ phi1), phi1) * w
    loo = (rx ** 2 + ry ** 2) / np.maximum(1.0 - h, 1e-6) ** 2
    press = float(np.mean(w * loo) / 2.0)
    wcs, cd = _wcs_from_coefficients(coef, order, norm, crpix0, (ra0, dec0), inverse=inverse)
    return PlateFit(wcs=wcs, order=order, crpix0=tuple(crpix0), crval=(ra0, dec0), norm_px=norm,
                    cov_unit=cov_unit, sigma2_deg2=sigma2, resid_xi_deg=rx, resid_eta_deg=ry, cd=cd, coef=coef, press_deg2=press)


def _wcs_from_coefficients(coef, order, norm, crpix0, crval, inverse=True):
    """astropy WCS from polynomial coefficients (columns xi, eta) in normalised pixels."""
    terms = exponents(order)
    lin = {pq: coef[i] / norm for i, pq in enumerate(terms) if sum(pq) == 1}
    cd = np.array([[lin[(1, 0)][0], lin[(0, 1)][0]], [lin[(1, 0)][1], lin[(0, 1)][1]]])
    w = WCS(naxis=2)
    w.wcs.crpix = [crpix0[0] + 1.0, crpix0[1] + 1.0]
    w.wcs.crval = [crval[0], crval[1]]
    w.wcs.cd = cd
    w.wcs.radesys = "ICRS"
    if order < 2:
        w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        w.wcs.set()
        return w, cd
    cdinv = np.linalg.inv(cd)
    a = np.zeros((order + 1, order + 1))
    b = np.zeros((order + 1, order + 1))
    for i, (p, q) in enumerate(terms):
        if p + q >= 2:
            a[p, q], b[p, q] = cdinv @ (coef[i] / norm ** (p + q))
    ap, bp = _inverse_sip(a, b, order, norm) if inverse else (None, None)
    w.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
    w.sip = Sip(a, b, ap, bp, w.wcs.crpix)
    w.wcs.set()
    return w, cd


def _sip_eval(c, u, v):
    out = np.zeros_like(u)
    for p in range(c.shape[0]):
        for q in range(c.shape[1] - p):
            if c[p, q]:
                out += c[p, q] * u ** p * v ** q
    return out


def _inverse_sip(a, b, order, norm):
    """Inverse SIP (AP, BP) of one order higher, fitted on a grid over the image."""
    inv_order = order + 1
    g = np.linspace(-norm, norm, 25)
    u, v = (m.ravel() for m in np.meshgrid(g, g))
    uf, vf = u + _sip_eval(a, u, v), v + _sip_eval(b, u, v)
    terms = [pq for pq in exponents(inv_order) if sum(pq) >= 1]
    phi = np.stack([(uf / norm) ** p * (vf / norm) ** q for p, q in terms], -1)
    coef, *_ = np.linalg.lstsq(phi, np.stack([u - uf, v - vf], -1), rcond=None)
    ap = np.zeros((inv_order + 1, inv_order + 1))
    bp = np.zeros((inv_order + 1, inv_order + 1))
    for i, (p, q) in enumerate(terms):
        ap[p, q], bp[p, q] = coef[i] / norm ** (p + q)
    return ap, bp
