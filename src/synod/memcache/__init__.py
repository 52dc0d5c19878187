"""Memcache at Facebook (Nishtala et al., "Scaling Memcache at Facebook",
NSDI 2013): a memcached-protocol cache tier (issue 11, in progress: the
cache server, the router with its gutter pool and cold-cluster warmup, the
database and mcsqueal invalidation, replica regions and remote markers are
built).

Theory of operation: the cache server (paper sections 2, 3.2.1, 6)
    A :class:`~synod.memcache.node.CacheNode` is one memcached server of
    the look-aside cache: web servers read with get, and on a miss read
    the database and set; they write the database and then delete the key.
    The node speaks memcached's text and meta protocols byte for byte as
    memcached 1.6.18 does (:mod:`synod.memcache.protocol`, sans-IO, served
    by the runtime's client gateway), so unmodified clients work
    (pymemcache, its HashClient, libmemcached's tools).

Roles and parts
    :mod:`~synod.memcache.protocol` bytes <-> typed requests and replies
    (:mod:`~synod.memcache.messages`); :mod:`~synod.memcache.store` the
    item store (memory limit, plain LRU eviction, expiry, cas uniques,
    flush, stats); :mod:`~synod.memcache._meta_ops` the meta commands on it;
    :mod:`~synod.memcache.node` the node and its factory
    (``synod.memcache.node:factory``).

The router (paper sections 3, 3.3; mcrouter's role)
    A :class:`~synod.memcache.router.RouterNode` serves the same protocol
    and routes each request with ``ctx.call`` to cache servers: longest key
    prefix -> named pool, jump consistent hash within a pool
    (:mod:`~synod.memcache._hashing`), replicated pools written to every
    replica (the worst reply answers, as mcrouter's AllSyncRoute) and read
    from one, multigets split by server with the calls in flight at once.
    A server that times out is marked down and probed; meanwhile its keys
    go to a small gutter pool whose TTLs are clamped to 10 s, never to the
    pool's other servers (``synod.memcache.router:factory``); in the
    simulator, the database load after a crash is about what it was before
    with the gutter, two to four times it without (``synod.harness.memcache``,
    ``crash_ms``). Cold-cluster warmup (4.3): a pool named in
    ``warm_pools`` reads its ``get`` misses from a warm pool and ``add``s
    the value; cache servers started with ``hold_off_ms`` refuse adds of a
    key for that long after its delete, which closes the race 4.3 names.

The database and invalidation (3.2.1, 4.1)
    A :class:`~synod.memcache.database.DatabaseNode` keeps a table and a
    durable, checksummed commit log whose record ``seq`` is each row's
    version; a write is answered only once its record is synced. A
    :class:`~synod.memcache.mcsqueal.McsquealNode` pulls that log from its
    durable cursor and deletes the keys written, in batches, on every cache
    endpoint until each acknowledges (at least once, across restarts of
    either side). :class:`~synod.memcache.webclient.WebServerNode` clients
    read look-aside (``mg N`` -> hit, or win the lease and fill with
    ``ms C<token>``, or wait) and write the database, then delete; with
    ``leases=False`` they get / read / set with no token.
    :mod:`~synod.memcache.checker` says what that buys under faults
    (``synod.harness.memcache``): no stale set survives, no stale fill is
    stored, one database read per invalidation; and it catches each when
    leases are off.

Regions and remote markers (4.2, 5)
    One region is the master; a replica region's
    :class:`~synod.memcache.database.DatabaseNode` (``master=<id>``) is fed
    by log shipping: it pulls the master's commit log from its own
    ``last_seq + 1`` every shipping interval and appends the records as
    they are (same ``seq``: the same versions everywhere), in order,
    exactly once, durably; its own mcsqueal then invalidates that region's
    caches when the replicated write arrives. A replica-region web server
    writing ``k`` adds a per-write token to the remote marker ``rk`` in
    its regional pool, writes the master with the token embedded, and
    deletes ``k`` locally; a read that must go to the database reads the
    master's while ``rk`` exists; the region's mcsqueal takes the token out
    when the write's record arrives (a plain delete would drop the marker
    of a later write still on its way). :mod:`~synod.memcache.checker`'s
    read-your-writes check (c) holds with markers and fails at once
    without them.

Leases (3.2.1)
    Expressed as memcached 1.6 expresses them, with meta flags: a reader's
    ``mg <key> N<ttl>`` on a miss creates an empty placeholder and wins
    (``W``) with a cas unique that is its lease token; other readers see
    ``Z`` and wait; the winner fills the key with ``ms <key> C<token>``,
    refused if a delete (``NF``) or an invalidating ``md <key> I`` (``EX``)
    came since. ``md I`` keeps the value as stale (``X``) so readers may use
    it while one winner refills (the paper's stale values). A token is given
    at most once per key per lease interval (10 s by default).

States and invariants
    The store's item table, LRU order and counters; ``bytes`` (the sum of
    memcached's item sizes) never exceeds the memory limit; each link takes
    a fresh cas unique. No durable state: a restart starts cold.

Simplified (see docs/memcache.md): plain LRU instead of the segmented
hot/warm/cold LRU per slab class; no slab allocator (``me`` still reports
memcached's slab class); ``stats items / slabs / sizes / conns`` are empty;
the binary protocol, SASL, UDP and extstore are not served.
"""

from synod.memcache.messages import Reply, Request
from synod.memcache.node import FACTORY, CacheNode, CacheNodeParams, factory
from synod.memcache.protocol import MemcacheProtocol, render
from synod.memcache.router import RouterNode, RouterParams
from synod.memcache.store import Cache

__all__ = ["CacheNode", "CacheNodeParams", "factory", "FACTORY", "MemcacheProtocol", "render", "Cache", "Request",
           "Reply", "RouterNode", "RouterParams"]
