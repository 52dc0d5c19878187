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
  ``parent_cversion`` only if that is higher, and moves its pzxid forward
  to the create's zxid with it (in order, always forward; in a replay it
  keeps a pzxid the fuzzy snapshot recorded);
- a delete leaves the stored cversion alone and moves the parent's pzxid
  only forward (ZooKeeper 3.8's deleteNode);
- setData and setACL set the version the transaction carries, not +1.

Hence a transaction applied twice (a replay over a fuzzy snapshot) leaves
the tree as once: a second create finds the node (NODEEXISTS, no change), a
second delete finds none (NONODE), a second set writes the same values.

Fuzzy snapshots (Hunt et al. 2010, section 4.3: "we call each snapshot a
fuzzy snapshot since we do not lock the ZooKeeper state to take the
snapshot"). :meth:`DataTree.fuzzy_snapshot` lists the paths at its start,
when the tree has applied up to its base zxid; each
:meth:`FuzzySerializer.step` then serializes the next few paths' nodes as
they are *now*, while transactions keep applying between steps (a path
deleted meanwhile is skipped). Restored with :meth:`DataTree.deserialize`
and followed by a replay of every transaction after the base zxid, the
tree equals the one that applied them all: each node in the snapshot is
some state of it between the base and the end, and replaying from the base
in order brings every field to its last value. Three places where a node's
state alone would not do, handled as ZooKeeper handles them:

- a child created after its parent was serialized: the create's replay
  raises the parent's cversion and pzxid even when it finds the child
  (ZOOKEEPER-1046, see ``_create``);
- a child deleted after its parent was serialized and before its own turn
  (so absent from the snapshot, and its delete or its session's close
  finds nothing to delete on replay): its parent's record takes the
  parent's pzxid at the skip (ZooKeeper's ZOOKEEPER-3145 moves the pzxid on
  a replayed delete instead; synod's CloseSessionTxn carries no paths);
- a node whose parent was deleted (and perhaps recreated) before the
  parent's turn: an orphan in the snapshot, dropped on load (its replay
  creates it again).

Sessions are those open at the start or at any step (see
:class:`FuzzySerializer`).

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

import msgspec

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
    "DataTree", "ApplyResult", "NodeRecord", "TreeSnapshot", "FuzzyTreeSnapshot", "FuzzySerializer", "ZnodeRecord",
    "SessionRecord", "OPEN_ACL_UNSAFE", "READ_ACL_UNSAFE", "ZNODES_MAX",
]

OPEN_ACL_UNSAFE = (ACL(perms=int(Perms.ALL), id=Id(scheme="world", id="anyone")),)
READ_ACL_UNSAFE = (ACL(perms=int(Perms.READ), id=Id(scheme="world", id="anyone")),)

# Znodes one tree holds; the leader refuses creates past it (prep.py).
ZNODES_MAX = 10_000_000

_SYSTEM_NODES = ("/zookeeper", "/zookeeper/quota", "/zookeeper/config")
_KINDS = frozenset(int(k) for k in NodeKind)


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


# gc=False: immutable data, never in a reference cycle; a server holds tens of
# thousands (its log, a snapshot in progress) that the cyclic collector need not walk.
class ZnodeRecord(Message, tag="zk.ZnodeRecord", gc=False):
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
    """A tree on disk, taken at once: nodes parents first, sessions, the
    last zxid applied. Loaded strictly (every Stat must match the tree)."""

    last_zxid: int
    sessions: tuple[SessionRecord, ...]
    nodes: tuple[ZnodeRecord, ...]


class FuzzyTreeSnapshot(Message, tag="zk.FuzzyTreeSnapshot"):
    """A tree on disk taken while transactions kept applying
    (:class:`FuzzySerializer`): ``base_zxid`` the last zxid applied at its
    start (replay every transaction after it over the loaded tree); nodes in
    path order (parents first), each as it was when serialized; sessions
    open at the start or at any step. Loaded leniently: derived fields
    recomputed, orphans dropped."""

    base_zxid: int
    sessions: tuple[SessionRecord, ...]
    nodes: tuple[ZnodeRecord, ...]


_SNAPSHOT_TYPE = TreeSnapshot | FuzzyTreeSnapshot


def _name(path: str) -> str:
    return path.rsplit("/", 1)[1]


def _record(path: str, n: _Znode) -> ZnodeRecord:
    return ZnodeRecord(path=path, data=n.data, acl=n.acl, stat=n.stat(), kind=n.kind,
                       ephemeral_owner=n.ephemeral_owner, ttl_ms=n.ttl_ms, child_creates=n.cversion)


class FuzzySerializer:
    """One fuzzy snapshot of a :class:`DataTree` in progress (Hunt et al.
    2010, section 4.3; ZooKeeper's FileSnap over a live DataTree). Made by
    :meth:`DataTree.fuzzy_snapshot`; the host calls :meth:`step` between
    transactions until it returns the bytes of a :class:`FuzzyTreeSnapshot`.

    Sessions: those open at the start and at every step, not only at the
    end (nor only at the start). A node serialized at a step is consistent
    with the sessions open at that step: an ephemeral's owner is open when
    its node is serialized. Keeping every such session means that on load,
    and at every point of the replay after it, each ephemeral's owner is
    among the sessions (the invariant synod's simulator checks after every
    applied transaction): a session created after the base is in the
    snapshot before its CreateSession is replayed (which sets it again), and
    one closed after the base stays until its CloseSession is replayed
    (which removes it with its ephemerals). Sessions as of the end alone
    would lose, during the replay, the owner of an ephemeral serialized
    before its session closed; as of the start alone, the owner of one
    created after the base. After the replay, either gives the same tree."""

    def __init__(self, tree: DataTree) -> None:
        self._tree = tree
        self.base_zxid = tree.last_zxid
        self._paths = sorted(tree._nodes)   # a parent before its children
        self._next = 0                      # Invariant: 0 <= _next <= len(_paths)
        self._records: list[ZnodeRecord] = []
        # path -> (its index in _records, the node object serialized): a
        # skipped child's parent record is updated only if it is still that node
        self._serialized: dict[str, tuple[int, _Znode]] = {}
        self._sessions: dict[int, int] = dict(tree.sessions)

    def step(self, items_max: int) -> bytes | None:
        """Serialize the next ``items_max`` (> 0) paths' nodes as they are
        now; the snapshot's bytes once every path is visited, else None.
        O(items_max + sessions), and O(nodes) for the final encoding."""
        assert items_max > 0
        assert self._next < len(self._paths), "a finished fuzzy snapshot was stepped again"
        nodes = self._tree._nodes
        stop = min(self._next + items_max, len(self._paths))
        for path in self._paths[self._next:stop]:
            node = nodes.get(path)
            if node is None:
                self._skip(path)
                continue
            self._serialized[path] = (len(self._records), node)
            self._records.append(_record(path, node))
        self._next = stop
        self._sessions.update(self._tree.sessions)
        if stop < len(self._paths):
            return None
        sessions = tuple(SessionRecord(session_id=s, timeout_ms=t) for s, t in sorted(self._sessions.items()))
        return encode(FuzzyTreeSnapshot(base_zxid=self.base_zxid, sessions=sessions, nodes=tuple(self._records)))

    def _skip(self, path: str) -> None:
        """``path`` was deleted since the start: its delete (or its
        session's close) will find nothing on replay, so its parent's record,
        if serialized already and still the same node, takes the parent's
        pzxid now (which that delete moved)."""
        parent = parent_path(path)
        seen = self._serialized.get(parent)
        node = self._tree._nodes.get(parent)
        if seen is None or node is not seen[1]:
            return
        i = seen[0]
        rec = self._records[i]
        if rec.stat.pzxid < node.pzxid:
            self._records[i] = msgspec.structs.replace(rec, stat=msgspec.structs.replace(rec.stat, pzxid=node.pzxid))


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
            parent.pzxid = max(parent.pzxid, zxid)
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
        return [_record(p, n) for p, n in sorted(self._nodes.items())]

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

    def fuzzy_snapshot(self) -> FuzzySerializer:
        """Start a fuzzy snapshot at ``last_zxid`` (its base): lists the
        paths now (O(nodes log nodes)); the caller steps it between
        transactions (module docstring, "Fuzzy snapshots")."""
        return FuzzySerializer(self)

    @classmethod
    def deserialize(cls, blob: bytes, may_read: MayRead | None = None) -> DataTree:
        """A tree from :meth:`serialize`'s bytes (checked strictly) or a
        :class:`FuzzySerializer`'s (``last_zxid`` its base: replay every
        transaction after it; derived Stat fields recomputed, a node whose
        parent is not there dropped, as its replay recreates it).

        Raises:
            RemoteProtocolError: bytes that are not a snapshot.
            ValueError: a snapshot that is not a tree: nodes out of path
                order, no root, an ephemeral without an owner (or an owner
                on another kind), a number out of range; in an atomic one,
                also a node without its parent or a Stat that does not match.
        """
        snap = decode(blob, _SNAPSHOT_TYPE)
        fuzzy = type(snap) is FuzzyTreeSnapshot
        tree = cls.__new__(cls)
        tree._nodes = {}
        tree._ephemerals = {}
        tree._containers = set()
        tree._ttls = set()
        tree.sessions = {s.session_id: s.timeout_ms for s in snap.sessions}
        tree.last_zxid = snap.base_zxid if fuzzy else snap.last_zxid
        tree.watches = WatchManager(may_read=may_read)
        if tree.last_zxid < 0:
            raise ValueError(f"snapshot: last zxid {tree.last_zxid}")
        previous = ""
        for r in snap.nodes:
            if r.path <= previous:
                raise ValueError(f"snapshot: {r.path} out of path order")   # parents first, no repeats
            previous = r.path
            if not r.path.startswith("/") or (r.path != "/" and r.path.endswith("/")):
                raise ValueError(f"snapshot: {r.path!r} is not a path")
            if r.kind not in _KINDS or (r.kind == NodeKind.EPHEMERAL) != (r.ephemeral_owner != 0):
                raise ValueError(f"snapshot: {r.path} of kind {r.kind} owned by {r.ephemeral_owner:#x}")
            node = _Znode(data=r.data, acl=r.acl, zxid=r.stat.czxid, time_ms=r.stat.ctime, kind=r.kind,
                          ephemeral_owner=r.ephemeral_owner, ttl_ms=r.ttl_ms)
            node.mzxid, node.pzxid, node.mtime = r.stat.mzxid, r.stat.pzxid, r.stat.mtime
            node.version, node.cversion, node.aversion = r.stat.version, r.child_creates, r.stat.aversion
            if r.path == "/":
                tree._nodes["/"] = node
            elif parent_path(r.path) in tree._nodes:
                tree._attach(r.path, node)
            elif not fuzzy:
                raise ValueError(f"snapshot: {r.path} comes without its parent")
            # else: an orphan of a fuzzy snapshot (its parent deleted before its turn): its replay recreates it
        if "/" not in tree._nodes:
            raise ValueError("snapshot: no root")
        if not fuzzy:
            for r in snap.nodes:
                if tree._nodes[r.path].stat() != r.stat:
                    raise ValueError(f"snapshot: {r.path}'s stat does not match its children or data")
        return tree
