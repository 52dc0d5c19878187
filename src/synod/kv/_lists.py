"""List commands (LPUSH ... BLMPOP), registered in :mod:`synod.kv.commands` on import.

A list is a ``collections.deque[bytes]`` in the :class:`~synod.kv.store.KeySpace`,
head (LEFT) first. Semantics, reply types and error texts are Redis 7.0's
(src/t_list.c, src/blocked.c ``getTimeoutFromObjectOrReply``); flags and key
positions are copied from the real server's ``COMMAND INFO``. Invariants: a
list is never empty (the command that takes its last element deletes the
key), and every in-place change is followed by ``ks.touch(key)`` so WATCH
sees it.

Blocking commands (BLPOP, BRPOP, BRPOPLPUSH, BLMOVE, BLMPOP). The handler
validates every argument, the timeout included, in Redis's order; if an
element is available it does what the non-blocking form does and answers
as Redis would at once; otherwise it returns ``WOULD_BLOCK`` and the node
parks the client, runs the handler again after a later write to one of its
keys, and on timeout answers :data:`BLOCKING_TIMEOUT_REPLY`. The node reads
the timeout with :func:`blocking_timeout_ms`.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from typing import TYPE_CHECKING

from synod.kv._keys import parse_int
from synod.kv._longdouble import ld_round, parse_long_double
from synod.kv.commands import BLOCKING, DENYOOM, FAST, NOSCRIPT, READONLY, WOULD_BLOCK, WRITE, command
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
    Reply,
    SimpleError,
    wrong_arity,
)

if TYPE_CHECKING:
    from synod.kv.store import KeySpace

__all__ = ["blocking_timeout_ms", "BLOCKING_TIMEOUT_REPLY"]

# COMMAND INFO's flag for commands whose keys need a keys_fn (LMPOP, BLMPOP).
_MOVABLEKEYS = "movablekeys"
_LLONG_MIN = -(2**63)
_LLONG_MAX = 2**63 - 1

_NOT_POSITIVE = SimpleError(text="ERR value is out of range, must be positive")
_INDEX_OUT_OF_RANGE = SimpleError(text="ERR index out of range")
_RANK_ZERO = SimpleError(text="ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... "
                              "or use negative to start from the end of the list")
_COUNT_NEGATIVE = SimpleError(text="ERR COUNT can't be negative")
_MAXLEN_NEGATIVE = SimpleError(text="ERR MAXLEN can't be negative")
_NUMKEYS = SimpleError(text="ERR numkeys should be greater than 0")
_MPOP_COUNT = SimpleError(text="ERR count should be greater than 0")
_TIMEOUT_NOT_FLOAT = SimpleError(text="ERR timeout is not a float or out of range")
_TIMEOUT_NEGATIVE = SimpleError(text="ERR timeout is negative")

# What each blocking command answers when its timeout expires. Redis 7.0
# answers a nil *array* for all five (replyToBlockedClientTimedOut; checked
# against the real server), BRPOPLPUSH and BLMOVE included, although their
# docs say nil bulk: that is what they answer when they may not block at all
# (inside MULTI), which KeySpace.execute_multi does.
BLOCKING_TIMEOUT_REPLY: dict[str, Reply] = {
    "blpop": NIL_ARRAY, "brpop": NIL_ARRAY, "blmpop": NIL_ARRAY, "brpoplpush": NIL_ARRAY, "blmove": NIL_ARRAY,
}
# Where each blocking command's timeout is, in args (the name excluded).
_TIMEOUT_INDEX = {"blpop": -1, "brpop": -1, "blmpop": 0, "brpoplpush": 2, "blmove": 4}


# ---- helpers ----

def _get_list(ks: KeySpace, key: bytes, now_ms: int) -> deque | SimpleError | None:
    """The list at ``key``, None if missing, WRONGTYPE if another type."""
    value = ks.get(key, now_ms)
    if value is None or isinstance(value, deque):
        return value
    return WRONGTYPE


def _changed(ks: KeySpace, key: bytes, lst: deque) -> None:
    """After an in-place change: delete the list if empty, else bump its version."""
    if lst:
        ks.touch(key)
    else:
        ks.delete(key)


def _parse_where(word: bytes) -> bool | None:
    """LEFT -> True, RIGHT -> False (any case), else None."""
    word = word.lower()
    return True if word == b"left" else False if word == b"right" else None


def _bulks(items) -> Array:
    return Array(items=tuple(BulkString(data=x) for x in items))


def _pop_n(lst: deque, left: bool, n: int) -> list[bytes]:
    return [lst.popleft() if left else lst.pop() for _ in range(n)]


def _timeout_ms(word: bytes) -> float | SimpleError:
    """A timeout in seconds as getTimeoutFromObjectOrReply (Redis 7.0)
    reads it: a long double, times 1000 and rounded up to whole ms, cast to
    a 64-bit integer (out of range: INT64_MIN on x86-64, hence "negative")."""
    seconds = parse_long_double(word)
    if seconds is None:
        return _TIMEOUT_NOT_FLOAT
    ms = seconds * 1000 if isinstance(seconds, float) else ld_round(seconds * 1000)
    if isinstance(ms, float):
        return _TIMEOUT_NEGATIVE  # +-inf cast to long long
    whole = math.ceil(ms)
    if not _LLONG_MIN <= whole <= _LLONG_MAX or whole < 0:
        return _TIMEOUT_NEGATIVE
    return float(whole)


def blocking_timeout_ms(name: str, args: list[bytes]) -> float | SimpleError:
    """The timeout of blocking command ``name`` (BLPOP, BRPOP, BRPOPLPUSH,
    BLMOVE, BLMPOP; any case) with ``args`` (the name excluded), in ms; 0.0
    means forever (as does a timeout that rounds up to 0, e.g. -0.0001).
    Errors: "ERR timeout is not a float or out of range", "ERR timeout is
    negative", wrong arity when ``args`` has no timeout word
    (https://redis.io/docs/latest/commands/blpop/)."""
    index = _TIMEOUT_INDEX[name.lower()]
    if len(args) <= (index if index >= 0 else -index - 1):
        return wrong_arity(name)  # no timeout word: the handler answers the same
    return _timeout_ms(args[index])


def _mpop_keys(args: list[bytes], numkeys_index: int) -> list[bytes]:
    numkeys = parse_int(args[numkeys_index]) if len(args) > numkeys_index else None
    if numkeys is None or numkeys < 1 or numkeys_index + 1 + numkeys > len(args):
        return []
    return list(args[numkeys_index + 1:numkeys_index + 1 + numkeys])


def _lmpop_keys(args: list[bytes]) -> list[bytes]:
    """LMPOP numkeys key [key ...] ...: the keys (none if numkeys is bad)."""
    return _mpop_keys(args, 0)


def _blmpop_keys(args: list[bytes]) -> list[bytes]:
    """BLMPOP timeout numkeys key [key ...] ...: the keys (none if numkeys is bad)."""
    return _mpop_keys(args, 1)


# ---- push and pop ----

def _push(ks: KeySpace, args: list[bytes], now_ms: int, left: bool, existing_only: bool) -> Reply:
    key = args[0]
    lst = _get_list(ks, key, now_ms)
    if isinstance(lst, SimpleError):
        return lst
    if lst is None:
        if existing_only:
            return Integer(value=0)
        lst = deque()
        ks.set(key, lst)
    else:
        ks.touch(key)
    if left:
        lst.extendleft(args[1:])
    else:
        lst.extend(args[1:])
    return Integer(value=len(lst))


@command("lpush", -3, (WRITE, DENYOOM, FAST), 1, 1, 1, summary="Prepends one or more elements to a list.")
def lpush(ks: KeySpace, args: list[bytes], now_ms: int) -> Reply:
    """LPUSH key element [element ...] -> Integer: the new length; each
    element goes to the head in turn (https://redis.io/docs/latest/commands/lpush/).
    Errors: WRONGTYPE."""
    return _push(ks, args, now_ms, left=True, existing_only=False)


@command("rpush", -3, (WRITE, DENYOOM, FAST), 1, 1, 1, summary="Appends one or more elements to a list.")
def rpush(ks: KeySpace, args: list[bytes], now_ms: int) -> Reply:
    """RPUSH key element [element ...] -> Integer: the new length
    (https://redis.io/docs/latest/commands/rpush/). Errors: WRONGTYPE."""
    return _push(ks, args, now_ms, left=False, existing_only=False)


@command("lpushx", -3, (WRITE, DENYOOM, FAST), 1, 1, 1, summary="Prepends elements to a list only when the list exists.")
def lpushx(ks: KeySpace, args: list[bytes], now_ms: int) -> Reply:
    """LPUSHX key element [element ...] -> Integer: the new length, 0 (and
    nothing done) if the key is missing (https://redis.io/docs/latest/commands/lpushx/).
    Errors: WRONGTYPE."""
    return _push(ks, args, now_ms, left=True, existing_only=True)


@command("rpushx", -3, (WRITE, DENYOOM, FAST), 1, 1, 1, summary="Appends an element to a list only when the list exists.")
def rpushx(ks: KeySpace, args: list[bytes], now_ms: int) -> Reply:
    """RPUSHX key element [element ...] -> Integer: the new length, 0 if the
    key is missing (https://redis.io/docs/latest/commands/rpushx/). Errors: WRONGTYPE."""
    return _push(ks, args, now_ms, left=False, existing_only=True)


def _pop(ks: KeySpace, args: list[bytes], now_ms: int, left: bool, name: str) -> Reply:
    if len(args) > 2:
        return wrong_arity(name)
    count = None
    if len(args) == 2:
        count = parse_int(args[1])
        if count is None or count < 0:
            return _NOT_POSITIVE
    key = args[0]
    lst = _get_list(ks, key, now_ms)
    if isinstance(lst, SimpleError):
        return lst
    if lst is None:
        return NIL if count is None else NIL_ARRAY
    if count == 0:
        return EMPTY_ARRAY
    if count is None:
        element = lst.popleft() if left else lst.pop()
        _changed(ks, key, lst)
        return BulkString(data=element)
    items = _pop_n(lst, left, min(count, len(lst)))
    _changed(ks, key, lst)
    return _bulks(items)


@command("lpop", -2, (WRITE, FAST), 1, 1, 1, summary="Returns the first elements in a list after removing it.")
def lpop(ks: KeySpace, args: list[bytes], now_ms: int) -> Reply:
    """LPOP key [count] (https://redis.io/docs/latest/commands/lpop/).
    Without count: BulkString, NIL for a missing key. With count: Array of
    up to count elements in pop order; NIL_ARRAY for a missing key;
    EMPTY_ARRAY for count 0. Errors: wrong arity (more than one count),
    "ERR value is out of range, must be positive" (count negative or not an
    integer), WRONGTYPE."""
    return _pop(ks, args, now_ms, left=True, name="lpop")


@command("rpop", -2, (WRITE, FAST), 1, 1, 1, summary="Returns and removes the last elements of a list.")
def rpop(ks: KeySpace, args: list[bytes], now_ms: int) -> Reply:
    """RPOP key [count]: as LPOP from the tail (https://redis.io/docs/latest/commands/rpop/)."""
    return _pop(ks, args, now_ms, left=False, name="rpop")


# ---- reading and editing by index ----

@command("llen", 2, (READONLY, FAST), 1, 1, 1, summary="Returns the length of a list.")
def llen(ks: KeySpace, args: list[bytes], now_ms: int) -> Reply:
    """LLEN key -> Integer, 0 for a missing key (https://redis.io/docs/latest/commands/llen/).
    Errors: WRONGTYPE."""
    lst = _get_list(ks, args[0], now_ms)
    if isinstance(lst, SimpleError):
        return lst
    return Integer(value=len(lst or ()))


def _clamp_range(start: int, stop: int, length: int) -> tuple[int, int] | None:
    """Redis's LRANGE/LTRIM reading of [start, stop] (negative: from the
    end): the inclusive index range, or None if it is empty."""
    if start < 0:
        start += length
    if stop < 0:
        stop += length
    start = max(start, 0)
    if start > stop or start >= length:
        return None
    return start, min(stop, length - 1)


@command("lrange", 4, (READONLY,), 1, 1, 1, summary="Returns a range of elements from a list.")
def lrange(ks: KeySpace, args: list[bytes], now_ms: int) -> Reply:
    """LRANGE key start stop -> Array of the elements at indexes start..stop
    inclusive (negative from the end, clamped); empty for a missing key
    (https://redis.io/docs/latest/commands/lrange/). Errors: NOT_INTEGER
    (checked first), WRONGTYPE."""
    start, stop = parse_int(args[1]), parse_int(args[2])
    if start is None or stop is None:
        return NOT_INTEGER
    lst = _get_list(ks, args[0], now_ms)
    if isinstance(lst, SimpleError):
        return lst
    span = _clamp_range(start, stop, len(lst or ()))
    if lst is None or span is None:
        return EMPTY_ARRAY
    return _bulks(itertools.islice(lst, span[0], span[1] + 1))


@command("lindex", 3, (READONLY,), 1, 1, 1, summary="Returns an element from a list by its index.")
def lindex(ks: KeySpace, args: list[bytes], now_ms: int) -> Reply:
    """LINDEX key index -> BulkString, NIL if out of range or the key is
    missing (https://redis.io/docs/latest/commands/lindex/). Errors, in
    Redis's order: WRONGTYPE, NOT_INTEGER (a missing key answers NIL first)."""
    lst = _get_list(ks, args[0], now_ms)
    if lst is None:
        return NIL
    if isinstance(lst, SimpleError):
        return lst
    index = parse_int(args[1])
    if index is None:
        return NOT_INTEGER
    if not -len(lst) <= index < len(lst):
        return NIL
    return BulkString(data=lst[index])


@command("lset", 4, (WRITE, DENYOOM), 1, 1, 1, summary="Sets the value of an element in a list by its index.")
def lset(ks: KeySpace, args: list[bytes], now_ms: int) -> Reply:
    """LSET key index element -> OK (https://redis.io/docs/latest/commands/lset/).
    Errors, in Redis's order: "ERR no such key", WRONGTYPE, NOT_INTEGER,
    "ERR index out of range"."""
    key = args[0]
    lst = _get_list(ks, key, now_ms)
    if lst is None:
        return NO_SUCH_KEY
    if isinstance(lst, SimpleError):
        return lst
    index = parse_int(args[1])
    if index is None:
        return NOT_INTEGER
    if not -len(lst) <= index < len(lst):
        return _INDEX_OUT_OF_RANGE
    lst[index] = args[2]
    ks.touch(key)
    return OK


@command("lrem", 4, (WRITE,), 1, 1, 1, summary="Removes elements from a list.")
def lrem(ks: KeySpace, args: list[bytes], now_ms: int) -> Reply:
    """LREM key count element -> Integer: elements removed; count > 0: the
    first count from the head, < 0: from the tail, 0: all
    (https://redis.io/docs/latest/commands/lrem/). Errors: NOT_INTEGER
    (checked first), WRONGTYPE."""
    key, element = args[0], args[2]
    count = parse_int(args[1])
    if count is None:
        return NOT_INTEGER
    lst = _get_list(ks, key, now_ms)
    if isinstance(lst, SimpleError):
        return lst
    if lst is None:
        return Integer(value=0)
    limit = abs(count) or len(lst)
    kept: list[bytes] = []
    removed = 0
    for item in (reversed(lst) if count < 0 else lst):
        if removed < limit and item == element:
            removed += 1
        else:
            kept.append(item)
    if removed:
        lst.clear()
        lst.extend(reversed(kept) if count < 0 else kept)
        _changed(ks, key, lst)
    return Integer(value=removed)


@command("ltrim", 4, (WRITE,), 1, 1, 1, summary="Keeps only a range of a list; deletes it if nothing is left.")
def ltrim(ks: KeySpace, args: list[bytes], now_ms: int) -> Reply:
    """LTRIM key start stop -> OK: keep indexes start..stop (as LRANGE reads
    them), deleting the key if nothing is left
    (https://redis.io/docs/latest/commands/ltrim/). Errors: NOT_INTEGER
    (checked first), WRONGTYPE. An existing key's version is bumped even
    when nothing is trimmed, as Redis signals it modified."""
    key = args[0]
    start, stop = parse_int(args[1]), parse_int(args[2])
    if start is None or stop is None:
        return NOT_INTEGER
    lst = _get_list(ks, key, now_ms)
    if isinstance(lst, SimpleError):
        return lst
    if lst is None:
        return OK
    span = _clamp_range(start, stop, len(lst))
    if span is None:
        lst.clear()
    else:
        for _ in range(len(lst) - 1 - span[1]):
            lst.pop()
        for _ in range(span[0]):
            lst.popleft()
    _changed(ks, key, lst)
    return OK


@command("linsert", 5, (WRITE, DENYOOM), 1, 1, 1, summary="Inserts an element before or after another element in a list.")
def linsert(ks: KeySpace, args: list[bytes], now_ms: int) -> Reply:
    """LINSERT key BEFORE|AFTER pivot element -> Integer: the new length, -1
    if the pivot is not found, 0 if the key is missing
    (https://redis.io/docs/latest/commands/linsert/). Errors: SYNTAX
    (checked first), WRONGTYPE."""
    key, where, pivot, element = args
    where = where.lower()
    if where not in (b"before", b"after"):
        return SYNTAX
    lst = _get_list(ks, key, now_ms)
    if isinstance(lst, SimpleError):
        return lst
    if lst is None:
        return Integer(value=0)
    try:
        index = lst.index(pivot)
    except ValueError:
        return Integer(value=-1)
    lst.insert(index if where == b"before" else index + 1, element)
    ks.touch(key)
    return Integer(value=len(lst))


def _lpos_options(args: list[bytes]) -> tuple[int, int, int] | SimpleError:
    """LPOS's RANK, COUNT (-1: not given), MAXLEN (0: unlimited)."""
    rank, count, maxlen = 1, -1, 0
    i = 2
    while i < len(args):
        opt, more = args[i].lower(), len(args) - 1 - i
        if opt == b"rank" and more:
            rank = parse_int(args[i + 1])
            if rank is None:
                return NOT_INTEGER
            if rank == 0:
                return _RANK_ZERO
        elif opt == b"count" and more:
            count = parse_int(args[i + 1])
            if count is None or count < 0:
                return _COUNT_NEGATIVE
        elif opt == b"maxlen" and more:
            maxlen = parse_int(args[i + 1])
            if maxlen is None or maxlen < 0:
                return _MAXLEN_NEGATIVE
        else:
            return SYNTAX
        i += 2
    return rank, count, maxlen


@command("lpos", -3, (READONLY,), 1, 1, 1, summary="Returns the index of matching elements in a list.")
def lpos(ks: KeySpace, args: list[bytes], now_ms: int) -> Reply:
    """LPOS key element [RANK rank] [COUNT num] [MAXLEN len]
    (https://redis.io/docs/latest/commands/lpos/). Without COUNT: Integer
    index of the rank-th match (negative rank: counted from the tail), NIL
    if none. With COUNT: Array of up to num indexes (0: all). MAXLEN: compare
    at most len elements. Errors, in Redis's order: NOT_INTEGER (RANK),
    "ERR RANK can't be zero: ...", "ERR COUNT can't be negative", "ERR
    MAXLEN can't be negative", SYNTAX, WRONGTYPE."""
    options = _lpos_options(args)
    if isinstance(options, SimpleError):
        return options
    rank, count, maxlen = options
    lst = _get_list(ks, args[0], now_ms)
    if isinstance(lst, SimpleError):
        return lst
    if lst is None:
        return NIL if count == -1 else EMPTY_ARRAY
    from_tail = rank < 0
    if rank == _LLONG_MIN:
        rank, count = 1, 0 if count != -1 else -1  # Redis's -rank overflows: every match is wanted
    rank = abs(rank)
    length = len(lst)
    found: list[int] = []
    matches = 0
    for offset, item in enumerate(reversed(lst) if from_tail else lst):
        if maxlen and offset >= maxlen:
            break
        if item != args[1]:
            continue
        matches += 1
        if matches < rank:
            continue
        found.append(length - 1 - offset if from_tail else offset)
        if count == -1 or (count and len(found) >= count):
            break
    if count == -1:
        return Integer(value=found[0]) if found else NIL
    return Array(items=tuple(Integer(value=i) for i in found))


# ---- moving between lists ----

def _move(ks: KeySpace, source: bytes, destination: bytes, from_left: bool, to_left: bool, now_ms: int) -> Reply:
    """LMOVE's work: NIL if the source is missing; WRONGTYPE (before any
    change) if either key holds another type; else the moved element."""
    src = _get_list(ks, source, now_ms)
    if src is None:
        return NIL
    if isinstance(src, SimpleError):
        return src
    dst = _get_list(ks, destination, now_ms)
    if isinstance(dst, SimpleError):
        return dst
    element = src.popleft() if from_left else src.pop()
    if dst is None:
        ks.set(destination, deque([element]))
    else:
        if to_left:
            dst.appendleft(element)
        else:
            dst.append(element)
        ks.touch(destination)
    if source != destination:
        _changed(ks, source, src)
    return BulkString(data=element)


@command("rpoplpush", 3, (WRITE, DENYOOM), 1, 2, 1, summary="Moves the last element of a list to the head of another.")
def rpoplpush(ks: KeySpace, args: list[bytes], now_ms: int) -> Reply:
    """RPOPLPUSH source destination -> BulkString (the element), NIL if the
    source is missing (https://redis.io/docs/latest/commands/rpoplpush/).
    Errors: WRONGTYPE."""
    return _move(ks, args[0], args[1], False, True, now_ms)


@command("lmove", 5, (WRITE, DENYOOM), 1, 2, 1, summary="Moves an element from one end of a list to an end of another.")
def lmove(ks: KeySpace, args: list[bytes], now_ms: int) -> Reply:
    """LMOVE source destination LEFT|RIGHT LEFT|RIGHT -> BulkString, NIL if
    the source is missing; source == destination rotates the list
    (https://redis.io/docs/latest/commands/lmove/). Errors: SYNTAX (checked
    first), WRONGTYPE."""
    from_left, to_left = _parse_where(args[2]), _parse_where(args[3])
    if from_left is None or to_left is None:
        return SYNTAX
    return _move(ks, args[0], args[1], from_left, to_left, now_ms)


def _parse_mpop(args: list[bytes], numkeys_index: int) -> tuple[list[bytes], bool, int] | SimpleError:
    """[B]LMPOP's numkeys key [key ...] LEFT|RIGHT [COUNT count] from
    ``numkeys_index``: (keys, from the left, count)."""
    numkeys = parse_int(args[numkeys_index])
    if numkeys is None or numkeys < 1:
        return _NUMKEYS
    where_index = numkeys_index + numkeys + 1
    if where_index >= len(args):
        return SYNTAX
    left = _parse_where(args[where_index])
    if left is None:
        return SYNTAX
    count = -1
    i = where_index + 1
    while i < len(args):
        if count == -1 and args[i].lower() == b"count" and i + 1 < len(args):
            count = parse_int(args[i + 1])
            if count is None or count < 1:
                return _MPOP_COUNT
            i += 2
        else:
            return SYNTAX
    return list(args[numkeys_index + 1:where_index]), left, max(count, 1)


def _mpop(ks: KeySpace, keys: list[bytes], left: bool, count: int, now_ms: int) -> Reply | None:
    """Pop up to ``count`` from the first non-empty list of ``keys``:
    Array [key, Array of elements]; None if all are missing; WRONGTYPE for
    the first key of another type met before a list."""
    for key in keys:
        lst = _get_list(ks, key, now_ms)
        if lst is None:
            continue
        if isinstance(lst, SimpleError):
            return lst
        items = _pop_n(lst, left, min(count, len(lst)))
        _changed(ks, key, lst)
        return Array(items=(BulkString(data=key), _bulks(items)))
    return None


@command("lmpop", -4, (WRITE, _MOVABLEKEYS), 0, 0, 0, summary="Pops elements from the first non-empty list of several.",
         keys_fn=_lmpop_keys)
def lmpop(ks: KeySpace, args: list[bytes], now_ms: int) -> Reply:
    """LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count] -> Array [key,
    Array of up to count elements in pop order] from the first non-empty
    list, NIL_ARRAY if none (https://redis.io/docs/latest/commands/lmpop/).
    Errors, in Redis's order: "ERR numkeys should be greater than 0",
    SYNTAX, "ERR count should be greater than 0", WRONGTYPE."""
    parsed = _parse_mpop(args, 0)
    if isinstance(parsed, SimpleError):
        return parsed
    reply = _mpop(ks, *parsed, now_ms)
    return NIL_ARRAY if reply is None else reply


# ---- blocking forms ----

def _bpop(ks: KeySpace, args: list[bytes], now_ms: int, left: bool) -> Reply | object:
    timeout = _timeout_ms(args[-1])
    if isinstance(timeout, SimpleError):
        return timeout
    for key in args[:-1]:
        lst = _get_list(ks, key, now_ms)
        if lst is None:
            continue
        if isinstance(lst, SimpleError):
            return lst
        element = lst.popleft() if left else lst.pop()
        _changed(ks, key, lst)
        return Array(items=(BulkString(data=key), BulkString(data=element)))
    return WOULD_BLOCK


@command("blpop", -3, (WRITE, NOSCRIPT, BLOCKING), 1, -2, 1,
         summary="Pops the first element of the first non-empty list, or blocks.")
def blpop(ks: KeySpace, args: list[bytes], now_ms: int) -> Reply | object:
    """BLPOP key [key ...] timeout -> Array [key, element] from the first
    non-empty list, else WOULD_BLOCK (on timeout: NIL_ARRAY)
    (https://redis.io/docs/latest/commands/blpop/). Errors, in Redis's
    order: the timeout's (see :func:`blocking_timeout_ms`), WRONGTYPE (the
    first key of another type met before a list)."""
    return _bpop(ks, args, now_ms, left=True)


@command("brpop", -3, (WRITE, NOSCRIPT, BLOCKING), 1, -2, 1,
         summary="Pops the last element of the first non-empty list, or blocks.")
def brpop(ks: KeySpace, args: list[bytes], now_ms: int) -> Reply | object:
    """BRPOP key [key ...] timeout: BLPOP from the tail
    (https://redis.io/docs/latest/commands/brpop/)."""
    return _bpop(ks, args, now_ms, left=False)


def _bmove(ks: KeySpace, args: list[bytes], now_ms: int, from_left: bool, to_left: bool, timeout_word: bytes) -> Reply | object:
    timeout = _timeout_ms(timeout_word)
    if isinstance(timeout, SimpleError):
        return timeout
    src = _get_list(ks, args[0], now_ms)
    if src is None:
        return WOULD_BLOCK
    if isinstance(src, SimpleError):
        return src
    return _move(ks, args[0], args[1], from_left, to_left, now_ms)


@command("brpoplpush", 4, (WRITE, DENYOOM, NOSCRIPT, BLOCKING), 1, 2, 1,
         summary="RPOPLPUSH that blocks until the source has an element.")
def brpoplpush(ks: KeySpace, args: list[bytes], now_ms: int) -> Reply | object:
    """BRPOPLPUSH source destination timeout -> BulkString (the element),
    else WOULD_BLOCK (on timeout: NIL_ARRAY) (https://redis.io/docs/latest/commands/brpoplpush/).
    Errors: the timeout's, WRONGTYPE (the destination is checked only when
    the source has an element)."""
    return _bmove(ks, args, now_ms, False, True, args[2])


@command("blmove", 6, (WRITE, DENYOOM, NOSCRIPT, BLOCKING), 1, 2, 1, summary="LMOVE that blocks until the source has an element.")
def blmove(ks: KeySpace, args: list[bytes], now_ms: int) -> Reply | object:
    """BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout -> as LMOVE,
    else WOULD_BLOCK (on timeout: NIL_ARRAY) (https://redis.io/docs/latest/commands/blmove/).
    Errors, in Redis's order: SYNTAX, the timeout's, WRONGTYPE."""
    from_left, to_left = _parse_where(args[2]), _parse_where(args[3])
    if from_left is None or to_left is None:
        return SYNTAX
    return _bmove(ks, args, now_ms, from_left, to_left, args[4])


@command("blmpop", -5, (WRITE, BLOCKING, _MOVABLEKEYS), 0, 0, 0,
         summary="LMPOP that blocks until one of the lists has an element.",
         keys_fn=_blmpop_keys)
def blmpop(ks: KeySpace, args: list[bytes], now_ms: int) -> Reply | object:
    """BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count] -> as
    LMPOP, else WOULD_BLOCK (on timeout: NIL_ARRAY)
    (https://redis.io/docs/latest/commands/blmpop/). Errors, in Redis's
    order: LMPOP's parsing errors, then the timeout's, then WRONGTYPE."""
    parsed = _parse_mpop(args, 1)
    if isinstance(parsed, SimpleError):
        return parsed
    timeout = _timeout_ms(args[0])
    if isinstance(timeout, SimpleError):
        return timeout
    reply = _mpop(ks, *parsed, now_ms)
    return WOULD_BLOCK if reply is None else reply

