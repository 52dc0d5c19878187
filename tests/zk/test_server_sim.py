"""The ZooKeeper server in the simulator, with a simulated client node
speaking the typed requests the wire protocol parses (a connection per
ConnectRequest): a session is created through Zab, a create is answered
by the origin once applied, a read on another server sees it once that
server applied it, and a data watch fires."""

from __future__ import annotations

from typing import Any

from synod.core import Context, Node
from synod.sim import Simulator
from synod.zab import ZabNodeConfig
from synod.zab.zab import ZabConfig
from synod.zk import messages as m
from synod.zk.constants import Code
from synod.zk.server import ZkServerConfig, ZkServerNode
from synod.zk.tree import OPEN_ACL_UNSAFE

IDS = ("zk1", "zk2", "zk3")


class _Client(Node):
    def __init__(self, script: Any, out: dict[str, Any]) -> None:
        self.script = script
        self.out = out

    def on_start(self, ctx: Context) -> Any:
        return self.script(ctx, self.out)

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        self.out.setdefault("pushed", []).append((src, msg))


async def _connect(ctx: Context, server: str) -> m.ConnectResponse:
    while True:
        reply = await ctx.call(server, m.ConnectRequest(protocolVersion=0, lastZxidSeen=0, timeOut=4000, sessionId=0,
                                                       passwd=bytes(16)), 1000)
        if isinstance(reply, m.ConnectResponse) and reply.timeOut > 0:
            return reply
        await ctx.sleep(200)


async def _script(ctx: Context, out: dict[str, Any]) -> None:
    session = await _connect(ctx, "zk1")
    out["session"] = session.sessionId
    out["create"] = await ctx.call("zk1", m.CreateRequest(path="/a", data=b"1", acl=OPEN_ACL_UNSAFE, flags=0), 1000)
    out["watched"] = await ctx.call("zk1", m.GetDataRequest(path="/a", watch=True), 1000)
    out["set"] = await ctx.call("zk1", m.SetDataRequest(path="/a", data=b"2", version=0), 1000)
    out["bad"] = await ctx.call("zk1", m.SetDataRequest(path="/a", data=b"3", version=0), 1000)
    await ctx.sleep(500)
    other = await _connect(ctx, "zk2")        # a second connection, on another server
    out["other_read"] = await ctx.call("zk2", m.GetDataRequest(path="/a", watch=False), 1000)
    out["other_session"] = other.sessionId


def test_a_simulated_client_creates_reads_elsewhere_and_is_told_of_a_change() -> None:
    sim = Simulator(3)
    for i, nid in enumerate(IDS):
        cfg = ZkServerConfig(node=ZabNodeConfig(zab=ZabConfig(server_id=nid, voters=IDS), tick_ms=50.0),
                             server_index=i + 1)
        sim.add_node(nid, lambda cfg=cfg: ZkServerNode(cfg), peers=IDS)
    out: dict[str, Any] = {}
    sim.add_node("c1", lambda: _Client(_script, out), peers=IDS)
    sim.run(until=lambda: "other_read" in out, until_ms=30_000)
    assert out["create"] == m.Reply(zxid=out["create"].zxid, err=0, response=m.CreateResponse(path="/a"))
    assert out["watched"].response.data == b"1"
    assert out["set"].err == 0 and out["set"].response.stat.version == 1
    assert out["bad"].err == Code.BADVERSION
    assert out["other_read"].response.data == b"2"
    assert out["other_session"] != out["session"]
    events = [msg for _, msg in out.get("pushed", []) if isinstance(msg, m.WatcherEvent)]
    assert [(e.path, e.type_) for e in events] == [("/a", 3)]   # NodeDataChanged
