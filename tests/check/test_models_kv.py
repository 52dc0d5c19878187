"""The ``kv`` model's incr and cas (the Redis workload's INCR and
WATCH/MULTI/EXEC cas): hand-made histories, legal and illegal, each also
decided by the brute-force reference; the prune of unobserved unknown
writes stays exact with them (generated histories, with and without the
reductions, against brute force)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.check._histories import _assign_processes, brute_force, hist

from synod.check import KV, HistoryError, check_events, check_operations, operations
from synod.check.models import ILLEGAL

# (description, lines, linearizable?)
CASES = [
    ("incr counts from a missing key",
     ["0 invoke incr @n", "0 ok incr @n 1", "1 invoke incr @n", "1 ok incr @n 2", "2 invoke get @n",
      '2 ok get @n "2"'], True),
    ("concurrent incrs may return in either order",
     ["0 invoke incr @n", "1 invoke incr @n", "1 ok incr @n 1", "0 ok incr @n 2"], True),
    ("two incrs both return 1 (a lost increment)",
     ["0 invoke incr @n", "1 invoke incr @n", "0 ok incr @n 1", "1 ok incr @n 1"], False),
    ("an incr skips a number",
     ["0 invoke incr @n", "0 ok incr @n 1", "1 invoke incr @n", "1 ok incr @n 3"], False),
    ("an info incr may have counted",
     ["0 invoke incr @n", "0 info incr @n", "1 invoke incr @n", "1 ok incr @n 2"], True),
    ("an info incr may not have counted",
     ["0 invoke incr @n", "0 info incr @n", "1 invoke get @n", "1 ok get @n null"], True),
    ("an info incr counts once at most",
     ["0 invoke incr @n", "0 info incr @n", "1 invoke incr @n", "1 ok incr @n 3"], False),
    ("a failed incr did not count",
     ["0 invoke incr @n", "0 fail incr @n", "1 invoke get @n", '1 ok get @n "1"'], False),
    ("an incr of a value that is no number",
     ['0 invoke put @n "a"', '0 ok put @n "a"', "1 invoke incr @n", "1 ok incr @n 1"], False),
    ("an incr counts from a number put",
     ['0 invoke put @n "41"', '0 ok put @n "41"', "1 invoke incr @n", "1 ok incr @n 42"], True),
    ("a cas from the value read",
     ['0 invoke put @k "a"', '0 ok put @k "a"', '1 invoke cas @k ["a", "b"]', '1 ok cas @k ["a", "b"]',
      "2 invoke get @k", '2 ok get @k "b"'], True),
    ("a cas from a missing key (null old)",
     ['0 invoke cas @k [null, "b"]', '0 ok cas @k [null, "b"]', "1 invoke get @k", '1 ok get @k "b"'], True),
    ("a cas from a value no longer there",
     ['0 invoke put @k "a"', '0 ok put @k "a"', '1 invoke put @k "c"', '1 ok put @k "c"',
      '2 invoke cas @k ["a", "b"]', '2 ok cas @k ["a", "b"]'], False),
    ("a lost update: two cas from the same value both commit",
     ['0 invoke put @k "a"', '0 ok put @k "a"', '1 invoke cas @k ["a", "b"]', '2 invoke cas @k ["a", "c"]',
      '1 ok cas @k ["a", "b"]', '2 ok cas @k ["a", "c"]'], False),
    ("a cas whose watch tripped did not write",
     ['0 invoke put @k "a"', '0 ok put @k "a"', '1 invoke cas @k ["a", "b"]', '1 fail cas @k ["a", "b"]',
      "2 invoke get @k", '2 ok get @k "b"'], False),
    ("an info cas may commit later",
     ['0 invoke put @k "a"', '0 ok put @k "a"', '1 invoke cas @k ["a", "b"]', '1 info cas @k ["a", "b"]',
      "2 invoke get @k", '2 ok get @k "a"', "2 invoke get @k", '2 ok get @k "b"'], True),
    ("an info cas commits only on its old value",
     ['0 invoke put @k "a"', '0 ok put @k "a"', '1 invoke put @k "c"', '1 ok put @k "c"',
      '2 invoke cas @k ["a", "b"]', '2 info cas @k ["a", "b"]', "3 invoke get @k", '3 ok get @k "b"'], False),
    ("an info put seen only by a cas (kept, not pruned)",
     ['0 invoke put @k "a"', '0 info put @k "a"', '1 invoke cas @k ["a", "b"]', '1 ok cas @k ["a", "b"]'],
     True),
    ("an info put of a number seen only through incr (kept, not pruned)",
     ['0 invoke put @k "5"', '0 info put @k "5"', "1 invoke incr @k", "1 ok incr @k 6"], True),
    ("an info cas that enabled an info cas a get saw (kept, not pruned)",
     ['0 invoke cas @k [null, "a"]', '0 info cas @k [null, "a"]', '1 invoke cas @k ["a", "b"]',
      '1 info cas @k ["a", "b"]', "2 invoke get @k", '2 ok get @k "b"'], True),
]


@pytest.mark.parametrize("lines, expected", [pytest.param(lines, e, id=d) for d, lines, e in CASES])
def test_hand_made_history(lines: list[str], expected: bool) -> None:
    ops = operations(hist(*lines))
    assert brute_force(KV(), ops) is expected, "the reference disagrees with the case itself"
    assert check_events(KV(), hist(*lines)).verdict == ("ok" if expected else "illegal")
    assert check_operations(KV(), ops, reductions=False).verdict == ("ok" if expected else "illegal")


@pytest.mark.parametrize("state, n", [("", 1), ("0", 1), ("-1", 0), ("41", 42), ("9223372036854775806", 2**63 - 1)])
def test_incr_reads_integers_as_redis_does(state: str, n: int) -> None:
    (op,) = operations(hist("0 invoke incr @n", f"0 ok incr @n {n}"))
    assert KV().step(state, op) == str(n)


@pytest.mark.parametrize("state", ["a", "007", "-0", " 1", "1.5", "+1", "9223372036854775807", "1" * 30])
def test_incr_of_a_value_redis_does_not_count_is_illegal(state: str) -> None:
    """Redis's string2ll: no leading zeros, signs or spaces; 64 bits; and
    INCR of the largest one overflows. Unknown outcome too: it cannot have
    happened there."""
    for kind in ("ok", "info"):
        (op,) = operations(hist("0 invoke incr @n", f"0 {kind} incr @n 1"))
        assert KV().step(state, op) is ILLEGAL
        step = KV().compile(op)
        assert step is not None and step(state) is ILLEGAL


@pytest.mark.parametrize("line, message", [
    ("0 invoke cas @k \"a\"", "cas value must be [old, new]"),
    ("0 invoke cas @k [\"a\", 3]", "cas value must be [old, new]"),
    ("0 invoke incr @k", None),
])
def test_malformed_incr_and_cas(line: str, message: str | None) -> None:
    if message is None:
        with pytest.raises(HistoryError, match="incr result must be an integer"):
            check_events(KV(), hist(line, '0 ok incr @k "1"'))
        return
    with pytest.raises(HistoryError, match=message.replace("[", r"\[")):
        check_events(KV(), hist(line))


def test_describe() -> None:
    ops = operations(hist("0 invoke incr @n", "0 ok incr @n 3", "1 invoke incr @n", "1 info incr @n",
                          '2 invoke cas @k [null, "b"]', '2 ok cas @k [null, "b"]'))
    assert [KV().describe(op) for op in ops] == ["incr -> 3", "incr -> ?", "cas [nil b] -> ok"]


def test_unobserved_info_cas_and_put_are_pruned_observed_ones_kept() -> None:
    """An info cas writes its ``new`` as a put does: pruned when nothing saw
    it; a cas's ``old`` counts as seeing; a key with an incr is left whole."""
    lines = ['0 invoke put @k "a"', '0 ok put @k "a"',
             '1 invoke cas @k ["a", "x"]', '1 info cas @k ["a", "x"]',   # x never seen: pruned
             '2 invoke put @k "y"', '2 info put @k "y"',                 # y seen by 3's cas: kept
             '3 invoke cas @k ["y", "z"]', '3 info cas @k ["y", "z"]',   # z seen by the get: kept
             "4 invoke get @k", '4 ok get @k "z"']
    r = check_events(KV(), hist(*lines))
    assert r.verdict == "ok"
    assert r.dropped == 1
    with_incr = [*lines, "5 invoke incr @k", "5 info incr @k"]
    assert check_events(KV(), hist(*with_incr)).dropped == 0


# -- generated histories: the reductions (the prune included) change no verdict --------------

_WRITES = ("a", "b", "5")


@st.composite
def _kv_history(draw: st.DrawFn, n_max: int = 7) -> list:
    """Small one-key histories of every kv operation with random results,
    intervals and outcomes, info-heavy (what the prune acts on)."""
    spans = []
    for _ in range(draw(st.integers(1, n_max))):
        f = draw(st.sampled_from(("get", "put", "append", "incr", "cas")))
        inv: object = None
        done: object = None
        if f in ("put", "append"):
            inv = done = draw(st.sampled_from(_WRITES))
        elif f == "cas":
            inv = done = [draw(st.sampled_from((None, *_WRITES, "ab", "6"))), draw(st.sampled_from(_WRITES))]
        elif f == "get":
            done = draw(st.sampled_from((None, "a", "b", "ab", "ba", "5", "6", "1")))
        else:
            done = draw(st.integers(1, 7))
        kind = draw(st.sampled_from(("ok", "info", "info", "fail")))
        call = draw(st.integers(0, 40))
        ret: float = call + draw(st.integers(0, 20))
        if kind == "info" and draw(st.booleans()):
            ret = float("inf")
        spans.append((call, ret, f, inv, done if kind == "ok" else None, kind, "k"))
    return operations(_assign_processes(spans))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=_kv_history())
def test_verdict_agrees_with_brute_force(ops: list) -> None:
    expected = "ok" if brute_force(KV(), ops) else "illegal"
    assert check_operations(KV(), ops).verdict == expected
    assert check_operations(KV(), ops, reductions=False).verdict == expected


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=_kv_history(), state=st.sampled_from(("", "a", "ab", "5", "0", "-3", "05", "x")))
def test_compiled_steppers_agree_with_step(ops: list, state: str) -> None:
    model = KV()
    for op in ops:
        step = model.compile(op)
        if step is None:
            continue
        want = model.step(state, op)
        got = step(state)
        assert got is ILLEGAL if want is ILLEGAL else got == want, (op, state)
