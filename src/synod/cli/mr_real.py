"""Run a MapReduce job on a real local cluster: a coordinator process and N
worker processes on 127.0.0.1, under :class:`synod.runtime.LocalCluster`.

Progress comes from the coordinator (``GetStatus``). The verdict comes from
the output directory alone (:mod:`synod.mapreduce.outcome`): SUCCEEDED iff
``_SUCCESS`` is there with all R outputs, which the coordinator writes last.
A job that did not succeed says why: the coordinator is gone (its exit
status or signal), or the run gave up after its timeout; and which outputs,
if any, were committed. Once the coordinator is gone the job cannot finish
(its state is volatile, paper section 3.3), so the workers are stopped at
once rather than waited for. The summary lists the worker deaths the
coordinator observed; if the coordinator exited between two polls, they and
its final counts are read from its trace.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from synod.mapreduce.constants import SUCCESS_MARKER
from synod.mapreduce.factories import job_to_params
from synod.mapreduce.messages import GetStatus, JobSpec, JobStatus
from synod.mapreduce.outcome import JobOutcome, job_outcome
from synod.mapreduce.simjob import COORDINATOR_ID, worker_ids
from synod.runtime.cluster import ClusterError, LocalCluster
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
    ``killed``: workers killed on purpose mid-job by ``run_real_job``;
    ``outcome``: what the output directory holds (the verdict);
    ``reason``: why the job did not succeed (empty if it did)."""

    status: JobStatus | None
    wall_s: float
    run_dir: Path
    outcome: JobOutcome
    reason: str = ""
    exit_codes: dict[str, int | None] = field(default_factory=dict)
    exit_history: dict[str, list[int]] = field(default_factory=dict)
    respawns: dict[str, int] = field(default_factory=dict)
    killed: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        """The job succeeded: ``_SUCCESS`` and all R outputs are committed."""
        return self.outcome.succeeded

    @property
    def worker_deaths(self) -> tuple[tuple[str, str], ...]:
        """(worker id, reason) of each death the coordinator observed."""
        return self.status.worker_deaths if self.status is not None else ()

    @property
    def mb_per_s(self) -> float:
        if self.status is None or self.wall_s <= 0:
            return 0.0
        return self.status.input_bytes / 1e6 / self.wall_s


def describe_exit(code: int | None) -> str:
    """An exit status as a person says it: "killed by SIGKILL", "exit status 1"."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def run_real_job(job: JobSpec, *, workers: int, run_dir: Path, progress: bool = True,
                 kill_worker_at_map_fraction: float | None = None, respawn: bool = False,
                 timeout_s: float = 3600.0, say: Callable[[str], None] | None = None,
                 on_poll: Callable[[LocalCluster, JobStatus | None], None] | None = None,
                 app_dir: str | None = None, fork_server: bool = False,
                 fs: dict[str, Any] | None = None, worker_hosts: dict[str, str] | None = None) -> RealJobSummary:
    """Run ``job`` with ``workers`` worker processes; block until the job
    succeeds, the coordinator is gone, or ``timeout_s`` passes.

    ``kill_worker_at_map_fraction``: once this fraction of map tasks is done,
    SIGKILL the worker that holds the most map output (the demo's mid-job
    failure). ``respawn``: restart workers that exit non-zero (the lab's
    crash test); the coordinator is never respawned. ``on_poll(cluster,
    status)``: called before every status poll (tests use it to inject
    faults from outside; ``status`` is the latest one, or None).
    ``job.out_dir`` is created if missing. ``app_dir``: a directory the
    node processes need on their PYTHONPATH to import the app (``--app
    mymodule`` from the current directory). ``fork_server``: fork the node
    processes from one that imported the runtime once
    (:class:`LocalCluster`'s ``fork_server``): ~0.03 s to start a node
    instead of ~0.1 s of CPU each; ``synod mr run`` and ``synod demo`` use it.
    ``fs``: the shared storage the job's paths are on, as a cluster config's
    ``fs`` (``{"protocol": "gfs", "options": {"run_dir": ...}}``: inputs and
    outputs in synod's GFS, paths absolute in it); None: local files.
    ``worker_hosts``: worker id -> the storage host it runs beside (a GFS
    chunkserver id): map tasks go to a worker beside their input when they
    can (MapReduce 3.4; ``JobStatus.local_map_executions``).

    Raises:
        synod.runtime.cluster.ClusterError: a process could not be started.
    """
    say = say or (lambda _msg: None)
    ids = worker_ids(workers)
    nodes = {COORDINATOR_ID: NodeSpec(factory="synod.mapreduce.factories:coordinator",
                                      params={"job": job_to_params(job), "worker_hosts": dict(worker_hosts or {})})}
    out_dir = _out_dir(job, fs)
    for wid in ids:
        # done_marker: a worker that starts after the coordinator has left
        # sees the job is over and exits at once instead of retrying
        nodes[wid] = NodeSpec(factory="synod.mapreduce.factories:worker",
                              params={"coordinator": COORDINATOR_ID,
                                      "done_marker": f"{out_dir}/{SUCCESS_MARKER}"})
    _shared(fs).makedirs(out_dir, exist_ok=True)
    config, _ = write_config(ClusterSpec(run_dir=run_dir, nodes=nodes, fs=fs))
    t0 = time.perf_counter()
    # Only workers are respawned: the coordinator's state is volatile, so a
    # coordinator that dies ends the job (paper section 3.3).
    env = {}
    if app_dir is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (app_dir, os.environ.get("PYTHONPATH", "")) if p)
    cluster = LocalCluster(config, respawn=ids if respawn else False, env=env, fork_server=fork_server)
    killed: list[str] = []
    kill_codes: dict[str, int | None] = {}
    status: JobStatus | None = None
    coordinator_gone = False
    try:
        # Every process at once, the coordinator first: on a small machine
        # their start-up (imports) is much of a short job, so it overlaps
        # instead of the workers waiting for the coordinator to be ready. A
        # worker up first queues its first call until the coordinator listens.
        cluster.start([COORDINATOR_ID, *ids], wait_ready=False)
        try:
            cluster.wait_ready([COORDINATOR_ID])
        except ClusterError:
            if not _outcome(job, fs).succeeded:
                raise
            # a job this small can be over, and its coordinator gone, before
            # it was ever seen ready: the loop below finds it done
        bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       disable=not progress, transient=False)
        with bar:
            maps_bar = bar.add_task("map tasks", total=None)
            reduces_bar = bar.add_task("reduce tasks", total=job.nreduce)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                if on_poll is not None:
                    on_poll(cluster, status)
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
                    coordinator_gone = True
                    break
                time.sleep(POLL_INTERVAL_S)
        # After a successful job the processes leave on their own (workers
        # are told to exit); once the coordinator is gone nobody will tell
        # them, so they are stopped below instead of waited for. A
        # coordinator that left between two polls after writing _SUCCESS
        # finished the job: its workers leave on their own too.
        gone_code = [cluster.wait_exit(COORDINATOR_ID, EXIT_TIMEOUT_S)] if coordinator_gone else []
        finished = coordinator_gone and _outcome(job, fs).succeeded
        waited = [COORDINATOR_ID, *ids] if finished or not coordinator_gone else []
        exit_codes = {n: cluster.wait_exit(n, EXIT_TIMEOUT_S) for n in waited if n not in killed}
    finally:
        stopped = cluster.stop()
    wall = time.perf_counter() - t0
    if coordinator_gone and not (status and status.done):
        # it exited (or died) between two polls: its trace has the final counts
        status = status_from_trace(cluster.trace_path(COORDINATOR_ID), status) or status
    exit_codes = {**{n: kill_codes.get(n, stopped.get(n)) for n in [*killed, *ids, COORDINATOR_ID]},
                  **exit_codes}
    if gone_code:
        exit_codes[COORDINATOR_ID] = gone_code[0]
    outcome = _outcome(job, fs)  # after the waits: a coordinator still running may have finished meanwhile
    reason = ""
    if not outcome.succeeded:
        if status is not None and status.done:
            reason = "the coordinator reported the job done, but the output directory does not show it"
        elif coordinator_gone:
            how = describe_exit(gone_code[0]) if gone_code else "it stopped answering"
            reason = f"the coordinator is gone ({how}) before the job finished"
        else:
            reason = f"gave up after {timeout_s:.0f} s"
    return RealJobSummary(status=status, wall_s=wall, run_dir=run_dir, outcome=outcome, reason=reason,
                          exit_codes=exit_codes,
                          exit_history={n: cluster.exit_codes(n) for n in [COORDINATOR_ID, *ids]},
                          respawns={n: cluster.respawns(n) for n in ids}, killed=killed)


_TRACE_KINDS = ('"job_start"', '"job_done"', '"worker_dead"', '"map_done"', '"reduce_done"')


def _shared(fs: dict[str, Any] | None) -> Any:
    """The job's shared storage as the nodes see it (``ctx.fs``)."""
    return fsspec.filesystem("file") if fs is None else fsspec.filesystem(fs["protocol"], **fs["options"])


def _out_dir(job: JobSpec, fs: dict[str, Any] | None) -> str:
    return str(Path(job.out_dir).resolve()) if fs is None else job.out_dir.rstrip("/")


def _outcome(job: JobSpec, fs: dict[str, Any] | None = None) -> JobOutcome:
    return job_outcome(_shared(fs), _out_dir(job, fs), job.nreduce)


def status_from_trace(path: Path, last: JobStatus | None = None) -> JobStatus | None:
    """The final status of a job from the coordinator's trace (``job_start``,
    ``map_done``, ``reduce_done``, ``worker_dead`` and ``job_done``
    events), for a coordinator that exited between two polls; ``last`` is
    the latest polled status (its execution counts stand when the job did
    not finish). None if the trace does not show the job starting."""
    start = done = None
    maps: set[int] = set()
    reduces: set[int] = set()
    deaths: list[tuple[str, str]] = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not any(k in line for k in _TRACE_KINDS):
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    continue  # a line torn by a crash
                kind = event.get("kind")
                if kind == "job_start":
                    start, done = event, None  # a restarted coordinator starts over
                    maps, reduces, deaths = set(), set(), []
                elif kind == "job_done":
                    done = event
                elif kind == "map_done":
                    maps.add(event["task"])
                elif kind == "reduce_done":
                    reduces.add(event["task"])
                elif kind == "worker_dead":
                    deaths.append((event["worker"], event["reason"]))
    except FileNotFoundError:
        return None
    if start is None:
        return None
    if done is not None:
        executions = (done["map_executions"], done["reduce_executions"], done["reexecutions"])
    elif last is not None:
        executions = (last.map_executions, last.reduce_executions, last.reexecutions)
    else:
        executions = (0, 0, 0)
    finished = done is not None
    maps_done = start["maps"] if finished else last.maps_done if last is not None else len(maps)
    return JobStatus(maps_total=start["maps"], maps_done=maps_done,
                     reduces_total=start["reduces"], reduces_done=start["reduces"] if finished else len(reduces),
                     map_executions=executions[0], reduce_executions=executions[1], reexecutions=executions[2],
                     input_bytes=start["input_bytes"], done=finished, map_outputs_by_worker={},
                     worker_deaths=tuple(deaths),
                     local_map_executions=done.get("local_map_executions", 0) if done is not None else 0,
                     placeable_map_executions=done.get("placeable_map_executions", 0) if done is not None else 0)
