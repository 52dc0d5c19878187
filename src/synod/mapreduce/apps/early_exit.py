"""Lab test app: reduces of some keys take 3 s, to catch workers or a
coordinator that exit before the whole job is committed."""

from __future__ import annotations

from typing import Any


def map(filename: str, contents: str) -> list[tuple[str, str]]:
    return [(filename, "1")]


async def reduce(key: str, values: list[str], env: Any) -> str:
    if "sherlock" in key or "tom" in key:
        await env.sleep(3000)
    return str(len(values))
