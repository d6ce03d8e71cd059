"""Calibration masters (median combine, checked against numpy on the stack), their application
to science frames (against the synthetic truth), and the night inventory."""

import logging

import numpy as np
import pytest
from astropy.time import Time, TimeDelta

from aposos import AposError
from aposos.ingest import calibrate, master_bias, master_dark, master_flat, read_meta, scan_night, write_frame
from aposos.model import Frame, FrameMeta

SHAPE = (30, 40)
T0 = Time("2026-11-21T18:00:00", scale="utc")
BIAS_ADU = 500.0


def meta(kind, exposure_s, i=0, station="iran"):
    t0 = T0 + TimeDelta(60.0 * i, format="sec")
    return FrameMeta(path="", station=station, t_start=t0, t_mid=t0 + TimeDelta(exposure_s / 2, format="sec"),
                     t_end=t0 + TimeDelta(exposure_s, format="sec"), exposure_s=exposure_s, image_type=kind)


@pytest.fixture(scope="module")
def truth():
    """Per-pixel bias pattern (ADU), dark rate (ADU/s) and flat response (median 1)."""
    rng = np.random.default_rng(42)
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    bias = BIAS_ADU + 3.0 * np.sin(xx / 5.0) + rng.normal(0, 1.0, SHAPE)
    rate = 0.5 + rng.exponential(0.2, SHAPE)
    rate[7, 9] = 40.0  # a hot pixel
    response = 1.0 + 0.1 * (xx - SHAPE[1] / 2) / SHAPE[1] + rng.normal(0, 0.01, SHAPE)
    response[3, 4] = 0.0  # a dead pixel
    return dict(bias=bias.astype(np.float32), rate=rate.astype(np.float32), response=response.astype(np.float32))


def biases(truth, n=5, noise=4.0, seed=1):
    rng = np.random.default_rng(seed)
    frames = [Frame((truth["bias"] + rng.normal(0, noise, SHAPE)).astype(np.float32), meta("bias", 0.0, i)) for i in range(n)]
    frames[0].data[10, 10] = 60000.0  # a cosmic ray the median rejects
    return frames


def darks(truth, exposure_s=20.0, n=5, noise=4.0, seed=2):
    rng = np.random.default_rng(seed)
    return [Frame((truth["bias"] + truth["rate"] * exposure_s + rng.normal(0, noise, SHAPE)).astype(np.float32), meta("dark", exposure_s, i))
            for i in range(n)]


def flats(truth, levels=(20000.0, 25000.0, 30000.0, 22000.0), exposure_s=2.0):
    return [Frame((truth["bias"] + truth["rate"] * exposure_s + level * truth["response"]).astype(np.float32), meta("flat", exposure_s, i))
            for i, level in enumerate(levels)]


# --- masters against numpy --------------------------------------------------------------------
def test_master_bias_is_the_per_pixel_median(truth):
    frames = biases(truth)
    master = master_bias(frames)
    expected = np.median(np.stack([f.data for f in frames]), axis=0)
    np.testing.assert_array_equal(master.data, expected)
    assert master.data.dtype == np.float32 and master.mask is None
    assert master.meta.image_type == "bias" and master.header["NCOMBINE"] == 5
    assert master.data[10, 10] < BIAS_ADU + 30  # the cosmic ray is gone
    assert np.std(master.data - truth["bias"]) < 4.0 * 1.253 / np.sqrt(5) * 1.3  # median of 5: ~1.25/sqrt(5) of the noise


def test_master_bias_from_files_equals_in_memory(tmp_path, truth):
    frames = [Frame(np.round(f.data), f.meta) for f in biases(truth)]
    paths = [write_frame(tmp_path / f"bias{i}.fits", f, "iran") for i, f in enumerate(frames)]
    np.testing.assert_array_equal(master_bias(paths).data, np.median(np.stack([f.data for f in frames]), axis=0))


def test_master_dark_is_a_rate_and_calibrate_scales_it(truth):
    bias = master_bias(biases(truth))
    dark_frames = darks(truth, exposure_s=20.0)
    dark = master_dark(dark_frames, bias=bias)
    expected = np.median(np.stack([(f.data - bias.data) / np.float32(20.0) for f in dark_frames]), axis=0)
    np.testing.assert_allclose(dark.data, expected, rtol=0, atol=1e-5)
    assert dark.meta.exposure_s == 1.0 and dark.meta.image_type == "dark"
    assert dark.data[7, 9] == pytest.approx(40.0, abs=0.5)  # the hot pixel's rate, ADU/s
    # a 60 s science frame: sky + bias + 60 s of dark current; the calibration leaves the sky
    sky = np.full(SHAPE, 1000.0, np.float32)
    science = Frame(truth["bias"] + truth["rate"] * 60.0 + sky, meta("science", 60.0))
    reduced = calibrate(science, bias=bias, dark=dark)
    residual = reduced.data - sky
    assert abs(np.median(residual)) < 1.0 and abs(residual[7, 9]) < 40.0  # hot pixel: 2400 ADU removed to < 40
    # noise: 2 x master-bias noise - 3 x master-dark noise (60 s / 20 s), each 4 ADU * 1.25 / sqrt(5)
    assert np.std(residual) < 1.3 * np.hypot(2, 3) * 4.0 * 1.25 / np.sqrt(5)


def test_master_flat_is_normalised_and_divides_out(truth):
    bias = master_bias(biases(truth))
    dark = master_dark(darks(truth), bias=bias)
    flat = master_flat(flats(truth), bias=bias, dark=dark)
    good = ~flat.mask
    assert np.median(flat.data[good]) == pytest.approx(1.0, abs=1e-6)
    response = truth["response"] / np.median(truth["response"][truth["response"] > 0])
    np.testing.assert_allclose(flat.data[good], response[good], atol=2e-3)
    assert flat.mask[3, 4] and flat.mask.sum() == 1  # the dead pixel, masked (counted, never divided by)
    sky = 1000.0 * truth["response"]
    science = Frame(truth["bias"] + truth["rate"] * 10.0 + sky, meta("science", 10.0))
    reduced = calibrate(science, bias=bias, dark=dark, flat=flat)
    flat_sky = reduced.data[~reduced.mask]
    assert np.std(flat_sky) / np.median(flat_sky) < 0.005  # a flat sky after flat-fielding (was ~3 %)
    assert np.std(sky[sky > 0]) / np.median(sky) > 0.02
    assert reduced.mask.sum() == 1 and reduced.mask[3, 4]


def test_masters_and_calibration_accept_paths(tmp_path, truth):
    bias_frames = [Frame(np.round(f.data), f.meta) for f in biases(truth)]
    bias_paths = [write_frame(tmp_path / f"b{i}.fits", f, "iran") for i, f in enumerate(bias_frames)]
    master = write_frame(tmp_path / "master_bias.fits", master_bias(bias_paths), "iran")
    science = write_frame(tmp_path / "sci.fits", Frame(np.round(truth["bias"] + 300.0), meta("science", 5.0)), "iran")
    reduced = calibrate(science, bias=master)
    assert np.median(reduced.data) == pytest.approx(300.0, abs=2.0)


# --- NaN / inf ----------------------------------------------------------------------------------
def test_nan_and_inf_pixels_are_masked_and_counted(truth, caplog):
    frames = biases(truth)
    for f in frames:
        f.data[5, 6] = np.nan  # dead in every frame: masked in the master
    frames[1].data[2, 2] = np.inf  # bad in one frame only: the median of the others
    frames[2].mask = np.zeros(SHAPE, bool)
    frames[2].mask[8, 8] = True
    frames[2].data[8, 8] = 1e9  # a masked pixel's value is never used
    with caplog.at_level(logging.INFO, logger="aposos.ingest"):
        master = master_bias(frames)
    assert master.mask is not None and master.mask.sum() == 1 and master.mask[5, 6]
    assert "1 masked pixels" in caplog.text
    assert np.isfinite(master.data).all()
    others = [f.data[2, 2] for i, f in enumerate(frames) if i != 1]
    assert master.data[2, 2] == np.median(others)
    assert master.data[8, 8] == np.median([f.data[8, 8] for i, f in enumerate(frames) if i != 2])
    science = Frame(truth["bias"] + 100.0, meta("science", 5.0))
    reduced = calibrate(science, bias=master)
    assert reduced.mask.sum() == 1 and reduced.mask[5, 6] and np.isfinite(reduced.data).all()


def test_read_frame_masks_nan_pixels(tmp_path, truth):
    data = truth["bias"].copy()
    data[1, 1], data[2, 3], data[4, 4] = np.nan, np.inf, -np.inf
    from aposos.ingest import read_frame

    frame = read_frame(write_frame(tmp_path / "f.fits", Frame(data, meta("bias", 0.0)), "iran"))
    assert frame.mask.sum() == 3 and np.isfinite(frame.data).all()


# --- errors ------------------------------------------------------------------------------------
@pytest.fixture
def files(tmp_path, truth):
    """Paths of written bias, dark, flat and science frames (so that errors name files)."""
    def write(name, frame):
        return write_frame(tmp_path / f"{name}.fits", Frame(np.round(frame.data), frame.meta), "iran")

    out = {f"bias{i}": write(f"bias{i}", f) for i, f in enumerate(biases(truth))}
    out.update({f"dark{i}": write(f"dark{i}", f) for i, f in enumerate(darks(truth))})
    out["science"] = write("science", Frame(truth["bias"] + 100, meta("science", 5.0)))
    small = Frame(np.full((10, 10), 500.0, np.float32), meta("bias", 0.0))
    out["small_bias"] = write("small_bias", small)
    out["zero_dark"] = write("zero_dark", Frame(np.full(SHAPE, 500.0, np.float32), meta("dark", 0.0)))
    out["dark_flat"] = write("dark_flat", Frame(truth["bias"] - 100.0, meta("flat", 1.0)))
    return out


def _raises(call, path, key, problem):
    with pytest.raises(AposError) as info:
        call()
    msg = str(info.value)
    assert str(path) in msg and f"key {key!r}" in msg and problem in msg, msg


def test_calibration_errors(files):
    b = [files[f"bias{i}"] for i in range(5)]
    d = [files[f"dark{i}"] for i in range(5)]
    _raises(lambda: master_bias(b[:2]), b[0], "image_type", "2 bias frame(s) given, at least 3")
    _raises(lambda: master_bias([*b[:3], files["small_bias"]]), files["small_bias"], "NAXIS", "shape (10, 10) differs from (30, 40)")
    _raises(lambda: master_bias([*b[:3], d[0]]), d[0], "image_type", "is a 'dark' frame, not 'bias'")
    _raises(lambda: master_dark([*d[:3], files["zero_dark"]]), files["zero_dark"], "exposure_s", "zero exposure cannot give a dark rate")
    _raises(lambda: master_flat([files["dark_flat"]] * 3, bias=master_bias(b)), files["dark_flat"], "data", "is not positive")
    _raises(lambda: calibrate(files["science"], bias=files["small_bias"]), files["science"], "NAXIS", "bias master shape (10, 10) differs")
    _raises(lambda: calibrate(files["science"], bias=d[0]), d[0], "image_type", "given as the bias master")
    _raises(lambda: calibrate(files["science"], dark=b[0]), b[0], "image_type", "given as the dark master")
    _raises(lambda: calibrate(files["science"], flat=d[0]), d[0], "image_type", "given as the flat master")
    with pytest.raises(AposError, match="0 bias frame"):
        master_bias([])


# --- night inventory -------------------------------------------------------------------------
def test_scan_night_lists_good_bad_and_skips_other_files(tmp_path, truth):
    night = tmp_path / "night"
    night.mkdir()
    good_iran = write_frame(night / "a_iran.fits", Frame(np.round(truth["bias"] + 200), meta("science", 5.0)), "iran")
    good_peru = write_frame(night / "b_peru.fits.fz", Frame(np.round(truth["bias"]), meta("bias", 0.0, station="peru")), "peru")
    good_generic = write_frame(night / "c_other.fit", Frame(np.round(truth["bias"] + 50), meta("dark", 30.0, station=None)), None)
    not_fits = night / "d_notes.fits"
    not_fits.write_text("observing log, not an image\n")
    truncated = night / "e_cut.fits"
    truncated.write_bytes(good_iran.read_bytes()[:-2880])
    (night / "README.txt").write_text("ignored: not a FITS name")
    (night / "sub").mkdir()
    table = scan_night(night)
    assert list(table["path"]) == [str(p) for p in (good_iran, good_peru, good_generic, not_fits, truncated)]
    assert list(table["status"]) == ["ok", "ok", "ok", "failed", "failed"]
    assert list(table["station"]) == ["iran", "peru", "", "", ""]
    assert list(table["image_type"]) == ["science", "bias", "dark", "", ""]
    assert list(table["exposure_s"][:3]) == [5.0, 0.0, 30.0] and np.isnan(table["exposure_s"][3:]).all()
    assert abs((table["t_start"][0] - T0).to_value("s")) < 1e-6
    assert table["t_start"].mask.tolist() == [False, False, False, True, True]
    assert table["reason"][3].startswith(str(not_fits)) and "not a FITS file" in table["reason"][3]
    assert table["reason"][4].startswith(str(truncated)) and "truncated" in table["reason"][4]
    assert list(table["reason"][:3]) == ["", "", ""]
    # headers only (the batch's scan): the same metadata (astropy sees the truncation already)
    quick = scan_night(night, pixels=False)
    assert list(quick["status"]) == list(table["status"])
    for col in ("station", "image_type", "exposure_s"):
        assert list(quick[col][:3]) == list(table[col][:3])
    assert (quick["t_start"][:3] - table["t_start"][:3]).to_value("s").tolist() == [0.0, 0.0, 0.0]
    for path in (good_iran, good_peru, good_generic):
        assert read_meta(path, pixels=False) == read_meta(path)


def test_scan_night_with_a_station_forces_it(tmp_path, truth):
    night = tmp_path / "night"
    night.mkdir()
    write_frame(night / "a.fits", Frame(np.round(truth["bias"]), meta("bias", 0.0)), "iran")
    write_frame(night / "b.fits", Frame(np.round(truth["bias"]), meta("bias", 0.0, station="peru")), "peru")
    table = scan_night(night, station="iran")
    assert list(table["status"]) == ["ok", "failed"] and "is not station 'iran'" in table["reason"][1]


def test_scan_night_empty_and_missing_folder(tmp_path):
    assert len(scan_night(tmp_path)) == 0
    with pytest.raises(AposError, match="not a folder"):
        scan_night(tmp_path / "absent")
