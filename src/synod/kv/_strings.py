"""String commands (GET ... INCRBYFLOAT, and SUBSTR), registered in
:mod:`synod.kv.commands` on import.

Semantics, reply types and error texts are Redis 7.0's (src/t_string.c);
flags and key positions are copied from the real server's ``COMMAND INFO``.
A string value is at most ``ks.string_size_bytes_max`` bytes (Redis's
proto-max-bulk-len, 512 MB by default): SETRANGE and APPEND past it answer
``ERR string exceeds maximum allowed size (proto-max-bulk-len)``.

INCRBYFLOAT computes in x87 80-bit ``long double`` as Redis does, emulated
exactly with fractions: each operand is parsed as ``strtold`` parses it
(decimal or hexadecimal, ``inf``; correctly rounded to a 64-bit
significand), the sum is rounded once, and the result printed as
``"%.17Lf"`` with trailing zeros removed (Redis's ``ld2string``
LD_STR_HUMAN), so replies match the real server digit for digit.
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

from synod.kv._keys import INT64_MAX, INT64_MIN, _c_str, expire_time_error, parse_int
from synod.kv._longdouble import ld_human, ld_round, parse_long_double
from synod.kv.commands import DENYOOM, FAST, READONLY, WRITE, command
from synod.kv.replies import (
    NIL,
    NOT_FLOAT,
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

__all__: list[str] = []  # commands register themselves in synod.kv.commands

_TOO_BIG = SimpleError(text="ERR string exceeds maximum allowed size (proto-max-bulk-len)")


def _string_or_error(ks: KeySpace, key: bytes, now_ms: int) -> tuple[bytes | None, SimpleError | None]:
    """(the string at ``key`` or None, None), or (None, WRONGTYPE)."""
    value = ks.get(key, now_ms)
    if value is None or isinstance(value, bytes):
        return value, None
    return None, WRONGTYPE


# ---- GET, SET and friends ----

@command("get", 2, (READONLY, FAST), 1, 1, 1, summary="Returns the string value of a key.")
def _get(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """GET key -> BulkString or nil; WRONGTYPE. https://redis.io/docs/latest/commands/get/"""
    value, err = _string_or_error(ks, args[0], now_ms)
    return err or BulkString(data=value)


# Option flags of parseExtendedStringArgumentsOrReply.
_NX, _XX, _GET, _KEEPTTL, _PERSIST, _EX, _PX, _EXAT, _PXAT = (1 << i for i in range(9))
_EXPIRY_FLAGS = _EX | _PX | _EXAT | _PXAT
_UNIT_OPTS = {b"ex": _EX, b"px": _PX, b"exat": _EXAT, b"pxat": _PXAT}


def _parse_set_options(words: tuple[bytes, ...], for_set: bool) -> tuple[int, bytes | None] | None:
    """SET's / GETEX's options as parseExtendedStringArgumentsOrReply reads
    them: (flags, expiry word or None), or None for a syntax error."""
    flags, expire = 0, None
    j = 0
    while j < len(words):
        opt = _c_str(words[j]).lower()
        has_next = j + 1 < len(words)
        if opt == b"nx" and for_set and not flags & _XX:
            flags |= _NX
        elif opt == b"xx" and for_set and not flags & _NX:
            flags |= _XX
        elif opt == b"get" and for_set:
            flags |= _GET
        elif opt == b"keepttl" and for_set and not flags & (_PERSIST | _EXPIRY_FLAGS):
            flags |= _KEEPTTL
        elif opt == b"persist" and not for_set and not flags & (_EXPIRY_FLAGS | _KEEPTTL):
            flags |= _PERSIST
        elif opt in _UNIT_OPTS and has_next and not flags & (_KEEPTTL | _PERSIST | (_EXPIRY_FLAGS & ~_UNIT_OPTS[opt])):
            flags |= _UNIT_OPTS[opt]
            expire = words[j + 1]
            j += 1
        else:
            return None
        j += 1
    return flags, expire


def _expire_ms(word: bytes, flags: int, now_ms: int) -> int | None:
    """The absolute expiry time (ms) of an EX/PX/EXAT/PXAT word, or None when
    Redis's getExpireMillisecondsOrReply rejects it (not positive, overflow);
    a non-integer raises ValueError."""
    ms = parse_int(word)
    if ms is None:
        raise ValueError(word)
    seconds = flags & (_EX | _EXAT)
    if ms <= 0 or (seconds and ms > INT64_MAX // 1000):
        return None
    if seconds:
        ms *= 1000
    if flags & (_EX | _PX):
        ms += now_ms
    return ms if ms <= INT64_MAX else None


def _set_generic(ks: KeySpace, name: str, key: bytes, value: bytes, flags: int, expire: bytes | None,
                 now_ms: int, ok_reply: Reply = OK, abort_reply: Reply = NIL) -> Reply:
    """setGenericCommand (src/t_string.c): validate the expiry, GET, NX/XX, store."""
    at_ms = None
    if expire is not None:
        try:
            at_ms = _expire_ms(expire, flags, now_ms)
        except ValueError:
            return NOT_INTEGER
        if at_ms is None:
            return expire_time_error(name)
    old, err = _string_or_error(ks, key, now_ms)
    if flags & _GET and err is not None:
        return err
    found = ks.get(key, now_ms) is not None
    if (flags & _NX and found) or (flags & _XX and not found):
        return BulkString(data=old) if flags & _GET else abort_reply
    ks.set(key, value, keep_ttl=bool(flags & _KEEPTTL))
    if at_ms is not None:
        if at_ms <= now_ms:
            ks.delete(key)
        else:
            ks.set_expire_at_ms(key, at_ms)
    return BulkString(data=old) if flags & _GET else ok_reply


@command("set", -3, (WRITE, DENYOOM), 1, 1, 1,
         summary="Sets the string value of a key, ignoring its type. The key is created if it doesn't exist.")
def _set(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """SET key value [NX|XX] [GET] [EX s|PX ms|EXAT unix-s|PXAT unix-ms|KEEPTTL]
    -> OK, nil (NX/XX not met), or with GET the old value (BulkString or
    nil). Errors: ``ERR syntax error``, ``ERR value is not an integer or out
    of range``, ``ERR invalid expire time in 'set' command``, WRONGTYPE (GET
    on a non-string). https://redis.io/docs/latest/commands/set/"""
    parsed = _parse_set_options(args[2:], for_set=True)
    if parsed is None:
        return SYNTAX
    flags, expire = parsed
    return _set_generic(ks, "set", args[0], args[1], flags, expire, now_ms)


@command("setnx", 3, (WRITE, DENYOOM, FAST), 1, 1, 1,
         summary="Set the string value of a key only when the key doesn't exist.")
def _setnx(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """SETNX key value -> Integer 1 set, 0 the key exists. https://redis.io/docs/latest/commands/setnx/"""
    return _set_generic(ks, "setnx", args[0], args[1], _NX, None, now_ms, Integer(value=1), Integer(value=0))


@command("setex", 4, (WRITE, DENYOOM), 1, 1, 1,
         summary="Sets the string value and expiration time of a key. Creates the key if it doesn't exist.")
def _setex(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """SETEX key seconds value -> OK; ``ERR invalid expire time in 'setex' command``. https://redis.io/docs/latest/commands/setex/"""
    return _set_generic(ks, "setex", args[0], args[2], _EX, args[1], now_ms)


@command("psetex", 4, (WRITE, DENYOOM), 1, 1, 1,
         summary="Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.")
def _psetex(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """PSETEX key milliseconds value -> OK. https://redis.io/docs/latest/commands/psetex/"""
    return _set_generic(ks, "psetex", args[0], args[2], _PX, args[1], now_ms)


@command("getset", 3, (WRITE, DENYOOM, FAST), 1, 1, 1,
         summary="Returns the previous string value of a key after setting it to a new value.")
def _getset(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """GETSET key value -> the old BulkString or nil; clears the TTL. https://redis.io/docs/latest/commands/getset/"""
    old, err = _string_or_error(ks, args[0], now_ms)
    if err is not None:
        return err
    ks.set(args[0], args[1])
    return BulkString(data=old)


@command("getdel", 2, (WRITE, FAST), 1, 1, 1, summary="Returns the string value of a key after deleting the key.")
def _getdel(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """GETDEL key -> BulkString or nil. https://redis.io/docs/latest/commands/getdel/"""
    old, err = _string_or_error(ks, args[0], now_ms)
    if err is not None:
        return err
    if old is not None:
        ks.delete(args[0])
    return BulkString(data=old)


@command("getex", -2, (WRITE, FAST), 1, 1, 1,
         summary="Returns the string value of a key after setting its expiration time.")
def _getex(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """GETEX key [EX s|PX ms|EXAT unix-s|PXAT unix-ms|PERSIST] -> BulkString
    or nil (a missing key is nil before the time is checked); ``ERR invalid
    expire time in 'getex' command``. https://redis.io/docs/latest/commands/getex/"""
    parsed = _parse_set_options(args[1:], for_set=False)
    if parsed is None:
        return SYNTAX
    flags, expire = parsed
    key = args[0]
    value, err = _string_or_error(ks, key, now_ms)
    if err is not None or value is None:
        return err or NIL
    if expire is not None:
        try:
            at_ms = _expire_ms(expire, flags, now_ms)
        except ValueError:
            return NOT_INTEGER
        if at_ms is None:
            return expire_time_error("getex")
        if at_ms <= now_ms:
            ks.delete(key)
        else:
            ks.set_expire_at_ms(key, at_ms)
    elif flags & _PERSIST:
        ks.persist(key)
    return BulkString(data=value)


@command("mget", -2, (READONLY, FAST), 1, -1, 1, summary="Atomically returns the string values of one or more keys.")
def _mget(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """MGET key [key ...] -> Array of BulkString (nil for a missing or non-string key). https://redis.io/docs/latest/commands/mget/"""
    items = []
    for key in args:
        value = ks.get(key, now_ms)
        items.append(BulkString(data=value if isinstance(value, bytes) else None))
    return Array(items=tuple(items))


@command("mset", -3, (WRITE, DENYOOM), 1, -1, 2, summary="Atomically creates or modifies the string values of one or more keys.")
def _mset(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """MSET key value [key value ...] -> OK (TTLs cleared); an odd count is the arity error. https://redis.io/docs/latest/commands/mset/"""
    if len(args) % 2:
        return wrong_arity("mset")
    for i in range(0, len(args), 2):
        ks.set(args[i], args[i + 1])
    return OK


@command("msetnx", -3, (WRITE, DENYOOM), 1, -1, 2,
         summary="Atomically modifies the string values of one or more keys only when all keys don't exist.")
def _msetnx(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """MSETNX key value [key value ...] -> Integer 1 all set, 0 none (some key existed). https://redis.io/docs/latest/commands/msetnx/"""
    if len(args) % 2:
        return wrong_arity("msetnx")
    if any(ks.get(args[i], now_ms) is not None for i in range(0, len(args), 2)):
        return Integer(value=0)
    for i in range(0, len(args), 2):
        ks.set(args[i], args[i + 1])
    return Integer(value=1)


@command("append", 3, (WRITE, DENYOOM, FAST), 1, 1, 1,
         summary="Appends a string to the value of a key. Creates the key if it doesn't exist.")
def _append(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """APPEND key value -> Integer new length (the TTL kept); the size limit error. https://redis.io/docs/latest/commands/append/"""
    old, err = _string_or_error(ks, args[0], now_ms)
    if err is not None:
        return err
    if old is None:
        ks.set(args[0], args[1])
        return Integer(value=len(args[1]))
    if len(old) + len(args[1]) > ks.string_size_bytes_max:
        return _TOO_BIG
    ks.set(args[0], old + args[1], keep_ttl=True)
    return Integer(value=len(old) + len(args[1]))


@command("strlen", 2, (READONLY, FAST), 1, 1, 1, summary="Returns the length of a string value.")
def _strlen(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """STRLEN key -> Integer (0 no key). https://redis.io/docs/latest/commands/strlen/"""
    value, err = _string_or_error(ks, args[0], now_ms)
    return err or Integer(value=len(value or b""))


@command("getrange", 4, (READONLY,), 1, 1, 1, summary="Returns a substring of the string stored at a key.")
def _getrange(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """GETRANGE key start end -> BulkString (inclusive, negative from the end; "" no key). https://redis.io/docs/latest/commands/getrange/"""
    start, end = parse_int(args[1]), parse_int(args[2])
    if start is None or end is None:
        return NOT_INTEGER
    value, err = _string_or_error(ks, args[0], now_ms)
    if err is not None:
        return err
    value = value or b""
    n = len(value)
    if start < 0 and end < 0 and start > end:
        return BulkString(data=b"")
    if start < 0:
        start += n
    if end < 0:
        end += n
    start, end = max(start, 0), max(end, 0)
    end = min(end, n - 1)
    if start > end or n == 0:
        return BulkString(data=b"")
    return BulkString(data=value[start:end + 1])


@command("substr", 4, (READONLY,), 1, 1, 1, summary="Returns a substring from a string value.")
def _substr(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """SUBSTR key start end: the old name of GETRANGE. https://redis.io/docs/latest/commands/substr/"""
    return _getrange(ks, args, now_ms)


@command("setrange", 4, (WRITE, DENYOOM), 1, 1, 1,
         summary="Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.")
def _setrange(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """SETRANGE key offset value -> Integer new length (zero-padded; TTL
    kept). Errors: ``ERR offset is out of range``, the size limit.
    https://redis.io/docs/latest/commands/setrange/"""
    offset = parse_int(args[1])
    if offset is None:
        return NOT_INTEGER
    if offset < 0:
        return SimpleError(text="ERR offset is out of range")
    key, patch = args[0], args[2]
    old, err = _string_or_error(ks, key, now_ms)
    if err is not None:
        return err
    if not patch:
        return Integer(value=len(old or b""))
    if offset + len(patch) > ks.string_size_bytes_max:
        return _TOO_BIG
    old = old or b""
    if len(old) < offset:
        old += b"\0" * (offset - len(old))
    new = old[:offset] + patch + old[offset + len(patch):]
    ks.set(key, new, keep_ttl=True)
    return Integer(value=len(new))


# ---- counters ----

def _incr(ks: KeySpace, key: bytes, incr: int, now_ms: int) -> Reply:
    """incrDecrCommand: the value must be a 64-bit integer string; the TTL is kept."""
    old, err = _string_or_error(ks, key, now_ms)
    if err is not None:
        return err
    value = 0 if old is None else parse_int(old)
    if value is None:
        return NOT_INTEGER
    if not INT64_MIN <= value + incr <= INT64_MAX:
        return SimpleError(text="ERR increment or decrement would overflow")
    ks.set(key, str(value + incr).encode(), keep_ttl=True)
    return Integer(value=value + incr)


@command("incr", 2, (WRITE, DENYOOM, FAST), 1, 1, 1,
         summary="Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.")
def _incr_cmd(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """INCR key -> Integer. https://redis.io/docs/latest/commands/incr/"""
    return _incr(ks, args[0], 1, now_ms)


@command("decr", 2, (WRITE, DENYOOM, FAST), 1, 1, 1,
         summary="Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.")
def _decr(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """DECR key -> Integer. https://redis.io/docs/latest/commands/decr/"""
    return _incr(ks, args[0], -1, now_ms)


@command("incrby", 3, (WRITE, DENYOOM, FAST), 1, 1, 1,
         summary="Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.")
def _incrby(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """INCRBY key increment -> Integer; ``ERR increment or decrement would overflow``. https://redis.io/docs/latest/commands/incrby/"""
    incr = parse_int(args[1])
    return NOT_INTEGER if incr is None else _incr(ks, args[0], incr, now_ms)


@command("decrby", 3, (WRITE, DENYOOM, FAST), 1, 1, 1,
         summary="Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.")
def _decrby(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """DECRBY key decrement -> Integer; ``ERR decrement would overflow`` for -2**63. https://redis.io/docs/latest/commands/decrby/"""
    incr = parse_int(args[1])
    if incr is None:
        return NOT_INTEGER
    if incr == INT64_MIN:
        return SimpleError(text="ERR decrement would overflow")
    return _incr(ks, args[0], -incr, now_ms)


# ---- INCRBYFLOAT: x87 long double, emulated exactly ----

@command("incrbyfloat", 3, (WRITE, DENYOOM, FAST), 1, 1, 1,
         summary="Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.")
def _incrbyfloat(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """INCRBYFLOAT key increment -> BulkString of the new value (TTL kept).
    Errors: ``ERR value is not a valid float``, ``ERR increment would
    produce NaN or Infinity``. https://redis.io/docs/latest/commands/incrbyfloat/"""
    old, err = _string_or_error(ks, args[0], now_ms)
    if err is not None:
        return err
    value = Fraction(0) if old is None else parse_long_double(old)
    incr = parse_long_double(args[1])
    if value is None or incr is None:
        return NOT_FLOAT
    if isinstance(value, float) or isinstance(incr, float):  # an infinity
        return SimpleError(text="ERR increment would produce NaN or Infinity")
    total = ld_round(value + incr)
    if isinstance(total, float):
        return SimpleError(text="ERR increment would produce NaN or Infinity")
    text = ld_human(total)
    ks.set(args[0], text, keep_ttl=True)
    return BulkString(data=text)
