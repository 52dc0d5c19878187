"""The KeySpace against a real Redis 7 server, reply for reply.

Debian's ``redis-server`` is started on a free port (skipped, with the
reason, when it is not on PATH); each case sends the same commands to it
(through redis-py's connection, with a parser that keeps the RESP reply
kind: simple string, bulk string, integer, array, error) and to a fresh
:class:`KeySpace`, and compares the replies exactly, as the RESP2 bytes each would be sent as. The KeySpace runs at a
fixed ``now_ms`` taken when the case starts; TTLs are large (>= 100 s) so
the real server's clock cannot change an outcome, and replies that depend
on the clock (TTL, PTTL, EXPIRETIME and PEXPIRETIME of relative expiries)
are compared within 2 s. KEYS is compared as a set, RANDOMKEY by kind,
a one-call SCAN as a set (a full SCAN iteration is compared as a set by
its own test).

``SYNOD_FUZZ_EXAMPLES`` (default 200) sets the number of random command
sequences.
"""

from __future__ import annotations

import os
import shlex
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.kv._redis_server import connect, redis_server

from synod.kv.commands import lookup
from synod.kv.protocol import render
from synod.kv.replies import Array, BulkString, Integer, Reply, SimpleError, SimpleString
from synod.kv.store import KeySpace

redis = pytest.importorskip("redis")
from redis._parsers.resp2 import _RESP2Parser  # noqa: E402  (pinned redis-py 8.2.0)
from redis.exceptions import ConnectionError as RedisConnectionError  # noqa: E402

FUZZ_EXAMPLES = int(os.environ.get("SYNOD_FUZZ_EXAMPLES", 200))
# Replies that depend on the clock may differ by the time between the server's and our evaluation.
TIME_TOLERANCE_MS = 2000


class _KindParser(_RESP2Parser):
    """redis-py's RESP2 parser, returning our typed replies so the kind is compared too."""

    def _read_response(self, disable_decoding=False, timeout=None):  # noqa: ARG002
        raw = self._buffer.readline(timeout=timeout) if timeout is not None else self._buffer.readline()
        if not raw:
            raise RedisConnectionError("server closed the connection")
        byte, rest = raw[:1], raw[1:]
        if byte == b"-":
            return SimpleError(text=rest.decode("utf-8", errors="surrogateescape"))
        if byte == b"+":
            return SimpleString(text=rest.decode("utf-8", errors="surrogateescape"))
        if byte == b":":
            return Integer(value=int(rest))
        if byte == b"$":
            return BulkString(data=None if rest == b"-1" else self._buffer.read(int(rest)))
        if byte == b"*":
            if rest == b"-1":
                return Array(items=None)
            return Array(items=tuple(self._read_response() for _ in range(int(rest))))
        raise AssertionError(f"unexpected RESP line {raw!r}")


@pytest.fixture(scope="module")
def server():
    """A connection to a fresh redis-server (killed at the end)."""
    with redis_server() as port:
        conn = connect(port, _KindParser)
        try:
            version = _ask(conn, (b"INFO", b"server")).data
            assert b"redis_version:7." in version, version[:200]
            yield conn
        finally:
            conn.disconnect()


@pytest.fixture(scope="module")
def other_client(server):
    """A second connection to the same server: the "other client" that writes between WATCH and EXEC."""
    conn = connect(server.port, _KindParser)
    yield conn
    conn.disconnect()


def _ask(conn, args: tuple[bytes, ...]) -> Reply:
    conn.send_command(*args)
    return conn.read_response(disable_decoding=True)


_TIME_DEPENDENT = {b"ttl", b"pttl", b"expiretime", b"pexpiretime"}


def _same(args: tuple[bytes, ...], ours: Reply, theirs: Reply) -> bool:
    name = args[0].lower()
    if name in _TIME_DEPENDENT and isinstance(ours, Integer) and isinstance(theirs, Integer):
        if ours.value < 0 or theirs.value < 0:
            return ours == theirs
        scale = 1 if name in (b"pttl", b"pexpiretime") else 1000
        return abs(ours.value - theirs.value) * scale <= TIME_TOLERANCE_MS
    if name == b"keys" and isinstance(ours, Array) and isinstance(theirs, Array):
        return sorted(x.data for x in ours.items) == sorted(x.data for x in theirs.items)  # type: ignore[union-attr]
    if name == b"scan" and isinstance(ours, Array) and isinstance(theirs, Array) and ours.items and theirs.items:
        # A scan that finished in one call on both sides: the same keys (cursors are implementation-defined).
        done = ours.items[0] == theirs.items[0] == BulkString(data=b"0")
        return done and sorted(x.data for x in ours.items[1].items) == sorted(x.data for x in theirs.items[1].items)
    if name == b"randomkey":
        return type(ours) is type(theirs) and (ours.data is None) == (theirs.data is None)  # type: ignore[union-attr]
    return render(ours, 2) == render(theirs, 2)


class _Run:
    """One case: the server flushed, a fresh KeySpace at the case's start time."""

    def __init__(self, conn, string_size_bytes_max: int | None = None) -> None:
        self.conn = conn
        assert _ask(conn, (b"FLUSHALL",)) == SimpleString(text="OK")
        self.ks = KeySpace() if string_size_bytes_max is None else KeySpace(string_size_bytes_max=string_size_bytes_max)
        self.now_ms = int(time.time() * 1000)
        self.log: list[str] = []

    def values(self) -> dict[str, int]:
        s = self.now_ms // 1000
        return {"now_ms": self.now_ms, "now_s": s, "fut_s": s + 1000, "fut_ms": self.now_ms + 1_000_000,
                "past_s": s - 1000, "past_ms": self.now_ms - 1_000_000}

    def check(self, args: tuple[bytes, ...], conn=None) -> None:
        theirs = _ask(conn or self.conn, args)
        ours = self.ks.execute(args, self.now_ms)
        self.log.append(f"{args!r}: redis {theirs!r}, ours {ours!r}")
        assert _same(args, ours, theirs), "\n".join(self.log)


# ---- a fixed corpus of tricky cases: each runs from an empty database ----

CORPUS: list[tuple[str, str]] = [
    # arity, unknown commands
    ("arity", "GET; SET k; GETRANGE k 0; MSET a; MSET a 1 b; MSETNX a 1 b; EXPIRE k; TTL; DEL"),
    ("unknown", "NOSUCH a b; nosuch"),
    # SET and its options
    ("set-basic", "SET k v; GET k; SET k v2; GET k; SET '' empty; GET ''"),
    ("set-nx-xx", "SET k v XX; GET k; SET k v NX; SET k w NX; GET k; SET k w XX; GET k; SET k x NX XX; SET k x XX NX"),
    ("set-nx-nx", "SET k v NX NX; SET k v xx xx; GET k"),
    ("set-get", "SET k v GET; SET k w GET; SET k x NX GET; GET k; SET j y XX GET; GET j; SET k z XX GET; GET k"),
    ("set-ex", "SET k v EX 1000; TTL k; SET k v PX 1000000; PTTL k; SET k v; TTL k"),
    ("set-ex-errors", "SET k v EX 0; SET k v EX -1; SET k v PX 0; SET k v EX abc; SET k v EX 1.5; "
     "SET k v EX 9223372036854775807; SET k v EX 9223372036854776; SET k v PX 9223372036854775807; "
     "SET k v EXAT 0; SET k v PXAT -5; SET k v EX; SET k v PX; GET k"),
    ("set-ex-conflicts", "SET k v EX 100 PX 100; SET k v EX 100 KEEPTTL; SET k v KEEPTTL EX 100; "
     "SET k v EXAT 100 PXAT 100; SET k v EX 100 EX 200; TTL k; SET k v PERSIST; SET k v FOO; GET k"),
    ("set-keepttl", "SET k v EX 1000; SET k w KEEPTTL; TTL k; GET k; SET k x; TTL k"),
    ("set-exat", "SET k v EXAT {fut_s}; EXPIRETIME k; SET k v PXAT {fut_ms}; PEXPIRETIME k; "
     "SET k v EXAT {past_s}; GET k; EXISTS k; SET k v PXAT {past_ms} GET; GET k"),
    ("set-get-wrongtype", "LPUSH l x; SET l v GET; TYPE l; SET l v; TYPE l; GET l"),
    ("set-case", "set k v ex 1000 nx; TTL k; SeT k v Px 100000 Xx; PTTL k"),
    ("setnx", "SETNX k v; SETNX k w; GET k"),
    ("setex", "SETEX k 1000 v; TTL k; SETEX k 0 v; SETEX k -1 v; SETEX k x v; PSETEX k 0 v; PSETEX k 100000 w; "
     "GET k; PSETEX k 9223372036854775807 v; SETEX k 9223372036854775 v"),
    ("getset", "GETSET k v; GETSET k w; SET k v EX 1000; GETSET k x; TTL k; LPUSH l a; GETSET l v"),
    ("getdel", "GETDEL k; SET k v; GETDEL k; EXISTS k; LPUSH l a; GETDEL l"),
    ("getex", "GETEX k; GETEX k EX -1; SET k v; GETEX k; GETEX k EX 1000; TTL k; GETEX k PERSIST; TTL k; "
     "GETEX k PX 100000; GETEX k EXAT {fut_s}; EXPIRETIME k; GETEX k PXAT {fut_ms}; PEXPIRETIME k"),
    ("getex-errors", "SET k v; GETEX k EX 0; GETEX k PX -1; GETEX k EX abc; GETEX k NX; GETEX k GET; "
     "GETEX k KEEPTTL; GETEX k EX 10 PERSIST; GETEX k PERSIST EX 10; GETEX k EX; GETEX k FOO; "
     "GETEX k EX 9223372036854775807; GETEX missing EX 0; GETEX missing FOO"),
    ("getex-past", "SET k v; GETEX k EXAT {past_s}; EXISTS k; SET k v; GETEX k PXAT {past_ms}; GET k"),
    ("getex-wrongtype", "LPUSH l a; GETEX l; GETEX l EX 0"),
    ("mget", "MGET a b; SET a 1; LPUSH l x; MGET a b l a"),
    ("mset", "MSET a 1 b 2 a 3; MGET a b; SET c 1 EX 1000; MSET c 2; TTL c; MSETNX a 1 d 2; EXISTS d; "
     "MSETNX d 1 e 2; MGET d e; MSETNX f 1 f 2; GET f"),
    ("append", "APPEND k ab; APPEND k cd; GET k; SET k v EX 1000; APPEND k x; TTL k; APPEND k ''; LPUSH l a; APPEND l x"),
    ("strlen", "STRLEN k; SET k abc; STRLEN k; SET n 12345; STRLEN n; LPUSH l a; STRLEN l"),
    ("getrange", "GETRANGE k 0 -1; SET k Hello; GETRANGE k 0 -1; GETRANGE k 1 3; GETRANGE k -3 -1; GETRANGE k -1 -3; "
     "GETRANGE k 3 1; GETRANGE k 10 20; GETRANGE k -100 100; GETRANGE k 0 0; GETRANGE k -9223372036854775808 "
     "9223372036854775807; GETRANGE k a 1; GETRANGE k 0 b; SET e ''; GETRANGE e 0 -1; SET n 1234; GETRANGE n 1 2; "
     "LPUSH l a; GETRANGE l 0 1; GETRANGE l x 1; SUBSTR k 1 3; SUBSTR k -3 x; SUBSTR missing 0 1; SUBSTR l 0 1"),
    ("setrange", "SETRANGE k 5 ab; GET k; SETRANGE k 0 xy; GET k; SETRANGE k 1 ''; SETRANGE missing 3 ''; "
     "EXISTS missing; SETRANGE k -1 a; SETRANGE k x a; SET k v EX 1000; SETRANGE k 1 zz; TTL k; GET k; "
     "SETRANGE k 536870912 x; SETRANGE k 536870911 ''; SETRANGE k 9223372036854775807 x; LPUSH l a; "
     "SETRANGE l 0 x; SETRANGE l 0 ''"),
    ("incr", "INCR k; INCR k; DECR k; INCRBY k 10; DECRBY k 3; GET k; INCRBY k -20; GET k"),
    ("incr-errors", "SET k abc; INCR k; SET k ' 1'; INCR k; SET k 01; INCR k; SET k -0; INCR k; SET k +1; INCR k; "
     "SET k 1.0; INCR k; SET k 9223372036854775807; INCR k; DECR k; SET k -9223372036854775808; DECR k; "
     "INCRBY k x; INCRBY k 1.5; DECRBY k -9223372036854775808; INCRBY k 9223372036854775808; LPUSH l a; INCR l; "
     "INCRBY l x; SET e ''; INCR e"),
    ("incr-ttl", "SET k 1 EX 1000; INCR k; TTL k; INCRBYFLOAT k 1.5; TTL k"),
    ("incrbyfloat", "INCRBYFLOAT k 0.1; INCRBYFLOAT k 0.2; INCRBYFLOAT k -0.3; INCRBYFLOAT k 1e10; INCRBYFLOAT k 3.0e3; "
     "INCRBYFLOAT k -1e10; INCRBYFLOAT k 5.0e-5; SET k 10.50; INCRBYFLOAT k 0.1; INCRBYFLOAT k 1e300; "
     "SET k 1; INCRBYFLOAT k -1; INCRBYFLOAT k -0; SET k 3; INCRBYFLOAT k 0x10; INCRBYFLOAT k 0x1.8p1; "
     "INCRBYFLOAT k .5; INCRBYFLOAT k 5.; INCRBYFLOAT k 1E2; INCRBYFLOAT k 123456789.123456789"),
    ("incrbyfloat-errors", "INCRBYFLOAT k abc; INCRBYFLOAT k ''; INCRBYFLOAT k ' 1'; INCRBYFLOAT k '1 '; "
     "INCRBYFLOAT k nan; INCRBYFLOAT k inf; INCRBYFLOAT k -inf; INCRBYFLOAT k 1e5000; INCRBYFLOAT k 1e-5000; "
     "INCRBYFLOAT k 1e; INCRBYFLOAT k 0x; SET k abc; INCRBYFLOAT k 1; SET k inf; INCRBYFLOAT k 1; "
     "SET k 1e4931; INCRBYFLOAT k 1e4931; LPUSH l a; INCRBYFLOAT l 1; INCRBYFLOAT l abc"),
    # keys
    ("del-exists", "SET a 1; SET b 2; EXISTS a a b c; DEL a a c; EXISTS a; UNLINK b b; DBSIZE"),
    ("type", "TYPE k; SET k v; TYPE k; LPUSH l a; TYPE l; HSET h f v; TYPE h"),
    ("keys", "MSET hello 1 hallo 2 hxllo 3 hllo 4 heeeello 5 'h*llo' 6 'h\\llo' 7 x 8; KEYS h?llo; KEYS h*llo; "
     "KEYS h[ae]llo; KEYS h[^e]llo; KEYS h[a-b]llo; KEYS h[b-a]llo; KEYS *; KEYS ''; KEYS h\\*llo; "
     "KEYS 'h\\\\llo'; KEYS x*; KEYS ***x**; KEYS h[; KEYS h[a; KEYS 'h[^'; KEYS [h]*; KEYS 'h[a-]llo'; "
     "KEYS 'hello\\'; KEYS *llo; KEYS h*l*o; KEYS '?'; KEYS '[\\]]'; KEYS 'h[\\a-b]llo'"),
    ("keys-empty-key", "SET '' v; KEYS *; KEYS **; KEYS ''; KEYS ?"),
    ("rename", "RENAME a b; SET a 1; RENAME a a; RENAME a b; GET b; EXISTS a; SET c 2 EX 1000; RENAME c b; TTL b; "
     "GET b; RENAMENX b b; RENAMENX missing x; SET d 1; RENAMENX b d; RENAMENX b e; GET e; RENAME missing missing"),
    ("rename-types", "LPUSH l a b; RENAME l m; TYPE m; LRANGE m 0 -1; HSET h f v; RENAME h m; TYPE m"),
    ("copy", "COPY a b; SET a 1 EX 1000; COPY a b; GET b; TTL b; COPY a b; SET a 2; COPY a b REPLACE; GET b; TTL b; "
     "COPY a a; COPY a b DB 0 REPLACE; COPY a b DB 16; COPY a b DB x; COPY a b DB; COPY a b FOO; "
     "COPY a b REPLACE REPLACE; COPY a b DB 99999999999"),
    ("copy-types", "LPUSH l a b; COPY l m; LPUSH m c; LRANGE l 0 -1; LRANGE m 0 -1; HSET h f v; COPY h g; HGETALL g"),
    ("dbsize-flush", "DBSIZE; MSET a 1 b 2; DBSIZE; FLUSHDB; DBSIZE; SET a 1; FLUSHALL ASYNC; DBSIZE; FLUSHALL SYNC; "
     "FLUSHDB async; FLUSHDB FOO; FLUSHALL SYNC ASYNC; FLUSHALL x"),
    ("randomkey", "RANDOMKEY; SET a 1; RANDOMKEY; RANDOMKEY"),
    # expiry
    ("expire", "EXPIRE k 100; SET k v; EXPIRE k 1000; TTL k; PEXPIRE k 1000000; PTTL k; EXPIREAT k {fut_s}; "
     "EXPIRETIME k; PEXPIREAT k {fut_ms}; PEXPIRETIME k; PERSIST k; TTL k; PERSIST k; PERSIST missing; "
     "TTL missing; PTTL missing; EXPIRETIME missing; PEXPIRETIME missing; PEXPIRETIME k"),
    ("expire-past", "SET k v; EXPIRE k -1; EXISTS k; SET k v; PEXPIRE k 0; EXISTS k; SET k v; EXPIREAT k {past_s}; "
     "GET k; SET k v; PEXPIREAT k 1; GET k; SET k v; EXPIRE k 0 NX; EXISTS k"),
    ("expire-options", "SET k v; EXPIRE k 1000 XX; TTL k; EXPIRE k 1000 GT; EXPIRE k 1000 LT; TTL k; "
     "EXPIRE k 2000 NX; EXPIRE k 3000 XX; TTL k; EXPIRE k 2000 GT; EXPIRE k 4000 GT; TTL k; EXPIRE k 5000 LT; "
     "EXPIRE k 3500 LT; TTL k; EXPIRE k 100 xx lt; TTL k; PERSIST k; EXPIRE k 1000 nx; TTL k"),
    ("expire-option-errors", "SET k v; EXPIRE k 100 NX XX; EXPIRE k 100 NX GT; EXPIRE k 100 LT NX; "
     "EXPIRE k 100 GT LT; EXPIRE k 100 FOO; EXPIRE k 100 XX FOO; EXPIRE k abc NX XX; EXPIRE k abc FOO; "
     "EXPIRE k 100 NX NX; TTL k; PEXPIRE k 100 gt lt; EXPIREAT k 100 nx xx"),
    ("expire-overflow", "SET k v; EXPIRE k 9223372036854775807; EXPIRE k 9223372036854776; "
     "EXPIRE k 9223372036854775; EXPIRE k -9223372036854775808; EXPIRE k -9223372036854776; "
     "PEXPIRE k 9223372036854775807; PEXPIREAT k 9223372036854775807; PEXPIRETIME k; EXPIREAT k 9223372036854775; "
     "EXPIRETIME k; EXPIRE k abc; EXPIRE k 1.5; EXPIRE missing 9223372036854775807; EXPIRE missing 100"),
    ("expire-types", "LPUSH l a; EXPIRE l 1000; TTL l; HSET h f v; PEXPIRE h 1000000; PTTL h; PERSIST l; TTL l"),
]


def _parse_case(text: str, values: dict[str, int]) -> list[tuple[bytes, ...]]:
    return [tuple(w.encode() for w in shlex.split(line.format(**values), posix=True))
            for line in text.split(";") if line.strip()]


def _uses_missing_command(text: str) -> str | None:
    for line in text.split(";"):
        words = shlex.split(line)
        if words and words[0].lower() in ("lpush", "lrange", "hset", "hgetall") and lookup(words[0]) is None:
            return words[0]
    return None


@pytest.mark.parametrize("name,text", CORPUS, ids=[c[0] for c in CORPUS])
def test_corpus_matches_redis(server, name: str, text: str) -> None:
    """Each case's replies equal the real server's, error texts included."""
    missing = _uses_missing_command(text)
    if missing is not None:
        pytest.skip(f"{missing} is not implemented yet (synod.kv._lists/_hashes)")
    run = _Run(server)
    for args in _parse_case(text, run.values()):
        run.check(args)


def test_nul_bytes_match_redis(server) -> None:
    """Options are compared as C strings (up to a NUL, as strcasecmp does); numbers must use every byte."""
    run = _Run(server)
    for args in [(b"SET", b"k", b"v", b"nx\0foo"), (b"SET", b"k", b"v", b"xx\0foo"), (b"SET", b"k", b"v", b"keepttl\0"),
                 (b"SCAN", b"0\0x"), (b"EXPIRE", b"k", b"100000", b"nx\0a"), (b"EXPIRE", b"k", b"100000", b"foo\0a"),
                 (b"INCRBYFLOAT", b"f", b"1\0"), (b"INCRBYFLOAT", b"f", b"\0"), (b"COPY", b"k", b"j", b"replace\0x"),
                 (b"SCAN", b"0", b"count\0x", b"5"), (b"SCAN", b"0", b"type", b"string\0x"), (b"SET", b"n", b"1\0"),
                 (b"INCR", b"n"), (b"INCRBYFLOAT", b"n", b"1"), (b"INCRBY", b"n", b"1\0"), (b"SET", b"\0", b"\0"),
                 (b"KEYS", b"\0"), (b"KEYS", b"[\0]"), (b"GET", b"\0"), (b"FLUSHALL", b"sync\0x")]:
        run.check(args)


def test_string_size_limit_matches_redis(server) -> None:
    """SETRANGE and APPEND past proto-max-bulk-len (1 MB on both sides) fail with Redis's error."""
    limit = 1024 * 1024
    assert _ask(server, (b"CONFIG", b"SET", b"proto-max-bulk-len", str(limit).encode())) == SimpleString(text="OK")
    try:
        run = _Run(server, string_size_bytes_max=limit)
        for args in [(b"SETRANGE", b"k", str(limit).encode(), b"x"), (b"SETRANGE", b"k", str(limit - 1).encode(), b"x"),
                     (b"STRLEN", b"k"), (b"APPEND", b"k", b"y"), (b"SETRANGE", b"k", str(limit - 2).encode(), b"ab"),
                     (b"SETRANGE", b"k", str(limit - 2).encode(), b"abc"), (b"SET", b"j", b"x" * 1000),
                     (b"SETRANGE", b"j", str(limit - 1000).encode(), b"x" * 1000),
                     (b"SETRANGE", b"j", str(limit - 1000).encode(), b"x" * 1001), (b"STRLEN", b"j")]:
            run.check(args)
    finally:
        _ask(server, (b"CONFIG", b"SET", b"proto-max-bulk-len", b"536870912"))
        _ask(server, (b"FLUSHALL",))


def test_scan_matches_redis_as_sets(server) -> None:
    """A full SCAN (any COUNT, MATCH, TYPE) returns the same keys as the real server's, and the same errors."""
    run = _Run(server)
    setup = [(b"SET", f"key:{i}".encode(), b"v") for i in range(60)] + [(b"LPUSH", b"list:1", b"a")] * (
        lookup("lpush") is not None)
    for args in setup:
        run.check(args)
    for opts in [(), (b"COUNT", b"1"), (b"COUNT", b"7"), (b"MATCH", b"key:1*"), (b"MATCH", b"*", b"COUNT", b"1000"),
                 (b"TYPE", b"string"), (b"TYPE", b"LIST"), (b"TYPE", b"nosuch"), (b"match", b"*:?", b"type", b"string")]:
        keys = {}
        for who in ("ours", "redis"):
            cursor, seen = b"0", set()
            for _ in range(1000):
                args = (b"SCAN", cursor, *opts)
                reply = run.ks.execute(args, run.now_ms) if who == "ours" else _ask(server, args)
                assert isinstance(reply, Array), (args, reply)
                cursor = reply.items[0].data
                seen.update(x.data for x in reply.items[1].items)
                if cursor == b"0":
                    break
            keys[who] = seen
        assert keys["ours"] == keys["redis"], opts
    for args in [(b"SCAN", b"x"), (b"SCAN", b"1.5"), (b"SCAN", b" 1"), (b"SCAN", b"+"), (b"SCAN", b"0", b"COUNT", b"0"),
                 (b"SCAN", b"0", b"COUNT", b"-1"), (b"SCAN", b"0", b"COUNT", b"x"), (b"SCAN", b"0", b"COUNT"),
                 (b"SCAN", b"0", b"MATCH"), (b"SCAN", b"0", b"FOO", b"1"), (b"SCAN", b"99999999999999999999999"),
                 (b"SCAN",)]:
        run.check(args)


# ---- random sequences (hypothesis) ----

class _At:
    """An absolute time argument resolved when the case runs: ``unit`` "s" or "ms", ``offset_ms`` from now."""

    def __init__(self, unit: str, offset_ms: int) -> None:
        self.unit, self.offset_ms = unit, offset_ms

    def resolve(self, now_ms: int) -> bytes:
        at = now_ms + self.offset_ms
        return str(at // 1000 if self.unit == "s" else at).encode()

    def __repr__(self) -> str:
        return f"<now{self.offset_ms:+d}ms in {self.unit}>"


KEYS_ = st.sampled_from([b"a", b"b", b"c"])
INT_WORDS = st.one_of(
    st.integers(-20, 20).map(lambda n: str(n).encode()),
    st.sampled_from([b"9223372036854775807", b"-9223372036854775808", b"9223372036854775808", b"4611686018427387904",
                     b"-4611686018427387904", b"abc", b"", b"1.5", b" 1", b"01", b"-0", b"+1"]),
    st.integers(-(2**63), 2**63 - 1).map(lambda n: str(n).encode()),
)
FLOAT_WORDS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=64).map(lambda x: repr(x).encode()),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).map(lambda x: repr(x).encode()),
    st.decimals(min_value=-10**6, max_value=10**6, places=3, allow_nan=False).map(lambda d: str(d).encode()),
    st.sampled_from([b"inf", b"-inf", b"nan", b"1e", b"0x1p3", b".5", b"5.", b"1e400", b"-1e4933", b"abc", b" 1"]),
    INT_WORDS,
)
VALUES = st.one_of(INT_WORDS, FLOAT_WORDS, st.binary(max_size=8), st.sampled_from([b"hello", b"", b"x" * 20]))
TTL_S = st.one_of(st.integers(100, 10**6).map(lambda n: str(n).encode()),
                  st.sampled_from([b"0", b"-1", b"abc", b"9223372036854775807", b"9223372036854776"]))
TTL_MS = st.one_of(st.integers(100_000, 10**9).map(lambda n: str(n).encode()),
                   st.sampled_from([b"0", b"-5", b"x", b"9223372036854775807"]))
AT = st.one_of(st.integers(100_000, 10**9).map(lambda n: _At("s", n)), st.integers(100_000, 10**9).map(lambda n: _At("ms", n)),
               st.integers(-(10**9), -100_000).map(lambda n: _At("s", n)))
SET_OPTS = st.lists(st.one_of(
    st.sampled_from([(b"NX",), (b"XX",), (b"GET",), (b"KEEPTTL",), (b"PERSIST",), (b"EX",), (b"FOO",)]),
    TTL_S.map(lambda t: (b"EX", t)), TTL_MS.map(lambda t: (b"PX", t)),
    # Only future times: Redis 7.0 keeps a key SET with a past time until it is next read (DBSIZE counts it).
    AT.filter(lambda a: a.offset_ms > 0).map(lambda a: (b"EXAT" if a.unit == "s" else b"PXAT", a)),
), max_size=3).map(lambda opts: tuple(w for o in opts for w in o))
EXPIRE_OPTS = st.lists(st.sampled_from([b"NX", b"XX", b"GT", b"LT", b"nx", b"gt", b"BAD"]), max_size=2).map(tuple)
PATTERNS = st.one_of(st.sampled_from([b"*", b"a", b"?", b"[ab]", b"[^a]", b"[a-b]*", b"\\a", b"*c", b"[", b""]),
                     st.text(alphabet="abc*?[]^-\\", max_size=6).map(str.encode))


def _cmd(*parts):
    return st.tuples(*[p if isinstance(p, st.SearchStrategy) else st.just(p) for p in parts])


COMMANDS = st.one_of(
    _cmd(b"GET", KEYS_), _cmd(b"SET", KEYS_, VALUES),
    _cmd(b"SET", KEYS_, VALUES).flatmap(lambda c: SET_OPTS.map(lambda o: c + o)),
    _cmd(b"SETNX", KEYS_, VALUES), _cmd(b"SETEX", KEYS_, TTL_S, VALUES), _cmd(b"PSETEX", KEYS_, TTL_MS, VALUES),
    _cmd(b"GETSET", KEYS_, VALUES), _cmd(b"GETDEL", KEYS_),
    _cmd(b"GETEX", KEYS_).flatmap(lambda c: SET_OPTS.map(lambda o: c + o)),
    _cmd(b"MGET", KEYS_, KEYS_), _cmd(b"MSET", KEYS_, VALUES, KEYS_, VALUES), _cmd(b"MSETNX", KEYS_, VALUES, KEYS_, VALUES),
    _cmd(b"MSET", KEYS_, VALUES, KEYS_),
    _cmd(b"APPEND", KEYS_, VALUES), _cmd(b"STRLEN", KEYS_), _cmd(b"GETRANGE", KEYS_, INT_WORDS, INT_WORDS),
    _cmd(b"SETRANGE", KEYS_, st.one_of(st.integers(0, 30).map(lambda n: str(n).encode()), INT_WORDS), VALUES),
    _cmd(b"INCR", KEYS_), _cmd(b"DECR", KEYS_), _cmd(b"INCRBY", KEYS_, INT_WORDS), _cmd(b"DECRBY", KEYS_, INT_WORDS),
    _cmd(b"INCRBYFLOAT", KEYS_, FLOAT_WORDS),
    _cmd(b"DEL", KEYS_, KEYS_), _cmd(b"UNLINK", KEYS_), _cmd(b"EXISTS", KEYS_, KEYS_, KEYS_), _cmd(b"TYPE", KEYS_),
    _cmd(b"KEYS", PATTERNS), _cmd(b"RENAME", KEYS_, KEYS_), _cmd(b"RENAMENX", KEYS_, KEYS_),
    _cmd(b"COPY", KEYS_, KEYS_).flatmap(lambda c: st.sampled_from([(), (b"REPLACE",), (b"DB", b"0"), (b"DB", b"1x")]).map(
        lambda o: c + o)),
    _cmd(b"DBSIZE"), _cmd(b"RANDOMKEY"),
    _cmd(st.sampled_from([b"EXPIRE", b"SETEX"]), KEYS_, TTL_S).map(lambda c: (b"EXPIRE",) + c[1:]).flatmap(
        lambda c: EXPIRE_OPTS.map(lambda o: c + o)),
    _cmd(b"PEXPIRE", KEYS_, TTL_MS).flatmap(lambda c: EXPIRE_OPTS.map(lambda o: c + o)),
    _cmd(b"EXPIREAT", KEYS_, AT.filter(lambda a: a.unit == "s")).flatmap(lambda c: EXPIRE_OPTS.map(lambda o: c + o)),
    _cmd(b"PEXPIREAT", KEYS_, AT).flatmap(lambda c: EXPIRE_OPTS.map(lambda o: c + o)),
    _cmd(b"TTL", KEYS_), _cmd(b"PTTL", KEYS_), _cmd(b"EXPIRETIME", KEYS_), _cmd(b"PEXPIRETIME", KEYS_),
    _cmd(b"PERSIST", KEYS_),
)
LIST_HASH = st.one_of(_cmd(b"LPUSH", KEYS_, VALUES), _cmd(b"HSET", KEYS_, VALUES, VALUES))


def _sequences():
    pool = COMMANDS if lookup("lpush") is None or lookup("hset") is None else st.one_of(COMMANDS, LIST_HASH)
    return st.lists(pool, min_size=1, max_size=25)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seq=_sequences())
def test_random_sequences_match_redis(server, seq) -> None:
    """Random command sequences over three keys: every reply equals the real server's."""
    run = _Run(server)
    for cmd in seq:
        args = tuple(w.resolve(run.now_ms) if isinstance(w, _At) else w for w in cmd)
        run.check(args)


GLOB_BYTES = b"ab[]^-\\*?\x80\xff"


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(keys=st.lists(st.binary(max_size=5).map(lambda b: bytes(GLOB_BYTES[x % len(GLOB_BYTES)] for x in b)),
                     min_size=1, max_size=12, unique=True),
       patterns=st.lists(st.binary(max_size=7).map(lambda b: bytes(GLOB_BYTES[x % len(GLOB_BYTES)] for x in b)),
                         min_size=1, max_size=6))
def test_random_glob_patterns_match_redis(server, keys, patterns) -> None:
    """KEYS and SCAN MATCH with random patterns over an alphabet of the glob's
    special characters (and bytes >= 0x80, compared as C's signed char)
    select the same keys as the real server's stringmatchlen."""
    run = _Run(server)
    run.check((b"MSET", *[w for k in keys for w in (k, b"v")]))
    for pattern in patterns:
        run.check((b"KEYS", pattern))
        ours = run.ks.execute((b"SCAN", b"0", b"MATCH", pattern, b"COUNT", b"100"), run.now_ms)
        theirs = _ask(server, (b"SCAN", b"0", b"MATCH", pattern, b"COUNT", b"100"))
        assert sorted(x.data for x in ours.items[1].items) == sorted(x.data for x in theirs.items[1].items), pattern


MY_COMMANDS = ("del unlink exists type keys scan rename renamenx randomkey copy dbsize flushdb flushall expire pexpire "
               "expireat pexpireat ttl pttl persist expiretime pexpiretime get set setnx setex psetex getset getdel "
               "getex mget mset msetnx append strlen getrange substr setrange incr decr incrby decrby incrbyfloat").split()


@pytest.mark.parametrize("name", MY_COMMANDS)
def test_command_table_matches_command_info(server, name: str) -> None:
    """Arity, flags and key positions of each command equal the real server's COMMAND INFO."""
    info = _ask(server, (b"COMMAND", b"INFO", name.encode()))
    assert isinstance(info, Array)
    entry = info.items[0]
    name_r, arity, flags, first, last, step = entry.items[:6]
    spec = lookup(name)
    assert spec is not None
    assert name_r.data.decode() == spec.name
    assert arity.value == spec.arity
    assert {f.text for f in flags.items} == set(spec.flags)
    assert (first.value, last.value, step.value) == (spec.first_key, spec.last_key, spec.step)


def _resolve(cmd, now_ms: int) -> tuple[bytes, ...]:
    return tuple(w.resolve(now_ms) if isinstance(w, _At) else w for w in cmd)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(setup=st.lists(COMMANDS, max_size=8), watch=st.lists(KEYS_, min_size=1, max_size=3, unique=True),
       between=st.lists(COMMANDS, max_size=4), tx=st.lists(COMMANDS, min_size=1, max_size=5))
def test_watch_multi_exec_matches_redis(server, other_client, setup, watch, between, tx) -> None:
    """WATCH, writes by another client, MULTI ... EXEC: the transaction is
    aborted (nil) exactly when the real server aborts it, so a key's version
    changes exactly when Redis would mark a watcher dirty; otherwise the
    replies inside EXEC are the same."""
    assert isinstance(_ask(server, (b"DISCARD",)), (SimpleString, SimpleError))  # leave any MULTI a failure left open
    assert _ask(server, (b"UNWATCH",)) == SimpleString(text="OK")
    run = _Run(server)
    for cmd in setup:
        run.check(_resolve(cmd, run.now_ms))
    assert _ask(server, (b"WATCH", *watch)) == SimpleString(text="OK")
    watched = [(k, run.ks.version(k)) for k in watch]
    for cmd in between:
        run.check(_resolve(cmd, run.now_ms), conn=other_client)
    tx_args = [_resolve(cmd, run.now_ms) for cmd in tx]
    assert _ask(server, (b"MULTI",)) == SimpleString(text="OK")
    for args in tx_args:
        assert _ask(server, args) == SimpleString(text="QUEUED"), args
    theirs = _ask(server, (b"EXEC",))
    ours = run.ks.execute_multi(tx_args, watched, run.now_ms)
    context = "\n".join(run.log + [f"WATCH {watch!r}; MULTI {tx_args!r}: redis {theirs!r}, ours {ours!r}"])
    assert isinstance(ours, Array), context
    assert isinstance(theirs, Array), context
    assert (ours.items is None) == (theirs.items is None), context
    if ours.items is not None:
        assert len(ours.items) == len(theirs.items), context
        for args, a, b in zip(tx_args, ours.items, theirs.items, strict=True):
            assert _same(args, a, b), context
