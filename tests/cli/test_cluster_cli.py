"""``synod cluster up`` never corrupts a run directory (issue 8, part 5).

- A refused ``up`` changes nothing: not the config, not the running nodes.
- A run dir's membership changes only through membership changes: ``up``
  with other nodes refuses, unless ``--new``, which moves the old run aside.
- A node's address taken by something else (an HTTP server) is one line of
  error and starts nothing; a node that fails to start is named with its
  log's reason, and the nodes that started keep running.

Real node processes (the runtime's test nodes); every wait is a poll with a
deadline.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from synod.cli.main import cli
from synod.runtime import LocalCluster, local_spec, write_config
from synod.runtime.config import NodeSpec
from synod.runtime.testing import FACTORY

PARAMS = '{"ping_interval_ms": 40}'


def synod(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def ok(*args: str) -> str:
    result = synod(*args)
    assert result.exit_code == 0, result.output
    return result.output


def refused_in_one_line(result: Result) -> str:
    """The error line of a command that exited 1 with a one-line error and
    no traceback."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # not an uncaught exception
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def status(run: Path) -> dict:
    return json.loads(ok("cluster", "status", "--json", "--run-dir", str(run)))


def snapshot(run: Path) -> dict[str, bytes]:
    """Every file of the run dir that ``up`` could write, except logs, which
    running nodes append to."""
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*"))
            if p.is_file() and p.suffix not in (".log", ".jsonl")}


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Path]:
    run_dir = tmp_path / "run"
    try:
        yield run_dir
    finally:
        if (run_dir / "cluster-state.json").exists():
            LocalCluster.attach(run_dir).stop()


def test_refused_up_changes_nothing_while_the_cluster_runs(run: Path) -> None:
    """``up --nodes 5`` against a running 3-node run dir refuses ("already
    running") and leaves the config, the state and the nodes as they were."""
    ok("cluster", "up", "--nodes", "3", "--factory", FACTORY, "--params", PARAMS, "--run-dir", str(run))
    before = snapshot(run)
    line = refused_in_one_line(synod("cluster", "up", "--nodes", "5", "--factory", FACTORY, "--params", PARAMS,
                                     "--run-dir", str(run)))
    assert "already run" in line, line
    assert snapshot(run) == before
    st = status(run)
    assert sorted(st) == ["n1", "n2", "n3"]
    assert all(s["alive"] and s["answering"] for s in st.values()), st


@pytest.mark.parametrize("nodes", ["1", "5"])
def test_up_with_other_membership_is_refused_and_new_moves_the_old_run_aside(run: Path, nodes: str) -> None:
    """A run dir holding a 3-node cluster: ``up --nodes 1`` (a one-voter
    cluster that would commit alone) and ``up --nodes 5`` (two voters added
    silently) refuse and change nothing; ``up --new`` starts a fresh cluster
    over fresh data and keeps the old run in ``old-<time>/``."""
    where = ("--run-dir", str(run))
    ok("cluster", "up", "--nodes", "3", "--factory", FACTORY, "--params", PARAMS, *where)
    ok("cluster", "down", *where)
    (run / "n1" / "data").mkdir(exist_ok=True)
    (run / "n1" / "data" / "mark").write_text("old run")
    before = snapshot(run)

    line = refused_in_one_line(synod("cluster", "up", "--nodes", nodes, "--factory", FACTORY, "--params", PARAMS,
                                     *where))
    assert "membership" in line and "--new" in line, line
    assert snapshot(run) == before
    assert LocalCluster.running_in(run) == []
    line = refused_in_one_line(synod("cluster", "up", "--nodes", "3", "--factory", FACTORY,
                                     "--params", '{"ping_interval_ms": 41}', *where))
    assert "membership" in line, line
    assert snapshot(run) == before

    out = ok("cluster", "up", "--new", "--nodes", nodes, "--factory", FACTORY, "--params", PARAMS, *where)
    old = [d for d in run.iterdir() if d.name.startswith("old-")]
    assert len(old) == 1, out
    assert f"moved the old run to {old[0]}" in out
    assert (old[0] / "n1" / "data" / "mark").read_text() == "old run"
    assert json.loads((old[0] / "cluster-config.json").read_text())["nodes"].keys() == {"n1", "n2", "n3"}
    assert not (run / "n1" / "data" / "mark").exists()
    st = status(run)
    assert len(st) == int(nodes) and all(s["answering"] for s in st.values()), st

    ok("cluster", "down", *where)
    ok("cluster", "up", *where)  # the same cluster again: allowed
    assert len(status(run)) == int(nodes)


class _HttpServer:
    """Answers whatever arrives with an HTTP error, as a web server would."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(0.2)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1.0)
                try:
                    conn.recv(4096)
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:
                    pass

    def close(self) -> None:
        self.stopping.set()
        self.thread.join()
        self.sock.close()


def test_an_address_taken_by_an_http_server_is_one_line_and_starts_nothing(run: Path) -> None:
    http = _HttpServer()
    try:
        spec = local_spec(3, FACTORY, run, params={"ping_interval_ms": 40})
        spec.nodes["n2"] = NodeSpec(factory=FACTORY, params={"ping_interval_ms": 40}, port=http.port)
        _, path = write_config(spec)
        line = refused_in_one_line(synod("cluster", "up", "--config", str(path)))
        assert "n2" in line and f"127.0.0.1:{http.port}" in line and "in use" in line, line
        assert LocalCluster.running_in(run) == []
        assert not (run / "n1" / "node.log").exists(), "a node was started"
    finally:
        http.close()


def test_a_node_that_fails_to_start_is_named_and_the_others_keep_running(run: Path) -> None:
    spec = local_spec(3, FACTORY, run, params={"ping_interval_ms": 40})
    spec.nodes["n2"] = NodeSpec(factory=FACTORY, params={"no_such_param": 1})
    _, path = write_config(spec)
    result = synod("cluster", "up", "--config", str(path))
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    first = result.stderr.splitlines()[0]
    assert first.startswith("Error: n2 did not start") and "unknown field `no_such_param`" in first, first
    assert "n1, n3 are running" in result.stderr, result.stderr
    assert "synod cluster down" in result.stderr, result.stderr
    st = status(run)
    assert st["n1"]["answering"] and st["n3"]["answering"], st
    assert not st["n2"]["alive"], st
