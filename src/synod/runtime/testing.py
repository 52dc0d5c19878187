"""A tiny node system for testing the runtime: echo, a durable counter,
heartbeats and relayed calls.

Roles: every node is alike. State: ``value`` (the counter) and ``boots``
(how many times this node has started) are durable, in one checksummed
record (:mod:`synod.core.records`) written atomically to ``state`` and synced
before any reply that reports them. ``pings_from`` (heartbeats received per
peer) is volatile.

Inputs:

- ``Echo(text)`` -> ``EchoReply``;
- ``Incr(amount)`` -> ``Counter`` once the new value is durable;
- ``GetStats`` -> ``Stats``;
- ``Ping`` from peers every ``ping_interval_ms`` (param, default 50);
- ``Relay(dst, text, timeout_ms)`` -> ``Ack`` at once, then the node calls
  ``dst`` with ``Echo`` (``ctx.call``) and sends ``RelayResult`` (the reply,
  or None on timeout) to the requester as a plain message;
- ``Exit(code)`` -> ``Ack``, then ``ctx.exit(code)``;
- ``Boom`` -> the handler raises (a crashing node).
- ``Invalid(text)`` -> the handler queues a reply, a ping and a timer, then
  raises ``RemoteProtocolError`` (an impossible message: the host must drop
  those effects and the sender's connection, and run on).

Clients of the ``line`` protocol (:class:`LineProtocol`, served on a
node's ``client_ports``, see synod.runtime.gateway) send text lines; each
reaches the node as a ``Line`` request:

- ``echo <text>`` -> ``<text>`` at once;
- ``later <ms> <text>`` -> ``<text>`` after ``ms`` (answered with
  ``ctx.reply_to``, so later requests may be answered first: the gateway
  must still write replies in request order);
- ``clients`` -> the number of line clients the node has heard open and not
  close; ``protocol-errors`` -> how many of them closed for malformed
  input; ``push <text>`` -> ``ok``, then a pushed line ``! <text>``;
  ``bad`` -> the handler raises RemoteProtocolError (that client is closed);
  ``quit`` -> ``bye`` and the connection closes.

Invariant: a ``Counter`` reply is never sent before its value is on disk.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any, TypeVar

from synod.core.clients import ClientClosed, ClientOpened
from synod.core.codec import Message, decode, encode
from synod.core.errors import RemoteProtocolError
from synod.core.node import Context, Node, ReplyHandle
from synod.core.params import Params, parse_params
from synod.core.records import pack_record, scan_records

__all__ = [
    "Echo", "EchoReply", "Incr", "Counter", "GetStats", "Stats", "Ping", "Relay", "RelayResult",
    "Exit", "Boom", "Invalid", "Ack", "EchoNode", "make_node", "FACTORY", "wait_until", "authenticated_socket",
]

_T = TypeVar("_T")

FACTORY = "synod.runtime.testing:make_node"
STATE_FILE = "state"


class Echo(Message, tag="runtime.test.Echo"):
    text: str


class EchoReply(Message, tag="runtime.test.EchoReply"):
    node_id: str
    text: str


class Incr(Message, tag="runtime.test.Incr"):
    amount: int


class Counter(Message, tag="runtime.test.Counter"):
    node_id: str
    value: int


class GetStats(Message, tag="runtime.test.GetStats"):
    pass


class Stats(Message, tag="runtime.test.Stats"):
    node_id: str
    value: int
    boots: int
    pings_from: dict[str, int]


class Ping(Message, tag="runtime.test.Ping"):
    seq: int


class Relay(Message, tag="runtime.test.Relay"):
    dst: str
    text: str
    timeout_ms: float


class RelayResult(Message, tag="runtime.test.RelayResult"):
    text: str
    reply: EchoReply | None
    elapsed_ms: float


class Exit(Message, tag="runtime.test.Exit"):
    code: int


class Boom(Message, tag="runtime.test.Boom"):
    pass


class Invalid(Message, tag="runtime.test.Invalid"):
    text: str


class Ack(Message, tag="runtime.test.Ack"):
    pass


class Line(Message, tag="runtime.test.Line"):
    text: str


class LineProtocol:
    """The ``line`` client protocol, sans-IO: one request per ``\n``-ended
    line of at most ``LINE_BYTES_MAX`` bytes (a longer one is a
    RemoteProtocolError); a reply is its text and ``\n``."""

    LINE_BYTES_MAX = 1024

    def __init__(self) -> None:
        self._buf = b""
        self._pending: list[str] = []
        self.wants_close = False

    @property
    def buffered_bytes(self) -> int:
        return len(self._buf)

    def receive_data(self, data: bytes) -> list[Line]:
        self._buf += data
        *lines, self._buf = self._buf.split(b"\n")
        if len(self._buf) > self.LINE_BYTES_MAX or any(len(line) > self.LINE_BYTES_MAX for line in lines):
            raise RemoteProtocolError(f"line over {self.LINE_BYTES_MAX} bytes")
        out = []
        for line in lines:
            try:
                text = line.decode("utf-8").rstrip("\r")
            except UnicodeDecodeError:
                raise RemoteProtocolError("a line that is not UTF-8") from None
            self._pending.append(text)
            out.append(Line(text=text))
        return out

    def send(self, reply: Line) -> bytes:
        request = self._pending.pop(0)
        if request == "quit":
            self.wants_close = True
        return reply.text.encode() + b"\n"

    def push(self, msg: Line) -> bytes:
        return b"! " + msg.text.encode() + b"\n"

    def error_bytes(self, error: RemoteProtocolError) -> bytes:
        return f"error: {error}\n".encode()


class EchoNode(Node):
    """See the module docstring."""

    def client_protocols(self) -> dict[str, Any]:
        return {"line": LineProtocol}

    def __init__(self, node_id: str, ping_interval_ms: float) -> None:
        self.node_id = node_id
        self.ping_interval_ms = ping_interval_ms
        self.value = 0
        self.boots = 0
        self.ping_seq = 0
        self.pings_from: dict[str, int] = {}
        self.line_clients: set[str] = set()
        self.line_protocol_errors = 0     # line clients closed for malformed input
        self.later: dict[str, tuple[ReplyHandle, str]] = {}  # timer name -> (request, reply text)
        self.later_seq = 0

    def on_start(self, ctx: Context) -> None:
        raw = ctx.disk.read(STATE_FILE)
        if raw is not None:
            scan = scan_records(raw)
            if scan.error is not None or len(scan.records) != 1:
                raise AssertionError(f"state file is corrupt: {scan.error}")
            self.value, self.boots = decode(scan.records[0])
        self.boots += 1
        self._persist(ctx)
        ctx.trace("booted", boots=self.boots, value=self.value)
        if self.ping_interval_ms > 0:
            ctx.set_timer("ping", self.ping_interval_ms)

    def on_timer(self, ctx: Context, name: str) -> None:
        if name.startswith("later:"):
            handle, text = self.later.pop(name)
            ctx.reply_to(handle, Line(text=text))
            return
        assert name == "ping", name
        self.ping_seq += 1
        for peer in ctx.peers:
            if peer != ctx.node_id:
                ctx.send(peer, Ping(seq=self.ping_seq))
        ctx.set_timer("ping", self.ping_interval_ms)

    def on_message(self, ctx: Context, src: str, msg: Any) -> Any:
        match msg:
            case Ping():
                self.pings_from[src] = self.pings_from.get(src, 0) + 1
            case Echo(text=text):
                ctx.reply(EchoReply(node_id=ctx.node_id, text=text))
            case Incr(amount=amount):
                self.value += amount
                self._persist(ctx)
                ctx.reply(Counter(node_id=ctx.node_id, value=self.value))
            case GetStats():
                ctx.reply(Stats(node_id=ctx.node_id, value=self.value, boots=self.boots,
                                pings_from=dict(self.pings_from)))
            case Relay():
                ctx.reply(Ack())
                return self._relay(ctx, src, msg)
            case Exit(code=code):
                ctx.reply(Ack())
                ctx.exit(code)
            case Line(text=text):
                self._line(ctx, src, text)
            case ClientOpened():
                self.line_clients.add(src)
            case ClientClosed(protocol_error=protocol_error):
                self.line_clients.discard(src)
                self.line_protocol_errors += protocol_error
            case Boom():
                raise RuntimeError("Boom: this handler crashes on purpose")
            case Invalid(text=text):
                ctx.reply(Ack())
                ctx.send(src, Ping(seq=-1))
                ctx.set_timer("ping", 0.0)
                raise RemoteProtocolError(f"Invalid: {text}")
            case _:
                ctx.trace("ignore_message", type=type(msg).__name__, reason="not a test message")
        return None

    def _line(self, ctx: Context, src: str, text: str) -> None:
        word, _, rest = text.partition(" ")
        if word == "echo":
            ctx.reply(Line(text=rest))
        elif word == "later":
            ms, _, said = rest.partition(" ")
            self.later_seq += 1
            name = f"later:{self.later_seq}"
            self.later[name] = (ctx.reply_handle(), said)
            ctx.set_timer(name, float(ms))
        elif word == "clients":
            ctx.reply(Line(text=str(len(self.line_clients))))
        elif word == "protocol-errors":
            ctx.reply(Line(text=str(self.line_protocol_errors)))
        elif word == "push":
            ctx.reply(Line(text="ok"))
            ctx.send(src, Line(text=rest))
        elif word == "bad":
            raise RemoteProtocolError("bad: this client sent an impossible request")
        elif word == "quit":
            ctx.reply(Line(text="bye"))
        else:
            ctx.reply(Line(text=f"unknown {word!r}"))

    async def _relay(self, ctx: Context, requester: str, msg: Relay) -> None:
        # ctx.reply works only in the synchronous part of a handler, so the
        # result of the call goes back to the requester as a plain message.
        started_ms = ctx.now_ms
        reply = await ctx.call(msg.dst, Echo(text=msg.text), msg.timeout_ms)
        ctx.send(requester, RelayResult(text=msg.text, reply=reply, elapsed_ms=ctx.now_ms - started_ms))

    def _persist(self, ctx: Context) -> None:
        ctx.disk.write(STATE_FILE, pack_record(encode([self.value, self.boots])))
        ctx.disk.sync()


class EchoParams(Params):
    ping_interval_ms: float = 50.0


def make_node(node_id: str, params: dict[str, Any]) -> EchoNode:
    """Factory for the cluster config: ``params = {"ping_interval_ms": 50}``.

    Raises:
        ConfigError: params that are not :class:`EchoParams`.
    """
    return EchoNode(node_id, parse_params(params, EchoParams).ping_interval_ms)


def wait_until(predicate: Callable[[], _T], timeout_s: float, what: str, *, poll_s: float = 0.02) -> _T:
    """Poll ``predicate`` until it returns something truthy (returned) or
    ``timeout_s`` passes (AssertionError naming ``what``). Tests wait on
    conditions with deadlines, never on fixed sleeps."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(poll_s)


def authenticated_socket(addr: tuple[str, int], credentials: Any, client_id: str, *,
                         timeout_s: float = 3.0) -> socket.socket:
    """A raw TCP socket to a node that has passed the cluster-key handshake
    as client ``client_id`` (for tests that then send bytes of their own).

    Raises:
        ConnectionError: the node refused the key.
        socket.timeout: no answer within ``timeout_s``.
    """
    from synod.runtime.auth import ROLE_CLIENT, AuthenticationFailed, AuthError, ClientHandshake
    from synod.runtime.constants import HANDSHAKE_FRAME_BYTES_MAX
    from synod.runtime.framing import FrameSplitter, frame

    sock = socket.create_connection(addr, timeout=timeout_s)
    try:
        hs = ClientHandshake(credentials.key, ROLE_CLIENT, client_id)
        sock.sendall(frame(hs.hello()))
        splitter = FrameSplitter(HANDSHAKE_FRAME_BYTES_MAX)
        got: list[bytes] = []
        while not got:
            data = sock.recv(4096)
            if not data:
                raise ConnectionError("the node closed the connection during the handshake")
            got += splitter.feed(data)
        try:
            proof = hs.receive(got[0])
        except AuthError as e:
            raise AuthenticationFailed(e.reason) from None
        sock.sendall(frame(proof))
    except BaseException:
        sock.close()
        raise
    return sock
