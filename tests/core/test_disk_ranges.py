"""``ctx.disk``'s ranged reads and in-place writes (core.Disk), the same in
both worlds: what a GFS chunkserver needs to read and write 64 KB blocks of
a 64 MB chunk without moving the whole file."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from synod.core.errors import LocalProtocolError
from synod.runtime.disk import FileDisk
from synod.sim.disk import DiskFaults, SimDisk


@pytest.fixture(params=["sim", "file"])
def disk(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sim":
        return SimDisk(random.Random(1))
    return FileDisk(tmp_path / "data")


def test_ranges_read_and_overwrite_in_place(disk: Any) -> None:
    assert disk.read_range("c/1", 0, 10) is None
    disk.write_at("c/1", 0, b"abcdef")
    disk.write_at("c/1", 2, b"XY")
    assert disk.read("c/1") == b"abXYef"
    disk.write_at("c/1", 8, b"Z")            # past the end: the gap reads as zeros
    assert disk.read("c/1") == b"abXYef\x00\x00Z"
    disk.write_at("c/1", 9, b"!")            # at the end: an append
    assert disk.read_range("c/1", 1, 4) == b"bXYe"
    assert disk.read_range("c/1", 8, 100) == b"Z!"   # clipped at the end
    assert disk.read_range("c/1", 50, 5) == b""
    disk.append("c/1", b"++")
    assert disk.read_range("c/1", 9, 3) == b"!++"
    assert disk.list("c/") == ["c/1"]


@pytest.mark.parametrize("offset, length", [(-1, 1), (0, -1)])
def test_a_negative_range_is_refused(disk: Any, offset: int, length: int) -> None:
    disk.write("f", b"x")
    with pytest.raises(LocalProtocolError):
        disk.read_range("f", offset, length)
    if length >= 0:
        with pytest.raises(LocalProtocolError):
            disk.write_at("f", offset, b"y")


def test_sim_an_unsynced_overwrite_is_lost_in_a_crash_a_synced_one_is_not() -> None:
    disk = SimDisk(random.Random(2))
    disk.write_at("c", 0, b"aaaa")
    disk.make_durable()
    disk.write_at("c", 1, b"bb")
    disk.crash()
    assert disk.read("c") == b"aaaa"
    disk.write_at("c", 1, b"bb")
    disk.make_durable()
    disk.crash()
    assert disk.read("c") == b"abba"


def test_sim_a_corrupt_read_flips_one_bit_of_the_range_read() -> None:
    disk = SimDisk(random.Random(3), DiskFaults(read_corruption_probability=1.0))
    disk.write_at("c", 0, bytes(64))
    got = disk.read_range("c", 16, 8)
    assert got is not None and len(got) == 8
    assert sum(bin(b).count("1") for b in got) == 1
