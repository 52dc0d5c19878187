"""Debian's ``zkCli.sh`` (Apache ZooKeeper 3.8's ZooKeeperMain, a client
nobody here wrote) against a 3-server synod ensemble (issue 12 section 2):
one command per invocation, non-interactively, ``zkCli.sh -server
127.0.0.1:PORT <command>``: create, create -s, create -e, get, set,
get -s, ls, stat, delete, asserted on what it prints. Each invocation
starts a JVM (about a second), so the commands are few. Skips, saying
why, without zkCli.sh or java."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from synod.harness.zk_real import running_ensemble

ZKCLI = Path("/usr/share/zookeeper/bin/zkCli.sh")
IDS = ("zk1", "zk2", "zk3")
WAIT_S = 30.0
CLI_TIMEOUT_S = 60.0


def _missing() -> str | None:
    if not ZKCLI.exists():
        return f"{ZKCLI} is missing (Debian's zookeeper package)"
    if not shutil.which("java"):
        return "java is not on PATH (zkCli.sh needs it)"
    return None


@pytest.fixture
def ports(tmp_path: Path) -> Iterator[list[int]]:
    reason = _missing()
    if reason is not None:
        pytest.skip(reason)
    with running_ensemble(tmp_path / "run", len(IDS)) as (_, client_ports):
        yield client_ports


def _cli(port: int, *command: str, log_dir: Path, exit_code: int = 0) -> str:
    """What zkCli.sh prints for one command, stdout then stderr (its log
    goes to ``log_dir``); it must exit with ``exit_code`` (1: the command
    failed, as for a missing node)."""
    done = subprocess.run([str(ZKCLI), "-server", f"127.0.0.1:{port}", *command], capture_output=True, text=True,
                          timeout=CLI_TIMEOUT_S, check=False,
                          env={"PATH": "/usr/bin:/bin", "ZOO_LOG_DIR": str(log_dir), "HOME": str(log_dir)})
    assert done.returncode == exit_code, f"zkCli.sh {' '.join(command)}: exit {done.returncode}\n{done.stdout}{done.stderr}"
    return done.stdout + done.stderr   # ZooKeeperMain prints some results (Created ...) on stderr


def _stat(text: str) -> dict[str, str]:
    """``name = value`` lines (get -s, stat) as a dict."""
    return dict(re.findall(r"^(\w+) = (.*)$", text, re.M))


def test_zkcli_create_get_set_ls_stat_delete(ports: list[int], tmp_path: Path) -> None:
    p1, p2, p3 = ports   # each command through one of the servers
    logs = tmp_path / "zkcli"
    logs.mkdir()
    created = _cli(p2, "create", "/cli", "hello", log_dir=logs)
    assert "Created /cli" in created, created
    assert "hello" in _cli(p3, "get", "/cli", log_dir=logs).splitlines()
    _cli(p1, "set", "/cli", "world", log_dir=logs)
    got = _cli(p2, "get", "-s", "/cli", log_dir=logs)
    lines = got.splitlines()
    assert "world" in lines, got
    stat = _stat(got)
    assert (stat["dataVersion"], stat["dataLength"], stat["numChildren"], stat["ephemeralOwner"]) == \
        ("1", "5", "0", "0x0"), got
    assert re.search(r"Created /cli/seq-0000000000$", _cli(p3, "create", "-s", "/cli/seq-", "x",
                                                           log_dir=logs), re.M)
    assert "Created /cli/eph" in _cli(p1, "create", "-e", "/cli/eph", "y", log_dir=logs)
    listed = _cli(p2, "ls", "/cli", log_dir=logs)
    assert re.search(r"^\[(eph, seq-0000000000|seq-0000000000, eph)\]$", listed, re.M), listed
    parent = _stat(_cli(p3, "stat", "/cli", log_dir=logs))
    assert parent["numChildren"] in ("1", "2"), parent   # the ephemeral may have gone with zkCli's session
    _cli(p1, "delete", "/cli/seq-0000000000", log_dir=logs)

    kazoo = KazooClient(hosts=",".join(f"127.0.0.1:{p}" for p in ports), timeout=10)
    kazoo.start(timeout=WAIT_S)
    try:
        eph = kazoo.exists("/cli/eph")
        assert eph is None or eph.ephemeralOwner != 0   # zkCli.sh's session owned it
        kazoo.sync("/cli")
        assert kazoo.get("/cli")[0] == b"world"
        assert "seq-0000000000" not in kazoo.get_children("/cli")
    finally:
        kazoo.stop()
        kazoo.close()
    refused = _cli(p2, "delete", "/nothing", log_dir=logs, exit_code=1)
    assert "Node does not exist: /nothing" in refused, refused
