"""Calibration masters (median combine) and their application to frames.

Conventions

* master bias: ADU, per pixel.
* master dark: dark *rate*, ADU per second of exposure (bias removed), ``meta.exposure_s = 1``;
  :func:`calibrate` scales it by the frame's exposure.
* master flat: relative response, median 1 over the good pixels (bias and dark removed).
* Masks: a pixel is masked in a result when it is masked in any input, or when the flat there
  is not positive and finite. Masked pixels hold the median of the good pixels in ``data``
  (use ``frame.mask``); their count is logged, never silently spread.

Frames can be given as :class:`~aposos.model.Frame` or as paths (read with :func:`read_frame`).
"""

from __future__ import annotations

import logging
import os
import warnings

import numpy as np
from astropy.io import fits

from ..errors import AposError
from ..model import Frame
from .frames import read_frame

log = logging.getLogger(__name__)

#: fewest frames a master is combined from (a median of 2 is a mean: no outlier rejection)
MIN_FRAMES = 3


def _frames(frames, station=None) -> list[Frame]:
    return [f if isinstance(f, Frame) else read_frame(f, station) for f in frames]


def _master_frame(master, station=None) -> Frame | None:
    """A master given as a Frame, a path (read with :func:`read_frame`) or None."""
    return master if master is None or isinstance(master, Frame) else read_frame(master, station)


def _name(frame: Frame) -> str:
    return frame.meta.path or "<frame in memory>"


def _check_set(frames: list[Frame], kind: str, min_frames: int) -> None:
    if len(frames) < min_frames:
        where = _name(frames[0]) if frames else None
        raise AposError(f"{len(frames)} {kind} frame(s) given, at least {min_frames} are needed for a median master", path=where, key="image_type")
    for f in frames:
        if f.meta.image_type != kind:
            raise AposError(f"is a {f.meta.image_type!r} frame, not {kind!r}", path=_name(f), key="image_type")
    shape = frames[0].shape
    for f in frames[1:]:
        if f.shape != shape:
            raise AposError(f"shape {f.shape} differs from {shape} of {_name(frames[0])}", path=_name(f), key="NAXIS")


def _check_shape(frame: Frame, master: Frame, what: str) -> None:
    if master.shape != frame.shape:
        raise AposError(f"{what} master shape {master.shape} differs from the frame's {frame.shape}", path=_name(frame), key="NAXIS")


def _check_type(master: Frame, kind: str) -> None:
    if master.meta.image_type != kind:
        raise AposError(f"is a {master.meta.image_type!r} frame, given as the {kind} master", path=_name(master), key="image_type")


def _fill_masked(data: np.ndarray, mask: np.ndarray | None, what: str, path=None) -> tuple[np.ndarray, np.ndarray | None]:
    """Replace masked/non-finite pixels by the median of the good ones; return (data, mask or None)."""
    bad = ~np.isfinite(data) if mask is None else (mask | ~np.isfinite(data))
    n_bad = int(np.count_nonzero(bad))
    if n_bad == 0:
        return data, None
    if n_bad == data.size:
        raise AposError(f"{what}: no usable pixel left", path=path, key="data")
    data[bad] = np.median(data[~bad])
    log.info("%s: %d masked pixels", what, n_bad)
    return data, bad


def _combine(stack: list[np.ndarray], masks: list[np.ndarray | None]) -> np.ndarray:
    """Per-pixel median of the stack, ignoring masked and non-finite pixels (NaN where none is left)."""
    cube = np.stack(stack).astype(np.float32, copy=False)
    for plane, m in zip(cube, masks):
        if m is not None:
            plane[m] = np.nan
    bad = ~np.isfinite(cube)
    if not bad.any():
        return np.median(cube, axis=0)
    cube[bad] = np.nan  # +-inf too: a median must not count them as values
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns -> NaN, masked later
        return np.nanmedian(cube, axis=0)


def _master(frames: list[Frame], data: np.ndarray, kind: str, exposure_s: float) -> Frame:
    combined, mask = _fill_masked(data, None, f"master {kind}", _name(frames[0]))
    first = frames[0].meta
    meta = first.replace(path="", image_type=kind, exposure_s=exposure_s, object_id=None)
    header = fits.Header()
    header["IMAGETYP"] = kind
    header["NCOMBINE"] = (len(frames), "frames median-combined")
    for i, f in enumerate(frames[:999]):
        header["HISTORY"] = f"input {i}: {os.path.basename(_name(f))}"
    return Frame(data=combined.astype(np.float32), meta=meta, mask=mask, header=header)


def master_bias(frames, station=None, min_frames: int = MIN_FRAMES) -> Frame:
    """Median of bias frames (ADU)."""
    frames = _frames(frames, station)
    _check_set(frames, "bias", min_frames)
    return _master(frames, _combine([f.data for f in frames], [f.mask for f in frames]), "bias", 0.0)


def master_dark(frames, bias=None, station=None, min_frames: int = MIN_FRAMES) -> Frame:
    """Median dark rate (ADU/s) of bias-subtracted dark frames, each divided by its exposure."""
    frames = _frames(frames, station)
    bias = _master_frame(bias, station)
    _check_set(frames, "dark", min_frames)
    for f in frames:
        if f.meta.exposure_s <= 0:
            raise AposError("dark frame with zero exposure cannot give a dark rate", path=_name(f), key="exposure_s")
    if bias is not None:
        _check_type(bias, "bias")
        _check_shape(frames[0], bias, "bias")
    rates = [(f.data - (bias.data if bias is not None else 0.0)) / np.float32(f.meta.exposure_s) for f in frames]
    return _master(frames, _combine(rates, [_union(f.mask, bias.mask if bias else None) for f in frames]), "dark", 1.0)


def master_flat(frames, bias=None, dark=None, station=None, min_frames: int = MIN_FRAMES) -> Frame:
    """Median of flat frames, each bias/dark-subtracted and scaled to median 1; result median 1."""
    frames = _frames(frames, station)
    bias, dark = _master_frame(bias, station), _master_frame(dark, station)
    _check_set(frames, "flat", min_frames)
    planes, masks = [], []
    for f in frames:
        reduced = _reduce(f, bias, dark)
        level = np.median(reduced.data if reduced.mask is None else reduced.data[~reduced.mask])
        if not level > 0:
            raise AposError(f"flat level {level!r} ADU after bias/dark removal is not positive", path=_name(f), key="data")
        planes.append(reduced.data / np.float32(level))
        masks.append(reduced.mask)
    flat = _combine(planes, masks)
    bad = ~np.isfinite(flat) | (flat <= 0)
    flat = flat / np.median(flat[~bad])
    return _master(frames, np.where(bad, np.nan, flat).astype(np.float32), "flat", frames[0].meta.exposure_s)


def _union(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a | b


def _reduce(frame: Frame, bias: Frame | None, dark: Frame | None) -> Frame:
    """Bias and scaled dark removed (no flat, no filling)."""
    data = frame.data.astype(np.float32, copy=True)
    mask = frame.mask
    if bias is not None:
        _check_type(bias, "bias")
        _check_shape(frame, bias, "bias")
        data -= bias.data
        mask = _union(mask, bias.mask)
    if dark is not None:
        _check_type(dark, "dark")
        _check_shape(frame, dark, "dark")
        data -= dark.data * np.float32(frame.meta.exposure_s)
        mask = _union(mask, dark.mask)
    return Frame(data=data, meta=frame.meta, mask=mask, header=frame.header)


def calibrate(frame, bias=None, dark=None, flat=None) -> Frame:
    """``(frame - bias - dark_rate * exposure) / flat`` as a new Frame (float32 ADU).

    The frame and the masters are Frames or paths. Each master must have the frame's shape and
    the right image type. Pixels masked in the frame or any master, or where the flat is not
    positive, are masked in the result.
    """
    frame = _master_frame(frame)
    bias, dark, flat = _master_frame(bias), _master_frame(dark), _master_frame(flat)
    reduced = _reduce(frame, bias, dark)
    data, mask = reduced.data, reduced.mask
    if flat is not None:
        _check_type(flat, "flat")
        _check_shape(frame, flat, "flat")
        bad_flat = ~np.isfinite(flat.data) | (flat.data <= 0)
        if flat.mask is not None:
            bad_flat |= flat.mask
        with np.errstate(divide="ignore", invalid="ignore"):
            data = data / np.where(bad_flat, np.float32(1.0), flat.data)
        mask = _union(mask, bad_flat if bad_flat.any() else None)
    data, mask = _fill_masked(data, mask, "calibrated frame", _name(frame))
    return Frame(data=data.astype(np.float32, copy=False), meta=frame.meta, mask=mask, header=frame.header)
