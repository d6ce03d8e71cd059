"""One simulated exposure: pixels as the station's camera writes them, and its truth table.

:func:`simulate_frame` puts together the frame geometry (:mod:`.scene`), the stars, the
satellites of a TLE catalog placed by the skyfield truth path (:mod:`.satellites`) and the
pixel forward model (:mod:`.render`).

Motion during the exposure. The exposure is cut into ``n_sub`` equal time steps and every
source is placed at the ``n_sub + 1`` instants; it is rendered as a polyline whose
sub-segments carry equal shares of the exposure (so a LEO streak bends and changes speed as
it really does). Sidereal frames: the sky is fixed on the detector (stars are points,
satellites streaks whose ends are the positions at ``t_start`` and ``t_end``). Rate-tracked
frames: the mount is modelled as turning the sky, at each instant, by the smallest rotation
that carries the target's star-relative direction at mid-exposure onto its direction at that
instant; the target stays on one pixel (a point) and everything else streaks.

Truth table (astropy Table, one row per star and satellite on or near the frame):

=================  ==========================================================================
``kind``           'star' (in the catalog), 'faint_star' (not in the catalog), 'satellite'
``id``             catalog source_id, negative ids for faint stars, NORAD number for satellites
``x, y``           px (0-based) at mid-exposure
``ra_deg, dec_deg``  ICRS at mid-exposure; star-relative for satellites
``time``           mid-exposure (UTC)
``flux_e, mag``    electrons collected in the exposure; magnitude (V-like; inf if eclipsed)
``in_catalog``     star in the star catalog / satellite in the TLE catalog given as ``tles``
``x0, y0, x1, y1`` px at ``t0`` (shutter open) and ``t1`` (shutter close)
``t0, t1``         UTC
``ra0_deg ...``    ``ra0_deg, dec0_deg, ra1_deg, dec1_deg``: sky positions at ``t0``, ``t1``
``range_km``       satellites: topocentric range at mid-exposure (NaN for stars)
``alt_deg``        satellites: elevation at mid-exposure
``lit``            satellites: illuminated fraction (0 umbra, 1 sunlit)
``rate_ra_arcsec_s, rate_dec_arcsec_s``  satellites: star-relative rates (RA rate x cos dec)
``on_image``       any part of the source's path falls on the detector
=================  ==========================================================================

``truth.meta`` holds the frame-level truth: the WCS header (true plate solution at
mid-exposure, FITS 1-based as headers are), true pointing, rotation, pixel scale, shape,
binning, seeing, sky level, zero point, the target, hot pixels and cosmic rays.
"""

from __future__ import annotations

import functools
import math

import astropy.units as u
import erfa
import numpy as np
from astropy.table import Table, vstack
from astropy.time import Time

from ..config import load_station
from ..model import Frame, FrameMeta
from . import render, satellites, scene

COSMIC_RAYS_PER_S = 0.3  # on the whole chip: ~1.3 /cm^2/min at sea level on a ~14 cm^2 sensor


def _unit(ra_deg, dec_deg):
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)


def _rotation_between(a, b):
    """Smallest rotation matrix taking unit vector ``a`` onto unit vector ``b`` (Rodrigues)."""
    v = np.cross(a, b)
    s, c = np.linalg.norm(v), float(np.dot(a, b))
    if s < 1e-15:
        return np.eye(3)
    k = v / s
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + s * K + (1 - c) * K @ K


def frame_geometry(station, *, binning=None, shape=None):
    """Binning, image shape (ny, nx), binned chip shape and pixel scale (arcsec/px) of a readout.

    Default binning brings the full chip to about 1024 px (fields of 2-3 deg); ``shape``
    reads a centred window of the binned chip instead of all of it.
    """
    cam = station.camera
    b = binning or max(1, cam["height_px"] // 1024)
    full = (cam["height_px"] // b, cam["width_px"] // b)
    scale = station.pixel_scale_arcsec / cam["binning"] * b
    shape = tuple(shape or full)
    if shape[0] > full[0] or shape[1] > full[1] or min(shape) < 1:
        raise ValueError(f"window {shape} does not fit the binned chip {full}")
    return b, shape, full, scale


@functools.cache
def _satrec_array(lines: tuple):
    from sgp4.api import Satrec, SatrecArray

    return SatrecArray([Satrec.twoline2rv(l1, l2) for l1, l2 in lines])


def candidate_satellites(tles, station, times: Time, ra_deg, dec_deg, radius_deg):
    """The TLEs that come within ``radius_deg`` of (ra, dec) at any of ``times`` (rough filter).

    Uses raw SGP4 with TEME taken as the true equator and equinox of date (arcsecond-level
    approximation, ample for a degree-wide filter); the truth itself comes from
    :mod:`.satellites`.
    """
    if not tles:
        return []
    arr = _satrec_array(tuple((t.line1, t.line2) for t in tles))
    times = Time(times, scale="utc")
    err, r, _ = arr.sgp4(times.jd1, times.jd2)  # (nsat, nt, 3) TEME km
    tt = times[len(times) // 2].tt
    to_gcrs = erfa.pnm06a(tt.jd1, tt.jd2).T
    obs = station.location.get_gcrs_posvel(times)[0].xyz.to_value(u.km).T  # (nt, 3)
    topo = np.einsum("ij,stj->sti", to_gcrs, r) - obs[None]
    topo /= np.linalg.norm(topo, axis=2, keepdims=True)
    cos_sep = topo @ _unit(ra_deg, dec_deg)
    near = np.nanmax(np.where(err == 0, cos_sep, -1.0), axis=1) > math.cos(math.radians(radius_deg))
    return [t for t, keep in zip(tles, near) if keep]


class _Mount:
    """Where sky directions land on the detector at each sub-exposure instant."""

    def __init__(self, wcs, rotations):
        self.wcs = wcs
        self.rotations = rotations  # (k, 3, 3): sky at instant k -> sky at mid-exposure

    def pixels(self, ra_deg, dec_deg):
        """Pixel (x, y) of directions (n, k) at each instant k (arrays (n, k))."""
        ra, dec = np.atleast_2d(ra_deg), np.atleast_2d(dec_deg)
        u_ = _unit(ra, dec)  # (n, k, 3)
        back = np.einsum("kij,nkj->nki", self.rotations, u_)
        r2, d2 = satellites.radec_deg(back)
        x, y = scene.world_to_pixel(self.wcs, r2.ravel(), d2.ravel())
        return x.reshape(ra.shape), y.reshape(ra.shape)


def iso(t: Time) -> str:
    """ISO UTC string to the nanosecond (astropy's default of 3 decimals would cut sub-ms)."""
    t = Time(t, scale="utc", precision=9)
    return t.isot


def _times(t: Time, n: int) -> Time:
    """``n`` copies of ``t`` as a Time column that ECSV writes to the nanosecond."""
    col = t + np.zeros(n) * u.s
    col.precision = 9
    return col


def _instants(t_start, exposure_s, n_sub):
    return t_start + exposure_s * np.linspace(0.0, 1.0, n_sub + 1) * u.s


def simulate_frame(station, t_start, exposure_s, pointing_ra_deg=None, pointing_dec_deg=None, *,
                   tracking="sidereal", tles=(), target=None, seed=0, binning=None, shape=None,
                   rotation_deg=None, sip_corner_px=2.0, photometry=None, pointing_error_deg=0.15,
                   noise=True, artefacts=True, n_sub=8, transparency=1.0, faint=None, catalog=None,
                   catalogued=None):
    """Render one exposure and its truth.

    Parameters
    ----------
    station : str or Station
    t_start : Time or str
        True shutter-open instant (UTC). The returned meta carries t_start/t_mid/t_end; the
        header dialect writer applies the station's DATE-OBS convention and latency.
    exposure_s : float
    pointing_ra_deg, pointing_dec_deg : float
        True boresight (ICRS, deg) at mid-exposure; for rate-tracked frames, default: the
        target's position at mid-exposure.
    tracking : 'sidereal' or 'rate'
    tles : list of :class:`~aposos.simulate.tles.Tle`
        The objects in the sky (the truth orbits).
    target : Tle or None
        Object the mount follows (``tracking='rate'``) or is aimed at; rendered even when it
        is not in ``tles``.
    catalogued : set of int or None
        NORAD numbers of the published TLE catalog (the truth column ``in_catalog``);
        default: every object of ``tles``.
    seed : int
        Seeds the rotation, pointing error, sky gradient, artefacts and noise.
    binning, shape : see :func:`frame_geometry`.
    sip_corner_px : float
        Size of the field distortion at the corners of the binned chip, px (0 for a pure TAN
        frame); a window sees the part of it within its own corners.
    noise : bool
        False returns the expected image in ADU (electrons / gain): no bias, noise,
        saturation or artefacts; for exact tests.
    transparency : float
        1 clear; small values make a cloudy (bad) frame.

    Returns
    -------
    (Frame, Table)
    """
    st = load_station(station)
    rng = np.random.default_rng(seed)
    phot = photometry or scene.Photometry(aperture_mm=st.telescope["aperture_mm"])
    b, shp, chip, scale = frame_geometry(st, binning=binning, shape=shape)
    t0 = Time(t_start, scale="utc")
    t_mid, t_end = t0 + exposure_s / 2 * u.s, t0 + exposure_s * u.s
    instants = _instants(t0, exposure_s, n_sub)
    if tracking not in ("sidereal", "rate"):
        raise ValueError(f"tracking must be 'sidereal' or 'rate', not {tracking!r}")
    if target is None and (tracking == "rate" or pointing_ra_deg is None or pointing_dec_deg is None):
        raise ValueError("give a pointing, or a target to aim at (a rate-tracked frame needs a target)")

    target_mid = None if target is None else satellites.observe(target, st, t_mid)
    if pointing_ra_deg is None:
        pointing_ra_deg, pointing_dec_deg = float(target_mid["ra_deg"][0]), float(target_mid["dec_deg"][0])
    rotations = _mount_rotations(target, st, instants, target_mid) if tracking == "rate" \
        else np.repeat(np.eye(3)[None], len(instants), axis=0)
    rotation_deg = float(rng.uniform(-3, 3)) if rotation_deg is None else rotation_deg
    wcs = scene.frame_wcs(pointing_ra_deg, pointing_dec_deg, shp, scale, rotation_deg=rotation_deg,
                          parity=st.telescope["parity"], sip_corner_px=sip_corner_px, chip_shape=chip, seed=seed)
    mount = _Mount(wcs, rotations)
    fwhm_px = phot.fwhm_arcsec / scale
    sweep_deg = _sweep_deg(rotations)

    image = np.zeros(shp)
    truth = _stars(image, mount, st, shp, t_mid, exposure_s, phot, fwhm_px, transparency, tracking,
                   sweep_deg / (scale / 3600.0), faint, catalog, t0, t_end)
    radius = scene.field_radius_deg(wcs, shp) + sweep_deg + 0.5
    sats = candidate_satellites(list(tles), st, Time(np.linspace(t0.jd, t_end.jd, 21), format="jd", scale="utc"),
                                pointing_ra_deg, pointing_dec_deg, radius)
    if target is not None and target.norad not in {t.norad for t in sats}:
        sats.append(target)
    catalogued = {t.norad for t in tles} if catalogued is None else set(catalogued)
    sat_rows = _satellites(image, mount, st, sats, catalogued, instants, t_mid, exposure_s, phot, fwhm_px,
                           transparency, shp)
    if sat_rows is not None:
        truth = vstack([truth, sat_rows])

    sky_e = phot.sky_e_per_px(scale, exposure_s)
    data, artefact_truth = _camera_output(image, st, chip, b, sky_e, exposure_s, rng, noise, artefacts)
    meta = _frame_meta(st, t0, t_mid, t_end, exposure_s, tracking, target, target_mid, b,
                       _pointing_hint(pointing_ra_deg, pointing_dec_deg, pointing_error_deg, rng))
    truth.meta.update({
        "station": st.name, "t_start": iso(t0), "t_mid": iso(t_mid), "t_end": iso(t_end), "exposure_s": exposure_s,
        "tracking": tracking, "pointing_ra_deg": float(pointing_ra_deg), "pointing_dec_deg": float(pointing_dec_deg),
        "rotation_deg": rotation_deg, "parity": st.telescope["parity"], "pixel_scale_arcsec": scale,
        "shape": list(shp), "binning": b, "fwhm_px": fwhm_px, "sky_e_per_px": sky_e,
        "zero_point_e_s": phot.zero_point_e_s, "transparency": transparency, "seed": seed,
        "target": None if target is None else target.norad,
        "wcs": {k: v for k, v in wcs.to_header(relax=True).items() if k not in ("COMMENT", "HISTORY", "")},
        **artefact_truth,
    })
    return Frame(data=data, meta=meta), truth


def _mount_rotations(target, st, instants, target_mid):
    """(k, 3, 3) rotations taking the sky at each instant to the sky at mid-exposure for a mount
    following ``target`` (the smallest rotation carrying the target onto its mid-exposure place)."""
    obs = satellites.observe(target, st, instants)
    u_mid = _unit(target_mid["ra_deg"][0], target_mid["dec_deg"][0])
    return np.stack([_rotation_between(uk, u_mid) for uk in _unit(obs["ra_deg"], obs["dec_deg"])])


def _sweep_deg(rotations):
    """Angle (deg) the sky turns on the detector between shutter open and close."""
    cos = (np.trace(rotations[0] @ rotations[-1].T) - 1.0) / 2.0
    return math.degrees(math.acos(float(np.clip(cos, -1, 1))))


def _camera_output(image, st, chip, b, sky_e, exposure_s, rng, noise, artefacts):
    """ADU image from the expected electrons: sky and dark, artefacts, noise, bias, saturation.

    Returns ``(data, artefact_truth)``; ``noise=False`` gives electrons / gain and nothing else.
    """
    cam = st.camera
    if not noise:
        return (image / cam["gain_e_per_adu"]).astype(np.float32), {}
    ny, nx = image.shape
    grad = rng.normal(0, 0.1 * sky_e / max(nx, ny), 2)
    image += render.sky(image.shape, sky_e, tuple(grad)) + cam["dark_e_per_s"] * exposure_s * b * b
    truth = {}
    if artefacts:
        hy, hx = render.add_hot_pixels(image, max(1, int(2e-5 * nx * ny)), 3000.0, rng)
        window = nx * ny / (chip[0] * chip[1])
        cr = render.add_cosmic_rays(image, rng.poisson(COSMIC_RAYS_PER_S * exposure_s * window), rng)
        truth = {"hot_pixels_yx": [[int(a), int(c)] for a, c in zip(hy, hx)],
                 "cosmic_rays_xy": [[float(a), float(c)] for a, c in zip(cr["x"], cr["y"])]}
    data = render.expose(image, gain_e_per_adu=cam["gain_e_per_adu"], read_noise_e=cam["read_noise_e"],
                         bias_adu=cam["bias_adu"], saturation_adu=cam["saturation_adu"], rng=rng)
    return np.round(data), truth  # the camera's ADC gives whole numbers


def _pointing_hint(ra_deg, dec_deg, error_deg, rng):
    """What the mount reports: the true boresight off by ``error_deg`` (1 sigma per axis)."""
    err = rng.normal(0, error_deg, 2) if error_deg else np.zeros(2)
    dec = float(np.clip(dec_deg + err[1], -90, 90))
    return float((ra_deg + err[0] / max(math.cos(math.radians(dec)), 1e-3)) % 360), dec


def _frame_meta(st, t0, t_mid, t_end, exposure_s, tracking, target, target_mid, binning, hint):
    cam = st.camera
    rates = (None, None)
    if tracking == "rate":
        rates = (float(target_mid["rate_ra_arcsec_s"][0]), float(target_mid["rate_dec_arcsec_s"][0]))
    return FrameMeta(path="", station=st.name, t_start=t0, t_mid=t_mid, t_end=t_end, exposure_s=float(exposure_s),
                     image_type="science", tracking=tracking, rate_ra_arcsec_s=rates[0], rate_dec_arcsec_s=rates[1],
                     pointing_ra_deg=hint[0], pointing_dec_deg=hint[1], gain_e_per_adu=cam["gain_e_per_adu"],
                     read_noise_e=cam["read_noise_e"], saturation_adu=cam["saturation_adu"], binning=binning,
                     object_id=None if target is None else str(target.norad), site_lat_deg=st.lat_deg,
                     site_lon_deg=st.lon_deg, site_height_m=st.height_m, filter="CLEAR",
                     time_flags={"gps_lock": True, "gps_satellites": 9} if st.timing["time_source"] == "GPS" else {})


def _empty_moving_columns(n):
    nan = np.full(n, np.nan)
    return {"range_km": nan, "alt_deg": nan.copy(), "lit": nan.copy(), "rate_ra_arcsec_s": nan.copy(),
            "rate_dec_arcsec_s": nan.copy()}


def _stars(image, mount, st, shp, t_mid, exposure_s, phot, fwhm_px, transparency, tracking, sweep_px, faint,
           catalog, t0, t1):
    ny, nx = shp
    stars = scene.stars_in_field(mount.wcs, shp, t_mid, catalog=catalog, margin_px=30.0 + sweep_px, faint=faint)
    n = len(stars)
    flux = phot.flux_e(stars["mag"], exposure_s) * transparency
    k = mount.rotations.shape[0]
    if tracking == "sidereal":
        x = np.repeat(np.asarray(stars["x"])[:, None], k, axis=1)
        y = np.repeat(np.asarray(stars["y"])[:, None], k, axis=1)
        render.add_points(image, stars["x"], stars["y"], flux, fwhm_px)
    else:
        x, y = mount.pixels(np.repeat(np.asarray(stars["ra"])[:, None], k, axis=1),
                            np.repeat(np.asarray(stars["dec"])[:, None], k, axis=1))
        render.add_polylines(image, x, y, flux[:, None] / (k - 1), fwhm_px, step_px=0.25)
    on = _on_image(x, y, nx, ny)
    cols = {"kind": np.asarray(stars["kind"]), "id": np.asarray(stars["source_id"], np.int64),
            "x": np.asarray(stars["x"], float), "y": np.asarray(stars["y"], float),
            "ra_deg": np.asarray(stars["ra"]), "dec_deg": np.asarray(stars["dec"]),
            "time": _times(t_mid, n), "flux_e": flux,
            "mag": np.asarray(stars["mag"]), "in_catalog": np.asarray(stars["in_catalog"]),
            "x0": x[:, 0], "y0": y[:, 0], "x1": x[:, -1], "y1": y[:, -1],
            "t0": _times(t0, n), "t1": _times(t1, n),
            "ra0_deg": np.asarray(stars["ra"]), "dec0_deg": np.asarray(stars["dec"]),
            "ra1_deg": np.asarray(stars["ra"]), "dec1_deg": np.asarray(stars["dec"]),
            **_empty_moving_columns(n), "on_image": on}
    return Table(cols)


def _on_image(x, y, nx, ny):
    """Whether each path (vertices (n, k) px) touches the detector (sampled every 1/32 segment)."""
    if x.shape[1] == 1:
        return (x[:, 0] >= -0.5) & (x[:, 0] <= nx - 0.5) & (y[:, 0] >= -0.5) & (y[:, 0] <= ny - 0.5)
    f = np.linspace(0, 1, 33)
    n = (x.shape[1] - 1) * len(f)
    xs = (x[:, :-1, None] + f * (x[:, 1:, None] - x[:, :-1, None])).reshape(len(x), n)
    ys = (y[:, :-1, None] + f * (y[:, 1:, None] - y[:, :-1, None])).reshape(len(y), n)
    return ((xs >= -0.5) & (xs <= nx - 0.5) & (ys >= -0.5) & (ys <= ny - 0.5)).any(axis=1)


def _satellites(image, mount, st, sats, norads, instants, t_mid, exposure_s, phot, fwhm_px, transparency, shp):
    ny, nx = shp
    rows = []
    for tle in sats:
        o = satellites.observe(tle, st, instants)
        if np.all(o["alt_deg"] < 0):
            continue
        mid = satellites.observe(tle, st, t_mid)
        x, y = mount.pixels(o["ra_deg"][None], o["dec_deg"][None])
        xm, ym = scene.world_to_pixel(mount.wcs, mid["ra_deg"], mid["dec_deg"])  # the mount's reference instant
        # electrons per unit time at each instant -> per sub-segment (trapezoid)
        rate_e = phot.flux_e(o["mag"], 1.0) * transparency * (o["alt_deg"] > 0)
        dt = exposure_s / (len(instants) - 1)
        seg = 0.5 * (rate_e[1:] + rate_e[:-1]) * dt
        on = bool(_on_image(x, y, nx, ny)[0])
        if on and seg.sum() > 0:
            render.add_polylines(image, x, y, seg[None], fwhm_px, step_px=0.25)
        rows.append({"kind": "satellite", "id": tle.norad, "x": xm[0], "y": ym[0],
                     "ra_deg": mid["ra_deg"][0], "dec_deg": mid["dec_deg"][0],
                     "flux_e": float(seg.sum()), "mag": float(mid["mag"][0]), "in_catalog": tle.norad in norads,
                     "x0": x[0, 0], "y0": y[0, 0], "x1": x[0, -1], "y1": y[0, -1],
                     "ra0_deg": o["ra_deg"][0], "dec0_deg": o["dec_deg"][0], "ra1_deg": o["ra_deg"][-1],
                     "dec1_deg": o["dec_deg"][-1], "range_km": mid["range_km"][0], "alt_deg": mid["alt_deg"][0],
                     "lit": mid["lit"][0], "rate_ra_arcsec_s": mid["rate_ra_arcsec_s"][0],
                     "rate_dec_arcsec_s": mid["rate_dec_arcsec_s"][0], "on_image": on})
    if not rows:
        return None
    t = Table(rows=rows)
    n = len(t)
    t.add_column(_times(t_mid, n), name="time", index=6)
    t.add_column(_times(instants[0], n), name="t0", index=t.colnames.index("y1") + 1)
    t.add_column(_times(instants[-1], n), name="t1", index=t.colnames.index("t0") + 1)
    t["kind"] = t["kind"].astype("U10")
    return t
