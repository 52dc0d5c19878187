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

import re
from fractions import Fraction
from typing import TYPE_CHECKING

from synod.kv._keys import INT64_MAX, INT64_MIN, _c_str, expire_time_error, parse_int
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

__all__ = ["parse_long_double", "format_long_double"]

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

_LD_MANT_BITS = 64
_LD_EMIN = -16382            # the smallest normal exponent: 2**-16382
_LD_MAX_EXP = 16384           # values >= 2**16384 overflow
_LD_STRING_MAX = 5 * 1024     # MAX_LONG_DOUBLE_CHARS: longer words are rejected
_DEC_RE = re.compile(rb"([+-]?)(?:([0-9]+)\.?([0-9]*)|\.([0-9]+))(?:[eE]([+-]?[0-9]+))?")
_HEX_RE = re.compile(rb"([+-]?)0[xX](?:([0-9a-fA-F]+)\.?([0-9a-fA-F]*)|\.([0-9a-fA-F]+))(?:[pP]([+-]?[0-9]+))?")
_INF_RE = re.compile(rb"([+-]?)(?:inf|infinity)", re.IGNORECASE)
_INF = "inf"


_CHUNK_DIGITS = 1000  # below Python's int/str conversion limit (sys.get_int_max_str_digits)


def _int_from_digits(digits: bytes, base: int) -> int:
    """int(digits, base) for digit strings longer than Python's conversion limit."""
    value = 0
    for i in range(0, len(digits), _CHUNK_DIGITS):
        chunk = digits[i:i + _CHUNK_DIGITS]
        value = value * base ** len(chunk) + int(chunk, base)
    return value


def _int_to_str(n: int) -> str:
    """str(n) (n >= 0) for integers longer than Python's conversion limit."""
    if n < 10**_CHUNK_DIGITS:
        return str(n)
    high, low = divmod(n, 10**_CHUNK_DIGITS)
    return _int_to_str(high) + f"{low:0{_CHUNK_DIGITS}d}"


def _round_ld(x: Fraction) -> Fraction | str:
    """``x`` rounded to the nearest long double (ties to even), or ``"inf"``/``"-inf"`` on overflow."""
    if x == 0:
        return x
    sign, a = (-1, -x) if x < 0 else (1, x)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if Fraction(2) ** e > a:
        e -= 1
    # Now 2**e <= a < 2**(e+1); the unit in the last place is 2**(e-63), or the subnormal one.
    ulp_exp = max(e, _LD_EMIN) - (_LD_MANT_BITS - 1)
    scaled = a / Fraction(2) ** ulp_exp
    m = round(scaled)  # Fraction.__round__ rounds half to even
    r = m * Fraction(2) ** ulp_exp
    if r >= Fraction(2) ** _LD_MAX_EXP:
        return _INF if sign > 0 else "-" + _INF
    return sign * r


def parse_long_double(word: bytes) -> Fraction | str | None:
    """``word`` as Redis's string2ld reads it (strtold, then rejected if it
    starts with a space, has trailing bytes (a NUL included), overflows, underflows to zero
    or is NaN): the exact long double value as a Fraction, ``"inf"`` or
    ``"-inf"``, or None."""
    if not word or len(word) >= _LD_STRING_MAX:
        return None
    m = _INF_RE.fullmatch(word)
    if m:
        return "-" + _INF if m.group(1) == b"-" else _INF
    m = _DEC_RE.fullmatch(word)
    base = 10
    if m is None:
        m = _HEX_RE.fullmatch(word)
        base = 16
        if m is None:
            return None
    sign, whole, frac, only_frac, exp = m.groups()
    if only_frac is not None:
        whole, frac = b"", only_frac
    digits = (whole + frac).lstrip(b"0")
    exponent = int(exp) if exp else 0
    if not digits:
        return Fraction(0)
    mantissa = _int_from_digits(digits, base)
    if base == 10:
        magnitude = exponent - len(frac) + len(digits)  # the value is about 10**magnitude
        if magnitude > 4940:
            return None
        if magnitude < -4960:
            return None
        value = Fraction(mantissa) * Fraction(10) ** (exponent - len(frac))
    else:
        magnitude = exponent - 4 * len(frac) + 4 * len(digits)
        if magnitude > _LD_MAX_EXP + 8:
            return None
        if magnitude < -16500:
            return None
        value = Fraction(mantissa) * Fraction(2) ** (exponent - 4 * len(frac))
    rounded = _round_ld(-value if sign == b"-" else value)
    if isinstance(rounded, str) or rounded == 0:
        return None  # ERANGE: overflow, or underflow to zero
    return rounded


def format_long_double(x: Fraction) -> bytes:
    """``x`` as Redis's ld2string(LD_STR_HUMAN) prints it: ``"%.17Lf"``,
    trailing zeros and a trailing point removed, "-0" as "0"."""
    sign = "-" if x < 0 else ""
    scaled = round(abs(x) * 10**17)  # printf rounds the exact binary value, ties to even
    whole, frac = divmod(scaled, 10**17)
    text = f"{_int_to_str(whole)}.{frac:017d}".rstrip("0").rstrip(".")
    if sign and text == "0":
        return b"0"
    return (sign + text).encode()


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
    if isinstance(value, str) or isinstance(incr, str):
        return SimpleError(text="ERR increment would produce NaN or Infinity")
    total = _round_ld(value + incr)
    if isinstance(total, str):
        return SimpleError(text="ERR increment would produce NaN or Infinity")
    text = format_long_double(total)
    ks.set(args[0], text, keep_ttl=True)
    return BulkString(data=text)
