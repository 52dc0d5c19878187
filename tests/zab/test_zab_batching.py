"""What Zab holds for ``flush()`` (zab.py's module docstring, phase 3): the
proposals, forwarded requests, Acks and Commits of one turn of a server's
loop travel as one packet per session, in the session's order, and a
batch no correct leader sends is refused whole (the session ends, nothing
of it logged)."""

from __future__ import annotations

from typing import Any

import pytest

from synod.zab.messages import Ack, Commit, Packet, Proposal, Request, Snap, Txn
from synod.zab.zab import LEADING, PACKET_BYTES_MAX, TXNS_PER_PACKET_MAX, Zab, ZabConfig, _batches
from synod.zab.zxid import make_zxid

VOTERS = ("z1", "z2", "z3")


class _Rng:
    def __init__(self, seed: int) -> None:
        self.n = seed

    def getrandbits(self, k: int) -> int:
        self.n += 1
        return (self.n * 2654435761) % (1 << k)


def _deliver(zabs: dict[str, Zab], out: list[tuple[str, str, Any]]) -> list[tuple[str, str, Any]]:
    """Deliver ``out`` (src, dst, msg); then flush every server, as ZabNode
    does at the end of a turn. Returns what they said meanwhile."""
    for src, dst, msg in out:
        zabs[dst].step(src, msg)
    for z in zabs.values():
        z.flush()
    return _said(zabs)


def _said(zabs: dict[str, Zab]) -> list[tuple[str, str, Any]]:
    return [(sid, dst, msg) for sid, z in zabs.items() for dst, msg in z.ready().messages]


def _established() -> tuple[dict[str, Zab], Zab]:
    zabs = {sid: Zab(ZabConfig(server_id=sid, voters=VOTERS), _Rng(i)) for i, sid in enumerate(VOTERS)}
    out = _said(zabs)
    for _ in range(200):
        for z in zabs.values():
            z.tick()
        out = _deliver(zabs, out + _said(zabs))
        leaders = [z for z in zabs.values() if z.role == LEADING and z.established]
        if leaders and all(z.phase == "broadcast" for z in zabs.values() if z.role != LEADING):
            while out:   # quiet: every packet said so far delivered (no tick, so no new Ping)
                out = _deliver(zabs, out)
            return zabs, leaders[0]
    raise AssertionError("no leader established in 200 ticks")


def _bodies(out: list[tuple[str, str, Any]], src: str, dst: str) -> list[Any]:
    return [msg.body for s, d, msg in out if s == src and d == dst and type(msg) is Packet]


def test_one_turn_of_proposals_is_one_packet_acked_once_and_committed_once() -> None:
    zabs, leader = _established()
    lid = leader.config.server_id
    followers = [sid for sid in VOTERS if sid != lid]
    zxids = [leader.propose(f"t{i}".encode()) for i in range(3)]
    assert leader.flush_due
    assert not any(type(b) is Proposal for _, _, m in _said(zabs) if type(m) is Packet for b in [m.body])
    leader.flush()
    out = _said(zabs)
    for f in followers:
        bodies = _bodies(out, lid, f)
        assert [type(b) for b in bodies] == [Proposal]
        assert [t.zxid for t in bodies[0].txns] == zxids
    # Each follower logs the three and acks once, cumulatively.
    for src, dst, msg in out:
        zabs[dst].step(src, msg)
    for f in followers:
        assert zabs[f].last_zxid == zxids[-1]
        assert not any(type(m.body) is Ack for _, m in zabs[f].ready().messages)   # held for the flush
    acks = []
    for f in followers:
        zabs[f].flush()
        acks += [(f, dst, m) for dst, m in zabs[f].ready().messages]
    assert [m.body for _, _, m in acks] == [Ack(zxid=zxids[-1])] * 2
    # The leader commits all three and tells each follower once.
    for src, _dst, msg in acks:
        leader.step(src, msg)
    assert leader.commit_zxid == zxids[-1]
    assert [t.zxid for t in leader.ready().committed] == zxids
    leader.flush()
    out = _said(zabs)
    for f in followers:
        assert _bodies(out, lid, f) == [Commit(zxid=zxids[-1])]
    _deliver(zabs, out)
    for f in followers:
        assert zabs[f].delivered_zxid == zxids[-1]


def test_a_flush_sends_proposals_before_the_commit_that_covers_them() -> None:
    zabs, leader = _established()
    lid = leader.config.server_id
    followers = [sid for sid in VOTERS if sid != lid]
    first = leader.propose(b"a")
    leader.flush()
    acks = _deliver({f: zabs[f] for f in followers} | {lid: leader}, _said(zabs))   # logged and acked
    for src, _dst, msg in acks:
        leader.step(src, msg)            # a quorum acked: committed, its Commit held
    assert leader.commit_zxid == first and leader.commit_due
    second = leader.propose(b"b")        # held too
    leader.flush()
    out = _said(zabs)
    for f in followers:
        assert _bodies(out, lid, f) == [Proposal(txns=(Txn(zxid=second, data=b"b"),)), Commit(zxid=first)]


def test_requests_forwarded_in_one_turn_reach_the_leader_in_one_packet_in_order() -> None:
    zabs, leader = _established()
    lid = leader.config.server_id
    follower = next(zabs[sid] for sid in VOTERS if sid != lid)
    assert follower.forward(b"r1") and follower.forward(b"r2") and follower.forward(b"r3")
    assert follower.ready().messages == []
    follower.flush()
    out = [(follower.config.server_id, dst, m) for dst, m in follower.ready().messages]
    assert [m.body for _, _, m in out] == [Request(requests=(b"r1", b"r2", b"r3"))]
    for src, _dst, msg in out:
        leader.step(src, msg)
    assert leader.ready().requests == [(follower.config.server_id, d) for d in (b"r1", b"r2", b"r3")]


@pytest.mark.parametrize("txns", [
    "out_of_order", "another_epoch", "empty", "repeated",
])
def test_a_proposal_no_correct_leader_sends_is_refused_whole(txns: str) -> None:
    zabs, leader = _established()
    lid = leader.config.server_id
    fid = next(sid for sid in VOTERS if sid != lid)
    follower = zabs[fid]
    epoch, last = follower.current_epoch, follower.last_zxid
    counter = last & 0xFFFFFFFF
    bad = {
        "out_of_order": (Txn(zxid=make_zxid(epoch, counter + 2), data=b"x"), Txn(zxid=make_zxid(epoch, counter + 1),
                                                                                  data=b"y")),
        "another_epoch": (Txn(zxid=make_zxid(epoch, counter + 1), data=b"x"),
                          Txn(zxid=make_zxid(epoch + 1, 1), data=b"y")),
        "empty": (),
        "repeated": (Txn(zxid=make_zxid(epoch, counter + 1), data=b"x"),) * 2,
    }[txns]
    s = follower.session
    assert s is not None
    packet = Packet(session=s.session, leader_session=s.leader_session, seq=s.recv_seq + 1, body=Proposal(txns=bad))
    log = list(follower.log)
    follower.step(lid, packet)
    # The session ends, as ZooKeeper closes the learner's socket, and none
    # of the batch was logged or acked.
    assert follower.log == log and follower.last_zxid == last
    rd = follower.ready()
    assert rd.entries == []
    assert any(kind == "session_protocol_error" for kind, _ in rd.events)
    assert follower.session is None and not follower.flush_due


def test_batches_are_cut_at_the_packet_limits() -> None:
    sizes = [1] * (TXNS_PER_PACKET_MAX + 3)
    runs = _batches(sizes, lambda n: n)
    assert [len(r) for r in runs] == [TXNS_PER_PACKET_MAX, 3]
    big = PACKET_BYTES_MAX // 2 + 1
    runs = _batches([big, big, big, 5, PACKET_BYTES_MAX * 2, 1], lambda n: n)
    assert runs == [(big,), (big,), (big, 5), (PACKET_BYTES_MAX * 2,), (1,)]
    assert _batches([], len) == []


def test_a_snapshot_over_one_packet_travels_in_parts_and_is_installed_whole() -> None:
    zabs, leader = _established()
    lid = leader.config.server_id
    zxid = leader.propose(b"t")
    leader.flush()
    out = _said(zabs)
    while out:
        out = _deliver(zabs, out)
    assert leader.delivered_zxid == zxid
    snapshot = bytes(range(256)) * (PACKET_BYTES_MAX * 5 // 2 // 256)   # two and a half packets
    leader.compact(zxid, snapshot)
    # A follower that lost its disk comes back: it is behind the leader's
    # snapshot, so the leader sends SNAP.
    fid = next(sid for sid in VOTERS if sid != lid)
    zabs[fid] = Zab(ZabConfig(server_id=fid, voters=VOTERS), _Rng(99))
    snaps: list[Snap] = []
    out = _said(zabs)
    for _ in range(200):
        snaps += [m.body for s, d, m in out if d == fid and type(m) is Packet and type(m.body) is Snap]
        if zabs[fid].phase == "broadcast":
            break
        for z in zabs.values():
            z.tick()
        out = _deliver(zabs, out + _said(zabs))
    assert zabs[fid].phase == "broadcast"
    assert [len(p.data) for p in snaps] == [PACKET_BYTES_MAX, PACKET_BYTES_MAX, len(snapshot) - 2 * PACKET_BYTES_MAX]
    assert [p.more for p in snaps] == [True, True, False]
    assert (zabs[fid].snapshot_zxid, zabs[fid].snapshot_data) == (zxid, snapshot)


def test_snap_parts_of_two_snapshots_are_refused() -> None:
    zabs, leader = _established()
    fid = next(sid for sid in VOTERS if sid != leader.config.server_id)
    follower = zabs[fid]
    s = follower.session
    assert s is not None
    follower.phase = "sync"   # as during a synchronization
    first = Packet(session=s.session, leader_session=s.leader_session, seq=s.recv_seq + 1,
                   body=Snap(zxid=5, data=b"a", more=True))
    other = Packet(session=s.session, leader_session=s.leader_session, seq=s.recv_seq + 2,
                   body=Snap(zxid=6, data=b"b"))
    follower.step(leader.config.server_id, first)
    follower.step(leader.config.server_id, other)
    rd = follower.ready()
    assert rd.snapshot is None and follower.snapshot_zxid != 6
    assert any(kind == "session_protocol_error" for kind, _ in rd.events)
