"""Correlation against simulator truth: identified, UCT, residuals against a perfect TLE.

Observations come from the simulator's skyfield path (aposos.simulate.satellites), never
from aposos.predict, which the correlator uses.
"""

import astropy.units as u
import numpy as np
import pytest
from astropy.table import Table, vstack
from astropy.time import Time

from aposos.config import load_station
from aposos.correlate import correlate
from aposos.link import link
from aposos.simulate import satellites, tles as simtles
from aposos.tle import load_catalog

NIGHT = Time("2026-11-21T19:30:00", scale="utc")  # Iran: 23:00 local


def _visible_tracklets(truth_catalog, station, rng, n_frames=6, cadence_s=20.0, noise_arcsec=1.0, max_objects=40):
    """Point observations of every sunlit object above 20 deg, ~2 min sequences, from simulator truth."""
    rows = []
    starts = NIGHT + np.arange(0, 3600, 300) * u.s
    k = 0
    for tle in truth_catalog:
        t0 = starts[rng.integers(len(starts))]
        times = t0 + np.arange(n_frames) * cadence_s * u.s
        o = satellites.observe(tle, station, times)
        if not (np.all(o["alt_deg"] > 20) and np.all(o["lit"] > 0.99)):
            continue
        dra = rng.normal(0, noise_arcsec, n_frames) / 3600 / np.cos(np.radians(o["dec_deg"]))
        ddec = rng.normal(0, noise_arcsec, n_frames) / 3600
        for i in range(n_frames):
            rows.append((times[i], o["ra_deg"][i] + dra[i], o["dec_deg"][i] + ddec[i], noise_arcsec, k, "point", -1,
                         f"seq{tle.norad}_{i:02d}", tle.norad))
        k += 1
        if k >= max_objects:
            break
    obs = Table(rows=rows, names=("time", "ra_deg", "dec_deg", "sigma_arcsec", "source_index", "kind", "end",
                                  "frame", "truth_norad"))
    obs["time"] = Time(list(obs["time"]))
    return obs


def _link_each_sequence(obs):
    """Tracklets per object sequence (the linker itself is tested in test_link.py)."""
    tracklets, linked = [], []
    for norad in np.unique(obs["truth_norad"]):
        t, o = link(obs[obs["truth_norad"] == norad])
        assert len(t) == 1
        t["tracklet"] = o["tracklet"][o["tracklet"] >= 0][0] = len(tracklets)
        o["tracklet"][o["tracklet"] >= 0] = len(tracklets)
        t["truth_norad"] = norad
        tracklets.append(t)
        linked.append(o)
    return vstack(tracklets), vstack(linked)


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    rng = np.random.default_rng(7)
    station = load_station("iran")
    truth = simtles.random_catalog(400, NIGHT - 0.5 * u.day, seed=3, mix={"LEO": 0.5, "MEO": 0.2, "GEO": 0.3})
    obs = _visible_tracklets(truth, station, rng)
    tracklets, linked = _link_each_sequence(obs)
    return station, truth, tracklets, linked, tmp_path_factory.mktemp("tle")


def _catalog(path, tles):
    simtles.write_catalog(path, tles)
    return load_catalog(path)


def test_perfect_tles_identify_everything_with_sub_half_arcsec_residuals(night):
    station, truth, tracklets, linked, tmp = night
    assert len(tracklets) >= 20
    res, cand = correlate(tracklets, linked, _catalog(tmp / "perfect.tle", truth), station)
    correct = np.asarray(res["norad_id"]) == np.asarray(tracklets["truth_norad"])
    assert np.all(res["status"] == "identified") and correct.all()
    # end-to-end physics: the simulator's skyfield path against the reduction's astropy path
    med = np.median(np.hypot(res["along_arcsec"], res["cross_arcsec"]))
    assert med < 0.5, f"median residual {med:.3f} arcsec"


def test_three_day_old_tles_identify_and_removed_objects_are_uct(night):
    station, truth, tracklets, linked, tmp = night
    removed = set(np.asarray(tracklets["truth_norad"])[::4])
    aged = [simtles.aged(t, 3.0, km_per_day=2.0, seed=t.norad) for t in truth if t.norad not in removed]
    res, _ = correlate(tracklets, linked, _catalog(tmp / "aged.tle", aged), station)
    truth_ids = np.asarray(tracklets["truth_norad"])
    is_removed = np.isin(truth_ids, list(removed))
    known = ~is_removed
    correct = (res["status"] == "identified") & (np.asarray(res["norad_id"]) == truth_ids)
    wrong = (res["status"] == "identified") & (np.asarray(res["norad_id"]) != truth_ids)
    assert correct[known].mean() >= 0.99
    assert wrong.mean() <= 0.005
    assert (res["status"][is_removed] == "uct").mean() >= 0.98


def test_no_catalog_means_all_uct(night):
    station, truth, tracklets, linked, tmp = night
    res, cand = correlate(tracklets, linked, [], station)
    assert np.all(res["status"] == "uct") and len(cand) == 0
