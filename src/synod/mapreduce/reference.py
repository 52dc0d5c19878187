"""The sequential reference (the lab's mrsequential.go): one process, the same
app, output as one ``key value`` line per key, sorted by key."""

from __future__ import annotations

from collections.abc import Iterable

from synod.mapreduce.app import load_app

__all__ = ["run_sequential", "output_lines"]


def run_sequential(app_spec: str, documents: Iterable[tuple[str, str]],
                   app_args: dict[str, str] | None = None) -> list[str]:
    """Run a synchronous app over ``(filename, contents)`` pairs; returns the
    sorted ``"key value"`` lines (no newlines)."""
    app = load_app(app_spec, app_args)
    if app.map_is_async or app.reduce_is_async:
        raise ValueError(f"app {app_spec} needs a worker environment; run it as a job")
    groups: dict[str, list[str]] = {}
    for filename, contents in documents:
        for key, value in app.map(filename, contents):
            groups.setdefault(key, []).append(value)
    return [f"{key} {app.reduce(key, groups[key])}" for key in sorted(groups)]


def output_lines(outputs: Iterable[bytes]) -> list[str]:
    """All lines of a job's ``mr-out-*`` files, sorted (as the lab's
    ``sort mr-out*`` before comparing)."""
    lines: list[str] = []
    for data in outputs:
        lines.extend(data.decode("utf-8").splitlines())
    return sorted(lines)
