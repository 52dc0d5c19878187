"""What a node hears about client connections (DESIGN.md section 8).

A node serving a client protocol (``Node.client_protocols``) gets
:class:`ClientOpened` when a client connects and :class:`ClientClosed`
when it goes, from that client's id, as plain messages: so it can list its
clients, and forget what it keeps per client (a blocked pop, a WATCH, a
MULTI queue). In the simulator, client nodes send the same two messages.
:class:`CopyFilter` drops a call delivered twice, for any node that serves
requests.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from synod.core.codec import Message

__all__ = ["ClientOpened", "ClientClosed", "CopyFilter"]


class ClientOpened(Message, tag="core.ClientOpened"):
    """``protocol``: the name the node gave it (``"resp"``); ``addr``: the
    peer's ``host:port`` (or a simulated client's node id)."""

    protocol: str
    addr: str


class ClientClosed(Message, tag="core.ClientClosed"):
    """``reason``: why (``"client closed"``, ``"protocol error: ..."``, ``"idle"``);
    ``protocol_error``: the client sent malformed input (a node may hold
    that against its address, as Bitcoin Core bans a misbehaving peer)."""

    reason: str
    protocol_error: bool = False


class CopyFilter:
    """Drops copies of calls: a network that duplicates (the simulator's,
    or a retransmission below the node) may deliver one request twice, and
    the copy must not run again. Remembers the last ``remembered_max``
    calls by their :class:`~synod.core.node.ReplyHandle` (src, corr);
    plain messages (corr 0) are never copies."""

    __slots__ = ("remembered_max", "_seen")

    def __init__(self, remembered_max: int) -> None:
        self.remembered_max = remembered_max
        self._seen: OrderedDict[Any, None] = OrderedDict()

    def is_copy(self, handle: Any) -> bool:
        """True if the call ``handle`` (``ctx.reply_handle()``) was seen
        lately; otherwise it is remembered and this is False."""
        if handle.corr <= 0:
            return False
        seen = self._seen
        if handle in seen:
            return True
        seen[handle] = None
        if len(seen) > self.remembered_max:
            seen.popitem(last=False)
        return False
