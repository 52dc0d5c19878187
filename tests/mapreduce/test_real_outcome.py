"""A real job's outcome is unambiguous (issue 8, part 6), with real processes
on 127.0.0.1: the verdict is the output directory's (``_SUCCESS`` with all R
outputs), a failed job says why and which outputs it committed, and the
summary reports the worker deaths the coordinator observed, however the
worker died. Faults come from outside the job runner, through its
``on_poll`` hook; no fixed sleeps (the runner polls with deadlines).
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from rich.console import Console
from tests.mapreduce._jobs import load_books

from synod.cli.mr_cmd import print_summary
from synod.cli.mr_real import RealJobSummary, run_real_job
from synod.mapreduce.constants import SUCCESS_MARKER
from synod.mapreduce.messages import JobSpec, JobStatus
from synod.mapreduce.reference import output_lines
from synod.mapreduce.simjob import COORDINATOR_ID
from synod.runtime.cluster import LocalCluster

JOB_TIMEOUT_S = 120.0
REPORT_AFTER_KILL_S_MAX = 10.0   # the runner said FAILED within this of the coordinator's death (it took ~30 s)


@pytest.fixture
def books(gutenberg_files: list[Path]) -> dict[str, bytes]:
    return load_books(gutenberg_files)


def _job(app: str, books: dict[str, bytes], out_dir: Path, **fields) -> JobSpec:
    return JobSpec(app=app, app_args={}, inputs=tuple(sorted(books)), out_dir=str(out_dir),
                   nreduce=fields.pop("nreduce", 10), **fields)


def _summary_text(summary: RealJobSummary) -> str:
    console = Console(record=True, width=200, force_terminal=False)
    print_summary(console, summary)
    return console.export_text()


def _committed(out_dir: Path) -> tuple[str, ...]:
    names = {p.name for p in out_dir.glob("mr-out-*")}
    return tuple(f"mr-out-{r}" for r in range(10) if f"mr-out-{r}" in names)


def test_coordinator_killed_mid_job_says_why_and_what_was_committed(books, tmp_path) -> None:
    """The coordinator SIGKILLed while reduce tasks run (rtiming: a reduce
    takes a second per key): FAILED at once (not after ~30 s), because the
    coordinator is gone (killed by SIGKILL), with the outputs committed so
    far named, and no _SUCCESS."""
    killed_at: list[float] = []

    def kill_mid_reduce(cluster: LocalCluster, status: JobStatus | None) -> None:
        if not killed_at and status is not None and status.reduces_done >= 2:
            cluster.kill(COORDINATOR_ID)
            killed_at.append(time.monotonic())

    out_dir = tmp_path / "out"
    summary = run_real_job(_job("rtiming", books, out_dir), workers=2, run_dir=tmp_path / "run", progress=False,
                           timeout_s=JOB_TIMEOUT_S, on_poll=kill_mid_reduce)
    reported_s = time.monotonic() - killed_at[0]
    assert not summary.done
    assert summary.reason == "the coordinator is gone (killed by SIGKILL) before the job finished"
    assert reported_s < REPORT_AFTER_KILL_S_MAX, f"FAILED reported {reported_s:.1f} s after the kill"
    committed = _committed(out_dir)
    assert 2 <= len(committed) < 10, committed
    assert summary.outcome.committed == committed
    assert not (out_dir / SUCCESS_MARKER).exists()
    text = _summary_text(summary)
    assert "FAILED" in text and "coordinator is gone (killed by SIGKILL)" in text
    assert f"{len(committed)} of 10 committed ({', '.join(committed)}); no {SUCCESS_MARKER}" in text


def _timing_outputs(out_dir: Path) -> list[str]:
    """The map times in an mtiming job's output: one per map task whose
    output the reduces used (the value lists of the ``times-<worker>`` keys)."""
    times: list[str] = []
    for line in output_lines(p.read_bytes() for p in sorted(out_dir.glob("mr-out-*"))):
        key, _, values = line.partition(" ")
        if key.startswith("times-"):
            times.extend(values.split())
    return times


def test_coordinator_killed_after_success_marker_is_success(books, tmp_path) -> None:
    """The coordinator SIGKILLed after it wrote _SUCCESS, before the runner
    saw the job done: SUCCEEDED, since every output and the marker are
    committed (it said FAILED). The marker lists the R outputs.

    A coordinator leaves as soon as every live worker has been told the job
    is over, milliseconds after the marker. To kill it in between, the
    first worker seen holding map output is paused (SIGSTOP): live for the
    coordinator (task timeout 60 s) but never asking again, so the
    coordinator waits DONE_GRACE_MS (3 s) for it after the marker. The app
    is mtiming, whose every map task takes a second of wall time, so the
    pause lands seconds before the job could end however fast the machine
    is (with wc the whole job took half a second against a status polled
    every 0.1 s). Backup tasks (paper section 3.6) and the re-execution of
    its unreadable output finish the job without it; it is resumed after
    the kill. From the pause on, the poll hook itself waits for the marker
    and kills the coordinator before the runner's next status call: when
    the runner polled between the hook's look and the marker, it saw the
    job done first and no kill came (a CI run under load)."""
    out_dir = tmp_path / "out"
    paused: list[str] = []
    kill_codes: list[int | None] = []

    def kill_after_marker(cluster: LocalCluster, status: JobStatus | None) -> None:
        if not paused and status is not None:
            holders = sorted(w for w, n in status.map_outputs_by_worker.items() if n)
            if holders:
                assert status.maps_done < status.maps_total, "the pause came after the map phase"
                cluster.pause(holders[0])
                paused.append(holders[0])
        if paused and not kill_codes:
            deadline = time.monotonic() + JOB_TIMEOUT_S
            while not (out_dir / SUCCESS_MARKER).exists():
                if time.monotonic() > deadline:
                    return
                time.sleep(0.002)   # (a condition polled, with a deadline)
            kill_codes.append(cluster.kill(COORDINATOR_ID))
            cluster.resume(paused[0])

    job = _job("mtiming", books, out_dir, nreduce=4, backup_tasks=True, task_timeout_ms=60_000)
    summary = run_real_job(job, workers=3, run_dir=tmp_path / "run", progress=False,
                           timeout_s=JOB_TIMEOUT_S, on_poll=kill_after_marker)
    assert kill_codes == [-signal.SIGKILL], kill_codes  # killed within DONE_GRACE_MS of the marker
    assert summary.exit_history[COORDINATOR_ID] == [-signal.SIGKILL]
    assert summary.done, summary.reason
    assert summary.reason == ""
    assert summary.outcome.committed == tuple(f"mr-out-{r}" for r in range(4))
    assert (out_dir / SUCCESS_MARKER).read_text().split() == [f"mr-out-{r}" for r in range(4)]
    assert len(_timing_outputs(out_dir)) == summary.status.maps_total  # every map task's output used exactly once
    assert "SUCCEEDED" in _summary_text(summary)


def test_worker_killed_from_outside_is_reported(books, tmp_path) -> None:
    """A worker SIGKILLed by someone else (not by the runner) once it holds
    map output, during the map phase: the summary names it among the worker
    deaths the coordinator observed (heartbeats lost), instead of "workers
    killed: none"; the job still succeeds and uses every map task's output
    once (paper section 3.3). The app is mtiming (a second of wall time per
    map task), so the kill lands while the victim runs its next map task,
    seconds before the map phase can end: its silence must be noticed for
    the job to finish, however fast the machine is."""
    victims: list[str] = []

    def kill_a_worker(cluster: LocalCluster, status: JobStatus | None) -> None:
        if not victims and status is not None and status.maps_done > 0:
            assert status.maps_done < status.maps_total, "the kill came after the map phase"
            held = status.map_outputs_by_worker
            victim = max(sorted(held), key=lambda w: held[w])
            cluster.kill(victim)
            victims.append(victim)

    out_dir = tmp_path / "out"
    summary = run_real_job(_job("mtiming", books, out_dir, task_timeout_ms=3_000), workers=3,
                           run_dir=tmp_path / "run", progress=False, timeout_s=JOB_TIMEOUT_S,
                           on_poll=kill_a_worker)
    assert summary.done, summary.reason
    assert summary.killed == []  # not the runner's doing
    (victim,) = victims
    assert (victim, "silent") in summary.worker_deaths
    assert summary.status.map_executions > summary.status.maps_total  # its map tasks ran again
    assert len(_timing_outputs(out_dir)) == summary.status.maps_total
    text = _summary_text(summary)
    assert f"{victim} (silent: heartbeats lost)" in text
    assert "workers killed" not in text
