"""The command table: what each Redis command is (arity, flags, key
positions), in the shape of Redis's ``COMMAND INFO``
(https://redis.io/docs/latest/commands/command/).

Each part of the store registers its commands here with :func:`command`;
the node reads the table to classify a request (connection-level, read,
write, blocking), to check arity before queueing it in a MULTI, to find the
keys a write touches (waking blocked clients, WATCH), and to answer
``COMMAND COUNT`` / ``COMMAND INFO`` / ``COMMAND DOCS``.

Arity follows Redis: ``n`` > 0 means exactly n words including the name;
``-n`` means at least n.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CommandSpec", "command", "lookup", "all_commands", "WOULD_BLOCK",
    "WRITE", "READONLY", "FAST", "BLOCKING", "CONNECTION", "ADMIN", "NOSCRIPT", "DENYOOM",
    "keys_of", "arity_ok",
]

# Flags, named as COMMAND INFO names them.
WRITE = "write"
READONLY = "readonly"
FAST = "fast"
BLOCKING = "blocking"
DENYOOM = "denyoom"
ADMIN = "admin"
NOSCRIPT = "noscript"
# Served by the node itself, never logged (PING, HELLO, CLIENT, MULTI...).
CONNECTION = "connection"


class _WouldBlock:
    """What a blocking command's handler returns when nothing is available
    yet: the node parks the client (see synod.kv.node)."""

    def __repr__(self) -> str:
        return "WOULD_BLOCK"


WOULD_BLOCK = _WouldBlock()


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """One command. ``name``: lower case; ``arity``: see the module doc;
    ``flags``: a frozenset of the flag names above; ``first_key``,
    ``last_key`` (negative: counted from the end, -1 the last word),
    ``step``: key positions as COMMAND INFO gives them (0, 0, 0: no keys);
    ``handler``: ``handler(keyspace, args, now_ms) -> Reply`` (or
    ``WOULD_BLOCK``), where ``args`` excludes the name; None for a command
    the node serves itself; ``summary``: one line for COMMAND DOCS;
    ``keys_fn``: for commands whose keys COMMAND INFO cannot express (a
    ``numkeys`` argument, as LMPOP and BLMPOP have), ``keys_fn(args) -> list
    of keys`` (args excluding the name)."""

    name: str
    arity: int
    flags: frozenset[str]
    first_key: int
    last_key: int
    step: int
    handler: Callable[..., Any] | None
    summary: str = ""
    keys_fn: Callable[[list[bytes]], list[bytes]] | None = None


_TABLE: dict[str, CommandSpec] = {}


def command(name: str, arity: int, flags: tuple[str, ...], first_key: int = 0, last_key: int = 0,
            step: int = 0, summary: str = "",
            keys_fn: Callable[[list[bytes]], list[bytes]] | None = None) -> Callable[[Any], Any]:
    """Decorator registering ``handler`` as command ``name``.

    Raises:
        ValueError: ``name`` registered twice.
    """

    def wrap(handler: Any) -> Any:
        register(CommandSpec(name=name.lower(), arity=arity, flags=frozenset(flags), first_key=first_key,
                             last_key=last_key, step=step, handler=handler, summary=summary, keys_fn=keys_fn))
        return handler

    return wrap


def register(spec: CommandSpec) -> None:
    """Add ``spec`` to the table. Raises ValueError: its name is taken."""
    if spec.name in _TABLE:
        raise ValueError(f"command {spec.name!r} registered twice")
    _TABLE[spec.name] = spec


def lookup(name: bytes | str) -> CommandSpec | None:
    """The spec of command ``name`` (any case), or None if unknown."""
    if isinstance(name, bytes):
        try:
            name = name.decode("ascii")
        except UnicodeDecodeError:
            return None
    return _TABLE.get(name.lower())


def all_commands() -> dict[str, CommandSpec]:
    """A copy of the table, name -> spec."""
    return dict(_TABLE)


def arity_ok(spec: CommandSpec, nwords: int) -> bool:
    """``nwords`` (the name included) fits the spec's arity."""
    return nwords == spec.arity if spec.arity > 0 else nwords >= -spec.arity


def keys_of(spec: CommandSpec, args: list[bytes]) -> list[bytes]:
    """The keys a command names; ``args`` excludes the name."""
    if spec.keys_fn is not None:
        return spec.keys_fn(args)
    if spec.first_key == 0:
        return []
    words = len(args) + 1
    last = spec.last_key if spec.last_key >= 0 else words + spec.last_key
    return [args[i - 1] for i in range(spec.first_key, min(last, words - 1) + 1, spec.step or 1)]
