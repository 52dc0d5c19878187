"""Web servers doing look-aside caching: the workload of the memcache
simulations (Nishtala et al., NSDI 2013, section 2 Figure 1, and 3.2.1
leases; DESIGN.md section 9 "workload.py").

Theory of operation. A :class:`WebServerNode` loops: pick a key (a few hot
keys take most of the traffic, :class:`LookasideWorkload`), read it or
write it, think, again. The cache endpoint of a key is one of ``caches``
chosen by a hash of the key (a cache server now; a router later takes the
same requests).

Read, with leases (``leases=True``, 3.2.1): ``mg <key> v c N<ttl>``.
A hit (neither ``W`` nor ``Z``) is used. ``W``: this reader won the lease:
it reads the database and fills the cache with ``ms <key> C<token>``, which
the cache refuses if a delete came since (the stale set the lease stops).
``Z``: another reader holds the lease: wait ``lease_retry_ms`` and ask
again (or, with ``stale_values``, use the ``X`` stale value at once).
Without leases (``leases=False``): ``get``; a miss reads the database and
``set``s the value with no token, so a slow filler can overwrite a newer
delete (stale set) and every concurrent misser reads the database
(thundering herd). A cache that does not answer: the reader reads the
database and does not fill (no gutter pool here; that is the router's).

Write: ``DbWrite`` to the database, then delete the key in the cache with
``md <key> O<version>`` (``md I`` with ``stale_values``), leases or not;
mcsqueal deletes it again from the commit log (4.1).

Cached values are ``b"<version>:<value>"``, so a reader knows which database
version it saw. Every read and write is recorded in a
:class:`LookasideHistory` for the checkers (:mod:`synod.memcache.checker`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from synod.core import Context, Node
from synod.core.records import checksum
from synod.memcache import constants as C
from synod.memcache.messages import (
    DbCommitted,
    DbRead,
    DbRow,
    DbWrite,
    Get,
    MetaDelete,
    MetaFlags,
    MetaGet,
    MetaReply,
    MetaSet,
    Store,
    Values,
)
from synod.memcache.protocol import MemcacheProtocol

__all__ = ["WebServerNode", "LookasideWorkload", "LookasideHistory", "ReadOp", "WriteOp", "meta_flags",
           "cache_for_key", "cached_value", "parse_cached"]


@cache
def meta_flags(command: bytes, flags: bytes) -> MetaFlags:
    """The :class:`MetaFlags` memcached's parser makes of ``<command> k
    <flags>`` (``meta_flags(b"mg", b"v c N30")``), so simulated clients send
    exactly what a memcached connection would.

    Raises:
        ValueError: the line does not parse as that meta command.
    """
    size = b" 0" if command == b"ms" else b""  # ms takes a data length and a data block (empty here)
    line = command + b" k" + size + (b" " + flags if flags else b"") + b"\r\n"
    [req] = MemcacheProtocol().receive_data(line + (b"\r\n" if size else b""))
    got = getattr(req, "flags", None)
    if not isinstance(got, MetaFlags):
        raise ValueError(f"not a meta command: {command!r} {flags!r} -> {req!r}")
    return got


def cache_for_key(key: bytes, caches: tuple[str, ...]) -> str:
    """The cache endpoint of ``key``: ``caches[crc32c(key) % len(caches)]``."""
    return caches[checksum(key) % len(caches)]


def cached_value(version: int, value: bytes) -> bytes:
    """What the look-aside client stores: ``b"<version>:<value>"``."""
    return b"%d:%s" % (version, value)


def parse_cached(data: bytes) -> tuple[int, bytes] | None:
    """(version, value) of a cached value, or None if it is not one."""
    head, sep, value = data.partition(b":")
    if not sep or not head.isdigit():
        return None
    return int(head), value


@dataclass(frozen=True, slots=True)
class LookasideWorkload:
    """The key distribution and op mix: ``keys`` (``hot_keys`` of them are
    hot and take ``hot_fraction`` of the operations), ``write_fraction`` of
    operations are writes, ``think_ms`` the pause between operations."""

    keys: int = 20
    hot_keys: int = 2
    hot_fraction: float = 0.8
    write_fraction: float = 0.1
    think_ms: tuple[float, float] = (1.0, 10.0)

    def __post_init__(self) -> None:
        assert 1 <= self.hot_keys <= self.keys
        assert 0.0 <= self.hot_fraction <= 1.0
        assert 0.0 <= self.write_fraction <= 1.0

    def key(self, i: int) -> bytes:
        return b"k%d" % i

    def is_hot(self, key: bytes) -> bool:
        return int(key[1:]) < self.hot_keys

    def pick(self, rng: Any) -> bytes:
        if self.hot_keys == self.keys or rng.random() < self.hot_fraction:
            return self.key(rng.randrange(self.hot_keys))
        return self.key(rng.randrange(self.hot_keys, self.keys))


@dataclass(slots=True)
class ReadOp:
    """A read: ``source`` is ``cache`` (a hit), ``stale`` (an X value used
    while another fills), ``db`` (a fill: this reader read the database and
    set the cache), ``fallback`` (the cache did not answer: the database was
    read, the cache not filled) or ``fail`` (no value: ``version`` -1).
    Times are the web server's ``unix_ms`` (the database's commit times are too)."""

    client: str
    key: bytes
    invoke_unix_ms: float
    complete_unix_ms: float
    version: int
    source: str


@dataclass(slots=True)
class WriteOp:
    """A write: ``version`` the database's (None: no answer, unknown);
    ``delete`` the cache's answer to the delete that followed (None: none)."""

    client: str
    key: bytes
    value: bytes
    invoke_unix_ms: float
    complete_unix_ms: float
    version: int | None
    delete: bytes | None


@dataclass(slots=True)
class LookasideHistory:
    """What the web servers did; ``writes_stopped`` is set by the harness
    for the quiescent period (reads go on, writes stop). At most
    ``WEB_HISTORY_OPS_MAX`` operations are kept; ``dropped`` counts the rest."""

    reads: list[ReadOp] = field(default_factory=list)
    writes: list[WriteOp] = field(default_factory=list)
    db_reads: int = 0
    writes_stopped: bool = False
    dropped: int = 0

    def add(self, op: ReadOp | WriteOp) -> None:
        if len(self.reads) + len(self.writes) >= C.WEB_HISTORY_OPS_MAX:
            self.dropped += 1
        elif type(op) is ReadOp:
            self.reads.append(op)
        else:
            assert type(op) is WriteOp
            self.writes.append(op)


class WebServerNode(Node):
    """A web server, look-aside (see the module docstring).

    Args:
        caches: cache endpoint node ids; a key's is :func:`cache_for_key`.
        database: the database's node id.
        history: where reads and writes are recorded.
        workload: key distribution and mix.
        leases: use leases (mg N / ms C) or plain get / set.
        stale_values: with leases, use a stale (X) value instead of waiting,
            and invalidate with ``md I``.
        timeout_ms: a request unanswered this long has failed.
    """

    def __init__(self, *, caches: tuple[str, ...], database: str, history: LookasideHistory,
                 workload: LookasideWorkload | None = None, leases: bool = True,
                 stale_values: bool = False, timeout_ms: float = C.WEB_REQUEST_TIMEOUT_MS) -> None:
        assert caches
        self.caches, self.database, self.history = caches, database, history
        self.workload = workload or LookasideWorkload()
        self.leases, self.stale_values = leases, stale_values
        self.timeout_ms = timeout_ms
        self.writes = 0

    async def on_start(self, ctx: Context) -> None:
        lo, hi = self.workload.think_ms
        while True:
            await ctx.sleep(ctx.rng.uniform(lo, hi))
            key = self.workload.pick(ctx.rng)
            if ctx.rng.random() < self.workload.write_fraction:
                if not self.history.writes_stopped:
                    await self.write(ctx, key)
            elif self.leases:
                await self.read_with_lease(ctx, key)
            else:
                await self.read_plain(ctx, key)

    # -- reads -----------------------------------------------------------------------
    async def read_with_lease(self, ctx: Context, key: bytes) -> None:
        """mg N: hit, win (W: fill with the token) or wait (Z), 3.2.1."""
        t0 = ctx.unix_ms
        cache_id = cache_for_key(key, self.caches)
        flags = meta_flags(b"mg", b"v c N%d" % C.WEB_LEASE_VIVIFY_TTL_S)
        for _ in range(C.WEB_LEASE_RETRIES_MAX):
            reply = await ctx.call(cache_id, MetaGet(key=key, flags=flags), self.timeout_ms)
            if type(reply) is not MetaReply:
                return await self._fallback(ctx, key, t0)
            if b"W" in reply.flags:
                token = next(f[1:] for f in reply.flags if f[:1] == b"c")
                row = await self._db_read(ctx, key)
                if row is None:
                    return self._record_read(ctx, key, t0, -1, "fail")
                data = cached_value(row.version, row.value or b"")
                await ctx.call(cache_id, MetaSet(key=key, flags=meta_flags(b"ms", b"C" + token), data=data),
                               self.timeout_ms)
                return self._record_read(ctx, key, t0, row.version, "db")
            got = parse_cached(reply.value or b"")
            if b"Z" not in reply.flags and got is not None:
                return self._record_read(ctx, key, t0, got[0], "stale" if b"X" in reply.flags else "cache")
            if self.stale_values and b"X" in reply.flags and got is not None:
                return self._record_read(ctx, key, t0, got[0], "stale")
            await ctx.sleep(C.WEB_LEASE_RETRY_MS)  # another web server holds the lease
        self._record_read(ctx, key, t0, -1, "fail")

    async def read_plain(self, ctx: Context, key: bytes) -> None:
        """get; on a miss read the database and set, no token (leases off)."""
        t0 = ctx.unix_ms
        cache_id = cache_for_key(key, self.caches)
        reply = await ctx.call(cache_id, Get(keys=(key,)), self.timeout_ms)
        if type(reply) is not Values:
            return await self._fallback(ctx, key, t0)
        got = parse_cached(reply.values[0].data) if reply.values else None
        if got is not None:
            return self._record_read(ctx, key, t0, got[0], "cache")
        row = await self._db_read(ctx, key)
        if row is None:
            return self._record_read(ctx, key, t0, -1, "fail")
        data = cached_value(row.version, row.value or b"")
        await ctx.call(cache_id, Store(mode="set", key=key, client_flags=0, exptime=0, data=data), self.timeout_ms)
        self._record_read(ctx, key, t0, row.version, "db")

    async def _fallback(self, ctx: Context, key: bytes, t0: float) -> None:
        row = await self._db_read(ctx, key)
        self._record_read(ctx, key, t0, -1 if row is None else row.version, "fail" if row is None else "fallback")

    async def _db_read(self, ctx: Context, key: bytes) -> DbRow | None:
        self.history.db_reads += 1
        row = await ctx.call(self.database, DbRead(key=key), self.timeout_ms)
        return row if type(row) is DbRow else None

    def _record_read(self, ctx: Context, key: bytes, t0: float, version: int, source: str) -> None:
        self.history.add(ReadOp(ctx.node_id, key, t0, ctx.unix_ms, version, source))

    # -- writes ----------------------------------------------------------------------
    async def write(self, ctx: Context, key: bytes) -> None:
        """Write the database, then delete the key in the cache (look-aside)."""
        t0 = ctx.unix_ms
        self.writes += 1
        value = b"%s.%d" % (ctx.node_id.encode(), self.writes)
        done = await ctx.call(self.database, DbWrite(key=key, value=value), self.timeout_ms)
        version = done.version if type(done) is DbCommitted else None
        deleted: bytes | None = None
        if version is not None:
            # O<version>: the delete names the write it invalidates (the checkers read it).
            flags = meta_flags(b"md", (b"I O%d" if self.stale_values else b"O%d") % version)
            reply = await ctx.call(cache_for_key(key, self.caches), MetaDelete(key=key, flags=flags), self.timeout_ms)
            deleted = getattr(reply, "text", None) or getattr(reply, "code", None)
        self.history.add(WriteOp(ctx.node_id, key, value, t0, ctx.unix_ms, version, deleted))
