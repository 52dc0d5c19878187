"""``synod sim zab``: Zab (synod.zab) under the shared nemesis, checked by
its white-box checker (issue 12 section 1)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from synod.cli.sim_cmd import SEEDS_MAX, _one_seed, _Outcome, _sweep, _system_run_args, _tracer_to

__all__ = ["zab_cmd"]

ZAB_KINDS = ("partition", "kill", "pause", "loss", "skew")   # synod.harness.zab.ZAB_NEMESIS_KINDS
UNSAFE = ("commit-before-quorum", "skip-sync", "reuse-epoch")  # synod.harness.zab.UNSAFE_OPTIONS


@dataclass(slots=True)
class _ZabRunner:
    time_ms: float
    time_text: str
    servers: int
    observers: int
    kind_list: tuple[str, ...]
    kinds: str
    unsafe: str
    snapshot_every: int
    system: str = "zab"

    def describe(self) -> str:
        return (f"{self.servers} servers{f', {self.observers} observers' if self.observers else ''}, nemesis "
                f"{','.join(self.kind_list) or 'none'}, {self.time_text}"
                + (f", snapshot every {self.snapshot_every}" if self.snapshot_every else "")
                + (f", UNSAFE {self.unsafe}" if self.unsafe else ""))

    def replay(self, seed: int, trace_path: str | None = None) -> str:
        flags = f" --observers {self.observers}" if self.observers else ""
        flags += f" --snapshot-every {self.snapshot_every}" if self.snapshot_every else ""
        flags += f" --unsafe {self.unsafe}" if self.unsafe else ""
        flags += f" --trace {trace_path}" if trace_path else ""
        return (f"synod sim zab --seed {seed} --time {self.time_text} --servers {self.servers} "
                f"--nemesis {self.kinds or chr(39) * 2}{flags}")

    def one(self, seed: int, trace_path: str | None, history_path: str | None, html_path: str | None,
            progress: Callable[[float, float], None] | None, *, html_for_failure: bool = True) -> _Outcome:
        from synod.harness.zab import run_zab

        with _tracer_to(trace_path) as tracer:
            r, run = run_zab(seed, tracer=tracer, progress=progress, servers=self.servers, observers=self.observers,
                             kinds=self.kind_list, unsafe=self.unsafe, time_ms=self.time_ms,
                             snapshot_interval_txns=self.snapshot_every)
        summary: dict[str, Any] = {"seed": seed, "verdict": r.verdict, **run.checker.summary(),
                                   "acknowledged": len(run.record.acked), "virtual_s": round(r.virtual_ms / 1000, 3),
                                   "faults": r.faults, "verdicts": {v.checker: v.status for v in r.verdicts}}
        lines = [f"zab sim: seed {seed}, {self.describe()} ({r.virtual_ms / 1000:.1f} s virtual in all)"]
        lines += [f"{v.checker}: {v.status}: {v.summary}" for v in r.verdicts]
        lines.append(f"{summary['delivered']} transactions delivered, {summary['acknowledged']} acknowledged to "
                     f"clients, {summary['epochs']} epochs with a broadcasting leader, "
                     f"{summary['incarnations']} server lives")
        lines.append("faults: " + (", ".join(f"{n} {k}" for k, n in sorted(r.faults.items())) or "none"))
        lines.append(f"verdict: {r.verdict}")
        ok = r.verdict == "ok"
        replay = self.replay(seed, trace_path)
        return _Outcome(seed, ok, 0 if ok else 1, lines, {**summary, "operations": summary["acknowledged"]},
                        replay, {"trace": trace_path} if trace_path else {})


@click.command("zab")
@click.option("--servers", default=3, show_default=True, type=click.IntRange(1, 9), help="Voting servers.")
@click.option("--observers", default=0, show_default=True, type=click.IntRange(0, 9),
              help="Non-voting observers (ZooKeeper 3.3).")
@click.option("--nemesis", "kinds", default="partition,kill,pause,loss", show_default=True,
              help=f"Comma-separated faults, from: {', '.join(ZAB_KINDS)}; '' for none.")
@click.option("--seed", default=1, show_default=True, type=click.IntRange(0, None),
              help="The run's seed (the first, with --seeds).")
@click.option("--seeds", "n_seeds", default=1, show_default=True, type=click.IntRange(1, SEEDS_MAX),
              help="Run this many seeds from --seed; print a table and the failures' replay commands.")
@click.option("--time", "time_text", default="10s", show_default=True, help="Virtual time under faults (e.g. 10s, 500ms).")
@click.option("--snapshot-every", "snapshot_every", default=0, show_default=True, type=click.IntRange(0, None),
              help="Snapshot and compact after this many delivered transactions (0: never); exercises SNAP.")
@click.option("--unsafe", default="", type=click.Choice(("",) + UNSAFE),
              help="Switch on a deliberately unsafe option (the checker must catch it).")
@click.option("--trace", "trace_path", default=None, type=click.Path(dir_okay=False),
              help="Write the run's trace (JSON lines) here; one seed only.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def zab_cmd(servers: int, observers: int, kinds: str, seed: int, n_seeds: int, time_text: str, snapshot_every: int,
            unsafe: str, trace_path: str | None, as_json: bool) -> None:
    """Zab, ZooKeeper's atomic broadcast (Junqueira et al., DSN 2011), under
    faults: clients propose through the leader, the white-box checker
    checks integrity, total order, agreement, primary order and primary
    integrity, and that every acknowledged transaction was delivered.

    Exit status: 0 all ok; 1 a checker failed (the replay command is
    printed); 2 bad arguments."""
    time_ms, kind_list = _system_run_args(time_text, kinds, n_seeds, trace_path, ZAB_KINDS)
    run = _ZabRunner(time_ms, time_text, servers, observers, kind_list, kinds, unsafe, snapshot_every)
    if n_seeds == 1:
        _one_seed(run, seed, time_ms, trace_path, None, None, as_json)
    else:
        _sweep(run, seed, n_seeds, as_json)
