"""What a Raft server accepts from the network: every message is checked here,
at the node boundary, before it touches any state (issue 8, part 3).

The codec already guarantees a message is *well typed* (a registered type,
fields of the annotated types). This module checks that it is *possible*:
what a correct peer running this code could have sent.

- :func:`validate_message` (stateless, per message type): terms and indexes
  non-negative and at most ``TERM_MAX``/``INDEX_MAX``; a message only a
  leader or candidate sends carries a term >= 1; ``(index 0) iff (term 0)``
  for a log position; AppendEntries entries consecutive from
  ``prev_log_index + 1``, their terms >= 1, not decreasing, at least
  ``prev_log_term`` and at most the message's term, within the entry count
  and byte limits the sender applies (``RaftConfig``); a membership-change
  entry or snapshot configuration that decodes to a configuration with a
  voter; snapshot chunks within ``snapshot_chunk_bytes`` and a snapshot
  within ``SNAPSHOT_BYTES_MAX``; ReadIndex contexts within
  ``READ_CTX_BYTES_MAX``.
- :func:`check_inbound` (the node's hook, first line of
  ``RaftNode.on_message``): a Raft message must come from a configured node
  (``ctx.peers``) or a member of the configuration in effect (a server added
  at run time is a client to nodes started before it), never from this
  node's own id; then :func:`validate_message`; then, for a state machine
  that asks for it (``check_command``, ``check_query``, ``check_snapshot``,
  see :class:`~synod.raft.node.StateMachine`; synod.kv.simple does), the
  commands and queries it would apply and a snapshot it would restore must
  be ones it can: a machine that trusts its log has a malformed command
  refused here, where it enters.

Checks that need the receiver's log (a reply matching beyond the leader's
log, a second leader in one term, an entry whose term is below its
predecessor's) are in ``raft.py``, where that state is.

Every failed check raises :class:`~synod.core.errors.RemoteProtocolError`;
the real host then closes that connection with one WARNING and the node runs
on. A correct peer never triggers one, so the simulator never sees one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from synod.core import decode
from synod.core.errors import RemoteProtocolError
from synod.raft import constants as C
from synod.raft._confchange import ConfState
from synod.raft._log import entry_size_bytes
from synod.raft._sessions import ClientSessions, NodeSnapshot, as_client_command
from synod.raft.messages import (
    AppendEntries,
    AppendEntriesReply,
    Heartbeat,
    HeartbeatReply,
    InstallSnapshot,
    InstallSnapshotReply,
    Propose,
    Read,
    ReadIndexReply,
    ReadIndexRequest,
    RequestVote,
    RequestVoteReply,
    TimeoutNow,
)

if TYPE_CHECKING:
    from synod.core import Context
    from synod.raft.node import RaftNode
    from synod.raft.raft import RaftConfig

__all__ = ["validate_message", "check_inbound", "check_conf", "RAFT_MESSAGE_TYPES"]


def _bad(why: str) -> RemoteProtocolError:
    return RemoteProtocolError(why)


def _in_range(name: str, value: int, lo: int, hi: int) -> None:
    if not lo <= value <= hi:
        raise _bad(f"{name} {value} not in [{lo}, {hi}]")


def _term(value: int, *, sender_leads: bool) -> None:
    """A message's own term: >= 1 from a leader or candidate (term 0 has none)."""
    _in_range("term", value, 1 if sender_leads else 0, C.TERM_MAX)


def _position(what: str, index: int, term: int, term_max: int) -> None:
    """A log position (index, term): index 0 is the empty log's sentinel of
    term 0, every other entry has a term >= 1, and no entry's term is above
    the term of the message that names it."""
    _in_range(f"{what} index", index, 0, C.INDEX_MAX)
    _in_range(f"{what} term", term, 0, term_max)
    if (index == 0) != (term == 0):
        raise _bad(f"{what} (index {index}, term {term}): only index 0 has term 0")


def check_conf(data: bytes | None) -> ConfState:
    """A configuration as carried by a change entry or a snapshot: decodes,
    and has at least one voter. Raises RemoteProtocolError."""
    if type(data) is not bytes:
        raise _bad("a membership change entry without a configuration")
    conf = ConfState.decode(data)
    if not conf.voters:
        raise _bad(f"configuration {data!r} has no voter")
    return conf


def _append_entries(m: AppendEntries, config: RaftConfig) -> None:
    _term(m.term, sender_leads=True)
    _position("prev_log", m.prev_log_index, m.prev_log_term, m.term)
    _in_range("leader_commit", m.leader_commit, 0, C.INDEX_MAX)
    entries = m.entries
    n = len(entries)
    if n > config.message_entries_max:
        raise _bad(f"{n} entries in one AppendEntries (limit {config.message_entries_max})")
    if m.prev_log_index + n > C.INDEX_MAX:
        raise _bad(f"entries beyond index {C.INDEX_MAX}")
    # The sender caps a batch at message_entries_bytes_max, but always sends
    # at least one entry (RaftLog.slice).
    if n > 1 and sum(entry_size_bytes(e) for e in entries) > config.message_entries_bytes_max:
        raise _bad(f"entries over {config.message_entries_bytes_max} bytes in one AppendEntries")
    expect, prev_term = m.prev_log_index + 1, m.prev_log_term
    for e in entries:
        if e.index != expect:
            raise _bad(f"entry index {e.index} where {expect} was due: entries must be consecutive "
                       f"from prev_log_index + 1 = {m.prev_log_index + 1}")
        if not max(prev_term, 1) <= e.term <= m.term:
            raise _bad(f"entry {e.index} of term {e.term}: terms must be in [{max(prev_term, 1)}, {m.term}] "
                       "(not decreasing, not above the message's term)")
        if e.conf_change:
            check_conf(e.data)
        expect, prev_term = expect + 1, e.term


def _request_vote(m: RequestVote, config: RaftConfig) -> None:
    _term(m.term, sender_leads=True)
    _position("last_log", m.last_log_index, m.last_log_term, m.term)
    if m.pre_vote and m.transfer:
        raise _bad("a leadership transfer skips the pre-vote")


def _request_vote_reply(m: RequestVoteReply, config: RaftConfig) -> None:
    # A granted vote carries the candidate's term, >= 1.
    _term(m.term, sender_leads=m.vote_granted)


def _append_entries_reply(m: AppendEntriesReply, config: RaftConfig) -> None:
    _term(m.term, sender_leads=False)
    _in_range("match_index", m.match_index, 0, C.INDEX_MAX)
    _in_range("conflict_index", m.conflict_index, 0, C.INDEX_MAX)
    _in_range("conflict_term", m.conflict_term, 0, m.term)


def _heartbeat(m: Heartbeat, config: RaftConfig) -> None:
    _term(m.term, sender_leads=True)
    _in_range("commit", m.commit, 0, C.INDEX_MAX)
    _in_range("read_seq", m.read_seq, 0, C.READ_SEQ_MAX)


def _heartbeat_reply(m: HeartbeatReply, config: RaftConfig) -> None:
    _term(m.term, sender_leads=False)
    _in_range("read_seq", m.read_seq, 0, C.READ_SEQ_MAX)


def _install_snapshot(m: InstallSnapshot, config: RaftConfig) -> None:
    _term(m.term, sender_leads=True)
    _in_range("last_included_index", m.last_included_index, 1, C.INDEX_MAX)
    _in_range("last_included_term", m.last_included_term, 1, m.term)
    if len(m.data) > config.snapshot_chunk_bytes:
        raise _bad(f"snapshot chunk of {len(m.data)} bytes (limit {config.snapshot_chunk_bytes})")
    _in_range("snapshot offset", m.offset, 0, C.SNAPSHOT_BYTES_MAX - len(m.data))
    if m.conf:
        check_conf(m.conf)


def _install_snapshot_reply(m: InstallSnapshotReply, config: RaftConfig) -> None:
    _term(m.term, sender_leads=False)
    _in_range("last_included_index", m.last_included_index, 0, C.INDEX_MAX)
    _in_range("next_offset", m.next_offset, 0, C.SNAPSHOT_BYTES_MAX)


def _timeout_now(m: TimeoutNow, config: RaftConfig) -> None:
    _term(m.term, sender_leads=True)


def _read_index_request(m: ReadIndexRequest, config: RaftConfig) -> None:
    _term(m.term, sender_leads=False)
    if len(m.ctx) > C.READ_CTX_BYTES_MAX:
        raise _bad(f"read context of {len(m.ctx)} bytes (limit {C.READ_CTX_BYTES_MAX})")


def _read_index_reply(m: ReadIndexReply, config: RaftConfig) -> None:
    _term(m.term, sender_leads=True)
    if len(m.ctx) > C.READ_CTX_BYTES_MAX:
        raise _bad(f"read context of {len(m.ctx)} bytes (limit {C.READ_CTX_BYTES_MAX})")
    _in_range("read index", m.index, -1, C.INDEX_MAX)


_CHECKS: dict[type, Callable[[Any, Any], None]] = {
    AppendEntries: _append_entries,
    AppendEntriesReply: _append_entries_reply,
    RequestVote: _request_vote,
    RequestVoteReply: _request_vote_reply,
    Heartbeat: _heartbeat,
    HeartbeatReply: _heartbeat_reply,
    InstallSnapshot: _install_snapshot,
    InstallSnapshotReply: _install_snapshot_reply,
    TimeoutNow: _timeout_now,
    ReadIndexRequest: _read_index_request,
    ReadIndexReply: _read_index_reply,
}

RAFT_MESSAGE_TYPES = frozenset(_CHECKS)


def validate_message(msg: Any, config: RaftConfig) -> None:
    """Check a Raft message (one of ``RAFT_MESSAGE_TYPES``) against what a
    correct peer with ``config`` sends, without any receiver state.

    Raises:
        RemoteProtocolError: the message is impossible; the reason says why.
    """
    _CHECKS[type(msg)](msg, config)


# -- the node's hook ------------------------------------------------------------------

def check_inbound(ctx: Context, src: str, msg: Any, node: RaftNode) -> None:
    """Check a message before ``RaftNode.on_message`` handles it (see the
    module docstring). Client requests and messages of no Raft type pass,
    except commands and queries the state machine says it cannot apply.

    Raises:
        RemoteProtocolError: the message is impossible or malformed.
    """
    t = type(msg)
    raft = node.raft
    sm = node.sm
    if t in RAFT_MESSAGE_TYPES:
        if src == ctx.node_id:
            raise _bad(f"a {t.__name__} claiming to come from this node ({src})")
        if src not in ctx.peers and src not in raft.conf.members:
            raise _bad(f"a {t.__name__} from {src!r}, which is not a configured node or member")
        validate_message(msg, raft.config)
        check = getattr(sm, "check_command", None)
        if t is AppendEntries and check is not None:
            for e in msg.entries:
                if not e.conf_change and e.data is not None:
                    cc = as_client_command(e.data)
                    why = check(cc.command if cc is not None else e.data, from_client=False)
                    if why is not None:
                        raise _bad(f"entry {e.index}: {why}")
        elif t is InstallSnapshot and msg.done:
            _check_snapshot(raft, msg, getattr(sm, "check_snapshot", None))
        return
    if t is Propose:
        check = getattr(sm, "check_command", None)
        why = check(msg.command, from_client=True) if check is not None else None
        if why is not None:
            raise _bad(f"a Propose with {why}")
    elif t is Read:
        check = getattr(sm, "check_query", None)
        why = check(msg.query) if check is not None else None
        if why is not None:
            raise _bad(f"a Read with {why}")
    elif hasattr(msg, "term"):
        raise _bad(f"{t.__name__} is not a Raft message")


def _check_snapshot(raft: Any, m: InstallSnapshot, check_data: Callable[[bytes], str | None] | None) -> None:
    """The last chunk of a snapshot: the whole snapshot, as it would be
    installed, must be one the node can restore (its session table, and
    what the state machine's ``check_data`` says of its own bytes)."""
    inc = raft._incoming
    if m.offset == 0:
        data = m.data
    elif inc is not None and inc[0] == m.last_included_index and inc[1] == m.last_included_term \
            and len(inc[2]) == m.offset:
        data = bytes(inc[2]) + m.data
    else:
        return  # not the chunk the receiver expects: it will be answered with the offset it wants
    if not data:
        return
    try:
        obj = _node_snapshot_or_plain(data)
    except RemoteProtocolError:
        obj = None  # not msgpack at all: the machine's own bytes (RaftNode._restore hands them over)
    if type(obj) is NodeSnapshot:
        sessions = ClientSessions.decode(obj.sessions)
        for client, (rid, result, index) in sessions.table.items():
            if type(client) is not str or type(rid) is not int or type(index) is not int \
                    or not (result is None or type(result) is bytes):
                raise _bad("a snapshot with a malformed session table")
        data = obj.data
    if check_data is not None:
        why = check_data(data)
        if why is not None:
            raise _bad(why)


def _node_snapshot_or_plain(data: bytes) -> Any:
    """``data`` as a NodeSnapshot if it is one, else as plain data.

    Raises:
        RemoteProtocolError: not msgpack at all.
    """
    try:
        return decode(data, NodeSnapshot)
    except RemoteProtocolError:
        return decode(data)
