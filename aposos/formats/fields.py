"""Fixed-column field codecs shared by the IOD, UK and RDE readers and the IOD writer.

The satellite-observing formats pack numbers into fixed columns without decimal points.
Partial precision is written by leaving trailing columns blank ("1122   " is 11h22m), so
a numeric field is *digits followed by blanks*: a leading blank, a blank between digits or
any other character makes the record non-compliant. Violations raise :class:`FieldError`
whose message is the reason recorded in ``table.meta['rejected']``.

Angle layouts are written as in the format documents: ``H``/``D`` for the leading unit
(hours or degrees), ``MM`` minutes, ``SS`` seconds, and lower-case letters for decimals of
the last unit, e.g. ``HHMMSSs`` (RA to 0.1 s of time), ``DDMMmm`` (Dec to 0.01 arcmin),
``DDDdddd`` (azimuth to 1e-4 deg).
"""

from __future__ import annotations

import math
import re


class FieldError(ValueError):
    """A field that does not follow its format; the message says which field and why."""


def require_blank(text: str, what: str) -> None:
    """Columns that the format reserves as separators must be blank."""
    if text.strip():
        raise FieldError(f"{what} must be blank, found {text!r}")


def left_digits(text: str, what: str, min_digits: int = 1) -> str:
    """The digits of a left-justified numeric field (trailing blanks allowed)."""
    digits = text.rstrip(" ")
    if len(digits) < min_digits or not digits.isdigit():
        if text.startswith(" ") and text.strip():
            raise FieldError(f"{what} {text!r} has a leading blank")
        if " " in digits:
            raise FieldError(f"{what} {text!r} has a blank between digits")
        if len(digits) < min_digits and digits.isdigit():
            raise FieldError(f"{what} {text!r} needs at least {min_digits} digits")
        raise FieldError(f"{what} {text!r} is not digits")
    return digits


def mx_value(code: str, what: str) -> float:
    """Value of an IOD ``MX`` uncertainty code: ``M * 10**(X - 8)`` (both digits required)."""
    if len(code) != 2 or not code.isdigit():
        raise FieldError(f"{what} {code!r} must be two digits MX (M * 10^(X-8))")
    return int(code[0]) * 10.0 ** (int(code[1]) - 8)


def mx_code(value: float) -> str:
    """The IOD ``MX`` code nearest (in ratio) to ``value`` (> 0); M in 1..9, X in 0..9."""
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"uncertainty must be positive and finite, got {value!r}")
    if not 1e-8 / 1.5 <= value <= 90.0 * 1.5:
        raise ValueError(f"uncertainty {value:g} outside the MX range 1e-8 .. 90")
    exponent = math.floor(math.log10(value))
    mantissa = value / 10.0 ** exponent  # in [1, 10)
    low, high = math.floor(mantissa), math.floor(mantissa) + 1
    m = low if math.log(mantissa / low) <= math.log(high / mantissa) else high
    if m == 10:
        m, exponent = 1, exponent + 1
    x = min(max(exponent + 8, 0), 9)
    if x != exponent + 8:  # clipped at the ends of the range: best mantissa there
        m = min(max(round(value / 10.0 ** (x - 8)), 1), 9)
    return f"{m}{x}"


_LAYOUT = re.compile(r"^(H{2}|D{2,3})(MM)?(SS)?([a-z]*)$")


def _parse_layout(layout: str):
    m = _LAYOUT.match(layout)
    if not m:
        raise ValueError(f"unknown angle layout {layout!r}")
    lead, mm, ss, frac = m.groups()
    return lead, bool(mm), bool(ss), len(frac)


def layout_ulp_deg(layout: str) -> float:
    """Angle (degrees) of one unit in the last digit of a full-length field."""
    lead, mm, ss, nfrac = _parse_layout(layout)
    unit = 15.0 if lead[0] == "H" else 1.0
    if ss:
        unit /= 3600.0
    elif mm:
        unit /= 60.0
    return unit * 10.0 ** (-nfrac)


def decode_angle(digits: str, layout: str, what: str) -> float:
    """Angle in degrees of a (possibly truncated) digit string in ``layout``.

    Missing trailing digits count as zeros (partial precision). Minutes and seconds must be
    below 60 and hours below 24.
    """
    lead, mm, ss, nfrac = _parse_layout(layout)
    if len(digits) > len(layout):
        raise FieldError(f"{what} {digits!r} is longer than {layout}")
    full = digits.ljust(len(layout), "0")
    pos = len(lead)
    big = int(full[:pos])
    minutes = seconds = 0.0
    frac = int(full[len(layout) - nfrac:]) / 10.0 ** nfrac if nfrac else 0.0
    if mm:
        minutes = int(full[pos:pos + 2])
        pos += 2
        if minutes >= 60:
            raise FieldError(f"{what} {digits!r}: minutes {minutes} >= 60")
    if ss:
        seconds = int(full[pos:pos + 2])
        if seconds >= 60:
            raise FieldError(f"{what} {digits!r}: seconds {seconds} >= 60")
        seconds += frac
    elif mm:
        minutes += frac
    else:
        big += frac
    if lead[0] == "H" and big >= 24:
        raise FieldError(f"{what} {digits!r}: hours >= 24")
    value = big + minutes / 60.0 + seconds / 3600.0
    return value * (15.0 if lead[0] == "H" else 1.0)


def encode_angle(value_deg: float, layout: str) -> str:
    """Digits of ``value_deg`` (>= 0) in ``layout``, rounded to its last digit.

    Hours wrap at 24 h (RA); the caller gives the sign of declinations separately.
    """
    lead, mm, ss, nfrac = _parse_layout(layout)
    ulp = layout_ulp_deg(layout)
    n = int(round(value_deg / ulp))
    if lead[0] == "H":
        n %= int(round(360.0 / ulp))
    parts = []
    if nfrac:
        n, f = divmod(n, 10 ** nfrac)
        parts.append(f"{f:0{nfrac}d}")
    if ss:
        n, s = divmod(n, 60)
        parts.append(f"{s:02d}")
    if mm:
        n, m = divmod(n, 60)
        parts.append(f"{m:02d}")
    parts.append(f"{n:0{len(lead)}d}")
    text = "".join(reversed(parts))
    if len(text) != len(layout):
        raise ValueError(f"{value_deg!r} deg does not fit layout {layout}")
    return text
