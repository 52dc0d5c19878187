"""Pairing sends with their receipts and drops (rules in synod.viz._pairing)."""

from __future__ import annotations

from tests.viz._traces import PING, PONG, drop, ends, line, model_of, recv, send

from synod.viz import message_type


def test_a_call_and_its_reply_pair_by_corr() -> None:
    m = model_of(
        send(0.0, "a", "b", PING, corr=1),
        recv(2.0, "b", "a", PING, corr=1),
        send(2.0, "b", "a", PONG, corr=-1),
        recv(5.0, "a", "b", PONG, corr=-1),
    )
    assert ends(m) == [("t.Ping", 0.0, 2.0, "delivered", False), ("t.Pong", 2.0, 5.0, "delivered", False)]
    assert [(a.src, a.dst, a.corr) for a in m.arrows] == [("a", "b", 1), ("b", "a", -1)]
    assert m.pairing.orphans == []


def test_identical_messages_pair_first_in_first_out() -> None:
    m = model_of(
        send(0.0, "a", "b", PING), send(1.0, "a", "b", PING),
        recv(3.0, "b", "a", PING), recv(4.0, "b", "a", PING),
    )
    assert [(a.t_send_ms, a.t_end_ms) for a in m.arrows] == [(0.0, 3.0), (1.0, 4.0)]


def test_reordered_messages_pair_by_content() -> None:
    """The network reorders: the second send arrives first; its fields say so."""
    first, second = {"type": "t.Append", "index": 1}, {"type": "t.Append", "index": 2}
    m = model_of(
        send(0.0, "a", "b", first), send(1.0, "a", "b", second),
        recv(3.0, "b", "a", second), recv(9.0, "b", "a", first),
    )
    assert [(a.t_send_ms, a.t_end_ms) for a in m.arrows] == [(0.0, 9.0), (1.0, 3.0)]


def test_a_drop_right_after_its_send_is_a_loss_at_the_sender() -> None:
    m = model_of(
        send(0.0, "a", "b", PING),                 # in flight, arrives below
        send(5.0, "a", "b", PING), drop(5.0, "a", "b", "partition"),
        recv(6.0, "b", "a", PING),
    )
    assert ends(m) == [("t.Ping", 0.0, 6.0, "delivered", False), ("t.Ping", 5.0, 5.0, "dropped", False)]
    assert [a.at_send for a in m.arrows] == [False, True]
    assert m.arrows[1].reason == "partition"


def test_a_node_down_drop_ends_the_oldest_message_on_the_link() -> None:
    """A drop written later (even on the very next line) stands in for a
    receipt: the simulator drops on arrival at a crashed node."""
    m = model_of(
        send(0.0, "a", "b", PING, corr=3),
        line(1.0, "b", "crash"),
        drop(4.0, "a", "b", "node down", corr=3),
        send(10.0, "a", "b", PONG, corr=4),
        drop(12.0, "a", "b", "node down", corr=4),   # the line right after its send, but later
    )
    assert ends(m) == [("t.Ping", 0.0, 4.0, "dropped", False), ("t.Pong", 10.0, 12.0, "dropped", False)]
    assert [a.at_send for a in m.arrows] == [False, False]
    assert m.arrows[0].reason == "node down"


def test_a_duplicate_arrival_is_a_second_arrow_from_the_same_send() -> None:
    m = model_of(
        send(0.0, "a", "b", PING),
        recv(2.0, "b", "a", PING),
        recv(3.0, "b", "a", PING),
        drop(4.0, "a", "b", "node down"),   # a third copy, reaching b while down
    )
    assert ends(m) == [
        ("t.Ping", 0.0, 2.0, "delivered", False),
        ("t.Ping", 0.0, 3.0, "delivered", True),
        ("t.Ping", 0.0, 4.0, "dropped", True),
    ]
    assert all(a.send is m.arrows[0].send for a in m.arrows)


def test_in_flight_and_orphans() -> None:
    m = model_of(
        recv(1.0, "b", "a", PING),               # its send is not in the trace
        drop(2.0, "a", "c", "loss", corr=9),     # nor is this one's
        send(3.0, "a", "b", PONG),               # never arrives
        line(4.0, "a", "send", corr=0),          # no dst: not a message
    )
    assert ends(m) == [("t.Pong", 3.0, None, "in_flight", False)]
    assert [(r.kind, r.t_ms) for r in m.pairing.orphans] == [("recv", 1.0), ("drop", 2.0), ("send", 4.0)]
    assert [r.kind for r in m.points] == ["recv", "drop", "send"]  # drawn as points


def test_a_restarted_node_reuses_corr_numbers() -> None:
    """Call ids restart at 1 with each incarnation; a late reply to the old
    call and the new call's reply are told apart by content and order."""
    old_reply, new_reply = {"type": "t.Ok", "epoch": 0}, {"type": "t.Ok", "epoch": 1}
    m = model_of(
        send(0.0, "w", "c", PING, corr=1),
        recv(1.0, "c", "w", PING, corr=1),
        send(1.0, "c", "w", old_reply, corr=-1),
        line(1.5, "w", "crash"), line(2.0, "w", "restart", incarnation=1),
        send(2.0, "w", "c", PING, corr=1),
        recv(3.0, "c", "w", PING, corr=1),
        send(3.0, "c", "w", new_reply, corr=-1),
        recv(4.0, "w", "c", new_reply, corr=-1),
        recv(6.0, "w", "c", old_reply, corr=-1),
    )
    assert [(a.t_send_ms, a.t_end_ms) for a in m.arrows] == [(0.0, 1.0), (1.0, 6.0), (2.0, 3.0), (3.0, 4.0)]


def test_message_type_of_any_rendering() -> None:
    assert message_type({"type": "mr.MapTask", "task_id": 1}) == "mr.MapTask"
    assert message_type({"x": 1}) == "object"
    assert message_type([1, 2]) == "list"
    assert message_type(None) == "none"
