"""The look-aside cache under faults (issue 11 section 4; Nishtala et al.,
NSDI 2013, 3.2.1 leases and 4.1 mcsqueal), as a scenario of the shared
fault runner (:mod:`synod.harness.runner`).

The system: ``caches`` cache servers ``c1..`` (:class:`~synod.memcache.checker.ObservedCacheNode`,
a CacheNode whose answers a herd observer sees), one database ``db``
(:class:`~synod.memcache.database.DatabaseNode`), its invalidation daemon
``mcsqueal`` (:class:`~synod.memcache.mcsqueal.McsquealNode`, deleting on every
cache server), and ``webs`` web servers ``w1..``
(:class:`~synod.memcache.webclient.WebServerNode`) reading and writing a
hot-key-heavy key set, with leases or without (``leases=False``).

Faults (``kinds``): ``kill`` crashes a cache server (it restarts 400 ms
later with empty memory), the database or mcsqueal (both restart from their
disks: the commit log, the cursor); ``partition`` cuts web servers from
cache servers (and cache servers from each other: harmless), for 800 ms;
``loss`` raises loss and duplication on every link; and the network's
latency is long-tailed throughout (1-5 ms, 2% of messages 20 ms to 1 s
later): the message delay that lets a slow fill land after a write's
deletes. The database is crashed too (it must not lose an acknowledged
write), but its disk is not corrupted here: a lone database has no replica
to repair a corrupt record from (tests/memcache/test_database.py covers the
detection).

Regions (section 5; ``regions`` > 1). Region 1 is the master region (the
node ids above); region ``n`` > 1 is a replica region with the same roles
under ids ``r<n>.c1..``, ``r<n>.db`` (a replica
:class:`~synod.memcache.database.DatabaseNode` fed by log shipping from
``db`` every ``shipping_interval_ms``), ``r<n>.mcsqueal`` (tailing
``r<n>.db``, deleting in the region's caches and regional pool),
``r<n>.pool`` (the regional pool, a plain cache server holding the remote
markers, 4.2) and ``r<n>.w1..`` (``webs`` per region, reading their
region's database, writing the master's; with ``remote_markers`` they set
and honour markers in ``r<n>.pool``). The replica databases and mcsqueals
are killed too; partitions also cut regional pools and databases (so the
replicas lag for a while); the regional pools are never killed (a marker
lost with its pool is a read-your-writes violation the paper accepts; here
the pool is kept up so the checker measures the mechanism, not that loss).
With ``regions`` 1 (the default) the run is the same as before regions
existed, seed for seed.

Routers (3.3; ``routers=True``). Each region gets a router ``[r<n>.]mcrouter``
(:class:`~synod.memcache.router.RouterNode`: the region's cache servers its
default pool, a one-server gutter pool ``[r<n>.]g1``, 50 ms server timeout,
three timeouts mark a server down, probes every 200 ms, gutter items live
at most ``GUTTER_TTL_S``), and the web servers and mcsqueal talk to it
instead of to the cache servers; partitions cut routers too; ``kill``
also crashes routers (restarting 400 ms later from their disks: the async
log of missed writes, :class:`~synod.memcache.router.RouterParams`
``durable_missed_writes``) and gutter servers (restarting empty, as any
cache server). With ``durable_missed_writes=False`` a killed router forgets
which servers missed which deletes, and trusts them again with the old
values: checker (a) or (a') catches it (docs/memcache.md has the count).
The router also deletes in the gutter (``gutter_deletes``; the paper's does
not: ``gutter_deletes=False`` shows what that costs, checker (c)). Cache
servers number their lease tokens per incarnation (CacheNode), and the
gutter from ``GUTTER_CAS_BASE``, so a token from one never matches
another's (:func:`_gutter_node`). The gutter servers are seen by
(a') but not by (b) or (a): their items expire by design. ``crash_ms``
crashes :func:`crashed_server` (the hottest key's) for ``CRASH_DOWN_MS``
and adds the figure ``gutter``: database reads in the ``SPIKE_WINDOW_MS``
after the crash over those before (:func:`spike_ratio`), with
``gutter=False`` the paper's point (3.3): the database takes the load.

Phases: faults for ``time_ms``; heal; a quiescent period of
``quiescent_ms`` (writes stop, reads go on, mcsqueal and the replicas catch
up); then the checkers of :mod:`synod.memcache.checker`, each a verdict:
``stale-set`` (a, every region's caches against its own database),
``stale-fill`` (a', the stale set as it happens), ``herd`` (b),
``staleness`` (d, figures only; against the master's commit log) and
``invalidation`` (every mcsqueal acknowledged its database's whole commit
log); with regions, also ``read-your-writes`` (c) and ``replication``
(every replica has the master's whole log; the worst lag seen); with
``crash_ms``, the ``gutter`` figure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from synod.core.errors import ConfigError
from synod.harness.runner import ILLEGAL, OK, RunResult, Scenario, Verdict, run_simulated
from synod.memcache import constants as C
from synod.memcache.checker import (
    CheckResult,
    HerdObserver,
    ObservedCacheNode,
    herd_check,
    read_your_writes_check,
    stale_fill_check,
    stale_set_check,
    staleness_report,
)
from synod.memcache.database import DatabaseNode
from synod.memcache.mcsqueal import McsquealNode
from synod.memcache.node import CacheNode
from synod.memcache.router import RouterNode, RouterParams
from synod.memcache.webclient import LookasideHistory, LookasideWorkload, WebServerNode, cache_for_key
from synod.sim import LinkModel, LongTail, Network, Simulator, Tracer
from synod.sim.nemesis import Nemesis, chaos_nemesis

__all__ = ["MEMCACHE_NEMESIS_KINDS", "memcache_scenario", "run_memcache", "memcache_network", "replay_command",
           "Region", "regions_of", "crashed_server", "spike_ratio"]

MEMCACHE_NEMESIS_KINDS: tuple[str, ...] = ("kill", "partition", "loss")
DATABASE, MCSQUEAL = "db", "mcsqueal"
LEASE_INTERVAL_MS = 500        # the cache servers' lease interval here (the paper's 10 s, scaled to a 10 s run)
PARTITION_INTERVAL_MS = 350.0   # the web/cache partition schedule's own interval (its draws differ from the other's)
# The routers here (3.3), scaled to the simulated network's 1-5 ms latency and 200 ms web timeout:
ROUTER_SERVER_TIMEOUT_MS = 50       # a cache call unanswered this long is a timeout
ROUTER_DOWN_PROBE_INTERVAL_MS = 200
GUTTER_TTL_S = 2                    # short (3.3), yet an item lives 1-2 s (whole seconds), over the 500 ms lease
GUTTER_CAS_BASE = 1 << 62          # the gutter's first cas unique, above 2**22 cache incarnations' (_gutter_node)
GUTTER_SERVERS = 1                  # per frontend cluster ("a small pool", 3.3: about 1% of the servers)
# The scripted crash of ``crash_ms`` (the database load spike the gutter is for, 3.3):
CRASH_DOWN_MS = 2_000.0             # the crashed server restarts (empty) this long after
SPIKE_WINDOW_MS = 1_000.0           # database reads counted this long before and after the crash


def memcache_network() -> Network:
    """1-5 ms, and 2% of messages a Pareto delay of 20 ms and up (at most 1 s)."""
    return Network(LinkModel(latency=LongTail(low_ms=1.0, high_ms=5.0, tail_probability=0.02, tail_scale_ms=20.0,
                                              tail_alpha=1.5, tail_ms_max=1000.0)))


def replay_command(seed: int, **options: Any) -> str:
    """The shell command that replays one run with these options."""
    opts = "".join(f", {k}={v!r}" for k, v in sorted(options.items()))
    return (f'python -c "from synod.harness.memcache import run_memcache; '
            f'from synod.memcache.webclient import LookasideWorkload; '
            f'r = run_memcache({seed}{opts}); print(r.verdict, [v.summary for v in r.verdicts])"')


def _verdict(r: CheckResult) -> Verdict:
    return Verdict(r.name, OK if r.ok else ILLEGAL, r.summary, r.detail)


@dataclass(frozen=True, slots=True)
class Region:
    """One region's node ids: ``n`` (1: the master region), its cache
    servers, database, mcsqueal, regional pool (None in the master region)
    and web servers."""

    n: int
    caches: tuple[str, ...]
    database: str
    mcsqueal: str
    pool: str | None
    webs: tuple[str, ...]
    router: str = ""
    gutter: tuple[str, ...] = ()


def regions_of(regions: int, caches: int, webs: int, *, routers: bool = False) -> tuple[Region, ...]:
    """The node ids of each region (see the module docstring); with
    ``routers``, each region's router ``[r<n>.]mcrouter`` and gutter
    servers ``[r<n>.]g1..``."""
    out = []
    for n in range(1, regions + 1):
        p = "" if n == 1 else f"r{n}."
        out.append(Region(n, tuple(f"{p}c{i}" for i in range(1, caches + 1)), p + DATABASE, p + MCSQUEAL,
                          None if n == 1 else p + "pool", tuple(f"{p}w{i}" for i in range(1, webs + 1)),
                          p + "mcrouter" if routers else "",
                          tuple(f"{p}g{i}" for i in range(1, GUTTER_SERVERS + 1)) if routers else ()))
    return tuple(out)


def crashed_server(reg: Region, key: bytes = b"k0") -> str:
    """The cache server the scripted crash takes down: the home of ``key``
    (the hottest key) in ``reg``'s cluster, by the router's jump hash when
    the region has a router, else by the web servers' own hash."""
    if reg.router:
        [(home, _)] = RouterNode(RouterParams(pools={"cluster": reg.caches}, default_pool="cluster")).plan(key)
        return home
    return cache_for_key(key, reg.caches)


def spike_ratio(db_read_ms: list[float], crash_ms: float, window_ms: float = SPIKE_WINDOW_MS) -> tuple[float, int, int]:
    """(ratio, before, after): database reads in ``[crash_ms, crash_ms +
    window_ms)`` over those in ``[crash_ms - window_ms, crash_ms)`` (times
    in virtual ms; a window with no read before counts as one)."""
    before = sum(1 for t in db_read_ms if crash_ms - window_ms <= t < crash_ms)
    after = sum(1 for t in db_read_ms if crash_ms <= t < crash_ms + window_ms)
    return after / max(before, 1), before, after


def memcache_scenario(sim: Simulator, *, caches: int = 3, webs: int = 8, leases: bool = True,
                      stale_values: bool = False, time_ms: float = 10_000.0, quiescent_ms: float = 3_000.0,
                      kinds: tuple[str, ...] = MEMCACHE_NEMESIS_KINDS, workload: LookasideWorkload | None = None,
                      history: LookasideHistory | None = None, replay: str = "", regions: int = 1,
                      remote_markers: bool = True,
                      shipping_interval_ms: float = C.LOG_SHIPPING_INTERVAL_MS, routers: bool = False,
                      gutter: bool = True, gutter_deletes: bool = True, crash_ms: float | None = None,
                      durable_missed_writes: bool = True) -> Scenario:
    """The scenario of the module docstring: ``caches`` cache servers and
    ``webs`` web servers per region, ``regions`` regions (1 .. ``REGIONS_MAX``;
    region 1 the master), times in virtual ms. ``routers``: web servers and
    mcsqueal reach the caches through a router per region, with a gutter
    pool unless ``gutter`` is False (3.3), deletes reaching the gutter too
    unless ``gutter_deletes`` is False (the paper's gutter, which takes no
    invalidations: then a read failed over to it can return a value older
    than the reader's own write, and checker (c) says so), routers keeping
    the writes a server missed in their async log on disk unless
    ``durable_missed_writes`` is False (then in memory: a killed router
    forgets them); ``crash_ms``: besides the
    nemesis, crash :func:`crashed_server` of region 1 then (restarted
    ``CRASH_DOWN_MS`` later) and report the ``gutter`` figure, the
    database load spike (:func:`spike_ratio`).

    Raises:
        ConfigError: a kind not in ``NEMESIS_KINDS``, ``regions`` out of
            range, ``gutter`` off without ``routers``, or ``crash_ms`` not
            within the faults phase.
    """
    if not 1 <= regions <= C.REGIONS_MAX:
        raise ConfigError(f"regions must be 1..{C.REGIONS_MAX}, got {regions}")
    if not gutter and not routers:
        raise ConfigError("gutter=False needs routers=True (the gutter is the router's)")
    if crash_ms is not None and not SPIKE_WINDOW_MS <= crash_ms <= time_ms - SPIKE_WINDOW_MS:
        raise ConfigError(f"crash_ms must be within {SPIKE_WINDOW_MS:.0f} .. time_ms - {SPIKE_WINDOW_MS:.0f}")
    layout = regions_of(regions, caches, webs, routers=routers)
    hist = history if history is not None else LookasideHistory()
    wl = workload or LookasideWorkload()
    observer, gutter_observer = HerdObserver(), HerdObserver()
    servers: dict[str, Any] = {}
    clients: dict[str, Any] = {}
    for reg in layout:
        _add_region(reg, servers, clients, observer=observer, gutter_observer=gutter_observer, hist=hist, wl=wl, leases=leases,
                    stale_values=stale_values, markers=remote_markers, shipping_interval_ms=shipping_interval_ms,
                    gutter=gutter, gutter_deletes=gutter_deletes, durable_missed_writes=durable_missed_writes)
    all_caches = tuple(c for reg in layout for c in reg.caches)
    crash_kinds = tuple(k for k in kinds if k in ("kill", "loss"))
    crash_targets = (*all_caches, DATABASE, MCSQUEAL, *(n for reg in layout[1:] for n in (reg.database, reg.mcsqueal)))
    if routers:  # a router restarts from its async log, a gutter server empty
        crash_targets += tuple(n for reg in layout for n in (reg.router, *reg.gutter))
    nemesis = replace(chaos_nemesis(crash_kinds), targets=crash_targets, faulty_nodes_max=2)
    partitions: Nemesis | None = None
    cut = (*all_caches, *(w for reg in layout for w in reg.webs))
    if regions > 1:
        cut += tuple(n for reg in layout for n in (reg.database, reg.pool) if n is not None)
    if routers:
        cut += tuple(reg.router for reg in layout)  # router/cache partitions (4: the nemesis)
    if "partition" in kinds:
        partitions = replace(chaos_nemesis(("partition",), interval_ms=PARTITION_INTERVAL_MS),
                             targets=cut, partition_kinds=("symmetric", "one_way", "isolate"))

    crashed = crashed_server(layout[0])

    def driver(sim: Simulator) -> None:
        if partitions is not None:
            partitions.install(sim)
        if crash_ms is not None:
            sim.call_at(crash_ms, sim.crash, crashed)
            sim.call_at(crash_ms + CRASH_DOWN_MS, sim.restart, crashed)

    def after_heal(now_ms: float) -> None:
        hist.writes_stopped = True
        if partitions is not None:
            partitions.heal_and_stop(now_ms)

    def check() -> list[Verdict]:
        verdicts = _checks(sim, layout, observer, gutter_observer, hist, wl, partitions)
        if crash_ms is not None:
            verdicts.append(_gutter_figure(hist, crash_ms, crashed, routers=routers, gutter=gutter))
        return verdicts

    return Scenario(servers=servers, clients=clients, nemesis=nemesis, driver=driver, after_heal=after_heal,
                    safety_ms=time_ms, liveness_ms=quiescent_ms, check=check, replay=replay, history=hist)


def _add_region(reg: Region, servers: dict[str, Any], clients: dict[str, Any], *, observer: HerdObserver,
                gutter_observer: HerdObserver,
                hist: LookasideHistory, wl: LookasideWorkload, leases: bool, stale_values: bool, markers: bool,
                shipping_interval_ms: float, gutter: bool, gutter_deletes: bool,
                durable_missed_writes: bool = True) -> None:
    """The factories of one region's nodes (the master region's exactly as
    before regions existed)."""
    for cid in reg.caches:
        servers[cid] = lambda cid=cid: ObservedCacheNode(cid, observer, lease_interval_ms=LEASE_INTERVAL_MS)
    for gid in reg.gutter:
        # Seen by (a') but not by (b): a gutter item, lease placeholders included, lives at most
        # GUTTER_TTL_S, so a hot key's gutter fills come once per expiry, not once per invalidation.
        servers[gid] = lambda gid=gid: _gutter_node(gid, gutter_observer)
    endpoints = reg.caches
    if reg.router:
        params = RouterParams(pools={"cluster": reg.caches, "gutter": reg.gutter}, default_pool="cluster",
                              gutter_pool="gutter", gutter=gutter, gutter_deletes=gutter_deletes,
                              server_timeout_ms=ROUTER_SERVER_TIMEOUT_MS,
                              down_probe_interval_ms=ROUTER_DOWN_PROBE_INTERVAL_MS, gutter_ttl_s=GUTTER_TTL_S,
                              durable_missed_writes=durable_missed_writes)
        servers[reg.router] = lambda: RouterNode(params)
        endpoints = (reg.router,)
    if reg.n == 1:
        servers[DATABASE] = DatabaseNode
    else:
        servers[reg.database] = lambda: DatabaseNode(master=DATABASE, shipping_interval_ms=shipping_interval_ms)
    servers[reg.mcsqueal] = lambda: McsquealNode(database=reg.database, endpoints=endpoints, invalidate=stale_values,
                                                 pool=reg.pool)
    if reg.pool is not None:
        servers[reg.pool] = lambda: CacheNode(lease_interval_ms=LEASE_INTERVAL_MS)
    pool = reg.pool if markers else None
    for w in reg.webs:
        clients[w] = lambda: WebServerNode(caches=endpoints, database=reg.database, history=hist, workload=wl,
                                           leases=leases, stale_values=stale_values, master_database=DATABASE,
                                           regional_pool=pool)


def _gutter_node(gid: str, observer: HerdObserver) -> ObservedCacheNode:
    """A gutter server whose cas uniques, the lease tokens, start at
    ``GUTTER_CAS_BASE``, above the ranges the cache servers' incarnations
    take theirs from (:class:`~synod.memcache.node.CacheNode`). A lease
    fill routed to the gutter (its home server timed out after granting
    the lease) must not match a token the gutter granted; every memcached's
    first boot counts from 1, and counters this small meet at once
    (measured: a stale fill in the gutter within 40 seeds)."""
    node = ObservedCacheNode(gid, observer, lease_interval_ms=LEASE_INTERVAL_MS)
    node.cache.next_cas = GUTTER_CAS_BASE
    return node


def _checks(sim: Simulator, layout: tuple[Region, ...], observer: HerdObserver, gutter_observer: HerdObserver,
            hist: LookasideHistory,
            wl: LookasideWorkload, partitions: Nemesis | None) -> list[Verdict]:
    def node(node_id: str) -> Any:
        host = sim.hosts[node_id]
        return host.node if host.up else None

    db = node(DATABASE)
    log = db.commit_log if db is not None else []
    stale = [stale_set_check({cid: (n.cache if (n := node(cid)) is not None else None) for cid in reg.caches},
                             rdb.table if (rdb := node(reg.database)) is not None else None) for reg in layout]
    bad = [r for r in stale if not r.ok]
    stale_set = stale[0] if len(stale) == 1 else (bad[0] if bad else CheckResult(
        "stale-set", True, f"every region's cached values equal its database's ({len(stale)} regions)",
        {"items": sum(r.detail.get("items", 0) for r in stale)}))
    acked = [(reg, node(reg.mcsqueal), node(reg.database)) for reg in layout]
    caught_up = all(q is not None and d is not None and q.acked_seq == d.last_seq for _, q, d in acked)
    summary = "; ".join(f"{'' if reg.n == 1 else f'region {reg.n}: '}mcsqueal acknowledged "
                        f"{q.acked_seq if q else '?'} of {d.last_seq if d else '?'} commit log records"
                        for reg, q, d in acked)
    verdicts = [
        _verdict(stale_set),
        _verdict(_stale_fill(observer, gutter_observer, log)),
        _verdict(herd_check(observer, lease_interval_ms=LEASE_INTERVAL_MS, hot=wl.is_hot)),
        _verdict(staleness_report(hist, log)),
        Verdict("invalidation", OK if caught_up else ILLEGAL, summary,
                {"partition_faults": dict(partitions.counts) if partitions is not None else {}}),
    ]
    if len(layout) > 1:
        verdicts.append(_verdict(read_your_writes_check(hist)))
        verdicts.append(_replication(db, [node(reg.database) for reg in layout[1:]]))
    return verdicts


def _stale_fill(observer: HerdObserver, gutter_observer: HerdObserver, log: list[Any]) -> CheckResult:
    """(a') on the cluster's cache servers, then on the gutter servers."""
    main = stale_fill_check(observer, log)
    if not main.ok or not gutter_observer.sets:
        return main
    gutter = stale_fill_check(gutter_observer, log)
    return main if gutter.ok else gutter


def _gutter_figure(hist: LookasideHistory, crash_ms: float, crashed: str, *, routers: bool,
                   gutter: bool) -> Verdict:
    """The database load around the scripted crash (3.3), a figure: reads
    per second in the window after over the window before."""
    ratio, before, after = spike_ratio(hist.db_read_ms, crash_ms)
    how = ("no router" if not routers else "gutter on" if gutter else "gutter off")
    per_s = 1000.0 / SPIKE_WINDOW_MS
    return Verdict("gutter", OK, f"{how}: database reads {before * per_s:.0f}/s before the crash of {crashed}, "
                   f"{after * per_s:.0f}/s after: a spike of x{ratio:.1f}",
                   {"spike_ratio": ratio, "db_reads_before": before, "db_reads_after": after, "crashed": crashed,
                    "window_ms": SPIKE_WINDOW_MS})


def _replication(master: Any, replicas: list[Any]) -> Verdict:
    """Every replica has the master's whole log (after the quiescent period);
    the worst lag seen (ms, apply time minus commit time)."""
    have = [r.last_seq if r is not None else None for r in replicas]
    lag = max((r.ship_lag_ms_max for r in replicas if r is not None), default=0.0)
    want = master.last_seq if master is not None else None
    ok = want is not None and all(h == want for h in have)
    return Verdict("replication", OK if ok else ILLEGAL,
                   f"replicas have {have} of the master's {want} commit log records; worst lag {lag:.0f} ms",
                   {"replica_last_seqs": have, "master_last_seq": want, "ship_lag_ms_max": lag})


def run_memcache(seed: int, *, tracer: Tracer | None = None, progress: Callable[[float, float], None] | None = None,
                 replay: str | None = None, **options: Any) -> RunResult:
    """One seeded run of :func:`memcache_scenario` (``options`` are its
    keyword arguments) over :func:`memcache_network`; the result names the
    seed and its replay command (``replay``, or :func:`replay_command`'s);
    ``progress(now_ms, total_ms)`` is told as virtual time passes."""
    cmd = replay if replay is not None else replay_command(seed, **{k: v for k, v in options.items()
                                                                     if k != "history"})
    return run_simulated(seed, lambda sim: memcache_scenario(sim, replay=cmd, **options),
                         network=memcache_network(), tracer=tracer, progress=progress)
