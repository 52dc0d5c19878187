"""``synod sim``: run a system in the simulator with a nemesis and report.

``synod sim raft --nodes 5 --nemesis partition,kill,pause,skew,loss --seed S
--time 60s [--trace FILE] [--workload chaos|figure8]`` prints the safety verdict, the committed entries
and the seed; exit status 1 if a safety property was violated.
"""

from __future__ import annotations

import click

from synod.core.errors import ConfigError

__all__ = ["sim"]

UNSAFE = ("unsafe_skip_fsync", "unsafe_vote_without_log_check", "unsafe_commit_old_term")


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
@click.option("--nemesis", "kinds", default="partition,kill,pause,skew,loss", show_default=True)
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--time", "time_text", default="60s", show_default=True, help="safety phase, e.g. 60s or 500ms")
@click.option("--trace", "trace_path", default=None, type=click.Path(dir_okay=False))
@click.option("--unsafe", default=None, type=click.Choice(UNSAFE), help="switch on a deliberately unsafe option")
@click.option("--workload", default="chaos", show_default=True, type=click.Choice(("chaos", "figure8")),
              help="chaos: the nemesis and a steady client; figure8: short-lived leaders, one entry "
                   "per AppendEntries (the nemesis is not used)")
def raft_cmd(nodes: int, kinds: str, seed: int, time_text: str, trace_path: str | None, unsafe: str | None,
             workload: str) -> None:
    """Raft under a nemesis, checked for the five safety properties."""
    from synod.raft.node import RaftNodeConfig
    from synod.raft.raft import RaftConfig
    from synod.raft.sim import run_chaos, run_figure8_chaos
    from synod.sim import Tracer

    try:
        time_ms = _duration_ms(time_text)
    except ValueError:
        raise click.BadParameter(f"not a duration: {time_text!r}", param_hint="--time") from None
    cfg = RaftNodeConfig()
    if unsafe == "unsafe_skip_fsync":
        cfg = RaftNodeConfig(unsafe_skip_fsync=True)
    elif unsafe is not None:
        cfg = RaftNodeConfig(raft=RaftConfig(**{unsafe: True}))
    kind_list = tuple(k for k in kinds.split(",") if k)
    out = open(trace_path, "w") if trace_path else None  # noqa: SIM115
    try:
        tracer = Tracer(out) if out is not None else None
        try:
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
