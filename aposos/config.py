"""Station and pipeline configuration, loaded from TOML and validated.

A station file (``configs/stations/<name>.toml``) has the sections ``[station]``,
``[telescope]``, ``[camera]``, ``[timing]`` and ``[header]``; :data:`STATION_SCHEMA` lists
every key with its type. Units are in the key names. A missing, unknown or wrong-typed key is
an :class:`~aposos.errors.AposError` naming the file and the key.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import MappingProxyType

from .errors import AposError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
STATIONS_DIR = CONFIG_DIR / "stations"

_REQUIRED = object()

#: section -> key -> (type, default or _REQUIRED, check or None)
STATION_SCHEMA = {
    "station": {
        "name": (str, _REQUIRED, None),
        "long_name": (str, "", None),
        "latitude_deg": (float, _REQUIRED, lambda v: -90 <= v <= 90),
        "longitude_deg": (float, _REQUIRED, lambda v: -180 <= v <= 360),
        "height_m": (float, _REQUIRED, lambda v: -500 <= v <= 9000),
        "position_confirmed": (bool, False, None),
    },
    "telescope": {
        "aperture_mm": (float, _REQUIRED, lambda v: v > 0),
        "focal_length_mm": (float, _REQUIRED, lambda v: v > 0),
        "parity": (int, 1, lambda v: v in (1, -1)),
        # typical image FWHM (optics + seeing), arcsec: the detector's first guess, from which
        # it measures each frame's own (None: the detector's generic guess)
        "fwhm_arcsec": (float, None, lambda v: v > 0),
    },
    "camera": {
        "model": (str, "", None),
        "width_px": (int, _REQUIRED, lambda v: v > 0),
        "height_px": (int, _REQUIRED, lambda v: v > 0),
        "pixel_size_um": (float, _REQUIRED, lambda v: v > 0),
        "binning": (int, 1, lambda v: v >= 1),
        "gain_e_per_adu": (float, _REQUIRED, lambda v: v > 0),
        "read_noise_e": (float, _REQUIRED, lambda v: v >= 0),
        "saturation_adu": (float, _REQUIRED, lambda v: v > 0),
        "bias_adu": (float, 0.0, None),
        "dark_e_per_s": (float, 0.0, lambda v: v >= 0),
    },
    "timing": {
        "date_obs_refers_to": (str, _REQUIRED, lambda v: v in ("start", "mid", "end")),
        "latency_s": (float, 0.0, lambda v: abs(v) < 10),
        "time_source": (str, "", None),
        "sigma_s": (float, None, lambda v: v > 0),  # 1-sigma of the time stamps, s (None: unknown)
    },
    "header": {
        "dialect": (str, _REQUIRED, lambda v: v in _station_dialects()),
        "telescop": (str, _REQUIRED, None),
    },
}


def _station_dialects():
    """Names of the header dialects aposos.ingest can read (imported late: ingest imports config)."""
    from .ingest.dialects import STATION_DIALECTS

    return STATION_DIALECTS


def _check_value(path, dotted: str, value, typ, check):
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if typ is int and isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise AposError(f"expected {typ.__name__}, got {type(value).__name__} {value!r}", path=path, key=dotted)
    if typ is float and not math.isfinite(value):
        raise AposError(f"value {value!r} is not finite", path=path, key=dotted)
    if check is not None and not check(value):
        raise AposError(f"value {value!r} is out of range", path=path, key=dotted)
    return value


def validate(raw: dict, schema: dict, path) -> dict:
    """Check ``raw`` (parsed TOML) against ``schema``; return sections with defaults filled in."""
    unknown = sorted(set(raw) - set(schema))
    if unknown:
        raise AposError(f"unknown section (known: {', '.join(schema)})", path=path, key=f"[{unknown[0]}]")
    out = {}
    for section, keys in schema.items():
        given = raw.get(section)
        if given is None:
            raise AposError("missing section", path=path, key=f"[{section}]")
        if not isinstance(given, dict):
            raise AposError("expected a table", path=path, key=f"[{section}]")
        unknown = sorted(set(given) - set(keys))
        if unknown:
            raise AposError(f"unknown key (known: {', '.join(keys)})", path=path, key=f"{section}.{unknown[0]}")
        values = {}
        for key, (typ, default, check) in keys.items():
            dotted = f"{section}.{key}"
            if key not in given:
                if default is _REQUIRED:
                    raise AposError("missing key", path=path, key=dotted)
                values[key] = default
            else:
                values[key] = _check_value(path, dotted, given[key], typ, check)
        out[section] = MappingProxyType(values)
    return out


def read_toml(path) -> dict:
    """Parse a TOML file; a syntax error names the file and the line."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise AposError("file not found", path=path) from None
    except tomllib.TOMLDecodeError as exc:
        raise AposError(f"not valid TOML: {exc}", path=path) from None


@dataclass(frozen=True)
class Station:
    """One observation node: site, telescope, camera, timing convention, header dialect.

    Sections are read-only mappings named as in the TOML file (``station.camera['gain_e_per_adu']``).
    """

    station: MappingProxyType
    telescope: MappingProxyType
    camera: MappingProxyType
    timing: MappingProxyType
    header: MappingProxyType
    path: Path | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        return self.station["name"]

    @property
    def lat_deg(self) -> float:
        return self.station["latitude_deg"]

    @property
    def lon_deg(self) -> float:
        return self.station["longitude_deg"]

    @property
    def height_m(self) -> float:
        return self.station["height_m"]

    @cached_property
    def location(self):
        """astropy ``EarthLocation`` (WGS84)."""
        from .earth import location

        return location(self.lat_deg, self.lon_deg, self.height_m)

    @property
    def pixel_scale_arcsec(self) -> float:
        """Plate scale of one (binned) pixel, arcsec/px, from pixel size and focal length."""
        pix_mm = self.camera["pixel_size_um"] * 1e-3 * self.camera["binning"]
        return math.degrees(math.atan(pix_mm / self.telescope["focal_length_mm"])) * 3600.0

    @property
    def shape(self) -> tuple[int, int]:
        """Full-frame (binned) image shape (ny, nx)."""
        b = self.camera["binning"]
        return (self.camera["height_px"] // b, self.camera["width_px"] // b)


def load_station_file(path) -> Station:
    """Load and validate one station TOML file."""
    path = Path(path)
    sections = validate(read_toml(path), STATION_SCHEMA, path)
    return Station(**sections, path=path)


def station_names(directory=STATIONS_DIR) -> list[str]:
    """Names of the configured stations (file stems in ``configs/stations``)."""
    return sorted(p.stem for p in Path(directory).glob("*.toml"))


def load_station(name_or_path, directory=STATIONS_DIR) -> Station:
    """A station by configured name (``'iran'``) or by path to a TOML file."""
    if isinstance(name_or_path, Station):
        return name_or_path
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.exists():
        return load_station_file(candidate)
    path = Path(directory) / f"{name_or_path}.toml"
    if not path.exists():
        raise AposError(f"unknown station {name_or_path!r} (configured: {', '.join(station_names(directory))})")
    station = load_station_file(path)
    if station.name != name_or_path:
        raise AposError(f"file is named {path.stem!r} but declares {station.name!r}", path=path, key="station.name")
    return station


def load_stations(directory=STATIONS_DIR) -> dict[str, Station]:
    """All configured stations, by name."""
    return {name: load_station(name, directory) for name in station_names(directory)}
