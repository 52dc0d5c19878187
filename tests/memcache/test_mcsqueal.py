"""mcsqueal (Nishtala et al. 4.1): it tails the database's commit log and
deletes the keys written on every cache endpoint, batched, at least once:
across its own restarts, the database's, and cache servers it cannot reach
for a while."""

from __future__ import annotations

import json
from typing import Any

from synod.core import Context, Node
from synod.memcache.database import DatabaseNode
from synod.memcache.mcsqueal import CURSOR_PATH, DAMAGED_DIR, McsquealNode
from synod.memcache.messages import DbCommitted, DbWrite, Store
from synod.memcache.node import CacheNode
from synod.sim import Simulator, Tracer

CACHES = ("c1", "c2")
KEYS = 12
DEADLINE_MS = 20_000.0


class Client(Node):
    """Fills both caches with every key, then writes every key to the
    database (one at a time), recording each acknowledgement."""

    def __init__(self, acked: list[int]) -> None:
        self.acked = acked

    async def on_start(self, ctx: Context) -> None:
        for i in range(KEYS):
            for c in CACHES:
                await ctx.call(c, Store(mode="set", key=b"k%d" % i, client_flags=0, exptime=0, data=b"old"), 1000.0)
        for i in range(KEYS):
            while True:  # the database may be down: retry until acknowledged
                done = await ctx.call("db", DbWrite(key=b"k%d" % i, value=b"new"), 300.0)
                if type(done) is DbCommitted:
                    self.acked.append(done.version)
                    break


def _sim(seed: int, tracer: Tracer | None = None, **squeal: Any) -> tuple[Simulator, list[int]]:
    sim = Simulator(seed, tracer=tracer)
    peers = ("db", "mcsqueal", *CACHES)
    sim.add_node("db", DatabaseNode, peers=peers)
    for c in CACHES:
        sim.add_node(c, CacheNode, peers=peers)
    sim.add_node("mcsqueal", lambda: McsquealNode(database="db", endpoints=CACHES, **squeal), peers=peers)
    acked: list[int] = []
    sim.add_node("client", lambda: Client(acked), peers=peers)
    return sim, acked


def _cached(sim: Simulator) -> list[tuple[str, bytes]]:
    out = []
    for c in CACHES:
        node = sim.hosts[c].node
        assert isinstance(node, CacheNode)
        out += [(c, k) for k in sorted(node.cache.items)]
    return out


def _squeal(sim: Simulator) -> McsquealNode:
    node = sim.hosts["mcsqueal"].node
    assert isinstance(node, McsquealNode)
    return node


def _caught_up(sim: Simulator, acked: list[int]) -> bool:
    host = sim.hosts["mcsqueal"]
    return len(acked) == KEYS and host.up and _squeal(sim).acked_seq == KEYS


def test_every_write_is_deleted_from_every_cache_in_batches() -> None:
    """4.1: after the writes, no cache holds a written key; the deletes went
    out in fewer batches than there were writes (the batching delay lets
    several commits gather), and the durable cursor says how far."""
    sim, acked = _sim(1, batch_delay_ms=40.0)
    sim.run(until_ms=DEADLINE_MS, until=lambda: _caught_up(sim, acked))
    assert _caught_up(sim, acked)
    assert _cached(sim) == []
    squeal = _squeal(sim)
    assert 1 <= squeal.batches < KEYS, squeal.batches
    assert squeal.deletes_sent >= KEYS * len(CACHES)
    assert sim.hosts["mcsqueal"].disk.read(CURSOR_PATH)


def test_deletes_survive_restarts_of_mcsqueal_and_the_database_and_an_unreachable_cache() -> None:
    """At least once: c2 is cut off from mcsqueal while the writes commit
    (its deletes are re-sent, unacknowledged), mcsqueal crashes mid-batch
    and the database crashes too; once all are back and c2 is reachable,
    every written key is gone from both caches and the cursor reaches the
    last record."""
    sim, acked = _sim(2, batch_delay_ms=5.0)
    sim.network.one_way(["mcsqueal"], ["c2"])
    sim.run(until_ms=DEADLINE_MS, until=lambda: len(acked) >= KEYS // 2)
    sim.run(until_ms=sim.now_ms + 200.0)
    assert _squeal(sim).batch_seq, "a batch is waiting for c2's acknowledgements"
    assert _squeal(sim).acked_seq < len(acked)
    sim.crash("mcsqueal")
    sim.crash("db")
    sim.run(until_ms=sim.now_ms + 300.0)
    sim.restart("db")
    sim.restart("mcsqueal")
    sim.run(until_ms=sim.now_ms + 500.0)
    assert _squeal(sim).acked_seq < KEYS  # still blocked on c2
    sim.network.unblock("mcsqueal", "c2")
    sim.run(until_ms=sim.now_ms + DEADLINE_MS, until=lambda: _caught_up(sim, acked))
    assert _caught_up(sim, acked)
    assert _cached(sim) == []


def test_a_corrupt_cursor_is_kept_aside_and_every_write_invalidated_again() -> None:
    """The cursor's checksum catches a flipped bit: a warning, the file kept
    aside, and mcsqueal starts from the log's beginning (at least once)."""
    tracer = Tracer(keep=True)
    sim, acked = _sim(3, tracer)
    sim.run(until_ms=DEADLINE_MS, until=lambda: _caught_up(sim, acked))
    sim.crash("mcsqueal")
    disk = sim.hosts["mcsqueal"].disk
    raw = bytearray(disk.read(CURSOR_PATH) or b"")
    raw[-1] ^= 0x01
    disk.write(CURSOR_PATH, bytes(raw))
    disk.make_durable()
    sim.restart("mcsqueal")
    sim.run(until_ms=sim.now_ms + 1.0)
    warnings = [e for e in map(json.loads, tracer.lines or []) if e["kind"] == "warning"]
    assert len(warnings) == 1, warnings
    assert "corrupt" in warnings[0]["message"]
    assert warnings[0]["node"] == "mcsqueal"
    assert disk.list(DAMAGED_DIR) == [DAMAGED_DIR + "cursor.1"]
    assert _squeal(sim).acked_seq == 0
    sim.run(until_ms=sim.now_ms + DEADLINE_MS, until=lambda: _caught_up(sim, acked))
    assert _squeal(sim).acked_seq == KEYS
    assert _squeal(sim).deletes_sent >= KEYS * len(CACHES)  # this incarnation deleted every key again
