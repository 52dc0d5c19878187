"""Raft's KV machine checked for linearizability (issue 4: Raft, the checker
and the simulator proving each other). Clients issue get/put/append under
the nemesis; the history must be linearizable for the kv model and the
safety checker must stay silent. A deliberately unsafe read path must be
caught, and the seed that catches it printed."""

from __future__ import annotations

import pytest

from synod.check import parse_history
from synod.harness.raft import run_kv_linearizability
from synod.raft.node import RaftNodeConfig
from synod.sim import check_determinism

FULL = ("partition", "kill", "pause", "skew", "loss")
UNSAFE_SEEDS_MAX = 5


def _replay(seed: int, reads: str, kinds: tuple[str, ...], extra: str = "") -> str:
    return (f"synod sim raft --workload kv --reads {reads} --nemesis {','.join(kinds)} --seed {seed} "
            f"--time 20s{extra}")


@pytest.mark.seeds(3)
@pytest.mark.parametrize("reads,kinds", [
    ("read-index", FULL),
    ("log", FULL),
    # Leases assume bounded clock rates and no process pauses (thesis 6.4.1):
    # the nemesis keeps to faults the lease tolerates.
    ("lease", ("partition", "kill", "loss")),
])
def test_kv_history_is_linearizable(reads: str, kinds: tuple[str, ...], seed: int) -> None:
    r = run_kv_linearizability(seed, reads=reads, kinds=kinds, time_ms=20_000.0)
    how = _replay(seed, reads, kinds)
    assert not r.violations, f"seed {seed}: {r.violations}; replay: {how}"
    assert r.verdict == "ok", f"seed {seed}: {r.verdict} {r.check.reason}; replay: {how}"
    n = r.history.counts()
    assert n["ok"] > 300, f"seed {seed}: only {n['ok']} operations completed ({n}); replay: {how}"
    assert n["fail"] + n["info"] > 0, f"seed {seed}: the nemesis disturbed nothing ({n})"
    gets = sum(1 for e in r.history.events if e.type == "ok" and e.f == "get" and e.value is not None)
    assert gets > 50, f"seed {seed}: only {gets} gets saw a value"


def test_unsafe_local_reads_are_caught(capsys: pytest.CaptureFixture[str]) -> None:
    """Serving a read from the local state machine, without a read index, is
    the classic stale read: the checker must find it within a few seeds."""
    cfg = RaftNodeConfig(unsafe_local_reads=True, snapshot_interval_entries=200)
    for seed in range(1, UNSAFE_SEEDS_MAX + 1):
        r = run_kv_linearizability(seed, reads="read-index", kinds=FULL, node_config=cfg)
        if r.verdict == "illegal":
            assert r.check.counterexample is not None
            with capsys.disabled():
                print(f"\nunsafe_local_reads: caught at seed {seed}; replay: "
                      f"{_replay(seed, 'read-index', FULL, ' --unsafe unsafe_local_reads')}")
            return
    pytest.fail(f"unsafe_local_reads not caught in seeds 1-{UNSAFE_SEEDS_MAX}")


def test_history_round_trips_through_the_jsonl_reader() -> None:
    """The history a run writes is what ``synod check lin --model kv`` reads."""
    r = run_kv_linearizability(4, time_ms=3_000.0)
    events = parse_history(r.history.jsonl(), "jsonl")
    assert [(e.process, e.type, e.f, e.key, e.value) for e in events] == \
        [(e.process, e.type, e.f, e.key, e.value) for e in r.history.events]


def test_same_seed_same_trace() -> None:
    div = check_determinism(lambda tracer: run_kv_linearizability(5, time_ms=2_000.0, tracer=tracer))
    assert div is None, str(div)
