"""MapReduce (Dean & Ghemawat, OSDI 2004) with MIT 6.5840 lab 1 semantics.

See ``coordinator`` and ``worker`` for the theory of operation and
docs/mapreduce.md for how to run it.
"""

from synod.mapreduce.app import App, TaskEnv, fnv1a_32, ihash, load_app, partition_hash
from synod.mapreduce.coordinator import Coordinator
from synod.mapreduce.messages import JobSpec, JobStatus
from synod.mapreduce.outcome import JobOutcome, job_outcome
from synod.mapreduce.reference import run_sequential
from synod.mapreduce.worker import Worker

__all__ = [
    "App", "TaskEnv", "fnv1a_32", "ihash", "load_app", "partition_hash", "Coordinator", "JobSpec", "JobStatus",
    "Worker", "run_sequential", "JobOutcome", "job_outcome",
]
