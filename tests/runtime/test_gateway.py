"""The client gateway (DESIGN.md section 8, issue 10 part 1): a node's
client-facing port served with a sans-IO protocol object, here the runtime
test system's ``line`` protocol (synod.runtime.testing), in a real node
process under a LocalCluster. Every wait is a socket timeout or a poll with
a deadline."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from synod.runtime import LocalCluster, local_spec, write_config
from synod.runtime.testing import FACTORY, wait_until

TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    run_dir = tmp_path_factory.mktemp("gateway")
    _, path = write_config(local_spec(1, FACTORY, run_dir, params={"ping_interval_ms": 0},
                                      client_protocols=("line",)))
    cl = LocalCluster(path)
    try:
        cl.start()
        yield cl
    finally:
        cl.stop()


def _port(cluster: LocalCluster) -> int:
    return cluster.config.nodes["n1"].client_ports["line"]


class _Client:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S)
        self.buf = b""

    def send(self, *lines: str) -> None:
        self.sock.sendall(b"".join(line.encode() + b"\n" for line in lines))

    def read_lines(self, n: int) -> list[str]:
        while self.buf.count(b"\n") < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed after {self.buf!r}")
            self.buf += chunk
        *lines, self.buf = self.buf.split(b"\n", n)
        return [line.decode() for line in lines]

    def ask(self, line: str) -> str:
        self.send(line)
        return self.read_lines(1)[0]

    def closed_by_peer(self) -> bool:
        try:
            return self.sock.recv(65536) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


def test_requests_reach_the_node_and_replies_come_back(cluster: LocalCluster) -> None:
    c = _Client(_port(cluster))
    try:
        assert c.ask("echo hello") == "hello"
        assert c.ask("nonsense") == "unknown 'nonsense'"
    finally:
        c.close()


def test_pipelined_replies_are_written_in_request_order_even_when_answered_out_of_order(
        cluster: LocalCluster) -> None:
    c = _Client(_port(cluster))
    try:
        # The node answers "later" requests after a timer and "echo" at once:
        # the later ones are answered last but must be written first.
        c.send("later 200 a", "later 50 b", "echo c", "later 0 d", "echo e")
        assert c.read_lines(5) == ["a", "b", "c", "d", "e"]
        c.send(*(f"echo {i}" for i in range(500)))
        assert c.read_lines(500) == [str(i) for i in range(500)]
    finally:
        c.close()


def test_the_node_hears_clients_open_and_close(cluster: LocalCluster) -> None:
    first = _Client(_port(cluster))
    base = int(first.ask("clients"))
    others = [_Client(_port(cluster)) for _ in range(3)]
    try:
        assert wait_until(lambda: first.ask("clients") == str(base + 3), TIMEOUT_S, "3 more clients")
        for o in others:
            o.close()
        assert wait_until(lambda: first.ask("clients") == str(base), TIMEOUT_S, "the 3 gone")
    finally:
        first.close()
        for o in others:
            o.close()


def test_a_malformed_request_closes_that_connection_only(cluster: LocalCluster) -> None:
    good = _Client(_port(cluster))
    bad = _Client(_port(cluster))
    worse = _Client(_port(cluster))
    try:
        errors = int(good.ask("protocol-errors"))
        bad.send("x" * 5000)  # over the protocol's line limit
        assert bad.read_lines(1)[0].startswith("error: line over")
        assert wait_until(bad.closed_by_peer, TIMEOUT_S, "the oversize line's connection closed")
        worse.send("bad")  # well formed, but the node's handler rejects it
        assert wait_until(worse.closed_by_peer, TIMEOUT_S, "the rejected client's connection closed")
        assert good.ask("echo still here") == "still here"
        # the node heard both closes as protocol errors (a gateway's and its own)
        assert wait_until(lambda: good.ask("protocol-errors") == str(errors + 2), TIMEOUT_S, "2 protocol errors")
        assert cluster.is_alive("n1")
    finally:
        for c in (good, bad, worse):
            c.close()


def test_pushes_and_a_client_asked_close(cluster: LocalCluster) -> None:
    c = _Client(_port(cluster))
    try:
        c.send("push news")
        assert c.read_lines(2) == ["ok", "! news"]
        assert c.ask("quit") == "bye"
        assert wait_until(c.closed_by_peer, TIMEOUT_S, "closed after quit")
    finally:
        c.close()


def test_a_thousand_idle_connections_do_not_stop_service(cluster: LocalCluster) -> None:
    idle = []
    try:
        for _ in range(1000):
            idle.append(socket.create_connection(("127.0.0.1", _port(cluster)), timeout=TIMEOUT_S))
        c = _Client(_port(cluster))
        try:
            assert c.ask("echo served") == "served"
            assert wait_until(lambda: int(c.ask("clients")) >= 1001, TIMEOUT_S, "all 1001 clients known")
        finally:
            c.close()
    finally:
        for s in idle:
            s.close()


def test_a_client_that_floods_without_reading_is_slowed_and_others_are_served(cluster: LocalCluster) -> None:
    flood = _Client(_port(cluster))
    other = _Client(_port(cluster))
    n = 2_000_000  # 23 MB of requests: more than the socket buffers and the gateway hold
    try:
        flood.sock.setblocking(False)
        sent = 0
        payload = b"".join(b"echo %d\n" % i for i in range(n))
        # Write until the node stops reading (its replies are not being read):
        # the socket's buffers fill and sendall would block.
        while sent < len(payload):
            try:
                sent += flood.sock.send(payload[sent:sent + 65536])
            except BlockingIOError:
                break
        assert sent < len(payload), "the node read everything: nothing slowed the flood"
        assert other.ask("echo still served") == "still served"
        flood.sock.setblocking(True)
        flood.sock.settimeout(TIMEOUT_S)
        got = flood.read_lines(1000)
        assert got == [str(i) for i in range(1000)]  # in order, none lost
    finally:
        flood.close()
        other.close()
