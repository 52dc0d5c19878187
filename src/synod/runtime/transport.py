"""TCP between node processes, with a fault layer (DESIGN.md section 6).

Frames and envelopes are described in :mod:`synod.runtime.framing`.

Outgoing (:mod:`synod.runtime._links`): one ``_PeerLink`` per configured
node (and per node of the address book, below). With a cluster key, the
links to configured peers are opened when the node starts serving and kept
open: each reconnects with exponential backoff (capped, jittered) whenever
its connection drops, so every peer hears this node's handshake (the node
*announces* itself), again after either end restarts. Other links (every
link without a key, learned ones) connect on their first send and
reconnect while frames wait. While a link is down or the socket's buffer is
above asyncio's high-water mark, frames wait in a queue bounded by
``SEND_QUEUE_MESSAGES_MAX``; a full queue drops the newest frame, as a
congested network would, and says so in the log (one line when dropping
starts, one when it stops). Writes are corked: the frames a loop turn
produces for one connection leave in one socket write at the end of the
turn. Frames in flight when a connection breaks are lost, as on a real
network; the protocols above retry.

Incoming: one listener. The sender is the envelope's ``src``, fixed by a
connection's first frame (with a key: by the handshake). A src that is
neither a configured node nor in the address book is a *client*: messages to
that id go back on the connection it came from, so a client process can send
a request and read the reply on one connection; frames arriving on a
connection this node opened are delivered too. A connection that sends
bytes that do not decode, a malformed envelope, a src change or a frame over
``frame_size_bytes_max`` is closed with ONE log line; the node keeps serving
everyone else. So is the connection of a src whose message the node itself
found invalid (:meth:`Transport.reject_src`).

Authentication (issue 8): with a cluster key (``credentials``), every
connection starts with the handshake of :mod:`synod.runtime.auth`: an inbound
one must prove the key before any envelope is read (until then its frames may
be at most ``HANDSHAKE_FRAME_BYTES_MAX`` bytes), and its ``src`` is the id it
authenticated as; an outgoing link proves it the same way and checks that the
node it reached is the configured peer. A refused connector gets a
``Refused(reason)`` frame and a close; the node logs one WARNING line. With
TLS, the listener and the links wrap their sockets first.

Address book (membership changes, Raft thesis 4.1): a server added to a
running cluster is in its own config and in the rewritten config file, but
not in the config the running nodes started with. It announces itself by
opening its kept-open links; with a cluster key, the handshake of such a
link proves the key as role ``node`` and carries the connector's listen
address, bound into both proofs (:mod:`synod.runtime.auth`). A node records
an announced address of an id that is not in its config (a configured
node's address never changes this way; an unspecified host such as 0.0.0.0
is replaced by the connection's source address) and from then on treats the
id as a peer: sends to it go through a ``_PeerLink`` that dials it, its
connections are in the peer pool, and the fault layer applies to it as to a
configured node (``Faults`` name nodes by id). So the leader that adds a
learner reaches it though the learner never sends first, and so does every
later leader. The latest announcement wins (a node restarted on another
port). The book holds at most ``LEARNED_PEERS_MAX`` ids; when full, a new id
replaces the least recently announced one that has no connection open to
this node, or else is not learned. It lives in memory: a restarted node
reads the config file, which the supervisor rewrote when it added the node,
and hears any other added node again when that node's kept-open link
reconnects.

Without a key there is no handshake, nothing is announced and nothing is
learned: an unkeyed config is a loopback test setup in which an envelope's
``src`` is not proven, and an address taken from an unproven connection
would let any local process point a node's messages for an id at a port of
its choosing. There an added node stays a client of the nodes that started
without it, as before: they answer it on a connection it opened and sent
on, and the fault layer does not apply to it; a learner, which sends
nothing first, is not reached. Membership changes need the key, which
``synod cluster up``, ``synod kv up`` and ``write_config`` create unless told
not to.

Limits (issue 8): inbound connections live in three pools (constants.py):
*pending* (not yet authenticated or identified; full: the oldest is closed;
each must finish within ``HANDSHAKE_TIMEOUT_MS``), *peers* (per configured
node; full: that node's oldest is closed) and *clients* (full: the new one is
refused; idle for ``CLIENT_IDLE_TIMEOUT_MS``: closed). Frames being received
reserve their length from a node-wide :class:`~synod.runtime.framing.FrameBudget`
(a frame that does not fit closes its connection) and must complete within a
deadline that grows with their length. A flood's warnings are summarised,
one line per ``WARNING_INTERVAL_MS``.

Control requests (:mod:`synod.runtime.messages`, ``SetFaults`` and
``StatusRequest``) are answered here and never reach the node.

Fault layer: the current :class:`~synod.runtime.messages.Faults` applies to
messages between configured or learned nodes: drops and delays on send,
``blocked_out`` on send and ``blocked_in`` on arrival. The supervisor switches it at run time
with a ``SetFaults`` control message (and writes it to ``faults.json`` in the
node's folder, which the node reads when it starts).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import random
from collections.abc import Callable
from typing import Any

from synod.core.errors import RemoteProtocolError
from synod.runtime._conn import _Conn, now_ms
from synod.runtime._links import _Outbound, _PeerLink
from synod.runtime.auth import ROLE_NODE, AuthError, Credentials, ServerHandshake, refused_payload
from synod.runtime.constants import (
    CLIENT_CONNECTIONS_MAX,
    CLIENT_IDLE_TIMEOUT_MS,
    FRAME_RECEIVE_BYTES_PER_S_MIN,
    FRAME_RECEIVE_TIMEOUT_MS_MIN,
    HANDSHAKE_FRAME_BYTES_MAX,
    HANDSHAKE_TIMEOUT_MS,
    LEARNED_PEERS_MAX,
    LISTEN_BACKLOG,
    PARTIAL_FRAME_BYTES_MAX,
    PEER_CONNECTIONS_PER_NODE_MAX,
    PENDING_CONNECTIONS_MAX,
    SEND_QUEUE_MESSAGES_MAX,
    SWEEP_INTERVAL_MS,
    WARNING_INTERVAL_MS,
    WARNINGS_PER_INTERVAL_MAX,
)
from synod.runtime.framing import FrameBudget, FrameRefused, frame, pack_frame
from synod.runtime.messages import NO_FAULTS, Faults, FaultsSet, SetFaults, Status, StatusRequest

__all__ = ["Transport"]

log = logging.getLogger("synod.runtime")

Deliver = Callable[[str, Any, int], None]
Trace = Callable[[str, dict[str, Any]], None]


class _Throttle:
    """At most ``WARNINGS_PER_INTERVAL_MAX`` WARNING lines of one kind per
    ``WARNING_INTERVAL_MS``; the lines held back are counted in one summary
    line (a flood is a few lines, not thousands; a lone event is one line)."""

    __slots__ = ("_state",)

    def __init__(self) -> None:
        # kind -> [interval start ms, lines in this interval, lines held back]
        self._state: dict[str, list[Any]] = {}

    def warn(self, kind: str, msg: str, *args: Any) -> None:
        now = now_ms()
        st = self._state.get(kind)
        if st is None or now - st[0] >= WARNING_INTERVAL_MS:
            if st is not None and st[2]:
                log.warning("%d more %s warnings held back", st[2], kind)
            st = self._state[kind] = [now, 0, 0]
        if st[1] >= WARNINGS_PER_INTERVAL_MAX:
            st[2] += 1
            return
        st[1] += 1
        log.warning(msg, *args)

    def flush(self) -> None:
        """Report held-back lines whose interval is over."""
        now = now_ms()
        for kind, st in list(self._state.items()):
            if now - st[0] >= WARNING_INTERVAL_MS:
                if st[2]:
                    log.warning("%d more %s warnings held back in %.0f ms", st[2], kind, now - st[0])
                del self._state[kind]


class Transport:
    """The network of one node process.

    Args:
        node_id: this node's id (the ``src`` of every frame it sends).
        addrs: every configured node id -> (host, port), this one included.
        frame_size_bytes_max: bound on a frame's payload, both directions.
        deliver: called as ``deliver(src, msg, corr)`` for each message that
            passes the fault layer.
        trace: ``trace(event, fields)`` for drops and protocol errors.
        rng: randomness for drops and backoff jitter (not the node's rng).
        credentials: the cluster key (and TLS files) every connection must
            prove; None: no authentication (loopback-only configs).
        partial_frame_bytes_max: the node-wide budget for frames being
            received, in bytes.
    """

    def __init__(self, node_id: str, addrs: dict[str, tuple[str, int]], *, frame_size_bytes_max: int,
                 deliver: Deliver, trace: Trace, rng: random.Random, credentials: Credentials | None = None,
                 partial_frame_bytes_max: int = PARTIAL_FRAME_BYTES_MAX) -> None:
        self.node_id = node_id
        self.frame_size_bytes_max = frame_size_bytes_max
        self._deliver = deliver
        self._trace = trace
        self.rng = rng
        self.key = credentials.key if credentials is not None else None
        self.server_ssl = credentials.server_ssl() if credentials is not None else None
        self.client_ssl = credentials.client_ssl() if credentials is not None else None
        self.budget = FrameBudget(partial_frame_bytes_max)
        self.faults: Faults = NO_FAULTS
        self.links = {pid: _PeerLink(self, pid, addr) for pid, addr in addrs.items()}
        self.configured = frozenset(addrs)
        # The address book: learned node ids, least recently announced first
        # (each has a learned link in self.links). Bounded by LEARNED_PEERS_MAX.
        self.learned: dict[str, None] = {}
        self.listen_addr: tuple[str, int] | None = None  # announced in the handshake of every link
        self.inbound: set[_Inbound] = set()
        # The three pools of inbound connections (see the module docstring).
        self.pending: dict[_Inbound, None] = {}  # insertion order: oldest first
        self.peer_conns: dict[str, list[_Inbound]] = {}
        self.client_conns: set[_Inbound] = set()
        self.clients: dict[str, _Inbound] = {}  # client id -> its latest connection
        self.server: asyncio.Server | None = None
        self.closing = False
        self.receiving = True
        self.started_ms = 0.0
        self._sweeper: asyncio.TimerHandle | None = None
        self._throttle = _Throttle()
        # Writes are corked: frames produced during one turn of the loop go
        # out in one write per connection at the end of that turn.
        self._flush_scheduled = False
        self._dirty_links: list[_PeerLink] = []
        self._dirty_conns: list[_Conn] = []
        self.frames_received = 0
        self.frames_sent = 0
        self.bytes_received = 0
        self.messages_dropped = 0
        self.protocol_errors = 0
        self.auth_failures = 0
        self.connections_refused = 0  # evicted, refused or timed out by the limits

    # -- lifecycle ------------------------------------------------------------------
    async def listen(self, host: str, port: int) -> None:
        """Bind the listener (raises OSError if the port is taken); accepting
        starts with :meth:`start_serving`."""
        loop = asyncio.get_running_loop()
        self.started_ms = loop.time() * 1000.0
        tls: dict[str, Any] = {}
        if self.server_ssl is not None:
            tls = {"ssl": self.server_ssl, "ssl_handshake_timeout": HANDSHAKE_TIMEOUT_MS / 1000.0}
        self.server = await loop.create_server(lambda: _Inbound(self), host, port, start_serving=False,
                                               reuse_address=True, backlog=LISTEN_BACKLOG, **tls)
        self.listen_addr = (host, self.server.sockets[0].getsockname()[1])

    async def start_serving(self) -> None:
        """Accept connections and, with a key, open a kept-open link to every
        configured peer (this node announces itself; see the module
        docstring)."""
        assert self.server is not None
        await self.server.start_serving()
        if self._sweeper is None:
            self._sweep()
        if self.key is None:
            return  # an unproven announcement teaches nothing (module docstring)
        for pid, link in self.links.items():
            if pid != self.node_id and not link.learned:
                link.keep_open()

    async def flush(self, timeout_ms: float) -> bool:
        """Wait (at most ``timeout_ms``) until every queued and buffered frame
        has been handed to the OS. Returns whether everything was."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_ms / 1000.0
        while True:
            if not self._pending():
                return True
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.005)

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_writes)

    def _flush_writes(self) -> None:
        self._flush_scheduled = False
        links, self._dirty_links = self._dirty_links, []
        for link in links:
            link.dirty = False
            link.flush_queue()
        conns, self._dirty_conns = self._dirty_conns, []
        for conn in conns:
            conn.dirty = False
            conn.flush_pending()

    def write_buffered_bytes(self) -> int:
        """Bytes waiting to go out on every inbound connection (corked and
        in the socket buffers): what CLIENT_WRITE_BUFFERS_BYTES_MAX bounds."""
        total = 0
        for c in self.inbound:
            total += c.pending_bytes
            if c.transport is not None:
                total += c.transport.get_write_buffer_size()
        return total

    def _pending(self) -> bool:
        for link in self.links.values():
            if link.queue or link.held:
                return True
            if link.proto is not None and link.proto.transport.get_write_buffer_size():
                return True
        return any(c.pending or (c.transport is not None and c.transport.get_write_buffer_size())
                   for c in self.inbound)

    def stop_receiving(self) -> None:
        """The node stopped: accept nothing more (control requests included,
        so a supervisor waiting for a restarted node never mistakes this
        process for the new one); queued sends still go out until
        :meth:`close`."""
        self.receiving = False
        if self.server is not None:
            self.server.close()
        for conn in list(self.inbound):
            conn.close(abort=False)  # flushes replies already written, then closes

    def close(self) -> None:
        """Stop listening and close every connection."""
        self.closing = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self.server is not None:
            self.server.close()
        for link in self.links.values():
            link.close()
        for conn in list(self.inbound):
            conn.close(abort=True)

    # -- sending --------------------------------------------------------------------
    def send(self, dst: str, msg: Any, corr: int) -> None:
        """Send one message (called by the host for each queued send).

        Raises:
            LocalProtocolError: the message does not encode or is over the
                frame size limit (a bug in the node: it must bound its messages).
        """
        frame_bytes = pack_frame(self.node_id, corr, msg, self.frame_size_bytes_max)
        link = self.links.get(dst)
        if link is None:
            conn = self.clients.get(dst)
            if conn is None:
                self._dropped(dst, corr, "no connection to this client")
            elif not conn.write(frame_bytes):
                self._dropped(dst, corr, "client write buffer full")
            else:
                self.frames_sent += 1
            return
        faults = self.faults
        if faults is not NO_FAULTS:
            if dst in faults.blocked_out:
                self._dropped(dst, corr, "partition")
                return
            if faults.drop_probability and self.rng.random() < faults.drop_probability:
                self._dropped(dst, corr, "drop fault")
                return
            if faults.delay_ms > 0:
                if link.full():
                    self._overflow(link, corr)
                    return
                link.held += 1
                asyncio.get_running_loop().call_later(faults.delay_ms / 1000.0, link.release, frame_bytes)
                self.frames_sent += 1
                return
        if link.put(frame_bytes):
            self.frames_sent += 1
        else:
            self._overflow(link, corr)

    def _overflow(self, link: _PeerLink, corr: int) -> None:
        if link.overflowed == 0:
            log.warning("send queue to %s full (%d messages): dropping until it drains",
                        link.peer_id, SEND_QUEUE_MESSAGES_MAX)
        link.overflowed += 1
        self._dropped(link.peer_id, corr, "send queue full")

    def _dropped(self, dst: str, corr: int, reason: str) -> None:
        self.messages_dropped += 1
        self._trace("drop", {"dst": dst, "corr": corr, "reason": reason})

    # -- receiving ------------------------------------------------------------------
    def _received(self, conn: _Conn, src: str, corr: int, msg: Any) -> None:
        self.frames_received += 1
        if type(msg) is SetFaults or type(msg) is StatusRequest:
            conn.write(pack_frame(self.node_id, -corr, self._control(msg), self.frame_size_bytes_max))
            return
        if src in self.faults.blocked_in and src in self.links:
            self._dropped(src, corr, "partition (inbound)")
            return
        self._deliver(src, msg, corr)

    def _control(self, msg: SetFaults | StatusRequest) -> Any:
        if type(msg) is SetFaults:
            self.set_faults(msg.faults)
            return FaultsSet(node_id=self.node_id, faults=self.faults)
        return self.status()

    def set_faults(self, faults: Faults) -> None:
        """Replace the fault state (takes effect for the next message)."""
        self.faults = NO_FAULTS if faults == NO_FAULTS else faults
        log.info("faults set: %s", self.faults.to_json())
        self._trace("faults", self.faults.to_json())

    def status(self) -> Status:
        now_ms = asyncio.get_running_loop().time() * 1000.0
        return Status(
            node_id=self.node_id,
            pid=os.getpid(),
            uptime_ms=now_ms - self.started_ms,
            faults=self.faults,
            peers_connected=tuple(pid for pid, link in self.links.items() if link.proto is not None),
            clients=len(self.clients),
            frames_received=self.frames_received,
            frames_sent=self.frames_sent,
            messages_dropped=self.messages_dropped,
            protocol_errors=self.protocol_errors,
            bytes_received=self.bytes_received,
            inbound_connections=len(self.inbound),
            partial_frame_bytes=self.budget.bytes_reserved,
            connections_refused=self.connections_refused,
            auth_failures=self.auth_failures,
        )

    def reject_src(self, src: str, error: Exception) -> int:
        """The node found a message from ``src`` invalid (its handler raised
        :class:`RemoteProtocolError`): close every connection ``src``'s
        frames arrive on, with one WARNING line and one ``protocol_error``
        trace event. A peer reconnects; the node runs on. Returns how many
        connections were closed."""
        conns: list[_Conn] = [c for c in self.inbound if c.src == src and not c.closed]
        conns += [link.proto for link in self.links.values()
                  if link.proto is not None and link.proto.src == src and not link.proto.closed]
        self.protocol_errors += 1
        log.warning("closed %d connection(s) of %s: invalid message: %s", len(conns), src, error)
        self._trace("protocol_error", {"src": src, "error": str(error), "connections": len(conns)})
        for conn in conns:
            conn.close(abort=True)
        return len(conns)

    def _reject(self, conn: _Conn, error: RemoteProtocolError) -> None:
        """Close a connection that broke the protocol: one log line, one trace."""
        peer = conn.peername
        if isinstance(error, FrameRefused):
            self.connections_refused += 1
            self._throttle.warn("budget", "closed connection from %s (src=%s): %s", peer, conn.src, error)
        else:
            self.protocol_errors += 1
            log.warning("closed connection from %s (src=%s): protocol error: %s", peer, conn.src, error)
        self._trace("protocol_error", {"peer": str(peer), "src": conn.src, "error": str(error)})
        conn.close(abort=True)

    def _auth_failed(self, conn: _Conn, error: RemoteProtocolError) -> None:
        """A connection failed the key handshake: tell it why, close it, one
        (throttled) WARNING line."""
        self.auth_failures += 1
        reason = error.reason if isinstance(error, AuthError) else f"this node requires the cluster key ({error})"
        if isinstance(conn, _Outbound):
            self._throttle.warn(f"auth-out:{conn.link.peer_id}", "could not authenticate to %s at %s:%d: %s",
                                conn.link.peer_id, *conn.link.addr, reason)
        else:
            reason = f"not authenticated: {reason}"
            self._throttle.warn("auth-in", "refused connection from %s: %s", conn.peername, reason)
            conn.write_raw(frame(refused_payload(reason)))
        self._trace("auth_failed", {"peer": str(conn.peername), "reason": reason})
        conn.close(abort=False)

    # -- the pools of inbound connections ------------------------------------------
    def _accepted(self, conn: _Inbound) -> bool:
        """A new inbound connection: into the pending pool, evicting the
        oldest pending one if the pool is full."""
        if not self.receiving or self.closing:
            return False
        if len(self.pending) >= PENDING_CONNECTIONS_MAX:
            # The oldest that has sent nothing yet (a real connector sends its
            # hello at once); if every one has, the oldest.
            victim = next((c for c in self.pending if not c.bytes_in), None) or next(iter(self.pending))
            del self.pending[victim]
            self.connections_refused += 1
            self._throttle.warn("pending", "closed the oldest unauthenticated connection (from %s) to make room: "
                                "%d connections pending (PENDING_CONNECTIONS_MAX)",
                                victim.peername, PENDING_CONNECTIONS_MAX)
            victim.close(abort=True)
        self.inbound.add(conn)
        self.pending[conn] = None
        return True

    def _admit(self, conn: _Inbound) -> bool:
        """``conn`` authenticated (or, without a key, sent its first frame)
        as ``conn.src``: move it to the peer or the client pool. False if it
        was refused (and closed)."""
        self.pending.pop(conn, None)
        src = conn.src
        assert src is not None
        if conn.announced is not None and src not in self.configured:
            self._learn(src, conn.announced, conn)
        if src in self.links:
            conns = self.peer_conns.setdefault(src, [])
            conns.append(conn)
            conn.kind = "peer"
            while len(conns) > PEER_CONNECTIONS_PER_NODE_MAX:
                old = conns.pop(0)
                log.info("closed an older connection of peer %s (from %s): %d open", src, old.peername, len(conns) + 1)
                old.close(abort=True)
            return True
        if len(self.client_conns) >= CLIENT_CONNECTIONS_MAX:
            self.connections_refused += 1
            self._throttle.warn("clients", "refused client %s from %s: %d client connections open "
                                "(CLIENT_CONNECTIONS_MAX)", src, conn.peername, len(self.client_conns))
            conn.close(abort=True)
            return False
        conn.kind = "client"
        self.client_conns.add(conn)
        self.clients[src] = conn
        return True

    def _learn(self, node_id: str, announced: tuple[str, int], conn: _Inbound) -> None:
        """Put ``node_id`` at ``announced`` in the address book (its
        connection ``conn`` proved the key as a node); see the module
        docstring."""
        assert conn.kind is None
        host, port = announced
        if _unspecified(host) and isinstance(conn.peername, tuple):
            host = conn.peername[0]
        addr = (host, port)
        link = self.links.get(node_id)
        if link is not None:
            assert link.learned
            del self.learned[node_id]
            self.learned[node_id] = None  # the most recently announced now
            if link.addr != addr:
                log.info("%s now announces %s:%d (was %s:%d)", node_id, *addr, *link.addr)
                self._trace("peer_learned", {"node": node_id, "host": host, "port": port})
                link.readdress(addr)
            return
        if len(self.learned) >= LEARNED_PEERS_MAX:
            victim = next((nid for nid in self.learned if nid not in self.peer_conns), None)
            if victim is None:
                self._throttle.warn("address-book", "not learning the address of %s: the address book holds %d "
                                    "nodes, each connected (LEARNED_PEERS_MAX); it stays a client",
                                    node_id, LEARNED_PEERS_MAX)
                return
            self._unlearn(victim)
        self.links[node_id] = _PeerLink(self, node_id, addr, learned=True)
        self.learned[node_id] = None
        log.info("learned the address of %s: %s:%d (announced in its authenticated handshake)", node_id, *addr)
        self._trace("peer_learned", {"node": node_id, "host": host, "port": port})

    def _unlearn(self, node_id: str) -> None:
        """Drop a learned node from the address book (its queued frames too)."""
        del self.learned[node_id]
        link = self.links.pop(node_id)
        assert link.learned
        link.close()
        log.info("forgot the address of %s: room for another in the address book (LEARNED_PEERS_MAX)", node_id)
        self._trace("peer_forgotten", {"node": node_id})

    def _forget(self, conn: _Inbound) -> None:
        self.inbound.discard(conn)
        self.pending.pop(conn, None)
        self.client_conns.discard(conn)
        src = conn.src
        if src is not None:
            if self.clients.get(src) is conn:
                del self.clients[src]
            conns = self.peer_conns.get(src)
            if conns is not None and conn in conns:
                conns.remove(conn)
                if not conns:
                    del self.peer_conns[src]

    def _handshake_timed_out(self, conn: _Inbound) -> None:
        if conn.closed or conn not in self.pending:
            return
        del self.pending[conn]
        self.connections_refused += 1
        self._throttle.warn("handshake-timeout", "closed connection from %s: no handshake within %.0f ms",
                            conn.peername, HANDSHAKE_TIMEOUT_MS)
        conn.close(abort=True)

    def _sweep(self) -> None:
        """Every ``SWEEP_INTERVAL_MS``: close connections whose partial frame
        is overdue, and client connections idle too long."""
        self._sweeper = None
        if self.closing:
            return
        self._throttle.flush()
        now = now_ms()
        conns: list[_Conn] = list(self.inbound)
        conns += [link.proto for link in self.links.values() if link.proto is not None]
        for conn in conns:
            if conn.closed:
                continue
            since = conn.partial_since_ms
            if since is not None:
                length = conn.splitter.pending_length or 0
                allowed_ms = FRAME_RECEIVE_TIMEOUT_MS_MIN + length * 1000.0 / FRAME_RECEIVE_BYTES_PER_S_MIN
                if now - since > allowed_ms:
                    self.connections_refused += 1
                    self._throttle.warn("slow-frame", "closed connection from %s (src=%s): a frame of %d bytes "
                                        "not complete after %.0f ms (%d bytes buffered)", conn.peername, conn.src,
                                        length, now - since, conn.splitter.buffered_bytes)
                    conn.close(abort=True)
                    continue
            if conn.kind == "client" and now - conn.last_received_ms > CLIENT_IDLE_TIMEOUT_MS:
                log.info("closed client connection %s (from %s): idle for %.0f ms", conn.src, conn.peername,
                         now - conn.last_received_ms)
                conn.close(abort=False)
        self._sweeper = asyncio.get_running_loop().call_later(SWEEP_INTERVAL_MS / 1000.0, self._sweep)


def _unspecified(host: str) -> bool:
    """Whether ``host`` is a wildcard address (0.0.0.0, ::): a listener's,
    not one to dial."""
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


class _Inbound(_Conn):
    """A connection some peer or client opened to this node."""

    def __init__(self, owner: Transport) -> None:
        super().__init__(owner)
        self.deadline: asyncio.TimerHandle | None = None
        # The listen address a connector of role node proved in its handshake.
        self.announced: tuple[str, int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        owner = self.owner
        if not owner._accepted(self):
            self.close(abort=True)
            return
        if owner.key is not None:
            self.handshake = ServerHandshake(owner.key, owner.node_id)
            self.splitter.frame_size_bytes_max = HANDSHAKE_FRAME_BYTES_MAX
        self.deadline = asyncio.get_running_loop().call_later(
            HANDSHAKE_TIMEOUT_MS / 1000.0, owner._handshake_timed_out, self)

    def handshake_step(self, payload: bytes) -> None:
        hs = self.handshake
        assert isinstance(hs, ServerHandshake)
        reply = hs.receive(payload)
        if reply is not None:
            self.write_raw(frame(reply))
            return
        self.handshake_done()
        assert hs.peer_id is not None
        if hs.peer_role == ROLE_NODE:
            self.announced = hs.peer_addr
        self.identify(hs.peer_id)

    def identify(self, src: str) -> None:
        self.src = src
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None
        self.owner._admit(self)

    def close(self, *, abort: bool) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None
        super().close(abort=abort)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.splitter.close()
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None
        self.owner._forget(self)
