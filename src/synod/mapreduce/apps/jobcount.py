"""Lab test app: how many times did map run? Each map execution leaves a marker
file; the one reduce counts them (exactly one per map task without faults)."""

from __future__ import annotations

from typing import Any

PREFIX = "mr-worker-jobcount-"


async def map(filename: str, contents: str, env: Any) -> list[tuple[str, str]]:
    env.fs.pipe_file(f"{env.out_dir}/{PREFIX}{env.worker_id}-{env.task_id}-{env.attempt}", b"x")
    await env.sleep(2000 + env.rng.randrange(3000))
    return [("a", "x")]


async def reduce(key: str, values: list[str], env: Any) -> str:
    names = [p.rsplit("/", 1)[-1] for p in env.fs.ls(env.out_dir, detail=False)]
    return str(sum(1 for name in names if name.startswith(PREFIX)))
