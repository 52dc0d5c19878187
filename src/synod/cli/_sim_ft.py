"""``synod sim ft``: VMware FT's primary/backup replication by deterministic
replay in the simulator (issue 15 section 3; the scenario is
:mod:`synod.harness.ft`): a pair running one of synod's RV32IM programs,
a console client, faults one at a time, and the checkers of the paper's
output rule, test-and-set and state equality."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from synod.cli.sim_cmd import SEEDS_MAX, _one_seed, _Outcome, _sweep, _system_run_args, _tracer_to

__all__ = ["ft_cmd"]

FT_KINDS = ("crash-primary", "crash-backup", "partition", "pause", "link")   # synod.harness.ft.FAULT_KINDS
UNSAFE = ("release-output-early", "skip-test-and-set")                       # synod.ft.node.UNSAFE_OPTIONS
PROGRAMS = ("echo", "reads", "primes", "spew", "netecho", "disk", "ticks")   # synod.ft.programs.PROGRAMS


@dataclass(slots=True)
class _FtRunner:
    program: str
    time_ms: float
    time_text: str
    kind_list: tuple[str, ...]
    kinds: str
    unsafe: str
    system: str = "ft"

    def describe(self) -> str:
        return (f"replicas p1, p2 running {self.program}, storage, console; faults "
                f"{','.join(self.kind_list) or 'none'}, {self.time_text}" + (f", UNSAFE {self.unsafe}" if self.unsafe else ""))

    def replay(self, seed: int, trace_path: str | None = None) -> str:
        from synod.harness.ft import replay_command

        return replay_command(seed, program=self.program, time=self.time_text, nemesis=self.kinds, unsafe=self.unsafe,
                              trace=trace_path or "")

    def one(self, seed: int, trace_path: str | None, history_path: str | None, html_path: str | None,
            progress: Callable[[float, float], None] | None, *, html_for_failure: bool = True) -> _Outcome:
        from synod.harness.ft import run_ft

        with _tracer_to(trace_path) as tracer:
            r = run_ft(seed, program=self.program, time_ms=self.time_ms, kinds=self.kind_list, unsafe=self.unsafe,
                       tracer=tracer, progress=progress, replay=self.replay(seed, trace_path))
        ok = all(v.status != "illegal" for v in r.verdicts)
        summary: dict[str, Any] = {"seed": seed, "verdict": "ok" if ok else "illegal", "program": self.program,
                                   "verdicts": {v.checker: v.status for v in r.verdicts},
                                   "virtual_s": round(r.virtual_ms / 1000, 3), "faults": r.faults}
        lines = [f"ft sim: seed {seed}, {self.describe()} ({r.virtual_ms / 1000:.1f} s virtual in all)"]
        lines += [f"{v.checker}: {v.status}: {v.summary}" for v in r.verdicts]
        lines.append("faults: " + (", ".join(f"{n} {k}" for k, n in sorted(r.faults.items())) or "none"))
        bad = [v.checker for v in r.verdicts if v.status == "illegal"]
        lines.append(f"verdict: {summary['verdict']}" + (f" ({', '.join(bad)})" if bad else ""))
        return _Outcome(seed, ok, 0 if ok else 1, lines, summary, self.replay(seed, trace_path),
                        {"trace": trace_path} if trace_path else {})


@click.command("ft")
@click.option("--program", default="echo", show_default=True, type=click.Choice(PROGRAMS),
              help="echo: input back in upper case (compared with a run without faults); reads: a line per read, "
                   "so its output depends on when input arrived; primes: compute-bound; spew: output-heavy; netecho: network "
                   "packets; disk: bare metal, DMA reads racing the program (section 3.5); ticks: bare metal, "
                   "timer interrupts.")
@click.option("--nemesis", "kinds", default=",".join(FT_KINDS), show_default=True,
              help=f"Comma-separated faults, one at a time, from {', '.join(FT_KINDS)}; '' for none.")
@click.option("--seed", default=1, show_default=True, type=click.IntRange(0, None), help="The (first) seed.")
@click.option("--seeds", "n_seeds", default=1, show_default=True, type=click.IntRange(1, SEEDS_MAX),
              help="Seeds to run, from --seed on, with a summary table.")
@click.option("--time", "time_text", default="4s", show_default=True, help="Virtual time under faults.")
@click.option("--unsafe", default="", type=click.Choice(("",) + UNSAFE),
              help="A deliberately unsafe replica (the checkers must catch it): release-output-early (output "
                   "before the backup has the log; use --program reads), skip-test-and-set (go live unasked).")
@click.option("--trace", "trace_path", default=None, type=click.Path(dir_okay=False),
              help="Write the run's trace (JSON lines) here; one seed only.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def ft_cmd(program: str, kinds: str, seed: int, n_seeds: int, time_text: str, unsafe: str, trace_path: str | None,
           as_json: bool) -> None:
    """VMware FT (Scales et al. 2010) in the simulator: a primary/backup
    pair replicating an RV32IM machine by deterministic replay, under
    crashes, logging-channel partitions, pauses and a lossy channel, one
    at a time. Checked: every output seen the same under one index
    (output rule), none lost and every input acknowledged, the output of
    a run without faults (echo, primes), never two live primaries
    (test-and-set), equal state hashes at logged points.

    Exit status: 0 all ok; 1 a checker failed (its replay command is
    printed); 2 bad arguments."""
    time_ms, kind_list = _system_run_args(time_text, kinds, n_seeds, trace_path, FT_KINDS)
    run = _FtRunner(program, time_ms, time_text, kind_list, kinds, unsafe)
    if n_seeds == 1:
        _one_seed(run, seed, time_ms, trace_path, None, None, as_json)
    else:
        _sweep(run, seed, n_seeds, as_json)
