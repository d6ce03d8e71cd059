"""Files of IOD, UK and RDE lines (also mixed, as observers' e-mails often are).

Every line is classified: blank lines and ``#`` comments are ignored; an RDE header opens
an RDE report that runs to its ``999`` line; any other line is read as UK when its first 17
columns are digits (the UK layout), as IOD when it has the IOD shape, and otherwise in the
file's dominant format (so that its reason for rejection is the one that matters).
"""

from __future__ import annotations

from .fields import FieldError
from .iod import IOD_SHAPE, NoPosition, parse_iod_line
from .rde import RdeBlock, is_rde_header
from .uk import UK_SHAPE, parse_uk_line


def dominant_line_format(lines: list[str]) -> str | None:
    """'iod', 'uk' or 'rde' by the count of lines of each shape (None: none recognised)."""
    counts = {"iod": 0, "uk": 0, "rde": 0}
    for line in lines:
        if is_rde_header(line):
            counts["rde"] += 1
        elif UK_SHAPE.match(line):
            counts["uk"] += 1
        elif IOD_SHAPE.match(line):
            counts["iod"] += 1
    best = max(counts, key=counts.get)
    return best if counts[best] else None


def parse_lines(lines: list[str]):
    """Records, rejected ``(line, reason)`` and skipped ``(line, reason)`` of a line file."""
    dominant = dominant_line_format(lines) or "iod"
    records, rejected, skipped = [], [], []
    block = None
    for number, line in enumerate(lines, 1):
        text = line.rstrip("\r\n")
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        try:
            if block is not None:
                if text.strip() == "999":
                    block = None
                    continue
                if is_rde_header(text):
                    block = RdeBlock(text, number)
                    continue
                rec = block.parse(text, number)
                if rec is not None:
                    records.append(rec)
                continue
            if is_rde_header(text):
                block = RdeBlock(text, number)
                continue
            kind = ("uk" if UK_SHAPE.match(text) else "iod" if IOD_SHAPE.match(text)
                    else dominant)
            if kind == "rde":
                raise FieldError("not an RDE header (SSSS YYMM T.tSF PPPE) and outside an "
                                 "RDE report; not an IOD or UK line either")
            if kind == "uk":
                records.append(parse_uk_line(text, number))
            else:
                records.append(parse_iod_line(text, number))
        except NoPosition as exc:
            skipped.append((number, str(exc)))
        except FieldError as exc:
            label = "RDE" if block is not None else kind.upper()
            rejected.append((number, f"{label}: {exc}{_shift_hint(text)}"))
    if block is not None:
        rejected.append((block.header_line, "RDE report has no closing 999 line "
                                            "(observations kept)"))
    return records, rejected, skipped


def _shift_hint(text: str) -> str:
    """A hint when the record starts after column 1 (quoted or indented e-mail lines)."""
    for k in (1, 2):
        if UK_SHAPE.match(text[k:]) or IOD_SHAPE.match(text[k:]):
            return f" (the record seems to start in column {k + 1}: {text[:k]!r} before it)"
    return ""
