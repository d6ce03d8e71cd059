"""Header dialects: one module per station (reader and writer together) and the generic one."""

from __future__ import annotations

from ._station import StationDialect
from .iran import IranDialect
from .pakistan import PakistanDialect
from .peru import PeruDialect

#: dialect name (``[header] dialect`` in a station config) -> dialect
STATION_DIALECTS: dict[str, StationDialect] = {d.name: d for d in (IranDialect(), PakistanDialect(), PeruDialect())}

__all__ = ["STATION_DIALECTS", "StationDialect"]
