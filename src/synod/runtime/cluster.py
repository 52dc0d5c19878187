"""The local cluster supervisor (DESIGN.md section 6).

:class:`LocalCluster` runs every node of a cluster config as its own OS
process on this machine (``python -m synod.cli.node_cmd run --config FILE
--id ID``, or, with ``fork_server=True``, forked by a fork server that has
imported the runtime once: :mod:`synod.runtime._zygote`) and drives faults
against them: kill (SIGKILL), pause (SIGSTOP), resume (SIGCONT), restart, and
the transport's fault layer (partition, drop, delay; see
:mod:`synod.runtime.messages`).

One run directory holds everything::

    run_dir/cluster-config.json    the config the nodes were started with
    run_dir/cluster-state.json     pids of the node processes (for the CLI)
    run_dir/supervisor.log         what the supervisor did, one line each
    run_dir/<id>/node.log          the node process's output and log lines
    run_dir/<id>/trace.jsonl       ctx.trace events and runtime events
    run_dir/<id>/faults.json       the node's fault state (read at start)
    run_dir/<id>/data/             ctx.disk

Modes:

- *owned* (the default): the node processes are children of this process,
  which reaps them, records their exit codes and, with ``respawn=True``,
  starts again a node that exited by itself with a non-zero code (a crash,
  ``ctx.exit(1)``), as the MapReduce lab's ``while not done: run worker``
  loop does. A node the supervisor killed or stopped is not respawned. The
  nodes watch this process and exit when it is gone.
- *detached* (``detach=True``, used by ``synod cluster up``): the nodes
  outlive this process; :meth:`LocalCluster.attach` later finds them again
  through the state file. Exit codes are only known in owned mode.

Faults are switched at run time by sending the node a ``runtime.SetFaults``
control message on its port; the same state is written to the node's
``faults.json`` first, so a node that restarts keeps its faults.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from synod.core.errors import ConfigError, LocalProtocolError, RemoteProtocolError, SynodError
from synod.runtime import _zygote
from synod.runtime import client as _client
from synod.runtime._process import is_stopped, pid_runs_node, supervisor_logger
from synod.runtime.config import (
    CONFIG_FILE_NAME,
    ClusterConfig,
    NodeConfig,
    ensure_credentials,
    free_ports,
    load_config,
    parse_config,
)
from synod.runtime.constants import (
    MONITOR_INTERVAL_MS,
    READY_TIMEOUT_S,
    RESPAWN_DELAY_MS,
    RESPAWNS_MAX,
    STOP_TIMEOUT_S,
)
from synod.runtime.host import FAULTS_FILE_NAME, LOG_FILE_NAME, TRACE_FILE_NAME
from synod.runtime.messages import NO_FAULTS, Faults, FaultsSet, SetFaults, Status, StatusRequest

__all__ = ["LocalCluster", "ClusterError", "NodeState", "STATE_FILE_NAME", "check_addresses_free"]

STATE_FILE_NAME = "cluster-state.json"
SUPERVISOR_LOG_NAME = "supervisor.log"
_POLL_S = 0.02


_ADDR_PROBE_TIMEOUT_S = 0.5
_ADDR_RELEASE_WAIT_S = 2.0   # how long an address may stay taken by a process that is going away
_LOG_TAIL_LINES = 15


class ClusterError(SynodError):
    """A node process failed to start or answer, a node's address is taken,
    or no cluster runs where one was expected.

    ``failed``: when nodes did not come up (:meth:`LocalCluster.start`,
    :meth:`LocalCluster.wait_ready`), node id -> why, in one line (the last
    error line of its log); the message then ends with the last lines of
    each one's log. Empty otherwise.
    """

    def __init__(self, message: str, *, failed: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.failed: dict[str, str] = dict(failed or {})


def check_addresses_free(config: ClusterConfig, node_ids: Iterable[str]) -> None:
    """Check that no process listens on the address of any of ``node_ids``
    (nodes about to be started: anything listening there is not them).

    Raises:
        ClusterError: one line naming the first node whose address is taken.
    """
    for node_id in node_ids:
        host, port = config.nodes[node_id].addr
        # (a node killed a moment ago may still be closing its socket: look again for a little while)
        deadline = time.monotonic() + _ADDR_RELEASE_WAIT_S
        while True:
            try:
                with socket.create_connection((host, port), timeout=_ADDR_PROBE_TIMEOUT_S):
                    pass
            except OSError:
                break  # nothing listens (or the node's own bind will say what is wrong)
            if time.monotonic() >= deadline:
                raise ClusterError(f"cannot start {node_id}: {host}:{port} is in use by another process, not a "
                                   f"node of this cluster; stop it, or give {node_id} a free port")
            time.sleep(0.05)


@dataclass(slots=True)
class _Proc:
    node_id: str
    respawn: bool
    pid: int | None = None
    # Owned mode: the running process (a child, or a child of the fork
    # server), until its exit is recorded.
    popen: subprocess.Popen[bytes] | _zygote.ZygoteChild | None = None
    # Detached mode: the process this supervisor started, if it did. Its
    # poll() says exactly whether it runs (and reaps it), where the procfs
    # check cannot: just after the fork its cmdline can still read empty.
    launched: subprocess.Popen[bytes] | None = None
    exit_codes: list[int] = field(default_factory=list)
    respawns: int = 0
    stopping: bool = False  # the supervisor is stopping or killing it: no respawn
    respawn_at: float | None = None  # monotonic time of a pending respawn
    done: bool = True  # not running and not going to be respawned


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeState:
    """What :meth:`LocalCluster.status` reports about one node."""

    node_id: str
    addr: tuple[str, int]
    pid: int | None
    alive: bool
    paused: bool
    exit_codes: tuple[int, ...]
    respawns: int
    faults: Faults
    status: Status | None  # the node's own answer; None if it did not answer


class LocalCluster:
    """Supervise the nodes of one cluster config on this machine.

    Args:
        config: a :class:`ClusterConfig` (saved to ``run_dir/cluster-config.json``)
            or the path of a config file.
        respawn: owned mode only: restart nodes that exit by themselves with
            a non-zero code (at most ``RESPAWNS_MAX`` times each): True for
            every node, or the ids of the nodes to respawn (e.g. the workers).
        detach: start nodes that outlive this process (no exit codes, no
            respawn); see :meth:`attach`.
        python: the interpreter for node processes (default: this one).
        env: extra environment variables for node processes.
        fork_server: owned mode on Linux: start node processes by forking a
            fork server that has imported the runtime and the config's
            factories once (:mod:`synod.runtime._zygote`), instead of one
            ``python -m synod.cli.node_cmd`` each; faster to start, same
            logs, pids, signals and exit codes. Ignored when detached (the
            nodes must outlive this process) or where it is unavailable.

    Raises:
        ConfigError: the config file does not validate.
    """

    def __init__(self, config: ClusterConfig | str | os.PathLike[str], *, respawn: bool | Iterable[str] = False,
                 detach: bool = False, python: str | None = None, env: dict[str, str] | None = None,
                 fork_server: bool = False) -> None:
        if isinstance(config, ClusterConfig):
            self.config_path = config.save(config.run_dir / CONFIG_FILE_NAME)
            self.config = config
        else:
            self.config_path = Path(config).resolve()
            self.config = load_config(self.config_path)
        if respawn and detach:
            raise LocalProtocolError("respawn needs an owned cluster (detach=False)")
        self.run_dir = self.config.run_dir
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # The cluster key (created if the config names one that is missing)
        # that this supervisor's own calls prove; None: no authentication.
        self.credentials = ensure_credentials(self.config)
        # None: every node; otherwise the ids to respawn.
        self._respawn_ids: frozenset[str] | None = (
            None if respawn is True else frozenset() if respawn is False else frozenset(respawn))
        self.detach = detach
        self.python = python or sys.executable
        self.env = dict(env or {})
        self.fork_server = fork_server and not detach and _zygote.available()
        self._zygote: _zygote.Zygote | None = None
        self._procs: dict[str, _Proc] = {}
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._monitor: threading.Thread | None = None
        self._monitor_stop = threading.Event()
        self._log = supervisor_logger(self.run_dir, SUPERVISOR_LOG_NAME)

    # -- construction helpers ----------------------------------------------------------
    @classmethod
    def attach(cls, run_dir: str | os.PathLike[str]) -> LocalCluster:
        """The cluster a detached :meth:`start` left in ``run_dir``, with the
        pids from its state file.

        Raises:
            ClusterError: no state file in ``run_dir``.
        """
        state_path = Path(run_dir) / STATE_FILE_NAME
        try:
            state = json.loads(state_path.read_text())
        except (OSError, ValueError) as e:
            raise ClusterError(f"no cluster state in {run_dir} ({e}); start one with `synod cluster up`") from None
        cluster = cls(state["config"], detach=True)
        for node_id, entry in state.get("nodes", {}).items():
            if node_id in cluster.config.nodes and entry.get("pid"):
                cluster._procs[node_id] = _Proc(node_id, respawn=False, pid=int(entry["pid"]), done=False)
        return cluster

    @staticmethod
    def running_in(run_dir: str | os.PathLike[str]) -> list[str]:
        """The ids of the nodes that the state file in ``run_dir`` names and
        whose processes still run; [] without a readable state file. Reads
        only (unlike :meth:`attach`, it creates nothing)."""
        try:
            state = json.loads((Path(run_dir) / STATE_FILE_NAME).read_text())
            config_path = Path(state["config"])
            nodes = dict(state.get("nodes", {}))
        except (OSError, ValueError, KeyError, TypeError):
            return []
        running = []
        for node_id, entry in nodes.items():
            pid = entry.get("pid") if isinstance(entry, dict) else None
            if isinstance(pid, int) and pid > 0 and pid_runs_node(pid, node_id, config_path):
                running.append(node_id)
        return running

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- where things are --------------------------------------------------------------
    @property
    def node_ids(self) -> list[str]:
        return list(self.config.nodes)

    def addr(self, node_id: str) -> tuple[str, int]:
        return self._node(node_id).addr

    def node_dir(self, node_id: str) -> Path:
        return self.config.node_dir(node_id)

    def log_path(self, node_id: str) -> Path:
        return self.node_dir(node_id) / LOG_FILE_NAME

    def trace_path(self, node_id: str) -> Path:
        return self.node_dir(node_id) / TRACE_FILE_NAME

    def data_dir(self, node_id: str) -> Path:
        return self.node_dir(node_id) / "data"

    def read_log(self, node_id: str) -> str:
        try:
            return self.log_path(node_id).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _node(self, node_id: str) -> NodeConfig:
        node = self.config.nodes.get(node_id)
        if node is None:
            raise LocalProtocolError(f"no node {node_id!r} in this cluster (nodes: {', '.join(self.config.nodes)})")
        return node

    # -- starting --------------------------------------------------------------------------
    def start(self, node_ids: Iterable[str] | None = None, *, wait_ready: bool = True,
              timeout_s: float = READY_TIMEOUT_S) -> None:
        """Start the given nodes (default: all) that are not running, and wait
        until each answers a status request.

        Raises:
            ClusterError: another process listens on the address of a node
                to start (then none is started); or nodes exited or did not
                answer within ``timeout_s`` (``failed`` names each, and why;
                the others keep running).
        """
        ids = list(node_ids) if node_ids is not None else self.node_ids
        with self._lock:
            for node_id in ids:
                self._node(node_id)
            down = [node_id for node_id in ids if not self.is_alive(node_id)]
            check_addresses_free(self.config, down)  # before starting any
            for node_id in down:
                self._spawn(node_id)
            self._write_state()
        if not self.detach and self._monitor is None:
            self._monitor = threading.Thread(target=self._watch, name="synod-cluster-monitor", daemon=True)
            self._monitor.start()
        if wait_ready:
            self.wait_ready(ids, timeout_s=timeout_s)

    def add_node(self, node_id: str, factory: str, params: dict[str, Any] | None = None, *,
                 host: str = "127.0.0.1", port: int = 0, client_ports: dict[str, int] | None = None,
                 start: bool = True, respawn: bool | None = None,
                 timeout_s: float = READY_TIMEOUT_S) -> NodeConfig:
        """Add a node to the config (rewriting the config file) and start it.

        Args:
            node_id: a new id.
            factory, params: how the node is built (a new server of a
                replicated system usually starts as a learner, e.g. with
                ``params={"voters": [...the current voters...]}``).
            host, port: where it listens (port 0: a free one).
            client_ports: client protocol name -> port (0: a free one), as
                in :class:`NodeConfig` (e.g. ``{"resp": 0}`` for a KV server).

        Running nodes keep the config they started with. With a cluster key
        (the default) the new node dials each of its configured peers when it
        starts, and each records the address the new node proves in that
        handshake (:mod:`synod.runtime.transport`, "Address book"): from then
        on it sends to the new node as to a configured peer, fault layer
        included. Without a key nothing is announced: the new node is a
        client to them, answered only on connections it opened and sent on
        (a learner, which sends nothing first, is not reached). A node that
        restarts reads the rewritten config.

        Raises:
            LocalProtocolError: ``node_id`` is taken.
            ConfigError: the new config does not validate.
        """
        with self._lock:
            if node_id in self.config.nodes:
                raise LocalProtocolError(f"node {node_id!r} already exists")
            wanted = dict(client_ports or {})
            zeros = [name for name, p in wanted.items() if p == 0]
            free = free_ports(len(zeros) + (port == 0), host)
            if port == 0:
                port = free.pop()
            wanted.update(zip(zeros, free))
            raw = self.config.to_json()
            raw["nodes"][node_id] = {"host": host, "port": port, "factory": factory, "params": dict(params or {}),
                                     "client_ports": wanted}
            self.config = parse_config(raw, source=str(self.config_path))
            ensure_credentials(self.config)  # with TLS: the new node's certificate
            self.config.save(self.config_path)
            if respawn is not None:
                self._procs[node_id] = _Proc(node_id, respawn=respawn)
        if start:
            self.start([node_id], timeout_s=timeout_s)
        return self.config.nodes[node_id]

    def _spawn(self, node_id: str) -> None:
        """Start node ``node_id``'s process (caller holds the lock)."""
        proc = self._procs.get(node_id)
        if proc is None:
            respawn = self._respawn_ids is None or node_id in self._respawn_ids
            proc = self._procs[node_id] = _Proc(node_id, respawn=respawn and not self.detach)
        node_dir = self.node_dir(node_id)
        node_dir.mkdir(parents=True, exist_ok=True)
        if self.fork_server:
            popen: subprocess.Popen[bytes] | _zygote.ZygoteChild = self._fork(node_id)
        else:
            popen = self._popen(node_id)
        proc.popen = None if self.detach else popen
        proc.launched = popen if self.detach else None
        proc.pid = popen.pid
        proc.stopping = False
        proc.respawn_at = None
        proc.done = False
        self._log.info("started %s pid %d", node_id, popen.pid)

    def _node_env(self) -> dict[str, str]:
        env = os.environ.copy()
        env.update(self.env)
        env["PYTHONUNBUFFERED"] = "1"
        src_dir = str(Path(__file__).resolve().parents[2])  # make synod importable in the child
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src_dir, env.get("PYTHONPATH", "")) if p)
        return env

    def _popen(self, node_id: str) -> subprocess.Popen[bytes]:
        cmd = [self.python, "-m", "synod.cli.node_cmd", "run", "--config", str(self.config_path), "--id", node_id]
        if not self.detach:
            cmd += ["--parent-pid", str(os.getpid())]
        with open(self.log_path(node_id), "ab") as out:
            return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    env=self._node_env(), start_new_session=True, close_fds=True)

    def _fork(self, node_id: str) -> _zygote.ZygoteChild:
        """Have the fork server (started on first use) fork node ``node_id``.

        Raises:
            ClusterError: the fork server is gone or could not fork.
        """
        if self._zygote is None or not self._zygote.alive():
            if self._zygote is not None:
                self._zygote.close()
            self._zygote = _zygote.Zygote(self.python, self.config_path, self._node_env(),
                                          self.run_dir / _zygote.ZYGOTE_LOG_NAME)
            self._log.info("started the node fork server, pid %d", self._zygote.pid)
        try:
            return self._zygote.start(node_id, self.log_path(node_id))
        except OSError as e:
            raise ClusterError(f"cannot start {node_id}: {e}") from None

    def wait_ready(self, node_ids: Iterable[str] | None = None, *, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Wait until each node answers a status request from its current process.

        Raises:
            ClusterError: some nodes exited first, or ``timeout_s`` passed;
                ``failed`` names each of them (all are waited for), and why.
        """
        deadline = time.monotonic() + timeout_s
        failed: dict[str, str] = {}
        for node_id in node_ids if node_ids is not None else self.node_ids:
            why = self._wait_one_ready(node_id, deadline, timeout_s)
            if why is not None:
                failed[node_id] = why
        if failed:
            notes = "".join(f"\n{nid}: {why}{self._exit_note(nid)}" for nid, why in failed.items())
            raise ClusterError(f"node{'s' if len(failed) > 1 else ''} {', '.join(failed)} did not start{notes}",
                               failed=failed)

    def _wait_one_ready(self, node_id: str, deadline: float, timeout_s: float) -> str | None:
        """None once ``node_id`` answers from its current process; else why
        not, in one line (it exited, or ``deadline`` passed)."""
        while True:
            with self._lock:
                proc = self._procs.get(node_id)
                if proc is not None:
                    self._reap(proc)
                pid = proc.pid if proc is not None else None
                alive = self.is_alive(node_id)
            if not alive and (proc is None or proc.respawn_at is None):
                codes = self.exit_codes(node_id)
                return f"exited{f' with {codes[-1]}' if codes else ''}: {self.log_reason(node_id)}"
            remaining = deadline - time.monotonic()
            status = self._status_call(node_id, min(0.5, max(remaining, 0.2)))
            if status is not None and status.pid == pid:
                return None
            if remaining <= 0:
                return f"did not answer within {timeout_s} s: {self.log_reason(node_id)}"
            time.sleep(_POLL_S)

    def _status_call(self, node_id: str, timeout_s: float) -> Status | None:
        try:
            reply = _client.call(self.addr(node_id), StatusRequest(), timeout_s, credentials=self.credentials)
        except (OSError, RemoteProtocolError):  # down, or something else answers on its address
            return None
        return reply if type(reply) is Status else None

    def log_reason(self, node_id: str) -> str:
        """The node log's last error line (a traceback's last line counts), or
        its last line; "no log lines" if it is empty."""
        lines = [line.strip() for line in self.read_log(node_id).splitlines() if line.strip()]
        errors = [line for line in lines if " ERROR " in line or "Error" in line or "error:" in line]
        return (errors or lines or ["no log lines"])[-1][:500]

    def log_tail(self, node_id: str, lines: int = _LOG_TAIL_LINES) -> list[str]:
        """The last ``lines`` lines of the node's log."""
        return self.read_log(node_id).splitlines()[-lines:]

    def _exit_note(self, node_id: str) -> str:
        codes = self.exit_codes(node_id)
        note = f" (exit codes {codes})" if codes else ""
        tail = "\n".join(self.log_tail(node_id))
        return f"{note}; last lines of {self.log_path(node_id)}:\n{tail}"

    # -- processes ---------------------------------------------------------------------------
    def is_alive(self, node_id: str) -> bool:
        """Whether node ``node_id``'s process runs (a paused one does)."""
        with self._lock:
            proc = self._procs.get(node_id)
            if proc is None or proc.pid is None:
                return False
            if proc.popen is not None:
                return proc.popen.poll() is None
            if proc.launched is not None and proc.launched.pid == proc.pid:
                return proc.launched.poll() is None
            return pid_runs_node(proc.pid, node_id, self.config_path)

    def is_paused(self, node_id: str) -> bool:
        with self._lock:
            proc = self._procs.get(node_id)
            return proc is not None and proc.pid is not None and self.is_alive(node_id) and is_stopped(proc.pid)

    def pid(self, node_id: str) -> int | None:
        with self._lock:
            proc = self._procs.get(node_id)
            return proc.pid if proc is not None and self.is_alive(node_id) else None

    def exit_codes(self, node_id: str) -> list[int]:
        """Exit codes of the node's processes so far, oldest first (owned mode)."""
        with self._lock:
            proc = self._procs.get(node_id)
            return list(proc.exit_codes) if proc is not None else []

    def respawns(self, node_id: str) -> int:
        with self._lock:
            proc = self._procs.get(node_id)
            return proc.respawns if proc is not None else 0

    def _signal(self, node_id: str, sig: signal.Signals) -> bool:
        with self._lock:
            self._node(node_id)
            if not self.is_alive(node_id):
                return False
            proc = self._procs[node_id]
            assert proc.pid is not None
            try:
                os.kill(proc.pid, sig)
            except ProcessLookupError:
                return False
            return True

    def kill(self, node_id: str, *, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
        """SIGKILL the node (a crash: unsynced writes in its page cache survive,
        as they do when a real process dies). Waits until it is gone; returns
        its exit code (owned mode) or None. The node is not respawned."""
        with self._lock:
            proc = self._procs.get(node_id)
            if proc is not None:
                proc.stopping = True
                proc.respawn_at = None
            sent = self._signal(node_id, signal.SIGKILL)
        if sent:
            self._log.info("killed %s", node_id)
        return self._wait_gone(node_id, timeout_s)

    def pause(self, node_id: str, *, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGSTOP the node: it neither runs handlers nor reads its sockets.
        Returns once the kernel reports it stopped (signals are asynchronous)."""
        if self._signal(node_id, signal.SIGSTOP):
            self._wait_stopped(node_id, True, timeout_s)
            self._log.info("paused %s", node_id)

    def resume(self, node_id: str, *, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGCONT a paused node (a no-op for one that is not paused)."""
        if self.is_paused(node_id) and self._signal(node_id, signal.SIGCONT):
            self._wait_stopped(node_id, False, timeout_s)
            self._log.info("resumed %s", node_id)

    def _wait_stopped(self, node_id: str, stopped: bool, timeout_s: float) -> None:
        if not os.path.isdir("/proc"):
            return  # no way to observe it; the signal is on its way
        deadline = time.monotonic() + timeout_s
        while self.is_alive(node_id) and self.is_paused(node_id) != stopped:
            if time.monotonic() >= deadline:
                raise ClusterError(f"node {node_id} not {'stopped' if stopped else 'running'} after {timeout_s} s")
            time.sleep(0.001)

    def stop_node(self, node_id: str, *, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM the node (SIGKILL after ``timeout_s``); returns its exit code
        (owned mode) or None. The node is not respawned."""
        with self._lock:
            proc = self._procs.get(node_id)
            if proc is not None:
                proc.stopping = True
                proc.respawn_at = None
            sent = self._signal(node_id, signal.SIGTERM)
            self._signal(node_id, signal.SIGCONT)  # a paused node must run to handle SIGTERM
        if not sent:
            return self._wait_gone(node_id, 0.0)
        code = self._wait_gone(node_id, timeout_s)
        if self.is_alive(node_id):
            self._log.info("%s ignored SIGTERM for %s s: killing", node_id, timeout_s)
            return self.kill(node_id)
        self._log.info("stopped %s (exit code %s)", node_id, code)
        return code

    def restart(self, node_id: str, *, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Stop the node if it runs (SIGTERM), then start it again over its data."""
        if self.is_alive(node_id):
            self.stop_node(node_id)
        self.start([node_id], timeout_s=timeout_s)

    def wait_exit(self, node_id: str, timeout_s: float) -> int | None:
        """Wait until the node has exited for good (with ``respawn``, until it
        exits with 0 or runs out of respawns); its last exit code, or None on
        timeout. Owned mode only.

        Raises:
            LocalProtocolError: a detached cluster (exit codes are unknown).
        """
        if self.detach:
            raise LocalProtocolError("wait_exit needs an owned cluster: a detached node's exit code is unknown")
        self._node(node_id)
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                proc = self._procs.get(node_id)
                if proc is None:
                    raise LocalProtocolError(f"node {node_id!r} was never started")
                self._reap(proc)
                if proc.done:
                    return proc.exit_codes[-1] if proc.exit_codes else None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._changed.wait(min(remaining, MONITOR_INTERVAL_MS / 1000.0))

    def _wait_gone(self, node_id: str, timeout_s: float) -> int | None:
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                proc = self._procs.get(node_id)
                if proc is None:
                    return None
                if proc.popen is not None:
                    try:
                        proc.popen.wait(timeout=max(0.0, min(_POLL_S, deadline - time.monotonic())))
                    except subprocess.TimeoutExpired:
                        pass
                    self._reap(proc)
                if not self.detach:
                    if proc.popen is None:  # reaped, here or by the monitor
                        return proc.exit_codes[-1] if proc.exit_codes else None
                elif not self.is_alive(node_id):
                    proc.done = True
                    self._write_state()
                    return None
            if time.monotonic() >= deadline:
                return None
            time.sleep(_POLL_S)

    def _reap(self, proc: _Proc) -> None:
        """Record the exit of an owned process; respawn or mark it done
        (caller holds the lock)."""
        popen = proc.popen
        if popen is None:
            return
        code = popen.poll()
        if code is None:
            return
        proc.popen = None
        proc.exit_codes.append(code)
        self._log.info("%s pid %d exited with %d", proc.node_id, popen.pid, code)
        if proc.respawn and not proc.stopping and code != 0 and proc.respawns < RESPAWNS_MAX:
            proc.respawn_at = time.monotonic() + RESPAWN_DELAY_MS / 1000.0
        else:
            proc.done = True
        self._changed.notify_all()

    def _watch(self) -> None:
        """Monitor thread (owned mode): reap exits, run pending respawns."""
        while not self._monitor_stop.wait(MONITOR_INTERVAL_MS / 1000.0):
            with self._lock:
                now = time.monotonic()
                for proc in list(self._procs.values()):
                    self._reap(proc)
                    if proc.respawn_at is not None and now >= proc.respawn_at and not proc.stopping:
                        proc.respawns += 1
                        self._log.info("respawning %s (respawn %d)", proc.node_id, proc.respawns)
                        self._spawn(proc.node_id)
                        self._write_state()
                        self._changed.notify_all()

    def stop(self, *, timeout_s: float = STOP_TIMEOUT_S) -> dict[str, int | None]:
        """Stop every node (SIGTERM, then SIGKILL after ``timeout_s``) and the
        monitor. Returns each node's exit code (None if unknown)."""
        with self._lock:
            running = [nid for nid in self._procs if self.is_alive(nid)]
            for proc in self._procs.values():
                proc.stopping = True
                proc.respawn_at = None
            for nid in running:
                self._signal(nid, signal.SIGTERM)
                self._signal(nid, signal.SIGCONT)
        codes: dict[str, int | None] = {}
        deadline = time.monotonic() + timeout_s
        for nid in running:
            codes[nid] = self._wait_gone(nid, max(0.0, deadline - time.monotonic()))
            if self.is_alive(nid):
                codes[nid] = self.kill(nid)
        self._monitor_stop.set()
        if self._monitor is not None:
            self._monitor.join()
            self._monitor = None
        self._monitor_stop.clear()
        with self._lock:
            for proc in self._procs.values():
                self._reap(proc)
                proc.done = True
            self._write_state()
            if self._zygote is not None:
                self._zygote.close()
                self._zygote = None
        if running:
            self._log.info("stopped %s", ", ".join(running))
        return codes

    def _write_state(self) -> None:
        state = {
            "config": str(self.config_path),
            "supervisor_pid": None if self.detach else os.getpid(),
            "nodes": {nid: {"pid": p.pid if not p.done else None} for nid, p in self._procs.items()},
        }
        path = self.run_dir / STATE_FILE_NAME
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        os.replace(tmp, path)

    # -- faults -------------------------------------------------------------------------------
    def faults(self, node_id: str) -> Faults:
        """The fault state last set for ``node_id``."""
        path = self.node_dir(node_id) / FAULTS_FILE_NAME
        try:
            return Faults.from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            return NO_FAULTS

    def set_faults(self, node_id: str, faults: Faults, *, timeout_s: float = 2.0) -> bool:
        """Set node ``node_id``'s fault state: saved to its ``faults.json``
        (read at start), then sent as a ``runtime.SetFaults`` control message.
        Returns whether the running node acknowledged it (a paused node gets
        it when resumed; a stopped one when started)."""
        self._node(node_id)
        path = self.node_dir(node_id) / FAULTS_FILE_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(faults.to_json()) + "\n")
        os.replace(tmp, path)
        self._log.info("faults of %s: %s", node_id, faults.to_json())
        if not self.is_alive(node_id):
            return False
        try:
            if self.is_paused(node_id):
                return False  # a node re-reads faults.json when resumed (SIGCONT)
            reply = _client.call(self.addr(node_id), SetFaults(faults=faults), timeout_s,
                                 credentials=self.credentials)
        except (OSError, RemoteProtocolError):  # down, or something else answers on its address
            return False
        return type(reply) is FaultsSet and reply.faults == faults

    def _update_faults(self, node_ids: Iterable[str], **changes: Any) -> None:
        for nid in node_ids:
            self.set_faults(nid, msgspec.structs.replace(self.faults(nid), **changes))

    def partition(self, *groups: Iterable[str]) -> None:
        """Split the cluster: nodes in different groups cannot exchange
        messages; nodes named in no group form one more group."""
        sets = [set(g) for g in groups]
        named = set().union(*sets) if sets else set()
        for nid in named:
            self._node(nid)
        rest = set(self.node_ids) - named
        if rest:
            sets.append(rest)
        for group in sets:
            others = tuple(sorted(set(self.node_ids) - group))
            self._update_faults(sorted(group), blocked_out=others, blocked_in=others)

    def partition_one_way(self, srcs: Iterable[str], dsts: Iterable[str]) -> None:
        """Block messages from each of ``srcs`` to each of ``dsts`` (only that way)."""
        srcs, dsts = sorted(set(srcs)), sorted(set(dsts))
        for nid in srcs:
            f = self.faults(nid)
            self._update_faults([nid], blocked_out=tuple(sorted(set(f.blocked_out) | set(dsts))))
        for nid in dsts:
            f = self.faults(nid)
            self._update_faults([nid], blocked_in=tuple(sorted(set(f.blocked_in) | set(srcs))))

    def isolate(self, node_id: str) -> None:
        """Cut ``node_id`` off from every other node."""
        self.partition([node_id])

    def heal(self) -> None:
        """Remove every partition (drop and delay stay as set)."""
        self._update_faults(self.node_ids, blocked_out=(), blocked_in=())

    def drop(self, probability: float, node_ids: Iterable[str] | None = None) -> None:
        """Drop each message the given nodes (default: all) send to peers with ``probability``."""
        if not 0.0 <= probability <= 1.0:
            raise ConfigError(f"drop probability must be in [0, 1], got {probability}")
        self._update_faults(node_ids if node_ids is not None else self.node_ids, drop_probability=float(probability))

    def delay(self, delay_ms: float, node_ids: Iterable[str] | None = None) -> None:
        """Delay each message the given nodes (default: all) send to peers by ``delay_ms``."""
        if not 0.0 <= delay_ms <= 3_600_000.0:
            raise ConfigError(f"delay must be in [0, 3600000] ms, got {delay_ms}")
        self._update_faults(node_ids if node_ids is not None else self.node_ids, delay_ms=float(delay_ms))

    def clear_faults(self) -> None:
        """No faults anywhere (nodes whose saved state is already clear are
        left alone)."""
        for nid in self.node_ids:
            if not self.faults(nid).is_clear:
                self.set_faults(nid, NO_FAULTS)

    # -- talking to nodes ------------------------------------------------------------------
    def call(self, node_id: str, request: Any, timeout_s: float, *, client_id: str | None = None) -> Any | None:
        """A client call to node ``node_id`` (see :func:`synod.runtime.client.call`;
        a retry of a request that is not idempotent passes the same ``client_id``)."""
        return _client.call(self.addr(node_id), request, timeout_s, client_id=client_id,
                            credentials=self.credentials)

    def client(self, node_id: str, *, client_id: str | None = None) -> _client.Client:
        """A :class:`~synod.runtime.client.Client` connection to node ``node_id``
        under ``client_id`` (default: a fresh id; see :class:`~synod.runtime.client.Session`)."""
        return _client.Client(self.addr(node_id), client_id=client_id, credentials=self.credentials)

    def status(self, *, timeout_s: float = 0.5) -> dict[str, NodeState]:
        """Every configured node's process and, if it answers, its own status."""
        out = {}
        for nid in self.node_ids:
            alive = self.is_alive(nid)
            paused = alive and self.is_paused(nid)
            with self._lock:
                proc = self._procs.get(nid)
            out[nid] = NodeState(
                node_id=nid, addr=self.addr(nid), pid=self.pid(nid), alive=alive, paused=paused,
                exit_codes=tuple(self.exit_codes(nid)), respawns=proc.respawns if proc is not None else 0,
                faults=self.faults(nid),
                status=self._status_call(nid, timeout_s) if alive and not paused else None,
            )
        return out
