"""FITS ingest: header dialects (read and write), frames, calibration, night scans.

* :func:`read_frame` -- FITS file -> :class:`~aposos.model.Frame` with normalised metadata
  (station recognised from ``TELESCOP`` or given; generic dialect for other observatories).
* :func:`header_for`, :func:`write_frame` -- the inverse: a frame written as a station writes it.
* :mod:`aposos.ingest.dialects` -- one module per station dialect plus the generic one.
"""

from .frames import header_for, read_frame, read_meta, recognise_station, write_frame

__all__ = ["header_for", "read_frame", "read_meta", "recognise_station", "write_frame"]
