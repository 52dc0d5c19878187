"""Unit tests of the Raft state machine and its log, driving ``Raft.step``,
``tick`` and ``ready`` directly (no simulator, no node adapter), in the style
of etcd-io/raft's ``raft_test.go``. Three servers a, b, c unless said."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.raft._host import drain

from synod.core import encode
from synod.kv.simple import SimpleKV
from synod.raft import CANDIDATE, FOLLOWER, LEADER, PRE_CANDIDATE, Raft, RaftConfig
from synod.raft.messages import (
    AppendEntries,
    AppendEntriesReply,
    Entry,
    Heartbeat,
    HeartbeatReply,
    InstallSnapshot,
    InstallSnapshotReply,
    RequestVote,
    RequestVoteReply,
    TimeoutNow,
)

PEERS = ("a", "b", "c")


def _raft(node_id: str = "a", **config: Any) -> Raft:
    return Raft(node_id, PEERS, random.Random(1), RaftConfig(**config))


def _leader(**config: Any) -> Raft:
    """Server a, leader of term 1 (voted in by b), its no-op at index 1."""
    r = _raft(**config)
    r.campaign(transfer=True)
    r.step("b", RequestVoteReply(term=1, vote_granted=True))
    assert r.role == LEADER
    drain(r)
    return r


def _entries(*terms: int) -> tuple[Entry, ...]:
    return tuple(Entry(term=t, index=i, data=b"%d" % i) for i, t in enumerate(terms, start=1))


def _follower_with(*terms: int, node_id: str = "b") -> Raft:
    """Server ``node_id``, follower of a in term max(terms), holding entries of ``terms``."""
    r = _raft(node_id)
    term = max(terms)
    r.step("a", AppendEntries(term=term, prev_log_index=0, prev_log_term=0, entries=_entries(*terms),
                              leader_commit=0))
    drain(r)
    assert r.log.last_index == len(terms)
    return r


# -- election ------------------------------------------------------------------------

def test_election_on_timeout() -> None:
    """Raft section 5.2: a follower that hears nothing for its randomized
    election timeout becomes a candidate of the next term and asks for votes."""
    r = _raft(pre_vote=False)
    timeout = r.randomized_election_ticks
    assert r.config.election_ticks <= timeout < 2 * r.config.election_ticks
    for _ in range(timeout - 1):
        r.tick()
    assert r.role == FOLLOWER
    r.tick()
    assert r.role == CANDIDATE
    assert r.term == 1
    assert r.vote == "a"
    msgs = drain(r)
    assert sorted(to for to, _ in msgs) == ["b", "c"]
    assert all(m == RequestVote(term=1, last_log_index=0, last_log_term=0) for _, m in msgs)
    r.step("c", RequestVoteReply(term=1, vote_granted=True))
    assert r.role == LEADER


def test_pre_vote_does_not_bump_term() -> None:
    """Thesis 9.6: a pre-candidate asks for votes in term + 1 without entering
    it; its term changes only once a quorum granted the pre-vote."""
    r = _raft()
    for _ in range(r.randomized_election_ticks):
        r.tick()
    assert r.role == PRE_CANDIDATE
    assert r.term == 0
    assert r.vote is None
    msgs = drain(r)
    assert all(m == RequestVote(term=1, last_log_index=0, last_log_term=0, pre_vote=True) for _, m in msgs)
    r.step("b", RequestVoteReply(term=1, vote_granted=True, pre_vote=True))
    assert r.role == CANDIDATE
    assert r.term == 1


def test_pre_vote_rejected_leaves_term() -> None:
    """Thesis 9.6: a denied pre-vote leaves the term, so a rejoining node
    cannot disrupt the cluster."""
    r = _raft()
    for _ in range(r.randomized_election_ticks):
        r.tick()
    r.step("b", RequestVoteReply(term=0, vote_granted=False, pre_vote=True))
    r.step("c", RequestVoteReply(term=0, vote_granted=False, pre_vote=True))
    assert r.role == FOLLOWER
    assert r.term == 0


def test_vote_rules() -> None:
    """Section 5.2 and 5.4.1: one vote per term, only for a candidate whose
    log is at least as up to date, never for a stale term."""
    r = _follower_with(1, 1, 2)                      # last (3, term 2), term 2
    drain(r)
    r.election_elapsed = r.config.election_ticks     # the leader's lease on our vote has passed

    # Shorter log with the same last term: refused, but the term is adopted.
    r.step("c", RequestVote(term=3, last_log_index=2, last_log_term=2))
    assert drain(r) == [("c", RequestVoteReply(term=3, vote_granted=False))]
    assert r.term == 3
    assert r.vote is None
    # Older last term, longer log: refused.
    r.step("c", RequestVote(term=3, last_log_index=9, last_log_term=1))
    assert drain(r) == [("c", RequestVoteReply(term=3, vote_granted=False))]
    # Up to date: granted, and again for the same candidate (a retransmission).
    r.step("c", RequestVote(term=3, last_log_index=3, last_log_term=2))
    assert drain(r) == [("c", RequestVoteReply(term=3, vote_granted=True))]
    assert r.vote == "c"
    r.step("c", RequestVote(term=3, last_log_index=3, last_log_term=2))
    assert drain(r) == [("c", RequestVoteReply(term=3, vote_granted=True))]
    # Another candidate in the same term: refused (one vote per term).
    r.step("a", RequestVote(term=3, last_log_index=5, last_log_term=3))
    assert drain(r) == [("a", RequestVoteReply(term=3, vote_granted=False))]
    assert r.vote == "c"
    # A stale term: refused without changing anything.
    r.step("a", RequestVote(term=2, last_log_index=5, last_log_term=3))
    assert r.term == 3
    assert r.vote == "c"


def test_unsafe_vote_without_log_check_grants_stale_log() -> None:
    """The unsafe switch really skips section 5.4.1's check."""
    r = Raft("b", PEERS, random.Random(1), RaftConfig(unsafe_vote_without_log_check=True))
    r.step("a", AppendEntries(term=2, prev_log_index=0, prev_log_term=0, entries=_entries(1, 2),
                              leader_commit=0))
    drain(r)
    r.election_elapsed = r.config.election_ticks
    r.step("c", RequestVote(term=3, last_log_index=0, last_log_term=0))
    assert drain(r) == [("c", RequestVoteReply(term=3, vote_granted=True))]


def test_leader_stickiness_ignores_vote_requests() -> None:
    """Thesis 4.2.3: a follower that heard from its leader within the
    election timeout ignores a RequestVote of a higher term."""
    r = _follower_with(1)
    r.step("c", RequestVote(term=5, last_log_index=1, last_log_term=1))
    assert drain(r) == []
    assert r.term == 1


def test_check_quorum_step_down() -> None:
    """Thesis 6.2: a leader that heard from no quorum within an election
    timeout steps down; one that did stays."""
    r = _leader()
    for _ in range(r.config.election_ticks - 1):
        r.tick()
    r.step("b", HeartbeatReply(term=1, read_seq=0))
    r.tick()
    assert r.role == LEADER, "b was heard from: a quorum with a"
    for _ in range(r.config.election_ticks):
        r.tick()
    assert r.role == FOLLOWER
    assert r.term == 1


# -- replication ------------------------------------------------------------------------

def test_conflict_backup_hint() -> None:
    """Section 5.3 (the optimisation at its end): a rejection names the
    conflicting term and its first index, or the log's end."""
    r = _follower_with(1, 1, 2, 2, 2)
    r.step("a", AppendEntries(term=3, prev_log_index=5, prev_log_term=3, entries=(), leader_commit=0))
    assert drain(r) == [("a", AppendEntriesReply(term=3, success=False, match_index=5, conflict_index=3,
                                                  conflict_term=2))]
    r.step("a", AppendEntries(term=3, prev_log_index=7, prev_log_term=3, entries=(), leader_commit=0))
    assert drain(r) == [("a", AppendEntriesReply(term=3, success=False, match_index=7, conflict_index=6,
                                                  conflict_term=0))]


def test_leader_backs_up_by_term() -> None:
    """The leader skips the follower's whole conflicting term in one step."""
    r = _leader()
    r.step("b", AppendEntriesReply(term=1, success=False, match_index=1, conflict_index=1, conflict_term=0))
    msgs = drain(r)
    assert [(to, m.prev_log_index) for to, m in msgs if isinstance(m, AppendEntries)] == [("b", 0)]


def test_append_truncates_conflicting_suffix() -> None:
    """Figure 2, AppendEntries receiver step 3: a conflict deletes the entry and all after it."""
    r = _follower_with(1, 1, 1)
    new = Entry(term=2, index=2, data=b"new")
    r.step("a", AppendEntries(term=2, prev_log_index=1, prev_log_term=1, entries=(new,), leader_commit=2))
    assert drain(r) == [("a", AppendEntriesReply(term=2, success=True, match_index=2))]
    assert r.log.last_index == 2
    assert r.log.entry(2) == new
    assert r.log.commit_index == 2


def test_commit_only_current_term_by_counting() -> None:
    """Section 5.4.2 (Figure 8): a majority holding an older term's entry does
    not commit it; a majority holding the leader's own entry commits both."""
    r = Raft("a", PEERS, random.Random(1), RaftConfig())
    r.step("b", AppendEntries(term=1, prev_log_index=0, prev_log_term=0, entries=_entries(1),
                              leader_commit=0))
    r.election_elapsed = r.config.election_ticks
    r.campaign(transfer=True)                        # term 2
    r.step("c", RequestVoteReply(term=2, vote_granted=True))
    assert r.role == LEADER
    assert (r.log.last_index, r.log.last_term) == (2, 2)  # the no-op
    drain(r)
    r.step("c", AppendEntriesReply(term=2, success=True, match_index=1))
    assert r.log.commit_index == 0, "index 1 is of term 1: not committed by counting"
    r.step("c", AppendEntriesReply(term=2, success=True, match_index=2))
    assert r.log.commit_index == 2


def test_unsafe_commit_old_term_commits_by_counting() -> None:
    r = Raft("a", PEERS, random.Random(1), RaftConfig(unsafe_commit_old_term=True))
    r.step("b", AppendEntries(term=1, prev_log_index=0, prev_log_term=0, entries=_entries(1),
                              leader_commit=0))
    r.campaign(transfer=True)
    r.step("c", RequestVoteReply(term=2, vote_granted=True))
    drain(r)
    r.step("c", AppendEntriesReply(term=2, success=True, match_index=1))
    assert r.log.commit_index == 1


def test_proposals_in_one_instant_share_one_append() -> None:
    """Proposals made before the host's next Ready go out batched: one
    AppendEntries per follower."""
    r = _leader()
    r.step("b", AppendEntriesReply(term=1, success=True, match_index=1))
    r.step("c", AppendEntriesReply(term=1, success=True, match_index=1))
    drain(r)
    for k in range(5):
        assert r.propose(b"cmd%d" % k) == (2 + k, 1)
    msgs = drain(r)
    appends = [(to, len(m.entries)) for to, m in msgs if isinstance(m, AppendEntries)]
    assert sorted(appends) == [("b", 5), ("c", 5)]


def test_out_of_order_reject_does_not_resend_in_flight() -> None:
    """A reject caused by a reordered pipelined append resends only the
    rejected entries, after the earlier append is acknowledged."""
    r = _leader()
    r.step("b", AppendEntriesReply(term=1, success=True, match_index=1))
    drain(r)
    r.propose(b"x")
    drain(r)                                        # append of index 2 in flight
    r.propose(b"y")
    drain(r)                                        # append of index 3 in flight
    # b got index 3's append first: no index 2 yet.
    r.step("b", AppendEntriesReply(term=1, success=False, match_index=2, conflict_index=2))
    assert [m for to, m in drain(r) if to == "b"] == []
    r.step("b", AppendEntriesReply(term=1, success=True, match_index=2))
    msgs = [m for to, m in drain(r) if to == "b" and isinstance(m, AppendEntries)]
    assert [(m.prev_log_index, [e.index for e in m.entries]) for m in msgs] == [(2, [3])]


# -- snapshots, reads, transfer -------------------------------------------------------

def test_snapshot_install_in_chunks() -> None:
    """Section 7, Figure 13: chunks are accepted in order; the last one
    replaces the log and is handed to the host to apply."""
    r = _follower_with(1, 1)
    data = b"0123456789"
    r.step("a", InstallSnapshot(term=1, last_included_index=5, last_included_term=1, offset=0,
                                data=data[:6], done=False))
    assert drain(r) == [("a", InstallSnapshotReply(term=1, last_included_index=5, next_offset=6, done=False))]
    r.step("a", InstallSnapshot(term=1, last_included_index=5, last_included_term=1, offset=3,
                                data=data[3:], done=True))       # out of order: asks for 6 again
    assert drain(r) == [("a", InstallSnapshotReply(term=1, last_included_index=5, next_offset=6, done=False))]
    r.step("a", InstallSnapshot(term=1, last_included_index=5, last_included_term=1, offset=6,
                                data=data[6:], done=True))
    rd = r.ready()
    assert rd.snapshot is not None
    assert (rd.snapshot.index, rd.snapshot.term, rd.snapshot.data) == (5, 1, data)
    assert rd.apply_snapshot
    assert rd.messages == (("a", InstallSnapshotReply(term=1, last_included_index=5, next_offset=10,
                                                      done=True)),)
    r.advance(rd)
    assert (r.log.first_index, r.log.last_index, r.log.commit_index) == (6, 5, 5)


def test_leader_sends_snapshot_when_compacted() -> None:
    r = _leader()
    r.step("b", AppendEntriesReply(term=1, success=True, match_index=1))
    for k in range(3):
        r.propose(b"%d" % k)
    drain(r)
    r.step("b", AppendEntriesReply(term=1, success=True, match_index=4))
    drain(r)
    r.compact(4, b"state")
    drain(r)
    r.step("c", AppendEntriesReply(term=1, success=False, match_index=1, conflict_index=1))
    msgs = [m for to, m in drain(r) if to == "c"]
    assert msgs == [InstallSnapshot(term=1, last_included_index=4, last_included_term=1, offset=0,
                                    data=b"state", done=True)]


def test_read_index_needs_a_quorum_round() -> None:
    """Thesis 6.4: a read gets the commit index once a quorum has confirmed
    the leader is still leader (a heartbeat round), without a log write."""
    r = _leader()
    assert r.read_index(b"early")                   # nothing of term 1 committed yet: waits
    assert r.ready().read_states == ()
    r.step("b", AppendEntriesReply(term=1, success=True, match_index=1))
    assert r.log.commit_index == 1
    msgs = drain(r)
    beats = [m for _, m in msgs if isinstance(m, Heartbeat)]
    assert beats and all(m.read_seq == 1 for m in beats)
    assert r.read_index(b"ctx")
    rd = r.ready()
    assert rd.read_states == ()
    seq = max(m.read_seq for _, m in rd.messages if isinstance(m, Heartbeat))
    r.advance(rd)
    r.step("c", HeartbeatReply(term=1, read_seq=seq))
    rd = r.ready()
    assert [(s.index, s.ctx) for s in rd.read_states] == [(1, b"early"), (1, b"ctx")]
    assert len(r.log.entries) == 1, "no log write for a read"


def test_timeout_now_transfer() -> None:
    """Thesis 3.10: the leader sends TimeoutNow to an up-to-date target, which
    campaigns at once and is voted in despite leader stickiness."""
    a = _leader()
    a.step("b", AppendEntriesReply(term=1, success=True, match_index=1))
    drain(a)
    assert a.transfer_leadership("b")
    assert a.propose(b"refused") is None, "no proposals during a transfer"
    assert drain(a) == [("b", TimeoutNow(term=1))]

    b = _follower_with(1)
    b.step("a", TimeoutNow(term=1))
    assert b.role == CANDIDATE
    assert b.term == 2
    votes = drain(b)
    assert all(m.transfer and not m.pre_vote for _, m in votes)
    c = _follower_with(1, node_id="c")               # heard from a just now
    c.step("b", votes[0][1])
    assert drain(c) == [("b", RequestVoteReply(term=2, vote_granted=True))]
    b.step("c", RequestVoteReply(term=2, vote_granted=True))
    assert b.role == LEADER


def test_stale_leader_learns_newer_term() -> None:
    """Section 5.1: a server rejects a stale-term append and names its term;
    the deposed leader steps down on hearing it."""
    f = _follower_with(1, 3)
    f.step("a", Heartbeat(term=2, commit=0, read_seq=0))
    assert drain(f) == [("a", AppendEntriesReply(term=3, success=False))]
    a = _leader()
    a.step("b", AppendEntriesReply(term=3, success=False))
    assert a.role == FOLLOWER
    assert a.term == 3


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=64),
                 st.lists(st.one_of(st.none(), st.integers(-2**63, 2**63 - 1), st.text(max_size=4), st.binary(max_size=4),
                                    st.lists(st.text(max_size=2), max_size=2)), max_size=4).map(encode)))
def test_the_kv_machine_applies_any_committed_bytes_without_raising(command: bytes) -> None:
    """A committed entry is replayed on every restart: an apply that raised
    would crash every server forever. Anything but a well-formed command is
    a no-op."""
    sm = SimpleKV()
    sm.apply(1, encode(["put", "k", "v"]))
    sm.apply(2, command)
    assert all(type(k) is str and type(v) is str for k, v in sm.data.items())
    sm.restore(sm.snapshot())
