"""Peru (Lima) dialect: MJD-MID time stamp, exposure in ms, pointing in degrees, GPS flags.

Keywords written by the node's acquisition software (CMOS camera, GPS-disciplined)::

    TELESCOP = 'APOSOS-PE'
    FRAMETYP = 'SCIENCE' | 'BIAS' | 'DARK' | 'FLAT'
    MJD-MID  = 61000.123456789012              [d] UTC MJD time stamp (timing convention: mid)
    EXPMS    = 2000.0                          [ms] exposure time
    RA-DEG   = 83.6330833                      [deg] pointing, J2000
    DEC-DEG  = 22.0145                         [deg]
    GPSLOCK  = T                               GPS receiver locked during the exposure
    GPSSATS  = 9                               satellites used by the receiver
    TRK-MODE = 'SIDEREAL' | 'RATE' | 'NONE'
    TRK-RA, TRK-DEC                            [deg/s] rate vs sidereal (RA rate * cos dec)
    OBJID, BINNING = '1x1', GAIN [e-/ADU], FILTER
"""

from __future__ import annotations

import re

from astropy.io import fits

from ..cards import Cards
from ._station import StationDialect

_BINNING = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


class PeruDialect(StationDialect):
    name = "peru"
    image_type_key = "FRAMETYP"
    image_type_words = {"science": "SCIENCE", "bias": "BIAS", "dark": "DARK", "flat": "FLAT"}
    tracking_key = "TRK-MODE"
    tracking_words = {"sidereal": "SIDEREAL", "rate": "RATE", "unknown": "NONE"}
    rate_keys = ("TRK-RA", "TRK-DEC")
    rate_unit_arcsec_s = 3600.0
    rate_comment = "[deg/s]"
    object_key = "OBJID"
    gain_key = "GAIN"

    def exposure_key(self):
        return "EXPMS"

    def write_time(self, hdr, stamp, exposure_s, station):
        mjd = _mjd_text(stamp)
        hdr.append(fits.Card.fromstring(f"{'MJD-MID':8s}= {mjd:>20s} / [d] UTC MJD, exposure {station.timing['date_obs_refers_to']}"))
        hdr["EXPMS"] = (round(exposure_s * 1000.0, 6), "[ms] exposure time")

    def read_time(self, cards: Cards):
        return cards.numeric_time("MJD-MID", "mjd"), "MJD-MID", cards.exposure("EXPMS", unit_s=1e-3)

    def write_pointing(self, hdr, ra_deg, dec_deg):
        hdr["RA-DEG"] = (round(ra_deg % 360.0, 8) % 360.0, "[deg] pointing J2000")
        hdr["DEC-DEG"] = (round(dec_deg, 8), "[deg] pointing J2000")

    def read_pointing(self, cards: Cards):
        return self._pointing_pair(cards, "RA-DEG", "DEC-DEG", hours=False)

    def write_binning(self, hdr, binning):
        hdr["BINNING"] = (f"{binning}x{binning}", "on-chip binning")

    def read_binning(self, cards: Cards):
        text = cards.text("BINNING")
        if text is None:
            return None
        match = _BINNING.match(text)
        if match is None or match[1] != match[2] or int(match[1]) < 1:
            raise cards.error("BINNING", f"cannot read binning {text!r} (expected 'NxN', N >= 1)")
        return int(match[1])

    def write_time_flags(self, hdr, flags):
        hdr["GPSLOCK"] = (bool(flags.get("gps_lock", True)), "GPS receiver locked")
        hdr["GPSSATS"] = (int(flags.get("gps_satellites", 8)), "GPS satellites in use")

    def read_time_flags(self, cards: Cards):
        sats = cards.integer("GPSSATS", required=True)
        if sats < 0:
            raise cards.error("GPSSATS", f"impossible satellite count {sats}")
        return {"gps_lock": cards.flag("GPSLOCK", required=True), "gps_satellites": sats}


def _mjd_text(t) -> str:
    """UTC MJD with 12 decimals (86 ns), rounded from astropy's full-precision string."""
    whole, _, frac = t.utc.to_value("mjd", subfmt="str").partition(".")
    units = int(whole) * 10**12 + (int((frac + "0" * 13)[:13]) + 5) // 10
    day, fraction = divmod(units, 10**12)
    return f"{day}.{fraction:012d}"
