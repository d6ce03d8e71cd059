"""Optional fallback: astrometry.net's blind solver for frames the hinted solver lost.

Used only when asked (``solve(..., fallback='astrometry.net')``) and when both the PyPI package
``astrometry`` and index files (Debian ``astrometry-data-tycho2``, /usr/share/astrometry) are
installed. Its WCS is never taken as is: it only proposes where the field is; the catalog stars
it predicts are matched to the sources, and the same false-alarm test, final TAN + SIP fit and
RMS checks as for the hinted solver decide (see :mod:`.solver`). On a frame with no real
stars (clouds, random sources) astrometry.net may search all its index files for minutes: it
is a fallback for lost frames with stars, not a default.
"""

from __future__ import annotations

import functools
import glob
import pathlib

import numpy as np

INDEX_GLOB = "/usr/share/astrometry/index-*.fits"


@functools.cache
def _solver():
    import astrometry

    files = sorted(glob.glob(INDEX_GLOB))
    if not files:
        raise FileNotFoundError(f"no astrometry.net index files at {INDEX_GLOB}")
    return astrometry.Solver([pathlib.Path(f) for f in files])


def available() -> str:
    """'' when the fallback can run, else the reason it cannot."""
    try:
        import astrometry  # noqa: F401
    except ImportError:
        return "PyPI package 'astrometry' not installed"
    if not glob.glob(INDEX_GLOB):
        return f"no index files at {INDEX_GLOB} (apt-get install astrometry-data-tycho2)"
    return ""


def propose_wcs(xy: np.ndarray, scale_arcsec_px: float, n_stars: int = 60, scale_range: float = 0.3):
    """Blind astrometry.net WCS for 0-based source positions ``xy`` (brightest first), or None.

    Centroids are passed 1-based (FITS) as astrometry.net expects; the returned astropy WCS is
    FITS-standard, so ``all_world2pix(..., 0)`` gives aposos' 0-based pixels.
    """
    import astrometry

    stars = (np.asarray(xy[:n_stars], float) + 1.0).tolist()
    sol = _solver().solve(
        stars=stars,
        size_hint=astrometry.SizeHint(lower_arcsec_per_pixel=(1 - scale_range) * scale_arcsec_px,
                                      upper_arcsec_per_pixel=(1 + scale_range) * scale_arcsec_px),
        position_hint=None,
        solution_parameters=astrometry.SolutionParameters(logodds_callback=lambda _: astrometry.Action.STOP))
    return sol.best_match().astropy_wcs() if sol.has_match() else None
