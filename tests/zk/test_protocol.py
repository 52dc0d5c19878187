"""ZooKeeper's client port, server side (synod.zk.protocol): framing, the
connect handshake, four-letter words, request and reply round-trips of every
record, the special xids, and the checks on replies.

Spec: NIOServerCnxn (readLength, checkFourLetterWord, readConnectRequest),
ZooKeeperServer.processPacket, ProtocolManager, MultiOperationRecord /
MultiResponse, ClientCnxn's xids.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.zk._strategies import RESPONSES, SESSION_REQUESTS, records

from synod.core.codec import Message, decode, encode
from synod.core.errors import LocalProtocolError, RemoteProtocolError
from synod.zk import connect_frame, read_connect_response, read_response, request_frame
from synod.zk import messages as m
from synod.zk.constants import (
    AUTHPACKET_XID,
    CONNECT_REQUEST_BYTES_MIN,
    FOUR_LETTER_WORDS,
    FRAME_BYTES_MAX,
    NOTIFICATION_XID,
    PING_XID,
    SET_WATCHES_XID,
    Code,
    EventType,
    KeeperState,
    OpCode,
)
from synod.zk.jute import JuteReader
from synod.zk.protocol import ZooKeeperProtocol

CONNECT = m.ConnectRequest(protocolVersion=0, lastZxidSeen=0, timeOut=30000, sessionId=0, passwd=b"\x00" * 16)
ACCEPT = m.ConnectResponse(protocolVersion=0, timeOut=30000, sessionId=0x1234, passwd=b"p" * 16)
STAT = m.Stat(czxid=1, mzxid=2, ctime=3, mtime=4, version=5, cversion=6, aversion=7, ephemeralOwner=0,
              dataLength=1, numChildren=0, pzxid=1)
WORLD = (m.ACL(perms=31, id=m.Id(scheme="world", id="anyone")),)


def connected() -> ZooKeeperProtocol:
    p = ZooKeeperProtocol()
    assert p.receive_data(connect_frame(CONNECT)) == [CONNECT]
    p.send(ACCEPT)
    return p


def unframe(raw: bytes) -> JuteReader:
    (n,) = struct.unpack_from(">i", raw)
    assert len(raw) == 4 + n
    return JuteReader(raw[4:])


def reply_header(r: JuteReader) -> tuple[int, int, int]:
    return r.read_int(), r.read_long(), r.read_int()


# -- connect ---------------------------------------------------------------------------------------


def test_connect_with_read_only_is_answered_with_it() -> None:
    p = ZooKeeperProtocol()
    req = m.ConnectRequest(protocolVersion=0, lastZxidSeen=7, timeOut=4000, sessionId=9, passwd=b"x" * 16,
                           readOnly=True)
    assert p.receive_data(connect_frame(req)) == [req]
    raw = p.send(m.ConnectResponse(protocolVersion=0, timeOut=4000, sessionId=9, passwd=b"x" * 16, readOnly=True))
    r = unframe(raw)
    assert read_connect_response(r).readOnly is True
    assert r.remaining == 0
    assert p.wants_close is False


def test_connect_without_read_only_is_answered_without_it() -> None:
    """ProtocolManager: a client that sent no readOnly byte gets none back."""
    p = ZooKeeperProtocol()
    assert p.receive_data(connect_frame(CONNECT, read_only_field=False)) == [CONNECT]
    raw = p.send(ACCEPT)
    assert len(raw) == 4 + 4 + 4 + 8 + 4 + 16
    assert read_connect_response(unframe(raw)) == ACCEPT


def test_refused_session_closes_after_the_response() -> None:
    p = ZooKeeperProtocol()
    p.receive_data(connect_frame(CONNECT))
    p.send(m.ConnectResponse(protocolVersion=0, timeOut=0, sessionId=0, passwd=b"\x00" * 16))
    assert p.wants_close is True


def test_shortest_connect_request_is_taken() -> None:
    """int, long, int, long and a null passwd: CONNECT_REQUEST_BYTES_MIN bytes."""
    body = struct.pack(">iqiqi", 0, 0, 5000, 0, -1)
    assert len(body) == CONNECT_REQUEST_BYTES_MIN
    assert ZooKeeperProtocol().receive_data(struct.pack(">i", len(body)) + body) == [
        m.ConnectRequest(protocolVersion=0, lastZxidSeen=0, timeOut=5000, sessionId=0, passwd=None)]
    with pytest.raises(RemoteProtocolError):
        ZooKeeperProtocol().receive_data(struct.pack(">i", len(body) - 1) + body[:-1])


def test_short_connect_request_is_malformed() -> None:
    p = ZooKeeperProtocol()
    with pytest.raises(RemoteProtocolError):
        p.receive_data(struct.pack(">i", 8) + b"\x00" * 8)
    with pytest.raises(RemoteProtocolError):
        p.receive_data(b"")  # broken stays broken


# -- four-letter words -----------------------------------------------------------------------------


@pytest.mark.parametrize("word", sorted(FOUR_LETTER_WORDS - {"stmk"}))
def test_four_letter_word_is_answered_as_text_then_closed(word: str) -> None:
    p = ZooKeeperProtocol()
    assert p.receive_data(word.encode() + b"\n") == [m.FourLetterWordRequest(word=word)]
    assert p.receive_data(b"more bytes") == []
    assert p.send(m.FourLetterWordResponse(text="imok")) == b"imok"
    assert p.wants_close is True


def test_stmk_waits_for_its_trace_mask() -> None:
    p = ZooKeeperProtocol()
    assert p.receive_data(b"stmk\x00\x00") == []
    assert p.receive_data(b"\x00\x00\x00\x00\x01\x12") == [m.FourLetterWordRequest(word="stmk", traceMask=0x112)]


def test_four_letter_word_only_opens_a_connection() -> None:
    """Once a session is open, 'ruok' is read as a frame length (too large)."""
    p = connected()
    with pytest.raises(RemoteProtocolError, match="frame length"):
        p.receive_data(b"ruok")


def test_unknown_word_is_a_frame_length() -> None:
    with pytest.raises(RemoteProtocolError, match="frame length"):
        ZooKeeperProtocol().receive_data(b"abcd")


# -- framing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [-1, FRAME_BYTES_MAX + 1, 2**31 - 1])
def test_frame_length_out_of_bounds_is_refused_from_its_prefix(length: int) -> None:
    p = connected()
    with pytest.raises(RemoteProtocolError):
        p.receive_data(struct.pack(">i", length))


def test_frame_at_the_limit_is_taken() -> None:
    p = ZooKeeperProtocol(frame_bytes_max=64)
    p.receive_data(connect_frame(CONNECT))
    p.send(ACCEPT)
    req = m.SetDataRequest(path="/a", data=b"x" * (64 - 8 - 6 - 4 - 4), version=-1)
    raw = request_frame(1, req)
    assert len(raw) == 4 + 64
    assert p.receive_data(raw) == [req]
    with pytest.raises(RemoteProtocolError):
        p.receive_data(request_frame(2, m.SetDataRequest(path="/a", data=b"x" * 43, version=-1)))


def test_data_over_the_buffer_limit_is_refused() -> None:
    p = ZooKeeperProtocol(buffer_bytes_max=16)
    p.receive_data(connect_frame(CONNECT))
    p.send(ACCEPT)
    with pytest.raises(RemoteProtocolError, match="maxbuffer"):
        p.receive_data(request_frame(1, m.SetDataRequest(path="/a", data=b"x" * 17, version=-1)))


def test_frames_split_anywhere_give_the_same_requests() -> None:
    reqs = [m.GetDataRequest(path="/a", watch=True), m.PingRequest(), m.SyncRequest(path="/")]
    raw = connect_frame(CONNECT) + b"".join(request_frame(i + 1, r) for i, r in enumerate(reqs))
    p = ZooKeeperProtocol()
    got = [x for b in raw for x in p.receive_data(bytes([b]))]
    assert got == [CONNECT, *reqs]
    assert p.buffered_bytes == 0
    assert p.pending_xids == [None, 1, 2, 3]


def test_trailing_bytes_in_a_frame_are_ignored_as_zookeeper_does() -> None:
    p = connected()
    body = struct.pack(">ii", 5, OpCode.sync) + b"\x00\x00\x00\x01/" + b"junk"
    assert p.receive_data(struct.pack(">i", len(body)) + body) == [m.SyncRequest(path="/")]


# -- every request and reply -----------------------------------------------------------------------


@pytest.mark.parametrize("cls", SESSION_REQUESTS, ids=lambda c: c.__name__)
@settings(max_examples=25, deadline=None)
@given(data=st.data(), xid=st.integers(-(2**31), 2**31 - 1))
def test_every_request_round_trips_through_the_protocol(cls: type, data: st.DataObject, xid: int) -> None:
    req = data.draw(records(cls))
    p = connected()
    assert p.receive_data(request_frame(xid, req)) == [req]
    assert p.pending_xids == [xid]
    assert decode(encode(req), type=Message) == req  # a well-formed synod message too


@pytest.mark.parametrize("cls", RESPONSES, ids=lambda c: c.__name__)
@settings(max_examples=25, deadline=None)
@given(data=st.data(), xid=st.integers(1, 2**31 - 1), zxid=st.integers(-(2**63), 2**63 - 1))
def test_every_response_round_trips_with_the_requests_xid(cls: type, data: st.DataObject, xid: int,
                                                          zxid: int) -> None:
    rsp = data.draw(records(cls))
    req_cls = next(c for c, r in m.RESPONSE_TYPES.items() if r is cls)
    req = data.draw(records(req_cls))
    if isinstance(rsp, m.MultiResponse):
        req_cls = m.MultiRequest if all(_fits(m.MultiRequest, x) for x in rsp.results) else m.MultiReadRequest
        rsp = m.MultiResponse(results=tuple(x for x in rsp.results if _fits(req_cls, x)))
        op = (m.DeleteRequest(path="/a", version=-1) if req_cls is m.MultiRequest
              else m.GetDataRequest(path="/a", watch=False))
        req = req_cls(ops=(op,) * len(rsp.results))
    p = connected()
    p.receive_data(request_frame(xid, req))
    r = unframe(p.send(m.Reply(zxid=zxid, response=rsp)))
    assert reply_header(r) == (xid, zxid, 0)
    assert read_response(cls, r) == rsp
    assert r.remaining == 0


def _fits(req_cls: type, result: object) -> bool:
    writes = (m.CreateResponse, m.Create2Response, m.DeleteResult, m.CheckResult, m.SetDataResponse, m.ErrorResponse)
    reads = (m.GetChildrenResponse, m.GetDataResponse, m.ErrorResponse)
    return isinstance(result, writes if req_cls is m.MultiRequest else reads)


def test_multi_response_layout_is_zookeepers() -> None:
    """MultiResponse.serialize: (type, done=false, err) before each result,
    an ErrorResponse's err in its header too, then (-1, true, -1)."""
    p = connected()
    ops = (m.CreateRequest(path="/a", data=b"", acl=WORLD, flags=0), m.DeleteRequest(path="/b", version=3))
    p.receive_data(request_frame(4, m.MultiRequest(ops=ops)))
    raw = p.send(m.Reply(zxid=10, response=m.MultiResponse(results=(
        m.ErrorResponse(err=Code.OK), m.ErrorResponse(err=Code.BADVERSION)))))
    body = raw[4 + 16:]
    assert body == (struct.pack(">i?i", -1, False, 0) + struct.pack(">i", 0)
                    + struct.pack(">i?i", -1, False, -103) + struct.pack(">i", -103) + struct.pack(">i?i", -1, True, -1))


def test_multi_mixing_reads_and_writes_is_malformed() -> None:
    p = connected()
    body = (struct.pack(">ii", 3, OpCode.multi) + struct.pack(">i?i", OpCode.getData, False, -1)
            + b"\x00\x00\x00\x02/a\x00" + struct.pack(">i?i", -1, True, -1))
    with pytest.raises(RemoteProtocolError, match="not allowed"):
        p.receive_data(struct.pack(">i", len(body)) + body)
    with pytest.raises(LocalProtocolError):
        request_frame(1, m.MultiReadRequest(ops=(m.DeleteRequest(path="/a", version=1),)))  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        request_frame(1, m.MultiReadRequest(ops=(m.PingRequest(),)))  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        request_frame(1, m.MultiRequest(ops=(m.GetDataRequest(path="/a", watch=False),)))  # type: ignore[arg-type]


def test_multi_without_its_done_header_is_malformed() -> None:
    p = connected()
    body = struct.pack(">ii", 3, OpCode.multi) + struct.pack(">i?i", OpCode.delete, False, -1) + b"\x00\x00\x00\x02/a"
    with pytest.raises(RemoteProtocolError):
        p.receive_data(struct.pack(">i", len(body) + 4) + body + struct.pack(">i", -1))


# -- special xids, closing, errors -----------------------------------------------------------------


def test_ping_auth_and_set_watches_keep_their_special_xids() -> None:
    p = connected()
    reqs = [(PING_XID, m.PingRequest()), (AUTHPACKET_XID, m.AuthPacket(type_=0, scheme="digest", auth=b"u:p")),
            (SET_WATCHES_XID, m.SetWatches(relativeZxid=5, dataWatches=("/a",), existWatches=(), childWatches=())),
            (SET_WATCHES_XID, m.SetWatches2(relativeZxid=5, dataWatches=(), existWatches=(), childWatches=(),
                                            persistentWatches=("/p",), persistentRecursiveWatches=("/r",)))]
    assert p.receive_data(b"".join(request_frame(x, r) for x, r in reqs)) == [r for _, r in reqs]
    for xid, _ in reqs:
        r = unframe(p.send(m.Reply(zxid=77)))
        assert reply_header(r) == (xid, 77, 0)
    assert p.wants_close is False


def test_auth_failure_closes() -> None:
    p = connected()
    p.receive_data(request_frame(AUTHPACKET_XID, m.AuthPacket(type_=0, scheme="digest", auth=b"u:bad")))
    assert reply_header(unframe(p.send(m.Reply(zxid=0, err=Code.AUTHFAILED)))) == (AUTHPACKET_XID, 0, -115)
    assert p.wants_close is True


@pytest.mark.parametrize("op", [OpCode.sasl, OpCode.reconfig, OpCode.createSession, 999, -77])
def test_unimplemented_op_is_answered_then_closed(op: int) -> None:
    p = connected()
    raw = struct.pack(">iii", 8, 12, op) + request_frame(13, m.PingRequest())
    assert p.receive_data(raw) == [m.UnimplementedRequest(type_=op)]  # nothing after it is read
    assert reply_header(unframe(p.send(m.Reply(zxid=3, err=Code.UNIMPLEMENTED)))) == (12, 3, Code.UNIMPLEMENTED)
    assert p.wants_close is True


def test_close_session_stops_reading_and_closes_after_its_reply() -> None:
    p = connected()
    raw = request_frame(5, m.CloseSessionRequest()) + request_frame(6, m.PingRequest())
    assert p.receive_data(raw) == [m.CloseSessionRequest()]
    assert p.receive_data(request_frame(7, m.PingRequest())) == []
    p.send(m.Reply(zxid=9))
    assert p.wants_close is True


def test_error_reply_has_no_body() -> None:
    p = connected()
    p.receive_data(request_frame(8, m.GetDataRequest(path="/nope", watch=False)))
    r = unframe(p.send(m.Reply(zxid=4, err=Code.NONODE)))
    assert reply_header(r) == (8, 4, Code.NONODE)
    assert r.remaining == 0


def test_send_checks_the_reply_fits_its_request() -> None:
    p = ZooKeeperProtocol()
    with pytest.raises(LocalProtocolError, match="no request"):
        p.send(m.Reply(zxid=1))
    p.receive_data(connect_frame(CONNECT))
    with pytest.raises(LocalProtocolError):
        p.send(m.Reply(zxid=1))
    p.send(ACCEPT)
    p.receive_data(request_frame(1, m.GetDataRequest(path="/a", watch=False)))
    with pytest.raises(LocalProtocolError, match="needs a GetDataResponse"):
        p.send(m.Reply(zxid=1))
    with pytest.raises(LocalProtocolError):
        p.send(m.Reply(zxid=1, response=m.ExistsResponse(stat=STAT)))
    with pytest.raises(LocalProtocolError):
        p.send(m.Reply(zxid=2**63, response=m.GetDataResponse(data=b"", stat=STAT)))
    assert p.pending == 1
    p.receive_data(request_frame(2, m.MultiRequest(ops=(m.DeleteRequest(path="/a", version=-1),))))
    p.send(m.Reply(zxid=1, response=m.GetDataResponse(data=b"v", stat=STAT)))
    with pytest.raises(LocalProtocolError, match="1 multi ops answered by 2"):
        p.send(m.Reply(zxid=1, response=m.MultiResponse(results=(m.DeleteResult(), m.DeleteResult()))))
    with pytest.raises(LocalProtocolError, match="result cannot be"):
        p.send(m.Reply(zxid=1, response=m.MultiResponse(results=(m.GetDataResponse(data=b"", stat=STAT),))))
    p.send(m.Reply(zxid=1, response=m.MultiResponse(results=(m.DeleteResult(),))))
    assert p.pending == 0


def test_push_writes_a_notification_with_xid_minus_one() -> None:
    p = ZooKeeperProtocol()
    event = m.WatcherEvent(type_=EventType.NodeDataChanged, state=KeeperState.SyncConnected, path="/a")
    with pytest.raises(LocalProtocolError):
        p.push(event)
    p = connected()
    r = unframe(p.push(event))
    assert reply_header(r) == (NOTIFICATION_XID, -1, 0)
    assert read_response(m.WatcherEvent, r) == event
    with pytest.raises(LocalProtocolError):
        p.push(m.PingRequest())


def test_error_bytes_are_none() -> None:
    assert ZooKeeperProtocol().error_bytes(RemoteProtocolError("x")) == b""


def test_close_connection_answers_any_request_with_nothing_and_closes() -> None:
    """A server that is not serving closes a connection without a word (a
    ConnectResponse of timeout 0 would tell the client its session expired)."""
    from synod.zk.protocol import ZooKeeperProtocol

    p = ZooKeeperProtocol()
    (req,) = p.receive_data(connect_frame(m.ConnectRequest(protocolVersion=0, lastZxidSeen=0, timeOut=4000,
                                                           sessionId=7, passwd=bytes(16))))
    assert isinstance(req, m.ConnectRequest)
    assert p.send(m.CloseConnection(reason="not serving")) == b""
    assert p.wants_close
    assert p.receive_data(b"\x00\x00\x00\x08" + bytes(8)) == []   # nothing more is read
