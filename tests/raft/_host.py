"""Acting as Raft's host in unit tests: take every Ready as a node would."""

from __future__ import annotations

from typing import Any

from synod.raft import Raft


def drain(r: Raft) -> list[tuple[str, Any]]:
    """Take the Ready as a host would (until none is left); its messages."""
    msgs: list[tuple[str, Any]] = []
    while r.has_ready():
        rd = r.ready()
        msgs.extend(rd.messages)
        r.advance(rd)
    return msgs
