"""Recording a history in Jepsen's shape (DESIGN.md section 7): each client
operation is an ``invoke`` and then one completion, ``ok`` (it happened,
with its result), ``fail`` (it did not happen) or ``info`` (it may or may
not have happened, at any time after its invoke).

The recorder takes its times from a clock it is given (the simulator's true
virtual time, not a node's skewed clock), so real-time order in the history
is the order the checker must respect.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable
from typing import Any

from synod.check.history import Event

__all__ = ["HistoryRecorder"]


class HistoryRecorder:
    """Collects :class:`~synod.check.history.Event` s. ``clock()`` gives the
    time of each event (ms, monotone)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.events: list[Event] = []

    def record(self, process: Hashable, type_: str, f: str, key: Hashable | None, value: Any) -> None:
        """Append one event (``type_``: invoke | ok | fail | info) at ``clock()``."""
        self.events.append(Event(process=process, type=type_, f=f, key=key, value=value, time=self.clock(),
                                 line=len(self.events) + 1))

    def counts(self) -> dict[str, int]:
        """Events by type: ``{"invoke": n, "ok": n, "fail": n, "info": n}``."""
        out = {"invoke": 0, "ok": 0, "fail": 0, "info": 0}
        for e in self.events:
            out[e.type] += 1
        return out

    def jsonl(self) -> str:
        """The history as JSON lines, the format ``synod check lin`` reads
        (one event per line, in real-time order, ``time`` in ms)."""
        return "".join(json.dumps({"process": e.process, "type": e.type, "f": e.f, "key": e.key,
                                   "value": e.value, "time": e.time}) + "\n" for e in self.events)
