"""Time scales, Earth orientation and ephemerides, offline.

This is the one module that configures astropy and skyfield; every other module imports
its time and Earth-orientation machinery from here, so that the reduction and the
simulator agree on UT1 and polar motion.

* astropy: IERS auto-download is switched off at import and the tables shipped by the
  ``astropy-iers-data`` package are used (``finals2000A.all``: measured values plus about a
  year of predictions).
* skyfield: the timescale is built from that same ``finals2000A.all`` (not skyfield's
  built-in table, whose UT1 is stale by 0.17 s in late 2026) and its polar-motion table is
  installed, so that ``wgs84.latlon(...).at(t)`` applies polar motion.
* Sun, Moon and planets: ``de421.bsp`` from the ``skyfield-data`` package (valid 1900-2053).

Nothing here touches the network.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import astropy.units as u
from astropy.coordinates import EarthLocation
from astropy.time import Time
from astropy.utils import iers
from astropy.utils.data import conf as _data_conf

log = logging.getLogger(__name__)

# --- astropy: offline IERS, configured once at import ------------------------------------
iers.conf.auto_download = False
iers.conf.auto_max_age = None
iers.conf.iers_degraded_accuracy = "warn"
_data_conf.allow_internet = False


def iers_data_dir() -> Path:
    """Folder of the IERS tables shipped by ``astropy-iers-data``."""
    import astropy_iers_data

    return Path(astropy_iers_data.__file__).parent / "data"


@functools.cache
def iers_table() -> iers.IERS_A:
    """The offline IERS-A table (``finals2000A.all``) and make it astropy's default."""
    table = iers.IERS_A.open(str(iers_data_dir() / "finals2000A.all"))
    iers.earth_orientation_table.set(table)
    return table


@dataclass(frozen=True)
class IersStatus:
    """What the offline Earth-orientation tables cover (for the log at the start of a run)."""

    measured_until: Time
    predicted_until: Time
    leap_seconds_expire: Time

    def describe(self) -> str:
        return (
            f"IERS finals2000A: measured to {self.measured_until.iso[:10]}, "
            f"predicted to {self.predicted_until.iso[:10]}; "
            f"leap-second table expires {self.leap_seconds_expire.iso[:10]}"
        )


def iers_status() -> IersStatus:
    """Coverage of the offline IERS tables: last measured and last predicted UT1, leap-second expiry."""
    table = iers_table()
    mjd = table["MJD"].to_value(u.d)
    measured = table["UT1Flag_A"] == "I"
    leap = iers.LeapSeconds.auto_open([str(iers_data_dir() / "Leap_Second.dat")])
    return IersStatus(
        measured_until=Time(mjd[measured].max(), format="mjd", scale="utc"),
        predicted_until=Time(mjd.max(), format="mjd", scale="utc"),
        leap_seconds_expire=Time(leap.expires, scale="utc"),
    )


def check_covered(times: Time, what: str = "observation times") -> None:
    """Raise if ``times`` fall outside the offline IERS predictions (UT1 would be a guess)."""
    from .errors import AposError

    status = iers_status()
    t = Time(times, scale="utc")
    if t.max() > status.predicted_until:
        raise AposError(
            f"{what} reach {t.max().iso[:10]}, beyond the IERS predictions shipped with "
            f"astropy-iers-data (to {status.predicted_until.iso[:10]}): upgrade that package"
        )


# --- skyfield ---------------------------------------------------------------------------
@functools.cache
def timescale():
    """skyfield Timescale from the offline ``finals2000A.all``, polar motion installed."""
    from skyfield.api import Loader
    from skyfield.data import iers as sf_iers

    loader = Loader(str(iers_data_dir()), expire=False, verbose=False)
    ts = loader.timescale(builtin=False)
    with loader.open("finals2000A.all") as f:
        finals = sf_iers.parse_x_y_dut1_from_finals_all(f)
    sf_iers.install_polar_motion_table(ts, finals)
    return ts


@functools.cache
def ephemeris():
    """JPL DE421 (Sun, Moon, planets) from the ``skyfield-data`` package, no download."""
    import skyfield_data
    from skyfield.api import Loader

    folder = Path(skyfield_data.__file__).parent / "data"
    return Loader(str(folder), expire=False, verbose=False)("de421.bsp")


def skyfield_time(times: Time):
    """Convert astropy ``Time`` (any scale) to a skyfield Time on :func:`timescale`."""
    tt = Time(times).tt
    return timescale().tt_jd(tt.jd1, tt.jd2)


# --- stations ---------------------------------------------------------------------------
def location(lat_deg: float, lon_deg: float, height_m: float) -> EarthLocation:
    """WGS84 geodetic position (degrees, degrees east, metres above the ellipsoid)."""
    return EarthLocation.from_geodetic(lon=lon_deg * u.deg, lat=lat_deg * u.deg, height=height_m * u.m, ellipsoid="WGS84")


def skyfield_site(lat_deg: float, lon_deg: float, height_m: float):
    """The same WGS84 position as a skyfield ``GeographicPosition``."""
    from skyfield.api import wgs84

    return wgs84.latlon(lat_deg, lon_deg, elevation_m=height_m)


# Install the offline table as astropy's default as soon as the package is imported.
iers_table()
