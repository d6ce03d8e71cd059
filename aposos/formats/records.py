"""The parsed-record type of the line readers and the table every reader returns.

Columns of the table from :func:`aposos.formats.read_observations` (one row per position):

* ``time`` -- UTC astropy ``Time`` of the observation.
* ``ra_deg``, ``dec_deg`` -- star-relative ICRS direction, degrees (converted from the
  reported equinox or from azimuth/elevation, see :mod:`aposos.formats.frames`).
* ``sigma_arcsec`` -- 1-sigma position uncertainty as reported (NaN when not given).
* ``sigma_time_s`` -- time uncertainty, seconds (NaN when not given).
* ``object_id`` -- NORAD number if given, else the international designation, as given.
* ``norad_id`` -- NORAD catalogue number as written ('' if absent).
* ``cospar_id`` -- international designation in the form ``YYYY-NNNP`` ('' if absent).
* ``station`` -- station / site code as given.
* ``mag`` -- visual magnitude if reported (brightest for UK/RDE), NaN otherwise.
* ``line`` -- 1-based line number in the file.
* ``equinox`` -- what the reported angles were referred to ('J2000', 'B1950', 'of date',
  'azel', 'ICRF', 'EME2000', ...), before conversion.
* ``format`` -- 'iod', 'uk', 'rde', 'tdm'.

Format extras (filled with -1 / '' / NaN in rows of other formats): ``angle_format`` and
``epoch_code`` (IOD, UK: the codes as written), ``sky`` (IOD station/sky status),
``behaviour`` (IOD optical behaviour code), ``time_standard`` (UK, RDE), ``remark`` (UK,
RDE), ``flash_period_s`` (IOD, UK, RDE), ``reference_frame`` and ``participant`` (TDM).

``table.meta``: ``format`` ('iod', 'uk', 'rde', 'tdm-kvn', 'tdm-xml' or 'mixed'),
``formats`` (records per format), ``rejected`` (list of ``(line, reason)`` for every bad
record), ``skipped`` (``(line, reason)`` for compliant records that carry no position, e.g.
IOD station-status reports), ``path``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
from astropy.table import Table
from astropy.time import Time

from .frames import azel_to_icrs, radec_to_icrs


@dataclass
class Record:
    """One parsed observation before conversion to ICRS.

    ``a1_deg, a2_deg`` are RA/Dec (``kind='radec'``, referred to ``equinox``) or
    azimuth/elevation (``kind='azel'``; ``refraction_removed`` says whether the elevation
    is geometric).
    """

    line: int
    fmt: str
    time_iso: str
    kind: str
    a1_deg: float
    a2_deg: float
    equinox: str
    sigma_arcsec: float = np.nan
    sigma_time_s: float = np.nan
    norad_id: str = ""
    cospar_id: str = ""
    station: str = ""
    mag: float = np.nan
    refraction_removed: bool = True
    extras: dict = field(default_factory=dict)

    @property
    def object_id(self) -> str:
        return self.norad_id or self.cospar_id


COLUMNS = ("time", "ra_deg", "dec_deg", "sigma_arcsec", "sigma_time_s", "object_id",
           "norad_id", "cospar_id", "station", "mag", "line", "equinox", "format")


def empty_table() -> Table:
    t = Table(names=COLUMNS[1:], dtype=(float, float, float, float, str, str, str, str, float,
                                        int, str, str))
    t.add_column(Time([], format="isot", scale="utc"), name="time", index=0)
    return t


def build_table(records: list[Record], rejected: list, skipped: list, sites: dict,
                fmt: str, path=None) -> Table:
    """Convert records to ICRS and assemble the observation table (see module doc).

    Az/el records whose station is not in ``sites`` are moved to ``rejected``.
    """
    rejected = list(rejected)
    usable = []
    for rec in records:
        if rec.kind == "azel" and rec.station not in sites:
            rejected.append((rec.line, f"azimuth/elevation needs the coordinates of station "
                                       f"{rec.station!r}: pass sites= (a sites file or table)"))
        else:
            usable.append(rec)
    if not usable:
        table = empty_table()
    else:
        table = _table_of(usable, sites)
    counts: dict[str, int] = {}
    for rec in usable:
        counts[rec.fmt] = counts.get(rec.fmt, 0) + 1
    table.meta.update(format=fmt, formats=counts, rejected=sorted(rejected, key=_by_line),
                      skipped=sorted(skipped, key=_by_line),
                      path=None if path is None else str(path))
    return table


def _by_line(item):
    return (item[0] is None, item[0] or 0)


def _table_of(records: list[Record], sites: dict) -> Table:
    time = Time([r.time_iso for r in records], format="isot", scale="utc")
    ra = np.full(len(records), np.nan)
    dec = np.full(len(records), np.nan)
    groups: dict[tuple, list[int]] = {}
    for i, r in enumerate(records):
        key = ("azel",) if r.kind == "azel" else ("radec", r.equinox)
        groups.setdefault(key, []).append(i)
    for key, idx in groups.items():
        idx = np.array(idx)
        a1 = np.array([records[i].a1_deg for i in idx])
        a2 = np.array([records[i].a2_deg for i in idx])
        if key[0] == "radec":
            ra[idx], dec[idx] = radec_to_icrs(a1, a2, key[1], time[idx])
        else:
            site = np.array([sites[records[i].station] for i in idx])
            removed = np.array([records[i].refraction_removed for i in idx])
            ra[idx], dec[idx] = azel_to_icrs(a1, a2, time[idx], site[:, 0], site[:, 1],
                                             site[:, 2], removed)
    table = Table()
    table["time"] = time
    table["ra_deg"] = ra
    table["dec_deg"] = dec
    table["sigma_arcsec"] = [r.sigma_arcsec for r in records]
    table["sigma_time_s"] = [r.sigma_time_s for r in records]
    table["object_id"] = [r.object_id for r in records]
    table["norad_id"] = [r.norad_id for r in records]
    table["cospar_id"] = [r.cospar_id for r in records]
    table["station"] = [r.station for r in records]
    table["mag"] = [r.mag for r in records]
    table["line"] = [r.line for r in records]
    table["equinox"] = ["azel" if r.kind == "azel" else r.equinox for r in records]
    table["format"] = [r.fmt for r in records]
    for name in sorted({k for r in records for k in r.extras}):
        values = [r.extras.get(name) for r in records]
        sample = next(v for v in values if v is not None)
        fill = np.nan if isinstance(sample, float) else ("" if isinstance(sample, str) else -1)
        table[name] = [fill if v is None else v for v in values]
    for name, unit in (("ra_deg", "deg"), ("dec_deg", "deg"), ("sigma_arcsec", "arcsec"),
                       ("sigma_time_s", "s")):
        table[name].unit = unit
    return table


def iso_time(year: int, month: int, day: int, hour: int, minute: int, second: int,
             frac_digits: str, what: str) -> str:
    """ISO-8601 UTC string after range checks (a leap second 60 is allowed)."""
    from .fields import FieldError

    if not (1 <= month <= 12 and 1 <= day <= 31 and hour <= 23 and minute <= 59
            and second <= 60):
        raise FieldError(f"{what}: date/time out of range "
                         f"({year:04d}-{month:02d}-{day:02d} {hour:02d}:{minute:02d}:{second:02d})")
    try:
        import datetime

        datetime.date(year, month, day)
    except ValueError as exc:
        raise FieldError(f"{what}: {exc}") from None
    frac = f".{frac_digits}" if frac_digits else ""
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}{frac}"


_COSPAR = re.compile(r"^\d{4}-\d{3}[A-Z]{1,3}$")


def row_object(table: Table, i: int) -> tuple[str, str, str]:
    """(NORAD number, COSPAR id, label) of row ``i`` for the writers ('' when unknown).

    The NORAD number comes from ``norad_id`` (str or int; 0 means unknown, as for UCTs in
    the store) or from a numeric ``object_id``; the designation from ``cospar_id`` or an
    ``object_id`` of the form ``YYYY-NNNP``. The label is the NORAD number, else the
    designation, else ``object_id`` as written.
    """
    def cell(name):
        if name not in table.colnames:
            return ""
        value = table[name][i]
        return "" if np.ma.is_masked(value) else str(value).strip()

    obj = cell("object_id")
    norad = cell("norad_id") or (obj if obj.isdigit() else "")
    if norad.isdigit() and int(norad) == 0:
        norad = ""
    cospar = cell("cospar_id") or (obj if _COSPAR.match(obj) else "")
    return norad, cospar, norad or cospar or obj


def full_year(yy: int) -> int:
    """Two-digit year -> four digits, pivot 1957 (first catalogued launch)."""
    return 1900 + yy if yy >= 57 else 2000 + yy


#: Launch-piece letters of international designations (no I, no O).
PIECE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"


def piece_letters(number: int) -> str:
    """Launch piece number (1 = A, 24 = Z, 25 = AA, ...) as letters."""
    if number < 1:
        raise ValueError("launch piece numbers start at 1")
    out = ""
    while number > 0:
        number, rem = divmod(number - 1, 24)
        out = PIECE_LETTERS[rem] + out
    return out
