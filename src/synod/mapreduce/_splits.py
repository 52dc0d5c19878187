"""Input splits (paper section 3.1: "splits the input files into M pieces").

A split is what one map task reads: a list of *file ranges* ``(path,
offset, length)`` (length -1: the whole file). Planning, with
``split_size_bytes`` S > 0:

- a file larger than S is cut into ranges of S bytes, each its own split;
  a line belongs to the range in which it starts, so every line is read by
  exactly one map task even when a range cuts it (Hadoop's LineRecordReader
  rule);
- files of at most S bytes are packed, in input order, into one split until
  the next would take it past S bytes or past ``SPLIT_RANGES_MAX`` ranges
  (Hadoop's CombineFileInputFormat), so thousands of small files do not pay
  a task each (scheduling, an fsync of the map output, R fetches per task).

S = 0 gives one split per file, the lab's rule (its tests count map tasks by
input file). The worker calls the app's ``map`` once per range, with that
range's file name, so an app sees whole documents as before; the combiner
(section 4.3) runs over the whole split.

Invariant: the ranges of all splits cover every input byte exactly once
(a property test checks it), and each split holds 1..SPLIT_RANGES_MAX ranges.
"""

from __future__ import annotations

from synod.core import Context
from synod.mapreduce._storage import JobStorage
from synod.mapreduce.constants import READ_AHEAD_BYTES, SPLIT_RANGES_MAX

__all__ = ["FileRange", "plan_splits", "read_range"]

FileRange = tuple[str, int, int]  # (path, offset, length); length -1: the whole file


def plan_splits(sizes: list[tuple[str, int]], split_size_bytes: int) -> list[tuple[FileRange, ...]]:
    """The splits of files of the given ``(path, size in bytes)``, one per map
    task, in input order (see the module docstring). ``split_size_bytes`` 0
    gives one split per file."""
    assert split_size_bytes >= 0, split_size_bytes
    out: list[tuple[FileRange, ...]] = []
    packed: list[FileRange] = []
    packed_bytes = 0

    def flush() -> None:
        nonlocal packed_bytes
        if packed:
            out.append(tuple(packed))
            packed.clear()
            packed_bytes = 0

    for path, size in sizes:
        if split_size_bytes == 0:
            out.append(((path, 0, -1),))
        elif size > split_size_bytes:
            flush()
            for offset in range(0, size, split_size_bytes):
                out.append(((path, offset, min(split_size_bytes, size - offset)),))
        else:
            if packed_bytes + size > split_size_bytes or len(packed) >= SPLIT_RANGES_MAX:
                flush()
            packed.append((path, 0, -1))
            packed_bytes += size
    flush()
    assert all(1 <= len(s) <= SPLIT_RANGES_MAX for s in out)
    return out


async def _line_end(storage: JobStorage, ctx: Context, path: str, pos: int, size: int) -> int:
    """Index just past the first newline at or after ``pos`` (or ``size``)."""
    while pos < size:
        chunk = await storage.read(ctx, path, pos, min(size, pos + READ_AHEAD_BYTES))
        if not chunk:
            return size   # shorter than its size said: it ends here
        i = chunk.find(b"\n")
        if i >= 0:
            return pos + i + 1
        pos += len(chunk)
    return size


async def read_range(storage: JobStorage, ctx: Context, path: str, offset: int, length: int) -> bytes:
    """The bytes of the lines of ``path`` that start in ``[offset, offset +
    length)``; length -1: the whole file. Raises OSError (storage)."""
    if length < 0:
        return await storage.read(ctx, path, 0, None)
    size = await storage.size(ctx, path)
    end = min(size, offset + length)
    start = 0 if offset == 0 else await _line_end(storage, ctx, path, offset - 1, size)
    if start >= end:
        return b""
    stop = await _line_end(storage, ctx, path, end - 1, size)
    return await storage.read(ctx, path, start, stop)
