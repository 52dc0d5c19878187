"""A real redis-server for the differential tests (tests/kv/*_vs_redis.py):
started on a free 127.0.0.1 port with no persistence, connected to with
redis-py and a parser of the test's choosing, killed at the end."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

STARTUP_DEADLINE_S = 10.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def redis_server() -> Iterator[int]:
    """A fresh redis-server's port; skips the test (visibly) without one."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not on PATH (apt-get install redis-server): no differential test")
    port = _free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--daemonize", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield port
    finally:
        proc.kill()
        proc.wait()


def connect(port: int, parser_class: type):
    """A redis-py connection to ``port`` reading replies with
    ``parser_class``, retried until the server listens (STARTUP_DEADLINE_S)."""
    import redis
    from redis.exceptions import ConnectionError as RedisConnectionError

    conn = redis.Connection(host="127.0.0.1", port=port, protocol=2, parser_class=parser_class)
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while True:
        try:
            conn.connect()
            return conn
        except RedisConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
