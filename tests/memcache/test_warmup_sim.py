"""Cold-cluster warmup (Nishtala et al., NSDI 2013, section 4.3; mcrouter's
WarmUpRoute) in the simulator: a router whose default pool is a new, empty
("cold") cluster reads its misses from a warm cluster and ``add``s the
value into the cold server; the cold servers' two-second hold-off after a
delete closes the race 4.3 names. Constant 5 ms latency, so the script's
timing is exact."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from synod.core import ConfigError, Context, Node
from synod.memcache import constants as C
from synod.memcache import messages as mc
from synod.memcache._hashing import server_for
from synod.memcache.node import CacheNode
from synod.memcache.router import factory
from synod.sim import Constant, LinkModel, Network, Simulator

COLD = ("c1", "c2", "c3")
WARM = ("w1", "w2", "w3")
LATENCY_MS = 5.0
KEYS = [b"k%d" % i for i in range(50)]

Script = Callable[[Context], Awaitable[None]]


class Client(Node):
    def __init__(self, script: Script) -> None:
        self.script = script

    async def on_start(self, ctx: Context) -> None:
        await self.script(ctx)


def run(scripts: dict[str, Script], *, warmup: bool, hold_off_ms: int = 0, until_ms: float = 10_000.0) -> Simulator:
    """Cold servers (``hold_off_ms``), warm servers, router ``r`` (its
    default pool cold; ``warmup``: warm_pools cold -> warm) and one client
    node per script."""
    sim = Simulator(1, network=Network(LinkModel(latency=Constant(LATENCY_MS))))
    peers = (*COLD, *WARM, "r", *scripts)
    for s in COLD:
        sim.add_node(s, lambda: CacheNode(hold_off_ms=hold_off_ms), peers=peers)
    for s in WARM:
        sim.add_node(s, CacheNode, peers=peers)
    params: dict[str, Any] = {"pools": {"cold": list(COLD), "warm": list(WARM)}, "default_pool": "cold"}
    if warmup:
        params["warm_pools"] = {"cold": "warm"}
    sim.add_node("r", lambda: factory("r", params), peers=peers)
    for name, script in scripts.items():
        sim.add_node(name, lambda script=script: Client(script), peers=peers)
    sim.run(until_ms=until_ms)
    return sim


async def call(ctx: Context, dst: str, req: Any) -> Any:
    reply = await ctx.call(dst, req, 5_000.0)
    assert reply is not None, f"{dst} did not answer {req}"
    return reply


def set_(key: bytes, data: bytes) -> mc.Store:
    return mc.Store(mode="set", key=key, client_flags=0, exptime=0, data=data)


def cold_home(key: bytes) -> str:
    return COLD[server_for(key, COLD)]


def warm_home(key: bytes) -> str:
    return WARM[server_for(key, WARM)]


def hit_rates(warmup: bool) -> list[float]:
    """A look-aside reader through the router: 200 reads of 50 keys the
    warm cluster holds, uniform; a miss reads the "database" and sets the
    cold cluster. The hit rate of each 50 reads, in order."""
    database = {key: b"v" + key for key in KEYS}
    hits: list[bool] = []

    async def script(ctx: Context) -> None:
        for key in KEYS:
            await call(ctx, warm_home(key), set_(key, database[key]))
        rng = random.Random(7)
        for _ in range(200):
            key = rng.choice(KEYS)
            reply = await call(ctx, "r", mc.Get(keys=(key,)))
            hits.append(bool(reply.values))
            if reply.values:
                assert reply.values[0].data == database[key]
            else:
                await call(ctx, "r", set_(key, database[key]))

    run({"client": script}, warmup=warmup)
    assert len(hits) == 200
    return [sum(hits[i:i + 50]) / 50 for i in range(0, 200, 50)]


def test_a_cold_cluster_warmed_from_a_warm_one_hits_at_once() -> None:
    """4.3: a new cluster's misses are served from a warm cluster and
    added into it: the first 50 reads already hit every time, where a cold
    cluster alone hits in fewer than 60% of them (each key's first read
    goes to the database)."""
    warm, cold = hit_rates(True), hit_rates(False)
    assert warm == [1.0, 1.0, 1.0, 1.0], warm
    assert cold[0] < 0.6, cold
    assert cold[0] < cold[-1], cold  # the cold cluster fills itself, slowly


def race(hold_off_ms: int) -> tuple[bytes | None, bytes | None]:
    """4.3's race, scripted. A reader's get of ``k`` misses in the cold
    server (t=15 ms at the router) and goes to the warm one (its reply at
    t=25); meanwhile a writer updates the database to ``new`` and deletes
    ``k`` in the cold cluster (arriving t=23), the warm cluster's delete
    lagging (t=500); the router's add reaches the cold server at t=30.
    Returns what the cold server holds then, and what a read through the
    router finds at t=3000 (database: ``new``)."""
    key = b"k"
    home = cold_home(key)
    out: dict[str, Any] = {}

    async def setup_and_write(ctx: Context) -> None:
        await call(ctx, warm_home(key), set_(key, b"old"))  # done by t=10
        await ctx.sleep(8.0)  # the delete leaves at t=18, lands at t=23
        await call(ctx, home, mc.Delete(key=key))
        await ctx.sleep(100.0)
        held = await call(ctx, home, mc.Get(keys=(key,)))
        out["cold"] = held.values[0].data if held.values else None
        await ctx.sleep(350.0)
        await call(ctx, warm_home(key), mc.Delete(key=key))  # the warm cluster's invalidation, late

    async def reader(ctx: Context) -> None:
        await call(ctx, "r", mc.Get(keys=(key,)))  # sent at t=0
        await ctx.sleep(2_990.0)
        reply = await call(ctx, "r", mc.Get(keys=(key,)))
        out["later"] = reply.values[0].data if reply.values else None

    run({"a": setup_and_write, "b": reader}, warmup=True, hold_off_ms=hold_off_ms)
    return out["cold"], out["later"]


def test_without_the_hold_off_a_warmup_add_leaves_a_stale_value() -> None:
    """4.3: the add lands after the delete and nothing removes it: the cold
    cluster serves the old value long after every invalidation."""
    assert race(0) == (b"old", b"old")


def test_the_hold_off_refuses_the_add_so_no_stale_value_survives() -> None:
    """4.3: the cold server refuses adds of a key for 2 s after its delete;
    the later read misses everywhere (and the reader goes to the database)."""
    assert race(C.HOLD_OFF_MS) == (None, None)


@pytest.mark.parametrize(("hold_off_ms", "want"), [(C.HOLD_OFF_MS, [b"NOT_STORED", b"STORED"]),
                                                   (0, [b"STORED", b"NOT_STORED"])])
def test_the_hold_off_ends_and_is_off_by_default(hold_off_ms: int, want: list[bytes]) -> None:
    """Adds are refused only within ``hold_off_ms`` of a delete (found or
    not); without the option an add after a delete is stored, as memcached."""
    got: list[bytes] = []

    async def script(ctx: Context) -> None:
        await call(ctx, "c1", mc.Delete(key=b"x"))
        got.append((await call(ctx, "c1", mc.Store(mode="add", key=b"x", client_flags=0, exptime=0, data=b"1"))).text)
        await ctx.sleep(C.HOLD_OFF_MS + 10.0)
        got.append((await call(ctx, "c1", mc.Store(mode="add", key=b"x", client_flags=0, exptime=0, data=b"2"))).text)

    run({"client": script}, warmup=False, hold_off_ms=hold_off_ms)
    assert got == want


@pytest.mark.parametrize("warm_pools", [{"cold": "cold"}, {"cold": "nope"}])
def test_a_bad_warm_pool_is_refused(warm_pools: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="warm_pools"):
        factory("r", {"pools": {"cold": list(COLD), "warm": list(WARM)}, "default_pool": "cold",
                      "warm_pools": warm_pools})
