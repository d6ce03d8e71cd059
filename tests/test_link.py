"""Tracklet linking on synthetic observations: objects on great circles, static sources, noise."""

import astropy.units as u
import numpy as np
import pytest
from astropy.table import Table
from astropy.time import Time

from aposos.directions import radec_deg, unit_from_radec
from aposos.link import link

T0 = Time("2026-11-21T20:00:00", scale="utc")


def _great_circle(ra0, dec0, pa_deg, rate_deg_s, t_s):
    """Unit vectors of an object moving from (ra0, dec0) along position angle pa at a constant rate."""
    p = unit_from_radec(ra0, dec0)
    north = np.array([0.0, 0.0, 1.0]) - p[2] * p
    north /= np.linalg.norm(north)
    east = np.cross(north, p)
    d = np.cos(np.radians(pa_deg)) * north + np.sin(np.radians(pa_deg)) * east
    ang = np.radians(rate_deg_s * np.asarray(t_s))[:, None]
    return np.cos(ang) * p + np.sin(ang) * d


def _night(seed=0, n_objects=4, n_frames=8, cadence_s=30.0, exposure_s=8.0, noise_arcsec=1.0,
           n_static=15, n_noise=6):
    rng = np.random.default_rng(seed)
    rows, truth = [], []
    objs = [(30 + rng.uniform(-0.8, 0.8), 10 + rng.uniform(-0.8, 0.8), rng.uniform(0, 360),
             rng.choice([0.0042, 0.01, 0.05])) for _ in range(n_objects)]  # GEO 15"/s ... MEO/LEO-ish
    static = [(30 + rng.uniform(-1, 1), 10 + rng.uniform(-1, 1)) for _ in range(n_static)]
    src = 0
    for f in range(n_frames):
        t_open = f * cadence_s
        frame = f"frame{f:02d}.fits"
        for k, (ra0, dec0, pa, rate) in enumerate(objs):
            if rng.random() < 0.1:  # missed detection
                continue
            ends = _great_circle(ra0, dec0, pa, rate, [t_open, t_open + exposure_s / 2, t_open + exposure_s])
            order = rng.permutation(2)  # detector does not know which end is first
            for kind, j, end in (("streak_centre", 1, -1), ("streak_end", 2 * order[0], 0), ("streak_end", 2 * order[1], 1)):
                ra, dec = radec_deg(ends[j])
                jitter = rng.normal(0, noise_arcsec / 3600, 2)
                t = {0: t_open, 1: t_open + exposure_s / 2, 2: t_open + exposure_s}[j]
                # ends carry the frame's open/close times in arbitrary order (unresolved)
                t_rec = t if kind == "streak_centre" else (t_open if end == 0 else t_open + exposure_s)
                rows.append((T0 + t_rec * u.s, ra + jitter[0] / np.cos(np.radians(dec)), dec + jitter[1],
                             noise_arcsec, src, kind, end, frame))
                truth.append((k, j))
            src += 1
        for ra, dec in static:
            rows.append((T0 + (t_open + exposure_s / 2) * u.s, ra, dec, noise_arcsec, src, "point", -1, frame))
            truth.append((-1, -1))
            src += 1
        for _ in range(n_noise):
            rows.append((T0 + (t_open + exposure_s / 2) * u.s, 30 + rng.uniform(-1, 1), 10 + rng.uniform(-1, 1),
                         noise_arcsec, src, "point", -1, frame))
            truth.append((-2, -1))
            src += 1
    tab = Table(rows=rows, names=("time", "ra_deg", "dec_deg", "sigma_arcsec", "source_index", "kind", "end", "frame"))
    tab["time"] = Time(list(tab["time"]))
    return tab, np.array(truth), objs


@pytest.mark.parametrize("seed", range(5))
def test_each_object_is_one_pure_tracklet_and_static_sources_are_rejected(seed):
    obs, truth, objs = _night(seed)
    tracklets, out = link(obs)
    obj = truth[:, 0]
    for k in range(len(objs)):
        ids = set(out["tracklet"][obj == k])
        assert len(ids) == 1 and -1 not in ids, f"object {k} split or unlinked: {ids}"
    for tid in tracklets["tracklet"]:
        members = set(obj[out["tracklet"] == tid])
        assert len(members) == 1 and min(members) >= 0, f"tracklet {tid} mixes {members}"
    assert len(tracklets) == len(objs)


def test_streak_direction_resolved_and_rates_measured():
    obs, truth, objs = _night(seed=11, noise_arcsec=0.5)
    tracklets, out = link(obs)
    ends = out[(out["kind"] == "streak_end") & (out["tracklet"] >= 0)]
    etruth = truth[(np.asarray(obs["kind"]) == "streak_end") & (np.asarray(out["tracklet"]) >= 0)]
    # truth j == 0 is the shutter-open position: it must now carry end 0
    assert np.all((etruth[:, 1] == 0) == (np.asarray(ends["end"]) == 0))
    for row in tracklets:
        k = truth[out["tracklet"] == row["tracklet"]][0, 0]
        rate = np.hypot(row["ra_rate_deg_s"], row["dec_rate_deg_s"])
        assert abs(rate - objs[k][3]) / objs[k][3] < 0.01


def test_empty_input_gives_empty_tables():
    obs, _, _ = _night(seed=1)
    tracklets, out = link(obs[:0])
    assert len(tracklets) == 0 and len(out) == 0


def test_three_frame_point_sequences_link_without_false_tracklets():
    """Rate-tracked style: objects as points in only 3 frames, with noise and static stars."""
    false_links = 0
    for seed in range(6):
        obs, truth, objs = _night(seed=100 + seed, n_frames=3, n_noise=5)
        obs["kind"][obs["kind"] == "streak_centre"] = "point"
        keep = np.asarray(obs["kind"]) != "streak_end"
        obs, truth = obs[keep], truth[keep]
        tracklets, out = link(obs)
        obj = truth[:, 0]
        for tid in tracklets["tracklet"]:
            members = set(obj[out["tracklet"] == tid])
            false_links += min(members) < 0 or len(members) > 1
        for k in range(len(objs)):
            if (obj == k).sum() == 3:  # seen in all three frames
                assert len(set(out["tracklet"][obj == k])) == 1 and out["tracklet"][obj == k][0] >= 0
    assert false_links == 0
