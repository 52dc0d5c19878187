"""Distributed grep (paper section 2.3): lines matching a regular expression.

Options: ``pattern`` (a Python regular expression, required). The key is the
matching line; the value lists the input files that hold it, sorted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_pattern: re.Pattern[str] | None = None


def configure(args: dict[str, str]) -> None:
    global _pattern
    if "pattern" not in args:
        raise KeyError("grep needs --app-arg pattern=REGEX")
    try:
        _pattern = re.compile(args["pattern"])
    except re.error as e:
        raise ValueError(f"bad pattern: {e}") from None


def map(filename: str, contents: str) -> Iterable[tuple[str, str]]:
    assert _pattern is not None, "grep used without configure()"
    search = _pattern.search
    return [(line, filename) for line in contents.splitlines() if search(line)]


def combine(key: str, values: list[str]) -> str:
    return ",".join(sorted(set(",".join(values).split(","))))


def reduce(key: str, values: list[str]) -> str:
    return combine(key, values)
