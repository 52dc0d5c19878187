"""synod.zk as real processes under the real nemesis (issue 12 section 3,
"Real processes"; Hunt et al., USENIX ATC 2010, section 2.3): kazoo
clients, each knowing every server, do versioned setData (cas), sync +
getData, plain getData and sequential creates while servers are killed
(-9), stopped (SIGSTOP) and partitioned; the writes and sync reads must be
linearizable per znode, the plain reads sequentially consistent per
client, and after every server restarts every acknowledged sequential
create must be on every server exactly once (see
:mod:`synod.harness.zk_faults`). ``SYNOD_ZK_REAL_S`` sets the seconds of
faults (default 12).

The checkers' teeth are shown on small hand-made runs: a lost
acknowledged setData, a stale plain read, one zxid reported with two
values, and a lost, doubled or unasked sequential create."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from synod.check.sequential import READ, WRITE
from synod.harness.zk_faults import SEQ_PATH, _durability, _Shared, _verdicts, run_zk_real
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
    assert [v.checker for v in r.verdicts] == ["liveness", "linearizability", "sequential", "durability"], detail
    assert r.verdict == "ok", detail
    # the clients really worked: every kind of operation, many times
    assert ops.get("cas ok", 0) > 100 and ops.get("sync reads", 0) > 50, detail
    assert ops.get("plain reads", 0) > 50 and len(data["acked"]) > 50, detail
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
