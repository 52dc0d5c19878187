"""Talking to a node from outside the cluster: tests, CLIs, workloads.

A client opens a TCP connection to a node's port and speaks the node wire
protocol (:mod:`synod.runtime.framing`) under its own id, which is not a
configured node id. The node sees a client's request like any message;
``ctx.reply`` (and any ``ctx.send`` to the client's id) goes back on the
client's connection.

- :func:`call`: one request, one reply, blocking.
- :class:`Client`: a connection kept open for many calls; it also receives
  plain messages a node sends to the client's id (:meth:`Client.recv`).
- :func:`call_async`: :func:`call` for asyncio code.

Like ``ctx.call``, a call returns the reply, or ``None`` when none arrives
within the timeout (a paused or partitioned node). A node that is down makes
the call raise ``ConnectionError`` (an ``OSError``).

A cluster with a key (``key_file`` in its config; :mod:`synod.runtime.auth`)
serves only connections that prove it: pass
``credentials=Credentials.from_config(config)`` (a
:class:`~synod.runtime.cluster.LocalCluster` does so for its own calls).
Connecting then runs the key handshake (and TLS when the cluster has it)
before the first request; a node that refuses the key, or cannot prove its
own, raises :class:`~synod.runtime.auth.AuthenticationFailed` (a
``ConnectionError``).

Retries (Raft thesis 6.3). A ``None`` or a broken connection after the
request left says nothing about whether it took effect. A server tells a
retry from a new request by (client id, request id), and it knows the
client id only as the ``src`` of the connection, so a request that is not
idempotent must be retried under the SAME client id (on every connection,
to any node, after any reconnect) and with the SAME request id; a fresh
client id makes each retry a new request, applied once more. Keep the two
in a :class:`Session`.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import time
from collections import deque
from typing import Any

from synod.core.errors import RemoteProtocolError
from synod.runtime.auth import (
    ROLE_CLIENT,
    AuthenticationFailed,
    AuthError,
    ClientHandshake,
    Credentials,
    refusal_reason,
)
from synod.runtime.constants import CLIENT_INBOX_MESSAGES_MAX, FRAME_SIZE_BYTES_MAX, HANDSHAKE_FRAME_BYTES_MAX
from synod.runtime.framing import FrameSplitter, frame, open_envelope, pack_frame

__all__ = ["Client", "Session", "call", "call_async", "new_client_id"]

Addr = tuple[str, int]


def new_client_id(prefix: str = "client") -> str:
    """A fresh client id, unlikely to collide with any other."""
    return f"{prefix}-{os.getpid()}-{secrets.token_hex(4)}"


class Session:
    """One client's identity across the connections and retries of its
    operations (Raft thesis 6.3; the Raft paper, section 8).

    Open every connection that carries one of its operations with
    ``client_id=session.client_id``, and give each logical operation ONE
    request id, :meth:`next_request_id`, that its retries reuse, to whatever
    node and over whatever connection. Request ids rise, one per operation:
    a server answers an id below the latest it applied for this client as
    stale, without applying it. As the thesis assumes, a session has one
    operation outstanding at a time (not thread-safe).

    Args:
        client_id: the id to use (default: a fresh one from :func:`new_client_id`).
    """

    def __init__(self, client_id: str | None = None) -> None:
        self.client_id = client_id or new_client_id()
        self.request_id = 0  # the latest handed out; 0: none yet

    def next_request_id(self) -> int:
        """The id of this session's next logical operation: 1, 2, ..."""
        self.request_id += 1
        return self.request_id


class Client:
    """A blocking connection to one node.

    Args:
        addr: the node's (host, port).
        client_id: this client's ``src`` (default: a fresh unique id).
        connect_timeout_s: bound on connecting (TLS and the key handshake included).
        credentials: the cluster key (and TLS CA) when the cluster has one.
        server_id: if given (with ``credentials``), the node must prove to be this one.

    Raises (from the calls):
        ConnectionError: the node refused or closed the connection
            (:class:`~synod.runtime.auth.AuthenticationFailed`: refused the key).
        socket.timeout: connecting or the key handshake took over ``connect_timeout_s``.
        RemoteProtocolError: the node sent bytes that are not a frame.
    """

    def __init__(self, addr: Addr, *, client_id: str | None = None, connect_timeout_s: float = 2.0,
                 frame_size_bytes_max: int = FRAME_SIZE_BYTES_MAX, credentials: Credentials | None = None,
                 server_id: str | None = None) -> None:
        self.addr = (addr[0], int(addr[1]))
        self.client_id = client_id or new_client_id()
        self.credentials = credentials
        self.server_id = server_id
        self.connect_timeout_s = connect_timeout_s
        self.frame_size_bytes_max = frame_size_bytes_max
        self.inbox: deque[tuple[str, int, Any]] = deque(maxlen=CLIENT_INBOX_MESSAGES_MAX)
        self._sock: socket.socket | None = None
        self._splitter = FrameSplitter(frame_size_bytes_max)
        self._ready: deque[bytes | bytearray] = deque()
        self._next_corr = 1

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        """Connect now (calls connect on first use anyway), with TLS and the
        key handshake when the credentials ask for them."""
        if self._sock is None:
            deadline = time.monotonic() + self.connect_timeout_s
            sock = socket.create_connection(self.addr, timeout=self.connect_timeout_s)
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                ssl_ctx = self.credentials.client_ssl() if self.credentials is not None else None
                if ssl_ctx is not None:
                    sock = ssl_ctx.wrap_socket(sock, server_hostname=self.addr[0])
                self._sock = sock
                self._splitter = FrameSplitter(self.frame_size_bytes_max)
                self._ready.clear()
                if self.credentials is not None:
                    self._authenticate(self.credentials.key, deadline)
            except BaseException:
                self.close()
                sock.close()
                raise

    def _authenticate(self, key: bytes, deadline: float) -> None:
        assert self._sock is not None
        hs = ClientHandshake(key, ROLE_CLIENT, self.client_id, expect_server_id=self.server_id)
        self._splitter.frame_size_bytes_max = HANDSHAKE_FRAME_BYTES_MAX
        self._sock.sendall(frame(hs.hello()))
        payload = self._read_payload(deadline)
        if payload is None:
            raise TimeoutError(f"node at {self.addr[0]}:{self.addr[1]} did not answer the key handshake")
        try:
            proof = hs.receive(payload)
        except AuthError as e:
            raise AuthenticationFailed(f"node at {self.addr[0]}:{self.addr[1]}: {e.reason}") from None
        self._sock.sendall(frame(proof))
        self._splitter.frame_size_bytes_max = self.frame_size_bytes_max

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def send(self, msg: Any) -> None:
        """Send a plain message (no reply expected)."""
        self._send(0, msg)

    def call(self, request: Any, timeout_s: float) -> Any | None:
        """Send ``request`` and wait for its reply; ``None`` after ``timeout_s``.
        Other messages that arrive meanwhile go to :attr:`inbox`."""
        deadline = time.monotonic() + timeout_s
        corr = self._next_corr
        self._next_corr += 1
        try:
            self._send(corr, request)
        except TimeoutError:
            return None
        while True:
            item = self._read(deadline)
            if item is None:
                return None
            src, c, msg = item
            if c == -corr:
                return msg
            if c >= 0:  # a plain message or a request to us; late replies are dropped
                self.inbox.append(item)

    def recv(self, timeout_s: float, kind: type | None = None) -> tuple[str, Any] | None:
        """The next message a node sent to this client (of type ``kind`` if
        given), as ``(src, msg)``; ``None`` after ``timeout_s``."""
        for i, (src, _c, msg) in enumerate(self.inbox):
            if kind is None or type(msg) is kind:
                del self.inbox[i]
                return src, msg
        deadline = time.monotonic() + timeout_s
        while True:
            item = self._read(deadline)
            if item is None:
                return None
            src, c, msg = item
            if c < 0:
                continue
            if kind is None or type(msg) is kind:
                return src, msg
            self.inbox.append(item)

    def _send(self, corr: int, msg: Any) -> None:
        self.connect()
        assert self._sock is not None
        self._sock.settimeout(self.connect_timeout_s)
        self._sock.sendall(pack_frame(self.client_id, corr, msg, self.frame_size_bytes_max))

    def _read(self, deadline: float) -> tuple[str, int, Any] | None:
        payload = self._read_payload(deadline)
        if payload is None:
            return None
        try:
            return open_envelope(payload, self.frame_size_bytes_max)
        except RemoteProtocolError:
            reason = refusal_reason(payload)
            if reason is not None:  # a keyed node refusing a client without the key
                self.close()
                raise AuthenticationFailed(f"node at {self.addr[0]}:{self.addr[1]} refused: {reason}") from None
            raise

    def _read_payload(self, deadline: float) -> bytes | bytearray | None:
        sock = self._sock
        assert sock is not None
        while not self._ready:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            sock.settimeout(remaining)
            try:
                nbytes = sock.recv_into(self._splitter.get_buffer())
            except TimeoutError:
                return None
            if not nbytes:
                self.close()
                raise ConnectionError(f"node at {self.addr[0]}:{self.addr[1]} closed the connection")
            self._ready.extend(self._splitter.buffer_updated(nbytes))
        return self._ready.popleft()


def call(addr: Addr, request: Any, timeout_s: float, *, client_id: str | None = None,
         credentials: Credentials | None = None) -> Any | None:
    """One request to the node at ``addr``; its reply, or ``None`` if none
    arrives within ``timeout_s`` (connecting included). Each call is a new
    connection under ``client_id`` (default: a fresh id); to retry a request
    that is not idempotent, pass the same ``client_id`` (see :class:`Session`).

    ``credentials``: the cluster key (and TLS CA) when the cluster has one.

    Raises:
        ConnectionError: the node is not listening or closed the connection
            (:class:`~synod.runtime.auth.AuthenticationFailed`: refused the key).
    """
    deadline = time.monotonic() + timeout_s
    with Client(addr, client_id=client_id, connect_timeout_s=timeout_s, credentials=credentials) as client:
        try:
            client.connect()
        except TimeoutError:
            return None
        return client.call(request, max(0.0, deadline - time.monotonic()))


async def call_async(addr: Addr, request: Any, timeout_s: float, *, client_id: str | None = None,
                     frame_size_bytes_max: int = FRAME_SIZE_BYTES_MAX,
                     credentials: Credentials | None = None) -> Any | None:
    """:func:`call` for asyncio code (same retry rule: pass the same ``client_id``)."""
    src = client_id or new_client_id()

    async def exchange() -> Any:
        ssl_ctx = credentials.client_ssl() if credentials is not None else None
        reader, writer = await asyncio.open_connection(addr[0], addr[1], ssl=ssl_ctx)
        splitter = FrameSplitter(frame_size_bytes_max)

        async def payloads() -> Any:
            while True:
                data = await reader.read(1 << 16)
                if not data:
                    raise ConnectionError(f"node at {addr[0]}:{addr[1]} closed the connection")
                for payload in splitter.feed(data):
                    yield payload

        try:
            incoming = payloads()
            if credentials is not None:
                hs = ClientHandshake(credentials.key, ROLE_CLIENT, src)
                splitter.frame_size_bytes_max = HANDSHAKE_FRAME_BYTES_MAX
                writer.write(frame(hs.hello()))
                try:
                    writer.write(frame(hs.receive(await anext(incoming))))
                except AuthError as e:
                    raise AuthenticationFailed(f"node at {addr[0]}:{addr[1]}: {e.reason}") from None
                splitter.frame_size_bytes_max = frame_size_bytes_max
            writer.write(pack_frame(src, 1, request, frame_size_bytes_max))
            await writer.drain()
            while True:
                payload = await anext(incoming)
                try:
                    _src, corr, msg = open_envelope(payload, frame_size_bytes_max)
                except RemoteProtocolError:
                    reason = refusal_reason(payload)
                    if reason is not None:
                        raise AuthenticationFailed(f"node at {addr[0]}:{addr[1]} refused: {reason}") from None
                    raise
                if corr == -1:
                    return msg
        finally:
            writer.close()

    try:
        return await asyncio.wait_for(exchange(), timeout_s)
    except TimeoutError:
        return None
