"""benchmarks/memcache_throughput.py --quick with tiny cells runs memcached,
synod's cache server and synod's router, prints its tables, ends with one
JSON line holding a figure for every cell of every contender with 0 errors,
the ratios and the herd, and leaves no process and no temp dir behind (a
smoke test of the benchmark, not a timing assertion)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests._benchmark_checks import REPO, assert_nothing_left_behind, run_with_a_missing_program

CONTENDERS = {"memcached", "synod", "synod-router"}
MIXES = {"get90_set10", "get50_set50"}


def memcached_binary() -> str | None:
    return shutil.which("memcached") or ("/usr/bin/memcached" if Path("/usr/bin/memcached").exists() else None)


pytestmark = pytest.mark.skipif(memcached_binary() is None,
                                reason="memcached is not installed (apt-get install memcached)")
QUICK = ("--quick", "--seconds", "0.3", "--keys", "500", "--herd-rounds", "2")


@pytest.fixture(scope="module")
def run() -> tuple[list[str], dict[str, Any]]:
    """One tiny run of every contender: its stdout lines before the JSON, and the JSON."""
    script = REPO / "benchmarks" / "memcache_throughput.py"
    proc = subprocess.run([sys.executable, str(script), *QUICK], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    *text, last = proc.stdout.strip().splitlines()
    return text, json.loads(last)


def test_tables_first_then_one_json_object(run: tuple[list[str], dict[str, Any]]) -> None:
    text, summary = run
    assert any("ops/s" in line for line in text), "the throughput table"
    assert any("Thundering herd" in line for line in text), "the herd table"
    assert summary["benchmark"] == "memcache_throughput"
    assert summary["quick"] is True
    assert summary["seconds"] == 0.3
    assert summary["skipped"] == {}
    assert summary["failed"] == {}
    assert set(summary["contenders"]) == CONTENDERS


def test_every_cell_measured_without_errors(run: tuple[list[str], dict[str, Any]]) -> None:
    summary = run[1]
    assert summary["errors_total"] == 0
    for name, r in summary["contenders"].items():
        assert r["preload_errors"] == 0, name
        assert set(r["cells"]) == MIXES, name
        for mix, by_depth in r["cells"].items():
            assert set(by_depth) == {"P1", "P16"}, f"{name} {mix}"
            for depth, by_clients in by_depth.items():
                assert set(by_clients) == {"c1", "c50"}, f"{name} {mix} {depth}"
                for c, s in by_clients.items():
                    where = f"{name} {mix} {depth} {c}"
                    assert s["errors"] == 0, f"{where}: {s.get('first_error')}"
                    assert s["ops"] > 0, where
                    assert s["ops_per_s"] > 0, where
                    assert 0 < s["p50_ms"] <= s["p99_ms"], where
        for mode in ("no_leases", "leases"):
            herd = r["herd"][mode]
            assert herd["errors"] == 0, f"{name} {mode}: {herd.get('first_error')}"
            assert herd["rounds"] == 2, f"{name} {mode}"
        if shutil.which("memaslap") or shutil.which("memcaslap"):
            assert set(r["memaslap"]) == MIXES, name
            assert all(s["ops_per_s"] > 0 and s["errors"] == 0 for s in r["memaslap"].values()), name
        # Leases let one reader per invalidation go to the database (3.2.1).
        assert r["herd"]["leases"]["db_reads_per_invalidation_max"] == 1, name
        assert r["herd"]["no_leases"]["db_reads_per_invalidation_mean"] > 1, name


def test_ratios_and_targets_per_cell(run: tuple[list[str], dict[str, Any]]) -> None:
    summary = run[1]
    cells = [f"{mix}_P{d}_c{c}" for mix in MIXES for d in (1, 16) for c in (1, 50)]
    for cell in cells:
        for prefix in ("synod_over_memcached_", "synod_router_over_memcached_", "router_p50_overhead_",
                       "router_p50_added_ms_"):
            assert prefix + cell in summary["ratios"], prefix + cell
    assert set(summary["targets"]) >= {"synod_at_least_half_of_memcached_every_cell", "router_under_30pct_p50_every_cell"}


def test_nothing_left_behind(run: tuple[list[str], dict[str, Any]]) -> None:
    assert_nothing_left_behind(run[1], run[1]["contenders"])


def test_a_missing_binary_is_skipped_with_its_reason(tmp_path: Path) -> None:
    missing = tmp_path / "no-memcached"
    summary = run_with_a_missing_program("memcache_throughput.py",
                                         (*QUICK, "--only", "memcached", "--memcached", str(missing)), "memcached", missing)
    assert summary["contenders"] == {}
