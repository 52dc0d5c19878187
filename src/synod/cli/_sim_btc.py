"""``synod sim btc``: Bitcoin in the simulator (issue 14 section 3; the
scenarios are :mod:`synod.harness.bitcoin`).

Three modes: the default runs full nodes and miners under the shared
nemesis with a wallet and checks fork resolution (convergence within a
bound, no valid block rejected, no double spend in a chain, acknowledged
transactions kept; deepest reorg beside longest partition);
``--attack double-spend`` measures the whitepaper's section 11 race
beside both formulas; ``--attack selfish`` measures Eyal and Sirer's
relative revenue beside theirs."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from synod.cli.sim_cmd import SEEDS_MAX, _one_seed, _Outcome, _progress, _sweep, _system_run_args, _tracer_to

__all__ = ["btc_cmd"]

BTC_KINDS = ("kill", "partition", "pause", "loss", "skew", "corrupt")   # synod.harness.bitcoin.BTC_NEMESIS_KINDS
UNSAFE = ("never-reorg", "drop-disconnected-txs")                       # synod.harness.bitcoin.UNSAFE_OPTIONS
TABLE_Q = (0.1, 0.3)
TABLE_Z = (1, 2, 3, 5)
SWEEP_ALPHA = (0.1, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45)
SWEEP_GAMMA = (0.0, 0.5)


@dataclass(slots=True)
class _BtcRunner:
    time_ms: float
    time_text: str
    kind_list: tuple[str, ...]
    kinds: str
    unsafe: str
    system: str = "btc"

    def describe(self) -> str:
        return (f"4 full nodes, 3 miners (0.45/0.35/0.2), a wallet, nemesis {','.join(self.kind_list) or 'none'}, "
                f"{self.time_text}" + (f", UNSAFE {self.unsafe}" if self.unsafe else ""))

    def replay(self, seed: int, trace_path: str | None = None) -> str:
        from synod.harness.bitcoin import replay_command

        return replay_command(seed, time=self.time_text, nemesis=self.kinds, unsafe=self.unsafe, trace=trace_path or "")

    def one(self, seed: int, trace_path: str | None, history_path: str | None, html_path: str | None,
            progress: Callable[[float, float], None] | None, *, html_for_failure: bool = True) -> _Outcome:
        from synod.harness.bitcoin import run_btc

        with _tracer_to(trace_path) as tracer:
            r = run_btc(seed, time_ms=self.time_ms, kinds=self.kind_list, unsafe=self.unsafe, tracer=tracer,
                        progress=progress, replay=self.replay(seed, trace_path))
        h = r.scenario.history
        converged = None if h.converged_ms is None or h.healed_ms is None else round(h.converged_ms - h.healed_ms, 1)
        summary: dict[str, Any] = {
            "seed": seed, "verdict": r.verdict, "verdicts": {v.checker: v.status for v in r.verdicts},
            "height": h.final_height, "convergence_ms": converged, "deepest_reorg": h.deepest_reorg,
            "longest_partition_ms": round(h.longest_partition_ms, 1), "wallet_txs": len(h.txs),
            "accepted": sum(1 for t in h.txs if t.accepted), "acknowledged": len(h.acknowledged),
            "virtual_s": round(r.virtual_ms / 1000, 3), "faults": r.faults}
        lines = [f"btc sim: seed {seed}, {self.describe()} ({r.virtual_ms / 1000:.1f} s virtual in all)"]
        lines += [f"{v.checker}: {v.status}: {v.summary}" for v in r.verdicts]
        lines.append(f"wallet: {len(h.txs)} spends, {summary['accepted']} accepted by the node they were sent to, "
                     f"{len(h.acknowledged)} acknowledged ({6} deep when the faults ended)")
        lines.append("faults: " + (", ".join(f"{n} {k}" for k, n in sorted(r.faults.items())) or "none"))
        bad = [v.checker for v in r.verdicts if v.status != "ok"]
        lines.append(f"verdict: {r.verdict}" + (f" ({', '.join(bad)})" if bad else ""))
        ok = r.verdict == "ok"
        return _Outcome(seed, ok, 0 if ok else 1, lines, summary, self.replay(seed, trace_path),
                        {"trace": trace_path} if trace_path else {})


def _double_spend(qs: tuple[float, ...], zs: tuple[int, ...], races: int, first: int, as_json: bool) -> None:
    from synod.harness.bitcoin import measure_double_spend

    figures = []
    with _progress(not as_json, "races", len(qs) * len(zs) * races, "races") as update:
        for q in qs:
            for z in zs:
                done = len(figures) * races   # each row its own seeds: rows sharing seeds would share their luck
                figures.append(measure_double_spend(q, z, races, first_seed=first + done,
                                                    progress=lambda i, d=done: update(d + i)))
    rows = [{"q": f.q, "z": f.z, "races": f.races, "successes": f.successes, "rate": f.rate,
             "interval95": list(f.interval95), "whitepaper": f.nakamoto, "exact": f.exact, "agrees": f.agrees,
             "whitepaper_over_exact": f.nakamoto / f.exact if f.exact else None} for f in figures]
    if as_json:
        click.echo(json.dumps({"attack": "double-spend", "give_up_behind_blocks": 20,
                               "rows": [{**row, "first_seed": f.first_seed} for row, f in zip(rows, figures)]}))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"double spend (whitepaper section 11): {races} races per row, seeds {first}.. (a range per row)")
    for col in ("q", "z", "measured", "95% interval", "exact (lead by 1)", "whitepaper", "whitepaper/exact", "agrees"):
        table.add_column(col, justify="right")
    for f in figures:
        table.add_row(f"{f.q:g}", str(f.z), f"{f.rate:.4f}", f"[{f.interval95[0]:.4f}, {f.interval95[1]:.4f}]",
                      f"{f.exact:.7f}", f"{f.nakamoto:.7f}", f"{f.nakamoto / f.exact:.2f}" if f.exact else "-",
                      "yes" if f.agrees else "NO")
    Console().print(table)
    click.echo("exact: the negative-binomial race (Rosenfeld 2014; Grunspan and Perez-Marco 2017) with the attacker "
               "needing a lead of one block (a tie keeps the first-seen chain); whitepaper: Nakamoto's Poisson "
               "approximation, which also counts a tie as success. The attacker gives up 20 blocks behind "
               "(a change of at most (q/p)^21 in the probability).")


def _selfish(alphas: tuple[float, ...], gammas: tuple[float, ...], runs: int, blocks: int, first: int,
             as_json: bool) -> None:
    from synod.bitcoin.analysis import selfish_mining_threshold
    from synod.harness.bitcoin import measure_selfish_mining

    figures = []
    with _progress(not as_json, "runs", len(alphas) * len(gammas) * runs, "runs") as update:
        for gamma in gammas:
            for alpha in alphas:
                done = len(figures) * runs
                figures.append(measure_selfish_mining(alpha, gamma, runs, blocks=blocks, first_seed=first,
                                                      progress=lambda i, d=done: update(d + i)))
    rows = [{"alpha": f.alpha, "gamma": f.gamma, "runs": f.runs, "blocks_per_run": f.blocks_per_run,
             "relative_revenue": f.revenue, "interval95": list(f.interval95), "formula": f.formula,
             "profitable": f.profitable, "threshold": selfish_mining_threshold(f.gamma)} for f in figures]
    if as_json:
        click.echo(json.dumps({"attack": "selfish", "first_seed": first, "rows": rows}))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"selfish mining (Eyal and Sirer 2014): {runs} runs x {blocks} blocks per row, seeds "
                        f"{first}..{first + runs - 1}")
    for col in ("gamma", "alpha", "relative revenue", "95% interval", "formula", "vs alpha", "threshold"):
        table.add_column(col, justify="right")
    for f in figures:
        table.add_row(f"{f.gamma:g}", f"{f.alpha:g}", f"{f.revenue:.4f}", f"[{f.interval95[0]:.4f}, {f.interval95[1]:.4f}]",
                      f"{f.formula:.4f}", "above" if f.profitable else "below", f"{selfish_mining_threshold(f.gamma):.4f}")
    Console().print(table)
    click.echo("gamma = (m-1)/m: m honest miners, each nearer the pool than the others, so all but the finder see "
               "the pool's block first in a tie. Honest mining earns alpha; selfish mining beats it above the threshold.")


def _floats(text: str | None, default: tuple[float, ...], name: str) -> tuple[float, ...]:
    if text is None:
        return default
    try:
        return tuple(float(x) for x in text.split(",") if x)
    except ValueError:
        raise click.BadParameter(f"comma-separated numbers, not {text!r}", param_hint=name) from None


@click.command("btc")
@click.option("--attack", default="", type=click.Choice(("", "double-spend", "selfish")),
              help="'' (default): fork resolution under the nemesis; double-spend: whitepaper section 11; "
                   "selfish: Eyal and Sirer 2014.")
@click.option("--nemesis", "kinds", default=",".join(BTC_KINDS), show_default=True,
              help=f"Fork resolution: comma-separated faults on the nodes, from {', '.join(BTC_KINDS)}; '' for none.")
@click.option("--seed", default=1, show_default=True, type=click.IntRange(0, None), help="The (first) seed.")
@click.option("--seeds", "n_seeds", default=None, type=click.IntRange(1, SEEDS_MAX),
              help="Fork resolution: seeds to run [1]; double-spend: races per (q, z) [1000]; selfish: runs per "
                   "(alpha, gamma) [4].")
@click.option("--time", "time_text", default="20s", show_default=True, help="Fork resolution: virtual time under faults.")
@click.option("--unsafe", default="", type=click.Choice(("",) + UNSAFE),
              help="Fork resolution: a deliberately unsafe node (the checkers must catch it): never-reorg (extends "
                   "its own tip only), drop-disconnected-txs (a reorg loses the disconnected transactions).")
@click.option("--q", "q_text", default=None, help="double-spend: the attacker's hash share(s) [0.1,0.3].")
@click.option("--z", "z_text", default=None, help="double-spend: confirmations the merchant waits for [1,2,3,5].")
@click.option("--alpha", "alpha_text", default=None, help="selfish: the pool's hash share(s) [0.1..0.45].")
@click.option("--gamma", "gamma_text", default=None, help="selfish: 0, 0.5, 0.667, ... ((m-1)/m) [0,0.5].")
@click.option("--blocks", default=2000, show_default=True, type=click.IntRange(10, 1_000_000),
              help="selfish: main-chain blocks per run.")
@click.option("--trace", "trace_path", default=None, type=click.Path(dir_okay=False),
              help="Fork resolution: write the run's trace (JSON lines) here; one seed only.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def btc_cmd(attack: str, kinds: str, seed: int, n_seeds: int | None, time_text: str, unsafe: str, q_text: str | None,
            z_text: str | None, alpha_text: str | None, gamma_text: str | None, blocks: int, trace_path: str | None,
            as_json: bool) -> None:
    """Bitcoin (Nakamoto 2008) in the simulator. Default: 4 full nodes and 3
    miners under the nemesis, with a wallet spending mature coinbases;
    checked: convergence to one most-work tip within a bound after the
    faults, no honestly mined block rejected, no double spend in any chain,
    every transaction 6 deep when the faults ended kept. --attack
    double-spend: the section 11 race, measured beside the whitepaper and
    the exact formula. --attack selfish: relative revenue beside Eyal and
    Sirer's formula.

    Exit status: 0 all ok (the attacks print their figures, each row
    marked whether the formula lies in its 95% interval); 1 a checker
    failed (its replay command is printed); 2 bad arguments."""
    from synod.core.errors import ConfigError

    try:
        if attack == "double-spend":
            qs = _floats(q_text, TABLE_Q, "--q")
            zs = tuple(int(z) for z in _floats(z_text, TABLE_Z, "--z"))
            _double_spend(qs, zs, n_seeds or 1000, seed, as_json)
            return
        if attack == "selfish":
            _selfish(_floats(alpha_text, SWEEP_ALPHA, "--alpha"), _floats(gamma_text, SWEEP_GAMMA, "--gamma"),
                     n_seeds or 4, blocks, seed, as_json)
            return
    except ConfigError as e:
        raise click.UsageError(str(e)) from None
    time_ms, kind_list = _system_run_args(time_text, kinds, n_seeds or 1, trace_path, BTC_KINDS)
    run = _BtcRunner(time_ms, time_text, kind_list, kinds, unsafe)
    if (n_seeds or 1) == 1:
        _one_seed(run, seed, time_ms, trace_path, None, None, as_json)
    else:
        _sweep(run, seed, n_seeds or 1, as_json)
