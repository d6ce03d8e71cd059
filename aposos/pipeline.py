"""The nightly batch: every frame of a night reduced, one writer committing to the store.

Per frame (pure, in a worker: local, process pool or Dask):
``read_frame -> calibrate -> detect -> solve -> measure`` returns a :class:`FrameResult`
(observations, plate-solution quality, timings, or the reason it failed). Nothing in a worker
opens the store.

Per night (in the driver, the only writer):
frames are committed as their results arrive (:meth:`aposos.db.Store.commit_frame`, one
durable unit each, skipped when already committed: a rerun resumes); then the night's
observations are linked into tracklets (:mod:`aposos.link`), correlated with the TLE
catalogs (:mod:`aposos.correlate`), uncorrelated tracklets get an orbit where the data allow
(:mod:`aposos.orbit`), and all of it is committed as one unit.

A frame that cannot be reduced is recorded with its reason and the run goes on; the exit
code of ``aposos reduce`` says whether anything failed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.table import Table
from astropy.time import Time

from . import __version__
from .errors import AposError

log = logging.getLogger("aposos.pipeline")

STAGES = ("read", "calibrate", "detect", "solve", "measure")


@dataclass
class Calibration:
    """Master calibration frames of a night (any may be None)."""

    bias: object = None
    dark: object = None
    flat: object = None


@dataclass
class FrameResult:
    """What a worker returns for one file (picklable)."""

    path: str
    content_hash: str
    status: str = "ok"                      # 'ok' | 'failed'
    reason: str = ""
    meta: object = None                     # FrameMeta when the header was read
    observations: Table | None = None
    n_sources: int = 0
    n_stars: int = -1
    rms_arcsec: float = float("nan")
    health: dict = field(default_factory=dict)  # pointing offset, rotation, scale
    sky_field: dict | None = None               # solved centre and inscribed radius (deg)
    timings_s: dict = field(default_factory=dict)


def file_hash(path) -> str:
    """SHA-256 of a file's bytes (the frame's identity in the store)."""
    from .db import content_hash

    return content_hash(path)


def reduce_frame(path, station, calibration: Calibration | None = None, *, catalog=None,
                 detect_config: dict | None = None, solve_config: dict | None = None) -> FrameResult:
    """Reduce one science frame to observations; never raises for bad input (status 'failed')."""
    from .astrometry import measure, solve
    from .detect import detect
    from .ingest import calibrate, read_frame

    result = FrameResult(path=os.fspath(path), content_hash=file_hash(path))
    clock = time.perf_counter
    t = clock()
    try:
        frame = read_frame(path, station)
        result.meta = frame.meta
        result.timings_s["read"] = clock() - t
        if frame.meta.image_type != "science":
            raise AposError(f"not a science frame ({frame.meta.image_type})", path=path, key="IMAGETYP")
        t = clock()
        cal = calibration or Calibration()
        if cal.bias is not None or cal.dark is not None or cal.flat is not None:
            frame = calibrate(frame, bias=cal.bias, dark=cal.dark, flat=cal.flat)
        result.timings_s["calibrate"] = clock() - t
        t = clock()
        mode = "rate" if frame.meta.tracking == "rate" else "sidereal"
        data = frame.data
        if frame.mask is not None and frame.mask.any():
            data = np.where(frame.mask, np.float32(np.nan), data)
        offset = float(np.median(cal.bias.data)) if cal.bias is not None else 0.0
        sources = detect(data, mode=mode, **{"saturation_adu": frame.meta.saturation_adu - offset,
                                             **_fwhm_guess(frame), **(detect_config or {})})
        result.n_sources = len(sources)
        result.timings_s["detect"] = clock() - t
        t = clock()
        solution = solve(frame, sources, catalog=catalog, **(solve_config or {}))
        result.timings_s["solve"] = clock() - t
        result.n_stars = int(getattr(solution, "n_matched", -1))
        result.rms_arcsec = float(getattr(solution, "rms_arcsec", np.nan))
        result.health = _health(solution)
        if not solution.accepted:
            raise AposError(f"plate solution failed: {solution.reason}", path=path)
        result.sky_field = _field(frame, solution, sources)
        t = clock()
        obs = measure(frame, sources, solution)
        result.timings_s["measure"] = clock() - t
        obs["station"] = frame.meta.station or ""
        obs["frame"] = result.path
        result.observations = obs
    except AposError as exc:
        result.status, result.reason = "failed", str(exc)
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - a batch goes on; the reason names the file and the error
        log.exception("unexpected error reducing %s", path)
        result.status, result.reason = "failed", f"{os.fspath(path)}: unexpected {type(exc).__name__}: {exc}"
    return result


def _fwhm_guess(frame) -> dict:
    """``{'fwhm_guess_px': ...}``: the station's typical FWHM (arcsec, ``telescope.fwhm_arcsec``)
    in pixels of the frame's binning, or {} if not configured. A good guess spares the
    detector its second pass (it re-runs when its measured FWHM differs by more than 15 %)."""
    from .config import load_station

    if not frame.meta.station:
        return {}
    st = load_station(frame.meta.station)
    fwhm = st.telescope.get("fwhm_arcsec")
    if fwhm is None:
        return {}
    scale = st.pixel_scale_arcsec * (frame.meta.binning or 1) / st.camera["binning"]
    return {"fwhm_guess_px": fwhm / scale}


def _health(solution) -> dict:
    keys = ("pointing_offset_deg", "rotation_deg", "scale_arcsec_px", "sip_order", "n_matched", "rms_arcsec")
    return {k: float(getattr(solution, k)) for k in keys if getattr(solution, k, None) is not None}


def _field(frame, solution, sources) -> dict:
    """Solved field centre (deg), the radius (deg) of the circle inscribed in the image, the
    point-source limiting magnitude and the FWHM (arcsec) (:mod:`aposos.brightness`)."""
    from .brightness import frame_limiting_mag

    ny, nx = frame.data.shape
    ra, dec = solution.wcs.pixel_to_world_values((nx - 1) / 2, (ny - 1) / 2)
    return {"ra_deg": float(ra), "dec_deg": float(dec),
            "radius_deg": 0.5 * min(nx, ny) * solution.scale_arcsec_px / 3600,
            "limit_mag": frame_limiting_mag(sources, solution.matches),
            "fwhm_arcsec": float(sources.meta.get("fwhm_px", np.nan)) * solution.scale_arcsec_px}


# ----------------------------------------------------------------------------- executors
def _map_local(fn, items):
    for item in items:
        yield fn(item)


def _warm_worker():
    """Worker initialiser: numba kernels on one thread (frames are the parallel unit: no
    oversubscription), and the imports and compiled kernels loaded before the first frame."""
    import numba

    numba.set_num_threads(1)
    from . import db  # noqa: F401  (h5py: the content hash lives there)
    from .astrometry import solve  # noqa: F401
    from .catalog import gaia
    from .detect import detect

    detect(_warm_up_scene())  # every detection kernel, the streak fit's included
    gaia()._tree  # noqa: B018  (the catalog's k-d tree, ~0.3 s, built once per process)


def _warm_up_scene() -> np.ndarray:
    """A 96 x 96 noise frame (ADU) with three stars and a streak: enough to run every kernel."""
    from .simulate import render

    image = np.full((96, 96), 400.0)
    render.add_points(image, np.array([20.0, 70.0, 30.0]), np.array([20.0, 30.0, 75.0]),
                      np.array([2e4, 5e4, 1e4]), 2.5)
    render.add_streaks(image, [45.0], [50.0], [85.0], [80.0], [6e4], 2.5)
    noisy = np.random.default_rng(0).normal(image, np.sqrt(image))
    return noisy.astype(np.float32)


def _worker_pool(workers):
    """A process pool whose workers start (and warm up) at once, while the caller goes on.

    Processes are started with 'spawn': numba's OpenMP threading layer forbids fork().
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_warm_worker)
    pool.submit(int)  # starts every worker now
    return pool


def _stop_workers(pool):
    """Stop a pool's idle workers at once, once every result is in: they hold nothing to save,
    and a normal exit (interpreter finalisation with numba, scipy and astropy loaded) costs each
    ~0.5-1 s of CPU, which the night stage would wait for or share."""
    stop = getattr(pool, "terminate_workers", None)  # Python >= 3.14
    if stop is not None:
        stop()
        return
    workers = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False)
    for process in workers:
        process.terminate()


def _map_processes(fn, items, pool):
    """Results of ``fn`` over ``items`` in the pool's worker processes, as they complete."""
    from concurrent.futures import as_completed

    futures = [pool.submit(fn, item) for item in items]
    for fut in as_completed(futures):
        yield fut.result()


def _map_dask(fn, items, scheduler):
    from distributed import Client, as_completed

    client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
    try:
        futures = client.map(fn, items, pure=False)
        for fut in as_completed(futures):
            yield fut.result()
    finally:
        if not isinstance(scheduler, Client):
            client.close()


class _FrameTask:
    """Picklable callable for executors: reduce one path with the night's shared inputs."""

    def __init__(self, station, calibration, detect_config=None, solve_config=None):
        self.station, self.calibration = station, calibration
        self.detect_config, self.solve_config = detect_config, solve_config

    def __call__(self, path):
        solve_config = {"distortion": _distortion_cache(), **(self.solve_config or {})}
        return reduce_frame(path, self.station, self.calibration,
                            detect_config=self.detect_config, solve_config=solve_config)


_DISTORTION = None


def _distortion_cache():
    """This process's lens-distortion cache: rich frames lend their SIP terms to sparse ones
    of the same station, binning and shape (:class:`aposos.astrometry.DistortionCache`)."""
    global _DISTORTION
    if _DISTORTION is None:
        from .astrometry import DistortionCache

        _DISTORTION = DistortionCache()
    return _DISTORTION


# ----------------------------------------------------------------------------- the night
@dataclass
class NightSummary:
    """Counts and timings of one reduced night."""

    station: str
    frames_total: int = 0
    frames_ok: int = 0
    frames_failed: int = 0
    frames_skipped: int = 0
    observations: int = 0
    tracklets: int = 0
    identified: int = 0
    ambiguous: int = 0
    uct: int = 0
    orbits: int = 0
    elapsed_s: float = 0.0
    stage_s: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)  # (path, reason)

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    def text(self) -> str:
        stages = ", ".join(f"{k} {v:.2f} s" for k, v in self.stage_s.items())
        lines = [f"{self.station}: frames {self.frames_ok} ok, {self.frames_failed} failed, "
                 f"{self.frames_skipped} already in the store (of {self.frames_total}); "
                 f"{self.observations} observations, {self.tracklets} tracklets: {self.identified} identified, "
                 f"{self.ambiguous} ambiguous, {self.uct} UCT; {self.orbits} orbits; {self.elapsed_s:.1f} s",
                 f"  time per stage: {stages}"]
        lines += [f"  failed: {reason}" for _, reason in self.failures]
        return "\n".join(lines)


def night_calibration(scan: Table, station) -> Calibration:
    """Master bias/dark/flat from the calibration frames listed in a night scan (when present).

    The scan reads headers only: each calibration frame is read here once, and one whose
    pixels do not read is left out with a warning."""
    from .ingest import master_bias, master_dark, master_flat

    ok = scan[scan["status"] == "ok"]
    frames = {kind: _readable_frames(ok["path"][ok["image_type"] == kind], station)
              for kind in ("bias", "dark", "flat")}
    cal = Calibration()
    if len(frames["bias"]) >= 3:
        cal.bias = master_bias(frames["bias"], station=station)
    if len(frames["dark"]) >= 3:
        cal.dark = master_dark(frames["dark"], bias=cal.bias, station=station)
    if len(frames["flat"]) >= 3:
        cal.flat = master_flat(frames["flat"], bias=cal.bias, dark=cal.dark, station=station)
    return cal


def _readable_frames(paths, station) -> list:
    """The frames of ``paths`` whose pixels read; the others logged and left out."""
    from .ingest import read_frame

    frames = []
    for path in paths:
        try:
            frames.append(read_frame(path, station))
        except AposError as exc:
            log.warning("calibration frame left out: %s", exc)
    return frames


def config_hash(**settings) -> str:
    """Short hash of the settings of a run (recorded in the store)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def reduce_night(night_dir, station, store_path, tle_paths=(), *, workers: int = 1, dask_scheduler=None,
                 progress=None, detect_config=None, solve_config=None) -> NightSummary:
    """Reduce every science frame of ``night_dir`` taken by ``station`` into the store.

    ``progress``: optional callable ``progress(done, total, result)`` after each frame.
    """
    from .config import load_station

    t_run = time.perf_counter()
    st = load_station(station)
    # worker processes start and warm up while the night is scanned
    pool = _worker_pool(workers) if dask_scheduler is None and workers > 1 else None
    with pool or contextlib.nullcontext():
        return _reduce_night(night_dir, st, store_path, tle_paths, t_run, pool, workers, dask_scheduler,
                             progress, detect_config, solve_config)


def _reduce_night(night_dir, st, store_path, tle_paths, t_run, pool, workers, dask_scheduler, progress,
                  detect_config, solve_config) -> NightSummary:
    from .db import FrameRecord, Store
    from .ingest import scan_night

    scan = scan_night(night_dir, st.name, pixels=False)  # workers read and check the pixels
    summary = NightSummary(station=st.name)
    science = [r for r in scan if r["status"] != "ok" or r["image_type"] == "science"]
    summary.frames_total = len(science)
    with Store.open(store_path, "a") as db:
        db.begin_run(st.name, config_hash=config_hash(station=st.name, tle=[os.fspath(p) for p in tle_paths],
                                                      detect=detect_config, solve=solve_config))
        todo = []
        for r in science:
            if db.has_frame(file_hash(r["path"])):
                summary.frames_skipped += 1
            else:
                todo.append(r["path"])
        cal = night_calibration(scan, st) if todo else Calibration()
        task = _FrameTask(st.name, cal, detect_config, solve_config)
        if dask_scheduler is not None:
            results = _map_dask(task, todo, dask_scheduler)
        elif pool is not None:
            results = _map_processes(task, todo, pool)
        else:
            results = _map_local(task, todo)
        fields = []
        for done, res in enumerate(results, 1):
            _commit_frame(db, res, st.name, FrameRecord)
            _account(summary, res)
            if res.sky_field is not None:
                fields.append({"content_hash": res.content_hash, "t_start": res.meta.t_start,
                               "t_end": res.meta.t_end, **res.sky_field})
            n_obs = len(res.observations) if res.observations is not None else 0
            log.info("frame %s: %s%s", Path(res.path).name, res.status, f" ({res.reason})" if res.reason else "",
                     extra={"event": "frame", "path": res.path, "status": res.status, "reason": res.reason,
                            "observations": n_obs, "n_stars": res.n_stars, "rms_arcsec": res.rms_arcsec,
                            "timings_s": res.timings_s})
            if progress is not None:
                progress(done, len(todo), res)
            if pool is not None and len(todo) - done == workers - 1:  # the first worker to fall idle
                _import_night_stage()
        if pool is not None:
            _stop_workers(pool)
        ok = scan[(scan["status"] == "ok") & (scan["image_type"] == "science")]
        if len(ok):
            span = (ok["t_start"].min() - 60 * u.s, ok["t_start"].max() + (np.nanmax(ok["exposure_s"]) + 60) * u.s)
            _night_products(db, summary, st, tle_paths, span, fields)
        db.end_run("done" if summary.frames_failed == 0 else "partial")
    log.info("night %s done", st.name, extra={"event": "night", **summary.as_dict()})
    summary.elapsed_s = time.perf_counter() - t_run
    return summary


def _import_night_stage():
    """Import the night stage's modules (~1 s: scipy's spatial, linalg and integrate packages)
    while the last frames are reduced and a core is free, not after them."""
    import scipy.spatial  # noqa: F401

    from . import correlate, link  # noqa: F401
    from .orbit import uct  # noqa: F401


def _commit_frame(db, res: FrameResult, station: str, FrameRecord):
    if res.meta is not None:
        health = {k: res.health[k] for k in ("pointing_offset_deg", "rotation_deg", "scale_arcsec_px")
                  if k in res.health}
        record = FrameRecord.from_meta(res.meta, res.content_hash, station=station, status=res.status,
                                       reason=res.reason[:500], n_stars=res.n_stars,
                                       astrometric_rms_arcsec=res.rms_arcsec, **health)
    else:
        record = FrameRecord(path=res.path, content_hash=res.content_hash, station=station, status="failed",
                             reason=res.reason[:500])
    db.commit_frame(record, observations=res.observations if res.status == "ok" else None)


def _account(summary: NightSummary, res: FrameResult):
    if res.status == "ok":
        summary.frames_ok += 1
        summary.observations += len(res.observations) if res.observations is not None else 0
    else:
        summary.frames_failed += 1
        summary.failures.append((res.path, res.reason))
    for stage, seconds in res.timings_s.items():
        summary.stage_s[stage] = summary.stage_s.get(stage, 0.0) + seconds


def _night_products(db, summary: NightSummary, station, tle_paths, span, fields=()):
    """Link, correlate, fit orbits and list unseen objects for the night; commit as one unit.

    The observations are read back from the store, so a resumed run links the frames of earlier
    runs together with its own. Unseen objects are screened for this run's solved frames.
    """
    from .correlate import correlate
    from .db import query
    from .link import link

    catalog = []
    if tle_paths:
        from .tle import load_catalog

        catalog = load_catalog(list(tle_paths), near=span[0] + (span[1] - span[0]) / 2)
    obs = query.observations(db, station=station.name, start=span[0], end=span[1])
    frames = query.frames(db, station=station.name, start=span[0], end=span[1])
    row_of = {h: i for i, h in enumerate(frames["content_hash"])}
    k = np.array([row_of[h] for h in obs["content_hash"]], dtype=int)
    obs["tracking"] = np.asarray(frames["tracking"])[k] if len(k) else np.array([], str)
    obs["exposure_s"] = np.asarray(frames["exposure_s"])[k] if len(k) else np.array([], float)
    t = time.perf_counter()
    tracklets, linked = link(obs)
    summary.stage_s["link"] = time.perf_counter() - t
    summary.tracklets = len(tracklets)
    members = correlations = orbits = None
    results = Table({"tracklet": np.zeros(0, np.int64), "norad_id": np.zeros(0, np.int64), "status": np.zeros(0, str)})
    if len(tracklets):
        t = time.perf_counter()
        results, _ = correlate(tracklets, linked, catalog, station)
        summary.stage_s["correlate"] = time.perf_counter() - t
        for status in ("identified", "ambiguous", "uct"):
            setattr(summary, status, int(np.sum(results["status"] == status)))
        t = time.perf_counter()
        orbits, orbit_of = _uct_orbits(linked, results, station)
        summary.stage_s["orbit"] = time.perf_counter() - t
        summary.orbits = len(orbits) if orbits is not None else 0
        correlations = _correlation_rows(results)
        correlations["orbit_id"] = [orbit_of.get(int(t), "") for t in results["tracklet"]]
        members = _members(linked)
    unseen = None
    if len(catalog) and fields:
        t = time.perf_counter()
        unseen = _unseen(catalog, station, fields, linked, results)
        summary.stage_s["unseen"] = time.perf_counter() - t
    if members is not None or unseen is not None:
        db.commit_tracklets(members, correlations=correlations, orbits=orbits, unseen=unseen)


def _unseen(catalog, station, fields, linked: Table, results: Table):
    """Catalog objects predicted inside a frame, sunlit, above the horizon and bright enough, but
    not identified in it.

    Screens the whole catalog against this run's solved fields (:func:`aposos.screen.screen`,
    coarse to fine); the field is the circle inscribed in the image. Bright enough
    (:func:`aposos.brightness.bright_enough`): the standard object's magnitude (TLEs carry no
    size: a 1 m diffuse sphere, :func:`aposos.brightness.sphere_mag`) plus the trailing loss at
    the predicted rate is within the frame's limiting magnitude (``limit_mag`` of the field).
    """
    from .brightness import bright_enough, sphere_mag
    from .directions import unit_from_radec
    from .screen import screen

    ftab = Table({"t_start": Time([f["t_start"] for f in fields]), "t_end": Time([f["t_end"] for f in fields]),
                  "ra_deg": [f["ra_deg"] for f in fields], "dec_deg": [f["dec_deg"] for f in fields],
                  "radius_deg": [f["radius_deg"] for f in fields]})
    crossings = screen(catalog, station, ftab, min_elevation_deg=0.0)
    if len(crossings) == 0:
        return None
    identified = {int(t): int(n) for t, n, s in zip(results["tracklet"], results["norad_id"], results["status"])
                  if s == "identified"}
    seen = {(h, identified[int(t)]) for h, t in zip(linked["content_hash"], linked["tracklet"]) if int(t) in identified} \
        if len(linked) else set()
    rows = []
    for c in crossings:
        f = fields[int(c["frame"])]
        inside = unit_from_radec(c["ra_deg"], c["dec_deg"]) @ unit_from_radec(f["ra_deg"], f["dec_deg"]) \
            >= np.cos(np.radians(f["radius_deg"]))
        mag = float(sphere_mag(c["range_km"], c["phase_deg"], sunlit=c["sunlit"]))
        exposure_s = (Time(f["t_end"]) - Time(f["t_start"])).to_value("s")
        rate = 3600.0 * float(np.hypot(c["ra_rate_deg_s"], c["dec_rate_deg_s"]))
        limit = f.get("limit_mag", np.nan)
        if inside and c["sunlit"] and (f["content_hash"], int(c["norad_id"])) not in seen \
                and bright_enough(mag, rate, exposure_s, f.get("fwhm_arcsec", np.nan), limit):
            entry = catalog[int(c["norad_id"])]
            rows.append((f["content_hash"], int(c["norad_id"]), float(c["ra_deg"]), float(c["dec_deg"]), mag,
                         entry.epoch, f"predicted in field, sunlit, V {mag:.1f} (standard 1 m sphere) within the "
                         f"frame's limit {limit:.1f}, not detected"))
    if not rows:
        return None
    out = Table(rows=[r[:5] + r[6:] for r in rows], names=("content_hash", "norad_id", "ra_deg", "dec_deg", "mag_pred", "reason"))
    out["tle_epoch"] = Time([r[5] for r in rows])
    return out


#: UCT tracklets of one run beyond which association (pairwise fits) is left to the data centre
MAX_UCT_TRACKLETS = 40


def _uct_orbits(linked: Table, results: Table, station):
    """Associate this run's UCT tracklets into objects and determine their orbits
    (:func:`aposos.orbit.uct.uct_orbits`; the data centre runs the same over all stations).

    Returns (orbits Table or None, {tracklet: orbit_id}).
    """
    from .orbit.uct import uct_orbits

    uct = [int(t) for t in results["tracklet"][results["status"] == "uct"]]
    if len(uct) < 3:
        return None, {}
    if len(uct) > MAX_UCT_TRACKLETS:
        log.warning("%d UCT tracklets: association left to the data centre (limit %d)", len(uct), MAX_UCT_TRACKLETS)
        return None, {}
    tables = []
    for tid in uct:
        rows = linked[(linked["tracklet"] == tid) & (linked["kind"] != "streak_centre")]
        tab = Table({"time": rows["time"], "ra_deg": rows["ra_deg"], "dec_deg": rows["dec_deg"],
                     "sigma_arcsec": rows["sigma_arcsec"]})
        tab["station"] = station.name
        tables.append(tab)
    orbits, _, orbit_ids = uct_orbits(tables)
    return orbits, {t: o for t, o in zip(uct, orbit_ids) if o}


def _members(linked: Table) -> Table:
    """Tracklet membership, with the streak-end times and ends the linker resolved."""
    sel = linked[linked["tracklet"] >= 0]
    return Table({"tracklet": [f"t{int(t)}" for t in sel["tracklet"]],
                  "content_hash": list(sel["content_hash"]), "obs_index": np.asarray(sel["obs_index"]),
                  "time": sel["time"], "end": np.asarray(sel["end"])})


def _correlation_rows(results: Table) -> Table:
    return Table({"tracklet": [f"t{int(t)}" for t in results["tracklet"]],
                  "norad_id": np.asarray(results["norad_id"]), "status": list(results["status"]),
                  "rank": np.zeros(len(results), int), "along_track_arcsec": np.asarray(results["along_arcsec"]),
                  "cross_track_arcsec": np.asarray(results["cross_arcsec"]), "tle_epoch": results["tle_epoch"],
                  "score": np.asarray(results["chi2"])})


# ----------------------------------------------------------------------------- command line
def _print_progress(done, total, res):
    mark = "ok" if res.status == "ok" else "FAILED"
    n = len(res.observations) if res.observations is not None else 0
    print(f"[{done}/{total}] {Path(res.path).name}: {mark} ({n} observations)", flush=True)


def _cmd_reduce(args) -> int:
    summary = reduce_night(args.night_dir, args.station, args.db, args.tle, workers=args.workers,
                           dask_scheduler=args.dask_scheduler, progress=None if args.quiet else _print_progress)
    if args.json:
        print(json.dumps(summary.as_dict(), default=str))
    else:
        print(summary.text())
    return 1 if summary.frames_failed else 0


def run_demo(out) -> int:
    """Reduce the bundled sample night of the three stations into ``out/store``; print summaries."""
    root = Path(__file__).resolve().parent.parent / "data_samples"
    if not (root / "night.ecsv").exists():
        raise AposError("the sample night is missing: run `make sample`", path=root)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    store = out / "store"
    failed = 0
    for station in ("iran", "pakistan", "peru"):
        night = root / station
        if not night.is_dir():
            continue
        summary = reduce_night(night, station, store, [root / "tle_catalog.txt"], progress=_print_progress)
        print(summary.text())
        failed += summary.frames_failed
    from .db import Store

    with Store.open(store, "r") as db:
        print("store:", json.dumps(db.summary()))
    print(f"(the sample night has {'bad frames by design' if failed else 'no failed frames'}: "
          f"{failed} recorded as failed with their reason)")
    return 0


def register_cli(sub):
    p = sub.add_parser("reduce", help="reduce a night of one station into the observation store")
    p.add_argument("night_dir", help="folder of the night's FITS files (science and calibration)")
    p.add_argument("--station", required=True, help="configured station name (iran, pakistan, peru)")
    p.add_argument("--db", required=True, help="observation store (created if missing)")
    p.add_argument("--tle", action="append", default=[], help="TLE catalog file (repeatable; first wins)")
    p.add_argument("--workers", type=int, default=1, help="worker processes on this machine")
    p.add_argument("--dask-scheduler", default=None, help="address of a Dask distributed scheduler")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--quiet", action="store_true", help="no per-frame progress lines")
    p.set_defaults(func=_cmd_reduce)
