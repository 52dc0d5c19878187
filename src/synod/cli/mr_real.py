"""Run a MapReduce job on a real local cluster: a coordinator process and N
worker processes on 127.0.0.1, under :class:`synod.runtime.LocalCluster`.

Progress comes from the coordinator (``GetStatus``); the job is over when the
coordinator reports every output committed and every process has exited. If
the coordinator exits between two polls, the outcome is read from its trace
(``job_start`` and ``job_done`` events).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from synod.mapreduce.factories import job_to_params
from synod.mapreduce.messages import GetStatus, JobSpec, JobStatus
from synod.mapreduce.simjob import COORDINATOR_ID, worker_ids
from synod.runtime.cluster import LocalCluster
from synod.runtime.config import ClusterSpec, NodeSpec, write_config

__all__ = ["RealJobSummary", "run_real_job", "status_from_trace"]

POLL_INTERVAL_S = 0.1
EXIT_TIMEOUT_S = 30.0


@dataclass(slots=True, kw_only=True)
class RealJobSummary:
    """What a real job did. ``exit_codes``: each node's last exit code (a
    negative code is the signal that ended it); ``exit_history``: the exit
    codes of every process each node ran, oldest first; ``respawns``: how
    often each worker was started again after exiting non-zero;
    ``killed``: workers killed on purpose mid-job."""

    done: bool
    status: JobStatus | None
    wall_s: float
    run_dir: Path
    exit_codes: dict[str, int | None] = field(default_factory=dict)
    exit_history: dict[str, list[int]] = field(default_factory=dict)
    respawns: dict[str, int] = field(default_factory=dict)
    killed: list[str] = field(default_factory=list)

    @property
    def mb_per_s(self) -> float:
        if self.status is None or self.wall_s <= 0:
            return 0.0
        return self.status.input_bytes / 1e6 / self.wall_s


def run_real_job(job: JobSpec, *, workers: int, run_dir: Path, progress: bool = True,
                 kill_worker_at_map_fraction: float | None = None, respawn: bool = False,
                 timeout_s: float = 3600.0, say: Callable[[str], None] | None = None) -> RealJobSummary:
    """Run ``job`` with ``workers`` worker processes; block until it is done.

    ``kill_worker_at_map_fraction``: once this fraction of map tasks is done,
    SIGKILL the worker that joined last (the demo's mid-job failure).
    ``respawn``: restart workers that exit non-zero (the lab's crash test);
    the coordinator is never respawned.
    ``job.out_dir`` is created if missing.

    Raises:
        synod.runtime.cluster.ClusterError: a process could not be started.
    """
    say = say or (lambda _msg: None)
    ids = worker_ids(workers)
    nodes = {COORDINATOR_ID: NodeSpec(factory="synod.mapreduce.factories:coordinator",
                                      params={"job": job_to_params(job)})}
    for wid in ids:
        nodes[wid] = NodeSpec(factory="synod.mapreduce.factories:worker", params={"coordinator": COORDINATOR_ID})
    Path(job.out_dir).mkdir(parents=True, exist_ok=True)
    config, _ = write_config(ClusterSpec(run_dir=run_dir, nodes=nodes))
    t0 = time.perf_counter()
    # Only workers are respawned: the coordinator's state is volatile, so a
    # coordinator that dies ends the job (paper section 3.3).
    cluster = LocalCluster(config, respawn=ids if respawn else False)
    killed: list[str] = []
    kill_codes: dict[str, int | None] = {}
    status: JobStatus | None = None
    try:
        cluster.start([COORDINATOR_ID])
        cluster.start(ids, wait_ready=False)
        bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       disable=not progress, transient=False)
        with bar:
            maps_bar = bar.add_task("map tasks", total=None)
            reduces_bar = bar.add_task("reduce tasks", total=job.nreduce)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                try:
                    reply = cluster.call(COORDINATOR_ID, GetStatus(), timeout_s=2.0)
                except OSError:  # the coordinator is gone (or going): refused or closed
                    reply = None
                if isinstance(reply, JobStatus):
                    status = reply
                    bar.update(maps_bar, total=status.maps_total, completed=status.maps_done)
                    bar.update(reduces_bar, completed=status.reduces_done)
                    if (kill_worker_at_map_fraction is not None and not killed
                            and status.maps_done >= kill_worker_at_map_fraction * status.maps_total):
                        # the worker holding the most map output, so that its
                        # death forces re-execution (section 3.3)
                        held = status.map_outputs_by_worker
                        victim = max(reversed(ids), key=lambda w: held.get(w, 0))
                        kill_codes[victim] = cluster.kill(victim)
                        killed.append(victim)
                        say(f"killed {victim} (SIGKILL) with {status.maps_done}/{status.maps_total} map tasks done")
                    if status.done:
                        break
                elif not cluster.is_alive(COORDINATOR_ID):
                    break
                time.sleep(POLL_INTERVAL_S)
        exit_codes = {n: cluster.wait_exit(n, EXIT_TIMEOUT_S) for n in [COORDINATOR_ID, *ids] if n not in killed}
    finally:
        stopped = cluster.stop()
    wall = time.perf_counter() - t0
    if not (status and status.done) and cluster.exit_codes(COORDINATOR_ID)[-1:] == [0]:
        # it finished and exited between two polls
        status = status_from_trace(cluster.trace_path(COORDINATOR_ID)) or status
    exit_codes = {**{n: kill_codes.get(n, stopped.get(n)) for n in killed}, **exit_codes}
    return RealJobSummary(done=bool(status and status.done), status=status, wall_s=wall, run_dir=run_dir,
                          exit_codes=exit_codes,
                          exit_history={n: cluster.exit_codes(n) for n in [COORDINATOR_ID, *ids]},
                          respawns={n: cluster.respawns(n) for n in ids}, killed=killed)


def status_from_trace(path: Path) -> JobStatus | None:
    """The final status of a finished job from the coordinator's trace
    (``job_start`` and ``job_done`` events); None if it did not finish."""
    start = done = None
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if '"job_start"' not in line and '"job_done"' not in line:
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    continue  # a line torn by a crash
                if event.get("kind") == "job_start":
                    start, done = event, None  # a restarted coordinator starts over
                elif event.get("kind") == "job_done":
                    done = event
    except FileNotFoundError:
        return None
    if start is None or done is None:
        return None
    return JobStatus(maps_total=start["maps"], maps_done=start["maps"], reduces_total=start["reduces"],
                     reduces_done=start["reduces"], map_executions=done["map_executions"],
                     reduce_executions=done["reduce_executions"], reexecutions=done["reexecutions"],
                     input_bytes=start["input_bytes"], done=True, map_outputs_by_worker={})
