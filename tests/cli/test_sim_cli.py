"""``synod sim raft``: the verdict lines, the exit status, the replay line,
and bad arguments (one message, exit 2)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from synod.cli.main import cli


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["sim", "raft", *args])
    return result.exit_code, result.output


def test_chaos_run_reports_safe() -> None:
    code, out = _run("--seed", "3", "--time", "3s")
    assert code == 0, out
    assert "safety: SAFE" in out and "seed 3" in out


def test_kv_run_writes_a_history_the_checker_reads(tmp_path: Path) -> None:
    hist = tmp_path / "h.jsonl"
    code, out = _run("--workload", "kv", "--seed", "2", "--time", "5s", "--history", str(hist))
    assert code == 0, out
    assert "linearizability (kv model): ok" in out, out
    checked = CliRunner().invoke(cli, ["check", "lin", str(hist), "--model", "kv"])
    assert checked.exit_code == 0 and "linearizable" in checked.output, checked.output


def test_kv_run_catches_unsafe_reads(tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    code, out = _run("--workload", "kv", "--seed", "1", "--time", "20s", "--unsafe", "unsafe_local_reads",
                     "--html", str(page))
    assert code == 1, out
    assert "linearizability (kv model): illegal" in out and "cannot place" in out, out
    assert "replay: synod sim raft --workload kv" in out and "--unsafe unsafe_local_reads" in out
    assert "not linearizable" in page.read_text()


def test_history_needs_the_kv_workload(tmp_path: Path) -> None:
    code, out = _run("--history", str(tmp_path / "h.jsonl"))
    assert code == 2 and "--history and --html go with --workload kv" in out, out


def test_unknown_nemesis() -> None:
    code, out = _run("--nemesis", "meteor", "--time", "1s")
    assert code == 2 and "meteor" in out, out
