"""Fuzzing the MapReduce coordinator and worker with well-typed but
semantically invalid messages (issue 8, part 3): hypothesis strategies built
from the message types, fed to a live coordinator (running a three-map,
three-reduce word count over an in-memory file system) and to a live worker
(both its handlers and the replies to its calls). Every message is handled
or refused with RemoteProtocolError before any state changes; the node's
invariants hold after every message; a worker's task loop never dies.

As in tests/raft/test_fuzz.py, a recipe's numbers are mostly taken from the
live node (an attempt it really handed out, the holder of a map output, the
offset it fetches next) and sometimes wrong on purpose; each hypothesis
example is a batch of ``RECIPES`` recipes materialized ``ROUNDS`` times.
Messages per node: ``SYNOD_FUZZ_MESSAGES`` / 2 (default about 100,000 in all).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests._fuzzhost import FuzzHost, fuzz_messages

from synod.core import encode, pack_record
from synod.mapreduce.constants import SPLIT_RANGES_MAX
from synod.mapreduce.coordinator import COMPLETED, IDLE, IN_PROGRESS, Coordinator
from synod.mapreduce.messages import (
    Ack,
    ExitTask,
    FetchFailed,
    FetchRegion,
    FetchRegions,
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
    RegionChunk,
    RegionPart,
    Regions,
    RequestTask,
    WaitTask,
    WhereIs,
)
from synod.mapreduce.worker import Worker
from synod.sim.simulator import new_memory_fs

COORD = "coordinator"
WORKERS = ("worker-1", "worker-2", "worker-3")
PEERS = (COORD, *WORKERS)
ROUNDS = 5
RECIPES = 100
DEFAULT_MESSAGES = 100_000   # over the two roles
INPUTS = {"/in/a.txt": b"the cat sat\non the mat\n", "/in/b.txt": b"a dog\n", "/in/c.txt": b"the end\n"}
OUT = "/mr-out"
JOB = JobSpec(app="wc", app_args={}, inputs=tuple(sorted(INPUTS)), out_dir=OUT, nreduce=3, task_timeout_ms=5_000)
BAD_JOBS = (JobSpec(app="wc", app_args={}, inputs=JOB.inputs, out_dir=OUT, nreduce=0),
            JobSpec(app="no.such.app", app_args={}, inputs=JOB.inputs, out_dir=OUT, nreduce=3),
            JobSpec(app="wc", app_args={"x": "1"}, inputs=JOB.inputs, out_dir=OUT, nreduce=3),
            JobSpec(app="wc", app_args={}, inputs=JOB.inputs, out_dir="", nreduce=3),
            JobSpec(app="wc", app_args={}, inputs=("/in/missing.txt",), out_dir=OUT, nreduce=3),
            JobSpec(app="wc", app_args={}, inputs=JOB.inputs, out_dir=OUT, nreduce=3, sim_compute_ms_per_mb=-1.0))
REGION = pack_record(encode({"the": ["1", "1"], "cat": ["1"]}))
INCARNATIONS = (1, 0, -1, 2**62, 2**63)
SRC = st.sampled_from(list(WORKERS) * 4 + [COORD, "mallory", "cli"])
PICK = st.integers(0, 2**16)  # which of the live choices a recipe takes


def _fs() -> Any:
    fs = new_memory_fs()
    for path, data in INPUTS.items():
        fs.pipe_file(path, data)
    fs.makedirs(OUT, exist_ok=True)
    return fs


# -- the coordinator -------------------------------------------------------------------

COORD_RECIPE = st.one_of(
    st.tuples(st.just("request"), SRC, st.booleans(), PICK),
    st.tuples(st.just("map_done"), SRC, st.booleans(), PICK, st.sampled_from(["mine", "mine", "any", "next", "neg"]),
              st.sampled_from(["ok", "ok", "ok", "short", "neg", "huge"])),
    st.tuples(st.just("reduce_done"), SRC, st.booleans(), PICK, st.sampled_from(["mine", "mine", "any", "next"]),
              st.sampled_from(["ok", "ok", "ok", "other"])),
    st.tuples(st.just("fetch_failed"), SRC, st.booleans(), PICK, st.sampled_from(["mine", "any", "next"]),
              st.sampled_from(["holder", "holder", "other", "mallory"]), st.sampled_from([10, 10, 5000])),
    st.tuples(st.just("where_is"), SRC, st.booleans(), PICK, st.sampled_from(["mine", "any", "next"])),
    st.tuples(st.just("pong"), SRC, st.booleans(), PICK),
    st.tuples(st.just("other"), st.sampled_from(["status", "ping", "location", "chunk"])),
    st.tuples(st.just("tick"), st.sampled_from([100] * 6 + [200, 500, 500, 1500, 6000])),
)


def _task_and_attempt(coord: Coordinator, tasks: list[Any], worker: str, pick: int, mode: str) -> tuple[int, int]:
    """A task id and attempt: one ``worker`` really runs ("mine"), any
    handed-out attempt ("any"), or ones never handed out."""
    if mode == "mine":
        mine = [(t.task_id, a) for t in tasks for a, (w, _, _) in t.running.items() if w == worker]
        if mine:
            return mine[pick % len(mine)]
    n = len(tasks)
    tid = pick % (n + 2) - 1 if mode != "any" else pick % n  # -1 .. n: out of range at both ends
    if not 0 <= tid < n:
        return tid, 0
    nxt = tasks[tid].next_attempt
    if mode == "next":
        return tid, nxt
    if mode == "neg":
        return tid, -1
    return tid, (pick // 7) % nxt if nxt else 0


def coord_message(coord: Coordinator, t: tuple) -> tuple[str, Any]:
    kind = t[0]
    if kind == "other":
        msg = {"status": GetStatus(), "ping": Ping(),
               "location": MapLocation(holder=None, map_attempt=0, abandon=False),
               "chunk": RegionChunk(found=True, data=b"x", total_bytes=1)}[t[1]]
        return "cli", msg
    _, src, own_id, pick = t[:4]
    wid = src if own_id else WORKERS[pick % 3]
    w = coord.workers.get(wid)
    if w is not None and pick % 29:
        inc = w.incarnation
    else:  # mostly a new life (a restart), sometimes an impossible or long-dead one
        inc = 100 + pick if pick % 4 else INCARNATIONS[pick % len(INCARNATIONS)]
    if kind == "request":
        return src, RequestTask(worker_id=wid, incarnation=inc)
    if kind == "pong":
        return src, Pong(worker_id=wid, incarnation=inc)
    if kind == "map_done":
        tid, attempt = _task_and_attempt(coord, coord.maps, wid, pick, t[4])
        n = len(coord.reduces)
        regions = {"ok": (10,) * n, "short": (10,) * (n - 1), "neg": (-1,) * n, "huge": (2**40,) * n}[t[5]]
        return src, MapDone(worker_id=wid, incarnation=inc, task_id=tid, attempt=attempt, region_bytes=regions)
    if kind == "reduce_done":
        tid, attempt = _task_and_attempt(coord, coord.reduces, wid, pick, t[4])
        path = f"{OUT}/mr-out-{tid}" if t[5] == "ok" else "/etc/passwd"
        return src, ReduceDone(worker_id=wid, incarnation=inc, task_id=tid, attempt=attempt, output_path=path)
    if kind == "fetch_failed":
        rid, attempt = _task_and_attempt(coord, coord.reduces, wid, pick, t[4])
        mid = (pick // 3) % len(coord.maps)
        m = coord.maps[mid]
        holder = {"holder": m.holder or WORKERS[0], "other": WORKERS[pick % 3], "mallory": "mallory"}[t[5]]
        map_attempt = m.holder_attempt if t[5] == "holder" else pick % (m.next_attempt + 1)
        return src, FetchFailed(worker_id=wid, incarnation=inc, reduce_task_id=rid, attempt=attempt, map_task_id=mid,
                                holder=holder, reason="r" * t[6], map_attempt=map_attempt)
    assert kind == "where_is"
    rid, attempt = _task_and_attempt(coord, coord.reduces, wid, pick, t[4])
    mid = pick % (len(coord.maps) + 1)
    return src, WhereIs(worker_id=wid, incarnation=inc, reduce_task_id=rid, attempt=attempt, map_task_id=mid)


def coord_fingerprint(coord: Coordinator) -> tuple:
    tasks = tuple((t.status, t.next_attempt, tuple(sorted(t.running)), t.holder, t.holder_attempt, t.executions)
                  for t in coord.maps + coord.reduces)
    workers = tuple((w, i.incarnation, i.last_heard_ms, i.told_exit) for w, i in sorted(coord.workers.items()))
    return tasks, workers, tuple(sorted(coord.dead_incarnations)), coord.done, coord.reduce_phase, coord.reexecutions


def check_coordinator(coord: Coordinator) -> None:
    for t in coord.maps + coord.reduces:
        assert t.status in (IDLE, IN_PROGRESS, COMPLETED)
        assert (t.status == IN_PROGRESS) == bool(t.running), t
        assert all(w in WORKERS and 0 <= a < t.next_attempt for a, (w, _, _) in t.running.items()), t
    for t in coord.maps:
        assert (t.status == COMPLETED) == (t.holder is not None), t  # the coordinator's invariant
        assert t.holder is None or t.holder in WORKERS
    assert not coord.done or all(t.status == COMPLETED for t in coord.reduces)
    assert set(coord.workers) <= set(WORKERS)
    status = coord.status()
    assert 0 <= status.maps_done <= status.maps_total == 3
    assert 0 <= status.reduces_done <= status.reduces_total == 3


def new_coordinator(seed: int) -> tuple[FuzzHost, Coordinator]:
    coord = Coordinator(JOB)
    return FuzzHost(coord, COORD, PEERS, seed=seed, fs=_fs()), coord


def coord_batch(recipes: list[tuple], seed: int, kinds: Counter, events: Counter) -> None:
    host, coord = new_coordinator(seed)
    corr = 0
    for _ in range(ROUNDS):
        for t in recipes:
            if host.stopped:  # the job finished and the coordinator exited: a new job
                events.update(host.events)
                kinds["jobs done"] += 1
                host, coord = new_coordinator(seed + kinds["jobs done"])
            if t[0] == "tick":
                host.now_ms += t[1]
                host.fire("tick")
                kinds["tick"] += 1
            else:
                src, msg = coord_message(coord, t)
                before = coord_fingerprint(coord)
                corr += 1
                if host.feed(src, msg, corr):
                    kinds["handled"] += 1
                else:
                    assert coord_fingerprint(coord) == before, f"{msg!r} was refused after changing state"
                    kinds["refused"] += 1
                kinds[type(msg).__name__] += 1
            check_coordinator(coord)
            host.take_sent()
    events.update(host.events)


def _examples(target: int, message_percent: int) -> int:
    """Examples that feed ``target`` messages when ``message_percent`` of the
    steps are messages (the others are ticks or timer firings)."""
    return max(1, -(-target * 100 // message_percent // (RECIPES * ROUNDS)))


def test_fuzz_coordinator() -> None:
    """No message a worker (or anyone) can send crashes the coordinator:
    each is handled or refused with no state changed, and its task table
    stays consistent (in progress iff running, completed map iff held)."""
    target = fuzz_messages(DEFAULT_MESSAGES) // 2
    kinds: Counter = Counter()
    events: Counter = Counter()
    seeds = iter(range(1, 10**9))

    @settings(max_examples=_examples(target, 88), deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.lists(COORD_RECIPE, min_size=RECIPES, max_size=RECIPES))
    def run(recipes: list[tuple]) -> None:
        coord_batch(recipes, next(seeds) * 1000, kinds, events)

    run()
    messages = kinds["handled"] + kinds["refused"]
    reached = ("assign", "map_done", "reduce_done", "reexecute", "worker_dead", "task_timeout", "job_done")
    print(f"\nmapreduce coordinator fuzz: {messages} messages ({kinds['handled']} handled, {kinds['refused']} "
          f"refused), {kinds['tick']} ticks, {kinds['jobs done']} jobs finished, 0 crashes; by type: "
          + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()) if k[0].isupper())
          + "; reached: " + ", ".join(f"{k} {events[k]}" for k in reached))
    assert messages >= target * 0.97
    assert kinds["refused"] > messages // 10
    assert kinds["handled"] > messages // 3
    assert all(events[k] for k in reached), events


# -- the worker -----------------------------------------------------------------------

WORKER_RECIPE = st.one_of(
    st.tuples(st.just("reply"), st.sampled_from(["map", "map", "reduce", "reduce", "wait", "location", "location",
                                                 "chunk", "chunk", "chunk", "regions", "regions", "regions",
                                                 "ack", "status", "exit"]),
              st.sampled_from(["ok", "ok", "ok", "bad"]), PICK, st.booleans()),
    st.tuples(st.just("timeout"), st.just(0)),
    st.tuples(st.just("fetch"), st.sampled_from(["worker-2", "worker-2", "worker-3", COORD, "worker-1", "mallory"]),
              PICK, st.sampled_from(["ok", "ok", "bad"])),
    st.tuples(st.just("fetch_many"), st.sampled_from(["worker-2", "worker-3", COORD, "worker-1", "mallory"]),
              PICK, st.sampled_from(["ok", "ok", "bad"])),
    st.tuples(st.just("ping"), st.sampled_from([COORD, COORD, "worker-2", "mallory"])),
    st.tuples(st.just("stray"), st.sampled_from([COORD, "worker-2"]), st.sampled_from(["request", "ack", "status"])),
)


def _pending(host: FuzzHost) -> tuple[int, str, Any] | None:
    """The worker's first call waiting for a reply: (wait id, destination,
    request), or None while it sleeps. (A reduce task fetches from every
    holder at once: a gather waits for several calls.)"""
    wait_id = min(host._waiting)
    if ("call", wait_id) not in host.timers:
        return None
    return wait_id, host.pending_calls[wait_id][0], host.pending_calls[wait_id][1]


def _reply(t: tuple, request: Any, worker_ctx: Any) -> Any:
    _, kind, quality, pick, _ = t
    ok = quality == "ok"
    job = JOB if ok else BAD_JOBS[pick % len(BAD_JOBS)]
    if kind == "map":
        paths = sorted(INPUTS)
        if ok:  # one file, or several small files packed into one split
            split = tuple((p, 0, -1) for p in paths[: 1 + pick % 3])
        else:
            split = ((), ((paths[0], pick % 5 - 1, pick % 9 - 2),), (("/etc/passwd", 0, -1),),
                     ((paths[0], 0, -1),) * (SPLIT_RANGES_MAX + 1))[pick % 4]
        return MapTask(task_id=pick % 3 if ok else (-1, 200_000, 0, 1)[pick % 4], attempt=pick % 4, split=split,
                       job=job, partition_plan=None)
    if kind == "reduce":
        holders = (WORKERS[pick % 3], WORKERS[(pick + 1) % 3], None) if ok else ("mallory", None, COORD)
        locations = tuple((m, holders[(m + pick) % 3], pick % 3 if holders[(m + pick) % 3] else -1) for m in range(3))
        if not ok and pick % 2:
            locations = locations[::-1]
        return ReduceTask(task_id=pick % 3 if ok else 3, attempt=pick % 4, locations=locations, job=job)
    if kind == "wait":
        return WaitTask(delay_ms=200 if ok else (-5, 10**9)[pick % 2])
    if kind == "location":
        holder = (WORKERS[pick % 3], None, WORKERS[(pick + 1) % 3])[pick % 3] if ok else ("mallory", COORD)[pick % 2]
        return MapLocation(holder=holder, map_attempt=pick % 3 if ok else -(pick % 3) - 1, abandon=pick % 5 == 0)
    if kind == "chunk":
        offset = request.offset if type(request) is FetchRegion else 0
        if ok:
            data = REGION[offset: offset + 1 + pick % 16]
            return RegionChunk(found=pick % 7 != 0, data=data, total_bytes=len(REGION))
        return RegionChunk(found=True, data=b"\x00" * (1 + pick % 8), total_bytes=(0, 2**40, offset)[pick % 3])
    if kind == "regions":
        return _regions_reply(request, ok, pick)
    if kind == "ack":
        return Ack(accepted=True)
    if kind == "status":
        return JobStatus(maps_total=1, maps_done=0, reduces_total=1, reduces_done=0, map_executions=0,
                         reduce_executions=0, reexecutions=0, input_bytes=0, done=False, map_outputs_by_worker={})
    return ExitTask()


def _regions_reply(request: Any, ok: bool, pick: int) -> Regions:
    """A reply to a FetchRegions: a prefix of the map tasks asked for, each
    region found or not, the last one sometimes partial (ok); or parts that
    name other tasks, claim impossible sizes or are partial before the last."""
    ids = request.map_task_ids if type(request) is FetchRegions else (0, 1, 2)
    n = 1 + pick % len(ids)
    parts = []
    for i, m in enumerate(ids[:n]):
        found = (pick >> i) % 5 != 0
        data = REGION if found else b""
        if ok and found and i == n - 1 and pick % 3 == 0:
            data = REGION[: 1 + pick % (len(REGION) - 1)]  # partial: the rest comes by FetchRegion
        parts.append(RegionPart(map_task_id=m, found=found, data=data, total_bytes=len(REGION) if found else 0))
    if not ok:
        bad = pick % 4
        if bad == 0:
            parts[0] = RegionPart(map_task_id=parts[0].map_task_id + 7, found=True, data=REGION,
                                  total_bytes=len(REGION))
        elif bad == 1:
            parts[-1] = RegionPart(map_task_id=parts[-1].map_task_id, found=True, data=REGION, total_bytes=2**40)
        elif bad == 2:
            parts = [RegionPart(map_task_id=ids[0], found=True, data=REGION[:3], total_bytes=len(REGION)),
                     *parts[1:]] + ([] if len(parts) > 1 else [RegionPart(map_task_id=-1, found=False, data=b"",
                                                                            total_bytes=0)])
        else:
            parts = []
    return Regions(parts=tuple(parts))


class WorkerHost(FuzzHost):
    """A FuzzHost that remembers each call the worker makes, by wait id."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.pending_calls: dict[int, tuple[str, Any]] = {}
        super().__init__(*args, **kwargs)

    def _apply(self, ctx: Any) -> None:
        for dst, msg, corr in ctx.effects.sends:
            if corr > 0:
                self.pending_calls[corr] = (dst, msg)
        super()._apply(ctx)


def new_worker(seed: int) -> WorkerHost:
    return WorkerHost(Worker(COORD), "worker-1", PEERS, seed=seed, fs=_fs())


def check_worker(host: WorkerHost) -> None:
    if host.stopped:
        assert host.exit_code == 0, host.exit_code
        return
    # One coroutine waits: the task loop (a gather of fetches waits once per call, all for it).
    waiting = {id(getattr(coro, "coro", coro)) for coro, _ in host._waiting.values()}
    assert len(waiting) == 1, "the worker's task loop died"


def worker_step(host: WorkerHost, t: tuple, kinds: Counter) -> None:
    kind = t[0]
    pending = _pending(host)
    if kind == "timeout" or (kind == "reply" and pending is None):
        wait_id = min(host._waiting)
        name = ("call", wait_id) if pending is not None else ("sleep", wait_id)
        host.now_ms += host.timers[name]
        host.fire(name)
        kinds["timer"] += 1
        return
    if kind == "reply":
        wait_id, dst, request = pending
        msg = _reply(t, request, host.ctx)
        src = dst if t[4] else "worker-3"
        ok = host.feed(src, msg, -wait_id)
    else:
        if kind == "fetch":
            _, src, pick, quality = t
            ok_ = quality == "ok"
            msg = FetchRegion(map_task_id=pick % 3 if ok_ else (-1, 10**6)[pick % 2], reduce_task_id=pick % 3,
                              offset=pick % 40 if ok_ else -1)
        elif kind == "fetch_many":
            _, src, pick, quality = t
            ids = tuple(range(1 + pick % 3)) if quality == "ok" else ((), (0, -1), (10**6,))[pick % 3]
            msg = FetchRegions(reduce_task_id=pick % 3 if quality == "ok" or pick % 2 else -1, map_task_ids=ids)
        elif kind == "ping":
            src, msg = t[1], Ping()
        else:
            src = t[1]
            msg = {"request": RequestTask(worker_id="worker-2", incarnation=1), "ack": Ack(accepted=False),
                   "status": GetStatus()}[t[2]]
        ok = host.feed(src, msg, 1)
    kinds["handled" if ok else "refused"] += 1
    kinds[type(msg).__name__] += 1


def worker_batch(recipes: list[tuple], seed: int, kinds: Counter, events: Counter) -> None:
    host = new_worker(seed)
    for _ in range(ROUNDS):
        for t in recipes:
            if host.stopped:
                events.update(host.events)
                kinds["restarts"] += 1
                host = new_worker(seed + kinds["restarts"])
            worker_step(host, t, kinds)
            check_worker(host)
            host.take_sent()
    events.update(host.events)


def test_fuzz_worker() -> None:
    """No message or reply crashes a worker or kills its task loop: handler
    messages are handled or refused, impossible replies are taken as no
    reply (traced ``ignore_reply``), and the worker runs on (or exits 0 when
    told to, or when the coordinator stays silent)."""
    target = fuzz_messages(DEFAULT_MESSAGES) // 2
    kinds: Counter = Counter()
    events: Counter = Counter()
    seeds = iter(range(1, 10**9))

    @settings(max_examples=_examples(target, 70), deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.lists(WORKER_RECIPE, min_size=RECIPES, max_size=RECIPES))
    def run(recipes: list[tuple]) -> None:
        worker_batch(recipes, next(seeds) * 1000, kinds, events)

    run()
    messages = kinds["handled"] + kinds["refused"]
    reached = ("map_start", "reduce_start", "fetch_failed", "ignore_reply", "worker_exit")
    print(f"\nmapreduce worker fuzz: {messages} messages ({kinds['handled']} handled, {kinds['refused']} refused), "
          f"{kinds['timer']} timer firings, {kinds['restarts']} restarts, 0 crashes; by type: "
          + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()) if k[0].isupper())
          + "; reached: " + ", ".join(f"{k} {events[k]}" for k in reached))
    assert messages >= target * 0.97
    assert kinds["refused"] > messages // 20
    assert all(events[k] for k in reached), events
