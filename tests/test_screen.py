"""Field screening against brute force: exact prediction every 0.25 s of every exposure."""

import astropy.units as u
import numpy as np
import pytest
from astropy.table import Table
from astropy.time import Time

from aposos import predict as P
from aposos import screen as S
from aposos import tle

EPOCH = Time("2026-11-21T12:00:00", scale="utc")
STATION = "pakistan"


def synthetic_catalog(n=240, seed=3):
    """LEO (incl. low and fast), MEO, GEO and highly eccentric orbits."""
    rng = np.random.default_rng(seed)
    kinds = rng.choice(["leo", "leo_low", "meo", "geo", "heo"], size=n, p=[0.45, 0.15, 0.1, 0.15, 0.15])
    out = []
    for i, k in enumerate(kinds):
        mm, ecc, inc = {
            "leo": (rng.uniform(13.0, 15.5), rng.uniform(0, 0.02), rng.uniform(0, 110)),
            "leo_low": (rng.uniform(15.6, 16.0), rng.uniform(0, 0.003), rng.uniform(40, 100)),
            "meo": (rng.uniform(1.9, 2.3), rng.uniform(0, 0.02), rng.uniform(50, 65)),
            "geo": (rng.uniform(0.99, 1.01), rng.uniform(0, 0.002), rng.uniform(0, 10)),
            "heo": (rng.uniform(2.0, 3.5), rng.uniform(0.5, 0.72), rng.uniform(7, 64)),
        }[k]
        lines = tle.format_lines(80000 + i, EPOCH, inc, rng.uniform(0, 360), ecc, rng.uniform(0, 360),
                                 rng.uniform(0, 360), mm)
        out.append(("S%d" % i, *lines))
    return tle.as_entries(out)


def make_fields(entries, n=60, seed=5, exposure_s=10.0, radius_deg=3.0):
    """Fields over 8 h; most centred on (or 2 deg beside) a visible object."""
    rng = np.random.default_rng(seed)
    ts = EPOCH + 4 * u.hour + np.sort(rng.uniform(0, 8 * 3600, n)) * u.s
    pr = P.predict(entries, STATION, ts + exposure_s / 2 * u.s)
    ra, dec = rng.uniform(0, 360, n), rng.uniform(-40, 80, n)
    for f in range(n):
        vis = np.flatnonzero(pr.elevation_deg[:, f] > 5)
        if len(vis) and f % 4:
            o = rng.choice(vis)
            ra[f] = pr.ra_deg[o, f] + (2.0 if f % 4 == 1 else 0.0) / np.cos(np.radians(pr.dec_deg[o, f]))
            dec[f] = pr.dec_deg[o, f]
    return Table(dict(t_start=ts, t_end=ts + exposure_s * u.s, ra_deg=ra, dec_deg=dec,
                      radius_deg=np.full(n, radius_deg)))


def brute_force(entries, fields, step_s=0.25):
    """{(frame, norad): min separation deg} from exact predictions every ``step_s``."""
    hits = {}
    for f, row in enumerate(fields):
        dur = (row["t_end"] - row["t_start"]).to_value(u.s)
        t = row["t_start"] + np.linspace(0, dur, int(round(dur / step_s)) + 1) * u.s
        p = P.predict(entries, STATION, t)
        c = np.radians([row["ra_deg"], row["dec_deg"]])
        ra, dec = np.radians(p.ra_deg), np.radians(p.dec_deg)
        cos_sep = np.sin(dec) * np.sin(c[1]) + np.cos(dec) * np.cos(c[1]) * np.cos(ra - c[0])
        sep = np.degrees(np.arccos(np.clip(cos_sep, -1, 1)))
        sep[~(p.elevation_deg > 0)] = np.inf
        best = np.nanmin(np.where(np.isnan(sep), np.inf, sep), axis=1)
        for i in np.flatnonzero(best <= row["radius_deg"]):
            hits[(f, int(p.norad_id[i]))] = best[i]
    return hits


@pytest.fixture(scope="module")
def setup():
    entries = synthetic_catalog()
    fields = make_fields(entries)
    return entries, fields, brute_force(entries, fields)


def test_no_misses_against_brute_force(setup):
    entries, fields, truth = setup
    out = S.screen(entries, STATION, fields)
    got = {(int(r["frame"]), int(r["norad_id"])): r["min_sep_deg"] for r in out}
    assert len(truth) >= 40  # the test has teeth: many crossings, several kinds of orbit
    missed = set(truth) - set(got)
    assert not missed
    # extra hits only at the border (brute force samples the path every 0.25 s)
    extra = set(got) - set(truth)
    assert all(got[k] > fields["radius_deg"][k[0]] - 0.05 for k in extra)
    assert len(extra) <= 0.05 * len(truth)
    # the gate is selective: few candidates beyond the crossings
    assert out.meta["candidates"] <= 3 * len(got) + 10
    for k in truth:
        assert abs(got[k] - truth[k]) < 0.05


def test_rows_agree_with_direct_prediction(setup):
    entries, fields, _ = setup
    out = S.screen(entries, STATION, fields)
    by_id = {e.norad_id: e for e in entries}
    for r in out[:10]:
        f = fields[int(r["frame"])]
        t_mid = f["t_start"] + (f["t_end"] - f["t_start"]) / 2
        p = P.predict([by_id[int(r["norad_id"])]], STATION, t_mid)
        assert abs(p.ra_deg[0, 0] - r["ra_deg"]) * 3600 < 0.01
        assert abs(p.dec_deg[0, 0] - r["dec_deg"]) * 3600 < 0.01
        assert bool(p.sunlit[0, 0]) == bool(r["sunlit"])
        assert r["tle_age_days"] == pytest.approx((t_mid - EPOCH).to_value(u.day), abs=1e-9)


def test_numba_gate_matches_numpy_reference(setup):
    entries, fields, _ = setup
    a = S.screen(entries, STATION, fields, use_numba=True)
    b = S.screen(entries, STATION, fields, use_numba=False)
    assert a.meta["candidates"] == b.meta["candidates"]
    assert list(zip(a["frame"], a["norad_id"])) == list(zip(b["frame"], b["norad_id"]))


def test_long_exposures_and_coarse_steps(setup):
    """60 s exposures and a 300 s grid still miss nothing."""
    entries, fields, _ = setup
    long = fields.copy()
    long["t_end"] = long["t_start"] + 60 * u.s
    truth = brute_force(entries, long[:12], step_s=0.5)
    out = S.screen(entries, STATION, long[:12], step_s=300)
    got = {(int(r["frame"]), int(r["norad_id"])) for r in out}
    assert set(truth) <= got


def test_path_min_separation():
    from aposos.directions import unit_from_radec as un
    pts = un(np.array([0.0, 10.0]), np.array([0.0, 0.0]))
    assert np.degrees(S.path_min_separation(pts, un(5.0, 1.0))) == pytest.approx(1.0, abs=1e-9)
    assert np.degrees(S.path_min_separation(pts, un(12.0, 0.0))) == pytest.approx(2.0, abs=1e-9)


def test_polyline_separation_matches_scalar_reference():
    rng = np.random.default_rng(2)
    from aposos.directions import unit_from_radec as un
    counts = rng.integers(2, 6, 30)
    units = un(rng.uniform(0, 40, counts.sum()), rng.uniform(-20, 20, counts.sum()))
    centres = un(rng.uniform(0, 40, 30), rng.uniform(-20, 20, 30))
    starts = np.cumsum(counts) - counts
    got = S.polyline_separation(units, np.repeat(centres, counts, axis=0), starts)
    ref = [S.path_min_separation(units[a:a + n], c) for a, n, c in zip(starts, counts, centres)]
    assert np.allclose(got, ref, atol=1e-12)


def test_fields_from_frames():
    from aposos.errors import AposError
    from aposos.model import FrameMeta
    t = Time("2026-11-21T18:00:00", scale="utc")
    meta = FrameMeta(path="f.fits", station="iran", t_start=t, t_mid=t + 5 * u.s, t_end=t + 10 * u.s,
                     exposure_s=10.0, pointing_ra_deg=30.0, pointing_dec_deg=10.0)
    f = S.fields_from_frames([meta], pointing_error_deg=0.5)
    # iran: 4096 x 4096 px of 9 um at 750 mm -> 2.475"/px, half-diagonal 1.99 deg
    assert f["radius_deg"][0] == pytest.approx(0.5 * np.hypot(4096, 4096) * 2.4752 / 3600 + 0.5, abs=1e-3)
    assert abs((f["t_end"][0] - f["t_start"][0]).to_value(u.s) - 10) < 1e-6
    with pytest.raises(AposError, match="no pointing"):
        S.fields_from_frames([meta.replace(pointing_ra_deg=None)])


def test_rate_tracked_fields_follow_the_target(setup):
    """A field tracking an object at its rate for 30 s: the target stays in it (min_sep ~ 0),
    a fixed field at the mid-exposure position would see the same object only near the middle,
    and brute force in the co-moving frame finds no more than the screen."""
    entries, fields, _ = setup
    by_id = {e.norad_id: e for e in entries}
    rows, targets = [], []
    for f in range(len(fields)):
        t0 = fields["t_start"][f]
        p = P.predict(entries, STATION, t0 + 15 * u.s)
        fast = np.flatnonzero((p.elevation_deg[:, 0] > 15) & (p.rate_deg_s[:, 0] > 0.2))
        if len(fast):
            o = fast[0]
            targets.append(int(p.norad_id[o]))
            rows.append((t0, t0 + 30 * u.s, p.ra_deg[o, 0], p.dec_deg[o, 0], 0.5,
                         p.ra_rate_deg_s[o, 0], p.dec_rate_deg_s[o, 0]))
        if len(rows) == 6:
            break
    assert len(rows) >= 3
    cols = list(zip(*rows))
    tracked = Table(dict(t_start=Time(list(cols[0])), t_end=Time(list(cols[1])), ra_deg=cols[2], dec_deg=cols[3],
                         radius_deg=cols[4], ra_rate_deg_s=cols[5], dec_rate_deg_s=cols[6]))
    out = S.screen(entries, STATION, tracked)
    for f, norad in enumerate(targets):
        row = out[(out["frame"] == f) & (out["norad_id"] == norad)]
        assert len(row) == 1 and row["min_sep_deg"][0] < 0.05  # deg: constant-rate tracking of a curved path
    fixed = tracked.copy()
    fixed.remove_columns(["ra_rate_deg_s", "dec_rate_deg_s"])
    assert len(S.screen(entries, STATION, fixed)) >= len(targets)  # crosses the fixed field too (mid-exposure)
    # brute force in the co-moving frame: every object within the radius at some instant is reported
    for f in range(len(tracked)):
        t = tracked["t_start"][f] + np.linspace(0, 30, 121) * u.s
        p = P.predict(entries, STATION, t)
        dt = (t - (tracked["t_start"][f] + 15 * u.s)).to_value(u.s)
        ra_c = tracked["ra_deg"][f] + tracked["ra_rate_deg_s"][f] * dt / np.cos(np.radians(tracked["dec_deg"][f]))
        dec_c = tracked["dec_deg"][f] + tracked["dec_rate_deg_s"][f] * dt
        from astropy.coordinates import SkyCoord
        sep = SkyCoord(p.ra_deg * u.deg, p.dec_deg * u.deg).separation(SkyCoord(ra_c * u.deg, dec_c * u.deg)).deg
        inside = {int(n) for n in p.norad_id[((sep < 0.45) & (p.elevation_deg > 0)).any(axis=1)]}
        assert inside <= set(out["norad_id"][out["frame"] == f].tolist())


def test_nothing_to_screen(setup):
    entries, fields, _ = setup
    assert len(S.screen(entries, STATION, fields[:0])) == 0
    assert len(S.screen([], STATION, fields)) == 0
    assert S.screen([], STATION, fields).colnames == list(S._COLUMNS)
