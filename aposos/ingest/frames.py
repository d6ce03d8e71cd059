"""Read and write frames: FITS file <-> :class:`~aposos.model.Frame`.

Reading: the first image HDU that has data (primary, image extension or tile-compressed,
``.fz`` included) gives the pixels; the primary header merged with that HDU's header gives the
keywords. The station comes from the caller or is recognised from ``TELESCOP`` (each station
config names its own); frames of any other telescope are read with the generic dialect
(``station=None``).

Pixels are returned as float32 ADU ``data[y, x]``. NaN/inf pixels are counted, masked in
``frame.mask`` and replaced by the median of the good pixels so that array kernels need no NaN
tests; an image with no usable pixel, or only zeros, is an error.
"""

from __future__ import annotations

import functools
import logging
import os
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits

from ..config import STATIONS_DIR, Station, load_station, load_stations
from ..errors import AposError
from ..model import Frame, FrameMeta
from .cards import Cards
from .dialects import STATION_DIALECTS, generic

log = logging.getLogger(__name__)

_IMAGE_HDUS = (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)
_COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZ", b"PK")  # gzip, bzip2, zip: astropy opens these transparently
_STRUCTURAL = ("SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "NAXIS3", "EXTEND", "PCOUNT", "GCOUNT", "XTENSION", "BZERO", "BSCALE")


# --- stations ----------------------------------------------------------------------------
@functools.cache
def _stations_by_telescop(directory: str) -> dict[str, Station]:
    return {s.header["telescop"].strip().upper(): s for s in load_stations(directory).values()}


def _station(station, path) -> Station:
    try:
        return load_station(station)
    except AposError as exc:
        raise AposError(f"station {os.fspath(station)!r}: {exc}", path=path, key="station") from None


def recognise_station(header: fits.Header, directory=STATIONS_DIR) -> Station | None:
    """The configured station whose ``TELESCOP`` the header carries, or None."""
    telescop = str(header.get("TELESCOP", "")).strip().upper()
    return _stations_by_telescop(str(directory)).get(telescop) if telescop else None


def dialect_of(station: Station):
    name = station.header["dialect"]
    if name not in STATION_DIALECTS:
        raise AposError(f"unknown header dialect {name!r} (known: {', '.join(STATION_DIALECTS)})", path=station.path, key="header.dialect")
    return STATION_DIALECTS[name]


# --- FITS file ---------------------------------------------------------------------------
def _open_image(path: Path, pixels: bool = True) -> tuple[fits.Header, np.ndarray, int]:
    """(merged header, raw data array, HDU index) of the first image HDU with data.

    ``pixels=False``: the headers only (no decompression); the array is then empty, of the
    dtype the pixels would have."""
    if not path.exists():
        raise AposError("file not found", path=path)
    if path.is_dir():
        raise AposError("is a folder, not a FITS file", path=path)
    if path.stat().st_size == 0:
        raise AposError("empty file (0 bytes)", path=path, key="SIMPLE")
    with path.open("rb") as f:
        start = f.read(9)
    if start != b"SIMPLE  =" and start[:2] not in _COMPRESSED_MAGIC:
        raise AposError(f"not a FITS file: it starts with {start!r}, not 'SIMPLE  ='", path=path, key="SIMPLE")
    index = None  # the image HDU, once found: errors after that are about its pixels
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with fits.open(path, memmap=False, lazy_load_hdus=False) as hdul:
                index = _first_image(hdul, path)
                data = np.asarray(hdul[index].data) if pixels else np.empty(0, _pixel_dtype(hdul[index].header))
                header = _merged_header(hdul[0].header, hdul[index].header if index else None)
        except AposError:
            raise
        except Exception as exc:  # noqa: BLE001 - astropy raises many types on corrupt files
            truncated = _truncation(caught)
            if truncated:
                raise AposError(f"truncated FITS file: {truncated}", path=path) from None
            why = f"{type(exc).__name__}: {exc}"
            if index is not None:
                raise AposError(f"cannot read the pixels of HDU {index} ({why})", path=path, key=f"HDU{index} data") from None
            raise AposError(f"not a readable FITS file ({why}){_block_note(path)}", path=path, key="SIMPLE") from None
    truncated = _truncation(caught)
    if truncated:
        raise AposError(f"truncated FITS file: {truncated}", path=path)
    return header, data, index


def _pixel_dtype(header) -> np.dtype:
    """dtype astropy gives the pixels of an image HDU (BITPIX, with BZERO for unsigned and
    BSCALE for scaled integers)."""
    bitpix = header["BITPIX"]
    if bitpix < 0:
        return np.dtype(np.float32 if bitpix == -32 else np.float64)
    if header.get("BSCALE", 1) != 1:
        return np.dtype(np.float32)
    signed = np.dtype(f"int{bitpix}") if bitpix > 8 else np.dtype(np.uint8)
    if bitpix > 8 and header.get("BZERO", 0) == 2 ** (bitpix - 1):
        return np.dtype(f"uint{bitpix}")
    return signed


def _block_note(path: Path) -> str:
    size = path.stat().st_size
    with path.open("rb") as f:
        magic = f.read(2)
    if size % 2880 and magic not in _COMPRESSED_MAGIC:
        return f"; its size {size} bytes is not a whole number of 2880-byte FITS blocks (truncated?)"
    return ""


def _truncation(caught) -> str | None:
    """astropy's 'file may have been truncated' warning text, if it was raised."""
    for w in caught:
        text = str(w.message)
        if "truncated" in text:
            return text.splitlines()[0].replace("File may have been truncated: ", "")
    return None


def _first_image(hdul, path) -> int:
    """Index of the first image HDU whose header declares pixels (NAXIS > 0, every NAXISn > 0)."""
    for index, hdu in enumerate(hdul):
        naxis = hdu.header.get("NAXIS", 0) if isinstance(hdu, _IMAGE_HDUS) else 0
        if isinstance(naxis, int) and naxis > 0 and all(hdu.header.get(f"NAXIS{i}", 0) != 0 for i in range(1, naxis + 1)):
            bitpix = hdu.header.get("BITPIX")
            if bitpix not in (8, 16, 32, 64, -32, -64):
                raise AposError(f"invalid BITPIX {bitpix!r} in HDU {index} (8, 16, 32, 64, -32 or -64)", path=path, key="BITPIX")
            return index
    raise AposError(f"no image HDU with data among {len(hdul)} HDU(s)", path=path, key="NAXIS")


def _merged_header(primary: fits.Header, extension: fits.Header | None) -> fits.Header:
    if extension is None:
        return primary.copy()
    # Cards are copied whole (not as value/comment), so that a number keeps the digits written
    # on the card: an MJD-MID with 12 decimals would lose ~0.3 us through a float64.
    merged = fits.Header([c for c in primary.cards if c.keyword not in _STRUCTURAL])
    for card in extension.cards:
        if card.keyword not in ("COMMENT", "HISTORY", "") and card.keyword in merged:
            del merged[card.keyword]
        merged.append(card)
    return merged


def _pixels(raw: np.ndarray, path, index: int) -> tuple[np.ndarray, np.ndarray | None]:
    """float32 pixels and the mask of non-finite ones; errors for unusable images."""
    key = f"HDU{index} data"
    if raw.ndim != 2:
        raise AposError(f"image is {raw.ndim}-D with shape {raw.shape}; a 2-D frame is expected", path=path, key=key)
    if raw.size == 0:
        raise AposError(f"image has no pixels (shape {raw.shape})", path=path, key=key)
    data = raw.astype(np.float32)
    good = np.isfinite(data)
    n_bad = data.size - int(np.count_nonzero(good))
    if n_bad == data.size:
        raise AposError(f"all {data.size} pixels are NaN or infinite", path=path, key=key)
    if not np.any(data[good]):
        raise AposError(f"all {data.size} pixels are zero (empty readout)", path=path, key=key)
    if n_bad == 0:
        return data, None
    mask = ~good
    data[mask] = np.median(data[good])
    log.warning("%s: %d NaN/inf pixels masked (set to the median in frame.data)", os.fspath(path), n_bad)
    return data, mask


def _saturation_of(dtype) -> float:
    return float(np.iinfo(dtype).max) if np.issubdtype(dtype, np.integer) else float("nan")


def read_frame(path, station=None) -> Frame:
    """Read one FITS frame with its normalised metadata.

    Parameters
    ----------
    path : str or PathLike
    station : str, Station or None
        Station name or config. None: recognised from ``TELESCOP``; frames of other
        telescopes are read with the generic dialect and get ``station=None``.

    Raises
    ------
    AposError
        Unreadable file, unusable pixels, or a missing/unparseable/impossible keyword; the
        message names the file, the keyword and the problem. Also when ``station`` is given
        and the header's ``TELESCOP`` is not that station's.
    """
    path = Path(path)
    header, raw, index = _open_image(path)
    data, mask = _pixels(raw, path, index)
    return Frame(data=data, meta=_meta(path, header, raw.dtype, station), mask=mask, header=header)


def _meta(path: Path, header, dtype, station) -> FrameMeta:
    """The normalised metadata of a frame from its (merged) header and the pixels' dtype."""
    cards = Cards(header, path)
    if station is not None:
        config = _station(station, path)
        written = cards.text("TELESCOP")
        if written is None:
            raise cards.error("TELESCOP", f"missing keyword: cannot confirm the frame is from station {config.name!r}")
        if written.upper() != config.header["telescop"].strip().upper():
            raise cards.error("TELESCOP", f"{written!r} is not station {config.name!r} (expects {config.header['telescop']!r})")
    else:
        config = recognise_station(header)
    if config is None:
        fields = _read_generic(cards, dtype)
    else:
        fields = dialect_of(config).read(cards, config)
    return FrameMeta(path=os.fspath(path), **fields)


def _read_generic(cards: Cards, dtype) -> dict:
    try:
        return generic.read(cards, saturation_default=_saturation_of(dtype))
    except AposError as exc:
        telescop = cards.text("TELESCOP")
        if telescop is None:
            raise
        note = f" (read with the generic dialect: TELESCOP {telescop!r} is not a configured station)"
        raise AposError(exc.problem + note, path=exc.path, key=exc.key) from None


def read_meta(path, station=None, *, pixels: bool = True) -> FrameMeta:
    """Only the metadata of a frame; ``pixels=False`` reads the headers alone (no pixel
    checks: a truncated file then fails only when its pixels are read)."""
    if pixels:
        return read_frame(path, station).meta
    path = Path(path)
    header, raw, _ = _open_image(path, pixels=False)
    return _meta(path, header, raw.dtype, station)


# --- writing -----------------------------------------------------------------------------
def header_for(meta: FrameMeta, station) -> fits.Header:
    """The header ``station``'s acquisition software writes for ``meta`` (its dialect exactly).

    ``station`` is a name or :class:`~aposos.config.Station`; None writes the generic dialect
    (DATE-OBS at start, EXPTIME, sexagesimal RA/DEC, SITELAT/SITELONG/SITEELEV).
    """
    if station is None:
        return generic.write(meta)
    config = load_station(station)
    return dialect_of(config).write(meta, config)


#: time keywords astropy WCS writes (from wcs.dateobs, mjdref, ...) that would clash with a dialect's
_WCS_TIME_KEYS = frozenset(
    "DATE-OBS MJD-OBS DATE-AVG MJD-AVG DATE-BEG MJD-BEG DATE-END MJD-END DATEREF MJDREF MJDREFI MJDREFF "
    "TIMESYS TIMEUNIT TSTART TSTOP JEPOCH BEPOCH".split()
)


def _storage(data: np.ndarray) -> np.ndarray:
    """Integer ADU as uint16 (or int32 when out of range), anything else as float32."""
    finite = np.all(np.isfinite(data))
    if finite and np.array_equal(data, np.round(data)):
        lo, hi = float(data.min()), float(data.max())
        if 0 <= lo and hi <= 65535:
            return data.astype(np.uint16)
        if -(2**31) <= lo and hi < 2**31:
            return data.astype(np.int32)
    return data.astype(np.float32)


def write_frame(path, frame: Frame, station, wcs=None, compress: bool = True) -> Path:
    """Write ``frame`` as ``station`` writes it (see :func:`header_for`).

    Integer-valued pixels are stored as uint16 (int32 if out of range) with lossless RICE
    compression; other pixels as float32 with lossless GZIP compression (no quantisation);
    tiles of 16 rows. ``compress=False`` writes a plain primary HDU. ``wcs`` (astropy WCS) adds
    its keywords, except its time keywords (the dialect's time stamp stays). The file is overwritten if it exists. Returns the path.
    """
    path = Path(path)
    header = header_for(frame.meta, station)
    if wcs is not None:
        extra = wcs.to_header(relax=True)
        for key in _WCS_TIME_KEYS & set(extra.keys()):
            del extra[key]  # the dialect owns the time stamp: a WCS dateobs must not replace it
        header.extend(extra, update=True)
    data = _storage(np.asarray(frame.data))
    if compress:
        # tiles of 16 rows: reading decompresses tile by tile with a Python call each, so the
        # fpack default of one row per tile costs ~0.1 s per 2k frame, 16 rows ~0.04 s
        tiles = (min(16, data.shape[0]), data.shape[1])
        if np.issubdtype(data.dtype, np.integer):
            hdu = fits.CompImageHDU(data, header=header, compression_type="RICE_1", tile_shape=tiles)
        else:
            hdu = fits.CompImageHDU(data, header=header, compression_type="GZIP_2", quantize_level=0.0,
                                    tile_shape=tiles)
        hdul = fits.HDUList([fits.PrimaryHDU(), hdu])
    else:
        hdul = fits.HDUList([fits.PrimaryHDU(data, header=header)])
    path.parent.mkdir(parents=True, exist_ok=True)
    hdul.writeto(path, overwrite=True, output_verify="exception")
    return path
