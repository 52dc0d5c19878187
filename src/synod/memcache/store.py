"""The item store of one cache server: memcached's items, LRU, memory limit,
expiry, cas uniques and stats, as a deterministic state machine (time is an
argument, ``now_ms``: Unix milliseconds).

Items (memcached ``items.c``, ``memcached.c`` ``do_store_item``)
    An item is a key, a value, 32-bit client flags, an exptime and a cas
    unique. Its size is memcached's ``ITEM_ntotal``
    (:func:`~synod.memcache.protocol.item_size_bytes`): the sum of the sizes
    of the linked items is the ``bytes`` stat and is kept within the memory
    limit. Every link (a store, a vivified placeholder) and every in-place
    change (incr, an invalidating md) takes the next cas unique of one
    counter, which starts at 1; a flush_all takes one too.

Expiry
    Time is kept in whole seconds, as memcached's clock: an exptime of 0
    never expires; 1 .. 30 days is relative to now; above, a Unix time; a
    negative one has already expired. An item whose exptime has come is
    gone at its next lookup (``get_expired``); flush_all marks everything
    linked before it (now, or ``delay`` seconds from now) as gone at its
    next lookup (``get_flushed``); an immediate flush frees the memory at
    once.

Eviction
    Plain LRU over all items (memcached 1.6 runs a segmented hot / warm /
    cold LRU per slab class; here one list, most recently used last): an
    item is bumped to the end when read or touched (not when a meta command
    asks ``u``); a store that does not fit evicts from the front, expired or
    flushed items first counted as ``reclaimed``, live ones as ``evictions``.
    Slab classes are not modelled (only ``me`` reports memcached's class).

Leases (Nishtala et al., section 3.2.1, through memcached 1.6's meta flags)
    ``mg <key> N<ttl>`` on a miss links an empty placeholder and answers
    ``W`` (this client won the right to fill the key) with the placeholder's
    cas unique: that cas is the lease token. Other readers see the
    placeholder with ``Z`` (a token was already given: wait and retry). The
    winner's ``ms <key> C<token>`` succeeds only if nothing changed the item
    since: a delete removes it (``NF``), an invalidating ``md I`` marks it
    stale and gives it a new cas (``EX``). A stale item (``X``) is still
    served, so readers may use the stale value while one winner refills it
    (3.2.1 "stale values"); ``ms ... C<old token> I`` stores a value that
    stays marked stale. One token per key per lease interval: a token given
    more than ``lease_interval_ms`` ago is given again to the next reader
    (memcached waits for the placeholder's TTL instead; 0 turns this off).

Hold-off (Nishtala et al. 4.3, cold-cluster warmup; off by default, as
memcached 1.6 has no such thing)
    With ``hold_off_ms`` > 0, every delete of a key (found or not, text or
    meta) holds off ``add``s of that key for ``hold_off_ms``: they are
    refused ``NOT_STORED`` (``NS``), as memcached's old ``delete <key>
    <time>`` did. A warm-up router fills a cold server with ``add``; a fill
    that read the warm cluster before a write's delete reached the cold
    one lands after it, and the hold-off refuses it (the race 4.3 names).
    ``held``: key -> Unix ms the hold ends, oldest first, at most
    ``HOLD_OFF_KEYS_MAX`` (the oldest is forgotten first).

Invariants (checked by :meth:`Cache.check`)
    ``bytes == sum of the sizes of the linked items <= memory_limit_bytes``;
    ``curr_items == len(items)``; every linked item's cas < ``next_cas``.
"""

from __future__ import annotations

from collections import OrderedDict

from synod.memcache import constants as C
from synod.memcache._text import b64_encode_key, safe_strtoull
from synod.memcache.messages import (
    Arith,
    Delete,
    FlushAll,
    Get,
    Line,
    MetaReply,
    Store,
    Touch,
    Value,
    Values,
)
from synod.memcache.protocol import item_size_bytes

__all__ = ["Cache", "Item", "slab_class"]

_U32 = 1 << 32
_U64 = 1 << 64
_E_NON_NUMERIC = b"CLIENT_ERROR cannot increment or decrement non-numeric value"

# Stats counters, named as memcached's "stats" names them, in its order.
COUNTERS = (
    "cmd_get", "cmd_set", "cmd_flush", "cmd_touch", "cmd_meta", "get_hits", "get_misses", "get_expired",
    "get_flushed", "delete_misses", "delete_hits", "incr_misses", "incr_hits", "decr_misses", "decr_hits",
    "cas_misses", "cas_hits", "cas_badval", "touch_hits", "touch_misses", "store_too_large", "store_no_memory",
)
STATE_COUNTERS = ("reclaimed", "evictions", "expired_unfetched", "evicted_unfetched", "total_items")


def _slab_sizes() -> list[int]:
    """memcached's default slab class chunk sizes (slabs_init), class 1 first."""
    sizes = []
    size = C.SLAB_CHUNK_BYTES_MIN
    while size < C.SLAB_CHUNK_BYTES_MAX / C.SLAB_GROWTH_FACTOR and len(sizes) < 62:
        if size % C.SLAB_CHUNK_ALIGN_BYTES:
            size += C.SLAB_CHUNK_ALIGN_BYTES - size % C.SLAB_CHUNK_ALIGN_BYTES
        sizes.append(size)
        size = int(size * C.SLAB_GROWTH_FACTOR)
    sizes.append(C.SLAB_CHUNK_BYTES_MAX)
    return sizes


_SLAB_SIZES = _slab_sizes()


def slab_class(size_bytes: int) -> int:
    """The slab class memcached would keep an item of ``size_bytes`` in."""
    for i, chunk in enumerate(_SLAB_SIZES):
        if size_bytes <= chunk:
            return i + 1
    return len(_SLAB_SIZES)


class Item:
    """One cached item (memcached's ``struct _stritem``).

    ``exptime_s``: Unix seconds (0: never). ``time_s``: last store or
    access. ``fetched``: read since stored (ITEM_FETCHED); ``token_sent``:
    a lease win was given for it (ITEM_TOKEN_SENT), at ``token_sent_ms``;
    ``stale``: marked by an invalidating md or stale set (ITEM_STALE);
    ``key_binary``: stored through a base64 key (ITEM_KEY_BINARY);
    ``placeholder``: made empty by a lease miss (mg N) and not yet filled.
    """

    __slots__ = ("key", "value", "client_flags", "exptime_s", "cas", "time_s", "fetched", "token_sent",
                 "token_sent_ms", "stale", "key_binary", "placeholder", "size")

    def __init__(self, key: bytes, value: bytes, client_flags: int, exptime_s: int, *, key_binary: bool = False):
        self.key = key
        self.value = value
        self.client_flags = client_flags
        self.exptime_s = exptime_s
        self.cas = 0
        self.time_s = 0
        self.fetched = False
        self.token_sent = False
        self.token_sent_ms = 0
        self.stale = False
        self.key_binary = key_binary
        self.placeholder = False
        self.size = item_size_bytes(len(key), len(value), client_flags)


class Cache:
    """A memcached item store.

    Args:
        memory_limit_bytes: most bytes of items (memcached's -m, in bytes).
        item_size_bytes_max: largest item (memcached's -I); an append that
            would grow an item past it is NOT_STORED.
        lease_interval_ms: a lease win is given again after this long (0:
            only when the placeholder expires, as memcached).
        hold_off_ms: adds of a key are refused this long after its delete
            (4.3; 0: never, as memcached).

    The text commands are :meth:`get`, :meth:`store`, :meth:`delete`,
    :meth:`arith`, :meth:`touch`, :meth:`flush_all`; the meta commands are in
    :mod:`synod.memcache._meta_ops`. Each takes the request and ``now_ms``
    (Unix milliseconds) and returns the reply.
    """

    def __init__(self, *, memory_limit_bytes: int = C.MEMORY_LIMIT_MB * 1024 * 1024,
                 item_size_bytes_max: int = C.ITEM_SIZE_BYTES_MAX, lease_interval_ms: int = C.LEASE_INTERVAL_MS,
                 hold_off_ms: int = 0) -> None:
        assert memory_limit_bytes > 0
        assert hold_off_ms >= 0
        assert item_size_bytes_max > C.ITEM_HEADER_BYTES
        assert lease_interval_ms >= 0
        self.memory_limit_bytes = memory_limit_bytes
        self.item_size_bytes_max = item_size_bytes_max
        self.lease_interval_ms = lease_interval_ms
        self.hold_off_ms = hold_off_ms
        # Invariant: len(held) <= HOLD_OFF_KEYS_MAX; empty while hold_off_ms == 0.
        self.held: OrderedDict[bytes, int] = OrderedDict()
        # Least recently used first. Invariant: bytes == sum of sizes <= memory_limit_bytes.
        self.items: OrderedDict[bytes, Item] = OrderedDict()
        self.bytes = 0
        self.next_cas = 1  # the cas unique the next link takes
        self.oldest_live_s = 0  # flush_all: items last stored at or before it are gone (0: no flush)
        self.oldest_cas = 0     # flush_all: items with a cas below it are gone (0: none)
        self.counters = dict.fromkeys(COUNTERS + STATE_COUNTERS, 0)

    # -- primitives ---------------------------------------------------------------------------------

    def realtime(self, exptime: int, now_s: int) -> int:
        """A protocol exptime as an absolute Unix second (0: never); memcached's
        realtime(EXPTIME_TO_POSITIVE_TIME(exptime))."""
        if exptime == 0:
            return 0
        if exptime < 0:
            exptime = C.RELATIVE_EXPTIME_S_MAX + 1
        if exptime > C.RELATIVE_EXPTIME_S_MAX:
            return exptime  # a Unix time (in the past: expired already)
        return now_s + exptime

    def take_cas(self) -> int:
        """The next cas unique (memcached's get_cas_id): 1, 2, 3, ..."""
        cas = self.next_cas
        self.next_cas = cas + 1
        return cas

    def _gone(self, it: Item, now_s: int) -> str | None:
        """Why a linked item no longer counts: "flushed", "expired", or None."""
        ol = self.oldest_live_s
        if ol and ol <= now_s and (it.time_s <= ol or (self.oldest_cas and it.cas < self.oldest_cas)):
            return "flushed"
        if it.exptime_s and it.exptime_s <= now_s:
            return "expired"
        return None

    def lookup(self, key: bytes, now_s: int) -> Item | None:
        """The live item under ``key``, unlinking it if expired or flushed
        (memcached's do_item_get with DONT_UPDATE)."""
        it = self.items.get(key)
        if it is None:
            return None
        why = self._gone(it, now_s)
        if why is None:
            return it
        self.counters["get_flushed" if why == "flushed" else "get_expired"] += 1
        self.unlink(it)
        return None

    def bump(self, it: Item, now_s: int) -> None:
        """A read: the item becomes most recently used and fetched."""
        it.fetched = True
        it.time_s = now_s
        self.items.move_to_end(it.key)

    def unlink(self, it: Item) -> None:
        """Remove linked item ``it`` (a delete, an expiry, an eviction)."""
        del self.items[it.key]
        self.bytes -= it.size

    def link(self, it: Item, now_s: int, *, replacing: Item | None = None) -> bool:
        """Link ``it`` (replacing ``replacing``) with a new cas unique, evicting
        least recently used items to make room. False (nothing changed but
        ``store_no_memory``) when it cannot fit even in an empty cache."""
        free = self.memory_limit_bytes - self.bytes + (replacing.size if replacing is not None else 0)
        if it.size > self.memory_limit_bytes:
            self.counters["store_no_memory"] += 1
            return False
        if replacing is not None:
            self.unlink(replacing)
        if it.size > free:
            self._evict(it.size, now_s)
        it.cas = self.take_cas()
        it.time_s = now_s
        self.items[it.key] = it
        self.bytes += it.size
        self.counters["total_items"] += 1
        assert self.bytes <= self.memory_limit_bytes
        return True

    def _evict(self, size: int, now_s: int) -> None:
        """Evict from the least recently used end until ``size`` bytes fit."""
        items = self.items
        while self.bytes + size > self.memory_limit_bytes:
            key = next(iter(items))
            it = items[key]
            if self._gone(it, now_s) is not None:
                self.counters["reclaimed"] += 1
                if not it.fetched:
                    self.counters["expired_unfetched"] += 1
            else:
                self.counters["evictions"] += 1
                if not it.fetched:
                    self.counters["evicted_unfetched"] += 1
            self.unlink(it)

    def set_memory_limit(self, memory_limit_bytes: int, now_ms: int) -> None:
        """cache_memlimit: a new limit; a smaller one evicts down to it."""
        assert memory_limit_bytes > 0
        self.memory_limit_bytes = memory_limit_bytes
        if self.bytes > memory_limit_bytes:
            self._evict(0, now_ms // 1000)

    def hold_off(self, key: bytes, now_ms: int) -> None:
        """A delete of ``key`` came at ``now_ms``: refuse its adds for
        ``hold_off_ms`` (a no-op when that is 0)."""
        if not self.hold_off_ms:
            return
        self.held.pop(key, None)
        self.held[key] = now_ms + self.hold_off_ms
        while len(self.held) > C.HOLD_OFF_KEYS_MAX:
            self.held.popitem(last=False)

    def _held(self, key: bytes, now_ms: int) -> bool:
        """Whether an add of ``key`` is held off at ``now_ms``."""
        until_ms = self.held.get(key)
        if until_ms is None:
            return False
        if until_ms <= now_ms:
            del self.held[key]
            return False
        return True

    def check(self) -> None:
        """Assert the invariants of the module docstring."""
        assert self.bytes == sum(it.size for it in self.items.values())
        assert self.bytes <= self.memory_limit_bytes
        assert all(it.cas < self.next_cas for it in self.items.values())

    # -- text commands --------------------------------------------------------------------------------

    def get(self, req: Get, now_ms: int) -> Values:
        """get / gets / gat / gats (memcached process_get_command): the live
        items among ``req.keys`` in order, each read bumped (and, for gat,
        given the new exptime); hits and misses counted per key. When
        ``req.error`` is set, the keys are still looked up (as memcached
        does) and only the error line is answered."""
        now_s = now_ms // 1000
        c = self.counters
        exptime_s = self.realtime(req.exptime, now_s) if req.touch else 0
        values = []
        reply_bytes = 0
        for key in req.keys:
            it = self.lookup(key, now_s)
            if req.touch:
                c["cmd_touch"] += 1
            else:
                c["cmd_get"] += 1
            if it is None:
                c["touch_misses" if req.touch else "get_misses"] += 1
                continue
            c["touch_hits" if req.touch else "get_hits"] += 1
            if req.touch:
                it.exptime_s = exptime_s
            self.bump(it, now_s)
            reply_bytes += len(it.key) + len(it.value) + 64
            if reply_bytes > C.GET_REPLY_BYTES_MAX:
                return Values(error="SERVER_ERROR out of memory writing get response")
            values.append(Value(key=it.key, client_flags=it.client_flags, data=it.value, cas_unique=it.cas))
        if req.error:
            return Values(error=req.error)
        return Values(values=tuple(values), return_cas=req.return_cas)

    def store(self, req: Store, now_ms: int, *, stale_ok: bool = False, key_binary: bool = False) -> tuple[bytes, int]:
        """A storage command (do_store_item). Returns (outcome, cas): outcome
        is STORED, NOT_STORED, EXISTS, NOT_FOUND or the out-of-memory line;
        cas is the stored item's cas unique (0 if not stored). ``stale_ok``:
        ms's I flag (a cas below the item's is stored, marked stale)."""
        now_s = now_ms // 1000
        c = self.counters
        c["cmd_set"] += 1
        mode = req.mode
        if mode == "add" and self.held and self._held(req.key, now_ms):
            return b"NOT_STORED", 0
        new = Item(req.key, req.data, req.client_flags, self.realtime(req.exptime, now_s), key_binary=key_binary)
        old = self.lookup(req.key, now_s)
        if old is None:
            if mode == "cas":
                c["cas_misses"] += 1
                return b"NOT_FOUND", 0
            if mode not in ("set", "add"):
                return b"NOT_STORED", 0
            return self._stored(new, now_s, None)
        want = req.cas_unique
        if mode == "add":
            self.items.move_to_end(old.key)  # add promotes the existing item
            return b"NOT_STORED", 0
        if mode == "cas":
            if want and want == old.cas:
                c["cas_hits"] += 1
            elif want and stale_ok and want < old.cas:
                c["cas_hits"] += 1
                new.exptime_s = old.exptime_s
                new.stale = True
                new.token_sent, new.token_sent_ms = old.token_sent, old.token_sent_ms
            else:
                c["cas_badval"] += 1
                return b"EXISTS", 0
        elif mode in ("append", "prepend"):
            if want and want != old.cas:
                return b"EXISTS", 0
            data = old.value + req.data if mode == "append" else req.data + old.value
            if item_size_bytes(len(req.key), len(data), old.client_flags) > self.item_size_bytes_max:
                return b"NOT_STORED", 0
            new = Item(req.key, data, old.client_flags, old.exptime_s, key_binary=old.key_binary)
        return self._stored(new, now_s, old)

    def _stored(self, new: Item, now_s: int, old: Item | None) -> tuple[bytes, int]:
        if not self.link(new, now_s, replacing=old):
            return b"SERVER_ERROR out of memory storing object", 0
        return b"STORED", new.cas

    def delete(self, req: Delete, now_ms: int) -> Line:
        """delete: DELETED or NOT_FOUND."""
        it = self.lookup(req.key, now_ms // 1000)
        if it is None:
            self.counters["delete_misses"] += 1
            return Line(text=b"NOT_FOUND")
        self.counters["delete_hits"] += 1
        self.unlink(it)
        return Line(text=b"DELETED")

    def add_delta(self, key: bytes, incr: bool, delta: int, now_s: int, cas: int = 0) -> tuple[str, Item | None, bytes]:
        """incr / decr (do_add_delta): ("ok", item, new number), ("not_found",
        None, b""), ("non_numeric", None, b"") or ("cas_mismatch", None, b"")
        when ``cas`` is given and differs. Unsigned 64-bit: incr wraps, decr
        stops at 0. A number that fits is written in place, padded with
        spaces, as memcached does."""
        it = self.lookup(key, now_s)
        if it is None:
            return "not_found", None, b""
        if not it.value:
            return "non_numeric", None, b""
        if cas and it.cas != cas:
            return "cas_mismatch", None, b""
        text = it.value.split(b"\x00", 1)[0]
        v = safe_strtoull(text + b"\r")
        if v is None or (v >= 1 << 63 and 45 in text):
            return "non_numeric", None, b""
        v = (v + delta) % _U64 if incr else max(v - delta, 0)
        self.counters["incr_hits" if incr else "decr_hits"] += 1
        number = b"%d" % v
        if len(number) <= len(it.value):
            it.value = number.ljust(len(it.value), b" ")
            it.cas = self.take_cas()
            it.time_s = now_s
            self.items.move_to_end(key)
            return "ok", it, number
        new = Item(key, number, it.client_flags, it.exptime_s, key_binary=it.key_binary)
        if not self.link(new, now_s, replacing=it):
            return "no_memory", None, b""
        return "ok", new, number

    def arith(self, req: Arith, now_ms: int) -> Line:
        """incr / decr: the new value, NOT_FOUND, or memcached's error for a
        value that is not a decimal number (see :meth:`add_delta`)."""
        outcome, _, number = self.add_delta(req.key, req.incr, req.delta, now_ms // 1000)
        if outcome == "ok":
            return Line(text=number)
        if outcome == "non_numeric":
            return Line(text=_E_NON_NUMERIC)
        if outcome == "no_memory":
            return Line(text=b"SERVER_ERROR out of memory")
        self.counters["incr_misses" if req.incr else "decr_misses"] += 1
        return Line(text=b"NOT_FOUND")

    def touch(self, req: Touch, now_ms: int) -> Line:
        """touch: a new exptime for a live item (TOUCHED), or NOT_FOUND."""
        now_s = now_ms // 1000
        self.counters["cmd_touch"] += 1
        it = self.lookup(req.key, now_s)
        if it is None:
            self.counters["touch_misses"] += 1
            return Line(text=b"NOT_FOUND")
        self.counters["touch_hits"] += 1
        self.bump(it, now_s)
        it.exptime_s = self.realtime(req.exptime, now_s)
        return Line(text=b"TOUCHED")

    def flush_all(self, req: FlushAll, now_ms: int) -> Line:
        """flush_all [delay] (process_flush_all_command): every item linked
        up to the flush time is gone from then on."""
        now_s = now_ms // 1000
        self.counters["cmd_flush"] += 1
        new_oldest = self.realtime(req.delay_s, now_s) if req.delay_s > 0 else now_s
        self.oldest_live_s = new_oldest - 1
        if self.oldest_live_s <= now_s:
            self.oldest_cas = self.take_cas()
            self.items.clear()  # all gone now: free the memory at once
            self.bytes = 0
        return Line(text=b"OK")

    # -- meta helpers -------------------------------------------------------------------------------

    def key_flag(self, key: bytes, binary: bool) -> list[bytes]:
        """The ``k`` return flag (base64 and a ``b`` flag for a binary key)."""
        return [b"k" + b64_encode_key(key), b"b"] if binary else [b"k" + key]

    def ttl_flag(self, it: Item, now_s: int) -> bytes:
        """The ``t`` return flag: seconds left (``t-1``: never expires)."""
        return b"t-1" if it.exptime_s == 0 else b"t%d" % ((it.exptime_s - now_s) % _U32)

    def debug(self, key: bytes, now_ms: int) -> MetaReply | Line:
        """me (process_meta_command): an item's metadata, or EN."""
        now_s = now_ms // 1000
        self.counters["cmd_meta"] += 1
        it = self.lookup(key, now_s)
        if it is None:
            return Line(text=b"EN")
        shown = b64_encode_key(it.key) if it.key_binary else it.key
        exp = -1 if it.exptime_s == 0 else now_s - it.exptime_s
        return Line(text=b"ME %s exp=%d la=%d cas=%d fetch=%s cls=%d size=%d" % (
            shown, exp, now_s - it.time_s, it.cas, b"yes" if it.fetched else b"no", slab_class(it.size), it.size))

    def stats(self, now_ms: int) -> list[tuple[str, str]]:
        """The item and command counters of the ``stats`` reply, in memcached's order."""
        c = self.counters
        out = [(name, str(c[name])) for name in COUNTERS]
        out += [("limit_maxbytes", str(self.memory_limit_bytes)), ("bytes", str(self.bytes)),
                ("curr_items", str(len(self.items)))]
        out += [(name, str(c[name])) for name in STATE_COUNTERS]
        return out

    def reset_stats(self) -> None:
        """stats reset: the command counters and total_items, evictions ... to 0."""
        for name in self.counters:
            self.counters[name] = 0
