"""Leader leases (thesis 6.4.1), opt-in with ``RaftConfig(lease_read=True)``:
a leader whose latest heartbeat round was acknowledged by a quorum serves
reads locally until ``lease_start + election_ticks * (1 - clock_drift_bound)``
of its own ticks, then falls back to ReadIndex (thesis 6.4)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from synod.core.errors import LocalProtocolError
from synod.raft import FOLLOWER, LEADER, Raft, RaftConfig
from synod.raft.messages import (
    AppendEntries,
    AppendEntriesReply,
    Heartbeat,
    HeartbeatReply,
    ReadIndexRequest,
    RequestVote,
    RequestVoteReply,
)

PEERS = ("a", "b", "c")
T = 15  # election_ticks
H = 5   # heartbeat_ticks


def _config(**over: Any) -> RaftConfig:
    return RaftConfig(election_ticks=T, heartbeat_ticks=H, lease_read=True, **over)


def _drain(r: Raft) -> tuple[list[tuple[str, Any]], list[bytes]]:
    msgs: list[tuple[str, Any]] = []
    reads: list[bytes] = []
    while r.has_ready():
        rd = r.ready()
        msgs.extend(rd.messages)
        reads.extend(s.ctx for s in rd.read_states)
        r.advance(rd)
    return msgs, reads


def _leased_leader(**over: Any) -> Raft:
    """Server a, leader of term 1 with its no-op committed, holding a lease
    from the heartbeat round it sent at tick H (acked by b)."""
    r = Raft("a", PEERS, random.Random(1), _config(**over))
    r.campaign(transfer=True)
    r.step("b", RequestVoteReply(term=1, vote_granted=True))
    assert r.role == LEADER
    r.step("b", AppendEntriesReply(term=1, success=True, match_index=1))
    assert r.log.commit_index == 1
    _drain(r)
    for _ in range(H):
        r.tick()
    beats = [m for to, m in _drain(r)[0] if isinstance(m, Heartbeat) and to == "b"]
    assert beats, "lease_read: every heartbeat round goes to every follower"
    assert not r.lease_valid(), "no lease before a quorum acks a round"
    r.step("b", HeartbeatReply(term=1, read_seq=beats[-1].read_seq))
    assert r.lease_valid()
    assert r.lease_start_ticks == H
    _drain(r)
    return r


def test_lease_read_needs_check_quorum() -> None:
    with pytest.raises(LocalProtocolError):
        RaftConfig(lease_read=True, check_quorum=False)
    with pytest.raises(LocalProtocolError):
        RaftConfig(lease_read=True, clock_drift_bound=1.0)


def test_lease_off_by_default() -> None:
    """Without ``lease_read`` an acked heartbeat gives no lease: reads take a round."""
    r = Raft("a", PEERS, random.Random(1), RaftConfig())
    r.campaign(transfer=True)
    r.step("b", RequestVoteReply(term=1, vote_granted=True))
    r.step("b", AppendEntriesReply(term=1, success=True, match_index=1))
    _drain(r)
    r.step("b", HeartbeatReply(term=1, read_seq=0))
    assert not r.lease_valid()
    assert r.read_index(b"x")
    msgs, reads = _drain(r)
    assert reads == []
    assert any(isinstance(m, Heartbeat) for _, m in msgs)


def test_lease_read_served_without_messages() -> None:
    """Thesis 6.4.1: within the lease the leader answers at its commit index
    with no heartbeat round and no log write."""
    r = _leased_leader()
    assert r.read_index(b"x")
    rd = r.ready()
    assert [(s.index, s.ctx) for s in rd.read_states] == [(1, b"x")]
    assert rd.messages == ()
    assert len(r.log.entries) == 1, "no log write for a read"
    r.advance(rd)
    # A follower's forwarded read is answered from the lease too.
    r.step("c", ReadIndexRequest(term=1, ctx=b"y"))
    msgs, _ = _drain(r)
    assert [(to, m.index, m.ctx) for to, m in msgs] == [("c", 1, b"y")]


def test_lease_expires_after_election_timeout_less_drift() -> None:
    """The lease ends at lease_start + (T - 1) * (1 - drift) of the leader's
    ticks (5 + 14 * 0.9 = 17.6 here); a read then falls back to ReadIndex."""
    r = _leased_leader(clock_drift_bound=0.1)
    while r.clock_ticks < 17:
        r.tick()
        _drain(r)                                   # heartbeats nobody acks
        assert r.lease_valid()
    r.tick()
    assert r.clock_ticks == 18
    assert r.role == LEADER, "check-quorum has not fired yet"
    assert not r.lease_valid()
    assert r.read_index(b"late")
    msgs, reads = _drain(r)
    assert reads == [], "no lease read after the lease ended"
    seq = max(m.read_seq for _, m in msgs if isinstance(m, Heartbeat))
    r.step("c", HeartbeatReply(term=1, read_seq=seq))
    assert _drain(r)[1] == [b"late"], "ReadIndex serves it once a quorum acks"
    assert r.lease_valid(), "and that round renewed the lease"


def test_no_lease_after_leadership_change() -> None:
    """A leader that learns of a newer term loses its lease at once, and a
    new term's leadership starts without one."""
    r = _leased_leader()
    r.step("b", AppendEntries(term=2, prev_log_index=1, prev_log_term=1, entries=(), leader_commit=1))
    assert r.role == FOLLOWER
    assert not r.lease_valid()
    assert r.read_index(b"x")
    msgs, reads = _drain(r)
    assert reads == []
    assert [(to, type(m)) for to, m in msgs if not isinstance(m, AppendEntriesReply)] == [("b", ReadIndexRequest)]


def test_no_lease_during_transfer() -> None:
    """TimeoutNow bypasses leader stickiness, so a transfer ends the lease."""
    r = _leased_leader()
    r.step("c", AppendEntriesReply(term=1, success=True, match_index=1))
    assert r.transfer_leadership("b")
    assert not r.lease_valid()


def test_restarted_server_refuses_votes_for_an_election_timeout() -> None:
    """A server that may have acked a lease before crashing does not vote
    (without a transfer) during its first election timeout."""
    b = Raft("b", PEERS, random.Random(2), _config())
    b.step("c", RequestVote(term=5, last_log_index=0, last_log_term=0, pre_vote=False, transfer=False))
    assert b.term == 0
    assert _drain(b)[0] == []
    for _ in range(T):
        b.tick()
    _drain(b)
    b.step("c", RequestVote(term=9, last_log_index=0, last_log_term=0, pre_vote=False, transfer=False))
    assert [(to, m.vote_granted) for to, m in _drain(b)[0] if isinstance(m, RequestVoteReply)] == [("c", True)]


# -- a deposed leader, partitioned away, while a new leader commits -----------------------

def _partition_run(follower_rate: float, drift: float, seed: int) -> tuple[int, int, bool]:
    """Three servers with zero-latency delivery. a leads term 1 with a lease;
    then a is cut off from b and c. Real time advances in tenths of a tick:
    a ticks once per tick, b and c ``follower_rate`` times per tick. Every
    tenth, a client asks a for a read and, once b or c leads, the new leader
    commits a write. Returns (lease reads a served while cut off, stale reads:
    those served after the new leader committed, ticks until that commit)."""
    cfg = _config(clock_drift_bound=drift)
    nodes = {p: Raft(p, PEERS, random.Random(f"{seed}:{p}"), cfg) for p in PEERS}
    cut = [False]

    def deliver() -> list[bytes]:
        reads: list[bytes] = []
        busy = True
        while busy:
            busy = False
            for p, r in nodes.items():
                msgs, rs = _drain(r)
                if p == "a":
                    reads.extend(rs)
                for to, m in msgs:
                    if cut[0] and "a" in (p, to):
                        continue
                    nodes[to].step(p, m)
                    busy = True
        return reads

    a = nodes["a"]
    a.campaign(transfer=True)
    deliver()
    assert a.role == LEADER
    acc = {p: 0.0 for p in PEERS}
    rate = {"a": 1.0, "b": follower_rate, "c": follower_rate}

    def advance_tenth() -> None:
        for p, r in nodes.items():
            acc[p] += rate[p] / 10
            while acc[p] >= 1.0:
                acc[p] -= 1.0
                r.tick()

    for _ in range(10 * 3 * H):
        advance_tenth()
        deliver()
    assert a.role == LEADER
    assert a.lease_valid()
    cut[0] = True
    served, stale, committed_at, write_index = 0, 0, -1, None
    for step in range(10 * 6 * T):
        advance_tenth()
        deliver()
        new = [r for p, r in nodes.items() if p != "a" and r.role == LEADER]
        if new and write_index is None:
            write_index = new[0].propose(b"write")[0]
        elif write_index is not None and committed_at < 0:
            if any(r.log.commit_index >= write_index for r in nodes.values() if r is not a):
                committed_at = step
        if a.role == LEADER and a.read_index(b"r%d" % step):
            got = deliver()
            if got:
                served += 1
                if committed_at >= 0:
                    stale += 1
    assert committed_at >= 0, "the majority side elected a leader and committed"
    assert a.role != LEADER, "check-quorum deposed a"
    return served, stale, committed_at


@pytest.mark.seeds(5)
@pytest.mark.parametrize("follower_rate,drift", [(1.0, 0.0), (1.0, 0.1), (1.1, 0.1), (2.0, 0.5)])
def test_partitioned_leader_cannot_read_stale_within_drift_bound(follower_rate: float, drift: float,
                                                                  seed: int) -> None:
    """Thesis 6.4.1: with followers' clocks up to ``drift`` fast relative to
    the leader's (rate <= 1 / (1 - drift)), the old leader serves lease reads
    only before a new leader can commit a write."""
    served, stale, _ = _partition_run(follower_rate, drift, seed)
    assert served > 0, "a served lease reads while cut off"
    assert stale == 0, f"seed {seed}: {stale} stale lease reads"


STALE_SEARCH_SEEDS_MAX = 20


def test_lease_is_unsafe_beyond_drift_bound() -> None:
    """The test above can fail: with followers' clocks at twice the leader's
    rate and no drift allowance, a seeded search finds a run where a new
    leader commits while the old one still serves lease reads (not every
    seed does: it depends on when the followers' randomized timeouts fire)."""
    found = [s for s in range(1, STALE_SEARCH_SEEDS_MAX + 1) if _partition_run(2.0, 0.0, s)[1] > 0]
    assert found, f"no stale lease read in seeds 1-{STALE_SEARCH_SEEDS_MAX} beyond the drift bound"
    print(f"stale lease reads beyond the drift bound at seeds {found}")
