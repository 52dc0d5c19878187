"""Checksummed records (DESIGN.md section 4): torn appends and flipped bits
are detected, never silently used."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synod.core import checksum, pack_record, scan_records
from synod.core.records import RECORD_HEADER_BYTES

PAYLOADS = [b"first", b"", b"third record, a little longer", bytes(range(256))]


def _log(payloads: list[bytes]) -> bytes:
    return b"".join(pack_record(p) for p in payloads)


def test_checksum_is_crc32c() -> None:
    # The standard CRC-32C check value (RFC 3720, appendix B.4).
    assert checksum(b"123456789") == 0xE3069283


def test_records_round_trip() -> None:
    data = _log(PAYLOADS)
    scan = scan_records(data)
    assert scan.records == PAYLOADS
    assert scan.valid_bytes == len(data)
    assert scan.error is None
    assert scan_records(b"").records == []
    assert scan_records(b"").error is None


def test_record_layout_is_length_crc_header_crc_payload() -> None:
    rec = pack_record(b"abc")
    assert len(rec) == RECORD_HEADER_BYTES + 3
    assert int.from_bytes(rec[:4], "big") == 3
    assert int.from_bytes(rec[4:8], "big") == checksum(b"abc")
    assert int.from_bytes(rec[8:12], "big") == checksum(rec[:8])
    assert rec[12:] == b"abc"


def test_every_torn_tail_is_detected_and_the_good_prefix_kept() -> None:
    good = _log(PAYLOADS[:-1])
    last = pack_record(PAYLOADS[-1])
    for cut in range(1, len(last)):
        scan = scan_records(good + last[:cut])
        assert scan.records == PAYLOADS[:-1], cut
        assert scan.valid_bytes == len(good), cut
        assert scan.error is not None, cut
        assert scan.error.startswith("torn"), (cut, scan.error)
        assert scan.torn and not scan.corrupt, cut
        assert scan.error.endswith(f"at {len(good)}"), (cut, scan.error)


def test_every_single_bit_flip_is_detected() -> None:
    payloads = [b"alpha", b"beta", b"gamma-delta"]
    data = _log(payloads)
    for bit in range(len(data) * 8):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        scan = scan_records(bytes(flipped))
        assert scan.error is not None, f"bit {bit} flip not detected"
        # A flipped bit is never mistaken for a torn tail (PAR, FAST 2018):
        # not even one in the last record's length field.
        assert scan.corrupt, (bit, scan.error)
        # What is returned is an untouched prefix of what was written.
        assert scan.records == payloads[: len(scan.records)], bit
        assert bit // 8 >= scan.valid_bytes, bit


def test_bit_flip_in_payload_is_a_checksum_mismatch_at_that_record() -> None:
    data = bytearray(_log([b"one", b"two"]))
    second = RECORD_HEADER_BYTES + 3
    data[second + RECORD_HEADER_BYTES] ^= 0x01
    scan = scan_records(bytes(data))
    assert scan.records == [b"one"]
    assert scan.error == f"checksum mismatch at {second}"
    assert scan.corrupt


def test_a_grown_length_field_is_corruption_not_a_torn_tail() -> None:
    # Without the header checksum this looks like a record cut short.
    data = bytearray(_log([b"one", b"two"]))
    second = RECORD_HEADER_BYTES + 3
    data[second] ^= 0x80
    scan = scan_records(bytes(data))
    assert scan.records == [b"one"]
    assert scan.error == f"header checksum mismatch at {second}"
    assert scan.corrupt


@pytest.mark.parametrize("zeros", [RECORD_HEADER_BYTES, 4096])
def test_a_zero_filled_tail_is_torn(zeros: int) -> None:
    # A file system may extend a file with zeros when a crash cuts an append.
    good = _log([b"one", b"two"])
    scan = scan_records(good + b"\0" * zeros)
    assert scan.records == [b"one", b"two"]
    assert scan.torn
    assert scan.error == f"zero-filled tail at {len(good)}"


def test_zeros_in_the_middle_are_corruption() -> None:
    data = _log([b"one"]) + b"\0" * 20 + _log([b"two"])
    assert scan_records(data).corrupt


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=6), st.binary(max_size=60))
def test_scanning_any_bytes_returns_a_prefix_or_an_error(payloads: list[bytes], junk: bytes) -> None:
    data = _log(payloads) + junk
    scan = scan_records(data)
    assert scan.records[: len(payloads)] == payloads[: len(scan.records)]
    assert 0 <= scan.valid_bytes <= len(data)
    assert (scan.error is None) == (scan.valid_bytes == len(data))


@pytest.mark.parametrize("n", [0, 1, 7])
def test_a_short_header_is_a_torn_header(n: int) -> None:
    data = pack_record(b"ok") + b"\x00" * n
    scan = scan_records(data)
    assert scan.records == [b"ok"]
    if n:
        assert scan.error == f"torn record header at {len(pack_record(b'ok'))}"
    else:
        assert scan.error is None
