"""The output directory of ``synod mr run``: refuse old outputs, or with
``--force`` replace them atomically; and the ``--json`` report.

``--force`` never writes into the old output. The job writes a fresh
directory beside it (``.<name>.synod-new-*``, same parent, so the same file
system); only when the job has succeeded is the old directory renamed aside
and the new one renamed into its place, then the old one deleted. At every
instant ``--out`` holds either the complete old output or the complete new
one (between the two renames it is briefly absent, never mixed). A job that
fails leaves the old output untouched and its own directory removed.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from synod.mapreduce.constants import SUCCESS_MARKER

__all__ = ["OutputPlan", "plan_output", "holds_outputs"]


def holds_outputs(out: Path) -> bool:
    """``out`` is a directory with ``mr-out-*`` files or ``_SUCCESS``."""
    return out.is_dir() and (any(out.glob("mr-out-*")) or (out / SUCCESS_MARKER).exists())


@dataclass(slots=True)
class OutputPlan:
    """Where the job writes (``write_dir``) and where its output must end up
    (``out``); they differ only when ``--force`` replaces an old output."""

    out: Path
    write_dir: Path

    @property
    def replacing(self) -> bool:
        return self.write_dir != self.out

    def commit(self) -> None:
        """The job succeeded: put ``write_dir`` in place of ``out``."""
        if not self.replacing:
            return
        old = Path(tempfile.mkdtemp(dir=self.out.parent, prefix=f".{self.out.name}.synod-old-"))
        old.rmdir()
        self.out.rename(old)
        try:
            self.write_dir.rename(self.out)
        except OSError:
            old.rename(self.out)  # put the old output back: never leave none
            raise
        shutil.rmtree(old, ignore_errors=True)

    def abandon(self) -> None:
        """The job failed: drop what it wrote when it was to replace an old
        output (which stays as it was)."""
        if self.replacing:
            shutil.rmtree(self.write_dir, ignore_errors=True)


def plan_output(out: Path, force: bool) -> OutputPlan:
    """Check ``out`` before anything is written.

    Raises:
        click.UsageError: ``out`` holds outputs and ``force`` is not set.
    """
    if not holds_outputs(out):
        return OutputPlan(out=out, write_dir=out)
    if not force:
        raise click.UsageError(f"{out} already holds mr-out-* files or {SUCCESS_MARKER}; remove them, "
                               "choose another --out, or pass --force to replace them")
    write_dir = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.synod-new-"))
    write_dir.chmod(out.stat().st_mode & 0o7777)  # the replacement keeps the old directory's permissions
    return OutputPlan(out=out, write_dir=write_dir)


def status_fields(st: Any) -> dict[str, Any]:  # noqa: ANN401 - a JobStatus or None
    """The counts of a JobStatus for the ``--json`` report."""
    if st is None:
        return {}
    return {"input_bytes": st.input_bytes, "map_tasks": st.maps_total, "map_tasks_done": st.maps_done,
            "map_executions": st.map_executions, "reduce_tasks": st.reduces_total,
            "reduce_tasks_done": st.reduces_done, "reduce_executions": st.reduce_executions,
            "reexecutions": st.reexecutions,
            "worker_deaths": [{"worker": w, "reason": why} for w, why in st.worker_deaths]}
