"""The page: the model as compact JSON, embedded with the viewer's CSS and
JavaScript in one HTML file that needs no network.

The payload is columnar (one array per field: send times, receive times,
lanes, type indexes...), so 100k trace lines embed as a few MB plus the
hover texts; the browser draws only the visible time window (see
``_viewer.js``). Hover texts are one string per record, each value cut to
DETAIL_VALUE_CHARS_MAX characters and the whole to DETAIL_CHARS_MAX.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from importlib import resources
from typing import Any

from synod.viz._load import Record
from synod.viz._model import NEMESIS_LANE, TraceModel, nemesis_label
from synod.viz._pairing import DELIVERED, DROPPED
from synod.viz.constants import (
    ARROWS_DRAWN_MAX,
    DETAIL_CHARS_MAX,
    DETAIL_VALUE_CHARS_MAX,
    EVENTS_DRAWN_MAX,
    LABEL_CHARS_MAX,
    OVERVIEW_BINS,
)

__all__ = ["render_html", "payload"]

_STATUS_CODE = {DELIVERED: 0, DROPPED: 1}  # anything else: 2, in flight
_FLAG_DUPLICATE = 4
_FLAG_AT_SEND = 8
ORIGIN_ZERO_MS_MAX = 3_600_000.0  # a simulated trace starting later than this counts from its start


_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def detail_text(r: Record, skip: tuple[str, ...] = ()) -> str:
    """``key: value`` lines of a record's fields, then where it came from."""
    lines = []
    for key, value in r.fields.items():
        if key in skip:
            continue
        cls = type(value)
        text = value if cls is str else repr(value) if cls is int or cls is float else _dumps(value)
        lines.append(f"{key}: {_cut(text, DETAIL_VALUE_CHARS_MAX)}")
    lines.append(f"line: {r.where}")
    return _cut("\n".join(lines), DETAIL_CHARS_MAX)


class _Details:
    """The table of hover texts; each record's text is stored once."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self._index: dict[int, int] = {}

    def add(self, r: Record | None, skip: tuple[str, ...] = ()) -> int:
        if r is None:
            return -1
        i = self._index.get(r.index)
        if i is None:
            i = self._index[r.index] = len(self.texts)
            self.texts.append(detail_text(r, skip))
        return i


def _arrows(model: TraceModel, lane: dict[str, int], det: _Details) -> tuple[dict[str, list[Any]], list[str]]:
    types = [t for t, _ in Counter(a.msg_type for a in model.arrows).most_common()]
    type_index = {t: i for i, t in enumerate(types)}
    cols: dict[str, list[Any]] = {k: [] for k in ("ts", "te", "s", "d", "y", "f", "ds", "de")}
    for a in model.arrows:
        flags = (_STATUS_CODE.get(a.status, 2) | (_FLAG_DUPLICATE if a.duplicate else 0)
                 | (_FLAG_AT_SEND if a.at_send else 0))
        cols["ts"].append(a.send.t_ms)
        cols["te"].append(a.send.t_ms if a.end is None else a.end.t_ms)
        cols["s"].append(lane[a.src])
        cols["d"].append(lane[a.dst])
        cols["y"].append(type_index[a.msg_type])
        cols["f"].append(flags)
        cols["ds"].append(det.add(a.send))
        cols["de"].append(det.add(a.end, skip=("msg",)))
    return cols, types


def _points(model: TraceModel, lane: dict[str, int], det: _Details) -> tuple[dict[str, list[Any]], list[str]]:
    kinds = [k for k, _ in Counter(r.kind for r in model.points).most_common()]
    kind_index = {k: i for i, k in enumerate(kinds)}
    cols: dict[str, Any] = {"t": [], "l": [], "k": [], "dt": [], "lb": {}}
    for i, r in enumerate(model.points):
        cols["t"].append(r.t_ms)
        cols["l"].append(lane[r.node])
        cols["k"].append(kind_index[r.kind])
        cols["dt"].append(det.add(r))
        if r.kind == "nemesis":
            cols["lb"][str(i)] = _cut(nemesis_label(r.fields), LABEL_CHARS_MAX)
    return cols, kinds


def _histogram(model: TraceModel, lane: dict[str, int]) -> dict[str, Any]:
    """The overview strip: messages sent per bin (``sends``), drops per bin,
    crash times, and per lane (``lanes[l][bin]``) the messages it sent or
    received plus its other events but timers: where each node was busy."""
    span = max(model.end_ms - model.start_ms, 1e-9)
    sends = [0] * OVERVIEW_BINS
    drops = [0] * OVERVIEW_BINS
    per_lane = [[0] * OVERVIEW_BINS for _ in model.lanes]

    def bin_of(t: float) -> int:
        return min(OVERVIEW_BINS - 1, int((t - model.start_ms) / span * OVERVIEW_BINS))

    for a in model.arrows:
        if a.end is not None:
            per_lane[lane[a.dst]][bin_of(a.end.t_ms)] += a.status != DROPPED
        if a.duplicate:
            continue
        b = bin_of(a.send.t_ms)
        sends[b] += 1
        per_lane[lane[a.src]][b] += 1
        if a.status == DROPPED and a.end is not None:
            drops[bin_of(a.end.t_ms)] += 1
    for r in model.points:
        if r.kind != "timer":
            per_lane[lane[r.node]][bin_of(r.t_ms)] += 1
    for op in model.client_ops:
        per_lane[lane[op.node]][bin_of(op.invoke.t_ms)] += 1
    crashes = [r.t_ms for r in model.points if r.kind in ("crash", "exit")]
    return {"bins": OVERVIEW_BINS, "sends": sends, "drops": drops, "crashes": crashes, "lanes": per_lane}


def _checks(model: TraceModel, det: _Details) -> list[dict[str, Any]]:
    """The check records, each with the time span of the operations it names."""
    out = []
    for r in model.checks:
        named = [op for op in model.client_ops if op.failing is not None]
        # Where to look first: the operation the checker could not place
        # and the concurrent ones it could not linearize; the window's other
        # operations may be long (an info append runs to the end).
        focus = [op for op in named if op.failing in ("stuck", "pending")] or named
        out.append({
            "verdict": _label(r.fields.get("verdict", "")),
            "checker": _label(r.fields.get("checker", "check")),
            "text": _cut(_label(r.fields.get("summary", "")), DETAIL_CHARS_MAX),
            "ops": len(named),
            "window": ([min(op.invoke.t_ms for op in named), max(op.end_ms for op in named)] if named else None),
            "focus": ([min(op.invoke.t_ms for op in focus), max(op.end_ms for op in focus)] if focus else None),
            "dt": det.add(r),
        })
    return out


def _label(value: Any) -> str:
    return value if type(value) is str else _dumps(value)


def time_origin(model: TraceModel) -> float:
    """Where the page's time axis counts from: 0 for a simulated run (virtual
    time starts at 0), the first record's time for a real one (a monotonic
    clock, its records also carry ``unix_ms``) or any trace starting late."""
    records = model.records
    if records and "unix_ms" not in records[0].fields and 0.0 <= model.start_ms <= ORIGIN_ZERO_MS_MAX:
        return 0.0
    return model.start_ms


def payload(model: TraceModel, *, title: str, source: str) -> dict[str, Any]:
    """The JSON the page embeds (field names are the viewer's)."""
    lane = {name: i for i, name in enumerate(model.lanes)}
    clients = {op.node for op in model.client_ops}
    det = _Details()
    arrows, types = _arrows(model, lane, det)
    points, kinds = _points(model, lane, det)
    return {
        "title": title,
        "source": source,
        "t0": model.start_ms,
        "t1": model.end_ms,
        "origin": time_origin(model),
        "lanes": model.lanes,
        "laneGroup": [0 if n == NEMESIS_LANE else 2 if n in clients else 1 for n in model.lanes],
        "types": types,
        "kinds": kinds,
        "arrows": arrows,
        "points": points,
        "intervals": [[lane[iv.node], iv.start_ms, iv.end_ms, 0 if iv.what == "down" else 1, int(iv.open),
                       det.add(iv.first), det.add(iv.last)] for iv in model.intervals],
        "states": [[lane[s.node], s.start_ms, s.end_ms, s.role, "" if s.term is None else _label(s.term),
                    det.add(s.record)] for s in model.states],
        "ops": [[lane[op.node], op.row, op.invoke.t_ms, op.end_ms, op.outcome or "",
                 _cut(op.label(), LABEL_CHARS_MAX), det.add(op.invoke), det.add(op.complete), op.failing or ""]
                for op in model.client_ops],
        "bands": [[lane[b.node], b.start_ms, b.end_ms, b.label, det.add(b.first), det.add(b.last), b.row]
                  for b in model.bands],
        "details": det.texts,
        "overview": _histogram(model, lane),
        "checks": _checks(model, det),
        "stats": {"records": len(model.records), **model.message_counts()},
        "limits": {"arrows": ARROWS_DRAWN_MAX, "events": EVENTS_DRAWN_MAX},
    }


def _script_json(obj: Any) -> str:
    """JSON safe inside a <script> element: no '<', '>' or '&' appear raw."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _asset(name: str) -> str:
    return resources.files("synod.viz").joinpath(name).read_text(encoding="utf-8")


def render_html(model: TraceModel, *, title: str, source: str = "") -> str:
    """One self-contained HTML page drawing ``model`` (inline CSS, JS and
    data; no network). ``source``: the trace file names, shown under the title."""
    data = payload(model, title=title, source=source)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<style>\n{_asset('_viewer.css')}</style>\n</head>\n<body>\n"
        f"{_asset('_viewer.html')}"
        f"<script id=\"trace-data\" type=\"application/json\">{_script_json(data)}</script>\n"
        f"<script>\n{_asset('_viewer.js')}</script>\n</body>\n</html>\n"
    )
