"""The deterministic discrete-event simulator (DESIGN.md section 5).

Events sit on one heap keyed by (virtual time in ms, sequence number); nothing
else orders them, so one seed reproduces a run exactly, whatever
PYTHONHASHSEED is. Every random choice (latency, loss, fault timing, each
node's ``ctx.rng``) derives from the run seed.

Nodes are hosted by :class:`SimHost`, which applies a handler's effects in the
contract's order (disk sync, sends, timers, exit). Faults:

- ``crash(node)``: volatile state and unsynced disk writes are lost, pending
  timers and suspended coroutines die; ``restart(node)`` builds a fresh node
  object from its factory over the durable disk.
- ``pause(node)`` / ``resume(node)``: like SIGSTOP/SIGCONT; inputs (messages,
  timers, effects held by a slow sync) wait and are handled, in order, at
  resume.
- ``set_clock(node, jump_ms, drift)``: the node's clock jumps and runs at
  ``1 + drift`` times virtual time; its timers run on its own clock. A timer
  keeps the rate in force when it was armed (a later drift change does not
  move an armed deadline).
- the network model and partitions (:mod:`synod.sim.network`) and disk faults
  (:mod:`synod.sim.disk`).

Performance: the loop in :meth:`Simulator.run`, :meth:`SimHost._apply` and
:meth:`SimHost._apply_sends` (a handler that only sent) is the hot path of
every simulation. When tracing is off and the network is
plain (:attr:`Network.fast_latency` is set), sends go straight onto the heap,
with the latency sampled inline for :class:`Uniform`; the arithmetic and the
order of rng draws are the same as on the general path, so a seed gives the
same run either way.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Callable
from typing import Any

from synod.core.errors import LocalProtocolError
from synod.core.node import Context, Effects, Host, Node, Send, TimerOp
from synod.sim.disk import DiskFaults, SimDisk
from synod.sim.network import Network, Uniform
from synod.sim.trace import Tracer

__all__ = ["Simulator", "SimHost", "new_memory_fs"]

# Event tuples: (t_ms, seq, kind, a, b, c, d)
#   _DELIVER: a=dst, b=src, c=msg, d=corr
#   _TIMER:   a=node id, b=timer name, c=generation, d=incarnation
#   _CALL:    a=fn, b=args
_DELIVER = 0
_TIMER = 1
_CALL = 2

_heappush = heapq.heappush
_heappop = heapq.heappop


def new_memory_fs() -> Any:
    """A private in-memory fsspec filesystem (fsspec's ``memory://`` store is
    global; this one is not shared with any other run)."""
    from fsspec.implementations.memory import MemoryFileSystem

    fs = MemoryFileSystem(skip_instance_cache=True)
    fs.store = {}
    fs.pseudo_dirs = [""]
    return fs


class SimHost(Host):
    """Hosts one simulated node: its clock, timers, disk and fault state.

    ``up`` (running, possibly paused) and ``paused`` are read-only; change them
    through the :class:`Simulator` fault methods.
    """

    def __init__(self, sim: Simulator, node_id: str, factory: Callable[[], Node],
                 peers: tuple[str, ...], disk: SimDisk) -> None:
        super().__init__()
        self.sim = sim
        self.node_id = node_id
        self.factory = factory
        self.peers = peers
        self.disk = disk
        self._up = False
        self._paused = False
        # Invariant: ready == up and not paused (the run loop reads only this).
        self.ready = False
        self.incarnation = 0
        self.exit_code: int | None = None
        self.deferred: list[tuple] = []
        self.timers: dict[Any, int] = {}  # name -> generation of the armed timer
        self._clock_base_virtual_ms = 0.0
        self._clock_base_local_ms = 0.0
        self.clock_rate = 1.0
        # Effects of this incarnation wait until then (a slow sync in progress).
        self._effects_not_before_ms = -math.inf

    @property
    def up(self) -> bool:
        return self._up

    @property
    def paused(self) -> bool:
        return self._paused

    def _set_state(self, *, up: bool, paused: bool) -> None:
        assert up or not paused, "a stopped node cannot be paused"
        self._up = up
        self._paused = paused
        self.ready = up and not paused

    # -- Host hooks ------------------------------------------------------------
    def clock_ms(self) -> float:
        return self._clock_base_local_ms + (self.sim.now_ms - self._clock_base_virtual_ms) * self.clock_rate

    def trace(self, event: str, fields: dict[str, Any]) -> None:
        tracer = self.sim._tracer
        if tracer is not None:
            tracer.emit(self.sim.now_ms, self.node_id, event, fields)

    def _apply_sends(self, ctx: Context) -> None:
        """:meth:`Host._apply_sends`: the simulator's hot path.

        ``on_message`` queued only sends. On a plain uniform-latency network
        with tracing off and no slow sync in progress, they are pushed onto
        the heap right here; otherwise they go through :meth:`_apply`. The
        latency draws are those of :meth:`Simulator.transmit` (same
        arithmetic, same order), so a seed gives the same run either way.
        """
        sim = self.sim
        lat = sim._fast_uniform
        now = sim.now_ms
        if lat is None or self._effects_not_before_ms > now:
            self._apply(ctx)
            return
        # _send, inlined (one call less per message delivered).
        low, span = lat
        src = self.node_id
        heap = sim._heap
        next_seq = sim._next_seq
        rnd = sim._random
        sends = ctx.effects.sends
        for dst, msg, corr in sends:
            _heappush(heap, (now + (low + span * rnd()), next_seq(), _DELIVER, dst, src, msg, corr))
        sends.clear()

    def _apply(self, ctx: Context) -> None:
        sim = self.sim
        if ctx.effects.early_sends:
            # Marked ahead_of_sync: they leave now, even while a slow sync runs.
            self._send(sim, ctx.effects.early_sends)
        if self.disk.sync_requested or self._effects_not_before_ms > sim.now_ms:
            self._apply_slow(ctx)
            return
        effects = ctx.effects
        if effects.sends:
            self._send(sim, effects.sends)
        if effects.timer_ops:
            self._arm(effects.timer_ops)
            effects.timer_ops.clear()
        exit_code = effects.exit_code
        if exit_code is not None:
            effects.exit_code = None
            sim.stop_node(self.node_id, exit_code)

    def _send(self, sim: Simulator, sends: list[Send]) -> None:
        """Transmit ``sends`` now, then empty the list."""
        src = self.node_id
        uniform = sim._fast_uniform
        if uniform is not None:
            # Simulator.transmit's fast path, inlined: same arithmetic, same draws.
            low, span = uniform
            heap = sim._heap
            now = sim.now_ms
            next_seq = sim._next_seq
            rnd = sim._random
            for dst, msg, corr in sends:
                _heappush(heap, (now + (low + span * rnd()), next_seq(), _DELIVER, dst, src, msg, corr))
        else:
            transmit = sim.transmit
            for dst, msg, corr in sends:
                transmit(src, dst, msg, corr)
        sends.clear()

    def _apply_slow(self, ctx: Context) -> None:
        """A sync was asked for, or an earlier slow sync is still running."""
        sim = self.sim
        disk = self.disk
        if disk.sync_requested:
            disk.make_durable()
            latency = disk.faults.sync_latency_ms
            if latency:
                self._effects_not_before_ms = max(self._effects_not_before_ms, sim.now_ms + latency)
        effects = ctx.take_effects()
        if self._effects_not_before_ms > sim.now_ms:
            # A slow sync: what the node says waits until its disk has it.
            sim.call_at(self._effects_not_before_ms, self._apply_late, self.incarnation, effects)
            return
        self._apply_now(effects)

    def _apply_now(self, effects: Effects) -> None:
        transmit = self.sim.transmit
        for dst, msg, corr in effects.sends:
            transmit(self.node_id, dst, msg, corr)
        if effects.timer_ops:
            self._arm(effects.timer_ops)
        if effects.exit_code is not None:
            self.sim.stop_node(self.node_id, effects.exit_code)

    def _apply_late(self, incarnation: int, effects: Effects) -> None:
        if incarnation != self.incarnation or not self._up:
            return  # the incarnation that said it died before its disk answered
        if self._paused:
            # A stopped process cannot send; it goes on after SIGCONT.
            self.deferred.append((self.sim.now_ms, 0, _CALL, self._apply_late, (incarnation, effects), None, None))
            return
        self._apply_now(effects)

    def _arm(self, timer_ops: list[TimerOp]) -> None:
        sim = self.sim
        timers = self.timers
        now = sim.now_ms
        rate = self.clock_rate
        for name, delay_ms in timer_ops:
            if delay_ms is None:
                timers.pop(name, None)
                continue
            gen = sim._next_seq()
            timers[name] = gen
            _heappush(sim._heap, (now + delay_ms / rate, gen, _TIMER,
                                  self.node_id, name, gen, self.incarnation))

    # -- clock ------------------------------------------------------------------
    def set_clock(self, jump_ms: float, drift: float) -> None:
        if drift <= -1.0:
            raise LocalProtocolError(f"clock drift must be > -1, got {drift}")
        local = self.clock_ms() + jump_ms
        self._clock_base_virtual_ms = self.sim.now_ms
        self._clock_base_local_ms = local
        self.clock_rate = 1.0 + drift

    def reset_clock(self) -> None:
        self._clock_base_virtual_ms = self.sim.now_ms
        self._clock_base_local_ms = self.sim.now_ms
        self.clock_rate = 1.0


class Simulator:
    """One simulated cluster: virtual time, one seed, injected faults.

    Args:
        seed: the run seed (int); every random choice derives from it.
        network: the network model (default: uniform 1-10 ms, no faults).
        tracer: where trace lines go, or None for no tracing.
        fs: the shared fsspec filesystem given to nodes as ``ctx.fs``
            (default: a fresh in-memory one).
    """

    def __init__(self, seed: int, *, network: Network | None = None, tracer: Tracer | None = None,
                 fs: Any = None) -> None:
        self.seed = seed
        self.now_ms = 0.0
        self.rng = random.Random(f"synod-sim:{seed}")
        self._random = self.rng.random
        self._tracer = tracer
        self._network = network or Network()
        # (low_ms, high_ms - low_ms) when sends may skip Simulator.transmit:
        # tracing off and a plain network whose latency is Uniform; else None.
        self._fast_uniform: tuple[float, float] | None = None
        self._network.add_listener(self._refresh_fast_path)
        self._refresh_fast_path()
        self.fs = fs if fs is not None else new_memory_fs()
        self.hosts: dict[str, SimHost] = {}
        self._heap: list[tuple] = []
        # Sequence numbers break ties between events at the same time: first
        # scheduled, first run.
        self._next_seq = itertools.count(1).__next__
        self.deliveries = 0
        self.drops = 0

    @property
    def tracer(self) -> Tracer | None:
        """Where trace lines go (None: tracing off). Set it before :meth:`run`."""
        return self._tracer

    @tracer.setter
    def tracer(self, tracer: Tracer | None) -> None:
        self._tracer = tracer
        self._refresh_fast_path()

    @property
    def network(self) -> Network:
        """The network model; replacing it keeps the fast path in step."""
        return self._network

    @network.setter
    def network(self, network: Network) -> None:
        self._network.remove_listener(self._refresh_fast_path)
        self._network = network
        network.add_listener(self._refresh_fast_path)
        self._refresh_fast_path()

    def _refresh_fast_path(self) -> None:
        lat = self._network.fast_latency
        if self._tracer is None and type(lat) is Uniform:
            self._fast_uniform = (lat.low_ms, lat.high_ms - lat.low_ms)
        else:
            self._fast_uniform = None

    # -- building ------------------------------------------------------------------
    def add_node(self, node_id: str, factory: Callable[[], Node], *,
                 peers: tuple[str, ...] | None = None, disk_faults: DiskFaults | None = None,
                 start: bool = True) -> SimHost:
        """Add a node built by ``factory()``; start it now unless ``start`` is False
        (then :meth:`restart` starts it).

        Raises:
            LocalProtocolError: ``node_id`` is already taken.
        """
        if node_id in self.hosts:
            raise LocalProtocolError(f"node {node_id!r} added twice")
        disk = SimDisk(random.Random(f"synod-disk:{self.seed}:{node_id}"), disk_faults)
        host = SimHost(self, node_id, factory, peers if peers is not None else (), disk)
        self.hosts[node_id] = host
        if start:
            self._boot(host)
        return host

    def set_peers(self, peers: tuple[str, ...]) -> None:
        """Tell every node the configured node ids (``ctx.peers``)."""
        for host in self.hosts.values():
            host.peers = peers
            if host.ctx is not None:
                host.ctx.peers = peers

    def _boot(self, host: SimHost) -> None:
        host._set_state(up=True, paused=False)
        host.exit_code = None
        host._effects_not_before_ms = -math.inf
        rng = random.Random(f"synod-node:{self.seed}:{host.node_id}:{host.incarnation}")
        ctx = Context(host, host.node_id, host.peers, rng, host.disk, self.fs)
        host.boot(host.factory(), ctx)

    # -- scheduling -----------------------------------------------------------------
    def call_at(self, t_ms: float, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` at virtual time ``t_ms`` (nemesis, workloads); a
        time in the past means now."""
        _heappush(self._heap, (max(t_ms, self.now_ms), self._next_seq(), _CALL, fn, args, None, None))

    def call_after(self, delay_ms: float, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` after ``delay_ms`` of virtual time."""
        self.call_at(self.now_ms + delay_ms, fn, *args)

    def report_progress(self, total_ms: float, progress: Callable[[float, float], None] | None,
                        steps: int = 100) -> None:
        """Call ``progress(now_ms, total_ms)`` every ``total_ms / steps`` of
        virtual time until ``total_ms`` (for a progress bar; None: nothing).
        The calls touch no node, so the run and its trace stay the same."""
        if progress is None or total_ms <= 0:
            return
        step_ms = total_ms / steps

        def tick() -> None:
            progress(min(self.now_ms, total_ms), total_ms)
            if self.now_ms + step_ms <= total_ms:
                self.call_after(step_ms, tick)

        self.call_after(step_ms, tick)

    def transmit(self, src: str, dst: str, msg: Any, corr: int) -> None:
        """Put one message on the network (called by hosts for each send)."""
        tracer = self._tracer
        if tracer is not None:
            tracer.emit(self.now_ms, src, "send", {"dst": dst, "corr": corr, "msg": msg})
        fast = self._network.fast_latency
        if fast is not None:
            _heappush(self._heap, (self.now_ms + fast.sample(self.rng), self._next_seq(), _DELIVER,
                                   dst, src, msg, corr))
            return
        arrivals = self._network.arrivals(self.now_ms, src, dst, msg, self.rng)
        if not arrivals:
            self.drops += 1
            if tracer is not None:
                reason = "partition" if self._network.is_blocked(src, dst) else "loss"
                tracer.emit(self.now_ms, src, "drop", {"dst": dst, "corr": corr, "reason": reason})
            return
        for t in arrivals:
            _heappush(self._heap, (t, self._next_seq(), _DELIVER, dst, src, msg, corr))

    # -- running -----------------------------------------------------------------------
    def run(self, *, until_ms: float | None = None, until: Callable[[], bool] | None = None,
            max_events: int | None = None) -> int:
        """Process events in order. Stops when no events remain, when the next
        event is after ``until_ms`` (time then advances to ``until_ms``), when
        ``until()`` turns true (checked after each event), or after
        ``max_events``. Returns the number of events processed."""
        heap = self._heap
        hosts = self.hosts
        tracer = self._tracer
        pop = _heappop
        limit = math.inf if until_ms is None else until_ms
        budget = -1 if max_events is None else max_events
        n = 0
        # ``while True`` on purpose: CPython 3.11 warms a function up for its
        # specialising interpreter on calls and on unconditional backward
        # jumps only; a ``while cond:`` loop ends in a conditional jump, so a
        # long single run() would stay unspecialised (about 30% slower).
        while True:
            if not heap or n == budget:
                break
            ev = pop(heap)
            t = ev[0]
            if t > limit:
                _heappush(heap, ev)  # same key, so the order is unchanged
                break
            self.now_ms = t
            n += 1
            kind = ev[2]
            if kind == _DELIVER:
                host = hosts.get(ev[3])
                if host is not None and host.ready:
                    self.deliveries += 1
                    if tracer is not None:
                        tracer.emit(t, ev[3], "recv", {"src": ev[4], "corr": ev[6], "msg": ev[5]})
                    host.deliver(ev[4], ev[5], ev[6])
                else:
                    self._deliver_unready(host, ev)
            elif kind == _TIMER:
                host = hosts[ev[3]]
                name = ev[4]
                if host.timers.get(name) != ev[5] or ev[6] != host.incarnation or not host._up:
                    pass  # cancelled, re-armed or from a dead incarnation
                elif host._paused:
                    host.deferred.append(ev)
                else:
                    del host.timers[name]
                    if tracer is not None and type(name) is str:
                        tracer.emit(t, ev[3], "timer", {"name": name})
                    host.fire_timer(name)
            else:
                ev[3](*ev[4])
            if until is not None and until():
                break
        if until_ms is not None and self.now_ms < until_ms and (not heap or heap[0][0] > until_ms):
            self.now_ms = until_ms
        return n

    def _deliver_unready(self, host: SimHost | None, ev: tuple) -> None:
        if host is not None and host.up:
            host.deferred.append(ev)  # paused: the input waits
            return
        self.drops += 1
        if self._tracer is not None:
            self._tracer.emit(self.now_ms, ev[4], "drop", {"dst": ev[3], "corr": ev[6], "reason": "node down"})

    # -- faults ------------------------------------------------------------------------
    def _host(self, node_id: str) -> SimHost:
        host = self.hosts.get(node_id)
        if host is None:
            raise LocalProtocolError(f"no node {node_id!r}")
        return host

    def emit(self, node: str, kind: str, **fields: Any) -> None:
        """Write one trace line at the current virtual time (a no-op when
        tracing is off); for workloads and the nemesis."""
        if self._tracer is not None:
            self._tracer.emit(self.now_ms, node, kind, fields)

    def crash(self, node_id: str) -> None:
        """Kill the node: volatile state, timers and unsynced disk writes are lost."""
        host = self._host(node_id)
        if not host.up:
            return
        self.emit(node_id, "crash")
        self._down(host)
        host.disk.crash()

    def stop_node(self, node_id: str, exit_code: int) -> None:
        """The node exited by itself (``ctx.exit``); written data survives, as
        it does in the page cache of a real process that exits."""
        host = self._host(node_id)
        if not host.up:
            return
        self.emit(node_id, "exit", code=exit_code)
        self._down(host)
        host.exit_code = exit_code
        host.disk.make_durable()

    def _down(self, host: SimHost) -> None:
        host._set_state(up=False, paused=False)
        host.deferred.clear()
        host.timers.clear()
        host.shutdown()
        host.incarnation += 1
        host._effects_not_before_ms = -math.inf

    def restart(self, node_id: str) -> None:
        """Start a fresh node object over the durable disk of a stopped node."""
        host = self._host(node_id)
        if host.up:
            return
        self.emit(node_id, "restart", incarnation=host.incarnation)
        self._boot(host)

    def pause(self, node_id: str) -> None:
        """Freeze the node (SIGSTOP): its inputs wait until :meth:`resume`."""
        host = self._host(node_id)
        if host.up and not host.paused:
            self.emit(node_id, "pause")
            host._set_state(up=True, paused=True)

    def resume(self, node_id: str) -> None:
        """Unfreeze the node (SIGCONT): what waited is handled now, in order."""
        host = self._host(node_id)
        if not (host.up and host.paused):
            return
        self.emit(node_id, "resume")
        host._set_state(up=True, paused=False)
        waiting, host.deferred = host.deferred, []
        for ev in waiting:
            _heappush(self._heap, (self.now_ms, self._next_seq()) + ev[2:])

    def set_clock(self, node_id: str, jump_ms: float = 0.0, drift: float = 0.0) -> None:
        """Jump the node's clock by ``jump_ms`` and make it run at ``1 + drift``
        times virtual time.

        Raises:
            LocalProtocolError: no such node, or ``drift <= -1``.
        """
        host = self._host(node_id)
        host.set_clock(jump_ms, drift)
        self.emit(node_id, "clock", jump_ms=jump_ms, drift=drift)

    def reset_clock(self, node_id: str) -> None:
        """Set the node's clock back to virtual time, with no drift (NTP)."""
        host = self._host(node_id)
        host.reset_clock()
        self.emit(node_id, "clock", reset=True)

    def up_nodes(self) -> list[str]:
        """Ids of running nodes (paused ones included), in insertion order."""
        return [n for n, h in self.hosts.items() if h.up]

    def pending_events(self) -> int:
        """Events on the heap (in flight messages, armed timers, scheduled calls)."""
        return len(self._heap)
