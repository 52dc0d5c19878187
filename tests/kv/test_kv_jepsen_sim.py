"""synod.kv under the full nemesis in the simulator, checked (issue 10
part 3): Raft safety, linearizability of the Redis GET/SET/APPEND history,
and liveness after the faults stop. CI runs ``SYNOD_CI_SEEDS`` seeds
(default 10); the unsafe read mode must be caught within a few."""

from __future__ import annotations

import os

import pytest

from synod.harness.kv import run_kv
from synod.harness.runner import ILLEGAL

SEEDS = int(os.environ.get("SYNOD_CI_SEEDS", "10"))
TIME_MS = 20_000.0
UNSAFE_SEEDS_MAX = 5


@pytest.mark.parametrize("seed", range(1, SEEDS + 1))
def test_every_seed_is_safe_linearizable_and_live(seed: int) -> None:
    r = run_kv(seed, time_ms=TIME_MS)
    counts = r.scenario.history.counts()
    assert r.verdict == "ok", (f"seed {seed}: {[(v.checker, v.status, v.summary) for v in r.verdicts]}; replay: "
                               f"synod sim kv --seed {seed}")
    assert counts["ok"] > 100, counts  # the workload really ran
    assert r.faults.get("crash", 0) + r.faults.get("partition", 0) > 0, r.faults  # and faults really happened
    assert [v.checker for v in r.verdicts] == ["liveness", "raft-safety", "linearizability"]


def test_reads_without_a_read_index_are_caught() -> None:
    """Follower reads from local state (no ReadIndex) serve stale values:
    the checker must say so within a few seeds."""
    caught = [seed for seed in range(1, UNSAFE_SEEDS_MAX + 1)
              if any(v.checker == "linearizability" and v.status == ILLEGAL
                     for v in run_kv(seed, time_ms=TIME_MS, reads="unsafe-local").verdicts)]
    assert caught, f"no stale read caught in {UNSAFE_SEEDS_MAX} seeds"


def test_a_seed_replays_exactly() -> None:
    a = run_kv(7, time_ms=5_000.0)
    b = run_kv(7, time_ms=5_000.0)
    assert a.scenario.history.jsonl() == b.scenario.history.jsonl()
    assert (a.deliveries, a.faults) == (b.deliveries, b.faults)
