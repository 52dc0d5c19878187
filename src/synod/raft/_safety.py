"""A white-box checker of Raft's five safety properties (Figure 3), fed by
every server's Ready (see ``RaftNode.observer``):

- Election Safety: at most one leader per term;
- Leader Append-Only: a leader never overwrites or deletes its entries;
- Log Matching: two entries with the same index and term hold the same
  command and follow the same previous term (by induction, identical prefixes);
- Leader Completeness: a leader of term T holds every entry committed in a
  term before T (a leader of an older term may still be elected late, from
  delayed votes, and lack newer commits: that is allowed);
- State Machine Safety: no two servers apply different commands at one index.

Violations are collected as strings (``violations``), not raised, so a
simulation can report them with its seed.
"""

from __future__ import annotations

from synod.raft._ready import Ready
from synod.raft.raft import LEADER, Raft

__all__ = ["SafetyChecker"]


class SafetyChecker:
    def __init__(self) -> None:
        self.violations: list[str] = []
        self.leaders: dict[int, str] = {}                 # term -> its leader
        self.entries: dict[tuple[int, int], tuple[bytes | None, int | None]] = {}
        self.committed: dict[int, tuple[int, bytes | None]] = {}   # index -> (term, data)
        # index -> the term it was committed in: the leader's term when its own
        # Ready first carries the entry as committed (observed before the
        # commit leaves in its messages), else the applying server's term (a
        # bound from above, so never a false alarm).
        self.commit_term: dict[int, int] = {}
        self._leader_last: dict[str, tuple[int, int]] = {}  # node -> (term led, last index)

    def _violate(self, text: str) -> None:
        if len(self.violations) < 20:
            self.violations.append(text)

    def on_start(self, node_id: str, raft: Raft) -> None:
        self._leader_last.pop(node_id, None)

    def on_ready(self, node_id: str, raft: Raft, rd: Ready) -> None:
        log = raft.log
        if rd.soft_state is not None and rd.soft_state.role == LEADER:
            self._new_leader(node_id, raft)
        if raft.role == LEADER:
            led = self._leader_last.get(node_id)
            if led is not None and led[0] == raft.term and rd.entries and rd.entries[0].index <= led[1]:
                self._violate(f"leader append-only: {node_id} (term {raft.term}) rewrote index "
                              f"{rd.entries[0].index} <= {led[1]}")
            self._leader_last[node_id] = (raft.term, log.last_index)
        for e in rd.entries:
            prev_term = log.term(e.index - 1)
            seen = self.entries.setdefault((e.index, e.term), (e.data, prev_term))
            if seen != (e.data, prev_term) and prev_term is not None and seen[1] is not None:
                self._violate(f"log matching: {node_id} holds ({e.index}, term {e.term}) = {e.data!r} after "
                              f"term {prev_term}; another server had {seen[0]!r} after term {seen[1]}")
        if rd.snapshot is not None and rd.apply_snapshot:
            c = self.committed.get(rd.snapshot.index)
            if c is not None and c[0] != rd.snapshot.term:
                self._violate(f"state machine safety: {node_id} installed a snapshot at {rd.snapshot.index} "
                              f"of term {rd.snapshot.term}, committed term was {c[0]}")
        for e in rd.committed_entries:
            c = self.committed.setdefault(e.index, (e.term, e.data))
            if c != (e.term, e.data):
                self._violate(f"state machine safety: {node_id} applies index {e.index} = (term {e.term}, "
                              f"{e.data!r}); another server applied (term {c[0]}, {c[1]!r})")
            self.commit_term.setdefault(e.index, raft.term)

    def _new_leader(self, node_id: str, raft: Raft) -> None:
        other = self.leaders.setdefault(raft.term, node_id)
        if other != node_id:
            self._violate(f"election safety: {other} and {node_id} both leaders of term {raft.term}")
        log = raft.log
        before = max((i for i, t in self.commit_term.items() if t < raft.term), default=0)
        if before > log.last_index:
            self._violate(f"leader completeness: {node_id} (term {raft.term}) has last index {log.last_index} "
                          f"< index {before} committed in an earlier term")
        for index in range(log.snapshot.index + 1, min(before, log.last_index) + 1):
            c = self.committed.get(index)
            if c is not None and self.commit_term[index] < raft.term and log.term(index) != c[0]:
                self._violate(f"leader completeness: {node_id} (term {raft.term}) has term {log.term(index)} "
                              f"at committed index {index} (term {c[0]})")
