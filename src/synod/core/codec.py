"""The one codec for everything on the wire and in traces (DESIGN.md section 3).

A message type subclasses :class:`Message` with a tag, for example::

    class RequestTask(Message, tag="mr.RequestTask"):
        worker_id: str
        incarnation: int

It is a frozen, keyword-only `msgspec <https://jcristharif.com/msgspec/>`_
Struct, encoded as a msgpack array ``[tag, field_1, ..., field_n]`` in field
order, so messages nest inside messages, lists and maps.

Decoding is typed and strict: :func:`decode` takes the type expected
(``Message`` for any registered message, a message class, or any type msgspec
understands such as ``list[Entry]`` or ``dict[str, list[str]]``). An unknown
tag, a wrong number of fields, a field whose value does not match its
annotation (``True`` for an ``int``, ``1.5`` for an ``int``, ``"1"`` for a
``bool``), bytes that are not msgpack, trailing bytes, or a frame over
``frame_size_bytes_max`` raise :class:`RemoteProtocolError`. Nothing a peer
sends can construct anything but the type asked for. Decoded without a type
(``Any``), data comes back as plain lists, maps and scalars: a message inside
an ``Any`` field or a plain structure decodes as its array, so such fields
carry plain data only.
"""

from __future__ import annotations

import enum
import re
import types
import typing
from typing import Any

import msgspec

from synod.core.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "Message",
    "encode",
    "encode_into",
    "decode",
    "encoded_size_bytes",
    "message_tag",
    "message_fields",
    "any_message_type",
    "registered_types",
    "to_jsonable",
    "explain_path",
    "FRAME_SIZE_BYTES_MAX",
]

# Default upper bound on one encoded frame; the runtime may pass a smaller one.
FRAME_SIZE_BYTES_MAX = 64 * 1024 * 1024

_tag_to_class: dict[str, type] = {}
_decoders: dict[Any, msgspec.msgpack.Decoder] = {}
_encoder = msgspec.msgpack.Encoder()


class _MessageMeta(msgspec.StructMeta):
    """Makes every message's fields keyword-only (msgspec's ``kw_only``
    covers only the fields of the class that sets it) and registers each
    tagged class when it is defined."""

    def __new__(mcls, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any) -> type:
        kwargs.setdefault("kw_only", True)
        cls = super().__new__(mcls, name, bases, namespace, **kwargs)
        tag = cls.__struct_config__.tag
        if tag is not None:
            if not isinstance(tag, str):
                raise LocalProtocolError(f"message class {name}: the tag must be a str, got {tag!r}")
            other = _tag_to_class.get(tag)
            if other is not None:
                raise LocalProtocolError(
                    f"message tag {tag!r} registered twice ({other.__module__}.{other.__qualname__} "
                    f"and {cls.__module__}.{cls.__qualname__})")
            _tag_to_class[tag] = cls
            _decoders.clear()  # decoders of "any message" must see the new class
        return cls


class Message(msgspec.Struct, metaclass=_MessageMeta, frozen=True, array_like=True, forbid_unknown_fields=True):
    """Base of every message. Subclass it with ``tag="system.Name"``; fields
    are annotated attributes (``int``, ``float``, ``str``, ``bytes``,
    ``bool``, ``None``, unions, ``tuple[T, ...]``, ``list[T]``,
    ``dict[K, V]``, other messages, ``Any`` for plain data), keyword-only.
    A class without a tag is an abstract base and is not registered.
    ``__post_init__`` runs on decode too; a ``ValueError`` it raises rejects
    the frame.

    Raises:
        LocalProtocolError: (at class definition) the tag is already registered.
    """


def message_tag(msg_or_cls: Any) -> str:
    """The registered tag of a message instance or class.

    Raises:
        LocalProtocolError: not a tagged message.
    """
    cls = msg_or_cls if isinstance(msg_or_cls, type) else type(msg_or_cls)
    tag = getattr(getattr(cls, "__struct_config__", None), "tag", None)
    if not isinstance(tag, str) or not issubclass(cls, Message):
        raise LocalProtocolError(f"{cls.__name__} is not a registered message")
    return tag


def message_fields(msg_or_cls: Any) -> tuple[str, ...]:
    """Field names of a message instance or class, in wire order."""
    cls = msg_or_cls if isinstance(msg_or_cls, type) else type(msg_or_cls)
    return cls.__struct_fields__


def registered_types() -> dict[str, type]:
    """A copy of the registry: tag -> message class."""
    return dict(_tag_to_class)


def any_message_type() -> Any:
    """The type "any registered message" (a tagged union of every class
    registered so far), for use inside a larger type given to :func:`decode`.

    Raises:
        LocalProtocolError: no message is registered.
    """
    classes = tuple(_tag_to_class.values())
    if not classes:
        raise LocalProtocolError("no message types are registered")
    return typing.Union[classes]  # noqa: UP007 (a runtime tuple of classes)


def encode(obj: Any) -> bytes:
    """Encode a message (or a plain structure holding messages) to msgpack.

    Raises:
        LocalProtocolError: ``obj`` holds an object that is not encodable
            (not a message or plain data, or an int outside 64 bits).
    """
    try:
        return _encoder.encode(obj)
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError) as e:
        raise LocalProtocolError(f"cannot encode {type(obj).__name__}: {e}") from e


def encode_into(obj: Any, buffer: bytearray, offset: int) -> None:
    """Encode ``obj`` as :func:`encode` does, into ``buffer`` from ``offset``
    on (``buffer`` grows or shrinks to end where the encoding ends): one
    copy of a large ``bytes`` field instead of two when the caller needs
    bytes before the encoding (a frame's header).

    Raises:
        LocalProtocolError: as :func:`encode`.
    """
    try:
        _encoder.encode_into(obj, buffer, offset)
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError) as e:
        raise LocalProtocolError(f"cannot encode {type(obj).__name__}: {e}") from e


def encoded_size_bytes(obj: Any) -> int:
    """Size in bytes of ``encode(obj)``; the simulator uses it for bandwidth."""
    return len(encode(obj))


def _substitute(type_: Any) -> Any:
    """``type_`` with ``Message`` anywhere in it replaced by the union of every
    registered message (``tuple[str, int, Message]`` -> ``tuple[str, int, A | B | ...]``)."""
    if type_ is Message:
        return any_message_type()
    args = typing.get_args(type_)
    if not args:
        return type_
    new = tuple(a if a is Ellipsis else _substitute(a) for a in args)
    if new == args:
        return type_
    origin = typing.get_origin(type_)
    if origin in (typing.Union, types.UnionType):
        return typing.Union[new]  # noqa: UP007
    return origin[new]


def _decoder(type_: Any) -> msgspec.msgpack.Decoder:
    dec = _decoders.get(type_)
    if dec is None:
        target = _substitute(type_)
        try:
            dec = msgspec.msgpack.Decoder(target)
        except TypeError as e:
            raise LocalProtocolError(f"cannot decode into {type_!r}: {e}") from e
        _decoders[type_] = dec
    return dec


def decode(data: bytes, type: Any = Any, frame_size_bytes_max: int = FRAME_SIZE_BYTES_MAX) -> Any:  # noqa: A002
    """Decode bytes made by :func:`encode` as a value of ``type``:
    ``Message`` (any registered message), a message class, any type msgspec
    decodes, ``Any`` (plain data, the default), or a type holding ``Message``
    (``tuple[str, int, Message]``). Decoders are built once per type, so
    pass the same type object each time.

    Raises:
        RemoteProtocolError: oversize frame, bytes that are not msgpack,
            trailing bytes, an unknown tag, a wrong field count or type, or a
            message whose ``__post_init__`` rejects it.
        LocalProtocolError: ``type`` is not a type msgspec can decode.
    """
    if len(data) > frame_size_bytes_max:
        raise RemoteProtocolError(f"frame of {len(data)} bytes exceeds {frame_size_bytes_max}")
    try:
        return _decoder(type).decode(data)
    except msgspec.ValidationError as e:
        raise RemoteProtocolError(f"invalid frame: {_name_fields(str(e), data)}") from None
    except msgspec.DecodeError as e:
        raise RemoteProtocolError(f"malformed frame: {e}") from None


_PATH = re.compile(r"`\$((?:\[\d+\]|\.[A-Za-z_]\w*)*)[^`]*`")
_STEP = re.compile(r"\[(\d+)\]|\.([A-Za-z_]\w*)")


def explain_path(error: str, value: Any) -> str:
    """msgspec's validation ``error`` with its path (``$[2][4][0][2]``,
    ``$.job[5]``) followed through ``value`` (the data as plain lists and
    maps), so positions inside messages read as fields (``[2]
    raft.AppendEntries.entries[0] raft.Entry.index``, ``job mr.JobSpec.nreduce``)."""
    m = _PATH.search(error)
    if m is None:
        return error
    out, named = "", False
    for step in _STEP.finditer(m.group(1)):
        if step.group(2) is not None:
            if not isinstance(value, dict) or step.group(2) not in value:
                return error
            out += f" {step.group(2)}"
            value = value[step.group(2)]
            named = True
            continue
        k = int(step.group(1))
        if not isinstance(value, list) or k >= len(value):
            return error
        cls = _tag_to_class.get(value[0]) if value and isinstance(value[0], str) else None
        if k == 0 and cls is None and isinstance(value[0], str) and error.startswith("Invalid value"):
            return f"unknown message tag {value[0]!r} - at {out.strip() or '$'}"
        if cls is not None and 1 <= k <= len(cls.__struct_fields__):
            out += f" {value[0]}.{cls.__struct_fields__[k - 1]}"
            named = True
        else:
            out += f"[{k}]"
        value = value[k]
    return error[:m.start()] + out.strip() + error[m.end():] if named else error


def _name_fields(error: str, data: bytes) -> str:
    """:func:`explain_path` for a frame that failed to decode (error path only)."""
    try:
        value = msgspec.msgpack.decode(data)
    except msgspec.DecodeError:
        return error
    return explain_path(error, value)


def to_jsonable(obj: Any) -> Any:
    """A JSON-ready view of a message or structure, for traces: messages become
    ``{"type": tag, field: value...}`` (other msgspec structs likewise, by
    their tag or class name; enums by value); bytes (and views of them, as
    ``memoryview`` fields decode) become ``{"bytes": length}``."""
    if isinstance(obj, Message):
        out: dict[str, Any] = {"type": message_tag(obj)}
        for name in obj.__struct_fields__:
            out[name] = to_jsonable(getattr(obj, name))
        return out
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return {"bytes": len(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, msgspec.Struct):   # a record inside a message (not a message itself)
        tag = obj.__struct_config__.tag
        out = {"type": tag if isinstance(tag, str) else type(obj).__name__}
        for name in obj.__struct_fields__:
            out[name] = to_jsonable(getattr(obj, name))
        return out
    if isinstance(obj, enum.Enum):
        return to_jsonable(obj.value)
    return obj
