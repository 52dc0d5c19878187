"""Raft's KV machine under Jepsen-style clients, checked for linearizability:
how many seeds and operations per wall second, and every verdict.

Workload: :func:`synod.harness.raft.run_kv_linearizability`, exactly what
``synod sim raft --workload kv`` runs: 5 servers, 5 clients (get 50%, put
25%, append 25% over 5 keys), the nemesis for ``--time`` seconds, a 3 s
drain, then the kv-model check. Each read mode runs with the nemesis its
assumptions allow: read-index and log under the full nemesis, lease under
partition, kill and loss (leases assume no pauses and bounded clock rates).

Prints a table, then, as its last line, one JSON object. A seed that is not
ok is listed with its replay command, and the exit status is 1.

Usage::

    python benchmarks/raft_kv_lin.py [--seeds N] [--time SECONDS] [--modes read-index,log,lease]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

from rich.console import Console
from rich.table import Table

from synod.harness.raft import run_kv_linearizability

FULL = ("partition", "kill", "pause", "skew", "loss", "corrupt")
NEMESIS_BY_MODE = {"read-index": FULL, "log": FULL, "lease": ("partition", "kill", "loss", "corrupt")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20, help="seeds per read mode (default 20)")
    ap.add_argument("--time", type=float, default=20.0, help="virtual seconds of faults per seed (default 20)")
    ap.add_argument("--modes", default="read-index,log,lease", help="read modes, comma-separated")
    args = ap.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    unknown = [m for m in modes if m not in NEMESIS_BY_MODE]
    if unknown or args.seeds < 1 or args.time <= 0:
        ap.error(f"modes must be among {sorted(NEMESIS_BY_MODE)} (got {unknown}), --seeds >= 1, --time > 0")
    table = Table(title=f"Raft KV linearizability: {args.seeds} seeds x {args.time:g} s of faults per mode")
    for col in ("reads", "nemesis", "seeds", "ok", "not ok", "operations", "wall s", "ops / wall s"):
        table.add_column(col, justify="right" if col not in ("reads", "nemesis") else "left")
    summary: dict[str, object] = {"benchmark": "raft_kv_lin", "seeds": args.seeds, "time_s": args.time,
                                  "python": platform.python_version(), "modes": {}}
    bad: list[str] = []
    for mode in modes:
        kinds = NEMESIS_BY_MODE[mode]
        ok = ops = 0
        t0 = time.perf_counter()
        for seed in range(1, args.seeds + 1):
            r = run_kv_linearizability(seed, reads=mode, kinds=kinds, time_ms=args.time * 1000.0)
            ops += r.history.counts()["invoke"]
            if r.safe:
                ok += 1
            else:
                bad.append(f"{mode} seed {seed}: {r.verdict} {r.violations[:1]}; replay: synod sim raft "
                           f"--workload kv --reads {mode} --nemesis {','.join(kinds)} --seed {seed} "
                           f"--time {args.time:g}s")
        wall = time.perf_counter() - t0
        table.add_row(mode, ",".join(kinds), str(args.seeds), str(ok), str(args.seeds - ok), f"{ops:,}",
                      f"{wall:.1f}", f"{ops / wall:,.0f}")
        summary["modes"][mode] = {"nemesis": list(kinds), "ok": ok,  # type: ignore[index]
                                  "not_ok": args.seeds - ok, "operations": ops, "wall_s": round(wall, 2)}
    Console(width=120).print(table)
    for line in bad:
        print(line)
    summary["all_ok"] = not bad
    print(json.dumps(summary))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
