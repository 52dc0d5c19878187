"""The router in the simulator (Nishtala et al. sections 3 and 3.3;
mcrouter's routes): cache servers, a gutter server and a RouterNode, and a
client node sending the typed requests the gateway would parse, as calls.
Virtual time and fixed latency, so every figure here is exact."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from synod.core import ConfigError, Context, Node
from synod.memcache import constants as C
from synod.memcache import messages as mc
from synod.memcache._hashing import server_for
from synod.memcache.node import CacheNode
from synod.memcache.router import E_BUSY, E_TOO_MANY_KEYS, E_UNAVAILABLE, factory
from synod.sim import Constant, LinkModel, Network, Simulator, Tracer

CACHES = ("c1", "c2", "c3")
GUTTER = ("g1",)
LATENCY_MS = 5.0
TIMEOUT_MS = 100
PROBE_MS = 500
BASE: dict[str, Any] = {"pools": {"main": list(CACHES), "gut": list(GUTTER)}, "default_pool": "main",
                        "gutter_pool": "gut", "server_timeout_ms": TIMEOUT_MS, "timeouts_until_down": 1,
                        "down_probe_interval_ms": PROBE_MS}

Script = Callable[[Context], Awaitable[None]]


class Client(Node):
    """Runs one script; replies to plain (non-call) sends land in ``pushed``."""

    def __init__(self, script: Script, pushed: list[Any]) -> None:
        self.script, self.pushed = script, pushed

    async def on_start(self, ctx: Context) -> None:
        await self.script(ctx)

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        self.pushed.append(msg)


def run(script: Script, *, seed: int = 1, until_ms: float = 30_000.0, servers: tuple[str, ...] = CACHES + GUTTER,
        faults: tuple[tuple[float, str, str], ...] = (), pushed: list[Any] | None = None,
        at: tuple[tuple[float, Callable[[Simulator], None]], ...] = (), tracer: Tracer | None = None,
        **params: Any) -> Simulator:
    """A simulation of ``servers``, router ``r`` (params ``BASE`` updated
    with ``params``) and a client running ``script``; ``faults`` are
    ``(t_ms, "crash" | "restart", node)``, ``at`` ``(t_ms, fn(sim))``."""
    sim = Simulator(seed, network=Network(LinkModel(latency=Constant(LATENCY_MS))), tracer=tracer)
    peers = (*servers, "r", "client")
    for s in servers:
        sim.add_node(s, CacheNode, peers=peers)
    sim.add_node("r", lambda: factory("r", {**BASE, **params}), peers=peers)
    sim.add_node("client", lambda: Client(script, pushed if pushed is not None else []), peers=peers)
    for t_ms, what, node in faults:
        sim.call_at(t_ms, getattr(sim, what), node)
    for t_ms, fn in at:
        sim.call_at(t_ms, fn, sim)
    sim.run(until_ms=until_ms)
    return sim


async def ask(ctx: Context, req: Any) -> Any:
    reply = await ctx.call("r", req, 5_000.0)
    assert reply is not None, f"router did not answer {req}"
    return reply


def set_(key: bytes, data: bytes, exptime: int = 0, noreply: bool = False) -> mc.Store:
    return mc.Store(mode="set", key=key, client_flags=0, exptime=exptime, data=data, noreply=noreply)


def holders(sim: Simulator, key: bytes) -> list[str]:
    """The running servers whose memory holds ``key`` (expired or not)."""
    return [nid for nid, host in sim.hosts.items()
            if host.up and isinstance(host.node, CacheNode) and key in host.node.cache.items]


def home(key: bytes) -> str:
    return CACHES[server_for(key, CACHES)]


KEYS = [b"k%d" % i for i in range(90)]


def test_each_key_lives_on_its_consistent_hash_server_only() -> None:
    """Section 3: a key's sets land on one server of the pool, the one jump
    hash names; gets through the router find every key."""
    log: list[Any] = []

    async def script(ctx: Context) -> None:
        for key in KEYS:
            log.append(await ask(ctx, set_(key, b"v" + key)))
        for key in KEYS:
            log.append(await ask(ctx, mc.Get(keys=(key,))))

    sim = run(script)
    assert log[:len(KEYS)] == [mc.Line(text=b"STORED")] * len(KEYS)
    assert [r.values[0].data for r in log[len(KEYS):]] == [b"v" + k for k in KEYS]
    for key in KEYS:
        assert holders(sim, key) == [home(key)], key
    assert {home(k) for k in KEYS} == set(CACHES)


def test_multiget_is_split_by_server_in_parallel_and_merged_in_key_order() -> None:
    """A get of keys on three servers costs one call per server, all in
    flight at once (the same virtual time as a one-key get), and answers
    in the request's key order, a key named twice coming twice, misses left
    out, as memcached does."""
    keys = [next(k for k in KEYS if home(k) == s) for s in CACHES]
    asked = (keys[2], b"missing", keys[0], keys[1], keys[2])
    out: dict[str, Any] = {}

    async def script(ctx: Context) -> None:
        for key in keys:
            await ask(ctx, set_(key, b"v" + key))
        t0 = ctx.now_ms
        await ask(ctx, mc.Get(keys=(keys[0],)))
        t1 = ctx.now_ms
        out["reply"] = await ask(ctx, mc.Get(keys=asked, return_cas=True))
        t2 = ctx.now_ms
        out["single_ms"], out["multi_ms"] = t1 - t0, t2 - t1

    sim = run(script)
    reply = out["reply"]
    assert [v.key for v in reply.values] == [keys[2], keys[0], keys[1], keys[2]]
    assert reply.return_cas
    assert all(v.cas_unique > 0 for v in reply.values)
    assert out["single_ms"] == 4 * LATENCY_MS
    assert out["multi_ms"] == out["single_ms"]  # sequential calls would take 3x the server legs
    # 3 sets, 1 single get, 3 parts of the multiget: one call per server
    assert sim.hosts["r"].node.counters["server_calls"] == 3 + 1 + 3


def test_longest_prefix_route_picks_the_pool() -> None:
    """mcrouter's prefix routing: ``user:admin:`` keys to the admins pool,
    other ``user:`` keys to users, the rest to the default pool."""
    async def script(ctx: Context) -> None:
        for key in (b"user:admin:1", b"user:admin:2", b"user:7", b"user:8", b"other"):
            assert await ask(ctx, set_(key, b"x")) == mc.Line(text=b"STORED")

    sim = run(script, pools={"main": ["c1"], "users": ["c2"], "admins": ["c3"], "gut": ["g1"]},
              routes=[["user:", "users"], ["user:admin:", "admins"]])
    assert holders(sim, b"user:admin:1") == holders(sim, b"user:admin:2") == ["c3"]
    assert holders(sim, b"user:7") == holders(sim, b"user:8") == ["c2"]
    assert holders(sim, b"other") == ["c1"]


REPLICATED = {"pools": {"main": ["c1"], "rep": ["c2", "c3"], "gut": ["g1"]}, "routes": [["r:", "rep"]],
              "replicated_pools": ["rep"]}


def test_replicated_pool_writes_everywhere_reads_one_and_falls_over() -> None:
    """A replicated pool (mcrouter AllSyncRoute for writes): a set and a
    delete reach both replicas; reads go to one replica per key (both
    serve some); with c3 crashed every key still reads (fall over to c2 on
    a timeout) and a set answers the worst reply (c3's silence:
    SERVER_ERROR) while c2 stores it."""
    keys = [b"r:%d" % i for i in range(20)]
    log: dict[str, Any] = {}

    async def script(ctx: Context) -> None:
        log["sets"] = [await ask(ctx, set_(k, b"v")) for k in keys]
        log["gets"] = [await ask(ctx, mc.Get(keys=(k,))) for k in keys]
        log["delete"] = await ask(ctx, mc.Delete(key=keys[0]))
        await ctx.sleep(2_000.0 - ctx.now_ms)  # c3 crashes at 1 s
        log["gets_after"] = [await ask(ctx, mc.Get(keys=(k,))) for k in keys[1:]]
        log["set_after"] = await ask(ctx, set_(b"r:new", b"n"))

    sim = run(script, faults=((1_000.0, "crash", "c3"),), **REPLICATED)
    assert log["sets"] == [mc.Line(text=b"STORED")] * len(keys)
    assert all(len(g.values) == 1 for g in log["gets"])
    assert log["delete"] == mc.Line(text=b"DELETED")
    assert all(len(g.values) == 1 for g in log["gets_after"])
    assert log["set_after"] == mc.Line(text=E_UNAVAILABLE)
    assert holders(sim, keys[0]) == []
    assert set(holders(sim, keys[1])) == {"c2"}  # c3 crashed: its memory is gone
    assert holders(sim, b"r:new") == ["c2"]
    hits = {s: sim.hosts[s].node.cache.counters["get_hits"] for s in ("c2",)}
    assert hits["c2"] >= len(keys) - 1


def test_replicated_reads_spread_over_replicas() -> None:
    keys = [b"r:%d" % i for i in range(40)]

    async def script(ctx: Context) -> None:
        for k in keys:
            await ask(ctx, set_(k, b"v"))
        for k in keys:
            await ask(ctx, mc.Get(keys=(k,)))

    sim = run(script, **REPLICATED)
    for s in ("c2", "c3"):
        assert set(holders(sim, keys[0])) == {"c2", "c3"}
        assert 5 < sim.hosts[s].node.cache.counters["get_hits"] < 35, s


CRASH_MS, RESTART_MS = 3_000.0, 7_000.0  # after the 90 first sets (20 ms each)


def gutter_scenario(log: dict[str, Any]) -> Script:
    """c2 crashes at 3 s and restarts at 7 s; the script sets every key
    before, reads and writes them while c2 is down, and again after."""
    mine = [k for k in KEYS if home(k) == "c2"]
    others = [k for k in KEYS if home(k) != "c2"]

    async def script(ctx: Context) -> None:
        for key in KEYS:
            await ask(ctx, set_(key, b"old"))
        await ctx.sleep(CRASH_MS + 100.0 - ctx.now_ms)
        log["down_gets"] = [await ask(ctx, mc.Get(keys=(k,))) for k in mine]
        log["down_sets"] = [await ask(ctx, set_(k, b"new", exptime=3600)) for k in mine]
        log["down_gets_again"] = await ask(ctx, mc.Get(keys=tuple(KEYS)))
        log["others_set"] = [await ask(ctx, set_(k, b"new")) for k in others]
        log["now_s"] = int(ctx.unix_ms) // 1000
        await ctx.sleep(RESTART_MS + PROBE_MS + 2 * TIMEOUT_MS - ctx.now_ms)
        log["back_sets"] = [await ask(ctx, set_(k, b"back")) for k in mine]
        log["back_gets"] = await ask(ctx, mc.Get(keys=tuple(mine)))

    return script


def test_gutter_takes_a_failed_servers_keys_and_nothing_rehashes() -> None:
    """3.3: with c2 down its keys' reads and writes go to the gutter server
    (first read: a miss after one timeout; then sets store there with a TTL
    of at most 10 s, and reads hit); no other server's keys move and no c2
    key lands on c1 or c3; after c2 restarts, a probe marks it up and its
    keys go back to it."""
    log: dict[str, Any] = {}
    mine = [k for k in KEYS if home(k) == "c2"]
    sim = run(gutter_scenario(log), faults=((CRASH_MS, "crash", "c2"), (RESTART_MS, "restart", "c2")))
    assert all(g == mc.Values() for g in log["down_gets"])
    assert log["down_sets"] == [mc.Line(text=b"STORED")] * len(mine)
    got = {v.key: v.data for v in log["down_gets_again"].values}
    assert got == {k: (b"new" if k in mine else b"old") for k in KEYS}
    assert log["others_set"] == [mc.Line(text=b"STORED")] * (len(KEYS) - len(mine))
    gutter = sim.hosts["g1"].node.cache.items
    assert set(gutter) == set(mine)
    assert all(log["now_s"] < it.exptime_s <= log["now_s"] + C.ROUTER_GUTTER_TTL_S for it in gutter.values())
    for key in KEYS:
        if key not in mine:
            assert holders(sim, key) == [home(key)], key
    assert log["back_sets"] == [mc.Line(text=b"STORED")] * len(mine)
    assert [v.data for v in log["back_gets"].values] == [b"back"] * len(mine)
    for key in mine:
        assert "c2" in holders(sim, key)
    router = sim.hosts["r"].node
    assert router.counters["servers_marked_down"] == 1
    assert router.counters["server_timeouts"] == 1  # one request paid a timeout; then c2 was down
    assert not router._down


def test_gutter_items_expire_within_the_gutter_ttl() -> None:
    log: dict[str, Any] = {}
    mine = [k for k in KEYS if home(k) == "c2"]

    async def script(ctx: Context) -> None:
        await ask(ctx, set_(mine[0], b"x"))
        await ctx.sleep(CRASH_MS + 100.0 - ctx.now_ms)
        await ask(ctx, set_(mine[0], b"gutter", exptime=0))  # pays the timeout: to the gutter
        log["hit"] = await ask(ctx, mc.Get(keys=(mine[0],)))
        await ctx.sleep(C.ROUTER_GUTTER_TTL_S * 1000.0 + 1_000.0)
        log["expired"] = await ask(ctx, mc.Get(keys=(mine[0],)))

    run(script, faults=((CRASH_MS, "crash", "c2"),))
    assert [v.data for v in log["hit"].values] == [b"gutter"]
    assert log["expired"] == mc.Values()


def test_gutter_off_means_misses_and_errors() -> None:
    """Gutter off: a down server's keys miss on get (the client would read
    the database: the load spike of the later experiment) and their sets
    fail; other keys are served as before; the gutter server sees nothing."""
    log: dict[str, Any] = {}
    mine = [k for k in KEYS if home(k) == "c2"]
    sim = run(gutter_scenario(log), faults=((CRASH_MS, "crash", "c2"),), gutter=False, until_ms=6_500.0)
    assert all(g == mc.Values() for g in log["down_gets"])
    assert log["down_sets"] == [mc.Line(text=E_UNAVAILABLE)] * len(mine)
    got = {v.key for v in log["down_gets_again"].values}
    assert got == {k for k in KEYS if k not in mine}
    assert sim.hosts["g1"].node.cache.items == {}


def test_noreply_delete_reaches_the_server() -> None:
    log: list[Any] = []

    async def script(ctx: Context) -> None:
        await ask(ctx, set_(b"k1", b"v"))
        await ask(ctx, mc.Delete(key=b"k1", noreply=True))
        log.append(await ask(ctx, mc.Get(keys=(b"k1",))))

    sim = run(script)
    assert log == [mc.Values()]
    assert holders(sim, b"k1") == []


def test_meta_lease_flow_through_the_router() -> None:
    """The 3.2.1 lease flow in meta commands passes the router unchanged."""
    log: list[Any] = []

    def flags(**kw: Any) -> mc.MetaFlags:
        return mc.MetaFlags(**kw)

    async def script(ctx: Context) -> None:
        won = await ask(ctx, mc.MetaGet(key=b"lease", flags=flags(tokens=(b"c", b"N30"), vivify_ttl=30)))
        log.append(won)
        token = int(next(f for f in won.flags if f.startswith(b"c"))[1:])
        log.append(await ask(ctx, mc.MetaGet(key=b"lease", flags=flags(tokens=(b"c", b"N30"), vivify_ttl=30))))
        log.append(await ask(ctx, mc.MetaSet(key=b"lease", flags=flags(tokens=(b"C%d" % token,), compare_cas=token),
                                          data=b"db")))

    run(script)
    assert b"W" in log[0].flags
    assert b"Z" in log[1].flags
    assert log[2] == mc.MetaReply(code=b"HD")


def test_unknown_server_in_a_pool_is_a_config_error() -> None:
    sim = Simulator(1)
    with pytest.raises(ConfigError):
        sim.add_node("r", lambda: factory("r", BASE), peers=("c1", "c2", "g1", "r"))


def test_limits_answer_busy_and_too_many_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Over ROUTER_CLIENT_REQUESTS_INFLIGHT_MAX unanswered requests a client
    is told the router is busy at once; a get of more than
    ROUTER_MULTIGET_KEYS_MAX keys gets an error line."""
    monkeypatch.setattr(C, "ROUTER_CLIENT_REQUESTS_INFLIGHT_MAX", 2)
    monkeypatch.setattr(C, "ROUTER_MULTIGET_KEYS_MAX", 3)
    pushed: list[Any] = []
    log: list[Any] = []

    async def script(ctx: Context) -> None:
        log.append(await ask(ctx, mc.Get(keys=(b"a", b"b", b"c", b"d"))))
        for _ in range(3):  # plain sends: three in flight at once, each answered by a plain send
            ctx.send("r", mc.Get(keys=(b"k1",)))

    run(script, pushed=pushed, until_ms=1_000.0, servers=CACHES[:1], pools={"main": ["c1"]}, gutter_pool="")
    assert log == [mc.Values(error=E_TOO_MANY_KEYS)]
    assert pushed[0] == mc.Line(text=E_BUSY)
    assert pushed[1:] == [mc.Values(), mc.Values()]


def test_same_seed_same_run() -> None:
    a: dict[str, Any] = {}
    b: dict[str, Any] = {}
    run(gutter_scenario(a), seed=3, faults=((CRASH_MS, "crash", "c2"), (RESTART_MS, "restart", "c2")))
    run(gutter_scenario(b), seed=3, faults=((CRASH_MS, "crash", "c2"), (RESTART_MS, "restart", "c2")))
    assert a == b


def test_pipelined_requests_reach_servers_in_arrival_order() -> None:
    """A get over three servers, then at once a delete of its keys: the
    get's parts reach every server before the deletes do (a pipeline's
    requests keep their order per server, as on one memcached
    connection), so the get sees every value."""
    keys = [next(k for k in KEYS if home(k) == s) for s in CACHES]
    pushed: list[Any] = []

    async def script(ctx: Context) -> None:
        for key in keys:
            await ask(ctx, set_(key, b"v"))
        ctx.send("r", mc.Get(keys=tuple(keys)))
        for key in keys:
            ctx.send("r", mc.Delete(key=key))

    sim = run(script, pushed=pushed, until_ms=1_000.0)
    assert pushed[0] == mc.Values(values=tuple(mc.Value(key=k, client_flags=0, data=b"v", cas_unique=1) for k in keys))
    assert pushed[1:] == [mc.Line(text=b"DELETED")] * 3
    assert not sim.hosts["r"].node._starts


def test_regional_pool_is_shared_by_two_frontend_clusters() -> None:
    """4.2: two frontend clusters, each a router over its own pool, route
    the ``reg:`` prefix to one regional pool both name: a regional key set
    through one cluster's router reads through the other's; a cluster key
    does not (each cluster caches its own copy)."""
    log: dict[str, Any] = {}

    async def script(ctx: Context) -> None:
        for key in (b"reg:1", b"reg:2", b"own:1"):
            await ctx.call("ra", set_(key, b"from a"), 5_000.0)
        reply = await ctx.call("rb", mc.Get(keys=(b"reg:1", b"reg:2", b"own:1")), 5_000.0)
        log["b_sees"] = [v.key for v in reply.values]

    sim = Simulator(1, network=Network(LinkModel(latency=Constant(LATENCY_MS))))
    servers = ("a1", "a2", "b1", "b2", "reg1", "reg2")
    peers = (*servers, "ra", "rb", "client")
    for s in servers:
        sim.add_node(s, CacheNode, peers=peers)
    for cluster in ("a", "b"):
        params = {"pools": {"main": [f"{cluster}1", f"{cluster}2"], "regional": ["reg1", "reg2"]},
                  "default_pool": "main", "routes": [["reg:", "regional"]]}
        sim.add_node(f"r{cluster}", lambda params=params: factory("r", params), peers=peers)
    sim.add_node("client", lambda: Client(script, []), peers=peers)
    sim.run(until_ms=1_000.0)
    assert log["b_sees"] == [b"reg:1", b"reg:2"]
    for key in (b"reg:1", b"reg:2"):
        assert holders(sim, key)[0] in ("reg1", "reg2")
        assert len(holders(sim, key)) == 1
    assert holders(sim, b"own:1")[0] in ("a1", "a2")


def cut(server: str) -> Callable[[Simulator], None]:
    """Block both links between the router and ``server`` (it stays up, memory kept)."""
    return lambda sim: (sim.network.block("r", server), sim.network.block(server, "r"))


def heal(server: str) -> Callable[[Simulator], None]:
    return lambda sim: (sim.network.unblock("r", server), sim.network.unblock(server, "r"))


def test_partitioned_server_forgets_the_writes_it_missed() -> None:
    """c2 is cut off from the router (alive, memory kept) while a key of
    its is deleted and refilled through the gutter: before c2 is marked up
    again the router deletes that key on it (mcrouter's async-log replay),
    so it never serves the old value; its other keys stay."""
    mine = [k for k in KEYS if home(k) == "c2"][:2]
    log: dict[str, Any] = {}

    async def script(ctx: Context) -> None:
        for key in mine:
            await ask(ctx, set_(key, b"old"))
        await ctx.sleep(1_100.0 - ctx.now_ms)
        log["delete"] = await ask(ctx, mc.Delete(key=mine[0]))
        log["refill"] = await ask(ctx, set_(mine[0], b"new"))
        await ctx.sleep(3_000.0 - ctx.now_ms)
        log["after"] = await ask(ctx, mc.Get(keys=tuple(mine)))

    sim = run(script, until_ms=4_000.0, at=((1_000.0, cut("c2")), (2_000.0, heal("c2"))))
    assert log["delete"] == mc.Line(text=b"NOT_FOUND")  # the gutter never had it
    assert log["refill"] == mc.Line(text=b"STORED")
    assert [(v.key, v.data) for v in log["after"].values] == [(mine[1], b"old")]
    assert holders(sim, mine[0]) == ["g1"]
    router = sim.hosts["r"].node
    assert router.counters["missed_writes"] == 2
    assert router.counters["missed_writes_replayed"] == 1  # one key, deleted once
    assert not router._down


def test_too_many_missed_writes_cost_a_flush(monkeypatch: pytest.MonkeyPatch) -> None:
    """Over ROUTER_MISSED_KEYS_MAX missed keys the server is flushed before
    it is trusted again: its untouched keys go too."""
    monkeypatch.setattr(C, "ROUTER_MISSED_KEYS_MAX", 2)
    mine = [k for k in KEYS if home(k) == "c2"][:4]
    log: dict[str, Any] = {}

    async def script(ctx: Context) -> None:
        for key in mine:
            await ask(ctx, set_(key, b"old"))
        await ctx.sleep(1_100.0 - ctx.now_ms)
        for key in mine[:3]:
            await ask(ctx, mc.Delete(key=key))
        await ctx.sleep(3_000.0 - ctx.now_ms)
        log["after"] = await ask(ctx, mc.Get(keys=tuple(mine)))

    sim = run(script, until_ms=4_000.0, at=((1_000.0, cut("c2")), (2_000.0, heal("c2"))))
    assert log["after"] == mc.Values()
    assert sim.hosts["c2"].node.cache.counters["cmd_flush"] == 1


def test_replica_that_missed_a_set_forgets_the_key() -> None:
    """A replicated pool with c3 cut off during a set: c3 missed it, so the
    router deletes the key on c3 before trusting it again; no read then
    returns the old value."""
    log: dict[str, Any] = {}

    async def script(ctx: Context) -> None:
        await ask(ctx, set_(b"r:x", b"old"))
        await ctx.sleep(1_100.0 - ctx.now_ms)
        log["set"] = await ask(ctx, set_(b"r:x", b"new"))
        await ctx.sleep(3_000.0 - ctx.now_ms)
        log["after"] = await ask(ctx, mc.Get(keys=(b"r:x",)))

    sim = run(script, until_ms=4_000.0, at=((1_000.0, cut("c3")), (2_000.0, heal("c3"))), **REPLICATED)
    assert log["set"] == mc.Line(text=E_UNAVAILABLE)  # AllSync: c3's silence is the worst reply
    assert [v.data for v in log["after"].values] in ([b"new"], [])
    assert holders(sim, b"r:x") == ["c2"]


def test_missed_binary_key_is_forgotten_too() -> None:
    """A meta key sent in base64 (flag b) may hold a space; its replayed
    delete still reaches the server (``md <key> b``) and c2 is marked up."""
    key = next(b"bin %d" % i for i in range(100) if home(b"bin %d" % i) == "c2")
    binary = mc.MetaFlags(tokens=(b"b",), key_binary=True)
    log: dict[str, Any] = {}

    async def script(ctx: Context) -> None:
        await ask(ctx, mc.MetaSet(key=key, flags=binary, data=b"old"))
        await ctx.sleep(1_100.0 - ctx.now_ms)
        log["md"] = await ask(ctx, mc.MetaDelete(key=key, flags=binary))
        await ctx.sleep(3_000.0 - ctx.now_ms)
        log["after"] = await ask(ctx, mc.MetaGet(key=key, flags=mc.MetaFlags(tokens=(b"b", b"v"), key_binary=True,
                                                                           value=True)))

    sim = run(script, until_ms=4_000.0, at=((1_000.0, cut("c2")), (2_000.0, heal("c2"))))
    assert log["md"].code == b"NF"  # the gutter never had it
    assert log["after"].code == b"EN"
    router = sim.hosts["r"].node
    assert not router._down
    assert not router._missed
