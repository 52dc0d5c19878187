"""A Bitcoin network as real processes on 127.0.0.1 (issue 14 sections 2-4):
the cluster spec of full nodes and miners, their RPC credentials, and a
small JSON-RPC client for their ports.

Every node is a :class:`~synod.bitcoin.node.BitcoinNode` (factory
:data:`~synod.bitcoin.factories.BITCOIN_FACTORY`) peered with every other
over the runtime's transport; miners ``m1..`` split the hash power evenly
(their shares sum to 1), full nodes ``n1..`` have none. Each serves
Bitcoin's P2P protocol (regtest magic) on ``client_ports["p2p"]`` and
bitcoind's JSON-RPC on ``client_ports["rpc"]``. Mining is the simulator's
timer model (a block every ``block_interval_ms`` on average across the
network) with real double-SHA256 grinding to regtest's target.

RPC credentials are bitcoind's: user ``synod``, a random password kept in
``RUN_DIR/rpc.password`` (mode 0600, made once, like the cluster key), and
each node configured with only its ``rpcauth`` line (salted HMAC), so the
config holds no secret.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import secrets
from pathlib import Path
from typing import Any

from synod.bitcoin.factories import BITCOIN_FACTORY
from synod.bitcoin.rpc import rpc_auth_line
from synod.runtime.config import ClusterConfig, ClusterSpec, NodeSpec

__all__ = ["network_spec", "miners_of", "full_nodes_of", "rpc_credentials", "rpc_call", "RpcCallError", "is_network",
           "node_status", "RPC_USER", "PASSWORD_FILE", "NODES_MAX"]

RPC_USER = "synod"
PASSWORD_FILE = "rpc.password"
NODES_MAX = 32                  # nodes plus miners of one local network
RPC_TIMEOUT_S = 5.0
RPC_REPLY_BYTES_MAX = 64 * 1024 * 1024


def miners_of(n: int) -> tuple[str, ...]:
    return tuple(f"m{i}" for i in range(1, n + 1))


def full_nodes_of(n: int) -> tuple[str, ...]:
    return tuple(f"n{i}" for i in range(1, n + 1))


def rpc_credentials(run_dir: str | os.PathLike[str]) -> tuple[str, str]:
    """(user, password) of the network in ``run_dir``; the password file is
    made (mode 0600) if missing."""
    path = Path(run_dir) / PASSWORD_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(16) + "\n")
    return RPC_USER, path.read_text().strip()


def network_spec(run_dir: str | os.PathLike[str], *, nodes: int = 5, miners: int = 2, block_interval_ms: float = 2_000.0,
                 sync_interval_ms: float = 500.0, getdata_timeout_ms: float = 2_000.0, **options: Any) -> ClusterSpec:
    """The spec of ``nodes`` full nodes ``n1..`` and ``miners`` miners
    ``m1..`` (hash share 1/miners each), every one peered with every other,
    each with a P2P and an RPC client port (free ports); ``options`` are
    ClusterSpec fields.

    Raises:
        ValueError: no node at all, or more than ``NODES_MAX``.
    """
    ids = list(miners_of(miners)) + list(full_nodes_of(nodes))
    if not 1 <= len(ids) <= NODES_MAX or miners < 0 or nodes < 0:
        raise ValueError(f"a network of 1 to {NODES_MAX} nodes and miners, not {nodes} + {miners}")
    user, password = rpc_credentials(run_dir)
    auth = rpc_auth_line(user, secrets.token_hex(16), password)
    common = {"block_interval_ms": block_interval_ms, "sync_interval_ms": sync_interval_ms,
              "getdata_timeout_ms": getdata_timeout_ms, "rpc_auth": auth}
    specs = {}
    for nid in ids:
        share = 1.0 / miners if nid.startswith("m") else 0.0
        specs[nid] = NodeSpec(factory=BITCOIN_FACTORY, params={**common, "hash_share": share},
                              client_ports={"p2p": 0, "rpc": 0})
    options.setdefault("trace", False)
    return ClusterSpec(run_dir=run_dir, nodes=specs, **options)


def is_network(config: ClusterConfig) -> bool:
    """Whether every node of ``config`` is a Bitcoin node."""
    return bool(config.nodes) and all(n.factory == BITCOIN_FACTORY for n in config.nodes.values())


class RpcCallError(Exception):
    """A JSON-RPC error reply: bitcoind's ``code`` and ``message``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{message} ({code})")
        self.code = code
        self.message = message


def rpc_call(port: int, credentials: tuple[str, str], method: str, *params: Any, host: str = "127.0.0.1",
             timeout_s: float = RPC_TIMEOUT_S) -> Any:
    """One JSON-RPC call (as bitcoin-cli makes it); returns its result.

    Raises:
        RpcCallError: the node answered with an error.
        OSError: no answer (refused, reset, timed out), or not JSON-RPC.
    """
    token = base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode()).decode()
    body = json.dumps({"jsonrpc": "1.0", "id": "synod", "method": method, "params": list(params)})
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        conn.request("POST", "/", body, {"Authorization": f"Basic {token}", "Content-Type": "application/json"})
        response = conn.getresponse()
        raw = response.read(RPC_REPLY_BYTES_MAX)
    except http.client.HTTPException as e:
        raise OSError(f"RPC on port {port}: {e}") from None
    finally:
        conn.close()
    try:
        doc = json.loads(raw)
    except ValueError:
        raise OSError(f"RPC on port {port}: HTTP {response.status}, not JSON") from None
    if doc.get("error"):
        raise RpcCallError(doc["error"].get("code", 0), doc["error"].get("message", ""))
    return doc.get("result")


def node_status(port: int, credentials: tuple[str, str], timeout_s: float = 1.0) -> dict[str, Any] | None:
    """A node's height, tip, peers and mempool over RPC; None if it does not answer."""
    try:
        info = rpc_call(port, credentials, "getblockchaininfo", timeout_s=timeout_s)
        peers = rpc_call(port, credentials, "getpeerinfo", timeout_s=timeout_s)
        mempool = rpc_call(port, credentials, "getmempoolinfo", timeout_s=timeout_s)
    except (OSError, RpcCallError):
        return None
    return {"height": info["blocks"], "tip": info["bestblockhash"], "headers": info["headers"],
            "peers": sum(1 for p in peers if p.get("handshake_done")), "mempool": mempool["size"]}
