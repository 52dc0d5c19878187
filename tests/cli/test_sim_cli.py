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
    assert "safety (Figure 3's five properties): SAFE" in out and "seed 3" in out
    assert "committed entries:" in out and "(log indexes agreed by a majority" in out
    assert "faults injected:" in out and "crashes" in out, out


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
    # The report points at history lines: the history it means was written.
    hist = Path("raft-kv-seed-1.history.jsonl")
    try:
        assert hist.exists() and "raft-kv-seed-1.history.jsonl" in out
        assert "--history raft-kv-seed-1.history.jsonl" in out  # the replay writes it again
    finally:
        hist.unlink(missing_ok=True)


def test_history_needs_the_kv_workload(tmp_path: Path) -> None:
    code, out = _run("--history", str(tmp_path / "h.jsonl"))
    assert code == 2 and "--history and --html go with --workload kv" in out, out


def test_unknown_nemesis() -> None:
    code, out = _run("--nemesis", "meteor", "--time", "1s")
    assert code == 2 and "meteor" in out, out


def test_seeds_sweep_prints_a_table_and_replays_each_failure() -> None:
    code, out = _run("--seeds", "3", "--time", "20s", "--unsafe", "unsafe_vote_without_log_check")
    assert "3 seeds run" in out, out
    assert code == 1, out
    failed = int(out.split("3 seeds run, ")[1].split(" failed")[0])
    assert failed >= 1
    assert out.count("replay: synod sim raft") == failed
    assert "--unsafe unsafe_vote_without_log_check" in out


def test_json_output_is_one_object(tmp_path: Path) -> None:
    import json

    code, out = _run("--seed", "2", "--time", "3s", "--json")
    assert code == 0, out
    obj = json.loads(out)
    assert obj["verdict"] == "SAFE" and obj["seed"] == 2 and obj["committed"] > 0
    assert obj["faults"].get("crash", 0) >= 1
    code, out = _run("--seeds", "2", "--time", "2s", "--json")
    obj = json.loads(out)
    assert obj["seeds"] == 2 and len(obj["runs"]) == 2 and obj["failed"] == 0


def test_help_names_the_nemesis_kinds_and_every_option_has_help() -> None:
    result = CliRunner().invoke(cli, ["sim", "raft", "--help"])
    for kind in ("partition", "kill", "pause", "skew", "loss", "corrupt"):
        assert kind in result.output
    from synod.cli.sim_cmd import raft_cmd

    assert all(p.help for p in raft_cmd.params if isinstance(p, __import__("click").Option)), \
        [p.name for p in raft_cmd.params if not p.help]


def test_trace_and_seeds_do_not_mix(tmp_path: Path) -> None:
    code, out = _run("--seeds", "2", "--trace", str(tmp_path / "t.jsonl"))
    assert code == 2 and "one seed" in out, out


def test_the_cli_knows_the_same_nemesis_kinds_as_the_simulation() -> None:
    # sim_cmd keeps its own copy so that loading the CLI imports no system.
    from synod.cli.sim_cmd import NEMESIS_KINDS as CLI_KINDS
    from synod.sim.nemesis import NEMESIS_KINDS

    assert CLI_KINDS == NEMESIS_KINDS
