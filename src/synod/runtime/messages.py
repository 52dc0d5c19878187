"""Control messages of the real runtime (tags ``runtime.*``).

A supervisor or any client sends these to a node's port like any request
(with a correlation id); the node's transport answers them itself, on the
same connection, and the node's handlers never see them:

- :class:`SetFaults` -> :class:`FaultsSet`: replace the node's fault state.
- :class:`StatusRequest` -> :class:`Status`: who and how the node is.

:class:`Faults` is the fault layer's state (DESIGN.md section 6). It applies
to traffic between configured nodes only; clients and control messages are
never dropped, delayed or blocked.

- ``drop_probability``: each message this node sends to a peer is dropped
  with this probability;
- ``delay_ms``: each message this node sends to a peer waits this long first;
- ``blocked_out``: peers this node sends nothing to;
- ``blocked_in``: peers whose messages this node discards on arrival.

A symmetric partition between A and B blocks B in both sets of A and A in
both sets of B; a one-way partition A -> B puts B in A's ``blocked_out`` and
A in B's ``blocked_in``.
"""

from __future__ import annotations

from synod.core.codec import Message

__all__ = ["Faults", "SetFaults", "FaultsSet", "StatusRequest", "Status", "NO_FAULTS", "CONTROL_REQUESTS"]


class Faults(Message, tag="runtime.Faults"):
    drop_probability: float = 0.0
    delay_ms: float = 0.0
    blocked_out: tuple[str, ...] = ()
    blocked_in: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Runs on decode too, so a bad value from the wire is rejected here;
        # the transport turns ValueError into a RemoteProtocolError.
        if not 0.0 <= self.drop_probability <= 1.0:
            raise ValueError(f"drop_probability must be in [0, 1], got {self.drop_probability}")
        if not 0.0 <= self.delay_ms <= 3_600_000.0:
            raise ValueError(f"delay_ms must be in [0, 3600000], got {self.delay_ms}")

    @property
    def is_clear(self) -> bool:
        return self == NO_FAULTS

    def to_json(self) -> dict:
        return {
            "drop_probability": self.drop_probability,
            "delay_ms": self.delay_ms,
            "blocked_out": sorted(self.blocked_out),
            "blocked_in": sorted(self.blocked_in),
        }

    @classmethod
    def from_json(cls, raw: dict) -> Faults:
        return cls(
            drop_probability=float(raw.get("drop_probability", 0.0)),
            delay_ms=float(raw.get("delay_ms", 0.0)),
            blocked_out=tuple(sorted(raw.get("blocked_out", ()))),
            blocked_in=tuple(sorted(raw.get("blocked_in", ()))),
        )


NO_FAULTS = Faults()


class SetFaults(Message, tag="runtime.SetFaults"):
    faults: Faults


class FaultsSet(Message, tag="runtime.FaultsSet"):
    node_id: str
    faults: Faults


class StatusRequest(Message, tag="runtime.StatusRequest"):
    pass


class Status(Message, tag="runtime.Status"):
    node_id: str
    pid: int
    uptime_ms: float
    faults: Faults
    peers_connected: tuple[str, ...]
    clients: int
    frames_received: int
    frames_sent: int
    messages_dropped: int
    protocol_errors: int
    bytes_received: int = 0
    inbound_connections: int = 0
    partial_frame_bytes: int = 0  # reserved from the partial-frame budget
    connections_refused: int = 0  # closed by the connection and memory limits
    auth_failures: int = 0  # connections that failed the cluster-key handshake


CONTROL_REQUESTS = (SetFaults, StatusRequest)
