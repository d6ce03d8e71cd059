"""FITS ingest: header dialects (read and write), frames, calibration, night scans.

* :func:`read_frame` -- FITS file -> :class:`~aposos.model.Frame` with normalised metadata
  (station recognised from ``TELESCOP`` or given; generic dialect for other observatories).
* :func:`header_for`, :func:`write_frame` -- the inverse: a frame written as a station writes it.
* :mod:`aposos.ingest.dialects` -- one module per station dialect plus the generic one.
* :func:`master_bias`, :func:`master_dark`, :func:`master_flat`, :func:`calibrate` -- masters
  by median combine, applied to science frames.
* :func:`scan_night` -- a night folder's inventory, failures recorded with their reason.
"""

from .calibrate import calibrate, master_bias, master_dark, master_flat
from .frames import header_for, read_frame, read_meta, recognise_station, write_frame
from .night import scan_night

__all__ = [
    "calibrate",
    "header_for",
    "master_bias",
    "master_dark",
    "master_flat",
    "read_frame",
    "read_meta",
    "recognise_station",
    "scan_night",
    "write_frame",
]
