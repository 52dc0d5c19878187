"""Lab test app: do reduce tasks run in parallel? Every map emits keys a..j;
each reduce reports how many reduce workers it saw at once."""

from __future__ import annotations

from typing import Any

from synod.mapreduce.apps._lab import nparallel


def map(filename: str, contents: str) -> list[tuple[str, str]]:
    return [(k, "1") for k in "abcdefghij"]


async def reduce(key: str, values: list[str], env: Any) -> str:
    return str(await nparallel(env, "reduce"))
