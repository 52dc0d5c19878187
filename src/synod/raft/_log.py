"""The Raft log of one server: a snapshot plus the entries after it, with a
stable (persisted) prefix and an unstable tail (etcd-io/raft's ``raftLog`` and
``unstable``, merged: entries are kept in memory and the storage layer only
mirrors them).

Indexes start at 1; index 0 with term 0 is the empty log's sentinel.
"""

from __future__ import annotations

from dataclasses import dataclass

from synod.raft._confchange import ConfState
from synod.raft.messages import Entry

__all__ = ["RaftLog", "Snapshot"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """The state machine through ``index`` (whose entry had ``term``) and the
    configuration as of ``index`` (None: the one the server was started with;
    thesis 5.1 keeps the configuration in the snapshot's metadata)."""

    index: int
    term: int
    data: bytes
    conf: ConfState | None = None


def entry_size_bytes(e: Entry) -> int:
    return 16 + (len(e.data) if e.data is not None else 0)


class RaftLog:
    def __init__(self) -> None:
        self.snapshot = Snapshot(index=0, term=0, data=b"")
        # Invariant: entries[i].index == snapshot.index + 1 + i.
        self.entries: list[Entry] = []
        # Invariant: snapshot.index <= applied_index <= commit_index <= last_index.
        self.commit_index = 0
        self.applied_index = 0
        # Entries through stable_index are on stable storage (or handed to a Ready).
        # Invariant: stable_index <= last_index.
        self.stable_index = 0

    # -- reading -------------------------------------------------------------
    @property
    def first_index(self) -> int:
        return self.snapshot.index + 1

    @property
    def last_index(self) -> int:
        return self.snapshot.index + len(self.entries)

    @property
    def last_term(self) -> int:
        return self.entries[-1].term if self.entries else self.snapshot.term

    def term(self, index: int) -> int | None:
        """Term of the entry at ``index``; None if compacted away or beyond the end."""
        if index == self.snapshot.index:
            return self.snapshot.term
        if index < self.snapshot.index or index > self.last_index:
            return None
        return self.entries[index - self.snapshot.index - 1].term

    def entry(self, index: int) -> Entry:
        assert self.snapshot.index < index <= self.last_index, index
        return self.entries[index - self.snapshot.index - 1]

    def match_term(self, index: int, term: int) -> bool:
        return self.term(index) == term

    def is_up_to_date(self, last_log_index: int, last_log_term: int) -> bool:
        """Raft section 5.4.1: a candidate's log at least as up to date as ours."""
        return (last_log_term, last_log_index) >= (self.last_term, self.last_index)

    def first_index_of_term(self, index: int) -> int:
        """The first index, at or before ``index``, holding ``term(index)``
        (the fast-backup hint; stops at the snapshot)."""
        t = self.term(index)
        assert t is not None
        while index - 1 > self.snapshot.index and self.term(index - 1) == t:
            index -= 1
        return index

    def last_index_of_term(self, term: int) -> int:
        """The last index holding ``term``, or 0 if the log has no such entry."""
        for e in reversed(self.entries):
            if e.term == term:
                return e.index
            if e.term < term:
                return 0
        return self.snapshot.index if self.snapshot.term == term else 0

    def slice(self, lo: int, hi: int, bytes_max: int, count_max: int) -> list[Entry]:
        """Entries [lo, hi) capped at ``bytes_max`` payload bytes (at least one)
        and ``count_max`` entries."""
        assert self.snapshot.index < lo, (lo, self.snapshot.index)
        assert hi <= self.last_index + 1
        out: list[Entry] = []
        size = 0
        base = self.snapshot.index + 1
        for i in range(lo, min(hi, lo + count_max)):
            e = self.entries[i - base]
            size += entry_size_bytes(e)
            if out and size > bytes_max:
                break
            out.append(e)
        return out

    def unstable_entries(self) -> list[Entry]:
        if self.stable_index >= self.last_index:
            return []
        lo = max(self.stable_index, self.snapshot.index)
        return self.entries[lo - self.snapshot.index:]

    def committed_to_apply(self, count_max: int) -> list[Entry]:
        lo = self.applied_index + 1
        hi = min(self.commit_index, self.applied_index + count_max)
        if lo > hi:
            return []
        base = self.snapshot.index + 1
        assert lo >= base, (lo, base)
        return self.entries[lo - base: hi - base + 1]

    # -- writing -------------------------------------------------------------
    def append(self, entries: list[Entry]) -> None:
        """Append at the end (a leader's own entries)."""
        for e in entries:
            assert e.index == self.last_index + 1, (e.index, self.last_index)
            self.entries.append(e)

    def maybe_append(self, prev_log_index: int, prev_log_term: int, entries: tuple[Entry, ...]) -> int | None:
        """Figure 2, AppendEntries receiver steps 2-4. Returns the index of the
        last entry known to match the leader (prev + len(entries)), or None
        when the log has no entry at ``prev_log_index`` with ``prev_log_term``."""
        if not self.match_term(prev_log_index, prev_log_term):
            return None
        # The node boundary refuses batches that are not consecutive from
        # prev_log_index + 1 (synod.raft._validate).
        assert not entries or entries[0].index == prev_log_index + 1, "entries must follow prev_log_index"
        assert not entries or entries[-1].index == prev_log_index + len(entries), "entries must be consecutive"
        i = self.first_new(entries)
        if i < len(entries):
            e = entries[i]
            before = self.term(e.index - 1)
            assert before is not None and before <= e.term, "log terms must not decrease"
            if self.term(e.index) is not None:
                # Step 3: a conflict truncates the log from here. Committed
                # entries never conflict (Leader Completeness).
                assert e.index > self.commit_index, f"truncating committed entry {e.index}"
                del self.entries[e.index - self.snapshot.index - 1:]
                self.stable_index = min(self.stable_index, e.index - 1)
            self.entries.extend(entries[i:])
        return prev_log_index + len(entries)

    def first_new(self, entries: tuple[Entry, ...]) -> int:
        """The position in ``entries`` (consecutive) of the first one this log
        does not hold with the same term, past the snapshot; ``len(entries)``
        if it holds them all. Changes nothing."""
        for i, e in enumerate(entries):
            if e.index > self.snapshot.index and self.term(e.index) != e.term:
                return i
        return len(entries)

    def commit_to(self, index: int) -> bool:
        index = min(index, self.last_index)
        if index <= self.commit_index:
            return False
        self.commit_index = index
        return True

    def stable_to(self, index: int) -> None:
        self.stable_index = max(self.stable_index, min(index, self.last_index))

    def applied_to(self, index: int) -> None:
        assert index <= self.commit_index, (index, self.commit_index)
        self.applied_index = max(self.applied_index, index)

    def conf_before(self, index: int) -> tuple[int, ConfState | None]:
        """The configuration as of ``index`` and where it comes from: the
        latest change entry at or before it, else the snapshot (None: the
        server's initial configuration). Scans back from ``index``."""
        for i in range(min(index, self.last_index), self.snapshot.index, -1):
            e = self.entries[i - self.snapshot.index - 1]
            if e.conf_change:
                assert e.data is not None
                return i, ConfState.decode(e.data)
        return self.snapshot.index, self.snapshot.conf

    def compact(self, index: int, data: bytes) -> Snapshot:
        """Replace entries through ``index`` (already applied) by a snapshot."""
        assert index <= self.applied_index, (index, self.applied_index)
        assert index > self.snapshot.index, (index, self.snapshot.index)
        term = self.term(index)
        assert term is not None
        _, conf = self.conf_before(index)
        del self.entries[: index - self.snapshot.index]
        self.snapshot = Snapshot(index=index, term=term, data=data, conf=conf)
        return self.snapshot

    def restore(self, snap: Snapshot) -> None:
        """Install a leader's snapshot (Figure 13 steps 6-7): keep the entries
        after it if the log holds the snapshot's last entry, else drop the log."""
        assert snap.index > self.commit_index, (snap.index, self.commit_index)
        if self.match_term(snap.index, snap.term):
            del self.entries[: snap.index - self.snapshot.index]
        else:
            self.entries = []
        self.snapshot = snap
        self.commit_index = snap.index
        self.applied_index = snap.index
        self.stable_index = max(self.stable_index, snap.index) if self.entries else snap.index
