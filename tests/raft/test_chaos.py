"""Raft under the full nemesis (partition, kill, pause, clock skew, loss):
the safety checker finds nothing on the correct protocol, and finds each
deliberately unsafe option within a bounded number of seeds."""

from __future__ import annotations

import pytest

from synod.raft.node import RaftNodeConfig
from synod.raft.raft import RaftConfig
from synod.raft.sim import run_chaos
from synod.sim import check_determinism

UNSAFE_SEEDS_MAX = 20


@pytest.mark.seeds(5)
def test_chaos_is_safe_and_recovers(seed: int) -> None:
    r = run_chaos(seed, nodes=5, time_ms=20_000.0)
    assert not r.violations, f"seed {seed}: {r.violations}; replay: synod sim raft --seed {seed} --time 20s"
    assert r.committed > 50, f"seed {seed}: only {r.committed} committed"
    assert r.recovered, f"seed {seed}: no commit after faults stopped"


def test_same_seed_same_trace() -> None:
    div = check_determinism(lambda tracer: run_chaos(7, nodes=3, time_ms=3_000.0, tracer=tracer))
    assert div is None, str(div)


@pytest.mark.parametrize("name,config", [
    ("unsafe_skip_fsync", RaftNodeConfig(unsafe_skip_fsync=True)),
    ("unsafe_vote_without_log_check", RaftNodeConfig(raft=RaftConfig(unsafe_vote_without_log_check=True))),
])
def test_unsafe_option_is_caught(name: str, config: RaftNodeConfig, capsys: pytest.CaptureFixture[str]) -> None:
    for seed in range(1, UNSAFE_SEEDS_MAX + 1):
        r = run_chaos(seed, nodes=5, time_ms=20_000.0, node_config=config)
        if r.violations:
            with capsys.disabled():
                print(f"\n{name}: caught at seed {seed} ({r.violations[0]}); "
                      f"replay: synod sim raft --seed {seed} --time 20s --unsafe {name}")
            return
    pytest.fail(f"{name}: no violation found in {UNSAFE_SEEDS_MAX} seeds")
