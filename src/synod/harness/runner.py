"""The fault runner: a system under faults, then checked (DESIGN.md section 8).

One shape for every system's Jepsen-style run (Kingsbury's Jepsen;
Maelstrom's split of workload, nemesis and checker):

1. build: the system's servers and clients (a :class:`Scenario`); once
   they are up and the nemesis is installed, the scenario's ``driver``
   schedules whatever else the workload does as events (a client loop,
   scripted faults), and its ``tester``, if any, starts: like Lab 3's
   tester it acts between events, at times it chooses, once every event
   up to then has run (a fault driver of its own, recovery probes);
2. safety phase: the nemesis injects faults for ``safety_ms`` while the
   clients run (stopped early when ``stop_early`` says a violation is
   already certain, or when ``safety_done`` says the workload finished, as
   a batch job does);
3. heal: the nemesis heals everything it broke and stops;
4. liveness phase: up to ``liveness_ms`` more, until ``liveness_done``
   says the system made progress again (a run that does not is a liveness
   failure: the system must recover once the faults stop);
5. check: every checker gives a :class:`Verdict` (ok, illegal or unknown);
   the run is safe when none is illegal.

A failed assertion inside a node ends the run where it stands: it is a
verdict of its own (``assertion``, illegal), and the replay command
reproduces it.

The result names the seed, the verdicts and the exact command that replays
the run. :func:`run_simulated` runs a scenario in the simulator (virtual
time, one seed decides everything); :func:`synod.harness.real.run_real`
runs the same phases with the same nemesis over a
:class:`~synod.runtime.LocalCluster` of real processes (kill -9, SIGSTOP,
transport partitions).

A system provides a scenario builder, ``build(sim) -> Scenario``, in its
harness module (:mod:`synod.harness.kv`, :mod:`synod.harness.kv_queue`,
:mod:`synod.harness.raft`, :mod:`synod.harness.mapreduce`); the CLI and the tests call
:func:`run_simulated` with it, or the harness module's ``run_*`` function
that does and reads the result in the system's terms.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from synod.core import Node
from synod.sim import DiskFaults, LinkModel, Nemesis, Network, Simulator, Tracer, Uniform

__all__ = ["Scenario", "Verdict", "RunResult", "run_simulated", "OK", "ILLEGAL", "UNKNOWN"]

OK, ILLEGAL, UNKNOWN = "ok", "illegal", "unknown"


@dataclass(frozen=True, slots=True)
class Verdict:
    """One checker's answer: ``status`` OK, ILLEGAL or UNKNOWN (it could
    not decide, e.g. a search that ran out of time); ``summary`` one line
    for people; ``detail`` anything the caller may render (a counterexample)."""

    checker: str
    status: str
    summary: str
    detail: Any = None


@dataclass(slots=True, kw_only=True)
class Scenario:
    """What the runner needs of a system for one run.

    ``servers``: node id -> factory (the nemesis targets them);
    ``clients``: node id -> factory (never faulted; each gets ``servers``
    as its peers); ``disk_faults``: node id -> the faults of its disk;
    ``nemesis``: the fault schedule (None: no faults); ``driver(sim)``:
    called once, when the nodes are up and the nemesis is installed, to
    schedule the workload's own events (``sim.call_at``);
    ``tester(now_ms)``: called between events, every event up to
    ``now_ms`` run: once after the driver, once more after the heal, and
    again at each time it returns (None: not before the next phase);
    ``safety_ms`` / ``liveness_ms``: phase lengths (virtual ms);
    ``safety_done()``: the workload has finished, so the safety phase ends
    now (a batch job; None: it runs ``safety_ms``);
    ``liveness_done()``: progress seen since the heal (None: the liveness
    phase simply runs ``liveness_ms``); ``stop_early()``: a violation is
    already certain; ``check()``: the verdicts, run once at the end;
    ``after_heal(now_ms)``: told when the faults stop (a workload that
    counts progress from there); ``replay``: the command that replays the
    run, with ``{seed}`` where the seed goes. The predicates are called
    after every event: keep them cheap."""

    servers: dict[str, Callable[[], Node]]
    clients: dict[str, Callable[[], Node]] = field(default_factory=dict)
    disk_faults: dict[str, DiskFaults] = field(default_factory=dict)
    nemesis: Nemesis | None = None
    driver: Callable[[Simulator], None] | None = None
    tester: Callable[[float], float | None] | None = None
    safety_ms: float = 20_000.0
    liveness_ms: float = 10_000.0
    safety_done: Callable[[], bool] | None = None
    liveness_done: Callable[[], bool] | None = None
    stop_early: Callable[[], bool] | None = None
    check: Callable[[], list[Verdict]] = lambda: []
    after_heal: Callable[[float], None] | None = None
    replay: str = ""
    history: Any = None          # the clients' history recorder, if they keep one


@dataclass(slots=True, kw_only=True)
class RunResult:
    """One run: ``seed``; the ``verdicts`` (a liveness verdict first when
    the scenario asked for progress); ``virtual_ms`` and ``deliveries``;
    ``faults``: nemesis action -> count; ``replay``: the command that
    replays it; ``scenario``: the scenario itself (its clients' histories)."""

    seed: int
    verdicts: list[Verdict]
    virtual_ms: float
    deliveries: int
    faults: dict[str, int]
    replay: str
    scenario: Scenario

    @property
    def safe(self) -> bool:
        """No checker found a violation (unknown verdicts are not violations)."""
        return all(v.status != ILLEGAL for v in self.verdicts)

    @property
    def verdict(self) -> str:
        """ILLEGAL if any verdict is, else UNKNOWN if any is, else OK."""
        statuses = {v.status for v in self.verdicts}
        return ILLEGAL if ILLEGAL in statuses else UNKNOWN if UNKNOWN in statuses else OK


def run_simulated(seed: int, build: Callable[[Simulator], Scenario], *, network: Network | None = None,
                  tracer: Tracer | None = None,
                  progress: Callable[[float, float], None] | None = None) -> RunResult:
    """Build the scenario in a fresh simulator seeded with ``seed``, run its
    safety phase under its nemesis, heal, run its liveness phase, check.
    ``network``: the link model (default: 1-5 ms uniform latency);
    ``progress(now_ms, total_ms)``: called as virtual time passes.

    Raises:
        ConfigError: the scenario's builder rejects its arguments.
    """
    sim = Simulator(seed, network=network or Network(LinkModel(latency=Uniform(1.0, 5.0))), tracer=tracer)
    scenario = build(sim)
    servers = tuple(scenario.servers)
    for sid, make in scenario.servers.items():
        sim.add_node(sid, make, peers=servers, disk_faults=scenario.disk_faults.get(sid))
    for cid, make in scenario.clients.items():
        sim.add_node(cid, make, peers=servers, disk_faults=scenario.disk_faults.get(cid))
    nemesis = scenario.nemesis
    if nemesis is not None:
        nemesis.install(sim)
    if scenario.driver is not None:
        scenario.driver(sim)
    total_ms = scenario.safety_ms + scenario.liveness_ms
    sim.report_progress(total_ms, progress)
    run = _Phases(sim, scenario.stop_early or (lambda: False), scenario.tester)
    finished = scenario.safety_done
    run.run(scenario.safety_ms, (lambda: run.stop() or finished()) if finished is not None else run.stop)
    if nemesis is not None:
        nemesis.heal_and_stop(sim.now_ms)
    healed_ms = sim.now_ms
    if scenario.after_heal is not None:
        scenario.after_heal(healed_ms)
    verdicts: list[Verdict] = []
    if not run.stop():
        run.wake_tester()
        done = scenario.liveness_done
        run.run(healed_ms + scenario.liveness_ms, (lambda: run.stop() or done()) if done is not None else run.stop)
        if done is not None and not run.stop():
            verdicts.append(Verdict(
                "liveness", OK if done() else ILLEGAL,
                f"progress {sim.now_ms - healed_ms:.0f} ms after the faults stopped" if done()
                else f"no progress within {scenario.liveness_ms:.0f} ms after the faults stopped"))
    if run.assertion is not None:
        verdicts.append(Verdict("assertion", ILLEGAL, f"assertion inside a node: {run.assertion!r}", run.assertion))
    verdicts.extend(scenario.check())
    replay = scenario.replay.format(seed=seed) if scenario.replay else ""
    return RunResult(seed=seed, verdicts=verdicts, virtual_ms=sim.now_ms, deliveries=sim.deliveries,
                     faults=dict(sorted(nemesis.counts.items())) if nemesis is not None else {},
                     replay=replay, scenario=scenario)


class _Phases:
    """Runs the simulator phase by phase, stopping for the scenario's
    tester at the times it asks; a failed assertion inside a node (raised
    out of :meth:`Simulator.run`) is kept and ends the run."""

    def __init__(self, sim: Simulator, stop_early: Callable[[], bool],
                 tester: Callable[[float], float | None] | None) -> None:
        self.sim = sim
        self.stop_early = stop_early
        self.tester = tester
        self.assertion: AssertionError | None = None
        self.wake_ms: float | None = None
        self.wake_tester()

    def stop(self) -> bool:
        return self.assertion is not None or self.stop_early()

    def wake_tester(self) -> None:
        if self.tester is not None:
            self.wake_ms = self.tester(self.sim.now_ms)
            assert self.wake_ms is None or self.wake_ms > self.sim.now_ms, "the tester must ask for a later time"

    def run(self, until_ms: float, until: Callable[[], bool]) -> None:
        """Run until ``until_ms`` or ``until()``, waking the tester on the way."""
        while True:
            wake = self.wake_ms
            step_ms = until_ms if wake is None or wake > until_ms else wake
            try:
                self.sim.run(until_ms=step_ms, until=until)
            except AssertionError as e:
                self.assertion = e
                return
            if until() or step_ms != wake:
                return  # stopped, or the phase is over (the simulator's time is now until_ms)
            self.wake_tester()
            if until() or step_ms >= until_ms:
                return
