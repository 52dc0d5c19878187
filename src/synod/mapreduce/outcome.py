"""A job's outcome, read from its output directory alone (Hadoop's
convention): the job succeeded iff ``_SUCCESS`` is there together with all R
outputs ``mr-out-0`` .. ``mr-out-<R-1>``. The coordinator writes the marker
last, after every output is committed (by atomic rename) and temp files are
removed, so the verdict does not depend on what became of the processes
afterwards: a coordinator killed just after writing it leaves a job that
succeeded, one killed before leaves a job that failed, with the outputs
committed so far listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from synod.mapreduce.constants import SUCCESS_MARKER

__all__ = ["JobOutcome", "job_outcome", "SUCCESS_MARKER"]


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """``committed``: the outputs ``mr-out-<r>`` present, in order of r;
    ``marker``: ``_SUCCESS`` is present; ``succeeded``: both, for all R."""

    nreduce: int
    committed: tuple[str, ...]
    marker: bool

    @property
    def succeeded(self) -> bool:
        return self.marker and len(self.committed) == self.nreduce

    @property
    def verdict(self) -> str:
        return "SUCCEEDED" if self.succeeded else "FAILED"

    def describe_outputs(self) -> str:
        """One line: how many outputs are committed, which, and the marker."""
        n = len(self.committed)
        if n == 0:
            which = "none"
        elif n == self.nreduce:
            which = "all"
        else:
            which = ", ".join(self.committed)
        marker = f"{SUCCESS_MARKER} present" if self.marker else f"no {SUCCESS_MARKER}"
        return f"{n} of {self.nreduce} committed ({which}); {marker}"


def job_outcome(fs: Any, out_dir: str, nreduce: int) -> JobOutcome:
    """The outcome of a job with R = ``nreduce`` whose outputs go to
    ``out_dir`` on ``fs`` (an fsspec filesystem)."""
    names = {p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(out_dir, detail=False)} if fs.isdir(out_dir) else set()
    committed = tuple(f"mr-out-{r}" for r in range(nreduce) if f"mr-out-{r}" in names)
    return JobOutcome(nreduce=nreduce, committed=committed, marker=SUCCESS_MARKER in names)
