"""One smoke run of Raft over real TCP processes (issue 4, part 2): a 3-node
cluster of :class:`~synod.raft.node.RaftNode` under a LocalCluster; the
leader is killed with SIGKILL, a new leader commits new entries, and the old
leader catches up after a restart (recovering from its WAL first).

Every wait is a poll with a deadline (``wait_until``) or a call timeout.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from synod.core import encode
from synod.raft import LEADER
from synod.raft.messages import Propose, ProposeReply, RaftStatus, RaftStatusRequest
from synod.raft.node import FACTORY
from synod.runtime import LocalCluster, local_spec, write_config
from synod.runtime.testing import wait_until

IDS = ("n1", "n2", "n3")
CALL_TIMEOUT_S = 1.0
ELECTION_DEADLINE_S = 10.0   # Lab 3: a new leader within five seconds; twice that for a loaded CI box
CATCH_UP_DEADLINE_S = 10.0
_request_ids = itertools.count(1)


def _status(cluster: LocalCluster, node_id: str) -> RaftStatus | None:
    if not cluster.is_alive(node_id):
        return None
    try:
        reply = cluster.call(node_id, RaftStatusRequest(), CALL_TIMEOUT_S)
    except OSError:
        return None
    return reply if type(reply) is RaftStatus else None


def _leader(cluster: LocalCluster, among: tuple[str, ...], term_above: int = 0) -> RaftStatus | None:
    """The leader of the highest term among ``among``, if it is above ``term_above``."""
    leaders = [s for s in (_status(cluster, n) for n in among) if s is not None and s.role == LEADER]
    best = max(leaders, key=lambda s: s.term, default=None)
    return best if best is not None and best.term > term_above else None


def _propose(cluster: LocalCluster, node_id: str, key: str, value: str) -> ProposeReply | None:
    """Propose ``put key value`` at ``node_id``; its reply once applied there
    (ok), its refusal (not ok), or None on timeout."""
    request = Propose(request_id=next(_request_ids), command=encode(["put", key, value]))
    try:
        with cluster.client(node_id) as client:
            client.send(request)
            while True:
                got = client.recv(CALL_TIMEOUT_S, ProposeReply)
                if got is None:
                    return None
                if got[1].request_id == request.request_id:
                    return got[1]
    except OSError:
        return None


def _commit(cluster: LocalCluster, among: tuple[str, ...], key: str, value: str) -> int:
    """Commit ``put key value`` through whichever of ``among`` leads; its index."""
    def attempt() -> int | None:
        leader = _leader(cluster, among)
        if leader is None:
            return None
        reply = _propose(cluster, leader.node_id, key, value)
        return reply.index if reply is not None and reply.ok else None

    return wait_until(attempt, ELECTION_DEADLINE_S, f"put {key}={value} committed by one of {among}")


def test_leader_killed_new_leader_commits_old_catches_up(tmp_path: Path) -> None:
    """Raft sections 5.2-5.4 on real processes: after SIGKILL of the leader
    the two survivors elect a leader of a higher term that commits new
    entries; the restarted old leader recovers from its disk and applies them."""
    _, path = write_config(local_spec(3, FACTORY, tmp_path / "run"))
    with LocalCluster(path) as cluster:
        cluster.start()
        first = wait_until(lambda: _leader(cluster, IDS), ELECTION_DEADLINE_S, "a first leader")
        before = [_commit(cluster, IDS, f"k{i}", "before") for i in range(3)]
        assert before == sorted(before)
        assert len(set(before)) == 3, f"distinct indexes: {before}"

        old = first.node_id
        assert cluster.kill(old) is not None, f"{old} did not die"
        survivors = tuple(n for n in IDS if n != old)
        second = wait_until(lambda: _leader(cluster, survivors, term_above=first.term), ELECTION_DEADLINE_S,
                            f"a new leader among {survivors} after {old} was killed")
        assert second.node_id != old
        after = [_commit(cluster, survivors, f"k{i}", "after") for i in range(3)]
        assert min(after) > max(before), (before, after)

        cluster.start([old])
        caught_up = wait_until(
            lambda: (s := _status(cluster, old)) is not None and s.applied_index >= max(after) and s,
            CATCH_UP_DEADLINE_S, f"{old} applying index {max(after)} after its restart")
        assert caught_up.term >= second.term
        assert caught_up.role != LEADER or caught_up.term > second.term, "two leaders of one term"
        # Nobody lost anything: every server applied through the last entry.
        for node_id in IDS:
            wait_until(lambda n=node_id: (s := _status(cluster, n)) is not None and s.applied_index >= max(after),
                       CATCH_UP_DEADLINE_S, f"{node_id} applying index {max(after)}")
