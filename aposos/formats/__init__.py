"""Exchange formats of optical satellite observations.

Read: IOD, UK and RDE lines (the satellite-observing community formats) and CCSDS TDM
(KVN and XML, CCSDS 503.0-B-2) through one call, :func:`read_observations`, which detects
the format and returns an astropy Table (columns in :mod:`aposos.formats.records`) of the
good records, with every bad one listed in ``table.meta['rejected']`` as
``(line number, reason)``. Write: :func:`write_tdm` (KVN or XML by extension) and
:func:`write_iod`.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

from ..errors import AposError
from .iod import write_iod
from .linefile import dominant_line_format, parse_lines
from .records import build_table
from .sites import read_sites, site_lookup
from .tdm import parse_tdm, write_tdm

__all__ = ["read_observations", "detect_format", "write_tdm", "write_iod", "read_sites"]


def detect_format(path: str | PathLike) -> str:
    """'tdm-kvn', 'tdm-xml', 'iod', 'uk', 'rde' or 'mixed' (IOD/UK/RDE lines together)."""
    text = _read_text(path)
    return _detect(text, path)


def _detect(text: str, path) -> str:
    head = text.lstrip("\ufeff \t\r\n")
    if head.startswith("<"):
        return "tdm-xml"
    first = head.split("\n", 1)[0]
    if first.replace(" ", "").upper().startswith("CCSDS_TDM_VERS="):
        return "tdm-kvn"
    lines = text.splitlines()
    dominant = dominant_line_format(lines)
    if dominant is None:
        raise AposError("not a recognised observation format (TDM KVN/XML, IOD, UK, RDE): "
                        "no line has the shape of any of them", path=path)
    return dominant


def read_observations(path: str | PathLike, *, sites=None) -> "astropy.table.Table":
    """Observations in ``path`` (format detected) as a Table of star-relative ICRS positions.

    Parameters
    ----------
    path : file of IOD/UK/RDE lines (mixed allowed) or a CCSDS TDM (KVN or XML).
    sites : optional sites file, sites Table (:func:`read_sites`) or mapping
        ``{code: (lat_deg, lon_deg, height_m)}``; needed only for azimuth/elevation
        records, which are rejected (with that reason) when their station is unknown.

    Returns
    -------
    astropy.table.Table
        Columns ``time`` (UTC), ``ra_deg``, ``dec_deg``, ``sigma_arcsec``, ``sigma_time_s``,
        ``object_id``, ``norad_id``, ``cospar_id``, ``station``, ``mag``, ``line``,
        ``equinox``, ``format`` and format extras; ``meta['format']``, ``meta['rejected']``
        (``(line, reason)`` of every bad record), ``meta['skipped']`` (compliant records
        without a position).
    """
    text = _read_text(path)
    fmt = _detect(text, path)
    lookup = site_lookup(sites)
    if fmt.startswith("tdm"):
        records, rejected, skipped = parse_tdm(text, fmt, path)
    else:
        records, rejected, skipped = parse_lines(text.splitlines())
        kinds = {r.fmt for r in records} | ({fmt} if not records else set())
        fmt = kinds.pop() if len(kinds) == 1 else "mixed"
    return build_table(records, rejected, skipped, lookup, fmt, path)


def _read_text(path) -> str:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise AposError(f"cannot read observation file: {exc.strerror}", path=path) from None
    return data.decode("utf-8", errors="replace")
