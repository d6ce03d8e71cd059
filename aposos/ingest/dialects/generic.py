"""Generic dialect: the common header conventions of other observatories.

Time (first found wins; its meaning in brackets)

* ``DATE-OBS`` ISO date-time, or ISO date + ``TIME-OBS`` / ``UT`` / ``UTSTART`` / ``UT-START``
  (time of day); the old ``DD/MM/YY`` date form too. [start, unless the comment of the card
  holding the time of day says mid/middle/centre or end]. When both DATE-OBS carries a time and a time-of-day key is given
  they must agree to 1 ms.
* ``DATE-BEG``, ``MJD-OBS``, ``MJD-BEG``, ``JD``, ``JD-OBS`` [start unless the comment says otherwise]
* ``DATE-AVG``, ``MJD-AVG``, ``JDMID``, ``MJD-MID`` [mid], ``DATE-END``, ``MJD-END`` [end]
* ``TIMESYS`` UTC (default) / UT / TAI / TT / GPS.
* The other time keys present are compared with the chosen one and the differences kept in
  ``time_flags`` (e.g. ``JDMID_minus_t_mid_s``), never used.
* A bias/dark/flat with a date but no time of day is accepted with ``time_flags['date_only']``
  (t_start at 00:00 UTC of that date); a science frame without a time of day is an error.

Exposure ``EXPTIME`` or ``EXPOSURE`` [s]. Site ``OBSGEO-X/Y/Z`` [m], ``OBSGEO-B/L/H``,
``SITELAT/SITELONG/SITEELEV``, ``LATITUDE/LONGITUD`` (+``SITEELEV``/``ALT-OBS``),
``OBS-LAT/OBS-LONG/OBS-ELEV`` (degrees east, decimal or sexagesimal). Pointing
``OBJCTRA/OBJCTDEC``, ``RA/DEC`` (sexagesimal strings are hours/degrees, numbers are degrees),
``CRVAL1/CRVAL2`` when ``CTYPE1`` is RA; ``EQUINOX``/``EPOCH`` other than 2000 (or
``RADESYS='FK4'``) is precessed to ICRS. Frame type ``IMAGETYP``/``OBSTYPE``/``FRAMETYP``
('object', 'light', 'zero', 'bias', 'dark', 'flat', ...; absent means science). Camera
``EGAIN``/``GAIN`` [e-/ADU], ``RDNOISE``/``READNOIS`` [e-], ``SATURATE`` [ADU] (unknown
gain/read noise are NaN, never a made-up number). Binning ``XBINNING``/``YBINNING``,
``CCDSUM``, ``BINNING``. Tracking is 'unknown' unless ``TRACKING``/``TRACKMOD`` says.
"""

from __future__ import annotations

import math
import re

import numpy as np
from astropy.io import fits
from astropy.time import Time

from ..cards import Cards, format_sexagesimal, iso, seconds
from ..timing import exposure_times

IMAGE_TYPE_KEYS = ("IMAGETYP", "OBSTYPE", "FRAMETYP", "FRAME")
IMAGE_TYPE_WORDS = {
    "science": ("object", "light", "light frame", "science", "sci", "target"),
    "bias": ("zero", "bias", "bias frame", "offset"),
    "dark": ("dark", "dark frame", "dark current"),
    "flat": ("flat", "flat field", "flat frame", "skyflat", "sky flat", "domeflat", "dome flat", "twilight flat", "flatfield"),
}
TIME_OF_DAY_KEYS = ("TIME-OBS", "UT", "UTSTART", "UT-START")
#: numeric / ISO time keys after DATE-OBS, with the instant they refer to by default
TIME_KEYS = (
    ("DATE-BEG", "iso", "start"),
    ("MJD-OBS", "mjd", "start"),
    ("MJD-BEG", "mjd", "start"),
    ("JD", "jd", "start"),
    ("JD-OBS", "jd", "start"),
    ("DATE-AVG", "iso", "mid"),
    ("MJD-AVG", "mjd", "mid"),
    ("JDMID", "jd", "mid"),
    ("MJD-MID", "mjd", "mid"),
    ("DATE-END", "iso", "end"),
    ("MJD-END", "mjd", "end"),
)
SCALES = {"UTC": "utc", "UT": "utc", "TAI": "tai", "TT": "tt", "TDT": "tt", "GPS": "gps"}
_MID = re.compile(r"\b(mid|middle|cent(er|re)|average)\b", re.I)
_END = re.compile(r"\b(end|close)\b", re.I)
_START = re.compile(r"\b(start|begin|beginning|open)\b", re.I)


def image_type(cards: Cards) -> str:
    key = cards.first(*IMAGE_TYPE_KEYS)
    if key is None:
        return "science"
    word = cards.text(key).lower()
    for kind, words in IMAGE_TYPE_WORDS.items():
        if word in words:
            return kind
    raise cards.error(key, f"unknown frame type {cards.text(key)!r}")


def _meaning(cards: Cards, key: str, default: str) -> str:
    comment = cards.comment(key)
    for pattern, meaning in ((_START, "start"), (_MID, "mid"), (_END, "end")):
        if pattern.search(comment):
            return meaning
    return default


def _scale(cards: Cards) -> str:
    system = cards.text("TIMESYS")
    if system is None:
        return "utc"
    if system.upper() not in SCALES:
        raise cards.error("TIMESYS", f"unsupported time system {system!r} (supported: {', '.join(SCALES)})")
    return SCALES[system.upper()]


def _as_utc(t: Time, scale: str) -> Time:
    # A GPS clock reads TAI - 19 s; the value was parsed as if it were TAI, so TAI = value + 19 s.
    return (t + seconds(19.0)).utc if scale == "gps" else t.utc


def _parse(cards: Cards, key: str, kind: str, scale: str) -> tuple[Time, bool]:
    astropy_scale = "tai" if scale == "gps" else scale
    if kind == "iso":
        t, has_time = cards.iso_time(key, scale=astropy_scale)
    else:
        t, has_time = cards.numeric_time(key, kind, scale=astropy_scale), True
    return _as_utc(t, scale), has_time


def _date_obs(cards: Cards, scale: str) -> tuple[Time, str, bool]:
    """(stamp, key description, has time of day) from DATE-OBS and a time-of-day key."""
    astropy_scale = "tai" if scale == "gps" else scale
    raw, has_time = cards.iso_time("DATE-OBS", scale=astropy_scale)
    t = _as_utc(raw, scale)
    clock_key = cards.first(*TIME_OF_DAY_KEYS)
    if clock_key is None:
        return t, "DATE-OBS", has_time
    day = Time(raw.isot[:10], scale=astropy_scale)
    combined = _as_utc(cards.on_day(day, clock_key, scale=astropy_scale), scale)
    if has_time and abs((combined - t).sec) > 1e-3:
        raise cards.error(clock_key, f"{cards.text(clock_key)!r} disagrees with DATE-OBS {cards.text('DATE-OBS')!r}")
    return (t if has_time else combined), ("DATE-OBS" if has_time else f"DATE-OBS+{clock_key}"), True


def header_time(cards: Cards, image_kind: str) -> tuple[Time, str, str, dict]:
    """(stamp, key, meaning 'start'|'mid'|'end', extra flags)."""
    scale = _scale(cards)
    date_only = None
    if cards.has("DATE-OBS"):
        t, key, has_time = _date_obs(cards, scale)
        if has_time:
            meaning = _meaning(cards, "DATE-OBS", "start")
            if key.startswith("DATE-OBS+"):  # the time of day came from TIME-OBS/UT: its comment tells
                meaning = _meaning(cards, key.removeprefix("DATE-OBS+"), meaning)
            return t, key, meaning, {}
        date_only = t
    for key, kind, default in TIME_KEYS:
        if cards.has(key):
            t, has_time = _parse(cards, key, kind, scale)
            if has_time:
                return t, key, _meaning(cards, key, default), {}
    if date_only is not None:
        if image_kind != "science":
            return date_only, "DATE-OBS", "start", {"date_only": True}
        raise cards.error("DATE-OBS", f"{cards.text('DATE-OBS')!r} has no time of day and no TIME-OBS/UT, MJD-OBS or JD is given")
    raise cards.error("DATE-OBS", "missing keyword: no observation time (DATE-OBS, MJD-OBS, JD, DATE-AVG, ...)")


def _compare_other_times(cards: Cards, used: str, t_start: Time, t_mid: Time, t_end: Time) -> dict:
    out = {}
    scale = _scale(cards)
    refs = {"start": ("t_start", t_start), "mid": ("t_mid", t_mid), "end": ("t_end", t_end)}
    for key, kind, default in TIME_KEYS:
        if key == used or not cards.has(key):
            continue
        try:
            t, has_time = _parse(cards, key, kind, scale)
        except Exception as exc:  # noqa: BLE001 - a secondary key is only compared, its fault is recorded
            out[f"{key}_unreadable"] = str(exc)
            continue
        if has_time:
            name, ref = refs[_meaning(cards, key, default)]
            out[f"{key}_minus_{name}_s"] = float((t - ref).sec)
    return out


def exposure(cards: Cards) -> tuple[float, str]:
    key = cards.first("EXPTIME", "EXPOSURE")
    if key is None:
        raise cards.error("EXPTIME", "missing keyword: no exposure time (EXPTIME or EXPOSURE)")
    return cards.exposure(key), key


def _pair(cards: Cards, ra_key: str, dec_key: str):
    if cards.has(ra_key) != cards.has(dec_key):
        raise cards.error(dec_key if cards.has(ra_key) else ra_key, "pointing gives one coordinate without the other")
    if not cards.has(ra_key):
        return None
    return cards.ra_deg(ra_key), cards.dec_deg(dec_key)


def pointing(cards: Cards) -> tuple[float | None, float | None]:
    """Pointing hint (ICRS degrees) or (None, None) when the header gives none."""
    found = _pair(cards, "OBJCTRA", "OBJCTDEC") or _pair(cards, "RA", "DEC")
    if found is None and cards.has("CRVAL1") and str(cards.text("CTYPE1") or "").upper().startswith("RA"):
        found = _pair(cards, "CRVAL1", "CRVAL2")
    if found is None:
        return None, None
    return _to_icrs(cards, *found)


def _to_icrs(cards: Cards, ra: float, dec: float) -> tuple[float, float]:
    key = cards.first("EQUINOX", "EPOCH")
    equinox = cards.number(key) if key else 2000.0
    if key and not 1850.0 <= equinox <= 2200.0:
        raise cards.error(key, f"impossible equinox {equinox!r}")
    system = (cards.text("RADESYS") or cards.text("RADECSYS") or "").upper()
    if abs(equinox - 2000.0) < 0.01 and system != "FK4":
        return ra, dec
    from astropy.coordinates import FK4, FK5, SkyCoord

    frame = FK4(equinox=Time(equinox, format="byear")) if system == "FK4" or equinox < 1984.0 else FK5(equinox=Time(equinox, format="jyear"))
    icrs = SkyCoord(ra, dec, unit="deg", frame=frame).icrs
    return float(icrs.ra.deg), float(icrs.dec.deg)


def site(cards: Cards) -> tuple[float | None, float | None, float | None]:
    """Observer (lat, lon east, height) in degrees/metres (WGS84) or Nones."""
    if cards.first("OBSGEO-X", "OBSGEO-Y", "OBSGEO-Z"):
        xyz = [cards.number(k, required=True) for k in ("OBSGEO-X", "OBSGEO-Y", "OBSGEO-Z")]
        radius = math.hypot(*xyz)
        if not 6.3e6 < radius < 6.4e6:
            raise cards.error("OBSGEO-X", f"geocentric position {xyz} m is {radius:.0f} m from the centre, not on the Earth's surface")
        from astropy.coordinates import EarthLocation

        lon, lat, h = EarthLocation.from_geocentric(*xyz, unit="m").to_geodetic("WGS84")
        return float(lat.deg), float(lon.wrap_at("180d").deg), float(h.to_value("m"))
    for lat_key, lon_key, height_keys in (
        ("OBSGEO-B", "OBSGEO-L", ("OBSGEO-H",)),
        ("SITELAT", "SITELONG", ("SITEELEV", "ALT-OBS")),
        ("LATITUDE", "LONGITUD", ("SITEELEV", "ALT-OBS", "ALTITUDE")),
        ("OBS-LAT", "OBS-LONG", ("OBS-ELEV",)),
    ):
        if cards.has(lat_key) or cards.has(lon_key):
            if not (cards.has(lat_key) and cards.has(lon_key)):
                raise cards.error(lon_key if cards.has(lat_key) else lat_key, "site gives latitude or longitude without the other")
            lat = cards.angle_deg(lat_key, -90.0, 90.0)
            lon = cards.angle_deg(lon_key, -180.0, 360.0)
            lon = lon - 360.0 if lon > 180.0 else lon
            height_key = cards.first(*height_keys)
            height = cards.number(height_key) if height_key else None
            if height is not None and not -500.0 <= height <= 9000.0:
                raise cards.error(height_key, f"impossible site height {height!r} m")
            return lat, lon, height
    return None, None, None


def binning(cards: Cards) -> int:
    if cards.first("XBINNING", "YBINNING"):
        bx, by = cards.integer("XBINNING"), cards.integer("YBINNING")
        bx, by = (by if bx is None else bx), (bx if by is None else by)
        key = "XBINNING" if cards.has("XBINNING") else "YBINNING"
    elif cards.first("CCDSUM", "BINNING"):
        key = cards.first("CCDSUM", "BINNING")
        parts = re.split(r"[\sxX,]+", str(cards.header[key]).strip())
        if not all(p.isdigit() for p in parts) or len(parts) not in (1, 2):
            raise cards.error(key, f"cannot read binning {cards.header[key]!r}")
        bx, by = int(parts[0]), int(parts[-1])
    else:
        return 1
    if bx != by or bx < 1:
        raise cards.error(key, f"binning {bx}x{by} is not supported")
    return bx


def tracking(cards: Cards) -> str:
    key = cards.first("TRACKING", "TRACKMOD")
    if key is None:
        return "unknown"
    word = cards.text(key).lower()
    if word in ("sidereal", "stars", "star"):
        return "sidereal"
    if word in ("rate", "target", "satellite", "object", "non-sidereal", "nonsidereal"):
        return "rate"
    return "unknown"


def _positive(cards: Cards, keys: tuple[str, ...], what: str) -> float:
    key = cards.first(*keys)
    if key is None:
        return math.nan
    value = cards.number(key)
    if not value > 0 and not (what == "read noise" and value == 0):
        raise cards.error(key, f"impossible {what} {value!r}")
    return value


def read(cards: Cards, saturation_default: float) -> dict:
    """FrameMeta fields (all but ``path``) from a header of another observatory."""
    kind = image_type(cards)
    exposure_s, exposure_key = exposure(cards)
    if kind == "science" and exposure_s == 0.0:
        raise cards.error(exposure_key, "zero exposure for a science frame")
    stamp, time_key, meaning, flags = header_time(cards, kind)
    t_start, t_mid, t_end = exposure_times(stamp, exposure_s, meaning)
    flags = {"time_key": time_key, "refers_to": meaning, "latency_s": 0.0, **flags}
    flags.update(_compare_other_times(cards, time_key, t_start, t_mid, t_end))
    ra, dec = pointing(cards)
    lat, lon, height = site(cards)
    saturation = _positive(cards, ("SATURATE",), "saturation level")
    return dict(
        station=None,
        t_start=t_start,
        t_mid=t_mid,
        t_end=t_end,
        exposure_s=exposure_s,
        image_type=kind,
        tracking=tracking(cards),
        pointing_ra_deg=ra,
        pointing_dec_deg=dec,
        gain_e_per_adu=_positive(cards, ("EGAIN", "GAIN"), "gain"),
        read_noise_e=_positive(cards, ("RDNOISE", "READNOIS", "RON"), "read noise"),
        saturation_adu=saturation if not math.isnan(saturation) else saturation_default,
        binning=binning(cards),
        object_id=cards.text("OBJECT"),
        site_lat_deg=lat,
        site_lon_deg=lon,
        site_height_m=height,
        filter=cards.text("FILTER"),
        time_flags=flags,
    )


def write(meta) -> fits.Header:
    """A plain header in the most common conventions (DATE-OBS start, EXPTIME, RA/DEC, SITE*)."""
    hdr = fits.Header()
    words = {"science": "object", "bias": "zero", "dark": "dark", "flat": "flat"}
    hdr["IMAGETYP"] = words[meta.image_type]
    hdr["DATE-OBS"] = (iso(meta.t_start, 6), "[UTC] start of exposure")
    hdr["EXPTIME"] = (meta.exposure_s, "[s] exposure time")
    if meta.pointing_ra_deg is not None and meta.pointing_dec_deg is not None:
        hdr["RA"] = (format_sexagesimal(meta.pointing_ra_deg / 15.0, 4, wrap=24), "[h:m:s] J2000")
        hdr["DEC"] = (format_sexagesimal(meta.pointing_dec_deg, 3, sign=True), "[d:m:s] J2000")
        hdr["EQUINOX"] = 2000.0
    if meta.site_lat_deg is not None:
        hdr["SITELAT"] = (meta.site_lat_deg, "[deg] WGS84")
        hdr["SITELONG"] = (meta.site_lon_deg, "[deg] east, WGS84")
        if meta.site_height_m is not None:
            hdr["SITEELEV"] = (meta.site_height_m, "[m] WGS84")
    if meta.object_id:
        hdr["OBJECT"] = meta.object_id
    hdr["XBINNING"] = meta.binning
    hdr["YBINNING"] = meta.binning
    for key, value in (("EGAIN", meta.gain_e_per_adu), ("RDNOISE", meta.read_noise_e), ("SATURATE", meta.saturation_adu)):
        if value is not None and np.isfinite(value):
            hdr[key] = value
    if meta.filter:
        hdr["FILTER"] = meta.filter
    return hdr
