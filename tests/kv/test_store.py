"""Unit tests of the KeySpace: expiry by log time, WATCH versions, snapshots,
SCAN's guarantee, determinism, dispatch. The command semantics themselves
are checked against a real Redis in test_store_vs_redis.py."""

from __future__ import annotations

import collections
import math
import os
from fractions import Fraction

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synod.core.codec import decode, encode
from synod.core.errors import RemoteProtocolError
from synod.kv import store as store_mod
from synod.kv._keys import glob_match
from synod.kv._longdouble import ld_human as format_long_double
from synod.kv._longdouble import parse_long_double
from synod.kv.commands import WOULD_BLOCK, all_commands, lookup
from synod.kv.replies import (
    NIL,
    NIL_ARRAY,
    OK,
    Array,
    BulkString,
    Integer,
    SimpleError,
    SimpleString,
    wrong_arity,
)
from synod.kv.store import KeySpace, KeySpaceSnapshot, ListRecord

FUZZ_EXAMPLES = int(os.environ.get("SYNOD_FUZZ_EXAMPLES", 200))


def cmd(text: str) -> tuple[bytes, ...]:
    return tuple(w.encode() for w in text.split())


def run(ks: KeySpace, text: str, now_ms: int = 0):
    return ks.execute(cmd(text), now_ms)


# ---- expiry by log time ----

def test_px_key_is_gone_at_its_expiry_time_on_execute() -> None:
    """A key set with PX 100 at t=0 lives at t=99 and is deleted by the entry applied at t=100."""
    ks = KeySpace()
    assert run(ks, "SET k v PX 100", 0) == OK
    assert run(ks, "GET k", 99) == BulkString(data=b"v")
    version = ks.version(b"k")
    assert run(ks, "DBSIZE", 100) == Integer(value=0)
    assert ks.version(b"k") != version
    assert ks.get(b"k", 100) is None
    assert ks.snapshot() == _fresh_after(ks)


def _fresh_after(ks: KeySpace) -> bytes:
    """The snapshot of a copy: restore must reproduce the same bytes."""
    other = KeySpace()
    other.restore(ks.snapshot())
    return other.snapshot()


def test_read_and_get_never_mutate() -> None:
    """``read`` answers at applied_time_ms; ``get`` at a later time sees the key expired
    without deleting it: only ``execute`` deletes, so replicas agree on versions."""
    ks = KeySpace()
    run(ks, "SET k v PX 100", 0)
    before = ks.snapshot()
    version = ks.version(b"k")
    assert ks.read(cmd("GET k")) == BulkString(data=b"v")
    assert ks.read(cmd("PTTL k")) == Integer(value=100)
    assert ks.get(b"k", 100) is None
    assert ks.get(b"k", 99) == b"v"
    assert ks.dbsize(100) == 0
    assert ks.keys_count(0) == (1, 1)
    assert ks.snapshot() == before
    assert ks.version(b"k") == version


def test_read_refuses_write_commands() -> None:
    ks = KeySpace()
    reply = ks.read(cmd("SET k v"))
    assert isinstance(reply, SimpleError)
    assert ks.get(b"k", 0) is None
    assert ks.read(cmd("GET")) == wrong_arity("get")


def test_applied_time_never_goes_back() -> None:
    """A later entry stamped earlier (a new leader's slower clock) does not move time back."""
    ks = KeySpace()
    run(ks, "SET k v PX 100", 1000)
    run(ks, "GET k", 1050)
    assert ks.applied_time_ms == 1050
    assert run(ks, "PTTL k", 10) == Integer(value=50)
    assert ks.applied_time_ms == 1050
    assert run(ks, "EXISTS k", 1100) == Integer(value=0)


def test_expiry_purge_order_is_time_then_key() -> None:
    """Keys expiring at once are deleted in (time, key) order, whatever order their TTLs were set in."""
    a, b = KeySpace(), KeySpace()
    for ks, order in ((a, "xyz"), (b, "zyx")):
        for k in order:
            run(ks, f"SET {k} v PX 10")
    run(a, "DBSIZE", 10)
    run(b, "DBSIZE", 10)
    assert [a.version(k.encode()) for k in "xyz"] == [b.version(k.encode()) for k in "xyz"]


def test_changed_ttls_leave_stale_heap_entries_harmless() -> None:
    ks = KeySpace()
    run(ks, "SET k v PX 10")
    run(ks, "PEXPIRE k 1000")
    assert run(ks, "EXISTS k", 10) == Integer(value=1)
    run(ks, "PERSIST k", 11)
    assert run(ks, "EXISTS k", 5000) == Integer(value=1)
    for i in range(500):  # the heap is compacted instead of growing with every TTL change
        run(ks, f"PEXPIRE k {100000 + i}", 5000)
    assert len(ks._expiry_heap) <= 2 * len(ks._expires) + 64


# ---- WATCH versions and MULTI/EXEC ----

def test_execute_multi_runs_when_nothing_watched_changed() -> None:
    ks = KeySpace()
    run(ks, "SET k 1")
    watched = [(b"k", ks.version(b"k")), (b"missing", ks.version(b"missing"))]
    reply = ks.execute_multi([cmd("INCR k"), cmd("GET k"), cmd("NOSUCH")], watched, 1)
    assert isinstance(reply, Array)
    assert reply.items[:2] == (Integer(value=2), BulkString(data=b"2"))
    assert isinstance(reply.items[2], SimpleError)


@pytest.mark.parametrize("change", ["SET k 2", "DEL k", "INCR k", "EXPIRE k 100", "PERSIST k", "RENAME k j",
                                    "FLUSHALL"])
def test_execute_multi_aborts_when_a_watched_key_was_written(change: str) -> None:
    ks = KeySpace()
    run(ks, "SET k 1 PX 1000000")
    watched = [(b"k", ks.version(b"k"))]
    run(ks, change, 1)
    assert ks.execute_multi([cmd("SET k 3")], watched, 2) == NIL_ARRAY
    assert run(ks, "GET k", 3) != BulkString(data=b"3")


def test_execute_multi_aborts_when_a_watched_key_expired() -> None:
    """Expiry is applied before the watch check, at the transaction's own log time."""
    ks = KeySpace()
    run(ks, "SET k 1 PX 100", 0)
    watched = [(b"k", ks.version(b"k"))]
    assert ks.execute_multi([cmd("SET k 3")], watched, 100) == NIL_ARRAY
    assert ks.get(b"k", 100) is None


def test_watch_of_a_missing_key_sees_create_then_delete() -> None:
    """A key created and deleted again keeps a tombstone version, as Redis aborts EXEC then."""
    ks = KeySpace()
    watched = [(b"k", ks.version(b"k"))]
    run(ks, "SET k 1")
    run(ks, "DEL k")
    assert ks.execute_multi([cmd("SET k 3")], watched, 1) == NIL_ARRAY


def test_untouched_command_reply_no_change() -> None:
    """Failed writes (NX not met, WRONGTYPE, wrong arity) do not bump the version."""
    ks = KeySpace()
    run(ks, "SET k 1")
    v = ks.version(b"k")
    for text in ("SET k 2 NX", "SETRANGE k 0", "EXPIRE k 10 XX", "GET k", "LPUSH k x"):
        run(ks, text)
    assert ks.version(b"k") == v


def test_tombstones_are_bounded(monkeypatch) -> None:
    """Past TOMBSTONES_MAX the deleted keys' versions are folded into version_floor:
    a missing key's version still changes (the fold only ever aborts more)."""
    monkeypatch.setattr(store_mod, "TOMBSTONES_MAX", 10)
    ks = KeySpace()
    watched = [(b"never", ks.version(b"never"))]
    for i in range(30):
        run(ks, f"SET k{i} v")
        run(ks, f"DEL k{i}")
    assert len(ks._versions) - len(ks._data) <= 10
    assert ks.version(b"never") != watched[0][1]
    assert ks.execute_multi([], watched, 1) == NIL_ARRAY


def test_blocking_commands_do_not_block_inside_multi() -> None:
    """Inside EXEC a blocking command replies as on timeout (BLPOP a nil array, BLMOVE a nil bulk)."""
    if lookup("blpop") is None or lookup("blmove") is None:
        pytest.skip("BLPOP/BLMOVE not registered yet (synod.kv._lists)")
    ks = KeySpace()
    assert run(ks, "BLPOP l 0") is WOULD_BLOCK
    reply = ks.execute_multi([cmd("BLPOP l 0"), cmd("BLMOVE l m LEFT RIGHT 0")], [], 1)
    assert reply == Array(items=(NIL_ARRAY, NIL))


# ---- snapshots ----

def _populated() -> KeySpace:
    ks = KeySpace()
    run(ks, "SET s hello PX 5000", 10)
    run(ks, "SET plain 1", 11)
    ks.set(b"l", collections.deque([b"a", b"b", b"\x00\xff"]))
    ks.set_expire_at_ms(b"l", 9000)
    ks.set(b"h", {b"f2": b"v2", b"f1": b"v1"})
    run(ks, "SET gone x", 12)
    run(ks, "DEL gone", 13)
    return ks


def test_snapshot_restore_round_trip_all_types_ttls_versions() -> None:
    ks = _populated()
    data = ks.snapshot()
    other = KeySpace()
    run(other, "SET junk 1")
    other.restore(data)
    assert other.snapshot() == data
    assert other.applied_time_ms == ks.applied_time_ms == 13
    assert other.get(b"s", 13) == b"hello"
    assert other.expire_at_ms(b"s") == 5010
    assert other.get(b"l", 13) == collections.deque([b"a", b"b", b"\x00\xff"])
    assert other.expire_at_ms(b"l") == 9000
    assert list(other.get(b"h", 13).items()) == [(b"f2", b"v2"), (b"f1", b"v1")]
    assert other.get(b"junk", 13) is None
    for key in (b"s", b"plain", b"l", b"h", b"gone", b"junk"):
        assert other.version(key) == ks.version(key), key
    # Both continue identically, expiry included.
    for k in (ks, other):
        run(k, "INCR plain", 5010)
        run(k, "RANDOMKEY", 5011)
    assert ks.snapshot() == other.snapshot()
    assert other.get(b"s", 5010) is None


def test_restore_rejects_garbage_and_keeps_the_state() -> None:
    ks = _populated()
    before = ks.snapshot()
    snap = decode(before, KeySpaceSnapshot)
    twice = msgspec.structs.replace(snap, records=snap.records + snap.records[:1])
    too_new = msgspec.structs.replace(snap, version_clock=1)
    empty = msgspec.structs.replace(snap, records=(ListRecord(key=b"e", version=1, expire_at_ms=None, items=()),))
    for data in (b"\x93\x01\x02", encode(twice), encode(too_new), encode(empty)):
        with pytest.raises(RemoteProtocolError):
            ks.restore(data)
        assert ks.snapshot() == before


# ---- SCAN's guarantee ----

@settings(max_examples=FUZZ_EXAMPLES, deadline=None)
@given(initial=st.sets(st.binary(min_size=0, max_size=4), max_size=40),
       steps=st.lists(st.tuples(st.sampled_from(["add", "del", "scan"]), st.binary(max_size=4),
                                st.integers(1, 12)), max_size=60))
def test_scan_returns_every_key_present_throughout(initial, steps) -> None:
    """SCAN: a key present from the first call to the last is returned at
    least once, whatever is added or deleted between calls
    (https://redis.io/docs/latest/commands/scan/#scan-guarantees)."""
    ks = KeySpace()
    for k in initial:
        ks.set(k, b"v")
    present_throughout = set(initial)
    seen: set[bytes] = set()
    cursor, calls = b"0", 0
    steps = list(steps) + [("scan", b"", 5)] * 200
    for op, key, count in steps:
        if op == "add":
            ks.execute((b"SET", key, b"v"), 0)
        elif op == "del":
            ks.execute((b"DEL", key), 0)
            present_throughout.discard(key)
        else:
            reply = ks.execute((b"SCAN", cursor, b"COUNT", str(count).encode()), 0)
            calls += 1
            cursor = reply.items[0].data
            seen.update(x.data for x in reply.items[1].items)
            if cursor == b"0":
                break
    assert cursor == b"0", "the scan did not finish"
    assert present_throughout <= seen


def test_scan_match_and_type_filters() -> None:
    ks = KeySpace()
    for i in range(20):
        ks.set(f"s{i}".encode(), b"v")
    ks.set(b"list", collections.deque([b"a"]))
    reply = run(ks, "SCAN 0 COUNT 1000 MATCH s1* TYPE string")
    assert reply.items[0] == BulkString(data=b"0")
    assert sorted(x.data for x in reply.items[1].items) == sorted([b"s1"] + [f"s1{i}".encode() for i in range(10)])
    assert [x.data for x in run(ks, "SCAN 0 COUNT 1000 TYPE list").items[1].items] == [b"list"]


# ---- determinism ----

_LOG_COMMANDS = st.one_of(
    st.tuples(st.just(b"SET"), st.sampled_from([b"a", b"b", b"c", b"d"]), st.binary(max_size=3)),
    st.tuples(st.just(b"SET"), st.sampled_from([b"a", b"b"]), st.just(b"v"), st.just(b"PX"),
              st.integers(1, 50).map(lambda n: str(n).encode())),
    st.tuples(st.just(b"DEL"), st.sampled_from([b"a", b"b", b"c", b"d"])),
    st.tuples(st.just(b"RPUSH"), st.sampled_from([b"l", b"c"]), st.binary(max_size=2)),
    st.tuples(st.just(b"HSET"), st.sampled_from([b"h", b"d"]), st.binary(max_size=2), st.binary(max_size=2)),
    st.tuples(st.just(b"RENAME"), st.sampled_from([b"a", b"l", b"h"]), st.sampled_from([b"b", b"c"])),
    st.tuples(st.just(b"PEXPIRE"), st.sampled_from([b"a", b"c", b"h", b"l"]), st.integers(-5, 40).map(lambda n: str(n).encode())),
    st.tuples(st.just(b"RANDOMKEY")),
    st.tuples(st.just(b"INCRBYFLOAT"), st.sampled_from([b"a", b"n"]), st.sampled_from([b"0.1", b"1e3", b"-2.5"])),
)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None)
@given(log=st.lists(st.tuples(_LOG_COMMANDS, st.integers(0, 20)), max_size=40), cut=st.integers(0, 40))
def test_same_log_same_state(log, cut) -> None:
    """Two replicas fed the same log (and a third restored from a snapshot
    midway) give the same replies and equal snapshots (Raft §5.3, §7)."""
    a, b = KeySpace(), KeySpace()
    c: KeySpace | None = None
    now = 0
    for i, (args, dt) in enumerate(log):
        now += dt
        if i == cut:
            c = KeySpace()
            c.restore(a.snapshot())
        ra, rb = a.execute(args, now), b.execute(args, now)
        assert ra == rb
        if c is not None:
            assert c.execute(args, now) == ra
    assert a.snapshot() == b.snapshot()
    if c is not None:
        assert c.snapshot() == a.snapshot()


def test_randomkey_is_a_function_of_the_state() -> None:
    a, b = KeySpace(), KeySpace()
    for ks in (a, b):
        for i in range(50):
            run(ks, f"SET k{i} v")
    picks = {run(a, "RANDOMKEY").data for _ in range(5)}
    assert picks == {run(b, "RANDOMKEY").data for _ in range(5)}
    assert run(KeySpace(), "RANDOMKEY") == NIL


# ---- dispatch ----

def test_dispatch_errors() -> None:
    ks = KeySpace()
    assert run(ks, "NOSUCH a") == SimpleError(text="ERR unknown command 'NOSUCH', with args beginning with: 'a' ")
    assert run(ks, "get") == wrong_arity("get")
    assert ks.execute((), 0) == SimpleError(text="ERR empty command")
    connection = [s for s in all_commands().values() if s.handler is None]
    if connection:
        spec = connection[0]
        args = (spec.name.encode(),) + (b"x",) * (abs(spec.arity) - 1)
        reply = ks.execute(args, 0)
        assert isinstance(reply, SimpleError)
        assert "served by the node" in reply.text


def test_every_command_of_this_part_has_a_summary_and_flags() -> None:
    mine = ("del unlink exists type keys scan rename renamenx randomkey copy dbsize flushdb flushall expire pexpire "
            "expireat pexpireat ttl pttl persist expiretime pexpiretime get set setnx setex psetex getset getdel "
            "getex mget mset msetnx append strlen getrange substr setrange incr decr incrby decrby incrbyfloat").split()
    for name in mine:
        spec = lookup(name)
        assert spec is not None, name
        assert spec.summary, name
        assert ("write" in spec.flags) != ("readonly" in spec.flags), name


def test_type_and_wrongtype() -> None:
    ks = KeySpace()
    ks.set(b"l", collections.deque([b"a"]))
    assert run(ks, "TYPE l") == SimpleString(text="list")
    assert run(ks, "GET l").text.startswith("WRONGTYPE")
    assert run(ks, "INCR l").text.startswith("WRONGTYPE")


def test_string_size_limit() -> None:
    ks = KeySpace(string_size_bytes_max=10)
    assert run(ks, "SETRANGE k 9 x") == Integer(value=10)
    err = SimpleError(text="ERR string exceeds maximum allowed size (proto-max-bulk-len)")
    assert run(ks, "SETRANGE k 10 x") == err
    assert run(ks, "APPEND k x") == err
    assert ks.string_size_bytes_max == 10
    ks.restore(ks.snapshot())
    assert ks.string_size_bytes_max == 10


# ---- helpers ----

@pytest.mark.parametrize("pattern,key,expected", [
    (b"*", b"", False), (b"", b"", True), (b"*", b"a", True), (b"a*", b"a", True), (b"h?llo", b"hello", True),
    (b"h[ae]llo", b"hallo", True), (b"h[^e]llo", b"hello", False), (b"h[a-b]llo", b"hbllo", True),
    (b"h[b-a]llo", b"hallo", True), (b"h\\*llo", b"h*llo", True), (b"h\\*llo", b"hello", False),
    (b"a\\", b"a\\", True), (b"[abc", b"c", True), (b"[a-]", b"]", True), (b"[^", b"x", True),
    (b"*" * 5000 + b"b", b"a" * 100, False), (b"[\x80-\xff]", b"\x90", True), (b"[a-\xff]", b"b", False),
])
def test_glob_match_as_stringmatchlen(pattern: bytes, key: bytes, expected: bool) -> None:
    assert glob_match(pattern, key) is expected


def test_long_double_parse_and_format() -> None:
    assert format_long_double(parse_long_double(b"0.1") + parse_long_double(b"0.2")) == b"0.3"
    assert parse_long_double(b"0x1.8p1") == Fraction(3)
    assert parse_long_double(b"inf") == math.inf
    for bad in (b"nan", b" 1", b"1 ", b"1e", b"", b"1e5000", b"1e-5000", b"0x", b"1_0"):
        assert parse_long_double(bad) is None, bad
    assert format_long_double(Fraction(-1, 10**30)) == b"0"
    assert format_long_double(Fraction(10**5000)).startswith(b"1" + b"0" * 100)
