"""benchmarks/sim_throughput.py runs and ends with one JSON line holding every
figure and ratio (a smoke test of the benchmark, not a timing assertion)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODELS = {"synod", "synod_traced", "simpy_idiomatic", "simpy_lean", "bare_heapq"}
RATIOS = {"ratio_synod_vs_simpy_idiomatic", "ratio_synod_vs_bare", "ratio_synod_vs_simpy_lean",
          "ratio_traced_vs_untraced"}


def test_quick_benchmark_prints_a_table_then_a_json_summary() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "sim_throughput.py"), "--quick", "--nodes", "2,10"],
        capture_output=True, text=True, timeout=300, check=True, cwd=REPO,
    )
    lines = proc.stdout.strip().splitlines()
    assert any("bare heapq loop" in line for line in lines[:-1]), "the table comes first"
    summary = json.loads(lines[-1])
    assert summary["benchmark"] == "sim_throughput"
    assert summary["quick"] is True
    assert summary["nodes"] == [2, 10]
    assert set(summary["results"]) == {"2", "10"}
    for n, row in summary["results"].items():
        assert MODELS | RATIOS | {"targets_met", "deliveries_per_virtual_ms"} <= set(row), n
        for model in MODELS:
            assert row[model] > 0, (n, model)
        assert row["ratio_synod_vs_bare"] == round(row["synod"] / row["bare_heapq"], 3)
        # Every model ran the same workload: N * 4 messages in flight over a
        # mean hop of 5.5 ms (within 15%, the runs being short).
        expected = int(n) * 4 / 5.5
        for model, rate in row["deliveries_per_virtual_ms"].items():
            assert abs(rate - expected) / expected < 0.15, (n, model, rate)
    assert isinstance(summary["targets_met"], bool)


def test_bad_arguments_are_refused() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "sim_throughput.py"), "--seconds", "0"],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )
    assert proc.returncode == 2
    assert "--seconds" in proc.stderr
