"""synod.check.sequential: sequential consistency with FIFO client order
(ZooKeeper's plain reads)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synod.check.sequential import READ, WRITE, ClientOp, OrderedWrite, check_sequential


def _w(pos: int, key: str, value: object) -> OrderedWrite:
    return OrderedWrite(pos, key, value)


def test_reads_that_move_forward_are_fine_and_a_read_of_the_past_is_not() -> None:
    writes = [_w(1, "x", 1), _w(2, "x", 2), _w(3, "y", 1)]
    fine = {"a": [ClientOp(kind=READ, key="x", value=1), ClientOp(kind=READ, key="x", value=2),
                  ClientOp(kind=READ, key="y", value=1)],
            "b": [ClientOp(kind=READ, key="y", value=None), ClientOp(kind=READ, key="x", value=2)]}
    assert check_sequential(writes, fine).ok
    back = {"a": [ClientOp(kind=READ, key="y", value=1), ClientOp(kind=READ, key="x", value=1, label="line 7")]}
    r = check_sequential(writes, back)
    assert not r.ok
    assert "line 7" in r.violations[0] and "returned 1" in r.violations[0]


def test_a_client_reads_its_own_writes() -> None:
    writes = [_w(1, "x", "a"), _w(2, "x", "b")]
    own = {"c": [ClientOp(kind=WRITE, key="x", value="b", position=2), ClientOp(kind=READ, key="x", value="a")]}
    assert not check_sequential(writes, own).ok
    unknown = {"c": [ClientOp(kind=WRITE, key="x", value="b", position=None), ClientOp(kind=READ, key="x", value="a")]}
    assert check_sequential(writes, unknown).ok   # a write whose outcome it never learned moves nothing


def test_a_value_written_twice_can_be_read_at_either() -> None:
    writes = [_w(1, "x", 1), _w(2, "x", 2), _w(3, "x", 1)]
    h = {"c": [ClientOp(kind=READ, key="x", value=2), ClientOp(kind=READ, key="x", value=1)]}
    assert check_sequential(writes, h).ok


def test_a_write_of_another_key_at_a_position_is_refused() -> None:
    with pytest.raises(ValueError):
        check_sequential([_w(1, "x", 1)], {"c": [ClientOp(kind=WRITE, key="y", value=1, position=1)]})


@st.composite
def _histories(draw: st.DrawFn) -> tuple[list[OrderedWrite], dict[str, list[ClientOp]], bool]:
    """A write order, and clients that read at non-decreasing points (legal),
    or one read moved to a point before its client's floor (maybe illegal)."""
    keys = ["k0", "k1", "k2"]
    n = draw(st.integers(1, 30))
    writes = [_w(p, draw(st.sampled_from(keys)), draw(st.integers(0, 3))) for p in range(1, n + 1)]

    def value_at(key: str, point: int) -> object:
        v = None
        for w in writes:
            if w.position <= point and w.key == key:
                v = w.value
        return v

    clients: dict[str, list[ClientOp]] = {}
    for c in range(draw(st.integers(1, 4))):
        points = sorted(draw(st.lists(st.integers(0, n), max_size=10)))
        ops = []
        for p in points:
            key = draw(st.sampled_from(keys))
            ops.append(ClientOp(kind=READ, key=key, value=value_at(key, p)))
        clients[f"c{c}"] = ops
    return writes, clients, True


@given(_histories())
@settings(max_examples=300)
def test_reads_at_non_decreasing_points_always_pass(h: tuple) -> None:
    writes, clients, _ = h
    assert check_sequential(writes, clients).ok


@given(_histories(), st.data())
@settings(max_examples=300)
def test_a_read_the_greedy_placement_cannot_reach_fails(h: tuple, data: st.DataObject) -> None:
    """Append to a client a read of a value its key held only strictly before
    the client's last read point: the history becomes illegal."""
    writes, clients, _ = h
    w = data.draw(st.sampled_from(writes))
    later = [x for x in writes if x.key == w.key and x.position > w.position and x.value != w.value]
    if not later:
        return
    # the client first reads the later value, then the older one: never legal
    # unless the older value comes back later in the order
    if any(x.key == w.key and x.position > later[0].position and x.value == w.value for x in writes):
        return
    if later[0].value is None or any(x.key == w.key and x.position < w.position and x.value == later[0].value
                                     for x in writes):
        return  # the newer value was also held before: it could be read there first
    clients = {"z": [ClientOp(kind=READ, key=w.key, value=later[0].value), ClientOp(kind=READ, key=w.key, value=w.value)]}
    assert not check_sequential(writes, clients).ok
