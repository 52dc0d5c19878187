"""The outgoing side of the transport (:mod:`synod.runtime.transport`): one
:class:`_PeerLink` per configured node (and per node of the address book),
its bounded queue and reconnects, and the :class:`_Outbound` connection it
opens (TLS, then the key handshake as role ``node``, announcing this node's
listen address and checking it reached the expected peer).

With a cluster key, a link is *kept open* (``keep``) to every configured
peer from the start: it connects at once and reconnects whenever the
connection drops, queue or no queue, so every peer hears this node's
handshake, and hears it again after it restarts (that is how a node missing
from a peer's config gets into its address book). Other links connect on
their first send."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from synod.core.errors import RemoteProtocolError
from synod.runtime._conn import _Conn
from synod.runtime.auth import ROLE_NODE, ClientHandshake
from synod.runtime.constants import (
    CONNECT_TIMEOUT_MS,
    HANDSHAKE_FRAME_BYTES_MAX,
    HANDSHAKE_TIMEOUT_MS,
    RECONNECT_BACKOFF_MS_MAX,
    RECONNECT_BACKOFF_MS_MIN,
    SEND_QUEUE_MESSAGES_MAX,
    WRITE_BATCH_FRAMES_MAX,
)
from synod.runtime.framing import frame

if TYPE_CHECKING:  # pragma: no cover
    from synod.runtime.transport import Transport

__all__ = ["_PeerLink", "_Outbound"]

log = logging.getLogger("synod.runtime")


class _PeerLink:
    """The outgoing connection to one node, and its queue. ``learned``: the
    node is not configured; its address came from its own handshake."""

    __slots__ = ("owner", "peer_id", "addr", "learned", "keep", "queue", "proto", "connecting", "paused", "held",
                 "backoff_ms", "overflowed", "task", "dirty")

    def __init__(self, owner: Transport, peer_id: str, addr: tuple[str, int], *, learned: bool = False) -> None:
        self.owner = owner
        self.peer_id = peer_id
        self.addr = addr
        self.learned = learned
        self.keep = False  # kept open: (re)connect even with nothing queued (see the module docstring)
        self.queue: deque[bytes] = deque()
        self.proto: _Outbound | None = None  # set once connected (and authenticated)
        self.connecting = False
        self.paused = False  # the socket buffer is above the high-water mark
        self.held = 0  # frames held back by the delay fault
        self.backoff_ms = RECONNECT_BACKOFF_MS_MIN
        self.overflowed = 0  # frames dropped since the queue filled up
        self.task: asyncio.Task[None] | None = None
        self.dirty = False  # a flush of the queue is scheduled

    def full(self) -> bool:
        return len(self.queue) + self.held >= SEND_QUEUE_MESSAGES_MAX

    def put(self, frame_bytes: bytes) -> bool:
        """Queue a frame (written at the end of this loop turn when
        connected); False if the queue is full."""
        if self.full():
            return False
        if self.overflowed:
            log.warning("send queue to %s accepting again; dropped %d messages", self.peer_id, self.overflowed)
            self.overflowed = 0
        self.queue.append(frame_bytes)
        proto = self.proto
        if proto is not None:
            if not self.paused and not self.dirty:
                self.dirty = True
                self.owner._dirty_links.append(self)
                self.owner._schedule_flush()
        else:
            self._start_connecting()
        return True

    def keep_open(self) -> None:
        """Connect now and reconnect whenever the connection drops."""
        self.keep = True
        if self.proto is None:
            self._start_connecting()

    def readdress(self, addr: tuple[str, int]) -> None:
        """The node now listens at ``addr`` (it announced so): drop the
        connection to the old address; queued frames go to the new one."""
        self.addr = addr
        self.backoff_ms = RECONNECT_BACKOFF_MS_MIN
        if self.proto is not None:
            self.proto.close(abort=True)  # lost() reconnects if frames wait

    def _start_connecting(self) -> None:
        if not self.connecting and not self.owner.closing:
            self.connecting = True
            self.task = asyncio.get_running_loop().create_task(self._connect())

    def release(self, frame_bytes: bytes) -> None:
        """A frame held by the delay fault is due (its slot was reserved)."""
        self.held -= 1
        assert self.held >= 0
        if not self.owner.closing:
            self.put(frame_bytes)

    def flush_queue(self) -> None:
        proto = self.proto
        queue = self.queue
        while queue and proto is not None and not self.paused and proto.transport is not None:
            n = min(len(queue), WRITE_BATCH_FRAMES_MAX)
            data = queue.popleft() if n == 1 else b"".join([queue.popleft() for _ in range(n)])
            proto.transport.write(memoryview(data))   # (a view: what the socket does not take is copied once, not twice)

    async def _connect(self) -> None:
        """Connect (TLS, then the key handshake, when configured), retrying
        with backoff until connected or the transport closes."""
        loop = asyncio.get_running_loop()
        owner = self.owner
        tls: dict[str, Any] = {}
        if owner.client_ssl is not None:
            tls = {"ssl": owner.client_ssl, "ssl_handshake_timeout": HANDSHAKE_TIMEOUT_MS / 1000.0}
        try:
            while self.proto is None and not owner.closing:
                host, port = self.addr  # readdress() may change it between attempts
                proto: _Outbound | None = None
                try:
                    _, proto = await asyncio.wait_for(
                        loop.create_connection(lambda: _Outbound(self), host, port, **tls),
                        CONNECT_TIMEOUT_MS / 1000.0)
                    if await asyncio.wait_for(proto.ready, HANDSHAKE_TIMEOUT_MS / 1000.0):
                        self.connected(proto)
                        return
                except (TimeoutError, OSError):
                    pass
                if proto is not None and not proto.closed:
                    proto.close(abort=True)
                delay_ms = self.backoff_ms * (0.5 + 0.5 * owner.rng.random())
                self.backoff_ms = min(self.backoff_ms * 2.0, RECONNECT_BACKOFF_MS_MAX)
                await asyncio.sleep(delay_ms / 1000.0)
        finally:
            self.connecting = False
            self.task = None

    def connected(self, proto: _Outbound) -> None:
        self.proto = proto
        self.paused = False
        self.backoff_ms = RECONNECT_BACKOFF_MS_MIN
        log.info("connected to %s at %s:%d%s", self.peer_id, *self.addr,
                 " (authenticated)" if self.owner.key is not None else "")
        self.flush_queue()

    def lost(self, proto: _Outbound) -> None:
        if self.proto is not proto:
            return
        self.proto = None
        self.paused = False
        log.info("connection to %s lost", self.peer_id)
        if self.queue or (self.keep and self.owner.receiving):
            self._start_connecting()

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.proto is not None:
            self.proto.close(abort=True)


class _Outbound(_Conn):
    """The connection a :class:`_PeerLink` opened to its peer. With a key it
    proves the key as role ``node``, announces this node's listen address
    and checks it reached ``link.peer_id``; :attr:`ready` resolves to
    whether it may carry frames."""

    def __init__(self, link: _PeerLink) -> None:
        super().__init__(link.owner)
        self.link = link
        self.ready: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        key = self.owner.key
        if key is None:
            self._set_ready(True)
            return
        hs = ClientHandshake(key, ROLE_NODE, self.owner.node_id, expect_server_id=self.link.peer_id,
                             listen_addr=self.owner.listen_addr)
        self.handshake = hs
        self.splitter.frame_size_bytes_max = HANDSHAKE_FRAME_BYTES_MAX
        self.write_raw(frame(hs.hello()))

    def handshake_step(self, payload: bytes) -> None:
        hs = self.handshake
        assert isinstance(hs, ClientHandshake)
        self.write_raw(frame(hs.receive(payload)))
        self.handshake_done()
        self.src = self.link.peer_id  # proven: frames on this connection come from the peer
        self._set_ready(True)

    def _set_ready(self, ok: bool) -> None:
        if not self.ready.done():
            self.ready.set_result(ok)

    def identify(self, src: str) -> None:
        if src != self.link.peer_id:
            raise RemoteProtocolError(f"expected frames from {self.link.peer_id!r}, got src {src!r}")
        self.src = src

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.splitter.close()
        self._set_ready(False)
        self.link.lost(self)

    def pause_writing(self) -> None:
        self.link.paused = True

    def resume_writing(self) -> None:
        self.link.paused = False
        self.link.flush_queue()
