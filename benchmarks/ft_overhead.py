"""The cost of fault tolerance (issue 15 section 5): the paper's Table 1 at
this scale (Scales et al. 2010, section 4: "performance (FT / non-FT)" of
0.94-0.99 and logging bandwidth of 1.5-18 Mbit/s on real workloads).

For each program, two runs side by side in each round, both real processes
on 127.0.0.1 through :mod:`synod.harness.ft_real`:

- ``non-FT``: the shared storage and one replica, no backup (the same node
  code, live alone: outputs leave at once, nothing is logged);
- ``FT``: the storage, a primary and a backup: every input logged, every
  output held until the backup has the log through it.

Time: the primary's own measure (``Status.run_ms``), from the program's
first slice to its exit leaving for the client (after the backup's
acknowledgement, under FT). In FT runs the primary starts the program
only once the backup has its snapshot (``start_with_backup``), so the
whole run is fault tolerant.
Ratio: non-FT time / FT time (the paper's performance of FT relative to
non-FT; 1.0 is no cost). Logging bandwidth: the encoded bytes of the
primary's Log messages (``Status.log_bytes``) per second of the FT run.

Programs (synod's own, ``synod.ft.programs``): ``primes`` (compute-bound,
6.9 M instructions, a line per 1,000 primes), ``spew`` (output-heavy:
20,000 lines, 100,001 outputs) and ``echo`` fed ``--input-kib`` of console
input (input-heavy: every input chunk a log entry carrying its bytes).
Target (the issue): FT/non-FT >= 0.9 for the compute-bound program.

Method: ``--repeats`` rounds (default 3); each round runs non-FT then FT
for every program; each figure is the median over rounds. Outputs are
checked equal to the program's run without faults. Prints a table, then
as its last line one JSON object of every figure.

Usage::

    python benchmarks/ft_overhead.py [--repeats 3] [--input-kib 256] [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from synod.ft.messages import GetStatus, Status
from synod.harness.ft import reference_run
from synod.harness.ft_real import Console, pair_spec
from synod.runtime.cluster import LocalCluster
from synod.runtime.config import write_config

PAPER_RATIOS = (0.94, 0.99)
PAPER_MBITS = (1.5, 18.0)
TARGET_COMPUTE_RATIO = 0.9


def _input(kib: int) -> bytes:
    line = b"the quick brown fox jumps over the lazy dog 0123456789\n"
    return (line * (kib * 1024 // len(line) + 1))[:kib * 1024]


def _one(program: str, data: bytes, backup: bool, want: bytes) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="synod-ft-bench-") as tmp:
        _, path = write_config(pair_spec(Path(tmp), program=program, backup=backup))
        with LocalCluster(path) as cl:
            cl.start()
            console = Console(cl)
            console.feed(data, eof=True)
            code = console.run(600)
            status = cl.call("p1", GetStatus(), 2.0)
            console.close()
    if code != 0:
        raise RuntimeError(f"{program}: exit {code}")
    if console.text() != want:
        raise RuntimeError(f"{program}: output differs from the run without faults")
    assert isinstance(status, Status) and status.run_ms > 0
    return {"seconds": status.run_ms / 1000, "instructions": status.instret, "outputs": status.outputs,
            "log_bytes": status.log_bytes, "slowed_slices": status.slowed_slices}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--input-kib", type=int, default=256)
    ap.add_argument("--quick", action="store_true", help="one round, 32 KiB of input (a smoke test)")
    args = ap.parse_args(argv)
    repeats, kib = (1, 32) if args.quick else (max(1, args.repeats), max(1, args.input_kib))
    cases = {"primes": ("compute-bound", b""), "spew": ("output-heavy", b""), "echo": ("input-heavy", _input(kib))}
    wants = {p: reference_run(p, [data] if data else [])[0] for p, (_, data) in cases.items()}
    runs: dict[tuple[str, bool], list[dict[str, Any]]] = {}
    for _ in range(repeats):
        for program, (_, data) in cases.items():
            for backup in (False, True):
                runs.setdefault((program, backup), []).append(_one(program, data, backup, wants[program]))
    rows = []
    for program, (kind, data) in cases.items():
        plain = statistics.median(r["seconds"] for r in runs[(program, False)])
        ft = statistics.median(r["seconds"] for r in runs[(program, True)])
        ft_runs = runs[(program, True)]
        mbits = statistics.median(r["log_bytes"] * 8 / r["seconds"] / 1e6 for r in ft_runs)
        rows.append({"program": program, "kind": kind, "instructions": ft_runs[0]["instructions"],
                     "outputs": ft_runs[0]["outputs"], "input_bytes": len(data), "non_ft_s": round(plain, 4),
                     "ft_s": round(ft, 4), "ratio": round(plain / ft, 3), "log_mbit_per_s": round(mbits, 3),
                     "slowed_slices": statistics.median(r["slowed_slices"] for r in ft_runs),
                     "ft_runs_s": [round(r["seconds"], 4) for r in ft_runs],
                     "non_ft_runs_s": [round(r["seconds"], 4) for r in runs[(program, False)]]})
    _print_table(rows, repeats)
    compute = next(r for r in rows if r["kind"] == "compute-bound")
    summary = {"benchmark": "ft_overhead", "repeats": repeats, "quick": args.quick, "input_kib": kib,
               "rows": rows, "paper_ratios": list(PAPER_RATIOS), "paper_log_mbit_per_s": list(PAPER_MBITS),
               "compute_ratio": compute["ratio"], "target_compute_ratio": TARGET_COMPUTE_RATIO,
               "target_met": compute["ratio"] >= TARGET_COMPUTE_RATIO}
    print(json.dumps(summary))
    return 0


def _print_table(rows: list[dict[str, Any]], repeats: int) -> None:
    from rich.console import Console as RichConsole
    from rich.table import Table

    table = Table(title=f"FT cost, real processes on 127.0.0.1 (medians of {repeats} rounds); paper Table 1: "
                        f"{PAPER_RATIOS[0]}-{PAPER_RATIOS[1]}, {PAPER_MBITS[0]}-{PAPER_MBITS[1]} Mbit/s")
    for col in ("program", "kind", "instructions", "outputs", "input", "non-FT s", "FT s", "FT / non-FT",
                "logging Mbit/s"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r["program"], r["kind"], f"{r['instructions']:,}", f"{r['outputs']:,}",
                      f"{r['input_bytes'] // 1024} KiB", f"{r['non_ft_s']:.3f}", f"{r['ft_s']:.3f}",
                      f"{r['ratio']:.3f}", f"{r['log_mbit_per_s']:.2f}")
    RichConsole(width=140).print(table)
    print("FT / non-FT is non-FT time over FT time (1.0: fault tolerance costs nothing). Target: >= "
          f"{TARGET_COMPUTE_RATIO} for the compute-bound program.")


if __name__ == "__main__":
    raise SystemExit(main())
