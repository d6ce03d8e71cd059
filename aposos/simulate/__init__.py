"""Synthetic frames and nights with truth tables (the forward model that tests rely on).

One idea per module:

* :mod:`~aposos.simulate.tles`: synthetic TLE catalogs (LEO/MEO/GEO/HEO mix), designed
  objects, aged TLEs, catalogs with objects removed.
* :mod:`~aposos.simulate.satellites`: truth directions of satellites (skyfield path, light
  time, star-relative aberration), Earth shadow, phase, brightness, rates.
* :mod:`~aposos.simulate.scene`: frame geometry (TAN + SIP WCS), catalog and faint stars,
  photometry.
* :mod:`~aposos.simulate.render`: pixels (PSF, streaks, sky, noise, artefacts).
* :mod:`~aposos.simulate.frames`: :func:`simulate_frame` -> (Frame, truth table).
* :mod:`~aposos.simulate.night`: the sample night written in the stations' dialects.
* :mod:`~aposos.simulate.cli`: ``aposos simulate``.
"""
