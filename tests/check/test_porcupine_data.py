"""Validation on histories nobody here wrote: Porcupine's kv histories and
the 103 Jepsen etcd logs, every verdict as Porcupine's own tests assert it
(../shared/data/porcupine/jepsen/EXPECTED.md says how they read the lines)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import REPO, shared_data_dir

from synod.check import KV, CasRegister, check_operations, operations, read_history

KV_FILES = ("c01-ok", "c01-bad", "c10-ok", "c10-bad", "c50-ok", "c50-bad")
ETCD = [f"etcd_{i:03d}" for i in range(103)]
TIMEOUT_S = 120.0


@pytest.fixture(scope="module")
def porcupine() -> Path:
    d = shared_data_dir() / "porcupine"
    if not (d / "kv").is_dir() or not (d / "jepsen" / "EXPECTED.txt").is_file():
        pytest.skip(f"Porcupine's test histories not found in {d} (set SYNOD_SHARED_DATA)")
    return d


@pytest.fixture(scope="module")
def expected(porcupine: Path) -> dict[str, str]:
    out = {}
    for line in (porcupine / "jepsen" / "EXPECTED.txt").read_text().splitlines():
        if line.strip():
            name, verdict = line.split()
            out[name.removesuffix(".log")] = {"linearizable": "ok", "illegal": "illegal"}[verdict]
    assert len(out) == 102, "EXPECTED.txt lists 102 tested logs (095 is not tested)"
    return out


@pytest.mark.parametrize("name", KV_FILES)
def test_kv_history(porcupine: Path, name: str) -> None:
    """Porcupine TestKv{1,10,50}Client{Ok,Bad}: kv model, partitioned by key."""
    ops = operations(read_history(porcupine / "kv" / f"{name}.txt", "edn"))
    result = check_operations(KV(), ops, timeout_s=TIMEOUT_S)
    assert result.verdict == ("ok" if name.endswith("-ok") else "illegal")
    assert result.partitions == len({op.key for op in ops})
    if result.verdict == "illegal":
        cex = result.counterexample
        assert cex is not None
        assert cex.stuck.f == "get", "in these files it is always a get that sees a wrong value"


@pytest.mark.parametrize("reading", ["porcupine", "jepsen"])
@pytest.mark.parametrize("name", ETCD)
def test_etcd_log(porcupine: Path, expected: dict[str, str], name: str, reading: str) -> None:
    """Porcupine TestEtcdJepsenNNN: one cas register. ``porcupine``: a failed
    cas found another value (the reading EXPECTED.md describes);
    ``jepsen``: a failed cas did not happen. Both give Porcupine's verdict
    on every log."""
    ops = operations(read_history(porcupine / "jepsen" / f"{name}.log", "auto"))
    model = CasRegister(fail_means_mismatch=reading == "porcupine")
    result = check_operations(model, ops, timeout_s=TIMEOUT_S)
    if name == "etcd_095":
        assert ops == [], "etcd_095.log is empty (the etcd cluster failed to start)"
        assert result.verdict == "ok"
        return
    assert result.verdict == expected[name]


def test_etcd_logs_without_the_reductions(porcupine: Path, expected: dict[str, str]) -> None:
    """The plain search (every unknown-outcome operation a free candidate,
    as in Porcupine) gives the same verdicts: the reductions only prune."""
    for name in ETCD:
        if name == "etcd_095":
            continue
        ops = operations(read_history(porcupine / "jepsen" / f"{name}.log"))
        result = check_operations(CasRegister(fail_means_mismatch=True), ops, timeout_s=TIMEOUT_S,
                                  reductions=False)
        assert result.verdict == expected[name], name


def test_benchmark_checker_gets_every_verdict(porcupine: Path) -> None:
    """benchmarks/check_lin.py over all 109 histories, one repeat and a
    generous per-history limit: every verdict matches (timings not asserted)."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "check_lin.py"), "--repeats", "1", "--no-memory",
         "--timeout", str(TIMEOUT_S), "--data", str(porcupine)],
        capture_output=True, text=True, timeout=900, cwd=REPO)
    assert proc.returncode == 0, proc.stderr + proc.stdout[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert any("Porcupine" in line for line in lines[:-1]), "the table comes first"
    summary = json.loads(lines[-1])
    assert summary["benchmark"] == "check_lin"
    assert summary["all_match"] is True
    results = summary["results"]
    assert len(results) == 109
    for name, row in results.items():
        assert row["match"], (name, row)
        if row["expected"] is not None:
            assert row["verdict"] == row["expected"], name
    assert sum(r["verdict"] == "ok" for n, r in results.items() if n != "etcd_095" and n.startswith("etcd")) == 23
    assert sum(r["verdict"] == "illegal" for n, r in results.items() if n.startswith("etcd")) == 79
    assert isinstance(summary["targets_met"], bool)
