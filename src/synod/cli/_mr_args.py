"""Validation of ``synod mr run`` arguments, shared by the simulated and the
real run: everything is checked before anything is written, so bad input
leaves no partial output."""

from __future__ import annotations

from pathlib import Path

import click

from synod.core import ConfigError
from synod.mapreduce.app import load_app
from synod.mapreduce.constants import MAP_TASKS_MAX, REDUCES_MAX
from synod.mapreduce.messages import JobSpec

__all__ = ["expand_inputs", "parse_app_args", "build_job"]


def expand_inputs(inputs: tuple[str, ...], pattern: str = "*") -> list[Path]:
    """Input files, in order; a directory stands for the files under it
    matching ``pattern`` (recursively), sorted.

    Raises:
        click.UsageError: a path does not exist, or nothing is left to read.
    """
    out: list[Path] = []
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob(pattern) if q.is_file()))
        elif p.is_file():
            out.append(p)
        else:
            raise click.UsageError(f"input {raw!r} does not exist")
    if not out:
        raise click.UsageError("no input files")
    if len(out) > MAP_TASKS_MAX:
        raise click.UsageError(f"{len(out)} input files; at most {MAP_TASKS_MAX}")
    return [p.resolve() for p in out]


def parse_app_args(pairs: tuple[str, ...]) -> dict[str, str]:
    args: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.UsageError(f"--app-arg wants KEY=VALUE, got {pair!r}")
        args[key] = value
    return args


def build_job(*, app: str, app_args: dict[str, str], inputs: list[Path], out_dir: str, reduces: int,
              split_size_bytes: int, backup_tasks: bool, use_combiner: bool, task_timeout_ms: int,
              sim_compute_ms_per_mb: float = 0.0) -> JobSpec:
    """A validated JobSpec.

    Raises:
        click.UsageError: R out of range, a bad split size or timeout, or an
            app that cannot be loaded or lacks map/reduce.
    """
    if not 1 <= reduces <= REDUCES_MAX:
        raise click.UsageError(f"--reduces must be between 1 and {REDUCES_MAX}, got {reduces}")
    if split_size_bytes < 0:
        raise click.UsageError(f"--split-size must be >= 0, got {split_size_bytes}")
    if task_timeout_ms <= 0:
        raise click.UsageError(f"--task-timeout-ms must be positive, got {task_timeout_ms}")
    try:
        load_app(app, app_args)
    except ConfigError as e:
        raise click.UsageError(str(e)) from None
    if app.endswith(".py"):
        app = str(Path(app).resolve())
    return JobSpec(
        app=app, app_args=app_args, inputs=tuple(str(p) for p in inputs), out_dir=out_dir,
        nreduce=reduces, split_size_bytes=split_size_bytes, backup_tasks=backup_tasks,
        use_combiner=use_combiner, task_timeout_ms=task_timeout_ms,
        sim_compute_ms_per_mb=sim_compute_ms_per_mb,
    )
