"""Cluster configuration for the real runtime (DESIGN.md section 6).

A cluster is one JSON file::

    {
      "run_dir": "runs/demo",            # relative paths: to the file's folder
      "seed": 7,
      "fs_root": null,                   # or a folder for shared files (ctx.fs)
      "fs": null,                        # optional: ctx.fs as {"protocol": "gfs", "options": {...}}
                                         #   (any fsspec protocol; default the local file system)
      "frame_size_bytes_max": 67108864,  # optional
      "trace": true,                     # optional: ctx.trace -> <id>/trace.jsonl
      "trace_messages": false,           # optional: also trace every send/recv
      "key_file": "cluster.key",         # optional: the cluster key (relative: to run_dir)
      "tls": false,                      # optional: TLS between everyone (needs key_file)
      "allow_remote": false,             # optional: needed to listen beyond loopback
      "partial_frame_bytes_max": 268435456,  # optional: memory for frames being received
      "nodes": {
        "n1": {"host": "127.0.0.1", "port": 7001,
               "factory": "synod.runtime.testing:make_node", "params": {}}
      }
    }

A node is built by importing ``factory`` ("package.module:function") and
calling ``factory(node_id, params) -> synod.core.Node``. Each node's files
live under ``run_dir/<id>/``: ``data/`` (``ctx.disk``), ``node.log`` (the
process's output), ``trace.jsonl`` and ``faults.json`` (the fault state the
supervisor set, read at start).

Security (issue 8): with ``key_file``, every connection to a node's port must
prove it knows the cluster key (:mod:`synod.runtime.auth`); without it there
is no authentication, which is allowed only on loopback addresses. A node
whose host is not loopback (0.0.0.0, a LAN address, a host name other than
localhost) needs ``allow_remote: true`` and a ``key_file``; ``tls: true``
also encrypts (:mod:`synod.runtime.tls`). :func:`write_config` creates the
key (and with ``tls`` the certificates) in the run dir.

:func:`write_config` turns a :class:`ClusterSpec` (ports may be 0) into a
config file with free ports; :func:`local_spec` builds the spec of N alike
nodes.
"""

from __future__ import annotations

import importlib
import json
import os
import random
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synod.core.errors import ConfigError
from synod.core.node import Node
from synod.runtime.auth import KEY_FILE_NAME, TLS_DIR_NAME, Credentials, create_key_file, is_loopback
from synod.runtime.constants import FRAME_HEADER_BYTES, FRAME_SIZE_BYTES_MAX, PARTIAL_FRAME_BYTES_MAX

__all__ = [
    "NodeConfig",
    "ClusterConfig",
    "NodeSpec",
    "ClusterSpec",
    "load_config",
    "parse_config",
    "write_config",
    "local_spec",
    "free_ports",
    "import_factory",
    "build_node",
    "ensure_credentials",
    "CONFIG_FILE_NAME",
]

CONFIG_FILE_NAME = "cluster-config.json"
FREE_PORT_LOW = 10_000   # free_ports chooses from here up to the kernel's ephemeral range

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_FACTORY_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_TOP_KEYS = {"run_dir", "seed", "fs_root", "frame_size_bytes_max", "trace", "trace_messages", "nodes",
             "key_file", "tls", "allow_remote", "partial_frame_bytes_max", "fs"}
_PARTIAL_FRAME_BYTES_MIN = 64 * 1024
_PARTIAL_FRAME_BYTES_LIMIT = 1 << 40
_NODE_KEYS = {"host", "port", "factory", "params", "client_ports"}


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeConfig:
    """One node: where it listens and how it is built."""

    host: str
    port: int
    factory: str
    params: dict[str, Any] = field(default_factory=dict)
    # Client-facing protocol name (one of the node's ``client_protocols``) ->
    # the port its gateway serves on the node's host.
    client_ports: dict[str, int] = field(default_factory=dict)

    @property
    def addr(self) -> tuple[str, int]:
        return (self.host, self.port)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterConfig:
    """A validated cluster config; build with :func:`load_config` or
    :func:`parse_config`. ``nodes`` keeps the file's order, which is the order
    of ``ctx.peers``."""

    run_dir: Path
    seed: int
    fs_root: Path | None
    nodes: dict[str, NodeConfig]
    frame_size_bytes_max: int = FRAME_SIZE_BYTES_MAX
    trace: bool = True
    trace_messages: bool = False
    # The cluster key (absolute); None: no authentication (loopback only).
    key_file: Path | None = None
    tls: bool = False
    allow_remote: bool = False
    partial_frame_bytes_max: int = PARTIAL_FRAME_BYTES_MAX
    # ctx.fs: {"protocol": <fsspec protocol>, "options": {...}}; None: the local file system
    fs: dict[str, Any] | None = None

    def node_dir(self, node_id: str) -> Path:
        return self.run_dir / node_id

    def to_json(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir),
            "seed": self.seed,
            "fs_root": None if self.fs_root is None else str(self.fs_root),
            "frame_size_bytes_max": self.frame_size_bytes_max,
            "trace": self.trace,
            "trace_messages": self.trace_messages,
            "key_file": None if self.key_file is None else _relative(self.key_file, self.run_dir),
            "tls": self.tls,
            "allow_remote": self.allow_remote,
            "partial_frame_bytes_max": self.partial_frame_bytes_max,
            "fs": self.fs,
            "nodes": {
                nid: {"host": n.host, "port": n.port, "factory": n.factory, "params": n.params,
                      "client_ports": dict(n.client_ports)}
                for nid, n in self.nodes.items()
            },
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write this config as JSON (atomically: temp file + rename).

        Raises:
            ConfigError: a node's params are not plain JSON.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            text = json.dumps(self.to_json(), indent=2, allow_nan=False) + "\n"
        except (TypeError, ValueError) as e:
            raise ConfigError(f"cluster config: node params must be plain JSON: {e}") from None
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
        return path


def load_config(path: str | os.PathLike[str]) -> ClusterConfig:
    """Read and validate a cluster config file.

    Raises:
        ConfigError: the file is missing, not JSON, or fails validation.
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"cluster config {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"cluster config {path}: cannot read JSON: {e}") from None
    return parse_config(raw, base_dir=path.resolve().parent, source=str(path))


def parse_config(raw: Any, *, base_dir: str | os.PathLike[str] | None = None,
                 source: str = "cluster config") -> ClusterConfig:
    """Validate a config given as a JSON-shaped dict. Relative ``run_dir`` and
    ``fs_root`` are taken relative to ``base_dir`` (default: the cwd).

    Raises:
        ConfigError: a missing, unknown or ill-typed key, a bad node id,
            factory or port, two nodes on one address, a non-loopback host
            without ``allow_remote`` and ``key_file``, or ``tls`` without
            ``key_file``.
    """
    where = source
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a JSON object, got {type(raw).__name__}")
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(_TOP_KEYS)}")
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    run_dir = _path(_need(raw, "run_dir", str, where), base, f"{where}: run_dir")
    seed = _need(raw, "seed", int, where)
    fs_root_raw = raw.get("fs_root")
    if fs_root_raw is not None and not isinstance(fs_root_raw, str):
        raise ConfigError(f"{where}: fs_root must be a string or null, got {type(fs_root_raw).__name__}")
    fs_root = None if fs_root_raw is None else _path(fs_root_raw, base, f"{where}: fs_root")
    frame_max = raw.get("frame_size_bytes_max", FRAME_SIZE_BYTES_MAX)
    if type(frame_max) is not int or not 16 <= frame_max <= FRAME_SIZE_BYTES_MAX:
        raise ConfigError(
            f"{where}: frame_size_bytes_max must be an int in [16, {FRAME_SIZE_BYTES_MAX}], got {frame_max!r}"
        )
    assert frame_max < 2 ** (8 * FRAME_HEADER_BYTES)
    flags = {}
    for key, default in (("trace", True), ("trace_messages", False), ("tls", False), ("allow_remote", False)):
        value = raw.get(key, default)
        if type(value) is not bool:
            raise ConfigError(f"{where}: {key} must be true or false, got {value!r}")
        flags[key] = value
    nodes_raw = _need(raw, "nodes", dict, where)
    if not nodes_raw:
        raise ConfigError(f"{where}: nodes is empty; a cluster needs at least one node")
    nodes = {nid: _parse_node(nid, spec, f"{where}: node {nid!r}") for nid, spec in nodes_raw.items()}
    seen: dict[tuple[str, int], str] = {}
    for nid, n in nodes.items():
        for addr, what in [(n.addr, nid), *(((n.host, p), f"{nid} ({name})") for name, p in n.client_ports.items())]:
            other = seen.setdefault(addr, what)
            if other != what:
                raise ConfigError(f"{where}: {other!r} and {what!r} both use {addr[0]}:{addr[1]}")
    key_raw = raw.get("key_file")
    if key_raw is not None and not isinstance(key_raw, str):
        raise ConfigError(f"{where}: key_file must be a string or null, got {type(key_raw).__name__}")
    key_file = None if key_raw is None else _path(key_raw, run_dir, f"{where}: key_file")
    partial_max = raw.get("partial_frame_bytes_max", PARTIAL_FRAME_BYTES_MAX)
    if type(partial_max) is not int or not _PARTIAL_FRAME_BYTES_MIN <= partial_max <= _PARTIAL_FRAME_BYTES_LIMIT:
        raise ConfigError(f"{where}: partial_frame_bytes_max must be an int in "
                          f"[{_PARTIAL_FRAME_BYTES_MIN}, {_PARTIAL_FRAME_BYTES_LIMIT}], got {partial_max!r}")
    _check_exposure(nodes, key_file, flags["tls"], flags["allow_remote"], where)
    fs = _parse_fs(raw.get("fs"), where)
    return ClusterConfig(run_dir=run_dir, seed=seed, fs_root=fs_root, nodes=nodes,
                         frame_size_bytes_max=frame_max, key_file=key_file,
                         partial_frame_bytes_max=partial_max, fs=fs, **flags)


def _parse_fs(raw: Any, where: str) -> dict[str, Any] | None:
    """The ``fs`` key: None, or {"protocol": str, "options": {str: JSON}}."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) - {"protocol", "options"} or not isinstance(raw.get("protocol"), str) \
            or not raw["protocol"] or not isinstance(raw.get("options", {}), dict):
        raise ConfigError(f'{where}: fs must be null or {{"protocol": "<fsspec protocol>", "options": {{...}}}}, '
                          f"got {raw!r}")
    return {"protocol": raw["protocol"], "options": dict(raw.get("options", {}))}


def _check_exposure(nodes: dict[str, NodeConfig], key_file: Path | None, tls: bool, allow_remote: bool,
                    where: str) -> None:
    """Listening beyond loopback is opt-in and needs the key (issue 8)."""
    if tls and key_file is None:
        raise ConfigError(f"{where}: tls needs a key_file (TLS hides traffic; the key says who may connect)")
    remote = [(nid, n.host) for nid, n in nodes.items() if not is_loopback(n.host)]
    if remote and not allow_remote:
        nid, host = remote[0]
        raise ConfigError(
            f"{where}: node {nid!r} listens on {host}, which is not a loopback address; set "
            f"\"allow_remote\": true (synod cluster up --allow-remote) and a key_file to accept "
            f"connections from other hosts")
    if allow_remote and key_file is None:
        raise ConfigError(f"{where}: allow_remote needs a key_file: a node reachable from other hosts must "
                          f"require the cluster key (and consider \"tls\": true)")


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def _parse_node(nid: Any, spec: Any, where: str) -> NodeConfig:
    if not isinstance(nid, str) or not _ID_RE.match(nid):
        raise ConfigError(f"{where}: a node id is 1-64 of [A-Za-z0-9_.-], starting alphanumeric")
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: expected an object, got {type(spec).__name__}")
    unknown = sorted(set(spec) - _NODE_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(_NODE_KEYS)}")
    host = spec.get("host", "127.0.0.1")
    if not isinstance(host, str) or not host:
        raise ConfigError(f"{where}: host must be a non-empty string, got {host!r}")
    port = _need(spec, "port", int, where)
    if not 1 <= port <= 65535:
        raise ConfigError(f"{where}: port must be in [1, 65535], got {port}")
    factory = _need(spec, "factory", str, where)
    if not _FACTORY_RE.match(factory):
        raise ConfigError(f"{where}: factory must look like 'package.module:function', got {factory!r}")
    params = spec.get("params", {})
    if not isinstance(params, dict):
        raise ConfigError(f"{where}: params must be an object, got {type(params).__name__}")
    client_ports = spec.get("client_ports", {})
    if not isinstance(client_ports, dict):
        raise ConfigError(f"{where}: client_ports must be an object, got {type(client_ports).__name__}")
    for name, cport in client_ports.items():
        if not isinstance(name, str) or not _ID_RE.match(name):
            raise ConfigError(f"{where}: a client protocol name is 1-64 of [A-Za-z0-9_.-], got {name!r}")
        if type(cport) is not int or not 1 <= cport <= 65535:
            raise ConfigError(f"{where}: client_ports.{name} must be a port in [1, 65535], got {cport!r}")
        if cport == port:
            raise ConfigError(f"{where}: client_ports.{name} is the node's own port {port}")
    return NodeConfig(host=host, port=port, factory=factory, params=params, client_ports=dict(client_ports))


def _need(raw: dict[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in raw:
        raise ConfigError(f"{where}: missing key {key!r}")
    value = raw[key]
    if type(value) is not kind:  # exact: a bool is not an int here
        raise ConfigError(f"{where}: {key} must be {kind.__name__}, got {type(value).__name__}")
    return value


def _path(value: str, base: Path, where: str) -> Path:
    if not value:
        raise ConfigError(f"{where} must not be empty")
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


# -- building nodes --------------------------------------------------------------

def import_factory(spec: str) -> Callable[[str, dict[str, Any]], Node]:
    """Import ``"package.module:function"``.

    Raises:
        ConfigError: the module or the attribute cannot be imported.
    """
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(f"factory {spec!r}: cannot import {module_name!r}: {e}") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ConfigError(f"factory {spec!r}: {module_name} has no callable {attr!r}")
    return fn


def build_node(config: ClusterConfig, node_id: str) -> Node:
    """Build node ``node_id`` from its factory.

    Raises:
        ConfigError: unknown id, the factory fails to import or raises, or it returns
            something that is not a :class:`synod.core.Node`.
    """
    node_cfg = config.nodes.get(node_id)
    if node_cfg is None:
        raise ConfigError(f"node {node_id!r} is not in the config (nodes: {', '.join(config.nodes)})")
    factory = import_factory(node_cfg.factory)
    try:
        node = factory(node_id, dict(node_cfg.params))
    except Exception as e:  # a factory rejecting its params is a config problem
        raise ConfigError(
            f"factory {node_cfg.factory!r} failed for node {node_id!r}: {type(e).__name__}: {e}"
        ) from e
    if not isinstance(node, Node):
        raise ConfigError(
            f"factory {node_cfg.factory!r} returned {type(node).__name__}, not a synod.core.Node"
        )
    return node


# -- writing configs -------------------------------------------------------------

@dataclass(slots=True, kw_only=True)
class NodeSpec:
    """A node to put in a config; ``port=0`` means "pick a free port"."""

    factory: str
    params: dict[str, Any] = field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int = 0
    # Client protocol name -> port (0: pick a free one), see NodeConfig.
    client_ports: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class ClusterSpec:
    """A cluster to write with :func:`write_config`."""

    run_dir: str | os.PathLike[str]
    nodes: dict[str, NodeSpec]
    seed: int = 0
    fs_root: str | os.PathLike[str] | None = None
    frame_size_bytes_max: int = FRAME_SIZE_BYTES_MAX
    trace: bool = True
    trace_messages: bool = False
    # Create a cluster key in the run dir (kept if one is there) and require it.
    key: bool = True
    tls: bool = False
    allow_remote: bool = False
    partial_frame_bytes_max: int = PARTIAL_FRAME_BYTES_MAX
    fs: dict[str, Any] | None = None   # ctx.fs: {"protocol": ..., "options": {...}}; None: local files


def local_spec(n: int, factory: str, run_dir: str | os.PathLike[str], *,
               params: Mapping[str, Any] | None = None, seed: int = 0, prefix: str = "n",
               host: str = "127.0.0.1", client_protocols: tuple[str, ...] = (),
               **options: Any) -> ClusterSpec:
    """The spec of ``n`` alike nodes ``<prefix>1..<prefix>n`` listening on
    ``host`` (default 127.0.0.1; any other address needs
    ``allow_remote=True``, and the spec's key, which is on by default),
    each serving ``client_protocols`` (names) on free ports.
    ``options`` are :class:`ClusterSpec` fields."""
    if n < 1:
        raise ConfigError(f"a cluster needs at least one node, got {n}")
    nodes = {f"{prefix}{i}": NodeSpec(factory=factory, params=dict(params or {}), host=host,
                                      client_ports={name: 0 for name in client_protocols})
             for i in range(1, n + 1)}
    return ClusterSpec(run_dir=run_dir, nodes=nodes, seed=seed, **options)


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct ports that were free a moment ago, chosen at random
    below the kernel's ephemeral range (``FREE_PORT_LOW`` up to
    ``ip_local_port_range``'s start), so that no outgoing connection of any
    process takes one as its local port between this choice and the bind
    (ports from a bind to port 0 come from that range and did, now and
    then). Each is checked by binding it; all are held until every one is
    found, so they differ. Falls back to the kernel's choice (port 0) when
    the range below is too small or too busy."""
    low, high = FREE_PORT_LOW, _ephemeral_low() - 1
    rng = random.SystemRandom()
    socks: list[socket.socket] = []
    try:
        tries = 0
        while len(socks) < n and high - low >= 16 * n and tries < 64 * n:
            tries += 1
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((host, rng.randint(low, high)))
            except OSError:
                s.close()
                continue
            socks.append(s)
        while len(socks) < n:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _ephemeral_low() -> int:
    """The first port of the kernel's range for outgoing connections
    (Linux: /proc/sys/net/ipv4/ip_local_port_range; elsewhere IANA's 49152)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 49152


def write_config(spec: ClusterSpec, path: str | os.PathLike[str] | None = None) -> tuple[ClusterConfig, Path]:
    """Give every port-0 node a free port, validate, and write the config to
    ``path`` (default ``run_dir/cluster-config.json``). Returns the config and
    the file's path. With ``spec.key`` (the default) the run dir gets a
    cluster key, ``run_dir/cluster.key`` (mode 0600; an existing one is
    kept), and with ``spec.tls`` a CA and node certificates
    (:func:`ensure_credentials`).

    Raises:
        ConfigError: the spec does not validate.
    """
    run_dir = Path(spec.run_dir).expanduser().resolve()
    # Every port 0 (a node's, or one of its client ports) gets a free port;
    # all of one host's are drawn together, so they differ from each other.
    wanted: list[tuple[str, str | None]] = []  # (node id, client protocol name or None for the node's port)
    for nid, n in spec.nodes.items():
        if n.port == 0:
            wanted.append((nid, None))
        wanted.extend((nid, name) for name, p in n.client_ports.items() if p == 0)
    by_host: dict[str, list[tuple[str, str | None]]] = {}
    for slot in wanted:
        by_host.setdefault(spec.nodes[slot[0]].host, []).append(slot)
    ports: dict[tuple[str, str | None], int] = {}
    for host, slots in by_host.items():
        ports.update(zip(slots, free_ports(len(slots), host)))
    raw = {
        "run_dir": str(run_dir),
        "seed": spec.seed,
        "fs_root": None if spec.fs_root is None else str(Path(spec.fs_root).expanduser().resolve()),
        "frame_size_bytes_max": spec.frame_size_bytes_max,
        "trace": spec.trace,
        "trace_messages": spec.trace_messages,
        "key_file": KEY_FILE_NAME if spec.key else None,
        "tls": spec.tls,
        "allow_remote": spec.allow_remote,
        "partial_frame_bytes_max": spec.partial_frame_bytes_max,
        "fs": spec.fs,
        "nodes": {
            nid: {"host": n.host, "port": ports.get((nid, None), n.port), "factory": n.factory, "params": n.params,
                  "client_ports": {name: ports.get((nid, name), p) for name, p in n.client_ports.items()}}
            for nid, n in spec.nodes.items()
        },
    }
    config = parse_config(raw, source="cluster spec")
    ensure_credentials(config)
    out = Path(path) if path is not None else run_dir / CONFIG_FILE_NAME
    config.save(out)
    return config, out.resolve()


def ensure_credentials(config: ClusterConfig) -> Credentials | None:
    """The supervisor's side of :meth:`Credentials.from_config`: create the
    key file the config names if it is missing (mode 0600), and with ``tls``
    the CA and a certificate for every node that has none; then load them.

    Raises:
        ConfigError: an existing key or TLS file is bad, or cannot be written.
    """
    if config.key_file is None:
        return None
    try:
        create_key_file(config.key_file)
        if config.tls:
            from synod.runtime.tls import ensure_tls

            ensure_tls(config.run_dir / TLS_DIR_NAME, {nid: n.host for nid, n in config.nodes.items()})
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot create the cluster's credentials in {config.run_dir}: {e}") from None
    return Credentials.from_config(config)
