"""The one codec for everything on the wire and in traces (DESIGN.md section 3).

A message type is a frozen, slotted, keyword-only dataclass registered under a
type tag with :func:`message`. On the wire a message is a msgpack extension
(code 1) holding ``[tag, field_1, ..., field_n]`` in field order, so messages
nest inside other messages and inside plain lists and maps.

Decoding is strict: an unknown tag, a wrong number of fields, a field whose
value does not match its annotation, bytes that are not msgpack, or a frame
over ``frame_size_bytes_max`` raise :class:`RemoteProtocolError`. Nothing a
peer sends can construct anything but a registered message.

Supported field annotations: ``int``, ``float``, ``str``, ``bytes``, ``bool``,
``None``, unions (``X | None``), ``tuple[T, ...]``, ``tuple[A, B]``,
``list[T]``, ``dict[K, V]``, ``typing.Any`` and other registered messages.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from typing import Any, TypeVar

import msgpack

from synod.core.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "message",
    "encode",
    "decode",
    "encoded_size_bytes",
    "message_tag",
    "registered_types",
    "to_jsonable",
    "FRAME_SIZE_BYTES_MAX",
]

# Default upper bound on one encoded frame; the runtime may pass a smaller one.
FRAME_SIZE_BYTES_MAX = 64 * 1024 * 1024

_EXT_MESSAGE = 1
_T = TypeVar("_T")

_tag_to_class: dict[str, type] = {}
_class_to_tag: dict[type, str] = {}
# Per class: list of (field name, validator), compiled on first decode because
# annotations may name classes defined later in the module.
_validators: dict[type, list[tuple[str, Callable[[Any], Any]]]] = {}


def message(tag: str) -> Callable[[type[_T]], type[_T]]:
    """Class decorator: make ``cls`` a frozen, slotted, keyword-only dataclass
    and register it under ``tag`` (for example ``"mr.RequestTask"``).

    Raises:
        LocalProtocolError: the tag or the class is already registered.
    """

    def wrap(cls: type[_T]) -> type[_T]:
        if tag in _tag_to_class:
            raise LocalProtocolError(f"message tag {tag!r} registered twice")
        dc = dataclasses.dataclass(frozen=True, slots=True, kw_only=True)(cls)
        _tag_to_class[tag] = dc
        _class_to_tag[dc] = tag
        return dc

    return wrap


def message_tag(msg_or_cls: Any) -> str:
    """The registered tag of a message instance or class."""
    cls = msg_or_cls if isinstance(msg_or_cls, type) else type(msg_or_cls)
    return _class_to_tag[cls]


def registered_types() -> dict[str, type]:
    """A copy of the registry: tag -> message class."""
    return dict(_tag_to_class)


def _default(obj: Any) -> Any:
    tag = _class_to_tag.get(type(obj))
    if tag is None:
        raise LocalProtocolError(f"cannot encode {type(obj).__name__}: not a registered message")
    values = [tag]
    for f in dataclasses.fields(obj):
        values.append(getattr(obj, f.name))
    return msgpack.ExtType(_EXT_MESSAGE, msgpack.packb(values, default=_default, use_bin_type=True))


def encode(obj: Any) -> bytes:
    """Encode a message (or a plain structure holding messages) to bytes.

    Raises:
        LocalProtocolError: ``obj`` holds an object that is not encodable.
    """
    try:
        return msgpack.packb(obj, default=_default, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as e:
        raise LocalProtocolError(f"cannot encode {type(obj).__name__}: {e}") from e


def encoded_size_bytes(obj: Any) -> int:
    """Size in bytes of ``encode(obj)``; the simulator uses it for bandwidth."""
    return len(encode(obj))


def _ext_hook(code: int, data: bytes) -> Any:
    if code != _EXT_MESSAGE:
        raise RemoteProtocolError(f"unknown msgpack extension code {code}")
    values = msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)
    if not isinstance(values, list) or not values or not isinstance(values[0], str):
        raise RemoteProtocolError("message extension is not [tag, fields...]")
    cls = _tag_to_class.get(values[0])
    if cls is None:
        raise RemoteProtocolError(f"unknown message tag {values[0]!r}")
    validators = _validators.get(cls)
    if validators is None:
        validators = _compile(cls)
    if len(values) != len(validators) + 1:
        raise RemoteProtocolError(
            f"{values[0]}: expected {len(validators)} fields, got {len(values) - 1}"
        )
    kwargs = {}
    for (name, check), value in zip(validators, values[1:]):
        try:
            kwargs[name] = check(value)
        except _Mismatch as e:
            raise RemoteProtocolError(f"{values[0]}.{name}: {e}") from None
    return cls(**kwargs)


def decode(data: bytes, frame_size_bytes_max: int = FRAME_SIZE_BYTES_MAX) -> Any:
    """Decode bytes made by :func:`encode`.

    Raises:
        RemoteProtocolError: oversize frame, bytes that are not msgpack,
            trailing bytes, an unknown tag or a field of the wrong type.
    """
    if len(data) > frame_size_bytes_max:
        raise RemoteProtocolError(f"frame of {len(data)} bytes exceeds {frame_size_bytes_max}")
    try:
        return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)
    except RemoteProtocolError:
        raise
    except Exception as e:  # msgpack raises several unrelated types on garbage
        raise RemoteProtocolError(f"malformed frame: {type(e).__name__}: {e}") from None


class _Mismatch(Exception):
    pass


def _compile(cls: type) -> list[tuple[str, Callable[[Any], Any]]]:
    hints = typing.get_type_hints(cls)
    out = [(f.name, _validator(hints[f.name])) for f in dataclasses.fields(cls)]
    _validators[cls] = out
    return out


def _exact(t: type) -> Callable[[Any], Any]:
    def check(v: Any) -> Any:
        if type(v) is not t:
            raise _Mismatch(f"expected {t.__name__}, got {type(v).__name__}")
        return v

    return check


def _float(v: Any) -> float:
    if type(v) is float:
        return v
    if type(v) is int:
        return float(v)
    raise _Mismatch(f"expected float, got {type(v).__name__}")


def _none(v: Any) -> None:
    if v is not None:
        raise _Mismatch(f"expected None, got {type(v).__name__}")
    return None


def _any(v: Any) -> Any:
    return v


def _validator(hint: Any) -> Callable[[Any], Any]:
    if hint is Any:
        return _any
    if hint is None or hint is type(None):
        return _none
    if hint is float:
        return _float
    if hint in (int, str, bytes, bool):
        return _exact(hint)
    if hint in _class_to_tag:
        return _instance(hint)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return _union([_validator(a) for a in args])
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return _sequence(_validator(args[0]), tuple)
        return _fixed_tuple([_validator(a) for a in args])
    if origin is list:
        return _sequence(_validator(args[0]) if args else _any, list)
    if origin is dict:
        return _mapping(_validator(args[0]), _validator(args[1]))
    raise LocalProtocolError(f"unsupported message field annotation {hint!r}")


def _instance(cls: type) -> Callable[[Any], Any]:
    def check(v: Any) -> Any:
        if type(v) is not cls:
            raise _Mismatch(f"expected {cls.__name__}, got {type(v).__name__}")
        return v

    return check


def _union(checks: list[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    def check(v: Any) -> Any:
        for c in checks:
            try:
                return c(v)
            except _Mismatch:
                continue
        raise _Mismatch(f"{type(v).__name__} matches no member of the union")

    return check


def _sequence(item: Callable[[Any], Any], kind: type) -> Callable[[Any], Any]:
    def check(v: Any) -> Any:
        if type(v) is not list:
            raise _Mismatch(f"expected array, got {type(v).__name__}")
        if item is _any:
            return kind(v)
        return kind(item(x) for x in v)

    return check


def _fixed_tuple(items: list[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    def check(v: Any) -> Any:
        if type(v) is not list or len(v) != len(items):
            raise _Mismatch(f"expected array of {len(items)}")
        return tuple(c(x) for c, x in zip(items, v))

    return check


def _mapping(key: Callable[[Any], Any], value: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def check(v: Any) -> Any:
        if type(v) is not dict:
            raise _Mismatch(f"expected map, got {type(v).__name__}")
        return {key(k): value(x) for k, x in v.items()}

    return check


def to_jsonable(obj: Any) -> Any:
    """A JSON-ready view of a message or structure, for traces: messages become
    ``{"type": tag, field: value...}``; bytes become ``{"bytes": length}``."""
    tag = _class_to_tag.get(type(obj))
    if tag is not None:
        out: dict[str, Any] = {"type": tag}
        for f in dataclasses.fields(obj):
            out[f.name] = to_jsonable(getattr(obj, f.name))
        return out
    if isinstance(obj, (bytes, bytearray)):
        return {"bytes": len(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    return obj
