"""Shared test fixtures: where ../shared/data is, and how many seeds to run.

Hypothesis runs under one of two profiles. Both switch off the health
checks that time the test itself (``too_slow``, ``data_too_large``): on a
loaded 2-core machine they fail tests whose behaviour is fine. Under CI
(``$CI`` set) the ``ci`` profile also derandomizes every property test and
keeps no example database, so a CI failure replays exactly on any machine;
elsewhere examples stay random, to keep exploring.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parent.parent

_TIMING_CHECKS = [HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile("dev", suppress_health_check=_TIMING_CHECKS)
settings.register_profile("ci", suppress_health_check=_TIMING_CHECKS, derandomize=True, database=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


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
