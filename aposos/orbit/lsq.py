"""Batch weighted least squares (Levenberg-Marquardt) with outlier rejection and covariance.

The model is any function ``fun(x) -> (n, 2)`` of *normalised* residuals (observed minus
computed, divided by each observation's sigma), so that every observation of every station
counts with its own uncertainty. The Jacobian is by forward differences with per-parameter
steps. Optional Gaussian priors on parameters (e.g. B*) enter as extra residual rows.

Outlier rejection: after convergence, every observation is judged again: it is kept when its
normalised residual length is within ``reject_sigma`` times the robust scale (from the
median, Rayleigh law for 2 coordinates; never below 1); the fit is repeated until the kept set
no longer changes (when more than 10 % would go at once, only the worst goes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RAYLEIGH_MEDIAN_SQ = 2 * np.log(2)  # median of chi^2 with 2 degrees of freedom


class FitError(RuntimeError):
    """The fit did not converge (diverged, or the model failed for every trial step)."""


@dataclass
class Fit:
    """Result of :func:`fit`.

    x : parameters; cov : covariance of x (formal, scaled by the reduced chi^2 when > 1);
    used : boolean mask of observations kept; resid : (n, 2) normalised residuals of *all*
    observations at x; chi2_red : reduced chi^2 of the used ones; iterations : LM steps.
    """

    x: np.ndarray
    cov: np.ndarray
    used: np.ndarray
    resid: np.ndarray
    chi2_red: float
    iterations: int


def _chi2(r, used, prior_rows):
    return float(np.sum(r[used] ** 2) + np.sum(prior_rows ** 2))


def _prior_rows(x, prior_x, prior_sigma):
    if prior_x is None:
        return np.zeros(0)
    ok = np.isfinite(prior_sigma)
    return (x[ok] - prior_x[ok]) / prior_sigma[ok]


def levenberg_marquardt(fun, x0, steps, used, prior_x=None, prior_sigma=None, max_iter=40, tol=1e-7):
    """Minimise the sum of squares of ``fun(x)[used]`` (plus priors); returns (x, J, r, iterations).

    Raises :class:`FitError` if the model fails at ``x0`` or the iteration does not converge.
    """
    x = np.asarray(x0, float).copy()
    steps = np.asarray(steps, float)
    try:
        r = fun(x)
    except (ValueError, FloatingPointError) as exc:
        raise FitError(f"model fails at the start: {exc}") from exc
    if not np.all(np.isfinite(r[used])):
        raise FitError("model not finite at the start")
    chi2 = _chi2(r, used, _prior_rows(x, prior_x, prior_sigma))
    lam = 1e-3
    for it in range(1, max_iter + 1):
        J = _jacobian(fun, x, r, steps, used)
        Js, scale, ra = _whitened(J, r[used].ravel(), x, prior_x, prior_sigma)
        improved = False
        for _ in range(12):
            dx = _step(Js, scale, ra, lam)
            try:
                r_new = fun(x + dx)
                ok = np.all(np.isfinite(r_new[used]))
            except (ValueError, FloatingPointError):
                ok = False
            if ok:
                chi2_new = _chi2(r_new, used, _prior_rows(x + dx, prior_x, prior_sigma))
                if chi2_new <= chi2:
                    improved = True
                    break
            lam *= 10
        if not improved:  # no step improves: at the minimum, unless Gauss-Newton promises a drop
            if chi2 < 1e-30 or it > 1 or _predicted_drop(Js, ra) <= 1e-3 * max(chi2, 1.0):
                return x, J, r, it
            raise FitError("no step improves the fit")
        x = x + dx
        r = r_new
        # converged when chi^2 no longer drops and the step moves the model by a negligible
        # fraction of the noise (|J dx| in units of sigma). A test on dx itself (formerly
        # |dx| < 1e3 x the difference step) never passes along poorly determined directions:
        # GEO from one station over 6 h stalled to "no convergence".
        moved = float(np.linalg.norm(Js @ (dx * scale)))
        small = (chi2 - chi2_new) <= tol * max(chi2_new, 1.0) and moved < 1e-3
        chi2 = chi2_new
        lam = max(lam / 10, 1e-12)
        if small:
            return x, _jacobian(fun, x, r, steps, used), r, it
    raise FitError(f"no convergence in {max_iter} iterations")


def _jacobian(fun, x, r, steps, used):
    cols = []
    for j, h in enumerate(steps):
        xp = x.copy()
        xp[j] += h
        cols.append(((fun(xp) - r)[used]).ravel() / h)
    return np.stack(cols, axis=1)


def _whitened(J, r, x, prior_x, prior_sigma):
    """Column-scaled design matrix with the prior rows appended: (Js, column scale, residuals).

    Steps and covariance are solved with this matrix, not the normal equations J^T J, which
    square its condition number (GEO from one station: ~50 over an 11.5 h night, ~3e3 over 6 h).
    """
    Ja, ra = J, r
    if prior_x is not None:
        ok = np.isfinite(prior_sigma)
        rows = np.eye(len(x))[ok] / prior_sigma[ok, None]
        Ja = np.vstack([J, rows])
        ra = np.concatenate([r, (x[ok] - prior_x[ok]) / prior_sigma[ok]])
    scale = np.linalg.norm(Ja, axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    return Ja / scale, scale, ra


def _step(Js, scale, ra, lam):
    """Levenberg-Marquardt step: least squares of [Js; sqrt(lam) I] dz = [-ra; 0], dx = dz / scale."""
    m = Js.shape[1]
    M = np.vstack([Js, np.sqrt(lam) * np.eye(m)])
    rhs = np.concatenate([-ra, np.zeros(m)])
    return np.linalg.lstsq(M, rhs, rcond=None)[0] / scale


def _predicted_drop(Js, ra):
    """chi^2 decrease promised by the full Gauss-Newton step (linear model)."""
    dz = np.linalg.lstsq(Js, -ra, rcond=None)[0]
    return float(ra @ ra - np.sum((ra + Js @ dz) ** 2))


def covariance(J, x, prior_x=None, prior_sigma=None):
    """Formal covariance (J^T J + prior weights)^-1 from the SVD of the column-scaled design
    matrix (directions with singular values < 1e-12 of the largest are dropped)."""
    Js, scale, _ = _whitened(J, np.zeros(J.shape[0]), x, prior_x, prior_sigma)
    _, s, vt = np.linalg.svd(Js, full_matrices=False)
    inv = np.where(s > 1e-12 * s[0], 1.0 / np.maximum(s, 1e-300) ** 2, 0.0)
    return (vt.T * inv) @ vt / scale[:, None] / scale[None, :]


def fit(fun, x0, steps, used=None, prior_x=None, prior_sigma=None, reject_sigma=4.0, max_rounds=6,
        max_iter=40) -> Fit:
    """Least squares with iterative outlier rejection (see module doc)."""
    r0 = fun(np.asarray(x0, float))
    used = np.ones(len(r0), bool) if used is None else np.asarray(used, bool).copy()
    if prior_x is not None:
        prior_x, prior_sigma = np.asarray(prior_x, float), np.asarray(prior_sigma, float)
    x = np.asarray(x0, float)
    total = 0
    allowed = used.copy()
    for _ in range(max_rounds):
        x, J, r, it = levenberg_marquardt(fun, x, steps, used, prior_x, prior_sigma, max_iter)
        total += it
        d2 = np.sum(r ** 2, axis=1)
        scale2 = max(np.median(d2[used]) / RAYLEIGH_MEDIAN_SQ, 1.0)
        keep = allowed & (d2 <= reject_sigma ** 2 * scale2)  # every observation re-judged
        if keep.sum() < 0.9 * used.sum():  # many flagged: one gross outlier may drag the fit, drop the worst only
            keep = used.copy()
            keep[np.argmax(np.where(used, d2, -np.inf))] = False
        if np.array_equal(keep, used):
            break
        used = keep
    dof = max(2 * used.sum() - len(x), 1)
    chi2_red = float(np.sum(r[used] ** 2) / dof)
    cov = covariance(J, x, prior_x, prior_sigma) * max(chi2_red, 1.0)
    return Fit(x=x, cov=cov, used=used, resid=r, chi2_red=chi2_red, iterations=total)
