"""Client sessions (thesis 6.3): a command is applied once even when the
network duplicates the proposal; the session table is replicated state and
travels in snapshots."""

from __future__ import annotations

from typing import Any

import pytest

from synod.check import KV, check_events
from synod.core import encode
from synod.core.errors import RemoteProtocolError
from synod.kv.simple import SimpleKV
from synod.raft import _sessions
from synod.raft._sessions import DUPLICATE, NEW, STALE, ClientSessions, as_client_command
from synod.raft.kv_sim import RaftKVAdapter
from synod.raft.node import RaftNode, RaftNodeConfig
from synod.sim import LinkModel, Network, Simulator, Uniform
from synod.workload import HistoryRecorder, KVClient, KVWorkload


def test_classify_new_duplicate_stale() -> None:
    s = ClientSessions()
    assert s.classify("c1", 1) == (NEW, None)
    s.record("c1", 1, b"r1", 10)
    assert s.classify("c1", 1) == (DUPLICATE, b"r1")
    assert s.classify("c1", 2) == (NEW, None)
    s.record("c1", 3, b"r3", 12)
    assert s.classify("c1", 2) == (STALE, None)
    assert s.classify("c2", 1) == (NEW, None), "sessions are per client"


def test_table_is_bounded_and_evicts_the_oldest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_sessions, "SESSIONS_MAX", 3)
    s = ClientSessions()
    for i, client in enumerate(["a", "b", "c", "d"]):
        s.record(client, 1, None, 100 + i)
    assert sorted(s.table) == ["b", "c", "d"], "a, whose last command is oldest in the log, went first"


def test_encode_round_trip_and_corrupt_input() -> None:
    s = ClientSessions()
    s.record("c2", 7, None, 3)
    s.record("c1", 4, b"x", 5)
    assert ClientSessions.decode(s.encode()).table == s.table
    with pytest.raises(RemoteProtocolError):
        ClientSessions.decode(encode([["c1", 4]]))


def test_node_snapshot_carries_sessions_and_reads_old_snapshots() -> None:
    node = RaftNode(RaftNodeConfig(), SimpleKV())
    node.sessions.record("c1", 9, encode("v"), 4)
    node.sm.apply(4, encode(["put", "k", "v"]))
    other = RaftNode(RaftNodeConfig(), SimpleKV())
    other._restore(node._snapshot())
    assert other.sessions.table == node.sessions.table
    assert other.sm.data == {"k": "v"}
    # A snapshot written before sessions existed is the machine's own bytes.
    legacy = RaftNode(RaftNodeConfig(), SimpleKV())
    legacy._restore(encode([["k", "old"]]))
    assert legacy.sm.data == {"k": "old"} and legacy.sessions.table == {}


def test_duplicated_messages_are_proposed_once_and_answered_truly() -> None:
    """Every message is delivered twice. A server proposes a request once
    (a copy of one waiting, or applied, is not refused: a refusal would tell
    the client "failed" while the first copy commits), so each (client,
    request id) is in the log once and the history is linearizable. (Before
    this, seeds 101 and 194 of the KV run with log reads were not.)"""
    sim = Simulator(11, network=Network(LinkModel(latency=Uniform(1.0, 5.0), duplicate_probability=1.0)))
    servers = ("s1", "s2", "s3")
    for sid in servers:
        sim.add_node(sid, lambda: RaftNode(RaftNodeConfig(), SimpleKV()), peers=servers)
    history = HistoryRecorder(lambda: sim.now_ms)
    workload = KVWorkload(keys=2, get_fraction=0.3, put_fraction=0.0, stop_ms=3_000.0)
    for i in range(3):
        sim.add_node(f"c{i + 1}", lambda i=i: KVClient(i, 3, servers, RaftKVAdapter("log"), workload, history),
                     peers=())
    sim.run(until_ms=5_000.0)
    leader = next(sim.hosts[s].node for s in servers if sim.hosts[s].node.raft.is_leader)
    seen: dict[tuple[str, int], int] = {}
    for e in leader.raft.log.entries:
        cc = as_client_command(e.data) if e.data is not None else None
        if cc is not None:
            seen[(cc.client, cc.request_id)] = seen.get((cc.client, cc.request_id), 0) + 1
    assert len(seen) > 100 and max(seen.values()) == 1
    assert history.counts()["ok"] > 100
    assert check_events(KV(), history.events).verdict == "ok"


def test_same_command_twice_in_the_log_applies_once() -> None:
    """However a command gets into the log twice (a retry to a new leader),
    the session applies it once and answers the copy with the first result."""
    sim = Simulator(5)
    sim.add_node("s1", lambda: RaftNode(RaftNodeConfig(), SimpleKV()), peers=("s1",))
    sim.run(until=lambda: sim.hosts["s1"].node.raft.is_leader, until_ms=5_000.0)
    node = sim.hosts["s1"].node
    append = encode(_sessions.ClientCommand(client="c1", request_id=1, command=encode(["append", "k", "x"])))
    for _ in range(2):
        node.start(append)
    node.start(encode(_sessions.ClientCommand(client="c1", request_id=2, command=encode(["append", "k", "y"]))))
    node._handle_ready(sim.hosts["s1"].ctx)
    sim.run(until_ms=sim.now_ms + 1_000.0)
    assert node.sm.data == {"k": "xy"}
    assert node.sessions.table["c1"][0] == 2


def test_a_duplicate_of_a_refused_copy_is_never_applied() -> None:
    """A server refuses a proposal ("not the leader": not applied), wins an
    election, and then the network delivers a duplicate of that same copy:
    it must be refused too, or the client's "fail" would be a lie (KV
    linearizability, seed 164 of 1000). A deliberate retry (a later
    attempt) is handled afresh."""
    from synod.raft.messages import Propose
    from synod.raft.sim import LabCluster

    c = LabCluster(3, seed=5)
    leader = c.check_one_leader()
    c.one(1, 3, True)
    follower = next(i for i in range(3) if i != leader)
    node, host = c.node(follower), c.sim.hosts[c.ids[follower]]
    command = encode(["put", "k", "v"])

    def propose(attempt: int) -> Any:
        ctx = host.ctx
        ctx.begin_request("client-1", 0)  # a plain message, delivered by hand
        node.on_message(ctx, "client-1", Propose(request_id=1, command=command, attempt=attempt))
        ctx.end_request()
        sends = ctx.effects.sends
        replies = [m for _, m, _ in sends if type(m).__name__ == "ProposeReply"]
        sends.clear()
        return replies[-1] if replies else None

    refused = propose(0)
    assert refused.ok is False and refused.error == "not the leader"
    c.crash1(leader)
    c.sim.run(until_ms=c.sim.now_ms + 5000, until=lambda: node.raft.is_leader)
    assert node.raft.is_leader
    duplicate = propose(0)
    assert duplicate is not None and duplicate.ok is False
    assert ("client-1", 1) not in node._waiting_at
    assert propose(1) is None  # a retry is proposed: answered when it commits
    assert ("client-1", 1) in node._waiting_at
