"""Sort (paper section 5.3): the lines of the input in order, each with its
number of copies, so that ``mr-out-0 .. mr-out-(R-1)`` concatenated are
globally sorted.

The partition is by key range, not hash: ``partition_plan`` samples lines
from evenly spaced places in each input and takes R-1 quantiles as
boundaries (TeraSort's sampled range partitioner, as the paper's sort uses
"a partitioning function that has built-in knowledge of the distribution of
keys").
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from typing import Any

SAMPLES_PER_FILE = 16
SAMPLE_BYTES = 16 * 1024


def map(filename: str, contents: str) -> Iterable[tuple[str, str]]:
    return [(line, "1") for line in contents.splitlines()]


def combine(key: str, values: list[str]) -> str:
    return str(sum(int(v) for v in values))


def reduce(key: str, values: list[str]) -> str:
    return combine(key, values)


def partition_plan(fs: Any, inputs: list[str], nreduce: int) -> list[str]:
    """R-1 boundary keys from a deterministic sample of every input."""
    sample: list[str] = []
    for path in inputs:
        size = fs.size(path)
        for i in range(SAMPLES_PER_FILE):
            start = size * i // SAMPLES_PER_FILE
            chunk = fs.cat_file(path, start=start, end=min(size, start + SAMPLE_BYTES))
            lines = chunk.decode("utf-8", errors="replace").splitlines()
            sample.extend(lines[1:-1] if start else lines[:-1])
    sample.sort()
    if not sample:
        return []
    return [sample[len(sample) * k // nreduce] for k in range(1, nreduce)]


def partition(key: str, nreduce: int, plan: list[str]) -> int:
    return min(bisect_right(plan, key), nreduce - 1)
