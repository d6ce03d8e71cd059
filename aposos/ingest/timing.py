"""Exposure timing conventions: header time stamp <-> shutter open, mid-exposure, close.

A header time stamp ``t_header`` refers to the start, middle or end of the exposure
(``refers_to``), and the shutter acts ``latency_s`` seconds after the stamp (a known
driver/shutter delay, positive when the shutter is late). Hence

    t_start = t_header + latency_s - f * exposure_s,   f = 0 (start), 1/2 (mid), 1 (end)
    t_mid   = t_start + exposure_s / 2
    t_end   = t_start + exposure_s

All times are UTC astropy ``Time``; the arithmetic is done by astropy (leap seconds safe).
"""

from __future__ import annotations

from astropy.time import Time, TimeDelta

FRACTION = {"start": 0.0, "mid": 0.5, "end": 1.0}


def _sec(value: float) -> TimeDelta:
    return TimeDelta(value, format="sec")


def exposure_times(t_header: Time, exposure_s: float, refers_to: str, latency_s: float = 0.0) -> tuple[Time, Time, Time]:
    """(t_start, t_mid, t_end) in UTC from a header stamp and the convention it follows."""
    if refers_to not in FRACTION:
        raise ValueError(f"refers_to must be one of {sorted(FRACTION)}, not {refers_to!r}")
    start = (t_header + _sec(latency_s - FRACTION[refers_to] * exposure_s)).utc
    times = start, (start + _sec(exposure_s / 2.0)).utc, (start + _sec(exposure_s)).utc
    for t in times:
        t.format = "isot"
    return times


def header_stamp(t_start: Time, exposure_s: float, refers_to: str, latency_s: float = 0.0) -> Time:
    """The header time stamp a station writes for an exposure opening at ``t_start`` (inverse of
    :func:`exposure_times`)."""
    if refers_to not in FRACTION:
        raise ValueError(f"refers_to must be one of {sorted(FRACTION)}, not {refers_to!r}")
    return (t_start + _sec(FRACTION[refers_to] * exposure_s - latency_s)).utc
