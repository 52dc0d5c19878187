"""The ZooKeeper server's configuration: :class:`ZkServerConfig` (what a
:class:`~synod.zk.server.ZkServerNode` is built from) and
:class:`ZkServerParams` (the validated params of the cluster-config factory
``synod.zk.server:factory``), with ZooKeeper's names beside synod's."""

from __future__ import annotations

from dataclasses import dataclass

from synod.core import Params
from synod.zab.node import ZabNodeConfig

__all__ = ["ZkServerConfig", "ZkServerParams", "ENVIRONMENT_LINES_MAX"]

ENVIRONMENT_LINES_MAX = 256        # lines of envi a config may supply


@dataclass(frozen=True, slots=True, kw_only=True)
class ZkServerConfig:
    """``node``: the Zab server's configuration (its ``tick_ms`` is
    ZooKeeper's tickTime); ``server_index``: this server's number, 0..127
    (the top byte of its session ids); ``secret``: the ensemble's shared
    secret for session passwords; ``max_session_timeout_ms``: the longest
    session timeout granted (ZooKeeper's maxSessionTimeout; its default,
    20 ticks of its 2 s tickTime, is 40 s: synod's Zab ticks faster, so the
    bound is its own; None: 20 ticks). ``client_port``, ``data_dir`` and
    ``environment`` ((key, value) pairs) are only what the four-letter
    words ``conf`` and ``envi`` print: the node reads no environment and
    is not told which port its host bound (0: unknown).
    ``container_check_interval_ms``: how often the leader looks for
    containers and TTL nodes to delete (ZooKeeper's
    znode.container.checkIntervalMs); ``container_never_used_ms``: a
    container that never had a child goes after this long (0: never;
    znode.container.maxNeverUsedIntervalMs); ``extended_types_enabled``:
    TTL nodes allowed (zookeeper.extendedTypesEnabled; ZooKeeper's default
    is off, synod's on)."""

    node: ZabNodeConfig
    server_index: int
    secret: bytes = b"synod-zk"
    max_session_timeout_ms: int | None = 40_000
    client_port: int = 0
    data_dir: str = ""
    environment: tuple[tuple[str, str], ...] = ()
    container_check_interval_ms: int = 60_000
    container_never_used_ms: int = 0
    extended_types_enabled: bool = True


class ZkServerParams(Params):
    """The params of :func:`factory`: ``voters`` (node ids of the ensemble's
    voting servers, this one among them or among ``observers``),
    ``server_index`` (0..127), ``tick_ms`` (tickTime), ``sync_limit_ticks``
    and ``init_limit_ticks`` (syncLimit and initLimit: how long a leader and
    its followers wait to hear from each other, 2 s and 4 s at the default
    tick; ZooKeeper's sample config gives 10 s and 20 s; an fsync stalled
    by a busy disk holds a server's pings as long), ``secret`` (the
    ensemble's shared secret for session passwords, text),
    ``snapshot_interval_txns`` (0: never; ZooKeeper's snapCount, 100,000)
    and ``snapshot_interval_bytes`` (snapshot sooner once this many bytes
    of transactions were delivered: Zab's log since the last snapshot is
    kept in memory; 0: no byte bound); for the four-letter words
    ``conf`` and ``envi`` only: ``client_port`` (0: not told),
    ``data_dir`` and ``environment`` (key -> value, what whoever writes the
    config wants ``envi`` to show: the node reads no environment);
    ``container_check_interval_ms``, ``container_never_used_ms``,
    ``extended_types_enabled`` as :class:`ZkServerConfig` says."""

    voters: tuple[str, ...]
    server_index: int
    observers: tuple[str, ...] = ()
    tick_ms: float = 100.0
    sync_limit_ticks: int = 20
    init_limit_ticks: int = 40
    secret: str = "synod-zk"
    snapshot_interval_txns: int = 100_000
    snapshot_interval_bytes: int = 64 * 1024 * 1024
    max_session_timeout_ms: int = 40_000
    client_port: int = 0
    data_dir: str = ""
    environment: dict[str, str] = {}
    container_check_interval_ms: int = 60_000
    container_never_used_ms: int = 0
    extended_types_enabled: bool = True

    def __post_init__(self) -> None:
        if not self.voters:
            raise ValueError("voters: at least one")
        if not 0 <= self.server_index <= 127:
            raise ValueError("server_index must be within 0..127")
        if not 1 <= self.tick_ms <= 60_000:
            raise ValueError("tick_ms must be within 1..60000")
        if not 1 <= self.sync_limit_ticks <= self.init_limit_ticks <= 10_000:
            raise ValueError("need 1 <= sync_limit_ticks <= init_limit_ticks <= 10000")
        if self.snapshot_interval_txns < 0:
            raise ValueError("snapshot_interval_txns must be >= 0")
        if not 0 <= self.snapshot_interval_bytes <= 1 << 40:
            raise ValueError("snapshot_interval_bytes must be within 0..2**40")
        if not 1 <= self.max_session_timeout_ms <= 3_600_000:
            raise ValueError("max_session_timeout_ms must be within 1..3600000")
        if not 1 <= self.container_check_interval_ms <= 86_400_000:
            raise ValueError("container_check_interval_ms must be within 1..86400000")
        if self.container_never_used_ms < 0:
            raise ValueError("container_never_used_ms must be >= 0")
        if not 0 <= self.client_port <= 65_535:
            raise ValueError("client_port must be within 0..65535")
        if len(self.environment) > ENVIRONMENT_LINES_MAX:
            raise ValueError(f"environment: at most {ENVIRONMENT_LINES_MAX} entries")
