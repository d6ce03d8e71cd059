"""Per-thread work arrays reused from one detection to the next.

A fresh frame-sized array costs its page faults and zeroing on first write (about 6-10 ms for a
4096 x 4096 float32 map, a tenth of the detection's kernels), and the batch detects frame
after frame of one size. :func:`kept` hands out arrays that stay with the calling thread and
are handed out again by the next request of the same name, so their pages are touched once.

Whatever a previous call left in a kept array is overwritten by the next one: a caller must
not hold a kept array (or a view of it) beyond its own call. Arrays larger than
``KEEP_MAX_BYTES`` are not kept (a 10k x 10k frame's buffers are allocated for each call).
A 4096 x 4096 frame's detection keeps about 100 MB per thread; :func:`release` frees them.
"""

from __future__ import annotations

import threading

import numpy as np

KEEP_MAX_BYTES = 128 << 20

_KEPT = threading.local()


def kept(name: str, shape, dtype=np.float32) -> np.ndarray:
    """An uninitialised array of ``shape`` and ``dtype``, this thread's ``name`` array.

    The array is reused (a view of it, if a larger one is kept) by the next call with the same
    ``name`` in the same thread; see the module's note on ownership.
    """
    shape = tuple(int(n) for n in np.atleast_1d(shape))
    dtype = np.dtype(dtype)
    size = int(np.prod(shape, dtype=np.int64))
    if size * dtype.itemsize > KEEP_MAX_BYTES:
        return np.empty(shape, dtype)
    store = getattr(_KEPT, "arrays", None)
    if store is None:
        store = _KEPT.arrays = {}
    flat = store.get(name)
    if flat is None or flat.dtype != dtype or flat.size < size:
        flat = store[name] = np.empty(size, dtype)
    return flat[:size].reshape(shape)


def release() -> None:
    """Free this thread's kept arrays (the next detection allocates them again)."""
    _KEPT.arrays = {}
