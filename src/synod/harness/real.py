"""The fault runner over real processes: the simulator's nemesis, applied to
a :class:`~synod.runtime.LocalCluster` (DESIGN.md section 8).

The same :class:`~synod.sim.Nemesis` object that faults a simulated run is
installed on a :class:`RealWorld`: an object with the simulator's face as
the nemesis sees it (``hosts``, ``network``, ``call_at``, ``crash``,
``restart``, ``pause``, ``resume``, ``emit``, ``seed``, ``now_ms``) whose
actions are real: a crash is ``kill -9``, a pause ``SIGSTOP`` (resumed with
``SIGCONT``), a partition and a lossy link are the transport's fault layer
(``LocalCluster.set_faults``), a restart starts the process again over its
data directory, and a disk corruption flips one bit of one of a killed
node's files. The nemesis draws its choices from the same seeded generator
as in the simulator; only their timing is real (wall-clock ms since the
world started), so a real run is not replayable, and says so.

Two fault kinds have no real counterpart here and are recorded as skipped
(``skipped`` counts): clock jumps and drift (the processes share the
machine's clock) and message duplication (TCP does not duplicate).

:func:`run_real` drives one :class:`RealScenario`: safety phase with the
nemesis, heal, liveness phase, then the scenario's checkers.
"""

from __future__ import annotations

import heapq
import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from synod.harness.runner import ILLEGAL, OK, UNKNOWN, Verdict
from synod.runtime import LocalCluster
from synod.runtime.messages import Faults
from synod.sim import LinkModel, Nemesis, Network

__all__ = ["RealWorld", "RealScenario", "RealRunResult", "run_real"]

TICK_S = 0.01   # how often the world looks for due nemesis events


class _RealDisk:
    def __init__(self, world: RealWorld, node_id: str) -> None:
        self.world = world
        self.node_id = node_id

    def corrupt_at_rest(self, rng: random.Random, prefixes: tuple[str, ...] = ()) -> tuple[str, int, int] | None:
        """Flip one bit, chosen by ``rng``, of one non-empty file under the
        (killed) node's data directory whose path starts with one of
        ``prefixes``. Returns (path, byte offset, bit) or None."""
        root = self.world.cluster.data_dir(self.node_id)
        paths = sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                       if p.is_file() and p.stat().st_size > 0)
        paths = [p for p in paths if not prefixes or p.startswith(prefixes)]
        if not paths:
            return None
        path = paths[rng.randrange(len(paths))]
        full = root / path
        data = bytearray(full.read_bytes())
        bit = rng.randrange(len(data) * 8)
        data[bit // 8] ^= 1 << (bit % 8)
        full.write_bytes(bytes(data))
        return path, bit // 8, bit % 8


class _RealHost:
    def __init__(self, world: RealWorld, node_id: str) -> None:
        self.up = True
        self.paused = False
        self.disk = _RealDisk(world, node_id)

    @property
    def ready(self) -> bool:
        return self.up and not self.paused


class RealWorld:
    """The simulator as the nemesis uses it, over real processes. Nemesis
    events run on the caller's thread inside :meth:`run_until`."""

    def __init__(self, cluster: LocalCluster, seed: int) -> None:
        self.cluster = cluster
        self.seed = seed
        self.network = Network(LinkModel())
        self.network.add_listener(self._sync_faults)
        self.hosts = {nid: _RealHost(self, nid) for nid in cluster.node_ids}
        self.log: list[dict[str, Any]] = []   # every nemesis action, with its time
        self.skipped: dict[str, int] = {}
        self._t0 = time.monotonic()
        self._heap: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = itertools.count()
        self._faults: dict[str, Faults] = {}

    @property
    def now_ms(self) -> float:
        return (time.monotonic() - self._t0) * 1000.0

    def call_at(self, at_ms: float, fn: Callable[..., None], *args: Any) -> None:
        heapq.heappush(self._heap, (at_ms, next(self._seq), fn, args))

    def emit(self, node: str, kind: str, **fields: Any) -> None:
        self.log.append({"t_ms": round(self.now_ms, 1), "node": node, "kind": kind, **fields})

    def run_until(self, at_ms: float, stop: Callable[[], bool] | None = None) -> None:
        """Run due nemesis events until ``at_ms`` (wall ms since the start) or ``stop()``."""
        while self.now_ms < at_ms and not (stop is not None and stop()):
            while self._heap and self._heap[0][0] <= self.now_ms:
                _, _, fn, args = heapq.heappop(self._heap)
                fn(*args)
            time.sleep(TICK_S)

    # -- the nemesis's actions ---------------------------------------------------------------
    def crash(self, node_id: str) -> None:
        self.hosts[node_id].up = False
        self.hosts[node_id].paused = False
        self.cluster.kill(node_id)

    def restart(self, node_id: str) -> None:
        self.cluster.start([node_id])
        self.hosts[node_id].up = True

    def pause(self, node_id: str) -> None:
        self.hosts[node_id].paused = True
        self.cluster.pause(node_id)

    def resume(self, node_id: str) -> None:
        self.hosts[node_id].paused = False
        self.cluster.resume(node_id)

    def set_clock(self, node_id: str, *, jump_ms: float, drift: float) -> None:
        self.skipped["clock"] = self.skipped.get("clock", 0) + 1

    def _sync_faults(self) -> None:
        """Push the shadow network's blocked links and loss to every node's
        transport fault layer (only what changed)."""
        blocked = self.network.blocked
        loss = self.network.default.loss_probability
        if self.network.default.duplicate_probability:
            self.skipped["duplicate"] = self.skipped.get("duplicate", 0) + 1
        for nid in self.cluster.node_ids:
            want = Faults(drop_probability=loss,
                          blocked_out=tuple(sorted(d for s, d in blocked if s == nid)),
                          blocked_in=tuple(sorted(s for s, d in blocked if d == nid)))
            if self._faults.get(nid, Faults()) != want:
                self._faults[nid] = want
                self.cluster.set_faults(nid, want)


@dataclass(slots=True, kw_only=True)
class RealScenario:
    """A real-process run: ``cluster`` (started by the caller), the client
    workers (``start_clients()`` / ``stop_clients()``), the ``nemesis``
    (targets: server ids), phase lengths in seconds, ``liveness_done()``
    (progress since the heal), ``after_heal()``, and ``check()`` giving the
    verdicts once the run is over (it may restart nodes and read back)."""

    cluster: LocalCluster
    nemesis: Nemesis | None
    start_clients: Callable[[], None]
    stop_clients: Callable[[], None]
    safety_s: float = 30.0
    liveness_s: float = 30.0
    liveness_done: Callable[[], bool] | None = None
    after_heal: Callable[[], None] | None = None
    check: Callable[[], list[Verdict]] = lambda: []
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class RealRunResult:
    """``verdicts``; ``faults``: nemesis action -> count; ``skipped``: fault
    kinds with no real counterpart, by count; ``nemesis_log``: every action
    with its time; ``wall_s``; ``scenario``."""

    seed: int
    verdicts: list[Verdict]
    faults: dict[str, int]
    skipped: dict[str, int]
    nemesis_log: list[dict[str, Any]]
    wall_s: float
    scenario: RealScenario

    @property
    def verdict(self) -> str:
        statuses = {v.status for v in self.verdicts}
        return ILLEGAL if ILLEGAL in statuses else UNKNOWN if UNKNOWN in statuses else OK


def run_real(seed: int, scenario: RealScenario) -> RealRunResult:
    """Safety phase (clients and nemesis) for ``safety_s``, heal, liveness
    phase (up to ``liveness_s``), stop the clients, check."""
    t0 = time.monotonic()
    world = RealWorld(scenario.cluster, seed)
    nemesis = scenario.nemesis
    if nemesis is not None:
        nemesis.install(world)  # type: ignore[arg-type] (the simulator's face, see RealWorld)
    scenario.start_clients()
    verdicts: list[Verdict] = []
    try:
        world.run_until(scenario.safety_s * 1000.0)
        if nemesis is not None:
            nemesis.heal_and_stop(world.now_ms)
            world.run_until(world.now_ms + 1.0)
        if scenario.after_heal is not None:
            scenario.after_heal()
        done = scenario.liveness_done
        healed = world.now_ms
        world.run_until(healed + scenario.liveness_s * 1000.0, done)
        if done is not None:
            ok = done()
            verdicts.append(Verdict("liveness", OK if ok else ILLEGAL,
                                    f"progress {(world.now_ms - healed) / 1000:.1f} s after the faults stopped" if ok
                                    else f"no progress within {scenario.liveness_s:.0f} s after the faults stopped"))
    finally:
        scenario.stop_clients()
        if nemesis is not None and not nemesis.stopped:
            nemesis.heal_and_stop(world.now_ms)
            world.run_until(world.now_ms + 1.0)
    verdicts.extend(scenario.check())
    return RealRunResult(seed=seed, verdicts=verdicts,
                         faults=dict(sorted(nemesis.counts.items())) if nemesis is not None else {},
                         skipped=dict(world.skipped), nemesis_log=world.log, wall_s=time.monotonic() - t0,
                         scenario=scenario)

