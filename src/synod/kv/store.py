"""The keyspace: the deterministic state machine every KV replica applies.

Theory of operation. Raft (Ongaro & Ousterhout 2014, §5.3, §7) delivers the
same log to every replica; each replica applies it to a :class:`KeySpace`.
Replicas stay equal only if applying is a pure function of (state, entry),
so nothing here reads a clock, a global random generator or anything whose
order depends on ``str`` hashing (``bytes`` keys in a ``dict`` keep insertion
order, the same on every replica).

Time. Each log entry carries ``now_ms``, the leader's clock when it
proposed the entry. :meth:`KeySpace.execute` first advances
``applied_time_ms = max(applied_time_ms, now_ms)`` (so the state machine's
clock never goes back across a leader change) and then deletes every key
whose expiry time is ``<= applied_time_ms``, in (expire_at, key) order from
a heap with lazy invalidation. That purge is the only place where expiry
changes state, so every replica deletes the same keys at the same entry and
bumps the same versions. :meth:`KeySpace.get` and :meth:`KeySpace.read`
never mutate: a read is answered on one replica only (the leader, under its
lease or after a read index), and a mutation there would make the replicas'
versions diverge.

Values. A string is ``bytes``, a list ``collections.deque[bytes]``, a hash
``dict[bytes, bytes]``. The command modules (:mod:`synod.kv._strings`,
:mod:`synod.kv._keys`, :mod:`synod.kv._lists`, :mod:`synod.kv._hashes`)
register handlers in :mod:`synod.kv.commands`; ``execute`` dispatches to
them as ``handler(keyspace, args, now_ms)``.

Versions (for WATCH, https://redis.io/docs/latest/develop/interact/transactions/).
A keyspace-wide counter ``version_clock`` increases on every write; a key's
version is the counter's value at its last write, delete or expiry, so it
changes whenever the key does. Deleted keys keep their version as a
tombstone, so a WATCH of a key created and deleted again still sees a
change; when tombstones exceed ``TOMBSTONES_MAX`` they are dropped and a
missing key's version becomes ``version_floor`` (the counter at that
moment), which may abort a transaction Redis would have run (safe: the
client retries), never the reverse.

Snapshots (Raft §7) are a :class:`KeySpaceSnapshot` encoded with the
project codec (msgpack through msgspec): every key in insertion order with
its type, value, expiry and version, plus the clocks.

Simplifications: one database (DB 0); no eviction policy (a write that
would exceed a limit is refused with Redis's error instead).
"""

from __future__ import annotations

import collections
import heapq
import zlib
from typing import Any

from synod.core.codec import Message, decode, encode
from synod.core.errors import RemoteProtocolError
from synod.kv import constants as C
from synod.kv.commands import BLOCKING, CONNECTION, READONLY, WOULD_BLOCK, arity_ok, lookup
from synod.kv.replies import NIL, NIL_ARRAY, Array, Reply, SimpleError, unknown_command, wrong_arity

__all__ = [
    "KeySpace", "KeySpaceSnapshot", "StringRecord", "ListRecord", "HashRecord", "Value",
    "STRING_SIZE_BYTES_MAX", "TOMBSTONES_MAX",
]

# Redis's proto-max-bulk-len: the largest string value (SETRANGE, APPEND, SET...), as for a request's bulk.
STRING_SIZE_BYTES_MAX = C.BULK_BYTES_MAX
# Versions of deleted keys kept for WATCH before they are folded into version_floor.
TOMBSTONES_MAX = 100_000

# SCAN's index buckets keys by the top bits of crc32(key): 2**12 buckets.
_SCAN_BUCKET_SHIFT = 20
_SCAN_BUCKETS = 1 << (32 - _SCAN_BUCKET_SHIFT)

Value = bytes | collections.deque | dict

# Blocking commands whose timeout reply is a nil bulk string rather than a nil array.
_NIL_BULK_ON_TIMEOUT = frozenset({"blmove", "brpoplpush"})


class StringRecord(Message, tag="kv.StringRecord"):
    """One string key in a snapshot; ``expire_at_ms`` None: no TTL."""

    key: bytes
    version: int
    expire_at_ms: int | None
    value: bytes


class ListRecord(Message, tag="kv.ListRecord"):
    """One list key in a snapshot, head first."""

    key: bytes
    version: int
    expire_at_ms: int | None
    items: tuple[bytes, ...]


class HashRecord(Message, tag="kv.HashRecord"):
    """One hash key in a snapshot, fields in insertion order."""

    key: bytes
    version: int
    expire_at_ms: int | None
    pairs: tuple[tuple[bytes, bytes], ...]


class KeySpaceSnapshot(Message, tag="kv.KeySpaceSnapshot"):
    """The whole keyspace (Raft §7): ``records`` in key insertion order,
    ``tombstones`` the (key, version) of deleted keys still remembered."""

    applied_time_ms: int
    version_clock: int
    version_floor: int
    records: tuple[StringRecord | ListRecord | HashRecord, ...]
    tombstones: tuple[tuple[bytes, int], ...]


class KeySpace:
    """The data of one replica. See the module docstring for time, expiry
    and versions; the command semantics are Redis 7's."""

    def __init__(self, *, string_size_bytes_max: int = STRING_SIZE_BYTES_MAX) -> None:
        """``string_size_bytes_max``: the largest string value (bytes), Redis's proto-max-bulk-len."""
        self.string_size_bytes_max = string_size_bytes_max
        self._clear()

    def _clear(self) -> None:
        """The empty state at time 0 (a new replica, or before a restore)."""
        self._data: dict[bytes, Value] = {}
        # key -> absolute expiry time (ms, the log's clock). Invariant: keys(_expires) ⊆ keys(_data).
        self._expires: dict[bytes, int] = {}
        # (expire_at_ms, key), possibly stale: an entry is live iff _expires.get(key) == expire_at_ms.
        self._expiry_heap: list[tuple[int, bytes]] = []
        # key -> version, for live keys and tombstones. Invariant: keys(_data) ⊆ keys(_versions).
        self._versions: dict[bytes, int] = {}
        # SCAN's index: crc32(key) >> _SCAN_BUCKET_SHIFT -> keys. Invariant: the union of the buckets == keys(_data).
        self._scan_buckets: dict[int, set[bytes]] = {}
        self.version_clock = 0
        self.version_floor = 0
        # Invariant: never decreases.
        self.applied_time_ms = 0

    # ---- data access (the API the command modules use) ----

    def get(self, key: bytes, now_ms: int) -> Value | None:
        """The live value of ``key`` at ``now_ms`` (ms): ``bytes`` (string),
        ``deque[bytes]`` (list) or ``dict[bytes, bytes]`` (hash); None if
        missing or expired (expiry time <= now_ms). Never mutates."""
        value = self._data.get(key)
        if value is None:
            return None
        at = self._expires.get(key)
        if at is not None and at <= now_ms:
            return None
        return value

    def set(self, key: bytes, value: Value, *, keep_ttl: bool = False) -> None:
        """Store ``value`` under ``key`` (a new key goes last in iteration
        order); clears the TTL unless ``keep_ttl``; bumps the version."""
        assert isinstance(value, (bytes, collections.deque, dict)), type(value)
        if key not in self._data:
            self._scan_buckets.setdefault(zlib.crc32(key) >> _SCAN_BUCKET_SHIFT, set()).add(key)
        self._data[key] = value
        if not keep_ttl:
            self._expires.pop(key, None)
        self._bump(key)

    def delete(self, key: bytes) -> bool:
        """Remove ``key``; True if it existed (bumping its version)."""
        if self._data.pop(key, None) is None:
            return False
        b = zlib.crc32(key) >> _SCAN_BUCKET_SHIFT
        bucket = self._scan_buckets[b]
        bucket.remove(key)
        if not bucket:
            del self._scan_buckets[b]
        self._expires.pop(key, None)
        self._bump(key)
        self._maybe_drop_tombstones()
        return True

    def touch(self, key: bytes) -> None:
        """``key``'s value (a list or hash) was mutated in place: bump its version."""
        assert key in self._data, key
        self._bump(key)

    def version(self, key: bytes) -> int:
        """The key's version for WATCH: changes whenever it is written, deleted or expires."""
        return self._versions.get(key, self.version_floor)

    def expire_at_ms(self, key: bytes) -> int | None:
        """The key's absolute expiry time in ms, or None (no TTL or no key)."""
        return self._expires.get(key)

    def set_expire_at_ms(self, key: bytes, at_ms: int) -> None:
        """Give the existing ``key`` expiry time ``at_ms`` (absolute, ms); bumps the version."""
        assert key in self._data, key
        self._expires[key] = at_ms
        heapq.heappush(self._expiry_heap, (at_ms, key))
        self._bump(key)
        if len(self._expiry_heap) > 2 * len(self._expires) + 64:
            self._expiry_heap = sorted((at, k) for k, at in self._expires.items())

    def persist(self, key: bytes) -> bool:
        """Remove ``key``'s TTL; True if it had one (then bumps the version)."""
        if self._expires.pop(key, None) is None:
            return False
        self._bump(key)
        return True

    def live_keys(self, now_ms: int) -> list[bytes]:
        """Every key alive at ``now_ms``, in insertion order."""
        exp = self._expires
        return [k for k in self._data if (at := exp.get(k)) is None or at > now_ms]

    def scan(self, cursor: int, count: int, now_ms: int) -> tuple[list[bytes], int]:
        """One SCAN step (https://redis.io/docs/latest/commands/scan/): keys
        alive at ``now_ms`` whose crc32 is >= ``cursor``, in (crc32, key)
        order, ``count`` of them (fewer if fewer remain) plus every further
        key sharing the last one's crc32; and the next cursor (0: the scan is
        over). A key present for a whole scan is returned at least once."""
        assert count >= 1, count
        out: list[tuple[int, bytes]] = []
        b, exhausted = cursor >> _SCAN_BUCKET_SHIFT, True
        while b < _SCAN_BUCKETS:
            bucket = self._scan_buckets.get(b)
            b += 1
            if bucket:
                out.extend(sorted((crc, k) for k in bucket
                                  if (crc := zlib.crc32(k)) >= cursor and self.get(k, now_ms) is not None))
                if len(out) >= count:
                    exhausted = b >= _SCAN_BUCKETS
                    break
        j = min(count, len(out))
        while 0 < j < len(out) and out[j][0] == out[j - 1][0]:
            j += 1
        if j == len(out) and exhausted:
            return [k for _, k in out], 0
        next_cursor = out[j - 1][0] + 1
        return [k for _, k in out[:j]], next_cursor if next_cursor < 1 << 32 else 0

    def dbsize(self, now_ms: int) -> int:
        """Number of keys alive at ``now_ms`` (DBSIZE, INFO keyspace ``keys``)."""
        return len(self._data) - sum(1 for at in self._expires.values() if at <= now_ms)

    def keys_count(self, now_ms: int) -> tuple[int, int]:
        """(keys, keys with a TTL) alive at ``now_ms``, for INFO keyspace."""
        expired = sum(1 for at in self._expires.values() if at <= now_ms)
        return len(self._data) - expired, len(self._expires) - expired

    def flush(self) -> None:
        """Delete every key (FLUSHDB/FLUSHALL), bumping each one's version."""
        for key in list(self._data):
            self.delete(key)

    def _bump(self, key: bytes) -> None:
        self.version_clock += 1
        if key in self._versions and key not in self._data:
            del self._versions[key]  # re-insert a revived tombstone at the end
        self._versions[key] = self.version_clock

    def _maybe_drop_tombstones(self) -> None:
        if len(self._versions) - len(self._data) <= TOMBSTONES_MAX:
            return
        self._versions = {k: self._versions[k] for k in self._data}
        self.version_floor = self.version_clock

    # ---- applying the log ----

    def _advance(self, now_ms: int) -> None:
        """Move the clock to ``now_ms`` (never back) and delete expired keys."""
        if now_ms > self.applied_time_ms:
            self.applied_time_ms = now_ms
        heap = self._expiry_heap
        while heap and heap[0][0] <= self.applied_time_ms:
            at, key = heapq.heappop(heap)
            if self._expires.get(key) == at:
                self.delete(key)

    def execute(self, args: tuple[bytes, ...], now_ms: int) -> Any:
        """Apply one command from the log, ``args[0]`` its name, at the
        leader's time ``now_ms`` (ms). Returns a :data:`Reply` or
        ``WOULD_BLOCK`` (a blocking command with nothing to take: the node
        parks the client and retries it after later writes).

        Unknown commands, wrong arity and connection-level commands come back
        as ``SimpleError`` replies, as Redis words them; nothing is raised."""
        self._advance(now_ms)
        return self._dispatch(args, self.applied_time_ms, allow_block=True)

    def read(self, args: tuple[bytes, ...]) -> Reply:
        """Answer a READONLY command from the applied state, at
        ``applied_time_ms``, without mutating anything (so the answer may
        come from one replica only). A command that is not READONLY is an
        error reply."""
        spec = lookup(args[0]) if args else None
        if spec is not None and READONLY not in spec.flags and arity_ok(spec, len(args)):
            return SimpleError(text=f"ERR '{spec.name}' is not a read-only command")
        return self._dispatch(args, self.applied_time_ms, allow_block=False)

    def execute_multi(self, commands: list[tuple[bytes, ...]], watched: list[tuple[bytes, int]],
                      now_ms: int) -> Reply:
        """MULTI ... EXEC as one log entry
        (https://redis.io/docs/latest/commands/exec/): ``NIL_ARRAY`` if a
        watched key's version differs from the (key, version) pair in
        ``watched`` (after expiring keys at ``now_ms``), else an ``Array`` of
        each command's reply. Blocking commands do not block inside it: they
        reply as on timeout."""
        self._advance(now_ms)
        for key, version in watched:
            if self.version(key) != version:
                return NIL_ARRAY
        return Array(items=tuple(self._dispatch(c, self.applied_time_ms, allow_block=False) for c in commands))

    def _dispatch(self, args: tuple[bytes, ...], now_ms: int, allow_block: bool) -> Any:
        if not args:
            return SimpleError(text="ERR empty command")
        spec = lookup(args[0])
        if spec is None:
            return unknown_command(args)
        if not arity_ok(spec, len(args)):
            return wrong_arity(spec.name)
        if spec.handler is None or CONNECTION in spec.flags:
            return SimpleError(text=f"ERR '{spec.name}' is served by the node, not the keyspace")
        reply = spec.handler(self, args[1:], now_ms)
        if reply is WOULD_BLOCK and not allow_block:
            assert BLOCKING in spec.flags, spec.name
            return NIL if spec.name in _NIL_BULK_ON_TIMEOUT else NIL_ARRAY
        return reply

    # ---- snapshots (Raft §7) ----

    def snapshot(self) -> bytes:
        """The whole keyspace as codec bytes (:class:`KeySpaceSnapshot`)."""
        records: list[StringRecord | ListRecord | HashRecord] = []
        for key, value in self._data.items():
            version, at = self._versions[key], self._expires.get(key)
            if isinstance(value, bytes):
                records.append(StringRecord(key=key, version=version, expire_at_ms=at, value=value))
            elif isinstance(value, collections.deque):
                records.append(ListRecord(key=key, version=version, expire_at_ms=at, items=tuple(value)))
            else:
                records.append(HashRecord(key=key, version=version, expire_at_ms=at,
                                          pairs=tuple(value.items())))
        tombstones = tuple((k, v) for k, v in self._versions.items() if k not in self._data)
        return encode(KeySpaceSnapshot(applied_time_ms=self.applied_time_ms, version_clock=self.version_clock,
                                       version_floor=self.version_floor, records=tuple(records),
                                       tombstones=tombstones))

    def restore(self, data: bytes) -> None:
        """Replace the whole state with a :meth:`snapshot`'s.

        Raises:
            RemoteProtocolError: ``data`` is not a valid snapshot (not
                decodable, a key twice, an empty list or hash, a version
                above ``version_clock``); the state is then unchanged.
        """
        snap = decode(data, KeySpaceSnapshot)
        _check_snapshot(snap)
        self._clear()
        self.applied_time_ms = snap.applied_time_ms
        self.version_clock = snap.version_clock
        self.version_floor = snap.version_floor
        for rec in snap.records:
            if isinstance(rec, StringRecord):
                self._data[rec.key] = rec.value
            elif isinstance(rec, ListRecord):
                self._data[rec.key] = collections.deque(rec.items)
            else:
                self._data[rec.key] = dict(rec.pairs)
            self._versions[rec.key] = rec.version
            self._scan_buckets.setdefault(zlib.crc32(rec.key) >> _SCAN_BUCKET_SHIFT, set()).add(rec.key)
            if rec.expire_at_ms is not None:
                self._expires[rec.key] = rec.expire_at_ms
        for key, version in snap.tombstones:
            self._versions[key] = version
        self._expiry_heap = sorted((at, k) for k, at in self._expires.items())


def _check_snapshot(snap: KeySpaceSnapshot) -> None:
    """The invariants a snapshot must hold before it replaces the state."""
    keys: set[bytes] = set()
    for rec in [*snap.records, *snap.tombstones]:
        key, version = (rec.key, rec.version) if isinstance(rec, Message) else rec
        if key in keys:
            raise RemoteProtocolError(f"snapshot names key {key[:64]!r} twice")
        keys.add(key)
        if not 0 < version <= snap.version_clock:
            raise RemoteProtocolError(f"snapshot key {key[:64]!r} has version {version} outside 1..{snap.version_clock}")
        if isinstance(rec, ListRecord) and not rec.items or isinstance(rec, HashRecord) and not rec.pairs:
            raise RemoteProtocolError(f"snapshot key {key[:64]!r} holds an empty list or hash")
    if not 0 <= snap.version_floor <= snap.version_clock:
        raise RemoteProtocolError(f"snapshot version_floor {snap.version_floor} outside 0..{snap.version_clock}")


# The command modules register their handlers on import.
from synod.kv import _hashes, _keys, _lists, _strings  # noqa: E402, F401
