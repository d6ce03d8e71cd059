"""Inventory of a night folder: every FITS file read, failures recorded instead of raised."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from astropy.table import Table
from astropy.time import Time

from ..errors import AposError
from .frames import read_meta

#: file name endings taken as FITS (case-insensitive)
FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.fz", ".fit.fz", ".fz", ".fits.gz", ".fit.gz")


def fits_files(folder) -> list[Path]:
    """FITS files directly in ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise AposError("not a folder", path=folder)
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(FITS_SUFFIXES))


def scan_night(folder, station=None, *, pixels: bool = True) -> Table:
    """Read every FITS file of ``folder``; one row per file, failures recorded with their reason.

    ``pixels=False`` reads the headers only (the batch: its workers read and check the pixels
    of each science frame anyway, so a truncated file fails there, with its reason).

    Columns: ``path`` (str), ``station`` (str, '' if generic or failed), ``image_type`` (str,
    '' if failed), ``t_start`` (UTC Time, masked if failed), ``exposure_s`` (float, NaN if
    failed), ``status`` ('ok' | 'failed'), ``reason`` (the AposError message, '' if ok).
    Rows are sorted by file name. ``station`` forces every frame to that station.
    """
    rows = []
    for path in fits_files(folder):
        try:
            meta = read_meta(path, station, pixels=pixels)
        except AposError as exc:
            rows.append((os.fspath(path), "", "", None, np.nan, "failed", str(exc)))
        except MemoryError:
            raise
        except Exception as exc:  # noqa: BLE001 - the batch goes on; the reason names file and error
            rows.append((os.fspath(path), "", "", None, np.nan, "failed", f"{os.fspath(path)}: unexpected {type(exc).__name__}: {exc}"))
        else:
            rows.append((os.fspath(path), meta.station or "", meta.image_type, meta.t_start, meta.exposure_s, "ok", ""))
    return _table(rows)


def _table(rows) -> Table:
    names = ("path", "station", "image_type", "t_start", "exposure_s", "status", "reason")
    if not rows:
        return Table(
            [np.array([], dtype=str)] * 3 + [Time([], format="isot", scale="utc"), np.array([], dtype=float)] + [np.array([], dtype=str)] * 2,
            names=names,
        )
    columns = list(zip(*rows))
    failed = np.array([t is None for t in columns[3]])
    stamps = [t.utc.isot if t is not None else "2000-01-01T00:00:00" for t in columns[3]]
    t_start = Time(stamps, format="isot", scale="utc")
    if failed.any():
        t_start[failed] = np.ma.masked
    table = Table([list(c) for c in columns[:3]] + [t_start, np.array(columns[4], float)] + [list(c) for c in columns[5:]], names=names)
    table["exposure_s"].unit = "s"
    return table
