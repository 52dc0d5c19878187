"""ZabNode's durable state and its boundary (issue 12 section 1: "torn or
corrupt records detected by checksum"): a torn log tail is cut, a corrupt
record is reported, kept aside and never used, and the ensemble runs on; a
message no correct server sends is refused without changing anything."""

from __future__ import annotations

import io
import json
from collections.abc import Callable

import pytest

from synod.core import Context, decode, scan_records
from synod.core.errors import RemoteProtocolError
from synod.harness.zab import Acknowledgements, ChainMachine, ZabClient
from synod.sim import Simulator, Tracer
from synod.zab import ZabChecker, ZabNode, ZabNodeConfig
from synod.zab.messages import Packet, Ping, Txn
from synod.zab.node import LOG_PATH
from synod.zab.zab import LEADING, Zab, ZabConfig

VOTERS = ("z1", "z2", "z3")


def _ensemble(seed: int, checker: ZabChecker, trace: io.StringIO) -> Simulator:
    sim = Simulator(seed, tracer=Tracer(trace))
    states: dict[int, bytes] = {}
    conflicts: list[str] = []
    for sid in VOTERS:
        cfg = ZabNodeConfig(zab=ZabConfig(server_id=sid, voters=VOTERS), tick_ms=50.0)
        sim.add_node(sid, lambda cfg=cfg: ZabNode(cfg, lambda: ChainMachine(states, conflicts), observer=checker),
                     peers=VOTERS)
    record = Acknowledgements({})
    for cid in ("c1", "c2"):   # clients proposing one transaction after another
        sim.add_node(cid, lambda: ZabClient(VOTERS, record), peers=VOTERS)
    return sim


def _leader(sim: Simulator) -> str:
    return next(sid for sid in VOTERS if sim.hosts[sid].up and sim.hosts[sid].node.zab.role == LEADING
                and sim.hosts[sid].node.zab.established)


def _run(sim: Simulator, ms: float) -> None:
    sim.run(until_ms=sim.now_ms + ms)


def _warnings(trace: io.StringIO, node: str) -> list[dict]:
    return [e for e in map(json.loads, trace.getvalue().splitlines()) if e["kind"] == "warning" and e["node"] == node]


def _damage_a_follower_log(seed: int, damage: Callable[[bytes], bytes]) -> tuple[Simulator, ZabChecker, io.StringIO,
                                                                               str, bytes, bytes]:
    """An ensemble that ran a while; a follower crashed, its synced log
    replaced by ``damage(log)``, restarted. Returns the simulator, the
    checker, the trace, the follower, its log before and after the damage."""
    checker = ZabChecker()
    trace = io.StringIO()
    sim = _ensemble(seed, checker, trace)
    _run(sim, 1_500)
    victim = next(s for s in VOTERS if s != _leader(sim))
    sim.crash(victim)
    disk = sim.hosts[victim].disk
    good = disk._durable[LOG_PATH]
    bad = damage(good)
    disk._durable[LOG_PATH] = disk._files[LOG_PATH] = bad
    sim.restart(victim)
    return sim, checker, trace, victim, good, bad


def _flip_a_middle_bit(log: bytes) -> bytes:
    out = bytearray(log)
    out[len(out) // 2] ^= 0x10                  # a bit of a synced record flips at rest
    return bytes(out)


def test_a_corrupt_log_record_is_reported_kept_aside_and_the_ensemble_runs_on() -> None:
    sim, checker, trace, victim, good, bad = _damage_a_follower_log(5, _flip_a_middle_bit)
    _run(sim, 3_000)
    warnings = _warnings(trace, victim)
    assert any("corrupt" in w["message"] and w.get("path") == LOG_PATH for w in warnings), warnings
    disk = sim.hosts[victim].disk
    kept = disk.list(LOG_PATH + ".corrupt-")
    assert kept and disk.read(kept[0]) == bad     # the damaged file, byte for byte
    assert scan_records(disk.read(LOG_PATH)).error is None
    assert checker.violations() == []
    last_before = decode(scan_records(good).records[-1], Txn).zxid
    latest = [inc for inc in checker.incarnations if inc.node_id == victim][-1]
    assert latest.delivered and latest.delivered[-1][0] > last_before   # it caught up from the leader and went on


def test_a_torn_log_tail_is_cut_without_losing_the_records_before_it() -> None:
    sim, checker, trace, victim, good, _ = _damage_a_follower_log(6, lambda log: log + log[:7])  # half a header
    sim.run(until_ms=sim.now_ms + 200)
    assert any("torn" in w["message"] for w in _warnings(trace, victim))
    kept = [decode(r, Txn).zxid for r in scan_records(sim.hosts[victim].disk.read(LOG_PATH)).records]
    assert kept[: len(scan_records(good).records)] == [decode(r, Txn).zxid for r in scan_records(good).records]
    _run(sim, 2_000)
    assert checker.violations() == []


def test_a_message_no_correct_server_sends_is_refused_and_changes_nothing() -> None:
    class _Rng:
        def getrandbits(self, k: int) -> int:
            return 12345

    zab = Zab(ZabConfig(server_id="z1", voters=VOTERS), _Rng())
    zab.ready()
    before = (zab.role, zab.election_epoch, zab.vote, dict(zab.votes))
    with pytest.raises(RemoteProtocolError):
        zab.step("intruder", Packet(session=1, leader_session=0, seq=1, body=Ping()))
    with pytest.raises(RemoteProtocolError):
        zab.step("z2", Ping())
    assert (zab.role, zab.election_epoch, zab.vote, dict(zab.votes)) == before
    assert zab.ready().empty


class _Forwarder(ZabNode):
    """Forwards one queued request each tick as a learner (Zab.forward) and
    records, on the leader, what learners forwarded."""

    def __init__(self, cfg: ZabNodeConfig, queue: list[bytes], taken: list[tuple[str, bytes]]) -> None:
        super().__init__(cfg, lambda: ChainMachine({}, []))
        self.queue = queue
        self.taken = taken

    def on_timer(self, ctx: Context, name: str) -> None:
        super().on_timer(ctx, name)
        if self.queue and self.zab is not None and self.zab.role != LEADING and self.zab.forward(self.queue[0]):
            self.queue.pop(0)
            self._act(ctx)

    def forwarded(self, ctx: Context, origin: str, data: bytes) -> None:
        self.taken.append((origin, data))


def test_a_learners_requests_are_taken_in_order_or_not_at_all() -> None:
    """ZooKeeper's learners send REQUEST packets on their one connection to
    the leader (Zab.forward puts them in the learner's session): a request
    lost in the network breaks the session, so no later request of it is
    taken (a session's writes cannot pass a lost one); once the learner is
    synchronized again, its requests are taken again."""
    sim = Simulator(3)
    queues: dict[str, list[bytes]] = {sid: [] for sid in VOTERS}
    taken: list[tuple[str, bytes]] = []
    for sid in VOTERS:
        cfg = ZabNodeConfig(zab=ZabConfig(server_id=sid, voters=VOTERS), tick_ms=50.0)
        sim.add_node(sid, lambda cfg=cfg, sid=sid: _Forwarder(cfg, queues[sid], taken), peers=VOTERS)
    sim.run(until=lambda: _established(sim), until_ms=10_000)
    leader = _leader(sim)
    follower = next(s for s in VOTERS if s != leader)
    queues[follower].append(b"r1")
    sim.run(until=lambda: bool(taken), until_ms=sim.now_ms + 2_000)
    assert taken == [(follower, b"r1")]
    sim.network.block(follower, leader)
    queues[follower].append(b"r2")
    sim.run(until=lambda: not queues[follower], until_ms=sim.now_ms + 2_000)   # sent, and lost
    sim.network.unblock(follower, leader)
    queues[follower].append(b"r3")
    sim.run(until=lambda: not queues[follower], until_ms=sim.now_ms + 2_000)
    _run(sim, 1_000)
    assert taken == [(follower, b"r1")]   # r3 came after a lost r2: not taken
    sim.run(until=lambda: _established(sim) and sim.hosts[follower].node.zab.phase == "broadcast",
            until_ms=sim.now_ms + 10_000)
    queues[follower].append(b"r4")
    sim.run(until=lambda: len(taken) > 1, until_ms=sim.now_ms + 5_000)
    assert taken[1:] == [(follower, b"r4")]


def _established(sim: Simulator) -> bool:
    return any(sim.hosts[s].up and sim.hosts[s].node.zab is not None and sim.hosts[s].node.zab.role == LEADING
               and sim.hosts[s].node.zab.established for s in VOTERS)


def test_a_snapshot_is_taken_after_so_many_bytes_of_transactions_whatever_their_count() -> None:
    """``snapshot_interval_bytes`` bounds Zab's in-memory log for large
    transactions: with a transaction count far away, servers snapshot and
    compact once that many bytes were delivered; without it they do not."""
    for every_bytes, expect in ((256, True), (0, False)):
        sim = Simulator(4)
        record = Acknowledgements({})
        for sid in VOTERS:
            cfg = ZabNodeConfig(zab=ZabConfig(server_id=sid, voters=VOTERS), tick_ms=50.0,
                                snapshot_interval_txns=1_000_000, snapshot_interval_bytes=every_bytes)
            sim.add_node(sid, lambda cfg=cfg: ZabNode(cfg, lambda: ChainMachine({}, [])), peers=VOTERS)
        sim.add_node("c1", lambda record=record: ZabClient(VOTERS, record), peers=VOTERS)
        _run(sim, 3_000)
        delivered = [sim.hosts[s].node.zab.delivered_zxid for s in VOTERS]
        assert max(delivered) > 0
        snapshotted = [sim.hosts[s].node.zab.snapshot_zxid > 0 for s in VOTERS]
        assert any(snapshotted) == expect, (every_bytes, snapshotted, delivered)
