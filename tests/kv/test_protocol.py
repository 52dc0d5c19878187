"""RESP, server and client side (synod.kv.protocol, synod.kv.resp_client).

Spec: https://redis.io/docs/latest/develop/reference/protocol-spec/ and
Redis 7's request parser (src/networking.c). The error texts are checked
against a real redis-server when one is on PATH (over a Unix socket; no TCP
port is opened). The fuzz tests take ``SYNOD_FUZZ_EXAMPLES`` examples in all
(default 3000).
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synod.core.errors import LocalProtocolError, RemoteProtocolError
from synod.kv.protocol import RespProtocol, RespProtocolError, format_double, render
from synod.kv.replies import (
    NIL,
    NIL_ARRAY,
    OK,
    Array,
    Boolean,
    BulkString,
    Double,
    Integer,
    Map,
    Reply,
    Set,
    SimpleError,
    SimpleString,
    VerbatimString,
)
from synod.kv.resp_client import RespReader, encode_command

FUZZ_EXAMPLES = int(os.environ.get("SYNOD_FUZZ_EXAMPLES", 3000))
# `make test` draws the same examples every run (a fuzz test must not make CI
# flaky); a run asked for with SYNOD_FUZZ_EXAMPLES draws fresh ones.
FUZZ_DERANDOMIZE = "SYNOD_FUZZ_EXAMPLES" not in os.environ


def feed(proto: RespProtocol, chunks: list[bytes]) -> list[tuple[bytes, ...]]:
    out: list[tuple[bytes, ...]] = []
    for chunk in chunks:
        out.extend(c.args for c in proto.receive_data(chunk))
    return out


def cmds(data: bytes, **limits: int) -> list[tuple[bytes, ...]]:
    return feed(RespProtocol(**limits), [data])


# -- requests ----------------------------------------------------------------

# One pipelined stream touching every request form: multibulk (binary data
# holding CRLF, an empty argument), inline with quotes, an empty line, *0, *-1.
PIPELINE = (
    encode_command([b"SET", b"k\r\n", b"v\x00\xff"])
    + b"PING\r\n"
    + b"\r\n"
    + b"*0\r\n*-1\r\n"
    + b'set "a b\\x41\\n" \'c\\\'d\'  e\n'
    + encode_command(["ECHO", ""])
    + b"  GET   k  \r\n"
    + encode_command(["INCRBY", "n", 7])
)
PIPELINE_COMMANDS = [
    (b"SET", b"k\r\n", b"v\x00\xff"),
    (b"PING",),
    (b"set", b"a bA\n", b"c'd", b"e"),
    (b"ECHO", b""),
    (b"GET", b"k"),
    (b"INCRBY", b"n", b"7"),
]


def test_pipeline_in_one_read() -> None:
    proto = RespProtocol()
    assert feed(proto, [PIPELINE]) == PIPELINE_COMMANDS
    assert proto.pending == len(PIPELINE_COMMANDS)
    assert proto.buffered_bytes == 0


def test_split_at_every_byte_boundary() -> None:
    """Two reads split anywhere, and one byte per read, give the same commands."""
    for i in range(len(PIPELINE) + 1):
        proto = RespProtocol()
        assert feed(proto, [PIPELINE[:i], PIPELINE[i:]]) == PIPELINE_COMMANDS, i
        assert proto.buffered_bytes == 0
    proto = RespProtocol()
    assert feed(proto, [PIPELINE[i:i + 1] for i in range(len(PIPELINE))]) == PIPELINE_COMMANDS


def test_many_pipelined_commands_returned_by_one_call() -> None:
    data = b"".join(encode_command([b"SET", b"key:%d" % i, b"x" * (i % 50)]) for i in range(1000))
    got = cmds(data)
    assert len(got) == 1000
    assert got[999] == (b"SET", b"key:999", b"x" * (999 % 50))


def test_partial_command_counts_as_buffered() -> None:
    data = encode_command([b"SET", b"k", b"v" * 100])
    proto = RespProtocol()
    assert proto.receive_data(data[:-10]) == []
    assert proto.buffered_bytes == len(data) - 10
    assert [c.args for c in proto.receive_data(data[-10:])] == [(b"SET", b"k", b"v" * 100)]
    assert proto.buffered_bytes == 0


def test_big_bulk_in_many_reads_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bulk's data is not re-scanned on every read while it arrives."""
    value = bytes(range(256)) * 4096  # 1 MiB
    data = encode_command([b"SET", b"k", value])
    proto = RespProtocol()
    calls = []
    real = proto._parse
    monkeypatch.setattr(proto, "_parse", lambda b, pos, out: calls.append(len(b)) or real(b, pos, out))
    got = feed(proto, [data[i:i + 1024] for i in range(0, len(data), 1024)])
    assert got == [(b"SET", b"k", value)]
    assert len(calls) <= 3


@pytest.mark.parametrize("line, words", [
    (b"GET k", [b"GET", b"k"]),
    (b"  SET\tk   v  ", [b"SET", b"k", b"v"]),
    (b'SET k "hello world"', [b"SET", b"k", b"hello world"]),
    (b"SET k 'hello world'", [b"SET", b"k", b"hello world"]),
    (b'SET k "\\x41\\x6a\\n\\r\\t\\b\\a\\"\\\\"', [b"SET", b"k", b"Aj\n\r\t\b\a\"\\"]),
    (b'SET k "\\x4"', [b"SET", b"k", b"x4"]),  # not two hex digits: \x is just x
    (b"SET k 'it\\'s' \"\"", [b"SET", b"k", b"it's", b""]),
    (b"SET k 'a\\nb'", [b"SET", b"k", b"a\\nb"]),  # no escapes in single quotes but \'
    (b'a"b c"d e', None),  # a closing quote followed by 'd'
    (b'a"b c" e', [b"ab c", b"e"]),
    (b"x\x0by", [b"x\x0by"]),  # \v is skipped between words but kept inside one
    (b"\x0b x \x0c", [b"x"]),
    (b"caf\xc3\xa9 \xff", [b"caf\xc3\xa9", b"\xff"]),
])
def test_inline_quoting_as_sdssplitargs(line: bytes, words: list[bytes] | None) -> None:
    if words is None:
        with pytest.raises(RemoteProtocolError, match="unbalanced quotes"):
            cmds(line + b"\r\n")
    else:
        assert cmds(line + b"\r\n") == [tuple(words)]
        assert cmds(line + b"\n") == [tuple(words)]


def test_empty_inline_lines_and_empty_multibulks_are_skipped() -> None:
    assert cmds(b"\r\n\n   \r\n*0\r\n*-1\r\n*-7\r\nPING\r\n") == [(b"PING",)]


MALFORMED: list[tuple[bytes, str]] = [
    (b"*abc\r\n", "Protocol error: invalid multibulk length"),
    (b"*1x\r\n", "Protocol error: invalid multibulk length"),
    (b"*01\r\n", "Protocol error: invalid multibulk length"),
    (b"*+1\r\n", "Protocol error: invalid multibulk length"),
    (b"*\r\n", "Protocol error: invalid multibulk length"),
    (b"*-0\r\n", "Protocol error: invalid multibulk length"),
    (b"*99999999999999999999\r\n", "Protocol error: invalid multibulk length"),
    (b"*2147483648\r\n", "Protocol error: invalid multibulk length"),
    (b"*1\r\n$abc\r\n", "Protocol error: invalid bulk length"),
    (b"*1\r\n$-1\r\n", "Protocol error: invalid bulk length"),
    (b"*1\r\n$01\r\n", "Protocol error: invalid bulk length"),
    (b"*1\r\n$\r\n", "Protocol error: invalid bulk length"),
    (b"*1\r\n$536870913\r\n", "Protocol error: invalid bulk length"),
    (b"*1\r\n$99999999999999999999\r\n", "Protocol error: invalid bulk length"),
    (b"*1\r\nfoo\r\n", "Protocol error: expected '$', got 'f'"),
    (b"*2\r\n$3\r\nGET\r\n:1\r\n", "Protocol error: expected '$', got ':'"),
    (b"*1\r\n\r\n", "Protocol error: expected '$', got ' '"),
    (b'SET k "v\r\n', "Protocol error: unbalanced quotes in request"),
    (b"SET k 'v\r\n", "Protocol error: unbalanced quotes in request"),
    (b'SET k "v"x\r\n', "Protocol error: unbalanced quotes in request"),
    (b"SET k 'v'x\r\n", "Protocol error: unbalanced quotes in request"),
    (b'SET k "v\\"\r\n', "Protocol error: unbalanced quotes in request"),
    (b"a" * (64 * 1024 + 1), "Protocol error: too big inline request"),
    (b"*" + b"1" * (64 * 1024), "Protocol error: too big mbulk count string"),
    (b"*1\r\n$" + b"1" * (64 * 1024), "Protocol error: too big bulk count string"),
    (b"*1\r\n" + b"x" * (64 * 1024 + 1), "Protocol error: too big bulk count string"),
]


@pytest.mark.parametrize("data, text", MALFORMED, ids=[repr(d[:24]) for d, _ in MALFORMED])
def test_malformed_request_raises_with_redis_words(data: bytes, text: str) -> None:
    proto = RespProtocol()
    with pytest.raises(RemoteProtocolError) as info:
        proto.receive_data(data)
    assert str(info.value) == text
    assert proto.error_bytes(info.value) == b"-ERR " + text.encode() + b"\r\n"
    with pytest.raises(LocalProtocolError):
        proto.receive_data(b"PING\r\n")


def test_malformed_request_split_byte_by_byte_raises_the_same() -> None:
    for data, text in MALFORMED:
        if len(data) > 100:
            continue
        proto = RespProtocol()
        with pytest.raises(RemoteProtocolError) as info:
            feed(proto, [data[i:i + 1] for i in range(len(data))])
        assert str(info.value) == text, data


def test_commands_before_the_error_ride_on_it() -> None:
    """Redis runs the commands before the bad bytes, then writes the error."""
    proto = RespProtocol()
    with pytest.raises(RespProtocolError) as info:
        proto.receive_data(b"PING\r\n" + encode_command(["GET", "k"]) + b"*x\r\n")
    assert [c.args for c in info.value.commands] == [(b"PING",), (b"GET", b"k")]
    assert proto.pending == 2
    assert proto.send(SimpleString(text="PONG")) == b"+PONG\r\n"


def test_nul_hides_a_line_end_as_in_redis() -> None:
    """Redis finds line ends with strchr, which stops at a NUL: the line waits."""
    proto = RespProtocol()
    assert proto.receive_data(b"GET a\x00b\r\n") == []
    assert proto.receive_data(b"*1\x00\r\n") == []
    with pytest.raises(RemoteProtocolError, match="too big inline request"):
        proto.receive_data(b"x" * (64 * 1024))


def test_oversize_declared_bulk_is_refused_before_its_data() -> None:
    proto = RespProtocol(bulk_bytes_max=10)
    assert proto.receive_data(b"*2\r\n$3\r\nGET\r\n") == []
    with pytest.raises(RemoteProtocolError, match="invalid bulk length"):
        proto.receive_data(b"$11\r\n")
    # The default limit: 512 MiB + 1 declared, a dozen bytes received.
    proto = RespProtocol()
    with pytest.raises(RemoteProtocolError, match="invalid bulk length"):
        proto.receive_data(b"*1\r\n$536870913\r\n")
    assert proto.buffered_bytes < 100
    assert cmds(b"*1\r\n$10\r\n0123456789\r\n", bulk_bytes_max=10) == [(b"0123456789",)]


def test_multibulk_count_limit() -> None:
    assert RespProtocol(multibulk_len_max=2).receive_data(b"*2\r\n") == []
    with pytest.raises(RemoteProtocolError, match="invalid multibulk length"):
        RespProtocol(multibulk_len_max=2).receive_data(b"*3\r\n")
    with pytest.raises(RemoteProtocolError, match="invalid multibulk length"):
        RespProtocol().receive_data(b"*1048577\r\n")


def test_query_buffer_limit_closes_silently() -> None:
    proto = RespProtocol(buffer_bytes_max=1000)
    proto.receive_data(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000\r\n" + b"x" * 900)
    with pytest.raises(RemoteProtocolError) as info:
        proto.receive_data(b"x" * 200)
    assert "max query buffer" in str(info.value)
    assert proto.error_bytes(info.value) == b""


def test_inline_limit_applies_to_a_whole_line_too() -> None:
    with pytest.raises(RemoteProtocolError, match="too big inline request"):
        cmds(b"a" * 101 + b"\r\n", inline_bytes_max=100)
    assert cmds(b"a" * 100 + b"\n", inline_bytes_max=100) == [(b"a" * 100,)]


# -- replies -------------------------------------------------------------------

RENDERED: list[tuple[Reply, bytes, bytes]] = [
    (OK, b"+OK\r\n", b"+OK\r\n"),
    (SimpleString(text="a\r\nb"), b"+a  b\r\n", b"+a  b\r\n"),
    (SimpleError(text="ERR bad\nthing"), b"-ERR bad thing\r\n", b"-ERR bad thing\r\n"),
    (Integer(value=-42), b":-42\r\n", b":-42\r\n"),
    (BulkString(data=b"a\r\nb"), b"$4\r\na\r\nb\r\n", b"$4\r\na\r\nb\r\n"),
    (NIL, b"$-1\r\n", b"_\r\n"),
    (NIL_ARRAY, b"*-1\r\n", b"_\r\n"),
    (Array(items=(Integer(value=1), NIL)), b"*2\r\n:1\r\n$-1\r\n", b"*2\r\n:1\r\n_\r\n"),
    (Double(value=1.5), b"$3\r\n1.5\r\n", b",1.5\r\n"),
    (Double(value=math.inf), b"$3\r\ninf\r\n", b",inf\r\n"),
    (Double(value=-math.inf), b"$4\r\n-inf\r\n", b",-inf\r\n"),
    (Double(value=math.nan), b"$3\r\nnan\r\n", b",nan\r\n"),
    (Boolean(value=True), b":1\r\n", b"#t\r\n"),
    (Boolean(value=False), b":0\r\n", b"#f\r\n"),
    (Map(pairs=((BulkString(data=b"k"), Integer(value=1)),)), b"*2\r\n$1\r\nk\r\n:1\r\n", b"%1\r\n$1\r\nk\r\n:1\r\n"),
    (Set(items=(BulkString(data=b"m"),)), b"*1\r\n$1\r\nm\r\n", b"~1\r\n$1\r\nm\r\n"),
    (VerbatimString(format="txt", text="hi"), b"$2\r\nhi\r\n", b"=6\r\ntxt:hi\r\n"),
]


@pytest.mark.parametrize("reply, resp2, resp3", RENDERED, ids=[type(r).__name__ for r, _, _ in RENDERED])
def test_render_per_the_replies_table(reply: Reply, resp2: bytes, resp3: bytes) -> None:
    assert render(reply, 2) == resp2
    assert render(reply, 3) == resp3


@pytest.mark.parametrize("x, text", [
    (0.0, b"0"), (-0.0, b"-0"), (3.0, b"3"), (-17.0, b"-17"), (1.5, b"1.5"), (3.1, b"3.1"),
    (0.1 + 0.2, b"0.30000000000000004"), (1e-5, b"0.00001"), (1.5e-7, b"1.5e-7"), (1e16, b"10000000000000000"),
    (2.0**62, b"4611686018427387904"), (1e22, b"1e+22"),
    (12345678901234567890.0, b"12345678901234567000"), (1.7976931348623157e308, b"1.7976931348623157e+308"),
    (5e-324, b"5e-324"), (math.inf, b"inf"), (-math.inf, b"-inf"), (math.nan, b"nan"),
])
def test_doubles_formatted_as_redis(x: float, text: bytes) -> None:
    """Redis 7.2+ d2string: integers within 2**62 as integers, else shortest
    round-trip digits (fpconv's layout)."""
    assert format_double(x) == text
    if not math.isnan(x):
        assert float(text) == x


def test_render_refuses_what_is_not_a_reply() -> None:
    with pytest.raises(LocalProtocolError):
        render("OK", 2)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        render(Array(items=(None,)), 2)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        render(NIL, 4)


def test_encode_command() -> None:
    assert encode_command(["SET", b"k", 12]) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n12\r\n"
    assert encode_command(["é"]) == b"*1\r\n$2\r\n\xc3\xa9\r\n"
    for bad in ([], [True], [1.5], [None]):
        with pytest.raises(LocalProtocolError):
            encode_command(bad)  # type: ignore[arg-type]


# -- the version switch ------------------------------------------------------------

HELLO_REPLY = Map(pairs=((BulkString(data=b"proto"), Integer(value=3)),))


def test_hello_3_switches_before_its_own_reply() -> None:
    proto = RespProtocol()
    got = proto.receive_data(encode_command(["GET", "k"]) + encode_command(["HELLO", "3"]) + b"GET k\r\n")
    assert len(got) == 3
    assert proto.send(NIL) == b"$-1\r\n"  # GET, before HELLO: RESP2
    assert proto.version == 2
    assert proto.send(HELLO_REPLY) == b"%1\r\n$5\r\nproto\r\n:3\r\n"
    assert proto.version == 3
    assert proto.send(NIL) == b"_\r\n"
    proto.receive_data(b"hello 2\r\n")
    assert proto.send(HELLO_REPLY) == b"*2\r\n$5\r\nproto\r\n:3\r\n"
    assert proto.version == 2


def test_hello_refused_or_without_protover_keeps_the_version() -> None:
    proto = RespProtocol()
    proto.receive_data(b"HELLO 3 AUTH u p\r\nHELLO\r\nHELLO 4\r\nHELLO 03\r\n")
    proto.send(SimpleError(text="WRONGPASS invalid username-password pair or user is disabled."))
    for _ in range(3):
        proto.send(HELLO_REPLY)
        assert proto.version == 2
    proto.receive_data(b"HELLO 3 SETNAME c\r\n")
    proto.send(HELLO_REPLY)
    assert proto.version == 3


def test_send_with_nothing_pending_is_local_misuse() -> None:
    proto = RespProtocol()
    with pytest.raises(LocalProtocolError):
        proto.send(OK)
    proto.receive_data(b"PING\r\n")
    assert proto.pending == 1
    proto.send(OK)
    assert proto.pending == 0
    with pytest.raises(LocalProtocolError):
        proto.send(OK)


# -- round trips through RespReader ----------------------------------------------

_text = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=20)
_scalars = st.one_of(
    st.builds(SimpleString, text=_text),
    st.builds(SimpleError, text=_text),
    st.builds(Integer, value=st.integers(-(2**63), 2**63 - 1)),
    st.builds(BulkString, data=st.none() | st.binary(max_size=30)),
    st.builds(Double, value=st.floats(allow_nan=False)),
    st.builds(Boolean, value=st.booleans()),
    st.builds(VerbatimString, format=st.sampled_from(["txt", "mkd"]), text=st.text(max_size=20)),
)
replies = st.recursive(_scalars, lambda inner: st.one_of(
    st.builds(Array, items=st.none() | st.lists(inner, max_size=4).map(tuple)),
    st.builds(Set, items=st.lists(inner, max_size=4).map(tuple)),
    st.builds(Map, pairs=st.lists(st.tuples(inner, inner), max_size=3).map(tuple)),
), max_leaves=12)


def resp3_view(r: Reply) -> Reply:
    """What RESP3 keeps of a reply: its null is one null, read as BulkString(None)."""
    if isinstance(r, Array):
        return NIL if r.items is None else Array(items=tuple(map(resp3_view, r.items)))
    if isinstance(r, Set):
        return Set(items=tuple(map(resp3_view, r.items)))
    if isinstance(r, Map):
        return Map(pairs=tuple((resp3_view(k), resp3_view(v)) for k, v in r.pairs))
    return r


def resp2_view(r: Reply) -> Reply:
    """What RESP2 keeps (the lossy cases of the replies table)."""
    if isinstance(r, Double):
        return BulkString(data=format_double(r.value))
    if isinstance(r, Boolean):
        return Integer(value=int(r.value))
    if isinstance(r, VerbatimString):
        return BulkString(data=r.text.encode())
    if isinstance(r, Map):
        return Array(items=tuple(resp2_view(x) for pair in r.pairs for x in pair))
    if isinstance(r, (Array, Set)):
        return r if r.items is None else Array(items=tuple(map(resp2_view, r.items)))
    return r


@pytest.mark.parametrize("reply", [r for r, _, _ in RENDERED if not {"\r", "\n"} & set(getattr(r, "text", ""))
                                   and not (isinstance(r, Double) and math.isnan(r.value))])
@pytest.mark.parametrize("version", [2, 3])
def test_every_reply_type_round_trips(reply: Reply, version: int) -> None:
    view = resp3_view if version == 3 else resp2_view
    assert RespReader().receive_data(render(reply, version)) == [view(reply)]


@settings(max_examples=300, deadline=None)
@given(st.lists(replies, min_size=1, max_size=5), st.sampled_from([2, 3]), st.data())
def test_round_trip_any_replies_any_split(rs: list[Reply], version: int, data: st.DataObject) -> None:
    view = resp3_view if version == 3 else resp2_view
    wire = b"".join(render(r, version) for r in rs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=6)))
    reader = RespReader()
    got: list[Reply] = []
    for a, b in zip([0, *cuts], [*cuts, len(wire)]):
        got.extend(reader.receive_data(wire[a:b]))
    assert got == [view(r) for r in rs]
    assert reader.buffered_bytes == 0


def test_reader_reads_resp3_extras() -> None:
    """Attributes are dropped, push reads as an array, big numbers as integers,
    blob errors as errors, nan as a double."""
    got = RespReader().receive_data(
        b"|1\r\n+ttl\r\n:3\r\n:7\r\n>2\r\n+message\r\n$1\r\nx\r\n(123456789012345678901234567890\r\n"
        b"!10\r\nERR a\r\nb c\r\n,nan\r\n*2\r\n|1\r\n+k\r\n+v\r\n:1\r\n:2\r\n")
    assert got[:4] == [Integer(value=7), Array(items=(SimpleString(text="message"), BulkString(data=b"x"))),
                       Integer(value=123456789012345678901234567890), SimpleError(text="ERR a\r\nb c")]
    assert math.isnan(got[4].value)
    assert got[5] == Array(items=(Integer(value=1), Integer(value=2)))


@pytest.mark.parametrize("data", [
    b"?x\r\n", b":1.5\r\n", b": 1\r\n", b":1_0\r\n", b",1_0\r\n", b",\r\n", b"#x\r\n", b"_x\r\n",
    b"$3\r\nabcde\r\n", b"$-2\r\n", b"*-2\r\n", b"=2\r\nab\r\n", b"=5\r\nabcde\r\n", b"$01\r\nx\r\n",
    b":99999999999999999999\r\n",
])
def test_reader_refuses_malformed_replies(data: bytes) -> None:
    reader = RespReader()
    with pytest.raises(RemoteProtocolError):
        reader.receive_data(data)
    with pytest.raises(LocalProtocolError):
        reader.receive_data(b"+OK\r\n")


def test_reader_limits() -> None:
    with pytest.raises(RemoteProtocolError):
        RespReader(bulk_bytes_max=10).receive_data(b"$11\r\n")
    with pytest.raises(RemoteProtocolError):
        RespReader(aggregate_len_max=10).receive_data(b"*11\r\n")
    with pytest.raises(RemoteProtocolError):
        RespReader(depth_max=3).receive_data(b"*1\r\n" * 4)
    assert RespReader(depth_max=3).receive_data(b"*1\r\n" * 3 + b":1\r\n") != []
    with pytest.raises(RemoteProtocolError):
        RespReader(line_bytes_max=10).receive_data(b"+" + b"x" * 20)
    with pytest.raises(RemoteProtocolError):
        RespReader(buffer_bytes_max=100).receive_data(b"*2\r\n$200\r\n" + b"x" * 101)


# -- against the real server ---------------------------------------------------------


@pytest.fixture(scope="module")
def redis_socket() -> Iterator[Path]:
    """A redis-server 7 on a Unix socket (no TCP port); skips if absent. Its
    default user may run PING and ECHO only (the fuzz sends random commands)."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not on PATH: cannot compare error texts with Redis")
    with tempfile.TemporaryDirectory() as d:
        sock = Path(d) / "redis.sock"
        proc = subprocess.Popen([exe, "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no",
                                 "--dir", d, "--user", "default", "on", "nopass", "~*", "&*", "-@all", "+ping",
                                 "+echo"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while not sock.exists():
                assert proc.poll() is None, "redis-server exited"
                assert time.monotonic() < deadline, "redis-server did not open its socket in 10 s"
                time.sleep(0.02)
            yield sock
        finally:
            proc.terminate()
            proc.wait(10)


def redis_answer(sock_path: Path, data: bytes, replies: int | None = None, eof: bool = False) -> bytes:
    """What Redis writes for ``data``: until it closes the connection, or
    (``replies`` given) until that many whole replies have come. ``eof``:
    end our side after ``data`` (Redis answers what it has, then closes)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(sock_path))
        s.sendall(data)
        if eof:
            s.shutdown(socket.SHUT_WR)
        out = b""
        reader = RespReader()
        seen = 0
        while chunk := s.recv(65536):
            out += chunk
            if replies is not None:
                seen += len(reader.receive_data(chunk))
                if seen >= replies:
                    break
        return out


@pytest.mark.parametrize("data, text", MALFORMED, ids=[repr(d[:24]) for d, _ in MALFORMED])
def test_error_bytes_equal_redis(redis_socket: Path, data: bytes, text: str) -> None:
    proto = RespProtocol()
    with pytest.raises(RemoteProtocolError) as info:
        proto.receive_data(data)
    assert redis_answer(redis_socket, data) == proto.error_bytes(info.value)


def test_commands_then_error_equal_redis(redis_socket: Path) -> None:
    data = b"PING\r\n" + encode_command(["ECHO", "a\r\nb"]) + b"*1\r\n$x\r\n"
    proto = RespProtocol()
    with pytest.raises(RespProtocolError) as info:
        proto.receive_data(data)
    answers = {(b"PING",): SimpleString(text="PONG"), (b"ECHO", b"a\r\nb"): BulkString(data=b"a\r\nb")}
    ours = b"".join(proto.send(answers[c.args]) for c in info.value.commands) + proto.error_bytes(info.value)
    assert redis_answer(redis_socket, data) == ours


# -- fuzz --------------------------------------------------------------------------

SMALL = {"bulk_bytes_max": 64, "multibulk_len_max": 8, "inline_bytes_max": 128, "buffer_bytes_max": 512}
_FUZZ = settings(max_examples=max(1, FUZZ_EXAMPLES // 4), deadline=None, database=None, derandomize=FUZZ_DERANDOMIZE,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
_fuzz_counts: dict[str, int] = {}


def _count(kind: str) -> None:
    _fuzz_counts[kind] = _fuzz_counts.get(kind, 0) + 1

_request_alphabet = st.sampled_from(b"*$\r\n0123456789-+ \"'\\x\x00abSETGEThello")
_request_bytes = st.one_of(st.binary(max_size=300), st.lists(_request_alphabet, max_size=300).map(bytes))


def _mutate(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    """Apply (kind, position, byte) edits: flip, insert, delete, truncate, duplicate."""
    b = bytearray(data)
    for kind, at, byte in edits:
        at = at % (len(b) + 1)
        if kind == 0 and at < len(b):
            b[at] = byte
        elif kind == 1:
            b.insert(at, byte)
        elif kind == 2 and at < len(b):
            del b[at]
        elif kind == 3:
            del b[at:]
        else:
            b[at:at] = b[max(0, at - 8):at]
    return bytes(b)


_edits = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4)
_valid_requests = st.lists(st.lists(st.binary(max_size=12), min_size=1, max_size=5).map(encode_command),
                           min_size=1, max_size=4).map(b"".join)


def _drive_server(data: bytes, cuts: list[int], limits: dict[str, int]) -> tuple[list[tuple[bytes, ...]], str | None]:
    """Feed ``data`` in pieces: only RemoteProtocolError may come out, and the
    buffer stays within its limit after every read."""
    proto = RespProtocol(**limits)
    got: list[tuple[bytes, ...]] = []
    for a, b in zip([0, *cuts], [*cuts, len(data)]):
        try:
            got.extend(c.args for c in proto.receive_data(data[a:b]))
        except RespProtocolError as e:
            got.extend(c.args for c in e.commands)
            line = proto.error_bytes(e)
            assert line == b"" or (line.startswith(b"-ERR Protocol error: ") and line.index(b"\r\n") == len(line) - 2)
            return got, str(e)
        assert proto.buffered_bytes <= proto.buffer_bytes_max
    return got, None


def _check_server(data: bytes, cuts: list[int], limits: dict[str, int]) -> None:
    whole = _drive_server(data, [], limits)
    split = _drive_server(data, sorted(c % (len(data) + 1) for c in cuts), limits)
    assert split == whole  # how TCP splits the bytes changes nothing, errors included


@_FUZZ
@given(_request_bytes, st.lists(st.integers(0, 400), max_size=5), st.sampled_from([SMALL, {}]))
def test_fuzz_request_parser_random_bytes(data: bytes, cuts: list[int], limits: dict[str, int]) -> None:
    _count("server random")
    _check_server(data, cuts, limits)


@_FUZZ
@given(_valid_requests, _edits, st.lists(st.integers(0, 400), max_size=5), st.sampled_from([SMALL, {}]))
def test_fuzz_request_parser_mutated_frames(data: bytes, edits: list[tuple[int, int, int]], cuts: list[int],
                                            limits: dict[str, int]) -> None:
    _count("server mutated")
    _check_server(_mutate(data, edits), cuts, limits)


_reply_alphabet = st.sampled_from(b"+-:$*_,#!=(%~>|\r\n0123456789-.eEtfinaxt")
_reply_bytes = st.one_of(st.binary(max_size=300), st.lists(_reply_alphabet, max_size=300).map(bytes))
SMALL_READER = {"bulk_bytes_max": 64, "aggregate_len_max": 8, "depth_max": 4, "line_bytes_max": 64,
                "buffer_bytes_max": 512}


def _drive_reader(data: bytes, cuts: list[int], limits: dict[str, int]) -> tuple[list[Reply], bool]:
    reader = RespReader(**limits)
    got: list[Reply] = []
    for a, b in zip([0, *cuts], [*cuts, len(data)]):
        try:
            got.extend(reader.receive_data(data[a:b]))
        except RespProtocolError as e:
            got.extend(e.replies)
            return got, True
        assert reader.buffered_bytes <= reader.buffer_bytes_max
    return got, False


def _check_reader(data: bytes, cuts: list[int], limits: dict[str, int]) -> None:
    whole = _drive_reader(data, [], limits)
    split = _drive_reader(data, sorted(c % (len(data) + 1) for c in cuts), limits)
    # Equal as bytes re-rendered (a nan double is not equal to itself).
    assert [render(r, 3) for r in split[0]] == [render(r, 3) for r in whole[0]]
    assert split[1] == whole[1]


@_FUZZ
@given(_reply_bytes, st.lists(st.integers(0, 400), max_size=5), st.sampled_from([SMALL_READER, {}]))
def test_fuzz_reply_reader_random_bytes(data: bytes, cuts: list[int], limits: dict[str, int]) -> None:
    _count("reader random")
    _check_reader(data, cuts, limits)


@_FUZZ
@given(st.lists(replies, min_size=1, max_size=3), st.sampled_from([2, 3]), _edits,
       st.lists(st.integers(0, 400), max_size=5), st.sampled_from([SMALL_READER, {}]))
def test_fuzz_reply_reader_mutated_frames(rs: list[Reply], version: int, edits: list[tuple[int, int, int]],
                                          cuts: list[int], limits: dict[str, int]) -> None:
    _count("reader mutated")
    _check_reader(_mutate(b"".join(render(r, version) for r in rs), edits), cuts, limits)


@settings(max_examples=max(1, FUZZ_EXAMPLES // 10), deadline=None, database=None, derandomize=FUZZ_DERANDOMIZE,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_fuzz_requests_against_redis(redis_socket: Path, draw: st.DataObject) -> None:
    """Random and mutated requests to us and to Redis 7: where we refuse, Redis
    answers the same commands then the same error line; where we parse whole
    commands, Redis answers each of them and a PING after them; where we wait
    for more, Redis answers the whole commands and waits too."""
    data = draw.draw(st.one_of(_request_bytes, st.tuples(_valid_requests, _edits).map(lambda t: _mutate(*t))))
    proto = RespProtocol(multibulk_len_max=2**31 - 1)  # Redis 7's bound
    try:
        commands = proto.receive_data(data)
    except RespProtocolError as e:
        _count("redis: both refuse")
        out = redis_answer(redis_socket, data)
        assert out.endswith(proto.error_bytes(e)), (data, out)
        assert len(RespReader().receive_data(out)) == len(e.commands) + 1, (data, out)
        return
    if proto.buffered_bytes:
        # We wait for more bytes: so must Redis, having answered the whole commands.
        _count("redis: both wait")
        replies = RespReader().receive_data(redis_answer(redis_socket, data, eof=True))
        assert len(replies) == len(commands), data
        assert not any(isinstance(r, SimpleError) and "Protocol error" in r.text for r in replies), data
        return
    _count("redis: both accept")
    out = redis_answer(redis_socket, data + b"PING\r\n", len(commands) + 1)
    replies = RespReader().receive_data(out)
    assert len(replies) == len(commands) + 1, (data, out)
    assert replies[-1] == SimpleString(text="PONG"), (data, out)


def test_fuzz_report() -> None:
    """Prints how many fuzz examples ran (with -s); runs after the fuzz tests."""
    print(f"\nRESP fuzz: {sum(_fuzz_counts.values())} examples, 0 crashes; " +
          ", ".join(f"{k} {v}" for k, v in sorted(_fuzz_counts.items())))


def test_the_reply_to_quit_asks_the_gateway_to_close() -> None:
    """QUIT is answered +OK, then the connection closes (Redis's QUIT):
    ``wants_close`` turns true when that reply is rendered, not before."""
    p = RespProtocol()
    cmds = p.receive_data(b"PING\r\n*1\r\n$4\r\nquit\r\nPING\r\n")
    assert [c.args[0] for c in cmds] == [b"PING", b"quit", b"PING"]
    assert p.send(SimpleString(text="PONG")) == b"+PONG\r\n" and not p.wants_close
    assert p.send(SimpleString(text="OK")) == b"+OK\r\n" and p.wants_close
