"""The simulated half of ``synod demo``: the same job in the simulator, with
the same fault (the worker holding the most map output is crashed once half
the map tasks are done, and started again), its trace written and drawn as
a trace-view page."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import msgspec
from rich.console import Console

from synod.harness.mapreduce import SimJobResult, run_sim_job
from synod.mapreduce.coordinator import Coordinator
from synod.mapreduce.messages import JobSpec
from synod.mapreduce.reference import output_lines
from synod.mapreduce.simjob import COORDINATOR_ID, SIM_OUT_DIR, worker_ids
from synod.sim import Simulator, Tracer
from synod.viz import load_model, render_html

__all__ = ["SimDemo", "run_sim_demo", "run_sim_demo_and_page"]

SIM_SEED = 1
SIM_COMPUTE_MS_PER_MB = 200.0   # virtual compute time per MB of input: a map task of 1 MB takes 0.2 s
WATCH_INTERVAL_MS = 10.0        # how often the scripted fault looks at the coordinator's progress
RESTART_DELAY_MS = 300.0        # the crashed worker's process starts again after this


@dataclass(slots=True, kw_only=True)
class SimDemo:
    """What the simulated run did: ``victim`` crashed at virtual
    ``crash_ms`` holding ``victim_outputs`` map outputs; ``trace_lines``
    written to ``trace_path``."""

    result: SimJobResult | None  # None until the run is over
    victim: str | None
    crash_ms: float
    victim_outputs: int
    trace_path: Path
    trace_lines: int


def run_sim_demo(job: JobSpec, files: list[Path], *, workers: int, trace_path: Path) -> SimDemo:
    """Run ``job`` over ``files`` (read into the simulator's file system at
    the same paths) with ``workers`` simulated workers and the demo's fault;
    the trace goes to ``trace_path`` (JSON lines)."""
    sim_job = msgspec.structs.replace(job, out_dir=SIM_OUT_DIR, sim_compute_ms_per_mb=SIM_COMPUTE_MS_PER_MB)
    inputs = {str(p): p.read_bytes() for p in files}
    ids = worker_ids(workers)
    out = SimDemo(result=None, victim=None, crash_ms=0.0, victim_outputs=0, trace_path=trace_path, trace_lines=0)

    def watch(sim: Simulator) -> None:
        coordinator = sim.hosts[COORDINATOR_ID].node
        assert isinstance(coordinator, Coordinator)
        st = coordinator.status()
        if st.maps_total and st.maps_done >= st.maps_total / 2:
            held = st.map_outputs_by_worker
            victim = max(reversed(ids), key=lambda w: held.get(w, 0))
            out.victim, out.crash_ms, out.victim_outputs = victim, sim.now_ms, held.get(victim, 0)
            sim.crash(victim)
            sim.call_after(RESTART_DELAY_MS, sim.restart, victim)
            return
        sim.call_after(WATCH_INTERVAL_MS, watch, sim)

    def setup(sim: Simulator) -> None:
        sim.call_after(WATCH_INTERVAL_MS, watch, sim)

    with open(trace_path, "w", encoding="utf-8") as f:
        tracer = Tracer(f)
        out.result = run_sim_job(sim_job, inputs, seed=SIM_SEED, workers=workers, tracer=tracer, setup=setup)
    out.trace_lines = tracer.count
    return out


def run_sim_demo_and_page(console: Console, job: JobSpec, files: list[Path], *, workers: int, work: Path,
                          expected: list[str]) -> bool:
    """Run the simulated half of the demo, check its output against
    ``expected`` (the sequential lines), write the trace and its trace-view
    page into ``work``, and say what happened. True if the output matched."""
    console.rule("[bold]the same job in the simulator")
    trace_path, page_path = work / "sim-trace.jsonl", work / "sim-trace.html"
    t0 = time.perf_counter()
    sd = run_sim_demo(job, files, workers=workers, trace_path=trace_path)
    real_s = time.perf_counter() - t0
    result = sd.result
    assert result is not None
    st = result.status
    ok = result.outcome.succeeded and output_lines(result.outputs[n] for n in sorted(result.outputs)) == expected
    console.print(f"seed {SIM_SEED}: one process, virtual time, {workers} simulated workers, map compute "
                  f"charged at {SIM_COMPUTE_MS_PER_MB:g} ms per MB; {real_s:.1f} s of real time")
    if sd.victim is not None:
        console.print(f"at virtual {sd.crash_ms / 1000:.2f} s, with half the map tasks done, {sd.victim} crashed "
                      f"holding the output of {sd.victim_outputs} map tasks, and started again "
                      f"{RESTART_DELAY_MS / 1000:g} s later with an empty disk")
    console.print(f"{'[green]SUCCEEDED[/]' if result.outcome.succeeded else '[red]FAILED[/]'} at virtual "
                  f"{result.commit_ms / 1000:.2f} s: {st.maps_total} map tasks ({st.map_executions} executions, "
                  f"{st.reexecutions} re-executions of lost output), {st.reduces_total} reduce tasks; "
                  + ("[green]output identical to the sequential run[/]" if ok else "[red]OUTPUT DIFFERS[/]"))
    model = load_model([trace_path])
    page = render_html(model, title=f"synod demo: MapReduce indexer in the simulator, seed {SIM_SEED}",
                       source=str(trace_path))
    page_path.write_text(page, encoding="utf-8")
    console.print(f"trace: {trace_path} ({sd.trace_lines} lines)")
    console.print(f"[bold]trace view[/]: {page_path} ({len(page) // 1024} KiB) - open it in a browser: "
                  f"one lane per node, an arrow per message; the crash, the restart and the "
                  f"coordinator's 'worker_dead' and 'reexecute' events are marked on the lanes")
    return ok
