"""Checksummed records for append-only logs and files on disk (DESIGN.md section 4).

A record is ``length (4 bytes, big-endian) | crc32c(payload) (4 bytes) | payload``.
A reader stops at the first record that is short (a torn append) or whose
checksum does not match (a flipped bit), and says so: a corrupt file is
reported, never silently used.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import crc32c as _crc32c

__all__ = ["pack_record", "scan_records", "RecordScan", "RECORD_HEADER_BYTES", "checksum"]

RECORD_HEADER_BYTES = 8
_HEADER = struct.Struct(">II")


def checksum(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``, as a non-negative int."""
    return _crc32c.crc32c(data)


def pack_record(payload: bytes) -> bytes:
    """Frame ``payload`` as one checksummed record."""
    return _HEADER.pack(len(payload), _crc32c.crc32c(payload)) + payload


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordScan:
    """What :func:`scan_records` found.

    ``records``: the payloads of the good prefix, in order. ``valid_bytes``:
    length of that prefix. ``error``: None if the whole input was good records,
    else why scanning stopped (``"torn record at 4096"``, ``"checksum mismatch
    at 0"``).
    """

    records: list[bytes]
    valid_bytes: int
    error: str | None


def scan_records(data: bytes) -> RecordScan:
    """Split ``data`` into records, stopping at the first torn or corrupt one."""
    records: list[bytes] = []
    pos = 0
    end = len(data)
    view = memoryview(data)
    while pos < end:
        if end - pos < RECORD_HEADER_BYTES:
            return RecordScan(records=records, valid_bytes=pos, error=f"torn record header at {pos}")
        length, crc = _HEADER.unpack_from(data, pos)
        start = pos + RECORD_HEADER_BYTES
        if end - start < length:
            return RecordScan(records=records, valid_bytes=pos, error=f"torn record at {pos}")
        payload = bytes(view[start : start + length])
        if _crc32c.crc32c(payload) != crc:
            return RecordScan(records=records, valid_bytes=pos, error=f"checksum mismatch at {pos}")
        records.append(payload)
        pos = start + length
    return RecordScan(records=records, valid_bytes=pos, error=None)
