"""Observer sites by station code, for observations given in azimuth/elevation.

A sites file has one station a line, ``code abbrev lat_deg lon_deg height_m observer``
(the layout of the COSPAR station list shipped with sattools' ``sites.txt``); ``#`` starts a
comment. Latitudes are geodetic (WGS84), longitudes east-positive, heights in metres.
The package carries no site list of its own: callers pass one to the readers.
"""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike

import numpy as np
from astropy.table import Table

from ..errors import AposError

SITE_COLUMNS = ("code", "lat_deg", "lon_deg", "height_m", "observer")


def read_sites(path: str | PathLike) -> Table:
    """Sites table: ``code`` (str, as written), ``lat_deg``, ``lon_deg`` (east), ``height_m``,
    ``observer``. Raises :class:`AposError` naming the line of a malformed entry."""
    rows = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, 1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            parts = text.split()
            if len(parts) < 5:
                raise AposError("site line needs: code abbrev lat lon height [observer]",
                                path=path, line=number)
            try:
                lat, lon, height = float(parts[2]), float(parts[3]), float(parts[4])
            except ValueError:
                raise AposError(f"site coordinates {parts[2:5]} are not numbers",
                                path=path, line=number) from None
            if not (-90 <= lat <= 90 and -180 <= lon <= 360):
                raise AposError(f"site latitude/longitude out of range: {lat}, {lon}",
                                path=path, line=number)
            rows.append((parts[0], lat, lon, height, " ".join(parts[5:])))
    if not rows:
        raise AposError("no sites in file", path=path)
    return Table(rows=rows, names=SITE_COLUMNS,
                 dtype=(str, float, float, float, str))


def site_lookup(sites) -> dict[str, tuple[float, float, float]]:
    """``{code: (lat_deg, lon_deg, height_m)}`` from a sites table, a path, or a mapping.

    A mapping may give ``(lat, lon, height)`` tuples or astropy ``EarthLocation`` values.
    """
    if sites is None:
        return {}
    if isinstance(sites, (str, PathLike)):
        sites = read_sites(sites)
    if isinstance(sites, Table):
        return {str(r["code"]): (float(r["lat_deg"]), float(r["lon_deg"]), float(r["height_m"]))
                for r in sites}
    if isinstance(sites, Mapping):
        out = {}
        for code, value in sites.items():
            if hasattr(value, "geodetic"):
                g = value.geodetic
                value = (g.lat.deg, g.lon.deg, g.height.to_value("m"))
            lat, lon, h = (float(v) for v in value)
            out[str(code)] = (lat, lon, h)
        return out
    raise TypeError(f"sites must be a path, a Table or a mapping, not {type(sites).__name__}")


def standard_pressure_hpa(height_m: np.ndarray) -> np.ndarray:
    """Standard-atmosphere pressure (hPa) at ``height_m``, used to undo refraction."""
    return 1013.25 * np.exp(-np.asarray(height_m, float) / 8434.5)
