"""Seeds for the Raft simulations: each test's own default (its ``seeds``
marker, else 3), ``SYNOD_RAFT_SEEDS`` or ``--seeds N`` for more, and
``--raft-seed S`` to replay one."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--seeds", type=int, default=None, help="seeds per Raft simulation test")
    parser.addoption("--raft-seed", type=int, default=None, help="run Raft simulation tests with this seed only")
    parser.addoption("--rewrite", action="store_true", default=False,
                     help="rewrite the expected outputs of tests/raft/testdata scripts (or SYNOD_REWRITE=1)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "seed" not in metafunc.fixturenames:
        return
    import os

    one = metafunc.config.getoption("--raft-seed")
    if one is not None:
        seeds = [one]
    else:
        marker = metafunc.definition.get_closest_marker("seeds")
        default = marker.args[0] if marker else 3
        n = metafunc.config.getoption("--seeds") or int(os.environ.get("SYNOD_RAFT_SEEDS", default))
        seeds = list(range(1, n + 1))
    metafunc.parametrize("seed", seeds)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "seeds(n): default number of seeds for a Raft simulation test")
