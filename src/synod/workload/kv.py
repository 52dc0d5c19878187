"""A key-value client workload in Jepsen's style, for any system that stores
strings under keys (DESIGN.md section 7).

Each :class:`KVClient` is a node that runs one operation at a time, chosen
with the node's seeded rng on one of ``keys`` keys:

- ``get``, ``put`` and ``append`` on the string keys ``k0`` ..; ``put`` and
  ``append`` write a token unique in the whole history (``"[process.n]"``),
  so every value read names the writes behind it;
- ``incr`` on the counter keys ``n0`` .. (apart, so an append never makes a
  counter a non-number); ``ok`` with the new count; a ``get`` reads a
  counter key as often as a string key once there are incrs;
- ``cas``, a read-modify-write transaction on one connection (Redis's
  optimistic locking: WATCH k; GET k; MULTI; SET k new; EXEC). It shows in
  the history as two operations of the process, one right after the
  other: the watched read, a ``get`` that returned ``v``, then ``cas``
  with value ``[v, new]`` (``new`` a unique token), invoked once ``v`` is
  known, so its invoke already carries the value the checker needs, ``info``
  included. The write applies only if the key did not change since the
  watch, that is only if it still holds ``v``: ``ok``; a tripped watch or a
  refusal: ``fail``; no answer to the commit: ``info``. A transaction cut
  short leaves state on that server's connection (a WATCH, an open MULTI),
  and a request that got no answer may still wait in that connection's
  queue: before the client's next request there it sends the adapter's
  ``reset`` (DISCARD, UNWATCH; where a real client would reconnect), and if
  that gets no answer, the operation fails without sending anything else.

The client sends each operation to the server it believes leads (the last
hint), else to a random server, and records the invoke and its completion:

- a reply the system marks as done: ``ok`` (a ``get`` with the value read,
  an ``incr`` with the number);
- a refusal that says the operation did not happen: ``fail``;
- no reply within ``op_timeout_ms``, or a reply that says the outcome is
  unknown: ``info``. The operation may still take effect later, so the
  client continues as a new process (Jepsen's rule: process ``p + clients``),
  and never has two operations outstanding under one process. (Within a
  transaction, no answer before the commit is a ``fail``: nothing was
  written.)

Each event also goes into the run's trace (when tracing is on) as
``client_op`` with ``type``, ``process``, ``f``, ``key``, ``value`` and
``history_line`` (the event's line in the history file), so the trace
viewer draws every operation on the client's lane and can point at the ones
a checker names by their line.

How a request looks and how a reply reads is the system's business: a
:class:`KVAdapter` builds the request message and classifies replies, and
says which operations it can do (``functions``; a workload that would invoke
another is refused). An adapter whose ``calls`` is true is answered through
``ctx.call`` (the reply is matched by the host's correlation, as a KV
server's typed replies are); otherwise requests are plain messages matched
by ``reply_id``. ``cas`` needs a calls adapter with ``steps``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from synod.core import Context, Node
from synod.core.errors import LocalProtocolError
from synod.workload.history import HistoryRecorder

__all__ = ["KVWorkload", "KVAdapter", "KVClient", "Outcome", "Step", "OK", "FAIL", "INFO", "BASIC_FUNCTIONS"]

OK, FAIL, INFO = "ok", "fail", "info"
BASIC_FUNCTIONS = ("get", "put", "append")  # what an adapter does unless its ``functions`` says more
_OUTPUTS = ("get", "incr")  # operations whose ok completion carries a result, not the invoke's value
_OP_TIMER = "op_timeout"
_NEXT_TIMER = "next_op"
_FRACTION_EPSILON = 1e-9


@dataclass(frozen=True, slots=True, kw_only=True)
class KVWorkload:
    """``keys``: how many keys of each kind (strings ``k0`` .. ``k{keys-1}``,
    counters ``n0`` ..); ``get_fraction``, ``put_fraction``,
    ``incr_fraction`` and ``cas_fraction`` of operations (the rest are
    appends; incr and cas are off by default, as not every system has them);
    ``op_timeout_ms``: after this an outstanding operation is ``info``;
    ``think_ms``: pause between one completion and the next invoke;
    ``stop_ms``: no invoke at or after this virtual time.

    Raises LocalProtocolError on fractions outside [0, 1] or summing over 1,
    or a non-positive key count or timeout."""

    keys: int = 5
    get_fraction: float = 0.5
    put_fraction: float = 0.25
    incr_fraction: float = 0.0
    cas_fraction: float = 0.0
    op_timeout_ms: float = 1000.0
    think_ms: float = 10.0
    stop_ms: float = float("inf")

    def __post_init__(self) -> None:
        if self.keys < 1 or self.op_timeout_ms <= 0 or self.think_ms < 0:
            raise LocalProtocolError("keys must be >= 1, op_timeout_ms > 0 and think_ms >= 0")
        fractions = (self.get_fraction, self.put_fraction, self.incr_fraction, self.cas_fraction)
        if not (all(0 <= x <= 1 for x in fractions) and sum(fractions) <= 1 + _FRACTION_EPSILON):
            raise LocalProtocolError("get_fraction, put_fraction, incr_fraction and cas_fraction must be in "
                                     "[0, 1] and sum to at most 1")

    def functions(self) -> tuple[str, ...]:
        """The operations this workload invokes (a cas comes with its read)."""
        shares = {"get": self.get_fraction + self.cas_fraction, "put": self.put_fraction,
                  "incr": self.incr_fraction, "cas": self.cas_fraction,
                  "append": 1 - self.get_fraction - self.put_fraction - self.incr_fraction - self.cas_fraction}
        return tuple(f for f, share in shares.items() if share > _FRACTION_EPSILON)


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a reply reads: ``type`` OK, FAIL or INFO; ``value`` the result of
    an ``ok`` get (None: the key is unset) or incr (the count);
    ``leader_hint`` where to send the next request (None: no idea)."""

    type: str
    value: Any = None
    leader_hint: str | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """One request of an operation made of several, sent in turn on one
    connection (the next only after this one's reply). ``read(reply)``
    says how the reply reads: an ``ok`` lets the next step go (the last
    step's outcome is the operation's), anything else ends the operation
    with that outcome. ``may_apply``: this request may take effect, so
    without a reply the operation is unknown (``info``); False: nothing was
    written yet, so without a reply the operation did not happen
    (``fail``)."""

    request: Any
    read: Callable[[Any], Outcome]
    may_apply: bool = False


class KVAdapter(Protocol):
    """The system side of the workload.

    Optional attributes: ``calls`` (bool: requests go through
    ``ctx.call``); ``functions`` (the operations the adapter can do, default
    :data:`BASIC_FUNCTIONS`); and, for ``cas``, ``steps(phase, key, value)
    -> tuple[Step, ...]`` for the phases ``"cas-read"`` (watch ``key`` and
    read it: the last step's ``ok`` value is the value read), ``"cas-write"``
    (``value`` ``[old, new]``: write ``new`` if ``key`` is unchanged since the
    watch; ``ok`` it was written, ``fail`` it was not) and ``"reset"``
    (forget a transaction left on this connection; ``key`` ""), all on the
    connection to one server."""

    def request(self, f: str, key: str, value: str | None, request_id: int) -> Any:
        """The message that performs ``f`` (get | put | append | incr) on ``key``."""

    def reply_id(self, msg: Any) -> int | None:
        """The request id ``msg`` answers, or None if it is no reply of ours."""

    def outcome(self, f: str, msg: Any) -> Outcome:
        """What the reply ``msg`` to an ``f`` request says."""


class KVClient(Node):
    """Client ``index`` (0-based) of ``clients``; drives ``servers`` (node
    ids) and records into ``history``. Its first process id is ``index``.

    Raises:
        LocalProtocolError: the workload would invoke an operation the
            adapter does not do (``cas`` also needs ``calls`` and ``steps``).
    """

    def __init__(self, index: int, clients: int, servers: tuple[str, ...], adapter: KVAdapter,
                 workload: KVWorkload, history: HistoryRecorder) -> None:
        can = getattr(adapter, "functions", BASIC_FUNCTIONS)
        missing = [f for f in workload.functions() if f not in can]
        if missing:
            raise LocalProtocolError(f"the workload invokes {', '.join(missing)}, which the adapter "
                                     f"{type(adapter).__name__} does not do (it does {', '.join(can)})")
        self.calls = bool(getattr(adapter, "calls", False))
        if "cas" in workload.functions() and not (self.calls and hasattr(adapter, "steps")):
            raise LocalProtocolError("cas needs an adapter that answers through ctx.call and has steps()")
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
        self.pending: tuple[str, str, Any] | None = None
        # Servers whose connection from this client may hold a transaction
        # cut short (a WATCH, an open MULTI) or an unanswered request: reset
        # before the next request there (adapters with ``steps`` only).
        self.resets = hasattr(adapter, "steps")
        self.unclean: set[str] = set()

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer(_NEXT_TIMER, ctx.rng.uniform(0.0, self.workload.think_ms))

    def _new_process(self) -> None:
        self.process += self.clients
        self.pending = None

    def on_timer(self, ctx: Context, name: str) -> Any:
        if name == _NEXT_TIMER:
            return self._invoke(ctx)
        elif name == _OP_TIMER and self.pending is not None:
            self._finish(ctx, Outcome(INFO))
        return None

    def _choose(self, ctx: Context) -> tuple[str, str, str | None]:
        """The next operation: (f, key, the value it writes or None)."""
        w = self.workload
        rng = ctx.rng
        i = rng.randrange(w.keys)
        r = rng.random()
        f = "append"
        for name, share in (("get", w.get_fraction), ("put", w.put_fraction), ("incr", w.incr_fraction),
                            ("cas", w.cas_fraction)):
            if r < share:
                f = name
                break
            r -= share
        counter = f == "incr" or (f == "get" and w.incr_fraction > 0 and rng.random() < 0.5)
        self.ops += 1
        return f, f"{'n' if counter else 'k'}{i}", None if f in _OUTPUTS else f"[{self.process}.{self.ops}]"

    def _invoke(self, ctx: Context) -> Any:
        if self.history.clock() >= self.workload.stop_ms:
            return None
        f, key, value = self._choose(ctx)
        target = self.leader_hint if self.leader_hint in self.servers else ctx.rng.choice(self.servers)
        if f == "cas":
            assert value is not None
            return self._cas(ctx, target, key, value)
        self._begin(ctx, f, key, value)
        self.request_id += 1
        request = self.adapter.request(f, key, value, self.request_id)
        if self.calls:
            adapter = self.adapter
            step = Step(request, lambda msg: adapter.outcome(f, msg), may_apply=True)
            return self._call(ctx, target, (step,))
        ctx.send(target, request)
        ctx.set_timer(_OP_TIMER, self.workload.op_timeout_ms)
        return None

    async def _call(self, ctx: Context, target: str, steps: tuple[Step, ...]) -> None:
        """One operation of ``steps`` on ``target`` (reset first if needed)."""
        out, _ = await self._run(ctx, target, steps, ctx.now_ms + self.workload.op_timeout_ms)
        self._finish(ctx, out)

    async def _cas(self, ctx: Context, target: str, key: str, new: str) -> None:
        """A get that watches ``key``, then a cas ``[value read, new]``."""
        steps = self.adapter.steps  # type: ignore[attr-defined]
        self._begin(ctx, "get", key, None)
        out, _ = await self._run(ctx, target, steps("cas-read", key, None), ctx.now_ms + self.workload.op_timeout_ms,
                                 holds=True)
        self._finish(ctx, out, next_op=out.type != OK)
        if out.type != OK:
            return
        if self.history.clock() >= self.workload.stop_ms:
            return  # the watch stays on the connection: reset before the next request there
        value = [out.value, new]
        self._begin(ctx, "cas", key, value)
        out, answered = await self._run(ctx, target, steps("cas-write", key, value),
                                        ctx.now_ms + self.workload.op_timeout_ms, fresh=False, holds=True)
        if answered:
            self.unclean.discard(target)  # the commit was answered: the server ended the transaction
        self._finish(ctx, out)

    async def _run(self, ctx: Context, target: str, steps: tuple[Step, ...], deadline_ms: float, *,
                   fresh: bool = True, holds: bool = False) -> tuple[Outcome, bool]:
        """Send ``steps`` to ``target`` in turn until one does not read
        ``ok`` or ``deadline_ms`` (this node's clock) passes: (the outcome,
        whether the last step was answered). ``fresh``: the steps need a
        connection with no transaction left on it (reset first if unclean;
        if the reset is not answered, the operation fails, nothing of it
        sent). ``holds``: the steps leave transaction state on the
        connection (unclean until the caller says otherwise)."""
        if fresh and target in self.unclean:
            reset = self.adapter.steps("reset", "", None)  # type: ignore[attr-defined]
            out, answered = await self._send(ctx, target, reset, deadline_ms)
            if not (answered and out.type == OK):
                return Outcome(FAIL), False
            self.unclean.discard(target)
        if holds:
            self.unclean.add(target)
        return await self._send(ctx, target, steps, deadline_ms)

    async def _send(self, ctx: Context, target: str, steps: tuple[Step, ...],
                    deadline_ms: float) -> tuple[Outcome, bool]:
        for i, step in enumerate(steps):
            left_ms = deadline_ms - ctx.now_ms
            reply = await ctx.call(target, step.request, left_ms) if left_ms > 0 else None
            if reply is None:
                if self.resets:
                    # It may still wait in the server's queue for this
                    # connection: reset before the next request there, as a
                    # client would reconnect after a timeout.
                    self.unclean.add(target)
                return Outcome(INFO if step.may_apply else FAIL), False
            out = step.read(reply)
            if out.type != OK or i == len(steps) - 1:
                return out, i == len(steps) - 1
        raise AssertionError("an operation of no steps")

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        if self.pending is None or self.adapter.reply_id(msg) != self.request_id:
            return  # a late reply to an operation already recorded as info
        ctx.cancel_timer(_OP_TIMER)
        self._finish(ctx, self.adapter.outcome(self.pending[0], msg))

    def _begin(self, ctx: Context, f: str, key: str, value: Any) -> None:
        assert self.pending is None, "one operation at a time per process"
        self.pending = (f, key, value)
        self._record(ctx, "invoke", f, key, value)

    def _finish(self, ctx: Context, out: Outcome, *, next_op: bool = True) -> None:
        """Record the outstanding operation's completion as ``out`` says
        (``info``: the client goes on as a new process) and, with
        ``next_op``, schedule the next operation."""
        if self.pending is None:
            return
        f, key, value = self.pending
        self.leader_hint = out.leader_hint
        if out.type == OK:
            self._record(ctx, OK, f, key, out.value if f in _OUTPUTS else value)
            self.pending = None
        elif out.type == FAIL:
            self._record(ctx, FAIL, f, key, value)
            self.pending = None
        else:
            self._record(ctx, INFO, f, key, value)
            self._new_process()
        if next_op:
            ctx.set_timer(_NEXT_TIMER, self.workload.think_ms)

    def _record(self, ctx: Context, type_: str, f: str, key: str, value: Any) -> None:
        """One history event, and the same as a ``client_op`` trace event."""
        self.history.record(self.process, type_, f, key, value)
        ctx.trace("client_op", type=type_, process=self.process, f=f, key=key, value=value,
                  history_line=self.history.events[-1].line)
