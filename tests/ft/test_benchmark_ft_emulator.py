"""benchmarks/ft_emulator.py --quick measures synod's machine beside unicorn
and qemu-riscv32 on the sample program (and compute.c when the cross
compiler is installed), prints its table and ends with one JSON line of
every figure and ratio (a smoke test of the benchmark, not a timing
assertion)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from typing import Any

import pytest
from tests._benchmark_checks import REPO
from tests.conftest import shared_data_dir

SCRIPT = REPO / "benchmarks" / "ft_emulator.py"


@pytest.fixture(scope="module")
def run() -> tuple[list[str], dict[str, Any]]:
    hello = shared_data_dir() / "riscv" / "rv32im-hello" / "hello.elf"
    if not hello.exists():
        pytest.skip(f"{hello} not found (set SYNOD_SHARED_DATA)")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--hello", str(hello)], capture_output=True,
                          text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    *text, last = proc.stdout.strip().splitlines()
    return text, json.loads(last)


def test_table_first_then_one_json_object(run: tuple[list[str], dict[str, Any]]) -> None:
    text, summary = run
    assert any("million instructions per second" in line for line in text), "the table"
    assert summary["benchmark"] == "ft_emulator"
    assert summary["quick"] is True
    assert summary["repeats"] == 2


def test_every_contender_measured_on_hello(run: tuple[list[str], dict[str, Any]]) -> None:
    summary = run[1]
    hello = next(r for r in summary["programs"] if r["program"] == "hello")
    assert hello["instructions"] == 71_657
    for key in ("synod_cold_ips", "synod_warm_ips"):
        assert hello[key] > 0, key
    if "unicorn" not in summary["skipped"]:
        assert hello["unicorn_ips"] > 0
        assert hello["unicorn_count_ips"] > 0
        assert hello["unicorn_over_synod_warm"] > 0
    if "qemu" not in summary["skipped"]:
        assert hello["qemu_ips"] > 0
    if shutil.which("riscv64-unknown-elf-gcc"):
        compute = next(r for r in summary["programs"] if r["program"].startswith("compute"))
        assert compute["instructions"] > 2_000_000
    else:
        assert "compute" in summary["skipped"]
