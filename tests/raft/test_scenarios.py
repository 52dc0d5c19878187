"""Raft corner cases as scripts in etcd's datadriven style
(``tests/raft/testdata/*.txt``, run by :mod:`synod.raft.scenario`): each
command's output, messages and state, must match the block under it.

After a change that alters the output, rewrite with ``SYNOD_REWRITE=1``
(or ``pytest --rewrite``) and read the diff: the new output must still be
the right protocol behaviour (each file's comments say what to look for).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from tests.raft._datadriven import run_file

from synod.raft.scenario import InteractionEnv

TESTDATA = Path(__file__).parent / "testdata"
SCRIPTS = sorted(TESTDATA.glob("*.txt"))


def _env() -> InteractionEnv:
    return InteractionEnv(lambda node_id: random.Random(int(node_id)))


def test_scripts_exist() -> None:
    assert len(SCRIPTS) >= 5, SCRIPTS


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_scenario(path: Path, request: pytest.FixtureRequest) -> None:
    rewrite = request.config.getoption("--rewrite") or os.environ.get("SYNOD_REWRITE") == "1"
    run_file(path, _env().handle, rewrite)


def test_driver_reports_a_mismatch_and_rewrites(tmp_path: Path) -> None:
    """The driver fails on an output that differs, naming the line, and the
    rewrite flag puts the actual output in place."""
    script = tmp_path / "s.txt"
    script.write_text("# a comment\nadd-nodes 1\n----\nwrong\n\ncampaign 1\n----\nok\n")
    with pytest.raises(AssertionError, match=r"s\.txt:2: add-nodes 1"):
        run_file(script, _env().handle, rewrite=False)
    run_file(script, _env().handle, rewrite=True)
    assert script.read_text() == ("# a comment\nadd-nodes 1\n----\n"
                                  "1: follower term=0 vote=- leader=- last=0@0 commit=0 applied=0\n\n"
                                  "campaign 1\n----\nok\n")
    run_file(script, _env().handle, rewrite=False)
