"""Rows of the store's tables from what the pipeline hands over: astropy Tables, dicts of
columns, :class:`FrameRecord`; validation of their values (AposError names the column)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import schema
from .schema import NO_TIME
from ..errors import AposError



def content_hash(path) -> str:
    """sha256 hex digest of a file's bytes (the frame key that survives renames and copies)."""
    import hashlib

    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError as exc:
        raise AposError(f"cannot read file to hash it ({exc.strerror})", path=path) from exc
    return h.hexdigest()


@dataclass(frozen=True)
class FrameRecord:
    """What the store keeps about one reduced (or failed) frame.

    ``t_start``/``t_mid``/``t_end`` are astropy Times (UTC) or None when unknown (a frame that
    failed before its header was read). ``status`` is 'ok' or 'failed' (then ``reason`` says
    why). ``n_stars`` and ``astrometric_rms_arcsec`` describe the plate solution;
    ``pointing_offset_deg``, ``rotation_deg`` and ``scale_arcsec_px`` are the telescope-health
    figures of the solution; ``tracking`` is 'sidereal', 'rate' or ''.
    """

    path: str
    content_hash: str
    station: str
    t_start: object = None
    t_mid: object = None
    t_end: object = None
    exposure_s: float = float("nan")
    status: str = "ok"
    reason: str = ""
    n_stars: int = -1
    astrometric_rms_arcsec: float = float("nan")
    tracking: str = ""
    pointing_offset_deg: float = float("nan")
    rotation_deg: float = float("nan")
    scale_arcsec_px: float = float("nan")

    @classmethod
    def from_meta(cls, meta, content_hash: str, **kw) -> "FrameRecord":
        """Record of a :class:`aposos.model.FrameMeta` (``station`` may be overridden in kw)."""
        kw.setdefault("station", meta.station or "")
        kw.setdefault("tracking", meta.tracking if meta.tracking in ("sidereal", "rate") else "")
        return cls(path=meta.path, content_hash=content_hash, t_start=meta.t_start,
                   t_mid=meta.t_mid, t_end=meta.t_end, exposure_s=meta.exposure_s, **kw)


_ENUMS = {("observations", "kind"): schema.OBS_KIND, ("frames", "status"): schema.FRAME_STATUS,
          ("correlations", "status"): schema.CORR_STATUS, ("runs", "status"): schema.RUN_STATUS}
_TRUNCATE = {("frames", "reason"), ("unseen", "reason"), ("frames", "path")}


def colnames(data) -> list[str]:
    if data is None:
        return []
    if hasattr(data, "colnames"):
        return list(data.colnames)
    if isinstance(data, np.ndarray) and data.dtype.names:
        return list(data.dtype.names)
    return list(data.keys())


def nrows(data) -> int:
    """Rows of a Table / dict of columns / structured array (0 for None)."""
    names = colnames(data)
    return len(data[names[0]]) if names else 0


def rows_from(table: str, data, n: int | None = None, **fixed) -> np.ndarray:
    """Rows of ``table`` from an astropy Table / dict of columns / structured array.

    Columns are matched by schema name; a ``*_ns`` column also accepts an astropy Time under
    the name without ``_ns`` (``time``, ``t_start``, ``tle_epoch``...). ``fixed`` gives values
    for every row. Missing columns get neutral values (NaN, '', 0, no time). Strings and enums
    are validated (AposError names the column).
    """
    names = colnames(data)
    if n is None:
        n = nrows(data) if names else 1
    for name in names:
        if np.ndim(data[name]) == 0 or len(data[name]) != n:
            raise AposError(f"column has {np.size(data[name])} rows, expected {n}",
                            key=f"{table}.{name}")
    rows = schema.empty(table, n)
    for name, _ in schema.TABLES[table]:
        if name in fixed:
            src = fixed[name]
        elif name in names:
            src = data[name]
        elif name.endswith("_ns") and name[:-3] in names:
            src = data[name[:-3]]
        else:
            continue
        if src is None:
            continue
        where = f"{table}.{name}"
        kind = rows.dtype[name].base.kind
        if (table, name) in _ENUMS:
            rows[name] = schema.encode_enum(src, _ENUMS[(table, name)], where)
        elif kind == "S":
            rows[name] = schema.encode_str(src, rows.dtype[name].itemsize, where,
                                           truncate=(table, name) in _TRUNCATE)
        elif name.endswith("_ns"):
            rows[name] = schema.as_ns(src, where)
        else:
            src = getattr(src, "value", src)  # Quantity -> its numbers (units per the schema)
            if np.ma.is_masked(src) and kind == "f":
                src = np.ma.filled(np.ma.asarray(src, dtype=float), np.nan)
            try:
                rows[name] = np.asarray(src, dtype=rows.dtype[name].base)
            except (TypeError, ValueError) as exc:
                raise AposError(f"cannot store as {rows.dtype[name]}: {exc}", key=where) from exc
    return rows


def check_observations(obs: np.ndarray, where: str) -> None:
    bad = ~(np.isfinite(obs["ra_deg"]) & np.isfinite(obs["dec_deg"])
            & (obs["dec_deg"] >= -90) & (obs["dec_deg"] <= 90) & (obs["time_ns"] != NO_TIME))
    if bad.any():
        raise AposError(f"observation {int(np.argmax(bad))} has no valid time or RA/Dec",
                        path=where, key="observations")


def row_bytes(rows: np.ndarray, ignore=("commit_seq",)) -> list[bytes]:
    """Each row's bytes without the ``ignore`` fields (identity of content; NaN equals NaN)."""
    from numpy.lib.recfunctions import repack_fields

    keep = [n for n in rows.dtype.names if n not in ignore]
    packed = repack_fields(rows[keep])
    return [packed[i].tobytes() for i in range(len(packed))]


def same_rows(a: np.ndarray, b: np.ndarray) -> bool:
    """Rows equal as multisets, ignoring commit_seq and run_id."""
    ignore = ("commit_seq", "run_id")
    return len(a) == len(b) and sorted(row_bytes(a, ignore)) == sorted(row_bytes(b, ignore))
