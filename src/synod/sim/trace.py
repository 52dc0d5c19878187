"""JSON-lines traces of simulated runs (DESIGN.md section 5).

One object per line: ``{"t_ms": ..., "node": ..., "kind": ..., ...fields}``.
Kinds written by the simulator: ``send``, ``recv``, ``drop``, ``timer``,
``crash``, ``restart``, ``pause``, ``resume``, ``exit``, ``clock``,
``nemesis``; nodes add their own through ``ctx.trace``. Field order is fixed
by the writer and messages are rendered as
:func:`synod.core.codec.to_jsonable` renders them, so the same run gives
byte-identical lines.

Tracing is on the hot path of every traced run (two lines per delivery), so
the writer keeps one JSON encoder and a per-class cache of message field
names instead of asking :mod:`dataclasses` for each message; the output is
exactly ``to_jsonable``'s.
"""

from __future__ import annotations

import json
from typing import IO, Any

from synod.core.codec import message_fields, message_tag, to_jsonable
from synod.core.errors import LocalProtocolError

__all__ = ["Tracer", "jsonable"]

_encode_py = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def _default(obj: Any) -> Any:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


if json.encoder.c_make_encoder is not None:
    # json.dumps builds a fresh C encoder for every call; build one, once. Its
    # markers dict (for circular references) is emptied again after a failure.
    _markers: dict[int, Any] = {}
    _c_encode = json.encoder.c_make_encoder(
        _markers, _default, json.encoder.encode_basestring, None, ":", ",", False, False, False)

    def _encode(record: dict[str, Any]) -> str:
        try:
            return "".join(_c_encode(record, 0))
        except BaseException:
            _markers.clear()
            raise
else:  # pragma: no cover - CPython always has the C encoder
    _encode = _encode_py

# Values JSON takes as they are (exact types: subclasses go the long way).
_PLAIN = frozenset({str, int, float, bool, type(None)})

# class -> (tag, field names) for registered messages, None for anything else.
_message_specs: dict[type, tuple[str, tuple[str, ...]] | None] = {}


def _message_spec(cls: type) -> tuple[str, tuple[str, ...]] | None:
    try:
        tag = message_tag(cls)
    except LocalProtocolError:
        spec = None
    else:
        spec = (tag, message_fields(cls))
    # A class is registered when it is defined, before any instance exists,
    # so caching a negative answer is safe.
    _message_specs[cls] = spec
    return spec


def jsonable(obj: Any) -> Any:
    """``to_jsonable(obj)``, faster for scalars and registered messages."""
    cls = type(obj)
    if cls in _PLAIN:
        return obj
    try:
        spec = _message_specs[cls]
    except KeyError:
        spec = _message_spec(cls)
    if spec is None:
        return to_jsonable(obj)
    tag, names = spec
    out: dict[str, Any] = {"type": tag}
    for name in names:
        out[name] = jsonable(getattr(obj, name))
    return out


class Tracer:
    """Collects trace lines in memory (``lines``) and/or writes them to ``out``."""

    def __init__(self, out: IO[str] | None = None, *, keep: bool = False) -> None:
        self._out = out
        self.lines: list[str] | None = [] if keep else None
        self.count = 0

    def emit(self, t_ms: float, node: str, kind: str, fields: dict[str, Any]) -> None:
        record = {"t_ms": round(t_ms, 6), "node": node, "kind": kind}
        for k, v in fields.items():
            record[k] = v if type(v) in _PLAIN else jsonable(v)
        line = _encode(record)
        self.count += 1
        if self.lines is not None:
            self.lines.append(line)
        if self._out is not None:
            self._out.write(line + "\n")
