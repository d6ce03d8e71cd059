"""Bad input: every case raises AposError whose message names the file, the keyword (where there
is one) and the problem -- never a bare KeyError/ValueError/OSError from inside."""

import re
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
from astropy.io import fits
from astropy.time import Time, TimeDelta

from aposos import AposError
from aposos.ingest import header_for, read_frame, scan_night, write_frame
from aposos.model import Frame, FrameMeta

T0 = Time("2026-11-21T18:03:12.123456", scale="utc")
GOOD = np.arange(8 * 9, dtype=np.uint16).reshape(8, 9) + 100


def station_meta(station, **changes):
    fields = dict(path="", station=station, t_start=T0, t_mid=T0 + TimeDelta(1.0, format="sec"), t_end=T0 + TimeDelta(2.0, format="sec"),
                  exposure_s=2.0, pointing_ra_deg=83.63, pointing_dec_deg=22.01, object_id="44800")
    fields.update(changes)
    return FrameMeta(**fields)


def station_file(station, edits=None, data=GOOD, compress=False, meta=None):
    """Builder: a frame as ``station`` writes it, with header ``edits`` (None deletes a key)."""

    def build(folder):
        header = header_for(meta or station_meta(station), station)
        for key, value in (edits or {}).items():
            if value is None:
                del header[key]
            else:
                header[key] = value
        path = folder / f"{station}.fits"
        hdu = fits.CompImageHDU(data, header=header) if compress else fits.PrimaryHDU(data, header=header)
        fits.HDUList([fits.PrimaryHDU(), hdu] if compress else [hdu]).writeto(path)
        return path

    return build


GENERIC = {"DATE-OBS": "2024-03-05T01:02:03.25", "EXPTIME": 5.0, "RA": "19:09:57.4", "DEC": "-06:43:55.9"}


def generic_file(edits=None, data=GOOD, name="generic.fits"):
    def build(folder):
        cards = {**GENERIC, **(edits or {})}
        header = fits.Header([(k, v) for k, v in cards.items() if v is not None])
        path = folder / name
        fits.PrimaryHDU(data, header=header).writeto(path)
        return path

    return build


def raw_file(content: bytes, name="raw.fits"):
    def build(folder):
        path = folder / name
        path.write_bytes(content)
        return path

    return build


def truncated_file(keep_bytes):
    """A valid iran frame cut to ``keep_bytes`` (negative: that many bytes removed from the end)."""

    def build(folder):
        whole = write_frame(folder / "whole.fits", Frame(np.full((40, 50), 300.0, np.float32), station_meta("iran")), "iran", compress=False)
        content = whole.read_bytes()
        whole.unlink()
        path = folder / "truncated.fits"
        path.write_bytes(content[:keep_bytes])
        return path

    return build


def header_only(folder):
    path = folder / "header_only.fits"
    fits.PrimaryHDU(header=fits.Header([(k, v) for k, v in GENERIC.items()])).writeto(path)
    return path


def table_only(folder):
    path = folder / "table_only.fits"
    table = fits.BinTableHDU.from_columns([fits.Column(name="flux", format="E", array=np.ones(4))])
    fits.HDUList([fits.PrimaryHDU(header=fits.Header([(k, v) for k, v in GENERIC.items()])), table]).writeto(path)
    return path


def corrupt_tiles(folder):
    """A tile-compressed frame whose compressed bytes are overwritten."""
    path = write_frame(folder / "tiles.fits.fz", Frame(np.random.default_rng(0).integers(0, 3000, (40, 50)).astype(np.float32), station_meta("iran")), "iran")
    with fits.open(path) as hdul:
        start = hdul.fileinfo(1)["datLoc"]
    content = bytearray(path.read_bytes())
    content[start : start + 200] = b"\xab" * 200
    path.write_bytes(bytes(content))
    return path


def bad_bitpix(folder):
    path = generic_file()(folder)
    content = bytearray(path.read_bytes())
    at = content.find(b"BITPIX  =")
    content[at + 10 : at + 30] = b"12".rjust(20)
    path.write_bytes(bytes(content))
    return path


@dataclass
class Case:
    id: str
    build: Callable
    key: str | None
    problem: str  # regular expression the message must match (case-insensitive)
    station: object = None


CASES = [
    # files that are not (whole) FITS images
    Case("truncated-data", truncated_file(-3000), None, r"truncated FITS file: actual file length \(\d+\) is smaller than the expected size"),
    Case("truncated-header", truncated_file(1000), "SIMPLE", r"not a readable FITS file.*1000 bytes is not a whole number of 2880-byte"),
    Case("non-FITS-text", raw_file(b"date,ra,dec\n2024-03-05,10,20\n" * 50, "table.fits"), "SIMPLE", r"not a FITS file: it starts with b'date,ra,d'"),
    Case("non-FITS-png", raw_file(b"\x89PNG\r\n\x1a\n" + bytes(3000), "image.fit"), "SIMPLE", r"not a FITS file"),
    Case("empty-file", raw_file(b"", "empty.fits"), "SIMPLE", r"empty file \(0 bytes\)"),
    Case("header-only", header_only, "NAXIS", r"no image HDU with data among 1 HDU"),
    Case("table-only", table_only, "NAXIS", r"no image HDU with data among 2 HDU"),
    Case("corrupt-compressed-tiles", corrupt_tiles, "HDU1 data", r"cannot read the pixels of HDU 1"),
    Case("invalid-BITPIX", bad_bitpix, "BITPIX", r"invalid BITPIX 12"),
    Case("missing-file", lambda folder: folder / "nowhere.fits", None, r"file not found"),
    Case("folder", lambda folder: folder, None, r"is a folder"),
    # pixels
    Case("all-zero-image", generic_file(data=np.zeros((8, 9), np.uint16)), "HDU0 data", r"all 72 pixels are zero"),
    Case("all-NaN-image", generic_file(data=np.full((8, 9), np.nan, np.float32)), "HDU0 data", r"all 72 pixels are NaN or infinite"),
    Case("all-inf-image", generic_file(data=np.full((8, 9), np.inf, np.float32)), "HDU0 data", r"all 72 pixels are NaN or infinite"),
    Case("1-D-data", generic_file(data=np.arange(1, 10, dtype=np.int16)), "HDU0 data", r"1-D with shape \(9,\)"),
    Case("3-D-data", generic_file(data=np.ones((2, 8, 9), np.int16)), "HDU0 data", r"3-D with shape \(2, 8, 9\)"),
    # time
    Case("missing-DATE-OBS", generic_file({"DATE-OBS": None}), "DATE-OBS", r"missing keyword: no observation time"),
    Case("unparseable-DATE-OBS", generic_file({"DATE-OBS": "last Tuesday"}), "DATE-OBS", r"cannot parse 'last Tuesday' as an ISO date"),
    Case("DATE-OBS-a-number", generic_file({"DATE-OBS": 2024.18}), "DATE-OBS", r"cannot parse '2024.18'"),
    Case("month-13", generic_file({"DATE-OBS": "2024-13-05T01:02:03"}), "DATE-OBS", r"impossible date .*month 13"),
    Case("february-29-in-2023", generic_file({"DATE-OBS": "2023-02-29T01:02:03"}), "DATE-OBS", r"day 29 of month 2"),
    Case("hour-25", generic_file({"DATE-OBS": "2024-03-05T25:02:03"}), "DATE-OBS", r"impossible time of day"),
    Case("second-60-not-a-leap-second", generic_file({"DATE-OBS": "2024-03-05T23:59:60.5"}), "DATE-OBS", r"no leap second at the end of 2024-03-05"),
    Case("second-60-mid-day", generic_file({"DATE-OBS": "2016-12-31T12:00:60.0"}), "DATE-OBS", r"impossible time of day"),
    Case("pakistan-TIME-OBS-second-60", station_file("pakistan", {"TIME-OBS": "23:59:60.100"}), "TIME-OBS", r"no leap second at the end of 2026-11-21"),
    Case("year-1900", generic_file({"DATE-OBS": "1900-03-05T01:02:03"}), "DATE-OBS", r"year 1900 outside"),
    Case("date-without-time-science", generic_file({"DATE-OBS": "2024-03-05"}), "DATE-OBS", r"no time of day"),
    Case("TIME-OBS-disagrees", generic_file({"TIME-OBS": "01:02:09.25"}), "TIME-OBS", r"disagrees with DATE-OBS"),
    Case("TIME-OBS-unparseable", generic_file({"DATE-OBS": "2024-03-05", "TIME-OBS": "1h2m"}), "TIME-OBS", r"cannot parse '1h2m' as a time of day"),
    Case("UT-hour-99", generic_file({"DATE-OBS": "2024-03-05", "UT": "99:00:00"}), "UT", r"impossible time of day"),
    Case("MJD-OBS-text", generic_file({"DATE-OBS": None, "MJD-OBS": "sixty thousand"}), "MJD-OBS", r"expected a number"),
    Case("MJD-OBS-year-29237", generic_file({"DATE-OBS": None, "MJD-OBS": 1e7}), "MJD-OBS", r"year 29237.* outside"),
    Case("JD-logical", generic_file({"DATE-OBS": None, "JD": True}), "JD", r"expected a number, got the logical True"),
    Case("TIMESYS-unknown", generic_file({"TIMESYS": "LOCAL"}), "TIMESYS", r"unsupported time system 'LOCAL'"),
    # exposure
    Case("missing-exposure", generic_file({"EXPTIME": None}), "EXPTIME", r"missing keyword: no exposure time"),
    Case("negative-exposure", generic_file({"EXPTIME": -2.0}), "EXPTIME", r"negative exposure -2.0 s"),
    Case("exposure-over-a-day", generic_file({"EXPTIME": 100000.0}), "EXPTIME", r"longer than one day"),
    Case("exposure-text", generic_file({"EXPTIME": "eight"}), "EXPTIME", r"expected a number, got 'eight'"),
    Case("exposure-NaN-text", generic_file({"EXPTIME": "nan"}), "EXPTIME", r"expected a number, got 'nan'"),
    Case("zero-exposure-science", generic_file({"EXPTIME": 0.0}), "EXPTIME", r"zero exposure for a science frame"),
    # pointing
    Case("dec-above-90", generic_file({"DEC": 91.5}), "DEC", r"declination 91.5 deg is outside \[-90, 90\]"),
    Case("dec-sexagesimal-95", generic_file({"RA": None, "DEC": None, "OBJCTRA": "05 34 31", "OBJCTDEC": "+95 00 00"}), "OBJCTDEC", r"declination 95.0 deg is outside \[-90, 90\]"),
    Case("unparseable-RA", generic_file({"RA": "19h09x"}), "RA", r"cannot parse '19h09x' as sexagesimal"),
    Case("RA-24h", generic_file({"RA": "24:00:01"}), "RA", r"right ascension 360.004\d* deg is outside \[0, 360\)"),
    Case("RA-minutes-61", generic_file({"RA": "12:61:00"}), "RA", r"impossible sexagesimal value"),
    Case("RA-without-DEC", generic_file({"DEC": None}), "DEC", r"one coordinate without the other"),
    Case("equinox-0", generic_file({"EQUINOX": 0.0}), "EQUINOX", r"impossible equinox"),
    # site, camera
    Case("OBSGEO-not-on-Earth", generic_file({"OBSGEO-X": 1.0, "OBSGEO-Y": 2.0, "OBSGEO-Z": 3.0}), "OBSGEO-X", r"not on the Earth's surface"),
    Case("OBSGEO-Z-missing", generic_file({"OBSGEO-X": 4e6, "OBSGEO-Y": 1e6}), "OBSGEO-Z", r"missing keyword"),
    Case("SITELAT-95", generic_file({"SITELAT": 95.0, "SITELONG": 10.0}), "SITELAT", r"95.0 deg is outside \[-90.0, 90.0\]"),
    Case("SITELAT-without-SITELONG", generic_file({"SITELAT": 45.0}), "SITELONG", r"latitude or longitude without the other"),
    Case("SITEELEV-100-km", generic_file({"SITELAT": 45.0, "SITELONG": 10.0, "SITEELEV": 1e5}), "SITEELEV", r"impossible site height"),
    Case("negative-gain", generic_file({"GAIN": -1.5}), "GAIN", r"impossible gain -1.5"),
    Case("unequal-binning", generic_file({"XBINNING": 2, "YBINNING": 1}), "XBINNING", r"binning 2x1 is not supported"),
    Case("XBINNING-0-alone", generic_file({"XBINNING": 0}), "XBINNING", r"binning 0x0 is not supported"),
    Case("CCDSUM-words", generic_file({"CCDSUM": "two two"}), "CCDSUM", r"cannot read binning"),
    Case("unknown-IMAGETYP", generic_file({"IMAGETYP": "banana"}), "IMAGETYP", r"unknown frame type 'banana'"),
    # stations
    Case("unknown-station-name", station_file("iran"), "station", r"unknown station 'mars' \(configured: iran, pakistan, peru\)", station="mars"),
    Case("TELESCOP-mismatch", station_file("iran"), "TELESCOP", r"'APOSOS-IR' is not station 'pakistan'", station="pakistan"),
    Case("TELESCOP-missing-station-given", station_file("peru", {"TELESCOP": None}), "TELESCOP", r"missing keyword: cannot confirm", station="peru"),
    Case("TELESCOP-unconfigured", station_file("peru", {"TELESCOP": "APOSOS-XX"}), "EXPTIME", r"missing keyword.*TELESCOP 'APOSOS-XX' is not a configured station"),
    Case("iran-date-only", station_file("iran", {"DATE-OBS": "2026-11-21"}), "DATE-OBS", r"has no time of day"),
    Case("iran-unknown-IMAGETYP", station_file("iran", {"IMAGETYP": "object"}), "IMAGETYP", r"unknown value 'object' for the iran dialect"),
    Case("pakistan-TIME-OBS-missing", station_file("pakistan", {"TIME-OBS": None}), "TIME-OBS", r"missing keyword"),
    Case("pakistan-DATE-OBS-with-time", station_file("pakistan", {"DATE-OBS": "2026-11-21T18:03:12"}), "DATE-OBS", r"writes the date only"),
    Case("pakistan-EXPOSURE-missing", station_file("pakistan", {"EXPOSURE": None}), "EXPOSURE", r"missing keyword"),
    Case("peru-MJD-MID-not-a-number", station_file("peru", {"MJD-MID": "61365.7x"}), "MJD-MID", r"expected a number, got '61365.7x'"),
    Case("peru-MJD-MID-missing", station_file("peru", {"MJD-MID": None}), "MJD-MID", r"missing keyword"),
    Case("peru-EXPMS-negative", station_file("peru", {"EXPMS": -5.0}), "EXPMS", r"negative exposure"),
    Case("peru-bad-GPS-flag", station_file("peru", {"GPSLOCK": "MAYBE"}), "GPSLOCK", r"expected a logical value, got 'MAYBE'"),
    Case("peru-GPS-flag-missing", station_file("peru", {"GPSLOCK": None}), "GPSLOCK", r"missing keyword"),
    Case("peru-GPSSATS-negative", station_file("peru", {"GPSSATS": -1}), "GPSSATS", r"impossible satellite count -1"),
    Case("peru-GPSSATS-fraction", station_file("peru", {"GPSSATS": 2.5}), "GPSSATS", r"expected an integer"),
    Case("peru-BINNING-2x1", station_file("peru", {"BINNING": "2x1"}), "BINNING", r"cannot read binning '2x1'"),
    Case("peru-unknown-tracking", station_file("peru", {"TRK-MODE": "FAST"}), "TRK-MODE", r"unknown value 'FAST' for the peru dialect"),
    Case("peru-one-rate", station_file("peru", {"TRK-MODE": "RATE", "TRK-RA": 0.01}), "TRK-DEC", r"one tracking rate without the other"),
    Case("peru-rate-20-deg-s", station_file("peru", {"TRK-MODE": "RATE", "TRK-RA": 20.0, "TRK-DEC": 0.0}), "TRK-RA", r"impossible tracking rate 72000.0 arcsec/s"),
    Case("iran-compressed-bad-RA", station_file("iran", {"RA": "xx:yy:zz"}, compress=True), "RA", r"cannot parse 'xx:yy:zz'"),
    Case("iran-unequal-binning", station_file("iran", {"XBINNING": 2, "YBINNING": 4}), "YBINNING", r"unequal binning 2x4"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_error_naming_file_key_and_problem(tmp_path, case):
    path = case.build(tmp_path)
    with pytest.raises(AposError) as info:
        read_frame(path, case.station)
    error, message = info.value, str(info.value)
    assert type(error) is AposError
    assert error.path == str(path) and message.startswith(str(path))
    assert error.key == case.key
    if case.key is not None:
        assert f"key {case.key!r}" in message
    assert re.search(case.problem, message, re.IGNORECASE), message


def test_at_least_twenty_distinct_cases():
    assert len({c.id for c in CASES}) == len(CASES) >= 20
    assert len({(c.key, c.problem) for c in CASES}) >= 20


def test_scan_night_records_every_bad_file_and_goes_on(tmp_path):
    folder = tmp_path / "night"
    folder.mkdir()
    made = []
    for i, case in enumerate(c for c in CASES if c.station is None and c.id not in ("missing-file", "folder")):
        sub = tmp_path / f"case{i}"
        sub.mkdir()
        built = case.build(sub)
        target = folder / f"{i:03d}_{built.name}"
        built.rename(target)
        made.append(target)
    good = write_frame(folder / "zzz_good.fits", Frame(GOOD.astype(np.float32), station_meta("iran")), "iran")
    table = scan_night(folder)
    assert len(table) == len(made) + 1
    by_path = {row["path"]: row for row in table}
    assert by_path[str(good)]["status"] == "ok" and by_path[str(good)]["station"] == "iran"
    for path in made:
        row = by_path[str(path)]
        assert row["status"] == "failed" and row["reason"].startswith(str(path)) and np.isnan(row["exposure_s"])
        assert "unexpected" not in row["reason"]
