"""RESP's client side, sans-IO: :func:`encode_command` writes a request,
:class:`RespReader` reads a server's replies (RESP2 and RESP3) into
:mod:`synod.kv.replies` values. Used by the CLI (``synod kv``), the
benchmarks and the tests, so none of them needs a Redis library. Spec:
https://redis.io/docs/latest/develop/reference/protocol-spec/. The server
side is :mod:`synod.kv.protocol`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from synod.core.errors import LocalProtocolError, RemoteProtocolError
from synod.kv import constants as C
from synod.kv._resp import CRLF, DOLLAR, LF, LLONG_MAX, LLONG_MIN, STAR, RespProtocolError, string2ll
from synod.kv.replies import (
    Array,
    Boolean,
    BulkString,
    Double,
    Integer,
    Map,
    Reply,
    Set,
    SimpleError,
    SimpleString,
    VerbatimString,
)

__all__ = ["RespReader", "encode_command"]


def encode_command(args: Sequence[bytes | str | int]) -> bytes:
    """A client's request as a RESP multibulk (``*<n>`` then ``$<len>``
    bulk strings). ``str`` is sent as UTF-8, ``int`` in decimal.

    Raises:
        LocalProtocolError: no arguments, or an argument of another type
            (``bool`` and ``float`` included, as redis-py refuses them).
    """
    if not args:
        raise LocalProtocolError("a command needs at least its name")
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        t = type(a)
        if t is bytes or t is bytearray or t is memoryview:
            b = bytes(a)
        elif t is str:
            b = a.encode("utf-8")  # type: ignore[union-attr]
        elif t is int:
            b = b"%d" % a
        else:
            raise LocalProtocolError(f"command argument of type {t.__name__}: use bytes, str or int")
        parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(parts)


_INTEGER = re.compile(rb"[+-]?[0-9]+")
_DOUBLE = re.compile(rb"[+-]?(?:inf|nan|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)")
_AGGREGATES = frozenset(b"*%~>|")
_BLOBS = frozenset(b"$=!")


class _Frame:
    """An aggregate reply being read: its type byte, the items still to
    come, and those read so far."""

    __slots__ = ("kind", "left", "items")

    def __init__(self, kind: int, left: int) -> None:
        self.kind = kind
        self.left = left
        self.items: list[Reply] = []


class RespReader:
    """Client side: parses a server's replies, RESP2 and RESP3, into
    :mod:`synod.kv.replies` values (spec: "RESP protocol description").

    Mapping: ``$-1``, ``*-1`` and ``_`` -> NIL / NIL_ARRAY / NIL (RESP3's
    null reads as ``BulkString(None)``); ``!`` blob error -> SimpleError;
    ``(`` big number -> Integer; ``>`` push -> Array; ``|`` attributes are
    read and dropped. Texts are decoded as UTF-8 with surrogate escapes.
    Aggregates are built with an explicit stack, so deep or long replies
    arriving in many reads are parsed once.

    Args (limits; defaults in :mod:`synod.kv.constants`):
        bulk_bytes_max: largest declared ``$`` / ``=`` / ``!`` length, bytes.
        aggregate_len_max: most elements (pairs for ``%``, ``|``) declared.
        depth_max: deepest aggregate nesting.
        line_bytes_max: longest line (simple reply or header), bytes.
        buffer_bytes_max: most bytes held that are not yet a whole reply.
    """

    def __init__(self, *, bulk_bytes_max: int = C.READER_BULK_BYTES_MAX,
                 aggregate_len_max: int = C.READER_AGGREGATE_LEN_MAX, depth_max: int = C.READER_DEPTH_MAX,
                 line_bytes_max: int = C.READER_LINE_BYTES_MAX,
                 buffer_bytes_max: int = C.READER_BUFFER_BYTES_MAX) -> None:
        if depth_max < 1:
            raise LocalProtocolError(f"depth_max must be at least 1, not {depth_max}")
        self.bulk_bytes_max = bulk_bytes_max
        self.aggregate_len_max = aggregate_len_max
        self.depth_max = depth_max
        self.line_bytes_max = line_bytes_max
        self.buffer_bytes_max = buffer_bytes_max
        self._tail = bytearray()
        self._need = 0
        self._wait_byte: bytes | None = None
        # Invariant: len(_stack) <= depth_max; every frame has left > 0.
        self._stack: list[_Frame] = []
        self._partial_bytes = 0  # consumed for the top-level reply in progress
        self._error: RemoteProtocolError | None = None

    @property
    def buffered_bytes(self) -> int:
        """Bytes received that are not yet part of a whole top-level reply."""
        return self._partial_bytes + len(self._tail)

    def receive_data(self, data: bytes) -> list[Reply]:
        """Feed bytes read from the server; returns every reply they
        complete, in order.

        Raises:
            RespProtocolError (a RemoteProtocolError): the bytes are not RESP
                or break a limit; its ``replies`` are the whole replies read
                before the bad bytes. The reader is then failed.
            LocalProtocolError: called again after that error.
        """
        if self._error is not None:
            raise LocalProtocolError(f"receive_data after a protocol error ({self._error}); close the connection")
        replies: list[Reply] = []
        try:
            tail = self._tail
            if tail or self._need:
                tail += data
                if (self._wait_byte is not None and self._wait_byte not in data) or len(tail) < self._need:
                    if self._wait_byte is not None and len(tail) > self.line_bytes_max + 2:
                        raise RespProtocolError(f"reply line longer than {self.line_bytes_max} bytes")
                    self._check_buffer()
                    return []
                b = bytes(tail)
            else:
                b = data if type(data) is bytes else bytes(data)
            self._parse(b, replies)
            self._check_buffer()
            return replies
        except RespProtocolError as e:
            e.replies = replies
            self._error = e
            raise

    def _check_buffer(self) -> None:
        if self.buffered_bytes > self.buffer_bytes_max:
            raise RespProtocolError(
                f"reply buffer of {self.buffered_bytes} bytes exceeds {self.buffer_bytes_max}")

    def _length(self, s: bytes, what: str) -> int:
        v = string2ll(s)
        if v is None:
            raise RespProtocolError(f"invalid {what} length {s[:32]!r}")
        return v

    def _parse(self, b: bytes, out: list[Reply]) -> None:  # noqa: C901
        """Parse replies from ``b`` (= the old tail + new data) into ``out``;
        keeps what is left in ``_tail`` and the open aggregates on ``_stack``."""
        stack = self._stack
        n = len(b)
        pos = 0
        top_start = 0  # where the top-level reply in progress began in b
        partial = self._partial_bytes
        need = 0
        wait_byte: bytes | None = None
        line_max = self.line_bytes_max
        while pos < n:
            if not stack:
                top_start, partial = pos, 0
            nl = b.find(CRLF, pos)
            if nl < 0:
                if n - pos > line_max + 2:
                    raise RespProtocolError(f"reply line longer than {line_max} bytes")
                need, wait_byte = n - pos + 1, LF
                break
            if nl - pos > line_max + 1:
                raise RespProtocolError(f"reply line longer than {line_max} bytes")
            t = b[pos]
            line = b[pos + 1:nl]
            value: Reply
            if t in _BLOBS:
                size = self._length(line, "bulk")
                if size == -1 and t == DOLLAR:
                    value, pos = BulkString(data=None), nl + 2
                else:
                    if size < 0 or size > self.bulk_bytes_max:
                        raise RespProtocolError(f"invalid bulk length {size}")
                    start = nl + 2
                    end = start + size
                    if end + 2 > n:
                        need = end + 2 - pos
                        break
                    if b[end:end + 2] != CRLF:
                        raise RespProtocolError("bulk string not followed by CRLF")
                    data = b[start:end]
                    pos = end + 2
                    if t == DOLLAR:
                        value = BulkString(data=data)
                    elif t == 33:  # '!' blob error
                        value = SimpleError(text=data.decode("utf-8", "surrogateescape"))
                    else:  # '=' verbatim
                        if size < 4 or data[3] != 58:
                            raise RespProtocolError("verbatim string without its 'fmt:' prefix")
                        value = VerbatimString(format=data[:3].decode("utf-8", "surrogateescape"),
                                               text=data[4:].decode("utf-8", "surrogateescape"))
            elif t in _AGGREGATES:
                count = self._length(line, "aggregate")
                pos = nl + 2
                if count == -1 and t == STAR:
                    value = Array(items=None)
                elif count < 0 or count > self.aggregate_len_max:
                    raise RespProtocolError(f"invalid aggregate length {count}")
                elif count == 0:
                    if t == 124:  # '|' empty attributes: nothing to deliver
                        continue
                    value = _aggregate(t, [])
                else:
                    if len(stack) >= self.depth_max:
                        raise RespProtocolError(f"replies nested deeper than {self.depth_max}")
                    stack.append(_Frame(t, 2 * count if t in (37, 124) else count))
                    continue
            else:
                value = _simple(t, line)
                pos = nl + 2
            # Deliver value to its parent, closing every aggregate it completes.
            while True:
                if not stack:
                    out.append(value)
                    break
                top = stack[-1]
                top.items.append(value)
                top.left -= 1
                if top.left:
                    break
                stack.pop()
                if top.kind == 124:  # attributes describe the next reply; dropped
                    break
                value = _aggregate(top.kind, top.items)
        if not stack:
            top_start, partial = pos, 0
        self._partial_bytes = partial + (pos - top_start)
        self._tail = bytearray(b[pos:]) if pos < n else bytearray()
        self._need = need
        self._wait_byte = wait_byte


def _simple(t: int, line: bytes) -> Reply:
    """A line-typed reply (``+ - : , ( # _``)."""
    if t == 43:  # '+'
        return SimpleString(text=line.decode("utf-8", "surrogateescape"))
    if t == 45:  # '-'
        return SimpleError(text=line.decode("utf-8", "surrogateescape"))
    if t == 58 or t == 40:  # ':' integer, '(' big number
        if _INTEGER.fullmatch(line) is None:
            raise RespProtocolError(f"invalid integer {line[:32]!r}")
        v = int(line)
        if t == 58 and not LLONG_MIN <= v <= LLONG_MAX:
            raise RespProtocolError("integer reply outside 64 bits")
        return Integer(value=v)
    if t == 44:  # ',' double
        if _DOUBLE.fullmatch(line) is None:
            raise RespProtocolError(f"invalid double {line[:32]!r}")
        return Double(value=float(line))
    if t == 35:  # '#'
        if line == b"t":
            return Boolean(value=True)
        if line == b"f":
            return Boolean(value=False)
        raise RespProtocolError(f"invalid boolean {line[:32]!r}")
    if t == 95:  # '_'
        if line:
            raise RespProtocolError("null with a payload")
        return BulkString(data=None)
    raise RespProtocolError(f"unknown RESP type byte {bytes([t])!r}")


def _aggregate(kind: int, items: list[Reply]) -> Reply:
    if kind == 37:  # '%'
        return Map(pairs=tuple(zip(items[0::2], items[1::2])))
    if kind == 126:  # '~'
        return Set(items=tuple(items))
    return Array(items=tuple(items))  # '*' and '>' (push)
