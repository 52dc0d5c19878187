"""Raft RPCs (Ongaro & Ousterhout 2014, Figure 2; Ongaro's thesis sections
3.6, 4.2.3, 6.4, 9.6 and 5.3), one frozen dataclass per message.

Every message carries the sender's ``term``; the sender's id is the network
source. ``Entry.data`` is ``None`` for a leader's no-op (thesis 6.4: a new
leader commits an entry of its own term before serving reads).
"""

from __future__ import annotations

from synod.core import Message

__all__ = [
    "Entry", "RequestVote", "RequestVoteReply", "AppendEntries", "AppendEntriesReply",
    "Heartbeat", "HeartbeatReply", "InstallSnapshot", "InstallSnapshotReply", "TimeoutNow",
    "ReadIndexRequest", "ReadIndexReply", "RaftMessage", "Propose", "ProposeReply",
    "RaftStatusRequest", "RaftStatus", "ConfChangeRequest", "Read",
]


class Entry(Message, tag="raft.Entry"):
    term: int
    index: int
    data: bytes | None  # None: the leader's no-op
    # A membership change (thesis 4.1): ``data`` is the resulting
    # configuration, ``ConfState.encode()``; the state machine skips it.
    conf_change: bool = False


class RequestVote(Message, tag="raft.RequestVote"):
    """Candidate -> all. ``pre_vote``: a pre-vote (thesis 9.6) for ``term``,
    which the candidate has not entered yet. ``transfer``: the election was
    started by TimeoutNow, so voters skip the leader-stickiness check (4.2.3)."""

    term: int
    last_log_index: int
    last_log_term: int
    pre_vote: bool = False
    transfer: bool = False


class RequestVoteReply(Message, tag="raft.RequestVoteReply"):
    term: int
    vote_granted: bool
    pre_vote: bool = False


class AppendEntries(Message, tag="raft.AppendEntries"):
    term: int
    prev_log_index: int
    prev_log_term: int
    entries: tuple[Entry, ...]
    leader_commit: int


class AppendEntriesReply(Message, tag="raft.AppendEntriesReply"):
    """``match_index``: on success, the last index known to match the
    leader's log. On failure, the fast-backup hint: ``conflict_term`` is the
    follower's term at ``prev_log_index`` (0 if it has no entry there) and
    ``conflict_index`` the first index it holds of that term (or its last
    index + 1). ``repairing``: the follower's log lost entries it may have
    acknowledged (a corrupt disk; see ``Raft.repair_bound``), so its match
    index at this leader may go back to the hint."""

    term: int
    success: bool
    match_index: int = 0
    conflict_index: int = 0
    conflict_term: int = 0
    repairing: bool = False


class Heartbeat(Message, tag="raft.Heartbeat"):
    """Leader -> follower, every heartbeat period. ``commit``: min(follower's
    match_index, leader commit), safe for the follower to commit.
    ``read_seq``: the leader's ReadIndex round being confirmed (6.4)."""

    term: int
    commit: int
    read_seq: int


class HeartbeatReply(Message, tag="raft.HeartbeatReply"):
    term: int
    read_seq: int


class InstallSnapshot(Message, tag="raft.InstallSnapshot"):
    """One chunk of the leader's snapshot (Figure 13): ``data`` holds bytes
    [offset, offset + len) of the snapshot through ``last_included_index``."""

    term: int
    last_included_index: int
    last_included_term: int
    offset: int
    data: bytes
    done: bool
    # The configuration as of last_included_index (``ConfState.encode()``;
    # empty: the receiver keeps the one it was started with).
    conf: bytes = b""


class InstallSnapshotReply(Message, tag="raft.InstallSnapshotReply"):
    """``next_offset``: the byte the follower expects next; ``done``: the
    snapshot through ``last_included_index`` is installed."""

    term: int
    last_included_index: int
    next_offset: int
    done: bool


class TimeoutNow(Message, tag="raft.TimeoutNow"):
    """Leader -> transfer target: start an election now (thesis 3.10)."""

    term: int


class ReadIndexRequest(Message, tag="raft.ReadIndexRequest"):
    """Follower -> leader: a linearizable read wants a read index (6.4)."""

    term: int
    ctx: bytes


class ReadIndexReply(Message, tag="raft.ReadIndexReply"):
    """Leader -> follower: ``index`` is safe to read at once applied; -1: refused."""

    term: int
    ctx: bytes
    index: int


RaftMessage = (RequestVote | RequestVoteReply | AppendEntries | AppendEntriesReply | Heartbeat
               | HeartbeatReply | InstallSnapshot | InstallSnapshotReply | TimeoutNow
               | ReadIndexRequest | ReadIndexReply)


# -- client <-> server (the node adapter, not the Raft core) -------------------------

class Propose(Message, tag="raft.Propose"):
    """Client -> server: append ``command`` to the replicated log.
    ``attempt``: which send of this request this copy is (0 first; a client
    that sends the same request again counts up). A server that refused a
    copy as not applied refuses every copy of that same attempt (the network
    may duplicate it, and a duplicate must not be applied after its twin was
    refused), while a later attempt is a deliberate retry and is handled
    afresh."""

    request_id: int
    command: bytes
    attempt: int = 0


class Read(Message, tag="raft.Read"):
    """Client -> any server: a linearizable read of the state machine
    without a log write (thesis 6.4: ReadIndex, or a leader lease when on).
    ``query`` is the state machine's (for the KV machine
    ``encode(["get", key])``). Answered with a :class:`ProposeReply` whose
    ``index`` is the read index and ``result`` the answer; a follower asks
    its leader for the read index and serves the read itself."""

    request_id: int
    query: bytes


class ConfChangeRequest(Message, tag="raft.ConfChangeRequest"):
    """Client -> leader: one single-server membership change (thesis 4.1):
    ``op`` is ``add-learner``, ``promote`` or ``remove``, of server
    ``node_id``. Answered with a :class:`ProposeReply` once the change is
    committed, or at once with the reason it was refused."""

    request_id: int
    op: str
    node_id: str


class ProposeReply(Message, tag="raft.ProposeReply"):
    """``ok``: committed and applied at ``index``; else ``leader_hint`` names
    the leader this server knows of (or None) and ``error`` says why, when
    the server knows (a refused membership change, say). ``indeterminate``
    (with ok False): the server can no longer tell whether the command was
    applied (a snapshot replaced the log around its index); a history must
    record it as ``info``, not ``fail``."""

    request_id: int
    ok: bool
    index: int = 0
    leader_hint: str | None = None
    result: bytes | None = None
    error: str = ""
    indeterminate: bool = False


class RaftStatusRequest(Message, tag="raft.StatusRequest"):
    """Client -> server: how is your Raft server? Answered with ``ctx.reply``."""


class RaftStatus(Message, tag="raft.Status"):
    """One server's view: role, term, the leader it knows of (or None), its
    log's last, commit and applied indexes, and the configuration it uses
    (thesis 4.1: that of the latest change in its log)."""

    node_id: str
    role: str
    term: int
    leader: str | None
    last_index: int
    commit_index: int
    applied_index: int
    voters: tuple[str, ...] = ()
    learners: tuple[str, ...] = ()
