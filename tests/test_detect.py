"""Quality of aposos.detect.detect against simulator truth (figures asserted are the issue's bars)."""

import math

import numpy as np
import pytest
from photutils.background import Background2D
from photutils.segmentation import SourceCatalog, detect_sources

from aposos.detect import detect
from aposos.detect.sources import EDGE, MERGED, SATURATED, SHARP, STAR_TRAIL
from aposos.errors import AposError
from aposos.simulate import render

from test_detect_scenes import (FWHM, SKY_E, crb_px, expose, flux_for_snr_ap, match, point_scene,
                                spaced_positions, streak_flux_for_snr)


@pytest.fixture(scope="module")
def point_runs():
    """Three 512 x 512 frames of isolated stars (aperture SNR 3 .. 60) and their detections."""
    runs = []
    for seed in range(3):
        adu, truth = point_scene((512, 512), n=200, snr_ap=(3.0, 60.0), seed=seed)
        runs.append((truth, detect(adu)))
    return runs


def _collect(point_runs):
    snr, found, dx, dy, crb = [], [], [], [], []
    for truth, s in point_runs:
        pts = s[s["kind"] == "point"]
        m = match(pts["x"], pts["y"], truth["x"], truth["y"], 2.0)
        ok = m >= 0
        snr.append(truth["snr_ap"])
        found.append(ok)
        dx.append(np.where(ok, np.asarray(pts["x"])[m] - truth["x"], np.nan))
        dy.append(np.where(ok, np.asarray(pts["y"])[m] - truth["y"], np.nan))
        crb.append(crb_px(truth["flux_e"], truth["x"], truth["y"]))
    return tuple(np.concatenate(v) for v in (snr, found, dx, dy, crb))


def test_point_completeness(point_runs):
    snr, found, *_ = _collect(point_runs)
    assert found[snr >= 10].mean() >= 0.95
    at5 = (snr >= 4.5) & (snr < 5.5)
    assert at5.sum() >= 20 and found[at5].mean() >= 0.80


def test_no_false_points_on_isolated_star_frames(point_runs):
    for truth, s in point_runs:
        m = match(truth["x"], truth["y"], s["x"], s["y"], 2.0)
        assert (m < 0).sum() <= 2  # per 0.26 Mpx; stars fill the frame, so only detections
        assert (s["kind"] == "streak").sum() == 0


def test_false_detections_on_noise_only():
    """Default threshold: <= 2 false detections per 1k x 1k of noise (here 2 Mpx, <= 4)."""
    n = 0
    for seed in (11, 12):
        adu = expose(render.sky((1024, 1024), SKY_E), np.random.default_rng(seed))
        n += len(detect(adu))
    assert n <= 4


def test_centroids_reach_cramer_rao(point_runs):
    snr, found, dx, dy, crb = _collect(point_runs)
    sel = found & (snr >= 10)
    ratio_x = math.sqrt(np.mean((dx[sel] / crb[sel]) ** 2))
    ratio_y = math.sqrt(np.mean((dy[sel] / crb[sel]) ** 2))
    assert ratio_x <= 1.5 and ratio_y <= 1.5
    assert ratio_x >= 0.7 and ratio_y >= 0.7  # not luck: the bound cannot be beaten by much


def test_centroid_errors_are_honest(point_runs):
    """Reported x_err matches the scatter against truth (pulls of unit width)."""
    pulls = []
    for truth, s in point_runs:
        pts = s[s["kind"] == "point"]
        m = match(truth["x"], truth["y"], pts["x"], pts["y"], 2.0)
        ok = m >= 0
        pulls.append((np.asarray(pts["x"])[ok] - truth["x"][m[ok]]) / np.asarray(pts["x_err"])[ok])
    pulls = np.concatenate(pulls)
    assert 0.8 < np.std(pulls) < 1.25


def test_centroids_agree_with_photutils():
    adu, truth = point_scene((512, 512), n=80, snr_ap=(100.0, 1000.0), seed=21, min_sep=30)
    s = detect(adu, fwhm_px=FWHM)
    bkg = Background2D(adu, 64)
    data = adu - bkg.background
    seg = detect_sources(data, 3 * bkg.background_rms, npixels=5)
    cat = SourceCatalog(data, seg)
    m = match(cat.xcentroid, cat.ycentroid, s["x"], s["y"], 1.0)
    ok = m >= 0
    assert ok.sum() >= 70
    d = np.hypot(np.asarray(s["x"])[ok] - cat.xcentroid[m[ok]], np.asarray(s["y"])[ok] - cat.ycentroid[m[ok]])
    assert math.sqrt(np.mean(d**2)) <= 0.02


def _streak_frame(seed, n=6):
    rng = np.random.default_rng(100 + seed)
    shape = (512, 512)
    img = render.sky(shape, SKY_E)
    length = rng.uniform(10, 150, n)
    ang = rng.uniform(0, np.pi, n)
    snr = rng.uniform(15, 60, n)
    cx = np.array([128, 384, 128, 384, 120, 390]) + rng.uniform(-20, 20, n)
    cy = np.array([100, 100, 400, 400, 250, 250]) + rng.uniform(-20, 20, n)
    x0, x1 = cx - length / 2 * np.cos(ang), cx + length / 2 * np.cos(ang)
    y0, y1 = cy - length / 2 * np.sin(ang), cy + length / 2 * np.sin(ang)
    render.add_streaks(img, x0, y0, x1, y1, streak_flux_for_snr(snr, length), FWHM)
    xs, ys = spaced_positions(40, shape, 15, rng)
    render.add_points(img, xs, ys, flux_for_snr_ap(rng.uniform(5, 100, len(xs))), FWHM)
    return expose(img, rng), np.column_stack([x0, y0, x1, y1]), snr, (xs, ys)


def _end_errors(row, ends):
    got = np.array([[row["x0"], row["y0"]], [row["x1"], row["y1"]]])
    true = ends.reshape(2, 2)
    a, b = np.hypot(*(got - true).T), np.hypot(*(got[::-1] - true).T)
    return a if a.sum() < b.sum() else b


def _segment_distance(x, y, e):
    """Distance (px) of (x, y) from the segment e = (x0, y0, x1, y1)."""
    p, a, b = np.array([x, y]), e[:2], e[2:]
    t = np.clip(np.dot(p - a, b - a) / np.dot(b - a, b - a), 0, 1)
    return float(np.hypot(*(p - a - t * (b - a))))


def _angle_diff_deg(a, b):
    d = (a - b) % 180.0
    return min(d, 180.0 - d)


@pytest.fixture(scope="module")
def streak_runs():
    return [(_streak_frame(seed), None) for seed in range(4)]


def test_streaks_found_once_with_ends(streak_runs):
    found, end_err, snrs = [], [], []
    for (adu, ends, snr, stars), _ in streak_runs:
        s = detect(adu)
        st = s[s["kind"] == "streak"]
        assert len(st) <= len(ends)  # no extra streaks (bright stars, pairs)
        for e, q in zip(ends, snr):
            centre = 0.5 * (e[:2] + e[2:])
            ang = math.degrees(math.atan2(e[3] - e[1], e[2] - e[0]))
            near = [r for r in st if math.hypot(r["x"] - centre[0], r["y"] - centre[1]) < 5
                    and _angle_diff_deg(r["angle_deg"], ang) < 5]
            found.append(len(near) == 1)
            snrs.append(q)
            end_err.append(_end_errors(near[0], e) if near else [np.nan, np.nan])
        # stars off the streaks are all found as points; streak pieces are not points
        pts = s[s["kind"] == "point"]
        off = np.array([min(_segment_distance(x, y, e) for e in ends) > 4 for x, y in zip(*stars)])
        m = match(pts["x"], pts["y"], stars[0][off], stars[1][off], 3.0)
        assert (m < 0).sum() <= 1
        assert len(pts) <= len(stars[0]) + 1
    found, end_err, snrs = np.array(found), np.array(end_err), np.array(snrs)
    assert found.mean() >= 0.95
    bright = snrs >= 30
    assert math.sqrt(np.nanmean(end_err[bright] ** 2)) <= 1.0


def test_no_streaks_from_bleed_trails_cosmics_or_hot_pixels():
    rng = np.random.default_rng(200)
    shape = (512, 512)
    img = render.sky(shape, SKY_E)
    xs, ys = spaced_positions(60, shape, 25, rng)
    bright = np.arange(len(xs)) < 8
    flux = np.where(bright, 10 ** rng.uniform(6.3, 7.0, len(xs)),
                    flux_for_snr_ap(rng.uniform(5, 100, len(xs))))
    render.add_points(img, xs, ys, flux, FWHM)
    hy, hx = render.add_hot_pixels(img, 30, 5000, rng)
    cr = render.add_cosmic_rays(img, 40, rng)
    adu = expose(img, rng, saturation_adu=65535)
    assert (adu >= 65535).sum(axis=0).max() >= 8  # the bleed trails are there
    s = detect(adu)
    assert (s["kind"] == "streak").sum() == 0
    # saturated stars found and flagged; hot pixels flagged sharp; no normal star flagged sharp
    m = match(s["x"], s["y"], xs, ys, 2.0)
    assert all(s["flags"][m[i]] & SATURATED for i in np.flatnonzero(bright) if m[i] >= 0)
    assert (m[bright] >= 0).mean() >= 0.75
    hit = [min(np.hypot(cr["x"] - x, cr["y"] - y).min(), np.hypot(hx - x, hy - y).min()) < 8
           for x, y in zip(xs, ys)]  # a cosmic ray or hot pixel on a star makes it sharp
    normal = (~bright) & (m >= 0) & ~np.array(hit)
    assert not any(s["flags"][m[i]] & SHARP for i in np.flatnonzero(normal))
    mh = match(s["x"], s["y"], hx.astype(float), hy.astype(float), 1.0)
    hot = mh[mh >= 0]
    assert len(hot) >= 20 and np.mean((np.asarray(s["flags"])[hot] & SHARP) > 0) >= 0.9


def test_broken_and_edge_crossing_streaks():
    rng = np.random.default_rng(5)
    img = render.sky((400, 400), SKY_E)
    render.add_streaks(img, [40, 250], [60, 300], [300, 420], [120, 380], [1.2e5, 6e4], FWHM)
    render.add_points(img, [170.0], [90.0], [3e5], FWHM)  # a bright star on the first streak
    adu = expose(img, rng)
    adu[85:100, 120:135] = np.nan  # a masked patch breaks the first streak
    s = detect(adu)
    st = s[s["kind"] == "streak"]
    assert len(st) == 2
    first = st[np.argmin(np.hypot(st["x"] - 170, st["y"] - 90))]
    assert _end_errors(first, np.array([40, 60, 300, 120])).max() < 1.5
    edge = st[np.argmin(np.hypot(st["x"] - 330, st["y"] - 340))]
    assert edge["flags"] & EDGE
    assert max(edge["x0"], edge["x1"]) > 395  # runs to the frame edge
    assert s.meta["n_nonfinite"] == 225
    assert np.min(np.hypot(s["x"] - 170, s["y"] - 90)) < 0.5  # the star is still a point


@pytest.mark.parametrize("seed", range(4))
def test_streak_through_a_saturated_star(seed):
    """A streak (SNR 70, 111 px) crossing a saturated star: one component whose S moments are
    the star's and with a single peak; the streak must still be found, its ends within 1.5 px."""
    rng = np.random.default_rng(seed)
    img = render.sky((300, 300), SKY_E)
    render.add_streaks(img, [60.0], [150.0], [170.0], [134.0], [streak_flux_for_snr(70.0, 111.0)],
                       FWHM)
    render.add_points(img, [80.0], [143.0], [3e6], FWHM)
    s = detect(expose(img, rng))
    st = s[s["kind"] == "streak"]
    assert len(st) == 1
    assert _end_errors(st[0], np.array([60.0, 150.0, 170.0, 134.0])).max() < 1.5


@pytest.mark.parametrize("seed", range(4))
def test_streak_beside_a_bright_star(seed):
    """A faint streak (SNR 30, 161 px) passing 8.5 px from a bright star: the star's S wings
    join them in one component whose moments point at the star. The streak is found whole
    (the star masked from its fit), its ends within 1.5 px."""
    rng = np.random.default_rng(seed)
    img = render.sky((300, 300), SKY_E)
    ends = np.array([60.0, 100.0, 190.0, 195.0])
    render.add_streaks(img, *ends[:, None], [streak_flux_for_snr(30.0, 161.0)], FWHM)
    along = (ends[2:] - ends[:2]) / np.hypot(*(ends[2:] - ends[:2]))
    star = ends[:2] + 0.7 * 161.0 * along + 8.5 * np.array([along[1], -along[0]])
    render.add_points(img, [star[0]], [star[1]], [3e5], FWHM)
    s = detect(expose(img, rng))
    st = s[s["kind"] == "streak"]
    assert len(st) == 1
    assert _end_errors(st[0], ends).max() < 1.5


@pytest.mark.parametrize("seed", range(4))
def test_streak_ending_beside_a_bright_star(seed):
    """A streak (SNR 80, 124 px) that stops 5.5 px short of a bright star (aperture SNR 400)
    lying 3.3 px off its line: the star is left out of the fit, yet the end stays where the
    streak stops (a disk as large as the one for stars along a streak hid the end, and it was
    fitted 9-11 px into the star), within the 1 px of the issue's bar at SNR >= 30."""
    rng = np.random.default_rng(seed)
    img = render.sky((260, 260), SKY_E)
    ends = np.array([60.0, 70.0, 166.3, 133.6])
    along = (ends[2:] - ends[:2]) / np.hypot(*(ends[2:] - ends[:2]))
    render.add_streaks(img, *ends[:, None], [streak_flux_for_snr(80.0, 124.0)], FWHM)
    star = ends[2:] + 5.5 * along + 3.3 * np.array([along[1], -along[0]])
    render.add_points(img, [star[0]], [star[1]], [flux_for_snr_ap(400.0)], FWHM)
    s = detect(expose(img, rng))
    st = s[s["kind"] == "streak"]
    assert len(st) == 1
    assert _end_errors(st[0], ends).max() < 1.0
    assert np.min(np.hypot(s["x"] - star[0], s["y"] - star[1])) < 0.5  # the star is a point


def test_faint_stars_beside_bright_ones():
    """Stars of SNR 40 8-12 px from stars 100 times brighter: their S peaks are below the
    blending level of the joint component (10 % of its maximum), yet each is a point of its
    own, and nothing else is reported."""
    found, extra = 0, 0
    for seed in range(4):
        rng = np.random.default_rng(seed)
        img = render.sky((300, 300), SKY_E)
        bx, by = np.repeat([60.0, 150.0, 240.0], 2), np.tile([60.0, 200.0], 3)
        angle, dist = rng.uniform(0, 2 * np.pi, 6), rng.uniform(8, 12, 6)
        fx, fy = bx + dist * np.cos(angle), by + dist * np.sin(angle)
        render.add_points(img, bx, by, np.full(6, 3e5), FWHM)
        render.add_points(img, fx, fy, np.full(6, flux_for_snr_ap(40.0)), FWHM)
        s = detect(expose(img, rng))
        pts = s[s["kind"] == "point"]
        m = match(np.asarray(pts["x"]), np.asarray(pts["y"]), fx, fy, 1.5)
        found += int((m >= 0).sum())
        extra += len(pts) - 12
    assert found == 24 and extra == 0


def _clump_frame(seed, n=6, shape=(400, 400)):
    """A frame with ``n`` short streaks (8-24 px, integrated SNR 12-30), ``n`` clumps of 3-5
    faint stars (SNR 10-25, within 5 px of a centre) and 60 field stars. Returns (adu, streak
    centres (n, 2), clump centres (n, 2))."""
    rng = np.random.default_rng(200 + seed)
    img = render.sky(shape, SKY_E)
    x, y = spaced_positions(2 * n + 60, shape, 24.0, rng)
    sx, sy, cx, cy = x[:n], y[:n], x[n:2 * n], y[n:2 * n]
    length, ang = rng.uniform(8, 24, n), rng.uniform(0, np.pi, n)
    h = 0.5 * length
    render.add_streaks(img, sx - h * np.cos(ang), sy - h * np.sin(ang), sx + h * np.cos(ang),
                       sy + h * np.sin(ang), streak_flux_for_snr(rng.uniform(12, 30, n), length),
                       FWHM)
    for xc, yc in zip(cx, cy):
        k = rng.integers(3, 6)
        r, a = rng.uniform(1.5, 5.0, k), rng.uniform(0, 2 * np.pi, k)
        render.add_points(img, xc + r * np.cos(a), yc + r * np.sin(a),
                          flux_for_snr_ap(rng.uniform(10, 25, k)), FWHM)
    snr = np.exp(rng.uniform(np.log(5), np.log(300), len(x) - 2 * n))
    render.add_points(img, x[2 * n:], y[2 * n:], flux_for_snr_ap(snr), FWHM)
    return expose(img, rng), np.column_stack([sx, sy]), np.column_stack([cx, cy])


def short_streaks_and_clumps(seeds):
    """(short streaks found, streaks reported on clumps, streaks in all) over ``_clump_frame``
    frames: found within 3 px of a true centre, on a clump within 6 px of its centre."""
    found = on_clumps = total = 0
    for seed in seeds:
        adu, centres, clumps = _clump_frame(seed)
        st = detect(adu, fwhm_px=FWHM)
        st = st[st["kind"] == "streak"]
        sx, sy = np.asarray(st["x"]), np.asarray(st["y"])
        found += int((match(sx, sy, *centres.T, 3.0) >= 0).sum())
        on_clumps += int((match(sx, sy, *clumps.T, 6.0) >= 0).sum())
        total += len(centres)
    return found, on_clumps, total


def test_short_streaks_among_clumps_of_faint_stars():
    """Clumps of 3-5 faint stars within a few px fit a short segment better than two stars (the
    pair test), but three or four stars fit them better still: no streak. Real short streaks
    (8-24 px, integrated SNR 12-30) among stars are still found."""
    found, on_clumps, total = short_streaks_and_clumps(range(4))
    assert on_clumps == 0  # measured: 0 (2 before the test against three or four stars)
    assert found >= 0.75 * total  # measured: 24 of 24


def test_rate_mode_star_trails_and_point_target():
    rng = np.random.default_rng(8)
    shape = (512, 512)
    img = render.sky(shape, SKY_E)
    xs, ys = spaced_positions(30, shape, 40, rng, margin=40)
    ang, length = math.radians(30.0), 25.0
    dx, dy = 0.5 * length * math.cos(ang), 0.5 * length * math.sin(ang)
    render.add_streaks(img, xs - dx, ys - dy, xs + dx, ys + dy,
                       flux_for_snr_ap(rng.uniform(30, 200, len(xs))) * 3, FWHM)
    render.add_points(img, [256.3], [20.7], [flux_for_snr_ap(20.0)], FWHM)  # the satellite
    adu = expose(img, rng)
    s = detect(adu, mode="rate", star_angle_deg=30.0, star_length_px=25.0)
    st = s[s["kind"] == "streak"]
    assert len(st) >= 0.9 * len(xs)
    assert np.all(st["flags"] & STAR_TRAIL)
    assert np.all(np.abs(st["length_px"] - 25) < 2)
    pts = s[s["kind"] == "point"]
    sat = np.hypot(pts["x"] - 256.3, pts["y"] - 20.7)
    assert sat.min() < 0.2 and len(pts) <= 2


def test_table_contract():
    adu, _ = point_scene((256, 256), n=20, snr_ap=(20, 100), seed=2)
    s = detect(adu)
    for name in ("x", "y", "x_err", "y_err", "flux", "flux_err", "snr", "peak", "area", "a", "b",
                 "theta_deg", "elongation", "kind", "flags", "angle_deg", "length_px", "x0",
                 "y0", "x1", "y1", "end_sigma_px"):
        assert name in s.colnames and s[name].description
    assert str(s["x"].unit) == "pix" and str(s["theta_deg"].unit) == "deg"
    assert s.meta["shape"] == (256, 256) and s.meta["rms"] > 0 and "background" in s.meta
    assert np.all(np.isnan(s["x0"][s["kind"] == "point"]))


@pytest.mark.parametrize("bad, match_text", [
    (np.zeros((10, 10, 3), np.float32), "2-D"),
    (np.zeros(100, np.float32), "2-D"),
    (np.zeros((64, 64), complex), "real numeric"),
    (np.zeros((4, 64), np.float32), "too small"),
    (np.full((64, 64), np.nan, np.float32), "finite"),
    (np.array([["a"] * 16] * 16), "real numeric"),
])
def test_bad_input_raises_apos_error(bad, match_text):
    with pytest.raises(AposError, match=match_text):
        detect(bad)


def test_bad_options_raise_apos_error():
    adu = np.zeros((64, 64), np.float32)
    with pytest.raises(AposError, match="mode"):
        detect(adu, mode="fast")
    with pytest.raises(AposError, match="unknown"):
        detect(adu, thresold=3)
    with pytest.raises(AposError, match="FWHM"):
        detect(adu, fwhm_px=-1)


def test_constant_integer_and_infinite_images():
    assert len(detect(np.full((128, 128), 100, np.uint16))) == 0
    adu, truth = point_scene((256, 256), n=20, snr_ap=(30, 100), seed=9)
    as_int = detect(np.round(adu + 1000).astype(np.int32))
    assert len(match(as_int["x"], as_int["y"], truth["x"], truth["y"])) == 20
    adu[100, :] = np.inf
    adu[:, 7] = -np.inf
    s = detect(adu)
    assert s.meta["n_nonfinite"] == 256 + 255
    m = match(s["x"], s["y"], truth["x"], truth["y"], 2.0)
    assert (m >= 0).mean() >= 0.85


def test_max_and_count_equals_numpy():
    from aposos.detect.sources import _max_and_count
    rng = np.random.default_rng(3)
    img = rng.integers(0, 50, (37, 53)).astype(np.float32)
    img[5, 7] = img[20, 1] = img[36, 52] = 60.0  # three pixels at the maximum
    img[rng.random(img.shape) < 0.05] = np.nan
    m, c = _max_and_count(img, enough=3)
    assert m == np.nanmax(img) and c == 3 == np.count_nonzero(img == np.nanmax(img))
    img[30, 30] = img[31, 30] = 60.0
    assert _max_and_count(img, enough=3)[1] >= 3 and _max_and_count(img, enough=9)[1] == 5
    img[:, 30] = np.nan
    assert _max_and_count(img, enough=9) == (60.0, 3)
    assert _max_and_count(np.full((3, 4), np.nan, np.float32))[0] == -np.inf
