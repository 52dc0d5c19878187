"""``synod sim zk``: the ZooKeeper service (synod.zk on synod.zab) under the
shared nemesis, with simulated clients and its guarantees checked (issue 12
section 3; the scenario is :mod:`synod.harness.zk`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from synod.cli.sim_cmd import SEEDS_MAX, _one_seed, _Outcome, _sweep, _system_run_args, _tracer_to

__all__ = ["zk_cmd"]

ZK_KINDS = ("partition", "kill", "pause", "loss", "skew")      # synod.harness.zk.ZK_NEMESIS_KINDS
UNSAFE = ("commit-before-quorum", "skip-sync", "reuse-epoch")  # synod.harness.zab.UNSAFE_OPTIONS
BROKEN = ("stale-reads", "lock-no-wait", "drop-notification")  # synod.harness.zk.BROKEN_MODES
WATCHERS = 2                                                   # synod.harness.zk.WATCHERS


@dataclass(slots=True)
class _ZkRunner:
    time_ms: float
    time_text: str
    servers: int
    clients: int
    kind_list: tuple[str, ...]
    kinds: str
    unsafe: str
    broken: str
    watchers: int = WATCHERS
    system: str = "zk"

    def describe(self) -> str:
        return (f"{self.servers} servers, {self.clients} clients ({self.watchers} watching), nemesis "
                f"{','.join(self.kind_list) or 'none'}, "
                f"{self.time_text}" + (f", UNSAFE {self.unsafe}" if self.unsafe else "")
                + (f", BROKEN {self.broken}" if self.broken else ""))

    def replay(self, seed: int, trace_path: str | None = None, history_path: str | None = None) -> str:
        flags = f" --watchers {self.watchers}" if self.watchers != WATCHERS else ""
        flags += f" --unsafe {self.unsafe}" if self.unsafe else ""
        flags += f" --broken {self.broken}" if self.broken else ""
        flags += f" --trace {trace_path}" if trace_path else ""
        flags += f" --history {history_path}" if history_path else ""
        return (f"synod sim zk --seed {seed} --time {self.time_text} --servers {self.servers} "
                f"--clients {self.clients} --nemesis {self.kinds or chr(39) * 2}{flags}")

    def one(self, seed: int, trace_path: str | None, history_path: str | None, html_path: str | None,
            progress: Callable[[float, float], None] | None, *, html_for_failure: bool = True) -> _Outcome:
        from synod.harness.zk import run_zk

        with _tracer_to(trace_path) as tracer:
            r, run = run_zk(seed, tracer=tracer, progress=progress, servers=self.servers, clients=self.clients,
                            kinds=self.kind_list, unsafe=self.unsafe, broken=self.broken, time_ms=self.time_ms,
                            watchers=self.watchers)
        if history_path:
            Path(history_path).write_text(run.shared.history.jsonl())
        statuses = {v.checker: v.status for v in r.verdicts}
        counts = run.shared.counts
        operations = sum(counts.get(k, 0) for k in ("cas ok", "cas failed", "cas unknown", "sync reads",
                                                     "plain reads", "ephemerals", "sequentials", "locks held"))
        summary: dict[str, Any] = {"seed": seed, "verdict": r.verdict,
                                   "linearizable": statuses.get("linearizability", "?"),
                                   "sequential": statuses.get("sequential", "?"),
                                   "ephemerals": statuses.get("ephemerals", "?"), "lock": statuses.get("lock", "?"),
                                   "watches": statuses.get("watches", "?"),
                                   "operations": operations,
                                   "counts": dict(sorted(counts.items())), **run.checker.summary(),
                                   "virtual_s": round(r.virtual_ms / 1000, 3), "faults": r.faults,
                                   "verdicts": statuses}
        lines = [f"zk sim: seed {seed}, {self.describe()} ({r.virtual_ms / 1000:.1f} s virtual in all)"]
        lines += [f"{v.checker}: {v.status}: {v.summary}" for v in r.verdicts]
        lines.append("client operations: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
        lines.append(f"{summary['delivered']} transactions delivered, {summary['epochs']} epochs with a "
                     f"broadcasting leader, {summary['incarnations']} server lives")
        lines.append("faults: " + (", ".join(f"{n} {k}" for k, n in sorted(r.faults.items())) or "none"))
        if history_path:
            lines.append(f"history: {history_path}")
        bad = [v.checker for v in r.verdicts if v.status != "ok"]
        lines.append(f"verdict: {r.verdict}" + (f" ({', '.join(bad)})" if bad else ""))
        ok = r.verdict == "ok"
        files = {k: v for k, v in (("trace", trace_path), ("history", history_path)) if v}
        return _Outcome(seed, ok, 0 if ok else 1, lines, summary, self.replay(seed, trace_path, history_path), files)


@click.command("zk")
@click.option("--servers", default=3, show_default=True, type=click.IntRange(1, 9), help="ZooKeeper servers.")
@click.option("--clients", default=5, show_default=True, type=click.IntRange(1, 64), help="Simulated clients.")
@click.option("--watchers", default=WATCHERS, show_default=True, type=click.IntRange(0, 64),
              help="Of the clients, how many also keep persistent watches (and set one-shot ones) and check "
                   "every notification.")
@click.option("--nemesis", "kinds", default=",".join(ZK_KINDS), show_default=True,
              help=f"Comma-separated faults on the servers, from: {', '.join(ZK_KINDS)}; '' for none.")
@click.option("--seed", default=1, show_default=True, type=click.IntRange(0, None),
              help="The run's seed (the first, with --seeds).")
@click.option("--seeds", "n_seeds", default=1, show_default=True, type=click.IntRange(1, SEEDS_MAX),
              help="Run this many seeds from --seed; print a table and the failures' replay commands.")
@click.option("--time", "time_text", default="10s", show_default=True, help="Virtual time under faults (e.g. 10s, 500ms).")
@click.option("--unsafe", default="", type=click.Choice(("",) + UNSAFE),
              help="Switch on a deliberately unsafe Zab option (the checkers must catch it).")
@click.option("--broken", default="", type=click.Choice(("",) + BROKEN),
              help="Deliberately broken: stale-reads (servers read from an older tree), lock-no-wait (clients "
                   "take the lock without being lowest), drop-notification (servers drop one watch "
                   "notification in 40).")
@click.option("--trace", "trace_path", default=None, type=click.Path(dir_okay=False),
              help="Write the run's trace (JSON lines) here; one seed only.")
@click.option("--history", "history_path", default=None, type=click.Path(dir_okay=False),
              help="Write the clients' linearizable history (JSON lines, for synod check lin) here; one seed only.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def zk_cmd(servers: int, clients: int, watchers: int, kinds: str, seed: int, n_seeds: int, time_text: str,
           unsafe: str, broken: str, trace_path: str | None, history_path: str | None, as_json: bool) -> None:
    """ZooKeeper (Hunt et al., USENIX ATC 2010) on Zab under faults:
    simulated clients do versioned setData (a cas per znode), sync+reads,
    plain reads, ephemeral and sequential creates, kazoo's lock recipe,
    close sessions and die; watchers keep persistent and
    persistent-recursive watches (addWatch) and set one-shot ones;
    checked: Zab's properties, writes and sync+reads linearizable per
    znode, plain reads sequentially consistent in FIFO client order,
    sequential paths distinct, the lock never held by two clients at
    once, every ephemeral of a closed or expired session deleted on every
    server at one zxid, and on every watcher's connection exactly the
    watched changes, in zxid order, each before the replies after it.

    Exit status: 0 all ok; 1 a checker failed (the replay command is
    printed); 2 bad arguments."""
    time_ms, kind_list = _system_run_args(time_text, kinds, n_seeds, trace_path, ZK_KINDS)
    if history_path and n_seeds > 1:
        raise click.BadParameter("one seed only", param_hint="--history")
    if watchers > clients:
        raise click.BadParameter(f"at most --clients ({clients})", param_hint="--watchers")
    run = _ZkRunner(time_ms, time_text, servers, clients, kind_list, kinds, unsafe, broken, watchers)
    if n_seeds == 1:
        _one_seed(run, seed, time_ms, trace_path, history_path, None, as_json)
    else:
        _sweep(run, seed, n_seeds, as_json)
