"""A synod node hosting one :class:`~synod.raft.raft.Raft` server.

The adapter is Raft's "host" in etcd's sense: a timer turns into ``tick()``,
messages into ``step()``, and each :class:`~synod.raft._ready.Ready` into
effects on ``ctx``:

1. persist (``_storage``): the snapshot file, new log entries appended to
   the write-ahead log, the hard state (and its copy);
2. ``ctx.disk.sync()``: the host makes those durable before any message of
   this handler leaves (DESIGN.md section 2's effect order), so a vote or an
   acknowledgement is never sent for state a crash could lose;
3. send the messages; apply the snapshot and committed entries to the state
   machine; answer clients whose entries applied.

Recovery (``on_start``, see ``_storage``): a torn WAL tail is cut off; a
corrupt WAL, snapshot or hard state is kept aside, reported at WARNING, and
the lost entries are repaired from the leader (protocol-aware recovery,
Alagappan et al., FAST 2018) without this server ever voting as if it had
not held them.

Unsafe test-only switches (``RaftNodeConfig.unsafe_skip_fsync``) exist to show
the checkers catch what they break.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Protocol

from synod.core import Context, Node, decode, encode, encoded_size_bytes
from synod.core.errors import LocalProtocolError, RemoteProtocolError
from synod.raft import constants as C
from synod.raft._confchange import ADD_LEARNER, PROMOTE, ConfChange, ConfState
from synod.raft._ready import Ready, Recovered
from synod.raft._sessions import DUPLICATE, NEW, STALE, ClientCommand, ClientSessions, NodeSnapshot, as_client_command
from synod.raft._storage import HARDSTATE_PATH, SNAPSHOT_PATH, WAL_PATH, RaftStorage
from synod.raft._validate import check_inbound
from synod.raft.messages import (
    ConfChangeRequest,
    Entry,
    Propose,
    ProposeReply,
    RaftStatus,
    RaftStatusRequest,
    Read,
)
from synod.raft.raft import Raft, RaftConfig

__all__ = ["RaftNode", "RaftNodeConfig", "StateMachine", "Observer", "MessageStats",
           "WAL_PATH", "HARDSTATE_PATH", "SNAPSHOT_PATH"]

TICK_TIMER = "tick"
FLUSH_TIMER = "flush"
READY_ROUNDS_MAX = 8           # Ready/advance rounds per handler
CLIENTS_PENDING_MAX = 4096     # proposals waiting for apply, per server
READS_WAITING_MAX = 4096       # client reads waiting for a read index or for apply, per server
REFUSED_REMEMBERED_MAX = 4096  # clients whose last refused proposal copy is remembered


class StateMachine(Protocol):
    """What Raft replicates, given by the node's user (synod.kv.simple,
    synod.kv.node, the Lab 3 tester). ``apply`` must be deterministic and
    total: a committed entry is replayed on every restart and must never
    raise.

    Optional, for Raft's inbound checks (synod.raft._validate): a machine
    that trusts its log says what it cannot apply, so it is refused where it
    enters: ``check_command(command, *, from_client) -> str | None`` (a
    client's Propose, or an entry in a leader's AppendEntries),
    ``check_query(query) -> str | None``, ``check_snapshot(data) -> str |
    None`` (its own snapshot bytes); None means acceptable.
    """

    def apply(self, index: int, command: bytes | None) -> bytes | None:
        """Apply the entry at ``index``; ``command`` None is a leader's no-op."""
    def snapshot(self) -> bytes: ...
    def restore(self, data: bytes) -> None: ...

    def query(self, query: bytes) -> bytes | None:
        """Answer a read-only ``query`` from the current state (thesis 6.4).
        Raises LocalProtocolError on a query it does not understand."""


class Observer(Protocol):
    """A white-box watcher (the safety checker): sees every Ready before the
    node acts on it, and each (re)start."""

    def on_start(self, node_id: str, raft: Raft) -> None: ...
    def on_ready(self, node_id: str, raft: Raft, rd: Ready) -> None: ...


@dataclass(slots=True)
class MessageStats:
    """Messages each node asked to send, by type: counts and encoded bytes
    (bytes only when ``count_bytes``)."""

    count_bytes: bool = False
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    bytes_by_type: dict[str, int] = field(default_factory=dict)

    def record(self, node_id: str, msg: Any) -> None:
        name = type(msg).__name__
        per = self.counts.setdefault(node_id, {})
        per[name] = per.get(name, 0) + 1
        if self.count_bytes:
            self.bytes_by_type[name] = self.bytes_by_type.get(name, 0) + encoded_size_bytes(msg)

    def total(self, types: tuple[str, ...] | None = None, node_id: str | None = None) -> int:
        n = 0
        for nid, per in self.counts.items():
            if node_id is not None and nid != node_id:
                continue
            n += sum(v for k, v in per.items() if types is None or k in types)
        return n


@dataclass(frozen=True, slots=True, kw_only=True)
class RaftNodeConfig:
    """``snapshot_interval_entries``: compact the log once this many entries
    were applied since the last snapshot (0: never). ``unsafe_skip_fsync``:
    never sync the disk, so replies can get ahead of what a crash keeps
    (test-only: shows the checkers catch it). ``unsafe_local_reads``:
    answer a ``Read`` at once from this server's state machine, with no
    read index (test-only: a follower or deposed leader reads stale, which
    the linearizability checker must catch). ``unsafe_cut_corrupt_wal``:
    treat a corrupt WAL like a torn tail, forgetting the entries after the
    damage (test-only: shows why protocol-aware recovery is needed).
    ``voters``: the initial
    voters (empty: every peer of the cluster); a server not among them
    starts as a learner, waiting to be added (thesis 4.2.1)."""

    raft: RaftConfig = RaftConfig()
    voters: tuple[str, ...] = ()
    tick_interval_ms: float = C.TICK_INTERVAL_MS
    snapshot_interval_entries: int = 0
    unsafe_skip_fsync: bool = False
    unsafe_local_reads: bool = False
    unsafe_cut_corrupt_wal: bool = False


def _in_effect(cc: ConfChange, conf: ConfState) -> bool:
    """Whether the configuration already is what ``cc`` asks for."""
    if cc.op == ADD_LEARNER:
        return cc.node_id in conf.learners
    if cc.op == PROMOTE:
        return cc.node_id in conf.voters
    return cc.node_id not in conf.members


class RaftNode(Node):
    """Hosts Raft over ``ctx``. ``state_machine``: what it replicates, a
    fresh machine per start (the durable state is the snapshot plus the
    log); Raft has no state machine of its own."""

    def __init__(self, config: RaftNodeConfig | None, state_machine: StateMachine,
                 observer: Observer | None = None, stats: MessageStats | None = None) -> None:
        self.config = config or RaftNodeConfig()
        self.sm: StateMachine = state_machine
        self.observer = observer
        self.stats = stats
        self.raft: Raft | None = None
        # index -> (client, request id, term) waiting for apply.
        # Invariant: len(_clients) <= CLIENTS_PENDING_MAX, and _waiting_at is
        # its inverse: (client, request id) -> index.
        self._clients: dict[int, tuple[str, int, int]] = {}
        self._waiting_at: dict[tuple[str, int], int] = {}
        # Client reads (thesis 6.4): read ctx -> (client, request id, query)
        # until the ReadState arrives, then (read index, client, request id,
        # query) until applied that far. Invariant: together at most
        # READS_WAITING_MAX; both are volatile (a restarted server forgets them).
        self._reads_unindexed: dict[bytes, tuple[str, int, bytes]] = {}
        self._reads_indexed: list[tuple[int, str, int, bytes]] = []
        self._read_seq = 0
        self._applied_index = 0
        self._flush_armed = False
        # client -> (request id, attempt) of the last proposal copy refused
        # here as not applied; volatile (duplicates trail their twin by a
        # network delay, not a restart). Invariant: at most
        # REFUSED_REMEMBERED_MAX clients, the least recent dropped first.
        self._refused: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self.sessions = ClientSessions()  # replicated: rebuilt from the log and snapshots
        self.storage = RaftStorage(skip_fsync=self.config.unsafe_skip_fsync,
                                   cut_corruption=self.config.unsafe_cut_corrupt_wal)

    # -- recovery ------------------------------------------------------------------
    def on_start(self, ctx: Context) -> None:
        recovered = self._recover(ctx)
        voters = self.config.voters or tuple(ctx.peers)
        learners = () if ctx.node_id in voters else (ctx.node_id,)
        self.raft = Raft(ctx.node_id, voters, ctx.rng, self.config.raft, recovered, learners=learners)
        if recovered.snapshot is not None:
            self._restore(recovered.snapshot.data)
            self._applied_index = recovered.snapshot.index
        if self.observer is not None:
            self.observer.on_start(ctx.node_id, self.raft)
        ctx.trace("state", role=self.raft.role, term=self.raft.term, leader=None)
        ctx.set_timer(TICK_TIMER, self.config.tick_interval_ms)
        self._handle_ready(ctx)

    def _recover(self, ctx: Context) -> Recovered:
        return self.storage.recover(ctx)

    # -- inputs --------------------------------------------------------------------------
    def flush_soon(self, ctx: Context) -> None:
        """Act on Raft's Ready once the inputs already waiting have been
        handled (a 0 ms timer): proposals and reads made by many handlers in
        a row go out in one Ready, one WAL append and one fsync (group
        commit). For nodes built on this one that propose outside
        ``on_message``'s Raft path (synod.kv)."""
        if not self._flush_armed:
            self._flush_armed = True
            ctx.set_timer(FLUSH_TIMER, 0.0)

    def on_timer(self, ctx: Context, name: str) -> None:
        if name == FLUSH_TIMER:
            self._flush_armed = False
            self._handle_ready(ctx)
            return
        if name != TICK_TIMER:
            return
        self.raft.tick()
        ctx.set_timer(TICK_TIMER, self.config.tick_interval_ms)
        self._handle_ready(ctx)

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        check_inbound(ctx, src, msg, self)  # RemoteProtocolError before any state changes (issue 8)
        if type(msg) is Propose:
            self._propose(ctx, src, msg)
        elif type(msg) is ConfChangeRequest:
            self._propose_conf_change(ctx, src, msg)
        elif type(msg) is Read:
            self._read(ctx, src, msg)
        elif type(msg) is RaftStatusRequest:
            self._reply_status(ctx)
            return
        elif hasattr(msg, "term"):
            self.raft.step(src, msg)
        else:
            ctx.trace("ignore_message", src=src, reason=f"unexpected {type(msg).__name__}")
            return
        self._handle_ready(ctx)

    def _answer(self, ctx: Context, src: str, reply: ProposeReply) -> None:
        """Answer client ``src``'s request ``reply.request_id`` (a proposal,
        a read or a membership change). A node built on this one (synod.kv)
        overrides it to answer its own local clients, whose ``src`` it chose
        when it called :meth:`propose_for` or :meth:`read_for`."""
        ctx.send(src, reply)

    def propose_for(self, ctx: Context, src: str, request_id: int, command: bytes) -> bool:
        """Propose ``command`` (raw: no client session) on behalf of ``src``,
        answered through :meth:`_answer` once its index applies (ok False if
        another entry took the index). False (nothing proposed): not the
        leader, or too many proposals waiting."""
        if len(self._clients) >= CLIENTS_PENDING_MAX or (src, request_id) in self._waiting_at:
            return False
        placed = self.raft.propose(command)
        if placed is None:
            return False
        self._wait(placed[0], src, request_id, placed[1])
        return True

    def read_for(self, ctx: Context, src: str, request_id: int, query: bytes) -> None:
        """A linearizable read (thesis 6.4) of ``query`` on behalf of
        ``src``, answered through :meth:`_answer`."""
        self._read(ctx, src, Read(request_id=request_id, query=query))

    def _wait(self, index: int, src: str, request_id: int, term: int) -> None:
        self._clients[index] = (src, request_id, term)
        self._waiting_at[(src, request_id)] = index

    def _unwait(self, index: int) -> tuple[str, int, int] | None:
        waiting = self._clients.pop(index, None)
        if waiting is not None:
            self._waiting_at.pop((waiting[0], waiting[1]), None)
        return waiting

    def _seen(self, ctx: Context, src: str, request_id: int) -> bool:
        """Is this a copy of a request already handled here (the network
        duplicates messages; a client may resend)? Answers it if so: a copy
        of one applied is answered with the first result (thesis 6.3), a
        copy of one still waiting here is left to that one's answer.
        Without this, a copy refused ("not the leader") could tell the
        client its request failed while the first copy commits."""
        if (src, request_id) in self._waiting_at:
            return True
        status, result = self.sessions.classify(src, request_id)
        if status == NEW:
            return False
        self._answer(ctx, src, ProposeReply(request_id=request_id, ok=status != STALE, leader_hint=self.raft.leader,
                                   result=result, error="stale request" if status == STALE else ""))
        return True

    def _propose(self, ctx: Context, src: str, msg: Propose) -> None:
        if self._seen(ctx, src, msg.request_id):
            return
        copy = (msg.request_id, msg.attempt)
        if self._refused.get(src) == copy:
            # A duplicate of a copy refused here (the refusal told the client
            # "not applied"): this server may have become the leader since,
            # but it must not apply it now (KV seed 164 of 1000).
            self._refuse(ctx, src, msg.request_id, "refused earlier")
            return
        if len(self._clients) >= CLIENTS_PENDING_MAX:
            self._refuse_copy(ctx, src, copy, "too many clients waiting")
            return
        # In the log with its session (thesis 6.3), so a duplicate applies once.
        placed = self.raft.propose(encode(ClientCommand(client=src, request_id=msg.request_id,
                                                        command=msg.command)))
        if placed is None:
            self._refuse_copy(ctx, src, copy, "not the leader")
            return
        self._wait(placed[0], src, msg.request_id, placed[1])

    def _refuse_copy(self, ctx: Context, src: str, copy: tuple[int, int], why: str) -> None:
        """Refuse a proposal as not applied, and remember that copy."""
        self._refused[src] = copy
        self._refused.move_to_end(src)
        if len(self._refused) > REFUSED_REMEMBERED_MAX:
            self._refused.popitem(last=False)
        self._refuse(ctx, src, copy[0], why)

    def _read(self, ctx: Context, src: str, msg: Read) -> None:
        """A client's linearizable read (thesis 6.4): ask Raft for a read
        index (at the leader, or forwarded to it), serve the query once this
        server has applied that far."""
        if len(self._reads_unindexed) + len(self._reads_indexed) >= READS_WAITING_MAX:
            self._refuse(ctx, src, msg.request_id, "too many reads waiting")
            return
        if self.config.unsafe_local_reads:
            self._answer(ctx, src, ProposeReply(request_id=msg.request_id, ok=True, index=self._applied_index,
                                       leader_hint=self.raft.leader, result=self.sm.query(msg.query)))
            return
        self._read_seq += 1
        read_ctx = encode(self._read_seq)
        if not self.raft.read_index(read_ctx):
            self._refuse(ctx, src, msg.request_id, "no leader known" if self.raft.leader is None
                         else "too many reads pending")
            return
        self._reads_unindexed[read_ctx] = (src, msg.request_id, msg.query)

    def _refuse(self, ctx: Context, dst: str, request_id: int, why: str) -> None:
        self._answer(ctx, dst, ProposeReply(request_id=request_id, ok=False, leader_hint=self.raft.leader, error=why))

    def _serve_reads(self, ctx: Context, rd: Ready) -> None:
        if rd.soft_state is not None and self._reads_unindexed:
            # A new term or role: read indexes asked of an old leader may
            # never come; the reads did not happen, so they fail. A refusal
            # may start the client's next read (KvNode does), asked of the
            # current leader: it is kept, so the table is swapped first.
            stale, self._reads_unindexed = self._reads_unindexed, {}
            for src, rid, _ in stale.values():
                self._refuse(ctx, src, rid, "leadership changed")
        for rs in rd.read_states:
            waiting = self._reads_unindexed.pop(rs.ctx, None)
            if waiting is not None:
                self._reads_indexed.append((rs.index, *waiting))
        if not self._reads_indexed:
            return
        still = []
        for read in self._reads_indexed:
            index, src, rid, query = read
            if index > self._applied_index:
                still.append(read)
                continue
            try:
                result = self.sm.query(query)
            except LocalProtocolError as e:
                self._refuse(ctx, src, rid, str(e))
                continue
            self._answer(ctx, src, ProposeReply(request_id=rid, ok=True, index=index, leader_hint=self.raft.leader,
                                       result=result))
        self._reads_indexed = still

    def _propose_conf_change(self, ctx: Context, src: str, msg: ConfChangeRequest) -> None:
        """A client's membership change (thesis 4.1): refused at once with the
        reason, or answered when its entry commits, like a proposal. A change
        already in effect in the leader's committed configuration is answered
        ok at once: a retry of a change that committed (changes are not in
        the session table) must not read as refused."""
        if (src, msg.request_id) in self._waiting_at:
            return  # a copy of a change waiting here (see _seen)
        try:
            cc = ConfChange(op=msg.op, node_id=msg.node_id)
        except LocalProtocolError as e:
            placed: tuple[int, int] | str = str(e)
        else:
            raft = self.raft
            if raft.is_leader and raft.conf_index <= raft.log.commit_index and _in_effect(cc, raft.conf):
                self._answer(ctx, src, ProposeReply(request_id=msg.request_id, ok=True, index=raft.conf_index,
                                           leader_hint=raft.leader))
                return
            placed = ("too many clients waiting" if len(self._clients) >= CLIENTS_PENDING_MAX
                      else self.raft.propose_conf_change(cc))
        if isinstance(placed, str):
            self._refuse(ctx, src, msg.request_id, placed)
            return
        self._wait(placed[0], src, msg.request_id, placed[1])

    def _reply_status(self, ctx: Context) -> None:
        raft = self.raft
        ctx.reply(RaftStatus(node_id=ctx.node_id, role=raft.role, term=raft.term, leader=raft.leader,
                             last_index=raft.log.last_index, commit_index=raft.log.commit_index,
                             applied_index=raft.log.applied_index, voters=tuple(sorted(raft.conf.voters)),
                             learners=tuple(sorted(raft.conf.learners))))

    def start(self, command: bytes) -> tuple[int, int, bool]:
        """Lab 3's ``Start(command)``: (index, term, is_leader). Call it from
        inside a handler, or from outside one followed by
        ``host.invoke(node.flush)``."""
        placed = self.raft.propose(command)
        if placed is None:
            return -1, self.raft.term, False
        return placed[0], placed[1], True

    def flush(self, ctx: Context) -> None:
        """Act on what Raft has ready (persist, send, apply): for input given
        to Raft from outside a handler (``start``, a conf change, a campaign),
        run through ``host.invoke(node.flush)``."""
        self._handle_ready(ctx)

    # -- Ready -----------------------------------------------------------------------------
    def _handle_ready(self, ctx: Context) -> None:
        raft = self.raft
        for _ in range(READY_ROUNDS_MAX):
            if not raft.has_ready():
                break
            rd = raft.ready()
            if self.observer is not None:
                self.observer.on_ready(ctx.node_id, raft, rd)
            self._persist(ctx, rd)
            stats = self.stats
            for dst, msg in rd.messages:
                if stats is not None:
                    stats.record(ctx.node_id, msg)
                ctx.send(dst, msg)
            self._apply(ctx, rd)
            self._serve_reads(ctx, rd)
            if rd.soft_state is not None:
                ctx.trace("state", role=rd.soft_state.role, term=rd.soft_state.term,
                          leader=rd.soft_state.leader)
            for name, fields in rd.events:
                ctx.trace(name, **fields)
            raft.advance(rd)
            self._maybe_compact()

    def _persist(self, ctx: Context, rd: Ready) -> None:
        log = self.raft.log
        self.storage.persist(ctx, rd, log.entries, log.stable_index)

    def _apply(self, ctx: Context, rd: Ready) -> None:
        if rd.snapshot is not None and rd.apply_snapshot:
            self._restore(rd.snapshot.data)
            self._applied_index = rd.snapshot.index
            for index in [i for i in self._clients if i <= rd.snapshot.index]:
                # Applied before the snapshot if its session says so;
                # otherwise it cannot be told (the session may be evicted).
                src, rid, _ = self._unwait(index)
                status, result = self.sessions.classify(src, rid)
                ok = status == DUPLICATE
                self._answer(ctx, src, ProposeReply(request_id=rid, ok=ok, index=index if ok else 0,
                                           leader_hint=self.raft.leader, result=result,
                                           error="" if ok else "replaced by a snapshot", indeterminate=not ok))
        for e in rd.committed_entries:
            stale, result = self._apply_entry(e)
            self._applied_index = e.index
            self._applied(ctx, e, result)
            waiting = self._unwait(e.index)
            if waiting is not None:
                src, rid, term = waiting
                ok = term == e.term and not stale
                self._answer(ctx, src, ProposeReply(request_id=rid, ok=ok, index=e.index, leader_hint=self.raft.leader,
                                           result=result if ok else None, error="stale request" if stale else ""))

    def _applied(self, ctx: Context, e: Entry, result: bytes | None) -> None:
        """Entry ``e`` was just applied with ``result`` (a hook for a node
        built on this one: synod.kv wakes clients blocked on the keys it wrote)."""

    def _apply_entry(self, e: Entry) -> tuple[bool, bytes | None]:
        """Apply one committed entry: (stale, result). A membership change
        took effect when appended, so the state machine sees it as a no-op;
        a client's command goes through its session (thesis 6.3): applied
        once, a duplicate answered with the first result, a stale one not
        applied."""
        if e.conf_change or e.data is None:
            return False, self.sm.apply(e.index, None)
        cc = as_client_command(e.data)
        if cc is None:
            return False, self.sm.apply(e.index, e.data)
        status, result = self.sessions.classify(cc.client, cc.request_id)
        if status == STALE:
            return True, None
        if status == NEW:
            result = self.sm.apply(e.index, cc.command)
            self.sessions.record(cc.client, cc.request_id, result, e.index)
        return False, result

    def _snapshot(self) -> bytes:
        return encode(NodeSnapshot(sessions=self.sessions.encode(), data=self.sm.snapshot()))

    def _restore(self, data: bytes) -> None:
        """A snapshot made by :meth:`_snapshot` (or, from before sessions, the
        state machine's own bytes). Raises RemoteProtocolError if corrupt."""
        snap = None
        try:
            snap = decode(data, NodeSnapshot) if data else None
        except RemoteProtocolError:
            pass
        if snap is None:
            self.sessions = ClientSessions()
            self.sm.restore(data)
            return
        self.sessions = ClientSessions.decode(snap.sessions)
        self.sm.restore(snap.data)

    def _maybe_compact(self) -> None:
        every = self.config.snapshot_interval_entries
        log = self.raft.log
        if every and log.applied_index - log.snapshot.index >= every:
            self.raft.compact(log.applied_index, self._snapshot())
