"""The four-letter words a ZooKeeper server answers on its client port
(ZooKeeper 3.8's ``FourLetterCommands``; issue 12 section 2).

``ruok``, ``isro``, ``srvr``, ``stat``, ``mntr``, ``conf`` and ``envi``, in
ZooKeeper 3.8's formats: ``srvr``/``stat`` lines of ``Name: value``;
``mntr`` lines of ``zk_<key><TAB><value>``; ``conf`` lines of
``key=value``; ``envi`` the line ``Environment:`` then ``key=value`` lines.
Another word gets ZooKeeper's answer for a word outside the whitelist.

Pure functions of what the server tells them (:class:`Facts`,
:class:`ServerStats`, :class:`AdminConfig`): nothing here reads a clock, the
process environment or the machine. Times (latency, uptime) are the node's
own clock in ms as its host hands it in; ``envi``'s lines are what the
node's config says (``AdminConfig.environment``, filled by whoever writes
the config, never by the node).

Keys of ZooKeeper's ``mntr`` that synod has no counterpart for (JVM,
file descriptors, TLS, the metrics of its request-processor queues, its
hundreds of summary metrics) are left out rather than printed as zeros; a
differential test (tests/zk/test_four_letter_words.py) checks that every key
synod prints is one ZooKeeper 3.8 prints in the same role, and that
``conf`` and ``envi`` keep ZooKeeper's format.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["ServerStats", "Facts", "AdminConfig", "ConnectionFacts", "LeaderFacts", "answer", "VERSION",
           "NOT_SERVING"]

VERSION = "synod (ZooKeeper 3.8 protocol)"
# What ZooKeeper 3.8 answers mntr, conf (and more) when it is not serving.
NOT_SERVING = "This ZooKeeper instance is not currently serving requests\n"


@dataclass(slots=True)
class ServerStats:
    """ZooKeeper's ServerStats: client packets received and sent since
    start, request latency (ms, the node's clock, from the request's arrival
    at this server to its reply), and the leader's proposals (count, sizes
    in bytes; -1: none yet)."""

    packets_received: int = 0
    packets_sent: int = 0
    latency_count: int = 0
    latency_total_ms: int = 0
    latency_min_ms: int = 0
    latency_max_ms: int = 0
    proposal_count: int = 0
    proposal_last_bytes: int = -1
    proposal_min_bytes: int = -1
    proposal_max_bytes: int = -1

    def latency(self, ms: float) -> None:
        """One request answered ``ms`` after it arrived (>= 0)."""
        ms_int = max(0, int(ms))
        self.latency_min_ms = ms_int if self.latency_count == 0 else min(self.latency_min_ms, ms_int)
        self.latency_max_ms = max(self.latency_max_ms, ms_int)
        self.latency_total_ms += ms_int
        self.latency_count += 1

    def proposal(self, size_bytes: int) -> None:
        """The leader proposed a transaction of ``size_bytes``."""
        assert size_bytes >= 0
        self.proposal_count += 1
        self.proposal_last_bytes = size_bytes
        self.proposal_min_bytes = size_bytes if self.proposal_min_bytes < 0 else min(self.proposal_min_bytes,
                                                                                      size_bytes)
        self.proposal_max_bytes = max(self.proposal_max_bytes, size_bytes)

    def avg_latency(self) -> float:
        """Mean latency, ms, rounded to 4 decimals as ZooKeeper prints it."""
        return round(self.latency_total_ms / self.latency_count, 4) if self.latency_count else 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminConfig:
    """What ``conf`` and ``envi`` print of the server's configuration:
    ``client_port`` (0: the host chose a free one the node is not told),
    ``data_dir``, ``tick_ms`` (tickTime), ``connections_max``
    (maxClientCnxns; synod's limit is per server, not per address),
    min/max session timeouts (ms), ``server_index`` (serverId, ZooKeeper's
    myid), Zab's ``init_limit_ticks``/``sync_limit_ticks``, ``observer``
    (peerType 1), ``environment``: the (key, value) lines of ``envi`` after
    ``zookeeper.version``, as the config's writer supplied them."""

    client_port: int
    data_dir: str
    tick_ms: int
    connections_max: int
    min_session_timeout_ms: int
    max_session_timeout_ms: int
    server_index: int
    init_limit_ticks: int
    sync_limit_ticks: int
    observer: bool
    environment: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ConnectionFacts:
    """One client connection as ``stat`` lists it: ``addr`` host:port,
    ``has_session``, packets received and sent on it, requests queued."""

    addr: str
    has_session: bool
    received: int
    sent: int
    queued: int


@dataclass(frozen=True, slots=True)
class LeaderFacts:
    """The leader's learners (Zab's followers and observers that opened a
    session with it) and how many are up to date; ms since it was
    established."""

    learners: int
    synced_followers: int
    synced_observers: int
    leader_uptime_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    """What the server knows of itself when a word arrives. ``mode``:
    ``leader``, ``follower``, ``observer`` or ``not serving``; ``peer_state``
    as ZooKeeper's (``leading - broadcast``); ``zxid`` the
    last applied; counts of the tree; ``uptime_ms`` since the node started
    (its clock); ``leader`` only on an established leader."""

    serving: bool
    mode: str
    peer_state: str
    zxid: int
    outstanding: int
    znode_count: int
    watch_count: int
    ephemerals_count: int
    global_sessions: int
    quorum_size: int
    uptime_ms: int
    stats: ServerStats
    connections: Sequence[ConnectionFacts] = field(default_factory=tuple)
    leader: LeaderFacts | None = None
    approximate_data_size: int = 0


def _latency_line(s: ServerStats) -> str:
    return f"Latency min/avg/max: {s.latency_min_ms}/{s.avg_latency()!r}/{s.latency_max_ms}\n"


def _srvr(f: Facts, with_clients: bool) -> str:
    s = f.stats
    out = [f"Zookeeper version: {VERSION}\n"]
    if with_clients:
        out.append("Clients:\n")
        out += [f" /{c.addr}[{1 if c.has_session else 0}](queued={c.queued},recved={c.received},sent={c.sent})\n"
                for c in f.connections]
        out.append("\n")
    out += [_latency_line(s), f"Received: {s.packets_received}\n", f"Sent: {s.packets_sent}\n",
            f"Connections: {len(f.connections)}\n", f"Outstanding: {f.outstanding}\n", f"Zxid: 0x{f.zxid:x}\n",
            f"Mode: {f.mode}\n", f"Node count: {f.znode_count}\n"]
    if f.leader is not None:
        out.append(f"Proposal sizes last/min/max: {s.proposal_last_bytes}/{s.proposal_min_bytes}/"
                   f"{s.proposal_max_bytes}\n")
    return "".join(out)


def _mntr(f: Facts) -> str:
    s = f.stats
    rows: list[tuple[str, object]] = [
        ("version", VERSION), ("server_state", f.mode), ("peer_state", f.peer_state),
        ("avg_latency", s.avg_latency()), ("max_latency", s.latency_max_ms), ("min_latency", s.latency_min_ms),
        ("packets_received", s.packets_received), ("packets_sent", s.packets_sent),
        ("num_alive_connections", len(f.connections)), ("outstanding_requests", f.outstanding),
        ("znode_count", f.znode_count), ("watch_count", f.watch_count),
        ("ephemerals_count", f.ephemerals_count), ("approximate_data_size", f.approximate_data_size),
        ("global_sessions", f.global_sessions), ("local_sessions", 0), ("uptime", f.uptime_ms),
        ("quorum_size", f.quorum_size), ("proposal_count", s.proposal_count),
    ]
    if f.leader is not None:
        lf = f.leader
        rows += [("learners", lf.learners), ("synced_followers", lf.synced_followers),
                 ("synced_non_voting_followers", 0), ("synced_observers", lf.synced_observers),
                 ("leader_uptime", lf.leader_uptime_ms), ("last_proposal_size", s.proposal_last_bytes),
                 ("min_proposal_size", s.proposal_min_bytes), ("max_proposal_size", s.proposal_max_bytes)]
    return "".join(f"zk_{key}\t{value}\n" for key, value in rows)


def _conf(c: AdminConfig) -> str:
    rows: list[tuple[str, object]] = [
        ("clientPort", c.client_port), ("secureClientPort", -1), ("dataDir", c.data_dir),
        ("dataLogDir", c.data_dir), ("tickTime", c.tick_ms), ("maxClientCnxns", c.connections_max),
        ("minSessionTimeout", c.min_session_timeout_ms), ("maxSessionTimeout", c.max_session_timeout_ms),
        ("clientPortListenBacklog", -1), ("serverId", c.server_index), ("initLimit", c.init_limit_ticks),
        ("syncLimit", c.sync_limit_ticks), ("electionAlg", 3), ("peerType", 1 if c.observer else 0),
    ]
    return "".join(f"{key}={value}\n" for key, value in rows)


def _envi(c: AdminConfig) -> str:
    lines = [("zookeeper.version", VERSION), *((k, v) for k, v in c.environment if k != "zookeeper.version")]
    return "Environment:\n" + "".join(f"{key}={value}\n" for key, value in lines)


def answer(word: str, facts: Facts, config: AdminConfig) -> str:
    """The text a server answers ``word`` with (ZooKeeper 3.8's formats;
    ``mntr`` and ``conf`` say that the server is not serving when it is not,
    as ZooKeeper's do; ``srvr``/``stat`` still answer, with ``Mode: not
    serving``, which ``synod zk status`` reads)."""
    if word == "ruok":
        return "imok"
    if word == "isro":
        return "rw" if facts.serving else "null"
    if word in ("srvr", "stat"):
        return _srvr(facts, with_clients=word == "stat")
    if word == "envi":
        return _envi(config)
    if word in ("mntr", "conf"):
        if not facts.serving:
            return NOT_SERVING
        return _mntr(facts) if word == "mntr" else _conf(config)
    return f"{word} is not executed because it is not in the whitelist.\n"
