"""Peer input the nodes must survive (STYLE: "no assertion may be reachable
from peer input"): every GFS message type, with hypothesis-drawn fields
(negative and huge numbers, unknown node ids and handles, bad paths,
random bytes), sent to the master, a shadow and a chunkserver of a running
cell in the simulator. No handler may raise, and afterwards a client still
creates, writes and reads a file.

``SYNOD_FUZZ_EXAMPLES`` sets the examples (default 200)."""

from __future__ import annotations

import os
import types
import typing
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synod.core import Context, Node
from synod.gfs import messages as m
from synod.gfs.client import GfsClient
from synod.harness.gfs import GfsCell, gfs_network
from synod.sim import Simulator

EXAMPLES = int(os.environ.get("SYNOD_FUZZ_EXAMPLES", 200))
NODES = ("master", "shadow1", "cs1", "cs2", "cs3", "evil", "nobody")
INTS = st.one_of(st.integers(-3, 12), st.integers(-(2 ** 62), 2 ** 62))
TEXT = st.one_of(st.sampled_from(NODES + ("/", "/f", "/a/b", "", "a", "/.deleted-1-f", "//x", "/x/")),
                 st.text(max_size=20))
MESSAGE_TYPES = [getattr(m, name) for name in m.__all__
                 if isinstance(getattr(m, name), type) and issubclass(getattr(m, name), msgspec.Struct)
                 and name not in ("LogEntry", "FileRecord", "Checkpoint")]


def _strategy(tp: Any) -> st.SearchStrategy[Any]:
    origin = typing.get_origin(tp)
    if tp is int:
        return INTS
    if tp is str:
        return TEXT
    if tp is bytes:
        return st.binary(max_size=64)
    if tp is memoryview:   # a view of the frame, as the real transport decodes it
        return st.binary(max_size=64).map(memoryview)
    if tp is bool:
        return st.booleans()
    if tp is type(None):
        return st.none()
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return st.lists(_strategy(args[0]), max_size=4).map(tuple)
        return st.tuples(*[_strategy(a) for a in args])
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*[_strategy(a) for a in typing.get_args(tp)])
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return _message(tp)
    raise TypeError(f"no strategy for {tp!r}")


def _message(cls: type) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls)
    return st.builds(cls, **{f.name: _strategy(hints[f.name]) for f in msgspec.structs.fields(cls)})


MESSAGES = st.one_of(*[_message(cls) for cls in MESSAGE_TYPES])


class _Evil(Node):
    def __init__(self, batch: list[tuple[str, Any]]) -> None:
        self.batch = batch

    async def on_start(self, ctx: Context) -> None:
        await ctx.sleep(400)
        await ctx.gather([ctx.call(dst, msg, 200) for dst, msg in self.batch])


class _Check(Node):
    def __init__(self, out: dict[str, Any]) -> None:
        self.out = out

    async def on_start(self, ctx: Context) -> None:
        await ctx.sleep(1_500)
        c = GfsClient(("master", "shadow1"), ctx.node_id, rpc_timeout_ms=300)
        await c.create(ctx, "/after")
        await c.write(ctx, "/after", 0, b"still here")
        self.out["read"] = await c.read(ctx, "/after", 0, 10)


@settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize="SYNOD_FUZZ_EXAMPLES" not in os.environ,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.tuples(st.sampled_from(("master", "shadow1", "cs1")), MESSAGES), min_size=1, max_size=30))
def test_no_peer_message_breaks_a_node(batch: list[tuple[str, Any]]) -> None:
    cell = GfsCell(chunkservers=3, shadows=1)
    sim = Simulator(1, network=gfs_network())
    servers = cell.servers()
    for sid, make in servers.items():
        sim.add_node(sid, make, peers=tuple(servers))
    out: dict[str, Any] = {}
    sim.add_node("evil", lambda: _Evil(batch), peers=tuple(servers))
    sim.add_node("check", lambda: _Check(out), peers=tuple(servers))
    sim.run(until_ms=20_000, until=lambda: "read" in out)   # a handler that raises fails the test here
    assert out.get("read") == b"still here"
