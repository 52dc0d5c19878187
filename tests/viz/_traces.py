"""Hand-written traces for the viewer's tests (not a test module)."""

from __future__ import annotations

import json
from typing import Any

from synod.viz import TraceModel, build_model, parse_lines


def line(t_ms: float, node: str, kind: str, **fields: Any) -> str:
    return json.dumps({"t_ms": t_ms, "node": node, "kind": kind, **fields}, separators=(",", ":"))


def send(t_ms: float, src: str, dst: str, msg: dict[str, Any], corr: int = 0) -> str:
    return line(t_ms, src, "send", dst=dst, corr=corr, msg=msg)


def recv(t_ms: float, dst: str, src: str, msg: dict[str, Any], corr: int = 0) -> str:
    return line(t_ms, dst, "recv", src=src, corr=corr, msg=msg)


def drop(t_ms: float, src: str, dst: str, reason: str, corr: int = 0) -> str:
    return line(t_ms, src, "drop", dst=dst, corr=corr, reason=reason)


def model_of(*lines: str) -> TraceModel:
    return build_model(parse_lines(lines))


def ends(model: TraceModel) -> list[tuple[str, float, float | None, str, bool]]:
    """(type, send time, end time, status, duplicate) per arrow, in order."""
    return [(a.msg_type, a.t_send_ms, a.t_end_ms, a.status, a.duplicate) for a in model.arrows]


PING = {"type": "t.Ping"}
PONG = {"type": "t.Pong"}
