"""What a node hears about client connections (DESIGN.md section 8).

A node serving a client protocol (``Node.client_protocols``) gets
:class:`ClientOpened` when a client connects and :class:`ClientClosed`
when it goes, from that client's id, as plain messages: so it can list its
clients, and forget what it keeps per client (a blocked pop, a WATCH, a
MULTI queue). In the simulator, client nodes send the same two messages.
"""

from __future__ import annotations

from synod.core.codec import Message

__all__ = ["ClientOpened", "ClientClosed"]


class ClientOpened(Message, tag="core.ClientOpened"):
    """``protocol``: the name the node gave it (``"resp"``); ``addr``: the
    peer's ``host:port`` (or a simulated client's node id)."""

    protocol: str
    addr: str


class ClientClosed(Message, tag="core.ClientClosed"):
    """``reason``: why (``"client closed"``, ``"protocol error: ..."``, ``"idle"``)."""

    reason: str
