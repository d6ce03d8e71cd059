"""IOD (Interactive Orbit Determination, G. D. Lewis 1998) observation lines: read and write.

Columns (1-based) of an 80-column IOD line, as the format description gives them::

    12345 98 123XYZ 2007 S 19981122112233444 56 14 1122334-112233 46 B+MMm Mm SSSsss
     1- 5 NORAD number         7-15 international designation (YY NNNPPP)
    17-20 station code           22 sky/station status  (E G F P B T; C O = no observation)
    24-40 UTC YYYYMMDDHHMMSSsss, trailing digits may be left blank (partial precision)
    42-43 time uncertainty MX = M * 10^(X-8) s
       45 angle format code      46 equinox ("epoch") code, see :mod:`aposos.formats.frames`
    48-54 RA or azimuth          55 sign    56-61 Dec or elevation
    63-64 position uncertainty MX = M * 10^(X-8) in the unit of the angle format
       66 optical behaviour   67-70 visual magnitude (sign, MMm)   72-73 its uncertainty (Mm)
    75-80 flash period SSSsss (seconds, three implied decimals)

Angle formats: 1 RA/Dec HHMMSSs+DDMMSS (uncertainty in arcsec), 2 HHMMmmm+DDMMmm (arcmin),
3 HHMMmmm+DDdddd (deg), 4 Az/El DDDMMSS+DDMMSS (arcsec), 5 DDDMMmm+DDMMmm (arcmin),
6 DDDdddd+DDdddd (deg), 7 RA/Dec HHMMSSs+DDdddd (deg). Az/El elevations are taken as
geometric (refraction removed); the IOD description does not say.

Conventions taken where the description is silent (checked against the TruSat test vectors):
numeric fields are left-justified, blank-padded on the right; station codes are four
characters from 0-9 and A-Z without I and O (COSPAR numbers and TruSat codes); a blank
sky-status column is accepted; a wholly blank international designation is accepted
(unidentified objects); a position uncertainty with M = 0 means "not given" (NaN).
"""

from __future__ import annotations

import math
import re
from os import PathLike

import numpy as np
from astropy.table import Table
from astropy.time import Time

from ..errors import AposError
from .fields import (FieldError, decode_angle, encode_angle, left_digits, mx_code, mx_value,
                     require_blank)
from .records import Record, full_year, iso_time, row_object

#: angle format code -> (layout of angle 1, layout of angle 2, kind, uncertainty unit in arcsec)
ANGLE_FORMATS = {
    1: ("HHMMSSs", "DDMMSS", "radec", 1.0),
    2: ("HHMMmmm", "DDMMmm", "radec", 60.0),
    3: ("HHMMmmm", "DDdddd", "radec", 3600.0),
    4: ("DDDMMSS", "DDMMSS", "azel", 1.0),
    5: ("DDDMMmm", "DDMMmm", "azel", 60.0),
    6: ("DDDdddd", "DDdddd", "azel", 3600.0),
    7: ("HHMMSSs", "DDdddd", "radec", 3600.0),
}
EQUINOX_CODES = {0: "of date", 1: "B1855", 2: "B1875", 3: "B1900", 4: "B1950", 5: "J2000",
                 6: "J2050"}
SKY_CODES = "EGFPBTCO "
BEHAVIOUR_CODES = "EFIRSXBHPADMNV"
STATION_RE = re.compile(r"^[0-9A-HJ-NP-Z]{4}$")
PIECE_RE = re.compile(r"^[A-Z]{1,3} *$")
IOD_SHAPE = re.compile(r"^(\d{5}| {5}) .{9} [0-9A-Z]{4} ")


class NoPosition(Exception):
    """A compliant IOD line that reports no position (station status, brightness only)."""


def parse_iod_line(line: str, number: int = 0) -> Record:
    """Parse one IOD line into a :class:`Record`.

    Raises :class:`FieldError` (reason) for a non-compliant line and :class:`NoPosition`
    for a compliant line without a position.
    """
    text = line.rstrip("\r\n")
    if len(text.rstrip()) > 80:
        raise FieldError("text beyond column 80")
    if "\t" in text:
        raise FieldError("tab character in a fixed-column line")
    s = text.ljust(80)
    station = s[16:20]
    if not STATION_RE.match(station):
        raise FieldError(f"station code {station!r} must be 4 characters 0-9/A-Z (no I, O)")
    require_blank(s[20], "column 21")
    sky = s[21]
    if sky not in SKY_CODES:
        raise FieldError(f"station status code {sky!r} is not one of E G F P B T C O")
    require_blank(s[22], "column 23")
    stamp = left_digits(s[23:40], "date/time (cols 24-40)", min_digits=8)
    time_iso = _iod_time(stamp)
    if not s[:16].strip():
        if sky not in "CO":
            raise FieldError("object number and designation are blank (only allowed for "
                             "station status C/O reports)")
        if s[40:].strip():
            raise FieldError("station status report has data after the date/time")
        raise NoPosition(f"station status report '{sky}' (no observation)")
    norad = s[0:5]
    if not norad.isdigit():
        raise FieldError(f"object number {norad!r} must be 5 digits")
    require_blank(s[5], "column 6")
    cospar = _intl_designation(s[6:15])
    require_blank(s[15], "column 16")
    require_blank(s[40], "column 41")
    sigma_time = np.nan
    if s[41:43].strip() or s[43:].strip():
        sigma_time = mx_value(s[41:43], "time uncertainty (cols 42-43)")
    require_blank(s[43], "column 44")
    extras = {"sky": sky.strip(), "angle_format": -1, "epoch_code": -1, "behaviour": "",
              "flash_period_s": np.nan}
    mag = _optical(s, extras)
    if not s[44:64].strip():
        raise NoPosition("no position reported (time/brightness only)")
    fmt_code, epoch_code = s[44], s[45]
    if fmt_code not in "1234567":
        raise FieldError(f"angle format code {fmt_code!r} is not 1-7")
    if epoch_code not in "0123456":
        raise FieldError(f"equinox code {epoch_code!r} is not 0-6")
    require_blank(s[46], "column 47")
    layout1, layout2, kind, unit_arcsec = ANGLE_FORMATS[int(fmt_code)]
    a1 = decode_angle(left_digits(s[47:54], "angle 1 (cols 48-54)"), layout1, "angle 1")
    sign = s[54]
    if sign not in "+-":
        raise FieldError(f"sign of angle 2 (col 55) {sign!r} must be + or -")
    a2 = decode_angle(left_digits(s[55:61], "angle 2 (cols 56-61)"), layout2, "angle 2")
    a2 = -a2 if sign == "-" else a2
    _check_range(a1, a2, kind)
    require_blank(s[61], "column 62")
    sigma = mx_value(s[62:64], "position uncertainty (cols 63-64)") * unit_arcsec
    require_blank(s[64], "column 65")
    extras.update(angle_format=int(fmt_code), epoch_code=int(epoch_code))
    return Record(line=number, fmt="iod", time_iso=time_iso, kind=kind, a1_deg=a1, a2_deg=a2,
                  equinox=EQUINOX_CODES[int(epoch_code)] if kind == "radec" else "azel",
                  sigma_arcsec=sigma if sigma > 0 else np.nan, sigma_time_s=sigma_time,
                  norad_id=norad, cospar_id=cospar, station=station, mag=mag,
                  refraction_removed=True, extras=extras)


def _iod_time(stamp: str) -> str:
    full = stamp.ljust(14, "0")
    return iso_time(int(full[0:4]), int(full[4:6]), int(full[6:8]), int(full[8:10]),
                    int(full[10:12]), int(full[12:14]), stamp[14:], "date/time (cols 24-40)")


def _intl_designation(field: str) -> str:
    """'YY NNNPPP' (cols 7-15) -> 'YYYY-NNNP'; all blank -> ''."""
    if not field.strip():
        return ""
    yy, gap, launch, piece = field[0:2], field[2], field[3:6], field[6:9]
    if not (yy.isdigit() and launch.isdigit()):
        raise FieldError(f"international designation {field!r} must be 'YY NNNP'")
    require_blank(gap, "column 9")
    if not PIECE_RE.match(piece):
        raise FieldError(f"launch piece {piece!r} must be 1-3 letters, left-justified")
    return f"{full_year(int(yy))}-{launch}{piece.strip()}"


def _check_range(a1: float, a2: float, kind: str) -> None:
    if kind == "azel" and not a1 < 360.0:
        raise FieldError(f"azimuth {a1:.4f} deg >= 360")
    if abs(a2) > 90.0:
        raise FieldError(f"{'declination' if kind == 'radec' else 'elevation'} {a2:.4f} deg "
                         "beyond 90")


def _optical(s: str, extras: dict) -> float:
    """Validate cols 66-80; store behaviour code and flash period; return the magnitude."""
    if not s[65:80].strip():
        return np.nan
    code = s[65]
    if code not in BEHAVIOUR_CODES:
        raise FieldError(f"optical behaviour code {code!r} is not one of {BEHAVIOUR_CODES}")
    extras["behaviour"] = code
    if not s[66:80].strip():
        return np.nan
    sign = s[66]
    if sign not in "+-":
        raise FieldError(f"magnitude sign (col 67) {sign!r} must be + or -")
    mmm = left_digits(s[67:70], "visual magnitude (cols 68-70)").ljust(3, "0")
    mag = (int(mmm) / 10.0) * (-1 if sign == "-" else 1)
    require_blank(s[70], "column 71")
    if s[71:73].strip() or s[73:80].strip():
        left_digits(s[71:73], "magnitude uncertainty (cols 72-73)")
    require_blank(s[73], "column 74")
    flash = s[74:80]
    if flash.strip():
        digits = flash.strip()
        if not digits.isdigit():
            raise FieldError(f"flash period (cols 75-80) {flash!r} is not digits")
        value = int(flash.replace(" ", "0")) / 1000.0
        if value <= 0:
            raise FieldError(f"flash period (cols 75-80) {flash!r} is zero")
        extras["flash_period_s"] = value
    return mag


# --- writer -------------------------------------------------------------------------------

def format_iod_line(norad: str, cospar: str, station: str, time_iso_ms: str, ra_deg: float,
                    dec_deg: float, sigma_arcsec: float, sigma_time_s: float,
                    angle_format: int = 2, sky: str = " ") -> str:
    """One IOD line for a star-relative J2000/ICRS position (equinox code 5).

    ``time_iso_ms`` is the UTC time as 'YYYY-MM-DDThh:mm:ss.sss'.

    Uncertainty codes are the MX codes nearest to ``sigma_time_s`` and ``sigma_arcsec``.
    """
    layout1, layout2, kind, unit_arcsec = ANGLE_FORMATS[angle_format]
    if kind != "radec":
        raise ValueError("only RA/Dec angle formats (1, 2, 3, 7) are written")
    stamp = time_iso_ms.replace("-", "").replace("T", "").replace(":", "").replace(".", "")
    if len(stamp) != 17:
        raise ValueError(f"cannot write time {time_iso_ms} (UTC ISO to the millisecond)")
    intl = _intl_field(cospar)
    a1 = encode_angle(ra_deg % 360.0, layout1)
    a2 = encode_angle(abs(dec_deg), layout2)
    sign = "-" if dec_deg < 0 and int(a2) != 0 else "+"
    line = (f"{norad:>5s} {intl} {station} {sky} {stamp} {mx_code(sigma_time_s)} "
            f"{angle_format}5 {a1}{sign}{a2} {mx_code(sigma_arcsec / unit_arcsec)}")
    return line


def _intl_field(cospar: str) -> str:
    """'YYYY-NNNP' -> 'YY NNNP  ' (9 columns); '' -> blanks."""
    if not cospar:
        return " " * 9
    m = re.match(r"^(\d{4})-(\d{3})([A-Z]{1,3})$", cospar.strip())
    if not m:
        raise ValueError(f"international designation {cospar!r} is not YYYY-NNNP")
    return f"{m.group(1)[2:]} {m.group(2)}{m.group(3):<3s}"


def write_iod(table: Table, path: str | PathLike, *, sigma_time_s: float | None = None,
              station_codes: dict | None = None, angle_format: int = 2,
              sky: str = " ") -> int:
    """Write observations as IOD lines (equinox code 5, J2000 = star-relative ICRS).

    Uses the columns ``time``, ``ra_deg``, ``dec_deg``, ``sigma_arcsec``, ``station`` and
    the object columns ``norad_id``/``cospar_id`` or ``object_id`` (a NORAD number), plus
    ``sigma_time_s`` when present (else the ``sigma_time_s`` argument, the station's timing
    accuracy). ``station_codes`` maps table station names to 4-character IOD codes.
    Uncertainty codes are computed per row from those uncertainties. Returns the number of
    lines written. Raises :class:`AposError` naming the row of anything that cannot be
    written (unknown uncertainty, station code, object number).
    """
    if angle_format not in (1, 2, 3, 7):
        raise AposError(f"IOD angle format {angle_format} is not an RA/Dec format (1, 2, 3, 7)",
                        path=path)
    station_codes = station_codes or {}
    # UTC rounded to the millisecond by astropy (carries into seconds, minutes, days)
    stamps = Time(table["time"], precision=3).utc.isot
    lines = []
    for i, row in enumerate(table):
        where = f"row {i}"
        st = str(row["station"]) if "station" in table.colnames else ""
        code = station_codes.get(st, st)
        if not STATION_RE.match(code):
            raise AposError(f"{where}: station {st!r} is not a 4-character IOD code; pass "
                            "station_codes={name: code}", path=path, key="station")
        norad, cospar, _ = row_object(table, i)
        if not (norad.isdigit() and len(norad) <= 5):
            raise AposError(f"{where}: no 5-digit NORAD number (norad_id or numeric "
                            "object_id)", path=path, key="object_id")
        norad = norad.zfill(5)
        st_sigma = (float(row["sigma_time_s"]) if "sigma_time_s" in table.colnames
                    else np.nan)
        if not math.isfinite(st_sigma) or st_sigma <= 0:
            st_sigma = sigma_time_s if sigma_time_s is not None else np.nan
        if not (math.isfinite(st_sigma) and st_sigma > 0):
            raise AposError(f"{where}: unknown time uncertainty: give a sigma_time_s column "
                            "or argument (the station timing accuracy)", path=path,
                            key="sigma_time_s")
        sigma = float(row["sigma_arcsec"]) if "sigma_arcsec" in table.colnames else np.nan
        if not (math.isfinite(sigma) and sigma > 0):
            raise AposError(f"{where}: sigma_arcsec must be positive", path=path,
                            key="sigma_arcsec")
        try:
            lines.append(format_iod_line(norad, cospar, code, stamps[i],
                                         float(row["ra_deg"]), float(row["dec_deg"]),
                                         sigma, st_sigma, angle_format, sky))
        except ValueError as exc:
            raise AposError(f"{where}: {exc}", path=path) from None
    with open(path, "w", encoding="ascii") as fh:
        fh.write("".join(line + "\n" for line in lines))
    return len(lines)
