"""Raft in the simulator: simulated seconds per wall second, and seeds per minute.

Workload: :func:`synod.harness.raft.run_chaos`, exactly what ``synod sim raft``
runs: a 5-node cluster, a client proposing a command every 10 ms of virtual
time to a random live server, the full nemesis (partition, kill, pause, clock
skew, loss) for ``--time`` seconds, then faults stop and the cluster must
commit again (the liveness phase, up to 10 s more). Every server's Ready feeds
the safety checker, as in the tests.

Figures: for each seed, the virtual seconds simulated (both phases), the wall
seconds, deliveries and committed entries. ``sim_s_per_wall_s`` is total
virtual over total wall time; ``seeds_per_minute`` is how many such seeds one
core runs in a minute. Prints a table, then, as its last line, one JSON object.

Usage::

    python benchmarks/raft_sim.py [--quick] [--seeds N] [--time SECONDS]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

from rich.console import Console
from rich.table import Table

from synod.harness.raft import run_chaos
from synod.sim.nemesis import NEMESIS_KINDS

NODES = 5


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 seeds of 5 s (a smoke run)")
    ap.add_argument("--seeds", type=int, default=10, help="seeds to run (default 10)")
    ap.add_argument("--time", type=float, default=60.0, help="virtual seconds of faults per seed (default 60)")
    args = ap.parse_args(argv)
    if args.quick:
        args.seeds, args.time = 2, 5.0
    if args.seeds < 1:
        ap.error("--seeds must be at least 1")
    if args.time <= 0:
        ap.error("--time must be positive")

    rows = []
    for seed in range(1, args.seeds + 1):
        t0 = time.perf_counter()
        r = run_chaos(seed, nodes=NODES, time_ms=args.time * 1000.0, kinds=NEMESIS_KINDS)
        wall = time.perf_counter() - t0
        rows.append({"seed": seed, "virtual_s": r.virtual_ms / 1000.0, "wall_s": wall,
                     "deliveries": r.deliveries, "committed": r.committed,
                     "safe": not r.violations, "recovered": r.recovered})

    table = Table(title=f"Raft sim: {NODES} nodes, nemesis {','.join(NEMESIS_KINDS)}, {args.time:g} s of faults")
    for col in ("seed", "virtual s", "wall s", "sim s / wall s", "deliveries", "committed", "safe", "recovered"):
        table.add_column(col, justify="right")
    for row in rows:
        table.add_row(str(row["seed"]), f"{row['virtual_s']:.1f}", f"{row['wall_s']:.2f}",
                      f"{row['virtual_s'] / row['wall_s']:.1f}", str(row["deliveries"]), str(row["committed"]),
                      "yes" if row["safe"] else "NO", "yes" if row["recovered"] else "no")
    Console(width=120).print(table)

    virtual = sum(r["virtual_s"] for r in rows)
    wall = sum(r["wall_s"] for r in rows)
    summary = {
        "benchmark": "raft_sim",
        "quick": args.quick,
        "nodes": NODES,
        "nemesis": list(NEMESIS_KINDS),
        "seeds": args.seeds,
        "fault_time_s": args.time,
        "virtual_s": round(virtual, 3),
        "wall_s": round(wall, 3),
        "sim_s_per_wall_s": round(virtual / wall, 2),
        "seeds_per_minute": round(60.0 * len(rows) / wall, 2),
        "deliveries_per_wall_s": round(sum(r["deliveries"] for r in rows) / wall, 1),
        "all_safe": all(r["safe"] for r in rows),
        "all_recovered": all(r["recovered"] for r in rows),
        "python": platform.python_version(),
    }
    print(json.dumps(summary))
    return 0 if summary["all_safe"] else 1


if __name__ == "__main__":
    sys.exit(main())
