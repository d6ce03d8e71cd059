"""Synthetic but realistic TLE catalogs (the orbits the simulated sky is made of).

Every object is built from mean elements with ``Satrec.sgp4init`` (WGS72, the TLE
convention), exported to two-line text with valid checksums and parsed back, so that the
truth propagator and the catalog file hold *exactly* the same elements.

Population (:func:`random_catalog`), fractions by default:

========  =========================================================================
``LEO``   300-1300 km, e < 0.02; inclinations from the real mix: ISS-like 51.6 deg,
          Starlink-like 53 deg, sun-synchronous 96.5-99.5 deg, polar 70-90 deg and
          28-45 deg; B* 1e-5 .. 5e-4 (1/earth radii)
``MEO``   GNSS shells: GPS (26 560 km, 55 deg), GLONASS (25 510 km, 64.8 deg),
          Galileo (29 600 km, 56 deg), BeiDou MEO (27 900 km, 55 deg); e < 0.01
``GEO``   42 164 km, e < 1e-3, i 0-15 deg (uncontrolled objects drift to 15 deg),
          longitudes everywhere
``HEO``   Molniya (a 26 560 km, e 0.72, i 63.4 deg, perigee argument 270 deg) and
          GTO (perigee 200-600 km, apogee ~35 800 km, i 5-28 deg)
========  =========================================================================

Objects are named ``SIM <REGIME> <NORAD>``; NORAD numbers are unique and deterministic
for a given seed. :func:`designed_leo` and :func:`designed_geo` build objects that are at a
chosen place in the sky at a chosen time (for sample nights). :func:`aged` makes the TLE
an operator would have had ``age_days`` earlier: same orbit, older epoch, and a
mean-motion error whose along-track effect grows by ``km_per_day`` per day of age.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.time import Time
from sgp4.api import WGS72, Satrec
from sgp4.exporter import export_tle

MU_KM3_S2 = 398600.8  # WGS72, the constant TLE mean motions are defined with
EARTH_RADIUS_KM = 6378.135  # WGS72
JD_1949_12_31 = 2433281.5  # sgp4init epoch origin
MINUTES_PER_DAY = 1440.0
SIDEREAL_DAY_S = 86164.0905


@dataclass(frozen=True)
class Tle:
    """One catalog entry: name (line 0), the two lines, its regime and nominal size."""

    name: str
    line1: str
    line2: str
    regime: str = "LEO"
    radius_m: float = 1.0  # radius of the equivalent diffuse sphere (brightness model)
    albedo: float = 0.2

    @property
    def norad(self) -> int:
        return self.satrec.satnum

    @property
    def satrec(self) -> Satrec:
        return Satrec.twoline2rv(self.line1, self.line2)

    @property
    def epoch(self) -> Time:
        s = self.satrec
        return Time(s.jdsatepoch, s.jdsatepochF, format="jd", scale="utc")

    def text(self) -> str:
        return f"{self.name}\n{self.line1}\n{self.line2}\n"


def mean_motion_rad_min(a_km: float) -> float:
    """Kozai-ish mean motion (rad/min) of a semi-major axis (km), two-body."""
    return math.sqrt(MU_KM3_S2 / a_km**3) * 60.0


def make_tle(norad: int, epoch: Time, *, a_km: float, ecc: float, inc_deg: float, raan_deg: float,
             argp_deg: float, mean_anomaly_deg: float, bstar: float = 0.0, name: str | None = None,
             regime: str = "LEO", radius_m: float = 1.0, albedo: float = 0.2, intldesg: str = "") -> Tle:
    """A TLE from mean elements (km, deg) at ``epoch`` (UTC), checksums valid.

    The epoch is rounded to the 1e-8 day resolution of the TLE text before initialising, so
    the text and the elements agree exactly.
    """
    utc = Time(epoch, scale="utc")
    days = round((utc.jd1 - JD_1949_12_31) + utc.jd2, 8)
    sat = Satrec()
    sat.sgp4init(WGS72, "i", int(norad), days, float(bstar), 0.0, 0.0, float(ecc),
                 math.radians(argp_deg % 360), math.radians(inc_deg), math.radians(mean_anomaly_deg % 360),
                 mean_motion_rad_min(a_km), math.radians(raan_deg % 360))
    sat.classification = "U"
    sat.intldesg = intldesg or f"26{int(norad) % 1000:03d}A"
    sat.elnum = 999
    sat.revnum = 1000
    line1, line2 = export_tle(sat)
    return Tle(name or f"SIM {regime} {int(norad)}", line1, line2, regime, radius_m, albedo)


def checksum(line: str) -> int:
    """TLE checksum of the first 68 columns (digits count, '-' counts 1)."""
    return sum(int(c) if c.isdigit() else (1 if c == "-" else 0) for c in line[:68]) % 10


# --- the population --------------------------------------------------------------------
DEFAULT_MIX = {"LEO": 0.70, "MEO": 0.08, "GEO": 0.15, "HEO": 0.07}

_LEO_INCLINATIONS = (  # (weight, low, high) deg
    (0.10, 51.5, 51.7), (0.25, 52.9, 53.2), (0.30, 96.5, 99.5), (0.20, 70.0, 90.0), (0.15, 28.0, 45.0),
)
_MEO_SHELLS = ((26560.0, 55.0), (25510.0, 64.8), (29600.0, 56.0), (27900.0, 55.0))


def _leo_elements(rng):
    w = np.array([c[0] for c in _LEO_INCLINATIONS])
    k = rng.choice(len(w), p=w / w.sum())
    _, lo, hi = _LEO_INCLINATIONS[k]
    alt = rng.uniform(300.0, 1300.0)
    a_km = EARTH_RADIUS_KM + alt
    ecc = rng.uniform(1e-4, 0.02) if rng.random() < 0.3 else rng.uniform(1e-4, 3e-3)
    ecc = min(ecc, (alt - 250.0) / a_km)  # perigee above 250 km
    return dict(a_km=a_km, ecc=ecc, inc_deg=rng.uniform(lo, hi),
                bstar=10 ** rng.uniform(-5, math.log10(5e-4)) * (1.0 if alt < 900 else 0.3),
                radius_m=10 ** rng.uniform(-0.5, 0.6))


def _meo_elements(rng):
    a, inc = _MEO_SHELLS[rng.integers(len(_MEO_SHELLS))]
    return dict(a_km=a + rng.normal(0, 20), ecc=rng.uniform(1e-4, 0.01), inc_deg=inc + rng.normal(0, 0.5),
                bstar=rng.uniform(0, 1e-5), radius_m=rng.uniform(1.0, 2.5))


def _geo_elements(rng):
    return dict(a_km=42164.2 + rng.normal(0, 5), ecc=rng.uniform(1e-5, 1e-3), inc_deg=rng.uniform(0, 0.1)
                if rng.random() < 0.6 else rng.uniform(0.1, 15.0), bstar=0.0, radius_m=rng.uniform(1.5, 4.0))


def _heo_elements(rng):
    if rng.random() < 0.4:  # Molniya
        return dict(a_km=26560.0 + rng.normal(0, 50), ecc=rng.uniform(0.68, 0.74), inc_deg=63.4 + rng.normal(0, 0.3),
                    argp_deg=270.0 + rng.normal(0, 5), bstar=rng.uniform(0, 1e-4), radius_m=rng.uniform(1.0, 2.5))
    perigee = EARTH_RADIUS_KM + rng.uniform(200.0, 600.0)
    apogee = EARTH_RADIUS_KM + rng.uniform(35000.0, 36500.0)
    return dict(a_km=(perigee + apogee) / 2, ecc=(apogee - perigee) / (apogee + perigee), inc_deg=rng.uniform(5.0, 28.0),
                bstar=rng.uniform(1e-5, 3e-4), radius_m=rng.uniform(0.8, 2.0))


_GENERATORS = {"LEO": _leo_elements, "MEO": _meo_elements, "GEO": _geo_elements, "HEO": _heo_elements}


def random_catalog(n: int, epoch: Time, *, seed: int = 0, mix: dict | None = None, first_norad: int = 80001,
                   epoch_spread_days: float = 1.5) -> list[Tle]:
    """``n`` objects with the regime mix ``mix`` (default :data:`DEFAULT_MIX`).

    Epochs are spread over the ``epoch_spread_days`` before ``epoch`` (as in a real catalog
    fetched at ``epoch``); RAAN, perigee argument and mean anomaly are uniform. The same
    ``seed`` gives the same catalog.
    """
    rng = np.random.default_rng(seed)
    mix = mix or DEFAULT_MIX
    names = list(mix)
    p = np.array([mix[k] for k in names], float)
    regimes = rng.choice(names, size=n, p=p / p.sum())
    epoch = Time(epoch, scale="utc")
    out = []
    for i, regime in enumerate(regimes):
        el = _GENERATORS[str(regime)](rng)
        el.setdefault("argp_deg", rng.uniform(0, 360))
        out.append(make_tle(first_norad + i, epoch - rng.uniform(0, epoch_spread_days) * 86400 * u.s,
                            raan_deg=rng.uniform(0, 360), mean_anomaly_deg=rng.uniform(0, 360),
                            regime=str(regime), albedo=rng.uniform(0.1, 0.3), **el))
    return out


def _gmst_deg(t: Time) -> float:
    """Greenwich sidereal angle (deg) used only to aim designed orbits (not for truth)."""
    return float(Time(t, scale="utc").sidereal_time("mean", longitude=0.0).deg)


def designed_leo(norad: int, t_pass: Time, lat_deg: float, lon_deg: float, *, alt_km: float = 900.0,
                 inc_deg: float = 82.0, ecc: float = 1e-3, bstar: float = 5e-5, descending: bool = False,
                 radius_m: float = 1.5, name: str | None = None) -> Tle:
    """A near-circular LEO whose ground track passes close to (lat, lon) at ``t_pass``.

    The epoch is ``t_pass`` minus half an hour; the argument of latitude and the node are
    solved from spherical trigonometry (two-body), so the real closest approach is within
    a few tens of km of the site zenith (J2 short-period terms). ``descending`` picks the
    southbound crossing. ``lat_deg`` must be below the inclination.
    """
    phi = math.radians(lat_deg)
    inc = math.radians(inc_deg)
    arg_lat = math.asin(math.sin(phi) / math.sin(inc))
    if descending:
        arg_lat = math.pi - arg_lat
    ra_site = math.radians(_gmst_deg(t_pass) + lon_deg)
    raan = ra_site - math.atan2(math.cos(inc) * math.sin(arg_lat), math.cos(arg_lat))
    a = EARTH_RADIUS_KM + alt_km
    n = mean_motion_rad_min(a)
    epoch = Time(t_pass, scale="utc") - 1800.0 * u.s
    argp = 90.0
    mean_anom = math.degrees(arg_lat) - argp - math.degrees(n * 30.0)
    # node regression over the half hour to the pass (J2, rad/min)
    nodedot = -1.5 * 1.08263e-3 * (EARTH_RADIUS_KM / a) ** 2 * n * math.cos(inc)
    return make_tle(norad, epoch, a_km=a, ecc=ecc, inc_deg=inc_deg, raan_deg=math.degrees(raan - nodedot * 30.0),
                    argp_deg=argp, mean_anomaly_deg=mean_anom, bstar=bstar, regime="LEO", radius_m=radius_m,
                    name=name)


def designed_geo(norad: int, t: Time, sub_lon_deg: float, *, inc_deg: float = 0.05, radius_m: float = 2.5,
                 name: str | None = None) -> Tle:
    """A geostationary object over longitude ``sub_lon_deg`` (east) at time ``t`` (epoch ``t`` - 6 h)."""
    epoch = Time(t, scale="utc") - 6 * 3600.0 * u.s
    lam = _gmst_deg(epoch) + sub_lon_deg  # right ascension of the sub-satellite point at epoch
    return make_tle(norad, epoch, a_km=42164.2, ecc=2e-4, inc_deg=inc_deg, raan_deg=0.0, argp_deg=0.0,
                    mean_anomaly_deg=lam, bstar=0.0, regime="GEO", radius_m=radius_m, name=name)


def aged(tle: Tle, age_days: float, *, km_per_day: float = 2.0, seed: int = 0) -> Tle:
    """The TLE of the same object as published ``age_days`` before ``tle``'s epoch.

    The elements are moved back to the older epoch with SGP4's secular rates, then the mean
    anomaly and node are corrected (a few Newton steps on SGP4 itself, which also absorbs
    drag and deep-space terms) so that, propagated to ``tle``'s epoch, the old TLE lies
    ``km_per_day * age_days`` km along track from the truth (sign from ``seed``), with the
    matching mean-motion error, so that the error keeps growing at the same rate: the way
    TLE prediction errors behave (dominated along track, 1-3 km/day). ``age_days = 0``
    returns ``tle``.
    """
    if age_days <= 0:
        return tle
    s = tle.satrec
    rng = np.random.default_rng(seed + s.satnum)
    minutes = age_days * MINUTES_PER_DAY
    a_km = s.a * EARTH_RADIUS_KM
    along_rad = km_per_day * age_days * rng.choice([-1.0, 1.0]) / a_km
    dn = along_rad / minutes  # rad/min: the drift that builds the offset over the age
    epoch = tle.epoch - minutes * 60.0 * u.s
    days = round((epoch.jd1 - JD_1949_12_31) + epoch.jd2, 8)
    mo = s.mo - (s.mdot + dn) * minutes
    node = s.nodeo - s.nodedot * minutes
    argp = s.argpo - s.argpdot * minutes
    _, r_true, v_true = s.sgp4(s.jdsatepoch, s.jdsatepochF)
    u_true, node_true, w_true = _plane_angles(r_true, v_true)
    for _ in range(12):
        old = Satrec()
        old.sgp4init(WGS72, "i", s.satnum, days, s.bstar, 0.0, 0.0, s.ecco, argp % (2 * math.pi), s.inclo,
                     mo % (2 * math.pi), s.no_kozai + dn, node % (2 * math.pi))
        err, r_old, v_old = old.sgp4(s.jdsatepoch, s.jdsatepochF)
        u_old, node_old, w_old = _plane_angles(r_old, v_old)
        if math.sin(s.inclo) < 0.02:
            # near-equatorial: node, perigee and argument of latitude are degenerate; the
            # true longitude and the longitude of perigee are not: match those, keep the node
            d_node = 0.0
            d_u = _wrap((u_old + node_old) - (u_true + node_true)) - along_rad
            d_w = _wrap((w_old + node_old) - (w_true + node_true)) if s.ecco > 1e-3 else 0.0
        else:
            d_node = _wrap(node_old - node_true)
            d_u = _wrap(u_old - u_true) - along_rad
            d_w = _wrap(w_old - w_true) if s.ecco > 1e-3 else 0.0  # perigee too: it sets the radius
        nu = u_true - s.argpo  # true anomaly, near enough for the Newton slope du/dM
        mo -= d_u * (1 - s.ecco**2) ** 1.5 / (1 + s.ecco * math.cos(nu)) ** 2
        node -= d_node
        argp -= d_w
        mo += d_w  # keep the argument of latitude
        if abs(d_u) < 1e-9 and abs(d_node) < 1e-9 and abs(d_w) < 1e-7:
            break
    old.classification, old.intldesg, old.elnum, old.revnum = "U", s.intldesg, 998, s.revnum
    line1, line2 = export_tle(old)
    return Tle(tle.name, line1, line2, tle.regime, tle.radius_m, tle.albedo)


def _wrap(angle_rad):
    return (angle_rad + math.pi) % (2 * math.pi) - math.pi


def _plane_angles(r, v):
    """Argument of latitude, node and argument of perigee (rad, osculating) of a TEME state (km, km/s)."""
    r, v = np.asarray(r), np.asarray(v)
    h = np.cross(r, v)
    h_hat = h / np.linalg.norm(h)
    node = math.atan2(h[0], -h[1])
    n_hat = np.array([math.cos(node), math.sin(node), 0.0])
    u_ = math.atan2(np.dot(np.cross(n_hat, r), h_hat), np.dot(n_hat, r))
    e_vec = ((v @ v - MU_KM3_S2 / np.linalg.norm(r)) * r - (r @ v) * v) / MU_KM3_S2
    w = math.atan2(np.dot(np.cross(n_hat, e_vec), h_hat), np.dot(n_hat, e_vec))
    return u_, node, w


def without(catalog: list[Tle], norad) -> list[Tle]:
    """The catalog with the object(s) ``norad`` (int or iterable) removed (uncatalogued objects)."""
    drop = {int(norad)} if np.isscalar(norad) else {int(n) for n in norad}
    return [t for t in catalog if t.norad not in drop]


def write_catalog(path, catalog: list[Tle]) -> None:
    """Write a three-line-element file (name, line 1, line 2 per object)."""
    with open(path, "w") as f:
        for t in catalog:
            f.write(t.text())


def read_catalog(path) -> list[Tle]:
    """Read a 3LE/2LE file written by :func:`write_catalog` (for the simulator's own use)."""
    from ..errors import AposError

    try:
        with open(path) as f:
            lines = [ln.rstrip() for ln in f if ln.strip()]
    except OSError as exc:
        raise AposError(f"cannot read TLE file: {exc.strerror}", path=path) from None
    out, name = [], None
    i = 0
    while i < len(lines):
        ln = lines[i]
        if ln.startswith("1 ") and i + 1 < len(lines) and lines[i + 1].startswith("2 "):
            for k, line in ((i + 1, ln), (i + 2, lines[i + 1])):
                if len(line) < 69 or checksum(line) != int(line[68]):
                    raise AposError("bad TLE line (length or checksum)", path=path, line=k)
            out.append(Tle(name or f"SIM {ln[2:7].strip()}", ln, lines[i + 1]))
            name, i = None, i + 2
        else:
            name, i = (ln[2:] if ln.startswith("0 ") else ln), i + 1
    return out


