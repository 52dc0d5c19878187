"""The GFS master and its shadows (Ghemawat et al., SOSP 2003, sections
2.3-2.6, 3.1, 3.4, 4 and 5.1).

One :class:`MasterNode` class plays both roles: the master (``shadows``
names its shadow masters) and a shadow (``master`` names the master).

The master holds all metadata (:class:`~synod.gfs.Metadata`): the
namespace, each file's chunk handles, each chunk's version, changed only by
operation-log records (:class:`~synod.gfs._oplog.OpLog`). A mutation is
applied and its record appended and synced in one handler; the client is
answered once a majority of the log's copies (the master's and its
shadows') hold the record (2.6.3: "only after flushing the corresponding
log record to disk both locally and remotely"). Replica locations are not
logged: they come from the chunkservers' heartbeats (2.6.2).

Leases (3.1, 4.5): a client asking to mutate chunk ``i`` of a file gets
the primary and secondaries. A new lease bumps the chunk's version: the
master logs the new version, tells every up-to-date replica (the primary
with the lease's duration, counted from its receipt), and answers the
client only after they confirm; a replica that does not confirm is
dropped and later found stale. The master counts the lease from when the
primary's confirmation arrived (later than the primary's own start), so
the primary's lease always ends first. Asking for chunk ``i`` one past the
end allocates it: replicas placed across racks (4.2), created on the
chunkservers, then ``AddChunk`` logged. A chunk shared with a snapshot is
copied first (3.4: ``CopyChunkLocal`` on each replica, then ``CopyChunk``
logged).

Namespace locks (4.1): a lease holds read locks on the file's name and
its ancestors while it is being granted; a snapshot holds write locks on
source and destination while it revokes the source's leases and logs,
so no lease on the source is granted in between. Creation and deletion
take their locks within one handler. An operation waiting for its locks
keeps its place in the line and looks again every ``LOCK_POLL_MS``.

The regular scan (``MASTER_TICK_MS``): chunkservers silent for
``CHUNKSERVER_TIMEOUT_MS`` are dropped; chunks below their replication goal
are cloned, furthest below first (4.3); replicas over the goal are
removed; hidden files older than the retention interval are removed for
good (4.4); a checkpoint is written after ``CHECKPOINT_RECORDS`` records.
Stale and orphaned replicas are named for deletion in heartbeat replies.

Shadows (5.1.3) replay the master's log as it ships it (``LogAppend``;
``LogFetch`` to catch up), serve read-only requests from their own
metadata (which may lag a little), learn replica locations from the same
heartbeats, and answer mutations with READ_ONLY. A master whose own log is
found corrupt at start fetches the rest from its shadows before serving.

Simplified: no automatic master failover (the paper's is outside GFS, by
external monitoring); rebalancing beyond removing extra replicas; chunk
locations in heartbeats are the full list each time (the paper sends a
subset).
"""

from __future__ import annotations

from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from synod.core import Context, Node, Params, ReplyHandle
from synod.gfs import constants as C
from synod.gfs._chunks import Lease
from synod.gfs._metadata import Metadata
from synod.gfs._namespace import LockTable, Status, check_path, lock_set, snapshot_lock_set
from synod.gfs._oplog import OpLog
from synod.gfs._placement import ServerInfo, place_replicas, replica_to_remove
from synod.gfs.messages import (
    Ack,
    AddChunk,
    Checkpoint,
    ChunkHealth,
    ChunkLocation,
    ClientCreate,
    ClientDelete,
    ClientFsck,
    ClientLease,
    ClientList,
    ClientLocate,
    ClientMkdirs,
    ClientNodes,
    ClientRename,
    ClientSnapshot,
    ClientStat,
    ClientUndelete,
    CloneChunk,
    ConfirmVersion,
    CopyChunk,
    CopyChunkLocal,
    CreateChunk,
    CreateFile,
    DeleteFile,
    FsckReply,
    Heartbeat,
    HeartbeatReply,
    LeaseReply,
    ListReply,
    LocateReply,
    LogAck,
    LogAppend,
    LogEntry,
    LogFetch,
    LogRecord,
    Mkdirs,
    NewVersion,
    NodesReply,
    RemoveHidden,
    Rename,
    RevokeLease,
    ServerHealth,
    SetChunkVersion,
    Snapshot,
    StatReply,
    StatusReply,
    Undelete,
)

__all__ = ["MasterNode", "MasterConfig"]

TICK = "tick"
LOCATE_CHUNKS_MAX = 1_000   # chunks one ClientLocate answers


class MasterConfig(Params):
    """A master's (or shadow's) settings, all times in ms of its clock; also
    the cluster config's params of ``synod.gfs.factories:master_factory``.

    Raises:
        ValueError: a value out of range (a ConfigError from a config).
    """

    shadows: tuple[str, ...] = ()
    master: str | None = None          # set on a shadow: the master it follows
    chunk_size_bytes: int = C.CHUNK_SIZE_BYTES_DEFAULT
    replication_default: int = C.REPLICATION_GOAL_DEFAULT
    lease_ms: int = C.LEASE_DURATION_MS
    chunkserver_timeout_ms: int = C.CHUNKSERVER_TIMEOUT_MS
    tick_ms: int = C.MASTER_TICK_MS
    deleted_retention_ms: int = C.DELETED_RETENTION_MS
    checkpoint_records: int = C.CHECKPOINT_RECORDS
    rpc_timeout_ms: int = C.RPC_TIMEOUT_MS
    clones_in_flight_max: int = C.CLONES_IN_FLIGHT_MAX
    write_quorum: int = C.WRITE_QUORUM_DEFAULT  # replicas a chunk needs to take writes (at most its goal)
    addresses: dict[str, str] = {}     # node id -> "host:port", told to clients (ClientNodes)
    unsafe_skip_version_bump: bool = False   # the unsafe option: a new lease keeps the version

    def __post_init__(self) -> None:
        if self.chunk_size_bytes < C.CHUNK_SIZE_BYTES_MIN or self.chunk_size_bytes % C.BLOCK_SIZE_BYTES:
            raise ValueError(f"chunk_size_bytes must be a multiple of {C.BLOCK_SIZE_BYTES}")
        if not 1 <= self.replication_default <= C.REPLICATION_GOAL_MAX:
            raise ValueError(f"replication_default must be within 1..{C.REPLICATION_GOAL_MAX}")
        if min(self.lease_ms, self.chunkserver_timeout_ms, self.tick_ms, self.checkpoint_records,
               self.rpc_timeout_ms, self.clones_in_flight_max, self.write_quorum) <= 0:
            raise ValueError("times, checkpoint_records, clones_in_flight_max and write_quorum must be > 0")
        if self.master is not None and self.shadows:
            raise ValueError("a shadow (master set) has no shadows")
        if len(self.addresses) > C.SERVERS_MAX:
            raise ValueError(f"addresses: at most {C.SERVERS_MAX}")


@dataclass(slots=True)
class _Server:
    """A live chunkserver as its heartbeats tell it; ``recent_creations``
    halves every tick (4.2: new replicas spread over servers)."""

    name: str
    rack: str
    last_heard_ms: float
    capacity_bytes: int = 0
    used_bytes: int = 0
    recent_creations: int = 0
    corrupt_reported: int = 0
    orphans: int = 0
    to_delete: set[int] = field(default_factory=set)

    @property
    def info(self) -> ServerInfo:
        return ServerInfo(name=self.name, rack=self.rack, used_bytes=self.used_bytes,
                          capacity_bytes=self.capacity_bytes, recent_creations=self.recent_creations)


class MasterNode(Node):
    """The master, or a shadow master when ``config.master`` is set."""

    def __init__(self, config: MasterConfig | None = None) -> None:
        self.config = config or MasterConfig()
        self.is_shadow = self.config.master is not None
        self.oplog = OpLog()
        self.meta = Metadata()
        self.tail: list[LogEntry] = []          # records since the last checkpoint (for shadows that lag)
        self.last_checkpoint = Checkpoint(lsn=0, entries=(), chunks=(), next_handle=1)
        self.servers: dict[str, _Server] = {}
        self.locks = LockTable()
        self.next_op = 1
        self.reserved_handle = 1                # handles below it are taken (logged, or being allocated)
        self.pending_handles: set[int] = set()  # handles created on chunkservers, not yet logged
        self.allocating: set[str] = set()       # files whose next chunk is being allocated
        self.cloning: set[int] = set()
        # handle -> its version before a new lease's bump, while the replicas are told
        # (no other lease is granted on it, nor is it cloned, until they answered)
        self.bumping: dict[int, int] = {}
        self.grants = 0                         # leases granted in this incarnation (see _next_grant)
        self.shadow_lsn: dict[str, int] = {}    # master: what each shadow holds durably
        self.pending: list[tuple[int, ReplyHandle, Any]] = []  # (lsn, request, reply) until on a quorum
        self.ready = True                       # False while fetching a damaged log's rest from shadows
        self.awaiting_shadows: set[str] = set()  # the shadows that have not answered that fetch yet

    # -- start ------------------------------------------------------------------------------------
    def on_start(self, ctx: Context) -> None:
        loaded = self.oplog.load(ctx)
        self.meta = loaded.metadata
        self.tail = loaded.tail
        self.last_checkpoint = loaded.checkpoint
        self.reserved_handle = self.meta.chunks.next_handle
        # 3.1: a master that (re)starts grants no lease for a lease duration.
        self.meta.chunks.lease_duration_ms = self.config.lease_ms
        if self.meta.lsn > 0 or loaded.damaged is not None:   # (a master that never logged granted nothing)
            self.meta.chunks.hold_leases_until(int(ctx.now_ms) + self.config.lease_ms)
        if loaded.damaged is not None:
            ctx.warn(f"operation log damaged: {loaded.damaged}", lsn=self.meta.lsn)
        if self.is_shadow:
            ctx.send(self.config.master or "", LogFetch(lsn=self.meta.lsn))
        elif loaded.damaged is not None and self.config.shadows:
            self.ready = False   # acknowledged records may be past the damage: fetch them first
            self.awaiting_shadows = set(self.config.shadows)
            for s in self.config.shadows:
                ctx.send(s, LogFetch(lsn=self.meta.lsn))
        ctx.trace("gfs_master_start", lsn=self.meta.lsn, shadow=self.is_shadow, ready=self.ready)
        ctx.set_timer(TICK, self.config.tick_ms)

    # -- dispatch ---------------------------------------------------------------------------------
    def on_message(self, ctx: Context, src: str, msg: Any) -> Coroutine[Any, Any, None] | None:
        t = type(msg)
        if t is Heartbeat:
            self._heartbeat(ctx, src, msg)
        elif t is LogAppend:
            self._log_append(ctx, src, msg)
        elif t is LogAck:
            self._log_ack(ctx, src, msg)
        elif t is LogFetch:
            self._log_fetch(ctx, src, msg)
        elif t in (ClientLocate, ClientStat, ClientList, ClientFsck) and not self.ready:
            ctx.reply(StatusReply(status=Status.RETRY, detail="the master is recovering its log"))
        elif t is ClientLocate:
            ctx.reply(self._locate(msg))
        elif t is ClientStat:
            ctx.reply(self._stat(msg))
        elif t is ClientFsck:
            ctx.reply(self._fsck())
        elif t is ClientNodes:
            ctx.reply(NodesReply(status=Status.OK, nodes=tuple(sorted(self.config.addresses.items()))))
        elif t is ClientList:
            status, names = self.meta.namespace.list(msg.path, include_hidden=msg.include_hidden) \
                if check_path(msg.path) is None else (Status.BAD_PATH, [])
            ctx.reply(ListReply(status=status, names=tuple(names)))
        elif t in (ClientMkdirs, ClientCreate, ClientDelete, ClientRename, ClientUndelete, ClientLease, ClientSnapshot):
            if self.is_shadow:
                ctx.reply(StatusReply(status=Status.READ_ONLY, detail="a shadow master serves reads only"))
            elif not self.ready:
                ctx.reply(StatusReply(status=Status.RETRY, detail="the master is recovering its log"))
            elif t is ClientLease:
                return self._lease(ctx, msg)
            elif t is ClientSnapshot:
                return self._snapshot(ctx, msg)
            else:
                self._namespace_mutation(ctx, msg)
        return None

    # -- the operation log --------------------------------------------------------------------------
    def _log(self, ctx: Context, record: LogRecord) -> tuple[Status, int]:
        """Apply ``record`` and, if it applied, log it (append, sync, ship to
        the shadows). Returns (status, lsn)."""
        if not self.ready or self.is_shadow:
            return Status.RETRY, 0
        lsn = self.meta.lsn + 1
        status = self.meta.apply(lsn, record)
        if status != Status.OK:
            return status, 0
        entry = LogEntry(lsn=lsn, record=record)
        self.tail.append(entry)
        self.oplog.append(ctx, [entry])
        for s in self.config.shadows:
            ctx.send(s, LogAppend(entries=(entry,)))
        ctx.trace("gfs_log", lsn=lsn, record=type(record).__name__)
        return status, lsn

    def _quorum_lsn(self) -> int:
        """The highest lsn a majority of the log's copies hold."""
        if not self.config.shadows:
            return self.meta.lsn
        held = sorted([self.meta.lsn] + [self.shadow_lsn.get(s, 0) for s in self.config.shadows], reverse=True)
        return held[(len(held) + 1) // 2 - 1]

    def _answer_when_logged(self, ctx: Context, handle: ReplyHandle, lsn: int, reply: Any) -> None:
        if lsn <= self._quorum_lsn():
            ctx.reply_to(handle, reply)
        elif len(self.pending) >= C.PENDING_REPLIES_MAX:
            ctx.reply_to(handle, StatusReply(status=Status.RETRY, detail="too many mutations waiting on shadows"))
        else:
            self.pending.append((lsn, handle, reply))

    def _log_ack(self, ctx: Context, src: str, msg: LogAck) -> None:
        if src not in self.config.shadows or self.is_shadow:
            return
        self.shadow_lsn[src] = max(self.shadow_lsn.get(src, 0), min(msg.lsn, self.meta.lsn))
        quorum = self._quorum_lsn()
        if self.pending and self.pending[0][0] <= quorum:
            keep = []
            for lsn, handle, reply in self.pending:
                if lsn <= quorum:
                    ctx.reply_to(handle, reply)
                else:
                    keep.append((lsn, handle, reply))
            self.pending = keep

    def _log_fetch(self, ctx: Context, src: str, msg: LogFetch) -> None:
        """A shadow (or a recovering master) holds the log up to ``msg.lsn``."""
        if src not in self.config.shadows and src != self.config.master:
            return
        if not self.is_shadow and src in self.config.shadows:
            self.shadow_lsn[src] = max(self.shadow_lsn.get(src, 0), min(msg.lsn, self.meta.lsn))
        first = self.last_checkpoint.lsn + 1
        if msg.lsn + 1 < first:
            entries = tuple(self.tail[:C.LOG_APPEND_ENTRIES_MAX])
            ctx.send(src, LogAppend(entries=entries, checkpoint=self.last_checkpoint))
        elif msg.lsn < self.meta.lsn:
            start = msg.lsn + 1 - first
            ctx.send(src, LogAppend(entries=tuple(self.tail[start:start + C.LOG_APPEND_ENTRIES_MAX])))
        elif self.is_shadow:
            ctx.send(src, LogAppend(entries=()))   # a recovering master: nothing newer here
            if msg.lsn > self.meta.lsn:
                ctx.send(src, LogFetch(lsn=self.meta.lsn))

    def _log_append(self, ctx: Context, src: str, msg: LogAppend) -> None:
        """A shadow receives the master's records (or a recovering master,
        its shadow's)."""
        if not (src == self.config.master or (not self.is_shadow and src in self.config.shadows)):
            return
        if msg.checkpoint is not None and msg.checkpoint.lsn > self.meta.lsn:
            try:
                self.meta = Metadata.restore(msg.checkpoint)
            except ValueError as e:
                ctx.warn(f"checkpoint from {src} does not load: {e}")
                return
            self.meta.chunks.lease_duration_ms = self.config.lease_ms
            self.last_checkpoint = msg.checkpoint
            self.tail = []
            self.oplog.write_checkpoint(ctx, msg.checkpoint)
        fresh = []
        for entry in msg.entries:
            if entry.lsn <= self.meta.lsn:
                continue
            if entry.lsn != self.meta.lsn + 1:
                break
            try:
                self.meta.replay(entry.lsn, entry.record)
            except ValueError as e:
                # Not this log's next record: start over from the sender's checkpoint.
                ctx.warn(f"record {entry.lsn} from {src} does not apply ({e}); reloading from its checkpoint")
                self.meta = Metadata()
                self.meta.chunks.lease_duration_ms = self.config.lease_ms
                self.tail = []
                self.oplog.write_checkpoint(ctx, self.meta.checkpoint())
                ctx.send(src, LogFetch(lsn=0))
                return
            fresh.append(entry)
        if fresh:
            self.tail.extend(fresh)
            self.oplog.append(ctx, fresh)
        if self.is_shadow:
            ctx.send(src, LogAck(lsn=self.meta.lsn))
            if msg.entries and msg.entries[-1].lsn > self.meta.lsn:
                ctx.send(src, LogFetch(lsn=self.meta.lsn))
        else:
            self.reserved_handle = max(self.reserved_handle, self.meta.chunks.next_handle)
            if len(msg.entries) >= C.LOG_APPEND_ENTRIES_MAX:
                ctx.send(src, LogFetch(lsn=self.meta.lsn))
            elif not self.ready:
                # Every shadow must have answered: an acknowledged record is on a majority of
                # the copies, and this one's own copy is damaged.
                self.awaiting_shadows.discard(src)
                if not self.awaiting_shadows:
                    self.ready = True
                    ctx.warn(f"operation log recovered from the shadows up to record {self.meta.lsn}")

    # -- reads (master and shadows) ------------------------------------------------------------------
    def _stat(self, msg: ClientStat) -> StatReply:
        if check_path(msg.path) is not None:
            return StatReply(status=Status.BAD_PATH)
        meta = self.meta.namespace.lookup(msg.path)
        if meta is None:
            return StatReply(status=Status.NOT_FOUND)
        return StatReply(status=Status.OK, is_dir=meta.is_dir, replication=meta.replication,
                         chunks=len(meta.chunk_handles), chunk_size_bytes=self.config.chunk_size_bytes)

    def _locate(self, msg: ClientLocate) -> LocateReply:
        if check_path(msg.path) is not None or msg.first_index < 0 or msg.count < 0:
            return LocateReply(status=Status.BAD_ARGUMENT)
        meta = self.meta.namespace.lookup(msg.path)
        if meta is None or meta.is_dir:
            return LocateReply(status=Status.NOT_FOUND if meta is None else Status.IS_A_DIRECTORY)
        handles = meta.chunk_handles
        chunks = []
        for index in range(msg.first_index, min(len(handles), msg.first_index + min(msg.count, LOCATE_CHUNKS_MAX))):
            handle = handles[index]
            info = self.meta.chunks.get(handle)
            version = info.confirmed if info is not None else 0   # a replica at it or above will do
            chunks.append(ChunkLocation(index=index, handle=handle, version=version,
                                        replicas=tuple(self._live(self.meta.chunks.up_to_date(handle)))))
        return LocateReply(status=Status.OK, chunk_count=len(handles), chunk_size_bytes=self.config.chunk_size_bytes,
                           chunks=tuple(chunks))

    def _fsck(self) -> FsckReply:
        chunks = self.meta.chunks
        held: dict[str, int] = {}
        for h in chunks.handles():
            for s in chunks.up_to_date(h):
                held[s] = held.get(s, 0) + 1
        servers = tuple(ServerHealth(server=s.name, rack=s.rack, replicas=held.get(s.name, 0), used_bytes=s.used_bytes,
                                     corrupt_reported=s.corrupt_reported, orphans=s.orphans)
                        for s in sorted(self.servers.values(), key=lambda s: s.name))
        short = []
        files = 0
        for path, meta in self.meta.namespace.files():
            files += 1
            for index, h in enumerate(meta.chunk_handles):
                have = len(self._live(chunks.up_to_date(h)))
                if have < meta.replication and len(short) < LOCATE_CHUNKS_MAX:
                    short.append(ChunkHealth(path=path, index=index, handle=h, replicas=have, goal=meta.replication))
        return FsckReply(status=Status.OK, files=files, chunks=len(chunks), servers=servers,
                         under_replicated=tuple(short), lsn=self.meta.lsn)

    def _live(self, servers: list[str]) -> list[str]:
        return [s for s in servers if s in self.servers]

    # -- namespace mutations ----------------------------------------------------------------------
    def _namespace_mutation(self, ctx: Context, msg: Any) -> None:
        t = type(msg)
        path = msg.path
        why = check_path(path)
        if why is not None:
            ctx.reply(StatusReply(status=Status.BAD_PATH, detail=why))
            return
        if t is ClientUndelete and check_path(msg.hidden) is not None:
            ctx.reply(StatusReply(status=Status.BAD_PATH, detail="hidden name"))
            return
        if t is ClientRename and check_path(msg.dst) is not None:
            ctx.reply(StatusReply(status=Status.BAD_PATH, detail=f"destination: {check_path(msg.dst)}"))
            return
        op = self._op()
        reads, writes = lock_set(path, write=True)
        if t is ClientUndelete:
            writes = writes + (msg.hidden,)
        elif t is ClientRename:
            more_reads, more_writes = lock_set(msg.dst, write=True)
            reads, writes = reads + more_reads, writes + more_writes
        if self.locks.full or not self.locks.acquire(op, reads, writes):
            self.locks.release(op)
            ctx.reply(StatusReply(status=Status.RETRY, detail="the name is locked"))
            return
        try:
            record: LogRecord
            if t is ClientMkdirs:
                record = Mkdirs(path=path)
            elif t is ClientCreate:
                record = CreateFile(path=path, replication=msg.replication or self.config.replication_default)
            elif t is ClientDelete:
                record = DeleteFile(path=path, now_ms=int(ctx.unix_ms))
            elif t is ClientRename:
                record = Rename(src=path, dst=msg.dst, now_ms=int(ctx.unix_ms))
            else:
                record = Undelete(hidden=msg.hidden, path=path)
            status, lsn = self._log(ctx, record)
        finally:
            self.locks.release(op)
        if status != Status.OK:
            ctx.reply(StatusReply(status=status))
        else:
            self._answer_when_logged(ctx, ctx.reply_handle(), lsn, StatusReply(status=Status.OK))

    def _op(self) -> int:
        op = self.next_op
        self.next_op += 1
        return op

    async def _locked(self, ctx: Context, op: int, reads: tuple[str, ...], writes: tuple[str, ...]) -> bool:
        """Take the locks, waiting in line up to ``LOCK_WAIT_MS_MAX``; False
        (out of line) if not granted by then or the line is full."""
        if self.locks.full:
            return False
        if self.locks.acquire(op, reads, writes):
            return True
        waited = 0
        while waited < C.LOCK_WAIT_MS_MAX:
            await ctx.sleep(C.LOCK_POLL_MS)
            waited += C.LOCK_POLL_MS
            if self.locks.holds(op):
                return True
        self.locks.release(op)
        return False

    # -- leases (3.1, 4.5) and allocation (4.2) --------------------------------------------------------
    async def _lease(self, ctx: Context, msg: ClientLease) -> None:
        reply = ctx.reply_handle()
        why = check_path(msg.path)
        if why is not None or msg.index < -1:
            ctx.reply(LeaseReply(status=Status.BAD_ARGUMENT, detail=why or "index"))
            return
        op = self._op()
        reads, _ = lock_set(msg.path, write=False)
        if not await self._locked(ctx, op, reads, ()):
            ctx.reply_to(reply, LeaseReply(status=Status.RETRY, retry_ms=C.LOCK_POLL_MS * 10, detail="locked"))
            return
        try:
            answer = await self._grant(ctx, msg)
        finally:
            self.locks.release(op)
        if answer.status == Status.OK and answer.version:
            self._answer_when_logged(ctx, reply, self.meta.lsn, answer)
        else:
            ctx.reply_to(reply, answer)

    async def _grant(self, ctx: Context, msg: ClientLease) -> LeaseReply:
        meta = self.meta.namespace.lookup(msg.path)
        if meta is None or meta.is_dir or meta.deleted_at_ms is not None:
            return LeaseReply(status=Status.NOT_FOUND if meta is None or not meta.is_dir else Status.IS_A_DIRECTORY)
        index = msg.index if msg.index >= 0 else max(len(meta.chunk_handles) - 1, 0)
        while index >= len(meta.chunk_handles):
            if index > len(meta.chunk_handles):
                return LeaseReply(status=Status.BAD_ARGUMENT, detail=f"chunk {index} is past the file's end")
            if msg.path in self.allocating:
                await ctx.sleep(C.LOCK_POLL_MS)   # another client is allocating it: wait and look again
                meta = self.meta.namespace.lookup(msg.path)
                if meta is None or meta.deleted_at_ms is not None:
                    return LeaseReply(status=Status.NOT_FOUND)
                continue
            self.allocating.add(msg.path)
            try:
                status = await self._allocate(ctx, msg.path, meta.replication)
            finally:
                self.allocating.discard(msg.path)
            if status != Status.OK:
                return LeaseReply(status=status, retry_ms=self.config.tick_ms, detail="no chunkserver took the chunk")
            meta = self.meta.namespace.lookup(msg.path)
            if meta is None or meta.deleted_at_ms is not None:
                return LeaseReply(status=Status.NOT_FOUND)
        handle = meta.chunk_handles[index]
        if self.meta.shared(handle):
            status, handle = await self._copy_on_write(ctx, msg.path, index, handle)
            if status != Status.OK:
                return LeaseReply(status=status, retry_ms=self.config.tick_ms, detail="copy-on-write failed")
        return await self._lease_of(ctx, index, handle, min(self.config.write_quorum, meta.replication))

    def _reserve_handle(self) -> int:
        handle = max(self.reserved_handle, self.meta.chunks.next_handle)
        self.reserved_handle = handle + 1
        self.pending_handles.add(handle)
        return handle

    async def _allocate(self, ctx: Context, path: str, replication: int) -> Status:
        """Place and create the file's next chunk, then log it (4.2)."""
        now = ctx.now_ms
        servers = [s.info for sid, s in self.servers.items() if now - s.last_heard_ms < self.config.chunkserver_timeout_ms]
        targets = place_replicas(servers, replication)
        if not targets:
            return Status.UNAVAILABLE
        handle = self._reserve_handle()
        try:
            made: list[str] = []
            tried = set(targets)
            for _ in range(2):   # servers that did not answer are replaced once, so a chunk starts whole
                acks = await ctx.gather([ctx.call(t, CreateChunk(handle=handle, version=1), self.config.rpc_timeout_ms)
                                         for t in targets])
                made += [t for t, a in zip(targets, acks, strict=True) if type(a) is Ack and a.ok]
                if len(made) >= replication:
                    break
                targets = [t for t in place_replicas([s.info for s in self.servers.values()
                                                      if s.name not in tried], replication - len(made),
                                                     holders=made)]
                tried.update(targets)
                if not targets:
                    break
            if len(made) < min(self.config.write_quorum, replication):
                return Status.UNAVAILABLE   # (what was made is an orphan: deleted at its next report)
            status, _ = self._log(ctx, AddChunk(path=path, handle=handle))
            if status != Status.OK:
                return status
            info = self.meta.chunks.get(handle)
            if info is not None:
                for t in made:
                    info.replicas[t] = 1
                    if t in self.servers:
                        self.servers[t].recent_creations += 1
            return Status.OK
        finally:
            self.pending_handles.discard(handle)

    async def _copy_on_write(self, ctx: Context, path: str, index: int, handle: int) -> tuple[Status, int]:
        """3.4: the chunk is shared with a snapshot; each replica copies it
        locally to a new handle, then the copy is logged as this file's."""
        holders = self._live(self.meta.chunks.up_to_date(handle))
        if not holders:
            return Status.UNAVAILABLE, handle
        new = self._reserve_handle()
        try:
            acks = await ctx.gather([ctx.call(h, CopyChunkLocal(handle=handle, new_handle=new),
                                              self.config.rpc_timeout_ms) for h in holders])
            made = [h for h, a in zip(holders, acks, strict=True) if type(a) is Ack and a.ok]
            if not made:
                return Status.UNAVAILABLE, handle
            meta = self.meta.namespace.lookup(path)
            if meta is None or index >= len(meta.chunk_handles) or meta.chunk_handles[index] != handle:
                return Status.RETRY, handle
            if not self.meta.shared(handle):
                return Status.OK, handle   # the snapshot went away meanwhile: nothing to copy
            status, _ = self._log(ctx, CopyChunk(path=path, index=index, new_handle=new))
            if status != Status.OK:
                return status, handle
            info = self.meta.chunks.get(new)
            if info is not None:
                for h in made:
                    info.replicas[h] = info.version
            return Status.OK, new
        finally:
            self.pending_handles.discard(new)

    async def _lease_of(self, ctx: Context, index: int, handle: int, quorum: int) -> LeaseReply:
        chunks = self.meta.chunks
        live = set(self.servers)
        info = chunks.get(handle)
        if info is None:
            return LeaseReply(status=Status.NOT_FOUND)
        if handle in self.cloning or handle in self.bumping:
            return LeaseReply(status=Status.RETRY, index=index, handle=handle, retry_ms=C.LOCK_POLL_MS * 10,
                              detail="the chunk is being re-replicated" if handle in self.cloning
                              else "a new lease on the chunk is being confirmed")
        for s in [s for s in info.replicas if s not in live]:
            del info.replicas[s]
        previous = info.version
        held = dict(info.replicas)
        now = int(ctx.now_ms)
        if chunks.lease_free_at_ms(handle) <= now and len(self._live(chunks.up_to_date(handle))) < quorum:
            return LeaseReply(status=Status.RETRY, index=index, handle=handle, retry_ms=self.config.tick_ms,
                              detail=f"fewer than {quorum} replicas: waiting for re-replication")
        lease = chunks.lease(handle, now)
        if lease is None:
            wait = chunks.lease_free_at_ms(handle) - now
            if chunks.no_lease_before_ms > now:
                wait = max(wait, chunks.no_lease_before_ms - now)
            status = Status.RETRY if wait > 0 else Status.UNAVAILABLE
            return LeaseReply(status=status, index=index, handle=handle, retry_ms=max(wait, self.config.tick_ms),
                              detail="a lease is still held" if wait > 0 else "no up-to-date replica")
        if lease.new:
            self.bumping[handle] = previous
            try:
                lease = await self._new_lease(ctx, lease, previous, held, quorum)
            finally:
                self.bumping.pop(handle, None)
            if lease is None:
                return LeaseReply(status=Status.RETRY, index=index, handle=handle, retry_ms=self.config.tick_ms,
                                  detail="the primary did not confirm its lease")
        return LeaseReply(status=Status.OK, index=index, handle=handle, version=lease.version, primary=lease.primary,
                          secondaries=lease.secondaries, chunk_size_bytes=self.config.chunk_size_bytes)

    async def _new_lease(self, ctx: Context, lease: Lease, previous: int, held: dict[str, int],
                         quorum: int) -> Lease | None:
        """4.5: log the new version, tell the replicas (the primary with its
        lease; ``held``: each one's version before), and once every one has
        confirmed, log that (``ConfirmVersion``) and hand the lease out. A
        replica that did not confirm may have taken the version all the
        same (its answer lost), so the version is bumped once more among
        those that did, and so on: a replica outside the lease can never
        pass for current. None: the primary did not confirm (it may hold the
        lease anyway: none is granted until it would have expired); no
        mutation ran under the unconfirmed versions, so every replica at
        the confirmed one or above stays current."""
        handle, version = lease.handle, lease.version
        info = self.meta.chunks.get(handle)
        assert info is not None
        members = (lease.primary,) + lease.secondaries
        before = {s: held.get(s, previous) for s in members}
        for _ in range(C.VERSION_ROUNDS_MAX):
            if self.config.unsafe_skip_version_bump:
                version = previous   # unsafe: the replicas keep the old version; a stale one looks current
                info.version = previous
            else:
                info.version = previous   # the table bumped it; logging the bump needs the old one
                status, _ = self._log(ctx, SetChunkVersion(handle=handle, version=version))
                if status != Status.OK:
                    return None
            for s in members:
                info.replicas[s] = version
            info.grant = grant = self._next_grant()
            calls = [ctx.call(s, NewVersion(handle=handle, previous=before[s], version=version, grant=grant,
                                            lease_ms=self.config.lease_ms if s == lease.primary else 0,
                                            secondaries=members[1:] if s == lease.primary else ()),
                              self.config.rpc_timeout_ms) for s in members]
            self.bumping[handle] = previous   # (no other lease request gets past _lease_of meanwhile)
            acks = await ctx.gather(calls)
            if self.meta.chunks.get(handle) is not info:
                return None   # the file went away meanwhile
            # The primary started its lease when NewVersion reached it: no later than now.
            info.lease_expiry_ms = int(ctx.now_ms) + self.config.lease_ms
            confirmed = tuple(s for s, a in zip(members, acks, strict=True) if type(a) is Ack and a.ok)
            for s in members:
                if s not in confirmed and info.replicas.get(s) == version:
                    info.replicas[s] = previous   # at best; it reports what it holds
            if lease.primary not in confirmed:
                info.primary = None   # no lease; none is granted before lease_expiry_ms
                info.lease_secondaries = ()
                return None
            if len(confirmed) < quorum:
                info.primary = None   # too few to take acknowledged writes; the bump stays unconfirmed
                info.lease_secondaries = ()
                return None
            if len(confirmed) == len(members) or self.config.unsafe_skip_version_bump:
                if version > info.confirmed:
                    self._log(ctx, ConfirmVersion(handle=handle, version=version))
                info.lease_secondaries = confirmed[1:]
                return Lease(handle=handle, version=version, primary=lease.primary, secondaries=confirmed[1:],
                             expiry_ms=info.lease_expiry_ms, new=True)
            before = {s: version for s in confirmed}
            members, previous, version = confirmed, version, version + 1
        info.primary = None
        info.lease_secondaries = ()
        return None

    # -- snapshots (3.4) -------------------------------------------------------------------------------
    async def _snapshot(self, ctx: Context, msg: ClientSnapshot) -> None:
        reply = ctx.reply_handle()
        for p in (msg.src, msg.dst):
            why = check_path(p)
            if why is not None:
                ctx.reply(StatusReply(status=Status.BAD_PATH, detail=why))
                return
        op = self._op()
        reads, writes = snapshot_lock_set(msg.src, msg.dst)
        if not await self._locked(ctx, op, reads, writes):
            ctx.reply_to(reply, StatusReply(status=Status.RETRY, detail="locked"))
            return
        try:
            await self._revoke_leases(ctx, msg.src)
            status, lsn = self._log(ctx, Snapshot(src=msg.src, dst=msg.dst))
        finally:
            self.locks.release(op)
        if status != Status.OK:
            ctx.reply_to(reply, StatusReply(status=status))
        else:
            self._answer_when_logged(ctx, reply, lsn, StatusReply(status=Status.OK))

    async def _revoke_leases(self, ctx: Context, src: str) -> None:
        """Every lease on a chunk under ``src`` ends before the snapshot is
        logged: given back by its primary, or run out."""
        handles = []
        for path, meta in self.meta.namespace.files():
            if path == src or path.startswith(src.rstrip("/") + "/"):
                handles.extend(meta.chunk_handles)
        chunks = self.meta.chunks
        await self._ask_primaries_to_give_back(ctx, handles)
        while True:
            now = int(ctx.now_ms)
            waits = [chunks.lease_free_at_ms(h) - now for h in handles]
            wait = max(waits + [chunks.no_lease_before_ms - now if handles else 0], default=0)
            if wait <= 0:
                return
            await ctx.sleep(min(wait, self.config.tick_ms))

    # -- chunkservers (2.6.2, 4.3-4.5, 5.2) ------------------------------------------------------------
    def _heartbeat(self, ctx: Context, src: str, msg: Heartbeat) -> None:
        now = ctx.now_ms
        server = self.servers.get(src)
        if server is None:
            if len(self.servers) >= C.SERVERS_MAX:
                return
            server = self.servers[src] = _Server(name=src, rack=msg.rack, last_heard_ms=now)
            ctx.trace("gfs_server_joined", server=src)
        server.last_heard_ms = now
        server.rack = msg.rack
        server.capacity_bytes = msg.capacity_bytes
        server.used_bytes = msg.used_bytes
        server.corrupt_reported += len(msg.corrupt)
        held = list(msg.chunks)
        if self.bumping:
            # A heartbeat sent before a replica took a version bump in flight says nothing new.
            held = [(h, self._version(h)) if self.bumping.get(h) == v else (h, v) for h, v in held]
        report = self.meta.chunks.report(src, held, adopt=not self.is_shadow and self.ready)
        # A stale replica goes only once the chunk has a current one (never the last copies).
        delete = {(h, self._confirmed(h)) for h in report.stale if self.meta.chunks.up_to_date(h)}
        delete |= {(h, 0) for h in report.orphans if h not in self.pending_handles}
        server.orphans = len(report.orphans)
        extended: list[int] = []
        if not self.is_shadow and self.ready:   # (a recovering master logs nothing until its log is whole)
            for handle, version in report.adopted:
                # 4.5: the master failed after a bump it had not logged; log the higher version.
                self._log(ctx, SetChunkVersion(handle=handle, version=version))
                self._log(ctx, ConfirmVersion(handle=handle, version=version))
            now_i = int(now)
            extended = [h for h in msg.extend if self.meta.chunks.extend(h, src, now_i)]
            delete |= {(h, 0) for h in server.to_delete}
            server.to_delete.clear()
        for handle in sorted(report.stale):
            ctx.trace("gfs_stale_replica", server=src, handle=handle)
        # (a shadow, or a master whose log is not whole yet, knows too little to delete anything)
        ctx.reply(HeartbeatReply(delete=tuple(sorted(delete)) if not self.is_shadow and self.ready else (),
                                 extended=tuple(extended), lease_ms=self.config.lease_ms,
                                 primary_master=not self.is_shadow))

    def _next_grant(self) -> int:
        """A number above every grant this master made, in any incarnation:
        the log's position (it only grows) and a count within it."""
        self.grants += 1
        return (self.meta.lsn << 20) + self.grants

    async def _ask_primaries_to_give_back(self, ctx: Context, handles: list[int]) -> None:
        """Ask the primary of each chunk in ``handles`` that has one to end
        its lease now (RevokeLease); a lease given back is free at once, one
        whose primary does not answer runs out on its own. Used before a
        snapshot (3.4) and before a clone copies a chunk (4.3)."""
        chunks = self.meta.chunks
        held = [(h, info.primary) for h in handles if (info := chunks.get(h)) is not None and info.primary is not None]
        if not held:
            return
        acks = await ctx.gather([ctx.call(p, RevokeLease(handle=h, grant=self._grant_of(h)), self.config.rpc_timeout_ms)
                                 for h, p in held])
        for (h, p), a in zip(held, acks, strict=True):
            if type(a) is Ack and a.ok:
                chunks.give_back(h, p)

    def _grant_of(self, handle: int) -> int:
        info = self.meta.chunks.get(handle)
        return info.grant if info is not None else 0

    def _version(self, handle: int) -> int:
        info = self.meta.chunks.get(handle)
        return info.version if info is not None else 0

    def _confirmed(self, handle: int) -> int:
        info = self.meta.chunks.get(handle)
        return info.confirmed if info is not None else 0

    def on_timer(self, ctx: Context, name: str) -> Coroutine[Any, Any, None] | None:
        if name != TICK:
            return None
        ctx.set_timer(TICK, self.config.tick_ms)
        now = ctx.now_ms
        for srv in self.servers.values():
            srv.recent_creations //= 2
        for sid in [s for s, srv in self.servers.items() if now - srv.last_heard_ms >= self.config.chunkserver_timeout_ms]:
            del self.servers[sid]
            lost = self.meta.chunks.server_lost(sid)
            ctx.trace("gfs_server_lost", server=sid, chunks=len(lost))
        if self.is_shadow:
            ctx.send(self.config.master or "", LogFetch(lsn=self.meta.lsn))
            self._maybe_checkpoint(ctx)
            return None
        for s in self.config.shadows:   # resend what a shadow has not acknowledged (lost messages)
            if self.shadow_lsn.get(s, 0) < self.meta.lsn:
                self._log_fetch(ctx, s, LogFetch(lsn=self.shadow_lsn.get(s, 0)))
        if not self.ready:
            for s in self.config.shadows:
                ctx.send(s, LogFetch(lsn=self.meta.lsn))
            return None
        for hidden in self.meta.namespace.expired_hidden(int(ctx.unix_ms), self.config.deleted_retention_ms):
            self._log(ctx, RemoveHidden(hidden=hidden))
        self._maybe_checkpoint(ctx)
        goals = self._goals()   # (one walk of the namespace per tick)
        self._remove_extra_replicas(ctx.now_ms, goals)
        return self._re_replicate(ctx, goals)

    def _maybe_checkpoint(self, ctx: Context) -> None:
        if self.oplog.records_since_checkpoint >= self.config.checkpoint_records:
            self.last_checkpoint = self.meta.checkpoint()
            self.oplog.write_checkpoint(ctx, self.last_checkpoint)
            self.tail = []
            ctx.trace("gfs_checkpoint", lsn=self.last_checkpoint.lsn)

    def _goals(self) -> dict[int, int]:
        goal: dict[int, int] = {}
        for _, meta in self.meta.namespace.files():
            for h in meta.chunk_handles:
                goal[h] = max(goal.get(h, 0), meta.replication)
        return goal

    def _remove_extra_replicas(self, now_ms: float, goals: dict[int, int]) -> None:
        if now_ms < self.meta.chunks.no_lease_before_ms:
            return   # (after a restart, leases granted before may still run with these replicas)
        infos = {sid: s.info for sid, s in self.servers.items()}
        for handle, goal in goals.items():
            info = self.meta.chunks.get(handle)
            if info is None or handle in self.cloning or handle in self.bumping or info.lease_expiry_ms > now_ms:
                continue   # (never under a lease: its mutations go to all the replicas it was granted with)
            holders = [s for s in self.meta.chunks.up_to_date(handle) if s in infos and s != info.primary]
            if len(holders) + (1 if info.primary in infos else 0) <= goal:
                continue
            victim = replica_to_remove([infos[s] for s in holders], holders)
            if victim is not None:
                del info.replicas[victim]
                self.servers[victim].to_delete.add(handle)

    async def _re_replicate(self, ctx: Context, goals: dict[int, int]) -> None:
        """4.3: clone the chunks furthest below their goal, a few at a time."""
        room = self.config.clones_in_flight_max - len(self.cloning)
        if room <= 0 or ctx.now_ms < self.meta.chunks.no_lease_before_ms:
            return   # (after a restart, leases granted before may still run: a copy could miss their writes)
        infos = [s.info for s in self.servers.values()]
        jobs: list[tuple[int, int, str, str]] = []
        now = int(ctx.now_ms)
        chunks = self.meta.chunks
        for handle, _missing in chunks.under_replicated(goals):
            if handle in self.cloning or handle in self.bumping or len(jobs) >= room:
                continue
            info = chunks.get(handle)
            if info is None or (info.lease_expiry_ms > now and info.primary not in self.servers):
                continue   # a lease held by a server we lost: wait until it has run out
            holders = self._live(chunks.up_to_date(handle))
            targets = place_replicas(infos, 1, holders=holders)
            if not holders or not targets:
                continue
            # (the source's own version: any at the confirmed one or above holds everything acknowledged)
            jobs.append((handle, info.replicas.get(holders[0], info.version), holders[0], targets[0]))
            self.cloning.add(handle)   # no lease is granted on it until the clone is done
        if not jobs:
            return
        ctx.trace("gfs_re_replicate", chunks=[j[0] for j in jobs])
        # A clone copies what the source holds now: no mutation may go on under a lease meanwhile.
        await self._ask_primaries_to_give_back(ctx, [h for h, _, _, _ in jobs if chunks.lease_free_at_ms(h) > now])
        now = int(ctx.now_ms)
        ready = [j for j in jobs if chunks.lease_free_at_ms(j[0]) <= now]
        for j in jobs:
            if j not in ready:
                self.cloning.discard(j[0])   # its primary did not give the lease back: next time
        acks = await ctx.gather([ctx.call(t, CloneChunk(handle=h, version=v, source=src), self.config.rpc_timeout_ms * 4)
                                 for h, v, src, t in ready])
        for (h, v, _src, t), a in zip(ready, acks, strict=True):
            self.cloning.discard(h)
            info = chunks.get(h)
            if type(a) is Ack and a.ok and info is not None and info.confirmed <= v <= info.version \
                    and t in self.servers:
                info.replicas[t] = v
                self.servers[t].recent_creations += 1
