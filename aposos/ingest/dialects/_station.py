"""What the three APOSOS station dialects share: one class that reads and writes a header.

A dialect subclass declares its keyword names and words (class attributes) and overrides the
few hooks where the stations genuinely differ (time stamp, exposure, pointing, binning,
timing flags). :meth:`StationDialect.write` and :meth:`StationDialect.read` are inverses:
``read(write(meta))`` returns ``meta``'s values (times to the microsecond, pointing to
better than 0.01 arcsec).
"""

from __future__ import annotations

from astropy.io import fits
from astropy.time import Time

from ...config import Station
from ...model import FrameMeta
from ..cards import Cards
from ..timing import exposure_times, header_stamp


class StationDialect:
    """Base of the station dialects. Subclasses set the attributes below and the time/pointing hooks."""

    name: str = ""
    image_type_key: str = "IMAGETYP"
    #: image type -> word written by the acquisition software
    image_type_words: dict[str, str] = {}
    tracking_key: str = "TRACKMOD"
    tracking_words: dict[str, str] = {}
    rate_keys: tuple[str, str] = ("", "")
    #: one written rate unit in arcsec/s (1 for arcsec/s, 3600 for deg/s)
    rate_unit_arcsec_s: float = 1.0
    rate_comment: str = "[arcsec/s]"
    object_key: str = "OBJECT"
    gain_key: str = "GAIN"
    filter_key: str = "FILTER"

    # --- hooks ----------------------------------------------------------------------------
    def write_time(self, hdr: fits.Header, stamp: Time, exposure_s: float, station: Station) -> None:
        raise NotImplementedError

    def read_time(self, cards: Cards) -> tuple[Time, str, float]:
        """(header stamp, keyword it came from, exposure in seconds)."""
        raise NotImplementedError

    def write_pointing(self, hdr: fits.Header, ra_deg: float, dec_deg: float) -> None:
        raise NotImplementedError

    def read_pointing(self, cards: Cards) -> tuple[float | None, float | None]:
        raise NotImplementedError

    def write_binning(self, hdr: fits.Header, binning: int) -> None:
        hdr["XBINNING"] = (binning, "binning factor along x")
        hdr["YBINNING"] = (binning, "binning factor along y")

    def read_binning(self, cards: Cards) -> int | None:
        bx, by = cards.integer("XBINNING"), cards.integer("YBINNING")
        if bx is not None and by is not None and bx != by:
            raise cards.error("YBINNING", f"unequal binning {bx}x{by} is not supported")
        b = bx if bx is not None else by
        if b is not None and b < 1:
            raise cards.error("XBINNING", f"impossible binning {b}")
        return b

    def write_time_flags(self, hdr: fits.Header, flags: dict) -> None:
        pass

    def read_time_flags(self, cards: Cards) -> dict:
        return {}

    # --- the two directions -------------------------------------------------------------
    def write(self, meta: FrameMeta, station: Station) -> fits.Header:
        """The header ``station``'s acquisition software writes for an exposure described by ``meta``."""
        hdr = fits.Header()
        hdr["TELESCOP"] = (station.header["telescop"], "APOSOS node")
        hdr["INSTRUME"] = (station.camera["model"] or "camera", "camera")
        hdr[self.image_type_key] = (self.image_type_words[meta.image_type], "frame type")
        timing = station.timing
        stamp = header_stamp(meta.t_start, meta.exposure_s, timing["date_obs_refers_to"], timing["latency_s"])
        self.write_time(hdr, stamp, meta.exposure_s, station)
        self.write_time_flags(hdr, meta.time_flags)
        if meta.pointing_ra_deg is not None and meta.pointing_dec_deg is not None:
            self.write_pointing(hdr, meta.pointing_ra_deg, meta.pointing_dec_deg)
        hdr[self.tracking_key] = (self.tracking_words[meta.tracking], "mount tracking mode")
        if meta.tracking == "rate" and meta.rate_ra_arcsec_s is not None and meta.rate_dec_arcsec_s is not None:
            ra_key, dec_key = self.rate_keys
            hdr[ra_key] = (meta.rate_ra_arcsec_s / self.rate_unit_arcsec_s, f"{self.rate_comment} RA rate * cos(dec) vs sidereal")
            hdr[dec_key] = (meta.rate_dec_arcsec_s / self.rate_unit_arcsec_s, f"{self.rate_comment} Dec rate vs sidereal")
        if meta.object_id:
            hdr[self.object_key] = (meta.object_id, "target name or NORAD id")
        self.write_binning(hdr, meta.binning)
        hdr[self.gain_key] = (meta.gain_e_per_adu, "[e-/ADU] camera gain")
        if meta.filter:
            hdr[self.filter_key] = (meta.filter, "filter")
        return hdr

    def read(self, cards: Cards, station: Station) -> dict:
        """FrameMeta fields (all but ``path``) from a header written by this dialect."""
        image_type = self._lookup(cards, self.image_type_key, self.image_type_words)
        stamp, time_key, exposure_s = self.read_time(cards)
        if image_type == "science" and exposure_s == 0.0:
            raise cards.error(self.exposure_key(), "zero exposure for a science frame")
        timing = station.timing
        t_start, t_mid, t_end = exposure_times(stamp, exposure_s, timing["date_obs_refers_to"], timing["latency_s"])
        flags = {
            "time_key": time_key,
            "refers_to": timing["date_obs_refers_to"],
            "latency_s": timing["latency_s"],
            "time_source": timing["time_source"],
            **self.read_time_flags(cards),
        }
        tracking = self._lookup(cards, self.tracking_key, self.tracking_words)
        rate_ra = rate_dec = None
        if tracking == "rate":
            rate_ra, rate_dec = self._rates(cards)
        ra, dec = self.read_pointing(cards)
        camera = station.camera
        binning = self.read_binning(cards)
        gain = cards.number(self.gain_key)
        if gain is not None and gain <= 0:
            raise cards.error(self.gain_key, f"impossible gain {gain!r} e-/ADU")
        return dict(
            station=station.name,
            t_start=t_start,
            t_mid=t_mid,
            t_end=t_end,
            exposure_s=exposure_s,
            image_type=image_type,
            tracking=tracking,
            rate_ra_arcsec_s=rate_ra,
            rate_dec_arcsec_s=rate_dec,
            pointing_ra_deg=ra,
            pointing_dec_deg=dec,
            gain_e_per_adu=gain if gain is not None else camera["gain_e_per_adu"],
            read_noise_e=camera["read_noise_e"],
            saturation_adu=camera["saturation_adu"],
            binning=binning if binning is not None else camera["binning"],
            object_id=cards.text(self.object_key),
            site_lat_deg=station.lat_deg,
            site_lon_deg=station.lon_deg,
            site_height_m=station.height_m,
            filter=cards.text(self.filter_key),
            time_flags=flags,
        )

    def exposure_key(self) -> str:
        return "EXPTIME"

    # --- helpers ------------------------------------------------------------------------
    def _lookup(self, cards: Cards, key: str, words: dict[str, str]) -> str:
        word = cards.text(key, required=True)
        for value, written in words.items():
            if word.upper() == written.upper():
                return value
        known = ", ".join(repr(w) for w in words.values())
        raise cards.error(key, f"unknown value {word!r} for the {self.name} dialect (expected one of {known})")

    def _rates(self, cards: Cards) -> tuple[float | None, float | None]:
        ra_key, dec_key = self.rate_keys
        ra, dec = cards.number(ra_key), cards.number(dec_key)
        if (ra is None) != (dec is None):
            missing = dec_key if dec is None else ra_key
            raise cards.error(missing, "rate-tracked frame gives one tracking rate without the other")
        if ra is None:
            return None, None
        ra, dec = ra * self.rate_unit_arcsec_s, dec * self.rate_unit_arcsec_s
        for key, value in ((ra_key, ra), (dec_key, dec)):
            if abs(value) > 36000.0:  # 10 deg/s: faster than any satellite seen from the ground
                raise cards.error(key, f"impossible tracking rate {value!r} arcsec/s")
        return ra, dec

    def _pointing_pair(self, cards: Cards, ra_key: str, dec_key: str, hours: bool = True):
        has_ra, has_dec = cards.has(ra_key), cards.has(dec_key)
        if not has_ra and not has_dec:
            return None, None
        if has_ra != has_dec:
            raise cards.error(dec_key if has_ra else ra_key, "pointing gives one coordinate without the other")
        return cards.ra_deg(ra_key, hours_if_sexagesimal=hours), cards.dec_deg(dec_key)
