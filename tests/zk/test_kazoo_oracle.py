"""kazoo 2.11 as the oracle for synod.zk's wire format: what kazoo's own
serializers (kazoo.protocol.serialization) write parses into the right typed
requests, and the bytes ZooKeeperProtocol renders read back right through
kazoo's deserializers. kazoo frames a request as its ConnectionHandler._submit
does: length, then xid and type (none for the connect), then the body."""

from __future__ import annotations

import struct

import pytest
from kazoo import exceptions as kazoo_exc
from kazoo.protocol import serialization as kazoo_ser
from kazoo.security import ACL as KazooACL
from kazoo.security import OPEN_ACL_UNSAFE
from kazoo.security import Id as KazooId

from synod.zk import messages as m
from synod.zk.constants import AUTHPACKET_XID, PING_XID, Code, EventType, KeeperState, OpCode
from synod.zk.protocol import ZooKeeperProtocol

WORLD = (m.ACL(perms=31, id=m.Id(scheme="world", id="anyone")),)
STAT = m.Stat(czxid=0x100000001, mzxid=0x100000007, ctime=1_767_225_600_000, mtime=1_767_225_601_000, version=3,
              cversion=2, aversion=1, ephemeralOwner=0x1234, dataLength=5, numChildren=2, pzxid=0x100000006)
ACCEPT = m.ConnectResponse(protocolVersion=0, timeOut=10000, sessionId=0x10000ABCD, passwd=b"s" * 16)


def kazoo_frame(request, xid: int | None) -> bytes:
    b = bytearray()
    if xid:
        b += struct.pack(">i", xid)
    if request.type:
        b += struct.pack(">i", request.type)
    b += request.serialize()
    return struct.pack(">i", len(b)) + bytes(b)


def session() -> ZooKeeperProtocol:
    p = ZooKeeperProtocol()
    connect = kazoo_ser.Connect(0, 0, 10000, 0, b"\x00" * 16, False)
    assert p.receive_data(kazoo_frame(connect, None)) == [
        m.ConnectRequest(protocolVersion=0, lastZxidSeen=0, timeOut=10000, sessionId=0, passwd=b"\x00" * 16)]
    p.send(ACCEPT)
    return p


def kazoo_reply(raw: bytes) -> tuple[object, bytes, int]:
    """Read a reply as kazoo's ConnectionHandler does: length, ReplyHeader, rest."""
    (n,) = struct.unpack_from(">i", raw)
    assert len(raw) == 4 + n
    body = raw[4:]
    header, offset = kazoo_ser.ReplyHeader.deserialize(body, 0)
    return header, body, offset


def test_kazoo_connect_round_trip() -> None:
    p = ZooKeeperProtocol()
    connect = kazoo_ser.Connect(0, 0x500000003, 4000, 0x77, b"p" * 16, True)
    assert p.receive_data(kazoo_frame(connect, None)) == [m.ConnectRequest(
        protocolVersion=0, lastZxidSeen=0x500000003, timeOut=4000, sessionId=0x77, passwd=b"p" * 16, readOnly=True)]
    raw = p.send(m.ConnectResponse(protocolVersion=0, timeOut=4000, sessionId=0x77, passwd=b"q" * 16, readOnly=True))
    got, offset = kazoo_ser.Connect.deserialize(raw[4:], 0)
    assert (got.protocol_version, got.time_out, got.session_id, got.passwd, got.read_only) == (
        0, 4000, 0x77, b"q" * 16, True)
    assert offset == len(raw) - 4


def _acl() -> list:
    return [KazooACL(31, KazooId("world", "anyone")), KazooACL(1, KazooId("digest", "u:hash="))]


ACLS = (m.ACL(perms=31, id=m.Id(scheme="world", id="anyone")), m.ACL(perms=1, id=m.Id(scheme="digest", id="u:hash=")))

CASES = [
    (kazoo_ser.Create("/a", b"v", _acl(), 3), m.CreateRequest(path="/a", data=b"v", acl=ACLS, flags=3)),
    (kazoo_ser.Create2("/a/b", None, OPEN_ACL_UNSAFE, 0),
     m.Create2Request(path="/a/b", data=None, acl=WORLD, flags=0)),
    (kazoo_ser.Delete("/a", 4), m.DeleteRequest(path="/a", version=4)),
    (kazoo_ser.Exists("/a", True), m.ExistsRequest(path="/a", watch=True)),
    (kazoo_ser.GetData("/é", False), m.GetDataRequest(path="/é", watch=False)),
    (kazoo_ser.SetData("/a", b"\x00\xff", -1), m.SetDataRequest(path="/a", data=b"\x00\xff", version=-1)),
    (kazoo_ser.GetACL("/a"), m.GetACLRequest(path="/a")),
    (kazoo_ser.SetACL("/a", _acl(), 2), m.SetACLRequest(path="/a", acl=ACLS, version=2)),
    (kazoo_ser.GetChildren("/", True), m.GetChildrenRequest(path="/", watch=True)),
    (kazoo_ser.GetChildren2("/", False), m.GetChildren2Request(path="/", watch=False)),
    (kazoo_ser.Sync("/a"), m.SyncRequest(path="/a")),
    (kazoo_ser.CheckVersion("/a", 7), m.CheckVersionRequest(path="/a", version=7)),
    (kazoo_ser.Transaction([kazoo_ser.Create("/t", b"", OPEN_ACL_UNSAFE, 1), kazoo_ser.Delete("/u", -1),
                            kazoo_ser.SetData("/v", b"x", 2), kazoo_ser.CheckVersion("/w", 0)]),
     m.MultiRequest(ops=(m.CreateRequest(path="/t", data=b"", acl=WORLD, flags=1), m.DeleteRequest(path="/u", version=-1),
                         m.SetDataRequest(path="/v", data=b"x", version=2), m.CheckVersionRequest(path="/w", version=0)))),
    (kazoo_ser.Transaction([]), m.MultiRequest(ops=())),
    (kazoo_ser.Reconfig("server.4=h:1:2", None, None, -1), m.UnimplementedRequest(type_=OpCode.reconfig)),
    (kazoo_ser.SASL(b"token"), m.UnimplementedRequest(type_=OpCode.sasl)),
    (kazoo_ser.Close(), m.CloseSessionRequest()),
]


@pytest.mark.parametrize(("kazoo_req", "want"), CASES, ids=[type(c[0]).__name__ for c in CASES])
def test_kazoo_requests_parse_to_typed_requests(kazoo_req, want) -> None:
    p = session()
    assert p.receive_data(kazoo_frame(kazoo_req, 42)) == [want]
    assert p.pending_xids == [42]


def test_kazoo_ping_and_auth_keep_their_xids() -> None:
    p = session()
    raw = kazoo_frame(kazoo_ser.PingInstance, PING_XID) + kazoo_frame(kazoo_ser.Auth(0, "digest", "user:pw"),
                                                                       AUTHPACKET_XID)
    assert p.receive_data(raw) == [m.PingRequest(), m.AuthPacket(type_=0, scheme="digest", auth=b"user:pw")]
    header, _, _ = kazoo_reply(p.send(m.Reply(zxid=0x100000009)))
    assert (header.xid, header.zxid, header.err) == (PING_XID, 0x100000009, 0)
    header, _, _ = kazoo_reply(p.send(m.Reply(zxid=0)))
    assert (header.xid, header.err) == (AUTHPACKET_XID, 0)


def _answer(kazoo_req, rsp, xid: int = 9, zxid: int = 0x100000008):
    p = session()
    p.receive_data(kazoo_frame(kazoo_req, xid))
    header, body, offset = kazoo_reply(p.send(m.Reply(zxid=zxid, response=rsp)))
    assert (header.xid, header.zxid, header.err) == (xid, zxid, 0)
    return type(kazoo_req).deserialize(body, offset)


def test_kazoo_reads_replies() -> None:
    stat = tuple(m.Stat.__struct_fields__)
    assert stat == kazoo_ser.ZnodeStat._fields
    want = tuple(getattr(STAT, f) for f in stat)
    assert _answer(kazoo_ser.Create("/a", b"", OPEN_ACL_UNSAFE, 2), m.CreateResponse(path="/a0000000001")) == \
        "/a0000000001"
    path, s = _answer(kazoo_ser.Create2("/b", b"", OPEN_ACL_UNSAFE, 0), m.Create2Response(path="/b", stat=STAT))
    assert (path, tuple(s)) == ("/b", want)
    assert tuple(_answer(kazoo_ser.Exists("/a", False), m.ExistsResponse(stat=STAT))) == want
    data, s = _answer(kazoo_ser.GetData("/a", True), m.GetDataResponse(data=b"hello", stat=STAT))
    assert (data, tuple(s)) == (b"hello", want)
    data, _ = _answer(kazoo_ser.GetData("/a", False), m.GetDataResponse(data=None, stat=STAT))
    assert data is None
    assert tuple(_answer(kazoo_ser.SetData("/a", b"x", 3), m.SetDataResponse(stat=STAT))) == want
    acls, s = _answer(kazoo_ser.GetACL("/a"), m.GetACLResponse(acl=ACLS, stat=STAT))
    assert acls == _acl()
    assert tuple(s) == want
    assert tuple(_answer(kazoo_ser.SetACL("/a", _acl(), -1), m.SetACLResponse(stat=STAT))) == want
    assert _answer(kazoo_ser.GetChildren("/", False), m.GetChildrenResponse(children=("a", "é"))) == ["a", "é"]
    children, s = _answer(kazoo_ser.GetChildren2("/", False), m.GetChildren2Response(children=(), stat=STAT))
    assert (children, tuple(s)) == ([], want)
    assert _answer(kazoo_ser.Sync("/a"), m.SyncResponse(path="/a")) == "/a"


def test_kazoo_reads_multi_results() -> None:
    ops = [kazoo_ser.Create("/t", b"", OPEN_ACL_UNSAFE, 0), kazoo_ser.Delete("/u", -1),
           kazoo_ser.SetData("/v", b"x", 2), kazoo_ser.CheckVersion("/w", 0)]
    results = _answer(kazoo_ser.Transaction(ops), m.MultiResponse(results=(
        m.CreateResponse(path="/t"), m.DeleteResult(), m.SetDataResponse(stat=STAT), m.CheckResult())))
    assert results[0] == "/t"
    assert results[1] is True
    assert tuple(results[2]) == tuple(getattr(STAT, f) for f in m.Stat.__struct_fields__)
    assert results[3] is True
    failed = _answer(kazoo_ser.Transaction(ops[:2]), m.MultiResponse(results=(
        m.ErrorResponse(err=Code.OK), m.ErrorResponse(err=Code.NONODE))))
    assert [type(e) for e in failed] == [kazoo_exc.RolledBackError, kazoo_exc.NoNodeError]


@pytest.mark.parametrize("code", [c for c in Code if c != Code.OK], ids=lambda c: c.name)
def test_error_codes_are_kazoos(code: Code) -> None:
    """Every error code reads in kazoo as the exception ZooKeeper means."""
    p = session()
    p.receive_data(kazoo_frame(kazoo_ser.GetData("/a", False), 5))
    header, body, offset = kazoo_reply(p.send(m.Reply(zxid=1, err=code)))
    assert (header.xid, header.err, offset) == (5, code, len(body))
    exc = kazoo_exc.EXCEPTIONS[header.err]
    assert exc.code == int(code)
    kazoo_name = exc.__name__.replace("Zookeeper", "").replace("Error", "").upper()  # NoNodeError -> NONODE
    assert code.name[:8].startswith(kazoo_name[:8])


def test_kazoo_reads_notifications() -> None:
    p = session()
    for event_type in (EventType.NodeCreated, EventType.NodeDeleted, EventType.NodeDataChanged,
                       EventType.NodeChildrenChanged):
        header, body, offset = kazoo_reply(p.push(m.WatcherEvent(type_=event_type, state=KeeperState.SyncConnected,
                                                                 path="/w")))
        assert header.xid == -1
        watch, offset = kazoo_ser.Watch.deserialize(body, offset)
        assert (watch.type, watch.state, watch.path, offset) == (event_type, KeeperState.SyncConnected, "/w", len(body))
