"""Shared fixtures. Real data lives in ../shared/realdata (never copied into the repository)."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REALDATA = ROOT.parent / "shared" / "realdata"


def realdata(*parts) -> Path:
    """Path under ../shared/realdata; skips the calling test with a reason if it is absent."""
    path = REALDATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} (see shared/realdata/README.md)")
    return path


@pytest.fixture
def realdata_dir():
    return realdata()
