"""ZooKeeper's client port as a sans-IO object (h11's shape).

Spec: ZooKeeper's client-server protocol as the 3.x server reads it
(``NIOServerCnxn`` / ``NettyServerCnxn``, ``ZooKeeperServer.processPacket``
and ``processConnectRequest``, ``ProtocolManager``) and the records of
``zookeeper.jute``; the special xids are ``ClientCnxn``'s. The ZooKeeper
paper (Hunt et al., USENIX ATC 2010) section 4 describes the session and
request flow this carries.

Roles
    :class:`ZooKeeperProtocol` is the server side of one client connection:
    bytes in (:meth:`~ZooKeeperProtocol.receive_data`) -> typed requests of
    :mod:`synod.zk.messages`; replies in (:meth:`~ZooKeeperProtocol.send`)
    -> bytes, in request order; watch notifications
    (:meth:`~ZooKeeperProtocol.push`) -> bytes at once. Nothing here reads
    a socket, a clock, randomness or the environment.

Framing
    Every frame, both ways, is a 4-byte big-endian signed length then that
    many bytes. A length below 0 or over ``frame_bytes_max`` (jute.maxbuffer)
    closes the connection (NIOServerCnxn.readLength); it is refused as soon
    as its 4 bytes arrive, so no more than one frame is ever buffered.

States
    CONNECTING: a fresh connection. If its first 4 bytes spell a
    four-letter word (``ruok``, ``srvr``, ``stat``, ``mntr`` ...; ``stmk``
    then an 8-byte mask), that is a :class:`FourLetterWordRequest`: its
    reply is raw text and then the connection closes, as ZooKeeper answers
    ``echo ruok | nc``. Otherwise the first frame is a
    :class:`ConnectRequest` (readOnly optional) -> SESSION.
    SESSION: each frame is RequestHeader(xid, type) then the body of that
    type. Pings (xid -2), auth (xid -4) and SetWatches (xid -8) are requests
    like the others. A :class:`CloseSessionRequest` or an
    :class:`UnimplementedRequest` (an op code not taken here) -> DONE.
    DONE: nothing more is read; the connection closes once the last reply
    is written (``wants_close``). BROKEN: a malformed frame was met;
    :meth:`receive_data` raised and raises again.

Replies
    Each reply answers the oldest unanswered request; its ReplyHeader
    carries that request's xid (kept here, so a reply's xid is always its
    request's), the reply's zxid and err. A :class:`ConnectResponse` is
    written without a ReplyHeader, with the readOnly byte only for a client
    that sent one. ``wants_close`` turns true after the reply to a
    four-letter word, a closeSession, an unimplemented op, an auth packet
    answered AUTHFAILED, or a ConnectResponse refusing the session
    (``timeOut`` 0), as ZooKeeper closes the connection after each.
    :meth:`send` checks a reply fits its request (the response record of
    the op, as many multi results as ops) -- the same fact checked at both
    ends -- and raises ``LocalProtocolError`` otherwise.

Limits (:mod:`synod.zk.constants`)
    ``frame_bytes_max`` per frame, ``buffer_bytes_max`` per buffer or
    ustring inside one (both jute.maxbuffer, 0xfffff bytes); vector counts
    bounded by the bytes left in the frame. Invariant: ``buffered_bytes <=
    LENGTH_PREFIX_BYTES + frame_bytes_max`` between calls. The gateway
    bounds unanswered requests (GATEWAY_INFLIGHT_REQUESTS_MAX).

Simplifications: a malformed frame closes the connection with nothing
written (ZooKeeper logs and closes too) and the requests parsed from the
same read are dropped with it, where ZooKeeper would have submitted the
earlier ones; a multi mixing reads and writes is such a malformed frame
(ZooKeeper: "Mixing different kind of ops"). Bytes after a body inside its
frame are ignored, as ZooKeeper ignores them.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from synod.core.errors import LocalProtocolError, RemoteProtocolError
from synod.zk import _codec
from synod.zk.constants import (
    BUFFER_BYTES_MAX,
    CONNECT_REQUEST_BYTES_MIN,
    FOUR_LETTER_WORDS,
    FRAME_BYTES_MAX,
    LENGTH_PREFIX_BYTES,
    NOTIFICATION_XID,
    TRACE_MASK_WORD,
    Code,
)
from synod.zk.jute import JuteReader, JuteWriter
from synod.zk.messages import (
    CLOSING_REQUESTS,
    RESPONSE_TYPES,
    AuthPacket,
    CheckResult,
    CloseConnection,
    ConnectRequest,
    ConnectResponse,
    Create2Response,
    CreateResponse,
    DeleteResult,
    ErrorResponse,
    FourLetterWordRequest,
    FourLetterWordResponse,
    GetChildrenResponse,
    GetDataResponse,
    MultiReadRequest,
    MultiRequest,
    MultiResponse,
    Reply,
    SetDataResponse,
    WatcherEvent,
)

__all__ = ["ZooKeeperProtocol"]

_CONNECTING = "connecting"
_SESSION = "session"
_DONE = "done"
_BROKEN = "broken"

_WORDS = {w.encode("ascii") for w in FOUR_LETTER_WORDS}
_TRACE_MASK_BYTES = 8
# Result classes a multi (write ops) and a multiRead may hold.
_MULTI_RESULTS = (CreateResponse, Create2Response, DeleteResult, CheckResult, SetDataResponse, ErrorResponse)
_MULTI_READ_RESULTS = (GetChildrenResponse, GetDataResponse, ErrorResponse)


class ZooKeeperProtocol:
    """Server side of one ZooKeeper client connection (sans-IO).

    Args:
        frame_bytes_max: largest frame a client may send, bytes, its length
            prefix not counted (jute.maxbuffer, 0xfffff).
        buffer_bytes_max: largest buffer or ustring in a request, bytes.

    Attributes:
        wants_close: True once a reply after which ZooKeeper closes the
            connection has been rendered (see the module docstring).
    """

    def __init__(self, *, frame_bytes_max: int = FRAME_BYTES_MAX, buffer_bytes_max: int = BUFFER_BYTES_MAX) -> None:
        assert frame_bytes_max >= CONNECT_REQUEST_BYTES_MIN  # room for the one frame every session starts with
        assert buffer_bytes_max >= 0
        self.frame_bytes_max = frame_bytes_max
        self.buffer_bytes_max = buffer_bytes_max
        # Invariant: len(_buf) <= LENGTH_PREFIX_BYTES + frame_bytes_max between
        # calls (a frame's length is checked as soon as its prefix is here).
        self._buf = bytearray()
        self._state = _CONNECTING
        # One (request, xid) per request handed out and not yet answered, in
        # order; xid is None for the connect request and a four-letter word.
        self._pending: deque[tuple[Any, int | None]] = deque()
        self._read_only_field = False  # the client's ConnectRequest had readOnly
        self._session = False  # a ConnectRequest was read (notifications may be pushed)
        self.wants_close = False

    @property
    def buffered_bytes(self) -> int:
        """Bytes received that are not yet part of a whole frame."""
        return len(self._buf)

    @property
    def pending(self) -> int:
        """Requests handed out by :meth:`receive_data` and not yet answered."""
        return len(self._pending)

    @property
    def pending_xids(self) -> list[int | None]:
        """The xids of the unanswered requests, oldest first (None: the
        ConnectRequest or a four-letter word), for traces."""
        return [xid for _, xid in self._pending]

    # -- requests ----------------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Any]:
        """Feed bytes read from the client; returns every request they
        complete, in order (:data:`synod.zk.messages.Request` records).

        Raises:
            RemoteProtocolError: a frame is malformed or over the limits (the
                gateway closes the connection); raised again on every later
                call.
        """
        if self._state == _BROKEN:
            raise RemoteProtocolError("the connection already sent a malformed frame")
        if self._state == _DONE:
            return []
        buf = self._buf
        buf += data
        out: list[Any] = []
        pos = 0
        try:
            while self._state != _DONE and len(buf) - pos >= LENGTH_PREFIX_BYTES:
                if self._state == _CONNECTING and bytes(buf[pos:pos + 4]) in _WORDS:
                    if not self._four_letter_word(buf, pos, out):
                        break
                    continue
                length = int.from_bytes(buf[pos:pos + 4], "big", signed=True)
                if length < 0 or length > self.frame_bytes_max:
                    raise RemoteProtocolError(f"frame length {length} is outside 0..{self.frame_bytes_max} bytes")
                end = pos + LENGTH_PREFIX_BYTES + length
                if end > len(buf):
                    break
                out.append(self._frame(bytes(buf[pos + LENGTH_PREFIX_BYTES:end])))
                pos = end
        except RemoteProtocolError:
            self._state = _BROKEN
            buf.clear()
            raise
        if self._state == _DONE:
            buf.clear()
        else:
            del buf[:pos]
        assert len(buf) <= LENGTH_PREFIX_BYTES + self.frame_bytes_max
        return out

    def _four_letter_word(self, buf: bytearray, pos: int, out: list[Any]) -> bool:
        """Parse a four-letter word at ``pos``; False: stmk's mask is not all here."""
        word = bytes(buf[pos:pos + 4]).decode("ascii")
        mask = 0
        if word == TRACE_MASK_WORD:
            if len(buf) - pos < 4 + _TRACE_MASK_BYTES:
                return False
            mask = int.from_bytes(buf[pos + 4:pos + 4 + _TRACE_MASK_BYTES], "big", signed=True)
        req = FourLetterWordRequest(word=word, traceMask=mask)
        self._pending.append((req, None))
        out.append(req)
        self._state = _DONE
        return True

    def _frame(self, body: bytes) -> Any:
        r = JuteReader(body, buffer_bytes_max=self.buffer_bytes_max)
        if self._state == _CONNECTING:
            req, self._read_only_field = _codec.read_connect_request(r)
            self._state = _SESSION
            self._session = True
            self._pending.append((req, None))
            return req
        xid = r.read_int("RequestHeader.xid")
        op = r.read_int("RequestHeader.type")
        req = _codec.read_request(op, r)
        if isinstance(req, CLOSING_REQUESTS):
            self._state = _DONE
        self._pending.append((req, xid))
        return req

    # -- replies -----------------------------------------------------------------------------------

    def send(self, reply: Any) -> bytes:
        """Render the reply to the oldest unanswered request.

        Args:
            reply: a :class:`ConnectResponse` (to the ConnectRequest), a
                :class:`FourLetterWordResponse` (to a four-letter word), else
                a :class:`Reply` whose ``response`` is the op's response
                record (None for ops without one, or with an error); or, to
                any request, :class:`CloseConnection`: nothing is written
                and the connection closes (``wants_close``).

        Returns:
            The bytes to write: a frame, or a four-letter word's raw text.

        Raises:
            LocalProtocolError: no request awaits a reply, or the reply does
                not fit it (kind, response record, number of multi results,
                a field out of its jute range).
        """
        if not self._pending:
            raise LocalProtocolError("send() with no request awaiting a reply")
        if type(reply) is CloseConnection:   # close without a word (any request)
            self._pending.popleft()
            self._state = _DONE
            self.wants_close = True
            return b""
        req, xid = self._pending[0]
        w = JuteWriter(buffer_bytes_max=self.buffer_bytes_max)
        if isinstance(req, ConnectRequest):
            _expect(reply, ConnectResponse, req)
            _codec.write_connect_response(w, reply, read_only_field=self._read_only_field)
            closing = reply.timeOut <= 0
            out = _codec.frame(w.getvalue())
        elif isinstance(req, FourLetterWordRequest):
            _expect(reply, FourLetterWordResponse, req)
            closing = True
            out = reply.text.encode("utf-8")
        else:
            _expect(reply, Reply, req)
            _check_response(req, reply)
            assert xid is not None
            w.write_int(xid)
            w.write_long(reply.zxid)
            w.write_int(reply.err)
            if reply.response is not None:
                _codec.write_response(w, reply.response)
            closing = isinstance(req, CLOSING_REQUESTS) or (isinstance(req, AuthPacket)
                                                            and reply.err == Code.AUTHFAILED)
            out = _codec.frame(w.getvalue())
        self._pending.popleft()
        if closing:
            self.wants_close = True
        return out

    def error_bytes(self, error: Exception) -> bytes:
        """Bytes written before a protocol-error close: none (ZooKeeper closes
        a connection that sent a malformed packet without a word)."""
        return b""

    def push(self, msg: Any) -> bytes:
        """A watch notification: ReplyHeader(xid -1, zxid -1, err 0) then the
        WatcherEvent, as ZooKeeper 3.8's ``NIOServerCnxn.process`` writes it
        (newer servers put the event's zxid in the header; clients ignore it).
        Or :class:`CloseConnection`: nothing is written and the connection
        closes (``wants_close``), requests still unanswered with it.

        Raises:
            LocalProtocolError: ``msg`` is not a :class:`WatcherEvent`, or the
                connection has no session (no ConnectRequest was read).
        """
        if type(msg) is CloseConnection:   # the server closes the connection (its session closed)
            self._state = _DONE
            self.wants_close = True
            return b""
        if not isinstance(msg, WatcherEvent):
            raise LocalProtocolError(f"push() takes a WatcherEvent or CloseConnection, not {type(msg).__name__}")
        if not self._session:
            raise LocalProtocolError("push() before the connection's ConnectRequest")
        w = JuteWriter()
        w.write_int(NOTIFICATION_XID)
        w.write_long(-1)
        w.write_int(Code.OK)
        _codec.write_response(w, msg)
        return _codec.frame(w.getvalue())


def _expect(reply: Any, cls: type, req: Any) -> None:
    if not isinstance(reply, cls):
        raise LocalProtocolError(f"a {type(req).__name__} is answered by a {cls.__name__}, not {type(reply).__name__}")


def _check_response(req: Any, reply: Reply) -> None:
    """The reply's response record is the one the request's op returns."""
    want = RESPONSE_TYPES[type(req)]
    rsp = reply.response
    if rsp is None:
        if reply.err == Code.OK and want is not None:
            raise LocalProtocolError(f"a successful {type(req).__name__} needs a {want.__name__}")
        return
    if want is None or not isinstance(rsp, want):
        raise LocalProtocolError(f"{type(req).__name__} is not answered by a {type(rsp).__name__}")
    if isinstance(rsp, MultiResponse):
        assert isinstance(req, MultiRequest | MultiReadRequest)
        allowed = _MULTI_RESULTS if isinstance(req, MultiRequest) else _MULTI_READ_RESULTS
        for result in rsp.results:
            if not isinstance(result, allowed):
                raise LocalProtocolError(f"a {type(req).__name__} result cannot be a {type(result).__name__}")
        if len(rsp.results) != len(req.ops) and not any(isinstance(x, ErrorResponse) for x in rsp.results):
            raise LocalProtocolError(f"{len(req.ops)} multi ops answered by {len(rsp.results)} results")
