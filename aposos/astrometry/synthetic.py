"""Synthetic star fields as *source lists* (no pixels), for tests and benchmarks of the solver.

The truth plate is an astropy WCS (TAN + SIP order 3) built here from station parameters and
evaluated by astropy's own SIP code -- not by :mod:`.fit` -- so the solver is checked against
an independent mapping. Sources carry centroid noise from an SNR model, and may include
missing stars, extra non-catalog stars, false sources, clouds (only the brightest stars),
rate-tracked star streaks, and satellites (points or streaks) with known sky truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.table import Table
from astropy.time import Time, TimeDelta
from astropy.wcs import WCS, Sip

from ..config import load_station
from ..model import Frame, FrameMeta
from .refstars import reference_stars
from .tangent import deproject


@dataclass
class SyntheticField:
    frame: Frame
    sources: Table
    wcs: WCS            # truth, FITS convention (origin 0 for aposos pixels)
    n_catalog_in_frame: int
    truth: Table        # per source: is_star, catalog_id, ra, dec (deg, truth; NaN for false)


def truth_wcs(ra_deg, dec_deg, shape, scale_arcsec_px, rotation_deg, parity, distortion_px, rng,
              sip_from: WCS | None = None) -> WCS:
    """TAN-SIP (order 3) WCS centred on the image with ``distortion_px`` at the corners.

    Radial cubic (a refractor's distortion) reaching ``distortion_px`` at the corners, random
    quadratic terms (tilt/decentre, ~0.2 x) and small random non-radial cubic terms (~0.05 x).
    ``sip_from``: copy that WCS's SIP polynomials instead (the same camera on another field).
    """
    ny, nx = shape
    w = WCS(naxis=2)
    s = scale_arcsec_px / 3600.0
    th = np.radians(rotation_deg)
    # +y axis at position angle `rotation_deg` (east of north); parity +1: east left of north.
    w.wcs.cd = np.array([[-parity * s * np.cos(th), s * np.sin(th)], [parity * s * np.sin(th), s * np.cos(th)]])
    w.wcs.crpix = [(nx + 1) / 2.0, (ny + 1) / 2.0]
    w.wcs.crval = [ra_deg, dec_deg]
    w.wcs.radesys = "ICRS"
    if sip_from is not None:
        w.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
        w.sip = Sip(np.array(sip_from.sip.a), np.array(sip_from.sip.b), None, None, w.wcs.crpix)
    elif distortion_px > 0:
        half = 0.5 * max(nx, ny)
        k = distortion_px / (np.sqrt(2) * half) ** 3
        a, b = np.zeros((4, 4)), np.zeros((4, 4))
        a[3, 0] = a[1, 2] = b[2, 1] = b[0, 3] = k * rng.choice([-1, 1])
        for c in (a, b):
            for p, q in ((2, 0), (1, 1), (0, 2)):
                c[p, q] = rng.normal(0, 0.2) * distortion_px / half ** 2
            for p, q in ((3, 0), (2, 1), (1, 2), (0, 3)):  # small non-radial cubic (imperfect lens)
                c[p, q] += rng.normal(0, 0.05) * distortion_px / half ** 3
        w.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
        w.sip = Sip(a, b, None, None, w.wcs.crpix)
    else:
        w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.set()
    return w


def centroid_sigma_px(snr, fwhm_px):
    """Per-axis centroid 1-sigma (px) of a Gaussian PSF at ``snr`` (sky-limited approximation)."""
    return np.maximum(np.sqrt(2.0) * fwhm_px / 2.3548 / np.asarray(snr, float), 0.005)


def make_field(station="iran", ra_deg=None, dec_deg=None, *, binning=4, shape=None, rotation_deg=None,
               parity=None, distortion_px=3.0, snr_mag10=300.0, fwhm_px=2.5, missing_frac=0.05,
               n_extra_stars=50, n_false=20, max_stars=None, tracking="sidereal", streak_px=30.0,
               t_mid="2026-11-21T22:00:00", exposure_s=2.0, hint_offset_deg=1.0, rng=None,
               catalog=None, satellites=(), sip_from=None) -> SyntheticField:
    """A simulated Sources table for a random or given field of ``station``.

    ``binning`` multiplies the configured pixel scale and divides the sensor shape.
    ``snr_mag10`` is the SNR of a G = 10 star (linear in flux, sky-limited), capped at 2000.
    ``max_stars`` keeps only the N brightest stars (clouds). ``tracking='rate'`` makes the stars
    streaks of ``streak_px`` (centre at mid-exposure). ``satellites`` is a list of dicts
    ``{'ra0','dec0','ra1','dec1','snr'}`` (deg; a point when 0 == 1), added as sources.
    The frame's pointing hint is the true centre moved by ``hint_offset_deg`` in a random direction.
    ``sip_from`` (a WCS) gives the frame that WCS's distortion (same camera, another field).
    """
    rng = np.random.default_rng(rng)
    st = load_station(station)
    if ra_deg is None:
        ra_deg = rng.uniform(0, 360)
        dec_deg = np.degrees(np.arcsin(rng.uniform(-0.8, 0.9)))
    if shape is None:
        shape = (st.shape[0] // binning, st.shape[1] // binning)
    scale = st.pixel_scale_arcsec * binning / st.camera["binning"]
    rotation_deg = rng.uniform(0, 360) if rotation_deg is None else rotation_deg
    parity = int(st.telescope["parity"]) if parity is None else parity
    wcs = truth_wcs(ra_deg, dec_deg, shape, scale, rotation_deg, parity, distortion_px, rng, sip_from)
    ny, nx = shape
    radius = 0.5 * np.hypot(nx, ny) * scale / 3600.0 + 0.1
    t_mid = Time(t_mid, scale="utc")
    ref = reference_stars(catalog, ra_deg, dec_deg, radius, epoch=t_mid)
    x, y = wcs.all_world2pix(np.asarray(ref["ra"]), np.asarray(ref["dec"]), 0, tolerance=1e-8, maxiter=100,
                             quiet=True)
    inside = (x > 2) & (x < nx - 3) & (y > 2) & (y < ny - 3)
    ref, x, y = ref[inside], x[inside], y[inside]
    n_cat = len(ref)
    snr = np.minimum(snr_mag10 * 10 ** (-0.4 * (np.asarray(ref["mag"]) - 10.0)), 2000.0)
    keep = rng.uniform(size=n_cat) >= missing_frac
    # blends: stars within 2 FWHM merge into one flux-weighted source
    flux = snr ** 1.0
    rows = {"x": list(x), "y": list(y), "flux": list(flux), "snr": list(snr), "is_star": [True] * n_cat,
            "catalog_id": list(np.asarray(ref["source_id"])), "ra": list(ref["ra"]), "dec": list(ref["dec"])}
    for k in range(n_extra_stars):  # fainter, not in catalog
        rows["x"].append(rng.uniform(3, nx - 4))
        rows["y"].append(rng.uniform(3, ny - 4))
        s = rng.uniform(5, snr_mag10 * 10 ** (-0.4 * 0.5))
        rows["flux"].append(s)
        rows["snr"].append(s)
        rows["is_star"].append(True)
        rows["catalog_id"].append(-1)
        r, d = wcs.all_pix2world(rows["x"][-1], rows["y"][-1], 0)
        rows["ra"].append(float(r))
        rows["dec"].append(float(d))
    keep = np.concatenate([keep, np.ones(n_extra_stars, bool)])
    t = Table(rows)[keep]
    t = _merge_blends(t, 2.0 * fwhm_px)
    if max_stars is not None:
        t = t[np.argsort(-np.asarray(t["flux"]))[:max_stars]]
    sig = centroid_sigma_px(t["snr"], fwhm_px)
    t["x_err"], t["y_err"] = sig, sig
    t["x"] = np.asarray(t["x"]) + rng.normal(0, 1, len(t)) * sig
    t["y"] = np.asarray(t["y"]) + rng.normal(0, 1, len(t)) * sig
    n_f = n_false
    false = Table({"x": rng.uniform(0, nx - 1, n_f), "y": rng.uniform(0, ny - 1, n_f),
                   "flux": rng.uniform(5, 2 * snr_mag10, n_f), "snr": rng.uniform(5, 50, n_f),
                   "is_star": np.zeros(n_f, bool), "catalog_id": -np.ones(n_f, np.int64),
                   "ra": np.full(n_f, np.nan), "dec": np.full(n_f, np.nan),
                   "x_err": np.full(n_f, 0.3), "y_err": np.full(n_f, 0.3)})
    t = _vstack(t, false)
    n = len(t)
    kind = np.array(["point"] * n, dtype="<U6")
    x0 = y0 = x1 = y1 = np.full(n, np.nan)
    end_sigma = np.full(n, np.nan)
    angle = np.full(n, np.nan)
    length = np.zeros(n)
    if tracking == "rate":
        kind[:] = "streak"
        ang = rng.uniform(0, np.pi)
        dx, dy = 0.5 * streak_px * np.cos(ang), 0.5 * streak_px * np.sin(ang)
        x0, y0 = np.asarray(t["x"]) - dx, np.asarray(t["y"]) - dy
        x1, y1 = np.asarray(t["x"]) + dx, np.asarray(t["y"]) + dy
        end_sigma = np.asarray(t["x_err"]) * 3
        angle[:] = np.degrees(ang)
        length[:] = streak_px
    t["kind"], t["x0"], t["y0"], t["x1"], t["y1"] = kind, x0, y0, x1, y1
    t["end_sigma_px"], t["angle_deg"], t["length_px"] = end_sigma, angle, length
    t["flags"] = np.zeros(n, np.int64)
    t["sat_index"] = -np.ones(n, np.int64)
    sat_rows = [_satellite_row(s, k, wcs, fwhm_px, rng) for k, s in enumerate(satellites)]
    if sat_rows:
        t = _vstack(t, Table(rows=sat_rows))
    t = t[rng.permutation(len(t))]
    # hint: true centre displaced by hint_offset_deg
    az = rng.uniform(0, 2 * np.pi)
    hra, hdec = deproject(hint_offset_deg * np.sin(az), hint_offset_deg * np.cos(az), ra_deg, dec_deg)
    half = TimeDelta(exposure_s / 2, format="sec")
    meta = FrameMeta(path=f"synthetic-{station}-{ra_deg:.3f}{dec_deg:+.3f}", station=station,
                     t_start=t_mid - half, t_mid=t_mid, t_end=t_mid + half, exposure_s=exposure_s,
                     tracking=tracking, pointing_ra_deg=float(hra), pointing_dec_deg=float(hdec),
                     binning=binning * st.camera["binning"])
    frame = Frame(data=np.broadcast_to(np.float32(0), shape), meta=meta)
    truth = t["is_star", "catalog_id", "ra", "dec", "sat_index"]
    sources = t["x", "y", "x_err", "y_err", "flux", "snr", "kind", "flags", "x0", "y0", "x1", "y1",
                "end_sigma_px", "angle_deg", "length_px"]
    return SyntheticField(frame=frame, sources=sources, wcs=wcs, n_catalog_in_frame=n_cat, truth=truth)


def _satellite_row(s, k, wcs, fwhm_px, rng) -> dict:
    (xa, xb), (ya, yb) = wcs.all_world2pix([s["ra0"], s["ra1"]], [s["dec0"], s["dec1"]], 0, tolerance=1e-9,
                                           maxiter=100, quiet=True)
    snr = float(s.get("snr", 50.0))
    point = (xa == xb) and (ya == yb)
    sig = float(centroid_sigma_px(snr, fwhm_px))
    length = float(np.hypot(xb - xa, yb - ya))
    end_sig = float(s.get("end_sigma_px", 0.3))
    if point:
        x, y = xa + rng.normal(0, sig), ya + rng.normal(0, sig)
        x0 = y0 = x1 = y1 = np.nan
    else:
        x0, y0 = xa + rng.normal(0, end_sig), ya + rng.normal(0, end_sig)
        x1, y1 = xb + rng.normal(0, end_sig), yb + rng.normal(0, end_sig)
        x, y = 0.5 * (x0 + x1), 0.5 * (y0 + y1)
    return {"x": x, "y": y, "flux": snr * 10.0, "snr": snr, "is_star": False, "catalog_id": -1,
            "ra": np.nan, "dec": np.nan, "x_err": sig, "y_err": sig, "kind": "point" if point else "streak",
            "x0": x0, "y0": y0, "x1": x1, "y1": y1, "end_sigma_px": np.nan if point else end_sig,
            "angle_deg": np.nan if point else float(np.degrees(np.arctan2(yb - ya, xb - xa))),
            "length_px": 0.0 if point else length, "flags": 0, "sat_index": k}


def _vstack(a: Table, b: Table) -> Table:
    from astropy.table import vstack

    return vstack([a, b[[c for c in a.colnames if c in b.colnames]]], join_type="exact")


def _merge_blends(t: Table, radius_px: float) -> Table:
    """Merge sources closer than ``radius_px`` into their flux-weighted centroid (image blends)."""
    from scipy.spatial import cKDTree

    xy = np.stack([t["x"], t["y"]], -1)
    pairs = cKDTree(xy).query_pairs(radius_px, output_type="ndarray")
    if len(pairs) == 0:
        return t
    t = t.copy()
    drop = np.zeros(len(t), bool)
    for i, j in pairs:
        if drop[i] or drop[j]:
            continue
        fi, fj = t["flux"][i], t["flux"][j]
        t["x"][i] = (fi * t["x"][i] + fj * t["x"][j]) / (fi + fj)
        t["y"][i] = (fi * t["y"][i] + fj * t["y"][j]) / (fi + fj)
        t["flux"][i] = fi + fj
        t["snr"][i] = np.hypot(t["snr"][i], t["snr"][j])
        t["is_star"][i] = False  # a blend is not a clean star position
        t["catalog_id"][i] = -1
        drop[j] = True
    return t[~drop]
