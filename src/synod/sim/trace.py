"""JSON-lines traces of simulated runs (DESIGN.md section 5).

One object per line: ``{"t_ms": ..., "node": ..., "kind": ..., ...fields}``.
Kinds written by the simulator: ``send``, ``recv``, ``drop``, ``timer``,
``crash``, ``restart``, ``pause``, ``resume``, ``exit``, ``clock``,
``nemesis``; nodes add their own through ``ctx.trace``. Field order is fixed
by the writer and messages go through :func:`synod.core.codec.to_jsonable`, so
the same run gives byte-identical lines.
"""

from __future__ import annotations

import json
from typing import IO, Any

from synod.core.codec import to_jsonable

__all__ = ["Tracer"]


class Tracer:
    """Collects trace lines in memory (``lines``) and/or writes them to ``out``."""

    def __init__(self, out: IO[str] | None = None, *, keep: bool = False) -> None:
        self._out = out
        self.lines: list[str] | None = [] if keep else None
        self.count = 0

    def emit(self, t_ms: float, node: str, kind: str, fields: dict[str, Any]) -> None:
        record = {"t_ms": round(t_ms, 6), "node": node, "kind": kind}
        for k, v in fields.items():
            record[k] = to_jsonable(v)
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        self.count += 1
        if self.lines is not None:
            self.lines.append(line)
        if self._out is not None:
            self._out.write(line + "\n")
