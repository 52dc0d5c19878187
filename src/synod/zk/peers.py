"""What ZooKeeper servers say to each other and what Zab carries for them
(issue 12 section 2; see :mod:`synod.zk.server` for the request flow):
the transaction envelope every server applies, the write an origin forwards
to the leader in its Zab session, and the session touches of each tick."""

from __future__ import annotations

from synod.core import Message
from synod.zk import messages as m
from synod.zk.txn import Txn

__all__ = ["SyncMarker", "TxnEnvelope", "ForwardRequest", "SessionTouches"]


class SyncMarker(Message, tag="zk.SyncMarker"):
    """``sync``'s place in the write order: applied, it changes nothing."""

    path: str


class TxnEnvelope(Message, tag="zk.TxnEnvelope"):
    """What Zab broadcasts: the transaction, the session and cxid of the
    request it answers (0: made by the leader, as an expiry), the origin
    server that answers it, and the leader's time (ms) for ctime/mtime."""

    session_id: int
    cxid: int
    origin: str
    time_ms: int
    txn: Txn | SyncMarker


class ForwardRequest(Message, tag="zk.ForwardRequest"):
    """Origin -> leader, in the origin's Zab session (:meth:`Zab.forward`;
    the leader's own requests go straight in): prepare and propose this
    write of ``session_id``.
    ``auth_ids``: the session's identities for the ACL checks."""

    session_id: int
    cxid: int
    request: m.CreateRequest | m.Create2Request | m.CreateContainerRequest | m.CreateTTLRequest | \
        m.DeleteRequest | m.SetDataRequest | m.SetACLRequest | m.MultiRequest | m.CloseSessionRequest | \
        m.CheckVersionRequest | m.SyncRequest | None
    auth_ids: tuple[m.Id, ...] = ()
    create_session_timeout_ms: int = 0   # request None: create the session with this timeout


class SessionTouches(Message, tag="zk.SessionTouches"):
    """Server -> leader, each tick: sessions heard from since the last."""

    session_ids: tuple[int, ...]
