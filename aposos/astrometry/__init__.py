"""Astrometry: plate solving against the offline star catalog, and star-relative positions.

* :func:`solve` (``frame, sources, catalog=None, **config`` -> :class:`PlateSolution`): quad
  matching around the header pointing, TAN + SIP fit with the order chosen by held-out residuals, outlier
  clipping, likelihood-ratio acceptance; scale search and blind tile search as fallbacks.
* :class:`DistortionCache`: a night's camera distortion from rich frames, lent to sparse ones
  (``solve(..., distortion=cache)``).
* :func:`measure` (``frame, sources, solution`` -> Observations table): RA/Dec with UTC time
  tags and uncertainties for every non-stellar candidate.

Pixels are 0-based (aposos convention); the WCS in a solution is FITS-standard, so call it with
origin 0 (``wcs.pixel_to_world_values``). Positions are star-relative ICRF (annual aberration
removed by the plate, see ``shared/docs/astro-notes.md``).
"""

from .distortion import DistortionCache
from .observations import measure
from .solver import PlateSolution, SolveConfig, solve

__all__ = ["solve", "measure", "PlateSolution", "SolveConfig", "DistortionCache"]
