"""The simulated disk: in memory, with the crash model of a real one
(DESIGN.md section 4).

Writes are visible at once and durable only once the host applies a
``sync()`` after the handler. A crash throws away every change since the last
sync. Optional faults, each drawn from the simulator's seeded rng:

- ``torn_append_probability``: at a crash, a file whose unsynced changes are
  only appends (at least two bytes of them) keeps a random non-empty strict
  prefix of them (a torn last append) instead of losing them all;
- ``read_corruption_probability``: a read returns the bytes with one bit
  flipped (checksums must catch it);
- ``sync_latency_ms``: a sync takes this long, and the node's sends and timers
  wait for it.

And one fault the nemesis injects (``Nemesis.disk_corruption_probability``):
:meth:`SimDisk.corrupt_at_rest` flips a bit of a synced file for good, as a
failing disk does; every later read, across restarts, sees it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from synod.core.errors import LocalProtocolError
from synod.core.node import check_disk_range

__all__ = ["SimDisk", "DiskFaults"]


@dataclass(slots=True, kw_only=True)
class DiskFaults:
    """Fault switches for one node's disk; all off by default."""

    torn_append_probability: float = 0.0
    read_corruption_probability: float = 0.0
    sync_latency_ms: float = 0.0


class SimDisk:
    """One node's simulated disk. Survives the node's crashes (the durable
    part) and is owned by the simulator, not the node."""

    def __init__(self, rng: random.Random, faults: DiskFaults | None = None) -> None:
        self._rng = rng
        self.faults = faults or DiskFaults()
        self._files: dict[str, bytes] = {}
        self._durable: dict[str, bytes] = {}
        # path -> durable length, for files whose unsynced changes are appends only
        self._append_only_since: dict[str, int] = {}
        self._dirty: set[str] = set()
        self.sync_requested = False
        self.bytes_written = 0

    # -- the Disk API -------------------------------------------------------
    def read(self, path: str) -> bytes | None:
        data = self._files.get(path)
        return None if data is None else self._maybe_corrupt(data)

    def _maybe_corrupt(self, data: bytes) -> bytes:
        """``data``, or with one bit flipped (``read_corruption_probability``)."""
        p = self.faults.read_corruption_probability
        if data and p and self._rng.random() < p:
            i = self._rng.randrange(len(data) * 8)
            flipped = bytearray(data)
            flipped[i // 8] ^= 1 << (i % 8)
            return bytes(flipped)
        return data

    def read_range(self, path: str, offset: int, length: int) -> bytes | None:
        check_disk_range(offset, length)
        data = self._files.get(path)
        if data is None:
            return None
        return self._maybe_corrupt(data[offset:offset + length])

    def write_at(self, path: str, offset: int, data: bytes) -> None:
        self._check(path)
        check_disk_range(offset, len(data))
        old = self._files.get(path, b"")
        if offset == len(old):
            self.append(path, data)
            return
        if offset > len(old):
            old += bytes(offset - len(old))
        self._files[path] = old[:offset] + bytes(data) + old[offset + len(data):]
        self._mark(path, appended=False)
        self.bytes_written += len(data)

    def write(self, path: str, data: bytes) -> None:
        self._check(path)
        self._files[path] = bytes(data)
        self._append_only_since.pop(path, None)
        self._mark(path, appended=False)
        self.bytes_written += len(data)

    def append(self, path: str, data: bytes) -> None:
        self._check(path)
        old = self._files.get(path, b"")
        if path not in self._dirty:
            self._append_only_since[path] = len(old)
        self._files[path] = old + bytes(data)
        self._mark(path, appended=True)
        self.bytes_written += len(data)

    def rename(self, src: str, dst: str) -> None:
        self._check(dst)
        if src not in self._files:
            raise LocalProtocolError(f"rename: no such file {src!r}")
        self._files[dst] = self._files.pop(src)
        self._append_only_since.pop(src, None)
        self._append_only_since.pop(dst, None)
        self._mark(src, appended=False)
        self._mark(dst, appended=False)

    def delete(self, path: str) -> None:
        if self._files.pop(path, None) is not None:
            self._append_only_since.pop(path, None)
            self._mark(path, appended=False)

    def list(self, prefix: str = "") -> list[str]:
        return sorted(p for p in self._files if p.startswith(prefix))

    def sync(self) -> None:
        self.sync_requested = True

    # -- used by the simulator ---------------------------------------------
    def make_durable(self) -> None:
        """Apply a requested sync: every change so far becomes durable."""
        for path in sorted(self._dirty):
            data = self._files.get(path)
            if data is None:
                self._durable.pop(path, None)
            else:
                self._durable[path] = data
        self._dirty.clear()
        self._append_only_since.clear()
        self.sync_requested = False

    def crash(self) -> None:
        """Lose every unsynced change (tearing the last append if so set)."""
        p = self.faults.torn_append_probability
        torn: dict[str, bytes] = {}
        if p:
            for path in sorted(self._append_only_since):
                base = self._append_only_since[path]
                data = self._files.get(path, b"")
                unsynced = len(data) - base
                if unsynced >= 2 and self._rng.random() < p:
                    torn[path] = data[: base + self._rng.randrange(1, unsynced)]
        self._files = dict(self._durable)
        self._files.update(torn)
        self._durable.update(torn)
        self._dirty.clear()
        self._append_only_since.clear()
        self.sync_requested = False

    def corrupt_at_rest(self, rng: random.Random, prefixes: tuple[str, ...] = ()) -> tuple[str, int, int] | None:
        """Flip one bit, chosen by ``rng``, of one durable (synced) file whose
        path starts with one of ``prefixes`` (any file if empty), in the
        durable copy and in what reads return. Returns (path, byte offset,
        bit) or None if there is no such file."""
        paths = sorted(p for p, d in self._durable.items()
                       if d and (not prefixes or p.startswith(prefixes)))
        if not paths:
            return None
        path = paths[rng.randrange(len(paths))]
        old = self._durable[path]
        bit = rng.randrange(len(old) * 8)
        flipped = bytearray(old)
        flipped[bit // 8] ^= 1 << (bit % 8)
        self._durable[path] = bytes(flipped)
        current = self._files.get(path)
        if current is not None and current[: len(old)] == old:
            self._files[path] = bytes(flipped) + current[len(old):]
        return path, bit // 8, bit % 8

    def _mark(self, path: str, *, appended: bool) -> None:
        if not appended:
            self._append_only_since.pop(path, None)
        self._dirty.add(path)

    @staticmethod
    def _check(path: str) -> None:
        if not path or path.startswith("/") or ".." in path.split("/"):
            raise LocalProtocolError(f"disk path must be relative without '..': {path!r}")
