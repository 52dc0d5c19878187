"""The node contract (DESIGN.md section 2) and the host that drives a node.

A node is an object with three handlers; they run one at a time and never
block::

    on_start(ctx)                 after (re)start; durable state is readable
    on_message(ctx, src, msg)     msg is a registered message
    on_timer(ctx, name)           a timer set earlier fired

``ctx`` (a :class:`Context`) is the node's only door to the world. Effects are
queued during a handler and applied after it returns, in this order: disk
writes made durable (if the handler called ``ctx.disk.sync()``), then messages
sent, then timers armed or cancelled, then an exit. This is etcd-raft's Ready
rule made general: nothing a node says gets ahead of what it has persisted.
The one exception is a message the node marks ``ahead_of_sync=True``
(``send``, ``reply``, ``reply_to``, ``call``): it says nothing that depends
on unsynced writes, so a host may send it before a sync in progress, as a
Raft leader sends AppendEntries while it writes its own log (Ongaro's
thesis, section 10.2.1), or as a GFS chunkserver passes pushed data on
down the chain while it syncs a mutation. Such messages keep their order
among themselves, not with the others.

The queue is :attr:`Context.effects` (an :class:`Effects`: ``sends``,
``early_sends``, ``timer_ops``, ``exit_code``); the sync request stays on ``ctx.disk``. A host
reads the queue after each handler and empties it in place
(:meth:`Effects.clear`, also how it drops what a handler that refused its
message queued), or takes it whole with :meth:`Context.take_effects` when it
applies the effects later (after a slow sync). Around ``on_message`` a host calls
:meth:`Context.begin_request` and :meth:`Context.end_request`, which say which
request ``ctx.reply`` answers. Code outside this module uses only these
calls, never a private field of the context; :meth:`Host.deliver` inlines
the request calls (the simulator's hot path) and hands a handler that only
sent to :meth:`Host._apply_sends`, a hook the simulator speeds up.

A handler may instead be a coroutine (``async def``) that awaits
``ctx.call(dst, request, timeout_ms)`` (the reply, or ``None`` on timeout),
``ctx.gather([ctx.call(...), ...])`` (several calls out at once; their
replies as a list) and ``ctx.sleep(ms)``. The :class:`Host` drives these coroutines itself, with
plain ``send``/``throw`` and no asyncio, so the simulator and the real runtime
resume them identically and deterministically.

:class:`Host` holds everything both environments share (dispatch, reply
matching, coroutine resumption); a subclass in ``sim`` or ``runtime`` says how
effects reach the world by implementing :meth:`Host._apply`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from synod.core.errors import LocalProtocolError

if TYPE_CHECKING:  # pragma: no cover
    import random

    import fsspec

__all__ = [
    "Node", "Context", "Host", "Disk", "Effects", "TimerName", "TimerOp", "Send", "ReplyHandle",
    "SIM_EPOCH_UNIX_MS", "check_disk_range",
]

# Where a simulated node's wall clock starts (2026-01-01T00:00:00Z): virtual
# time 0 is this Unix time, so absolute times (EXPIREAT) look like real ones.
SIM_EPOCH_UNIX_MS = 1_767_225_600_000

TimerName = str | tuple  # user timers are str; tuples are reserved for the host

# An outgoing message: (destination, message, correlation). Correlation is 0
# for a plain send, +k for the k-th call's request, -k for the reply to it.
Send = tuple[str, Any, int]

# A change to a timer: (name, delay_ms) arms it (re-arming replaces the
# earlier deadline), (name, None) cancels it.
TimerOp = tuple[TimerName, float | None]


class Disk(Protocol):
    """``ctx.disk``: a node's durable storage (DESIGN.md section 4).

    Paths are relative, '/'-separated. Writes are visible to later reads at
    once but durable only after a ``sync()`` whose effect the host applies
    after the handler. A whole-file ``write`` is atomic: after a crash the
    file holds either the old or the new bytes.

    ``read_range(path, offset, length)``: at most ``length`` bytes from
    ``offset`` (fewer at the end of the file; None if there is no file).
    ``write_at(path, offset, data)``: overwrite in place (a file is created,
    and a gap past its end reads as zeros), not atomic: after a crash an
    unsynced one may be lost (a GFS chunk, whose block checksums find it).
    Both raise LocalProtocolError for a negative offset or length.
    """

    def read(self, path: str) -> bytes | None: ...
    def read_range(self, path: str, offset: int, length: int) -> bytes | None: ...
    def write(self, path: str, data: bytes) -> None: ...
    def write_at(self, path: str, offset: int, data: bytes) -> None: ...
    def append(self, path: str, data: bytes) -> None: ...
    def rename(self, src: str, dst: str) -> None: ...
    def delete(self, path: str) -> None: ...
    def list(self, prefix: str = "") -> list[str]: ...
    def sync(self) -> None: ...

    # True after sync() until the host has made the writes durable.
    sync_requested: bool


def check_disk_range(offset: int, length: int) -> None:
    """The argument check of ``Disk.read_range`` / ``write_at``, for every disk.

    Raises:
        LocalProtocolError: a negative offset or length.
    """
    if offset < 0 or length < 0:
        raise LocalProtocolError(f"disk range: negative offset {offset} or length {length}")


class Node:
    """Base class of a node state machine; override the handlers you need.

    A handler returns ``None``, or is an ``async def`` whose coroutine the host
    drives (see the module docstring).
    """

    def on_start(self, ctx: Context) -> Coroutine[Any, Any, None] | None:
        return None

    def on_message(self, ctx: Context, src: str, msg: Any) -> Coroutine[Any, Any, None] | None:
        return None

    def client_protocols(self) -> dict[str, Callable[[], Any]]:
        """The client-facing wire protocols this node serves, by name
        (``{"resp": RespProtocol}``): each a factory of a sans-IO protocol
        object (DESIGN.md section 8). The real runtime serves each on the
        port the cluster config gives under ``client_ports``; requests reach
        ``on_message`` from a per-connection client id. Default: none."""
        return {}

    def on_timer(self, ctx: Context, name: str) -> Coroutine[Any, Any, None] | None:
        return None


class _Call:
    __slots__ = ("dst", "request", "timeout_ms", "ahead_of_sync")

    def __init__(self, dst: str, request: Any, timeout_ms: float, ahead_of_sync: bool) -> None:
        self.dst = dst
        self.request = request
        self.timeout_ms = timeout_ms
        self.ahead_of_sync = ahead_of_sync

    def __await__(self):  # type: ignore[no-untyped-def]
        return (yield self)


class _Sleep:
    __slots__ = ("delay_ms",)

    def __init__(self, delay_ms: float) -> None:
        self.delay_ms = delay_ms

    def __await__(self):  # type: ignore[no-untyped-def]
        return (yield self)


class _Gather:
    """``ctx.gather``'s awaitable: several calls out at once."""

    __slots__ = ("calls",)

    def __init__(self, calls: tuple[_Call, ...]) -> None:
        self.calls = calls

    def __await__(self):  # type: ignore[no-untyped-def]
        return (yield self)


class _GatherWait:
    """A suspended coroutine's gather: the replies so far, by position."""

    __slots__ = ("coro", "results", "missing")

    def __init__(self, coro: Any, count: int) -> None:
        self.coro = coro
        self.results: list[Any] = [None] * count
        self.missing = count


class Effects:
    """Effects queued by a node's handlers and not yet applied by its host
    (DESIGN.md section 2): :attr:`Context.effects`, or what
    :meth:`Context.take_effects` took. A disk sync request is not here: it is
    ``ctx.disk.sync_requested``, applied first.

    Attributes:
        sends: the messages to send, as :data:`Send` tuples
            ``(dst, msg, corr)``, in the order queued.
        early_sends: the messages marked ``ahead_of_sync``: like ``sends``,
            but a host may send them before the sync (and before ``sends``).
        timer_ops: the timer changes, as :data:`TimerOp` tuples
            ``(name, delay_ms)`` (arm) or ``(name, None)`` (cancel), in the
            order queued: for one name the last one wins.
        exit_code: the code given to ``ctx.exit``, or None.

    ``bool(effects)`` is True when anything is queued.
    """

    __slots__ = ("sends", "early_sends", "timer_ops", "exit_code")

    def __init__(self) -> None:
        self.sends: list[Send] = []
        self.early_sends: list[Send] = []
        self.timer_ops: list[TimerOp] = []
        self.exit_code: int | None = None

    def __bool__(self) -> bool:
        return bool(self.sends or self.early_sends or self.timer_ops or self.exit_code is not None)

    def __repr__(self) -> str:
        return (f"Effects(sends={self.sends!r}, early_sends={self.early_sends!r}, timer_ops={self.timer_ops!r}, "
                f"exit_code={self.exit_code!r})")

    def clear(self) -> None:
        """Forget everything queued (the host applied it), keeping the lists."""
        self.sends.clear()
        self.early_sends.clear()
        self.timer_ops.clear()
        self.exit_code = None


class Context:
    """A node's door to the world. Built by a :class:`Host`; see DESIGN.md
    section 2 for the table of calls.

    Attributes:
        node_id: this node's id (str).
        peers: every configured node id, this one included (tuple of str).
        rng: a ``random.Random`` seeded from the run seed and the node id.
        disk: this node's :class:`Disk`.
        fs: an fsspec filesystem for shared external storage, or None.
        effects: the :class:`Effects` queued and not yet applied, for the
            host to read after each handler (a node queues through
            ``send``, ``set_timer`` and the like, and never reads it).

    The host's calls are :meth:`begin_request`, :meth:`end_request` and
    :meth:`take_effects`.
    """

    __slots__ = ("node_id", "peers", "rng", "disk", "fs", "effects", "_host", "_reply_src", "_reply_corr")

    def __init__(self, host: Host, node_id: str, peers: tuple[str, ...], rng: random.Random,
                 disk: Disk, fs: fsspec.AbstractFileSystem | None) -> None:
        self._host = host
        self.node_id = node_id
        self.peers = peers
        self.rng = rng
        self.disk = disk
        self.fs = fs
        self.effects = Effects()
        # The request on_message is handling (begin_request to end_request):
        # its sender, None outside on_message, and its correlation.
        self._reply_src: str | None = None
        self._reply_corr = 0

    @property
    def now_ms(self) -> float:
        """This node's clock in ms (skewed and drifting in the simulator)."""
        return self._host.clock_ms()

    @property
    def unix_ms(self) -> float:
        """This node's wall clock: ms since the Unix epoch, for times that
        mean something outside the process (a key's expiry at a date). In
        the simulator it is ``SIM_EPOCH_UNIX_MS`` plus the node's (skewed)
        clock; in real processes ``time.time()``, which may jump."""
        return self._host.unix_ms()

    # -- for the host ------------------------------------------------------
    def begin_request(self, src: str, corr: int) -> None:
        """Host: ``on_message`` is about to handle a message from ``src``
        whose correlation is ``corr`` (> 0: a call's request, 0: a plain
        message); until :meth:`end_request`, ``reply`` and ``reply_handle``
        answer it.

        Raises:
            LocalProtocolError: ``corr`` < 0 (a reply: it goes to the waiting call).
        """
        if corr < 0:
            raise LocalProtocolError(f"begin_request for a reply (corr {corr}): replies go to the waiting call")
        self._reply_src = src
        self._reply_corr = corr

    def end_request(self) -> None:
        """Host: ``on_message``'s synchronous part is over (it returned,
        raised, or its coroutine reached its first await); ``reply`` now
        raises."""
        self._reply_src = None

    def take_effects(self) -> Effects:
        """Host: the effects queued so far, leaving a fresh empty queue; for
        a host that applies them later (after a slow sync). A host that
        applies them at once reads :attr:`effects` and empties it with
        :meth:`Effects.clear` instead, which allocates nothing."""
        taken = self.effects
        self.effects = Effects()
        return taken

    # -- for the node ------------------------------------------------------
    def send(self, dst: str, msg: Any, *, ahead_of_sync: bool = False) -> None:
        """Queue ``msg`` (a registered message) for ``dst``. ``ahead_of_sync``:
        it depends on no unsynced write, and may leave before the sync (see
        the module's docstring)."""
        (self.effects.early_sends if ahead_of_sync else self.effects.sends).append((dst, msg, 0))

    def reply(self, msg: Any, *, ahead_of_sync: bool = False) -> None:
        """Answer the request being handled (one that came from ``ctx.call``).
        A plain message (not a call) gets the reply as an ordinary send.

        Raises:
            LocalProtocolError: called outside ``on_message``'s synchronous part.
        """
        if self._reply_src is None:
            raise LocalProtocolError("ctx.reply outside on_message")
        (self.effects.early_sends if ahead_of_sync else self.effects.sends).append(
            (self._reply_src, msg, -self._reply_corr))

    def reply_handle(self) -> ReplyHandle:
        """The request being handled, to answer later with :meth:`reply_to`
        (a client's command answered once its log entry applies).

        Raises:
            LocalProtocolError: called outside ``on_message``'s synchronous part.
        """
        if self._reply_src is None:
            raise LocalProtocolError("ctx.reply_handle outside on_message")
        return ReplyHandle(self._reply_src, self._reply_corr)

    def reply_to(self, handle: ReplyHandle, msg: Any, *, ahead_of_sync: bool = False) -> None:
        """Answer the request ``handle`` names (from :meth:`reply_handle`),
        from any handler. Answer each request once."""
        (self.effects.early_sends if ahead_of_sync else self.effects.sends).append((handle.src, msg, -handle.corr))

    def set_timer(self, name: str, delay_ms: float) -> None:
        """Arm timer ``name`` to fire after ``delay_ms`` of this node's clock;
        re-arming replaces the earlier deadline (one timer per name)."""
        if delay_ms < 0:
            raise LocalProtocolError(f"timer {name!r}: negative delay {delay_ms}")
        self.effects.timer_ops.append((name, delay_ms))

    def cancel_timer(self, name: str) -> None:
        """Disarm timer ``name`` if armed."""
        self.effects.timer_ops.append((name, None))

    def call(self, dst: str, request: Any, timeout_ms: float, *, ahead_of_sync: bool = False) -> _Call:
        """Awaitable: send ``request`` to ``dst`` and resume with its reply, or
        with ``None`` if none arrives within ``timeout_ms``. ``ahead_of_sync``:
        the request may leave before the sync (see :meth:`send`)."""
        return _Call(dst, request, timeout_ms, ahead_of_sync)

    def gather(self, calls: list[_Call] | tuple[_Call, ...]) -> _Gather:
        """Awaitable: send every call's request at once and resume with
        their replies as a list in the calls' order (``None`` for each one
        that timed out), when all have answered or timed out. An empty
        list resumes at once with ``[]``.

        Raises:
            LocalProtocolError: an element is not a ``ctx.call(...)``.
        """
        calls = tuple(calls)
        for c in calls:
            if type(c) is not _Call:
                raise LocalProtocolError(f"ctx.gather takes ctx.call(...) awaitables, got {c!r}")
        return _Gather(calls)

    def sleep(self, delay_ms: float) -> _Sleep:
        """Awaitable: resume after ``delay_ms`` of this node's clock."""
        return _Sleep(delay_ms)

    def exit(self, code: int = 0) -> None:
        """Stop this node after the current handler's effects (a process exit
        in the real runtime; a stopped node in the simulator)."""
        self.effects.exit_code = code

    def trace(self, event: str, **fields: Any) -> None:
        """Record a structured trace event (a no-op when tracing is off)."""
        self._host.trace(event, fields)

    def warn(self, message: str, **fields: Any) -> None:
        """Tell the operator something is wrong (a corrupt file kept aside):
        a WARNING line in the real node's ``node.log`` and a ``warning``
        trace event (``message`` plus ``fields``) in both worlds."""
        self._host.warn(message, fields)


class ReplyHandle(NamedTuple):
    """Who asked (``src``) and which of its requests (``corr``: > 0 for a
    call, 0 for a plain message, whose answer is an ordinary send)."""

    src: str
    corr: int


class Host:
    """Runs one node: dispatches inputs, matches replies to calls, resumes
    coroutine handlers and hands the queued effects to :meth:`_apply`.

    Subclasses implement ``clock_ms``, ``trace`` and ``_apply``.
    """

    def __init__(self) -> None:
        self.node: Node | None = None
        self.ctx: Context | None = None
        # call or sleep id -> (suspended coroutine, the node a call went to;
        # None for a sleep)
        self._waiting: dict[int, tuple[Any, str | None]] = {}
        self._next_wait_id = 1
        # id(a _GatherWait) -> {wait id of one of its calls: its position}
        self._gather_slots: dict[int, dict[int, int]] = {}
        self.stopped = False

    # -- environment hooks -------------------------------------------------
    def clock_ms(self) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def unix_ms(self) -> float:
        """``ctx.unix_ms``; by default the node clock from a fixed epoch."""
        return SIM_EPOCH_UNIX_MS + self.clock_ms()

    def trace(self, event: str, fields: dict[str, Any]) -> None:  # pragma: no cover
        raise NotImplementedError

    def warn(self, message: str, fields: dict[str, Any]) -> None:
        """``ctx.warn``: by default only a ``warning`` trace event."""
        self.trace("warning", {"message": message, **fields})

    def _apply(self, ctx: Context) -> None:  # pragma: no cover - abstract
        """Apply ctx's queued effects (the sync on ``ctx.disk``, then
        ``ctx.effects``: sends, timers, exit) and leave none queued."""
        raise NotImplementedError

    def _apply_sends(self, ctx: Context) -> None:
        """Like :meth:`_apply`, when ``on_message`` queued sends and nothing
        else (no sync, timer or exit): a hook for a host with a faster way
        (the simulator's hot path). By default, :meth:`_apply`."""
        self._apply(ctx)

    # -- inputs ------------------------------------------------------------
    def boot(self, node: Node, ctx: Context) -> None:
        """Install a fresh node object and run its ``on_start``."""
        self._close_waiting()
        self.node = node
        self.ctx = ctx
        self.stopped = False
        self._after(node.on_start(ctx))

    def invoke(self, fn: Callable[[Context], Coroutine[Any, Any, None] | None]) -> None:
        """Give the node input from outside a handler: run ``fn(ctx)`` as a
        handler would run (it may return a coroutine, resumed like one), then
        apply its effects in the contract's order. For drivers that act on a
        node directly (the Lab 3 tester's ``Start``) and must not touch the
        host's private machinery.

        Raises:
            LocalProtocolError: the node is not running.
        """
        if self.ctx is None or self.node is None or self.stopped:
            raise LocalProtocolError("invoke on a node that is not running")
        self._after(fn(self.ctx))

    def deliver(self, src: str, msg: Any, corr: int) -> None:
        """A message arrived. ``corr`` > 0: a call's request; < 0: a reply."""
        ctx = self.ctx
        if corr < 0:
            waiting = self._waiting.get(-corr)
            if waiting is None:
                self.trace("ignore_reply", {"src": src, "reason": "call already timed out"})
                return
            coro, dst = waiting
            if dst != src:
                # Only the node a call went to may answer it: a reply is
                # matched by its correlation number, which anyone could guess.
                self.trace("ignore_reply", {"src": src, "reason": f"the call went to {dst}"})
                return
            del self._waiting[-corr]
            ctx.effects.timer_ops.append((("call", -corr), None))
            if type(coro) is _GatherWait:
                self._gathered(coro, -corr, msg)
            else:
                self._resume(coro, msg)
            self._apply(ctx)
            return
        # ctx.begin_request and ctx.end_request, inlined: on the simulator's
        # hot path two more calls per message cost about 7% of throughput.
        ctx._reply_src = src
        ctx._reply_corr = corr
        result = self.node.on_message(ctx, src, msg)
        if result is not None:
            # A coroutine handler's first step (up to its first await) is
            # still the synchronous part of on_message: it may ctx.reply.
            self._resume(result, None)
        ctx._reply_src = None
        effects = ctx.effects
        if effects.timer_ops or effects.exit_code is not None or ctx.disk.sync_requested or effects.early_sends:
            self._apply(ctx)
        elif effects.sends:
            self._apply_sends(ctx)

    def fire_timer(self, name: TimerName) -> None:
        """Timer ``name`` fired (user timers and the host's own)."""
        ctx = self.ctx
        if type(name) is tuple:
            waiting = self._waiting.pop(name[1], None)
            if waiting is not None:
                if type(waiting[0]) is _GatherWait:
                    self._gathered(waiting[0], name[1], None)
                else:
                    self._resume(waiting[0], None)
        else:
            self._after(self.node.on_timer(ctx, name))
            return
        self._apply(ctx)

    def _after(self, result: Any) -> None:
        if result is not None:
            self._resume(result, None)
        self._apply(self.ctx)

    def _resume(self, coro: Any, value: Any) -> None:
        ctx = self.ctx
        try:
            awaited = coro.send(value)
        except StopIteration:
            return
        wait_id = self._next_wait_id
        self._next_wait_id += 1
        effects = ctx.effects
        if type(awaited) is _Call:
            self._waiting[wait_id] = (coro, awaited.dst)
            (effects.early_sends if awaited.ahead_of_sync else effects.sends).append(
                (awaited.dst, awaited.request, wait_id))
            effects.timer_ops.append((("call", wait_id), awaited.timeout_ms))
        elif type(awaited) is _Sleep:
            self._waiting[wait_id] = (coro, None)
            effects.timer_ops.append((("sleep", wait_id), awaited.delay_ms))
        elif type(awaited) is _Gather:
            calls = awaited.calls
            if not calls:
                self._resume(coro, [])
                return
            gather = _GatherWait(coro, len(calls))
            self._gather_slots[id(gather)] = {}
            slots = self._gather_slots[id(gather)]
            for i, call in enumerate(calls):
                if i:
                    wait_id = self._next_wait_id
                    self._next_wait_id += 1
                slots[wait_id] = i
                self._waiting[wait_id] = (gather, call.dst)
                (effects.early_sends if call.ahead_of_sync else effects.sends).append(
                    (call.dst, call.request, wait_id))
                effects.timer_ops.append((("call", wait_id), call.timeout_ms))
        else:
            coro.close()
            raise LocalProtocolError(
                f"node {ctx.node_id} awaited {awaited!r}; only ctx.call, ctx.gather and ctx.sleep may be awaited"
            )

    def _gathered(self, gather: _GatherWait, wait_id: int, msg: Any) -> None:
        """One call of a gather answered (or timed out: ``msg`` None); the
        coroutine resumes with every reply once the last one is in."""
        slots = self._gather_slots[id(gather)]
        gather.results[slots.pop(wait_id)] = msg
        gather.missing -= 1
        if gather.missing == 0:
            del self._gather_slots[id(gather)]
            self._resume(gather.coro, gather.results)

    def shutdown(self) -> None:
        """Drop the node's volatile state: suspended coroutines are closed."""
        self._close_waiting()
        self.stopped = True

    def _close_waiting(self) -> None:
        for coro, _dst in self._waiting.values():
            (coro.coro if type(coro) is _GatherWait else coro).close()
        self._waiting.clear()
        self._gather_slots.clear()
