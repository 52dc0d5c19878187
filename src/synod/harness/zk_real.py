"""A ZooKeeper ensemble on real processes (issue 12 section 4; Hunt et al.,
USENIX ATC 2010; Junqueira, Reed, Serafini, DSN 2011).

Theory of operation. An ensemble of N servers ``zk1..zkN`` is a
:class:`~synod.runtime.LocalCluster` whose nodes are
:class:`~synod.zk.server.ZkServerNode` (factory ``synod.zk.server:factory``),
every one a voter, ``server_index`` i (ZooKeeper's ``myid``, which seeds its
session ids). Each serves ZooKeeper's client protocol on its ``zk`` client
port; Zab runs between the node ports. :func:`ensemble_spec` writes the
spec: with a base port P, zk<i> listens for clients on P+i-1 (the node
ports are free ones), otherwise every port is a free one. ``synod zk up``,
the demo's ZooKeeper act and the CLI tests start ensembles with it.

An ensemble is recognised by its config alone (every node's factory is the
ZooKeeper server's), so no layout file is needed beside
``cluster-config.json``.

What a server says about itself comes two ways:

- :func:`zab_status`: ``ZabStatusRequest`` on its node port (a synod client
  call proving the cluster key): Zab's role, leader, epochs, last zxid, and
  whether a leader is *established* (it has finished synchronization and
  broadcasts, Zab phase 3);
- :func:`srvr`: the four-letter word ``srvr`` on its client port, as
  ZooKeeper answers it: ``Mode``, ``Zxid``, ``Connections`` (client
  connections, one session each) and ``Node count`` (znodes in its tree).
"""

from __future__ import annotations

import contextlib
import getpass
import platform
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from synod.runtime import LocalCluster
from synod.runtime.config import ClusterConfig, ClusterSpec, NodeSpec, free_ports, write_config
from synod.zab.messages import ZabStatus, ZabStatusRequest
from synod.zk.server import FACTORY, PROTOCOL

__all__ = ["ensemble_spec", "running_ensemble", "serving", "machine_environment", "server_ids", "is_ensemble",
           "client_ports", "hosts_of", "zab_status", "established_leader", "four_letter_word", "srvr", "zxid_text",
           "FACTORY", "PROTOCOL", "NODES_MAX", "TICK_MS"]

NODES_MAX = 9                     # servers in one local ensemble (ZooKeeper's are 3, 5 or 7); synod zk up --nodes: 1..9
TICK_MS = 100.0                   # tickTime of a local ensemble: sessions of 0.2..2 s ticks x [2, 20]
CALL_TIMEOUT_S = 1.0              # one status call's or four-letter word's wait
START_TIMEOUT_S = 20.0            # running_ensemble: a leader established and every server serving
POLL_S = 0.05                     # running_ensemble: how often it looks
REPLY_BYTES_MAX = 64 * 1024       # what four_letter_word reads before giving up


def server_ids(n: int) -> tuple[str, ...]:
    """The ids of an ensemble of ``n`` servers: zk1..zkn."""
    assert 1 <= n <= NODES_MAX, n
    return tuple(f"zk{i}" for i in range(1, n + 1))


def ensemble_spec(run_dir: Any, n: int, *, base_port: int | None = None, tick_ms: float = TICK_MS,
                  trace: bool = False, params: dict[str, Any] | None = None) -> ClusterSpec:
    """The cluster spec of ``n`` voting servers in ``run_dir`` (with a
    cluster key). ``base_port``: zk<i>'s client port is base_port+i-1
    (None: free ports, chosen now). Each server is told its client port,
    data directory and a few facts of this machine, which the four-letter
    words ``conf`` and ``envi`` print (the node itself reads none of them).
    ``params``: more :class:`~synod.zk.config.ZkServerParams` for every
    server (e.g. ``container_check_interval_ms``)."""
    ids = server_ids(n)
    ports = free_ports(n) if base_port is None else [base_port + i for i in range(n)]
    environment = machine_environment()
    nodes = {nid: NodeSpec(factory=FACTORY, params={"voters": list(ids), "server_index": i + 1, "tick_ms": tick_ms,
                                                    "client_port": ports[i],
                                                    "data_dir": str(Path(run_dir) / nid / "data"),
                                                    "environment": environment, **(params or {})},
                           client_ports={PROTOCOL: ports[i]})
             for i, nid in enumerate(ids)}
    return ClusterSpec(run_dir=run_dir, nodes=nodes, trace=trace)


@contextlib.contextmanager
def running_ensemble(run_dir: Any, n: int = 3, *, params: dict[str, Any] | None = None,
                     timeout_s: float = START_TIMEOUT_S) -> Iterator[tuple[LocalCluster, list[int]]]:
    """Start an ensemble of ``n`` servers (:func:`ensemble_spec`, free
    ports) in ``run_dir``, wait until a leader is established and every
    server serves clients (``isro`` answers ``rw``), yield the cluster and
    the client ports (zk1 first), and stop every process at the end,
    whatever happened.

    Raises:
        TimeoutError: not serving within ``timeout_s`` seconds.
    """
    config, _ = write_config(ensemble_spec(run_dir, n, params=params))
    cluster = LocalCluster(config)
    ports = list(client_ports(config).values())
    try:
        cluster.start(list(config.nodes))
        deadline = time.monotonic() + timeout_s
        while established_leader(cluster) is None or not serving(ports):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no established leader with every server serving within {timeout_s:g} s "
                                   f"(logs in {run_dir})")
            time.sleep(POLL_S)
        yield cluster, ports
    finally:
        cluster.stop()


def serving(ports: list[int]) -> bool:
    """Whether every server on ``ports`` serves clients (``isro`` is ``rw``:
    a leader established, or a follower synchronized with it)."""
    return all(four_letter_word(port, "isro") == "rw" for port in ports)


def machine_environment() -> dict[str, str]:
    """What ``envi`` shows of this machine, read here (outside the node):
    ZooKeeper's keys that mean the same for a Python process."""
    return {"zookeeper.version": "synod (ZooKeeper 3.8 protocol)", "host.name": socket.gethostname(),
            "os.name": platform.system(), "os.arch": platform.machine(), "os.version": platform.release(),
            "user.name": getpass.getuser(), "user.home": str(Path.home()),
            "python.version": platform.python_version()}


def is_ensemble(config: ClusterConfig) -> bool:
    """Whether every node of ``config`` is a ZooKeeper server."""
    return bool(config.nodes) and all(node.factory == FACTORY for node in config.nodes.values())


def client_ports(config: ClusterConfig) -> dict[str, int]:
    """node id -> ZooKeeper client port, in the config's order."""
    return {nid: node.client_ports[PROTOCOL] for nid, node in config.nodes.items() if PROTOCOL in node.client_ports}


def hosts_of(ports: dict[str, int] | list[int], host: str = "127.0.0.1") -> str:
    """A connect string as kazoo and zkCli.sh take it: ``127.0.0.1:P1,127.0.0.1:P2,...``."""
    values = ports.values() if isinstance(ports, dict) else ports
    return ",".join(f"{host}:{p}" for p in values)


def zxid_text(zxid: int) -> str:
    """A zxid as ZooKeeper prints it: ``0x<epoch><counter as 8 hex digits>``."""
    return f"0x{zxid:x}"


def zab_status(cl: LocalCluster, node_id: str, *, timeout_s: float = CALL_TIMEOUT_S) -> ZabStatus | None:
    """The server's :class:`~synod.zab.messages.ZabStatus`, or None (down,
    not answering in ``timeout_s`` seconds)."""
    try:
        reply = cl.call(node_id, ZabStatusRequest(), timeout_s)
    except OSError:
        return None
    return reply if isinstance(reply, ZabStatus) else None


def established_leader(cl: LocalCluster, node_ids: Any = None) -> tuple[str, ZabStatus] | None:
    """The server among ``node_ids`` (default all) that leads an established
    epoch (Zab phase 3, broadcast), with its status; the one of the highest
    epoch if two say so (an old leader not yet told), or None."""
    best = None
    for nid in node_ids if node_ids is not None else cl.node_ids:
        s = zab_status(cl, nid)
        if s is not None and s.role == "leading" and s.extra.get("established"):
            if best is None or s.current_epoch > best[1].current_epoch:
                best = (nid, s)
    return best


def four_letter_word(port: int, word: str, *, host: str = "127.0.0.1",
                     timeout_s: float = CALL_TIMEOUT_S) -> str | None:
    """Send a four-letter word (``ruok``, ``srvr``, ``stat``, ``isro``) on a
    new connection to the client port and return the answer, read until the
    server closes the connection; None if it cannot be reached or answers
    nothing in ``timeout_s`` seconds (per read)."""
    assert len(word) == 4, word
    buf = b""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as s:
            s.sendall(word.encode("ascii"))
            while len(buf) <= REPLY_BYTES_MAX:
                data = s.recv(65536)
                if not data:
                    break
                buf += data
    except OSError:
        if not buf:
            return None
    return buf.decode(errors="replace") if buf else None


def srvr(port: int, *, host: str = "127.0.0.1", timeout_s: float = CALL_TIMEOUT_S) -> dict[str, str] | None:
    """``srvr`` of the server on ``port`` as field -> text (``Mode``,
    ``Zxid``, ``Connections``, ``Node count`` ...), or None."""
    text = four_letter_word(port, "srvr", host=host, timeout_s=timeout_s)
    if text is None:
        return None
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields if "Mode" in fields else None
