"""memcached's text-level helpers, as 1.6.18 has them: the command tokenizer
(``proto_text.c`` ``tokenize_command``), the number readers (``util.c``
``safe_strtoul`` and friends, quirks included) and the key base64 codec
(``base64.c``). Pure functions of bytes.

Quirks kept on purpose, so a line gets the same answer as from memcached on
64-bit Linux: numbers may have leading whitespace and a sign, and may be
followed by whitespace and anything (``"5\\tx"`` reads as 5); a 32-bit field
is read as a 64-bit long and then truncated (flags ``4294967297`` store 1,
an exptime ``4294967296`` is 0); an unsigned field refuses a minus sign only
when the value read is at or above 2**63 (``"-1"`` is refused, ``"-0"`` is 0).
"""

from __future__ import annotations

import base64

__all__ = ["tokenize", "safe_strtoul", "safe_strtoull", "safe_strtol", "b64_decode_key", "b64_encode_key"]

_ISSPACE = frozenset(b" \t\n\v\f\r")
_U64 = 1 << 64
_I64_MAX = (1 << 63) - 1


def tokenize(line: bytes, tokens_max: int) -> tuple[list[bytes], bytes | None]:
    """``line`` split at spaces (only ``b" "``) into at most ``tokens_max - 1``
    words, as ``tokenize_command``; returns (words, rest), ``rest`` being the
    unsplit remainder after the last word when the limit stopped the split
    (None when the whole line was read). memcached's ``ntokens`` is
    ``len(words) + 1`` (its terminal token)."""
    if b"  " not in line and line.count(b" ") < tokens_max - 1:
        return [w for w in line.split(b" ") if w], None
    words: list[bytes] = []
    n = len(line)
    s = 0
    for e in range(n):
        if line[e] == 32:
            if s != e:
                words.append(line[s:e])
                if len(words) == tokens_max - 1:
                    return words, (line[e + 1:] if e + 1 < n else None)
            s = e + 1
    if s != n:
        words.append(line[s:])
    return words, None


def _strto(s: bytes) -> tuple[int, int, bool] | None:
    """C's strto*l base 10: (magnitude, end index, negative), or None when
    no digits follow the optional whitespace and sign."""
    i = 0
    n = len(s)
    while i < n and s[i] in _ISSPACE:
        i += 1
    neg = False
    if i < n and s[i] in (43, 45):  # '+', '-'
        neg = s[i] == 45
        i += 1
    j = i
    while j < n and 48 <= s[j] <= 57:
        j += 1
    if j == i:
        return None
    return int(s[i:j]), j, neg


def _tail_ok(s: bytes, end: int) -> bool:
    """util.c: the number must end the string or be followed by whitespace."""
    return end == len(s) or s[end] in _ISSPACE


def safe_strtoull(s: bytes) -> int | None:
    """An unsigned 64-bit number as ``safe_strtoull`` reads it, or None."""
    r = _strto(s)
    if r is None:
        return None
    mag, end, neg = r
    if mag >= _U64 or not _tail_ok(s, end):
        return None  # ERANGE, or trailing garbage
    v = (-mag) % _U64 if neg else mag
    if v >= 1 << 63 and 45 in s:
        return None  # a minus sign on a value that reads as negative
    return v


def safe_strtoul(s: bytes) -> int | None:
    """An unsigned 32-bit number as ``safe_strtoul`` reads it on LP64 (an
    unsigned long, then truncated to 32 bits), or None."""
    v = safe_strtoull(s)
    return None if v is None else v & 0xFFFFFFFF


def safe_strtol(s: bytes) -> int | None:
    """A signed 32-bit number as ``safe_strtol`` reads it on LP64 (a long,
    then truncated to int32), or None."""
    r = _strto(s)
    if r is None:
        return None
    mag, end, neg = r
    v = -mag if neg else mag
    if v > _I64_MAX or v < -_I64_MAX - 1 or not _tail_ok(s, end):
        return None
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


# base64.c's decode table: the 64 symbols and '=' (as 0) count; every other
# byte is skipped.
_B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_DTABLE = {c: i for i, c in enumerate(_B64)} | {61: 0}


def b64_decode_key(src: bytes) -> bytes | None:
    """A base64 key decoded as memcached's ``base64_decode`` does (bytes
    outside the alphabet skipped, decoding stopping at the first padded
    block), or None where it returns 0 (nothing decodable, a count of
    symbols not a multiple of 4, bad padding, or an empty result)."""
    symbols = [c for c in src if c in _DTABLE]
    if not symbols or len(symbols) % 4:
        return None
    out = bytearray()
    pad = 0
    for k in range(0, len(symbols), 4):
        block = symbols[k:k + 4]
        pad = block.count(61)
        a, b, c, d = (_DTABLE[x] for x in block)
        out += bytes(((a << 2 | b >> 4) & 255, (b << 4 | c >> 2) & 255, (c << 6 | d) & 255))
        if pad:
            if pad > 2:
                return None
            del out[-pad:]
            break
    return bytes(out) or None


def b64_encode_key(key: bytes) -> bytes:
    """A binary key as memcached returns it (standard base64 with padding)."""
    return base64.b64encode(key)

