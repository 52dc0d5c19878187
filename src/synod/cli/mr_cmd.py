"""``synod mr``: run a MapReduce job on a real local cluster or in the simulator.

::

    synod mr run --app wc --workers 4 --reduces 8 --out out/ INPUT...
    synod mr run --sim --seed 7 --kill-workers 0.3 --partitions 0.2 --trace run.jsonl \\
                 --app wc --workers 50 --reduces 10 --out out/ INPUT...
    synod mr run --sim --seed 7 --check-determinism --app wc ... INPUT...

An INPUT may be a directory (its files, recursively, sorted; ``--glob``
narrows them). Bad input (a missing path, an app without map/reduce, R < 1,
an output directory that already holds ``mr-out-*`` files or ``_SUCCESS``)
prints one line and exits with status 2 before anything is written.

A real run's verdict is the output directory's: SUCCEEDED (exit status 0)
iff ``_SUCCESS`` is there with all R outputs; otherwise FAILED (exit status
1) with the reason (the coordinator gone, and how; a timeout) and the
outputs committed so far.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from synod.cli._mr_args import build_job, expand_inputs, parse_app_args
from synod.mapreduce.constants import SUCCESS_MARKER
from synod.mapreduce.simjob import SIM_OUT_DIR

__all__ = ["mr"]



def fail(message: str) -> None:
    """Print one error line and exit with status 2."""
    click.echo(f"synod mr: error: {message}", err=True)
    sys.exit(2)


@click.group()
def mr() -> None:
    """MapReduce (Dean & Ghemawat, OSDI 2004)."""


@mr.command("run")
@click.option("--app", required=True, help="wc, indexer, grep, sort, a lab test app, a module path or a .py file")
@click.option("--app-arg", "app_args", multiple=True, metavar="KEY=VALUE", help="an option for the app (grep: pattern=REGEX)")
@click.option("--workers", type=int, default=4, show_default=True, help="worker processes (or simulated workers)")
@click.option("--reduces", type=int, default=10, show_default=True, help="R, the number of reduce tasks")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="output directory for mr-out-<r>")
@click.option("--split-size", type=int, default=0, show_default=True, help="max bytes per map task (0: one task per file)")
@click.option("--no-combiner", is_flag=True, help="do not apply the app's combiner")
@click.option("--backup-tasks", is_flag=True, help="schedule backup executions of the last tasks (paper section 3.6)")
@click.option("--task-timeout-ms", type=int, default=10_000, show_default=True, help="reassign a task not reported within this")
@click.option("--glob", "pattern", default="*", show_default=True, help="files to take from input directories")
@click.option("--run-dir", type=click.Path(file_okay=False), help="real runs: where node logs go (default: a temp dir)")
@click.option("--sim", is_flag=True, help="run in the simulator instead of real processes")
@click.option("--seed", type=int, default=1, show_default=True, help="simulator seed")
@click.option("--kill-workers", type=float, default=0.0, show_default=True,
              help="sim: probability, every 0.5 s, of killing a worker (restarted 1.5 s later)")
@click.option("--partitions", type=float, default=0.0, show_default=True,
              help="sim: probability, every 0.5 s, of a 3 s partition among workers")
@click.option("--crash", "crashes", multiple=True, metavar="WORKER@MS",
              help="sim: crash this worker at this virtual time (restarted 1.5 s later); repeatable")
@click.option("--sim-compute-ms-per-mb", type=float, default=0.0, show_default=True,
              help="sim: virtual compute time per MB of task input")
@click.option("--trace", "trace_path", type=click.Path(dir_okay=False), help="sim: write the JSON-lines trace here")
@click.option("--check-determinism", is_flag=True, help="sim: run twice and report the first trace divergence")
@click.argument("inputs", nargs=-1, required=True)
def run(app: str, app_args: tuple[str, ...], workers: int, reduces: int, out_dir: str, split_size: int,
        no_combiner: bool, backup_tasks: bool, task_timeout_ms: int, pattern: str, run_dir: str | None,
        sim: bool, seed: int, kill_workers: float, partitions: float, crashes: tuple[str, ...],
        sim_compute_ms_per_mb: float,
        trace_path: str | None, check_determinism: bool, inputs: tuple[str, ...]) -> None:
    """Run a MapReduce job over INPUT files (or directories)."""
    try:
        if workers < 1:
            raise click.UsageError(f"--workers must be >= 1, got {workers}")
        for name, p in (("--kill-workers", kill_workers), ("--partitions", partitions)):
            if not 0.0 <= p <= 1.0:
                raise click.UsageError(f"{name} must be a probability in [0, 1], got {p}")
        if not sim and (kill_workers or partitions or crashes or trace_path or check_determinism
                        or sim_compute_ms_per_mb):
            raise click.UsageError("--kill-workers, --partitions, --crash, --trace, --check-determinism and "
                                   "--sim-compute-ms-per-mb need --sim")
        scripted = [_parse_crash(c, workers) for c in crashes]
        files = expand_inputs(inputs, pattern)
        out = Path(out_dir).resolve()
        if out.is_dir() and (any(out.glob("mr-out-*")) or (out / SUCCESS_MARKER).exists()):
            raise click.UsageError(f"{out} already holds mr-out-* files or {SUCCESS_MARKER}; remove them or "
                                   "choose another --out")
        job = build_job(app=app, app_args=parse_app_args(app_args), inputs=files,
                        out_dir=SIM_OUT_DIR if sim else str(out), reduces=reduces,
                        split_size_bytes=split_size, backup_tasks=backup_tasks, use_combiner=not no_combiner,
                        task_timeout_ms=task_timeout_ms, sim_compute_ms_per_mb=sim_compute_ms_per_mb)
    except click.UsageError as e:
        fail(e.message)
    console = Console(soft_wrap=True)
    if sim:
        from synod.cli._mr_sim import run_simulated

        code = run_simulated(console, job, files, out, workers=workers, seed=seed, kill_workers=kill_workers,
                             partitions=partitions, crashes=scripted, trace_path=trace_path, determinism_check=check_determinism,
                             argv=sys.argv[1:])
        sys.exit(code)
    from synod.cli.mr_real import run_real_job

    out.mkdir(parents=True, exist_ok=True)
    run_path = Path(run_dir).resolve() if run_dir else Path(tempfile.mkdtemp(prefix="synod-mr-"))
    console.print(f"[bold]synod mr[/]: {app} over {len(files)} files, {workers} workers, R={reduces}; "
                  f"node logs in {run_path}")
    summary = run_real_job(job, workers=workers, run_dir=run_path, progress=console.is_terminal,
                           say=console.print)
    print_summary(console, summary)
    sys.exit(0 if summary.done else 1)


def _parse_crash(spec: str, workers: int) -> tuple[str, float]:
    node, sep, t = spec.partition("@")
    valid = {f"worker-{i}" for i in range(1, workers + 1)}
    try:
        t_ms = float(t)
    except ValueError:
        t_ms = -1.0
    if not sep or node not in valid or t_ms < 0:
        raise click.UsageError(f"--crash wants worker-N@MS with N in 1..{workers}, got {spec!r}")
    return node, t_ms


_DEATH_REASONS = {"silent": "silent: heartbeats lost", "restarted": "restarted: new incarnation"}


def describe_deaths(deaths: tuple[tuple[str, str], ...]) -> str:
    """The worker deaths a coordinator observed, as one cell: "none", or
    "worker-2 (silent: heartbeats lost), ..."."""
    if not deaths:
        return "none"
    return ", ".join(f"{w} ({_DEATH_REASONS.get(why, why)})" for w, why in deaths)


def print_summary(console: Console, summary) -> None:  # noqa: ANN001 - RealJobSummary
    """The table every real run ends with: the verdict (the output
    directory's: ``_SUCCESS`` with all R outputs), why a job failed, the
    outputs committed, and the worker deaths the coordinator observed."""
    st = summary.status
    outcome = summary.outcome
    table = Table(title="MapReduce job", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("result", "SUCCEEDED" if summary.done else "[red]FAILED[/]")
    if summary.reason:
        table.add_row("why", summary.reason)
    table.add_row("outputs", outcome.describe_outputs())
    if st is not None:
        table.add_row("input", f"{st.input_bytes / 1e6:.1f} MB")
        table.add_row("map tasks", f"{st.maps_done}/{st.maps_total} ({st.map_executions} executions)")
        table.add_row("reduce tasks", f"{st.reduces_done}/{st.reduces_total} ({st.reduce_executions} executions)")
        table.add_row("re-executions", str(st.reexecutions))
    table.add_row("worker deaths seen", describe_deaths(summary.worker_deaths) if st is not None else "unknown")
    if summary.killed:
        table.add_row("workers killed by this run", ", ".join(summary.killed))
    table.add_row("wall time", f"{summary.wall_s:.2f} s")
    table.add_row("throughput", f"{summary.mb_per_s:.2f} MB/s")
    console.print(table)
