"""Request bodies and reply bodies <-> typed records (both directions).

The server side (:class:`~synod.zk.protocol.ZooKeeperProtocol`) uses
:func:`read_request` and :func:`write_response`; the client side
(:func:`request_frame`, :func:`read_response`) serves synod's own clients
and the round-trip tests. Multi bodies follow ZooKeeper's
``MultiOperationRecord`` and ``MultiResponse``: each op or result behind a
MultiHeader (type, done, err), closed by a header with ``done`` true
(ZooKeeper writes ``(-1, true, -1)``).
"""

from __future__ import annotations

import struct
from typing import Any

from synod.core.errors import LocalProtocolError, RemoteProtocolError
from synod.zk.constants import BUFFER_BYTES_MAX, OpCode
from synod.zk.jute import JuteReader, JuteWriter, read_record, write_record
from synod.zk.messages import (
    MULTI_OPS,
    MULTI_READ_OPS,
    MULTI_RESULT_OPS,
    OP_REQUESTS,
    REQUEST_OPS,
    CheckResult,
    ConnectRequest,
    ConnectResponse,
    DeleteResult,
    ErrorResponse,
    MultiReadRequest,
    MultiRequest,
    MultiResponse,
    UnimplementedRequest,
)

__all__ = [
    "read_request", "write_request", "request_frame", "connect_frame", "read_connect_request",
    "write_connect_response", "read_connect_response", "write_response", "read_response", "frame",
]

_PREFIX = struct.Struct(">i")
_RESULT_TYPES = {op: cls for cls, op in MULTI_RESULT_OPS.items()}
_EMPTY_RESULTS = (DeleteResult, CheckResult)
_MULTI_OP_CODES = {cls: op for table in (MULTI_OPS, MULTI_READ_OPS) for op, cls in table.items()}


def frame(body: bytes) -> bytes:
    """``body`` behind its 4-byte big-endian length."""
    return _PREFIX.pack(len(body)) + body


# -- requests ---------------------------------------------------------------------------------------


def read_connect_request(r: JuteReader) -> tuple[ConnectRequest, bool]:
    """A ConnectRequest, and whether its optional ``readOnly`` was there
    (ProtocolManager.deserializeConnectRequest: older clients omit it).

    Raises:
        RemoteProtocolError: the record is short or malformed.
    """
    protocol_version = r.read_int("ConnectRequest.protocolVersion")
    last_zxid_seen = r.read_long("ConnectRequest.lastZxidSeen")
    time_out = r.read_int("ConnectRequest.timeOut")
    session_id = r.read_long("ConnectRequest.sessionId")
    passwd = r.read_buffer("ConnectRequest.passwd")
    has_read_only = r.remaining > 0
    read_only = r.read_bool("ConnectRequest.readOnly") if has_read_only else False
    return ConnectRequest(protocolVersion=protocol_version, lastZxidSeen=last_zxid_seen, timeOut=time_out,
                          sessionId=session_id, passwd=passwd, readOnly=read_only), has_read_only


def _read_multi(r: JuteReader, ops: dict[int, type], name: str) -> tuple[Any, ...]:
    out: list[Any] = []
    while True:  # ends: every round reads at least one 9-byte MultiHeader from a bounded frame
        op = r.read_int("MultiHeader.type")
        done = r.read_bool("MultiHeader.done")
        r.read_int("MultiHeader.err")
        if done:
            return tuple(out)
        cls = ops.get(op)
        if cls is None:
            raise RemoteProtocolError(f"{name}: op type {op} is not allowed in it")
        out.append(read_record(r, cls))


def read_request(op: int, r: JuteReader) -> Any:
    """The body of a request of type ``op`` (after its RequestHeader). An op
    code this codec does not take reads as :class:`UnimplementedRequest`
    (its body is not looked at). Bytes after the body are ignored, as
    ZooKeeper's ``ByteBufferInputStream`` record reads do.

    Raises:
        RemoteProtocolError: the body is short or malformed; a multi holds an
            op of the wrong kind (a read in a multi, a write in a multiRead).
    """
    cls = OP_REQUESTS.get(op)
    if cls is None:
        return UnimplementedRequest(type_=op)
    if cls is MultiRequest:
        return MultiRequest(ops=_read_multi(r, MULTI_OPS, "multi"))
    if cls is MultiReadRequest:
        return MultiReadRequest(ops=_read_multi(r, MULTI_READ_OPS, "multiRead"))
    return read_record(r, cls)


def write_request(w: JuteWriter, req: Any) -> int:
    """Write a request's body; returns its op code (for the RequestHeader).

    Raises:
        LocalProtocolError: not a request that has an op code, or a field out
            of its jute range.
    """
    if isinstance(req, UnimplementedRequest):
        return req.type_
    op = REQUEST_OPS.get(type(req))
    if op is None:
        raise LocalProtocolError(f"{type(req).__name__} is not a request with an op code")
    if isinstance(req, MultiRequest | MultiReadRequest):
        allowed = MULTI_OPS if isinstance(req, MultiRequest) else MULTI_READ_OPS
        for item in req.ops:
            if type(item) not in allowed.values():
                raise LocalProtocolError(f"{type(item).__name__} cannot be in a {type(req).__name__}")
            w.write_int(_MULTI_OP_CODES[type(item)])
            w.write_bool(False)
            w.write_int(-1)
            write_record(w, item)
        w.write_int(-1)
        w.write_bool(True)
        w.write_int(-1)
    else:
        write_record(w, req)
    return op


def request_frame(xid: int, req: Any, *, buffer_bytes_max: int = BUFFER_BYTES_MAX) -> bytes:
    """A whole request as a client sends it: length, RequestHeader(xid,
    type), body."""
    body = JuteWriter(buffer_bytes_max=buffer_bytes_max)
    op = write_request(body, req)
    head = JuteWriter()
    head.write_int(xid)
    head.write_int(op)
    return frame(head.getvalue() + body.getvalue())


def connect_frame(req: ConnectRequest, *, read_only_field: bool = True) -> bytes:
    """A ConnectRequest as a client sends it (``read_only_field`` False: as a
    pre-3.4 client, without the readOnly byte)."""
    w = JuteWriter()
    w.write_int(req.protocolVersion)
    w.write_long(req.lastZxidSeen)
    w.write_int(req.timeOut)
    w.write_long(req.sessionId)
    w.write_buffer(req.passwd)
    if read_only_field:
        w.write_bool(req.readOnly)
    return frame(w.getvalue())


# -- replies ----------------------------------------------------------------------------------------


def write_connect_response(w: JuteWriter, rsp: ConnectResponse, *, read_only_field: bool) -> None:
    """A ConnectResponse, with its readOnly byte only for a client that sent
    one (ProtocolManager.serializeConnectResponse)."""
    w.write_int(rsp.protocolVersion)
    w.write_int(rsp.timeOut)
    w.write_long(rsp.sessionId)
    w.write_buffer(rsp.passwd)
    if read_only_field:
        w.write_bool(rsp.readOnly)


def read_connect_response(r: JuteReader) -> ConnectResponse:
    """A ConnectResponse, its readOnly byte optional."""
    protocol_version = r.read_int("ConnectResponse.protocolVersion")
    time_out = r.read_int("ConnectResponse.timeOut")
    session_id = r.read_long("ConnectResponse.sessionId")
    passwd = r.read_buffer("ConnectResponse.passwd")
    read_only = r.read_bool("ConnectResponse.readOnly") if r.remaining else False
    return ConnectResponse(protocolVersion=protocol_version, timeOut=time_out, sessionId=session_id, passwd=passwd,
                           readOnly=read_only)


def write_response(w: JuteWriter, rsp: Any) -> None:
    """A response record (a multi's results behind their MultiHeaders).

    Raises:
        LocalProtocolError: a field out of its jute range, or a multi result
            of a class a multi cannot hold.
    """
    if not isinstance(rsp, MultiResponse):
        write_record(w, rsp)
        return
    for result in rsp.results:
        op = MULTI_RESULT_OPS.get(type(result))
        if op is None:
            raise LocalProtocolError(f"{type(result).__name__} cannot be a multi result")
        w.write_int(op)
        w.write_bool(False)
        w.write_int(result.err if isinstance(result, ErrorResponse) else 0)
        if not isinstance(result, _EMPTY_RESULTS):
            write_record(w, result)
    w.write_int(OpCode.error)
    w.write_bool(True)
    w.write_int(-1)


def read_response(cls: type, r: JuteReader) -> Any:
    """A response record of class ``cls`` (client side).

    Raises:
        RemoteProtocolError: the bytes are short or malformed.
    """
    if cls is not MultiResponse:
        return read_record(r, cls)
    results: list[Any] = []
    while True:
        op = r.read_int("MultiHeader.type")
        done = r.read_bool("MultiHeader.done")
        r.read_int("MultiHeader.err")
        if done:
            return MultiResponse(results=tuple(results))
        result_cls = _RESULT_TYPES.get(op)
        if result_cls is None:
            raise RemoteProtocolError(f"multi result of type {op}")
        results.append(result_cls() if result_cls in _EMPTY_RESULTS else read_record(r, result_cls))
