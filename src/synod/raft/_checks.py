"""Checks of peer messages that need a server's state (the stateless ones are
in ``_validate``): a message no correct peer can send given this server's
log raises :class:`RemoteProtocolError` before any state changes, so the
node can drop the connection and run on (issue 8). A mixin of
:class:`~synod.raft.raft.Raft`, as etcd splits checks out of ``raft.go``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from synod.core.errors import RemoteProtocolError
from synod.raft._progress import SNAPSHOT, Progress
from synod.raft.messages import AppendEntries, AppendEntriesReply, HeartbeatReply, InstallSnapshot, InstallSnapshotReply

if TYPE_CHECKING:  # pragma: no cover
    from synod.raft._log import RaftLog

__all__ = ["InboundChecks"]


class InboundChecks:
    """Needs ``term``, ``leader``, ``log``, ``read_seq`` and ``_past_commit``
    of the Raft it is mixed into."""

    term: int
    leader: str | None
    log: RaftLog
    read_seq: int

    def _past_commit(self, m: AppendEntries) -> tuple[int, int, tuple[Any, ...]]: ...  # pragma: no cover

    def _check_from_leader(self, src: str, m: Any) -> None:
        """What no leader of a term >= ours sends (checked in ``step`` before
        any state changes; the stateless checks are in ``_validate``):

        - a second leader in our term (Election Safety, Figure 3);
        - an entry whose term is below that of the entry it would follow in
          our log (terms never decrease along a log: a leader appends
          entries of its own term after its own log);
        - a snapshot beyond our commit index whose last term is below that
          of our commit index (it holds our committed entries)."""
        log = self.log
        if m.term == self.term and self.leader is not None and src != self.leader:
            raise RemoteProtocolError(f"{type(m).__name__} from {src} in term {self.term}, "
                                      f"whose leader is {self.leader}")
        if type(m) is AppendEntries:
            prev, prev_term, entries = self._past_commit(m)
            if entries and log.match_term(prev, prev_term):
                i = log.first_new(entries)
                if i < len(entries) and log.term(entries[i].index - 1) > entries[i].term:
                    raise RemoteProtocolError(f"entry {entries[i].index} of term {entries[i].term} would follow "
                                              f"an entry of term {log.term(entries[i].index - 1)}")
        elif type(m) is InstallSnapshot:
            commit_term = log.term(log.commit_index)
            assert commit_term is not None
            if m.last_included_index > log.commit_index and m.last_included_term < commit_term:
                raise RemoteProtocolError(f"a snapshot through {m.last_included_index} of term "
                                          f"{m.last_included_term}, below the term {commit_term} of our commit "
                                          f"index {log.commit_index}")

    def _check_from_follower(self, pr: Progress, m: Any) -> None:
        """Replies no follower can send to this leader in its term (it only
        echoes what this leader sent it): raised before any state changes."""
        if type(m) is AppendEntriesReply and m.match_index > self.log.last_index:
            # A success names the last index it matched, a rejection the
            # prev_log_index it was sent; both come from this leader's log.
            raise RemoteProtocolError(f"AppendEntriesReply matching {m.match_index}, beyond the leader's "
                                      f"last index {self.log.last_index}")
        if type(m) is HeartbeatReply and m.read_seq > self.read_seq:
            raise RemoteProtocolError(f"HeartbeatReply for read round {m.read_seq}; the latest sent is "
                                      f"{self.read_seq}")
        if (type(m) is InstallSnapshotReply and not m.done and pr.state == SNAPSHOT
                and m.last_included_index == pr.snapshot_index == self.log.snapshot.index
                and m.next_offset > len(self.log.snapshot.data)):
            raise RemoteProtocolError(f"InstallSnapshotReply asking for offset {m.next_offset} of a snapshot of "
                                      f"{len(self.log.snapshot.data)} bytes")
