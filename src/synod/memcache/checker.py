"""The look-aside cache's own checkers (Nishtala et al., NSDI 2013, 3.2.1
and 4.1; issue 11 section 4 (a), (b), (d)).

- :func:`stale_set_check` (a), no stale set survives: after a quiescent
  period (writes stopped, mcsqueal caught up) every value a cache server
  holds, not marked stale, is the database's current version of its key.
  Leases are what make this hold: without them a reader that read the
  database before a write can set its old value after the write's deletes.
- :func:`stale_fill_check` (a'), the same race seen as it happens: no cache
  server stores a fill of an older version after it processed a delete
  issued after a newer one committed (every delete names the commit log
  record it follows, ``md <key> O<seq>``). A stale set that a later write happens to
  remove still counts: this is the event leases forbid, whether or not it
  survives to the end of the run.
- :func:`herd_check` (b), thundering herd: the misses that send a reader to
  the database (a lease win ``W``; a plain miss without leases), counted per
  key per *invalidation* as the cache server itself saw them (a delete that
  removed the key or marked it stale, a restart with empty memory: a
  :class:`HerdObserver` watches each :class:`ObservedCacheNode`). With leases
  an invalidation costs one database read; a second one is due only when
  the lease interval has passed (the winner never filled). Any further fill
  in the same invalidation is a herd read, and the check fails on the first.
- :func:`read_your_writes_check` (c), across regions (section 5): a web
  server that wrote version v of a key (the write acknowledged) and later
  reads the key sees a version >= v, whichever region it is in. Remote
  markers are what make this hold in a replica region: without them a
  miss reads the local replica, which may not have the write yet.
- :func:`staleness_report` (d): how long cached values served were older
  than the database (the staleness window, from the read history and the
  commit log's commit times) and the hit rate, as numbers.

Each returns a :class:`CheckResult`; the fault runner turns them into its
verdicts (this package sits below the harness).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from synod.core import Context
from synod.memcache.messages import (
    CommitRecord,
    Delete,
    Get,
    Line,
    MetaDelete,
    MetaGet,
    MetaReply,
    MetaSet,
    Store,
    Values,
)
from synod.memcache.node import CacheNode
from synod.memcache.store import Cache
from synod.memcache.webclient import LookasideHistory, parse_cached

__all__ = ["CheckResult", "HerdObserver", "ObservedCacheNode", "stale_set_check", "stale_fill_check", "herd_check",
           "staleness_report", "read_your_writes_check"]


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One checker's answer: ``ok``, a one-line ``summary``, and the numbers
    or counterexamples in ``detail``."""

    name: str
    ok: bool
    summary: str
    detail: dict[str, Any] = field(default_factory=dict)


# -- (b) thundering herd: what each cache server saw -----------------------------------------------


class HerdObserver:
    """What each cache server answered, for checks (a') and (b); times are
    ms of the server's clock.

    An invalidation of ``key`` on ``server``: a delete answered ``DELETED``
    / ``HD`` (it removed the key, or marked it stale with ``I``), or a
    restart of the server (every key at once). ``fills`` maps
    (server, incarnation, key, invalidation number) to the times of the
    misses that sent a reader to the database (a lease win; a plain miss).

    ``invalidated_through`` maps (server, incarnation, key) to the highest
    commit log seq a delete named (``md ... O<seq>``: a web server names its
    write's version, mcsqueal its batch's last record; either way every
    write up to it had committed); a set stored after it with an older
    version is a candidate *stale fill* (``stale_fills``: server,
    incarnation, key, version set, seq invalidated through), a stale one if
    the key has a newer version up to that seq (:func:`stale_fill_check`)."""

    def __init__(self) -> None:
        self.incarnation: dict[str, int] = {}
        self.invalidation: dict[tuple[str, int, bytes], int] = {}
        self.fills: dict[tuple[str, int, bytes, int], list[float]] = {}
        self.invalidated_through: dict[tuple[str, int, bytes], int] = {}
        self.stale_fills: list[tuple[str, int, bytes, int, int]] = []
        self.sets = 0

    def started(self, server: str) -> None:
        self.incarnation[server] = self.incarnation.get(server, 0) + 1

    def saw(self, server: str, req: Any, reply: Any, now_ms: float) -> None:
        t = type(req)
        inc = self.incarnation.get(server, 0)
        if t is Delete or t is MetaDelete:
            self._deleted(server, inc, req, reply)
            return
        if t is MetaSet or t is Store:
            stored = (type(reply) is MetaReply and reply.code == b"HD") or (
                type(reply) is Line and reply.text == b"STORED")
            got = parse_cached(req.data) if stored else None
            if got is not None:
                self.sets += 1
                through = self.invalidated_through.get((server, inc, req.key), 0)
                if got[0] < through:
                    self.stale_fills.append((server, inc, req.key, got[0], through))
            return
        if t is MetaGet and type(reply) is MetaReply and b"W" in reply.flags:
            keys: Iterable[bytes] = (req.key,)
        elif t is Get and type(reply) is Values and not reply.values and len(req.keys) == 1:
            keys = req.keys
        else:
            return
        for key in keys:
            self.fills.setdefault((server, inc, key, self.invalidation.get((server, inc, key), 0)), []).append(now_ms)

    def _deleted(self, server: str, inc: int, req: Any, reply: Any) -> None:
        k = (server, inc, req.key)
        if (type(reply) is Line and reply.text == b"DELETED") or (type(reply) is MetaReply and reply.code == b"HD"):
            self.invalidation[k] = self.invalidation.get(k, 0) + 1
        if type(req) is MetaDelete and type(reply) is MetaReply and reply.code in (b"HD", b"NF"):
            opaque = next((tok[1:] for tok in req.flags.tokens if tok[:1] == b"O"), b"")
            if opaque.isdigit():
                self.invalidated_through[k] = max(self.invalidated_through.get(k, 0), int(opaque))

    def invalidations(self, key_filter: Any = None) -> int:
        """Invalidations seen (restarts count once per key that was filled
        in that incarnation), of the keys ``key_filter(key)`` accepts."""
        n = sum(v for (_, _, key), v in self.invalidation.items() if key_filter is None or key_filter(key))
        starts = {(s, i, k) for (s, i, k, _) in self.fills if key_filter is None or key_filter(k)}
        return n + len(starts)


class ObservedCacheNode(CacheNode):
    """A :class:`~synod.memcache.node.CacheNode` that tells a
    :class:`HerdObserver` what it answered (for the simulator's checkers;
    it answers exactly as a CacheNode). ``name``: its node id."""

    def __init__(self, name: str, observer: HerdObserver, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.name, self.observer = name, observer

    def on_start(self, ctx: Context) -> None:
        super().on_start(ctx)
        self.observer.started(self.name)

    def answer(self, req: Any, now_ms: int) -> Any:
        reply = super().answer(req, now_ms)
        self.observer.saw(self.name, req, reply, float(now_ms))
        return reply


def herd_check(observer: HerdObserver, *, lease_interval_ms: float, hot: Any = None) -> CheckResult:
    """(b): in every invalidation of every key, each fill after the first
    must come at least ``lease_interval_ms`` after the one before (a lease
    given again); any other is a herd read. ``hot(key)``: the keys whose
    figures are reported (database reads per invalidation, mean and max)."""
    herd: list[tuple[str, int, bytes, int, int]] = []
    hot_fills = hot_max = 0
    for (server, inc, key, n), times in observer.fills.items():
        extra = sum(1 for a, b in zip(times, times[1:], strict=False) if b - a < lease_interval_ms)
        if extra:
            herd.append((server, inc, key, n, len(times)))
        if hot is None or hot(key):
            hot_fills += len(times)
            hot_max = max(hot_max, len(times))
    invalidations = observer.invalidations(hot)
    per = hot_fills / invalidations if invalidations else 0.0
    detail = {"hot_db_reads": hot_fills, "hot_invalidations": invalidations, "hot_db_reads_per_invalidation": per,
              "hot_db_reads_per_invalidation_max": hot_max, "herds": len(herd),
              "worst": sorted(herd, key=lambda h: -h[4])[:3]}
    if herd:
        s, i, k, n, count = max(herd, key=lambda h: h[4])
        return CheckResult("herd", False, f"{len(herd)} invalidations read the database more than once within "
                           f"the lease interval; worst: {count} reads of {k!r} on {s} (incarnation {i}, "
                           f"invalidation {n}); {per:.2f} database reads per hot-key invalidation", detail)
    return CheckResult("herd", True, f"one database read per invalidation; hot keys: {hot_fills} reads for "
                       f"{invalidations} invalidations ({per:.2f} each, at most {hot_max})", detail)


# -- (a) no stale set survives ---------------------------------------------------------------------


def stale_set_check(caches: dict[str, Cache | None], table: dict[bytes, tuple[bytes, int]] | None) -> CheckResult:
    """(a): every item of every cache server (None: the server is down),
    not a lease placeholder and not marked stale, holds the database's
    current version of its key (``table``: key -> (value, version); None:
    the database could not be read)."""
    if table is None:
        return CheckResult("stale-set", False, "the database's table could not be read")
    stale: list[tuple[str, bytes, int, int]] = []
    items = 0
    for server, cache in sorted(caches.items()):
        if cache is None:
            continue
        for key, it in cache.items.items():
            if it.placeholder or it.stale:
                continue
            items += 1
            got = parse_cached(it.value)
            want = table.get(key, (b"", 0))[1]
            if got is None or got[0] != want:
                stale.append((server, key, -1 if got is None else got[0], want))
    if stale:
        s, k, have, want = stale[0]
        return CheckResult("stale-set", False, f"{len(stale)} cached values differ from the database after the "
                           f"quiescent period; first: {k!r} on {s} holds version {have}, the database {want}",
                           {"stale": stale[:20], "items": items})
    return CheckResult("stale-set", True, f"all {items} cached values equal the database's", {"items": items})


def stale_fill_check(observer: HerdObserver, commit_log: list[CommitRecord]) -> CheckResult:
    """(a'), the stale set itself (3.2.1): no cache server stored a fill of
    version ``v`` of a key after it had processed a delete naming a version
    ``t`` (every write up to commit log record ``t`` committed) when the
    key had a newer version than ``v`` among the records up to ``t``
    (``commit_log``: the database's). Leases make this impossible (the
    delete voids the filler's token); without them it happens whenever a
    slow fill lands after the invalidation, and the old value stays until
    the next write."""
    seqs: dict[bytes, list[int]] = {}
    for r in commit_log:
        seqs.setdefault(r.key, []).append(r.seq)
    bad = []
    for server, inc, key, v, through in observer.stale_fills:
        versions = seqs.get(key, [])
        i = bisect.bisect_right(versions, v)
        if i < len(versions) and versions[i] <= through:
            bad.append((server, inc, key, v, versions[i]))
    if bad:
        s, i, k, v, newer = bad[0]
        return CheckResult("stale-fill", False, f"{len(bad)} fills stored after a newer version's invalidation; "
                           f"first: {k!r} on {s} (incarnation {i}) set to version {v} after the delete of "
                           f"version {newer}", {"stale_fills": bad[:20], "sets": observer.sets})
    return CheckResult("stale-fill", True, f"none of {observer.sets} fills stored after a newer version's "
                       "invalidation", {"sets": observer.sets})


# -- (c) read-your-writes across regions -----------------------------------------------------------


def read_your_writes_check(history: LookasideHistory) -> CheckResult:
    """(c), section 5: every read that got a value (``version`` >= 0) and
    began after the same web server's acknowledged write of the same key
    completed sees that write's version or a newer one. ``detail``: reads
    checked, violations (client, key, version written, version read, ms
    between the write's acknowledgement and the read, where the read came
    from), reads that went to the master region because of a remote marker."""
    written: dict[tuple[str, bytes], list[tuple[float, int]]] = {}
    for w in history.writes:
        if w.version is not None:
            written.setdefault((w.client, w.key), []).append((w.complete_unix_ms, w.version))
    for times in written.values():
        times.sort()
    best: dict[tuple[str, bytes], list[int]] = {}  # the running max of versions written, by completion time
    for k, times in written.items():
        run, out = 0, []
        for _, v in times:
            run = max(run, v)
            out.append(run)
        best[k] = out
    bad: list[tuple[str, bytes, int, int, float, str]] = []
    checked = 0
    for op in history.reads:
        times = written.get((op.client, op.key))
        if op.version < 0 or not times:
            continue
        i = bisect.bisect_right(times, (op.invoke_unix_ms, float("inf")))
        if i == 0:
            continue
        checked += 1
        want = best[(op.client, op.key)][i - 1]
        if op.version < want:
            where = op.source + (" (master)" if op.master else "")
            bad.append((op.client, op.key, want, op.version, op.invoke_unix_ms - times[i - 1][0], where))
    detail = {"reads_checked": checked, "violations": len(bad), "first": bad[:10],
              "master_reads": sum(1 for op in history.reads if op.master)}
    if bad:
        c, k, want, got, gap, where = bad[0]
        return CheckResult("read-your-writes", False, f"{len(bad)} of {checked} reads of a key after the same web "
                           f"server wrote it saw an older version; first: {c} wrote {k!r} version {want}, read "
                           f"version {got} {gap:.0f} ms later from {where}", detail)
    return CheckResult("read-your-writes", True, f"all {checked} reads after the reader's own write saw it or "
                       f"newer ({detail['master_reads']} reads sent to the master region by a remote marker)",
                       detail)


# -- (d) staleness window and hit rate -------------------------------------------------------------


def staleness_report(history: LookasideHistory, commit_log: list[CommitRecord]) -> CheckResult:
    """(d): for each read that got a value, whether the database had
    already committed a newer version of its key when the read began, and
    for how long (ms); the hit rate (cache hits over reads that got a
    value). Always ok: the figures are for people."""
    commits: dict[bytes, list[tuple[int, int]]] = {}
    for r in commit_log:
        commits.setdefault(r.key, []).append((r.seq, r.commit_unix_ms))
    windows: list[float] = []
    served = hits = fails = 0
    for op in history.reads:
        if op.version < 0:
            fails += 1
            continue
        served += 1
        hits += op.source in ("cache", "stale")
        seqs = commits.get(op.key, [])
        i = bisect.bisect_right(seqs, (op.version, float("inf")))
        if i < len(seqs) and seqs[i][1] < op.invoke_unix_ms:
            windows.append(op.invoke_unix_ms - seqs[i][1])
    windows.sort()
    p99 = windows[min(len(windows) - 1, int(len(windows) * 0.99))] if windows else 0.0
    detail = {"reads": served, "failed_reads": fails, "hit_rate": hits / served if served else 0.0,
              "stale_reads": len(windows), "staleness_ms_max": windows[-1] if windows else 0.0,
              "staleness_ms_p99": p99, "db_reads": history.db_reads, "writes": len(history.writes)}
    return CheckResult("staleness", True, f"{served} reads, hit rate {detail['hit_rate']:.2f}, {len(windows)} "
                       f"older than the database (window max {detail['staleness_ms_max']:.0f} ms, p99 "
                       f"{p99:.0f} ms), {fails} failed", detail)
