"""Typed params -> nodes, for the runtime's cluster config (DESIGN.md
section 9): the master (and its shadows) and the chunkservers."""

from __future__ import annotations

from typing import Any

from synod.core import Params, parse_params
from synod.gfs import constants as C
from synod.gfs.chunkserver import ChunkserverConfig, ChunkserverNode
from synod.gfs.master import MasterConfig, MasterNode

__all__ = ["MasterParams", "ChunkserverParams", "master_factory", "chunkserver_factory", "MASTER_FACTORY",
           "CHUNKSERVER_FACTORY"]

MASTER_FACTORY = "synod.gfs.factories:master_factory"
CHUNKSERVER_FACTORY = "synod.gfs.factories:chunkserver_factory"


class MasterParams(Params):
    """:class:`~synod.gfs.master.MasterConfig` as config params: ``shadows``
    on the master, ``master`` on a shadow; times in ms."""

    shadows: tuple[str, ...] = ()
    master: str | None = None
    chunk_size_bytes: int = C.CHUNK_SIZE_BYTES_DEFAULT
    replication_default: int = C.REPLICATION_GOAL_DEFAULT
    lease_ms: int = C.LEASE_DURATION_MS
    chunkserver_timeout_ms: int = C.CHUNKSERVER_TIMEOUT_MS
    tick_ms: int = C.MASTER_TICK_MS
    deleted_retention_ms: int = C.DELETED_RETENTION_MS
    checkpoint_records: int = C.CHECKPOINT_RECORDS
    rpc_timeout_ms: int = C.RPC_TIMEOUT_MS
    addresses: dict[str, str] = {}   # node id -> "host:port", for clients that know only the master

    def __post_init__(self) -> None:
        if len(self.addresses) > C.SERVERS_MAX:
            raise ValueError(f"addresses: at most {C.SERVERS_MAX}")
        if self.rpc_timeout_ms <= 0:
            raise ValueError("rpc_timeout_ms must be > 0")
        if self.chunk_size_bytes < C.CHUNK_SIZE_BYTES_MIN or self.chunk_size_bytes % C.BLOCK_SIZE_BYTES:
            raise ValueError(f"chunk_size_bytes must be a multiple of {C.BLOCK_SIZE_BYTES}")
        if not 1 <= self.replication_default <= C.REPLICATION_GOAL_MAX:
            raise ValueError(f"replication_default must be within 1..{C.REPLICATION_GOAL_MAX}")
        if min(self.lease_ms, self.chunkserver_timeout_ms, self.tick_ms, self.checkpoint_records) <= 0:
            raise ValueError("lease_ms, chunkserver_timeout_ms, tick_ms and checkpoint_records must be > 0")
        if self.master is not None and self.shadows:
            raise ValueError("a shadow (master set) has no shadows")


class ChunkserverParams(Params):
    """:class:`~synod.gfs.chunkserver.ChunkserverConfig` as config params."""

    masters: tuple[str, ...]
    rack: str = "rack0"
    capacity_bytes: int = 1 << 40
    chunk_size_bytes: int = C.CHUNK_SIZE_BYTES_DEFAULT
    heartbeat_ms: int = C.HEARTBEAT_INTERVAL_MS
    scrub_interval_ms: int = C.SCRUB_INTERVAL_MS
    rpc_timeout_ms: int = C.RPC_TIMEOUT_MS

    def __post_init__(self) -> None:
        if not self.masters:
            raise ValueError("masters: the master's id first")
        if self.chunk_size_bytes < C.CHUNK_SIZE_BYTES_MIN or self.chunk_size_bytes % C.BLOCK_SIZE_BYTES:
            raise ValueError(f"chunk_size_bytes must be a multiple of {C.BLOCK_SIZE_BYTES}")
        if min(self.heartbeat_ms, self.scrub_interval_ms, self.capacity_bytes, self.rpc_timeout_ms) <= 0:
            raise ValueError("heartbeat_ms, scrub_interval_ms, capacity_bytes and rpc_timeout_ms must be > 0")


def master_factory(node_id: str, params: dict[str, Any]) -> MasterNode:
    """Cluster-config factory ``synod.gfs.factories:master_factory``.

    Raises:
        ConfigError: params that are not :class:`MasterParams`.
    """
    p = parse_params(params, MasterParams)
    return MasterNode(MasterConfig(shadows=p.shadows, master=p.master, chunk_size_bytes=p.chunk_size_bytes,
                                   replication_default=p.replication_default, lease_ms=p.lease_ms,
                                   chunkserver_timeout_ms=p.chunkserver_timeout_ms, tick_ms=p.tick_ms,
                                   deleted_retention_ms=p.deleted_retention_ms,
                                   checkpoint_records=p.checkpoint_records, rpc_timeout_ms=p.rpc_timeout_ms,
                                   addresses=tuple(sorted(p.addresses.items()))))


def chunkserver_factory(node_id: str, params: dict[str, Any]) -> ChunkserverNode:
    """Cluster-config factory ``synod.gfs.factories:chunkserver_factory``.

    Raises:
        ConfigError: params that are not :class:`ChunkserverParams`.
    """
    p = parse_params(params, ChunkserverParams)
    return ChunkserverNode(ChunkserverConfig(masters=p.masters, rack=p.rack, capacity_bytes=p.capacity_bytes,
                                             chunk_size_bytes=p.chunk_size_bytes, heartbeat_ms=p.heartbeat_ms,
                                             scrub_interval_ms=p.scrub_interval_ms,
                                             rpc_timeout_ms=p.rpc_timeout_ms))
