"""Field screening: which catalog objects cross a frame's field during its exposure.

Coarse to fine, for a whole catalog and a night of frames:

1. **Coarse grid** (all objects): SGP4 at knots every ``step_s`` (default 240 s) covering
   the frames' exposures, only the knots that bracket an exposure; topocentric GCRS
   position and velocity relative to the station.
2. **Gate** (all objects x frames, cheap, no SGP4): the topocentric path during each
   exposure is rebuilt by cubic Hermite interpolation between knots (error ~0.05 km at 120 s,
   ~0.4 km at 240 s; :func:`hermite_margin_km`) at the exposure's start, middle, end
   and intermediate points at most ``piece_s`` apart. A straight 3-D chord seen from the
   station is a great-circle arc, so the object's direction lies within the chord
   deviation (``|a| dt^2 / 8``, ``|a| <= 0.01 km/s^2``) of the arcs between those points; an
   object passes the gate when an arc comes within ``radius + margin + deviation + 30``
   arcsec (aberration and light time) of the field centre and it is above ``min_elevation_deg``
   less a slack (:func:`_gate_elevation`) at one of the points.
   A numba kernel does this pass; :func:`gate_reference` is its plain numpy twin.
3. **Refine** (candidates only): exact SGP4 every ``refine_piece_s`` (1 s) of the exposure,
   full star-relative prediction (:func:`aposos.predict.observe`: light time, aberration,
   rates, shadow), closest approach of the predicted path to the field centre (allowing the
   chord deviation, < 1 arcsec in LEO: never a miss, at most a borderline extra).

Fields are an astropy Table with columns ``t_start``, ``t_end`` (Time, UTC), ``ra_deg``,
``dec_deg`` (field centre, ICRS) and ``radius_deg`` (radius of a circle enclosing the
field); optional ``ra_rate_deg_s, dec_rate_deg_s``: motion of the field centre for
rate-tracked frames (RA rate includes cos Dec; the centre is ``ra_deg, dec_deg`` at
mid-exposure); ``min_sep_deg`` is then measured in the field's co-moving frame.
:func:`fields_from_frames` builds the table from :class:`~aposos.model.FrameMeta`.
"""

from __future__ import annotations

import logging
import time

import numba
import numpy as np
from astropy import units as u
from astropy.table import Table
from astropy.time import Time
from sgp4.api import SatrecArray

from . import directions as d
from . import predict as P
from .errors import AposError
from .tle import TleCatalog, as_entries

log = logging.getLogger(__name__)

MAX_REL_ACCEL_KM_S2 = 0.0100  # gravity at the surface (9.8 m/s^2) + station centripetal


def hermite_margin_km(step_s: float) -> float:
    """Allowance for the cubic Hermite interpolation error between knots ``step_s`` apart.

    Measured on the 21,584 objects of a full public catalog: max 0.05 km at 120 s, 0.36 km at
    240 s, 5.4 km at 480 s (error ~ step^4, worst for eccentric deep-space orbits); the margin
    is 10-20 times that.
    """
    return max(0.5, 0.5 * (step_s / 120.0) ** 4)


PHYSICS_MARGIN_DEG = 30.0 / 3600  # aberration (< 21") and light time, absent from the gate


def fields_from_frames(frames, station=None, radius_deg=None, pointing_error_deg=0.0) -> Table:
    """Fields table from FrameMeta (or Frame) objects.

    The pointing is taken as the field centre at mid-exposure; rate-tracked frames get the
    tracking rates as the centre's motion. ``radius_deg`` default: half the diagonal of the station camera's field (config pixel
    scale and shape), plus ``pointing_error_deg`` (the pointing hint can be off).
    """
    from .config import load_station

    metas = [getattr(f, "meta", f) for f in frames]
    rows = []
    for m in metas:
        if m.pointing_ra_deg is None or m.pointing_dec_deg is None:
            raise AposError("frame has no pointing: cannot screen its field (plate-solve it first)",
                            path=m.path or None)
        r = radius_deg
        if r is None:
            st = load_station(station or m.station)
            ny, nx = st.shape
            r = 0.5 * np.hypot(nx, ny) * st.pixel_scale_arcsec / 3600
        rate = m.tracking == "rate"
        rows.append((m.t_start.utc.jd1, m.t_start.utc.jd2, m.t_end.utc.jd1, m.t_end.utc.jd2,
                     m.pointing_ra_deg, m.pointing_dec_deg, r + pointing_error_deg,
                     (m.rate_ra_arcsec_s or 0.0) / 3600 if rate else 0.0,
                     (m.rate_dec_arcsec_s or 0.0) / 3600 if rate else 0.0))
    a = np.array(rows, dtype=float).reshape(-1, 9)
    return Table(dict(t_start=Time(a[:, 0], a[:, 1], format="jd", scale="utc"),
                      t_end=Time(a[:, 2], a[:, 3], format="jd", scale="utc"),
                      ra_deg=a[:, 4], dec_deg=a[:, 5], radius_deg=a[:, 6],
                      ra_rate_deg_s=a[:, 7], dec_rate_deg_s=a[:, 8]))


class _Plan:
    """Knots and per-frame sample points (indices into ``samples``)."""

    def __init__(self, fields: Table, step_s: float, piece_s: float):
        ts, te = Time(fields["t_start"]).utc, Time(fields["t_end"]).utc
        self.t0 = ts.min() - 1 * u.s
        s0 = (ts - self.t0).to_value(u.s)
        s1 = (te - self.t0).to_value(u.s)
        npieces = 2 * np.maximum(1, np.ceil((s1 - s0) / (2 * piece_s)).astype(int))  # even: mid is a sample
        self.first = np.concatenate([[0], np.cumsum(npieces + 1)[:-1]])  # first sample of each frame
        self.count = npieces + 1
        frac = [np.linspace(0, 1, n + 1) for n in npieces]
        self.sec = np.concatenate([a + f * (b - a) for a, b, f in zip(s0, s1, frac)])
        self.frame_of_sample = np.repeat(np.arange(len(fields)), self.count)
        k = np.floor(self.sec / step_s).astype(int)
        knots = np.unique(np.concatenate([k, k + 1]))
        self.knot_sec = knots * step_s
        self.k = np.searchsorted(knots, k)  # interval [k, k+1] in knot indices
        self.tau = (self.sec - self.knot_sec[self.k]) / step_s
        self.step_s = step_s
        self.knot_times = self.t0 + self.knot_sec * u.s
        self.sample_times = self.t0 + self.sec * u.s


def _hermite_weights(tau, step_s):
    t2, t3 = tau * tau, tau * tau * tau
    return np.stack([2 * t3 - 3 * t2 + 1, (t3 - 2 * t2 + tau) * step_s, -2 * t3 + 3 * t2, (t3 - t2) * step_s])


def _knot_states(sats, geom):
    """Topocentric GCRS position (km) and velocity (km/s) at the knots, ``(n, K, 3)``, NaN on SGP4 error."""
    err, r, v = SatrecArray(sats).sgp4(*(np.ascontiguousarray(a) for a in geom.jd))
    r = np.einsum("kij,nkj->nki", geom.teme_to_gcrs, r, optimize=True) - geom.obs_pos_km
    v = np.einsum("kij,nkj->nki", geom.teme_to_gcrs, v, optimize=True) - geom.obs_vel_km_s
    r[err != 0] = np.nan
    return r, v


def _field_arrays(fields):
    c = d.unit_from_radec(np.asarray(fields["ra_deg"], float), np.asarray(fields["dec_deg"], float))
    return c, np.radians(np.asarray(fields["radius_deg"], float))


def _sample_centres(fields, plan, centre_mid):
    """Field centre (unit vector) at every sample point, ``(S, 3)``.

    Fields with ``ra_rate_deg_s``/``dec_rate_deg_s`` (rate-tracked frames; RA rate includes
    cos Dec) move along a great circle at that rate, through ``ra_deg, dec_deg`` at
    mid-exposure; others stay put.
    """
    f = plan.frame_of_sample
    c = centre_mid[f]
    if "ra_rate_deg_s" not in fields.colnames and "dec_rate_deg_s" not in fields.colnames:
        return c
    zero = np.zeros(len(fields))
    rr = np.nan_to_num(np.asarray(fields["ra_rate_deg_s"] if "ra_rate_deg_s" in fields.colnames else zero, float))
    dr = np.nan_to_num(np.asarray(fields["dec_rate_deg_s"] if "dec_rate_deg_s" in fields.colnames else zero, float))
    ra, dec = np.radians(np.asarray(fields["ra_deg"], float)), np.radians(np.asarray(fields["dec_deg"], float))
    e_ra = np.stack([-np.sin(ra), np.cos(ra), 0 * ra], -1)
    e_dec = np.stack([-np.sin(dec) * np.cos(ra), -np.sin(dec) * np.sin(ra), np.cos(dec)], -1)
    tangent = np.radians(rr)[:, None] * e_ra + np.radians(dr)[:, None] * e_dec  # rad/s
    mid_sec = plan.sec[plan.first + plan.count // 2]
    dt = plan.sec - mid_sec[f]
    omega = np.linalg.norm(tangent, axis=-1)[f]
    direction = np.divide(tangent[f], omega[:, None], out=np.zeros_like(c), where=omega[:, None] > 0)
    return np.cos(omega * dt)[:, None] * c + np.sin(omega * dt)[:, None] * direction


def _co_moving(units, centres, targets):
    """Rotate ``units`` by the rotations taking ``centres`` to ``targets`` (rows, Rodrigues)."""
    axis = np.cross(centres, targets)
    s = np.linalg.norm(axis, axis=-1)
    c = np.sum(centres * targets, -1)
    k = np.divide(axis, s[:, None], out=np.zeros_like(axis), where=s[:, None] > 0)
    kv = np.cross(k, units)
    kd = np.sum(k * units, -1)
    return units * c[:, None] + kv * s[:, None] + k * (kd * (1 - c))[:, None]


@numba.njit(cache=True)  # parallel=True measured no gain on the shared 2-core machine
def _gate_kernel(pos, vel, k, w, first, count, centre, gate_base, up_knot, min_sin_elev):
    # centre (S, 3): field centre per sample; gate_base (S, 3): per piece ending at sample j
    """Numba twin of :func:`gate_reference` (see there); returns bool ``(n, frames)``."""
    n = pos.shape[0]
    nf = first.shape[0]
    out = np.zeros((n, nf), dtype=np.bool_)
    smax = 0
    for f in range(nf):
        smax = max(smax, count[f])
    for i in range(n):
        b = np.empty((smax, 3))
        for f in range(nf):
            visible = False
            finite = True
            for s in range(count[f]):
                j = first[f] + s
                kk = k[j]
                for c in range(3):
                    b[s, c] = (w[0, j] * pos[i, kk, c] + w[1, j] * vel[i, kk, c]
                               + w[2, j] * pos[i, kk + 1, c] + w[3, j] * vel[i, kk + 1, c])
                rb = np.sqrt(b[s, 0] ** 2 + b[s, 1] ** 2 + b[s, 2] ** 2)
                if not rb > 0:  # NaN: SGP4 error
                    finite = False
                    break
                if (b[s, 0] * up_knot[kk, 0] + b[s, 1] * up_knot[kk, 1] + b[s, 2] * up_knot[kk, 2]) > min_sin_elev * rb:
                    visible = True
            if not (finite and visible):
                continue
            for s in range(1, count[f]):
                if _arc_within(b[s - 1, 0], b[s - 1, 1], b[s - 1, 2], b[s, 0], b[s, 1], b[s, 2],
                               centre[first[f] + s - 1], gate_base[first[f] + s]):
                    out[i, f] = True
                    break
    return out


@numba.njit(cache=True)
def _arc_within(ax, ay, az, bx, by, bz, c, base):
    """True if the arc seen along chord a->b passes within ``base`` + chord deviation of ``c``."""
    ra = np.sqrt(ax * ax + ay * ay + az * az)
    rb = np.sqrt(bx * bx + by * by + bz * bz)
    return _arc_test(ax / ra, ay / ra, az / ra, bx / rb, by / rb, bz / rb, ra, rb,
                     np.sqrt((bx - ax) ** 2 + (by - ay) ** 2 + (bz - az) ** 2), c, base)


@numba.njit(cache=True)
def _arc_test(ax, ay, az, bx, by, bz, ra, rb, chord_km, c, base):
    # lower bound of the range along the chord: distance from the station to the chord's line
    px, py, pz = ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx  # a x b (unit vectors)
    sin_ab = np.sqrt(px * px + py * py + pz * pz)
    rmin = min(ra, rb)
    if chord_km > 1e-9:
        rmin = min(rmin, ra * rb * sin_ab / chord_km)
    dev = base[1] + MAX_REL_ACCEL_KM_S2 * base[2] / 8.0  # km: Hermite margin + a dt^2 / 8
    gate = base[0] + np.arcsin(min(1.0, dev / max(rmin - dev, 1.0)))
    ca = ax * c[0] + ay * c[1] + az * c[2]
    cb = bx * c[0] + by * c[1] + bz * c[2]
    cosg = np.cos(min(gate, np.pi))
    if ca >= cosg or cb >= cosg:
        return True
    if sin_ab < 1e-12:
        return False
    px, py, pz = px / sin_ab, py / sin_ab, pz / sin_ab
    s = c[0] * px + c[1] * py + c[2] * pz  # sine of distance to the great circle
    # projection of c on the circle lies between a and b?
    qx, qy, qz = c[0] - s * px, c[1] - s * py, c[2] - s * pz
    # (a x q) . p >= 0 and (q x b) . p >= 0
    t1 = (ay * qz - az * qy) * px + (az * qx - ax * qz) * py + (ax * qy - ay * qx) * pz
    t2 = (qy * bz - qz * by) * px + (qz * bx - qx * bz) * py + (qx * by - qy * bx) * pz
    return t1 >= 0 and t2 >= 0 and abs(s) <= np.sin(min(gate, np.pi / 2))


def _gate_base(plan, fields_radius_rad, margin_deg, csamp):
    """Per piece (indexed by its end sample j; row ``first`` unused): angular gate (rad) =
    radius + margins + how far the field centre moves during the piece (the piece is tested
    against the centre at its start); Hermite margin (km); (piece duration, s)^2."""
    piece = np.diff(plan.sec, prepend=plan.sec[0])
    shift = np.arccos(np.clip(np.sum(csamp * np.roll(csamp, 1, axis=0), -1), -1, 1))
    shift[plan.first] = 0.0
    base = fields_radius_rad[plan.frame_of_sample] + np.radians(margin_deg + PHYSICS_MARGIN_DEG) + shift
    return np.stack([base, np.full_like(base, hermite_margin_km(plan.step_s)), piece ** 2], axis=1)


def _gate_elevation(min_elevation_deg, step_s):
    """Elevation limit of the gate (deg): 1 deg of slack plus the rotation of the local
    vertical within a knot interval (0.25 deg/min), as the gate uses the vertical at the knot."""
    return min_elevation_deg - 1.0 - 0.25 * step_s / 60.0


def gate_reference(pos, vel, plan, centre, base, up_knot, gate_elevation_deg):
    """Plain numpy gate (the numba kernel's reference): bool ``(n, frames)``.

    Hermite-interpolated topocentric positions at the sample points; for each consecutive
    pair the angular distance from the field centre to the great-circle arc between them,
    (``centre`` per sample, the piece's first) against the piece's ``base`` gate + chord deviation; visible when any point is above the elevation
    limit.
    """
    w = _hermite_weights(plan.tau, plan.step_s)
    k = plan.k
    b = (w[0][None, :, None] * pos[:, k] + w[1][None, :, None] * vel[:, k]
         + w[2][None, :, None] * pos[:, k + 1] + w[3][None, :, None] * vel[:, k + 1])  # (n, S, 3)
    rng = np.linalg.norm(b, axis=-1)
    unit = b / rng[..., None]
    visible_s = np.sum(unit * up_knot[k][None], axis=-1) > np.sin(np.radians(gate_elevation_deg))
    f_of = plan.frame_of_sample
    nf = len(plan.first)
    visible = np.zeros((len(pos), nf), bool)
    for f in range(nf):
        visible[:, f] = visible_s[:, plan.first[f]:plan.first[f] + plan.count[f]].any(axis=1)
    ok = np.zeros((len(pos), nf), bool)
    last = np.ones(len(f_of), bool)
    last[plan.first] = False  # pairs (j-1, j) within a frame
    j = np.nonzero(last)[0]
    a_u, b_u, ra, rb = unit[:, j - 1], unit[:, j], rng[:, j - 1], rng[:, j]
    chord = np.linalg.norm(b[:, j] - b[:, j - 1], axis=-1)
    fr = f_of[j]
    cross = np.cross(a_u, b_u)
    base = base[j]
    sin_ab = np.linalg.norm(cross, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rmin = np.minimum(np.minimum(ra, rb), np.where(chord > 1e-9, ra * rb * sin_ab / chord, np.inf))
        dev = base[:, 1] + MAX_REL_ACCEL_KM_S2 * base[:, 2] / 8
        gate = base[:, 0] + np.arcsin(np.minimum(1, dev / np.maximum(rmin - dev, 1.0)))
        c = centre[j - 1]
        cosg = np.cos(np.minimum(gate, np.pi))
        near_end = (np.sum(a_u * c, -1) >= cosg) | (np.sum(b_u * c, -1) >= cosg)
        p = cross / sin_ab[..., None]
        s = np.sum(c * p, -1)
        q = c - s[..., None] * p
        between = (np.sum(np.cross(a_u, q) * p, -1) >= 0) & (np.sum(np.cross(q, b_u) * p, -1) >= 0)
        on_arc = between & (np.abs(s) <= np.sin(np.minimum(gate, np.pi / 2))) & (sin_ab >= 1e-12)
    hit = near_end | on_arc
    for f in range(nf):
        ok[:, f] = hit[:, fr == f].any(axis=1)
    return ok & visible


def screen(tles, station, fields: Table, *, step_s: float = 240.0, piece_s: float = 10.0, refine_piece_s: float = 1.0,
           margin_deg: float = 0.0, min_elevation_deg: float = 0.0, chunk: int = 4096,
           use_numba: bool = True) -> Table:
    """Catalog objects whose predicted path crosses each field during its exposure.

    Parameters
    ----------
    tles : TleCatalog or list of entries / (line1, line2)
        Current element sets (use :meth:`TleCatalog.select` for the night first).
    station : name, Station or EarthLocation
    fields : Table
        ``t_start, t_end, ra_deg, dec_deg, radius_deg`` (see the module docstring).
    step_s : float
        Coarse propagation step (s).
    piece_s : float
        Longest straight piece of a path within an exposure in the gate (s).
    refine_piece_s : float
        The same for the exact stage (s); reported positions are at exposure start, middle, end.
    margin_deg : float
        Added to each field radius (TLE errors, pointing uncertainty).
    min_elevation_deg : float
        Objects below this elevation throughout the exposure are not reported.

    Returns
    -------
    Table, one row per (frame, object) crossing, sorted by frame then NORAD id:
    ``frame`` (row index in ``fields``), ``norad_id``, ``name``, ``ra_deg, dec_deg`` (star-relative,
    at mid-exposure), ``ra_start_deg, dec_start_deg, ra_end_deg, dec_end_deg`` (exposure start and
    end), ``min_sep_deg`` (closest approach of the predicted path to the field centre),
    ``ra_rate_deg_s`` (dRA/dt cos Dec), ``dec_rate_deg_s``, ``range_km``, ``elevation_deg``,
    ``sunlit`` (at mid-exposure), ``tle_age_days`` (at mid-exposure), ``phase_deg`` (solar phase
    angle at mid-exposure, for :func:`aposos.brightness.sphere_mag`). ``meta`` carries counts:
    objects, frames, knots, gate candidates, crossings, and ``seconds`` per stage.
    """
    t_begin = time.perf_counter()
    entries = as_entries(tles) if not isinstance(tles, TleCatalog) else tles.entries
    if len(fields) == 0 or len(entries) == 0:
        return Table(names=_COLUMNS, dtype=[int, np.int64, str] + [float] * 11 + [bool, float, float])
    sats = [e.satrec for e in entries]
    plan = _Plan(fields, step_s, piece_s)
    knots = P.station_geometry(station, plan.knot_times)
    centre, radius = _field_arrays(fields)
    csamp = _sample_centres(fields, plan, centre)
    base = _gate_base(plan, radius, margin_deg, csamp)
    w = np.ascontiguousarray(_hermite_weights(plan.tau, step_s))
    min_sin = np.sin(np.radians(_gate_elevation(min_elevation_deg, step_s)))
    cand_obj, cand_frame = [], []
    clock = {"geometry": time.perf_counter() - t_begin, "coarse": 0.0, "gate": 0.0}
    for lo in range(0, len(sats), chunk):
        t0 = time.perf_counter()
        pos, vel = _knot_states(sats[lo:lo + chunk], knots)
        t1 = time.perf_counter()
        clock["coarse"] += t1 - t0
        if use_numba:
            hit = _gate_kernel(pos, vel, plan.k, w, plan.first, plan.count, csamp, base, knots.up, min_sin)
        else:
            hit = gate_reference(pos, vel, plan, csamp, base, knots.up, _gate_elevation(min_elevation_deg, step_s))
        clock["gate"] += time.perf_counter() - t1
        i, f = np.nonzero(hit)
        cand_obj.append(i + lo)
        cand_frame.append(f)
    cand_obj = np.concatenate(cand_obj) if cand_obj else np.zeros(0, int)
    cand_frame = np.concatenate(cand_frame) if cand_frame else np.zeros(0, int)
    t0 = time.perf_counter()
    if len(cand_obj):  # the exact stage samples the candidate frames more finely
        uf, local = np.unique(cand_frame, return_inverse=True)
        fine = _Plan(fields[uf], step_s, refine_piece_s)
        out = _refine(entries, station, fine, cand_obj, local, centre[uf],
                      _sample_centres(fields[uf], fine, centre[uf]), radius[uf], margin_deg, min_elevation_deg)
        out["frame"] = uf[out["frame"]]
    else:
        out = _refine(entries, station, plan, cand_obj, cand_frame, centre, csamp, radius, margin_deg,
                      min_elevation_deg)
    clock["refine"] = time.perf_counter() - t0
    out.meta.update(objects=len(sats), frames=len(fields), knots=len(plan.knot_sec),
                    propagations_coarse=len(sats) * len(plan.knot_sec), candidates=len(cand_obj),
                    crossings=len(out), seconds=clock)
    log.info("screen: %d objects x %d frames: %d knots, %d gate candidates, %d crossings",
             len(sats), len(fields), len(plan.knot_sec), len(cand_obj), len(out))
    return out


_COLUMNS = ("frame", "norad_id", "name", "ra_deg", "dec_deg", "ra_start_deg", "dec_start_deg", "ra_end_deg",
            "dec_end_deg", "min_sep_deg", "ra_rate_deg_s", "dec_rate_deg_s", "range_km", "elevation_deg",
            "sunlit", "tle_age_days", "phase_deg")


def _refine(entries, station, plan, obj, frame, centre, csamp, radius, margin_deg, min_elevation_deg):
    """Exact prediction at the sample points of candidate (object, frame) pairs.

    An object is kept when the polyline of its exact star-relative positions passes within
    ``radius + margin`` of the field centre, plus the largest distance between a chord and
    the true path (``|a| dt^2 / 8`` over the range; < 1 arcsec for LEO at 1 s pieces).
    """
    order = np.lexsort((frame, obj))
    obj, frame = obj[order], frame[order]
    n = len(obj)
    counts = plan.count[frame]
    start = (np.cumsum(counts) - counts).astype(int)  # pair p: rows start[p]:start[p]+counts[p]
    samp = (np.concatenate([plan.first[f] + np.arange(plan.count[f]) for f in frame]) if n
            else np.zeros(0, int))
    r = np.full((len(samp), 3), np.nan)
    v = np.full((len(samp), 3), np.nan)
    jd1, jd2 = plan.sample_times.jd1, plan.sample_times.jd2
    change = np.flatnonzero(np.diff(obj)) + 1  # pairs of one object are consecutive
    for lo, hi in zip(np.r_[0, change], np.r_[change, n]) if n else ():
        a, b = start[lo], start[hi - 1] + counts[hi - 1]
        e, rr, vv = entries[obj[lo]].satrec.sgp4_array(jd1[samp[a:b]], jd2[samp[a:b]])
        good = e == 0
        r[a:b][good], v[a:b][good] = rr[good], vv[good]
    empty = np.zeros(0)
    cols = dict(ra_deg=empty, dec_deg=empty, range_km=empty, ra_rate_deg_s=empty, dec_rate_deg_s=empty,
                elevation_deg=empty, sunlit=np.zeros(0, bool), phase_deg=empty)
    if n:
        used, tidx = np.unique(samp, return_inverse=True)
        geom = P.station_geometry(station, plan.sample_times[used])
        with np.errstate(invalid="ignore"):
            cols = P.observe(r, v, geom, tidx)
    unit = d.unit_from_radec(cols["ra_deg"], cols["dec_deg"])
    pair = np.repeat(np.arange(n), counts)
    min_sep = np.full(n, np.inf)
    vis = np.zeros(n, bool)
    if n:
        target = centre[frame][pair]
        moving = _co_moving(unit, csamp[samp], target)  # in the frame of the (tracking) field
        sep = np.degrees(polyline_separation(moving, target, start))
        good = np.isfinite(unit).all(axis=1)
        all_good = np.logical_and.reduceat(good, start)
        min_sep = np.where(all_good, sep, np.inf)
        vis = np.logical_or.reduceat(cols["elevation_deg"] > min_elevation_deg, start) & all_good
    piece = plan.sec[plan.first + 1] - plan.sec[plan.first]  # per frame (pieces are equal)
    with np.errstate(invalid="ignore", divide="ignore"):
        rng_min = np.minimum.reduceat(np.nan_to_num(cols["range_km"], nan=np.inf), start) if n else np.zeros(0)
        chord_dev = np.degrees(MAX_REL_ACCEL_KM_S2 * piece[frame] ** 2 / 8 / rng_min)
    keep = (min_sep <= np.degrees(radius[frame]) + margin_deg + chord_dev) & vis
    mid, end = start + counts // 2, start + counts - 1
    t_mid = plan.sample_times[samp[mid]] if n else None
    tab = Table(dict(
        frame=frame, norad_id=np.array([entries[o].norad_id for o in obj], dtype=np.int64),
        name=np.array([entries[o].name for o in obj], dtype=str),
        ra_deg=cols["ra_deg"][mid], dec_deg=cols["dec_deg"][mid],
        ra_start_deg=cols["ra_deg"][start], dec_start_deg=cols["dec_deg"][start],
        ra_end_deg=cols["ra_deg"][end], dec_end_deg=cols["dec_deg"][end],
        min_sep_deg=min_sep, ra_rate_deg_s=cols["ra_rate_deg_s"][mid], dec_rate_deg_s=cols["dec_rate_deg_s"][mid],
        range_km=cols["range_km"][mid], elevation_deg=cols["elevation_deg"][mid], sunlit=cols["sunlit"][mid],
        tle_age_days=_ages(entries, obj, t_mid), phase_deg=cols["phase_deg"][mid],
    ))[keep]
    tab.sort(["frame", "norad_id"])
    return tab


def _ages(entries, obj, t):
    if not len(obj):
        return np.zeros(0)
    e = np.array([entries[o].epoch_jd for o in obj])
    return (t.jd1 - e[:, 0]) + (t.jd2 - e[:, 1])


def polyline_separation(units, centres, starts) -> np.ndarray:
    """Per polyline, the smallest angle (rad) from its centre to its great-circle arcs.

    ``units`` (M, 3) holds consecutive polylines beginning at rows ``starts`` (ascending);
    ``centres`` (M, 3) the centre of each row's polyline.
    """
    with np.errstate(invalid="ignore"):
        ang = np.arccos(np.clip(np.sum(units * centres, -1), -1, 1))
        a, b, c = units[:-1], units[1:], centres[:-1]
        p = np.cross(a, b)
        s = np.linalg.norm(p, axis=-1)
        p = p / s[:, None]
        sc = np.sum(c * p, -1)
        q = c - sc[:, None] * p
        inside = (np.sum(np.cross(a, q) * p, -1) >= 0) & (np.sum(np.cross(q, b) * p, -1) >= 0) & (s > 1e-15)
        arc = np.where(inside, np.abs(np.arcsin(np.clip(sc, -1, 1))), np.inf)
    last = np.zeros(len(units), bool)
    last[np.asarray(starts)[1:] - 1] = True
    last[-1] = True  # the arc from a polyline's last row to the next polyline's first is not a piece
    arc = np.where(last[:-1], np.inf, arc)
    best = np.minimum(ang, np.append(arc, np.inf))
    return np.minimum.reduceat(best, starts)


def path_min_separation(units, c) -> float:
    """Smallest angle (rad) from unit vector ``c`` to the great-circle arcs joining consecutive ``units``."""
    best = np.min(np.arccos(np.clip(units @ c, -1, 1)))
    for a, b in zip(units[:-1], units[1:]):
        p = np.cross(a, b)
        s = np.linalg.norm(p)
        if s < 1e-15:
            continue
        p /= s
        sc = float(c @ p)
        q = c - sc * p
        if np.cross(a, q) @ p >= 0 and np.cross(q, b) @ p >= 0:
            best = min(best, abs(np.arcsin(np.clip(sc, -1, 1))))
    return best
