"""A job's outcome in the simulator and at the coordinator (issue 8, part 6):
``_SUCCESS`` is written last, once every output is committed, and is the
verdict together with the R outputs; the job's status lists the worker
deaths the coordinator observed. The real-process twins are in
test_real_outcome.py."""

from __future__ import annotations

import pytest
from tests._fuzzhost import FuzzHost
from tests.mapreduce._jobs import lines_of, load_books, reference, spec

from synod.harness.mapreduce import run_sim_job
from synod.mapreduce.constants import SUCCESS_MARKER
from synod.mapreduce.coordinator import Coordinator
from synod.mapreduce.messages import JobSpec, MapDone, MapTask, ReduceDone, ReduceTask, RequestTask
from synod.mapreduce.outcome import job_outcome
from synod.sim.simulator import new_memory_fs

OUT = "/out"
INPUTS = {"/in/a.txt": b"a b\n", "/in/b.txt": b"b c\n"}
JOB = JobSpec(app="wc", app_args={}, inputs=tuple(sorted(INPUTS)), out_dir=OUT, nreduce=2)
PEERS = ("coordinator", "worker-1")


@pytest.fixture
def books(gutenberg_files):
    return load_books(gutenberg_files)


def _coordinator(stale_marker: bool = False) -> tuple[FuzzHost, Coordinator]:
    fs = new_memory_fs()
    for path, data in INPUTS.items():
        fs.pipe_file(path, data)
    fs.makedirs(OUT, exist_ok=True)
    if stale_marker:
        fs.pipe_file(f"{OUT}/{SUCCESS_MARKER}", b"from an earlier job\n")
    coord = Coordinator(JOB)
    return FuzzHost(coord, "coordinator", PEERS, fs=fs), coord


def _run_task(host: FuzzHost, corr: int) -> None:
    """worker-1 asks for a task and reports it done (committing a reduce's
    output as a worker does)."""
    host.feed("worker-1", RequestTask(worker_id="worker-1", incarnation=7), corr)
    (_, task, _), = [s for s in host.take_sent() if s[2] == -corr]
    if type(task) is MapTask:
        host.feed("worker-1", MapDone(worker_id="worker-1", incarnation=7, task_id=task.task_id,
                                      attempt=task.attempt, region_bytes=(1, 1)), corr + 1)
    else:
        assert type(task) is ReduceTask
        path = f"{OUT}/mr-out-{task.task_id}"
        host.ctx.fs.pipe_file(path, b"a 1\n")
        host.feed("worker-1", ReduceDone(worker_id="worker-1", incarnation=7, task_id=task.task_id,
                                         attempt=task.attempt, output_path=path), corr + 1)


def test_success_marker_is_written_last() -> None:
    """No _SUCCESS while an output is missing; once the last reduce output
    is committed, _SUCCESS appears, listing the R outputs, and the verdict
    is SUCCEEDED."""
    host, coord = _coordinator()
    fs = host.ctx.fs
    for i in range(3):  # two maps, the first reduce
        _run_task(host, 10 * i + 1)
        assert not fs.exists(f"{OUT}/{SUCCESS_MARKER}")
        assert not job_outcome(fs, OUT, 2).succeeded
    _run_task(host, 31)  # the last reduce
    assert coord.done
    assert fs.cat_file(f"{OUT}/{SUCCESS_MARKER}") == b"mr-out-0\nmr-out-1\n"
    outcome = job_outcome(fs, OUT, 2)
    assert (outcome.succeeded, outcome.committed, outcome.verdict) == (True, ("mr-out-0", "mr-out-1"), "SUCCEEDED")
    assert not [p for p in fs.ls(OUT, detail=False) if ".mr-tmp-" in p]


def test_stale_marker_is_removed_when_a_job_starts() -> None:
    """A _SUCCESS left by an earlier job must not vouch for this one."""
    host, _ = _coordinator(stale_marker=True)
    assert not host.ctx.fs.exists(f"{OUT}/{SUCCESS_MARKER}")


def test_outcome_needs_the_marker_and_every_output() -> None:
    fs = new_memory_fs()
    fs.makedirs(OUT, exist_ok=True)
    for r in range(3):
        fs.pipe_file(f"{OUT}/mr-out-{r}", b"")
    outcome = job_outcome(fs, OUT, 3)
    assert not outcome.succeeded  # all outputs, but the coordinator died before the marker
    assert outcome.describe_outputs() == f"3 of 3 committed (all); no {SUCCESS_MARKER}"
    fs.pipe_file(f"{OUT}/{SUCCESS_MARKER}", b"")
    fs.rm_file(f"{OUT}/mr-out-1")
    outcome = job_outcome(fs, OUT, 3)
    assert not outcome.succeeded
    assert outcome.describe_outputs() == f"2 of 3 committed (mr-out-0, mr-out-2); {SUCCESS_MARKER} present"
    assert job_outcome(fs, "/nowhere", 3).committed == ()


def test_sim_job_succeeds_by_its_marker(books) -> None:
    result = run_sim_job(spec("wc", books), books, seed=5, workers=3)
    assert result.outcome.succeeded
    assert result.marker == "".join(f"mr-out-{r}\n" for r in range(10)).encode()
    assert lines_of(result.outputs) == reference("wc", books)


@pytest.mark.parametrize("restart", [True, False])
def test_status_reports_worker_deaths_the_coordinator_saw(books, restart: bool) -> None:
    """A worker crashed mid-job: the job's status names it, as restarted
    (it came back with a new incarnation) or silent (heartbeats lost)."""
    job = spec("wc", books, sim_compute_ms_per_mb=2000.0, task_timeout_ms=3_000)

    def setup(sim) -> None:
        sim.call_at(1500.0, sim.crash, "worker-2")
        if restart:
            sim.call_at(1600.0, sim.restart, "worker-2")

    result = run_sim_job(job, books, seed=22, workers=3, setup=setup)
    assert result.outcome.succeeded
    assert result.status.worker_deaths == (("worker-2", "restarted" if restart else "silent"),)
