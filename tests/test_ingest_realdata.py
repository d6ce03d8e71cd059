"""Real frames: the BASP sample night (../shared/realdata/BASP, GEO satellites from Loiano).

The expected values below are copied from the FITS cards (GPS-timed DATE-OBS = exposure start,
EXPTIME, J2000 RA/DEC as sexagesimal strings, OBJECT = NORAD id) and converted by hand / with
astropy's own Angle parser, not with aposos code. Tests skip with a reason where the data is absent.
"""

import numpy as np
import pytest
from astropy.coordinates import Angle
from astropy.io import fits
from astropy.time import Time, TimeDelta

from aposos.ingest import calibrate, master_bias, read_frame, scan_night
from conftest import realdata

#: frame number -> (DATE-OBS, EXPTIME s, RA hh:mm:ss, DEC dd:mm:ss, NORAD id)
SCIENCE = {
    113: ("2021-07-29T20:06:55.931", 8.02, "19:09:57.4", "-06:43:55.9", "44800"),
    114: ("2021-07-29T20:08:55.657", 8.019, "19:11:57.4", "-06:43:58.5", "44800"),
    115: ("2021-07-29T20:10:56.493", 8.019, "19:13:58.4", "-06:44:01.1", "44800"),
    116: ("2021-07-29T20:12:56.233", 8.019, "19:15:58.4", "-06:44:04.7", "44800"),
    117: ("2021-07-29T20:14:55.981", 8.019, "19:17:58.4", "-06:44:07.2", "44800"),
    118: ("2021-07-29T20:16:56.601", 8.019, "19:19:59.4", "-06:44:09.8", "44800"),
    119: ("2021-07-29T20:18:55.570", 8.019, "19:21:59.4", "-06:44:12.4", "44800"),
    120: ("2021-07-29T20:24:56.854", 8.018, "18:55:12.3", "-06:44:24.1", "40364"),
    121: ("2021-07-29T20:26:55.077", 8.019, "18:57:14.3", "-06:44:26.9", "40364"),
}
BIAS = range(101, 111)


def basp(number):
    return realdata("BASP", "Sample_Images", f"SST20210729_{number}.fit")


@pytest.mark.parametrize("number", sorted(SCIENCE))
def test_basp_science_frame(number):
    date_obs, exptime, ra, dec, norad = SCIENCE[number]
    path = basp(number)
    frame = read_frame(path)
    meta = frame.meta
    t_start = Time(date_obs, scale="utc")
    assert abs((meta.t_start - t_start).to_value("s")) < 1e-6
    assert abs((meta.t_mid - (t_start + TimeDelta(exptime / 2, format="sec"))).to_value("s")) < 1e-6
    assert abs((meta.t_end - (t_start + TimeDelta(exptime, format="sec"))).to_value("s")) < 1e-6
    assert meta.exposure_s == exptime and abs(meta.exposure_s - 8.02) <= 0.0021
    assert meta.time_flags["time_key"] == "DATE-OBS" and meta.time_flags["refers_to"] == "start"
    # the header's JDMID is compared, not used: it is 0.9-3.4 s earlier than DATE-OBS + EXPTIME/2
    assert -3.5 < meta.time_flags["JDMID_minus_t_mid_s"] < -0.5
    ra_deg, dec_deg = Angle(ra, unit="hourangle").deg, Angle(dec, unit="deg").deg
    assert abs(meta.pointing_ra_deg - ra_deg) * 3600 < 0.01 and abs(meta.pointing_dec_deg - dec_deg) * 3600 < 0.01
    assert meta.object_id == norad and meta.image_type == "science" and meta.station is None
    assert meta.tracking == "unknown"  # the header does not say (sidereal per the README): not guessed
    raw = fits.getdata(path)
    assert frame.shape == (1300, 1340) and frame.mask is None
    np.testing.assert_array_equal(frame.data, raw.astype(np.float32))


def test_basp_bias_frames_load_as_bias():
    for number in BIAS:
        meta = read_frame(basp(number)).meta
        assert meta.image_type == "bias" and meta.exposure_s == 0.0 and meta.object_id is None
        assert meta.t_start.isot == "2021-07-29T00:00:00.000" and meta.time_flags["date_only"] is True


def test_basp_master_bias_lowers_science_by_the_bias_level():
    paths = [basp(n) for n in BIAS]
    stack = np.stack([fits.getdata(p).astype(np.float32) for p in paths])
    expected_master = np.median(stack, axis=0)
    master = master_bias(paths)
    np.testing.assert_array_equal(master.data, expected_master)
    assert master.mask is None
    bias_level = float(np.median(expected_master))
    assert 80.0 < bias_level < 100.0  # ADU (90 in these frames)
    science_path = basp(113)
    science = fits.getdata(science_path).astype(np.float32)
    reduced = calibrate(read_frame(science_path), bias=master)
    np.testing.assert_array_equal(reduced.data, science - expected_master)
    drop = float(np.median(science) - np.median(reduced.data))
    assert np.median(reduced.data) == np.median(science - expected_master)
    assert abs(drop - bias_level) < 1.0


def test_basp_scan_night():
    folder = realdata("BASP", "Sample_Images")
    table = scan_night(folder)
    assert len(table) == 19 and set(table["status"]) == {"ok"}
    assert list(table["image_type"]).count("bias") == 10 and list(table["image_type"]).count("science") == 9
