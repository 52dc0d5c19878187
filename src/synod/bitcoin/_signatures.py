"""Signature and public-key encodings, and the curve checks behind them.

The encodings are consensus rules and are written here: strict DER
(BIP66's ``IsValidSignatureEncoding``), the lax DER parser Core verifies
every ECDSA signature through (``ecdsa_signature_parse_der_lax`` from
``contrib/lax_der_parsing.c``: it accepts what OpenSSL once accepted, so old
signatures stay valid), low S (BIP62/146), defined hash types and public-key
shapes. The curve arithmetic is libsecp256k1's, through coincurve's cffi
binding: ECDSA verification after normalizing S to the lower half (Core's
``CPubKey::Verify``), BIP340 Schnorr verification, and BIP341's check that an
output key is an internal key tweaked by a commitment.

Every function here returns a bool (or None) for bad input: nothing raises
on signature or key bytes, whatever they hold.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from coincurve._libsecp256k1 import ffi, lib
from coincurve.context import GLOBAL_CONTEXT

from synod.bitcoin._hashes import tagged_hash

__all__ = [
    "CURVE_ORDER", "is_valid_signature_encoding", "parse_der_lax", "is_low_s", "is_defined_hash_type",
    "is_compressed_or_uncompressed_pubkey", "is_compressed_pubkey", "verify_ecdsa", "verify_schnorr",
    "check_tap_tweak",
]

CURVE_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_ORDER = CURVE_ORDER // 2
_CTX = GLOBAL_CONTEXT.ctx
_PUBKEY_CACHE_MAX = 4096   # parsed keys kept; a block reuses few


def is_valid_signature_encoding(sig: bytes) -> bool:
    """BIP66 strict DER of ``sig`` = DER signature + one hash-type byte:
    ``30 len 02 lenR R 02 lenS S hashtype``, R and S positive and minimally
    encoded, 9..73 bytes in all."""
    n = len(sig)
    if n < 9 or n > 73:
        return False
    if sig[0] != 0x30 or sig[1] != n - 3:
        return False
    len_r = sig[3]
    if 5 + len_r >= n:
        return False
    len_s = sig[5 + len_r]
    if len_r + len_s + 7 != n:
        return False
    if sig[2] != 0x02 or len_r == 0 or sig[4] & 0x80:
        return False
    if len_r > 1 and sig[4] == 0 and not sig[5] & 0x80:
        return False
    if sig[len_r + 4] != 0x02 or len_s == 0 or sig[len_r + 6] & 0x80:
        return False
    return not (len_s > 1 and sig[len_r + 6] == 0 and not sig[len_r + 7] & 0x80)


def _lax_length(der: bytes, pos: int) -> tuple[int, int] | None:
    """A DER length at ``pos`` as the lax parser reads it: ``(length, next
    pos)``; long forms with leading zeros are allowed, up to 3 significant
    bytes."""
    if pos == len(der):
        return None
    first = der[pos]
    pos += 1
    if not first & 0x80:
        return first, pos
    count = first - 0x80
    if count > len(der) - pos:
        return None
    while count > 0 and der[pos] == 0:
        pos += 1
        count -= 1
    if count >= 4:
        return None
    length = int.from_bytes(der[pos:pos + count], "big")
    return length, pos + count


def _lax_integer(der: bytes, pos: int) -> tuple[bytes, int] | None:
    if pos == len(der) or der[pos] != 0x02:
        return None
    parsed = _lax_length(der, pos + 1)
    if parsed is None:
        return None
    length, pos = parsed
    if length > len(der) - pos:
        return None
    return der[pos:pos + length], pos + length


def parse_der_lax(der: bytes) -> tuple[int, int] | None:
    """``(r, s)`` from a DER-ish signature (no hash-type byte), parsed as
    Core's ``ecdsa_signature_parse_der_lax``: the sequence length is skipped
    unchecked, integer lengths may use long forms, leading zeros are dropped,
    bytes after S are ignored. None where that parser fails; ``(0, 0)`` (a
    signature that verifies nothing) where R or S does not fit below the
    curve order."""
    if len(der) < 2 or der[0] != 0x30:
        return None
    pos = 2
    if der[1] & 0x80:   # a long-form sequence length: its bytes are skipped, never read
        count = der[1] - 0x80
        if count > len(der) - pos:
            return None
        pos += count
    r_part = _lax_integer(der, pos)
    if r_part is None:
        return None
    r_bytes, pos = r_part
    s_part = _lax_integer(der, pos)
    if s_part is None:
        return None
    r_bytes = r_bytes.lstrip(b"\x00")
    s_bytes = s_part[0].lstrip(b"\x00")
    if len(r_bytes) > 32 or len(s_bytes) > 32:
        return 0, 0
    r = int.from_bytes(r_bytes, "big")
    s = int.from_bytes(s_bytes, "big")
    if r >= CURVE_ORDER or s >= CURVE_ORDER:
        return 0, 0
    return r, s


def is_low_s(der: bytes) -> bool:
    """Whether S is at most half the curve order (Core's ``CheckLowS``);
    False where the lax parser fails."""
    rs = parse_der_lax(der)
    return rs is not None and rs[1] <= _HALF_ORDER


def is_defined_hash_type(sig: bytes) -> bool:
    """The last byte, without ANYONECANPAY, is ALL, NONE or SINGLE."""
    return bool(sig) and 1 <= (sig[-1] & 0x7F) <= 3


def is_compressed_or_uncompressed_pubkey(pubkey: bytes) -> bool:
    """33 bytes from 02/03, or 65 bytes from 04 (STRICTENC; no hybrid keys)."""
    n = len(pubkey)
    if n == 33:
        return pubkey[0] in (2, 3)
    return n == 65 and pubkey[0] == 4


def is_compressed_pubkey(pubkey: bytes) -> bool:
    """33 bytes from 02/03 (BIP143's WITNESS_PUBKEYTYPE)."""
    return len(pubkey) == 33 and pubkey[0] in (2, 3)


@lru_cache(maxsize=_PUBKEY_CACHE_MAX)
def _parse_pubkey(pubkey: bytes) -> Any:
    parsed = ffi.new("secp256k1_pubkey *")
    return parsed if lib.secp256k1_ec_pubkey_parse(_CTX, parsed, pubkey, len(pubkey)) else None


@lru_cache(maxsize=_PUBKEY_CACHE_MAX)
def _parse_xonly(pubkey: bytes) -> Any:
    parsed = ffi.new("secp256k1_xonly_pubkey *")
    return parsed if lib.secp256k1_xonly_pubkey_parse(_CTX, parsed, pubkey) else None


def verify_ecdsa(der: bytes, pubkey: bytes, msg32: bytes) -> bool:
    """Whether ``der`` (lax DER, no hash-type byte) signs ``msg32`` under
    ``pubkey`` (33 or 65 bytes; hybrid 06/07 keys as libsecp256k1 parses
    them). High S is accepted: it is normalized first, as Core does."""
    if len(pubkey) not in (33, 65):
        return False
    rs = parse_der_lax(der)
    if rs is None:
        return False
    r, s = rs
    if r == 0 or s == 0:
        return False
    key = _parse_pubkey(pubkey)
    if key is None:
        return False
    if s > _HALF_ORDER:
        s = CURVE_ORDER - s
    sig = ffi.new("secp256k1_ecdsa_signature *")
    lib.secp256k1_ecdsa_signature_parse_compact(_CTX, sig, r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    return lib.secp256k1_ecdsa_verify(_CTX, sig, msg32, key) == 1


def verify_schnorr(sig64: bytes, pubkey32: bytes, msg32: bytes) -> bool:
    """BIP340: whether ``sig64`` signs ``msg32`` under the x-only key."""
    assert len(sig64) == 64
    assert len(pubkey32) == 32
    key = _parse_xonly(pubkey32)
    if key is None:
        return False
    return lib.secp256k1_schnorrsig_verify(_CTX, sig64, msg32, 32, key) == 1


def check_tap_tweak(output_key: bytes, internal_key: bytes, merkle_root: bytes, parity: int) -> bool:
    """BIP341: whether ``output_key`` (32 bytes, x-only) with Y parity
    ``parity`` is ``internal_key + H_TapTweak(internal_key || merkle_root)G``."""
    assert len(output_key) == 32
    internal = _parse_xonly(internal_key)
    if internal is None:
        return False
    tweak = tagged_hash("TapTweak", internal_key + merkle_root)
    return lib.secp256k1_xonly_pubkey_tweak_add_check(_CTX, output_key, parity, internal, tweak) == 1
