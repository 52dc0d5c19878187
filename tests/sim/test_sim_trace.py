"""Trace lines (DESIGN.md section 5): fixed shape, messages rendered exactly as
the codec's ``to_jsonable`` renders them."""

from __future__ import annotations

import enum
import io
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from synod.core import Message, to_jsonable
from synod.sim import Tracer
from synod.sim.trace import jsonable


class Leaf(Message, tag="test.trace.Leaf"):
    name: str
    data: bytes


class Branch(Message, tag="test.trace.Branch"):
    leaves: tuple[Leaf, ...]
    extra: Any


class Color(enum.IntEnum):
    RED = 1


def test_lines_have_the_fixed_shape_and_go_to_both_sinks() -> None:
    out = io.StringIO()
    tracer = Tracer(out, keep=True)
    tracer.emit(1.23456789, "n1", "send", {"dst": "n2", "msg": Leaf(name="x", data=b"abc")})
    assert tracer.lines == [
        '{"t_ms":1.234568,"node":"n1","kind":"send","dst":"n2",'
        '"msg":{"type":"test.trace.Leaf","name":"x","data":{"bytes":3}}}'
    ]
    assert out.getvalue() == tracer.lines[0] + "\n"
    assert tracer.count == 1
    quiet = Tracer()
    quiet.emit(0.0, "n", "k", {})
    assert quiet.lines is None
    assert quiet.count == 1


def test_non_ascii_is_written_as_is() -> None:
    tracer = Tracer(keep=True)
    tracer.emit(0.0, "nœud", "note", {"text": "ünïcode"})
    assert tracer.lines == ['{"t_ms":0.0,"node":"nœud","kind":"note","text":"ünïcode"}']


_leaf = st.builds(Leaf, name=st.text(max_size=5), data=st.binary(max_size=5))
_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=5),
              st.binary(max_size=5), st.binary(max_size=5).map(memoryview), _leaf, st.just(Color.RED)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.one_of(st.text(max_size=3), st.integers()), inner, max_size=3),
        st.builds(Branch, leaves=st.lists(_leaf, max_size=2).map(tuple), extra=inner),
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(_values)
def test_jsonable_is_exactly_to_jsonable(value: Any) -> None:
    assert jsonable(value) == to_jsonable(value)
    tracer = Tracer(keep=True)
    tracer.emit(0.0, "n", "k", {"v": value})
    expected = json.dumps({"t_ms": 0.0, "node": "n", "kind": "k", "v": to_jsonable(value)},
                          separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    assert tracer.lines == [expected]


def test_unencodable_values_raise_and_the_tracer_keeps_working() -> None:
    tracer = Tracer(keep=True)
    value = [1.0, float("nan")]
    try:
        tracer.emit(0.0, "n", "k", {"v": value})
    except ValueError:
        pass
    else:  # pragma: no cover
        raise AssertionError("NaN was encoded")
    try:
        tracer.emit(0.0, "n", "k", {"v": {1, 2}})
    except TypeError:
        pass
    else:  # pragma: no cover
        raise AssertionError("a set was encoded")
    # The failed attempts left nothing behind in the shared encoder (its
    # circular-reference markers would otherwise keep the records alive).
    from synod.sim import trace

    assert getattr(trace, "_markers", {}) == {}
    value[1] = 2.0
    tracer.emit(0.0, "n", "k", {"v": value})
    assert tracer.lines == ['{"t_ms":0.0,"node":"n","kind":"k","v":[1.0,2.0]}']
