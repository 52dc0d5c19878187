"""The memcache tier over real processes under a cache server crash (issue
11 section 4, "Real processes"; Nishtala et al. 3.3 gutter, 4.1
invalidation, 4.2 regional pool).

The tier ``synod memcache up`` starts (:mod:`synod.harness.memcache_real`):
two frontend clusters of three cache servers and a router each, a regional
pool (``r:`` keys), a gutter server, the database and mcsqueal, as processes
on 127.0.0.1. pymemcache clients, one thread each, do look-aside reads and
writes through both routers: read = get; on a miss read the database and
set ``<version>:<value>``; write = write the database (a synod client call,
``DbWrite``), then delete the key through a router, while mcsqueal deletes
it through every router from the commit log.

Each key is read and written by one thread only, one operation at a time,
so the stale-set race that leases close (3.2.1; the simulator's checkers
show it with leases off) cannot happen here by construction: a stale value
left in a cache at the end would be lost invalidation (a delete that did
not reach a server, a gutter copy served after recovery), which is what
this test looks for. Reads may see an older version until mcsqueal's delete
reaches the other cluster (counted, not a failure: the paper's eventual
consistency).

Faults: kill -9 of one frontend cache server mid-run, restart after a
while (empty, as a memcached restart); then SIGSTOP of a server of the
other cluster and SIGCONT: it comes back with its memory, so deletes it
missed meanwhile must be made up before the router trusts it again.
Partitions (node messages blocked both ways; clients still reach every
process): a cluster's router cut off from one of its cache servers (marked
down after a timeout, its keys to the gutter, its missed deletes replayed
on it after the heal before it is marked up), then mcsqueal cut off from
one cluster's router (its deletes for that cluster held up, its cursor
behind, until the heal; then they arrive). Every assertion message carries
the record: operations per phase, faults, verdict.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pymemcache.client.base import Client
from tests.kv.test_real_clients import wait_until as _wait_until

from synod.harness.memcache_real import (
    MCSQUEAL_ID,
    TierLayout,
    db_read,
    db_write,
    mcsqueal_acked_seq,
    stats_of,
    tier_spec,
    version_of,
)
from synod.memcache._hashing import server_for
from synod.memcache.webclient import cached_value, parse_cached
from synod.runtime import LocalCluster, Status, StatusRequest
from synod.runtime.config import write_config

LAYOUT = TierLayout()
VICTIM = "f1-mc2"  # the cache server killed
PAUSED = "f2-mc1"  # the cache server stopped (SIGSTOP: its memory kept) and resumed
CUT = "f1-mc3"  # the cache server partitioned from its router (both keep running)
SQUEAL_CUT = "f2-router"  # the router partitioned from mcsqueal
ROUTER_TIMEOUTS = {"server_timeout_ms": 300, "timeouts_until_down": 1, "down_probe_interval_ms": 200}
WORKERS = 3
KEYS_PER_WORKER = 12     # half of them regional ("r:")
OPS_PER_PHASE = 150      # operations (over all workers) before the next fault step
WRITE_FRACTION = 0.3
DEADLINE_S = 30.0


def wait_until(what: str, check: Callable[[], Any], record: Any, deadline_s: float = DEADLINE_S) -> Any:
    """tests.kv's wait_until, whose failure message ends with the record as it is then."""
    return _wait_until(_Why(what, record), check, deadline_s)  # type: ignore[arg-type]


@dataclass
class _Why:
    what: str
    record: Any

    def __str__(self) -> str:
        return f"{self.what}\n{self.record}"


@dataclass
class Record:
    """What happened, for assertion messages: per phase the operations, the
    faults with their times, and the verdict."""

    t0: float = field(default_factory=time.monotonic)
    phase: str = "before"
    ops: dict[str, dict[str, int]] = field(default_factory=dict)
    faults: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    verdict: str = "running"
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, what: str) -> None:
        with self.lock:
            phase = self.ops.setdefault(self.phase, {})
            phase[what] = phase.get(what, 0) + 1

    def total(self, phase: str) -> int:
        with self.lock:
            return self.ops.get(phase, {}).get("reads", 0) + self.ops.get(phase, {}).get("writes", 0)

    def fault(self, text: str) -> None:
        self.faults.append(f"{time.monotonic() - self.t0:6.2f}s {text}")

    def __str__(self) -> str:
        return (f"record: ops {self.ops}; faults {self.faults}; errors {self.errors[:5]} "
                f"({len(self.errors)}); verdict {self.verdict}")


class Tier:
    def __init__(self, cl: LocalCluster) -> None:
        self.cl = cl

    def port(self, node_id: str) -> int:
        return self.cl.config.nodes[node_id].client_ports["memcache"]

    def client(self, node_id: str) -> Client:
        return Client(("127.0.0.1", self.port(node_id)), timeout=10, connect_timeout=5)


@pytest.fixture(scope="module")
def tier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tier]:
    run: Path = tmp_path_factory.mktemp("memcache-tier")
    _, path = write_config(tier_spec(run, LAYOUT, router_overrides=ROUTER_TIMEOUTS))
    cl = LocalCluster(path)
    try:
        cl.start()
        t = Tier(cl)
        for router in LAYOUT.routers:
            deadline = time.monotonic() + DEADLINE_S
            while version_of(t.port(router)) is None:
                assert time.monotonic() < deadline, f"{router} does not answer version"
                time.sleep(0.02)
        yield t
    finally:
        cl.stop()
        assert not any(cl.is_alive(nid) for nid in cl.node_ids)


def home(key: str, cluster: int = 1) -> str:
    servers = LAYOUT.frontend(cluster)
    return servers[server_for(key.encode(), servers)]


class Worker(threading.Thread):
    """One web server: look-aside reads and writes of its own keys, through
    a router chosen at random per operation."""

    def __init__(self, tier: Tier, record: Record, w: int, stop: threading.Event) -> None:
        super().__init__(name=f"web{w}", daemon=True)
        self.tier, self.record, self.stop = tier, record, stop
        self.rng = random.Random(w)
        self.keys = [f"w{w}:k{i}" if i % 2 else f"r:w{w}:k{i}" for i in range(KEYS_PER_WORKER)]
        self.written: dict[str, int] = {}  # key -> the last version this worker wrote
        self.writes: list[tuple[str, str]] = []  # (phase, key) of each write
        self.routers = {r: tier.client(r) for r in LAYOUT.routers}

    def run(self) -> None:
        while not self.stop.is_set():
            key = self.rng.choice(self.keys)
            router = self.routers[self.rng.choice(LAYOUT.routers)]
            try:
                if self.rng.random() < WRITE_FRACTION:
                    self.write(router, key)
                else:
                    self.read(router, key)
            except Exception as e:  # noqa: BLE001 (recorded and asserted on: no op may fail)
                self.record.count("errors")
                self.record.errors.append(f"{self.record.phase} {key}: {type(e).__name__}: {e}")

    def read(self, router: Client, key: str) -> None:
        self.record.count("reads")
        data = router.get(key)
        if data is not None:
            self.record.count("hits")
            got = parse_cached(data)
            assert got is not None, (key, data)
            if got[0] < self.written.get(key, 0):
                self.record.count("stale_reads_before_invalidation")
            return
        self.record.count("misses")
        row = db_read(self.tier.cl, key.encode())
        assert row is not None, f"database read of {key} unanswered"
        if row.value is not None:
            assert router.set(key, cached_value(row.version, row.value), noreply=False) is True
            self.record.count("fills")

    def write(self, router: Client, key: str) -> None:
        self.record.count("writes")
        version = db_write(self.tier.cl, key.encode(), f"v{self.rng.randrange(10**6)}".encode())
        assert version is not None, f"database write of {key} unanswered"
        self.written[key] = version
        self.writes.append((self.record.phase, key))
        router.delete(key, noreply=False)


@contextmanager
def _web_servers(tier: Tier, record: Record) -> Iterator[list[Worker]]:
    """WORKERS web servers running for the block; on leaving it every one
    has stopped, and no operation of any failed."""
    stop = threading.Event()
    workers = [Worker(tier, record, w, stop) for w in range(WORKERS)]
    try:
        for w in workers:
            w.start()
        yield workers
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=DEADLINE_S)
    assert not any(w.is_alive() for w in workers), record
    assert record.errors == [], record


def test_pymemcache_set_get_delete_through_each_router(tier: Tier) -> None:
    """Every router serves pymemcache; a frontend key is cached per cluster,
    a regional (``r:``) key once for both (4.2)."""
    f1, f2 = (tier.client(r) for r in LAYOUT.routers)
    for c, other in ((f1, f2), (f2, f1)):
        assert c.set("plain", b"mine", noreply=False) is True
        assert c.get("plain") == b"mine"
        assert other.get("plain") is None
        assert c.delete("plain", noreply=False) is True
        assert c.get("plain") is None
    assert f1.set("r:both", b"regional", noreply=False) is True
    assert f2.get("r:both") == b"regional"
    assert f2.delete("r:both", noreply=False) is True
    assert f1.get("r:both") is None


def test_kill_9_a_cache_server_gutter_takes_over_and_nothing_stale_after_recovery(tier: Tier) -> None:
    """Look-aside web servers run throughout; kill -9 of f1-mc2: through
    f1's router its keys keep working via the gutter server and land on no
    other f1 server (3.3); restart: the router marks it up again. SIGSTOP
    of f2-mc1, then SIGCONT: it keeps its memory, so the router must delete
    what it missed before marking it up. After the run, once mcsqueal's cursor has passed the last write (4.1), every value
    served by either router, and every value on the cluster and regional
    servers, equals the database's (or is a miss)."""
    cl = tier.cl
    record = Record()
    f1 = tier.client("f1-router")
    with _web_servers(tier, record) as workers:
        wait_until("the first phase's operations", lambda: record.total("before") >= OPS_PER_PHASE, record)

        record.phase = "victim down"
        record.fault(f"kill -9 {VICTIM}")
        cl.kill(VICTIM)
        wait_until("operations with the victim down", lambda: record.total("victim down") >= OPS_PER_PHASE,
                   record)
        _gutter_takes_over(tier, f1, record)

        record.phase = "after restart"
        cl.start([VICTIM])
        record.fault(f"restart {VICTIM}")
        wait_until(f"f1's router marks {VICTIM} up", lambda: stats_of(tier.port("f1-router"))["servers_down"] == "0",
                   record)
        record.fault(f"{VICTIM} marked up")
        back = next(f"back{i}" for i in range(1000) if home(f"back{i}") == VICTIM)
        assert f1.set(back, b"home", noreply=False) is True
        assert tier.client(VICTIM).get(back) == b"home", record
        wait_until("operations after the restart", lambda: record.total("after restart") >= OPS_PER_PHASE, record)

        record.phase = "paused"
        cl.pause(PAUSED)
        record.fault(f"SIGSTOP {PAUSED}")
        try:
            wait_until(f"operations with {PAUSED} paused", lambda: record.total("paused") >= OPS_PER_PHASE, record)
        finally:
            cl.resume(PAUSED)
            record.fault(f"SIGCONT {PAUSED}")
        record.phase = "after resume"
        wait_until(f"f2's router marks {PAUSED} up",
                   lambda: stats_of(tier.port("f2-router"))["servers_down"] == "0", record)
        record.fault(f"{PAUSED} marked up")
        wait_until("operations after the resume", lambda: record.total("after resume") >= OPS_PER_PHASE, record)
    victim_keys = [k for w in workers for k in w.keys if not k.startswith("r:") and home(k) == VICTIM]
    assert victim_keys, f"no worker key lives on {VICTIM}: {record}"
    assert record.ops["victim down"].get("reads", 0) > 0 and record.ops["victim down"].get("writes", 0) > 0, record
    missed = {k for w in workers for phase, k in w.writes
              if phase == "paused" and not k.startswith("r:") and home(k, 2) == PAUSED}
    record.fault(f"keys of {PAUSED} written while it was paused: {len(missed)}")
    assert missed, f"no key of {PAUSED} was written while it was paused: {record}"
    _nothing_stale(tier, [k for w in workers for k in w.keys], record)


def _gutter_takes_over(tier: Tier, f1: Client, record: Record) -> None:
    """With the victim down: its keys are set and got through f1's router,
    held by the gutter server, on no other server of f1's pool."""
    mine = [f"g{i}" for i in range(1000) if home(f"g{i}") == VICTIM][:5]
    for key in mine:
        assert f1.set(key, b"via-gutter", noreply=False) is True, record
    assert f1.get_many(mine) == dict.fromkeys(mine, b"via-gutter"), record
    assert tier.client("gutter-mc1").get_many(mine) == dict.fromkeys(mine, b"via-gutter"), record
    for other in LAYOUT.frontend(1):
        if other != VICTIM:
            assert tier.client(other).get_many(mine) == {}, f"{other} holds a key of {VICTIM}: {record}"
    stats = stats_of(tier.port("f1-router"))
    assert stats is not None, record
    assert stats["servers_down"] == "1" and int(stats["gutter_requests"]) > 0, f"{stats}: {record}"
    record.fault(f"gutter checked: {mine} served by gutter-mc1; f1 router gutter_requests "
                 f"{stats['gutter_requests']}")


def test_partitions_router_cut_from_a_server_then_mcsqueal_cut_from_a_router(tier: Tier) -> None:
    """Look-aside web servers run throughout. A partition between f1's
    router and f1-mc3, both running: the router marks the server down after
    a timeout and sends its keys to the gutter (3.3); the server keeps its
    memory, so the router deletes there what it missed before it marks it
    up after the heal. Then a partition between mcsqueal and f2's router:
    f2 serves an overwritten value and mcsqueal's cursor stays behind the
    write until the heal, then its deletes arrive (at least once, 4.1).
    After the run, once mcsqueal's cursor has passed the last write, nothing
    served or cached differs from the database."""
    record = Record()
    with _web_servers(tier, record) as workers:
        wait_until("the first phase's operations", lambda: record.total("before") >= OPS_PER_PHASE, record)
        replayed = _router_cut_from_a_server(tier, record)
        delayed = _mcsqueal_cut_from_a_router(tier, record)
    missed = {k for w in workers for phase, k in w.writes
              if phase == "router cut" and not k.startswith("r:") and home(k) == CUT}
    record.fault(f"keys of {CUT} written while it was cut off: {len(missed)}")
    assert missed, f"no key of {CUT} was written while it was cut off: {record}"
    _nothing_stale(tier, [k for w in workers for k in w.keys] + [replayed, delayed], record)


def _router_cut_from_a_server(tier: Tier, record: Record) -> str:
    """Phases "router cut" and "after heal": f1's router and CUT cannot
    exchange messages (clients still reach both). A key cached on CUT and
    then written is still held there during the cut (its delete went to the
    gutter) and gone when the router marks CUT up. Returns that key."""
    cl, router = tier.cl, LAYOUT.router(1)
    f1, server = tier.client(router), tier.client(CUT)
    key = next(f"cut{i}" for i in range(1000) if home(f"cut{i}") == CUT)
    old = _cached(tier, key, b"before the cut", [f1], record)
    assert server.get(key) == old, record
    before = _router_stats(tier, router, record)
    assert before["servers_down"] == "0", f"{before}: {record}"
    try:
        cl.partition_one_way([router], [CUT])
        cl.partition_one_way([CUT], [router])
        record.phase = "router cut"  # from here on: the nodes have acknowledged the partition
        record.fault(f"partition {router} | {CUT}")
        assert db_write(cl, key.encode(), b"during the cut") is not None, record
        f1.delete(key, noreply=False)  # times out on CUT or fails fast: to the gutter, owed to CUT
        wait_until(f"{router} marks {CUT} down", lambda: _router_stats(tier, router, record)["servers_down"] == "1",
                   record)
        record.fault(f"{CUT} marked down")
        wait_until(f"operations with {CUT} cut off", lambda: record.total("router cut") >= OPS_PER_PHASE, record)
        cut = _router_stats(tier, router, record)
        assert server.get(key) == old, f"{CUT} lost its memory or took a delete across the partition: {record}"
        assert f1.get(key) is None, f"{router} served {CUT}'s overwritten value: {record}"
        for name in ("gutter_requests", "missed_writes"):
            assert int(cut[name]) > int(before[name]), f"{name} {before[name]} -> {cut[name]}: {record}"
        record.fault(f"cut checked: {CUT} keeps {key}; gutter_requests {before['gutter_requests']} -> "
                     f"{cut['gutter_requests']}, missed_writes {before['missed_writes']} -> {cut['missed_writes']}")
    finally:
        cl.heal()
        record.fault("heal")
    record.phase = "after heal"

    def up_and_not_stale() -> bool:
        # Polled till the router marks CUT up: at no point may it serve CUT's copy of the key.
        assert f1.get(key) is None, f"{router} served {key} from {CUT} before replaying its delete: {record}"
        return _router_stats(tier, router, record)["servers_down"] == "0"

    wait_until(f"{router} marks {CUT} up", up_and_not_stale, record)
    assert f1.get(key) is None, f"{router} served {key} from {CUT} after marking it up: {record}"
    up = _router_stats(tier, router, record)
    record.fault(f"{CUT} marked up; missed_writes_replayed {before['missed_writes_replayed']} -> "
                 f"{up['missed_writes_replayed']}")
    assert int(up["missed_writes_replayed"]) > int(before["missed_writes_replayed"]), record
    assert server.get(key) is None, f"{CUT} marked up still holding {key}, whose delete it missed: {record}"
    wait_until("operations after the heal", lambda: record.total("after heal") >= OPS_PER_PHASE, record)
    return key


def _mcsqueal_cut_from_a_router(tier: Tier, record: Record) -> str:
    """Phases "mcsqueal cut" and "after mcsqueal heal": mcsqueal and
    SQUEAL_CUT cannot exchange messages. A key cached in both clusters is
    written and deleted through f1's router, as its web server would: f2
    keeps the old value and mcsqueal's cursor stays behind the write for
    the whole phase while its re-sent deletes are dropped; after the heal
    the cursor passes it and f2's copy is gone. Returns that key."""
    cl = tier.cl
    f1, f2 = tier.client(LAYOUT.router(1)), tier.client(SQUEAL_CUT)
    key = "late"
    old = _cached(tier, key, b"before the cut", [f1, f2], record)
    try:
        cl.partition_one_way([MCSQUEAL_ID], [SQUEAL_CUT])
        cl.partition_one_way([SQUEAL_CUT], [MCSQUEAL_ID])
        record.phase = "mcsqueal cut"  # from here on: the nodes have acknowledged the partition
        record.fault(f"partition {MCSQUEAL_ID} | {SQUEAL_CUT}")
        dropped = _status(cl, MCSQUEAL_ID, record).messages_dropped
        version = db_write(cl, key.encode(), b"during the cut")
        assert version is not None, record
        f1.delete(key, noreply=False)  # NOT_FOUND if mcsqueal's delete reached f1 first
        assert f1.get(key) is None, record
        wait_until(f"operations with {MCSQUEAL_ID} cut off", lambda: record.total("mcsqueal cut") >= OPS_PER_PHASE,
                   record)
        wait_until(f"{MCSQUEAL_ID}'s deletes to {SQUEAL_CUT} dropped",
                   lambda: _status(cl, MCSQUEAL_ID, record).messages_dropped > dropped, record)
        acked = mcsqueal_acked_seq(cl)
        record.fault(f"cut checked: mcsqueal acked seq {acked} < {version}, messages dropped "
                     f"{_status(cl, MCSQUEAL_ID, record).messages_dropped - dropped}")
        assert acked < version, f"mcsqueal's cursor passed seq {version}, unacknowledged by {SQUEAL_CUT}: {record}"
        assert f2.get(key) == old, f"{SQUEAL_CUT} lost {key} without mcsqueal's delete: {record}"
    finally:
        cl.heal()
        record.fault("heal")
    record.phase = "after mcsqueal heal"
    wait_until(f"mcsqueal's cursor reaches seq {version}", lambda: mcsqueal_acked_seq(cl) >= version, record)
    assert f2.get(key) is None, f"{SQUEAL_CUT} still serves {key} after mcsqueal acked its delete: {record}"
    wait_until("operations after the heal", lambda: record.total("after mcsqueal heal") >= OPS_PER_PHASE, record)
    return key


def _cached(tier: Tier, key: str, value: bytes, routers: list[Client], record: Record) -> bytes:
    """Write ``key`` to the database and, once mcsqueal's deletes of that
    write are done, cache it through each of ``routers`` as a look-aside
    read would (version and value). Returns the cached bytes."""
    version = db_write(tier.cl, key.encode(), value)
    assert version is not None, f"database write of {key} unanswered: {record}"
    wait_until(f"mcsqueal's cursor reaches seq {version}", lambda: mcsqueal_acked_seq(tier.cl) >= version, record)
    data = cached_value(version, value)
    for router in routers:
        assert router.set(key, data, noreply=False) is True, record
        assert router.get(key) == data, record
    return data


def _router_stats(tier: Tier, router: str, record: Record) -> dict[str, str]:
    stats = stats_of(tier.port(router))
    assert stats is not None, f"{router} does not answer stats: {record}"
    return stats


def _status(cl: LocalCluster, node_id: str, record: Record) -> Status:
    status = cl.call(node_id, StatusRequest(), 2.0)
    assert type(status) is Status, f"{node_id} answered status with {status!r}: {record}"
    return status


def _nothing_stale(tier: Tier, keys: list[str], record: Record) -> None:
    """Once mcsqueal has acknowledged every write, each key served by a
    router or held by a cluster or regional server is the database's
    version, or a miss."""
    rows = {}
    for key in keys:
        row = db_read(tier.cl, key.encode())
        assert row is not None, record
        rows[key] = row
    last = max((row.version for row in rows.values()), default=0)
    wait_until(f"mcsqueal's cursor reaches seq {last}", lambda: mcsqueal_acked_seq(tier.cl) >= last, record)
    stale = []
    places = {r: tier.client(r) for r in LAYOUT.routers}
    places.update({s: tier.client(s) for s in LAYOUT.cache_servers if s not in LAYOUT.gutter})
    served = 0
    for name, client in places.items():
        for key, data in client.get_many(keys).items():
            served += 1
            want = None if rows[key].value is None else cached_value(rows[key].version, rows[key].value)
            if data != want:
                stale.append(f"{name} {key}: {data!r}, database {want!r}")
    record.verdict = (f"{'STALE' if stale else 'ok'}: {served} cached values checked against the database "
                      f"(mcsqueal acked seq {mcsqueal_acked_seq(tier.cl)} >= {last}), {len(stale)} stale")
    assert not stale, f"{stale[:5]}\n{record}"
    assert served > 0, record
    print(record)
