"""What a leader knows of each follower (etcd-io/raft's ``tracker`` and
``quorum``): match and next index, a flow-control state, and the in-flight
window of pipelined AppendEntries.

States (etcd's ``StateProbe``, ``StateReplicate``, ``StateSnapshot``):

- PROBE: the leader does not know where the follower's log matches; it sends
  one AppendEntries and waits for the reply (or the next heartbeat).
- REPLICATE: the logs match through ``match_index``; the leader streams
  entries optimistically, up to ``INFLIGHT_MESSAGES_MAX`` messages in flight.
- SNAPSHOT: the follower needs entries the leader compacted away; the leader
  sends its snapshot in chunks, one at a time, and waits.
"""

from __future__ import annotations

from collections import deque

from synod.raft.constants import INFLIGHT_MESSAGES_MAX

__all__ = ["Progress", "PROBE", "REPLICATE", "SNAPSHOT", "quorum_index", "majority"]

PROBE = "probe"
REPLICATE = "replicate"
SNAPSHOT = "snapshot"


def majority(n: int) -> int:
    return n // 2 + 1


def quorum_index(indexes: list[int]) -> int:
    """The largest index held by a majority (the median from the top)."""
    s = sorted(indexes, reverse=True)
    return s[majority(len(s)) - 1]


class Progress:
    __slots__ = ("match_index", "next_index", "state", "probe_sent", "inflight",
                 "recent_active", "snapshot_index", "snapshot_offset", "read_seq", "append_since_heartbeat",
                 "match_at_heartbeat", "commit_sent")

    def __init__(self, next_index: int) -> None:
        # Invariant: match_index < next_index.
        self.match_index = 0
        self.next_index = next_index
        self.state = PROBE
        # PROBE: an AppendEntries is out and unanswered; send no other until a
        # reply or heartbeat reply.
        self.probe_sent = False
        # REPLICATE: last index of each AppendEntries in flight, oldest first.
        # Invariant: len(inflight) <= INFLIGHT_MESSAGES_MAX.
        self.inflight: deque[int] = deque()
        # Heard from since the last check-quorum round (thesis 6.2).
        self.recent_active = False
        # SNAPSHOT: the snapshot being sent and the next byte to send.
        self.snapshot_index = 0
        self.snapshot_offset = 0
        # Highest ReadIndex round this follower has acknowledged.
        self.read_seq = 0
        # An AppendEntries went out since the last heartbeat period: it served
        # as the heartbeat (fewer messages; Lab 3's RPC-count bounds).
        self.append_since_heartbeat = False
        # match_index when the last heartbeat went out: no progress over a
        # whole heartbeat round in REPLICATE means a lost append; probe again.
        self.match_at_heartbeat = -1
        # The highest commit index this follower was told it may commit (an
        # append's leader_commit capped at its last entry, or a heartbeat's).
        self.commit_sent = 0

    def become_probe(self) -> None:
        if self.state == SNAPSHOT:
            self.next_index = max(self.match_index + 1, self.snapshot_index + 1)
        else:
            self.next_index = self.match_index + 1
        self.state = PROBE
        self.probe_sent = False
        self.inflight.clear()
        self.snapshot_index = 0

    def become_replicate(self) -> None:
        self.state = REPLICATE
        self.next_index = self.match_index + 1
        self.probe_sent = False
        self.inflight.clear()

    def become_snapshot(self, snapshot_index: int) -> None:
        self.state = SNAPSHOT
        self.inflight.clear()
        self.snapshot_index = snapshot_index
        self.snapshot_offset = 0

    def maybe_update(self, match_index: int) -> bool:
        """A success reply: the follower matches through ``match_index``."""
        updated = match_index > self.match_index
        if updated:
            self.match_index = match_index
            self.probe_sent = False
        self.next_index = max(self.next_index, match_index + 1)
        while self.inflight and self.inflight[0] <= match_index:
            self.inflight.popleft()
        return updated

    def sent(self, last_index: int, count: int) -> None:
        """An AppendEntries whose last entry is ``last_index`` went out."""
        self.append_since_heartbeat = True
        if self.state == REPLICATE:
            if count:
                self.next_index = last_index + 1
                assert len(self.inflight) < INFLIGHT_MESSAGES_MAX
                self.inflight.append(last_index)
        else:
            assert self.state == PROBE
            self.probe_sent = True

    def is_paused(self) -> bool:
        if self.state == PROBE:
            return self.probe_sent
        if self.state == REPLICATE:
            return len(self.inflight) >= INFLIGHT_MESSAGES_MAX
        return True
