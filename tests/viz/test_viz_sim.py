"""The model of real simulator traces: every receipt and drop the simulator
counted is one arrow, whatever the network and nemesis did."""

from __future__ import annotations

import json

import pytest
from tests.conftest import ci_seeds
from tests.mapreduce._jobs import spec
from tests.viz._toy import run_toy

from synod.harness.mapreduce import run_sim_job, scripted_crashes
from synod.sim import Tracer
from synod.viz import build_model, parse_lines


@pytest.mark.parametrize("seed", range(1, min(ci_seeds(), 10) + 1))
def test_toy_cluster_arrows_match_the_simulators_counts(seed: int) -> None:
    """Loss, duplication, reordering, crashes, pauses and partitions, with
    identical heartbeats: each recv is a delivered arrow, each drop a dropped
    one, nothing is left unmatched, and every arrow joins equal messages."""
    sim, lines = run_toy(seed=seed, servers=3, time_ms=4000.0)
    m = build_model(parse_lines(lines))
    p = m.pairing
    hint = f"seed {seed}"
    assert p.orphans == [], hint
    assert p.count("delivered") == sim.deliveries, hint
    assert p.count("dropped") == sim.drops, hint
    sends = sum(1 for raw in lines if '"kind":"send"' in raw)
    assert sum(1 for a in p.arrows if not a.duplicate) == sends, hint
    for a in p.arrows:
        assert a.end is None or a.end.t_ms >= a.send.t_ms, (hint, a)
        if a.status == "delivered":
            assert a.end is not None
            assert a.end.fields["msg"] == a.send.fields["msg"], (hint, a)
            assert (a.end.node, a.end.fields["src"]) == (a.dst, a.src), (hint, a)
        if a.at_send:
            assert a.end is not None
            assert a.end.fields["reason"] in ("loss", "partition"), (hint, a)
    assert m.lanes == ["nemesis", "n1", "n2", "n3", "c1"] or m.lanes == ["n1", "n2", "n3", "c1"], hint
    assert {s.role for s in m.states} <= {"leader", "follower"}, hint
    assert m.client_ops, hint


def test_toy_cluster_down_intervals_follow_the_nemesis() -> None:
    sim, lines = run_toy(seed=6, servers=3, time_ms=6000.0)
    m = build_model(parse_lines(lines))
    events = [json.loads(raw) for raw in lines]
    for node in ("n1", "n2", "n3"):
        crashes = [e["t_ms"] for e in events if e["kind"] == "crash" and e["node"] == node]
        restarts = [e["t_ms"] for e in events if e["kind"] == "restart" and e["node"] == node]
        down = m.down(node)
        assert [s for s, _ in down] == crashes, node
        assert [e for _, e in down][: len(restarts)] == restarts, node
        pauses = [e["t_ms"] for e in events if e["kind"] == "pause" and e["node"] == node]
        assert [s for s, _ in m.paused(node)] == pauses, node
    assert any(m.down(n) for n in ("n1", "n2", "n3")), "seed 6 crashes nodes"
    assert any(m.paused(n) for n in ("n1", "n2", "n3")), "seed 6 pauses nodes"


def test_mapreduce_job_with_scripted_crashes() -> None:
    """A real MapReduce run (tiny in-memory input, compute slowed so the
    crashes land mid-job): lanes are the coordinator and the workers, down
    intervals are exactly the scripted ones, and the arrows match the
    simulator's delivery and drop counts."""
    words = "the quick brown fox jumps over the lazy dog " * 100
    inputs = {f"/in/part-{i}.txt": (words * (i + 1)).encode() for i in range(4)}
    job = spec("wc", inputs, nreduce=2, sim_compute_ms_per_mb=300_000.0)
    tracer = Tracer(keep=True)
    crashes = [("worker-2", 800.0), ("worker-1", 2500.0)]
    result = run_sim_job(job, inputs, seed=7, workers=3, tracer=tracer, setup=scripted_crashes(crashes, 1500.0))
    assert result.done
    assert result.sim is not None
    assert tracer.lines is not None
    m = build_model(parse_lines(tracer.lines))
    assert m.lanes == ["coordinator", "worker-1", "worker-2", "worker-3"]
    assert m.down("worker-2")[0] == (800.0, 2300.0)
    assert m.down("worker-1")[0] == (2500.0, 4000.0)
    assert m.pairing.orphans == []
    assert m.pairing.count("delivered") == result.sim.deliveries
    assert m.pairing.count("dropped") == result.sim.drops
    types = {a.msg_type for a in m.arrows}
    assert {"mr.RequestTask", "mr.MapTask", "mr.ReduceTask"} <= types
    kinds = {r.kind for r in m.points}
    assert {"assign", "map_done", "crash", "restart", "job_done"} <= kinds


def test_kv_run_traces_its_client_operations_and_the_checkers_failing_window() -> None:
    """``synod sim raft --workload kv --trace``: every history event is a
    ``client_op`` on its client's lane, and a run whose history is not
    linearizable (unsafe local reads, seed 2) ends with a ``check`` record;
    the viewer marks exactly the failing window's operations, the stuck one
    by the history lines the checker reports."""
    from synod.harness.raft import SNAPSHOT_INTERVAL_ENTRIES, run_kv_linearizability
    from synod.raft.node import RaftNodeConfig

    tracer = Tracer(keep=True)
    cfg = RaftNodeConfig(unsafe_local_reads=True, snapshot_interval_entries=SNAPSHOT_INTERVAL_ENTRIES)
    r = run_kv_linearizability(2, time_ms=10_000.0, node_config=cfg, tracer=tracer)
    assert r.verdict == "illegal", "seed 2 serves a stale local read"
    assert tracer.lines is not None
    m = build_model(parse_lines(tracer.lines))
    assert [n for n in m.lanes if n.startswith("c")] == ["c1", "c2", "c3", "c4", "c5"]
    assert "checker" not in m.lanes
    assert len(m.client_ops) == r.history.counts()["invoke"]
    c = r.check.counterexample
    assert c is not None
    marked = {op.invoke.fields["history_line"]: op.failing for op in m.client_ops if op.failing}
    assert set(marked) == {op.lines[0] for op in c.window}
    assert marked[c.stuck.lines[0]] == "stuck"
    [stuck] = [op for op in m.client_ops if op.failing == "stuck"]
    assert stuck.complete is not None
    assert stuck.complete.fields["history_line"] == c.stuck.lines[1]
    assert (stuck.f, stuck.key) == (c.stuck.f, c.key)
    [check] = m.checks
    assert check.fields["verdict"] == "illegal"
