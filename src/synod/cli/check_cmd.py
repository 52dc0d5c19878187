"""``synod check``: checkers for recorded histories (DESIGN.md section 7).

``synod check lin HISTORY --model kv|register|cas-register|set|queue|mutex``
reads a history (Jepsen EDN maps, Jepsen ``jepsen.util`` log lines or JSON
lines; see docs/checker.md), checks it for linearizability and exits with

- 0: linearizable;
- 1: not linearizable; the failing window is printed and written as an HTML
  page (``--html OUT``, by default ``HISTORY``'s name with ``.lin.html`` in
  the current directory);
- 2: bad arguments or unreadable/malformed input (one line on stderr);
- 3: unknown: ``--timeout`` ran out first (or the search reached its bound
  on memoized configurations, ``CONFIGURATIONS_MAX``).

``--json`` prints one JSON object instead of the text (same exit statuses).
Warnings (a history whose times go backwards) go to stderr.

Start-up matters for a command run on many small files: this module imports
only click at import time; ``synod.check`` is imported when the command runs.
The choices below are the checker's :data:`synod.check.MODELS` and
:data:`synod.check.FORMATS` (a test keeps them equal).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

if TYPE_CHECKING:
    from synod.check import CheckResult, Model

__all__ = ["check", "FORMAT_NAMES", "MODEL_NAMES", "parse_initial_value"]

EXIT_OK, EXIT_ILLEGAL, EXIT_USAGE, EXIT_UNKNOWN = 0, 1, 2, 3
MODEL_NAMES = ("register", "cas-register", "kv", "set", "queue", "mutex")
FORMAT_NAMES = ("edn", "jepsen-log", "jsonl")
REGISTER_MODELS = ("register", "cas-register")


def _fail(message: str) -> NoReturn:
    click.echo(f"synod check lin: error: {message}", err=True)
    sys.exit(EXIT_USAGE)


class _OneLineErrors(click.Command):
    """Argument errors as one line on stderr and exit 2 (not click's usage block)."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: object) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)  # type: ignore[arg-type]
        except click.UsageError as e:
            _fail(" ".join(e.format_message().split()))


def parse_initial_value(text: str) -> int | str | None:
    """``--initial-value``: an integer (``0``), a quoted string (``'"x"'``)
    or nil (``nil`` or ``null``), as EDN or JSON write them. ValueError
    otherwise."""
    import json

    s = text.strip()
    if s in ("nil", "null"):
        return None
    try:
        value = json.loads(s)
    except json.JSONDecodeError:
        value = ...
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"--initial-value must be an integer, a quoted string or nil, not {text!r}")
    return value


@click.group()
def check() -> None:
    """Check recorded histories of concurrent operations."""


@check.command("lin", cls=_OneLineErrors)
@click.argument("history", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", "model_name", type=click.Choice(MODEL_NAMES), required=True,
              help="sequential specification to check against")
@click.option("--format", "fmt", type=click.Choice(["auto", *FORMAT_NAMES]), default="auto", show_default=True,
              help="history format (auto: from the first line)")
@click.option("--timeout", "timeout_s", type=float, default=None, metavar="S",
              help="give up after S seconds (exit 3, verdict unknown)")
@click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="where to write the failing window's page [default: ./HISTORY.lin.html]")
@click.option("--fail-means-mismatch", is_flag=True,
              help="cas-register: a failed cas says the value differed (Porcupine's reading of Jepsen's "
                   "etcd logs) instead of 'did not happen'")
@click.option("--initial-value", "initial_text", default=None, metavar="V",
              help="register, cas-register: the value before the first operation, an integer, a quoted "
                   "string or nil [default: nil; Jepsen's cas-register tests start at 0]")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object (verdict, window, timing)")
def lin(history: Path, model_name: str, fmt: str, timeout_s: float | None, html_out: Path | None,
        fail_means_mismatch: bool, initial_text: str | None, as_json: bool) -> None:
    """Check HISTORY for linearizability against --model."""
    t_start = time.perf_counter()
    if timeout_s is not None and not timeout_s > 0:
        _fail(f"--timeout must be a positive number of seconds, not {timeout_s}")
    options: dict[str, Any] = {}
    if fail_means_mismatch:
        if model_name != "cas-register":
            _fail("--fail-means-mismatch applies to --model cas-register only")
        options["fail_means_mismatch"] = True
    if initial_text is not None:
        if model_name not in REGISTER_MODELS:
            _fail(f"--initial-value applies to --model {' or '.join(REGISTER_MODELS)} only")
        try:
            options["initial"] = parse_initial_value(initial_text)
        except ValueError as e:
            _fail(str(e))

    import warnings

    from synod.check import HistoryError, HistoryWarning, check_events, make_model, read_history

    model = make_model(model_name, **options)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", HistoryWarning)
        try:
            events = read_history(history, fmt)
            t_read = time.perf_counter()
            result = check_events(model, events, timeout_s=timeout_s, source=str(history))
        except HistoryError as e:
            _fail(str(e))
    t_done = time.perf_counter()
    notes = [str(w.message) for w in caught if issubclass(w.category, HistoryWarning)]
    for note in notes:
        click.echo(f"synod check lin: warning: {note}", err=True)
    page = _write_page(result, model, history, html_out) if result.verdict == "illegal" else None
    timing = {"read_ms": (t_read - t_start) * 1e3, "check_ms": (t_done - t_read) * 1e3}
    if as_json:
        _print_json(result, model, history, page, timing, notes)
    else:
        _print_text(result, model, history, timeout_s, page, timing["check_ms"])
    sys.exit({"ok": EXIT_OK, "illegal": EXIT_ILLEGAL}.get(result.verdict, EXIT_UNKNOWN))


def _write_page(result: CheckResult, model: Model, history: Path, html_out: Path | None) -> Path | None:
    """Write the failing window's page; its path, or None (said on stderr) if it could not be written."""
    from synod.check import render_html

    out = html_out if html_out is not None else Path(history.name + ".lin.html")
    try:
        out.write_text(render_html(result, model, str(history)), encoding="utf-8")
    except OSError as e:
        click.echo(f"synod check lin: could not write {out}: {e.strerror or e}", err=True)
        return None
    return out


def _print_text(result: CheckResult, model: Model, history: Path, timeout_s: float | None, page: Path | None,
                check_ms: float) -> None:
    from synod.check import explain

    stats = (f"{len(result.operations)} operations, {result.partitions} key(s), "
             f"{result.configurations} configurations, {check_ms:.1f} ms")
    if result.verdict == "ok":
        click.echo(f"{history}: linearizable ({model.name}; {stats})")
        return
    if result.verdict == "unknown":
        why = f"--timeout {timeout_s:g} s ran out" if result.reason == "time limit" else result.reason
        click.echo(f"{history}: unknown: no verdict ({why}; {stats})")
        return
    for line in explain(result, model, str(history)):
        click.echo(line)
    if page is not None:
        click.echo(f"failing window: {page}")
    click.echo(f"({stats})")


def _print_json(result: CheckResult, model: Model, history: Path, page: Path | None, timing: dict[str, float],
                notes: list[str]) -> None:
    import json

    from synod.check import json_value, window_json

    obj = {
        "file": str(history), "verdict": result.verdict, "model": model.name,
        "initial_value": json_value(model.init()), "operations": len(result.operations),
        "keys": result.partitions, "configurations": result.configurations,
        "reason": result.reason or None,
        "failing_window": window_json(result, model) if result.verdict == "illegal" else None,
        "html": str(page) if page is not None else None,
        "timing_ms": {k: round(v, 3) for k, v in timing.items()}, "warnings": notes,
    }
    click.echo(json.dumps(obj))
