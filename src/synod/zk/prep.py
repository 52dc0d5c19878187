"""The leader's half of a write: a client request becomes a transaction.

Theory of operation (Hunt et al., USENIX ATC 2010, section 4.1; ZooKeeper
3.8's ``PrepRequestProcessor``). The leader checks each write against the
tree *as it will be* once the transactions it already proposed are applied,
and states the outcome as an idempotent transaction (:mod:`synod.zk.txn`):
a create carries its full path (sequence suffix: the parent's cversion,
10 digits) and the parent's next cversion, a setData the node's next
version. A request that fails a check becomes an ErrorTxn with ZooKeeper's
code, in ZooKeeper's order of checks (so a client sees the same error as
from ZooKeeper when several apply).

:class:`TreeView` is ZooKeeper's ``outstandingChanges``: a change record per
path prepared but not yet applied, layered over the tree, dropped once the
tree has applied its zxid (:meth:`TreeView.applied`). Two creates of one
path prepared back to back therefore conflict (the second gets NODEEXISTS)
and two sequential creates get two numbers.

A multi is all or nothing: its ops are prepared in order against the view,
under one zxid; at the first failing op the view's records from this multi
are rolled back, the failing op becomes ErrorTxn(its code) and every later
op ErrorTxn(RUNTIMEINCONSISTENCY); the earlier ops keep their transactions,
which the tree then applies as ErrorTxn(OK) (see ``DataTree.apply``).

ACLs (ZooKeeper's ``fixupACL`` and ``checkACL``): schemes world (anyone),
auth (the session's authenticated ids: digest), digest
(``user:base64(sha1(user:password))``, :func:`digest_id`) and ip
(an address or ``address/bits``). An id of scheme ``super`` passes every check.

Not here: session validity (the server's session tracker answers
SESSIONEXPIRED / SESSIONMOVED before calling :func:`prepare`), quotas,
reconfig, local sessions.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from collections.abc import Sequence

from synod.zk.constants import BUFFER_BYTES_MAX, Code, CreateMode, Perms
from synod.zk.messages import (
    ACL,
    CheckVersionRequest,
    CloseSessionRequest,
    Create2Request,
    CreateContainerRequest,
    CreateRequest,
    CreateTTLRequest,
    DeleteRequest,
    Id,
    MultiRequest,
    SetACLRequest,
    SetDataRequest,
)
from synod.zk.tree import ZNODES_MAX, DataTree, NodeRecord
from synod.zk.txn import (
    TTL_MS_MAX,
    CheckVersionTxn,
    CloseSessionTxn,
    CreateTxn,
    DeleteTxn,
    ErrorTxn,
    MultiTxn,
    NodeKind,
    SetACLTxn,
    SetDataTxn,
    SubTxn,
    Txn,
)

__all__ = [
    "TreeView", "prepare", "prepare_delete_container", "validate_path", "digest_id", "fixup_acl", "check_acl",
    "visible_acl",
    "SPECIAL_PATHS", "OUTSTANDING_CHANGES_MAX",
]

# Paths no delete may name (DataTree.isSpecialPath).
SPECIAL_PATHS = frozenset({"/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"})

# Change records a view holds before the tree applies them; the leader
# stops preparing past it (TreeView.full) until commits catch up.
OUTSTANDING_CHANGES_MAX = 100_000

_INT_MIN = -(1 << 31)


class _Refused(Exception):
    """A check failed: ``code`` is the KeeperException code (internal)."""

    def __init__(self, code: Code) -> None:
        super().__init__(code)
        self.code = code


class _Change:
    """One outstanding change record: the node as it will be (None: deleted)."""

    __slots__ = ("zxid", "record")

    def __init__(self, zxid: int, record: NodeRecord | None) -> None:
        self.zxid = zxid
        self.record = record


_ABSENT = object()


class TreeView:
    """The tree as the leader's prepared transactions will leave it
    (ZooKeeper's outstandingChanges and outstandingChangesForPath)."""

    def __init__(self, tree: DataTree, outstanding_max: int = OUTSTANDING_CHANGES_MAX) -> None:
        assert outstanding_max > 0
        self.tree = tree
        self.outstanding_max = outstanding_max
        self._by_path: dict[str, _Change] = {}
        # (path, change, what _by_path held before: a _Change or _ABSENT), in zxid order.
        self._log: list[tuple[str, _Change, object]] = []

    def __len__(self) -> int:
        return len(self._log)

    def full(self) -> bool:
        return len(self._log) >= self.outstanding_max

    def record(self, path: str) -> NodeRecord | None:
        """The node as it will be, None if absent (getRecordForPath)."""
        change = self._by_path.get(path)
        if change is not None:
            return change.record
        return self.tree.record(path)

    def add(self, zxid: int, path: str, record: NodeRecord | None) -> None:
        """addChangeRecord."""
        assert not self._log or self._log[-1][1].zxid <= zxid
        change = _Change(zxid, record)
        self._log.append((path, change, self._by_path.get(path, _ABSENT)))
        self._by_path[path] = change

    def applied(self, zxid: int) -> None:
        """The tree has applied every txn up to ``zxid``: drop their records
        (FinalRequestProcessor's loop over outstandingChanges)."""
        drop = 0
        while drop < len(self._log) and self._log[drop][1].zxid <= zxid:
            path, change, _ = self._log[drop]
            if self._by_path.get(path) is change:
                del self._by_path[path]
            drop += 1
        del self._log[:drop]

    def mark(self) -> int:
        return len(self._log)

    def rollback(self, mark: int) -> None:
        """Undo the records added since :meth:`mark` (a failed multi's)."""
        while len(self._log) > mark:
            path, _, before = self._log.pop()
            if before is _ABSENT:
                del self._by_path[path]
            else:
                assert isinstance(before, _Change)
                self._by_path[path] = before

    def clear(self) -> None:
        """Forget every outstanding change (leadership lost)."""
        self._by_path.clear()
        self._log.clear()

    def ephemerals(self, session_id: int) -> list[str]:
        """The session's ephemerals once the outstanding changes apply."""
        paths = set(self.tree.get_ephemerals(session_id))
        for path, change in self._by_path.items():
            if change.record is None:
                paths.discard(path)
            elif change.record.kind == NodeKind.EPHEMERAL and change.record.ephemeral_owner == session_id:
                paths.add(path)
        return sorted(paths)


# -- paths ------------------------------------------------------------------------------------------


def validate_path(path: str) -> bool:
    """PathUtils.validatePath: absolute, no trailing ``/`` (but ``/``), no
    empty name, no ``.`` or ``..`` name, no NUL or control character, no
    character ZooKeeper refuses (U+007F-U+009F, U+D800-U+F8FF, U+FFF0 and up;
    a character beyond U+FFFF is a surrogate pair in Java, refused too)."""
    if not path or path[0] != "/":
        return False
    if path == "/":
        return True
    if path[-1] == "/":
        return False
    for name in path[1:].split("/"):
        if name in ("", ".", ".."):
            return False
        for c in name:
            o = ord(c)
            if o <= 0x1F or 0x7F <= o <= 0x9F or 0xD800 <= o <= 0xF8FF or o >= 0xFFF0:
                return False
    return True


def _parent(path: str) -> str:
    """Java's ``path.substring(0, lastSlash)``, with "" (the root) as "/"."""
    return path[:path.rfind("/")] or "/"


def _parent_for_write(path: str) -> str:
    """validatePathForCreate / getParentPathAndValidate's first check."""
    if "/" not in path or "\0" in path:
        raise _Refused(Code.BADARGUMENTS)
    return _parent(path)


def _valid(path: str) -> None:
    if not validate_path(path):
        raise _Refused(Code.BADARGUMENTS)


def _get(view: TreeView, path: str) -> NodeRecord:
    record = view.record(path)
    if record is None:
        raise _Refused(Code.NONODE)
    return record


def _next_version(current: int, expected: int) -> int:
    """checkAndIncVersion: -1 matches any; the next version wraps as a Java int."""
    if expected != -1 and expected != current:
        raise _Refused(Code.BADVERSION)
    return current + 1 if current < (1 << 31) - 1 else _INT_MIN


# -- ACLs -------------------------------------------------------------------------------------------


def digest_id(user: str, password: str) -> str:
    """The digest scheme's id for ``user:password``: ``user:base64(sha1(user:password))``
    (DigestAuthenticationProvider.generateDigest)."""
    sha = hashlib.sha1(f"{user}:{password}".encode()).digest()  # noqa: S324 - ZooKeeper's scheme
    return f"{user}:{base64.b64encode(sha).decode()}"


def _ip_network(acl_id: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    addr, _, bits = acl_id.partition("/")
    try:
        ip = ipaddress.ip_address(addr)
        prefix = int(bits) if bits else ip.max_prefixlen
        if not 0 <= prefix <= ip.max_prefixlen:
            return None
        return ipaddress.ip_network(f"{ip}/{prefix}", strict=False)
    except ValueError:
        return None


def _valid_id(id_: Id) -> bool:
    if id_.scheme == "digest":
        parts = id_.id.split(":")
        while parts and parts[-1] == "":  # Java's split drops trailing empties
            parts.pop()
        return len(parts) == 2
    if id_.scheme == "ip":
        return _ip_network(id_.id) is not None
    return False


def fixup_acl(acl: Sequence[ACL], auth_ids: Sequence[Id]) -> tuple[ACL, ...] | None:
    """The ACL to store, or None (INVALIDACL): duplicates dropped; ``auth``
    replaced by the session's digest ids (none: invalid); world only as
    ``anyone``; digest and ip ids well formed."""
    unique = list(dict.fromkeys(acl))
    if not unique:
        return None
    out: list[ACL] = []
    for a in unique:
        if a.id.scheme == "world" and a.id.id == "anyone":
            out.append(a)
        elif a.id.scheme == "auth":
            mine = [ACL(perms=a.perms, id=i) for i in auth_ids if i.scheme in ("digest", "super")]
            if not mine:
                return None
            out += mine
        elif _valid_id(a.id):
            out.append(a)
        else:
            return None
    return tuple(out)


def _matches(acl_id: Id, auth_id: Id) -> bool:
    if acl_id.scheme == "ip":
        net = _ip_network(acl_id.id)
        try:
            return net is not None and ipaddress.ip_address(auth_id.id) in net
        except ValueError:
            return False
    return acl_id.id == auth_id.id


def check_acl(acl: Sequence[ACL], perm: int, auth_ids: Sequence[Id]) -> bool:
    """ZooKeeperServer.checkACL: may a session with ``auth_ids`` do ``perm``
    (a :class:`~synod.zk.constants.Perms` bit) on a node with ``acl``. An
    empty ACL allows everything; a ``super`` id passes."""
    if any(i.scheme == "super" for i in auth_ids) or not acl:
        return True
    for a in acl:
        if not a.perms & perm:
            continue
        if a.id.scheme == "world" and a.id.id == "anyone":
            return True
        if any(i.scheme == a.id.scheme and _matches(a.id, i) for i in auth_ids):
            return True
    return False


def visible_acl(acl: Sequence[ACL], auth_ids: Sequence[Id]) -> tuple[ACL, ...]:
    """The ACL getACL shows a session: as stored with ADMIN permission, else
    with each digest id's hash replaced by ``x`` (ZooKeeper 3.8's
    FinalRequestProcessor, ZOOKEEPER-1392). The caller checked READ or ADMIN."""
    if check_acl(acl, Perms.ADMIN, auth_ids):
        return tuple(acl)
    return tuple(ACL(perms=a.perms, id=Id(scheme="digest", id=a.id.id.split(":", 1)[0] + ":x"))
                 if a.id.scheme == "digest" and ":" in a.id.id else a for a in acl)


def _require(acl: Sequence[ACL], perm: Perms, auth_ids: Sequence[Id]) -> None:
    if not check_acl(acl, perm, auth_ids):
        raise _Refused(Code.NOAUTH)


# -- requests ---------------------------------------------------------------------------------------

_CreateLike = CreateRequest | Create2Request | CreateContainerRequest | CreateTTLRequest
_MULTI_OP_TYPES = (CreateRequest, Create2Request, CreateContainerRequest, CreateTTLRequest, DeleteRequest,
                   SetDataRequest, CheckVersionRequest)


def _create_kind(request: _CreateLike, extended_types_enabled: bool) -> tuple[int, bool, int]:
    """(kind, sequential, ttl_ms) from the op and flags (CreateMode.fromFlag,
    validateCreateRequest)."""
    try:
        mode = CreateMode(request.flags)
    except ValueError:
        raise _Refused(Code.BADARGUMENTS) from None
    sequential = mode in (CreateMode.PERSISTENT_SEQUENTIAL, CreateMode.EPHEMERAL_SEQUENTIAL,
                          CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL)
    is_ttl = mode in (CreateMode.PERSISTENT_WITH_TTL, CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL)
    if is_ttl and not extended_types_enabled:
        raise _Refused(Code.UNIMPLEMENTED)
    ttl_ms = request.ttl if isinstance(request, CreateTTLRequest) else -1
    if is_ttl != (ttl_ms != -1) or (is_ttl and not 0 < ttl_ms <= TTL_MS_MAX):
        raise _Refused(Code.BADARGUMENTS)
    if isinstance(request, CreateContainerRequest):
        return NodeKind.CONTAINER, sequential, 0
    if is_ttl:
        return NodeKind.TTL, sequential, ttl_ms
    if mode in (CreateMode.EPHEMERAL, CreateMode.EPHEMERAL_SEQUENTIAL):
        return NodeKind.EPHEMERAL, sequential, 0
    return NodeKind.PERSISTENT, sequential, 0


def _create(request: _CreateLike, session_id: int, zxid: int, view: TreeView, auth_ids: Sequence[Id],
            extended_types_enabled: bool) -> CreateTxn:
    kind, sequential, ttl_ms = _create_kind(request, extended_types_enabled)
    if len(request.data or b"") > BUFFER_BYTES_MAX:
        raise _Refused(Code.BADARGUMENTS)
    parent_path = _parent_for_write(request.path)
    acl = fixup_acl(request.acl, auth_ids)
    if acl is None:
        raise _Refused(Code.INVALIDACL)
    parent = _get(view, parent_path)
    _require(parent.acl, Perms.CREATE, auth_ids)
    path = f"{request.path}{parent.cversion:010d}" if sequential else request.path
    _valid(path)
    if view.record(path) is not None:
        raise _Refused(Code.NODEEXISTS)
    if parent.kind == NodeKind.EPHEMERAL:
        raise _Refused(Code.NOCHILDRENFOREPHEMERALS)
    if len(view.tree) + len(view) >= ZNODES_MAX:
        raise _Refused(Code.QUOTAEXCEEDED)
    owner = session_id if kind == NodeKind.EPHEMERAL else 0
    assert kind != NodeKind.EPHEMERAL or session_id != 0
    cversion = parent.cversion + 1
    view.add(zxid, parent.path, parent._replace(cversion=cversion, child_count=parent.child_count + 1))
    view.add(zxid, path, NodeRecord(path=path, version=0, cversion=0, aversion=0, kind=kind, ephemeral_owner=owner,
                                    child_count=0, acl=acl))
    return CreateTxn(path=path, data=request.data, acl=acl, kind=kind, ephemeral_owner=owner,
                     parent_cversion=cversion, ttl_ms=ttl_ms, reply_stat=not isinstance(request, CreateRequest))


def _delete(path: str, version: int, zxid: int, view: TreeView, auth_ids: Sequence[Id]) -> DeleteTxn:
    parent_path = _parent_for_write(path)
    if path in SPECIAL_PATHS:
        raise _Refused(Code.BADARGUMENTS)
    parent = _get(view, parent_path)
    _require(parent.acl, Perms.DELETE, auth_ids)
    node = _get(view, path)
    _next_version(node.version, version)
    if node.child_count > 0:
        raise _Refused(Code.NOTEMPTY)
    view.add(zxid, parent.path, parent._replace(child_count=parent.child_count - 1))
    view.add(zxid, path, None)
    return DeleteTxn(path=path)


def _set_data(request: SetDataRequest, zxid: int, view: TreeView, auth_ids: Sequence[Id]) -> SetDataTxn:
    _valid(request.path)
    if len(request.data or b"") > BUFFER_BYTES_MAX:
        raise _Refused(Code.BADARGUMENTS)
    node = _get(view, request.path)
    _require(node.acl, Perms.WRITE, auth_ids)
    version = _next_version(node.version, request.version)
    view.add(zxid, node.path, node._replace(version=version))
    return SetDataTxn(path=request.path, data=request.data, version=version)


def _set_acl(request: SetACLRequest, zxid: int, view: TreeView, auth_ids: Sequence[Id]) -> SetACLTxn:
    _valid(request.path)
    acl = fixup_acl(request.acl, auth_ids)
    if acl is None:
        raise _Refused(Code.INVALIDACL)
    node = _get(view, request.path)
    _require(node.acl, Perms.ADMIN, auth_ids)
    aversion = _next_version(node.aversion, request.version)
    view.add(zxid, node.path, node._replace(aversion=aversion, acl=acl))
    return SetACLTxn(path=request.path, acl=acl, version=aversion)


def _check(request: CheckVersionRequest, view: TreeView, auth_ids: Sequence[Id]) -> CheckVersionTxn:
    _valid(request.path)
    node = _get(view, request.path)
    _require(node.acl, Perms.READ, auth_ids)
    return CheckVersionTxn(path=request.path, version=_next_version(node.version, request.version))


def _close_session(session_id: int, zxid: int, view: TreeView) -> CloseSessionTxn:
    for path in view.ephemerals(session_id):
        parent = view.record(_parent(path))
        assert parent is not None
        view.add(zxid, parent.path, parent._replace(child_count=parent.child_count - 1))
        view.add(zxid, path, None)
    return CloseSessionTxn(session_id=session_id)


def _one(request: object, session_id: int, zxid: int, view: TreeView, auth_ids: Sequence[Id],
         extended_types_enabled: bool) -> Txn:
    """One request to its txn; raises _Refused."""
    if isinstance(request, (CreateRequest, Create2Request, CreateContainerRequest, CreateTTLRequest)):
        return _create(request, session_id, zxid, view, auth_ids, extended_types_enabled)
    if isinstance(request, DeleteRequest):
        return _delete(request.path, request.version, zxid, view, auth_ids)
    if isinstance(request, SetDataRequest):
        return _set_data(request, zxid, view, auth_ids)
    if isinstance(request, SetACLRequest):
        return _set_acl(request, zxid, view, auth_ids)
    if isinstance(request, CheckVersionRequest):
        return _check(request, view, auth_ids)
    if isinstance(request, CloseSessionRequest):
        return _close_session(session_id, zxid, view)
    raise AssertionError(f"not a write request: {type(request).__name__}")


def _multi(request: MultiRequest, session_id: int, zxid: int, view: TreeView, auth_ids: Sequence[Id],
           extended_types_enabled: bool) -> MultiTxn:
    mark = view.mark()
    txns: list[SubTxn] = []
    failed = False
    for op in request.ops:
        assert isinstance(op, _MULTI_OP_TYPES), type(op).__name__
        if failed:
            txns.append(ErrorTxn(err=Code.RUNTIMEINCONSISTENCY))
            continue
        try:
            txn = _one(op, session_id, zxid, view, auth_ids, extended_types_enabled)
        except _Refused as refused:
            failed = True
            view.rollback(mark)
            txns.append(ErrorTxn(err=refused.code))
            continue
        assert isinstance(txn, (CreateTxn, DeleteTxn, SetDataTxn, CheckVersionTxn))
        txns.append(txn)
    return MultiTxn(txns=tuple(txns))


def prepare(request: object, *, session_id: int, zxid: int, view: TreeView, auth_ids: Sequence[Id] = (),
            extended_types_enabled: bool = True) -> Txn:
    """The transaction for a write ``request`` (a create of any kind,
    DeleteRequest, SetDataRequest, SetACLRequest, CheckVersionRequest,
    MultiRequest or CloseSessionRequest of ``session_id``), to be proposed
    at ``zxid``; its change records go into ``view``. A refused request gives
    ``ErrorTxn(code)`` and leaves the view as it was. ``auth_ids``: the
    session's ids (ip of its connection, digest after addauth, super).
    ``extended_types_enabled``: TTL nodes allowed (ZooKeeper's
    zookeeper.extendedTypesEnabled; off there by default: UNIMPLEMENTED).
    A read or another request is a programming error (AssertionError)."""
    assert zxid > 0
    if isinstance(request, MultiRequest):
        return _multi(request, session_id, zxid, view, auth_ids, extended_types_enabled)
    try:
        return _one(request, session_id, zxid, view, auth_ids, extended_types_enabled)
    except _Refused as refused:
        return ErrorTxn(err=refused.code)


def prepare_delete_container(path: str, *, zxid: int, view: TreeView, version: int = -1) -> DeleteTxn | ErrorTxn:
    """deleteContainer (op 20), sent by the leader's container manager for a
    path from ``DataTree.expired_containers_and_ttls``: NONODE if gone,
    BADARGUMENTS if not a container or TTL node, NOTEMPTY if it has
    children by now (a create raced it), BADVERSION if ``version`` (the
    node's version when it was found expired; -1: any) is no longer the
    version it will have once the outstanding changes apply: a setData
    proposed meanwhile renewed a TTL node, and the change wins. (ZooKeeper
    3.8 re-checks only the children and the kind here.)"""
    node = view.record(path)
    if node is None:
        return ErrorTxn(err=Code.NONODE)
    if node.kind not in (NodeKind.CONTAINER, NodeKind.TTL):
        return ErrorTxn(err=Code.BADARGUMENTS)
    if node.child_count > 0:
        return ErrorTxn(err=Code.NOTEMPTY)
    if version != -1 and node.version != version:
        return ErrorTxn(err=Code.BADVERSION)
    parent = view.record(_parent(path))
    assert parent is not None
    view.add(zxid, parent.path, parent._replace(child_count=parent.child_count - 1))
    view.add(zxid, path, None)
    return DeleteTxn(path=path)
