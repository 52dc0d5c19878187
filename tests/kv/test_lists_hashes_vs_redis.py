"""The list and hash commands against a real Redis 7 server, reply for reply.

Debian's ``redis-server`` is started on a free port (skipped, with the
reason, when it is not on PATH); each case sends the same commands to it,
through redis-py's connection with a parser that keeps the RESP reply kind
(simple string, bulk string, integer, array, map, null, error), and to a
fresh :class:`KeySpace`, and compares the replies exactly, in RESP2 and in
RESP3 (``HELLO 3``): our reply is compared in the shape the protocol would
write it (a Map is a flat array in RESP2; nil bulk and nil array are both
null in RESP3).

Known, deliberate differences, compared loosely:
- HRANDFIELD picks differently (ours is a deterministic function of the
  state): compared by shape and membership, exactly when the whole hash is
  returned; with WITHVALUES Redis 7 answers [field, value] pairs in RESP3,
  we answer the flat RESP2 array in both protocols.
- A hash Redis has turned into a hash table (a field or value over 64
  bytes, or over 128 fields) iterates in an order seeded at random per
  process: its HGETALL/HKEYS/HVALS are compared as sets, its HSCAN not at
  all (a full scan of a large hash is compared as a set in
  test_large_hash_scan_visits_every_field).
- HSCAN NOVALUES is Redis 7.4's; the server here is 7.0, so it is not
  compared.
- A blocking command with nothing to take returns WOULD_BLOCK here; the
  server is given timeout 0.01 and its timeout reply is compared with
  :data:`BLOCKING_TIMEOUT_REPLY`.

``SYNOD_FUZZ_EXAMPLES`` (default 200) sets the number of random command
sequences; ``SYNOD_FUZZ_SEED`` (default 0) their seed.
"""

from __future__ import annotations

import os
import shlex

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from tests.kv._redis_server import connect, redis_server

from synod.kv._lists import BLOCKING_TIMEOUT_REPLY
from synod.kv.commands import WOULD_BLOCK
from synod.kv.replies import (
    Array,
    Boolean,
    BulkString,
    Double,
    Integer,
    Map,
    Reply,
    Set,
    SimpleError,
    SimpleString,
    VerbatimString,
)
from synod.kv.store import KeySpace

redis = pytest.importorskip("redis")
from redis._parsers.resp2 import _RESP2Parser  # noqa: E402  (pinned redis-py 8.2.0)
from redis.exceptions import ConnectionError as RedisConnectionError  # noqa: E402

FUZZ_EXAMPLES = int(os.environ.get("SYNOD_FUZZ_EXAMPLES", 200))
FUZZ_SEED = int(os.environ.get("SYNOD_FUZZ_SEED", 0))
NOW_MS = 1_000_000
NULL = BulkString(data=None)  # RESP3's one null, whatever the RESP2 kind


class _KindParser(_RESP2Parser):
    """redis-py's parser reading RESP2 and RESP3 into our typed replies, so the kind is compared too."""

    def _read_response(self, disable_decoding=False, timeout=None):  # noqa: ARG002
        raw = self._buffer.readline(timeout=timeout) if timeout is not None else self._buffer.readline()
        if not raw:
            raise RedisConnectionError("server closed the connection")
        byte, rest = raw[:1], raw[1:]
        text = rest.decode("utf-8", errors="replace")
        if byte == b"-":
            return SimpleError(text=text)
        if byte == b"+":
            return SimpleString(text=text)
        if byte in (b":", b"("):
            return Integer(value=int(rest))
        if byte == b"$":
            return BulkString(data=None if rest == b"-1" else self._buffer.read(int(rest)))
        if byte == b"*":
            if rest == b"-1":
                return Array(items=None)
            return Array(items=tuple(self._read_response() for _ in range(int(rest))))
        if byte == b"_":
            return NULL
        if byte == b"%":
            return Map(pairs=tuple((self._read_response(), self._read_response()) for _ in range(int(rest))))
        if byte == b"~":
            return Set(items=tuple(self._read_response() for _ in range(int(rest))))
        if byte == b",":
            return Double(value=float(rest))
        if byte == b"#":
            return Boolean(value=rest == b"t")
        if byte == b"=":
            data = self._buffer.read(int(rest))
            return VerbatimString(format=data[:3].decode(), text=data[4:].decode("utf-8", errors="replace"))
        raise AssertionError(f"unexpected RESP line {raw!r}")


@pytest.fixture(scope="module")
def server():
    """{2: a RESP2 connection, 3: a RESP3 connection} to a fresh redis-server (killed at the end)."""
    with redis_server() as port:
        conns = {proto: connect(port, _KindParser) for proto in (2, 3)}
        try:
            hello = _ask(conns[3], (b"HELLO", b"3"))
            assert isinstance(hello, Map), hello
            version = _ask(conns[2], (b"INFO", b"server")).data
            assert b"redis_version:7." in version, version[:200]
            yield conns
        finally:
            for conn in conns.values():
                conn.disconnect()


def _ask(conn, args: tuple[bytes, ...]) -> Reply:
    conn.send_command(*args)
    return conn.read_response(disable_decoding=True)


def _wire(reply: Reply, proto: int) -> Reply:
    """``reply`` as a client reading protocol ``proto`` sees it."""
    if isinstance(reply, Array):
        if reply.items is None:
            return NULL if proto == 3 else reply
        return Array(items=tuple(_wire(x, proto) for x in reply.items))
    if isinstance(reply, Map):
        pairs = tuple((_wire(k, proto), _wire(v, proto)) for k, v in reply.pairs)
        return Map(pairs=pairs) if proto == 3 else Array(items=tuple(x for p in pairs for x in p))
    return reply


def _ours(ks: KeySpace, args: tuple[bytes, ...]) -> Reply:
    reply = ks.execute(args, NOW_MS)
    if reply is WOULD_BLOCK:
        return BLOCKING_TIMEOUT_REPLY[args[0].decode().lower()]
    return reply


def _hrandfield_same(args: tuple[bytes, ...], before: object, ours: Reply, theirs: Reply, proto: int,
                     unordered: bool) -> bool:
    """HRANDFIELD picks at random: same kind and size, members of the hash
    (with their values), distinct for a positive count, exact when the whole
    hash is asked for."""
    if isinstance(ours, SimpleError) or isinstance(theirs, SimpleError) or not isinstance(before, dict):
        return ours == theirs
    if len(args) == 2:
        return isinstance(theirs, BulkString) and isinstance(ours, BulkString) and theirs.data in before
    withvalues = len(args) == 4
    if withvalues and proto == 3:  # Redis 7 nests [field, value] pairs in RESP3
        assert isinstance(theirs, Array)
        theirs = Array(items=tuple(x for pair in theirs.items for x in pair.items))  # type: ignore[union-attr]
    count = int(args[2])
    assert isinstance(ours, Array) and isinstance(theirs, Array)
    if count >= len(before):
        return _sorted_view(b"hgetall" if withvalues else b"hkeys", ours) == _sorted_view(
            b"hgetall" if withvalues else b"hkeys", theirs) if unordered else ours == theirs
    step = 2 if withvalues else 1

    def ok(reply: Array) -> bool:
        fields = [x.data for x in reply.items[::step]]  # type: ignore[union-attr]
        if withvalues and any(before.get(f) != v.data for f, v in zip(fields, reply.items[1::2])):  # type: ignore
            return False
        return all(f in before for f in fields) and (count < 0 or len(set(fields)) == len(fields))

    return len(ours.items) == len(theirs.items) and ok(ours) and ok(theirs)


# Redis keeps a hash as a listpack (insertion order, as ours) until a field or
# value is longer than 64 bytes or it has more than 128 fields; from then on,
# for the rest of the key's life, as a hash table whose order comes from a
# per-process random seed: no one can match that order, so such a hash's
# whole-hash replies are compared as sets and its HSCAN is not compared.
LISTPACK_VALUE_BYTES_MAX = 64
LISTPACK_ENTRIES_MAX = 128


def _sorted_view(name: bytes, reply: Reply) -> Reply:
    """HGETALL/HKEYS/HVALS/HRANDFIELD replies with their order taken away."""
    if isinstance(reply, Map):
        return Map(pairs=tuple(sorted(reply.pairs, key=repr)))
    if not isinstance(reply, Array) or reply.items is None:
        return reply
    if name == b"hgetall":
        pairs = sorted(zip(reply.items[::2], reply.items[1::2]), key=repr)
        return Array(items=tuple(x for p in pairs for x in p))
    return Array(items=tuple(sorted(reply.items, key=repr)))


class _Run:
    """One case: the server flushed, a fresh KeySpace."""

    def __init__(self, conn, proto: int) -> None:
        self.conn, self.proto = conn, proto
        assert _ask(conn, (b"FLUSHALL",)) == SimpleString(text="OK")
        self.ks = KeySpace()
        self.log: list[str] = []
        self.compared = 0
        self.hashtables: set[bytes] = set()  # keys Redis holds as a hash table (see above)

    def check(self, args: tuple[bytes, ...]) -> None:
        name = args[0].lower()
        if name == b"hscan" and any(a.lower() == b"novalues" for a in args[3:]):
            return  # Redis 7.4's option; the server is 7.0
        key = args[1] if len(args) > 1 else None
        unordered = key in self.hashtables
        before = self.ks.get(key, NOW_MS) if key is not None else None
        theirs = _ask(self.conn, args)
        ours = _wire(_ours(self.ks, args), self.proto)
        self.log.append(f"{args!r}: redis {theirs!r}, ours {ours!r}")
        self._track()
        if unordered and name == b"hscan" and isinstance(theirs, Array):
            return
        if unordered and name in (b"hgetall", b"hkeys", b"hvals"):
            ours, theirs = _sorted_view(name, ours), _sorted_view(name, theirs)
        if name == b"hrandfield":
            same = _hrandfield_same(args, before, ours, theirs, self.proto, unordered)
        else:
            same = ours == theirs
        assert same, f"RESP{self.proto}\n" + "\n".join(self.log)
        self.compared += 1

    def _track(self) -> None:
        for key in self.ks.live_keys(NOW_MS):
            h = self.ks.get(key, NOW_MS)
            if isinstance(h, dict) and (len(h) > LISTPACK_ENTRIES_MAX or any(
                    len(f) > LISTPACK_VALUE_BYTES_MAX or len(v) > LISTPACK_VALUE_BYTES_MAX for f, v in h.items())):
                self.hashtables.add(key)
        self.hashtables = {k for k in self.hashtables if isinstance(self.ks.get(k, NOW_MS), dict)}


# ---- a fixed corpus of tricky cases: each runs from an empty database ----

CORPUS: list[tuple[str, str]] = [
    ("arity", "LPUSH k; LPOP; LPOP k 1 2; RPOP k 1 2; LRANGE k 0; LINSERT k before p; LPOS k; LMPOP 1 k; "
     "BLPOP k; BLMPOP 0 1 k; HSET k f; HSET k f v g; HMSET k f v g; HGET k; HMGET k; HDEL k; HSCAN k; HRANDFIELD"),
    # pushes and pops
    ("push", "LPUSH k a b c; RPUSH k d e; LRANGE k 0 -1; LLEN k; LPUSHX k x; RPUSHX k y; LRANGE k 0 -1; "
     "LPUSHX m a; RPUSHX m a b; EXISTS m; LPUSH '' e; LRANGE '' 0 -1"),
    ("push-wrongtype", "SET s v; LPUSH s a; RPUSH s a; LPUSHX s a; RPUSHX s a; HSET h f v; LPUSH h a; LLEN s"),
    ("pop", "RPUSH k a b c d e; LPOP k; RPOP k; LPOP k 2; RPOP k 5; EXISTS k; LPOP k; RPOP k; LPOP k 1; RPOP k 0"),
    ("pop-count", "RPUSH k a b c; LPOP k 0; RPOP k 0; LPOP k -1; RPOP k abc; LPOP k 1.5; LPOP k ''; "
     "LPOP k 9223372036854775807; EXISTS k; LPOP missing 0; LPOP missing 2; LPOP missing -1; LPOP missing x; "
     "SET s v; LPOP s; LPOP s 2; LPOP s -1; RPOP s 0"),
    # reading
    ("lrange", "RPUSH k a b c d e; LRANGE k 0 0; LRANGE k -2 -1; LRANGE k 1 -2; LRANGE k 3 1; LRANGE k -100 100; "
     "LRANGE k 5 10; LRANGE k -1 -5; LRANGE k 0 -6; LRANGE k -9223372036854775808 9223372036854775807; "
     "LRANGE k x 1; LRANGE k 0 y; LRANGE missing 0 -1; LRANGE missing x y; SET s v; LRANGE s 0 -1; LRANGE s x 0"),
    ("lindex", "RPUSH k a b c; LINDEX k 0; LINDEX k -1; LINDEX k 2; LINDEX k 3; LINDEX k -4; LINDEX k x; "
     "LINDEX missing x; LINDEX missing 0; SET s v; LINDEX s 0; LINDEX s x; LLEN s; LLEN missing"),
    # editing by index
    ("lset", "LSET missing 0 x; LSET missing x x; RPUSH k a b c; LSET k 0 x; LSET k -1 z; LSET k 3 w; LSET k -4 w; "
     "LSET k y w; LRANGE k 0 -1; SET s v; LSET s 0 x; LSET s x x"),
    ("lrem", "RPUSH k a b a c a b a; LREM k 2 a; LRANGE k 0 -1; LREM k -1 b; LRANGE k 0 -1; LREM k 0 a; "
     "LRANGE k 0 -1; LREM k 0 zz; LREM k x a; LREM missing 1 a; LREM missing x a; LREM k 0 c; LREM k 0 b; "
     "EXISTS k; RPUSH j a a a; LREM j -9223372036854775808 a; EXISTS j; SET s v; LREM s 1 v; LREM s x v"),
    ("ltrim", "RPUSH k a b c d e; LTRIM k 1 -2; LRANGE k 0 -1; LTRIM k 0 100; LRANGE k 0 -1; LTRIM k -1 -1; "
     "LRANGE k 0 -1; LTRIM k 1 0; EXISTS k; LTRIM missing 0 1; LTRIM missing x 1; RPUSH j a b; LTRIM j 5 10; "
     "EXISTS j; RPUSH j a b; LTRIM j -100 -3; EXISTS j; LTRIM j x 1; SET s v; LTRIM s 0 1; LTRIM s x 1"),
    ("linsert", "LINSERT missing BEFORE a x; LINSERT missing middle a x; RPUSH k a b a; LINSERT k BEFORE a x; "
     "LINSERT k after a y; LINSERT k AFTER zz y; LINSERT k up a y; LRANGE k 0 -1; LINSERT k before b ''; "
     "LRANGE k 0 -1; SET s v; LINSERT s BEFORE a x; LINSERT s middle a x"),
    ("lpos", "RPUSH k a b c a b c a; LPOS k a; LPOS k b; LPOS k zz; LPOS k a RANK 2; LPOS k a RANK -1; "
     "LPOS k a RANK -3; LPOS k a RANK 4; LPOS k a RANK -4; LPOS k a COUNT 0; LPOS k a COUNT 2; "
     "LPOS k a COUNT 2 RANK -1; LPOS k a RANK 2 COUNT 0; LPOS k a MAXLEN 3; LPOS k a MAXLEN 3 COUNT 0; "
     "LPOS k c MAXLEN 2; LPOS k c MAXLEN 3 RANK -1; LPOS k a RANK -1 MAXLEN 1; LPOS k zz COUNT 1; "
     "LPOS missing a; LPOS missing a COUNT 0; LPOS k a rank 1 rank 2; LPOS k a count 1 count 0"),
    ("lpos-errors", "RPUSH k a b a; LPOS k a RANK 0; LPOS k a RANK x; LPOS k a RANK -9223372036854775808; "
     "LPOS k a RANK -9223372036854775808 COUNT 1; LPOS k a COUNT -1; LPOS k a COUNT x; LPOS k a MAXLEN -1; "
     "LPOS k a MAXLEN y; LPOS k a MAXLEN; LPOS k a RANK; LPOS k a FOO 1; LPOS missing a RANK 0; "
     "LPOS missing a FOO; SET s v; LPOS s a; LPOS s a RANK 0"),
    # moving
    ("lmove", "RPUSH k a b c; LMOVE k j LEFT RIGHT; LMOVE k j RIGHT LEFT; LMOVE k j left left; LRANGE j 0 -1; "
     "EXISTS k; LMOVE k j LEFT LEFT; LMOVE j j LEFT RIGHT; LRANGE j 0 -1; LMOVE j j RIGHT LEFT; LRANGE j 0 -1; "
     "LMOVE j j up LEFT; LMOVE missing j LEFT up; LMOVE missing j LEFT LEFT"),
    ("lmove-single-rotate", "RPUSH k a; LMOVE k k LEFT RIGHT; LRANGE k 0 -1; RPOPLPUSH k k; LRANGE k 0 -1"),
    ("lmove-wrongtype", "SET s v; RPUSH k a; LMOVE k s LEFT LEFT; LRANGE k 0 -1; LMOVE s k LEFT LEFT; "
     "LMOVE missing s LEFT LEFT; RPOPLPUSH k s; RPOPLPUSH s k; RPOPLPUSH missing s; HSET h f v; RPOPLPUSH k h"),
    ("rpoplpush", "RPUSH k a b c; RPOPLPUSH k j; RPOPLPUSH k j; RPOPLPUSH k j; EXISTS k; LRANGE j 0 -1; "
     "RPOPLPUSH j j; LRANGE j 0 -1; RPOPLPUSH missing j"),
    ("lmpop", "RPUSH a 1 2 3; RPUSH b 4 5; LMPOP 2 missing a LEFT; LMPOP 2 a b RIGHT COUNT 10; EXISTS a; "
     "LMPOP 2 a b left count 1; LMPOP 2 a b RIGHT; LMPOP 1 b LEFT; LMPOP 1 missing RIGHT COUNT 2"),
    ("lmpop-errors", "RPUSH a 1; LMPOP 0 a LEFT; LMPOP -1 a LEFT; LMPOP x a LEFT; LMPOP 2 a LEFT; "
     "LMPOP 1 a MIDDLE; LMPOP 1 a LEFT COUNT 0; LMPOP 1 a LEFT COUNT -1; LMPOP 1 a LEFT COUNT x; "
     "LMPOP 1 a LEFT COUNT; LMPOP 1 a LEFT COUNT 1 COUNT 1; LMPOP 1 a LEFT FOO; LMPOP 3 a b LEFT; "
     "LMPOP 9223372036854775807 a LEFT; BLMPOP 0 9223372036854775807 a LEFT; "
     "SET s v; LMPOP 2 missing s LEFT; LMPOP 2 a s LEFT; LMPOP 2 s a LEFT"),
    # blocking forms, with data or with the server's timeout
    ("blpop", "RPUSH a 1 2; RPUSH b 3; BLPOP missing a b 0; BRPOP a b 0; BLPOP a b 0; BLPOP b a 0.01; "
     "BLPOP a b 0.01; BRPOP a 0.01; EXISTS a b"),
    ("blpop-errors", "RPUSH a 1; BLPOP a -1; BLPOP a abc; BLPOP a nan; BLPOP a inf; BLPOP a 1e17; BLPOP a '';"
     "BLPOP a ' 1'; BLPOP a 1e5000; LLEN a; SET s v; BLPOP s 0; BLPOP missing s 0; BLPOP a s 0; BRPOP s -1"),
    ("blpop-timeouts", "RPUSH a 1 2 3 4 5; BLPOP a 0.0001; BLPOP a -0.0001; BLPOP a 0x10; BLPOP a 1e-10; "
     "BLPOP a 9223372036854775.807; BLPOP a 9223372036854776"),
    ("brpoplpush", "RPUSH a 1 2; BRPOPLPUSH a b 0; BRPOPLPUSH a a 0; LRANGE a 0 -1; BRPOPLPUSH a b 0; EXISTS a; "
     "BRPOPLPUSH a b 0.01; BRPOPLPUSH a b -1; BRPOPLPUSH a b x; SET s v; BRPOPLPUSH s b 0; "
     "BRPOPLPUSH missing s 0.01; RPUSH c 1; BRPOPLPUSH c s 0; LRANGE c 0 -1"),
    ("blmove", "RPUSH a 1 2 3; BLMOVE a b LEFT RIGHT 0; BLMOVE a b RIGHT LEFT 0; LRANGE b 0 -1; "
     "BLMOVE a a LEFT RIGHT 0; BLMOVE a b up LEFT 0; BLMOVE a b LEFT up -1; BLMOVE a b LEFT LEFT -1; "
     "BLMOVE a b LEFT LEFT x; BLMOVE missing b LEFT LEFT 0.01; BLMOVE missing b middle LEFT 0.01; "
     "SET s v; BLMOVE a s LEFT LEFT 0; BLMOVE s a LEFT LEFT 0"),
    ("blmpop", "RPUSH a 1 2 3; BLMPOP 0 2 missing a LEFT; BLMPOP 0 1 a RIGHT COUNT 5; EXISTS a; "
     "BLMPOP 0.01 2 a b LEFT; BLMPOP 0.01 1 a LEFT COUNT 2"),
    ("blmpop-errors", "RPUSH a 1; BLMPOP -1 0 a LEFT; BLMPOP x 1 a LEFT; BLMPOP -1 1 a LEFT; BLMPOP 0 1 a UP; "
     "BLMPOP 0 1 a LEFT COUNT 0; BLMPOP x 1 a LEFT COUNT 0; BLMPOP 0 2 a LEFT; SET s v; BLMPOP 0 2 s a LEFT; "
     "BLMPOP 0 2 a s LEFT"),
    # hashes
    ("hset", "HSET h a 1 b 2; HSET h a 3 c 4; HGETALL h; HSET h a 5 a 6; HGET h a; HMSET h d 7 e 8; HGETALL h; "
     "HLEN h; HSET '' '' ''; HGETALL ''; SET s v; HSET s a 1; HMSET s a 1; LPUSH l a; HSET l a 1"),
    ("hsetnx", "HSETNX h a 1; HSETNX h a 2; HGET h a; HSETNX h b 3; HGETALL h; SET s v; HSETNX s a 1"),
    ("hget", "HGET missing a; HSET h a 1; HGET h a; HGET h b; HMGET h a b a; HMGET missing a b; HEXISTS h a; "
     "HEXISTS h b; HEXISTS missing a; HSTRLEN h a; HSTRLEN h b; HSTRLEN missing a; SET s v; HGET s a; "
     "HMGET s a; HEXISTS s a; HSTRLEN s a; HLEN s; HGETALL s; HKEYS s; HVALS s"),
    ("hgetall-order", "HSET h z 1 a 2 m 3; HGETALL h; HKEYS h; HVALS h; HDEL h a; HSET h a 4 z 5; HGETALL h; "
     "HKEYS h; HVALS h; HGETALL missing; HKEYS missing; HVALS missing; HLEN missing"),
    ("hdel", "HSET h a 1 b 2 c 3; HDEL h a a zz; HDEL h zz; HGETALL h; HDEL h b c; EXISTS h; HDEL h a; "
     "HDEL missing a; SET s v; HDEL s a"),
    ("hincrby", "HINCRBY h a 5; HINCRBY h a -10; HGET h a; HINCRBY h a 0; HINCRBY h a x; HINCRBY h a 1.5; "
     "HINCRBY h a +1; HINCRBY h a ''; HSET h b abc c 9223372036854775807 d -9223372036854775808 e 01 f ' 1'; "
     "HINCRBY h b 1; HINCRBY h c 1; HINCRBY h c -1; HINCRBY h d -1; HINCRBY h d 1; HINCRBY h e 1; "
     "HINCRBY h f 1; HINCRBY h g 9223372036854775808; HINCRBY missing a x; EXISTS missing; SET s v; "
     "HINCRBY s a 1; HINCRBY s a x"),
    ("hincrbyfloat", "HINCRBYFLOAT h a 0.1; HINCRBYFLOAT h a 0.2; HINCRBYFLOAT h a -0.3; HINCRBYFLOAT h a 1e10; "
     "HINCRBYFLOAT h a -1e10; HINCRBYFLOAT h b 5.0e3; HINCRBYFLOAT h b 0x10; HINCRBYFLOAT h b 0x1.8p1; "
     "HINCRBYFLOAT h b .5; HINCRBYFLOAT h b 5.; HINCRBYFLOAT h b 1E2; HINCRBYFLOAT h c 123456789.123456789; "
     "HINCRBYFLOAT h d 0.000003814697265625; HINCRBYFLOAT h e 1e300; HINCRBYFLOAT h f -0; "
     "HINCRBYFLOAT h g 1; HINCRBYFLOAT h g -1; HSET h i 10.50; HINCRBYFLOAT h i 0.1; HINCRBYFLOAT h j 3.0; "
     "HINCRBYFLOAT h k 1e-20; HINCRBYFLOAT h l 9007199254740993; HINCRBYFLOAT h m 0.1; HINCRBYFLOAT h m 0.7"),
    ("hincrbyfloat-errors", "HINCRBYFLOAT h a abc; HINCRBYFLOAT h a ''; HINCRBYFLOAT h a ' 1'; "
     "HINCRBYFLOAT h a '1 '; HINCRBYFLOAT h a nan; HINCRBYFLOAT h a inf; HINCRBYFLOAT h a -inf; "
     "HINCRBYFLOAT h a 1e5000; HINCRBYFLOAT h a 1e-5000; HINCRBYFLOAT h a 1e; HINCRBYFLOAT h a 0x; "
     "EXISTS h; HSET h a abc b inf c 1e4931 d 1e5000 e ' 1'; HINCRBYFLOAT h a 1; HINCRBYFLOAT h b 1; "
     "HINCRBYFLOAT h c 1e4931; HINCRBYFLOAT h d 1; HINCRBYFLOAT h e 1; HINCRBYFLOAT h c -1e4931; "
     "HSET h c 1e4932; HINCRBYFLOAT h c 1e4932; HINCRBYFLOAT h c -1e4932; "
     "SET s v; HINCRBYFLOAT s a 1; HINCRBYFLOAT s a abc; HINCRBYFLOAT s a inf"),
    ("hrandfield", "HRANDFIELD missing; HRANDFIELD missing 3; HRANDFIELD missing -3 WITHVALUES; "
     "HSET h a 1 b 2 c 3; HRANDFIELD h; HRANDFIELD h 0; HRANDFIELD h 0 WITHVALUES; HRANDFIELD h 3; "
     "HRANDFIELD h 5 WITHVALUES; HRANDFIELD h 2; HRANDFIELD h 2 WITHVALUES; HRANDFIELD h -5; "
     "HRANDFIELD h -5 WITHVALUES; HRANDFIELD h 1; HRANDFIELD h -1 withvalues"),
    ("hrandfield-errors", "HSET h a 1; HRANDFIELD h x; HRANDFIELD h 1 FOO; HRANDFIELD h 1 WITHVALUES x; "
     "HRANDFIELD missing x; HRANDFIELD missing 1 FOO; HRANDFIELD h 9223372036854775807 WITHVALUES; "
     "HRANDFIELD h -4611686018427387904 WITHVALUES; HRANDFIELD h 4611686018427387903 WITHVALUES; "
     "SET s v; HRANDFIELD s; HRANDFIELD s 1; HRANDFIELD s x"),
    ("hscan", "HSCAN missing 0; HSCAN missing x; HSCAN missing 0 FOO; HSET h a 1 b 2 ab 3 ba 4 '' 5; HSCAN h 0; "
     "HSCAN h 0 COUNT 1; HSCAN h 0 MATCH a*; HSCAN h 0 MATCH *; HSCAN h 0 match ?a count 100; HSCAN h 0 MATCH ''; "
     "HSCAN h 17; HSCAN h -1; HSCAN h +0; HSCAN h ''; HSCAN h 007; HSCAN h 0 MATCH a COUNT 1 MATCH b; "
     "HSCAN h 0 COUNT 9223372036854775807"),
    ("hscan-errors", "HSET h a 1; HSCAN h x; HSCAN h ' 1'; HSCAN h 1.5; HSCAN h -; HSCAN h 18446744073709551616; "
     "HSCAN h 0 COUNT 0; HSCAN h 0 COUNT -1; HSCAN h 0 COUNT x; HSCAN h 0 COUNT; HSCAN h 0 MATCH; HSCAN h 0 FOO; "
     "SET s v; HSCAN s 0; HSCAN s x"),
    ("hscan-match", "HSET h hello 1 hallo 2 hxllo 3 hllo 4 'h*llo' 5 'h\\llo' 6 x 7; HSCAN h 0 MATCH h?llo; "
     "HSCAN h 0 MATCH h[ae]llo; HSCAN h 0 MATCH h[^e]llo; HSCAN h 0 MATCH h[a-b]llo; HSCAN h 0 MATCH h\\*llo; "
     "HSCAN h 0 MATCH 'h\\\\llo'; HSCAN h 0 MATCH h[; HSCAN h 0 MATCH 'h[a-]llo'; HSCAN h 0 MATCH ***x**"),
    ("types-mixed", "RPUSH l a; HSET h f v; SET s v; HGET l f; LLEN h; LPUSH h x; HSET l f v; TYPE l; TYPE h; DEL l h; "
     "HSET l f v; RPUSH h x; TYPE l; TYPE h"),
]


def _parse_case(text: str) -> list[tuple[bytes, ...]]:
    return [tuple(w.encode() for w in shlex.split(line, posix=True)) for line in text.split(";") if line.strip()]


@pytest.mark.parametrize("proto", [2, 3])
@pytest.mark.parametrize("name,text", CORPUS, ids=[c[0] for c in CORPUS])
def test_corpus_matches_redis(server, name: str, text: str, proto: int) -> None:
    """Each case's replies equal the real server's, error texts included."""
    run = _Run(server[proto], proto)
    for args in _parse_case(text):
        run.check(args)
    assert run.compared > 0


@pytest.mark.parametrize("proto", [2, 3])
def test_large_hash_scan_visits_every_field(server, proto: int) -> None:
    """A hash past the single-pass size is scanned in several calls (our
    cursor is ours), but a full scan returns the same fields as Redis's,
    with each field's value; HGETALL/HLEN agree."""
    run = _Run(server[proto], proto)
    fields = [b"field:%d" % i for i in range(300)]
    for i in range(0, 300, 50):
        run.check((b"HSET", b"h", *[x for f in fields[i:i + 50] for x in (f, f + b"!")]))
    run.check((b"HLEN", b"h"))
    for opts in [(), (b"COUNT", b"1"), (b"COUNT", b"7"), (b"MATCH", b"field:1*"), (b"MATCH", b"*", b"COUNT", b"1000")]:
        seen = {}
        for who in ("ours", "redis"):
            cursor, pairs, calls = b"0", {}, 0
            while True:
                args = (b"HSCAN", b"h", cursor, *opts)
                reply = _ours(run.ks, args) if who == "ours" else _ask(run.conn, args)
                assert isinstance(reply, Array), (args, reply)
                cursor = reply.items[0].data
                items = [x.data for x in reply.items[1].items]
                pairs.update(zip(items[::2], items[1::2]))
                calls += 1
                assert calls < 1000
                if cursor == b"0":
                    break
            seen[who] = pairs
        assert seen["ours"] == seen["redis"], opts


# ---- random sequences (hypothesis) ----

KEYS_ = st.sampled_from([b"a", b"b", b"c"])
FIELDS = st.sampled_from([b"f", b"g", b"h", b"", b"fg"])
INT_WORDS = st.one_of(
    st.integers(-6, 6).map(lambda n: str(n).encode()),
    st.sampled_from([b"9223372036854775807", b"-9223372036854775808", b"abc", b"", b"1.5", b"01", b"-0", b"+1"]),
)
FLOAT_WORDS = st.one_of(
    st.sampled_from([b"0.1", b"-0.2", b"1.5", b"3", b"-7", b"1e3", b"0x10", b".5", b"5.", b"2.5e-3", b"-0",
                     b"inf", b"nan", b"1e", b"abc", b" 1", b"1e400"]),
    st.decimals(min_value=-1000, max_value=1000, places=2, allow_nan=False).map(lambda d: str(d).encode()),
)
ELEMENTS = st.sampled_from([b"x", b"y", b"z", b"", b"1", b"10"])
VALUES = st.one_of(ELEMENTS, INT_WORDS, FLOAT_WORDS)
WHERE = st.sampled_from([b"LEFT", b"RIGHT", b"left", b"up"])
TIMEOUT = st.sampled_from([b"0.01", b"0.01", b"0.01", b"-1", b"x"])
PATTERNS = st.sampled_from([b"*", b"f*", b"?", b"[fg]", b"[^f]*", b"", b"\\f"])
NUMKEYS_ARGS = st.lists(KEYS_, min_size=1, max_size=3).map(lambda ks: (str(len(ks)).encode(), *ks))


def _cmd(*parts):
    return st.tuples(*[p if isinstance(p, st.SearchStrategy) else st.just(p) for p in parts])


def _opt(*parts):
    return st.one_of(st.just(()), _cmd(*parts))


LIST_COMMANDS = st.one_of(
    _cmd(st.sampled_from([b"LPUSH", b"RPUSH", b"LPUSHX", b"RPUSHX"]), KEYS_, ELEMENTS).flatmap(
        lambda c: st.lists(ELEMENTS, max_size=3).map(lambda xs: c + tuple(xs))),
    _cmd(st.sampled_from([b"LPOP", b"RPOP"]), KEYS_).flatmap(lambda c: _opt(INT_WORDS).map(lambda o: c + o)),
    _cmd(b"LLEN", KEYS_), _cmd(b"LRANGE", KEYS_, INT_WORDS, INT_WORDS), _cmd(b"LINDEX", KEYS_, INT_WORDS),
    _cmd(b"LSET", KEYS_, INT_WORDS, ELEMENTS), _cmd(b"LREM", KEYS_, INT_WORDS, ELEMENTS),
    _cmd(b"LTRIM", KEYS_, INT_WORDS, INT_WORDS),
    _cmd(b"LINSERT", KEYS_, st.sampled_from([b"BEFORE", b"after", b"middle"]), ELEMENTS, ELEMENTS),
    _cmd(b"LPOS", KEYS_, ELEMENTS).flatmap(lambda c: st.tuples(
        _opt(b"RANK", INT_WORDS), _opt(b"COUNT", INT_WORDS), _opt(b"MAXLEN", INT_WORDS)).map(
        lambda o: c + o[0] + o[1] + o[2])),
    _cmd(b"RPOPLPUSH", KEYS_, KEYS_), _cmd(b"LMOVE", KEYS_, KEYS_, WHERE, WHERE),
    _cmd(b"LMPOP").flatmap(lambda c: st.tuples(NUMKEYS_ARGS, WHERE, _opt(b"COUNT", INT_WORDS)).map(
        lambda t: c + t[0] + (t[1],) + t[2])),
    _cmd(st.sampled_from([b"BLPOP", b"BRPOP"]), KEYS_).flatmap(
        lambda c: st.tuples(st.lists(KEYS_, max_size=2), TIMEOUT).map(lambda t: c + tuple(t[0]) + (t[1],))),
    _cmd(b"BRPOPLPUSH", KEYS_, KEYS_, TIMEOUT), _cmd(b"BLMOVE", KEYS_, KEYS_, WHERE, WHERE, TIMEOUT),
    _cmd(b"BLMPOP", TIMEOUT).flatmap(lambda c: st.tuples(NUMKEYS_ARGS, WHERE, _opt(b"COUNT", INT_WORDS)).map(
        lambda t: c + t[0] + (t[1],) + t[2])),
)
HASH_COMMANDS = st.one_of(
    _cmd(b"HSET", KEYS_, FIELDS, VALUES).flatmap(
        lambda c: st.lists(st.tuples(FIELDS, VALUES), max_size=2).map(lambda ps: c + tuple(x for p in ps for x in p))),
    _cmd(b"HSETNX", KEYS_, FIELDS, VALUES), _cmd(b"HGET", KEYS_, FIELDS), _cmd(b"HMGET", KEYS_, FIELDS, FIELDS),
    _cmd(b"HGETALL", KEYS_), _cmd(b"HDEL", KEYS_, FIELDS).flatmap(
        lambda c: st.lists(FIELDS, max_size=2).map(lambda fs: c + tuple(fs))),
    _cmd(b"HEXISTS", KEYS_, FIELDS), _cmd(b"HLEN", KEYS_), _cmd(b"HKEYS", KEYS_), _cmd(b"HVALS", KEYS_),
    _cmd(b"HINCRBY", KEYS_, FIELDS, INT_WORDS), _cmd(b"HINCRBYFLOAT", KEYS_, FIELDS, FLOAT_WORDS),
    _cmd(b"HSTRLEN", KEYS_, FIELDS),
    _cmd(b"HRANDFIELD", KEYS_).flatmap(lambda c: st.one_of(
        st.just(c), _cmd(INT_WORDS).map(lambda o: c + o), _cmd(INT_WORDS, b"WITHVALUES").map(lambda o: c + o))),
    _cmd(b"HSCAN", KEYS_, st.sampled_from([b"0", b"0", b"5", b"x"])).flatmap(lambda c: st.tuples(
        _opt(b"MATCH", PATTERNS), _opt(b"COUNT", INT_WORDS)).map(lambda o: c + o[0] + o[1])),
)
OTHER_COMMANDS = st.one_of(_cmd(b"SET", KEYS_, VALUES), _cmd(b"DEL", KEYS_), _cmd(b"TYPE", KEYS_),
                           _cmd(b"GET", KEYS_))
SEQUENCES = st.lists(st.one_of(LIST_COMMANDS, LIST_COMMANDS, HASH_COMMANDS, HASH_COMMANDS, OTHER_COMMANDS),
                     min_size=8, max_size=40)


@seed(FUZZ_SEED)
@settings(max_examples=FUZZ_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(seq=SEQUENCES, proto=st.sampled_from([2, 3]))
def test_random_sequences_match_redis(server, seq, proto) -> None:
    """Random list/hash/string sequences over three keys: every reply as the real server's.
    Replay a failure with the printed ``seq`` (and ``SYNOD_FUZZ_SEED``)."""
    run = _Run(server[proto], proto)
    for args in seq:
        run.check(args)
