"""Raft consensus as a sans-IO state machine (Ongaro & Ousterhout, "In Search
of an Understandable Consensus Algorithm", USENIX ATC 2014; Ongaro's PhD
thesis, 2014), in the style of etcd-io/raft.

Inputs: ``tick()`` (one logical clock tick), ``step(src, msg)`` (a message
from a peer), ``propose(data)``, ``read_index(ctx)``,
``transfer_leadership(target)``, ``compact(index, data)``. Outputs: a
:class:`~synod.raft._ready.Ready` from ``ready()`` with the hard state and
entries to persist, messages to send, committed entries to apply, a snapshot
and read states; the host acts on it and calls ``advance(ready)``. Nothing is
performed inside: no clock, no I/O, randomness only from the injected rng.

Roles: FOLLOWER, PRE_CANDIDATE (thesis 9.6), CANDIDATE, LEADER. The role's
message handler is stored in ``self._step`` and its tick handler in
``self._tick``; both change only inside ``become_<role>()``. Transitions:

    follower      -> pre_candidate (election timeout, pre-vote on)
    follower      -> candidate     (election timeout, pre-vote off; TimeoutNow)
    pre_candidate -> candidate     (a quorum of pre-votes)
    candidate     -> leader        (a quorum of votes)
    any           -> follower      (a higher term; a leader's message; a lost election)
    leader        -> follower      (check-quorum fails: no quorum heard within an election timeout)

Implemented: leader election with randomized timeouts in [T, 2T) ticks,
pre-vote and check-quorum (with leader stickiness, thesis 4.2.3: a server that
heard from a leader within the election timeout ignores vote requests);
log replication with the conflict term/index fast backup and flow control
(see ``_progress``); commit by counting replicas of current-term entries only
(section 5.4.2, Figure 8); snapshots, log compaction and chunked
InstallSnapshot (section 7, Figure 13); ReadIndex reads (thesis 6.4) and, as
an opt-in, leader leases (thesis 6.4.1; why a lease is safe: see
``_read_only``); leadership transfer (thesis 3.10); single-server membership
changes with non-voting learners (thesis 4.1, 4.2; see ``_membership`` and
``_confchange``). As etcd splits ``read_only.go`` and ``confchange/`` out of
``raft.go``, :class:`Raft` inherits its read path, membership and snapshot
transfer from the mixins in ``_read_only``, ``_membership`` and ``_snapshots``.

Not implemented yet: joint consensus (thesis 4.3).

Invariants (checked by ``assert`` where they are relied on):
- ``vote`` is only set in the current term, and at most once per term;
- a leader never overwrites or deletes entries in its log (only appends);
- ``log.commit_index`` never decreases, and never passes ``log.last_index``;
- a leader commits an index by counting only if that entry is of its own term.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from synod.core.errors import LocalProtocolError
from synod.raft import constants as C
from synod.raft._checks import InboundChecks
from synod.raft._log import RaftLog, Snapshot
from synod.raft._membership import Membership
from synod.raft._progress import PROBE, REPLICATE, SNAPSHOT, Progress, majority, quorum_index
from synod.raft._read_only import ReadOnly
from synod.raft._ready import HardState, ReadState, Ready, Recovered, SoftState
from synod.raft._snapshots import Snapshots
from synod.raft.messages import (
    AppendEntries,
    AppendEntriesReply,
    Entry,
    Heartbeat,
    HeartbeatReply,
    InstallSnapshot,
    InstallSnapshotReply,
    ReadIndexReply,
    ReadIndexRequest,
    RequestVote,
    RequestVoteReply,
    TimeoutNow,
)

__all__ = ["Raft", "RaftConfig", "FOLLOWER", "PRE_CANDIDATE", "CANDIDATE", "LEADER"]

FOLLOWER = "follower"
PRE_CANDIDATE = "pre_candidate"
CANDIDATE = "candidate"
LEADER = "leader"

_FROM_LEADER = (AppendEntries, Heartbeat, InstallSnapshot, TimeoutNow)
_FROM_LEADER_OR_READ = (*_FROM_LEADER, ReadIndexReply)


class Rng(Protocol):
    def randrange(self, start: int, stop: int) -> int: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class RaftConfig:
    """Protocol options. The ``unsafe_*`` switches break Raft on purpose, so
    tests can show the checkers catch the bug; never turn them on otherwise.

    ``unsafe_commit_old_term``: commit any index a majority holds, even an
    entry of an older term (the Figure 8 bug). ``unsafe_vote_without_log_check``:
    grant votes without the up-to-date check of section 5.4.1.

    ``lease_read`` (off by default): serve reads from a leader lease (thesis
    6.4.1) instead of a heartbeat round while the lease holds.
    ``clock_drift_bound``: the largest relative clock-rate difference between
    servers, a fraction in [0, 1); the lease is shortened by it. Needs
    ``check_quorum`` (leader stickiness is what makes the lease safe).
    """

    election_ticks: int = C.ELECTION_TICKS
    heartbeat_ticks: int = C.HEARTBEAT_TICKS
    pre_vote: bool = True
    check_quorum: bool = True
    message_entries_max: int = C.MESSAGE_ENTRIES_MAX
    message_entries_bytes_max: int = C.MESSAGE_ENTRIES_BYTES_MAX
    snapshot_chunk_bytes: int = C.SNAPSHOT_CHUNK_BYTES
    unsafe_commit_old_term: bool = False
    unsafe_vote_without_log_check: bool = False
    lease_read: bool = False
    clock_drift_bound: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 <= self.clock_drift_bound < 1.0:
            raise LocalProtocolError(f"clock_drift_bound {self.clock_drift_bound} not in [0, 1)")
        if self.lease_read and not self.check_quorum:
            raise LocalProtocolError("lease_read needs check_quorum (leader stickiness makes the lease safe)")
        if self.heartbeat_ticks < 1 or self.election_ticks <= self.heartbeat_ticks:
            raise LocalProtocolError("need 1 <= heartbeat_ticks < election_ticks")
        if self.message_entries_max < 1 or self.snapshot_chunk_bytes < 1:
            raise LocalProtocolError("message and chunk limits must be positive")


class Raft(ReadOnly, Membership, Snapshots, InboundChecks):
    """One Raft server. ``peers``: the initial voters; ``learners``: the
    initial non-voting members (a joining server starts as one). This server
    must be one or the other. The log and snapshot's configuration, once
    there is one, overrides these (thesis 4.1)."""

    def __init__(self, node_id: str, peers: tuple[str, ...], rng: Rng, config: RaftConfig | None = None,
                 recovered: Recovered | None = None, *, learners: tuple[str, ...] = ()) -> None:
        if node_id not in peers and node_id not in learners:
            raise LocalProtocolError(f"{node_id!r} is not among peers {peers!r} or learners {learners!r}")
        if set(peers) & set(learners):
            raise LocalProtocolError(f"peers {peers!r} and learners {learners!r} overlap")
        self.id = node_id
        self.rng = rng
        self.config = config or RaftConfig()
        # Persistent state (Figure 2). Invariant: vote, if set, was cast in ``term``.
        self.term = 0
        self.vote: str | None = None
        self.log = RaftLog()
        # Protocol-aware recovery (Alagappan et al., FAST 2018): (term, index)
        # at or beyond the last entry of a log this server lost to a corrupt
        # disk, None if it lost nothing. Invariant: while set, this server
        # never campaigns and grants votes only to candidates whose log is at
        # least this up to date, as if it still held the lost log (section
        # 5.4.1); it clears once a leader of the current term has confirmed
        # a match at or beyond it (``_maybe_repaired``).
        self.repair_bound: tuple[int, int] | None = None
        # Volatile state.
        self.role = FOLLOWER
        self.leader: str | None = None
        self.election_elapsed = 0    # ticks since the last election reset or leader contact
        self.heartbeat_elapsed = 0   # leader: ticks since the last heartbeat
        self.randomized_election_ticks = 0
        self.votes: dict[str, bool] = {}
        self.progress: dict[str, Progress] = {}
        self.transferee: str | None = None
        self._init_membership(peers, learners)  # conf, conf_index, peers, others
        self._init_read_only()  # read_seq, lease_start_ticks, pending reads
        # clock_ticks: ticks since this server started, its own clock (leases).
        self.clock_ticks = 0
        self._init_snapshots()  # a follower's partial snapshot
        # Outputs waiting for the next Ready.
        self._msgs: list[tuple[str, Any]] = []
        self._read_states: list[ReadState] = []
        self._events: list[tuple[str, dict[str, Any]]] = []
        self._snapshot_out: Snapshot | None = None
        self._snapshot_apply = False
        # Leader: proposals appended since the last Ready, not yet sent.
        self._proposals_unsent = False
        self._step = self._step_follower
        self._tick = self._tick_election
        if recovered is not None:
            self._recover(recovered)
            self._reload_conf()
        self._prev_hard = self.hard_state()
        self._prev_soft: SoftState | None = None
        self.become_follower(self.term, None)

    def _recover(self, r: Recovered) -> None:
        log = self.log
        if r.snapshot is not None:
            log.snapshot = r.snapshot
        for e in r.entries:
            assert e.index == log.last_index + 1, "recovered entries must follow the snapshot"
            log.entries.append(e)
        log.stable_index = log.last_index
        log.commit_index = min(max(r.hard_state.commit, log.snapshot.index), log.last_index)
        log.applied_index = log.snapshot.index
        self.term = r.hard_state.term
        self.vote = r.hard_state.vote
        hs = r.hard_state
        if hs.repair_term or hs.repair_index:
            self.repair_bound = (hs.repair_term, hs.repair_index)

    # -- state views -----------------------------------------------------------
    def hard_state(self) -> HardState:
        repair_term, repair_index = self.repair_bound or (0, 0)
        return HardState(term=self.term, vote=self.vote, commit=self.log.commit_index,
                         repair_term=repair_term, repair_index=repair_index)

    @property
    def is_leader(self) -> bool:
        return self.role == LEADER

    # -- role changes ------------------------------------------------------------
    def _reset(self, term: int) -> None:
        if term != self.term:
            assert term > self.term, (term, self.term)
            self.term = term
            self.vote = None
        self.leader = None
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        t = self.config.election_ticks
        self.randomized_election_ticks = self.rng.randrange(t, 2 * t)
        self.votes = {}
        self.progress = {}
        self.transferee = None
        self._proposals_unsent = False
        self._reset_read_only()

    def become_follower(self, term: int, leader: str | None) -> None:
        self._reset(term)
        self.leader = leader
        self.role = FOLLOWER
        self._step = self._step_follower
        self._tick = self._tick_election

    def become_pre_candidate(self) -> None:
        assert self.role != LEADER, "a leader cannot become a pre-candidate"
        # Pre-vote leaves term and vote alone (thesis 9.6).
        self._step = self._step_candidate
        self._tick = self._tick_election
        self.votes = {self.id: True}
        self.leader = None
        self.role = PRE_CANDIDATE

    def become_candidate(self) -> None:
        assert self.role != LEADER, "a leader cannot become a candidate"
        self._reset(self.term + 1)
        self.vote = self.id
        self.votes = {self.id: True}
        self.role = CANDIDATE
        self._step = self._step_candidate
        self._tick = self._tick_election

    def become_leader(self) -> None:
        assert self.role == CANDIDATE, f"{self.role} cannot become leader"
        self._reset(self.term)
        self.leader = self.id
        self.role = LEADER
        self._step = self._step_leader
        self._tick = self._tick_heartbeat
        last = self.log.last_index
        assert self._is_voter(), "only a voter is elected"
        for p in self.peers:
            self.progress[p] = Progress(last + 1)
        self.progress[self.id].match_index = last
        self.progress[self.id].become_replicate()
        # A no-op of the new term lets the leader commit (and learn the commit
        # index for ReadIndex) without waiting for a client (thesis 6.4).
        self._append([None])
        for p in self.others:
            self._send_append(p)

    # -- inputs ------------------------------------------------------------------
    def tick(self) -> None:
        """One logical clock tick."""
        self.clock_ticks += 1
        self._tick()

    def _tick_election(self) -> None:
        self.election_elapsed += 1
        if self.election_elapsed >= self.randomized_election_ticks:
            self.election_elapsed = 0
            if self._is_voter():  # a learner never campaigns (thesis 4.2.1)
                self.campaign(transfer=False)

    def _tick_heartbeat(self) -> None:
        self.heartbeat_elapsed += 1
        self.election_elapsed += 1
        if self.election_elapsed >= self.config.election_ticks:
            self.election_elapsed = 0
            if self.config.check_quorum and not self._quorum_active():
                self._event("step_down", reason="check-quorum: no quorum heard from")
                self.become_follower(self.term, None)
                return
            if self.transferee is not None:
                self._event("transfer_aborted", target=self.transferee)
                self.transferee = None
        if self.heartbeat_elapsed >= self.config.heartbeat_ticks:
            self.heartbeat_elapsed = 0
            self._broadcast_heartbeat()

    def _quorum_active(self) -> bool:
        active = 1 if self._is_voter() else 0
        for p in self.others:
            pr = self.progress[p]
            if pr.recent_active and p in self.conf.voters:
                active += 1
            pr.recent_active = False
        return active >= majority(len(self.conf.voters))

    def campaign(self, *, transfer: bool, pre_voted: bool = False) -> None:
        """Start an election: a pre-vote first, unless ``pre_voted`` (a quorum
        already granted one) or ``transfer`` (TimeoutNow; voters then skip the
        leader-stickiness check)."""
        if not self._is_voter():
            self._event("ignore_campaign", reason="not a voter")
            return
        if self.repair_bound is not None:
            # It may lack entries it acknowledged: as a leader it could lose
            # committed ones (PAR, FAST 2018, section 4).
            self._event("ignore_campaign", reason="repairing a lost log")
            return
        if self.config.pre_vote and not transfer and not pre_voted:
            self.become_pre_candidate()
            term = self.term + 1
        else:
            self.become_candidate()
            term = self.term
        if self._poll(self.id, True) == "won":
            return
        msg = RequestVote(term=term, last_log_index=self.log.last_index, last_log_term=self.log.last_term,
                          pre_vote=self.role == PRE_CANDIDATE, transfer=transfer)
        for p in self.others:
            if p in self.conf.voters:
                self._send(p, msg)

    def _poll(self, src: str, granted: bool) -> str:
        # Only the votes of voters in our configuration count (a learner
        # answers a candidate that counts it as a voter, thesis 4.2.1).
        voters = self.conf.voters
        self.votes.setdefault(src, granted)
        yes = sum(1 for p, v in self.votes.items() if v and p in voters)
        no = sum(1 for p, v in self.votes.items() if not v and p in voters)
        q = majority(len(voters))
        if yes >= q:
            if self.role == PRE_CANDIDATE:
                self.campaign(transfer=False, pre_voted=True)
            else:
                self.become_leader()
            return "won"
        if no >= q:
            self.become_follower(self.term, None)
            return "lost"
        return "pending"

    def step(self, src: str, msg: Any) -> None:
        """Handle one message from peer ``src`` (section 5.1's term rules
        first). Raises RemoteProtocolError, before any state changes, for a
        message no correct peer sends given our state (see
        ``_checks.InboundChecks``; messages are
        checked without state at the node boundary, ``_validate``)."""
        if msg.term >= self.term and isinstance(msg, _FROM_LEADER_OR_READ):
            self._check_from_leader(src, msg)
        if msg.term > self.term:
            if type(msg) is RequestVote:
                if not msg.transfer and self._leader_recently_heard():
                    # Leader stickiness (thesis 4.2.3): we heard from a leader recently.
                    self._event("ignore_request_vote", src=src, reason="leader is alive")
                    return
                if not msg.pre_vote:
                    self.become_follower(msg.term, None)
            elif type(msg) is RequestVoteReply and msg.pre_vote and msg.vote_granted:
                pass  # a granted pre-vote carries the term we would campaign in
            else:
                self.become_follower(msg.term, src if isinstance(msg, _FROM_LEADER) else None)
        elif msg.term < self.term:
            self._step_stale(src, msg)
            return
        if type(msg) is RequestVote:
            self._handle_request_vote(src, msg)
        else:
            self._step(src, msg)

    def _leader_recently_heard(self) -> bool:
        """Leader stickiness (thesis 4.2.3): refuse votes while we may owe a
        leader its election timeout; a leader's lease relies on this. With
        leases on, a server just started may have acked a lease before it
        crashed, so it also waits its first election timeout."""
        if not self.config.check_quorum:
            return False
        t = self.config.election_ticks
        if self.config.lease_read and self.clock_ticks < t:
            return True
        return self.leader is not None and self.election_elapsed < t

    def _step_stale(self, src: str, msg: Any) -> None:
        if type(msg) in (AppendEntries, Heartbeat):
            # Tell a deposed leader the newer term so it steps down (with
            # pre-vote it would otherwise never hear of it).
            self._send(src, AppendEntriesReply(term=self.term, success=False))
        elif type(msg) is RequestVote and msg.pre_vote:
            self._send(src, RequestVoteReply(term=self.term, vote_granted=False, pre_vote=True))
        else:
            self._event("ignore", src=src, type=type(msg).__name__, reason="stale term")

    def _handle_request_vote(self, src: str, m: RequestVote) -> None:
        if m.pre_vote:
            can_vote = m.term > self.term
        else:
            can_vote = self.vote == src or (self.vote is None and self.leader is None)
        up_to_date = self.config.unsafe_vote_without_log_check or (
            self.log.is_up_to_date(m.last_log_index, m.last_log_term)
            and (self.repair_bound is None or (m.last_log_term, m.last_log_index) >= self.repair_bound))
        if can_vote and up_to_date:
            if not m.pre_vote:
                assert m.term == self.term
                self.vote = src
                self.election_elapsed = 0
            self._send(src, RequestVoteReply(term=m.term, vote_granted=True, pre_vote=m.pre_vote))
        else:
            self._send(src, RequestVoteReply(term=self.term, vote_granted=False, pre_vote=m.pre_vote))

    # -- follower --------------------------------------------------------------------
    def _step_follower(self, src: str, m: Any) -> None:
        match m:
            case AppendEntries():
                self._handle_append(src, m)
            case Heartbeat():
                self.election_elapsed = 0
                self.leader = src
                if self.repair_bound is None:
                    # The commit is min(our match index at the leader, its
                    # commit); a repairing log may have gone back below that
                    # match (kept entries a lost record had overwritten), so
                    # it commits only what an AppendEntries confirms.
                    self.log.commit_to(m.commit)
                self._send(src, HeartbeatReply(term=self.term, read_seq=m.read_seq))
            case InstallSnapshot():
                self.election_elapsed = 0
                self.leader = src
                self._handle_snapshot(src, m)
            case TimeoutNow():
                self._event("timeout_now", src=src)
                self.campaign(transfer=True)
            case ReadIndexReply():
                if m.index >= 0:
                    self._read_states.append(ReadState(index=m.index, ctx=m.ctx))
            case _:
                self._event("ignore", src=src, type=type(m).__name__, reason="not for a follower")

    def _past_commit(self, m: AppendEntries) -> tuple[int, int, tuple[Entry, ...]]:
        """(prev_log_index, prev_log_term, entries) of ``m`` without the
        entries through our commit index: those are committed, so they match
        the leader's (they may be compacted away here)."""
        log = self.log
        prev, prev_term, entries = m.prev_log_index, m.prev_log_term, m.entries
        if prev < log.commit_index:
            skip = min(len(entries), log.commit_index - prev)
            entries = entries[skip:]
            prev = log.commit_index
            prev_term = log.term(prev)
            assert prev_term is not None
        return prev, prev_term, entries

    def _handle_append(self, src: str, m: AppendEntries) -> None:
        log = self.log
        self.election_elapsed = 0
        self.leader = src
        prev, prev_term, entries = self._past_commit(m)
        match_index = log.maybe_append(prev, prev_term, entries)
        if match_index is not None and self._conf_maybe_changed(entries):
            self._reload_conf()
        if match_index is None:
            t = log.term(prev)
            if t is None:
                hint_term, hint_index = 0, log.last_index + 1
            else:
                hint_term, hint_index = t, log.first_index_of_term(prev)
            self._send(src, AppendEntriesReply(term=self.term, success=False, match_index=m.prev_log_index,
                                               conflict_index=hint_index, conflict_term=hint_term,
                                               repairing=self.repair_bound is not None))
            return
        log.commit_to(min(m.leader_commit, match_index))
        self._send(src, AppendEntriesReply(term=self.term, success=True, match_index=max(match_index, prev)))
        self._maybe_repaired(max(match_index, prev))

    def _maybe_repaired(self, match_index: int) -> None:
        """The leader of our term confirmed our log matches its own through
        ``match_index``. A leader holds every committed entry, so once that
        point is at least as up to date as the log we lost, we hold every
        entry we may have acknowledged, and our own log answers for us again."""
        if self.repair_bound is None:
            return
        term = self.log.term(match_index)
        if term is not None and (term, match_index) >= self.repair_bound:
            self._event("repaired", bound_term=self.repair_bound[0], bound_index=self.repair_bound[1],
                        match_index=match_index)
            self.repair_bound = None

    # -- candidate -------------------------------------------------------------------
    def _step_candidate(self, src: str, m: Any) -> None:
        match m:
            case AppendEntries() | Heartbeat() | InstallSnapshot():
                # A leader of our term exists: we lost (Figure 2, candidates).
                self.become_follower(self.term, src)
                self._step_follower(src, m)
            case RequestVoteReply():
                if m.pre_vote != (self.role == PRE_CANDIDATE):
                    self._event("ignore", src=src, type="RequestVoteReply", reason="other election kind")
                    return
                self._poll(src, m.vote_granted)
            case _:
                self._event("ignore", src=src, type=type(m).__name__, reason="not for a candidate")

    # -- leader ------------------------------------------------------------------------
    def _step_leader(self, src: str, m: Any) -> None:
        pr = self.progress.get(src)
        if pr is None:
            self._event("ignore", src=src, type=type(m).__name__, reason="unknown peer")
            return
        self._check_from_follower(pr, m)
        match m:
            case AppendEntriesReply():
                pr.recent_active = True
                if m.success:
                    self._on_append_success(src, pr, m.match_index)
                else:
                    self._on_append_reject(src, pr, m)
            case HeartbeatReply():
                pr.recent_active = True
                pr.probe_sent = False
                if pr.state == REPLICATE and pr.is_paused():
                    pr.inflight.popleft()  # a lost reply must not stall the pipeline forever
                if m.read_seq > pr.read_seq:
                    pr.read_seq = m.read_seq
                    self._release_reads()
                if pr.state == SNAPSHOT:
                    self._send_snapshot_chunk(src, pr)
                elif pr.match_index < self.log.last_index:
                    # REPLICATE: only entries not yet sent (those in flight are
                    # not repeated); PROBE: the probe the heartbeat unblocked.
                    self._send_append(src, send_empty=pr.state != REPLICATE)
            case InstallSnapshotReply():
                pr.recent_active = True
                self._on_snapshot_reply(src, pr, m)
            case ReadIndexRequest():
                self._handle_read(m.ctx, src)
            case _:
                self._event("ignore", src=src, type=type(m).__name__, reason="not for a leader")

    def _on_append_success(self, src: str, pr: Progress, match_index: int) -> None:
        assert match_index <= self.log.last_index, "a follower matched beyond the leader's log"
        updated = pr.maybe_update(match_index)
        if pr.state == PROBE and pr.match_index == match_index:
            # The probe matched (a new match, or the one a snapshot set, as
            # etcd's handleAppendEntriesResponse): stream from here.
            pr.become_replicate()
        if updated:
            if pr.state == SNAPSHOT and pr.match_index >= pr.snapshot_index:
                pr.become_probe()
            # A new commit index travels with the next AppendEntries or
            # heartbeat (no empty broadcast: Lab 3's RPC-count bounds).
            self._maybe_commit()
            if self.role != LEADER:
                return  # removed from the voters, and that change committed
            if src == self.transferee and pr.match_index == self.log.last_index:
                self._send(src, TimeoutNow(term=self.term))
        while self._send_append(src, send_empty=False):
            pass

    def _on_append_reject(self, src: str, pr: Progress, m: AppendEntriesReply) -> None:
        if m.repairing and pr.state != SNAPSHOT:
            # The follower lost entries it acknowledged (a corrupt disk): its
            # match index goes back to what it still holds, so that it is sent
            # them again (commit never goes back: it counted real acks).
            held = m.conflict_index - 1 if m.conflict_term == 0 else m.match_index - 1
            if held < pr.match_index:
                self._event("follower_lost_log", src=src, match_index=pr.match_index, held=max(held, 0))
                pr.match_index = max(held, 0)
                pr.next_index = pr.match_index + 1
                pr.become_probe()
        if m.match_index <= pr.match_index or pr.state == SNAPSHOT:
            return  # stale: a reply to an earlier probe
        if (pr.state == REPLICATE and m.conflict_term == 0 and pr.inflight
                and pr.inflight[0] <= m.match_index < pr.inflight[-1]):
            # A gap behind a pipelined append that is still in flight (the
            # network reordered them): do not resend what is in flight. Only
            # the rejected append and those after it are lost; send them again
            # from m.match_index + 1 once the earlier one is acknowledged (the
            # success handler fills the pipeline). If the earlier one was lost
            # too, the heartbeat round without progress falls back to probing.
            while pr.inflight and pr.inflight[-1] > m.match_index:
                pr.inflight.pop()
            pr.next_index = min(pr.next_index, m.match_index + 1)
            assert pr.next_index > pr.match_index
            self._event("ignore_append_reject", src=src, reason="earlier append in flight")
            return
        if m.conflict_term > 0:
            last = self.log.last_index_of_term(m.conflict_term)
            nxt = last + 1 if last > 0 else m.conflict_index
        else:
            nxt = m.conflict_index
        pr.become_probe()
        pr.next_index = max(pr.match_index + 1, min(nxt, m.match_index))
        self._send_append(src)

    def _maybe_commit(self) -> bool:
        """Section 5.4.2: commit the highest index a majority holds, if the
        entry there is of the current term (counting never commits an older
        term's entry directly; Figure 8)."""
        n = quorum_index([self.progress[p].match_index for p in self.conf.voters])
        if n <= self.log.commit_index:
            return False
        if self.log.term(n) != self.term and not self.config.unsafe_commit_old_term:
            return False
        self.log.commit_to(n)
        self._release_reads_before_commit()
        self._step_down_if_removed()
        return True

    def _send_append(self, to: str, *, send_empty: bool = True) -> bool:
        """Send ``to`` the entries it needs, or the snapshot. Returns True if
        entries went out (so a caller may fill the pipeline)."""
        pr = self.progress[to]
        if pr.is_paused():
            return False
        log = self.log
        prev = pr.next_index - 1
        prev_term = log.term(prev)
        if prev_term is None:
            assert prev < log.snapshot.index, "next_index beyond the leader's log"
            pr.become_snapshot(log.snapshot.index)
            self._send_snapshot_chunk(to, pr)
            return False
        entries = log.slice(pr.next_index, log.last_index + 1, self.config.message_entries_bytes_max,
                            self.config.message_entries_max) if pr.next_index <= log.last_index else []
        if not entries and not send_empty:
            return False
        self._send(to, AppendEntries(term=self.term, prev_log_index=prev, prev_log_term=prev_term,
                                     entries=tuple(entries), leader_commit=log.commit_index))
        pr.sent(entries[-1].index if entries else prev, len(entries))
        pr.commit_sent = max(pr.commit_sent, min(log.commit_index, entries[-1].index if entries else prev))
        return bool(entries)

    def _broadcast_heartbeat(self, *, for_read: bool = False) -> None:
        reading = self._start_heartbeat_round(for_read=for_read)
        last = self.log.last_index
        for p in self.others:
            pr = self.progress[p]
            if pr.state == REPLICATE and pr.match_index < last and pr.match_index == pr.match_at_heartbeat:
                # No progress over a whole heartbeat round with entries
                # outstanding: an append was lost; probe from the match.
                pr.become_probe()
            pr.match_at_heartbeat = pr.match_index
            commit = min(pr.match_index, self.log.commit_index)
            if pr.append_since_heartbeat and not reading and pr.commit_sent >= commit:
                pr.append_since_heartbeat = False  # that append was this period's heartbeat
                continue
            pr.append_since_heartbeat = False
            pr.commit_sent = max(pr.commit_sent, commit)
            self._send(p, Heartbeat(term=self.term, commit=commit, read_seq=self.read_seq))

    def _append(self, datas: list[bytes | None]) -> int:
        log = self.log
        first = log.last_index + 1
        log.append([Entry(term=self.term, index=first + i, data=d) for i, d in enumerate(datas)])
        self.progress[self.id].maybe_update(log.last_index)
        self._maybe_commit()  # a single server commits at once
        return log.last_index

    # -- client-facing inputs -----------------------------------------------------------
    def propose(self, data: bytes) -> tuple[int, int] | None:
        """Append ``data`` to the log if this server is the leader. Returns
        (index, term) where it will commit if it commits at all, or None (not
        the leader, a transfer in progress, or too many uncommitted entries)."""
        if self.role != LEADER or self.transferee is not None:
            return None
        if self.log.last_index - self.log.commit_index >= C.PROPOSALS_PENDING_MAX:
            return None
        index = self._append([data])
        # Sent at the next ``ready()``: proposals made before it travel in one
        # AppendEntries per follower (batching; Lab 3's RPC-count bounds).
        self._proposals_unsent = True
        return index, self.term

    def transfer_leadership(self, target: str) -> bool:
        """Hand leadership to ``target`` (thesis 3.10): bring its log up to
        date, then send TimeoutNow. Proposals are refused meanwhile; the
        transfer is abandoned after an election timeout."""
        if self.role != LEADER or target == self.id or target not in self.conf.voters:
            return False
        self.transferee = target
        self.lease_start_ticks = None  # TimeoutNow bypasses the stickiness the lease relies on
        self.election_elapsed = 0
        if self.progress[target].match_index == self.log.last_index:
            self._send(target, TimeoutNow(term=self.term))
        else:
            self._send_append(target)
        return True

    # -- output -------------------------------------------------------------------------
    def _send(self, to: str, msg: Any) -> None:
        assert to != self.id
        self._msgs.append((to, msg))

    def _event(self, name: str, **fields: Any) -> None:
        self._events.append((name, fields))

    def _flush_proposals(self) -> None:
        if not self._proposals_unsent:
            return
        self._proposals_unsent = False
        assert self.role == LEADER, "only a leader has unsent proposals"
        for p in self.others:
            while self._send_append(p, send_empty=False):
                pass

    def has_ready(self) -> bool:
        log = self.log
        return bool(self._proposals_unsent or self._msgs or self._read_states or self._events or self._snapshot_out is not None
                    or log.stable_index < log.last_index or log.applied_index < log.commit_index
                    or self.hard_state() != self._prev_hard
                    or self._soft_state() != self._prev_soft)

    def _soft_state(self) -> SoftState:
        return SoftState(role=self.role, term=self.term, leader=self.leader)

    def ready(self) -> Ready:
        """Everything the host must do now; call ``advance`` after doing it.
        Proposals made since the last Ready are sent first, batched."""
        self._flush_proposals()
        hs = self.hard_state()
        ss = self._soft_state()
        return Ready(
            hard_state=hs if hs != self._prev_hard else None,
            soft_state=ss if ss != self._prev_soft else None,
            entries=tuple(self.log.unstable_entries()),
            snapshot=self._snapshot_out,
            apply_snapshot=self._snapshot_apply,
            committed_entries=tuple(self.log.committed_to_apply(C.COMMITTED_ENTRIES_MAX)),
            messages=tuple(self._msgs),
            read_states=tuple(self._read_states),
            events=tuple(self._events),
        )

    def advance(self, rd: Ready) -> None:
        """The host has done what ``rd`` asked."""
        if rd.entries:
            self.log.stable_to(rd.entries[-1].index)
        if rd.committed_entries:
            self.log.applied_to(rd.committed_entries[-1].index)
        if rd.hard_state is not None:
            self._prev_hard = rd.hard_state
        if rd.soft_state is not None:
            self._prev_soft = rd.soft_state
        if rd.snapshot is not None and rd.snapshot is self._snapshot_out:
            self._snapshot_out = None
            self._snapshot_apply = False
        del self._msgs[: len(rd.messages)]
        del self._read_states[: len(rd.read_states)]
        del self._events[: len(rd.events)]
