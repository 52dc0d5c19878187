"""GFS aggregate throughput on 127.0.0.1 (issue 13 section 6): the paper's
Figure 3 experiments (Ghemawat et al., SOSP 2003, section 6.1) at this
machine's scale, beside this machine's own disk.

A cell of real processes (``synod.harness.gfs_real.cell_spec``): the
master, 2 shadow masters and ``--chunkservers`` (3) chunkservers, 64 MB
chunks, 3 replicas, so every byte written is pushed along a chain of three
servers and written and fsynced by each. For N = 1, 2, 4, 8 clients (each
its own process, ``GfsClient`` over ``synod.runtime.driver.Driver``), one
phase per operation, ``--seconds`` long, every client starting together:

- ``write``: 1 MB writes, client ``i`` to its own file ``/bench/w<N>-<i>``,
  one after another;
- ``read``: 1 MB reads at random 1 MB-aligned offsets of the files the
  write phase made (from whichever replica answers first in the client's
  order);
- ``append``: 1 MB record appends, every client to one shared file.

Each client counts the bytes of operations completed within the phase;
the aggregate is their sum over the phase. The anchor, measured in the
same run on the same file system, before the first client count and
after each one (this machine's disk varies several-fold from one minute
to the next; the median of those measurements is the anchor, and each is
printed; each rate is also shown against the fastest of them, the
strictest anchor): a 256 MB file written sequentially in
1 MB writes (``disk write``: fsynced after every 1 MB, as GFS syncs every
acknowledged mutation; also shown with a single fsync at the end) and
read back in 1 MB reads (``disk read``, from the page cache as the
chunkservers' reads mostly are). With 3 replicas on one disk, writes can
reach at most a third of the disk's write rate. The paper's figures
(100 Mbit NICs, 16 chunkservers) are printed beside: reads 10 MB/s for 1
client and 94 for 16, writes 6.3 and 35, record append 6.0 and 4.8.

Prints a table and, as its last line, one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import json
import mmap
import multiprocessing as mp
import os
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

MB = 1024 * 1024
PAPER = {"read": (10.0, 94.0), "write": (6.3, 35.0), "append": (6.0, 4.8)}   # 1 client, 16 clients (MB/s)


def disk_rates(folder: Path, size_mb: int = 256) -> dict[str, float]:
    """MB/s of sequential 1 MB writes (fsync each; fsync at the end) and reads."""
    block = os.urandom(MB)
    path = folder / "disk-bench.bin"
    out: dict[str, float] = {}
    for name, each in (("write_fsync_each_mb", True), ("write_fsync_end", False)):
        t0 = time.perf_counter()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        for _ in range(size_mb):
            os.write(fd, block)
            if each:
                os.fsync(fd)
        os.fsync(fd)
        os.close(fd)
        out[name] = size_mb / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        while f.read(MB):
            pass
    out["read_cached"] = size_mb / (time.perf_counter() - t0)
    out["read"] = out["read_cached"]
    try:   # the device itself: O_DIRECT past the page cache, into a page-aligned buffer
        buf = mmap.mmap(-1, MB)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
        t0 = time.perf_counter()
        while os.readv(fd, [buf]) > 0:
            pass
        out["read"] = size_mb / (time.perf_counter() - t0)
        os.close(fd)
    except (OSError, AttributeError):
        pass   # no O_DIRECT here: the cached rate stands in
    path.unlink()
    return out


def _client(run_dir: str, op: str, index: int, n: int, seconds: float, start_at: float, files_mb: int,
            queue: Any) -> None:
    from synod.gfs.client import GfsClient
    from synod.gfs.fs import cell_addresses, masters_in
    from synod.runtime.driver import Driver

    addrs, credentials = cell_addresses(run_dir)
    done = 0
    errors = 0
    with Driver(addrs, credentials=credentials) as d:
        client = GfsClient(masters_in(addrs), d.client_id, rpc_timeout_ms=10_000)
        rng = random.Random(index)
        data = os.urandom(MB)
        mine = f"/bench/w{n}-{index}"
        while time.time() < start_at:
            time.sleep(0.001)
        end = start_at + seconds
        k = 0
        while time.time() < end:
            try:
                if op == "write":
                    d.run(lambda ctx, at=k * MB: client.write(ctx, mine, at, data))
                elif op == "read":
                    at = rng.randrange(max(files_mb, 1)) * MB
                    got = d.run(lambda ctx, a=at: client.read(ctx, f"/bench/w{n}-{index}", a, MB))
                    if len(got) != MB:
                        errors += 1
                        continue
                else:
                    d.run(lambda ctx: client.record_append(ctx, "/bench/append", data))
            except Exception:
                errors += 1
                continue
            if time.time() <= end:
                done += MB
            k += 1   # (a write that ended late still wrote its MB: the read phase may read it)
    queue.put((index, done, errors, k))


def run_phase(run_dir: str, op: str, n: int, seconds: float, files_mb: int) -> tuple[float, int, int]:
    """Aggregate MB/s of ``n`` clients doing ``op`` for ``seconds``: (MB/s,
    errors, the fewest operations a client completed: for writes, the MB
    every client's file holds, where the read phase reads)."""
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    start_at = time.time() + 1.0
    procs = [ctx.Process(target=_client, args=(run_dir, op, i, n, seconds, start_at, files_mb, queue))
             for i in range(n)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    total = sum(r[1] for r in results)
    return total / MB / seconds, sum(r[2] for r in results), min(r[3] for r in results)


def _prepare(run_dir: str, n: int) -> None:
    from synod.gfs.client import GfsClient, GfsError
    from synod.gfs.fs import cell_addresses, masters_in
    from synod.runtime.driver import Driver

    addrs, credentials = cell_addresses(run_dir)
    with Driver(addrs, credentials=credentials) as d:
        client = GfsClient(masters_in(addrs), d.client_id, rpc_timeout_ms=5_000)
        for path in [f"/bench/w{n}-{i}" for i in range(n)] + ["/bench/append"]:
            try:
                d.run(lambda ctx, p=path: client.create(ctx, p))
            except GfsError as e:
                if e.status != "EXISTS":
                    raise


def _anchor_by_op(rates: dict[str, float]) -> dict[str, float]:
    """The disk rate each operation's rate is compared with."""
    return {"write": rates["write_fsync_each_mb"], "read": rates["read"], "append": rates["write_fsync_each_mb"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", default="1,2,4,8", help="client counts (comma-separated)")
    ap.add_argument("--seconds", type=float, default=5.0, help="length of each phase")
    ap.add_argument("--chunkservers", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the run dir")
    args = ap.parse_args()
    counts = [int(c) for c in args.clients.split(",")]

    from synod.harness.gfs_real import cell_spec
    from synod.runtime.cluster import LocalCluster
    from synod.runtime.config import write_config

    base = Path(tempfile.mkdtemp(prefix="synod-gfs-bench-"))
    disk_runs = [disk_rates(base)]
    run_dir = base / "cell"
    _, config_path = write_config(cell_spec(run_dir, chunkservers=args.chunkservers, shadows=2,
                                            chunk_size_bytes=64 * MB, lease_ms=60_000, heartbeat_ms=1_000,
                                            trace=False))
    rows: list[dict[str, Any]] = []
    try:
        with LocalCluster(config_path, fork_server=True) as cl:
            cl.start()
            time.sleep(1.5)   # every chunkserver has reported
            for n in counts:
                _prepare(str(run_dir), n)
                for op in ("write", "read", "append"):
                    files_mb = next((r["ops_per_client"] for r in rows if r["op"] == "write" and r["clients"] == n), 1)
                    rate, errors, per_client = run_phase(str(run_dir), op, n, args.seconds, files_mb)
                    rows.append({"op": op, "clients": n, "mb_s": round(rate, 1), "errors": errors,
                                 "ops_per_client": per_client})
                    print(f"  {op:6} {n} clients: {rate:7.1f} MB/s ({errors} errors)", flush=True)
                disk_runs.append(disk_rates(base))
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    disk = {k: statistics.median(run[k] for run in disk_runs) for k in disk_runs[0]}
    # The strictest anchor: the fastest measurement of the run (a rested
    # disk; after a loaded phase this one may run at a third of it).
    best = {k: max(run[k] for run in disk_runs) for k in disk_runs[0]}
    anchor, best_anchor = _anchor_by_op(disk), _anchor_by_op(best)
    print()
    print("disk write with an fsync per MB, each measurement (MB/s): "
          + ", ".join(f"{run['write_fsync_each_mb']:.0f}" for run in disk_runs))
    print(f"disk (same file system, 256 MB in 1 MB ops; medians of {len(disk_runs)}): "
          f"write {disk['write_fsync_each_mb']:.0f} MB/s with an fsync "
          f"per MB ({disk['write_fsync_end']:.0f} MB/s with one fsync at the end); read {disk['read']:.0f} MB/s "
          f"(O_DIRECT, the device; {disk['read_cached']:.0f} MB/s from the page cache)")
    print(f"{'op':7} {'clients':>7} {'synod MB/s':>11} {'of disk':>8} {'of best':>8} {'paper 1 / 16 clients':>22}")
    for r in rows:
        r["of_disk"] = round(r["mb_s"] / anchor[r["op"]], 3)
        r["of_best_disk"] = round(r["mb_s"] / best_anchor[r["op"]], 3)
        p1, p16 = PAPER[r["op"]]
        print(f"{r['op']:7} {r['clients']:>7} {r['mb_s']:>11.1f} {r['of_disk']:>8.1%} {r['of_best_disk']:>8.1%} "
              f"{p1:>10.1f} / {p16:<9.1f}")
    print("of disk: of the median of the disk's measurements (the anchor); of best: of the fastest of them")
    print(json.dumps({"disk_mb_s": {k: round(v, 1) for k, v in disk.items()},
                      "best_disk_mb_s": {k: round(v, 1) for k, v in best.items()},
                      "disk_write_fsync_each_mb_runs": [round(run["write_fsync_each_mb"], 1) for run in disk_runs],
                      "rows": rows,
                      "chunkservers": args.chunkservers, "seconds": args.seconds}))


if __name__ == "__main__":
    main()
