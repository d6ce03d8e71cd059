"""Streaks in crowded sidereal fields, against simulator truth (the sample night's frames).

Pakistan GEO frames (8 s, 7.43 arcsec/px, FWHM ~2.7 px, ~600 stars): the GEOs are 16 px
streaks of mag 11.7 and 12.2 merged with stars of comparable brightness (on them, beside them,
just beyond their ends). Iran LEO frames (1 s): a ~120 px LEO streak among ~2000 stars, where
pairs and chains of faint stars tempt the streak finder.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from aposos.detect import detect
from aposos.ingest import read_frame
from aposos.simulate.night import read_truth

SAMPLES = Path(__file__).resolve().parents[1] / "data_samples"


def _frame(station, name):
    frame = read_frame(SAMPLES / station / f"{name}.fits", station)
    offset = float(np.median(frame.data))
    sources = detect(frame.data - offset, mode="sidereal",
                     saturation_adu=frame.meta.saturation_adu - offset)
    truth = read_truth(SAMPLES / "truth" / f"{name}.ecsv.gz")
    return sources, truth[truth["kind"] == "satellite"]


def _end_errors(row, sat):
    """Distances (px) of both fitted ends from the true ends, whichever way round."""
    fit = np.array([[row["x0"], row["y0"]], [row["x1"], row["y1"]]])
    true = np.array([[sat["x0"], sat["y0"]], [sat["x1"], sat["y1"]]])
    same = np.hypot(*(fit - true).T)
    swapped = np.hypot(*(fit - true[::-1]).T)
    return same if same.max() <= swapped.max() else swapped


def _streak_at(streaks, sat):
    if not len(streaks):
        return None
    d = np.hypot(streaks["x"] - sat["x"], streaks["y"] - sat["y"])
    i = int(np.argmin(d))
    return streaks[i] if d[i] < 2.0 else None


def _false_streaks(streaks, sats):
    return sum(1 for r in streaks
               if not any(math.hypot(r["x"] - s["x"], r["y"] - s["y"]) < max(5.0, 0.5 * r["length_px"])
                          for s in sats))


# frame 02 is not asserted: a bleed trail 3 px from one GEO and a star on the other's end
# (known limits, reported)
@pytest.mark.parametrize("name", ["pakistan_geo_sidereal_01", "pakistan_geo_sidereal_03"])
def test_geo_streaks_merged_with_stars_are_streaks_with_exact_ends(name):
    sources, sats = _frame("pakistan", name)
    streaks = sources[sources["kind"] == "streak"]
    assert len(sats) == 2
    for sat in sats:
        row = _streak_at(streaks, sat)
        assert row is not None, f"GEO {sat['id']} not found as a streak"
        assert _end_errors(row, sat).max() < 1.0
        assert abs(row["length_px"] - math.hypot(sat["x1"] - sat["x0"], sat["y1"] - sat["y0"])) < 1.0
    assert _false_streaks(streaks, sats) == 0  # star pairs and chains stay points


@pytest.mark.parametrize("name", ["iran_leo_pass_01", "iran_leo_pass_02", "iran_leo_pass_03"])
def test_leo_is_one_streak_among_many_stars(name):
    sources, sats = _frame("iran", name)
    streaks = sources[sources["kind"] == "streak"]
    (sat,) = sats
    row = _streak_at(streaks, sat)
    assert row is not None
    assert _end_errors(row, sat).max() < 1.0
    phi = math.radians(row["angle_deg"])
    pieces = [r for r in streaks if (r["x"], r["y"]) != (row["x"], row["y"])
              and abs(-(r["x"] - row["x"]) * math.sin(phi) + (r["y"] - row["y"]) * math.cos(phi)) < 5
              and abs((r["x"] - row["x"]) * math.cos(phi) + (r["y"] - row["y"]) * math.sin(phi))
              < 0.5 * row["length_px"] + 5]
    assert not pieces  # one streak, not broken
    # measured 0 in each frame (1, 3 and 0 before the test of short streaks against clumps of
    # 3-4 stars: chains and clumps of faint stars at SNR 11-16)
    assert _false_streaks(streaks, sats) <= 1
