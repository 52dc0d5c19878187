"""``synod memcache serve``: one cache server in the foreground, as
``memcached -p P -m M``: pymemcache talks to it, its memory limit shows in
stats, SIGINT stops it with status 0, a taken port exits with status 2."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

from pymemcache.client.base import Client
from tests.kv.test_real_clients import wait_until


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
