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
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from synod.check import FORMATS, MODELS, HistoryError, check_events, explain, make_model, read_history, render_html

__all__ = ["check"]

EXIT_OK, EXIT_ILLEGAL, EXIT_USAGE, EXIT_UNKNOWN = 0, 1, 2, 3


def _fail(message: str) -> None:
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
            raise  # unreachable: _fail exits


@click.group()
def check() -> None:
    """Check recorded histories of concurrent operations."""


@check.command("lin", cls=_OneLineErrors)
@click.argument("history", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", "model_name", type=click.Choice(list(MODELS)), required=True,
              help="sequential specification to check against")
@click.option("--format", "fmt", type=click.Choice(["auto", *FORMATS]), default="auto", show_default=True)
@click.option("--timeout", "timeout_s", type=float, default=None, metavar="S",
              help="give up after S seconds (exit 3, verdict unknown)")
@click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="where to write the failing window's page [default: ./HISTORY.lin.html]")
@click.option("--fail-means-mismatch", is_flag=True,
              help="cas-register: a failed cas says the value differed (Porcupine's reading of Jepsen's "
                   "etcd logs) instead of 'did not happen'")
def lin(history: Path, model_name: str, fmt: str, timeout_s: float | None, html_out: Path | None,
        fail_means_mismatch: bool) -> None:
    """Check HISTORY for linearizability against --model."""
    if timeout_s is not None and not timeout_s > 0:
        _fail(f"--timeout must be a positive number of seconds, not {timeout_s}")
    if fail_means_mismatch and model_name != "cas-register":
        _fail("--fail-means-mismatch applies to --model cas-register only")
    model = make_model(model_name, **({"fail_means_mismatch": True} if fail_means_mismatch else {}))
    try:
        events = read_history(history, fmt)
        t0 = time.perf_counter()
        result = check_events(model, events, timeout_s=timeout_s, source=str(history))
    except HistoryError as e:
        _fail(str(e))
        return
    elapsed_ms = (time.perf_counter() - t0) * 1e3
    stats = (f"{len(result.operations)} operations, {result.partitions} key(s), "
             f"{result.configurations} configurations, {elapsed_ms:.1f} ms")
    if result.verdict == "ok":
        click.echo(f"{history}: linearizable ({model.name}; {stats})")
        sys.exit(EXIT_OK)
    if result.verdict == "unknown":
        why = f"--timeout {timeout_s:g} s ran out" if result.reason == "time limit" else result.reason
        click.echo(f"{history}: unknown: no verdict ({why}; {stats})")
        sys.exit(EXIT_UNKNOWN)
    for line in explain(result, model, str(history)):
        click.echo(line)
    out = html_out if html_out is not None else Path(history.name + ".lin.html")
    try:
        out.write_text(render_html(result, model, str(history)), encoding="utf-8")
    except OSError as e:
        click.echo(f"synod check lin: could not write {out}: {e.strerror or e}", err=True)
    else:
        click.echo(f"failing window: {out}")
    click.echo(f"({stats})")
    sys.exit(EXIT_ILLEGAL)
