"""The MapReduce worker (Dean & Ghemawat, OSDI 2004, section 3.1).

A worker pulls tasks from the coordinator and runs them one at a time:

- **map**: read the split from the job's storage (``ctx.fs``, or GFS by
  messages: :mod:`synod.mapreduce._storage`), apply the app's map (and the
  combiner, section 4.3), partition the pairs into R regions by
  ``partition_hash(key) % R`` (or the app's partitioner), write the regions to the
  worker's *local* disk (``ctx.disk``), one checksummed record each in one
  file, and report ``MapDone``. The file is not synced: a worker's map
  output does not outlive its process (a restart wipes it, below), so an
  fsync would buy nothing, and Hadoop does not sync its map spills either;
  the checksums still catch a torn or corrupt region.
- **reduce**: fetch region r of every map task from the worker holding it
  (one ``FetchRegions`` call per holder names all the map tasks it holds; a
  region too large for one reply is finished with ``FetchRegion`` chunks),
  merge in map task order, sort by key, apply reduce, write
  ``mr-out-<r>`` to the job's storage under a temp name and rename it into place
  (section 3.3: the atomic rename makes the first committed execution the
  output), then report ``ReduceDone``.

While a task's coroutine waits, the worker keeps answering ``FetchRegions``,
``FetchRegion`` and ``Ping``. A fetch that fails (holder dead, output gone,
checksum mismatch) is reported as ``FetchFailed``, one per map task whose
region could not be had; the coordinator re-executes the lost map task, and
the reducer, keeping what it already fetched, asks ``WhereIs`` until the new
output exists (section 3.3).

A worker that cannot reach the coordinator keeps asking (it may have started
before the coordinator was up) up to ``COORDINATOR_UNREACHABLE_MAX`` calls,
unless the job is already over: when given the job's ``done_marker`` (the
``_SUCCESS`` path in the shared file system, which the coordinator writes
last), a worker that gets no answer and sees the marker exits at once, saying
why. So a worker started after the coordinator has finished and left does not
wait out the retries (issue 9: small jobs took 24 s instead of 2-3 s when a
worker started late).

States: a worker has no durable state. Each start draws a fresh
``incarnation`` and wipes any map output of an earlier life, so the
coordinator can treat a restart exactly as the death it follows.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable
from typing import Any

from synod.core import Context, Node, RemoteProtocolError, decode, encode, pack_record, scan_records
from synod.core.records import RECORD_HEADER_BYTES, record_header
from synod.mapreduce import constants as C
from synod.mapreduce._splits import read_range
from synod.mapreduce._storage import FsStorage, JobStorage
from synod.mapreduce._validate import check_worker_message, reply_problem
from synod.mapreduce.app import App, TaskAborted, TaskEnv, load_app, partition_hash
from synod.mapreduce.messages import (
    ExitTask,
    FetchFailed,
    FetchRegion,
    FetchRegions,
    MapDone,
    MapLocation,
    MapTask,
    Ping,
    Pong,
    ReduceDone,
    ReduceTask,
    RegionChunk,
    RegionPart,
    Regions,
    RequestTask,
    WaitTask,
    WhereIs,
)

__all__ = ["Worker", "partition_pairs", "map_output_path", "pack_map_output", "read_region", "region_bounds", "region_slice"]

_JOIN_CHECK = "join_check"  # the timer of on_timer

# One region of a map task's output: key -> the values emitted for it.
_REGION_TYPE = dict[str, list[str]]


def map_output_path(map_task_id: int) -> str:
    """Where map task m keeps its R regions on its worker's local disk: one
    file of checksummed records, an index of (offset, length) per region,
    then the regions (one file and one fsync per task instead of R)."""
    return f"mr/map-{map_task_id}"


def pack_map_output(regions: list[bytes]) -> bytes:
    """One map output file: an index record of (offset, length) per region as
    big-endian u64 pairs, then one checksummed record per region."""
    pos = RECORD_HEADER_BYTES + 16 * len(regions)
    index = []
    for region in regions:
        size = RECORD_HEADER_BYTES + len(region)
        index += (pos, size)
        pos += size
    parts = [pack_record(struct.pack(f">{len(index)}Q", *index))]
    for region in regions:   # joined once: the regions are copied once, not per record and again
        parts += (record_header(region), region)
    return b"".join(parts)


# The first read of a map output file: its whole index when R <= 32 (one
# read instead of its header, then the index).
_INDEX_READ_BYTES = RECORD_HEADER_BYTES + 16 * 32


def region_bounds(read: Callable[[int, int], bytes | None], reduce_task_id: int) -> tuple[int, int] | None:
    """Where region r of a map output file lies, as (offset, size), from its
    index record alone, read through ``read(offset, length)`` (a file's
    ``read_range``: fewer bytes at its end, None if it is missing). None if
    the file is missing, its index torn or corrupt, or it has no such region."""
    head = read(0, _INDEX_READ_BYTES)
    if head is None or len(head) < RECORD_HEADER_BYTES:
        return None
    length = int.from_bytes(head[:4], "big")
    if length % 16 or not 0 <= reduce_task_id < length // 16:
        return None
    end = RECORD_HEADER_BYTES + length
    index = head[:end] if len(head) >= end else read(0, end)   # a larger index: read once more, whole
    scan = scan_records(index or b"")
    if scan.error is not None or len(scan.records) != 1:
        return None
    offset, size = struct.unpack_from(">QQ", scan.records[0], 16 * reduce_task_id)
    if offset + size > C.MAP_OUTPUT_BYTES_MAX:
        return None
    return offset, size


def read_region(read: Callable[[int, int], bytes | None], reduce_task_id: int,
                start: int = 0, length_max: int | None = None) -> tuple[bytes, int] | None:
    """Bytes of region r's record from ``start`` on (at most ``length_max``;
    None: to its end), and the record's whole size: read from the index and
    that range alone, never the whole file. None as :func:`region_bounds`
    says, or if ``start`` is past the region or the file ends inside it."""
    bounds = region_bounds(read, reduce_task_id)
    if bounds is None:
        return None
    offset, size = bounds
    if not 0 <= start <= size:
        return None
    n = size - start if length_max is None else min(length_max, size - start)
    data = read(offset + start, n)
    return (data, size) if data is not None and len(data) == n else None


def region_slice(output: bytes, reduce_task_id: int) -> bytes | None:
    """The record of region r of a map output file held in memory, or None
    (see :func:`region_bounds`)."""
    got = read_region(lambda offset, length: output[offset:offset + length], reduce_task_id)
    return None if got is None else got[0]


def _region_on_disk(ctx: Context, map_task_id: int, reduce_task_id: int, start: int = 0,
                    length_max: int | None = None) -> tuple[bytes, int] | None:
    """:func:`read_region` of map task ``map_task_id``'s output on this worker's disk."""
    path = map_output_path(map_task_id)
    return read_region(lambda offset, length: ctx.disk.read_range(path, offset, length), reduce_task_id,
                       start, length_max)


def partition_pairs(pairs: Any, nreduce: int, app: App, plan: Any, use_combiner: bool) -> list[dict[str, list[str]]]:
    """Group map output by key and split it into R regions (section 4.1).

    The hash of a key is computed once per distinct key in the task, not once
    per pair. Returns R dicts of key -> values.

    Raises:
        ValueError: the app's partitioner returned a region outside 0..R-1.
    """
    groups: dict[str, list[str]] = {}
    first = groups.setdefault
    for key, value in pairs:
        first(key, []).append(value)   # (measured: faster than catching KeyError when keys repeat little)
    regions: list[dict[str, list[str]]] = [{} for _ in range(nreduce)]
    partition = app.partition
    combine = app.combine if use_combiner else None
    if partition is None and combine is None:  # the common case, without a test per key
        for key, values in groups.items():
            regions[partition_hash(key) % nreduce][key] = values
        return regions
    for key, values in groups.items():
        r = partition(key, nreduce, plan) if partition is not None else partition_hash(key) % nreduce
        if not 0 <= r < nreduce:
            raise ValueError(f"app {app.name} partitioned {key!r} to {r}, outside 0..{nreduce - 1}")
        if combine is not None and len(values) > 1:
            values = [combine(key, values)]
        regions[r][key] = values
    return regions


class Worker(Node):
    """A MapReduce worker; ``coordinator`` is the coordinator's node id;
    ``done_marker``: the path, in ``ctx.fs``, of the file whose existence
    means the job is over (``<out_dir>/_SUCCESS``), or None; ``storage``:
    where the job's input and output live (``ctx.fs`` by default; see
    :mod:`synod.mapreduce._storage`)."""

    def __init__(self, coordinator: str, done_marker: str | None = None, storage: JobStorage | None = None) -> None:
        self.coordinator = coordinator
        self.done_marker = done_marker
        self.storage: JobStorage = storage if storage is not None else FsStorage()
        self.incarnation = 0
        self.tasks_run = 0
        self.joined = False  # the coordinator has answered a call of this incarnation

    # -- handlers ----------------------------------------------------------------
    def on_start(self, ctx: Context) -> Any:
        self.incarnation = ctx.rng.getrandbits(62)
        for path in ctx.disk.list("mr/"):
            ctx.disk.delete(path)  # map output of an earlier life is void
        return self._work_loop(ctx)

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        check_worker_message(self.coordinator, ctx, src, msg)  # RemoteProtocolError before any state changes
        match msg:
            case FetchRegions():
                ctx.reply(self._regions(ctx, msg))
            case FetchRegion():
                ctx.reply(self._region_chunk(ctx, msg))
            case Ping():
                ctx.reply(Pong(worker_id=ctx.node_id, incarnation=self.incarnation))
            case _:
                ctx.trace("ignore_message", src=src, reason=f"unexpected {type(msg).__name__}")

    def on_timer(self, ctx: Context, name: str) -> None:
        # Until the coordinator first answers, look for the job's end beside
        # the pending call: a worker whose link came up after a short job was
        # over (the coordinator gone) waited its call's whole RPC_TIMEOUT_MS
        # before it looked, and held the job's wall time 2 s (issue 9 #2).
        if name != _JOIN_CHECK or self.joined:
            return
        if self._job_over(ctx):
            ctx.warn("exiting: the job is over and the coordinator never answered", done_marker=self.done_marker)
            ctx.exit(0)
            return
        ctx.set_timer(_JOIN_CHECK, C.JOIN_CHECK_INTERVAL_MS)

    # -- the task loop -------------------------------------------------------------
    async def _work_loop(self, ctx: Context) -> None:
        if self._job_over(ctx):  # started after the job: no call to a coordinator that has left
            ctx.warn("exiting: the job is over before this worker started", done_marker=self.done_marker)
            ctx.exit(0)
            return
        failures = 0
        if self.done_marker is not None:
            ctx.set_timer(_JOIN_CHECK, C.JOIN_CHECK_INTERVAL_MS)
        while True:
            reply = await self._call(ctx, self.coordinator,
                                     RequestTask(worker_id=ctx.node_id, incarnation=self.incarnation),
                                     C.RPC_TIMEOUT_MS)
            if reply is not None:
                self.joined = True
            try:
                match reply:
                    case None:
                        failures += 1
                        if self._job_over(ctx):
                            ctx.warn("exiting: the coordinator does not answer and the job is over",
                                     done_marker=self.done_marker, calls=failures)
                            ctx.exit(0)
                            return
                        if failures >= C.COORDINATOR_UNREACHABLE_MAX:
                            ctx.trace("coordinator_unreachable", calls=failures)
                            ctx.warn("exiting: the coordinator never answered", calls=failures)
                            ctx.exit(0)
                            return
                        await ctx.sleep(C.WAIT_DELAY_MS)
                        continue
                    case MapTask():
                        await self._run_map(ctx, reply)
                    case ReduceTask():
                        await self._run_reduce(ctx, reply)
                    case WaitTask():
                        await ctx.sleep(reply.delay_ms)
                    case ExitTask():
                        ctx.trace("worker_exit", tasks_run=self.tasks_run)
                        ctx.exit(0)
                        return
                    case _:
                        ctx.trace("ignore_reply", reason=f"unexpected {type(reply).__name__}")
            except TaskAborted:
                return
            failures = 0

    def _job_over(self, ctx: Context) -> bool:
        """The job's done marker exists: the coordinator finished (it writes
        ``_SUCCESS`` last) and nobody will hand out tasks any more."""
        if self.done_marker is None:
            return False
        try:
            return bool(ctx.fs.exists(self.done_marker))
        except OSError:
            return False  # the shared file system is unreachable: keep asking the coordinator

    async def _call(self, ctx: Context, dst: str, request: Any, timeout_ms: float) -> Any:
        """``ctx.call``, with a reply no correct peer sends (synod.mapreduce.
        _validate) traced and taken as no reply: the task loop must run on."""
        reply = await ctx.call(dst, request, timeout_ms)
        problem = reply_problem(ctx, request, reply)
        if problem is not None:
            ctx.trace("ignore_reply", src=dst, type=type(reply).__name__, reason=problem)
            return None
        return reply

    async def _run_map(self, ctx: Context, task: MapTask) -> None:
        job = task.job
        app = load_app(job.app, job.app_args)
        # A split may pack several small files (synod.mapreduce._splits):
        # map is called once per file range, with that range's file name.
        data = []
        for path, offset, length in task.split:
            try:
                data.append((path, await read_range(self.storage, ctx, path, offset, length)))
            except OSError as e:   # (GFS out of reach past its retries): the task times out and runs again
                ctx.warn("map input unreadable", task=task.task_id, path=path, error=str(e))
                return
        nbytes = sum(len(d) for _, d in data)
        ctx.trace("map_start", task=task.task_id, attempt=task.attempt, bytes=nbytes, files=len(data))
        if job.sim_compute_ms_per_mb:
            await ctx.sleep(job.sim_compute_ms_per_mb * nbytes / 1e6)
        outputs: list[Any] = []  # one iterable of pairs per range
        for path, raw in data:
            contents = raw.decode("utf-8", errors="replace")
            if app.map_is_async:
                env = TaskEnv(ctx, task_id=task.task_id, attempt=task.attempt, phase="map", out_dir=job.out_dir)
                outputs.append(await app.map(path, contents, env))
            elif job.use_combiner and app.map_combined is not None:
                outputs.append(app.map_combined(path, contents))
            else:
                outputs.append(app.map(path, contents))
        pairs = itertools.chain.from_iterable(outputs)
        regions = partition_pairs(pairs, job.nreduce, app, task.partition_plan, job.use_combiner)
        encoded = [encode(region) for region in regions]
        path = map_output_path(task.task_id)
        ctx.disk.delete(path)  # an earlier attempt's output, run here by this incarnation
        ctx.disk.append(path, pack_map_output(encoded))  # no sync: see the module docstring
        sizes = [len(e) for e in encoded]
        self.tasks_run += 1
        await ctx.call(self.coordinator, MapDone(
            worker_id=ctx.node_id, incarnation=self.incarnation, task_id=task.task_id,
            attempt=task.attempt, region_bytes=tuple(sizes),
        ), C.RPC_TIMEOUT_MS)

    async def _run_reduce(self, ctx: Context, task: ReduceTask) -> None:
        job = task.job
        app = load_app(job.app, job.app_args)
        ctx.trace("reduce_start", task=task.task_id, attempt=task.attempt)
        fetched = await self._fetch_batches(ctx, task)
        merged: dict[str, list[str]] = {}
        for map_task_id, holder, map_attempt in task.locations:  # merged in map task order, as one by one
            got = fetched.pop(map_task_id, None)
            if isinstance(got, dict):
                region = got
            else:  # local, being re-executed, or the batch could not bring it (got says why)
                region = await self._fetch_with_retry(ctx, task, map_task_id, holder, map_attempt, failed=got)
            if region is None:
                return  # committed by another attempt, or this attempt was taken back
            for key, values in region.items():
                have = merged.get(key)
                if have is None:
                    merged[key] = values
                else:
                    have.extend(values)
        if job.sim_compute_ms_per_mb:
            await ctx.sleep(job.sim_compute_ms_per_mb * sum(len(v) for v in merged.values()) * 8 / 1e6)
        env = TaskEnv(ctx, task_id=task.task_id, attempt=task.attempt, phase="reduce", out_dir=job.out_dir)
        # Each line encoded alone, then the bytes joined: one non-ASCII key
        # would make a joined str 2-4 bytes a character and its encoding
        # slow (measured: 3x the time for the demo's 34 MB of output).
        lines: list[bytes] = []
        for key in sorted(merged):
            if app.reduce_is_async:
                value = await app.reduce(key, merged[key], env)
            else:
                value = app.reduce(key, merged[key])
            lines.append(f"{key} {value}\n".encode())
        final = f"{job.out_dir}/mr-out-{task.task_id}"
        temp = f"{job.out_dir}/.mr-tmp-{task.task_id}-{ctx.node_id}-{task.attempt}"
        try:   # atomic commit: readers see all of one execution or nothing
            await self.storage.commit(ctx, temp, final, b"".join(lines))
        except OSError as e:   # (GFS out of reach past its retries): the task times out and runs again
            ctx.warn("reduce output not committed", task=task.task_id, error=str(e))
            return
        self.tasks_run += 1
        await ctx.call(self.coordinator, ReduceDone(
            worker_id=ctx.node_id, incarnation=self.incarnation, task_id=task.task_id,
            attempt=task.attempt, output_path=final,
        ), C.RPC_TIMEOUT_MS)

    # -- intermediate data --------------------------------------------------------------
    async def _fetch_batches(self, ctx: Context, task: ReduceTask) -> dict[int, dict[str, list[str]] | str]:
        """Region ``task.task_id`` of every map task whose output another
        worker holds: one ``FetchRegions`` call per holder (more when the
        regions do not fit in one reply). Returns map task id -> the region,
        or why it could not be had; map tasks held here or by nobody are
        left out."""
        wanted: dict[str, list[int]] = {}
        for map_task_id, holder, _ in task.locations:
            if holder is not None and holder != ctx.node_id:
                wanted.setdefault(holder, []).append(map_task_id)
        out: dict[int, dict[str, list[str]] | str] = {}
        while wanted:   # every holder asked at once: they read and send their regions side by side
            asked = [(holder, FetchRegions(reduce_task_id=task.task_id,
                                           map_task_ids=tuple(ids[: C.FETCH_BATCH_REGIONS_MAX])))
                     for holder, ids in wanted.items()]
            replies = await ctx.gather([ctx.call(holder, request, C.FETCH_TIMEOUT_MS) for holder, request in asked])
            for (holder, request), reply in zip(asked, replies, strict=True):
                ids = wanted.pop(holder)
                problem = reply_problem(ctx, request, reply)
                if reply is None or problem is not None:
                    out.update(dict.fromkeys(ids, "holder did not answer" if reply is None
                                             else f"impossible reply: {problem}"))
                    continue
                for part in reply.parts:
                    region, reason = await self._region_of_part(ctx, holder, task.task_id, part)
                    out[part.map_task_id] = region if region is not None else reason
                if len(ids) > len(reply.parts):
                    wanted[holder] = ids[len(reply.parts):]
        return out

    async def _region_of_part(self, ctx: Context, holder: str, reduce_task_id: int,
                              part: RegionPart) -> tuple[dict[str, list[str]] | None, str]:
        """The region a :class:`Regions` part carries (its rest fetched in
        chunks if it did not fit), or (None, why)."""
        if not part.found:
            return None, "map output missing"
        raw, reason = await self._fetch_chunks(ctx, holder, part.map_task_id, reduce_task_id,
                                               part.data, part.total_bytes)
        return (None, reason) if raw is None else _decode_region(raw)

    async def _fetch_with_retry(self, ctx: Context, task: ReduceTask, map_task_id: int, holder: str | None,
                                map_attempt: int, failed: str | None = None) -> dict[str, list[str]] | None:
        """Region ``task.task_id`` of a map task, waiting through its
        re-execution if its holder fails (or while it has none); None if the
        reduce task was committed meanwhile by another attempt, the
        coordinator took this attempt back (timed out, or released), or the
        coordinator is gone. ``failed``: why a fetch from ``holder`` just
        failed (reported at once, not tried again)."""
        while True:
            if holder is not None:
                if failed is None:
                    region, reason = await self._fetch(ctx, map_task_id, task.task_id, holder)
                    if region is not None:
                        return region
                else:
                    reason, failed = failed, None
                ctx.trace("fetch_failed", map_task=map_task_id, holder=holder, reason=reason)
                await ctx.call(self.coordinator, FetchFailed(
                    worker_id=ctx.node_id, incarnation=self.incarnation, reduce_task_id=task.task_id,
                    attempt=task.attempt, map_task_id=map_task_id, holder=holder, reason=reason,
                    map_attempt=map_attempt,
                ), C.RPC_TIMEOUT_MS)
            unanswered = 0
            while True:
                where = await self._call(ctx, self.coordinator, WhereIs(
                    worker_id=ctx.node_id, incarnation=self.incarnation, reduce_task_id=task.task_id,
                    attempt=task.attempt, map_task_id=map_task_id,
                ), C.RPC_TIMEOUT_MS)
                if type(where) is MapLocation:
                    unanswered = 0
                    if where.abandon:
                        return None
                    if where.holder is not None and where.map_attempt != map_attempt:
                        holder, map_attempt = where.holder, where.map_attempt
                        break
                else:
                    unanswered += 1
                    if unanswered >= C.COORDINATOR_UNREACHABLE_MAX:
                        ctx.trace("abandon_reduce", task=task.task_id, reason="coordinator unreachable")
                        return None
                await ctx.sleep(C.WAIT_DELAY_MS)

    async def _fetch(self, ctx: Context, map_task_id: int, reduce_task_id: int,
                     holder: str) -> tuple[dict[str, list[str]] | None, str]:
        """Region ``reduce_task_id`` of map task ``map_task_id``, or (None, why)."""
        if holder == ctx.node_id:
            got = _region_on_disk(ctx, map_task_id, reduce_task_id)
            if got is None:
                return None, "map output missing or its index corrupt"
            raw = got[0]
        else:
            raw, reason = await self._fetch_chunks(ctx, holder, map_task_id, reduce_task_id, b"", None)
            if raw is None:
                return None, reason
        return _decode_region(raw)

    async def _fetch_chunks(self, ctx: Context, holder: str, map_task_id: int, reduce_task_id: int,
                            first: bytes, total: int | None) -> tuple[bytes | None, str]:
        """A region's bytes from ``holder``, ``first`` already had (of
        ``total`` bytes; None: not known yet), the rest in ``FetchRegion``
        chunks; or (None, why)."""
        parts = [first]
        got = len(first)
        while total is None or got < total:
            request = FetchRegion(map_task_id=map_task_id, reduce_task_id=reduce_task_id, offset=got)
            chunk = await ctx.call(holder, request, C.FETCH_TIMEOUT_MS)
            if chunk is None:
                return None, "holder did not answer"
            problem = reply_problem(ctx, request, chunk, got_bytes=got, total_bytes=total)
            if problem is not None:
                return None, f"impossible chunk: {problem}"
            if not chunk.found:
                return None, "map output missing"
            if not chunk.data and chunk.total_bytes > got:
                return None, "holder sent an empty chunk"
            parts.append(chunk.data)
            got += len(chunk.data)
            total = chunk.total_bytes
        return b"".join(parts), ""

    def _regions(self, ctx: Context, msg: FetchRegions) -> Regions:
        """Region ``msg.reduce_task_id`` of the requested map tasks, in
        order, while their bytes fit in ``FETCH_CHUNK_BYTES_MAX``; the first
        region found is sent even when it does not fit (its first bytes)."""
        parts: list[RegionPart] = []
        budget = C.FETCH_CHUNK_BYTES_MAX
        found_any = False
        for map_task_id in msg.map_task_ids:
            # (once a region is in the reply, only as much as the budget holds is read)
            got = _region_on_disk(ctx, map_task_id, msg.reduce_task_id, 0, budget)
            if got is None:
                parts.append(RegionPart(map_task_id=map_task_id, found=False, data=b"", total_bytes=0))
                continue
            data, size = got
            if size > budget and found_any:
                break  # the reducer asks again for the rest
            parts.append(RegionPart(map_task_id=map_task_id, found=True, data=data, total_bytes=size))
            found_any = True
            budget -= len(data)
            if len(data) < size:
                break  # only the last part may be partial
        assert parts, "at least one part answers a FetchRegions"
        return Regions(parts=tuple(parts))

    def _region_chunk(self, ctx: Context, msg: FetchRegion) -> RegionChunk:
        """Bytes of one region from ``msg.offset`` on, at most ``FETCH_CHUNK_BYTES_MAX``."""
        got = _region_on_disk(ctx, msg.map_task_id, msg.reduce_task_id, msg.offset, C.FETCH_CHUNK_BYTES_MAX)
        if got is None:   # (a negative or too large offset too)
            return RegionChunk(found=False, data=b"", total_bytes=0)
        data, size = got
        return RegionChunk(found=True, data=data, total_bytes=size)


def _decode_region(raw: bytes) -> tuple[dict[str, list[str]] | None, str]:
    """A region from its checksummed record, or (None, why)."""
    scan = scan_records(raw)
    if scan.error is not None or len(scan.records) != 1:
        return None, f"corrupt map output: {scan.error or 'record count'}"
    try:
        region = decode(scan.records[0], _REGION_TYPE)
    except RemoteProtocolError as e:
        return None, f"undecodable map output: {e}"
    return region, ""
