"""FileDisk: ctx.disk on a real file system (DESIGN.md section 4)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from synod.core.errors import LocalProtocolError
from synod.core.records import pack_record, scan_records
from synod.runtime.disk import (
    DIRECT_IO_ALIGN_BYTES,
    DIRECT_IO_BUFFER_BYTES,
    DIRECT_IO_BYTES_MIN,
    TMP_SUFFIX,
    FileDisk,
)


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the path of every fsynced descriptor."""
    seen: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        seen.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return seen


def test_read_write_append_rename_delete_list(tmp_path: Path) -> None:
    disk = FileDisk(tmp_path / "data")
    assert disk.read("missing") is None
    disk.write("a", b"one")
    disk.append("log/wal-1", b"x")
    disk.append("log/wal-1", b"yz")
    assert disk.read("a") == b"one"
    assert disk.read("log/wal-1") == b"xyz"
    assert disk.list() == ["a", "log/wal-1"]
    assert disk.list("log/") == ["log/wal-1"]
    assert disk.list("lo") == ["log/wal-1"]
    disk.rename("log/wal-1", "log/wal-2")
    assert disk.read("log/wal-1") is None
    assert disk.read("log/wal-2") == b"xyz"
    disk.append("log/wal-2", b"!")  # appending after a rename reopens the new name
    assert disk.read("log/wal-2") == b"xyz!"
    disk.delete("a")
    disk.delete("a")  # deleting a missing file is a no-op
    assert disk.list() == ["log/wal-2"]
    with pytest.raises(LocalProtocolError, match="no such file"):
        disk.rename("a", "b")
    assert disk.bytes_written == 3 + 3 + 1
    disk.close()


@pytest.mark.parametrize("bad", ["", "/abs", "../up", "a/../../b", "x" + TMP_SUFFIX])
def test_paths_must_be_relative_and_not_temp_names(tmp_path: Path, bad: str) -> None:
    disk = FileDisk(tmp_path)
    with pytest.raises(LocalProtocolError):
        disk.write(bad, b"x")


def test_write_is_temp_file_fsync_rename(tmp_path: Path, fsyncs: list[str]) -> None:
    disk = FileDisk(tmp_path)
    disk.write("dir/state", b"v1")
    # The temp file was fsynced before the rename; nothing else yet.
    assert fsyncs == [str(tmp_path.resolve() / "dir" / "state") + TMP_SUFFIX]
    assert not disk.sync_requested
    assert os.listdir(tmp_path / "dir") == ["state"]


def test_sync_fsyncs_touched_files_then_their_directories(tmp_path: Path, fsyncs: list[str]) -> None:
    root = tmp_path.resolve()
    disk = FileDisk(root)
    disk.append("wal/seg-1", b"record")
    disk.write("meta", b"m")
    fsyncs.clear()
    disk.sync()
    assert disk.sync_requested  # the host applies it after the handler
    assert fsyncs == []
    disk.make_durable()
    assert not disk.sync_requested
    assert fsyncs == [str(root / "wal" / "seg-1"), str(root), str(root / "wal")]
    fsyncs.clear()
    disk.sync()
    disk.make_durable()  # nothing touched since: nothing to fsync
    assert fsyncs == []
    disk.rename("meta", "wal/meta")
    disk.delete("wal/seg-1")
    disk.sync()
    disk.make_durable()
    assert fsyncs == [str(root), str(root / "wal")]
    disk.close()


def test_crash_mid_write_leaves_the_old_bytes(tmp_path: Path) -> None:
    disk = FileDisk(tmp_path)
    disk.write("state", b"old")
    disk.close()
    # A crash between writing the temp file and the rename leaves both.
    (tmp_path / ("state" + TMP_SUFFIX)).write_bytes(b"new but never renamed")
    disk = FileDisk(tmp_path)
    assert disk.read("state") == b"old"
    assert disk.list() == ["state"]
    assert not (tmp_path / ("state" + TMP_SUFFIX)).exists()  # cleaned at start


def test_corrupt_file_is_detected_by_record_checksums(tmp_path: Path) -> None:
    disk = FileDisk(tmp_path)
    for payload in (b"first", b"second", b"third"):
        disk.append("wal", pack_record(payload))
    disk.sync()
    disk.make_durable()
    disk.close()
    raw = bytearray((tmp_path / "wal").read_bytes())
    assert scan_records(bytes(raw)).records == [b"first", b"second", b"third"]
    raw[-2] ^= 0x40  # one flipped bit in the last record's payload
    (tmp_path / "wal").write_bytes(bytes(raw))
    scan = scan_records(FileDisk(tmp_path).read("wal") or b"")
    assert scan.records == [b"first", b"second"]
    assert scan.error is not None
    assert scan.error.startswith("checksum mismatch")
    (tmp_path / "wal").write_bytes(bytes(raw[:-3]))  # a torn last append
    assert scan_records(FileDisk(tmp_path).read("wal") or b"").error.startswith("torn record")


def test_many_files_appended_stay_bounded_in_open_handles(tmp_path: Path) -> None:
    from synod.runtime.constants import OPEN_APPEND_FILES_MAX

    disk = FileDisk(tmp_path)
    for i in range(OPEN_APPEND_FILES_MAX + 10):
        disk.append(f"f{i}", b"x")
    assert len(disk._append_fds) == OPEN_APPEND_FILES_MAX
    disk.sync()
    disk.make_durable()
    assert all((tmp_path / f"f{i}").read_bytes() == b"x" for i in range(OPEN_APPEND_FILES_MAX + 10))
    disk.close()


def test_an_overwrite_in_place_is_fsynced_by_the_next_sync(tmp_path: Path, fsyncs: list[str]) -> None:
    disk = FileDisk(tmp_path / "data")
    disk.write_at("chunks/7", 0, b"data")
    disk.make_durable()
    assert str(tmp_path / "data" / "chunks" / "7") in fsyncs
    assert str(tmp_path / "data" / "chunks") in fsyncs   # the new file's directory entry too


def _record_open_flags(monkeypatch: pytest.MonkeyPatch, refuse_direct: bool = False) -> list[tuple[str, int]]:
    opened: list[tuple[str, int]] = []
    real = os.open

    def fake_open(path: str, flags: int, *args: int) -> int:
        opened.append((os.path.basename(path), flags))
        if refuse_direct and flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "no O_DIRECT here")
        return real(path, flags, *args)

    monkeypatch.setattr(os, "open", fake_open)
    return opened


@pytest.mark.skipif(not hasattr(os, "O_DIRECT"), reason="no O_DIRECT on this platform")
def test_large_aligned_writes_go_past_the_page_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     fsyncs: list[str]) -> None:
    disk = FileDisk(tmp_path / "data")
    opened = _record_open_flags(monkeypatch)
    big = os.urandom(DIRECT_IO_BUFFER_BYTES * 2 + DIRECT_IO_ALIGN_BYTES)   # more than the aligned buffer
    disk.write_at("chunk", 0, b"head")                                      # small: the page cache
    disk.write_at("chunk", DIRECT_IO_ALIGN_BYTES, big)                     # aligned and large: O_DIRECT
    disk.write_at("chunk", DIRECT_IO_ALIGN_BYTES + 1, os.urandom(DIRECT_IO_BYTES_MIN))   # unaligned: page cache
    direct = [bool(flags & os.O_DIRECT) for name, flags in opened if name == "chunk"]
    if not disk._direct_io:
        pytest.skip(f"the file system under {tmp_path} refuses O_DIRECT")
    assert direct == [False, True, False]
    got = disk.read_range("chunk", 0, 4 + len(big) + DIRECT_IO_ALIGN_BYTES)
    assert got[:4] == b"head"
    assert got[DIRECT_IO_ALIGN_BYTES] == big[0]
    assert got[DIRECT_IO_ALIGN_BYTES + 1 + DIRECT_IO_BYTES_MIN:] == big[1 + DIRECT_IO_BYTES_MIN:]
    disk.sync()
    disk.make_durable()
    assert any(p.endswith("/chunk") for p in fsyncs)   # still fsynced: the device's cache and the file's size


@pytest.mark.skipif(not hasattr(os, "O_DIRECT"), reason="no O_DIRECT on this platform")
def test_a_file_system_without_o_direct_is_written_through_the_page_cache(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    disk = FileDisk(tmp_path / "data")
    opened = _record_open_flags(monkeypatch, refuse_direct=True)
    data = os.urandom(DIRECT_IO_BYTES_MIN)
    disk.write_at("chunk", 0, data)
    disk.write_at("chunk", len(data), data)
    assert disk.read("chunk") == data * 2
    assert [bool(flags & os.O_DIRECT) for _, flags in opened] == [True, False, False]   # tried once only
