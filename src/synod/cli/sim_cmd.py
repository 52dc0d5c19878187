"""``synod sim``: run a system in the simulator with a nemesis and report.

``synod sim raft --nodes 5 --nemesis partition,kill,pause,skew,loss,corrupt
--seed S --time 60s [--trace FILE] [--workload chaos|figure8|kv]`` prints the
safety verdict, what the numbers mean, the faults injected by kind and the
seed; exit status 1 if a safety property was violated. ``--seeds N`` runs
seeds S..S+N-1 and prints a table with a replay command per failing seed;
``--json`` prints one JSON object instead of text. A progress bar of
virtual time goes to stderr when it is a terminal.

``--workload kv`` runs Raft's key-value machine with ``--clients`` Jepsen-style
clients (``--reads read-index|lease|log``), records their history
(``--history FILE``, JSON lines that ``synod check lin FILE --model kv``
reads) and checks it for linearizability: exit 1 if it is not (the failing
window goes to ``--html FILE``; the history is written even without
``--history``, since the report points at its lines), 3 if the check gave no
verdict in time.

``synod sim kv --nodes 5 --nemesis ... --seed S --time 60s [--trace F]
[--history F]`` runs the Redis-compatible store (synod.kv) the same way
through the shared fault runner (synod.harness.runner): Raft safety,
linearizability of the clients' GET/SET/APPEND/INCR and WATCH-MULTI-EXEC cas history, and progress after
the faults stop.

``synod sim memcache [--regions N] [--no-leases] [--no-remote-markers]
[--stale-values] [--compare]`` runs the look-aside cache of "Scaling
Memcache at Facebook" (synod.harness.memcache) and prints checkers (a)
stale sets, (b) herds, (c) read-your-writes across regions, and (d)'s
staleness and hit-rate figures; ``--compare`` runs the same seeds with
every mechanism on and with each off, side by side.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import click

__all__ = ["sim"]

NODE_UNSAFE = ("unsafe_skip_fsync", "unsafe_local_reads", "unsafe_cut_corrupt_wal")
UNSAFE = (*NODE_UNSAFE, "unsafe_vote_without_log_check", "unsafe_commit_old_term")
NEMESIS_KINDS = ("partition", "kill", "pause", "skew", "loss", "corrupt")  # synod.sim.nemesis.NEMESIS_KINDS
EXIT_UNKNOWN = 3
SEEDS_MAX = 100_000


def _duration_ms(text: str) -> float:
    t = text.strip().lower()
    for suffix, scale in (("ms", 1.0), ("s", 1000.0), ("m", 60_000.0)):
        if t.endswith(suffix):
            return float(t[: -len(suffix)]) * scale
    return float(t) * 1000.0


@click.group()
def sim() -> None:
    """Simulated runs: one seed, virtual time, injected faults, checked."""


@dataclass(slots=True)
class _Outcome:
    """One seed's result, in the terms the CLI prints."""

    seed: int
    ok: bool
    exit_code: int
    lines: list[str]
    summary: dict[str, Any]
    replay: str
    files: dict[str, str] = field(default_factory=dict)


@contextmanager
def _progress(enabled: bool, label: str, total: float, unit: str) -> Iterator[Callable[[float], None]]:
    """A rich progress bar on stderr (when it is a terminal and ``enabled``),
    transient; yields ``update(completed)``."""
    if not enabled or not sys.stderr.isatty():
        yield lambda _done: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(),
               TextColumn(f"{{task.completed:.0f}}/{{task.total:.0f}} {unit}"), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done: bar.update(task, completed=done)


@sim.command("raft")
@click.option("--nodes", default=5, show_default=True, type=click.IntRange(1, 15), help="Raft servers in the cluster.")
@click.option("--nemesis", "kinds", default=",".join(NEMESIS_KINDS), show_default=True,
              help="Faults to inject, comma-separated, from: partition (symmetric, one-way, isolate, "
                   "majority/minority, bridge), kill (crash and restart), pause, skew (clock jumps and drift), "
                   "loss (lossy, duplicating links), corrupt (a bit of a synced file flipped for good). "
                   "Empty: none.")
@click.option("--seed", default=1, show_default=True, type=click.IntRange(0, None),
              help="The seed: the same seed replays the same run exactly.")
@click.option("--seeds", "n_seeds", default=1, show_default=True, type=click.IntRange(1, SEEDS_MAX),
              help="Run seeds SEED..SEED+N-1 and print a table; failures get replay commands.")
@click.option("--time", "time_text", default="60s", show_default=True,
              help="Virtual time of the faulty phase (60s, 500ms, 2m); a liveness phase follows.")
@click.option("--trace", "trace_path", default=None, type=click.Path(dir_okay=False),
              help="Write the trace (JSON lines) here; 'synod trace view' draws it. One seed only.")
@click.option("--unsafe", default=None, type=click.Choice(UNSAFE), help="Switch on a deliberately unsafe option.")
@click.option("--workload", default="chaos", show_default=True, type=click.Choice(("chaos", "figure8", "kv")),
              help="chaos: the nemesis and a steady client; figure8: short-lived leaders, one entry "
                   "per AppendEntries (the nemesis is not used); kv: the nemesis and KV clients whose "
                   "history is checked for linearizability.")
@click.option("--clients", default=5, show_default=True, type=click.IntRange(1, 100), help="kv: clients.")
@click.option("--reads", default="read-index", show_default=True, type=click.Choice(("read-index", "lease", "log")),
              help="kv: how a get is served.")
@click.option("--history", "history_path", default=None, type=click.Path(dir_okay=False),
              help="kv: write the history here (JSON lines). One seed only.")
@click.option("--html", "html_path", default=None, type=click.Path(dir_okay=False),
              help="kv: where to write the failing window [default: raft-kv-seed-S.lin.html].")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def raft_cmd(nodes: int, kinds: str, seed: int, n_seeds: int, time_text: str, trace_path: str | None,
             unsafe: str | None, workload: str, clients: int, reads: str, history_path: str | None,
             html_path: str | None, as_json: bool) -> None:
    """Raft under a nemesis, checked for the five safety properties of the
    paper's Figure 3 (and, with --workload kv, for linearizability).

    Exit status: 0 safe (and linearizable); 1 a violation (the replay command
    is printed); 2 bad arguments; 3 kv: the check gave no verdict in time."""
    if workload != "kv" and (history_path or html_path):
        raise click.UsageError("--history and --html go with --workload kv")
    time_ms, kind_list = _run_args(time_text, kinds, n_seeds, trace_path or history_path or html_path)
    run = _Runner(nodes, kind_list, kinds, time_ms, time_text, unsafe, workload, clients, reads)
    if n_seeds == 1:
        _one_seed(run, seed, time_ms, trace_path, history_path, html_path, as_json)
    else:
        _sweep(run, seed, n_seeds, as_json)


def _run_args(time_text: str, kinds: str, n_seeds: int, files: str | None) -> tuple[float, tuple[str, ...]]:
    """--time as ms and --nemesis as kinds, checked; files (--trace,
    --history, --html) only with one seed. BadParameter / UsageError (exit 2)."""
    try:
        time_ms = _duration_ms(time_text)
    except ValueError:
        raise click.BadParameter(f"not a duration: {time_text!r}", param_hint="--time") from None
    if n_seeds > 1 and files:
        raise click.UsageError("--trace, --history and --html go with one seed (replay the one you want)")
    kind_list = tuple(k for k in kinds.split(",") if k)
    unknown = [k for k in kind_list if k not in NEMESIS_KINDS]
    if unknown:
        raise click.BadParameter(f"unknown nemesis {', '.join(unknown)}; choose from {', '.join(NEMESIS_KINDS)}",
                                 param_hint="--nemesis")
    return time_ms, kind_list


def _system_run_args(time_text: str, kinds: str, n_seeds: int, trace_path: str | None,
                     allowed: tuple[str, ...]) -> tuple[float, tuple[str, ...]]:
    """:func:`_run_args` for a system with a nemesis of its own: --time
    positive, --nemesis within ``allowed``. BadParameter (exit 2)."""
    time_ms, _ = _run_args(time_text, "", n_seeds, trace_path)
    if time_ms <= 0:
        raise click.BadParameter(f"must be positive: {time_text!r}", param_hint="--time")
    kind_list = tuple(k for k in kinds.split(",") if k)
    unknown = [k for k in kind_list if k not in allowed]
    if unknown:
        raise click.BadParameter(f"unknown nemesis {', '.join(unknown)}; choose from {', '.join(allowed)}",
                                 param_hint="--nemesis")
    return time_ms, kind_list


def _one_seed(run: Any, seed: int, time_ms: float, trace_path: str | None, history_path: str | None,
              html_path: str | None, as_json: bool) -> None:
    """Run one seed with a progress bar; print its lines (or one JSON
    object) and the replay command if it failed; exit with its status."""
    with _progress(not as_json, f"seed {seed}", time_ms / 1000.0, "virtual s") as update:
        out = run.one(seed, trace_path, history_path, html_path, lambda now, _t: update(min(now, time_ms) / 1000.0))
    if as_json:
        click.echo(json.dumps({**out.summary, "replay": out.replay if not out.ok else None, **out.files}))
    else:
        for line in out.lines:
            click.echo(line)
        if not out.ok:
            click.echo(f"replay: {out.replay}")
    if out.exit_code:
        raise SystemExit(out.exit_code)


def _sweep(run: Any, first: int, n: int, as_json: bool) -> None:
    outcomes: list[_Outcome] = []
    with _progress(not as_json, "seeds", n, "seeds") as update:
        for seed in range(first, first + n):
            outcomes.append(run.one(seed, None, None, None, None, html_for_failure=False))
            update(len(outcomes))
    failed = [o for o in outcomes if not o.ok]
    if as_json:
        click.echo(json.dumps({"seeds": n, "first_seed": first, "failed": len(failed),
                               "runs": [o.summary for o in outcomes],
                               "replays": [o.replay for o in failed]}))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"synod sim {run.system}: seeds {first}..{first + n - 1}, {run.describe()}")
        keys = [k for k in ("verdict", "linearizable", "committed", "proposed", "operations", "recovered", "faults")
                if k in outcomes[0].summary]
        table.add_column("seed", justify="right")
        for k in keys:
            table.add_column(k, justify="right" if k in ("committed", "proposed", "operations", "faults") else "left")
        for o in outcomes:
            s = o.summary
            table.add_row(str(o.seed), *[str(sum(s["faults"].values())) if k == "faults" else str(s[k])
                                         for k in keys])
        Console().print(table)
        click.echo(f"{n} seeds run, {len(failed)} failed")
        for o in failed:
            click.echo(f"  seed {o.seed}: {o.lines[-1] if o.lines else ''}")
            click.echo(f"    replay: {o.replay}")
    if failed:
        raise SystemExit(max(o.exit_code for o in failed))


_FAULT_NAMES = {"crash": "crashes", "pause": "pauses", "partition": "partitions", "clock": "clock faults",
                "link": "link faults", "corrupt_disk": "disk corruptions"}


def _faults_line(faults: dict[str, int]) -> str:
    parts = [f"{faults[k]} {name}" for k, name in _FAULT_NAMES.items() if faults.get(k)]
    return "faults injected: " + (", ".join(parts) if parts else "none")


@dataclass(slots=True)
class _Runner:
    nodes: int
    kind_list: tuple[str, ...]
    kinds: str
    time_ms: float
    time_text: str
    unsafe: str | None
    workload: str
    clients: int
    reads: str
    system: str = "raft"

    def describe(self) -> str:
        if self.workload == "figure8":
            return f"{self.nodes} nodes, figure8 workload, {self.time_text}"
        extra = f", kv ({self.clients} clients, reads {self.reads})" if self.workload == "kv" else ""
        return f"{self.nodes} nodes, nemesis {','.join(self.kind_list) or 'none'}{extra}, {self.time_text}"

    def replay(self, seed: int, trace_path: str | None = None, history_path: str | None = None) -> str:
        extra = f" --unsafe {self.unsafe}" if self.unsafe else ""
        if trace_path:
            extra += f" --trace {trace_path}"
        if history_path:
            extra += f" --history {history_path}"
        if self.workload == "kv":
            return (f"synod sim raft --workload kv --nodes {self.nodes} --clients {self.clients} --reads {self.reads} "
                    f"--nemesis {self.kinds} --seed {seed} --time {self.time_text}{extra}")
        faults = "--workload figure8" if self.workload == "figure8" else f"--nemesis {self.kinds}"
        return f"synod sim raft --nodes {self.nodes} {faults} --seed {seed} --time {self.time_text}{extra}"

    def _config(self) -> Any:
        from synod.raft.node import RaftNodeConfig
        from synod.raft.raft import RaftConfig

        if self.unsafe in NODE_UNSAFE:
            return RaftNodeConfig(**{self.unsafe: True})
        if self.unsafe is not None:
            return RaftNodeConfig(raft=RaftConfig(**{self.unsafe: True}))
        return RaftNodeConfig()

    def one(self, seed: int, trace_path: str | None, history_path: str | None, html_path: str | None,
            progress: Callable[[float, float], None] | None, *, html_for_failure: bool = True) -> _Outcome:
        from synod.sim import Tracer

        out = open(trace_path, "w") if trace_path else None  # noqa: SIM115
        try:
            tracer = Tracer(out) if out is not None else None
            if self.workload == "kv":
                return self._kv(seed, tracer, trace_path, history_path, html_path, progress, html_for_failure)
            from synod.harness.raft import run_chaos, run_figure8_chaos

            if self.workload == "figure8":
                r = run_figure8_chaos(seed, nodes=self.nodes, time_ms=self.time_ms, node_config=self._config(),
                                      tracer=tracer, progress=progress)
            else:
                r = run_chaos(seed, nodes=self.nodes, time_ms=self.time_ms, kinds=self.kind_list,
                              node_config=self._config(), tracer=tracer, progress=progress)
        finally:
            if out is not None:
                out.close()
        verdict = "SAFE" if not r.violations else "VIOLATION"
        lines = [f"raft sim: seed {seed}, {self.describe()} ({r.virtual_ms / 1000:.1f} s virtual in all)",
                 f"safety (Figure 3's five properties): {verdict}; recovered after faults: "
                 f"{'yes' if r.recovered else 'no'} (a new entry committed once faults stopped)",
                 f"committed entries: {r.committed} (log indexes agreed by a majority and applied); "
                 f"proposed: {r.proposed} (commands the test client sent, to any live server: "
                 f"most reach a non-leader and are refused)",
                 _faults_line(r.faults) if self.workload != "figure8" else "faults: the figure8 workload's own "
                 "leader crashes and lossy links"]
        lines += [f"  {v}" for v in r.violations[:10]]
        summary = {"seed": seed, "verdict": verdict, "committed": r.committed, "proposed": r.proposed,
                   "recovered": r.recovered, "virtual_s": round(r.virtual_ms / 1000, 3), "faults": r.faults,
                   "violations": r.violations[:10]}
        ok = not r.violations
        return _Outcome(seed, ok, 0 if ok else 1, lines, summary, self.replay(seed, trace_path),
                        {"trace": trace_path} if trace_path else {})

    def _kv(self, seed: int, tracer: Any, trace_path: str | None, history_path: str | None, html_path: str | None,
            progress: Callable[[float, float], None] | None, html_for_failure: bool) -> _Outcome:
        from dataclasses import replace

        from synod.harness.raft import SNAPSHOT_INTERVAL_ENTRIES, run_kv_linearizability

        cfg = replace(self._config(), snapshot_interval_entries=SNAPSHOT_INTERVAL_ENTRIES)
        r = run_kv_linearizability(seed, nodes=self.nodes, clients=self.clients, time_ms=self.time_ms,
                                   kinds=self.kind_list, reads=self.reads, node_config=cfg, tracer=tracer,
                                   progress=progress)
        source = f"raft-kv-seed-{seed}"
        ok = not r.violations and r.verdict == "ok"
        n = r.history.counts()
        report, files, history_path = _lin_report(source, r.check, r.history, trace_path, history_path, html_path,
                                                  html_for_failure)
        lines = [f"raft sim: seed {seed}, {self.describe()} ({r.virtual_ms / 1000:.1f} s virtual in all)",
                 _history_line(n, history_path),
                 f"safety: {'SAFE' if not r.violations else 'VIOLATION'}; linearizability (kv model): "
                 f"{r.verdict} ({r.check.partitions} keys, {r.check.configurations} configurations searched)",
                 _faults_line(r.faults)]
        lines += [f"  {v}" for v in r.violations[:10]]
        lines += report
        summary = {"seed": seed, "verdict": "SAFE" if not r.violations else "VIOLATION",
                   "linearizable": r.verdict, "operations": n["invoke"], "ok": n["ok"], "fail": n["fail"],
                   "info": n["info"], "virtual_s": round(r.virtual_ms / 1000, 3), "faults": r.faults,
                   "violations": r.violations[:10]}
        code = 0 if ok else (EXIT_UNKNOWN if not r.violations and r.verdict == "unknown" else 1)
        return _Outcome(seed, ok, code, lines, summary, self.replay(seed, trace_path, history_path), files)


def _history_line(n: dict[str, int], history_path: str | None) -> str:
    return (f"history: {n['invoke']} operations: {n['ok']} ok, {n['fail']} fail (did not happen), "
            f"{n['info']} info (may or may not have happened)"
            + (f"; written to {history_path}" if history_path else ""))


def _lin_report(source: str, check: Any, history: Any, trace_path: str | None, history_path: str | None,
                html_path: str | None, html_for_failure: bool) -> tuple[list[str], dict[str, str], str | None]:
    """Write the history (asked for, or needed because the report points at
    its lines) and, for an illegal history, the failing window's page; the
    report's lines, the files written and the history's path."""
    from synod.check import KV, explain, render_html

    files: dict[str, str] = {}
    if trace_path:
        files["trace"] = trace_path
    if history_path is None and check.verdict == "illegal" and html_for_failure:
        history_path = f"{source}.history.jsonl"
    if history_path:
        with open(history_path, "w") as f:
            f.write(history.jsonl())
        files["history"] = history_path
    lines: list[str] = []
    if check.verdict == "illegal" and html_for_failure:
        lines += explain(check, KV(), history_path or source)
        page = html_path or f"{source}.lin.html"
        with open(page, "w", encoding="utf-8") as f:
            f.write(render_html(check, KV(), history_path or source))
        lines.append(f"failing window: {page}")
        files["html"] = page
    return lines, files, history_path


KV_READS = ("read-index", "lease", "unsafe-local")


@sim.command("kv")
@click.option("--nodes", default=5, show_default=True, type=click.IntRange(1, 15), help="KV servers (Raft underneath).")
@click.option("--clients", default=5, show_default=True, type=click.IntRange(1, 100),
              help="Jepsen-style clients sending GET, SET, APPEND, INCR and cas (WATCH/MULTI/EXEC) through any server.")
@click.option("--nemesis", "kinds", default=",".join(NEMESIS_KINDS), show_default=True,
              help=f"Comma-separated fault kinds from {', '.join(NEMESIS_KINDS)} (empty: none).")
@click.option("--seed", default=1, show_default=True, type=click.IntRange(0, None),
              help="The run's seed: the same seed replays the same run exactly.")
@click.option("--seeds", "n_seeds", default=1, show_default=True, type=click.IntRange(1, SEEDS_MAX),
              help="Run seeds SEED..SEED+N-1 and print a table.")
@click.option("--time", "time_text", default="60s", show_default=True,
              help="Virtual time with faults (then the faults stop and the run must make progress again).")
@click.option("--reads", default="read-index", show_default=True, type=click.Choice(KV_READS),
              help="How reads are served; unsafe-local reads local state with no read index (must be caught).")
@click.option("--trace", "trace_path", default=None, type=click.Path(dir_okay=False),
              help="Write the run's trace (JSON lines) here; `synod trace view` draws it.")
@click.option("--history", "history_path", default=None, type=click.Path(dir_okay=False),
              help="Write the clients' history (JSON lines; `synod check lin FILE --model kv` reads it).")
@click.option("--html", "html_path", default=None, type=click.Path(dir_okay=False),
              help="Where the failing window's page goes, if the history is not linearizable.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def kv_cmd(nodes: int, clients: int, kinds: str, seed: int, n_seeds: int, time_text: str, reads: str,
           trace_path: str | None, history_path: str | None, html_path: str | None, as_json: bool) -> None:
    """The Redis-compatible KV store (synod.kv) under a nemesis, checked:
    Raft's safety properties, linearizability of the clients' history (kv
    model), and progress once the faults stop.

    Exit status: 0 all ok; 1 a violation (the replay command is printed);
    2 bad arguments; 3 the linearizability check gave no verdict in time."""
    time_ms, kind_list = _run_args(time_text, kinds, n_seeds, trace_path or history_path or html_path)
    run = _KvRunner(nodes, clients, kind_list, kinds, time_ms, time_text, reads)
    if n_seeds == 1:
        _one_seed(run, seed, time_ms, trace_path, history_path, html_path, as_json)
    else:
        _sweep(run, seed, n_seeds, as_json)


@dataclass(slots=True)
class _KvRunner:
    nodes: int
    clients: int
    kind_list: tuple[str, ...]
    kinds: str
    time_ms: float
    time_text: str
    reads: str
    system: str = "kv"

    def describe(self) -> str:
        return (f"{self.nodes} servers, {self.clients} clients, reads {self.reads}, "
                f"nemesis {','.join(self.kind_list) or 'none'}, {self.time_text}")

    def replay(self, seed: int, trace_path: str | None = None, history_path: str | None = None) -> str:
        extra = (f" --trace {trace_path}" if trace_path else "") + (f" --history {history_path}" if history_path else "")
        return (f"synod sim kv --nodes {self.nodes} --clients {self.clients} --reads {self.reads} "
                f"--nemesis {self.kinds} --seed {seed} --time {self.time_text}{extra}")

    def one(self, seed: int, trace_path: str | None, history_path: str | None, html_path: str | None,
            progress: Callable[[float, float], None] | None, *, html_for_failure: bool = True) -> _Outcome:
        from synod.harness.kv import run_kv
        from synod.sim import Tracer

        out = open(trace_path, "w") if trace_path else None  # noqa: SIM115
        try:
            r = run_kv(seed, tracer=Tracer(out) if out is not None else None, progress=progress, nodes=self.nodes,
                       clients=self.clients, time_ms=self.time_ms, kinds=self.kind_list, reads=self.reads)
        finally:
            if out is not None:
                out.close()
        by = {v.checker: v for v in r.verdicts}
        lin = by["linearizability"]
        history = r.scenario.history
        n = history.counts()
        report, files, history_path = _lin_report(f"kv-seed-{seed}", lin.detail, history, trace_path, history_path,
                                                  html_path, html_for_failure)
        lines = [f"kv sim: seed {seed}, {self.describe()} ({r.virtual_ms / 1000:.1f} s virtual in all)",
                 _history_line(n, history_path)]
        lines += [f"{v.checker}: {v.status}: {v.summary}" for v in r.verdicts]
        lines.append(_faults_line(r.faults))
        lines += report
        summary = {"seed": seed, "verdict": r.verdict, "linearizable": lin.status,
                   "operations": n["invoke"], "ok": n["ok"], "fail": n["fail"], "info": n["info"],
                   "virtual_s": round(r.virtual_ms / 1000, 3), "faults": r.faults,
                   "verdicts": {v.checker: v.status for v in r.verdicts}}
        code = 0 if r.verdict == "ok" else EXIT_UNKNOWN if r.verdict == "unknown" else 1
        return _Outcome(seed, r.verdict == "ok", code, lines, summary, self.replay(seed, trace_path, history_path),
                        files)


# -- synod sim memcache ----------------------------------------------------------------------------

MEMCACHE_KINDS = ("kill", "partition", "loss")  # synod.harness.memcache.MEMCACHE_NEMESIS_KINDS
_SPIKE_WINDOW_MS = 1_000.0  # synod.harness.memcache.SPIKE_WINDOW_MS (imported lazily, as the harness is)
MEMCACHE_CHECKERS = ("stale-set", "stale-fill", "herd", "read-your-writes", "invalidation", "replication")


@sim.command("memcache")
@click.option("--seed", default=1, show_default=True, type=click.IntRange(0, None),
              help="The run's seed: the same seed replays the same run exactly.")
@click.option("--seeds", "n_seeds", default=1, show_default=True, type=click.IntRange(1, SEEDS_MAX),
              help="Run seeds SEED..SEED+N-1 and print a table; failures get replay commands.")
@click.option("--time", "time_text", default="10s", show_default=True,
              help="Virtual time with faults; then 3 s quiescent (writes stop), then the checkers.")
@click.option("--regions", default=1, show_default=True, type=click.IntRange(1, 8),  # memcache REGIONS_MAX
              help="Regions: region 1 the master, the others replicas fed by log shipping (section 5).")
@click.option("--nemesis", "kinds", default=",".join(MEMCACHE_KINDS), show_default=True,
              help=f"Comma-separated fault kinds from {', '.join(MEMCACHE_KINDS)} (empty: none).")
@click.option("--no-leases", "no_leases", is_flag=True, help="Plain get/set instead of leases (3.2.1).")
@click.option("--no-remote-markers", "no_markers", is_flag=True,
              help="Replica-region writes set no remote marker (section 5); needs --regions 2 or more.")
@click.option("--stale-values", "stale_values", is_flag=True,
              help="Invalidate with md I and let waiting readers use the stale value (3.2.1); needs leases.")
@click.option("--routers", is_flag=True,
              help="Web servers and mcsqueal reach the caches through a router per region, with a gutter (3.3).")
@click.option("--no-gutter", "no_gutter", is_flag=True, help="Routers without a gutter pool; needs --routers.")
@click.option("--crash-at-ms", "crash_ms", default=None, type=click.IntRange(1, None),
              help="Also crash the hottest key's cache server then (virtual ms; back 2 s later) and print the "
                   "database load spike around it (the gutter figure).")
@click.option("--compare", is_flag=True,
              help="Run the same seeds with every mechanism on, then with each off, and print a table.")
@click.option("--trace", "trace_path", default=None, type=click.Path(dir_okay=False),
              help="Write the run's trace (JSON lines) here. One seed only.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def memcache_cmd(seed: int, n_seeds: int, time_text: str, regions: int, kinds: str, no_leases: bool,
                 no_markers: bool, stale_values: bool, routers: bool, no_gutter: bool, crash_ms: int | None,
                 compare: bool,
                 trace_path: str | None, as_json: bool) -> None:
    """The look-aside cache of "Scaling Memcache at Facebook" (synod.memcache)
    under faults: web servers, cache servers, a database and mcsqueal per
    region, checked for (a) no stale set, (b) no thundering herd, (c)
    read-your-writes across regions, with (d) the staleness window and hit
    rate as figures. With --compare, also the gutter (3.3) as a number:
    routers on, one cache server crashed mid-run, the database reads in
    the second after over the second before, gutter on and off.

    Exit status: 0 all ok; 1 a checker failed (the replay command is
    printed); 2 bad arguments."""
    time_ms, kind_list = _system_run_args(time_text, kinds, n_seeds, trace_path, MEMCACHE_KINDS)
    if no_markers and regions < 2:
        raise click.UsageError("--no-remote-markers needs --regions 2 or more (markers are for replica regions)")
    if stale_values and no_leases:
        raise click.UsageError("--stale-values is a lease option; it does not go with --no-leases")
    if no_gutter and not routers:
        raise click.UsageError("--no-gutter needs --routers (the gutter is the router's)")
    if crash_ms is not None and not _SPIKE_WINDOW_MS <= crash_ms <= time_ms - _SPIKE_WINDOW_MS:
        raise click.BadParameter(f"must be within {_SPIKE_WINDOW_MS:.0f} .. the run's time - {_SPIKE_WINDOW_MS:.0f}",
                                 param_hint="--crash-at-ms")
    if compare and (no_leases or no_markers or no_gutter or routers or crash_ms or trace_path):
        raise click.UsageError("--compare turns each mechanism off itself; drop --no-leases, --no-remote-markers, "
                               "--routers, --no-gutter, --crash-at-ms and --trace")
    run = _MemcacheRunner(time_ms, time_text, regions, kind_list, kinds, not no_leases, not no_markers, stale_values,
                          routers, not no_gutter, None if crash_ms is None else float(crash_ms))
    if compare:
        _memcache_compare(run, seed, n_seeds, as_json)
    elif n_seeds == 1:
        _one_seed(run, seed, time_ms, trace_path, None, None, as_json)
    else:
        _sweep(run, seed, n_seeds, as_json)


@contextmanager
def _tracer_to(path: str | None) -> Iterator[Any]:
    """A Tracer writing JSON lines to ``path`` (None: no tracer), closed after."""
    if not path:
        yield None
        return
    from synod.sim import Tracer

    with open(path, "w") as f:
        yield Tracer(f)


def _memcache_figures(by: dict[str, Any]) -> dict[str, Any]:
    """The numbers (b) and (d) report, and (c)'s violations, from one run's verdicts."""
    herd, stale = by["herd"].detail, by["staleness"].detail
    ryw = by["read-your-writes"].detail if "read-your-writes" in by else {}
    return {"hot_db_reads_per_invalidation": round(herd["hot_db_reads_per_invalidation"], 3),
            "hot_db_reads_per_invalidation_max": herd["hot_db_reads_per_invalidation_max"],
            "hit_rate": round(stale["hit_rate"], 3), "staleness_ms_max": round(stale["staleness_ms_max"], 1),
            "staleness_ms_p99": round(stale["staleness_ms_p99"], 1), "reads": stale["reads"],
            "writes": stale["writes"], "ryw_violations": ryw.get("violations", 0),
            "master_reads": ryw.get("master_reads", 0),
            "gutter_spike_ratio": round(by["gutter"].detail["spike_ratio"], 2) if "gutter" in by else None}


@dataclass(slots=True)
class _MemcacheRunner:
    time_ms: float
    time_text: str
    regions: int
    kind_list: tuple[str, ...]
    kinds: str
    leases: bool
    remote_markers: bool
    stale_values: bool
    routers: bool = False
    gutter: bool = True
    crash_ms: float | None = None  # the scripted crash the gutter figure measures (--compare only)
    system: str = "memcache"

    def describe(self) -> str:
        on = lambda b: "on" if b else "off"  # noqa: E731
        markers = f", remote markers {on(self.remote_markers)}" if self.regions > 1 else ""
        markers += f", routers (gutter {on(self.gutter)})" if self.routers else ""
        return (f"{self.regions} region{'s' if self.regions > 1 else ''}, leases {on(self.leases)}{markers}"
                f"{', stale values' if self.stale_values else ''}, nemesis {','.join(self.kind_list) or 'none'}, "
                f"{self.time_text}")

    def replay(self, seed: int, trace_path: str | None = None) -> str:
        flags = (" --no-leases" if not self.leases else "") + (" --no-remote-markers" if not self.remote_markers
                                                                else "")
        flags += (" --stale-values" if self.stale_values else "") + (f" --trace {trace_path}" if trace_path else "")
        flags += (" --routers" if self.routers else "") + (" --no-gutter" if not self.gutter else "")
        flags += f" --crash-at-ms {self.crash_ms:.0f}" if self.crash_ms is not None else ""
        return (f"synod sim memcache --seed {seed} --time {self.time_text} --regions {self.regions} "
                f"--nemesis {self.kinds or chr(39) * 2}{flags}")

    def one(self, seed: int, trace_path: str | None, history_path: str | None, html_path: str | None,
            progress: Callable[[float, float], None] | None, *, html_for_failure: bool = True) -> _Outcome:
        from synod.harness.memcache import run_memcache

        with _tracer_to(trace_path) as tracer:
            r = run_memcache(seed, tracer=tracer, progress=progress, replay=self.replay(seed, trace_path),
                             time_ms=self.time_ms, kinds=self.kind_list, regions=self.regions, leases=self.leases,
                             remote_markers=self.remote_markers, stale_values=self.stale_values,
                             **({"routers": True, "gutter": self.gutter} if self.routers else {}),
                             **({"crash_ms": self.crash_ms} if self.crash_ms is not None else {}))
        by = {v.checker: v for v in r.verdicts}
        figures = _memcache_figures(by)
        failed = [v.checker for v in r.verdicts if v.status != "ok"]
        names = {"stale-set": "(a)", "stale-fill": "(a')", "herd": "(b)", "read-your-writes": "(c)",
                 "staleness": "(d)"}
        lines = [f"memcache sim: seed {seed}, {self.describe()} ({r.virtual_ms / 1000:.1f} s virtual in all)"]
        lines += [f"{v.checker}{' ' + names[v.checker] if v.checker in names else ''}: {v.status}: {v.summary}"
                  for v in r.verdicts]
        lines.append(f"figures: {figures['hot_db_reads_per_invalidation']:.2f} database reads per hot-key "
                     f"invalidation (worst {figures['hot_db_reads_per_invalidation_max']}); hit rate "
                     f"{figures['hit_rate']:.2f}; staleness window max {figures['staleness_ms_max']:.0f} ms, p99 "
                     f"{figures['staleness_ms_p99']:.0f} ms")
        partitions = by["invalidation"].detail.get("partition_faults", {})
        lines.append(_faults_line({**r.faults, "partition": r.faults.get("partition", 0) + partitions.get("partition", 0)}))
        lines.append(f"verdict: {r.verdict}" + (f" ({', '.join(failed)})" if failed else ""))
        summary = {"seed": seed, "verdict": r.verdict, "operations": figures["reads"] + figures["writes"],
                   "virtual_s": round(r.virtual_ms / 1000, 3), "faults": r.faults,
                   "verdicts": {v.checker: v.status for v in r.verdicts}, **figures}
        ok = r.verdict == "ok"
        return _Outcome(seed, ok, 0 if ok else 1, lines, summary, r.replay,
                        {"trace": trace_path} if trace_path else {})


def _memcache_compare(base: _MemcacheRunner, first: int, n: int, as_json: bool) -> None:
    """The same seeds with every mechanism on (``base``), then leases off,
    then (with regions) remote markers off: per configuration, the seeds
    each checker failed and the figures' means."""
    from dataclasses import replace

    configs = [("all on", base), ("leases off", replace(base, leases=False, stale_values=False))]
    if base.regions > 1:
        configs.append(("remote markers off", replace(base, remote_markers=False)))
    if base.time_ms >= 2 * _SPIKE_WINDOW_MS:  # the gutter (3.3): a cache server crashed mid-run, through routers
        # The crash alone (no nemesis, whose crashes would blur the figure), the cache at its warmest.
        crash = replace(base, routers=True, crash_ms=base.time_ms - _SPIKE_WINDOW_MS, kind_list=(), kinds="")
        configs += [("one crash, gutter on", crash), ("one crash, gutter off", replace(crash, gutter=False))]
    rows = []
    with _progress(not as_json, "seeds", n * len(configs), "runs") as update:
        for name, run in configs:
            outs = []
            for seed in range(first, first + n):
                outs.append(run.one(seed, None, None, None, None))
                update(len(rows) * n + len(outs))
            rows.append(_compare_row(name, outs))
    if as_json:
        click.echo(json.dumps({"seeds": n, "first_seed": first, "describe": base.describe(), "configs": rows}))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"synod sim memcache --compare: seeds {first}..{first + n - 1}, {base.describe()}")
    cols = ("config", "seeds failed", "(a) stale-set", "(a') stale-fill", "(b) herd", "(c) ryw",
            "db reads/inv", "hit rate", "stale ms", "ryw violations", "gutter: db spike")
    table.caption = ("checker columns: seeds failed (first failing seed); db reads/inv: database reads per "
                     "hot-key invalidation (mean; worst); stale ms: staleness window max (mean; worst); gutter: "
                     "database reads in the second after a cache server's crash over the second before (mean; "
                     "worst)")
    for c in cols:
        table.add_column(c, justify="left" if c == "config" else "right")
    for r in rows:
        table.add_row(r["config"], str(r["failed"]), *(f"{r['failing'][c]} ({r['first_failing'][c] or '-'})"
                                                       for c in MEMCACHE_CHECKERS[:4]),
                      f"{r['hot_db_reads_per_invalidation']:.2f}; {r['hot_db_reads_per_invalidation_max']}",
                      f"{r['hit_rate']:.2f}", f"{r['staleness_ms_max']:.0f}; {r['staleness_ms_worst']:.0f}",
                      str(r["ryw_violations"]),
                      "-" if r["gutter_spike_ratio"] is None
                      else f"x{r['gutter_spike_ratio']:.1f}; x{r['gutter_spike_ratio_max']:.1f}")
    Console(width=200).print(table)


def _compare_row(name: str, outs: list[_Outcome]) -> dict[str, Any]:
    """One configuration's line of the comparison."""
    n = len(outs)
    mean = lambda k: sum(o.summary[k] for o in outs) / n  # noqa: E731
    failing = {c: [o.seed for o in outs if o.summary["verdicts"].get(c, "ok") != "ok"] for c in MEMCACHE_CHECKERS}
    return {"config": name, "failed": sum(1 for o in outs if not o.ok),
            "failing": {c: len(s) for c, s in failing.items()},
            "first_failing": {c: (s[0] if s else None) for c, s in failing.items()},
            "hot_db_reads_per_invalidation": mean("hot_db_reads_per_invalidation"),
            "hot_db_reads_per_invalidation_max": max(o.summary["hot_db_reads_per_invalidation_max"] for o in outs),
            "hit_rate": mean("hit_rate"), "staleness_ms_max": mean("staleness_ms_max"),
            "staleness_ms_worst": max(o.summary["staleness_ms_max"] for o in outs),
            "ryw_violations": sum(o.summary["ryw_violations"] for o in outs),
            "gutter_spike_ratio": None if outs[0].summary["gutter_spike_ratio"] is None else mean("gutter_spike_ratio"),
            "gutter_spike_ratio_max": max((o.summary["gutter_spike_ratio"] or 0.0) for o in outs),
            "replays": [o.replay for o in outs if not o.ok][:3]}


def _add_commands() -> None:
    """Systems whose command lives in a module of its own (imported here,
    once this module is whole: it imports the helpers above)."""
    from synod.cli._sim_btc import btc_cmd
    from synod.cli._sim_ft import ft_cmd
    from synod.cli._sim_gfs import gfs_cmd
    from synod.cli._sim_zab import zab_cmd
    from synod.cli._sim_zk import zk_cmd

    sim.add_command(btc_cmd)
    sim.add_command(ft_cmd)
    sim.add_command(gfs_cmd)
    sim.add_command(zab_cmd)
    sim.add_command(zk_cmd)


_add_commands()
