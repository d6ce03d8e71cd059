"""Station dialects: FrameMeta -> header_for -> write_frame -> read_frame round trips, and the
timing conventions checked against times computed by hand from the cards as written."""

from decimal import Decimal

import numpy as np
import pytest
from astropy.io import fits
from astropy.time import Time, TimeDelta

from aposos import AposError
from aposos.config import STATIONS_DIR, load_station
from aposos.ingest import header_for, read_frame, read_meta, recognise_station, write_frame
from aposos.model import Frame, FrameMeta

STATIONS = ("iran", "pakistan", "peru")
TELESCOP = {"iran": "APOSOS-IR", "pakistan": "APOSOS-PK", "peru": "APOSOS-PE"}
US = 1e-6  # one microsecond, s


def sec(value):
    return TimeDelta(value, format="sec")


def meta_for(station, t_start="2026-11-21T18:03:12.123456", exposure_s=2.5, **changes):
    """FrameMeta of an exposure opening at ``t_start`` (UTC), times derived by plain addition."""
    t0 = Time(t_start, scale="utc")
    fields = dict(
        path="",
        station=station,
        t_start=t0,
        t_mid=t0 + sec(exposure_s / 2),
        t_end=t0 + sec(exposure_s),
        exposure_s=exposure_s,
        image_type="science",
        tracking="sidereal",
        pointing_ra_deg=83.6330833,
        pointing_dec_deg=-22.0145123,
        gain_e_per_adu=1.7,
        binning=2,
        object_id="44800",
        filter="Clear",
    )
    fields.update(changes)
    return FrameMeta(**fields)


def pixels(shape=(24, 32), seed=1):
    """Integer ADU in float32, including 0 and 65535 (the uint16 extremes)."""
    data = np.random.default_rng(seed).integers(0, 65536, shape).astype(np.float32)
    data[0, 0], data[-1, -1] = 0, 65535
    return data


def sky_offset_arcsec(ra1, dec1, ra2, dec2):
    """(RA*cos(dec), Dec) differences in arcsec, RA wrapped to +-180 deg."""
    dra = (ra1 - ra2 + 180.0) % 360.0 - 180.0
    return dra * np.cos(np.radians(dec2)) * 3600.0, (dec1 - dec2) * 3600.0


def assert_same_times(meta, truth):
    for name in ("t_start", "t_mid", "t_end"):
        err = abs((getattr(meta, name) - getattr(truth, name)).to_value("s"))
        assert err < 0.5 * US, f"{name} off by {err / US:.3f} us"
        assert getattr(meta, name).scale == "utc"


# --- round trips ---------------------------------------------------------------------------
@pytest.mark.parametrize("station", STATIONS)
@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize(
    "changes",
    [
        dict(),
        dict(tracking="rate", rate_ra_arcsec_s=-123.456789, rate_dec_arcsec_s=45.5, object_id="GEO-TEST 7"),
        dict(tracking="unknown", pointing_ra_deg=359.9999999, pointing_dec_deg=89.9876543, binning=1),
        dict(image_type="dark", exposure_s=30.0, object_id=None, filter=None),
        dict(image_type="bias", exposure_s=0.0, pointing_ra_deg=None, pointing_dec_deg=None, object_id=None),
        dict(image_type="flat", exposure_s=0.125, t_start="2026-12-31T23:59:59.999999", pointing_ra_deg=0.0, pointing_dec_deg=-89.5),
    ],
    ids=["sidereal", "rate", "unknown-wrap", "dark", "bias", "flat-midnight"],
)
def test_round_trip(tmp_path, station, compress, changes):
    truth = meta_for(station, **changes)
    data = pixels()
    path = write_frame(tmp_path / f"{station}.fits", Frame(data, truth), station, compress=compress)
    with fits.open(path) as hdul:
        assert isinstance(hdul[-1], fits.CompImageHDU) is compress
    frame = read_frame(path)
    got = frame.meta
    assert got.station == station and got.path == str(path)
    assert_same_times(got, truth)
    assert abs(got.exposure_s - truth.exposure_s) < 1e-9
    if truth.pointing_ra_deg is None:
        assert got.pointing_ra_deg is None and got.pointing_dec_deg is None
    else:
        d_ra, d_dec = sky_offset_arcsec(got.pointing_ra_deg, got.pointing_dec_deg, truth.pointing_ra_deg, truth.pointing_dec_deg)
        assert abs(d_ra) < 0.01 and abs(d_dec) < 0.01
        assert 0.0 <= got.pointing_ra_deg < 360.0
    assert got.tracking == truth.tracking
    if truth.tracking == "rate":
        assert got.rate_ra_arcsec_s == pytest.approx(truth.rate_ra_arcsec_s, abs=1e-9)
        assert got.rate_dec_arcsec_s == pytest.approx(truth.rate_dec_arcsec_s, abs=1e-9)
    else:
        assert got.rate_ra_arcsec_s is None and got.rate_dec_arcsec_s is None
    assert got.object_id == truth.object_id
    assert got.image_type == truth.image_type
    assert got.binning == truth.binning
    assert got.gain_e_per_adu == truth.gain_e_per_adu
    assert got.filter == truth.filter
    # camera figures the dialects do not write come from the station config
    config = load_station(station)
    assert got.read_noise_e == config.camera["read_noise_e"] and got.saturation_adu == config.camera["saturation_adu"]
    assert (got.site_lat_deg, got.site_lon_deg, got.site_height_m) == (config.lat_deg, config.lon_deg, config.height_m)
    # integer ADU survive exactly (uint16 storage, lossless RICE when compressed)
    assert frame.data.dtype == np.float32 and frame.mask is None
    np.testing.assert_array_equal(frame.data, data)


@pytest.mark.parametrize("station", STATIONS)
def test_round_trip_off_grid_time_rounds_to_the_microsecond(tmp_path, station):
    """A t_start between microseconds comes back within half a microsecond (rounded, not truncated)."""
    truth = meta_for(station, t_start="2026-11-21T18:03:12.1234569")
    meta = read_frame(write_frame(tmp_path / "f.fits", Frame(pixels(), truth), station)).meta
    for name in ("t_start", "t_mid", "t_end"):
        assert abs((getattr(meta, name) - getattr(truth, name)).to_value("s")) <= 0.5 * US + 1e-9


@pytest.mark.parametrize("station", STATIONS)
def test_round_trip_float_pixels_and_nan(tmp_path, station):
    data = np.random.default_rng(3).normal(1000.0, 7.0, (20, 30)).astype(np.float32)
    data[2, 3], data[4, 5] = np.nan, np.inf
    frame = read_frame(write_frame(tmp_path / "f.fits", Frame(data, meta_for(station)), station))
    good = np.isfinite(data)
    np.testing.assert_array_equal(frame.data[good], data[good])  # lossless GZIP, no quantisation
    assert frame.mask.sum() == 2 and frame.mask[2, 3] and frame.mask[4, 5]
    assert frame.data[2, 3] == np.median(data[good])


@pytest.mark.parametrize("station", STATIONS)
def test_leap_second_start(tmp_path, station):
    """An exposure opening inside the leap second 2016-12-31T23:59:60 keeps its UTC label."""
    truth = meta_for(station, t_start="2016-12-31T23:59:60.250000", exposure_s=1.0)
    meta = read_frame(write_frame(tmp_path / "f.fits", Frame(pixels(), truth), station)).meta
    assert_same_times(meta, truth)
    assert meta.t_end.isot == "2017-01-01T00:00:00.250"  # 1 s later, across the leap second


def test_peru_gps_flags_round_trip(tmp_path):
    truth = meta_for("peru", time_flags={"gps_lock": False, "gps_satellites": 11})
    meta = read_frame(write_frame(tmp_path / "f.fits", Frame(pixels(), truth), "peru")).meta
    assert meta.time_flags["gps_lock"] is False and meta.time_flags["gps_satellites"] == 11
    assert meta.time_flags["time_key"] == "MJD-MID" and meta.time_flags["refers_to"] == "mid"


@pytest.mark.parametrize("station", STATIONS)
@pytest.mark.filterwarnings("ignore::astropy.wcs.FITSFixedWarning")
def test_write_frame_with_wcs_adds_its_keywords_but_not_its_time(tmp_path, station):
    from astropy.wcs import WCS

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [83.63, -22.01]
    wcs.wcs.crpix = [16.5, 12.5]
    wcs.wcs.cdelt = [-7e-4, 7e-4]
    wcs.wcs.dateobs = "2026-11-21T18:00:00"  # a WCS time must not replace the dialect's stamp
    truth = meta_for(station)
    path = write_frame(tmp_path / "f.fits", Frame(pixels(), truth), station, wcs=wcs)
    frame = read_frame(path)
    assert WCS(frame.header).wcs.crval == pytest.approx([83.63, -22.01])
    assert frame.pointing_ra_deg == pytest.approx(83.6330833, abs=1e-6)  # pointing hint stays the dialect's
    assert_same_times(frame.meta, truth)


# --- the dialects as written (hand-computed times) ---------------------------------------
def _station_file(tmp_path, station, cards, data=None, compress=False):
    """A file with the station's own header (from header_for) edited by ``cards``."""
    header = header_for(meta_for(station), station)
    for key, value in cards.items():
        if value is None:
            del header[key]
        elif isinstance(value, fits.Card):
            del header[key]
            header.append(value)
        else:
            header[key] = value
    data = pixels() if data is None else data
    path = tmp_path / f"{station}.fits"
    if compress:
        fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data.astype(np.uint16), header=header)]).writeto(path)
    else:
        fits.PrimaryHDU(data.astype(np.uint16), header=header).writeto(path)
    return path


def test_iran_header_is_start_of_exposure(tmp_path):
    header = header_for(meta_for("iran"), "iran")
    assert header["DATE-OBS"] == "2026-11-21T18:03:12.123456" and header["EXPTIME"] == 2.5
    assert header["RA"] == "05:34:31.9400" and header["DEC"] == "-22:00:52.244" and header["IMAGETYP"] == "LIGHT"
    path = _station_file(tmp_path, "iran", {"DATE-OBS": "2026-11-21T23:59:59.000000", "EXPTIME": 4.0})
    meta = read_frame(path).meta
    assert meta.t_start.isot == "2026-11-21T23:59:59.000"
    assert meta.t_mid.isot == "2026-11-22T00:00:01.000"
    assert meta.t_end.isot == "2026-11-22T00:00:03.000"


def test_pakistan_header_adds_the_12_ms_latency(tmp_path):
    header = header_for(meta_for("pakistan"), "pakistan")
    # the time stamp precedes the shutter opening by the measured latency, 0.012 s
    assert header["DATE-OBS"] == "2026-11-21" and header["TIME-OBS"] == "18:03:12.111456"
    assert header["EXPOSURE"] == 2.5 and header["OBJCTRA"] == "05 34 31.9400" and header["OBJCTDEC"] == "-22 00 52.244"
    path = _station_file(tmp_path, "pakistan", {"DATE-OBS": "2026-11-21", "TIME-OBS": "23:59:59.990000", "EXPOSURE": 1.0})
    meta = read_frame(path).meta
    assert abs((meta.t_start - Time("2026-11-22T00:00:00.002", scale="utc")).to_value("s")) < 0.01 * US
    assert abs((meta.t_mid - Time("2026-11-22T00:00:00.502", scale="utc")).to_value("s")) < 0.01 * US
    assert abs((meta.t_end - Time("2026-11-22T00:00:01.002", scale="utc")).to_value("s")) < 0.01 * US
    assert meta.time_flags["latency_s"] == 0.012


def test_peru_header_is_mid_exposure_mjd_and_milliseconds(tmp_path):
    header = header_for(meta_for("peru"), "peru")
    assert header["EXPMS"] == 2500.0 and header["FRAMETYP"] == "SCIENCE" and header["BINNING"] == "2x2"
    # MJD-MID = 61365 + 18:03:13.373456 (the stamp is mid-exposure: start + 1.25 s), 12 decimals
    written = header.cards["MJD-MID"].image.split("=")[1].split("/")[0].strip()
    assert Decimal(written) == (61365 + Decimal("64993.373456") / 86400).quantize(Decimal("1e-12"))
    # MJD-MID = 61365.75 is 18:00:00 UTC; a 3 s exposure opened 1.5 s before
    path = _station_file(tmp_path, "peru", {"MJD-MID": 61365.75, "EXPMS": 3000.0})
    meta = read_frame(path).meta
    assert meta.t_start.isot == "2026-11-21T17:59:58.500"
    assert meta.t_mid.isot == "2026-11-21T18:00:00.000"
    assert meta.t_end.isot == "2026-11-21T18:00:01.500"
    assert meta.exposure_s == 3.0


@pytest.mark.parametrize("compress", [False, True])
def test_peru_mjd_keeps_the_digits_of_the_card(tmp_path, compress):
    """12 decimals of MJD resolve 86 ns; a float64 MJD would only resolve ~0.6 us."""
    card = fits.Card.fromstring(f"{'MJD-MID':8s}= {'61365.500000000012':>20s} / [d] UTC MJD")
    path = _station_file(tmp_path, "peru", {"MJD-MID": card, "EXPMS": 2.0}, compress=compress)
    meta = read_frame(path).meta
    noon = Time("2026-11-21T12:00:00", scale="utc")
    assert (meta.t_mid - noon).to_value("s") == pytest.approx(12e-12 * 86400, abs=1e-9)  # 1.0368 us
    assert (meta.t_start - noon).to_value("s") == pytest.approx(12e-12 * 86400 - 1e-3, abs=1e-9)


# --- which station ------------------------------------------------------------------------
@pytest.mark.parametrize("station", STATIONS)
def test_station_recognised_from_telescop(tmp_path, station):
    header = header_for(meta_for(station), station)
    assert header["TELESCOP"] == TELESCOP[station]
    assert recognise_station(header).name == station
    assert recognise_station(fits.Header([("TELESCOP", "Mt. Orzale 152 cm. Telescope")])) is None
    assert recognise_station(fits.Header()) is None
    path = write_frame(tmp_path / "f.fits", Frame(pixels(), meta_for(station)), station)
    assert read_frame(path, station).station == station  # naming the right station changes nothing
    assert read_meta(path) == read_frame(path).meta
    assert read_frame(path, load_station(station)).station == station


@pytest.mark.parametrize("written, named", [("iran", "pakistan"), ("pakistan", "peru"), ("peru", "iran")])
def test_telescop_mismatch_is_an_error(tmp_path, written, named):
    path = write_frame(tmp_path / "f.fits", Frame(pixels(), meta_for(written)), written)
    with pytest.raises(AposError) as info:
        read_frame(path, named)
    msg = str(info.value)
    assert str(path) in msg and "TELESCOP" in msg and TELESCOP[written] in msg and named in msg


def test_station_argument_overrides_the_configured_convention(tmp_path):
    """A station config given by path is used instead of the recognised one (here: latency 0.5 s)."""
    text = (STATIONS_DIR / "iran.toml").read_text().replace("latency_s = 0.0 ", "latency_s = 0.5 ")
    assert "latency_s = 0.5" in text
    custom = tmp_path / "iran.toml"
    custom.write_text(text)
    path = write_frame(tmp_path / "f.fits", Frame(pixels(), meta_for("iran")), "iran")
    default, overridden = read_frame(path).meta, read_frame(path, custom).meta
    assert (overridden.t_start - default.t_start).to_value("s") == pytest.approx(0.5, abs=1e-9)
    assert overridden.time_flags["latency_s"] == 0.5


def test_unknown_dialect_in_a_station_config_is_an_error(tmp_path):
    custom = tmp_path / "iran.toml"
    custom.write_text((STATIONS_DIR / "iran.toml").read_text().replace('dialect = "iran"', 'dialect = "mars"'))
    path = write_frame(tmp_path / "f.fits", Frame(pixels(), meta_for("iran")), "iran")
    with pytest.raises(AposError) as info:
        read_frame(path, custom)
    msg = str(info.value)
    assert msg.startswith(str(path)) and str(custom) in msg and "header.dialect" in msg and "mars" in msg
    with pytest.raises(AposError, match="header.dialect"):  # caught when the config is loaded
        load_station(custom)


def test_generic_writer_round_trip(tmp_path):
    truth = meta_for(None, site_lat_deg=44.2591667, site_lon_deg=11.334444, site_height_m=785.0, saturation_adu=60000.0, read_noise_e=4.5)
    frame = read_frame(write_frame(tmp_path / "g.fits", Frame(pixels(), truth), None))
    meta = frame.meta
    assert meta.station is None
    assert_same_times(meta, truth)
    d_ra, d_dec = sky_offset_arcsec(meta.pointing_ra_deg, meta.pointing_dec_deg, truth.pointing_ra_deg, truth.pointing_dec_deg)
    assert abs(d_ra) < 0.01 and abs(d_dec) < 0.01
    assert (meta.site_lat_deg, meta.site_lon_deg, meta.site_height_m) == (44.2591667, 11.334444, 785.0)
    assert (meta.gain_e_per_adu, meta.read_noise_e, meta.saturation_adu, meta.binning) == (1.7, 4.5, 60000.0, 2)
    assert meta.object_id == "44800" and meta.image_type == "science" and meta.tracking == "unknown"
