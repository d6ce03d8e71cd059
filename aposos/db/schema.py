"""The schema of the aposos observation store, version :data:`SCHEMA_VERSION`.

Every table is a set of columns of fixed numpy dtype (a column store: one HDF5 dataset per
column). Strings are fixed-length UTF-8 bytes; enums are small integers whose codes are listed
here and decoded to strings by the queries.

Times
-----
Every instant is stored as **int64 nanoseconds of TAI since 2000-01-01T12:00:00 TAI (J2000.0
in TAI)**, in columns named ``*_ns``. The representation is exact to 1 ns, sortable as one
column, unambiguous through leap seconds (UTC 23:59:60 has its own value), and covers
1708-2292. Conversion from and to astropy ``Time`` goes through astropy's two-part Julian
date and loses < 0.02 ns (tested to round-trip to 1 ns, also inside a leap second). Queries
return UTC ``Time`` columns. ``-2**63`` means "no time" (e.g. a run that has not ended).

Keys and versions
-----------------
* ``frame_uid`` (int64) = first 8 bytes of sha256(content_hash + "\\0" + pipeline_version):
  the result of reducing one file (content hash = sha256 of its bytes) with one pipeline
  version. Reducing the same file with the same version again is a no-op (idempotent);
  with a newer version it adds a new frame result that *supersedes* the older one: the
  current result of a file is the one with the highest pipeline version (PEP 440 order).
  Older results stay queryable (``history=True``). uid collisions are detected on commit.
* ``tracklet_id`` (int64) = first 8 bytes of sha256 of the pipeline version, station and the
  sorted keys (content hash, observation index) of its observations: the same tracklet
  committed twice is stored once. A tracklet is current when its first frame is current.
* Correlations of one tracklet may be redone (fresh TLEs): the rows of the newest commit for
  that tracklet are current, older ones are history. Orbits likewise per ``orbit_id``, runs
  per ``run_id`` (``end_run`` commits the finished run row).
* ``commit_seq`` (int64): the store-wide order of commits (one value per commit unit, merges
  keep the relative order of the merged store).

Tables (column, dtype, meaning)
-------------------------------
runs
    run_id S32 (uuid4 hex), station S16, pipeline_version S32, software_version S32,
    config_hash S64 (hex hash of the configuration), host S64, start_ns, end_ns,
    status i1 (RUN_STATUS), n_frames, n_frames_failed, n_observations, n_tracklets,
    n_identified, n_uct (int64 counts reported by the batch), commit_seq.
frames
    frame_uid, content_hash S64 (sha256 hex of the file bytes), pipeline_version, run_id,
    station, path S255 (file the frame was read from), t_start_ns, t_mid_ns, t_end_ns,
    exposure_s f8, status i1 (FRAME_STATUS), reason S240 (why it failed; truncated),
    n_stars i4 (stars used in the plate solution, -1 unknown), astrometric_rms_arcsec f4
    (plate-solution RMS, NaN unknown), tracking S8 ('sidereal', 'rate' or ''), telescope
    health from the plate solution: pointing_offset_deg f4 (header hint to solved centre),
    rotation_deg f4 (field rotation, north through east), scale_arcsec_px f4 (NaN unknown),
    obs_start, obs_count (rows of this frame's observations inside its segment), commit_seq.
observations
    frame_uid, obs_index i4 (0..n-1 within the frame result), time_ns, ra_deg, dec_deg f8
    (star-relative ICRF), sigma_arcsec f4, mag f4 (NaN unknown), x, y f4 (px, 0-based),
    kind i1 (OBS_KIND), end i1 (0/1 streak ends, -1 otherwise), source_index i4,
    tracklet_id i8 (0 = not linked, or linked by a later ``tracklet_obs`` row).
tracklet_obs
    tracklet_id, frame_uid, obs_index, time_ns, end, commit_seq: tracklet membership
    committed after the observations (linking runs once the night's frames are in), with the
    observation's time and ``end`` as linking resolved them (which end of a streak was at
    shutter open is only known from the motion). Queries apply them to the observation;
    compaction folds them into ``observations``. An observation belongs to one tracklet.
tracklets
    tracklet_id, label S32 (the batch's name for it), run_id, station, pipeline_version,
    first_frame_uid, n_obs i4, t_first_ns, t_last_ns, commit_seq.
correlations
    tracklet_id, norad_id i4 (0 for a UCT), rank i2 (0 = best candidate), status i1
    (CORR_STATUS), along_track_arcsec, cross_track_arcsec f8 (observed minus predicted),
    tle_epoch_ns, score f8 (smaller is better, e.g. normalised residual), orbit_id S32
    (UCT orbit the tracklet went into, empty if none), run_id, commit_seq.
orbits
    orbit_id S32, run_id, epoch_ns, frame S8 (frame of the state, e.g. 'TEME', 'GCRS'),
    state f8[6] (km, km/s), covariance f8[6,6] (km, km/s units squared), tle_line1,
    tle_line2 S69, rms_arcsec f8, n_obs i4, n_tracklets i4, commit_seq.
unseen
    run_id, frame_uid, norad_id i4, ra_deg, dec_deg f8 (predicted, star-relative),
    mag_pred f4, tle_epoch_ns, reason S64, commit_seq: objects the catalog put in a frame
    that were not detected.

Schema history: 1 = first version. A store whose manifest names a higher version is refused.
"""

from __future__ import annotations

import hashlib

import numpy as np

from ..errors import AposError

SCHEMA_VERSION = 1
FORMAT_NAME = "aposos.db"
NO_TIME = np.iinfo(np.int64).min

OBS_KIND = ("point", "streak_end", "streak_centre", "streak_point")
FRAME_STATUS = ("ok", "failed")
CORR_STATUS = ("identified", "ambiguous", "uct")
RUN_STATUS = ("running", "done", "partial", "failed")  # partial: some frames failed

_S = {"id": "S32", "station": "S16", "version": "S32", "hash": "S64"}

TABLES: dict[str, list[tuple[str, str]]] = {
    "runs": [
        ("run_id", _S["id"]), ("station", _S["station"]), ("pipeline_version", _S["version"]),
        ("software_version", _S["version"]), ("config_hash", _S["hash"]), ("host", "S64"),
        ("start_ns", "i8"), ("end_ns", "i8"), ("status", "i1"),
        ("n_frames", "i8"), ("n_frames_failed", "i8"), ("n_observations", "i8"),
        ("n_tracklets", "i8"), ("n_identified", "i8"), ("n_uct", "i8"), ("commit_seq", "i8"),
    ],
    "frames": [
        ("frame_uid", "i8"), ("content_hash", _S["hash"]), ("pipeline_version", _S["version"]),
        ("run_id", _S["id"]), ("station", _S["station"]), ("path", "S255"),
        ("t_start_ns", "i8"), ("t_mid_ns", "i8"), ("t_end_ns", "i8"), ("exposure_s", "f8"),
        ("status", "i1"), ("reason", "S240"), ("n_stars", "i4"),
        ("astrometric_rms_arcsec", "f4"), ("tracking", "S8"), ("pointing_offset_deg", "f4"),
        ("rotation_deg", "f4"), ("scale_arcsec_px", "f4"), ("obs_start", "i8"), ("obs_count", "i8"),
        ("commit_seq", "i8"),
    ],
    "observations": [
        ("frame_uid", "i8"), ("obs_index", "i4"), ("time_ns", "i8"), ("ra_deg", "f8"),
        ("dec_deg", "f8"), ("sigma_arcsec", "f4"), ("mag", "f4"), ("x", "f4"), ("y", "f4"),
        ("kind", "i1"), ("end", "i1"), ("source_index", "i4"), ("tracklet_id", "i8"),
    ],
    "tracklet_obs": [
        ("tracklet_id", "i8"), ("frame_uid", "i8"), ("obs_index", "i4"), ("time_ns", "i8"),
        ("end", "i1"), ("commit_seq", "i8"),
    ],
    "tracklets": [
        ("tracklet_id", "i8"), ("label", "S32"), ("run_id", _S["id"]),
        ("station", _S["station"]), ("pipeline_version", _S["version"]),
        ("first_frame_uid", "i8"), ("n_obs", "i4"), ("t_first_ns", "i8"), ("t_last_ns", "i8"),
        ("commit_seq", "i8"),
    ],
    "correlations": [
        ("tracklet_id", "i8"), ("norad_id", "i4"), ("rank", "i2"), ("status", "i1"),
        ("along_track_arcsec", "f8"), ("cross_track_arcsec", "f8"), ("tle_epoch_ns", "i8"),
        ("score", "f8"), ("orbit_id", "S32"), ("run_id", _S["id"]), ("commit_seq", "i8"),
    ],
    "orbits": [
        ("orbit_id", "S32"), ("run_id", _S["id"]), ("epoch_ns", "i8"), ("frame", "S8"),
        ("state", "(6,)f8"), ("covariance", "(6,6)f8"), ("tle_line1", "S69"),
        ("tle_line2", "S69"), ("rms_arcsec", "f8"), ("n_obs", "i4"), ("n_tracklets", "i4"),
        ("commit_seq", "i8"),
    ],
    "unseen": [
        ("run_id", _S["id"]), ("frame_uid", "i8"), ("norad_id", "i4"), ("ra_deg", "f8"),
        ("dec_deg", "f8"), ("mag_pred", "f4"), ("tle_epoch_ns", "i8"), ("reason", "S64"),
        ("commit_seq", "i8"),
    ],
}

#: Tables whose rows are few enough to be held in memory by a reader (all but observations).
SMALL_TABLES = tuple(t for t in TABLES if t != "observations")


def dtype(table: str) -> np.dtype:
    """The numpy structured dtype of one row of ``table``."""
    return np.dtype(TABLES[table])


def empty(table: str, n: int = 0) -> np.ndarray:
    """``n`` rows of ``table`` with neutral fill values (0, NaN for floats, '' for strings)."""
    rows = np.zeros(n, dtype(table))
    for name, _ in TABLES[table]:
        if rows.dtype[name].base.kind == "f":
            rows[name] = np.nan
        elif name.endswith("_ns"):
            rows[name] = NO_TIME
    return rows


# --------------------------------------------------------------------------- times

_J2000_JD = 2451545.0
_NS_PER_DAY = 86_400_000_000_000


def time_to_ns(t) -> np.ndarray:
    """Nanoseconds of TAI since J2000.0 TAI (int64) of an astropy ``Time`` (any scale)."""
    tai = t.tai
    jd1 = np.atleast_1d(np.asarray(tai.jd1, dtype=float))
    jd2 = np.atleast_1d(np.asarray(tai.jd2, dtype=float))
    d = jd1 - _J2000_JD
    days = np.round(d)
    frac = (d - days) + jd2
    shift = np.floor(frac)
    days, frac = days + shift, frac - shift
    return days.astype(np.int64) * _NS_PER_DAY + np.round(frac * _NS_PER_DAY).astype(np.int64)


def ns_to_time(ns):
    """UTC astropy ``Time`` of TAI nanoseconds since J2000.0 (inverse of :func:`time_to_ns`)."""
    from astropy.time import Time

    ns = np.asarray(ns, dtype=np.int64)
    days, rem = np.divmod(ns, _NS_PER_DAY)
    t = Time(_J2000_JD + days.astype(float), rem.astype(float) / _NS_PER_DAY,
                format="jd", scale="tai").utc
    t.format = "isot"
    return t


def as_ns(value, what: str) -> np.ndarray:
    """int64 TAI ns of ``value``: an astropy Time, or already int64 ns. Raises AposError."""
    from astropy.time import Time

    if isinstance(value, Time):
        return time_to_ns(value)
    arr = np.asarray(value)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    raise AposError(f"{what} must be an astropy Time (got {type(value).__name__})", key=what)


# --------------------------------------------------------------------------- encodings

def encode_str(values, width: int, what: str, truncate: bool = False) -> np.ndarray:
    """Fixed-width UTF-8 bytes; over-long values raise AposError unless ``truncate``."""
    out = []
    for v in np.atleast_1d(np.asarray(values, dtype=object)):
        b = ("" if v is None else str(v)).encode("utf-8")
        if len(b) > width:
            if not truncate:
                raise AposError(f"value {v!r} is longer than {width} bytes", key=what)
            b = b[: width - 3].decode("utf-8", "ignore").encode() + b"..."
        out.append(b)
    return np.array(out, dtype=f"S{width}") if out else np.zeros(0, f"S{width}")


def encode_enum(values, names: tuple[str, ...], what: str) -> np.ndarray:
    """int8 codes of enum strings (or pass-through of valid integer codes)."""
    arr = np.atleast_1d(np.asarray(values))
    if arr.dtype.kind in "iu":
        bad = (arr < 0) | (arr >= len(names))
        codes = arr.astype(np.int8)
    else:
        lookup = {n: i for i, n in enumerate(names)}
        codes = np.array([lookup.get(str(v), -1) for v in arr], dtype=np.int8)
        bad = codes < 0
    if bad.any():
        raise AposError(f"unknown value {arr[bad][0]!r}; expected one of {', '.join(names)}",
                        key=what)
    return codes


def decode_enum(codes, names: tuple[str, ...]) -> np.ndarray:
    """Strings of int codes (unknown codes give '?')."""
    table = np.array(list(names) + ["?"])
    codes = np.asarray(codes).astype(int)
    return table[np.where((codes >= 0) & (codes < len(names)), codes, len(names))]


def decode_str(values) -> np.ndarray:
    """Unicode strings of fixed-width UTF-8 bytes (fast path for ASCII)."""
    values = np.asarray(values)
    try:
        return values.astype(f"U{max(values.dtype.itemsize, 1)}")
    except UnicodeDecodeError:
        return np.char.decode(values, "utf-8")


# --------------------------------------------------------------------------- keys

def uid64(*parts) -> int:
    """Signed int64 from the first 8 bytes of sha256 of the parts joined by NUL; never 0."""
    h = hashlib.sha256("\0".join(str(p) for p in parts).encode()).digest()
    v = int.from_bytes(h[:8], "little", signed=True)
    return v or 1


def frame_uid(content_hash: str, pipeline_version: str) -> int:
    """Key of the result of reducing one file (by content) with one pipeline version."""
    return uid64("frame", content_hash, pipeline_version)


def tracklet_uid(pipeline_version: str, station: str, members) -> int:
    """Key of a tracklet from its observations ``members`` = [(content_hash, obs_index)]."""
    keys = sorted(f"{h}:{int(i)}" for h, i in members)
    return uid64("tracklet", pipeline_version, station, *keys)


def version_order(versions) -> np.ndarray:
    """Rank (int, higher = newer) of each pipeline version string, PEP 440 order when valid."""
    from packaging.version import InvalidVersion, Version

    uniq = sorted(set(versions))

    def key(v):
        try:
            return (1, Version(v), "")
        except InvalidVersion:
            return (0, Version("0"), v)  # unparseable versions sort before any valid one

    rank = {v: i for i, v in enumerate(sorted(uniq, key=key))}
    return np.array([rank[v] for v in versions], dtype=np.int64)
