"""A GFS cell as real processes on 127.0.0.1 (issue 13 sections 4-5): the
cluster spec of a master, its shadows and chunkservers, and a
:class:`~synod.gfs.client.GfsClient` driven over their ports
(:class:`~synod.runtime.driver.Driver`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from synod.gfs.factories import CHUNKSERVER_FACTORY, MASTER_FACTORY
from synod.runtime.config import ClusterSpec, NodeSpec, free_ports

__all__ = ["cell_spec", "MASTER_ID", "masters_of", "chunkservers_of"]

MASTER_ID = "master"


def masters_of(shadows: int) -> tuple[str, ...]:
    return (MASTER_ID,) + tuple(f"shadow{i}" for i in range(1, shadows + 1))


def chunkservers_of(n: int) -> tuple[str, ...]:
    return tuple(f"cs{i}" for i in range(1, n + 1))


def cell_spec(run_dir: str | os.PathLike[str], *, chunkservers: int = 5, shadows: int = 2, racks: int = 2,
              chunk_size_bytes: int = 64 * 1024 * 1024, lease_ms: int = 60_000, heartbeat_ms: int = 1_000,
              chunkserver_timeout_ms: int = 10_000, rpc_timeout_ms: int = 1_000, **options: Any) -> ClusterSpec:
    """The spec of a cell: ``master``, ``shadow1..``, ``cs1..`` (chunkserver
    ``i`` on rack ``i % racks``); ``rpc_timeout_ms``: the servers' calls to
    each other (a client's to the master should wait several of them: a
    lease may take a few rounds); ``options`` are ClusterSpec fields."""
    masters = masters_of(shadows)
    ids = list(masters) + list(chunkservers_of(chunkservers))
    # Ports chosen here, so the masters can tell clients that know only the master's address
    # (gfs://HOST:PORT) where everything else is.
    ports = dict(zip(ids, free_ports(len(ids)), strict=True))
    addresses = {n: f"127.0.0.1:{ports[n]}" for n in ids}
    common = {"chunk_size_bytes": chunk_size_bytes, "lease_ms": lease_ms, "chunkserver_timeout_ms": chunkserver_timeout_ms,
              "tick_ms": min(1_000, heartbeat_ms * 2), "rpc_timeout_ms": rpc_timeout_ms, "addresses": addresses}
    nodes = {MASTER_ID: NodeSpec(factory=MASTER_FACTORY, params={"shadows": list(masters[1:]), **common},
                                 port=ports[MASTER_ID])}
    for s in masters[1:]:
        nodes[s] = NodeSpec(factory=MASTER_FACTORY, params={"master": MASTER_ID, **common}, port=ports[s])
    for i, cs in enumerate(chunkservers_of(chunkservers), start=1):
        nodes[cs] = NodeSpec(factory=CHUNKSERVER_FACTORY, port=ports[cs], params={
            "masters": list(masters), "rack": f"rack{i % racks}", "chunk_size_bytes": chunk_size_bytes,
            "heartbeat_ms": heartbeat_ms, "rpc_timeout_ms": rpc_timeout_ms})
    return ClusterSpec(run_dir=Path(run_dir), nodes=nodes, **options)
