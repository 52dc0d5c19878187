"""The GFS chunkserver (Ghemawat et al., SOSP 2003, sections 2.5, 3.1-3.4,
4.5 and 5.2).

A chunkserver stores chunk replicas as plain files
(:class:`~synod.gfs.ChunkStore`, checksummed by 64 KB block) and does what
the masters and clients ask:

- Heartbeats (2.6.2): every ``heartbeat_ms`` it reports every replica it
  holds, with its version, to the master and the shadows; the master's
  reply names replicas to delete (stale or orphaned, 4.4-4.5) and the
  leases it extended.
- Data flow (3.2): a client pushes data to the nearest replica, which
  keeps it (:class:`~synod.gfs.PushBuffer`) and pushes it on along the
  chain the client gave; each piece is passed on as soon as it arrives, so
  a large push flows through the chain as a pipeline. The push is
  confirmed when the chain's last server has it.
- Mutations (3.1, Figure 2): the primary (the replica holding the chunk's
  lease) numbers the mutations of a chunk, applies each to its own replica
  and has every secondary apply it at the same offset, in serial order, so
  every replica applies them in one order. Up to
  ``MUTATIONS_IN_FLIGHT_MAX`` of a chunk are out at once (a pipeline: each
  reaches a secondary behind the one before it, on one connection). A
  secondary skips over a mutation it never received (its region is then
  inconsistent until the client retries, as section 2.7 allows). The
  primary sends the mutation on while it syncs its own write, and pushed
  data is passed on while a sync runs (both ``ahead_of_sync``: memory
  only, or answered later); the client hears OK only when every replica
  wrote and synced the data.
- Record append (3.3): the primary picks the offset, the end of its
  replica; a record that does not fit pads the chunk to its end on every
  replica and the client is told to retry on the next chunk.
- Versions and leases (3.1, 4.5): ``NewVersion`` moves a replica from the
  version the master expects to the new one; on the primary it also starts
  the lease, trusted for ``LEASE_SAFETY_FRACTION`` of its duration from
  receipt (the master counts it from later). Extensions are asked for in
  heartbeats of a primary still mutating the chunk, and counted from when
  the heartbeat was sent. A mutation for a version the replica does not
  hold is refused.
- Reads (5.2): every read verifies the checksums of the blocks it
  touches; a mismatch is never returned: the reader is told CORRUPT (and
  goes to another replica), the replica is kept aside and reported to the
  master, which re-replicates the chunk.
- Re-replication (4.3): ``CloneChunk`` copies a replica from another
  chunkserver (read verified there) and creates it here only once all of
  it has arrived. Copy-on-write (3.4): ``CopyChunkLocal`` copies a local
  replica to a new handle, no network.

Unsafe option (the issue's, for the checkers to catch):
``unsafe_skip_checksums`` serves reads without verifying blocks.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Coroutine
from enum import IntEnum
from typing import Any

from synod.core import Context, LocalProtocolError, Node, Params
from synod.gfs import constants as C
from synod.gfs._chunk_store import ChunkCorrupt, ChunkStore
from synod.gfs._data_path import PushBuffer, plan_record_append
from synod.gfs.messages import (
    Ack,
    AppendRecord,
    ApplyMutation,
    ChunkSize,
    CloneChunk,
    CopyChunkLocal,
    CreateChunk,
    Heartbeat,
    HeartbeatReply,
    MutationReply,
    NewVersion,
    PushData,
    ReadChunk,
    ReadReply,
    RevokeLease,
    WriteChunk,
)

__all__ = ["ChunkserverNode", "ChunkserverConfig", "MutationStatus", "ReadStatus"]

HEARTBEAT = "heartbeat"
AGE_OUT = "age_out"
SCRUB = "scrub"
READ_BYTES_MAX = C.PUSH_DATA_BYTES_MAX     # one ReadChunk answers at most this much
CLONE_READ_BYTES = 4 * 1024 * 1024        # re-replication reads a source in pieces this large
BUSY_WAIT_MS_MAX = 5_000                  # a mutation waiting this long for room in the pipeline is refused
MUTATIONS_IN_FLIGHT_MAX = 16              # a primary's mutations of one chunk out to its secondaries at once
SERIAL_GAP_WAIT_MS = 500                  # a secondary waits this long for an earlier mutation before skipping it


class MutationStatus(IntEnum):
    """Outcomes of a write or record append (:class:`MutationReply`)."""

    OK = 0
    NOT_PRIMARY = 1        # no lease here (ask the master again)
    STALE = 2              # no replica at that version here
    DATA_MISSING = 3       # the pushed data is not here (push again)
    FAILED = 4             # a replica did not apply it: the region may be inconsistent (retry)
    RETRY_NEXT_CHUNK = 5   # record append: the chunk was padded, append on the next one
    CORRUPT = 6            # the replica is corrupt here
    BAD_ARGUMENT = 7       # outside the chunk, or a record over a quarter of a chunk
    BUSY = 8               # the chunk's mutations are backed up (retry)


class ReadStatus(IntEnum):
    OK = 0
    STALE = 1        # no replica at that version here (ask the master again)
    CORRUPT = 2      # a block failed its checksum: read another replica
    BAD_ARGUMENT = 3


_MASTER_COMMANDS = frozenset({NewVersion, CreateChunk, RevokeLease, CopyChunkLocal, CloneChunk})


class ChunkserverConfig(Params):
    """A chunkserver's settings (times in ms of its clock); also the cluster
    config's params of ``synod.gfs.factories:chunkserver_factory``.

    Raises:
        ValueError: a value out of range (a ConfigError from a config).
    """

    masters: tuple[str, ...]                 # the master first, then its shadows
    rack: str = "rack0"
    capacity_bytes: int = 1 << 40
    chunk_size_bytes: int = C.CHUNK_SIZE_BYTES_DEFAULT
    heartbeat_ms: int = C.HEARTBEAT_INTERVAL_MS
    rpc_timeout_ms: int = C.RPC_TIMEOUT_MS
    push_buffer_bytes_max: int = C.PUSH_BUFFER_BYTES_MAX
    scrub_interval_ms: int = C.SCRUB_INTERVAL_MS   # one replica verified whole this often (5.2)
    unsafe_skip_checksums: bool = False

    def __post_init__(self) -> None:
        if not self.masters:
            raise ValueError("masters: the master's id first")
        if self.chunk_size_bytes < C.CHUNK_SIZE_BYTES_MIN or self.chunk_size_bytes % C.BLOCK_SIZE_BYTES:
            raise ValueError(f"chunk_size_bytes must be a multiple of {C.BLOCK_SIZE_BYTES}")
        if min(self.heartbeat_ms, self.scrub_interval_ms, self.capacity_bytes, self.rpc_timeout_ms,
               self.push_buffer_bytes_max) <= 0:
            raise ValueError("heartbeat_ms, scrub_interval_ms, capacity_bytes, rpc_timeout_ms and "
                             "push_buffer_bytes_max must be > 0")


class ChunkserverNode(Node):
    """One chunkserver (see the module docstring)."""

    def __init__(self, config: ChunkserverConfig) -> None:
        self.config = config
        self.store: ChunkStore | None = None
        self.pushed = PushBuffer(bytes_max=config.push_buffer_bytes_max)
        self.lease_until: dict[int, float] = {}    # handle -> when this primary's lease ends (its clock)
        self.lease_secondaries: dict[int, tuple[str, ...]] = {}   # handle -> the lease's other replicas
        self.grants: dict[int, int] = {}           # handle -> the newest lease grant seen (NewVersion.grant)
        self.serial: dict[int, int] = {}           # handle -> last mutation number given (primary) or handled
        self.applied: dict[int, deque[int]] = {}   # handle -> the serials a secondary applied lately
        self.busy: dict[int, int] = {}             # handle -> its mutations in flight (primary; none: absent)
        self.mutated: set[int] = set()             # handles mutated as primary since the last heartbeat
        self.corrupt: set[int] = set()             # replicas found corrupt since the last heartbeat
        self.scrubbed = 0                          # the handle the scrubber verified last

    # -- start, heartbeats -----------------------------------------------------------------------------
    def on_start(self, ctx: Context) -> None:
        self.store = ChunkStore(ctx.disk, self.config.chunk_size_bytes)
        for handle in self.store.load():
            self.corrupt.add(handle)
            ctx.warn(f"replica of chunk {handle} has damaged records; kept aside under corrupt/", handle=handle)
        ctx.trace("gfs_chunkserver_start", chunks=len(self.store.chunks))
        ctx.set_timer(HEARTBEAT, 0)
        ctx.set_timer(AGE_OUT, C.PUSH_BUFFER_AGE_MS_MAX)
        ctx.set_timer(SCRUB, self.config.scrub_interval_ms)

    def on_timer(self, ctx: Context, name: str) -> Coroutine[Any, Any, None] | None:
        if name == AGE_OUT:
            self.pushed.age_out(int(ctx.now_ms))
            ctx.set_timer(AGE_OUT, C.PUSH_BUFFER_AGE_MS_MAX)
            return None
        if name == SCRUB:
            ctx.set_timer(SCRUB, self.config.scrub_interval_ms)
            self._scrub(ctx)
            return None
        if name == HEARTBEAT:
            ctx.set_timer(HEARTBEAT, self.config.heartbeat_ms)
            return self._heartbeat(ctx)
        return None

    async def _heartbeat(self, ctx: Context) -> None:
        store = self.store
        assert store is not None
        sent_ms = ctx.now_ms
        extend = tuple(sorted(h for h in self.mutated if self.lease_until.get(h, 0) > sent_ms))
        self.mutated.clear()
        corrupt = tuple(sorted(self.corrupt))
        self.corrupt.clear()
        beat = Heartbeat(rack=self.config.rack, capacity_bytes=self.config.capacity_bytes,
                         used_bytes=store.used_bytes(), chunks=tuple(store.held()), extend=extend, corrupt=corrupt)
        replies = await ctx.gather([ctx.call(m, beat, self.config.rpc_timeout_ms) for m in self.config.masters])
        for reply in replies:
            if type(reply) is not HeartbeatReply or not reply.primary_master:
                continue
            for handle, below in reply.delete:
                chunk = store.chunks.get(handle)
                if chunk is not None and handle not in self.busy and (below == 0 or chunk.version < below):
                    store.delete(handle)
                    self.lease_until.pop(handle, None)
                    self._forget_serials(handle)
                    ctx.trace("gfs_replica_deleted", handle=handle)
            for handle in reply.extended:
                if handle in self.lease_until:
                    self.lease_until[handle] = max(self.lease_until[handle],
                                                   sent_ms + reply.lease_ms * C.LEASE_SAFETY_FRACTION)
        if corrupt and not any(type(r) is HeartbeatReply for r in replies):
            self.corrupt.update(corrupt)   # tell them next time

    # -- dispatch --------------------------------------------------------------------------------------
    def on_message(self, ctx: Context, src: str, msg: Any) -> Coroutine[Any, Any, None] | None:
        t = type(msg)
        if t in _MASTER_COMMANDS and src != self.config.masters[0]:
            # (a lease's grant, a version, a clone: only the master's word counts. A revocation
            # with a huge grant from anyone else would make this server refuse the master's
            # later grants: found by tests/gfs/test_peer_fuzz.py)
            ctx.trace("ignore_message", src=src, type=t.__name__, reason="a master's command from another node")
            ctx.reply(Ack(ok=False, detail="only the master sends this"))
            return None
        if t is PushData:
            return self._push(ctx, msg)
        if t is ReadChunk:
            ctx.reply(self._read(ctx, msg))
        elif t is ChunkSize:
            ctx.reply(self._read(ctx, ReadChunk(handle=msg.handle, version=msg.version, offset=0, length=0)))
        elif t is WriteChunk or t is AppendRecord:
            return self._mutate(ctx, msg)
        elif t is ApplyMutation:
            return self._apply_secondary(ctx, msg)
        elif t is NewVersion:
            ctx.reply(self._new_version(ctx, msg))
        elif t is CreateChunk:
            ctx.reply(self._create(ctx, msg))
        elif t is RevokeLease:
            return self._revoke(ctx, msg)
        elif t is CopyChunkLocal:
            ctx.reply(self._copy_local(ctx, msg))
        elif t is CloneChunk:
            return self._clone(ctx, msg)
        return None

    # -- the data path (3.2) -----------------------------------------------------------------------------
    async def _push(self, ctx: Context, msg: PushData) -> None:
        if len(msg.data) > C.PUSH_DATA_BYTES_MAX or len(msg.chain) > C.REPLICATION_GOAL_MAX or msg.piece < 0:
            ctx.reply(Ack(ok=False, detail="push too large"))
            return
        if not self.pushed.put((msg.client, msg.data_id, msg.piece), msg.data, int(ctx.now_ms)):
            ctx.reply(Ack(ok=False, detail="push buffer too small"))
            return
        # Pushed data lives in memory only: its messages need not wait for a sync in progress.
        if not msg.chain:
            ctx.reply(Ack(ok=True), ahead_of_sync=True)
            return
        handle = ctx.reply_handle()
        onward = PushData(client=msg.client, data_id=msg.data_id, piece=msg.piece, data=msg.data, chain=msg.chain[1:])
        reply = await ctx.call(msg.chain[0], onward, self.config.rpc_timeout_ms, ahead_of_sync=True)
        ok = type(reply) is Ack and reply.ok
        ctx.reply_to(handle, reply if type(reply) is Ack else Ack(ok=False, detail=f"no answer from {msg.chain[0]}"),
                     ahead_of_sync=True)
        if not ok:
            ctx.trace("gfs_push_failed", next=msg.chain[0])

    def _pushed_data(self, client: str, data_id: int, pieces: int) -> bytes | memoryview | None:
        """The pushed pieces of ``data_id``, whole (one piece as it came: a
        view of its frame), or None if one is missing."""
        if not 0 < pieces <= C.PUSH_DATA_BYTES_MAX // 1024:
            return None
        if pieces == 1:
            return self.pushed.get((client, data_id, 0))
        parts = []
        for i in range(pieces):
            part = self.pushed.get((client, data_id, i))
            if part is None:
                return None
            parts.append(part)
        return b"".join(parts)

    def _forget_pushed(self, client: str, data_id: int, pieces: int) -> None:
        for i in range(pieces):
            self.pushed.pop((client, data_id, i))

    # -- mutations (3.1, 3.3) ------------------------------------------------------------------------------
    async def _mutate(self, ctx: Context, msg: WriteChunk | AppendRecord) -> None:
        store = self.store
        assert store is not None
        reply = ctx.reply_handle()
        waited = 0
        while self.busy.get(msg.handle, 0) >= MUTATIONS_IN_FLIGHT_MAX:
            if waited >= BUSY_WAIT_MS_MAX:
                ctx.reply_to(reply, MutationReply(status=MutationStatus.BUSY, detail="mutations backed up"))
                return
            await ctx.sleep(1)
            waited += 1
        refusal = self._primary_refusal(ctx, msg.handle, msg.version)
        if refusal is not None:
            ctx.reply_to(reply, refusal)
            return
        data = self._pushed_data(msg.client, msg.data_id, msg.pieces)
        if data is None:
            ctx.reply_to(reply, MutationReply(status=MutationStatus.DATA_MISSING, detail="push the data first"))
            return
        chunk_size = self.config.chunk_size_bytes
        pad = 0
        if type(msg) is AppendRecord:
            try:
                plan = plan_record_append(chunk_size, store.size(msg.handle), len(data))
            except LocalProtocolError as e:
                ctx.reply_to(reply, MutationReply(status=MutationStatus.BAD_ARGUMENT, detail=str(e)))
                return
            offset = plan.offset
            if plan.pad:
                pad = chunk_size - offset
                if pad == 0:   # full already (padded before): straight on to the next chunk
                    ctx.reply_to(reply, MutationReply(status=MutationStatus.RETRY_NEXT_CHUNK, offset=offset))
                    return
        else:
            offset = msg.offset
            if offset < 0 or offset + len(data) > chunk_size:
                ctx.reply_to(reply, MutationReply(status=MutationStatus.BAD_ARGUMENT, detail="outside the chunk"))
                return
        serial = self.serial.get(msg.handle, 0) + 1
        self.serial[msg.handle] = serial
        mutation = ApplyMutation(handle=msg.handle, version=msg.version, serial=serial, offset=offset,
                                 client=msg.client, data_id=msg.data_id, pieces=msg.pieces, pad_bytes=pad)
        try:
            self._write(store, mutation, data)
        except ChunkCorrupt:
            self._found_corrupt(ctx, msg.handle)
            ctx.reply_to(reply, MutationReply(status=MutationStatus.CORRUPT, detail="the primary's replica is corrupt"))
            return
        ctx.disk.sync()
        secondaries = self.lease_secondaries.get(msg.handle, ())
        self.busy[msg.handle] = self.busy.get(msg.handle, 0) + 1
        try:
            # The secondaries write while this replica syncs (the client's answer waits for both).
            # Mutations of a chunk are pipelined: each is applied here before the next is numbered,
            # and reaches each secondary in serial order (one connection, ahead_of_sync sends keep
            # their order), where it is applied in that order.
            acks = await ctx.gather([ctx.call(s, mutation, self.config.rpc_timeout_ms, ahead_of_sync=True)
                                     for s in secondaries])
        finally:
            left = self.busy.pop(msg.handle) - 1
            if left:
                self.busy[msg.handle] = left
        failed = [s for s, a in zip(secondaries, acks, strict=True) if not (type(a) is Ack and a.ok)]
        ctx.trace("gfs_mutation", handle=msg.handle, serial=serial, offset=offset, bytes=len(data), pad=pad,
                  failed=failed)
        if failed:
            # No extension asked for: a lease whose secondaries fail runs out, and the next one
            # is granted to the replicas that are there (4.5).
            self.mutated.discard(msg.handle)
            ctx.reply_to(reply, MutationReply(status=MutationStatus.FAILED, offset=offset,
                                              detail=f"not applied on {', '.join(failed)}"))
        elif pad:
            self.mutated.add(msg.handle)
            ctx.reply_to(reply, MutationReply(status=MutationStatus.RETRY_NEXT_CHUNK, offset=offset))
        else:
            self._forget_pushed(msg.client, msg.data_id, msg.pieces)
            self.mutated.add(msg.handle)
            ctx.reply_to(reply, MutationReply(status=MutationStatus.OK, offset=offset))

    async def _revoke(self, ctx: Context, msg: RevokeLease) -> None:
        """Give the lease up; answer once the mutation in flight, if any, is
        done, so that the master's next step (a snapshot, a clone) sees it."""
        reply = ctx.reply_handle()
        if msg.grant < self.grants.get(msg.handle, 0):
            ctx.reply(Ack(ok=True, detail="a later grant runs"))   # an old revocation the network kept
            return
        self.grants[msg.handle] = msg.grant
        self.lease_until.pop(msg.handle, None)
        waited = 0
        while msg.handle in self.busy and waited < BUSY_WAIT_MS_MAX:
            await ctx.sleep(1)
            waited += 1
        ctx.reply_to(reply, Ack(ok=msg.handle not in self.busy))

    def _primary_refusal(self, ctx: Context, handle: int, version: int) -> MutationReply | None:
        store = self.store
        assert store is not None
        chunk = store.chunks.get(handle)
        if chunk is None or chunk.version != version:
            return MutationReply(status=MutationStatus.STALE, detail="no replica at that version here")
        if self.lease_until.get(handle, 0) <= ctx.now_ms:
            self.lease_until.pop(handle, None)
            return MutationReply(status=MutationStatus.NOT_PRIMARY, detail="no lease here")
        return None

    def _write(self, store: ChunkStore, mutation: ApplyMutation, data: bytes) -> None:
        if mutation.pad_bytes:
            store.write(mutation.handle, mutation.offset, bytes(mutation.pad_bytes))
        else:
            store.write(mutation.handle, mutation.offset, data)

    async def _apply_secondary(self, ctx: Context, msg: ApplyMutation) -> None:
        """Apply the primary's mutations in serial order: one that arrives
        before an earlier one (the network may reorder; mutations are
        pipelined) waits up to ``SERIAL_GAP_WAIT_MS`` for it; the earlier
        one, if it comes later, is refused, never applied out of order."""
        reply = ctx.reply_handle()
        waited = 0
        while msg.serial > self.serial.get(msg.handle, 0) + 1 and waited < SERIAL_GAP_WAIT_MS:
            await ctx.sleep(1)
            waited += 1
        ctx.reply_to(reply, self._apply_in_order(ctx, msg))

    def _apply_in_order(self, ctx: Context, msg: ApplyMutation) -> Ack:
        store = self.store
        assert store is not None
        chunk = store.chunks.get(msg.handle)
        if chunk is None or chunk.version != msg.version:
            return Ack(ok=False, detail="no replica at that version here")
        if msg.serial <= self.serial.get(msg.handle, 0):
            if msg.serial in self.applied.get(msg.handle, ()):
                return Ack(ok=True, detail="applied before")   # a copy the network kept
            return Ack(ok=False, detail="a later mutation was applied first")
        self.serial[msg.handle] = msg.serial   # handled, applied or not: the next one need not wait for it
        data = b""
        if not msg.pad_bytes:
            found = self._pushed_data(msg.client, msg.data_id, msg.pieces)
            if found is None:
                return Ack(ok=False, detail="the pushed data is not here")
            data = found
        if msg.offset < 0 or msg.offset + (msg.pad_bytes or len(data)) > self.config.chunk_size_bytes:
            return Ack(ok=False, detail="outside the chunk")
        try:
            self._write(store, msg, data)
        except ChunkCorrupt:
            self._found_corrupt(ctx, msg.handle)
            return Ack(ok=False, detail="the replica is corrupt")
        applied = self.applied.get(msg.handle)
        if applied is None:
            applied = self.applied[msg.handle] = deque(maxlen=4 * MUTATIONS_IN_FLIGHT_MAX)
        applied.append(msg.serial)
        if not msg.pad_bytes:
            self._forget_pushed(msg.client, msg.data_id, msg.pieces)
        ctx.disk.sync()
        return Ack(ok=True)

    def _forget_serials(self, handle: int) -> None:
        """A new version, or a new replica: its mutations are numbered from 1 again."""
        self.serial.pop(handle, None)
        self.applied.pop(handle, None)

    # -- reads (5.2) -----------------------------------------------------------------------------------------
    def _read(self, ctx: Context, msg: ReadChunk) -> ReadReply:
        store = self.store
        assert store is not None
        chunk = store.chunks.get(msg.handle)
        if chunk is None or chunk.version < msg.version:
            # (above it is fine: the master names the lowest version that holds everything acknowledged)
            return ReadReply(status=ReadStatus.STALE, detail="no replica at that version here")
        if msg.offset < 0 or not 0 <= msg.length <= READ_BYTES_MAX:
            return ReadReply(status=ReadStatus.BAD_ARGUMENT, detail=f"a read of at most {READ_BYTES_MAX} bytes")
        size = chunk.size
        if self.config.unsafe_skip_checksums:
            return ReadReply(status=ReadStatus.OK, data=store.read_unverified(msg.handle, msg.offset, msg.length),
                             size_bytes=size)
        try:
            data = store.read(msg.handle, msg.offset, msg.length)
        except ChunkCorrupt as e:
            self._found_corrupt(ctx, msg.handle)
            return ReadReply(status=ReadStatus.CORRUPT, detail=str(e))
        return ReadReply(status=ReadStatus.OK, data=data, size_bytes=size)

    def _scrub(self, ctx: Context) -> None:
        """5.2: verify the next replica not being mutated, whole, so that
        corruption in rarely read chunks is found and re-replicated."""
        store = self.store
        assert store is not None
        handles = sorted(h for h in store.chunks if h > self.scrubbed and h not in self.busy) or \
            sorted(h for h in store.chunks if h not in self.busy)
        if not handles:
            return
        handle = self.scrubbed = handles[0]
        try:
            store.read(handle, 0, store.size(handle))
        except ChunkCorrupt:
            self._found_corrupt(ctx, handle)

    def _found_corrupt(self, ctx: Context, handle: int) -> None:
        store = self.store
        assert store is not None
        kept = store.keep_aside(handle)
        self.lease_until.pop(handle, None)
        self.corrupt.add(handle)
        ctx.disk.sync()
        ctx.warn(f"replica of chunk {handle} fails its checksum; " +
                 (f"kept aside as {kept}" if kept else "deleted (too many kept aside already)"), handle=handle)

    # -- commands from the master (3.4, 4.3, 4.5) ----------------------------------------------------------------
    def _create(self, ctx: Context, msg: CreateChunk) -> Ack:
        store = self.store
        assert store is not None
        if msg.handle < 1 or msg.version < 1:
            return Ack(ok=False, detail="bad handle or version")
        chunk = store.chunks.get(msg.handle)
        if chunk is not None:
            if chunk.version == msg.version and chunk.size == 0:
                return Ack(ok=True, detail="made already")   # a copy of this request the network kept
            if msg.handle in self.grants or chunk.size:
                return Ack(ok=False, detail="the chunk exists here")
            store.delete(msg.handle)   # a leftover of an allocation the master never logged
        store.create(msg.handle, msg.version)
        self._forget_serials(msg.handle)
        ctx.disk.sync()
        return Ack(ok=True)

    def _new_version(self, ctx: Context, msg: NewVersion) -> Ack:
        store = self.store
        assert store is not None
        chunk = store.chunks.get(msg.handle)
        if chunk is None or chunk.version not in (msg.previous, msg.version) or msg.version < msg.previous:
            return Ack(ok=False, detail="not at the previous version")   # (at the new one: a resent NewVersion)
        if msg.version != chunk.version:
            store.set_version(msg.handle, msg.version)
        self._forget_serials(msg.handle)
        last = self.grants.get(msg.handle, 0)
        if msg.grant < last or (msg.grant == last and msg.lease_ms > 0 and msg.handle not in self.lease_until):
            # an old grant the network kept (delayed or duplicated), or a grant since revoked
            return Ack(ok=False, detail="an old grant")
        self.grants[msg.handle] = msg.grant
        if msg.lease_ms > 0:
            if len(msg.secondaries) > C.REPLICATION_GOAL_MAX:
                return Ack(ok=False, detail="too many secondaries")
            if msg.grant != last:
                self.lease_until[msg.handle] = ctx.now_ms + msg.lease_ms * C.LEASE_SAFETY_FRACTION
            self.lease_secondaries[msg.handle] = msg.secondaries
        else:
            self.lease_until.pop(msg.handle, None)
        ctx.disk.sync()
        return Ack(ok=True)

    def _copy_local(self, ctx: Context, msg: CopyChunkLocal) -> Ack:
        store = self.store
        assert store is not None
        if msg.handle not in store.chunks or msg.new_handle < 1:
            return Ack(ok=False, detail="no such replica here")
        if msg.new_handle in store.chunks:
            return Ack(ok=True, detail="copied already")   # a copy of this request the network kept
        try:
            store.copy(msg.handle, msg.new_handle)
        except ChunkCorrupt:
            self._found_corrupt(ctx, msg.handle)
            return Ack(ok=False, detail="the replica is corrupt")
        ctx.disk.sync()
        return Ack(ok=True)

    async def _clone(self, ctx: Context, msg: CloneChunk) -> None:
        store = self.store
        assert store is not None
        reply = ctx.reply_handle()
        parts: list[bytes] = []
        offset = 0
        while True:
            got = await ctx.call(msg.source, ReadChunk(handle=msg.handle, version=msg.version, offset=offset,
                                                       length=CLONE_READ_BYTES), self.config.rpc_timeout_ms)
            if type(got) is not ReadReply or got.status != ReadStatus.OK:
                ctx.reply_to(reply, Ack(ok=False, detail=f"reading from {msg.source} failed"))
                return
            parts.append(got.data)
            offset += len(got.data)
            if offset >= got.size_bytes or not got.data:
                break
            if offset > self.config.chunk_size_bytes:
                ctx.reply_to(reply, Ack(ok=False, detail="the source is larger than a chunk"))
                return
        data = b"".join(parts)
        if msg.handle in store.chunks:
            store.delete(msg.handle)
        store.create(msg.handle, msg.version)
        if data:
            store.write(msg.handle, 0, data)
        self._forget_serials(msg.handle)
        ctx.disk.sync()
        ctx.trace("gfs_cloned", handle=msg.handle, source=msg.source, bytes=len(data))
        ctx.reply_to(reply, Ack(ok=True))
