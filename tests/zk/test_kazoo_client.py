"""The real KazooClient (kazoo 2.11, its own socket code) against
ZooKeeperProtocol over TCP, behind a toy in-test responder (a dict of
znodes, no sessions or replication: that is the node's job, not this
codec's). Shows the framing, the handshake, xid matching, pings, multi,
error codes and a watch notification pushed before the reply that caused
it, as a real client reads them; once over plain sockets, once through
synod's client gateway (synod.runtime.gateway), as a node will serve it."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError, RolledBackError, RuntimeInconsistency

from synod.core.clients import ClientClosed, ClientOpened
from synod.core.errors import RemoteProtocolError
from synod.runtime.gateway import Gateway
from synod.zk import messages as m
from synod.zk.constants import Code, EventType, KeeperState
from synod.zk.protocol import ZooKeeperProtocol

TIMEOUT_S = 10


class _Toy:
    """Just enough of a znode tree to answer kazoo's calls (not a ZooKeeper)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.zxid = 0
        self.nodes: dict[str, tuple[bytes, int]] = {"/": (b"", 0)}  # path -> (data, version)
        self.data_watches: dict[str, list[Any]] = {}  # path -> connections (their keys) watching

    def children(self, path: str) -> tuple[str, ...]:
        prefix = path.rstrip("/") + "/"
        return tuple(sorted(p[len(prefix):] for p in self.nodes
                            if p != "/" and p.startswith(prefix) and "/" not in p[len(prefix):]))

    def stat(self, path: str) -> m.Stat:
        data, version = self.nodes[path]
        return m.Stat(czxid=1, mzxid=self.zxid, ctime=0, mtime=0, version=version, cversion=0, aversion=0,
                      ephemeralOwner=0, dataLength=len(data), numChildren=len(self.children(path)), pzxid=1)

    def answer(self, conn: Any, req: Any, push: Callable[[Any, m.WatcherEvent], None]) -> Any:
        """The reply to ``req`` from connection ``conn``; ``push(conn, event)``
        sends a notification (before the reply, as ZooKeeper orders them)."""
        if isinstance(req, m.ConnectRequest):
            return m.ConnectResponse(protocolVersion=0, timeOut=req.timeOut, sessionId=0x5EED, passwd=b"s" * 16,
                                     readOnly=False)
        if isinstance(req, m.FourLetterWordRequest):
            return m.FourLetterWordResponse(text="imok" if req.word == "ruok" else f"{req.word}: not here\n")
        if isinstance(req, m.CreateRequest | m.Create2Request):
            if req.path in self.nodes:
                return m.Reply(zxid=self.zxid, err=Code.NODEEXISTS)
            self.zxid += 1
            self.nodes[req.path] = (req.data or b"", 0)
            if isinstance(req, m.Create2Request):
                return m.Reply(zxid=self.zxid, response=m.Create2Response(path=req.path, stat=self.stat(req.path)))
            return m.Reply(zxid=self.zxid, response=m.CreateResponse(path=req.path))
        if isinstance(req, m.GetDataRequest | m.ExistsRequest | m.SetDataRequest | m.CheckVersionRequest) and \
                req.path not in self.nodes:
            return m.Reply(zxid=self.zxid, err=Code.NONODE)
        if isinstance(req, m.GetDataRequest):
            if req.watch:
                self.data_watches.setdefault(req.path, []).append(conn)
            return m.Reply(zxid=self.zxid, response=m.GetDataResponse(data=self.nodes[req.path][0],
                                                                      stat=self.stat(req.path)))
        if isinstance(req, m.ExistsRequest):
            return m.Reply(zxid=self.zxid, response=m.ExistsResponse(stat=self.stat(req.path)))
        if isinstance(req, m.SetDataRequest):
            version = self.nodes[req.path][1]
            if req.version not in (-1, version):
                return m.Reply(zxid=self.zxid, err=Code.BADVERSION)
            self.zxid += 1
            self.nodes[req.path] = (req.data or b"", version + 1)
            event = m.WatcherEvent(type_=EventType.NodeDataChanged, state=KeeperState.SyncConnected, path=req.path)
            for watcher in self.data_watches.pop(req.path, []):
                push(watcher, event)
            return m.Reply(zxid=self.zxid, response=m.SetDataResponse(stat=self.stat(req.path)))
        if isinstance(req, m.GetChildrenRequest):
            return m.Reply(zxid=self.zxid, response=m.GetChildrenResponse(children=self.children(req.path)))
        if isinstance(req, m.CheckVersionRequest) and req.version != self.nodes[req.path][1]:
            return m.Reply(zxid=self.zxid, err=Code.BADVERSION)
        if isinstance(req, m.MultiRequest):
            return self.multi(conn, req, push)
        if isinstance(req, m.DeleteRequest):
            if req.path not in self.nodes:
                return m.Reply(zxid=self.zxid, err=Code.NONODE)
            self.zxid += 1
            del self.nodes[req.path]
        return m.Reply(zxid=self.zxid)  # delete, ping, close, sync ...

    def multi(self, conn: Any, req: m.MultiRequest, push: Callable[[Any, m.WatcherEvent], None]) -> m.Reply:
        """All or nothing: on a failed op, the tree as before, the ops before
        it answered OK (rolled back), the ones after RUNTIMEINCONSISTENCY."""
        before = (dict(self.nodes), self.zxid)
        results: list[Any] = []
        for i, op in enumerate(req.ops):
            rep = self.answer(conn, op, push)
            if rep.err != Code.OK:
                self.nodes, self.zxid = before
                errors = [Code.OK] * i + [rep.err] + [Code.RUNTIMEINCONSISTENCY] * (len(req.ops) - i - 1)
                return m.Reply(zxid=self.zxid, response=m.MultiResponse(
                    results=tuple(m.ErrorResponse(err=e) for e in errors)))
            empty = m.DeleteResult() if isinstance(op, m.DeleteRequest) else m.CheckResult()
            results.append(empty if rep.response is None else rep.response)
        return m.Reply(zxid=self.zxid, response=m.MultiResponse(results=tuple(results)))


def _serve_one(conn: socket.socket, toy: _Toy) -> None:
    proto = ZooKeeperProtocol()
    out: list[bytes] = []

    def push(_watcher: Any, event: m.WatcherEvent) -> None:
        out.append(proto.push(event))  # the test's one session watches on this connection

    with conn:
        while not proto.wants_close:
            data = conn.recv(65536)
            if not data:
                return
            try:
                reqs = proto.receive_data(data)
            except RemoteProtocolError as e:
                conn.sendall(proto.error_bytes(e))
                return
            with toy.lock:  # one toy for every connection's thread
                for req in reqs:
                    out.append(proto.send(toy.answer(proto, req, push)))
            conn.sendall(b"".join(out))
            out.clear()


@contextmanager
def _threaded_server(toy: _Toy) -> Iterator[str]:
    """A plain socket server, one thread per connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=_serve_one, args=(conn, toy), daemon=True).start()

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        listener.shutdown(socket.SHUT_RDWR)  # wakes the accept
        listener.close()
        t.join(TIMEOUT_S)


@contextmanager
def _gateway_server(toy: _Toy) -> Iterator[str]:
    """synod's own client gateway (DESIGN.md section 8) on an asyncio loop in
    a thread, ZooKeeperProtocol per connection, the toy as the node."""
    loop = asyncio.new_event_loop()
    t = threading.Thread(target=loop.run_forever, daemon=True)
    t.start()
    gw: Gateway | None = None

    def deliver(src: str, msg: Any, corr: int) -> None:
        if isinstance(msg, ClientOpened | ClientClosed):
            return
        assert gw is not None
        reply = toy.answer(src, msg, lambda client, event: gw.reply(client, 0, event))
        gw.reply(src, -corr, reply)

    gw = Gateway("zk", ZooKeeperProtocol, deliver, lambda kind, fields: None)
    try:
        asyncio.run_coroutine_threadsafe(gw.listen("127.0.0.1", 0), loop).result(TIMEOUT_S)
        yield f"127.0.0.1:{gw.port}"
    finally:
        loop.call_soon_threadsafe(gw.close)
        loop.call_soon_threadsafe(loop.stop)
        t.join(TIMEOUT_S)
        loop.close()


@pytest.fixture(params=["threaded", "gateway"])
def server(request: pytest.FixtureRequest) -> Iterator[tuple[str, _Toy]]:
    toy = _Toy()
    serve = _threaded_server if request.param == "threaded" else _gateway_server
    with serve(toy) as hosts:
        yield hosts, toy


def test_kazoo_client_end_to_end(server: tuple[str, _Toy]) -> None:
    hosts, toy = server
    client = KazooClient(hosts=hosts, timeout=TIMEOUT_S)
    client.start(timeout=TIMEOUT_S)
    try:
        assert client.connected
        assert client.client_id[0] == 0x5EED
        assert client.command(b"ruok") == "imok"  # its own connection, closed by the server after the answer
        assert client.create("/a", b"one") == "/a"
        path, stat = client.create("/b", b"xy", include_data=True)
        assert (path, stat.dataLength) == ("/b", 2)
        with pytest.raises(NodeExistsError):
            client.create("/a", b"")
        data, stat = client.get("/a")
        assert (data, stat.version) == (b"one", 0)
        assert client.exists("/nope") is None
        with pytest.raises(NoNodeError):
            client.get("/nope")
        fired = threading.Event()
        seen: list[Any] = []
        client.get("/a", watch=lambda event: (seen.append(event), fired.set()))
        stat = client.set("/a", b"two", version=0)
        assert stat.version == 1
        assert fired.wait(TIMEOUT_S)
        assert (seen[0].type, seen[0].path) == ("CHANGED", "/a")
        with pytest.raises(BadVersionError):
            client.set("/a", b"three", version=0)
        assert client.get_children("/") == ["a", "b"]
        assert client.exists("/").numChildren == 2
        tx = client.transaction()
        tx.create("/c", b"")
        tx.set_data("/a", b"four", version=5)
        tx.delete("/b")
        assert [type(r) for r in tx.commit()] == [RolledBackError, BadVersionError, RuntimeInconsistency]
        tx = client.transaction()
        tx.create("/d", b"")
        tx.delete("/d")
        tx.check("/a", 1)
        assert tx.commit() == ["/d", True, True]
        client.delete("/b")
        assert client.exists("/b") is None
    finally:
        client.stop()
        client.close()
    assert "/c" not in toy.nodes
