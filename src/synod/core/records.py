"""Checksummed records for append-only logs and files on disk (DESIGN.md section 4).

A record is ``length (4 bytes, big-endian) | crc32c(payload) (4) |
crc32c(the first 8 header bytes) (4) | payload``. The header has its own
checksum so that a flipped bit in a length field is told from a write that
was cut short.

A reader stops at the first record that is not good and says which of two
kinds of damage it found, because a replicated log must treat them
differently (Alagappan et al., "Protocol-Aware Recovery for Consensus-Based
Storage", FAST 2018, section 3):

- *torn*: the file ends inside a record whose header is intact (or inside
  the header itself), or everything from the damage to the end is zero
  bytes. That is what a crash during the last append leaves (a prefix of
  what was written, or a file extended with zeros); those bytes were never
  synced, so nothing that depends on them was ever acknowledged;
- *corrupt*: a header or payload checksum mismatch in a record that is all
  there. A disk changed bytes at rest: the record may have been synced and
  acknowledged long ago.

Every single flipped bit in a file of records is reported as corrupt, never
as torn (a test checks each bit).

A node that finds its file damaged keeps the whole file aside for the
operator (:func:`keep_aside`: ``<path>.corrupt-<n>``, a warning) and goes on
with the records it could read.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import google_crc32c as _crc32c

if TYPE_CHECKING:  # pragma: no cover
    from synod.core.node import Context

__all__ = ["pack_record", "record_header", "scan_records", "resync", "keep_aside", "RecordScan",
           "RECORD_HEADER_BYTES", "checksum"]

RECORD_HEADER_BYTES = 12
_LENGTH_CRC = struct.Struct(">II")
_HEADER = struct.Struct(">III")


def checksum(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``, as a non-negative int."""
    return _crc32c.value(data if type(data) is bytes else bytes(data))


def record_header(payload: bytes) -> bytes:
    """The ``RECORD_HEADER_BYTES`` that frame ``payload`` (bytes, under 4
    GiB) as one checksummed record, to be written just before it: for a
    caller that joins many records into one buffer without copying each."""
    head = _LENGTH_CRC.pack(len(payload), _crc32c.value(payload))
    return head + _crc32c.value(head).to_bytes(4, "big")


def pack_record(payload: bytes) -> bytes:
    """Frame ``payload`` (bytes, under 4 GiB) as one checksummed record."""
    if type(payload) is not bytes:
        payload = bytes(payload)
    return record_header(payload) + payload


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordScan:
    """What :func:`scan_records` found.

    ``records``: the payloads of the good prefix, in order. ``valid_bytes``:
    length of that prefix (also the offset of the damage, if any).
    ``error``: None if the whole input was good records, else why scanning
    stopped (``"torn record at 4096"``, ``"checksum mismatch at 0"``).
    ``torn``: the damage is a torn tail (safe to cut); False for corruption
    and when there is no damage.
    """

    records: list[bytes]
    valid_bytes: int
    error: str | None
    torn: bool = False

    @property
    def corrupt(self) -> bool:
        """The input holds damage that is not a torn tail."""
        return self.error is not None and not self.torn


def scan_records(data: bytes) -> RecordScan:
    """Split ``data`` into records, stopping at the first torn or corrupt one."""
    records: list[bytes] = []
    pos = 0
    if type(data) is not bytes:
        data = bytes(data)  # the checksum extension reads bytes only
    end = len(data)
    crc = _crc32c.value
    while pos < end:
        if end - pos < RECORD_HEADER_BYTES:
            return _damaged(data, records, pos, f"torn record header at {pos}", torn=True)
        length, payload_crc, header_crc = _HEADER.unpack_from(data, pos)
        if crc(data[pos : pos + 8]) != header_crc:
            return _damaged(data, records, pos, f"header checksum mismatch at {pos}", torn=False)
        start = pos + RECORD_HEADER_BYTES
        if end - start < length:
            return _damaged(data, records, pos, f"torn record at {pos}", torn=True)
        payload = data[start : start + length]
        if crc(payload) != payload_crc:
            return _damaged(data, records, pos, f"checksum mismatch at {pos}", torn=False)
        records.append(payload)
        pos = start + length
    return RecordScan(records=records, valid_bytes=pos, error=None)


def _damaged(data: bytes, records: list[bytes], pos: int, error: str, *, torn: bool) -> RecordScan:
    if not torn and not data[pos:].strip(b"\0"):
        torn, error = True, f"zero-filled tail at {pos}"
    return RecordScan(records=records, valid_bytes=pos, error=error, torn=torn)


def resync(data: bytes, pos: int) -> int | None:
    """The first offset after ``pos`` where a whole good record starts (its
    header and payload checksums match), or None. Used to see past a
    corrupt record: what follows it tells how much was lost. A false match
    needs two 32-bit checksums to agree by chance."""
    if type(data) is not bytes:
        data = bytes(data)
    end = len(data)
    crc = _crc32c.value
    for q in range(pos + 1, end - RECORD_HEADER_BYTES + 1):
        length, payload_crc, header_crc = _HEADER.unpack_from(data, q)
        if crc(data[q : q + 8]) != header_crc or end - q - RECORD_HEADER_BYTES < length:
            continue
        start = q + RECORD_HEADER_BYTES
        if crc(data[start : start + length]) == payload_crc:
            return q
    return None


def keep_aside(ctx: Context, path: str, raw: bytes, records: Sequence[bytes], error: str) -> str:
    """A damaged file of records, as a node finds it at start: keep its
    bytes ``raw`` whole as ``<path>.corrupt-<n>`` (the first n not taken),
    rewrite ``path`` as ``records`` alone (the payloads it could read),
    sync, and tell the operator (``ctx.warn``: a ``warning`` trace event,
    and a WARNING line in a real node's log) why (``error``, as
    :class:`RecordScan` gives it). Returns the name kept aside."""
    n = 0
    taken = set(ctx.disk.list(path + ".corrupt-"))
    while f"{path}.corrupt-{n}" in taken:
        n += 1
    kept = f"{path}.corrupt-{n}"
    ctx.disk.write(kept, raw)
    ctx.disk.write(path, b"".join(pack_record(r) for r in records))
    ctx.disk.sync()
    ctx.warn(f"{path}: {error}; kept aside as {kept}, {len(records)} records kept", path=path, kept_as=kept)
    return kept
