"""The sample night: a few observation sequences per station, written as the stations write them.

:func:`sample_night_plan` decides *what* is observed (deterministic): the night of
2026-11-20 (local evening) at the three stations, each at its own UTC times after
astronomical dusk. The sky holds a background catalog of random objects
(:func:`~aposos.simulate.tles.random_catalog`) plus designed objects placed where the
telescopes look:

* Iran: a LEO pass (sidereal frames, 1 s, streaks) and a GEO object followed in
  rate-tracked frames (a point; stars streak).
* Pakistan: a GEO object in sidereal frames (short streaks) with a second geostationary
  object next to it that is **absent from the TLE catalog** (an uncorrelated target), and
  one frame taken through cloud (bad frame: hardly any stars).
* Peru: a LEO pass followed in rate-tracked frames, a GEO object in sidereal frames, and
  one file cut short while being written (bad frame: unreadable FITS).

:func:`write_sample_night` renders and writes it: FITS through
:func:`aposos.ingest.write_frame` with each station's header dialect (no WCS in the
headers: the plate solution is the pipeline's job), the published TLE catalog (aged 1-3
days, the uncatalogued object left out), the truth orbits, and one gzipped ECSV truth table
per frame plus a night index.
"""

from __future__ import annotations

import functools
import gzip
import logging
from dataclasses import dataclass, field
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.table import Table
from astropy.time import Time

from ..config import load_station
from . import frames, satellites, tles

log = logging.getLogger(__name__)

NIGHT_DATE = "2026-11-20"
SEED = 20261120
STATIONS = ("iran", "pakistan", "peru")


@dataclass
class Sequence:
    """Frames of one target: times of shutter opening, exposure, tracking and pointings."""

    station: str
    name: str
    tracking: str
    target: tles.Tle
    t_starts: list
    exposure_s: float
    pointings: list = field(default_factory=list)  # (ra, dec) per frame; None: on the target
    transparency: list = field(default_factory=list)
    bad: list = field(default_factory=list)  # '' good, else the reason


def dusk(station, date: str = NIGHT_DATE, sun_alt_deg: float = -18.0) -> Time:
    """First instant after local noon of ``date`` when the Sun sinks below ``sun_alt_deg`` (1 min grid)."""
    st = load_station(station)
    noon = Time(f"{date}T12:00:00", scale="utc") - round(st.lon_deg * 4.0) * u.min  # whole minutes
    grid = noon + np.arange(0, 18 * 60) * u.min
    alt = satellites.sun_altitude_deg(st, grid)
    below = np.nonzero(alt < sun_alt_deg)[0]
    return grid[below[0]]


def _topocentric_galactic(station, t, itrs_km):
    """Elevation (deg, geocentric up) and |Galactic latitude| (deg) of ITRS points (N, 3) km at ``t``."""
    from astropy.coordinates import GCRS, ITRS, CartesianRepresentation, SkyCoord

    st = load_station(station)
    x, y, z = (np.asarray(itrs_km)[:, i] * u.km for i in range(3))
    obstime = t if t.shape else t + np.zeros(len(x)) * u.s
    sat = ITRS(CartesianRepresentation(x, y, z), obstime=obstime).transform_to(GCRS(obstime=obstime))
    obs = st.location.get_gcrs(obstime).cartesian.xyz.to_value(u.km).T
    topo = sat.cartesian.xyz.to_value(u.km).T - obs
    up = obs / np.linalg.norm(obs, axis=1, keepdims=True)
    alt = np.degrees(np.arcsin(np.sum(topo * up, axis=1) / np.linalg.norm(topo, axis=1)))
    ra, dec = satellites.radec_deg(topo)
    return alt, np.abs(SkyCoord(ra, dec, unit="deg").galactic.b.deg)


def _spherical_itrs(lat_deg, lon_deg, radius_km):
    lat, lon = np.radians(lat_deg), np.radians(lon_deg)
    return np.stack([radius_km * np.cos(lat) * np.cos(lon), radius_km * np.cos(lat) * np.sin(lon),
                     radius_km * np.sin(lat) + 0 * lon], axis=-1)


def geo_in_the_milky_way(station, sub_lon_deg: float, date: str = NIGHT_DATE, min_alt_deg: float = 35.0) -> Time:
    """Time of the dark night when a geostationary object over ``sub_lon_deg`` is seen closest
    to the Galactic plane (rich star field, so the plate solution has tens of catalog stars).

    Rough geometry (fixed point in ITRS, 10-minute grid) is enough to choose a time.
    """
    st = load_station(station)
    start = dusk(station, date)
    grid = start + np.arange(0, 12 * 60, 10) * u.min
    grid = grid[satellites.sun_altitude_deg(st, grid) < -18.0]
    point = _spherical_itrs(np.zeros(len(grid)), np.full(len(grid), sub_lon_deg), 42164.2)
    alt, b = _topocentric_galactic(station, grid, point)
    b[alt < min_alt_deg] = np.inf
    return grid[int(np.argmin(b))]


def leo_ground_point(station, t: Time, alt_km: float, min_elevation_deg: float = 45.0):
    """Ground point (lat, lon) whose zenith a LEO at ``alt_km`` should cross at ``t`` so that the
    station sees it, above ``min_elevation_deg``, as close to the Galactic plane as possible."""
    st = load_station(station)
    dlat, dlon = np.meshgrid(np.arange(-9.0, 9.01, 1.5), np.arange(-9.0, 9.01, 1.5))
    lat = np.clip(st.lat_deg + dlat.ravel(), -80, 80)
    lon = st.lon_deg + dlon.ravel()
    alt, b = _topocentric_galactic(station, t, _spherical_itrs(lat, lon, tles.EARTH_RADIUS_KM + alt_km))
    b[alt < min_elevation_deg] = np.inf
    k = int(np.argmin(b))
    return float(lat[k]), float(lon[k])


def _aim(tle, station, t):
    o = satellites.observe(tle, load_station(station), t)
    return float(o["ra_deg"][0]), float(o["dec_deg"][0])


def _leo_pass(station, norad, t_pass, name, tracking, exposure_s, cadence_s=20.0):
    lat, lon = leo_ground_point(station, t_pass, 1100.0)
    leo = tles.designed_leo(norad, t_pass, lat, lon, alt_km=1100.0, inc_deg=82.0, radius_m=1.5, name=name)
    starts = [t_pass + (k - 1) * cadence_s * u.s for k in range(3)]
    pointings = [_aim(leo, station, t + exposure_s / 2 * u.s) for t in starts] if tracking == "sidereal" \
        else [None] * 3
    return leo, Sequence(station, "leo_pass", tracking, leo, starts, exposure_s, pointings, [1.0] * 3, [""] * 3)


@functools.cache
def sample_night_plan(seed: int = SEED):
    """The designed objects, the background catalog and the sequences of the sample night.

    Returns ``(truth_tles, uncatalogued_norads, sequences)``.
    """
    t_ref = Time(f"{NIGHT_DATE}T18:00:00", scale="utc")
    background = tles.random_catalog(400, t_ref, seed=seed)
    designed, sequences = [], []

    # Iran: LEO pass (sidereal) then a GEO followed at its rate
    d = dusk("iran")
    leo, seq = _leo_pass("iran", 70001, d + 15 * u.min, "SIM LEO IRAN-PASS", "sidereal", 1.0)
    designed.append(leo)
    sequences.append(seq)
    sub_lon = load_station("iran").lon_deg + 8.0
    t = geo_in_the_milky_way("iran", sub_lon)
    geo_ir = tles.designed_geo(70002, t, sub_lon, inc_deg=0.8, name="SIM GEO IR")
    designed.append(geo_ir)
    starts = [t + k * 60 * u.s for k in range(3)]
    sequences.append(Sequence("iran", "geo_rate", "rate", geo_ir, starts, 5.0, [None] * 3, [1.0] * 3, [""] * 3))

    # Pakistan: a GEO in sidereal frames with an uncatalogued neighbour; a clouded frame
    sub_lon = load_station("pakistan").lon_deg - 6.0
    t = geo_in_the_milky_way("pakistan", sub_lon)
    geo_pk = tles.designed_geo(70003, t, sub_lon, inc_deg=0.05, name="SIM GEO PK")
    uct = tles.designed_geo(70004, t, load_station("pakistan").lon_deg - 6.35, inc_deg=0.3, radius_m=2.0,
                            name="SIM GEO UCT")
    designed += [geo_pk, uct]
    starts = [t + k * 40 * u.s for k in range(4)]
    sequences.append(Sequence("pakistan", "geo_sidereal", "sidereal", geo_pk, starts, 8.0,
                              [_aim(geo_pk, "pakistan", s + 4 * u.s) for s in starts], [1.0, 1.0, 1.0, 0.005],
                              ["", "", "", "clouds: transparency 0.5%"]))

    # Peru: LEO pass followed at its rate, then a GEO in sidereal frames and a truncated file
    d = dusk("peru")
    leo_pe, seq = _leo_pass("peru", 70005, d + 12 * u.min, "SIM LEO PERU-PASS", "rate", 1.0)
    designed.append(leo_pe)
    sequences.append(seq)
    sub_lon = load_station("peru").lon_deg + 5.0
    t = geo_in_the_milky_way("peru", sub_lon)
    geo_pe = tles.designed_geo(70006, t, sub_lon, inc_deg=2.0, name="SIM GEO PE")
    designed.append(geo_pe)
    starts = [t + k * 45 * u.s for k in range(4)]
    sequences.append(Sequence("peru", "geo_sidereal", "sidereal", geo_pe, starts, 5.0,
                              [_aim(geo_pe, "peru", s + 2.5 * u.s) for s in starts], [1.0] * 4,
                              ["", "", "", "file truncated while writing"]))
    return background + designed, {uct.norad}, sequences


def published_catalog(truth_tles, uncatalogued, seed: int = SEED):
    """What the operators have: the truth orbits aged 1-3 days, uncatalogued objects removed."""
    rng = np.random.default_rng(seed)
    return [tles.aged(t, float(rng.uniform(1.0, 3.0)), km_per_day=float(rng.uniform(1.0, 3.0)), seed=seed)
            for t in tles.without(truth_tles, uncatalogued)]


def _compact(truth: Table) -> Table:
    """The truth as stored: rows whose path touches the image; px to 1e-3, degrees to 1e-8
    (36 micro-arcsec), electrons to 0.1, magnitudes to 1e-3."""
    out = truth[truth["on_image"]]
    for c in out.colnames:
        if c in ("x", "y", "x0", "y0", "x1", "y1", "mag", "range_km", "lit", "alt_deg"):
            out[c] = np.round(out[c], 3)
        elif c.endswith("_deg"):
            out[c] = np.round(out[c], 8)
        elif c in ("flux_e",):
            out[c] = np.round(out[c], 1)
        elif c.endswith("_arcsec_s"):
            out[c] = np.round(out[c], 4)
    return out


def write_sample_night(folder, *, seed: int = SEED, shape=(640, 640), catalog=None) -> Table:
    """Render the sample night into ``folder``; returns the night index (also written).

    Layout: ``<station>/<station>_<sequence>_<k>.fits`` (the station's dialect, lossless tile
    compression), ``truth/<same stem>.ecsv.gz`` (truth table of the frame),
    ``truth/`` keeps the rows whose path touches the image, rounded (see :func:`_compact`);
    ``tle_catalog.txt`` (published 3LE catalog), ``truth_tles.txt`` (the true orbits),
    ``night.ecsv`` (one row per frame: ``file, station, sequence, tracking, target`` (NORAD),
    ``t_start`` (UTC ISO), ``exposure_s``, ``satellites_on_image``, ``uncatalogued_on_image``,
    ``bad`` (bool) and ``problem`` (why, or 'none')).
    """
    from ..ingest import write_frame

    folder = Path(folder)
    (folder / "truth").mkdir(parents=True, exist_ok=True)
    truth_tles, uncatalogued, sequences = sample_night_plan(seed)
    tles.write_catalog(folder / "truth_tles.txt", truth_tles)
    tles.write_catalog(folder / "tle_catalog.txt", published_catalog(truth_tles, uncatalogued, seed))
    catalogued = {t.norad for t in truth_tles} - set(uncatalogued)
    rows = []
    for si, seq in enumerate(sequences):
        for k, t0 in enumerate(seq.t_starts):
            stem = f"{seq.station}_{seq.name}_{k + 1:02d}"
            pointing = seq.pointings[k] or (None, None)
            frame, truth = frames.simulate_frame(seq.station, t0, seq.exposure_s, *pointing, tracking=seq.tracking,
                                                 tles=truth_tles, catalogued=catalogued, target=seq.target, seed=seed + 100 * si + k,
                                                 shape=shape, transparency=seq.transparency[k], catalog=catalog)
            path = write_frame(folder / seq.station / f"{stem}.fits", frame, seq.station)
            if seq.bad[k].startswith("file truncated"):
                raw = path.read_bytes()
                path.write_bytes(raw[: len(raw) // 2])
            truth.meta["file"] = str(path.relative_to(folder))
            truth.meta["bad"] = seq.bad[k]
            _write_gzipped_ecsv(folder / "truth" / f"{stem}.ecsv.gz", _compact(truth))
            sats = truth[truth["kind"] == "satellite"]
            rows.append({"file": str(path.relative_to(folder)), "station": seq.station, "sequence": seq.name,
                         "tracking": seq.tracking, "target": seq.target.norad, "t_start": frames.iso(t0),
                         "exposure_s": seq.exposure_s, "satellites_on_image": int(sats["on_image"].sum()),
                         "uncatalogued_on_image": int((sats["on_image"] & ~sats["in_catalog"]).sum()),
                         "bad": bool(seq.bad[k]), "problem": seq.bad[k] or "none"})
            log.info("wrote %s (%d satellites on the image)", path, rows[-1]["satellites_on_image"])
    index = Table(rows=rows)
    index.meta = {"night": NIGHT_DATE, "seed": seed, "uncatalogued": sorted(uncatalogued),
                  "command": "aposos simulate --sample-night DIR (make sample)"}
    index.write(folder / "night.ecsv", format="ascii.ecsv", overwrite=True)
    return index


def _write_gzipped_ecsv(path, table: Table) -> None:
    """ECSV, gzipped without time stamp or name in the gzip header (byte-reproducible)."""
    import io

    text = io.StringIO()
    table.write(text, format="ascii.ecsv")
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as f:
        f.write(text.getvalue().encode())


def read_truth(path) -> Table:
    """A truth table written by :func:`write_sample_night` (``.ecsv.gz``)."""
    with gzip.open(path, "rt") as f:
        return Table.read(f.read(), format="ascii.ecsv")
