"""The trace model: lanes, message arrows, down and paused intervals, role
and term spans, client operations and point events, from trace records.

Lanes. One per node named in the trace (as ``node``, a send's ``dst`` or a
recv's ``src``), in three groups: the nemesis lane (faults) on top, then
the nodes, then the clients (lanes with ``client_op`` events); names sort
naturally within a group (``n2`` before ``n10``).

Intervals. A node is **down** from ``crash`` or ``exit`` until ``restart``
(or a real process's ``start``), and **paused** from ``pause`` until
``resume`` (or a crash); an interval still open when the trace ends runs to
its end, marked ``open``.

States. A ``state`` event (``{"kind": "state", "role": "leader", "term":
3}``) starts a span on its lane that lasts until the node's next state
event, crash or exit: a node that restarts has no known role until it
reports one.

Client operations. ``client_op`` events with ``type`` ``invoke`` then
``ok``, ``fail`` or ``info`` (Jepsen's shape) pair per (lane, ``process``),
the process defaulting to the lane: one operation at a time per process. An
invoke with no completion is pending to the end of the trace.

Nemesis bands. The nemesis's ``partition`` and ``link`` actions last until
``heal_partition``/``heal_link`` (or ``heal_and_stop``). A partition's band
and marker name its groups (``partition symmetric: s1 s4 | s2 s3``), a
crash, pause or clock marker its target (:func:`nemesis_label`).

Checks. A ``check`` record (``{"kind": "check", "verdict": "illegal",
"failing": [{"history_line": 827, "role": "stuck"}, ...]}``, written by a
run whose history failed its checker) names the client operations of the
failing window by the history line of their invoke; client operations carry
that line as ``history_line``. Check records get no lane and no marker: the
viewer highlights the operations they name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synod.viz._load import Record, read_trace
from synod.viz._pairing import DELIVERED, DROPPED, IN_FLIGHT, Arrow, Pairing, pair_messages
from synod.viz.constants import CLIENT_OP_ROWS_MAX

__all__ = ["TraceModel", "Interval", "StateSpan", "ClientOp", "Band", "build_model", "load_model", "lane_order",
           "nemesis_label", "partition_groups"]

NEMESIS_LANE = "nemesis"
_MESSAGE_KINDS = frozenset({"send", "recv", "drop"})
_DOWN_KINDS = frozenset({"crash", "exit"})
_UP_KINDS = frozenset({"restart", "start"})
_COMPLETIONS = frozenset({"ok", "fail", "info"})
_CHECK_KIND = "check"
_BAND_ENDS = {"partition": ("heal_partition", "heal_and_stop"), "link": ("heal_link", "heal_and_stop")}


@dataclass(slots=True)
class Interval:
    """A node ``down`` or ``paused`` over [start_ms, end_ms]; ``open``: the
    trace ended first. ``first``/``last``: the records that began and ended it."""

    node: str
    what: str
    start_ms: float
    end_ms: float
    first: Record
    last: Record | None = None
    open: bool = False


@dataclass(slots=True)
class StateSpan:
    """A node's reported state (``role``, ``term``) over [start_ms, end_ms]."""

    node: str
    start_ms: float
    end_ms: float
    role: str
    term: Any
    record: Record


@dataclass(slots=True)
class ClientOp:
    """One client operation from its invoke to its completion (None: pending
    at the end); ``outcome``: ok, fail, info, or None when pending."""

    node: str
    process: Any
    f: Any
    value: Any
    invoke: Record
    complete: Record | None = None
    outcome: str | None = None
    row: int = 0
    end_ms: float = 0.0
    key: Any = None
    value_read: bool = False  # ``value`` came from the completion (a read's result)
    failing: str | None = None  # its role in a failed check's window ("stuck", "pending"), if any

    def label(self) -> str:
        """``f key value``; a value that came with an ``ok`` completion (a
        read's result) after an arrow, ``nil`` when it read nothing."""
        parts = [_label(self.f)]
        if self.key is not None:
            parts.append(_label(self.key))
        if self.value_read:
            parts.append("\u2192 " + ("nil" if self.value is None else _label(self.value)))
        elif self.value is not None:
            parts.append(_label(self.value))
        return " ".join(parts)


@dataclass(slots=True)
class Band:
    """A lasting fault on the nemesis lane (a partition, link faults);
    ``row``: 0 for partitions, 1 for link faults, so overlapping ones show."""

    node: str
    label: str
    start_ms: float
    end_ms: float
    first: Record
    last: Record | None = None
    row: int = 0


@dataclass(slots=True)
class TraceModel:
    """Everything the viewer draws. ``points``: records shown as markers
    (timers, crashes, node-defined events, orphan recvs/drops...)."""

    records: list[Record]
    lanes: list[str]
    start_ms: float
    end_ms: float
    pairing: Pairing
    intervals: list[Interval] = field(default_factory=list)
    states: list[StateSpan] = field(default_factory=list)
    client_ops: list[ClientOp] = field(default_factory=list)
    bands: list[Band] = field(default_factory=list)
    points: list[Record] = field(default_factory=list)
    checks: list[Record] = field(default_factory=list)

    @property
    def arrows(self) -> list[Arrow]:
        return self.pairing.arrows

    def message_counts(self) -> dict[str, Any]:
        """Each message sent counted once, by its fate, so that ``messages ==
        delivered + dropped + in_flight``; ``dropped_by`` splits the drops by
        reason (loss, partition, node down...). The network's extra copies
        are counted apart: ``duplicates`` (``duplicates_delivered`` +
        ``duplicates_dropped``); ``orphans``: recvs and drops with no send."""
        counts = {DELIVERED: 0, DROPPED: 0, IN_FLIGHT: 0}
        dup = {DELIVERED: 0, DROPPED: 0}
        by_reason: dict[str, int] = {}
        for a in self.arrows:
            if a.duplicate:
                dup[a.status] += 1
                continue
            counts[a.status] += 1
            if a.status == DROPPED:
                reason = a.reason or "unknown"
                by_reason[reason] = by_reason.get(reason, 0) + 1
        messages = counts[DELIVERED] + counts[DROPPED] + counts[IN_FLIGHT]
        return {"messages": messages, "delivered": counts[DELIVERED], "dropped": counts[DROPPED],
                "in_flight": counts[IN_FLIGHT],
                "dropped_by": dict(sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0]))),
                "duplicates": dup[DELIVERED] + dup[DROPPED], "duplicates_delivered": dup[DELIVERED],
                "duplicates_dropped": dup[DROPPED], "orphans": len(self.pairing.orphans)}

    def down(self, node: str) -> list[tuple[float, float]]:
        """(start, end) of the node's down intervals, in order."""
        return [(iv.start_ms, iv.end_ms) for iv in self.intervals if iv.node == node and iv.what == "down"]

    def paused(self, node: str) -> list[tuple[float, float]]:
        return [(iv.start_ms, iv.end_ms) for iv in self.intervals if iv.node == node and iv.what == "paused"]


def _natural_key(name: str) -> list[Any]:
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.lower()) for part in re.split(r"(\d+)", name)]


def lane_order(nodes: set[str], clients: set[str]) -> list[str]:
    """Nemesis first, then nodes, then clients; natural order within each."""

    def group(name: str) -> int:
        if name == NEMESIS_LANE:
            return 0
        return 2 if name in clients else 1

    return sorted(nodes, key=lambda n: (group(n), _natural_key(n), n))


def _lanes(records: list[Record]) -> list[str]:
    nodes: set[str] = set()
    clients: set[str] = set()
    for r in records:
        kind = r.kind
        if kind == _CHECK_KIND:
            continue
        nodes.add(r.node)
        if kind == "send" or kind == "drop":
            dst = r.fields.get("dst")
            if type(dst) is str:
                nodes.add(dst)
        elif kind == "recv":
            src = r.fields.get("src")
            if type(src) is str:
                nodes.add(src)
        elif kind == "client_op":
            clients.add(r.node)
    return lane_order(nodes, clients)


class _Builder:
    """One pass over the records for everything but the message arrows."""

    def __init__(self, model: TraceModel) -> None:
        self.m = model
        self.down: dict[str, Interval] = {}
        self.paused: dict[str, Interval] = {}
        self.state: dict[str, StateSpan] = {}
        self.ops: dict[tuple[str, Any], ClientOp] = {}
        self.op_rows: dict[str, list[float | None]] = {}
        self.bands: dict[str, Band] = {}

    def feed(self, r: Record) -> None:
        kind = r.kind
        if kind in _MESSAGE_KINDS:
            return
        if kind == "state":
            self._state(r)
            return
        if kind == "client_op":
            self._client_op(r)
            return
        if kind == _CHECK_KIND:
            self.m.checks.append(r)
            return
        self.m.points.append(r)
        if kind in _DOWN_KINDS:
            self._close(self.paused, r)
            self._close_state(r.node, r.t_ms)
            if r.node not in self.down:
                self.down[r.node] = self._open("down", r)
        elif kind in _UP_KINDS:
            self._close(self.down, r)
        elif kind == "pause":
            if r.node not in self.paused and r.node not in self.down:
                self.paused[r.node] = self._open("paused", r)
        elif kind == "resume":
            self._close(self.paused, r)
        elif kind == "nemesis":
            self._nemesis(r)

    def _open(self, what: str, r: Record) -> Interval:
        iv = Interval(node=r.node, what=what, start_ms=r.t_ms, end_ms=r.t_ms, first=r)
        self.m.intervals.append(iv)
        return iv

    @staticmethod
    def _close(open_by_node: dict[str, Interval], r: Record) -> None:
        iv = open_by_node.pop(r.node, None)
        if iv is not None:
            iv.end_ms = r.t_ms
            iv.last = r

    def _close_state(self, node: str, t_ms: float) -> None:
        span = self.state.pop(node, None)
        if span is not None:
            span.end_ms = t_ms

    def _state(self, r: Record) -> None:
        self._close_state(r.node, r.t_ms)
        role = r.fields.get("role")
        if role is None:
            others = [v for k, v in r.fields.items() if k != "term"]
            role = others[0] if others else "state"
        span = StateSpan(node=r.node, start_ms=r.t_ms, end_ms=r.t_ms, role=str(role),
                         term=r.fields.get("term"), record=r)
        self.m.states.append(span)
        self.state[r.node] = span

    def _client_op(self, r: Record) -> None:
        op_type = r.fields.get("type")
        key = (r.node, _hashable(r.fields.get("process", r.node)))
        if op_type == "invoke":
            given_up = self.ops.pop(key, None)  # a process that invokes again gave up on the last one
            if given_up is not None:
                self._free_row(given_up, r.t_ms)
            op = ClientOp(node=r.node, process=r.fields.get("process", r.node), f=r.fields.get("f"),
                          value=r.fields.get("value"), invoke=r, row=self._row(r.node, r.t_ms),
                          key=r.fields.get("key"))
            self.m.client_ops.append(op)
            self.ops[key] = op
            return
        op = self.ops.pop(key, None)
        if op is None or op_type not in _COMPLETIONS:
            self.m.points.append(r)  # a completion without its invoke, or an unknown type
            return
        op.complete = r
        op.outcome = str(op_type)
        op.end_ms = r.t_ms
        if op.value is None and op_type == "ok" and "value" in r.fields:
            op.value = r.fields["value"]  # what a read returned, null included (a stale read of nothing)
            op.value_read = True
        elif op.value is None:
            op.value = r.fields.get("value")
        self._free_row(op, r.t_ms)

    def _free_row(self, op: ClientOp, t_ms: float) -> None:
        rows = self.op_rows[op.node]
        if op.row < len(rows):
            rows[op.row] = t_ms

    def _row(self, node: str, t_ms: float) -> int:
        """The lowest row of the lane free at ``t_ms`` (None: taken by a
        pending operation), wrapping after CLIENT_OP_ROWS_MAX."""
        rows = self.op_rows.setdefault(node, [])
        for i, busy_until in enumerate(rows):
            if busy_until is not None and busy_until <= t_ms:
                rows[i] = None
                return i
        if len(rows) < CLIENT_OP_ROWS_MAX:
            rows.append(None)
            return len(rows) - 1
        return len(self.m.client_ops) % CLIENT_OP_ROWS_MAX

    def _nemesis(self, r: Record) -> None:
        action = r.fields.get("action")
        for name, ends in _BAND_ENDS.items():
            band = self.bands.get(name)
            if band is not None and action in ends:
                band.end_ms = r.t_ms
                band.last = r
                del self.bands[name]
        if action in _BAND_ENDS:
            replaced = self.bands.get(str(action))
            if replaced is not None:  # a new partition replaces the last one
                replaced.end_ms = r.t_ms
                replaced.last = r
            band = Band(node=r.node, label=nemesis_label(r.fields), start_ms=r.t_ms, end_ms=r.t_ms, first=r,
                        row=list(_BAND_ENDS).index(action))
            self.m.bands.append(band)
            self.bands[str(action)] = band

    def finish(self) -> None:
        end = self.m.end_ms
        for iv in (*self.down.values(), *self.paused.values()):
            iv.end_ms = end
            iv.open = True
        for span in self.state.values():
            span.end_ms = end
        for band in self.bands.values():
            band.end_ms = end
        for op in self.m.client_ops:
            if op.complete is None:
                op.end_ms = end


def _label(value: Any) -> str:
    return value if type(value) is str else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _names(value: Any) -> str:
    return " ".join(_label(v) for v in value) if isinstance(value, list) else _label(value)


def partition_groups(fields: dict[str, Any]) -> str | None:
    """Who a nemesis partition cut off from whom, from the fields the
    simulator's nemesis writes: ``groups`` (symmetric: ``s1 s4 | s2 s3``),
    ``from``/``to`` (one way: ``s1 s2 -/-> s3``), ``majority``/``minority``
    (``s3 s4 s5 | s1 s2``), ``left``/``bridge``/``right`` (``s3 s4 | s1 s2
    (bridge s5 sees both)``), ``target`` (isolated: ``s4 alone``); None if
    it names none."""
    f = fields
    if isinstance(f.get("groups"), list):
        return " | ".join(_names(g) for g in f["groups"])
    if "from" in f and "to" in f:
        return f"{_names(f['from'])} -/-> {_names(f['to'])}"
    if "majority" in f and "minority" in f:
        return f"{_names(f['majority'])} | {_names(f['minority'])}"
    if "left" in f and "right" in f and "bridge" in f:
        return f"{_names(f['left'])} | {_names(f['right'])} (bridge {_names(f['bridge'])} sees both)"
    if "target" in f:
        return f"{_names(f['target'])} alone"
    return None


def nemesis_label(fields: dict[str, Any]) -> str:
    """What a nemesis record did and to whom, in a few words: ``crash s2``,
    ``partition symmetric: s1 s4 s5 | s2 s3``, ``clock s3 +408 ms``,
    ``link loss 18%``; the bare action when the record names nothing more."""
    action = _label(fields.get("action", "nemesis"))
    if action == "partition":
        kind = fields.get("partition")
        head = "partition" if kind is None else f"partition {_label(kind)}"
        groups = partition_groups(fields)
        return head if groups is None else f"{head}: {groups}"
    parts = [action]
    if "target" in fields:
        parts.append(_names(fields["target"]))
    jump = fields.get("jump_ms")
    if type(jump) in (int, float):
        parts.append(f"{jump:+.0f} ms")
    loss = fields.get("loss_probability")
    if type(loss) in (int, float):
        parts.append(f"loss {loss:.0%}")
    return " ".join(parts)


def _hashable(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)


def build_model(records: list[Record]) -> TraceModel:
    """The model of time-sorted ``records`` (as :func:`read_trace` returns)."""
    start = records[0].t_ms if records else 0.0
    end = records[-1].t_ms if records else 0.0
    model = TraceModel(records=records, lanes=_lanes(records), start_ms=start, end_ms=end,
                       pairing=pair_messages(records))
    builder = _Builder(model)
    for r in records:
        builder.feed(r)
    builder.finish()
    _mark_failing(model)
    model.points.extend(model.pairing.orphans)
    model.points.sort(key=lambda r: r.index)
    return model


def _mark_failing(model: TraceModel) -> None:
    """Mark the client operations the check records name (by the history
    line of their invoke) with their role in the failing window."""
    roles: dict[Any, str] = {}
    for r in model.checks:
        failing = r.fields.get("failing")
        for entry in failing if isinstance(failing, list) else ():
            if isinstance(entry, dict) and entry.get("history_line") is not None:
                roles[_hashable(entry["history_line"])] = str(entry.get("role", "failing"))
    if not roles:
        return
    for op in model.client_ops:
        role = roles.get(_hashable(op.invoke.fields.get("history_line")))
        if role is not None:
            op.failing = role


def load_model(paths: Sequence[str | Path]) -> TraceModel:
    """Read trace files and build their model.

    Raises:
        TraceError: as :func:`read_trace`.
    """
    return build_model(read_trace(paths))
