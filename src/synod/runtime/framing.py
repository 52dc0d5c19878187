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

from synod.core.codec import Message, decode, encode
from synod.core.errors import LocalProtocolError, RemoteProtocolError
from synod.runtime.constants import FRAME_HEADER_BYTES, NODE_ID_BYTES_MAX, SMALL_FRAME_BYTES_MAX

__all__ = ["pack_frame", "open_envelope", "FrameSplitter", "FrameBudget", "FrameRefused", "frame"]

_CORR_ABS_MAX = 2**62
_ENVELOPE_TYPE = tuple[str, int, Message]


def pack_frame(src: str, corr: int, msg: Any, frame_size_bytes_max: int) -> bytes:
    """One frame carrying ``msg`` from ``src``.

    Raises:
        LocalProtocolError: ``msg`` is not encodable, or the frame would exceed
            ``frame_size_bytes_max`` (the receiver would reject it).
    """
    if not isinstance(msg, Message):
        raise LocalProtocolError(f"cannot send a {type(msg).__name__}: not a registered message")
    payload = encode([src, corr, msg])
    if len(payload) > frame_size_bytes_max:
        raise LocalProtocolError(
            f"message {type(msg).__name__} encodes to {len(payload)} bytes, over frame_size_bytes_max "
            f"{frame_size_bytes_max}"
        )
    return len(payload).to_bytes(FRAME_HEADER_BYTES, "big") + payload


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

    ``feed(data)`` yields the payloads completed so far, in order; a frame
    header announcing more than :attr:`frame_size_bytes_max` bytes raises
    :class:`RemoteProtocolError` when the iteration reaches it (after the
    good frames before it, and before its body arrives). The bound may be
    changed between frames (a connection allows only tiny frames until it
    is authenticated).

    With a :class:`FrameBudget`, the frame being received reserves its length
    there once its header is in (:class:`FrameRefused` if it does not fit);
    the reservation ends when it completes or on :meth:`close`.
    """

    __slots__ = ("_buf", "frame_size_bytes_max", "_budget", "_charged", "pending_length", "frames_completed")

    def __init__(self, frame_size_bytes_max: int, budget: FrameBudget | None = None) -> None:
        self._buf = bytearray()
        self.frame_size_bytes_max = frame_size_bytes_max
        self._budget = budget
        self._charged = 0  # bytes of the budget the frame being received holds
        # The announced length of the frame being received, once its header is in.
        self.pending_length: int | None = None
        self.frames_completed = 0

    def feed(self, data: bytes) -> Iterator[bytes]:
        buf = self._buf
        buf += data
        pos = 0
        try:
            while len(buf) - pos >= FRAME_HEADER_BYTES:
                length = int.from_bytes(buf[pos : pos + FRAME_HEADER_BYTES], "big")
                if length > self.frame_size_bytes_max:
                    raise RemoteProtocolError(
                        f"frame of {length} bytes exceeds frame_size_bytes_max {self.frame_size_bytes_max}")
                stop = pos + FRAME_HEADER_BYTES + length
                if stop > len(buf):
                    if self.pending_length is None:
                        if self._budget is not None:
                            self._charged = self._budget.reserve(length)
                        self.pending_length = length
                    break
                payload = bytes(buf[pos + FRAME_HEADER_BYTES : stop])
                pos = stop
                self._frame_done()
                yield payload
        finally:
            if pos:
                del buf[:pos]

    def _frame_done(self) -> None:
        self.frames_completed += 1
        self.pending_length = None
        if self._charged:
            assert self._budget is not None
            self._budget.release(self._charged)
            self._charged = 0

    def close(self) -> None:
        """Drop what is buffered and return any reservation (idempotent)."""
        self._buf = bytearray()
        self.pending_length = None
        if self._charged:
            assert self._budget is not None
            self._budget.release(self._charged)
            self._charged = 0

    @property
    def buffered_bytes(self) -> int:
        return len(self._buf)

    @property
    def charged_bytes(self) -> int:
        """Bytes of the budget the frame being received holds."""
        return self._charged


def frame(payload: bytes) -> bytes:
    """``payload`` with its length header (for handshake messages, which are
    not envelopes)."""
    return len(payload).to_bytes(FRAME_HEADER_BYTES, "big") + payload
