"""What both sides of RESP share (:mod:`synod.kv.protocol`, the server;
:mod:`synod.kv.resp_client`, the client): the protocol error, Redis's
``string2ll`` and the framing bytes."""

from __future__ import annotations

from synod.core.errors import RemoteProtocolError
from synod.kv.messages import Command
from synod.kv.replies import Reply

__all__ = ["RespProtocolError", "string2ll", "LLONG_MAX", "LLONG_MIN", "CR", "LF", "CRLF", "STAR", "DOLLAR"]

LLONG_MAX = 2**63 - 1
LLONG_MIN = -(2**63)
CR = b"\r"
LF = b"\n"
CRLF = b"\r\n"
STAR = 42  # '*'
DOLLAR = 36  # '$'


class RespProtocolError(RemoteProtocolError):
    """A client sent bytes that are not RESP, or over a limit.

    ``str(error)`` is Redis's reply text without ``ERR`` (``"Protocol error:
    invalid bulk length"``), or, for an overfull query buffer (which Redis
    answers by closing silently), a description. ``commands``: the whole
    commands parsed in the same :meth:`~synod.kv.protocol.RespProtocol.receive_data` call before
    the bad bytes; Redis runs them before writing the error, and they count
    in :attr:`~synod.kv.protocol.RespProtocol.pending`, so a gateway may run and answer them
    before writing :meth:`~synod.kv.protocol.RespProtocol.error_bytes` and closing.
    ``replies``: likewise, the whole replies :meth:`~synod.kv.resp_client.RespReader.receive_data`
    read before the bad bytes.
    """

    def __init__(self, text: str, commands: list[Command] | None = None,
                 replies: list[Reply] | None = None) -> None:
        super().__init__(text)
        self.commands: list[Command] = commands if commands is not None else []
        self.replies: list[Reply] = replies if replies is not None else []


def string2ll(s: bytes) -> int | None:
    """``s`` as Redis's ``string2ll`` reads it (util.c): optional ``-``, no
    ``+``, no spaces, no leading zeros, within a signed 64-bit long long,
    under 21 bytes; None otherwise."""
    if len(s) >= 21:
        return None
    neg = s[:1] == b"-"
    digits = s[1:] if neg else s
    if not digits.isdigit() or (digits[0] == 48 and (len(digits) > 1 or neg)):
        return None
    v = -int(digits) if neg else int(digits)
    if v > LLONG_MAX or v < LLONG_MIN:
        return None
    return v
