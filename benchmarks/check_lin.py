"""Linearizability checker: time per history beside Porcupine's.

The 109 histories Porcupine's own tests check (``../shared/data/porcupine``):
the six kv files (model kv, partitioned by key) and the 103 Jepsen etcd logs
(model cas-register, with Porcupine's reading of the lines: a failed cas says
the value differed, an ``:info`` op stays open to the end; see
``jepsen/EXPECTED.md``). ``etcd_095.log`` is empty and has no expected verdict.

Method: every history is parsed once (not timed), then checked ``--repeats``
times; the figure is the median wall time of ``check_operations`` (pairing
into operations excluded, as Porcupine's figure excludes parsing). Peak
memory is traced with ``tracemalloc`` in one more, untimed run per history
(``--no-memory`` skips it); the process's peak RSS is reported at the end.
Every verdict is compared with the expected one.

Porcupine's figures (Go, commit 55508eb, median of 3, check time only, on
this kind of machine) are from the issue. Targets: the total within 10x of
Porcupine's total, no single history over 30 s.

Prints a table, then, as its last line, one JSON object with every figure.

Usage::

    python benchmarks/check_lin.py [--repeats 3] [--timeout 60] [--data DIR] [--no-memory]
                                   [--no-reductions]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from synod.check import KV, CasRegister, HistoryError, Model, Operation, check_operations, operations, read_history

PORCUPINE_MS = {"c01-ok": 0.31, "c01-bad": 0.16, "c10-ok": 1.1, "c10-bad": 0.71, "c50-ok": 201.0,
                "c50-bad": 11.0, "etcd_002": 238.0, "etcd_007": 141.0, "etcd_099": 92.0}
PORCUPINE_ETCD_TOTAL_MS = 642.0
PORCUPINE_TOTAL_MS = sum(v for k, v in PORCUPINE_MS.items() if k.startswith("c")) + PORCUPINE_ETCD_TOTAL_MS
TARGET_RATIO_TOTAL = 10.0
TARGET_SINGLE_S = 30.0
KV_FILES = ("c01-ok", "c01-bad", "c10-ok", "c10-bad", "c50-ok", "c50-bad")
ETCD_COUNT = 103


@dataclass
class Case:
    name: str
    model: Model
    ops: list[Operation]
    expected: str | None  # "ok" | "illegal" | None (untested)


def default_data_dir() -> Path:
    env = os.environ.get("SYNOD_SHARED_DATA")
    return (Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data") / "porcupine"


def load_cases(data: Path) -> list[Case]:
    """The 109 histories with their model and expected verdict."""
    cases = []
    for name in KV_FILES:
        cases.append(Case(name, KV(), operations(read_history(data / "kv" / f"{name}.txt", "edn")),
                          "ok" if name.endswith("-ok") else "illegal"))
    expected = {}
    for line in (data / "jepsen" / "EXPECTED.txt").read_text().splitlines():
        if line.strip():
            fname, verdict = line.split()
            expected[fname] = {"linearizable": "ok", "illegal": "illegal"}[verdict]
    for i in range(ETCD_COUNT):
        fname = f"etcd_{i:03d}.log"
        ops = operations(read_history(data / "jepsen" / fname, "jepsen-log"))
        cases.append(Case(fname[:-4], CasRegister(fail_means_mismatch=True), ops, expected.get(fname)))
    return cases


def run_case(case: Case, repeats: int, timeout_s: float, memory: bool, reductions: bool = True
             ) -> dict[str, object]:
    times = []
    verdict = ""
    configurations = 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = check_operations(case.model, case.ops, timeout_s=timeout_s, reductions=reductions)
        times.append(time.perf_counter() - t0)
        verdict = result.verdict
        configurations = result.configurations
    peak = None
    if memory:
        tracemalloc.start()
        check_operations(case.model, case.ops, timeout_s=timeout_s, reductions=reductions)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return {"ms": round(statistics.median(times) * 1e3, 3), "verdict": verdict, "expected": case.expected,
            "match": case.expected is None or verdict == case.expected, "operations": len(case.ops),
            "configurations": configurations, "peak_kib": None if peak is None else round(peak / 1024, 1),
            "porcupine_ms": PORCUPINE_MS.get(case.name)}


def _fmt_ratio(ours: float, theirs: float | None) -> str:
    return "" if theirs is None else f"{ours / theirs:.1f}x"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=60.0, help="per-history limit in seconds")
    ap.add_argument("--data", type=Path, default=None, help="the porcupine data folder")
    ap.add_argument("--no-memory", action="store_true", help="skip the tracemalloc run")
    ap.add_argument("--no-reductions", action="store_true",
                    help="the plain search: no reductions for unknown-outcome operations")
    args = ap.parse_args()
    if args.repeats < 1 or not args.timeout > 0:
        print("check_lin.py: error: --repeats must be >= 1 and --timeout > 0", file=sys.stderr)
        return 2
    data = args.data or default_data_dir()
    if not (data / "kv").is_dir() or not (data / "jepsen").is_dir():
        print(f"check_lin.py: error: no porcupine data in {data} (set SYNOD_SHARED_DATA or --data)",
              file=sys.stderr)
        return 2
    try:
        cases = load_cases(data)
    except HistoryError as e:
        print(f"check_lin.py: error: {e}", file=sys.stderr)
        return 2

    results = {c.name: run_case(c, args.repeats, args.timeout, not args.no_memory, not args.no_reductions) for c in cases}
    etcd_ms = sum(r["ms"] for n, r in results.items() if n.startswith("etcd"))  # type: ignore[misc]
    total_ms = sum(r["ms"] for r in results.values())  # type: ignore[misc]
    slowest = max(results, key=lambda n: results[n]["ms"])  # type: ignore[arg-type,return-value]
    all_match = all(r["match"] for r in results.values())
    ratio_total = total_ms / PORCUPINE_TOTAL_MS
    targets_met = (all_match and ratio_total <= TARGET_RATIO_TOTAL
                   and results[slowest]["ms"] <= TARGET_SINGLE_S * 1e3)  # type: ignore[operator]
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 150)
    table = Table(title=f"synod check lin vs Porcupine (median of {args.repeats}, check time only"
                        + (", reductions off)" if args.no_reductions else ")"))
    for col in ("history", "model", "ops", "verdict", "expected", "synod ms", "Porcupine ms", "ratio",
                "configs", "peak KiB"):
        table.add_column(col, justify="left" if col in ("history", "model", "verdict", "expected") else "right")
    shown = [*KV_FILES, "etcd_002", "etcd_007", "etcd_099"]
    for name in shown:
        r = results[name]
        table.add_row(name, "kv" if name.startswith("c") else "cas-register", str(r["operations"]),
                      str(r["verdict"]) if r["match"] else f"[red]{r['verdict']}[/]", str(r["expected"]),
                      f"{r['ms']:.2f}", "" if r["porcupine_ms"] is None else f"{r['porcupine_ms']:g}",
                      _fmt_ratio(r["ms"], r["porcupine_ms"]), str(r["configurations"]),  # type: ignore[arg-type]
                      "" if r["peak_kib"] is None else f"{r['peak_kib']:.0f}")
    etcd = [r for n, r in results.items() if n.startswith("etcd")]
    tested = [r for r in etcd if r["expected"] is not None]
    peak_etcd = max((r["peak_kib"] or 0) for r in etcd)  # type: ignore[type-var]
    table.add_row("all 103 etcd", "cas-register", str(sum(r["operations"] for r in etcd)),  # type: ignore[misc]
                  f"{sum(r['verdict'] == 'ok' for r in tested)} ok, "
                  f"{sum(r['verdict'] == 'illegal' for r in tested)} illegal",
                  "23 ok, 79 illegal", f"{etcd_ms:.1f}", f"{PORCUPINE_ETCD_TOTAL_MS:g}",
                  _fmt_ratio(etcd_ms, PORCUPINE_ETCD_TOTAL_MS), "", "" if args.no_memory else f"{peak_etcd:.0f}")
    table.add_row("etcd_095 (empty)", "cas-register", "0", str(results["etcd_095"]["verdict"]), "untested",
                  f"{results['etcd_095']['ms']:.3f}", "", "", "", "")
    table.add_row("[bold]all 109[/]", "", "", "all match" if all_match else "[red]MISMATCH[/]", "",
                  f"[bold]{total_ms:.1f}[/]", f"{PORCUPINE_TOTAL_MS:g}", _fmt_ratio(total_ms, PORCUPINE_TOTAL_MS),
                  "", "")
    console.print(table)
    for name, r in results.items():
        if not r["match"]:
            console.print(f"[red]{name}: verdict {r['verdict']}, expected {r['expected']}[/]")
    console.print(f"slowest: {slowest} {results[slowest]['ms']:.1f} ms; peak RSS {peak_rss_mib:.0f} MiB; "
                  f"targets (all verdicts match, total <= {TARGET_RATIO_TOTAL:g}x Porcupine = "
                  f"{PORCUPINE_TOTAL_MS * TARGET_RATIO_TOTAL / 1e3:.2f} s, none over {TARGET_SINGLE_S:g} s): "
                  + ("[green]met[/]" if targets_met else "[red]NOT met[/]"))
    summary = {
        "benchmark": "check_lin", "python": platform.python_version(), "machine": platform.machine(),
        "repeats": args.repeats, "timeout_s": args.timeout, "reductions": not args.no_reductions, "total_ms": round(total_ms, 3),
        "etcd_total_ms": round(etcd_ms, 3), "porcupine_total_ms": round(PORCUPINE_TOTAL_MS, 3),
        "porcupine_etcd_total_ms": PORCUPINE_ETCD_TOTAL_MS, "ratio_total": round(ratio_total, 3),
        "ratio_etcd": round(etcd_ms / PORCUPINE_ETCD_TOTAL_MS, 3), "slowest": slowest,
        "slowest_ms": results[slowest]["ms"], "peak_rss_mib": round(peak_rss_mib, 1), "all_match": all_match,
        "targets_met": targets_met, "results": results,
    }
    print(json.dumps(summary, separators=(",", ":")))
    return 0 if all_match else 1


if __name__ == "__main__":
    sys.exit(main())
