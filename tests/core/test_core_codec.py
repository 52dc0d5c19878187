"""The codec (DESIGN.md section 3): round trips, strict decoding, fuzzing."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synod.core import (
    LocalProtocolError,
    Message,
    RemoteProtocolError,
    decode,
    encode,
    encoded_size_bytes,
    message_fields,
    message_tag,
    registered_types,
    to_jsonable,
)


class Inner(Message, tag="test.codec.Inner"):
    key: str
    value: int


class Outer(Message, tag="test.codec.Outer"):
    inner: Inner
    items: list[Inner]
    pair: tuple[int, str]
    seq: tuple[int, ...]
    table: dict[str, Inner]
    counts: dict[int, list[str]]
    maybe: Inner | None
    blob: bytes
    flag: bool
    ratio: float
    anything: Any


class Empty(Message, tag="test.codec.Empty"):
    pass


class Tree(Message, tag="test.codec.Tree"):
    label: str
    children: tuple[Tree, ...]


def _outer(**over: Any) -> Outer:
    fields: dict[str, Any] = dict(
        inner=Inner(key="a", value=1),
        items=[Inner(key="b", value=2), Inner(key="c", value=-3)],
        pair=(7, "seven"),
        seq=(1, 2, 3),
        table={"x": Inner(key="x", value=10)},
        counts={1: ["one"], 2: []},
        maybe=None,
        blob=b"\x00\xff",
        flag=True,
        ratio=0.5,
        anything={"nested": [1, "deep", None]},
    )
    fields.update(over)
    return Outer(**fields)


def _frame(tag: str, *fields: Any) -> bytes:
    """A hand-made message frame: the array [tag, fields...]."""
    return msgpack.packb([tag, *fields], use_bin_type=True)


# -- round trips ------------------------------------------------------------------

def test_nested_message_round_trips_with_exact_types() -> None:
    msg = _outer(maybe=Inner(key="m", value=5))
    out = decode(encode(msg), Message)
    assert out == msg
    assert type(out) is Outer
    assert type(out.pair) is tuple  # msgpack arrays come back as the annotated kind
    assert type(out.seq) is tuple
    assert type(out.items) is list
    assert type(out.maybe) is Inner


def test_optional_field_round_trips_none_and_a_value() -> None:
    assert decode(encode(_outer(maybe=None)), Outer).maybe is None
    assert decode(encode(_outer(maybe=Inner(key="k", value=1))), Outer).maybe == Inner(key="k", value=1)


def test_float_field_accepts_an_int_on_the_wire() -> None:
    out = decode(_frame("test.codec.Outer", *_fields_of(_outer(), ratio=3)), Message)
    assert out.ratio == 3.0
    assert type(out.ratio) is float


def test_recursive_message_and_plain_structures_holding_messages() -> None:
    tree = Tree(label="root", children=(Tree(label="a", children=()),
                                        Tree(label="b", children=(Tree(label="c", children=()),))))
    assert decode(encode(tree), Message) == tree
    plain = [Empty(), {"k": Inner(key="v", value=1)}, 3, "s", None]
    assert decode(encode(plain), tuple[Empty, dict[str, Inner], int, str, None]) == tuple(plain)
    # Without a type, messages come back as their arrays: plain data only.
    assert decode(encode(plain)) == [["test.codec.Empty"], {"k": ["test.codec.Inner", "v", 1]}, 3, "s", None]


def test_message_inside_a_larger_type_is_any_registered_message() -> None:
    envelope = tuple[str, int, Message]
    assert decode(encode(["n1", 3, Inner(key="k", value=1)]), envelope) == ("n1", 3, Inner(key="k", value=1))
    assert decode(encode(["n1", 3, Empty()]), envelope)[2] == Empty()
    with pytest.raises(RemoteProtocolError):
        decode(encode(["n1", 3, {"not": "a message"}]), envelope)


def test_messages_are_frozen_slotted_keyword_only() -> None:
    msg = Inner(key="a", value=1)
    with pytest.raises(AttributeError):
        msg.value = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        Inner("a", 1)  # type: ignore[misc]
    assert not hasattr(msg, "__dict__")


def test_tags_sizes_and_registry() -> None:
    msg = _outer()
    assert message_tag(msg) == "test.codec.Outer"
    assert message_tag(Outer) == "test.codec.Outer"
    assert registered_types()["test.codec.Inner"] is Inner
    assert message_fields(Inner) == ("key", "value")
    assert encoded_size_bytes(msg) == len(encode(msg))
    assert encoded_size_bytes(Inner(key="a" * 1000, value=1)) > 1000


def test_to_jsonable_is_a_json_view() -> None:
    assert to_jsonable(Inner(key="a", value=1)) == {"type": "test.codec.Inner", "key": "a", "value": 1}
    assert to_jsonable(_outer())["blob"] == {"bytes": 2}
    assert to_jsonable(memoryview(b"abc")[1:]) == {"bytes": 2}   # a bytes field decoded as a view of its frame
    assert to_jsonable(_outer())["counts"] == {"1": ["one"], "2": []}


def test_a_tag_cannot_be_registered_twice() -> None:
    with pytest.raises(LocalProtocolError, match="registered twice"):
        class Again(Message, tag="test.codec.Inner"):
            x: int
    assert registered_types()["test.codec.Inner"] is Inner  # the first class keeps the tag


def test_encoding_an_unregistered_object_is_a_local_error() -> None:
    class NotAMessage:
        pass

    with pytest.raises(LocalProtocolError):
        encode(NotAMessage())
    with pytest.raises(LocalProtocolError):
        encode(Inner(key="a", value=2**70))  # msgpack ints stop at 64 bits


# -- strict decoding ------------------------------------------------------------------

def _fields_of(msg: Any, **over: Any) -> list[Any]:
    values = {name: getattr(msg, name) for name in message_fields(msg)}
    values.update(over)
    return [_wire(v) for v in values.values()]


def _wire(v: Any) -> Any:
    """What msgpack carries for ``v`` (messages as nested [tag, ...] arrays)."""
    return msgpack.unpackb(encode(v), raw=False, strict_map_key=False)


def test_the_hand_made_frame_helper_builds_valid_frames() -> None:
    assert decode(_frame("test.codec.Inner", "k", 1), Message) == Inner(key="k", value=1)
    assert decode(_frame("test.codec.Outer", *_fields_of(_outer())), Message) == _outer()


@pytest.mark.parametrize("frame", [
    _frame("test.codec.NoSuchTag", 1),
    _frame("test.codec.Inner", "k"),                 # too few fields
    _frame("test.codec.Inner", "k", 1, 2),           # too many fields
    _frame("test.codec.Inner", 1, 1),                # key: int for str
    _frame("test.codec.Inner", "k", "1"),            # value: str for int
    _frame("test.codec.Inner", "k", True),           # bool is not int
    _frame("test.codec.Inner", "k", 1.5),            # float is not int
    _frame("test.codec.Empty", None),
])
def test_bad_frames_raise_remote_protocol_error(frame: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        decode(frame, Message)


@pytest.mark.parametrize("field,value", [
    ("inner", "not a message"),
    ("items", [1]),
    ("items", "not a list"),
    ("pair", [1]),                 # fixed tuple of 2
    ("pair", ["1", "one"]),
    ("seq", [1, "2"]),
    ("table", {"x": 1}),
    ("table", [1, 2]),
    ("counts", {"1": ["one"]}),    # key must be int
    ("maybe", 3),
    ("blob", "text, not bytes"),
    ("flag", 1),
    ("ratio", "0.5"),
])
def test_wrong_field_types_raise_remote_protocol_error(field: str, value: Any) -> None:
    with pytest.raises(RemoteProtocolError, match=field):
        decode(_frame("test.codec.Outer", *_fields_of(_outer(), **{field: value})), Message)


def test_a_nested_message_of_the_wrong_class_is_rejected() -> None:
    wrong = _wire(Empty())
    with pytest.raises(RemoteProtocolError):
        decode(_frame("test.codec.Outer", *_fields_of(_outer(), inner=wrong)), Message)


def test_oversize_frame_is_rejected_before_decoding() -> None:
    data = encode(_outer())
    assert decode(data, Outer, frame_size_bytes_max=len(data)) == _outer()
    with pytest.raises(RemoteProtocolError, match="exceeds"):
        decode(data, Outer, frame_size_bytes_max=len(data) - 1)


@pytest.mark.parametrize("data", [
    b"",
    b"\xc1",                                                  # never-used msgpack byte
    encode(Inner(key="a", value=1)) + b"\x00",                # trailing bytes
    encode(Inner(key="a", value=1))[:-1],                     # truncated
    msgpack.packb(msgpack.ExtType(7, b"")),                   # an extension type
    msgpack.packb({"a": 1}),                                  # not [tag, ...]
    msgpack.packb([]),
    msgpack.packb([5, 1]),                                    # tag not a string
    msgpack.packb(None),
])
def test_malformed_bytes_raise_remote_protocol_error(data: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        decode(data, Message)


# -- property tests ---------------------------------------------------------------------

@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=256))
def test_random_bytes_decode_or_raise_remote_protocol_error(data: bytes) -> None:
    for type_ in (Message, Any):
        try:
            out = decode(data, type_)
        except RemoteProtocolError:
            continue
        if type_ is Message:
            assert isinstance(out, Message)


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**64 - 1),
                     st.floats(allow_nan=False), st.text(max_size=8), st.binary(max_size=8))
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=4), inner, max_size=4)),
    max_leaves=12)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["test.codec.Inner", "test.codec.Outer", "test.codec.Tree",
                        "test.codec.Empty", "test.codec.Missing"]),
       st.lists(_values, max_size=12))
def test_random_fields_under_a_real_tag_decode_or_raise(tag: str, fields: list[Any]) -> None:
    """Structured garbage: a well-formed frame with random field values gives
    either an instance of the tagged class or a RemoteProtocolError."""
    try:
        out = decode(_frame(tag, *fields), Message)
    except RemoteProtocolError:
        return
    assert type(out) is registered_types()[tag]


_inner = st.builds(Inner, key=st.text(max_size=6), value=st.integers(-2**63, 2**63 - 1))


@settings(max_examples=200, deadline=None)
@given(st.builds(
    Outer,
    inner=_inner,
    items=st.lists(_inner, max_size=3),
    pair=st.tuples(st.integers(-100, 100), st.text(max_size=4)),
    seq=st.lists(st.integers(0, 10**6), max_size=5).map(tuple),
    table=st.dictionaries(st.text(max_size=4), _inner, max_size=3),
    counts=st.dictionaries(st.integers(-5, 5), st.lists(st.text(max_size=3), max_size=2), max_size=3),
    maybe=st.none() | _inner,
    blob=st.binary(max_size=16),
    flag=st.booleans(),
    ratio=st.floats(allow_nan=False),
    anything=_values,
))
def test_any_valid_outer_round_trips(msg: Outer) -> None:
    assert decode(encode(msg), Message) == msg


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_flipped_byte_in_a_valid_frame_decodes_or_raises(data: st.DataObject) -> None:
    frame = bytearray(encode(_outer()))
    i = data.draw(st.integers(0, len(frame) - 1))
    frame[i] = data.draw(st.integers(0, 255))
    try:
        out = decode(bytes(frame), Message)
    except RemoteProtocolError:
        return
    assert isinstance(out, Message)
