"""Web servers doing look-aside caching: the workload of the memcache
simulations (Nishtala et al., NSDI 2013, section 2 Figure 1, and 3.2.1
leases; DESIGN.md section 9 "workload.py").

Theory of operation. A :class:`WebServerNode` loops: pick a key (a few hot
keys take most of the traffic, :class:`LookasideWorkload`), read it or
write it, think, again. The cache endpoint of a key is one of ``caches``
chosen by a hash of the key: a cache server, or the cluster's router
(:class:`~synod.memcache.router.RouterNode`, which takes the same
requests; a router without a gutter answers a down server's ``mg`` with
``EN``, which sends the reader to the database, 3.3).

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
``md <key> O<version>`` (``md I`` with ``stale_values``), leases or not,
sent again while unanswered (up to ``WEB_DELETE_ATTEMPTS_MAX`` times: a
lost delete would let the writer read its old value, 4.1's read-after-write
for the writer); mcsqueal deletes it again from the commit log (4.1).

Regions (section 5). A web server of a replica region reads its region's
database (``database``, a replica) and writes the master region's
(``master_database``). With a ``regional_pool`` (remote markers on), a write
is: set the remote marker ``r<key>`` in the regional pool (TTL
``REMOTE_MARKER_TTL_S``; no marker stored, no write), write the master with
the marker embedded in the write, then delete the key locally. The marker's
value is the tokens (``<web server>/<write number>``) of the writes not yet
replicated, one per write: a writer appends its own (``append``, or ``add``
when there is no marker), puts it in ``DbWrite.remote_marker``, and the
region's mcsqueal takes it out when the replicated record arrives (the
marker goes with the last token). A read that must go to the database (a lease won, a plain
miss, a cache that does not answer) first looks for the marker: present (or
the pool does not answer), it reads the master region's database, else the
local replica. Without a regional pool (markers off) it always reads the
replica, which may not have the web server's own write yet.

Cached values are ``b"<version>:<value>"``, so a reader knows which database
version it saw. Every read and write is recorded in a
:class:`LookasideHistory` for the checkers (:mod:`synod.memcache.checker`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
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
    Line,
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
           "cache_for_key", "cached_value", "parse_cached", "remote_marker"]


@lru_cache(maxsize=C.META_FLAGS_CACHED_MAX)
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


def remote_marker(key: bytes) -> bytes:
    """The remote marker of ``key`` (section 5): ``b"r" + key``."""
    return C.REMOTE_MARKER_PREFIX + key


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
    Times are the web server's ``unix_ms`` (the database's commit times are too).
    ``master``: the database read was the master region's (a remote marker
    was found) rather than the local replica's."""

    client: str
    key: bytes
    invoke_unix_ms: float
    complete_unix_ms: float
    version: int
    source: str
    master: bool = False


@dataclass(slots=True)
class WriteOp:
    """A write: ``version`` the database's (None: no answer, unknown);
    ``delete`` the cache's answer to the delete that followed (None: none);
    ``attempted`` False when the remote marker could not be set, so the
    database was not written (section 5)."""

    client: str
    key: bytes
    value: bytes
    invoke_unix_ms: float
    complete_unix_ms: float
    version: int | None
    delete: bytes | None
    attempted: bool = True


@dataclass(slots=True)
class LookasideHistory:
    """What the web servers did; ``writes_stopped`` is set by the harness
    for the quiescent period (reads go on, writes stop). At most
    ``WEB_HISTORY_OPS_MAX`` operations are kept; ``dropped`` counts the rest."""

    reads: list[ReadOp] = field(default_factory=list)
    writes: list[WriteOp] = field(default_factory=list)
    db_reads: int = 0
    db_read_ms: list[float] = field(default_factory=list)  # when each database read was sent (virtual ms)
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
        master_database: the master region's database, where writes go
            (None: ``database`` is the master).
        regional_pool: the region's regional pool, where remote markers
            are set and looked for (None: no remote markers).
    """

    def __init__(self, *, caches: tuple[str, ...], database: str, history: LookasideHistory,
                 workload: LookasideWorkload | None = None, leases: bool = True,
                 stale_values: bool = False, timeout_ms: float = C.WEB_REQUEST_TIMEOUT_MS,
                 master_database: str | None = None, regional_pool: str | None = None) -> None:
        assert caches
        self.caches, self.database, self.history = caches, database, history
        self.master_database = master_database or database
        assert regional_pool is None or self.master_database != database, "remote markers are for replica regions"
        self.regional_pool = regional_pool
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
            if type(reply) is not MetaReply or reply.code == b"EN":
                # No answer, or a router's "unavailable" (an mg N never misses with EN): the database.
                return await self._fallback(ctx, key, t0)
            if b"W" in reply.flags:
                token = next(f[1:] for f in reply.flags if f[:1] == b"c")
                row, master = await self._db_read(ctx, key)
                if row is None:
                    return self._record_read(ctx, key, t0, -1, "fail", master)
                data = cached_value(row.version, row.value or b"")
                await ctx.call(cache_id, MetaSet(key=key, flags=meta_flags(b"ms", b"C" + token), data=data),
                               self.timeout_ms)
                return self._record_read(ctx, key, t0, row.version, "db", master)
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
        row, master = await self._db_read(ctx, key)
        if row is None:
            return self._record_read(ctx, key, t0, -1, "fail", master)
        data = cached_value(row.version, row.value or b"")
        await ctx.call(cache_id, Store(mode="set", key=key, client_flags=0, exptime=0, data=data), self.timeout_ms)
        self._record_read(ctx, key, t0, row.version, "db", master)

    async def _fallback(self, ctx: Context, key: bytes, t0: float) -> None:
        row, master = await self._db_read(ctx, key)
        self._record_read(ctx, key, t0, -1 if row is None else row.version, "fail" if row is None else "fallback",
                          master)

    async def _db_read(self, ctx: Context, key: bytes) -> tuple[DbRow | None, bool]:
        """The row from the local database, or from the master region's
        when a remote marker says the local replica may lag (section 5);
        and whether it was the master's."""
        db = self.database
        if self.regional_pool is not None:
            found = await ctx.call(self.regional_pool, Get(keys=(remote_marker(key),)), self.timeout_ms)
            if type(found) is not Values or found.values:
                db = self.master_database  # a marker, or no answer: the replica may lag
        self.history.db_reads += 1
        if len(self.history.db_read_ms) < C.WEB_HISTORY_OPS_MAX:
            self.history.db_read_ms.append(ctx.now_ms)
        row = await ctx.call(db, DbRead(key=key), self.timeout_ms)
        return (row if type(row) is DbRow else None), db != self.database

    def _record_read(self, ctx: Context, key: bytes, t0: float, version: int, source: str,
                     master: bool = False) -> None:
        self.history.add(ReadOp(ctx.node_id, key, t0, ctx.unix_ms, version, source, master))

    # -- writes ----------------------------------------------------------------------
    async def _add_marker(self, ctx: Context, marker: bytes, token: bytes) -> bool:
        """Add ``token`` to the remote marker (``append``; ``add`` when there
        is none; again if it came or went meanwhile): True once stored.
        The marker's size is bounded by the pool's item size limit (a full
        one refuses both: no write)."""
        pool = self.regional_pool
        assert pool is not None
        for _ in range(C.WEB_MARKER_ATTEMPTS_MAX):
            for mode, data, exptime in (("append", b" " + token, 0), ("add", token, C.REMOTE_MARKER_TTL_S)):
                reply = await ctx.call(pool, Store(mode=mode, key=marker, client_flags=0, exptime=exptime,
                                                   data=data), self.timeout_ms)
                if type(reply) is not Line:
                    return False  # the pool does not answer: no marker, so no write
                if reply.text == b"STORED":
                    return True
        return False

    async def write(self, ctx: Context, key: bytes) -> None:
        """Write the master database, then delete the key in the cache
        (look-aside); in a replica region with remote markers, set the
        marker first and embed it in the write (section 5)."""
        t0 = ctx.unix_ms
        self.writes += 1
        value = b"%s.%d" % (ctx.node_id.encode(), self.writes)
        token = b""
        if self.regional_pool is not None:
            token = b"%s/%d" % (ctx.node_id.encode(), self.writes)
            if not await self._add_marker(ctx, remote_marker(key), token):
                return self.history.add(WriteOp(ctx.node_id, key, value, t0, ctx.unix_ms, None, None, False))
        done = await ctx.call(self.master_database, DbWrite(key=key, value=value, remote_marker=token),
                              self.timeout_ms)
        version = done.version if type(done) is DbCommitted else None
        deleted: bytes | None = None
        if version is not None:
            # O<version>: the delete names the write it invalidates (the checkers read it).
            flags = meta_flags(b"md", (b"I O%d" if self.stale_values else b"O%d") % version)
            for _ in range(C.WEB_DELETE_ATTEMPTS_MAX):  # unanswered: again (idempotent), so the writer reads its write
                reply = await ctx.call(cache_for_key(key, self.caches), MetaDelete(key=key, flags=flags),
                                       self.timeout_ms)
                deleted = getattr(reply, "text", None) or getattr(reply, "code", None)
                if deleted is not None and not deleted.startswith(b"SERVER_ERROR"):  # a router's "unavailable": again
                    break
        self.history.add(WriteOp(ctx.node_id, key, value, t0, ctx.unix_ms, version, deleted))
