"""Cluster membership: single-server changes (Ongaro's thesis, chapter 4,
section 4.1), with non-voting learners (section 4.2.1).

A configuration is a set of voters and a set of learners. A change adds a
learner, promotes a learner to voter, or removes a server; it travels as a
log entry (``Entry.conf_change``) whose data is the whole resulting
configuration, so a server's configuration is that of the latest change
entry in its log (committed or not, section 4.1), else that of its snapshot,
else the one it was started with. Truncating the log truncates the change
with it.

Only one server's vote changes per change, so any majority of the old voters
and any majority of the new ones overlap (section 4.1); the leader refuses a
second change while one is uncommitted, and before it has committed an entry
of its own term (the fix of section 4.1's single-server-change bug).

Learners receive replication but do not vote, do not count toward a quorum,
and never campaign. Joint consensus (section 4.3) is not implemented.
"""

from __future__ import annotations

from dataclasses import dataclass

from synod.core.errors import LocalProtocolError, RemoteProtocolError

__all__ = ["ConfState", "ConfChange", "ADD_LEARNER", "PROMOTE", "REMOVE", "apply_change"]

ADD_LEARNER = "add-learner"
PROMOTE = "promote"
REMOVE = "remove"
_OPS = (ADD_LEARNER, PROMOTE, REMOVE)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfState:
    """Voters and learners. Invariant: the two sets are disjoint."""

    voters: frozenset[str]
    learners: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        assert not (self.voters & self.learners), (self.voters, self.learners)

    @property
    def members(self) -> frozenset[str]:
        return self.voters | self.learners

    def encode(self) -> bytes:
        """``b"1,2,3|4"``: voters, then learners."""
        return (",".join(sorted(self.voters)) + "|" + ",".join(sorted(self.learners))).encode()

    @staticmethod
    def decode(data: bytes) -> ConfState:
        """Raises RemoteProtocolError on malformed data."""
        try:
            text = data.decode()
        except UnicodeDecodeError:
            raise RemoteProtocolError("configuration is not UTF-8") from None
        if text.count("|") != 1:
            raise RemoteProtocolError(f"malformed configuration {text!r}")
        v, _, lrn = text.partition("|")
        voters = frozenset(filter(None, v.split(",")))
        learners = frozenset(filter(None, lrn.split(",")))
        if voters & learners:
            raise RemoteProtocolError(f"configuration {text!r}: a server is both voter and learner")
        return ConfState(voters=voters, learners=learners)

    def describe(self) -> str:
        return f"voters={','.join(sorted(self.voters)) or '-'} learners={','.join(sorted(self.learners)) or '-'}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfChange:
    """One single-server change: ``op`` (ADD_LEARNER, PROMOTE, REMOVE) of ``node_id``."""

    op: str
    node_id: str

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise LocalProtocolError(f"unknown configuration change {self.op!r}")
        if not self.node_id or "," in self.node_id or "|" in self.node_id:
            raise LocalProtocolError(f"bad server id {self.node_id!r}")


def apply_change(conf: ConfState, cc: ConfChange) -> ConfState | str:
    """The configuration after ``cc``, or why ``cc`` does not apply to ``conf``."""
    n = cc.node_id
    if cc.op == ADD_LEARNER:
        if n in conf.members:
            return f"{n} is already a member"
        return ConfState(voters=conf.voters, learners=conf.learners | {n})
    if cc.op == PROMOTE:
        if n not in conf.learners:
            return f"{n} is not a learner"
        return ConfState(voters=conf.voters | {n}, learners=conf.learners - {n})
    assert cc.op == REMOVE
    if n not in conf.members:
        return f"{n} is not a member"
    if conf.voters == {n}:
        return "cannot remove the last voter"
    return ConfState(voters=conf.voters - {n}, learners=conf.learners - {n})
