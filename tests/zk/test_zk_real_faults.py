"""synod.zk as real processes under the real nemesis (issue 12 section 3,
"Real processes"; Hunt et al., USENIX ATC 2010, section 2.3): kazoo
clients, each knowing every server, do versioned setData (cas), sync +
getData, plain getData, sequential creates and bursts of 5-20 pipelined
requests (blind setData, getData, sequential creates) while servers are
killed (-9), stopped (SIGSTOP) and partitioned; the writes and sync reads
must be linearizable per znode, the plain reads sequentially consistent
per client, every burst in FIFO client order, and after every server
restarts every acknowledged sequential create must be on every server
exactly once (see :mod:`synod.harness.zk_faults`). ``SYNOD_ZK_REAL_S``
sets the seconds of faults (default 12).

The checkers' teeth are shown on small hand-made runs: a lost
acknowledged setData (cas or blind), a stale plain read, one zxid reported
with two values, a lost, doubled or unasked sequential create, and bursts
applied or read out of issue order."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from synod.check.sequential import READ, WRITE
from synod.harness.zk_faults import (
    ACKED,
    CREATE,
    FAILED,
    GET,
    SEQ_PATH,
    SET,
    UNANSWERED,
    BurstOp,
    _durability,
    _Shared,
    _verdicts,
    reads_after_own_set,
    run_zk_real,
)
from synod.workload import HistoryRecorder

FAULT_S = float(os.environ.get("SYNOD_ZK_REAL_S", "12"))


@pytest.mark.parametrize("nodes", [3, 5])
def test_faults_lose_and_duplicate_nothing_acknowledged(tmp_path: Path, nodes: int) -> None:
    r = run_zk_real(nodes, tmp_path / "run", nodes=nodes, safety_s=FAULT_S, liveness_s=20.0)
    data = r.scenario.data
    counts, ops = data["history"].counts(), data["counts"]
    detail = (f"{nodes} servers: verdicts {[(v.checker, v.status, v.summary) for v in r.verdicts]}; "
              f"history {counts}; operations {ops}; faults {r.faults}; wall {r.wall_s:.1f} s; "
              f"lost {data.get('lost', [])[:5]}; duplicated {data.get('duplicated', [])[:5]}; "
              f"extra {data.get('extra', [])[:5]}")
    assert not [n for n in r.scenario.cluster.node_ids if r.scenario.cluster.is_alive(n)], detail
    assert [v.checker for v in r.verdicts] == ["liveness", "linearizability", "sequential", "durability", "fifo"], detail
    assert r.verdict == "ok", detail
    # the clients really worked: every kind of operation, many times
    assert ops.get("cas ok", 0) > 100 and ops.get("sync reads", 0) > 50, detail
    assert ops.get("plain reads", 0) > 50 and len(data["acked"]) > 50, detail
    # and pipelined: bursts whose writes and reads were answered
    assert ops.get("bursts", 0) > 20 and ops.get("burst sets ok", 0) > 50, detail
    assert ops.get("burst reads", 0) > 50 and ops.get("burst creates ok", 0) > 50, detail
    assert reads_after_own_set(data["bursts"]) > 50, detail
    assert r.faults.get("crash", 0) + r.faults.get("pause", 0) + r.faults.get("partition", 0) >= 2, detail
    assert data["lost"] == [] and data["duplicated"] == [] and data["extra"] == [], detail
    assert sorted(data["children"]) == r.scenario.cluster.node_ids, detail
    assert all(len(c or ()) >= len(data["acked"]) for c in data["children"].values()), detail


def _run(events: list[tuple[int, str, str, str, object]]) -> _Shared:
    shared = _Shared(HistoryRecorder(lambda: float(len(shared.history.events))))
    for process, type_, f, key, value in events:
        shared.record(process, type_, f, key, value)
    return shared


def _statuses(shared: _Shared, children: dict[str, list[str] | None] | None = None) -> dict[str, str]:
    data: dict[str, object] = {}
    return {v.checker: v.status for v in _verdicts(shared, children or {"zk1": []}, 0, data)}


def test_a_lost_acknowledged_set_is_not_linearizable() -> None:
    """A create and an acknowledged cas, then a final sync read that shows
    the value before the cas (the set lost), or the cas's value (kept)."""
    def run(final: str) -> _Shared:
        return _run([(0, "invoke", "cas", "/r0", (None, "a")), (0, "ok", "cas", "/r0", (None, "a")),
                     (0, "invoke", "cas", "/r0", ("a", "b")), (0, "ok", "cas", "/r0", ("a", "b")),
                     (1, "invoke", "read", "/r0", None), (1, "ok", "read", "/r0", final)])

    assert _statuses(run("a"))["linearizability"] == "illegal"
    assert _statuses(run("b"))["linearizability"] == "ok"


def test_a_plain_read_going_back_is_not_sequentially_consistent() -> None:
    """Hunt et al. 2.3: a client never sees an older state than one it saw;
    and one zxid reported with two values is no write order at all."""
    def run(second: tuple[str, int]) -> _Shared:
        shared = _run([])
        shared.observe(0, WRITE, "/r0", "c1:1", 10, "cas")
        shared.observe(0, WRITE, "/r0", "c1:2", 12, "cas")
        shared.observe(1, READ, "/r0", "c1:2", 12, "getData")
        shared.observe(1, READ, "/r0", *second, "getData")
        return shared

    assert _statuses(run(("c1:2", 12)))["sequential"] == "ok"
    assert _statuses(run(("c1:1", 10)))["sequential"] == "illegal"
    clash = run(("c2:7", 10))
    assert _statuses(clash)["sequential"] == "illegal"
    assert "zxid 0xa" in clash.order_problems[0]


def test_durability_finds_lost_doubled_unasked_and_disagreeing_creates() -> None:
    acked = {"c1-1-": f"{SEQ_PATH}/c1-1-0000000000", "c1-2-": f"{SEQ_PATH}/c1-2-0000000001"}
    good = ["c1-1-0000000000", "c1-2-0000000001", "c2-1-0000000002"]
    verdict, bad = _durability({"zk1": good, "zk2": list(good)}, acked, {"c2-1-"})
    assert verdict.status == "ok", verdict.summary
    verdict, bad = _durability({"zk1": good[1:], "zk2": good + ["c1-2-0000000003", "c3-9-0000000004"]},
                               acked, {"c2-1-"})
    assert verdict.status == "illegal"
    assert bad["lost"] == [f"zk1:{SEQ_PATH}/c1-1-0000000000"]
    assert bad["duplicated"] == ["zk2:c1-2-"]
    assert bad["extra"] == ["zk2:c3-9-"]
    assert len(bad["disagree"]) == 1
    verdict, bad = _durability({"zk1": good, "zk2": None}, acked, {"c2-1-"})
    assert verdict.status == "unknown" and bad["unanswered"] == ["zk2"]


def test_a_lost_blind_set_is_not_linearizable() -> None:
    """A burst's setData with version -1 is the cas-register's plain write:
    after it was acknowledged, a final read of its value, or of an unknown
    write that overlapped it, linearizes; one of the value before it does
    not (the acknowledged write lost)."""
    def run(final: str) -> _Shared:
        return _run([(0, "invoke", "cas", "/r0", (None, "a")), (0, "ok", "cas", "/r0", (None, "a")),
                     (4, "invoke", "write", "/r0", "b"), (8, "invoke", "write", "/r0", "c"),
                     (4, "ok", "write", "/r0", "b"), (8, "info", "write", "/r0", "c"),
                     (1, "invoke", "read", "/r0", None), (1, "ok", "read", "/r0", final)])

    assert _statuses(run("a"))["linearizability"] == "illegal"
    assert _statuses(run("b"))["linearizability"] == "ok"
    assert _statuses(run("c"))["linearizability"] == "ok"   # the unknown write applied after the acknowledged one


def _burst(*ops: BurstOp) -> _Shared:
    shared = _run([])
    shared.bursts.append((0, list(ops)))
    return shared


def _fifo(shared: _Shared) -> tuple[str, str]:
    verdict = next(v for v in _verdicts(shared, {"zk1": []}, 0, {}) if v.checker == "fifo")
    return verdict.status, verdict.summary


def test_a_burst_out_of_issue_order_breaks_fifo_client_order() -> None:
    """Hunt et al. 2.3, FIFO client order: a session's pipelined requests
    are executed in the order sent. A burst whose acknowledged writes have
    increasing zxids and sequence numbers, whose reads see its earlier
    writes and not its later ones, passes (unknown and refused requests
    prove nothing); swapping any of those is caught, and named."""
    def create(seq: int, zxid: int) -> BurstOp:
        return BurstOp(kind=CREATE, key=f"{SEQ_PATH}/c1-{seq}-", outcome=ACKED, zxid=zxid, seq=seq,
                       value=f"{SEQ_PATH}/c1-{seq}-{seq:010d}")

    set_a = BurstOp(kind=SET, key="/r0", outcome=ACKED, value="c1:1", zxid=0x10)
    read_a = BurstOp(kind=GET, key="/r0", outcome=ACKED, value="c1:1", zxid=0x10)
    set_b = BurstOp(kind=SET, key="/r0", outcome=ACKED, value="c1:2", zxid=0x12)
    lost = BurstOp(kind=SET, key="/r1", outcome=UNANSWERED, value="c1:3")
    refused = BurstOp(kind=SET, key="/r2", outcome=FAILED, value="c1:4")
    missing = BurstOp(kind=GET, key="/r0", outcome=ACKED)   # NONODE: before any write of the register
    good = _burst(missing, set_a, create(5, 0x11), lost, read_a, refused, set_b, create(6, 0x13))
    status, summary = _fifo(good)
    assert status == "ok", summary
    assert "1 bursts of 8 pipelined requests (6 answered, 1 reads after an acknowledged setData" in summary

    status, summary = _fifo(_burst(set_b, set_a))
    assert status == "illegal"
    assert "setData #1 /r0='c1:1' at zxid 0x10 was applied before setData #0 /r0='c1:2'" in summary
    status, summary = _fifo(_burst(create(6, 0x13), create(5, 0x14)))
    assert status == "illegal"
    assert "got sequence number 5, not after 6" in summary
    status, summary = _fifo(_burst(set_a, set_b, read_a))
    assert status == "illegal"
    assert "getData #2 /r0='c1:1' at zxid 0x10 does not see setData #1 /r0='c1:2' at zxid 0x12" in summary
    status, summary = _fifo(_burst(set_a, missing))
    assert status == "illegal" and "read-your-writes" in summary   # a register the burst wrote, missing
    status, summary = _fifo(_burst(read_a, set_a))
    assert status == "illegal"
    assert "getData #0 /r0='c1:1' at zxid 0x10 sees setData #1 /r0='c1:1' at zxid 0x10, issued after it" in summary
