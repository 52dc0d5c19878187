"""Fuzzing a CacheNode with well-typed requests the parser would never make
(a simulated client or a peer may send them): every field drawn from its
type, at and beyond its wire bounds. Each request is either answered or
refused with RemoteProtocolError having queued no effect (tests/_fuzzhost.py),
and the store's invariants hold after each. ``SYNOD_FUZZ_MESSAGES`` requests
(default 3000)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests._fuzzhost import FuzzHost, fuzz_messages

from synod.memcache import messages as M
from synod.memcache.node import CacheNode

MESSAGES = fuzz_messages(3000)
BATCH = 20

small_bytes = st.one_of(st.sampled_from([b"k", b"a", b"n", b"", b"k" * 251, b"a b", b"\n", b"1", b"10"]),
                        st.binary(max_size=20))
ints = st.one_of(st.sampled_from([0, 1, 5, -1, 2**31, -(2**31) - 1, 2**32, 2**64, -(2**64)]),
                 st.integers(-(2**65), 2**65))
tokens = st.lists(st.sampled_from([b"v", b"c", b"k", b"q", b"N30", b"W", b"", b"a b", b"O1", b"t", b"s", b"f"]),
                  max_size=5).map(tuple)
flags = st.builds(M.MetaFlags, tokens=tokens, key_binary=st.booleans(), quiet=st.booleans(), value=st.booleans(),
                  no_update=st.booleans(), invalidate=st.booleans(), vivify_ttl=st.none() | ints,
                  ttl=st.none() | ints, recache_ttl=st.none() | ints, client_flags=ints,
                  compare_cas=st.none() | ints, mode=st.sampled_from([b"", b"E", b"A", b"P", b"R", b"D", b"-", b"X"]),
                  delta=ints, initial=ints)
requests = st.one_of(
    st.builds(M.Get, keys=st.lists(small_bytes, max_size=4).map(tuple), return_cas=st.booleans(),
              touch=st.booleans(), exptime=ints, error=st.sampled_from(["", "CLIENT_ERROR x"])),
    st.builds(M.Store, mode=st.sampled_from(M.STORE_MODES), key=small_bytes, client_flags=ints, exptime=ints,
              data=st.binary(max_size=50) | st.just(b"x" * 2_000_000), cas_unique=ints, noreply=st.booleans()),
    st.builds(M.Delete, key=small_bytes), st.builds(M.Arith, key=small_bytes, incr=st.booleans(), delta=ints),
    st.builds(M.Touch, key=small_bytes, exptime=ints), st.builds(M.FlushAll, delay_s=ints),
    st.builds(M.Verbosity, level=ints), st.builds(M.CacheMemlimit, memory_limit_mb=ints),
    st.builds(M.Stats, args=st.lists(small_bytes, max_size=2).map(tuple)),
    st.builds(M.Invalid, text=st.sampled_from(["ERROR", "a\r\nb"]), unlink_key=st.none() | small_bytes),
    st.builds(M.MetaGet, key=small_bytes, flags=flags), st.builds(M.MetaDelete, key=small_bytes, flags=flags),
    st.builds(M.MetaArith, key=small_bytes, flags=flags),
    st.builds(M.MetaSet, key=small_bytes, flags=flags, data=st.binary(max_size=30)),
    st.builds(M.MetaDebug, key=small_bytes, key_binary=st.booleans()), st.just(M.MetaNoop()), st.just(M.Version()),
)
counts = {"handled": 0, "refused": 0}


@settings(max_examples=max(1, MESSAGES // BATCH), deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(requests, min_size=BATCH, max_size=BATCH))
def test_typed_requests_answered_or_refused_cleanly(batch: list) -> None:
    node = CacheNode(memory_limit_bytes=2048)
    host = FuzzHost(node, "cache", ("cache",))
    for i, req in enumerate(batch, start=1):
        host.now_ms += 700.0
        if host.feed("client", req, corr=i):
            counts["handled"] += 1
            [(dst, reply, corr)] = host.take_sent()
            assert (dst, corr) == ("client", -i)
            assert isinstance(reply, M.Line | M.Values | M.MetaReply | M.StatsReply | M.Close)
        else:
            counts["refused"] += 1
        node.cache.check()


def test_fuzz_both_outcomes_seen() -> None:
    """The fuzz above (when run in this process) drew both answered and refused requests."""
    if counts["handled"] + counts["refused"]:
        print(f"memcache node fuzz: {counts}")
        assert counts["handled"] > 0
        assert counts["refused"] > 0


def test_a_duplicated_delivery_is_answered_once() -> None:
    """A simulated network may deliver a call twice: the copy neither runs
    again (an incr would count twice) nor gets a second reply."""
    node = CacheNode()
    host = FuzzHost(node, "cache", ("cache",))
    assert host.feed("web1", M.Store(mode="set", key=b"n", client_flags=0, exptime=0, data=b"1"), corr=1)
    assert host.feed("web1", M.Arith(key=b"n", incr=True, delta=1), corr=2)
    assert host.feed("web1", M.Arith(key=b"n", incr=True, delta=1), corr=2)
    sent = host.take_sent()
    assert [reply for _, reply, _ in sent] == [M.Line(text=b"STORED"), M.Line(text=b"2")]
