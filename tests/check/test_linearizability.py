"""The Wing-Gong/Lowe search: generated histories (hypothesis) against the
model's sequential runs and against a brute-force reference; the failing
window; timeouts; partitioning by key."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.check._histories import brute_force, hist, legal_history, mutate_read, random_history

from synod.check import CasRegister, Event, Register, check_events, check_operations, make_model, operations
from synod.check.models import MODELS

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("model_name", list(MODELS))
@SETTINGS
@given(data=st.data())
def test_histories_from_sequential_runs_are_linearizable(model_name: str, data: st.DataObject) -> None:
    """Herlihy & Wing §2: a history whose operations each took effect at a
    point inside their interval, in the order of a legal sequential run, is
    linearizable, whatever the overlaps, the info completions and the info
    operations that never took effect."""
    events = data.draw(legal_history(model_name))
    result = check_events(make_model(model_name), events)
    assert result.verdict == "ok", result.counterexample
    if model_name == "cas-register":
        assert check_events(CasRegister(fail_means_mismatch=True), events).verdict == "ok", \
            "a cas that failed in the sequential run found another value"


@pytest.mark.parametrize("model_name", ["register", "cas-register", "kv", "set", "queue"])
@SETTINGS
@given(data=st.data())
def test_a_read_of_a_value_never_written_is_not_linearizable(model_name: str, data: st.DataObject) -> None:
    events = data.draw(legal_history(model_name))
    mutated = mutate_read(events, model_name, data.draw(st.integers(0, 100)))
    if mutated is None:
        return
    result = check_events(make_model(model_name), mutated)
    assert result.verdict == "illegal"
    cex = result.counterexample
    assert cex is not None
    assert cex.stuck in cex.window
    assert cex.stuck in cex.pending


@pytest.mark.parametrize("model_name", list(MODELS) + ["cas-register/mismatch"])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_verdict_agrees_with_brute_force(model_name: str, data: st.DataObject) -> None:
    """On arbitrary small histories (with info, fail, ties and keys) the
    search, with and without its reductions for unknown outcomes, answers
    what plain enumeration answers."""
    name, _, reading = model_name.partition("/")
    model = make_model(name, **({"fail_means_mismatch": True} if reading else {}))
    ops = data.draw(random_history(name))
    expected = "ok" if brute_force(model, ops) else "illegal"
    assert check_operations(model, ops).verdict == expected
    assert check_operations(model, ops, reductions=False).verdict == expected


@pytest.mark.parametrize("model_name", ["register", "cas-register", "cas-register/mismatch", "queue", "mutex"])
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_reductions_agree_on_info_heavy_histories(model_name: str, data: st.DataObject) -> None:
    """Half the operations with unknown outcomes, many of them alike: the
    search's two reductions (skip a no-op, take interchangeable ones in
    invoke order) change no verdict."""
    name, _, reading = model_name.partition("/")
    model = make_model(name, **({"fail_means_mismatch": True} if reading else {}))
    ops = data.draw(random_history(name, n_max=8, info_heavy=True))
    expected = "ok" if brute_force(model, ops) else "illegal"
    assert check_operations(model, ops).verdict == expected
    assert check_operations(model, ops, reductions=False).verdict == expected


def test_counterexample_names_the_stuck_read_and_its_window() -> None:
    lines = ["0 invoke write 1", "0 ok write 1",          # 1
             "1 invoke write 2", "2 invoke read",          # 2 is concurrent with the read
             "1 ok write 2", "2 ok read 3",                 # 3 was never written
             "0 invoke read", "0 ok read 2"]
    result = check_events(Register(), hist(*lines), source="h")
    cex = result.counterexample
    assert result.verdict == "illegal"
    assert cex is not None
    assert (cex.stuck.f, cex.stuck.output, cex.stuck.lines) == ("read", 3, (4, 6))
    assert [op.value for op in cex.prefix] == [1, 2], "the longest prefix: both writes"
    assert cex.states == (1, 2)
    assert {op.lines for op in cex.window} == {(3, 5), (4, 6)}
    assert [op.lines for op in cex.pending] == [(4, 6)]


def test_info_operations_stay_open_to_the_end() -> None:
    """An info write may take effect long after every other operation ended."""
    lines = ["0 invoke write 1", "0 info write"] + [
        line for i in range(20) for line in (f"{i + 1} invoke read", f"{i + 1} ok read null")
    ] + ["9 invoke read", "9 ok read 1"]
    assert check_events(Register(), hist(*lines)).verdict == "ok"
    assert check_events(Register(), hist(*lines, "9 invoke read", "9 ok read null")).verdict == "illegal"


def _hard_register(writers: int) -> list[Event]:
    """``writers`` concurrent writes of distinct values, then a read of a
    value none wrote: proving it illegal takes about 2**writers steps."""
    lines = [f"{p} invoke write {p}" for p in range(writers)]
    lines += [f"{p} ok write {p}" for p in range(writers)]
    lines += [f"{writers} invoke read", f"{writers} ok read -1"]
    return hist(*lines)


def test_timeout_gives_unknown_promptly() -> None:
    t0 = time.monotonic()
    result = check_events(Register(), _hard_register(24), timeout_s=0.2)
    assert result.verdict == "unknown"
    assert result.reason == "time limit"
    assert result.counterexample is None
    assert time.monotonic() - t0 < 5.0


def test_an_easy_illegal_key_is_found_beside_a_hard_one() -> None:
    """Keys are searched in turns (as Porcupine searches them in parallel):
    a key that needs millions of steps does not hide an illegal one."""
    hard = [Event(process=e.process, type=e.type, f=e.f, key="hard", value=e.value, time=e.time, line=e.line)
            for e in _hard_register(24)[:-1]]  # without the bad read: legal but slow to finish
    easy = hist("100 invoke write @easy 1", "100 ok write @easy 1", "101 invoke read @easy", "101 ok read @easy 2")
    events = hard + [Event(process=e.process, type=e.type, f=e.f, key=e.key, value=e.value, time=len(hard) + e.time,
                           line=len(hard) + e.line) for e in easy]
    result = check_events(Register(), events, timeout_s=30)
    assert result.verdict == "illegal"
    assert result.counterexample is not None
    assert result.counterexample.key == "easy"
    assert result.partitions == 2


def test_failed_and_unknown_reads_are_dropped() -> None:
    lines = ["0 invoke read", "0 fail read", "1 invoke read", "1 info read", "2 invoke write 1", "2 ok write 1"]
    result = check_events(Register(), hist(*lines))
    assert result.verdict == "ok"
    assert result.dropped == 2
    assert len(result.operations) == 3


def test_empty_history_is_linearizable() -> None:
    result = check_operations(Register(), [])
    assert result.verdict == "ok"
    assert result.partitions == 0


def test_operations_are_in_invoke_order_with_their_lines() -> None:
    ops = operations(hist("0 invoke write 1", "1 invoke read", "1 ok read 1", "0 ok write 1"))
    assert [(op.f, op.lines) for op in ops] == [("write", (1, 4)), ("read", (2, 3))]


def test_memory_bound_gives_unknown() -> None:
    result = check_events(Register(), _hard_register(20), configurations_max=5_000)
    assert result.verdict == "unknown"
    assert 5_000 < result.configurations < 5_000 + 2 * 1024
    assert result.reason == "more than 5000 configurations"


def test_why_sentence_names_the_read_the_state_and_what_was_concurrent() -> None:
    """The failing window's one sentence (issue 9, part 4)."""
    from synod.check import why_illegal
    model = Register()
    fresh = check_events(model, hist("0 invoke read", "0 ok read 3")).counterexample
    assert fresh is not None
    assert why_illegal(fresh, model) == (
        "Process 0's read returned 3, but the value was nil in the initial state (no operation could be "
        "linearized before it), and no operation concurrent with it is left that could change that.")
    stale = check_events(model, hist("0 invoke write 5", "0 ok write 5", "1 invoke write 4", "2 invoke read",
                                     "2 ok read 3", "1 ok write 4")).counterexample
    assert stale is not None
    assert why_illegal(stale, model).startswith(
        "Process 2's read returned 3, but the value was 4 after the longest linearizable prefix "
        "(#2: process 1 write 4 -> ok, lines 3-6), and no operation")


def test_unobserved_unknown_writes_are_pruned_and_observed_ones_kept() -> None:
    """KV.prune: an info append whose token no read contains can take
    effect after everything else, so it is dropped before the search; one a
    read saw is kept (and still constrains the order)."""
    from synod.check import KV

    base = ["0 invoke append @k \"[0.1]\"", "0 ok append @k \"[0.1]\"",
            "1 invoke append @k \"[1.1]\"", "1 info append @k \"[1.1]\"",
            "2 invoke append @k \"[2.1]\"", "2 info append @k \"[2.1]\"",
            "3 invoke get @k", "3 ok get @k \"[0.1][2.1]\""]
    r = check_events(KV(), hist(*base))
    assert r.verdict == "ok" and r.dropped == 1  # [1.1] pruned; [2.1] was read, so it stays
    plain = check_operations(KV(), operations(hist(*base)), reductions=False)
    assert plain.verdict == "ok" and plain.dropped == 0
    # A later read without the observed token is illegal either way.
    bad = [*base, "4 invoke get @k", "4 ok get @k \"[0.1]\""]
    assert check_events(KV(), hist(*bad)).verdict == "illegal"
    assert check_operations(KV(), operations(hist(*bad)), reductions=False).verdict == "illegal"
