"""Generic key commands (DEL ... FLUSHALL) and expiry commands (EXPIRE ...
PEXPIRETIME), registered in :mod:`synod.kv.commands` on import.

Semantics, reply types and error texts are Redis 7.0's (src/db.c,
src/expire.c, src/util.c ``stringmatchlen``); flags and key positions are
copied from the real server's ``COMMAND INFO``. Times are the log's
``now_ms`` (see :mod:`synod.kv.store`). Also the parsing helpers the string
commands share (:func:`parse_int`, ``INT64_MIN``/``INT64_MAX``).

SCAN's cursor: keys are ordered by ``(crc32(key), key)``; a call returns
every key whose crc32 is >= the cursor, up to COUNT keys, completed with all
keys sharing the last crc32, and the next cursor is that crc32 + 1 (0 when no
key is left). A key present for the whole scan is therefore returned at
least once (exactly once unless it is deleted and re-added), whatever is
added or removed between calls, as Redis's reverse-binary cursor promises
(https://redis.io/docs/latest/commands/scan/#scan-guarantees).
"""

from __future__ import annotations

import collections
import re
from typing import TYPE_CHECKING

from synod.core.rng import seeded_rng
from synod.kv.commands import DENYOOM, FAST, READONLY, WRITE, command
from synod.kv.replies import (
    NIL,
    NO_SUCH_KEY,
    NOT_INTEGER,
    OK,
    SYNTAX,
    Array,
    BulkString,
    Integer,
    Reply,
    SimpleError,
    SimpleString,
)

if TYPE_CHECKING:
    from synod.kv.store import KeySpace, Value

__all__ = ["parse_int", "type_name", "glob_match", "INT64_MIN", "INT64_MAX", "expire_time_error"]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_INT_RE = re.compile(rb"0|-?[1-9][0-9]*")
# strtoul as parseScanCursorOrReply uses it: optional sign, digits (none at all parses as 0 when the word is empty).
_CURSOR_RE = re.compile(rb"[+-]?[0-9]+|")


def parse_int(word: bytes) -> int | None:
    """``word`` as Redis's string2ll reads a signed 64-bit integer (no
    spaces, no '+', no leading zeros, no "-0"), or None."""
    if len(word) > 20 or _INT_RE.fullmatch(word) is None:
        return None
    value = int(word)
    return value if INT64_MIN <= value <= INT64_MAX else None


def type_name(value: Value) -> str:
    """TYPE's word for a value: ``string``, ``list`` or ``hash``."""
    if isinstance(value, bytes):
        return "string"
    if isinstance(value, collections.deque):
        return "list"
    return "hash"


def expire_time_error(name: str) -> SimpleError:
    """``ERR invalid expire time in 'set' command`` (addReplyErrorExpireTime)."""
    return SimpleError(text=f"ERR invalid expire time in '{name}' command")


def _c_str(word: bytes) -> bytes:
    """What C sees of an argument: everything before the first NUL."""
    return word.split(b"\0", 1)[0]


def _text(word: bytes) -> str:
    return _c_str(word).decode("utf-8", errors="surrogateescape")


# ---- glob patterns (Redis's stringmatchlen, src/util.c) ----

_STAR = ("*",)
_ANY = ("?",)


def _signed(b: int) -> int:
    """A byte as C's (signed) char, as stringmatchlen compares them."""
    return b - 256 if b >= 128 else b


def _glob_tokens(pattern: bytes) -> list[tuple]:
    """``pattern`` cut into tokens that each match one byte (``("?",)``,
    ``("=", c)``, ``("[", negate, ranges)``) or any run (``("*",)``),
    reading the pattern exactly as stringmatchlen does, including its edge
    cases (a trailing backslash is literal, an unterminated ``[`` set ends
    at the pattern's end, ``[a-]`` is a range up to ``]``)."""
    p = [_signed(b) for b in pattern] + [0]  # the sds's NUL terminator, which the C code reads
    i, n = 0, len(pattern)
    tokens: list[tuple] = []
    star, qmark, lbr, rbr, bslash, caret, dash = (ord(c) for c in "*?[]\\^-")
    while n:
        c = p[i]
        if c == star:
            while n and p[i + 1] == star:
                i += 1
                n -= 1
            tokens.append(_STAR)
        elif c == qmark:
            tokens.append(_ANY)
        elif c == lbr:
            i += 1
            n -= 1
            negate = p[i] == caret
            if negate:
                i += 1
                n -= 1
            ranges: list[tuple[int, int]] = []
            while True:
                if p[i] == bslash and n >= 2:
                    i += 1
                    n -= 1
                    ranges.append((p[i], p[i]))
                elif p[i] == rbr:
                    break
                elif n == 0:
                    i -= 1
                    n += 1
                    break
                elif n >= 3 and p[i + 1] == dash:
                    lo, hi = p[i], p[i + 2]
                    ranges.append((min(lo, hi), max(lo, hi)))
                    i += 2
                    n -= 2
                else:
                    ranges.append((p[i], p[i]))
                i += 1
                n -= 1
            tokens.append(("[", negate, tuple(ranges)))
        else:
            if c == bslash and n >= 2:
                i += 1
                n -= 1
            tokens.append(("=", p[i]))
        i += 1
        n -= 1
    return tokens


def _token_matches(token: tuple, c: int) -> bool:
    kind = token[0]
    if kind == "=":
        return token[1] == c
    if kind == "?":
        return True
    hit = any(lo <= c <= hi for lo, hi in token[2])
    return hit != token[1]


def glob_match(pattern: bytes, key: bytes) -> bool:
    """``key`` matches the glob ``pattern`` as Redis's stringmatchlen
    decides (https://redis.io/docs/latest/commands/keys/): ``*``, ``?``,
    ``[abc]``, ``[^a]``, ``[a-z]``, ``\\`` escapes. An empty key matches only
    the empty pattern (KEYS ``*`` lists it through a shortcut). Iterative
    (backtracking to the last ``*``), so no pattern can exhaust the stack."""
    return _match_tokens(_glob_tokens(pattern), key)


def _match_tokens(tokens: list[tuple], key: bytes) -> bool:
    if not key:
        return not tokens
    s = [_signed(b) for b in key]
    ti = si = 0
    star_t, star_s = -1, 0
    while si < len(s):
        if ti < len(tokens) and tokens[ti] is _STAR:
            star_t, star_s = ti, si
            ti += 1
        elif ti < len(tokens) and _token_matches(tokens[ti], s[si]):
            ti += 1
            si += 1
        elif star_t >= 0:
            star_s += 1
            si = star_s
            ti = star_t + 1
        else:
            return False
    while ti < len(tokens) and tokens[ti] is _STAR:
        ti += 1
    return ti == len(tokens)


# ---- generic key commands ----

@command("del", -2, (WRITE,), 1, -1, 1, summary="Deletes one or more keys.")
def _del(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """DEL key [key ...] -> Integer (keys removed). https://redis.io/docs/latest/commands/del/"""
    return Integer(value=sum(1 for key in args if ks.get(key, now_ms) is not None and ks.delete(key)))


@command("unlink", -2, (WRITE, FAST), 1, -1, 1,
         summary="Asynchronously deletes one or more keys.")
def _unlink(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """UNLINK key [key ...]: DEL (there is no background freeing here). https://redis.io/docs/latest/commands/unlink/"""
    return _del(ks, args, now_ms)


@command("exists", -2, (READONLY, FAST), 1, -1, 1, summary="Determines whether one or more keys exist.")
def _exists(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """EXISTS key [key ...] -> Integer, a key named twice counted twice. https://redis.io/docs/latest/commands/exists/"""
    return Integer(value=sum(1 for key in args if ks.get(key, now_ms) is not None))


@command("type", 2, (READONLY, FAST), 1, 1, 1, summary="Determines the type of value stored at a key.")
def _type(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """TYPE key -> SimpleString string|list|hash|none. https://redis.io/docs/latest/commands/type/"""
    value = ks.get(args[0], now_ms)
    return SimpleString(text="none" if value is None else type_name(value))


@command("keys", 2, (READONLY,), summary="Returns all key names that match a pattern.")
def _keys(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """KEYS pattern -> Array of BulkString, in insertion order. https://redis.io/docs/latest/commands/keys/"""
    pattern = args[0]
    live = ks.live_keys(now_ms)
    if pattern != b"*":
        tokens = _glob_tokens(pattern)
        live = [k for k in live if _match_tokens(tokens, k)]
    return Array(items=tuple(BulkString(data=k) for k in live))


_SCAN_CURSOR_MAX = 2**64 - 1


def _parse_cursor(word: bytes) -> int | None:
    """SCAN's cursor as strtoul reads it (a leading '-' wraps around), or None."""
    word = _c_str(word)
    if _CURSOR_RE.fullmatch(word) is None:
        return None
    if not word:
        return 0
    value = int(word)
    if abs(value) > _SCAN_CURSOR_MAX:
        return None
    return value % (_SCAN_CURSOR_MAX + 1)


@command("scan", -2, (READONLY,), summary="Iterates over the key names in the database.")
def _scan(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """SCAN cursor [MATCH pattern] [COUNT count] [TYPE type] -> Array of
    (BulkString next cursor, Array of keys); see the module docstring for
    the cursor. Errors: ``ERR invalid cursor``, ``ERR syntax error`` (an
    unknown option, COUNT < 1), ``ERR value is not an integer or out of
    range``. https://redis.io/docs/latest/commands/scan/"""
    cursor = _parse_cursor(args[0])
    if cursor is None:
        return SimpleError(text="ERR invalid cursor")
    count, pattern, type_filter = 10, None, None
    i = 1
    while i < len(args):
        opt, more = _c_str(args[i]).lower(), len(args) - i - 1
        if opt == b"count" and more >= 1:
            count = parse_int(args[i + 1])
            if count is None:
                return NOT_INTEGER
            if count < 1:
                return SYNTAX
        elif opt == b"match" and more >= 1:
            pattern = None if args[i + 1] == b"*" else args[i + 1]
        elif opt == b"type" and more >= 1:
            type_filter = _c_str(args[i + 1]).decode("latin-1").lower()
        else:
            return SYNTAX
        i += 2
    out, next_cursor = ks.scan(cursor, count, now_ms)
    if pattern is not None:
        tokens = _glob_tokens(pattern)
        out = [k for k in out if _match_tokens(tokens, k)]
    if type_filter is not None:
        out = [k for k in out if type_name(ks.get(k, now_ms)) == type_filter]  # type: ignore[arg-type]
    return Array(items=(BulkString(data=str(next_cursor).encode()), Array(items=tuple(BulkString(data=k) for k in out))))


def _rename(ks: KeySpace, args: tuple[bytes, ...], now_ms: int, nx: bool) -> Reply:
    src, dst = args
    value = ks.get(src, now_ms)
    if value is None:
        return NO_SUCH_KEY
    if src == dst:
        return Integer(value=0) if nx else OK
    if ks.get(dst, now_ms) is not None:
        if nx:
            return Integer(value=0)
        ks.delete(dst)
    at = ks.expire_at_ms(src)
    ks.delete(src)
    ks.set(dst, value)
    if at is not None:
        ks.set_expire_at_ms(dst, at)
    return Integer(value=1) if nx else OK


@command("rename", 3, (WRITE,), 1, 2, 1, summary="Renames a key and overwrites the destination.")
def _rename_cmd(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """RENAME key newkey -> OK (the TTL moves with the value); ``ERR no such
    key``; same key: OK if it exists. https://redis.io/docs/latest/commands/rename/"""
    return _rename(ks, args, now_ms, nx=False)


@command("renamenx", 3, (WRITE, FAST), 1, 2, 1, summary="Renames a key only when the target key name doesn't exist.")
def _renamenx(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """RENAMENX key newkey -> Integer 1 renamed, 0 newkey exists (or is
    key itself); ``ERR no such key``. https://redis.io/docs/latest/commands/renamenx/"""
    return _rename(ks, args, now_ms, nx=True)


@command("randomkey", 1, (READONLY,), summary="Returns a random key name from the database.")
def _randomkey(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """RANDOMKEY -> BulkString or nil. The choice is a function of the
    state (seeded by ``version_clock``), so every replica picks the same key.
    https://redis.io/docs/latest/commands/randomkey/"""
    live = ks.live_keys(now_ms)
    if not live:
        return NIL
    return BulkString(data=live[seeded_rng(ks.version_clock).randrange(len(live))])


def _copy_value(value: Value) -> Value:
    if isinstance(value, bytes):
        return value
    if isinstance(value, collections.deque):
        return collections.deque(value)
    return dict(value)


@command("copy", -3, (WRITE, DENYOOM), 1, 2, 1, summary="Copies the value of a key to a new key.")
def _copy(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """COPY source destination [DB 0] [REPLACE] -> Integer 1 copied, 0 not
    (no source, or destination exists without REPLACE); the TTL is copied.
    Only DB 0 exists: another index is ``ERR DB index is out of range``.
    https://redis.io/docs/latest/commands/copy/"""
    src, dst = args[0], args[1]
    replace = False
    i = 2
    while i < len(args):
        opt = _c_str(args[i]).lower()
        if opt == b"replace":
            replace = True
        elif opt == b"db" and i + 1 < len(args):
            db = parse_int(args[i + 1])
            if db is None:
                return NOT_INTEGER
            if not -(2**31) <= db < 2**31:
                return SimpleError(text="ERR value is out of range, value must between -2147483648 and 2147483647")
            if db != 0:
                return SimpleError(text="ERR DB index is out of range")
            i += 1
        else:
            return SYNTAX
        i += 1
    if src == dst:
        return SimpleError(text="ERR source and destination objects are the same")
    value = ks.get(src, now_ms)
    if value is None:
        return Integer(value=0)
    if ks.get(dst, now_ms) is not None:
        if not replace:
            return Integer(value=0)
        ks.delete(dst)
    at = ks.expire_at_ms(src)
    ks.set(dst, _copy_value(value))
    if at is not None:
        ks.set_expire_at_ms(dst, at)
    return Integer(value=1)


@command("dbsize", 1, (READONLY, FAST), summary="Returns the number of keys in the database.")
def _dbsize(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """DBSIZE -> Integer. https://redis.io/docs/latest/commands/dbsize/"""
    return Integer(value=ks.dbsize(now_ms))


def _flush(ks: KeySpace, args: tuple[bytes, ...]) -> Reply:
    if len(args) > 1 or (args and _c_str(args[0]).lower() not in (b"sync", b"async")):
        return SYNTAX
    ks.flush()
    return OK


@command("flushdb", -1, (WRITE,), summary="Removes all keys from the current database.")
def _flushdb(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """FLUSHDB [ASYNC|SYNC] -> OK. https://redis.io/docs/latest/commands/flushdb/"""
    return _flush(ks, args)


@command("flushall", -1, (WRITE,), summary="Removes all keys from all databases.")
def _flushall(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """FLUSHALL [ASYNC|SYNC] -> OK (one database: as FLUSHDB). https://redis.io/docs/latest/commands/flushall/"""
    return _flush(ks, args)


# ---- expiry ----

def _expire(ks: KeySpace, args: tuple[bytes, ...], now_ms: int, name: str, unit_ms: int, base_ms: int) -> Reply:
    """expireGenericCommand (src/expire.c): options, then the time, then the key."""
    nx = xx = gt = lt = False
    for word in args[2:]:
        opt = _c_str(word).lower()
        if opt == b"nx":
            nx = True
        elif opt == b"xx":
            xx = True
        elif opt == b"gt":
            gt = True
        elif opt == b"lt":
            lt = True
        else:
            return SimpleError(text=f"ERR Unsupported option {_text(word)}")
    if nx and (xx or gt or lt):
        return SimpleError(text="ERR NX and XX, GT or LT options at the same time are not compatible")
    if gt and lt:
        return SimpleError(text="ERR GT and LT options at the same time are not compatible")
    when = parse_int(args[1])
    if when is None:
        return NOT_INTEGER
    if unit_ms == 1000:
        if not INT64_MIN // 1000 + 1 <= when <= INT64_MAX // 1000:
            return expire_time_error(name)
        when *= 1000
    if when > INT64_MAX - base_ms:
        return expire_time_error(name)
    when += base_ms
    key = args[0]
    if ks.get(key, now_ms) is None:
        return Integer(value=0)
    current = ks.expire_at_ms(key)
    if nx and current is not None:
        return Integer(value=0)
    if xx and current is None:
        return Integer(value=0)
    if gt and (current is None or when <= current):
        return Integer(value=0)
    if lt and current is not None and when >= current:
        return Integer(value=0)
    if when <= now_ms:
        ks.delete(key)
    else:
        ks.set_expire_at_ms(key, when)
    return Integer(value=1)


@command("expire", -3, (WRITE, FAST), 1, 1, 1, summary="Sets the expiration time of a key in seconds.")
def _expire_cmd(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """EXPIRE key seconds [NX|XX|GT|LT] -> Integer 1 set (or the key
    deleted, for a time not in the future), 0 no key or a condition failed.
    https://redis.io/docs/latest/commands/expire/"""
    return _expire(ks, args, now_ms, "expire", 1000, now_ms)


@command("pexpire", -3, (WRITE, FAST), 1, 1, 1, summary="Sets the expiration time of a key in milliseconds.")
def _pexpire(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """PEXPIRE key milliseconds [NX|XX|GT|LT]: EXPIRE in ms. https://redis.io/docs/latest/commands/pexpire/"""
    return _expire(ks, args, now_ms, "pexpire", 1, now_ms)


@command("expireat", -3, (WRITE, FAST), 1, 1, 1,
         summary="Sets the expiration time of a key to a Unix timestamp.")
def _expireat(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """EXPIREAT key unix-time-seconds [NX|XX|GT|LT]. https://redis.io/docs/latest/commands/expireat/"""
    return _expire(ks, args, now_ms, "expireat", 1000, 0)


@command("pexpireat", -3, (WRITE, FAST), 1, 1, 1,
         summary="Sets the expiration time of a key to a Unix milliseconds timestamp.")
def _pexpireat(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """PEXPIREAT key unix-time-milliseconds [NX|XX|GT|LT]. https://redis.io/docs/latest/commands/pexpireat/"""
    return _expire(ks, args, now_ms, "pexpireat", 1, 0)


def _ttl(ks: KeySpace, key: bytes, now_ms: int, in_ms: bool, absolute: bool) -> Reply:
    if ks.get(key, now_ms) is None:
        return Integer(value=-2)
    at = ks.expire_at_ms(key)
    if at is None:
        return Integer(value=-1)
    ms = at if absolute else max(0, at - now_ms)
    return Integer(value=ms if in_ms else (ms + 500) // 1000)


@command("ttl", 2, (READONLY, FAST), 1, 1, 1, summary="Returns the expiration time in seconds of a key.")
def _ttl_cmd(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """TTL key -> Integer seconds left (rounded), -1 no TTL, -2 no key. https://redis.io/docs/latest/commands/ttl/"""
    return _ttl(ks, args[0], now_ms, in_ms=False, absolute=False)


@command("pttl", 2, (READONLY, FAST), 1, 1, 1, summary="Returns the expiration time in milliseconds of a key.")
def _pttl(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """PTTL key -> Integer ms left, -1 no TTL, -2 no key. https://redis.io/docs/latest/commands/pttl/"""
    return _ttl(ks, args[0], now_ms, in_ms=True, absolute=False)


@command("expiretime", 2, (READONLY, FAST), 1, 1, 1,
         summary="Returns the expiration time of a key as a Unix timestamp.")
def _expiretime(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """EXPIRETIME key -> Integer unix seconds (rounded), -1, -2. https://redis.io/docs/latest/commands/expiretime/"""
    return _ttl(ks, args[0], now_ms, in_ms=False, absolute=True)


@command("pexpiretime", 2, (READONLY, FAST), 1, 1, 1,
         summary="Returns the expiration time of a key as a Unix milliseconds timestamp.")
def _pexpiretime(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """PEXPIRETIME key -> Integer unix ms, -1, -2. https://redis.io/docs/latest/commands/pexpiretime/"""
    return _ttl(ks, args[0], now_ms, in_ms=True, absolute=True)


@command("persist", 2, (WRITE, FAST), 1, 1, 1, summary="Removes the expiration time of a key.")
def _persist(ks: KeySpace, args: tuple[bytes, ...], now_ms: int) -> Reply:
    """PERSIST key -> Integer 1 TTL removed, 0 none or no key. https://redis.io/docs/latest/commands/persist/"""
    if ks.get(args[0], now_ms) is None:
        return Integer(value=0)
    return Integer(value=1 if ks.persist(args[0]) else 0)
