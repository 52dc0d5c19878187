"""A worker that starts after the job is over exits at once and says why
(issue 9, part 2: small real jobs took 24 s instead of 2-3 s when a worker
process started after the coordinator had left: it retried the coordinator
10 times, 2 s each, and its node.log said only "starting ... stopping").

A worker that finds no coordinator must still retry while the job is not
over: it may have started before the coordinator was up."""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path

from synod.core import Node
from synod.mapreduce import constants as C
from synod.mapreduce.simjob import COORDINATOR_ID
from synod.mapreduce.worker import Worker
from synod.runtime.cluster import LocalCluster
from synod.runtime.config import ClusterSpec, NodeSpec, write_config
from synod.sim import Simulator, Tracer

MARKER = f"/mr-out/{C.SUCCESS_MARKER}"
LATE_EXIT_MS_MAX = C.WAIT_DELAY_MS                      # it sees the marker before calling anyone
REAL_LATE_EXIT_S_MAX = 6.0                              # process start-up; it took ~22 s


def _lone_worker(seed: int, *, job_over: bool) -> tuple[Simulator, io.StringIO]:
    """A worker whose coordinator is not running (never started: it left, or
    is not up yet); ``job_over``: the job's _SUCCESS marker exists."""
    trace = io.StringIO()
    sim = Simulator(seed, tracer=Tracer(trace))
    sim.fs.makedirs("/mr-out", exist_ok=True)
    if job_over:
        sim.fs.pipe_file(MARKER, b"mr-out-0\n")
    peers = (COORDINATOR_ID, "worker-1")
    sim.add_node(COORDINATOR_ID, Node, peers=peers, start=False)
    sim.add_node("worker-1", lambda: Worker(COORDINATOR_ID, done_marker=MARKER), peers=peers)
    return sim, trace


def _events(trace: io.StringIO, kind: str) -> list[dict]:
    events = [json.loads(line) for line in trace.getvalue().splitlines()]
    return [e for e in events if e.get("kind") == kind and e.get("node") == "worker-1"]


def _warnings(trace: io.StringIO) -> list[str]:
    return [e["message"] for e in _events(trace, "warning")]


def _exit_ms(trace: io.StringIO) -> float:
    exits = _events(trace, "exit")
    assert len(exits) == 1, exits
    return exits[0]["t_ms"]


def test_sim_worker_started_after_the_job_exits_at_once_saying_why() -> None:
    sim, trace = _lone_worker(3, job_over=True)
    sim.run(until=lambda: not sim.hosts["worker-1"].up, until_ms=60_000)
    assert not sim.hosts["worker-1"].up
    assert sim.hosts["worker-1"].exit_code == 0
    assert _exit_ms(trace) <= LATE_EXIT_MS_MAX, f"a late worker waited {_exit_ms(trace):.0f} ms"
    assert any("the job is over" in w for w in _warnings(trace)), _warnings(trace)


def test_sim_worker_whose_coordinator_leaves_after_the_job_exits_without_waiting_for_its_call() -> None:
    """The marker appears while the worker is waiting on a coordinator that
    has gone (it never answered: a short job was over before the worker's
    link to it was up): the worker sees the marker within
    JOIN_CHECK_INTERVAL_MS, not when its call times out (RPC_TIMEOUT_MS, 2 s,
    which held the wall time of small real jobs)."""
    sim, trace = _lone_worker(4, job_over=False)
    sim.call_at(100.0, sim.fs.pipe_file, MARKER, b"mr-out-0\n")
    sim.run(until=lambda: not sim.hosts["worker-1"].up, until_ms=60_000)
    assert not sim.hosts["worker-1"].up
    assert _exit_ms(trace) <= 100.0 + C.JOIN_CHECK_INTERVAL_MS, f"waited {_exit_ms(trace):.0f} ms"
    assert any("the job is over and the coordinator never answered" in w for w in _warnings(trace)), _warnings(trace)


def test_sim_worker_before_the_coordinator_keeps_retrying() -> None:
    """No marker: the coordinator may not be up yet, so the worker retries
    COORDINATOR_UNREACHABLE_MAX calls before it gives up, and says so."""
    sim, trace = _lone_worker(3, job_over=False)
    sim.run(until_ms=LATE_EXIT_MS_MAX * 3)
    assert sim.hosts["worker-1"].up, "a worker gave up on a coordinator that may still come up"
    sim.run(until=lambda: not sim.hosts["worker-1"].up, until_ms=120_000)
    assert not sim.hosts["worker-1"].up
    assert _exit_ms(trace) >= C.COORDINATOR_UNREACHABLE_MAX * C.WAIT_DELAY_MS
    assert any("never answered" in w for w in _warnings(trace)), _warnings(trace)


def test_real_worker_started_after_the_job_exits_promptly_with_the_reason_logged(tmp_path: Path) -> None:
    """A real worker process whose coordinator has left, with the job's
    _SUCCESS in place, exits within seconds and its node.log says why."""
    out = tmp_path / "out"
    out.mkdir()
    (out / C.SUCCESS_MARKER).write_text("mr-out-0\n")
    nodes = {COORDINATOR_ID: NodeSpec(factory="synod.mapreduce.factories:worker",
                                      params={"coordinator": "worker-1"}),
             "worker-1": NodeSpec(factory="synod.mapreduce.factories:worker",
                                  params={"coordinator": COORDINATOR_ID,
                                          "done_marker": str(out / C.SUCCESS_MARKER)})}
    config, _ = write_config(ClusterSpec(run_dir=tmp_path / "run", nodes=nodes))
    cluster = LocalCluster(config)
    try:
        t0 = time.monotonic()
        cluster.start(["worker-1"], wait_ready=False)  # the coordinator is never started: it has left
        code = cluster.wait_exit("worker-1", REAL_LATE_EXIT_S_MAX)
        took_s = time.monotonic() - t0
        assert code == 0, f"worker did not exit within {REAL_LATE_EXIT_S_MAX} s ({cluster.read_log('worker-1')})"
        assert took_s <= REAL_LATE_EXIT_S_MAX
        assert "the job is over" in cluster.read_log("worker-1")
    finally:
        cluster.stop()


def test_real_job_wall_time_does_not_depend_on_a_worker_starting_late(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """A whole real job in which worker-3 starts only after the coordinator
    has finished and left (its process is stopped the moment it is spawned
    and continued once the coordinator is gone): it exits within seconds,
    saying why, so the job is not held up by it (it was, by ~22 s)."""
    from synod.cli.mr_real import run_real_job
    from synod.mapreduce.messages import JobSpec

    books = tmp_path / "in.txt"
    books.write_text("the quick brown fox jumps over the lazy dog\n" * 200)
    job = JobSpec(app="wc", app_args={}, inputs=(str(books),), out_dir=str(tmp_path / "out"), nreduce=2)
    held: dict[str, object] = {}

    def continue_when_coordinator_gone(cluster: LocalCluster) -> None:
        # Polling with a deadline: the coordinator's exit is the condition.
        deadline = time.monotonic() + 60.0
        while cluster.is_alive(COORDINATOR_ID) and time.monotonic() < deadline:
            time.sleep(0.05)
        held["continued_at"] = time.monotonic()
        cluster.resume("worker-3")

    spawn = LocalCluster._spawn

    def spawn_worker_3_stopped(cluster: LocalCluster, node_id: str) -> None:
        spawn(cluster, node_id)
        if node_id == "worker-3" and "thread" not in held:
            # Stopped at once, before its interpreter has imported anything
            # (stopped from run_real_job's first poll instead, it had at
            # times already taken a task: the job then waited out its
            # task timeout). The coordinator was spawned first: it runs.
            cluster.pause("worker-3")
            held["thread"] = threading.Thread(target=continue_when_coordinator_gone, args=(cluster,))
            held["thread"].start()

    monkeypatch.setattr(LocalCluster, "_spawn", spawn_worker_3_stopped)
    summary = run_real_job(job, workers=3, run_dir=tmp_path / "run", progress=False, timeout_s=120.0)
    held["thread"].join(timeout=60.0)
    ended_at = time.monotonic()
    assert summary.done
    assert summary.exit_codes["worker-3"] == 0, summary.exit_codes
    late_s = ended_at - held["continued_at"]
    assert late_s <= REAL_LATE_EXIT_S_MAX, f"the late worker held the job {late_s:.1f} s after it started"
    log = (tmp_path / "run" / "worker-3" / "node.log").read_text()
    assert "the job is over" in log, log
