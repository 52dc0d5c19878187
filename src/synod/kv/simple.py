"""The small Put/Append/Get store of MIT 6.5840's Lab 4 (kvraft), on Raft.

Raft itself replicates whatever state machine its user gives it
(:class:`~synod.raft.node.StateMachine`); this is the simplest useful one,
what ``synod raft put|append|get`` and Raft's own Jepsen-style tests drive.
The Redis-compatible store (:mod:`synod.kv.node`) is the full service.

A command is ``encode([op, key, value])`` with op ``put`` | ``append`` |
``get`` (str key and value; value None for get); the result is the key's
value after it. A query (a linearizable read) is ``encode(["get", key])``.
The state machine trusts its log, so what it cannot apply is refused where
it enters: Raft's inbound checks call :meth:`SimpleKV.check_command`,
:meth:`SimpleKV.check_query` and :meth:`SimpleKV.check_snapshot` (issue 8).
"""

from __future__ import annotations

from typing import Any

from synod.core import Params, decode, encode, parse_params
from synod.core.errors import LocalProtocolError, RemoteProtocolError
from synod.raft import constants as C
from synod.raft.node import RaftNode, RaftNodeConfig
from synod.raft.raft import RaftConfig

__all__ = ["SimpleKV", "SimpleKVParams", "factory", "FACTORY"]


class SimpleKV:
    """A key-value map of strings; see the module docstring."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    def apply(self, index: int, command: bytes | None) -> bytes | None:
        """Total: a command that is not ``[put|append|get, str, str|None]``
        (a value for get) is a no-op, since a committed entry is replayed
        on every restart and must never raise."""
        if command is None:
            return None
        try:
            op, key, value = decode(command)
        except Exception:
            return None  # not a KV command: a no-op for this machine
        if type(key) is not str or op not in ("put", "append", "get"):
            return None
        if op in ("put", "append") and type(value) is not str:
            return None
        if op == "put":
            self.data[key] = value
        elif op == "append":
            self.data[key] = self.data.get(key, "") + value
        return encode(self.data.get(key))

    def query(self, query: bytes) -> bytes | None:
        """``encode(["get", key])``: the key's value, or None if unset.
        Raises LocalProtocolError on anything else."""
        try:
            op, key = decode(query)
        except Exception:
            raise LocalProtocolError("a KV query is encode(['get', key])") from None
        if op != "get" or type(key) is not str:
            raise LocalProtocolError(f"unknown KV query {op!r}")
        return encode(self.data.get(key))

    def snapshot(self) -> bytes:
        return encode(sorted(self.data.items()))

    def restore(self, data: bytes) -> None:
        self.data = {k: v for k, v in decode(data)} if data else {}

    # -- what Raft's inbound checks ask (synod.raft._validate) ---------------------
    @staticmethod
    def check_command(command: bytes, *, from_client: bool) -> str | None:
        """Why :meth:`apply` could not apply ``command``, or None.
        ``from_client`` (a client's Propose): it must be ``[op, key, value]``
        with str op and key, and a str value for ``put``/``append`` (None or
        a str for ``get``). Otherwise (an entry in a leader's AppendEntries)
        bytes the machine treats as a no-op (not a 3-element array) pass."""
        bad = "a command that is not encode([op, key, value]) with str key and value"
        try:
            cmd = decode(command)
        except RemoteProtocolError:
            return bad if from_client else None
        if type(cmd) is not list or len(cmd) != 3:
            return bad if from_client else None
        op, key, value = cmd
        if type(key) is not str or (from_client and type(op) is not str):
            return bad
        if op in ("put", "append"):
            return None if type(value) is str else bad
        return None if not from_client or value is None or type(value) is str else bad

    @staticmethod
    def check_query(query: bytes) -> str | None:
        """Why ``query`` is impossible, or None. Queries :meth:`query`
        refuses itself (answered as an error) pass."""
        try:
            q = decode(query)
        except RemoteProtocolError:
            return None
        if type(q) is not list or len(q) != 2:
            return None
        return None if type(q[1]) is str else "a query that is not encode(['get', key]) with a str key"

    @staticmethod
    def check_snapshot(data: bytes) -> str | None:
        """Why :meth:`restore` could not restore ``data``, or None."""
        if not data:
            return None
        try:
            obj: Any = decode(data)
        except RemoteProtocolError:
            return "a snapshot whose state machine data does not decode"
        if type(obj) is not list or not all(
                type(p) is list and len(p) == 2 and type(p[0]) is str and type(p[1]) is str for p in obj):
            return "a snapshot that is not a list of KV pairs"
        return None


# -- the real runtime ----------------------------------------------------------------

FACTORY = "synod.kv.simple:factory"


class SimpleKVParams(Params):
    """The params of ``synod.kv.simple:factory`` (all optional):
    ``tick_interval_ms``; ``election_ticks`` and ``heartbeat_ticks`` (in
    ticks); ``pre_vote`` and ``check_quorum``; ``snapshot_interval_entries``
    (0: never); ``voters``: the initial voters (default every node of the
    cluster; a node not among them starts as a learner waiting to be added,
    thesis 4.2.1)."""

    tick_interval_ms: float = C.TICK_INTERVAL_MS
    election_ticks: int = C.ELECTION_TICKS
    heartbeat_ticks: int = C.HEARTBEAT_TICKS
    pre_vote: bool = True
    check_quorum: bool = True
    snapshot_interval_entries: int = 0
    voters: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not all(self.voters):
            raise ValueError("voters must be non-empty node ids")


def factory(node_id: str, params: dict[str, Any]) -> RaftNode:
    """Cluster-config factory ``synod.kv.simple:factory``: a
    :class:`~synod.raft.node.RaftNode` replicating a :class:`SimpleKV`,
    configured by :class:`SimpleKVParams`.

    Raises:
        ConfigError: params that are not :class:`SimpleKVParams` (an unknown
            name, a wrong type such as ``"false"`` or ``15.9`` ticks).
        LocalProtocolError: the timings do not validate (see :class:`RaftConfig`).
    """
    p = parse_params(params, SimpleKVParams)
    raft = RaftConfig(election_ticks=p.election_ticks, heartbeat_ticks=p.heartbeat_ticks,
                      pre_vote=p.pre_vote, check_quorum=p.check_quorum)
    return RaftNode(RaftNodeConfig(raft=raft, voters=p.voters, tick_interval_ms=p.tick_interval_ms,
                                   snapshot_interval_entries=p.snapshot_interval_entries), SimpleKV())
