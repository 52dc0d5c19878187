"""A GFS cell in the simulator, scenario by scenario (Ghemawat et al.,
SOSP 2003): the client library against the master, its shadows and the
chunkservers; the data path, snapshots, re-replication, restarts and
corruption."""

from __future__ import annotations

import random
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from synod.core import Context, Node
from synod.gfs import Status
from synod.gfs.client import GfsClient, GfsError
from synod.gfs.messages import ClientCreate, StatusReply
from synod.harness.gfs import GfsCell, gfs_network, replication_done
from synod.sim import Simulator

CHUNK = 256 * 1024
Script = Callable[[Context, GfsClient, dict[str, Any]], Coroutine[Any, Any, None]]


class _Scripted(Node):
    def __init__(self, cell: GfsCell, script: Script, out: dict[str, Any]) -> None:
        self.cell, self.script, self.out = cell, script, out

    async def on_start(self, ctx: Context) -> None:
        await ctx.sleep(600)   # the chunkservers report first
        client = GfsClient(self.cell.masters, ctx.node_id, rpc_timeout_ms=300)
        try:
            await self.script(ctx, client, self.out)
        except GfsError as e:
            self.out["error"] = e
        self.out["done"] = True


def _cell(script: Script, *, seed: int = 1, cell: GfsCell | None = None) -> tuple[Simulator, dict[str, Any]]:
    cell = cell or GfsCell()
    sim = Simulator(seed, network=gfs_network())
    servers = cell.servers()
    for sid, make in servers.items():
        sim.add_node(sid, make, peers=tuple(servers))
    out: dict[str, Any] = {}
    sim.add_node("client", lambda: _Scripted(cell, script, out), peers=tuple(servers))
    return sim, out


def _run(sim: Simulator, out: dict[str, Any], until_ms: float = 60_000) -> None:
    sim.run(until_ms=until_ms, until=lambda: bool(out.get("done")))
    assert out.get("done"), "the script did not finish"
    assert "error" not in out, out.get("error")


def test_write_read_append_stat_and_list_across_chunks() -> None:
    data = bytes(random.Random(1).randbytes(600_000))   # three chunks of 256 KiB

    async def script(ctx: Context, c: GfsClient, out: dict[str, Any]) -> None:
        await c.mkdirs(ctx, "/a/b")
        await c.create(ctx, "/a/b/f")
        await c.write(ctx, "/a/b/f", 0, data)
        out["read"] = await c.read(ctx, "/a/b/f", 0, len(data) + 10)
        out["middle"] = await c.read(ctx, "/a/b/f", CHUNK - 5, 10)
        out["offsets"] = [await c.record_append(ctx, "/a/b/f", b"R" * 60_000) for _ in range(4)]
        out["stat"] = await c.stat(ctx, "/a/b/f")
        await c.create(ctx, "/a/b/tmp")
        await c.write(ctx, "/a/b/tmp", 0, b"committed")
        await c.rename(ctx, "/a/b/tmp", "/a/b/out")   # atomic, as MapReduce commits (OSDI 2004, 3.3)
        out["renamed"] = await c.read(ctx, "/a/b/out", 0, 9)
        out["ls"] = await c.list(ctx, "/a/b")
        with pytest.raises(GfsError) as e:
            await c.create(ctx, "/a/b/f")
        out["exists"] = e.value.status

    sim, out = _run_cell(script)
    assert out["read"] == data
    assert out["middle"] == data[CHUNK - 5:CHUNK + 5]
    # the file ended at 600,000 in chunk 2 (at 75,712 of it): three records fit, the fourth pads
    # the chunk and goes to the start of chunk 3 (section 3.3)
    assert out["offsets"] == [600_000, 660_000, 720_000, 3 * CHUNK]
    assert out["stat"].length == 3 * CHUNK + 60_000 and out["stat"].chunks == 4
    assert out["renamed"] == b"committed"
    assert out["ls"] == ["f", "out"]
    assert out["exists"] == "EXISTS"


def _run_cell(script: Script, **kw: Any) -> tuple[Simulator, dict[str, Any]]:
    sim, out = _cell(script, **kw)
    _run(sim, out)
    return sim, out


def test_a_snapshot_shares_chunks_until_a_write_copies_them() -> None:
    async def script(ctx: Context, c: GfsClient, out: dict[str, Any]) -> None:
        await c.create(ctx, "/d/f")
        await c.write(ctx, "/d/f", 0, b"before" * 1000)
        await c.snapshot(ctx, "/d", "/snap")
        await c.write(ctx, "/d/f", 0, b"AFTER!")
        out["snap"] = await c.read(ctx, "/snap/f", 0, 12)
        out["live"] = await c.read(ctx, "/d/f", 0, 12)

    sim, out = _run_cell(script)
    assert out["snap"] == b"beforebefore"
    assert out["live"] == b"AFTER!before"
    master = sim.hosts["master"].node
    live = master.meta.namespace.lookup("/d/f").chunk_handles
    snap = master.meta.namespace.lookup("/snap/f").chunk_handles
    assert live != snap   # copied on write (section 3.4)


def test_a_lost_chunkserver_is_re_replicated_and_its_stale_copy_deleted_when_it_returns() -> None:
    async def script(ctx: Context, c: GfsClient, out: dict[str, Any]) -> None:
        await c.create(ctx, "/f")
        await c.write(ctx, "/f", 0, b"x" * 100_000)

    sim, out = _run_cell(script)
    master = sim.hosts["master"].node
    [handle] = master.meta.namespace.lookup("/f").chunk_handles
    victim = master.meta.chunks.up_to_date(handle)[0]
    sim.crash(victim)
    sim.run(until_ms=sim.now_ms + 10_000, until=lambda: len(master.meta.chunks.up_to_date(handle)) == 3
            and victim not in master.meta.chunks.up_to_date(handle))
    assert victim not in master.meta.chunks.up_to_date(handle)
    assert len(master.meta.chunks.up_to_date(handle)) == 3   # re-replicated elsewhere (4.3)
    sim.restart(victim)   # it comes back with its copy, still current: one too many, and one is removed

    def holders() -> int:
        return sum(1 for cs in GfsCell().chunkserver_ids if handle in sim.hosts[cs].node.store.chunks)

    sim.run(until_ms=sim.now_ms + 10_000, until=lambda: holders() == 4)
    sim.run(until_ms=sim.now_ms + 10_000,
            until=lambda: holders() == 3 and len(master.meta.chunks.up_to_date(handle)) == 3)
    assert holders() == 3 and len(master.meta.chunks.up_to_date(handle)) == 3


def test_a_restarted_master_keeps_its_namespace_and_waits_a_lease_before_granting() -> None:
    async def script(ctx: Context, c: GfsClient, out: dict[str, Any]) -> None:
        await c.create(ctx, "/keep")
        await c.write(ctx, "/keep", 0, b"durable")

    sim, out = _run_cell(script)
    sim.crash("master")
    sim.restart("master")
    master = sim.hosts["master"].node
    assert master.meta.namespace.lookup("/keep") is not None   # replayed from its operation log
    assert master.meta.chunks.no_lease_before_ms >= GfsCell().lease_ms


def test_a_shadow_serves_reads_while_the_master_is_down_and_refuses_mutations() -> None:
    async def script(ctx: Context, c: GfsClient, out: dict[str, Any]) -> None:
        await c.create(ctx, "/s")
        await c.write(ctx, "/s", 0, b"from the shadow")
        out["ready"] = True
        while not out.get("master_down"):
            await ctx.sleep(50)
        out["read"] = await c.read(ctx, "/s", 0, 15)
        out["ls"] = await c.list(ctx, "/")
        out["refused"] = await ctx.call("shadow1", ClientCreate(path="/t"), 300)

    sim, out = _cell(script)
    sim.run(until_ms=60_000, until=lambda: bool(out.get("ready")))
    sim.crash("master")
    out["master_down"] = True
    _run(sim, out)
    assert out["read"] == b"from the shadow"
    assert out["ls"] == ["s"]
    assert out["refused"] == StatusReply(status=Status.READ_ONLY, detail="a shadow master serves reads only")


def test_a_corrupt_replica_is_never_read_and_is_kept_aside_and_replaced() -> None:
    async def script(ctx: Context, c: GfsClient, out: dict[str, Any]) -> None:
        await c.create(ctx, "/c")
        await c.write(ctx, "/c", 0, b"y" * 70_000)
        out["ready"] = True
        while not out.get("corrupted"):
            await ctx.sleep(50)
        out["read"] = await c.read(ctx, "/c", 0, 70_000)

    sim, out = _cell(script, cell=GfsCell())
    sim.run(until_ms=60_000, until=lambda: bool(out.get("ready")))
    master = sim.hosts["master"].node
    [handle] = master.meta.namespace.lookup("/c").chunk_handles
    holders = master.meta.chunks.up_to_date(handle)
    for cs in holders[:2]:   # two of the three replicas rot at rest
        assert sim.hosts[cs].disk.corrupt_at_rest(random.Random(3), (f"chunks/{handle}",)) is not None
    out["corrupted"] = True
    _run(sim, out)
    assert out["read"] == b"y" * 70_000
    # the reader's checksum failure or the scrubber finds each; both are kept aside, the chunk re-replicated
    sim.run(until_ms=sim.now_ms + 10_000, until=lambda: replication_done(sim, GfsCell()) and all(
        sim.hosts[cs].disk.list("corrupt/") for cs in holders[:2]))
    for cs in holders[:2]:
        assert sim.hosts[cs].disk.list("corrupt/"), f"{cs} did not keep its corrupt replica aside"
    assert len(master.meta.chunks.up_to_date(handle)) == 3
