"""The probabilities the simulator's attacks are measured against.

Theory of operation. Mining is a race of independent Poisson processes: a
miner with a share ``q`` of the hash rate finds the next block with
probability ``q``, whoever found the last one. Three analyses follow.

- **Double spend, Nakamoto's approximation** (whitepaper section 11). The
  merchant waits for ``z`` blocks after the one holding his transaction
  while the attacker mines a secret chain holding a conflicting one.
  Nakamoto takes the attacker's progress in that time to be Poisson with
  the *expected* mean ``lambda = z q / p`` and multiplies by the gambler's
  ruin probability ``(q/p)^(z-k)`` of catching up from ``z - k`` behind
  (a tie counts as success). :func:`nakamoto_success_probability` is his C
  program, digit for digit.
- **Double spend, exact** (Rosenfeld 2014, "Analysis of hashrate-based
  double spending"; Grunspan and Perez-Marco 2017, "Double spend races").
  The honest chain takes a random time to find its ``z`` blocks, so the
  attacker's blocks ``k`` in that time are negative binomial, not Poisson:
  ``P(k) = C(k+z-1, k) p^z q^k``. He then needs to gain ``z - k + L`` blocks
  net, which he ever does with probability ``(q/p)^(z-k+L)`` (gambler's
  ruin against a stronger opponent), where ``L`` is the lead the rule
  demands. :func:`exact_success_probability` sums both.
- **Selfish mining** (Eyal and Sirer 2014, "Majority is not enough",
  section 4): the relative revenue of a pool of hash share ``alpha`` that
  withholds blocks, when a share ``gamma`` of the honest miners mine on the
  pool's block during a tie, and the share above which this beats honest
  mining, ``(1 - gamma) / (3 - 2 gamma)``.

And :func:`proportion_interval`, Wilson's score interval for a rate the
simulator measures, to compare these numbers with.

Everything here is closed-form arithmetic on floats: no state, no
randomness (the Monte Carlo checks live in the tests).
"""

from __future__ import annotations

import math
from statistics import NormalDist

from synod.core.errors import LocalProtocolError

__all__ = [
    "nakamoto_success_probability", "exact_success_probability", "selfish_mining_relative_revenue",
    "selfish_mining_threshold", "proportion_interval",
]

# The exact sum stops once a term adds less than this share of the total so far
# (the terms past the mode shrink geometrically, by about q per step).
_TAIL_RELATIVE_EPSILON = 1e-18
_TAIL_TERMS_MAX = 1_000_000


def _check_share(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise LocalProtocolError(f"{name} must be a share of the hash rate in [0, 1], not {value!r}")


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise LocalProtocolError(f"{name} must be an int >= 0, not {value!r}")


def nakamoto_success_probability(q: float, z: int) -> float:
    """The attacker's chance to ever catch up from ``z`` blocks behind, as
    the whitepaper (section 11) computes it: attacker progress Poisson with
    mean ``z q / p``, then gambler's ruin ``(q/p)^(z-k)``; catching up means
    drawing level.

    This is Nakamoto's C ``AttackerSuccessProbability`` step for step (the
    Poisson terms built by repeated multiplication, subtracted from 1), so
    ``f"{P:.7f}"`` prints his tables. An attacker with ``q >= 1/2`` always
    catches up: 1.0.

    Args:
        q: the attacker's share of the hash rate, in [0, 1].
        z: blocks the merchant waits for, >= 0.

    Raises:
        LocalProtocolError: ``q`` outside [0, 1] or ``z`` not an int >= 0.
    """
    _check_share("q", q)
    _check_count("z", z)
    p = 1.0 - q
    if q >= p:
        return 1.0
    lam = z * (q / p)
    total = 1.0
    for k in range(z + 1):
        poisson = math.exp(-lam)
        for i in range(1, k + 1):
            poisson *= lam / i
        total -= poisson * (1 - (q / p) ** (z - k))
    return total


def exact_success_probability(q: float, z: int, *, must_lead_by: int = 1) -> float:
    """The probability that a double spend succeeds against a merchant who
    waits for ``z`` confirmations, counting the attacker's progress exactly.

    The race (Rosenfeld 2014; Grunspan and Perez-Marco 2017): the attacker
    mines a secret chain from the block before the merchant's transaction.
    When the honest chain has ``z`` blocks from the one holding it, the
    attacker has ``k`` with the negative binomial probability
    ``C(k+z-1, k) p^z q^k`` (``p = 1 - q``). The attack succeeds if the
    secret chain is then, or ever later, ``must_lead_by`` blocks longer than
    the honest one: from a deficit of ``d = z - k + must_lead_by > 0`` that
    happens with probability ``(q/p)^d`` (gambler's ruin), and at once when
    ``d <= 0``. So ``P = sum_k C(k+z-1, k) p^z q^k min(1, (q/p)^d)``.

    ``must_lead_by=1`` (the default) is synod's rule and Core's: nodes
    follow the most work and a tie keeps the chain seen first, so the secret
    chain must become strictly longer than the honest one. ``must_lead_by=0``
    counts a tie as success, as Nakamoto, Rosenfeld and Grunspan and
    Perez-Marco do ("catching up"); it equals their closed forms
    ``1 - sum_{m<=z} C(m+z-1, m)(p^z q^m - p^m q^z)`` (Rosenfeld) and
    ``I_{4pq}(z, 1/2)`` (Grunspan and Perez-Marco). With ``z = 0`` the merchant
    accepts at once and the attacker needs ``must_lead_by`` blocks net:
    ``(q/p)^must_lead_by``. An attacker with ``q >= 1/2`` always succeeds.

    The terms are summed in log space, so small probabilities keep their
    relative precision (no ``1 - sum`` cancellation).

    Args:
        q: the attacker's share of the hash rate, in [0, 1].
        z: confirmations the merchant waits for (the block holding his
            transaction is the first), >= 0.
        must_lead_by: the lead that wins, >= 0.

    Raises:
        LocalProtocolError: an argument out of range.
    """
    _check_share("q", q)
    _check_count("z", z)
    _check_count("must_lead_by", must_lead_by)
    p = 1.0 - q
    if q >= p:
        return 1.0
    if q == 0.0:
        return 1.0 if z + must_lead_by == 0 else 0.0
    if z == 0:
        return (q / p) ** must_lead_by
    log_p, log_q, log_ratio = math.log(p), math.log(q), math.log(q / p)
    log_z_factorial = math.lgamma(z)
    total = 0.0
    k = 0
    while k < _TAIL_TERMS_MAX:
        log_term = math.lgamma(k + z) - math.lgamma(k + 1) - log_z_factorial + z * log_p + k * log_q
        deficit = z - k + must_lead_by
        if deficit > 0:
            log_term += deficit * log_ratio
        term = math.exp(log_term)
        total += term
        # past the deficit and the negative binomial's mode, the terms only shrink
        if deficit <= 0 and k * p > (z - 1) * q and term <= total * _TAIL_RELATIVE_EPSILON:
            return min(total, 1.0)
        k += 1
    raise AssertionError(f"the tail did not converge for q={q}, z={z}")


def selfish_mining_relative_revenue(alpha: float, gamma: float) -> float:
    """The share of the main chain's blocks a selfish pool earns (Eyal and
    Sirer 2014, section 4, their revenue ``R_pool``):

    ``(alpha (1-alpha)^2 (4 alpha + gamma (1 - 2 alpha)) - alpha^3)
    / (1 - alpha (1 + (2 - alpha) alpha))``

    from the stationary distribution of their state machine (the pool's
    private lead 0, 0', 1, 2, ...). It is 1 at ``alpha = 1/2``; a pool with
    more than half the hash rate stays ahead forever and earns every block
    in the limit: 1.0.

    Args:
        alpha: the pool's share of the hash rate, in [0, 1].
        gamma: the share of honest miners that mine on the pool's block
            when two blocks race (its propagation advantage), in [0, 1].

    Raises:
        LocalProtocolError: a share outside [0, 1].
    """
    _check_share("alpha", alpha)
    _check_share("gamma", gamma)
    if alpha >= 0.5:
        return 1.0
    numerator = alpha * (1 - alpha) ** 2 * (4 * alpha + gamma * (1 - 2 * alpha)) - alpha ** 3
    denominator = 1 - alpha * (1 + (2 - alpha) * alpha)
    assert denominator > 0, "1 - a - 2a^2 + a^3 is positive on [0, 1/2)"
    return numerator / denominator


def selfish_mining_threshold(gamma: float) -> float:
    """The pool share above which selfish mining earns more than honest
    mining (Eyal and Sirer 2014, section 4, Observation 1):
    ``(1 - gamma) / (3 - 2 gamma)``: 1/3 at ``gamma = 0``, 1/4 at
    ``gamma = 1/2``, 0 at ``gamma = 1``.

    Raises:
        LocalProtocolError: ``gamma`` outside [0, 1].
    """
    _check_share("gamma", gamma)
    return (1 - gamma) / (3 - 2 * gamma)


def proportion_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval ``(low, high)`` for a rate measured as
    ``successes`` of ``trials`` independent trials, at ``confidence`` (two
    sided). Unlike the normal approximation it stays inside [0, 1] and is
    not empty at 0 or ``trials`` successes.

    Raises:
        LocalProtocolError: ``trials`` < 1, ``successes`` not in
            [0, trials], or ``confidence`` not in (0, 1).
    """
    _check_count("successes", successes)
    _check_count("trials", trials)
    if trials < 1 or successes > trials:
        raise LocalProtocolError(f"need 0 <= successes <= trials and trials >= 1, not {successes} of {trials}")
    if not 0.0 < confidence < 1.0:
        raise LocalProtocolError(f"confidence must be in (0, 1), not {confidence!r}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    rate = successes / trials
    z2_n = z * z / trials
    center = (rate + z2_n / 2) / (1 + z2_n)
    half = z / (1 + z2_n) * math.sqrt(rate * (1 - rate) / trials + z2_n / (4 * trials))
    low = 0.0 if successes == 0 else max(0.0, center - half)
    high = 1.0 if successes == trials else min(1.0, center + half)
    return low, high
