"""Node factories for the real runtime: a cluster config names
``synod.mapreduce.factories:coordinator`` or ``...:worker`` and gives params.

Params: the coordinator takes ``{"job": job_to_params(spec)}``; a worker
takes ``{"coordinator": "<coordinator node id>"}`` and optionally
``"done_marker": "<out_dir>/_SUCCESS"`` (a worker that finds no coordinator
and sees it exits at once: the job is over).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from synod.core import ConfigError
from synod.mapreduce.coordinator import Coordinator
from synod.mapreduce.messages import JobSpec
from synod.mapreduce.worker import Worker

__all__ = ["coordinator", "worker", "job_to_params", "job_from_params"]


def job_to_params(job: JobSpec) -> dict[str, Any]:
    """A JSON-ready dict of a JobSpec."""
    d = dataclasses.asdict(job)
    d["inputs"] = list(job.inputs)
    return d


def job_from_params(d: dict[str, Any]) -> JobSpec:
    """The JobSpec of :func:`job_to_params`.

    Raises:
        ConfigError: a missing or unknown field.
    """
    try:
        return JobSpec(**{**d, "inputs": tuple(d["inputs"])})
    except (KeyError, TypeError) as e:
        raise ConfigError(f"bad MapReduce job params: {e}") from None


def coordinator(node_id: str, params: dict[str, Any]) -> Coordinator:
    return Coordinator(job_from_params(params["job"]))


def worker(node_id: str, params: dict[str, Any]) -> Worker:
    if not isinstance(params.get("coordinator"), str):
        raise ConfigError("a MapReduce worker needs params.coordinator (a node id)")
    marker = params.get("done_marker")
    if marker is not None and not isinstance(marker, str):
        raise ConfigError("a MapReduce worker's params.done_marker must be a path")
    return Worker(params["coordinator"], done_marker=marker)
