"""``synod node run`` and ``synod cluster ...`` (DESIGN.md section 6)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from synod.cli.main import cli
from synod.runtime import LocalCluster, Status, StatusRequest, call, local_spec, write_config
from synod.runtime.auth import Credentials
from synod.runtime.testing import FACTORY, wait_until


def _status_of(addr: tuple[str, int], credentials: Credentials | None) -> Status | None:
    try:
        reply = call(addr, StatusRequest(), 0.5, credentials=credentials)
    except OSError:
        return None
    return reply if type(reply) is Status else None


def test_node_run_serves_until_sigterm_then_exits_0(tmp_path: Path) -> None:
    config, path = write_config(local_spec(1, FACTORY, tmp_path, params={"ping_interval_ms": 0}))
    credentials = Credentials.from_config(config)  # write_config made the run dir's cluster key
    assert credentials is not None
    assert (tmp_path / "cluster.key").stat().st_mode & 0o777 == 0o600
    proc = subprocess.Popen([sys.executable, "-m", "synod.cli.main", "node", "run", "--config", str(path),
                             "--id", "n1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        status = wait_until(lambda: _status_of(config.nodes["n1"].addr, credentials), 10, "the node to answer")
        assert status.pid == proc.pid
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.wait()
    assert b"stopping (signal SIGTERM)" in proc.stdout.read()


@pytest.mark.parametrize(("args", "needle"), [
    (["--id", "n9"], "'n9' is not in"),
    (["--id", "n1", "--config", "/nonexistent/cluster.json"], "does not exist"),
])
def test_node_run_rejects_bad_arguments_with_status_2(tmp_path: Path, args: list[str], needle: str) -> None:
    _, path = write_config(local_spec(1, FACTORY, tmp_path))
    full = ["node", "run", "--config", str(path), *args] if "--config" not in args else ["node", "run", *args]
    result = CliRunner().invoke(cli, full)
    assert result.exit_code == 2
    assert needle in result.output


def test_cluster_commands_drive_a_detached_cluster(tmp_path: Path) -> None:
    runner = CliRunner()
    run_dir = str(tmp_path / "run")
    where = ["--run-dir", run_dir]

    def ok(*args: str) -> str:
        result = runner.invoke(cli, ["cluster", *args, *where])
        assert result.exit_code == 0, result.output
        return result.output

    def status() -> dict:
        return json.loads(ok("status", "--json"))

    try:
        out = ok("up", "--nodes", "2", "--factory", FACTORY, "--params", '{"ping_interval_ms": 40}')
        assert "n1" in out and "n2" in out
        st = status()
        assert all(st[n]["alive"] and st[n]["answering"] for n in ("n1", "n2"))
        again = runner.invoke(cli, ["cluster", "up", "--config", f"{run_dir}/cluster-config.json"])
        assert again.exit_code == 1
        assert "already run" in again.output

        ok("pause", "n2")
        assert status()["n2"]["paused"]
        ok("resume", "n2")
        assert not status()["n2"]["paused"]

        ok("partition", "n1", "n2")
        assert status()["n1"]["faults"]["blocked_out"] == ["n2"]
        ok("drop", "0.5", "--node", "n1")
        ok("delay", "20")
        st = status()
        assert st["n1"]["faults"]["drop_probability"] == 0.5
        assert st["n2"]["faults"]["delay_ms"] == 20.0
        ok("heal")
        st = status()
        assert st["n1"]["faults"]["blocked_out"] == []
        assert st["n1"]["faults"]["drop_probability"] == 0.5
        ok("heal", "--all")
        assert all(not any(st_n["faults"].values()) for st_n in status().values())

        old_pid = status()["n2"]["pid"]
        ok("kill", "n2")
        assert not status()["n2"]["alive"]
        ok("restart", "n2")
        st = status()
        assert st["n2"]["alive"] and st["n2"]["answering"]
        assert st["n2"]["pid"] != old_pid

        bad = runner.invoke(cli, ["cluster", "kill", "n7", *where])
        assert bad.exit_code == 2
        assert "no node 'n7'" in bad.output
        ok("down")
        assert not any(st_n["alive"] for st_n in status().values())
    finally:
        LocalCluster.attach(run_dir).stop()


def test_node_run_refuses_a_non_loopback_address_without_allow_remote(tmp_path: Path) -> None:
    """Issue 8 part 3: listening beyond loopback is opt-in and needs the key;
    the refusal is one line and exit status 2."""
    path = tmp_path / "cluster.json"
    path.write_text(json.dumps({"run_dir": str(tmp_path), "seed": 0,
                                "nodes": {"n1": {"host": "0.0.0.0", "port": 7999, "factory": FACTORY}}}))
    result = CliRunner().invoke(cli, ["node", "run", "--config", str(path), "--id", "n1"])
    assert result.exit_code == 2
    assert "n1' listens on 0.0.0.0, which is not a loopback address" in result.output
    assert "--allow-remote" in result.output
    assert "Traceback" not in result.output


def test_a_cluster_listening_on_all_addresses_with_allow_remote_and_the_key(tmp_path: Path) -> None:
    config, path = write_config(local_spec(2, FACTORY, tmp_path, params={"ping_interval_ms": 40},
                                           host="0.0.0.0", allow_remote=True))
    assert config.allow_remote and config.key_file is not None
    with LocalCluster(path) as cl:
        cl.start()
        assert all(cl.addr(nid)[0] == "0.0.0.0" for nid in cl.node_ids)
        st = wait_until(lambda: (s := cl.call("n1", StatusRequest(), 3.0)) and s.peers_connected == ("n2",) and s,
                        10, "n1's link to n2")
        assert st.auth_failures == 0
        port = cl.addr("n1")[1]
        assert type(call(("127.0.0.1", port), StatusRequest(), 3.0, credentials=cl.credentials)) is Status


def test_cluster_up_listens_beyond_loopback_only_with_allow_remote(tmp_path: Path) -> None:
    """Issue 8 part 3: `synod cluster up --host 0.0.0.0` is refused in one line
    (exit 2, nothing written) unless --allow-remote; with it the nodes listen
    on all addresses and still require the run dir's key."""
    runner = CliRunner()
    run_dir = tmp_path / "run"
    base = ["cluster", "up", "--nodes", "2", "--factory", FACTORY, "--params", '{"ping_interval_ms": 40}',
            "--run-dir", str(run_dir), "--host", "0.0.0.0"]
    refused = runner.invoke(cli, base)
    assert refused.exit_code == 2
    assert "listens on 0.0.0.0, which is not a loopback address" in refused.output
    assert "--allow-remote" in refused.output
    assert not (run_dir / "cluster-config.json").exists()
    try:
        result = runner.invoke(cli, [*base, "--allow-remote"])
        assert result.exit_code == 0, result.output
        config = json.loads((run_dir / "cluster-config.json").read_text())
        assert config["allow_remote"] is True
        assert config["key_file"] == "cluster.key"
        assert {n["host"] for n in config["nodes"].values()} == {"0.0.0.0"}
        cl = LocalCluster.attach(run_dir)
        assert all(st.status is not None for st in cl.status().values())
        with pytest.raises(ConnectionError):  # reachable, but not without the key
            call(("127.0.0.1", config["nodes"]["n1"]["port"]), StatusRequest(), 3.0)
    finally:
        if (run_dir / "cluster-state.json").exists():
            LocalCluster.attach(run_dir).stop()
