"""Night report: figures against a store with known content, and the page in headless Chromium."""

import shutil
import subprocess

import astropy.units as u
import numpy as np
import pytest
from astropy.table import Table
from astropy.time import Time

from aposos.db import FrameRecord, Store
from aposos.report import night_interval, timing_bias, write_report

NIGHT = "2026-11-20"
CLOCK_BIAS_S = {"iran": 0.040, "pakistan": -0.015}  # injected: time stamps late (+) or early (-)


def _store(path):
    """Two stations, 6 frames each, 3 moving objects per frame, identified with a clock bias."""
    rng = np.random.default_rng(5)
    with Store.open(path, "a") as db:
        for station, bias in CLOCK_BIAS_S.items():
            db.begin_run(station)
            t0 = Time(f"{NIGHT}T17:00:00", scale="utc")
            rates = np.array([15.0, 120.0, 900.0])  # arcsec/s along +RA at the equator
            members, corr = [], []
            for i in range(6):
                t = t0 + i * 30 * u.s
                ra = 40.0 + np.arange(3) * 2 + rates * i * 30 / 3600
                obs = Table({"time": Time([t] * 3), "ra_deg": ra, "dec_deg": np.zeros(3),
                             "sigma_arcsec": np.full(3, 1.0), "kind": ["point"] * 3, "end": [-1] * 3,
                             "x": np.zeros(3), "y": np.zeros(3), "mag": np.full(3, 9.0), "source_index": np.arange(3)})
                h = f"{station}-{i}".ljust(64, "0")
                rec = FrameRecord(path=f"/n/{station}_{i}.fits", content_hash=h, station=station, t_start=t,
                                  t_mid=t + 1 * u.s, t_end=t + 2 * u.s, exposure_s=2.0, n_stars=40,
                                  astrometric_rms_arcsec=0.3 + 0.05 * i)
                db.commit_frame(rec, observations=obs)
                members += [(f"{station}-t{k}", h, k) for k in range(3)]
            bad = FrameRecord(path=f"/n/{station}_bad.fits", content_hash=f"{station}-bad".ljust(64, "0"),
                              station=station, status="failed", reason="plate solution failed: 3 stars")
            db.commit_frame(bad)
            for k, rate in enumerate(rates):
                along = -rate * bias + rng.normal(0, 0.3)
                corr.append((f"{station}-t{k}", 40000 + k, "identified", 0, along, rng.normal(0, 0.3),
                             Time("2026-11-19T00:00:00"), 1.0))
            m = Table(rows=members, names=("tracklet", "content_hash", "obs_index"))
            c = Table(rows=corr, names=("tracklet", "norad_id", "status", "rank", "along_track_arcsec",
                                        "cross_track_arcsec", "tle_epoch", "score"))
            db.commit_tracklets(m, correlations=c)
            db.end_run()
    return path


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    store = _store(tmp / "store")
    return write_report(store, NIGHT, tmp / "out")


def test_timing_bias_recovers_the_injected_clock_error(tmp_path):
    from aposos.report import gather

    with Store.open(_store(tmp_path / "s"), "r") as db:
        data = gather(db, *night_interval(NIGHT))
    bias = timing_bias(data["residuals"])
    got = dict(zip(bias["station"], bias["bias_s"]))
    for station, truth in CLOCK_BIAS_S.items():
        assert abs(got[station] - truth) < 0.005, (station, got[station], truth)  # seconds


def test_page_has_the_plots_and_the_failures(report):
    text = report.read_text()
    assert text.count("data:image/png;base64,") == 4
    assert "plate solution failed: 3 stars" in text
    assert "identified: 6" in text and "frames: 12 ok, 2 failed" in text
    assert "<script" not in text  # self-contained, nothing to fetch or run


def test_cli_report_errors_are_one_line(tmp_path, capsys):
    from aposos.cli import main

    assert main(["report", "--db", str(tmp_path / "nothing"), "--night", NIGHT, "--out", str(tmp_path)]) == 2
    assert "error" in capsys.readouterr().err


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (Debian package chromium; .ci/run installs it)")
def test_page_loads_in_headless_chromium_without_console_errors(report, tmp_path):
    shot = tmp_path / "report.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
             "--window-size=1100,2600", f"--screenshot={shot}", report.as_uri()]
    run = subprocess.run([CHROMIUM, *flags], capture_output=True, text=True, timeout=120)
    console = [line for line in run.stderr.splitlines() if "CONSOLE" in line and "ERROR" in line.upper()]
    assert not console, console
    assert shot.exists()
    from matplotlib.image import imread

    img = imread(shot)[..., :3]
    # the plots are there: many distinct colours, not a blank or error page
    colours = np.unique((img.reshape(-1, 3) * 255).astype(np.uint8), axis=0)
    assert len(colours) > 200
