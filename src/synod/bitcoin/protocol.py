"""A Bitcoin P2P connection as a sans-IO protocol object (h11's shape).

Spec: Bitcoin Core's v1 transport (``net.cpp`` ``V1Transport``) and its
message formats (``protocol.h``, ``net_processing.cpp``), as
:mod:`synod.bitcoin.p2p` reads and writes them. DESIGN.md section 8: the
runtime's client gateway serves a P2P port with one :class:`P2pProtocol`
per connection, so a peer nobody here wrote (bitcoind, python-bitcoinlib)
talks to a synod node.

Roles
    :class:`P2pProtocol` is one side of one peer connection: bytes in
    (:meth:`~P2pProtocol.receive_data`) -> typed messages of
    :mod:`synod.bitcoin.messages`, each a request the node answers exactly
    once; replies in (:meth:`~P2pProtocol.send`) -> bytes; unsolicited
    messages (an inv announcement, a ping, our own version on an outbound
    connection) through :meth:`~P2pProtocol.push`. Nothing here reads a
    socket, a clock or randomness.

Requests and replies
    Bitcoin's P2P is not request/reply: a message may call for no answer
    (verack, inv of known objects), one (ping -> pong) or several (getdata
    -> blocks and a notfound). The gateway needs one reply per request, in
    order, so the node answers each message with a
    :class:`~synod.bitcoin.messages.P2pReply` of zero or more messages;
    an empty one writes nothing. ``P2pReply(disconnect=True)`` closes the
    connection after its messages (``wants_close``), as Core disconnects a
    peer. Which messages are legal when (version first, verack once) is the
    node's business, not this framer's.

States
    OPEN: reading messages. CLOSING: a reply or push asked to disconnect;
    nothing more is read, ``wants_close`` is true. BROKEN: the peer sent a
    malformed message; :meth:`receive_data` raised a
    :class:`~synod.bitcoin.p2p.P2pError` (a ``RemoteProtocolError``) and
    raises again: the gateway closes the connection, writing nothing
    (:meth:`error_bytes` is empty: Bitcoin just disconnects), and the node
    runs on.

Limits
    One payload at most ``payload_bytes_max`` (Core's 4,000,000 bytes);
    buffered unparsed input at most one header and one such payload; the
    per-message limits of :mod:`synod.bitcoin.p2p`. Unanswered requests are
    bounded by the gateway (``GATEWAY_INFLIGHT_REQUESTS_MAX``).
"""

from __future__ import annotations

from synod.bitcoin.messages import P2pMessage, P2pReply
from synod.bitcoin.p2p import MAX_PROTOCOL_MESSAGE_LENGTH, MessageReader, encode_message
from synod.core.errors import LocalProtocolError

__all__ = ["P2pProtocol"]


class P2pProtocol:
    """One Bitcoin peer connection (sans-IO).

    Args:
        magic: the network's 4-byte magic (``p2p.MAINNET_MAGIC``, ``REGTEST_MAGIC`` ...).
        payload_bytes_max: the largest payload accepted from the peer, bytes.

    Attributes:
        wants_close: True once a reply or push asked to disconnect the peer.

    Raises:
        LocalProtocolError: ``magic`` is not 4 bytes, or ``payload_bytes_max``
            is outside 0..4,000,000.
    """

    def __init__(self, magic: bytes, *, payload_bytes_max: int = MAX_PROTOCOL_MESSAGE_LENGTH) -> None:
        self.magic = bytes(magic)
        self._reader = MessageReader(self.magic, payload_bytes_max=payload_bytes_max)
        self._pending = 0   # requests handed out by receive_data and not yet answered
        self.wants_close = False

    @property
    def buffered_bytes(self) -> int:
        """Bytes received that are not yet part of a whole message."""
        return self._reader.buffered_bytes

    @property
    def pending(self) -> int:
        """Requests handed out by :meth:`receive_data` and not yet answered."""
        return self._pending

    def receive_data(self, data: bytes) -> list[P2pMessage]:
        """Feed bytes read from the peer; returns every message they complete,
        in order. Each must be answered once with :meth:`send`. After a
        disconnect was asked for, bytes are dropped.

        Raises:
            P2pError (a RemoteProtocolError): a malformed message (wrong
                magic, bad command, oversize, bad checksum, a payload that
                does not parse or is over a limit); raised again on every
                later call.
        """
        if self.wants_close:
            return []
        msgs = self._reader.feed(data)
        self._pending += len(msgs)
        return msgs

    def send(self, reply: P2pReply) -> bytes:
        """Render the reply to the oldest unanswered request: its messages,
        framed, back to back (b"" for none).

        Raises:
            LocalProtocolError: no request awaits a reply, ``reply`` is not a
                :class:`P2pReply`, or one of its messages cannot be encoded.
        """
        if self._pending == 0:
            raise LocalProtocolError("send() with no request awaiting a reply")
        if not isinstance(reply, P2pReply):
            raise LocalProtocolError(f"a P2P request is answered by a P2pReply, not {type(reply).__name__}")
        out = self._render(reply)
        self._pending -= 1
        return out

    def push(self, msg: P2pMessage | P2pReply) -> bytes:
        """Render an unsolicited message (or a :class:`P2pReply` of several,
        which may disconnect), answering no request.

        Raises:
            LocalProtocolError: ``msg`` cannot be encoded as a P2P message.
        """
        if isinstance(msg, P2pReply):
            return self._render(msg)
        return encode_message(msg, self.magic)

    def error_bytes(self, error: Exception) -> bytes:
        """Bytes written before a protocol-error close: none (Core just
        disconnects a peer that sent a malformed message)."""
        return b""

    def _render(self, reply: P2pReply) -> bytes:
        out = b"".join(encode_message(m, self.magic) for m in reply.messages)
        if reply.disconnect:
            self.wants_close = True
        return out
