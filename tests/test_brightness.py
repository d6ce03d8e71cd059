"""Predicted magnitudes and frame limiting magnitudes (aposos.brightness) against simulator truth."""

from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.time import Time

from aposos.brightness import bright_enough, frame_limiting_mag, sphere_mag, trail_loss_mag
from aposos.config import load_station
from aposos.detect import detect
from aposos.ingest import read_frame
from aposos.predict import predict
from aposos.simulate import satellites
from aposos.simulate import tles as simtles
from aposos.simulate.night import read_truth

SAMPLES = Path(__file__).resolve().parents[1] / "data_samples"
NIGHT = Time("2026-11-21T15:30:00", scale="utc")  # Iran, early night: LEOs partly sunlit


def test_predicted_magnitude_of_a_sphere_matches_the_simulator():
    """Range, phase angle and shadow from aposos.predict give the simulator's (skyfield path)
    diffuse-sphere magnitude of each object's own size, to 0.001 mag."""
    station = load_station("iran")
    cat = simtles.random_catalog(45, NIGHT - 0.3 * u.day, seed=4, mix={"LEO": 0.5, "MEO": 0.2, "GEO": 0.3})
    times = NIGHT + np.array([0.0, 1500.0, 3000.0]) * u.s
    p = predict([(t.line1, t.line2) for t in cat], station, times)
    dm, checked = [], 0
    for k, tle in enumerate(cat):
        o = satellites.observe(tle, station, times)
        full = (o["lit"] == 1.0) & (o["alt_deg"] > 0)
        dark = o["lit"] == 0.0
        assert not np.any(p.sunlit[k][dark]) and np.all(p.sunlit[k][full])
        mag = sphere_mag(p.range_km[k], p.phase_deg[k], tle.radius_m, tle.albedo, p.sunlit[k])
        dm.extend(mag[full] - o["mag"][full])
        assert np.all(np.isinf(mag[dark]))
        checked += full.sum()
    assert checked >= 30
    assert np.max(np.abs(dm)) < 0.001, np.max(np.abs(dm))  # measured: 1e-7


def test_standard_object_magnitudes():
    """The documented anchors: 1 m sphere, albedo 0.2: V 6.7 at 1000 km and 90 deg phase."""
    assert sphere_mag(1000.0, 90.0) == pytest.approx(6.69, abs=0.01)
    assert sphere_mag(1000.0, 0.0) == pytest.approx(5.45, abs=0.01)
    assert sphere_mag(1000.0, 10.0, sunlit=False) == np.inf
    assert trail_loss_mag(0.0, 8.0, 20.0) == 0.0


@pytest.fixture(scope="module")
def geo_frame():
    name = "pakistan_geo_sidereal_01"
    frame = read_frame(SAMPLES / "pakistan" / f"{name}.fits", "pakistan")
    offset = float(np.median(frame.data))
    sources = detect(frame.data - offset, mode="sidereal", saturation_adu=frame.meta.saturation_adu - offset)
    return sources, read_truth(SAMPLES / "truth" / f"{name}.ecsv.gz"), frame.meta.read_noise_e


def _match(sources, truth, radius_px=1.5):
    """Index of the nearest source within ``radius_px`` of each truth row (-1: none)."""
    d = np.hypot(np.asarray(sources["x"])[None, :] - np.asarray(truth["x"])[:, None],
                 np.asarray(sources["y"])[None, :] - np.asarray(truth["y"])[:, None])
    k = np.argmin(d, axis=1)
    return np.where(d[np.arange(len(truth)), k] <= radius_px, k, -1)


def _true_limit(meta, read_noise_e, snr=5.0):
    """Magnitude of a point source at ``snr`` for optimal (PSF-weighted) photometry, from the
    simulator's photometry of the frame: Gaussian PSF of effective area 4 pi sigma^2, noise
    variance per pixel sky + read noise^2 (e), plus the source's own shot noise."""
    sigma_px = meta["fwhm_px"] / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    var = 4.0 * np.pi * sigma_px**2 * (meta["sky_e_per_px"] + read_noise_e**2)
    flux_e = 0.5 * (snr**2 + np.sqrt(snr**4 + 4.0 * snr**2 * var))
    return -2.5 * np.log10(flux_e / (meta["zero_point_e_s"] * meta["transparency"] * meta["exposure_s"]))


def test_frame_limiting_magnitude_against_truth(geo_frame):
    """The limit estimated from catalog stars (as a plate solution matches them, mag < 11)
    is within 0.3 mag of the simulator's SNR-5 point-source magnitude."""
    sources, truth, read_noise_e = geo_frame
    stars = truth[np.isin(np.asarray(truth["kind"]).astype(str), ["star", "faint_star"]) & truth["on_image"]]
    m = _match(sources, stars)
    mag = np.asarray(stars["mag"], float)
    catalog = (m >= 0) & (mag < 11.0)
    limit = frame_limiting_mag(sources, {"source_index": m[catalog], "mag": mag[catalog]})
    true_limit = _true_limit(truth.meta, read_noise_e)
    assert abs(limit - true_limit) < 0.3, (limit, true_limit)


def test_bright_enough_agrees_with_what_the_frame_shows(geo_frame):
    """The two GEO streaks (true mag 11.7 and 12.2, 15 arcsec/s over 8 s: 1.1 mag trailing
    loss) are detected and predicted bright enough; 4 mag fainter (streak SNR < 5) they are not."""
    sources, truth, _ = geo_frame
    stars = truth[np.asarray(truth["kind"]).astype(str) == "star"]
    m = _match(sources, stars)
    limit = frame_limiting_mag(sources, {"source_index": m[m >= 0], "mag": np.asarray(stars["mag"])[m >= 0]})
    fwhm = truth.meta["fwhm_px"] * truth.meta["pixel_scale_arcsec"]
    sats = truth[np.asarray(truth["kind"]).astype(str) == "satellite"]
    streaks = sources[np.asarray(sources["kind"]).astype(str) == "streak"]
    for s in sats:
        rate = np.hypot(s["rate_ra_arcsec_s"], s["rate_dec_arcsec_s"])
        assert np.min(np.hypot(streaks["x"] - s["x"], streaks["y"] - s["y"])) < 2.0
        assert bright_enough(s["mag"], rate, truth.meta["exposure_s"], fwhm, limit)
        assert not bright_enough(s["mag"] + 4.0, rate, truth.meta["exposure_s"], fwhm, limit)


def test_unseen_lists_only_objects_bright_enough_for_the_frame(tmp_path):
    """Pipeline's unseen list: a sunlit twilight LEO (standard V ~ 5-8) and a GEO (V ~ 14) at
    the centres of two fields (simulator truth), neither detected: with a frame limit of 12
    only the LEO is listed, with 16 both are; each with its predicted magnitude."""
    from astropy.table import Table

    from aposos.pipeline import _unseen
    from aposos.tle import load_catalog

    import correlation_truth as C

    station = load_station("iran")
    t0, t1 = C.night_window("iran")
    leo, t_pass = C._twilight_leos(np.random.default_rng(1), "iran", 1, 60001)[0]
    geo = simtles.designed_geo(70001, t0 + 3 * u.hour, station.lon_deg + 10.0)
    simtles.write_catalog(tmp_path / "c.tle", [leo, geo])
    catalog = load_catalog(tmp_path / "c.tle")
    fields = []
    for tle, t, exposure_s in ((leo, t_pass, 1.0), (geo, t0 + 3 * u.hour, 8.0)):
        ra, dec, _, _ = satellites.star_relative(tle, station, t + np.array([0.5 * exposure_s]) * u.s)
        fields.append({"content_hash": f"h{tle.norad}", "t_start": t, "t_end": t + exposure_s * u.s,
                       "ra_deg": float(ra[0]), "dec_deg": float(dec[0]), "radius_deg": 0.5,
                       "fwhm_arcsec": 20.0})
    linked = Table({"content_hash": np.zeros(0, str), "tracklet": np.zeros(0, int)})
    results = Table({"tracklet": np.zeros(0, int), "norad_id": np.zeros(0, int), "status": np.zeros(0, str)})
    listed = {}
    for limit in (12.0, 16.0):
        out = _unseen(catalog, station, [{**f, "limit_mag": limit} for f in fields], linked, results)
        listed[limit] = dict(zip(out["norad_id"], out["mag_pred"]))
    assert set(listed[12.0]) == {leo.norad} and set(listed[16.0]) == {leo.norad, geo.norad}
    assert 4.0 < listed[16.0][leo.norad] < 9.0 and 13.0 < listed[16.0][geo.norad] < 15.5
