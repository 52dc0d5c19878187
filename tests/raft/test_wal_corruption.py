"""Protocol-aware recovery (Alagappan et al., "Protocol-Aware Recovery for
Consensus-Based Storage", FAST 2018) of a Raft server whose disk corrupted
synced records: the damage is told from a torn tail, kept aside, and the
server neither votes nor campaigns as if it had never held the lost entries
until a leader has repaired its log. Without it (``unsafe_cut_corrupt_wal``)
acknowledged writes are lost; the first test shows both."""

from __future__ import annotations

from typing import Any

import pytest

from synod.core import decode, encode, pack_record
from synod.core.errors import LocalProtocolError
from synod.raft._storage import (
    DAMAGED_DIR,
    HARDSTATE_COPY_PATH,
    HARDSTATE_PATH,
    REPAIR_INDEX_UNKNOWN,
    SNAPSHOT_PATH,
    WAL_PATH,
    RaftStorage,
    entry_record,
)
from synod.raft.messages import Entry
from synod.raft.node import RaftNodeConfig
from synod.raft.raft import LEADER
from synod.raft.sim import LabCluster
from synod.sim.disk import SimDisk

ACKED = 200


def _flip_at_rest(c: LabCluster, i: int, path: str, offset: int) -> None:
    disk = c.sim.hosts[c.ids[i]].disk
    data = bytearray(disk._durable[path])
    data[offset] ^= 0x10
    disk._durable[path] = bytes(data)
    disk._files[path] = bytes(data)


def _issue_scenario(seed: int, cfg: RaftNodeConfig) -> tuple[LabCluster, int, int, int]:
    """Issue 8's steps in the simulator: 3 servers; a follower down; ACKED
    acknowledged commands; everything down; one byte flipped in the middle of
    the other follower's WAL; that follower and the one that was down
    restart, the old leader stays down."""
    c = LabCluster(3, seed, node_config=cfg)
    leader = c.check_one_leader()
    other, down = [i for i in range(3) if i != leader]
    c.crash1(down)
    for k in range(ACKED):
        c.one(1000 + k, 2, retry=True)
    for i in (leader, other):
        c.crash1(i)
    wal = c.sim.hosts[c.ids[other]].disk._durable[WAL_PATH]
    _flip_at_rest(c, other, WAL_PATH, len(wal) // 2)
    for i in (other, down):
        c.sim.restart(c.ids[i])
        c.connect(i)
    return c, leader, other, down


def _applied_values(c: LabCluster, i: int) -> list[Any]:
    return [v for _, v in sorted(c.logs[i].items()) if isinstance(v, int)]


def test_a_corrupt_wal_record_loses_no_acknowledged_write() -> None:
    """The corrupt follower refuses to vote for the follower that missed the
    writes, and does not campaign itself: the cluster waits for the old
    leader (enough intact copies), which then repairs everyone."""
    c, leader, other, down = _issue_scenario(1, RaftNodeConfig())
    node = c.node(other)
    assert node.raft.repair_bound is not None
    bound_term, bound_index = node.raft.repair_bound
    assert bound_index >= ACKED, node.raft.repair_bound
    assert node.raft.log.last_index < ACKED  # it did lose entries
    disk = c.sim.hosts[c.ids[other]].disk
    kept = disk.list(DAMAGED_DIR)
    assert kept == [f"{DAMAGED_DIR}wal.1"]
    assert disk.read(kept[0]) == disk._durable[kept[0]]
    c.sleep(5_000)  # many election timeouts
    assert all(c.node(i).raft.role != LEADER for i in (other, down)), "a leader was elected without the writes"
    c.sim.restart(c.ids[leader])
    c.connect(leader)
    c.one(9999, 3, retry=True)
    expected = [1000 + k for k in range(ACKED)] + [9999]
    for i in range(3):
        assert _applied_values(c, i) == expected, c.ids[i]
    assert c.node(other).raft.repair_bound is None
    assert not c.checker.violations and not c.errors


def test_without_protocol_aware_recovery_acknowledged_writes_are_lost() -> None:
    """The same steps with the corrupt WAL cut like a torn tail: the
    follower that lost half the log is elected and the writes are gone."""
    c, leader, other, down = _issue_scenario(1, RaftNodeConfig(unsafe_cut_corrupt_wal=True))
    c.sim.run(until_ms=c.sim.now_ms + 5_000, until=lambda: bool(c.checker.violations))
    assert any("leader completeness" in v for v in c.checker.violations), c.checker.violations


# -- the storage layer alone ---------------------------------------------------------------


class _Ctx:
    """Just enough of a Context for RaftStorage: a SimDisk, warnings kept."""

    def __init__(self, disk: SimDisk) -> None:
        self.disk = disk
        self.warnings: list[tuple[str, dict[str, Any]]] = []
        self.traces: list[tuple[str, dict[str, Any]]] = []

    def warn(self, message: str, **fields: Any) -> None:
        self.warnings.append((message, fields))

    def trace(self, event: str, **fields: Any) -> None:
        self.traces.append((event, fields))


def _disk_with_log(n: int, term: int = 3) -> tuple[SimDisk, bytes]:
    import random

    disk = SimDisk(random.Random(0))
    wal = b"".join(entry_record(Entry(term=term, index=i, data=encode(i))) for i in range(1, n + 1))
    disk.write(WAL_PATH, wal)
    hard = pack_record(encode([term, "s1", n, 0, 0]))
    disk.write(HARDSTATE_PATH, hard)
    disk.write(HARDSTATE_COPY_PATH, hard)
    disk.make_durable()
    return disk, wal


def test_a_torn_tail_is_cut_without_a_repair_bound() -> None:
    disk, wal = _disk_with_log(10)
    disk.write(WAL_PATH, wal + entry_record(Entry(term=3, index=11, data=b"x"))[:9])
    ctx = _Ctx(disk)
    r = RaftStorage().recover(ctx)  # type: ignore[arg-type]
    assert [e.index for e in r.entries] == list(range(1, 11))
    assert (r.hard_state.repair_term, r.hard_state.repair_index) == (0, 0)
    assert r.hard_state.commit == 10
    assert ctx.warnings == [] and disk.list(DAMAGED_DIR) == []
    assert disk.read(WAL_PATH) == wal  # cut, so later appends are readable


@pytest.mark.parametrize("where", [0.1, 0.5, 0.99])
def test_corruption_keeps_the_file_aside_and_bounds_what_was_lost(where: float) -> None:
    disk, wal = _disk_with_log(40)
    bad = bytearray(wal)
    offset = int(len(wal) * where)
    bad[offset] ^= 0x01
    disk.write(WAL_PATH, bytes(bad))
    ctx = _Ctx(disk)
    r = RaftStorage().recover(ctx)  # type: ignore[arg-type]
    hs = r.hard_state
    assert hs.repair_term == 3 and hs.repair_index >= 40  # at or beyond the last entry held
    assert hs.repair_index <= 40 + 2  # resync past the damage keeps the bound tight
    assert hs.commit == 0  # kept entries are re-confirmed by a leader before they count
    assert len(r.entries) < 40
    assert disk.read(f"{DAMAGED_DIR}wal.1") == bytes(bad)
    [(message, fields)] = ctx.warnings
    assert "WAL corrupt" in message and fields["file"] == WAL_PATH
    assert fields["record_index"] == len(r.entries) and fields["offset"] <= offset
    # The bound is in both hard state copies before the WAL is rewritten.
    for path in (HARDSTATE_PATH, HARDSTATE_COPY_PATH):
        assert decode(disk.read(path)[12:])[3:] == [3, hs.repair_index]
    again = RaftStorage().recover(_Ctx(disk))  # type: ignore[arg-type]
    assert (again.hard_state.repair_term, again.hard_state.repair_index) == (3, hs.repair_index)


def test_one_corrupt_hard_state_copy_is_recovered_from_the_other() -> None:
    for bad_path, good_path in ((HARDSTATE_PATH, HARDSTATE_COPY_PATH), (HARDSTATE_COPY_PATH, HARDSTATE_PATH)):
        disk, _ = _disk_with_log(5)
        raw = bytearray(disk.read(bad_path))
        raw[-1] ^= 0x04
        disk.write(bad_path, bytes(raw))
        ctx = _Ctx(disk)
        r = RaftStorage().recover(ctx)  # type: ignore[arg-type]
        assert (r.hard_state.term, r.hard_state.vote) == (3, "s1")
        assert len(ctx.warnings) == 1 and ctx.warnings[0][1]["file"] == bad_path
        assert disk.read(bad_path) == disk.read(good_path)  # healed
        assert disk.list(DAMAGED_DIR)


def test_both_hard_state_copies_corrupt_refuses_to_start() -> None:
    disk, _ = _disk_with_log(5)
    for path in (HARDSTATE_PATH, HARDSTATE_COPY_PATH):
        raw = bytearray(disk.read(path))
        raw[-1] ^= 0x04
        disk.write(path, bytes(raw))
    ctx = _Ctx(disk)
    with pytest.raises(LocalProtocolError, match="vote twice"):
        RaftStorage().recover(ctx)  # type: ignore[arg-type]
    assert len(ctx.warnings) == 2


def test_a_corrupt_snapshot_empties_the_log_with_an_unknown_bound() -> None:
    disk, _ = _disk_with_log(0)
    disk.write(WAL_PATH, b"")
    snap = bytearray(pack_record(encode([50, 3, b"state", b""])))
    snap[-2] ^= 0x01
    disk.write(SNAPSHOT_PATH, bytes(snap))
    r = RaftStorage().recover(_Ctx(disk))  # type: ignore[arg-type]
    assert r.snapshot is None and r.entries == ()
    assert (r.hard_state.repair_term, r.hard_state.repair_index) == (3, REPAIR_INDEX_UNKNOWN)
    assert disk.list(DAMAGED_DIR) == [f"{DAMAGED_DIR}snapshot.1"]


def test_a_corrupt_snapshot_with_a_clean_wal_bounds_by_the_wal() -> None:
    disk, wal = _disk_with_log(0)
    disk.write(WAL_PATH, b"".join(entry_record(Entry(term=3, index=i, data=encode(i))) for i in range(51, 61)))
    snap = bytearray(pack_record(encode([50, 3, b"state", b""])))
    snap[-2] ^= 0x01
    disk.write(SNAPSHOT_PATH, bytes(snap))
    r = RaftStorage().recover(_Ctx(disk))  # type: ignore[arg-type]
    assert r.snapshot is None and r.entries == ()
    assert (r.hard_state.repair_term, r.hard_state.repair_index) == (3, 60)
    assert sorted(disk.list(DAMAGED_DIR)) == [f"{DAMAGED_DIR}snapshot.1", f"{DAMAGED_DIR}wal.1"]


@pytest.mark.parametrize("payload", [encode("not an entry"), encode([1, 2]), b"\xc1", encode([0, 1, None, False])])
def test_a_record_that_does_not_decode_is_corruption_not_a_crash(payload: bytes) -> None:
    disk, wal = _disk_with_log(3)
    disk.write(WAL_PATH, wal + pack_record(payload))
    ctx = _Ctx(disk)
    r = RaftStorage().recover(ctx)  # type: ignore[arg-type]
    assert [e.index for e in r.entries] == [1, 2, 3]
    assert r.hard_state.repair_index >= 3
    assert len(ctx.warnings) == 1
