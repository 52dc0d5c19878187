"""A server added to a running KV cluster, over real processes (Raft thesis
4.1-4.2; DESIGN.md section 6).

The new server starts as a learner (``voters`` = the current voters, thesis
4.2.1), so it never campaigns and may never open a connection of its own.
The running servers started without it in their config: they must still
reach it, the leader that adds it as well as every later leader. A leader
that cannot reach it never catches it up, so the promotion is refused; a
voter it cannot reach leaves a four-voter cluster without a quorum once two
servers are down. Writes go through redis-py; every wait polls with a
deadline.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from synod.cli.kv_cmd import wait_for_write
from synod.harness.raft_client import RaftSessionClient, leader_of, status_of
from synod.kv.node import FACTORY
from synod.raft.messages import ConfChangeRequest
from synod.runtime.cluster import LocalCluster
from synod.runtime.config import local_spec, write_config
from synod.runtime.testing import wait_until

IDS = ("n1", "n2", "n3")
DEADLINE_S = 20.0  # an election, a catch-up, a commit: seconds on a loaded two-core box


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    _, path = write_config(local_spec(len(IDS), FACTORY, tmp_path / "run", client_protocols=("resp",)))
    with LocalCluster(path) as cl:
        cl.start()
        wait_for_write({nid: resp_port(cl, nid) for nid in IDS}, DEADLINE_S)
        yield cl


def resp_port(cl: LocalCluster, node_id: str) -> int:
    return cl.config.nodes[node_id].client_ports["resp"]


def conf_change(cl: LocalCluster, op: str, node_id: str) -> int:
    """Commit one membership change through the leader; its log index."""
    client = RaftSessionClient(cl)
    try:
        outcome = client.run(lambda rid: ConfChangeRequest(request_id=rid, op=op, node_id=node_id), DEADLINE_S)
    finally:
        client.close()
    assert outcome.kind == "applied", f"{op} {node_id}: {outcome.kind}: {outcome.why}"
    return outcome.reply.index


def leader_among(cl: LocalCluster, among: tuple[str, ...], term_above: int = 0) -> tuple[str, int] | None:
    statuses = [status_of(cl, nid) for nid in among]
    leaders = [s for s in statuses if s is not None and s.role == "leader" and s.term > term_above]
    best = max(leaders, key=lambda s: s.term, default=None)
    return None if best is None else (best.node_id, best.term)


def write(cl: LocalCluster, via: str, key: str, value: str) -> int:
    """SET through redis-py on ``via`` (a follower forwards it), again while
    the cluster answers TRYAGAIN/UNCERTAIN (SET is idempotent); then the
    commit index of the leader that applied it."""
    r = redis.Redis(port=resp_port(cl, via), socket_timeout=5)

    def attempt() -> bool:
        try:
            return bool(r.set(key, value))
        except redis.exceptions.TryAgainError:   # (redis-py strips the TRYAGAIN prefix from its text)
            return False
        except redis.ResponseError as e:
            if str(e).startswith("UNCERTAIN"):
                return False
            raise

    try:
        wait_until(attempt, DEADLINE_S, f"SET {key} served through {via}")
    finally:
        r.close()
    leader = wait_until(lambda: leader_of(cl), DEADLINE_S, "a leader")
    st = status_of(cl, leader)
    assert st is not None
    return st.commit_index


def applied(cl: LocalCluster, node_id: str, index: int) -> bool:
    st = status_of(cl, node_id)
    return st is not None and st.applied_index >= index


def read_on(cl: LocalCluster, node_id: str, key: str) -> bytes | None:
    """GET on ``node_id``: a ReadIndex read (linearizable), retried while TRYAGAIN."""
    r = redis.Redis(port=resp_port(cl, node_id), socket_timeout=5)
    got: list[bytes | None] = []

    def attempt() -> bool:
        try:
            got.append(r.get(key))
            return True
        except redis.exceptions.TryAgainError:
            return False

    try:
        wait_until(attempt, DEADLINE_S, f"GET {key} served on {node_id}")
    finally:
        r.close()
    return got[-1]


def test_an_added_learner_is_reached_by_every_leader_and_votes(cluster: LocalCluster) -> None:
    """Thesis 4.2.1: n4 starts outside the voters and is caught up as a
    learner by a leader that never had it in its config; promoted, it is
    part of every quorum once two of the original servers are gone, so each
    later leader reaches it too."""
    cl = cluster
    cl.add_node("n4", FACTORY, {"voters": list(IDS)}, client_ports={"resp": 0})
    st = wait_until(lambda: status_of(cl, "n4"), DEADLINE_S, "n4 answering")
    assert st.role != "leader" and "n4" not in st.voters, f"n4 must start as a learner: {st}"

    conf_change(cl, "add-learner", "n4")
    first = write(cl, "n1", "k1", "v1")
    wait_until(lambda: applied(cl, "n4", first), DEADLINE_S, f"learner n4 applying index {first}")
    conf_change(cl, "promote", "n4")
    wait_until(lambda: all((s := status_of(cl, nid)) is not None and s.voters == ("n1", "n2", "n3", "n4")
                           for nid in (*IDS, "n4")), DEADLINE_S, "n1..n4 voters everywhere")

    old, term = wait_until(lambda: leader_among(cl, IDS), DEADLINE_S, "a leader among n1..n3")
    cl.kill(old)  # kill -9: three of four voters left, so every commit needs n4
    survivors = tuple(nid for nid in IDS if nid != old)
    new, term = wait_until(lambda: leader_among(cl, (*survivors, "n4"), term), DEADLINE_S,
                           f"a new leader after {old} was killed")
    second = write(cl, survivors[0], "k2", "v2")
    wait_until(lambda: applied(cl, "n4", second), DEADLINE_S, f"n4 applying index {second} from {new}")
    assert read_on(cl, "n4", "k2") == b"v2"

    cl.start([old])  # back from its disk; now stop another original server
    wait_until(lambda: applied(cl, old, second), DEADLINE_S, f"{old} catching up")
    other = new if new != "n4" else next(nid for nid in survivors)
    cl.stop_node(other)
    left = tuple(nid for nid in (*IDS, "n4") if nid != other)
    third = write(cl, old, "k3", "v3")
    wait_until(lambda: all(applied(cl, nid, third) for nid in left), DEADLINE_S,
               f"{', '.join(left)} applying index {third} without {other}")
    assert read_on(cl, "n4", "k3") == b"v3"
    assert read_on(cl, old, "k1") == b"v1"
