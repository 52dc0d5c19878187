"""The real runtime (DESIGN.md section 6): each node in its own OS process,
asyncio TCP between them, files on disk with fsync, a local supervisor and a
fault layer in the transport.

- :mod:`~synod.runtime.config`: the cluster config file and how to write one;
- :class:`RealHost` / :func:`run_node`: one node in one process;
- :class:`FileDisk`: ``ctx.disk`` on a real file system;
- :class:`Transport`: frames, peer links, clients, the fault layer;
- :class:`LocalCluster`: start, kill, pause, partition... a cluster;
- :mod:`~synod.runtime.client`: call a node from outside;
- :mod:`~synod.runtime.auth`: the cluster key every connection proves
  (:class:`Credentials`), and :mod:`~synod.runtime.tls` for TLS.

The names below are loaded lazily (PEP 562): a node process imports
``synod.runtime.host`` and must not pay for the supervisor
(:mod:`~synod.runtime.cluster`, subprocess, threads) or the client it never
uses; ``from synod.runtime import LocalCluster`` works as before.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from synod.runtime.auth import AuthenticationFailed, Credentials
    from synod.runtime.client import Client, call, call_async
    from synod.runtime.cluster import ClusterError, LocalCluster, NodeState
    from synod.runtime.config import (
        ClusterConfig,
        ClusterSpec,
        NodeConfig,
        NodeSpec,
        free_ports,
        load_config,
        local_spec,
        parse_config,
        write_config,
    )
    from synod.runtime.disk import FileDisk
    from synod.runtime.host import RealHost, run_node
    from synod.runtime.messages import NO_FAULTS, Faults, FaultsSet, SetFaults, Status, StatusRequest
    from synod.runtime.transport import Transport

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(("AuthenticationFailed", "Credentials"), "synod.runtime.auth"),
    **dict.fromkeys(("Client", "call", "call_async"), "synod.runtime.client"),
    **dict.fromkeys(("ClusterError", "LocalCluster", "NodeState"), "synod.runtime.cluster"),
    **dict.fromkeys(("ClusterConfig", "ClusterSpec", "NodeConfig", "NodeSpec", "free_ports", "load_config",
                     "local_spec", "parse_config", "write_config"), "synod.runtime.config"),
    "FileDisk": "synod.runtime.disk",
    **dict.fromkeys(("RealHost", "run_node"), "synod.runtime.host"),
    **dict.fromkeys(("NO_FAULTS", "Faults", "FaultsSet", "SetFaults", "Status", "StatusRequest"),
                    "synod.runtime.messages"),
    "Transport": "synod.runtime.transport",
}

__all__ = [
    "AuthenticationFailed", "Credentials", "Client", "call", "call_async", "ClusterError", "LocalCluster", "NodeState",
    "ClusterConfig",
    "ClusterSpec", "NodeConfig", "NodeSpec", "free_ports", "load_config", "local_spec", "parse_config",
    "write_config", "FileDisk", "RealHost", "run_node", "NO_FAULTS", "Faults", "FaultsSet", "SetFaults",
    "Status", "StatusRequest", "Transport",
]
assert sorted(__all__) == sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
