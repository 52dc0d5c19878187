"""Zab as a sans-IO state machine (Junqueira, Reed, Serafini, DSN 2011;
the phases as ZooKeeper 3.x implements them: ``FastLeaderElection``,
``Leader``, ``LearnerHandler``, ``Follower``).

Inputs: ``tick()`` (one tick of ``tick_ms``), ``step(src, msg)`` (a
:class:`Notification` or a session :class:`Packet`), ``propose(data)``
(leader only) and ``compact(zxid, data)`` (the host's snapshot). Outputs:
a :class:`Ready` from ``ready()``, which the host persists, makes durable,
and only then acts on (sends, delivers): nothing here does I/O, reads a
clock, or draws randomness but from the injected rng.

Roles and phases (the paper's section IV, ZooKeeper's names):

- LOOKING, phase 0, Fast Leader Election: votes ``(peer_epoch, zxid,
  server id)`` ordered lexicographically; a server adopts a better vote,
  rebroadcasts, and decides once a quorum of its round agrees with its
  vote and no better one came for ``finalize_ticks``; a server that finds
  the others already FOLLOWING/LEADING joins their leader once a quorum of
  them names it.
- phase 1, discovery: each follower opens a session with FollowerInfo (its
  accepted epoch, the paper's CEPOCH); once a quorum has, the leader picks
  ``max(accepted epochs) + 1`` and sends LeaderInfo (NEWEPOCH); followers
  accept it if higher than theirs and answer AckEpoch with their current
  epoch and last zxid. A follower more up to date than the leader (which
  FLE should prevent) sends the leader back to LOOKING, as ZooKeeper does.
- phase 2, synchronization: once a quorum acked the epoch, the leader's
  history is the new epoch's initial history; each follower gets DIFF
  (the transactions it lacks), TRUNC (drop what the leader never had, then
  DIFF) or SNAP (the leader's snapshot, then DIFF) and NewLeader; it
  adopts the new epoch as its current epoch, logs, and acks. Once a quorum
  acked NewLeader, the initial history is committed and UpToDate goes out.
- phase 3, broadcast: the leader gives each proposal the next zxid of its
  epoch, logs it and sends Proposal; followers log (durably, before the
  Ack leaves) and ack cumulatively; the leader commits in zxid order once
  a quorum of voters holds a transaction and sends Commit (cumulative);
  followers deliver in zxid order. Proposals, Acks, Commits and forwarded
  Requests are held until the host calls ``flush()`` (``flush_due`` says
  something waits), which sends them per session in one packet each
  (split at ``PACKET_BYTES_MAX``): a host that calls it once per turn of
  its event loop, after every message it read in that turn, sends a burst
  of proposals as one Proposal packet, answers it with one Ack, and a
  burst of Acks with one Commit per follower (ZooKeeper sends a packet
  per transaction; what they say is the same, Acks and Commits being
  cumulative, and the session's order is kept: a flush sends a follower
  its proposals before the Commit that may cover them). A follower that
  joins later is synchronized the same way, its session forwarded every
  proposal from its sync on.
- OBSERVING: a non-voting learner (ZooKeeper 3.3 observers): synchronized
  like a follower, sent Inform for each transaction committed from its
  sync on (logged, and delivered once it is up to date), counted in
  no quorum.

Liveness: the leader pings its sessions every tick and steps down when a
quorum of voters was not heard within ``sync_limit_ticks``; a follower goes
LOOKING when its leader is silent that long (``init_limit_ticks`` before
it is up to date), or when its session breaks (a packet lost: a gap in the
sequence not filled within ``sync_limit_ticks``).

Persistent state (``Ready.hard_state``): the accepted epoch (the paper's
f.p) and the current epoch (f.a); the history (``Ready.entries``,
``truncate_after``, ``snapshot``). Delivery is volatile: after a restart a
server delivers again from its snapshot once a leader says what is
committed.

Unsafe switches (``ZabConfig.unsafe_*``) exist to show the checker
catches what each guarantee needs: committing before a quorum acked,
skipping the synchronization phase, and reusing the last accepted epoch.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from synod.core.errors import LocalProtocolError, RemoteProtocolError
from synod.zab.messages import (
    Ack,
    AckEpoch,
    Commit,
    Diff,
    FollowerInfo,
    Inform,
    LeaderInfo,
    NewLeader,
    Notification,
    Packet,
    Ping,
    Proposal,
    Request,
    Snap,
    Trunc,
    Txn,
    UpToDate,
)
from synod.zab.zxid import COUNTER_MAX, counter_of, epoch_of, make_zxid

__all__ = ["Zab", "ZabConfig", "Ready", "Recovered", "HardState", "LOOKING", "FOLLOWING", "LEADING", "OBSERVING"]

LOOKING, FOLLOWING, LEADING, OBSERVING = "looking", "following", "leading", "observing"
SESSION_BUFFER_PACKETS_MAX = 1024   # packets held ahead of a gap in one session
TXNS_PER_PACKET_MAX = 512           # transactions (or requests) in one Diff, Proposal or Request packet
PACKET_BYTES_MAX = 4 << 20          # their bytes in one packet (a larger one travels alone); a Snap part's size
SNAP_BYTES_MAX = (4 << 30) - 4096   # a snapshot received in parts (it is stored as one record, under 4 GiB)


@dataclass(frozen=True, slots=True, kw_only=True)
class ZabConfig:
    """``server_id``: this server; ``voters``: the ensemble's voting
    servers (this one included unless it observes); ``observers``:
    non-voting learners. Times are in ticks of the host's ``tick_ms``:
    ``sync_limit_ticks`` (ZooKeeper's syncLimit) and ``init_limit_ticks``
    (initLimit), ``finalize_ticks`` (FLE's finalizeWait)."""

    server_id: str
    voters: tuple[str, ...]
    observers: tuple[str, ...] = ()
    sync_limit_ticks: int = 5
    init_limit_ticks: int = 10
    finalize_ticks: int = 1
    unsafe_commit_before_quorum: bool = False
    unsafe_skip_sync: bool = False
    unsafe_reuse_epoch: bool = False


@dataclass(frozen=True, slots=True)
class HardState:
    accepted_epoch: int = 0
    current_epoch: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Recovered:
    """Durable state read back at start."""

    hard_state: HardState = HardState()
    snapshot_zxid: int = 0
    snapshot_data: bytes | None = None
    txns: tuple[Txn, ...] = ()


@dataclass(slots=True, kw_only=True)
class Ready:
    """The host must, in this order: drop the log after ``truncate_after``
    (if not None), install ``snapshot`` (zxid, data: the log emptied), append
    ``entries``, write ``hard_state``, make all of it durable; then send
    ``messages``, restore the state machine from ``restore`` (if any),
    deliver ``committed`` in order, then hand ``requests`` (origin server,
    data: what learners forwarded with :meth:`Zab.forward`, leader only) to
    the application in order."""

    hard_state: HardState | None = None
    truncate_after: int | None = None
    snapshot: tuple[int, bytes] | None = None
    entries: list[Txn] = field(default_factory=list)
    messages: list[tuple[str, Any]] = field(default_factory=list)
    restore: tuple[int, bytes] | None = None
    committed: list[Txn] = field(default_factory=list)
    requests: list[tuple[str, bytes]] = field(default_factory=list)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def must_sync(self) -> bool:
        return (self.hard_state is not None or self.truncate_after is not None or self.snapshot is not None
                or bool(self.entries))

    @property
    def empty(self) -> bool:
        return not (self.must_sync or self.messages or self.restore or self.committed or self.requests
                    or self.events)


class Rng(Protocol):
    """The randomness a server may use (the host's seeded one): session ids."""

    def getrandbits(self, k: int) -> int: ...


def _txn_bytes(txn: Txn) -> int:
    return len(txn.data)


def _batches(items: list[Any], size: Callable[[Any], int]) -> list[tuple[Any, ...]]:
    """``items`` in order, cut into runs of at most ``TXNS_PER_PACKET_MAX``
    and ``PACKET_BYTES_MAX`` bytes by ``size`` (an item larger alone is a
    run of one): the bodies of consecutive packets, each under the frame
    limit."""
    out: list[tuple[Any, ...]] = []
    run: list[Any] = []
    run_bytes = 0
    for item in items:
        n = size(item)
        if run and (len(run) >= TXNS_PER_PACKET_MAX or run_bytes + n > PACKET_BYTES_MAX):
            out.append(tuple(run))
            run, run_bytes = [], 0
        run.append(item)
        run_bytes += n
    if run:
        out.append(tuple(run))
    return out


def _better(a: tuple[int, int, str], b: tuple[int, int, str]) -> bool:
    """FLE's total order on votes (peer epoch, zxid, server id)."""
    return a > b


class _Session:
    """One leader-follower session: FIFO by sequence numbers."""

    __slots__ = ("peer", "session", "leader_session", "send_seq", "recv_seq", "held", "gap_ticks", "heard_ticks",
                 "ack_due_zxid", "requests_due", "snap_parts", "snap_bytes", "snap_zxid")

    def __init__(self, peer: str, session: int, leader_session: int = 0) -> None:
        self.peer = peer
        self.session = session
        self.leader_session = leader_session   # 0 on a follower until the leader's first packet
        self.send_seq = 0
        self.recv_seq = 0            # the last packet taken in order
        self.held: dict[int, Any] = {}
        self.gap_ticks = 0
        self.heard_ticks = 0         # ticks since the peer was last heard
        self.ack_due_zxid = 0        # follower: the last proposal logged and not yet acked (sent by flush)
        self.requests_due: list[bytes] = []   # learner: forwarded requests not yet sent (sent by flush)
        self.snap_parts: list[bytes] = []     # learner: the parts of a Snap received so far
        self.snap_bytes = 0
        self.snap_zxid = 0


class _Learner:
    """The leader's view of one follower or observer session."""

    __slots__ = ("sid", "observer", "accepted_epoch", "acked_epoch", "last_zxid", "current_epoch", "synced",
                 "acked_new_leader", "acked_zxid", "up_to_date", "commit_sent_zxid",
                 "proposals_due")

    def __init__(self, sid: _Session, observer: bool, accepted_epoch: int, last_zxid: int) -> None:
        self.sid = sid
        self.observer = observer
        self.accepted_epoch = accepted_epoch
        self.last_zxid = last_zxid
        self.acked_epoch = False
        self.current_epoch = 0
        self.synced = False          # sync packets and NewLeader sent
        self.acked_new_leader = False
        self.acked_zxid = 0
        self.up_to_date = False
        self.commit_sent_zxid = 0    # the last Commit (or UpToDate) sent in this session
        self.proposals_due: list[Txn] = []   # proposed, not yet sent (sent by flush)


class Zab:
    """One Zab server. See the module docstring for the protocol.

    Raises (``step``): RemoteProtocolError for a message no correct peer
    sends (the host drops it; the state is unchanged).
    """

    def __init__(self, config: ZabConfig, rng: Rng, recovered: Recovered | None = None) -> None:
        if config.server_id not in config.voters and config.server_id not in config.observers:
            raise LocalProtocolError(f"{config.server_id} is neither a voter nor an observer")
        self.config = config
        self.rng = rng
        self.quorum = len(config.voters) // 2 + 1
        rec = recovered or Recovered()
        self.accepted_epoch = rec.hard_state.accepted_epoch
        self.current_epoch = rec.hard_state.current_epoch
        self.snapshot_zxid = rec.snapshot_zxid
        self.snapshot_data = rec.snapshot_data
        self.log: list[Txn] = list(rec.txns)
        self._zxids: list[int] = [t.zxid for t in self.log]
        self.delivered_zxid = 0      # volatile: nothing delivered until a leader says what is committed
        self.restored = False        # the snapshot was handed to the state machine in this life
        self.role = LOOKING
        self.leader: str | None = None
        self._rd = Ready()
        # election
        self.election_epoch = 0
        self.vote: tuple[int, int, str] = (0, 0, "")
        self.votes: dict[str, tuple[tuple[int, int, str], int]] = {}
        self.out_of_election: dict[str, tuple[tuple[int, int, str], int, str]] = {}
        self.finalize_left: int | None = None
        # follower / observer
        self.session: _Session | None = None
        self.phase = ""              # follower: "discovery", "sync", "broadcast"
        self.leader_silent_ticks = 0
        # leader
        self.learners: dict[str, _Learner] = {}
        self.new_epoch = 0
        self.established = False
        self.epoch_acked = False
        self.next_counter = 0
        self.commit_zxid = 0
        self.commit_due = False      # commit_zxid advanced since the last flush
        self.flush_due = False       # something waits for flush()
        self.lead_ticks = 0
        self.initial_last_zxid = 0
        self.history_at_establishment: tuple[int, ...] = ()
        self._look(reason="start")

    # -- the history ---------------------------------------------------------------------------
    @property
    def last_zxid(self) -> int:
        return self._zxids[-1] if self._zxids else self.snapshot_zxid

    def _append(self, txn: Txn) -> None:
        if txn.zxid <= self.last_zxid:
            raise RemoteProtocolError(f"transaction {txn.zxid:#x} is not after the last one {self.last_zxid:#x}")
        self.log.append(txn)
        self._zxids.append(txn.zxid)
        self._rd.entries.append(txn)

    def _truncate_after(self, zxid: int) -> None:
        cut = bisect.bisect_right(self._zxids, zxid)
        if cut < len(self.log):
            del self.log[cut:]
            del self._zxids[cut:]
            self._rd.entries = [t for t in self._rd.entries if t.zxid <= zxid]
            prev = self._rd.truncate_after
            self._rd.truncate_after = zxid if prev is None else min(prev, zxid)
        self.delivered_zxid = min(self.delivered_zxid, zxid)

    def _txns_after(self, zxid: int) -> list[Txn]:
        return self.log[bisect.bisect_right(self._zxids, zxid):]

    def _floor(self, zxid: int) -> int:
        """The last zxid of this history at or before ``zxid`` (the snapshot's if none)."""
        i = bisect.bisect_right(self._zxids, zxid)
        return self._zxids[i - 1] if i else self.snapshot_zxid

    def _has(self, zxid: int) -> bool:
        i = bisect.bisect_left(self._zxids, zxid)
        return (i < len(self._zxids) and self._zxids[i] == zxid) or zxid == self.snapshot_zxid

    def compact(self, zxid: int, data: bytes) -> None:
        """The host's snapshot of the delivered state at ``zxid``: drop the
        log up to it (kept for SNAP to followers too far behind).

        Raises:
            LocalProtocolError: ``zxid`` was not delivered here.
        """
        if not self.snapshot_zxid <= zxid <= self.delivered_zxid or not self._has(zxid):
            raise LocalProtocolError(f"cannot compact at {zxid:#x}: delivered up to {self.delivered_zxid:#x}")
        cut = bisect.bisect_right(self._zxids, zxid)
        del self.log[:cut]
        del self._zxids[:cut]
        self.snapshot_zxid, self.snapshot_data = zxid, data

    def _deliver_to(self, zxid: int) -> None:
        """Deliver, in order, every logged transaction up to ``zxid``."""
        if zxid <= self.delivered_zxid:
            return
        if not self.restored and self.snapshot_data is not None and self.delivered_zxid <= self.snapshot_zxid:
            self._rd.restore = (self.snapshot_zxid, self.snapshot_data)
            self.delivered_zxid = self.snapshot_zxid
        self.restored = True
        lo = bisect.bisect_right(self._zxids, self.delivered_zxid)
        hi = bisect.bisect_right(self._zxids, zxid)
        self._rd.committed.extend(self.log[lo:hi])
        if hi > lo:
            self.delivered_zxid = self._zxids[hi - 1]

    def _persist_epochs(self) -> None:
        self._rd.hard_state = HardState(self.accepted_epoch, self.current_epoch)

    def _event(self, kind: str, **fields: Any) -> None:
        self._rd.events.append((kind, fields))

    # -- host interface ------------------------------------------------------------------------
    def ready(self) -> Ready:
        """What happened since the last call (see :class:`Ready`)."""
        rd, self._rd = self._rd, Ready()
        return rd

    def flush(self) -> None:
        """Send what was held to go once per burst (``flush_due``): a
        learner's forwarded requests and its cumulative Ack of everything
        it logged; the leader's proposals to each follower, then its
        cumulative Commit. The host calls it once per turn of its event
        loop, after the messages of that turn (and makes the log durable
        before anything leaves, as for any message)."""
        self.flush_due = False
        s = self.session
        if s is not None:
            for batch in _batches(s.requests_due, len):
                self._send_session(s, Request(requests=batch))
            s.requests_due = []
            if s.ack_due_zxid and self.role == FOLLOWING:
                self._send_session(s, Ack(zxid=s.ack_due_zxid))
            s.ack_due_zxid = 0
        commit = self.commit_due and self.role == LEADING
        self.commit_due = False
        for lr in self.learners.values():
            if lr.proposals_due:
                for batch in _batches(lr.proposals_due, _txn_bytes):
                    self._send_session(lr.sid, Proposal(txns=batch))
                lr.proposals_due = []
            if commit and lr.up_to_date and not lr.observer and lr.commit_sent_zxid < self.commit_zxid:
                lr.commit_sent_zxid = self.commit_zxid
                self._send_session(lr.sid, Commit(zxid=self.commit_zxid))

    def next_zxid(self) -> int:
        """The zxid :meth:`propose` gives next (a host that must name it in
        the transaction it builds, as ZooKeeper's PrepRequestProcessor does).

        Raises:
            LocalProtocolError: this server is not an established leader.
        """
        if self.role != LEADING or not self.established:
            raise LocalProtocolError("not an established leader")
        return make_zxid(self.new_epoch, self.next_counter + 1)

    def forward(self, data: bytes) -> bool:
        """Send ``data`` to the leader in this learner's session (at the next
        :meth:`flush`, with the other requests of this turn), for the
        leader's application (it comes out of the leader's :meth:`ready` in
        ``requests``, in order, with this server's id). False, and nothing
        sent, unless this server is a follower or observer in the broadcast
        phase. Requests are taken in order or not at all: one lost breaks
        the session, so no later one of it is taken (ZooKeeper's learners
        send REQUEST packets on their one connection to the leader)."""
        s = self.session
        if self.role not in (FOLLOWING, OBSERVING) or self.phase != "broadcast" or s is None:
            return False
        s.requests_due.append(data)
        self.flush_due = True
        return True

    def propose(self, data: bytes) -> int:
        """Broadcast ``data``; returns its zxid.

        Raises:
            LocalProtocolError: this server is not an established leader, or
                the epoch's counter is exhausted (it then steps down, as
                ZooKeeper forces an election on counter rollover).
        """
        if self.role != LEADING or not self.established:
            raise LocalProtocolError("not an established leader")
        if self.next_counter >= COUNTER_MAX:
            self._look(reason="zxid counter exhausted")
            raise LocalProtocolError("the epoch's zxid counter is exhausted; electing again")
        self.next_counter += 1
        txn = Txn(zxid=make_zxid(self.new_epoch, self.next_counter), data=data)
        self._append(txn)
        self._event("propose", zxid=txn.zxid)
        for lr in self.learners.values():
            if lr.synced and not lr.observer:
                lr.proposals_due.append(txn)
                self.flush_due = True
        self._advance_commit()
        return txn.zxid

    def tick(self) -> None:
        if self.role == LOOKING:
            self._tick_election()
        elif self.role == LEADING:
            self._tick_leader()
        else:
            self._tick_learner()

    def step(self, src: str, msg: Any) -> None:
        """A message from ``src``.

        Raises:
            RemoteProtocolError: ``src`` is no server of the ensemble, or the
                message is one no correct server sends.
        """
        if src not in self.config.voters and src not in self.config.observers:
            raise RemoteProtocolError(f"{src} is not a server of this ensemble")
        if type(msg) is Notification:
            self._on_notification(src, msg)
        elif type(msg) is Packet:
            self._on_packet(src, msg)
        else:
            raise RemoteProtocolError(f"unexpected {type(msg).__name__}")

    # -- phase 0: Fast Leader Election ------------------------------------------------------
    def _look(self, *, reason: str) -> None:
        was = self.role
        self.role = LOOKING
        self.leader = None
        self.session = None
        self.learners = {}
        self.established = False
        self.commit_due = self.flush_due = False
        self.phase = ""
        self.election_epoch += 1
        self.votes = {}
        self.out_of_election = {}
        self.finalize_left = None
        self.vote = (self.current_epoch, self.last_zxid, self.config.server_id)
        self._event("looking", previous=was, reason=reason, election_epoch=self.election_epoch)
        if self.config.server_id in self.config.voters:
            self.votes[self.config.server_id] = (self.vote, self.election_epoch)
        self._broadcast_vote()

    def _notification(self) -> Notification:
        vote = self.vote
        if self.role == LEADING:
            vote = (self.new_epoch, self.last_zxid, self.config.server_id)
        elif self.role in (FOLLOWING, OBSERVING) and self.leader is not None:
            vote = (self.current_epoch, vote[1], self.leader)
        return Notification(leader=vote[2], zxid=vote[1], peer_epoch=vote[0], election_epoch=self.election_epoch,
                            state=self.role)

    def _broadcast_vote(self) -> None:
        n = self._notification()
        for peer in self.config.voters + self.config.observers:
            if peer != self.config.server_id:
                self._rd.messages.append((peer, n))

    def _tick_election(self) -> None:
        if self.finalize_left is not None:
            self.finalize_left -= 1
            if self.finalize_left <= 0:
                self._decide(self.vote[2])
                return
        self._broadcast_vote()  # notifications are re-sent until decided (ZooKeeper: on a timeout)

    def _on_notification(self, src: str, n: Notification) -> None:
        if n.state not in (LOOKING, FOLLOWING, LEADING, OBSERVING):
            raise RemoteProtocolError(f"unknown state {n.state!r}")
        if n.leader not in self.config.voters:
            if n.state == OBSERVING or src in self.config.observers:
                return  # an observer's vote counts for nothing
            raise RemoteProtocolError(f"vote for {n.leader}, not a voter")
        vote = (n.peer_epoch, n.zxid, n.leader)
        if self.role != LOOKING:
            if n.state == LOOKING:  # tell a looking server who leads
                self._rd.messages.append((src, self._notification()))
            return
        if src in self.config.observers:
            return
        if n.state == LOOKING:
            if n.election_epoch > self.election_epoch:
                self.election_epoch = n.election_epoch
                self.votes = {}
                mine = (self.current_epoch, self.last_zxid, self.config.server_id)
                self.vote = vote if _better(vote, mine) else mine
                if self.config.server_id in self.config.voters:
                    self.votes[self.config.server_id] = (self.vote, self.election_epoch)
                self.finalize_left = None
                self._broadcast_vote()
            elif n.election_epoch < self.election_epoch:
                self._rd.messages.append((src, self._notification()))
                return
            elif _better(vote, self.vote):
                self.vote = vote
                if self.config.server_id in self.config.voters:
                    self.votes[self.config.server_id] = (self.vote, self.election_epoch)
                self.finalize_left = None
                self._broadcast_vote()
            self.votes[src] = (vote, n.election_epoch)
            if self._quorum_for(self.vote, self.votes, self.election_epoch):
                if self.finalize_left is None:
                    self.finalize_left = self.config.finalize_ticks
            return
        # the sender is FOLLOWING or LEADING: an ensemble may already be running
        if n.election_epoch == self.election_epoch:
            self.votes[src] = (vote, n.election_epoch)
            if self._quorum_for(vote, self.votes, n.election_epoch) and self._leader_confirmed(vote[2], n):
                self._decide(vote[2])
                return
        self.out_of_election[src] = (vote, n.election_epoch, n.state)
        naming = sum(1 for s, (v, _, _) in self.out_of_election.items()
                     if v[2] == vote[2] and s in self.config.voters)
        if naming >= self.quorum and self._leader_confirmed(vote[2], n):
            self.election_epoch = n.election_epoch
            self._decide(vote[2])

    def _quorum_for(self, vote: tuple[int, int, str], votes: dict[str, tuple[tuple[int, int, str], int]],
                    election_epoch: int) -> bool:
        n = sum(1 for s, (v, e) in votes.items() if v == vote and e == election_epoch and s in self.config.voters)
        return n >= self.quorum

    def _leader_confirmed(self, leader: str, n: Notification) -> bool:
        """FLE's checkLeader: the leader said it leads, or it is this server
        and the notification is of this server's election round."""
        if leader == self.config.server_id:
            return n.election_epoch == self.election_epoch
        seen = self.out_of_election.get(leader)
        return seen is not None and seen[2] == LEADING

    def _decide(self, leader: str) -> None:
        self.finalize_left = None
        self.leader = leader
        self.leader_silent_ticks = 0
        me = self.config.server_id
        if leader == me:
            self.role = LEADING
            self._start_leading()
        else:
            self.role = OBSERVING if me in self.config.observers else FOLLOWING
            self.session = _Session(leader, self.rng.getrandbits(62) + 1)
            self.phase = "discovery"
            self._send_session(self.session, self._follower_info())
        self._event("elected", leader=leader, role=self.role, election_epoch=self.election_epoch)

    def _follower_info(self) -> FollowerInfo:
        return FollowerInfo(accepted_epoch=self.accepted_epoch, last_zxid=self.last_zxid,
                            observer=self.role == OBSERVING)

    # -- sessions ------------------------------------------------------------------------------------
    def _send_session(self, s: _Session, body: Any) -> None:
        s.send_seq += 1
        self._rd.messages.append((s.peer, Packet(session=s.session, leader_session=s.leader_session,
                                                 seq=s.send_seq, body=body)))

    def _on_packet(self, src: str, p: Packet) -> None:
        if p.seq < 1:
            raise RemoteProtocolError(f"packet seq {p.seq}")
        if self.role == LEADING:
            lr = self.learners.get(src)
            if type(p.body) is FollowerInfo and (lr is None or lr.sid.session != p.session) and p.seq == 1:
                self._on_follower_info(src, p.session, p.body)
                return
            if lr is None or lr.sid.session != p.session or p.leader_session != lr.sid.leader_session:
                return  # a session that ended, or a packet of this leader's earlier side of it
            self._take(lr.sid, p, lambda body: self._leader_packet(lr, body))
        elif self.role in (FOLLOWING, OBSERVING):
            s = self.session
            if s is None or src != s.peer or p.session != s.session:
                return
            if s.leader_session == 0:
                if p.seq != 1 or p.leader_session == 0:
                    return  # only the leader's first packet opens its side
                s.leader_session = p.leader_session
            elif p.leader_session != s.leader_session:
                return  # the leader took this session again after losing it: this side ends by timeout
            self._take(s, p, self._learner_packet)

    def _take(self, s: _Session, p: Packet, handle: Any) -> None:
        """Deliver ``p`` in sequence order, holding early ones."""
        if p.seq <= s.recv_seq or p.seq in s.held:
            return  # a copy
        s.heard_ticks = 0
        if p.seq != s.recv_seq + 1:
            if len(s.held) >= SESSION_BUFFER_PACKETS_MAX:
                self._end_session(s, "too many packets ahead of a gap")
                return
            s.held[p.seq] = p.body
            return
        s.recv_seq = p.seq
        s.gap_ticks = 0
        body = p.body
        while True:
            try:
                handle(body)
            except RemoteProtocolError as e:
                # What the peer sent makes no sense at this point of the
                # session (or at all): end the session, as ZooKeeper closes
                # the learner's socket. What was taken before stays: each
                # step of it was valid.
                self._event("session_protocol_error", peer=s.peer, error=str(e))
                self._end_session(s, f"protocol error: {e}")
                return
            if s.recv_seq + 1 not in s.held or not self._session_alive(s):
                return
            s.recv_seq += 1
            body = s.held.pop(s.recv_seq)

    def _session_alive(self, s: _Session) -> bool:
        if self.role == LEADING:
            lr = self.learners.get(s.peer)
            return lr is not None and lr.sid is s
        return self.session is s

    def _end_session(self, s: _Session, reason: str) -> None:
        if self.role == LEADING:
            if self.learners.get(s.peer) is not None and self.learners[s.peer].sid is s:
                del self.learners[s.peer]
                self._event("session_ended", peer=s.peer, reason=reason)
        elif self.session is s:
            self._look(reason=f"session with {s.peer} ended: {reason}")

    def _tick_sessions(self, sessions: list[_Session]) -> None:
        for s in sessions:
            s.heard_ticks += 1
            if s.held:
                s.gap_ticks += 1
                if s.gap_ticks > self.config.sync_limit_ticks:
                    self._end_session(s, "a packet was lost")

    # -- the leader ----------------------------------------------------------------------------------
    def _start_leading(self) -> None:
        self.learners = {}
        self.established = False
        self.epoch_acked = False
        self.lead_ticks = 0
        self.new_epoch = 0
        self.commit_zxid = 0
        self._event("leading", accepted_epoch=self.accepted_epoch, last_zxid=self.last_zxid)
        self._maybe_new_epoch()

    def _on_follower_info(self, src: str, session: int, fi: FollowerInfo) -> None:
        if fi.observer != (src in self.config.observers):
            raise RemoteProtocolError(f"{src} says observer={fi.observer}")
        if fi.accepted_epoch < 0 or fi.last_zxid < 0:
            raise RemoteProtocolError("negative epoch or zxid")
        s = _Session(src, session, self.rng.getrandbits(62) + 1)
        s.recv_seq = 1
        lr = _Learner(s, fi.observer, fi.accepted_epoch, fi.last_zxid)
        self.learners[src] = lr
        if self.new_epoch:
            self._send_session(s, LeaderInfo(epoch=self.new_epoch))
        else:
            self._maybe_new_epoch()

    def _maybe_new_epoch(self) -> None:
        """Discovery: with a quorum's accepted epochs (this server's too),
        propose the new epoch to every session."""
        voters = [lr for lr in self.learners.values() if not lr.observer]
        if len(voters) + 1 < self.quorum:
            return
        top = max([self.accepted_epoch] + [lr.accepted_epoch for lr in voters])
        self.new_epoch = top if self.config.unsafe_reuse_epoch and top > 0 else top + 1
        self.accepted_epoch = self.new_epoch
        self._persist_epochs()
        self._event("new_epoch", epoch=self.new_epoch)
        for lr in self.learners.values():
            self._send_session(lr.sid, LeaderInfo(epoch=self.new_epoch))

    def _leader_packet(self, lr: _Learner, body: Any) -> None:
        t = type(body)
        if t is AckEpoch:
            if lr.acked_epoch or not self.new_epoch:
                raise RemoteProtocolError("AckEpoch out of turn")
            lr.acked_epoch = True
            lr.current_epoch, lr.last_zxid = body.current_epoch, body.last_zxid
            if (body.current_epoch, body.last_zxid) > (self.current_epoch, self.last_zxid) and not lr.observer:
                self._look(reason=f"{lr.sid.peer} is more up to date ({body.current_epoch}, {body.last_zxid:#x})")
                return
            if self.epoch_acked:
                self._sync(lr)
            else:
                self._maybe_establish_epoch()
        elif t is Ack:
            if not lr.synced or body.zxid > self.last_zxid:
                raise RemoteProtocolError("Ack out of turn")
            if not lr.acked_new_leader:
                lr.acked_new_leader = True
                lr.acked_zxid = max(lr.acked_zxid, body.zxid)
                if self.established:
                    self._up_to_date(lr)
                else:
                    self._maybe_established()
                return
            lr.acked_zxid = max(lr.acked_zxid, body.zxid)
            self._advance_commit()
        elif t is Ping:
            pass
        elif t is Request:
            if not lr.up_to_date:
                raise RemoteProtocolError("Request before the learner is up to date")
            if not body.requests:
                raise RemoteProtocolError("an empty Request")
            if self.established:
                self._rd.requests.extend((lr.sid.peer, data) for data in body.requests)
        else:
            raise RemoteProtocolError(f"a learner sent {t.__name__}")

    def _maybe_establish_epoch(self) -> None:
        """Once a quorum acked the new epoch: it becomes this leader's
        current epoch and its history the initial history; synchronize."""
        acked = [lr for lr in self.learners.values() if lr.acked_epoch and not lr.observer]
        if len(acked) + 1 < self.quorum:
            return
        self.epoch_acked = True
        self.current_epoch = self.new_epoch
        self._persist_epochs()
        # Counting starts at 1 in a new epoch; only a reused epoch (unsafe)
        # can find its own transactions already there, and goes on after them.
        self.next_counter = counter_of(self.last_zxid) if epoch_of(self.last_zxid) == self.new_epoch else 0
        self.initial_last_zxid = self.last_zxid
        self.history_at_establishment = tuple(self._zxids)
        self._event("epoch_acked", epoch=self.new_epoch, initial_last_zxid=self.last_zxid)
        for lr in self.learners.values():
            if lr.acked_epoch:
                self._sync(lr)

    def _sync(self, lr: _Learner) -> None:
        """Phase 2 for one learner: DIFF, TRUNC or SNAP, then NewLeader."""
        s, p = lr.sid, lr.last_zxid
        if self.config.unsafe_skip_sync:
            mode = "skip"
        elif p == self.last_zxid or (self._has(p) and p >= self.snapshot_zxid):
            mode = "diff"
        elif p < self.snapshot_zxid or (self._floor(p) == self.snapshot_zxid and self.snapshot_zxid > 0):
            mode = "snap"   # the follower diverged before this server's log begins
        else:
            mode = "trunc"
        if mode == "snap":
            if self.snapshot_data is None:
                raise LocalProtocolError("SNAP needed but no snapshot is held")
            data = self.snapshot_data
            for at in range(0, max(len(data), 1), PACKET_BYTES_MAX):
                self._send_session(s, Snap(zxid=self.snapshot_zxid, data=data[at:at + PACKET_BYTES_MAX],
                                           more=at + PACKET_BYTES_MAX < len(data)))
            base = self.snapshot_zxid
        elif mode == "trunc":
            base = self._floor(p)
            self._send_session(s, Trunc(zxid=base))
        else:
            base = p
        if mode != "skip":
            txns = self._txns_after(base)
            for batch in _batches(txns, _txn_bytes):
                self._send_session(s, Diff(txns=batch))
        self._send_session(s, NewLeader(epoch=self.new_epoch, last_zxid=self.last_zxid))
        lr.synced = True
        self._event("sync", peer=s.peer, mode=mode, peer_zxid=p, base=base, last_zxid=self.last_zxid)

    def _maybe_established(self) -> None:
        acked = [lr for lr in self.learners.values() if lr.acked_new_leader and not lr.observer]
        if len(acked) + 1 < self.quorum:
            return
        self.established = True
        self.commit_zxid = self.last_zxid
        self._deliver_to(self.commit_zxid)
        self._event("established", epoch=self.new_epoch, commit_zxid=self.commit_zxid)
        for lr in self.learners.values():
            if lr.acked_new_leader:
                self._up_to_date(lr)

    def _up_to_date(self, lr: _Learner) -> None:
        lr.up_to_date = True
        lr.commit_sent_zxid = self.commit_zxid
        self._send_session(lr.sid, UpToDate(commit_zxid=self.commit_zxid))

    def _advance_commit(self) -> None:
        """Commit, in zxid order, what a quorum of voters holds."""
        if not self.established:
            return
        if self.config.unsafe_commit_before_quorum:
            target = self.last_zxid
        else:
            acks = sorted([self.last_zxid] + [lr.acked_zxid for lr in self.learners.values()
                                              if not lr.observer and lr.acked_new_leader], reverse=True)
            if len(acks) < self.quorum:
                return
            target = acks[self.quorum - 1]
        if target <= self.commit_zxid:
            return
        lo, hi = bisect.bisect_right(self._zxids, self.commit_zxid), bisect.bisect_right(self._zxids, target)
        self.commit_zxid = target
        self._deliver_to(target)
        for lr in self.learners.values():
            if lr.observer:
                # From its sync on, as ZooKeeper forwards to a learner once
                # synced: an observer not yet up to date logs them and
                # delivers at UpToDate. (Sent from the log only at UpToDate,
                # they were lost to a snapshot taken meanwhile.)
                if lr.synced:
                    for txn in self.log[lo:hi]:
                        self._send_session(lr.sid, Inform(txn=txn))
            elif lr.up_to_date:
                self.commit_due = self.flush_due = True   # one cumulative Commit per flush

    def _tick_leader(self) -> None:
        self.lead_ticks += 1
        self._tick_sessions([lr.sid for lr in self.learners.values()])
        if self.role != LEADING:
            return
        for lr in list(self.learners.values()):
            if lr.sid.heard_ticks > self.config.sync_limit_ticks:
                self._end_session(lr.sid, "silent")
        for lr in self.learners.values():
            self._send_session(lr.sid, Ping())
        heard = 1 + sum(1 for lr in self.learners.values() if not lr.observer and lr.acked_epoch)
        limit = self.config.sync_limit_ticks if self.established else self.config.init_limit_ticks
        if heard < self.quorum and self.lead_ticks > limit:
            self._look(reason="no quorum of followers")

    # -- followers and observers -----------------------------------------------------------------------
    def _learner_packet(self, body: Any) -> None:
        s = self.session
        assert s is not None
        self.leader_silent_ticks = 0
        t = type(body)
        if t is LeaderInfo:
            if self.phase != "discovery":
                raise RemoteProtocolError("LeaderInfo out of turn")
            if body.epoch < self.accepted_epoch:
                self._look(reason=f"leader's epoch {body.epoch} is older than accepted {self.accepted_epoch}")
                return
            if body.epoch > self.accepted_epoch:
                self.accepted_epoch = body.epoch
                self._persist_epochs()
            self.phase = "sync"
            self._send_session(s, AckEpoch(current_epoch=self.current_epoch, last_zxid=self.last_zxid))
        elif t is Trunc or t is Snap or t is Diff or t is NewLeader:
            if self.phase != "sync" or (s.snap_parts and t is not Snap):
                raise RemoteProtocolError(f"{t.__name__} out of turn")
            if t is Trunc:
                self._truncate_after(body.zxid)
            elif t is Snap:
                if s.snap_parts and body.zxid != s.snap_zxid:
                    raise RemoteProtocolError("a Snap part of another snapshot")
                s.snap_bytes += len(body.data)
                if s.snap_bytes > SNAP_BYTES_MAX:
                    raise RemoteProtocolError(f"a snapshot of over {SNAP_BYTES_MAX} bytes")
                s.snap_zxid = body.zxid
                s.snap_parts.append(body.data)
                if body.more:
                    return
                data = s.snap_parts[0] if len(s.snap_parts) == 1 else b"".join(s.snap_parts)
                s.snap_parts, s.snap_bytes = [], 0
                self.log, self._zxids = [], []
                self._rd.entries = []
                self.snapshot_zxid, self.snapshot_data = body.zxid, data
                self._rd.snapshot = (body.zxid, data)
                self.delivered_zxid = 0
                self.restored = False
                self._rd.restore = None
                self._rd.committed = []
            elif t is Diff:
                for txn in body.txns:
                    self._append(txn)
            else:
                if body.epoch < self.accepted_epoch:
                    raise RemoteProtocolError("NewLeader of an older epoch")
                self.current_epoch = body.epoch
                self._persist_epochs()
                self.phase = "await_up_to_date"
                self._send_session(s, Ack(zxid=self.last_zxid))
        elif t is UpToDate:
            if self.phase != "await_up_to_date":
                raise RemoteProtocolError("UpToDate out of turn")
            self.phase = "broadcast"
            self._deliver_to(min(body.commit_zxid, self.last_zxid))
            self._event("up_to_date", leader=s.peer, commit_zxid=body.commit_zxid)
        elif t is Proposal:
            if self.phase not in ("await_up_to_date", "broadcast") or self.role != FOLLOWING:
                raise RemoteProtocolError("Proposal out of turn")
            last = self.last_zxid
            for txn in body.txns:   # all checked before any is logged
                if epoch_of(txn.zxid) != self.current_epoch:
                    raise RemoteProtocolError("Proposal of another epoch")
                if txn.zxid <= last:
                    raise RemoteProtocolError(f"proposed transaction {txn.zxid:#x} is not after {last:#x}")
                last = txn.zxid
            if not body.txns:
                raise RemoteProtocolError("an empty Proposal")
            for txn in body.txns:
                self._append(txn)
            s.ack_due_zxid = last   # acked cumulatively by flush
            self.flush_due = True
        elif t is Commit:
            if self.phase != "broadcast":
                raise RemoteProtocolError("Commit out of turn")
            self._deliver_to(min(body.zxid, self.last_zxid))
        elif t is Inform:
            if self.phase not in ("await_up_to_date", "broadcast") or self.role != OBSERVING:
                raise RemoteProtocolError("Inform out of turn")
            if body.txn.zxid > self.last_zxid:
                self._append(body.txn)
            if self.phase == "broadcast":   # else delivered at UpToDate, which covers it
                self._deliver_to(body.txn.zxid)
        elif t is Ping:
            self._send_session(s, Ping())
        else:
            raise RemoteProtocolError(f"a leader sent {t.__name__}")

    def _tick_learner(self) -> None:
        s = self.session
        if s is None:
            self._look(reason="no session")
            return
        self._tick_sessions([s])
        if self.session is not s:
            return
        self.leader_silent_ticks += 1
        if self.phase == "discovery":
            # The leader may not have decided yet when this server did (it
            # drops sessions while LOOKING): offer the session again, as a
            # ZooKeeper learner retries its connection to the leader.
            self._rd.messages.append((s.peer, Packet(session=s.session, leader_session=0, seq=1,
                                                     body=self._follower_info())))
        limit = self.config.sync_limit_ticks if self.phase == "broadcast" else self.config.init_limit_ticks
        if self.leader_silent_ticks > limit:
            self._look(reason=f"leader {s.peer} silent")
