"""Zab's messages (Junqueira et al., DSN 2011, Algorithms 2-4; the packet
names are ZooKeeper's ``Leader`` constants where it has one).

Fast Leader Election's :class:`Notification` travels on its own. Everything
between a leader and one of its followers travels inside a
:class:`Packet` of that follower's session: Zab assumes FIFO channels (TCP
in ZooKeeper), and a session numbers its packets so that a lost or
reordered one ends the session instead of being applied out of order.
"""

from __future__ import annotations

from typing import Any

from synod.core import Message

__all__ = ["Txn", "Notification", "Packet", "FollowerInfo", "LeaderInfo", "AckEpoch", "Diff", "Trunc", "Snap",
           "NewLeader", "Ack", "UpToDate", "Proposal", "Commit", "Inform", "Ping", "Request", "ZabBody",
           "Propose", "ProposeReply", "ZabStatusRequest", "ZabStatus"]


# gc=False: immutable data, never in a reference cycle; a server holds tens of
# thousands (its log, a snapshot in progress) that the cyclic collector need not walk.
class Txn(Message, tag="zab.Txn", gc=False):
    """One transaction of the history: its zxid and the state machine's bytes."""

    zxid: int
    data: bytes


class Notification(Message, tag="zab.Notification"):
    """Fast Leader Election's vote (ZooKeeper's ``FastLeaderElection.
    Notification``): the sender proposes ``leader`` whose history ends at
    ``zxid`` in ``peer_epoch``, in its election round ``election_epoch``
    (the logical clock); ``state`` is the sender's role."""

    leader: str
    zxid: int
    peer_epoch: int
    election_epoch: int
    state: str


class FollowerInfo(Message, tag="zab.FollowerInfo"):
    """Follower -> prospective leader, opening a session (the paper's CEPOCH):
    its accepted epoch and last zxid; ``observer`` for a non-voting learner."""

    accepted_epoch: int
    last_zxid: int
    observer: bool = False


class LeaderInfo(Message, tag="zab.LeaderInfo"):
    """Leader -> follower: the new epoch (the paper's NEWEPOCH)."""

    epoch: int


class AckEpoch(Message, tag="zab.AckEpoch"):
    """Follower -> leader: the epoch is accepted; the follower's current
    epoch and last zxid, from which the leader chooses DIFF, TRUNC or SNAP."""

    current_epoch: int
    last_zxid: int


class Diff(Message, tag="zab.Diff"):
    """Leader -> follower (synchronization): append these transactions."""

    txns: tuple[Txn, ...]


class Trunc(Message, tag="zab.Trunc"):
    """Leader -> follower: drop every transaction after ``zxid``."""

    zxid: int


class Snap(Message, tag="zab.Snap"):
    """Leader -> follower: replace everything with the state at ``zxid``.
    A snapshot over one packet's limit travels in consecutive parts, each
    but the last with ``more`` set; the follower installs it with the last."""

    zxid: int
    data: bytes
    more: bool = False


class NewLeader(Message, tag="zab.NewLeader"):
    """Leader -> follower, after the sync packets: adopt ``epoch`` as the
    current epoch; the history now ends at ``last_zxid``."""

    epoch: int
    last_zxid: int


class Ack(Message, tag="zab.Ack"):
    """Follower -> leader: every transaction up to ``zxid`` is on stable
    storage (cumulative: a follower logs in order). Also the answer to
    NewLeader, with the history's last zxid."""

    zxid: int


class UpToDate(Message, tag="zab.UpToDate"):
    """Leader -> follower: the new epoch is established; every transaction
    up to ``commit_zxid`` is committed (the follower delivers them)."""

    commit_zxid: int


class Proposal(Message, tag="zab.Proposal"):
    """Leader -> follower: the next transactions of the epoch, in zxid order
    (those the leader proposed in one turn of its loop; ZooKeeper sends a
    PROPOSAL packet each)."""

    txns: tuple[Txn, ...]


class Commit(Message, tag="zab.Commit"):
    """Every transaction up to ``zxid`` is committed (cumulative)."""

    zxid: int


class Inform(Message, tag="zab.Inform"):
    """Leader -> observer: a committed transaction (observers do not vote)."""

    txn: Txn


class Ping(Message, tag="zab.Ping"):
    """Leader <-> follower liveness, both ways, once a tick."""


class Request(Message, tag="zab.Request"):
    """Learner -> leader, in the session: requests the learner's clients
    made, in order, for the leader's application to turn into proposals
    (ZooKeeper's REQUEST packet carries one; here those of one turn of the
    learner's loop travel together). Carried in the session so that a
    request is taken only in order and only on the session it was sent on:
    if one is lost, the session breaks and none after it is taken."""

    requests: tuple[bytes, ...]


ZabBody = FollowerInfo | LeaderInfo | AckEpoch | Diff | Trunc | Snap | NewLeader | Ack | UpToDate | Proposal | \
    Commit | Inform | Ping | Request


class Packet(Message, tag="zab.Packet"):
    """One packet of a leader-follower session: ``session`` is the id the
    follower drew for it, ``leader_session`` the one the leader drew when it
    took the session (0 in the follower's FollowerInfo, which opens it): a
    leader that lost the session (it looked again) and takes it anew draws
    another, so no packet of its earlier side is taken for one of the new.
    ``seq`` numbers each direction from 1."""

    session: int
    leader_session: int
    seq: int
    body: ZabBody


class Propose(Message, tag="zab.Propose"):
    """Client -> server: broadcast ``data``; answered once it is delivered."""

    data: bytes


class ProposeReply(Message, tag="zab.ProposeReply"):
    """``zxid`` of the delivered transaction, or 0 with ``leader`` (a hint,
    may be None) when this server is not an established leader."""

    zxid: int
    leader: str | None = None


class ZabStatusRequest(Message, tag="zab.ZabStatusRequest"):
    pass


class ZabStatus(Message, tag="zab.ZabStatus"):
    role: str
    leader: str | None
    accepted_epoch: int
    current_epoch: int
    last_zxid: int
    last_delivered_zxid: int
    extra: dict[str, Any] = {}
