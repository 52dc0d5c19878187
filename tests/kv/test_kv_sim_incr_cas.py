"""The simulated KV Jepsen run with all five operations (issue 10 part 3):
get, set, append, incr, and cas by WATCH/MULTI/EXEC under the full
nemesis, checked per key by synod.check; and the proof's teeth: a cas
without WATCH (lost updates) is caught within a few seeds."""

from __future__ import annotations

import collections
from typing import Any

import pytest

from synod.check import KV, check_events
from synod.check.formats import parse_jsonl
from synod.harness.kv import RedisKVAdapter, run_kv
from synod.harness.runner import ILLEGAL
from synod.kv.messages import Command
from synod.kv.replies import Array, BulkString, Integer, SimpleError, SimpleString
from synod.workload import KVWorkload
from synod.workload.kv import FAIL, INFO, OK, Step

TIME_MS = 20_000.0
NO_WATCH_SEEDS_MAX = 3


@pytest.mark.parametrize("seed", [1, 2])
def test_all_five_operations_run_and_check(seed: int) -> None:
    r = run_kv(seed, time_ms=TIME_MS)
    assert r.verdict == "ok", (f"seed {seed}: {[(v.checker, v.status, v.summary) for v in r.verdicts]}; replay: "
                               f"synod sim kv --seed {seed}")
    events = r.scenario.history.events
    kinds = collections.Counter((e.f, e.type) for e in events)
    for f in ("get", "put", "append", "incr", "cas"):
        assert kinds[(f, OK)] > 10, kinds
    assert kinds[("cas", FAIL)] > 0, kinds  # a watch that tripped, or a refusal
    assert r.faults.get("crash", 0) + r.faults.get("partition", 0) > 0, r.faults
    incrs = [e for e in events if e.f == "incr" and e.type == OK]
    assert all(type(e.value) is int and e.key.startswith("n") for e in incrs)
    cas = [e for e in events if e.f == "cas" and e.type == OK]
    assert all(isinstance(e.value, list) and len(e.value) == 2 and e.key.startswith("k") for e in cas)
    # The history file reads back and checks the same.
    assert check_events(KV(), parse_jsonl(r.scenario.history.jsonl())).verdict == "ok"


def test_a_cas_without_watch_is_caught() -> None:
    """GET then MULTI/SET/EXEC with no WATCH: two clients that read the same
    value both commit, and the checker must say so within a few seeds."""
    caught = [seed for seed in range(1, NO_WATCH_SEEDS_MAX + 1)
              if any(v.checker == "linearizability" and v.status == ILLEGAL
                     for v in run_kv(seed, time_ms=TIME_MS, cas_watch=False).verdicts)]
    assert caught, f"no lost update caught in {NO_WATCH_SEEDS_MAX} seeds"


def test_other_adapters_keep_their_operations() -> None:
    """KVWorkload's defaults invoke no incr or cas, so adapters that do not
    declare them (the Raft SimpleKV one) are never sent them."""
    assert set(KVWorkload().functions()) == {"get", "put", "append"}
    assert set(RedisKVAdapter.functions) == {"get", "put", "append", "incr", "cas"}


def _reads(steps: tuple[Step, ...], replies: list[Any]) -> list[str]:
    return [s.read(r).type for s, r in zip(steps, replies, strict=True)]


def test_the_redis_cas_steps_and_how_their_replies_read() -> None:
    a = RedisKVAdapter()
    read = a.steps("cas-read", "k1", None)
    assert [s.request for s in read] == [Command(args=(b"WATCH", b"k1")), Command(args=(b"GET", b"k1"))]
    assert read[1].read(BulkString(data=b"[1.2]")).value == "[1.2]"
    assert read[1].read(BulkString(data=None)).value is None
    assert read[0].read(SimpleError(text="TRYAGAIN no leader")).type == FAIL
    write = a.steps("cas-write", "k1", [None, "[3.4]"])
    assert [s.request.args for s in write] == [(b"MULTI",), (b"SET", b"k1", b"[3.4]"), (b"EXEC",)]
    assert [s.may_apply for s in write] == [False, False, True]
    ok = SimpleString(text="OK")
    assert _reads(write, [ok, SimpleString(text="QUEUED"), Array(items=(ok,))]) == [OK, OK, OK]
    exec_step = write[2]
    assert exec_step.read(Array(items=None)).type == FAIL  # the watch tripped
    assert exec_step.read(SimpleError(text="TRYAGAIN no leader")).type == FAIL
    assert exec_step.read(SimpleError(text="EXECABORT Transaction discarded")).type == FAIL
    assert exec_step.read(SimpleError(text="UNCERTAIN the leader changed")).type == INFO
    assert write[1].read(SimpleError(text="ERR")).type == FAIL
    assert write[1].read(ok).type == INFO  # ran outside a transaction: cannot be told from a put
    assert [s.request.args for s in a.steps("reset", "", None)] == [(b"DISCARD",), (b"UNWATCH",)]
    assert [s.request.args for s in RedisKVAdapter(watch=False).steps("cas-read", "k1", None)] == [(b"GET", b"k1")]
    assert a.outcome("incr", Integer(value=7)).value == 7
    assert a.outcome("put", SimpleString(text="QUEUED")).type == INFO
