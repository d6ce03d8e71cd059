"""The aposos observation database: a crash-safe, versioned HDF5 store.

See :mod:`aposos.db.store` (layout, crash safety, write API, partitioning plan),
:mod:`aposos.db.schema` (tables, keys, times) and :mod:`aposos.db.query` (queries).
"""

from .schema import SCHEMA_VERSION
from .rows import FrameRecord, content_hash
from .store import Store

__all__ = ["SCHEMA_VERSION", "FrameRecord", "Store", "content_hash"]
