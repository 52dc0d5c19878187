"""kazoo 2.11's recipes against a 3-server synod ensemble on 127.0.0.1
(issue 12 section 2: "kazoo ... and recipes"): each one run by two clients
the way an application uses it. Lock and Election through a leader's
death are in test_server_real.py."""

from __future__ import annotations

import datetime
import threading
from collections.abc import Iterator

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import LockTimeout
from kazoo.recipe.cache import TreeCache
from kazoo.recipe.lease import NonBlockingLease
from kazoo.recipe.watchers import ChildrenWatch, DataWatch
from tests.kv.test_real_clients import wait_until
from tests.zk.test_server_real import IDS, WAIT_S, Ensemble


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KazooClient, KazooClient]]:
    e = Ensemble(tmp_path_factory.mktemp("zk") / "run")
    e.cluster.start(list(IDS))
    try:
        wait_until("a leader established", lambda: e.leader() is not None, WAIT_S)
        a, b = e.client(), e.client()
        yield a, b
        for c in (a, b):
            c.stop()
            c.close()
    finally:
        e.cluster.stop()


def test_read_and_write_locks(clients: tuple[KazooClient, KazooClient]) -> None:
    a, b = clients
    read, write = a.ReadLock("/rw"), b.WriteLock("/rw")
    assert read.acquire(timeout=WAIT_S)
    assert b.ReadLock("/rw").acquire(timeout=WAIT_S)          # readers share
    with pytest.raises(LockTimeout):
        write.acquire(timeout=0.5)                            # a writer waits for readers
    read.release()
    b.ReadLock("/rw").release()


def test_semaphore_admits_at_most_its_leases(clients: tuple[KazooClient, KazooClient]) -> None:
    a, b = clients
    s1, s2, s3 = (c.Semaphore("/sem", name, max_leases=2) for c, name in ((a, "1"), (b, "2"), (a, "3")))
    assert s1.acquire(timeout=WAIT_S) and s2.acquire(timeout=WAIT_S)
    with pytest.raises(LockTimeout):
        s3.acquire(timeout=0.5)
    s1.release()
    assert s3.acquire(timeout=WAIT_S)
    s2.release()
    s3.release()


def test_barrier_and_double_barrier(clients: tuple[KazooClient, KazooClient]) -> None:
    a, b = clients
    barrier = a.Barrier("/barrier")
    barrier.create()
    assert not barrier.wait(0.3)
    b.Barrier("/barrier").remove()
    assert barrier.wait(WAIT_S)
    d1, d2 = a.DoubleBarrier("/double", 2, identifier="1"), b.DoubleBarrier("/double", 2, identifier="2")
    for step in ("enter", "leave"):
        t = threading.Thread(target=getattr(d1, step))
        t.start()
        getattr(d2, step)()
        t.join(WAIT_S)
        assert not t.is_alive(), f"the double barrier's {step} did not release both"


def test_counter_queue_and_locking_queue(clients: tuple[KazooClient, KazooClient]) -> None:
    a, b = clients
    counter = a.Counter("/counter")
    counter += 5
    other = b.Counter("/counter")
    other -= 2
    a.sync("/counter")   # a's server may not have applied b's write yet: reads are local
    assert a.Counter("/counter").value == 3
    q = a.Queue("/queue")
    q.put(b"low")
    q.put(b"high", priority=10)       # lower numbers first
    # b's server may not have applied a's puts yet (reads are local,
    # sequentially consistent): sync first, as ZooKeeper's docs say a client
    # that must see another's writes does.
    b.sync("/queue")
    assert b.Queue("/queue").get() == b"high"
    a.sync("/queue")
    assert len(q) == 1
    lq = a.LockingQueue("/lq")
    lq.put(b"job")
    taker = b.LockingQueue("/lq")
    assert taker.get(WAIT_S) == b"job" and taker.consume()
    a.sync("/lq")
    assert len(lq) == 0


def test_party_watches_tree_cache_and_lease(clients: tuple[KazooClient, KazooClient]) -> None:
    a, b = clients
    p1, p2 = a.Party("/party", "p1"), b.Party("/party", "p2")
    p1.join()
    p2.join()
    wait_until("both in the party", lambda: len(p1) == 2, WAIT_S)
    children: list[list[str]] = []
    data: list[bytes | None] = []
    a.ensure_path("/cw")
    ChildrenWatch(a, "/cw", lambda ch: children.append(sorted(ch)))
    DataWatch(a, "/cw", lambda d, stat: data.append(d))
    b.create("/cw/x")
    b.set("/cw", b"v")
    wait_until("the children watch", lambda: children and children[-1] == ["x"], WAIT_S)
    wait_until("the data watch", lambda: data and data[-1] == b"v", WAIT_S)
    a.ensure_path("/tc/x")
    cache = TreeCache(a, "/tc")
    cache.start()
    b.create("/tc/y", b"d")
    wait_until("the tree cache", lambda: (cache.get_data("/tc/y") or None) is not None
               and cache.get_data("/tc/y").data == b"d", WAIT_S)
    cache.close()
    assert NonBlockingLease(a, "/lease", datetime.timedelta(seconds=30), identifier="a")
    assert not NonBlockingLease(b, "/lease", datetime.timedelta(seconds=30), identifier="b")
