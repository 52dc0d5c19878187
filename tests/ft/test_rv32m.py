"""The M extension (Unprivileged ISA 20191213, chapter 7): MUL, MULH,
MULHSU, MULHU (7.1) and DIV, DIVU, REM, REMU with the results table 7.1
gives for division by zero and signed overflow (7.2)."""

from __future__ import annotations

import random

import pytest
from tests.ft._asm import A0, A1, A2, op, run_user

from synod.ft.machine import _isa

M = 0xFFFF_FFFF
MIN = 0x8000_0000


def signed(v: int) -> int:
    return (v ^ MIN) - MIN


def compute(name: str, a: int, b: int) -> int:
    return run_user([op(name, A2, A0, A1)], regs={A0: a, A1: b}).x[A2]


@pytest.mark.parametrize("name,a,b,want", [
    # Table 7.1: division by zero
    ("div", 7, 0, M), ("div", MIN, 0, M), ("div", 0, 0, M),
    ("divu", 7, 0, M), ("divu", M, 0, M),
    ("rem", 7, 0, 7), ("rem", (-7) & M, 0, (-7) & M),
    ("remu", 7, 0, 7), ("remu", MIN, 0, MIN),
    # Table 7.1: overflow (signed only)
    ("div", MIN, M, MIN), ("rem", MIN, M, 0),
    # rounding toward zero; the remainder takes the dividend's sign
    ("div", (-7) & M, 2, (-3) & M), ("rem", (-7) & M, 2, (-1) & M),
    ("div", 7, (-2) & M, (-3) & M), ("rem", 7, (-2) & M, 1),
    ("divu", M, 2, 0x7FFF_FFFF), ("remu", M, 10, 5),
    # products
    ("mul", 0x10000, 0x10000, 0), ("mul", M, M, 1),
    ("mulh", M, M, 0), ("mulh", MIN, MIN, 0x4000_0000), ("mulh", MIN, 0x7FFF_FFFF, 0xC000_0000),
    ("mulhsu", M, M, M), ("mulhsu", MIN, M, MIN), ("mulhsu", 1, M, 0),
    ("mulhu", M, M, 0xFFFF_FFFE), ("mulhu", MIN, 2, 1),
])
def test_edge_cases(name: str, a: int, b: int, want: int) -> None:
    assert compute(name, a, b) == want


def reference(name: str, a: int, b: int) -> int:
    """The chapter 7 definitions, on Python's unbounded integers."""
    sa, sb = signed(a), signed(b)
    if name == "mul":
        return (a * b) & M
    if name == "mulh":
        return ((sa * sb) >> 32) & M
    if name == "mulhsu":
        return ((sa * b) >> 32) & M
    if name == "mulhu":
        return (a * b) >> 32
    if name in ("divu", "remu"):
        if b == 0:
            return M if name == "divu" else a
        return a // b if name == "divu" else a % b
    if b == 0:
        return M if name == "div" else a
    if sa == -(2**31) and sb == -1:
        return MIN if name == "div" else 0
    q = abs(sa) // abs(sb) * (1 if (sa < 0) == (sb < 0) else -1)
    return (q if name == "div" else sa - q * sb) & M


def test_random_operands_against_the_definitions() -> None:
    """200 seeded operand pairs per instruction, biased to the edges."""
    rng = random.Random(15)
    edges = [0, 1, 2, M, M - 1, MIN, MIN + 1, 0x7FFF_FFFF]
    for name in ("mul", "mulh", "mulhsu", "mulhu", "div", "divu", "rem", "remu"):
        for _ in range(200):
            a = rng.choice(edges) if rng.random() < 0.3 else rng.getrandbits(32)
            b = rng.choice(edges) if rng.random() < 0.3 else rng.getrandbits(rng.choice([4, 16, 32]))
            assert compute(name, a, b) == reference(name, a, b), (name, hex(a), hex(b))


def test_the_division_helpers_directly() -> None:
    assert _isa.div(MIN, M) == MIN
    assert _isa.rem(MIN, M) == 0
    assert _isa.div(5, 0) == M
    assert _isa.rem(5, 0) == 5
