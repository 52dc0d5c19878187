"""A cache server: one memcached-compatible node (Nishtala et al., section 2
and 3: a memcached server of the look-aside cache tier).

Theory of operation. A :class:`CacheNode` owns one
:class:`~synod.memcache.store.Cache`. Clients reach it through a memcached
port (the runtime's gateway parses each connection's bytes with
:class:`~synod.memcache.protocol.MemcacheProtocol`) or, in the simulator, as
client nodes sending the same requests (:mod:`synod.memcache.messages`).
Every request is answered at once with ``ctx.reply``, in the order it came
(the gateway keeps a connection's replies in request order). The node keeps
no durable state: a restart starts empty, as a memcached restart does (the
paper's cold cache). Time is ``ctx.unix_ms`` (expiry times are Unix times
on the wire).

The node serves what memcached's text and meta protocols ask of one server;
routing, pools, gutter, regions and invalidation daemons are other roles
(issue 11 sections 2 and 3).
"""

from __future__ import annotations

import re
from typing import Any

from synod.core import Context, Node, Params, parse_params
from synod.core.boots import count_boot
from synod.core.clients import ClientClosed, ClientOpened, CopyFilter
from synod.core.errors import RemoteProtocolError
from synod.memcache import constants as C
from synod.memcache._meta_ops import meta_arith, meta_delete, meta_get, meta_set
from synod.memcache.messages import (
    Arith,
    CacheMemlimit,
    Close,
    Delete,
    Disconnect,
    FlushAll,
    Get,
    Invalid,
    Line,
    MetaArith,
    MetaDebug,
    MetaDelete,
    MetaGet,
    MetaNoop,
    MetaReply,
    MetaSet,
    Quit,
    Reply,
    Stats,
    StatsReply,
    Store,
    Touch,
    Verbosity,
    Version,
)
from synod.memcache.protocol import E_BAD_CHUNK, E_TOO_LARGE, MemcacheProtocol, item_size_bytes
from synod.memcache.store import Cache

__all__ = ["CacheNode", "CacheNodeParams", "factory", "FACTORY"]

FACTORY = "synod.memcache.node:factory"

_I32 = (-(2**31), 2**31 - 1)
_U32 = (0, 2**32 - 1)
_U64 = (0, 2**64 - 1)
# Numeric fields of requests and meta flags, with their wire types' bounds.
_RANGES = (("client_flags", *_U32), ("exptime", *_I32), ("delay_s", *_I32), ("cas_unique", *_U64),
           ("delta", *_U64), ("initial", *_U64), ("compare_cas", *_U64), ("vivify_ttl", *_I32), ("ttl", *_I32),
           ("recache_ttl", *_I32), ("level", 0, C.VERBOSITY_MAX))
_BAD_KEY_BYTES = re.compile(rb"[ \n\x00]")

PROTOCOL = "memcache"  # the client protocol's name: connections are "memcache:<n>"
BOOTS_PATH = "memcache/boots"
CAS_UNIQUES_PER_INCARNATION = 1 << 40   # cas uniques one incarnation may take before overlapping the next's
CAS_INCARNATIONS = 1 << 23              # incarnation ranges before they wrap (cas uniques stay under 2**63)
_GATEWAY_PREFIX = PROTOCOL + ":"

_REQUESTS = (Get, Store, Delete, Arith, Touch, FlushAll, Version, Stats, Verbosity, CacheMemlimit, Quit, Invalid,
             Disconnect, MetaGet, MetaSet, MetaDelete, MetaArith, MetaNoop, MetaDebug)


class CacheNode(Node):
    """One memcached-compatible cache server.

    Args:
        memory_limit_bytes: the item memory limit (memcached's -m, in bytes).
        item_size_bytes_max: the largest item (memcached's -I).
        lease_interval_ms: a lease win is given again after this long (0: as
            memcached, only when the placeholder expires).
        hold_off_ms: adds of a key are refused this long after a delete of
            it (Nishtala et al. 4.3; 0, the default: as memcached).
    """

    def __init__(self, *, memory_limit_bytes: int = C.MEMORY_LIMIT_MB * 1024 * 1024,
                 item_size_bytes_max: int = C.ITEM_SIZE_BYTES_MAX,
                 lease_interval_ms: int = C.LEASE_INTERVAL_MS, hold_off_ms: int = 0) -> None:
        self.item_size_bytes_max = item_size_bytes_max
        self.cache = Cache(memory_limit_bytes=memory_limit_bytes, item_size_bytes_max=item_size_bytes_max,
                           lease_interval_ms=lease_interval_ms, hold_off_ms=hold_off_ms)
        self.started_s = 0
        self.verbosity = 0
        self.curr_connections = 0
        self.total_connections = 0
        self._copies = CopyFilter(C.REQUESTS_REMEMBERED_MAX)  # a call delivered twice runs once

    def client_protocols(self) -> dict[str, Any]:
        size_max = self.item_size_bytes_max

        def memcache() -> MemcacheProtocol:
            return MemcacheProtocol(item_size_bytes_max=size_max)

        return {PROTOCOL: memcache}

    def on_start(self, ctx: Context) -> None:
        self.started_s = int(ctx.unix_ms) // 1000
        # Each incarnation takes cas uniques from its own range, so a lease
        # token given before a restart never matches a placeholder made
        # after it (memcached restarts at 1; the first boot still does).
        incarnation = (count_boot(ctx, BOOTS_PATH) - 1) % CAS_INCARNATIONS
        self.cache.next_cas = max(self.cache.next_cas, incarnation * CAS_UNIQUES_PER_INCARNATION + 1)

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        t = type(msg)
        if t is ClientOpened:
            self.curr_connections += 1
            self.total_connections += 1
            return
        if t is ClientClosed:
            self.curr_connections = max(0, self.curr_connections - 1)
            return
        if t not in _REQUESTS:
            ctx.trace("ignore_message", type=t.__name__, reason="not a memcache request")
            return
        # Requests from a memcache connection were made by MemcacheProtocol,
        # which makes only valid ones (its fuzz test checks it) and come over
        # TCP once each; the others (simulated clients, peers) are checked,
        # and a copy (the simulator's network may duplicate) is dropped.
        if not src.startswith(_GATEWAY_PREFIX):
            problem = self.check_request(msg)
            if problem:
                raise RemoteProtocolError(f"{t.__name__} from {src}: {problem}")
            if self._copies.is_copy(ctx.reply_handle()):
                ctx.trace("ignore_request", src=src, reason="duplicate delivery")
                return
        ctx.reply(self.answer(msg, int(ctx.unix_ms)))

    def check_request(self, req: Any) -> str:
        """Why ``req`` could not have come from :class:`MemcacheProtocol`
        (a simulated client, or a peer, sent it), or "" when it could: keys
        of 1..250 bytes without space, LF or NUL (any bytes under a meta
        ``b`` flag), numbers within their wire types, an item within the
        size limit, meta flag tokens that are single words."""
        t = type(req)
        flags = getattr(req, "flags", None)
        binary = flags.key_binary if flags is not None else getattr(req, "key_binary", False)
        keys = req.keys if t is Get else (req.key,) if hasattr(req, "key") else ()
        for key in keys:
            if not 0 < len(key) <= C.KEY_BYTES_MAX or (not binary and _BAD_KEY_BYTES.search(key)):
                return f"bad key {key[:40]!r}"
        for name, lo, hi in _RANGES:
            v = getattr(req, name, None)
            if v is not None and not lo <= v <= hi:
                return f"{name} {v} out of range"
        if flags is not None:
            if any(not tok or _BAD_KEY_BYTES.search(tok) for tok in flags.tokens):
                return "a meta flag token is not one word"
            for name, lo, hi in _RANGES:
                v = getattr(flags, name, None)
                if v is not None and not lo <= v <= hi:
                    return f"flag {name} {v} out of range"
        data = getattr(req, "data", None)
        if data is not None:
            client_flags = flags.client_flags if flags is not None else req.client_flags
            if item_size_bytes(len(req.key), len(data), client_flags) > self.item_size_bytes_max:
                return "item over the size limit"
        if t is Invalid and ("\n" in req.text or "\r" in req.text):
            return "error text of more than one line"
        if t is CacheMemlimit and not C.MEMLIMIT_MB_MIN <= req.memory_limit_mb <= C.MEMLIMIT_MB_MAX:
            return "memory limit out of range"
        return ""

    def answer(self, req: Any, now_ms: int) -> Reply:  # noqa: C901 (one case per request type)
        """The reply to one request at Unix time ``now_ms``."""
        cache = self.cache
        t = type(req)
        if t is Get:
            return cache.get(req, now_ms)
        if t is MetaGet:
            return meta_get(cache, req, now_ms)
        if t is Store:
            outcome, _ = cache.store(req, now_ms)
            return Line(text=outcome)
        if t is MetaSet:
            return meta_set(cache, req, now_ms)
        if t is Delete:
            cache.hold_off(req.key, now_ms)
            return cache.delete(req, now_ms)
        if t is MetaDelete:
            cache.hold_off(req.key, now_ms)
            return meta_delete(cache, req, now_ms)
        if t is Arith:
            return cache.arith(req, now_ms)
        if t is MetaArith:
            return meta_arith(cache, req, now_ms)
        if t is Touch:
            return cache.touch(req, now_ms)
        if t is MetaNoop:
            return MetaReply(code=b"MN")
        if t is MetaDebug:
            return cache.debug(req.key, now_ms)
        if t is FlushAll:
            return cache.flush_all(req, now_ms)
        if t is Invalid:
            if req.unlink_key is not None:
                it = cache.lookup(req.unlink_key, now_ms // 1000)
                if it is not None:
                    cache.unlink(it)
            if req.text == E_TOO_LARGE:
                cache.counters["store_too_large"] += 1
            elif req.text == E_BAD_CHUNK:
                cache.counters["cmd_set"] += 1  # memcached counts the set before checking its data
            return Line(text=req.text.encode())
        if t is Version:
            return Line(text=b"VERSION " + C.VERSION.encode())
        if t is Verbosity:
            self.verbosity = req.level
            return Line(text=b"OK")
        if t is CacheMemlimit:
            cache.set_memory_limit(req.memory_limit_mb * 1024 * 1024, now_ms)
            return Line(text=b"OK")
        if t is Stats:
            return self._stats(req.args, now_ms)
        assert t is Quit or t is Disconnect, t
        return Close()

    def _stats(self, args: tuple[bytes, ...], now_ms: int) -> Reply:
        """stats [group] (memcached process_stat)."""
        if not args:
            now_s = now_ms // 1000
            head = [("uptime", str(now_s - self.started_s)), ("time", str(now_s)), ("version", C.VERSION),
                    ("pointer_size", "64"), ("curr_connections", str(self.curr_connections)),
                    ("total_connections", str(self.total_connections))]
            return StatsReply(stats=tuple(head + self.cache.stats(now_ms) + [("threads", "1")]))
        group = args[0]
        if group == b"reset":
            self.cache.reset_stats()
            self.total_connections = 0
            return Line(text=b"RESET")
        if group == b"detail":
            if len(args) < 2 or args[1] not in (b"on", b"off", b"dump"):
                return Line(text=b"CLIENT_ERROR usage: stats detail on|off|dump")
            return Line(text=b"END") if args[1] == b"dump" else Line(text=b"OK")
        if group == b"settings":
            return StatsReply(stats=(("maxbytes", str(self.cache.memory_limit_bytes)),
                                     ("item_size_max", str(self.item_size_bytes_max)),
                                     ("verbosity", str(self.verbosity)), ("evictions", "on"), ("cas_enabled", "yes"),
                                     ("lru_segmented", "no")))
        if group in (b"items", b"slabs", b"sizes", b"conns"):
            return StatsReply(stats=())  # not modelled: an empty group
        return Line(text=b"ERROR")


class CacheNodeParams(Params):
    """The params of ``synod.memcache.node:factory`` (all optional):
    ``memory_limit_mb`` (memcached's -m), ``item_size_bytes_max`` (-I),
    ``lease_interval_ms`` (Nishtala et al. 3.2.1; 0: as memcached),
    ``hold_off_ms`` (4.3: adds refused this long after a delete; 0: as
    memcached)."""

    memory_limit_mb: int = C.MEMORY_LIMIT_MB
    item_size_bytes_max: int = C.ITEM_SIZE_BYTES_MAX
    lease_interval_ms: int = C.LEASE_INTERVAL_MS
    hold_off_ms: int = 0

    def __post_init__(self) -> None:
        if self.memory_limit_mb < 1:
            raise ValueError("memory_limit_mb must be at least 1")
        if not 1024 <= self.item_size_bytes_max <= 1024 * 1024 * 1024:
            raise ValueError("item_size_bytes_max must be within 1 KiB .. 1 GiB")
        if self.lease_interval_ms < 0:
            raise ValueError("lease_interval_ms must be >= 0")
        if not 0 <= self.hold_off_ms <= C.RELATIVE_EXPTIME_S_MAX * 1000:
            raise ValueError("hold_off_ms must be within 0 .. 30 days")


def factory(node_id: str, params: dict[str, Any]) -> CacheNode:
    """Cluster-config factory ``synod.memcache.node:factory``.

    Raises:
        ConfigError: params that are not :class:`CacheNodeParams`.
    """
    p = parse_params(params, CacheNodeParams)
    return CacheNode(memory_limit_bytes=p.memory_limit_mb * 1024 * 1024, item_size_bytes_max=p.item_size_bytes_max,
                     lease_interval_ms=p.lease_interval_ms, hold_off_ms=p.hold_off_ms)
