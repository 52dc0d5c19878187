"""The Jepsen-style KV client: what it records for each kind of reply, the
new-process rule after an indeterminate operation, incr and the cas
transaction step by step (and the reset of a transaction cut short), and
bad settings."""

from __future__ import annotations

import json
from typing import Any

import pytest

from synod.check import operations
from synod.core import Context, Message, Node
from synod.core.errors import LocalProtocolError
from synod.sim import Simulator, Tracer
from synod.workload import HistoryRecorder, KVClient, KVWorkload, Outcome
from synod.workload.kv import FAIL, INFO, OK, Step


class _Req(Message, tag="test.KVReq"):
    request_id: int
    f: str
    key: str
    value: str | None


class _Rep(Message, tag="test.KVRep"):
    request_id: int
    outcome: str
    value: str | None = None


class _Adapter:
    def request(self, f: str, key: str, value: str | None, request_id: int) -> Any:
        return _Req(request_id=request_id, f=f, key=key, value=value)

    def reply_id(self, msg: Any) -> int | None:
        return msg.request_id if type(msg) is _Rep else None

    def outcome(self, f: str, msg: Any) -> Outcome:
        return Outcome(msg.outcome, msg.value, "srv")


class _Server(Node):
    """Answers requests in turn with the outcomes of ``script`` ("none":
    no answer), then with ok."""

    def __init__(self, script: list[str]) -> None:
        self.script = script
        self.n = 0

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        kind = self.script[self.n] if self.n < len(self.script) else OK
        self.n += 1
        if kind != "none":
            ctx.send(src, _Rep(request_id=msg.request_id, outcome=kind, value="v" if msg.f == "get" else None))


def _run(script: list[str], ms: float = 2_000.0, tracer: Tracer | None = None) -> HistoryRecorder:
    sim = Simulator(3, tracer=tracer)
    sim.add_node("srv", lambda: _Server(script))
    history = HistoryRecorder(lambda: sim.now_ms)
    wl = KVWorkload(keys=2, op_timeout_ms=100.0, think_ms=5.0, stop_ms=ms)
    sim.add_node("c1", lambda: KVClient(0, 4, ("srv",), _Adapter(), wl, history))
    sim.run(until_ms=ms + 500.0)
    return history


def test_each_reply_kind_is_recorded() -> None:
    h = _run([OK, FAIL, INFO, "none", OK], ms=300.0)
    types = [e.type for e in h.events]
    assert types[:10] == ["invoke", OK, "invoke", FAIL, "invoke", INFO, "invoke", INFO, "invoke", OK], types
    # After each info the client goes on as a new process (0 -> 4 -> 8).
    assert [e.process for e in h.events[:10]] == [0, 0, 0, 0, 0, 0, 4, 4, 8, 8]
    ops = operations(h.events)
    assert all(op.call <= op.ret for op in ops)
    for e in h.events:
        if e.type == OK and e.f == "get":
            assert e.value == "v"


def test_every_history_event_is_a_client_op_in_the_trace_naming_its_line() -> None:
    """The trace viewer draws the client's operations from these, and finds
    the ones a checker names ("lines 827-829") by ``history_line``."""
    tracer = Tracer(keep=True)
    h = _run([OK, FAIL, INFO, "none", OK], ms=300.0, tracer=tracer)
    assert tracer.lines is not None
    ops = [json.loads(raw) for raw in tracer.lines if '"kind":"client_op"' in raw]
    assert [(r["node"], r["t_ms"], r["type"], r["process"], r["f"], r["key"], r["value"], r["history_line"])
            for r in ops] == [("c1", round(e.time, 6), e.type, e.process, e.f, e.key, e.value, e.line)
                              for e in h.events]
    assert [json.loads(raw) for raw in h.jsonl().splitlines()][ops[3]["history_line"] - 1]["type"] == ops[3]["type"]


def test_writes_are_unique_tokens() -> None:
    h = _run([])
    writes = [e.value for e in h.events if e.type == "invoke" and e.f != "get"]
    assert len(writes) > 20 and len(writes) == len(set(writes))


def test_no_invoke_after_stop() -> None:
    h = _run([], ms=200.0)
    assert max(e.time for e in h.events if e.type == "invoke") < 200.0


@pytest.mark.parametrize("kwargs", [{"keys": 0}, {"op_timeout_ms": 0}, {"get_fraction": 0.8, "put_fraction": 0.3},
                                    {"get_fraction": -0.1}, {"incr_fraction": 1.5}, {"cas_fraction": -0.2},
                                    {"get_fraction": 0.5, "incr_fraction": 0.3, "cas_fraction": 0.3}])
def test_bad_settings(kwargs: dict[str, Any]) -> None:
    with pytest.raises(LocalProtocolError):
        KVWorkload(**kwargs)


def test_an_adapter_is_not_sent_operations_it_does_not_do() -> None:
    """Adapters without ``functions`` do get, put and append only: a
    workload with incr or cas is refused up front, and the defaults never
    invoke them."""
    assert set(KVWorkload().functions()) == {"get", "put", "append"}
    history = HistoryRecorder(lambda: 0.0)
    for wl in (KVWorkload(incr_fraction=0.1), KVWorkload(cas_fraction=0.1)):
        with pytest.raises(LocalProtocolError, match="does not do"):
            KVClient(0, 1, ("srv",), _Adapter(), wl, history)
    h = _run([])
    assert {e.f for e in h.events} == {"get", "put", "append"}
    assert all(e.key.startswith("k") for e in h.events)


# -- calls adapters: incr and the cas transaction --------------------------------------------

class _Cmd(Message, tag="test.KVCmd"):
    name: str
    key: str = ""
    value: str | None = None


class _Ans(Message, tag="test.KVAns"):
    kind: str
    value: int | str | None = None


class _TxAdapter:
    """A system with transactions, in the shape of Redis's optimistic
    locking: cas-read is watch then get, cas-write is multi, set, exec."""

    calls = True
    functions = ("get", "put", "append", "incr", "cas")

    def request(self, f: str, key: str, value: str | None, request_id: int) -> Any:
        return _Cmd(name=f, key=key, value=value)

    def reply_id(self, msg: Any) -> int | None:
        return None

    def outcome(self, f: str, msg: Any) -> Outcome:
        return Outcome(msg.kind, msg.value)

    def steps(self, phase: str, key: str, value: Any) -> tuple[Step, ...]:
        def go(msg: Any) -> Outcome:
            return Outcome(msg.kind)

        if phase == "cas-read":
            return (Step(_Cmd(name="watch", key=key), go), Step(_Cmd(name="get", key=key), lambda m: self.outcome("get", m)))
        if phase == "cas-write":
            return (Step(_Cmd(name="multi"), go), Step(_Cmd(name="set", key=key, value=value[1]), go),
                    Step(_Cmd(name="exec"), go, may_apply=True))
        return (Step(_Cmd(name="discard"), go), Step(_Cmd(name="unwatch"), go))


class _TxServer(Node):
    """Answers each command name with its next scripted answer ("none": no
    answer; default ok; a get answers "v", an incr counts), and keeps the
    names it received in order."""

    def __init__(self, script: dict[str, list[str]], received: list[str]) -> None:
        self.script = {name: list(answers) for name, answers in script.items()}
        self.received = received
        self.count = 0

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        self.received.append(msg.name)
        answers = self.script.get(msg.name, [])
        kind = answers.pop(0) if answers else OK
        if kind == "none":
            return
        self.count += msg.name == "incr"
        value = "v" if msg.name == "get" else self.count if msg.name == "incr" else None
        ctx.reply(_Ans(kind=kind, value=value))


def _run_tx(wl: KVWorkload, script: dict[str, list[str]], ms: float) -> tuple[HistoryRecorder, list[str]]:
    sim = Simulator(5)
    received: list[str] = []
    sim.add_node("srv", lambda: _TxServer(script, received))
    history = HistoryRecorder(lambda: sim.now_ms)
    sim.add_node("c1", lambda: KVClient(0, 4, ("srv",), _TxAdapter(), wl, history))
    sim.run(until_ms=ms + 2_000.0)
    return history, received


def _ops(h: HistoryRecorder) -> list[tuple[Any, str, str, Any]]:
    return [(e.process, e.type, e.f, e.value) for e in h.events]


def test_incr_is_ok_with_the_count_on_counter_keys() -> None:
    h, _ = _run_tx(KVWorkload(get_fraction=0.0, put_fraction=0.0, incr_fraction=1.0, think_ms=5.0, stop_ms=100.0),
                   {}, 100.0)
    oks = [e for e in h.events if e.type == OK]
    assert len(oks) > 3
    assert all(e.f == "incr" and e.key.startswith("n") for e in h.events)
    assert [e.value for e in oks] == list(range(1, len(oks) + 1))
    assert all(e.value is None for e in h.events if e.type == "invoke")


def test_a_cas_is_a_watched_get_then_a_cas_of_the_value_read() -> None:
    """ok: the commit applied; fail: the watch tripped (or any answer but
    ok before the commit); info: no answer to the commit, and the client
    goes on as a new process."""
    wl = KVWorkload(get_fraction=0.0, put_fraction=0.0, cas_fraction=1.0, op_timeout_ms=100.0, think_ms=5.0,
                    stop_ms=300.0)
    h, received = _run_tx(wl, {"exec": [OK, FAIL, "none"]}, 300.0)
    ops = _ops(h)
    tokens = [e.value[1] for e in h.events if e.f == "cas" and e.type == "invoke"]
    assert ops[:12] == [
        (0, "invoke", "get", None), (0, OK, "get", "v"), (0, "invoke", "cas", ["v", tokens[0]]),
        (0, OK, "cas", ["v", tokens[0]]),
        (0, "invoke", "get", None), (0, OK, "get", "v"), (0, "invoke", "cas", ["v", tokens[1]]),
        (0, FAIL, "cas", ["v", tokens[1]]),
        (0, "invoke", "get", None), (0, OK, "get", "v"), (0, "invoke", "cas", ["v", tokens[2]]),
        (0, INFO, "cas", ["v", tokens[2]])]
    assert ops[12][:3] == (4, "invoke", "get")
    # A cas whose commit was answered leaves nothing to reset; the unanswered
    # one does: the next request on that connection is a reset.
    tx = ["watch", "get", "multi", "set", "exec"]
    assert received[:15] == tx * 3
    assert received[15:19] == ["discard", "unwatch", "watch", "get"]
    assert operations(h.events)  # pairs up


def test_a_cas_cut_short_before_the_commit_fails_and_is_reset() -> None:
    """No answer to MULTI (or a refusal of the SET): nothing was written, so
    the cas failed (same process); the connection is reset before the next
    request, and an unanswered reset fails the next operation unsent."""
    wl = KVWorkload(get_fraction=0.0, put_fraction=0.0, cas_fraction=1.0, op_timeout_ms=100.0, think_ms=5.0,
                    stop_ms=400.0)
    h, received = _run_tx(wl, {"multi": ["none"], "set": [FAIL], "discard": [OK, "none"]}, 400.0)
    ops = _ops(h)
    assert [(p, t, f) for p, t, f, _ in ops[:11]] == [
        (0, "invoke", "get"), (0, OK, "get"), (0, "invoke", "cas"), (0, FAIL, "cas"),   # multi unanswered
        (0, "invoke", "get"), (0, OK, "get"), (0, "invoke", "cas"), (0, FAIL, "cas"),   # set refused
        (0, "invoke", "get"), (0, FAIL, "get"),                                        # reset unanswered
        (0, "invoke", "get")]
    assert received[:14] == ["watch", "get", "multi",
                             "discard", "unwatch", "watch", "get", "multi", "set",
                             "discard", "discard", "unwatch", "watch", "get"]


def test_after_an_unanswered_request_the_connection_is_reset_first() -> None:
    """A request that timed out may still wait in the server's queue for
    this connection: the next request there is the reset (where a real
    client would reconnect), so nothing new queues behind it."""
    wl = KVWorkload(get_fraction=0.0, put_fraction=0.0, incr_fraction=1.0, op_timeout_ms=100.0, think_ms=5.0,
                    stop_ms=300.0)
    h, received = _run_tx(wl, {"incr": [OK, "none"]}, 300.0)
    assert [(e.process, e.type) for e in h.events[:6]] == [(0, "invoke"), (0, OK), (0, "invoke"), (0, INFO),
                                                            (4, "invoke"), (4, OK)]
    assert received[:6] == ["incr", "incr", "discard", "unwatch", "incr", "incr"]
