"""ZooKeeper's transactions: what the leader proposes and every server applies.

ZooKeeper splits a write in two (Hunt et al., USENIX ATC 2010, section 4.1:
"transactions are idempotent"). The leader's PrepRequestProcessor turns a
client request into a *transaction* that states the outcome, not the
operation: a setData carries the new version, a create the full path (with
its sequence suffix) and the parent's new cversion. Zab broadcasts it and
every server applies it to its :class:`~synod.zk.tree.DataTree`
(``DataTree.processTxn``). Because a transaction says what the state becomes,
applying it twice (a replay over a fuzzy snapshot) leaves the same tree.

The records are named after ``zookeeper.jute``'s ``org.apache.zookeeper.txn``
records; their fields are snake_case synod names with the unit last, and
ZooKeeper's separate CreateContainerTxn and CreateTTLTxn are one
:class:`CreateTxn` with a ``kind``. A request that failed in the leader's
checks becomes an :class:`ErrorTxn` (ZooKeeper logs and broadcasts those too).

Simplifications: CloseSessionTxn carries only the session id (ZooKeeper 3.6+
may also list ``paths2Delete``); the tree deletes the session's ephemerals
from its own per-session index, which the leader's view mirrors. Reconfig
transactions are not modelled.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Union

from synod.core.codec import Message
from synod.zk.messages import ACL

__all__ = [
    "NodeKind", "CreateTxn", "DeleteTxn", "SetDataTxn", "SetACLTxn", "CheckVersionTxn", "CreateSessionTxn",
    "CloseSessionTxn", "ErrorTxn", "MultiTxn", "Txn", "SubTxn", "TTL_MS_MAX",
]

# Longest TTL a node may have, ms: ZooKeeper packs it into the low 40 bits of
# ephemeralOwner (EphemeralType.TTL's maxValue).
TTL_MS_MAX = (1 << 40) - 1


class NodeKind(IntEnum):
    """What a create makes (ZooKeeper's EphemeralType, not CreateMode: the
    sequential flag is already spent on the path's suffix)."""

    PERSISTENT = 0
    EPHEMERAL = 1
    CONTAINER = 2
    TTL = 3


class CreateTxn(Message, tag="zk.CreateTxn"):
    """Create ``path`` (sequence suffix included). ``ephemeral_owner`` is the
    owning session id for an EPHEMERAL node, else 0. ``parent_cversion`` is
    the parent's cversion after the create (set only if above the current
    one, so a replay cannot lower it). ``ttl_ms`` > 0 only for TTL nodes.
    ``reply_stat``: the request was create2/createContainer/createTTL (answered
    with a Create2Response), not create (CreateResponse)."""

    path: str
    data: bytes | None
    acl: tuple[ACL, ...]
    kind: int = NodeKind.PERSISTENT
    ephemeral_owner: int = 0
    parent_cversion: int
    ttl_ms: int = 0
    reply_stat: bool = False


class DeleteTxn(Message, tag="zk.DeleteTxn"):
    """Delete ``path`` (a delete or a deleteContainer)."""

    path: str


class SetDataTxn(Message, tag="zk.SetDataTxn"):
    """Set ``path``'s data; ``version`` is the node's version afterwards."""

    path: str
    data: bytes | None
    version: int


class SetACLTxn(Message, tag="zk.SetACLTxn"):
    """Set ``path``'s ACL; ``version`` is the aversion afterwards."""

    path: str
    acl: tuple[ACL, ...]
    version: int


class CheckVersionTxn(Message, tag="zk.CheckVersionTxn"):
    """A multi's check op that passed; ``version`` is version + 1 as
    ZooKeeper writes it. Changes nothing."""

    path: str
    version: int


class CreateSessionTxn(Message, tag="zk.CreateSessionTxn"):
    """Open session ``session_id`` with its negotiated timeout."""

    session_id: int
    timeout_ms: int


class CloseSessionTxn(Message, tag="zk.CloseSessionTxn"):
    """Close (or expire) ``session_id``: every server deletes its ephemerals
    at this zxid, in path order."""

    session_id: int


class ErrorTxn(Message, tag="zk.ErrorTxn"):
    """A request refused by the leader: ``err`` a
    :class:`~synod.zk.constants.Code`. Inside a multi, ``err`` 0 marks an op
    before the failing one, rolled back (ZooKeeper's ErrorTxn(OK))."""

    err: int


SubTxn = Union[CreateTxn, DeleteTxn, SetDataTxn, CheckVersionTxn, ErrorTxn]  # noqa: UP007


class MultiTxn(Message, tag="zk.MultiTxn"):
    """A multi: one txn per op, in op order, all under one zxid. If any is an
    ErrorTxn the whole multi changes nothing (ZooKeeper's all or nothing)."""

    txns: tuple[SubTxn, ...]


Txn = Union[  # noqa: UP007
    CreateTxn, DeleteTxn, SetDataTxn, SetACLTxn, CheckVersionTxn, CreateSessionTxn, CloseSessionTxn, ErrorTxn,
    MultiTxn,
]
