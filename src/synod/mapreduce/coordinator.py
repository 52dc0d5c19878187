"""The MapReduce coordinator, the paper's master (Dean & Ghemawat, section 3.2).

For each task the coordinator keeps its state (idle, in-progress,
completed), the workers running it and, for a completed map task, the worker
whose local disk holds its R regions.

Rules, with the paper's sections:

- Workers pull tasks, idle map tasks first. A worker that asks while no
  task is ready is not told to come back later: its request is *parked*
  and answered as soon as a task is ready (a map completes and the reduce
  phase opens, output is lost and must be re-executed, a task times out)
  or the job is done; at the next tick at the latest (a ``WaitTask`` of 0
  ms, so it asks again), well within the worker's call timeout. So no
  worker sits out a polling interval between phases.
- Reduce tasks are handed out once
  every map task has completed (a reduce needs region r of every map task);
  after that, a map task re-executed because its output was lost does not
  hold back idle reduce tasks: their reducers wait for that output.
- Failure detection (3.3): the coordinator pings every known worker; one not
  heard from for ``task_timeout_ms``, or seen again with a new
  incarnation, is dead. Its in-progress tasks go back to idle, and so do its
  *completed map tasks*, because their output lived on its disk; reducers
  that then fail to fetch are told where the new output is by the re-issued
  reduce task.
- A task not reported within ``task_timeout_ms`` (lab default 10 s) is
  reassigned. A reducer still waiting (``WhereIs``) on an attempt that was
  taken back is told to abandon it and ask for work: otherwise every live
  worker could wait on a taken-back reduce while the lost map output it
  waits for has no worker to re-execute it (a real-process run hung so). The first completion wins; later duplicates are ignored
  (map output of a dead incarnation is refused).
- Backup tasks (3.6), when switched on: once no idle task is left in the
  current phase, idle workers get a second execution of the in-progress tasks
  that have run longest.
- Done: when every reduce task is committed. The coordinator then removes
  temp files left by crashed or slow duplicates and writes ``_SUCCESS`` in
  the output directory, last (Hadoop's convention): a job succeeded iff the
  marker and all R outputs are there, whatever became of the processes
  afterwards. A stale marker is removed when a job starts. Workers asking
  for work then get ``ExitTask``; the coordinator exits after
  ``DONE_GRACE_MS``.
- The job's status lists the worker deaths the coordinator observed (a
  worker silent for ``task_timeout_ms``, or back with a new incarnation).

Simplification: the coordinator's own state is volatile, as in the paper
("the current implementation aborts the MapReduce computation if the master
fails"); the nemesis targets workers only.

Invariant: a map task is completed iff it has a holder; no reduce task is
assigned before every map task has completed once.
"""

from __future__ import annotations

from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from synod.core import Context, Node, ReplyHandle
from synod.mapreduce import constants as C
from synod.mapreduce._splits import FileRange, plan_splits
from synod.mapreduce._storage import FsStorage, JobStorage
from synod.mapreduce._validate import check_coordinator_message
from synod.mapreduce.app import load_app
from synod.mapreduce.messages import (
    Ack,
    ExitTask,
    FetchFailed,
    GetStatus,
    JobSpec,
    JobStatus,
    MapDone,
    MapLocation,
    MapTask,
    Ping,
    Pong,
    ReduceDone,
    ReduceTask,
    RequestTask,
    WaitTask,
    WhereIs,
)

__all__ = ["Coordinator"]

IDLE, IN_PROGRESS, COMPLETED = "idle", "in-progress", "completed"


@dataclass(slots=True)
class _Task:
    kind: str  # "map" or "reduce"
    task_id: int
    status: str = IDLE
    next_attempt: int = 0
    # attempt -> (worker id, incarnation, start time ms)
    running: dict[int, tuple[str, int, float]] = field(default_factory=dict)
    holder: str | None = None          # map: the worker whose disk holds the output
    holder_attempt: int = -1           # map: the attempt that wrote it
    executions: int = 0


@dataclass(slots=True)
class _Worker:
    incarnation: int
    last_heard_ms: float
    told_exit: bool = False


class Coordinator(Node):
    """Coordinates one job (a :class:`JobSpec`).

    ``worker_hosts``: worker id -> the storage host it runs beside (3.4);
    ``storage``: where the input and output live (``ctx.fs`` by default, see
    :mod:`synod.mapreduce._storage`); ``input_wait_ms``: how long to wait
    for an input file that is not there yet (0: a missing input fails the
    job at once; a job may be started while its input is still being put
    into GFS, each file appearing whole by rename)."""

    def __init__(self, job: JobSpec, *, worker_hosts: dict[str, str] | None = None,
                 storage: JobStorage | None = None, input_wait_ms: float = 0.0) -> None:
        self.job = job
        self.storage: JobStorage = storage if storage is not None else FsStorage()
        self.input_wait_ms = input_wait_ms
        self.started = False     # the splits are planned: tasks can be handed out
        self.finishing = False   # the marker is being written (done once it is)
        # Locality (3.4): worker id -> the storage host it runs beside, and
        # map task id -> the hosts holding its input's first chunk (the
        # storage's replica_hosts: GFS's master knows them).
        self.worker_hosts = dict(worker_hosts or {})
        self.split_hosts: list[frozenset[str]] = []
        self.local_map_executions = 0
        self.placeable_map_executions = 0
        self.maps: list[_Task] = []
        self.reduces: list[_Task] = []
        self.splits: list[tuple[FileRange, ...]] = []  # map task id -> its file ranges
        self.partition_plan: Any = None
        self.workers: dict[str, _Worker] = {}
        self.dead_incarnations: set[int] = set()
        self.input_bytes = 0
        self.reexecutions = 0
        self.backups = 0
        self.done = False
        self.done_ms = 0.0
        # Invariant: set once every map task has completed at least once; from
        # then on reduce tasks are handed out, and a reducer that needs a
        # re-executed map output waits for it (WhereIs).
        self.reduce_phase = False
        self.last_ping_ms = 0.0
        # (worker id, reason) of observed deaths, oldest first.
        # Invariant: len(deaths) <= WORKER_DEATHS_MAX.
        self.deaths: list[tuple[str, str]] = []
        # Parked RequestTasks: worker id -> (incarnation, the request to
        # answer). Invariant: at most one per known worker (a later request
        # replaces it); none left after a tick.
        self.parked: dict[str, tuple[int, ReplyHandle]] = {}

    # -- start -------------------------------------------------------------------------
    async def on_start(self, ctx: Context) -> None:
        job = self.job
        storage = self.storage
        assert job.nreduce >= 1, "nreduce must be validated before the job starts"
        sizes = []
        for path in job.inputs:
            size = await self._input_size(ctx, path)
            if size is None:
                return
            sizes.append((path, size))
        self.input_bytes = sum(size for _, size in sizes)
        self.splits = plan_splits(sizes, job.split_size_bytes)
        assert 0 < len(self.splits) <= C.MAP_TASKS_MAX, f"{len(self.splits)} map tasks"
        split_hosts = []
        for split in self.splits:
            path, offset, _ = split[0]
            split_hosts.append(frozenset(await storage.replica_hosts(ctx, path, max(offset, 0)))
                               if self.worker_hosts else frozenset())
        marker = f"{job.out_dir}/{C.SUCCESS_MARKER}"
        await storage.remove(ctx, marker)  # a stale marker would vouch for this job's outputs
        app = load_app(job.app, job.app_args)
        if app.partition_plan is not None:
            if not isinstance(storage, FsStorage):
                ctx.warn("exiting: this app plans its partitions through ctx.fs, which this job's storage is not",
                         app=job.app)
                ctx.exit(2)
                return
            self.partition_plan = app.partition_plan(ctx.fs, list(job.inputs), job.nreduce)
        self.split_hosts = split_hosts
        self.maps = [_Task("map", i) for i in range(len(self.splits))]
        self.reduces = [_Task("reduce", r) for r in range(job.nreduce)]
        self.started = True
        ctx.trace("job_start", maps=len(self.maps), reduces=len(self.reduces), input_bytes=self.input_bytes)
        ctx.set_timer("tick", C.TICK_INTERVAL_MS)
        self._serve_parked(ctx)

    async def _input_size(self, ctx: Context, path: str) -> int | None:
        """An input file's size, waiting up to ``input_wait_ms`` for it to
        appear; None (and the coordinator exits 1) if it never does."""
        waited = 0.0
        while True:
            try:
                return await self.storage.size(ctx, path)
            except OSError as e:
                if waited >= self.input_wait_ms:
                    ctx.warn("exiting: an input file cannot be read", path=path, error=str(e))
                    ctx.exit(1)
                    return None
            await ctx.sleep(C.INPUT_POLL_MS)
            waited += C.INPUT_POLL_MS

    # -- messages ----------------------------------------------------------------------
    def on_message(self, ctx: Context, src: str, msg: Any) -> Coroutine[Any, Any, None] | None:
        check_coordinator_message(self, ctx, src, msg)  # RemoteProtocolError before any state changes
        finish = None
        match msg:
            case RequestTask():
                if self._heard(ctx, msg.worker_id, msg.incarnation):
                    reply = self._assign(ctx, msg.worker_id, msg.incarnation)
                    if type(reply) is WaitTask:
                        self.parked[msg.worker_id] = (msg.incarnation, ctx.reply_handle())
                    else:
                        ctx.reply(reply)
            case MapDone():
                if self._heard(ctx, msg.worker_id, msg.incarnation):
                    self._map_done(ctx, msg)
                ctx.reply(Ack(accepted=True))
            case ReduceDone():
                if self._heard(ctx, msg.worker_id, msg.incarnation):
                    finish = self._reduce_done(ctx, msg)
                ctx.reply(Ack(accepted=True))
            case FetchFailed():
                if self._heard(ctx, msg.worker_id, msg.incarnation):
                    self._fetch_failed(ctx, msg)
                ctx.reply(Ack(accepted=True))
            case WhereIs():
                if self._heard(ctx, msg.worker_id, msg.incarnation):
                    ctx.reply(self._where_is(ctx, msg))
            case Pong():
                self._heard(ctx, msg.worker_id, msg.incarnation)
            case GetStatus():
                ctx.reply(self.status())
            case _:
                ctx.trace("ignore_message", src=src, reason=f"unexpected {type(msg).__name__}")
        self._serve_parked(ctx)
        if self.done:
            self._exit_if_all_told(ctx, ctx.now_ms)
        return finish

    def _serve_parked(self, ctx: Context, *, release: bool = False) -> None:
        """Answer each parked request that now has a task (or ``ExitTask``);
        with ``release``, answer the others with a ``WaitTask`` of 0 ms."""
        for worker_id, (incarnation, handle) in list(self.parked.items()):
            reply = self._assign(ctx, worker_id, incarnation)
            if type(reply) is WaitTask:
                if not release:
                    continue
                reply = WaitTask(delay_ms=0)
            del self.parked[worker_id]
            ctx.reply_to(handle, reply)

    def _heard(self, ctx: Context, worker_id: str, incarnation: int) -> bool:
        """Note that ``worker_id`` is alive. A new incarnation means the old one
        died (a restart). Returns False for messages of a dead incarnation."""
        if incarnation in self.dead_incarnations:
            ctx.trace("ignore_worker", worker=worker_id, reason="message from a dead incarnation")
            return False
        w = self.workers.get(worker_id)
        if w is not None and w.incarnation != incarnation:
            self.dead_incarnations.add(w.incarnation)
            self._worker_died(ctx, worker_id, "restarted")
            w = None
        if w is None:
            self.workers[worker_id] = _Worker(incarnation, ctx.now_ms)
            ctx.trace("worker_joined", worker=worker_id)
        else:
            w.last_heard_ms = ctx.now_ms
        return True

    # -- assignment ------------------------------------------------------------------------
    def _assign(self, ctx: Context, worker_id: str, incarnation: int) -> Any:
        if self.done:
            self.workers[worker_id].told_exit = True
            return ExitTask()
        if not self.started:   # still planning (its storage is GFS, asked by messages)
            return WaitTask(delay_ms=C.WAIT_DELAY_MS)
        if not self.reduce_phase and all(t.status == COMPLETED for t in self.maps):
            self.reduce_phase = True
            ctx.trace("reduce_phase")
        host = self.worker_hosts.get(worker_id)
        task = None
        if host is not None:   # 3.4: a map task whose input has a replica beside this worker, first
            task = next((t for t in self.maps if t.status == IDLE and host in self.split_hosts[t.task_id]), None)
        if task is None:
            task = next((t for t in self.maps if t.status == IDLE), None)
        phase = self.maps
        if task is None and self.reduce_phase:
            phase = self.reduces
            task = next((t for t in phase if t.status == IDLE), None)
        if task is None and self.job.backup_tasks and self.backups < C.BACKUP_TASKS_MAX:
            task = self._backup_candidate(phase, worker_id)
            if task is not None:
                self.backups += 1
                ctx.trace("backup_task", phase=task.kind, task=task.task_id, worker=worker_id)
        if task is None:
            return WaitTask(delay_ms=C.WAIT_DELAY_MS)
        attempt = task.next_attempt
        task.next_attempt += 1
        task.executions += 1
        task.status = IN_PROGRESS
        task.running[attempt] = (worker_id, incarnation, ctx.now_ms)
        ctx.trace("assign", phase=task.kind, task=task.task_id, attempt=attempt, worker=worker_id)
        if task.kind == "map":
            if self.split_hosts and self.split_hosts[task.task_id]:
                self.placeable_map_executions += 1
                self.local_map_executions += host in self.split_hosts[task.task_id]
            return MapTask(task_id=task.task_id, attempt=attempt, split=self.splits[task.task_id],
                           job=self.job, partition_plan=self.partition_plan)
        locations = tuple((m.task_id, m.holder, m.holder_attempt) for m in self.maps)
        return ReduceTask(task_id=task.task_id, attempt=attempt, locations=locations, job=self.job)

    @staticmethod
    def _backup_candidate(phase: list[_Task], worker_id: str) -> _Task | None:
        best, best_start = None, None
        for t in phase:
            if t.status != IN_PROGRESS or len(t.running) != 1:
                continue
            (w, _, started), = t.running.values()
            if w != worker_id and (best_start is None or started < best_start):
                best, best_start = t, started
        return best

    # -- completions -----------------------------------------------------------------------
    def _complete(self, ctx: Context, task: _Task, msg: MapDone | ReduceDone) -> bool:
        """Record a reported completion; True if it is the first (the one
        that counts), False for a later duplicate, which is ignored."""
        task.running.pop(msg.attempt, None)
        if task.status == COMPLETED:
            ctx.trace(f"ignore_{task.kind}_done", task=msg.task_id, attempt=msg.attempt, reason="already completed")
            return False
        task.status = COMPLETED
        task.running.clear()
        ctx.trace(f"{task.kind}_done", task=msg.task_id, attempt=msg.attempt, worker=msg.worker_id)
        return True

    def _map_done(self, ctx: Context, msg: MapDone) -> None:
        task = self.maps[msg.task_id]
        if self._complete(ctx, task, msg):
            task.holder = msg.worker_id
            task.holder_attempt = msg.attempt

    def _reduce_done(self, ctx: Context, msg: ReduceDone) -> Coroutine[Any, Any, None] | None:
        """The reduce task is complete; once all are, the coroutine that
        writes the marker (else None)."""
        if self._complete(ctx, self.reduces[msg.task_id], msg) and all(
                t.status == COMPLETED for t in self.reduces) and not self.finishing and not self.done:
            self.finishing = True
            return self._finish(ctx)
        return None

    def _fetch_failed(self, ctx: Context, msg: FetchFailed) -> None:
        """A reducer could not read a map output: re-execute that map task
        unless it already was. The reduce attempt keeps what it fetched and
        asks ``WhereIs`` until the new output exists (section 3.3: reducers
        "that have not already read the data from worker A will read the data
        from worker B"). A report about an output that a newer attempt has
        already replaced (the same worker, restarted, may hold the new one) is
        stale and ignored."""
        task = self.maps[msg.map_task_id]
        if task.status == COMPLETED and task.holder == msg.holder and task.holder_attempt == msg.map_attempt:
            self._reexecute(ctx, task, f"fetch failed: {msg.reason}")

    def _where_is(self, ctx: Context, msg: WhereIs) -> MapLocation:
        reduce = self.reduces[msg.reduce_task_id]
        if reduce.status == COMPLETED:
            return MapLocation(holder=None, map_attempt=-1, abandon=True)
        running = reduce.running.get(msg.attempt)
        if running is None:
            # This attempt was taken back (it timed out, or its worker was
            # declared dead): its reducer must drop it and ask for work, or
            # it would wait here for ever while the task waits for a worker.
            return MapLocation(holder=None, map_attempt=-1, abandon=True)
        # a reducer waiting for re-executed input is making progress
        reduce.running[msg.attempt] = (running[0], running[1], ctx.now_ms)
        task = self.maps[msg.map_task_id]
        if task.status != COMPLETED:
            if self._no_worker_for_idle_maps(ctx.now_ms):
                self._release_reduce(ctx, reduce, msg.attempt, msg.worker_id)
                return MapLocation(holder=None, map_attempt=-1, abandon=True)
            return MapLocation(holder=None, map_attempt=-1, abandon=False)
        return MapLocation(holder=task.holder, map_attempt=task.holder_attempt, abandon=False)

    def _no_worker_for_idle_maps(self, now: float) -> bool:
        """Whether some map task waits to be re-executed while no worker is
        free to run it: each live worker holds a running attempt, or has not
        been heard for ``WORKER_RESPONSIVE_MS`` (it answers no heartbeat: a
        paused or partitioned worker, not yet silent for the task timeout,
        will not ask for the map task either). The reducers waiting for that
        output would otherwise wait for ever, or for the whole task timeout."""
        if not any(t.status == IDLE for t in self.maps):
            return False
        busy = {w for t in self.maps + self.reduces for (w, _, _) in t.running.values()}
        responsive_ms = min(C.WORKER_RESPONSIVE_MS, self.job.task_timeout_ms)
        return all(w in busy or now - info.last_heard_ms > responsive_ms
                   for w, info in self.workers.items() if not info.told_exit)

    def _release_reduce(self, ctx: Context, task: _Task, attempt: int, worker_id: str) -> None:
        """Take a waiting reduce attempt back (its worker drops what it
        fetched and asks for work, which is now the idle map task); the
        reduce task runs again once every map task is completed."""
        del task.running[attempt]
        if task.status == IN_PROGRESS and not task.running:
            task.status = IDLE
        ctx.trace("release_reduce", task=task.task_id, attempt=attempt, worker=worker_id,
                  reason="map output lost and no free worker to re-execute it")

    def _reexecute(self, ctx: Context, task: _Task, reason: str) -> None:
        """Completed map task whose output is gone: run it again (section 3.3)."""
        assert task.kind == "map"
        assert task.status == COMPLETED
        task.status = IDLE
        task.holder = None
        self.reexecutions += 1
        ctx.trace("reexecute", task=task.task_id, reason=reason)

    def _worker_died(self, ctx: Context, worker_id: str, reason: str) -> None:
        self.parked.pop(worker_id, None)  # a request of its earlier life
        lost = 0
        for task in self.maps + self.reduces:
            for attempt, (w, _, _) in list(task.running.items()):
                if w == worker_id:
                    del task.running[attempt]
                    lost += 1
            if task.status == IN_PROGRESS and not task.running:
                task.status = IDLE
        ctx.trace("worker_dead", worker=worker_id, reason=reason, in_progress_lost=lost)
        if len(self.deaths) < C.WORKER_DEATHS_MAX:
            self.deaths.append((worker_id, reason))
        if not self.done and any(t.status != COMPLETED for t in self.reduces):
            for task in self.maps:
                if task.status == COMPLETED and task.holder == worker_id:
                    self._reexecute(ctx, task, f"worker {worker_id} {reason}")

    async def _finish(self, ctx: Context) -> None:
        """Every output is committed: clean up, then write the marker, last;
        then the job is done. A storage failure (GFS out of reach) is tried
        again at the next tick."""
        storage = self.storage
        out_dir = self.job.out_dir
        outputs = [f"mr-out-{r}" for r in range(len(self.reduces))]
        try:
            for path in await storage.ls(ctx, out_dir):
                if path.rsplit("/", 1)[-1].startswith(".mr-tmp-"):
                    await storage.remove(ctx, path)  # leftovers of crashed or slow duplicates
            # atomic: the marker is whole or absent
            await storage.commit(ctx, f"{out_dir}/.mr-tmp-{C.SUCCESS_MARKER}", f"{out_dir}/{C.SUCCESS_MARKER}",
                                 ("\n".join(outputs) + "\n").encode())
        except OSError as e:
            ctx.warn("the job's marker is not written yet", error=str(e))
            self.finishing = False
            return
        self.done = True
        self.done_ms = ctx.now_ms
        ctx.trace("job_done", map_executions=sum(t.executions for t in self.maps),
                  reduce_executions=sum(t.executions for t in self.reduces), reexecutions=self.reexecutions,
                  local_map_executions=self.local_map_executions,
                  placeable_map_executions=self.placeable_map_executions)
        self._serve_parked(ctx)
        self._exit_if_all_told(ctx, ctx.now_ms)

    # -- housekeeping ------------------------------------------------------------------------
    def on_timer(self, ctx: Context, name: str) -> Coroutine[Any, Any, None] | None:
        assert name == "tick", name
        now = ctx.now_ms
        finish = None
        if self.done and self._exit_if_all_told(ctx, now):
            return None
        if not self.done and not self.finishing and self.reduces and all(t.status == COMPLETED
                                                                         for t in self.reduces):
            self.finishing = True   # the last try at the marker failed: again
            finish = self._finish(ctx)
        self._check_timeouts(ctx, now)
        self._serve_parked(ctx, release=True)
        if now - self.last_ping_ms >= C.HEARTBEAT_INTERVAL_MS:
            self.last_ping_ms = now
            for worker_id in sorted(self.workers):
                ctx.send(worker_id, Ping())
        ctx.set_timer("tick", C.TICK_INTERVAL_MS)
        return finish

    def _exit_if_all_told(self, ctx: Context, now: float) -> bool:
        """After the job: exit once every live worker was told to exit (at
        once, not at the next tick: a job's wall time ends here), or after
        DONE_GRACE_MS. Returns whether it exits."""
        live = [w for w in self.workers.values() if now - w.last_heard_ms < self.job.task_timeout_ms]
        if now - self.done_ms >= C.DONE_GRACE_MS or all(w.told_exit for w in live):
            ctx.trace("coordinator_exit")
            ctx.exit(0)
            return True
        return False

    def _check_timeouts(self, ctx: Context, now: float) -> None:
        for worker_id in sorted(self.workers):
            if now - self.workers[worker_id].last_heard_ms > self.job.task_timeout_ms:
                self._worker_died(ctx, worker_id, "silent")
                # If it speaks again (a healed partition) it joins afresh; its
                # map output, still on its disk, is then as good as any.
                del self.workers[worker_id]
        for task in self.maps + self.reduces:
            for attempt, (w, _, started) in list(task.running.items()):
                if now - started > self.job.task_timeout_ms:
                    del task.running[attempt]
                    ctx.trace("task_timeout", phase=task.kind, task=task.task_id, attempt=attempt, worker=w)
            if task.status == IN_PROGRESS and not task.running:
                task.status = IDLE

    def status(self) -> JobStatus:
        return JobStatus(
            maps_total=len(self.maps),
            maps_done=sum(t.status == COMPLETED for t in self.maps),
            reduces_total=len(self.reduces),
            reduces_done=sum(t.status == COMPLETED for t in self.reduces),
            map_executions=sum(t.executions for t in self.maps),
            reduce_executions=sum(t.executions for t in self.reduces),
            reexecutions=self.reexecutions,
            input_bytes=self.input_bytes,
            done=self.done,
            map_outputs_by_worker=self._map_outputs_by_worker(),
            worker_deaths=tuple(self.deaths),
            local_map_executions=self.local_map_executions,
            placeable_map_executions=self.placeable_map_executions,
        )

    def _map_outputs_by_worker(self) -> dict[str, int]:
        held: dict[str, int] = {}
        for t in self.maps:
            if t.status == COMPLETED and t.holder is not None:
                held[t.holder] = held.get(t.holder, 0) + 1
        return held
