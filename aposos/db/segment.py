"""Segment files: the immutable HDF5 files a store is made of.

A segment holds the rows of one commit (or of a compaction of many) as one HDF5 group per
table and one dataset per column. Datasets are *contiguous and uncompressed* on purpose: a
segment is never modified after it is published, so a reader maps each large column straight
from the file (``numpy.memmap`` at the dataset's offset) and reads any set of rows at page
cost, with no chunk to decompress and no HDF5 call per lookup. Inside a segment:

* ``frames`` are sorted by (t_start_ns, frame_uid); tracklets, memberships and correlations
  by tracklet_id, unseen by frame_uid (:data:`SORTED_BY`), for binary search;
* ``observations`` are grouped by frame in that same order (``frames.obs_start/obs_count``
  locate them), by ``obs_index`` within a frame, so a time range is one contiguous slice;
* ``/_index/observations/tracklet_id/{sorted,perm}`` is a sorted copy of the tracklet column
  and the row permutation, so the observations of a set of tracklets are found by binary
  search.

Segments are written to a temporary name, fsync'ed and renamed into place by the store
(:mod:`aposos.db.store`), which alone makes them visible through its manifest.
"""

from __future__ import annotations

import os

import h5py
import numpy as np

from . import schema
from ..errors import AposError

#: Columns smaller than this (bytes) are read into memory; larger ones are memory-mapped.
MMAP_MIN_BYTES = 1 << 16


def fsync_path(path) -> None:
    """fsync a file or a directory by path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


#: Tables sorted by a key inside every segment (then by commit_seq).
SORTED_BY = {"tracklets": "tracklet_id", "tracklet_obs": "tracklet_id",
             "correlations": "tracklet_id", "unseen": "frame_uid"}


def arrange(tables: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The rows of one segment in segment order, with ``frames.obs_start/obs_count`` set.

    Every observation must belong to a frame of the same segment (the store guarantees it).
    """
    frames = tables.get("frames", schema.empty("frames"))
    frames = frames[np.lexsort((frames["frame_uid"], frames["t_start_ns"]))]
    obs = tables.get("observations", schema.empty("observations"))
    if len(obs):
        order_of_frame = np.argsort(frames["frame_uid"], kind="stable")
        pos = np.searchsorted(frames["frame_uid"], obs["frame_uid"], sorter=order_of_frame)
        pos = order_of_frame[np.minimum(pos, len(frames) - 1)]
        if len(frames) == 0 or np.any(frames["frame_uid"][pos] != obs["frame_uid"]):
            raise AposError("observations without their frame in the same commit",
                            key="observations.frame_uid")
        obs = obs[np.lexsort((obs["obs_index"], pos))]
        counts = np.bincount(pos, minlength=len(frames))
    else:
        counts = np.zeros(len(frames), np.int64)
    frames = frames.copy()
    frames["obs_count"] = counts
    frames["obs_start"] = np.cumsum(counts) - counts
    out = dict(tables)
    out["frames"] = frames
    out["observations"] = obs
    for table, key in SORTED_BY.items():  # so that lookups by key are binary searches
        rows = out.get(table)
        if rows is not None and len(rows):
            out[table] = rows[np.lexsort((rows["commit_seq"], rows[key]))]
    return out


_INDEX = "_index/observations/tracklet_id"


def write(path, tables: dict[str, np.ndarray], attrs: dict) -> dict[str, int]:
    """Write ``tables`` (already :func:`arrange`-d) to a new HDF5 file at ``path``, fsync it,
    and return its table of contents: {"table/column": byte offset of the raw data}."""
    toc = {}

    def column(group, table, name, data):  # contiguous: its offset is fixed once written
        toc[f"{table}/{name}"] = int(group.create_dataset(name, data=data).id.get_offset())

    with h5py.File(path, "w", libver="latest") as f:
        f.attrs["format"] = schema.FORMAT_NAME + " segment"
        f.attrs["schema_version"] = schema.SCHEMA_VERSION
        for k, v in attrs.items():
            f.attrs[k] = v
        for table, rows in tables.items():
            if not len(rows):
                continue
            g = f.create_group(table)
            for name in rows.dtype.names:
                column(g, table, name, np.ascontiguousarray(rows[name]))
        obs = tables.get("observations")
        if obs is not None and len(obs):
            perm = np.argsort(obs["tracklet_id"], kind="stable")
            g = f.create_group(_INDEX)
            column(g, _INDEX, "sorted", obs["tracklet_id"][perm])
            column(g, _INDEX, "perm", perm.astype(np.int64))
    fsync_path(path)
    return toc


def _column(path, ds):
    """A dataset's values: memory-mapped when large and contiguous, else read."""
    if ds.shape[0] == 0:
        return np.zeros(ds.shape, ds.dtype)
    offset = ds.id.get_offset()
    if ds.nbytes < MMAP_MIN_BYTES or offset is None or ds.chunks is not None:
        return ds[()]
    return np.memmap(path, dtype=ds.dtype, mode="r", offset=offset, shape=ds.shape)


class Segment:
    """A published segment opened for reading.

    ``cols[table][column]`` gives every column (memory-mapped when large, else in memory),
    located through the table of contents the manifest keeps for the segment (``entry``), or
    through h5py when there is none;
    ``tracklet_sorted`` / ``tracklet_perm`` the tracklet index of the observations. The HDF5
    file is closed after opening: the maps keep the data reachable even if a compaction
    removes the file meanwhile.
    """

    def __init__(self, path, name: str, entry: dict | None = None):
        self.path = os.fspath(path)
        self.name = name
        if entry is not None and "toc" in entry:
            self._map(entry)
        else:
            self._read_hdf5()
        self.obs = self.cols["observations"]
        self.n_obs = self.nrows("observations")

    def _map(self, entry: dict) -> None:
        """Columns straight from the file at the offsets of the manifest's table of contents
        (no HDF5 call: a small segment is read in one go, a large one memory-mapped)."""
        toc, rows = entry["toc"], entry["rows"]
        size = entry["size"]
        with open(self.path, "rb") as fh:
            if fh.read(8) != b"\x89HDF\r\n\x1a\n":
                raise AposError("not an HDF5 file", path=self.path)
            fh.seek(0)
            data = fh.read() if size <= (4 << 20) else None

        def column(key, dt, n):
            dt = np.dtype(dt)
            if n == 0:
                return np.zeros((0,) + dt.shape, dt.base)
            if data is not None:
                return np.frombuffer(data, dt.base, n * max(1, int(np.prod(dt.shape))),
                                     toc[key]).reshape((n,) + dt.shape)
            return np.memmap(self.path, dtype=dt.base, mode="r", offset=toc[key],
                             shape=(n,) + dt.shape)

        self.cols = {t: {name: column(f"{t}/{name}", dt, rows.get(t, 0)) for name, dt in cols}
                     for t, cols in schema.TABLES.items()}
        n = rows.get("observations", 0)
        self.tracklet_sorted = column(_INDEX + "/sorted", "i8", n)
        self.tracklet_perm = column(_INDEX + "/perm", "i8", n)

    def _read_hdf5(self) -> None:
        """Columns read through h5py (for segments without a table of contents)."""
        try:
            f = h5py.File(self.path, "r")
        except OSError as exc:
            if not os.path.exists(self.path):
                raise FileNotFoundError(self.path) from exc
            raise AposError(f"segment is not a readable HDF5 file ({exc})", path=self.path) from exc
        with f:
            if f.attrs.get("format") != schema.FORMAT_NAME + " segment":
                raise AposError("not an aposos store segment", path=self.path)
            version = int(f.attrs.get("schema_version", -1))
            if version > schema.SCHEMA_VERSION:
                raise AposError(f"segment has schema version {version}, newer than this "
                                f"aposos understands ({schema.SCHEMA_VERSION}); upgrade aposos",
                                path=self.path)
            self.cols = {}
            for table, columns in schema.TABLES.items():
                g = f.get(table)
                self.cols[table] = {
                    name: (_column(self.path, g[name]) if g is not None
                           else np.zeros((0,) + np.dtype(dt).shape, np.dtype(dt).base))
                    for name, dt in columns}
            ix = f.get(_INDEX)
            self.tracklet_sorted = _column(self.path, ix["sorted"]) if ix else np.zeros(0, "i8")
            self.tracklet_perm = _column(self.path, ix["perm"]) if ix else np.zeros(0, "i8")

    def nrows(self, table: str) -> int:
        return len(self.cols[table][schema.TABLES[table][0][0]])

    def table(self, table: str, rows=None) -> np.ndarray:
        """Structured rows of ``table`` (all, or at positions / slice ``rows``)."""
        if rows is None:
            rows = slice(None)
        cols = self.cols[table]
        first = cols[schema.TABLES[table][0][0]][rows]
        out = np.empty(len(first), schema.dtype(table))
        for name in out.dtype.names:
            out[name] = cols[name][rows]
        return out

    def observation_rows(self, rows) -> np.ndarray:
        """Structured observation rows at positions ``rows`` (sorted for page locality)."""
        return self.table("observations", np.asarray(rows, dtype=np.int64))

    def observation_slice(self, start: int, stop: int) -> np.ndarray:
        """Structured observation rows ``start:stop``."""
        return self.table("observations", slice(start, stop))
