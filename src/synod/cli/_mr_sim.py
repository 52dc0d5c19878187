"""The simulated side of ``synod mr run --sim``: run, check determinism, copy
the committed outputs out of the simulator, print the seed and the replay
command."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from rich.console import Console

from synod.mapreduce.constants import SUCCESS_MARKER
from synod.mapreduce.messages import JobSpec
from synod.mapreduce.simjob import SimJobResult, run_sim_job, scripted_crashes, worker_nemesis
from synod.sim import Tracer
from synod.sim.determinism import check_determinism, replay_command

__all__ = ["run_simulated"]


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def run_simulated(console: Console, job: JobSpec, files: list[Path], out: Path, *, workers: int, seed: int,
                  kill_workers: float, partitions: float, crashes: list[tuple[str, float]], trace_path: str | None, determinism_check: bool,
                  argv: list[str]) -> int:
    """Run ``job`` in the simulator; returns the process exit status."""
    inputs = {str(p): p.read_bytes() for p in files}
    replay = replay_command(argv)

    def once(tracer: Tracer | None) -> SimJobResult:
        nemesis = worker_nemesis(kill_workers, partitions) if (kill_workers or partitions) else None
        return run_sim_job(job, inputs, seed=seed, workers=workers, nemesis=nemesis, tracer=tracer,
                           setup=scripted_crashes(crashes) if crashes else None)

    console.print(f"[bold]synod mr --sim[/]: seed {seed}, {workers} workers, {len(files)} inputs")
    if determinism_check:
        divergence = check_determinism(once)
        if divergence is not None:
            console.print(f"[red]NOT deterministic[/] (seed {seed}): {divergence}")
            console.print(f"replay: {replay}")
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
    console.print(f"outputs in {out}" + (f"; trace in {trace_path}" if trace_path else ""))
    console.print(f"replay: {replay}")
    return 0
