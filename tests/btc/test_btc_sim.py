"""Fork resolution under the nemesis (issue 14 section 3; whitepaper
sections 4-5 and 11): seeded runs of synod.harness.bitcoin's scenario,
its checkers, the unsafe nodes caught, a run replayed exactly."""

from __future__ import annotations

import msgspec
import pytest
from click.testing import CliRunner
from tests.conftest import ci_seeds

from synod.bitcoin import OutPoint, Transaction, TxIn, TxOut
from synod.cli.main import cli as main
from synod.harness.bitcoin import _prefix_blocks, double_spends_in, run_btc
from synod.sim import Tracer


def _failures(seeds: range, **options: object) -> list[tuple[int, list[str], str]]:
    out = []
    for seed in seeds:
        r = run_btc(seed, **options)  # type: ignore[arg-type]
        if r.verdict != "ok":
            out.append((seed, [f"{v.checker}: {v.summary}" for v in r.verdicts if v.status != "ok"], r.replay))
    return out


def test_forks_resolve_under_the_full_nemesis() -> None:
    """Whitepaper section 5: nodes converge on the most work after the
    faults; no honest block rejected, no double spend, 6-deep kept."""
    bad = _failures(range(1, ci_seeds(20) + 1), time_ms=15_000.0)
    assert not bad, "\n".join(f"seed {s}: {why}\n  replay: {cmd}" for s, why, cmd in bad)


def test_the_run_reports_partitions_reorgs_and_the_wallet() -> None:
    r = run_btc(3, time_ms=15_000.0)
    h = r.scenario.history
    assert r.verdict == "ok", [v.summary for v in r.verdicts]
    assert h.longest_partition_ms >= 1_000 and h.deepest_reorg >= 1        # partitions did fork the chain
    assert len(h.acknowledged) >= 10 and sum(1 for t in h.txs if t.accepted) >= 10
    assert h.converged_ms is not None and h.healed_ms is not None
    assert "--seed 3" in r.replay


@pytest.mark.parametrize("unsafe,checker", [("never-reorg", "convergence"), ("drop-disconnected-txs", "acknowledged")])
def test_each_unsafe_node_is_caught_within_a_few_seeds(unsafe: str, checker: str) -> None:
    """never-reorg: the sides of a healed partition never agree;
    drop-disconnected-txs: a transaction buried on the losing side is lost."""
    for seed in range(1, 16):
        r = run_btc(seed, unsafe=unsafe, time_ms=15_000.0)
        if any(v.checker == checker and v.status == "illegal" for v in r.verdicts):
            assert f"--seed {seed}" in r.replay and f"--unsafe {unsafe}" in r.replay
            return
    pytest.fail(f"--unsafe {unsafe} was not caught in 15 seeds")


def test_the_chain_walk_finds_a_double_spend_and_a_spend_of_nothing() -> None:
    blocks = list(_prefix_blocks(3, b"\x51"))
    coinbase = blocks[0].transactions[0]
    def pay(prevout: OutPoint, tag: bytes) -> Transaction:
        return Transaction(version=2, locktime=0, inputs=(TxIn(prevout=prevout, script_sig=tag),),
                           outputs=(TxOut(value=1, script_pubkey=b"\x51"),))
    first, second = pay(OutPoint(txid=coinbase.txid, index=0), b"\x01a"), pay(OutPoint(txid=coinbase.txid, index=0), b"\x01b")
    ghost = pay(OutPoint(txid=bytes(32), index=7), b"\x01c")
    b2 = msgspec.structs.replace(blocks[1], transactions=(*blocks[1].transactions, first))
    b3 = msgspec.structs.replace(blocks[2], transactions=(*blocks[2].transactions, second, ghost))
    assert double_spends_in([blocks[0], b2]) == []
    problems = double_spends_in([blocks[0], b2, b3])
    assert len(problems) == 2
    assert "a second time (double spend)" in problems[0] and "not an output of the chain" in problems[1]


def test_a_seed_replays_to_the_same_trace() -> None:
    traces = []
    for _ in range(2):
        tracer = Tracer(keep=True)
        run_btc(5, tracer=tracer, time_ms=3_000.0)
        traces.append(tracer.lines)
    assert traces[0] == traces[1] and len(traces[0]) > 1000


def test_synod_sim_btc_prints_the_checkers_and_a_replay_command_on_failure() -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["sim", "btc", "--seed", "2", "--time", "5s"])
    assert ok.exit_code == 0, ok.output
    assert "convergence: ok" in ok.output and "verdict: ok" in ok.output
    bad = runner.invoke(main, ["sim", "btc", "--seed", "1", "--time", "10s", "--unsafe", "never-reorg", "--json"])
    assert bad.exit_code == 1
    assert '"replay": "synod sim btc --seed 1 --time 10s' in bad.output
