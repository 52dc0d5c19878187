"""A router in front of one cache server is transparent: every case of the
memcached differential corpus (tests/memcache/test_vs_memcached.py), parsed
by MemcacheProtocol, sent request by request through a RouterNode in the
simulator and rendered back, gives the bytes the cache server gives
directly (cas uniques, errors, noreply and quiet modes, leases and all).
Stats cases are left out: the router answers stats with its own counters.
Zero network latency, so virtual time (and expiry) stands still as the
direct server's clock does."""

from __future__ import annotations

import re

from tests.memcache._memcached import LocalServer
from tests.memcache.test_vs_memcached import CORPUS

from synod.core import Context, Node
from synod.memcache.node import CacheNode
from synod.memcache.protocol import MemcacheProtocol
from synod.memcache.router import factory
from synod.sim import Constant, LinkModel, Network, Simulator

CASES = [(name, data) for name, data in CORPUS if b"stats" not in data]


class Driver(Node):
    """Feeds each case's bytes to a protocol object, as the gateway would,
    and the requests to the router; collects the reply bytes per case."""

    def __init__(self, out: dict[str, bytes], done_ms: list[float]) -> None:
        self.out, self.done_ms = out, done_ms

    async def on_start(self, ctx: Context) -> None:
        last = b""
        for name, data in CASES:
            cas = re.findall(rb" c(\d+)", last)
            data = data.replace(b"{cas}", cas[-1] if cas else b"0")
            proto = MemcacheProtocol()
            got = bytearray()
            for req in proto.receive_data(data):
                reply = await ctx.call("r", req, 1_000.0)
                assert reply is not None, name
                got += proto.send(reply)
                if proto.wants_close:
                    break
            self.out[name] = last = bytes(got)
        self.done_ms.append(ctx.now_ms)


def test_one_server_router_gives_the_servers_bytes() -> None:
    through: dict[str, bytes] = {}
    done_ms: list[float] = []
    sim = Simulator(1, network=Network(LinkModel(latency=Constant(0.0))))
    peers = ("c1", "r", "driver")
    sim.add_node("c1", CacheNode, peers=peers)
    sim.add_node("r", lambda: factory("r", {"pools": {"main": ["c1"]}, "default_pool": "main"}), peers=peers)
    sim.add_node("driver", lambda: Driver(through, done_ms), peers=peers)
    sim.run(until_ms=1_000.0)
    assert done_ms == [0.0]  # the clock stood still, as the direct server's

    direct = LocalServer()
    diffs: list[str] = []
    last = b""
    for name, data in CASES:
        cas = re.findall(rb" c(\d+)", last)
        data = data.replace(b"{cas}", cas[-1] if cas else b"0")
        want = last = direct.exchange(data)
        if through.get(name) != want:
            diffs.append(f"{name}: direct {want[:300]!r}\n  router {through.get(name, b'<none>')[:300]!r}")
    assert len(through) == len(CASES)
    assert not diffs, f"{len(diffs)} of {len(CASES)} cases differ:\n" + "\n".join(diffs)
