"""Two-line element catalogs: read, validate, choose one element set per object.

Reads 2LE and 3LE files (name lines with or without the ``0 `` prefix, CRLF or LF), with
alpha-5 catalog numbers (``A0001`` = 100001; letters I and O unused) and the legacy quirks of
older archives (explicit ``+`` signs, zero-padded angles, space- or zero-padded catalog
numbers). Validation per element set:

* line 1 / line 2 structure, the two catalog numbers agree, numeric fields parse, SGP4
  initialises (``Satrec.error == 0``): otherwise the element set is **rejected** and listed
  in :attr:`TleCatalog.rejected` with file, line number and reason (and logged);
* checksum (column 69, modulo-10 sum of digits with ``-`` counting 1): a mismatch or a
  missing checksum is **kept** (the elements themselves are usually fine), logged and listed
  in :attr:`TleCatalog.checksum_errors`: never dropped silently.

Several element sets of one object (duplicates in one file, or the same object in several
files) are all kept in :attr:`TleCatalog.history`; the *current* one is chosen by file
precedence (the first file given wins), then, within that file, by the epoch nearest the time
``near`` (the latest epoch when ``near`` is None). :meth:`TleCatalog.select` re-chooses for
another time.

Epochs are UTC (the TLE convention), returned as astropy ``Time``.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.time import Time
from sgp4.api import Satrec, SatrecArray

from .errors import AposError

log = logging.getLogger(__name__)

_ALPHA5 = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # 10..33; I and O are not used


def parse_catalog_number(field_text: str) -> int:
    """NORAD catalog number of columns 3-7, with alpha-5 (``A0001`` -> 100001, ``Z9999`` -> 339999).

    Raises ValueError on anything else.
    """
    s = field_text.strip()
    if not s:
        raise ValueError("empty catalog number")
    if s[0].isalpha():
        if len(s) != 5 or s[0].upper() not in _ALPHA5 or not s[1:].isdigit():
            raise ValueError(f"bad alpha-5 catalog number {field_text!r}")
        return (10 + _ALPHA5.index(s[0].upper())) * 10000 + int(s[1:])
    if not s.isdigit():
        raise ValueError(f"bad catalog number {field_text!r}")
    return int(s)


def format_catalog_number(norad_id: int) -> str:
    """Five-character catalog number field (alpha-5 above 99999)."""
    if norad_id < 100000:
        return f"{norad_id:05d}"
    lead, rest = divmod(norad_id, 10000)
    if lead - 10 >= len(_ALPHA5):
        raise ValueError(f"catalog number {norad_id} beyond alpha-5 range")
    return _ALPHA5[lead - 10] + f"{rest:04d}"


def checksum(line: str) -> int:
    """TLE checksum of the first 68 columns: sum of digits, ``-`` counts 1, modulo 10."""
    s = line[:68]
    return (sum(d * s.count(str(d)) for d in range(1, 10)) + s.count("-")) % 10


@dataclass(frozen=True)
class Rejection:
    """An element set (or stray line) that could not be used, and why."""

    path: str
    line: int  # 1-based line number of the first offending line
    reason: str
    text: str = ""

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass(frozen=True, eq=False)
class TleEntry:
    """One element set.

    ``epoch_jd`` is the (jd1, jd2) pair of the epoch in UTC; ``line`` the 1-based line number
    of line 1 in ``path``; ``precedence`` the index of the file in the list given to
    :func:`load_catalog` (0 wins); ``checksum_ok`` False when the checksum is wrong or missing.
    """

    norad_id: int
    name: str
    line1: str
    line2: str
    epoch_jd: tuple[float, float]
    path: str
    line: int
    precedence: int = 0
    checksum_ok: bool = True

    @functools.cached_property
    def satrec(self) -> Satrec:
        return Satrec.twoline2rv(self.line1, self.line2)

    @property
    def epoch(self) -> Time:
        return Time(*self.epoch_jd, format="jd", scale="utc")

    def age_days(self, when) -> np.ndarray:
        """TLE age at ``when`` in days (positive when the epoch is in the past)."""
        t = Time(when).utc
        return (t.jd1 - self.epoch_jd[0]) + (t.jd2 - self.epoch_jd[1])

    @property
    def lines(self) -> tuple[str, str]:
        return self.line1, self.line2


def _check_line(line: str, number: str, path, lineno) -> None:
    if len(line) < 68:
        raise AposError(f"line {number} has {len(line)} columns, expected 69", path=path, line=lineno)
    if line[0] != number or line[1] != " ":
        raise AposError(f"expected line {number}", path=path, line=lineno)


def _validate_fields(l1: str, l2: str, path, lineno) -> int:
    """Catalog number of a structurally valid pair; AposError naming the field otherwise."""
    try:
        n1 = parse_catalog_number(l1[2:7])
        n2 = parse_catalog_number(l2[2:7])
    except ValueError as e:
        raise AposError(str(e), path=path, line=lineno) from None
    if n1 != n2:
        raise AposError(f"catalog numbers differ between line 1 ({n1}) and line 2 ({n2})", path=path, line=lineno)
    fields = {  # (line, columns 1-based inclusive, name) of the numbers SGP4 needs
        (1, 19, 20, "epoch year"), (1, 21, 32, "epoch day"), (1, 34, 43, "first derivative of mean motion"),
        (2, 9, 16, "inclination"), (2, 18, 25, "RAAN"), (2, 35, 42, "argument of perigee"),
        (2, 44, 51, "mean anomaly"), (2, 53, 63, "mean motion"),
    }
    for which, a, b, name in fields:
        text = (l1 if which == 1 else l2)[a - 1:b]
        try:
            float(text)
        except ValueError:
            raise AposError(f"{name} (line {which}, columns {a}-{b}) is not a number: {text!r}",
                            path=path, line=lineno + which - 1) from None
    ecc = l2[26:33]
    if not ecc.strip().isdigit():
        raise AposError(f"eccentricity (line 2, columns 27-33) is not digits: {ecc!r}", path=path, line=lineno + 1)
    for a, b, name in ((45, 52, "second derivative of mean motion"), (54, 61, "BSTAR")):
        text = l1[a - 1:b].strip()
        if text and not _is_exp_field(text):
            raise AposError(f"{name} (line 1, columns {a}-{b}) is malformed: {text!r}", path=path, line=lineno)
    return n1


def _is_exp_field(text: str) -> bool:
    """Implied-decimal exponent field like ``-11606-4``, ``+00000-0``, ``00000+0``."""
    s = text.lstrip("+- ")
    return len(s) >= 3 and s[:-2].strip().isdigit() and s[-2] in "+-" and s[-1].isdigit()


def parse_tle_text(text: str, path="<text>", precedence: int = 0):
    """Parse the text of a 2LE/3LE file. Returns ``(entries, rejected, checksum_errors)``."""
    path = os.fspath(path)
    entries: list[TleEntry] = []
    rejected: list[Rejection] = []
    bad_sums: list[Rejection] = []
    lines = text.splitlines()
    name, name_line = "", None
    i = 0

    def reject(lineno, reason, txt=""):
        r = Rejection(path, lineno, reason, txt)
        rejected.append(r)
        log.warning("rejected TLE: %s", r)

    while i < len(lines):
        raw = lines[i].rstrip()
        lineno = i + 1
        if not raw.strip():
            i += 1
            continue
        if raw.startswith("1 ") and len(raw) >= 60:
            nxt = lines[i + 1].rstrip() if i + 1 < len(lines) else ""
            if not nxt.startswith("2 "):
                reject(lineno, "line 1 not followed by line 2", raw)
                name, name_line = "", None
                i += 1
                continue
            try:
                _check_line(raw, "1", path, lineno)
                _check_line(nxt, "2", path, lineno + 1)
                norad = _validate_fields(raw, nxt, path, lineno)
                sat = Satrec.twoline2rv(raw[:69], nxt[:69])
                if sat.error:
                    raise AposError(f"SGP4 cannot initialise these elements (error {sat.error})", path=path, line=lineno)
            except AposError as e:
                reject(e.line or lineno, e.problem, raw + "\n" + nxt)
            else:
                ok = True
                for k, ln in ((0, raw), (1, nxt)):
                    if len(ln) < 69 or not ln[68].isdigit() or int(ln[68]) != checksum(ln):
                        ok = False
                        got = ln[68] if len(ln) >= 69 else "missing"
                        r = Rejection(path, lineno + k, f"checksum {got}, computed {checksum(ln)} (kept)", ln)
                        bad_sums.append(r)
                        log.warning("TLE checksum: %s", r)
                if not name:
                    name = raw[9:17].strip()  # international designator stands in for a missing name
                entry = TleEntry(norad, name, raw[:69], nxt[:69], (sat.jdsatepoch, sat.jdsatepochF),
                                 path, lineno, precedence, ok)
                entry.__dict__["satrec"] = sat  # cached_property slot: reuse the parsed Satrec
                entries.append(entry)
            name, name_line = "", None
            i += 2
            continue
        if raw.startswith("2 ") and len(raw) >= 60:
            reject(lineno, "line 2 without a preceding line 1", raw)
            i += 1
            continue
        # a name line (3LE), with or without the "0 " prefix
        if name_line is not None:
            reject(name_line, f"name line {name!r} not followed by an element set")
        name = raw[1:].strip() if raw[:2] in ("0 ", "0") else raw.strip()
        name_line = lineno
        i += 1
    if name_line is not None:
        reject(name_line, f"name line {name!r} at end of file without an element set")
    return entries, rejected, bad_sums


class TleCatalog:
    """Element sets of many objects, one *current* set per object.

    ``len(catalog)`` is the number of objects; iteration yields the current
    :class:`TleEntry` of each object in ascending catalog number; ``catalog[norad_id]``
    gives one. ``history[norad_id]`` lists every set read for that object (all files, sorted
    by epoch). ``rejected`` and ``checksum_errors`` list :class:`Rejection` records.
    """

    def __init__(self, entries, near=None, rejected=(), checksum_errors=(), paths=()):
        self.paths = list(paths)
        self.rejected: list[Rejection] = list(rejected)
        self.checksum_errors: list[Rejection] = list(checksum_errors)
        self.history: dict[int, list[TleEntry]] = {}
        for e in entries:
            self.history.setdefault(e.norad_id, []).append(e)
        for h in self.history.values():
            h.sort(key=lambda e: e.epoch_jd[0] + e.epoch_jd[1])
        self.near = None if near is None else Time(near).utc
        self._current = {k: self._choose(h) for k, h in sorted(self.history.items())}

    def _choose(self, sets: list[TleEntry]) -> TleEntry:
        best = min(e.precedence for e in sets)
        sets = [e for e in sets if e.precedence == best]
        if self.near is None:
            return sets[-1]
        return min(sets, key=lambda e: abs(e.age_days(self.near)))

    def select(self, near) -> "TleCatalog":
        """The same element sets with the current one per object chosen nearest ``near``."""
        out = TleCatalog.__new__(TleCatalog)
        out.paths, out.rejected, out.checksum_errors = self.paths, self.rejected, self.checksum_errors
        out.history, out.near = self.history, Time(near).utc
        out._current = {k: out._choose(h) for k, h in self.history.items()}
        return out

    def __len__(self) -> int:
        return len(self._current)

    def __iter__(self):
        return iter(self._current.values())

    def __getitem__(self, norad_id: int) -> TleEntry:
        return self._current[int(norad_id)]

    def __contains__(self, norad_id) -> bool:
        return int(norad_id) in self._current

    @property
    def entries(self) -> list[TleEntry]:
        return list(self._current.values())

    @functools.cached_property
    def norad_ids(self) -> np.ndarray:
        return np.fromiter(self._current, dtype=np.int64, count=len(self))

    def epochs(self) -> Time:
        """Epochs of the current sets (UTC)."""
        e = np.array([x.epoch_jd for x in self]).reshape(-1, 2)
        return Time(e[:, 0], e[:, 1], format="jd", scale="utc")

    def age_days(self, when) -> np.ndarray:
        """Age (days) of each current set at ``when`` (a scalar time)."""
        t = Time(when).utc
        e = np.array([x.epoch_jd for x in self]).reshape(-1, 2)
        return (t.jd1 - e[:, 0]) + (t.jd2 - e[:, 1])

    def satrec_array(self) -> SatrecArray:
        return SatrecArray([e.satrec for e in self])

    def subset(self, norad_ids) -> list[TleEntry]:
        return [self[n] for n in norad_ids]

    def summary(self) -> str:
        n_sets = sum(len(h) for h in self.history.values())
        return (f"{len(self)} objects from {n_sets} element sets in {len(self.paths)} file(s); "
                f"{len(self.rejected)} rejected, {len(self.checksum_errors)} checksum warnings")


def load_catalog(path_or_paths, near=None) -> TleCatalog:
    """Read one or several TLE files (first file has precedence) into a :class:`TleCatalog`.

    ``near``: observation time used to choose, among duplicates, the set whose epoch is
    nearest (default: the latest epoch). A missing or unreadable file raises
    :class:`~aposos.errors.AposError`; bad element sets inside a file are rejected and listed,
    the rest still loads.
    """
    paths = [path_or_paths] if isinstance(path_or_paths, (str, os.PathLike)) else list(path_or_paths)
    entries, rejected, sums = [], [], []
    for k, p in enumerate(paths):
        p = Path(p)
        try:
            text = p.read_bytes().decode("ascii", errors="replace")
        except OSError as e:
            raise AposError(f"cannot read TLE file: {e.strerror}", path=p) from None
        en, rj, cs = parse_tle_text(text, p, precedence=k)
        if not en:
            why = f" ({len(rj)} rejected; first: line {rj[0].line}: {rj[0].reason})" if rj else ""
            raise AposError(f"no element sets found{why}", path=p)
        entries += en
        rejected += rj
        sums += cs
    cat = TleCatalog(entries, near=near, rejected=rejected, checksum_errors=sums, paths=[str(p) for p in paths])
    log.info("TLE catalog: %s", cat.summary())
    return cat


def as_entries(tles) -> list[TleEntry]:
    """Normalise a catalog, a list of entries or a list of (line1, line2) pairs to entries."""
    if isinstance(tles, TleCatalog):
        return tles.entries
    out = []
    for k, t in enumerate(tles):
        if isinstance(t, TleEntry):
            out.append(t)
            continue
        l1, l2 = t[-2], t[-1]  # (line1, line2) or (name, line1, line2)
        en, rj, _ = parse_tle_text(f"{l1}\n{l2}\n", path=f"<tles[{k}]>")
        if rj:
            raise AposError(rj[0].reason, path=f"<tles[{k}]>")
        out.append(en[0])
    return out


def format_lines(norad_id: int, epoch, inclination_deg: float, raan_deg: float, eccentricity: float,
                 arg_perigee_deg: float, mean_anomaly_deg: float, mean_motion_rev_day: float,
                 bstar: float = 0.0, intl_designator: str = "26001A") -> tuple[str, str]:
    """Two element lines (with checksums) for the given mean elements at ``epoch`` (UTC)."""
    t = Time(epoch).utc
    year = int(t.datetime.year)
    day = (t - Time(f"{year}-01-01", scale="utc")).to_value("day") + 1.0

    def exp_field(x):
        if x == 0:
            return " 00000-0"
        e = int(np.floor(np.log10(abs(x)))) + 1
        m = round(abs(x) / 10.0**e * 1e5)
        if m >= 100000:
            m, e = m // 10, e + 1
        return f"{'-' if x < 0 else ' '}{m:05d}{'-' if e < 0 else '+'}{abs(e)}"

    num = format_catalog_number(norad_id)
    l1 = f"1 {num}U {intl_designator:<8s} {year % 100:02d}{day:012.8f}  .00000000  00000-0 {exp_field(bstar)} 0  999"
    l2 = (f"2 {num} {inclination_deg % 180 if inclination_deg != 180 else 180:8.4f} {raan_deg % 360:8.4f} "
          f"{round(eccentricity * 1e7):07d} {arg_perigee_deg % 360:8.4f} {mean_anomaly_deg % 360:8.4f} "
          f"{mean_motion_rev_day:11.8f}    1")
    l1, l2 = l1[:68], l2[:68]
    return l1 + str(checksum(l1)), l2 + str(checksum(l2))
