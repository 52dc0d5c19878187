"""Watch notifications checked against the one order of changes (issue 12
section 2, "Watches"; the checker of :mod:`synod.harness.zk`'s watch
workload).

What ZooKeeper promises (ZooKeeper Programmer's Guide, "ZooKeeper
Watches": "Semantics of Watches", "Persistent, Recursive Watches", "What
ZooKeeper Guarantees about Watches"; 3.6+'s ``DataTree.setWatches``):

- "Watches are ordered with respect to other events, other watches, and
  asynchronous replies", "a client will see a watch event for a znode it is
  watching before seeing the new data", and "the order of watch events from
  ZooKeeper corresponds to the order of the updates as seen by the
  ZooKeeper service". Watches live at the server the client is connected
  to, on that connection (ZooKeeper's ``ServerCnxn`` is the watcher; a
  closed connection's watches are removed with it). So on one connection
  the notifications are *exactly* the watched changes the server applies
  after it set the watch, in zxid order: none missing, none twice, none
  reordered, and every one before the reply to any request the server
  answers after applying its change.
- A persistent watch (addWatch mode PERSISTENT) fires for its path's own
  events: NodeCreated, NodeDeleted, NodeDataChanged and
  NodeChildrenChanged ("as if you placed an exists() watch and a getData()
  watch", plus getChildren's). A persistent-recursive one fires
  NodeCreated, NodeDeleted and NodeDataChanged for the path and every
  descendant, never NodeChildrenChanged ("it would be redundant"). Neither
  is removed by firing. One change tells a watcher once per event ("a
  watch object ... will only be triggered once for a given notification").
- A standard (one-shot) watch fires once: getData's and exists's on
  NodeDataChanged/NodeDeleted (exists's also on NodeCreated),
  getChildren's on NodeChildrenChanged/NodeDeleted; then it is gone.
- "Watches will not be received while disconnected from a server. When a
  client reconnects, any previously registered watches will be
  reregistered and triggered if needed ... There is one case where a watch
  may be missed: a watch for the existence of a znode not yet created will
  be missed if the znode is created and deleted while disconnected."
  That is SetWatches2 on the new connection, relative to the last zxid the
  client saw (``DataTree.setWatches``): a one-shot data watch whose node
  is gone fires NodeDeleted at once, one whose node changed after that zxid
  NodeDataChanged, an exists watch whose node now exists NodeCreated, a
  child watch NodeDeleted or NodeChildrenChanged likewise; the rest are set
  again. Persistent watches are only set again, whatever changed: the
  changes applied between the old connection's end and the new server's
  registration are missed, and, the new server being possibly behind what
  the old one had already notified (notifications carry no zxid, so the
  client's last zxid comes from replies only), some may come twice across
  the reconnect. Within each connection the rule above holds exactly.
- An expired or closed session's watches are gone after its CloseSession
  (the server closes its connection).

:func:`check_watches` checks all of it, connection by connection, from the
changes every server applied (:class:`ChangeLog`, built from each
transaction's first delivery; Zab's checker sees that every server applied
the same ones in the same order) and, per client connection, a
:class:`ConnectionLog` of what the client saw on it, in arrival order:
watches set (with the zxid of the reply that set them: the server's last
applied zxid then), notifications, and replies (with their zxid).

It found two deviations of synod's server, since fixed: watches were kept
per session, not per connection (a client coming back to a server was told
of changes before it set any watch there, and a one-shot watch could fire
twice), and a server kept serving a connection whose session it had closed
(a watch set afterwards fired for the closed session).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from synod.core import Context
from synod.core.errors import RemoteProtocolError
from synod.zk import messages as m
from synod.zk.constants import AddWatchMode, Code, EventType, KeeperState
from synod.zk.txn import CloseSessionTxn, CreateTxn, DeleteTxn, MultiTxn, NodeKind, SetDataTxn

__all__ = ["WatchKind", "Watch", "Change", "ChangeLog", "ConnectionLog", "WatchingClient", "WatchReport",
           "check_connection", "check_watches",
           "CREATED", "DELETED", "CHANGED", "ONE_SHOT"]

CREATED, DELETED, CHANGED = "created", "deleted", "changed"
VIOLATIONS_MAX = 20


class WatchKind:
    """How a watch was set: addWatch's two modes, and the three one-shot reads."""

    PERSISTENT = "persistent"
    RECURSIVE = "persistent-recursive"
    DATA = "getData"
    EXIST = "exists"
    CHILD = "getChildren"


ONE_SHOT = frozenset({WatchKind.DATA, WatchKind.EXIST, WatchKind.CHILD})
_CREATED, _DELETED = int(EventType.NodeCreated), int(EventType.NodeDeleted)
_DATA, _CHILDREN = int(EventType.NodeDataChanged), int(EventType.NodeChildrenChanged)


@dataclass(frozen=True, slots=True)
class Watch:
    """One watch: ``kind`` a :class:`WatchKind`, on ``path``."""

    kind: str
    path: str

    def matches(self, event_type: int, path: str) -> bool:
        """Does an event of ``event_type`` at ``path`` fire this watch (the
        Programmer's Guide's "Semantics of Watches" and "Persistent,
        Recursive Watches")?"""
        kind = self.kind
        if kind == WatchKind.RECURSIVE:
            return event_type != _CHILDREN and (path == self.path or self.path == "/"
                                                or path.startswith(self.path + "/"))
        if path != self.path:
            return False
        if kind == WatchKind.PERSISTENT:
            return True
        if kind == WatchKind.CHILD:
            return event_type in (_CHILDREN, _DELETED)
        return event_type in (_DATA, _DELETED, _CREATED)   # getData's and exists's: the data table


@dataclass(frozen=True, slots=True)
class Change:
    """One change to the tree: ``kind`` CREATED, DELETED or CHANGED (data)
    of ``path``, by the transaction at ``zxid``."""

    zxid: int
    kind: str
    path: str

    def events(self) -> tuple[tuple[int, str], ...]:
        """The (event type, path) it fires, in DataTree's trigger order: the
        node's own event, then NodeChildrenChanged at the parent."""
        if self.kind == CHANGED:
            return ((_DATA, self.path),)
        parent = self.path.rsplit("/", 1)[0] or "/"
        return ((_CREATED if self.kind == CREATED else _DELETED, self.path), (_CHILDREN, parent))


@dataclass(slots=True)
class ChangeLog:
    """The changes applied, in zxid order, fed each transaction at its
    first delivery on any server (:meth:`on_txn`), and the zxid each
    session was first closed (expired or closed) at. A CloseSession deletes
    its session's ephemerals in path order, as synod's DataTree does
    (ZooKeeper's order is its CloseSessionTxn's list)."""

    changes: list[Change] = field(default_factory=list)
    closed: dict[int, int] = field(default_factory=dict)            # session -> zxid of its first close
    ephemerals: dict[int, set[str]] = field(default_factory=dict)   # session -> its ephemeral paths
    owner: dict[str, int] = field(default_factory=dict)             # ephemeral path -> session

    def on_txn(self, zxid: int, txn: Any, err: int) -> None:
        """A transaction applied at ``zxid`` with result ``err`` (0: applied)."""
        if err:
            return
        for sub in (txn.txns if type(txn) is MultiTxn else (txn,)):
            self._one(zxid, sub)

    def _one(self, zxid: int, txn: Any) -> None:
        t = type(txn)
        if t is CreateTxn:
            self.changes.append(Change(zxid, CREATED, txn.path))
            if txn.kind == NodeKind.EPHEMERAL:
                self.ephemerals.setdefault(txn.ephemeral_owner, set()).add(txn.path)
                self.owner[txn.path] = txn.ephemeral_owner
        elif t is DeleteTxn:
            self._delete(zxid, txn.path)
        elif t is SetDataTxn:
            self.changes.append(Change(zxid, CHANGED, txn.path))
        elif t is CloseSessionTxn:
            self.closed.setdefault(txn.session_id, zxid)
            for path in sorted(self.ephemerals.get(txn.session_id, ())):
                self._delete(zxid, path)

    def _delete(self, zxid: int, path: str) -> None:
        self.changes.append(Change(zxid, DELETED, path))
        sid = self.owner.pop(path, None)
        if sid is not None:
            self.ephemerals[sid].discard(path)


@dataclass(slots=True)
class ConnectionLog:
    """What one client saw on one connection (its ``epoch``: the client's
    count of connections), in arrival order: ``("watch", Watch, zxid)``
    (set by a reply at that zxid: addWatch's, or a watching read's),
    ``("setwatches", relativeZxid, zxid, one-shot watches, persistent
    watches)`` (SetWatches2's reply), ``("event", event type, path)``,
    ``("reply", zxid)`` (any other reply but CONNECTIONLOSS)."""

    client: int
    epoch: int
    server: str
    session_id: int
    items: list[tuple[Any, ...]] = field(default_factory=list)

    def name(self) -> str:
        return f"c{self.client + 1} connection {self.epoch} (to {self.server}, session {self.session_id:#x})"


class WatchingClient:
    """The watching side of :class:`synod.harness.zk.ZkClient` (a mixin:
    the client supplies ``_request``, its connection and ``shared``): keep
    persistent watches across connections, set one-shot ones, and log what
    each connection carries (:class:`ConnectionLog`)."""

    index: int
    server: str | None
    session_id: int
    last_zxid: int
    shared: Any                  # synod.harness.zk._Shared: .connections, .count
    watches: tuple[Watch, ...]   # the persistent watches it keeps; () for a client that does not watch
    watched_session: int         # the session its persistent watches were added to (addWatch)
    one_shots: list[Watch]       # one-shot watches set and not yet seen to fire
    epoch: int                   # connections made
    log: ConnectionLog | None    # what the current connection carried

    async def _request(self, ctx: Context, msg: Any, *, log_reply: bool = True) -> m.Reply | None:
        raise NotImplementedError

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        """A notification: kept if it came on the current connection. One
        from another server, or from this one before its ConnectResponse,
        belongs to a connection the client has left (TCP would not deliver
        it: see :func:`synod.harness.zk.zk_scenario` for the links' order)."""
        if type(msg) is not m.WatcherEvent:
            raise RemoteProtocolError(f"unexpected {type(msg).__name__} from {src}")
        assert msg.state == KeeperState.SyncConnected, msg
        if self.log is not None and src == self.server:
            self.log.items.append(("event", msg.type_, msg.path))
            # ZooKeeper's ZKWatchManager.materialize: the one-shot watches this event spends
            self.one_shots = [w for w in self.one_shots if not w.matches(msg.type_, msg.path)]
        else:
            self.shared.count("notifications of a closed connection")

    async def _register(self, ctx: Context) -> bool:
        """A watcher's watches on a new connection (ZooKeeper's
        ClientCnxn.primeConnection): on a session that has none yet, addWatch
        each persistent one; else SetWatches2 with every watch it holds,
        one-shot ones included, relative to the last zxid it saw. False: the
        connection was lost meanwhile."""
        if not self.watches:
            return True
        assert self.server is not None
        self.epoch += 1
        self.log = ConnectionLog(self.index, self.epoch, self.server, self.session_id)
        self.shared.connections.append(self.log)
        if self.watched_session != self.session_id:
            self.one_shots = []   # a new session: the old one's watches went with it
            for w in self.watches:
                reply = await self._request(ctx, m.AddWatchRequest(path=w.path, mode=int(
                    AddWatchMode.persistentRecursive if w.kind == WatchKind.RECURSIVE else AddWatchMode.persistent)),
                    log_reply=False)
                if reply is None or reply.err:
                    self.server = None
                    return False
                self.log.items.append(("watch", w, reply.zxid))
            self.watched_session = self.session_id
            return True
        one_shots = tuple(self.one_shots)
        relative = self.last_zxid

        def paths(kind: str) -> tuple[str, ...]:
            return tuple(w.path for w in one_shots if w.kind == kind)

        reply = await self._request(ctx, m.SetWatches2(
            relativeZxid=relative, dataWatches=paths(WatchKind.DATA), existWatches=paths(WatchKind.EXIST),
            childWatches=paths(WatchKind.CHILD),
            persistentWatches=tuple(w.path for w in self.watches if w.kind == WatchKind.PERSISTENT),
            persistentRecursiveWatches=tuple(w.path for w in self.watches if w.kind == WatchKind.RECURSIVE)),
            log_reply=False)
        if reply is None or reply.err:
            self.server = None
            return False
        self.log.items.append(("setwatches", relative, reply.zxid, one_shots, self.watches))
        return True

    async def _one_shot(self, ctx: Context, key: str) -> None:
        """A watcher sets a one-shot watch: exists or getData on a register,
        or getChildren on ``/s``; never where it keeps a persistent watch
        (a read's watch there would replace it, as in ZooKeeper 3.8)."""
        kind = (WatchKind.EXIST, WatchKind.DATA, WatchKind.CHILD)[ctx.rng.randrange(3)]
        path = "/s" if kind == WatchKind.CHILD else key
        if any(w.path == path and w.kind == WatchKind.PERSISTENT for w in self.watches):
            return
        request: Any = (m.ExistsRequest(path=path, watch=True) if kind == WatchKind.EXIST else
                        m.GetDataRequest(path=path, watch=True) if kind == WatchKind.DATA else
                        m.GetChildrenRequest(path=path, watch=True))
        reply = await self._request(ctx, request)
        if reply is None or self.log is None or self.server is None:
            return
        if reply.err == 0 or (kind == WatchKind.EXIST and reply.err == Code.NONODE):
            # exists on a node that is there leaves a data watch (ZooKeeper's ExistsWatchRegistration)
            watch = Watch(WatchKind.DATA if kind == WatchKind.EXIST and reply.err == 0 else kind, path)
            self.log.items.append(("watch", watch, reply.zxid))
            if watch not in self.one_shots:
                self.one_shots.append(watch)
            self.shared.count("one-shot watches")


def _describe(event_type: int, path: str) -> str:
    return f"{EventType(event_type).name} {path}"


class _Expected:
    """The notifications one connection must carry, generated change by
    change as far as the log needs them."""

    def __init__(self, changes: list[Change], zxids: list[int], closed_at: int | None) -> None:
        self.changes = changes
        self.zxids = zxids
        self.closed_at = closed_at                     # the session's close: its watches go after it
        self.next = -1                                  # index of the next change to expand; -1: no watch yet
        self.active: list[tuple[Watch, int]] = []      # (watch, zxid it was set at), in the order set
        self.pending: list[tuple[int, str, int]] = []  # (event type, path, zxid) due, oldest first

    def add(self, watch: Watch, zxid: int) -> None:
        if self.next < 0:
            self.next = bisect_right(self.zxids, zxid)
        self.active.append((watch, zxid))

    def expand(self) -> bool:
        """Expand the next change into the events it owes; False: none left."""
        if self.next < 0 or self.next >= len(self.changes):
            return False
        change = self.changes[self.next]
        self.next += 1
        if self.closed_at is not None and change.zxid > self.closed_at:
            self.active = []
        for event_type, path in change.events():
            fired = [(w, z) for w, z in self.active if z < change.zxid and w.matches(event_type, path)]
            if fired:
                self.pending.append((event_type, path, change.zxid))
                spent = [a for a in fired if a[0].kind in ONE_SHOT]
                self.active = [a for a in self.active if a not in spent]
        return True

    def due_by(self, zxid: int) -> None:
        """Expand every change at or before ``zxid``."""
        while self.next >= 0 and self.next < len(self.changes) and self.changes[self.next].zxid <= zxid:
            self.expand()


class ChangeIndex:
    """The changes in zxid order, and per path what a server's tree says
    at a zxid (for SetWatches2: exists, mzxid, pzxid)."""

    def __init__(self, changes: Iterable[Change]) -> None:
        self.changes = sorted(changes, key=lambda c: c.zxid)   # stable: a transaction's changes keep their order
        self.zxids = [c.zxid for c in self.changes]
        self.own: dict[str, list[Change]] = {}        # path -> its own creates, deletes, data changes
        self.children: dict[str, list[int]] = {}      # path -> zxids of its children's creates and deletes
        for c in self.changes:
            self.own.setdefault(c.path, []).append(c)
            if c.kind != CHANGED:
                self.children.setdefault(c.path.rsplit("/", 1)[0] or "/", []).append(c.zxid)

    def _last(self, path: str, zxid: int, kinds: tuple[str, ...]) -> Change | None:
        return next((c for c in reversed(self.own.get(path, ())) if c.zxid <= zxid and c.kind in kinds), None)

    def exists(self, path: str, zxid: int) -> bool:
        last = self._last(path, zxid, (CREATED, DELETED))
        return path == "/" or (last is not None and last.kind == CREATED)

    def set_watches(self, relative: int, zxid: int, one_shots: Iterable[Watch]) -> tuple[list[tuple[int, str]],
                                                                                         list[Watch]]:
        """SetWatches2 of ``one_shots`` relative to ``relative``, served at
        ``zxid`` (ZooKeeper's DataTree.setWatches): (the events it fires at
        once, in order: data watches, then exist, then child; the watches
        it sets again)."""
        fired: list[tuple[int, str]] = []
        kept: list[Watch] = []
        for kind in (WatchKind.DATA, WatchKind.EXIST, WatchKind.CHILD):
            for w in (w for w in one_shots if w.kind == kind):
                there = self.exists(w.path, zxid)
                if kind == WatchKind.EXIST:
                    event = (_CREATED, w.path) if there else None
                elif not there:
                    event = (_DELETED, w.path)
                elif kind == WatchKind.DATA:
                    mzxid = self._last(w.path, zxid, (CREATED, CHANGED))
                    event = (_DATA, w.path) if mzxid is not None and mzxid.zxid > relative else None
                else:
                    czxid = self._last(w.path, zxid, (CREATED,))
                    pzxid = max([z for z in self.children.get(w.path, ()) if z <= zxid] +
                                [czxid.zxid if czxid is not None else 0])
                    event = (_CHILDREN, w.path) if pzxid > relative else None
                if event is None:
                    kept.append(w)
                else:
                    fired.append(event)
        return fired, kept


def check_connection(index: ChangeIndex, log: ConnectionLog, closed_at: int | None = None) -> list[str]:
    """The first violation of one connection's notifications (see the
    module docstring), against the changes in ``index``. Empty: the
    connection carried exactly the watched changes from each watch's
    setting on, in order, each before the replies that followed its change;
    and a SetWatches2 fired at once exactly what ZooKeeper's
    DataTree.setWatches fires for the one-shot watches it re-set.
    ``closed_at``: the zxid that closed the connection's session (an expiry
    or a close); its watches are gone after that transaction (its own
    ephemerals' deletions still fire them, as in ZooKeeper's
    FinalRequestProcessor)."""
    items = log.items
    first = next((i for i, item in enumerate(items) if item[0] in ("watch", "setwatches")), len(items))
    before = [item for item in items[:first] if item[0] == "event"]
    fired: list[tuple[int, str]] = []
    kept: list[Watch] = []
    if first < len(items) and items[first][0] == "setwatches":
        _, relative, zxid, one_shots, _persistent = items[first]
        fired, kept = index.set_watches(relative, zxid, one_shots)
        got = [(e[1], e[2]) for e in before[len(before) - len(fired):]] if len(before) >= len(fired) else []
        if got != fired:
            return [f"{log.name()}: SetWatches2 relative to zxid {relative:#x}, served at {zxid:#x}, should fire "
                    f"{[_describe(*e) for e in fired]} at once; the connection's first notifications were "
                    f"{[_describe(e[1], e[2]) for e in before]}"]
        before = before[:len(before) - len(fired)]
    if before:   # a watch left by an earlier connection, or one that is not the client's
        e = before[0]
        return [f"{log.name()}: notification 1 ({_describe(e[1], e[2])}) came before any watch was set on this "
                f"connection"]
    return _check_stream(_Expected(index.changes, index.zxids, closed_at), log, first, kept)


def _check_stream(expected: _Expected, log: ConnectionLog, first: int, kept: list[Watch]) -> list[str]:
    """:func:`check_connection` from the connection's first watch on."""
    latest_event_zxid = 0
    seen = sum(1 for item in log.items[:first] if item[0] == "event")
    for item in log.items[first:]:
        if item[0] == "event":
            seen += 1
            while not expected.pending and expected.expand():
                pass
            head = expected.pending[0] if expected.pending else None
            if head is None or head[:2] != (item[1], item[2]):
                if head is None:
                    return [f"{log.name()}: notification {seen} ({_describe(item[1], item[2])}) fired by no "
                            f"watched change" + ("" if expected.active else " (no watch set)")]
                return [f"{log.name()}: notification {seen} is {_describe(item[1], item[2])}, but the next "
                        f"watched change is {_describe(head[0], head[1])} at zxid {head[2]:#x}"]
            expected.pending.pop(0)
            latest_event_zxid = max(latest_event_zxid, head[2])
            continue
        if item[0] == "watch":
            expected.add(item[1], item[2])
        elif item[0] == "setwatches":
            for w in tuple(item[4]) + tuple(kept):
                expected.add(w, item[2])
        latest_reply = item[2] if item[0] == "setwatches" else item[-1]
        expected.due_by(latest_reply)
        if expected.pending:
            event_type, path, zxid = expected.pending[0]
            return [f"{log.name()}: {_describe(event_type, path)} (zxid {zxid:#x}) not notified before a reply "
                    f"at zxid {latest_reply:#x} ({seen} notifications so far)"]
        if latest_event_zxid > latest_reply:
            return [f"{log.name()}: the notification of zxid {latest_event_zxid:#x} came before a reply at "
                    f"zxid {latest_reply:#x}"]
    return []


@dataclass(frozen=True, slots=True)
class WatchReport:
    """:func:`check_watches`'s answer: ``violations`` (at most
    :data:`VIOLATIONS_MAX`), ``notifications`` checked, ``connections``."""

    violations: list[str]
    notifications: int
    connections: int


def check_watches(changes: ChangeLog, logs: Iterable[ConnectionLog]) -> WatchReport:
    """Every connection's check (:func:`check_connection`) against the
    ``changes`` applied."""
    index = ChangeIndex(changes.changes)
    out: list[str] = []
    events = n = 0
    for log in logs:
        n += 1
        events += sum(1 for item in log.items if item[0] == "event")
        if len(out) < VIOLATIONS_MAX:
            out += check_connection(index, log, changes.closed.get(log.session_id))
    return WatchReport(out, events, n)
