"""Jute, ZooKeeper's record encoding, as a bounds-checked reader and writer.

Spec: ZooKeeper's ``zookeeper-jute`` (``BinaryInputArchive`` /
``BinaryOutputArchive``) and the record definitions of
``zookeeper.jute``. Everything is big-endian:

- ``int``: 4 bytes, signed; ``long``: 8 bytes, signed;
- ``boolean``: 1 byte (written 0 or 1; any non-zero byte reads as true, as
  Java's ``DataInput.readBoolean``);
- ``buffer``: an int length then that many bytes; length -1 is null;
- ``ustring``: the same, the bytes UTF-8; length -1 is null;
- ``vector<T>``: an int count then the elements; count -1 is null;
- a record: its fields in order, no framing of its own.

Reading
    :class:`JuteReader` reads from one frame. A short buffer, a length
    below -1, a buffer or ustring over ``buffer_bytes_max`` (jute.maxbuffer)
    or longer than what is left, a vector count larger than the bytes left
    could hold, or bytes that are not UTF-8 in a ustring raise
    :class:`~synod.core.errors.RemoteProtocolError` -- never ``IndexError``
    or ``struct.error``. So nothing a client sends allocates more than the
    frame it already sent.

Typed records
    A record is a msgspec Struct whose field annotations say their jute
    type: :data:`Int`, :data:`Long`, ``bool``, ``bytes | None`` (buffer),
    ``str`` (ustring), ``tuple[T, ...]`` (vector) and another record.
    :func:`read_record` and :func:`write_record` walk those fields in order
    (the schema is derived once per class).

Simplifications: a null ustring reads as ``""`` and a null vector as
``()``: ZooKeeper refuses a null path as it does an empty one, treats a
null ACL list as an empty one (both InvalidACL) and a null watch list as
none, and kazoo writes an empty string as null. Bytes that are not UTF-8 in
a ustring are refused (Java would substitute U+FFFD).
"""

from __future__ import annotations

import struct
import typing
from typing import Annotated, Any, TypeVar

import msgspec

from synod.core.errors import LocalProtocolError, RemoteProtocolError
from synod.zk.constants import BUFFER_BYTES_MAX

__all__ = [
    "Int", "Long", "INT_MIN", "INT_MAX", "LONG_MIN", "LONG_MAX", "JuteReader", "JuteWriter", "read_record",
    "write_record", "encode_record", "decode_record", "record_schema",
]

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1

# A jute int (32 bits) and a jute long (64 bits), as field annotations.
Int = Annotated[int, msgspec.Meta(ge=INT_MIN, le=INT_MAX)]
Long = Annotated[int, msgspec.Meta(ge=LONG_MIN, le=LONG_MAX)]

_INT = struct.Struct(">i")
_LONG = struct.Struct(">q")

# Fewest bytes one vector element of each kind takes on the wire.
_KIND_BYTES_MIN = {"int": 4, "long": 8, "bool": 1, "buffer": 4, "ustring": 4}

R = TypeVar("R", bound=msgspec.Struct)


class JuteReader:
    """Reads jute values from one frame, front to back.

    Args:
        data: the frame's bytes (its length prefix not included).
        buffer_bytes_max: largest buffer or ustring, bytes (jute.maxbuffer).

    Every ``read_*`` raises :class:`RemoteProtocolError` on a short or
    malformed value.
    """

    __slots__ = ("_data", "_pos", "buffer_bytes_max")

    def __init__(self, data: bytes, *, buffer_bytes_max: int = BUFFER_BYTES_MAX) -> None:
        assert buffer_bytes_max >= 0
        self._data = data
        self._pos = 0
        self.buffer_bytes_max = buffer_bytes_max

    @property
    def remaining(self) -> int:
        """Bytes not yet read."""
        return len(self._data) - self._pos

    def _take(self, n: int, what: str) -> bytes:
        assert n >= 0
        if n > self.remaining:
            raise RemoteProtocolError(f"jute: {what} needs {n} bytes, {self.remaining} left")
        out = self._data[self._pos:self._pos + n]
        self._pos += n
        return out

    def read_int(self, what: str = "int") -> int:
        """A 4-byte signed big-endian int."""
        return _INT.unpack(self._take(4, what))[0]

    def read_long(self, what: str = "long") -> int:
        """An 8-byte signed big-endian long."""
        return _LONG.unpack(self._take(8, what))[0]

    def read_bool(self, what: str = "boolean") -> bool:
        """One byte; non-zero is true."""
        return self._take(1, what)[0] != 0

    def _length(self, what: str) -> int:
        n = self.read_int(what)
        if n < -1:
            raise RemoteProtocolError(f"jute: {what} has negative length {n}")
        if n > self.buffer_bytes_max:
            raise RemoteProtocolError(f"jute: {what} of {n} bytes is over {self.buffer_bytes_max} (jute.maxbuffer)")
        return n

    def read_buffer(self, what: str = "buffer") -> bytes | None:
        """A length-prefixed byte string; length -1 is ``None``."""
        n = self._length(what)
        return None if n == -1 else bytes(self._take(n, what))

    def read_ustring(self, what: str = "ustring") -> str:
        """A length-prefixed UTF-8 string; length -1 (null) reads as ``""``."""
        n = self._length(what)
        if n == -1:
            return ""
        raw = self._take(n, what)
        try:
            return bytes(raw).decode("utf-8")
        except UnicodeDecodeError as e:
            raise RemoteProtocolError(f"jute: {what} is not UTF-8 ({e.reason})") from None

    def read_count(self, element_bytes_min: int, what: str = "vector") -> int:
        """A vector's element count; -1 (null) reads as 0. Raises
        :class:`RemoteProtocolError` if the bytes left could not hold that
        many elements of at least ``element_bytes_min`` bytes each."""
        assert element_bytes_min >= 1
        n = self.read_int(what)
        if n < -1:
            raise RemoteProtocolError(f"jute: {what} has negative count {n}")
        if n == -1:
            return 0
        if n > self.remaining // element_bytes_min:
            raise RemoteProtocolError(f"jute: {what} of {n} elements cannot fit in {self.remaining} bytes")
        return n


class JuteWriter:
    """Builds jute bytes. A value out of its type's range (an int beyond 32
    bits, a buffer over the limit) raises :class:`LocalProtocolError`: the
    caller built a record ZooKeeper could not send."""

    __slots__ = ("_out", "buffer_bytes_max")

    def __init__(self, *, buffer_bytes_max: int = BUFFER_BYTES_MAX) -> None:
        self._out = bytearray()
        self.buffer_bytes_max = buffer_bytes_max

    def getvalue(self) -> bytes:
        """The bytes written so far."""
        return bytes(self._out)

    def write_int(self, v: int) -> None:
        if type(v) is bool or not isinstance(v, int) or not INT_MIN <= v <= INT_MAX:
            raise LocalProtocolError(f"jute int out of range: {v!r}")
        self._out += _INT.pack(v)

    def write_long(self, v: int) -> None:
        if type(v) is bool or not isinstance(v, int) or not LONG_MIN <= v <= LONG_MAX:
            raise LocalProtocolError(f"jute long out of range: {v!r}")
        self._out += _LONG.pack(v)

    def write_bool(self, v: bool) -> None:
        if not isinstance(v, bool):
            raise LocalProtocolError(f"jute boolean must be a bool: {v!r}")
        self._out.append(1 if v else 0)

    def write_buffer(self, v: bytes | None) -> None:
        if v is None:
            self._out += _INT.pack(-1)
            return
        if not isinstance(v, bytes | bytearray | memoryview):
            raise LocalProtocolError(f"jute buffer must be bytes or None: {type(v).__name__}")
        if len(v) > self.buffer_bytes_max:
            raise LocalProtocolError(f"jute buffer of {len(v)} bytes is over {self.buffer_bytes_max}")
        self._out += _INT.pack(len(v))
        self._out += v

    def write_ustring(self, v: str) -> None:
        if not isinstance(v, str):
            raise LocalProtocolError(f"jute ustring must be a str: {type(v).__name__}")
        try:
            raw = v.encode("utf-8")
        except UnicodeEncodeError as e:
            raise LocalProtocolError(f"jute ustring is not encodable as UTF-8: {e.reason}") from None
        self.write_buffer(raw)

    def write_count(self, n: int) -> None:
        """A vector's element count."""
        self.write_int(n)


# -- typed records ----------------------------------------------------------------------------------

# A field's jute kind: "int", "long", "bool", "buffer", "ustring",
# ("vector", kind) or ("record", cls).
Kind = Any
_schemas: dict[type, tuple[tuple[str, Kind], ...]] = {}


def _kind(hint: Any, owner: type) -> Kind:
    origin = typing.get_origin(hint)
    if origin is Annotated:
        base, *meta = typing.get_args(hint)
        le = next((m.le for m in meta if isinstance(m, msgspec.Meta)), None)
        assert base is int, f"{owner.__name__}: only ints are annotated"
        assert le in (INT_MAX, LONG_MAX), f"{owner.__name__}: an int field must be Int or Long"
        return "int" if le == INT_MAX else "long"
    if hint is bool:
        return "bool"
    if hint is str:
        return "ustring"
    if hint == (bytes | None):
        return "buffer"
    if origin is tuple:
        args = typing.get_args(hint)
        assert len(args) == 2 and args[1] is Ellipsis, f"{owner.__name__}: a vector is tuple[T, ...]"
        return ("vector", _kind(args[0], owner))
    if isinstance(hint, type) and issubclass(hint, msgspec.Struct):
        return ("record", hint)
    raise AssertionError(f"{owner.__name__}: no jute type for {hint!r}")


def record_schema(cls: type) -> tuple[tuple[str, Kind], ...]:
    """The (field name, jute kind) pairs of a record class, in wire order."""
    schema = _schemas.get(cls)
    if schema is None:
        hints = typing.get_type_hints(cls, include_extras=True)
        schema = tuple((name, _kind(hints[name], cls)) for name in cls.__struct_fields__)
        _schemas[cls] = schema
    return schema


def _kind_bytes_min(kind: Kind) -> int:
    if isinstance(kind, str):
        return _KIND_BYTES_MIN[kind]
    if kind[0] == "vector":
        return 4
    return max(1, sum(_kind_bytes_min(k) for _, k in record_schema(kind[1])))


def _read(r: JuteReader, kind: Kind, what: str) -> Any:
    if kind == "int":
        return r.read_int(what)
    if kind == "long":
        return r.read_long(what)
    if kind == "bool":
        return r.read_bool(what)
    if kind == "buffer":
        return r.read_buffer(what)
    if kind == "ustring":
        return r.read_ustring(what)
    if kind[0] == "vector":
        n = r.read_count(_kind_bytes_min(kind[1]), what)
        return tuple(_read(r, kind[1], what) for _ in range(n))
    return read_record(r, kind[1])


def _write(w: JuteWriter, kind: Kind, v: Any) -> None:
    if kind == "int":
        w.write_int(v)
    elif kind == "long":
        w.write_long(v)
    elif kind == "bool":
        w.write_bool(v)
    elif kind == "buffer":
        w.write_buffer(v)
    elif kind == "ustring":
        w.write_ustring(v)
    elif kind[0] == "vector":
        if not isinstance(v, tuple | list):
            raise LocalProtocolError(f"jute vector must be a tuple: {type(v).__name__}")
        w.write_count(len(v))
        for item in v:
            _write(w, kind[1], item)
    else:
        if not isinstance(v, kind[1]):
            raise LocalProtocolError(f"expected a {kind[1].__name__} record, got {type(v).__name__}")
        write_record(w, v)


def read_record(r: JuteReader, cls: type[R]) -> R:
    """Read one record of class ``cls`` (its fields in order).

    Raises:
        RemoteProtocolError: the bytes are short or malformed.
    """
    values = {name: _read(r, kind, f"{cls.__name__}.{name}") for name, kind in record_schema(cls)}
    return cls(**values)


def write_record(w: JuteWriter, rec: msgspec.Struct) -> None:
    """Write one record's fields in order.

    Raises:
        LocalProtocolError: a field's value does not fit its jute type.
    """
    for name, kind in record_schema(type(rec)):
        _write(w, kind, getattr(rec, name))


def encode_record(rec: msgspec.Struct, *, buffer_bytes_max: int = BUFFER_BYTES_MAX) -> bytes:
    """One record as jute bytes (no length prefix)."""
    w = JuteWriter(buffer_bytes_max=buffer_bytes_max)
    write_record(w, rec)
    return w.getvalue()


def decode_record(cls: type[R], data: bytes, *, buffer_bytes_max: int = BUFFER_BYTES_MAX) -> R:
    """One record of class ``cls`` from exactly ``data``.

    Raises:
        RemoteProtocolError: the bytes are short, malformed, or longer than
            the record.
    """
    r = JuteReader(data, buffer_bytes_max=buffer_bytes_max)
    rec = read_record(r, cls)
    if r.remaining:
        raise RemoteProtocolError(f"jute: {r.remaining} bytes after a {cls.__name__}")
    return rec
