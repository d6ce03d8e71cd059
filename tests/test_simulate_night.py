"""The sample night: plan (darkness, visibility, catalog), frames through the station dialects,
and the committed data_samples/ folder."""

from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.table import Table
from astropy.time import Time

from aposos.config import load_station
from aposos.errors import AposError
from aposos.simulate import frames, night, satellites, tles

SAMPLES = Path(__file__).resolve().parent.parent / "data_samples"


@pytest.fixture(scope="module")
def plan():
    return night.sample_night_plan()


def test_every_sequence_is_in_darkness_with_a_visible_sunlit_target(plan):
    truth_tles, uncatalogued, sequences = plan
    assert {s.station for s in sequences} == {"iran", "pakistan", "peru"}
    regimes = {s.target.regime for s in sequences}
    assert {"LEO", "GEO"} <= regimes
    for seq in sequences:
        st = load_station(seq.station)
        times = Time(seq.t_starts)
        assert np.all(satellites.sun_altitude_deg(st, times) < -18.0)
        obs = satellites.observe(seq.target, st, times)
        assert np.all(obs["alt_deg"] > 30) and np.all(obs["lit"] == 1.0) and np.all(obs["mag"] < 13)
    # each station observes in its own local night: UTC times differ by hours
    first = {s.station: s.t_starts[0] for s in sequences}
    assert (first["peru"] - first["iran"]).to_value(u.hour) > 8


def test_published_catalog_is_aged_and_lacks_the_uncatalogued_object(plan):
    truth_tles, uncatalogued, _ = plan
    published = night.published_catalog(truth_tles, uncatalogued)
    assert len(published) == len(truth_tles) - len(uncatalogued)
    assert not {t.norad for t in published} & uncatalogued
    truth = {t.norad: t for t in truth_tles}
    ages = np.array([(truth[t.norad].epoch - t.epoch).to_value(u.day) for t in published])
    assert np.all((ages > 0.99) & (ages < 3.01))


def test_dusk_is_when_the_sun_reaches_minus_18():
    for name in ("iran", "pakistan", "peru"):
        t = night.dusk(name)
        alt = satellites.sun_altitude_deg(load_station(name), Time([t - 60 * u.s, t]))
        assert alt[0] >= -18.0 > alt[1]


@pytest.mark.parametrize("station", ["iran", "pakistan", "peru"])
def test_frame_written_in_the_station_dialect_reads_back(tmp_path, station, plan):
    from aposos.ingest import read_frame, write_frame

    _, _, sequences = plan
    seq = next(s for s in sequences if s.station == station)
    frame, truth = frames.simulate_frame(station, seq.t_starts[0], seq.exposure_s, *(seq.pointings[0] or (None, None)),
                                         tracking=seq.tracking, target=seq.target, tles=[seq.target], seed=1,
                                         shape=(96, 96))
    path = write_frame(tmp_path / "f.fits", frame, station)
    back = read_frame(path)
    assert back.meta.station == station
    for key in ("t_start", "t_mid", "t_end"):
        assert abs((getattr(back.meta, key) - getattr(frame.meta, key)).to_value(u.s)) < 1e-5
    assert back.meta.exposure_s == pytest.approx(seq.exposure_s)
    assert back.meta.tracking == seq.tracking and back.meta.binning == frame.meta.binning
    assert np.array_equal(back.data, frame.data)
    assert abs(back.meta.pointing_dec_deg - truth.meta["pointing_dec_deg"]) < 1.0


# --- the committed sample night -------------------------------------------------------------
def _samples():
    if not (SAMPLES / "night.ecsv").exists():
        pytest.skip("data_samples/ not generated (make sample)")
    return Table.read(SAMPLES / "night.ecsv")


def test_sample_night_has_what_the_issue_asks_for():
    index = _samples()
    assert set(index["station"]) == {"iran", "pakistan", "peru"}
    assert set(index["tracking"]) == {"sidereal", "rate"}
    assert index["bad"].sum() >= 2 and "none" not in set(index["problem"][index["bad"]])
    assert index["uncatalogued_on_image"].sum() >= 1
    published = {t.norad for t in tles.read_catalog(SAMPLES / "tle_catalog.txt")}
    truth = {t.norad for t in tles.read_catalog(SAMPLES / "truth_tles.txt")}
    assert set(index.meta["uncatalogued"]) == truth - published
    total = sum(p.stat().st_size for p in SAMPLES.rglob("*") if p.is_file())
    assert total < 12e6


def test_sample_frames_read_back_with_their_truth():
    from aposos.ingest import read_frame

    index = _samples()
    for row in index:
        path = SAMPLES / row["file"]
        if row["problem"].startswith("file truncated"):
            with pytest.raises(AposError):
                read_frame(path)
            continue
        frame = read_frame(path)
        truth = night.read_truth(SAMPLES / "truth" / (Path(row["file"]).stem + ".ecsv.gz"))
        assert abs((frame.meta.t_start - Time(truth.meta["t_start"])).to_value(u.s)) < 1e-5
        assert frame.meta.tracking == row["tracking"] and frame.shape == tuple(truth.meta["shape"])
        sats = truth[(truth["kind"] == "satellite") & truth["on_image"]]
        assert row["target"] in set(sats["id"])
        assert (truth["kind"] == "star").sum() >= 8


def test_cli_writes_one_frame_and_its_truth(tmp_path, plan, capsys):
    from aposos.cli import main
    from aposos.ingest import read_frame

    truth_tles, _, sequences = plan
    seq = next(s for s in sequences if s.station == "peru" and s.tracking == "sidereal")
    tles.write_catalog(tmp_path / "sky.txt", [seq.target])
    out, truth_path = tmp_path / "f.fits", tmp_path / "f.ecsv"
    code = main(["simulate", "--station", "peru", "--time", seq.t_starts[0].isot, "--exposure", "2",
                 "--tles", str(tmp_path / "sky.txt"), "--rate-track", str(seq.target.norad), "--size", "64",
                 "--out", str(out), "--truth", str(truth_path)])
    assert code == 0 and "1 satellites" in capsys.readouterr().out
    frame = read_frame(out)
    assert frame.meta.tracking == "rate" and frame.shape == (64, 64)
    truth = Table.read(truth_path)
    assert truth.meta["target"] == seq.target.norad


def test_cli_errors_are_one_line(tmp_path, capsys):
    from aposos.cli import main

    assert main(["simulate", "--station", "iran"]) == 2
    assert "give --sample-night" in capsys.readouterr().err
    assert main(["simulate", "--station", "iran", "--time", "2026-11-20T16:00:00", "--out", str(tmp_path / "x.fits"),
                 "--tles", str(tmp_path / "none.txt"), "--target", "5"]) == 2
    err = capsys.readouterr().err
    assert "none.txt" in err and "Traceback" not in err
