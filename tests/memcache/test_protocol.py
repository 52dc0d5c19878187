"""memcached's text and meta protocols, server side (synod.memcache.protocol).

Spec: memcached doc/protocol.txt and 1.6.18's proto_text.c (the byte-for-
byte comparison with a real memcached is tests/memcache/test_vs_memcached.py).
The fuzz tests take ``SYNOD_FUZZ_EXAMPLES`` examples in all (default 3000)
and feed every request they parse through a cache node and back out as
bytes: nothing may raise, the buffer stays within its bound, and how the
bytes are split changes nothing.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.kv.test_protocol import _mutate  # flip, insert, delete, truncate, duplicate

from synod.core.errors import LocalProtocolError
from synod.memcache._text import b64_decode_key, safe_strtol, safe_strtoul, safe_strtoull, tokenize
from synod.memcache.messages import (
    Arith,
    Close,
    Delete,
    Disconnect,
    FlushAll,
    Get,
    Invalid,
    Line,
    MetaGet,
    MetaReply,
    MetaSet,
    Quit,
    Store,
    Value,
    Values,
)
from synod.memcache.node import CacheNode
from synod.memcache.protocol import MemcacheProtocol, render

FUZZ_EXAMPLES = int(os.environ.get("SYNOD_FUZZ_EXAMPLES", 3000))
# `make test` draws the same examples every run; a run asked for with
# SYNOD_FUZZ_EXAMPLES draws fresh ones.
FUZZ_DERANDOMIZE = "SYNOD_FUZZ_EXAMPLES" not in os.environ


def parse(data: bytes, **limits: int) -> list:
    return MemcacheProtocol(**limits).receive_data(data)


# -- numbers, tokens, base64 (util.c, proto_text.c, base64.c) ---------------------------------------


@pytest.mark.parametrize(("text", "want"), [
    (b"0", 0), (b"42", 42), (b"+7", 7), (b" \t5", 5), (b"5\tx", 5), (b"-0", 0), (b"-1", None), (b"", None),
    (b"x", None), (b"5x", None), (b"18446744073709551615", 2**64 - 1), (b"18446744073709551616", None),
    (b"-9223372036854775807", None),
])
def test_safe_strtoull(text: bytes, want: int | None) -> None:
    assert safe_strtoull(text) == want


def test_safe_strtoull_small_negative_wraps() -> None:
    """strtoull negates in unsigned arithmetic; util.c refuses a minus sign
    only when the result reads as negative: -1 .. -2**63 are refused."""
    assert safe_strtoull(b"-1") is None
    assert safe_strtoull(b"-18446744073709551615") == 1  # wraps to 1, which is not "negative"


def test_32_bit_fields_truncate_as_on_lp64() -> None:
    assert safe_strtoul(b"4294967297") == 1
    assert safe_strtoul(b"4294967295") == 4294967295
    assert safe_strtoul(b"-1") is None
    assert safe_strtol(b"4294967296") == 0
    assert safe_strtol(b"2147483648") == -2147483648
    assert safe_strtol(b"-5") == -5
    assert safe_strtol(b"9223372036854775808") is None


def test_tokenize_splits_at_spaces_only_24_at_a_time() -> None:
    assert tokenize(b"  get a\tb  c ", 24) == ([b"get", b"a\tb", b"c"], None)
    words, rest = tokenize(b" ".join(b"w%d" % i for i in range(30)), 24)
    assert len(words) == 23
    assert rest == b" ".join(b"w%d" % i for i in range(23, 30))
    assert tokenize(b" ".join(b"w%d" % i for i in range(23)) + b" ", 24)[1] is None


def test_base64_keys_as_memcached() -> None:
    assert b64_decode_key(b"YmluAGtleQ==") == b"bin\x00key"
    assert b64_decode_key(b"YW Jj") == b"abc"  # bytes outside the alphabet are skipped
    assert b64_decode_key(b"abc") is None      # not a multiple of 4 symbols
    assert b64_decode_key(b"a===") is None     # bad padding
    assert b64_decode_key(b"!!!!") is None


# -- requests ------------------------------------------------------------------------------------


def test_storage_command_waits_for_its_data_block() -> None:
    p = MemcacheProtocol()
    assert p.receive_data(b"set k 5 100 3 noreply\r\nab") == []
    assert p.buffered_bytes == 2
    assert p.receive_data(b"c\r\nget k\r\n") == [
        Store(mode="set", key=b"k", client_flags=5, exptime=100, data=b"abc", noreply=True),
        Get(keys=(b"k",))]
    assert p.buffered_bytes == 0


def test_data_block_may_hold_crlf_and_nul() -> None:
    [req] = parse(b"set k 0 0 6\r\n\r\n\x00\r\nx\r\n")
    assert req.data == b"\r\n\x00\r\nx"


def test_bad_data_chunk_then_the_rest_is_read_as_commands() -> None:
    assert parse(b"set k 0 0 1\r\nxyz\r\n") == [Invalid(text="CLIENT_ERROR bad data chunk"), Invalid(text="ERROR")]


def test_cas_and_meta_set_requests() -> None:
    [cas, ms] = parse(b"cas k 1 2 1 77\r\nx\r\nms k 2 C9 I T5 F3 q\r\nhi\r\n")
    assert cas == Store(mode="cas", key=b"k", client_flags=1, exptime=2, data=b"x", cas_unique=77)
    assert isinstance(ms, MetaSet)
    assert ms.data == b"hi"
    assert (ms.flags.compare_cas, ms.flags.invalidate, ms.flags.ttl, ms.flags.client_flags, ms.flags.quiet) == \
        (9, True, 5, 3, True)


def test_multiget_takes_keys_beyond_the_token_limit() -> None:
    keys = [b"k%d" % i for i in range(100)]
    [req] = parse(b"gets " + b" ".join(keys) + b"\r\n")
    assert req == Get(keys=tuple(keys), return_cas=True)


def test_gat_reads_exptime_then_keys() -> None:
    assert parse(b"gat 30 a b\r\ngat x a\r\n") == [Get(keys=(b"a", b"b"), touch=True, exptime=30),
                                                   Get(keys=(), error="CLIENT_ERROR invalid exptime argument")]


@pytest.mark.parametrize(("line", "want"), [
    (b"delete k", Delete(key=b"k")),
    (b"delete k 0 noreply", Delete(key=b"k", noreply=True)),
    (b"delete k 5", Invalid(text="CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]")),
    (b"incr k 5 noreply", Arith(key=b"k", incr=True, delta=5, noreply=True)),
    (b"decr k -1", Invalid(text="CLIENT_ERROR invalid numeric delta argument")),
    (b"flush_all 10 noreply", FlushAll(delay_s=10, noreply=True)),
    (b"flush_all x", Invalid(text="CLIENT_ERROR invalid exptime argument")),
    (b"set k 0 0", Invalid(text="ERROR")),
    (b"set k x 0 1 noreply", Invalid(text="CLIENT_ERROR bad command line format", noreply=True)),
    (b"mg k v v", Invalid(text="CLIENT_ERROR duplicate flag")),
    (b"mg k z", Invalid(text="CLIENT_ERROR invalid flag")),
    (b"mg k Nx", Invalid(text="CLIENT_ERROR bad token in command line format")),
    (b"md k z", Invalid(text="CLIENT_ERROR invalid or duplicate flag")),
    (b"ma k MX", Invalid(text="CLIENT_ERROR invalid mode for ma M token")),
    (b"quit", Quit()),
    (b"GET / HTTP/1.1", Disconnect(reason="an HTTP request")),
    (b"", Invalid(text="ERROR")),
])
def test_one_line(line: bytes, want: object) -> None:
    assert parse(line + b"\r\n") == [want]


def test_meta_get_flags_and_base64_key() -> None:
    [req] = parse(b"mg YmluAGtleQ== b v N30 O12 k\r\n")
    assert isinstance(req, MetaGet)
    assert req.key == b"bin\x00key"
    assert req.flags.key_binary
    assert req.flags.vivify_ttl == 30
    assert req.flags.tokens == (b"b", b"v", b"N30", b"O12", b"k")


def test_value_over_the_item_limit_is_refused_and_swallowed() -> None:
    """SERVER_ERROR object too large for cache; its data is dropped as it
    arrives, never buffered; the next command is read normally."""
    p = MemcacheProtocol(item_size_bytes_max=1024)
    [req] = p.receive_data(b"set k 0 0 5000\r\n")
    assert req == Invalid(text="SERVER_ERROR object too large for cache", unlink_key=b"k")
    for _ in range(5):
        assert p.receive_data(b"x" * 1000) == []
        assert p.buffered_bytes == 0
    assert p.receive_data(b"\r\nversion\r\n") == [parse(b"version\r\n")[0]]


def test_long_line_closes_after_earlier_requests() -> None:
    """memcached closes a connection whose line passes 2048 bytes (a get may
    be longer); the requests before it are answered first."""
    p = MemcacheProtocol()
    reqs = p.receive_data(b"version\r\n" + b"x" * 3000)
    assert [type(r) for r in reqs] == [type(parse(b"version\r\n")[0]), Disconnect]
    assert p.receive_data(b"version\r\n") == []  # nothing more is read
    assert len(parse(b"get " + b"k " * 2000 + b"\r\n")[0].keys) == 2000


def test_quit_stops_reading() -> None:
    p = MemcacheProtocol()
    assert p.receive_data(b"quit\r\nset a 0 0 1\r\nx\r\n") == [Quit()]
    assert p.send(Close()) == b""
    assert p.wants_close


# -- replies -------------------------------------------------------------------------------------


def test_render_replies() -> None:
    assert render(Line(text=b"STORED")) == b"STORED\r\n"
    assert render(Values(values=(Value(key=b"k", client_flags=3, data=b"ab", cas_unique=9),), return_cas=True)) == \
        b"VALUE k 3 2 9\r\nab\r\nEND\r\n"
    assert render(Values()) == b"END\r\n"
    assert render(MetaReply(code=b"VA", flags=(b"c5", b"W"), value=b"xyz")) == b"VA 3 c5 W\r\nxyz\r\n"
    assert render(MetaReply(code=b"HD")) == b"HD\r\n"
    with pytest.raises(LocalProtocolError):
        render(Quit())  # type: ignore[arg-type]


def test_noreply_and_quiet_modes_hide_the_right_replies() -> None:
    p = MemcacheProtocol()
    p.receive_data(b"set k 0 0 1 noreply\r\nx\r\nmg k q\r\nmg k q\r\nms k 1 q\r\nx\r\nms k 1 q\r\nx\r\nma k q v\r\n")
    assert p.send(Line(text=b"NOT_STORED")) == b""  # noreply hides everything
    assert p.send(MetaReply(code=b"EN")) == b""     # mg q hides a miss
    assert p.send(MetaReply(code=b"HD")) == b"HD\r\n"  # ... not a hit
    assert p.send(MetaReply(code=b"HD")) == b""     # ms q hides HD
    assert p.send(MetaReply(code=b"NS")) == b"NS\r\n"
    assert p.send(MetaReply(code=b"VA", value=b"1")) == b""  # ma q hides VA too
    with pytest.raises(LocalProtocolError):
        p.send(Line(text=b"OK"))  # nothing waits


# -- fuzz ----------------------------------------------------------------------------------------

SMALL = {"item_size_bytes_max": 512, "line_bytes_max": 64, "get_line_bytes_max": 256}
_FUZZ = settings(max_examples=max(1, -(-FUZZ_EXAMPLES // 3)), deadline=None, database=None, derandomize=FUZZ_DERANDOMIZE,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
fuzz_counts: dict[str, int] = {}

_WORDS = [b"get", b"gets", b"gat", b"gats", b"set", b"add", b"replace", b"append", b"prepend", b"cas", b"delete",
          b"incr", b"decr", b"touch", b"flush_all", b"version", b"stats", b"verbosity", b"mg", b"ms", b"md", b"ma",
          b"mn", b"me", b"noreply", b"k", b"0", b"1", b"5", b"-1", b"30", b"v", b"q", b"N30", b"C1", b"I", b"MA",
          b"T0", b"b", b"O1", b"c", b"t", b"x", b"4294967297", b"\r\n", b"\n", b" ", b"  ", b"\x00"]
_command_bytes = st.lists(st.sampled_from(_WORDS), max_size=40).map(lambda ws: b" ".join(ws))
_request_bytes = st.one_of(st.binary(max_size=400), _command_bytes,
                           st.lists(st.sampled_from(b"gsetmacdv 0123\r\n-xkqNCIOT"), max_size=400).map(bytes))


def _drive(data: bytes, cuts: list[int], limits: dict[str, int]) -> bytes:
    """Feed ``data`` in pieces through a protocol object and a node; return
    every byte written back. Nothing may raise; the buffer stays bounded."""
    proto = MemcacheProtocol(**limits)
    node = CacheNode(memory_limit_bytes=4096, item_size_bytes_max=limits.get("item_size_bytes_max", 1 << 20))
    bound = proto.get_line_bytes_max + proto.item_size_bytes_max + 2
    out = bytearray()
    for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True):
        for req in proto.receive_data(data[a:b]):
            assert node.check_request(req) == "", req  # the node takes whatever the parser makes
            out += proto.send(node.answer(req, 1_767_225_600_000))
        assert proto.buffered_bytes <= bound
        assert proto.pending == 0
        node.cache.check()
        if proto.wants_close:
            break
    return bytes(out)


def _check(data: bytes, cuts: list[int], limits: dict[str, int]) -> None:
    whole = _drive(data, [], limits)
    split = _drive(data, sorted(c % (len(data) + 1) for c in cuts), limits)
    assert split == whole


@_FUZZ
@given(_request_bytes, st.lists(st.integers(0, 500), max_size=6), st.sampled_from([SMALL, {}]))
def test_fuzz_random_bytes(data: bytes, cuts: list[int], limits: dict[str, int]) -> None:
    fuzz_counts["random"] = fuzz_counts.get("random", 0) + 1
    _check(data, cuts, limits)


_valid = st.lists(st.sampled_from([
    b"set k 0 0 3\r\nabc\r\n", b"get k a\r\n", b"mg k v c N30 t\r\n", b"ms k 2 C1 I\r\nhi\r\n", b"md k I q\r\n",
    b"ma n N0 J5 v\r\n", b"incr n 3\r\n", b"append k 0 0 1\r\n!\r\n", b"cas k 0 0 1 2\r\nx\r\n", b"touch k 10\r\n",
    b"flush_all\r\n", b"me k\r\n", b"mn\r\n", b"gats 5 k n\r\n", b"delete k noreply\r\n", b"stats\r\n",
    b"set big 0 0 600\r\n" + b"z" * 600 + b"\r\n",
]), min_size=1, max_size=8).map(b"".join)
_edits = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4)


@_FUZZ
@given(_valid, _edits, st.lists(st.integers(0, 500), max_size=6), st.sampled_from([SMALL, {}]))
def test_fuzz_mutated_commands(data: bytes, edits: list[tuple[int, int, int]], cuts: list[int],
                               limits: dict[str, int]) -> None:
    fuzz_counts["mutated"] = fuzz_counts.get("mutated", 0) + 1
    _check(_mutate(data, edits), cuts, limits)


@_FUZZ
@given(_valid, st.lists(st.integers(0, 500), max_size=6))
def test_fuzz_valid_commands(data: bytes, cuts: list[int]) -> None:
    fuzz_counts["valid"] = fuzz_counts.get("valid", 0) + 1
    _check(data, cuts, {})


def test_fuzz_ran() -> None:
    """The fuzz tests above ran (when run in this process) the examples asked."""
    if fuzz_counts:
        print(f"memcache protocol fuzz examples: {fuzz_counts} (total {sum(fuzz_counts.values())})")
        assert sum(fuzz_counts.values()) >= 3
