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
- ``pause(node)`` / ``resume(node)``: like SIGSTOP/SIGCONT; inputs wait.
- ``set_clock(node, jump_ms, drift)``: the node's clock jumps and runs at
  ``1 + drift`` times virtual time; its timers run on its own clock.
- the network model and partitions (:mod:`synod.sim.network`) and disk faults
  (:mod:`synod.sim.disk`).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from typing import Any

from synod.core.errors import LocalProtocolError
from synod.core.node import Context, Host, Node
from synod.sim.disk import DiskFaults, SimDisk
from synod.sim.network import Network
from synod.sim.trace import Tracer

__all__ = ["Simulator", "SimHost", "new_memory_fs"]

_DELIVER = 0
_TIMER = 1
_CALL = 2


def new_memory_fs() -> Any:
    """A private in-memory fsspec filesystem (fsspec's ``memory://`` store is
    global; this one is not shared with any other run)."""
    from fsspec.implementations.memory import MemoryFileSystem

    fs = MemoryFileSystem(skip_instance_cache=True)
    fs.store = {}
    fs.pseudo_dirs = [""]
    return fs


class SimHost(Host):
    """Hosts one simulated node: its clock, timers, disk and fault state."""

    def __init__(self, sim: Simulator, node_id: str, factory: Callable[[], Node],
                 peers: tuple[str, ...], disk: SimDisk) -> None:
        super().__init__()
        self.sim = sim
        self.node_id = node_id
        self.factory = factory
        self.peers = peers
        self.disk = disk
        self.up = False
        self.paused = False
        self.incarnation = 0
        self.exit_code: int | None = None
        self.deferred: list[tuple] = []
        self.timers: dict[Any, int] = {}  # name -> generation of the armed timer
        self._clock_base_virtual_ms = 0.0
        self._clock_base_local_ms = 0.0
        self.clock_rate = 1.0
        self._effects_not_before_ms = 0.0

    # -- Host hooks ------------------------------------------------------------
    def clock_ms(self) -> float:
        return self._clock_base_local_ms + (self.sim.now_ms - self._clock_base_virtual_ms) * self.clock_rate

    def trace(self, event: str, fields: dict[str, Any]) -> None:
        tracer = self.sim.tracer
        if tracer is not None:
            tracer.emit(self.sim.now_ms, self.node_id, event, fields)

    def _apply(self, ctx: Context) -> None:
        sim = self.sim
        disk = self.disk
        if disk.sync_requested:
            disk.make_durable()
            latency = disk.faults.sync_latency_ms
            if latency:
                self._effects_not_before_ms = max(self._effects_not_before_ms, sim.now_ms + latency)
        sends = ctx._sends
        timer_ops = ctx._timer_ops
        exit_code = ctx._exit_code
        if sends:
            ctx._sends = []
        if timer_ops:
            ctx._timer_ops = []
        if self._effects_not_before_ms > sim.now_ms:
            # A slow sync: what the node says waits until its disk has it.
            ctx._exit_code = None
            sim.call_at(self._effects_not_before_ms, self._apply_late, self.incarnation, sends,
                        timer_ops, exit_code)
            return
        if sends:
            transmit = sim.transmit
            src = self.node_id
            for dst, msg, corr in sends:
                transmit(src, dst, msg, corr)
        if timer_ops:
            self._arm(timer_ops)
        if exit_code is not None:
            ctx._exit_code = None
            sim.stop_node(self.node_id, exit_code)

    def _apply_late(self, incarnation: int, sends: list, timer_ops: list, exit_code: int | None) -> None:
        if incarnation != self.incarnation or not self.up:
            return
        for dst, msg, corr in sends:
            self.sim.transmit(self.node_id, dst, msg, corr)
        self._arm(timer_ops)
        if exit_code is not None:
            self.sim.stop_node(self.node_id, exit_code)

    def _arm(self, timer_ops: list) -> None:
        sim = self.sim
        timers = self.timers
        for name, delay_ms in timer_ops:
            if delay_ms is None:
                timers.pop(name, None)
                continue
            sim._seq += 1
            gen = sim._seq
            timers[name] = gen
            heapq.heappush(sim._heap, (sim.now_ms + delay_ms / self.clock_rate, gen, _TIMER,
                                       self.node_id, name, gen, self.incarnation))

    # -- clock ------------------------------------------------------------------
    def set_clock(self, jump_ms: float, drift: float) -> None:
        if drift <= -1.0:
            raise LocalProtocolError(f"clock drift must be > -1, got {drift}")
        local = self.clock_ms() + jump_ms
        self._clock_base_virtual_ms = self.sim.now_ms
        self._clock_base_local_ms = local
        self.clock_rate = 1.0 + drift


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
        self.network = network or Network()
        self.tracer = tracer
        self.fs = fs if fs is not None else new_memory_fs()
        self.hosts: dict[str, SimHost] = {}
        self._heap: list[tuple] = []
        self._seq = 0
        self.deliveries = 0
        self.drops = 0

    # -- building ------------------------------------------------------------------
    def add_node(self, node_id: str, factory: Callable[[], Node], *,
                 peers: tuple[str, ...] | None = None, disk_faults: DiskFaults | None = None,
                 start: bool = True) -> SimHost:
        """Add a node built by ``factory()``; start it now unless ``start`` is False.

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
        """Tell every node (at its next start) the configured node ids."""
        for host in self.hosts.values():
            host.peers = peers
            if host.ctx is not None:
                host.ctx.peers = peers

    def _boot(self, host: SimHost) -> None:
        host.up = True
        host.paused = False
        host.exit_code = None
        rng = random.Random(f"synod-node:{self.seed}:{host.node_id}:{host.incarnation}")
        ctx = Context(host, host.node_id, host.peers, rng, host.disk, self.fs)
        host.boot(host.factory(), ctx)

    # -- scheduling -----------------------------------------------------------------
    def call_at(self, t_ms: float, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` at virtual time ``t_ms`` (nemesis, workloads)."""
        self._seq += 1
        heapq.heappush(self._heap, (max(t_ms, self.now_ms), self._seq, _CALL, fn, args, None, None))

    def call_after(self, delay_ms: float, fn: Callable[..., Any], *args: Any) -> None:
        self.call_at(self.now_ms + delay_ms, fn, *args)

    def transmit(self, src: str, dst: str, msg: Any, corr: int) -> None:
        """Put one message on the network (called by hosts for each send)."""
        tracer = self.tracer
        if tracer is not None:
            tracer.emit(self.now_ms, src, "send", {"dst": dst, "corr": corr, "msg": msg})
        fast = self.network.fast_latency
        if fast is not None:
            self._seq += 1
            heapq.heappush(self._heap, (self.now_ms + fast.sample(self.rng), self._seq, _DELIVER,
                                        dst, src, msg, corr))
            return
        arrivals = self.network.arrivals(self.now_ms, src, dst, msg, self.rng)
        if not arrivals:
            self.drops += 1
            if tracer is not None:
                tracer.emit(self.now_ms, src, "drop", {"dst": dst, "corr": corr, "reason": "network"})
            return
        for t in arrivals:
            self._seq += 1
            heapq.heappush(self._heap, (t, self._seq, _DELIVER, dst, src, msg, corr))

    # -- running -----------------------------------------------------------------------
    def run(self, *, until_ms: float | None = None, until: Callable[[], bool] | None = None,
            max_events: int | None = None) -> int:
        """Process events in order. Stops when no events remain, when the next
        event is after ``until_ms`` (time then advances to ``until_ms``), when
        ``until()`` turns true (checked after each event), or after
        ``max_events``. Returns the number of events processed."""
        heap = self._heap
        hosts = self.hosts
        tracer = self.tracer
        pop = heapq.heappop
        limit = float("inf") if until_ms is None else until_ms
        budget = -1 if max_events is None else max_events
        n = 0
        while heap and n != budget:
            if heap[0][0] > limit:
                break
            ev = pop(heap)
            self.now_ms = ev[0]
            n += 1
            kind = ev[2]
            if kind == _DELIVER:
                host = hosts.get(ev[3])
                if host is None or not host.up:
                    self.drops += 1
                    if tracer is not None:
                        tracer.emit(self.now_ms, ev[4], "drop",
                                    {"dst": ev[3], "corr": ev[6], "reason": "node down"})
                elif host.paused:
                    host.deferred.append(ev)
                else:
                    self.deliveries += 1
                    if tracer is not None:
                        tracer.emit(self.now_ms, ev[3], "recv", {"src": ev[4], "corr": ev[6], "msg": ev[5]})
                    host.deliver(ev[4], ev[5], ev[6])
            elif kind == _TIMER:
                host = hosts[ev[3]]
                if ev[6] != host.incarnation or not host.up or host.timers.get(ev[4]) != ev[5]:
                    pass  # cancelled, re-armed or from a dead incarnation
                elif host.paused:
                    host.deferred.append(ev)
                else:
                    del host.timers[ev[4]]
                    if tracer is not None and type(ev[4]) is str:
                        tracer.emit(self.now_ms, ev[3], "timer", {"name": ev[4]})
                    host.fire_timer(ev[4])
            else:
                ev[3](*ev[4])
            if until is not None and until():
                break
        if until_ms is not None and self.now_ms < until_ms and (not heap or heap[0][0] > until_ms):
            self.now_ms = until_ms
        return n

    # -- faults ------------------------------------------------------------------------
    def _host(self, node_id: str) -> SimHost:
        host = self.hosts.get(node_id)
        if host is None:
            raise LocalProtocolError(f"no node {node_id!r}")
        return host

    def _trace(self, node_id: str, kind: str, **fields: Any) -> None:
        if self.tracer is not None:
            self.tracer.emit(self.now_ms, node_id, kind, fields)

    def crash(self, node_id: str) -> None:
        """Kill the node: volatile state, timers and unsynced disk writes are lost."""
        host = self._host(node_id)
        if not host.up:
            return
        self._trace(node_id, "crash")
        self._down(host)
        host.disk.crash()

    def stop_node(self, node_id: str, exit_code: int) -> None:
        """The node exited by itself (``ctx.exit``); written data survives, as
        it does in the page cache of a real process that exits."""
        host = self._host(node_id)
        if not host.up:
            return
        self._trace(node_id, "exit", code=exit_code)
        self._down(host)
        host.exit_code = exit_code
        host.disk.make_durable()

    def _down(self, host: SimHost) -> None:
        host.up = False
        host.paused = False
        host.deferred.clear()
        host.timers.clear()
        host.shutdown()
        host.incarnation += 1

    def restart(self, node_id: str) -> None:
        """Start a fresh node object over the durable disk of a stopped node."""
        host = self._host(node_id)
        if host.up:
            return
        self._trace(node_id, "restart", incarnation=host.incarnation)
        self._boot(host)

    def pause(self, node_id: str) -> None:
        """Freeze the node (SIGSTOP): its inputs wait until :meth:`resume`."""
        host = self._host(node_id)
        if host.up and not host.paused:
            self._trace(node_id, "pause")
            host.paused = True

    def resume(self, node_id: str) -> None:
        host = self._host(node_id)
        if not (host.up and host.paused):
            return
        self._trace(node_id, "resume")
        host.paused = False
        waiting, host.deferred = host.deferred, []
        for ev in waiting:
            self._seq += 1
            heapq.heappush(self._heap, (self.now_ms, self._seq) + ev[2:])

    def set_clock(self, node_id: str, jump_ms: float = 0.0, drift: float = 0.0) -> None:
        """Jump the node's clock by ``jump_ms`` and make it run at ``1 + drift``."""
        self._trace(node_id, "clock", jump_ms=jump_ms, drift=drift)
        self._host(node_id).set_clock(jump_ms, drift)

    def up_nodes(self) -> list[str]:
        return [n for n, h in self.hosts.items() if h.up]
