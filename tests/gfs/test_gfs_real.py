"""A GFS cell as real processes (issue 13 sections 3-4): the client library
driven over TCP, fsspec's ``gfs://`` with pandas and pyarrow on top, and a
chunkserver killed with SIGKILL while writing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest

from synod.gfs.client import GfsClient, GfsError
from synod.harness.gfs_real import cell_spec, chunkservers_of, masters_of
from synod.runtime.auth import Credentials
from synod.runtime.cluster import LocalCluster
from synod.runtime.config import write_config
from synod.runtime.driver import Driver

CHUNK = 256 * 1024


@pytest.fixture
def cell(tmp_path: Path) -> Iterator[LocalCluster]:
    _, path = write_config(cell_spec(tmp_path, chunkservers=5, shadows=2, chunk_size_bytes=CHUNK, lease_ms=3_000,
                                     heartbeat_ms=200, chunkserver_timeout_ms=1_500))
    with LocalCluster(path, fork_server=True) as cl:
        cl.start()
        yield cl


def _wait(pred, timeout_s: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_fsspec_and_pandas_read_and_write_gfs(cell: LocalCluster) -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    opts = {"run_dir": str(cell.run_dir)}
    fs = fsspec.filesystem("gfs", **opts)
    _wait(lambda: _try_mkdir(fs))          # the chunkservers have reported; a lease may take a while
    data = bytes(range(256)) * 3000        # 768,000 bytes: three chunks and a bit
    with fsspec.open("gfs:///data/blob.bin", "wb", **opts) as f:
        f.write(data)
    with fsspec.open("gfs:///data/blob.bin", "rb", **opts) as f:
        assert f.read() == data
        f.seek(CHUNK - 3)
        assert f.read(6) == data[CHUNK - 3:CHUNK + 3]
    assert fs.info("/data/blob.bin")["size"] == len(data)
    assert fs.ls("/data", detail=False) == ["/data/blob.bin"]
    df = pd.DataFrame({"word": [f"w{i}" for i in range(20_000)], "count": range(20_000)})
    df.to_csv("gfs:///data/words.csv", index=False, storage_options=opts)
    assert pd.read_csv("gfs:///data/words.csv", storage_options=opts).equals(df)
    df.to_parquet("gfs:///data/words.parquet", storage_options=opts)
    assert pd.read_parquet("gfs:///data/words.parquet", storage_options=opts).equals(df)
    # a URL naming only the master (and the cell's key): it tells the client where the rest is
    master = cell.addr("master")
    url_opts = {"key_file": str(cell.run_dir / "cluster.key")}
    with fsspec.open(f"gfs://{master[0]}:{master[1]}/data/blob.bin", "rb", **url_opts) as f:
        assert f.read() == data
    assert pd.read_csv(f"gfs://{master[0]}:{master[1]}/data/words.csv", storage_options=url_opts).equals(df)
    fs.mv("/data/words.csv", "/data/renamed.csv")
    assert pd.read_csv("gfs:///data/renamed.csv", storage_options=opts).equals(df)
    assert not fs.exists("/data/words.csv")
    fs.rm_file("/data/blob.bin")
    assert not fs.exists("/data/blob.bin")


def _try_mkdir(fs: fsspec.AbstractFileSystem) -> bool:
    try:
        fs.mkdir("/data")
        return True
    except OSError:
        return False


def test_acknowledged_writes_and_appends_survive_kill_9_pause_and_partition(cell: LocalCluster) -> None:
    """Issue 13 section 4: SIGKILL a chunkserver, then the master (restarted
    from its operation log), then SIGSTOP another chunkserver for 2 s and
    cut a third off the cell for 2 s, in the middle of writes and record
    appends; every acknowledged one reads back, and every chunk is back at
    3 replicas on servers that run."""
    addrs = {n: cell.addr(n) for n in cell.node_ids}
    with Driver(addrs, credentials=Credentials.from_config(cell.config)) as d:
        client = GfsClient(masters_of(2), d.client_id, rpc_timeout_ms=6_000)
        _wait(lambda: _created(d, client, "/log") and _created(d, client, "/blob"))
        acked: list[tuple[str, int, bytes]] = []
        restart: threading.Timer | None = None
        victim = ""
        timers: list[threading.Timer] = []
        for i in range(90):
            if i == 45:
                paused = next(cs for cs in chunkservers_of(5) if cs != victim)
                cell.pause(paused)    # SIGSTOP: alive to the kernel, silent to everyone
                timers.append(threading.Timer(2.0, lambda p=paused: cell.resume(p)))
                timers[-1].start()
            if i == 60:
                cut = next(cs for cs in reversed(chunkservers_of(5)) if cs != victim)
                cell.isolate(cut)     # a partition: the cell cannot reach it, nor it the cell
                timers.append(threading.Timer(2.0, cell.heal))
                timers[-1].start()
            if i == 15:
                victim = next(cs for cs in chunkservers_of(5) if cell.is_alive(cs))
                cell.kill(victim)     # SIGKILL in the middle
            if i == 30:
                cell.kill("master")   # the master too; it comes back from its log half a second later
                restart = threading.Timer(0.5, lambda: cell.start(["master"]))
                restart.start()
            record = f"record {i:04d} ".encode() * 300
            if i % 2:
                acked.append(("/log", d.run(lambda ctx, r=record: client.record_append(ctx, "/log", r)), record))
            else:
                at = i * 4000
                d.run(lambda ctx, r=record, a=at: client.write(ctx, "/blob", a, r))
                acked.append(("/blob", at, record))
        assert restart is not None
        for t in [restart, *timers]:
            t.join()
        for path, offset, record in acked:
            size = len(record)
            assert d.run(lambda ctx, p=path, o=offset, n=size: client.read(ctx, p, o, n)) == record
        # the master counts the killed server lost and copies its chunks elsewhere (4.3)
        _wait(lambda: all(len(c.replicas) == 3 and victim not in c.replicas
                          for p in ("/log", "/blob") for c in d.run(lambda ctx, p=p: client.chunks(ctx, p))))


def _created(d: Driver, client: GfsClient, path: str) -> bool:
    try:
        d.run(lambda ctx: client.create(ctx, path))
        return True
    except GfsError as e:
        return e.status == "EXISTS"


def test_mapreduce_reads_its_input_from_and_commits_its_output_to_gfs(cell: LocalCluster, tmp_path: Path) -> None:
    """Issue 13 section 3: MapReduce (``ctx.fs`` = ``gfs://`` through the
    cluster config's ``fs``) reads its splits from GFS and commits its
    outputs there by rename; the result is the sequential reference's."""
    from synod.cli.mr_real import run_real_job
    from synod.mapreduce.messages import JobSpec
    from synod.mapreduce.reference import output_lines, run_sequential

    opts = {"run_dir": str(cell.run_dir)}
    fs = fsspec.filesystem("gfs", **opts)
    _wait(lambda: _try_mkdir(fs))
    words = ["gfs", "chunk", "lease", "master", "replica", "record", "append", "snapshot"]
    docs = {f"/in/doc{i}.txt": " ".join(words[(i * 7 + j) % len(words)] for j in range(40_000 + i * 999))
            for i in range(3)}
    for path, text in docs.items():
        fs.pipe_file(path, text.encode())
    job = JobSpec(app="synod.mapreduce.apps.wc", app_args={}, inputs=tuple(sorted(docs)), out_dir="/out/wc",
                  nreduce=2, split_size_bytes=CHUNK)
    hosts = {f"worker-{i}": f"cs{i}" for i in (1, 2, 3)}   # worker i beside chunkserver i
    summary = run_real_job(job, workers=3, run_dir=tmp_path / "mr", progress=False, fork_server=True,
                           fs={"protocol": "gfs", "options": opts}, worker_hosts=hosts)
    assert summary.done, summary.reason
    # 3.4: map tasks go beside a replica of their input (3 of 5 servers hold each chunk)
    st = summary.status
    assert st is not None and st.placeable_map_executions == st.map_executions > 0
    assert st.local_map_executions >= st.placeable_map_executions // 2, st
    outputs = [fs.cat_file(f"/out/wc/mr-out-{r}") for r in range(2)]
    assert output_lines(outputs) == run_sequential("synod.mapreduce.apps.wc", sorted(docs.items()))
    assert fs.exists("/out/wc/_SUCCESS")
