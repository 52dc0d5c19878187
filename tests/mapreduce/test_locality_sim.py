"""Locality in the simulator (Dean & Ghemawat, OSDI 2004, 3.4; issue 13):
workers and input replicas on hosts, map tasks handed first to a worker on
a host holding their input; the job's output does not change."""

from __future__ import annotations

from tests.mapreduce._jobs import lines_of, reference, spec

from synod.harness.mapreduce import run_sim_job

WORDS = ["chunk", "lease", "master", "replica", "record", "append", "snapshot", "shadow"]


def _inputs(n: int) -> dict[str, bytes]:
    return {f"/in/doc{i:02d}.txt": " ".join(WORDS[(i + j) % len(WORDS)] for j in range(200 + i)).encode()
            for i in range(n)}


def test_map_tasks_go_to_a_worker_on_a_host_holding_their_input() -> None:
    inputs = _inputs(24)
    job = spec("synod.mapreduce.apps.wc", inputs, nreduce=3)
    placed = run_sim_job(job, inputs, seed=5, workers=4, hosts=8)
    assert placed.done
    assert lines_of(placed.outputs) == reference("synod.mapreduce.apps.wc", inputs)
    st = placed.status
    assert st.placeable_map_executions == st.map_executions == 24
    # each file on 3 of 8 hosts, 4 workers on 4 hosts: about 5/7 of the files have a replica on some
    # worker's host; placement finds most of those (a free worker takes a remote task when none is local)
    assert st.local_map_executions >= 12, st
    again = run_sim_job(job, inputs, seed=5, workers=4, hosts=8)
    assert again.status.local_map_executions == st.local_map_executions   # same seed, same run
    unplaced = run_sim_job(job, inputs, seed=5, workers=4)
    assert unplaced.status.placeable_map_executions == 0 and lines_of(unplaced.outputs) == lines_of(placed.outputs)


def test_the_cli_reports_the_local_fraction_and_refuses_hosts_without_sim(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from synod.cli.main import cli

    for i, text in enumerate(("chunk lease chunk", "master lease", "replica chunk")):
        (tmp_path / f"d{i}.txt").write_text(text)
    run = CliRunner().invoke(cli, ["mr", "run", "--sim", "--hosts", "4", "--app", "wc", "--workers", "2",
                                   "--reduces", "1", "--out", str(tmp_path / "out"), str(tmp_path)])
    assert run.exit_code == 0, run.output
    assert "map executions on a host holding their input (3.4):" in run.output
    real = CliRunner().invoke(cli, ["mr", "run", "--hosts", "4", "--app", "wc", "--out", str(tmp_path / "o2"),
                                    str(tmp_path)])
    assert real.exit_code == 2 and "--hosts need --sim" in real.output
