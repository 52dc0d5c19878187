"""The memcache tier on real processes (issue 11 sections 4 and 5;
Nishtala et al., NSDI 2013, Figure 2 and sections 3.3, 4.1, 4.2).

Theory of operation. :class:`TierLayout` names the nodes of one region's
tier, as ``synod memcache up`` starts it and the real-process fault test
runs it, each a process of a :class:`~synod.runtime.LocalCluster`:

- per frontend cluster ``f<c>``: ``servers`` cache servers
  ``f<c>-mc<j>`` and one router ``f<c>-router`` (mcrouter's role) whose
  default pool is that cluster's servers;
- a regional pool ``region-mc<j>`` (4.2) shared by every router: keys
  starting with :data:`REGIONAL_PREFIX` (``r:``) are routed to it, so they
  are cached once per region, not once per cluster;
- a gutter pool ``gutter-mc<j>`` (3.3) every router names as its gutter;
- one database ``db`` and one ``mcsqueal`` that tails its commit log and
  deletes every written key through every cluster's router (4.1).

Every cache server and router serves memcached's protocol on its own port
(``client_ports["memcache"]``), so any memcached client talks to any of them.
:func:`tier_spec` writes the cluster spec; with a base port P the cache
servers listen on P, P+1, ... in :attr:`TierLayout.cache_servers` order, the
routers after them, then the database's node port (the others, node ports,
are free ones). The database is reached with a synod client call
(:func:`db_write`, :func:`db_read`: ``DbWrite`` / ``DbRead`` on its node
port, proving the cluster key), as a web server's storage client would.

The database's and mcsqueal's cluster-config factories are in
:mod:`synod.memcache.factories`.
:func:`memcache_call` is a few lines of memcached text protocol for the CLI
(``version``, ``stats``), so it needs no memcached client library.
"""

from __future__ import annotations

import json
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from synod.core import decode, scan_records
from synod.core.errors import RemoteProtocolError
from synod.memcache.factories import DATABASE_FACTORY, MCSQUEAL_FACTORY
from synod.memcache.mcsqueal import CURSOR_PATH
from synod.memcache.messages import DbCommitted, DbRead, DbRow, DbWrite, McsquealCursor
from synod.memcache.node import FACTORY as CACHE_FACTORY
from synod.memcache.router import FACTORY as ROUTER_FACTORY
from synod.runtime import LocalCluster
from synod.runtime.config import ClusterSpec, NodeSpec

__all__ = ["TierLayout", "tier_spec", "db_write", "db_read",
           "memcache_call", "stats_of", "version_of", "mcsqueal_acked_seq", "save_layout", "load_layout", "REGIONAL_PREFIX",
           "DATABASE_ID", "MCSQUEAL_ID", "DATABASE_FACTORY", "MCSQUEAL_FACTORY", "TIER_FILE_NAME",
           "CLUSTERS_MAX", "SERVERS_MAX"]

REGIONAL_PREFIX = "r:"            # keys routed to the regional pool (4.2)
DATABASE_ID = "db"
MCSQUEAL_ID = "mcsqueal"
TIER_FILE_NAME = "memcache-tier.json"  # the layout, next to cluster-config.json
CLUSTERS_MAX = 8                  # frontend clusters in one local tier
SERVERS_MAX = 32                  # cache servers per frontend cluster (and in the regional / gutter pool)
REPLY_BYTES_MAX = 1 << 20         # what memcache_call reads before giving up on a reply
CALL_TIMEOUT_S = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class TierLayout:
    """The nodes of a local tier (see the module docstring).

    Raises:
        ValueError: a count out of range (1..CLUSTERS_MAX clusters,
            1..SERVERS_MAX servers per pool).
    """

    clusters: int = 2
    servers: int = 3
    regional_servers: int = 2
    gutter_servers: int = 1
    memory_limit_mb: int = 64
    gutter_memory_limit_mb: int = 8

    def __post_init__(self) -> None:
        if not 1 <= self.clusters <= CLUSTERS_MAX:
            raise ValueError(f"clusters must be within 1..{CLUSTERS_MAX}, got {self.clusters}")
        for name in ("servers", "regional_servers", "gutter_servers"):
            if not 1 <= getattr(self, name) <= SERVERS_MAX:
                raise ValueError(f"{name} must be within 1..{SERVERS_MAX}, got {getattr(self, name)}")
        if self.memory_limit_mb < 1 or self.gutter_memory_limit_mb < 1:
            raise ValueError("memory limits must be at least 1 MiB")

    def frontend(self, c: int) -> tuple[str, ...]:
        """The cache servers of frontend cluster ``c`` (1-based)."""
        assert 1 <= c <= self.clusters, c
        return tuple(f"f{c}-mc{j}" for j in range(1, self.servers + 1))

    def router(self, c: int) -> str:
        assert 1 <= c <= self.clusters, c
        return f"f{c}-router"

    @property
    def routers(self) -> tuple[str, ...]:
        return tuple(self.router(c) for c in range(1, self.clusters + 1))

    @property
    def regional(self) -> tuple[str, ...]:
        return tuple(f"region-mc{j}" for j in range(1, self.regional_servers + 1))

    @property
    def gutter(self) -> tuple[str, ...]:
        return tuple(f"gutter-mc{j}" for j in range(1, self.gutter_servers + 1))

    @property
    def cache_servers(self) -> tuple[str, ...]:
        """Every cache server, in port order: the clusters', regional, gutter."""
        front = tuple(s for c in range(1, self.clusters + 1) for s in self.frontend(c))
        return front + self.regional + self.gutter

    @property
    def ports_used(self) -> int:
        """Ports from the base port: cache servers, routers, the database."""
        return len(self.cache_servers) + self.clusters + 1

    def roles(self) -> dict[str, str]:
        """node id -> role, in port order (``cache f1``, ``regional``,
        ``gutter``, ``router f1``, ``database``, ``mcsqueal``)."""
        out = {s: f"cache f{c}" for c in range(1, self.clusters + 1) for s in self.frontend(c)}
        out.update(dict.fromkeys(self.regional, "regional"))
        out.update(dict.fromkeys(self.gutter, "gutter"))
        out.update({self.router(c): f"router f{c}" for c in range(1, self.clusters + 1)})
        out[DATABASE_ID] = "database"
        out[MCSQUEAL_ID] = "mcsqueal"
        return out

    def router_params(self, c: int, **overrides: Any) -> dict[str, Any]:
        """The :class:`~synod.memcache.router.RouterParams` of cluster ``c``'s
        router: its cluster's pool by default, ``r:`` keys to the regional
        pool, the gutter pool; ``overrides`` (timeouts) on top."""
        params: dict[str, Any] = {
            "pools": {f"f{c}": list(self.frontend(c)), "regional": list(self.regional),
                      "gutter": list(self.gutter)},
            "default_pool": f"f{c}", "routes": [[REGIONAL_PREFIX, "regional"]], "gutter_pool": "gutter"}
        params.update(overrides)
        return params


def tier_spec(run_dir: str | Path, layout: TierLayout, *, base_port: int | None = None,
              router_overrides: dict[str, Any] | None = None, mcsqueal_params: dict[str, Any] | None = None,
              trace: bool = False) -> ClusterSpec:
    """The cluster spec of ``layout`` in ``run_dir`` (with a cluster key).
    ``base_port``: see the module docstring (None: free ports)."""
    def port(i: int) -> int:
        return 0 if base_port is None else base_port + i

    nodes: dict[str, NodeSpec] = {}
    for i, sid in enumerate(layout.cache_servers):
        mb = layout.gutter_memory_limit_mb if sid in layout.gutter else layout.memory_limit_mb
        nodes[sid] = NodeSpec(factory=CACHE_FACTORY, params={"memory_limit_mb": mb},
                              client_ports={"memcache": port(i)})
    first_router = len(layout.cache_servers)
    for c in range(1, layout.clusters + 1):
        nodes[layout.router(c)] = NodeSpec(factory=ROUTER_FACTORY,
                                           params=layout.router_params(c, **(router_overrides or {})),
                                           client_ports={"memcache": port(first_router + c - 1)})
    nodes[DATABASE_ID] = NodeSpec(factory=DATABASE_FACTORY, port=port(first_router + layout.clusters))
    nodes[MCSQUEAL_ID] = NodeSpec(factory=MCSQUEAL_FACTORY, params={
        "database": DATABASE_ID, "endpoints": list(layout.routers), **(mcsqueal_params or {})})
    return ClusterSpec(run_dir=run_dir, nodes=nodes, trace=trace)


def save_layout(run_dir: str | Path, layout: TierLayout, base_port: int | None) -> Path:
    """Write the layout next to the cluster config (``memcache-tier.json``)."""
    path = Path(run_dir) / TIER_FILE_NAME
    path.write_text(json.dumps({"layout": asdict(layout), "base_port": base_port}, indent=2) + "\n")
    return path


def load_layout(run_dir: str | Path) -> tuple[TierLayout, int | None] | None:
    """The layout and base port ``save_layout`` wrote, or None (no file, or not one)."""
    try:
        raw = json.loads((Path(run_dir) / TIER_FILE_NAME).read_text())
        return TierLayout(**raw["layout"]), raw.get("base_port")
    except (OSError, ValueError, KeyError, TypeError):
        return None


def db_write(cl: LocalCluster, key: bytes, value: bytes, *, timeout_s: float = 5.0) -> int | None:
    """Write a row through the database's node port; its new version once
    the commit record is synced, or None without an answer in time."""
    reply = cl.call(DATABASE_ID, DbWrite(key=key, value=value), timeout_s)
    return reply.version if isinstance(reply, DbCommitted) else None


def db_read(cl: LocalCluster, key: bytes, *, timeout_s: float = 5.0) -> DbRow | None:
    """Read a row (value None: no row), or None without an answer in time."""
    reply = cl.call(DATABASE_ID, DbRead(key=key), timeout_s)
    return reply if isinstance(reply, DbRow) else None


def mcsqueal_acked_seq(cl: LocalCluster) -> int:
    """mcsqueal's durable cursor, read from its data directory: every commit
    log record up to it had its deletes acknowledged by every router (0: no
    cursor yet, or one being rewritten)."""
    try:
        raw = (cl.data_dir(MCSQUEAL_ID) / CURSOR_PATH).read_bytes()
    except OSError:
        return 0
    scan = scan_records(raw)
    if scan.error is not None or len(scan.records) != 1:
        return 0
    try:
        return decode(scan.records[0], McsquealCursor).acked_seq
    except RemoteProtocolError:
        return 0


# -- a few lines of memcached protocol ---------------------------------------------------------

def memcache_call(port: int, line: bytes, ends: tuple[bytes, ...], *, host: str = "127.0.0.1",
                  timeout_s: float = CALL_TIMEOUT_S) -> bytes:
    """Send one command line on a new connection; the reply, read until it
    ends with one of ``ends``.

    Raises:
        OSError: cannot connect, no reply within ``timeout_s`` (per read), the
            connection closed first, or a reply over ``REPLY_BYTES_MAX``.
    """
    with socket.create_connection((host, port), timeout=timeout_s) as s:
        s.sendall(line + b"\r\n")
        buf = b""
        while not buf.endswith(ends):
            data = s.recv(65536)
            if not data:
                raise ConnectionError(f"{host}:{port} closed the connection before replying")
            buf += data
            if len(buf) > REPLY_BYTES_MAX:
                raise ConnectionError(f"{host}:{port}: reply over {REPLY_BYTES_MAX} bytes")
        return buf


def version_of(port: int, *, host: str = "127.0.0.1", timeout_s: float = CALL_TIMEOUT_S) -> str | None:
    """The ``version`` answer of the server on ``port``, or None."""
    try:
        reply = memcache_call(port, b"version", (b"\r\n",), host=host, timeout_s=timeout_s)
    except OSError:
        return None
    return reply[len(b"VERSION "):].strip().decode() if reply.startswith(b"VERSION ") else None


def stats_of(port: int, *, host: str = "127.0.0.1", timeout_s: float = CALL_TIMEOUT_S) -> dict[str, str] | None:
    """``stats`` of the server on ``port`` as name -> value, or None."""
    try:
        reply = memcache_call(port, b"stats", (b"END\r\n", b"ERROR\r\n"), host=host, timeout_s=timeout_s)
    except OSError:
        return None
    out = {}
    for line in reply.decode(errors="replace").splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[0] == "STAT":
            out[parts[1]] = parts[2]
    return out or None
