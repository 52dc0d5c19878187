"""A Raft server's side of membership changes (Ongaro's thesis, chapter 4):
which configuration is in effect, and how a leader proposes a single-server
change (section 4.1) or promotes a caught-up learner (section 4.2.1). The
configurations themselves and the rules for changing them are in
:mod:`synod.raft._confchange`. A part of :class:`~synod.raft.raft.Raft`,
which inherits :class:`Membership`.

A change takes effect on each server as soon as it is in its log, committed
or not (section 4.1): the configuration in effect is that of the latest
change entry in the log (at ``conf_index``), else of the snapshot, else the
initial one; appending, truncating, installing a snapshot and recovery
recompute it. Quorums count the current voters only, learners never
campaign, and a leader removed from the voters manages the cluster until the
change commits, then steps down (section 4.2.2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from synod.raft import constants as C
from synod.raft._confchange import PROMOTE, ConfChange, ConfState, apply_change
from synod.raft._progress import REPLICATE, Progress
from synod.raft.messages import Entry

if TYPE_CHECKING:
    from synod.raft._log import RaftLog

__all__ = ["Membership"]


class Membership:
    """Cluster membership of a Raft server (thesis 4.1, 4.2); a mixin of
    :class:`~synod.raft.raft.Raft`, whose state it reads (below)."""

    if TYPE_CHECKING:  # Raft's state and actions that membership uses
        id: str
        term: int
        role: str
        transferee: str | None
        log: RaftLog
        progress: dict[str, Progress]
        _proposals_unsent: bool
        is_leader: bool

        def _send_append(self, to: str, *, send_empty: bool = True) -> bool: ...
        def _maybe_commit(self) -> bool: ...
        def _event(self, name: str, **fields: Any) -> None: ...
        def become_follower(self, term: int, leader: str | None) -> None: ...

    def _init_membership(self, peers: tuple[str, ...], learners: tuple[str, ...]) -> None:
        # The configuration in effect: of the latest change entry in the log
        # (at conf_index), else of the snapshot, else the initial one.
        # peers: every member, sorted; others: the members but this server.
        self._initial_conf = ConfState(voters=frozenset(peers), learners=frozenset(learners))
        self.conf = self._initial_conf
        self.conf_index = 0
        self.peers: tuple[str, ...] = ()
        self.others: tuple[str, ...] = ()
        self._set_conf(self._initial_conf, 0)

    def _set_conf(self, conf: ConfState, index: int) -> None:
        self.conf = conf
        self.conf_index = index
        self.peers = tuple(sorted(conf.members))
        self.others = tuple(p for p in self.peers if p != self.id)
        if not self.is_leader:
            return
        for p in self.peers:
            if p not in self.progress:
                # A new member: probe it now rather than at the next heartbeat.
                self.progress[p] = Progress(self.log.last_index + 1)
                self._send_append(p)
        for p in [p for p in self.progress if p not in conf.members and p != self.id]:
            del self.progress[p]
        if self.transferee is not None and self.transferee not in conf.voters:
            self.transferee = None

    def _reload_conf(self) -> None:
        """Recompute the configuration from the log (after truncation,
        appending a change, installing a snapshot, or recovery)."""
        index, conf = self.log.conf_before(self.log.last_index)
        conf = conf or self._initial_conf
        if conf != self.conf:
            self._event("conf_changed", index=index, conf=conf.describe())
        self._set_conf(conf, index)

    def _conf_maybe_changed(self, appended: tuple[Entry, ...]) -> bool:
        """A change entry arrived, or the one in effect was truncated away."""
        log = self.log
        if any(e.conf_change for e in appended):
            return True
        if self.conf_index <= log.snapshot.index:
            return False
        return self.conf_index > log.last_index or not log.entry(self.conf_index).conf_change

    def _is_voter(self) -> bool:
        return self.id in self.conf.voters

    def learner_caught_up(self, node_id: str) -> bool:
        """Leader only: is learner ``node_id`` replicating (the leader knows
        where their logs match) and within ``LEARNER_LAG_ENTRIES_MAX`` entries
        of our last index? Thesis 4.2.1's catch-up condition, as a lag
        threshold rather than rounds."""
        pr = self.progress.get(node_id) if self.is_leader else None
        if pr is None or node_id not in self.conf.learners or pr.state != REPLICATE:
            return False
        return pr.match_index >= self.log.last_index - C.LEARNER_LAG_ENTRIES_MAX

    def propose_conf_change(self, cc: ConfChange) -> tuple[int, int] | str:
        """Append a single-server membership change (thesis 4.1). It takes
        effect here at once and on each follower as it appends it. Returns
        (index, term), or why it was refused: not the leader, a transfer in
        progress, an earlier change not committed yet, no entry of this term
        committed yet (4.1's fix for changes across leader changes), a
        learner to promote not caught up (4.2.1), or a change that does not
        apply to the current configuration."""
        if not self.is_leader:
            return f"not the leader ({self.role})"
        if self.transferee is not None:
            return "transferring leadership"
        if self.conf_index > self.log.commit_index:
            return f"change at {self.conf_index} not committed yet"
        if self.log.term(self.log.commit_index) != self.term:
            return "no entry of this term committed yet"
        if self.log.last_index - self.log.commit_index >= C.PROPOSALS_PENDING_MAX:
            return "too many pending"
        if cc.op == PROMOTE and cc.node_id in self.conf.learners and not self.learner_caught_up(cc.node_id):
            return f"learner {cc.node_id} not caught up"
        new = apply_change(self.conf, cc)
        if isinstance(new, str):
            return new
        index = self.log.last_index + 1
        self.log.append([Entry(term=self.term, index=index, data=new.encode(), conf_change=True)])
        self._event("conf_changed", index=index, conf=new.describe())
        self._set_conf(new, index)
        self.progress[self.id].maybe_update(index)
        self._maybe_commit()
        self._proposals_unsent = self.is_leader
        return index, self.term

    def _step_down_if_removed(self) -> None:
        """Thesis 4.2.2: a leader not in the new configuration manages the
        cluster until the change commits, then steps down."""
        if not self._is_voter() and self.log.commit_index >= self.conf_index:
            self._event("step_down", reason="removed from the configuration")
            self.become_follower(self.term, None)
