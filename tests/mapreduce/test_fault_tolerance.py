"""MapReduce fault tolerance in the simulator (paper section 3.3 and 3.6),
with scripted faults at known times."""

from __future__ import annotations

import json

import pytest
from tests.mapreduce._jobs import lines_of, load_books, reference, spec

from synod.harness.mapreduce import run_sim_job
from synod.sim import DiskFaults, Tracer


@pytest.fixture
def books(gutenberg_files):
    return load_books(gutenberg_files)


def _events(tracer: Tracer, kind: str) -> list[dict]:
    return [e for e in map(json.loads, tracer.lines) if e["kind"] == kind]


def test_completed_map_tasks_of_a_dead_worker_are_reexecuted(books) -> None:
    """Section 3.3: "completed map tasks are re-executed on a failure because
    their output is stored on the local disk(s) of the failed machine"."""
    tracer = Tracer(keep=True)
    job = spec("wc", books, sim_compute_ms_per_mb=2000.0)
    # By 1.5 s every worker has finished at least one map (each takes <= 1.2 s).
    result = run_sim_job(job, books, seed=21, workers=3, tracer=tracer,
                         setup=lambda sim: sim.call_at(1500.0, sim.crash, "worker-1"))
    assert result.done
    assert lines_of(result.outputs) == reference("wc", books)
    reexecuted = _events(tracer, "reexecute")
    assert reexecuted, "no map task was re-executed after worker-1 died"
    assert all("worker-1" in e["reason"] for e in reexecuted)
    assert result.status.reexecutions == len(reexecuted)
    dead = _events(tracer, "worker_dead")
    assert [e["worker"] for e in dead] == ["worker-1"]
    # every execution is accounted for: one per task, one per re-execution,
    # one per task that was running on worker-1 when it died
    assert result.status.map_executions + result.status.reduce_executions == (
        8 + 10 + len(reexecuted) + dead[0]["in_progress_lost"])


def test_restarted_worker_counts_as_dead_at_once(books) -> None:
    """A restart draws a new incarnation; the coordinator need not wait for
    the timeout to re-execute its map output."""
    tracer = Tracer(keep=True)
    job = spec("wc", books, sim_compute_ms_per_mb=2000.0)

    def setup(sim):
        sim.call_at(1500.0, sim.crash, "worker-2")
        sim.call_at(1600.0, sim.restart, "worker-2")

    result = run_sim_job(job, books, seed=22, workers=3, tracer=tracer, setup=setup)
    assert lines_of(result.outputs) == reference("wc", books)
    dead = _events(tracer, "worker_dead")
    assert [e["reason"] for e in dead] == ["restarted"]
    assert dead[0]["t_ms"] < 1500.0 + job.task_timeout_ms


def test_corrupt_map_output_is_caught_by_checksums(books) -> None:
    """A bit flipped on a read of map output is detected, never used: the
    reducer reports it and the map task runs again."""
    tracer = Tracer(keep=True)
    result = run_sim_job(spec("wc", books), books, seed=23, workers=3, tracer=tracer,
                         disk_faults=DiskFaults(read_corruption_probability=0.3))
    assert lines_of(result.outputs) == reference("wc", books)
    failures = _events(tracer, "fetch_failed")
    assert failures, "no corrupt read was noticed at p=0.3"
    assert all("corrupt" in e["reason"] or "missing" in e["reason"] for e in failures)
    assert result.status.reexecutions >= 1


def test_backup_tasks_finish_a_job_with_a_straggler(books) -> None:
    """Section 3.6: with backup tasks on, a paused worker's task is run again
    elsewhere and the job ends long before the task timeout; the straggler's
    late completion is ignored (first completion wins)."""
    job = spec("wc", books, sim_compute_ms_per_mb=200.0, backup_tasks=True, task_timeout_ms=60_000)
    tracer = Tracer(keep=True)

    def setup(sim):
        sim.call_at(1.0, sim.pause, "worker-3")       # holds its first map task
        sim.call_at(30_000.0, sim.resume, "worker-3")

    result = run_sim_job(job, books, seed=24, workers=3, tracer=tracer, setup=setup)
    assert lines_of(result.outputs) == reference("wc", books)
    assert _events(tracer, "backup_task"), "no backup task was scheduled"
    assert result.commit_ms < 30_000.0
    assert not _events(tracer, "task_timeout")


def test_without_backup_tasks_a_straggler_waits_for_the_timeout(books) -> None:
    """The same straggler without backups: the task is reassigned only when
    the task timeout expires."""
    job = spec("wc", books, sim_compute_ms_per_mb=200.0, task_timeout_ms=20_000)
    tracer = Tracer(keep=True)
    result = run_sim_job(job, books, seed=24, workers=3, tracer=tracer,
                         setup=lambda sim: sim.call_at(1.0, sim.pause, "worker-3"))
    assert lines_of(result.outputs) == reference("wc", books)
    assert result.commit_ms > 20_000.0
    assert _events(tracer, "worker_dead") or _events(tracer, "task_timeout")


def test_reducers_release_their_tasks_when_no_worker_is_free_to_rerun_a_lost_map(books) -> None:
    """A worker dies for good just after the map phase: its map outputs must
    be re-executed, but every surviving worker is inside a reduce task waiting
    for them. The coordinator takes a waiting reduce back so that its worker
    runs the lost map task; the job ends instead of waiting for ever."""
    tracer = Tracer(keep=True)
    job = spec("wc", books, sim_compute_ms_per_mb=2000.0)
    # seed 21: the reduce phase begins at ~2.42 s of virtual time
    result = run_sim_job(job, books, seed=21, workers=3, tracer=tracer, time_limit_ms=600_000.0,
                         setup=lambda sim: sim.call_at(2_500.0, sim.crash, "worker-3"))
    assert result.done, "the job hung with every live worker waiting for a lost map output"
    assert lines_of(result.outputs) == reference("wc", books)
    assert _events(tracer, "release_reduce")


def test_a_paused_worker_does_not_count_as_free_to_rerun_a_lost_map(books) -> None:
    """worker-3 paused (SIGSTOP, a long GC) during its second map task, with
    backup tasks on and a 60 s task timeout: its running map task is backed
    up and completed elsewhere, so it holds no running attempt, yet it is
    not dead either. When the reducers cannot fetch its first map output,
    the coordinator must not count it as free to re-execute that map task:
    it will not ask for it. Counting it waited for the whole task timeout
    (63 s here; a real-process run did the same); the coordinator now counts
    only workers heard within WORKER_RESPONSIVE_MS, and takes a waiting
    reduce back instead."""
    tracer = Tracer(keep=True)
    job = spec("wc", books, sim_compute_ms_per_mb=2000.0, task_timeout_ms=60_000.0, backup_tasks=True)
    # By 1.5 s every worker has finished at least one map (each takes <= 1.2 s).
    result = run_sim_job(job, books, seed=21, workers=3, tracer=tracer, time_limit_ms=600_000.0,
                         setup=lambda sim: sim.call_at(1_500.0, sim.pause, "worker-3"))
    assert result.done
    assert lines_of(result.outputs) == reference("wc", books)
    assert _events(tracer, "release_reduce")
    assert result.commit_ms < 20_000.0, f"committed at {result.commit_ms:.0f} ms: the task timeout was waited for"


def test_reducer_waiting_on_a_timed_out_attempt_drops_it(books) -> None:
    """The same crash with a task timeout shorter than a fetch from the dead
    worker: the coordinator times out both waiting reduce attempts, so no
    worker counts as busy and nothing is released; the reducers must learn
    on their next WhereIs that their attempts were taken back, drop them
    and run the lost maps. (A real-process run hung here for 3.5 minutes,
    and this run hung without the fix.)"""
    tracer = Tracer(keep=True)
    job = spec("wc", books, sim_compute_ms_per_mb=2000.0, task_timeout_ms=2_500.0)
    result = run_sim_job(job, books, seed=21, workers=3, tracer=tracer, time_limit_ms=300_000.0,
                         setup=lambda sim: sim.call_at(2_500.0, sim.crash, "worker-3"))
    assert _events(tracer, "task_timeout"), "the scenario needs a reduce attempt to time out"
    assert result.done, "the job hung with every live worker waiting on a taken-back reduce attempt"
    assert lines_of(result.outputs) == reference("wc", books)
