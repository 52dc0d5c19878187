"""``synod kv`` on real processes: up (detached), status, member add and
remove through Raft (thesis 4.1, 4.2.1), down; and the exit statuses of bad
arguments (2) and of a cluster that is not there (1). Every test kills what
its run dir started, even when it fails, and checks with psutil that
``down`` leaves nothing running."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from click.testing import CliRunner, Result

from synod.cli.kv_cmd import resp_call
from synod.cli.main import cli
from synod.kv.replies import BulkString, SimpleString

DEADLINE_S = 15.0


def synod(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def processes_of(run_dir: Path) -> list[psutil.Process]:
    """The live processes whose command line names a file under ``run_dir``."""
    mine = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if any(str(run_dir) in arg for arg in p.info["cmdline"] or ()) and p.status() != psutil.STATUS_ZOMBIE:
                mine.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return mine


@pytest.fixture
def run_dir(tmp_path: Path) -> Iterator[Path]:
    """A run dir whose processes are killed afterwards, whatever happened."""
    d = tmp_path / "kv"
    yield d
    for p in processes_of(d):
        p.kill()
    psutil.wait_procs(processes_of(d), timeout=5)


def wait_until(what: str, check: Callable[[], Any], deadline_s: float = DEADLINE_S) -> Any:
    deadline = time.monotonic() + deadline_s
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"not within {deadline_s} s: {what}"
        time.sleep(0.05)


def status_json(run_dir: Path) -> dict[str, Any]:
    result = synod("kv", "status", "--dir", str(run_dir), "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def voters_everywhere(run_dir: Path, voters: list[str]) -> dict[str, Any] | None:
    """``kv status --json`` if every node in it reports ``voters``, else None."""
    states = status_json(run_dir)
    return states if all(s.get("members") == voters for s in states.values()) else None


def served(port: int, *args: str) -> Any:
    """The reply to a command, sent again while the answer is TRYAGAIN (an
    election is under way: nothing was applied)."""
    def attempt() -> Any:
        reply = resp_call(port, *args, timeout_s=5)
        return None if getattr(reply, "text", "").startswith("TRYAGAIN") else reply
    return wait_until(f"{args} served on port {port}", attempt)


def resp_ports(output: str) -> list[int]:
    return [int(p) for p in re.findall(r"^  redis-cli -p (\d+)", output, re.M)]


def test_up_status_member_add_remove_down(run_dir: Path) -> None:
    up = synod("kv", "up", "--nodes", "3", "--dir", str(run_dir))
    assert up.exit_code == 0, up.output
    assert re.search(r"KV cluster of 3 nodes in .* started; leader n[123] \(term \d+\) served a write", up.stdout)
    ports = resp_ports(up.stdout)
    assert len(set(ports)) == 3, up.stdout
    assert len(processes_of(run_dir)) == 3
    # the private key of the readiness write is gone again
    assert resp_call(ports[0], "EXISTS", "__synod:kv-up:ready__").value == 0

    again = synod("kv", "up", "--nodes", "3", "--dir", str(run_dir))
    assert again.exit_code == 1
    assert "already runs" in again.stderr and "synod kv down" in again.stderr

    table = synod("kv", "status", "--dir", str(run_dir))
    assert table.exit_code == 0, table.output
    assert table.stdout.count("n1,n2,n3") == 3 and table.stdout.count("leader") >= 2  # header + the leader's row
    states = status_json(run_dir)
    assert set(states) == {"n1", "n2", "n3"}
    leaders = {s["leader"] for s in states.values()}
    assert len(leaders) == 1 and states[leaders.pop()]["role"] == "leader"
    assert all(s["members"] == ["n1", "n2", "n3"] and s["learners"] == [] for s in states.values())

    added = synod("kv", "member", "add", "n4", "--dir", str(run_dir))
    assert added.exit_code == 0, added.output
    assert "n4 added as a learner" in added.stdout and "n4 promoted to voter" in added.stdout
    # n4 started as a learner (thesis 4.2.1): outside the voters it was given, the current ones
    config = json.loads((run_dir / "cluster-config.json").read_text())
    assert config["nodes"]["n4"]["params"] == {"voters": ["n1", "n2", "n3"]}
    n4_port = int(re.search(r"redis-cli -p (\d+)", added.stdout).group(1))
    wait_until("every node reports n1..n4 as voters", lambda: voters_everywhere(run_dir, ["n1", "n2", "n3", "n4"]))
    assert served(n4_port, "SET", "from-n4", "x") == SimpleString(text="OK")
    assert served(ports[0], "GET", "from-n4") == BulkString(data=b"x")
    refused = synod("kv", "member", "add", "n4", "--dir", str(run_dir))
    assert refused.exit_code == 2 and "already runs" in refused.stderr
    bad_id = synod("kv", "member", "add", "../n5", "--dir", str(run_dir))
    assert bad_id.exit_code == 2 and "a node id is 1-64 of" in bad_id.stderr
    unknown = synod("kv", "member", "remove", "n9", "--dir", str(run_dir))
    assert unknown.exit_code == 2 and "no node 'n9'" in unknown.stderr

    n1_pid = states["n1"]["pid"]
    removed = synod("kv", "member", "remove", "n1", "--dir", str(run_dir))
    assert removed.exit_code == 0, removed.output
    assert "n1 removed from the members" in removed.stdout

    def n1_gone() -> bool:
        # stop_node returns once the process no longer runs the node (a
        # process in its last exit steps may not be a zombie yet).
        try:
            return psutil.Process(n1_pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    wait_until("n1's process gone", n1_gone)
    after = wait_until("n2..n4 report n2,n3,n4 as voters", lambda: voters_everywhere(run_dir, ["n2", "n3", "n4"]))
    assert set(after) == {"n2", "n3", "n4"}
    assert served(n4_port, "GET", "from-n4") == BulkString(data=b"x")
    readd = synod("kv", "member", "add", "n1", "--dir", str(run_dir))
    assert readd.exit_code == 2 and "was in this cluster before" in readd.stderr

    down = synod("kv", "down", "--dir", str(run_dir))
    assert down.exit_code == 0, down.output
    assert "stopped n2, n3, n4; nothing of the KV cluster" in down.stdout
    assert processes_of(run_dir) == []
    gone = synod("kv", "status", "--dir", str(run_dir))
    assert gone.exit_code == 1 and "no node of the KV cluster" in gone.stderr
    assert synod("kv", "down", "--dir", str(run_dir)).stdout.startswith("nothing was running")
    for command in (("member", "add", "n5"), ("member", "remove", "n2")):
        result = synod("kv", *command, "--dir", str(run_dir))
        assert result.exit_code == 1 and "no node of the KV cluster" in result.stderr, result.output


def _free_base(n: int) -> int:
    """A port B with B..B+n-1 free (probed by binding)."""
    for base in range(21000, 60000, 97):
        try:
            socks = []
            for port in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError("no free port range")


def test_base_port_and_up_again_keeps_the_data(run_dir: Path) -> None:
    base = _free_base(3)
    up = synod("kv", "up", "--nodes", "3", "--base-port", str(base), "--dir", str(run_dir))
    assert up.exit_code == 0, up.output
    assert resp_ports(up.stdout) == [base, base + 1, base + 2]
    assert served(base + 1, "SET", "kept", "yes") == SimpleString(text="OK")
    assert synod("kv", "down", "--dir", str(run_dir)).exit_code == 0
    assert processes_of(run_dir) == []

    other = synod("kv", "up", "--nodes", "5", "--dir", str(run_dir))
    assert other.exit_code == 1 and "holds a KV cluster of 3 nodes, not 5" in other.stderr
    back = synod("kv", "up", "--dir", str(run_dir))
    assert back.exit_code == 0, back.output
    assert "started again (its data kept)" in back.stdout
    assert served(base + 2, "GET", "kept") == BulkString(data=b"yes")
    assert synod("kv", "down", "--dir", str(run_dir)).exit_code == 0
    assert processes_of(run_dir) == []


def test_a_taken_base_port_is_refused_before_anything_starts(run_dir: Path) -> None:
    base = _free_base(3)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", base + 1))
        busy.listen()
        result = synod("kv", "up", "--nodes", "3", "--base-port", str(base), "--dir", str(run_dir))
    assert result.exit_code == 1, result.output
    assert f"port {base + 1} on 127.0.0.1 is not free" in result.stderr
    assert processes_of(run_dir) == []


@pytest.mark.parametrize("args, why", [
    (("kv", "up", "--nodes", "0"), "0 is not in the range"),
    (("kv", "up", "--base-port", "70000"), "70000 is not in the range"),
    (("kv", "up", "--nodes", "3", "--base-port", "65534"), "goes past port 65535"),
    (("kv", "member", "grow", "n4"), "No such command 'grow'"),
    (("kv", "member", "add"), "Missing argument 'NODE_ID'"),
    (("kv", "status", "--bogus"), "No such option '--bogus'"),
])
def test_bad_arguments_exit_2(run_dir: Path, args: tuple[str, ...], why: str) -> None:
    result = synod(*args, "--dir", str(run_dir)) if args[1] != "member" else synod(*args)
    assert result.exit_code == 2, result.output
    assert why in result.stderr
    assert processes_of(run_dir) == []


@pytest.mark.parametrize("command", [("status",), ("down",), ("member", "add", "n4"), ("member", "remove", "n1")])
def test_no_cluster_exits_1_with_a_message(run_dir: Path, command: tuple[str, ...]) -> None:
    result = synod("kv", *command, "--dir", str(run_dir))
    assert result.exit_code == 1, result.output
    assert f"no KV cluster in {run_dir}" in result.stderr and "synod kv up" in result.stderr
