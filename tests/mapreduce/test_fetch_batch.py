"""Batched fetches and parked task requests (issue 9: the demo's job no
slower than the sequential run).

- A reducer asks each holder once for all the regions it holds
  (``FetchRegions``) instead of once per map task (paper section 3.1 step
  5); a reply holds at most ``FETCH_CHUNK_BYTES_MAX`` bytes, a region too
  large for it is finished in ``FetchRegion`` chunks, and a region the holder
  does not have is reported missing, so the coordinator re-executes that map
  task (section 3.3), as before.
- A worker that asks for work while none is ready is answered as soon as
  some is, not after a polling interval.
"""

from __future__ import annotations

import json

import pytest
from tests._fuzzhost import FuzzHost
from tests.mapreduce._jobs import lines_of, load_books, reference, spec

from synod.core import decode, encode, pack_record, scan_records
from synod.harness.mapreduce import run_sim_job
from synod.mapreduce import constants as C
from synod.mapreduce._validate import reply_problem
from synod.mapreduce.coordinator import Coordinator
from synod.mapreduce.messages import (
    FetchRegions,
    JobSpec,
    MapDone,
    MapTask,
    ReduceTask,
    Regions,
    RequestTask,
    WaitTask,
)
from synod.mapreduce.worker import Worker, map_output_path, pack_map_output
from synod.sim import Tracer, new_memory_fs

PEERS = ("coordinator", "worker-1", "worker-2")


def _region(i: int, size: int) -> bytes:
    """Map task i's region 0 (about ``size`` bytes), encoded as a map task writes it."""
    return encode({f"k{i}": ["v" * size]})


def _holder(outputs: dict[int, bytes]) -> FuzzHost:
    """worker-2 holding region 0 of the given map tasks (R = 1)."""
    host = FuzzHost(Worker("coordinator"), "worker-2", PEERS, seed=1)
    for map_task_id, region in outputs.items():
        host.ctx.disk.write(map_output_path(map_task_id), pack_map_output([region]))
    host.take_sent()
    return host


def _ask(host: FuzzHost, ids: tuple[int, ...]) -> tuple[FetchRegions, Regions]:
    request = FetchRegions(reduce_task_id=0, map_task_ids=ids)
    assert host.feed("worker-1", request, 7)
    ((_, reply, corr),) = host.take_sent()
    assert corr == -7
    assert type(reply) is Regions
    assert reply_problem(host.ctx, request, reply) is None  # what the holder sends, the reducer accepts
    return request, reply


def test_one_reply_holds_the_regions_that_fit_and_says_which_are_missing(monkeypatch) -> None:
    """Parts come in request order; a map output the holder lacks is
    ``found=False`` (the reducer reports it, section 3.3); the reply stops
    before the region that would take it past FETCH_CHUNK_BYTES_MAX."""
    regions = {m: _region(m, 300) for m in (0, 1, 2)}
    host = _holder(regions)
    record_bytes = len(pack_record(regions[0]))
    monkeypatch.setattr(C, "FETCH_CHUNK_BYTES_MAX", 2 * record_bytes + 10)
    _, reply = _ask(host, (0, 5, 1, 2))
    assert [(p.map_task_id, p.found) for p in reply.parts] == [(0, True), (5, False), (1, True)]
    assert [p.data for p in reply.parts if p.found] == [pack_record(regions[0]), pack_record(regions[1])]
    assert all(p.total_bytes == len(p.data) for p in reply.parts)
    _, rest = _ask(host, (2,))
    assert rest.parts[0].data == pack_record(regions[2])


def test_a_region_larger_than_a_reply_comes_first_and_partial(monkeypatch) -> None:
    """The first region is sent even when it does not fit (its first bytes,
    with its size, so the reducer fetches the rest); nothing after it."""
    big = _region(0, 5000)
    host = _holder({0: big, 1: _region(1, 10)})
    monkeypatch.setattr(C, "FETCH_CHUNK_BYTES_MAX", 1000)
    _, reply = _ask(host, (0, 1))
    (part,) = reply.parts
    assert part.found
    assert part.data == pack_record(big)[:1000]
    assert part.total_bytes == len(pack_record(big))


def test_impossible_batch_replies_are_refused() -> None:
    """Parts that name other map tasks, run past the reply limit or are
    partial before the last are impossible replies, not regions."""
    host = _holder({})
    request = FetchRegions(reduce_task_id=0, map_task_ids=(3, 4))
    ok_part = _holder({3: _region(3, 5)})
    _, good = _ask(ok_part, (3,))
    part = good.parts[0]
    wrong_id = Regions(parts=(part.__class__(map_task_id=4, found=True, data=part.data, total_bytes=len(part.data)),))
    partial_first = Regions(parts=(part.__class__(map_task_id=3, found=True, data=part.data[:2],
                                                  total_bytes=len(part.data)),
                                   part.__class__(map_task_id=4, found=False, data=b"", total_bytes=0)))
    too_many = Regions(parts=(part, part, part))
    for bad in (wrong_id, partial_first, too_many, Regions(parts=())):
        assert reply_problem(host.ctx, request, bad) is not None, bad


@pytest.fixture
def books(gutenberg_files):
    return load_books(gutenberg_files)


def test_a_reducer_asks_each_holder_once(books) -> None:
    """Paper section 3.1 step 5, batched: with 8 map tasks spread over 3
    workers and no fault, each reduce attempt sends at most one FetchRegions
    per other worker (none per map task), and the output is the sequential
    one."""
    tracer = Tracer(keep=True)
    job = spec("wc", books, nreduce=4)
    result = run_sim_job(job, books, seed=11, workers=3, tracer=tracer)
    assert lines_of(result.outputs) == reference("wc", books)
    sends = [json.loads(line) for line in tracer.lines if '"kind":"send"' in line]
    kinds = [s["msg"]["type"] for s in sends]
    assert "mr.FetchRegion" not in kinds  # every region fits in one reply
    batch = [s for s in sends if s["msg"]["type"] == "mr.FetchRegions"]
    assert batch, "no FetchRegions sent"
    asked = {(s["node"], s["dst"], s["msg"]["reduce_task_id"]) for s in batch}
    assert len(asked) == len(batch)  # one call per (reducer, holder, reduce task)
    assert all(len(s["msg"]["map_task_ids"]) >= 1 for s in batch)
    assert sum(len(s["msg"]["map_task_ids"]) for s in batch) <= 8 * job.nreduce
    assert result.status.map_executions == 8


def test_a_parked_request_is_answered_when_the_reduce_phase_opens() -> None:
    """A worker that asks while the last map task runs elsewhere gets no
    ``WaitTask`` to sleep on: the request is answered with a reduce task the
    moment that map task completes; unanswered requests are released with a
    0 ms wait at the next tick."""
    job = JobSpec(app="wc", app_args={}, inputs=("/in/a.txt",), out_dir="/out", nreduce=1, task_timeout_ms=5_000)
    fs = new_memory_fs()
    fs.pipe_file("/in/a.txt", b"a b\n")
    fs.makedirs("/out", exist_ok=True)
    host = FuzzHost(Coordinator(job), "coordinator", PEERS, seed=2, fs=fs)
    host.take_sent()
    assert host.feed("worker-1", RequestTask(worker_id="worker-1", incarnation=1), 1)
    ((_, task, _),) = host.take_sent()
    assert type(task) is MapTask
    assert host.feed("worker-2", RequestTask(worker_id="worker-2", incarnation=2), 2)
    assert host.take_sent() == []  # parked: nothing to hand out yet
    assert host.feed("worker-1", MapDone(worker_id="worker-1", incarnation=1, task_id=0, attempt=0,
                                         region_bytes=(10,)), 3)
    sent = {corr: msg for _, msg, corr in host.take_sent()}
    assert type(sent[-2]) is ReduceTask  # worker-2's parked request, answered now
    assert host.feed("worker-1", RequestTask(worker_id="worker-1", incarnation=1), 4)
    assert host.take_sent() == []
    host.now_ms += C.TICK_INTERVAL_MS
    host.fire("tick")
    released = [(dst, msg, corr) for dst, msg, corr in host.take_sent() if type(msg) is WaitTask]
    assert released == [("worker-1", WaitTask(delay_ms=0), -4)]


def test_regions_decode_to_what_was_written() -> None:
    """The bytes a part carries are the checksummed region record."""
    region = _region(0, 20)
    host = _holder({0: region})
    _, reply = _ask(host, (0,))
    scan = scan_records(reply.parts[0].data)
    assert decode(scan.records[0], dict[str, list[str]]) == {"k0": ["v" * 20]}


def test_regions_larger_than_a_reply_are_fetched_whole(books, monkeypatch) -> None:
    """With replies of 2,000 bytes, most regions do not fit: each comes
    first in its reply and is finished in FetchRegion chunks, the reducer
    asks again for the map tasks left out, and the output is still the
    sequential one."""
    monkeypatch.setattr(C, "FETCH_CHUNK_BYTES_MAX", 2_000)
    tracer = Tracer(keep=True)
    result = run_sim_job(spec("wc", books, nreduce=3), books, seed=12, workers=3, tracer=tracer)
    assert lines_of(result.outputs) == reference("wc", books)
    kinds = [json.loads(line)["msg"]["type"] for line in tracer.lines if '"kind":"send"' in line]
    assert kinds.count("mr.FetchRegion") > 0
    assert kinds.count("mr.FetchRegions") > 3
