"""The GFS client library (Ghemawat et al., SOSP 2003, sections 2.4, 2.7,
3.1-3.4).

:class:`GfsClient` is written against ``ctx`` alone (``ctx.call``,
``ctx.gather``, ``ctx.sleep``), so the same code runs inside a simulated
client node and, driven by :mod:`synod.gfs.remote`, in an ordinary
program talking to real processes.

- Metadata comes from the master (a shadow answers reads when the master
  does not). Chunk locations are cached for ``location_cache_ms`` and
  dropped after any failure, so a client re-asks the master (2.4, 2.7.1:
  the window in which a cached location may name a replica that missed a
  mutation).
- Reads go to one replica after another until one answers with verified
  data (5.2); a file's length is its last chunk's end. Each client starts
  at its own replica of a chunk (the list turned by a hash of the client
  id and the chunk handle; the paper's client picks the closest, and on
  one host none is closer), so many readers spread over the replicas.
- Writes (Figure 2): the data is pushed to every replica of the chunk along
  a chain, in pieces that flow through it as a pipeline (3.2; the chain
  starts at the client's own replica, as reads do, so that no one server
  forwards every client's data); then the primary is asked to write. A write that spans chunks is cut into one
  mutation per chunk (2.7.1: such a write may be interleaved with others).
  A failure retries the mutation from the lease on, so a region may end up
  inconsistent until a retry succeeds (2.7.1).
- Record append (3.3): at least once, atomically, at an offset GFS picks:
  a failed attempt is retried whole, and a chunk the primary padded sends
  the record to the next chunk.

Errors: :class:`GfsError` (with the master's :class:`~synod.gfs.Status`
or the chunkserver's status name) when an operation cannot be done or
its retries ran out.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from synod.core import Context
from synod.gfs import constants as C
from synod.gfs._namespace import Status
from synod.gfs.chunkserver import MutationStatus, ReadStatus
from synod.gfs.messages import (
    Ack,
    AppendRecord,
    ChunkLocation,
    ChunkSize,
    ClientCreate,
    ClientDelete,
    ClientFsck,
    ClientLease,
    ClientList,
    ClientLocate,
    ClientMkdirs,
    ClientRename,
    ClientSnapshot,
    ClientStat,
    FsckReply,
    LeaseReply,
    ListReply,
    LocateReply,
    MutationReply,
    PushData,
    ReadChunk,
    ReadReply,
    StatReply,
    StatusReply,
    WriteChunk,
)

__all__ = ["GfsClient", "GfsError", "FileStat"]

ATTEMPTS_MAX = 8              # tries of one operation before GfsError
BACKOFF_MS = 20               # first wait between tries (doubling, capped)
BACKOFF_MS_MAX = 2_000
LOCATION_CACHE_MS = 5_000
RETRY_FOR_MS = 2 * 60_000     # how long a RETRY answer is retried (a lease runs 60 s)
LEASE_CACHE_MS = 10_000       # how long a lease's primary and version are trusted without asking (3.1)
LEASES_CACHED_MAX = 10_000


class GfsError(Exception):
    """An operation failed: ``status`` says why (a Status name, or a
    chunkserver's outcome), ``path`` what on."""

    def __init__(self, status: str, path: str, detail: str = "") -> None:
        super().__init__(f"{path}: {status}" + (f" ({detail})" if detail else ""))
        self.status = status
        self.path = path
        self.detail = detail


@dataclass(frozen=True, slots=True)
class FileStat:
    """A file's or directory's metadata; ``length`` in bytes (files)."""

    path: str
    is_dir: bool
    length: int
    chunks: int
    replication: int


class GfsClient:
    """One client of one GFS cell.

    Args:
        masters: the master's node id, then its shadows'.
        client_id: this client's node id (names its pushed data).
        rpc_timeout_ms: one call's timeout.
        location_cache_ms: how long a chunk's location is trusted.
        attempts_max: tries of an operation before it fails (silence, failed mutations).
        retry_for_ms: how long the master's RETRY answers are waited out.
        lease_cache_ms: how long a lease is used without asking the master
            (the primary refuses a mutation once it lost the lease).
    """

    def __init__(self, masters: tuple[str, ...], client_id: str, *, rpc_timeout_ms: int = C.RPC_TIMEOUT_MS,
                 location_cache_ms: int = LOCATION_CACHE_MS, attempts_max: int = ATTEMPTS_MAX,
                 retry_for_ms: int = RETRY_FOR_MS, lease_cache_ms: int = LEASE_CACHE_MS) -> None:
        if not masters:
            raise ValueError("a GFS client needs the master's id")
        self.masters = masters
        self.client_id = client_id
        self.rpc_timeout_ms = rpc_timeout_ms
        self.location_cache_ms = location_cache_ms
        self.attempts_max = attempts_max
        self.retry_for_ms = retry_for_ms
        self.lease_cache_ms = lease_cache_ms
        # (path, chunk index; -1 for the last) -> (lease, when it was asked for)
        self._leases: dict[tuple[str, int], tuple[LeaseReply, float]] = {}
        self._next_data_id = 1
        # (path, chunk index) -> (location, chunk size, when it was asked for, who answered)
        self._locations: dict[tuple[str, int], tuple[ChunkLocation, int, float, str]] = {}
        # For checkers: when the location behind the last read was asked for, and who answered
        # (a shadow's may lag the master's, 5.1.3).
        self.located_at_ms = 0.0
        self.located_by = ""
        self.answered_by = ""

    # -- the master -----------------------------------------------------------------------------------
    async def _ask(self, ctx: Context, request: Any, *, read_only: bool = False) -> Any:
        """A request to the master (a read to a shadow if the master is
        silent): silence is retried ``attempts_max`` times with backoff; a
        RETRY answer (a lease still held elsewhere, a lock) is retried as
        the master asks, for up to ``retry_for_ms``."""
        backoff = BACKOFF_MS
        last = "no answer from the master"
        silent = 0
        give_up_ms = ctx.now_ms + self.retry_for_ms
        while silent < self.attempts_max and ctx.now_ms < give_up_ms:
            targets = self.masters if read_only else self.masters[:1]
            retry_ms = 0
            for target in targets:
                reply = await ctx.call(target, request, self.rpc_timeout_ms)
                if reply is None:
                    continue
                if reply.status != Status.RETRY:
                    self.answered_by = target
                    return reply
                last = getattr(reply, "detail", "") or "retry"
                retry_ms = max(getattr(reply, "retry_ms", 0), BACKOFF_MS)
                break
            else:
                silent += 1
            await ctx.sleep(retry_ms or backoff)
            backoff = min(backoff * 2, BACKOFF_MS_MAX)
        raise GfsError(Status.UNAVAILABLE.name, getattr(request, "path", ""), last)

    @staticmethod
    def _check(reply: Any, path: str) -> Any:
        if reply.status != Status.OK:
            raise GfsError(Status(reply.status).name, path, getattr(reply, "detail", ""))
        return reply

    async def mkdirs(self, ctx: Context, path: str) -> None:
        """Create a directory and its missing parents (an existing one is fine)."""
        reply = await self._ask(ctx, ClientMkdirs(path=path))
        if reply.status not in (Status.OK, Status.EXISTS):
            self._check(reply, path)

    async def create(self, ctx: Context, path: str, replication: int = 0) -> None:
        """Create an empty file. Raises GfsError (EXISTS, ...)."""
        self._check(await self._ask(ctx, ClientCreate(path=path, replication=replication)), path)

    async def delete(self, ctx: Context, path: str) -> None:
        """Delete a file (hidden, reclaimed later: 4.4) or an empty directory."""
        self._drop_locations(path)
        self._check(await self._ask(ctx, ClientDelete(path=path)), path)

    async def rename(self, ctx: Context, src: str, dst: str) -> None:
        """Rename file ``src`` to ``dst`` at once, replacing a file there
        (the atomic commit MapReduce relies on)."""
        self._drop_locations(src)
        self._drop_locations(dst)
        for key in [k for k in self._leases if k[0] in (src, dst)]:
            del self._leases[key]
        self._check(await self._ask(ctx, ClientRename(path=src, dst=dst)), src)

    async def snapshot(self, ctx: Context, src: str, dst: str) -> None:
        """Copy file or tree ``src`` to ``dst`` at once (3.4)."""
        self._check(await self._ask(ctx, ClientSnapshot(src=src, dst=dst)), src)

    async def list(self, ctx: Context, path: str, include_hidden: bool = False) -> list[str]:
        """The names in a directory, sorted."""
        reply: ListReply = self._check(await self._ask(ctx, ClientList(path=path, include_hidden=include_hidden),
                                                       read_only=True), path)
        return list(reply.names)

    async def stat(self, ctx: Context, path: str) -> FileStat:
        """A file's or directory's metadata, the length read from its last
        chunk. Raises GfsError (NOT_FOUND, ...)."""
        reply: StatReply = self._check(await self._ask(ctx, ClientStat(path=path), read_only=True), path)
        length = 0
        if not reply.is_dir and reply.chunks:
            last = await self._chunk_size(ctx, path, reply.chunks - 1)
            length = (reply.chunks - 1) * reply.chunk_size_bytes + last
        return FileStat(path=path, is_dir=reply.is_dir, length=length, chunks=reply.chunks,
                        replication=reply.replication)

    async def chunks(self, ctx: Context, path: str) -> list[ChunkLocation]:
        """Every chunk of a file with its current replicas, fresh from the
        master (or a shadow): for fsck and tests."""
        out: list[ChunkLocation] = []
        while True:
            reply: LocateReply = self._check(await self._ask(ctx, ClientLocate(path=path, first_index=len(out),
                                                                               count=1_000), read_only=True), path)
            out.extend(reply.chunks)
            if not reply.chunks or len(out) >= reply.chunk_count:
                return out

    async def replicas_at(self, ctx: Context, path: str, offset: int) -> list[str]:
        """The replicas of the chunk holding byte ``offset`` of a file ([] past its end)."""
        _, chunk_size = await self._locate(ctx, path, 0)
        if chunk_size <= 0 or offset < 0:
            return []
        loc, _ = await self._locate(ctx, path, offset // chunk_size)
        return list(loc.replicas) if loc is not None else []

    async def fsck(self, ctx: Context) -> FsckReply:
        """The cell's health as the master (or a shadow) sees it."""
        return self._check(await self._ask(ctx, ClientFsck(), read_only=True), "/")

    async def exists(self, ctx: Context, path: str) -> bool:
        reply = await self._ask(ctx, ClientStat(path=path), read_only=True)
        return bool(reply.status == Status.OK)

    # -- locations ------------------------------------------------------------------------------------
    def _drop_locations(self, path: str) -> None:
        for key in [k for k in self._locations if k[0] == path]:
            del self._locations[key]

    async def _locate(self, ctx: Context, path: str, index: int, count: int = 16) -> tuple[ChunkLocation | None, int]:
        """Chunk ``index`` of ``path`` (None past the end) and the chunk size."""
        cached = self._locations.get((path, index))
        if cached is not None and ctx.now_ms - cached[2] < self.location_cache_ms:
            self.located_at_ms, self.located_by = cached[2], cached[3]
            return cached[0], cached[1]
        asked = ctx.now_ms
        reply: LocateReply = self._check(await self._ask(ctx, ClientLocate(path=path, first_index=index, count=count),
                                                         read_only=True), path)
        for loc in reply.chunks:
            self._locations[(path, loc.index)] = (loc, reply.chunk_size_bytes, asked, self.answered_by)
        self.located_at_ms, self.located_by = asked, self.answered_by
        found = next((c for c in reply.chunks if c.index == index), None)
        return found, reply.chunk_size_bytes

    async def _chunk_size(self, ctx: Context, path: str, index: int) -> int:
        for _ in range(self.attempts_max):
            loc, _size = await self._locate(ctx, path, index)
            if loc is None:
                return 0
            for replica in loc.replicas:
                reply = await ctx.call(replica, ChunkSize(handle=loc.handle, version=loc.version), self.rpc_timeout_ms)
                if type(reply) is ReadReply and reply.status == ReadStatus.OK:
                    return reply.size_bytes
            self._locations.pop((path, index), None)
            await ctx.sleep(BACKOFF_MS)
        raise GfsError("UNAVAILABLE", path, f"no replica of chunk {index} answered")

    # -- reads (2.4, 5.2) -------------------------------------------------------------------------------
    async def read(self, ctx: Context, path: str, offset: int, length: int) -> bytes:
        """At most ``length`` bytes from ``offset`` (fewer at the end of the
        file). Raises GfsError when no replica can serve a chunk."""
        if offset < 0 or length < 0:
            raise GfsError(Status.BAD_ARGUMENT.name, path, "negative range")
        out = []
        end = offset + length
        pos = offset
        _, chunk_size = await self._locate(ctx, path, 0)
        while pos < end and chunk_size > 0:
            index = pos // chunk_size
            loc, _ = await self._locate(ctx, path, index)
            if loc is None:
                break
            within = pos - index * chunk_size
            want = min(end, (index + 1) * chunk_size) - pos
            data, chunk_bytes = await self._read_chunk(ctx, path, index, loc, within, want)
            out.append(data)
            pos += len(data)
            if len(data) < want:
                # The replica ends before: the end of the file, or a hole (zeros) before the next chunk.
                if index + 1 >= await self._chunk_count(ctx, path):
                    break
                hole = min(end, (index + 1) * chunk_size) - pos
                out.append(bytes(hole))
                pos += hole
        return b"".join(out)

    async def _chunk_count(self, ctx: Context, path: str) -> int:
        reply = await self._ask(ctx, ClientStat(path=path), read_only=True)
        return int(reply.chunks) if reply.status == Status.OK else 0

    async def _read_chunk(self, ctx: Context, path: str, index: int, loc: ChunkLocation, offset: int,
                          length: int) -> tuple[bytes, int]:
        """(data, the replica's size) of one chunk, from the first replica
        that serves it; re-asks the master after every replica failed."""
        last = ""
        for attempt in range(self.attempts_max):
            for replica in replica_order(loc.replicas, self.client_id, loc.handle):
                reply = await ctx.call(replica, ReadChunk(handle=loc.handle, version=loc.version, offset=offset,
                                                          length=length), self.rpc_timeout_ms)
                if type(reply) is ReadReply and reply.status == ReadStatus.OK:
                    return reply.data, reply.size_bytes
                last = f"{replica}: " + (ReadStatus(reply.status).name if type(reply) is ReadReply else "no answer")
            self._locations.pop((path, index), None)
            await ctx.sleep(min(BACKOFF_MS << attempt, BACKOFF_MS_MAX))
            found, _ = await self._locate(ctx, path, index)
            if found is None:
                return b"", 0
            loc = found
        raise GfsError("UNAVAILABLE", path, f"chunk {index}: {last or 'no replica'}")

    # -- mutations (3.1-3.3) ----------------------------------------------------------------------------
    async def _lease(self, ctx: Context, path: str, index: int) -> LeaseReply:
        """The lease of chunk ``index`` (-1: the last), cached for
        ``lease_cache_ms`` (3.1: the client asks the master again only when
        the primary cannot be reached or no longer holds the lease)."""
        cached = self._leases.get((path, index))
        if cached is not None and ctx.now_ms - cached[1] < self.lease_cache_ms:
            return cached[0]
        reply = await self._ask(ctx, ClientLease(path=path, index=index))
        if type(reply) is StatusReply:
            raise GfsError(Status(reply.status).name, path, reply.detail)
        lease: LeaseReply = self._check(reply, path)
        if len(self._leases) >= LEASES_CACHED_MAX:
            self._leases.clear()
        self._leases[(path, index)] = self._leases[(path, lease.index)] = (lease, ctx.now_ms)
        return lease

    def _drop_lease(self, path: str, *indexes: int) -> None:
        for i in indexes:
            self._leases.pop((path, i), None)

    async def _push(self, ctx: Context, lease: LeaseReply, data: bytes) -> int | None:
        """Push ``data`` to the chunk's replicas along a chain (3.2); its
        data id, or None if a server of the chain did not take it."""
        data_id = self._next_data_id
        self._next_data_id += 1
        chain = replica_order(tuple(sorted((lease.primary,) + lease.secondaries)), self.client_id, lease.handle)
        pieces = [data[i:i + C.PUSH_PIECE_BYTES] for i in range(0, len(data), C.PUSH_PIECE_BYTES)] or [b""]
        acks = await ctx.gather([ctx.call(chain[0], PushData(client=self.client_id, data_id=data_id, piece=i,
                                                             data=piece, chain=chain[1:]), self.rpc_timeout_ms)
                                 for i, piece in enumerate(pieces)])
        if all(type(a) is Ack and a.ok for a in acks):
            return data_id
        return None

    async def _mutate(self, ctx: Context, path: str, index: int, make: Any,
                      data: bytes) -> tuple[MutationReply, LeaseReply]:
        """Lease, push, ask the primary; retried until it is applied or the
        attempts run out. ``make(lease, data_id, pieces)`` builds the request.
        Returns the primary's OK or RETRY_NEXT_CHUNK reply and the lease."""
        last = ""
        backoff = BACKOFF_MS
        pieces = max(1, -(-len(data) // C.PUSH_PIECE_BYTES))
        for _ in range(self.attempts_max):
            lease = await self._lease(ctx, path, index)
            cached = self._locations.get((path, lease.index))
            if cached is not None and (cached[0].handle, cached[0].version) != (lease.handle, lease.version):
                del self._locations[(path, lease.index)]   # a new version or a copied chunk (3.4)
            data_id = await self._push(ctx, lease, data)
            if data_id is None:
                last = "the push did not reach every replica"
            else:
                reply = await ctx.call(lease.primary, make(lease, data_id, pieces), self.rpc_timeout_ms)
                if type(reply) is MutationReply and reply.status in (MutationStatus.OK,
                                                                     MutationStatus.RETRY_NEXT_CHUNK):
                    if reply.status == MutationStatus.RETRY_NEXT_CHUNK:
                        self._drop_lease(path, index, lease.index)
                    return reply, lease
                if type(reply) is MutationReply and reply.status == MutationStatus.BAD_ARGUMENT:
                    raise GfsError(MutationStatus.BAD_ARGUMENT.name, path, reply.detail)
                last = (MutationStatus(reply.status).name + f" {reply.detail}") if type(reply) is MutationReply \
                    else f"no answer from {lease.primary}"
            self._drop_lease(path, index, lease.index)
            self._locations.pop((path, lease.index), None)
            await ctx.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MS_MAX)
        raise GfsError("FAILED", path, last)

    async def write(self, ctx: Context, path: str, offset: int, data: bytes) -> None:
        """Write ``data`` at ``offset`` of an existing file: one mutation per
        chunk it touches; chunks before it are allocated as needed."""
        if offset < 0:
            raise GfsError(Status.BAD_ARGUMENT.name, path, "negative offset")
        _, chunk_size = await self._locate(ctx, path, 0)
        pos = 0
        while pos < len(data):
            at = offset + pos
            index = at // chunk_size
            known = (path, index - 1) in self._leases or (path, index - 1) in self._locations
            if index > 0 and not known:
                for missing in range(await self._chunk_count(ctx, path), index):
                    await self._lease(ctx, path, missing)   # allocate the chunks before it (a hole)
            within = at - index * chunk_size
            part = data[pos:pos + min(len(data) - pos, chunk_size - within)]

            def make(lease: LeaseReply, data_id: int, pieces: int, within: int = within) -> WriteChunk:
                return WriteChunk(client=self.client_id, data_id=data_id, pieces=pieces, handle=lease.handle,
                                  version=lease.version, offset=within)

            await self._mutate(ctx, path, index, make, part)
            pos += len(part)

    async def record_append(self, ctx: Context, path: str, data: bytes) -> int:
        """Append ``data`` as one record at an offset GFS picks (3.3);
        returns that offset in the file. At least once: a retried attempt
        may leave a duplicate or padding before it."""

        def make(lease: LeaseReply, data_id: int, pieces: int) -> AppendRecord:
            return AppendRecord(client=self.client_id, data_id=data_id, pieces=pieces, handle=lease.handle,
                                version=lease.version)

        index = -1
        for _ in range(self.attempts_max * 4):
            reply, lease = await self._mutate(ctx, path, index, make, data)
            if reply.status == MutationStatus.OK:
                return lease.index * lease.chunk_size_bytes + reply.offset
            index = lease.index + 1   # padded: the next chunk
        raise GfsError("FAILED", path, "no chunk took the record")


def replica_order(replicas: tuple[str, ...], client_id: str, handle: int) -> tuple[str, ...]:
    """``replicas`` turned to start at the one this client reads chunk
    ``handle`` from first and pushes its data to (a stable hash, the same
    on every run)."""
    if len(replicas) < 2:
        return replicas
    start = zlib.crc32(f"{client_id}:{handle}".encode()) % len(replicas)
    return replicas[start:] + replicas[:start]
