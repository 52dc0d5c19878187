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
"""

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

__all__ = [
    "AuthenticationFailed", "Credentials", "Client", "call", "call_async", "ClusterError", "LocalCluster", "NodeState",
    "ClusterConfig",
    "ClusterSpec", "NodeConfig", "NodeSpec", "free_ports", "load_config", "local_spec", "parse_config",
    "write_config", "FileDisk", "RealHost", "run_node", "NO_FAULTS", "Faults", "FaultsSet", "SetFaults",
    "Status", "StatusRequest", "Transport",
]
