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

Over GFS (``gfs``, a :class:`synod.harness.gfs.GfsCell`): the inputs and
the output directory live in a simulated GFS cell whose master, shadows and
chunkservers run in the same simulation, put there by a loader client; map
tasks read through GFS's client library, reduce tasks commit by GFS's
rename (:mod:`synod.harness.mr_gfs`). Locality (section 3.4): worker ``i``
runs beside chunkserver ``i mod n``; the coordinator asks the master where
each split's first chunk has its replicas and hands a worker a map task
whose input has a replica beside it first, and the result counts them
(``status.local_map_executions`` of ``placeable_map_executions``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from synod.core import Node
from synod.harness.runner import ILLEGAL, OK, RunResult, Scenario, Verdict, run_simulated
from synod.mapreduce.constants import SUCCESS_MARKER
from synod.mapreduce.coordinator import Coordinator
from synod.mapreduce.messages import JobSpec, JobStatus
from synod.mapreduce.outcome import JobOutcome, job_outcome
from synod.mapreduce.reference import output_lines
from synod.mapreduce.simjob import COORDINATOR_ID, worker_ids
from synod.mapreduce.worker import Worker
from synod.sim import DiskFaults, Network, Simulator, Tracer, new_memory_fs
from synod.sim.nemesis import Nemesis

if TYPE_CHECKING:   # (GFS is imported only by the runs over it)
    from synod.harness.gfs import GfsCell

__all__ = ["SimJobResult", "run_sim_job", "job_scenario", "worker_nemesis", "scripted_crashes"]

RESPAWN_CHECK_MS = 200


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
                 gfs: GfsCell | None = None, time_limit_ms: float = 0.0) -> None:
        self.sim = sim
        self.job = job
        self.ids = worker_ids(workers)
        self.gfs = gfs
        self.storage: Callable[[], Any] = lambda: None   # a worker's storage (None: ctx.fs)
        if gfs is not None:
            from synod.harness.mr_gfs import GfsStorage

            self.storage = lambda: GfsStorage(gfs.masters, rpc_timeout_ms=gfs.rpc_timeout_ms)
            servers = gfs.chunkserver_ids   # worker i beside chunkserver i mod n (3.4)
            self.coordinator = Coordinator(job, worker_hosts={w: servers[i % len(servers)]
                                                              for i, w in enumerate(self.ids)},
                                           storage=self.storage(), input_wait_ms=time_limit_ms)
        else:
            self.coordinator = Coordinator(job)
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

    def out_fs(self) -> Any:
        """The file system holding the job's output directory, for the
        checkers: the simulator's, or (over GFS) a copy of the directory as
        the cell's replicas hold it (a file no replica can give is left out)."""
        if self.gfs is None:
            return self.sim.fs
        from synod.harness.gfs import file_bytes, files_in

        fs = new_memory_fs()
        fs.makedirs(self.job.out_dir, exist_ok=True)
        for path in files_in(self.sim, self.job.out_dir):
            data = file_bytes(self.sim, self.gfs, path)
            if data is not None:
                fs.pipe_file(path, data)
        return fs

    def outputs(self, fs: Any = None) -> dict[str, bytes]:
        fs, out = fs if fs is not None else self.out_fs(), {}
        for path in sorted(fs.ls(self.job.out_dir, detail=False)):
            name = path.rsplit("/", 1)[-1]
            if name.startswith("mr-out-"):
                out[name] = fs.cat_file(path)
        return out

    def check(self, expected: list[str] | None) -> list[Verdict]:
        fs = self.out_fs()
        outcome = job_outcome(fs, self.job.out_dir, self.job.nreduce)
        verdicts = [Verdict("outcome", OK if outcome.succeeded else ILLEGAL,
                            f"{outcome.verdict}: outputs {outcome.describe_outputs()}", outcome)]
        if expected is not None:
            outputs = self.outputs(fs)
            same = output_lines(outputs[name] for name in sorted(outputs)) == expected
            verdicts.append(Verdict("output", OK if same else ILLEGAL, "the same lines as the sequential run"
                                    if same else "the output differs from the sequential run"))
        return verdicts


def job_scenario(sim: Simulator, job: JobSpec, inputs: dict[str, bytes], *, workers: int,
                 nemesis: Nemesis | None = None, respawn_delay_ms: float = 200.0,
                 time_limit_ms: float = 3_600_000.0, disk_faults: DiskFaults | None = None,
                 setup: Callable[[Simulator], None] | None = None, expected: list[str] | None = None,
                 replay: str = "", gfs: GfsCell | None = None) -> tuple[Scenario, _Job]:
    """The scenario of ``job`` over ``inputs`` (path -> bytes, placed in the
    simulator's file system at those paths, or put into the GFS cell
    ``gfs`` by a loader) with ``workers`` workers (see the module
    docstring; arguments as :func:`run_sim_job`'s), and the job whose state
    the result reads."""
    clients: dict[str, Callable[[], Node]] = {}
    extra_servers: dict[str, Callable[[], Node]] = {}
    if gfs is not None:
        from synod.harness.mr_gfs import LOADER_ID, InputLoader

        loader = InputLoader(gfs, inputs, job.out_dir)
        clients[LOADER_ID] = lambda: loader
        extra_servers = gfs.servers()
    else:
        for path, data in inputs.items():
            sim.fs.pipe_file(path, data)
        sim.fs.makedirs(job.out_dir, exist_ok=True)
    j = _Job(sim, job, workers, respawn_delay_ms, gfs, time_limit_ms)
    if nemesis is not None and not nemesis.targets:
        nemesis = dataclasses.replace(nemesis, targets=tuple(j.ids))

    def driver(sim: Simulator) -> None:
        if setup is not None:
            setup(sim)
        sim.call_after(RESPAWN_CHECK_MS, j.watch)

    servers: dict[str, Callable[[], Node]] = {COORDINATOR_ID: lambda: j.coordinator}
    servers.update({wid: (lambda: Worker(COORDINATOR_ID, storage=j.storage())) for wid in j.ids})
    servers.update(extra_servers)
    scenario = Scenario(
        servers=servers, clients=clients,
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
                replay: str = "", gfs: GfsCell | None = None) -> SimJobResult:
    """Run ``job`` over ``inputs`` (path -> bytes, placed in the simulator's
    file system at those paths) with ``workers`` workers, at most
    ``time_limit_ms`` of virtual time, links of 1-10 ms.

    ``nemesis``: a :class:`synod.sim.Nemesis`; without targets of its own it
    hits the workers. ``disk_faults``: faults of every worker's disk.
    ``setup(sim)``: called before the run, to schedule scripted faults with
    ``sim.call_at``. ``expected``: the sequential run's output lines (adds
    the ``output`` verdict). ``replay``: the command that replays the run.
    ``gfs``: a cell's shape (:class:`synod.harness.gfs.GfsCell`): the
    inputs and outputs live in that simulated GFS cell, whose nodes run
    beside the job's, with locality (the module docstring; None: the
    simulator's shared file system, no placement).
    """
    built: list[_Job] = []

    def build(sim: Simulator) -> Scenario:
        scenario, j = job_scenario(sim, job, inputs, workers=workers, nemesis=nemesis,
                                   respawn_delay_ms=respawn_delay_ms, time_limit_ms=time_limit_ms,
                                   disk_faults=disk_faults, setup=setup, expected=expected, replay=replay,
                                   gfs=gfs)
        built.append(j)
        return scenario

    r = run_simulated(seed, build, network=Network(), tracer=tracer)
    return _result(r, built[0])


def _result(r: RunResult, j: _Job) -> SimJobResult:
    sim, ids = j.sim, j.ids
    marker_path = f"{j.job.out_dir}/{SUCCESS_MARKER}"
    outcome = next(v.detail for v in r.verdicts if v.checker == "outcome")
    fs = j.out_fs()
    return SimJobResult(
        seed=r.seed, done=j.coordinator.done, status=j.coordinator.status(), outputs=j.outputs(fs),
        outcome=outcome, marker=fs.cat_file(marker_path) if fs.exists(marker_path) else None,
        virtual_ms=r.virtual_ms, exit_ms=j.exit_ms, commit_ms=j.commit_ms, respawns=j.respawns,
        crashes=sum(sim.hosts[w].incarnation for w in ids) - sum(1 for w in ids if w in j.exit_ms),
        sim=sim, verdicts=r.verdicts,
    )
