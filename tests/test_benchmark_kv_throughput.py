"""benchmarks/kv_throughput.py --quick --only synod,redis runs, prints its
tables, ends with one JSON line in which every figure is positive and every
error count is 0, and leaves no process and no temp dir behind (a smoke test
of the benchmark, not a timing assertion)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

REPO = Path(__file__).resolve().parents[1]


def figures(obj: Any, path: str = "") -> list[tuple[str, float]]:
    """Every number in ``obj`` (booleans aside) as (dotted path, value)."""
    if isinstance(obj, dict):
        return [f for k, v in obj.items() for f in figures(v, f"{path}.{k}" if path else str(k))]
    if isinstance(obj, list):
        return [f for i, v in enumerate(obj) for f in figures(v, f"{path}[{i}]")]
    if isinstance(obj, int | float) and not isinstance(obj, bool):
        return [(path, obj)]
    return []


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not on PATH (apt-get install redis-server)")
def test_quick_kv_throughput_prints_tables_then_json() -> None:
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "kv_throughput.py"), "--quick", "--only", "synod,redis"],
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert any("ops/s" in line for line in lines[:-1]), "the table comes first"
    summary = json.loads(lines[-1])
    assert summary["benchmark"] == "kv_throughput"
    assert summary["quick"] is True
    assert summary["seconds"] == 2.0
    assert set(summary["contenders"]) == {"synod", "redis"}
    assert summary["skipped"] == {} and summary["failed"] == {}
    for name, r in summary["contenders"].items():
        for kind in ("write", "read"):
            assert set(r[kind]) == {"1", "50"}, f"{name} {kind}: a cell per client count"
        if shutil.which("redis-benchmark"):
            assert set(r["redis_benchmark"]) == {"P1", "P16"}, name
    assert "synod_over_redis_write_c50" in summary["ratios"]
    assert "synod_over_redis_read_c50" in summary["ratios"]
    numbers = figures(summary)
    assert len(numbers) > 40
    for path, value in numbers:
        if path.rsplit(".", 1)[-1].endswith("errors") or path.endswith("errors_total"):
            assert value == 0, f"{path} = {value}"
        else:
            assert value > 0, f"{path} = {value}"
    tmp = summary["tmp_dir"]
    assert not Path(tmp).exists(), "the temp dir is removed"
    left = [p.info for p in psutil.process_iter(["pid", "cmdline"]) if tmp in " ".join(p.info["cmdline"] or [])]
    assert left == [], f"processes left running: {left}"
