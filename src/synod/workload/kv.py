"""A key-value client workload in Jepsen's style, for any system that stores
strings under keys (DESIGN.md section 7).

Each :class:`KVClient` is a node that runs one operation at a time: ``get``,
``put`` or ``append`` on one of ``keys`` keys, chosen with the node's seeded
rng; ``put`` and ``append`` write a token unique in the whole history
(``"[process.n]"``), so every value read names the writes behind it. The
client sends the request to the server it believes leads (the last hint),
else to a random server, and records the invoke and its completion:

- a reply the system marks as done: ``ok`` (a ``get`` with the value read);
- a refusal that says the operation did not happen: ``fail``;
- no reply within ``op_timeout_ms``, or a reply that says the outcome is
  unknown: ``info``. The operation may still take effect later, so the
  client continues as a new process (Jepsen's rule: process ``p + clients``),
  and never has two operations outstanding under one process.

Each event also goes into the run's trace (when tracing is on) as
``client_op`` with ``type``, ``process``, ``f``, ``key``, ``value`` and
``history_line`` (the event's line in the history file), so the trace
viewer draws every operation on the client's lane and can point at the ones
a checker names by their line.

How a request looks and how a reply reads is the system's business: a
:class:`KVAdapter` builds the request message and classifies replies. An
adapter whose ``calls`` is true is answered through ``ctx.call`` (the reply
is matched by the host's correlation, as a KV server's typed replies are);
otherwise requests are plain messages matched by ``reply_id``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from synod.core import Context, Node
from synod.core.errors import LocalProtocolError
from synod.workload.history import HistoryRecorder

__all__ = ["KVWorkload", "KVAdapter", "KVClient", "Outcome", "OK", "FAIL", "INFO"]

OK, FAIL, INFO = "ok", "fail", "info"
_OP_TIMER = "op_timeout"
_NEXT_TIMER = "next_op"


@dataclass(frozen=True, slots=True, kw_only=True)
class KVWorkload:
    """``keys``: how many keys (``k0`` .. ``k{keys-1}``); ``get_fraction``
    and ``put_fraction`` of operations (the rest are appends);
    ``op_timeout_ms``: after this an outstanding operation is ``info``;
    ``think_ms``: pause between one completion and the next invoke;
    ``stop_ms``: no invoke at or after this virtual time.

    Raises LocalProtocolError on fractions outside [0, 1] or summing over 1,
    or a non-positive key count or timeout."""

    keys: int = 5
    get_fraction: float = 0.5
    put_fraction: float = 0.25
    op_timeout_ms: float = 1000.0
    think_ms: float = 10.0
    stop_ms: float = float("inf")

    def __post_init__(self) -> None:
        if self.keys < 1 or self.op_timeout_ms <= 0 or self.think_ms < 0:
            raise LocalProtocolError("keys must be >= 1, op_timeout_ms > 0 and think_ms >= 0")
        if not (0 <= self.get_fraction <= 1 and 0 <= self.put_fraction <= 1
                and self.get_fraction + self.put_fraction <= 1):
            raise LocalProtocolError("get_fraction and put_fraction must be in [0, 1] and sum to at most 1")


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a reply reads: ``type`` OK, FAIL or INFO; ``value`` the result of
    an ``ok`` get (None: the key is unset); ``leader_hint`` where to send
    the next request (None: no idea)."""

    type: str
    value: Any = None
    leader_hint: str | None = None


class KVAdapter(Protocol):
    """The system side of the workload."""

    def request(self, f: str, key: str, value: str | None, request_id: int) -> Any:
        """The message that performs ``f`` (get | put | append) on ``key``."""

    def reply_id(self, msg: Any) -> int | None:
        """The request id ``msg`` answers, or None if it is no reply of ours."""

    def outcome(self, f: str, msg: Any) -> Outcome:
        """What the reply ``msg`` to an ``f`` request says."""


class KVClient(Node):
    """Client ``index`` (0-based) of ``clients``; drives ``servers`` (node
    ids) and records into ``history``. Its first process id is ``index``."""

    def __init__(self, index: int, clients: int, servers: tuple[str, ...], adapter: KVAdapter,
                 workload: KVWorkload, history: HistoryRecorder) -> None:
        self.process = index
        self.clients = clients
        self.servers = servers
        self.adapter = adapter
        self.workload = workload
        self.history = history
        self.leader_hint: str | None = None
        self.request_id = 0
        self.ops = 0
        # The outstanding operation: (f, key, value), or None.
        self.pending: tuple[str, str, str | None] | None = None

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer(_NEXT_TIMER, ctx.rng.uniform(0.0, self.workload.think_ms))

    def _new_process(self) -> None:
        self.process += self.clients
        self.pending = None

    def on_timer(self, ctx: Context, name: str) -> Any:
        if name == _NEXT_TIMER:
            return self._invoke(ctx)
        elif name == _OP_TIMER and self.pending is not None:
            f, key, value = self.pending
            self._record(ctx, INFO, f, key, value)
            self.leader_hint = None
            self._new_process()
            self._next(ctx)
        return None

    def _invoke(self, ctx: Context) -> Any:
        w = self.workload
        if self.history.clock() >= w.stop_ms:
            return None
        rng = ctx.rng
        key = f"k{rng.randrange(w.keys)}"
        r = rng.random()
        f = "get" if r < w.get_fraction else "put" if r < w.get_fraction + w.put_fraction else "append"
        self.ops += 1
        value = None if f == "get" else f"[{self.process}.{self.ops}]"
        self.pending = (f, key, value)
        self.request_id += 1
        self._record(ctx, "invoke", f, key, value)
        target = self.leader_hint if self.leader_hint in self.servers else rng.choice(self.servers)
        request = self.adapter.request(f, key, value, self.request_id)
        if getattr(self.adapter, "calls", False):
            return self._call(ctx, target, request)
        ctx.send(target, request)
        ctx.set_timer(_OP_TIMER, w.op_timeout_ms)
        return None

    async def _call(self, ctx: Context, target: str, request: Any) -> None:
        reply = await ctx.call(target, request, self.workload.op_timeout_ms)
        if self.pending is None:
            return
        if reply is None:
            f, key, value = self.pending
            self._record(ctx, INFO, f, key, value)
            self.leader_hint = None
            self._new_process()
            self._next(ctx)
            return
        self._completed(ctx, reply)

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        if self.pending is None or self.adapter.reply_id(msg) != self.request_id:
            return  # a late reply to an operation already recorded as info
        ctx.cancel_timer(_OP_TIMER)
        self._completed(ctx, msg)

    def _completed(self, ctx: Context, msg: Any) -> None:
        if self.pending is None:
            return
        f, key, value = self.pending
        out = self.adapter.outcome(f, msg)
        self.leader_hint = out.leader_hint
        if out.type == OK:
            self._record(ctx, OK, f, key, out.value if f == "get" else value)
            self.pending = None
        elif out.type == FAIL:
            self._record(ctx, FAIL, f, key, value)
            self.pending = None
        else:
            self._record(ctx, INFO, f, key, value)
            self._new_process()
        self._next(ctx)

    def _record(self, ctx: Context, type_: str, f: str, key: str, value: str | None) -> None:
        """One history event, and the same as a ``client_op`` trace event."""
        self.history.record(self.process, type_, f, key, value)
        ctx.trace("client_op", type=type_, process=self.process, f=f, key=key, value=value,
                  history_line=self.history.events[-1].line)

    def _next(self, ctx: Context) -> None:
        ctx.set_timer(_NEXT_TIMER, self.workload.think_ms)
