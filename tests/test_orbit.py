"""Orbit determination against SGP4 truth seen through the reduction's direction physics.

Truth: synthetic TLEs propagated with SGP4, star-relative RA/Dec from aposos.directions
(tests/orbit_truth.py), 1 arcsec Gaussian noise, tracklets of 10 points over 2 minutes.
"""

import astropy.units as u
import numpy as np
import pytest
from astropy.table import vstack
from astropy.time import Time

import orbit_truth as ot
from aposos.errors import AposError
from aposos.orbit import determine_orbit, iod, propagate
from aposos.orbit.observations import prepare

T0 = Time("2026-11-20T12:00:00", scale="utc")
SIGMA = 1.0  # arcsec


@pytest.fixture(scope="module")
def geo_night():
    sat = ot.satellite(T0, 1.00273, 0.0003, 0.05, 0.0, 100, 200)  # ~60 E
    rng = np.random.default_rng(1)
    starts = ot.pick_starts(ot.visibility(sat, "iran", T0), 3, 3600)
    assert len(starts) == 3
    return sat, [ot.tracklet(sat, "iran", s, rng, sigma_arcsec=SIGMA) for s in starts]


@pytest.fixture(scope="module")
def leo_night():
    """Sun-synchronous LEO, passes over Pakistan then Iran; two tracklets per pass."""
    sat = ot.satellite(T0, 15.2, 0.001, 97.5, 120, 90, 270, bstar=1e-4)
    rng = np.random.default_rng(2)
    trs = ot.pass_tracklets(sat, "pakistan", T0, rng, hours=14) + ot.pass_tracklets(sat, "iran", T0, rng, hours=14)
    assert {t["station"][0] for t in trs} == {"iran", "pakistan"} and len(trs) == 4
    return sat, trs


def test_geo_three_tracklets_one_station(geo_night):
    """One noise draw of 2-min tracklets: the 24 h error is within 3x the formal 1-sigma (about
    4 km for this design, so 5 km is not met robustly: see test_geo_24h_over_noise_draws)."""
    sat, trs = geo_night
    sol = determine_orbit(trs)
    assert sol.determined, sol.reason
    assert sol.rms_arcsec <= 1.5 * SIGMA  # the exported TLE reproduces the observations
    later = Time(trs[-1]["time"][-1]) + 24 * u.h
    err_km = ot.separation_km(sol.satrec, sat, later.reshape(1))[0]
    sigma_km = sol.position_sigma_km(later)
    print(f"GEO: rms {sol.rms_arcsec:.2f} arcsec, 24 h prediction error {err_km:.2f} km (formal {sigma_km:.2f} km)")
    assert err_km < 5.0 and err_km < 3 * sigma_km
    # the state and its covariance are consistent with the truth at the epoch
    truth_r = ot.gcrs_positions(sat, sol.epoch.reshape(1))[0]
    sig = np.sqrt(np.diag(sol.covariance)[:3])
    assert np.all(np.abs(sol.state[:3] - truth_r) < 5 * sig + 0.05)
    assert len(sol.used) == 30 and len(sol.rejected) == 0
    assert sol.tle[0].startswith("1 ") and sol.tle[1].startswith("2 ")


def _geo_draws(n_points, span_s, draws, seed0=100):
    sat = ot.satellite(T0, 1.00273, 0.0003, 0.05, 0.0, 100, 200)
    starts = ot.pick_starts(ot.visibility(sat, "iran", T0), 3, 3600)
    err, sig, rms = [], [], []
    for k in range(draws):
        rng = np.random.default_rng(seed0 + k)
        sol = determine_orbit([ot.tracklet(sat, "iran", s, rng, n=n_points, span_s=span_s) for s in starts])
        assert sol.determined, sol.reason
        later = starts[-1] + span_s * u.s + 24 * u.h
        err.append(ot.separation_km(sol.satrec, sat, later.reshape(1))[0])
        sig.append(sol.position_sigma_km(later))
        rms.append(sol.rms_arcsec / SIGMA)
    return np.array(err), np.array(sig), np.array(rms)


def test_geo_24h_over_noise_draws():
    """GEO from Iran, three 10-min tracklets of 30 points over the 11.5 h night, 1 arcsec,
    8 noise draws: the 24 h predictions within 5 km (formal 1-sigma ~2.3 km: 95 % of 60 draws,
    ``python benchmarks/orbit_quality.py geo``), and the realised errors scatter as the formal
    covariance says (the fit loses no information; RMS error / formal sigma near 1).

    With tracklets of 10 points (the other tests' design) the formal 1-sigma is ~4.1 km and
    the realised RMS error matches it: 78 % of 60 draws within 5 km. The bar needs more
    directions (sigma ~ 1/sqrt(points)), whatever the tracklet length.
    """
    err, sig, rms = _geo_draws(30, 600.0, draws=8)
    ratio = np.sqrt(np.mean(err ** 2)) / np.median(sig)
    print(f"GEO 3 x 30 points / 600 s: 24 h errors {np.round(err, 1)} km, formal 1-sigma "
          f"{np.median(sig):.2f} km, RMS error / sigma {ratio:.2f}, RMS/noise max {rms.max():.2f}")
    assert np.all(rms <= 1.5)
    assert np.sum(err < 5.0) >= 7  # 95 % expected
    assert 0.3 < ratio < 1.6  # honest covariance


def test_leo_two_stations_predicts_12h(leo_night):
    sat, trs = leo_night
    sol = determine_orbit(trs)
    assert sol.determined, sol.reason
    later = Time(trs[-1]["time"][-1]) + 12 * u.h
    err_km = ot.separation_km(sol.satrec, sat, later.reshape(1))[0]
    print(f"LEO: rms {sol.rms_arcsec:.2f} arcsec, 12 h prediction error {err_km:.3f} km")
    assert err_km < 2.0
    assert sol.rms_arcsec < 1.6  # includes what remains of the TLE text rounding (1e-4 deg) in LEO


def test_geo_six_hour_noise_free_fit_converges():
    """GEO, three 10-min tracklets over 6 h, directions without noise (weighted as 1 arcsec):
    the fit converges (it used to stall on a step-size test along the poorly determined
    direction) and reproduces the truth a day later; the formal 1-sigma is ~11 km."""
    sat = ot.satellite(T0, 1.00273, 0.0003, 0.05, 0.0, 100, 200)
    vis = ot.visibility(sat, "iran", T0)
    rng = np.random.default_rng(0)
    starts = [vis[0] + f * (6 * u.h - 600 * u.s) for f in (0, 0.5, 1)]
    trs = [ot.tracklet(sat, "iran", s, rng, n=30, span_s=600.0, sigma_arcsec=1e-5) for s in starts]
    for t in trs:
        t["sigma_arcsec"] = SIGMA
    sol = determine_orbit(trs)
    assert sol.determined, sol.reason
    later = Time(trs[-1]["time"][-1]) + 24 * u.h
    assert ot.separation_km(sol.satrec, sat, later.reshape(1))[0] < 0.5
    assert 5.0 < sol.position_sigma_km(later) < 25.0


@pytest.mark.parametrize("elements", [(15.2, 0.001, 97.5, 120, 90, 270, 1e-4), (15.05, 0.0015, 53.0, 40, 10, 100, 5e-5)])
def test_leo_two_stations_12h_over_noise_draws(elements):
    """Two LEO objects, first pass over Pakistan and over Iran (two tracklets each), three noise
    draws each: every 12 h prediction within 2 km (16 draws: max 0.74 km, benchmarks/orbit_quality.py leo)."""
    sat = ot.satellite(T0, *elements)
    errors = []
    for seed in range(3):
        rng = np.random.default_rng(200 + seed)
        trs = (ot.pass_tracklets(sat, "pakistan", T0, rng, hours=14, max_passes=1)
               + ot.pass_tracklets(sat, "iran", T0, rng, hours=14, max_passes=1))
        assert len(trs) == 4
        sol = determine_orbit(trs)
        assert sol.determined, sol.reason
        assert sol.rms_arcsec < 1.6
        later = (Time(trs[-1]["time"][-1]) + 12 * u.h).reshape(1)
        errors.append(ot.separation_km(sol.satrec, sat, later)[0])
    print(f"LEO i={elements[2]}: 12 h errors {np.round(errors, 2)} km")
    assert max(errors) < 2.0


def test_high_drag_leo_three_stations_is_one_object():
    """A LEO with B* = 2e-4 seen by Pakistan and Iran, then by Peru 6 h later: with B* held at 0
    the Peru pass does not fit (it was reported as 'mixed objects'); the growth frees B*."""
    sat = ot.satellite(T0, 15.4, 0.0008, 51.6, 80, 60, 160, bstar=2e-4)
    rng = np.random.default_rng(7)
    trs = [t for st in ("pakistan", "iran", "peru") for t in ot.pass_tracklets(sat, st, T0, rng, max_passes=1)]
    span_h = (Time(trs[-1]["time"][-1]) - Time(trs[0]["time"][0])).to_value(u.h)
    sol = determine_orbit(trs)
    assert sol.determined, sol.reason
    later = (Time(trs[-1]["time"][-1]) + 12 * u.h).reshape(1)
    err_km = ot.separation_km(sol.satrec, sat, later)[0]
    print(f"high-drag LEO over {span_h:.1f} h: B* {sol.satrec.bstar:.2e}, 12 h error {err_km:.3f} km")
    assert span_h > 7 and len(sol.used) == 60
    assert err_km < 2.0 and abs(sol.satrec.bstar - 2e-4) < 5e-5


def test_outlier_is_rejected(geo_night):
    sat, trs = geo_night
    bad = [t.copy() for t in trs]
    bad[1]["dec_deg"][4] += 30 / 3600  # a 30 arcsec blunder
    sol = determine_orbit(bad)
    assert sol.determined, sol.reason
    assert list(sol.rejected) == [14]
    assert sol.rms_arcsec <= 1.5 * SIGMA


def _undetermined(sol, words):
    """A clear verdict: status 'undetermined', the reason names the problem, no orbit or TLE."""
    assert sol.status == "undetermined" and not sol.determined
    assert words in sol.reason, sol.reason
    assert sol.tle is None and sol.state is None and sol.satrec is None


def test_single_short_arc_is_undetermined(geo_night):
    _undetermined(determine_orbit(geo_night[1][:1]), "short arc")


@pytest.mark.parametrize("n", [0, 2, 3])
def test_too_few_observations(geo_night, n):
    _undetermined(determine_orbit([geo_night[1][0][:n]]), "too few")


def test_out_of_order_and_duplicate_times(geo_night):
    table = vstack(geo_night[1])
    reversed_ = table.copy()
    reversed_.reverse()
    _undetermined(determine_orbit(reversed_), "out of time order")
    dup = table.copy()
    dup["time"][3] = dup["time"][2]
    _undetermined(determine_orbit(dup), "duplicate")
    across = [t.copy() for t in geo_night[1]]  # the same time in two tracklets of one station
    across[2]["time"][0] = across[1]["time"][0]
    _undetermined(determine_orbit(across), "duplicate")


def test_mixed_objects_are_undetermined(geo_night):
    sat, trs = geo_night
    other = ot.satellite(T0, 1.00273, 0.0003, 0.05, 2.0, 100, 200)  # 2 deg further east
    rng = np.random.default_rng(9)
    t_last = Time(trs[2]["time"][0])
    mixed = trs[:2] + [ot.tracklet(other, "iran", t_last, rng)]
    sol = determine_orbit(mixed)
    _undetermined(sol, "mixed objects")


def test_table_input_with_geodetic_observer(geo_night):
    from aposos.config import load_station

    st = load_station("iran")
    table = vstack(geo_night[1])
    table.remove_column("station")
    table["lat_deg"], table["lon_deg"], table["height_m"] = st.lat_deg, st.lon_deg, st.height_m
    sol = determine_orbit(table)  # tracklets found from the time gaps
    assert sol.determined and sol.rms_arcsec <= 1.5 * SIGMA


def test_bad_input_raises_apos_error(geo_night):
    table = vstack(geo_night[1])
    with pytest.raises(AposError, match="sigma_arcsec"):
        determine_orbit(table[["time", "ra_deg", "dec_deg", "station"]])
    t2 = table.copy()
    t2.replace_column("station", np.full(len(t2), "atlantis"))
    with pytest.raises(AposError, match="unknown station"):
        determine_orbit(t2)
    t3 = table.copy()
    t3["ra_deg"][0] = np.nan
    with pytest.raises(AposError, match="ra_deg"):
        determine_orbit(t3)
    t4 = table[["ra_deg", "dec_deg", "sigma_arcsec", "station"]].copy()
    t4["time"] = "not a time"
    with pytest.raises(AposError, match="unreadable time"):
        determine_orbit(t4)


def test_gauss_iod_single_leo_tracklet(leo_night):
    """Gauss on three directions of one LEO tracklet: within 2 km of the truth (1 arcsec noise)."""
    sat, trs = leo_night
    obs = prepare(trs[:1])
    t = (obs.times - obs.times[0]).sec
    idx = np.array([0, 5, 9])
    cands = iod.gauss(t[idx], obs.unit[idx], obs.obs_pos_km[idx])
    truth = ot.gcrs_positions(sat, obs.times[idx[1:2]])[0]
    assert min(np.linalg.norm(r - truth) for r, _ in cands) < 2.0


def test_kepler_and_j2_propagation_against_each_other():
    """Two-body f, g conserve energy over many revolutions; the J2 integrator with J2 = 0
    reproduces them; with J2 the node regresses at the secular rate."""
    r0, v0 = np.array([7000.0, 100.0, 200.0]), np.array([0.1, 5.4, 5.0])
    dt = np.array([100.0, 5000.0, 86400.0])
    r, v = propagate.propagate_kepler(r0[None], v0[None], dt)
    energy = 0.5 * np.sum(v * v, -1) - propagate.MU_KM3_S2 / np.linalg.norm(r, axis=-1)
    assert np.allclose(energy, energy[0], rtol=1e-10)
    state = np.concatenate([r0, v0])[None]
    two_body = propagate.propagate_j2(state, dt, j2=0.0)
    assert np.max(np.linalg.norm(two_body[0, :, :3] - r, axis=-1)) < 1e-3  # km
    j2 = propagate.propagate_j2(state, np.array([86400.0]))[0, 0]
    el0 = propagate.elements_from_state(r0, v0)
    el1 = propagate.elements_from_state(j2[:3], j2[3:])
    a, e, i = el0["a_km"], el0["e"], el0["i"]
    n = np.sqrt(propagate.MU_KM3_S2 / a ** 3)
    rate = -1.5 * n * propagate.J2 * (propagate.R_EARTH_KM / (a * (1 - e * e))) ** 2 * np.cos(i)  # rad/s
    drift = (el1["raan"] - el0["raan"] + np.pi) % (2 * np.pi) - np.pi
    assert abs(drift - rate * 86400) < 0.05 * abs(rate * 86400)


@pytest.fixture(scope="module")
def simulated_geo():
    """A GEO object over 70 E from aposos.simulate (skyfield path), noise-free directions of
    three 2-min tracklets from Pakistan at dusk, midnight and dawn."""
    from aposos.config import load_station
    from aposos.simulate.satellites import star_relative
    from aposos.simulate.tles import designed_geo

    st = load_station("pakistan")
    tle = designed_geo(90101, Time("2026-11-20T18:00:00", scale="utc"), 70.0, inc_deg=0.8)
    out = []
    for start in ("2026-11-20T14:00:00", "2026-11-20T19:00:00", "2026-11-21T00:10:00"):
        times = Time(start, scale="utc") + np.linspace(0, 120, 10) * u.s
        ra, dec, _, _ = star_relative(tle, st, times)
        out.append((times, ra, dec))
    return tle.satrec, out


def _noisy(clean, rng, sigma):
    return [ot.Table(dict(time=t, ra_deg=ra + rng.normal(0, sigma, 10) / 3600 / np.cos(np.radians(dec)),
                          dec_deg=dec + rng.normal(0, sigma, 10) / 3600, sigma_arcsec=np.full(10, sigma),
                          station=np.full(10, "pakistan"))) for t, ra, dec in clean]


def test_geo_against_independent_simulator_truth(simulated_geo):
    """Truth from aposos.simulate (its own TEME->GCRS, light time, aberration). Noise-free, the
    fit reproduces the truth to 0.2 km a day later; with 1 arcsec noise the 24 h error follows
    the formal covariance (about 7 km 1-sigma for this geometry), median over noise draws
    within 5 km."""
    sat, clean = simulated_geo
    later = Time("2026-11-22T00:12:00", scale="utc")
    exact = determine_orbit(_noisy(clean, np.random.default_rng(0), 1e-3))
    assert exact.determined and exact.rms_arcsec < 0.3
    assert ot.separation_km(exact.satrec, sat, later.reshape(1))[0] < 0.5
    errors, sigmas = [], []
    for seed in range(4, 10):
        sol = determine_orbit(_noisy(clean, np.random.default_rng(seed), SIGMA))
        assert sol.determined, sol.reason
        assert sol.rms_arcsec <= 1.5 * SIGMA
        errors.append(ot.separation_km(sol.satrec, sat, later.reshape(1))[0])
        sigmas.append(sol.position_sigma_km(later))
    errors, sigmas = np.array(errors), np.array(sigmas)
    print(f"GEO (simulate truth, 6 noise draws): 24 h errors {np.round(errors, 1)} km, "
          f"median {np.median(errors):.1f} km, formal sigma {np.median(sigmas):.1f} km")
    assert np.median(errors) < 5.0
    assert np.all(errors < 4 * sigmas)


def test_five_point_leo_arc_is_too_short(leo_night):
    """Half a LEO tracklet (5 points, 53 s) gives an IOD but no usable orbit: the formal
    uncertainty one revolution later (hundreds of km) makes it 'undetermined'."""
    _undetermined(determine_orbit([leo_night[1][0][:5]]), "arc too short")
    full = determine_orbit([leo_night[1][0]])  # the whole 2-min tracklet is (loosely) determined
    assert full.determined, full.reason
    truth = ot.gcrs_positions(leo_night[0], full.epoch.reshape(1))[0]
    assert np.linalg.norm(full.state[:3] - truth) < 4 * np.sqrt(np.trace(full.covariance[:3, :3]))


def test_linked_table_with_unlinked_rows(geo_night):
    """A Table as aposos.link writes it: per-station tracklet numbers, -1 rows ignored."""
    table = vstack(geo_night[1])
    table["tracklet"] = np.repeat([0, 1, 2], 10)
    junk = table[:2].copy()
    junk["tracklet"] = -1
    junk["ra_deg"] += 1.0
    table = vstack([junk, table])
    sol = determine_orbit(table)
    assert sol.determined, sol.reason
    assert sol.used.min() == 2 and len(sol.used) == 30
    assert list(sol.residuals["row"]) == list(range(2, 32))
