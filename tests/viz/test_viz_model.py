"""The trace model: lanes, down and paused intervals, states, client
operations, nemesis bands (synod.viz._model's docstring)."""

from __future__ import annotations

from tests.viz._traces import PING, line, model_of, recv, send

from synod.viz import nemesis_label


def test_lanes_nemesis_first_then_nodes_then_clients_in_natural_order() -> None:
    m = model_of(
        line(0.0, "n10", "timer", name="t"),
        line(0.0, "c1", "client_op", type="invoke", f="read", value=None),
        line(0.0, "nemesis", "nemesis", action="crash", target="n2"),
        send(0.0, "n2", "n9", PING),                       # n9 only ever receives
        line(0.0, "coordinator", "job_start"),
    )
    assert m.lanes == ["nemesis", "coordinator", "n2", "n9", "n10", "c1"]


def test_down_from_crash_or_exit_until_restart_or_start() -> None:
    m = model_of(
        line(0.0, "a", "timer", name="t"),
        line(10.0, "a", "crash"),
        line(20.0, "a", "restart", incarnation=1),
        line(30.0, "a", "exit", code=1),
        line(35.0, "a", "start", pid=7),                  # a real process's restart
        line(40.0, "a", "crash"),
        line(50.0, "b", "timer", name="t"),
    )
    assert m.down("a") == [(10.0, 20.0), (30.0, 35.0), (40.0, 50.0)]
    assert [iv.open for iv in m.intervals] == [False, False, True]
    assert m.down("b") == []
    assert (m.start_ms, m.end_ms) == (0.0, 50.0)


def test_paused_until_resume_or_crash() -> None:
    m = model_of(
        line(0.0, "a", "pause"), line(5.0, "a", "resume"),
        line(6.0, "a", "pause"), line(8.0, "a", "crash"), line(9.0, "a", "restart"),
    )
    assert m.paused("a") == [(0.0, 5.0), (6.0, 8.0)]
    assert m.down("a") == [(8.0, 9.0)]


def test_state_spans_last_until_the_next_state_or_a_crash() -> None:
    m = model_of(
        line(0.0, "n1", "state", role="follower", term=1),
        line(5.0, "n1", "state", role="candidate", term=2),
        line(7.0, "n1", "state", role="leader", term=2),
        line(9.0, "n1", "crash"),
        line(12.0, "n1", "restart"),
        line(13.0, "n1", "state", role="follower", term=2),
        line(20.0, "n2", "state", phase="syncing"),      # no role: the first other field
    )
    assert [(s.node, s.start_ms, s.end_ms, s.role, s.term) for s in m.states] == [
        ("n1", 0.0, 5.0, "follower", 1), ("n1", 5.0, 7.0, "candidate", 2), ("n1", 7.0, 9.0, "leader", 2),
        ("n1", 13.0, 20.0, "follower", 2), ("n2", 20.0, 20.0, "syncing", None),
    ]
    assert all(r.kind != "state" for r in m.points)


def test_client_ops_pair_per_process_and_stay_pending_without_completion() -> None:
    m = model_of(
        line(0.0, "c1", "client_op", type="invoke", process=0, f="write", value=1),
        line(1.0, "c1", "client_op", type="invoke", process=1, f="read", value=None),
        line(2.0, "c1", "client_op", type="ok", process=1, f="read", value=1),
        line(3.0, "c1", "client_op", type="info", process=0, f="write", value=1),
        line(4.0, "c1", "client_op", type="invoke", process=1, f="cas", value=[1, 2]),
        line(5.0, "c1", "client_op", type="fail", process=7, f="read"),    # never invoked
        line(9.0, "c1", "timer", name="t"),
    )
    ops = [(op.process, op.f, op.value, op.invoke.t_ms, op.end_ms, op.outcome, op.row) for op in m.client_ops]
    assert ops == [(0, "write", 1, 0.0, 3.0, "info", 0), (1, "read", 1, 1.0, 2.0, "ok", 1),
                   (1, "cas", [1, 2], 4.0, 9.0, None, 0)]
    assert [(r.kind, r.t_ms) for r in m.points] == [("client_op", 5.0), ("timer", 9.0)]


def test_nemesis_partition_and_link_faults_are_bands() -> None:
    m = model_of(
        line(1.0, "nemesis", "nemesis", action="partition", partition="isolate", duration_ms=5.0),
        line(2.0, "nemesis", "nemesis", action="link", loss_probability=0.2),
        line(6.0, "nemesis", "nemesis", action="heal_partition"),
        line(7.0, "nemesis", "nemesis", action="partition", partition="bridge"),
        line(9.0, "nemesis", "nemesis", action="heal_and_stop"),
        line(10.0, "nemesis", "nemesis", action="partition", partition="one_way"),
        line(12.0, "n1", "timer", name="t"),
    )
    assert [(b.label, b.start_ms, b.end_ms, b.row) for b in m.bands] == [
        ("partition isolate", 1.0, 6.0, 0), ("link loss 20%", 2.0, 9.0, 1), ("partition bridge", 7.0, 9.0, 0),
        ("partition one_way", 10.0, 12.0, 0),
    ]
    assert sum(1 for r in m.points if r.kind == "nemesis") == 6


def test_nemesis_bands_and_markers_name_the_nodes_and_groups_they_hit() -> None:
    """Each shape the simulator's nemesis writes (synod.sim.nemesis)."""
    m = model_of(
        line(1.0, "nemesis", "nemesis", action="partition", partition="symmetric", groups=[["s1", "s4"], ["s2", "s3"]]),
        line(2.0, "nemesis", "nemesis", action="partition", partition="isolate", target="s4"),
        line(3.0, "nemesis", "nemesis", action="partition", partition="bridge", left=["s3", "s4"], bridge="s5",
             right=["s1", "s2"]),
        line(4.0, "nemesis", "nemesis", action="partition", partition="majority_minority",
             majority=["s3", "s4", "s5"], minority=["s1", "s2"]),
        line(5.0, "nemesis", "nemesis", action="partition", partition="one_way", **{"from": ["s1"], "to": ["s2"]}),
    )
    assert [b.label for b in m.bands] == [
        "partition symmetric: s1 s4 | s2 s3", "partition isolate: s4 alone",
        "partition bridge: s3 s4 | s1 s2 (bridge s5 sees both)", "partition majority_minority: s3 s4 s5 | s1 s2",
        "partition one_way: s1 -/-> s2",
    ]
    assert nemesis_label({"action": "crash", "target": "s2", "restart_after_ms": 400.0}) == "crash s2"
    assert nemesis_label({"action": "clock", "target": "s3", "jump_ms": 407.8, "drift": 0.1}) == "clock s3 +408 ms"
    assert nemesis_label({"action": "heal_partition"}) == "heal_partition"


def test_client_ops_carry_their_key_and_a_read_shows_its_result() -> None:
    m = model_of(
        line(0.0, "c1", "client_op", type="invoke", process=0, f="get", key="k1", value=None, history_line=1),
        line(1.0, "c1", "client_op", type="invoke", process=5, f="put", key="k1", value="[5.1]", history_line=2),
        line(2.0, "c1", "client_op", type="ok", process=0, f="get", key="k1", value="[0.3]", history_line=3),
        line(3.0, "c1", "client_op", type="info", process=5, f="put", key="k1", value="[5.1]", history_line=4),
        line(4.0, "c1", "client_op", type="invoke", process=0, f="get", key="k2", value=None, history_line=5),
        line(5.0, "c1", "client_op", type="ok", process=0, f="get", key="k2", value=None, history_line=6),
        line(6.0, "c1", "client_op", type="invoke", process=0, f="get", key="k2", value=None, history_line=7),
        line(7.0, "c1", "client_op", type="fail", process=0, f="get", key="k2", value=None, history_line=8),
    )
    assert [op.label() for op in m.client_ops] == ["get k1 \u2192 [0.3]", "put k1 [5.1]", "get k2 \u2192 nil",
                                                   "get k2"]


def test_a_check_record_marks_the_failing_operations_and_gets_no_lane() -> None:
    m = model_of(
        line(0.0, "c1", "client_op", type="invoke", process=0, f="put", key="k", value="a", history_line=1),
        line(1.0, "c1", "client_op", type="ok", process=0, f="put", key="k", value="a", history_line=2),
        line(2.0, "c2", "client_op", type="invoke", process=1, f="get", key="k", value=None, history_line=3),
        line(3.0, "c2", "client_op", type="ok", process=1, f="get", key="k", value=None, history_line=4),
        line(4.0, "c1", "client_op", type="invoke", process=0, f="get", key="k", value=None, history_line=5),
        line(5.0, "c1", "client_op", type="ok", process=0, f="get", key="k", value="a", history_line=6),
        line(6.0, "checker", "check", checker="linearizability", verdict="illegal",
             failing=[{"history_line": 1, "role": "window"}, {"history_line": 3, "role": "stuck"}]),
    )
    assert m.lanes == ["c1", "c2"]
    assert m.points == []
    assert [r.kind for r in m.checks] == ["check"]
    assert [(op.node, op.f, op.failing) for op in m.client_ops] == [
        ("c1", "put", "window"), ("c2", "get", "stuck"), ("c1", "get", None)]


def test_message_counts_add_up_with_duplicates_and_messages_in_flight() -> None:
    """Each message sent is counted once, by its fate; a network duplicate
    is counted apart (the page said 8666 messages: 7439 delivered, 1337
    dropped, which added up to more than it sent)."""
    m = model_of(
        send(0.0, "a", "b", PING), recv(1.0, "b", "a", PING), recv(2.0, "b", "a", PING),   # one duplicate
        send(3.0, "a", "b", {"type": "t.X"}), line(3.0, "a", "drop", dst="b", corr=0, reason="loss"),
        send(4.0, "a", "b", {"type": "t.Y"}), line(6.0, "a", "drop", dst="b", corr=0, reason="node down"),
        line(7.0, "a", "drop", dst="b", corr=0, reason="node down"),                       # a dropped duplicate
        send(8.0, "a", "b", {"type": "t.Z"}),                                               # in flight
    )
    c = m.message_counts()
    assert c == {"messages": 4, "delivered": 1, "dropped": 2, "in_flight": 1,
                 "dropped_by": {"loss": 1, "node down": 1}, "duplicates": 2, "duplicates_delivered": 1,
                 "duplicates_dropped": 1, "orphans": 0}
    assert c["messages"] == c["delivered"] + c["dropped"] + c["in_flight"]
