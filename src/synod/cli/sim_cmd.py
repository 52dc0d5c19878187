"""``synod sim``: run a system in the simulator with a nemesis and report.

``synod sim raft --nodes 5 --nemesis partition,kill,pause,skew,loss --seed S
--time 60s [--trace FILE] [--workload chaos|figure8|kv]`` prints the safety verdict, the committed entries
and the seed; exit status 1 if a safety property was violated.

``--workload kv`` runs Raft's key-value machine with ``--clients`` Jepsen-style
clients (``--reads read-index|lease|log``), records their history
(``--history FILE``, JSON lines that ``synod check lin FILE --model kv``
reads) and checks it for linearizability: exit 1 if it is not (the failing
window goes to ``--html FILE``), 3 if the check gave no verdict in time.
"""

from __future__ import annotations

import click

from synod.core.errors import ConfigError

__all__ = ["sim"]

NODE_UNSAFE = ("unsafe_skip_fsync", "unsafe_local_reads", "unsafe_cut_corrupt_wal")
UNSAFE = (*NODE_UNSAFE, "unsafe_vote_without_log_check", "unsafe_commit_old_term")
EXIT_UNKNOWN = 3


def _duration_ms(text: str) -> float:
    t = text.strip().lower()
    for suffix, scale in (("ms", 1.0), ("s", 1000.0), ("m", 60_000.0)):
        if t.endswith(suffix):
            return float(t[: -len(suffix)]) * scale
    return float(t) * 1000.0


@click.group()
def sim() -> None:
    """Simulated runs: one seed, virtual time, injected faults."""


@sim.command("raft")
@click.option("--nodes", default=5, show_default=True, type=click.IntRange(1, 15))
@click.option("--nemesis", "kinds", default="partition,kill,pause,skew,loss,corrupt", show_default=True)
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--time", "time_text", default="60s", show_default=True, help="safety phase, e.g. 60s or 500ms")
@click.option("--trace", "trace_path", default=None, type=click.Path(dir_okay=False))
@click.option("--unsafe", default=None, type=click.Choice(UNSAFE), help="switch on a deliberately unsafe option")
@click.option("--workload", default="chaos", show_default=True, type=click.Choice(("chaos", "figure8", "kv")),
              help="chaos: the nemesis and a steady client; figure8: short-lived leaders, one entry "
                   "per AppendEntries (the nemesis is not used); kv: the nemesis and KV clients whose "
                   "history is checked for linearizability")
@click.option("--clients", default=5, show_default=True, type=click.IntRange(1, 100), help="kv: clients")
@click.option("--reads", default="read-index", show_default=True, type=click.Choice(("read-index", "lease", "log")),
              help="kv: how a get is served")
@click.option("--history", "history_path", default=None, type=click.Path(dir_okay=False),
              help="kv: write the history here (JSON lines)")
@click.option("--html", "html_path", default=None, type=click.Path(dir_okay=False),
              help="kv: where to write the failing window [default: raft-kv-seed-S.lin.html]")
def raft_cmd(nodes: int, kinds: str, seed: int, time_text: str, trace_path: str | None, unsafe: str | None,
             workload: str, clients: int, reads: str, history_path: str | None, html_path: str | None) -> None:
    """Raft under a nemesis, checked for the five safety properties (and,
    with --workload kv, for linearizability)."""
    from synod.raft.node import RaftNodeConfig
    from synod.raft.raft import RaftConfig
    from synod.raft.sim import run_chaos, run_figure8_chaos
    from synod.sim import Tracer

    try:
        time_ms = _duration_ms(time_text)
    except ValueError:
        raise click.BadParameter(f"not a duration: {time_text!r}", param_hint="--time") from None
    if workload != "kv" and (history_path or html_path):
        raise click.UsageError("--history and --html go with --workload kv")
    cfg = RaftNodeConfig()
    if unsafe in NODE_UNSAFE:
        cfg = RaftNodeConfig(**{unsafe: True})
    elif unsafe is not None:
        cfg = RaftNodeConfig(raft=RaftConfig(**{unsafe: True}))
    kind_list = tuple(k for k in kinds.split(",") if k)
    out = open(trace_path, "w") if trace_path else None  # noqa: SIM115
    try:
        tracer = Tracer(out) if out is not None else None
        try:
            if workload == "kv":
                _kv(seed, nodes, clients, time_ms, time_text, kind_list, kinds, reads, cfg, tracer, unsafe,
                    history_path, html_path)
                return
            if workload == "figure8":
                r = run_figure8_chaos(seed, nodes=nodes, time_ms=time_ms, node_config=cfg, tracer=tracer)
            else:
                r = run_chaos(seed, nodes=nodes, time_ms=time_ms, kinds=kind_list, node_config=cfg, tracer=tracer)
        except ConfigError as e:
            raise click.BadParameter(str(e), param_hint="--nemesis") from None
    finally:
        if out is not None:
            out.close()
    verdict = "SAFE" if not r.violations else "VIOLATION"
    faults = "figure8 workload" if workload == "figure8" else f"nemesis {','.join(kind_list) or 'none'}"
    click.echo(f"raft sim: seed {seed}, {nodes} nodes, {faults}, "
               f"{r.virtual_ms / 1000:.1f} s virtual")
    click.echo(f"safety: {verdict}; committed entries: {r.committed}; proposed: {r.proposed}; "
               f"recovered after faults: {'yes' if r.recovered else 'no'}")
    for v in r.violations[:10]:
        click.echo(f"  {v}")
    if r.violations:
        extra = f" --unsafe {unsafe}" if unsafe else ""
        faults = "--workload figure8" if workload == "figure8" else f"--nemesis {kinds}"
        click.echo(f"replay: synod sim raft --nodes {nodes} {faults} --seed {seed} --time {time_text}{extra}")
        raise SystemExit(1)


def _kv(seed: int, nodes: int, clients: int, time_ms: float, time_text: str, kind_list: tuple[str, ...],
        kinds: str, reads: str, cfg: object, tracer: object, unsafe: str | None, history_path: str | None,
        html_path: str | None) -> None:
    from dataclasses import replace

    from synod.check import KV, explain, render_html
    from synod.raft.kv_sim import SNAPSHOT_INTERVAL_ENTRIES, run_kv_linearizability

    cfg = replace(cfg, snapshot_interval_entries=SNAPSHOT_INTERVAL_ENTRIES)  # type: ignore[type-var]
    r = run_kv_linearizability(seed, nodes=nodes, clients=clients, time_ms=time_ms, kinds=kind_list, reads=reads,
                               node_config=cfg, tracer=tracer)  # type: ignore[arg-type]
    if history_path:
        with open(history_path, "w") as f:
            f.write(r.history.jsonl())
    n = r.history.counts()
    click.echo(f"raft sim: seed {seed}, {nodes} nodes, nemesis {','.join(kind_list) or 'none'}, kv workload "
               f"({clients} clients, reads {reads}), {r.virtual_ms / 1000:.1f} s virtual")
    click.echo(f"history: {n['invoke']} operations: {n['ok']} ok, {n['fail']} fail, {n['info']} info"
               + (f"; written to {history_path}" if history_path else ""))
    click.echo(f"safety: {'SAFE' if not r.violations else 'VIOLATION'}; linearizability (kv model): "
               f"{r.verdict} ({r.check.partitions} keys, {r.check.configurations} configurations)")
    for v in r.violations[:10]:
        click.echo(f"  {v}")
    source = f"raft-kv-seed-{seed}"
    if r.verdict == "illegal":
        for line in explain(r.check, KV(), source):
            click.echo(line)
        out = html_path or f"{source}.lin.html"
        with open(out, "w", encoding="utf-8") as f:
            f.write(render_html(r.check, KV(), source))
        click.echo(f"failing window: {out}")
    if r.violations or r.verdict != "ok":
        extra = f" --unsafe {unsafe}" if unsafe else ""
        click.echo(f"replay: synod sim raft --workload kv --nodes {nodes} --clients {clients} --reads {reads} "
                   f"--nemesis {kinds} --seed {seed} --time {time_text}{extra}")
        raise SystemExit(EXIT_UNKNOWN if not r.violations and r.verdict == "unknown" else 1)
