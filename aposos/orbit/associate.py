"""Which uncorrelated tracklets belong to one object, across stations and nights.

Nothing is assumed about which tracklets go together; membership is decided by fitting:

1. Pair gate (cheap): two tracklets are compared only if their apparent angular rates
   (star-relative, deg/s) are within a factor :data:`RATE_RATIO`; LEO and GEO tracklets never
   pair.
   A tracklet that alone determines an orbit (a LEO pass) predicts the other: the pair is
   dropped if no mean motion brings that prediction within :data:`PREDICTION_GATE_DEG`, else
   its fit starts from that orbit and mean motion.
2. Pair fits: every gated pair is fitted (:func:`aposos.orbit.solve.fit_orbit`); a pair is
   compatible when the fit keeps both tracklets with reduced chi^2 below the gate.
3. Greedy clustering, best (lowest chi^2) compatible pairs first: a pair of free tracklets
   opens an object; a free tracklet joins an object only if the fit of the whole object with it
   still passes the gate. Two objects linked by a compatible pair are merged only if the fit
   of their union passes the gate.
4. Objects with fewer than ``min_tracklets`` tracklets are dissolved (their tracklets stay
   unassociated): two tracklets of a GEO object from one station can be joined by orbits of
   other objects, so a pair is not proof. So are ambiguous objects: when a tracklet left
   over could replace one of the members and still fit (GEO objects a fraction of a degree
   apart seen from one station), none of the candidates is trusted.

The result lists, per input tracklet, the object number (-1: unassociated).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .lsq import FitError
from .observations import Observations, prepare
from . import tlefit
from .solve import MAX_CHI2_RED, _fit, _tracklet_score, fit_orbit, scan_mean_motion

RATE_RATIO = 6.0
PREDICTION_GATE_DEG = 1.0
SELF_DETERMINED_RATE_DEG_S = 0.05  # faster tracklets (LEO) are tried alone as anchors


@dataclass
class Association:
    """``object_of[k]``: object number of input tracklet ``k`` (-1 unassociated);
    ``objects``: list of tracklet index lists (input numbering); ``pairs_fitted``: pairs that
    passed the rate gate and were tested."""

    object_of: np.ndarray
    objects: list[list[int]]
    pairs_fitted: int
    solutions: list = None  # OrbitSolution per object when associate(..., determine=True)


def angular_rates_deg_s(obs: Observations) -> np.ndarray:
    """Mean apparent angular rate of each tracklet, deg/s (first to last observation)."""
    out = np.zeros(obs.n_tracklets)
    t = (obs.times - obs.times[0]).sec
    for k in range(obs.n_tracklets):
        i = np.flatnonzero(obs.tracklet == k)
        a, b = obs.unit[i[0]], obs.unit[i[-1]]
        ang = np.degrees(np.arctan2(np.linalg.norm(np.cross(a, b)), a @ b))
        out[k] = ang / max(t[i[-1]] - t[i[0]], 1e-3)
    return out


def _anchor(obs: Observations, k: int):
    """(x, epoch_days) of an orbit from tracklet ``k`` alone, or None."""
    try:
        of = fit_orbit(obs.subset(obs.tracklet == k), max_seeds=2)
    except (FitError, ValueError):
        return None
    return (of.x, of.epoch_days) if of.fit.chi2_red < MAX_CHI2_RED else None


def _predict(obs: Observations, anchor, k: int):
    """The anchor orbit with the mean motion that best predicts tracklet ``k``, or None when
    no mean motion brings it within the gate."""
    from astropy.time import Time

    x, epoch_days = anchor
    epoch = Time(tlefit.JD_1949, epoch_days, format="jd", scale="utc")
    best = scan_mean_motion(obs, x, epoch_days, epoch, k)
    score = _tracklet_score(obs.subset(obs.tracklet == k), best, epoch_days)  # median normalised chi^2
    sigma_deg = float(np.median(obs.sigma_rad[obs.tracklet == k])) * 180 / np.pi
    return best if np.sqrt(score) * sigma_deg < PREDICTION_GATE_DEG else None


def _fits_from(obs: Observations, tracklets, x, epoch_days, gate):
    """chi^2/dof of a least-squares fit of the tracklets started from ``x`` (None: no fit)."""
    try:
        f, sel = _fit(obs, x, epoch_days, tracklets, rounds=2)
    except (FitError, ValueError):
        return None
    trk = obs.tracklet[sel]
    if f.chi2_red > gate or min(f.used[trk == k].mean() for k in tracklets) < 0.5:
        return None
    return f.chi2_red, f.x, epoch_days


def _fits(obs: Observations, tracklets, gate):
    """(chi^2/dof, x, epoch_days) if the tracklets fit one orbit (all kept), else None."""
    sub = obs.subset(np.isin(obs.tracklet, tracklets))
    try:
        of = fit_orbit(sub, max_seeds=3)
    except (FitError, ValueError):
        return None
    if of.bad_tracklets or of.fit.chi2_red > gate:
        return None
    per_trk = [of.fit.used[sub.tracklet == k].mean() for k in range(sub.n_tracklets)]
    return (of.fit.chi2_red, of.x, of.epoch_days) if min(per_trk) >= 0.5 else None


def _extends(obs: Observations, members, state, new, gate):
    """Fit of an object with one more tracklet, warm-started from the object's orbit."""
    x, epoch_days = state
    start = _predict(obs, (x, epoch_days), new)
    found = None if start is None else _fits_from(obs, members + [new], start, epoch_days, gate)
    return found if found is not None else _fits(obs, members + [new], gate)


def _ambiguous(obs, members, free, rates, gate) -> bool:
    """Whether a free tracklet could replace a member: then the object is not trusted."""
    lo, hi = rates[members].min(), rates[members].max()
    for k in free:
        if not (lo / RATE_RATIO <= rates[k] <= hi * RATE_RATIO):
            continue
        for m in members:
            if _fits(obs, [j for j in members if j != m] + [k], gate) is not None:
                return True
    return False


def _merge(obs, objects, pairs, member, gate):
    """Merge two objects when a compatible pair links them and their union fits one orbit."""
    merged = True
    while merged:
        merged = False
        for _, i, j, _ in pairs:
            a, b = member[i], member[j]
            if a >= 0 and b >= 0 and a != b and objects[a] and objects[b]:
                if _fits(obs, objects[a] + objects[b], gate) is not None:
                    objects[a] = objects[a] + objects[b]
                    member[objects[b]] = a
                    objects[b] = []
                    merged = True
    return [o for o in objects if o]


def associate(tracklets, min_tracklets: int = 3, gate: float = MAX_CHI2_RED, determine: bool = False) -> Association:
    """Group tracklets (a list of Tables, see :func:`aposos.orbit.determine_orbit`) into objects.

    With ``determine=True`` each object also gets its :class:`~aposos.orbit.OrbitSolution`
    (orbit, covariance, TLE) in ``solutions``.
    """
    obs = prepare(tracklets)
    n = obs.n_tracklets
    # internal (time-ordered) tracklet number -> input position
    to_input = np.array([int(obs.table["tracklet"][obs.row[np.flatnonzero(obs.tracklet == k)[0]]]) for k in range(n)])
    rates = angular_rates_deg_s(obs)
    anchors = {k: _anchor(obs, k) for k in range(n) if rates[k] > SELF_DETERMINED_RATE_DEG_S}
    pairs = []
    fitted = 0
    for i in range(n):
        for j in range(i + 1, n):
            if max(rates[i], rates[j]) > RATE_RATIO * max(min(rates[i], rates[j]), 1e-9):
                continue
            a = anchors.get(i) or anchors.get(j)
            fitted += 1
            if a is not None:  # start from the anchor orbit, revolution count from the scan
                start = _predict(obs, a, j if anchors.get(i) else i)
                found = None if start is None else _fits_from(obs, [i, j], start, a[1], gate)
            else:
                found = _fits(obs, [i, j], gate)
            if found is not None:
                pairs.append((found[0], i, j, found[1:]))
    pairs.sort(key=lambda p: p[:3])
    member = np.full(n, -1)
    objects: list[list[int]] = []
    states = []
    for _, i, j, state in pairs:
        a, b = member[i], member[j]
        if a < 0 and b < 0:
            member[[i, j]] = len(objects)
            objects.append([i, j])
            states.append(state)
        elif (a < 0) != (b < 0):
            obj, new = (a, j) if a >= 0 else (b, i)
            found = _extends(obs, objects[obj], states[obj], new, gate)
            if found is not None:
                member[new] = obj
                objects[obj].append(new)
                states[obj] = found[1:]
    objects = _merge(obs, objects, pairs, member, gate)
    objects = [o for o in objects if len(o) >= min_tracklets]
    free = sorted(set(range(n)) - {k for o in objects for k in o})
    objects = [o for o in objects if not _ambiguous(obs, o, free, rates, gate)]
    object_of = np.full(n, -1)
    groups = []
    for members in objects:
        if len(members) >= min_tracklets:
            groups.append(sorted(int(to_input[k]) for k in members))
    groups.sort()
    for g, members in enumerate(groups):
        object_of[members] = g
    solutions = None
    if determine:
        from . import determine_orbit

        solutions = [determine_orbit([tracklets[k] for k in members]) for members in groups]
    return Association(object_of=object_of, objects=groups, pairs_fitted=fitted, solutions=solutions)
