"""Real-process Raft under faults for N minutes: one client session appends
to a 3-node cluster of `synod node` processes on 127.0.0.1 while the suite of
synod.harness.raft_faults (kill -9 of the leader, SIGSTOP, isolation, all
nodes killed, a corrupt WAL with a node down, forged and garbage input,
connection floods) hits it; then the final value is read and checked.

    python benchmarks/raft_faults.py --minutes 5 [--seed S] [--interval 2]

Prints a table (operations acknowledged, faults injected by kind, lost,
duplicated, latencies, memory) and, as its last line, one JSON object.
Exit status 1 if anything acknowledged was lost or duplicated, or a check of
a fault failed.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from synod.harness.raft_faults import FAULT_KINDS, run_raft_faults
from synod.kv.simple import FACTORY
from synod.runtime import LocalCluster, local_spec, write_config


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=2.0, help="minutes of faults (default 2)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the fault schedule (default 1)")
    ap.add_argument("--interval", type=float, default=2.0, help="mean seconds between faults (default 2)")
    ap.add_argument("--run-dir", default=None, help="keep the run here (default: a temporary directory)")
    args = ap.parse_args(argv)
    if args.minutes <= 0 or args.interval <= 0:
        ap.error("--minutes and --interval must be positive")
    run_dir = Path(args.run_dir) if args.run_dir else Path(tempfile.mkdtemp(prefix="synod-raft-faults-"))
    _, path = write_config(local_spec(3, FACTORY, run_dir / "cluster"))
    t0 = time.perf_counter()
    with LocalCluster(path) as cl:
        cl.start()
        report = run_raft_faults(cl, duration_s=args.minutes * 60.0, seed=args.seed, interval_s=args.interval)
    wall = time.perf_counter() - t0
    s = report.summary()
    table = Table(title=f"Raft, 3 real processes, {args.minutes:g} min of faults (seed {args.seed})")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, value in (("operations acknowledged", f"{report.acked:,}"),
                        ("operations with unknown outcome", f"{report.unknown:,}"),
                        ("  of which applied", f"{report.applied_not_acked:,}"),
                        ("operations refused (not applied)", f"{report.not_applied:,}"),
                        *((f"faults: {k}", str(report.faults.get(k, 0))) for k in FAULT_KINDS),
                        ("lost (acknowledged, missing)", str(len(report.lost))),
                        ("duplicated", str(len(report.duplicated))),
                        ("out of order", str(len(report.out_of_order))),
                        ("latency p50 / max", f"{report.latency_ms_p50:.1f} / {report.latency_ms_max:,.0f} ms"),
                        ("largest node RSS", f"{report.rss_mb_max:.0f} MB"),
                        ("wall time", f"{wall:.0f} s")):
        table.add_row(name, value)
    Console(width=100).print(table)
    for problem in report.problems:
        print(f"problem: {problem}")
    print(json.dumps({"benchmark": "raft_faults", "minutes": args.minutes, "seed": args.seed,
                      "python": platform.python_version(), "wall_s": round(wall, 1), **s}))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
