"""Pakistan (Karachi) dialect: DATE-OBS date + TIME-OBS time, EXPOSURE, OBJCTRA / OBJCTDEC.

Keywords written by the node's acquisition software (MaxIm-DL-like)::

    TELESCOP = 'APOSOS-PK'
    IMAGETYP = 'Light Frame' | 'Bias Frame' | 'Dark Frame' | 'Flat Field'
    DATE-OBS = '2026-11-21'                    UTC date of the time stamp
    TIME-OBS = '18:03:12.123456'               UTC time stamp (station timing convention: start)
    EXPOSURE = 2.0                             [s]
    OBJCTRA  = '05 34 31.9400'                 [h m s] pointing, J2000
    OBJCTDEC = '+22 00 52.200'                 [d m s]
    TELTRACK = 'Sidereal' | 'Target' | 'Unknown'
    RATERA, RATEDEC                            [arcsec/s] rate vs sidereal (RA rate * cos dec)
    TARGET, XBINNING, YBINNING, EGAIN [e-/ADU], FILTER
"""

from __future__ import annotations

from ..cards import Cards, format_sexagesimal, iso
from ._station import StationDialect


class PakistanDialect(StationDialect):
    name = "pakistan"
    image_type_key = "IMAGETYP"
    image_type_words = {"science": "Light Frame", "bias": "Bias Frame", "dark": "Dark Frame", "flat": "Flat Field"}
    tracking_key = "TELTRACK"
    tracking_words = {"sidereal": "Sidereal", "rate": "Target", "unknown": "Unknown"}
    rate_keys = ("RATERA", "RATEDEC")
    rate_unit_arcsec_s = 1.0
    rate_comment = "[arcsec/s]"
    object_key = "TARGET"
    gain_key = "EGAIN"

    def exposure_key(self):
        return "EXPOSURE"

    def write_time(self, hdr, stamp, exposure_s, station):
        date, clock = iso(stamp, 6).split("T")
        hdr["DATE-OBS"] = (date, "[UTC] date of the time stamp")
        hdr["TIME-OBS"] = (clock, f"[UTC] exposure {station.timing['date_obs_refers_to']} ({station.timing['time_source'] or 'clock'})")
        hdr["EXPOSURE"] = (exposure_s, "[s] exposure time")

    def read_time(self, cards: Cards):
        day, has_time = cards.iso_time("DATE-OBS")
        if has_time:
            raise cards.error("DATE-OBS", f"{cards.text('DATE-OBS')!r}: the pakistan dialect writes the date only (time in TIME-OBS)")
        stamp = cards.on_day(day, "TIME-OBS").utc
        return stamp, "DATE-OBS+TIME-OBS", cards.exposure("EXPOSURE")

    def write_pointing(self, hdr, ra_deg, dec_deg):
        hdr["OBJCTRA"] = (format_sexagesimal(ra_deg / 15.0, 4, sep=" ", wrap=24), "[h m s] pointing J2000")
        hdr["OBJCTDEC"] = (format_sexagesimal(dec_deg, 3, sep=" ", sign=True), "[d m s] pointing J2000")

    def read_pointing(self, cards: Cards):
        return self._pointing_pair(cards, "OBJCTRA", "OBJCTDEC", hours=True)
