"""``ctx.disk`` on a real file system (DESIGN.md section 4).

Files live under the node's data directory (``run_dir/<id>/data``), addressed
by relative '/'-separated paths, exactly as on :class:`synod.sim.SimDisk`.

Durability follows the node contract. A handler's writes reach the OS at once
(later reads see them); they are durable only after a ``sync()`` that the
host applies after the handler and before its sends:

- ``write`` of a whole file is atomic: the bytes go to a temp file beside the
  target, which is fsynced and renamed over it. After a crash the file holds
  either the old or the new bytes; the rename itself is made durable by the
  directory fsync of the next sync.
- ``write_at`` (``pwrite``) overwrites in place, not atomically. A large
  write whose offset and length are multiples of 4 KB goes past the page
  cache (``O_DIRECT``, from a page-aligned buffer): the bytes go to the
  device without being copied into the page cache, where copying them
  cost the writing thread more than the device took (a GFS chunkserver's
  1 MB writes; ``benchmarks/gfs_throughput.py``). Reads see them either
  way (the kernel drops the cached pages they replace); a file system
  without ``O_DIRECT`` (tmpfs) is written through the page cache;
- ``append``, ``write_at``, ``rename``, ``delete`` and new directories mark
  the files and directories they touch; :meth:`FileDisk.make_durable` fsyncs the touched
  files, then the touched directories.

Temp files (``*.synod-tmp``) left by a crash mid-write are removed at start
and never listed. Checksums are the caller's job: logs are records from
:mod:`synod.core.records`, which catch torn and corrupt data.
"""

from __future__ import annotations

import errno
import mmap
import os
from collections import OrderedDict
from pathlib import Path

from synod.core.errors import LocalProtocolError
from synod.core.node import check_disk_range
from synod.runtime.constants import OPEN_APPEND_FILES_MAX

__all__ = ["FileDisk", "TMP_SUFFIX", "fsync_and_close"]

TMP_SUFFIX = ".synod-tmp"
DIRECT_IO_ALIGN_BYTES = 4096           # offsets, lengths and buffers of O_DIRECT writes
DIRECT_IO_BYTES_MIN = 256 * 1024       # smaller writes go through the page cache
DIRECT_IO_BUFFER_BYTES = 1024 * 1024   # the aligned buffer a direct write is copied through


class FileDisk:
    """One node's durable storage in a directory (implements ``core.Disk``).

    Args:
        root: the data directory; created if missing.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._root_str = str(self.root)
        self.sync_requested = False
        self.bytes_written = 0
        self.syncs = 0
        # Paths (absolute str) whose contents or entries changed since the last sync.
        self._dirty_files: set[str] = set()
        self._dirty_dirs: set[str] = set()
        # Open O_APPEND descriptors, least recently used first.
        self._append_fds: OrderedDict[str, int] = OrderedDict()
        # Large aligned write_at go past the page cache (False: this file system
        # refuses O_DIRECT), through a buffer allocated at the first one.
        self._direct_io = hasattr(os, "O_DIRECT")
        self._direct_buffer: mmap.mmap | None = None
        self._remove_temp_files()

    # -- the Disk API -------------------------------------------------------
    def read(self, path: str) -> bytes | None:
        """The file's bytes, or None if it does not exist."""
        full = self._full(path)
        try:
            with open(full, "rb") as f:
                return f.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    def read_range(self, path: str, offset: int, length: int) -> bytes | None:
        """At most ``length`` bytes from ``offset`` (fewer at the end), or None
        if the file does not exist (``pread``).

        Raises:
            LocalProtocolError: a negative offset or length.
        """
        check_disk_range(offset, length)
        full = self._full(path)
        try:
            fd = os.open(full, os.O_RDONLY)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        try:
            parts = []
            while length > 0:
                chunk = os.pread(fd, length, offset)
                if not chunk:
                    break
                parts.append(chunk)
                offset += len(chunk)
                length -= len(chunk)
            return b"".join(parts)
        finally:
            os.close(fd)

    def write_at(self, path: str, offset: int, data: bytes) -> None:
        """Overwrite the file from ``offset`` (``pwrite``; created if missing,
        a gap past its end reads as zeros); durable at the next sync, not
        atomic.

        Raises:
            LocalProtocolError: a negative offset.
        """
        check_disk_range(offset, len(data))
        full = self._full(path)
        parent = self._ensure_parent(full)
        if not os.path.exists(full):
            self._dirty_dirs.add(parent)
        size = len(data)
        aligned = not offset % DIRECT_IO_ALIGN_BYTES and not size % DIRECT_IO_ALIGN_BYTES
        if not (self._direct_io and size >= DIRECT_IO_BYTES_MIN and aligned
                and self._write_direct(full, offset, data)):
            fd = os.open(full, os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                _pwrite_all(fd, memoryview(data), offset)
            finally:
                os.close(fd)
        self._dirty_files.add(full)
        self.bytes_written += size

    def _write_direct(self, full: str, offset: int, data: bytes) -> bool:
        """``pwrite`` with ``O_DIRECT`` through the page-aligned buffer; False
        where the file system refuses ``O_DIRECT`` (the caller then writes
        it all through the page cache, and so does every later write)."""
        buf = self._direct_buffer
        if buf is None:
            buf = self._direct_buffer = mmap.mmap(-1, DIRECT_IO_BUFFER_BYTES)   # page-aligned
        fd = -1
        try:
            fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o644)
            src = memoryview(data)
            done = 0
            while done < len(src):
                n = min(DIRECT_IO_BUFFER_BYTES, len(src) - done)
                buf[:n] = src[done:done + n]
                with memoryview(buf)[:n] as piece:
                    _pwrite_all(fd, piece, offset + done)
                done += n
        except OSError as e:
            if e.errno != errno.EINVAL:
                raise
            self._direct_io = False
            return False
        finally:
            if fd >= 0:
                os.close(fd)
        return True

    def write(self, path: str, data: bytes) -> None:
        """Replace the file's contents atomically (temp file, fsync, rename)."""
        full = self._full(path)
        self._close_fd(full)
        parent = self._ensure_parent(full)
        tmp = full + TMP_SUFFIX
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, full)
        self._dirty_files.discard(full)  # its bytes are already on disk
        self._dirty_dirs.add(parent)
        self.bytes_written += len(data)

    def append(self, path: str, data: bytes) -> None:
        """Append bytes to the file, creating it if missing."""
        full = self._full(path)
        fd = self._append_fds.get(full)
        if fd is None:
            parent = self._ensure_parent(full)
            if not os.path.exists(full):
                self._dirty_dirs.add(parent)
            fd = os.open(full, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._append_fds[full] = fd
            if len(self._append_fds) > OPEN_APPEND_FILES_MAX:
                old_path, old_fd = self._append_fds.popitem(last=False)
                if old_path in self._dirty_files:
                    os.fsync(old_fd)  # cheaper than reopening at sync time
                    self._dirty_files.discard(old_path)
                os.close(old_fd)
        else:
            self._append_fds.move_to_end(full)
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        self._dirty_files.add(full)
        self.bytes_written += len(data)

    def rename(self, src: str, dst: str) -> None:
        """Rename ``src`` to ``dst``, replacing ``dst`` if it exists.

        Raises:
            LocalProtocolError: ``src`` does not exist.
        """
        full_src = self._full(src)
        full_dst = self._full(dst)
        if not os.path.isfile(full_src):
            raise LocalProtocolError(f"rename: no such file {src!r}")
        self._close_fd(full_src)
        self._close_fd(full_dst)
        parent = self._ensure_parent(full_dst)
        os.replace(full_src, full_dst)
        if full_src in self._dirty_files:
            self._dirty_files.discard(full_src)
            self._dirty_files.add(full_dst)
        self._dirty_dirs.add(os.path.dirname(full_src))
        self._dirty_dirs.add(parent)

    def delete(self, path: str) -> None:
        """Delete the file if it exists."""
        full = self._full(path)
        self._close_fd(full)
        try:
            os.unlink(full)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return
        self._dirty_files.discard(full)
        self._dirty_dirs.add(os.path.dirname(full))

    def list(self, prefix: str = "") -> list[str]:
        """Sorted relative paths of the files whose path starts with ``prefix``."""
        out = []
        start = self.root
        head = prefix.rpartition("/")[0]
        if head:
            start = self.root / head
        for dirpath, _dirnames, filenames in os.walk(start):
            rel_dir = os.path.relpath(dirpath, self._root_str)
            for name in filenames:
                if name.endswith(TMP_SUFFIX):
                    continue
                rel = name if rel_dir == "." else f"{rel_dir.replace(os.sep, '/')}/{name}"
                if rel.startswith(prefix):
                    out.append(rel)
        out.sort()
        return out

    def sync(self) -> None:
        """Ask the host to make every change so far durable after this handler."""
        self.sync_requested = True

    # -- used by the host ---------------------------------------------------
    def make_durable(self) -> None:
        """Apply a requested sync now: fsync the touched files, then the
        touched directories (so new names and renames survive a power cut).

        Raises:
            OSError: an fsync failed (the data may not be durable).
        """
        fsync_and_close(self.take_unsynced())

    def take_unsynced(self) -> list[int]:
        """Hand over what is touched and not yet durable, as descriptors to
        :func:`fsync_and_close` (the touched files first, then the touched
        directories), and forget it: a host that fsyncs them on another
        thread (group commit) while handlers go on writing. Descriptors are
        taken now (a ``dup`` of an open append handle, else a fresh open), so
        a later rename, delete or close does not change what they sync: each
        names the inode that holds the data written so far."""
        fds: list[int] = []
        try:
            for full in sorted(self._dirty_files):
                fd = self._append_fds.get(full)
                if fd is not None:
                    fds.append(os.dup(fd))
                    continue
                try:
                    fds.append(os.open(full, os.O_RDONLY))
                except FileNotFoundError:
                    continue
            for full in sorted(self._dirty_dirs):
                try:
                    fds.append(os.open(full, os.O_RDONLY | os.O_DIRECTORY))
                except FileNotFoundError:
                    continue
        except OSError:
            for fd in fds:
                os.close(fd)
            raise
        self._dirty_files.clear()
        self._dirty_dirs.clear()
        self.sync_requested = False
        self.syncs += 1
        return fds

    def close(self) -> None:
        """Close open append handles (the data is already written to the OS)."""
        for fd in self._append_fds.values():
            os.close(fd)
        self._append_fds.clear()
        if self._direct_buffer is not None:
            self._direct_buffer.close()
            self._direct_buffer = None

    # -- helpers ------------------------------------------------------------------
    def _full(self, path: str) -> str:
        if (not isinstance(path, str) or not path or path.startswith("/")
                or ".." in path.split("/") or "\\" in path or "\x00" in path):
            raise LocalProtocolError(f"disk path must be relative without '..': {path!r}")
        if path.endswith(TMP_SUFFIX):
            raise LocalProtocolError(f"disk path must not end with {TMP_SUFFIX!r}: {path!r}")
        return os.path.join(self._root_str, *[p for p in path.split("/") if p and p != "."])

    def _ensure_parent(self, full: str) -> str:
        """Create missing parent directories, marking each new one's parent."""
        parent = os.path.dirname(full)
        missing = []
        d = parent
        while d != self._root_str and not os.path.isdir(d):
            missing.append(d)
            d = os.path.dirname(d)
        for d in reversed(missing):
            os.mkdir(d)
            self._dirty_dirs.add(os.path.dirname(d))
        return parent

    def _close_fd(self, full: str) -> None:
        fd = self._append_fds.pop(full, None)
        if fd is not None:
            os.close(fd)  # dirty data stays marked; make_durable reopens it

    def _remove_temp_files(self) -> None:
        for dirpath, _dirnames, filenames in os.walk(self._root_str):
            for name in filenames:
                if name.endswith(TMP_SUFFIX):
                    os.unlink(os.path.join(dirpath, name))


def _pwrite_all(fd: int, view: memoryview, offset: int) -> None:
    """``pwrite`` all of ``view`` at ``offset`` (a short write goes on)."""
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n


def fsync_and_close(fds: list[int]) -> None:
    """fsync each descriptor in order, then close it (every one is closed,
    whatever happens). Safe on any thread: it touches no FileDisk state.

    Raises:
        OSError: the first fsync that failed, after the rest were closed.
    """
    try:
        for fd in fds:
            os.fsync(fd)
    finally:
        for fd in fds:
            os.close(fd)
