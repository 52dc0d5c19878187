"""ZooKeeper's data tree: znodes, the transactions that change them, reads.

Theory of operation (Hunt et al., USENIX ATC 2010, sections 2.1 and 4.1;
ZooKeeper 3.8's ``DataTree`` and ``FinalRequestProcessor``). Every server
holds the whole tree in memory and applies each committed transaction
(:mod:`synod.zk.txn`) in zxid order with :meth:`DataTree.apply`, which
returns what the FinalRequestProcessor answers (an error code and the reply
record) and the watch notifications the change fires (:mod:`synod.zk.watches`).
Reads are served from the local tree.

A znode has data (at most ``BUFFER_BYTES_MAX``, jute.maxbuffer), an ACL,
children, and the Stat of the paper: czxid/ctime (create), mzxid/mtime/
version (last setData), pzxid/cversion (last child change), aversion
(setACL count), ephemeralOwner and the derived dataLength and numChildren.
Rules as ZooKeeper applies them:

- a node's stored cversion counts its children's creates (the sequence
  counter); its Stat reports creates + deletes, ``2 * cversion -
  numChildren``, as ZooKeeper 3.8's DataNode.copyStat does (hence ``/``
  reports -1 and ``/zookeeper`` -2 at start, as ZooKeeper's do);
- a create sets the parent's stored cversion to the transaction's
  ``parent_cversion`` only if that is higher, and its pzxid with it;
- a delete leaves the stored cversion alone and moves the parent's pzxid
  only forward (ZooKeeper 3.8's deleteNode);
- setData and setACL set the version the transaction carries, not +1.

Hence a transaction applied twice (a replay over a fuzzy snapshot) leaves
the tree as once: a second create finds the node (NODEEXISTS, no change), a
second delete finds none (NONODE), a second set writes the same values.

At start the tree holds ``/``, ``/zookeeper``, ``/zookeeper/quota`` and
``/zookeeper/config`` (world-readable only, aversion -1), as ZooKeeper 3.8's
DataTree constructor makes them, all with zeroed Stats.

Node kinds (ZooKeeper's EphemeralType): persistent; ephemeral (owned by a
session, indexed per session, deleted with it, no children); container and
TTL (reported with ephemeralOwner 0; :meth:`DataTree.expired_containers_and_ttls`
lists those the leader should delete, ContainerManager's rule).

Invariants: every node but ``/`` has its parent in the tree and is among
its children; a node is in ``_ephemerals[s]`` exactly when it is ephemeral
and owned by ``s``; ``last_zxid`` is the highest zxid applied.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from synod.core.codec import Message, decode, encode
from synod.zk.constants import BUFFER_BYTES_MAX, AddWatchMode, Code, EventType, KeeperState, Perms
from synod.zk.messages import (
    ACL,
    CheckResult,
    Create2Response,
    CreateResponse,
    DeleteResult,
    ErrorResponse,
    GetACLResponse,
    GetChildren2Response,
    GetChildrenRequest,
    GetChildrenResponse,
    GetDataRequest,
    GetDataResponse,
    Id,
    MultiResponse,
    SetACLResponse,
    SetDataResponse,
    Stat,
    WatcherEvent,
)
from synod.zk.txn import (
    CheckVersionTxn,
    CloseSessionTxn,
    CreateSessionTxn,
    CreateTxn,
    DeleteTxn,
    ErrorTxn,
    MultiTxn,
    NodeKind,
    SetACLTxn,
    SetDataTxn,
    Txn,
)
from synod.zk.watches import Fired, MayRead, WatchManager, parent_path

__all__ = [
    "DataTree", "ApplyResult", "NodeRecord", "TreeSnapshot", "ZnodeRecord", "SessionRecord", "OPEN_ACL_UNSAFE",
    "READ_ACL_UNSAFE", "ZNODES_MAX",
]

OPEN_ACL_UNSAFE = (ACL(perms=int(Perms.ALL), id=Id(scheme="world", id="anyone")),)
READ_ACL_UNSAFE = (ACL(perms=int(Perms.READ), id=Id(scheme="world", id="anyone")),)

# Znodes one tree holds; the leader refuses creates past it (prep.py).
ZNODES_MAX = 10_000_000

_SYSTEM_NODES = ("/zookeeper", "/zookeeper/quota", "/zookeeper/config")


class _Znode:
    """A node's mutable state (ZooKeeper's DataNode with its StatPersisted)."""

    __slots__ = ("data", "acl", "children", "czxid", "mzxid", "pzxid", "ctime", "mtime", "version", "cversion",
                 "aversion", "kind", "ephemeral_owner", "ttl_ms")

    def __init__(self, *, data: bytes | None, acl: tuple[ACL, ...], zxid: int, time_ms: int,
                 kind: int = NodeKind.PERSISTENT, ephemeral_owner: int = 0, ttl_ms: int = 0) -> None:
        self.data = data
        self.acl = acl
        self.children: set[str] = set()
        self.czxid = self.mzxid = self.pzxid = zxid
        self.ctime = self.mtime = time_ms
        self.version = self.aversion = 0
        # Children created so far (the sequence counter). The Stat reports
        # creates + deletes, 2 * cversion - numChildren (DataNode.copyStat).
        self.cversion = 0
        self.kind = kind
        # Invariant: ephemeral_owner != 0 exactly when kind is EPHEMERAL.
        self.ephemeral_owner = ephemeral_owner
        self.ttl_ms = ttl_ms

    def stat(self) -> Stat:
        """The Stat a client sees (ephemeralOwner 0 for containers and TTL
        nodes, as ZooKeeper's getClientEphemeralOwner)."""
        return Stat(czxid=self.czxid, mzxid=self.mzxid, ctime=self.ctime, mtime=self.mtime, version=self.version,
                    cversion=2 * self.cversion - len(self.children), aversion=self.aversion,
                    ephemeralOwner=self.ephemeral_owner, dataLength=len(self.data or b""),
                    numChildren=len(self.children), pzxid=self.pzxid)


class NodeRecord(NamedTuple):
    """What the leader's checks read of a node (ZooKeeper's ChangeRecord)."""

    path: str
    version: int
    cversion: int
    aversion: int
    kind: int
    ephemeral_owner: int
    child_count: int
    acl: tuple[ACL, ...]


@dataclass(frozen=True)
class ApplyResult:
    """What applying one transaction gives (ZooKeeper's ProcessTxnResult as
    the FinalRequestProcessor answers it): ``err`` a
    :class:`~synod.zk.constants.Code` (a multi's: its first failing op's;
    ZooKeeper's reply header still carries 0 for a multi, the errors being
    in the results), ``response`` the reply record or None, ``fired`` the
    (watcher, WatcherEvent) pairs to send, in order, before the reply."""

    err: int = Code.OK
    response: Any = None
    fired: list[Fired] = field(default_factory=list)


# -- snapshot records ------------------------------------------------------------------------------


class ZnodeRecord(Message, tag="zk.ZnodeRecord"):
    """One znode in a snapshot; ``stat`` as a client sees it (numChildren and
    dataLength are checked against the tree on load)."""

    path: str
    data: bytes | None
    acl: tuple[ACL, ...]
    stat: Stat
    kind: int
    ephemeral_owner: int
    ttl_ms: int
    child_creates: int  # the stored cversion (the Stat's is derived)


class SessionRecord(Message, tag="zk.SessionRecord"):
    session_id: int
    timeout_ms: int


class TreeSnapshot(Message, tag="zk.TreeSnapshot"):
    """A tree on disk: nodes parents first, sessions, the last zxid applied."""

    last_zxid: int
    sessions: tuple[SessionRecord, ...]
    nodes: tuple[ZnodeRecord, ...]


def _name(path: str) -> str:
    return path.rsplit("/", 1)[1]


class DataTree:
    """The replicated state of a ZooKeeper server (issue 12 section 2).

    Writes only through :meth:`apply`; reads return the reply record or None
    for a missing node (the server answers NONODE). ACL checks on reads are
    the server's, before the read (:func:`synod.zk.prep.check_acl` with
    :meth:`get_acl`: READ for getData, getChildren, getAllChildrenNumber;
    READ or ADMIN for getACL, shown through :func:`synod.zk.prep.visible_acl`;
    none for exists), so a refused read leaves no watch, as in ZooKeeper."""

    def __init__(self, may_read: MayRead | None = None) -> None:
        """``may_read(watcher, acl)``: may that watcher be told of a change
        to a node with that ACL (the server checks READ against the session's
        ids); None tells every watcher."""
        self._nodes: dict[str, _Znode] = {"/": _Znode(data=b"", acl=OPEN_ACL_UNSAFE, zxid=0, time_ms=0)}
        self._ephemerals: dict[int, set[str]] = {}
        self._containers: set[str] = set()
        self._ttls: set[str] = set()
        self.sessions: dict[int, int] = {}  # session id -> timeout, ms
        self.last_zxid = 0
        self.watches = WatchManager(may_read=may_read)
        for path in _SYSTEM_NODES:
            self._attach(path, _Znode(data=b"", acl=OPEN_ACL_UNSAFE, zxid=0, time_ms=0))
        config = self._nodes["/zookeeper/config"]
        config.acl = READ_ACL_UNSAFE
        config.aversion = -1

    def _attach(self, path: str, node: _Znode) -> None:
        self._nodes[parent_path(path)].children.add(_name(path))
        self._nodes[path] = node
        if node.kind == NodeKind.EPHEMERAL:
            self._ephemerals.setdefault(node.ephemeral_owner, set()).add(path)
        elif node.kind == NodeKind.CONTAINER:
            self._containers.add(path)
        elif node.kind == NodeKind.TTL:
            self._ttls.add(path)

    # -- transactions ------------------------------------------------------------------------------

    def apply(self, txn: Txn, zxid: int, time_ms: int) -> ApplyResult:
        """Apply one committed transaction at ``zxid`` (ZooKeeper's
        DataTree.processTxn). Never raises for an outcome: a txn that no
        longer fits (a replay) gives its error code and changes nothing."""
        assert zxid >= 0
        self.last_zxid = max(self.last_zxid, zxid)
        if isinstance(txn, MultiTxn):
            return self._apply_multi(txn, zxid, time_ms)
        if isinstance(txn, CreateSessionTxn):
            self.sessions[txn.session_id] = txn.timeout_ms
            return ApplyResult()
        if isinstance(txn, CloseSessionTxn):
            return self._close_session(txn.session_id, zxid)
        if isinstance(txn, SetACLTxn):
            node = self._nodes.get(txn.path)
            if node is None:
                return ApplyResult(err=Code.NONODE)
            node.acl = txn.acl
            node.aversion = txn.version
            return ApplyResult(response=SetACLResponse(stat=node.stat()))
        result = self._apply_one(txn, zxid, time_ms)
        if isinstance(result.response, (DeleteResult, CheckResult, ErrorResponse)):
            result = ApplyResult(err=result.err, fired=result.fired)  # no body outside a multi
        return result

    def _apply_one(self, txn: Txn, zxid: int, time_ms: int) -> ApplyResult:
        """A transaction that may stand in a multi; its multi result record."""
        if isinstance(txn, CreateTxn):
            return self._create(txn, zxid, time_ms)
        if isinstance(txn, DeleteTxn):
            if txn.path not in self._nodes or txn.path == "/":
                return ApplyResult(err=Code.NONODE)
            return ApplyResult(response=DeleteResult(), fired=self._delete(txn.path, zxid))
        if isinstance(txn, SetDataTxn):
            node = self._nodes.get(txn.path)
            if node is None:
                return ApplyResult(err=Code.NONODE)
            assert len(txn.data or b"") <= BUFFER_BYTES_MAX
            node.data = txn.data
            node.version = txn.version
            node.mzxid = zxid
            node.mtime = time_ms
            return ApplyResult(response=SetDataResponse(stat=node.stat()),
                               fired=self.watches.node_data_changed(txn.path, node.acl))
        if isinstance(txn, CheckVersionTxn):
            return ApplyResult(response=CheckResult())
        assert isinstance(txn, ErrorTxn), f"not a transaction: {txn!r}"
        return ApplyResult(err=txn.err, response=ErrorResponse(err=txn.err))

    def _create(self, txn: CreateTxn, zxid: int, time_ms: int) -> ApplyResult:
        assert txn.path != "/"
        assert len(txn.data or b"") <= BUFFER_BYTES_MAX
        assert (txn.kind == NodeKind.EPHEMERAL) == (txn.ephemeral_owner != 0)
        parent = self._nodes.get(parent_path(txn.path))
        if parent is None:
            return ApplyResult(err=Code.NONODE)
        # Before the existence check, as FileTxnSnapLog's replay does
        # (ZOOKEEPER-1046): a fuzzy snapshot may hold the child but an older
        # parent cversion, and sequence numbers come from the cversion.
        if txn.parent_cversion > parent.cversion:
            parent.cversion = txn.parent_cversion
            parent.pzxid = zxid
        if _name(txn.path) in parent.children:
            return ApplyResult(err=Code.NODEEXISTS)
        node = _Znode(data=txn.data, acl=txn.acl, zxid=zxid, time_ms=time_ms, kind=txn.kind,
                      ephemeral_owner=txn.ephemeral_owner, ttl_ms=txn.ttl_ms)
        self._attach(txn.path, node)
        fired = self.watches.node_created(txn.path, node.acl, parent.acl)
        if txn.reply_stat:
            return ApplyResult(response=Create2Response(path=txn.path, stat=node.stat()), fired=fired)
        return ApplyResult(response=CreateResponse(path=txn.path), fired=fired)

    def _delete(self, path: str, zxid: int) -> list[Fired]:
        node = self._nodes.pop(path)
        parent = self._nodes[parent_path(path)]
        parent.children.discard(_name(path))
        if zxid > parent.pzxid:
            parent.pzxid = zxid
        if node.kind == NodeKind.EPHEMERAL:
            owned = self._ephemerals[node.ephemeral_owner]
            owned.discard(path)
            if not owned:
                del self._ephemerals[node.ephemeral_owner]
        self._containers.discard(path)
        self._ttls.discard(path)
        return self.watches.node_deleted(path, node.acl, parent.acl)

    def _close_session(self, session_id: int, zxid: int) -> ApplyResult:
        """killSession: the session's ephemerals go, in path order."""
        fired: list[Fired] = []
        for path in sorted(self._ephemerals.get(session_id, ())):
            fired += self._delete(path, zxid)
        self.sessions.pop(session_id, None)
        return ApplyResult(fired=fired)

    def _apply_multi(self, txn: MultiTxn, zxid: int, time_ms: int) -> ApplyResult:
        """All or nothing: with an ErrorTxn among them, every other op becomes
        ErrorTxn(OK) and nothing changes (DataTree.processTxn, case multi)."""
        failed = any(isinstance(t, ErrorTxn) for t in txn.txns)
        err = int(Code.OK)
        results = []
        fired: list[Fired] = []
        for sub in txn.txns:
            if failed and not isinstance(sub, ErrorTxn):
                sub = ErrorTxn(err=Code.OK)
            result = self._apply_one(sub, zxid, time_ms)
            results.append(result.response if result.err == Code.OK or isinstance(sub, ErrorTxn)
                           else ErrorResponse(err=result.err))
            fired += result.fired
            if result.err != Code.OK and err == Code.OK:
                err = result.err
        return ApplyResult(err=err, response=MultiResponse(results=tuple(results)), fired=fired)

    # -- reads -------------------------------------------------------------------------------------

    def __contains__(self, path: str) -> bool:
        return path in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    def record(self, path: str) -> NodeRecord | None:
        """The leader's view of a node (prep.py), None if absent."""
        node = self._nodes.get(path)
        if node is None:
            return None
        return NodeRecord(path=path, version=node.version, cversion=node.cversion, aversion=node.aversion,
                          kind=node.kind, ephemeral_owner=node.ephemeral_owner, child_count=len(node.children),
                          acl=node.acl)

    def stat(self, path: str) -> Stat | None:
        node = self._nodes.get(path)
        return None if node is None else node.stat()

    def exists(self, path: str, watcher: Hashable | None = None) -> Stat | None:
        """exists: the Stat or None; a watcher is left even on a missing node
        (its creation fires it)."""
        if watcher is not None:
            self.watches.add_data_watch(path, watcher)
        return self.stat(path)

    def get_data(self, path: str, watcher: Hashable | None = None) -> GetDataResponse | None:
        node = self._nodes.get(path)
        if node is None:
            return None
        if watcher is not None:
            self.watches.add_data_watch(path, watcher)
        return GetDataResponse(data=node.data, stat=node.stat())

    def _children(self, path: str, watcher: Hashable | None) -> _Znode | None:
        node = self._nodes.get(path)
        if node is not None and watcher is not None:
            self.watches.add_child_watch(path, watcher)
        return node

    def get_children(self, path: str, watcher: Hashable | None = None) -> GetChildrenResponse | None:
        """getChildren: names in sorted order (ZooKeeper's order is a hash set's)."""
        node = self._children(path, watcher)
        return None if node is None else GetChildrenResponse(children=tuple(sorted(node.children)))

    def get_children2(self, path: str, watcher: Hashable | None = None) -> GetChildren2Response | None:
        node = self._children(path, watcher)
        if node is None:
            return None
        return GetChildren2Response(children=tuple(sorted(node.children)), stat=node.stat())

    def multi_read(self, ops: Iterable[GetChildrenRequest | GetDataRequest],
                   can_read: Callable[[tuple[ACL, ...]], bool]) -> MultiResponse:
        """multiRead (op 22, ZooKeeper 3.6+): each op answered on its own, as
        FinalRequestProcessor does: NONODE, NOAUTH when ``can_read(acl)`` (the
        session's READ check) says no, else the read. Not atomic: an error
        answers its op only. An op's watch flag is ignored: ZooKeeper 3.8
        drops it when it parses the ops (seen by the differential test)."""
        results: list[Any] = []
        for op in ops:
            node = self._nodes.get(op.path)
            if node is None:
                results.append(ErrorResponse(err=Code.NONODE))
            elif not can_read(node.acl):
                results.append(ErrorResponse(err=Code.NOAUTH))
            elif isinstance(op, GetDataRequest):
                results.append(self.get_data(op.path))
            else:
                assert isinstance(op, GetChildrenRequest), type(op).__name__
                results.append(self.get_children(op.path))
        return MultiResponse(results=tuple(results))

    def get_acl(self, path: str) -> GetACLResponse | None:
        node = self._nodes.get(path)
        return None if node is None else GetACLResponse(acl=node.acl, stat=node.stat())

    def get_all_children_number(self, path: str) -> int | None:
        """Descendants of path (all nodes but ``/`` for ``/``)."""
        if path not in self._nodes:
            return None
        if path == "/":
            return len(self._nodes) - 1
        prefix = path + "/"
        return sum(1 for p in self._nodes if p.startswith(prefix))

    def get_ephemerals(self, session_id: int, prefix: str = "/") -> tuple[str, ...]:
        """The session's ephemeral paths starting with ``prefix`` (a string
        prefix, as ZooKeeper's FinalRequestProcessor filters), sorted."""
        owned = self._ephemerals.get(session_id, set())
        if prefix.strip() in ("", "/"):
            return tuple(sorted(owned))
        return tuple(sorted(p for p in owned if p.startswith(prefix)))

    def ephemeral_sessions(self) -> list[int]:
        return sorted(self._ephemerals)

    def ephemerals_count(self) -> int:
        """Ephemeral nodes of every session (mntr's zk_ephemerals_count)."""
        return sum(len(paths) for paths in self._ephemerals.values())

    def approximate_data_size(self) -> int:
        """Bytes of every node's path and data (mntr's
        zk_approximate_data_size, DataTree.approximateDataSize: ``/``
        counts 1). O(nodes): computed when asked, not kept up to date."""
        return sum(len(path) + len(node.data or b"") for path, node in self._nodes.items())

    def expired_containers_and_ttls(self, now_ms: int, container_never_used_ms: int = 0) -> list[str]:
        """The paths the leader should delete (ContainerManager.getCandidates):
        a childless container that once had a child (cversion > 0), or never
        had one for ``container_never_used_ms`` (0: never); a childless TTL
        node unmodified for longer than its TTL. Sorted."""
        out = []
        for path in self._containers:
            node = self._nodes[path]
            if node.children:
                continue
            if node.cversion > 0 or (container_never_used_ms and now_ms - node.mtime > container_never_used_ms):
                out.append(path)
        for path in self._ttls:
            node = self._nodes[path]
            if not node.children and now_ms - node.mtime > node.ttl_ms:
                out.append(path)
        return sorted(out)

    # -- watches -----------------------------------------------------------------------------------

    def set_watches(self, relative_zxid: int, watcher: Hashable, *, data: Iterable[str] = (),
                    exist: Iterable[str] = (), child: Iterable[str] = (), persistent: Iterable[str] = (),
                    persistent_recursive: Iterable[str] = ()) -> list[Fired]:
        """SetWatches/SetWatches2 after a reconnect (DataTree.setWatches): a
        watch whose event happened after ``relative_zxid`` fires now, the
        others are set again."""
        fired: list[Fired] = []

        def fire(event_type: EventType, path: str) -> None:
            fired.append((watcher, WatcherEvent(type_=int(event_type), state=int(KeeperState.SyncConnected),
                                                path=path)))

        def resume(paths: Iterable[str], zxid_field: str, changed: EventType, add: Any) -> None:
            for path in paths:
                node = self._nodes.get(path)
                if node is None:
                    fire(EventType.NodeDeleted, path)
                elif getattr(node, zxid_field) > relative_zxid:
                    fire(changed, path)
                else:
                    add(path, watcher)

        resume(data, "mzxid", EventType.NodeDataChanged, self.watches.add_data_watch)
        for path in exist:
            if path in self._nodes:
                fire(EventType.NodeCreated, path)
            else:
                self.watches.add_data_watch(path, watcher)
        resume(child, "pzxid", EventType.NodeChildrenChanged, self.watches.add_child_watch)
        for path in persistent:
            self.watches.add_watch(path, watcher, AddWatchMode.persistent)
        for path in persistent_recursive:
            self.watches.add_watch(path, watcher, AddWatchMode.persistentRecursive)
        return fired

    # -- digest and snapshots ----------------------------------------------------------------------

    def _records(self) -> list[ZnodeRecord]:
        return [ZnodeRecord(path=p, data=n.data, acl=n.acl, stat=n.stat(), kind=n.kind,
                            ephemeral_owner=n.ephemeral_owner, ttl_ms=n.ttl_ms, child_creates=n.cversion)
                for p, n in sorted(self._nodes.items())]

    def digest(self) -> int:
        """A 64-bit digest of every node (path, data, ACL, Stat, kind) and the
        sessions, independent of history: two servers that applied the same
        transactions agree (ZooKeeper's DigestCalculator, computed afresh).
        Watches and last_zxid are not part of it."""
        h = hashlib.blake2b(digest_size=8)
        for record in self._records():
            h.update(encode(record))
        for session_id, timeout_ms in sorted(self.sessions.items()):
            h.update(encode(SessionRecord(session_id=session_id, timeout_ms=timeout_ms)))
        return int.from_bytes(h.digest(), "big")

    def serialize(self) -> bytes:
        """The tree (not its watches) as a :class:`TreeSnapshot`, parents first."""
        sessions = tuple(SessionRecord(session_id=s, timeout_ms=t) for s, t in sorted(self.sessions.items()))
        return encode(TreeSnapshot(last_zxid=self.last_zxid, sessions=sessions, nodes=tuple(self._records())))

    @classmethod
    def deserialize(cls, blob: bytes, may_read: MayRead | None = None) -> DataTree:
        """A tree from :meth:`serialize`'s bytes. Raises RemoteProtocolError
        for bytes that are not a snapshot, ValueError for one that is not a
        tree (a node without its parent, a count that does not match)."""
        snap = decode(blob, TreeSnapshot)
        tree = cls.__new__(cls)
        tree._nodes = {}
        tree._ephemerals = {}
        tree._containers = set()
        tree._ttls = set()
        tree.sessions = {s.session_id: s.timeout_ms for s in snap.sessions}
        tree.last_zxid = snap.last_zxid
        tree.watches = WatchManager(may_read=may_read)
        for r in snap.nodes:  # sorted by path: a parent before its children
            node = _Znode(data=r.data, acl=r.acl, zxid=r.stat.czxid, time_ms=r.stat.ctime, kind=r.kind,
                          ephemeral_owner=r.ephemeral_owner, ttl_ms=r.ttl_ms)
            node.mzxid, node.pzxid, node.mtime = r.stat.mzxid, r.stat.pzxid, r.stat.mtime
            node.version, node.cversion, node.aversion = r.stat.version, r.child_creates, r.stat.aversion
            if r.path == "/":
                tree._nodes["/"] = node
            elif parent_path(r.path) not in tree._nodes:
                raise ValueError(f"snapshot: {r.path} comes without its parent")
            else:
                tree._attach(r.path, node)
        if "/" not in tree._nodes:
            raise ValueError("snapshot: no root")
        for r in snap.nodes:
            if tree._nodes[r.path].stat() != r.stat:
                raise ValueError(f"snapshot: {r.path}'s stat does not match its children or data")
        return tree
