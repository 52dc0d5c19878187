"""Jute primitives and typed records (synod.zk.jute; ZooKeeper's
BinaryInputArchive / BinaryOutputArchive and zookeeper.jute)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.zk._strategies import records

from synod.core.errors import LocalProtocolError, RemoteProtocolError
from synod.zk import messages as m
from synod.zk.jute import JuteReader, JuteWriter, decode_record, encode_record, record_schema


def test_primitives_are_big_endian_and_round_trip() -> None:
    w = JuteWriter()
    w.write_int(-2)
    w.write_long(1 << 40)
    w.write_bool(True)
    w.write_buffer(b"ab")
    w.write_buffer(None)
    w.write_ustring("é")
    w.write_count(3)
    raw = w.getvalue()
    assert raw == (b"\xff\xff\xff\xfe" + struct.pack(">q", 1 << 40) + b"\x01" + b"\x00\x00\x00\x02ab"
                   + b"\xff\xff\xff\xff" + b"\x00\x00\x00\x02\xc3\xa9" + b"\x00\x00\x00\x03")
    r = JuteReader(raw)
    assert r.read_int() == -2
    assert r.read_long() == 1 << 40
    assert r.read_bool() is True
    assert r.read_buffer() == b"ab"
    assert r.read_buffer() is None
    assert r.read_ustring() == "é"
    assert r.remaining == 4


def test_null_ustring_and_vector_read_as_empty_and_any_nonzero_byte_is_true() -> None:
    r = JuteReader(b"\xff\xff\xff\xff" + b"\xff\xff\xff\xff" + b"\x07")
    assert r.read_ustring() == ""
    assert r.read_count(4) == 0
    assert r.read_bool() is True


@pytest.mark.parametrize(("data", "read"), [
    (b"\x00\x00\x00", lambda r: r.read_int()),
    (b"\x00" * 7, lambda r: r.read_long()),
    (b"", lambda r: r.read_bool()),
    (b"\x00\x00\x00\x05abc", lambda r: r.read_buffer()),
    (b"\xff\xff\xff\xfe", lambda r: r.read_buffer()),
    (b"\x00\x00\x00\x02\xc3\x28", lambda r: r.read_ustring()),
    (b"\x00\x00\x00\x01\xed\xa0\x80", lambda r: r.read_ustring()),  # a lone surrogate is not UTF-8
    (b"\x7f\xff\xff\xff", lambda r: r.read_ustring()),
    (b"\x00\x00\x00\x03" + b"\x00" * 11, lambda r: r.read_count(4)),
    (b"\xff\xff\xff\xfd", lambda r: r.read_count(1)),
])
def test_short_or_malformed_values_raise_remote_protocol_error(data: bytes, read) -> None:
    with pytest.raises(RemoteProtocolError):
        read(JuteReader(data))


def test_buffer_over_the_limit_is_refused_before_reading_it() -> None:
    r = JuteReader(b"\x00\x00\x00\x09" + b"x" * 9, buffer_bytes_max=8)
    with pytest.raises(RemoteProtocolError, match="jute.maxbuffer"):
        r.read_buffer()
    assert JuteReader(b"\x00\x00\x00\x08" + b"x" * 8, buffer_bytes_max=8).read_buffer() == b"x" * 8


def test_vector_count_is_bounded_by_the_bytes_left() -> None:
    # 4 ACLs need at least 4 * 12 bytes.
    with pytest.raises(RemoteProtocolError, match="cannot fit"):
        decode_record(m.GetACLResponse, b"\x00\x00\x00\x04" + b"\x00" * 40)


@pytest.mark.parametrize("bad", [2**31, -(2**31) - 1, True, "1"])
def test_writer_refuses_values_out_of_range(bad) -> None:
    with pytest.raises(LocalProtocolError):
        JuteWriter().write_int(bad)


def test_writer_refuses_wrong_types_and_oversize_buffers() -> None:
    with pytest.raises(LocalProtocolError):
        JuteWriter().write_long(2**63)
    with pytest.raises(LocalProtocolError):
        JuteWriter().write_bool(1)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        JuteWriter().write_ustring(b"x")  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        JuteWriter().write_ustring("\ud800")
    with pytest.raises(LocalProtocolError):
        JuteWriter(buffer_bytes_max=2).write_buffer(b"abc")
    with pytest.raises(LocalProtocolError):
        encode_record(m.GetChildrenResponse(children="ab"))  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        encode_record(m.ACL(perms=1, id="world"))  # type: ignore[arg-type]


def test_stat_layout_is_zookeepers() -> None:
    """data.Stat: 11 fields, longs and ints in jute order (68 bytes)."""
    assert [name for name, _ in record_schema(m.Stat)] == [
        "czxid", "mzxid", "ctime", "mtime", "version", "cversion", "aversion", "ephemeralOwner", "dataLength",
        "numChildren", "pzxid"]
    stat = m.Stat(czxid=1, mzxid=2, ctime=3, mtime=4, version=5, cversion=6, aversion=7, ephemeralOwner=8,
                  dataLength=9, numChildren=10, pzxid=11)
    assert encode_record(stat) == struct.pack(">qqqqiiiqiiq", *range(1, 12))


def test_decode_record_refuses_trailing_bytes() -> None:
    with pytest.raises(RemoteProtocolError, match="after"):
        decode_record(m.SyncResponse, b"\x00\x00\x00\x01/x")


_PLAIN = sorted((c for c in (getattr(m, n) for n in m.__all__) if isinstance(c, type) and hasattr(c, "__struct_fields__")
                 and c not in (m.MultiRequest, m.MultiReadRequest, m.MultiResponse, m.Reply)), key=lambda c: c.__name__)


@pytest.mark.parametrize("cls", _PLAIN, ids=lambda c: c.__name__)
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_every_record_round_trips(cls: type, data: st.DataObject) -> None:
    rec = data.draw(records(cls))
    assert decode_record(cls, encode_record(rec)) == rec
