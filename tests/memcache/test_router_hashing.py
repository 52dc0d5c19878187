"""Jump consistent hash (Lamping and Veach 2014) as the router's pool hash
(Nishtala et al. section 3: keys spread over a pool by consistent hashing),
and the router's params."""

from __future__ import annotations

from collections import Counter

import pytest

from synod.core import ConfigError
from synod.memcache._hashing import jump_hash, key_hash, server_for
from synod.memcache.messages import Line, MetaReply
from synod.memcache.router import RouterParams, factory, worst_reply

KEYS = [f"user:{i}".encode() for i in range(20_000)]


def test_key_hash_is_fixed_across_runs() -> None:
    """The same key maps to the same 64-bit hash in every process (pinned
    values: a change of hash would move every key of a running pool)."""
    assert key_hash(b"foo") == key_hash(b"foo")
    assert key_hash(b"foo") != key_hash(b"foo", b"gutter")
    assert 0 <= key_hash(b"foo") < 2**64
    assert key_hash(b"a") == 3405396810240292928
    assert [jump_hash(key_hash(k), 10) for k in (b"a", b"b", b"foo", b"user:1")] == [3, 2, 2, 5]


def test_jump_hash_reference_values() -> None:
    """Values of the reference C implementation (Figure 1 of the paper), as
    the Go port github.com/dgryski/go-jump lists them."""
    assert jump_hash(1, 1) == 0
    assert jump_hash(42, 57) == 43
    assert jump_hash(0xDEAD10CC, 1) == 0
    assert jump_hash(0xDEAD10CC, 666) == 361
    assert jump_hash(256, 1024) == 520
    with pytest.raises(ValueError):
        jump_hash(1, 0)


@pytest.mark.parametrize("n", [2, 3, 4, 7, 10])
def test_adding_a_server_moves_about_one_in_n_plus_one_keys_all_to_it(n: int) -> None:
    """Growing a pool from n to n+1 servers moves ~1/(n+1) of the keys, and
    every moved key goes to the new server (the consistent-hashing property
    section 3 relies on)."""
    before = [jump_hash(key_hash(k), n) for k in KEYS]
    after = [jump_hash(key_hash(k), n + 1) for k in KEYS]
    moved = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    assert all(a == n for _, a in moved)
    assert abs(len(moved) / len(KEYS) - 1 / (n + 1)) < 0.015


def test_keys_spread_evenly() -> None:
    servers = ("c1", "c2", "c3", "c4", "c5")
    counts = Counter(servers[server_for(k, servers)] for k in KEYS)
    assert set(counts) == set(servers)
    assert max(counts.values()) < 1.08 * len(KEYS) / len(servers)
    assert min(counts.values()) > 0.92 * len(KEYS) / len(servers)


def test_removing_the_last_server_moves_only_its_keys() -> None:
    before = [jump_hash(key_hash(k), 5) for k in KEYS]
    after = [jump_hash(key_hash(k), 4) for k in KEYS]
    assert all(b == a for b, a in zip(before, after, strict=True) if b != 4)


GOOD = {"pools": {"main": ["c1", "c2"], "gut": ["g1"]}, "default_pool": "main", "gutter_pool": "gut"}


@pytest.mark.parametrize("bad", [
    {"default_pool": "nope"},
    {"routes": [["user:", "nope"]]},
    {"routes": [["", "main"]]},
    {"routes": [["a", "main"], ["a", "main"]]},
    {"gutter_pool": "main"},
    {"replicated_pools": ["gut"]},
    {"pools": {"main": ["c1", "c2"], "gut": ["c2"]}},
    {"pools": {"main": ["c1", "c1"], "gut": ["g1"]}},
    {"pools": {"main": [], "gut": ["g1"]}},
    {"server_timeout_ms": 0},
    {"gutter_ttl_s": 0},
    {"gutter": "false"},
    {"surprise": 1},
])
def test_bad_params_are_config_errors(bad: dict) -> None:
    factory("r", GOOD)  # the good ones build
    with pytest.raises(ConfigError):
        factory("r", {**GOOD, **bad})


def test_routes_longest_prefix_wins() -> None:
    p = RouterParams(pools={"a": ("c1",), "b": ("c2",), "d": ("c3",)}, default_pool="d",
                     routes=(("user:", "a"), ("user:admin:", "b")))
    r = factory("r", {"pools": p.pools, "default_pool": "d", "routes": p.routes})
    assert r.plan(b"user:admin:7") == [("c2", False)]
    assert r.plan(b"user:7") == [("c1", False)]
    assert r.plan(b"other") == [("c3", False)]


def test_worst_reply_is_mcrouters_allsync_rule() -> None:
    ok, refused, error = Line(text=b"STORED"), Line(text=b"NOT_STORED"), Line(text=b"SERVER_ERROR out of memory")
    assert worst_reply([ok, ok]) is ok
    assert worst_reply([ok, refused, ok]) is refused
    assert worst_reply([refused, error]) is error
    assert worst_reply([error, None]) is None
    assert worst_reply([MetaReply(code=b"HD"), MetaReply(code=b"NF")]).code == b"NF"
