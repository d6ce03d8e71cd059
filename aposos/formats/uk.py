"""UK (RGO / RAE "Reporting of Satellite Observations", 1973) 80-column observation lines.

Columns (1-based)::

    YYLLLPPssssyymmddHHMMSSssssTttttSfHHMMmmmm+DDMMmmmMmmmE             bbbfffSSSssO
     1- 7 international designation, numeric (YY launch year, LLL launch, PP piece)
     8-11 station code        12-17 UTC date YYMMDD      18-27 UTC time HHMMSSssss
    28-32 time accuracy S.ssss seconds (blank: not given)
       33 time standard (1 radio signal, 2 speaking clock, 3 broadcast pips)
       34 angle format: 1 RA/Dec HHMMSSss+DDMMSSs (accuracy SSS.s arcsec),
          2 HHMMmmmm+DDMMmmm (MM.mm arcmin), 3 HHMMmmmm+DDddddd (D.ddd deg),
          4/5/6 Az/El DDDMMSSs DDMMSSs / DDDMMmmm DDMMmmm / DDDddddd DDddddd with the
          elevation corrected for refraction, 7/8/9 the same not corrected
    35-42 RA or azimuth   43 sign (may be blank for Az/El)   44-50 Dec or elevation
    51-54 position accuracy (unit of the angle format, implied decimal, blanks read as 0)
       55 equinox of the star chart (see :mod:`aposos.formats.frames`; 0 = "sent
          separately", rejected because unknown)
    56-68 range and range accuracy (radar; blank or digits)
    69-71 brightest magnitude (xMm or Mmm)   72-74 faintest (same, or INV)
    75-79 flash period SSS.ss seconds         80 remark (S I R F X E)

Numeric fields are left-justified with blank padding (partial precision), as in IOD.
"""

from __future__ import annotations

import re

import numpy as np

from .fields import FieldError, decode_angle, left_digits
from .iod import STATION_RE
from .records import Record, full_year, iso_time, piece_letters

#: angle format -> (layout 1, layout 2, kind, accuracy divisor, accuracy unit in arcsec)
ANGLE_FORMATS = {
    1: ("HHMMSSss", "DDMMSSs", "radec", 10.0, 1.0),
    2: ("HHMMmmmm", "DDMMmmm", "radec", 100.0, 60.0),
    3: ("HHMMmmmm", "DDddddd", "radec", 1000.0, 3600.0),
    4: ("DDDMMSSs", "DDMMSSs", "azel", 10.0, 1.0),
    5: ("DDDMMmmm", "DDMMmmm", "azel", 100.0, 60.0),
    6: ("DDDddddd", "DDddddd", "azel", 1000.0, 3600.0),
}
EQUINOX_CODES = {1: "B1855", 2: "B1875", 3: "B1900", 4: "B1950", 5: "J2000", 6: "J2050"}
UK_SHAPE = re.compile(r"^\d{17}")
_MAG = re.compile(r"^([+-]\d[\d ]|\d[\d ][\d ])$")


def parse_uk_line(line: str, number: int = 0) -> Record:
    """Parse one UK line into a :class:`Record`; :class:`FieldError` gives the reason."""
    text = line.rstrip("\r\n")
    if len(text.rstrip()) > 80:
        raise FieldError("text beyond column 80")
    s = text.ljust(80)
    desig = s[0:7]
    if not desig.isdigit():
        raise FieldError(f"international designation (cols 1-7) {desig!r} must be 7 digits")
    piece = int(desig[5:7])
    if piece == 0:
        raise FieldError("launch piece 00 (cols 6-7)")
    cospar = f"{full_year(int(desig[0:2]))}-{desig[2:5]}{piece_letters(piece)}"
    station = s[7:11]
    if not STATION_RE.match(station):
        raise FieldError(f"station code {station!r} must be 4 characters 0-9/A-Z (no I, O)")
    date = s[11:17]
    if not date.isdigit():
        raise FieldError(f"date (cols 12-17) {date!r} must be YYMMDD digits")
    clock = left_digits(s[17:27], "time (cols 18-27)", min_digits=4).ljust(6, "0")
    time_iso = iso_time(full_year(int(date[0:2])), int(date[2:4]), int(date[4:6]),
                        int(clock[0:2]), int(clock[2:4]), int(clock[4:6]), clock[6:],
                        "date/time (cols 12-27)")
    sigma_time = np.nan
    if s[27:32].strip():
        acc = left_digits(s[27:32], "time accuracy (cols 28-32)")
        sigma_time = int(acc.ljust(5, "0")) / 1e4
    if s[32] not in "123":
        raise FieldError(f"time standard code (col 33) {s[32]!r} is not 1-3")
    code = s[33]
    if code not in "123456789":
        raise FieldError(f"angle format code (col 34) {code!r} is not 1-9")
    fmt = int(code)
    layout1, layout2, kind, divisor, unit = ANGLE_FORMATS[fmt if fmt <= 6 else fmt - 3]
    a1 = decode_angle(left_digits(s[34:42], "angle 1 (cols 35-42)"), layout1, "angle 1")
    sign = s[42]
    if sign not in ("+-" if kind == "radec" else "+- "):
        raise FieldError(f"sign of angle 2 (col 43) {sign!r} must be + or -")
    a2 = decode_angle(left_digits(s[43:50], "angle 2 (cols 44-50)"), layout2, "angle 2")
    a2 = -a2 if sign == "-" else a2
    if kind == "azel" and not a1 < 360.0:
        raise FieldError(f"azimuth {a1:.4f} deg >= 360")
    if abs(a2) > 90.0:
        raise FieldError(f"angle 2 {a2:.4f} deg beyond 90")
    acc = s[50:54]
    if acc.strip() and not acc.replace(" ", "").isdigit():
        raise FieldError(f"position accuracy (cols 51-54) {acc!r} is not digits")
    sigma = int(acc.replace(" ", "0")) / divisor * unit if acc.strip() else np.nan
    epoch = s[54]
    if epoch not in "0123456":
        raise FieldError(f"equinox code (col 55) {epoch!r} is not 0-6")
    rng = s[55:68]
    if rng.strip() and not rng.replace(" ", "").isdigit():
        raise FieldError(f"range fields (cols 56-68) {rng.strip()!r} are not digits")
    extras = {"angle_format": fmt, "epoch_code": int(epoch), "time_standard": int(s[32]),
              "remark": s[79].strip(), "flash_period_s": np.nan}
    mag = _mag(s[68:71], "brightest magnitude (cols 69-71)")
    if s[71:74] != "INV":
        _mag(s[71:74], "faintest magnitude (cols 72-74)")
    flash = s[74:79]
    if flash.strip():
        digits = flash.strip()
        if not digits.isdigit() or int(digits) == 0:
            raise FieldError(f"flash period (cols 75-79) {flash!r} must be a positive number")
        extras["flash_period_s"] = int(flash.replace(" ", "0")) / 100.0
    if s[79] not in "SIRFXE ":
        raise FieldError(f"remark code (col 80) {s[79]!r} is not one of S I R F X E")
    if kind == "radec" and epoch == "0":
        raise FieldError("equinox code 0 ('sent separately'): the equinox of the position "
                         "is unknown")
    return Record(line=number, fmt="uk", time_iso=time_iso, kind=kind, a1_deg=a1, a2_deg=a2,
                  equinox=EQUINOX_CODES.get(int(epoch), "") if kind == "radec" else "azel",
                  sigma_arcsec=sigma if sigma > 0 else np.nan, sigma_time_s=sigma_time,
                  cospar_id=cospar, station=station, mag=mag,
                  refraction_removed=fmt <= 6, extras=extras)


def _mag(field: str, what: str) -> float:
    """Magnitude field 'xMm' (sign, units, tenths) or 'Mmm'; blank -> NaN."""
    if not field.strip():
        return np.nan
    if not _MAG.match(field) or " " in field.rstrip():
        raise FieldError(f"{what} {field!r} must be xMm or Mmm")
    if field[0] in "+-":
        value = int(field[1:].replace(" ", "0")) / 10.0
        return -value if field[0] == "-" else value
    return int(field.replace(" ", "0")) / 10.0
