"""Readers for the three shapes a history arrives in.

- ``edn``: one Jepsen EDN map per line, as Jepsen writes ``history.edn`` and
  as Porcupine's ``test_data/kv`` files are:
  ``{:process 0, :type :invoke, :f :append, :key "0", :value "x 0 0 y"}``.
  ``:time`` is used when present; ``:index`` and other fields are ignored.
  A whole-file EDN vector ``[...]`` or list ``(...)`` of such maps is read
  as well, each event keeping the file line its map starts on; ``;``
  comment lines may come anywhere.
- ``jepsen-log``: the ``jepsen.util`` lines of a Jepsen run log, as in
  Porcupine's ``test_data/jepsen`` (``INFO  jepsen.util - 4 :invoke :cas [1 4]``,
  fields separated by tabs or spaces, an optional timestamp before ``INFO``).
  Lines without ``jepsen.util -`` are not events and are skipped. A
  completion's value ``:timed-out`` is a timeout, not a result.
- ``jsonl``: one JSON object per line, in real-time order:
  ``{"process": 3, "type": "invoke", "f": "cas", "key": "k", "value": [1, 2]}``;
  ``key`` and ``time`` are optional.

Every reader returns a list of :class:`~synod.check.history.Event` in file
order, with ``time`` the given time or the event's position. Malformed input
raises :class:`~synod.check.history.HistoryError` naming the source and line.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Hashable
from pathlib import Path
from typing import Any

from synod.check._edn import EdnError, Keyword, read_edn, read_edn_items, skip_blank
from synod.check.history import EVENT_TYPES, Event, HistoryError

__all__ = ["FORMATS", "detect_format", "parse_edn", "parse_history", "parse_jepsen_log", "parse_jsonl",
           "read_history"]

FORMATS = ("edn", "jepsen-log", "jsonl")
HISTORY_BYTES_MAX = 1 << 30
_LOG_LINE = re.compile(r"jepsen\.util\s+-\s+(\S+)\s+:(\S+)\s+:(\S+)(?:\s+(.*?))?\s*$")


def read_history(path: str | Path, fmt: str = "auto") -> list[Event]:
    """Read and parse the history at ``path`` (``fmt`` one of :data:`FORMATS`
    or ``"auto"``). Raises :class:`HistoryError` if the file cannot be read
    or is malformed."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > HISTORY_BYTES_MAX:
            raise HistoryError(f"history is {size} bytes, over the {HISTORY_BYTES_MAX}-byte limit",
                               source=str(p))
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise HistoryError(f"cannot read: {e.strerror or e}", source=str(p)) from None
    except UnicodeDecodeError as e:
        raise HistoryError(f"not UTF-8 text (byte {e.start})", source=str(p)) from None
    return parse_history(text, fmt, source=str(p))


def parse_history(text: str, fmt: str = "auto", *, source: str = "") -> list[Event]:
    """Parse ``text`` as ``fmt`` (:data:`FORMATS` or ``"auto"``, see
    :func:`detect_format`)."""
    if fmt == "auto":
        fmt = detect_format(text, source=source)
    if fmt == "edn":
        return parse_edn(text, source=source)
    if fmt == "jepsen-log":
        return parse_jepsen_log(text, source=source)
    if fmt == "jsonl":
        return parse_jsonl(text, source=source)
    raise HistoryError(f"unknown format {fmt!r} (want auto or one of {', '.join(FORMATS)})", source=source)


def detect_format(text: str, *, source: str = "") -> str:
    """The format of ``text`` from its first non-blank line that is not an
    EDN ``;`` comment: ``{"`` is jsonl, ``{:``, ``[`` or ``(`` is edn, a
    ``jepsen.util`` line is jepsen-log. An empty text reads as jsonl (no
    events)."""
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith(";"):
            continue
        if s.startswith("{"):
            return "jsonl" if s[1:].lstrip().startswith(('"', "}")) else "edn"
        if s.startswith(("[", "(")):
            return "edn"
        if "jepsen.util" in text:
            return "jepsen-log"
        raise HistoryError("cannot tell the format from the first line "
                           "(want EDN maps, JSON lines or jepsen.util log lines; use --format)",
                           source=source, line=n)
    return "jsonl"


def _event(fields: dict[str, Any], index: int, line: int, source: str) -> Event:
    """Build one event from a map of fields (keyword or string keys), checking types."""
    def need(name: str) -> Any:
        if name not in fields:
            raise HistoryError(f"event has no {name!r} field", source=source, line=line)
        return fields[name]

    process = need("process")
    if isinstance(process, bool) or not isinstance(process, int | str):
        raise HistoryError(f"process must be an integer or a name, not {process!r}", source=source, line=line)
    kind = need("type")
    if kind not in EVENT_TYPES:
        raise HistoryError(f"type must be one of {', '.join(EVENT_TYPES)}, not {kind!r}", source=source, line=line)
    f = need("f")
    if not isinstance(f, str) or not f:
        raise HistoryError(f"f must be a name, not {f!r}", source=source, line=line)
    time = fields.get("time", index)
    if isinstance(time, bool) or not isinstance(time, int | float) or not math.isfinite(time):
        raise HistoryError(f"time must be a finite number, not {time!r}", source=source, line=line)
    key = _freeze(fields.get("key"))
    if not isinstance(key, Hashable) or isinstance(key, dict | float):
        raise HistoryError(f"key must be a string, number or list, not {key!r}", source=source, line=line)
    return Event(process=str(process) if isinstance(process, str) else process, type=str(kind), f=str(f),
                 key=key, value=fields.get("value"), time=time, line=line)


def parse_edn(text: str, *, source: str = "") -> list[Event]:
    """Jepsen EDN events: one map per line, or one vector ``[...]`` or list
    ``(...)`` of maps (a Jepsen ``history.edn``), with ``;`` comment lines
    anywhere. Each event's ``line`` is the file line its map starts on."""
    first = skip_blank(text, 0)
    if text.startswith(("[", "("), first):
        return _parse_edn_sequence(text, source)
    events = []
    for n, raw in enumerate(text.splitlines(), 1):
        s = raw.strip()
        if not s or s.startswith(";"):
            continue
        try:
            value = read_edn(s)
        except EdnError as e:
            raise HistoryError(f"bad EDN: {e}", source=source, line=n) from None
        events.append(_edn_event(value, len(events), n, source))
    return events


def _parse_edn_sequence(text: str, source: str) -> list[Event]:
    try:
        items = read_edn_items(text)
    except EdnError as e:
        line = text.count("\n", 0, max(0, e.column - 1)) + 1
        raise HistoryError(f"bad EDN: {e}", source=source, line=line) from None
    return [_edn_event(v, i, line, source) for i, (v, line) in enumerate(items)]


def _edn_event(value: Any, index: int, line: int, source: str) -> Event:
    if not isinstance(value, dict):
        raise HistoryError(f"an event must be an EDN map, not {type(value).__name__}", source=source, line=line)
    fields = {str(k): v for k, v in value.items() if isinstance(k, Keyword)}
    return _event(fields, index, line, source)


def parse_jepsen_log(text: str, *, source: str = "") -> list[Event]:
    """Events from the ``jepsen.util`` lines of a Jepsen log.

    ``INFO jepsen.util - P :TYPE :F VALUE``: P is the process (a number, or
    ``:nemesis``), VALUE an EDN value. A completion whose value is
    ``:timed-out`` (Jepsen's timeout) carries no result: it keeps the invoke's
    value, so an ``:info :write :timed-out`` is a write of the invoked value
    whose outcome is unknown.
    """
    events = []
    for n, raw in enumerate(text.splitlines(), 1):
        if "jepsen.util" not in raw:
            continue
        m = _LOG_LINE.search(raw)
        if m is None:
            raise HistoryError("not a 'jepsen.util - PROCESS :TYPE :F VALUE' line", source=source, line=n)
        proc_s, kind, f, value_s = m.groups()
        try:
            process: int | str = int(proc_s)
        except ValueError:
            if not proc_s.startswith(":"):
                raise HistoryError(f"process must be a number or a :keyword, not {proc_s!r}",
                                   source=source, line=n) from None
            process = proc_s[1:]
        try:
            value = read_edn(value_s) if value_s else None
        except EdnError as e:
            raise HistoryError(f"bad value {value_s!r}: {e}", source=source, line=n) from None
        fields: dict[str, Any] = {"process": process, "type": kind, "f": f, "value": value}
        if value == "timed-out" and isinstance(value, Keyword) and kind != "invoke":
            fields["value"] = None
        events.append(_event(fields, len(events), n, source))
    return events


def parse_jsonl(text: str, *, source: str = "") -> list[Event]:
    """Events from JSON lines (one object per line; blank lines skipped)."""
    events = []
    for n, raw in enumerate(text.splitlines(), 1):
        s = raw.strip()
        if not s:
            continue
        try:
            obj = json.loads(s)
        except json.JSONDecodeError as e:
            raise HistoryError(f"bad JSON: {e.msg} (column {e.colno})", source=source, line=n) from None
        except RecursionError:
            raise HistoryError("bad JSON: nested too deeply", source=source, line=n) from None
        if not isinstance(obj, dict):
            raise HistoryError(f"an event must be a JSON object, not {type(obj).__name__}", source=source, line=n)
        events.append(_event(obj, len(events), n, source))
    return events


def _freeze(value: Any) -> Any:
    return tuple(_freeze(v) for v in value) if isinstance(value, list) else value
