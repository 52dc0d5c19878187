"""The cache server in the simulator (virtual time, seeded): web-server
client nodes doing look-aside caching of one hot key against a CacheNode,
with and without leases (Nishtala et al. 3.2.1, thundering herds), and
expiry in virtual time. The same typed requests the gateway parses from
bytes are sent as calls, so the one node state machine serves both worlds."""

from __future__ import annotations

from typing import Any

import pytest

from synod.core import Context, Node
from synod.memcache.messages import Get, MetaFlags, MetaGet, MetaReply, MetaSet, Store, Values
from synod.memcache.node import CacheNode
from synod.memcache.protocol import MemcacheProtocol
from synod.sim import Simulator

DB_READ_MS = 50.0
RETRY_MS = 20.0
READERS = 50


def meta_flags(line: bytes) -> MetaFlags:
    [req] = MemcacheProtocol().receive_data(b"mg k " + line + b"\r\n")
    assert isinstance(req, MetaGet)
    return req.flags


class WebServer(Node):
    """Reads the hot key once, look-aside: on a miss read the database
    (DB_READ_MS) and fill the cache; with leases, only a lease winner reads
    the database and the others retry after RETRY_MS."""

    def __init__(self, leases: bool, db: dict[str, Any], got: dict[str, bytes]) -> None:
        self.leases, self.db, self.got = leases, db, got

    async def on_start(self, ctx: Context) -> None:
        await ctx.sleep(ctx.rng.uniform(0.0, 5.0))  # the herd arrives within 5 ms
        while True:
            if not self.leases:
                reply = await ctx.call("cache", Get(keys=(b"hot",)), 1000.0)
                if isinstance(reply, Values) and reply.values:
                    self.got[ctx.node_id] = reply.values[0].data
                    return
                value = await self._read_db(ctx)
                await ctx.call("cache", Store(mode="set", key=b"hot", client_flags=0, exptime=0, data=value), 1000.0)
                self.got[ctx.node_id] = value
                return
            reply = await ctx.call("cache", MetaGet(key=b"hot", flags=meta_flags(b"v c N30")), 1000.0)
            assert isinstance(reply, MetaReply)
            if b"W" in reply.flags:
                token = next(f for f in reply.flags if f.startswith(b"c"))[1:]
                value = await self._read_db(ctx)
                done = await ctx.call("cache", MetaSet(key=b"hot", flags=meta_flags(b"C" + token), data=value), 1000.0)
                assert isinstance(done, MetaReply)
                assert done.code == b"HD"
                self.got[ctx.node_id] = value
                return
            if b"Z" not in reply.flags:
                self.got[ctx.node_id] = reply.value or b""
                return
            await ctx.sleep(RETRY_MS)  # another web server holds the lease

    async def _read_db(self, ctx: Context) -> bytes:
        self.db["reads"] += 1
        await ctx.sleep(DB_READ_MS)
        return self.db["value"]


def herd(seed: int, leases: bool) -> tuple[int, dict[str, bytes]]:
    sim = Simulator(seed)
    sim.add_node("cache", CacheNode, peers=("cache",))
    db: dict[str, Any] = {"reads": 0, "value": b"row v7"}
    got: dict[str, bytes] = {}
    for i in range(READERS):
        sim.add_node(f"web{i}", lambda: WebServer(leases, db, got), peers=("cache",))
    sim.run(until_ms=5_000.0)
    return db["reads"], got


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_hot_key_herd_one_database_read_with_leases(seed: int) -> None:
    """3.2.1: with leases a cold hot key costs one database read, whatever
    the arrival order; every reader ends with the database's value."""
    reads, got = herd(seed, leases=True)
    assert reads == 1, f"seed {seed}"
    assert len(got) == READERS
    assert set(got.values()) == {b"row v7"}


def test_hot_key_herd_without_leases_reads_the_database_per_reader() -> None:
    """The same herd without leases: every reader misses before the first
    database read returns, so each reads the database."""
    reads, got = herd(1, leases=False)
    assert reads == READERS
    assert set(got.values()) == {b"row v7"}


def test_same_seed_same_outcome() -> None:
    assert herd(7, leases=True) == herd(7, leases=True)


class Expirer(Node):
    def __init__(self, log: list) -> None:
        self.log = log

    async def on_start(self, ctx: Context) -> None:
        await ctx.call("cache", Store(mode="set", key=b"k", client_flags=0, exptime=10, data=b"v"), 1000.0)
        for wait_ms in (9_000.0, 2_000.0):
            await ctx.sleep(wait_ms)
            reply = await ctx.call("cache", Get(keys=(b"k",)), 1000.0)
            self.log.append(bool(reply.values))


def test_expiry_follows_virtual_time() -> None:
    """An exptime of 10 s holds at 9 s and is gone at 11 s of virtual time."""
    sim = Simulator(1)
    sim.add_node("cache", CacheNode, peers=("cache",))
    log: list[bool] = []
    sim.add_node("client", lambda: Expirer(log), peers=("cache",))
    sim.run(until_ms=20_000.0)
    assert log == [True, False]


class LeaseAcrossRestart(Node):
    """Wins a lease on ``k`` at 1 s; at 3 s (after the cache restarted and
    another reader won a new lease) tries to fill with the old token."""

    def __init__(self, log: list[Any]) -> None:
        self.log = log

    async def on_start(self, ctx: Context) -> None:
        await ctx.sleep(1000.0)
        first = await ctx.call("cache", MetaGet(key=b"k", flags=meta_flags(b"v c N30")), 1000.0)
        await ctx.sleep(2000.0)
        second = await ctx.call("cache", MetaGet(key=b"k", flags=meta_flags(b"v c N30")), 1000.0)
        old_token = next(f for f in first.flags if f.startswith(b"c"))[1:]
        fill = await ctx.call("cache", MetaSet(key=b"k", flags=meta_flags(b"C" + old_token), data=b"old"), 1000.0)
        self.log.extend([first, second, fill])


def test_a_lease_token_from_before_a_restart_never_fills_after_it() -> None:
    """The cache restarts (empty) between a lease win and its fill; a new
    reader wins a new lease: the old token must not match the new
    placeholder (each incarnation takes cas uniques from its own range)."""
    sim = Simulator(1)
    sim.add_node("cache", CacheNode, peers=("cache",))
    log: list[Any] = []
    sim.add_node("web", lambda: LeaseAcrossRestart(log), peers=("cache",))
    sim.call_at(1500.0, sim.crash, "cache")
    sim.call_at(1600.0, sim.restart, "cache")
    sim.run(until_ms=5_000.0)
    first, second, fill = log
    assert b"W" in first.flags and b"W" in second.flags  # a fresh win after the restart
    tokens = [next(f for f in r.flags if f.startswith(b"c")) for r in (first, second)]
    assert tokens[0] != tokens[1], tokens
    assert fill.code != b"HD", fill  # the stale fill is refused
