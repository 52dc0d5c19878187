"""Typed factory parameters (DESIGN.md section 6: a cluster config names a
factory and gives it ``params``).

A factory declares its parameters as a :class:`Params` struct and reads the
config's JSON object with :func:`parse_params`. Decoding is strict: an unknown
name, a missing required one, or a value of the wrong type (``"false"`` for a
bool, ``15.9`` for an int of ticks) is a :class:`ConfigError` naming the field,
never a silently coerced value.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from synod.core.codec import explain_path
from synod.core.errors import ConfigError

__all__ = ["Params", "parse_params", "params_to_json"]

_P = TypeVar("_P", bound="Params")


class Params(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of a factory's parameters: annotated fields with defaults for the
    optional ones; ``__post_init__`` may raise ``ValueError`` for a value
    out of range (reported as a ConfigError)."""


def parse_params(raw: Any, cls: type[_P]) -> _P:
    """``raw`` (the config's JSON object) as a ``cls``; ints are accepted for
    floats, nothing else is coerced.

    Raises:
        ConfigError: ``raw`` is not an object, or a field is unknown, missing,
            of the wrong type or out of range; the message names it.
    """
    try:
        return msgspec.convert(raw, cls, strict=True)
    except msgspec.ValidationError as e:
        raise ConfigError(f"bad params for {cls.__name__}: {explain_path(str(e), raw)}") from None


def params_to_json(params: Params) -> dict[str, Any]:
    """A JSON-ready dict of ``params`` (what :func:`parse_params` reads back)."""
    return msgspec.to_builtins(params)
