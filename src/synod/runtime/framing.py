"""Frames and envelopes on the wire (DESIGN.md sections 3 and 6).

A frame is a 4-byte big-endian payload length, then the payload. The payload
is ``codec.encode([src, corr, msg])``, the envelope:

- ``src``: the sender's id: a configured node id, or a client's own id;
- ``corr``: 0 for a plain message, +k for the k-th call's request, -k for
  the reply to it (the host's correlation, see ``core.node.Send``);
- ``msg``: a registered message.

:func:`open_envelope` checks that shape strictly; anything else is a
:class:`RemoteProtocolError` and the receiver closes the connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from synod.core.codec import decode, encode, registered_types
from synod.core.errors import LocalProtocolError, RemoteProtocolError
from synod.runtime.constants import FRAME_HEADER_BYTES, NODE_ID_BYTES_MAX

__all__ = ["pack_frame", "open_envelope", "FrameSplitter"]

_CORR_ABS_MAX = 2**62


def pack_frame(src: str, corr: int, msg: Any, frame_size_bytes_max: int) -> bytes:
    """One frame carrying ``msg`` from ``src``.

    Raises:
        LocalProtocolError: ``msg`` is not encodable, or the frame would exceed
            ``frame_size_bytes_max`` (the receiver would reject it).
    """
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
    obj = decode(payload, frame_size_bytes_max)
    if type(obj) is not list or len(obj) != 3:
        raise RemoteProtocolError("envelope is not [src, corr, msg]")
    src, corr, msg = obj
    if type(src) is not str or not src or len(src.encode()) > NODE_ID_BYTES_MAX:
        raise RemoteProtocolError(f"envelope src must be a non-empty str of <= {NODE_ID_BYTES_MAX} bytes")
    if type(corr) is not int or abs(corr) > _CORR_ABS_MAX:
        raise RemoteProtocolError("envelope corr must be an int")
    if type(msg) not in _registered_classes():
        raise RemoteProtocolError(f"envelope msg is a {type(msg).__name__}, not a registered message")
    return src, corr, msg


_classes_cache: tuple[int, frozenset[type]] = (-1, frozenset())


def _registered_classes() -> frozenset[type]:
    # The registry only grows (message modules are imported lazily), so a
    # cached set is refreshed when its size changes.
    global _classes_cache
    types = registered_types()
    if len(types) != _classes_cache[0]:
        _classes_cache = (len(types), frozenset(types.values()))
    return _classes_cache[1]


class FrameSplitter:
    """Cuts a byte stream into frame payloads.

    ``feed(data)`` yields the payloads completed so far, in order; a frame
    header announcing more than ``frame_size_bytes_max`` bytes raises
    :class:`RemoteProtocolError` when the iteration reaches it (after the
    good frames before it, and before its body arrives).
    """

    __slots__ = ("_buf", "_max")

    def __init__(self, frame_size_bytes_max: int) -> None:
        self._buf = bytearray()
        self._max = frame_size_bytes_max

    def feed(self, data: bytes) -> Iterator[bytes]:
        buf = self._buf
        buf += data
        pos = 0
        try:
            while len(buf) - pos >= FRAME_HEADER_BYTES:
                length = int.from_bytes(buf[pos : pos + FRAME_HEADER_BYTES], "big")
                if length > self._max:
                    raise RemoteProtocolError(f"frame of {length} bytes exceeds frame_size_bytes_max {self._max}")
                stop = pos + FRAME_HEADER_BYTES + length
                if stop > len(buf):
                    break
                payload = bytes(buf[pos + FRAME_HEADER_BYTES : stop])
                pos = stop
                yield payload
        finally:
            if pos:
                del buf[:pos]

    @property
    def buffered_bytes(self) -> int:
        return len(self._buf)
