"""Run a MapReduce job in the simulator: one coordinator, N workers, an
in-memory shared file system holding the inputs, optional faults.

Workers that exit with a non-zero status (the lab's crash app) are started
again after ``respawn_delay_ms``, as the lab's test script restarts them in a
shell loop.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from synod.mapreduce.constants import SUCCESS_MARKER
from synod.mapreduce.coordinator import Coordinator
from synod.mapreduce.messages import JobSpec, JobStatus
from synod.mapreduce.outcome import JobOutcome, job_outcome
from synod.mapreduce.worker import Worker
from synod.sim import DiskFaults, Simulator, Tracer
from synod.sim.nemesis import Nemesis

__all__ = ["SimJobResult", "run_sim_job", "COORDINATOR_ID", "SIM_OUT_DIR", "worker_ids", "worker_nemesis", "scripted_crashes"]

COORDINATOR_ID = "coordinator"
SIM_OUT_DIR = "/mr-out"  # where a simulated job commits its outputs, in the simulator's file system
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


def worker_ids(n: int) -> list[str]:
    return [f"worker-{i}" for i in range(1, n + 1)]


@dataclass(slots=True, kw_only=True)
class SimJobResult:
    """What a simulated job did. ``outputs``: out-dir file name -> bytes, for
    the committed ``mr-out-*`` files; ``outcome``: the output directory's
    verdict (``_SUCCESS`` with all R outputs) and ``marker`` the bytes of
    ``_SUCCESS`` (None if absent); ``exit_ms``: virtual time each node
    last exited by itself; ``commit_ms``: time of the last output commit;
    ``crashes``: worker crashes and non-zero exits."""

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


def run_sim_job(job: JobSpec, inputs: dict[str, bytes], *, seed: int, workers: int,
                nemesis: Nemesis | None = None, tracer: Tracer | None = None, respawn_delay_ms: float = 200.0,
                time_limit_ms: float = 3_600_000.0, disk_faults: DiskFaults | None = None,
                setup: Callable[[Simulator], None] | None = None) -> SimJobResult:
    """Run ``job`` over ``inputs`` (path -> bytes, placed in the simulator's
    file system at those paths) with ``workers`` workers.

    ``nemesis``: a :class:`synod.sim.Nemesis`; without targets of its own it
    hits the workers (the coordinator's failure aborts a job, section 3.3).
    ``disk_faults``: faults of every worker's disk. ``setup(sim)``: called
    before the run, to schedule scripted faults with ``sim.call_at``.
    """
    sim = Simulator(seed, tracer=tracer)
    for path, data in inputs.items():
        sim.fs.pipe_file(path, data)
    sim.fs.makedirs(job.out_dir, exist_ok=True)
    ids = worker_ids(workers)
    peers = (COORDINATOR_ID, *ids)
    coordinator = Coordinator(job)
    sim.add_node(COORDINATOR_ID, lambda: coordinator, peers=peers)
    for wid in ids:
        sim.add_node(wid, lambda: Worker(COORDINATOR_ID), peers=peers, disk_faults=disk_faults)
    if nemesis is not None:
        if not nemesis.targets:
            nemesis = dataclasses.replace(nemesis, targets=tuple(ids))
        nemesis.install(sim)
    if setup is not None:
        setup(sim)

    exit_ms: dict[str, float] = {}
    commit = {"ms": 0.0, "respawns": 0}

    def watch() -> None:
        for wid in ids:
            host = sim.hosts[wid]
            if not host.up and host.exit_code not in (None, 0) and not coordinator.done:
                host.exit_code = None
                commit["respawns"] += 1
                sim.call_after(respawn_delay_ms, sim.restart, wid)
        sim.call_after(RESPAWN_CHECK_MS, watch)

    sim.call_after(RESPAWN_CHECK_MS, watch)
    was_done = False

    def finished() -> bool:
        # Called after every event: cheap until the job is done.
        nonlocal was_done
        if not coordinator.done:
            return sim.now_ms >= time_limit_ms
        if not was_done:
            was_done = True
            commit["ms"] = sim.now_ms
            if nemesis is not None:
                nemesis.heal_and_stop(sim.now_ms)  # liveness phase: let the workers hear "exit"
        for node_id, host in sim.hosts.items():
            if not host.up and host.exit_code == 0 and node_id not in exit_ms:
                exit_ms[node_id] = sim.now_ms
        # Done once every process has stopped (a worker that crashed after
        # the job, and was not restarted, counts as stopped).
        return not sim.hosts[COORDINATOR_ID].up and all(
            not sim.hosts[w].up for w in ids
        ) or sim.now_ms >= time_limit_ms

    sim.run(until=finished)
    outputs = {}
    for path in sorted(sim.fs.ls(job.out_dir, detail=False)):
        name = path.rsplit("/", 1)[-1]
        if name.startswith("mr-out-"):
            outputs[name] = sim.fs.cat_file(path)
    marker_path = f"{job.out_dir}/{SUCCESS_MARKER}"
    return SimJobResult(
        seed=seed, done=coordinator.done, status=coordinator.status(), outputs=outputs,
        outcome=job_outcome(sim.fs, job.out_dir, job.nreduce),
        marker=sim.fs.cat_file(marker_path) if sim.fs.exists(marker_path) else None,
        virtual_ms=sim.now_ms, exit_ms=exit_ms, commit_ms=commit["ms"], respawns=commit["respawns"],
        crashes=sum(sim.hosts[w].incarnation for w in ids) - sum(1 for w in ids if w in exit_ms),
        sim=sim,
    )
