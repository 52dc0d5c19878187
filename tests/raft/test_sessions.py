"""Client sessions (thesis 6.3): a command is applied once even when the
network duplicates the proposal; the session table is replicated state and
travels in snapshots."""

from __future__ import annotations

import pytest

from synod.check import KV, check_events
from synod.core import decode, encode
from synod.core.errors import RemoteProtocolError
from synod.raft import _sessions
from synod.raft._sessions import DUPLICATE, NEW, STALE, ClientSessions, as_client_command
from synod.raft.kv_sim import RaftKVAdapter
from synod.raft.node import KVStateMachine, RaftNode, RaftNodeConfig
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
    node = RaftNode(RaftNodeConfig(), KVStateMachine())
    node.sessions.record("c1", 9, encode("v"), 4)
    node.sm.apply(4, encode(["put", "k", "v"]))
    other = RaftNode(RaftNodeConfig(), KVStateMachine())
    other._restore(node._snapshot())
    assert other.sessions.table == node.sessions.table
    assert other.sm.data == {"k": "v"}
    # A snapshot written before sessions existed is the machine's own bytes.
    legacy = RaftNode(RaftNodeConfig(), KVStateMachine())
    legacy._restore(encode([["k", "old"]]))
    assert legacy.sm.data == {"k": "old"} and legacy.sessions.table == {}


def test_duplicated_proposals_apply_once() -> None:
    """Every message may be delivered twice. Duplicate proposals reach the
    log, yet the appends in the history are each applied once: the history
    is linearizable. (Without sessions seed 2 of the KV chaos run read an
    append twice.)"""
    sim = Simulator(11, network=Network(LinkModel(latency=Uniform(1.0, 5.0), duplicate_probability=0.5)))
    servers = ("s1", "s2", "s3")
    for sid in servers:
        sim.add_node(sid, lambda: RaftNode(RaftNodeConfig(), KVStateMachine()), peers=servers)
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
        if cc is not None and decode(cc.command)[0] == "append":
            seen[(cc.client, cc.request_id)] = seen.get((cc.client, cc.request_id), 0) + 1
    assert any(n > 1 for n in seen.values()), "no proposal was duplicated into the log: the test tests nothing"
    assert history.counts()["ok"] > 100
    result = check_events(KV(), history.events)
    assert result.verdict == "ok", result.verdict
