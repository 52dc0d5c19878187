"""``synod trace``: look at a run's trace.

::

    synod trace view run.jsonl --out run.html [--title T]
    synod trace view runs/r1/*/trace.jsonl --out run.html    # a real run: one file per node

``view`` writes one self-contained HTML page (no network needed to open it)
with a space-time diagram of the run; see docs/trace-viewer.md. Bad input (a
missing file, a line that is not a trace record) prints one line naming the
file and line and exits with status 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from synod.viz import TraceError, load_model, render_html

__all__ = ["trace"]


def fail(message: str) -> None:
    """Print one error line and exit with status 2."""
    click.echo(f"synod trace: error: {message}", err=True)
    sys.exit(2)


@click.group()
def trace() -> None:
    """Traces of simulated and real runs."""


@trace.command("view")
@click.argument("traces", nargs=-1, required=True, type=click.Path(dir_okay=True))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False), help="the HTML file to write")
@click.option("--title", default=None, help="page title (default: the trace file name)")
def view(traces: tuple[str, ...], out_path: str, title: str | None) -> None:
    """Write a space-time diagram of TRACES (JSON lines) as one HTML page."""
    try:
        model = load_model(traces)
    except TraceError as e:
        fail(str(e))
    names = ", ".join(Path(t).name for t in traces)
    page = render_html(model, title=title or names, source=", ".join(traces))
    out = Path(out_path)
    try:
        out.write_text(page, encoding="utf-8")
    except OSError as e:
        fail(f"{out}: cannot write ({e.strerror})")
    c = model.message_counts()  # each message sent once, by its fate: the parts add up
    dups = f", and {c['duplicates']} network duplicates" if c["duplicates"] else ""
    click.echo(f"{out}: {len(model.lanes)} lanes, {len(model.records)} trace lines, "
               f"{c['messages']} messages sent ({c['delivered']} delivered, {c['dropped']} dropped, "
               f"{c['in_flight']} in flight at the end){dups}, {len(page) // 1024} KiB")
