"""Detection of point sources and streaks in one frame (numba kernels).

``detect(image, mode='sidereal'|'rate', **config) -> Sources`` runs the whole chain; its pieces
are public too: :func:`background`, :func:`significance`, :func:`label`, :func:`measure`,
:func:`fit_streaks`. Flag bits of the ``flags`` column: see :data:`FLAG_NAMES`.
"""

import os

# Numba's OpenMP threads spin while waiting by default; on a machine shared with other work
# (2 cores, many processes) that makes parallel kernels slower than serial ones. Passive
# waiting must be set before the OpenMP runtime loads (first parallel kernel call).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .background import Background, background  # noqa: E402
from .label import label  # noqa: E402
from .measure import measure  # noqa: E402
from .significance import significance  # noqa: E402
from .sources import COLUMNS, DEFAULTS, FLAG_NAMES, detect  # noqa: E402
from .streaks import fit_streaks  # noqa: E402

__all__ = ["Background", "COLUMNS", "DEFAULTS", "FLAG_NAMES", "background", "detect",
           "fit_streaks", "label", "measure", "significance"]
