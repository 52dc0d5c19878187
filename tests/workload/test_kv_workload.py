"""The Jepsen-style KV client: what it records for each kind of reply, the
new-process rule after an indeterminate operation, and bad settings."""

from __future__ import annotations

import json
from typing import Any

import pytest

from synod.check import operations
from synod.core import Context, Message, Node
from synod.core.errors import LocalProtocolError
from synod.sim import Simulator, Tracer
from synod.workload import HistoryRecorder, KVClient, KVWorkload, Outcome
from synod.workload.kv import FAIL, INFO, OK


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
                                    {"get_fraction": -0.1}])
def test_bad_settings(kwargs: dict[str, Any]) -> None:
    with pytest.raises(LocalProtocolError):
        KVWorkload(**kwargs)
