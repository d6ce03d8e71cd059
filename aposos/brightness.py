"""Predicted brightness of catalog objects and the limiting magnitude of a frame.

Used to decide which objects predicted in a field were *bright enough* to be detected
(:func:`bright_enough`), for the pipeline's list of catalog objects that were not seen.

**Object** (:func:`sphere_mag`): a diffuse (Lambertian) sphere of radius ``R`` and Bond albedo
``A`` at range ``d`` and solar phase angle ``a``:
``F / F_sun = p (R / d)^2 phi(a)``, geometric albedo ``p = 2 A / 3``, Lambert phase law
``phi(a) = (sin a + (pi - a) cos a) / pi``, ``V = V_sun - 2.5 log10(F / F_sun)`` with
``V_sun = -26.74``. TLE catalogs carry no size: the default is a *standard object*, a sphere
of radius :data:`STANDARD_RADIUS_M` (1 m) and albedo :data:`STANDARD_ALBEDO` (0.2): V = 6.7 at
1000 km and 90 deg phase (the usual "standard magnitude" convention), 5.5 at full phase; at
GEO range (37,000 km) 13.3 at full phase, 14.5 at 90 deg. Pass the object's own radius and
albedo where known. Eclipsed objects (not sunlit) are ``inf``.

**Frame** (:func:`limiting_mag`): the magnitude of a point source detected at ``snr_limit``
(5). The photometric zero point is the median of ``catalog mag + 2.5 log10(flux)`` over the
plate solution's matched stars; the sky-limited flux error floor is the 10th percentile of
the point sources' ``flux_err`` (faint sources: the noise is the background's); the limit is
``zero_point - 2.5 log10(snr_limit * floor)``.

**Trailing** (:func:`trail_loss_mag`): an object moving ``L`` (arcsec) during the exposure
spreads its light over a streak of length ``L + w`` (``w`` the FWHM) instead of a point; a
matched filter in the sky-limited regime loses ``SNR ~ sqrt(w / (L + w))``:
``1.25 log10(1 + L / w)`` magnitudes.
"""

from __future__ import annotations

import numpy as np

SUN_V_MAG = -26.74
STANDARD_RADIUS_M = 1.0
STANDARD_ALBEDO = 0.2


def sphere_mag(range_km, phase_deg, radius_m=STANDARD_RADIUS_M, albedo=STANDARD_ALBEDO, sunlit=True):
    """Visual magnitude of a diffuse sphere (see the module docstring); ``inf`` where not sunlit."""
    a = np.radians(np.asarray(phase_deg, float))
    phi = (np.sin(a) + (np.pi - a) * np.cos(a)) / np.pi
    ratio = (2.0 / 3.0) * np.asarray(albedo) * (np.asarray(radius_m) / (np.asarray(range_km, float) * 1e3)) ** 2 * phi
    ok = np.asarray(sunlit, bool) & (ratio > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok, SUN_V_MAG - 2.5 * np.log10(np.where(ok, ratio, 1.0)), np.inf)


def limiting_mag(match_mag, match_flux, point_flux_err, snr_limit: float = 5.0) -> float:
    """Point-source limiting magnitude of a frame (see the module docstring); NaN without stars.

    ``match_mag``: catalog magnitudes of the matched stars, ``match_flux``: their fluxes (any
    unit, the same as ``point_flux_err``: flux errors of the frame's point sources).
    """
    m, f = np.asarray(match_mag, float), np.asarray(match_flux, float)
    ok = np.isfinite(m) & np.isfinite(f) & (f > 0)
    err = np.asarray(point_flux_err, float)
    err = err[np.isfinite(err) & (err > 0)]
    if ok.sum() < 3 or len(err) < 3:
        return float("nan")
    zero_point = np.median(m[ok] + 2.5 * np.log10(f[ok]))
    return float(zero_point - 2.5 * np.log10(snr_limit * np.percentile(err, 10)))


def trail_loss_mag(rate_arcsec_s, exposure_s, fwhm_arcsec):
    """Magnitudes lost by trailing ``rate * exposure`` arcsec over a ``fwhm_arcsec`` PSF."""
    length = np.abs(np.asarray(rate_arcsec_s, float)) * exposure_s
    return 1.25 * np.log10(1.0 + length / fwhm_arcsec)


def bright_enough(mag, rate_arcsec_s, exposure_s, fwhm_arcsec, limit_mag):
    """True where an object of magnitude ``mag`` moving at ``rate_arcsec_s`` (relative to the
    frame's tracking) should have been detected. An unknown limit (NaN) counts as bright enough,
    an unknown FWHM as no trailing loss."""
    eff = np.asarray(mag, float) + np.nan_to_num(trail_loss_mag(rate_arcsec_s, exposure_s, fwhm_arcsec), nan=0.0)
    return np.where(np.isfinite(limit_mag), eff <= limit_mag, np.isfinite(eff))


def frame_limiting_mag(sources, matches, snr_limit: float = 5.0) -> float:
    """:func:`limiting_mag` of a frame from its Sources table (:func:`aposos.detect.detect`) and
    its plate solution's ``matches`` (``source_index``, catalog ``mag``)."""
    if len(sources) == 0 or len(matches) == 0:
        return float("nan")
    flux = np.asarray(sources["flux"], float)
    point = np.asarray(sources["kind"]).astype(str) == "point"
    idx = np.asarray(matches["source_index"], int)
    return limiting_mag(np.asarray(matches["mag"], float), flux[idx], np.asarray(sources["flux_err"], float)[point],
                        snr_limit)
