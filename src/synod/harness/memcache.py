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

Phases: faults for ``time_ms``; heal; a quiescent period of
``quiescent_ms`` (writes stop, reads go on, mcsqueal catches up); then the
checkers of :mod:`synod.memcache.checker`, each a verdict: ``stale-set``
(a), ``stale-fill`` (a', the stale set as it happens), ``herd`` (b), ``staleness`` (d, figures only) and ``invalidation``
(mcsqueal acknowledged every commit log record).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from synod.harness.runner import ILLEGAL, OK, RunResult, Scenario, Verdict, run_simulated
from synod.memcache.checker import (
    CheckResult,
    HerdObserver,
    ObservedCacheNode,
    herd_check,
    stale_fill_check,
    stale_set_check,
    staleness_report,
)
from synod.memcache.database import DatabaseNode
from synod.memcache.mcsqueal import McsquealNode
from synod.memcache.webclient import LookasideHistory, LookasideWorkload, WebServerNode
from synod.sim import LinkModel, LongTail, Network, Simulator, Tracer
from synod.sim.nemesis import Nemesis, chaos_nemesis

__all__ = ["MEMCACHE_NEMESIS_KINDS", "memcache_scenario", "run_memcache", "memcache_network", "replay_command"]

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


def memcache_scenario(sim: Simulator, *, caches: int = 3, webs: int = 8, leases: bool = True,
                      stale_values: bool = False, time_ms: float = 10_000.0, quiescent_ms: float = 3_000.0,
                      kinds: tuple[str, ...] = MEMCACHE_NEMESIS_KINDS, workload: LookasideWorkload | None = None,
                      history: LookasideHistory | None = None, replay: str = "") -> Scenario:
    """The scenario of the module docstring.

    Raises:
        ConfigError: a kind not in ``NEMESIS_KINDS``.
    """
    cache_ids = tuple(f"c{i}" for i in range(1, caches + 1))
    web_ids = tuple(f"w{i}" for i in range(1, webs + 1))
    hist = history if history is not None else LookasideHistory()
    wl = workload or LookasideWorkload()
    observer = HerdObserver()
    servers: dict[str, Any] = {
        cid: (lambda cid=cid: ObservedCacheNode(cid, observer, lease_interval_ms=LEASE_INTERVAL_MS)) for cid in cache_ids}
    servers[DATABASE] = DatabaseNode
    servers[MCSQUEAL] = lambda: McsquealNode(database=DATABASE, endpoints=cache_ids, invalidate=stale_values)
    clients = {w: (lambda: WebServerNode(caches=cache_ids, database=DATABASE, history=hist, workload=wl,
                                         leases=leases, stale_values=stale_values)) for w in web_ids}
    crash_kinds = tuple(k for k in kinds if k in ("kill", "loss"))
    nemesis = replace(chaos_nemesis(crash_kinds), targets=(*cache_ids, DATABASE, MCSQUEAL), faulty_nodes_max=2)
    partitions: Nemesis | None = None
    if "partition" in kinds:
        partitions = replace(chaos_nemesis(("partition",), interval_ms=PARTITION_INTERVAL_MS),
                             targets=(*cache_ids, *web_ids), partition_kinds=("symmetric", "one_way", "isolate"))

    def driver(sim: Simulator) -> None:
        if partitions is not None:
            partitions.install(sim)

    def after_heal(now_ms: float) -> None:
        hist.writes_stopped = True
        if partitions is not None:
            partitions.heal_and_stop(now_ms)

    def node(node_id: str) -> Any:
        host = sim.hosts[node_id]
        return host.node if host.up else None

    def check() -> list[Verdict]:
        db = node(DATABASE)
        squeal = node(MCSQUEAL)
        stores = {cid: (n.cache if (n := node(cid)) is not None else None) for cid in cache_ids}
        caught_up = db is not None and squeal is not None and squeal.acked_seq == db.last_seq
        return [
            _verdict(stale_set_check(stores, db.table if db is not None else None)),
            _verdict(stale_fill_check(observer, db.commit_log if db is not None else [])),
            _verdict(herd_check(observer, lease_interval_ms=LEASE_INTERVAL_MS, hot=wl.is_hot)),
            _verdict(staleness_report(hist, db.commit_log if db is not None else [])),
            Verdict("invalidation", OK if caught_up else ILLEGAL,
                    f"mcsqueal acknowledged {squeal.acked_seq if squeal else '?'} of "
                    f"{db.last_seq if db else '?'} commit log records",
                    {"partition_faults": dict(partitions.counts) if partitions is not None else {}}),
        ]

    return Scenario(servers=servers, clients=clients, nemesis=nemesis, driver=driver, after_heal=after_heal,
                    safety_ms=time_ms, liveness_ms=quiescent_ms, check=check, replay=replay, history=hist)


def run_memcache(seed: int, *, tracer: Tracer | None = None, **options: Any) -> RunResult:
    """One seeded run of :func:`memcache_scenario` (``options`` are its
    keyword arguments) over :func:`memcache_network`; the result names the
    seed and its replay command."""
    replay = replay_command(seed, **{k: v for k, v in options.items() if k != "history"})
    return run_simulated(seed, lambda sim: memcache_scenario(sim, replay=replay, **options),
                         network=memcache_network(), tracer=tracer)
