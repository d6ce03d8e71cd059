"""Detection of point sources and streaks in one frame (numba kernels).

``detect(image, mode='sidereal'|'rate', **config) -> Sources`` runs the whole chain; its pieces
are public too: :func:`background`, :func:`significance`, :func:`label`, :func:`measure`,
:func:`fit_streaks`. Flag bits of the ``flags`` column: see :data:`FLAG_NAMES`.
"""

from .background import Background, background
from .label import label
from .measure import measure
from .significance import significance
from .sources import COLUMNS, DEFAULTS, FLAG_NAMES, detect
from .streaks import fit_streaks

__all__ = ["Background", "COLUMNS", "DEFAULTS", "FLAG_NAMES", "background", "detect",
           "fit_streaks", "label", "measure", "significance"]
