"""Bring reported directions to star-relative ICRS right ascension and declination.

Equinox conventions of the community formats (IOD column 46, UK column 55, RDE column 20,
"epoch of the star chart"):

====  =================================  ===========================================
code  meaning                            conversion to ICRS here
====  =================================  ===========================================
0     IOD: of date; UK/RDE: another      IOD: mean equator and equinox of the
      equinox "sent separately"          observation time (IAU 2006 bias-precession,
                                         no nutation: "of date" is ambiguous between
                                         mean and true, which differ by <= ~20 arcsec).
                                         UK/RDE: rejected (the equinox is unknown).
1-4   B1855, B1875, B1900, B1950         FK4 of that Besselian equinox (star-chart
                                         positions: obstime = equinox, E-terms kept)
5     J2000                              taken as ICRS (FK5 J2000 and ICRS differ by
                                         ~0.02 arcsec, below any of these formats' digits)
6     J2050                              FK5, equinox J2050
====  =================================  ===========================================

Azimuth/elevation reports are turned into the RA/Dec a catalogue star would have at that
place in the sky (astropy ``AltAz`` -> ``ICRS`` for a direction at infinity), which is the
star-relative convention of RA/Dec reports. Azimuth is counted from north through east.
"""

from __future__ import annotations

import astropy.units as u
import erfa
import numpy as np
from astropy.coordinates import FK4, FK5, ICRS, AltAz, EarthLocation, SkyCoord
from astropy.time import Time

from .sites import standard_pressure_hpa

#: Equinox of each chart-epoch code (None: of date / not convertible).
EQUINOX_BY_CODE = {1: "B1855", 2: "B1875", 3: "B1900", 4: "B1950", 5: "J2000", 6: "J2050"}


def equinox_label(code: int, of_date_allowed: bool) -> str | None:
    """Human label of an equinox code ('J2000', 'of date'); None when not convertible."""
    if code == 0:
        return "of date" if of_date_allowed else None
    return EQUINOX_BY_CODE.get(code)


def radec_to_icrs(ra_deg, dec_deg, label: str, time: Time):
    """ICRS (ra, dec) in degrees of positions given in the equinox ``label``."""
    ra = np.asarray(ra_deg, float)
    dec = np.asarray(dec_deg, float)
    if label == "J2000":
        return ra % 360.0, dec
    if label == "of date":
        return _of_date_to_icrs(ra, dec, time)
    if label.startswith("B"):
        frame = FK4(equinox=Time(label, format="byear_str"))
    else:
        frame = FK5(equinox=Time(label, format="jyear_str"))
    c = SkyCoord(ra * u.deg, dec * u.deg, frame=frame).transform_to(ICRS())
    return c.ra.deg, c.dec.deg


def _of_date_to_icrs(ra, dec, time: Time):
    """Mean equator and equinox of date -> GCRS/ICRS axes (IAU 2006 bias-precession)."""
    tt = time.tt
    rbp = erfa.pmat06(tt.jd1, tt.jd2)  # GCRS -> mean of date, shape (n, 3, 3)
    r, d = np.radians(ra), np.radians(dec)
    v = np.stack([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)], axis=-1)
    g = np.einsum("...ji,...j->...i", rbp, v)  # transpose: mean of date -> GCRS
    ra_out = np.degrees(np.arctan2(g[..., 1], g[..., 0])) % 360.0
    dec_out = np.degrees(np.arcsin(np.clip(g[..., 2], -1, 1)))
    return ra_out, dec_out


def azel_to_icrs(az_deg, el_deg, time: Time, lat_deg, lon_deg, height_m,
                 refraction_removed: np.ndarray):
    """Star-relative ICRS (ra, dec) of azimuth/elevation directions seen from a site.

    ``refraction_removed`` (bool per row): True when the elevation is already corrected for
    refraction (geometric); False when it is the observed (refracted) elevation, in which
    case a standard atmosphere (pressure from height, 10 C, 50 % humidity, 0.55 um) removes it.
    """
    loc = EarthLocation.from_geodetic(np.asarray(lon_deg) * u.deg, np.asarray(lat_deg) * u.deg,
                                      np.asarray(height_m) * u.m)
    removed = np.asarray(refraction_removed, bool)
    pressure = np.where(removed, 0.0, standard_pressure_hpa(height_m)) * u.hPa
    frame = AltAz(obstime=time, location=loc, pressure=pressure, temperature=10 * u.deg_C,
                  relative_humidity=0.5, obswl=0.55 * u.micron)
    c = SkyCoord(az=np.asarray(az_deg) * u.deg, alt=np.asarray(el_deg) * u.deg, frame=frame)
    icrs = c.transform_to(ICRS())
    return icrs.ra.deg, icrs.dec.deg
