"""Identify the objects of an external observation file (IOD, UK, RDE, TDM) against TLE catalogs.

The observations (:func:`aposos.formats.read_observations`) are cut into **tracks**: the
records of one object id at one station, in time order, split where two consecutive records
are more than ``max_gap_s`` apart (one pass of a LEO object, one series on a GEO). Records
without an object id are linked per station by :func:`aposos.link.link` and each tracklet it
finds is a track. Each track becomes one tracklet for :func:`aposos.correlate.correlate`:

* position and on-sky rate at the time ``t_ref`` of the track's middle record, from a
  weighted polynomial fit (degree up to 3) of the gnomonic coordinates of the records within
  10 deg of it, its neighbours always included (:func:`track_tracklet`);
* the correlator's fine residuals use every record of the track; its timing term uses the
  track's median reported time uncertainty (``sigma_time_s``), or ``CorrelateConfig``'s when
  the file gives none (then reported as assumed).

For every track the element set of each object is the one whose epoch is nearest ``t_ref``
(all ``--tle`` files have equal standing: :func:`load_catalogs`), and the verdict comes with
a reason: why it is identified / ambiguous / UCT (no element set young enough, nearest object
and its distance...). When the file names a NORAD number, the residuals of that object are
reported too (``claimed``), whatever the verdict.

Residuals are observed minus predicted, arcsec: ``along_track_arcsec`` along the predicted
motion (a time error shows here), ``cross_track_arcsec`` to its left; ``median_arcsec`` the
median of the total angular residual over the track. Predictions: :func:`aposos.predict.predict`
(star-relative, light time, minus annual aberration: the convention of RA/Dec reports).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import astropy.units as u
import numpy as np
from astropy.coordinates import EarthLocation
from astropy.table import Table
from astropy.time import Time

from .correlate import CorrelateConfig, correlate
from .directions import radec_deg, unit_from_radec
from .errors import AposError
from .predict import predict
from .tle import TleCatalog, load_catalog

ARCSEC_PER_RAD = 206264.80624709636


@dataclass(frozen=True)
class IdentifyConfig:
    """``max_gap_s``: a gap longer than this starts a new track (s); ``correlate``: the
    correlator's parameters (its ``timing_sigma_s`` is replaced per track by the file's)."""

    max_gap_s: float = 600.0
    correlate: CorrelateConfig = field(default_factory=CorrelateConfig)


# --------------------------------------------------------------------------- catalogs

def load_catalogs(paths) -> TleCatalog:
    """TLE files merged with equal standing, so that per object the epoch nearest the
    observations wins whichever file it comes from (:meth:`TleCatalog.select`)."""
    paths = [paths] if isinstance(paths, (str, bytes)) or hasattr(paths, "__fspath__") else list(paths)
    entries, rejected, sums = [], [], []
    for p in paths:
        cat = load_catalog(p)
        entries += [dataclasses.replace(e, precedence=0) for h in cat.history.values() for e in h]
        rejected += cat.rejected
        sums += cat.checksum_errors
    return TleCatalog(entries, rejected=rejected, checksum_errors=sums, paths=[str(p) for p in paths])


# --------------------------------------------------------------------------- sites

def parse_site(text: str) -> EarthLocation:
    """``'LAT,LON,HEIGHT_M'`` (degrees geodetic, east longitude, metres) -> EarthLocation."""
    from .earth import location

    parts = text.split(",")
    try:
        lat, lon, h = (float(x) for x in parts)
    except ValueError:
        raise AposError(f"--site {text!r}: expected LAT,LON,HEIGHT_M (degrees, degrees, metres)",
                        key="--site") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 360 and -500 <= h <= 9000):
        raise AposError(f"--site {text!r}: latitude, longitude or height out of range", key="--site")
    return location(lat, lon, h)


class SiteResolver:
    """Station code -> EarthLocation: one ``site`` for every record, else the ``sites`` table
    (COSPAR codes, :func:`aposos.formats.read_sites`), else a configured station name."""

    def __init__(self, site: EarthLocation | None = None, sites=None):
        from .formats.sites import site_lookup

        self.site = site
        self.sites = site_lookup(sites)
        self._cache: dict[str, EarthLocation] = {}

    def __call__(self, code: str) -> EarthLocation:
        if self.site is not None:
            return self.site
        if code not in self._cache:
            self._cache[code] = self._find(code)
        return self._cache[code]

    def _find(self, code: str) -> EarthLocation:
        from .config import STATIONS_DIR, load_station
        from .earth import location

        if code in self.sites:
            return location(*self.sites[code])
        if code and (STATIONS_DIR / f"{code}.toml").exists():
            return load_station(code).location
        raise AposError(f"station {code!r}: no coordinates; pass --site LAT,LON,HEIGHT_M or "
                        "--sites FILE (COSPAR sites list)", key="station")


# --------------------------------------------------------------------------- tracks

def fill_sigma(table: Table, sigma_arcsec: float | None, path=None) -> Table:
    """``table`` with missing position uncertainties set to ``sigma_arcsec``; without it, a
    record that gives none is an AposError naming its line (no silent default)."""
    sig = np.asarray(table["sigma_arcsec"], float)
    bad = ~(np.isfinite(sig) & (sig > 0))
    if bad.any():
        if sigma_arcsec is None:
            line = int(table["line"][np.argmax(bad)])
            raise AposError("record gives no position uncertainty: pass --sigma-arcsec",
                            path=path, line=line, key="sigma_arcsec")
        table = table.copy()
        table["sigma_arcsec"][bad] = float(sigma_arcsec)
    return table


def group_tracks(table: Table, max_gap_s: float = 600.0) -> np.ndarray:
    """Track number (0, 1, ...) of every row, -1 for rows left out (blank object id and not
    linked). Tracks are numbered in order of their first time."""
    n = len(table)
    track = np.full(n, -1, np.int64)
    if n == 0:
        return track
    t = Time(table["time"]).utc
    secs = (t - t[0]).to_value("s")
    obj = np.asarray(table["object_id"]).astype(str)
    st = np.asarray(table["station"]).astype(str)
    groups: list[np.ndarray] = []
    for key in dict.fromkeys(zip(st.tolist(), obj.tolist())):
        rows = np.flatnonzero((st == key[0]) & (obj == key[1]))
        rows = rows[np.argsort(secs[rows], kind="stable")]
        pieces = np.split(rows, np.flatnonzero(np.diff(secs[rows]) > max_gap_s) + 1)
        if key[1].strip():
            groups += pieces
        else:
            for piece in pieces:
                groups += _linked_pieces(table, piece)
    groups.sort(key=lambda g: secs[g].min())
    for k, g in enumerate(groups):
        track[g] = k
    return track


def _linked_pieces(table: Table, rows: np.ndarray) -> list[np.ndarray]:
    """Tracklets found by :func:`aposos.link.link` among records without an object id."""
    from .link import link

    obs = Table({"time": Time(table["time"][rows]), "ra_deg": table["ra_deg"][rows],
                 "dec_deg": table["dec_deg"][rows], "sigma_arcsec": table["sigma_arcsec"][rows],
                 "kind": ["point"] * len(rows), "end": [-1] * len(rows),
                 "source_index": [0] * len(rows), "frame": [f"r{i}" for i in rows]})
    _, linked = link(obs)
    tid = np.asarray(linked["tracklet"])
    return [rows[tid == k] for k in np.unique(tid[tid >= 0])]


def track_tracklet(times: Time, ra_deg, dec_deg, sigma_arcsec, window_deg: float = 10.0) -> dict | None:
    """The tracklet row (correlator contract) of one track sorted by time; None with fewer
    than two distinct times (no motion to compare).

    The records within ``window_deg`` of the record nearest the track's middle time are
    projected gnomonically about it (great circles are straight lines there) and each
    coordinate is fitted by a weighted polynomial in time (degree up to 3, one less than the
    records); position and on-sky rate are evaluated at that middle record's time ``t_ref``.
    The middle record's neighbours are always used (within 60 deg), for sparse tracks.
    """
    secs = (times - times[0]).to_value("s")
    if len(secs) < 2 or np.ptp(secs) <= 0:
        return None
    unit = unit_from_radec(np.asarray(ra_deg, float), np.asarray(dec_deg, float))
    sig = np.asarray(sigma_arcsec, float)
    middle = int(np.argmin(np.abs(secs - np.median(secs))))
    centre = unit[middle]
    east, north = _east_north(centre)
    near = unit @ centre > math.cos(math.radians(window_deg))
    near[max(middle - 1, 0):middle + 2] = True  # sparse tracks: the neighbours, wherever they are
    near &= unit @ centre > 0.5                 # ... within 60 deg (gnomonic scale < 4)
    if np.ptp(secs[near]) <= 0:
        return None
    t0 = float(secs[middle])
    z = unit[near] @ centre
    xi, eta = unit[near] @ east / z, unit[near] @ north / z
    deg = min(int(near.sum()) - 1, 3)
    w = 1.0 / sig[near]
    cx = np.polyfit(secs[near] - t0, xi, deg, w=w)
    ce = np.polyfit(secs[near] - t0, eta, deg, w=w)
    plane = centre + cx[-1] * east + ce[-1] * north           # position at t_ref (unnormalised)
    rate = cx[-2] * east + ce[-2] * north                    # its time derivative
    pos = plane / np.linalg.norm(plane)
    velocity = (rate - pos * (pos @ rate)) / np.linalg.norm(plane)  # rad/s on the sky
    ra0, dec0 = radec_deg(pos)
    e0, n0 = _east_north(pos)
    return {"t_ref": times[0] + t0 * u.s, "ra_deg": float(ra0), "dec_deg": float(dec0),
            "ra_rate_deg_s": math.degrees(velocity @ e0), "dec_rate_deg_s": math.degrees(velocity @ n0),
            "sigma_arcsec": float(np.median(sig[near]) / math.sqrt(near.sum()))}


def _east_north(unit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors towards east and north at a direction (not at a pole)."""
    east = np.cross([0.0, 0.0, 1.0], unit)
    east /= np.linalg.norm(east)
    return east, np.cross(unit, east)


# --------------------------------------------------------------------------- residuals

def residuals(entry, location, times: Time, ra_deg, dec_deg):
    """Observed minus predicted of one element set: ``(along, cross, total)`` arcsec arrays.

    Along = component along the predicted motion, cross = 90 deg to its left (tangent plane
    at the prediction); total = angular separation. NaN where SGP4 fails.
    """
    p = predict([entry], location, times)
    u_obs = unit_from_radec(np.asarray(ra_deg, float), np.asarray(dec_deg, float))
    u_pred = unit_from_radec(p.ra_deg[0], p.dec_deg[0])
    a = np.radians(p.ra_deg[0])
    east = np.stack([-np.sin(a), np.cos(a), np.zeros_like(a)], axis=-1)
    north = np.cross(u_pred, east)
    de, dn = np.sum(u_obs * east, -1), np.sum(u_obs * north, -1)
    rate = np.hypot(p.ra_rate_deg_s[0], p.dec_rate_deg_s[0])
    with np.errstate(invalid="ignore", divide="ignore"):
        ue, un = p.ra_rate_deg_s[0] / rate, p.dec_rate_deg_s[0] / rate
        total = np.degrees(np.arccos(np.clip(np.sum(u_obs * u_pred, -1), -1, 1))) * 3600
    along = (de * ue + dn * un) * ARCSEC_PER_RAD
    cross = (-de * un + dn * ue) * ARCSEC_PER_RAD
    return along, cross, total


def _residual_summary(entry, location, times, ra, dec, t_ref) -> dict:
    along, cross, total = residuals(entry, location, times, ra, dec)
    return {"norad_id": int(entry.norad_id), "median_arcsec": _num(np.median(total)),
            "along_track_arcsec": _num(np.median(along)),
            "cross_track_arcsec": _num(np.median(cross)),
            "tle_epoch": entry.epoch.utc.isot, "tle_age_days": _num(entry.age_days(t_ref), 3)}


def _num(x, digits=2):
    x = float(x)
    return round(x, digits) if math.isfinite(x) else None


# --------------------------------------------------------------------------- identify

def identify(table: Table, catalog: TleCatalog, locate, config: IdentifyConfig | None = None) -> list[dict]:
    """Verdict per track of ``table`` (a :func:`read_observations` table with uncertainties).

    ``locate``: station code -> EarthLocation (:class:`SiteResolver`). Returns one dict per
    track: ``track`` (1-based), ``object_id``, ``station``, ``lines`` (file line numbers),
    ``n_obs``, ``t_first``, ``t_last`` (UTC ISO), ``status`` ('identified' | 'ambiguous' |
    'uct'), ``norad_id`` (best candidate or None), ``reason``, ``timing_sigma_s`` (+
    ``timing_assumed``), ``candidates`` (ranked, each ``norad_id``, ``median_arcsec``,
    ``along_track_arcsec``, ``cross_track_arcsec``, ``tle_epoch``, ``tle_age_days``,
    ``chi2``) and ``claimed`` (residuals of the NORAD number the file gives, or None).
    """
    cfg = config or IdentifyConfig()
    tracks = group_tracks(table, cfg.max_gap_s)
    out = []
    for k in range(int(tracks.max()) + 1 if len(tracks) else 0):
        rows = table[tracks == k]
        rows = rows[np.argsort(Time(rows["time"]).jd)]
        out.append(_identify_track(k, rows, catalog, locate, cfg))
    return out


def _identify_track(k: int, rows: Table, catalog: TleCatalog, locate, cfg: IdentifyConfig) -> dict:
    times = Time(rows["time"]).utc
    station = str(rows["station"][0])
    obj = str(rows["object_id"][0])
    result = {"track": k + 1, "object_id": obj, "station": station,
              "lines": [int(x) for x in rows["line"]], "n_obs": len(rows),
              "t_first": times[0].isot, "t_last": times[-1].isot}
    st = np.asarray(rows["sigma_time_s"], float) if "sigma_time_s" in rows.colnames else np.array([np.nan])
    st = st[np.isfinite(st) & (st > 0)]
    ccfg = cfg.correlate
    if len(st):
        ccfg = dataclasses.replace(ccfg, timing_sigma_s=float(np.median(st)))
    result.update(timing_sigma_s=ccfg.timing_sigma_s, timing_assumed=not len(st))
    location = locate(station)
    ra, dec = np.asarray(rows["ra_deg"], float), np.asarray(rows["dec_deg"], float)
    trk = track_tracklet(times, ra, dec, rows["sigma_arcsec"])
    t_ref = trk["t_ref"] if trk else times[0]
    cat = catalog.select(t_ref)
    claimed = None
    norad = str(rows["norad_id"][0]).strip() if "norad_id" in rows.colnames else ""
    if norad.isdigit() and int(norad) in cat:
        claimed = _residual_summary(cat[int(norad)], location, times, ra, dec, t_ref)
    result["claimed"] = claimed
    if trk is None:
        return {**result, "status": "uct", "norad_id": None, "candidates": [],
                "reason": "a single record: no motion to compare with the catalog"}
    tracklets = Table({"tracklet": [0], "ra_deg": [trk["ra_deg"]], "dec_deg": [trk["dec_deg"]],
                       "ra_rate_deg_s": [trk["ra_rate_deg_s"]], "dec_rate_deg_s": [trk["dec_rate_deg_s"]],
                       "sigma_arcsec": [trk["sigma_arcsec"]]})
    tracklets["t_ref"] = Time([t_ref])
    obs = Table({"time": times, "ra_deg": ra, "dec_deg": dec,
                 "sigma_arcsec": np.asarray(rows["sigma_arcsec"], float), "tracklet": np.zeros(len(rows), int)})
    res, cand = correlate(tracklets, obs, cat, location, ccfg)
    verdict = res[0]
    candidates = []
    for c in cand[np.argsort(cand["rank"])]:
        s = _residual_summary(cat[int(c["norad_id"])], location, times, ra, dec, t_ref)
        s["chi2"] = _num(c["chi2"], 3)
        candidates.append(s)
    status = str(verdict["status"])
    reason = _reason(status, candidates, cat, location, trk, t_ref, ccfg)
    if norad.isdigit() and claimed is None:
        reason += f"; the file's NORAD {int(norad)} is in none of the catalogs"
    result.update(status=status, norad_id=int(verdict["norad_id"]) if status != "uct" else None,
                  candidates=candidates, reason=reason)
    return result


def _reason(status, candidates, cat, location, trk, t_ref, ccfg) -> str:
    if status == "identified":
        if len(candidates) == 1:
            return "the only catalog object within the residual gate"
        return (f"best chi2 {candidates[0]['chi2']} beats the next (NORAD "
                f"{candidates[1]['norad_id']}, chi2 {candidates[1]['chi2']}) by more than "
                f"{ccfg.ambiguity_delta_chi2}")
    if status == "ambiguous" and candidates[0]["chi2"] > ccfg.confident_chi2:
        return (f"the best candidate passes the residual gate but fits poorly (chi2 {candidates[0]['chi2']:.1f} "
                f"> {ccfg.confident_chi2}): it may be an uncatalogued object near it")
    if status == "ambiguous":
        return (f"{len(candidates)} objects pass the residual gate and the best two differ by less "
                f"than {ccfg.ambiguity_delta_chi2} in chi2")
    return _uct_reason(cat, location, trk, t_ref, ccfg)


def _uct_reason(cat, location, trk, t_ref, ccfg) -> str:
    entries = cat.entries
    if not entries:
        return "the catalogs are empty"
    age = cat.age_days(t_ref)
    young = np.flatnonzero(np.abs(age) <= ccfg.max_age_days)
    if len(young) == 0:
        j = int(np.argmin(np.abs(age)))
        return (f"no element set within {ccfg.max_age_days:g} d of {t_ref.utc.isot[:10]}: "
                f"the nearest epoch ({entries[j].epoch.utc.isot[:10]}) is {abs(age[j]):.0f} d away")
    p = predict([entries[i] for i in young], location, t_ref)
    u_t = unit_from_radec(trk["ra_deg"], trk["dec_deg"])
    with np.errstate(invalid="ignore"):
        sep = np.degrees(np.arccos(np.clip(unit_from_radec(p.ra_deg[:, 0], p.dec_deg[:, 0]) @ u_t, -1, 1)))
    sep = np.where(np.isfinite(sep), sep, np.inf)
    j = int(np.argmin(sep))
    e = entries[young[j]]
    return (f"no catalog object passes the residual gate ({len(young)} element sets within "
            f"{ccfg.max_age_days:g} d); nearest at t_ref: NORAD {e.norad_id} at "
            f"{sep[j]:.3f} deg (TLE age {age[young[j]]:.1f} d)")


def format_text(results: list[dict]) -> str:
    """Human-readable verdicts: one header line per track, then its ranked candidates."""
    lines = []
    for r in results:
        lines.append(f"track {r['track']}: object {r['object_id'] or '-'} station {r['station']} "
                     f"{r['n_obs']} obs {r['t_first']} .. {r['t_last'][11:]}  -> {r['status'].upper()}"
                     + (f" NORAD {r['norad_id']}" if r["norad_id"] is not None else ""))
        lines.append(f"    {r['reason']}")
        lines.append(f"    timing sigma {r['timing_sigma_s']:g} s"
                     + (" (assumed: the file gives none)" if r["timing_assumed"] else " (from the file)"))
        for rank, c in enumerate(r["candidates"]):
            lines.append("    " + _candidate_text(f"#{rank + 1}", c))
        if r["claimed"] is not None and not any(c["norad_id"] == r["claimed"]["norad_id"]
                                                for c in r["candidates"]):
            lines.append("    " + _candidate_text("file's id", r["claimed"]))
    return "\n".join(lines)


def _candidate_text(tag, c) -> str:
    f = lambda x: "nan" if x is None else f"{x:.1f}"  # noqa: E731
    return (f"{tag:>9s} NORAD {c['norad_id']:>6d}  median {f(c['median_arcsec'])}\"  along "
            f"{f(c['along_track_arcsec'])}\"  cross {f(c['cross_track_arcsec'])}\"  TLE {c['tle_epoch'][:19]} "
            f"(age {c['tle_age_days']:+.2f} d)" + (f"  chi2 {c['chi2']}" if c.get("chi2") is not None else ""))
