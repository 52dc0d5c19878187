"""Cluster-config factories (DESIGN.md section 9): the master (and its
shadows) and the chunkservers. Their params are the nodes' own config
structs, :class:`~synod.gfs.master.MasterConfig` and
:class:`~synod.gfs.chunkserver.ChunkserverConfig`."""

from __future__ import annotations

from typing import Any

from synod.core import parse_params
from synod.gfs.chunkserver import ChunkserverConfig, ChunkserverNode
from synod.gfs.master import MasterConfig, MasterNode

__all__ = ["master_factory", "chunkserver_factory", "MASTER_FACTORY", "CHUNKSERVER_FACTORY"]

MASTER_FACTORY = "synod.gfs.factories:master_factory"
CHUNKSERVER_FACTORY = "synod.gfs.factories:chunkserver_factory"


def master_factory(node_id: str, params: dict[str, Any]) -> MasterNode:
    """Cluster-config factory ``synod.gfs.factories:master_factory``.

    Raises:
        ConfigError: params that are not a :class:`MasterConfig`.
    """
    return MasterNode(parse_params(params, MasterConfig))


def chunkserver_factory(node_id: str, params: dict[str, Any]) -> ChunkserverNode:
    """Cluster-config factory ``synod.gfs.factories:chunkserver_factory``.

    Raises:
        ConfigError: params that are not a :class:`ChunkserverConfig`.
    """
    return ChunkserverNode(parse_params(params, ChunkserverConfig))
