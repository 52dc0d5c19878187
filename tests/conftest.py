"""Shared test fixtures: where ../shared/data is, and how many seeds to run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def shared_data_dir() -> Path:
    """``$SYNOD_SHARED_DATA`` or ``../shared/data`` beside the repository."""
    env = os.environ.get("SYNOD_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def ci_seeds(default: int = 20) -> int:
    """Number of seeds a seeded simulation test runs (``SYNOD_CI_SEEDS``)."""
    return int(os.environ.get("SYNOD_CI_SEEDS", default))


@pytest.fixture
def gutenberg_files() -> list[Path]:
    """The eight MIT 6.5840 lab-1 books; skips with a reason when absent."""
    d = shared_data_dir() / "gutenberg"
    files = sorted(d.glob("pg-*.txt"))
    if len(files) != 8:
        pytest.skip(f"gutenberg books not found in {d} (set SYNOD_SHARED_DATA)")
    return files
