"""Rate-tracked sample frames (data_samples/, ``make sample``): stars are trails, the target a point.

Iran GEO, 5 s at 15"/s: 7.6 px trails (the detector reports them as elongated points).
Peru LEO pass, 1 s at ~1060"/s: 105 px trails, many cut by the frame edge.
Checks against the simulator's truth: the solved plate vs the true WCS at the true star
positions (px), the target's RA/Dec (arcsec) and time tag, and that star trails are not
reported as observations. ``pytest -s`` prints the figures.
"""

from pathlib import Path

import numpy as np
import pytest
from astropy.wcs import WCS

from aposos.astrometry import measure, solve
from aposos.astrometry.tangent import separation_deg

SAMPLES = Path(__file__).resolve().parent.parent / "data_samples"
FRAMES = ["iran_geo_rate_01", "iran_geo_rate_02", "iran_geo_rate_03",
          "peru_leo_pass_01", "peru_leo_pass_02", "peru_leo_pass_03"]
# the detector merges the target with a crossing star trail in this one (centroid 10 px off):
# the frame must still solve, but there is no target source to measure
TARGET_NOT_DETECTED = {"peru_leo_pass_02"}


def _reduce(stem):
    from aposos.detect import detect
    from aposos.ingest import read_frame
    from aposos.simulate.night import read_truth

    path = SAMPLES / stem.split("_")[0] / f"{stem}.fits"
    if not path.exists():
        pytest.skip(f"{path} missing (make sample)")
    frame = read_frame(path, stem.split("_")[0])
    assert frame.meta.tracking == "rate"
    src = detect(frame.data, mode="rate", saturation_adu=frame.meta.saturation_adu)
    truth = read_truth(SAMPLES / "truth" / f"{stem}.ecsv.gz")
    return frame, src, truth


@pytest.mark.parametrize("stem", FRAMES)
def test_rate_tracked_sample_frame_solves_and_measures_the_target(stem):
    frame, src, truth = _reduce(stem)
    sol = solve(frame, src)
    assert sol.accepted, sol.reason
    ny, nx = frame.shape
    # plate vs truth at the true mid-exposure positions of the catalog stars inside the frame
    stars = truth[truth["kind"] == "star"]
    inside = (stars["x"] >= 0) & (stars["x"] <= nx - 1) & (stars["y"] >= 0) & (stars["y"] <= ny - 1)
    stars = stars[inside]
    x, y = sol.world_to_pixel(np.asarray(stars["ra_deg"]), np.asarray(stars["dec_deg"]))
    err = np.hypot(x - stars["x"], y - stars["y"])
    # and against the true WCS over a grid covering the whole frame (extrapolated corners)
    gx, gy = np.meshgrid(np.linspace(0, nx - 1, 9), np.linspace(0, ny - 1, 9))
    ra, dec = WCS(dict(truth.meta["wcs"])).all_pix2world(gx.ravel(), gy.ravel(), 0)
    px, py = sol.world_to_pixel(ra, dec)
    grid = np.hypot(px - gx.ravel(), py - gy.ravel())
    rms = float(np.sqrt(np.mean(err ** 2)))
    print(f"\n{stem}: {sol.n_matched} stars, {sol.model}; vs truth at {len(stars)} stars: rms {rms:.3f} px, "
          f"max {err.max():.3f} px; frame grid max {grid.max():.3f} px")
    assert rms < 0.15 and err.max() < 0.5 and grid.max() < 0.6

    obs = measure(frame, src, sol)
    sat = truth[truth["kind"] == "satellite"][0]
    d = np.hypot(obs["x"] - sat["x"], obs["y"] - sat["y"])
    if stem in TARGET_NOT_DETECTED:
        assert not len(d) or d.min() > 2.0  # if the detector learns to deblend it, move it to the checks below
    else:
        row = obs[int(np.argmin(d))]
        assert d.min() < 0.5 and row["kind"] == "point"
        sep = separation_deg(row["ra_deg"], row["dec_deg"], sat["ra_deg"], sat["dec_deg"]) * 3600.0
        z = sep / (np.sqrt(2.0) * row["sigma_arcsec"])  # sigma is per axis
        print(f"  target: {sep:.2f} arcsec from truth (quoted sigma {row['sigma_arcsec']:.2f} per axis, "
              f"normalised {z:.2f}), time {abs((row['time'] - frame.meta.t_mid).sec) * 1e3:.3f} ms from mid-exposure")
        assert sep < 1.0
        assert z < 3.0  # quoted uncertainty honest (was 2.4 sigma off on peru_leo_pass_01)
        assert abs((row["time"] - frame.meta.t_mid).sec) < 1e-6

    # star trails are not reported: (almost) no observation on the trail of a star brighter than
    # G = 12 (catalog stars and the brighter rendered field stars), the target's own row aside
    trails = truth[np.isin(truth["kind"], ["star", "faint_star"]) & (truth["mag"] < 12.0)]
    others = obs[d > 2.0]
    near = _distance_to_segments(np.asarray(others["x"]), np.asarray(others["y"]), trails) < 2.0
    kinds = dict(zip(*np.unique(np.asarray(others["kind"]).astype(str), return_counts=True)))
    print(f"  {len(obs)} observations {kinds}; {near.sum()} on one of {len(trails)} star trails (G < 12)")
    assert near.sum() <= 3


def _distance_to_segments(x, y, trails) -> np.ndarray:
    """Distance (px) of each point to the nearest trail segment (x0, y0)-(x1, y1) of the truth."""
    if len(x) == 0 or len(trails) == 0:
        return np.full(len(x), np.inf)
    a = np.stack([np.asarray(trails["x0"]), np.asarray(trails["y0"])], -1)[None]
    b = np.stack([np.asarray(trails["x1"]), np.asarray(trails["y1"])], -1)[None]
    p = np.stack([x, y], -1)[:, None]
    ab = b - a
    t = np.clip(np.sum((p - a) * ab, -1) / np.maximum(np.sum(ab * ab, -1), 1e-12), 0.0, 1.0)
    return np.min(np.linalg.norm(p - (a + t[..., None] * ab), axis=-1), axis=1)
