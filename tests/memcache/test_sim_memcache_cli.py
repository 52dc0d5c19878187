"""``synod sim memcache`` (issue 11 section 5): the look-aside cache under
faults from the command line: one seed's verdicts and figures, a sweep, the
mechanisms turned off and caught with a replay command, the side-by-side
comparison, and bad arguments refused with a clear message."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from synod.cli.main import cli


def _run(*args: str):
    return CliRunner().invoke(cli, ["sim", "memcache", *args])


def test_one_seed_of_two_regions_reports_every_checker_and_the_figures() -> None:
    result = _run("--seed", "2", "--regions", "2", "--time", "4s")
    assert result.exit_code == 0, result.output
    for needle in ("stale-set (a): ok", "stale-fill (a'): ok", "herd (b): ok", "read-your-writes (c): ok",
                   "staleness (d): ok", "replication: ok", "database reads per hot-key invalidation",
                   "hit rate", "staleness window max", "faults injected:", "verdict: ok"):
        assert needle in result.output, needle


def test_remote_markers_off_is_caught_with_a_replay_command() -> None:
    result = _run("--seed", "1", "--regions", "2", "--time", "4s", "--no-remote-markers")
    assert result.exit_code == 1, result.output
    assert "read-your-writes (c): illegal" in result.output
    replay = result.output.strip().splitlines()[-1]
    assert replay == "replay: synod sim memcache --seed 1 --time 4s --regions 2 --nemesis kill,partition,loss " \
                     "--no-remote-markers"


def test_json_and_a_sweep() -> None:
    one = _run("--seed", "3", "--time", "3s", "--json")
    assert one.exit_code == 0, one.output
    summary = json.loads(one.output.strip().splitlines()[-1])
    assert summary["verdict"] == "ok"
    assert summary["hot_db_reads_per_invalidation"] < 1.5
    assert set(summary["verdicts"]) == {"stale-set", "stale-fill", "herd", "staleness", "invalidation"}
    sweep = _run("--seeds", "2", "--time", "3s", "--no-leases", "--json")
    assert sweep.exit_code == 1, sweep.output
    out = json.loads(sweep.output.strip().splitlines()[-1])
    assert out["failed"] == 2
    assert len(out["replays"]) == 2
    assert all("--no-leases" in r for r in out["replays"])


def test_compare_runs_each_mechanism_off_on_the_same_seeds() -> None:
    result = _run("--compare", "--seeds", "2", "--regions", "2", "--time", "3s", "--json")
    assert result.exit_code == 0, result.output
    rows = {r["config"]: r for r in json.loads(result.output.strip().splitlines()[-1])["configs"]}
    assert set(rows) == {"all on", "leases off", "remote markers off", "one crash, gutter on",
                         "one crash, gutter off"}
    assert rows["all on"]["failed"] == 0
    assert rows["all on"]["gutter_spike_ratio"] is None
    assert rows["one crash, gutter on"]["failed"] == 0
    assert rows["one crash, gutter off"]["failed"] == 0
    # 3.3: without the gutter the crashed server's reads land on the database.
    assert rows["one crash, gutter off"]["gutter_spike_ratio"] > rows["one crash, gutter on"]["gutter_spike_ratio"]
    assert rows["leases off"]["failing"]["herd"] == 2
    assert rows["leases off"]["hot_db_reads_per_invalidation"] > rows["all on"]["hot_db_reads_per_invalidation"]
    assert rows["remote markers off"]["failing"]["read-your-writes"] == 2
    assert rows["remote markers off"]["ryw_violations"] > 0
    assert rows["all on"]["ryw_violations"] == 0
    text = _run("--compare", "--seeds", "1", "--time", "2s")
    assert text.exit_code == 0, text.output
    assert "leases off" in text.output and "remote markers off" not in text.output
    assert "gutter: db spike" in text.output and "one crash, gutter off" in text.output


def test_routers_without_the_gutter_and_a_scripted_crash_print_the_spike() -> None:
    """Section 3.3 from the command line: --routers --no-gutter --crash-at-ms."""
    result = _run("--seed", "2", "--time", "4s", "--nemesis", "", "--routers", "--no-gutter", "--crash-at-ms", "3000")
    assert result.exit_code == 0, result.output
    assert "routers (gutter off)" in result.output
    assert "gutter: ok: gutter off: database reads" in result.output
    summary = json.loads(_run("--seed", "2", "--time", "4s", "--nemesis", "", "--routers", "--no-gutter",
                              "--crash-at-ms", "3000", "--json").output.strip().splitlines()[-1])
    assert summary["gutter_spike_ratio"] > 1.5  # measured x2.0; with the gutter on, x1.0


@pytest.mark.parametrize(("args", "message"), [
    (("--time", "soon"), "not a duration"),
    (("--time", "0s"), "must be positive"),
    (("--nemesis", "flood"), "unknown nemesis flood"),
    (("--nemesis", "pause"), "unknown nemesis pause"),
    (("--regions", "0"), "--regions"),
    (("--regions", "9"), "--regions"),
    (("--no-remote-markers",), "needs --regions 2"),
    (("--stale-values", "--no-leases"), "does not go with --no-leases"),
    (("--compare", "--no-leases"), "--compare turns each mechanism off"),
    (("--compare", "--routers"), "--compare turns each mechanism off"),
    (("--no-gutter",), "--no-gutter needs --routers"),
    (("--crash-at-ms", "9500"), "--crash-at-ms"),
    (("--seeds", "2", "--trace", "t.jsonl"), "one seed"),
    (("--seeds", "0"), "--seeds"),
])
def test_bad_arguments_exit_2_with_a_clear_message(args: tuple[str, ...], message: str) -> None:
    result = _run(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output
