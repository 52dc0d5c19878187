"""How a failed check is shown: a few lines of text and one HTML page.

The page is self-contained (inline CSS and SVG, no script, no network): one
lane per process, each operation a bar from its invoke to its completion
over the failing window's stretch of time, ``info`` operations running off
the right edge. Colours: the operation that could not be placed (red), the
other operations of the failing window not linearized (amber), those of the
longest linearizable prefix (blue, numbered in linearization order), and
the rest (grey). Labels are cut to their bar; hovering a bar shows the whole
operation. Time is drawn by rank (every distinct invoke or completion
time one step) so that long idle gaps do not squeeze the picture.
"""

from __future__ import annotations

import html
from collections.abc import Hashable

from synod.check.history import INF, Operation
from synod.check.linearizability import CheckResult, Counterexample
from synod.check.models import Model

__all__ = ["explain", "render_html"]

CONTEXT_OPS = 8         # prefix operations shown before the failing window
LANE_HEIGHT_PX = 34
STEP_PX = 40
CHAR_PX = 6.7           # width of one character of the 11px monospace labels
LEFT_PX = 110


def _lines(op: Operation) -> str:
    a, b = op.lines
    return f"line {a}" if not b else f"lines {a}-{b}"


def explain(result: CheckResult, model: Model, source: str = "") -> list[str]:
    """A few lines saying where the check failed (empty unless illegal)."""
    c = result.counterexample
    if c is None:
        return []
    key = "" if c.key is None else f" on key {c.key!r}"
    last = c.states[-1] if c.states else c.initial_state
    out = [f"{source + ': ' if source else ''}not linearizable{key}",
           f"  longest linearizable prefix: {len(c.prefix)} operations, ending in state "
           f"{model.describe_state(last)}",
           f"  cannot place: process {c.stuck.process} {model.describe(c.stuck)} ({_lines(c.stuck)})"]
    others = [op for op in c.pending if op is not c.stuck]
    if others:
        out.append(f"  concurrent and not linearized ({len(others)}): "
                   + "; ".join(f"p{op.process} {model.describe(op)} ({_lines(op)})" for op in others[:6])
                   + (" ..." if len(others) > 6 else ""))
    return out


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


def _svg(result: CheckResult, model: Model) -> str:
    """The lanes: one per process, one bar per operation in the view."""
    c = result.counterexample
    assert c is not None
    t0, t1, shown = _view(c, list(result.operations))
    times = sorted({t for op in shown for t in (op.call, op.ret) if t0 <= t <= t1 and t != INF}
                   | {t0, t1})
    x_of = {t: LEFT_PX + 10 + i * STEP_PX for i, t in enumerate(times)}
    right = LEFT_PX + 10 + len(times) * STEP_PX + 40
    procs: list[Hashable] = sorted({op.process for op in shown}, key=lambda p: (str(type(p)), p))
    lane = {p: i for i, p in enumerate(procs)}
    order = {op.id: n for n, op in enumerate(c.prefix, 1)}
    window_ids = {op.id for op in c.window}
    pending_ids = {op.id for op in c.pending}
    height = 40 + len(procs) * LANE_HEIGHT_PX
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{right}" height="{height}" role="img">']
    for p, i in lane.items():
        y = 30 + i * LANE_HEIGHT_PX
        svg.append(f'<text x="6" y="{y + 18}" class="lane">process {html.escape(str(p))}</text>'
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
        label = model.describe(op)
        badge = f"#{order[op.id]} " if op.id in order else ""
        tip = (f"process {op.process}: {label} ({_lines(op)})"
               + (f"; linearized #{order[op.id]}" if op.id in order else "; not linearized"))
        open_end = ' stroke-dasharray="4 3"' if op.ret == INF else ""
        width = max(xb - xa, 6)
        text = _clip(badge + label, int((width - 6) / CHAR_PX))
        svg.append(f'<g class="op {cls}" data-op="{op.id}"><title>{html.escape(tip)}</title>'
                   f'<rect x="{xa}" y="{y}" width="{width}" height="{LANE_HEIGHT_PX - 10}" rx="4"'
                   f'{open_end}/><text x="{xa + 4}" y="{y + 16}">{html.escape(text)}</text></g>')
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
.rule { stroke: #eee; }
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
    summary = "".join(f"<li>{html.escape(line.strip())}</li>" for line in explain(result, model, source)[1:])
    key = "" if c.key is None else f" (key {html.escape(repr(c.key))})"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>synod check lin: not linearizable</title>
<style>{_CSS}</style></head><body>
<h1>Not linearizable: {html.escape(source or "history")}{key}</h1>
<p>Model <b>{html.escape(result.model)}</b>; {len(result.operations)} operations in
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
