"""Correlation of tracklets with a TLE catalog: identified, ambiguous, or uncorrelated (UCT).

For one station and night (tracklets from :func:`aposos.link.link`):

1. **Coarse gate** -- every catalog object is predicted (:func:`aposos.predict.predict`) at
   every tracklet's reference time, in one vectorised call; an object is a candidate when its
   angular distance is within ``coarse_sigma`` times its expected TLE error (which grows with
   TLE age and shrinks with range) plus the rate-times-timing and measurement terms.
2. **Fine residuals** -- candidates are predicted at each linked observation time; the
   residuals (observed minus predicted, arcsec) are split into along-track (along the
   predicted motion) and cross-track components, and the rate residual is formed: the
   difference of the rate *vectors* (speed and direction of motion: a chance neighbour on
   another orbit moves another way).
3. **Score** -- ``chi2 = (along / sigma_along)^2 + (cross / sigma_cross)^2`` with the median
   residuals, where each sigma combines the TLE error model at this TLE's age
   (``along_km = a + b * age``), the measurement error of the tracklet's mean and the timing
   uncertainty times the rate. A candidate passes when ``chi2 <= gate_chi2`` and its rate
   vector agrees within ``rate_tolerance`` of the predicted rate (or ``rate_floor_arcsec_s``);
   candidates are ranked by ``chi2``.
4. **Verdict** -- ``identified`` when the best fits within ``confident_chi2`` (the
   99.7 % region of a right identification) and is alone or beats the next by
   ``ambiguity_delta_chi2``; ``ambiguous`` when several pass and none stands out, or when the
   best passes the gate but fits worse than ``confident_chi2``: the case of an uncatalogued
   object next to a catalogued one (co-located GEO satellites a few arcminutes apart, where
   an aged TLE's error can reach the gap); ``uct`` when none passes.

The TLE error model defaults (along 1 km + 2 km/day, cross 1 km + 0.5 km/day) follow the
growth of public-catalog errors (astro-notes: 1-3 km/day along track, worst); they are
config, not constants.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.table import Table
from astropy.time import Time

from .directions import unit_from_radec
from .predict import predict, station_geometry
from .tle import as_entries

ARCSEC_PER_RAD = 206264.80624709636
COARSE_PAIRS = 2_000_000  # objects x tracklets per coarse prediction (~0.2 GB of arrays)


@dataclass(frozen=True)
class CorrelateConfig:
    """Correlation parameters."""

    along_km: tuple[float, float] = (1.0, 2.0)   # along-track TLE error: km + km per day of age
    cross_km: tuple[float, float] = (1.0, 0.5)   # cross-track TLE error: km + km per day of age
                                                  # (GEO: lunisolar inclination drift, ~1.5 km/day)
    timing_sigma_s: float = 0.01                  # station clock / shutter uncertainty, s
    gate_chi2: float = 25.0                       # pass when chi2 <= this (2 components)
    confident_chi2: float = 11.8                  # identified only when the best fits this well
                                                  # (99.7 % of right ids, 2 dof); a worse lone
                                                  # candidate may be an uncatalogued neighbour
    coarse_sigma: float = 8.0                     # coarse gate in units of the total sigma
    coarse_floor_deg: float = 0.05                # coarse gate floor
    rate_tolerance: float = 0.1                   # |rate vector residual| / predicted rate
    rate_floor_arcsec_s: float = 2.0              # rate gate floor
    ambiguity_delta_chi2: float = 9.0             # best must beat the next by this
    max_age_days: float = 30.0                    # older TLEs are not used


def _tangent_residuals(ra_obs, dec_obs, ra_pred, dec_pred):
    """Observed minus predicted in the tangent plane at the prediction: (east, north) arcsec."""
    u_obs = unit_from_radec(ra_obs, dec_obs)
    ra, dec = np.radians(ra_pred), np.radians(dec_pred)
    east = np.stack([-np.sin(ra), np.cos(ra), np.zeros_like(ra)], axis=-1)
    north = np.stack([-np.sin(dec) * np.cos(ra), -np.sin(dec) * np.sin(ra), np.cos(dec)], axis=-1)
    return (np.sum(u_obs * east, axis=-1) * ARCSEC_PER_RAD, np.sum(u_obs * north, axis=-1) * ARCSEC_PER_RAD)


def _sigmas(cfg, age_days, range_km, rate_arcsec_s, meas_arcsec):
    """Along- and cross-track 1-sigma (arcsec) of the difference tracklet - prediction."""
    age = np.abs(age_days)
    along = (cfg.along_km[0] + cfg.along_km[1] * age) / range_km * ARCSEC_PER_RAD
    cross = (cfg.cross_km[0] + cfg.cross_km[1] * age) / range_km * ARCSEC_PER_RAD
    along = np.sqrt(along**2 + (cfg.timing_sigma_s * rate_arcsec_s) ** 2 + meas_arcsec**2)
    cross = np.sqrt(cross**2 + meas_arcsec**2)
    return along, cross


def _tracklet_rows(observations: Table, tids) -> list[np.ndarray]:
    """Row indices of each tracklet's observations used for residuals: points, streak centres
    and resolved streak ends."""
    keep = np.ones(len(observations), bool)
    if "kind" in observations.colnames:
        keep = (np.asarray(observations["kind"]).astype(str) != "streak_end") | (np.asarray(observations["end"]) >= 0)
    of = np.asarray(observations["tracklet"])
    order = np.argsort(of, kind="stable")
    order = order[keep[order]]
    lo = np.searchsorted(of[order], tids, side="left")
    hi = np.searchsorted(of[order], tids, side="right")
    return [order[a:b] for a, b in zip(lo, hi)]


def correlate(tracklets: Table, observations: Table, catalog, station, config: CorrelateConfig | None = None):
    """Identify tracklets against ``catalog`` (a :class:`~aposos.tle.TleCatalog`, a list of
    :class:`~aposos.tle.TleEntry` or of (line1, line2) pairs).

    Returns
    -------
    results : Table
        One row per tracklet: ``tracklet``, ``status`` ('identified' | 'ambiguous' | 'uct'),
        ``norad_id`` (-1 for UCT), ``chi2``, ``along_arcsec``, ``cross_arcsec`` (median
        residuals, observed minus predicted), ``rms_arcsec`` (all residuals),
        ``rate_residual_arcsec_s``, ``tle_epoch`` (UTC Time; masked for UCT),
        ``tle_age_days``, ``n_candidates`` (passing), ``next_norad_id``, ``next_chi2``.
    candidates : Table
        Every passing candidate: ``tracklet``, ``rank`` (0 = best), ``norad_id``, ``chi2``,
        ``along_arcsec``, ``cross_arcsec``, ``rms_arcsec``, ``tle_age_days``.
    """
    cfg = config or CorrelateConfig()
    rows, cand_rows = [], []
    entries = as_entries(catalog)
    if len(tracklets) and entries:
        t_ref = Time(tracklets["t_ref"])
        members = _tracklet_rows(observations, tracklets["tracklet"])
        geom = station_geometry(station, Time(observations["time"][np.concatenate(members)])) \
            if any(len(m) for m in members) else None
        first = np.cumsum([0] + [len(m) for m in members])
        chunk = max(1, COARSE_PAIRS // len(entries))  # tracklets per coarse prediction (memory)
        for j, trk in enumerate(tracklets):
            if j % chunk == 0:
                coarse = predict(entries, station, t_ref[j:j + chunk])  # (objects, tracklets)
                ages = _ages_days(entries, t_ref[j:j + chunk])
            cand = _coarse_candidates(cfg, coarse, j % chunk, trk, ages[:, j % chunk])
            obs = observations[members[j]]
            geom_j = geom.take(slice(first[j], first[j + 1])) if len(obs) else None
            scored = _score(cfg, [entries[i] for i in cand], ages[cand, j % chunk], obs, trk, geom_j)
            scored.sort(key=lambda s: s["chi2"])
            rows.append(_verdict(cfg, trk["tracklet"], scored))
            for rank, s in enumerate(scored):
                cand_rows.append({"tracklet": trk["tracklet"], "rank": rank, **{k: s[k] for k in (
                    "norad_id", "chi2", "along_arcsec", "cross_arcsec", "rms_arcsec", "tle_age_days")}})
    else:
        rows = [_verdict(cfg, t, []) for t in tracklets["tracklet"]] if len(tracklets) else []
    return _results_table(rows), _candidates_table(cand_rows)


def _ages_days(entries, times) -> np.ndarray:
    """TLE age (days, positive when the epoch is past) of every entry at every time."""
    epoch = np.array([e.epoch_jd for e in entries], dtype=float)  # (objects, 2) UTC jd pair
    t = Time(times).utc
    return (t.jd1[None, :] - epoch[:, :1]) + (t.jd2[None, :] - epoch[:, 1:])


def _coarse_candidates(cfg, coarse, j, trk, age_days):
    """Indices of catalog objects near tracklet ``j`` at its reference time."""
    ok = (coarse.error[:, j] == 0) & (np.abs(age_days) <= cfg.max_age_days)
    u_t = unit_from_radec(trk["ra_deg"], trk["dec_deg"])
    u_p = unit_from_radec(coarse.ra_deg[:, j], coarse.dec_deg[:, j])
    with np.errstate(invalid="ignore"):
        sep_arcsec = np.degrees(np.arccos(np.clip(u_p @ u_t, -1, 1))) * 3600.0
    rate = np.hypot(coarse.ra_rate_deg_s[:, j], coarse.dec_rate_deg_s[:, j]) * 3600.0
    s_along, s_cross = _sigmas(cfg, age_days, coarse.range_km[:, j], rate, trk["sigma_arcsec"])
    gate = cfg.coarse_sigma * np.hypot(s_along, s_cross) + cfg.coarse_floor_deg * 3600.0
    return np.flatnonzero(ok & (sep_arcsec <= gate))


def _score(cfg, entries, ages_days, obs, trk, geom):
    """Fine residuals and chi2 of each candidate (TLE ages ``ages_days`` at the tracklet's
    reference time) against the tracklet's observations ``obs`` (``geom``: the station
    geometry at their times)."""
    if not entries or len(obs) == 0:
        return []
    times = geom.times
    p = predict(entries, geom, times)  # (candidates, observations)
    east, north = _tangent_residuals(np.asarray(obs["ra_deg"], float)[None, :], np.asarray(obs["dec_deg"], float)[None, :],
                                     p.ra_deg, p.dec_deg)
    rate = np.hypot(p.ra_rate_deg_s, p.dec_rate_deg_s)
    with np.errstate(invalid="ignore", divide="ignore"):
        ua = np.stack([p.ra_rate_deg_s, p.dec_rate_deg_s]) / rate  # along-track unit (east, north)
    along = east * ua[0] + north * ua[1]
    cross = -east * ua[1] + north * ua[0]
    meas = float(np.median(np.asarray(obs["sigma_arcsec"], float))) / np.sqrt(len(obs))
    i_ref = int(np.argmin(np.abs((times - Time(trk["t_ref"])).to_value("s"))))
    rate_obs = np.hypot(trk["ra_rate_deg_s"], trk["dec_rate_deg_s"]) * 3600.0
    out = []
    for k, e in enumerate(entries):
        if not np.all(np.isfinite(along[k])):
            continue
        age = float(ages_days[k])
        a_med, c_med = float(np.median(along[k])), float(np.median(cross[k]))
        rate_arcsec = float(rate[k, i_ref]) * 3600.0
        s_a, s_c = _sigmas(cfg, age, float(p.range_km[k, i_ref]), rate_arcsec, meas)
        chi2 = (a_med / s_a) ** 2 + (c_med / s_c) ** 2
        rate_res = float(rate_obs - rate_arcsec)
        d_rate = 3600.0 * np.hypot(trk["ra_rate_deg_s"] - p.ra_rate_deg_s[k, i_ref],
                                   trk["dec_rate_deg_s"] - p.dec_rate_deg_s[k, i_ref])
        rate_ok = d_rate <= max(cfg.rate_tolerance * rate_arcsec, cfg.rate_floor_arcsec_s)
        if chi2 > cfg.gate_chi2 or not rate_ok:
            continue
        out.append({"norad_id": int(e.norad_id), "chi2": float(chi2), "along_arcsec": a_med, "cross_arcsec": c_med,
                    "rms_arcsec": float(np.sqrt(np.mean(along[k] ** 2 + cross[k] ** 2))),
                    "rate_residual_arcsec_s": rate_res, "tle_epoch": e.epoch, "tle_age_days": age})
    return out


def _verdict(cfg, tid, scored):
    base = {"tracklet": int(tid), "n_candidates": len(scored), "next_norad_id": -1, "next_chi2": np.nan}
    if not scored:
        return {**base, "status": "uct", "norad_id": -1, "chi2": np.nan, "along_arcsec": np.nan,
                "cross_arcsec": np.nan, "rms_arcsec": np.nan, "rate_residual_arcsec_s": np.nan,
                "tle_epoch": None, "tle_age_days": np.nan}
    best = scored[0]
    status = "identified" if best["chi2"] <= cfg.confident_chi2 else "ambiguous"
    if len(scored) > 1:
        base.update(next_norad_id=scored[1]["norad_id"], next_chi2=scored[1]["chi2"])
        if scored[1]["chi2"] - best["chi2"] < cfg.ambiguity_delta_chi2:
            status = "ambiguous"
    return {**base, "status": status, **best}


_RESULT_COLUMNS = ("tracklet", "status", "norad_id", "chi2", "along_arcsec", "cross_arcsec", "rms_arcsec",
                   "rate_residual_arcsec_s", "tle_epoch", "tle_age_days", "n_candidates", "next_norad_id",
                   "next_chi2")


def _results_table(rows) -> Table:
    tab = Table({c: [r[c] for r in rows] for c in _RESULT_COLUMNS if c != "tle_epoch"},
                dtype=[np.int64, "U10", np.int64, float, float, float, float, float, float, int, np.int64, float])
    missing = np.array([r["tle_epoch"] is None for r in rows], dtype=bool)
    epochs = Time([r["tle_epoch"].utc.isot if r["tle_epoch"] is not None else "2000-01-01T00:00:00" for r in rows],
                  scale="utc") if rows else Time([], format="mjd", scale="utc")
    tab["tle_epoch"] = epochs
    if missing.any():
        tab["tle_epoch"][missing] = np.ma.masked
    for c in ("along_arcsec", "cross_arcsec", "rms_arcsec"):
        tab[c].unit = "arcsec"
    tab["rate_residual_arcsec_s"].unit = "arcsec/s"
    tab["tle_age_days"].unit = "d"
    return tab[list(_RESULT_COLUMNS)]


def _candidates_table(rows) -> Table:
    cols = ("tracklet", "rank", "norad_id", "chi2", "along_arcsec", "cross_arcsec", "rms_arcsec", "tle_age_days")
    return Table({c: [r[c] for r in rows] for c in cols}, dtype=[np.int64, int, np.int64, float, float, float, float, float])
