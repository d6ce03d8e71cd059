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
        A, b = _normal(J, r[used].ravel(), x, prior_x, prior_sigma)
        improved = False
        for _ in range(12):
            dx = _solve(A + lam * np.diag(np.diag(A)), -b)
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
        if not improved:
            if chi2 < 1e-30 or it > 1:  # no step improves: at the minimum
                return x, J, r, it
            raise FitError("no step improves the fit")
        x = x + dx
        r = r_new
        small = (chi2 - chi2_new) <= tol * max(chi2_new, 1.0) and np.all(np.abs(dx) < 1e3 * steps)
        chi2 = chi2_new
        lam = max(lam / 10, 1e-9)
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


def _normal(J, r, x, prior_x, prior_sigma):
    A = J.T @ J
    b = J.T @ r
    if prior_x is not None:
        ok = np.isfinite(prior_sigma)
        w = np.zeros_like(x)
        w[ok] = 1.0 / prior_sigma[ok] ** 2
        A = A + np.diag(w)
        b = b + w * np.where(ok, x - np.where(ok, prior_x, 0.0), 0.0)
    return A, b


def _solve(A, b):
    scale = np.sqrt(np.maximum(np.diag(A), 1e-300))
    As = A / scale[:, None] / scale[None, :]
    return np.linalg.lstsq(As, b / scale, rcond=1e-13)[0] / scale


def covariance(J, x, prior_x=None, prior_sigma=None):
    """Formal covariance (J^T J + prior weights)^-1, by a scaled pseudo-inverse."""
    A, _ = _normal(J, np.zeros(J.shape[0]), x, prior_x, prior_sigma)
    scale = np.sqrt(np.maximum(np.diag(A), 1e-300))
    return np.linalg.pinv(A / scale[:, None] / scale[None, :], rcond=1e-15) / scale[:, None] / scale[None, :]


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
