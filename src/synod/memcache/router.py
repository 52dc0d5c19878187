"""The router: mcrouter's role in front of the cache servers (Nishtala et
al., NSDI 2013, sections 3 and 3.3; mcrouter's documented behaviour where
the paper is silent).

Theory of operation. A :class:`RouterNode` serves clients in memcached's
protocol, exactly as a :class:`~synod.memcache.node.CacheNode` does (the
same :class:`~synod.memcache.protocol.MemcacheProtocol` on its
``memcache`` port, the same typed requests from simulated clients), and
answers each request with the reply of the cache server it routed it to,
asked with ``ctx.call``. Replies go back through ``ctx.reply_to``; the
gateway writes them in each connection's request order, so a client may
pipeline.

Routes and pools (section 3)
    A key's pool is the one of the longest configured key prefix it starts
    with, else the default pool. Within a pool the key's server is chosen by
    jump consistent hash over the pool's servers in configured order
    (:mod:`synod.memcache._hashing` says why jump rather than ketama).

Replicated pools (mcrouter's AllSyncRoute and FailoverRoute)
    Every mutation (sets, deletes, arithmetic, touch, their meta forms) goes
    to every replica at once; the answer is the *worst* reply, as
    AllSyncRoute answers: no answer or an error line beats a refusal
    (NOT_STORED, NOT_FOUND, EXISTS, NS, NF, EX), which beats success; ties
    go to the earlier replica. A replica marked down counts as no answer
    (mcrouter fails fast on a TKO server). Reads go to one replica chosen by
    the key's hash, and on a timeout to the next replica in pool order.
    Replicated pools do not use the gutter: their replicas cover each other.

Multiget
    ``get k1 k2 ...`` is split by destination server; one call per server,
    all in flight at once (each part is its own coroutine: the first runs
    in ``on_message``, the others start from a zero-delay ``pump`` timer,
    one per firing, in arrival order, so no later request of a pipeline
    reaches a server before an earlier one); the parts' values are merged
    in the request's key order, duplicates included, as memcached answers.

Gutter (3.3)
    A call that gets no reply within ``server_timeout_ms`` counts as a
    timeout of that server; after ``timeouts_until_down`` consecutive ones
    the server is marked down (mcrouter's TKO). A timed-out request, and
    every request for a key of a down server, goes to the gutter pool (jump
    hash of the key over the gutter's servers, with a salt of its own); no
    key is rehashed onto the pool's other servers, whose load stays as it
    was. Whatever the gutter stores expires within ``gutter_ttl_s`` (10 s,
    mcrouter's failover exptime): exptimes of sets, touches, gats and meta
    TTLs are clamped, so a stale gutter item outlives no invalidation by
    more than that. Deletes of a down server's keys go to the gutter too. A
    down server is probed (``version``) every ``down_probe_interval_ms``;
    once it answers, the router deletes on it every key whose write it may
    have missed (sent to the gutter or timed out, here or in a replicated
    pool; mcrouter replays these from its async log, and so does this
    router: see *Async log* below), or flushes it when
    more than ``ROUTER_MISSED_KEYS_MAX`` were missed or a flush_all was,
    and only then marks it up: its keys return to it, and a server that
    was cut off rather than crashed serves no value an invalidation should
    have removed. A server that missed a write without being marked down
    (one slow reply) is probed and replayed at once. Until then a key
    whose write its home server may have missed is routed as if that
    server were down, so a writer does not read its overwritten
    value back from a slow server. The paper's gutter takes no
    invalidations (its items expire instead); with ``gutter_deletes`` a
    delete its home server took goes to the key's gutter server too,
    before the answer, so a read that a timeout fails over to the gutter
    finds nothing older than the delete (a gutter server that missed it
    owes the key, as a home server does, and is skipped for it until the
    probe replays the delete) (measured in the simulator: without
    it read-your-writes across regions fails in 4 seeds of 5). With the gutter
    off (``gutter: false``) such requests fail: a get is a miss (the client
    goes to the database), an mg answers EN, anything else
    ``SERVER_ERROR unavailable``.

States and invariants
    ``_down``: servers marked down; ``_missed`` / ``_flush_owed``: keys
    each server may have missed / servers owed a flush_all; each of these
    servers is in ``_probing`` (a probe timer armed or a probe running,
    one per server).
    ``_timeouts[s]``: consecutive timeouts of ``s``, reset by any reply.
    ``_starts``: coroutines waiting to start, in arrival order; while it
    is not empty the ``pump`` timer is armed and new requests queue behind.
    ``_inflight``: unanswered requests per client, each answered exactly
    once; at most :data:`~synod.memcache.constants.ROUTER_CLIENT_REQUESTS_INFLIGHT_MAX`
    per client and ``ROUTER_REQUESTS_INFLIGHT_MAX`` in all. A restarted
    router believes every server up except those its async log says owe
    replays.

Async log (mcrouter's, on ``ctx.disk``; ``durable_missed_writes``, on by default)
    Each change to ``_missed`` / ``_flush_owed`` (a key newly owed by a
    server, or a flush_all newly owed) is appended to ``router/missed_log``
    as one checksummed :class:`MissedWrite` record
    (:func:`synod.core.records.pack_record`) and synced in the same handler
    step that noted it. The runtime makes the sync durable before it sends
    anything that step queued (DESIGN.md section 2), and a request's answer
    is queued in that step or a later one, so a miss is on disk before the
    client that sent the write hears back. ``on_start`` reloads the log:
    every server it names owes its keys (routed around it, as above) or a
    flush_all, and is probed at once; the replays are what they were before
    the crash. When a server's replays are done (the probe marks it up) the
    log is compacted: rewritten from what is still owed (deleted when
    nothing is), and synced. Size: a server is owed at most
    ``ROUTER_MISSED_KEYS_MAX`` keys, then one flush_all, so the log holds at
    most that many records plus one per server between compactions (a key
    owed twice is logged once). Damage: a torn tail (a crash inside an
    append that was never synced, so never acknowledged) is cut; a corrupt
    record (a checksum mismatch in a record that is all there, or a record
    that does not decode) is reported with ``ctx.warn``, the file is kept
    aside under ``router/damaged/``, and, since the lost record could have
    named any server, every server of every pool is owed a flush_all (its
    keys skip it until the probe has flushed it): nothing read from the
    damaged file is used, and the router runs on.
    Invariant: every key in ``_missed`` and server in ``_flush_owed`` has a
    synced record in the log (durable mode), though the log may hold keys
    already replayed (replayed again after a crash: a delete twice is
    harmless). With ``durable_missed_writes`` False the misses live in
    memory only and a restart forgets them (measured in the simulator:
    router kills then leave stale values, see docs/memcache.md).

Simplified
    Commands that are not about keys are answered by the router itself
    (version, mn, verbosity, cache_memlimit, stats with the router's own
    counters, quit), except flush_all, which goes to every server
    (AllSync). The async log logs misses, not the writes in flight: a
    write whose call was still out when the router crashed is not logged
    (its client got no answer; mcsqueal's retry of the delete covers it).
    A regional pool (4.2) is a pool several clusters' routers all name,
    with a route to it.

Cold-cluster warmup (4.3, mcrouter's WarmUpRoute)
    A pool named in ``warm_pools`` is cold: a ``get``/``gets`` of one of
    its keys that misses there is asked of the key's server in the warm
    pool; a hit is answered and ``add``ed into the cold server (exptime 0),
    an add so that a newer set wins. The race 4.3 names (a write's delete
    reaches the cold server between the warm read and the add, leaving the
    old value) is closed by the cold servers' hold-off (``CacheNode``
    ``hold_off_ms``: adds refused for 2 s after a delete). Other requests
    (meta gets, multigets of several keys, gats) go to the cold pool only.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, get_args

import msgspec

from synod.core import (
    ConfigError,
    Context,
    Node,
    Params,
    RemoteProtocolError,
    ReplyHandle,
    parse_params,
)
from synod.core.clients import ClientClosed, ClientOpened, CopyFilter
from synod.memcache import constants as C
from synod.memcache import messages as mc
from synod.memcache._asynclog import DAMAGED_DIR, MISSED_LOG_PATH, AsyncLog, MissedWrite
from synod.memcache._hashing import server_for
from synod.memcache.node import PROTOCOL, CacheNode
from synod.memcache.protocol import MemcacheProtocol

__all__ = ["RouterNode", "RouterParams", "MissedWrite", "factory", "FACTORY", "MISSED_LOG_PATH", "DAMAGED_DIR"]

FACTORY = "synod.memcache.router:factory"

_GATEWAY_PREFIX = PROTOCOL + ":"
_REQUESTS = frozenset(get_args(mc.Request))
_READS = (mc.Get, mc.MetaGet, mc.MetaDebug)
_DELETES = (mc.Delete, mc.MetaDelete)
_GUTTER_SALT = b"gutter"
_PUMP = "pump"  # the timer that starts queued coroutines (RouterNode._start)

E_BUSY = b"SERVER_ERROR router busy"
E_TOO_MANY_KEYS = "SERVER_ERROR too many keys"
E_UNAVAILABLE = b"SERVER_ERROR unavailable"
E_GET_TOO_LARGE = "SERVER_ERROR out of memory writing get response"
_REFUSALS = frozenset((b"NOT_STORED", b"NOT_FOUND", b"EXISTS", b"NS", b"NF", b"EX", b"EN"))


class RouterParams(Params):
    """The params of ``synod.memcache.router:factory``.

    ``pools``: pool name -> its servers' node ids, in hash order (a pool
    grows at its end); ``default_pool``: the pool of keys no route names;
    ``routes``: ``[prefix, pool]`` pairs, the longest matching prefix wins;
    ``replicated_pools``: pools whose every server holds every key;
    ``gutter_pool``: the pool that takes a failed server's keys ("": none),
    neither the default, routed nor replicated; ``gutter``: False turns the
    gutter off; ``gutter_deletes``: a delete its home server took is also
    sent to the key's gutter server before it is answered (off by default,
    as in mcrouter and the paper, whose gutter takes no invalidations and
    serves "slightly stale" data for up to ``gutter_ttl_s``);
    ``warm_pools``: cold pool -> the warm pool its misses are read from
    (4.3, mcrouter's WarmUpRoute); ``durable_missed_writes``: the writes
    a server missed are kept in an async log on the router's disk, synced
    before the write is answered and reloaded on restart (on by default;
    False keeps them in memory only, as a switch to measure what the log
    is for). Times: ``server_timeout_ms`` (a call without reply by then
    is a timeout), ``timeouts_until_down`` (consecutive timeouts that mark
    a server down), ``down_probe_interval_ms``, ``gutter_ttl_s`` (the
    longest life of a gutter item).

    Raises (through :func:`parse_params`):
        ConfigError: a field of the wrong type, an unknown pool, an empty or
            over-long pool, a server twice in a pool, a gutter that is also
            routed or shares a server with another pool, a limit of
            :mod:`~synod.memcache.constants` exceeded.
    """

    pools: dict[str, tuple[str, ...]]
    default_pool: str
    routes: tuple[tuple[str, str], ...] = ()
    replicated_pools: tuple[str, ...] = ()
    gutter_pool: str = ""
    gutter: bool = True
    gutter_deletes: bool = False
    warm_pools: dict[str, str] = {}
    durable_missed_writes: bool = True
    server_timeout_ms: int = C.ROUTER_SERVER_TIMEOUT_MS
    timeouts_until_down: int = C.ROUTER_TIMEOUTS_UNTIL_DOWN
    down_probe_interval_ms: int = C.ROUTER_DOWN_PROBE_INTERVAL_MS
    gutter_ttl_s: int = C.ROUTER_GUTTER_TTL_S

    def __post_init__(self) -> None:
        if not 1 <= len(self.pools) <= C.ROUTER_POOLS_MAX:
            raise ValueError(f"pools: 1 to {C.ROUTER_POOLS_MAX} pools")
        for name, servers in self.pools.items():
            if not 1 <= len(servers) <= C.ROUTER_POOL_SERVERS_MAX:
                raise ValueError(f"pool {name!r}: 1 to {C.ROUTER_POOL_SERVERS_MAX} servers")
            if len(set(servers)) != len(servers):
                raise ValueError(f"pool {name!r} names a server twice")
        if len(self.routes) > C.ROUTER_ROUTES_MAX:
            raise ValueError(f"at most {C.ROUTER_ROUTES_MAX} routes")
        prefixes = [prefix for prefix, _ in self.routes]
        if "" in prefixes or len(set(prefixes)) != len(prefixes):
            raise ValueError("route prefixes must be non-empty and distinct")
        named = [self.default_pool, *(pool for _, pool in self.routes), *self.replicated_pools]
        if self.gutter_pool:
            named.append(self.gutter_pool)
        for pool in named:
            if pool not in self.pools:
                raise ValueError(f"unknown pool {pool!r}")
        routed = {self.default_pool, *(pool for _, pool in self.routes)}
        if self.gutter_pool and (self.gutter_pool in routed or self.gutter_pool in self.replicated_pools):
            raise ValueError(f"gutter pool {self.gutter_pool!r} is also routed to or replicated")
        if self.gutter_pool:
            served = {s for name, servers in self.pools.items() if name != self.gutter_pool for s in servers}
            if served & set(self.pools[self.gutter_pool]):
                raise ValueError(f"gutter pool {self.gutter_pool!r} shares servers with other pools")
        for cold, warm in self.warm_pools.items():
            if cold not in self.pools or warm not in self.pools or cold == warm:
                raise ValueError(f"warm_pools: {cold!r} -> {warm!r} must name two distinct pools")
            if {cold, warm} & {self.gutter_pool, *self.replicated_pools}:
                raise ValueError(f"warm_pools: {cold!r} -> {warm!r}: not the gutter nor a replicated pool")
        if self.server_timeout_ms < 1 or self.down_probe_interval_ms < 1 or self.timeouts_until_down < 1:
            raise ValueError("server_timeout_ms, down_probe_interval_ms and timeouts_until_down must be >= 1")
        if not 1 <= self.gutter_ttl_s <= C.RELATIVE_EXPTIME_S_MAX:
            raise ValueError(f"gutter_ttl_s must be within 1 .. {C.RELATIVE_EXPTIME_S_MAX}")


_Start = Callable[[Context], Coroutine[Any, Any, None]]  # makes a coroutine that calls servers


class _Fanout:
    """A request answered from several calls in flight at once: ``parts``
    (one coroutine function per call group), their ``results`` as they
    come, and ``finish``, which makes the reply once none is ``pending``."""

    __slots__ = ("handle", "parts", "results", "pending", "finish")

    def __init__(self, handle: ReplyHandle, parts: list[Callable[[Context], Coroutine[Any, Any, Any]]],
                 finish: Callable[[list[Any]], mc.Reply]) -> None:
        self.handle = handle
        self.parts = parts
        self.results: list[Any] = [None] * len(parts)
        self.pending = len(parts)  # Invariant: pending == number of parts not yet returned
        self.finish = finish


class RouterNode(Node):
    """A memcached-protocol router over pools of cache servers (Nishtala et
    al. 3, 3.3; mcrouter). See the module docstring.

    Args:
        params: a :class:`RouterParams` (pools, routes, gutter, timeouts).
    """

    def __init__(self, params: RouterParams) -> None:
        self.params = params
        self.pools = {name: tuple(servers) for name, servers in params.pools.items()}
        # Longest prefix first: the first match is the longest.
        self.routes = sorted(((prefix.encode(), pool) for prefix, pool in params.routes), key=lambda r: -len(r[0]))
        self.replicated = frozenset(params.replicated_pools)
        self.gutter: tuple[str, ...] = self.pools[params.gutter_pool] if params.gutter_pool else ()
        self._down: set[str] = set()
        # Servers with a probe timer armed or a probe running (one at a time).
        # Invariant: self._down, keys of self._missed and self._flush_owed are within it.
        self._probing: set[str] = set()
        # Keys whose writes a server may have missed, and servers owed a flush_all.
        self._missed: dict[str, dict[bytes, None]] = {}
        self._flush_owed: set[str] = set()
        # The async log (None: misses in memory only). Invariant: what _missed and _flush_owed hold is in it.
        self._log = AsyncLog() if params.durable_missed_writes else None
        self._timeouts: dict[str, int] = {}
        self._inflight: dict[str, int] = {}
        self._inflight_total = 0  # Invariant: == sum(self._inflight.values())
        self._fanouts: dict[int, _Fanout] = {}
        # Coroutines to start, in order. Invariant: non-empty => the pump timer is armed.
        self._starts: deque[_Start] = deque()
        self._next_fanout = 1
        self._copies = CopyFilter(C.REQUESTS_REMEMBERED_MAX)  # a call delivered twice runs once
        self._checker = CacheNode()  # the request checks a cache server makes, for simulated clients
        self.counters: dict[str, int] = dict.fromkeys(
            ("requests", "get_keys", "server_calls", "server_timeouts", "servers_marked_down", "gutter_requests",
             "unavailable_replies", "busy_replies", "missed_writes", "missed_writes_replayed",
             "missed_writes_reloaded", "curr_connections", "total_connections", "warmup_hits", "warmup_adds"), 0)
        self.started_s = 0

    def client_protocols(self) -> dict[str, Any]:
        return {PROTOCOL: MemcacheProtocol}

    def on_start(self, ctx: Context) -> None:
        """Check that every pool server is a configured peer other than this
        node; reload the async log (:meth:`_reload`).

        Raises:
            ConfigError: a pool names an unknown node, or this router.
        """
        self.started_s = int(ctx.unix_ms) // 1000
        for name, servers in self.pools.items():
            for server in servers:
                if server not in ctx.peers or server == ctx.node_id:
                    raise ConfigError(f"router {ctx.node_id}: pool {name!r} names {server!r}, which is not a "
                                      f"cache server of the cluster (peers: {', '.join(ctx.peers)})")
        if self._log is not None:
            self._reload(ctx)

    def _reload(self, ctx: Context) -> None:
        """What the async log says servers owe is owed again (and probed
        for at once); a corrupt log: every server owes a flush_all. The file
        is then rewritten to exactly that (a torn tail or damage gone)."""
        assert self._log is not None
        everyone = tuple(dict.fromkeys(s for servers in self.pools.values() for s in servers))
        records, corrupt = self._log.load(ctx, everyone)
        if corrupt:
            records = [MissedWrite(server=s) for s in everyone]
        for r in records:
            self._owe(r.server, r.key)
            self._arm_probe(ctx, r.server)
        self.counters["missed_writes_reloaded"] = len(records)
        if records or ctx.disk.list(MISSED_LOG_PATH):
            self._log.rewrite(ctx, self._missed, self._flush_owed)
        ctx.trace("missed_log_reloaded", records=len(records), corrupt=corrupt,
                  servers_owing=len(self._probing))

    # -- requests ----------------------------------------------------------------------------------

    def on_message(self, ctx: Context, src: str, msg: Any) -> Coroutine[Any, Any, None] | None:
        t = type(msg)
        if t is ClientOpened or t is ClientClosed:
            opened = t is ClientOpened
            self.counters["curr_connections"] = max(0, self.counters["curr_connections"] + (1 if opened else -1))
            self.counters["total_connections"] += opened
            return None
        if t not in _REQUESTS:
            ctx.trace("ignore_message", type=t.__name__, reason="not a memcache request")
            return None
        handle = ctx.reply_handle()
        if not src.startswith(_GATEWAY_PREFIX):
            problem = self._checker.check_request(msg)
            if problem:
                raise RemoteProtocolError(f"{t.__name__} from {src}: {problem}")
            if self._copies.is_copy(handle):
                ctx.trace("ignore_request", src=src, reason="duplicate delivery")
                return None
        local = self._local_reply(msg, int(ctx.unix_ms))
        if local is not None:
            ctx.reply(local)
            return None
        if (self._inflight_total >= C.ROUTER_REQUESTS_INFLIGHT_MAX
                or self._inflight.get(src, 0) >= C.ROUTER_CLIENT_REQUESTS_INFLIGHT_MAX):
            self.counters["busy_replies"] += 1
            ctx.reply(mc.Line(text=E_BUSY))
            return None
        if t is mc.Get and len(msg.keys) > C.ROUTER_MULTIGET_KEYS_MAX:
            ctx.reply(mc.Values(error=E_TOO_MANY_KEYS))
            return None
        self._inflight[src] = self._inflight.get(src, 0) + 1
        self._inflight_total += 1
        self.counters["requests"] += 1
        if t is mc.Get:
            if len(set(msg.keys)) == 1 and not msg.touch and self._pool_for(msg.keys[0]) in self.params.warm_pools:
                return self._start(ctx, [lambda ctx: self._warm_up(ctx, handle, msg)])
            if len(msg.keys) == 1:
                return self._start(ctx, [lambda ctx: self._single_get(ctx, handle, msg)])
            return self._multiget(ctx, handle, msg)
        if t is mc.FlushAll:
            everyone = tuple(dict.fromkeys(s for servers in self.pools.values() for s in servers))
            return self._all_sync(ctx, handle, msg, everyone)
        key = msg.unlink_key if t is mc.Invalid else msg.key
        pool = self._pool_for(key)
        if pool in self.replicated and t not in _READS:
            return self._all_sync(ctx, handle, msg, self.pools[pool])
        return self._start(ctx, [lambda ctx: self._keyed(ctx, handle, msg, key)])

    def _local_reply(self, req: Any, now_ms: int) -> mc.Reply | None:
        """The router's own answer to a command that names no key, or None
        for one that goes to servers."""
        t = type(req)
        if t is mc.Version:
            return mc.Line(text=b"VERSION " + C.VERSION.encode())
        if t is mc.MetaNoop:
            return mc.MetaReply(code=b"MN")
        if t is mc.Quit or t is mc.Disconnect:
            return mc.Close()
        if t is mc.Verbosity or t is mc.CacheMemlimit:
            return mc.Line(text=b"OK")
        if t is mc.Invalid and req.unlink_key is None:
            return mc.Line(text=req.text.encode())
        if t is mc.Stats:
            return self._stats(req.args, now_ms)
        return None

    def _stats(self, args: tuple[bytes, ...], now_ms: int) -> mc.Reply:
        if not args:
            now_s = now_ms // 1000
            head = [("uptime", str(now_s - self.started_s)), ("time", str(now_s)), ("version", C.VERSION)]
            mine = [(name, str(n)) for name, n in self.counters.items()]
            down = [("servers_down", str(len(self._down))), ("requests_inflight", str(self._inflight_total))]
            return mc.StatsReply(stats=tuple(head + mine + down))
        if args == (b"reset",):
            for name in self.counters:
                if name != "curr_connections":
                    self.counters[name] = 0
            return mc.Line(text=b"RESET")
        return mc.Line(text=b"ERROR")

    def _answer(self, ctx: Context, handle: ReplyHandle, reply: mc.Reply) -> None:
        """Answer a routed request (once) and count it out of the in-flight ones."""
        n = self._inflight[handle.src] - 1
        if n:
            self._inflight[handle.src] = n
        else:
            del self._inflight[handle.src]
        self._inflight_total -= 1
        assert self._inflight_total >= 0
        ctx.reply_to(handle, reply)

    # -- routing -----------------------------------------------------------------------------------

    def _pool_for(self, key: bytes) -> str:
        """The pool of ``key``: the longest route prefix it starts with, else the default pool."""
        for prefix, pool in self.routes:
            if key.startswith(prefix):
                return pool
        return self.params.default_pool

    def plan(self, key: bytes) -> list[tuple[str, bool]]:
        """Where to ask for ``key``, in order: ``(server, via_gutter)`` pairs.
        A sharded pool: the key's server unless it is down or owes the key
        a missed write, then (gutter on) its gutter server unless down. A
        replicated pool: its replicas that are up, starting at the one the
        key hashes to. Empty: nowhere (the request fails as unavailable)."""
        pool = self._pool_for(key)
        servers = self.pools[pool]
        first = server_for(key, servers)
        if pool in self.replicated:
            return [(s, False) for s in servers[first:] + servers[:first] if s not in self._down]
        home = servers[first]
        # A server that may have missed a write of this key (a delete that timed out and went to the
        # gutter) may still hold the old value: until the probe replays the delete there, the key is
        # served as if its server were down, so a writer never reads its own overwritten value back.
        owes = home in self._flush_owed or key in self._missed.get(home, ())
        out = [] if home in self._down or owes else [(home, False)]
        if self.params.gutter and self.gutter:
            g = self.gutter[server_for(key, self.gutter, _GUTTER_SALT)]
            if g not in self._down and g not in self._flush_owed and key not in self._missed.get(g, ()):
                out.append((g, True))
        return out

    async def _ask(self, ctx: Context, server: str, req: Any, via_gutter: bool) -> Any:
        """One call to ``server``: its reply, or None on a timeout (counted
        against the server). Gutter-bound requests get their TTLs clamped."""
        if via_gutter:
            self.counters["gutter_requests"] += 1
            req = self._for_gutter(req, int(ctx.unix_ms) // 1000)
        self.counters["server_calls"] += 1
        reply = await ctx.call(server, req, self.params.server_timeout_ms)
        if reply is None:
            self._note_timeout(ctx, server)
        else:
            self._timeouts[server] = 0
        return reply

    async def _keyed(self, ctx: Context, handle: ReplyHandle, req: Any, key: bytes) -> None:
        """A one-key request: the first answer along the key's :meth:`plan`.
        A write its own server did not answer is remembered for that server
        (:meth:`_note_missed`)."""
        reply = None
        at_home = in_gutter = False
        for server, via_gutter in self.plan(key):
            reply = await self._ask(ctx, server, req, via_gutter)
            if reply is not None:
                at_home, in_gutter = not via_gutter, via_gutter
                break
        if not at_home and type(req) not in _READS:
            servers = self.pools[self._pool_for(key)]
            self._note_missed(ctx, servers[server_for(key, servers)], req)
        if (self.params.gutter_deletes and type(req) in _DELETES and not in_gutter and self.params.gutter
                and self.gutter):
            # The gutter's copy, filled while the home server was down or slow, goes too: a later
            # timeout that fails a read over to the gutter finds no value older than this delete.
            g = self.gutter[server_for(key, self.gutter, _GUTTER_SALT)]
            if not at_home or g in self._down or await self._ask(ctx, g, req, True) is None:
                self._note_missed(ctx, g, req)  # replayed by the probe; till then the key skips the gutter
        if reply is None:
            reply = self._unavailable(req)
        self._answer(ctx, handle, reply)

    async def _warm_up(self, ctx: Context, handle: ReplyHandle, req: mc.Get) -> None:
        """mcrouter's WarmUpRoute (4.3) for a get of one key of a cold pool:
        the key's cold server; on a miss its warm server; a warm hit is
        ``add``ed into the cold server (an add, so a newer set wins; and a
        cold server with a hold-off refuses it after a delete) and answered."""
        key = req.keys[0]
        self.counters["get_keys"] += len(req.keys)
        found, error = await self._get_keys(ctx, req, [(key, self.plan(key), 0)] if self.plan(key) else [])
        if not found and not error:
            warm = self.pools[self.params.warm_pools[self._pool_for(key)]]
            server = warm[server_for(key, warm)]
            reply = None if server in self._down else await self._ask(ctx, server, req, False)
            if type(reply) is mc.Values and reply.values:
                self.counters["warmup_hits"] += 1
                value = reply.values[0]
                home = self.plan(key)
                if home and not home[0][1]:  # never warm the gutter
                    fill = mc.Store(mode="add", key=key, client_flags=value.client_flags, exptime=0,
                                    data=value.data)
                    added = await self._ask(ctx, home[0][0], fill, False)
                    self.counters["warmup_adds"] += type(added) is mc.Line and added.text == b"STORED"
                found = {key: value}
        self._answer(ctx, handle, self._merge_values(req, [(found, error)]))

    def _unavailable(self, req: Any) -> mc.Reply:
        """The answer when no server answered: a miss for reads (the client
        falls back to the database), ``SERVER_ERROR unavailable`` otherwise."""
        self.counters["unavailable_replies"] += 1
        t = type(req)
        if t is mc.Get:
            return mc.Values(return_cas=req.return_cas)
        if t is mc.MetaGet:
            return mc.MetaReply(code=b"EN", flags=tuple(tok for tok in req.flags.tokens if tok[:1] == b"O"))
        return mc.Line(text=E_UNAVAILABLE)

    def _for_gutter(self, req: Any, now_s: int) -> Any:
        """``req`` with every TTL it sets clamped to ``gutter_ttl_s`` (3.3:
        gutter items expire quickly, so no invalidation need reach them)."""
        ttl_s = self.params.gutter_ttl_s

        def clamp(exptime: int) -> int:
            if exptime < 0:
                return exptime  # already expired
            if exptime == 0:
                return ttl_s
            if exptime > C.RELATIVE_EXPTIME_S_MAX:  # a Unix time
                left_s = exptime - now_s
                return exptime if left_s <= 0 else min(left_s, ttl_s)
            return min(exptime, ttl_s)

        replace = msgspec.structs.replace
        t = type(req)
        if t is mc.Store or t is mc.Touch or (t is mc.Get and req.touch):
            return replace(req, exptime=clamp(req.exptime))
        if t is mc.MetaSet:
            return replace(req, flags=replace(req.flags, ttl=clamp(req.flags.ttl or 0)))
        if t is mc.MetaGet or t is mc.MetaArith or t is mc.MetaDelete:
            f = req.flags
            ttl = None if f.ttl is None else clamp(f.ttl)
            vivify_ttl = None if f.vivify_ttl is None else clamp(f.vivify_ttl)
            return replace(req, flags=replace(f, ttl=ttl, vivify_ttl=vivify_ttl))
        return req

    # -- server health (3.3) -----------------------------------------------------------------------

    def _note_timeout(self, ctx: Context, server: str) -> None:
        self.counters["server_timeouts"] += 1
        n = self._timeouts.get(server, 0) + 1
        self._timeouts[server] = n
        if n >= self.params.timeouts_until_down and server not in self._down:
            self._down.add(server)
            self.counters["servers_marked_down"] += 1
            ctx.trace("server_down", server=server, timeouts=n)
            self._arm_probe(ctx, server)

    def _note_missed(self, ctx: Context, server: str, req: Any) -> None:
        """``server`` may not have applied the write ``req`` (it went to the
        gutter, or timed out): delete its key there before the server is
        trusted again (mcrouter replays such deletes from its async log);
        a missed flush_all, or more than ``ROUTER_MISSED_KEYS_MAX`` keys,
        is owed as one flush_all instead."""
        self.counters["missed_writes"] += 1
        key = None if type(req) is mc.FlushAll else req.unlink_key if type(req) is mc.Invalid else req.key
        if self._owe(server, key) and self._log is not None:
            # Synced before anything this step sends: the write's answer comes in this step or later.
            self._log.append(ctx, server, None if server in self._flush_owed else key)
        self._arm_probe(ctx, server)

    def _owe(self, server: str, key: bytes | None) -> bool:
        """Note that ``server`` owes ``key`` (None: a flush_all; so do
        more than ``ROUTER_MISSED_KEYS_MAX`` keys). False when nothing new
        is owed (the key, or a flush_all, was owed already)."""
        missed = self._missed.setdefault(server, {})
        if server in self._flush_owed or (key is not None and key in missed):
            return False
        if key is None or len(missed) >= C.ROUTER_MISSED_KEYS_MAX:
            self._flush_owed.add(server)
            missed.clear()
        else:
            missed[key] = None
        return True

    def _arm_probe(self, ctx: Context, server: str) -> None:
        """Probe ``server`` (and replay what it missed): at once when it is
        not marked down (one slow reply: its keys skip it meanwhile), else
        after ``down_probe_interval_ms``."""
        if server not in self._probing:
            self._probing.add(server)
            ctx.set_timer(f"probe {server}", self.params.down_probe_interval_ms if server in self._down else 0)

    async def _probe(self, ctx: Context, server: str) -> None:
        """Ask ``server`` for its version; once it answers, make it forget
        the writes it missed (deleting their keys, or one flush_all), then
        mark it up. Any timeout: try again after ``down_probe_interval_ms``."""
        timeout_ms = self.params.server_timeout_ms
        reply = await ctx.call(server, mc.Version(), timeout_ms)
        while reply is not None and (server in self._flush_owed or self._missed.get(server)):
            if server in self._flush_owed:
                reply = await ctx.call(server, mc.FlushAll(), timeout_ms)
                if reply is not None:
                    self._flush_owed.discard(server)
                    self._missed.pop(server, None)
            else:
                key = next(iter(self._missed[server]))
                reply = await ctx.call(server, _forget(key), timeout_ms)
                if reply is not None:
                    self._missed[server].pop(key, None)
            self.counters["missed_writes_replayed"] += reply is not None
        if reply is None:
            ctx.set_timer(f"probe {server}", self.params.down_probe_interval_ms)
            return
        self._probing.discard(server)
        self._missed.pop(server, None)
        if self._log is not None and server in self._log.logged:
            self._log.rewrite(ctx, self._missed, self._flush_owed)  # compaction: its replays are done
        self._timeouts[server] = 0
        if server in self._down:
            self._down.discard(server)
            ctx.trace("server_up", server=server)

    def on_timer(self, ctx: Context, name: str) -> Coroutine[Any, Any, None] | None:
        kind, _, rest = name.partition(" ")
        if kind == "probe":
            return self._probe(ctx, rest)
        assert name == _PUMP, name
        assert self._starts
        start = self._starts.popleft()
        if self._starts:
            ctx.set_timer(_PUMP, 0)
        return start(ctx)

    # -- several calls in flight -------------------------------------------------------------------

    def _start(self, ctx: Context, starts: list[_Start]) -> Coroutine[Any, Any, None] | None:
        """Start coroutines that call servers, in the order given and after
        every one queued before. A handler can hand its host one coroutine
        only, so the first starts in this handler (when nothing waits) and
        the rest from the ``pump`` timer, one per firing. Queueing keeps the
        first calls of a connection's requests in arrival order: a request
        for a key never overtakes an earlier one for the same server."""
        if self._starts:
            self._starts.extend(starts)
            return None
        self._starts.extend(starts[1:])
        if self._starts:
            ctx.set_timer(_PUMP, 0)
        return starts[0](ctx)

    def _fan_out(self, ctx: Context, handle: ReplyHandle,
                 parts: list[Callable[[Context], Coroutine[Any, Any, Any]]],
                 finish: Callable[[list[Any]], mc.Reply]) -> Coroutine[Any, Any, None] | None:
        """Run ``parts`` at once (each a coroutine of its own, see
        :meth:`_start`) and answer ``finish(results)`` when all are done."""
        assert parts
        fid = self._next_fanout
        self._next_fanout += 1
        self._fanouts[fid] = _Fanout(handle, parts, finish)
        return self._start(ctx, [functools.partial(self._run_part, fid=fid, i=i) for i in range(len(parts))])

    async def _run_part(self, ctx: Context, fid: int, i: int) -> None:
        fan = self._fanouts[fid]
        fan.results[i] = await fan.parts[i](ctx)
        fan.pending -= 1
        if fan.pending == 0:
            del self._fanouts[fid]
            self._answer(ctx, fan.handle, fan.finish(fan.results))

    def _all_sync(self, ctx: Context, handle: ReplyHandle, req: Any,
                  servers: tuple[str, ...]) -> Coroutine[Any, Any, None] | None:
        """mcrouter's AllSyncRoute: ``req`` to every one of ``servers`` at
        once; the answer is the worst reply (:func:`worst_reply`)."""

        def part(server: str) -> Callable[[Context], Coroutine[Any, Any, Any]]:
            async def call(ctx: Context) -> Any:
                reply = None
                if server not in self._down:  # else fail fast, as mcrouter does on a TKO server
                    reply = await self._ask(ctx, server, req, False)
                if reply is None:
                    self._note_missed(ctx, server, req)
                return reply
            return call

        def finish(replies: list[Any]) -> mc.Reply:
            worst = worst_reply(replies)
            return self._unavailable(req) if worst is None else worst

        return self._fan_out(ctx, handle, [part(s) for s in servers], finish)

    async def _single_get(self, ctx: Context, handle: ReplyHandle, req: mc.Get) -> None:
        """A get of one key, the common case: what :meth:`_multiget` does,
        without a fan-out of one part: the same calls in the same order and
        the same answer, for about a quarter less of the router's CPU per get
        (36.3 -> 28.2 us of user time, medians of 6 runs of 32-deep pipelined
        gets, 2026-12-05)."""
        self.counters["get_keys"] += 1
        key = req.keys[0]
        plan = self.plan(key)
        if not plan:
            self.counters["unavailable_replies"] += 1
        result = await self._get_keys(ctx, req, [(key, plan, 0)]) if plan else ({}, "")
        self._answer(ctx, handle, self._merge_values(req, [result]))

    def _multiget(self, ctx: Context, handle: ReplyHandle, req: mc.Get) -> Coroutine[Any, Any, None] | None:
        """get / gets / gat / gats: the keys split by server, one call per
        server at once, the values merged in the request's key order."""
        self.counters["get_keys"] += len(req.keys)
        plans = {key: self.plan(key) for key in dict.fromkeys(req.keys)}
        groups: dict[str, list[bytes]] = {}
        missing: list[bytes] = []
        for key, plan in plans.items():
            if plan:
                groups.setdefault(plan[0][0], []).append(key)
            else:
                missing.append(key)

        def part(keys: list[bytes]) -> Callable[[Context], Coroutine[Any, Any, Any]]:
            async def call(ctx: Context) -> tuple[dict[bytes, mc.Value], str]:
                return await self._get_keys(ctx, req, [(key, plans[key], 0) for key in keys])
            return call

        if missing:
            self.counters["unavailable_replies"] += 1

        parts = [part(keys) for keys in groups.values()]
        if not parts:  # every key unavailable
            parts = [part([])]
        return self._fan_out(ctx, handle, parts, lambda results: self._merge_values(req, results))

    async def _get_keys(self, ctx: Context, req: mc.Get,
                        todo: list[tuple[bytes, list[tuple[str, bool]], int]]) -> tuple[dict[bytes, mc.Value], str]:
        """Values of ``todo``'s keys, each ``(key, plan, step)`` asked at
        ``plan[step]`` (grouped: one call per server, in turn), keys of a
        call that timed out moving on to their plan's next step. Returns the
        values by key and an error line ("" if none)."""
        found: dict[bytes, mc.Value] = {}
        while todo:
            server, via_gutter = todo[0][1][todo[0][2]]
            now = [item for item in todo if item[1][item[2]] == (server, via_gutter)]
            todo = [item for item in todo if item[1][item[2]] != (server, via_gutter)]
            keys = tuple(key for key, _, _ in now)
            sub = msgspec.structs.replace(req, keys=keys, error="")
            reply = await self._ask(ctx, server, sub, via_gutter)
            if reply is None:
                todo += [(key, plan, step + 1) for key, plan, step in now if step + 1 < len(plan)]
                continue
            if not isinstance(reply, mc.Values):
                return found, reply.text.decode() if isinstance(reply, mc.Line) else E_UNAVAILABLE.decode()
            if reply.error:
                return found, reply.error
            for value in reply.values:
                found[value.key] = value
        return found, ""

    def _merge_values(self, req: mc.Get, results: list[tuple[dict[bytes, mc.Value], str]]) -> mc.Reply:
        """The parts' values in ``req.keys`` order (a key named twice comes
        twice); a part's error, or the request's own, replaces them."""
        found: dict[bytes, mc.Value] = {}
        for values, error in results:
            if error:
                return mc.Values(error=error)
            found.update(values)
        if req.error:
            return mc.Values(error=req.error)
        out = [found[key] for key in req.keys if key in found]
        size_bytes = sum(len(v.key) + len(v.data) + 64 for v in out)
        if size_bytes > C.GET_REPLY_BYTES_MAX:
            return mc.Values(error=E_GET_TOO_LARGE)
        return mc.Values(values=tuple(out), return_cas=req.return_cas)


def _forget(key: bytes) -> mc.MetaDelete:
    """A delete of ``key`` whatever its bytes (a meta key given in base64,
    flag ``b``, may hold spaces): ``md <key> b``."""
    return mc.MetaDelete(key=key, flags=mc.MetaFlags(tokens=(b"b",), key_binary=True))


def worst_reply(replies: list[Any]) -> Any:
    """mcrouter AllSyncRoute's answer: the worst of ``replies`` (None, a
    missing reply, is the worst; then error lines; then refusals such as
    NOT_STORED, NOT_FOUND, EXISTS and meta NS, NF, EX, EN; then success),
    the earliest of equals. None when ``replies`` is empty or all None."""

    def badness(reply: Any) -> int:
        if reply is None:
            return 3
        text = reply.text if isinstance(reply, mc.Line) else reply.code if isinstance(reply, mc.MetaReply) else b""
        if text.startswith((b"SERVER_ERROR", b"CLIENT_ERROR", b"ERROR")):
            return 2
        return 1 if text in _REFUSALS else 0

    worst, worst_badness = None, -1
    for reply in replies:
        b = badness(reply)
        if b > worst_badness:
            worst, worst_badness = reply, b
    return worst


def factory(node_id: str, params: dict[str, Any]) -> RouterNode:
    """Cluster-config factory ``synod.memcache.router:factory``.

    Raises:
        ConfigError: params that are not :class:`RouterParams`.
    """
    return RouterNode(parse_params(params, RouterParams))
