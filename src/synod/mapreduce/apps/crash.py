"""Lab test app: like ``nocrash``, but every map and reduce may exit the worker
(a third of the time) or stall it up to 10 s (another third). The output must
equal ``nocrash``'s."""

from __future__ import annotations

from typing import Any

from synod.mapreduce.apps import nocrash
from synod.mapreduce.apps._lab import maybe_crash


async def map(filename: str, contents: str, env: Any) -> list[tuple[str, str]]:
    await maybe_crash(env)
    return nocrash.map(filename, contents)


async def reduce(key: str, values: list[str], env: Any) -> str:
    await maybe_crash(env)
    return nocrash.reduce(key, values)
