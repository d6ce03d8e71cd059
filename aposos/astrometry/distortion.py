"""A night's camera distortion, learnt from well-populated frames and lent to sparse ones.

A sparse field (10-20 catalog stars) cannot fit a cubic distortion and may be ~1 px off in a
corner; the optics are the same all night. :class:`DistortionCache` keeps, per camera setup
(station, binning, image shape), the SIP distortion of the best solution seen so far, and
:func:`aposos.astrometry.solve` uses and feeds it when given as ``distortion=``::

    cache = DistortionCache()
    for frame, sources in frames:
        sol = solve(frame, sources, distortion=cache)   # or solve_config={"distortion": cache}

Each accepted solution with a SIP model (order >= 2), at least ``min_stars`` stars and
``min_coverage`` of the frame inside its stars' hull is offered; the one with the most stars is
kept. A frame then gets the candidate model "cached distortion + linear plate" (6 parameters);
the held-out residuals still choose between it and the frame's own models, so a wrong or
missing entry costs nothing but the extra candidate. The cache is per process (a pipeline
running frames in several worker processes fills one per worker; prime it with :meth:`offer`
from a rich frame, or pass a fixed WCS instead, to share one distortion).
"""

from __future__ import annotations

from dataclasses import dataclass, field


def camera_key(frame) -> tuple:
    """(station, binning, shape): frames with the same key share their distortion."""
    meta = frame.meta
    return (meta.station or "", int(meta.binning or 1), tuple(frame.shape))


@dataclass
class DistortionCache:
    """Best SIP distortion per camera setup (see the module docstring).

    min_stars : fewest matched stars for a solution to be kept.
    min_coverage : least fraction of the frame inside the convex hull of its stars.
    entries : {camera_key: PlateSolution} (read-only use; :meth:`offer` fills it).
    """

    min_stars: int = 40
    min_coverage: float = 0.6
    entries: dict = field(default_factory=dict)

    def get(self, frame):
        """The cached solution (usable as ``distortion=``) for this frame's camera, or None."""
        return self.entries.get(camera_key(frame))

    def offer(self, frame, solution) -> bool:
        """Keep ``solution``'s distortion if it qualifies and beats the current entry; True if kept."""
        if not getattr(solution, "accepted", False) or solution.sip_order < 2 or "prior-SIP" in solution.model:
            return False
        if solution.n_matched < self.min_stars or solution.coverage < self.min_coverage:
            return False
        key = camera_key(frame)
        best = self.entries.get(key)
        if best is not None and best.n_matched >= solution.n_matched:
            return False
        self.entries[key] = solution
        return True
