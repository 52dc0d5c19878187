"""The router over real processes (issue 11 section 2; Nishtala et al. 3,
3.3): three cache servers, one gutter server and a RouterNode started by
LocalCluster, each with a memcached port; pymemcache talks to the router
(and, to see where keys live, to each server directly). kill -9 of a cache
server: its keys keep working through the gutter; after a restart they
return to it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pymemcache.client.base import Client
from tests.kv.test_real_clients import wait_until
from tests.memcache._memcached import exchange
from tests.memcache.test_real_clients import _answers_version

from synod.memcache._hashing import server_for
from synod.memcache.node import FACTORY as CACHE_FACTORY
from synod.memcache.router import FACTORY as ROUTER_FACTORY
from synod.runtime import ClusterSpec, LocalCluster, NodeSpec, write_config

CACHES = ("c1", "c2", "c3")
ROUTER_PARAMS = {"pools": {"main": list(CACHES), "gut": ["g1"]}, "default_pool": "main", "gutter_pool": "gut",
                 "server_timeout_ms": 300, "timeouts_until_down": 1, "down_probe_interval_ms": 200}


class Cluster:
    def __init__(self, cl: LocalCluster) -> None:
        self.cl = cl

    def client(self, node_id: str = "r") -> Client:
        port = self.cl.config.nodes[node_id].client_ports["memcache"]
        return Client(("127.0.0.1", port), timeout=10, connect_timeout=10)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    run: Path = tmp_path_factory.mktemp("memcache-router")
    ports = {"memcache": 0}
    nodes = {nid: NodeSpec(factory=CACHE_FACTORY, params={"memory_limit_mb": 8}, client_ports=dict(ports))
             for nid in (*CACHES, "g1")}
    nodes["r"] = NodeSpec(factory=ROUTER_FACTORY, params=ROUTER_PARAMS, client_ports=dict(ports))
    _, path = write_config(ClusterSpec(run_dir=run, nodes=nodes))
    cl = LocalCluster(path)
    try:
        cl.start()
        for nid in cl.node_ids:
            port = cl.config.nodes[nid].client_ports["memcache"]
            wait_until(f"{nid} answers version", lambda p=port: _answers_version(p))
        yield Cluster(cl)
    finally:
        cl.stop()
        assert not any(cl.is_alive(nid) for nid in cl.node_ids)


def home(key: str) -> str:
    return CACHES[server_for(key.encode(), CACHES)]


def test_pymemcache_through_the_router(cluster: Cluster) -> None:
    """set / get / get_many / delete through the router; each key is held
    by its consistent-hash server and no other."""
    r = cluster.client()
    keys = {f"user:{i}": f"v{i}".encode() for i in range(30)}
    for key, value in keys.items():
        assert r.set(key, value, noreply=False) is True
    assert r.get_many([*keys, "missing"]) == keys
    direct = {nid: cluster.client(nid) for nid in (*CACHES, "g1")}
    for key, value in keys.items():
        assert {nid for nid, c in direct.items() if c.get(key) == value} == {home(key)}
    assert r.delete("user:0", noreply=False) is True
    r.delete("user:1")  # pymemcache's default: noreply
    assert r.get_many(["user:0", "user:1", "user:2"]) == {"user:2": b"v2"}
    assert r.version() == b"1.6.18"


def test_kill_9_a_server_gutter_takes_over_then_keys_return(cluster: Cluster) -> None:
    """3.3 over TCP: with c2 killed, gets and sets of its keys keep working
    through the gutter server g1 (other keys untouched, none rehashed onto
    c1 or c3); after c2 restarts, a probe marks it up and a set of its key
    lands on c2 again."""
    r = cluster.client()
    mine = [f"k{i}" for i in range(100) if home(f"k{i}") == "c2"][:5]
    others = [f"k{i}" for i in range(100) if home(f"k{i}") != "c2"][:5]
    for key in mine + others:
        assert r.set(key, b"before", noreply=False) is True
    cluster.cl.kill("c2")
    assert r.get(mine[0]) is None  # a timeout, then a miss in the (empty) gutter
    for key in mine:
        assert r.set(key, b"gutter", noreply=False) is True
    assert r.get_many(mine + others) == {**dict.fromkeys(mine, b"gutter"), **dict.fromkeys(others, b"before")}
    g1, c1, c3 = cluster.client("g1"), cluster.client("c1"), cluster.client("c3")
    assert g1.get_many(mine) == dict.fromkeys(mine, b"gutter")
    assert c1.get_many(mine) == {}
    assert c3.get_many(mine) == {}
    assert g1.get_many(others) == {}

    cluster.cl.start(["c2"])
    c2 = cluster.client("c2")

    def back_on_c2() -> bool:
        assert r.set(mine[0], b"back", noreply=False) is True
        return c2.get(mine[0]) == b"back"

    wait_until("c2 takes its key back", back_on_c2)
    assert r.get(mine[0]) == b"back"


def test_pipelined_commands_answer_in_order(cluster: Cluster) -> None:
    """Commands written at once, whose keys live on different servers,
    come back in request order (the gateway orders the router's replies):
    a set, a multiget over every server, mn, a noreply delete, a get."""
    keys = [next(f"p{i}" for i in range(100) if home(f"p{i}") == s) for s in CACHES]
    sets = b"".join(b"set %s 0 0 1\r\n%d\r\n" % (k.encode(), i) for i, k in enumerate(keys))
    data = (sets + b"get " + " ".join(reversed(keys)).encode() + b" nope\r\nmn\r\n"
            + b"delete " + keys[0].encode() + b" noreply\r\nget " + keys[0].encode() + b"\r\n")
    values = b"".join(b"VALUE %s 0 1\r\n%d\r\n" % (k.encode(), i) for i, k in reversed(list(enumerate(keys))))
    want = b"STORED\r\n" * len(keys) + values + b"END\r\nMN\r\nEND\r\n"
    port = cluster.cl.config.nodes["r"].client_ports["memcache"]
    assert exchange(port, data, expect=b"MN\r\nEND\r\n") == want


def test_paused_server_forgets_a_delete_it_missed(cluster: Cluster) -> None:
    """SIGSTOP c3 (alive, memory kept): once it is marked down, a delete
    of its key goes to the gutter only; after SIGCONT the router deletes
    that key on c3 before sending it traffic again, so the old value never
    comes back through the router (nor sits on c3)."""
    r = cluster.client()
    stale, probe = [f"s{i}" for i in range(200) if home(f"s{i}") == "c3"][:2]
    assert r.set(stale, b"old", noreply=False) is True
    cluster.cl.pause("c3")
    try:
        assert r.get(probe) is None  # a timeout marks c3 down (timeouts_until_down 1)
        assert r.delete(stale, noreply=False) is False  # the gutter never had it
    finally:
        cluster.cl.resume("c3")
    c3 = cluster.client("c3")

    def back_on_c3() -> bool:
        assert r.set(probe, b"up", noreply=False) is True
        return c3.get(probe) == b"up"

    wait_until("c3 is marked up again", back_on_c3)
    assert c3.get(stale) is None
    assert r.get(stale) is None
