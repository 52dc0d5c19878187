"""Validation of ``synod mr run`` arguments, shared by the simulated and the
real run: everything is checked before anything is written, so bad input
leaves no partial output."""

from __future__ import annotations

import codecs
import os
import sys
from pathlib import Path

import click

from synod.core import ConfigError
from synod.mapreduce.app import load_app
from synod.mapreduce.constants import MAP_TASKS_MAX, REDUCES_MAX
from synod.mapreduce.messages import JobSpec

__all__ = ["expand_inputs", "parse_app_args", "build_job", "is_binary", "drop_binary", "app_search_dir"]

BINARY_SNIFF_BYTES = 8192  # how much of a file decides whether it is text


def is_binary(path: Path) -> bool:
    """A file is binary (not text) if its first ``BINARY_SNIFF_BYTES`` hold a
    NUL byte or are not UTF-8 (a multi-byte character cut at the end of the
    sample does not count), as git and grep decide."""
    with open(path, "rb") as f:
        sample = f.read(BINARY_SNIFF_BYTES)
    if b"\0" in sample:
        return True
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        return True
    return False


def drop_binary(files: list[Path]) -> tuple[list[Path], list[Path]]:
    """(text files, binary files skipped), each in input order.

    Raises:
        click.UsageError: every input file is binary.
    """
    text: list[Path] = []
    binary: list[Path] = []
    for p in files:
        (binary if is_binary(p) else text).append(p)
    if not text:
        raise click.UsageError(f"no text input files ({len(binary)} binary files skipped, e.g. {binary[0]})")
    return text, binary


def app_search_dir(app: str) -> str | None:
    """For an app given as a module name (not built in, not a ``.py`` file):
    the current directory, put first on ``sys.path`` so that ``--app
    mymodule`` finds ``./mymodule.py`` as ``python -m`` would; worker
    processes, which may run elsewhere, get it on their PYTHONPATH. None for
    built-in apps and files."""
    from synod.mapreduce.app import BUILTIN_APPS

    if app in BUILTIN_APPS or app.endswith(".py"):
        return None
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    return cwd


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
