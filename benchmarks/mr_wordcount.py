"""Word count over >= 200 MB of real text: synod MapReduce against its anchors.

Side by side in one run, on the eight MIT 6.5840 books concatenated enough
times to give at least ``--mb`` MB:

- synod MapReduce, real processes (coordinator + ``--workers`` workers), timed
  from cluster start to committed outputs, with and without the combiner;
- a sequential ``collections.Counter`` baseline (one process);
- ``multiprocessing.Pool`` with 2 processes (Counter per chunk, merged);
- PySpark ``local[2]`` standard RDD word count (flatMap, map, reduceByKey),
  when the optional ``bench`` extra (pyspark) is installed.

Every contender uses the same word definition (synod.mapreduce.apps._words)
and every result is checked equal to the sequential one. Prints a table, then
one JSON object of figures and ratios as the last line.

Usage: python benchmarks/mr_wordcount.py [--mb 200] [--workers 2] [--skip-spark]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

from synod.mapreduce.apps._words import words

REPO = Path(__file__).resolve().parent.parent
CHUNK_BYTES = 8 * 1024 * 1024


def shared_books() -> list[Path]:
    d = Path(os.environ.get("SYNOD_SHARED_DATA", REPO.parent / "shared" / "data")) / "gutenberg"
    files = sorted(d.glob("pg-*.txt"))
    if len(files) != 8:
        sys.exit(f"mr_wordcount: the eight books are not in {d} (set SYNOD_SHARED_DATA)")
    return files


def make_input(dst: Path, mb: int) -> Path:
    books = b"".join(p.read_bytes() for p in shared_books())
    copies = -(-mb * 1_000_000 // len(books))
    path = dst / f"books-x{copies}.txt"
    with open(path, "wb") as f:
        for _ in range(copies):
            f.write(books)
    return path


def line_chunks(path: Path, chunk_bytes: int = CHUNK_BYTES):
    """Chunks of whole lines, about ``chunk_bytes`` each."""
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk_bytes)
            if not block:
                return
            block += f.readline()
            yield block


def count_chunk(block: bytes) -> Counter:
    return Counter(words(block.decode("utf-8", errors="replace")))


def sequential(path: Path) -> Counter:
    total: Counter = Counter()
    for block in line_chunks(path):
        total.update(count_chunk(block))
    return total


def pool2(path: Path) -> Counter:
    total: Counter = Counter()
    with multiprocessing.Pool(2) as pool:
        for c in pool.imap_unordered(count_chunk, line_chunks(path)):
            total.update(c)
    return total


def pyspark_wc(path: Path) -> Counter | None:
    try:
        from pyspark import SparkConf, SparkContext
    except ImportError:
        return None
    os.environ["PYSPARK_PYTHON"] = sys.executable  # workers need this venv (synod's word splitter)
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"     # loopback only
    conf = (SparkConf().setMaster("local[2]").setAppName("synod-bench").set("spark.ui.enabled", "false")
            .set("spark.driver.host", "127.0.0.1").set("spark.driver.bindAddress", "127.0.0.1")
            .set("spark.ui.showConsoleProgress", "false"))
    sc = SparkContext(conf=conf)
    sc.setLogLevel("ERROR")
    try:
        rdd = sc.textFile(str(path), minPartitions=max(2, path.stat().st_size // CHUNK_BYTES))
        pairs = rdd.flatMap(words).map(lambda w: (w, 1)).reduceByKey(lambda a, b: a + b).collect()
        return Counter(dict(pairs))
    finally:
        sc.stop()


def synod_mr(path: Path, workers: int, use_combiner: bool, out: Path) -> Counter:
    from synod.cli.mr_real import run_real_job
    from synod.mapreduce.messages import JobSpec

    job = JobSpec(app="wc", app_args={}, inputs=(str(path),), out_dir=str(out), nreduce=workers * 2,
                  split_size_bytes=CHUNK_BYTES * 2, use_combiner=use_combiner)
    summary = run_real_job(job, workers=workers, run_dir=out.parent / f"run-{out.name}", progress=False)
    if not summary.done:
        raise RuntimeError(f"synod job failed: {summary}")
    total: Counter = Counter()
    for f in sorted(out.glob("mr-out-*")):
        for line in f.read_text().splitlines():
            key, _, value = line.rpartition(" ")
            total[key] = int(value)
    return total


def timed(fn, *args):
    t0 = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=int, default=200, help="input size, MB (default 200)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-spark", action="store_true")
    ap.add_argument("--skip-no-combiner", action="store_true")
    args = ap.parse_args()
    console = Console(stderr=False)
    tmp = Path(tempfile.mkdtemp(prefix="synod-bench-"))
    try:
        path = make_input(tmp, args.mb)
        size_mb = path.stat().st_size / 1e6
        console.print(f"input: {path.name}, {size_mb:.1f} MB")
        path.read_bytes()  # warm the page cache, as the anchors were measured warm
        rows: dict[str, float] = {}
        reference, rows["sequential Counter"] = timed(sequential, path)
        got, rows["multiprocessing.Pool(2)"] = timed(pool2, path)
        assert got == reference, "Pool(2) disagrees with the sequential count"
        if not args.skip_spark:
            got, t = timed(pyspark_wc, path)
            if got is None:
                console.print("pyspark not installed (pip install -e '.[bench]'): PySpark row skipped")
            else:
                assert got == reference, "PySpark disagrees with the sequential count"
                rows["PySpark local[2] RDD"] = t
        got, rows[f"synod MR, {args.workers} workers"] = timed(synod_mr, path, args.workers, True, tmp / "out-c")
        assert got == reference, "synod disagrees with the sequential count"
        if not args.skip_no_combiner:
            got, rows[f"synod MR, {args.workers} workers, no combiner"] = timed(
                synod_mr, path, args.workers, False, tmp / "out-nc")
            assert got == reference, "synod (no combiner) disagrees with the sequential count"
        synod_s = rows[f"synod MR, {args.workers} workers"]
        table = Table(title=f"word count, {size_mb:.0f} MB, {os.cpu_count()} cores")
        table.add_column("contender")
        table.add_column("seconds", justify="right")
        table.add_column("MB/s", justify="right")
        table.add_column("synod (combiner) / this", justify="right")
        figures: dict[str, object] = {"input_mb": round(size_mb, 1), "distinct_words": len(reference)}
        for name, secs in rows.items():
            ratio = secs / synod_s
            table.add_row(name, f"{secs:.2f}", f"{size_mb / secs:.1f}", f"{ratio:.2f}x")
            figures[name] = {"seconds": round(secs, 3), "mb_per_s": round(size_mb / secs, 2)}
        console.print(table)
        figures["ratio_synod_vs_pool2"] = round(rows["multiprocessing.Pool(2)"] / synod_s, 3)
        figures["ratio_synod_vs_sequential"] = round(rows["sequential Counter"] / synod_s, 3)
        if "PySpark local[2] RDD" in rows:
            figures["ratio_synod_vs_pyspark"] = round(rows["PySpark local[2] RDD"] / synod_s, 3)
        print(json.dumps(figures))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
