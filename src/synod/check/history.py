"""Histories in Jepsen's shape, and their pairing into operations.

A *history* is the list of events a test recorded, in real-time order
(Jepsen's ``:history``; DESIGN.md section 7). Every client operation shows up
as two events of the same process: an ``invoke`` when the client called it,
then one completion:

- ``ok``: it happened, and the completion's value is what it returned;
- ``fail``: it certainly did not happen (Jepsen's contract for ``:fail``);
- ``info``: it may or may not have happened, at any time after its invoke
  (a timeout, a crash). An invoke with no completion at all means the same.

:func:`operations` pairs the events into :class:`Operation` records, the unit
the linearizability search works on: one interval ``[call, ret]`` per
operation, with ``ret = INF`` (``math.inf``) for an ``info`` or pending one.

Invariants checked here, each failure a :class:`HistoryError` naming the line:
a process has at most one operation outstanding; a completion names the same
``f`` (and key) as the invoke it completes; a completion has an invoke.

Real-time order is the order of the file. Times, where given, refine it
(equal times are concurrent); where they go backwards (clocks of several
machines, a merged log), they are not trusted at all: as Jepsen's checkers
(Knossos, Elle) do, each event's position stands for its time, and a
:class:`HistoryWarning` says so.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from synod.core.errors import ConfigError

__all__ = ["Event", "HistoryError", "HistoryWarning", "INF", "Operation", "operations", "EVENT_TYPES"]

INF = math.inf
EVENT_TYPES = ("invoke", "ok", "fail", "info")


class HistoryError(ConfigError):
    """A history (or one line of it) is malformed. ``str(err)`` names the
    source and the 1-based line: ``"h.jsonl:12: cas value must be [old, new]"``."""

    def __init__(self, message: str, *, source: str = "", line: int = 0) -> None:
        self.source = source
        self.line = line
        self.reason = message
        where = f"{source}:{line}: " if source and line else (f"{source}: " if source else
                                                               (f"line {line}: " if line else ""))
        super().__init__(where + message)


class HistoryWarning(UserWarning):
    """A history was read with a correction (times going backwards: file
    order used instead). ``str(w)`` names the source and line, as
    :class:`HistoryError` does."""

    def __init__(self, message: str, *, source: str = "", line: int = 0) -> None:
        self.source = source
        self.line = line
        where = f"{source}:{line}: " if source and line else (f"{source}: " if source else "")
        super().__init__(where + message)


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One line of a history.

    ``process``: the client (an int, or a string such as ``"nemesis"``).
    ``type``: one of :data:`EVENT_TYPES`. ``f``: the function (``"read"``,
    ``"cas"``, ``"get"`` ...). ``key``: the object it acts on, or ``None`` for
    a history of one object. ``value``: the argument on an invoke, the result
    on an ``ok``. ``time``: any monotone number (ns in Jepsen), or the event's
    position when the input has no times. ``line``: 1-based source line.
    """

    process: Hashable
    type: str
    f: str
    key: Hashable | None = None
    value: Any = None
    time: float = 0
    line: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Operation:
    """One invoke paired with its completion.

    ``status`` is ``"ok"``, ``"fail"`` or ``"info"`` (``info`` also for an
    invoke never completed). ``value`` is the invoke's argument, ``output``
    the ``ok`` completion's value (``None`` otherwise). ``call`` and ``ret``
    are times; ``ret`` is :data:`INF` for ``info``. ``id`` is the position of
    the invoke among all operations of the history; ``lines`` the source
    lines of invoke and completion (0 when there was none).
    """

    id: int
    process: Hashable
    f: str
    key: Hashable | None
    value: Any
    output: Any
    status: str
    call: float
    ret: float
    lines: tuple[int, int]

    @property
    def known(self) -> bool:
        """True when the operation completed ``ok`` (its output is known)."""
        return self.status == "ok"


def _hashable(value: Any) -> Hashable:
    """Lists (JSON, EDN vectors) as tuples, so keys and values can be hashed."""
    if isinstance(value, list | tuple):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted(((k, _hashable(v)) for k, v in value.items()), key=lambda kv: repr(kv[0])))
    return value


def operations(events: Iterable[Event], *, source: str = "") -> list[Operation]:
    """Pair ``events`` (in real-time order) into operations, ordered by invoke.

    Events of non-integer processes other than clients (Jepsen's
    ``:nemesis``) are skipped. Raises :class:`HistoryError` naming the line on
    a completion without an invoke, an invoke while the process has one
    outstanding, a completion whose ``f`` or key differs from its invoke's, or
    an unknown event type. If times go backwards, warns
    (:class:`HistoryWarning`, once) and uses each event's position as its time.
    """
    clients = [ev for ev in events if ev.process != "nemesis"]
    by_position = _times_go_backwards(clients, source)
    pending: dict[Hashable, tuple[int, Event]] = {}
    slots: list[Operation | tuple[int, Event] | None] = []
    for position, ev in enumerate(clients):
        if ev.type not in EVENT_TYPES:
            raise HistoryError(f"unknown event type {ev.type!r} (want one of {', '.join(EVENT_TYPES)})",
                               source=source, line=ev.line)
        if by_position:
            ev = replace(ev, time=position)
        if ev.type == "invoke":
            if ev.process in pending:
                _, prior = pending[ev.process]
                raise HistoryError(f"process {ev.process} invokes {ev.f} while its {prior.f} "
                                   f"(line {prior.line}) is still outstanding", source=source, line=ev.line)
            pending[ev.process] = (len(slots), ev)
            slots.append(None)
            continue
        if ev.process not in pending:
            raise HistoryError(f"{ev.type} {ev.f} of process {ev.process} has no invoke before it",
                               source=source, line=ev.line)
        index, inv = pending.pop(ev.process)
        if ev.f != inv.f:
            raise HistoryError(f"{ev.type} {ev.f} completes process {ev.process}'s {inv.f} "
                               f"(line {inv.line})", source=source, line=ev.line)
        if ev.key is not None and _hashable(ev.key) != _hashable(inv.key):
            raise HistoryError(f"{ev.type} {ev.f} on key {ev.key!r} completes an invoke on key "
                               f"{inv.key!r} (line {inv.line})", source=source, line=ev.line)
        slots[index] = _op(index, inv, ev)
    for index, inv in pending.values():
        slots[index] = _op(index, inv, None)
    return [op for op in slots if isinstance(op, Operation)]


def _times_go_backwards(events: list[Event], source: str) -> bool:
    """True (after one :class:`HistoryWarning`) if some event's time is
    earlier than the one before it."""
    backwards = [(prev, ev) for prev, ev in zip(events, events[1:]) if ev.time < prev.time]
    if not backwards:
        return False
    prev, ev = backwards[0]
    more = f" (and {len(backwards) - 1} more place(s))" if len(backwards) > 1 else ""
    warnings.warn(HistoryWarning(f"time goes backwards: {ev.time} after {prev.time} (line {prev.line}){more}; "
                                 "taking the file's order as the real-time order, as Jepsen's checkers do",
                                 source=source, line=ev.line), stacklevel=3)
    return True


def _op(index: int, inv: Event, done: Event | None) -> Operation:
    status = done.type if done is not None else "info"
    return Operation(
        id=index, process=inv.process, f=inv.f, key=_hashable(inv.key), value=_hashable(inv.value),
        output=_hashable(done.value) if status == "ok" and done is not None else None,
        status=status, call=inv.time, ret=done.time if status != "info" and done is not None else INF,
        lines=(inv.line, done.line if done is not None else 0))
