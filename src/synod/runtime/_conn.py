"""One connection of the transport (:mod:`synod.runtime.transport`): the
key handshake when there is one, then frames in and frames out, corked
writes, and what the transport's limits need to know (bytes in, when the
frame being received began)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from synod.core.errors import RemoteProtocolError
from synod.runtime import constants as _limits
from synod.runtime.auth import ClientHandshake, ServerHandshake
from synod.runtime.framing import FrameSplitter, open_envelope

if TYPE_CHECKING:  # pragma: no cover
    from synod.runtime.transport import Transport

__all__ = ["_Conn", "now_ms"]


def now_ms() -> float:
    return time.monotonic() * 1000.0


class _Conn(asyncio.BufferedProtocol):
    """One TCP connection: the key handshake when there is a key, then frames
    in (received in place: a large frame's body goes straight into its own
    buffer, see :class:`FrameSplitter`), frames out. Frames may arrive on any connection, outgoing ones
    included (a node that is not in a peer's config gets that peer's messages
    on the connection it opened)."""

    def __init__(self, owner: Transport) -> None:
        self.owner = owner
        self.splitter = FrameSplitter(owner.frame_size_bytes_max, owner.budget)
        self.handshake: ServerHandshake | ClientHandshake | None = None
        self.transport: asyncio.Transport | None = None
        # The sender on this connection: the id it authenticated as, or
        # (without a key) the src of its first frame.
        self.src: str | None = None
        self.kind: str | None = None  # inbound: "peer" or "client" once admitted
        self.peername: Any = None
        self.bytes_in = 0
        self.closed = False
        self.pending: list[bytes] = []  # corked frames (see Transport._flush_writes)
        self.pending_bytes = 0
        self.dirty = False
        self.last_received_ms = now_ms()
        self.partial_since_ms: float | None = None  # when the frame being received began

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.peername = transport.get_extra_info("peername")

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.splitter.get_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        owner = self.owner
        if self.closed or not owner.receiving:
            self.splitter.close()   # (dropped: the bytes' buffer is reused)
            return
        owner.bytes_received += nbytes
        self.bytes_in += nbytes
        now = now_ms()
        self.last_received_ms = now
        splitter = self.splitter
        completed_before = splitter.frames_completed
        try:
            for payload in splitter.buffer_updated(nbytes):
                if self.handshake is not None:
                    self.handshake_step(payload)
                else:
                    src, corr, msg = open_envelope(payload, owner.frame_size_bytes_max)
                    if self.src is None:
                        self.identify(src)
                    elif src != self.src:
                        raise RemoteProtocolError(f"src changed from {self.src!r} to {src!r} on one connection")
                    if not self.closed:
                        owner._received(self, src, corr, msg)
                if self.closed:
                    return
        except RemoteProtocolError as e:
            if self.handshake is not None:
                owner._auth_failed(self, e)
            else:
                owner._reject(self, e)
            return
        if not splitter.buffered_bytes:
            self.partial_since_ms = None
        elif self.partial_since_ms is None or splitter.frames_completed != completed_before:
            self.partial_since_ms = now

    def handshake_step(self, payload: bytes) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def handshake_done(self) -> None:
        self.handshake = None
        self.splitter.frame_size_bytes_max = self.owner.frame_size_bytes_max

    def identify(self, src: str) -> None:
        self.src = src

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def write_raw(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def write(self, frame_bytes: bytes) -> bool:
        """Queue a frame on this connection (replies to clients, control
        replies); False if it is closed, its buffer is over the limit, or
        all inbound buffers together are over the node-wide budget."""
        transport = self.transport
        if self.closed or transport is None or transport.is_closing():
            return False
        size = transport.get_write_buffer_size() + self.pending_bytes
        if size > _limits.CLIENT_WRITE_BUFFER_BYTES_MAX:
            return False
        if (size > _limits.CLIENT_WRITE_BUFFER_CHECK_BYTES
                and self.owner.write_buffered_bytes() + len(frame_bytes) > _limits.CLIENT_WRITE_BUFFERS_BYTES_MAX):
            return False  # the node-wide budget: other clients stop reading too
        self.pending.append(frame_bytes)
        self.pending_bytes += len(frame_bytes)
        if not self.dirty:
            self.dirty = True
            self.owner._dirty_conns.append(self)
            self.owner._schedule_flush()
        return True

    def flush_pending(self) -> None:
        if self.pending and self.transport is not None and not self.transport.is_closing():
            pending = self.pending   # (one frame: written as it is; a join would copy it)
            self.transport.write(memoryview(pending[0] if len(pending) == 1 else b"".join(pending)))
        self.pending.clear()
        self.pending_bytes = 0

    def close(self, *, abort: bool) -> None:
        if not abort:
            self.flush_pending()  # replies already written go out before the close
        self.closed = True
        self.splitter.close()  # return its budget now, not when the socket is gone
        self.partial_since_ms = None
        if self.transport is not None:
            if abort:
                self.transport.abort()
            else:
                self.transport.close()
