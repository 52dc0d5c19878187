"""The ZooKeeper server in the simulator, with a simulated client node
speaking the typed requests the wire protocol parses (a connection per
ConnectRequest): a session is created through Zab, a create is answered
by the origin once applied, a read on another server sees it once that
server applied it, and a data watch fires."""

from __future__ import annotations

from typing import Any

from synod.core import Context, Node
from synod.sim import Constant, LinkModel, Simulator
from synod.zab import ZabNodeConfig
from synod.zab.zab import ZabConfig
from synod.zk import messages as m
from synod.zk.constants import Code, CreateMode
from synod.zk.server import ZkServerConfig, ZkServerNode
from synod.zk.tree import OPEN_ACL_UNSAFE
from synod.zk.txn import CloseSessionTxn

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


def _add_servers(sim: Simulator, server: type[ZkServerNode] = ZkServerNode) -> None:
    for i, nid in enumerate(IDS):
        cfg = ZkServerConfig(node=ZabNodeConfig(zab=ZabConfig(server_id=nid, voters=IDS), tick_ms=50.0),
                             server_index=i + 1)
        sim.add_node(nid, lambda cfg=cfg: server(cfg), peers=IDS)


def test_a_simulated_client_creates_reads_elsewhere_and_is_told_of_a_change() -> None:
    sim = Simulator(3)
    _add_servers(sim)
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


def test_a_session_on_a_new_connection_is_not_answered_with_an_old_connections_write() -> None:
    """A client that reconnects its session to the same server (kazoo after
    a ConnectionLoss) while a write of the old connection is still in
    flight: the old write, applied, must not answer the new connection's
    request. Found by ``synod sim zk`` (seed 5): server cxids restarted at 1
    on every connection, so the old setData (session, 1) answered the new
    connection's setData (session, 1) with its success, and a refused
    conditional write was reported to the client as done."""
    sim = Simulator(7)
    _add_servers(sim)
    out: dict[str, Any] = {}

    async def script(ctx: Context, out: dict[str, Any]) -> None:
        await _connect(ctx, "zk1")    # once zk1 serves, the ensemble has its leader
        leader = next(nid for nid in IDS if sim.hosts[nid].node.zab.role == "leading")  # type: ignore[attr-defined]
        follower = next(nid for nid in IDS if nid != leader)
        await _connect(ctx, follower)
        await ctx.call(follower, m.CreateRequest(path="/x", data=b"0", acl=OPEN_ACL_UNSAFE, flags=0), 1000)
        session = await _connect(ctx, leader)
        for nid in IDS:
            if nid != leader:
                sim.pause(nid)        # the leader can no longer commit, for a while
        ctx.send(leader, m.SetDataRequest(path="/x", data=b"old", version=0))   # in flight on connection 1
        await ctx.sleep(20)
        again = await ctx.call(leader, m.ConnectRequest(protocolVersion=0, lastZxidSeen=0, timeOut=4000,
                                                        sessionId=session.sessionId, passwd=session.passwd), 1000)
        assert isinstance(again, m.ConnectResponse) and again.sessionId == session.sessionId
        for nid in IDS:
            if nid != leader:
                sim.call_after(30, sim.resume, nid)
        out["new"] = await ctx.call(leader, m.SetDataRequest(path="/x", data=b"new", version=7), 1000)

    sim.add_node("c1", lambda: _Client(script, out), peers=IDS)
    sim.run(until=lambda: "new" in out, until_ms=30_000)
    assert out["new"] is not None
    assert out["new"].err == Code.BADVERSION, out["new"]


def test_a_closed_session_cannot_create_an_ephemeral() -> None:
    """A request of a session that is closed (or closing) is refused with
    SESSIONEXPIRED by the leader (ZooKeeper's checkSession in
    PrepRequestProcessor). Found by ``synod sim zk`` (seeds 18, 21, 26 ...):
    the leader prepared an ephemeral create for a session it had already
    expired, and every server kept that ephemeral for good, owned by a
    session no longer open. Here the client pipelines the create right
    behind its closeSession (both sent before either reply): the leader
    takes them in order and refuses the create; the origin answers the
    close, then closes the connection (its session closed), so the create's
    answer is a connection loss; no server ever holds the ephemeral. A
    request on the closed connection afterwards is a connection loss too."""
    sim = Simulator(3)
    for src, dst in (("c1", "zk1"), ("zk1", "c1")):
        sim.network.set_link(src, dst, LinkModel(latency=Constant(2.0)))   # in order, as over TCP
    _add_servers(sim)
    out: dict[str, Any] = {}

    async def script(ctx: Context, out: dict[str, Any]) -> None:
        await _connect(ctx, "zk1")
        ctx.send("zk1", m.CloseSessionRequest())
        ctx.send("zk1", m.CreateRequest(path="/e", data=b"", acl=OPEN_ACL_UNSAFE, flags=int(CreateMode.EPHEMERAL)))
        await ctx.sleep(500)
        out["after"] = await ctx.call("zk1", m.GetDataRequest(path="/", watch=False), 1000)
        out["done"] = True

    sim.add_node("c1", lambda: _Client(script, out), peers=IDS)
    sim.run(until=lambda: "done" in out, until_ms=30_000)
    replies = [msg for _, msg in out.get("pushed", []) if isinstance(msg, m.Reply)]
    assert replies[0].err == 0, replies   # the close
    assert [r.err for r in replies[1:]] in ([Code.CONNECTIONLOSS], [Code.SESSIONEXPIRED]), replies
    assert out["after"].err == Code.CONNECTIONLOSS, out["after"]
    for nid in IDS:
        assert "/e" not in sim.hosts[nid].node.tree   # type: ignore[attr-defined]


def test_a_session_its_client_closed_is_not_expired_as_well() -> None:
    """The leader forgets a session whose client asked to close it, so its
    expiry bucket cannot propose a second CloseSession while the first is
    not yet committed. Found by ``synod sim zk`` (seeds 280, 456, 729 and
    798 of 1000): a session closed at two zxids."""
    closes: list[tuple[str, int]] = []

    class Counting(ZkServerNode):
        def delivered(self, ctx: Context, txn: Any, result: Any) -> None:
            if type(result[0].txn) is CloseSessionTxn:
                closes.append((ctx.node_id, result[0].txn.session_id))
            super().delivered(ctx, txn, result)

    sim = Simulator(5)
    _add_servers(sim, Counting)
    out: dict[str, Any] = {}

    async def script(ctx: Context, out: dict[str, Any]) -> None:
        await _connect(ctx, "zk1")    # once zk1 serves, the ensemble has its leader
        leader = next(nid for nid in IDS if sim.hosts[nid].node.zab.role == "leading")  # type: ignore[attr-defined]
        reply = await ctx.call(leader, m.ConnectRequest(protocolVersion=0, lastZxidSeen=0, timeOut=100, sessionId=0,
                                                        passwd=bytes(16)), 1000)
        assert isinstance(reply, m.ConnectResponse) and reply.timeOut == 100
        out["session"] = reply.sessionId
        for nid in IDS:
            if nid != leader:
                sim.pause(nid)        # the close cannot commit before the session's expiry bucket passes
                sim.call_after(200, sim.resume, nid)
        ctx.send(leader, m.CloseSessionRequest())
        await ctx.sleep(800)
        out["done"] = True

    sim.add_node("c1", lambda: _Client(script, out), peers=IDS)
    sim.run(until=lambda: "done" in out, until_ms=30_000)
    mine = [nid for nid, sid in closes if sid == out["session"]]
    assert sorted(mine) == sorted(IDS), closes
