"""What a frame sees: its geometry (an astropy WCS), its stars and its photometry.

Geometry. :func:`frame_wcs` builds the *true* plate solution of a frame: gnomonic (TAN)
projection about the pointing, pixel scale, rotation (position angle of the image +y axis,
east of north) and parity, plus an optional SIP distortion of order 3 like that of a fast
refractor (a radial cubic term, a few px at the corners, and small tilt terms). The WCS maps
0-based pixel positions (``origin=0``) to *catalog* (ICRS, un-aberrated) directions: the
simulator places stars at their catalog positions and satellites at their star-relative
positions through this one mapping, which is exactly the convention of the reduction (see
:mod:`aposos.simulate.satellites`). Annual aberration and refraction change the plate
constants of a real frame, not the relation between the two, so they need no rendering.

Stars. Catalog stars (:func:`aposos.catalog.gaia`, G < 10, at the frame epoch) plus a
population of fainter stars that are *not* in the catalog (:func:`faint_stars`): fixed on
the sky (seeded per 1 x 1 deg cell, so successive frames of a field share them), counts
rising as ``10**(0.35 m)`` from mag 10 to ``faint_limit_mag`` with a density that grows
towards the Galactic plane.

Photometry. :class:`Photometry`: a 15 cm aperture collects ``zero_point_e_s`` electrons
per second from a magnitude-0 star (unfiltered, G/V-like band, QE and optics included) and
a sky of ``sky_mag_arcsec2`` magnitudes per square arcsecond.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table, vstack
from astropy.wcs import WCS

#: photons/s/m^2 from a magnitude-0 star in a broad unfiltered band (~400-900 nm)
PHOTONS_MAG0_S_M2 = 3.0e10


@dataclass(frozen=True)
class Photometry:
    """Throughput and sky of one telescope + camera (electrons, seconds, magnitudes)."""

    aperture_mm: float = 150.0
    throughput: float = 0.5  # optics x quantum efficiency
    sky_mag_arcsec2: float = 20.0  # suburban-to-rural site, moonless
    fwhm_arcsec: float = 20.0  # optics + seeing of a fast refractor, in binned-frame terms

    @property
    def zero_point_e_s(self) -> float:
        """Electrons per second from a magnitude-0 source."""
        area_m2 = math.pi * (self.aperture_mm * 1e-3 / 2) ** 2
        return PHOTONS_MAG0_S_M2 * area_m2 * self.throughput

    def flux_e(self, mag, exposure_s):
        """Electrons collected from sources of magnitude ``mag`` in ``exposure_s``."""
        return self.zero_point_e_s * exposure_s * 10 ** (-0.4 * np.asarray(mag, float))

    def mag(self, flux_e, exposure_s):
        return -2.5 * np.log10(np.asarray(flux_e, float) / (self.zero_point_e_s * exposure_s))

    def sky_e_per_px(self, pixel_scale_arcsec, exposure_s) -> float:
        """Sky electrons per pixel in ``exposure_s``."""
        return float(self.flux_e(self.sky_mag_arcsec2, exposure_s) * pixel_scale_arcsec**2)


def _sip_coefficients(r_corner, corner_px, seed):
    """SIP A/B (order 3) for a radial cubic reaching ``corner_px`` at radius ``r_corner`` px, plus tilt terms."""
    k3 = corner_px / r_corner**3
    rng = np.random.default_rng(seed)
    a, b = np.zeros((4, 4)), np.zeros((4, 4))
    # radial: dx = k3 x (x^2 + y^2), dy = k3 y (x^2 + y^2)
    a[3, 0] = a[1, 2] = k3
    b[0, 3] = b[2, 1] = k3
    # small quadratic terms (tilt/decentre): ~ corner_px / 10 at the corner
    k2 = 0.1 * corner_px / r_corner**2
    for m in (a, b):
        m[2, 0], m[1, 1], m[0, 2] = rng.uniform(-k2, k2, 3)
    return a, b


def frame_wcs(ra_deg: float, dec_deg: float, shape, pixel_scale_arcsec: float, *, rotation_deg: float = 0.0,
              parity: int = 1, sip_corner_px: float = 0.0, chip_shape=None, seed: int = 0) -> WCS:
    """The true WCS of a frame (0-based pixels; see the module docstring).

    ``shape`` is (ny, nx); the reference pixel is the image centre. ``rotation_deg`` turns
    the image +y axis from north towards east; ``parity`` +1 puts east on the left when
    north is up (the sky as seen), -1 mirrors. ``sip_corner_px`` is the size of the radial
    distortion at the corners of the whole chip ``chip_shape`` (default: this image; a
    centred window of a larger chip sees less of it); 0: none. The inverse polynomials
    (AP, BP, order 4) are fitted so the header serves other tools too.
    """
    ny, nx = shape
    w = WCS(naxis=2)
    w.wcs.crpix = [(nx - 1) / 2 + 1, (ny - 1) / 2 + 1]  # FITS 1-based
    w.wcs.crval = [ra_deg % 360.0, dec_deg]
    s = pixel_scale_arcsec / 3600.0
    th = math.radians(rotation_deg)
    w.wcs.cd = np.array([[-parity * s * math.cos(th), s * math.sin(th)],
                         [parity * s * math.sin(th), s * math.cos(th)]])
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.radesys = "ICRS"
    w.wcs.set()
    if sip_corner_px:
        from astropy.wcs import Sip

        cy, cx = chip_shape or shape
        a, b = _sip_coefficients(math.hypot(cx / 2, cy / 2), sip_corner_px, seed)
        ap, bp = _fit_inverse_sip(a, b, shape)
        w.sip = Sip(a, b, ap, bp, w.wcs.crpix)
        w.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
        w.wcs.set()
    return w


def _eval_sip(m, u_, v_):
    out = np.zeros_like(u_)
    for p in range(m.shape[0]):
        for q in range(m.shape[1]):
            if m[p, q]:
                out += m[p, q] * u_**p * v_**q
    return out


def _fit_inverse_sip(a, b, shape, order=4):
    """Least-squares inverse polynomials AP, BP mapping distorted (U, V) back to (u, v)."""
    ny, nx = shape
    uu, vv = np.meshgrid(np.linspace(-nx / 2 - 20, nx / 2 + 20, 41), np.linspace(-ny / 2 - 20, ny / 2 + 20, 41))
    uu, vv = uu.ravel(), vv.ravel()
    U, V = uu + _eval_sip(a, uu, vv), vv + _eval_sip(b, uu, vv)
    terms = [(p, q) for p in range(order + 1) for q in range(order + 1 - p) if p + q >= 1]
    design = np.stack([U**p * V**q for p, q in terms], axis=1)
    ap, bp = np.zeros((order + 1, order + 1)), np.zeros((order + 1, order + 1))
    for target, out in ((uu - U, ap), (vv - V, bp)):
        coef, *_ = np.linalg.lstsq(design, target, rcond=None)
        for (p, q), c in zip(terms, coef):
            out[p, q] = c
    return ap, bp


def world_to_pixel(wcs: WCS, ra_deg, dec_deg):
    """0-based pixel (x, y) of ICRS directions, SIP inverted iteratively to 1e-8 px."""
    ra, dec = np.atleast_1d(ra_deg), np.atleast_1d(dec_deg)
    if wcs.sip is None:
        return wcs.wcs_world2pix(ra, dec, 0)
    return wcs.all_world2pix(ra, dec, 0, tolerance=1e-8, maxiter=50, quiet=True)


def pixel_to_world(wcs: WCS, x, y):
    """ICRS RA, Dec (deg) of 0-based pixel positions."""
    return wcs.all_pix2world(np.atleast_1d(x), np.atleast_1d(y), 0)


def field_radius_deg(wcs: WCS, shape) -> float:
    """Radius (deg) of the circle about the reference point that holds the whole frame."""
    ny, nx = shape
    ra, dec = pixel_to_world(wcs, [0, nx - 1, 0, nx - 1], [0, 0, ny - 1, ny - 1])
    c0 = SkyCoord(*wcs.wcs.crval, unit="deg")
    return float(c0.separation(SkyCoord(ra, dec, unit="deg")).deg.max())


# --- stars ------------------------------------------------------------------------------
def _galactic_boost(ra_deg, dec_deg):
    """Star-density factor: 1 at the Galactic poles, ~5 in the plane."""
    b = SkyCoord(ra_deg, dec_deg, unit="deg").galactic.b.deg
    return 1.0 + 4.0 * np.exp(-np.abs(b) / 12.0)


def faint_stars(ra_deg: float, dec_deg: float, radius_deg: float, *, density_per_deg2: float = 250.0,
                bright_mag: float = 10.0, faint_limit_mag: float = 14.5, slope: float = 0.35,
                seed: int = 2026) -> Table:
    """Stars fainter than the catalog, fixed on the sky, within ``radius_deg`` of a point.

    ``density_per_deg2`` stars between ``bright_mag`` and ``faint_limit_mag`` at the Galactic
    poles (times :func:`_galactic_boost` elsewhere), magnitudes from ``dN/dm ~ 10**(slope m)``.
    Each 1 x 1 deg cell (RA x Dec) is drawn from its own seed, so that any cone over the
    same sky gives the same stars. Columns: ``source_id`` (negative, unique per star),
    ``ra``, ``dec`` (deg), ``mag``.
    """
    dec_lo = max(-90, math.floor(dec_deg - radius_deg))
    dec_hi = min(90, math.ceil(dec_deg + radius_deg))
    cdec = max(math.cos(math.radians(max(abs(dec_lo), abs(dec_hi)))), 1e-3)
    dra = min(180.0, radius_deg / cdec + 1.0)
    tables = []
    for d0 in range(dec_lo, dec_hi):
        area_factor = abs(math.sin(math.radians(d0 + 1)) - math.sin(math.radians(d0))) * 180 / math.pi
        for r0 in range(math.floor(ra_deg - dra), math.ceil(ra_deg + dra)):
            r0 %= 360
            tables.append(_cell_stars(r0, d0, area_factor, density_per_deg2, bright_mag, faint_limit_mag, slope, seed))
    stars = vstack(tables) if tables else Table(names=("source_id", "ra", "dec", "mag"))
    stars = stars[np.unique(stars["source_id"], return_index=True)[1]]  # a cell seen twice near RA 0/360
    sep = SkyCoord(ra_deg, dec_deg, unit="deg").separation(SkyCoord(stars["ra"], stars["dec"], unit="deg")).deg
    return stars[sep <= radius_deg]


def _cell_stars(r0, d0, area_factor, density, m0, m1, slope, seed):
    cell = (d0 + 90) * 360 + r0
    rng = np.random.default_rng([seed, cell])
    boost = float(_galactic_boost(r0 + 0.5, d0 + 0.5))
    n = rng.poisson(density * area_factor * boost)
    ra = r0 + rng.uniform(0, 1, n)
    # uniform on the sphere within the cell
    s0, s1 = math.sin(math.radians(d0)), math.sin(math.radians(d0 + 1))
    dec = np.degrees(np.arcsin(rng.uniform(s0, s1, n)))
    # inverse CDF of dN/dm ~ 10**(slope m) on [m0, m1]
    k = slope * math.log(10)
    q = rng.uniform(0, 1, n)
    mag = np.log(np.exp(k * m0) + q * (np.exp(k * m1) - np.exp(k * m0))) / k
    ids = -(cell * 100_000 + np.arange(n) + 1)
    return Table({"source_id": ids.astype(np.int64), "ra": ra, "dec": dec, "mag": mag})


def stars_in_field(wcs: WCS, shape, epoch, *, catalog=None, margin_px: float = 30.0, faint: dict | None = None) -> Table:
    """Catalog and faint stars falling on the frame (plus ``margin_px``), at ``epoch``.

    Columns: ``kind`` ('star' catalog, 'faint_star' not in the catalog), ``source_id``,
    ``ra``, ``dec`` (deg, ICRS at ``epoch``), ``mag``, ``in_catalog``, ``x``, ``y`` (0-based px).
    """
    from ..catalog import gaia

    catalog = catalog or gaia()
    ny, nx = shape
    ra0, dec0 = wcs.wcs.crval
    radius = field_radius_deg(wcs, shape) + margin_px * abs(wcs.wcs.cd[0, 0]) * 1.5
    cat = catalog.cone(ra0, dec0, radius, epoch=epoch)
    fnt = faint_stars(ra0, dec0, radius, **(faint or {}))
    parts = []
    for t, kind in ((cat, "star"), (fnt, "faint_star")):
        parts.append(Table({"kind": np.full(len(t), kind, dtype="U10"), "source_id": np.asarray(t["source_id"], np.int64),
                            "ra": np.asarray(t["ra"], float), "dec": np.asarray(t["dec"], float),
                            "mag": np.asarray(t["mag"], float), "in_catalog": np.full(len(t), kind == "star")}))
    stars = vstack(parts)
    x, y = world_to_pixel(wcs, stars["ra"], stars["dec"])
    stars["x"], stars["y"] = x, y
    inside = (x > -margin_px) & (x < nx - 1 + margin_px) & (y > -margin_px) & (y < ny - 1 + margin_px)
    return stars[inside]
