"""Bitcoin's real inputs (``../shared/data/bitcoin``: Core's test vectors,
mainnet blocks and headers); a test whose file is absent skips and says so."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import shared_data_dir


def bitcoin_data(relative: str) -> Path:
    """The path of ``relative`` under the Bitcoin data; skips when absent."""
    path = shared_data_dir() / "bitcoin" / relative
    if not path.exists():
        pytest.skip(f"{path} not found (Bitcoin test data; set SYNOD_SHARED_DATA)")
    return path


def core_vectors(name: str) -> list[Any]:
    """Rows of one of Core's JSON vector files, comment rows left out
    (a comment row is a list holding one string)."""
    rows = json.loads(bitcoin_data(f"core-vectors/{name}").read_text())
    return [r for r in rows if not (len(r) == 1 and isinstance(r[0], str))]
