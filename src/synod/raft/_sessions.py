"""Client sessions: each command applied at most once (Ongaro's thesis,
section 6.3; the Raft paper, section 8).

A client's proposal travels in the log as a :class:`ClientCommand` holding
the client's id and its request id. A network that duplicates messages, or
a client that retries, can put the same command in the log twice; the
state machine must apply it once. The session table, itself replicated
state (it is built only from the log and travels in snapshots), keeps per
client the latest request id applied and its result:

- a request id above the latest: apply, remember id and result;
- equal to the latest: a duplicate; answer with the remembered result;
- below it: stale (the client has moved on); not applied, no result.

The node adapter adds one rule before the log: a copy of a request that
is waiting at this server, or already applied, is neither proposed again
nor refused (a refusal would tell the client "failed" while the first copy
commits); see ``RaftNode._seen``.

This assumes, as the thesis does, that a client has one request
outstanding at a time and numbers them upwards. The table holds at most
``SESSIONS_MAX`` clients; the one whose last command is oldest in the log
is evicted first (deterministic on every server, as the thesis requires of
session expiry). A request from an evicted client is applied again.
"""

from __future__ import annotations

from synod.core import Message, decode, encode
from synod.core.errors import RemoteProtocolError

__all__ = ["ClientCommand", "NodeSnapshot", "ClientSessions", "SESSIONS_MAX", "NEW", "DUPLICATE", "STALE",
           "as_client_command"]

SESSIONS_MAX = 4096
NEW, DUPLICATE, STALE = "new", "duplicate", "stale"


class ClientCommand(Message, tag="raft.ClientCommand"):
    """A client's command as it is stored in a log entry."""

    client: str
    request_id: int
    command: bytes


class NodeSnapshot(Message, tag="raft.NodeSnapshot"):
    """What a RaftNode snapshot holds: the session table and the state
    machine's own snapshot."""

    sessions: bytes
    data: bytes


def as_client_command(data: bytes) -> ClientCommand | None:
    """``data`` as a ClientCommand, or None if it is some other command (a
    Lab 3 tester's, which carries no session)."""
    try:
        return decode(data, ClientCommand)
    except RemoteProtocolError:
        return None


class ClientSessions:
    """client id -> (latest request id, its result, log index applied at).
    Invariant: ``len(table) <= SESSIONS_MAX``."""

    def __init__(self) -> None:
        self.table: dict[str, tuple[int, bytes | None, int]] = {}

    def classify(self, client: str, request_id: int) -> tuple[str, bytes | None]:
        """NEW, DUPLICATE (with the remembered result) or STALE."""
        seen = self.table.get(client)
        if seen is None or request_id > seen[0]:
            return NEW, None
        if request_id == seen[0]:
            return DUPLICATE, seen[1]
        return STALE, None

    def record(self, client: str, request_id: int, result: bytes | None, index: int) -> None:
        self.table[client] = (request_id, result, index)
        if len(self.table) > SESSIONS_MAX:
            oldest = min(self.table, key=lambda c: self.table[c][2])
            del self.table[oldest]

    def encode(self) -> bytes:
        return encode(sorted([c, rid, res, idx] for c, (rid, res, idx) in self.table.items()))

    @staticmethod
    def decode(data: bytes) -> ClientSessions:
        """Raises RemoteProtocolError on malformed data."""
        s = ClientSessions()
        try:
            for c, rid, res, idx in decode(data):
                s.table[c] = (rid, res, idx)
        except (TypeError, ValueError):
            raise RemoteProtocolError("malformed session table") from None
        return s
