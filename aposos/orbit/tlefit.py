"""SGP4 mean elements (with B*) fitted to angles: the TLE of an uncorrelated object.

Parameters (non-singular for circular and equatorial orbits, GEO included)::

    x = [n (rev/day), e cos(w+W), e sin(w+W), tan(i/2) sin W, tan(i/2) cos W, M+w+W (rad), B* (1/earth radii)]

with W the RAAN, w the argument of perigee, M the mean anomaly, all TEME of the epoch (the
TLE convention), WGS72 constants. The epoch is an exact TLE epoch (UTC day fraction rounded
to 1e-8 day). :func:`satrec` builds the SGP4 satellite; :func:`residual_function` is the
observation model (SGP4 -> TEME -> GCRS -> light time + star-relative aberration via
:mod:`aposos.directions`) as normalised residuals for :mod:`aposos.orbit.lsq`.

B* is hard to observe in a night: it is fitted with a Gaussian prior (default 0 +- 5e-4),
so that short arcs keep it near zero and long arcs estimate it.
"""

from __future__ import annotations

import numpy as np
from astropy.time import Time
from sgp4.api import WGS72, Satrec
from sgp4.exporter import export_tle

from .propagate import elements_from_state

JD_1949 = 2433281.5  # 1949-12-31 00:00 UTC, origin of sgp4init's epoch
MINUTES_PER_DAY = 1440.0
STEPS = np.array([1e-9, 1e-8, 1e-8, 1e-8, 1e-8, 1e-8, 1e-7])  # forward-difference steps of x
BSTAR_PRIOR = (0.0, 5e-4)


def tle_epoch(time: Time) -> tuple[Time, float]:
    """The TLE epoch nearest ``time``: (Time, days since 1949-12-31 00:00 UTC rounded to 1e-8)."""
    t = time.utc
    days = round(((t.jd1 - JD_1949) + t.jd2) * 1e8) / 1e8
    return Time(JD_1949, days, format="jd", scale="utc"), days


def keplerian(x):
    """(n rev/day, e, i, raan, argp, M) (rad) from the parameter vector."""
    n, af, ag, chi, psi, lam = x[:6]
    e = np.hypot(af, ag)
    varpi = np.arctan2(ag, af)
    inc = 2 * np.arctan(np.hypot(chi, psi))
    raan = np.arctan2(chi, psi) % (2 * np.pi)
    argp = (varpi - raan) % (2 * np.pi)
    m = (lam - varpi) % (2 * np.pi)
    return n, e, inc, raan, argp, m


def params_from_keplerian(n_rev_day, e, inc, raan, argp, m, bstar=0.0):
    varpi = raan + argp
    t = np.tan(inc / 2)
    return np.array([n_rev_day, e * np.cos(varpi), e * np.sin(varpi), t * np.sin(raan), t * np.cos(raan),
                     (m + varpi) % (2 * np.pi), bstar])


def params_from_state(r_teme_km, v_teme_km_s):
    """Parameters from an osculating TEME state (a first guess of the mean elements, B* = 0)."""
    el = elements_from_state(r_teme_km, v_teme_km_s)
    if not (0 <= el["e"] < 0.95) or not np.isfinite(el["n_rad_s"]):
        raise ValueError(f"state is not an Earth orbit (e = {el['e']:.3f})")
    return params_from_keplerian(el["n_rad_s"] * 86400 / (2 * np.pi), el["e"], el["i"], el["raan"],
                                 el["argp"], el["M"])


def satrec(x, epoch_days: float, satnum: int = 99999) -> Satrec:
    """SGP4 satellite from parameters; ValueError if they are not a valid orbit."""
    n, e, inc, raan, argp, m = keplerian(x)
    if not (0.05 < n < 17.5) or not (0 <= e < 0.95) or not np.isfinite(x).all():
        raise ValueError(f"invalid elements n={n:.4f} rev/day e={e:.4f}")
    sat = Satrec()
    sat.sgp4init(WGS72, "i", satnum, epoch_days, float(x[6]), 0.0, 0.0, float(e), float(argp), float(inc),
                 float(m), float(n) * 2 * np.pi / MINUTES_PER_DAY, float(raan))
    if sat.error:
        raise ValueError(f"sgp4init error {sat.error}")
    return sat


def tle_lines(x, epoch_days: float, satnum: int = 99999) -> tuple[str, str]:
    """The two TLE lines (exported by sgp4.exporter)."""
    return export_tle(satrec(x, epoch_days, satnum))


def position_function(sat: Satrec, obs):
    """``position_at(dt_s)`` -> GCRS km at the observation times + dt (TEME rotation at the times)."""
    jd1, jd2 = obs.jd
    m = obs.teme_to_gcrs

    def at(dt_s):
        err, r, _ = sat.sgp4_array(jd1, jd2 + np.broadcast_to(dt_s, jd2.shape) / 86400.0)
        if err.any():
            raise ValueError(f"SGP4 error {int(err.max())}")
        return np.einsum("nij,nj->ni", m, r)

    return at


def predicted_units(sat: Satrec, obs, exact: bool = True):
    return obs.predict_units(position_function(sat, obs), exact=exact)


def residual_function(obs, epoch_days: float):
    """``fun(x) -> (n, 2)`` normalised residuals (observed - SGP4 model) / sigma."""
    def fun(x):
        return obs.residuals_arcsec(predicted_units(satrec(x, epoch_days), obs, exact=False)) / (obs.sigma_rad[:, None] / (np.pi / 648000))
    return fun


def position_sigma_km(x, epoch_days: float, cov, time: Time) -> float:
    """Formal 1-sigma (root of the trace) of the SGP4 position at ``time``, km (TEME; the
    trace is rotation invariant): the parameter covariance mapped by forward differences."""
    t = time.utc

    def pos(xx):
        err, r, _ = satrec(xx, epoch_days).sgp4(t.jd1, t.jd2)
        return np.array(r)

    p0 = pos(x)
    J = np.stack([(pos(x + h * e) - p0) / h for h, e in zip(STEPS, np.eye(len(x)))], axis=1)
    return float(np.sqrt(np.trace(J @ cov @ J.T)))


def state_gcrs(sat: Satrec, time: Time, teme_to_gcrs_matrix):
    """SGP4 position (km) and velocity (km/s) in GCRS at ``time`` (scalar Time)."""
    err, r, v = sat.sgp4(time.utc.jd1, time.utc.jd2)
    if err:
        raise ValueError(f"SGP4 error {err}")
    return teme_to_gcrs_matrix @ np.array(r), teme_to_gcrs_matrix @ np.array(v)


# --- rounding to the TLE text ---------------------------------------------------------------
ANGLE_STEP_DEG = 1e-4  # TLE resolution of i, RAAN, argp, M
ECC_STEP = 1e-7
N_STEP_REV_DAY = 1e-8
EPOCH_STEP_DAY = 1e-8


def _rounded(v, step):
    return np.round(v / step) * step


def _bstar_rounded(b):
    """B* as the TLE text holds it: 5 significant digits."""
    if b == 0:
        return 0.0
    exp = int(np.floor(np.log10(abs(b)))) + 1
    return float(np.round(b / 10.0 ** exp, 5) * 10.0 ** exp)


def round_for_tle(x, epoch_days):
    """Parameters and epoch whose TLE text is exact: (x, epoch_days).

    The TLE text holds angles to 1e-4 deg: 12 m along-track in LEO, up to ~2 arcsec at LEO
    ranges for the mean anomaly. B*, i, RAAN, e, argp and n are rounded to their fields; the
    epoch is then moved by a few 1e-8 day steps (< 0.5 s: the secular drifts of the other
    elements over that are negligible) so that the mean anomaly falls on its 1e-4 deg grid,
    which removes most of the along-track rounding error. (Refitting the remaining elements
    after each rounding was tried: it lowers the arc residuals but shifts error into the
    prediction, 0.9 km a day later for GEO, so it is not done.)
    """
    x = np.array(x, float)
    n, e, inc, raan, argp, m = keplerian(x)
    d2r = np.pi / 180
    inc_r, raan_r, argp_r = (_rounded(np.degrees(v), ANGLE_STEP_DEG) % 360 * d2r for v in (inc, raan, argp))
    n_r = _rounded(n, N_STEP_REV_DAY)
    m_deg = np.degrees(m)
    shifts = np.arange(-50, 51)
    m_shift = m_deg + n_r * 360.0 * shifts * EPOCH_STEP_DAY  # M at a shifted epoch
    k = shifts[np.argmin(np.abs(m_shift - _rounded(m_shift, ANGLE_STEP_DEG)))]
    m_r = _rounded(m_deg + n_r * 360.0 * k * EPOCH_STEP_DAY, ANGLE_STEP_DEG) % 360 * d2r
    out = params_from_keplerian(n_r, _rounded(e, ECC_STEP), inc_r, raan_r, argp_r, m_r, _bstar_rounded(x[6]))
    return out, round(epoch_days + k * EPOCH_STEP_DAY, 8)
