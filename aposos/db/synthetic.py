"""Deterministic synthetic results for exercising a store (tests, benchmarks).

Not physics: positions are arbitrary but every value is a pure function of the arguments, so a
test can regenerate what a killed writer should have committed and compare exactly.
"""

from __future__ import annotations

import numpy as np

from . import schema
from .rows import FrameRecord

#: Start of the synthetic nights, TAI ns since J2000 (an evening of November 2026).
T0_NS = int(848_649_600 + 18 * 3600 + 37) * 1_000_000_000
FRAME_CADENCE_NS = 10_000_000_000   # a frame every 10 s
EXPOSURE_NS = 2_000_000_000


def content_hash(station: str, i: int) -> str:
    """A fake sha256 hex of frame ``i`` of ``station``."""
    import hashlib

    return hashlib.sha256(f"{station}/{i}".encode()).hexdigest()


def n_obs(i: int) -> int:
    """Observations in frame ``i`` (0 to 6, varies so partial writes would show)."""
    return (i * 5) % 7


def frame(station: str, i: int):
    """(FrameRecord, observations dict) of synthetic frame ``i`` of ``station``."""
    t0 = T0_NS + i * FRAME_CADENCE_NS
    n = n_obs(i)
    times = schema.ns_to_time([t0, t0 + EXPOSURE_NS // 2, t0 + EXPOSURE_NS])
    rec = FrameRecord(path=f"/data/{station}/frame{i:05d}.fits",
                      content_hash=content_hash(station, i), station=station,
                      t_start=times[0], t_mid=times[1], t_end=times[2], exposure_s=2.0,
                      n_stars=30 + i % 20, astrometric_rms_arcsec=0.5 + (i % 10) / 20)
    k = np.arange(n)
    obs = {"time_ns": t0 + k * (EXPOSURE_NS // max(n, 1)),
           "ra_deg": (i * 0.37 + k * 0.001) % 360.0, "dec_deg": -30 + (i % 60) + k * 1e-4,
           "sigma_arcsec": np.full(n, 0.8), "mag": 9.0 + k / 10, "x": 100.0 + k, "y": 200.0 + k,
           "kind": np.where(k % 2 == 0, "point", "streak_end"), "end": np.where(k % 2, k % 2, -1),
           "source_index": k}
    return rec, obs


def bulk_tables(n_frames: int, obs_per_frame: int, *, stations=("iran", "pakistan", "peru"),
                obs_per_tracklet: int = 10, n_objects: int = 20_000, seed: int = 1,
                nights: int = 365, pipeline_version: str = "0.1.0") -> dict[str, np.ndarray]:
    """Schema rows of a large synthetic archive (frames, observations, tracklets, correlations).

    Frames are spread evenly over ``nights`` consecutive nights, over 10 hours of each night
    (the stations take turns); each tracklet takes ``obs_per_tracklet`` consecutive
    observations of one frame and is identified with a random NORAD id among ``n_objects``.
    Used by the scale benchmark.
    """
    rng = np.random.default_rng(seed)
    f = schema.empty("frames", n_frames)
    f["frame_uid"] = rng.integers(1, 2**62, n_frames)
    f["content_hash"] = np.char.mod("%064x", np.arange(n_frames))
    f["pipeline_version"] = pipeline_version.encode()
    f["run_id"] = b"bulk"
    st = np.array(stations, dtype="S16")
    f["station"] = st[np.arange(n_frames) % len(st)]
    f["path"] = np.char.mod("frame%08d.fits", np.arange(n_frames))
    per_night = -(-n_frames // nights)
    night, k_in_night = np.divmod(np.arange(n_frames), per_night)
    spacing_ns = max(36_000_000_000_000 // per_night, EXPOSURE_NS)
    f["t_start_ns"] = T0_NS + night * 86_400_000_000_000 + k_in_night * spacing_ns
    f["t_mid_ns"] = f["t_start_ns"] + EXPOSURE_NS // 2
    f["t_end_ns"] = f["t_start_ns"] + EXPOSURE_NS
    f["exposure_s"] = 2.0
    f["status"] = 0
    f["n_stars"] = 40
    f["astrometric_rms_arcsec"] = 0.7
    f["commit_seq"] = 0
    n = n_frames * obs_per_frame
    o = np.empty(n, schema.dtype("observations"))
    fi = np.repeat(np.arange(n_frames), obs_per_frame)
    k = np.tile(np.arange(obs_per_frame), n_frames)
    o["frame_uid"] = f["frame_uid"][fi]
    o["obs_index"] = k
    o["time_ns"] = f["t_start_ns"][fi] + k * (EXPOSURE_NS // obs_per_frame)
    o["ra_deg"] = rng.uniform(0, 360, n)
    o["dec_deg"] = rng.uniform(-60, 60, n)
    o["sigma_arcsec"] = 1.0
    o["mag"] = rng.uniform(6, 12, n).astype(np.float32)
    o["x"] = rng.uniform(0, 2048, n).astype(np.float32)
    o["y"] = rng.uniform(0, 2048, n).astype(np.float32)
    o["kind"] = 0
    o["end"] = -1
    o["source_index"] = k
    per_frame = obs_per_frame // obs_per_tracklet
    n_trk = n_frames * per_frame
    tid = np.arange(1, n_trk + 1, dtype=np.int64)
    o["tracklet_id"] = 0
    linked = k < per_frame * obs_per_tracklet
    o["tracklet_id"][linked] = tid[fi[linked] * per_frame + k[linked] // obs_per_tracklet]
    t = schema.empty("tracklets", n_trk)
    t["tracklet_id"] = tid
    t["label"] = b"bulk"
    t["run_id"] = b"bulk"
    trk_frame = np.repeat(np.arange(n_frames), per_frame)
    t["station"] = f["station"][trk_frame]
    t["pipeline_version"] = pipeline_version.encode()
    t["first_frame_uid"] = f["frame_uid"][trk_frame]
    t["n_obs"] = obs_per_tracklet
    t["t_first_ns"] = f["t_start_ns"][trk_frame]
    t["t_last_ns"] = f["t_end_ns"][trk_frame]
    t["commit_seq"] = 0
    c = schema.empty("correlations", n_trk)
    c["tracklet_id"] = tid
    c["norad_id"] = rng.integers(1, n_objects + 1, n_trk)
    c["rank"] = 0
    c["status"] = 0
    c["along_track_arcsec"] = rng.normal(0, 5, n_trk)
    c["cross_track_arcsec"] = rng.normal(0, 2, n_trk)
    c["tle_epoch_ns"] = T0_NS
    c["score"] = rng.uniform(0, 1, n_trk)
    c["run_id"] = b"bulk"
    c["commit_seq"] = 0
    return {"frames": f, "observations": o, "tracklets": t, "correlations": c}
