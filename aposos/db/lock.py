"""The writer lock of a store: an exclusive ``fcntl.flock`` on ``STORE/LOCK``.

Every commit (and compaction, merge) holds the lock from reading the manifest to publishing the
new one, so writers in several processes (or several stations writing to a shared disk that
honours flock) are serialised. The kernel drops the lock when the holder dies, even by SIGKILL,
so a crashed writer never leaves the store locked. Readers take no lock.
"""

from __future__ import annotations

import fcntl
import os
import time

from ..errors import AposError


class StoreLock:
    """Context manager holding the exclusive writer lock of the store directory ``root``.

    ``timeout_s`` (None = wait forever) bounds the wait; on expiry an AposError names the
    pid recorded by the holder.
    """

    def __init__(self, root, timeout_s: float | None = None):
        self.path = os.path.join(os.fspath(root), "LOCK")
        self.timeout_s = timeout_s
        self._fd = None

    def __enter__(self):
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = None if self.timeout_s is None else time.monotonic() + self.timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (fcntl.LOCK_NB if deadline else 0))
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
                    os.close(fd)
                    raise AposError(f"store is locked by another writer (pid {holder or '?'})",
                                    path=self.path) from None
                time.sleep(0.01)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc):
        fd, self._fd = self._fd, None
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        return False
