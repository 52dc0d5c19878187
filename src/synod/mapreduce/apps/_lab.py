"""Helpers of the MIT 6.5840 lab test apps, over ``env`` (TaskEnv)."""

from __future__ import annotations

from typing import Any


async def nparallel(env: Any, phase: str) -> int:
    """How many workers are in ``phase`` at once: leave a marker file in the
    shared output directory, count the markers, wait a second, remove ours
    (the lab's nparallel, with worker ids for pids)."""
    prefix = f"mr-worker-{phase}-"
    mine = f"{env.out_dir}/{prefix}{env.worker_id}"
    env.fs.pipe_file(mine, b"x")
    names = [p.rsplit("/", 1)[-1] for p in env.fs.ls(env.out_dir, detail=False)]
    n = sum(1 for name in names if name.startswith(prefix))
    await env.sleep(1000)
    env.fs.rm_file(mine)
    return n


async def maybe_crash(env: Any) -> None:
    """The lab's maybeCrash: a third of the time exit, a third stall up to 10 s."""
    r = env.rng.randrange(1000)
    if r < 330:
        env.exit(1)
    elif r < 660:
        await env.sleep(env.rng.randrange(10_000))
