"""Each model on small hand-made histories, legal and illegal; every case
is also decided by the brute-force reference, which must agree."""

from __future__ import annotations

import re

import pytest
from tests.check._histories import brute_force, hist

from synod.check import HistoryError, check_events, make_model, operations
from synod.check.models import ILLEGAL, MODELS

# (model, description, lines, linearizable?)
CASES = [
    ("register", "a read sees a concurrent write",
     ["0 invoke write 1", "1 invoke read", "1 ok read 1", "0 ok write 1"], True),
    ("register", "a read may still see the old value during a write",
     ["0 invoke write 1", "1 invoke read", "1 ok read null", "0 ok write 1"], True),
    ("register", "a stale read after the write completed",
     ["0 invoke write 1", "0 ok write 1", "1 invoke read", "1 ok read null"], False),
    ("register", "reads go back in time (new then old)",
     ["0 invoke write 1", "1 invoke read", "1 ok read 1", "2 invoke read", "2 ok read null", "0 ok write 1"],
     False),
    ("register", "a read of a value never written",
     ["0 invoke write 1", "0 ok write 1", "1 invoke read", "1 ok read 2"], False),
    ("register", "an info write may have happened",
     ["0 invoke write 1", "0 info write", "1 invoke read", "1 ok read 1"], True),
    ("register", "an info write may not have happened",
     ["0 invoke write 1", "0 info write", "1 invoke read", "1 ok read null"], True),
    ("register", "an info write happens at most once",
     ["2 invoke write 2", "2 ok write 2", "0 invoke write 1", "0 info write", "1 invoke read", "1 ok read 1",
      "3 invoke write 2", "3 ok write 2", "1 invoke read", "1 ok read 1"], False),
    ("register", "info writes take effect in either order",
     ["0 invoke write 1", "0 info write", "1 invoke write 2", "1 info write", "2 invoke read", "2 ok read 2",
      "2 invoke read", "2 ok read 1"], True),
    ("register", "two alike info writes can both take effect",
     ["0 invoke write 1", "0 info write", "1 invoke write 1", "1 info write", "2 invoke read", "2 ok read 1",
      "3 invoke write 2", "3 ok write 2", "2 invoke read", "2 ok read 1"], True),
    ("register", "two alike info writes cannot take effect three times",
     ["0 invoke write 1", "0 info write", "1 invoke write 1", "1 info write", "2 invoke read", "2 ok read 1",
      "3 invoke write 2", "3 ok write 2", "2 invoke read", "2 ok read 1", "3 invoke write 2", "3 ok write 2",
      "2 invoke read", "2 ok read 1"], False),
    ("register", "a failed write did not happen",
     ["0 invoke write 1", "0 fail write", "1 invoke read", "1 ok read 1"], False),
    ("register", "touching intervals count as concurrent",
     ["0 invoke write 1", "1 invoke read", "0 ok write 1", "1 ok read null"], True),
    ("register", "keys are independent registers",
     ["0 invoke write @a 1", "0 ok write @a 1", "1 invoke read @b", "1 ok read @b null"], True),
    ("cas-register", "cas applies on the expected value",
     ["0 invoke write 1", "0 ok write 1", "1 invoke cas [1, 2]", "1 ok cas [1, 2]", "2 invoke read",
      "2 ok read 2"], True),
    ("cas-register", "an ok cas on the wrong value",
     ["0 invoke write 1", "0 ok write 1", "1 invoke cas [3, 2]", "1 ok cas [3, 2]"], False),
    ("cas-register", "a failed cas did not happen (Jepsen's reading)",
     ["0 invoke write 1", "0 ok write 1", "1 invoke cas [1, 2]", "1 fail cas [1, 2]", "2 invoke read",
      "2 ok read 1"], True),
    ("cas-register", "a lost update: two cas from the same value both succeed",
     ["0 invoke write 0", "0 ok write 0", "1 invoke cas [0, 1]", "2 invoke cas [0, 2]", "1 ok cas [0, 1]",
      "2 ok cas [0, 2]"], False),
    ("cas-register", "an info cas may apply later",
     ["0 invoke write 0", "0 ok write 0", "1 invoke cas [0, 5]", "1 info cas", "2 invoke read", "2 ok read 0",
      "2 invoke read", "2 ok read 5"], True),
    ("cas-register", "an info cas applies only on its expected value",
     ["0 invoke write 0", "0 ok write 0", "1 invoke cas [3, 5]", "1 info cas", "2 invoke read", "2 ok read 5"],
     False),
    ("kv", "get, put, append by key",
     ['0 invoke put @x "a"', '0 ok put @x "a"', '1 invoke append @x "b"', '2 invoke get @x',
      '2 ok get @x "ab"', '1 ok append @x "b"', '3 invoke get @y', '3 ok get @y ""'], True),
    ("kv", "a missing key reads as the empty string (or null)",
     ['0 invoke get @x', '0 ok get @x null', '0 invoke get @y', '0 ok get @y ""'], True),
    ("kv", "appends seen out of order",
     ['0 invoke append @x "a"', '0 ok append @x "a"', '1 invoke append @x "b"', '1 ok append @x "b"',
      '2 invoke get @x', '2 ok get @x "ba"'], False),
    ("kv", "a get on one key sees a put to another",
     ['0 invoke put @x "a"', '0 ok put @x "a"', '1 invoke get @y', '1 ok get @y "a"'], False),
    ("set", "a read sees the adds before it, and maybe concurrent ones",
     ["0 invoke add 1", "0 ok add 1", "0 invoke add 2", "1 invoke read", "1 ok read [1]", "0 ok add 2",
      "1 invoke read", "1 ok read [2, 1]"], True),
    ("set", "an add lost after it completed",
     ["0 invoke add 1", "0 ok add 1", "1 invoke read", "1 ok read []"], False),
    ("set", "an element that comes and goes",
     ["0 invoke add 1", "1 invoke read", "1 ok read [1]", "1 invoke read", "1 ok read []", "0 ok add 1"], False),
    ("queue", "FIFO order",
     ["0 invoke enqueue 1", "0 ok enqueue 1", "0 invoke enqueue 2", "0 ok enqueue 2", "1 invoke dequeue",
      "1 ok dequeue 1", "1 invoke dequeue", "1 ok dequeue 2", "1 invoke dequeue", "1 ok dequeue null"], True),
    ("queue", "concurrent enqueues may go either way",
     ["0 invoke enqueue 1", "2 invoke enqueue 2", "0 ok enqueue 1", "2 ok enqueue 2", "1 invoke dequeue",
      "1 ok dequeue 2"], True),
    ("queue", "LIFO is not FIFO",
     ["0 invoke enqueue 1", "0 ok enqueue 1", "0 invoke enqueue 2", "0 ok enqueue 2", "1 invoke dequeue",
      "1 ok dequeue 2"], False),
    ("queue", "an element dequeued twice",
     ["0 invoke enqueue 1", "0 ok enqueue 1", "1 invoke dequeue", "1 ok dequeue 1", "2 invoke dequeue",
      "2 ok dequeue 1"], False),
    ("mutex", "acquire, release, acquire",
     ["0 invoke acquire", "0 ok acquire", "0 invoke release", "1 invoke acquire", "0 ok release",
      "1 ok acquire"], True),
    ("mutex", "two holders at once",
     ["0 invoke acquire", "0 ok acquire", "1 invoke acquire", "1 ok acquire"], False),
    ("mutex", "an info acquire that never happened does not hold the lock",
     ["0 invoke acquire", "0 info acquire", "1 invoke acquire", "1 ok acquire"], True),
    ("mutex", "a release of a free lock",
     ["0 invoke release", "0 ok release"], False),
]


@pytest.mark.parametrize("model_name, lines, expected",
                         [pytest.param(m, lines, e, id=f"{m}: {d}") for m, d, lines, e in CASES])
def test_hand_made_history(model_name: str, lines: list[str], expected: bool) -> None:
    model = make_model(model_name)
    ops = operations(hist(*lines))
    assert brute_force(model, ops) is expected, "the reference disagrees with the case itself"
    result = check_events(model, hist(*lines))
    assert result.verdict == ("ok" if expected else "illegal")
    assert (result.counterexample is None) is expected


def test_every_model_has_cases() -> None:
    assert {m for m, *_ in CASES} == set(MODELS)
    for name in MODELS:
        assert {e for m, _, _, e in CASES if m == name} == {True, False}, name


def test_failed_cas_as_a_mismatch_response() -> None:
    """Porcupine's reading of Jepsen's etcd logs: a failed cas compared and
    found another value, so it constrains the history (jepsen/EXPECTED.md)."""
    lines = ["0 invoke write 1", "0 ok write 1", "1 invoke cas [1, 2]", "1 fail cas [1, 2]"]
    assert check_events(make_model("cas-register"), hist(*lines)).verdict == "ok"
    strict = make_model("cas-register", fail_means_mismatch=True)
    assert check_events(strict, hist(*lines)).verdict == "illegal"
    assert brute_force(strict, operations(hist(*lines))) is False
    concurrent = ["0 invoke write 1", "1 invoke cas [1, 2]", "1 fail cas [1, 2]", "0 ok write 1"]
    assert check_events(strict, hist(*concurrent)).verdict == "ok", "the cas may precede the write"


@pytest.mark.parametrize("model_name, line, message", [
    ("register", "0 invoke cas [1, 2]", "register has no operation 'cas'"),
    ("cas-register", "0 invoke cas 3", "cas value must be [old, new]"),
    ("kv", "0 invoke put @x 3", "put value must be a string"),
    ("mutex", "0 invoke lock", "mutex has no operation 'lock'"),
])
def test_operations_the_model_does_not_know_are_errors(model_name: str, line: str, message: str) -> None:
    with pytest.raises(HistoryError, match=re.escape(message)) as e:
        check_events(make_model(model_name), hist("0 invoke write 0", "0 ok write 0", line)
                     if model_name == "cas-register" else hist(line), source="h")
    assert e.value.line >= 1


def test_compiled_steppers_agree_with_step() -> None:
    """The fast closures the search uses compute what ``step`` says, over
    every small state each model reaches."""
    states = {"register": [None, 0, 1], "cas-register": [None, 0, 1], "kv": ["", "a", "ab"],
              "set": [frozenset(), frozenset({0}), frozenset({0, 1})], "queue": [(), (0,), (1, 0)],
              "mutex": [False, True]}
    lines = {"register": ["read 0", "read null", "write 1"], "cas-register": ["cas [0, 1]", "read 1"],
             "kv": ['get "a"', 'put "b"', 'append "b"', "get null"], "set": ["add 1", "read [0]", "read []"],
             "queue": ["enqueue 2", "dequeue 0", "dequeue null"], "mutex": ["acquire", "release"]}
    for name, spec in lines.items():
        model = make_model(name)
        for text in spec:
            f, _, value = text.partition(" ")
            is_read = f in model.read_functions or f == "dequeue"
            for kind in ("ok", "info"):
                evs = hist(f"0 invoke {f} {'null' if is_read else value}".strip(),
                           f"0 {kind} {f} {value}".strip())
                (op,) = operations(evs)
                step = model.compile(op)
                for s in states[name]:
                    want = model.step(s, op)
                    if step is None:
                        assert want == s, (name, text, kind, s)
                    else:
                        got = step(s)
                        assert got is ILLEGAL if want is ILLEGAL else got == want, (name, text, kind, s)


@pytest.mark.parametrize("model_name", ["register", "cas-register"])
def test_registers_start_at_the_initial_value(model_name: str) -> None:
    """Jepsen's cas-register tests start at 0, not nil: a first read of 0,
    or a cas from 0, is legal only when the register starts at 0."""
    lines = ["0 invoke read", "0 ok read 0", "1 invoke write 2", "1 ok write 2"]
    if model_name == "cas-register":
        lines = ["0 invoke cas [0, 1]", "0 ok cas [0, 1]", "1 invoke read", "1 ok read 1"]
    at_nil = make_model(model_name)
    at_zero = make_model(model_name, initial=0)
    assert at_zero.init() == 0
    assert check_events(at_zero, hist(*lines)).verdict == "ok"
    assert brute_force(at_zero, operations(hist(*lines))) is True
    result = check_events(at_nil, hist(*lines))
    assert result.verdict == "illegal"
    assert result.counterexample is not None
    assert result.counterexample.initial_state is None
    assert check_events(make_model(model_name, initial="x"), hist("0 invoke read", '0 ok read "x"')).ok
