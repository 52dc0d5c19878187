"""A real memcached for the differential tests, and an in-process synod
server to compare it with.

:func:`memcached_server` starts Debian's /usr/bin/memcached (1.6.18) on a
free 127.0.0.1 port (TCP only, ``-u root`` when run as root) and kills it at
the end; without one the test is skipped with the reason shown.
:func:`exchange` sends bytes on a fresh connection and reads the answer until
an expected end or a quiet period. :class:`LocalServer` answers bytes the way
a synod cache server does, without sockets: a
:class:`~synod.memcache.protocol.MemcacheProtocol` per connection and one
:class:`~synod.memcache.node.CacheNode`, at a clock the test sets.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from synod.core.node import SIM_EPOCH_UNIX_MS
from synod.memcache.node import CacheNode
from synod.memcache.protocol import MemcacheProtocol

STARTUP_DEADLINE_S = 10.0
MEMCACHED = "/usr/bin/memcached"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memcached_path() -> str | None:
    return MEMCACHED if os.path.exists(MEMCACHED) else shutil.which("memcached")


@contextmanager
def memcached_server(*args: str) -> Iterator[int]:
    """A fresh memcached's port (extra command-line ``args``); skips the test
    (visibly) without one."""
    exe = memcached_path()
    if exe is None:
        pytest.skip("memcached is not installed (apt-get install memcached): no differential test")
    port = _free_port()
    cmd = [exe, "-p", str(port), "-l", "127.0.0.1", "-U", "0", *args]
    if os.geteuid() == 0:
        cmd += ["-u", "root"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, f"memcached exited with {proc.returncode}"
                assert time.monotonic() < deadline, "memcached did not listen in time"
                time.sleep(0.02)
        yield port
    finally:
        proc.kill()
        proc.wait()


def exchange(port: int, data: bytes, expect: bytes | None = None, quiet_s: float = 0.3,
             deadline_s: float = 10.0) -> bytes:
    """Send ``data`` on a new connection; read until the answer ends with
    ``expect`` (when given), the server closes, or nothing came for
    ``quiet_s``; all within ``deadline_s``."""
    out = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=deadline_s) as s:
        s.sendall(data)
        end = time.monotonic() + deadline_s
        s.settimeout(quiet_s if expect is None else deadline_s)
        while time.monotonic() < end:
            try:
                chunk = s.recv(1 << 20)
            except TimeoutError:
                break
            if not chunk:
                break
            out += chunk
            if expect is not None and out.endswith(expect):
                break
    return bytes(out)


class LocalServer:
    """A synod cache server answering bytes in-process (no sockets)."""

    def __init__(self, **node_args: int) -> None:
        self.node = CacheNode(**node_args)
        self.now_ms = SIM_EPOCH_UNIX_MS
        self.node.started_s = self.now_ms // 1000

    def exchange(self, data: bytes, chunks: list[int] | None = None) -> bytes:
        """The bytes a new connection sending ``data`` (split at ``chunks``)
        gets back; stops at a close, as the gateway does."""
        proto = MemcacheProtocol(item_size_bytes_max=self.node.item_size_bytes_max)
        out = bytearray()
        cuts = [0, *(chunks or []), len(data)]
        for a, b in zip(cuts, cuts[1:], strict=False):
            for req in proto.receive_data(data[a:b]):
                out += proto.send(self.node.answer(req, self.now_ms))
                if proto.wants_close:
                    return bytes(out)
        return bytes(out)
