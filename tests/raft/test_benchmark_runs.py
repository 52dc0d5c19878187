"""benchmarks/raft_sim.py runs and ends with one JSON line holding its
figures (a smoke test of the benchmark, not a timing assertion)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_quick_raft_benchmark_prints_a_table_then_json() -> None:
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "raft_sim.py"), "--quick"],
                          capture_output=True, text=True, timeout=300, check=True, cwd=REPO)
    lines = proc.stdout.strip().splitlines()
    assert any("sim s / wall s" in line for line in lines[:-1]), "the table comes first"
    summary = json.loads(lines[-1])
    assert summary["benchmark"] == "raft_sim"
    assert summary["quick"] is True
    assert summary["nodes"] == 5
    assert summary["nemesis"] == ["partition", "kill", "pause", "skew", "loss", "corrupt"]
    assert summary["seeds"] == 2
    assert summary["sim_s_per_wall_s"] > 0
    assert summary["seeds_per_minute"] > 0
    assert summary["virtual_s"] >= 2 * 5.0, "both seeds ran their fault phase"
    assert summary["all_safe"] is True


def test_kv_linearizability_benchmark_prints_a_table_then_json() -> None:
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "raft_kv_lin.py"), "--seeds", "1",
                           "--time", "3"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert any("ops / wall s" in line for line in lines[:-1]), "the table comes first"
    summary = json.loads(lines[-1])
    assert summary["benchmark"] == "raft_kv_lin" and summary["all_ok"] is True
    assert set(summary["modes"]) == {"read-index", "log", "lease"}
    assert all(m["ok"] == 1 and m["operations"] > 100 for m in summary["modes"].values())
