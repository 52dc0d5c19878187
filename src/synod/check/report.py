"""How a failed check is shown: a few lines of text, one sentence saying
why, one HTML page, and the same window as JSON.

The page is self-contained (inline CSS and SVG, no script, no network): one
sentence saying why the window is illegal (:func:`why_illegal`), then one
lane per process, each operation a bar from its invoke to its completion
over the failing window's stretch of time, ``info`` operations running off
the right edge. Colours: the operation that could not be placed (red), the
other operations of the failing window not linearized (amber), those of the
longest linearizable prefix (blue, numbered in linearization order), and
the rest (grey). Time is drawn by rank (every distinct invoke or completion
time one step, so that long idle gaps do not squeeze the picture), on an
axis whose ticks give the file line of the event at each step and its time
relative to the window's start. A step is widened until every bar's label
fits inside its bar, so labels are whole (up to ``LABEL_CHARS_MAX``
characters; hovering a bar shows the whole operation).
"""

from __future__ import annotations

import html
from collections.abc import Hashable

from synod.check.history import INF, Operation
from synod.check.linearizability import CheckResult, Counterexample
from synod.check.models import ILLEGAL, Model

__all__ = ["explain", "json_value", "render_html", "why_illegal", "window_json"]

CONTEXT_OPS = 8         # prefix operations shown before the failing window
LANE_HEIGHT_PX = 34
STEP_PX = 40            # the narrowest step between two successive times
CHAR_PX = 6.7           # width of one character of the 11px monospace labels
LABEL_CHARS_MAX = 80    # a longer label is cut (its tooltip has all of it)
LEFT_PX = 110
AXIS_PX = 56            # height of the time axis under the lanes
OPEN_END_PX = 60        # how far an info bar runs past the last step


def _lines(op: Operation) -> str:
    a, b = op.lines
    return f"line {a}" if not b else f"lines {a}-{b}"


def explain(result: CheckResult, model: Model, source: str = "") -> list[str]:
    """A few lines saying where and why the check failed (empty unless
    illegal): the verdict, one sentence why (:func:`why_illegal`), the
    longest prefix, the stuck operation and the concurrent ones."""
    c = result.counterexample
    if c is None:
        return []
    key = "" if c.key is None else f" on key {c.key!r}"
    last = c.states[-1] if c.states else c.initial_state
    out = [f"{source + ': ' if source else ''}not linearizable{key}",
           f"  why: {why_illegal(c, model)}",
           f"  longest linearizable prefix: {len(c.prefix)} operations, ending in state "
           f"{model.describe_state(last)}",
           f"  cannot place: process {c.stuck.process} {model.describe(c.stuck)} ({_lines(c.stuck)})"]
    others = [op for op in c.pending if op is not c.stuck]
    if others:
        out.append(f"  concurrent and not linearized ({len(others)}): "
                   + "; ".join(f"p{op.process} {model.describe(op)} ({_lines(op)})" for op in others[:6])
                   + (" ..." if len(others) > 6 else ""))
    return out


def why_illegal(c: Counterexample, model: Model) -> str:
    """One sentence saying why the window is illegal: what the stuck
    operation saw or did, the state the longest linearizable prefix left,
    and that nothing concurrent could change it. For example: ``process 2's
    read returned 1, but the value was 2 after the longest linearizable
    prefix (#2: process 1 cas [1 2] -> ok, lines 3-4), and no operation
    concurrent with it is left that could make it legal.``"""
    op = c.stuck
    key = "" if c.key is None else f" on key {model.describe_state(c.key)}"
    state = c.states[-1] if c.states else c.initial_state
    if c.prefix:
        last = c.prefix[-1]
        after = (f"after the longest linearizable prefix (#{len(c.prefix)}: process {last.process} "
                 f"{model.describe(last)}, {_lines(last)})")
    else:
        after = "in the initial state (no operation could be linearized before it)"
    others = [o for o in c.pending if o is not op]
    if others:
        listed = (", ".join(f"process {o.process} {model.describe(o)}" for o in others[:3])
                  + (" ..." if len(others) > 3 else ""))
        tail = (f", and the one concurrent operation not linearized ({listed}) cannot be placed before it "
                "to make it legal" if len(others) == 1 else
                f", and none of the {len(others)} concurrent operations not linearized ({listed}) can be "
                "placed before it to make it legal")
    else:
        tail = ", and no operation concurrent with it is left that could change that"
    step = model.compile(op)
    legal_here = step is not None and step(state) is not ILLEGAL
    if legal_here:
        return (f"Process {op.process}'s {model.describe(op)}{key} fits the state "
                f"{model.describe_state(state)} {after}, but every order that places it there leaves "
                f"an operation that returned before it with no legal place.")
    if op.f in model.read_functions and op.known:
        return (f"Process {op.process}'s {op.f}{key} returned {model.describe_state(op.output)}, but the value "
                f"was {model.describe_state(state)} {after}{tail}.")
    return (f"Process {op.process}'s {model.describe(op)}{key} cannot happen in state "
            f"{model.describe_state(state)} {after}{tail}.")


def json_value(value: object) -> object:
    """A history value as JSON can hold it: tuples and sets as lists, other
    non-JSON values as their text."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (INF, -INF) else None
    if isinstance(value, tuple | list):
        return [json_value(v) for v in value]
    if isinstance(value, frozenset | set):
        return sorted((json_value(v) for v in value), key=repr)
    return str(value)


def _op_json(op: Operation, model: Model, order: dict[int, int], stuck_id: int) -> dict[str, object]:
    return {"id": op.id, "process": json_value(op.process), "f": op.f, "value": json_value(op.value),
            "output": json_value(op.output), "status": op.status, "describe": model.describe(op),
            "lines": [op.lines[0], op.lines[1] or None], "linearized": order.get(op.id),
            "stuck": op.id == stuck_id}


def window_json(result: CheckResult, model: Model) -> dict[str, object]:
    """The failing window of an illegal ``result`` as a JSON-ready dict:
    key, why, stuck, window (with file lines), the end of the longest prefix
    with states."""
    c = result.counterexample
    assert c is not None, "window_json needs an illegal result"
    order = {op.id: n for n, op in enumerate(c.prefix, 1)}
    start = max(0, len(c.prefix) - CONTEXT_OPS)
    return {
        "key": json_value(c.key), "why": why_illegal(c, model),
        "stuck": _op_json(c.stuck, model, order, c.stuck.id),
        "prefix_length": len(c.prefix),
        "final_state": json_value(c.states[-1] if c.states else c.initial_state),
        "window": [_op_json(op, model, order, c.stuck.id) for op in c.window],
        "pending": [op.id for op in c.pending],
        "prefix_end": [dict(_op_json(op, model, order, c.stuck.id), state=json_value(st))
                       for op, st in zip(c.prefix[start:], c.states[start:])],
    }


def _view(c: Counterexample, ops: list[Operation]) -> tuple[float, float, list[Operation]]:
    """The stretch of time drawn and the operations of the key inside it."""
    finite = [op for op in (*c.pending, *c.prefix[-CONTEXT_OPS:]) if op.ret != INF]
    t0 = min([c.stuck.call] + [op.call for op in finite])
    t1 = max([c.stuck.ret] + [op.ret for op in finite])
    shown = [op for op in ops if op.key == c.key and op.call <= t1 and op.ret >= t0]
    return t0, t1, shown


def _clip(text: str, chars: int) -> str:
    """``text`` cut to fit ``chars`` characters (the tooltip has all of it)."""
    if len(text) <= chars:
        return text
    return text[:max(chars - 1, 0)] + "\u2026" if chars > 1 else ""


def _label_px(text: str) -> int:
    return int(min(len(text), LABEL_CHARS_MAX) * CHAR_PX + 0.999) + 10


def _layout(times: list[float], shown: list[Operation], labels: dict[int, str]) -> tuple[dict[float, int], int]:
    """x of each time (steps of at least STEP_PX, widened so that every
    finite bar holds its label) and the right edge (room for open bars'
    labels)."""
    rank = {t: i for i, t in enumerate(times)}
    need: dict[int, list[tuple[int, int]]] = {}
    for op in shown:
        if op.ret in rank and op.call in rank:
            need.setdefault(rank[op.ret], []).append((rank[op.call], _label_px(labels[op.id])))
    xs: list[int] = []
    for i in range(len(times)):
        x = LEFT_PX + 10 if i == 0 else xs[-1] + STEP_PX
        for j, width in need.get(i, ()):
            x = max(x, xs[j] + width) if j < i else x
        xs.append(x)
    x_of = dict(zip(times, xs))
    right = (xs[-1] if xs else LEFT_PX) + OPEN_END_PX
    for op in shown:
        if op.ret not in x_of:
            right = max(right, x_of.get(op.call, LEFT_PX) + _label_px(labels[op.id]) + 8)
    return x_of, right + 10


def _axis(times: list[float], x_of: dict[float, int], shown: list[Operation], y: int, right: int) -> str:
    """The time axis under the lanes: a tick per step, labelled with the
    file line of the event there and its time relative to the window's start."""
    line_at: dict[float, int] = {}
    for op in shown:
        for t, line in ((op.call, op.lines[0]), (op.ret, op.lines[1])):
            if line and t in x_of:
                line_at[t] = min(line, line_at.get(t, line))
    t0 = times[0]
    out = [f'<line x1="{LEFT_PX}" y1="{y}" x2="{right}" y2="{y}" class="axis"/>',
           f'<text x="6" y="{y + 16}" class="lane">file line</text>',
           f'<text x="6" y="{y + 32}" class="lane">time \u2212 t0</text>']
    last_x = -10**9
    for t in times:
        x = x_of[t]
        out.append(f'<line x1="{x}" y1="{y - 4}" x2="{x}" y2="{y + 4}" class="axis"/>')
        if x - last_x < 34:  # no room for a label: the tick alone
            continue
        last_x = x
        if t in line_at:
            out.append(f'<text x="{x}" y="{y + 16}" class="tick">{line_at[t]}</text>')
        out.append(f'<text x="{x}" y="{y + 32}" class="tick">+{_fmt_time(t - t0)}</text>')
    out.append(f'<text x="{LEFT_PX}" y="{y + 48}" class="tick start">real-time order \u2192 '
               f'(one step per invoke or completion; t0 = {_fmt_time(t0)}, in the history\'s time unit: '
               f'ns for Jepsen, the event\'s position when it has no times)</text>')
    return "".join(out)


def _fmt_time(t: float) -> str:
    """A time in the history's own unit (ns for Jepsen, the event's position
    when it has no times), short: 1.5k, 12M."""
    if t == int(t) and abs(t) < 10_000:
        return str(int(t))
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(t) >= div:
            return f"{t / div:.3g}{suffix}"
    return f"{t:.3g}"


def _svg(result: CheckResult, model: Model) -> str:
    """The lanes: one per process, one bar per operation in the view, and the time axis."""
    c = result.counterexample
    assert c is not None
    t0, t1, shown = _view(c, list(result.operations))
    times = sorted({t for op in shown for t in (op.call, op.ret) if t0 <= t <= t1 and t != INF}
                   | {t0, t1})
    order = {op.id: n for n, op in enumerate(c.prefix, 1)}
    labels = {op.id: (f"#{order[op.id]} " if op.id in order else "") + model.describe(op) for op in shown}
    x_of, right = _layout(times, shown, labels)
    procs: list[Hashable] = sorted({op.process for op in shown}, key=lambda p: (str(type(p)), p))
    lane = {p: i for i, p in enumerate(procs)}
    window_ids = {op.id for op in c.window}
    pending_ids = {op.id for op in c.pending}
    axis_y = 30 + len(procs) * LANE_HEIGHT_PX + 8
    height = axis_y + AXIS_PX
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{right}" height="{height}" role="img">']
    for p, i in lane.items():
        y = 30 + i * LANE_HEIGHT_PX
        name = f"process {p}"
        svg.append(f'<text x="6" y="{y + 18}" class="lane"><title>{html.escape(name)}</title>'
                   f'{html.escape(_clip(name, 15))}</text>'
                   f'<line x1="{LEFT_PX}" y1="{y + LANE_HEIGHT_PX - 2}" x2="{right}" '
                   f'y2="{y + LANE_HEIGHT_PX - 2}" class="rule"/>')
    for op in shown:
        y = 30 + lane[op.process] * LANE_HEIGHT_PX + 4
        xa = x_of.get(op.call, LEFT_PX)
        xb = x_of[op.ret] if op.ret in x_of else right - 8
        cls = ("stuck" if op.id == c.stuck.id else "pending" if op.id in pending_ids
               else "prefix" if op.id in order else "other")
        if op.id in window_ids:
            cls += " window"
        tip = (f"process {op.process}: {model.describe(op)} ({_lines(op)})"
               + (f"; linearized #{order[op.id]}" if op.id in order else "; not linearized"))
        open_end = ' stroke-dasharray="4 3"' if op.ret == INF else ""
        width = max(xb - xa, 6)
        text = _clip(labels[op.id], LABEL_CHARS_MAX)
        svg.append(f'<g class="op {cls}" data-op="{op.id}"><title>{html.escape(tip)}</title>'
                   f'<rect x="{xa}" y="{y}" width="{width}" height="{LANE_HEIGHT_PX - 10}" rx="4"'
                   f'{open_end}/><text x="{xa + 4}" y="{y + 16}">{html.escape(text)}</text></g>')
    svg.append(_axis(times, x_of, shown, axis_y, right))
    svg.append("</svg>")
    return "".join(svg)


def _tables(c: Counterexample, model: Model) -> tuple[str, str]:
    """Rows of the failing window and of the end of the longest prefix."""
    order = {op.id: n for n, op in enumerate(c.prefix, 1)}
    rows = []
    for op in c.window:
        status = ("cannot be placed" if op.id == c.stuck.id else
                  f"linearized #{order[op.id]}" if op.id in order else "not linearized")
        rows.append(f"<tr class=\"{'stuck' if op.id == c.stuck.id else ''}\"><td>{html.escape(str(op.process))}"
                    f"</td><td><code>{html.escape(model.describe(op))}</code></td><td>{_lines(op)}</td>"
                    f"<td>{status}</td></tr>")
    prefix_rows = []
    start = max(0, len(c.prefix) - CONTEXT_OPS)
    for n, (op, st) in enumerate(zip(c.prefix[start:], c.states[start:]), start + 1):
        prefix_rows.append(f"<tr><td>#{n}</td><td>{html.escape(str(op.process))}</td>"
                           f"<td><code>{html.escape(model.describe(op))}</code></td><td>{_lines(op)}</td>"
                           f"<td><code>{html.escape(model.describe_state(st))}</code></td></tr>")
    return "".join(rows), "".join(prefix_rows)


_CSS = """
body { font: 14px system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 20px; } code { font-family: ui-monospace, monospace; }
.scroll { overflow-x: auto; border: 1px solid #ddd; padding: 6px; }
svg text { font: 11px ui-monospace, monospace; } svg text.lane { font: 12px system-ui; fill: #555; }
.rule { stroke: #eee; } .axis { stroke: #888; }
svg text.tick { font: 10px ui-monospace, monospace; fill: #555; text-anchor: middle; }
svg text.tick.start { text-anchor: start; font: 11px system-ui; }
p.why { font-size: 16px; background: #fff4f4; border-left: 4px solid #c00; padding: 8px 12px; }
.op rect { fill: #e4e4e4; stroke: #aaa; }
.op.prefix rect { fill: #cfe0f7; stroke: #4a78b5; }
.op.pending rect { fill: #ffe3a3; stroke: #c98a00; stroke-width: 2; }
.op.stuck rect { fill: #ffb3b3; stroke: #c00; stroke-width: 3; }
.op.window.prefix rect { stroke-width: 2; }
table { border-collapse: collapse; margin: 8px 0 20px; } td, th { border: 1px solid #ddd; padding: 3px 8px; }
tr.stuck td { background: #ffe0e0; }
.legend span { display: inline-block; padding: 1px 8px; margin-right: 8px; border-radius: 4px; }
"""


def render_html(result: CheckResult, model: Model, source: str = "") -> str:
    """The page for an illegal ``result`` (AssertionError if it is not)."""
    c = result.counterexample
    assert c is not None, "render_html needs an illegal result"
    rows, prefix_rows = _tables(c, model)
    summary = "".join(f"<li>{html.escape(line.strip())}</li>" for line in explain(result, model, source)[2:])
    key = "" if c.key is None else f" (key {html.escape(repr(c.key))})"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>synod check lin: not linearizable</title>
<style>{_CSS}</style></head><body>
<h1>Not linearizable: {html.escape(source or "history")}{key}</h1>
<p class="why">{html.escape(why_illegal(c, model))}</p>
<p>Model <b>{html.escape(result.model)}</b> (initial state
<code>{html.escape(model.describe_state(c.initial_state))}</code>); {len(result.operations)} operations in
{result.partitions} key(s); {result.configurations} configurations explored.</p>
<ul>{summary}</ul>
<p class="legend"><span style="background:#ffb3b3">cannot be placed</span>
<span style="background:#ffe3a3">concurrent, not linearized</span>
<span style="background:#cfe0f7">linearized (#order)</span>
<span style="background:#e4e4e4">other</span> dashed: outcome unknown (info), open to the end</p>
<div class="scroll">{_svg(result, model)}</div>
<h2>Failing window</h2>
<table><tr><th>process</th><th>operation</th><th>source</th><th>in the longest prefix</th></tr>
{rows}</table>
<h2>End of the longest linearizable prefix</h2>
<table><tr><th>order</th><th>process</th><th>operation</th><th>source</th><th>state after</th></tr>
{prefix_rows}</table>
</body></html>
"""
