"""Node factories for the real runtime: a cluster config names
``synod.mapreduce.factories:coordinator`` or ``...:worker`` and gives params.

Params (typed, decoded strictly, see synod.core.params): the coordinator
takes :class:`CoordinatorParams` (``{"job": job_to_params(spec)}``); a worker
takes :class:`WorkerParams` (``{"coordinator": "<coordinator node id>"}`` and
optionally ``"done_marker": "<out_dir>/_SUCCESS"``: a worker that finds no
coordinator and sees it exits at once, the job is over).
"""

from __future__ import annotations

from typing import Any

import msgspec

from synod.core import Params, parse_params
from synod.mapreduce.coordinator import Coordinator
from synod.mapreduce.messages import JobSpec
from synod.mapreduce.worker import Worker

__all__ = ["coordinator", "worker", "job_to_params", "CoordinatorParams", "WorkerParams"]


class CoordinatorParams(Params):
    """``job``: the job, in the form :func:`job_to_params` writes;
    ``worker_hosts``: worker id -> the storage host it runs beside (a GFS
    chunkserver's id), for map tasks placed near their input (3.4)."""

    job: JobSpec
    worker_hosts: dict[str, str] = {}


class WorkerParams(Params):
    """``coordinator``: the coordinator's node id; ``done_marker``: the path
    whose existence means the job is over, or None."""

    coordinator: str
    done_marker: str | None = None


def job_to_params(job: JobSpec) -> Any:
    """A JSON-ready form of a JobSpec (its wire array: tag, then fields)."""
    return msgspec.to_builtins(job)


def coordinator(node_id: str, params: dict[str, Any]) -> Coordinator:
    """Raises ConfigError: params that are not :class:`CoordinatorParams`."""
    p = parse_params(params, CoordinatorParams)
    return Coordinator(p.job, worker_hosts=p.worker_hosts)


def worker(node_id: str, params: dict[str, Any]) -> Worker:
    """Raises ConfigError: params that are not :class:`WorkerParams`."""
    p = parse_params(params, WorkerParams)
    return Worker(p.coordinator, done_marker=p.done_marker)
