"""Synthetic frames and nights with truth tables (the forward model that tests rely on).

:mod:`aposos.simulate.render` renders pixels (PSF, streaks, sky, noise, artefacts).
"""
