"""The simulated side of ``synod mr run --sim``: run, check determinism, copy
the committed outputs out of the simulator, print the seed and the replay
command."""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from synod.harness.mapreduce import SimJobResult, run_sim_job, scripted_crashes, worker_nemesis
from synod.mapreduce.constants import SUCCESS_MARKER
from synod.mapreduce.messages import JobSpec
from synod.mapreduce.simjob import worker_ids
from synod.sim import Tracer
from synod.sim.determinism import check_determinism, replay_command
from synod.sim.nemesis import Nemesis

__all__ = ["run_simulated"]


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


KILL_INTERVAL_MS = 250.0  # how often the --kill-workers nemesis draws
GFS_CHUNK_BYTES = 64 * 1024 * 1024   # --hosts: GFS's chunk size (2.5)


def kill_nemesis(kill_workers: float, partitions: float, workers: int,
                 chunkservers: tuple[str, ...] = ()) -> Nemesis | None:
    """The nemesis of ``--kill-workers P --partitions Q``: each worker (and
    each of ``chunkservers``, the GFS cell's of ``--hosts``) is killed with
    probability P per virtual second (restarted 1.5 s later), so a
    20-worker job with P = 0.05 loses about one worker a second; the
    nemesis draws every 250 ms whether one node dies, with the probability
    that at least one of them would. ``--partitions`` keeps its meaning (a
    3 s partition with probability Q every 0.5 s, among the same nodes)."""
    if not (kill_workers or partitions):
        return None
    per_tick_s = KILL_INTERVAL_MS / 1000.0
    targets = (*worker_ids(workers), *chunkservers)
    crash_probability = 1.0 - (1.0 - kill_workers) ** (len(targets) * per_tick_s)
    partition_probability = 1.0 - (1.0 - partitions) ** (per_tick_s / 0.5)  # the same rate as every 0.5 s
    return dataclasses.replace(worker_nemesis(crash_probability, partition_probability), interval_ms=KILL_INTERVAL_MS,
                               targets=targets if chunkservers else ())


def run_simulated(console: Console, job: JobSpec, files: list[Path], out: Path, *, workers: int, seed: int,
                  kill_workers: float, partitions: float, crashes: list[tuple[str, float]], trace_path: str | None,
                  determinism_check: bool,
                  argv: list[str], report: Callable[[dict[str, Any]], None] | None = None,
                  out_shown: Path | None = None, hosts: int = 0) -> int:
    """Run ``job`` in the simulator; returns the process exit status.
    ``report``: called with the ``--json`` object (else nothing is printed
    on stdout but the console's lines); ``out_shown``: the output directory
    to name (``out`` is where this run writes, a temp dir under --force);
    ``hosts``: the input and output in a simulated GFS cell of that many
    chunkservers, 64 MB chunks, with locality (section 3.4; 0: the
    simulator's shared file system)."""
    t0 = time.perf_counter()
    out_shown = out_shown or out
    inputs = {str(p): p.read_bytes() for p in files}
    replay = replay_command(argv)

    cell = None
    if hosts:
        from synod.harness.gfs import GfsCell

        cell = GfsCell(chunkservers=hosts, chunk_size_bytes=GFS_CHUNK_BYTES)

    def once(tracer: Tracer | None) -> SimJobResult:
        nemesis = kill_nemesis(kill_workers, partitions, workers, cell.chunkserver_ids if cell is not None else ())
        return run_sim_job(job, inputs, seed=seed, workers=workers, nemesis=nemesis, tracer=tracer,
                           setup=scripted_crashes(crashes) if crashes else None, gfs=cell)

    console.print(f"[bold]synod mr --sim[/]: seed {seed}, {workers} workers, {len(files)} inputs")
    if determinism_check:
        divergence = check_determinism(once)
        if divergence is not None:
            console.print(f"[red]NOT deterministic[/] (seed {seed}): {divergence}")
            console.print(f"replay: {replay}")
            if report is not None:
                report({"mode": "sim", "verdict": "NOT_DETERMINISTIC", "seed": seed, "divergence": str(divergence),
                        "replay": replay})
            return 1
        console.print(f"deterministic: seed {seed} gave the same trace twice")
    if trace_path:
        with open(trace_path, "w", encoding="utf-8") as f:
            result = once(Tracer(f))
    else:
        result = once(None)
    out.mkdir(parents=True, exist_ok=True)
    for name, data in result.outputs.items():
        _write_atomically(out / name, data)
    if report is not None:
        st = result.status
        report({"mode": "sim", "verdict": result.outcome.verdict, "seed": seed,
                "outputs": list(result.outcome.committed), "success_marker": result.outcome.marker,
                "virtual_s": round(result.virtual_ms / 1000, 3), "wall_s": round(time.perf_counter() - t0, 3),
                "input_bytes": st.input_bytes, "map_tasks": st.maps_total, "map_executions": st.map_executions,
                "reduce_tasks": st.reduces_total, "reduce_executions": st.reduce_executions,
                "reexecutions": st.reexecutions, "crashes": result.crashes,
                "worker_deaths": [{"worker": w, "reason": why} for w, why in st.worker_deaths],
                "local_map_executions": st.local_map_executions,
                "placeable_map_executions": st.placeable_map_executions,
                "determinism_checked": determinism_check, "trace": trace_path, "replay": replay})
    if not result.outcome.succeeded:
        console.print(f"[red]FAILED[/] (seed {seed}): the job did not finish; outputs "
                      f"{result.outcome.describe_outputs()}; replay: {replay}")
        return 1
    assert result.marker is not None
    _write_atomically(out / SUCCESS_MARKER, result.marker)  # last, as the coordinator wrote it
    st = result.status
    console.print(f"seed {seed}: SUCCEEDED at virtual {result.virtual_ms / 1000:.1f} s; "
                  f"{st.maps_total} map tasks ({st.map_executions} executions), "
                  f"{st.reduces_total} reduce tasks ({st.reduce_executions} executions), "
                  f"{st.reexecutions} re-executions, {result.crashes} worker crashes, "
                  f"{len(st.worker_deaths)} worker deaths seen by the coordinator")
    if st.placeable_map_executions:
        console.print(f"map executions on a host holding their input (3.4): {st.local_map_executions} of "
                      f"{st.placeable_map_executions} "
                      f"({st.local_map_executions / st.placeable_map_executions:.0%}; a simulated GFS cell "
                      f"of {hosts} chunkservers)")
    console.print(f"outputs in {out_shown}" + (f"; trace in {trace_path}" if trace_path else ""))
    console.print(f"replay: {replay}")
    return 0
