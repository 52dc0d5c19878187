"""The names of a simulated MapReduce job's nodes and output directory.

The job itself runs in the shared fault runner: see
:mod:`synod.harness.mapreduce` (``synod mr run --sim``).
"""

from __future__ import annotations

__all__ = ["COORDINATOR_ID", "SIM_OUT_DIR", "worker_ids"]

COORDINATOR_ID = "coordinator"
SIM_OUT_DIR = "/mr-out"  # where a simulated job commits its outputs, in the simulator's file system


def worker_ids(n: int) -> list[str]:
    """The ids of ``n`` workers: ``worker-1`` .. ``worker-n``."""
    return [f"worker-{i}" for i in range(1, n + 1)]
