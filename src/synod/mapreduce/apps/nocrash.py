"""Lab test app: four keys per input file (its name, its name's length, its
size in characters, a constant), reduced to their sorted values."""

from __future__ import annotations


def map(filename: str, contents: str) -> list[tuple[str, str]]:
    return [("a", filename), ("b", str(len(filename))), ("c", str(len(contents))), ("d", "xyzzy")]


def reduce(key: str, values: list[str]) -> str:
    return " ".join(sorted(values))
