"""A client of a real Raft cluster (``LocalCluster``) with the session
semantics of Raft thesis 6.3: one client id for the session, one request id
per logical operation, kept across every retry, reconnect and leader change,
so the servers' session tables apply each operation at most once.

Outcomes: ``applied`` (a reply said ok), ``not_applied`` (every copy sent
was refused in a way that settles it: never entered the log), ``unknown``
(some copy left without a reply that settles it: it may still commit).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from synod.core.errors import RemoteProtocolError
from synod.raft import LEADER
from synod.raft.messages import ProposeReply, RaftStatus, RaftStatusRequest
from synod.runtime.client import Session

__all__ = ["RaftSessionClient", "Outcome", "status_of", "leader_of", "CALL_TIMEOUT_S", "RETRY_PAUSE_S"]

CALL_TIMEOUT_S = 1.0   # one attempt waits this long for an answer before sending again
RETRY_PAUSE_S = 0.1


def status_of(cl: Any, node_id: str, timeout_s: float = CALL_TIMEOUT_S) -> RaftStatus | None:
    """The node's RaftStatus, or None (down, paused, not answering)."""
    if not cl.is_alive(node_id) or cl.is_paused(node_id):
        return None
    try:
        reply = cl.call(node_id, RaftStatusRequest(), timeout_s)
    except (OSError, RemoteProtocolError):  # down, or something else answers on its address
        return None
    return reply if type(reply) is RaftStatus else None


def leader_of(cl: Any) -> str | None:
    """The highest-term node that says it leads, or None."""
    leaders = [s for s in (status_of(cl, n) for n in cl.node_ids) if s is not None and s.role == LEADER]
    best = max(leaders, key=lambda s: s.term, default=None)
    return None if best is None else best.node_id


def settles_not_applied(reply: ProposeReply) -> bool:
    """Whether a refusal settles that its copy was not applied: it never
    entered the log ("not the leader", a full queue); unlike an
    indeterminate or stale answer (the server cannot tell)."""
    return not reply.ok and not reply.indeterminate and reply.error != "stale request"


@dataclass(frozen=True, slots=True)
class Outcome:
    """``kind``: "applied", "not_applied" or "unknown"; ``reply``: the
    ProposeReply that said ok (applied only); ``why``: the last reason."""

    kind: str
    reply: ProposeReply | None
    why: str


class RaftSessionClient:
    """One Raft client session against ``cl`` (a :class:`LocalCluster`).
    Not thread-safe: one operation at a time, as the thesis assumes."""

    def __init__(self, cl: Any, session: Session | None = None) -> None:
        self.cl = cl
        self.session = session or Session()
        self._clients: dict[str, Any] = {}

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def _submit(self, node_id: str, request: Any, timeout_s: float) -> tuple[bool, ProposeReply | None]:
        """Send ``request`` to ``node_id`` and wait at most ``timeout_s`` for
        its ProposeReply: (sent, reply); sent False when nothing left."""
        client = self._clients.get(node_id)
        if client is None:
            client = self._clients[node_id] = self.cl.client(node_id, client_id=self.session.client_id)
        try:
            client.connect()
        except (OSError, RemoteProtocolError):
            client.close()
            return False, None
        try:
            client.send(request)
            deadline = time.monotonic() + timeout_s
            while (left := deadline - time.monotonic()) > 0:
                got = client.recv(left, ProposeReply)
                if got is None:
                    break
                if got[1].request_id == request.request_id:
                    return True, got[1]
        except (OSError, RemoteProtocolError):
            client.close()  # the next attempt reconnects, under the same client id
        return True, None

    def run(self, make_request: Callable[[int], Any], timeout_s: float) -> Outcome:
        """One logical operation: ``make_request(request_id)`` (one request
        id) sent to the leader until a reply settles it or ``timeout_s``
        seconds pass."""
        request = make_request(self.session.next_request_id())
        attempt = 0
        deadline = time.monotonic() + timeout_s
        why = "no leader"
        hint: str | None = None
        unsettled = False  # some copy left without a reply that settles it: it may commit
        while (left := deadline - time.monotonic()) > 0:
            target = hint if hint in self.cl.config.nodes else leader_of(self.cl)
            hint = None
            if target is None:
                why = "no leader"
            else:
                if hasattr(request, "attempt"):
                    # Each send is a new attempt: a server that refused an
                    # earlier one refuses its duplicates, not this retry.
                    request = msgspec.structs.replace(request, attempt=attempt)
                    attempt += 1
                sent, reply = self._submit(target, request, min(CALL_TIMEOUT_S, left))
                if reply is None:
                    unsettled = unsettled or sent
                    why = (f"{target} did not answer within {CALL_TIMEOUT_S} s" if sent
                           else f"{target} is unreachable")
                elif reply.ok:
                    return Outcome("applied", reply, "")
                else:
                    unsettled = unsettled or not settles_not_applied(reply)
                    why = f"{target}: {reply.error or 'refused'} (leader hint: {reply.leader_hint})"
                    hint = reply.leader_hint if reply.leader_hint != target else None
            time.sleep(max(0.0, min(RETRY_PAUSE_S, deadline - time.monotonic())))
        return Outcome("unknown" if unsettled else "not_applied", None, why)
