"""``synod memcache serve``: one cache server in the foreground, as
``memcached -p P -m M``: pymemcache talks to it, its memory limit shows in
stats, SIGINT stops it with status 0, a taken port exits with status 2.
``synod memcache up / status / down``: the tier of one region (issue 11
section 5), detached; every test kills what its run dir started, and checks
with psutil that ``down`` leaves nothing running."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner, Result
from pymemcache.client.base import Client
from tests.kv.test_kv_cli import _free_base, processes_of
from tests.kv.test_real_clients import wait_until

from synod.cli.main import cli


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(port: int, run_dir: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "synod.cli.main", "memcache", "serve", "--port", str(port),
                             "--dir", str(run_dir), *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _client(port: int) -> Client | None:
    c = Client(("127.0.0.1", port), timeout=5, connect_timeout=1)
    try:
        c.version()
        return c
    except OSError:
        c.close()
        return None


def test_serve_answers_pymemcache_and_stops_on_sigint(tmp_path: Path) -> None:
    port = _free_port()
    proc = _serve(port, tmp_path / "run", "--memory-limit-mb", "16")
    try:
        c = wait_until("the server answers", lambda: proc.poll() is None and _client(port))
        assert c.set("k", b"v", noreply=False) is True
        assert c.get("k") == b"v"
        assert c.stats()[b"limit_maxbytes"] == 16 * 1024 * 1024
        c.close()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err
        assert f"127.0.0.1:{port}" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_on_a_taken_port_exits_2(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = _serve(port, tmp_path / "run")
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2, err


# -- synod memcache up / status / down: the tier of one region (issue 11 section 5) --------------

def synod(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def tier_dir(tmp_path: Path) -> Iterator[Path]:
    """A run dir whose processes are killed afterwards, whatever happened."""
    d = tmp_path / "tier"
    yield d
    for p in processes_of(d):
        p.kill()
    psutil.wait_procs(processes_of(d), timeout=5)


def _map(output: str) -> dict[str, tuple[str, int]]:
    """node id -> (role, port) from the table `up` prints."""
    rows = re.findall(r"^│ (\w+(?: f\d)?) +│ ([\w-]+) +│ +(\d+) │", output, re.M)
    return {nid: (role, int(port)) for role, nid, port in rows}


def test_up_prints_the_map_serves_pymemcache_status_and_down(tier_dir: Path) -> None:
    """`up` starts 2 clusters x 3 servers, a regional pool of 2, a gutter of
    1, 2 routers, the database and mcsqueal (13 processes) on consecutive
    ports from --base-port; each router serves pymemcache; an `r:` key is
    cached once for the region (set through f1's router, read through
    f2's); `status` shows items and hit rate per server and pools per
    router, and a killed server as down; `down` leaves no process; `up` again starts the same tier."""
    base = _free_base(12)
    up = synod("memcache", "up", "--base-port", str(base), "--dir", str(tier_dir))
    assert up.exit_code == 0, up.output
    assert "memcache tier of 2 frontend clusters" in up.stdout and "every router answered" in up.stdout
    mapped = _map(up.stdout)
    caches = ["f1-mc1", "f1-mc2", "f1-mc3", "f2-mc1", "f2-mc2", "f2-mc3", "region-mc1", "region-mc2", "gutter-mc1"]
    assert [mapped[n][1] for n in [*caches, "f1-router", "f2-router", "db"]] == list(range(base, base + 12)), mapped
    assert mapped["f1-router"][0] == "router f1" and mapped["gutter-mc1"][0] == "gutter"
    assert f"Client(('127.0.0.1', {base + 9}))" in up.stdout and f"telnet 127.0.0.1 {base}" in up.stdout
    assert len(processes_of(tier_dir)) == 13

    f1, f2 = (Client(("127.0.0.1", base + i), timeout=5) for i in (9, 10))
    assert f1.set("user:1", b"one", noreply=False) is True
    assert f1.get("user:1") == b"one" and f2.get("user:1") is None  # each cluster has its own cache
    assert f2.set("user:1", b"two", noreply=False) is True
    assert f1.set("r:shared", b"regional", noreply=False) is True
    assert f2.get("r:shared") == b"regional"  # the regional pool is shared
    assert f2.delete("user:1", noreply=False) is True and f2.get("user:1") is None
    f1.close()
    f2.close()

    again = synod("memcache", "up", "--dir", str(tier_dir))
    assert again.exit_code == 1 and "already runs" in again.stderr

    states = json.loads(synod("memcache", "status", "--dir", str(tier_dir), "--json").stdout)
    assert set(states) == {*caches, "f1-router", "f2-router", "db", "mcsqueal"}
    assert all(s["state"] == "up" for s in states.values()), states
    assert sum(states[n]["items"] for n in caches) == 2  # user:1 on f1, r:shared once
    assert sum(states[n]["items"] for n in ("region-mc1", "region-mc2")) == 1
    assert states["f1-router"]["pools"].startswith("f1 (default): f1-mc1,f1-mc2,f1-mc3; regional (keys r:*)")
    assert states["f2-router"]["requests"] == 5 and states["f2-router"]["gutter_requests"] == 0
    assert any(states[n]["hit_rate"] == 1.0 for n in ("region-mc1", "region-mc2"))
    table = synod("memcache", "status", "--dir", str(tier_dir))
    assert table.exit_code == 0 and "hit rate" in table.stdout and "gutter-mc1" in table.stdout, table.output

    victim = psutil.Process(states["f1-mc3"]["pid"])
    victim.kill()
    victim.wait(timeout=5)
    after = json.loads(synod("memcache", "status", "--dir", str(tier_dir), "--json").stdout)
    assert after["f1-mc3"]["state"] == "down" and "items" not in after["f1-mc3"], after["f1-mc3"]
    assert after["f1-router"]["state"] == "up"
    down = synod("memcache", "down", "--dir", str(tier_dir))
    assert down.exit_code == 0, down.output
    assert "stopped 12 processes" in down.stdout
    assert processes_of(tier_dir) == []
    gone = synod("memcache", "status", "--dir", str(tier_dir))
    assert gone.exit_code == 1 and "no router of the memcache tier" in gone.stderr
    other = synod("memcache", "up", "--servers", "4", "--dir", str(tier_dir))
    assert other.exit_code == 1 and "holds a tier with 3 servers, not 4" in other.stderr
    back = synod("memcache", "up", "--dir", str(tier_dir))
    assert back.exit_code == 0, back.output
    assert "started again" in back.stdout and _map(back.stdout) == mapped
    assert synod("memcache", "down", "--dir", str(tier_dir)).exit_code == 0
    assert processes_of(tier_dir) == []
    assert synod("memcache", "down", "--dir", str(tier_dir)).stdout.startswith("nothing was running")


def test_a_taken_port_is_refused_before_anything_starts(tier_dir: Path) -> None:
    base = _free_base(12)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", base + 10))  # f2's router's port
        busy.listen()
        result = synod("memcache", "up", "--base-port", str(base), "--dir", str(tier_dir))
    assert result.exit_code == 1, result.output
    assert f"port {base + 10} on 127.0.0.1 is not free" in result.stderr
    assert processes_of(tier_dir) == []


@pytest.mark.parametrize("args, why", [
    (("up", "--clusters", "0"), "0 is not in the range 1<=x<=8"),
    (("up", "--servers", "33"), "33 is not in the range 1<=x<=32"),
    (("up", "--base-port", "70000"), "70000 is not in the range"),
    (("up", "--base-port", "65530"), "goes past port 65535"),
    (("up", "--clusters", "3", "--servers", "2", "--base-port", "65525"), "with 13 ports"),
    (("up", "--clusters", "two"), "'two' is not a valid integer"),
    (("status", "--bogus"), "No such option '--bogus'"),
])
def test_bad_arguments_exit_2(tier_dir: Path, args: tuple[str, ...], why: str) -> None:
    result = synod("memcache", *args, "--dir", str(tier_dir))
    assert result.exit_code == 2, result.output
    assert why in result.stderr
    assert processes_of(tier_dir) == []


@pytest.mark.parametrize("command", ["status", "down"])
def test_no_tier_exits_1_with_a_message(tier_dir: Path, command: str) -> None:
    result = synod("memcache", command, "--dir", str(tier_dir))
    assert result.exit_code == 1, result.output
    assert f"no memcache tier in {tier_dir}" in result.stderr and "synod memcache up" in result.stderr


def test_a_run_dir_of_another_cluster_is_refused(tier_dir: Path) -> None:
    from synod.runtime.config import local_spec, write_config

    write_config(local_spec(3, "synod.kv.node:factory", tier_dir))
    result = synod("memcache", "up", "--dir", str(tier_dir))
    assert result.exit_code == 1, result.output
    assert "holds a cluster that is not a memcache tier" in result.stderr
    assert processes_of(tier_dir) == []
