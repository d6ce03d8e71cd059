"""Tracklet linking on synthetic observations: objects on great circles, static sources, noise."""

import astropy.units as u
import numpy as np
import pytest
from astropy.table import Table
from astropy.time import Time

from aposos.config import load_station
from aposos.directions import radec_deg, unit_from_radec
from aposos.simulate import satellites
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


# --- LEO passes as streaks in sidereal frames, from the simulator's truth (skyfield path) ---------

NIGHT = Time("2026-11-20T15:10:00", scale="utc")  # Iran, dusk: LEO passes sunlit


def _leo_passes(rng, n):
    """Designed LEOs culminating near the station at staggered times, varied heights and tracks."""
    from aposos.simulate import tles as simtles

    st = load_station("iran")
    out = []
    for k in range(n):
        t_pass = NIGHT + (240.0 * k + rng.uniform(-20, 20)) * u.s  # one pass after the other
        tle = simtles.designed_leo(71000 + k, t_pass, st.lat_deg + rng.uniform(-8, 8), st.lon_deg + rng.uniform(-8, 8),
                                   alt_km=rng.uniform(500, 1200), inc_deg=rng.uniform(55, 98),
                                   descending=bool(rng.random() < 0.5))
        out.append((tle, t_pass))
    return st, out


def _streak_rows(o, j, t_open, exposure_s, sigma_end, frame, src, rng, label):
    """Centre and two ends (order scrambled, times open/close unresolved) of one streak."""
    rows = []
    order = rng.permutation(2)
    for kind, which, end, sig in (("streak_centre", 1, -1, sigma_end / 2), ("streak_end", 2 * order[0], 0, sigma_end),
                                  ("streak_end", 2 * order[1], 1, sigma_end)):
        ra, dec = o["ra_deg"][3 * j + which], o["dec_deg"][3 * j + which]
        n = rng.normal(0, sig / 3600, 2)
        t = t_open + (exposure_s / 2 if kind == "streak_centre" else (0.0 if end == 0 else exposure_s)) * u.s
        rows.append((t, ra + n[0] / np.cos(np.radians(dec)), dec + n[1], sig, src, kind, end, frame, "sidereal",
                     exposure_s, label, which))
    return rows


def _false_rows(rng, centre_ra, centre_dec, t_open, exposure_s, frame, src, n_streaks, n_points):
    """False streaks (random length up to 200 px at 10"/px, random direction) and noise points."""
    rows = []
    for _ in range(n_streaks):
        c = unit_from_radec(centre_ra + rng.uniform(-0.9, 0.9) / np.cos(np.radians(centre_dec)),
                            centre_dec + rng.uniform(-0.9, 0.9))
        ra_c, dec_c = radec_deg(c)
        half = rng.uniform(10, 1000) / 3600
        pa = rng.uniform(0, 2 * np.pi)
        d_ra, d_dec = half * np.sin(pa) / np.cos(np.radians(dec_c)), half * np.cos(pa)
        o = {"ra_deg": [ra_c - d_ra, ra_c, ra_c + d_ra], "dec_deg": [dec_c - d_dec, dec_c, dec_c + d_dec]}
        rows += _streak_rows(o, 0, t_open, exposure_s, rng.uniform(1, 3), frame, src, rng, -2)
        src += 1
    for _ in range(n_points):
        rows.append((t_open + exposure_s / 2 * u.s, centre_ra + rng.uniform(-0.9, 0.9) / np.cos(np.radians(centre_dec)),
                     centre_dec + rng.uniform(-0.9, 0.9), 1.0, src, "point", -1, frame, "sidereal", exposure_s, -2, -1))
        src += 1
    return rows, src


def _streak_night(seed, n_leo=4, cadence_s=20.0, exposure_s=1.0):
    """LEO passes (3-6 frames each, each frame re-pointed on the pass, 15 % of detections missed
    beyond the third frame) and a GEO sequence in
    sidereal frames, with false streaks, noise points and static faint stars. Returns the
    observations (with ``truth`` object label and ``truth_end`` 0 open / 1 mid / 2 close)
    and per object (tle, frame times)."""
    rng = np.random.default_rng(seed)
    st, passes = _leo_passes(rng, n_leo)
    rows, objects, src = [], [], 0
    for k, (tle, t_pass) in enumerate(passes):
        n_frames = int(rng.integers(3, 7))
        t_opens = t_pass + (np.arange(n_frames) * cadence_s - rng.uniform(0, cadence_s * (n_frames - 1))) * u.s
        times = Time(np.concatenate([[t, t + exposure_s / 2 * u.s, t + exposure_s * u.s] for t in t_opens]))
        o = satellites.observe(tle, st, times)
        objects.append((tle, t_opens))
        for j, t_open in enumerate(t_opens):
            frame = f"leo{k}_{j}.fits"
            if n_frames > 3 and rng.random() < 0.15:  # missed: behind a star, a cloud
                rows += _false_rows(rng, o["ra_deg"][3 * j + 1], o["dec_deg"][3 * j + 1], t_open, exposure_s, frame,
                                    src, n_streaks=6, n_points=5)[0]
                src += 11
                continue
            rows += _streak_rows(o, j, t_open, exposure_s, rng.uniform(1, 3), frame, src, rng, k)
            src += 1
            more, src = _false_rows(rng, o["ra_deg"][3 * j + 1], o["dec_deg"][3 * j + 1], t_open, exposure_s, frame,
                                    src, n_streaks=6, n_points=5)
            rows += more
    # a GEO sequence: 8 s sidereal exposures every 30 s, same field, static faint stars
    from aposos.simulate import tles as simtles

    geo = simtles.designed_geo(72000, NIGHT, st.lon_deg + rng.uniform(-20, 20), inc_deg=rng.uniform(0, 5))
    t_opens = NIGHT + 1800 * u.s + np.arange(5) * 30.0 * u.s
    times = Time(np.concatenate([[t, t + 4 * u.s, t + 8 * u.s] for t in t_opens]))
    o = satellites.observe(geo, st, times)
    objects.append((geo, t_opens))
    stars = [(o["ra_deg"][1] + rng.uniform(-0.8, 0.8), o["dec_deg"][1] + rng.uniform(-0.8, 0.8)) for _ in range(20)]
    for j, t_open in enumerate(t_opens):
        frame = f"geo_{j}.fits"
        rows += _streak_rows(o, j, t_open, 8.0, rng.uniform(1, 3), frame, src, rng, n_leo)
        src += 1
        for ra, dec in stars:
            rows.append((t_open + 4 * u.s, ra, dec, 1.0, src, "point", -1, frame, "sidereal", 8.0, -1, -1))
            src += 1
        more, src = _false_rows(rng, o["ra_deg"][1], o["dec_deg"][1], t_open, 8.0, frame, src, n_streaks=3, n_points=5)
        rows += more
    obs = Table(rows=rows, names=("time", "ra_deg", "dec_deg", "sigma_arcsec", "source_index", "kind", "end", "frame",
                                  "tracking", "exposure_s", "truth", "truth_end"))
    obs["time"] = Time(list(obs["time"]))
    return st, obs, objects


@pytest.fixture(scope="module")
def streak_nights():
    out = []
    for seed in range(4):
        st, obs, objects = _streak_night(seed)
        tracklets, linked = link(obs)
        out.append((st, obs, objects, tracklets, linked))
    return out


def test_streak_sequences_each_one_pure_tracklet_and_no_false_tracklets(streak_nights):
    n_objects = n_false = 0
    for st, obs, objects, tracklets, linked in streak_nights:
        label = np.asarray(obs["truth"])
        frames = np.asarray(obs["frame"])
        for k in range(len(objects)):
            ids = set(linked["tracklet"][label == k])
            if len(set(frames[label == k])) >= 3:
                assert len(ids) == 1 and -1 not in ids, f"object {k} split or unlinked: {ids}"
                n_objects += 1
            else:  # two detections: linked together or not at all
                assert len(ids) == 1
        for tid in tracklets["tracklet"]:
            members = set(label[linked["tracklet"] == tid])
            n_false += len(members) > 1 or min(members) < 0
    print(f"streak nights: {n_objects} objects seen in >= 3 frames (LEO 3-6 frames, GEO 5 frames), "
          f"{n_false} false tracklets")
    assert n_false == 0


def test_streak_direction_resolved_and_tracklet_matches_truth(streak_nights):
    pos_err, rate_err = [], []
    for st, obs, objects, tracklets, linked in streak_nights:
        ends = (np.asarray(obs["kind"]) == "streak_end") & (np.asarray(linked["tracklet"]) >= 0)
        truth_open = np.asarray(obs["truth_end"])[ends] == 0
        assert np.all(truth_open == (np.asarray(linked["end"])[ends] == 0))
        t_open_truth = np.isclose(((linked["time"][ends] - obs["time"][ends]).to_value("s")), 0) | ~truth_open
        assert np.all(t_open_truth | (np.asarray(linked["end"])[ends] == 0))
        for row in tracklets:
            k = int(np.asarray(obs["truth"])[linked["tracklet"] == row["tracklet"]][0])
            o = satellites.observe(objects[k][0], st, Time([row["t_ref"]]))
            d_ra = (row["ra_deg"] - o["ra_deg"][0]) * np.cos(np.radians(o["dec_deg"][0]))
            pos_err.append(np.hypot(d_ra, row["dec_deg"] - o["dec_deg"][0]) * 3600)
            true_rate = np.hypot(o["rate_ra_arcsec_s"][0], o["rate_dec_arcsec_s"][0])
            rate = np.hypot(row["ra_rate_deg_s"], row["dec_rate_deg_s"]) * 3600
            rate_err.append(abs(rate - true_rate) / true_rate * 100)
    pos_err, rate_err = np.array(pos_err), np.array(rate_err)
    print(f"tracklet position vs truth: median {np.median(pos_err):.2f}\", max {pos_err.max():.2f}\"; "
          f"rate: median {np.median(rate_err):.3f} %, max {rate_err.max():.3f} %")
    assert np.median(pos_err) < 1.5 and pos_err.max() < 5.0
    assert np.median(rate_err) < 0.1 and rate_err.max() < 0.5


def print_streak_figures(n_nights: int) -> None:
    """Linking figures over ``n_nights`` simulated streak nights: ``python tests/test_link.py 20``."""
    n3 = ok3 = false = n_ends = ok_ends = 0
    pos, rate = [], []
    for seed in range(n_nights):
        st, obs, objects = _streak_night(seed)
        tr, out = link(obs)
        lab, frames = np.asarray(obs["truth"]), np.asarray(obs["frame"])
        for k in range(len(objects)):
            if len(set(frames[lab == k])) >= 3:
                n3 += 1
                ids = set(out["tracklet"][lab == k])
                ok3 += len(ids) == 1 and -1 not in ids and set(lab[out["tracklet"] == min(ids)]) == {k}
        for tid in tr["tracklet"]:
            m = set(lab[out["tracklet"] == tid]); false += len(m) > 1 or min(m) < 0
        e = (np.asarray(obs["kind"]) == "streak_end") & (np.asarray(out["tracklet"]) >= 0)
        n_ends += e.sum(); ok_ends += np.sum((np.asarray(obs["truth_end"])[e] == 0) == (np.asarray(out["end"])[e] == 0))
        for row in tr:
            k = int(lab[out["tracklet"] == row["tracklet"]][0])
            if k < 0: continue
            o = satellites.observe(objects[k][0], st, Time([row["t_ref"]]))
            pos.append(np.hypot((row["ra_deg"] - o["ra_deg"][0]) * np.cos(np.radians(o["dec_deg"][0])), row["dec_deg"] - o["dec_deg"][0]) * 3600)
            tr_rate = np.hypot(o["rate_ra_arcsec_s"][0], o["rate_dec_arcsec_s"][0])
            rate.append(abs(np.hypot(row["ra_rate_deg_s"], row["dec_rate_deg_s"]) * 3600 - tr_rate) / tr_rate * 100)
    print(f"{n_nights} nights: objects seen in >=3 frames {n3}, one pure tracklet {ok3} ({100*ok3/n3:.1f} %); "
          f"false tracklets {false}; streak ends resolved {ok_ends}/{n_ends}; position vs truth median "
          f"{np.median(pos):.2f}\" p95 {np.percentile(pos, 95):.2f}\" max {np.max(pos):.2f}\"; rate median {np.median(rate):.3f} % max {np.max(rate):.3f} %")


if __name__ == "__main__":
    import sys

    print_streak_figures(int(sys.argv[1]) if len(sys.argv) > 1 else 20)


def test_leo_points_of_rate_tracked_frames_link_into_one_tracklet_each():
    """LEO low in the twilight sky, 4-7 rate-tracked frames 2-6 s apart: the rate changes by
    ~1 % per second, beyond a constant-rate extrapolation; each sequence is one tracklet
    (simulator truth, tests/correlation_truth.py)."""
    import correlation_truth as C

    rng = np.random.default_rng(3)
    n = 0
    for tle, t_pass in C._twilight_leos(rng, "iran", 8, 60001):
        for seq in C.observe_sequences(tle, "iran", rng, n_seq=4, max_keep=2, t_pass=t_pass):
            tracklets, linked = link(seq)
            assert len(tracklets) == 1 and np.all(linked["tracklet"] == tracklets["tracklet"][0])
            n += 1
    assert n >= 8


def test_static_flags_equal_a_plain_set_count():
    """_static (k nearest, vectorised) against the plain per-anchor set of other frames within the
    radius and far enough apart in time; a dense crowd makes the k-nearest search escalate."""
    from scipy.spatial import cKDTree

    from aposos.link import ARCSEC_PER_RAD, LinkConfig, _static, static_separation_s

    rng = np.random.default_rng(3)
    n = 3000
    ra, dec = rng.uniform(0, 0.05, n), rng.uniform(0, 0.05, n)  # rad: dense enough for neighbours
    ra[:300], dec[:300] = 0.02 + rng.normal(0, 2e-5, 300), 0.02 + rng.normal(0, 2e-5, 300)  # a crowd
    unit = np.column_stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])
    frame = rng.integers(0, 12, n)
    cfg = LinkConfig(static_radius_arcsec=200.0, min_rate_deg_s=0.02)
    min_dt = static_separation_s(cfg)
    t_s = frame * 0.6 * min_dt  # neighbouring frames too close in time to count
    near = cKDTree(unit).query_ball_point(unit, cfg.static_radius_arcsec / ARCSEC_PER_RAD)
    ref = np.array([len({frame[j] for j in k if abs(t_s[j] - t_s[i]) >= min_dt}) >= cfg.static_min_frames
                    for i, k in enumerate(near)])
    assert 0 < ref.sum() < n  # both kinds present
    assert np.array_equal(_static(unit, frame, t_s, cfg), ref)


@pytest.mark.parametrize("rate_arcsec_s, cadence_s, n_frames", [(1.0, 2.0, 12), (15.0, 0.15, 120)])
def test_slow_mover_in_a_fast_sequence_is_not_static_and_stars_are(rate_arcsec_s, cadence_s, n_frames):
    """A mover just above min_rate_deg_s (0.72"/s) in frames 2 s apart, or a GEO (15"/s) in frames
    0.15 s apart, moves ~2" between frames, inside the static radius (3") of its neighbours: it is
    still linked, with its rate, and the faint stars of the same frames are static (the sequences
    last long enough, > 2 x static_separation_s, for every frame to have others far enough)."""
    rng = np.random.default_rng(7)
    noise = 0.2
    stars = [(30 + rng.uniform(-0.3, 0.3), 10 + rng.uniform(-0.3, 0.3)) for _ in range(20)]
    t_s = np.arange(n_frames) * cadence_s
    mover = _great_circle(30.0, 10.0, 40.0, rate_arcsec_s / 3600, t_s)
    rows = []
    for f, t in enumerate(t_s):
        ra, dec = radec_deg(mover[f])
        for k, (r, d) in enumerate([(ra, dec)] + stars):
            jitter = rng.normal(0, noise / 3600, 2)
            rows.append((T0 + t * u.s, r + jitter[0] / np.cos(np.radians(d)), d + jitter[1], noise, k, "point", -1,
                         f"frame{f:02d}.fits"))
    obs = Table(rows=rows, names=("time", "ra_deg", "dec_deg", "sigma_arcsec", "source_index", "kind", "end", "frame"))
    obs["time"] = Time(list(obs["time"]))
    tracklets, out = link(obs)
    is_mover = np.asarray(obs["source_index"]) == 0
    assert not out["static"][is_mover].any() and out["static"][~is_mover].all()
    assert len(tracklets) == 1 and tracklets["n_frames"][0] == n_frames and np.all(out["tracklet"][is_mover] == 0)
    rate = 3600 * np.hypot(tracklets["ra_rate_deg_s"][0], tracklets["dec_rate_deg_s"][0])
    assert abs(rate - rate_arcsec_s) < 0.05 * rate_arcsec_s


def test_no_seed_or_growth_across_hours_between_frames():
    """Two groups of frames 8 h apart (a LEO pass, later a GEO field, as in the sample night):
    sources of one group and the other are kinematically compatible for a slow object (the
    rate bound of a point), but no detection bridges more than ``max_gap_s``: no seed pair joins
    the groups, and a point tracklet of the first group does not grow into the second."""
    from aposos.link import LinkConfig, _Anchor, _FrameIndex, _grow, _seed_pairs

    cfg = LinkConfig()
    rng = np.random.default_rng(4)
    frames = {}
    times = [0.0, 20.0, 40.0, 28800.0, 28820.0, 28840.0]
    for f, t in enumerate(times):  # the later field 36 deg away: 0.0013 deg/s, a possible rate
        ra = rng.uniform(300.0, 301.0, 40) + (30.0 if t > 1000 else 0.0)
        dec = rng.uniform(20.0, 21.0, 40) + (30.0 if t > 1000 else 0.0)
        frames[f] = [_Anchor(100 * f + k, f, t, u, 1e-5, None, np.radians(cfg.max_rate_deg_s))
                     for k, u in enumerate(unit_from_radec(ra, dec))]
    by_frame = {f: _FrameIndex(a) for f, a in frames.items()}
    pairs = _seed_pairs(by_frame, len(times), cfg)
    assert pairs and all(abs(a.t_s - b.t_s) <= cfg.max_gap_s for *_, a, b in pairs)
    members, _ = _grow((frames[1][0], frames[2][0]), by_frame, set(), cfg, len(times))
    assert {m.frame for m in members} <= {0, 1, 2}
