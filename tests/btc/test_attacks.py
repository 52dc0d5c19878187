"""The attacks measured against their formulas (issue 14 section 3):
the whitepaper's double spend (section 11) against the exact race, and
Eyal and Sirer's selfish mining against their relative revenue."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from synod.bitcoin.analysis import selfish_mining_relative_revenue
from synod.cli.main import cli as main
from synod.harness.bitcoin import measure_double_spend, run_double_spend_race, run_selfish_mining


@pytest.mark.parametrize("z", [1, 2])
def test_double_spend_success_rate_matches_the_exact_race(z: int) -> None:
    """Whitepaper section 11 with the lead-by-one rule: the exact
    probability lies in the measured 99.9% interval, Nakamoto's (which
    counts a tie and takes the attacker's progress as Poisson) does not."""
    f = measure_double_spend(0.3, z, 250, first_seed=1)
    assert f.interval999[0] <= f.exact <= f.interval999[1], f
    assert not f.interval999[0] <= f.nakamoto <= f.interval999[1], f


def test_a_won_race_leaves_the_merchant_with_the_conflicting_spend() -> None:
    results = [run_double_spend_race(seed, 0.3, 1) for seed in range(1, 30)]
    won = [r for r in results if r.success]
    assert won and all(r.state == "released" and r.secret_blocks > r.honest_blocks - 1 for r in won)
    assert all(r.state == "abandoned" for r in results if not r.success)


@pytest.mark.parametrize("alpha,gamma", [(0.2, 0.0), (0.45, 0.0), (0.35, 0.5)])
def test_selfish_mining_revenue_follows_eyal_and_sirer(alpha: float, gamma: float) -> None:
    """Eyal and Sirer section 4: revenue below alpha under the threshold
    (1/3 at gamma 0), above it over (1/4 at gamma 1/2)."""
    r = run_selfish_mining(1, alpha, gamma, blocks=1500)
    formula = selfish_mining_relative_revenue(alpha, gamma)
    assert abs(r.relative_revenue - formula) < 0.05, (r, formula)
    assert (r.relative_revenue > alpha) == (formula > alpha)


def test_synod_sim_btc_attack_double_spend_prints_the_table() -> None:
    out = CliRunner().invoke(main, ["sim", "btc", "--attack", "double-spend", "--q", "0.3", "--z", "1",
                                    "--seeds", "40", "--json"])
    assert out.exit_code == 0, out.output
    row = json.loads(out.output)["rows"][0]
    assert row["q"] == 0.3 and row["z"] == 1 and row["races"] == 40
    assert row["whitepaper"] == pytest.approx(0.6277491, abs=1e-7)


def test_synod_sim_btc_attack_selfish_prints_the_figures() -> None:
    out = CliRunner().invoke(main, ["sim", "btc", "--attack", "selfish", "--alpha", "0.3", "--gamma", "0",
                                    "--seeds", "1", "--blocks", "300"])
    assert out.exit_code == 0, out.output
    assert "selfish mining" in out.output and "0.2731" in out.output
    bad = CliRunner().invoke(main, ["sim", "btc", "--attack", "selfish", "--gamma", "0.3"])
    assert bad.exit_code == 2 and "(m-1)/m" in bad.output
