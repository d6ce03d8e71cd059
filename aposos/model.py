"""Records that flow between the stages.

Conventions used throughout aposos:

* Pixels are 0-based, numpy order ``data[y, x]``, with the centre of the first pixel at
  ``(x, y) = (0, 0)``. FITS (1-based) coordinates are converted at the edges only.
* Times are astropy ``Time`` in UTC; durations are seconds (``_s``).
* Angles are degrees (``_deg``) unless the name says ``_arcsec`` or ``_rad``.
* Sky positions are ICRS/ICRF axes; satellite positions are *star-relative* (see
  ``shared/docs/astro-notes.md``: annual aberration removed by the plate solution).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
from astropy.time import Time

Tracking = Literal["sidereal", "rate", "unknown"]
ImageType = Literal["science", "bias", "dark", "flat"]


@dataclass(frozen=True)
class FrameMeta:
    """Normalised metadata of one exposure, whatever the header dialect.

    Attributes
    ----------
    path : str
        File the frame was read from (``''`` for frames made in memory).
    station : str or None
        Configured station name, or None for frames of other observatories.
    t_start, t_mid, t_end : Time
        Shutter open, mid-exposure and shutter close, UTC, after the station's timing
        convention and latency are applied.
    exposure_s : float
        Exposure duration in seconds.
    image_type : {'science', 'bias', 'dark', 'flat'}
    tracking : {'sidereal', 'rate', 'unknown'}
        Mount mode: sidereal (stars are points) or rate-tracked on a target (target a point).
    rate_ra_arcsec_s, rate_dec_arcsec_s : float or None
        Tracking rate relative to sidereal for rate-tracked frames (RA rate includes cos(dec)).
    pointing_ra_deg, pointing_dec_deg : float or None
        Telescope pointing hint (ICRS, degrees); may be off by a degree or more.
    gain_e_per_adu, read_noise_e, saturation_adu : float
        Camera figures, from the header where given, else from the station config.
    binning : int
    object_id : str or None
        Target name or NORAD id as written by the acquisition software.
    site_lat_deg, site_lon_deg, site_height_m : float or None
        Observer position (WGS84) when known (from the station config or the header).
    time_flags : dict
        Dialect-specific timing quality (e.g. GPS lock) as read.
    """

    path: str
    station: str | None
    t_start: Time
    t_mid: Time
    t_end: Time
    exposure_s: float
    image_type: ImageType = "science"
    tracking: Tracking = "sidereal"
    rate_ra_arcsec_s: float | None = None
    rate_dec_arcsec_s: float | None = None
    pointing_ra_deg: float | None = None
    pointing_dec_deg: float | None = None
    gain_e_per_adu: float = 1.0
    read_noise_e: float = 0.0
    saturation_adu: float = 65535.0
    binning: int = 1
    object_id: str | None = None
    site_lat_deg: float | None = None
    site_lon_deg: float | None = None
    site_height_m: float | None = None
    filter: str | None = None
    time_flags: dict = field(default_factory=dict)

    def replace(self, **changes) -> "FrameMeta":
        return replace(self, **changes)


@dataclass
class Frame:
    """Pixels (float32, ADU, ``data[y, x]``) and their :class:`FrameMeta`.

    ``mask`` is True where a pixel is unusable (NaN/inf in the file, known bad); None if all good.
    """

    data: np.ndarray
    meta: FrameMeta
    mask: np.ndarray | None = None
    header: object = None  # the original astropy Header, kept for provenance

    def __getattr__(self, name):
        # frame.t_start, frame.exposure_s, ... read through to the metadata.
        if name in FrameMeta.__dataclass_fields__:
            return getattr(self.meta, name)
        raise AttributeError(name)

    @property
    def shape(self) -> tuple[int, int]:
        return self.data.shape
