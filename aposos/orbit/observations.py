"""Angles-only observations prepared for orbit fitting, and the observation model.

:func:`prepare` turns an astropy Table (or a list of tracklet Tables) into
:class:`Observations`: times, measured star-relative unit vectors, uncertainties, and the
observer's GCRS position/velocity, the geocentre's barycentric velocity and the Sun distance
at every time, computed once with :mod:`aposos.directions` (astropy, IERS).

:meth:`Observations.predict_units` is the observation model: light time and the
star-relative aberration of :mod:`aposos.directions` applied to any satellite position
function, so that fitted orbits are consistent with the reduction's RA/Dec.

Input problems that the user must fix (missing column, non-finite value, unknown station)
raise :class:`~aposos.errors.AposError`; problems of the data set as a whole (too few points,
duplicate or unordered times) are returned by :func:`problems` as reasons for an
'undetermined' verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from astropy.table import Table, vstack
from astropy.time import Time

from .. import directions as d
from ..errors import AposError

ARCSEC = np.pi / (180.0 * 3600.0)  # rad
TRACKLET_GAP_S = 900.0  # a gap longer than this (per station) starts a new tracklet


@dataclass
class Observations:
    """Observations sorted by time (all arrays have the length ``n``).

    Attributes
    ----------
    times : Time (utc)
    unit : (n, 3) measured star-relative unit vectors, ICRF axes
    sigma_rad : (n,) 1-sigma per coordinate, radians
    obs_pos_km, obs_vel_km_s : (n, 3) observer in GCRS
    earth_vel_km_s : (n, 3) geocentre barycentric velocity; sun_au : (n,) Sun distance
    tracklet : (n,) int tracklet index (0..k-1, in order of first time)
    station : (n,) str
    row : (n,) index of each observation in ``table`` (the concatenated tracklets)
    input_row : (n,) index in the caller's Table (differs from ``row`` when rows with
        ``tracklet == -1`` were left out)
    """

    times: Time
    unit: np.ndarray
    sigma_rad: np.ndarray
    obs_pos_km: np.ndarray
    obs_vel_km_s: np.ndarray
    earth_vel_km_s: np.ndarray
    sun_au: np.ndarray
    tracklet: np.ndarray
    station: np.ndarray
    row: np.ndarray
    table: Table = field(repr=False)
    input_row: np.ndarray | None = None

    def __len__(self):
        return len(self.unit)

    @property
    def n_tracklets(self) -> int:
        return int(self.tracklet.max()) + 1 if len(self) else 0

    def subset(self, mask) -> "Observations":
        """Observations selected by a boolean mask or index array (tracklets renumbered)."""
        idx = np.arange(len(self))[mask]
        _, trk = np.unique(self.tracklet[idx], return_inverse=True)
        sub = Observations(self.times[idx], self.unit[idx], self.sigma_rad[idx], self.obs_pos_km[idx],
                           self.obs_vel_km_s[idx], self.earth_vel_km_s[idx], self.sun_au[idx],
                           trk.astype(int), self.station[idx], self.row[idx], self.table,
                           None if self.input_row is None else self.input_row[idx])
        for name in ("teme_to_gcrs", "aberration_offset"):
            if name in self.__dict__:
                sub.__dict__[name] = self.__dict__[name][idx]
        return sub

    @cached_property
    def jd(self):
        """UTC Julian date split (jd1, jd2) as SGP4 wants it."""
        return self.times.jd1, self.times.jd2

    @cached_property
    def teme_to_gcrs(self) -> np.ndarray:
        """(n, 3, 3) TEME -> GCRS rotations at the observation times (interpolated between exact
        matrices 30 min apart: 1e-6 arcsec; constant over the light time)."""
        return d.teme_to_gcrs_matrix_interpolated(self.times)

    @cached_property
    def tangent_basis(self) -> np.ndarray:
        """(n, 2, 3) unit vectors toward +RA and +Dec at each measured direction."""
        u = self.unit
        ra = np.arctan2(u[:, 1], u[:, 0])
        dec = np.arcsin(np.clip(u[:, 2], -1, 1))
        e_ra = np.stack([-np.sin(ra), np.cos(ra), np.zeros_like(ra)], axis=-1)
        e_dec = np.stack([-np.sin(dec) * np.cos(ra), -np.sin(dec) * np.sin(ra), np.cos(dec)], axis=-1)
        return np.stack([e_ra, e_dec], axis=1)

    @cached_property
    def aberration_offset(self) -> np.ndarray:
        """(n, 3) star-relative minus geometric unit vector, evaluated at the measured directions.

        The star-relative aberration changes by < 0.4 arcsec per degree of direction, so inside
        the least-squares iterations it is applied as this fixed offset; final residuals use
        the full model (``exact=True``).
        """
        return d.star_relative_unit(self.unit, self.obs_vel_km_s, self.earth_vel_km_s, self.sun_au) - self.unit

    def predict_units(self, position_at, exact: bool = True) -> np.ndarray:
        """Predicted star-relative unit vectors (n, 3).

        ``position_at(dt_s)`` returns the satellite's GCRS position (km, shape (n, 3)) at
        ``times + dt_s``; light time and aberration follow :mod:`aposos.directions`.
        ``exact=False`` (inside fits): one light-time iteration (< 2 us error) and the
        aberration as :attr:`aberration_offset`.
        """
        if exact:
            r_topo, _ = d.solve_light_time(position_at, self.times, self.obs_pos_km)
            return d.star_relative_unit(r_topo, self.obs_vel_km_s, self.earth_vel_km_s, self.sun_au)
        r_topo, _ = d.solve_light_time(position_at, self.times, self.obs_pos_km, iterations=1)
        u = r_topo / np.linalg.norm(r_topo, axis=-1, keepdims=True) + self.aberration_offset
        return u / np.linalg.norm(u, axis=-1, keepdims=True)

    def residuals_arcsec(self, predicted_unit) -> np.ndarray:
        """(n, 2) residuals observed - computed: (dRA cos Dec, dDec), arcsec."""
        diff = self.unit - predicted_unit
        return np.einsum("nkj,nj->nk", self.tangent_basis, diff) / ARCSEC


def _observer_columns(table: Table, where: str):
    """EarthLocation per row from a ``station`` name column or lat/lon/height columns."""
    from astropy.coordinates import EarthLocation
    import astropy.units as u

    if {"lat_deg", "lon_deg", "height_m"} <= set(table.colnames):
        lat, lon, h = (np.asarray(table[c], float) for c in ("lat_deg", "lon_deg", "height_m"))
        for name, v in (("lat_deg", lat), ("lon_deg", lon), ("height_m", h)):
            if not np.isfinite(v).all():
                raise AposError("non-finite observer coordinate", path=where, key=name)
        names = (np.asarray(table["station"]).astype(str) if "station" in table.colnames
                 else np.array([f"{a:.5f},{b:.5f},{c:.1f}" for a, b, c in zip(lat, lon, h)]))
        return EarthLocation.from_geodetic(lon * u.deg, lat * u.deg, h * u.m), names
    if "station" not in table.colnames:
        raise AposError("no observer: need a 'station' column or 'lat_deg', 'lon_deg', 'height_m'",
                        path=where, key="station")
    from ..config import load_station

    names = np.asarray(table["station"]).astype(str)
    locs = {}
    for name in np.unique(names):
        try:
            locs[name] = load_station(name).location
        except AposError as exc:
            raise AposError(f"unknown station {name!r}: {exc.problem}", path=where, key="station") from exc
    geo = np.array([[locs[s].x.to_value(u.m), locs[s].y.to_value(u.m), locs[s].z.to_value(u.m)] for s in names])
    return EarthLocation.from_geocentric(geo[:, 0] * u.m, geo[:, 1] * u.m, geo[:, 2] * u.m), names


def _as_table(observations) -> tuple[Table, np.ndarray | None, np.ndarray]:
    """One Table, the tracklet index per row (None when tracklets must be found), and the
    caller's row index of each row."""
    if isinstance(observations, Table):
        if "tracklet" in observations.colnames:  # as from aposos.link: -1 = not linked, ignored
            keep = np.flatnonzero(np.asarray(observations["tracklet"]) >= 0)
            table = observations[keep]
            return table, np.asarray(table["tracklet"]), keep
        return observations, None, np.arange(len(observations))
    tables = list(observations)
    if not tables or not all(isinstance(t, Table) for t in tables):
        raise AposError("observations must be an astropy Table or a non-empty list of Tables", key="observations")
    keep = [(i, t) for i, t in enumerate(tables) if len(t)]
    for _, t in keep:
        missing = [c for c in ("time", "ra_deg", "dec_deg", "sigma_arcsec") if c not in t.colnames]
        if missing:
            raise AposError(f"tracklet table lacks column(s) {missing}", key=missing[0])
    if not keep:  # only empty tracklets: zero observations (a verdict, not a format error)
        return tables[0], np.zeros(0, int), np.zeros(0, int)
    cols = ["time", "ra_deg", "dec_deg", "sigma_arcsec"] + [
        c for c in ("station", "lat_deg", "lon_deg", "height_m") if all(c in t.colnames for _, t in keep)]
    table = vstack([t[cols] for _, t in keep], metadata_conflicts="silent")
    ids = np.concatenate([np.full(len(t), i) for i, t in keep])
    table["tracklet"] = ids
    return table, ids, np.arange(len(table))


def prepare(observations, where: str = "observations") -> Observations:
    """Validate ``observations`` and compute the observer geometry (see module doc)."""
    table, ids, input_row = _as_table(observations)
    for col in ("time", "ra_deg", "dec_deg", "sigma_arcsec"):
        if col not in table.colnames:
            raise AposError(f"missing column {col!r}", path=where, key=col)
    n = len(table)
    if n == 0:
        z3, zi = np.zeros((0, 3)), np.zeros(0, int)
        return Observations(Time(np.zeros(0), format="jd", scale="utc"), z3, np.zeros(0), z3, z3, z3, np.zeros(0),
                            zi, np.zeros(0, str), zi, table, zi)
    try:
        times = Time(table["time"])
    except ValueError as exc:
        raise AposError(f"unreadable time: {exc}", path=where, key="time") from exc
    if times.scale != "utc":
        times = times.utc
    ra, dec, sig = (np.asarray(table[c], float) for c in ("ra_deg", "dec_deg", "sigma_arcsec"))
    for name, v in (("ra_deg", ra), ("dec_deg", dec), ("sigma_arcsec", sig)):
        if not np.isfinite(v).all():
            raise AposError(f"non-finite value in row {int(np.flatnonzero(~np.isfinite(v))[0])}", path=where, key=name)
    if (sig <= 0).any():
        raise AposError("sigma_arcsec must be > 0", path=where, key="sigma_arcsec")
    if (np.abs(dec) > 90).any():
        raise AposError("|dec_deg| > 90", path=where, key="dec_deg")
    loc, names = _observer_columns(table, where)
    if ids is None:
        ids = _split_tracklets(times, names)
    else:  # tracklet numbers are per station (aposos.link): key on (station, number)
        _, ids = np.unique(np.char.add(np.char.add(names.astype(str), "|"), np.asarray(ids).astype(str)),
                           return_inverse=True)
    order = np.argsort((times - times[0]).sec, kind="stable") if n else np.zeros(0, int)
    t_sorted = times[order]
    obs_p, obs_v = d.observer_posvel_gcrs(loc[order], t_sorted) if n else (np.zeros((0, 3)),) * 2
    # tracklets numbered by first time
    ids_sorted = np.asarray(ids)[order]
    first = {}
    for k in ids_sorted:
        first.setdefault(k, len(first))
    trk = np.array([first[k] for k in ids_sorted], int)
    return Observations(
        times=t_sorted, unit=d.unit_from_radec(ra[order], dec[order]), sigma_rad=sig[order] * ARCSEC,
        obs_pos_km=obs_p, obs_vel_km_s=obs_v,
        earth_vel_km_s=d.earth_barycentric_velocity(t_sorted) if n else np.zeros((0, 3)),
        sun_au=d.sun_observer_distance_au(t_sorted) if n else np.zeros(0),
        tracklet=trk, station=names[order], row=order, table=table, input_row=input_row[order])


def _split_tracklets(times: Time, names: np.ndarray) -> np.ndarray:
    """Tracklet index per row: per station, consecutive rows closer than TRACKLET_GAP_S."""
    ids = np.zeros(len(times), int)
    sec = (times - times[0]).sec if len(times) else np.zeros(0)
    next_id = 0
    for name in np.unique(names):
        rows = np.flatnonzero(names == name)
        rows = rows[np.argsort(sec[rows], kind="stable")]
        gaps = np.diff(sec[rows]) > TRACKLET_GAP_S
        ids[rows] = next_id + np.concatenate([[0], np.cumsum(gaps)])
        next_id = ids[rows].max() + 1
    return ids


def problems(obs: Observations, input_order_times_s=None) -> list[str]:
    """Reasons why no orbit can be determined from these observations alone (empty: none)."""
    out = []
    if len(obs) < 3:
        return [f"too few observations: {len(obs)} (at least 3 directions needed, 4+ for a fit)"]
    t = (obs.times - obs.times[0]).sec
    for k in range(obs.n_tracklets):
        sel = obs.tracklet == k
        rows = obs.row[sel]
        tk = t[sel][np.argsort(rows, kind="stable")]  # times in the caller's row order
        if (np.diff(tk) < 0).any():
            out.append(f"observations out of time order in tracklet {k} (station {obs.station[sel][0]})")
    for name in np.unique(obs.station):
        ts = np.sort(t[obs.station == name])
        dup = np.diff(ts) <= 1e-6
        if dup.any():
            out.append(f"duplicate observation times at station {name} ({int(dup.sum())} pairs)")
    return out
