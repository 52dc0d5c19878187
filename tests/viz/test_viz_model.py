"""The trace model: lanes, down and paused intervals, states, client
operations, nemesis bands (synod.viz._model's docstring)."""

from __future__ import annotations

from tests.viz._traces import PING, line, model_of, send


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
        ("partition isolate", 1.0, 6.0, 0), ("link", 2.0, 9.0, 1), ("partition bridge", 7.0, 9.0, 0),
        ("partition one_way", 10.0, 12.0, 0),
    ]
    assert sum(1 for r in m.points if r.kind == "nemesis") == 6
