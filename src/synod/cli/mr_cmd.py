"""``synod mr``: run a MapReduce job on a real local cluster or in the simulator.

::

    synod mr run --app wc --workers 4 --reduces 8 --out out/ INPUT...
    synod mr run --sim --seed 7 --kill-workers 0.3 --partitions 0.2 --trace run.jsonl \\
                 --app wc --workers 50 --reduces 10 --out out/ INPUT...
    synod mr run --sim --seed 7 --check-determinism --app wc ... INPUT...

An INPUT may be a directory (its files, recursively, sorted; ``--glob``
narrows them). Binary files (a NUL byte or invalid UTF-8 in their first
8 KiB) are skipped, each named in a warning line on stderr. Bad input (a
missing path, no text file, an app without map/reduce, R < 1, an output
directory that already holds ``mr-out-*`` files or ``_SUCCESS`` without
``--force``) prints one line and exits with status 2 before anything is
written. ``--force`` replaces an old output atomically (synod.cli._mr_out).

``--app NAME`` finds a module in the current directory too (it is put on
``sys.path``, as ``python -m`` does, and on the worker processes'
PYTHONPATH). A real run's node logs go to a temp dir that is removed after
a successful job unless ``--keep`` (or ``--run-dir``) is given; a failed
job's logs are kept and their place printed. ``--json`` prints one JSON
object on stdout (the progress lines go to stderr).

A real run's verdict is the output directory's: SUCCEEDED (exit status 0)
iff ``_SUCCESS`` is there with all R outputs; otherwise FAILED (exit status
1) with the reason (the coordinator gone, and how; a timeout) and the
outputs committed so far.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import click
import msgspec
from rich.console import Console
from rich.table import Table

from synod.cli._mr_args import app_search_dir, build_job, drop_binary, expand_inputs, parse_app_args
from synod.cli._mr_gfs import is_gfs, run_gfs_job
from synod.cli._mr_out import OutputPlan, plan_output, status_fields
from synod.mapreduce.simjob import SIM_OUT_DIR

__all__ = ["mr"]

BINARY_NAMED_MAX = 10  # skipped binary input files named one per warning line; the rest are counted



def fail(message: str) -> None:
    """Print one error line and exit with status 2."""
    click.echo(f"synod mr: error: {message}", err=True)
    sys.exit(2)


@click.group()
def mr() -> None:
    """MapReduce (Dean & Ghemawat, OSDI 2004)."""


@mr.command("run")
@click.option("--app", required=True,
              help="wc, indexer, grep, sort, a lab test app, a module name (found in the current directory "
                   "too, as python -m does) or a .py file")
@click.option("--app-arg", "app_args", multiple=True, metavar="KEY=VALUE",
              help="an option for the app (grep: pattern=REGEX); repeatable")
@click.option("--workers", type=int, default=4, show_default=True, help="worker processes (or simulated workers)")
@click.option("--reduces", type=int, default=10, show_default=True, help="R, the number of reduce tasks")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="output directory for mr-out-<r> and _SUCCESS; refused if it already holds outputs, "
                   "unless --force")
@click.option("--force", is_flag=True,
              help="replace the outputs already in --out: the job writes a new directory beside it, swapped in "
                   "only if the job succeeds (the old output is left untouched otherwise)")
@click.option("--split-size", type=int, default=0, show_default=True, help="max bytes per map task (0: one task per file)")
@click.option("--no-combiner", is_flag=True, help="do not apply the app's combiner")
@click.option("--backup-tasks", is_flag=True, help="schedule backup executions of the last tasks (paper section 3.6)")
@click.option("--task-timeout-ms", type=int, default=10_000, show_default=True, help="reassign a task not reported within this")
@click.option("--glob", "pattern", default="*", show_default=True,
              help="files to take from input directories; binary files (a NUL byte or invalid UTF-8 in the "
                   "first 8 KiB) are skipped with a warning")
@click.option("--run-dir", type=click.Path(file_okay=False),
              help="real runs: where node logs and traces go (kept); default: a temp dir, removed after a "
                   "successful job unless --keep")
@click.option("--keep", is_flag=True, help="real runs: keep the temp run dir (node logs, traces) and print where")
@click.option("--json", "as_json", is_flag=True,
              help="print one JSON object (verdict, outputs, timings, crashes, re-executions, worker deaths) "
                   "instead of the table")
@click.option("--gfs-dir", default="runs/gfs", show_default=True, type=click.Path(file_okay=False),
              help="with gfs:// inputs and --out: the GFS cell's run dir (synod gfs up --dir)")
@click.option("--sim", is_flag=True, help="run in the simulator instead of real processes")
@click.option("--seed", type=int, default=1, show_default=True, help="simulator seed")
@click.option("--hosts", type=int, default=0, show_default=True,
              help="sim: keep the input and output in a simulated GFS cell of this many chunkservers (3 "
                   "replicas of each 64 MB chunk), worker i beside chunkserver i mod N, map tasks placed "
                   "beside a replica of their input (paper section 3.4; 0: no cell, no placement; else >= 3)")
@click.option("--kill-workers", type=float, default=0.0, show_default=True,
              help="sim: each worker's (with --hosts, each chunkserver's too) probability of being killed "
                   "per virtual second (restarted 1.5 s later; at most half of them down at once)")
@click.option("--partitions", type=float, default=0.0, show_default=True,
              help="sim: probability, every 0.5 s, of a 3 s partition among workers")
@click.option("--crash", "crashes", multiple=True, metavar="WORKER@MS",
              help="sim: crash this worker at this virtual time (restarted 1.5 s later); repeatable")
@click.option("--sim-compute-ms-per-mb", type=float, default=0.0, show_default=True,
              help="sim: virtual compute time per MB of task input (without it a small job is over in "
                   "under a second of virtual time, before --kill-workers is likely to hit)")
@click.option("--trace", "trace_path", type=click.Path(dir_okay=False), help="sim: write the JSON-lines trace here")
@click.option("--check-determinism", is_flag=True, help="sim: run twice and report the first trace divergence")
@click.argument("inputs", nargs=-1, required=True)
def run(app: str, app_args: tuple[str, ...], workers: int, reduces: int, out_dir: str, force: bool,
        split_size: int, no_combiner: bool, backup_tasks: bool, task_timeout_ms: int, pattern: str,
        run_dir: str | None, keep: bool, as_json: bool, gfs_dir: str, sim: bool, seed: int, hosts: int,
        kill_workers: float,
        partitions: float, crashes: tuple[str, ...], sim_compute_ms_per_mb: float,
        trace_path: str | None, check_determinism: bool, inputs: tuple[str, ...]) -> None:
    """Run a MapReduce job over INPUT files (or directories).

    Binary input files (a NUL byte or invalid UTF-8 in the first 8 KiB) are
    skipped, each named in a warning line on stderr.

    \b
    Over GFS (synod gfs up): inputs and --out as gfs:// paths; map tasks
    read their splits from GFS, outputs are committed there:
      synod mr run --app wc --gfs-dir runs/gfs --out gfs:///out/wc gfs:///in

    \b
    Fault injection in the simulator (workers crash, map tasks re-execute):
      synod mr run --sim --seed 7 --kill-workers 0.1 --sim-compute-ms-per-mb 20000 \\
        --trace run.jsonl --app wc --workers 20 --reduces 8 --glob '*.py' --out out-faults/ DIR
    """
    try:
        if workers < 1:
            raise click.UsageError(f"--workers must be >= 1, got {workers}")
        for name, p in (("--kill-workers", kill_workers), ("--partitions", partitions)):
            if not 0.0 <= p <= 1.0:
                raise click.UsageError(f"{name} must be a probability in [0, 1], got {p}")
        if not sim and (kill_workers or partitions or crashes or trace_path or check_determinism
                        or sim_compute_ms_per_mb or hosts):
            raise click.UsageError("--kill-workers, --partitions, --crash, --trace, --check-determinism, "
                                   "--sim-compute-ms-per-mb and --hosts need --sim")
        if hosts and not 3 <= hosts <= 100:
            raise click.UsageError(f"--hosts must be 0 or within 3..100 (3 replicas of each chunk), got {hosts}")
        scripted = [_parse_crash(c, workers) for c in crashes]
        if any(is_gfs(i) for i in inputs) or is_gfs(out_dir):
            if sim or as_json:
                raise click.UsageError("gfs:// inputs run on real processes, without --sim or --json")
            parsed = parse_app_args(app_args)

            def build(files: list[str], out: str) -> Any:
                return build_job(app=app, app_args=parsed, inputs=[Path(f) for f in files], out_dir=out,
                                 reduces=reduces, split_size_bytes=split_size, backup_tasks=backup_tasks,
                                 use_combiner=not no_combiner, task_timeout_ms=task_timeout_ms)

            sys.exit(run_gfs_job(Console(soft_wrap=True), gfs_dir=gfs_dir, inputs=inputs, out_dir=out_dir,
                                 force=force, pattern=pattern, build=build, workers=workers, run_dir=run_dir,
                                 keep=keep, app_dir=app_search_dir(app)))
        files, binary = drop_binary(expand_inputs(inputs, pattern))
        out = Path(out_dir).resolve()
        app_dir = app_search_dir(app)
        job = build_job(app=app, app_args=parse_app_args(app_args), inputs=files,
                        out_dir=SIM_OUT_DIR if sim else str(out), reduces=reduces,
                        split_size_bytes=split_size, backup_tasks=backup_tasks, use_combiner=not no_combiner,
                        task_timeout_ms=task_timeout_ms, sim_compute_ms_per_mb=sim_compute_ms_per_mb)
        from synod.mapreduce.app import load_app

        if hosts and load_app(job.app, job.app_args).partition_plan is not None:
            raise click.UsageError(f"--hosts: app {app} plans its partitions by reading its input through "
                                   "ctx.fs, which a job over the simulated GFS cell does not have; run it "
                                   "without --hosts")
        plan = plan_output(out, force)  # last: it may create the directory that replaces out
    except click.UsageError as e:
        fail(e.message)
    if not sim:
        job = msgspec.structs.replace(job, out_dir=str(plan.write_dir))
    for p in binary[:BINARY_NAMED_MAX]:
        click.echo(f"synod mr: warning: skipping binary file {p}", err=True)
    if len(binary) > BINARY_NAMED_MAX:
        click.echo(f"synod mr: warning: skipping {len(binary) - BINARY_NAMED_MAX} more binary files "
                   "(--glob narrows the input)", err=True)
    # --json: the human-readable lines go to stderr, stdout holds the JSON only
    console = Console(soft_wrap=True, stderr=as_json)
    if sim:
        from synod.cli._mr_sim import run_simulated

        code = run_simulated(console, job, files, plan.write_dir, workers=workers, seed=seed,
                             kill_workers=kill_workers, partitions=partitions, crashes=scripted,
                             trace_path=trace_path, determinism_check=check_determinism, argv=sys.argv[1:],
                             report=_json_printer(plan, binary) if as_json else None, out_shown=plan.out,
                             hosts=hosts)
        _finish(plan, code == 0, console)
        sys.exit(code)
    from synod.cli.mr_real import run_real_job

    plan.write_dir.mkdir(parents=True, exist_ok=True)
    temp_run = run_dir is None
    run_path = Path(run_dir).resolve() if run_dir else Path(tempfile.mkdtemp(prefix="synod-mr-"))
    console.print(f"[bold]synod mr[/]: {app} over {len(files)} files, {workers} workers, R={reduces}"
                  + ("" if temp_run and not keep else f"; node logs in {run_path}"))
    try:
        summary = run_real_job(job, workers=workers, run_dir=run_path,
                               progress=console.is_terminal and not as_json, say=console.print, app_dir=app_dir,
                               fork_server=True)
    except KeyboardInterrupt:  # the cluster is stopped by now; the old output stays, the logs are kept
        plan.abandon()
        click.echo(f"synod mr: interrupted; node logs kept in {run_path}", err=True)
        sys.exit(130)
    _finish(plan, summary.done, console)
    logs_kept = not temp_run or keep or not summary.done
    if logs_kept:
        console.print(f"node logs kept in {run_path}" + ("" if summary.done or not temp_run else
                                                        " (the job failed; remove it when done)"))
    else:
        shutil.rmtree(run_path, ignore_errors=True)
    if as_json:
        report = {**real_report(summary), "out": str(plan.out), "skipped_binary": [str(p) for p in binary],
                  "run_dir": str(run_path) if logs_kept else None}
        click.echo(json.dumps(report, sort_keys=False))
    else:
        print_summary(console, summary)
    sys.exit(0 if summary.done else 1)


def _finish(plan: OutputPlan, succeeded: bool, console: Console) -> None:
    """Swap a --force output into place, or drop it (the old one stays)."""
    if succeeded:
        plan.commit()
    elif plan.replacing:
        plan.abandon()
        console.print(f"the job failed: {plan.out} left as it was")


def _json_printer(plan: OutputPlan, binary: list[Path]):  # noqa: ANN202
    def report(fields: dict) -> None:
        click.echo(json.dumps({**fields, "out": str(plan.out), "skipped_binary": [str(p) for p in binary]}))
    return report


def real_report(summary) -> dict:  # noqa: ANN001 - RealJobSummary
    """A real run's ``--json`` object (less the paths)."""
    return {"mode": "real", "verdict": summary.outcome.verdict, "reason": summary.reason or None,
            "outputs": list(summary.outcome.committed), "success_marker": summary.outcome.marker,
            "wall_s": round(summary.wall_s, 3), "mb_per_s": round(summary.mb_per_s, 3),
            **status_fields(summary.status), "workers_killed": list(summary.killed),
            "exit_codes": summary.exit_codes}


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
