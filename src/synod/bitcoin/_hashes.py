"""The hash functions of the protocol (whitepaper section 4; BIP340's
tagged hashes). All from hashlib."""

from __future__ import annotations

import hashlib

__all__ = ["sha256", "hash256", "hash160", "ripemd160", "tagged_hash"]


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def hash256(data: bytes) -> bytes:
    """SHA-256 twice: block hashes, txids, merkle nodes, checksums (32 bytes)."""
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def ripemd160(data: bytes) -> bytes:
    return hashlib.new("ripemd160", data).digest()


def hash160(data: bytes) -> bytes:
    """RIPEMD-160 of SHA-256: public key and script hashes (20 bytes)."""
    return hashlib.new("ripemd160", hashlib.sha256(data).digest()).digest()


_TAG_PREFIXES: dict[str, bytes] = {}


def tagged_hash(tag: str, data: bytes) -> bytes:
    """BIP340: SHA-256(SHA-256(tag) || SHA-256(tag) || data)."""
    prefix = _TAG_PREFIXES.get(tag)
    if prefix is None:
        t = hashlib.sha256(tag.encode()).digest()
        prefix = _TAG_PREFIXES[tag] = t + t
    return hashlib.sha256(prefix + data).digest()
