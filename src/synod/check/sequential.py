"""Sequential consistency with FIFO client order, as ZooKeeper promises its
plain reads (Hunt et al., USENIX ATC 2010, section 2.3: "all requests from a
given client are executed in the order that they were sent"; reads are
served from a server's local replica; Lamport 1979 for the definition).

The history has one write order, the order the replicas agreed on
(ZooKeeper's zxid order, known from the servers), and each client's
operations in the order it issued them. It is sequentially consistent with
FIFO client order when every client's operations can be placed at points of
that one order, never going back: a client's write sits at its own place,
and a read of key k that returned value v sits at a point where k held v
(after the write that set it, before the next write of k). A client that has
seen point p (its own write, or a read placed at p) can only read at p or
later: no client sees the past again, and every client sees its own writes.

The check is greedy and exact: each read is placed at the earliest point
at or after the client's floor where its value holds, which leaves every
later operation the most room. A write whose outcome the client never
learned (a timeout) moves no floor: it is in the write order if the
replicas committed it, and only there.

Linearizability (real time) is not required here: ZooKeeper gives it to
writes and to reads after a ``sync``; :mod:`synod.check.linearizability`
checks those.
"""

from __future__ import annotations

import bisect
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["OrderedWrite", "ClientOp", "SequentialResult", "check_sequential", "READ", "WRITE"]

READ, WRITE = "read", "write"
VIOLATIONS_MAX = 20


@dataclass(frozen=True, slots=True)
class OrderedWrite:
    """The write at ``position`` of the one write order (a zxid, or any
    increasing number): ``key`` took ``value``."""

    position: int
    key: Hashable
    value: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientOp:
    """One completed operation of a client, in issue order. ``kind`` READ
    (``value`` is what it returned) or WRITE (``position``: where it was
    ordered, None when the client never learned its outcome). ``label``
    names it in a violation (a history line)."""

    kind: str
    key: Hashable
    value: Any = None
    position: int | None = None
    label: str = ""


@dataclass(slots=True)
class SequentialResult:
    """``ok`` when the history is sequentially consistent with FIFO client
    order; ``violations`` says, per offending read, what it returned and
    what its client had already seen; ``reads_checked``."""

    ok: bool
    violations: list[str] = field(default_factory=list)
    reads_checked: int = 0


class _KeyTimeline:
    """The values one key held over the write order: ``positions[i]`` is
    where ``values[i]`` was written (the initial value at -1)."""

    __slots__ = ("positions", "values")

    def __init__(self, initial: Any) -> None:
        self.positions: list[int] = [-1]
        self.values: list[Any] = [initial]

    def earliest_at_or_after(self, floor: int, value: Any) -> int | None:
        """The earliest point >= ``floor`` where the key holds ``value``."""
        i = bisect.bisect_right(self.positions, floor) - 1   # the value in force at ``floor``
        if self.values[i] == value:
            return floor
        for j in range(i + 1, len(self.values)):
            if self.values[j] == value:
                return self.positions[j]
        return None

    def last_at_or_before(self, point: int) -> Any:
        return self.values[bisect.bisect_right(self.positions, point) - 1]


def check_sequential(writes: Iterable[OrderedWrite], clients: dict[Hashable, Sequence[ClientOp]], *,
                     initial: Any = None) -> SequentialResult:
    """Check ``clients``' operations against the one write order ``writes``
    (every key starts at ``initial``).

    Raises:
        ValueError: two writes share a position, or a client's write names
            a position that is not a write of that key.
    """
    order = sorted(writes, key=lambda w: w.position)
    timelines: dict[Hashable, _KeyTimeline] = {}
    by_position: dict[int, OrderedWrite] = {}
    for w in order:
        if w.position in by_position:
            raise ValueError(f"two writes at position {w.position}")
        by_position[w.position] = w
        t = timelines.get(w.key)
        if t is None:
            t = timelines[w.key] = _KeyTimeline(initial)
        t.positions.append(w.position)
        t.values.append(w.value)
    result = SequentialResult(ok=True)
    for client, ops in clients.items():
        floor = -1
        for op in ops:
            if op.kind == WRITE:
                if op.position is None:
                    continue
                w = by_position.get(op.position)
                if w is None or w.key != op.key:
                    raise ValueError(f"client {client!r}: write {op.label or op.key!r} at {op.position}, "
                                     f"not a write of that key")
                if op.position < floor:
                    result.ok = False
                    _add(result, f"client {client!r}: write {op.label} ordered at {op.position}, before "
                                 f"{floor} which the client had already seen")
                floor = max(floor, op.position)
                continue
            if op.kind != READ:
                raise ValueError(f"unknown operation kind {op.kind!r}")
            result.reads_checked += 1
            t = timelines.get(op.key) or _KeyTimeline(initial)
            point = t.earliest_at_or_after(floor, op.value)
            if point is None:
                result.ok = False
                _add(result, f"client {client!r}: read {op.label or op.key!r} returned {op.value!r}, but from "
                             f"position {floor} on (what the client had already seen) the key held "
                             f"{t.last_at_or_before(floor)!r} and later values, never {op.value!r}")
                continue
            floor = point
    return result


def _add(result: SequentialResult, text: str) -> None:
    if len(result.violations) < VIOLATIONS_MAX:
        result.violations.append(text)
