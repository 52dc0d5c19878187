"""Frames and envelopes on the wire (DESIGN.md sections 3 and 6).

A frame is a 4-byte big-endian payload length, then the payload. The payload
is ``codec.encode([src, corr, msg])``, the envelope:

- ``src``: the sender's id: a configured node id, or a client's own id;
- ``corr``: 0 for a plain message, +k for the k-th call's request, -k for
  the reply to it (the host's correlation, see ``core.node.Send``);
- ``msg``: a registered message.

:func:`open_envelope` checks that shape strictly; anything else is a
:class:`RemoteProtocolError` and the receiver closes the connection.

Before the envelopes, a connection to a node whose cluster has a key carries
the handshake of :mod:`synod.runtime.auth`, in frames of at most
``HANDSHAKE_FRAME_BYTES_MAX`` bytes. Memory for frames being received is
bounded node-wide by a :class:`FrameBudget`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from synod.core.codec import Message, decode, encode_into
from synod.core.errors import LocalProtocolError, RemoteProtocolError
from synod.runtime.constants import FRAME_HEADER_BYTES, NODE_ID_BYTES_MAX, SMALL_FRAME_BYTES_MAX

__all__ = ["pack_frame", "open_envelope", "FrameSplitter", "FrameBudget", "FrameRefused", "frame"]

_CORR_ABS_MAX = 2**62
_ENVELOPE_TYPE = tuple[str, int, Message]


def pack_frame(src: str, corr: int, msg: Any, frame_size_bytes_max: int) -> bytearray:
    """One frame carrying ``msg`` from ``src`` (encoded in place after its
    header: a large message is copied once).

    Raises:
        LocalProtocolError: ``msg`` is not encodable, or the frame would exceed
            ``frame_size_bytes_max`` (the receiver would reject it).
    """
    if not isinstance(msg, Message):
        raise LocalProtocolError(f"cannot send a {type(msg).__name__}: not a registered message")
    out = bytearray(FRAME_HEADER_BYTES)
    encode_into([src, corr, msg], out, FRAME_HEADER_BYTES)
    length = len(out) - FRAME_HEADER_BYTES
    if length > frame_size_bytes_max:
        raise LocalProtocolError(
            f"message {type(msg).__name__} encodes to {length} bytes, over frame_size_bytes_max "
            f"{frame_size_bytes_max}"
        )
    out[:FRAME_HEADER_BYTES] = length.to_bytes(FRAME_HEADER_BYTES, "big")
    return out


def open_envelope(payload: bytes, frame_size_bytes_max: int) -> tuple[str, int, Any]:
    """Decode and check one frame's payload; returns ``(src, corr, msg)``.

    Raises:
        RemoteProtocolError: not msgpack, not ``[src, corr, msg]``, a bad src
            or corr, or ``msg`` is not a registered message.
    """
    try:
        src, corr, msg = decode(payload, _ENVELOPE_TYPE, frame_size_bytes_max)
    except RemoteProtocolError as e:
        raise RemoteProtocolError(f"envelope [src, corr, msg]: {e}") from None
    if not src or len(src.encode()) > NODE_ID_BYTES_MAX:
        raise RemoteProtocolError(f"envelope src must be a non-empty str of <= {NODE_ID_BYTES_MAX} bytes")
    if abs(corr) > _CORR_ABS_MAX:
        raise RemoteProtocolError(f"envelope corr must be an int of at most {_CORR_ABS_MAX} in magnitude")
    return src, corr, msg


class FrameRefused(RemoteProtocolError):
    """A frame the receiver will not buffer: the node-wide budget for partial
    frames has no room for it. The connection is closed like one that broke
    the protocol; the node runs on."""


class FrameBudget:
    """The node-wide budget for bytes of partially received frames (issue 8).

    A :class:`FrameSplitter` reserves a frame's announced length when the
    frame's header has arrived and its body has not, and returns it when the
    frame completes or the connection closes (:meth:`FrameSplitter.close`).
    Frames up to ``small_frame_bytes_max`` are not charged (a connection
    buffers at most one partial frame, so they cost at most that much per
    connection): small messages never wait on big ones.

    Invariant: 0 <= bytes_reserved <= bytes_max.

    Args:
        bytes_max: the budget in bytes.
        small_frame_bytes_max: frames up to this size are free.
    """

    __slots__ = ("bytes_max", "bytes_reserved", "small_frame_bytes_max", "refused")

    def __init__(self, bytes_max: int, small_frame_bytes_max: int = SMALL_FRAME_BYTES_MAX) -> None:
        assert bytes_max >= 0
        self.bytes_max = bytes_max
        self.bytes_reserved = 0
        self.small_frame_bytes_max = small_frame_bytes_max
        self.refused = 0  # frames refused so far

    def reserve(self, length: int) -> int:
        """Reserve room for a frame of ``length`` bytes; returns the bytes
        charged (0 for a small frame).

        Raises:
            FrameRefused: the budget has less than ``length`` bytes left.
        """
        if length <= self.small_frame_bytes_max:
            return 0
        left = self.bytes_max - self.bytes_reserved
        if length > left:
            self.refused += 1
            raise FrameRefused(f"frame of {length} bytes refused: the partial-frame budget of "
                               f"{self.bytes_max} bytes has {left} left")
        self.bytes_reserved += length
        return length

    def release(self, charged: int) -> None:
        self.bytes_reserved -= charged
        assert self.bytes_reserved >= 0


class FrameSplitter:
    """Cuts a byte stream into frame payloads.

    Two ways to give it bytes: ``feed(data)``, or, to receive without
    copying (asyncio's ``BufferedProtocol``, ``socket.recv_into``),
    :meth:`get_buffer` for where the next bytes go and
    :meth:`buffer_updated` once ``n`` of them are there. Both return an
    iterator of the payloads completed so far, in order; a frame header
    announcing more than :attr:`frame_size_bytes_max` bytes raises
    :class:`RemoteProtocolError` when the iteration reaches it (after the
    good frames before it, and before its body arrives). The bound may be
    changed between frames (a connection allows only tiny frames until it
    is authenticated). Callers iterate each returned iterator to its end
    before giving more bytes.

    Headers and small frames collect in a fixed staging buffer; a frame of
    more than ``DIRECT_FRAME_BYTES`` gets a buffer of its own, exactly its
    length, which :meth:`get_buffer` hands out so its body is received in
    place and yielded without another copy (a ``bytearray``; small
    payloads are ``bytes``).

    With a :class:`FrameBudget`, the frame being received reserves its length
    there once its header is in (:class:`FrameRefused` if it does not fit);
    the reservation ends when it completes or on :meth:`close`.
    """

    DIRECT_FRAME_BYTES = 32 * 1024
    STAGING_BYTES = 64 * 1024

    __slots__ = ("_buf", "_start", "_end", "_body", "_body_fill", "frame_size_bytes_max", "_budget", "_charged",
                 "pending_length", "frames_completed")

    def __init__(self, frame_size_bytes_max: int, budget: FrameBudget | None = None) -> None:
        self._buf = bytearray(self.STAGING_BYTES)
        self._start = 0  # staged bytes not yet consumed: _buf[_start:_end]
        self._end = 0
        self._body: bytearray | None = None  # a large frame's own buffer, filled up to _body_fill
        self._body_fill = 0
        self.frame_size_bytes_max = frame_size_bytes_max
        self._budget = budget
        self._charged = 0  # bytes of the budget the frame being received holds
        # The announced length of the frame being received, once its header is in.
        self.pending_length: int | None = None
        self.frames_completed = 0

    def get_buffer(self) -> memoryview:
        """Where the next received bytes go (at least one byte of room)."""
        if self._body is not None:
            return memoryview(self._body)[self._body_fill:]
        if self._end == len(self._buf):
            self._compact()
        return memoryview(self._buf)[self._end:]

    def buffer_updated(self, nbytes: int) -> Iterator[bytes | bytearray]:
        """``nbytes`` bytes were written at the start of the last
        :meth:`get_buffer`; returns the payloads they complete."""
        if self._body is not None:
            self._body_fill += nbytes
        else:
            self._end += nbytes
        return self._frames()

    def feed(self, data: bytes | bytearray | memoryview) -> Iterator[bytes | bytearray]:
        view = memoryview(data).cast("B")
        while view:
            room = self.get_buffer()
            n = min(len(room), len(view))
            room[:n] = view[:n]
            view = view[n:]
            yield from self.buffer_updated(n)

    def _frames(self) -> Iterator[bytes | bytearray]:
        body = self._body
        if body is not None:
            if self._body_fill < len(body):
                return
            self._body = None
            self._frame_done()
            yield body
        buf = self._buf
        while self._end - self._start >= FRAME_HEADER_BYTES:
            start = self._start
            length = int.from_bytes(buf[start : start + FRAME_HEADER_BYTES], "big")
            if length > self.frame_size_bytes_max:
                raise RemoteProtocolError(
                    f"frame of {length} bytes exceeds frame_size_bytes_max {self.frame_size_bytes_max}")
            stop = start + FRAME_HEADER_BYTES + length
            if stop > self._end:
                if self.pending_length is None:
                    if self._budget is not None:
                        self._charged = self._budget.reserve(length)
                    self.pending_length = length
                if length > self.DIRECT_FRAME_BYTES:
                    # Its own buffer: the rest of the body is received straight into it.
                    have = self._end - start - FRAME_HEADER_BYTES
                    self._body = bytearray(length)
                    self._body[:have] = buf[start + FRAME_HEADER_BYTES : self._end]
                    self._body_fill = have
                    self._start = self._end = 0
                elif stop > len(buf):
                    self._compact()
                return
            with memoryview(buf) as view:
                payload = bytes(view[start + FRAME_HEADER_BYTES : stop])
            self._start = stop
            self._frame_done()
            yield payload
            buf = self._buf
        if self._start == self._end:
            self._start = self._end = 0

    def _compact(self) -> None:
        """Move the staged bytes to the front of a fresh staging buffer (a
        fresh one: a view of the old one may still be held by the caller)."""
        new = bytearray(self.STAGING_BYTES)
        n = self._end - self._start
        new[:n] = self._buf[self._start : self._end]
        self._buf, self._start, self._end = new, 0, n

    def _frame_done(self) -> None:
        self.frames_completed += 1
        self.pending_length = None
        if self._charged:
            assert self._budget is not None
            self._budget.release(self._charged)
            self._charged = 0

    def close(self) -> None:
        """Drop what is buffered and return any reservation (idempotent)."""
        self._start = self._end = 0
        self._body = None
        self._body_fill = 0
        self.pending_length = None
        if self._charged:
            assert self._budget is not None
            self._budget.release(self._charged)
            self._charged = 0

    @property
    def buffered_bytes(self) -> int:
        return self._end - self._start + (self._body_fill if self._body is not None else 0)

    @property
    def charged_bytes(self) -> int:
        """Bytes of the budget the frame being received holds."""
        return self._charged


def frame(payload: bytes) -> bytes:
    """``payload`` with its length header (for handshake messages, which are
    not envelopes)."""
    return len(payload).to_bytes(FRAME_HEADER_BYTES, "big") + payload
