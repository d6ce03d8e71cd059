"""Gnomonic (TAN) projection of the sky onto the plane tangent at a point.

Standard coordinates ``(xi, eta)`` are in degrees: ``xi`` towards east (increasing RA),
``eta`` towards north, both zero at the tangent point. These are the "intermediate world
coordinates" of FITS WCS for a ``TAN`` projection, so ``(xi, eta) = CD @ (u, v)`` for a linear
plate (u, v pixel offsets from CRPIX).
"""

from __future__ import annotations

import numpy as np


def project(ra_deg, dec_deg, ra0_deg: float, dec0_deg: float):
    """Standard coordinates (deg) of (ra, dec) on the plane tangent at (ra0, dec0).

    Points more than 90 deg from the tangent point have no projection and come back NaN.
    """
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    ra0, dec0 = np.radians(ra0_deg), np.radians(dec0_deg)
    dra = ra - ra0
    cosd, sind = np.cos(dec), np.sin(dec)
    cos_c = np.sin(dec0) * sind + np.cos(dec0) * cosd * np.cos(dra)
    with np.errstate(divide="ignore", invalid="ignore"):
        cos_c = np.where(cos_c > 1e-9, cos_c, np.nan)
        xi = cosd * np.sin(dra) / cos_c
        eta = (np.cos(dec0) * sind - np.sin(dec0) * cosd * np.cos(dra)) / cos_c
    return np.degrees(xi), np.degrees(eta)


def deproject(xi_deg, eta_deg, ra0_deg: float, dec0_deg: float):
    """(ra, dec) in degrees of standard coordinates (deg) on the plane tangent at (ra0, dec0)."""
    xi, eta = np.radians(xi_deg), np.radians(eta_deg)
    ra0, dec0 = np.radians(ra0_deg), np.radians(dec0_deg)
    denom = np.cos(dec0) - eta * np.sin(dec0)
    ra = ra0 + np.arctan2(xi, denom)
    dec = np.arctan2(np.sin(dec0) + eta * np.cos(dec0), np.hypot(xi, denom))
    return np.mod(np.degrees(ra), 360.0), np.degrees(dec)


def separation_deg(ra1, dec1, ra2, dec2):
    """Great-circle separation (deg), Vincenty formula (exact at all distances)."""
    ra1, dec1, ra2, dec2 = map(np.radians, (ra1, dec1, ra2, dec2))
    dra = ra2 - ra1
    num = np.hypot(np.cos(dec2) * np.sin(dra),
                   np.cos(dec1) * np.sin(dec2) - np.sin(dec1) * np.cos(dec2) * np.cos(dra))
    den = np.sin(dec1) * np.sin(dec2) + np.cos(dec1) * np.cos(dec2) * np.cos(dra)
    return np.degrees(np.arctan2(num, den))
