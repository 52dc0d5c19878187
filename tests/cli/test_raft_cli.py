"""``synod raft`` on bad input: one clear line and a non-zero exit, and
nothing started. (The happy path, and a member that is not in the cluster
config, run in tests/raft/test_real_smoke.py.)"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from synod.cli.main import cli


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_no_cluster_in_run_dir(tmp_path: Path) -> None:
    code, out = _run("raft", "status", "--run-dir", str(tmp_path / "none"))
    assert code == 1 and "Error:" in out and str(tmp_path / "none") in out, out


def test_unknown_membership_op(tmp_path: Path) -> None:
    code, out = _run("raft", "member", "grow", "n4", "--run-dir", str(tmp_path))
    assert code == 2 and "'grow' is not one of" in out, out


def test_timeout_must_be_positive(tmp_path: Path) -> None:
    code, out = _run("raft", "put", "k", "v", "--timeout", "0", "--run-dir", str(tmp_path))
    assert code == 2 and "--timeout" in out, out
