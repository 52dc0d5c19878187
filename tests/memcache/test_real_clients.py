"""Real memcached clients against real synod cache servers (issue 11 section
1): pymemcache's Client and HashClient, and Debian's libmemcached tools
where installed, over TCP to node processes started by LocalCluster with a
``memcache`` client port each.

One 3-server cluster for the module (owned node processes: they exit with
this process, and the fixture stops them).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymemcache.client.base import Client
from pymemcache.client.hash import HashClient
from tests.kv.test_real_clients import wait_until

from synod.memcache.node import FACTORY
from synod.runtime import LocalCluster, local_spec, write_config

DEADLINE_S = 15.0


def _answers_version(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"version\r\n")
            return s.recv(100).startswith(b"VERSION ")
    except OSError:
        return False


class Servers:
    def __init__(self, cl: LocalCluster) -> None:
        self.cl = cl
        self.ports = [cl.config.nodes[nid].client_ports["memcache"] for nid in cl.node_ids]

    def client(self, i: int = 0, **kwargs: Any) -> Client:
        return Client(("127.0.0.1", self.ports[i]), timeout=10, connect_timeout=10, **kwargs)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    run: Path = tmp_path_factory.mktemp("memcache-real")
    _, path = write_config(local_spec(3, FACTORY, run, params={"memory_limit_mb": 8},
                                      client_protocols=("memcache",)))
    cl = LocalCluster(path)
    try:
        cl.start()
        s = Servers(cl)
        for port in s.ports:
            wait_until(f"port {port} answers version", lambda p=port: _answers_version(p))
        yield s
    finally:
        cl.stop()
        assert not any(cl.is_alive(nid) for nid in cl.node_ids)


def test_pymemcache_client_commands(servers: Servers) -> None:
    """Every text command pymemcache sends, against one server."""
    c = servers.client()
    assert c.version() == b"1.6.18"
    assert c.set("k", b"v", expire=100) is True
    assert c.get("k") == b"v"
    assert c.add("k", b"x", noreply=False) is False
    assert c.replace("k", b"w", noreply=False) is True
    assert c.append("k", b"+", noreply=False) is True
    assert c.prepend("k", b"-", noreply=False) is True
    value, cas = c.gets("k")
    assert value == b"-w+"
    assert c.cas("k", b"new", cas, noreply=False) is True
    assert c.cas("k", b"newer", cas, noreply=False) is False
    assert c.get_many(["k", "missing"]) == {"k": b"new"}
    assert c.set_many({"a": b"1", "b": b"2"}, noreply=False) == []
    assert c.gets_many(["a", "b"]).keys() == {"a", "b"}
    assert c.incr("a", 5, noreply=False) == 6
    assert c.decr("a", 10, noreply=False) == 0
    assert c.incr("missing", 1, noreply=False) is None
    assert c.touch("b", 100, noreply=False) is True
    assert c.raw_command("gat 100 b", end_tokens=b"END\r\n") == b"VALUE b 0 1\r\n2\r\n"
    assert c.cache_memlimit(8) is True
    assert c.delete("b", noreply=False) is True
    assert c.delete("b", noreply=False) is False
    assert c.delete_many(["a", "k"], noreply=False) is True
    stats = c.stats()
    assert stats[b"get_hits"] >= 3
    assert stats[b"limit_maxbytes"] == 8 * 1024 * 1024
    assert c.flush_all(noreply=False) is True
    assert c.get("a") is None
    c.quit()


def test_pymemcache_noreply_and_pipelined_many(servers: Servers) -> None:
    """pymemcache's default noreply sets, then 500 keys in one get_many."""
    c = servers.client(1)
    keys = {f"key:{i}": b"x" * (i % 100) for i in range(500)}
    assert c.set_many(keys) == []  # noreply: nothing comes back
    assert c.get_many(list(keys)) == keys


def test_pymemcache_meta_lease_flow(servers: Servers) -> None:
    """The lease flow of 3.2.1 in meta commands through pymemcache's
    raw_command: miss -> W and a token, a second reader Z, set with the
    token, hit; an invalidation (md I) then refuses the old token."""
    c = servers.client(2)

    def ask(line: str) -> bytes:
        return c.raw_command(line, end_tokens=b"\r\n")

    first = ask("mg lease:k c N30")
    assert first.startswith(b"HD ") and first.endswith(b" W")
    token = first.split()[1][1:].decode()
    assert ask("mg lease:k c N30").endswith(b" Z")
    assert ask(f"ms lease:k 2 C{token}\r\ndb") == b"HD"
    assert ask("mg lease:k s f") == b"HD s2 f0"
    assert c.get("lease:k") == b"db"
    assert ask("md lease:k I") == b"HD"
    assert ask(f"ms lease:k 5 C{token}\r\nstale") == b"EX"
    c.close()


def test_hash_client_spreads_keys_over_three_servers(servers: Servers) -> None:
    """pymemcache's HashClient (rendezvous hashing) over the three servers:
    every key is read back, and each server holds some."""
    hc = HashClient([("127.0.0.1", p) for p in servers.ports], timeout=10, connect_timeout=10)
    items = {f"h:{i}": str(i).encode() for i in range(300)}
    assert hc.set_many(items, noreply=False) == []
    assert hc.get_many(list(items)) == items
    per_server = []
    for i in range(3):
        c = servers.client(i)
        per_server.append(sum(1 for k in items if c.get(k) is not None))
        c.close()
    assert sum(per_server) == 300
    assert all(n > 30 for n in per_server), per_server
    hc.close()


def test_memory_limit_evicts_over_tcp(servers: Servers) -> None:
    """8 MB servers keep at most 8 MB: 20 MB of 100 KB values evict the oldest."""
    c = servers.client(0)
    c.flush_all(noreply=False)
    for i in range(200):
        assert c.set(f"big:{i}", b"z" * 100_000, noreply=False) is True
    stats = c.stats()
    assert stats[b"bytes"] <= 8 * 1024 * 1024
    assert stats[b"evictions"] > 0
    assert c.get("big:0") is None
    assert c.get("big:199") == b"z" * 100_000
    with pytest.raises(Exception, match="object too large"):
        c.set("huge", b"z" * (1024 * 1024 + 1), noreply=False)


@pytest.mark.skipif(shutil.which("memcping") is None or shutil.which("memcstat") is None,
                    reason="libmemcached-tools is not installed (apt-get install libmemcached-tools)")
def test_libmemcached_tools(servers: Servers) -> None:
    """Debian's libmemcached tools (memcping, memccp/memccat, memcstat)
    against one synod server."""
    server = f"127.0.0.1:{servers.ports[1]}"
    run = subprocess.run(["memcping", f"--servers={server}"], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    c = servers.client(1)
    c.set("tool:key", b"from pymemcache", noreply=False)
    cat = subprocess.run(["memccat", f"--servers={server}", "tool:key"], capture_output=True, timeout=30)
    assert cat.returncode == 0, cat.stderr
    assert cat.stdout.strip() == b"from pymemcache"
    stat = subprocess.run(["memcstat", f"--servers={server}"], capture_output=True, text=True, timeout=30)
    assert stat.returncode == 0, stat.stderr
    assert "curr_items" in stat.stdout


def _raw(port: int, data: bytes, deadline_s: float = 10.0) -> tuple[bytes, bool]:
    """Send ``data``; read until the server closes (True) or is quiet for 0.5 s (False)."""
    with socket.create_connection(("127.0.0.1", port), timeout=deadline_s) as s:
        s.sendall(data)
        s.settimeout(0.5)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                return out, False
            except ConnectionResetError:
                return out, True
            if not chunk:
                return out, True
            out += chunk


def test_bad_clients_get_errors_or_a_close_and_others_are_served(servers: Servers) -> None:
    """A malformed command gets memcached's error and the connection lives
    on; an over-long line or an HTTP request closes that connection only;
    the server serves everyone else."""
    port = servers.ports[0]
    out, closed = _raw(port, b"set k 0 0 1\r\nxyz\r\nbogus\r\nset k 0 0 -1\r\nmg k v v\r\nversion\r\n")
    assert out == (b"CLIENT_ERROR bad data chunk\r\nERROR\r\nERROR\r\nCLIENT_ERROR bad command line format\r\n"
                   b"CLIENT_ERROR duplicate flag\r\nVERSION 1.6.18\r\n")
    assert not closed
    assert _raw(port, b"x" * 5000) == (b"", True)
    assert _raw(port, b"GET / HTTP/1.1\r\n\r\n") == (b"", True)
    c = servers.client(0)
    assert c.set("after", b"fine", noreply=False) is True
    assert c.get("after") == b"fine"
    c.close()


@pytest.mark.skipif(shutil.which("memccapable") is None,
                    reason="libmemcached-tools is not installed (apt-get install libmemcached-tools)")
def test_memccapable_ascii_conformance(servers: Servers) -> None:
    """libmemcached's memccapable -a: its 27 ASCII protocol conformance tests
    (version, quit, verbosity, every storage command with and without
    noreply, get/gets/mget, flush, incr/decr, stat) all pass. It flushes the
    server, so it runs last."""
    run = subprocess.run(["memccapable", "-a", "-t", "10", "-h", "127.0.0.1", "-p", str(servers.ports[2])],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "All tests passed" in run.stdout
    assert run.stdout.count("[pass]") == 27
