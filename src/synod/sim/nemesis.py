"""Fault schedules for simulated runs: the nemesis (DESIGN.md section 5).

Jepsen and Maelstrom keep three things apart: the *workload* (what clients
do), the *checker* (what must hold of the history) and the *nemesis* (what
goes wrong). A :class:`Nemesis` is only the third: a dataclass of
probabilities, durations and bounds that, once installed on a
:class:`~synod.sim.simulator.Simulator`, injects faults on a schedule and
undoes each one after its duration.

Schedule. Every ``interval_ms`` on average (uniformly jittered between half and
one and a half times it, so faults do not alias with periodic timers) the
nemesis considers each fault kind in a fixed order (crash, pause, partition,
clock, link) and injects it with its ``*_probability``:

- crash: a running target crashes (volatile state and unsynced writes lost)
  and restarts ``restart_delay_ms`` later;
- pause: a running target is paused (SIGSTOP) for ``pause_duration_ms``;
- partition: one of ``partition_kinds`` (``symmetric``, ``one_way``,
  ``isolate``, ``majority_minority``, ``bridge``) among the targets, healed
  after ``partition_duration_ms``; a new partition replaces the current one;
- clock: a target's clock jumps by up to ``clock_skew_ms_max`` either way and
  drifts by up to ``clock_drift_max`` either way, until healed;
- link: the default link's loss and duplication probabilities are raised to
  random values up to ``loss_probability_max`` / ``duplicate_probability_max``
  for ``link_fault_duration_ms``;
- disk corruption: one bit of a synced file (whose path starts with one of
  ``disk_corruption_paths``; any file if empty) of a target the nemesis
  crashed flips for good, so the node finds it when it restarts. One node
  at a time: no other node is hit until that one has restarted and
  ``disk_repaired(node_id)`` (if given) says it has recovered from it.

Invariant: at most ``faulty_nodes_max`` targets are crashed or paused by the
nemesis at any time (default: a minority, so a quorum survives).

Phases. A run has a safety phase (faults on) and a liveness phase:
:meth:`Nemesis.heal_and_stop` heals every partition and link fault the
nemesis made, restarts the nodes it crashed, resumes the ones it paused,
resets the clocks it skewed and stops injecting. Until then the nemesis keeps
an event on the heap, so run the simulator with ``until_ms`` or ``until``.

Determinism. Every choice is drawn from ``random.Random(f"synod-nemesis:{seed}")``
where ``seed`` is the simulator's, never from the simulator's own rng, so
turning the nemesis on does not change the network's draws except through the
faults themselves. Targets and partition sides are sorted before any draw.
Each action is one trace line of kind ``nemesis`` from node ``"nemesis"``.

The chaos schedule. :func:`chaos_nemesis` is the one schedule the fault runs
of ``synod sim`` share: a list of fault kinds (``NEMESIS_KINDS``: partition,
kill, pause, skew, loss, corrupt) switched on at fixed rates and durations.

Simplifications: one partition at a time; a clock fault replaces the node's
earlier drift; the nemesis only undoes what it did (a node that exited by
itself is never restarted, a link blocked by the test is never unblocked).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from synod.core.errors import ConfigError, LocalProtocolError

if TYPE_CHECKING:  # pragma: no cover
    from synod.sim.network import LinkModel
    from synod.sim.simulator import Simulator

__all__ = ["Nemesis", "PARTITION_KINDS", "NEMESIS_NODE", "NEMESIS_KINDS", "chaos_nemesis"]

PARTITION_KINDS: tuple[str, ...] = ("symmetric", "one_way", "isolate", "majority_minority", "bridge")

# The ``node`` field of the nemesis's trace lines.
NEMESIS_NODE = "nemesis"


@dataclass(kw_only=True)
class Nemesis:
    """A fault schedule; see the module docstring for what each field does.

    Times are virtual milliseconds. ``targets`` are the node ids that may be
    hit (empty: every node of the simulator at :meth:`install` time).

    Raises:
        ConfigError: a probability outside [0, 1], a non-positive interval, a
            negative duration or bound, or an unknown partition kind.
    """

    interval_ms: float = 100.0
    start_ms: float = 0.0
    targets: tuple[str, ...] = ()
    faulty_nodes_max: int | None = None

    crash_probability: float = 0.0
    restart_delay_ms: float = 200.0

    pause_probability: float = 0.0
    pause_duration_ms: float = 200.0

    partition_probability: float = 0.0
    partition_kinds: tuple[str, ...] = PARTITION_KINDS
    partition_duration_ms: float = 300.0

    clock_probability: float = 0.0
    clock_skew_ms_max: float = 0.0
    clock_drift_max: float = 0.0

    link_fault_probability: float = 0.0
    loss_probability_max: float = 0.0
    duplicate_probability_max: float = 0.0
    link_fault_duration_ms: float = 300.0

    disk_corruption_probability: float = 0.0
    disk_corruption_paths: tuple[str, ...] = ()
    # node id -> whether the node has recovered from the last corruption
    # (for Raft: it no longer needs its peers to repair its log).
    disk_repaired: Callable[[str], bool] | None = field(default=None, repr=False, compare=False)

    # -- state while installed (not configuration) --
    _sim: Simulator | None = field(default=None, init=False, repr=False, compare=False)
    _rng: random.Random | None = field(default=None, init=False, repr=False, compare=False)
    _targets: list[str] = field(default_factory=list, init=False, repr=False, compare=False)
    _stopped: bool = field(default=False, init=False, repr=False, compare=False)
    # node id -> token of the fault that took it down / paused it; a scheduled
    # undo acts only if its token is still the current one.
    _crashed: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)
    _paused: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)
    _skewed: list[str] = field(default_factory=list, init=False, repr=False, compare=False)
    _partition: tuple[int, list[tuple[str, str]]] | None = field(
        default=None, init=False, repr=False, compare=False)
    _link: tuple[int, LinkModel] | None = field(default=None, init=False, repr=False, compare=False)
    _token: int = field(default=0, init=False, repr=False, compare=False)
    # what the nemesis did: action (crash, pause, partition, ...) -> times
    counts: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)
    # the node whose disk was corrupted last, until it has recovered
    _corrupted: str | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("crash_probability", "pause_probability", "partition_probability",
                     "clock_probability", "link_fault_probability", "loss_probability_max",
                     "duplicate_probability_max", "disk_corruption_probability"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ConfigError(f"nemesis {name} must be in [0, 1], got {v}")
        if not self.interval_ms > 0:
            raise ConfigError(f"nemesis interval_ms must be positive, got {self.interval_ms}")
        for name in ("start_ms", "restart_delay_ms", "pause_duration_ms", "partition_duration_ms",
                     "clock_skew_ms_max", "clock_drift_max", "link_fault_duration_ms"):
            if getattr(self, name) < 0:
                raise ConfigError(f"nemesis {name} must be >= 0, got {getattr(self, name)}")
        if self.clock_drift_max >= 1.0:
            raise ConfigError(f"nemesis clock_drift_max must be < 1, got {self.clock_drift_max}")
        if self.faulty_nodes_max is not None and self.faulty_nodes_max < 0:
            raise ConfigError(f"nemesis faulty_nodes_max must be >= 0, got {self.faulty_nodes_max}")
        unknown = [k for k in self.partition_kinds if k not in PARTITION_KINDS]
        if unknown:
            raise ConfigError(f"unknown partition kinds {unknown}; known: {list(PARTITION_KINDS)}")
        if self.partition_probability and not self.partition_kinds:
            raise ConfigError("partition_probability > 0 needs at least one partition kind")

    # -- installing and stopping ---------------------------------------------
    def install(self, sim: Simulator) -> Nemesis:
        """Start the schedule on ``sim``: the first decision is at
        ``start_ms + interval`` (jittered). Returns self.

        Raises:
            LocalProtocolError: already installed, or a target is not a node of ``sim``.
        """
        if self._sim is not None:
            raise LocalProtocolError("nemesis installed twice")
        targets = sorted(self.targets) if self.targets else sorted(sim.hosts)
        missing = [t for t in targets if t not in sim.hosts]
        if missing:
            raise LocalProtocolError(f"nemesis targets are not nodes of the simulator: {missing}")
        self._sim = sim
        self._rng = random.Random(f"synod-nemesis:{sim.seed}")
        self._targets = targets
        sim.call_at(max(self.start_ms, sim.now_ms) + self._next_interval(), self._tick)
        return self

    def heal_and_stop(self, at_ms: float) -> None:
        """At virtual time ``at_ms`` begin the liveness phase: stop injecting,
        heal the partition and link fault, restart crashed nodes, resume paused
        ones, reset skewed clocks to virtual time and stop their drift.

        Raises:
            LocalProtocolError: the nemesis is not installed.
        """
        if self._sim is None:
            raise LocalProtocolError("heal_and_stop before install")
        self._sim.call_at(at_ms, self._heal_all)

    @property
    def faulty_nodes_limit(self) -> int:
        """How many targets may be crashed or paused at once."""
        if self.faulty_nodes_max is not None:
            return self.faulty_nodes_max
        return max(1, (len(self._targets) - 1) // 2)

    @property
    def stopped(self) -> bool:
        return self._stopped

    # -- the schedule ------------------------------------------------------------
    def _next_interval(self) -> float:
        assert self._rng is not None
        return self.interval_ms * (0.5 + self._rng.random())

    def _tick(self) -> None:
        if self._stopped:
            return
        rng = self._rng
        assert rng is not None
        # One draw per kind, always in this order, so changing one probability
        # does not shift the draws of the others.
        if rng.random() < self.crash_probability:
            self._crash()
        if rng.random() < self.pause_probability:
            self._pause()
        if rng.random() < self.partition_probability:
            self._partition_now()
        if rng.random() < self.clock_probability:
            self._clock()
        if rng.random() < self.link_fault_probability:
            self._link_fault()
        if self.disk_corruption_probability and rng.random() < self.disk_corruption_probability:
            self._corrupt_disk()
        sim = self._sim
        assert sim is not None
        sim.call_at(sim.now_ms + self._next_interval(), self._tick)

    def _emit(self, action: str, **fields: Any) -> None:
        assert self._sim is not None
        self.counts[action] = self.counts.get(action, 0) + 1
        self._sim.emit(NEMESIS_NODE, "nemesis", action=action, **fields)

    def _next_token(self) -> int:
        self._token += 1
        return self._token

    def _faulty_count(self) -> int:
        return len(self._crashed) + len(self._paused)

    def _crash(self) -> None:
        sim = self._sim
        assert sim is not None and self._rng is not None
        running = [t for t in self._targets if sim.hosts[t].up and t not in self._paused]
        if not running or self._faulty_count() >= self.faulty_nodes_limit:
            return
        target = running[self._rng.randrange(len(running))]
        token = self._next_token()
        self._crashed[target] = token
        self._emit("crash", target=target, restart_after_ms=self.restart_delay_ms)
        sim.crash(target)
        sim.call_at(sim.now_ms + self.restart_delay_ms, self._restart, target, token)

    def _restart(self, target: str, token: int) -> None:
        if self._crashed.get(target) != token:
            return  # already restarted by heal_and_stop
        del self._crashed[target]
        self._emit("restart", target=target)
        assert self._sim is not None
        self._sim.restart(target)

    def _pause(self) -> None:
        sim = self._sim
        assert sim is not None and self._rng is not None
        running = [t for t in self._targets if sim.hosts[t].ready]
        if not running or self._faulty_count() >= self.faulty_nodes_limit:
            return
        target = running[self._rng.randrange(len(running))]
        token = self._next_token()
        self._paused[target] = token
        self._emit("pause", target=target, duration_ms=self.pause_duration_ms)
        sim.pause(target)
        sim.call_at(sim.now_ms + self.pause_duration_ms, self._resume, target, token)

    def _resume(self, target: str, token: int) -> None:
        if self._paused.get(target) != token:
            return
        del self._paused[target]
        self._emit("resume", target=target)
        assert self._sim is not None
        self._sim.resume(target)

    def _partition_now(self) -> None:
        sim = self._sim
        rng = self._rng
        assert sim is not None and rng is not None
        if len(self._targets) < 2:
            return
        self._heal_partition()
        net = sim.network
        kind = self.partition_kinds[rng.randrange(len(self.partition_kinds))]
        before = set(net.blocked)
        nodes = list(self._targets)
        detail: dict[str, Any]
        if kind == "symmetric":
            shuffled = list(nodes)
            rng.shuffle(shuffled)
            cut = rng.randrange(1, len(shuffled))
            a, b = sorted(shuffled[:cut]), sorted(shuffled[cut:])
            net.partition([a, b])
            detail = {"groups": [a, b]}
        elif kind == "one_way":
            shuffled = list(nodes)
            rng.shuffle(shuffled)
            cut = rng.randrange(1, len(shuffled))
            srcs, dsts = sorted(shuffled[:cut]), sorted(shuffled[cut:])
            net.one_way(srcs, dsts)
            detail = {"from": srcs, "to": dsts}
        elif kind == "isolate":
            target = nodes[rng.randrange(len(nodes))]
            net.isolate(target, nodes)
            detail = {"target": target}
        elif kind == "majority_minority":
            major, minor = net.majority_minority(nodes, rng)
            detail = {"majority": major, "minority": minor}
        else:
            assert kind == "bridge", kind
            left, bridge, right = net.bridge(nodes, rng)
            detail = {"left": left, "bridge": bridge, "right": right}
        # Sorted so that the undo order never depends on set iteration order.
        added = sorted(net.blocked - before)
        token = self._next_token()
        self._partition = (token, added)
        self._emit("partition", partition=kind, duration_ms=self.partition_duration_ms, **detail)
        sim.call_at(sim.now_ms + self.partition_duration_ms, self._end_partition, token)

    def _end_partition(self, token: int) -> None:
        if self._partition is not None and self._partition[0] == token:
            self._heal_partition()

    def _heal_partition(self) -> None:
        if self._partition is None:
            return
        _, added = self._partition
        self._partition = None
        assert self._sim is not None
        net = self._sim.network
        for src, dst in added:
            net.unblock(src, dst)
        self._emit("heal_partition")

    def _clock(self) -> None:
        sim = self._sim
        rng = self._rng
        assert sim is not None and rng is not None
        running = [t for t in self._targets if sim.hosts[t].up]
        if not running:
            return
        target = running[rng.randrange(len(running))]
        jump = rng.uniform(-self.clock_skew_ms_max, self.clock_skew_ms_max)
        drift = rng.uniform(-self.clock_drift_max, self.clock_drift_max)
        if target not in self._skewed:
            self._skewed.append(target)
        self._emit("clock", target=target, jump_ms=jump, drift=drift)
        sim.set_clock(target, jump_ms=jump, drift=drift)

    def _link_fault(self) -> None:
        sim = self._sim
        rng = self._rng
        assert sim is not None and rng is not None
        net = sim.network
        original = self._link[1] if self._link is not None else net.default
        loss = rng.uniform(0.0, self.loss_probability_max)
        duplicate = rng.uniform(0.0, self.duplicate_probability_max)
        token = self._next_token()
        self._link = (token, original)
        self._emit("link", loss_probability=loss, duplicate_probability=duplicate,
                   duration_ms=self.link_fault_duration_ms)
        net.set_default(dataclasses.replace(original, loss_probability=loss,
                                            duplicate_probability=duplicate))
        sim.call_at(sim.now_ms + self.link_fault_duration_ms, self._end_link_fault, token)

    def _corrupt_disk(self) -> None:
        sim = self._sim
        rng = self._rng
        assert sim is not None and rng is not None
        last = self._corrupted
        if last is not None:
            if last in self._crashed or not sim.hosts[last].up:
                return  # not restarted yet: it has not even seen the damage
            if self.disk_repaired is not None and not self.disk_repaired(last):
                return
            self._corrupted = None
        down = sorted(self._crashed)
        if not down:
            return
        target = down[rng.randrange(len(down))]
        hit = sim.hosts[target].disk.corrupt_at_rest(rng, self.disk_corruption_paths)
        if hit is None:
            return
        self._corrupted = target
        self._emit("corrupt_disk", target=target, path=hit[0], offset=hit[1], bit=hit[2])

    def _end_link_fault(self, token: int) -> None:
        if self._link is not None and self._link[0] == token:
            self._heal_link()

    def _heal_link(self) -> None:
        if self._link is None:
            return
        _, original = self._link
        self._link = None
        assert self._sim is not None
        self._sim.network.set_default(original)
        self._emit("heal_link")

    def _heal_all(self) -> None:
        sim = self._sim
        assert sim is not None
        self._stopped = True
        self._emit("heal_and_stop")
        self._heal_partition()
        self._heal_link()
        for target in sorted(self._paused):
            self._emit("resume", target=target)
            sim.resume(target)
        self._paused.clear()
        for target in sorted(self._crashed):
            self._emit("restart", target=target)
            sim.restart(target)
        self._crashed.clear()
        for target in self._skewed:
            self._emit("reset_clock", target=target)
            sim.reset_clock(target)
        self._skewed.clear()


# -- the chaos schedule of ``synod sim`` ------------------------------------------------------

NEMESIS_KINDS: tuple[str, ...] = ("partition", "kill", "pause", "skew", "loss", "corrupt")


def chaos_nemesis(kinds: tuple[str, ...], *, interval_ms: float = 300.0, disk_paths: tuple[str, ...] = (),
                  disk_repaired: Callable[[str], bool] | None = None) -> Nemesis:
    """The fault schedule of ``synod sim ... --nemesis KINDS``: every
    ``interval_ms`` (jittered) each kind of ``kinds`` strikes with its own
    probability: ``partition`` (any kind, 800 ms), ``kill`` (crash, restart
    400 ms later), ``pause`` (500 ms), ``skew`` (clock jumps up to 500 ms,
    drift up to 20%), ``loss`` (up to 30% loss and 10% duplication for 800
    ms), ``corrupt`` (a bit of a synced file under one of ``disk_paths``,
    any file if empty, of a crashed node flips for good; the next node only
    once ``disk_repaired(node_id)`` says the last has recovered).

    Raises:
        ConfigError: a kind not in ``NEMESIS_KINDS``.
    """
    for k in kinds:
        if k not in NEMESIS_KINDS:
            raise ConfigError(f"unknown nemesis {k!r}; choose from {', '.join(NEMESIS_KINDS)}")
    return Nemesis(
        interval_ms=interval_ms,
        crash_probability=0.3 if "kill" in kinds else 0.0, restart_delay_ms=400.0,
        pause_probability=0.2 if "pause" in kinds else 0.0, pause_duration_ms=500.0,
        partition_probability=0.3 if "partition" in kinds else 0.0, partition_duration_ms=800.0,
        clock_probability=0.2 if "skew" in kinds else 0.0, clock_skew_ms_max=500.0, clock_drift_max=0.2,
        link_fault_probability=0.2 if "loss" in kinds else 0.0, loss_probability_max=0.3,
        duplicate_probability_max=0.1, link_fault_duration_ms=800.0,
        disk_corruption_probability=0.3 if "corrupt" in kinds else 0.0,
        disk_corruption_paths=disk_paths, disk_repaired=disk_repaired,
    )
