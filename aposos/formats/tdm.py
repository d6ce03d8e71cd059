"""CCSDS Tracking Data Message (CCSDS 503.0-B-2), KVN and XML, for optical angle data.

What is written (:func:`write_tdm`): one segment per (station, object), each with
``TIME_SYSTEM = UTC``, ``PARTICIPANT_1`` = the object (NORAD number or designation,
``UNKNOWN`` if none), ``PARTICIPANT_2`` = the station, ``MODE = SEQUENTIAL``,
``PATH = 1,2`` (light from the object to the station), ``ANGLE_TYPE = RADEC`` and
``REFERENCE_FRAME = EME2000`` (or ``ICRF``). The angles are star-relative: calibrated
against catalogue stars, so they are ICRF-aligned topocentric directions that carry the
object's light time and *minus* the annual aberration, as RA/Dec reports of optical
observers do; a metadata comment says so. ``ANGLE_1`` is the right ascension and
``ANGLE_2`` the declination, in degrees. TDM has no per-measurement uncertainty keyword,
so uncertainties go in Data Section comments (allowed only at its start), one per epoch::

    COMMENT SIGMA 2026-11-21T20:00:00.123456 1.250 0.0010

(epoch, 1-sigma position uncertainty in arcsec, 1-sigma time uncertainty in s or NaN).
Visual magnitudes, when known, are written as ``MAG`` records.

What is read (:func:`parse_tdm`): ``ANGLE_1``/``ANGLE_2`` pairs with the same epoch, in
segments with ``ANGLE_TYPE = RADEC`` and a reference frame in :data:`ICRS_FRAMES` (taken as
ICRS; EME2000 and ICRF differ by ~0.02 arcsec); ``AZEL`` segments when the station's site is
known; time systems UTC, TAI, TT and GPS (converted to UTC). The station is the last
participant of ``PATH`` and the object the one before it (so ``PATH = 1,2`` and two-way
``PATH = 2,1,2`` both read participant 1 as the object seen from station 2).
"""

from __future__ import annotations

import math
import re
import xml.parsers.expat
from dataclasses import dataclass, field
from datetime import datetime, timezone
from os import PathLike
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.table import Table
from astropy.time import Time

from ..errors import AposError
from .fields import FieldError
from .records import Record, row_object

ICRS_FRAMES = ("EME2000", "ICRF", "ICRF1", "ICRF2", "ICRF3", "GCRF")
TIME_SYSTEMS = ("UTC", "TAI", "TT", "GPS")
CONVENTION_COMMENT = (
    "ANGLE_1 = right ascension, ANGLE_2 = declination, degrees, ICRF axes (EME2000 "
    "convention). Star-relative: measured against catalogue stars, so each is the "
    "topocentric direction of the object (light time as observed) displaced by minus the "
    "annual aberration (up to 20.5 arcsec), like optical observers' RA/Dec reports; "
    "no CORRECTION_ABERRATION_* applied.")
SIGMA_COMMENT = ("1-sigma uncertainties per epoch: SIGMA <epoch> <position arcsec> "
                 "<time s>")


# --- reading ------------------------------------------------------------------------------

@dataclass
class _Segment:
    meta: dict = field(default_factory=dict)
    meta_line: int = 0
    comments: list = field(default_factory=list)  # (line, text) in the data section
    data: list = field(default_factory=list)  # (line, keyword, epoch text, value text)


def parse_tdm(text: str, fmt: str, path=None):
    """Records, rejected ``(line, reason)`` and skipped of a TDM (``fmt`` 'tdm-kvn'/'tdm-xml')."""
    try:
        segments = _kvn_segments(text) if fmt == "tdm-kvn" else _xml_segments(text)
    except FieldError as exc:
        raise AposError(f"malformed TDM: {exc}", path=path) from None
    records, rejected, skipped = [], [], []
    for seg in segments:
        _segment_records(seg, records, rejected, skipped)
    return records, rejected, skipped


_KVN_LINE = re.compile(r"^\s*([A-Z0-9_]+)\s*=\s*(.*?)\s*$")


def _kvn_segments(text: str) -> list[_Segment]:
    segments, seg, section = [], None, "header"
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("COMMENT"):
            if section == "data":
                seg.comments.append((number, line[7:].strip()))
            continue
        if line in ("META_START", "META_STOP", "DATA_START", "DATA_STOP"):
            if line == "META_START":
                seg = _Segment(meta_line=number)
                segments.append(seg)
                section = "meta"
            elif line == "DATA_START":
                if seg is None:
                    raise FieldError(f"line {number}: DATA_START before any META_START")
                section = "data"
            else:
                section = "between"
            continue
        m = _KVN_LINE.match(line)
        if section == "data":
            parts = (m.group(2).split() if m else line.split()[1:])
            key = m.group(1) if m else line.split()[0]
            if len(parts) != 2:
                seg.data.append((number, key, None, line))
            else:
                seg.data.append((number, key, parts[0], parts[1]))
        elif section == "meta" and m:
            seg.meta[m.group(1)] = (number, m.group(2))
        elif section == "header" and m:
            continue
        elif not m:
            raise FieldError(f"line {number}: not 'KEYWORD = value': {line[:40]!r}")
    return segments


class _Node:
    __slots__ = ("tag", "line", "text", "children")

    def __init__(self, tag, line):
        self.tag, self.line, self.text, self.children = tag, line, "", []


def _xml_tree(text: str) -> _Node:
    """Minimal element tree with the line number of every element (namespaces dropped)."""
    parser = xml.parsers.expat.ParserCreate()
    root = _Node("#root", 0)
    stack = [root]

    def start(name, attrs):
        node = _Node(name.rsplit(":", 1)[-1], parser.CurrentLineNumber)
        stack[-1].children.append(node)
        stack.append(node)

    def end(name):
        stack.pop()

    def chars(data):
        stack[-1].text += data

    parser.StartElementHandler, parser.EndElementHandler = start, end
    parser.CharacterDataHandler = chars
    try:
        parser.Parse(text.encode("utf-8"), True)
    except xml.parsers.expat.ExpatError as exc:
        raise FieldError(f"XML error: {exc}") from None
    return root


def _xml_segments(text: str) -> list[_Segment]:
    root = _xml_tree(text)
    tdm = next((n for n in root.children if n.tag == "tdm"), None)
    if tdm is None:
        raise FieldError("no <tdm> root element")
    segments = []
    for body in (n for n in tdm.children if n.tag == "body"):
        for sn in (n for n in body.children if n.tag == "segment"):
            seg = _Segment(meta_line=sn.line)
            for part in sn.children:
                if part.tag == "metadata":
                    for k in part.children:
                        if k.tag != "COMMENT":
                            seg.meta[k.tag] = (k.line, k.text.strip())
                elif part.tag == "data":
                    for obs in part.children:
                        if obs.tag == "COMMENT":
                            seg.comments.append((obs.line, obs.text.strip()))
                        elif obs.tag == "observation":
                            epoch = next((c for c in obs.children if c.tag == "EPOCH"), None)
                            for c in obs.children:
                                if c.tag not in ("EPOCH", "COMMENT"):
                                    seg.data.append((c.line, c.tag,
                                                     epoch.text.strip() if epoch else None,
                                                     c.text.strip()))
            segments.append(seg)
    return segments


_DOY = re.compile(r"^(\d{4})-(\d{3})T(\d\d:\d\d:\d\d(?:\.\d*)?)Z?$")
_YMD = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d*)?)Z?$")


def _astropy_form(text: str) -> tuple[str, str]:
    """(value, astropy format) of a CCSDS epoch; FieldError when it is none of the forms."""
    m = _YMD.match(text)
    if m:
        return m.group(1), "isot"
    m = _DOY.match(text)
    if m:
        return f"{m.group(1)}:{m.group(2)}:{m.group(3)}", "yday"
    raise FieldError(f"epoch {text!r} is not a CCSDS time (YYYY-MM-DDThh:mm:ss[.d] or "
                     "YYYY-DDDThh:mm:ss[.d])")


def _as_utc(values, fmt: str, system: str) -> Time:
    if system == "GPS":  # GPS = TAI - 19 s
        return (Time(values, format=fmt, scale="tai") + 19 * u.s).utc
    return Time(values, format=fmt, scale=system.lower()).utc


def tdm_times(texts: list[str], system: str) -> dict[str, str | FieldError]:
    """``{epoch text: UTC ISO string to the nanosecond}`` (or the FieldError of a bad one).

    Epochs of one form are converted in one vectorised call; a batch that fails is redone
    one by one to find the bad epochs.
    """
    out: dict[str, str | FieldError] = {}
    batches: dict[str, list] = {"isot": [], "yday": []}
    for text in set(texts):
        try:
            value, fmt = _astropy_form(text)
            batches[fmt].append((text, value))
        except FieldError as exc:
            out[text] = exc
    for fmt, items in batches.items():
        if not items:
            continue
        try:
            iso = Time(_as_utc([v for _, v in items], fmt, system), precision=9).isot
            out.update(zip([t for t, _ in items], iso))
        except ValueError:
            for text, value in items:
                try:
                    out[text] = Time(_as_utc(value, fmt, system), precision=9).isot
                except ValueError as exc:
                    out[text] = FieldError(f"epoch {text!r}: {exc}")
    return out


def _segment_records(seg: _Segment, records, rejected, skipped) -> None:
    meta = {k: v for k, (_, v) in seg.meta.items()}
    angle_lines = [d for d in seg.data if d[1] in ("ANGLE_1", "ANGLE_2")]
    problem = _segment_problem(meta)
    if problem:
        for number, *_ in angle_lines:
            rejected.append((number, f"TDM: {problem} (segment at line {seg.meta_line})"))
        return
    system = meta["TIME_SYSTEM"].upper()
    obj, station = _participants(meta)
    kind = "azel" if meta["ANGLE_TYPE"].upper() == "AZEL" else "radec"
    utc = tdm_times([d[2] for d in seg.data if d[2] is not None], system)
    sigmas = _sigma_comments(seg.comments, system)
    pairs: dict[str, dict] = {}
    mags: dict[str, float] = {}
    other = 0
    for number, key, epoch, value in seg.data:
        if epoch is None:
            rejected.append((number, f"TDM: data line needs '<epoch> <value>': {value[:40]!r}"))
            continue
        stamp = utc[epoch]
        if isinstance(stamp, FieldError):
            rejected.append((number, f"TDM: {key}: {stamp}"))
            continue
        try:
            x = float(value)
        except ValueError:
            rejected.append((number, f"TDM: {key} value {value!r} is not a number"))
            continue
        if key in ("ANGLE_1", "ANGLE_2"):
            slot = pairs.setdefault(stamp, {})
            if key in slot:
                rejected.append((number, f"TDM: second {key} at epoch {epoch}"))
                continue
            slot[key] = (number, x)
        elif key == "MAG":
            mags[stamp] = x
        else:
            other += 1
    if other:
        skipped.append((seg.meta_line, f"TDM: {other} data records of other types not read"))
    norad = obj if obj.isdigit() else ""
    cospar = obj if re.match(r"^\d{4}-\d{3}[A-Z]{1,3}$", obj) else ""
    for stamp, slot in pairs.items():
        have = [k for k in ("ANGLE_1", "ANGLE_2") if k in slot]
        first_line = min(slot[k][0] for k in have)
        if len(have) < 2:
            missing = "ANGLE_2" if have[0] == "ANGLE_1" else "ANGLE_1"
            rejected.append((first_line, f"TDM: {have[0]} at {stamp[:23]} has no {missing}"))
            continue
        a1, a2 = slot["ANGLE_1"][1], slot["ANGLE_2"][1]
        if not (0 <= a1 <= 360 and -90 <= a2 <= 90):
            rejected.append((first_line, f"TDM: angles ({a1}, {a2}) out of range"))
            continue
        sig = sigmas.get(stamp, (np.nan, np.nan))
        records.append(Record(
            line=first_line, fmt="tdm", time_iso=stamp, kind=kind, a1_deg=a1 % 360.0,
            a2_deg=a2, equinox="J2000" if kind == "radec" else "azel", sigma_arcsec=sig[0],
            sigma_time_s=sig[1], norad_id=norad, cospar_id=cospar, station=station,
            mag=mags.get(stamp, np.nan),
            extras={"reference_frame": meta.get("REFERENCE_FRAME", ""), "participant": obj}))


def _segment_problem(meta: dict) -> str | None:
    system = meta.get("TIME_SYSTEM", "").upper()
    if system not in TIME_SYSTEMS:
        return f"TIME_SYSTEM {system or 'missing'} (supported: {', '.join(TIME_SYSTEMS)})"
    angle = meta.get("ANGLE_TYPE", "").upper()
    if angle not in ("RADEC", "AZEL"):
        return f"ANGLE_TYPE {angle or 'missing'} (RADEC or AZEL needed)"
    if angle == "RADEC":
        frame = meta.get("REFERENCE_FRAME", "").upper()
        if frame not in ICRS_FRAMES:
            return (f"REFERENCE_FRAME {frame or 'missing'} not supported "
                    f"({', '.join(ICRS_FRAMES)})")
    if not any(k.startswith("PARTICIPANT_") for k in meta):
        return "no PARTICIPANT_n"
    if "PATH" not in meta:
        return "no PATH: cannot tell the station from the object"
    try:
        _participants(meta)
    except KeyError as exc:
        return f"PATH refers to undefined participant {exc}"
    return None


def _participants(meta: dict) -> tuple[str, str]:
    """(object, station): the receiver is the last participant of PATH and the object the
    one the signal came from last (PATH=1,2: 1 -> 2; PATH=1,2,1 two-way: 2 -> 1)."""
    path = [p.strip() for p in meta["PATH"].split(",") if p.strip()]
    if len(path) < 2:
        raise KeyError(f"PATH {meta['PATH']!r} has fewer than two participants")
    obj, station = meta[f"PARTICIPANT_{path[-2]}"], meta[f"PARTICIPANT_{path[-1]}"]
    return obj.strip(), station.strip()


def _sigma_comments(comments, system) -> dict[str, tuple[float, float]]:
    """``{UTC ISO epoch: (sigma arcsec, sigma s)}`` from ``SIGMA <epoch> <pos> [<time>]``."""
    parsed = []
    for _, text in comments:
        parts = text.split()
        if len(parts) >= 3 and parts[0] == "SIGMA":
            try:
                parsed.append((parts[1], float(parts[2]),
                               float(parts[3]) if len(parts) > 3 else np.nan))
            except ValueError:
                continue
    utc = tdm_times([p[0] for p in parsed], system)
    return {utc[e]: (pos, tim) for e, pos, tim in parsed if isinstance(utc[e], str)}


# --- writing ------------------------------------------------------------------------------

def write_tdm(table: Table, path: str | PathLike, *, originator: str = "APOSOS",
              reference_frame: str = "EME2000", message_id: str | None = None) -> int:
    """Write observations as a CCSDS TDM: XML for ``.xml``, KVN otherwise.

    Uses ``time``, ``ra_deg``, ``dec_deg``, ``station``, the object columns (``norad_id``,
    ``cospar_id``, ``object_id``; see :func:`aposos.formats.records.row_object`), and when
    present ``sigma_arcsec``, ``sigma_time_s``, ``mag``. Returns the number of
    segments written.
    """
    if reference_frame not in ("EME2000", "ICRF"):
        raise AposError(f"reference_frame {reference_frame!r}: EME2000 or ICRF", path=path)
    for name in ("time", "ra_deg", "dec_deg"):
        if name not in table.colnames:
            raise AposError(f"table has no {name!r} column", path=path, key=name)
    segments = _segments_of(table)
    created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    header = {"CREATION_DATE": created, "ORIGINATOR": originator}
    if message_id:
        header["MESSAGE_ID"] = message_id
    xml = Path(path).suffix.lower() == ".xml"
    text = (_xml_text if xml else _kvn_text)(header, segments, reference_frame)
    Path(path).write_text(text, encoding="utf-8")
    return len(segments)


def _col(table, name, i, default):
    if name not in table.colnames:
        return default
    value = table[name][i]
    return default if np.ma.is_masked(value) else value


def _segments_of(table: Table):
    """[(object, station, [row dicts sorted by time])] grouped by (station, object)."""
    times = Time(table["time"], precision=6).utc
    epochs, order_key = times.isot, times.jd1 + times.jd2  # vectorised formatting
    groups: dict[tuple, list] = {}
    for i in range(len(table)):
        obj = row_object(table, i)[2]
        station = str(_col(table, "station", i, "")).strip() or "UNKNOWN"
        ra, dec = float(table["ra_deg"][i]), float(table["dec_deg"][i])
        if not (math.isfinite(ra) and math.isfinite(dec)):
            raise AposError(f"row {i}: RA/Dec not finite", key="ra_deg")
        groups.setdefault((station, obj or "UNKNOWN"), []).append({
            "epoch": epochs[i], "order": order_key[i], "ra": ra % 360.0, "dec": dec,
            "sigma": float(_col(table, "sigma_arcsec", i, np.nan)),
            "sigma_t": float(_col(table, "sigma_time_s", i, np.nan)),
            "mag": float(_col(table, "mag", i, np.nan))})
    out = []
    for (station, obj), rows in sorted(groups.items()):
        rows.sort(key=lambda r: r["order"])
        out.append((obj, station, rows))
    return out


def _fmt(x: float) -> str:
    return "NaN" if not math.isfinite(x) else f"{x:.4f}"


def _meta_items(obj, station, rows, frame):
    return [("TIME_SYSTEM", "UTC"), ("START_TIME", rows[0]["epoch"]),
            ("STOP_TIME", rows[-1]["epoch"]), ("PARTICIPANT_1", obj),
            ("PARTICIPANT_2", station), ("MODE", "SEQUENTIAL"), ("PATH", "1,2"),
            ("ANGLE_TYPE", "RADEC"), ("REFERENCE_FRAME", frame)]


def _data_items(rows):
    comments = []
    if any(math.isfinite(r["sigma"]) or math.isfinite(r["sigma_t"]) for r in rows):
        comments.append(SIGMA_COMMENT)
        comments += [f"SIGMA {r['epoch']} {_fmt(r['sigma'])} {_fmt(r['sigma_t'])}"
                     for r in rows]
    records = []
    for r in rows:
        e = r["epoch"]
        records.append((e, "ANGLE_1", f"{r['ra']:.9f}"))
        records.append((e, "ANGLE_2", f"{r['dec']:+.9f}"))
        if math.isfinite(r["mag"]):
            records.append((e, "MAG", f"{r['mag']:.2f}"))
    return comments, records


def _kvn_text(header, segments, frame) -> str:
    out = ["CCSDS_TDM_VERS = 2.0",
           "COMMENT Optical angles from the APOSOS telescopes (aposos.formats.write_tdm)"]
    out += [f"{k} = {v}" for k, v in header.items()]
    for obj, station, rows in segments:
        out += ["", "META_START", f"COMMENT {CONVENTION_COMMENT}"]
        out += [f"{k} = {v}" for k, v in _meta_items(obj, station, rows, frame)]
        out += ["META_STOP", "", "DATA_START"]
        comments, records = _data_items(rows)
        out += [f"COMMENT {c}" for c in comments]
        out += [f"{key} = {e} {v}" for e, key, v in records]
        out.append("DATA_STOP")
    return "\n".join(out) + "\n"


def _xml_text(header, segments, frame) -> str:
    from xml.sax.saxutils import escape

    def el(tag, value, indent):
        return f"{' ' * indent}<{tag}>{escape(str(value))}</{tag}>"

    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<tdm xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
           'xsi:noNamespaceSchemaLocation="https://sanaregistry.org/r/ndmxml_unqualified/'
           'ndmxml-2.0.0-master-2.0.xsd" id="CCSDS_TDM_VERS" version="2.0">',
           "  <header>",
           el("COMMENT", "Optical angles from the APOSOS telescopes "
                         "(aposos.formats.write_tdm)", 4)]
    out += [el(k, v, 4) for k, v in header.items()]
    out += ["  </header>", "  <body>"]
    for obj, station, rows in segments:
        out += ["    <segment>", "      <metadata>", el("COMMENT", CONVENTION_COMMENT, 8)]
        out += [el(k, v, 8) for k, v in _meta_items(obj, station, rows, frame)]
        out += ["      </metadata>", "      <data>"]
        comments, records = _data_items(rows)
        out += [el("COMMENT", c, 8) for c in comments]
        for e, key, v in records:
            out += ["        <observation>", el("EPOCH", e, 10), el(key, v, 10),
                    "        </observation>"]
        out += ["      </data>", "    </segment>"]
    out += ["  </body>", "</tdm>"]
    return "\n".join(out) + "\n"
