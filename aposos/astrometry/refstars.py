"""Reference stars for a field: a cone of the offline catalog at the frame epoch.

The catalog is an :class:`aposos.catalog.StarCatalog` (default :func:`aposos.catalog.gaia`,
Gaia DR3 G < 10, no proper motion; a user catalog with ``pmra``/``pmdec`` is moved to the
frame epoch by :meth:`StarCatalog.cone`). Known fast movers of a catalog without motions are
dropped: their positions can be tens of arcsec off.
"""

from __future__ import annotations

import numpy as np
from astropy.table import Table

from ..catalog import StarCatalog, gaia
from .tangent import project


def default_catalog() -> StarCatalog:
    return gaia()


def reference_stars(catalog: StarCatalog | None, ra_deg: float, dec_deg: float, radius_deg: float,
                    epoch=None, mag_limit: float = np.inf, max_stars: int = 20000) -> Table:
    """Catalog stars within ``radius_deg`` of (ra, dec), brightest first, at ``epoch``.

    Columns as :meth:`StarCatalog.cone` (``source_id, ra, dec, mag, fast_mover``); fast movers
    of a catalog without proper motion are removed; at most ``max_stars`` (brightest) kept.
    """
    cat = default_catalog() if catalog is None else catalog
    t = cat.cone(ra_deg, dec_deg, min(radius_deg, 180.0), mag_limit=mag_limit, epoch=epoch)
    if not cat.has_proper_motion and len(t):
        t = t[~np.asarray(t["fast_mover"], bool)]
    return t[:max_stars]


def unblended(ra_deg, dec_deg, mag, radius_deg: float, centre, dmag: float = 2.5) -> np.ndarray:
    """Mask of stars with no catalog neighbour within ``radius_deg`` brighter than mag + dmag.

    ``centre`` (ra, dec deg) is the tangent point used for distances. Such pairs merge into one image blob whose centroid sits between the two stars.
    """
    from scipy.spatial import cKDTree

    n = len(ra_deg)
    ok = np.ones(n, bool)
    if n < 2:
        return ok
    xi, eta = project(ra_deg, dec_deg, *centre)
    good = np.isfinite(xi)
    pts = np.stack([np.where(good, xi, 1e6), np.where(good, eta, 1e6)], -1)
    for i, j in cKDTree(pts).query_pairs(radius_deg, output_type="ndarray"):
        if mag[j] < mag[i] + dmag:
            ok[i] = False
        if mag[i] < mag[j] + dmag:
            ok[j] = False
    return ok
