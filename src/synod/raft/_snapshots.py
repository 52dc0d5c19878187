"""Log compaction and chunked InstallSnapshot (Raft paper, section 7 and
Figure 13; etcd-io/raft sends a snapshot whole, synod in chunks). A part of
:class:`~synod.raft.raft.Raft`, which inherits :class:`Snapshots`.

The host calls ``compact(index, data)`` once its state machine through
``index`` is ``data``; the log drops those entries and keeps the snapshot
(with the configuration in effect at ``index``, thesis 4.1). A leader whose
follower needs a compacted entry puts that follower's Progress in SNAPSHOT
and sends the snapshot ``snapshot_chunk_bytes`` at a time, one chunk in
flight: each InstallSnapshotReply names the next offset the follower expects,
and a heartbeat reply re-sends the current chunk if one was lost. The
follower assembles chunks in order (a chunk at an unexpected offset is
answered with the offset it expects; offset 0 starts over), and on the last
one replaces its log with the snapshot and hands it to the host to apply.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from synod.raft._confchange import ConfState
from synod.raft._log import Snapshot
from synod.raft._progress import SNAPSHOT, Progress
from synod.raft.messages import InstallSnapshot, InstallSnapshotReply

if TYPE_CHECKING:
    from synod.raft._log import RaftLog

__all__ = ["Snapshots"]


class Snapshots:
    """Snapshots of a Raft server (section 7); a mixin of
    :class:`~synod.raft.raft.Raft`, whose state it reads (below)."""

    if TYPE_CHECKING:  # Raft's state and actions that snapshots use
        term: int
        config: Any
        log: RaftLog
        _snapshot_out: Snapshot | None
        _snapshot_apply: bool

        def _send(self, to: str, msg: Any) -> None: ...
        def _send_append(self, to: str, *, send_empty: bool = True) -> bool: ...
        def _event(self, name: str, **fields: Any) -> None: ...
        def _reload_conf(self) -> None: ...

    def _init_snapshots(self) -> None:
        # Follower: chunks of a snapshot being received: (index, term, data).
        # Invariant: data is the chunks from offset 0, in order, with no gap.
        self._incoming: tuple[int, int, bytearray] | None = None

    def compact(self, index: int, data: bytes) -> None:
        """The state machine through ``index`` (applied) is ``data``: discard
        the log through ``index`` (section 7)."""
        if index <= self.log.snapshot.index:
            return
        self._snapshot_out = self.log.compact(index, data)
        self._snapshot_apply = False

    # -- leader ------------------------------------------------------------------------
    def _send_snapshot_chunk(self, to: str, pr: Progress) -> None:
        snap = self.log.snapshot
        if pr.snapshot_index != snap.index:
            pr.become_snapshot(snap.index)  # compacted further since: start over
        off = pr.snapshot_offset
        chunk = snap.data[off: off + self.config.snapshot_chunk_bytes]
        self._send(to, InstallSnapshot(term=self.term, last_included_index=snap.index,
                                       last_included_term=snap.term, offset=off, data=chunk,
                                       done=off + len(chunk) >= len(snap.data),
                                       conf=snap.conf.encode() if snap.conf is not None else b""))

    def _on_snapshot_reply(self, src: str, pr: Progress, m: InstallSnapshotReply) -> None:
        if pr.state != SNAPSHOT or m.last_included_index != pr.snapshot_index:
            return
        if m.done:
            pr.maybe_update(m.last_included_index)
            pr.become_probe()
            self._send_append(src)
        else:
            pr.snapshot_offset = m.next_offset
            self._send_snapshot_chunk(src, pr)

    # -- follower ----------------------------------------------------------------------
    def _handle_snapshot(self, src: str, m: InstallSnapshot) -> None:
        idx = m.last_included_index
        if idx <= self.log.commit_index:
            self._send(src, InstallSnapshotReply(term=self.term, last_included_index=idx, next_offset=0, done=True))
            return
        inc = self._incoming
        if m.offset == 0:
            inc = self._incoming = (idx, m.last_included_term, bytearray())
        if inc is None or inc[0] != idx or inc[1] != m.last_included_term or m.offset != len(inc[2]):
            expect = len(inc[2]) if inc is not None and inc[0] == idx else 0
            self._send(src, InstallSnapshotReply(term=self.term, last_included_index=idx, next_offset=expect,
                                                 done=False))
            return
        inc[2].extend(m.data)
        if not m.done:
            self._send(src, InstallSnapshotReply(term=self.term, last_included_index=idx,
                                                 next_offset=len(inc[2]), done=False))
            return
        self._incoming = None
        snap = Snapshot(index=idx, term=m.last_included_term, data=bytes(inc[2]),
                        conf=ConfState.decode(m.conf) if m.conf else None)
        self.log.restore(snap)
        self._reload_conf()
        self._snapshot_out = snap
        self._snapshot_apply = True
        self._event("snapshot_installed", index=idx, term=snap.term)
        self._send(src, InstallSnapshotReply(term=self.term, last_included_index=idx, next_offset=len(snap.data),
                                             done=True))
