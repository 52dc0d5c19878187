"""What every benchmark script's test checks the same way: nothing it
started outlives it, and a contender whose program is missing is skipped
with its reason (the benchmarks print one JSON summary as their last line)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]


def assert_nothing_left_behind(summary: dict[str, Any], runs: dict[str, dict[str, Any]], *, pids_min: int = 1) -> None:
    """No process of ``runs`` (name -> its result, with ``pids``) is alive,
    the temp dir is gone and no process names it."""
    assert summary["processes_left"] == []
    for name, r in runs.items():
        assert len(r["pids"]) >= pids_min, f"{name}: its server processes are recorded"
        alive = [pid for pid in r["pids"] if psutil.pid_exists(pid)
                 and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
        assert alive == [], f"{name}: processes left running: {alive}"
    tmp = summary["tmp_dir"]
    assert summary["tmp_dir_removed"] is True
    assert not Path(tmp).exists(), "the temp dir is removed"
    left = [p.info for p in psutil.process_iter(["pid", "cmdline"]) if tmp in " ".join(p.info["cmdline"] or [])]
    assert left == [], f"processes left running: {left}"


def run_with_a_missing_program(script: str, args: tuple[str, ...], only: str, missing: Path) -> dict[str, Any]:
    """Run ``benchmarks/<script>`` with only contender ``only``, whose
    program is ``missing``: it exits 0, skips that contender naming the
    path, and its table says why. Returns the JSON summary."""
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *args], capture_output=True, text=True,
                          timeout=60, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert str(missing) in summary["skipped"][only]
    assert "not run" in proc.stdout, "the table says why"
    return summary
