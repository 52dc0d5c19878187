"""benchmarks/ft_overhead.py --quick runs each program without and with a
backup as real processes, prints its table and ends with one JSON line of
every figure (a smoke test of the benchmark, not a timing assertion)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests._benchmark_checks import REPO

SCRIPT = REPO / "benchmarks" / "ft_overhead.py"


def test_the_table_then_one_json_object_with_every_program_measured() -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, timeout=300,
                          cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    *text, last = proc.stdout.strip().splitlines()
    assert any("FT / non-FT" in line for line in text), "the table"
    summary = json.loads(last)
    assert summary["benchmark"] == "ft_overhead" and summary["quick"] is True
    rows = {r["program"]: r for r in summary["rows"]}
    assert set(rows) == {"primes", "spew", "echo"}
    assert rows["spew"]["outputs"] == 100_001 and rows["primes"]["instructions"] == 6_909_805
    for r in rows.values():
        assert r["non_ft_s"] > 0 and r["ft_s"] > 0 and r["ratio"] > 0
    assert rows["echo"]["log_mbit_per_s"] > 0          # input-heavy: the log carries the input
