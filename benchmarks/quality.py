"""Print the quality figures of aposos.detect against simulator truth (and the BASP frames).

``python benchmarks/quality.py`` -- the same scenes and criteria as tests/test_detect*.py, with
the figures printed instead of asserted (takes a minute or two).
"""

import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import test_detect as T  # noqa: E402
from test_detect_scenes import SKY_E, expose, match, point_scene  # noqa: E402

from aposos.detect import detect  # noqa: E402
from aposos.simulate import render  # noqa: E402


def points():
    runs = []
    for seed in range(6):
        adu, truth = point_scene((512, 512), n=200, snr_ap=(3.0, 60.0), seed=seed)
        runs.append((truth, detect(adu)))
    snr, found, dx, dy, crb = T._collect(runs)
    print("points (6 frames 512^2, 1200 isolated stars, SNR = aperture SNR in r = FWHM):")
    for lo, hi in [(3, 4), (4, 4.5), (4.5, 5.5), (5.5, 7), (7, 10), (10, 1e9)]:
        sel = (snr >= lo) & (snr < hi)
        print(f"  completeness SNR {lo:>4} .. {hi:<6g}: {found[sel].mean():.3f}  ({sel.sum()} stars)")
    for lo, hi in [(5, 10), (10, 30), (30, 100)]:
        sel = found & (snr >= lo) & (snr < hi)
        rx = math.sqrt(np.mean((dx[sel] / crb[sel]) ** 2))
        ry = math.sqrt(np.mean((dy[sel] / crb[sel]) ** 2))
        print(f"  centroid rms / Cramer-Rao bound, SNR {lo}..{hi}: x {rx:.3f}  y {ry:.3f}")
    n = 0
    for seed in range(11, 15):
        n += len(detect(expose(render.sky((1024, 1024), SKY_E), np.random.default_rng(seed))))
    print(f"  false detections on noise only: {n} in 4 x 1024^2 ({n / 4:.2f} per Mpx)")


def photutils_agreement():
    from photutils.background import Background2D
    from photutils.segmentation import SourceCatalog, detect_sources
    adu, truth = point_scene((512, 512), n=80, snr_ap=(100.0, 1000.0), seed=21, min_sep=30)
    s = detect(adu, fwhm_px=T.FWHM)
    bkg = Background2D(adu, 64)
    data = adu - bkg.background
    cat = SourceCatalog(data, detect_sources(data, 3 * bkg.background_rms, npixels=5))
    m = match(cat.x_centroid, cat.y_centroid, s["x"], s["y"], 1.0)
    ok = m >= 0
    d = np.hypot(np.asarray(s["x"])[ok] - cat.x_centroid[m[ok]], np.asarray(s["y"])[ok] - cat.y_centroid[m[ok]])
    print(f"photutils SourceCatalog vs aposos centroids, {ok.sum()} isolated stars SNR 100..1000: "
          f"rms {math.sqrt(np.mean(d**2)):.4f} px, max {d.max():.4f} px")


def short_streaks():
    found, on_clumps, total = T.short_streaks_and_clumps(range(12))
    print(f"short streaks (12 frames, {total} streaks 8..24 px, integrated SNR 12..30, beside "
          f"{total} clumps of 3-5 faint stars): found {found / total:.3f}, streaks on clumps "
          f"{on_clumps}")


def streaks():
    found, end_err, snrs, lengths = [], [], [], []
    for seed in range(8):
        adu, ends, snr, _ = T._streak_frame(seed)
        s = detect(adu)
        st = s[s["kind"] == "streak"]
        for e, q in zip(ends, snr):
            c = 0.5 * (e[:2] + e[2:])
            ang = math.degrees(math.atan2(e[3] - e[1], e[2] - e[0]))
            near = [r for r in st if math.hypot(r["x"] - c[0], r["y"] - c[1]) < 5
                    and T._angle_diff_deg(r["angle_deg"], ang) < 5]
            found.append(len(near) == 1)
            snrs.append(q)
            lengths.append(math.hypot(e[2] - e[0], e[3] - e[1]))
            end_err.append(T._end_errors(near[0], e) if near else [np.nan, np.nan])
    found, end_err, snrs = np.array(found), np.array(end_err), np.array(snrs)
    print(f"streaks (8 frames, {len(found)} streaks, integrated SNR 15..60, length 10..150 px, "
          f"with stars): found once {found.mean():.3f}")
    for lo, hi in [(15, 30), (30, 60)]:
        sel = (snrs >= lo) & (snrs < hi)
        print(f"  SNR {lo}..{hi}: found {found[sel].mean():.3f}, end rms "
              f"{math.sqrt(np.nanmean(end_err[sel] ** 2)):.3f} px")


def basp():
    from astropy.io import fits
    folder = ROOT.parent / "shared" / "realdata" / "BASP" / "Sample_Images"
    if not folder.exists():
        print("BASP: real data absent")
        return
    bias = np.median([fits.getdata(folder / f"SST20210729_{i}.fit").astype(np.float32)
                      for i in range(101, 111)], axis=0)
    for i in range(113, 122):
        im = fits.getdata(folder / f"SST20210729_{i}.fit").astype(np.float32) - bias
        s = detect(im)
        st = s[(s["kind"] == "streak") & (s["snr"] > 100) & (s["length_px"] < 650)]
        sat = st[np.argmax(st["length_px"])]
        print(f"BASP {i}: {len(s)} objects, fwhm {s.meta['fwhm_px']:.2f} px, satellite streak "
              f"L = {sat['length_px']:.1f} px, angle {sat['angle_deg']:.2f} deg, ends +- "
              f"{sat['end_sigma_px']:.3f} px, snr {sat['snr']:.0f}; streaks in frame "
              f"{(s['kind'] == 'streak').sum()}")


if __name__ == "__main__":
    points()
    photutils_agreement()
    streaks()
    short_streaks()
    basp()
