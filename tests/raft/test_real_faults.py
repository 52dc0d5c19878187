"""Issue 8, part 7: the real-process fault suite, bounded for CI. One client
session appends to a 3-node Raft cluster of real processes while it is hit
by kill -9 of the leader, SIGSTOP, isolation, all nodes killed at once, a
corrupt WAL with another node down, forged and garbage peer input and a
connection flood; every acknowledged append must be in the final value
exactly once and in order, and memory stays bounded."""

from __future__ import annotations

import json
from pathlib import Path

from synod.harness.raft_faults import FAULT_KINDS, run_raft_faults
from synod.kv.simple import FACTORY
from synod.runtime import LocalCluster, local_spec, write_config

DURATION_S = 20.0


def test_acknowledged_appends_survive_every_fault_exactly_once(tmp_path: Path) -> None:
    _, path = write_config(local_spec(3, FACTORY, tmp_path / "run"))
    with LocalCluster(path) as cl:
        cl.start()
        report = run_raft_faults(cl, duration_s=DURATION_S, seed=1)
    summary = report.summary()
    print(json.dumps(summary))
    assert set(report.faults) == set(FAULT_KINDS), summary
    assert report.acked >= 200, summary
    assert not report.lost, summary
    assert not report.duplicated, summary
    assert not report.out_of_order, summary
    assert not report.problems, summary
    assert report.final_tokens >= report.acked
