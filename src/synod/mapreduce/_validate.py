"""What MapReduce nodes accept from the network (issue 8, part 3): every
message is checked here, at the node boundary, before it touches any state.

The codec guarantees a message is well typed; these checks say it is one a
correct peer could have sent:

- to the coordinator (:func:`check_coordinator_message`, the first line of
  ``Coordinator.on_message``): a worker's message comes from that worker
  (``worker_id`` is the sender, a configured node other than the
  coordinator), with an incarnation a worker can draw (62 random bits); task
  ids name tasks of this job; an attempt is one the coordinator handed out;
  a map completion has one region size per reduce task; a reduce completion
  names the output path of its task; a fetch failure names a configured
  holder and an attempt that produced output.
- to a worker (:func:`check_worker_message`, the first line of
  ``Worker.on_message``): a ``Ping`` comes from the coordinator, a
  ``FetchRegion`` or ``FetchRegions`` from another configured node, with
  ids, offset and the number of map tasks named within the limits.
- replies to a worker's calls (:func:`reply_problem`): a task the worker can
  run (a loadable app, a split of 1..``SPLIT_RANGES_MAX`` ranges of inputs
  that are the job's and exist, R and
  ids within limits, one location per map task with configured holders), a
  bounded wait, a location with a configured holder, a region chunk within
  ``FETCH_CHUNK_BYTES_MAX`` that does not run past the region's announced
  size (itself at most ``REGION_BYTES_MAX``); for ``FetchRegions``, parts
  that name the requested map tasks in order, at most
  ``FETCH_CHUNK_BYTES_MAX`` bytes in all, only the last one partial. A reply is checked inside the
  worker's task loop, which must survive it, so an impossible reply is
  traced and treated as no reply (the call failed) instead of raised.

An impossible message to a handler raises
:class:`~synod.core.errors.RemoteProtocolError`; the real host closes that
connection with one WARNING and the node runs on.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from synod.core.errors import ConfigError, RemoteProtocolError
from synod.mapreduce import constants as C
from synod.mapreduce.app import load_app
from synod.mapreduce.messages import (
    ExitTask,
    FetchFailed,
    FetchRegion,
    FetchRegions,
    JobSpec,
    MapDone,
    MapLocation,
    MapTask,
    Ping,
    Pong,
    ReduceDone,
    ReduceTask,
    RegionChunk,
    Regions,
    RequestTask,
    WaitTask,
    WhereIs,
)

if TYPE_CHECKING:
    from synod.core import Context
    from synod.mapreduce.coordinator import Coordinator

__all__ = ["check_coordinator_message", "check_worker_message", "reply_problem", "INCARNATION_BITS"]

INCARNATION_BITS = 62  # a worker's incarnation is ctx.rng.getrandbits(INCARNATION_BITS)

_FROM_WORKER = (RequestTask, MapDone, ReduceDone, FetchFailed, WhereIs, Pong)


def _bad(why: str) -> RemoteProtocolError:
    return RemoteProtocolError(why)


def _in_range(name: str, value: int, lo: int, hi: int) -> None:
    """lo <= value < hi."""
    if not lo <= value < hi:
        raise _bad(f"{name} {value} not in [{lo}, {hi})")


def _attempt(name: str, attempt: int, tasks: list[Any], task_id: int) -> None:
    _in_range(f"{name} attempt", attempt, 0, tasks[task_id].next_attempt)


# -- the coordinator ---------------------------------------------------------------

def check_coordinator_message(coord: Coordinator, ctx: Context, src: str, msg: Any) -> None:
    """Check a message to the coordinator (see the module docstring).

    Raises:
        RemoteProtocolError: the message is impossible.
    """
    t = type(msg)
    if t not in _FROM_WORKER:
        return  # GetStatus (from any client) and types the handler ignores
    if msg.worker_id != src:
        raise _bad(f"{t.__name__} for worker {msg.worker_id!r} sent by {src!r}")
    if src == ctx.node_id or src not in ctx.peers:
        raise _bad(f"{t.__name__} from {src!r}, which is not a configured worker")
    _in_range("incarnation", msg.incarnation, 0, 1 << INCARNATION_BITS)
    maps, reduces = coord.maps, coord.reduces
    if t is MapDone:
        _in_range("map task", msg.task_id, 0, len(maps))
        _attempt("map", msg.attempt, maps, msg.task_id)
        if len(msg.region_bytes) != len(reduces):
            raise _bad(f"MapDone with {len(msg.region_bytes)} regions; the job has R = {len(reduces)}")
        if any(not 0 <= b <= C.REGION_BYTES_MAX for b in msg.region_bytes):
            raise _bad(f"MapDone with a region size outside [0, {C.REGION_BYTES_MAX}]")
    elif t is ReduceDone:
        _in_range("reduce task", msg.task_id, 0, len(reduces))
        _attempt("reduce", msg.attempt, reduces, msg.task_id)
        expected = f"{coord.job.out_dir}/mr-out-{msg.task_id}"
        if msg.output_path != expected:
            raise _bad(f"ReduceDone naming {msg.output_path!r}, not {expected!r}")
    elif t is FetchFailed:
        _in_range("reduce task", msg.reduce_task_id, 0, len(reduces))
        _attempt("reduce", msg.attempt, reduces, msg.reduce_task_id)
        _in_range("map task", msg.map_task_id, 0, len(maps))
        _attempt("map", msg.map_attempt, maps, msg.map_task_id)
        if msg.holder not in ctx.peers:
            raise _bad(f"FetchFailed naming holder {msg.holder!r}, not a configured node")
        if len(msg.reason) > C.REASON_CHARS_MAX:
            raise _bad(f"FetchFailed with a reason of {len(msg.reason)} characters")
    elif t is WhereIs:
        _in_range("reduce task", msg.reduce_task_id, 0, len(reduces))
        _attempt("reduce", msg.attempt, reduces, msg.reduce_task_id)
        _in_range("map task", msg.map_task_id, 0, len(maps))


# -- the worker ----------------------------------------------------------------------

def check_worker_message(coordinator: str, ctx: Context, src: str, msg: Any) -> None:
    """Check a message to a worker's handler (not a reply to its calls).

    Raises:
        RemoteProtocolError: the message is impossible.
    """
    t = type(msg)
    if t is Ping:
        if src != coordinator:
            raise _bad(f"Ping from {src!r}; only the coordinator {coordinator!r} pings")
    elif t is FetchRegion:
        if src == ctx.node_id or src not in ctx.peers:
            raise _bad(f"FetchRegion from {src!r}, which is not another configured node")
        _in_range("map task", msg.map_task_id, 0, C.MAP_TASKS_MAX)
        _in_range("reduce task", msg.reduce_task_id, 0, C.REDUCES_MAX)
        _in_range("offset", msg.offset, 0, C.REGION_BYTES_MAX + 1)
    elif t is FetchRegions:
        if src == ctx.node_id or src not in ctx.peers:
            raise _bad(f"FetchRegions from {src!r}, which is not another configured node")
        _in_range("reduce task", msg.reduce_task_id, 0, C.REDUCES_MAX)
        _in_range("map tasks named", len(msg.map_task_ids), 1, C.FETCH_BATCH_REGIONS_MAX + 1)
        for map_task_id in msg.map_task_ids:
            _in_range("map task", map_task_id, 0, C.MAP_TASKS_MAX)


def _job_problem(job: JobSpec) -> str | None:
    if not 1 <= job.nreduce <= C.REDUCES_MAX:
        return f"R = {job.nreduce} not in [1, {C.REDUCES_MAX}]"
    if not job.out_dir:
        return "no output directory"
    if job.split_size_bytes < 0 or job.task_timeout_ms < 1:
        return "negative split size or task timeout"
    if not (math.isfinite(job.sim_compute_ms_per_mb) and 0 <= job.sim_compute_ms_per_mb <= C.SIM_COMPUTE_MS_PER_MB_MAX):
        return f"sim_compute_ms_per_mb {job.sim_compute_ms_per_mb} out of range"
    try:
        load_app(job.app, job.app_args)
    except ConfigError as e:
        return f"app: {e}"
    return None


def _split_problem(split: tuple[tuple[str, int, int], ...], job: JobSpec) -> str | None:
    """Why ``split`` is not a split of ``job``'s input (1..SPLIT_RANGES_MAX
    ranges of its files, offsets >= 0, lengths >= -1), or None."""
    if not 1 <= len(split) <= C.SPLIT_RANGES_MAX:
        return f"a split of {len(split)} file ranges, not 1..{C.SPLIT_RANGES_MAX}"
    inputs = set(job.inputs)
    for path, offset, length in split:
        if offset < 0 or length < -1:
            return f"range ({path!r}, {offset}, {length}) has a negative offset or length"
        if path not in inputs:   # (a file that is missing fails its read: the task times out and runs again)
            return f"input {path!r} is not one of the job's files"
    return None


def _holder_problem(ctx: Context, holder: str | None, map_attempt: int) -> str | None:
    if holder is None:
        return None
    if holder not in ctx.peers:
        return f"holder {holder!r} is not a configured node"
    if not 0 <= map_attempt < 1 << 62:
        return f"map attempt {map_attempt} of a held output"
    return None


def _regions_problem(request: FetchRegions, reply: Regions) -> str | None:
    """Why ``reply`` cannot answer ``request`` (see the module docstring), or None."""
    parts, ids = reply.parts, request.map_task_ids
    if not 1 <= len(parts) <= len(ids):
        return f"{len(parts)} parts answering a fetch of {len(ids)} regions"
    data_bytes = 0
    for i, part in enumerate(parts):
        if part.map_task_id != ids[i]:
            return f"part {i} is map task {part.map_task_id}, not {ids[i]}"
        if not part.found:
            if part.data:
                return f"data for map task {part.map_task_id}, whose region was not found"
            continue
        if not 0 <= part.total_bytes <= C.REGION_BYTES_MAX:
            return f"a region of {part.total_bytes} bytes"
        if len(part.data) > part.total_bytes:
            return f"{len(part.data)} bytes of a region of {part.total_bytes}"
        if len(part.data) < part.total_bytes and i != len(parts) - 1:
            return f"part {i} is partial but not the last"
        data_bytes += len(part.data)
    if data_bytes > C.FETCH_CHUNK_BYTES_MAX:
        return f"{data_bytes} bytes of regions in one reply"
    return None


def reply_problem(ctx: Context, request: Any, reply: Any, *, got_bytes: int = 0,
                  total_bytes: int | None = None) -> str | None:
    """Why ``reply`` cannot answer ``request`` (a call the worker made), or
    None if it can (``None``, a timeout, is a possible answer). For a
    ``FetchRegion``: ``got_bytes`` of the region already fetched and the
    ``total_bytes`` announced by the earlier chunks (None: first chunk)."""
    if reply is None:
        return None
    t = type(reply)
    if type(request) is RequestTask:
        if t is MapTask:
            problem = _job_problem(reply.job)
            if problem is not None:
                return problem
            if not (0 <= reply.task_id < C.MAP_TASKS_MAX and 0 <= reply.attempt):
                return "map task id or attempt out of range"
            return _split_problem(reply.split, reply.job)
        if t is ReduceTask:
            problem = _job_problem(reply.job)
            if problem is not None:
                return problem
            if not (0 <= reply.task_id < reply.job.nreduce and 0 <= reply.attempt):
                return "reduce task id or attempt out of range"
            if not 1 <= len(reply.locations) <= C.MAP_TASKS_MAX:
                return f"{len(reply.locations)} map locations"
            for i, (map_task_id, holder, map_attempt) in enumerate(reply.locations):
                if map_task_id != i:
                    return f"location {i} names map task {map_task_id}"
                problem = _holder_problem(ctx, holder, map_attempt)
                if problem is not None:
                    return problem
            return None
        if t is WaitTask:
            return None if 0 <= reply.delay_ms <= C.WAIT_DELAY_MS_MAX else f"wait of {reply.delay_ms} ms"
        return None if t is ExitTask else f"a {t.__name__} answering RequestTask"
    if type(request) is WhereIs:
        if t is not MapLocation:
            return f"a {t.__name__} answering WhereIs"
        return _holder_problem(ctx, reply.holder, reply.map_attempt)
    if type(request) is FetchRegion:
        if t is not RegionChunk:
            return f"a {t.__name__} answering FetchRegion"
        if not reply.found:
            return None
        if len(reply.data) > C.FETCH_CHUNK_BYTES_MAX:
            return f"a chunk of {len(reply.data)} bytes"
        if not 0 <= reply.total_bytes <= C.REGION_BYTES_MAX:
            return f"a region of {reply.total_bytes} bytes"
        if total_bytes is not None and reply.total_bytes != total_bytes:
            return f"the region's size changed from {total_bytes} to {reply.total_bytes} bytes"
        if got_bytes + len(reply.data) > reply.total_bytes:
            return "a chunk past the region's end"
        return None
    if type(request) is FetchRegions:
        return _regions_problem(request, reply) if t is Regions else f"a {t.__name__} answering FetchRegions"
    return None  # MapDone, ReduceDone, FetchFailed: the worker does not read the answer
