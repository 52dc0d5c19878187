"""Requests to a KV node, as typed messages.

A client's command reaches the node as a :class:`Command`, whether it came
through a RESP port (the runtime's client gateway parses the bytes with
:class:`synod.kv.protocol.RespProtocol`) or from a simulated client node, so
one state machine serves both. The node answers with a reply of
:mod:`synod.kv.replies`.
"""

from __future__ import annotations

from synod.core.codec import Message

__all__ = ["Command"]


class Command(Message, tag="kv.Command"):
    """One command: ``args[0]`` is its name (any case), the rest its
    arguments, all as bytes (``(b"SET", b"k", b"v")``)."""

    args: tuple[bytes, ...]
