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
        TAN (order 1, not radial) or TAN-SIP model, FITS convention (origin 0 for aposos pixels).
    order : int
        Order of the full polynomial (1 = linear plate).
    radial : bool
        A radial cubic term ``k r^2 (u, v)`` (one parameter: the lens distortion of a refractor)
        is fitted on top of the polynomial; the SIP order is then at least 3.
    crpix0 : (float, float)
        Reference pixel, 0-based.
    crval : (float, float)
        Tangent point RA, Dec (deg).
    norm_px : float
        Pixel offsets are divided by this before the polynomial (conditioning).
    cov_unit : ndarray (p, p)
        ``(A^T W A)^-1`` of the stacked (xi rows, eta rows) normalised design matrix ``A`` with
        parameters ``[c_xi, c_eta, k]``; times ``sigma2_deg2`` it is their covariance if the
        weights are right.
    cov_deg2 : ndarray (p, p)
        Their covariance (deg^2) that does not trust the weights: the sandwich
        ``B (A^T W diag(e^2) W A) B``, ``B = (A^T W A)^-1``, with the leave-one-out residuals
        ``e`` (HC3, MacKinnon & White 1985). Detected centroids of trails and blends are often
        several times worse than their quoted errors; the plate's quoted error then follows the
        real scatter of the stars, not the claimed one.
    sigma2_deg2 : float
        Residual variance per axis (deg^2), from the fit residuals and degrees of freedom.
    resid_xi_deg, resid_eta_deg : ndarray
        Catalog minus model standard coordinates of the fitted stars.
    cd : ndarray (2, 2)
        Linear part (deg/px).
    coef : ndarray (m, 2)
        Polynomial coefficients (xi, eta) in normalised pixels, constant first (zero).
    k_radial : float
        Radial coefficient in normalised pixels (0 if not radial).
    press_deg2 : float
        Leave-one-out mean squared residual per axis (deg^2).
    loo_xi_deg, loo_eta_deg : ndarray
        Leave-one-out (deleted) residuals of each star: catalog minus the model fitted without
        it. Unlike the fit residuals they expose an outlier that a flexible model absorbs.
    loo_w_deg2 : ndarray
        Each star's weighted squared leave-one-out residual per axis (deg^2); their mean is
        ``press_deg2``.
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
    coef: np.ndarray
    radial: bool = False
    k_radial: float = 0.0
    press_deg2: float = np.nan
    prior_sip: tuple | None = None
    loo_xi_deg: np.ndarray | None = None
    loo_eta_deg: np.ndarray | None = None
    loo_w_deg2: np.ndarray | None = None
    cov_deg2: np.ndarray | None = None

    def with_inverse(self) -> "PlateFit":
        """The same fit with the inverse SIP polynomials (AP, BP) in its WCS (for FITS export)."""
        from dataclasses import replace

        wcs, _ = _wcs_from_coefficients(self.coef, self.order, self.norm_px, self.crpix0, self.crval,
                                        k_radial=self.k_radial, inverse=True, prior_sip=self.prior_sip)
        return replace(self, wcs=wcs)

    @property
    def n(self) -> int:
        return len(self.resid_xi_deg)

    @property
    def n_params(self) -> int:
        return 2 * n_terms(self.order) + int(self.radial)

    @property
    def sip_order(self) -> int:
        """Order of the SIP polynomials in the WCS (0 for a plain TAN plate)."""
        if self.prior_sip is not None:
            return self.prior_sip[0].shape[0] - 1
        o = max(self.order, 3 if self.radial else 0)
        return o if o >= 2 else 0

    @property
    def model(self) -> str:
        if self.prior_sip is not None:
            return "TAN+prior-SIP+poly1"
        return f"TAN+poly{self.order}" + ("+radial3" if self.radial else "")

    def bic(self) -> float:
        """Bayesian information criterion of the fit (both axes, Gaussian residuals)."""
        n_obs = 2 * self.n
        rss = float(np.sum(self.resid_xi_deg ** 2 + self.resid_eta_deg ** 2))
        return n_obs * np.log(max(rss, 1e-30) / n_obs) + self.n_params * np.log(n_obs)

    def press(self) -> float:
        """Leave-one-out (PRESS) mean squared residual per axis (deg^2): the held-out error
        used to choose the model; unlike the fit residuals it grows when a polynomial overfits."""
        return self.press_deg2

    def plate_sigma_deg(self, x, y) -> np.ndarray:
        """1-sigma (per axis, deg) error of the model's sky position at pixels (x, y) (0-based)."""
        u, v = _undistorted(np.asarray(x, float) - self.crpix0[0], np.asarray(y, float) - self.crpix0[1],
                            self.prior_sip)
        u, v = u / self.norm_px, v / self.norm_px
        a_xi, a_eta = _stacked_rows(design_matrix(u, v, self.order), u, v, self.cd * self.norm_px
                                    if self.radial else None)
        cov = self.cov_unit * self.sigma2_deg2 if self.cov_deg2 is None else self.cov_deg2
        var = sum(np.einsum("...i,ij,...j->...", a, cov, a) for a in (a_xi, a_eta)) / 2.0
        return np.sqrt(np.maximum(var, 0.0))


def _stacked_rows(phi, u, v, cd_n):
    """Rows of the stacked design for the xi and eta equations: ``[phi, 0, g_xi]``, ``[0, phi, g_eta]``.

    ``cd_n`` (linear part in normalised units) gives the radial columns; None: no radial term.
    """
    z = np.zeros_like(phi)
    if cd_n is None:
        return np.concatenate([phi, z], -1), np.concatenate([z, phi], -1)
    r2 = u * u + v * v
    g_xi = (cd_n[0, 0] * u + cd_n[0, 1] * v) * r2
    g_eta = (cd_n[1, 0] * u + cd_n[1, 1] * v) * r2
    return (np.concatenate([phi, z, g_xi[..., None]], -1), np.concatenate([z, phi, g_eta[..., None]], -1))


def _solve_stacked(phi, u, v, cd_n, xi, eta, sw):
    a_xi, a_eta = _stacked_rows(phi, u, v, cd_n)
    a = np.concatenate([a_xi * sw[:, None], a_eta * sw[:, None]])
    theta, *_ = np.linalg.lstsq(a, np.concatenate([xi * sw, eta * sw]), rcond=None)
    m = phi.shape[1]
    return theta[:m], theta[m:2 * m], (theta[2 * m] if cd_n is not None else 0.0), a


def _undistorted(u_px, v_px, prior_sip):
    """Pixel offsets after a fixed (prior) SIP distortion ``(A, B)`` (pixel units), or unchanged."""
    if prior_sip is None:
        return u_px, v_px
    a, b = prior_sip
    return u_px + _sip_eval(a, u_px, v_px), v_px + _sip_eval(b, u_px, v_px)


def fit_tan_sip(x, y, ra_deg, dec_deg, order: int, crpix0, crval, *, radial: bool = False, n_iter: int = 8,
                weights=None, inverse: bool = False, prior_sip: tuple | None = None) -> PlateFit:
    """Fit a TAN(+SIP) model of ``order`` (plus a radial cubic if ``radial``) to stars at pixels
    (x, y) with catalog (ra, dec).

    ``crpix0`` is the 0-based reference pixel (kept fixed), ``crval`` the starting tangent
    point (deg). ``weights`` (optional, per star) are relative inverse variances. ``inverse``
    adds the inverse SIP polynomials to the WCS (else see :meth:`PlateFit.with_inverse`).
    The radial term multiplies the linear part, so it is solved by fixed-point iteration on the
    linear part (converges in a few passes). ``prior_sip`` = (A, B) SIP arrays (pixel units,
    same CRPIX) of a known, fixed distortion: then only a linear plate (order 1) is fitted on
    top of it and the WCS carries those SIP polynomials. Needs more stars than parameters
    (caller checks).
    """
    if prior_sip is not None and (order != 1 or radial):
        raise ValueError("a prior distortion is combined with a linear plate only")
    x, y = np.asarray(x, float), np.asarray(y, float)
    ra_deg, dec_deg = np.asarray(ra_deg, float), np.asarray(dec_deg, float)
    w = np.ones_like(x) if weights is None else np.asarray(weights, float)
    sw = np.sqrt(w)
    norm = max(np.max(np.abs(x - crpix0[0])), np.max(np.abs(y - crpix0[1])), 1.0)
    u, v = _undistorted(x - crpix0[0], y - crpix0[1], prior_sip)
    u, v = u / norm, v / norm
    phi = design_matrix(u, v, order)
    ra0, dec0 = float(crval[0]), float(crval[1])
    cd_n = None
    for it in range(n_iter):
        xi, eta = project(ra_deg, dec_deg, ra0, dec0)
        cx, ce, k, _ = _solve_stacked(phi, u, v, cd_n, xi, eta, sw)
        ra0, dec0 = deproject(cx[0], ce[0], ra0, dec0)
        converged = np.hypot(cx[0], ce[0]) < 1e-10
        new_cd = np.array([[cx[1], cx[2]], [ce[1], ce[2]]])
        if radial:
            converged &= cd_n is not None and np.max(np.abs(new_cd - cd_n)) < 1e-12
            cd_n = new_cd
        if converged:
            break
    xi, eta = project(ra_deg, dec_deg, ra0, dec0)
    # final pass with the constant pinned to zero (tangent point exactly under CRPIX)
    cx, ce, k, a = _solve_stacked(phi[:, 1:], u, v, cd_n, xi, eta, sw)
    coef = np.vstack([np.zeros((1, 2)), np.stack([cx, ce], -1)])
    a_xi, a_eta = _stacked_rows(phi[:, 1:], u, v, cd_n)
    theta = np.concatenate([cx, ce, [k] if cd_n is not None else []])
    rx, ry = xi - a_xi @ theta, eta - a_eta @ theta
    p = len(theta)
    dof = max(2 * len(x) - p, 1)
    sigma2 = float(np.sum(w * (rx ** 2 + ry ** 2)) / dof)
    # leave-one-out (per equation) residuals e / (1 - h), h the hat-matrix diagonal
    cov1 = np.linalg.pinv(a.T @ a)
    h_xi = np.einsum("ij,jk,ik->i", a_xi, cov1, a_xi) * w
    h_eta = np.einsum("ij,jk,ik->i", a_eta, cov1, a_eta) * w
    loo_xi, loo_eta = rx / np.maximum(1 - h_xi, 1e-6), ry / np.maximum(1 - h_eta, 1e-6)
    loo_w = w * (loo_xi ** 2 + loo_eta ** 2) / 2.0
    press = float(np.mean(loo_w))
    # covariance including the constant terms (the tangent point's own uncertainty)
    f_xi, f_eta = _stacked_rows(phi, u, v, cd_n)
    full = np.concatenate([f_xi * sw[:, None], f_eta * sw[:, None]])
    cov_unit = np.linalg.pinv(full.T @ full)
    e_loo = np.concatenate([sw * loo_xi, sw * loo_eta])  # whitened, one per row of ``full``
    meat = (full * e_loo[:, None] ** 2).T @ full
    cov_hc = cov_unit @ meat @ cov_unit
    wcs, cd = _wcs_from_coefficients(coef, order, norm, crpix0, (ra0, dec0), k_radial=k, inverse=inverse,
                                     prior_sip=prior_sip)
    return PlateFit(prior_sip=prior_sip, wcs=wcs, order=order, crpix0=tuple(crpix0), crval=(ra0, dec0), norm_px=norm,
                    cov_unit=cov_unit, sigma2_deg2=sigma2, resid_xi_deg=rx, resid_eta_deg=ry, cd=cd, coef=coef,
                    radial=cd_n is not None, k_radial=float(k), press_deg2=press, loo_xi_deg=loo_xi,
                    loo_eta_deg=loo_eta, loo_w_deg2=loo_w, cov_deg2=cov_hc)


def _wcs_from_coefficients(coef, order, norm, crpix0, crval, k_radial=0.0, inverse=True, prior_sip=None):
    """astropy WCS from polynomial coefficients (columns xi, eta) and radial coefficient, both
    in normalised pixels."""
    terms = exponents(order)
    lin = {pq: coef[i] / norm for i, pq in enumerate(terms) if sum(pq) == 1}
    cd = np.array([[lin[(1, 0)][0], lin[(0, 1)][0]], [lin[(1, 0)][1], lin[(0, 1)][1]]])
    w = WCS(naxis=2)
    w.wcs.crpix = [crpix0[0] + 1.0, crpix0[1] + 1.0]
    w.wcs.crval = [crval[0], crval[1]]
    w.wcs.cd = cd
    w.wcs.radesys = "ICRS"
    if prior_sip is not None:
        a, b = (np.array(m, float) for m in prior_sip)
        sip_order = a.shape[0] - 1
        ap, bp = _inverse_sip(a, b, sip_order, norm) if inverse else (None, None)
        w.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
        w.sip = Sip(a, b, ap, bp, w.wcs.crpix)
        w.wcs.set()
        return w, cd
    sip_order = max(order, 3 if k_radial else 0)
    if sip_order < 2:
        w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        w.wcs.set()
        return w, cd
    cdinv = np.linalg.inv(cd)
    a = np.zeros((sip_order + 1, sip_order + 1))
    b = np.zeros((sip_order + 1, sip_order + 1))
    for i, (p, q) in enumerate(terms):
        if p + q >= 2:
            a[p, q], b[p, q] = cdinv @ (coef[i] / norm ** (p + q))
    if k_radial:  # (u, v) r^2 in pixels: k_px = k_norm / norm^2
        k_px = k_radial / norm ** 2
        a[3, 0] += k_px
        a[1, 2] += k_px
        b[2, 1] += k_px
        b[0, 3] += k_px
    ap, bp = _inverse_sip(a, b, sip_order, norm) if inverse else (None, None)
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
