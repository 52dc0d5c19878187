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

Phases: faults for ``time_ms``; heal; a quiescent period of
``quiescent_ms`` (writes stop, reads go on, mcsqueal and the replicas catch
up); then the checkers of :mod:`synod.memcache.checker`, each a verdict:
``stale-set`` (a, every region's caches against its own database),
``stale-fill`` (a', the stale set as it happens), ``herd`` (b),
``staleness`` (d, figures only; against the master's commit log) and
``invalidation`` (every mcsqueal acknowledged its database's whole commit
log); with regions, also ``read-your-writes`` (c) and ``replication``
(every replica has the master's whole log; the worst lag seen).
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
from synod.memcache.webclient import LookasideHistory, LookasideWorkload, WebServerNode
from synod.sim import LinkModel, LongTail, Network, Simulator, Tracer
from synod.sim.nemesis import Nemesis, chaos_nemesis

__all__ = ["MEMCACHE_NEMESIS_KINDS", "memcache_scenario", "run_memcache", "memcache_network", "replay_command",
           "Region", "regions_of"]

MEMCACHE_NEMESIS_KINDS: tuple[str, ...] = ("kill", "partition", "loss")
DATABASE, MCSQUEAL = "db", "mcsqueal"
LEASE_INTERVAL_MS = 500        # the cache servers' lease interval here (the paper's 10 s, scaled to a 10 s run)
PARTITION_INTERVAL_MS = 350.0   # the web/cache partition schedule's own interval (its draws differ from the other's)


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


def regions_of(regions: int, caches: int, webs: int) -> tuple[Region, ...]:
    """The node ids of each region (see the module docstring)."""
    out = []
    for n in range(1, regions + 1):
        p = "" if n == 1 else f"r{n}."
        out.append(Region(n, tuple(f"{p}c{i}" for i in range(1, caches + 1)), p + DATABASE, p + MCSQUEAL,
                          None if n == 1 else p + "pool", tuple(f"{p}w{i}" for i in range(1, webs + 1))))
    return tuple(out)


def memcache_scenario(sim: Simulator, *, caches: int = 3, webs: int = 8, leases: bool = True,
                      stale_values: bool = False, time_ms: float = 10_000.0, quiescent_ms: float = 3_000.0,
                      kinds: tuple[str, ...] = MEMCACHE_NEMESIS_KINDS, workload: LookasideWorkload | None = None,
                      history: LookasideHistory | None = None, replay: str = "", regions: int = 1,
                      remote_markers: bool = True,
                      shipping_interval_ms: float = C.LOG_SHIPPING_INTERVAL_MS) -> Scenario:
    """The scenario of the module docstring: ``caches`` cache servers and
    ``webs`` web servers per region, ``regions`` regions (1 .. ``REGIONS_MAX``;
    region 1 the master), times in virtual ms.

    Raises:
        ConfigError: a kind not in ``NEMESIS_KINDS``, or ``regions`` out of range.
    """
    if not 1 <= regions <= C.REGIONS_MAX:
        raise ConfigError(f"regions must be 1..{C.REGIONS_MAX}, got {regions}")
    layout = regions_of(regions, caches, webs)
    hist = history if history is not None else LookasideHistory()
    wl = workload or LookasideWorkload()
    observer = HerdObserver()
    servers: dict[str, Any] = {}
    clients: dict[str, Any] = {}
    for reg in layout:
        _add_region(reg, servers, clients, observer=observer, hist=hist, wl=wl, leases=leases,
                    stale_values=stale_values, markers=remote_markers, shipping_interval_ms=shipping_interval_ms)
    all_caches = tuple(c for reg in layout for c in reg.caches)
    crash_kinds = tuple(k for k in kinds if k in ("kill", "loss"))
    crash_targets = (*all_caches, DATABASE, MCSQUEAL, *(n for reg in layout[1:] for n in (reg.database, reg.mcsqueal)))
    nemesis = replace(chaos_nemesis(crash_kinds), targets=crash_targets, faulty_nodes_max=2)
    partitions: Nemesis | None = None
    if "partition" in kinds:
        cut = (*all_caches, *(w for reg in layout for w in reg.webs))
        if regions > 1:
            cut += tuple(n for reg in layout for n in (reg.database, reg.pool) if n is not None)
        partitions = replace(chaos_nemesis(("partition",), interval_ms=PARTITION_INTERVAL_MS),
                             targets=cut, partition_kinds=("symmetric", "one_way", "isolate"))

    def driver(sim: Simulator) -> None:
        if partitions is not None:
            partitions.install(sim)

    def after_heal(now_ms: float) -> None:
        hist.writes_stopped = True
        if partitions is not None:
            partitions.heal_and_stop(now_ms)

    def check() -> list[Verdict]:
        return _checks(sim, layout, observer, hist, wl, partitions)

    return Scenario(servers=servers, clients=clients, nemesis=nemesis, driver=driver, after_heal=after_heal,
                    safety_ms=time_ms, liveness_ms=quiescent_ms, check=check, replay=replay, history=hist)


def _add_region(reg: Region, servers: dict[str, Any], clients: dict[str, Any], *, observer: HerdObserver,
                hist: LookasideHistory, wl: LookasideWorkload, leases: bool, stale_values: bool, markers: bool,
                shipping_interval_ms: float) -> None:
    """The factories of one region's nodes (the master region's exactly as
    before regions existed)."""
    for cid in reg.caches:
        servers[cid] = lambda cid=cid: ObservedCacheNode(cid, observer, lease_interval_ms=LEASE_INTERVAL_MS)
    if reg.n == 1:
        servers[DATABASE] = DatabaseNode
    else:
        servers[reg.database] = lambda: DatabaseNode(master=DATABASE, shipping_interval_ms=shipping_interval_ms)
    servers[reg.mcsqueal] = lambda: McsquealNode(database=reg.database, endpoints=reg.caches, invalidate=stale_values,
                                                 pool=reg.pool)
    if reg.pool is not None:
        servers[reg.pool] = lambda: CacheNode(lease_interval_ms=LEASE_INTERVAL_MS)
    pool = reg.pool if markers else None
    for w in reg.webs:
        clients[w] = lambda: WebServerNode(caches=reg.caches, database=reg.database, history=hist, workload=wl,
                                           leases=leases, stale_values=stale_values, master_database=DATABASE,
                                           regional_pool=pool)


def _checks(sim: Simulator, layout: tuple[Region, ...], observer: HerdObserver, hist: LookasideHistory,
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
        _verdict(stale_fill_check(observer, log)),
        _verdict(herd_check(observer, lease_interval_ms=LEASE_INTERVAL_MS, hot=wl.is_hot)),
        _verdict(staleness_report(hist, log)),
        Verdict("invalidation", OK if caught_up else ILLEGAL, summary,
                {"partition_faults": dict(partitions.counts) if partitions is not None else {}}),
    ]
    if len(layout) > 1:
        verdicts.append(_verdict(read_your_writes_check(hist)))
        verdicts.append(_replication(db, [node(reg.database) for reg in layout[1:]]))
    return verdicts


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
