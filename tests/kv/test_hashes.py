"""Unit tests of the hash commands (synod.kv._hashes) on a KeySpace:
replies, errors in Redis 7.0's order and words, deletion of emptied hashes,
the version bump (WATCH) of every mutation, the emulated long double,
deterministic HRANDFIELD, and HSCAN's cursor guarantee."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from tests.kv._keyspace import NOW, bulks, bumped, err, run, unchanged

from synod.kv._hashes import HSCAN_SINGLE_PASS_FIELDS_MAX
from synod.kv._longdouble import ld_human, ld_round, parse_long_double
from synod.kv.commands import DENYOOM, FAST, READONLY, WRITE, lookup
from synod.kv.replies import (
    EMPTY_ARRAY,
    NIL,
    NOT_FLOAT,
    NOT_INTEGER,
    OK,
    SYNTAX,
    WRONGTYPE,
    Array,
    BulkString,
    Integer,
    Map,
    SimpleError,
    wrong_arity,
)
from synod.kv.store import KeySpace


def fields(ks: KeySpace, key: str) -> dict[str, str] | None:
    value = ks.get(key.encode(), NOW)
    if value is None:
        return None
    assert isinstance(value, dict)
    return {f.decode(): v.decode() for f, v in value.items()}



@pytest.fixture
def ks() -> KeySpace:
    return KeySpace()




SPECS = {
    "hset": (-4, {WRITE, DENYOOM, FAST}), "hmset": (-4, {WRITE, DENYOOM, FAST}), "hsetnx": (4, {WRITE, DENYOOM, FAST}),
    "hget": (3, {READONLY, FAST}), "hmget": (-3, {READONLY, FAST}), "hgetall": (2, {READONLY}),
    "hdel": (-3, {WRITE, FAST}), "hexists": (3, {READONLY, FAST}), "hlen": (2, {READONLY, FAST}),
    "hkeys": (2, {READONLY}), "hvals": (2, {READONLY}), "hincrby": (4, {WRITE, DENYOOM, FAST}),
    "hincrbyfloat": (4, {WRITE, DENYOOM, FAST}), "hstrlen": (3, {READONLY, FAST}), "hrandfield": (-2, {READONLY}),
    "hscan": (-3, {READONLY}),
}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_command_table_matches_command_info(name: str) -> None:
    """Arity, flags and key positions (1, 1, 1) as Redis 7.0's COMMAND INFO; a one-line summary."""
    spec = lookup(name)
    assert spec is not None
    assert (spec.arity, set(spec.flags), spec.first_key, spec.last_key, spec.step) == (*SPECS[name], 1, 1, 1)
    assert spec.summary and "\n" not in spec.summary


# ---- writing ----

def test_hset_counts_added_fields(ks: KeySpace) -> None:
    assert bumped(ks, "h", "HSET h a 1 b 2") == Integer(value=2)
    assert bumped(ks, "h", "HSET h a 3 c 4") == Integer(value=1)
    assert bumped(ks, "h", "HSET h a 5 a 6") == Integer(value=0), "an update still signals the key"
    assert fields(ks, "h") == {"a": "6", "b": "2", "c": "4"}
    assert bumped(ks, "h", "HMSET h d 7") == OK
    assert run(ks, "HSET h a 1 b") == wrong_arity("hset")
    assert run(ks, "HMSET h a 1 b") == wrong_arity("hmset")
    assert run(ks, "HSET '' '' ''") == Integer(value=1)


def test_hset_keeps_the_ttl_of_an_existing_hash(ks: KeySpace) -> None:
    run(ks, "HSET h a 1")
    ks.set_expire_at_ms(b"h", NOW + 5000)
    run(ks, "HSET h b 2")
    run(ks, "HDEL h a")
    run(ks, "HINCRBY h c 1")
    assert ks.expire_at_ms(b"h") == NOW + 5000


def test_hsetnx(ks: KeySpace) -> None:
    assert bumped(ks, "h", "HSETNX h a 1") == Integer(value=1)
    assert unchanged(ks, "h", "HSETNX h a 2") == Integer(value=0)
    assert bumped(ks, "h", "HSETNX h b 3") == Integer(value=1)
    assert fields(ks, "h") == {"a": "1", "b": "3"}


def test_hdel_deletes_the_emptied_hash(ks: KeySpace) -> None:
    run(ks, "HSET h a 1 b 2 c 3")
    assert bumped(ks, "h", "HDEL h a a zz") == Integer(value=1)
    assert unchanged(ks, "h", "HDEL h zz") == Integer(value=0)
    assert bumped(ks, "h", "HDEL h b c") == Integer(value=2)
    assert ks.get(b"h", NOW) is None
    assert run(ks, "HDEL h a") == Integer(value=0)


@pytest.mark.parametrize("line", ["HSET s a 1", "HMSET s a 1", "HSETNX s a 1", "HGET s a", "HMGET s a", "HGETALL s",
                                  "HDEL s a", "HEXISTS s a", "HLEN s", "HKEYS s", "HVALS s", "HINCRBY s a 1",
                                  "HINCRBYFLOAT s a 1", "HSTRLEN s a", "HRANDFIELD s", "HRANDFIELD s 2", "HSCAN s 0"])
def test_wrongtype_on_a_string_or_list(ks: KeySpace, line: str) -> None:
    run(ks, "SET s v")
    assert unchanged(ks, "s", line) == WRONGTYPE
    run(ks, "DEL s")
    run(ks, "RPUSH s v")
    assert unchanged(ks, "s", line) == WRONGTYPE


# ---- reading ----

def test_reads_in_insertion_order(ks: KeySpace) -> None:
    run(ks, "HSET h z 1 a 2 m 3")
    run(ks, "HDEL h a")
    run(ks, "HSET h a 4 z 5")
    pair = lambda f, v: (BulkString(data=f.encode()), BulkString(data=v.encode()))  # noqa: E731
    assert run(ks, "HGETALL h") == Map(pairs=(pair("z", "5"), pair("m", "3"), pair("a", "4")))
    assert run(ks, "HKEYS h") == bulks("z", "m", "a")
    assert run(ks, "HVALS h") == bulks("5", "3", "4")
    assert run(ks, "HLEN h") == Integer(value=3)


def test_reads_of_a_missing_key(ks: KeySpace) -> None:
    assert run(ks, "HGET m a") == NIL
    assert run(ks, "HMGET m a b") == Array(items=(NIL, NIL))
    assert run(ks, "HGETALL m") == Map(pairs=())
    assert run(ks, "HKEYS m") == EMPTY_ARRAY
    assert run(ks, "HVALS m") == EMPTY_ARRAY
    assert run(ks, "HLEN m") == Integer(value=0)
    assert run(ks, "HEXISTS m a") == Integer(value=0)
    assert run(ks, "HSTRLEN m a") == Integer(value=0)
    assert ks.version_clock == 0


def test_field_reads(ks: KeySpace) -> None:
    run(ks, "HSET h a hello")
    assert run(ks, "HGET h a") == BulkString(data=b"hello")
    assert run(ks, "HGET h b") == NIL
    assert run(ks, "HMGET h a b a") == Array(items=(BulkString(data=b"hello"), NIL, BulkString(data=b"hello")))
    assert run(ks, "HEXISTS h a") == Integer(value=1)
    assert run(ks, "HEXISTS h b") == Integer(value=0)
    assert run(ks, "HSTRLEN h a") == Integer(value=5)
    assert run(ks, "HSTRLEN h b") == Integer(value=0)


# ---- HINCRBY / HINCRBYFLOAT ----

def test_hincrby(ks: KeySpace) -> None:
    assert bumped(ks, "h", "HINCRBY h a 5") == Integer(value=5)
    assert bumped(ks, "h", "HINCRBY h a -10") == Integer(value=-5)
    assert fields(ks, "h") == {"a": "-5"}
    run(ks, "HSET h big 9223372036854775807 small -9223372036854775808 s abc z 01")
    assert unchanged(ks, "h", "HINCRBY h big 1") == err("ERR increment or decrement would overflow")
    assert unchanged(ks, "h", "HINCRBY h small -1") == err("ERR increment or decrement would overflow")
    assert run(ks, "HINCRBY h big -1") == Integer(value=9223372036854775806)
    assert unchanged(ks, "h", "HINCRBY h s 1") == err("ERR hash value is not an integer")
    assert unchanged(ks, "h", "HINCRBY h z 1") == err("ERR hash value is not an integer")
    for word in ["x", "1.5", "+1", "''", "9223372036854775808"]:
        assert unchanged(ks, "m", f"HINCRBY m a {word}") == NOT_INTEGER
    assert ks.get(b"m", NOW) is None


@pytest.mark.parametrize("steps,expected", [
    (["0.1", "0.2"], "0.3"), (["0.1", "0.2", "-0.3"], "0"), (["5.0e3"], "5000"), (["0x10"], "16"),
    (["0x1.8p1"], "3"), ([".5", "5."], "5.5"), (["1E2"], "100"), (["123456789.123456789"], "123456789.12345678899873747"),
    (["0.000003814697265625"], "0.00000381469726562"), (["-0"], "0"), (["1", "-1"], "0"), (["1e-20"], "0"),
    (["9007199254740993"], "9007199254740993"), (["0.1", "0.7"], "0.8"), (["-1.5"], "-1.5"),
    (["1e300"], "1000000000000000000008997324079559193870523944273290747938260082321265646596180935755849152083750"
                "4971903503725086142748359035925561846729839130962605207486462873271356418436532940842551076060167"
                "89726652932370030551382947620994540294772781889620606179267611627097410650567187386105690089424915"
                "104006144"),
])
def test_hincrbyfloat_matches_redis_long_double(ks: KeySpace, steps: list[str], expected: str) -> None:
    """Results as the real server gives them (x87 long double, %.17Lf, zeros trimmed)."""
    for step in steps:
        reply = bumped(ks, "h", f"HINCRBYFLOAT h f {step}")
    assert reply == BulkString(data=expected.encode())
    assert fields(ks, "h") == {"f": expected}


@pytest.mark.parametrize("word,error", [
    ("abc", NOT_FLOAT), ("''", NOT_FLOAT), ("' 1'", NOT_FLOAT), ("'1 '", NOT_FLOAT), ("nan", NOT_FLOAT),
    ("1e5000", NOT_FLOAT), ("1e-5000", NOT_FLOAT), ("1e", NOT_FLOAT), ("0x", NOT_FLOAT),
    ("inf", err("ERR value is NaN or Infinity")), ("-Infinity", err("ERR value is NaN or Infinity")),
])
def test_hincrbyfloat_increment_errors_before_the_key(ks: KeySpace, word: str, error: SimpleError) -> None:
    assert run(ks, f"HINCRBYFLOAT h a {word}") == error
    assert ks.get(b"h", NOW) is None
    run(ks, "SET s v")
    assert run(ks, f"HINCRBYFLOAT s a {word}") == error


def test_hincrbyfloat_stored_value_errors(ks: KeySpace) -> None:
    run(ks, "HSET h a abc b inf c 1e4932 d 1e5000 e ' 1'")
    assert unchanged(ks, "h", "HINCRBYFLOAT h a 1") == err("ERR hash value is not a float")
    assert unchanged(ks, "h", "HINCRBYFLOAT h b 1") == err("ERR increment would produce NaN or Infinity")
    assert unchanged(ks, "h", "HINCRBYFLOAT h c 1e4932") == err("ERR increment would produce NaN or Infinity")
    assert unchanged(ks, "h", "HINCRBYFLOAT h d 1") == err("ERR hash value is not a float")
    assert unchanged(ks, "h", "HINCRBYFLOAT h e 1") == err("ERR hash value is not a float")
    assert fields(ks, "h") == {"a": "abc", "b": "inf", "c": "1e4932", "d": "1e5000", "e": " 1"}


def test_long_double_rounding() -> None:
    """64-bit significand, ties to even, overflow to inf, subnormals down to 2**-16445."""
    assert ld_round(Fraction(2**64 + 1)) == 2**64
    assert ld_round(Fraction(2**64 + 2)) == 2**64 + 2, "representable: 2**64+2 = (2**63+1) * 2"
    assert ld_round(Fraction(2**65 + 2)) == 2**65, "a tie goes to even"
    assert ld_round(Fraction(2**65 + 6)) == 2**65 + 8
    assert ld_round(Fraction(2) ** 16384) == math.inf
    assert ld_round(-(Fraction(2) ** 16384)) == -math.inf
    assert ld_round(Fraction(1, 2**16445)) == Fraction(1, 2**16445)
    assert ld_round(Fraction(1, 2**16447)) == 0
    assert parse_long_double(b"0.1") != Fraction(1, 10)
    assert parse_long_double(b"0.1") == ld_round(Fraction(1, 10))
    assert ld_human(parse_long_double(b"0.1")) == b"0.1"
    assert parse_long_double(b"1" + b"0" * 5000) is None, "5120 characters or more is refused"
    assert parse_long_double(b"1" + b"0" * 4900) is not None, "over 4300 digits is not a problem"
    assert ld_human(parse_long_double(b"1e4900")).startswith(b"1000000000")
    # string2ld refuses a NUL inside: redis-server 7.0.15 answers "not a valid float"
    assert parse_long_double(b"1\x00xyz") is None


# ---- HRANDFIELD ----

def test_hrandfield_shapes(ks: KeySpace) -> None:
    assert run(ks, "HRANDFIELD m") == NIL
    assert run(ks, "HRANDFIELD m 3") == EMPTY_ARRAY
    assert run(ks, "HRANDFIELD m -3 WITHVALUES") == EMPTY_ARRAY
    run(ks, "HSET h a 1 b 2 c 3")
    assert run(ks, "HRANDFIELD h").data in (b"a", b"b", b"c")
    assert run(ks, "HRANDFIELD h 0") == EMPTY_ARRAY
    assert run(ks, "HRANDFIELD h 3") == bulks("a", "b", "c"), "the whole hash, in order"
    assert run(ks, "HRANDFIELD h 5 WITHVALUES") == bulks("a", "1", "b", "2", "c", "3")
    two = [x.data for x in run(ks, "HRANDFIELD h 2").items]
    assert len(set(two)) == 2 and set(two) <= {b"a", b"b", b"c"}
    many = [x.data for x in run(ks, "HRANDFIELD h -50").items]
    assert len(many) == 50 and set(many) <= {b"a", b"b", b"c"}
    pairs = [x.data for x in run(ks, "HRANDFIELD h -4 withvalues").items]
    assert len(pairs) == 8 and all({b"a": b"1", b"b": b"2", b"c": b"3"}[f] == v for f, v in zip(pairs[::2], pairs[1::2]))


def test_hrandfield_is_a_function_of_the_state() -> None:
    """Two replicas with the same history answer alike; nothing global is read."""
    answers = []
    for _ in range(2):
        ks = KeySpace()
        run(ks, "HSET h " + " ".join(f"f{i} {i}" for i in range(40)))
        answers.append([run(ks, "HRANDFIELD h"), run(ks, "HRANDFIELD h 5"), run(ks, "HRANDFIELD h -20 WITHVALUES")])
    assert answers[0] == answers[1]
    ks = KeySpace()
    seen = set()
    for i in range(30):
        run(ks, f"HSET h f{i} x")
        seen.add(run(ks, "HRANDFIELD h").data)
    assert len(seen) > 5, "the choice moves with the state"


@pytest.mark.parametrize("line,error", [
    ("HRANDFIELD h x", NOT_INTEGER.text), ("HRANDFIELD h 1 FOO", SYNTAX.text),
    ("HRANDFIELD h 1 WITHVALUES x", SYNTAX.text), ("HRANDFIELD m 1 FOO", SYNTAX.text),
    ("HRANDFIELD h 9223372036854775807 WITHVALUES", "ERR value is out of range"),
    ("HRANDFIELD h -4611686018427387904 WITHVALUES", "ERR value is out of range"),
    ("HRANDFIELD h -100000000", "ERR value is out of range"),
    ("HRANDFIELD h -9223372036854775808 FOO", "ERR value is out of range, value must between -9223372036854775807 and "
                                              "9223372036854775807"),
])
def test_hrandfield_errors(ks: KeySpace, line: str, error: str) -> None:
    run(ks, "HSET h a 1")
    assert run(ks, line) == err(error)


# ---- HSCAN ----

def test_hscan_small_hash_in_one_call(ks: KeySpace) -> None:
    assert run(ks, "HSCAN m 0") == Array(items=(BulkString(data=b"0"), EMPTY_ARRAY))
    assert run(ks, "HSCAN m 0 FOO") == Array(items=(BulkString(data=b"0"), EMPTY_ARRAY)), "options read after the key"
    run(ks, "HSET h a 1 b 2 ab 3 ba 4 '' 5")
    scan = lambda opts: run(ks, f"HSCAN h {opts}")  # noqa: E731
    everything = Array(items=(BulkString(data=b"0"), bulks("a", "1", "b", "2", "ab", "3", "ba", "4", "", "5")))
    assert scan("0") == everything
    assert scan("0 COUNT 1") == everything
    assert scan("17") == everything
    assert scan("0 MATCH a*") == Array(items=(BulkString(data=b"0"), bulks("a", "1", "ab", "3")))
    assert scan("0 match ?a count 100") == Array(items=(BulkString(data=b"0"), bulks("ba", "4")))
    assert scan("0 MATCH ''") == Array(items=(BulkString(data=b"0"), bulks("", "5")))
    assert scan("0 MATCH b* NOVALUES") == Array(items=(BulkString(data=b"0"), bulks("b", "ba")))


@pytest.mark.parametrize("opts,error", [
    ("x", "ERR invalid cursor"), ("' 1'", "ERR invalid cursor"), ("1.5", "ERR invalid cursor"),
    ("-", "ERR invalid cursor"), ("18446744073709551616", "ERR invalid cursor"),
    ("0 COUNT 0", SYNTAX.text), ("0 COUNT -1", SYNTAX.text), ("0 COUNT x", NOT_INTEGER.text),
    ("0 COUNT", SYNTAX.text), ("0 MATCH", SYNTAX.text), ("0 FOO", SYNTAX.text),
])
def test_hscan_errors(ks: KeySpace, opts: str, error: str) -> None:
    run(ks, "HSET h a 1")
    assert run(ks, f"HSCAN h {opts}") == err(error)


@pytest.mark.parametrize("count", [1, 7, 50, 1000])
def test_hscan_large_hash_returns_every_field_present_throughout(ks: KeySpace, count: int) -> None:
    """The SCAN guarantee: a field present from start to end of a full
    scan is returned, however the hash changes between calls."""
    n = 3 * HSCAN_SINGLE_PASS_FIELDS_MAX
    run(ks, "HSET h " + " ".join(f"f{i} v{i}" for i in range(n)))
    stable = {f"f{i}".encode() for i in range(0, n, 2)}  # odd fields get deleted and re-added meanwhile
    cursor, seen, calls = b"0", set(), 0
    while True:
        reply = run(ks, f"HSCAN h {cursor.decode()} COUNT {count}")
        cursor = reply.items[0].data
        got = [x.data for x in reply.items[1].items]
        assert all(v == b"v" + f[1:] for f, v in zip(got[::2], got[1::2]) if f.startswith(b"f"))
        seen.update(got[::2])
        calls += 1
        victim = 1 + 2 * (calls % (n // 2))
        run(ks, f"HDEL h f{victim}")
        run(ks, f"HSET h new{calls} x")
        run(ks, f"HSET h f{victim} v{victim}")
        if cursor == b"0":
            break
        assert calls < 10 * n
    assert stable <= seen
    if count >= 50:
        assert calls > 1 or count >= n


@pytest.mark.parametrize("line", ["HSET h a 9", "HSET h z 1", "HMSET h a 1", "HSETNX h z 1", "HDEL h a", "HDEL h a b",
                                  "HINCRBY h a 1", "HINCRBY h z 1", "HINCRBYFLOAT h a 0.5", "HINCRBYFLOAT h z 0.5"])
def test_every_mutation_bumps_the_version(ks: KeySpace, line: str) -> None:
    """WATCH sees every change, in place or by deletion."""
    run(ks, "HSET h a 1 b 2")
    bumped(ks, "h", line)


@pytest.mark.parametrize("line", ["HGET h a", "HMGET h a", "HGETALL h", "HEXISTS h a", "HLEN h", "HKEYS h", "HVALS h",
                                  "HSTRLEN h a", "HRANDFIELD h", "HRANDFIELD h -3 WITHVALUES", "HSCAN h 0",
                                  "HSETNX h a 5", "HDEL h zz", "HINCRBY h b x"])
def test_reads_and_no_ops_change_nothing(ks: KeySpace, line: str) -> None:
    run(ks, "HSET h a 1 b 2")
    clock = ks.version_clock
    run(ks, line)
    assert ks.version_clock == clock
    assert fields(ks, "h") == {"a": "1", "b": "2"}
