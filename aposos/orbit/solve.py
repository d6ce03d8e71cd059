"""From tracklets to a fitted SGP4 orbit: IOD seeds, arc growth, final fit.

1. Seeds: Gauss (:mod:`.iod`) on triples of observations -- within one tracklet (first, middle,
   last: works for LEO passes), across two consecutive tracklets, and across three
   consecutive tracklets (GEO). Each candidate is fitted (SGP4 elements, B* held at 0) to the
   tracklets of its triple; candidates are ranked by size of seed, then reduced chi^2. Smaller
   seeds are computed only if the larger ones do not grow to all tracklets.
2. Growth: the remaining tracklets are added nearest-in-time first; each addition is a
   least-squares fit of the grown set. When a tracklet does not fit, the revolution count
   may be wrong: the mean motion is scanned (other elements fixed) for the value that best
   predicts that tracklet, and the fit is retried. A tracklet that still does not fit is
   reported as not belonging (mixed objects). B* is held at 0 while growing, except for
   near-Earth orbits when a tracklet fits only with drag (a LEO with B* ~ 2e-4 seen again
   6 h later): from then on B* is fitted with its prior.
3. Final fit: every kept observation, B* with its prior, outlier rejection.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import iod, tlefit
from .lsq import Fit, FitError, fit
from .observations import Observations

MAX_CHI2_RED = 4.0  # a set of tracklets fits one orbit if chi^2/dof stays below this (x the seed's)
HOLD_BSTAR = 1e-12  # prior sigma that holds B* during seeding and growth
NEAR_EARTH_MIN_REV_DAY = 6.4  # SGP4's near-Earth model (period < 225 min): drag through B* matters


@dataclass
class OrbitFit:
    """An SGP4 fit to a set of tracklets of ``obs``."""

    x: np.ndarray
    epoch_days: float
    epoch_index: int
    fit: Fit
    tracklets: list[int]
    bad_tracklets: list[int] = field(default_factory=list)


def _fit(obs: Observations, x, epoch_days, tracklets, bstar_prior=None, reject_sigma=4.0, rounds=6):
    sel = np.isin(obs.tracklet, list(tracklets))
    sub = obs.subset(sel)
    prior = bstar_prior or (0.0, HOLD_BSTAR)
    px = np.full(7, np.nan)
    ps = np.full(7, np.nan)
    px[6], ps[6] = prior
    x0 = np.array(x, float)
    if not np.isfinite(prior[1]) or prior[1] <= HOLD_BSTAR:
        x0[6] = prior[0]
    return fit(tlefit.residual_function(sub, epoch_days), x0, tlefit.STEPS, prior_x=px, prior_sigma=ps,
               reject_sigma=reject_sigma, max_rounds=rounds), sel


def seed_triples(obs: Observations) -> list[tuple[np.ndarray, tuple[int, ...]]]:
    """Index triples for Gauss and the tracklets each involves (largest seeds first)."""
    k = obs.n_tracklets
    idx = [np.flatnonzero(obs.tracklet == j) for j in range(k)]
    out = []
    for j in range(k - 2):
        a, b, c = idx[j], idx[j + 1], idx[j + 2]
        out.append((np.array([a[len(a) // 2], b[len(b) // 2], c[len(c) // 2]]), (j, j + 1, j + 2)))
    for j in range(k - 1):
        a, b = idx[j], idx[j + 1]
        if len(a) >= 2:
            out.append((np.array([a[0], a[-1], b[len(b) // 2]]), (j, j + 1)))
        if len(b) >= 2:
            out.append((np.array([a[len(a) // 2], b[0], b[-1]]), (j, j + 1)))
    for j in range(k):
        a = idx[j]
        if len(a) >= 3:
            out.append((np.array([a[0], a[len(a) // 2], a[-1]]), (j,)))
    return out


def seeds(obs: Observations, max_seeds: int = 6):
    """Seed fits, best first (more tracklets, then lower chi^2), at most ``max_seeds``.

    A generator: the seeds of the next smaller triples are computed only when the caller asks
    for more (the first seed usually grows to all tracklets).
    """
    t = (obs.times - obs.times[0]).sec
    triples = seed_triples(obs)
    given = 0
    for size in sorted({len(trk) for _, trk in triples}, reverse=True):
        found = []
        for triple, trk in triples:
            if len(trk) != size or len(np.unique(t[triple])) < 3:
                continue
            for r2, v2 in iod.gauss(t[triple], obs.unit[triple], obs.obs_pos_km[triple]):
                i2 = int(triple[1])
                m = obs.teme_to_gcrs[i2]
                try:
                    x = tlefit.params_from_state(m.T @ r2, m.T @ v2)
                    _, epoch_days = tlefit.tle_epoch(obs.times[i2])
                    f, _ = _fit(obs, x, epoch_days, trk, rounds=2)
                except (FitError, ValueError):
                    continue
                if f.chi2_red < 100 * MAX_CHI2_RED:
                    found.append(OrbitFit(f.x, epoch_days, i2, f, list(trk)))
        for seed in sorted(found, key=lambda s: s.fit.chi2_red)[:max_seeds - given]:
            given += 1
            yield seed
        if given >= max_seeds:
            return


def _span_distance(obs, t, included, k):
    ti = t[np.isin(obs.tracklet, included)]
    tk = t[obs.tracklet == k]
    return max(0.0, ti.min() - tk.max(), tk.min() - ti.max())


def _tracklet_score(sub, x, epoch_days):
    """Median normalised chi^2 of the observations ``sub`` predicted by parameters ``x``."""
    try:
        r = tlefit.residual_function(sub, epoch_days)(x)
    except ValueError:
        return np.inf
    return float(np.median(np.sum(r ** 2, axis=1)))


def scan_mean_motion(obs, x, epoch_days, epoch_time, k, rel_range=0.02, step_rad=0.006):
    """Parameters with the mean motion that best predicts tracklet ``k`` (revolution count).

    Trial mean motions move the predicted along-track position at tracklet ``k`` in steps
    of ``step_rad``, over +-0.6 revolution there (at most ``rel_range`` of n); all trials are
    propagated at once (SatrecArray; light time to first order in the velocity, aberration
    as :attr:`Observations.aberration_offset`: a coarse scan, the fit that follows is exact).
    """
    from sgp4.api import SatrecArray

    sub = obs.subset(obs.tracklet == k)
    dt_day = float(np.mean((sub.times - epoch_time).sec)) / 86400.0
    if abs(dt_day) < 1e-6:
        return x
    half = min(0.6 / abs(dt_day), rel_range * x[0])
    step = step_rad / (2 * np.pi * abs(dt_day))
    trials = [x] + [np.concatenate([[x[0] + dn], x[1:]]) for dn in np.arange(-half, half + step, step)]
    sats, kept = [], []
    for trial in trials:
        try:
            sats.append(tlefit.satrec(trial, epoch_days))
            kept.append(trial)
        except ValueError:
            continue
    jd1, jd2 = sub.jd
    err, r, v = SatrecArray(sats).sgp4(jd1, jd2)  # (trials, m, 3) TEME
    r = np.einsum("mij,tmj->tmi", sub.teme_to_gcrs, r)
    v = np.einsum("mij,tmj->tmi", sub.teme_to_gcrs, v)
    topo = r - sub.obs_pos_km
    lt = np.linalg.norm(topo, axis=-1, keepdims=True) / 299792.458
    topo = topo - v * lt
    u = topo / np.linalg.norm(topo, axis=-1, keepdims=True) + sub.aberration_offset
    u /= np.linalg.norm(u, axis=-1, keepdims=True)
    res = np.einsum("mkj,tmj->tmk", sub.tangent_basis, sub.unit - u) / sub.sigma_rad[None, :, None]
    score = np.median(np.sum(res ** 2, axis=-1), axis=1)
    score[(err != 0).any(axis=1)] = np.inf
    return kept[int(np.argmin(score))]


def grow(obs: Observations, seed: OrbitFit) -> OrbitFit:
    """Add the other tracklets to a seed fit (see module doc)."""
    t = (obs.times - obs.times[0]).sec
    epoch_time = obs.times[seed.epoch_index]
    included = list(seed.tracklets)
    x, base = seed.x, max(seed.fit.chi2_red, 1.0)
    current = seed.fit
    pending = [k for k in range(obs.n_tracklets) if k not in included]
    bad = []
    drag = None  # B* held at 0 until a tracklet needs it, then fitted with its prior
    while pending:
        pending.sort(key=lambda k: _span_distance(obs, t, included, k))
        k = pending.pop(0)
        accepted = None
        scanned = None
        for attempt in range(3):
            if attempt == 2 and (drag is not None or x[0] < NEAR_EARTH_MIN_REV_DAY):
                break
            if attempt >= 1 and scanned is None:
                scanned = scan_mean_motion(obs, x, seed.epoch_days, epoch_time, k)
            start = x if attempt == 0 else scanned
            prior = tlefit.BSTAR_PRIOR if attempt == 2 else drag
            try:
                f, sel = _fit(obs, start, seed.epoch_days, included + [k], bstar_prior=prior, rounds=2)
            except (FitError, ValueError):
                continue
            in_k = obs.tracklet[sel] == k
            if f.chi2_red < MAX_CHI2_RED * base and f.used[in_k].mean() >= 0.5:
                accepted = f
                drag = prior
                break
        if accepted is None:
            bad.append(k)
        else:
            included.append(k)
            x, current = accepted.x, accepted
            base = max(base, min(accepted.chi2_red, 2 * base))
    return OrbitFit(x, seed.epoch_days, seed.epoch_index, current, sorted(included), sorted(bad))


def fit_orbit(obs: Observations, bstar_prior=tlefit.BSTAR_PRIOR, reject_sigma=4.0, max_seeds=6) -> OrbitFit:
    """The best SGP4 fit over all seeds; raises FitError if no seed gives an orbit."""
    best = None
    for seed in seeds(obs, max_seeds):
        grown = grow(obs, seed)
        if best is None or len(grown.tracklets) > len(best.tracklets) or (
                len(grown.tracklets) == len(best.tracklets) and grown.fit.chi2_red < best.fit.chi2_red):
            best = grown
        if not grown.bad_tracklets:
            break
    if best is None:
        raise FitError("no initial orbit: Gauss's method found no orbit consistent with the observations")
    f, sel = _fit(obs, best.x, best.epoch_days, best.tracklets, bstar_prior=bstar_prior, reject_sigma=reject_sigma)
    used = np.zeros(len(obs), bool)
    used[sel] = f.used
    full = Fit(f.x, f.cov, used, np.full((len(obs), 2), np.nan), f.chi2_red, f.iterations)
    full.resid[sel] = f.resid
    return OrbitFit(f.x, best.epoch_days, best.epoch_index, full, best.tracklets, best.bad_tracklets)
