"""Word count (paper section 2.1; the lab's wc.go): how often each word occurs.

``map`` emits ``(word, "1")`` per occurrence; ``combine`` and ``reduce`` sum.
``map_combined`` is map followed by the combiner in one pass (in-mapper
combining), which the worker uses when the combiner is on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from synod.mapreduce.apps._words import words


def map(filename: str, contents: str) -> Iterable[tuple[str, str]]:
    return [(w, "1") for w in words(contents)]


def map_combined(filename: str, contents: str) -> Iterable[tuple[str, str]]:
    return [(w, str(n)) for w, n in Counter(words(contents)).items()]


def combine(key: str, values: list[str]) -> str:
    return str(sum(map_int(values)))


def reduce(key: str, values: list[str]) -> str:
    return str(sum(map_int(values)))


def map_int(values: list[str]) -> Iterable[int]:
    if all(v == "1" for v in values):
        return (1 for _ in values)
    return (int(v) for v in values)
