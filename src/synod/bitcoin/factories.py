"""Cluster-config factory (DESIGN.md section 9): a full node, or a miner
when its params give it a hash share. Its params are the node's own
config struct, :class:`~synod.bitcoin.node.BitcoinConfig`."""

from __future__ import annotations

from typing import Any

from synod.bitcoin.node import BitcoinConfig, BitcoinNode
from synod.core import parse_params

__all__ = ["bitcoin_factory", "BITCOIN_FACTORY"]

BITCOIN_FACTORY = "synod.bitcoin.factories:bitcoin_factory"


def bitcoin_factory(node_id: str, params: dict[str, Any]) -> BitcoinNode:
    """Cluster-config factory ``synod.bitcoin.factories:bitcoin_factory``.

    Raises:
        ConfigError: params that are not a :class:`BitcoinConfig`.
    """
    return BitcoinNode(parse_params(params, BitcoinConfig))
