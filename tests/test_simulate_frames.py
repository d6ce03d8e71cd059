"""Simulated frames against their truth: WCS round trips, centroids, streak ends, rate tracking.

Measure the round trip: ``pytest -q -s tests/test_simulate_frames.py -k round_trip`` prints
the maximum px error.
"""

import astropy.units as u
import numpy as np
import pytest
from astropy.table import Table
from astropy.time import Time
from astropy.wcs import WCS

from aposos.catalog import StarCatalog
from aposos.config import load_station
from aposos.simulate import frames, render, satellites, scene, tles

T0 = Time("2026-11-20T16:00:00", scale="utc")
NO_FAINT = {"density_per_deg2": 0.0}
#: a star catalog with one star far from every test field: frames with nothing but satellites
EMPTY_SKY = StarCatalog([0.0], [-89.9], [20.0], source_id=[1])


@pytest.fixture(scope="module")
def iran():
    return load_station("iran")


@pytest.fixture(scope="module")
def geo(iran):
    return tles.designed_geo(90001, T0, iran.lon_deg + 5.0)


@pytest.fixture(scope="module")
def sidereal(geo):
    return frames.simulate_frame("iran", T0, 10.0, tracking="sidereal", target=geo, tles=[geo], seed=3,
                                 sip_corner_px=3.0, noise=False, faint=NO_FAINT)


def _truth_wcs(truth):
    return WCS(truth.meta["wcs"])


def test_wcs_round_trip_with_sip_below_0_01_px(sidereal):
    frame, truth = sidereal
    w = _truth_wcs(truth)
    assert w.sip is not None
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-0.5, 1023.5, 5000), rng.uniform(-0.5, 1023.5, 5000)
    ra, dec = scene.pixel_to_world(w, x, y)
    x2, y2 = scene.world_to_pixel(w, ra, dec)
    pix_world_pix = np.hypot(x2 - x, y2 - y).max()
    stars = truth[truth["kind"] != "satellite"]
    sx, sy = scene.world_to_pixel(w, stars["ra_deg"], stars["dec_deg"])
    ra2, dec2 = scene.pixel_to_world(w, sx, sy)
    world_pix_world = np.degrees(np.hypot((ra2 - stars["ra_deg"]) * np.cos(np.radians(dec2)),
                                          dec2 - stars["dec_deg"])).max() * 3600 / truth.meta["pixel_scale_arcsec"]
    truth_vs_wcs = np.hypot(sx - stars["x"], sy - stars["y"]).max()
    print(f"\nWCS round trips (px): pixel->world->pixel {pix_world_pix:.2e}, world->pixel->world {world_pix_world:.2e}, "
          f"truth x,y vs WCS {truth_vs_wcs:.2e}")
    assert pix_world_pix < 0.01 and world_pix_world < 0.01 and truth_vs_wcs < 0.01
    # the distortion is real: a pure TAN WCS misplaces corner stars by px
    tan = WCS(truth.meta["wcs"])
    tan.sip = None
    tan.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    tx, ty = tan.wcs_world2pix(*scene.pixel_to_world(w, [0.0], [0.0]), 0)
    assert 1.0 < np.hypot(tx[0], ty[0]) < 6.0


def _moments(img, x, y, half=10):
    xi, yi = int(round(x)), int(round(y))
    stamp = img[yi - half:yi + half + 1, xi - half:xi + half + 1].astype(float)
    yy, xx = np.mgrid[yi - half:yi + half + 1, xi - half:xi + half + 1]
    s = stamp.sum()
    return s, (stamp * xx).sum() / s, (stamp * yy).sum() / s


def test_rendered_star_centroids_match_truth(sidereal):
    frame, truth = sidereal
    stars = truth[(truth["kind"] == "star") & (truth["x"] > 15) & (truth["x"] < 1008) & (truth["y"] > 15)
                  & (truth["y"] < 1008)]
    xy = np.stack([truth["x"], truth["y"]], axis=1)
    errs = []
    for s in stars:
        d = np.hypot(xy[:, 0] - s["x"], xy[:, 1] - s["y"])
        if np.sort(d)[1] < 25:  # a neighbour would bias the moments
            continue
        flux_adu, cx, cy = _moments(frame.data, s["x"], s["y"])
        errs.append(np.hypot(cx - s["x"], cy - s["y"]))
        assert abs(flux_adu * frame.meta.gain_e_per_adu / s["flux_e"] - 1) < 1e-4
    print(f"\nrendered star centroids vs truth x, y: max {max(errs):.1e} px over {len(errs)} isolated stars")
    assert len(errs) > 20
    assert max(errs) < 1e-3


def test_flux_follows_the_zero_point(sidereal):
    _, truth = sidereal
    expected = truth.meta["zero_point_e_s"] * truth.meta["exposure_s"] * 10 ** (-0.4 * truth["mag"])
    stars = truth["kind"] != "satellite"
    assert np.allclose(truth["flux_e"][stars], expected[stars], rtol=1e-9)


def test_streak_ends_are_the_shutter_instants(iran, geo):
    frame, truth = frames.simulate_frame(iran, T0, 10.0, target=geo, tles=[geo], seed=4, noise=False,
                                         faint=NO_FAINT, catalog=EMPTY_SKY)
    sat = truth[truth["kind"] == "satellite"][0]
    w = _truth_wcs(truth)
    # the ends in the truth table are the truth-path positions at t_start and t_end ...
    ra, dec, _, _ = satellites.star_relative(geo, iran, Time([T0, T0 + 10 * u.s]))
    x, y = scene.world_to_pixel(w, ra, dec)
    assert np.hypot(x[0] - sat["x0"], y[0] - sat["y0"]) < 1e-6 and np.hypot(x[1] - sat["x1"], y[1] - sat["y1"]) < 1e-6
    assert abs((sat["t0"] - T0).to_value(u.s)) < 1e-6 and abs((sat["t1"] - T0).to_value(u.s) - 10) < 1e-6
    # ... and the rendered streak starts and stops there: its flux centroid is the mid-point
    # (a GEO's rate is constant) and its along-track variance L^2/12 + sigma^2 + 1/12 gives
    # the length between the ends
    img = frame.data.astype(float)
    length = np.hypot(sat["x1"] - sat["x0"], sat["y1"] - sat["y0"])
    ux, uy = (sat["x1"] - sat["x0"]) / length, (sat["y1"] - sat["y0"]) / length
    yy, xx = np.mgrid[: img.shape[0], : img.shape[1]]
    s = img.sum()
    cx, cy = (img * xx).sum() / s, (img * yy).sum() / s
    assert np.hypot(cx - (sat["x0"] + sat["x1"]) / 2, cy - (sat["y0"] + sat["y1"]) / 2) < 0.01
    along = (xx - cx) * ux + (yy - cy) * uy
    var = (img * along**2).sum() / s - (truth.meta["fwhm_px"] / render.FWHM_PER_SIGMA) ** 2 - 1 / 12
    print(f"\nstreak: centroid - mid-point of the ends {np.hypot(cx - (sat['x0'] + sat['x1']) / 2, cy - (sat['y0'] + sat['y1']) / 2):.1e} px, "
          f"length from moments - |end1 - end0| {np.sqrt(12 * var) - length:+.1e} px")
    assert abs(np.sqrt(12 * var) - length) < 0.05
    assert abs(length - 15.0 * 10 / truth.meta["pixel_scale_arcsec"]) < 0.1 * length


def test_rate_tracked_target_is_a_point_and_stars_streak(iran, geo):
    frame, truth = frames.simulate_frame(iran, T0, 10.0, tracking="rate", target=geo, tles=[geo], seed=5,
                                         noise=False, faint=NO_FAINT)
    assert frame.meta.tracking == "rate" and frame.meta.object_id == str(geo.norad)
    assert abs(frame.meta.rate_ra_arcsec_s - 15.0) < 0.3
    sat = truth[truth["kind"] == "satellite"][0]
    assert np.hypot(sat["x1"] - sat["x0"], sat["y1"] - sat["y0"]) < 1e-3
    assert np.hypot(sat["x"] - sat["x0"], sat["y"] - sat["y0"]) < 1e-3
    stars = truth[truth["kind"] == "star"]
    lengths = np.hypot(stars["x1"] - stars["x0"], stars["y1"] - stars["y0"])
    expected = 15.0 * 10 / truth.meta["pixel_scale_arcsec"]
    assert np.all(np.abs(lengths - expected) < 0.05 * expected)
    # the target's rendered image has the PSF's width: no trail
    alone, _ = frames.simulate_frame(iran, T0, 10.0, tracking="rate", target=geo, tles=[geo], seed=5,
                                     noise=False, faint=NO_FAINT, catalog=EMPTY_SKY)
    s, cx, cy = _moments(alone.data, sat["x"], sat["y"])
    xi, yi = int(round(sat["x"])), int(round(sat["y"]))
    st = alone.data[yi - 10:yi + 11, xi - 10:xi + 11].astype(float)
    var_x = (st.sum(axis=0) * (np.arange(xi - 10, xi + 11) - cx) ** 2).sum() / s
    sigma2 = (truth.meta["fwhm_px"] / render.FWHM_PER_SIGMA) ** 2 + 1 / 12
    assert abs(var_x / sigma2 - 1) < 0.01
    assert np.hypot(cx - sat["x"], cy - sat["y"]) < 1e-3


def test_leo_streak_is_a_curved_nonuniform_polyline(iran):
    leo = tles.designed_leo(90002, T0, iran.lat_deg, iran.lon_deg, alt_km=800.0)
    t_pass = T0 - 60 * u.s
    obs = satellites.observe(leo, iran, t_pass)
    frame, truth = frames.simulate_frame(iran, t_pass, 4.0, obs["ra_deg"][0], obs["dec_deg"][0], tles=[leo],
                                         seed=6, noise=False, faint=NO_FAINT, catalog=EMPTY_SKY)
    sat = truth[truth["kind"] == "satellite"][0]
    length = np.hypot(sat["x1"] - sat["x0"], sat["y1"] - sat["y0"])
    assert length > 300  # ~1 deg/s at 10 arcsec/px
    # the mid-exposure position is off the chord's mid-point: the rate changes during the exposure
    assert np.hypot(sat["x"] - (sat["x0"] + sat["x1"]) / 2, sat["y"] - (sat["y0"] + sat["y1"]) / 2) > 0.5


def test_noisy_frame_has_camera_levels_and_artefacts(iran, geo):
    frame, truth = frames.simulate_frame(iran, T0, 10.0, target=geo, tles=[geo], seed=7)
    cam = iran.camera
    sky_adu = cam["bias_adu"] + truth.meta["sky_e_per_px"] / cam["gain_e_per_adu"]
    assert abs(np.median(frame.data) - sky_adu) < 0.05 * truth.meta["sky_e_per_px"] / cam["gain_e_per_adu"] + 5
    assert frame.data.max() <= cam["saturation_adu"] and frame.data.dtype == np.float32
    assert len(truth.meta["hot_pixels_yx"]) >= 1
    assert frame.meta.binning == 4 and frame.data.shape == (1024, 1024)
    assert 9.5 < truth.meta["pixel_scale_arcsec"] < 10.4


def test_faint_stars_are_fixed_on_the_sky():
    a = scene.faint_stars(100.0, 10.0, 1.5)
    b = scene.faint_stars(100.8, 10.3, 1.5)
    common = set(a["source_id"]) & set(b["source_id"])
    assert len(common) > 100
    ia = {s: i for i, s in enumerate(a["source_id"])}
    ib = {s: i for i, s in enumerate(b["source_id"])}
    for s in list(common)[:50]:
        assert a["ra"][ia[s]] == b["ra"][ib[s]] and a["mag"][ia[s]] == b["mag"][ib[s]]
    density = len(a) / (np.pi * 1.5**2)
    assert 150 < density < 2000 and a["mag"].min() >= 10 and a["mag"].max() <= 14.5
    # counts rise towards faint magnitudes
    assert (a["mag"] > 13.5).sum() > 3 * (a["mag"] < 11).sum()


def test_candidate_filter_keeps_every_object_near_the_field(iran):
    """The fast SGP4 pre-filter never drops an object the truth path puts near the field."""
    sky = tles.random_catalog(80, T0, seed=21)
    # a few objects placed through the field: LEOs passing near the station at T0
    sky += [tles.designed_leo(95000 + k, T0 + 5 * u.s, iran.lat_deg + d, iran.lon_deg - d, alt_km=700.0 + 100 * k)
            for k, d in enumerate((-1.0, 0.0, 1.0))]
    times = Time([T0, T0 + 5 * u.s, T0 + 10 * u.s])
    obs0 = satellites.observe(sky[-2], iran, T0 + 5 * u.s)
    ra0, dec0 = obs0["ra_deg"][0], obs0["dec_deg"][0]
    kept = {t.norad for t in frames.candidate_satellites(sky, iran, Time(np.linspace(T0.jd, (T0 + 10 * u.s).jd, 21),
                                                                                    format="jd"), ra0, dec0, 3.0)}
    near = set()
    for t in sky:
        ra, dec, _, _ = satellites.star_relative(t, iran, times)
        sep = np.degrees(np.arccos(np.clip(np.sin(np.radians(dec)) * np.sin(np.radians(dec0)) + np.cos(np.radians(dec))
                                           * np.cos(np.radians(dec0)) * np.cos(np.radians(ra - ra0)), -1, 1)))
        if sep.min() < 2.5:
            near.add(t.norad)
    assert sky[-2].norad in near and near <= kept


def test_truth_times_survive_ecsv_to_the_microsecond(tmp_path, iran, geo):
    t_start = Time("2026-11-20T16:00:00.1234567", scale="utc")
    _, truth = frames.simulate_frame(iran, t_start, 2.0, target=geo, tles=[geo], seed=8, noise=False,
                                     faint=NO_FAINT, shape=(64, 64))
    truth.write(tmp_path / "t.ecsv", format="ascii.ecsv")
    back = Table.read(tmp_path / "t.ecsv")
    for col, expected in (("t0", t_start), ("time", t_start + 1 * u.s), ("t1", t_start + 2 * u.s)):
        assert np.all(np.abs((back[col] - expected).to_value(u.s)) < 1e-6)
    assert abs((Time(back.meta["t_start"]) - t_start).to_value(u.s)) < 1e-6
