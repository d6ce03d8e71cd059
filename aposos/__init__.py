"""aposos: the reduction pipeline of APOSOS (APSCO ground-based optical space object observation).

Importing the package configures astropy and skyfield for offline use (see :mod:`aposos.earth`).
"""

from . import earth  # noqa: F401  (configures offline IERS at import)
from .errors import AposError

__version__ = "0.1.0"

__all__ = ["AposError", "__version__"]
