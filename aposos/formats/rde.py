"""RDE (Russell D. Eberst) reports: a header, day lines, observation lines, ``999``.

::

    2420 0405 0.211 1204      site, YYMM, time accuracy T.t s, time standard, position
                              format (always 1: HHMMSS+DDMMSS), accuracy SSS arcsec, equinox
    05                        day of month (repeats when the day changes)
    0401203 205744.76 185544+324606 4.0 5.8 3 R
                              designation YYLLLPP, UTC HHMMSS.ss, RA HHMMSS, Dec +DDMMSS,
                              brightest and faintest magnitude, flash period, remark
    999                       end of the report

Equinox codes as in :mod:`aposos.formats.frames` (0 = "sent separately": rejected).
"""

from __future__ import annotations

import re

import numpy as np

from .fields import FieldError, decode_angle
from .records import Record, full_year, iso_time, piece_letters

HEADER_RE = re.compile(r"^(\d{4}) (\d\d)(\d\d) ([\d ]\.\d)([1-3])(\d) (\d{3})(\d)\s*$")
DAY_RE = re.compile(r"^(\d\d)\s*$")
OBS_RE = re.compile(r"^(\d{7}) (\d{6}\.\d\d) (\d{6})([+-])(\d{6})(?P<rest>.*)$")
EQUINOX_CODES = {1: "B1855", 2: "B1875", 3: "B1900", 4: "B1950", 5: "J2000", 6: "J2050"}


def is_rde_header(line: str) -> bool:
    return bool(HEADER_RE.match(line.rstrip("\r\n")))


class RdeBlock:
    """Parser state of one RDE report (from the header line to ``999``)."""

    def __init__(self, header: str, number: int):
        m = HEADER_RE.match(header.rstrip("\r\n"))
        self.site, yy, mm, tacc, tstd, pfmt, pacc, epoch = m.groups()
        self.year, self.month = full_year(int(yy)), int(mm)
        self.header_line = number
        self.error = None
        if not 1 <= self.month <= 12:
            self.error = f"RDE header (line {number}): month {mm} out of range"
        if pfmt != "1":
            self.error = f"RDE header (line {number}): position format {pfmt} (only 1 defined)"
        if epoch == "0" or int(epoch) > 6:
            self.error = (f"RDE header (line {number}): equinox code {epoch} "
                          "('sent separately' or undefined): equinox unknown")
        self.equinox = EQUINOX_CODES.get(int(epoch), "")
        self.sigma_time_s = float(tacc.replace(" ", "0"))
        self.sigma_arcsec = float(pacc)
        self.time_standard = int(tstd)
        self.day = None

    def parse(self, line: str, number: int):
        """A day line (returns None) or an observation (returns a Record); FieldError else."""
        text = line.rstrip("\r\n")
        m = DAY_RE.match(text)
        if m:
            self.day = int(m.group(1))
            return None
        m = OBS_RE.match(text)
        if not m:
            raise FieldError("not an RDE day line (DD) or observation line "
                             "(YYLLLPP HHMMSS.ss HHMMSS+DDMMSS ...)")
        if self.error:
            raise FieldError(self.error)
        if self.day is None:
            raise FieldError("observation before the first day line of the report")
        desig, clock, ra, sign, dec, rest = m.groups()
        piece = int(desig[5:7])
        if piece == 0:
            raise FieldError("launch piece 00")
        time_iso = iso_time(self.year, self.month, self.day, int(clock[0:2]), int(clock[2:4]),
                            int(clock[4:6]), clock[7:9], "time")
        ra_deg = decode_angle(ra, "HHMMSS", "RA")
        dec_deg = decode_angle(dec, "DDMMSS", "Dec") * (-1 if sign == "-" else 1)
        if abs(dec_deg) > 90:
            raise FieldError(f"declination {dec_deg:.4f} beyond 90")
        mag, flash, remark = _rest(rest)
        return Record(line=number, fmt="rde", time_iso=time_iso, kind="radec", a1_deg=ra_deg,
                      a2_deg=dec_deg, equinox=self.equinox, sigma_arcsec=self.sigma_arcsec,
                      sigma_time_s=self.sigma_time_s,
                      cospar_id=f"{full_year(int(desig[:2]))}-{desig[2:5]}{piece_letters(piece)}",
                      station=self.site, mag=mag,
                      extras={"time_standard": self.time_standard, "remark": remark,
                              "flash_period_s": flash})


def _rest(rest: str):
    """Brightest, faintest magnitude, flash period (s), remark code after the position."""
    tokens = rest.split()
    numbers, remark = tokens, ""
    if tokens and tokens[-1] in ("S", "I", "R", "F", "X", "E"):
        numbers, remark = tokens[:-1], tokens[-1]
    if len(numbers) > 3:
        raise FieldError(f"unexpected text after the position: {rest.strip()!r}")
    values = []
    for tok in numbers:
        try:
            values.append(float(tok))
        except ValueError:
            raise FieldError(f"magnitude/flash field {tok!r} is not a number") from None
    values += [np.nan] * (3 - len(values))
    return values[0], (values[2] if values[2] > 0 else np.nan), remark
