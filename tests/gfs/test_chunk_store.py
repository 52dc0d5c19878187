"""A chunkserver's replicas with block checksums (Ghemawat et al., SOSP
2003, section 5.2): every read verifies the blocks it touches, corruption
is reported and never returned, and what a crash leaves is either the
synced data or a block that fails its checksum."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synod.core.errors import LocalProtocolError
from synod.gfs._chunk_store import ChunkCorrupt, ChunkStore
from synod.sim.disk import DiskFaults, SimDisk

BLOCK = 16
CHUNK = 8 * BLOCK


def _store(disk: SimDisk | None = None) -> ChunkStore:
    return ChunkStore(disk or SimDisk(random.Random(1)), CHUNK, block_size_bytes=BLOCK)


def test_appends_and_overwrites_across_blocks_read_back() -> None:
    s = _store()
    s.create(7, version=1)
    assert s.append(7, b"a" * 20) == 0
    assert s.append(7, b"b" * 20) == 20
    s.write(7, 10, b"X" * 15)          # across the first block boundary
    want = b"a" * 10 + b"X" * 15 + b"b" * 15
    assert s.read(7, 0, 100) == want
    assert s.read(7, 14, 5) == want[14:19]
    assert s.read(7, 40, 5) == b""
    s.write(7, 50, b"Z")               # past the end: the gap reads as zeros
    assert s.read(7, 38, 20) == want[38:] + bytes(10) + b"Z"
    assert s.size(7) == 51


def test_a_restart_loads_versions_and_checksums() -> None:
    disk = SimDisk(random.Random(2))
    s = _store(disk)
    s.create(1, version=1)
    s.create(2, version=3)
    s.append(1, b"hello world, " * 4)
    s.set_version(1, 2)
    t = _store(disk)
    assert t.load() == []
    assert t.held() == [(1, 2), (2, 3)]
    assert t.read(1, 0, 100) == b"hello world, " * 4


def test_section_5_2_a_corrupt_block_is_reported_never_returned_and_not_rechecksummed() -> None:
    disk = SimDisk(random.Random(3))
    s = _store(disk)
    s.create(5, version=1)
    s.append(5, bytes(range(48)))
    disk.write_at("chunks/5", 20, b"\xff")   # a bit rot in block 1
    with pytest.raises(ChunkCorrupt) as e:
        s.read(5, 0, 48)
    assert e.value.block == 1
    assert s.read(5, 0, 16) == bytes(range(16))          # other blocks still read
    assert s.read(5, 32, 16) == bytes(range(32, 48))
    with pytest.raises(ChunkCorrupt):
        s.write(5, 24, b"new")                           # keeps bad bytes of block 1: refused
    with pytest.raises(ChunkCorrupt):
        s.read(5, 16, 1)
    s.write(5, 16, b"N" * 16)                            # the whole block replaced: good again
    assert s.read(5, 16, 16) == b"N" * 16


def test_damaged_records_drop_the_replica_at_start() -> None:
    disk = SimDisk(random.Random(4))
    s = _store(disk)
    s.create(9, version=1)
    s.append(9, b"data")
    raw = bytearray(disk.read("chunks/9.meta"))
    raw[14] ^= 1
    disk.write("chunks/9.meta", bytes(raw))
    t = _store(disk)
    assert t.load() == [9]
    assert t.held() == []
    assert disk.read("chunks/9") is None


def test_the_chunk_size_is_a_hard_limit() -> None:
    s = _store()
    s.create(1, version=1)
    s.append(1, bytes(CHUNK))
    with pytest.raises(LocalProtocolError):
        s.append(1, b"x")
    with pytest.raises(LocalProtocolError):
        s.read(2, 0, 1)
    with pytest.raises(LocalProtocolError):
        s.create(1, version=1)
    with pytest.raises(LocalProtocolError):
        ChunkStore(SimDisk(random.Random(5)), 100, block_size_bytes=BLOCK)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["append", "write", "sync"]), st.integers(0, CHUNK - 1),
                          st.binary(min_size=1, max_size=40)), max_size=25),
       st.integers(0, 2**32))
def test_after_a_crash_a_read_returns_the_synced_bytes_or_reports_corruption(ops: list, seed: int) -> None:
    """Crash with torn appends on: each block either reads as it was at the
    last sync (or as written later, if the change survived whole) or is
    reported corrupt; it never returns other bytes."""
    disk = SimDisk(random.Random(seed), DiskFaults(torn_append_probability=0.5))
    s = _store(disk)
    s.create(1, version=1)
    disk.make_durable()
    model = bytearray()            # the replica's bytes as written
    synced = b""
    for op, offset, data in ops:
        if op == "sync":
            disk.make_durable()
            synced = bytes(model)
            continue
        if op == "append":
            offset = len(model)
        offset = min(offset, len(model))
        data = data[:CHUNK - offset]
        if not data:
            continue
        s.write(1, offset, data)
        model[offset:offset + len(data)] = data
    disk.crash()
    t = _store(disk)
    t.load()
    if 1 not in dict(t.held()):
        return   # records unreadable: the replica is dropped (re-replicated by the master)
    size = t.size(1)
    for block in range(0, (size + BLOCK - 1) // BLOCK):
        try:
            got = t.read(1, block * BLOCK, BLOCK)
        except ChunkCorrupt:
            continue
        assert len(got) == min(BLOCK, size - block * BLOCK), (block, got)
        whole = (synced[block * BLOCK:block * BLOCK + len(got)], bytes(model[block * BLOCK:block * BLOCK + len(got)]))
        assert got in whole, (block, got)


def test_section_3_4_copy_on_write_makes_a_local_copy_of_a_good_replica_only() -> None:
    disk = SimDisk(random.Random(6))
    s = _store(disk)
    s.create(1, version=4)
    s.append(1, b"snapshot me " * 3)
    s.copy(1, 2)
    assert s.held() == [(1, 4), (2, 4)]
    s.write(2, 0, b"CHANGED")
    assert s.read(1, 0, 7) == b"snapsho"          # the original is untouched
    assert s.read(2, 0, 12) == b"CHANGED" + b"t me "
    disk.write_at("chunks/1", 3, b"?")             # rot in the original
    with pytest.raises(ChunkCorrupt):
        s.copy(1, 3)
    assert 3 not in dict(s.held())
    with pytest.raises(LocalProtocolError):
        s.copy(1, 2)
