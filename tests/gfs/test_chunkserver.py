"""The chunkserver against requests the network delayed or duplicated
(the loss nemesis does both): an old grant never starts a lease again, an
old revocation never ends a newer one, a repeated CreateChunk or
CopyChunkLocal never wipes a replica that took writes since, and a
secondary applies a pipelining primary's mutations in serial order
whatever order they arrive in (Ghemawat et al., SOSP 2003, 3.1, 3.4, 4.5)."""

from __future__ import annotations

from typing import Any

from synod.core import Context, Node
from synod.gfs.chunkserver import SERIAL_GAP_WAIT_MS, ChunkserverConfig, ChunkserverNode, MutationStatus
from synod.gfs.messages import (
    Ack,
    ApplyMutation,
    CopyChunkLocal,
    CreateChunk,
    MutationReply,
    NewVersion,
    PushData,
    ReadChunk,
    RevokeLease,
    WriteChunk,
)
from synod.sim import Constant, LinkModel, Network, Simulator

CHUNK = 256 * 1024


class _Script(Node):
    def __init__(self, steps: list[Any], out: list[Any]) -> None:
        self.steps, self.out = steps, out

    async def on_start(self, ctx: Context) -> None:
        for step in self.steps:
            self.out.append(await ctx.call("cs1", step, 100))


def _run(steps: list[Any], sender: str = "master") -> tuple[list[Any], ChunkserverNode]:
    """``steps`` called on cs1 in order by node ``sender`` (the master, by default)."""
    sim = Simulator(1, network=Network(LinkModel(latency=Constant(1.0))))
    sim.add_node("cs1", lambda: ChunkserverNode(ChunkserverConfig(masters=("master",), chunk_size_bytes=CHUNK,
                                                                  heartbeat_ms=10_000_000)))
    out: list[Any] = []
    sim.add_node(sender, lambda: _Script(steps, out))
    sim.run(until_ms=5_000)
    return out, sim.hosts["cs1"].node


def _write(data_id: int, version: int) -> list[Any]:
    return [PushData(client="c", data_id=data_id, piece=0, data=b"x" * 100, chain=()),
            WriteChunk(client="c", data_id=data_id, pieces=1, handle=7, version=version, offset=0)]


def test_an_old_grant_never_starts_a_lease_again() -> None:
    grant = NewVersion(handle=7, previous=1, version=2, grant=10, lease_ms=60_000)
    out, _ = _run([CreateChunk(handle=7, version=1), grant, *_write(1, 2),
                   RevokeLease(handle=7, grant=10),
                   grant,                     # the network kept a copy of the grant
                   *_write(2, 2)])
    assert out[1] == Ack(ok=True)
    assert out[3].status == MutationStatus.OK
    assert out[5].ok is False                  # the copy is refused...
    assert out[7].status == MutationStatus.NOT_PRIMARY   # ...and starts no lease


def test_the_masters_commands_count_only_from_the_master() -> None:
    """A revocation with a huge grant from another node once made the
    chunkserver refuse every later grant of the master (the peer fuzz)."""
    out, node = _run([CreateChunk(handle=7, version=1), RevokeLease(handle=7, grant=12_582_922),
                      NewVersion(handle=7, previous=1, version=2, grant=10, lease_ms=60_000)], sender="evil")
    assert [o.ok for o in out] == [False, False, False]
    assert all(o.detail == "only the master sends this" for o in out)
    assert node.store is not None and 7 not in node.store.chunks and node.grants == {}


def test_an_old_revocation_never_ends_a_newer_lease() -> None:
    out, _ = _run([CreateChunk(handle=7, version=1),
                   NewVersion(handle=7, previous=1, version=2, grant=10, lease_ms=60_000),
                   NewVersion(handle=7, previous=2, version=3, grant=11, lease_ms=60_000),
                   RevokeLease(handle=7, grant=10),   # late: meant for the lease of grant 10
                   *_write(1, 3)])
    assert out[3].ok and out[3].detail == "a later grant runs"
    assert type(out[5]) is MutationReply and out[5].status == MutationStatus.OK


def test_a_repeated_create_or_copy_never_wipes_data() -> None:
    out, node = _run([CreateChunk(handle=7, version=1),
                      NewVersion(handle=7, previous=1, version=2, grant=10, lease_ms=60_000),
                      *_write(1, 2),
                      CreateChunk(handle=7, version=1),      # a copy the network kept
                      CopyChunkLocal(handle=7, new_handle=8),
                      CopyChunkLocal(handle=7, new_handle=8),  # again
                      ReadChunk(handle=7, version=2, offset=0, length=100),
                      ReadChunk(handle=8, version=2, offset=0, length=100)])
    assert out[4] == Ack(ok=False, detail="the chunk exists here")
    assert out[5] == Ack(ok=True) and out[6] == Ack(ok=True, detail="copied already")
    assert out[7].data == b"x" * 100 and out[8].data == b"x" * 100


class _Primary(Node):
    """Creates chunk 7 on cs1, pushes three pieces of data, then sends
    ApplyMutation as a pipelining primary would, with the network's
    reordering played out: serial 2 before 1, then 4 (3 lost), then 3 late."""

    def __init__(self, out: list[Any]) -> None:
        self.out = out

    async def on_start(self, ctx: Context) -> None:
        def apply(serial: int, data_id: int, offset: int) -> ApplyMutation:
            return ApplyMutation(handle=7, version=1, serial=serial, offset=offset, client="p", data_id=data_id,
                                 pieces=1, pad_bytes=0)

        await ctx.call("cs1", CreateChunk(handle=7, version=1), 100)
        for data_id, data in ((1, b"a" * 100), (2, b"b" * 50), (3, b"c" * 10), (4, b"d" * 10)):
            await ctx.call("cs1", PushData(client="p", data_id=data_id, piece=0, data=data, chain=()), 100)
        started = ctx.now_ms
        self.out.append(await ctx.gather([ctx.call("cs1", apply(2, 2, 50), 2_000),
                                          ctx.call("cs1", apply(1, 1, 0), 2_000)]))
        self.out.append(ctx.now_ms - started)
        started = ctx.now_ms
        self.out.append(await ctx.call("cs1", apply(4, 4, 110), 2_000))
        self.out.append(ctx.now_ms - started)
        self.out.append(await ctx.call("cs1", apply(3, 3, 100), 2_000))
        self.out.append(await ctx.call("cs1", ReadChunk(handle=7, version=1, offset=0, length=200), 100))


def test_a_secondary_applies_pipelined_mutations_in_serial_order() -> None:
    sim = Simulator(1, network=Network(LinkModel(latency=Constant(1.0))))
    sim.add_node("cs1", lambda: ChunkserverNode(ChunkserverConfig(masters=("master",), chunk_size_bytes=CHUNK,
                                                                  heartbeat_ms=10_000_000)))
    out: list[Any] = []
    sim.add_node("master", lambda: _Primary(out))
    sim.run(until_ms=10_000)
    acks, took_ms, late_ack, gap_ms, early_ack, read = out
    assert acks == [Ack(ok=True), Ack(ok=True)]        # 2 waited for 1: both applied, 1 first
    assert took_ms < SERIAL_GAP_WAIT_MS
    assert late_ack == Ack(ok=True) and gap_ms >= SERIAL_GAP_WAIT_MS   # 3 never came: skipped after the wait
    assert early_ack == Ack(ok=False, detail="a later mutation was applied first")   # never applied after 4
    assert read.data == b"a" * 50 + b"b" * 50 + bytes(10) + b"d" * 10
