"""Reading JSON-lines traces into records, with errors that name the line."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synod.viz.constants import LINE_CHARS_MAX, TRACE_LINES_MAX

__all__ = ["Record", "TraceError", "read_trace", "parse_lines"]

_HEAD = ("t_ms", "node", "kind")


class TraceError(Exception):
    """The trace cannot be read: a missing file, or a line that is not a
    trace record. ``str(e)`` is one line naming the file and line number."""


@dataclass(frozen=True, slots=True)
class Record:
    """One trace line. ``index``: position in the (time-sorted) trace;
    ``where``: ``"file:line"``; ``fields``: everything but t_ms, node, kind."""

    index: int
    where: str
    t_ms: float
    node: str
    kind: str
    fields: dict[str, Any]


def _parse(text: str, where: str) -> tuple[float, str, str, dict[str, Any]]:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise TraceError(f"{where}: not JSON ({e.msg} at column {e.colno})") from None
    if type(obj) is not dict:
        raise TraceError(f"{where}: not a JSON object")
    for key in _HEAD:
        if key not in obj:
            raise TraceError(f"{where}: no {key!r} field")
    t_ms = obj.pop("t_ms")
    node = obj.pop("node")
    kind = obj.pop("kind")
    if type(t_ms) not in (int, float) or not math.isfinite(t_ms):
        raise TraceError(f"{where}: 't_ms' is not a finite number: {t_ms!r}")
    if type(node) is not str or type(kind) is not str:
        raise TraceError(f"{where}: 'node' and 'kind' must be strings")
    return float(t_ms), node, kind, obj


def parse_lines(lines: Iterable[str], name: str = "<trace>") -> list[Record]:
    """Records of trace lines (blank lines skipped), sorted by ``t_ms``
    (stably: equal times keep their order).

    Raises:
        TraceError: a line is not a JSON object with a numeric ``t_ms`` and
            string ``node`` and ``kind``; the message names ``name:line``.
    """
    return _sorted(_raw(lines, name, 0))


def _raw(lines: Iterable[str], name: str, count: int) -> list[tuple[float, str, str, str, dict[str, Any]]]:
    out = []
    for lineno, text in enumerate(lines, 1):
        if not text.strip():
            continue
        where = f"{name}:{lineno}"
        if len(text) > LINE_CHARS_MAX:
            raise TraceError(f"{where}: line longer than {LINE_CHARS_MAX} characters")
        if count + len(out) >= TRACE_LINES_MAX:
            raise TraceError(f"{where}: more than {TRACE_LINES_MAX} trace lines")
        t_ms, node, kind, fields = _parse(text, where)
        out.append((t_ms, where, node, kind, fields))
    return out


def _sorted(raw: list[tuple[float, str, str, str, dict[str, Any]]]) -> list[Record]:
    # Python's sort is stable, and O(n) on the already sorted lines a
    # simulator writes; several files (one per real process) interleave.
    raw.sort(key=lambda r: r[0])
    return [Record(i, where, t_ms, node, kind, fields) for i, (t_ms, where, node, kind, fields) in enumerate(raw)]


def read_trace(paths: Sequence[str | Path]) -> list[Record]:
    """Read one or more trace files (e.g. one per real node process) and
    merge them by ``t_ms``.

    Raises:
        TraceError: a file is missing or unreadable, is not UTF-8, or holds a
            line that is not a trace record (the message names file and
            line); or the files hold no record at all.
    """
    if not paths:
        raise TraceError("no trace file given")
    raw: list[tuple[float, str, str, str, dict[str, Any]]] = []
    for p in paths:
        path = Path(p)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise TraceError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise TraceError(f"{path}: is a directory, not a trace file") from None
        except OSError as e:
            raise TraceError(f"{path}: cannot read ({e.strerror})") from None
        raw.extend(_raw(_decode_lines(data, str(path)), str(path), len(raw)))
    if not raw:
        raise TraceError(f"{', '.join(str(p) for p in paths)}: no trace records (empty)")
    return _sorted(raw)


def _decode_lines(data: bytes, name: str) -> Iterable[str]:
    for lineno, line in enumerate(data.split(b"\n"), 1):
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError:
            raise TraceError(f"{name}:{lineno}: not UTF-8 text") from None
