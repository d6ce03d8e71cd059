"""Streaks: joining broken pieces and fitting a line-segment model to the pixels.

Model of a streak (a point source moving uniformly during the exposure), in coordinates ``u``
along the segment from its centre and ``v`` across it::

    I(u, v) = F / L * g(v; w) * [Phi((u + L/2) / w) - Phi((u - L/2) / w)]

with ``g`` the unit Gaussian profile of standard deviation ``w`` (px) and ``Phi`` its
cumulative distribution. Parameters: centre ``(xc, yc)`` px, angle ``phi`` (rad, from +x toward
+y), length ``L`` px, width ``w`` px, total flux ``F`` (image units). They are fitted by
Levenberg-Marquardt least squares (analytic Jacobian) to the background-subtracted pixels of a
band around the initial line, each weighted by its noise; the caller masks stars on the band.
End points are ``centre -+ L/2 (cos phi, sin phi)``; their 1-sigma along the streak comes from the
covariance of the fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit
from scipy import special

SQRT2 = math.sqrt(2.0)
STAR_RADIUS_SIGMA = 6.0  # jointly fitted stars end at this many PSF sigma
# most model evaluations of a streak fit (200, and 50 per jointly fitted star, up to this): on the
# sample frames, converged fits with 24-56 stars took at most 800; one that did not converge
# (50 stars, refused) took 1.7 s for its 2700
MAX_NFEV = 1000


@dataclass
class Line:
    """A streak candidate: centre (px), angle (rad), length (px), component indices it joins."""

    xc: float
    yc: float
    phi: float
    length: float
    members: list
    npieces: int = 1

    def ends_along(self, x, y):
        """Position along the line (px from the centre) of points (x, y)."""
        return (np.asarray(x) - self.xc) * math.cos(self.phi) + (np.asarray(y) - self.yc) * math.sin(self.phi)

    def across(self, x, y):
        """Signed distance (px) of points (x, y) from the infinite line."""
        return -(np.asarray(x) - self.xc) * math.sin(self.phi) + (np.asarray(y) - self.yc) * math.cos(self.phi)


def join_pieces(lines: list[Line], *, max_gap_px: float, max_offset_px: float,
                max_angle_rad: float = math.radians(6.0)) -> list[Line]:
    """Join collinear pieces of one streak (broken by noise or by a crossing star).

    Pieces are taken longest first; a piece joins a group when its angle agrees, its centre lies
    within ``max_offset_px`` of the group's line and the gap along the line is at most
    ``max_gap_px``. The joined line spans the extreme ends of both, along their common axis.
    """
    groups: list[Line] = []
    n = len(lines)
    gx, gy, gphi, glen = (np.empty(n) for _ in range(4))  # the groups' lines, as arrays
    for piece in sorted(lines, key=lambda p: -p.length):
        m = len(groups)
        tol = np.maximum(max_angle_rad,
                         np.arctan2(2.0 * max_offset_px, np.minimum(piece.length, glen[:m]) + 1))
        d = (piece.phi - gphi[:m]) % math.pi
        c, s = np.cos(gphi[:m]), np.sin(gphi[:m])
        dx, dy = piece.xc - gx[:m], piece.yc - gy[:m]
        gap = np.abs(dx * c + dy * s) - 0.5 * (glen[:m] + piece.length)
        ok = ((np.minimum(d, math.pi - d) <= tol) & (np.abs(-dx * s + dy * c) <= max_offset_px)
              & (gap <= max_gap_px))
        if ok.any():  # the first group that takes it
            k = int(np.argmax(ok))
            groups[k] = joined(groups[k], piece)
        else:
            k = m
            groups.append(Line(piece.xc, piece.yc, piece.phi, piece.length, list(piece.members),
                               piece.npieces))
        g = groups[k]
        gx[k], gy[k], gphi[k], glen[k] = g.xc, g.yc, g.phi, g.length
    return groups


def _ends(ln: Line):
    h = 0.5 * ln.length
    c, s = math.cos(ln.phi), math.sin(ln.phi)
    return [(ln.xc - h * c, ln.yc - h * s), (ln.xc + h * c, ln.yc + h * s)]


def joined(g: Line, piece: Line) -> Line:
    """The line through the extreme ends of two collinear lines (angle length-weighted)."""
    wg, wp = max(g.length, 1.0), max(piece.length, 1.0)
    dp = piece.phi if abs(piece.phi - g.phi) <= math.pi / 2 else piece.phi - math.copysign(math.pi, piece.phi - g.phi)
    ends = np.array(_ends(g) + _ends(piece))
    centre = ends.mean(axis=0)
    # axis: principal direction of the four ends, falling back to the weighted mean angle
    cov = np.cov((ends - centre).T)
    w, v = np.linalg.eigh(cov)
    phi = math.atan2(v[1, 1], v[0, 1]) if w[1] > 4 * max(w[0], 1e-12) else (wg * g.phi + wp * dp) / (wg + wp)
    t = (ends - centre) @ np.array([math.cos(phi), math.sin(phi)])
    mid = 0.5 * (t.min() + t.max())
    return Line(centre[0] + mid * math.cos(phi), centre[1] + mid * math.sin(phi), phi,
                float(t.max() - t.min()), sorted(set(g.members) | set(piece.members)),
                g.npieces + piece.npieces)


@njit(cache=True)
def model_kernel(p, x, y):
    """Kernel: :func:`streak_model` in one fused loop (float64)."""
    xc, yc, phi, length, w, flux = p[0], p[1], p[2], p[3], p[4], p[5]
    c, s = math.cos(phi), math.sin(phi)
    half = 0.5 * length
    k = flux / max(length, 1e-3) / (math.sqrt(2 * math.pi) * w)
    inv = 1.0 / (SQRT2 * w)
    out = np.empty(x.shape[0])
    for i in range(x.shape[0]):
        u = (x[i] - xc) * c + (y[i] - yc) * s
        v = -(x[i] - xc) * s + (y[i] - yc) * c
        out[i] = k * math.exp(-0.5 * (v / w) ** 2) * _along(u + half, u - half, inv)
    return out


ERF_SATURATED = 6.0  # erf(6) is 1.0 in float64 (erfc(6) = 2e-17)


@njit(cache=True)
def _along(u_plus, u_minus, inv):
    """``0.5 (erf(u_plus inv) - erf(u_minus inv))``: the fraction of a segment's light seen at
    offsets ``u_plus``/``u_minus`` (px) from its ends; exactly 1 or 0 without ``erf`` where both
    arguments are beyond ``ERF_SATURATED`` (inside a long streak, or far beyond an end)."""
    a, b = u_plus * inv, u_minus * inv
    if a >= ERF_SATURATED and b <= -ERF_SATURATED:
        return 1.0
    if min(a, b) >= ERF_SATURATED or max(a, b) <= -ERF_SATURATED:
        return 0.0
    return 0.5 * (math.erf(a) - math.erf(b))


@njit(cache=True)
def _streak_terms(xi, yi, xc, yc, c, s, h, w, norm, k, length):
    """The streak model at one pixel and its six derivatives (see :func:`streak_jacobian`)."""
    u = (xi - xc) * c + (yi - yc) * s
    v = -(xi - xc) * s + (yi - yc) * c
    big_a = norm * math.exp(-0.5 * (v / w) ** 2)
    big_b = _along(u + h, u - h, 1.0 / (SQRT2 * w))
    g_plus = g_minus = 0.0  # end Gaussians: below 1e-15 of their peak where erf is saturated
    if abs(u + h) < ERF_SATURATED * SQRT2 * w:
        g_plus = norm * math.exp(-0.5 * ((u + h) / w) ** 2)
    if abs(u - h) < ERF_SATURATED * SQRT2 * w:
        g_minus = norm * math.exp(-0.5 * ((u - h) / w) ** 2)
    da_dv = -v / (w * w) * big_a
    db_du = g_plus - g_minus
    da_dw = big_a * (v * v / (w * w * w) - 1.0 / w)
    db_dw = (-(u + h) * g_plus + (u - h) * g_minus) / w
    return (k * big_a * big_b,
            k * (da_dv * s * big_b - big_a * db_du * c),
            k * (-da_dv * c * big_b - big_a * db_du * s),
            k * (-da_dv * u * big_b + big_a * db_du * v),
            -k / length * big_a * big_b + k * big_a * 0.5 * (g_plus + g_minus),
            k * (da_dw * big_b + big_a * db_dw),
            big_a * big_b / length)


@njit(cache=True)
def model_and_jacobian_kernel(p, x, y):
    """Kernel: :func:`streak_model` and :func:`streak_jacobian` in one fused loop."""
    xc, yc, phi, length, w, flux = p[0], p[1], p[2], p[3], p[4], p[5]
    length = max(length, 1e-3)
    c, s = math.cos(phi), math.sin(phi)
    norm = 1.0 / (math.sqrt(2 * math.pi) * w)
    jac = np.empty((x.shape[0], 6))
    model = np.empty(x.shape[0])
    for i in range(x.shape[0]):
        (model[i], jac[i, 0], jac[i, 1], jac[i, 2], jac[i, 3], jac[i, 4],
         jac[i, 5]) = _streak_terms(x[i], y[i], xc, yc, c, s, 0.5 * length, w, norm, flux / length, length)
    return model, jac


@njit(cache=True)
def _normal_equations(p, x, y, z, inv_sigma, width_px, has_streak):
    """Kernel: ``J^T J`` (m, m) and ``J^T r`` (m) of the weighted residuals ``(z - model) /
    sigma`` of "streak plus stars" (as :func:`_residuals_jacobian`), accumulated pixel by pixel
    over each row's non-zero entries (the streak's six, three per star within reach); the
    Jacobian is never stored."""
    n, m = x.shape[0], p.shape[0]
    s0 = 6 if has_streak else 0
    nstars = (m - s0) // 3
    a = np.zeros((m, m))
    g = np.zeros(m)
    idx = np.empty(m, np.int64)
    val = np.empty(m)
    xc = yc = c = s = norm = flux = 0.0
    w = length = 1.0
    if has_streak:
        xc, yc, w, flux = p[0], p[1], p[4], p[5]
        length = max(p[3], 1e-3)
        c, s = math.cos(p[2]), math.sin(p[2])
        norm = 1.0 / (math.sqrt(2 * math.pi) * w)
    var = width_px * width_px
    star_norm = 1.0 / (2.0 * math.pi * var)
    for i in range(n):
        isg = inv_sigma[i]
        acc = 0.0
        na = 0
        if has_streak:
            mod, j0, j1, j2, j3, j4, j5 = _streak_terms(x[i], y[i], xc, yc, c, s, 0.5 * length, w,
                                                        norm, flux / length, length)
            acc = mod
            idx[0], idx[1], idx[2], idx[3], idx[4], idx[5] = 0, 1, 2, 3, 4, 5
            val[0], val[1], val[2] = -j0 * isg, -j1 * isg, -j2 * isg
            val[3], val[4], val[5] = -j3 * isg, -j4 * isg, -j5 * isg
            na = 6
        for k in range(nstars):
            j = s0 + 3 * k
            dx, dy = x[i] - p[j], y[i] - p[j + 1]
            r2 = dx * dx + dy * dy
            if r2 > STAR_RADIUS_SIGMA**2 * var:
                continue
            gk = star_norm * math.exp(-0.5 * r2 / var)
            mk = gk * p[j + 2]
            acc += mk
            idx[na], idx[na + 1], idx[na + 2] = j, j + 1, j + 2
            val[na], val[na + 1], val[na + 2] = -mk * dx / var * isg, -mk * dy / var * isg, -gk * isg
            na += 3
        r = (z[i] - acc) * isg
        for q in range(na):  # idx increases: a's lower triangle
            u, vq = idx[q], val[q]
            g[u] += vq * r
            for t in range(q + 1):
                a[u, idx[t]] += vq * val[t]
    for u in range(m):
        for v in range(u):
            a[v, u] = a[u, v]
    return a, g


@njit(cache=True)
def _residuals_jacobian(p, x, y, z, inv_sigma, width_px, has_streak, want_jac):
    """Kernel: weighted residuals ``(z - model) / sigma`` and their Jacobian (n, m) for the
    model "streak (p[:6], if ``has_streak``) plus circular Gaussian stars (x_k, y_k, F_k)"."""
    n, m = x.shape[0], p.shape[0]
    s0 = 6 if has_streak else 0
    nstars = (m - s0) // 3
    r = np.empty(n)
    jac = np.zeros((n if want_jac else 0, m))
    if has_streak and want_jac:
        mod, js = model_and_jacobian_kernel(p[:6], x, y)
        for i in range(n):
            for a in range(6):
                jac[i, a] = -js[i, a] * inv_sigma[i]
    elif has_streak:
        mod = model_kernel(p[:6], x, y)
    else:
        mod = np.zeros(n)
    var = width_px * width_px
    norm = 1.0 / (2.0 * math.pi * var)
    for i in range(n):
        acc = mod[i]
        for k in range(nstars):
            j = s0 + 3 * k
            dx, dy = x[i] - p[j], y[i] - p[j + 1]
            r2 = dx * dx + dy * dy
            if r2 > STAR_RADIUS_SIGMA**2 * var:
                continue  # exp(-18): nothing, and a zero in the (sparse) Jacobian
            g = norm * math.exp(-0.5 * r2 / var)
            mk = g * p[j + 2]
            acc += mk
            if want_jac:
                jac[i, j] = -mk * dx / var * inv_sigma[i]
                jac[i, j + 1] = -mk * dy / var * inv_sigma[i]
                jac[i, j + 2] = -g * inv_sigma[i]
        r[i] = (z[i] - acc) * inv_sigma[i]
    return r, jac


@njit(cache=True)
def _cholesky_solve(a, b):
    """Solution of ``a x = b`` for symmetric positive definite ``a`` (m, m); ``ok`` False if it
    is not numerically positive definite."""
    m = a.shape[0]
    low = np.zeros((m, m))
    for i in range(m):
        for j in range(i + 1):
            s = a[i, j]
            for k in range(j):
                s -= low[i, k] * low[j, k]
            if i == j:
                if not s > 0.0:
                    return b * 0.0, False
                low[i, i] = math.sqrt(s)
            else:
                low[i, j] = s / low[j, j]
    y = np.empty(m)
    for i in range(m):
        s = b[i]
        for k in range(i):
            s -= low[i, k] * y[k]
        y[i] = s / low[i, i]
    out = np.empty(m)
    for i in range(m - 1, -1, -1):
        s = y[i]
        for k in range(i + 1, m):
            s -= low[k, i] * out[k]
        out[i] = s / low[i, i]
    return out, True


@njit(cache=True)
def lm_kernel(p0, scale, x, y, z, inv_sigma, width_px, has_streak, max_nfev, tol):
    """Kernel: Levenberg-Marquardt least squares of the "streak plus stars" model.

    Damping ``lambda / scale**2``: Levenberg's in the variables ``p / scale`` (as MINPACK's
    ``lmder`` with a given scaling, ``scale`` being each parameter's typical change); lambda
    starts at 0.001 of the largest scaled curvature, is divided by 10 after a step that lowers
    chi^2 and multiplied by 10 after one that does not.
    Converged when a step (with lambda not above its start: a heavily damped step is small in a
    long valley too) lowers chi^2 by less than ``tol`` relative, or moves no parameter by more
    than ``tol`` of its size plus its scale. ``tol`` = 1e-8 as MINPACK's default: the ends of
    a streak can creep over a plateau (faint light beyond an end) for tens of small steps.
    Returns (parameters, chi^2, converged, function evaluations).
    """
    p = p0.copy()
    m = p.shape[0]
    r, _ = _residuals_jacobian(p, x, y, z, inv_sigma, width_px, has_streak, False)
    chi2 = r @ r
    lam = lam0 = 1e-3
    first = True
    nfev = 1
    converged = False
    while nfev < max_nfev and not converged:
        a, g = _normal_equations(p, x, y, z, inv_sigma, width_px, has_streak)
        dmax = 0.0
        for u in range(m):
            dmax = max(dmax, a[u, u])
        if not dmax > 0.0:
            break
        diag = np.empty(m)
        for u in range(m):
            diag[u] = 1.0 / (scale[u] * scale[u])
        if first:
            lam = 0.0
            for u in range(m):
                lam = max(lam, 1e-3 * a[u, u] / diag[u])
            lam0 = lam
            first = False
        stepped = at_minimum = False
        while nfev < max_nfev:
            damped = a.copy()
            for u in range(m):
                damped[u, u] += lam * diag[u]
            step, ok = _cholesky_solve(damped, -g)
            if not ok:
                lam *= 10.0
                if lam > 1e16:
                    at_minimum = True
                    break
                continue
            trial = p + step
            r_new, _ = _residuals_jacobian(trial, x, y, z, inv_sigma, width_px, has_streak, False)
            nfev += 1
            chi2_new = r_new @ r_new
            if chi2_new < chi2 or not math.isfinite(chi2):
                small = True
                for u in range(m):
                    if abs(step[u]) > tol * (abs(p[u]) + scale[u]):
                        small = False
                converged = lam <= lam0 and (small or (chi2 - chi2_new) <= tol * chi2_new)
                p, chi2 = trial, chi2_new
                lam = lam / 10.0
                stepped = True
                break
            lam *= 10.0
            if lam > 1e16:
                at_minimum = True  # no step lowers chi^2: the minimum to machine precision
                break
        if not stepped:
            converged = at_minimum
            break
    return p, chi2, converged, nfev


def streak_model(p, x, y):
    """Model image values at pixel centres (x, y) for parameters p = (xc, yc, phi, L, w, F)."""
    xc, yc, phi, length, w, flux = p
    c, s = math.cos(phi), math.sin(phi)
    u = (x - xc) * c + (y - yc) * s
    v = -(x - xc) * s + (y - yc) * c
    half = 0.5 * length
    along = 0.5 * (special.erf((u + half) / (SQRT2 * w)) - special.erf((u - half) / (SQRT2 * w)))
    across = np.exp(-0.5 * (v / w) ** 2) / (math.sqrt(2 * math.pi) * w)
    return flux / max(length, 1e-3) * across * along


def streak_jacobian(p, x, y):
    """Derivatives of :func:`streak_model` with respect to p = (xc, yc, phi, L, w, F): (n, 6)."""
    xc, yc, phi, length, w, flux = p
    length = max(length, 1e-3)
    c, s = math.cos(phi), math.sin(phi)
    u = (x - xc) * c + (y - yc) * s
    v = -(x - xc) * s + (y - yc) * c
    h = 0.5 * length
    norm = 1.0 / (math.sqrt(2 * math.pi) * w)
    g_plus = norm * np.exp(-0.5 * ((u + h) / w) ** 2)
    g_minus = norm * np.exp(-0.5 * ((u - h) / w) ** 2)
    big_a = norm * np.exp(-0.5 * (v / w) ** 2)
    big_b = 0.5 * (special.erf((u + h) / (SQRT2 * w)) - special.erf((u - h) / (SQRT2 * w)))
    da_dv = -v / w**2 * big_a
    db_du = g_plus - g_minus
    k = flux / length
    jac = np.empty((len(x), 6))
    jac[:, 0] = k * (da_dv * s * big_b - big_a * db_du * c)
    jac[:, 1] = k * (-da_dv * c * big_b - big_a * db_du * s)
    jac[:, 2] = k * (-da_dv * u * big_b + big_a * db_du * v)
    jac[:, 3] = -k / length * big_a * big_b + k * big_a * 0.5 * (g_plus + g_minus)
    da_dw = big_a * (v**2 / w**3 - 1.0 / w)
    db_dw = (-(u + h) * g_plus + (u - h) * g_minus) / w
    jac[:, 4] = k * (da_dw * big_b + big_a * db_dw)
    jac[:, 5] = big_a * big_b / length
    return jac


@dataclass
class StreakFit:
    """Result of a streak fit: parameters, their covariance, and derived ends (px)."""

    params: np.ndarray      # xc, yc, phi (rad), L, w, F
    cov: np.ndarray         # 6 x 6
    success: bool
    npix: int
    excess: float = np.nan  # (chi^2 - n) / sum (model / sigma)^2: signal power not explained
    flux_err: float = np.nan  # 1-sigma of F with the geometry fixed (the detection SNR's noise)
    chi2: float = np.nan      # chi^2 of the fit (streak plus any stars)
    data: tuple = None        # (z, inv_sigma, x, y, fitted stars, width): for stars_chi2

    def stars_chi2(self, k: int = 2) -> float:
        """chi^2 of ``k`` point sources (plus the fitted stars) in place of the streak, started
        evenly from 1 sigma inside one end to 1 sigma inside the other, positions and fluxes
        free: tells a short streak from a pair or a clump of stars (inf if not fitted)."""
        if self.data is None:
            return np.inf
        z, inv_sigma, x, y, stars_q, width = self.data
        return _stars_chi2(z, inv_sigma, x, y, self.params, stars_q, width, k)

    @property
    def ends(self):
        xc, yc, phi, length = self.params[:4]
        h = 0.5 * length
        c, s = math.cos(phi), math.sin(phi)
        return (xc - h * c, yc - h * s), (xc + h * c, yc + h * s)

    @property
    def end_sigmas(self):
        """1-sigma (px) of each end along the streak."""
        phi = self.params[2]
        e = np.array([math.cos(phi), math.sin(phi)])
        out = []
        for sign in (-1.0, 1.0):
            g = np.array([e[0], e[1], 0.0, 0.5 * sign, 0.0, 0.0])
            out.append(math.sqrt(max(g @ self.cov @ g, 0.0)))
        return tuple(out)


def stars_model(q, x, y, sigma):
    """Sum of circular Gaussians (PSF sigma px, cut at ``STAR_RADIUS_SIGMA``) with q = (x_k, y_k,
    F_k) flattened, and its Jacobian (n, 3k) with respect to q."""
    q = q.reshape(-1, 3)
    dx = x[:, None] - q[None, :, 0]
    dy = y[:, None] - q[None, :, 1]
    r2 = dx * dx + dy * dy
    g = np.where(r2 <= (STAR_RADIUS_SIGMA * sigma) ** 2, np.exp(-0.5 * r2 / sigma**2), 0.0) / (2 * math.pi * sigma**2)
    m = g * q[None, :, 2]
    jac = np.empty((len(x), q.shape[0], 3))
    jac[:, :, 0] = m * dx / sigma**2
    jac[:, :, 1] = m * dy / sigma**2
    jac[:, :, 2] = g
    return m.sum(axis=1), jac.reshape(len(x), -1)


def fit_line(d: np.ndarray, var: np.ndarray, x0: int, y0: int, line: Line,
             width_px: float, stars=None) -> StreakFit:
    """Fit the streak model to the cutout ``d`` (background-subtracted, origin at (x0, y0)).

    ``var`` is the per-pixel variance (same shape); non-finite pixels are ignored. Only pixels
    in a band of ``4 width + 2`` px around the initial line and ``4 width + 4`` px beyond its
    ends are used. ``stars`` ((k, 2) x, y px) are point sources fitted jointly with the streak
    (Gaussians of sigma ``width_px``, position and flux free): stars crossing or touching the
    streak in crowded fields. The returned parameters, covariance (marginalised over the stars)
    and excess are the streak's; the excess counts what streak plus stars leave unexplained.
    """
    yy, xx = np.mgrid[y0:y0 + d.shape[0], x0:x0 + d.shape[1]]
    band = 4.0 * width_px + 2.0
    u = line.ends_along(xx, yy)
    v = line.across(xx, yy)
    sel = (np.abs(v) <= band) & (np.abs(u) <= 0.5 * line.length + band + 2.0)
    sel &= np.isfinite(d) & np.isfinite(var) & (var > 0)
    x, y, z = xx[sel].astype(float), yy[sel].astype(float), d[sel].astype(float)
    inv_sigma = 1.0 / np.sqrt(var[sel].astype(float))
    flux0 = max(float(np.sum(z[np.abs(v[sel]) <= 2 * width_px])), 1e-6)
    p0 = np.array([line.xc, line.yc, line.phi, max(line.length, 1.0), width_px, flux0])
    stars = np.zeros((0, 2)) if stars is None else np.asarray(stars, float).reshape(-1, 2)
    # start each star at the flux its peak pixel implies (streak light included: a star the
    # streak was walked over then pulls the end back rather than staying unfitted)
    ix = np.clip(np.rint(stars[:, 0]).astype(int) - x0, 0, d.shape[1] - 1)
    iy = np.clip(np.rint(stars[:, 1]).astype(int) - y0, 0, d.shape[0] - 1)
    peak = np.nan_to_num(d[iy, ix], nan=0.0)
    q0 = np.column_stack([stars, np.maximum(peak, 0) * 2 * math.pi * width_px**2]).ravel()
    if len(z) < 8 + 3 * len(stars):
        return StreakFit(p0, np.full((6, 6), np.nan), False, len(z))
    scale = np.concatenate([[1, 1, 0.01, 1, 0.3, flux0], np.tile([0.5, 0.5, flux0], len(stars))])
    full, chi2, converged, _ = lm_kernel(np.concatenate([p0, q0]), scale, x, y, z, inv_sigma, width_px,
                                         True, min(200 + 50 * len(stars), MAX_NFEV), 1e-8)
    full[3:5] = np.abs(full[3:5])  # the model is even in L and w
    params = full[:6].copy()
    r, jac_full = _residuals_jacobian(full, x, y, z, inv_sigma, width_px, True, True)
    scale = 1.0 / np.maximum(np.sqrt((jac_full**2).sum(axis=0)), 1e-300)  # equilibrate columns
    # a model that does not fit (brightness varying along the track, PSF wings) inflates the
    # errors by the reduced chi^2, never deflates them
    inflate = max(1.0, float(r @ r) / max(len(z) - 6, 1))
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # a star fitted to nothing: inf var
            cov = (scale[:, None] * np.linalg.pinv((jac_full * scale).T @ (jac_full * scale))
                   * scale[None, :])[:6, :6] * inflate
    except np.linalg.LinAlgError:
        cov = np.full((6, 6), np.nan)
    jac = jac_full[:, :6]
    signal = float(np.sum((model_kernel(params, x, y) * inv_sigma) ** 2))
    excess = (float(r @ r) - len(z)) / max(signal, 1e-30)
    moved = math.hypot(params[0] - p0[0], params[1] - p0[1])
    ok = (converged and bool(np.all(np.isfinite(params))) and abs(params[2] - p0[2]) < 1.0
          and moved <= 2 * p0[3] + 4 * band and params[3] <= 4 * p0[3] + 8 * band
          and params[5] > 0)
    flux_err = math.sqrt(inflate) / math.sqrt(max(float(jac[:, 5] @ jac[:, 5]), 1e-300))
    return StreakFit(params, cov, ok, len(z), excess, flux_err, float(r @ r),
                     (z, inv_sigma, x, y, full[6:], width_px))


def _stars_chi2(z, inv_sigma, x, y, params, stars_q, width_px, k):
    """chi^2 of ``k`` point sources (plus the fitted stars) in place of a fitted streak."""
    xc, yc, phi, length, w, flux = params
    h = max(0.5 * length - width_px, 0.5)
    c, s = math.cos(phi), math.sin(phi)
    q0 = np.concatenate([np.ravel([[xc + t * c, yc + t * s, flux / k]
                                   for t in np.linspace(-h, h, k)]), stars_q])
    scale = np.tile([0.5, 0.5, max(abs(flux), 1e-6)], len(q0) // 3)
    _, chi2, _, _ = lm_kernel(q0, scale, x, y, z, inv_sigma, width_px, False, 30 * len(q0), 1e-8)
    return float(chi2)


def fit_streaks(image, x0, y0, x1, y1, bkg=None, *, fwhm_px: float = 2.5, gain_e_per_adu=None):
    """Fit the line-segment model to streaks whose approximate ends are given (px, arrays).

    Returns an astropy Table: fitted ``x, y`` (centre), ``angle_deg``, ``length_px``,
    ``width_px`` (Gaussian sigma across), ``flux`` (ADU, total), their errors ``*_err``, the
    ends ``x0, y0, x1, y1``, ``end0_sigma_px``, ``end1_sigma_px`` (along the track), ``fit_excess``
    and ``success``. ``bkg`` defaults to the frame's :func:`~aposos.detect.background.background`.
    """
    from astropy.table import Table

    from .background import background, patch
    from .significance import FWHM_PER_SIGMA

    image = np.ascontiguousarray(image, dtype=np.float32)
    bkg = background(image) if bkg is None else bkg
    sigma = fwhm_px / FWHM_PER_SIGMA
    rows = []
    ny, nx = image.shape
    for a0, b0, a1, b1 in zip(*(np.atleast_1d(np.asarray(v, float)) for v in (x0, y0, x1, y1))):
        line = Line(0.5 * (a0 + a1), 0.5 * (b0 + b1), math.atan2(b1 - b0, a1 - a0),
                    math.hypot(a1 - a0, b1 - b0), [])
        band = 4 * sigma + 4
        xa, xb = max(0, int(min(a0, a1) - band)), min(nx, int(max(a0, a1) + band) + 1)
        ya, yb = max(0, int(min(b0, b1) - band)), min(ny, int(max(b0, b1) + band) + 1)
        d = image[ya:yb, xa:xb] - patch(bkg, bkg.back_grid, ya, yb, xa, xb)
        var = patch(bkg, bkg.rms_grid, ya, yb, xa, xb) ** 2
        if gain_e_per_adu is not None:
            var = var + np.clip(d, 0, None) / gain_e_per_adu
        fit = fit_line(d, var, xa, ya, line, sigma)
        err = np.sqrt(np.clip(np.diag(fit.cov), 0, None))
        (e0x, e0y), (e1x, e1y) = fit.ends
        s0, s1 = fit.end_sigmas
        xc, yc, phi, length, w, flux = fit.params
        rows.append((xc, yc, err[0], err[1], math.degrees(phi), math.degrees(err[2]), length,
                     err[3], w, flux, err[5], e0x, e0y, e1x, e1y, s0, s1, fit.excess, fit.success))
    names = ("x", "y", "x_err", "y_err", "angle_deg", "angle_err_deg", "length_px",
             "length_err_px", "width_px", "flux", "flux_err", "x0", "y0", "x1", "y1",
             "end0_sigma_px", "end1_sigma_px", "fit_excess", "success")
    return Table(rows=rows, names=names) if rows else Table(names=names)
