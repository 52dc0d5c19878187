"""The router under a faulty network and server crashes (Nishtala et al.
3.3): message loss, duplication and reordering on every link, a cache
server and the gutter server crashed and restarted, three clients sending
random requests, the router itself crashed and restarted while a
server is down. Nothing may raise, every request that reaches the router
is answered at most once (never if the router crashed meanwhile), and when the run is quiet the router holds no
request, no fan-out and no server marked down. Parametrised over seeds; a
failure names its seed."""

from __future__ import annotations

from typing import Any

import pytest

from synod.core import Context, Node
from synod.memcache.messages import Arith, Delete, Get, Line, MetaFlags, MetaGet, MetaReply, Store, Values
from synod.memcache.node import CacheNode
from synod.memcache.router import MISSED_LOG_PATH, factory
from synod.sim import LinkModel, Network, Simulator, Uniform

SERVERS = ("c1", "c2", "c3", "g1")
CLIENTS = ("w1", "w2", "w3")
OPS = 150
PARAMS = {"pools": {"main": ["c1", "c2", "c3"], "gut": ["g1"]}, "default_pool": "main", "gutter_pool": "gut",
          "server_timeout_ms": 100, "timeouts_until_down": 2, "down_probe_interval_ms": 300}
# The router is crashed while c2 is down (it restarts owing c2's missed deletes, from its async log).
FAULTS = ((800.0, "crash", "c2"), (1_500.0, "crash", "r"), (1_900.0, "restart", "r"), (2_500.0, "restart", "c2"),
          (3_000.0, "crash", "g1"), (3_600.0, "restart", "g1"))


def random_request(rng: Any) -> Any:
    key = b"k%d" % rng.randrange(20)
    kind = rng.randrange(6)
    if kind == 0:
        return Store(mode=rng.choice(("set", "add", "append")), key=key, client_flags=rng.randrange(3),
                     exptime=rng.choice((0, 5, 3600)), data=b"v%d" % rng.randrange(1000))
    if kind == 1:
        return Get(keys=tuple(b"k%d" % rng.randrange(20) for _ in range(rng.randrange(1, 8))),
                   return_cas=rng.random() < 0.5)
    if kind == 2:
        return Delete(key=key, noreply=rng.random() < 0.3)
    if kind == 3:
        return Arith(key=key, incr=True, delta=rng.randrange(10))
    if kind == 4:
        return MetaGet(key=key, flags=MetaFlags(tokens=(b"v", b"c", b"N30"), value=True, vivify_ttl=30))
    return Get(keys=(key,), touch=True, exptime=60)


class Web(Node):
    def __init__(self, log: dict[str, list[Any]]) -> None:
        self.log = log

    async def on_start(self, ctx: Context) -> None:
        replies = self.log.setdefault(ctx.node_id, [])
        for _ in range(OPS):
            replies.append(await ctx.call("r", random_request(ctx.rng), 2_000.0))
            await ctx.sleep(ctx.rng.uniform(0.0, 30.0))


def run(seed: int) -> tuple[Simulator, dict[str, list[Any]]]:
    link = LinkModel(latency=Uniform(1.0, 10.0), loss_probability=0.03, duplicate_probability=0.05,
                     reorder_probability=0.05)
    sim = Simulator(seed, network=Network(link))
    peers = (*SERVERS, "r", *CLIENTS)
    for s in SERVERS:
        sim.add_node(s, CacheNode, peers=peers)
    sim.add_node("r", lambda: factory("r", PARAMS), peers=peers)
    log: dict[str, list[Any]] = {}
    for c in CLIENTS:
        sim.add_node(c, lambda: Web(log), peers=peers)
    for t_ms, what, node in FAULTS:
        sim.call_at(t_ms, getattr(sim, what), node)
    sim.run(until_ms=60_000.0)
    return sim, log


@pytest.mark.parametrize("seed", range(1, 7))
def test_router_survives_loss_duplication_and_crashes(seed: int) -> None:
    """Replay: pytest tests/memcache/test_router_faults.py -k 'seed' (the
    seed is the test's parameter)."""
    sim, log = run(seed)
    assert sorted(log) == sorted(CLIENTS), f"seed {seed}: a client did not finish"
    for c, replies in log.items():
        assert len(replies) == OPS, f"seed {seed}: {c}"
        answered = [r for r in replies if r is not None]
        assert len(answered) > OPS * 0.8, f"seed {seed}: {c} lost too many"
        assert all(isinstance(r, Line | Values | MetaReply) for r in answered), f"seed {seed}"
    router = sim.hosts["r"].node
    assert router._inflight_total == 0, f"seed {seed}"
    assert router._inflight == {}, f"seed {seed}"
    assert router._fanouts == {}, f"seed {seed}"
    assert not router._starts, f"seed {seed}"
    assert not (router._missed or router._flush_owed or router._probing), f"seed {seed}: a replay left over"
    assert router._down == set(), f"seed {seed}: a server stayed marked down"
    assert router.counters["gutter_requests"] > 0, f"seed {seed}: c2's crash never reached the gutter"
    assert sim.hosts["r"].disk.read(MISSED_LOG_PATH) is None, f"seed {seed}: the async log was not compacted"
    for s in SERVERS:
        sim.hosts[s].node.cache.check()


def test_same_seed_same_counters() -> None:
    a, _ = run(9)
    b, _ = run(9)
    assert a.hosts["r"].node.counters == b.hosts["r"].node.counters
