"""The attack probabilities of ``synod.bitcoin.analysis``: the whitepaper's
section 11 tables digit for digit, the exact double-spend race against its
published closed forms and a seeded Monte Carlo of the race, and Eyal and
Sirer's selfish-mining revenue and threshold (with a Monte Carlo of their
state machine).

How far Nakamoto's Poisson approximation is from the exact race (P to 7
digits; "tie wins" is Nakamoto's own rule, as in Rosenfeld and Grunspan and
Perez-Marco; "strictly longer" is synod's, the default):

    q    z  Nakamoto   exact, tie wins   exact, strictly longer
    0.1  1  0.2045873  0.2000000 (0.98x) 0.0311111 (0.15x)
    0.1  2  0.0509779  0.0560000 (1.10x) 0.0095111 (0.19x)
    0.1  3  0.0131722  0.0171200 (1.30x) 0.0030311 (0.23x)
    0.1  5  0.0009137  0.0017818 (1.95x) 0.0003286 (0.36x)
    0.3  1  0.6277491  0.6000000 (0.96x) 0.3085714 (0.49x)
    0.3  2  0.4457171  0.4320000 (0.97x) 0.2329714 (0.52x)
    0.3  3  0.3245841  0.3261600 (1.00x) 0.1800514 (0.56x)
    0.3  5  0.1773523  0.1976173 (1.11x) 0.1117497 (0.63x)

Under Nakamoto's own rule his approximation is a little high for one or two
confirmations and then too low by a factor that grows with z (it ignores
that the honest chain may be slow): he needs 5 blocks at q = 0.1 for
P < 0.1%, the exact race 6. Under the strictly-longer rule the attacker needs
one more block net, which at these z costs him more than the approximation
gives away: Nakamoto's figure is 1.6x to 6.6x too high there. The exact race
decays more slowly, though, so even under the strict rule it passes
Nakamoto's figure from z = 10 at q = 0.1 and from z = 12 at q = 0.3.
"""

from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest

from synod.bitcoin.analysis import (
    exact_success_probability,
    nakamoto_success_probability,
    proportion_interval,
    selfish_mining_relative_revenue,
    selfish_mining_threshold,
)
from synod.core.errors import LocalProtocolError

# Whitepaper section 11, "Running some results" (q = 0.1 and q = 0.3).
WHITEPAPER_Q01 = ["1.0000000", "0.2045873", "0.0509779", "0.0131722", "0.0034552", "0.0009137", "0.0002428",
                  "0.0000647", "0.0000173", "0.0000046", "0.0000012"]
WHITEPAPER_Q03 = {0: "1.0000000", 5: "0.1773523", 10: "0.0416605", 15: "0.0101008", 20: "0.0024804",
                  25: "0.0006132", 30: "0.0001522", 35: "0.0000379", 40: "0.0000095", 45: "0.0000024",
                  50: "0.0000006"}
# "Solving for P less than 0.1%".
WHITEPAPER_Z_FOR_P_BELOW_0_1_PERCENT = {0.10: 5, 0.15: 8, 0.20: 11, 0.25: 15, 0.30: 24, 0.35: 41, 0.40: 89, 0.45: 340}
# The same under the exact race with Nakamoto's rule (a tie wins), as Rosenfeld
# (2014) and Grunspan and Perez-Marco (2017) tabulate it.
EXACT_Z_FOR_P_BELOW_0_1_PERCENT = {0.10: 6, 0.15: 9, 0.20: 13, 0.25: 20, 0.30: 32, 0.35: 58, 0.40: 133, 0.45: 539}

POISSON_VS_EXACT = {   # (q, z): (Nakamoto, exact tie wins, exact strictly longer), from the table above
    (0.1, 1): ("0.2045873", "0.2000000", "0.0311111"), (0.1, 2): ("0.0509779", "0.0560000", "0.0095111"),
    (0.1, 3): ("0.0131722", "0.0171200", "0.0030311"), (0.1, 5): ("0.0009137", "0.0017818", "0.0003286"),
    (0.3, 1): ("0.6277491", "0.6000000", "0.3085714"), (0.3, 2): ("0.4457171", "0.4320000", "0.2329714"),
    (0.3, 3): ("0.3245841", "0.3261600", "0.1800514"), (0.3, 5): ("0.1773523", "0.1976173", "0.1117497"),
}


def _smallest_z_below(probability, q: float, bound: float = 0.001) -> int:   # type: ignore[no-untyped-def]
    z = 0
    while probability(q, z) >= bound:
        z += 1
    return z


def test_whitepaper_tables_to_seven_digits() -> None:
    """Whitepaper section 11: both tables of P, printed as Nakamoto printed them."""
    assert [f"{nakamoto_success_probability(0.1, z):.7f}" for z in range(11)] == WHITEPAPER_Q01
    assert {z: f"{nakamoto_success_probability(0.3, z):.7f}" for z in WHITEPAPER_Q03} == WHITEPAPER_Q03


def test_whitepaper_confirmations_for_p_below_a_tenth_of_a_percent() -> None:
    """Whitepaper section 11, "Solving for P less than 0.1%"."""
    got = {q: _smallest_z_below(nakamoto_success_probability, q) for q in WHITEPAPER_Z_FOR_P_BELOW_0_1_PERCENT}
    assert got == WHITEPAPER_Z_FOR_P_BELOW_0_1_PERCENT


def test_exact_race_needs_more_confirmations_than_nakamoto() -> None:
    """Rosenfeld 2014 / Grunspan and Perez-Marco 2017: counted exactly (a tie
    still wins), every row of the 0.1% table needs more blocks; requiring
    the strictly longer chain needs fewer than that: fewer than the
    whitepaper too at q <= 0.15, as many at 0.2, more from 0.25 on."""
    def tie(q: float, z: int) -> float:
        return exact_success_probability(q, z, must_lead_by=0)

    got = {q: _smallest_z_below(tie, q) for q in EXACT_Z_FOR_P_BELOW_0_1_PERCENT}
    assert got == EXACT_Z_FOR_P_BELOW_0_1_PERCENT
    strict = {q: _smallest_z_below(exact_success_probability, q) for q in EXACT_Z_FOR_P_BELOW_0_1_PERCENT}
    assert strict == {0.10: 4, 0.15: 7, 0.20: 11, 0.25: 17, 0.30: 29, 0.35: 55, 0.40: 128, 0.45: 530}


@pytest.mark.parametrize("q", [0.01, 0.1, 0.25, 0.3, 0.45])
def test_exact_race_matches_rosenfeld_and_grunspan_closed_forms(q: float) -> None:
    """With a tie winning, the sum equals Rosenfeld's closed form
    1 - sum_{m<=z} C(m+z-1, m)(p^z q^m - p^m q^z) and Grunspan and
    Perez-Marco's I_{4pq}(z, 1/2) = 1 - (p - q) sum_{j<z} C(2j, j)(pq)^j
    (the regularized incomplete beta function at b = 1/2, integer a)."""
    p = 1 - q
    for z in range(1, 31):
        rosenfeld = 1 - sum(math.comb(m + z - 1, m) * (p ** z * q ** m - p ** m * q ** z) for m in range(z + 1))
        grunspan = 1 - (p - q) * sum(math.comb(2 * j, j) * (p * q) ** j for j in range(z))
        got = exact_success_probability(q, z, must_lead_by=0)
        assert got == pytest.approx(grunspan, rel=1e-9, abs=1e-15), (q, z)
        assert got == pytest.approx(rosenfeld, rel=1e-6, abs=1e-12), (q, z)   # (its sum cancels: looser)
    assert exact_success_probability(q, 1, must_lead_by=0) == pytest.approx(2 * q)   # Rosenfeld: one block, 2q


def test_exact_race_edges() -> None:
    assert exact_success_probability(0.1, 0) == pytest.approx(0.1 / 0.9)
    assert exact_success_probability(0.1, 0, must_lead_by=0) == 1.0
    assert exact_success_probability(0.0, 3) == 0.0
    assert exact_success_probability(0.5, 100) == 1.0
    assert exact_success_probability(0.7, 6) == 1.0
    # more confirmations or a longer lead only make it harder
    for q in (0.05, 0.2, 0.4):
        strict = [exact_success_probability(q, z) for z in range(40)]
        assert all(a > b for a, b in zip(strict, strict[1:], strict=False))
        assert all(exact_success_probability(q, z, must_lead_by=0) > s for z, s in enumerate(strict))
        assert all(exact_success_probability(q, z, must_lead_by=2) < s for z, s in enumerate(strict))
    # tiny probabilities keep their precision (summed in log space): Grunspan
    # and Perez-Marco's closed form in exact rational arithmetic, for 1e-27
    q, p = Fraction(1, 10), Fraction(9, 10)
    exact = 1 - (p - q) * sum(math.comb(2 * j, j) * (p * q) ** j for j in range(60))
    assert float(exact) < 1e-26
    assert exact_success_probability(0.1, 60, must_lead_by=0) == pytest.approx(float(exact), rel=1e-9)


def _race(rng: random.Random, q: float, z: int, must_lead_by: int, deficit_max: int) -> bool:
    """One double-spend race block by block: the merchant's transaction is
    in the honest chain's first block; once it has z, the attacker wins if
    his secret chain is, or ever becomes, must_lead_by blocks longer. He gives
    up at deficit_max behind (his chance from there, (q/p)^deficit_max, is
    below 1e-9 for the cases run)."""
    honest = attacker = 0
    while honest < z:
        if rng.random() < q:
            attacker += 1
        else:
            honest += 1
    while True:
        if attacker - honest >= must_lead_by:
            return True
        if honest - attacker >= deficit_max:
            return False
        if rng.random() < q:
            attacker += 1
        else:
            honest += 1


@pytest.mark.parametrize(("q", "z", "must_lead_by", "deficit_max"),
                         [(0.1, 1, 1, 10), (0.1, 2, 0, 10), (0.3, 2, 1, 25), (0.3, 5, 1, 25), (0.3, 3, 0, 25)])
def test_exact_race_agrees_with_a_monte_carlo(q: float, z: int, must_lead_by: int, deficit_max: int) -> None:
    """200,000 seeded races land inside the 99.9% Wilson interval around the
    measured rate (replay: this test's parameters, seed 14)."""
    assert (q / (1 - q)) ** deficit_max < 1e-9
    rng = random.Random(14)
    trials = 200_000
    wins = sum(_race(rng, q, z, must_lead_by, deficit_max) for _ in range(trials))
    low, high = proportion_interval(wins, trials, confidence=0.999)
    expected = exact_success_probability(q, z, must_lead_by=must_lead_by)
    assert low <= expected <= high, f"{wins}/{trials} = {wins / trials:.5f}, exact {expected:.5f}"
    if must_lead_by == 1 or z >= 5:   # and Nakamoto's figure is outside it
        nakamoto = nakamoto_success_probability(q, z)
        assert not low <= nakamoto <= high, f"Nakamoto {nakamoto:.5f} inside [{low:.5f}, {high:.5f}]"


@pytest.mark.parametrize(("q", "z"), sorted(POISSON_VS_EXACT))
def test_poisson_approximation_against_the_exact_race(q: float, z: int) -> None:
    """The module docstring's table: Nakamoto is above the exact tie-wins
    race at z = 1, 2 for q = 0.3 and z = 1 for q = 0.1, below it after,
    and always well above the strictly-longer race."""
    nakamoto, tie, strict = POISSON_VS_EXACT[q, z]
    assert f"{nakamoto_success_probability(q, z):.7f}" == nakamoto
    assert f"{exact_success_probability(q, z, must_lead_by=0):.7f}" == tie
    assert f"{exact_success_probability(q, z):.7f}" == strict
    high_for = {0.1: (1,), 0.3: (1, 2)}[q]
    assert (float(nakamoto) > float(tie)) == (z in high_for)
    assert 1.5 < float(nakamoto) / float(strict) < 6.7


def test_poisson_underestimates_more_with_every_confirmation() -> None:
    """Against the tie-wins race the approximation's shortfall grows with z:
    at q = 0.1 the exact race is 1.10x Nakamoto at z = 2, 1.95x at z = 5 and
    6.3x at z = 10. Even the strict race passes Nakamoto's figure from
    z = 10 (q = 0.1) and z = 12 (q = 0.3) on."""
    ratios = [exact_success_probability(0.1, z, must_lead_by=0) / nakamoto_success_probability(0.1, z)
              for z in range(2, 11)]
    assert all(a < b for a, b in zip(ratios, ratios[1:], strict=False))
    assert ratios[0] == pytest.approx(1.099, abs=0.001)
    assert ratios[3] == pytest.approx(1.950, abs=0.001)
    assert ratios[-1] == pytest.approx(6.331, abs=0.001)
    for q, first in ((0.1, 10), (0.3, 12)):
        # (to z = 20: further on, Nakamoto's 1 - sum at q = 0.1 is below 1e-12 and float noise)
        above = [z for z in range(1, 21) if exact_success_probability(q, z) > nakamoto_success_probability(q, z)]
        assert above == list(range(first, 21)), q


def test_selfish_mining_threshold() -> None:
    """Eyal and Sirer section 4: (1 - gamma) / (3 - 2 gamma); 1/3 without
    any propagation advantage, 1/4 when half the honest miners take the
    pool's block, 0 when all do."""
    assert selfish_mining_threshold(0.0) == pytest.approx(1 / 3)
    assert selfish_mining_threshold(0.5) == pytest.approx(1 / 4)
    assert selfish_mining_threshold(1.0) == 0.0


@pytest.mark.parametrize("gamma", [0.0, 0.1, 0.25, 0.5, 0.75, 0.9])
def test_selfish_mining_pays_exactly_above_the_threshold(gamma: float) -> None:
    """Revenue equals alpha at the threshold, is below it under, above it
    over (up to 1/2), and reaches 1 at alpha = 1/2."""
    threshold = selfish_mining_threshold(gamma)
    assert selfish_mining_relative_revenue(threshold, gamma) == pytest.approx(threshold, abs=1e-12)
    for i in range(1, 100):
        alpha = i / 200
        revenue = selfish_mining_relative_revenue(alpha, gamma)
        if abs(alpha - threshold) > 1e-9:
            assert (revenue > alpha) == (alpha > threshold), (alpha, revenue)
    assert selfish_mining_relative_revenue(0.5, gamma) == pytest.approx(1.0)
    assert selfish_mining_relative_revenue(0.0, gamma) == 0.0


def test_selfish_mining_revenue_values() -> None:
    """The formula at points worked by hand as fractions, e.g. alpha = 0.4,
    gamma = 0: (0.4 * 0.36 * 1.6 - 0.064) / (1 - 0.4 * 1.64) = 0.1664 / 0.344."""
    revenue = selfish_mining_relative_revenue
    assert revenue(1 / 3, 0.0) == pytest.approx(1 / 3)
    assert revenue(0.25, 0.5) == pytest.approx(0.25)
    assert revenue(0.4, 0.0) == pytest.approx(104 / 215)      # 0.4837: more than its 0.4
    assert revenue(0.2, 0.0) == pytest.approx(59 / 455)       # 0.1297: less than its 0.2
    assert revenue(0.3, 1.0) == pytest.approx(1041 / 2735)    # 0.3806
    assert revenue(0.6, 0.3) == 1.0
    for alpha in (0.1, 0.2, 0.3, 0.4):   # a propagation advantage only helps the pool
        assert revenue(alpha, 0.0) < revenue(alpha, 0.5) < revenue(alpha, 1.0)


def _selfish_mining(rng: random.Random, alpha: float, gamma: float, events: int) -> float:
    """Eyal and Sirer's Algorithm 1 as their state machine: the pool's
    private lead (0, 1, 2, ...) and the race state 0'. Returns the pool's
    share of the blocks that end up in the main chain."""
    pool = others = 0
    lead = 0
    racing = False   # state 0': two public branches of length one
    for _ in range(events):
        if rng.random() < alpha:   # the pool finds a block
            if racing:
                pool += 2   # its branch wins: both its blocks count
                racing = False
            else:
                lead += 1
            continue
        if racing:   # the others find one during the race
            if rng.random() < gamma:
                pool += 1   # on the pool's block
                others += 1
            else:
                others += 2
            racing = False
        elif lead == 0:
            others += 1
        elif lead == 1:
            lead, racing = 0, True   # the pool publishes: a race
        elif lead == 2:
            pool += 2   # the pool publishes both and wins
            lead = 0
        else:
            pool += 1   # the pool reveals one block; it will be in the chain
            lead -= 1
    return pool / (pool + others)


@pytest.mark.parametrize(("alpha", "gamma"), [(0.2, 0.0), (0.35, 0.5), (0.4, 0.0), (0.3, 1.0)])
def test_selfish_mining_revenue_agrees_with_a_monte_carlo(alpha: float, gamma: float) -> None:
    """200,000 mining events of the state machine (seed 14) give the
    formula's revenue to within 0.01."""
    measured = _selfish_mining(random.Random(14), alpha, gamma, 200_000)
    assert measured == pytest.approx(selfish_mining_relative_revenue(alpha, gamma), abs=0.01)


def test_proportion_interval() -> None:
    """Wilson's interval: 10 of 100 at 95% is [0.0552, 0.1744]; it never
    leaves [0, 1], includes the end at 0 or all successes, and narrows with
    more trials."""
    low, high = proportion_interval(10, 100)
    assert (round(low, 4), round(high, 4)) == (0.0552, 0.1744)
    assert proportion_interval(0, 10)[0] == 0.0
    assert proportion_interval(10, 10)[1] == 1.0
    assert proportion_interval(0, 10)[1] == pytest.approx(0.2775, abs=1e-4)
    wide = proportion_interval(500, 1000, confidence=0.99)
    narrow = proportion_interval(500, 1000)
    assert wide[0] < narrow[0] < 0.5 < narrow[1] < wide[1]


@pytest.mark.parametrize("call", [
    lambda: nakamoto_success_probability(1.5, 3), lambda: nakamoto_success_probability(0.1, -1),
    lambda: exact_success_probability(-0.1, 3), lambda: exact_success_probability(0.1, 2, must_lead_by=-1),
    lambda: exact_success_probability(0.1, 2.0), lambda: selfish_mining_relative_revenue(0.2, 1.2),
    lambda: selfish_mining_threshold(-1), lambda: proportion_interval(5, 4), lambda: proportion_interval(0, 0),
    lambda: proportion_interval(1, 2, confidence=1.0),
])
def test_arguments_out_of_range_are_refused(call) -> None:   # type: ignore[no-untyped-def]
    with pytest.raises(LocalProtocolError):
        call()
