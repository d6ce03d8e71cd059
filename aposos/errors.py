"""The one error type of aposos.

Every problem with user input (a file, a config key, a catalog line, a frame that cannot be
reduced) raises :class:`AposError` with a message that names where (file, key or line) and
what is wrong. Batch drivers catch it, record the item as failed with that message, and go on.
"""

from __future__ import annotations

import os


class AposError(Exception):
    """A problem with input that the user can act on.

    Parameters
    ----------
    message : str
        What is wrong, in words.
    path : str or os.PathLike, optional
        The file concerned.
    key : str, optional
        The header keyword, config key or column concerned.
    line : int, optional
        1-based line number in a text file.
    """

    def __init__(self, message: str, *, path=None, key: str | None = None, line: int | None = None):
        self.problem = message
        self.path = os.fspath(path) if path is not None else None
        self.key = key
        self.line = line
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.path is not None:
            where.append(self.path + (f":{self.line}" if self.line is not None else ""))
        elif self.line is not None:
            where.append(f"line {self.line}")
        if self.key is not None:
            where.append(f"key {self.key!r}")
        return (": ".join([", ".join(where), self.problem])) if where else self.problem
