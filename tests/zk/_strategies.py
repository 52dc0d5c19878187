"""Hypothesis strategies for synod.zk records, derived from their jute schema,
and the reference way to parse a byte stream one frame at a time."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from synod.zk import messages as m
from synod.zk.jute import INT_MAX, INT_MIN, LONG_MAX, LONG_MIN, record_schema

_text = st.text(max_size=12)
_SCALARS = {
    "int": st.one_of(st.integers(INT_MIN, INT_MAX), st.sampled_from([0, -1, 1, INT_MAX, INT_MIN])),
    "long": st.one_of(st.integers(LONG_MIN, LONG_MAX), st.sampled_from([0, -1, LONG_MAX, LONG_MIN])),
    "bool": st.booleans(),
    "buffer": st.one_of(st.none(), st.binary(max_size=24)),
    "ustring": st.one_of(_text, st.sampled_from(["/", "/a", "/a/b-0000000001", "é/∂", "world", "anyone"])),
}


def kind_strategy(kind: Any) -> st.SearchStrategy[Any]:
    if isinstance(kind, str):
        return _SCALARS[kind]
    if kind[0] == "vector":
        return st.lists(kind_strategy(kind[1]), max_size=3).map(tuple)
    return records(kind[1])


def records(cls: type) -> st.SearchStrategy[Any]:
    """Any record of class ``cls`` (multis and replies with their parts)."""
    if cls is m.MultiRequest:
        return st.lists(st.one_of(*[records(c) for c in m.MULTI_OPS.values()]), max_size=3).map(
            lambda ops: m.MultiRequest(ops=tuple(ops)))
    if cls is m.MultiReadRequest:
        return st.lists(st.one_of(*[records(c) for c in m.MULTI_READ_OPS.values()]), max_size=3).map(
            lambda ops: m.MultiReadRequest(ops=tuple(ops)))
    if cls is m.MultiResponse:
        return st.lists(st.one_of(*[records(c) for c in m.MULTI_RESULT_OPS]), max_size=3).map(
            lambda rs: m.MultiResponse(results=tuple(rs)))
    schema = record_schema(cls)
    return st.builds(cls, **{name: kind_strategy(kind) for name, kind in schema})


# Every request class taken after the ConnectRequest, and every response record.
SESSION_REQUESTS = sorted(m.REQUEST_OPS, key=lambda c: c.__name__)
RESPONSES = sorted({c for c in m.RESPONSE_TYPES.values() if c is not None}, key=lambda c: c.__name__)
session_requests = st.one_of(*[records(c) for c in SESSION_REQUESTS],
                             st.integers(INT_MIN, INT_MAX).filter(lambda op: op not in m.OP_REQUESTS).map(
                                 lambda op: m.UnimplementedRequest(type_=op)))
