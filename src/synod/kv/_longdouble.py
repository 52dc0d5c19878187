"""Redis's long double numbers (INCRBYFLOAT, HINCRBYFLOAT, blocking
timeouts), emulated exactly.

Redis reads these with ``string2ld`` (glibc ``strtold`` into an x87 80-bit
long double: a 64-bit significand) and writes them with
``ld2string(LD_STR_HUMAN)`` (``%.17Lf``, trailing zeros removed). A finite
long double is held here as an exact :class:`fractions.Fraction`, rounded to
the nearest long double after each operation, so ``0.1`` + ``0.2`` reads
``0.3`` and every digit matches the real server (the differential tests in
tests/kv/*_vs_redis.py); the infinities are ``math.inf`` / ``-math.inf``.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

__all__ = ["LongDouble", "parse_long_double", "ld_round", "ld_human"]

# A finite long double is an exact Fraction; the infinities are math.inf / -math.inf.
LongDouble = Fraction | float

_LD_SIGNIFICAND_BITS = 64
_LD_EXP_MIN = -16382  # smallest normal exponent; below it the number is subnormal
_LD_OVERFLOW = Fraction(2) ** 16384  # a rounded magnitude this large is infinite
# MAX_LONG_DOUBLE_CHARS: string2ld refuses a word this long or longer.
_LD_CHARS_MAX = 5 * 1024
_DEC_RE = re.compile(rb"([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?")
_HEX_RE = re.compile(rb"([+-]?)0[xX]([0-9a-fA-F]*)(?:\.([0-9a-fA-F]*))?(?:[pP]([+-]?[0-9]+))?")
_INF_RE = re.compile(rb"([+-]?)(?:inf|infinity)", re.IGNORECASE)


def ld_round(x: Fraction) -> LongDouble:
    """``x`` rounded to the nearest long double (ties to even); ±inf on
    overflow, 0 on underflow."""
    if x == 0:
        return Fraction(0)
    n, d = abs(x.numerator), x.denominator
    e = n.bit_length() - d.bit_length()
    if (n << max(0, -e)) < (d << max(0, e)):
        e -= 1  # now 2**e <= |x| < 2**(e+1)
    shift = max(e, _LD_EXP_MIN) - (_LD_SIGNIFICAND_BITS - 1)  # the unit in the last place is 2**shift
    num, den = (n, d << shift) if shift >= 0 else (n << -shift, d)
    q, r = divmod(num, den)
    if 2 * r > den or (2 * r == den and q & 1):
        q += 1
    magnitude = Fraction(q << shift) if shift >= 0 else Fraction(q, 1 << -shift)
    if magnitude >= _LD_OVERFLOW:
        return math.inf if x > 0 else -math.inf
    return magnitude if x > 0 else -magnitude


def parse_long_double(word: bytes) -> LongDouble | None:
    """``word`` as Redis's string2ld reads it (glibc ``strtold``: decimal,
    hex ``0x1.8p3``, ``inf``/``infinity``; no spaces around, no NaN, no
    overflow to infinity or underflow to zero; shorter than 5120 bytes), or
    None. string2ld checks that the parse ends at the word's length, so a
    NUL byte inside the word refuses it."""
    if not word or len(word) >= _LD_CHARS_MAX or b"\0" in word:
        return None
    if word[:1].isspace():
        return None
    if m := _INF_RE.fullmatch(word):
        return -math.inf if m.group(1) == b"-" else math.inf
    if m := _HEX_RE.fullmatch(word):
        sign, whole, frac, exp = m.groups()
        frac = frac or b""
        if not whole and not frac:
            return None
        mantissa = int((whole + frac) or b"0", 16)
        exp2 = _exponent(exp) - 4 * len(frac)
        bits = mantissa.bit_length() + exp2
        value = _scaled(mantissa, exp2, 2, bits > 16400, bits < -16500)
    elif m := _DEC_RE.fullmatch(word):
        sign, whole, frac, exp = m.groups()
        frac = frac or b""
        if not whole and not frac:
            return None
        digits = (whole + frac).lstrip(b"0")
        mantissa = _decimal_int(digits)
        exp10 = _exponent(exp) - len(frac)
        size = len(digits) + exp10  # about log10 of the value
        value = _scaled(mantissa, exp10, 10, size > 4940, size < -4960)
    else:
        return None
    if value is None:
        return None
    return -value if sign == b"-" else value


def _exponent(word: bytes | None) -> int:
    """An exponent's digits as an int, clamped to +-10**9 (beyond, any
    non-zero value overflows or underflows anyway)."""
    if not word:
        return 0
    digits = word.lstrip(b"+-").lstrip(b"0")
    value = int(digits[:10] or b"0") if len(digits) <= 9 else 10**9
    return -value if word[:1] == b"-" else value


def _decimal_int(digits: bytes) -> int:
    """Decimal digits as an int, in chunks (int() refuses over 4300 digits)."""
    value = 0
    for i in range(0, len(digits), 1000):
        chunk = digits[i:i + 1000]
        value = value * 10 ** len(chunk) + int(chunk)
    return value


def _decimal_text(n: int) -> str:
    """``str(n)`` for n >= 0 of any size (str() refuses over 4300 digits)."""
    if n < 10**4000:
        return str(n)
    high, low = divmod(n, 10**2000)
    return _decimal_text(high) + str(low).rjust(2000, "0")


def _scaled(mantissa: int, exp: int, base: int, overflows: bool, underflows: bool) -> LongDouble | None:
    """``mantissa * base**exp`` as a long double; None where strtold sets
    ERANGE and string2ld refuses (overflow, or a non-zero value rounding to 0)."""
    if mantissa == 0:
        return Fraction(0)
    if overflows or underflows:
        return None
    exact = Fraction(mantissa * base**exp) if exp >= 0 else Fraction(mantissa, base**-exp)
    value = ld_round(exact)
    if isinstance(value, float) or value == 0:
        return None
    return value


def ld_human(value: Fraction) -> bytes:
    """A finite long double as Redis's ``ld2string(LD_STR_HUMAN)`` writes it:
    ``%.17Lf`` (round half to even), trailing zeros and a trailing point
    removed, ``-0`` written ``0``."""
    n, d = abs(value.numerator), value.denominator
    q, r = divmod(n * 10**17, d)
    if 2 * r > d or (2 * r == d and q & 1):
        q += 1
    digits = _decimal_text(q).rjust(18, "0")
    text = (digits[:-17] + "." + digits[-17:]).rstrip("0").rstrip(".")
    if value < 0 and text != "0":
        text = "-" + text
    return text.encode()


