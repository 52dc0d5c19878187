"""A MapReduce job under faults: the simulated job of ``synod mr run --sim``
as a scenario of the shared fault runner (:mod:`synod.harness.runner`).

Servers: one coordinator and ``workers`` workers (Dean & Ghemawat, section
3; MIT 6.5840 lab 1), with an in-memory shared file system holding the
inputs. Faults: a worker nemesis (:func:`worker_nemesis`; without targets of
its own it hits the workers, since the coordinator's failure aborts a job,
section 3.3), faulty worker disks, and scripted faults (``setup(sim)``, e.g.
:func:`scripted_crashes`). Workers that exit with a non-zero status (the
lab's crash app) are started again after ``respawn_delay_ms``, as the lab's
test script restarts them in a shell loop.

Phases. The job is a batch: the safety phase lasts until the coordinator
reports the job done; then the nemesis heals (the workers must hear
"exit"), and in the liveness phase every process must stop. The whole run
is bounded by ``time_limit_ms``: past it with a process still running, the
run stops (a liveness failure). Checkers: the output directory's outcome
(``_SUCCESS`` naming all R outputs, :func:`~synod.mapreduce.job_outcome`)
and, given the sequential run's lines, the output itself.

Locality (section 3.4; ``hosts`` > 0): the cluster has that many hosts;
worker ``i`` runs on host ``i mod hosts``, and the input files are in a
model of GFS's placement: each chunk (``PLACEMENT_CHUNK_BYTES``) of each
file on 3 distinct hosts drawn from the run's seed, told to the
coordinator as ``ctx.fs.replica_hosts``. The coordinator hands a worker a
map task whose input has a replica on its host first, and the result
counts them (``status.local_map_executions`` of
``placeable_map_executions``).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from synod.core import Node
from synod.harness.runner import ILLEGAL, OK, RunResult, Scenario, Verdict, run_simulated
from synod.mapreduce.constants import SUCCESS_MARKER
from synod.mapreduce.coordinator import Coordinator
from synod.mapreduce.messages import JobSpec, JobStatus
from synod.mapreduce.outcome import JobOutcome, job_outcome
from synod.mapreduce.reference import output_lines
from synod.mapreduce.simjob import COORDINATOR_ID, worker_ids
from synod.mapreduce.worker import Worker
from synod.sim import DiskFaults, Network, Simulator, Tracer
from synod.sim.nemesis import Nemesis

__all__ = ["SimJobResult", "run_sim_job", "job_scenario", "worker_nemesis", "scripted_crashes"]

RESPAWN_CHECK_MS = 200
PLACEMENT_CHUNK_BYTES = 64 * 1024 * 1024   # GFS's chunk (2.5), for the placement model
PLACEMENT_REPLICAS = 3


def host_of(index: int, hosts: int) -> str:
    return f"host{index % hosts + 1}"


class _Placement:
    """Where each chunk of each input file has its replicas (a model of GFS's
    placement, seeded): ``replica_hosts(path, offset)``."""

    def __init__(self, seed: int, inputs: dict[str, bytes], hosts: int) -> None:
        rng = random.Random(f"synod-placement:{seed}")
        names = [host_of(i, hosts) for i in range(hosts)]
        self.where = {(path, c): sorted(rng.sample(names, min(PLACEMENT_REPLICAS, hosts)))
                      for path in sorted(inputs) for c in range(max(1, -(-len(inputs[path]) // PLACEMENT_CHUNK_BYTES)))}

    def replica_hosts(self, path: str, offset: int = 0) -> list[str]:
        return list(self.where.get((path, offset // PLACEMENT_CHUNK_BYTES), ()))


def worker_nemesis(kill_probability: float, partition_probability: float = 0.0) -> Nemesis:
    """A fault schedule for workers: every half second (jittered) one worker
    is killed with probability P and restarted 1.5 s later, and with
    probability Q a partition (isolate-one, one-way, majority/minority or
    bridge) cuts workers apart for 3 s. (``synod mr run --sim --kill-workers
    P`` means P per worker per virtual second; synod.cli._mr_sim.kill_nemesis
    converts it.)"""
    return Nemesis(interval_ms=500.0, crash_probability=kill_probability, restart_delay_ms=1500.0,
                   partition_probability=partition_probability, partition_duration_ms=3000.0,
                   partition_kinds=("isolate", "one_way", "majority_minority", "bridge"))


def scripted_crashes(crashes: Sequence[tuple[str, float]],
                     restart_delay_ms: float = 1500.0) -> Callable[[Simulator], None]:
    """A ``setup`` for :func:`run_sim_job`: crash each (node, time ms) and
    restart it ``restart_delay_ms`` later (``synod mr run --crash NODE@MS``)."""

    def setup(sim: Simulator) -> None:
        for node_id, t_ms in crashes:
            sim.call_at(t_ms, sim.crash, node_id)
            sim.call_at(t_ms + restart_delay_ms, sim.restart, node_id)

    return setup


@dataclass(slots=True, kw_only=True)
class SimJobResult:
    """What a simulated job did. ``outputs``: out-dir file name -> bytes, for
    the committed ``mr-out-*`` files; ``outcome``: the output directory's
    verdict (``_SUCCESS`` with all R outputs) and ``marker`` the bytes of
    ``_SUCCESS`` (None if absent); ``exit_ms``: virtual time each node
    last exited by itself; ``commit_ms``: time of the last output commit;
    ``crashes``: worker crashes and non-zero exits; ``verdicts``: the
    runner's (liveness, outcome, and output when lines were expected)."""

    seed: int
    done: bool
    status: JobStatus
    outputs: dict[str, bytes]
    virtual_ms: float
    outcome: JobOutcome
    marker: bytes | None = None
    exit_ms: dict[str, float] = field(default_factory=dict)
    commit_ms: float = 0.0
    respawns: int = 0
    crashes: int = 0
    sim: Simulator | None = None
    verdicts: list[Verdict] = field(default_factory=list)


class _Job:
    """One simulated job: its coordinator, the respawn watch, what the
    liveness phase saw (exits, commit time)."""

    def __init__(self, sim: Simulator, job: JobSpec, workers: int, respawn_delay_ms: float,
                 hosts: int = 0) -> None:
        self.sim = sim
        self.job = job
        self.ids = worker_ids(workers)
        self.coordinator = Coordinator(job, worker_hosts={w: host_of(i, hosts) for i, w in enumerate(self.ids)}
                                       if hosts else None)
        self.respawn_delay_ms = respawn_delay_ms
        self.exit_ms: dict[str, float] = {}
        self.commit_ms = 0.0
        self.respawns = 0

    def watch(self) -> None:
        """Restart workers that exited with a failure while the job runs."""
        sim = self.sim
        for wid in self.ids:
            host = sim.hosts[wid]
            if not host.up and host.exit_code not in (None, 0) and not self.coordinator.done:
                host.exit_code = None
                self.respawns += 1
                sim.call_after(self.respawn_delay_ms, sim.restart, wid)
        sim.call_after(RESPAWN_CHECK_MS, self.watch)

    def job_done(self, now_ms: float) -> None:
        """The safety phase is over: if by the job's end, note when it committed."""
        if self.coordinator.done:
            self.commit_ms = now_ms
            self.all_stopped()

    def all_stopped(self) -> bool:
        """Note the processes that have exited by themselves; True once every
        process has stopped (a worker that crashed after the job, and was
        not restarted, counts as stopped)."""
        sim = self.sim
        for node_id, host in sim.hosts.items():
            if not host.up and host.exit_code == 0 and node_id not in self.exit_ms:
                self.exit_ms[node_id] = sim.now_ms
        return not sim.hosts[COORDINATOR_ID].up and all(not sim.hosts[w].up for w in self.ids)

    def outputs(self) -> dict[str, bytes]:
        fs, out = self.sim.fs, {}
        for path in sorted(fs.ls(self.job.out_dir, detail=False)):
            name = path.rsplit("/", 1)[-1]
            if name.startswith("mr-out-"):
                out[name] = fs.cat_file(path)
        return out

    def check(self, expected: list[str] | None) -> list[Verdict]:
        outcome = job_outcome(self.sim.fs, self.job.out_dir, self.job.nreduce)
        verdicts = [Verdict("outcome", OK if outcome.succeeded else ILLEGAL,
                            f"{outcome.verdict}: outputs {outcome.describe_outputs()}", outcome)]
        if expected is not None:
            outputs = self.outputs()
            same = output_lines(outputs[name] for name in sorted(outputs)) == expected
            verdicts.append(Verdict("output", OK if same else ILLEGAL, "the same lines as the sequential run"
                                    if same else "the output differs from the sequential run"))
        return verdicts


def job_scenario(sim: Simulator, job: JobSpec, inputs: dict[str, bytes], *, workers: int,
                 nemesis: Nemesis | None = None, respawn_delay_ms: float = 200.0,
                 time_limit_ms: float = 3_600_000.0, disk_faults: DiskFaults | None = None,
                 setup: Callable[[Simulator], None] | None = None, expected: list[str] | None = None,
                 replay: str = "", hosts: int = 0) -> tuple[Scenario, _Job]:
    """The scenario of ``job`` over ``inputs`` (path -> bytes, placed in the
    simulator's file system at those paths) with ``workers`` workers (see
    the module docstring; arguments as :func:`run_sim_job`'s), and the job
    whose state the result reads."""
    for path, data in inputs.items():
        sim.fs.pipe_file(path, data)
    sim.fs.makedirs(job.out_dir, exist_ok=True)
    if hosts:
        sim.fs.replica_hosts = _Placement(sim.seed, inputs, hosts).replica_hosts   # (the coordinator asks ctx.fs)
    j = _Job(sim, job, workers, respawn_delay_ms, hosts)
    if nemesis is not None and not nemesis.targets:
        nemesis = dataclasses.replace(nemesis, targets=tuple(j.ids))

    def driver(sim: Simulator) -> None:
        if setup is not None:
            setup(sim)
        sim.call_after(RESPAWN_CHECK_MS, j.watch)

    servers: dict[str, Callable[[], Node]] = {COORDINATOR_ID: lambda: j.coordinator}
    servers.update({wid: (lambda: Worker(COORDINATOR_ID)) for wid in j.ids})
    scenario = Scenario(
        servers=servers,
        disk_faults={wid: disk_faults for wid in j.ids} if disk_faults is not None else {},
        nemesis=nemesis, driver=driver,
        safety_ms=time_limit_ms, safety_done=lambda: j.coordinator.done, after_heal=j.job_done,
        liveness_ms=time_limit_ms, liveness_done=j.all_stopped,
        # past the time limit with a process still running: the job hangs
        stop_early=lambda: sim.now_ms >= time_limit_ms and not j.all_stopped(),
        check=lambda: j.check(expected), replay=replay)
    return scenario, j


def run_sim_job(job: JobSpec, inputs: dict[str, bytes], *, seed: int, workers: int,
                nemesis: Nemesis | None = None, tracer: Tracer | None = None, respawn_delay_ms: float = 200.0,
                time_limit_ms: float = 3_600_000.0, disk_faults: DiskFaults | None = None,
                setup: Callable[[Simulator], None] | None = None, expected: list[str] | None = None,
                replay: str = "", hosts: int = 0) -> SimJobResult:
    """Run ``job`` over ``inputs`` (path -> bytes, placed in the simulator's
    file system at those paths) with ``workers`` workers, at most
    ``time_limit_ms`` of virtual time, links of 1-10 ms.

    ``nemesis``: a :class:`synod.sim.Nemesis`; without targets of its own it
    hits the workers. ``disk_faults``: faults of every worker's disk.
    ``setup(sim)``: called before the run, to schedule scripted faults with
    ``sim.call_at``. ``expected``: the sequential run's output lines (adds
    the ``output`` verdict). ``replay``: the command that replays the run.
    ``hosts``: place workers and input replicas on that many hosts (the
    module docstring's locality; 0: no placement).
    """
    built: list[_Job] = []

    def build(sim: Simulator) -> Scenario:
        scenario, j = job_scenario(sim, job, inputs, workers=workers, nemesis=nemesis,
                                   respawn_delay_ms=respawn_delay_ms, time_limit_ms=time_limit_ms,
                                   disk_faults=disk_faults, setup=setup, expected=expected, replay=replay,
                                   hosts=hosts)
        built.append(j)
        return scenario

    r = run_simulated(seed, build, network=Network(), tracer=tracer)
    return _result(r, built[0])


def _result(r: RunResult, j: _Job) -> SimJobResult:
    sim, ids = j.sim, j.ids
    marker_path = f"{j.job.out_dir}/{SUCCESS_MARKER}"
    outcome = next(v.detail for v in r.verdicts if v.checker == "outcome")
    return SimJobResult(
        seed=r.seed, done=j.coordinator.done, status=j.coordinator.status(), outputs=j.outputs(),
        outcome=outcome, marker=sim.fs.cat_file(marker_path) if sim.fs.exists(marker_path) else None,
        virtual_ms=r.virtual_ms, exit_ms=j.exit_ms, commit_ms=j.commit_ms, respawns=j.respawns,
        crashes=sum(sim.hosts[w].incarnation for w in ids) - sum(1 for w in ids if w in j.exit_ms),
        sim=sim, verdicts=r.verdicts,
    )
