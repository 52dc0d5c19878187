"""Linearizable reads without log entries: ReadIndex (Ongaro's thesis,
section 6.4) and leader leases (section 6.4.1), as etcd-io/raft's
``read_only.go``. A part of :class:`~synod.raft.raft.Raft`, which inherits
:class:`ReadOnly`; the state here is the leader's, reset on every role change.

ReadIndex (thesis 6.4): the leader notes its commit index as the read's
index, then confirms it is still the leader by a heartbeat round: every round
carries a ``read_seq`` and a follower's HeartbeatReply echoes it, so once a
quorum of voters has acknowledged a round, every read noted before that round
is answered (a ReadState for a local read, a ReadIndexReply for a follower's
forwarded one). A leader that has not yet committed an entry of its own term
does not know the commit index; reads wait for that commit (the no-op a new
leader appends makes it come soon). A single voter answers at once.

Leader leases (thesis 6.4.1): with ``lease_read`` on, every heartbeat round
carries a fresh ``read_seq``, and the leader notes the tick (its own clock)
at which it *sent* each round. When a quorum has acknowledged round s, the
lease starts at s's send tick and holds while
``clock_ticks < lease_start + (election_ticks - 1) * (1 - clock_drift_bound)``;
within it a read is answered at the commit index with no messages, outside it
the read falls back to ReadIndex. Why no other leader can commit meanwhile:
each server of that quorum received the round after it was sent, so by leader
stickiness (check-quorum, thesis 4.2.3; ``lease_read`` requires
``check_quorum``) it refuses any vote for ``election_ticks`` of its own ticks
from then, which is at least ``election_ticks - 1`` of its tick periods (its
first tick may come right after the receipt), and ``clock_drift_bound``
covers clocks that run at different rates: a follower's period is at least
``1 - clock_drift_bound`` of the leader's. (Found by the seeded lease test:
with a full ``election_ticks`` lease, seeds 10, 18 and 25 served stale reads
at follower clocks 1.1x with bound 0.1.) A restarted server (it may have acked a lease before crashing) refuses
votes for its first ``election_ticks`` ticks. The lease ends at once on a
leadership change and when a transfer starts (TimeoutNow bypasses
stickiness). The bound assumes bounded clock *rate* drift, not a bound on
pauses: a leader paused past its lease but not told so would read stale.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from synod.core.errors import LocalProtocolError
from synod.raft import constants as C
from synod.raft._progress import quorum_index
from synod.raft._ready import ReadState
from synod.raft.messages import ReadIndexReply, ReadIndexRequest

if TYPE_CHECKING:
    from synod.raft._confchange import ConfState
    from synod.raft._log import RaftLog
    from synod.raft._progress import Progress

__all__ = ["ReadOnly"]


class ReadOnly:
    """Read-only requests of a Raft server (thesis 6.4, 6.4.1); a mixin of
    :class:`~synod.raft.raft.Raft`, whose state it reads (below)."""

    if TYPE_CHECKING:  # Raft's state and outputs that the read path uses
        id: str
        term: int
        leader: str | None
        transferee: str | None
        clock_ticks: int
        config: Any
        log: RaftLog
        conf: ConfState
        progress: dict[str, Progress]
        _read_states: list[ReadState]
        is_leader: bool

        def _send(self, to: str, msg: Any) -> None: ...
        def _event(self, name: str, **fields: Any) -> None: ...
        def _broadcast_heartbeat(self, *, for_read: bool = False) -> None: ...

    def _init_read_only(self) -> None:
        # ReadIndex (thesis 6.4). Leader: a round number confirmed by
        # heartbeats, reads waiting for a quorum of acks (read_seq, index,
        # ctx, src), and reads waiting for the first commit of this term.
        # Invariant: len(_reads_pending) + len(_reads_before_commit) <= READS_PENDING_MAX.
        self.read_seq = 0
        self._reads_pending: list[tuple[int, int, bytes, str | None]] = []
        self._reads_before_commit: list[tuple[bytes, str | None]] = []
        # Leader leases (thesis 6.4.1): (read_seq, clock_ticks when sent) of
        # heartbeat rounds not yet acknowledged by a quorum, and the send tick
        # of the latest acknowledged one. Invariant: len(_lease_rounds) <=
        # LEASE_ROUNDS_MAX; lease_start_ticks is None unless role == LEADER.
        self._lease_rounds: deque[tuple[int, int]] = deque()
        self.lease_start_ticks: int | None = None

    def _reset_read_only(self) -> None:
        """A new term or role: pending reads are dropped (their requesters
        retry) and the lease ends. ``read_seq`` keeps counting up."""
        self._reads_pending = []
        self._reads_before_commit = []
        self._lease_rounds.clear()
        self.lease_start_ticks = None

    def read_index(self, ctx: bytes) -> bool:
        """Ask for a linearizable read (thesis 6.4); its ReadState appears in a
        later Ready. Returns False if no leader is known (retry later)."""
        if len(ctx) > C.READ_CTX_BYTES_MAX:
            raise LocalProtocolError(f"read ctx of {len(ctx)} bytes exceeds {C.READ_CTX_BYTES_MAX}")
        if self.is_leader:
            return self._handle_read(ctx, None)
        if self.leader is None:
            return False
        self._send(self.leader, ReadIndexRequest(term=self.term, ctx=ctx))
        return True

    def _handle_read(self, ctx: bytes, src: str | None) -> bool:
        if len(self._reads_pending) + len(self._reads_before_commit) >= C.READS_PENDING_MAX:
            if src is not None:
                self._send(src, ReadIndexReply(term=self.term, ctx=ctx, index=-1))
            return False
        if self.log.term(self.log.commit_index) != self.term:
            self._reads_before_commit.append((ctx, src))
            return True
        if self.lease_valid():
            self._event("lease_read", index=self.log.commit_index)
            self._answer_read(self.log.commit_index, ctx, src)
            return True
        self.read_seq += 1
        self._reads_pending.append((self.read_seq, self.log.commit_index, ctx, src))
        if not (self.conf.voters - {self.id}):
            self._release_reads()
        else:
            self._broadcast_heartbeat(for_read=True)
        return True

    def _release_reads_before_commit(self) -> None:
        """The commit index advanced: once it is of this term, the reads that
        waited for it go ahead."""
        if self._reads_before_commit and self.log.term(self.log.commit_index) == self.term:
            waiting, self._reads_before_commit = self._reads_before_commit, []
            for ctx, src in waiting:
                self._handle_read(ctx, src)

    def _start_heartbeat_round(self, *, for_read: bool) -> bool:
        """A heartbeat round is going out; with leases on, note when it was
        sent. Returns True if it must reach every follower (reads or a lease
        wait on its acks), False if a recent append may stand in for it."""
        if self.config.lease_read:
            # Every round renews the lease: a fresh read_seq, its send tick
            # noted, and sent to every follower (no append stands in for it).
            if not for_read:
                self.read_seq += 1
            if len(self._lease_rounds) >= C.LEASE_ROUNDS_MAX:
                self._lease_rounds.popleft()  # only loses a chance to renew
            self._lease_rounds.append((self.read_seq, self.clock_ticks))
        return for_read or bool(self._reads_pending) or self.config.lease_read

    def _release_reads(self) -> None:
        """A voter acknowledged a heartbeat round: answer the reads, and
        renew the lease, up to the round a quorum has acknowledged."""
        acked = quorum_index([self.read_seq if p == self.id else self.progress[p].read_seq
                              for p in self.conf.voters])
        while self._lease_rounds and self._lease_rounds[0][0] <= acked:
            _, sent_ticks = self._lease_rounds.popleft()
            assert self.lease_start_ticks is None or sent_ticks >= self.lease_start_ticks
            if self.transferee is None:
                self.lease_start_ticks = sent_ticks
        while self._reads_pending and self._reads_pending[0][0] <= acked:
            _, index, ctx, src = self._reads_pending.pop(0)
            self._answer_read(index, ctx, src)

    def _answer_read(self, index: int, ctx: bytes, src: str | None) -> None:
        if src is None:
            self._read_states.append(ReadState(index=index, ctx=ctx))
        else:
            self._send(src, ReadIndexReply(term=self.term, ctx=ctx, index=index))

    def lease_valid(self) -> bool:
        """Thesis 6.4.1: does this leader hold a lease now, by its own clock?
        True while ``clock_ticks < lease_start + (election_ticks - 1) * (1 -
        clock_drift_bound)``, where lease_start is when it sent the latest
        heartbeat round a quorum acknowledged. Always False with
        ``lease_read`` off, and during a leadership transfer."""
        if not self.config.lease_read or not self.is_leader or self.transferee is not None:
            return False
        if self.lease_start_ticks is None:
            return False
        # One tick less than the election timeout: a follower's first tick
        # after it hears the round can come at once, so stickiness may last
        # only (election_ticks - 1) of its tick periods after the receipt.
        duration = (self.config.election_ticks - 1) * (1.0 - self.config.clock_drift_bound)
        return self.clock_ticks < self.lease_start_ticks + duration
