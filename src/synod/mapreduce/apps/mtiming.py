"""Lab test app: do map tasks run in parallel? Each map reports when it ran and
how many map workers it saw at once (``parallel-<worker> N``)."""

from __future__ import annotations

from typing import Any

from synod.mapreduce.apps._lab import nparallel


async def map(filename: str, contents: str, env: Any) -> list[tuple[str, str]]:
    t_s = env.now_ms / 1000.0
    n = await nparallel(env, "map")
    return [(f"times-{env.worker_id}", f"{t_s:.1f}"), (f"parallel-{env.worker_id}", str(n))]


def reduce(key: str, values: list[str]) -> str:
    return " ".join(sorted(values))
