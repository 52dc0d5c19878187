"""bitcoind's JSON-RPC port as a sans-IO protocol object (h11's shape),
and the node's side of it.

Spec: Bitcoin Core's HTTP server and JSON-RPC dispatch (``httpserver.cpp``,
``httprpc.cpp``, ``rpc/request.cpp``) as its RPC docs describe them: HTTP/1.1
``POST`` of a JSON-RPC 1.0/1.1 or 2.0 request object (or a batch, a JSON
array of them), HTTP Basic authentication against ``rpcauth``
(``user:salt$hmac``, the HMAC-SHA256 of the password keyed by the salt: the
password itself is in no config), error codes of ``rpc/protocol.h``. The
methods (:mod:`synod.bitcoin._rpc_methods`) are bitcoind's names with its
arguments and result fields.

Roles
    :class:`RpcProtocol` is one HTTP connection to a node's RPC port (the
    runtime's client gateway, DESIGN.md section 8): bytes in -> one
    :class:`RpcRequest` per call (a batch of n gives n, in order) -> the
    node answers each exactly once with an :class:`RpcReply`
    (:func:`answer_rpc`) -> bytes out, one HTTP response per HTTP request
    (a batch's once its last call is answered). Nothing here reads a
    socket, a clock or randomness.

HTTP
    ``h11`` parses requests (strictly: framing, header sizes, chunked
    bodies). Responses are rendered here: the node answers a request after
    h11 would already have to parse the next one (pipelining), so h11 is
    told of a placeholder response at once and moves to its next cycle.
    A request that is not HTTP, not ``POST``, over ``body_bytes_max``,
    unauthenticated, not JSON, or not a request object is answered by
    :meth:`RpcProtocol.error_bytes` (400, 405, 413, 401, 500 with -32700,
    400 with -32600) and the connection closes; the node runs on.

States
    OPEN: reading requests. CLOSING: the client asked ``Connection: close``
    (or spoke HTTP/1.0): after the response to that request ``wants_close``
    is set. BROKEN: a malformed request raised :class:`RpcHttpError` (a
    ``RemoteProtocolError``), raised again on every later call.

Limits
    Headers at most ``RPC_HEADER_BYTES_MAX``; a body at most
    ``body_bytes_max``; a batch at most ``RPC_BATCH_MAX`` calls; HTTP
    requests awaiting their response at most ``RPC_PIPELINED_MAX``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections import deque
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import h11
import msgspec

from synod.core.codec import Message
from synod.core.errors import LocalProtocolError, RemoteProtocolError

if TYPE_CHECKING:
    from synod.bitcoin.node import BitcoinNode
    from synod.core import Context

__all__ = ["RpcProtocol", "RpcRequest", "RpcReply", "RpcHttpError", "answer_rpc", "rpc_auth_line", "Amount",
           "RPC_PARSE_ERROR", "RPC_INVALID_REQUEST", "RPC_METHOD_NOT_FOUND", "RPC_MISC_ERROR",
           "RPC_INVALID_ADDRESS_OR_KEY", "RPC_INVALID_PARAMETER", "RPC_DESERIALIZATION_ERROR",
           "RPC_VERIFY_ERROR", "RPC_VERIFY_REJECTED", "RPC_VERIFY_ALREADY_IN_CHAIN", "RPC_TYPE_ERROR",
           "RPC_CLIENT_NODE_ALREADY_ADDED", "RPC_CLIENT_INVALID_IP_OR_SUBNET"]

# bitcoind's rpc/protocol.h
RPC_INVALID_REQUEST = -32600
RPC_METHOD_NOT_FOUND = -32601
RPC_INVALID_PARAMS = -32602
RPC_PARSE_ERROR = -32700
RPC_MISC_ERROR = -1
RPC_TYPE_ERROR = -3
RPC_INVALID_ADDRESS_OR_KEY = -5
RPC_INVALID_PARAMETER = -8
RPC_DESERIALIZATION_ERROR = -22
RPC_VERIFY_ERROR = -25
RPC_VERIFY_REJECTED = -26
RPC_VERIFY_ALREADY_IN_CHAIN = -27
RPC_CLIENT_NODE_ALREADY_ADDED = -23
RPC_CLIENT_INVALID_IP_OR_SUBNET = -30

RPC_HEADER_BYTES_MAX = 16 * 1024          # request line and headers
RPC_BODY_BYTES_MAX = 8 * 1024 * 1024      # one request's body (a 4 MB block as hex fits)
RPC_BATCH_MAX = 256                       # calls in one batch
RPC_PIPELINED_MAX = 64                    # HTTP requests read and not yet answered
_STATUS_TEXT = {200: "OK", 204: "No Content", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
                405: "Method Not Allowed", 413: "Payload Too Large", 500: "Internal Server Error"}


class Amount(Decimal):
    """An amount of BTC, rendered in JSON as bitcoind prints one: fixed
    point with 8 decimals (``0.00000001``, not ``1E-8``)."""

    __slots__ = ()


def _render(obj: Any) -> Any:
    if isinstance(obj, Amount):
        return msgspec.Raw(format(obj, ".8f").encode())
    raise TypeError(f"{type(obj).__name__} is not JSON")


_ENCODE = msgspec.json.Encoder(decimal_format="number", enc_hook=_render)


class RpcRequest(Message, tag="btc.RpcRequest"):
    """One JSON-RPC call: ``method`` and its ``params`` as JSON text (an
    array, or an object of named arguments)."""

    method: str
    params_json: str = "[]"


class RpcReply(Message, tag="btc.RpcReply"):
    """The answer to one call: ``result_json`` (JSON text) when
    ``error_code`` is 0, else bitcoind's error code and message."""

    result_json: str = "null"
    error_code: int = 0
    error_message: str = ""


class RpcHttpError(RemoteProtocolError):
    """The client sent something the RPC port refuses; ``response`` is the
    HTTP response written before the connection closes."""

    def __init__(self, status: int, detail: str, body: bytes = b"", *, headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.response = _http_response(status, body, keep_alive=False, headers=headers)


def rpc_auth_line(user: str, salt_hex: str, password: str) -> str:
    """bitcoind's ``rpcauth`` value for ``user``/``password``:
    ``user:salt$hex(HMAC-SHA256(key=salt, msg=password))``."""
    digest = hmac.new(salt_hex.encode(), password.encode(), hashlib.sha256).hexdigest()
    return f"{user}:{salt_hex}${digest}"


def _http_response(status: int, body: bytes, *, keep_alive: bool, headers: tuple[tuple[str, str], ...] = ()) -> bytes:
    lines = [f"HTTP/1.1 {status} {_STATUS_TEXT.get(status, 'Error')}"]
    if body:
        lines.append("Content-Type: application/json")
    lines.append(f"Content-Length: {len(body)}")
    lines += [f"{k}: {v}" for k, v in headers]
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _error_object(code: int, message: str) -> bytes:
    return _ENCODE.encode({"code": code, "message": message})


class _HttpCall(msgspec.Struct, kw_only=True):
    """One HTTP request's calls: their JSON-RPC ids and versions, the
    replies so far, whether it was a batch and whether the connection
    ends after it."""

    ids: list[bytes]              # each call's id, as JSON text (b"" for a 2.0 notification)
    v2: list[bool]
    batch: bool
    keep_alive: bool
    replies: list[bytes] = msgspec.field(default_factory=list)
    statuses: list[int] = msgspec.field(default_factory=list)


class RpcProtocol:
    """One JSON-RPC HTTP connection (sans-IO).

    Args:
        rpc_auth: bitcoind's ``rpcauth`` (``user:salt$hmac``); empty: every
            request is refused (401).
        body_bytes_max: the largest request body accepted, bytes.

    Attributes:
        wants_close: True once the response to a ``Connection: close``
            request was rendered.

    Raises:
        LocalProtocolError: ``rpc_auth`` is not ``user:salt$hex``.
    """

    def __init__(self, rpc_auth: str, *, body_bytes_max: int = RPC_BODY_BYTES_MAX) -> None:
        self._auth = _parse_rpc_auth(rpc_auth)
        self.body_bytes_max = body_bytes_max
        self._conn = h11.Connection(h11.SERVER, max_incomplete_event_size=RPC_HEADER_BYTES_MAX)
        self._request: h11.Request | None = None
        self._body = bytearray()
        self._calls: deque[_HttpCall] = deque()
        self._error: RpcHttpError | None = None
        self._closing = False          # no request is read after a Connection: close one
        self.wants_close = False

    @property
    def pending(self) -> int:
        """Calls handed out by :meth:`receive_data` and not yet answered."""
        return sum(len(c.ids) - len(c.replies) for c in self._calls)

    def receive_data(self, data: bytes) -> list[RpcRequest]:
        """Feed bytes read from the client; returns the calls of every
        request they complete, in order. Each must be answered once with
        :meth:`send`.

        Raises:
            RpcHttpError (a RemoteProtocolError): a malformed, oversize,
                unauthenticated or non-JSON-RPC request; raised again on
                every later call.
        """
        if self._error is not None:
            raise self._error
        if self._closing:
            return []
        try:
            return self._receive(data)
        except RpcHttpError as e:
            self._error = e
            raise

    def _receive(self, data: bytes) -> list[RpcRequest]:
        self._conn.receive_data(data)
        out: list[RpcRequest] = []
        while not self._closing:
            try:
                event = self._conn.next_event()
            except h11.RemoteProtocolError as e:
                raise RpcHttpError(400, f"malformed HTTP: {e}") from None
            if event is h11.NEED_DATA or event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
                break
            if isinstance(event, h11.Request):
                self._start(event)
            elif isinstance(event, h11.Data):
                if len(self._body) + len(event.data) > self.body_bytes_max:
                    raise RpcHttpError(413, f"a body over {self.body_bytes_max} bytes")
                self._body += event.data
            elif isinstance(event, h11.EndOfMessage):
                out += self._finish()
        return out

    def _start(self, request: h11.Request) -> None:
        if request.method != b"POST":
            raise RpcHttpError(405, f"{request.method.decode('latin-1')}: JSON-RPC is POST only")
        for name, value in request.headers:
            if name == b"content-length" and int(value) > self.body_bytes_max:
                raise RpcHttpError(413, f"a body of {int(value)} bytes (at most {self.body_bytes_max})")
        if not self._authorized(request):
            raise RpcHttpError(401, "bad or missing credentials", headers=(("WWW-Authenticate", 'Basic realm="jsonrpc"'),))
        if len(self._calls) >= RPC_PIPELINED_MAX:
            raise RpcHttpError(400, f"over {RPC_PIPELINED_MAX} requests awaiting their responses")
        self._request = request
        self._body.clear()

    def _authorized(self, request: h11.Request) -> bool:
        if self._auth is None:
            return False
        user, salt, digest = self._auth
        for name, value in request.headers:
            if name != b"authorization":
                continue
            scheme, _, token = value.partition(b" ")
            if scheme.lower() != b"basic":
                return False
            try:
                given_user, sep, password = base64.b64decode(token.strip(), validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return False
            mac = hmac.new(salt.encode(), password.encode(), hashlib.sha256).hexdigest()
            return bool(sep) and hmac.compare_digest(given_user.encode(), user.encode()) & hmac.compare_digest(mac, digest)
        return False

    def _finish(self) -> list[RpcRequest]:
        body, self._body = bytes(self._body), bytearray()
        # A placeholder response lets h11 parse the next request now (the real one is rendered in send()).
        self._conn.send(h11.Response(status_code=200, headers=[("Content-Length", "0")]))
        self._conn.send(h11.EndOfMessage())
        keep_alive = self._conn.our_state is h11.DONE and self._conn.their_state is h11.DONE
        if keep_alive:
            self._conn.start_next_cycle()
        else:
            self._closing = True
        try:
            doc = msgspec.json.decode(body)
        except msgspec.DecodeError:
            raise RpcHttpError(500, "parse error", b'{"result":null,"error":' + _error_object(RPC_PARSE_ERROR, "Parse error")
                               + b',"id":null}') from None
        batch = isinstance(doc, list)
        items = doc if batch else [doc]
        if batch and not 1 <= len(items) <= RPC_BATCH_MAX:
            raise _invalid_request(f"a batch of 1 to {RPC_BATCH_MAX} calls, not {len(items)}")
        call = _HttpCall(ids=[], v2=[], batch=batch, keep_alive=keep_alive)
        requests = [self._parse_call(item, call) for item in items]
        self._calls.append(call)
        return requests

    @staticmethod
    def _parse_call(item: Any, call: _HttpCall) -> RpcRequest:
        if not isinstance(item, dict):
            raise _invalid_request("a call is a JSON object")
        method, params = item.get("method"), item.get("params", [])
        if not isinstance(method, str):
            raise _invalid_request("Method must be a string")
        if params is None:
            params = []
        if not isinstance(params, list | dict):
            raise _invalid_request("Params must be an array or object")
        v2 = item.get("jsonrpc") == "2.0"
        call.ids.append(b"" if v2 and "id" not in item else _ENCODE.encode(item.get("id")))
        call.v2.append(v2)
        return RpcRequest(method=method, params_json=_ENCODE.encode(params).decode())

    def send(self, reply: RpcReply) -> bytes:
        """Take the answer to the oldest unanswered call; returns the HTTP
        response once its request's every call is answered (else b"").

        Raises:
            LocalProtocolError: no call awaits a reply, or ``reply`` is not
                an :class:`RpcReply`.
        """
        if not self._calls:
            raise LocalProtocolError("send() with no call awaiting a reply")
        if not isinstance(reply, RpcReply):
            raise LocalProtocolError(f"an RPC call is answered by an RpcReply, not {type(reply).__name__}")
        call = self._calls[0]
        i = len(call.replies)
        call.replies.append(_envelope(reply, call.ids[i], call.v2[i]))
        call.statuses.append(_legacy_status(reply.error_code) if not call.v2[i] else 200)
        if len(call.replies) < len(call.ids):
            return b""
        self._calls.popleft()
        if not call.keep_alive:
            self.wants_close = True
        if call.batch:
            parts = [r for r, i_d in zip(call.replies, call.ids, strict=True) if i_d != b""]
            return _http_response(200, b"[" + b",".join(parts) + b"]", keep_alive=call.keep_alive)
        if call.ids[0] == b"":
            return _http_response(204, b"", keep_alive=call.keep_alive)
        return _http_response(call.statuses[0], call.replies[0], keep_alive=call.keep_alive)

    def error_bytes(self, error: Exception) -> bytes:
        """The HTTP response written before a protocol-error close."""
        if isinstance(error, RpcHttpError):
            return error.response
        return _http_response(400, b"", keep_alive=False)


def _invalid_request(detail: str) -> RpcHttpError:
    return RpcHttpError(400, detail, b'{"result":null,"error":' + _error_object(RPC_INVALID_REQUEST, detail) + b',"id":null}')


def _legacy_status(code: int) -> int:
    """HTTP status of a JSON-RPC 1.x reply as bitcoind sets it."""
    if code == 0:
        return 200
    return {RPC_INVALID_REQUEST: 400, RPC_METHOD_NOT_FOUND: 404}.get(code, 500)


def _envelope(reply: RpcReply, id_json: bytes, v2: bool) -> bytes:
    id_part = b',"id":' + (id_json or b"null") + b"}"
    error = _error_object(reply.error_code, reply.error_message) if reply.error_code else b""
    if v2:
        if error:
            return b'{"jsonrpc":"2.0","error":' + error + id_part
        return b'{"jsonrpc":"2.0","result":' + reply.result_json.encode() + id_part
    if error:
        return b'{"result":null,"error":' + error + id_part
    return b'{"result":' + reply.result_json.encode() + b',"error":null' + id_part


def _parse_rpc_auth(rpc_auth: str) -> tuple[str, str, str] | None:
    if not rpc_auth:
        return None
    user, sep, rest = rpc_auth.partition(":")
    salt, sep2, digest = rest.partition("$")
    if not (sep and sep2 and user and salt and len(digest) == 64):
        raise LocalProtocolError("rpc_auth: user:salt$hex-hmac-sha256 (bitcoind's rpcauth)")
    return user, salt, digest.lower()


# -- the node's side -------------------------------------------------------------------------------------------------


class RpcFailure(Exception):
    """A method's expected failure, as bitcoind reports it (code, message)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def answer_rpc(node: BitcoinNode, ctx: Context, request: RpcRequest) -> RpcReply:
    """The node's answer to one call (the methods of
    :mod:`synod.bitcoin._rpc_methods`); never raises for a client's input."""
    from synod.bitcoin._rpc_methods import METHODS

    entry = METHODS.get(request.method)
    if entry is None:
        return RpcReply(error_code=RPC_METHOD_NOT_FOUND, error_message="Method not found")
    fn, names = entry
    try:
        params = msgspec.json.decode(request.params_json)
        if isinstance(params, dict):
            unknown = [k for k in params if k not in names]
            if unknown:
                raise RpcFailure(RPC_INVALID_PARAMETER, f"Unknown named parameter {unknown[0]}")
            params = [params.get(n) for n in names]
            while params and params[-1] is None:
                params.pop()
        if not isinstance(params, list):
            raise RpcFailure(RPC_INVALID_PARAMS, "Params must be an array or object")
        if len(params) > len(names):
            raise RpcFailure(RPC_MISC_ERROR, f"{request.method}: at most {len(names)} arguments")
        result = fn(node, ctx, params)
    except RpcFailure as e:
        return RpcReply(error_code=e.code, error_message=e.message)
    except msgspec.DecodeError:
        return RpcReply(error_code=RPC_PARSE_ERROR, error_message="Parse error")
    return RpcReply(result_json=_ENCODE.encode(result).decode())
