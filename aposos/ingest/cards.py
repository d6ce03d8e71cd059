"""Typed access to FITS header keywords, with errors that name the file and the keyword.

Every header dialect reads its keywords through :class:`Cards`, so that a missing,
unparseable or impossible value becomes one :class:`~aposos.errors.AposError` with the same
wording everywhere, and never a guess. The sexagesimal and ISO-time helpers work in both
directions (parse for the readers, format for the writers) so that a dialect's reader and
writer cannot drift apart.
"""

from __future__ import annotations

import math
import re

import numpy as np
from astropy.io import fits
from astropy.time import Time, TimeDelta

from ..errors import AposError

#: Longest exposure accepted, seconds (anything longer is a corrupt keyword, not an exposure).
MAX_EXPOSURE_S = 86400.0
#: Plausible observation epochs (years): outside this a date keyword is corrupt.
YEAR_RANGE = (1957, 2200)

_SEXAGESIMAL = re.compile(
    r"^\s*(?P<sign>[+-])?\s*(?P<a>\d{1,3})[:\s hd]\s*(?P<b>\d{1,2})"
    r"(?:[:\s m']\s*(?P<c>\d{1,2}(?:\.\d*)?))?\s*[s\"]?\s*$"
)
_DECIMAL = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eEdD][+-]?\d+)?\s*$")
_ISO = re.compile(
    r"^(?P<date>(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2}))"
    r"(?:[T ](?P<time>(?P<h>\d{2}):(?P<mi>\d{2}):(?P<s>\d{2}(?:\.\d*)?)))?Z?$"
)
_OLD_DATE = re.compile(r"^(?P<d>\d{2})/(?P<mo>\d{2})/(?P<y>\d{2})$")  # FITS before 2000: DD/MM/YY
_CLOCK = re.compile(r"^(?P<h>\d{1,2})[:\s](?P<mi>\d{2})[:\s](?P<s>\d{2}(?:\.\d*)?)$")


class Cards:
    """The keywords of one frame (primary header merged with the image extension's).

    Parameters
    ----------
    header : astropy.io.fits.Header
    path : str or PathLike
        The file, named in every error.
    """

    def __init__(self, header: fits.Header, path):
        self.header = header
        self.path = path

    def error(self, key: str | None, problem: str) -> AposError:
        return AposError(problem, path=self.path, key=key)

    def has(self, key: str) -> bool:
        """True if the keyword is present with a non-blank value."""
        if key not in self.header:
            return False
        value = self.header[key]
        return not (value is None or isinstance(value, fits.card.Undefined) or (isinstance(value, str) and not value.strip()))

    def first(self, *keys: str) -> str | None:
        """The first of ``keys`` present with a value, or None."""
        return next((k for k in keys if self.has(k)), None)

    def comment(self, key: str) -> str:
        return self.header.comments[key] if key in self.header else ""

    def text(self, key: str, required: bool = False) -> str | None:
        """A string value, stripped; None when absent or blank (an error if ``required``)."""
        if not self.has(key):
            if required:
                raise self.error(key, "missing keyword")
            return None
        return str(self.header[key]).strip()

    def number(self, key: str, required: bool = False) -> float | None:
        """A finite real value (FITS number or numeric string)."""
        if not self.has(key):
            if required:
                raise self.error(key, "missing keyword")
            return None
        value = self.header[key]
        if isinstance(value, (bool, np.bool_)):
            raise self.error(key, f"expected a number, got the logical {value!r}")
        if isinstance(value, str):
            if not _DECIMAL.match(value):
                raise self.error(key, f"expected a number, got {value!r}")
            value = float(value.strip().replace("D", "E").replace("d", "e"))
        if isinstance(value, complex):
            raise self.error(key, f"expected a real number, got {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise self.error(key, f"value {value!r} is not finite")
        return value

    def integer(self, key: str, required: bool = False) -> int | None:
        value = self.number(key, required)
        if value is None:
            return None
        if not value.is_integer():
            raise self.error(key, f"expected an integer, got {value!r}")
        return int(value)

    def flag(self, key: str, required: bool = False) -> bool | None:
        """A logical value: FITS T/F, 1/0, or 'YES'/'NO'/'TRUE'/'FALSE'/'LOCKED'/'UNLOCKED'."""
        if not self.has(key):
            if required:
                raise self.error(key, "missing keyword")
            return None
        value = self.header[key]
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        if isinstance(value, (int, float)) and value in (0, 1):
            return bool(value)
        word = str(value).strip().upper()
        if word in ("T", "Y", "YES", "TRUE", "LOCKED", "ON"):
            return True
        if word in ("F", "N", "NO", "FALSE", "UNLOCKED", "OFF"):
            return False
        raise self.error(key, f"expected a logical value, got {value!r}")

    def exact_number_text(self, key: str, required: bool = False) -> str | None:
        """The number as written on the card (all its digits), for MJD/JD times.

        A float64 MJD holds only ~0.6 microsecond and a JD ~40 microseconds; the card's own
        digits keep what the acquisition software wrote.
        """
        value = self.number(key, required)
        if value is None:
            return None
        raw = self.header[key]
        if isinstance(raw, str):
            return raw.strip().replace("D", "E").replace("d", "e")
        image = self.header.cards[key].image
        match = re.match(r"^.{8}= *([+-]?[0-9.]+(?:[EeDd][+-]?\d+)?)", image)
        return match.group(1).replace("D", "E").replace("d", "e") if match else repr(value)

    # --- values with a meaning ------------------------------------------------------------

    def exposure(self, key: str, unit_s: float = 1.0) -> float:
        """Exposure in seconds from ``key`` (written in units of ``unit_s`` seconds)."""
        value = self.number(key, required=True) * unit_s
        if value < 0:
            raise self.error(key, f"negative exposure {value!r} s")
        if value > MAX_EXPOSURE_S:
            raise self.error(key, f"impossible exposure {value!r} s (longer than one day)")
        return value

    def ra_deg(self, key: str, hours_if_sexagesimal: bool = True) -> float:
        """Right ascension in degrees: sexagesimal hours ('hh:mm:ss.s', 'hh mm ss') or decimal degrees."""
        value = self.header[key]
        if isinstance(value, str) and not _DECIMAL.match(value):
            deg = parse_sexagesimal(value, self, key, max_first=360)  # range checked below, in degrees
            deg = deg * 15.0 if hours_if_sexagesimal else deg
        else:
            deg = self.number(key)
        if not 0.0 <= deg < 360.0:
            raise self.error(key, f"right ascension {deg!r} deg is outside [0, 360)")
        return deg

    def dec_deg(self, key: str) -> float:
        """Declination in degrees: sexagesimal ('+dd:mm:ss.s', '+dd mm ss') or decimal degrees."""
        value = self.header[key]
        if isinstance(value, str) and not _DECIMAL.match(value):
            deg = parse_sexagesimal(value, self, key, max_first=360)  # range checked below
        else:
            deg = self.number(key)
        if not -90.0 <= deg <= 90.0:
            raise self.error(key, f"declination {deg!r} deg is outside [-90, 90]")
        return deg

    def angle_deg(self, key: str, low: float, high: float) -> float:
        """A latitude/longitude in degrees: decimal or sexagesimal degrees, within [low, high]."""
        value = self.header[key]
        if isinstance(value, str) and not _DECIMAL.match(value):
            deg = parse_sexagesimal(value, self, key, max_first=360)
        else:
            deg = self.number(key)
        if not low <= deg <= high:
            raise self.error(key, f"value {deg!r} deg is outside [{low}, {high}]")
        return deg

    def iso_time(self, key: str, scale: str = "utc") -> tuple[Time, bool]:
        """An ISO date or date-time (or old 'DD/MM/YY'); returns (Time, has_time_of_day)."""
        text = self.text(key, required=True)
        match = _ISO.match(text)
        if match is None:
            old = _OLD_DATE.match(text)
            if old is None:
                raise self.error(key, f"cannot parse {text!r} as an ISO date/time (YYYY-MM-DD[Thh:mm:ss.sss])")
            y = int(old["y"])
            text = f"{1900 + y if y >= 50 else 2000 + y}-{old['mo']}-{old['d']}"
            match = _ISO.match(text)
        _check_calendar(self, key, text, int(match["y"]), int(match["mo"]), int(match["d"]))
        if match["time"]:
            _check_clock(self, key, text, int(match["h"]), int(match["mi"]), float(match["s"]))
            if float(match["s"]) >= 60.0:
                _check_leap_second(self, key, text, match["date"], scale)
        try:
            t = Time(f"{match['date']}T{match['time'] or '00:00:00'}", format="isot", scale=scale)
        except ValueError as exc:
            raise self.error(key, f"cannot parse {text!r} as a time: {exc}") from None
        return t, match["time"] is not None

    def clock_s(self, key: str) -> float:
        """Time of day 'hh:mm:ss.sss' in seconds after midnight."""
        text = self.text(key, required=True)
        match = _CLOCK.match(text)
        if match is None:
            raise self.error(key, f"cannot parse {text!r} as a time of day (hh:mm:ss.sss)")
        h, mi, s = int(match["h"]), int(match["mi"]), float(match["s"])
        _check_clock(self, key, text, h, mi, s)
        return h * 3600.0 + mi * 60.0 + s

    def on_day(self, day: Time, key: str, scale: str = "utc") -> Time:
        """``day`` (00:00 of a date, in ``scale``) plus the time of day written in ``key``.

        A second 60 ('23:59:60.x') is accepted only on a UTC day that ends with a leap second.
        """
        s = self.clock_s(key)
        if s >= 86400.0:
            _check_leap_second(self, key, self.text(key), day.isot[:10], scale)
        return day + seconds(s)

    def numeric_time(self, key: str, fmt: str, scale: str = "utc") -> Time:
        """A time written as a number (``fmt`` 'mjd' or 'jd'), at the precision of the card's digits."""
        text = self.exact_number_text(key, required=True)
        try:
            t = Time(text, format=fmt, scale=scale)
        except ValueError as exc:
            raise self.error(key, f"cannot read {text!r} as {fmt.upper()}: {exc}") from None
        if not YEAR_RANGE[0] <= t.jyear <= YEAR_RANGE[1]:
            raise self.error(key, f"{fmt.upper()} {text} is year {t.jyear:.1f}, outside {YEAR_RANGE}")
        return t


def _check_calendar(cards: Cards, key: str, text: str, y: int, mo: int, d: int) -> None:
    if not YEAR_RANGE[0] <= y <= YEAR_RANGE[1]:
        raise cards.error(key, f"impossible date {text!r}: year {y} outside {YEAR_RANGE}")
    if not 1 <= mo <= 12:
        raise cards.error(key, f"impossible date {text!r}: month {mo}")
    days = [31, 29 if (y % 4 == 0 and y % 100 != 0) or y % 400 == 0 else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    if not 1 <= d <= days[mo - 1]:
        raise cards.error(key, f"impossible date {text!r}: day {d} of month {mo}")


def _check_clock(cards: Cards, key: str, text: str, h: int, mi: int, s: float) -> None:
    if h > 23 or mi > 59 or s >= 61.0 or (s >= 60.0 and (h, mi) != (23, 59)):  # 23:59:60.x: a leap second
        raise cards.error(key, f"impossible time of day {text!r}")


def _check_leap_second(cards: Cards, key: str, text: str, date: str, scale: str) -> None:
    """Second 60 exists only in UTC, at the end of a day with a leap second (86401 s long)."""
    day = Time(date, scale="utc")
    length_s = (Time(day.mjd + 1.0, format="mjd", scale="utc").tai - day.tai).sec
    if scale != "utc" or round(length_s) != 86401:
        raise cards.error(key, f"impossible time of day {text!r}: no leap second at the end of {date} ({scale.upper()})")


def parse_sexagesimal(text: str, cards: Cards, key: str, max_first: float) -> float:
    """'[+-]a:b:c' / 'a b c' / 'a:b' -> a + b/60 + c/3600 with the sign of the string."""
    match = _SEXAGESIMAL.match(text)
    if match is None:
        raise cards.error(key, f"cannot parse {text!r} as sexagesimal (e.g. '12:34:56.7' or '+12 34 56')")
    a, b, c = int(match["a"]), int(match["b"]), float(match["c"] or 0.0)
    if b >= 60 or c >= 60 or a > max_first:
        raise cards.error(key, f"impossible sexagesimal value {text!r}")
    value = a + b / 60.0 + c / 3600.0
    return -value if match["sign"] == "-" else value


def format_sexagesimal(value: float, decimals: int, sep: str = ":", sign: bool = False, wrap: int | None = None) -> str:
    """Format ``value`` (hours or degrees) as 'aa:bb:cc.ccc', rounding once so that 59.9999 carries.

    ``wrap`` (24 for right ascension in hours) folds a value that rounds up to it back to 0.
    """
    negative = value < 0
    units = round(abs(value) * 3600.0 * 10**decimals)
    if wrap is not None:
        units %= wrap * 3600 * 10**decimals
    whole, frac = divmod(units, 10**decimals)
    a, rest = divmod(whole, 3600)
    b, c = divmod(rest, 60)
    seconds = f"{c:02d}" + (f".{frac:0{decimals}d}" if decimals else "")
    prefix = ("-" if negative else "+") if sign else ("-" if negative else "")
    return f"{prefix}{a:02d}{sep}{b:02d}{sep}{seconds}"


def iso(t: Time, decimals: int = 6) -> str:
    """UTC ISO date-time with ``decimals`` digits of seconds (rounded, carries handled by astropy)."""
    out = Time(t.utc, precision=decimals)
    return out.isot


def seconds(value: float) -> TimeDelta:
    return TimeDelta(value, format="sec")
