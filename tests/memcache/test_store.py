"""The item store (synod.memcache.store) and its meta commands: memory limit
and LRU eviction, expiry, cas uniques, flush_all, incr/decr, and leases
(Nishtala et al. section 3.2.1), with time as an argument (Unix ms)."""

from __future__ import annotations

from synod.memcache._meta_ops import meta_arith, meta_delete, meta_get, meta_set
from synod.memcache.messages import (
    Arith,
    Delete,
    FlushAll,
    Get,
    Line,
    MetaArith,
    MetaDelete,
    MetaFlags,
    MetaGet,
    MetaSet,
    Store,
    Touch,
)
from synod.memcache.protocol import MemcacheProtocol, item_size_bytes
from synod.memcache.store import Cache

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in Unix ms


def flags(*tokens: bytes) -> MetaFlags:
    """Flags as the protocol reads them from ``tokens``."""
    [req] = MemcacheProtocol().receive_data(b"mg k " + b" ".join(tokens) + b"\r\n")
    assert isinstance(req, MetaGet), req
    return req.flags


def set_(cache: Cache, key: bytes, value: bytes, now_ms: int = T0, exptime: int = 0, mode: str = "set",
         cas_unique: int = 0) -> bytes:
    outcome, _ = cache.store(Store(mode=mode, key=key, client_flags=0, exptime=exptime, data=value,
                                   cas_unique=cas_unique), now_ms)
    return outcome


def get(cache: Cache, key: bytes, now_ms: int = T0) -> bytes | None:
    values = cache.get(Get(keys=(key,)), now_ms).values
    return values[0].data if values else None


def mg(cache: Cache, key: bytes, *tokens: bytes, now_ms: int = T0):  # type: ignore[no-untyped-def]
    return meta_get(cache, MetaGet(key=key, flags=flags(*tokens)), now_ms)


# -- memory and eviction ------------------------------------------------------------------------------


def test_memory_limit_evicts_least_recently_used() -> None:
    """Items are counted at memcached's size; a store that does not fit
    evicts from the LRU end; a read moves an item to the MRU end."""
    size = item_size_bytes(2, 100, 0)
    cache = Cache(memory_limit_bytes=10 * size)
    for i in range(10):
        assert set_(cache, b"k%d" % i, b"v" * 100) == b"STORED"
    assert cache.bytes == 10 * size
    assert get(cache, b"k0") is not None  # k0 is now the most recently used
    assert set_(cache, b"kA", b"v" * 100) == b"STORED"
    assert get(cache, b"k1") is None      # the least recently used went
    assert get(cache, b"k0") is not None
    assert cache.counters["evictions"] == 1
    assert cache.counters["evicted_unfetched"] == 1
    cache.check()


def test_many_stores_stay_within_the_limit() -> None:
    cache = Cache(memory_limit_bytes=64 * 1024)
    for i in range(5000):
        set_(cache, b"key:%d" % i, b"x" * (i % 300))
        assert cache.bytes <= cache.memory_limit_bytes
    cache.check()
    assert cache.counters["evictions"] > 4000
    assert len(cache.items) > 100


def test_item_larger_than_memory_is_refused() -> None:
    cache = Cache(memory_limit_bytes=1000)
    assert set_(cache, b"k", b"x" * 2000) == b"SERVER_ERROR out of memory storing object"
    assert cache.counters["store_no_memory"] == 1


def test_expired_items_are_reclaimed_before_live_ones_count_as_evictions() -> None:
    size = item_size_bytes(2, 10, 0)
    cache = Cache(memory_limit_bytes=2 * size)
    set_(cache, b"k1", b"x" * 10, exptime=1)
    set_(cache, b"k2", b"x" * 10)
    set_(cache, b"k3", b"x" * 10, now_ms=T0 + 5000)
    assert cache.counters["reclaimed"] == 1
    assert cache.counters["evictions"] == 0


# -- expiry -------------------------------------------------------------------------------------------


def test_relative_absolute_and_negative_exptime() -> None:
    cache = Cache()
    set_(cache, b"rel", b"1", exptime=10)
    set_(cache, b"abs", b"2", exptime=T0 // 1000 + 20)
    set_(cache, b"neg", b"3", exptime=-1)
    set_(cache, b"never", b"4")
    assert get(cache, b"neg") is None
    assert get(cache, b"rel", T0 + 9_999) == b"1"
    assert get(cache, b"rel", T0 + 10_000) is None  # expired at exptime, to the second
    assert get(cache, b"abs", T0 + 19_000) == b"2"
    assert get(cache, b"abs", T0 + 20_000) is None
    assert get(cache, b"never", T0 + 10**12) == b"4"
    assert cache.counters["get_expired"] == 3


def test_touch_and_gat_change_exptime() -> None:
    cache = Cache()
    set_(cache, b"k", b"v", exptime=5)
    assert cache.touch(Touch(key=b"k", exptime=100), T0).text == b"TOUCHED"
    assert get(cache, b"k", T0 + 50_000) == b"v"
    assert cache.get(Get(keys=(b"k",), touch=True, exptime=1), T0 + 50_000).values
    assert get(cache, b"k", T0 + 51_000) is None


def test_flush_all_now_and_delayed() -> None:
    cache = Cache()
    set_(cache, b"a", b"1")
    assert cache.flush_all(FlushAll(), T0).text == b"OK"
    assert get(cache, b"a") is None
    assert cache.bytes == 0
    set_(cache, b"b", b"2", now_ms=T0 + 1000)  # after the flush: kept
    assert get(cache, b"b", T0 + 1000) == b"2"
    cache.flush_all(FlushAll(delay_s=10), T0 + 2000)
    assert get(cache, b"b", T0 + 5000) == b"2"
    assert get(cache, b"b", T0 + 11_000) is None  # linked before the flush time
    set_(cache, b"c", b"3", now_ms=T0 + 12_000)
    assert get(cache, b"c", T0 + 12_000) == b"3"


# -- cas, incr/decr -------------------------------------------------------------------------------------


def test_cas_unique_changes_on_every_store() -> None:
    cache = Cache()
    set_(cache, b"k", b"v1")
    [v] = cache.get(Get(keys=(b"k",), return_cas=True), T0).values
    assert set_(cache, b"k", b"v2", mode="cas", cas_unique=v.cas_unique) == b"STORED"
    assert set_(cache, b"k", b"v3", mode="cas", cas_unique=v.cas_unique) == b"EXISTS"
    assert set_(cache, b"nope", b"x", mode="cas", cas_unique=1) == b"NOT_FOUND"
    assert get(cache, b"k") == b"v2"
    assert (cache.counters["cas_hits"], cache.counters["cas_badval"], cache.counters["cas_misses"]) == (1, 1, 1)


def test_incr_decr_are_unsigned_64_bit() -> None:
    cache = Cache()
    set_(cache, b"n", b"18446744073709551615")
    assert cache.arith(Arith(key=b"n", incr=True, delta=2), T0).text == b"1"  # wraps
    assert get(cache, b"n") == b"1" + b" " * 19  # written in place, padded, as memcached
    assert cache.arith(Arith(key=b"n", incr=False, delta=5), T0).text == b"0"  # stops at 0
    set_(cache, b"s", b"abc")
    assert cache.arith(Arith(key=b"s", incr=True, delta=1), T0).text.startswith(b"CLIENT_ERROR")
    assert cache.arith(Arith(key=b"none", incr=True, delta=1), T0).text == b"NOT_FOUND"


def test_meta_arith_vivifies_with_initial_value() -> None:
    cache = Cache()
    reply = meta_arith(cache, MetaArith(key=b"c", flags=flags(b"N0", b"J10", b"v")), T0)
    assert (reply.code, reply.value) == (b"VA", b"10")
    reply = meta_arith(cache, MetaArith(key=b"c", flags=flags(b"D5", b"MD", b"v")), T0)
    assert reply.value == b"5"


# -- leases (Nishtala et al. 3.2.1) ------------------------------------------------------------------------


def test_lease_one_winner_per_miss() -> None:
    """3.2.1: on a miss, one client gets the lease (W and a token); the
    others are told another client holds it (Z) and get no token to set with."""
    cache = Cache()
    first = mg(cache, b"k", b"v", b"c", b"N30")
    assert b"W" in first.flags
    assert first.value == b""
    token = int(next(f for f in first.flags if f.startswith(b"c"))[1:])
    for _ in range(10):
        other = mg(cache, b"k", b"v", b"c", b"N30")
        assert b"Z" in other.flags
        assert b"W" not in other.flags
    reply = meta_set(cache, MetaSet(key=b"k", flags=flags(b"C%d" % token, b"T60"), data=b"from db"), T0)
    assert reply.code == b"HD"
    hit = mg(cache, b"k", b"v", b"N30")
    assert hit.value == b"from db"
    assert b"W" not in hit.flags
    assert b"Z" not in hit.flags


def test_lease_set_refused_after_a_delete() -> None:
    """3.2.1 stale sets: a set carrying a token is refused when the key was
    deleted (invalidated) since the token was given."""
    cache = Cache()
    token = int(next(f for f in mg(cache, b"k", b"c", b"N30").flags if f.startswith(b"c"))[1:])
    assert meta_delete(cache, MetaDelete(key=b"k", flags=flags()), T0).code == b"HD"
    assert meta_set(cache, MetaSet(key=b"k", flags=flags(b"C%d" % token), data=b"stale"), T0).code == b"NF"
    # An invalidating delete (I) keeps the item, stale, under a new cas: the old token fails too.
    token = int(next(f for f in mg(cache, b"k", b"c", b"N30").flags if f.startswith(b"c"))[1:])
    assert meta_delete(cache, MetaDelete(key=b"k", flags=flags(b"I")), T0).code == b"HD"
    assert meta_set(cache, MetaSet(key=b"k", flags=flags(b"C%d" % token), data=b"stale"), T0).code == b"EX"
    assert get(cache, b"k") == b""


def test_stale_value_served_while_one_client_refills() -> None:
    """3.2.1 stale values: after an invalidation the old value is still
    served, marked X; the first reader wins the refill, the others do not."""
    cache = Cache()
    set_(cache, b"k", b"old")
    meta_delete(cache, MetaDelete(key=b"k", flags=flags(b"I")), T0)
    first = mg(cache, b"k", b"v", b"c")
    assert first.value == b"old"
    assert b"X" in first.flags
    assert b"W" in first.flags
    second = mg(cache, b"k", b"v")
    assert b"X" in second.flags
    assert b"Z" in second.flags
    token = int(next(f for f in first.flags if f.startswith(b"c"))[1:])
    assert meta_set(cache, MetaSet(key=b"k", flags=flags(b"C%d" % token), data=b"new"), T0).code == b"HD"
    fresh = mg(cache, b"k", b"v")
    assert fresh.value == b"new"
    assert fresh.flags == ()


def test_hot_key_herd_costs_one_database_read() -> None:
    """3.2.1 thundering herds: 200 readers of a hot key that was just
    invalidated ask at once (all before any database read returns); only the
    lease winner reads the database, the others wait and retry, and every
    reader ends with the database's value. Without leases (plain get, then
    set on a miss) all 200 read the database."""
    database = {b"hot": b"row v2"}

    def herd(leases: bool) -> tuple[int, int]:
        cache = Cache()
        db_reads = 0
        waiting = list(range(200))
        now = T0
        rounds = 0
        while waiting:
            rounds += 1
            replies = [(r, mg(cache, b"hot", b"v", b"c", b"N30", now_ms=now) if leases else get(cache, b"hot", now))
                       for r in waiting]
            still = []
            for reader, reply in replies:  # the database answers after every reader asked
                if not leases:
                    if reply is None:
                        db_reads += 1
                        set_(cache, b"hot", database[b"hot"], now_ms=now)
                    continue
                if b"W" in reply.flags:
                    db_reads += 1
                    token = int(next(f for f in reply.flags if f.startswith(b"c"))[1:])
                    meta_set(cache, MetaSet(key=b"hot", flags=flags(b"C%d" % token), data=database[b"hot"]), now)
                elif b"Z" in reply.flags:
                    still.append(reader)  # another client holds the lease: wait and retry
                else:
                    assert reply.value == database[b"hot"]
            waiting = still
            now += 10  # readers retry after a short wait
        return db_reads, rounds

    assert herd(leases=True) == (1, 2)
    assert herd(leases=False) == (200, 1)


def test_one_token_per_key_per_lease_interval() -> None:
    """3.2.1: a token is issued at most once per key per lease interval; a
    winner that never sets does not block the key for longer than that."""
    cache = Cache(lease_interval_ms=10_000)
    assert b"W" in mg(cache, b"k", b"N3600", now_ms=T0).flags
    assert b"Z" in mg(cache, b"k", b"N3600", now_ms=T0 + 9_999).flags
    assert b"W" in mg(cache, b"k", b"N3600", now_ms=T0 + 10_000).flags
    assert b"Z" in mg(cache, b"k", b"N3600", now_ms=T0 + 10_001).flags
    as_memcached = Cache(lease_interval_ms=0)
    assert b"W" in mg(as_memcached, b"k", b"N3600", now_ms=T0).flags
    assert b"Z" in mg(as_memcached, b"k", b"N3600", now_ms=T0 + 100_000).flags


def test_delete_counts() -> None:
    cache = Cache()
    set_(cache, b"k", b"v")
    assert cache.delete(Delete(key=b"k"), T0) == Line(text=b"DELETED")
    assert cache.delete(Delete(key=b"k"), T0) == Line(text=b"NOT_FOUND")
    assert (cache.counters["delete_hits"], cache.counters["delete_misses"]) == (1, 1)


def test_a_multiget_reply_is_bounded() -> None:
    """A get naming a large item again and again cannot build a reply of any
    size: past GET_REPLY_BYTES_MAX it is memcached's out-of-memory error."""
    cache = Cache()
    set_(cache, b"big", b"x" * 1_000_000)
    reply = cache.get(Get(keys=(b"big",) * 100), T0)
    assert reply.error == "SERVER_ERROR out of memory writing get response"
    assert len(cache.get(Get(keys=(b"big",) * 10), T0).values) == 10
