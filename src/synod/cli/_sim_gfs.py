"""``synod sim gfs``: a GFS cell (master, shadows, chunkservers) under the
shared nemesis, with writers, appenders and readers, and section 2.7's
guarantees checked (issue 13 section 4; the scenario is
:mod:`synod.harness.gfs`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from synod.cli.sim_cmd import SEEDS_MAX, _one_seed, _Outcome, _sweep, _system_run_args, _tracer_to

__all__ = ["gfs_cmd"]

GFS_KINDS = ("kill", "partition", "loss", "corrupt")        # synod.harness.gfs.GFS_NEMESIS_KINDS
UNSAFE = ("skip-version-bump", "skip-checksums")            # synod.harness.gfs.UNSAFE_OPTIONS


@dataclass(slots=True)
class _GfsRunner:
    time_ms: float
    time_text: str
    writers: int
    appenders: int
    readers: int
    kind_list: tuple[str, ...]
    kinds: str
    unsafe: str
    system: str = "gfs"

    def describe(self) -> str:
        return (f"{self.writers} writers, {self.appenders} appenders, {self.readers} readers, nemesis "
                f"{','.join(self.kind_list) or 'none'}, {self.time_text}"
                + (f", UNSAFE {self.unsafe}" if self.unsafe else ""))

    def replay(self, seed: int, trace_path: str | None = None) -> str:
        from synod.harness.gfs import replay_command

        return replay_command(seed, writers=self.writers, appenders=self.appenders, readers=self.readers,
                              time=self.time_text, nemesis=self.kinds, unsafe=self.unsafe,
                              trace=trace_path or "")

    def one(self, seed: int, trace_path: str | None, history_path: str | None, html_path: str | None,
            progress: Callable[[float, float], None] | None, *, html_for_failure: bool = True) -> _Outcome:
        from synod.harness.gfs import run_gfs

        with _tracer_to(trace_path) as tracer:
            r = run_gfs(seed, tracer=tracer, progress=progress, writers=self.writers, appenders=self.appenders,
                        readers=self.readers, kinds=self.kind_list, time_ms=self.time_ms, unsafe=self.unsafe,
                        replay=self.replay(seed, trace_path))
        ops = Counter(f"{op.kind} {'ok' if op.ok else 'failed' if op.ok is False else 'unfinished'}"
                      for op in r.scenario.history.ops)
        statuses = {v.checker: v.status for v in r.verdicts}
        summary: dict[str, Any] = {"seed": seed, "verdict": r.verdict, "verdicts": statuses,
                                   "operations": dict(sorted(ops.items())),
                                   "virtual_s": round(r.virtual_ms / 1000, 3), "faults": r.faults}
        lines = [f"gfs sim: seed {seed}, {self.describe()} ({r.virtual_ms / 1000:.1f} s virtual in all)"]
        lines += [f"{v.checker}: {v.status}: {v.summary}" for v in r.verdicts]
        lines.append("client operations (failed: retries ran out, the outcome unknown): "
                     + ", ".join(f"{n} {k}" for k, n in sorted(ops.items())))
        lines.append("faults: " + (", ".join(f"{n} {k}" for k, n in sorted(r.faults.items())) or "none"))
        bad = [v.checker for v in r.verdicts if v.status != "ok"]
        lines.append(f"verdict: {r.verdict}" + (f" ({', '.join(bad)})" if bad else ""))
        ok = r.verdict == "ok"
        files = {"trace": trace_path} if trace_path else {}
        return _Outcome(seed, ok, 0 if ok else 1, lines, summary, self.replay(seed, trace_path), files)


@click.command("gfs")
@click.option("--writers", default=4, show_default=True, type=click.IntRange(1, 64),
              help="Clients that each overwrite their own region of /data/regions again and again.")
@click.option("--appenders", default=3, show_default=True, type=click.IntRange(0, 64),
              help="Clients that record-append to /data/log.")
@click.option("--readers", default=3, show_default=True, type=click.IntRange(0, 64),
              help="Clients that read random regions.")
@click.option("--nemesis", "kinds", default=",".join(GFS_KINDS), show_default=True,
              help=f"Comma-separated faults on the master, shadows and chunkservers, from: {', '.join(GFS_KINDS)}; "
                   "'' for none (chunkserver disks also corrupt reads, tear appends and sync slowly).")
@click.option("--seed", default=1, show_default=True, type=click.IntRange(0, None),
              help="The run's seed (the first, with --seeds).")
@click.option("--seeds", "n_seeds", default=1, show_default=True, type=click.IntRange(1, SEEDS_MAX),
              help="Run this many seeds from --seed; print a table and the failures' replay commands.")
@click.option("--time", "time_text", default="10s", show_default=True,
              help="Virtual time under faults (e.g. 10s, 500ms).")
@click.option("--unsafe", default="", type=click.Choice(("",) + UNSAFE),
              help="Switch on a deliberately unsafe option (the checkers must catch it): skip-version-bump "
                   "(a new lease keeps the chunk version), skip-checksums (reads served unverified).")
@click.option("--trace", "trace_path", default=None, type=click.Path(dir_okay=False),
              help="Write the run's trace (JSON lines) here; one seed only.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def gfs_cmd(writers: int, appenders: int, readers: int, kinds: str, seed: int, n_seeds: int, time_text: str,
            unsafe: str, trace_path: str | None, as_json: bool) -> None:
    """GFS (Ghemawat et al., SOSP 2003) under faults: a master, two shadow
    masters and five chunkservers on two racks; writers overwrite their
    regions, appenders record-append, readers read; checked (section 2.7):
    every read returns one write's data and never a stale replica's, an
    acknowledged write leaves its region defined on every replica, every
    acknowledged record append is whole at its offset on every replica,
    and after the faults every chunk is back at three replicas.

    Exit status: 0 all ok; 1 a checker failed (the replay command is
    printed); 2 bad arguments."""
    time_ms, kind_list = _system_run_args(time_text, kinds, n_seeds, trace_path, GFS_KINDS)
    if writers * 16 * 1024 > 4 * 256 * 1024:
        raise click.BadParameter("at most 64 (their regions fill the file's first four chunks)",
                                 param_hint="--writers")
    run = _GfsRunner(time_ms, time_text, writers, appenders, readers, kind_list, kinds, unsafe)
    if n_seeds == 1:
        _one_seed(run, seed, time_ms, trace_path, None, None, as_json)
    else:
        _sweep(run, seed, n_seeds, as_json)
