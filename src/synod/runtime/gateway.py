"""The client gateway: a node's client-facing port (DESIGN.md section 8).

A node that speaks a client protocol (Redis RESP, memcached, ZooKeeper's
jute, Bitcoin P2P or JSON-RPC) names a sans-IO protocol object for it
(``Node.client_protocols``); the cluster config gives the port
(``client_ports``). The gateway serves that port for the node's process:

- each TCP connection gets a client id ``<protocol>:<n>`` (``resp:7``; a
  colon never appears in a node id) and its own protocol object;
- the node hears ``ClientOpened`` then, from that id, each request the
  protocol parses, in order, as a call (correlation ``+seq``), and
  ``ClientClosed`` when the connection goes;
- the node answers each request once, with ``ctx.reply`` or later with
  ``ctx.reply_to(handle, reply)``, in any order; the gateway writes the
  replies back in request order (pipelining kept), rendered by the
  protocol object;
- a plain ``ctx.send(client_id, msg)`` is a server push (a ZooKeeper watch
  notification, a RESP3 push), written at once if the protocol has
  ``push(msg) -> bytes`` and dropped with a trace event otherwise.

The protocol object's shape (h11's): ``receive_data(bytes) -> list of
requests`` (raising ``RemoteProtocolError`` on malformed input),
``send(reply) -> bytes`` for the oldest unanswered request,
``error_bytes(error) -> bytes`` written before a protocol-error close, and
optionally ``push(msg) -> bytes`` and ``wants_close`` (true once a reply
asked the connection to end, as QUIT does).

Limits (``synod.runtime.constants``): at most ``GATEWAY_CONNECTIONS_MAX``
connections per port (a new one beyond it is closed at once); at most
``GATEWAY_INFLIGHT_REQUESTS_MAX`` unanswered requests per connection (then
the gateway stops reading that socket until replies drain: a client that
floods pipelined requests is slowed, not served ahead of others); replies
buffered towards a client beyond ``GATEWAY_OUTPUT_BUFFER_BYTES_MAX`` close it
(a client that does not read); request size is the protocol object's limit.
A malformed request closes that connection only; the node runs on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from synod.core.clients import ClientClosed, ClientOpened
from synod.core.errors import LocalProtocolError, RemoteProtocolError
from synod.runtime.constants import (
    GATEWAY_CONNECTIONS_MAX,
    GATEWAY_INFLIGHT_REQUESTS_MAX,
    GATEWAY_OUTPUT_BUFFER_BYTES_MAX,
    LISTEN_BACKLOG,
)

__all__ = ["Gateway"]

log = logging.getLogger("synod.gateway")

# deliver(src, msg, corr): hand one input to the node (the host's guarded deliver).
Deliver = Callable[[str, Any, int], None]
Trace = Callable[[str, dict[str, Any]], None]


class Gateway:
    """Serves one client protocol on one port, for one node's host.

    Args:
        name: the protocol's name (``"resp"``); client ids are ``name:n``.
        protocol_factory: builds one protocol object per connection.
        deliver: the host's input path, ``deliver(src, msg, corr)``.
        trace: the host's trace hook.
        connections_max, inflight_requests_max, output_buffer_bytes_max: the
            limits above (tests lower them).
    """

    def __init__(self, name: str, protocol_factory: Callable[[], Any], deliver: Deliver, trace: Trace, *,
                 connections_max: int = GATEWAY_CONNECTIONS_MAX,
                 inflight_requests_max: int = GATEWAY_INFLIGHT_REQUESTS_MAX,
                 output_buffer_bytes_max: int = GATEWAY_OUTPUT_BUFFER_BYTES_MAX) -> None:
        if ":" in name or not name:
            raise LocalProtocolError(f"a client protocol name must be non-empty and colon-free, got {name!r}")
        self.name = name
        self.protocol_factory = protocol_factory
        self._deliver = deliver
        self._trace = trace
        self.connections_max = connections_max
        self.inflight_requests_max = inflight_requests_max
        self.output_buffer_bytes_max = output_buffer_bytes_max
        self.connections: dict[str, _Connection] = {}
        self._next_id = 1
        self._server: asyncio.AbstractServer | None = None
        self.refused = 0  # connections closed at once: over connections_max
        self.closed_for_errors = 0

    @property
    def port(self) -> int | None:
        """The bound port (after :meth:`listen`)."""
        if self._server is None or not self._server.sockets:
            return None
        return self._server.sockets[0].getsockname()[1]

    async def listen(self, host: str, port: int) -> None:
        """Bind and start accepting. Raises OSError: the port cannot be bound."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), host, port, backlog=LISTEN_BACKLOG,
                                                reuse_address=True)

    def owns(self, client_id: str) -> bool:
        return client_id in self.connections

    def reply(self, client_id: str, corr: int, msg: Any) -> None:
        """A send from the node to ``client_id``: the reply to request
        ``-corr`` (corr < 0), or a push (corr == 0)."""
        conn = self.connections.get(client_id)
        if conn is None:
            return  # the client left before its answer
        if corr < 0:
            conn.answer(-corr, msg)
        else:
            conn.push(msg)

    def close_client(self, client_id: str, reason: str, *, protocol_error: bool = False) -> None:
        """Close one client's connection (``protocol_error``: the node found its input malformed)."""
        conn = self.connections.get(client_id)
        if conn is not None:
            conn.close(reason, protocol_error=protocol_error)

    def close(self) -> None:
        """Stop accepting and close every connection."""
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections.values()):
            conn.close("node stopping", tell_node=False)

    # -- from connections ----------------------------------------------------------------
    def _opened(self, conn: _Connection) -> str | None:
        if len(self.connections) >= self.connections_max:
            self.refused += 1
            self._trace("client_refused", {"protocol": self.name, "reason": "connections_max"})
            return None
        client_id = f"{self.name}:{self._next_id}"
        self._next_id += 1
        self.connections[client_id] = conn
        return client_id


class _Connection(asyncio.Protocol):
    """One client connection: parse, number, deliver; reorder replies."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.proto: Any = None
        self.client_id: str | None = None
        self.transport: asyncio.Transport | None = None
        self.next_seq = 1          # the number the next request gets
        self.next_answer = 1       # the request whose reply goes out next
        self.early: dict[int, Any] = {}  # replies that came before an earlier one
        # Corked output: what this turn of the loop said to the client, written
        # in one go at the start of the next (one write, not one per reply).
        self.out: list[bytes] | None = None
        self.reading_paused = False
        self.writing_paused = False
        self.closed = False

    # -- asyncio.Protocol ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        gw = self.gateway
        client_id = gw._opened(self)
        if client_id is None:
            self.closed = True
            transport.close()
            return
        self.client_id = client_id
        self.proto = gw.protocol_factory()
        transport.set_write_buffer_limits(high=min(gw.output_buffer_bytes_max, 1 << 20))
        peer = transport.get_extra_info("peername")
        addr = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        gw._deliver(client_id, ClientOpened(protocol=gw.name, addr=addr), 0)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            requests = self.proto.receive_data(data)
        except RemoteProtocolError as e:
            self._protocol_error(e)
            return
        deliver = self.gateway._deliver
        client_id = self.client_id
        for request in requests:
            seq = self.next_seq
            self.next_seq = seq + 1
            deliver(client_id, request, seq)
            if self.closed:
                return
        self._flow()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self._forget("client closed" if exc is None else f"connection lost: {exc}")

    def pause_writing(self) -> None:
        self.writing_paused = True
        self._flow()

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._flow()

    # -- replies ---------------------------------------------------------------------------
    def answer(self, seq: int, reply: Any) -> None:
        if self.closed:
            return
        if seq < self.next_answer or seq >= self.next_seq or seq in self.early:
            self.gateway._trace("ignore_reply", {"src": self.client_id, "reason": f"no request {seq} waits"})
            return
        if seq != self.next_answer:
            self.early[seq] = reply
            return
        chunks = []
        try:
            while True:
                chunks.append(self.proto.send(reply))
                self.next_answer += 1
                reply = self.early.pop(self.next_answer, None)
                if reply is None:
                    break
        except (LocalProtocolError, RemoteProtocolError) as e:
            self.gateway._trace("reply_error", {"client": self.client_id, "error": str(e)})
            self.close(f"reply not renderable: {e}")
            return
        self._cork(b"".join(chunks))
        if getattr(self.proto, "wants_close", False):
            self.close("client asked to close")
            return
        self._flow()

    def push(self, msg: Any) -> None:
        if self.closed:
            return
        push = getattr(self.proto, "push", None)
        if push is None:
            self.gateway._trace("ignore_push", {"client": self.client_id, "type": type(msg).__name__})
            return
        try:
            data = push(msg)
        except (LocalProtocolError, RemoteProtocolError) as e:
            self.gateway._trace("reply_error", {"client": self.client_id, "error": str(e)})
            self.close(f"push not renderable: {e}")
            return
        self._cork(data)
        if getattr(self.proto, "wants_close", False):
            self.close("the node closed the connection")

    # -- plumbing ----------------------------------------------------------------------------
    def _cork(self, data: bytes) -> None:
        """Queue ``data`` for the write at the start of the next loop turn."""
        if self.out is None:
            self.out = [data]
            asyncio.get_running_loop().call_soon(self._uncork)
        else:
            self.out.append(data)

    def _uncork(self) -> None:
        out, self.out = self.out, None
        if out and not self.closed:
            self._write(b"".join(out))
            self._flow()

    def _write(self, data: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(data)
        if transport.get_write_buffer_size() > self.gateway.output_buffer_bytes_max:
            self.close("output buffer over its limit (the client does not read its replies)")

    def _flow(self) -> None:
        """Read while the client has room: fewer than the in-flight limit
        unanswered, and its replies not piling up unread."""
        if self.closed or self.transport is None:
            return
        inflight = self.next_seq - self.next_answer
        hold = self.writing_paused or inflight >= self.gateway.inflight_requests_max
        if hold and not self.reading_paused:
            self.transport.pause_reading()
            self.reading_paused = True
        elif not hold and self.reading_paused and inflight <= self.gateway.inflight_requests_max // 2:
            self.transport.resume_reading()
            self.reading_paused = False

    def _protocol_error(self, e: RemoteProtocolError) -> None:
        gw = self.gateway
        gw.closed_for_errors += 1
        log.warning("closed client %s: protocol error: %s", self.client_id, e)
        gw._trace("client_protocol_error", {"client": self.client_id, "error": str(e)})
        out, self.out = self.out or [], None
        try:
            out.append(self.proto.error_bytes(e))
        except Exception:  # the error reply is a courtesy; closing is what matters
            pass
        self._write(b"".join(out))
        self.close(f"protocol error: {e}", protocol_error=True)

    def close(self, reason: str, *, tell_node: bool = True, protocol_error: bool = False) -> None:
        if self.closed:
            return
        if self.out:
            out, self.out = self.out, None
            self._write(b"".join(out))
        if self.transport is not None:
            self.transport.close()
        self._forget(reason, tell_node=tell_node, protocol_error=protocol_error)

    def _forget(self, reason: str, *, tell_node: bool = True, protocol_error: bool = False) -> None:
        self.closed = True
        self.early.clear()
        gw = self.gateway
        if self.client_id is not None and gw.connections.pop(self.client_id, None) is not None and tell_node:
            gw._deliver(self.client_id, ClientClosed(reason=reason, protocol_error=protocol_error), 0)
