"""benchmarks/zk_throughput.py --quick with short phases runs a 3-server
Apache ZooKeeper 3.8 and a 3-server synod.zk ensemble, prints its table,
ends with one JSON line holding ops/s and p99 for create, set, get and
exists of both with 0 errors, the ratios synod/ZooKeeper and the targets,
and leaves no process and no temp dir behind (a smoke test of the
benchmark, not a timing assertion)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests._benchmark_checks import REPO, assert_nothing_left_behind, run_with_a_missing_program

ZK_JAR = Path("/usr/share/java/zookeeper.jar")
SYSTEMS = {"zookeeper", "synod"}
OPS = ("create", "set", "get", "exists")

pytestmark = pytest.mark.skipif(shutil.which("java") is None or not ZK_JAR.exists(),
                                reason=f"Apache ZooKeeper is not installed (java and {ZK_JAR}: "
                                       "apt-get install zookeeper)")
QUICK = ("--quick", "--seconds", "0.5", "--warmup", "0.2")


@pytest.fixture(scope="module")
def run() -> tuple[list[str], dict[str, Any]]:
    """One short run of both systems: its stdout lines before the JSON, and the JSON."""
    script = REPO / "benchmarks" / "zk_throughput.py"
    proc = subprocess.run([sys.executable, str(script), *QUICK], capture_output=True, text=True, timeout=240, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    *text, last = proc.stdout.strip().splitlines()
    return text, json.loads(last)


def test_table_first_then_one_json_object(run: tuple[list[str], dict[str, Any]]) -> None:
    text, summary = run
    assert any("ops/s" in line for line in text), "the table"
    assert summary["benchmark"] == "zk_throughput"
    assert summary["quick"] is True
    assert summary["seconds"] == 0.5
    assert summary["processes"] == 4
    assert summary["data_bytes"] == 1024
    assert summary["skipped"] == {}
    assert summary["failed"] == {}
    assert set(summary["systems"]) == SYSTEMS


def test_every_operation_measured_without_errors(run: tuple[list[str], dict[str, Any]]) -> None:
    summary = run[1]
    assert summary["errors_total"] == 0
    for name, r in summary["systems"].items():
        assert r["znodes_created"] > 0, name
        for op in OPS:
            s = r[op]
            assert s["errors"] == 0, f"{name} {op}: {s.get('first_error')}"
            assert s["ops"] > 0, f"{name} {op}"
            assert s["ops_per_s"] > 0, f"{name} {op}"
            assert 0 < s["p50_ms"] <= s["p99_ms"] <= s["max_ms"], f"{name} {op}"


def test_ratios_and_targets(run: tuple[list[str], dict[str, Any]]) -> None:
    summary = run[1]
    for op in OPS:
        assert summary["ratios"][f"synod_over_zookeeper_{op}_ops"] > 0, op
        assert summary["ratios"][f"synod_over_zookeeper_{op}_p99"] > 0, op
        assert summary["anchors_zookeeper_ops_per_s"][op] > 0, op
    goals = summary["targets"]
    assert goals["ops"] == ["create", "set"]
    assert goals["synod_over_zookeeper_min"] == 1.0
    assert isinstance(goals["synod_at_least_zookeeper_create"], bool)
    assert isinstance(goals["synod_at_least_zookeeper_set"], bool)


def test_nothing_left_behind(run: tuple[list[str], dict[str, Any]]) -> None:
    assert_nothing_left_behind(run[1], run[1]["systems"], pids_min=3)


def test_a_missing_jar_is_skipped_with_its_reason(tmp_path: Path) -> None:
    missing = tmp_path / "no-zookeeper.jar"
    summary = run_with_a_missing_program("zk_throughput.py", (*QUICK, "--only", "zookeeper", "--zk-jar", str(missing)),
                                         "zookeeper", missing)
    assert summary["systems"] == {}
