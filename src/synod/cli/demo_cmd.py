"""``synod demo``: the main job (what ``make demo`` runs).

An inverted index (the ``indexer`` app) over the ``.py`` files of this
Python's standard library (about 1,800 small files), on a real local cluster
of a coordinator and 4 worker processes. Small files are packed into splits
of up to ``--split-size`` bytes (Hadoop's CombineFileInputFormat), so the
job runs a few dozen map tasks instead of one per file.

When half the map tasks are done, the worker holding the most map output is
killed with SIGKILL and started again, as a cluster manager restarts a
failed process. The new process is a new *incarnation* with no map output;
the coordinator sees it come back, declares its earlier life dead and
re-executes the map tasks whose output lived on that worker's disk (paper
section 3.3). The demo prints that story from the coordinator's trace,
checks the result line for line against a sequential run of the same app
(timed, beside the job), shows a few lookups, then runs the same job with
the same fault in the simulator and writes its trace and a trace-view page
(``synod trace view``) the user can open.

Act 2 (:mod:`synod.cli._demo_kv`): a 3-server KV store on Raft driven by
redis-py; its leader is killed with SIGKILL mid-stream, the survivors elect
another (the act says which, and how long it took), every acknowledged key
is read back from both, and the cluster is stopped with nothing left running.

Act 3 (:mod:`synod.cli._demo_zk`): a 3-server ZooKeeper ensemble on Zab
driven by two kazoo clients; alice takes a Lock and wins an Election, bob
waits behind her; the ensemble's leader is killed with SIGKILL; alice's
session moves to a survivor and she keeps the lock; she releases it and bob
gets it; she closes her session and bob wins the election; nothing is left
running.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from synod.cli.mr_cmd import print_summary
from synod.cli.mr_real import RealJobSummary, run_real_job
from synod.mapreduce._splits import plan_splits
from synod.mapreduce.messages import JobSpec, JobStatus
from synod.mapreduce.reference import output_lines, run_sequential
from synod.mapreduce.simjob import COORDINATOR_ID, worker_ids
from synod.runtime.cluster import ClusterError

__all__ = ["demo"]

LOOKUPS = ("heapq", "checksum", "fsync", "semaphore", "timeout")
DEMO_TASK_TIMEOUT_MS = 5_000
DEMO_SPLIT_SIZE_BYTES = 1 << 20  # ~30 map tasks for the standard library's ~31 MB


def stdlib_sources() -> tuple[Path, list[Path]]:
    """The standard library's directory and its .py files (no site-packages)."""
    root = Path(sysconfig.get_paths()["stdlib"]).resolve()
    files = sorted(p for p in root.rglob("*.py")
                   if p.is_file() and "site-packages" not in p.parts and "dist-packages" not in p.parts)
    return root, files


class KillAndRestart:
    """``run_real_job``'s ``on_poll``: once half the map tasks are done,
    SIGKILL the worker holding the most map output, then start it again.
    Records who and when (``time.monotonic()``)."""

    def __init__(self, ids: list[str], say: Callable[[str], None]) -> None:
        self.ids = ids
        self.say = say
        self.cluster = None
        self.victim: str | None = None
        self.kill_s = 0.0
        self.restarted = False
        self.maps_done = 0
        self.maps_total = 0

    def __call__(self, cluster, status: JobStatus | None) -> None:  # noqa: ANN001 - LocalCluster
        self.cluster = cluster
        if self.victim is not None or status is None or not status.maps_total:
            return
        if status.maps_done < status.maps_total / 2:
            return
        held = status.map_outputs_by_worker
        victim = max(reversed(self.ids), key=lambda w: held.get(w, 0))
        self.victim = victim
        self.maps_done, self.maps_total = status.maps_done, status.maps_total
        self.kill_s = time.monotonic()
        cluster.kill(victim)
        self.say(f"killed {victim} (SIGKILL) with {status.maps_done}/{status.maps_total} map tasks done")
        try:
            cluster.start([victim], wait_ready=False)  # a new process: a new incarnation, no map output
        except ClusterError as e:
            self.say(f"could not start {victim} again ({e}); the coordinator will find it silent "
                     f"after {DEMO_TASK_TIMEOUT_MS / 1000:g} s instead")
        else:
            self.restarted = True
            self.say(f"started {victim} again")


def _coordinator_events(fault: KillAndRestart) -> list[dict]:
    """The coordinator's trace events of the job's story, oldest first."""
    if fault.cluster is None:
        return []
    kinds = {"job_start", "worker_dead", "reexecute", "reduce_phase", "job_done"}
    events = []
    try:
        with open(fault.cluster.trace_path(COORDINATOR_ID), encoding="utf-8") as f:
            for line in f:
                if '"kind"' in line:
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue
                    if event.get("kind") in kinds:
                        events.append(event)
    except FileNotFoundError:
        return []
    return events


def explain_real_run(console: Console, fault: KillAndRestart, t0_s: float, summary: RealJobSummary) -> float | None:
    """What the user just saw, as a timeline from the coordinator's trace
    (seconds since the cluster was started). Returns when the job committed
    its output (``_SUCCESS``), in seconds since ``t0_s``, if the trace says."""
    events = _coordinator_events(fault)
    lines: list[tuple[float, str]] = []
    done_s = None
    if fault.victim is not None:
        lines.append((fault.kill_s, f"[yellow]{fault.victim} killed with SIGKILL[/] ({fault.maps_done}/"
                                    f"{fault.maps_total} map tasks done)"
                                    + (", and started again as a new process" if fault.restarted else "")))
    reexecuted = [e for e in events if e["kind"] == "reexecute"]
    for e in events:
        t_s, kind = e["t_ms"] / 1000, e["kind"]
        if kind == "job_start":
            lines.append((t_s, f"coordinator: job of {e['maps']} map tasks and {e['reduces']} reduce tasks started"))
        elif kind == "worker_dead":
            mine = [r for r in reexecuted if e["worker"] in r.get("reason", "")]
            why = ("came back as a new incarnation" if e["reason"] == "restarted"
                   else f"was silent for {DEMO_TASK_TIMEOUT_MS / 1000:g} s")
            lines.append((t_s, f"coordinator: {e['worker']} {why}, so its earlier life is dead: "
                               f"{e['in_progress_lost']} running task(s) back to idle, and {len(mine)} completed "
                               f"map task(s) to [bold]re-execute[/]: their output lived on the dead worker's disk, "
                               f"and every reduce task needs its region of every map task (paper section 3.3)"))
        elif kind == "reduce_phase":
            lines.append((t_s, "coordinator: every map task completed; reduce tasks handed out"))
        elif kind == "job_done":
            done_s = t_s - t0_s
            lines.append((t_s, f"coordinator: all {len(summary.outcome.committed)} outputs committed, _SUCCESS "
                               f"written ({e['map_executions']} map executions, {e['reexecutions']} re-executions)"))
    console.print("[bold]what happened[/] (seconds since the cluster was started):")
    for t_s, line in sorted(lines, key=lambda x: x[0]):
        console.print(f"  {max(0.0, t_s - t0_s):6.2f} s  {line}")
    return done_s


@click.command()
@click.option("--workers", type=int, default=4, show_default=True,
              help="worker processes (one of them is killed mid-job)")
@click.option("--reduces", type=int, default=8, show_default=True, help="R, the number of reduce tasks")
@click.option("--split-size", type=int, default=DEMO_SPLIT_SIZE_BYTES, show_default=True,
              help="bytes per map task; small files are packed together up to it (0: one task per file)")
@click.option("--keep", is_flag=True, help="keep the output and node logs")
def demo(workers: int, reduces: int, split_size: int, keep: bool) -> None:
    """Inverted index of the Python standard library on a real local cluster,
    with one worker killed mid-job, verified against a sequential run, then
    the same job in the simulator, with a trace-view page to open; then a
    Redis-compatible KV store on Raft, its leader killed mid-stream; then a
    ZooKeeper ensemble on Zab, its leader killed under a lock and an election."""
    console = Console(soft_wrap=True)
    if workers < 2:
        click.echo("synod demo: error: --workers must be >= 2 (one of them is killed)", err=True)
        sys.exit(2)
    if split_size < 0:
        click.echo(f"synod demo: error: --split-size must be >= 0, got {split_size}", err=True)
        sys.exit(2)
    root, files = stdlib_sources()
    sizes = [(str(p), p.stat().st_size) for p in files]
    nsplits = len(plan_splits(sizes, split_size))
    work = Path(tempfile.mkdtemp(prefix="synod-demo-"))
    out = work / "out"
    out.mkdir()
    console.rule("[bold]synod demo: MapReduce inverted index")
    console.print(f"input: {len(files)} .py files of the standard library in {root} "
                  f"({sum(s for _, s in sizes) / 1e6:.1f} MB), packed into {nsplits} map tasks of at most "
                  f"{split_size / 2**20:g} MiB (small files share a task)")
    console.print(f"cluster: 1 coordinator + {workers} worker processes on 127.0.0.1, R = {reduces}; "
                  f"once half the map tasks are done, one worker is killed with SIGKILL and started again")
    console.print(f"node logs: {work / 'run'}")
    job = JobSpec(app="indexer", app_args={}, inputs=tuple(str(p) for p in files), out_dir=str(out),
                  nreduce=reduces, split_size_bytes=split_size, task_timeout_ms=DEMO_TASK_TIMEOUT_MS)
    fault = KillAndRestart(worker_ids(workers), say=lambda m: console.print(f"[yellow]{m}[/]"))
    t0 = time.monotonic()
    # fork_server: each node forked from one process that imported the
    # runtime once, not ~0.1 s of CPU each for `python -m` (this short job
    # on a small machine spent much of its time there; docs/architecture.md)
    summary = run_real_job(job, workers=workers, run_dir=work / "run", progress=True, on_poll=fault,
                           fork_server=True)
    if fault.victim is not None:
        summary = dataclasses.replace(summary, killed=[fault.victim])
    print_summary(console, summary)
    if not summary.done:
        console.print(f"[red]the job did not finish[/]; see the node logs in {work / 'run'}")
        sys.exit(1)
    done_s = explain_real_run(console, fault, t0, summary)
    ok, expected = _verify_and_look_up(console, root, files, out, summary, done_s)
    from synod.cli._demo_sim import run_sim_demo_and_page

    sim_ok = run_sim_demo_and_page(console, job, files, workers=workers, work=work, expected=expected)
    from synod.cli._demo_kv import run_kv_demo

    kv_ok = run_kv_demo(console, work / "kv")
    from synod.cli._demo_zk import run_zk_demo

    zk_ok = run_zk_demo(console, work / "zk")
    if keep:
        console.print(f"kept: {work}")
    else:
        shutil.rmtree(work / "run", ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)
        (work / "mr-out-sequential").unlink(missing_ok=True)
        shutil.rmtree(work / "kv", ignore_errors=True)
        shutil.rmtree(work / "zk", ignore_errors=True)
    sys.exit(0 if ok and sim_ok and kv_ok and zk_ok else 1)


def _verify_and_look_up(console: Console, root: Path, files: list[Path], out: Path,
                        summary: RealJobSummary, done_s: float | None) -> tuple[bool, list[str]]:
    """Check the job's output against a sequential run (timed); print the
    two times and a few lookups. Returns (identical, the sequential lines)."""
    console.print("verifying against a sequential run of the same app ...")
    # Timed from reading the input to its output file on disk, as the lab's
    # mrsequential.go writes mr-out-0: the same work as the job's, in one process.
    t0 = time.perf_counter()
    expected = sorted(run_sequential("indexer", [(str(p), p.read_bytes().decode("utf-8", errors="replace"))
                                                 for p in files]))
    (out.parent / "mr-out-sequential").write_bytes(b"".join(f"{line}\n".encode() for line in expected))
    sequential_s = time.perf_counter() - t0
    got = output_lines(p.read_bytes() for p in sorted(out.glob("mr-out-*")))
    ok = got == expected
    console.print(f"sequential run: {sequential_s:.2f} s; {len(expected)} keys; "
                  + ("[green]identical output[/]" if ok else "[red]OUTPUT DIFFERS[/]"))
    committed = f"committed its output after {done_s:.2f} s and " if done_s is not None else ""
    console.print(f"[bold]time[/]: the job {committed}took {summary.wall_s:.2f} s in all (starting and "
                  f"stopping {len(summary.exit_codes)} processes, one worker killed and its map tasks "
                  f"re-executed) against {sequential_s:.2f} s for the sequential run (one process, no faults, "
                  f"its output written to one file)")
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
    return ok, expected
