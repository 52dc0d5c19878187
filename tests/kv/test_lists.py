"""Unit tests of the list commands (synod.kv._lists) on a KeySpace: replies,
errors in Redis 7.0's order and words, deletion of emptied lists, and the
version bump (WATCH) of every mutation."""

from __future__ import annotations

import shlex
from collections import deque

import pytest
from tests.kv._keyspace import NOW, bulks, bumped, err, run, unchanged

from synod.kv._lists import BLOCKING_TIMEOUT_REPLY, blocking_timeout_ms
from synod.kv.commands import BLOCKING, DENYOOM, FAST, NOSCRIPT, READONLY, WOULD_BLOCK, WRITE, keys_of, lookup
from synod.kv.replies import (
    EMPTY_ARRAY,
    NIL,
    NIL_ARRAY,
    NO_SUCH_KEY,
    NOT_INTEGER,
    OK,
    SYNTAX,
    WRONGTYPE,
    Array,
    BulkString,
    Integer,
    wrong_arity,
)
from synod.kv.store import KeySpace


def items(ks: KeySpace, key: str) -> list[str] | None:
    value = ks.get(key.encode(), NOW)
    if value is None:
        return None
    assert isinstance(value, deque)
    return [x.decode() for x in value]



@pytest.fixture
def ks() -> KeySpace:
    return KeySpace()




# ---- the command table, as the real server's COMMAND INFO gives it ----

SPECS = {
    "lpush": (-3, {WRITE, DENYOOM, FAST}, 1, 1, 1), "rpush": (-3, {WRITE, DENYOOM, FAST}, 1, 1, 1),
    "lpushx": (-3, {WRITE, DENYOOM, FAST}, 1, 1, 1), "rpushx": (-3, {WRITE, DENYOOM, FAST}, 1, 1, 1),
    "lpop": (-2, {WRITE, FAST}, 1, 1, 1), "rpop": (-2, {WRITE, FAST}, 1, 1, 1),
    "llen": (2, {READONLY, FAST}, 1, 1, 1), "lrange": (4, {READONLY}, 1, 1, 1), "lindex": (3, {READONLY}, 1, 1, 1),
    "lset": (4, {WRITE, DENYOOM}, 1, 1, 1), "lrem": (4, {WRITE}, 1, 1, 1), "ltrim": (4, {WRITE}, 1, 1, 1),
    "linsert": (5, {WRITE, DENYOOM}, 1, 1, 1), "lpos": (-3, {READONLY}, 1, 1, 1),
    "rpoplpush": (3, {WRITE, DENYOOM}, 1, 2, 1), "lmove": (5, {WRITE, DENYOOM}, 1, 2, 1),
    "lmpop": (-4, {WRITE, "movablekeys"}, 0, 0, 0),
    "blpop": (-3, {WRITE, NOSCRIPT, BLOCKING}, 1, -2, 1), "brpop": (-3, {WRITE, NOSCRIPT, BLOCKING}, 1, -2, 1),
    "brpoplpush": (4, {WRITE, DENYOOM, NOSCRIPT, BLOCKING}, 1, 2, 1),
    "blmove": (6, {WRITE, DENYOOM, NOSCRIPT, BLOCKING}, 1, 2, 1),
    "blmpop": (-5, {WRITE, BLOCKING, "movablekeys"}, 0, 0, 0),
}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_command_table_matches_command_info(name: str) -> None:
    """Arity, flags and key positions as Redis 7.0's COMMAND INFO; a one-line summary."""
    spec = lookup(name)
    assert spec is not None
    assert (spec.arity, set(spec.flags), spec.first_key, spec.last_key, spec.step) == SPECS[name]
    assert spec.summary and "\n" not in spec.summary


def test_keys_of_list_commands() -> None:
    """The keys a write touches, for waking blocked clients and WATCH; numkeys commands use keys_fn."""
    def keys(line: str) -> list[bytes]:
        words = [w.encode() for w in line.split()]
        return keys_of(lookup(words[0]), words[1:])

    assert keys("BLPOP a b c 0") == [b"a", b"b", b"c"]
    assert keys("BLMOVE s d LEFT RIGHT 0") == [b"s", b"d"]
    assert keys("LMPOP 2 a b LEFT COUNT 3") == [b"a", b"b"]
    assert keys("BLMPOP 0 3 a b c RIGHT") == [b"a", b"b", b"c"]
    assert keys("LMPOP 0 a LEFT") == [] and keys("LMPOP x a LEFT") == [] and keys("LMPOP 5 a LEFT") == []


# ---- push / pop ----

def test_push_creates_appends_and_reports_length(ks: KeySpace) -> None:
    assert bumped(ks, "k", "LPUSH k a b c") == Integer(value=3)
    assert items(ks, "k") == ["c", "b", "a"]
    assert bumped(ks, "k", "RPUSH k d e") == Integer(value=5)
    assert items(ks, "k") == ["c", "b", "a", "d", "e"]
    assert bumped(ks, "k", "LPUSHX k x") == Integer(value=6)
    assert bumped(ks, "k", "RPUSHX k y z") == Integer(value=8)
    assert items(ks, "k") == ["x", "c", "b", "a", "d", "e", "y", "z"]


def test_pushx_on_missing_key_does_nothing(ks: KeySpace) -> None:
    assert unchanged(ks, "m", "LPUSHX m a") == Integer(value=0)
    assert unchanged(ks, "m", "RPUSHX m a b") == Integer(value=0)
    assert ks.get(b"m", NOW) is None


def test_push_keeps_the_ttl(ks: KeySpace) -> None:
    """An in-place change is not a SET: the TTL stays."""
    run(ks, "RPUSH k a")
    ks.set_expire_at_ms(b"k", NOW + 5000)
    run(ks, "RPUSH k b")
    run(ks, "LPOP k")
    assert ks.expire_at_ms(b"k") == NOW + 5000


@pytest.mark.parametrize("line", ["LPUSH s a", "RPUSH s a", "LPUSHX s a", "RPUSHX s a", "LPOP s", "RPOP s 2",
                                  "LLEN s", "LRANGE s 0 -1", "LINDEX s 0", "LSET s 0 x", "LREM s 0 v", "LTRIM s 0 1",
                                  "LINSERT s BEFORE v x", "LPOS s v", "RPOPLPUSH s d", "LMOVE s d LEFT LEFT",
                                  "LMPOP 1 s LEFT", "BLPOP s 0", "BRPOP s 0", "BRPOPLPUSH s d 0",
                                  "BLMOVE s d LEFT LEFT 0", "BLMPOP 0 1 s LEFT"])
def test_wrongtype_on_a_string_or_hash_changes_nothing(ks: KeySpace, line: str) -> None:
    run(ks, "SET s v")
    assert unchanged(ks, "s", line) == WRONGTYPE
    run(ks, "DEL s")
    run(ks, "HSET s f v")
    assert unchanged(ks, "s", line) == WRONGTYPE
    assert ks.get(b"d", NOW) is None


def test_pop_without_count(ks: KeySpace) -> None:
    run(ks, "RPUSH k a b c")
    assert bumped(ks, "k", "LPOP k") == BulkString(data=b"a")
    assert bumped(ks, "k", "RPOP k") == BulkString(data=b"c")
    assert bumped(ks, "k", "RPOP k") == BulkString(data=b"b")
    assert ks.get(b"k", NOW) is None, "the emptied list is deleted"
    assert unchanged(ks, "k", "LPOP k") == NIL
    assert run(ks, "RPOP k") == NIL


def test_pop_with_count_nil_array_and_empty_array_rules(ks: KeySpace) -> None:
    """Redis 7: count on a missing key -> nil array; count 0 on a list -> empty array."""
    assert run(ks, "LPOP m 0") == NIL_ARRAY
    assert run(ks, "LPOP m 3") == NIL_ARRAY
    run(ks, "RPUSH k a b c d")
    assert unchanged(ks, "k", "LPOP k 0") == EMPTY_ARRAY
    assert bumped(ks, "k", "LPOP k 2") == bulks("a", "b")
    assert bumped(ks, "k", "RPOP k 5") == bulks("d", "c")
    assert ks.get(b"k", NOW) is None


@pytest.mark.parametrize("count", ["-1", "abc", "1.5", "", "+1", "9223372036854775808"])
def test_pop_count_errors(ks: KeySpace, count: str) -> None:
    run(ks, "RPUSH k a")
    expected = err("ERR value is out of range, must be positive")
    assert run(ks, f"LPOP k '{count}'") == expected
    assert run(ks, f"RPOP m '{count}'") == expected, "checked before the key"
    assert items(ks, "k") == ["a"]


def test_pop_with_two_counts_is_an_arity_error(ks: KeySpace) -> None:
    assert run(ks, "LPOP k 1 2") == wrong_arity("lpop")
    assert run(ks, "RPOP k 1 2") == wrong_arity("rpop")


# ---- reading ----

def test_llen_lrange_lindex(ks: KeySpace) -> None:
    assert run(ks, "LLEN k") == Integer(value=0)
    assert run(ks, "LRANGE k 0 -1") == EMPTY_ARRAY
    assert run(ks, "LINDEX k 0") == NIL
    run(ks, "RPUSH k a b c d e")
    assert run(ks, "LLEN k") == Integer(value=5)
    assert run(ks, "LRANGE k 0 -1") == bulks("a", "b", "c", "d", "e")
    assert run(ks, "LRANGE k -2 -1") == bulks("d", "e")
    assert run(ks, "LRANGE k 1 -2") == bulks("b", "c", "d")
    assert run(ks, "LRANGE k -100 100") == bulks("a", "b", "c", "d", "e")
    assert run(ks, "LRANGE k 3 1") == EMPTY_ARRAY
    assert run(ks, "LRANGE k 5 10") == EMPTY_ARRAY
    assert run(ks, "LRANGE k -9223372036854775808 9223372036854775807") == bulks("a", "b", "c", "d", "e")
    assert run(ks, "LINDEX k 0") == BulkString(data=b"a")
    assert run(ks, "LINDEX k -1") == BulkString(data=b"e")
    assert run(ks, "LINDEX k 5") == NIL
    assert run(ks, "LINDEX k -6") == NIL


def test_read_errors_in_redis_order(ks: KeySpace) -> None:
    """LRANGE parses its indexes before looking the key up; LINDEX after."""
    assert run(ks, "LRANGE m x 1") == NOT_INTEGER
    assert run(ks, "LINDEX m x") == NIL
    run(ks, "RPUSH k a")
    assert run(ks, "LINDEX k x") == NOT_INTEGER
    assert run(ks, "LRANGE k 0 1.5") == NOT_INTEGER


# ---- editing ----

def test_lset(ks: KeySpace) -> None:
    assert run(ks, "LSET m 0 x") == NO_SUCH_KEY
    assert run(ks, "LSET m x x") == NO_SUCH_KEY, "the key is looked up first"
    run(ks, "RPUSH k a b c")
    assert bumped(ks, "k", "LSET k 0 x") == OK
    assert bumped(ks, "k", "LSET k -1 z") == OK
    assert unchanged(ks, "k", "LSET k 3 w") == err("ERR index out of range")
    assert unchanged(ks, "k", "LSET k -4 w") == err("ERR index out of range")
    assert unchanged(ks, "k", "LSET k y w") == NOT_INTEGER
    assert items(ks, "k") == ["x", "b", "z"]


def test_lrem_directions_and_deletion(ks: KeySpace) -> None:
    run(ks, "RPUSH k a b a c a b a")
    assert bumped(ks, "k", "LREM k 2 a") == Integer(value=2)
    assert items(ks, "k") == ["b", "c", "a", "b", "a"]
    assert bumped(ks, "k", "LREM k -1 b") == Integer(value=1)
    assert items(ks, "k") == ["b", "c", "a", "a"]
    assert unchanged(ks, "k", "LREM k 0 zz") == Integer(value=0)
    assert bumped(ks, "k", "LREM k 0 a") == Integer(value=2)
    assert items(ks, "k") == ["b", "c"]
    assert run(ks, "LREM k x a") == NOT_INTEGER
    assert run(ks, "LREM m x a") == NOT_INTEGER, "count is parsed before the key"
    assert run(ks, "LREM m 1 a") == Integer(value=0)
    run(ks, "LREM k 0 b")
    assert bumped(ks, "k", "LREM k -9223372036854775808 c") == Integer(value=1)
    assert ks.get(b"k", NOW) is None


def test_ltrim(ks: KeySpace) -> None:
    assert run(ks, "LTRIM m 0 1") == OK
    assert run(ks, "LTRIM m x 1") == NOT_INTEGER
    run(ks, "RPUSH k a b c d e")
    assert bumped(ks, "k", "LTRIM k 1 -2") == OK
    assert items(ks, "k") == ["b", "c", "d"]
    assert bumped(ks, "k", "LTRIM k 0 100") == OK, "Redis signals the key modified even when nothing goes"
    assert items(ks, "k") == ["b", "c", "d"]
    assert bumped(ks, "k", "LTRIM k -1 -1") == OK
    assert items(ks, "k") == ["d"]
    assert bumped(ks, "k", "LTRIM k 1 0") == OK
    assert ks.get(b"k", NOW) is None
    run(ks, "RPUSH j a b")
    assert run(ks, "LTRIM j -100 -3") == OK
    assert ks.get(b"j", NOW) is None


def test_linsert(ks: KeySpace) -> None:
    assert run(ks, "LINSERT m BEFORE a x") == Integer(value=0)
    assert run(ks, "LINSERT m middle a x") == SYNTAX, "the position is parsed first"
    run(ks, "RPUSH k a b a")
    assert bumped(ks, "k", "LINSERT k BEFORE a x") == Integer(value=4)
    assert bumped(ks, "k", "LINSERT k after a y") == Integer(value=5)
    assert unchanged(ks, "k", "LINSERT k AFTER zz y") == Integer(value=-1)
    assert items(ks, "k") == ["x", "a", "y", "b", "a"]


# ---- LPOS ----

@pytest.mark.parametrize("opts,expected", [
    ("", 0), ("RANK 2", 3), ("RANK -1", 6), ("RANK -3", 0), ("RANK 4", None), ("RANK -4", None),
    ("COUNT 0", [0, 3, 6]), ("COUNT 2", [0, 3]), ("COUNT 2 RANK -1", [6, 3]), ("RANK 2 COUNT 0", [3, 6]),
    ("MAXLEN 3", 0), ("MAXLEN 3 COUNT 0", [0]), ("RANK -1 MAXLEN 1", 6), ("RANK -1 MAXLEN 2 COUNT 0", [6]),
    ("RANK 1 RANK 2", 3), ("RANK -9223372036854775808", 6), ("RANK -9223372036854775808 COUNT 1", [6, 3, 0]),
])
def test_lpos(ks: KeySpace, opts: str, expected) -> None:
    run(ks, "RPUSH k a b c a b c a")
    reply = run(ks, f"LPOS k a {opts}")
    if expected is None:
        assert reply == NIL
    elif isinstance(expected, int):
        assert reply == Integer(value=expected)
    else:
        assert reply == Array(items=tuple(Integer(value=i) for i in expected))


def test_lpos_missing_key_and_no_match(ks: KeySpace) -> None:
    assert run(ks, "LPOS m a") == NIL
    assert run(ks, "LPOS m a COUNT 0") == EMPTY_ARRAY
    run(ks, "RPUSH k a")
    assert run(ks, "LPOS k zz") == NIL
    assert run(ks, "LPOS k zz COUNT 1") == EMPTY_ARRAY


@pytest.mark.parametrize("opts,error", [
    ("RANK 0", "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative "
               "to start from the end of the list"),
    ("RANK x", NOT_INTEGER.text), ("COUNT -1", "ERR COUNT can't be negative"), ("COUNT x", "ERR COUNT can't be negative"),
    ("MAXLEN -1", "ERR MAXLEN can't be negative"), ("MAXLEN y", "ERR MAXLEN can't be negative"),
    ("MAXLEN", SYNTAX.text), ("FOO 1", SYNTAX.text), ("RANK 1 FOO", SYNTAX.text),
])
def test_lpos_errors_come_before_the_key(ks: KeySpace, opts: str, error: str) -> None:
    assert run(ks, f"LPOS m a {opts}") == err(error)
    run(ks, "SET s v")
    assert run(ks, f"LPOS s a {opts}") == err(error)


# ---- moving ----

def test_lmove_every_direction(ks: KeySpace) -> None:
    run(ks, "RPUSH k a b c d")
    assert run(ks, "LMOVE k j LEFT RIGHT") == BulkString(data=b"a")
    assert run(ks, "LMOVE k j RIGHT LEFT") == BulkString(data=b"d")
    assert run(ks, "LMOVE k j left left") == BulkString(data=b"b")
    assert run(ks, "LMOVE k j right right") == BulkString(data=b"c")
    assert items(ks, "j") == ["b", "d", "a", "c"]
    assert ks.get(b"k", NOW) is None
    assert run(ks, "LMOVE k j LEFT LEFT") == NIL
    assert run(ks, "LMOVE k j up LEFT") == SYNTAX
    assert run(ks, "LMOVE k j LEFT down") == SYNTAX


def test_lmove_bumps_both_keys(ks: KeySpace) -> None:
    run(ks, "RPUSH k a b")
    run(ks, "RPUSH j x")
    vk, vj = ks.version(b"k"), ks.version(b"j")
    run(ks, "LMOVE k j LEFT LEFT")
    assert ks.version(b"k") != vk and ks.version(b"j") != vj
    vk = ks.version(b"k")
    assert bumped(ks, "n", "RPOPLPUSH k n") == BulkString(data=b"b"), "a new destination is created"
    assert ks.version(b"k") != vk and ks.get(b"k", NOW) is None


def test_same_key_rotation(ks: KeySpace) -> None:
    run(ks, "RPUSH k a b c")
    assert bumped(ks, "k", "LMOVE k k LEFT RIGHT") == BulkString(data=b"a")
    assert items(ks, "k") == ["b", "c", "a"]
    assert bumped(ks, "k", "RPOPLPUSH k k") == BulkString(data=b"a")
    assert items(ks, "k") == ["a", "b", "c"]
    run(ks, "RPUSH one x")
    assert run(ks, "LMOVE one one RIGHT LEFT") == BulkString(data=b"x")
    assert items(ks, "one") == ["x"], "a one-element list survives its own rotation"


def test_move_checks_destination_type_before_popping(ks: KeySpace) -> None:
    run(ks, "SET s v")
    run(ks, "RPUSH k a")
    assert unchanged(ks, "k", "LMOVE k s LEFT LEFT") == WRONGTYPE
    assert unchanged(ks, "k", "RPOPLPUSH k s") == WRONGTYPE
    assert items(ks, "k") == ["a"]
    assert run(ks, "RPOPLPUSH m s") == NIL, "a missing source answers before the destination is checked"


def test_lmpop(ks: KeySpace) -> None:
    run(ks, "RPUSH a 1 2 3")
    run(ks, "RPUSH b 4 5")
    pair = lambda key, *xs: Array(items=(BulkString(data=key.encode()), bulks(*xs)))  # noqa: E731
    assert run(ks, "LMPOP 2 m a LEFT") == pair("a", "1")
    assert bumped(ks, "a", "LMPOP 2 a b RIGHT COUNT 10") == pair("a", "3", "2")
    assert ks.get(b"a", NOW) is None
    assert run(ks, "LMPOP 2 a b left count 1") == pair("b", "4")
    assert run(ks, "LMPOP 1 b RIGHT") == pair("b", "5")
    assert run(ks, "LMPOP 2 a b LEFT") == NIL_ARRAY


@pytest.mark.parametrize("line,error", [
    ("LMPOP 0 a LEFT", "ERR numkeys should be greater than 0"), ("LMPOP x a LEFT", "ERR numkeys should be greater than 0"),
    ("LMPOP 2 a LEFT", SYNTAX.text), ("LMPOP 1 a MIDDLE", SYNTAX.text),
    ("LMPOP 1 a LEFT COUNT 0", "ERR count should be greater than 0"),
    ("LMPOP 1 a LEFT COUNT x", "ERR count should be greater than 0"), ("LMPOP 1 a LEFT COUNT", SYNTAX.text),
    ("LMPOP 1 a LEFT COUNT 1 COUNT 1", SYNTAX.text), ("LMPOP 1 a LEFT FOO", SYNTAX.text),
    ("LMPOP 2 m s LEFT", WRONGTYPE.text),
])
def test_lmpop_errors(ks: KeySpace, line: str, error: str) -> None:
    run(ks, "RPUSH a 1")
    run(ks, "SET s v")
    assert run(ks, line) == err(error)
    assert items(ks, "a") == ["1"]


# ---- blocking forms ----

def test_blocking_pops_act_when_data_is_there(ks: KeySpace) -> None:
    run(ks, "RPUSH a 1 2")
    run(ks, "RPUSH b 3")
    assert run(ks, "BLPOP m a b 0") == bulks("a", "1")
    assert run(ks, "BRPOP b a 1.5") == bulks("b", "3")
    assert ks.get(b"b", NOW) is None
    assert run(ks, "BRPOPLPUSH a c 0") == BulkString(data=b"2")
    assert run(ks, "BLMOVE c c LEFT RIGHT 0") == BulkString(data=b"2")
    assert run(ks, "BLMPOP 0 2 a c RIGHT COUNT 3") == Array(items=(BulkString(data=b"c"), bulks("2")))
    assert ks.get(b"c", NOW) is None


@pytest.mark.parametrize("line", ["BLPOP m n 0", "BRPOP m 0.5", "BRPOPLPUSH m d 0", "BLMOVE m d LEFT RIGHT 0",
                                  "BLMPOP 0 2 m n LEFT"])
def test_blocking_commands_would_block_without_data(ks: KeySpace, line: str) -> None:
    assert run(ks, line) is WOULD_BLOCK
    assert ks.version_clock == 0, "nothing was written"


def test_brpoplpush_blocks_even_if_the_destination_is_of_another_type(ks: KeySpace) -> None:
    """As Redis: the destination's type is checked only once the source has an element."""
    run(ks, "SET s v")
    assert run(ks, "BRPOPLPUSH m s 0") is WOULD_BLOCK
    run(ks, "RPUSH m a")
    assert run(ks, "BRPOPLPUSH m s 0") == WRONGTYPE


def test_bpop_wrongtype_met_before_a_list(ks: KeySpace) -> None:
    run(ks, "SET s v")
    run(ks, "RPUSH a 1")
    assert run(ks, "BLPOP m s a 0") == WRONGTYPE
    assert run(ks, "BLPOP a s 0") == bulks("a", "1")


@pytest.mark.parametrize("line,error", [
    ("BLPOP a -1", "ERR timeout is negative"), ("BLPOP a abc", "ERR timeout is not a float or out of range"),
    ("BLPOP a nan", "ERR timeout is not a float or out of range"), ("BLPOP a inf", "ERR timeout is negative"),
    ("BLPOP a 1e17", "ERR timeout is negative"), ("BLPOP a 1e5000", "ERR timeout is not a float or out of range"),
    ("BLPOP a ' 1'", "ERR timeout is not a float or out of range"),
    ("BRPOPLPUSH a b -1", "ERR timeout is negative"), ("BLMOVE a b up LEFT -1", SYNTAX.text),
    ("BLMOVE a b LEFT LEFT x", "ERR timeout is not a float or out of range"),
    ("BLMPOP -1 0 a LEFT", "ERR numkeys should be greater than 0"), ("BLMPOP x 1 a LEFT", "ERR timeout is not a "
                                                                                       "float or out of range"),
])
def test_blocking_argument_errors_even_with_data(ks: KeySpace, line: str, error: str) -> None:
    run(ks, "RPUSH a 1")
    assert run(ks, line) == err(error)
    assert items(ks, "a") == ["1"]


@pytest.mark.parametrize("name,args,expected", [
    ("blpop", "a b 0", 0.0), ("brpop", "a 1.5", 1500.0), ("BLPOP", "a 0.0001", 1.0), ("blpop", "a -0.0001", 0.0),
    ("blpop", "a 0x10", 16000.0), ("blpop", "a 1e-10", 1.0), ("blpop", "a 9223372036854775.807", 9223372036854775807.0),
    ("brpoplpush", "s d 2", 2000.0), ("blmove", "s d LEFT RIGHT 0.25", 250.0), ("blmpop", "3 1 a LEFT", 3000.0),
    ("blpop", "a -1", "ERR timeout is negative"), ("blpop", "a 9223372036854776", "ERR timeout is negative"),
    ("blpop", "a x", "ERR timeout is not a float or out of range"), ("blpop", "a ''", "ERR timeout is not a float "
                                                                                    "or out of range"),
    ("blmpop", "", "ERR wrong number of arguments for 'blmpop' command"),
])
def test_blocking_timeout_ms(name: str, args: str, expected) -> None:
    """Seconds * 1000 in long double, rounded up to whole ms (Redis 7.0's getTimeoutFromObjectOrReply)."""
    reply = blocking_timeout_ms(name, [w.encode() for w in shlex.split(args)])
    assert reply == (err(expected) if isinstance(expected, str) else expected)


def test_blocking_timeout_reply_is_a_nil_array_for_all() -> None:
    """Redis 7.0 answers a timed-out BRPOPLPUSH/BLMOVE with *-1 as well (checked against the server)."""
    assert BLOCKING_TIMEOUT_REPLY == {n: NIL_ARRAY for n in ("blpop", "brpop", "blmpop", "brpoplpush", "blmove")}


def test_blocking_in_multi_answers_at_once(ks: KeySpace) -> None:
    """Inside MULTI a blocking command may not block: nil array, nil bulk for BRPOPLPUSH/BLMOVE."""
    reply = ks.execute_multi([(b"BLPOP", b"m", b"0"), (b"BLMOVE", b"m", b"d", b"LEFT", b"LEFT", b"0")], [], NOW)
    assert reply == Array(items=(NIL_ARRAY, NIL))


def test_expired_list_reads_as_missing(ks: KeySpace) -> None:
    run(ks, "RPUSH k a")
    ks.set_expire_at_ms(b"k", NOW + 10)
    assert ks.execute((b"LLEN", b"k"), NOW + 10) == Integer(value=0)
    assert ks.execute((b"RPUSH", b"k", b"b"), NOW + 10) == Integer(value=1)
    assert ks.expire_at_ms(b"k") is None


@pytest.mark.parametrize("line,key", [
    ("LPUSH k x", "k"), ("RPUSH k x", "k"), ("LPUSHX k x", "k"), ("RPUSHX k x", "k"), ("LPOP k", "k"),
    ("RPOP k 2", "k"), ("LSET k 1 x", "k"), ("LREM k 1 b", "k"), ("LTRIM k 0 0", "k"), ("LINSERT k AFTER a x", "k"),
    ("RPOPLPUSH k d", "k"), ("RPOPLPUSH k d", "d"), ("LMOVE k d LEFT LEFT", "k"), ("LMOVE k d LEFT LEFT", "d"),
    ("LMOVE k k LEFT RIGHT", "k"), ("LMPOP 1 k LEFT", "k"), ("BLPOP k 0", "k"), ("BRPOP m k 0", "k"),
    ("BRPOPLPUSH k d 0", "k"), ("BRPOPLPUSH k d 0", "d"), ("BLMOVE k d RIGHT LEFT 0", "d"),
    ("BLMPOP 0 1 k RIGHT COUNT 9", "k"),
])
def test_every_mutation_bumps_the_version(ks: KeySpace, line: str, key: str) -> None:
    """WATCH sees every change, in place or by creation or deletion."""
    run(ks, "RPUSH k a b c")
    bumped(ks, key, line)
