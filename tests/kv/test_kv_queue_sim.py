"""The job-queue pattern (RPUSH producers, BLPOP consumers through every
server) under the full nemesis in the simulator (issue 10 part 2: a blocked
client is never handed a lost or doubly delivered element). CI runs
``SYNOD_CI_SEEDS`` seeds (default 10); a server without at-most-once
retries must be caught within a bounded number of seeds."""

from __future__ import annotations

import os

import pytest

import synod.kv.node as kv_node
from synod.harness.kv_queue import QueueLog, queue_verdict, run_queue
from synod.harness.runner import ILLEGAL, OK

SEEDS = int(os.environ.get("SYNOD_CI_SEEDS", "10"))
BROKEN_SEEDS_MAX = 20


def _replay(seed: int) -> str:
    return f'python -c "from synod.harness.kv_queue import run_queue; print(run_queue({seed}).verdicts)"'


@pytest.mark.parametrize("seed", range(1, SEEDS + 1))
def test_every_seed_delivers_each_element_at_most_once_and_loses_none(seed: int) -> None:
    log = QueueLog()
    r = run_queue(seed, log=log)
    assert r.verdict == OK, f"seed {seed}: {[(v.checker, v.status, v.summary) for v in r.verdicts]}; replay: {_replay(seed)}"
    assert [v.checker for v in r.verdicts] == ["liveness", "raft-safety", "queue"]
    assert len(log.popped) > 20, len(log.popped)  # consumers really were served
    assert r.faults.get("crash", 0) + r.faults.get("partition", 0) > 0, r.faults


def test_a_server_that_applies_a_retried_push_twice_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the at-most-once table off, a duplicated or retried RPUSH adds
    its element twice and two consumers get it: the checker must say so."""
    monkeypatch.setattr(kv_node, "APPLIED_IDS_MAX", -1)  # every reply forgotten as soon as it is stored
    for seed in range(1, BROKEN_SEEDS_MAX + 1):
        r = run_queue(seed)
        if any(v.checker == "queue" and v.status == ILLEGAL for v in r.verdicts):
            return
    pytest.fail(f"no double delivery caught in {BROKEN_SEEDS_MAX} seeds")


def _log(pushed: set[bytes], popped: list[bytes], unknown_pops: int = 0) -> QueueLog:
    return QueueLog(pushed=pushed, attempted=set(pushed) | {b"x"}, popped=popped, unknown_pops=unknown_pops)


@pytest.mark.parametrize(("log", "final", "status", "words"), [
    (_log({b"a", b"b"}, [b"a"]), [b"b"], OK, "delivered once each"),
    (_log({b"a", b"b"}, [b"a", b"a"]), [b"b"], ILLEGAL, "delivered twice"),
    (_log({b"a"}, [b"a"]), [b"a"], ILLEGAL, "delivered and still queued"),
    (_log({b"a"}, [b"a", b"z"]), [], ILLEGAL, "never pushed"),
    (_log({b"a", b"b"}, [b"a"]), [], ILLEGAL, "acknowledged pushes missing"),
    (_log({b"a", b"b"}, [b"a"], unknown_pops=1), [], OK, "1 unaccounted for"),
    (_log({b"a"}, [b"x"]), [b"a"], OK, "delivered once each"),  # an unacknowledged push may still land
])
def test_the_queue_checker(log: QueueLog, final: list[bytes], status: str, words: str) -> None:
    v = queue_verdict(log, final)
    assert (v.status, words in v.summary) == (status, True), v.summary


def test_no_final_queue_is_a_violation() -> None:
    assert queue_verdict(QueueLog(), None).status == ILLEGAL
