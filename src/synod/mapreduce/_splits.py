"""Input splits (paper section 3.1: "splits the input files into M pieces").

A split is a byte range of one file; a line belongs to the split in which it
starts, so every line is read by exactly one map task even when a range cuts
it (Hadoop's LineRecordReader rule).
"""

from __future__ import annotations

from typing import Any

from synod.mapreduce.constants import READ_AHEAD_BYTES

__all__ = ["plan_splits", "read_split"]


def plan_splits(sizes: list[tuple[str, int]], split_size_bytes: int) -> list[tuple[str, int, int]]:
    """(path, offset, length) per map task; length -1 means the whole file.
    ``split_size_bytes`` 0 gives one task per file."""
    out: list[tuple[str, int, int]] = []
    for path, size in sizes:
        if split_size_bytes <= 0 or size <= split_size_bytes:
            out.append((path, 0, -1))
            continue
        for offset in range(0, size, split_size_bytes):
            out.append((path, offset, min(split_size_bytes, size - offset)))
    return out


def _line_end(fs: Any, path: str, pos: int, size: int) -> int:
    """Index just past the first newline at or after ``pos`` (or ``size``)."""
    while pos < size:
        chunk = fs.cat_file(path, start=pos, end=min(size, pos + READ_AHEAD_BYTES))
        i = chunk.find(b"\n")
        if i >= 0:
            return pos + i + 1
        pos += len(chunk)
    return size


def read_split(fs: Any, path: str, offset: int, length: int) -> bytes:
    """The bytes of the lines that start in ``[offset, offset + length)``."""
    if length < 0:
        return fs.cat_file(path)
    size = fs.size(path)
    end = min(size, offset + length)
    start = 0 if offset == 0 else _line_end(fs, path, offset - 1, size)
    if start >= end:
        return b""
    stop = _line_end(fs, path, end - 1, size)
    return fs.cat_file(path, start=start, end=stop)
