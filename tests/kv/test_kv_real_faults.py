"""synod.kv as real processes under the simulator's nemesis (issue 10
part 3): redis-py clients through the RESP ports while servers are killed
(-9), paused (SIGSTOP) and partitioned and their links lose messages; the
history must be linearizable, and after every server restarts every
acknowledged append must be there exactly once. ``SYNOD_KV_REAL_S`` sets
the seconds of faults (default 12)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from synod.harness.kv_real import run_kv_real

FAULT_S = float(os.environ.get("SYNOD_KV_REAL_S", "12"))


@pytest.mark.parametrize("nodes", [3, 5])
def test_faults_lose_and_duplicate_nothing_acknowledged(tmp_path: Path, nodes: int) -> None:
    r = run_kv_real(nodes, tmp_path / "run", nodes=nodes, safety_s=FAULT_S, liveness_s=20.0)
    data = r.scenario.data
    counts = data["history"].counts()
    detail = (f"{nodes} nodes: verdicts {[(v.checker, v.status, v.summary) for v in r.verdicts]}; ops {counts}; "
              f"faults {r.faults}; lost {data.get('lost', [])[:5]}; duplicated {data.get('duplicated', [])[:5]}")
    assert [v.checker for v in r.verdicts] == ["liveness", "linearizability", "durability"], detail
    assert r.verdict == "ok", detail
    assert counts["ok"] > 200 and len(data["acked"]) > 100, detail  # the clients really worked
    assert r.faults.get("crash", 0) + r.faults.get("pause", 0) + r.faults.get("partition", 0) >= 2, detail
    assert data["lost"] == [] and data["duplicated"] == [], detail
