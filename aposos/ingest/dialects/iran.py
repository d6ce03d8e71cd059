"""Iran (Mahdasht) dialect: ISO DATE-OBS time stamp, EXPTIME, sexagesimal RA (hours) / DEC.

Keywords written by the node's acquisition software::

    TELESCOP = 'APOSOS-IR'
    IMAGETYP = 'LIGHT' | 'BIAS' | 'DARK' | 'FLAT'
    DATE-OBS = '2026-11-21T18:03:12.123456'   UTC time stamp (station timing convention: start)
    EXPTIME  = 2.0                             [s]
    RA       = '05:34:31.9400'                 [h:m:s] pointing, J2000 (EQUINOX = 2000.0)
    DEC      = '+22:00:52.200'                 [d:m:s]
    TRACKMOD = 'SIDEREAL' | 'RATE' | 'UNKNOWN'
    TRACKRA, TRACKDEC                          [arcsec/s] rate vs sidereal (RA rate * cos dec)
    OBJECT, XBINNING, YBINNING, GAIN [e-/ADU], FILTER
"""

from __future__ import annotations

from ..cards import Cards, format_sexagesimal, iso
from ._station import StationDialect


class IranDialect(StationDialect):
    name = "iran"
    image_type_key = "IMAGETYP"
    image_type_words = {"science": "LIGHT", "bias": "BIAS", "dark": "DARK", "flat": "FLAT"}
    tracking_key = "TRACKMOD"
    tracking_words = {"sidereal": "SIDEREAL", "rate": "RATE", "unknown": "UNKNOWN"}
    rate_keys = ("TRACKRA", "TRACKDEC")
    rate_unit_arcsec_s = 1.0
    rate_comment = "[arcsec/s]"
    object_key = "OBJECT"
    gain_key = "GAIN"

    def write_time(self, hdr, stamp, exposure_s, station):
        hdr["DATE-OBS"] = (iso(stamp, 6), f"[UTC] exposure {station.timing['date_obs_refers_to']} ({station.timing['time_source'] or 'clock'})")
        hdr["EXPTIME"] = (exposure_s, "[s] exposure time")

    def read_time(self, cards: Cards):
        stamp, has_time = cards.iso_time("DATE-OBS")
        if not has_time:
            raise cards.error("DATE-OBS", f"date {cards.text('DATE-OBS')!r} has no time of day")
        return stamp, "DATE-OBS", cards.exposure("EXPTIME")

    def write_pointing(self, hdr, ra_deg, dec_deg):
        hdr["RA"] = (format_sexagesimal(ra_deg / 15.0, 4, wrap=24), "[h:m:s] telescope pointing J2000")
        hdr["DEC"] = (format_sexagesimal(dec_deg, 3, sign=True), "[d:m:s] telescope pointing J2000")
        hdr["EQUINOX"] = (2000.0, "equinox of RA/DEC")

    def read_pointing(self, cards: Cards):
        return self._pointing_pair(cards, "RA", "DEC", hours=True)
