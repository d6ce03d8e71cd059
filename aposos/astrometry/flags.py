"""Bits of the Sources ``flags`` column (set by :func:`aposos.detect.detect`) as used here.

The values mirror ``aposos.detect.FLAG_NAMES``; the masks say which sources the astrometry
refuses as stars (:func:`aposos.astrometry.solve`), leaves out of the final plate fit, or
refuses as satellite candidates (:func:`aposos.astrometry.measure`).
"""

SATURATED = 1      # contains saturated pixels: centroid biased
EDGE = 2           # touches the frame edge (streak: an end at/beyond the edge)
BLENDED = 4        # several peaks in one object
SHARP = 8          # cosmic-ray hit or hot pixel
MASKED = 16        # contains masked pixels
MERGED = 32        # streak joined from pieces
STAR_TRAIL = 64    # rate mode: streak with the star-trail angle and length
FIT_FAILED = 128   # streak fit did not converge

#: never a star: artefacts
NOT_A_STAR = SHARP | MASKED | FIT_FAILED
#: stars that find the field but stay out of the final fit when enough clean ones remain
IMPRECISE = SATURATED | BLENDED | EDGE
#: never a satellite candidate
NOT_A_CANDIDATE = SHARP | MASKED | STAR_TRAIL | FIT_FAILED
