"""Raft section 5.4.2, Figure 8, scripted step by step in the simulator: why a
leader must not commit an entry of an older term by counting replicas.

Five servers S1..S5 (indexes 0..4). AppendEntries carry one entry each
(``message_entries_max=1``) so that step (c) can hand S3 index 2 without
index 3. Elections are started with :meth:`LabCluster.campaign` so the script
chooses the winner; crashes are real (volatile state lost, the disk kept).

(a) S1 leads term 1 and replicates "x" at index 2 to S2 only; S1 crashes.
(b) S5 is elected (term 2) by S3, S4 and itself and appends its no-op at
    index 2, which reaches nobody; S5 crashes.
(c) S1 restarts and is elected (term 3) by S2 and S3; it copies index 2
    (term 1) to S3, so a majority holds it, and crashes before index 3 (its
    own term's no-op) reaches S3. Counting replicas would commit index 2 now.
(d) S5 restarts and is elected (term 4) by S3 and S4 (its last term, 2, beats
    their 1) and overwrites index 2 everywhere with its own entry.

With ``unsafe_commit_old_term`` the safety checker reports the entry S1
committed and applied at (c) as lost at (d); with the rule of section 5.4.2
nothing was committed at (c) and every server agrees at the end.
"""

from __future__ import annotations

import pytest

from synod.raft.node import RaftNodeConfig
from synod.raft.raft import LEADER, RaftConfig
from synod.raft.sim import ClusterFailure, LabCluster

S1, S2, S3, S4, S5 = range(5)
SEED = 1


def _cluster(unsafe: bool) -> LabCluster:
    cfg = RaftNodeConfig(raft=RaftConfig(message_entries_max=1, unsafe_commit_old_term=unsafe))
    return LabCluster(5, SEED, node_config=cfg, replay="pytest tests/raft/test_figure8_scenario.py")


def _isolate(c: LabCluster, i: int, others: tuple[int, ...]) -> None:
    for j in others:
        c.network.block(c.ids[i], c.ids[j])
        c.network.block(c.ids[j], c.ids[i])


def _elect(c: LabCluster, i: int) -> int:
    """Campaign on server i until it leads (a candidate may first need to
    learn the voters' term); returns its term."""
    for _ in range(5):
        c.campaign(i)
        c.sim.run(until_ms=c.now_ms + 30, until=lambda: c.node(i).raft.role == LEADER)
        if c.node(i).raft.role == LEADER:
            return c.node(i).raft.term
    c.fail(f"{c.ids[i]} did not win an election")
    raise AssertionError  # unreachable


def _last(c: LabCluster, i: int) -> tuple[int, int]:
    log = c.node(i).raft.log
    return log.last_index, log.last_term


def _run_figure8(c: LabCluster) -> None:
    net = c.network
    # (a) S1 leads term 1; its no-op (index 1) commits everywhere.
    assert _elect(c, S1) == 1
    c.sleep(200)
    assert all(c.last_applied[i] == 1 for i in range(5)), c.last_applied
    _isolate(c, S1, (S3, S4, S5))
    index, term, ok = c.start(S1, "x")
    assert (index, term, ok) == (2, 1, True)
    c.sleep(30)
    assert _last(c, S2) == (2, 1)
    c.crash1(S1)
    # (b) S5 wins term 2 with S3 and S4 (S2, whose log is longer, is away);
    # its appends are dropped, so its no-op at index 2 stays on S5.
    c.disconnect(S2)
    c.campaign(S5)                              # the RequestVotes are on their way
    net.block(c.ids[S5], c.ids[S3])
    net.block(c.ids[S5], c.ids[S4])
    c.sleep(30)
    assert c.get_state(S5) == (2, True)
    assert _last(c, S5) == (2, 2)
    c.crash1(S5)
    # (c) S1 restarts and wins term 3 with S2 and S3 (S4 away); it copies
    # index 2 (term 1) to S3 and crashes before S3 gets index 3 (term 3).
    c.start1(S1)
    for i in (S1, S2, S3):
        c.connect(i)
    c.disconnect(S4)
    assert _elect(c, S1) == 3
    c.sim.run(until_ms=c.now_ms + 500, until=lambda: _last(c, S3)[0] >= 2)
    assert _last(c, S3) == (2, 1), _last(c, S3)
    net.block(c.ids[S1], c.ids[S3])             # index 3 never reaches S3
    c.sleep(30)
    c.crash1(S1)
    c.disconnect(S2)
    # (d) S5 restarts and wins term 4 with S3 and S4; it replicates its
    # index 2 (term 2) and its new no-op, and commits them.
    c.start1(S5)
    for i in (S3, S4, S5):
        c.connect(i)
    c.disconnect(S2)
    assert _elect(c, S5) == 4
    c.sleep(300)
    assert c.last_applied[S3] >= 3
    # Everyone back: all servers must agree on every index.
    c.start1(S1)
    for i in range(5):
        c.connect(i)
    c.one(1000, 5, True)
    c.finish()


def test_figure8_older_term_not_committed_by_counting() -> None:
    """Raft section 5.4.2: with the rule, S1 does not commit index 2 at (c);
    S5 may overwrite it at (d), and no safety property is violated."""
    c = _cluster(unsafe=False)
    _run_figure8(c)
    assert c.logs[S1][2] == "<no-op>", "S5's entry wins index 2 (term 2)"
    assert not c.checker.violations


def test_figure8_unsafe_commit_old_term_is_caught() -> None:
    """Raft section 5.4.2: counting replicas of an older term's entry
    commits index 2 at (c); at (d) S5 overwrites it, and the checker says so."""
    c = _cluster(unsafe=True)
    with pytest.raises(ClusterFailure, match="leader completeness|state machine safety") as failure:
        _run_figure8(c)
    assert "seed 1" in str(failure.value)
    assert c.checker.committed.get(2, (None, None))[0] == 1, "S1 committed index 2 of term 1"
