"""Messages between MapReduce workers and the coordinator (the paper's master).

Workers pull work (``RequestTask`` -> ``MapTask`` | ``ReduceTask`` | ``WaitTask``
| ``ExitTask``), report completions, and fetch intermediate regions from each
other (paper section 3.1, step 5: "reduce workers ... use remote procedure
calls to read the buffered data from the local disks of the map workers").
"""

from __future__ import annotations

from typing import Any

from synod.core import Message
from synod.mapreduce.constants import TASK_TIMEOUT_MS


class JobSpec(Message, tag="mr.JobSpec"):
    """What a job computes. ``app``: a module path (``synod.mapreduce.apps.wc``)
    or a ``.py`` file; ``app_args``: string options for the app;
    ``inputs``: input file paths on ``ctx.fs``; ``out_dir``: where
    ``mr-out-<r>`` files are committed; ``nreduce``: R;
    ``split_size_bytes``: at most this many bytes per map task, small files
    packed together up to it (0: one task per file); ``backup_tasks``: schedule backups of the last in-progress tasks
    (section 3.6); ``use_combiner``: apply the app's ``combine`` if it has one;
    ``task_timeout_ms``: reassign a task not reported within this, and
    declare a worker dead after this long without a word from it;
    ``sim_compute_ms_per_mb``: virtual compute time charged per MB of input in
    the simulator (0 in real runs)."""

    app: str
    app_args: dict[str, str]
    inputs: tuple[str, ...]
    out_dir: str
    nreduce: int
    split_size_bytes: int = 0
    backup_tasks: bool = False
    use_combiner: bool = True
    task_timeout_ms: int = TASK_TIMEOUT_MS
    sim_compute_ms_per_mb: float = 0.0


class RequestTask(Message, tag="mr.RequestTask"):
    """Worker -> coordinator: give me work. ``incarnation`` changes on every
    worker start, so the coordinator sees a restart as a death."""

    worker_id: str
    incarnation: int


class MapTask(Message, tag="mr.MapTask"):
    """Map task ``task_id`` over its split: 1..``SPLIT_RANGES_MAX`` file
    ranges (path, offset, length in bytes; length -1: the whole file), see
    synod.mapreduce._splits."""

    task_id: int
    attempt: int
    split: tuple[tuple[str, int, int], ...]
    job: JobSpec
    partition_plan: Any    # the app's partition plan (sort: range boundaries), or None


class ReduceTask(Message, tag="mr.ReduceTask"):
    task_id: int
    attempt: int
    # (map task id, worker holding its output, attempt that made it), every map
    # task in order; holder None: that map task is being re-executed
    locations: tuple[tuple[int, str | None, int], ...]
    job: JobSpec


class WaitTask(Message, tag="mr.WaitTask"):
    delay_ms: int


class ExitTask(Message, tag="mr.ExitTask"):
    pass


class MapDone(Message, tag="mr.MapDone"):
    worker_id: str
    incarnation: int
    task_id: int
    attempt: int
    region_bytes: tuple[int, ...]  # encoded size of each of the R regions


class ReduceDone(Message, tag="mr.ReduceDone"):
    worker_id: str
    incarnation: int
    task_id: int
    attempt: int
    output_path: str


class FetchFailed(Message, tag="mr.FetchFailed"):
    """Reducer -> coordinator: the output of ``map_task_id`` made by attempt
    ``map_attempt`` could not be read from ``holder``; the coordinator
    re-executes that map task (section 3.3) unless a newer attempt's output
    has replaced it meanwhile."""

    worker_id: str
    incarnation: int
    reduce_task_id: int
    attempt: int
    map_task_id: int
    holder: str
    reason: str
    map_attempt: int


class WhereIs(Message, tag="mr.WhereIs"):
    """Reducer -> coordinator: where is the output of ``map_task_id`` now?
    Also tells the coordinator the reduce attempt is alive and waiting."""

    worker_id: str
    incarnation: int
    reduce_task_id: int
    attempt: int
    map_task_id: int


class MapLocation(Message, tag="mr.MapLocation"):
    """Coordinator -> reducer. ``holder`` is None while the map task is being
    re-executed; ``abandon`` tells the reducer its task is already committed."""

    holder: str | None
    map_attempt: int
    abandon: bool


class Ack(Message, tag="mr.Ack"):
    accepted: bool


class FetchRegion(Message, tag="mr.FetchRegion"):
    """Reducer -> map worker: bytes of one region from ``offset`` on, for a
    region too large for one :class:`Regions` reply (answered by
    :class:`RegionChunk`)."""

    map_task_id: int
    reduce_task_id: int
    offset: int


class FetchRegions(Message, tag="mr.FetchRegions"):
    """Reducer -> map worker: region ``reduce_task_id`` of each map task in
    ``map_task_ids`` (1..``FETCH_BATCH_REGIONS_MAX`` ids) that the worker
    holds, in one call instead of one per map task (answered by
    :class:`Regions`)."""

    reduce_task_id: int
    map_task_ids: tuple[int, ...]


class RegionPart(Message, tag="mr.RegionPart"):
    """One region in a :class:`Regions` reply: ``found`` is False when that
    map output is not on the worker (then ``data`` is empty); ``data`` is
    the region's first bytes, all ``total_bytes`` of them unless the region
    did not fit in the reply (the rest is fetched with :class:`FetchRegion`)."""

    map_task_id: int
    found: bool
    data: bytes
    total_bytes: int


class Regions(Message, tag="mr.Regions"):
    """Answer to :class:`FetchRegions`: one part per requested map task, in
    request order, as many as fit in ``FETCH_CHUNK_BYTES_MAX`` bytes of data
    (at least one; only the last may be partial). The reducer asks again
    for the map tasks left out."""

    parts: tuple[RegionPart, ...]


class RegionChunk(Message, tag="mr.RegionChunk"):
    """One piece of a region file (checksummed records); ``found`` is False
    when the map output is not on this worker (lost in a crash, or corrupt)."""

    found: bool
    data: bytes
    total_bytes: int


class Ping(Message, tag="mr.Ping"):
    pass


class Pong(Message, tag="mr.Pong"):
    worker_id: str
    incarnation: int


class GetStatus(Message, tag="mr.GetStatus"):
    pass


class JobStatus(Message, tag="mr.JobStatus"):
    """Progress, for the CLI's progress bar and summary."""

    maps_total: int
    maps_done: int
    reduces_total: int
    reduces_done: int
    map_executions: int
    reduce_executions: int
    reexecutions: int
    input_bytes: int
    done: bool
    # worker id -> completed map tasks whose output that worker holds now
    map_outputs_by_worker: dict[str, int]
    # (worker id, why) of each worker death the coordinator observed, oldest
    # first (at most WORKER_DEATHS_MAX): "silent" (no word, pings included,
    # for task_timeout_ms) or "restarted" (it came back with a new incarnation)
    worker_deaths: tuple[tuple[str, str], ...] = ()
    # locality (3.4): map executions handed to a worker beside a replica of
    # their input's first chunk, of those whose input has replica hosts
    local_map_executions: int = 0
    placeable_map_executions: int = 0
