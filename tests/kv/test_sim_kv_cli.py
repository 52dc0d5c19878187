"""``synod sim kv`` (issue 10 part 4): a seeded KV run under the nemesis,
its history readable by ``synod check lin``, a sweep, and the unsafe read
mode caught with a replay command that keeps the files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from synod.cli.main import cli


def _run(*args: str):
    return CliRunner().invoke(cli, ["sim", "kv", *args])


def test_one_seed_reports_each_verdict_and_writes_a_checkable_history(tmp_path: Path) -> None:
    hist = tmp_path / "h.jsonl"
    result = _run("--seed", "2", "--time", "8s", "--history", str(hist))
    assert result.exit_code == 0, result.output
    for needle in ("liveness: ok", "raft-safety: ok", "linearizability: ok", "faults injected:"):
        assert needle in result.output
    checked = CliRunner().invoke(cli, ["check", "lin", str(hist), "--model", "kv"])
    assert checked.exit_code == 0, checked.output


def test_json_and_a_sweep(tmp_path: Path) -> None:
    one = _run("--seed", "3", "--time", "5s", "--json")
    assert one.exit_code == 0, one.output
    summary = json.loads(one.output.strip().splitlines()[-1])
    assert summary["verdict"] == "ok" and summary["operations"] > 0
    assert set(summary["verdicts"]) == {"liveness", "raft-safety", "linearizability"}
    sweep = _run("--seeds", "3", "--time", "4s", "--json")
    assert sweep.exit_code == 0, sweep.output
    assert json.loads(sweep.output.strip().splitlines()[-1])["failed"] == 0


def test_unsafe_local_reads_fail_with_a_replay_that_keeps_the_history(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = _run("--seed", "1", "--time", "10s", "--reads", "unsafe-local")
    assert result.exit_code == 1, result.output
    assert "linearizability: illegal" in result.output
    replay = result.output.strip().splitlines()[-1]
    assert replay.startswith("replay: synod sim kv ") and "--reads unsafe-local" in replay
    assert "--history kv-seed-1.history.jsonl" in replay
    assert (tmp_path / "kv-seed-1.history.jsonl").exists() and (tmp_path / "kv-seed-1.lin.html").exists()


def test_bad_arguments_exit_2() -> None:
    assert _run("--nemesis", "flood").exit_code == 2
    assert _run("--time", "soon").exit_code == 2
    assert _run("--seeds", "2", "--trace", "t.jsonl").exit_code == 2
