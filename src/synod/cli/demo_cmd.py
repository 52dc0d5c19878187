"""``synod demo``: the main job (what ``make demo`` runs).

An inverted index (the ``indexer`` app) over the ``.py`` files of this
Python's standard library, on a real local cluster of a coordinator and 4
worker processes. When half the map tasks are done one worker is killed with
SIGKILL; the coordinator notices (no answer to its pings within the task
timeout) and re-executes that worker's map tasks, whose output died with it
(MapReduce paper section 3.3). The result is then checked line for line
against a sequential run of the same app, and a few lookups are shown.
"""

from __future__ import annotations

import shutil
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from synod.cli.mr_cmd import print_summary
from synod.cli.mr_real import run_real_job
from synod.mapreduce.messages import JobSpec
from synod.mapreduce.reference import output_lines, run_sequential

__all__ = ["demo"]

LOOKUPS = ("heapq", "checksum", "fsync", "semaphore", "timeout")
DEMO_TASK_TIMEOUT_MS = 5_000


def stdlib_sources() -> tuple[Path, list[Path]]:
    """The standard library's directory and its .py files (no site-packages)."""
    root = Path(sysconfig.get_paths()["stdlib"]).resolve()
    files = sorted(p for p in root.rglob("*.py")
                   if p.is_file() and "site-packages" not in p.parts and "dist-packages" not in p.parts)
    return root, files


@click.command()
@click.option("--workers", type=int, default=4, show_default=True)
@click.option("--reduces", type=int, default=8, show_default=True)
@click.option("--keep", is_flag=True, help="keep the output and node logs")
def demo(workers: int, reduces: int, keep: bool) -> None:
    """Inverted index of the Python standard library on a real local cluster,
    with one worker killed mid-job, verified against a sequential run."""
    console = Console(soft_wrap=True)
    if workers < 2:
        click.echo("synod demo: error: --workers must be >= 2 (one of them is killed)", err=True)
        sys.exit(2)
    root, files = stdlib_sources()
    size_mb = sum(p.stat().st_size for p in files) / 1e6
    work = Path(tempfile.mkdtemp(prefix="synod-demo-"))
    out = work / "out"
    out.mkdir()
    console.rule("[bold]synod demo: MapReduce inverted index")
    console.print(f"input: {len(files)} .py files of the standard library in {root} ({size_mb:.1f} MB)")
    console.print(f"cluster: 1 coordinator + {workers} worker processes on 127.0.0.1, R = {reduces}; "
                  f"one worker is killed with SIGKILL once half the map tasks are done")
    console.print(f"node logs: {work / 'run'}")
    job = JobSpec(app="indexer", app_args={}, inputs=tuple(str(p) for p in files), out_dir=str(out),
                  nreduce=reduces, task_timeout_ms=DEMO_TASK_TIMEOUT_MS)
    summary = run_real_job(job, workers=workers, run_dir=work / "run", progress=True,
                           kill_worker_at_map_fraction=0.5, say=lambda m: console.print(f"[yellow]{m}[/]"))
    print_summary(console, summary)
    if not summary.done:
        console.print(f"[red]the job did not finish[/]; see the node logs in {work / 'run'}")
        sys.exit(1)

    console.print("verifying against a sequential run of the same app ...")
    t0 = time.perf_counter()
    expected = run_sequential("indexer", [(str(p), p.read_bytes().decode("utf-8", errors="replace"))
                                          for p in files])
    got = output_lines(p.read_bytes() for p in sorted(out.glob("mr-out-*")))
    ok = got == sorted(expected)
    console.print(f"sequential run: {time.perf_counter() - t0:.1f} s; {len(expected)} keys; "
                  + ("[green]identical output[/]" if ok else "[red]OUTPUT DIFFERS[/]"))
    index = {line.split(" ", 1)[0]: line.split(" ", 2)[1:] for line in got}
    table = Table(title="lookups: which standard-library files mention ...")
    table.add_column("word")
    table.add_column("files", justify="right")
    table.add_column("for example")
    for word in LOOKUPS:
        hit = index.get(word)
        if hit is None:
            table.add_row(word, "0", "")
            continue
        count, names = hit
        sample = ", ".join(Path(n).relative_to(root).as_posix() for n in names.split(",")[:3])
        table.add_row(word, count, sample)
    console.print(table)
    if keep:
        console.print(f"kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)
