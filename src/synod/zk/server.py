"""A ZooKeeper server: Zab below, the data tree as its state machine,
ZooKeeper's protocol on the ``zk`` client port (issue 12 section 2; Hunt et
al., USENIX ATC 2010, section 4; docs/zookeeper.md, "The server").

Request flow (ZooKeeper's request processors, in synod's node shape):

- **Writes** (create of any kind, delete, setData, setACL, multi,
  closeSession). The server holding the client's connection, the *origin*,
  numbers the request in its session (cxid) and hands it to the leader
  (:class:`ForwardRequest` in its Zab session, so requests are taken in
  order or, once one is lost, not at all; itself when it leads). A
  session's writes are pipelined: forwarded without waiting for the
  earlier ones' commits. The leader turns it into
  a transaction with :func:`~synod.zk.prep.prepare` against its
  :class:`~synod.zk.prep.TreeView` (the tree plus what is proposed and not
  yet applied), a refusal into an ``ErrorTxn``, and proposes it through Zab
  in a :class:`TxnEnvelope` naming the session, the cxid, the origin and
  the leader's time. Every server applies it (``DataTree.apply``, which
  fires watches); the origin answers its client when it applies it.
- **Reads** are answered from the origin's own tree (sequentially
  consistent), after the session's earlier requests (FIFO per session).
  ``sync`` goes through Zab like a write that changes nothing, so the reply
  comes once the origin has applied everything committed before it.
- **Sessions.** A new session's ``CreateSessionTxn`` goes through Zab (id
  and password from :mod:`synod.zk.sessions`); the connect is answered
  once the origin applies it. A client that reconnects here with its
  session id proves it with the password; a server that has not applied
  the zxid the client last saw refuses it (it would show the past). Pings
  are answered at once and touch the session; each tick every server sends
  the leader the sessions it heard from (:class:`SessionTouches`), and the
  leader's :class:`~synod.zk.sessions.SessionTracker` expires sessions by
  tick bucket and proposes ``CloseSessionTxn``: every server deletes the
  same ephemerals at one zxid. The leader refuses (SESSIONEXPIRED) any
  request of a session that is closed or closing, so no ephemeral outlives
  its session's close and no session is closed twice.
- **Watches** are set by reads with the session id as the watcher and
  pushed on that session's connection when the transaction that fires them
  is applied, before the reply to any later request of that connection.
- A server that stops being an established leader or an up-to-date
  follower closes its client connections (ZooKeeper's ConnectionLoss):
  clients reconnect elsewhere with their session.

- **Four-letter words** on the client port: ``ruok``, ``isro``, ``srvr``,
  ``stat``, ``mntr``, ``conf``, ``envi`` in ZooKeeper 3.8's formats
  (:mod:`synod.zk._four_letter_words`): counts of packets and latency are
  this server's, times its own clock; ``conf``/``envi`` print the config,
  never the process environment.

- **Containers and TTL nodes** (ZooKeeper's ContainerManager): every
  ``container_check_interval_ms`` the established leader finds the
  childless containers that once had a child and the childless TTL nodes
  unmodified for their TTL (by its own time, as it stamps mtimes) and
  proposes an ordinary DeleteTxn for each, version-checked against what
  it has already proposed, so a concurrent change wins and every server
  deletes the node at one zxid.

Not yet: ACL-checked watch removal edge cases, quotas, reconfig, read-only
mode.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from synod.core import ConfigError, Context, decode, encode, parse_params
from synod.core.clients import ClientClosed, ClientOpened, CopyFilter
from synod.core.errors import RemoteProtocolError
from synod.zab.messages import Notification, Packet
from synod.zab.messages import Txn as ZabTxn
from synod.zab.node import TICK_TIMER, ZabNode, ZabNodeConfig
from synod.zab.zab import FOLLOWING, LEADING, OBSERVING, ZabConfig
from synod.zk import _four_letter_words as fourlw
from synod.zk import messages as m
from synod.zk.config import ZkServerConfig, ZkServerParams
from synod.zk.constants import Code, Perms
from synod.zk.peers import ForwardRequest, SessionTouches, SyncMarker, TxnEnvelope
from synod.zk.prep import TreeView, check_acl, digest_id, prepare, prepare_delete_container, visible_acl
from synod.zk.protocol import ZooKeeperProtocol
from synod.zk.sessions import SessionTracker, negotiate_timeout_ms, session_id_base, session_password
from synod.zk.tree import ApplyResult, DataTree
from synod.zk.txn import CloseSessionTxn, CreateSessionTxn, ErrorTxn

__all__ = ["ZkServerNode", "ZkServerConfig", "ZkServerParams", "TxnEnvelope", "ForwardRequest", "SessionTouches",
           "PROTOCOL", "FACTORY", "factory"]

PROTOCOL = "zk"
_GATEWAY_PREFIX = PROTOCOL + ":"
CONNECTIONS_MAX = 10_000           # client connections one server serves (the gateway also bounds them)
PENDING_PER_SESSION_MAX = 1_000    # requests of one session waiting for earlier ones
WRITES_IN_FLIGHT_PER_SESSION_MAX = 1_000   # writes of one session forwarded and not yet applied here
REQUESTS_REMEMBERED_MAX = 4_096    # simulated clients' calls remembered to drop copies
CONTAINER_DELETES_PER_CHECK_MAX = 1_000   # deletes one container check proposes (ZooKeeper: 10,000 a minute)
_WRITES = (m.CreateRequest, m.Create2Request, m.CreateContainerRequest, m.CreateTTLRequest, m.DeleteRequest,
           m.SetDataRequest, m.SetACLRequest, m.MultiRequest, m.CloseSessionRequest, m.CheckVersionRequest)
_FORWARDED = (*_WRITES, m.SyncRequest)   # requests that go to the leader and through Zab
_READS = (m.ExistsRequest, m.GetDataRequest, m.GetChildrenRequest, m.GetChildren2Request, m.GetACLRequest,
          m.GetAllChildrenNumberRequest, m.GetEphemeralsRequest, m.MultiReadRequest, m.WhoAmIRequest)


class _TreeMachine:
    """Zab's state machine: the data tree; ``apply`` returns the
    :class:`ApplyResult` that ``delivered`` answers the client with."""

    def __init__(self, may_read: Callable[[Any, Sequence[m.ACL]], bool]) -> None:
        self.may_read = may_read
        self.tree = DataTree(may_read=may_read)

    def apply(self, zxid: int, data: bytes) -> Any:
        env = decode(data, TxnEnvelope)
        if isinstance(env.txn, SyncMarker):
            self.tree.last_zxid = max(self.tree.last_zxid, zxid)
            return env, ApplyResult(response=m.SyncResponse(path=env.txn.path))
        return env, self.tree.apply(env.txn, zxid, env.time_ms)

    def snapshot(self) -> bytes:
        return self.tree.serialize()

    def fuzzy_snapshot(self) -> Any:
        """The tree's :class:`~synod.zk.tree.FuzzySerializer`, which ZabNode
        steps between deliveries (synod.zab.node's FuzzySnapshot)."""
        return self.tree.fuzzy_snapshot()

    def restore(self, zxid: int, data: bytes) -> None:
        """``data`` is a snapshot taken at ``zxid`` (fuzzy: its base), from
        this server's disk or the leader's SNAP; the transactions after it
        are replayed next. A fuzzy one's tree is labelled ``zxid`` too."""
        self.tree = DataTree.deserialize(data, may_read=self.may_read)


@dataclass(slots=True)
class _Conn:
    """One client connection and its session."""

    client_id: str
    addr: str = ""
    session_id: int = 0
    received: int = 0              # packets received and sent on it (stat)
    sent: int = 0
    auth_ids: list[m.Id] = field(default_factory=list)
    connect: Any = None            # the ConnectRequest's reply handle, while its session is created
    # (handle, request, arrival in ms of the node's clock) behind a write
    waiting: deque[tuple[Any, Any, float]] = field(default_factory=deque)
    writes_out: int = 0            # writes sent to the leader, not yet applied here


class ZkServerNode(ZabNode):
    """One ZooKeeper server (see the module docstring)."""

    def __init__(self, config: ZkServerConfig) -> None:
        super().__init__(config.node, machine_factory=lambda: _TreeMachine(self._may_read))
        self.zk = config
        self.conns: dict[str, _Conn] = {}
        self.by_session: dict[int, _Conn] = {}
        # (session, cxid) -> (connection, handle, arrival ms)
        self.answers: dict[tuple[int, int], tuple[_Conn, Any, float]] = {}
        # Invariant: a cxid names one write of this server's life, whatever the
        # connection: a session that moved to a new connection (here, or back
        # here after a restart) still has writes in flight from the old one,
        # whose answers must not go to the new connection's requests.
        self.next_cxid = 0
        self.touched: set[int] = set()
        self.next_session_id = 0
        self.view: TreeView | None = None          # the leader's outstanding changes
        self.tracker: SessionTracker | None = None  # the leader's session expiry
        self.serving = False
        self.members = frozenset(config.node.zab.voters + config.node.zab.observers)
        self._copies = CopyFilter(REQUESTS_REMEMBERED_MAX)
        self.stats = fourlw.ServerStats()
        self.started_ms = 0.0        # the node's clock at start, and when it last became an established leader
        self.established_ms = 0.0
        self.next_container_check_ms: float | None = None   # the leader's next ContainerManager run (node clock)

    @property
    def tree(self) -> DataTree:
        return self.machine.tree  # type: ignore[attr-defined]

    def client_protocols(self) -> dict[str, Callable[[], Any]]:
        return {PROTOCOL: ZooKeeperProtocol}

    def _may_read(self, watcher: Any, acl: Sequence[m.ACL]) -> bool:
        conn = self.conns.get(watcher)
        return check_acl(acl, int(Perms.READ), conn.auth_ids if conn is not None else [])

    # -- handlers -------------------------------------------------------------------------------
    def on_start(self, ctx: Context) -> None:
        super().on_start(ctx)
        self.started_ms = ctx.now_ms
        self.next_session_id = session_id_base(self.zk.server_index, int(ctx.unix_ms))
        self.next_cxid = ctx.rng.getrandbits(31) << 32   # this life's cxids: none of an earlier life's

    def on_timer(self, ctx: Context, name: str) -> None:
        super().on_timer(ctx, name)
        if self.zab is None or name != TICK_TIMER:
            return   # the flush timer changes no role and is no tick
        self._follow_role(ctx)
        if self.touched and self.zab.leader is not None and self.serving:
            touches, self.touched = tuple(sorted(self.touched)), set()
            if self.zab.role == LEADING:
                self._touch(ctx, touches)
            else:
                ctx.send(self.zab.leader, SessionTouches(session_ids=touches))
        if self.zab.role == LEADING and self.zab.established and self.tracker is not None:
            for sid in self.tracker.expired(int(ctx.unix_ms)):
                self._propose(ctx, sid, 0, self.zk.node.zab.server_id, CloseSessionTxn(session_id=sid))
            if self.next_container_check_ms is not None and ctx.now_ms >= self.next_container_check_ms:
                self._check_containers(ctx)

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        t = type(msg)
        if t is Notification or t is Packet or t.__module__.startswith("synod.zab"):
            super().on_message(ctx, src, msg)
            self._follow_role(ctx)
            return
        if src.startswith(_GATEWAY_PREFIX):
            self._client_message(ctx, src, msg)
        elif src not in self.members and t.__module__ == m.__name__:
            # A simulated client (a node, not a connection of the gateway):
            # each ConnectRequest opens its connection anew; a copy of a
            # call the network delivered twice is dropped (TCP never does).
            if self._copies.is_copy(ctx.reply_handle()):
                ctx.trace("ignore_request", src=src, reason="duplicate delivery")
                return
            if t is m.ConnectRequest:
                self._client_message(ctx, src, ClientClosed(reason="a new connect"))
                self._client_message(ctx, src, ClientOpened(protocol=PROTOCOL, addr=src))
            self._client_message(ctx, src, msg)
        elif t is SessionTouches and src in self.members:
            if self.zab is not None and self.zab.role == LEADING:
                self._touch(ctx, msg.session_ids)
        else:
            raise RemoteProtocolError(f"unexpected {t.__name__} from {src}")

    # -- roles ----------------------------------------------------------------------------------
    def _follow_role(self, ctx: Context) -> None:
        """Serve clients only as an established leader or an up-to-date
        learner; otherwise drop every client (they reconnect elsewhere)."""
        zab = self.zab
        assert zab is not None
        serving = (zab.role == LEADING and zab.established) or (
            zab.role in (FOLLOWING, OBSERVING) and zab.phase == "broadcast")
        if zab.role == LEADING and zab.established and self.view is None:
            self.established_ms = ctx.now_ms
            self.next_container_check_ms = ctx.now_ms + self.zk.container_check_interval_ms
            self.view = TreeView(self.tree)
            self.tracker = SessionTracker(int(self.zk.node.tick_ms))
            now = int(ctx.unix_ms)
            for sid, timeout_ms in self.tree.sessions.items():
                self.tracker.add(sid, timeout_ms, now)
        elif not (zab.role == LEADING and zab.established):
            self.view = None
            self.tracker = None
            self.next_container_check_ms = None
        if self.serving and not serving:
            for conn in list(self.conns.values()):
                self._close(ctx, conn, "this server lost its leader")
        self.serving = serving

    # -- clients --------------------------------------------------------------------------------
    def _client_message(self, ctx: Context, src: str, msg: Any) -> None:
        t = type(msg)
        if t is ClientOpened:
            if len(self.conns) < CONNECTIONS_MAX:
                host = msg.addr.rsplit(":", 1)[0] if ":" in msg.addr else msg.addr
                self.conns[src] = _Conn(src, addr=msg.addr, auth_ids=[m.Id(scheme="ip", id=host)])   # ip scheme
            return
        if t is ClientClosed:
            conn = self.conns.pop(src, None)
            if conn is not None:
                # A connection's watches go with it (ZooKeeper's watcher is the
                # connection): a client re-sets them on its next connection
                # (SetWatches2), catching up from the last zxid it saw.
                self.tree.watches.remove_watcher(conn.client_id)
                if self.by_session.get(conn.session_id) is conn:
                    del self.by_session[conn.session_id]
            return
        conn = self.conns.get(src)
        if conn is None:
            ctx.reply(m.Reply(zxid=self.tree.last_zxid, err=int(Code.CONNECTIONLOSS)))
            return
        self.stats.packets_received += 1
        conn.received += 1
        handle = ctx.reply_handle()
        now = ctx.now_ms
        if t is m.FourLetterWordRequest:
            self._answer(ctx, conn, handle, m.FourLetterWordResponse(text=self._four_letter_word(ctx, msg.word)))
            return
        if t is m.ConnectRequest:
            self._connect(ctx, conn, msg)
            return
        if not conn.session_id:
            self._answer(ctx, conn, handle, m.Reply(zxid=self.tree.last_zxid, err=int(Code.SESSIONEXPIRED)))
            return
        if not self.serving:
            self._answer(ctx, conn, handle, self._lost(conn))
            return
        self.touched.add(conn.session_id)
        if conn.waiting or not self._may_serve_now(conn, t):
            if len(conn.waiting) >= PENDING_PER_SESSION_MAX:
                self._answer(ctx, conn, handle, m.Reply(zxid=self.tree.last_zxid, err=int(Code.THROTTLEDOP)), now)
                return
            conn.waiting.append((handle, msg, now))   # FIFO: behind the session's earlier requests
            return
        self._serve(ctx, conn, handle, msg, now)

    @staticmethod
    def _may_serve_now(conn: _Conn, t: type) -> bool:
        """Whether a request of type ``t`` may be served now, nothing of its
        session waiting before it. Writes are pipelined (ZooKeeper's
        followers forward a session's writes without waiting for the earlier
        ones' commits; the leader prepares them in order against what it has
        proposed, and Zab commits them in that order), up to
        ``WRITES_IN_FLIGHT_PER_SESSION_MAX``; anything answered here (reads,
        pings, watches) waits until the session's writes are applied here,
        so the session sees its own writes (FIFO client order)."""
        if t in _FORWARDED:
            return conn.writes_out < WRITES_IN_FLIGHT_PER_SESSION_MAX
        return not conn.writes_out

    def _answer(self, ctx: Context, conn: _Conn, handle: Any, reply: Any, arrived_ms: float | None = None) -> None:
        """Send ``reply`` on ``conn`` (counted for srvr/mntr: a packet sent,
        and the latency since the request arrived at ``arrived_ms``, the
        node's clock, if given)."""
        if type(reply) is not m.CloseConnection:
            self.stats.packets_sent += 1
            conn.sent += 1
        if arrived_ms is not None:
            self.stats.latency(ctx.now_ms - arrived_ms)
        ctx.reply_to(handle, reply)

    def _serve(self, ctx: Context, conn: _Conn, handle: Any, msg: Any, arrived_ms: float) -> None:
        t = type(msg)
        if t in _FORWARDED:
            self.next_cxid += 1
            conn.writes_out += 1
            self.answers[(conn.session_id, self.next_cxid)] = (conn, handle, arrived_ms)
            self._to_leader(ctx, ForwardRequest(session_id=conn.session_id, cxid=self.next_cxid, request=msg,
                                                auth_ids=tuple(conn.auth_ids)))
            return
        reply: Any
        if t is m.PingRequest:
            reply = m.Reply(zxid=self.tree.last_zxid)
        elif t is m.AuthPacket:
            reply = self._auth(conn, msg)
        elif t is m.SetWatches or t is m.SetWatches2:
            fired = self.tree.set_watches(
                msg.relativeZxid, conn.client_id, data=msg.dataWatches, exist=msg.existWatches,
                child=msg.childWatches, persistent=getattr(msg, "persistentWatches", ()),
                persistent_recursive=getattr(msg, "persistentRecursiveWatches", ()))
            self._push(ctx, fired)
            reply = m.Reply(zxid=self.tree.last_zxid)
        elif t is m.AddWatchRequest:
            self.tree.watches.add_watch(msg.path, conn.client_id, msg.mode)
            reply = m.Reply(zxid=self.tree.last_zxid)
        elif t is m.RemoveWatchesRequest or t is m.CheckWatchesRequest:
            w = self.tree.watches
            ok = (w.remove_watches if t is m.RemoveWatchesRequest else w.check_watches)(
                msg.path, msg.type_, conn.client_id)
            reply = m.Reply(zxid=self.tree.last_zxid, err=0 if ok else int(Code.NOWATCHER))
        elif t in _READS:
            err, response = self._read(conn, msg)
            reply = m.Reply(zxid=self.tree.last_zxid, err=err, response=response)
        else:
            reply = m.Reply(zxid=self.tree.last_zxid, err=int(Code.UNIMPLEMENTED))
        self._answer(ctx, conn, handle, reply, arrived_ms)

    def _read(self, conn: _Conn, msg: Any) -> tuple[int, Any]:
        """A read from the local tree (ACL-checked as ZooKeeper's
        FinalRequestProcessor does); (err, response)."""
        tree = self.tree
        t = type(msg)
        watcher = conn.client_id if getattr(msg, "watch", False) else None
        if t is m.ExistsRequest:
            stat = tree.exists(msg.path, watcher)
            return (0, m.ExistsResponse(stat=stat)) if stat is not None else (int(Code.NONODE), None)
        if t is m.WhoAmIRequest:
            return 0, m.WhoAmIResponse(clientInfo=tuple(m.ClientInfo(authScheme=i.scheme, user=i.id)
                                                         for i in conn.auth_ids))
        if t is m.GetEphemeralsRequest:
            return 0, m.GetEphemeralsResponse(ephemerals=tuple(tree.get_ephemerals(conn.session_id,
                                                                                    msg.prefixPath)))
        if t is m.MultiReadRequest:   # each op on its own, its watch flag ignored (ZooKeeper 3.8)
            return 0, tree.multi_read(msg.ops, lambda acl: check_acl(acl, int(Perms.READ), conn.auth_ids))
        acl = tree.get_acl(msg.path)
        if acl is None:
            return int(Code.NONODE), None
        if t is m.GetACLRequest:
            if not check_acl(acl.acl, int(Perms.READ) | int(Perms.ADMIN), conn.auth_ids):
                return int(Code.NOAUTH), None
            return 0, m.GetACLResponse(acl=visible_acl(acl.acl, conn.auth_ids), stat=acl.stat)
        if not check_acl(acl.acl, int(Perms.READ), conn.auth_ids):
            return int(Code.NOAUTH), None
        if t is m.GetDataRequest:
            return 0, tree.get_data(msg.path, watcher)
        if t is m.GetChildrenRequest:
            return 0, tree.get_children(msg.path, watcher)
        if t is m.GetChildren2Request:
            return 0, tree.get_children2(msg.path, watcher)
        n = tree.get_all_children_number(msg.path)
        return 0, m.GetAllChildrenNumberResponse(totalNumber=n or 0)

    def _auth(self, conn: _Conn, msg: m.AuthPacket) -> m.Reply:
        if msg.scheme != "digest" or not msg.auth or b":" not in msg.auth:
            return m.Reply(zxid=self.tree.last_zxid, err=int(Code.AUTHFAILED))
        user, _, password = msg.auth.decode("utf-8", errors="replace").partition(":")
        ident = m.Id(scheme="digest", id=digest_id(user, password))
        if ident not in conn.auth_ids:
            conn.auth_ids.append(ident)
        return m.Reply(zxid=self.tree.last_zxid)

    def _four_letter_word(self, ctx: Context, word: str) -> str:
        """The answer to a four-letter word (:mod:`synod.zk._four_letter_words`),
        from this server's state and config; times from the node's clock."""
        zab = self.zab
        role = zab.role if zab is not None else "looking"
        mode = {"leading": "leader", "following": "follower", "observing": "observer"}.get(role, "not serving")
        leader = None
        if zab is not None and zab.role == LEADING and zab.established:
            lrs = list(zab.learners.values())
            leader = fourlw.LeaderFacts(
                learners=len(lrs), synced_followers=sum(1 for lr in lrs if lr.up_to_date and not lr.observer),
                synced_observers=sum(1 for lr in lrs if lr.up_to_date and lr.observer),
                leader_uptime_ms=int(ctx.now_ms - self.established_ms))
        conns = [fourlw.ConnectionFacts(addr=c.addr, has_session=bool(c.session_id), received=c.received,
                                        sent=c.sent, queued=len(c.waiting) + c.writes_out)
                 for c in self.conns.values()]
        tree = self.tree
        facts = fourlw.Facts(
            serving=self.serving, mode=mode if self.serving else "not serving",
            peer_state=self._peer_state(),
            zxid=tree.last_zxid, outstanding=len(self.answers), znode_count=len(tree),
            watch_count=tree.watches.count(), ephemerals_count=tree.ephemerals_count(),
            global_sessions=len(tree.sessions), quorum_size=len(self.zk.node.zab.voters),
            uptime_ms=int(ctx.now_ms - self.started_ms), stats=self.stats, connections=conns, leader=leader,
            approximate_data_size=tree.approximate_data_size() if word == "mntr" else 0)
        tick_ms = int(self.zk.node.tick_ms)
        zc = self.zk.node.zab
        config = fourlw.AdminConfig(
            client_port=self.zk.client_port, data_dir=self.zk.data_dir, tick_ms=tick_ms,
            connections_max=CONNECTIONS_MAX, min_session_timeout_ms=2 * tick_ms,
            max_session_timeout_ms=self.zk.max_session_timeout_ms or 20 * tick_ms,
            server_index=self.zk.server_index, init_limit_ticks=zc.init_limit_ticks,
            sync_limit_ticks=zc.sync_limit_ticks, observer=zc.server_id in zc.observers,
            environment=self.zk.environment)
        return fourlw.answer(word, facts, config)

    def _peer_state(self) -> str:
        """mntr's zk_peer_state: the role and Zab's phase, as ZooKeeper
        prints its ServerState and ZabState."""
        zab = self.zab
        if zab is None or zab.role not in (LEADING, FOLLOWING, OBSERVING):
            return "looking - election"
        if zab.role == LEADING:
            return f"{zab.role} - {'broadcast' if zab.established else 'synchronization'}"
        phase = {"sync": "synchronization"}.get(zab.phase, zab.phase or "discovery")
        return f"{zab.role} - {phase}"

    # -- sessions -------------------------------------------------------------------------------
    def _connect(self, ctx: Context, conn: _Conn, msg: m.ConnectRequest) -> None:
        handle = ctx.reply_handle()
        refuse = m.ConnectResponse(protocolVersion=0, timeOut=0, sessionId=0, passwd=bytes(16))
        if not self.serving or msg.lastZxidSeen > self.tree.last_zxid:
            # Not serving, or the client has seen newer state than this
            # server holds: close without a word, as ZooKeeper does, so the
            # client tries its next server with its session intact (a
            # zero-timeout answer would tell it the session expired).
            self._answer(ctx, conn, handle, self._closing_refusal(conn))
            return
        if conn.session_id:   # a second connect on one connection
            self._answer(ctx, conn, handle, refuse)
            return
        if msg.sessionId:
            timeout_ms = self.tree.sessions.get(msg.sessionId)
            if timeout_ms is None or msg.passwd != session_password(self.zk.secret, msg.sessionId):
                self._answer(ctx, conn, handle, refuse)   # expired, unknown, or not its owner
                return
            self._attach(conn, msg.sessionId)
            self.touched.add(msg.sessionId)
            self._answer(ctx, conn, handle, m.ConnectResponse(protocolVersion=0, timeOut=timeout_ms,
                                                              sessionId=msg.sessionId, passwd=msg.passwd))
            return
        sid = self.next_session_id
        self.next_session_id += 1
        timeout_ms = negotiate_timeout_ms(msg.timeOut, int(self.zk.node.tick_ms), self.zk.max_session_timeout_ms)
        self._attach(conn, sid)
        conn.connect = handle
        self._to_leader(ctx, ForwardRequest(session_id=sid, cxid=0, request=None,
                                            create_session_timeout_ms=timeout_ms))

    def _attach(self, conn: _Conn, sid: int) -> None:
        conn.session_id = sid
        self.by_session[sid] = conn

    def _touch(self, ctx: Context, session_ids: Sequence[int]) -> None:
        if self.tracker is not None:
            now = int(ctx.unix_ms)
            for sid in session_ids:
                self.tracker.touch(sid, now)

    # -- the leader -----------------------------------------------------------------------------
    def _to_leader(self, ctx: Context, fwd: ForwardRequest) -> None:
        zab = self.zab
        assert zab is not None
        if zab.role == LEADING:
            self._forwarded(ctx, zab.config.server_id, fwd)
        elif zab.forward(encode(fwd)):
            self._act(ctx)
        # else: not up to date with a leader; this server is about to close
        # its client connections (ConnectionLoss), and this request's outcome
        # is unknown to its client, as in ZooKeeper.

    def forwarded(self, ctx: Context, origin: str, data: bytes) -> None:
        """On the leader: a write (or a session's creation, or a sync) that
        learner ``origin`` forwarded in its Zab session, in order."""
        try:
            fwd = decode(data, ForwardRequest)
        except RemoteProtocolError as e:
            ctx.trace("ignore_forwarded", origin=origin, reason=f"undecodable: {e}")
            return
        self._forwarded(ctx, origin, fwd)

    def _forwarded(self, ctx: Context, origin: str, fwd: ForwardRequest) -> None:
        """Prepare a write (or a session's creation, or a sync) and propose it."""
        zab = self.zab
        assert zab is not None
        if zab.role != LEADING or not zab.established or self.view is None:
            return   # the origin's client times out and reconnects (ConnectionLoss)
        txn: Any
        if self.view.full():
            # Too much prepared and not yet applied: refused in its place in
            # the order (dropping it would let the session's later writes
            # pass it).
            txn = ErrorTxn(err=int(Code.THROTTLEDOP))
        elif fwd.request is None:
            txn = CreateSessionTxn(session_id=fwd.session_id, timeout_ms=fwd.create_session_timeout_ms)
            if self.tracker is not None:
                self.tracker.add(fwd.session_id, fwd.create_session_timeout_ms, int(ctx.unix_ms))
        elif self.tracker is not None and not self.tracker.is_live(fwd.session_id):
            # Closed, or closing (expired, or its client asked): PrepRequestProcessor's
            # checkSession. Prepared, an ephemeral would outlive its session's close.
            txn = ErrorTxn(err=int(Code.SESSIONEXPIRED))
        elif type(fwd.request) is m.SyncRequest:
            txn = SyncMarker(path=fwd.request.path)
        else:
            if type(fwd.request) is m.CloseSessionRequest and self.tracker is not None:
                # Forgotten, not just closing: a closing session stays in its expiry
                # bucket, and its expiry would propose a second CloseSession.
                self.tracker.remove(fwd.session_id)
            txn = prepare(fwd.request, session_id=fwd.session_id, zxid=zab.next_zxid(), view=self.view,
                          auth_ids=fwd.auth_ids, extended_types_enabled=self.zk.extended_types_enabled)
        self._propose(ctx, fwd.session_id, fwd.cxid, origin, txn)

    def _check_containers(self, ctx: Context) -> None:
        """ZooKeeper's ContainerManager, on the established leader every
        ``container_check_interval_ms``: each childless container that had
        a child and each childless TTL node unmodified for longer than its
        TTL by the leader's time (``ctx.unix_ms``, the clock that stamps
        mtime in envelopes) is deleted by an ordinary DeleteTxn through
        Zab, so every server deletes it at one zxid. Each is prepared
        against the view, checking the version it was found expired with:
        a change proposed meanwhile (a setData, a child's create) wins and
        the node stays. At most ``CONTAINER_DELETES_PER_CHECK_MAX`` a run."""
        zab = self.zab
        assert zab is not None
        assert self.view is not None
        self.next_container_check_ms = ctx.now_ms + self.zk.container_check_interval_ms
        proposed = 0
        for path in self.tree.expired_containers_and_ttls(int(ctx.unix_ms), self.zk.container_never_used_ms):
            if proposed >= CONTAINER_DELETES_PER_CHECK_MAX or self.view.full():
                break
            record = self.tree.record(path)
            assert record is not None
            txn = prepare_delete_container(path, zxid=zab.next_zxid(), view=self.view, version=record.version)
            if isinstance(txn, ErrorTxn):   # deleted, renewed or given a child since: nothing to do
                ctx.trace("ignore_container_delete", path=path, reason=Code(txn.err).name)
                continue
            ctx.trace("zk_container_delete", path=path, kind=record.kind)
            self._propose(ctx, 0, 0, zab.config.server_id, txn)
            proposed += 1

    def _propose(self, ctx: Context, session_id: int, cxid: int, origin: str, txn: Any) -> None:
        zab = self.zab
        assert zab is not None
        if type(txn) is CloseSessionTxn and self.view is not None:
            txn = prepare(m.CloseSessionRequest(), session_id=txn.session_id, zxid=zab.next_zxid(), view=self.view)
        data = encode(TxnEnvelope(session_id=session_id, cxid=cxid, origin=origin, time_ms=int(ctx.unix_ms),
                                  txn=txn))
        self.stats.proposal(len(data))
        zab.propose(data)
        self._act(ctx)

    # -- applied transactions --------------------------------------------------------------------
    def delivered(self, ctx: Context, txn: ZabTxn, result: Any) -> None:
        env, applied = result
        if self.view is not None:
            self.view.applied(txn.zxid)
        closed = env.txn.session_id if type(env.txn) is CloseSessionTxn else 0
        if closed and self.tracker is not None:
            self.tracker.remove(closed)
        self._push(ctx, applied.fired)   # its ephemerals' deletions still reach the closed session's watches
        if env.origin == self.zk.node.zab.server_id:
            self._answer_applied(ctx, txn, env, applied)
        if closed:
            self._session_closed(ctx, closed)

    def _answer_applied(self, ctx: Context, txn: ZabTxn, env: TxnEnvelope, applied: ApplyResult) -> None:
        """On the origin: answer the request ``env`` carried (a connect, a
        write, a sync), then serve what of its session waited for it."""
        if type(env.txn) is CreateSessionTxn:
            conn = self.by_session.get(env.session_id)
            if conn is not None and conn.connect is not None:
                handle, conn.connect = conn.connect, None
                self._answer(ctx, conn, handle, m.ConnectResponse(
                    protocolVersion=0, timeOut=env.txn.timeout_ms, sessionId=env.session_id,
                    passwd=session_password(self.zk.secret, env.session_id)))
            return
        answer = self.answers.pop((env.session_id, env.cxid), None)
        if answer is None:
            return
        origin_conn, handle, arrived_ms = answer
        err = applied.err if not isinstance(env.txn, ErrorTxn) else env.txn.err
        response = applied.response if not err or type(applied.response) is m.MultiResponse else None
        self._answer(ctx, origin_conn, handle, m.Reply(
            zxid=txn.zxid, err=int(err) if type(response) is not m.MultiResponse else 0, response=response),
            arrived_ms)
        conn = self.conns.get(origin_conn.client_id)
        if conn is origin_conn:   # not a connection that has since been replaced by a new connect
            conn.writes_out -= 1
            assert conn.writes_out >= 0
            while conn.waiting and self._may_serve_now(conn, type(conn.waiting[0][1])):
                handle, msg, arrived_ms = conn.waiting.popleft()
                self._serve(ctx, conn, handle, msg, arrived_ms)

    def _session_closed(self, ctx: Context, session_id: int) -> None:
        """A session's close (its client's closeSession, or its expiry) was
        applied: its connection to this server, if any, is closed, with its
        watches (ZooKeeper's FinalRequestProcessor closes the connection of a
        closed session). Over TCP the connection closes after what was
        already written (the closeSession reply); a simulated client is
        forgotten, so its next request is answered CONNECTIONLOSS."""
        conn = self.by_session.pop(session_id, None)
        if conn is None:
            return
        ctx.trace("zk_session_connection_closed", client=conn.client_id, session=session_id)
        self.tree.watches.remove_watcher(conn.client_id)
        self._close(ctx, conn, "its session closed")
        if self.conns.get(conn.client_id) is conn:
            del self.conns[conn.client_id]
        if conn.client_id.startswith(_GATEWAY_PREFIX):
            ctx.send(conn.client_id, m.CloseConnection(reason="session closed"))

    def _push(self, ctx: Context, fired: list[Any]) -> None:
        for watcher, event in fired:
            conn = self.conns.get(watcher)
            if conn is not None:
                self.stats.packets_sent += 1
                conn.sent += 1
                ctx.send(conn.client_id, event)

    def _lost(self, conn: _Conn) -> Any:
        """The answer to a request this server cannot serve: over TCP, close
        the connection without a word (ZooKeeper's ConnectionLoss: the
        client reconnects elsewhere with its session; a request's outcome is
        unknown, a write may still commit); to a simulated client, a
        CONNECTIONLOSS reply, which it takes the same way."""
        if conn.client_id.startswith(_GATEWAY_PREFIX):
            return m.CloseConnection(reason="this server is not serving")
        return m.Reply(zxid=self.tree.last_zxid, err=int(Code.CONNECTIONLOSS))

    def _closing_refusal(self, conn: _Conn) -> Any:
        """:meth:`_lost` for a ConnectRequest (a simulated client is refused)."""
        if conn.client_id.startswith(_GATEWAY_PREFIX):
            return m.CloseConnection(reason="this server is not serving, or is behind the client")
        return m.ConnectResponse(protocolVersion=0, timeOut=0, sessionId=0, passwd=bytes(16))

    def _close(self, ctx: Context, conn: _Conn, why: str) -> None:
        """This server stopped serving: every request of ``conn`` still
        waiting is answered as :meth:`_lost` says (over TCP the connection
        closes), a connect in progress as :meth:`_closing_refusal`."""
        ctx.trace("zk_connection_loss", client=conn.client_id, session=conn.session_id, reason=why)
        loss = self._lost(conn)
        for key in [k for k, (c, _, _) in self.answers.items() if c is conn]:
            ctx.reply_to(self.answers.pop(key)[1], loss)
        while conn.waiting:
            ctx.reply_to(conn.waiting.popleft()[0], loss)
        conn.writes_out = 0
        if conn.connect is not None:
            ctx.reply_to(conn.connect, self._closing_refusal(conn))
            conn.connect = None
            if self.by_session.get(conn.session_id) is conn:
                del self.by_session[conn.session_id]
            conn.session_id = 0


FACTORY = "synod.zk.server:factory"


def factory(node_id: str, params: dict[str, Any]) -> ZkServerNode:
    """Cluster-config factory ``synod.zk.server:factory``.

    Raises:
        ConfigError: params that are not :class:`ZkServerParams`, or a
            node id that is neither a voter nor an observer.
    """
    p = parse_params(params, ZkServerParams)
    if node_id not in p.voters and node_id not in p.observers:
        raise ConfigError(f"{node_id} is neither among voters {p.voters} nor observers {p.observers}")
    zab = ZabConfig(server_id=node_id, voters=p.voters, observers=p.observers,
                    sync_limit_ticks=p.sync_limit_ticks, init_limit_ticks=p.init_limit_ticks)
    return ZkServerNode(ZkServerConfig(node=ZabNodeConfig(zab=zab, tick_ms=p.tick_ms,
                                                          snapshot_interval_txns=p.snapshot_interval_txns,
                                                          snapshot_interval_bytes=p.snapshot_interval_bytes),
                                       server_index=p.server_index, secret=p.secret.encode(),
                                       max_session_timeout_ms=p.max_session_timeout_ms, client_port=p.client_port,
                                       data_dir=p.data_dir, environment=tuple(sorted(p.environment.items())),
                                       container_check_interval_ms=p.container_check_interval_ms,
                                       container_never_used_ms=p.container_never_used_ms,
                                       extended_types_enabled=p.extended_types_enabled))
