"""Hash commands (HSET ... HSCAN), registered in :mod:`synod.kv.commands` on import.

A hash is a ``dict[bytes, bytes]`` in the :class:`~synod.kv.store.KeySpace`,
fields in insertion order (an updated field keeps its place; a deleted and
re-added one goes last), which is the order a small Redis hash (a listpack)
keeps, so HGETALL/HKEYS/HVALS/HSCAN answer in Redis's order for hashes of at
most ``hash-max-listpack-entries`` (128) fields of short values.

Semantics, reply types and error texts are Redis 7.0's (src/t_hash.c,
src/db.c ``scanGenericCommand``); flags and key positions are copied from
the real server's ``COMMAND INFO``. Invariants: a hash is never empty (the
command that removes its last field deletes the key), and every in-place
change is followed by ``ks.touch(key)`` so WATCH sees it.

Numbers. HINCRBYFLOAT computes in the C ``long double`` of Redis on x86-64
(80-bit x87: a 64-bit significand, exponents -16382..16383, subnormals),
emulated exactly with :class:`fractions.Fraction` (:func:`parse_long_double`,
:func:`ld_round`, :func:`ld_human`), so ``0.1`` + ``0.2`` reads ``0.3`` as on
Redis and not ``0.30000000000000004``. The same parser reads the blocking
list commands' timeouts (:mod:`synod.kv._lists`).

HRANDFIELD is deterministic (every replica must answer alike, and nothing
here may read global randomness): its choices come from a
:class:`random.Random` seeded with the key, the key's version and the
keyspace's clocks, so the same state gives the same answer.

HSCAN: a hash of at most :data:`HSCAN_SINGLE_PASS_FIELDS_MAX` fields is
returned whole with cursor 0, in insertion order (as Redis does for a
listpack). A larger one is walked in the order of ``(h(field), field)``,
``h`` the first 8 bytes of BLAKE2b: a call returns the fields whose ``h`` is
>= the cursor, up to COUNT of them, completed with those sharing the last
``h``, and the next cursor is that ``h`` + 1 (0 at the end). So a field
present for the whole scan is returned at least once, whatever is added or
removed between calls (https://redis.io/docs/latest/commands/scan/#scan-guarantees).
NOVALUES (Redis 7.4) is accepted. MATCH uses :func:`synod.kv._keys.glob_match`
(Redis's ``stringmatchlen``).
"""

from __future__ import annotations

import hashlib
import heapq
import re
from fractions import Fraction
from typing import TYPE_CHECKING

from synod.core.rng import Rng, seeded_rng
from synod.kv._keys import glob_match, parse_int
from synod.kv._longdouble import LongDouble, ld_human, ld_round, parse_long_double
from synod.kv.commands import DENYOOM, FAST, READONLY, WRITE, command
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
    Reply,
    SimpleError,
    wrong_arity,
)

if TYPE_CHECKING:
    from synod.kv.store import KeySpace

__all__ = ["HSCAN_SINGLE_PASS_FIELDS_MAX", "HRANDFIELD_COUNT_MAX"]

# A hash this small is scanned in one call (Redis: hash-max-listpack-entries).
HSCAN_SINGLE_PASS_FIELDS_MAX = 128
# Largest |count| HRANDFIELD serves (Redis 7.0 has no bound without WITHVALUES,
# and would try to build a 2**63-element reply); beyond: "ERR value is out of range".
HRANDFIELD_COUNT_MAX = 10_000_000

_LONG_MAX = 2**63 - 1
_NOT_INT_HASH = SimpleError(text="ERR hash value is not an integer")
_NOT_FLOAT_HASH = SimpleError(text="ERR hash value is not a float")
_OVERFLOW = SimpleError(text="ERR increment or decrement would overflow")
_NAN_OR_INF = SimpleError(text="ERR value is NaN or Infinity")
_WOULD_BE_NAN_OR_INF = SimpleError(text="ERR increment would produce NaN or Infinity")
_OUT_OF_RANGE = SimpleError(text="ERR value is out of range")
_COUNT_RANGE = SimpleError(text="ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
_INVALID_CURSOR = SimpleError(text="ERR invalid cursor")
_CURSOR_RE = re.compile(rb"[+-]?[0-9]+|")


# ---- helpers ----

def _get_hash(ks: KeySpace, key: bytes, now_ms: int) -> dict | SimpleError | None:
    """The hash at ``key``, None if missing, WRONGTYPE if another type."""
    value = ks.get(key, now_ms)
    if value is None or isinstance(value, dict):
        return value
    return WRONGTYPE


def _bulk(data: bytes | None) -> BulkString:
    return BulkString(data=data)


def _bulks(items) -> Array:
    return Array(items=tuple(BulkString(data=x) for x in items))


# ---- commands ----

@command("hset", -4, (WRITE, DENYOOM, FAST), 1, 1, 1, summary="Creates or modifies the value of a field in a hash.")
def hset(ks: KeySpace, args: list[bytes], now_ms: int) -> Reply:
    """HSET key field value [field value ...] -> Integer: fields added
    (https://redis.io/docs/latest/commands/hset/). Errors: odd pairs (wrong
    arity), WRONGTYPE."""
    return _hset(ks, args, now_ms, "hset")


@command("hmset", -4, (WRITE, DENYOOM, FAST), 1, 1, 1, summary="Sets the values of multiple fields.")
def hmset(ks: KeySpace, args: list[bytes], now_ms: int) -> Reply:
    """HMSET key field value [field value ...] -> OK (deprecated form of HSET,
    https://redis.io/docs/latest/commands/hmset/)."""
    return _hset(ks, args, now_ms, "hmset")


def _hset(ks: KeySpace, args: list[bytes], now_ms: int, name: str) -> Reply:
    if len(args) % 2 == 0:
        return wrong_arity(name)
    key = args[0]
    h = _get_hash(ks, key, now_ms)
    if isinstance(h, SimpleError):
        return h
    before = 0 if h is None else len(h)
    if h is None:
        h = {}
        ks.set(key, h)
    else:
        ks.touch(key)
    for i in range(1, len(args), 2):
        h[args[i]] = args[i + 1]
    return Integer(value=len(h) - before) if name == "hset" else OK


@command("hsetnx", 4, (WRITE, DENYOOM, FAST), 1, 1, 1, summary="Sets a field of a hash only when the field does not exist.")
def hsetnx(ks: KeySpace, args: list[bytes], now_ms: int) -> Reply:
    """HSETNX key field value -> Integer 1 (set) or 0 (field exists)
    (https://redis.io/docs/latest/commands/hsetnx/). Errors: WRONGTYPE."""
    key, field, value = args
    h = _get_hash(ks, key, now_ms)
    if isinstance(h, SimpleError):
        return h
    if h is None:
        ks.set(key, {field: value})
        return Integer(value=1)
    if field in h:
        return Integer(value=0)
    h[field] = value
    ks.touch(key)
    return Integer(value=1)


@command("hget", 3, (READONLY, FAST), 1, 1, 1, summary="Returns the value of a field in a hash.")
def hget(ks: KeySpace, args: list[bytes], now_ms: int) -> Reply:
    """HGET key field -> BulkString, NIL if the key or field is missing
    (https://redis.io/docs/latest/commands/hget/). Errors: WRONGTYPE."""
    h = _get_hash(ks, args[0], now_ms)
    if isinstance(h, SimpleError):
        return h
    return NIL if h is None else _bulk(h.get(args[1]))


@command("hmget", -3, (READONLY, FAST), 1, 1, 1, summary="Returns the values of all fields in a hash.")
def hmget(ks: KeySpace, args: list[bytes], now_ms: int) -> Reply:
    """HMGET key field [field ...] -> Array of BulkString (NIL per missing
    field; all NIL for a missing key) (https://redis.io/docs/latest/commands/hmget/).
    Errors: WRONGTYPE."""
    h = _get_hash(ks, args[0], now_ms)
    if isinstance(h, SimpleError):
        return h
    h = h or {}
    return _bulks(h.get(f) for f in args[1:])


@command("hgetall", 2, (READONLY,), 1, 1, 1, summary="Returns all fields and values in a hash.")
def hgetall(ks: KeySpace, args: list[bytes], now_ms: int) -> Reply:
    """HGETALL key -> Map field -> value in insertion order (RESP2: the flat
    array f1 v1 f2 v2 ...); empty for a missing key
    (https://redis.io/docs/latest/commands/hgetall/). Errors: WRONGTYPE."""
    h = _get_hash(ks, args[0], now_ms)
    if isinstance(h, SimpleError):
        return h
    return Map(pairs=tuple((_bulk(f), _bulk(v)) for f, v in (h or {}).items()))


@command("hdel", -3, (WRITE, FAST), 1, 1, 1, summary="Deletes one or more fields and their values from a hash.")
def hdel(ks: KeySpace, args: list[bytes], now_ms: int) -> Reply:
    """HDEL key field [field ...] -> Integer: fields removed; the key is
    deleted with its last field (https://redis.io/docs/latest/commands/hdel/).
    Errors: WRONGTYPE."""
    key = args[0]
    h = _get_hash(ks, key, now_ms)
    if isinstance(h, SimpleError):
        return h
    if h is None:
        return Integer(value=0)
    removed = 0
    for field in args[1:]:
        if h.pop(field, None) is not None:
            removed += 1
    if not h:
        ks.delete(key)
    elif removed:
        ks.touch(key)
    return Integer(value=removed)


@command("hexists", 3, (READONLY, FAST), 1, 1, 1, summary="Determines whether a field exists in a hash.")
def hexists(ks: KeySpace, args: list[bytes], now_ms: int) -> Reply:
    """HEXISTS key field -> Integer 1 or 0 (https://redis.io/docs/latest/commands/hexists/).
    Errors: WRONGTYPE."""
    h = _get_hash(ks, args[0], now_ms)
    if isinstance(h, SimpleError):
        return h
    return Integer(value=int(h is not None and args[1] in h))


@command("hlen", 2, (READONLY, FAST), 1, 1, 1, summary="Returns the number of fields in a hash.")
def hlen(ks: KeySpace, args: list[bytes], now_ms: int) -> Reply:
    """HLEN key -> Integer, 0 for a missing key (https://redis.io/docs/latest/commands/hlen/).
    Errors: WRONGTYPE."""
    h = _get_hash(ks, args[0], now_ms)
    if isinstance(h, SimpleError):
        return h
    return Integer(value=len(h or ()))


@command("hkeys", 2, (READONLY,), 1, 1, 1, summary="Returns all fields in a hash.")
def hkeys(ks: KeySpace, args: list[bytes], now_ms: int) -> Reply:
    """HKEYS key -> Array of BulkString, insertion order; empty for a
    missing key (https://redis.io/docs/latest/commands/hkeys/). Errors: WRONGTYPE."""
    h = _get_hash(ks, args[0], now_ms)
    if isinstance(h, SimpleError):
        return h
    return _bulks(h or ())


@command("hvals", 2, (READONLY,), 1, 1, 1, summary="Returns all values in a hash.")
def hvals(ks: KeySpace, args: list[bytes], now_ms: int) -> Reply:
    """HVALS key -> Array of BulkString, insertion order; empty for a
    missing key (https://redis.io/docs/latest/commands/hvals/). Errors: WRONGTYPE."""
    h = _get_hash(ks, args[0], now_ms)
    if isinstance(h, SimpleError):
        return h
    return _bulks((h or {}).values())


@command("hstrlen", 3, (READONLY, FAST), 1, 1, 1, summary="Returns the length of the value of a field.")
def hstrlen(ks: KeySpace, args: list[bytes], now_ms: int) -> Reply:
    """HSTRLEN key field -> Integer: the value's length in bytes, 0 if
    missing (https://redis.io/docs/latest/commands/hstrlen/). Errors: WRONGTYPE."""
    h = _get_hash(ks, args[0], now_ms)
    if isinstance(h, SimpleError):
        return h
    return Integer(value=len((h or {}).get(args[1], b"")))


@command("hincrby", 4, (WRITE, DENYOOM, FAST), 1, 1, 1, summary="Increments the integer value of a field in a hash by a number.")
def hincrby(ks: KeySpace, args: list[bytes], now_ms: int) -> Reply:
    """HINCRBY key field increment -> Integer: the new value (a missing
    field counts as 0) (https://redis.io/docs/latest/commands/hincrby/).
    Errors, in Redis's order: increment not a 64-bit integer (NOT_INTEGER),
    WRONGTYPE, "ERR hash value is not an integer", "ERR increment or
    decrement would overflow"."""
    key, field, word = args
    incr = parse_int(word)
    if incr is None:
        return NOT_INTEGER
    h = _get_hash(ks, key, now_ms)
    if isinstance(h, SimpleError):
        return h
    old = 0
    if h is not None and field in h:
        old = parse_int(h[field])
        if old is None:
            return _NOT_INT_HASH
    new = old + incr
    if not -(2**63) <= new <= _LONG_MAX:
        return _OVERFLOW
    _hash_put(ks, key, h, field, str(new).encode())
    return Integer(value=new)


@command("hincrbyfloat", 4, (WRITE, DENYOOM, FAST), 1, 1, 1,
         summary="Increments the floating point value of a field by a number.")
def hincrbyfloat(ks: KeySpace, args: list[bytes], now_ms: int) -> Reply:
    """HINCRBYFLOAT key field increment -> BulkString: the new value as
    Redis writes a long double (see the module doc)
    (https://redis.io/docs/latest/commands/hincrbyfloat/). Errors, in
    Redis's order: NOT_FLOAT, "ERR value is NaN or Infinity", WRONGTYPE,
    "ERR hash value is not a float", "ERR increment would produce NaN or
    Infinity"."""
    key, field, word = args
    incr = parse_long_double(word)
    if incr is None:
        return NOT_FLOAT
    if isinstance(incr, float):
        return _NAN_OR_INF
    h = _get_hash(ks, key, now_ms)
    if isinstance(h, SimpleError):
        return h
    old: LongDouble = Fraction(0)
    if h is not None and field in h:
        parsed = parse_long_double(h[field])
        if parsed is None:
            return _NOT_FLOAT_HASH
        old = parsed
    new = old + incr if isinstance(old, float) else ld_round(old + incr)
    if isinstance(new, float):
        return _WOULD_BE_NAN_OR_INF
    text = ld_human(new)
    _hash_put(ks, key, h, field, text)
    return BulkString(data=text)


def _hash_put(ks: KeySpace, key: bytes, h: dict | None, field: bytes, value: bytes) -> None:
    """Set one field, creating the hash (``h`` None) or touching it."""
    if h is None:
        ks.set(key, {field: value})
    else:
        h[field] = value
        ks.touch(key)


@command("hrandfield", -2, (READONLY,), 1, 1, 1, summary="Returns one or more random fields from a hash.")
def hrandfield(ks: KeySpace, args: list[bytes], now_ms: int) -> Reply:
    """HRANDFIELD key [count [WITHVALUES]] (https://redis.io/docs/latest/commands/hrandfield/).

    Without count: BulkString (NIL for a missing key). With count >= 0:
    Array of up to count distinct fields (the whole hash, in order, when
    count >= its size); count < 0: Array of exactly -count fields, repeats
    allowed; empty for a missing key or count 0. WITHVALUES: the flat array
    f1 v1 f2 v2 ... (Redis's RESP2 shape; Redis 7 sends [field, value]
    pairs in RESP3, we send the flat array in both). Errors, in Redis's
    order: NOT_INTEGER, "ERR value is out of range, value must between
    -9223372036854775807 and 9223372036854775807", SYNTAX, "ERR value is out
    of range" (WITHVALUES and
    |count| > 2**62, or |count| > HRANDFIELD_COUNT_MAX), WRONGTYPE.
    Deterministic: see the module doc."""
    key = args[0]
    count = withvalues = None
    if len(args) >= 2:
        count = parse_int(args[1])
        if count is None:
            return NOT_INTEGER
        if count < -_LONG_MAX:
            return _COUNT_RANGE
        if len(args) > 3 or (len(args) == 3 and args[2].lower() != b"withvalues"):
            return SYNTAX
        withvalues = len(args) == 3
        if withvalues and not -(_LONG_MAX // 2) <= count <= _LONG_MAX // 2:
            return _OUT_OF_RANGE
        if -count > HRANDFIELD_COUNT_MAX:
            return _OUT_OF_RANGE
    h = _get_hash(ks, key, now_ms)
    if isinstance(h, SimpleError):
        return h
    if count is None:
        if h is None:
            return NIL
        fields = list(h)
        return BulkString(data=fields[_rng(ks, key, now_ms).randrange(len(fields))])
    if h is None or count == 0:
        return EMPTY_ARRAY
    fields = list(h)
    if count < 0:
        rng = _rng(ks, key, now_ms)
        chosen = [fields[rng.randrange(len(fields))] for _ in range(-count)]
    elif count >= len(fields):
        chosen = fields
    else:
        chosen = _rng(ks, key, now_ms).sample(fields, count)
    if not withvalues:
        return _bulks(chosen)
    return _bulks(x for f in chosen for x in (f, h[f]))


def _rng(ks: KeySpace, key: bytes, now_ms: int) -> Rng:
    """A generator seeded by the state only (the same on every replica)."""
    seed = hashlib.blake2b(b"%d:%d:%d:%d:" % (ks.version(key), ks.version_clock, ks.applied_time_ms, now_ms) + key,
                           digest_size=8).digest()
    return seeded_rng(int.from_bytes(seed, "big"))


def _field_hash(field: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(field, digest_size=8).digest(), "big")


def _parse_cursor(word: bytes) -> int | None:
    """``word`` as parseScanCursorOrReply reads it (strtoul: optional sign,
    a negative wraps modulo 2**64, the empty word is 0), or None."""
    word = word.split(b"\0", 1)[0]
    if _CURSOR_RE.fullmatch(word) is None:
        return None
    value = int(word or b"0")
    if abs(value) >= 2**64:
        return None
    return value % 2**64


@command("hscan", -3, (READONLY,), 1, 1, 1, summary="Iterates over fields and values of a hash.")
def hscan(ks: KeySpace, args: list[bytes], now_ms: int) -> Reply:
    """HSCAN key cursor [MATCH pattern] [COUNT count] [NOVALUES] -> Array
    [cursor BulkString, Array of field, value, field, value ...] (fields only
    with NOVALUES) (https://redis.io/docs/latest/commands/hscan/). The
    cursor is described in the module doc. Errors, in Redis's order: "ERR
    invalid cursor", WRONGTYPE (a missing key answers ["0", []] before the
    options are read), NOT_INTEGER or SYNTAX (COUNT < 1, unknown option)."""
    key = args[0]
    cursor = _parse_cursor(args[1])
    if cursor is None:
        return _INVALID_CURSOR
    h = _get_hash(ks, key, now_ms)
    if isinstance(h, SimpleError):
        return h
    if h is None:
        return Array(items=(BulkString(data=b"0"), EMPTY_ARRAY))
    count, pattern, novalues = 10, None, False
    i = 2
    while i < len(args):
        opt, more = args[i].lower(), len(args) - i - 1
        if opt == b"count" and more >= 1:
            count = parse_int(args[i + 1])
            if count is None:
                return NOT_INTEGER
            if count < 1:
                return SYNTAX
            i += 2
        elif opt == b"match" and more >= 1:
            pattern = None if args[i + 1] == b"*" else args[i + 1]
            i += 2
        elif opt == b"novalues":
            novalues = True
            i += 1
        else:
            return SYNTAX
    fields, cursor = _scan_step(h, cursor, count)
    if pattern is not None:
        fields = [f for f in fields if glob_match(pattern, f)]
    items = fields if novalues else [x for f in fields for x in (f, h[f])]
    return Array(items=(BulkString(data=b"%d" % cursor), _bulks(items)))


def _scan_step(h: dict, cursor: int, count: int) -> tuple[list[bytes], int]:
    """The fields one HSCAN call visits from ``cursor``, and the next cursor.
    O(n log count) per call for n fields (no index is kept between calls)."""
    if len(h) <= HSCAN_SINGLE_PASS_FIELDS_MAX:
        return list(h), 0
    ahead = [(hf, f) for f in h if (hf := _field_hash(f)) >= cursor]
    chosen = heapq.nsmallest(count, ahead)
    if not chosen:
        return [], 0
    last = chosen[-1][0]
    chosen += sorted(x for x in ahead if x[0] == last and x not in chosen)  # never split fields of one hash
    more = any(hf > last for hf, _ in ahead)
    return [f for _, f in chosen], (last + 1 if more else 0)
