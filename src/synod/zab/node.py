"""A synod node hosting one :class:`~synod.zab.zab.Zab` server.

The host in the sans-IO sense: a timer turns into ``tick()``, messages
into ``step()``, a 0 ms timer armed when Zab holds packets for
``flush()`` (``flush_due``: proposals, requests, an Ack, a Commit) into
``flush()`` once the host's turn is over, and each
:class:`~synod.zab.zab.Ready` into effects on
``ctx``, in the order Zab needs (Junqueira et al. 2011, section IV: a
follower logs a proposal on stable storage before it acks):

1. persist: truncate the transaction log, install a snapshot, append the
   new transactions, write the epochs (accepted and current);
2. ``ctx.disk.sync()``: the host makes them durable before any message of
   this handler leaves (DESIGN.md section 2's effect order);
3. send; restore the state machine from a snapshot; deliver committed
   transactions in zxid order and answer the clients whose proposals they
   were.

On disk (each a file of checksummed records, ``synod.core.records``):
``zab/epochs`` (one record: accepted and current epoch, rewritten whole),
``zab/log`` (one record per transaction; rewritten whole after a
truncation), ``zab/snapshot`` (one record: zxid and the state machine's
bytes). A torn log tail (a crash during an append: never synced, never
acknowledged) is cut off; a corrupt record anywhere is reported at WARNING,
the file kept aside as ``<name>.corrupt-<n>``, and the valid prefix used.

Snapshots (``snapshot_interval_txns``): a state machine with
``fuzzy_snapshot`` (synod.zk's data tree) is snapshotted fuzzily, as
ZooKeeper's servers do (Hunt et al. 2010, section 4.3): when one is due the
node notes its base, the zxid delivered so far, and steps the snapshot
``FUZZY_SNAPSHOT_ITEMS_MAX`` items per delivered transaction and per tick
while transactions keep being delivered (so a snapshot of N items is done
within N / FUZZY_SNAPSHOT_ITEMS_MAX transactions: the log it keeps for the
replay stays bounded under any load); when it completes, Zab's log is
compacted to the base only (``Zab.compact(base, data)``: the entries after
it stay, so a restart or a SNAP sync replays them over the snapshot, which
the machine's idempotent apply allows), the snapshot written, the log
rewritten, and both synced. One at a time; a crash or a restore (SNAP)
loses the one in progress. A machine without ``fuzzy_snapshot`` (the
harness's hash chain) is snapshotted at once at the delivered zxid.

Not yet: protocol-aware repair of a corrupt log (the server may have acked
what it lost; Raft's RaftNode has it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from synod.core import Context, Node, decode, encode, pack_record, scan_records
from synod.core.errors import LocalProtocolError, RemoteProtocolError
from synod.zab.messages import Notification, Packet, Propose, ProposeReply, Txn, ZabStatus, ZabStatusRequest
from synod.zab.zab import LEADING, HardState, Ready, Recovered, Zab, ZabConfig

__all__ = ["ZabNode", "ZabNodeConfig", "StateMachine", "FuzzySnapshot", "Observer", "EPOCHS_PATH", "LOG_PATH",
           "SNAPSHOT_PATH", "FUZZY_SNAPSHOT_ITEMS_MAX"]

EPOCHS_PATH = "zab/epochs"
LOG_PATH = "zab/log"
SNAPSHOT_PATH = "zab/snapshot"
TICK_TIMER = "tick"
FLUSH_TIMER = "flush"   # 0 ms: fires after the messages of this turn of the host's loop
PENDING_PROPOSALS_MAX = 4096    # client proposals waiting for delivery, per server
PROPOSE_DATA_BYTES_MAX = 1 << 20
FUZZY_SNAPSHOT_ITEMS_MAX = 16    # items (znodes) a fuzzy snapshot serializes per delivered transaction or tick


class FuzzySnapshot(Protocol):
    """A snapshot in progress (Hunt et al. 2010, section 4.3): ``step``
    serializes at most ``items_max`` (> 0) more items of the machine as they
    are now and returns None, until the last, which returns the snapshot's
    bytes (for ``restore``); it is not stepped after that. Transactions are
    applied between steps."""

    def step(self, items_max: int) -> bytes | None: ...


class StateMachine(Protocol):
    """What Zab replicates: ``apply`` is deterministic and total (a
    delivered transaction is delivered again after every restart).
    ``snapshot``: the state after the last delivered zxid, at once;
    ``restore(zxid, data)``: replace the state with a snapshot labelled
    ``zxid`` (the transactions after it are delivered next).

    Optionally ``fuzzy_snapshot() -> FuzzySnapshot``: a snapshot taken
    while transactions keep applying, labelled with the zxid delivered at its
    start. A machine offering it must apply idempotently: its restore is
    followed by every transaction after that zxid, some of which the
    snapshot already holds, and must end in the state that applied each
    once (ZooKeeper's data tree, synod.zk.tree)."""

    def apply(self, zxid: int, data: bytes) -> bytes | None: ...
    def snapshot(self) -> bytes: ...
    def restore(self, zxid: int, data: bytes) -> None: ...


class Observer(Protocol):
    """A white-box watcher (:class:`~synod.zab.checker.ZabChecker`): sees
    each (re)start and every Ready before the node acts on it."""

    def on_start(self, node_id: str, zab: Zab) -> None: ...
    def on_ready(self, node_id: str, zab: Zab, rd: Ready) -> None: ...


class _NullMachine:
    def apply(self, zxid: int, data: bytes) -> bytes | None:
        return None

    def snapshot(self) -> bytes:
        return b""

    def restore(self, zxid: int, data: bytes) -> None:
        pass


@dataclass(frozen=True, slots=True, kw_only=True)
class ZabNodeConfig:
    """``zab``: the protocol's configuration (server id, voters, limits);
    ``tick_ms``: one tick (ZooKeeper's tickTime); ``snapshot_interval_txns``:
    snapshot and compact after this many delivered transactions (0: never;
    ZooKeeper's snapCount), ``snapshot_interval_bytes``: or after this many
    bytes of delivered transactions, whichever comes first (0: no byte
    bound; Zab's log since the last snapshot is kept in memory, so this
    bounds it for large transactions). Each bound is drawn anew for every
    snapshot between half of it and all of it (ZooKeeper's
    SyncRequestProcessor rolls so too), so that the servers of an ensemble,
    which deliver the same transactions, do not all snapshot at once."""

    zab: ZabConfig
    tick_ms: float = 100.0
    snapshot_interval_txns: int = 0
    snapshot_interval_bytes: int = 0


class ZabNode(Node):
    """A Zab server. Clients send :class:`Propose`; the leader answers
    :class:`ProposeReply` once the transaction is delivered here, any other
    server at once with the leader it knows (zxid 0)."""

    def __init__(self, config: ZabNodeConfig, machine_factory: Callable[[], StateMachine] | None = None,
                 observer: Observer | None = None) -> None:
        self.config = config
        self.machine_factory = machine_factory or _NullMachine
        self.observer = observer
        self.zab: Zab | None = None
        self.machine: StateMachine = self.machine_factory()
        self.pending: dict[int, Any] = {}   # zxid -> the client's reply handle
        self.delivered_since_snapshot = 0
        self.delivered_bytes_since_snapshot = 0
        # This snapshot's bounds: the configured ones less a random roll (_roll).
        self.snapshot_after_txns = config.snapshot_interval_txns
        self.snapshot_after_bytes = config.snapshot_interval_bytes
        # The fuzzy snapshot in progress, if any, and its base: the zxid
        # delivered when it started. Invariant: at most one at a time.
        self.fuzzy: FuzzySnapshot | None = None
        self.fuzzy_base_zxid = 0
        self.fuzzy_delivered = 0    # transactions delivered since it started
        self.fuzzy_steps = 0
        self.flush_armed = False

    # -- handlers ------------------------------------------------------------------------------
    def on_start(self, ctx: Context) -> None:
        self.fuzzy = None   # a crash lost the snapshot in progress
        self.flush_armed = False
        self._roll(ctx)
        recovered = self._recover(ctx)
        self.zab = Zab(self.config.zab, ctx.rng, recovered)
        if self.observer is not None:
            self.observer.on_start(ctx.node_id, self.zab)
        ctx.set_timer(TICK_TIMER, self.config.tick_ms)
        self._act(ctx)

    def on_timer(self, ctx: Context, name: str) -> None:
        if self.zab is None:
            return
        if name == FLUSH_TIMER:
            self.flush_armed = False
            self.zab.flush()
            self._act(ctx)
            return
        if name != TICK_TIMER:
            return
        self.zab.tick()
        ctx.set_timer(TICK_TIMER, self.config.tick_ms)
        self._act(ctx)
        if self.fuzzy is not None:
            self._step_snapshot(ctx)

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        zab = self.zab
        if zab is None:
            return
        t = type(msg)
        if t is Notification or t is Packet:
            zab.step(src, msg)   # RemoteProtocolError: the host drops it, nothing changed
            self._act(ctx)
        elif t is Propose:
            self._propose(ctx, msg)
        elif t is ZabStatusRequest:
            ctx.reply(ZabStatus(role=zab.role, leader=zab.leader, accepted_epoch=zab.accepted_epoch,
                                current_epoch=zab.current_epoch, last_zxid=zab.last_zxid,
                                last_delivered_zxid=zab.delivered_zxid,
                                extra={"established": zab.established, "commit_zxid": zab.commit_zxid}))
        else:
            raise RemoteProtocolError(f"unexpected {t.__name__} from {src}")

    def _propose(self, ctx: Context, msg: Propose) -> None:
        zab = self.zab
        assert zab is not None
        if len(msg.data) > PROPOSE_DATA_BYTES_MAX:
            raise RemoteProtocolError(f"proposal of {len(msg.data)} bytes")
        if zab.role != LEADING or not zab.established or len(self.pending) >= PENDING_PROPOSALS_MAX:
            ctx.reply(ProposeReply(zxid=0, leader=zab.leader))
            return
        try:
            zxid = zab.propose(msg.data)
        except LocalProtocolError:
            ctx.reply(ProposeReply(zxid=0, leader=None))
            self._act(ctx)
            return
        self.pending[zxid] = ctx.reply_handle()
        self._act(ctx)

    # -- the Ready ---------------------------------------------------------------------------
    def _act(self, ctx: Context) -> None:
        zab = self.zab
        assert zab is not None
        if zab.flush_due and not self.flush_armed:
            # What this turn holds goes out once, after its last message (Zab.flush).
            self.flush_armed = True
            ctx.set_timer(FLUSH_TIMER, 0)
        rd = zab.ready()
        if rd.empty:
            return
        if self.observer is not None:
            self.observer.on_ready(ctx.node_id, zab, rd)
        for kind, fields in rd.events:
            ctx.trace(f"zab_{kind}", **fields)
        if self.fuzzy is not None and (rd.snapshot is not None or rd.restore is not None):
            ctx.trace("fuzzy_snapshot_dropped", base=self.fuzzy_base_zxid, reason="a snapshot from the leader")
            self.fuzzy = None
        self._persist(ctx, rd)
        for dst, msg in rd.messages:
            ctx.send(dst, msg)
        if rd.restore is not None:
            self.machine = self.machine_factory()
            self.machine.restore(*rd.restore)
        if rd.committed:
            self._deliver(ctx, rd.committed)
        for origin, data in rd.requests:
            self.forwarded(ctx, origin, data)
        if zab.role != LEADING and self.pending:
            for handle in self.pending.values():   # this server no longer leads: their outcome is unknown
                ctx.reply_to(handle, ProposeReply(zxid=0, leader=zab.leader))
            self.pending.clear()

    def forwarded(self, ctx: Context, origin: str, data: bytes) -> None:
        """On the leader: learner ``origin`` forwarded ``data`` with
        :meth:`Zab.forward` (taken in its session's order). A subclass (the
        ZooKeeper server) prepares and proposes it; here nothing forwards."""
        ctx.trace("ignore_forwarded", origin=origin, reason="this node takes no forwarded requests")

    def delivered(self, ctx: Context, txn: Txn, result: bytes | None) -> None:
        """``txn`` was applied to the state machine (which returned
        ``result``): answer the client that proposed it here. A subclass
        (synod.zk's server) answers its own clients instead."""
        handle = self.pending.pop(txn.zxid, None)
        if handle is not None:
            ctx.reply_to(handle, ProposeReply(zxid=txn.zxid))

    def _deliver(self, ctx: Context, txns: list[Txn]) -> None:
        for txn in txns:
            self.delivered(ctx, txn, self.machine.apply(txn.zxid, txn.data))
        self.delivered_since_snapshot += len(txns)
        self.delivered_bytes_since_snapshot += sum(len(txn.data) for txn in txns)
        every, every_bytes = self.snapshot_after_txns, self.snapshot_after_bytes
        zab = self.zab
        assert zab is not None
        if self.fuzzy is not None:
            self.fuzzy_delivered += len(txns)
            self._step_snapshot(ctx, len(txns))
        elif every and (self.delivered_since_snapshot >= every
                        or (every_bytes and self.delivered_bytes_since_snapshot >= every_bytes)):
            self.delivered_since_snapshot = self.delivered_bytes_since_snapshot = 0
            self._roll(ctx)
            start = getattr(self.machine, "fuzzy_snapshot", None)
            if start is not None:   # stepped from the next batch or tick on
                self.fuzzy, self.fuzzy_base_zxid = start(), zab.delivered_zxid
                self.fuzzy_delivered = self.fuzzy_steps = 0
                ctx.trace("fuzzy_snapshot_started", base=self.fuzzy_base_zxid)
            else:
                self._save_snapshot(ctx, zab.delivered_zxid, self.machine.snapshot())

    def _roll(self, ctx: Context) -> None:
        """Draw the next snapshot's bounds: half of each configured one plus
        a random part of the other half (ZabNodeConfig)."""
        txns, size = self.config.snapshot_interval_txns, self.config.snapshot_interval_bytes
        self.snapshot_after_txns = txns - ctx.rng.randrange(txns // 2) if txns >= 2 else txns
        self.snapshot_after_bytes = size - ctx.rng.randrange(size // 2) if size >= 2 else size

    def _step_snapshot(self, ctx: Context, txns: int = 1) -> None:
        """Advance the fuzzy snapshot in progress by ``FUZZY_SNAPSHOT_ITEMS_MAX``
        items per transaction just delivered (one step for a tick); once
        complete, save it at its base zxid (the log after the base stays for
        the replay)."""
        assert self.fuzzy is not None
        data = self.fuzzy.step(FUZZY_SNAPSHOT_ITEMS_MAX * txns)
        self.fuzzy_steps += 1
        if data is None:
            return
        self.fuzzy = None
        zab = self.zab
        assert zab is not None
        base = self.fuzzy_base_zxid
        if not zab.snapshot_zxid <= base <= zab.delivered_zxid:
            ctx.trace("fuzzy_snapshot_dropped", base=base, reason="a newer snapshot was installed")
            return
        ctx.trace("fuzzy_snapshot_done", base=base, delivered=zab.delivered_zxid, steps=self.fuzzy_steps,
                  txns_during=self.fuzzy_delivered, snapshot_bytes=len(data))
        self._save_snapshot(ctx, base, data)

    def _save_snapshot(self, ctx: Context, zxid: int, data: bytes) -> None:
        """Compact Zab's log to ``zxid`` (delivered here) and make the
        snapshot and the shorter log durable."""
        zab = self.zab
        assert zab is not None
        zab.compact(zxid, data)
        ctx.disk.write(SNAPSHOT_PATH, pack_record(encode([zxid, data])))
        self._rewrite_log(ctx, zab.log)
        ctx.disk.sync()

    def _persist(self, ctx: Context, rd: Ready) -> None:
        zab = self.zab
        assert zab is not None
        if rd.snapshot is not None:
            ctx.disk.write(SNAPSHOT_PATH, pack_record(encode(list(rd.snapshot))))
        if rd.truncate_after is not None or rd.snapshot is not None:
            self._rewrite_log(ctx, zab.log)   # the log as it is now: entries included
        elif rd.entries:
            ctx.disk.append(LOG_PATH, b"".join(pack_record(encode(t)) for t in rd.entries))
        if rd.hard_state is not None:
            hs = rd.hard_state
            ctx.disk.write(EPOCHS_PATH, pack_record(encode([hs.accepted_epoch, hs.current_epoch])))
        if rd.must_sync:
            ctx.disk.sync()

    @staticmethod
    def _rewrite_log(ctx: Context, log: list[Txn]) -> None:
        ctx.disk.write(LOG_PATH, b"".join(pack_record(encode(t)) for t in log))

    # -- recovery ------------------------------------------------------------------------------
    def _recover(self, ctx: Context) -> Recovered:
        hard = HardState()
        raw = self._records(ctx, EPOCHS_PATH)
        if raw:
            try:
                accepted, current = decode(raw[-1], tuple[int, int])
                hard = HardState(accepted, current)
            except RemoteProtocolError as e:
                self._keep_aside(ctx, EPOCHS_PATH, f"undecodable: {e}")
        snap_zxid, snap_data = 0, None
        raw = self._records(ctx, SNAPSHOT_PATH)
        if raw:
            try:
                snap_zxid, snap_data = decode(raw[-1], tuple[int, bytes])
            except RemoteProtocolError as e:
                self._keep_aside(ctx, SNAPSHOT_PATH, f"undecodable: {e}")
        txns: list[Txn] = []
        for rec in self._records(ctx, LOG_PATH):
            try:
                txn = decode(rec, Txn)
            except RemoteProtocolError as e:
                self._keep_aside(ctx, LOG_PATH, f"undecodable record: {e}")
                break
            if txn.zxid > (txns[-1].zxid if txns else snap_zxid):
                txns.append(txn)
        if txns and txns[-1].zxid >> 32 > hard.current_epoch:
            ctx.warn("the log is ahead of the saved epochs; epochs raised to the log's", log_epoch=txns[-1].zxid >> 32)
            hard = HardState(max(hard.accepted_epoch, txns[-1].zxid >> 32), txns[-1].zxid >> 32)
        if snap_data is not None:
            self.machine = self.machine_factory()
        return Recovered(hard_state=hard, snapshot_zxid=snap_zxid, snapshot_data=snap_data, txns=tuple(txns))

    def _records(self, ctx: Context, path: str) -> list[bytes]:
        data = ctx.disk.read(path)
        if not data:
            return []
        scan = scan_records(data)
        if scan.error is not None:
            if scan.torn:
                ctx.warn("torn tail cut off", path=path, valid_bytes=scan.valid_bytes)
                ctx.disk.write(path, data[: scan.valid_bytes])
            else:
                self._keep_aside(ctx, path, scan.error)
                ctx.disk.write(path, data[: scan.valid_bytes])
        return scan.records

    @staticmethod
    def _keep_aside(ctx: Context, path: str, why: str) -> None:
        data = ctx.disk.read(path) or b""
        n = sum(1 for p in ctx.disk.list(path + ".corrupt-"))
        aside = f"{path}.corrupt-{n}"
        ctx.disk.write(aside, data)
        ctx.warn("corrupt file kept aside; its valid prefix is used", path=path, kept_as=aside, error=why)
