"""``synod zk up / status / down`` (issue 12 section 4): a 3-server
ensemble started detached on free ports and on consecutive ports from
--base-port; ``status`` shows one leader and two followers with their
epoch, last zxid, sessions and znodes; kazoo works against the ports ``up``
prints; a stopped ensemble starts again with its znodes; bad arguments
exit 2 with a message; a taken port and a running ensemble are refused;
``down`` leaves no process (checked with psutil). Every test kills what its
run dir started, whatever happened."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from kazoo.client import KazooClient
from tests.kv.test_kv_cli import _free_base, processes_of, synod


@pytest.fixture
def zk_dir(tmp_path: Path) -> Iterator[Path]:
    """A run dir whose processes are killed afterwards, whatever happened."""
    d = tmp_path / "zk"
    yield d
    left = processes_of(d)
    for p in left:
        p.kill()
    psutil.wait_procs(left, timeout=5)


def _servers(output: str) -> dict[str, tuple[int, str]]:
    """server -> (client port, role) from the table `up` prints."""
    rows = re.findall(r"^│ (zk\d) +│ +(\d+) │ +\d+ │ +\d+ │ (\w+) +│", output, re.M)
    return {nid: (int(port), role) for nid, port, role in rows}


def _hosts(output: str) -> str:
    found = re.search(r"KazooClient\(hosts='([\d.:,]+)'\)", output)
    assert found is not None, output
    return found.group(1)


def _kazoo(hosts: str) -> KazooClient:
    zk = KazooClient(hosts=hosts, timeout=10)
    zk.start(timeout=20)
    return zk


def test_up_status_kazoo_and_down_on_free_ports(zk_dir: Path) -> None:
    up = synod("zk", "up", "--nodes", "3", "--dir", str(zk_dir))
    assert up.exit_code == 0, up.output
    assert re.search(r"ZooKeeper ensemble of 3 servers in \S+ started; zk\d leads epoch \d+, established after", up.output)
    servers = _servers(up.output)
    assert sorted(servers) == ["zk1", "zk2", "zk3"], up.output
    assert sorted(role for _, role in servers.values()) == ["follower", "follower", "leader"]
    hosts = _hosts(up.output)
    assert hosts == ",".join(f"127.0.0.1:{port}" for port, _ in servers.values())
    assert f"zkCli.sh -server {hosts}" in up.output
    assert len(processes_of(zk_dir)) == 3

    before = json.loads(synod("zk", "status", "--dir", str(zk_dir), "--json").output)
    assert {row["sessions"] for row in before.values()} == {0}
    zk = _kazoo(hosts)
    try:
        zk.create("/app", b"v1")
        zk.create("/app/owner", b"", ephemeral=True)
        assert zk.get("/app")[0] == b"v1"
        states = json.loads(synod("zk", "status", "--dir", str(zk_dir), "--json").output)
        assert sorted(row["role"] for row in states.values()) == ["follower", "follower", "leader"]
        leader = next(nid for nid, row in states.items() if row["role"] == "leader")
        assert {row["leader"] for row in states.values()} == {leader}
        assert len({row["epoch"] for row in states.values()}) == 1
        assert sum(row["sessions"] for row in states.values()) == 1  # kazoo's, on one of them
        # /app and /app/owner on the server that answered kazoo's creates (the others apply them soon after)
        assert max(row["znodes"] for row in states.values()) == before[leader]["znodes"] + 2
        assert int(states[leader]["last_zxid"], 16) > 0

        table = synod("zk", "status", "--dir", str(zk_dir))
        assert table.exit_code == 0, table.output
        for col in ("role", "epoch", "last zxid", "sessions", "znodes"):
            assert col in table.output
        assert table.output.count("│ leader ") == 1 and table.output.count("│ follower ") == 2, table.output
    finally:
        zk.stop()
        zk.close()

    down = synod("zk", "down", "--dir", str(zk_dir))
    assert down.exit_code == 0, down.output
    assert "stopped zk1, zk2, zk3; nothing of the ensemble" in down.output
    assert processes_of(zk_dir) == []
    again = synod("zk", "down", "--dir", str(zk_dir))
    assert again.exit_code == 0 and "nothing was running" in again.output


def test_base_port_refusals_and_a_restart_that_keeps_the_znodes(zk_dir: Path) -> None:
    base = _free_base(3)
    up = synod("zk", "up", "--base-port", str(base), "--dir", str(zk_dir))
    assert up.exit_code == 0, up.output
    assert {nid: port for nid, (port, _) in _servers(up.output).items()} == {
        "zk1": base, "zk2": base + 1, "zk3": base + 2}
    twice = synod("zk", "up", "--dir", str(zk_dir))
    assert twice.exit_code == 1 and "already runs" in twice.output, twice.output
    zk = _kazoo(_hosts(up.output))
    try:
        zk.create("/kept", b"across a restart")
    finally:
        zk.stop()
        zk.close()
    assert synod("zk", "down", "--dir", str(zk_dir)).exit_code == 0
    other = synod("zk", "up", "--nodes", "5", "--dir", str(zk_dir))
    assert other.exit_code == 1 and "holds an ensemble of 3 servers, not 5" in other.output, other.output
    assert processes_of(zk_dir) == []

    restarted = synod("zk", "up", "--dir", str(zk_dir))
    assert restarted.exit_code == 0, restarted.output
    assert "started again" in restarted.output
    zk = _kazoo(_hosts(restarted.output))
    try:
        assert zk.get("/kept")[0] == b"across a restart"
    finally:
        zk.stop()
        zk.close()
    assert synod("zk", "down", "--dir", str(zk_dir)).exit_code == 0
    assert processes_of(zk_dir) == []


def test_a_taken_port_is_refused_and_nothing_starts(zk_dir: Path) -> None:
    base = _free_base(3)
    with socket.socket() as s:
        s.bind(("127.0.0.1", base + 1))
        s.listen()
        up = synod("zk", "up", "--base-port", str(base), "--dir", str(zk_dir))
    assert up.exit_code == 1, up.output
    assert f"port {base + 1} on 127.0.0.1 is not free" in up.output
    assert processes_of(zk_dir) == []


@pytest.mark.parametrize(("args", "message"), [
    (("--nodes", "0"), "Invalid value for '--nodes': 0 is not in the range 1<=x<=9"),
    (("--nodes", "10"), "Invalid value for '--nodes': 10 is not in the range 1<=x<=9"),
    (("--nodes", "three"), "Invalid value for '--nodes': 'three' is not a valid integer"),
    (("--base-port", "0"), "Invalid value for '--base-port': 0 is not in the range 1<=x<=65535"),
    (("--base-port", "65534"), "--base-port 65534 with 3 servers goes past port 65535"),
    (("--timeout", "0"), "Invalid value for '--timeout'"),
    (("--bogus",), "No such option '--bogus'"),
])
def test_bad_arguments_exit_2_with_what_was_wrong(zk_dir: Path, args: tuple[str, ...], message: str) -> None:
    result = synod("zk", "up", "--dir", str(zk_dir), *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert processes_of(zk_dir) == []


def test_status_and_down_without_an_ensemble_say_so(zk_dir: Path) -> None:
    for command in ("status", "down"):
        result = synod("zk", command, "--dir", str(zk_dir))
        assert result.exit_code == 1
        assert f"no ZooKeeper ensemble in {zk_dir}" in result.output
        assert f"synod zk up --dir {zk_dir}" in result.output


def test_the_cli_limit_is_the_harness_limit() -> None:
    """zk_cmd keeps its own copy (so `synod zk --help` imports no runtime): the same number."""
    from synod.cli import zk_cmd
    from synod.harness import zk_real

    assert zk_cmd.NODES_MAX == zk_real.NODES_MAX
