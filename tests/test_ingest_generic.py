"""Generic dialect: the header conventions of other observatories, each checked against values
worked out by hand (times, sexagesimal angles, WGS84 geodesy)."""

import math
from decimal import Decimal

import numpy as np
import pytest
from astropy.coordinates import EarthLocation
from astropy.io import fits
from astropy.time import Time

from aposos.ingest import read_frame

T0 = Time("2024-03-05T01:02:03.250", scale="utc")  # 3723.25 s after midnight UTC
US = 1e-6


def card(key, text, comment=""):
    """A card written exactly as ``text`` (keeps all the digits of a number)."""
    return fits.Card.fromstring(f"{key:8s}= {text:>20s} / {comment}")


def write(path, cards, data=None, layout="primary"):
    """A FITS file with ``cards`` (dict or list of cards) and small uint16 data.

    layout: 'primary' | 'extension' (empty primary + image extension) | 'fz' (tile-compressed)
    | 'table-first' (binary table extension before the image extension).
    """
    header = fits.Header()
    for item in cards.items() if isinstance(cards, dict) else cards:
        header.append(item if isinstance(item, fits.Card) else fits.Card(*item), end=True)
    data = np.arange(8 * 9, dtype=np.uint16).reshape(8, 9) + 100 if data is None else data
    if layout == "primary":
        hdul = fits.HDUList([fits.PrimaryHDU(data, header=header)])
    elif layout == "extension":
        hdul = fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data, header=header)])
    elif layout == "fz":
        hdul = fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data, header=header, compression_type="RICE_1")])
    elif layout == "table-first":
        table = fits.BinTableHDU.from_columns([fits.Column(name="a", format="E", array=np.zeros(3))])
        hdul = fits.HDUList([fits.PrimaryHDU(), table, fits.ImageHDU(data, header=header)])
    hdul.writeto(path)
    return path


def read(tmp_path, cards, name="f.fits", **kw):
    return read_frame(write(tmp_path / name, cards, **kw))


def us_from(t, ref):
    return (t - ref).to_value("s") / US


# --- time -----------------------------------------------------------------------------------
_frac = Decimal("3723.25") / 86400  # day fraction of T0
MJD_TEXT = str((60374 + _frac).quantize(Decimal("1e-12")))
JD_TEXT = str((Decimal("2460374.5") + _frac).quantize(Decimal("1e-12")))


@pytest.mark.parametrize(
    "cards, key, refers_to",
    [
        ({"DATE-OBS": "2024-03-05T01:02:03.250", "EXPTIME": 5.0}, "DATE-OBS", "start"),
        ({"DATE-OBS": "2024-03-05T01:02:03.250Z", "EXPTIME": 5.0}, "DATE-OBS", "start"),
        ({"DATE-OBS": "2024-03-05", "TIME-OBS": "01:02:03.25", "EXPTIME": 5.0}, "DATE-OBS+TIME-OBS", "start"),
        ({"DATE-OBS": "2024-03-05", "UT": "01:02:03.250", "EXPTIME": 5.0}, "DATE-OBS+UT", "start"),
        ({"DATE-OBS": "2024-03-05", "UTSTART": "01:02:03.25", "EXPTIME": 5.0}, "DATE-OBS+UTSTART", "start"),
        ({"DATE-OBS": "05/03/24", "TIME-OBS": "01:02:03.25", "EXPTIME": 5.0}, "DATE-OBS+TIME-OBS", "start"),  # pre-2000 FITS form
        ({"DATE-OBS": "2024-03-05T01:02:03.250", "UT": "01:02:03.250", "EXPTIME": 5.0}, "DATE-OBS", "start"),  # agreeing pair
        ([card("MJD-OBS", MJD_TEXT), ("EXPTIME", 5.0)], "MJD-OBS", "start"),
        ([card("JD", JD_TEXT), ("EXPTIME", 5.0)], "JD", "start"),
        ({"DATE-BEG": "2024-03-05T01:02:03.25", "EXPTIME": 5.0}, "DATE-BEG", "start"),
        ({"DATE-AVG": "2024-03-05T01:02:05.75", "EXPTIME": 5.0}, "DATE-AVG", "mid"),
        ({"DATE-END": "2024-03-05T01:02:08.25", "EXPTIME": 5.0}, "DATE-END", "end"),
        ([("DATE-OBS", "2024-03-05T01:02:05.75", "UTC at mid-exposure"), ("EXPTIME", 5.0)], "DATE-OBS", "mid"),
        ([("DATE-OBS", "2024-03-05T01:02:08.25", "time at end of exposure"), ("EXPTIME", 5.0)], "DATE-OBS", "end"),
        ([("DATE-OBS", "2024-03-05"), ("TIME-OBS", "01:02:05.75", "UT at mid exposure"), ("EXPTIME", 5.0)], "DATE-OBS+TIME-OBS", "mid"),
        ({"DATE-OBS": "2024-03-05T01:02:21.250", "TIMESYS": "GPS", "EXPTIME": 5.0}, "DATE-OBS", "start"),  # GPS = UTC + 18 s
        ({"DATE-OBS": "2024-03-05T01:02:40.250", "TIMESYS": "TAI", "EXPTIME": 5.0}, "DATE-OBS", "start"),  # TAI = UTC + 37 s
        ({"DATE-OBS": "2024-03-05T01:03:12.434", "TIMESYS": "TT", "EXPTIME": 5.0}, "DATE-OBS", "start"),  # TT = TAI + 32.184 s
        ({"DATE-OBS": "2024-03-05T01:02:03.250", "EXPOSURE": 5.0}, "DATE-OBS", "start"),
    ],
    ids=["iso", "iso-Z", "date+TIME-OBS", "date+UT", "date+UTSTART", "DD/MM/YY", "iso+UT", "MJD-OBS", "JD", "DATE-BEG",
         "DATE-AVG", "DATE-END", "comment-mid", "comment-end", "TIME-OBS-comment-mid", "GPS", "TAI", "TT", "EXPOSURE"],
)
def test_generic_times(tmp_path, cards, key, refers_to):
    meta = read(tmp_path, cards).meta
    assert meta.station is None and meta.exposure_s == 5.0
    assert abs(us_from(meta.t_start, T0)) < 1.0, meta.t_start.isot
    assert abs(us_from(meta.t_mid, T0) - 2.5e6) < 1.0
    assert abs(us_from(meta.t_end, T0) - 5.0e6) < 1.0
    assert meta.time_flags["time_key"] == key and meta.time_flags["refers_to"] == refers_to


@pytest.mark.parametrize("cards", [{"DATE-OBS": "2016-12-31T23:59:60.5"}, {"DATE-OBS": "2016-12-31", "UT": "23:59:60.5"}])
def test_leap_second_is_accepted_on_its_day(tmp_path, cards):
    meta = read(tmp_path, {**cards, "EXPTIME": 1.0}).meta
    assert meta.t_start.isot == "2016-12-31T23:59:60.500" and meta.t_end.isot == "2017-01-01T00:00:00.500"


def test_secondary_time_keys_are_compared_not_used(tmp_path):
    # BASP-like: DATE-OBS at start, JDMID (mid-exposure JD) 1.5 s early
    jdmid = Decimal(JD_TEXT) + (Decimal("2.5") - Decimal("1.5")) / 86400
    cards = [("DATE-OBS", "2024-03-05T01:02:03.250"), ("EXPTIME", 5.0), card("JDMID", f"{jdmid:.12f}", "Julian date at middle exposure")]
    meta = read(tmp_path, cards).meta
    assert abs(us_from(meta.t_start, T0)) < 1.0
    assert meta.time_flags["JDMID_minus_t_mid_s"] == pytest.approx(-1.5, abs=1e-4)


def test_bias_with_a_date_only_is_accepted_and_flagged(tmp_path):
    meta = read(tmp_path, {"DATE-OBS": "2021-07-29", "EXPTIME": 0.0, "IMAGETYP": "zero"}).meta
    assert meta.image_type == "bias" and meta.exposure_s == 0.0
    assert meta.t_start.isot == "2021-07-29T00:00:00.000" and meta.time_flags["date_only"] is True


@pytest.mark.parametrize(
    "word, kind",
    [("object", "science"), ("Light Frame", "science"), ("zero", "bias"), ("Bias Frame", "bias"),
     ("dark", "dark"), ("Flat Field", "flat"), ("SKYFLAT", "flat")],
)
def test_generic_image_types(tmp_path, word, kind):
    assert read(tmp_path, {"DATE-OBS": "2024-03-05T01:02:03", "EXPTIME": 5.0, "IMAGETYP": word}).image_type == kind


# --- site -----------------------------------------------------------------------------------
LAT, LON, H = 44.2591667, 11.334444, 785.0  # Loiano (MPC 598)


def wgs84_xyz(lat_deg, lon_deg, h_m):
    """Geocentric X, Y, Z (m) from WGS84 geodetic coordinates, by the textbook formula."""
    a, f = 6378137.0, 1 / 298.257223563
    e2 = f * (2 - f)
    phi, lam = math.radians(lat_deg), math.radians(lon_deg)
    n = a / math.sqrt(1 - e2 * math.sin(phi) ** 2)
    return ((n + h_m) * math.cos(phi) * math.cos(lam), (n + h_m) * math.cos(phi) * math.sin(lam), (n * (1 - e2) + h_m) * math.sin(phi))


def site_error_m(meta, lat, lon, h):
    got = EarthLocation.from_geodetic(meta.site_lon_deg, meta.site_lat_deg, meta.site_height_m or 0.0)
    want = EarthLocation.from_geodetic(lon, lat, h)
    return float(np.linalg.norm([(got.x - want.x).to_value("m"), (got.y - want.y).to_value("m"), (got.z - want.z).to_value("m")]))


@pytest.mark.parametrize(
    "site_cards, height",
    [
        ({"SITELAT": LAT, "SITELONG": LON, "SITEELEV": H}, H),
        ({"SITELAT": "+44:15:33.00", "SITELONG": "11:20:03.998", "SITEELEV": H}, H),
        ({"SITELAT": "44 15 33.00", "SITELONG": "11 20 03.998"}, None),
        ({"LATITUDE": LAT, "LONGITUD": LON, "SITEELEV": H}, H),
        ({"LATITUDE": LAT, "LONGITUD": LON, "ALT-OBS": H}, H),
        ({"OBS-LAT": LAT, "OBS-LONG": LON, "OBS-ELEV": H}, H),
        ({"OBSGEO-B": LAT, "OBSGEO-L": LON, "OBSGEO-H": H}, H),
    ],
    ids=["SITE*", "SITE*-sexagesimal", "SITE*-spaces-no-height", "LATITUDE", "LONGITUD+ALT-OBS", "OBS-*", "OBSGEO-BLH"],
)
def test_generic_site_keywords(tmp_path, site_cards, height):
    meta = read(tmp_path, {"DATE-OBS": "2024-03-05T01:02:03", "EXPTIME": 5.0, **site_cards}).meta
    assert meta.site_height_m == height
    assert site_error_m(meta, LAT, LON, height or 0.0) < 0.01  # 1 cm: the cards carry 1e-7 deg / 1 mas


def test_longitude_0_to_360_east_is_folded(tmp_path):
    meta = read(tmp_path, {"DATE-OBS": "2024-03-05T01:02:03", "EXPTIME": 5.0, "SITELAT": -12.094, "SITELONG": 282.977}).meta
    assert meta.site_lon_deg == pytest.approx(-77.023, abs=1e-9) and meta.site_lat_deg == -12.094


@pytest.mark.parametrize("lat, lon, h", [(LAT, LON, H), (-12.094, -77.023, 120.0), (35.7319, 50.8346, 1210.0), (-89.9, 179.9, 3000.0)])
def test_obsgeo_xyz_gives_the_wgs84_site(tmp_path, lat, lon, h):
    x, y, z = wgs84_xyz(lat, lon, h)
    ref = EarthLocation.from_geodetic(lon, lat, h)  # the hand formula agrees with astropy
    assert abs(ref.x.to_value("m") - x) < 1e-3 and abs(ref.y.to_value("m") - y) < 1e-3 and abs(ref.z.to_value("m") - z) < 1e-3
    meta = read(tmp_path, {"DATE-OBS": "2024-03-05T01:02:03", "EXPTIME": 5.0, "OBSGEO-X": x, "OBSGEO-Y": y, "OBSGEO-Z": z}).meta
    assert site_error_m(meta, lat, lon, h) < 1.0
    assert meta.site_lat_deg == pytest.approx(lat, abs=1e-7) and meta.site_lon_deg == pytest.approx(lon, abs=1e-7)
    assert meta.site_height_m == pytest.approx(h, abs=1e-3)


# --- pointing -------------------------------------------------------------------------------
RA0, DEC0 = 15 * (19 + 9 / 60 + 57.4 / 3600), -(6 + 43 / 60 + 55.9 / 3600)  # 19:09:57.4 -06:43:55.9


@pytest.mark.parametrize(
    "pointing",
    [
        {"RA": "19:09:57.4", "DEC": "-06:43:55.9"},
        {"RA": "19 09 57.4", "DEC": "-06 43 55.9"},
        {"RA": "19h09m57.4s", "DEC": "-06d43m55.9s"},
        {"OBJCTRA": "19 09 57.40", "OBJCTDEC": "-06 43 55.90"},
        {"RA": RA0, "DEC": DEC0},
        {"RA": f"{RA0:.9f}", "DEC": f"{DEC0:.9f}"},  # decimal degrees as strings
        {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": RA0, "CRVAL2": DEC0},
        {"RA": "19:09:57.4", "DEC": "-06:43:55.9", "EQUINOX": 2000.0, "RADESYS": "FK5"},
    ],
    ids=["RA/DEC-colons", "RA/DEC-spaces", "RA/DEC-hms", "OBJCTRA/OBJCTDEC", "RA/DEC-degrees", "RA/DEC-degree-strings", "CRVAL", "FK5-J2000"],
)
def test_generic_pointing(tmp_path, pointing):
    meta = read(tmp_path, {"DATE-OBS": "2024-03-05T01:02:03", "EXPTIME": 5.0, **pointing}).meta
    assert abs(meta.pointing_ra_deg - RA0) * 3600 * math.cos(math.radians(DEC0)) < 0.01
    assert abs(meta.pointing_dec_deg - DEC0) * 3600 < 0.01


def test_negative_zero_declination_keeps_its_sign(tmp_path):
    meta = read(tmp_path, {"DATE-OBS": "2024-03-05T01:02:03", "EXPTIME": 5.0, "RA": "00:00:00", "DEC": "-00:30:00"}).meta
    assert meta.pointing_dec_deg == -0.5 and meta.pointing_ra_deg == 0.0


def test_b1950_pointing_is_precessed_to_icrs(tmp_path):
    """3C 273: B1950 12 26 33.246 +02 19 43.29 is J2000 12 29 06.70 +02 03 08.6 (to ~0.1 arcsec)."""
    cards = {"DATE-OBS": "2024-03-05T01:02:03", "EXPTIME": 5.0, "RA": "12:26:33.246", "DEC": "+02:19:43.29", "EQUINOX": 1950.0}
    meta = read(tmp_path, cards).meta
    ra, dec = 15 * (12 + 29 / 60 + 6.70 / 3600), 2 + 3 / 60 + 8.6 / 3600
    assert abs(meta.pointing_ra_deg - ra) * 3600 < 1.0 and abs(meta.pointing_dec_deg - dec) * 3600 < 1.0


def test_no_pointing_is_none(tmp_path):
    meta = read(tmp_path, {"DATE-OBS": "2024-03-05T01:02:03", "EXPTIME": 5.0, "CRVAL1": 10.0, "CRVAL2": 5.0, "CTYPE1": "GLON-TAN"}).meta
    assert meta.pointing_ra_deg is None and meta.pointing_dec_deg is None


# --- camera figures -------------------------------------------------------------------------
def test_generic_camera_keywords_and_unknowns(tmp_path):
    cards = {"DATE-OBS": "2024-03-05T01:02:03", "EXPTIME": 5.0, "EGAIN": 1.3, "RDNOISE": 7.5, "SATURATE": 50000, "CCDSUM": "2 2",
             "TRACKING": "sidereal", "OBJECT": "40364", "FILTER": "R"}
    meta = read(tmp_path, cards).meta
    assert (meta.gain_e_per_adu, meta.read_noise_e, meta.saturation_adu, meta.binning) == (1.3, 7.5, 50000.0, 2)
    assert (meta.tracking, meta.object_id, meta.filter) == ("sidereal", "40364", "R")
    bare = read(tmp_path, {"DATE-OBS": "2024-03-05T01:02:03", "EXPTIME": 5.0}, name="bare.fits").meta
    assert math.isnan(bare.gain_e_per_adu) and math.isnan(bare.read_noise_e)  # unknown, never a made-up number
    assert bare.saturation_adu == 65535.0 and bare.binning == 1 and bare.tracking == "unknown"  # uint16 storage limit
    assert bare.site_lat_deg is None and bare.pointing_ra_deg is None and bare.object_id is None


@pytest.mark.parametrize("xbin, ybin, expected", [(2, 2, 2), (3, None, 3), (None, 4, 4)])
def test_generic_binning_keys(tmp_path, xbin, ybin, expected):
    cards = {"DATE-OBS": "2024-03-05T01:02:03", "EXPTIME": 5.0}
    cards.update({k: v for k, v in (("XBINNING", xbin), ("YBINNING", ybin)) if v is not None})
    assert read(tmp_path, cards).binning == expected


# --- file layouts ---------------------------------------------------------------------------
@pytest.mark.parametrize("layout, name", [("extension", "f.fits"), ("fz", "f.fits.fz"), ("table-first", "f.fits")])
def test_generic_file_layouts(tmp_path, layout, name):
    data = np.arange(8 * 9, dtype=np.uint16).reshape(8, 9) * 7 + 3
    frame = read(tmp_path, {"DATE-OBS": "2024-03-05T01:02:03.25", "EXPTIME": 5.0, "RA": "19:09:57.4", "DEC": "-06:43:55.9"},
                 name=name, data=data, layout=layout)
    np.testing.assert_array_equal(frame.data, data)
    assert abs(us_from(frame.t_start, T0)) < 1.0 and frame.pointing_dec_deg == pytest.approx(DEC0)


def test_primary_keywords_merge_with_the_image_extension(tmp_path):
    """Keywords split between an empty primary HDU and the image extension are read together;
    the extension's value wins when both carry the key."""
    primary = fits.PrimaryHDU()
    primary.header["DATE-OBS"] = "2024-03-05T01:02:03.25"
    primary.header["OBJECT"] = "stale"
    primary.header["SITELAT"], primary.header["SITELONG"] = LAT, LON
    image = fits.ImageHDU(np.full((6, 7), 500, np.int16))
    image.header["EXPTIME"] = 5.0
    image.header["OBJECT"] = "44800"
    path = tmp_path / "mef.fits"
    fits.HDUList([primary, image]).writeto(path)
    meta = read_frame(path).meta
    assert abs(us_from(meta.t_start, T0)) < 1.0 and meta.exposure_s == 5.0
    assert meta.object_id == "44800" and meta.site_lat_deg == LAT


def test_gzip_file(tmp_path):
    import gzip

    plain = write(tmp_path / "f.fits", {"DATE-OBS": "2024-03-05T01:02:03.25", "EXPTIME": 5.0})
    packed = tmp_path / "f.fits.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert abs(us_from(read_frame(packed).t_start, T0)) < 1.0
