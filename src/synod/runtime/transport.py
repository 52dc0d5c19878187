"""TCP between node processes, with a fault layer (DESIGN.md section 6).

Frames and envelopes are described in :mod:`synod.runtime.framing`.

Outgoing: one :class:`_PeerLink` per configured node, connected lazily on the
first send and re-connected with exponential backoff (capped, jittered) when
the connection drops. While a link is down or the socket's buffer is above
asyncio's high-water mark, frames wait in a queue bounded by
``SEND_QUEUE_MESSAGES_MAX``; a full queue drops the newest frame, as a
congested network would, and says so in the log (one line when dropping
starts, one when it stops). Writes are corked: the frames a loop turn
produces for one connection leave in one socket write at the end of the
turn. Frames in flight when a connection breaks are lost, as on a real
network; the protocols above retry.

Incoming: one listener accepts connections from anyone. The sender is the
envelope's ``src``, fixed by a connection's first frame. A src that is not a
configured node is a *client*: messages to that id go back on the connection
it came from, so a client process (or a node missing from this node's
config, such as one a supervisor added later) can send a request and read
the reply on one connection; frames arriving on a connection this node
opened are delivered too, so such a node also receives what it is sent. A
connection that sends bytes that do not decode, a malformed envelope, a src
change or a frame over ``frame_size_bytes_max`` is closed with ONE log line;
the node keeps serving everyone else.

Control requests (:mod:`synod.runtime.messages`, ``SetFaults`` and
``StatusRequest``) are answered here and never reach the node.

Fault layer: the current :class:`~synod.runtime.messages.Faults` applies to
messages between configured nodes: drops and delays on send, ``blocked_out``
on send and ``blocked_in`` on arrival. The supervisor switches it at run time
with a ``SetFaults`` control message (and writes it to ``faults.json`` in the
node's folder, which the node reads when it starts).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections import deque
from collections.abc import Callable
from typing import Any

from synod.core.errors import RemoteProtocolError
from synod.runtime.constants import (
    CLIENT_WRITE_BUFFER_BYTES_MAX,
    CONNECT_TIMEOUT_MS,
    INBOUND_CONNECTIONS_MAX,
    RECONNECT_BACKOFF_MS_MAX,
    RECONNECT_BACKOFF_MS_MIN,
    SEND_QUEUE_MESSAGES_MAX,
    WRITE_BATCH_FRAMES_MAX,
)
from synod.runtime.framing import FrameSplitter, open_envelope, pack_frame
from synod.runtime.messages import NO_FAULTS, Faults, FaultsSet, SetFaults, Status, StatusRequest

__all__ = ["Transport"]

log = logging.getLogger("synod.runtime")

Deliver = Callable[[str, Any, int], None]
Trace = Callable[[str, dict[str, Any]], None]


class Transport:
    """The network of one node process.

    Args:
        node_id: this node's id (the ``src`` of every frame it sends).
        addrs: every configured node id -> (host, port), this one included.
        frame_size_bytes_max: bound on a frame's payload, both directions.
        deliver: called as ``deliver(src, msg, corr)`` for each message that
            passes the fault layer.
        trace: ``trace(event, fields)`` for drops and protocol errors.
        rng: randomness for drops and backoff jitter (not the node's rng).
    """

    def __init__(self, node_id: str, addrs: dict[str, tuple[str, int]], *, frame_size_bytes_max: int,
                 deliver: Deliver, trace: Trace, rng: random.Random) -> None:
        self.node_id = node_id
        self.frame_size_bytes_max = frame_size_bytes_max
        self._deliver = deliver
        self._trace = trace
        self.rng = rng
        self.faults: Faults = NO_FAULTS
        self.links = {pid: _PeerLink(self, pid, addr) for pid, addr in addrs.items()}
        self.clients: dict[str, _Inbound] = {}
        self.inbound: set[_Inbound] = set()
        self.server: asyncio.Server | None = None
        self.closing = False
        self.receiving = True
        self.started_ms = 0.0
        # Writes are corked: frames produced during one turn of the loop go
        # out in one write per connection at the end of that turn.
        self._flush_scheduled = False
        self._dirty_links: list[_PeerLink] = []
        self._dirty_conns: list[_Conn] = []
        self.frames_received = 0
        self.frames_sent = 0
        self.messages_dropped = 0
        self.protocol_errors = 0

    # -- lifecycle ------------------------------------------------------------------
    async def listen(self, host: str, port: int) -> None:
        """Bind the listener (raises OSError if the port is taken); accepting
        starts with :meth:`start_serving`."""
        loop = asyncio.get_running_loop()
        self.started_ms = loop.time() * 1000.0
        self.server = await loop.create_server(lambda: _Inbound(self), host, port,
                                               start_serving=False, reuse_address=True)

    async def start_serving(self) -> None:
        assert self.server is not None
        await self.server.start_serving()

    async def flush(self, timeout_ms: float) -> bool:
        """Wait (at most ``timeout_ms``) until every queued and buffered frame
        has been handed to the OS. Returns whether everything was."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_ms / 1000.0
        while True:
            if not self._pending():
                return True
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.005)

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_writes)

    def _flush_writes(self) -> None:
        self._flush_scheduled = False
        links, self._dirty_links = self._dirty_links, []
        for link in links:
            link.dirty = False
            link.flush_queue()
        conns, self._dirty_conns = self._dirty_conns, []
        for conn in conns:
            conn.dirty = False
            conn.flush_pending()

    def _pending(self) -> bool:
        for link in self.links.values():
            if link.queue or link.held:
                return True
            if link.proto is not None and link.proto.transport.get_write_buffer_size():
                return True
        return any(c.pending or (c.transport is not None and c.transport.get_write_buffer_size())
                   for c in self.inbound)

    def stop_receiving(self) -> None:
        """The node stopped: accept nothing more (control requests included,
        so a supervisor waiting for a restarted node never mistakes this
        process for the new one); queued sends still go out until
        :meth:`close`."""
        self.receiving = False
        if self.server is not None:
            self.server.close()
        for conn in list(self.inbound):
            conn.close(abort=False)  # flushes replies already written, then closes

    def close(self) -> None:
        """Stop listening and close every connection."""
        self.closing = True
        if self.server is not None:
            self.server.close()
        for link in self.links.values():
            link.close()
        for conn in list(self.inbound):
            if conn.transport is not None:
                conn.transport.close()

    # -- sending --------------------------------------------------------------------
    def send(self, dst: str, msg: Any, corr: int) -> None:
        """Send one message (called by the host for each queued send).

        Raises:
            LocalProtocolError: the message does not encode or is over the
                frame size limit (a bug in the node: it must bound its messages).
        """
        frame = pack_frame(self.node_id, corr, msg, self.frame_size_bytes_max)
        link = self.links.get(dst)
        if link is None:
            conn = self.clients.get(dst)
            if conn is None:
                self._dropped(dst, corr, "no connection to this client")
            elif not conn.write(frame):
                self._dropped(dst, corr, "client write buffer full")
            else:
                self.frames_sent += 1
            return
        faults = self.faults
        if faults is not NO_FAULTS:
            if dst in faults.blocked_out:
                self._dropped(dst, corr, "partition")
                return
            if faults.drop_probability and self.rng.random() < faults.drop_probability:
                self._dropped(dst, corr, "drop fault")
                return
            if faults.delay_ms > 0:
                if link.full():
                    self._overflow(link, corr)
                    return
                link.held += 1
                asyncio.get_running_loop().call_later(faults.delay_ms / 1000.0, link.release, frame)
                self.frames_sent += 1
                return
        if link.put(frame):
            self.frames_sent += 1
        else:
            self._overflow(link, corr)

    def _overflow(self, link: _PeerLink, corr: int) -> None:
        if link.overflowed == 0:
            log.warning("send queue to %s full (%d messages): dropping until it drains",
                        link.peer_id, SEND_QUEUE_MESSAGES_MAX)
        link.overflowed += 1
        self._dropped(link.peer_id, corr, "send queue full")

    def _dropped(self, dst: str, corr: int, reason: str) -> None:
        self.messages_dropped += 1
        self._trace("drop", {"dst": dst, "corr": corr, "reason": reason})

    # -- receiving ------------------------------------------------------------------
    def _received(self, conn: _Conn, src: str, corr: int, msg: Any) -> None:
        self.frames_received += 1
        if type(msg) is SetFaults or type(msg) is StatusRequest:
            conn.write(pack_frame(self.node_id, -corr, self._control(msg), self.frame_size_bytes_max))
            return
        if src in self.faults.blocked_in and src in self.links:
            self._dropped(src, corr, "partition (inbound)")
            return
        self._deliver(src, msg, corr)

    def _control(self, msg: SetFaults | StatusRequest) -> Any:
        if type(msg) is SetFaults:
            self.set_faults(msg.faults)
            return FaultsSet(node_id=self.node_id, faults=self.faults)
        return self.status()

    def set_faults(self, faults: Faults) -> None:
        """Replace the fault state (takes effect for the next message)."""
        self.faults = NO_FAULTS if faults == NO_FAULTS else faults
        log.info("faults set: %s", self.faults.to_json())
        self._trace("faults", self.faults.to_json())

    def status(self) -> Status:
        now_ms = asyncio.get_running_loop().time() * 1000.0
        return Status(
            node_id=self.node_id,
            pid=os.getpid(),
            uptime_ms=now_ms - self.started_ms,
            faults=self.faults,
            peers_connected=tuple(pid for pid, link in self.links.items() if link.proto is not None),
            clients=len(self.clients),
            frames_received=self.frames_received,
            frames_sent=self.frames_sent,
            messages_dropped=self.messages_dropped,
            protocol_errors=self.protocol_errors,
        )

    def _reject(self, conn: _Conn, error: RemoteProtocolError) -> None:
        """Close a connection that broke the protocol: one log line, one trace."""
        self.protocol_errors += 1
        peer = conn.peername
        log.warning("closed connection from %s (src=%s): protocol error: %s", peer, conn.src, error)
        self._trace("protocol_error", {"peer": str(peer), "src": conn.src, "error": str(error)})
        conn.close(abort=True)


class _PeerLink:
    """The outgoing connection to one configured node, and its queue."""

    __slots__ = ("owner", "peer_id", "addr", "queue", "proto", "connecting", "paused", "held",
                 "backoff_ms", "overflowed", "task", "dirty")

    def __init__(self, owner: Transport, peer_id: str, addr: tuple[str, int]) -> None:
        self.owner = owner
        self.peer_id = peer_id
        self.addr = addr
        self.queue: deque[bytes] = deque()
        self.proto: _Outbound | None = None
        self.connecting = False
        self.paused = False  # the socket buffer is above the high-water mark
        self.held = 0  # frames held back by the delay fault
        self.backoff_ms = RECONNECT_BACKOFF_MS_MIN
        self.overflowed = 0  # frames dropped since the queue filled up
        self.task: asyncio.Task[None] | None = None
        self.dirty = False  # a flush of the queue is scheduled

    def full(self) -> bool:
        return len(self.queue) + self.held >= SEND_QUEUE_MESSAGES_MAX

    def put(self, frame: bytes) -> bool:
        """Queue ``frame`` (written at the end of this loop turn when
        connected); False if the queue is full."""
        if self.full():
            return False
        if self.overflowed:
            log.warning("send queue to %s accepting again; dropped %d messages", self.peer_id, self.overflowed)
            self.overflowed = 0
        self.queue.append(frame)
        proto = self.proto
        if proto is not None:
            if not self.paused and not self.dirty:
                self.dirty = True
                self.owner._dirty_links.append(self)
                self.owner._schedule_flush()
        elif not self.connecting and not self.owner.closing:
            self.connecting = True
            self.task = asyncio.get_running_loop().create_task(self._connect())
        return True

    def release(self, frame: bytes) -> None:
        """A frame held by the delay fault is due (its slot was reserved)."""
        self.held -= 1
        assert self.held >= 0
        if not self.owner.closing:
            self.put(frame)

    def flush_queue(self) -> None:
        proto = self.proto
        queue = self.queue
        while queue and proto is not None and not self.paused and proto.transport is not None:
            n = min(len(queue), WRITE_BATCH_FRAMES_MAX)
            data = queue.popleft() if n == 1 else b"".join([queue.popleft() for _ in range(n)])
            proto.transport.write(data)

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        host, port = self.addr
        try:
            while self.proto is None and not self.owner.closing:
                try:
                    await asyncio.wait_for(loop.create_connection(lambda: _Outbound(self), host, port),
                                           CONNECT_TIMEOUT_MS / 1000.0)
                    return
                except (OSError, asyncio.TimeoutError):
                    delay_ms = self.backoff_ms * (0.5 + 0.5 * self.owner.rng.random())
                    self.backoff_ms = min(self.backoff_ms * 2.0, RECONNECT_BACKOFF_MS_MAX)
                    await asyncio.sleep(delay_ms / 1000.0)
        finally:
            self.connecting = False
            self.task = None

    def connected(self, proto: _Outbound) -> None:
        self.proto = proto
        self.paused = False
        self.backoff_ms = RECONNECT_BACKOFF_MS_MIN
        log.info("connected to %s at %s:%d", self.peer_id, *self.addr)
        self.flush_queue()

    def lost(self, proto: _Outbound) -> None:
        if self.proto is not proto:
            return
        self.proto = None
        self.paused = False
        log.info("connection to %s lost", self.peer_id)
        if self.queue and not self.connecting and not self.owner.closing:
            self.connecting = True
            self.task = asyncio.get_running_loop().create_task(self._connect())

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.proto is not None:
            self.proto.transport.close()


class _Conn(asyncio.Protocol):
    """One TCP connection: frames in, frames out. Frames may arrive on any
    connection, outgoing ones included (a node that is not in a peer's
    config gets that peer's messages on the connection it opened)."""

    def __init__(self, owner: Transport) -> None:
        self.owner = owner
        self.splitter = FrameSplitter(owner.frame_size_bytes_max)
        self.transport: asyncio.Transport | None = None
        self.src: str | None = None  # the sender on this connection, fixed by its first frame
        self.peername: Any = None
        self.closed = False
        self.pending: list[bytes] = []  # corked frames (see Transport._flush_writes)
        self.pending_bytes = 0
        self.dirty = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.peername = transport.get_extra_info("peername")

    def data_received(self, data: bytes) -> None:
        owner = self.owner
        if self.closed or not owner.receiving:
            return
        try:
            for payload in self.splitter.feed(data):
                src, corr, msg = open_envelope(payload, owner.frame_size_bytes_max)
                if self.src is None:
                    self.identify(src)
                elif src != self.src:
                    raise RemoteProtocolError(f"src changed from {self.src!r} to {src!r} on one connection")
                owner._received(self, src, corr, msg)
                if self.closed:
                    return
        except RemoteProtocolError as e:
            owner._reject(self, e)

    def identify(self, src: str) -> None:
        self.src = src

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def write(self, frame: bytes) -> bool:
        """Queue a frame on this connection (replies to clients, control
        replies); False if it is closed or its buffer is over the limit."""
        transport = self.transport
        if self.closed or transport is None or transport.is_closing():
            return False
        if transport.get_write_buffer_size() + self.pending_bytes > CLIENT_WRITE_BUFFER_BYTES_MAX:
            return False
        self.pending.append(frame)
        self.pending_bytes += len(frame)
        if not self.dirty:
            self.dirty = True
            self.owner._dirty_conns.append(self)
            self.owner._schedule_flush()
        return True

    def flush_pending(self) -> None:
        if self.pending and self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(self.pending))
        self.pending.clear()
        self.pending_bytes = 0

    def close(self, *, abort: bool) -> None:
        if not abort:
            self.flush_pending()  # replies already written go out before the close
        self.closed = True
        if self.transport is not None:
            if abort:
                self.transport.abort()
            else:
                self.transport.close()


class _Outbound(_Conn):
    """The connection a :class:`_PeerLink` opened to its peer."""

    def __init__(self, link: _PeerLink) -> None:
        super().__init__(link.owner)
        self.link = link

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.link.connected(self)

    def identify(self, src: str) -> None:
        if src != self.link.peer_id:
            raise RemoteProtocolError(f"expected frames from {self.link.peer_id!r}, got src {src!r}")
        self.src = src

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.link.lost(self)

    def pause_writing(self) -> None:
        self.link.paused = True

    def resume_writing(self) -> None:
        self.link.paused = False
        self.link.flush_queue()


class _Inbound(_Conn):
    """A connection some peer or client opened to this node."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        owner = self.owner
        if not owner.receiving or len(owner.inbound) >= INBOUND_CONNECTIONS_MAX:
            log.warning("refused connection from %s: %d connections open", self.peername, len(owner.inbound))
            self.close(abort=True)
            return
        owner.inbound.add(self)

    def identify(self, src: str) -> None:
        self.src = src
        if src not in self.owner.links:
            self.owner.clients[src] = self

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        owner = self.owner
        owner.inbound.discard(self)
        if self.src is not None and owner.clients.get(self.src) is self:
            del owner.clients[self.src]
