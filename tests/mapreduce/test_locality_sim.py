"""MapReduce over a simulated GFS cell (Dean & Ghemawat, OSDI 2004, 3.1 and
3.4; issue 13): inputs read from chunkservers and outputs committed by
GFS's rename, all by messages in one simulation; map tasks handed first to
a worker beside a replica of their input; the job's output does not
change, under worker and chunkserver crashes too."""

from __future__ import annotations

from tests.mapreduce._jobs import lines_of, reference, spec

from synod.harness.gfs import GfsCell
from synod.harness.mapreduce import run_sim_job, worker_nemesis

WORDS = ["chunk", "lease", "master", "replica", "record", "append", "snapshot", "shadow"]


def _inputs(n: int) -> dict[str, bytes]:
    return {f"/in/doc{i:02d}.txt": " ".join(WORDS[(i + j) % len(WORDS)] for j in range(200 + i)).encode()
            for i in range(n)}


def test_map_tasks_go_to_a_worker_on_a_host_holding_their_input() -> None:
    inputs = _inputs(24)
    job = spec("synod.mapreduce.apps.wc", inputs, nreduce=3)
    cell = GfsCell(chunkservers=8)
    placed = run_sim_job(job, inputs, seed=5, workers=4, gfs=cell)
    assert placed.done
    assert lines_of(placed.outputs) == reference("synod.mapreduce.apps.wc", inputs)
    st = placed.status
    assert st.placeable_map_executions == st.map_executions == 24
    # each file on 3 of 8 chunkservers, 4 workers beside 4 of them: about 13/14 of the files have a
    # replica beside some worker; placement finds most of those (a free worker takes a remote task
    # when none is local), where an unplaced task would find one 3 times in 8
    assert st.local_map_executions >= 16, st
    again = run_sim_job(job, inputs, seed=5, workers=4, gfs=cell)
    assert again.status.local_map_executions == st.local_map_executions   # same seed, same run
    unplaced = run_sim_job(job, inputs, seed=5, workers=4)
    assert unplaced.status.placeable_map_executions == 0 and lines_of(unplaced.outputs) == lines_of(placed.outputs)


def test_a_job_over_gfs_survives_worker_and_chunkserver_crashes() -> None:
    """Workers and chunkservers killed and restarted during the job (the
    loader and the master are spared): every seed commits the sequential
    run's output, read back from the cell's replicas; worker crashes
    re-execute map tasks, as over the simulator's own file system."""
    import dataclasses

    inputs = _inputs(12)
    job = spec("synod.mapreduce.apps.wc", inputs, nreduce=3)
    cell = GfsCell(chunkservers=5)
    targets = ("worker-1", "worker-2", "worker-3") + cell.chunkserver_ids
    crashed = 0
    for seed in range(1, 7):
        nemesis = dataclasses.replace(worker_nemesis(0.4), targets=targets)
        run = run_sim_job(job, inputs, seed=seed, workers=3, gfs=cell, nemesis=nemesis, time_limit_ms=300_000)
        assert run.done and run.outcome.succeeded, (seed, [v.summary for v in run.verdicts])
        assert lines_of(run.outputs) == reference("synod.mapreduce.apps.wc", inputs), seed
        crashed += run.crashes
    assert crashed > 0   # the nemesis did hit workers


def test_the_cli_runs_over_a_cell_reports_the_local_fraction_and_refuses_bad_hosts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from synod.cli.main import cli

    for i, text in enumerate(("chunk lease chunk", "master lease", "replica chunk")):
        (tmp_path / f"d{i}.txt").write_text(text)
    run = CliRunner().invoke(cli, ["mr", "run", "--sim", "--hosts", "4", "--app", "wc", "--workers", "2",
                                   "--reduces", "1", "--out", str(tmp_path / "out"), str(tmp_path)])
    assert run.exit_code == 0, run.output
    assert "map executions on a host holding their input (3.4):" in run.output
    assert "a simulated GFS cell of 4 chunkservers" in run.output
    assert (tmp_path / "out" / "_SUCCESS").is_file()
    counts = dict(line.split() for p in sorted((tmp_path / "out").glob("mr-out-*")) for line in p.read_text().splitlines())
    assert counts == {"chunk": "3", "lease": "2", "master": "1", "replica": "1"}
    real = CliRunner().invoke(cli, ["mr", "run", "--hosts", "4", "--app", "wc", "--out", str(tmp_path / "o2"),
                                    str(tmp_path)])
    assert real.exit_code == 2 and "--hosts need --sim" in real.output
    two = CliRunner().invoke(cli, ["mr", "run", "--sim", "--hosts", "2", "--app", "wc", "--out", str(tmp_path / "o3"),
                                   str(tmp_path)])
    assert two.exit_code == 2 and "--hosts must be 0 or within 3..100" in two.output
    ranged = CliRunner().invoke(cli, ["mr", "run", "--sim", "--hosts", "3", "--app", "sort", "--out",
                                      str(tmp_path / "o4"), str(tmp_path)])
    assert ranged.exit_code == 2 and "plans its partitions" in ranged.output


def test_the_cli_kills_chunkservers_too_with_hosts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``--kill-workers P`` with ``--hosts``: workers and chunkservers are
    killed (the trace shows both), and the job still commits the sequential
    run's output."""
    import json

    from click.testing import CliRunner

    from synod.cli.main import cli

    inputs = _inputs(12)
    (tmp_path / "in").mkdir()
    for path, data in inputs.items():
        (tmp_path / "in" / path.rsplit("/", 1)[1]).write_bytes(data)
    trace = tmp_path / "run.jsonl"
    run = CliRunner().invoke(cli, ["mr", "run", "--sim", "--seed", "5", "--hosts", "5", "--kill-workers", "0.5",
                                   "--sim-compute-ms-per-mb", "200000", "--trace", str(trace), "--app", "wc",
                                   "--workers", "3", "--reduces", "2", "--out", str(tmp_path / "out"),
                                   str(tmp_path / "in")])
    assert run.exit_code == 0, run.output
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    crashed = {e["node"] for e in events if e.get("kind") == "crash"}
    assert any(n.startswith("worker-") for n in crashed) and any(n.startswith("cs") for n in crashed), crashed
    got = sorted(line for p in (tmp_path / "out").glob("mr-out-*") for line in p.read_text().splitlines())
    assert got == reference("synod.mapreduce.apps.wc", inputs)   # (wc's keys are words: the paths do not matter)
