"""Consistent hashing of keys onto the servers of a pool (Nishtala et al.
section 3: "items are distributed across the memcached servers through
consistent hashing").

We use jump consistent hash (Lamping and Veach, "A Fast, Minimal Memory,
Consistent Hash Algorithm", 2014) rather than a ketama ring:

- mcrouter's default pool hash (``ch3``, its "furc" hash) is a jump-style
  hash of a key onto a bucket index, not a ring of points;
- it moves the minimum: growing a pool from N to N+1 servers moves a
  fraction 1/(N+1) of the keys, all of them onto the new server (a ring of
  160 md5 points per server only approaches that, with a spread of a few
  percent);
- no table: O(ln N) arithmetic per key, nothing to build or keep.

Its limit is the one mcrouter lives with too: buckets are positions in the
pool's list, so a pool grows and shrinks at its end. A failed server is not
removed from the list (that would rehash every later server's keys); the
router sends its keys to the gutter pool instead (3.3).

The key's 64-bit hash is BLAKE2b (8-byte digest) of the key bytes: fixed
across processes and Python versions (unlike ``hash()``), so every router
and every run places a key on the same server.
"""

from __future__ import annotations

import hashlib

__all__ = ["key_hash", "jump_hash", "server_for"]

_U64 = 2**64 - 1
_JUMP_MULTIPLIER = 2862933555777941757  # Lamping and Veach's LCG constant


def key_hash(key: bytes, salt: bytes = b"") -> int:
    """The key's 64-bit hash (unsigned); ``salt`` gives an independent hash
    of the same key (the gutter pool uses one, so a failed server's keys
    spread over the gutter whatever server they came from)."""
    return int.from_bytes(hashlib.blake2b(key, digest_size=8, person=salt[:16]).digest(), "little")


def jump_hash(key64: int, buckets: int) -> int:
    """Jump consistent hash: the bucket in ``[0, buckets)`` of the unsigned
    64-bit ``key64`` (Lamping and Veach, Figure 1, with Python ints masked to
    64 bits).

    Raises:
        ValueError: ``buckets`` < 1.
    """
    if buckets < 1:
        raise ValueError(f"jump_hash needs at least one bucket, got {buckets}")
    b, j = -1, 0
    while j < buckets:
        b = j
        key64 = (key64 * _JUMP_MULTIPLIER + 1) & _U64
        j = int((b + 1) * ((1 << 31) / ((key64 >> 33) + 1)))
    return b


def server_for(key: bytes, servers: tuple[str, ...], salt: bytes = b"") -> int:
    """The index in ``servers`` (a pool's servers, in configured order) of
    the server that holds ``key``."""
    return jump_hash(key_hash(key, salt), len(servers))
