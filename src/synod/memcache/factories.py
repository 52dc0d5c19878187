"""Typed params -> nodes, for the runtime's cluster config (DESIGN.md
section 9): the database and mcsqueal. The cache server's and the router's
factories live beside them (``synod.memcache.node:factory``,
``synod.memcache.router:factory``).
"""

from __future__ import annotations

from typing import Any

from synod.core import Params, parse_params
from synod.memcache import constants as C
from synod.memcache.database import DatabaseNode
from synod.memcache.mcsqueal import McsquealNode

__all__ = ["DatabaseParams", "McsquealParams", "database_factory", "mcsqueal_factory", "DATABASE_FACTORY",
           "MCSQUEAL_FACTORY"]

DATABASE_FACTORY = "synod.memcache.factories:database_factory"
MCSQUEAL_FACTORY = "synod.memcache.factories:mcsqueal_factory"


class DatabaseParams(Params):
    """The params of :func:`database_factory` (all optional): ``master``,
    the master region's database node id for a replica region's database
    fed by log shipping (None: this is the master, section 5), and
    ``shipping_interval_ms``, how often a replica pulls the master's log."""

    master: str | None = None
    shipping_interval_ms: float = C.LOG_SHIPPING_INTERVAL_MS

    def __post_init__(self) -> None:
        if self.shipping_interval_ms <= 0:
            raise ValueError("shipping_interval_ms must be > 0")
        if self.master == "":
            raise ValueError("master must be a node id")


class McsquealParams(Params):
    """The params of :func:`mcsqueal_factory`: ``database`` (node id),
    ``endpoints`` (routers or cache servers), and the
    :class:`~synod.memcache.mcsqueal.McsquealNode` options."""

    database: str
    endpoints: tuple[str, ...]
    batch_max: int = C.MCSQUEAL_BATCH_MAX
    batch_delay_ms: float = C.MCSQUEAL_BATCH_DELAY_MS
    retry_ms: float = C.MCSQUEAL_RETRY_MS
    invalidate: bool = False

    def __post_init__(self) -> None:
        if not self.endpoints:
            raise ValueError("endpoints: at least one")
        if not 1 <= self.batch_max <= C.COMMIT_LOG_TAIL_RECORDS_MAX:
            raise ValueError(f"batch_max must be within 1..{C.COMMIT_LOG_TAIL_RECORDS_MAX}")
        if self.batch_delay_ms <= 0 or self.retry_ms <= 0:
            raise ValueError("batch_delay_ms and retry_ms must be > 0")


def database_factory(node_id: str, params: dict[str, Any]) -> DatabaseNode:
    """Cluster-config factory ``synod.memcache.factories:database_factory``.

    Raises:
        ConfigError: params that are not :class:`DatabaseParams`.
    """
    p = parse_params(params, DatabaseParams)
    return DatabaseNode(master=p.master, shipping_interval_ms=p.shipping_interval_ms)


def mcsqueal_factory(node_id: str, params: dict[str, Any]) -> McsquealNode:
    """Cluster-config factory ``synod.memcache.factories:mcsqueal_factory``.

    Raises:
        ConfigError: params that are not :class:`McsquealParams`.
    """
    p = parse_params(params, McsquealParams)
    return McsquealNode(database=p.database, endpoints=p.endpoints, batch_max=p.batch_max,
                        batch_delay_ms=p.batch_delay_ms, retry_ms=p.retry_ms, invalidate=p.invalidate)
