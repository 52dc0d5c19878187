"""The database behind the look-aside cache (Nishtala et al. 4.1: the
commit log mcsqueal tails): an acknowledged write survives a crash; a
corrupt commit log record is detected by its checksum, reported, kept
aside, and never used; a torn tail is cut."""

from __future__ import annotations

from typing import Any

from synod.core import Context, Node, decode
from synod.core.records import scan_records
from synod.memcache.database import COMMIT_LOG_PATH, DAMAGED_DIR, DatabaseNode
from synod.memcache.messages import CommitLogBatch, CommitRecord, DbCommitted, DbRead, DbRow, DbWrite, TailCommitLog
from synod.sim import Simulator

DEADLINE_MS = 10_000.0


class Writer(Node):
    """Writes ``k<i> = v<i>`` for i in 1..n, one at a time, and records each acknowledgement."""

    def __init__(self, n: int, acked: list[int]) -> None:
        self.n, self.acked = n, acked

    async def on_start(self, ctx: Context) -> None:
        for i in range(1, self.n + 1):
            done = await ctx.call("db", DbWrite(key=b"k%d" % i, value=b"v%d" % i), 1000.0)
            assert type(done) is DbCommitted
            self.acked.append(done.version)


class Asker(Node):
    """Sends whatever ``ask`` holds to the database when poked, and keeps the replies."""

    def __init__(self, replies: list[Any]) -> None:
        self.replies = replies

    async def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        self.replies.append(await ctx.call("db", msg, 1000.0))


def _sim(seed: int, writes: int) -> tuple[Simulator, list[int], list[Any]]:
    sim = Simulator(seed)
    sim.add_node("db", DatabaseNode, peers=("db",))
    acked: list[int] = []
    replies: list[Any] = []
    sim.add_node("writer", lambda: Writer(writes, acked), peers=("db",))
    sim.add_node("asker", lambda: Asker(replies), peers=("db",))
    return sim, acked, replies


def _restart_over(sim: Simulator, log: bytes) -> tuple[DatabaseNode, list[dict[str, Any]]]:
    """Put ``log`` on the crashed database's disk as its synced commit log,
    restart it, and return the new node and every ``ctx.warn`` it made."""
    host = sim.hosts["db"]
    host.disk.write(COMMIT_LOG_PATH, log)
    host.disk.make_durable()
    warnings: list[dict[str, Any]] = []
    original = host.warn
    host.warn = lambda message, fields: (warnings.append({"message": message, **fields}), original(message, fields))
    sim.restart("db")
    sim.run(until_ms=sim.now_ms + 1.0)
    assert isinstance(host.node, DatabaseNode)
    return host.node, warnings


def _ask(sim: Simulator, replies: list[Any], msg: Any) -> Any:
    n = len(replies)
    sim.hosts["asker"].invoke(lambda ctx: ctx.send("asker", msg))
    sim.run(until_ms=sim.now_ms + DEADLINE_MS, until=lambda: len(replies) > n)
    assert len(replies) > n, "no reply from the database"
    return replies[-1]


def test_an_acknowledged_write_survives_a_crash() -> None:
    """A write is acknowledged after its record is synced: crash the
    database right after the last acknowledgement, restart it, and every
    acknowledged write is there, with its version (the commit log seq)."""
    sim, acked, replies = _sim(1, 20)
    sim.run(until_ms=DEADLINE_MS, until=lambda: len(acked) == 20)
    assert acked == list(range(1, 21))
    sim.crash("db")
    sim.restart("db")
    sim.run(until_ms=sim.now_ms + 1.0)
    db = sim.hosts["db"].node
    assert isinstance(db, DatabaseNode)
    assert db.last_seq == 20
    for i in range(1, 21):
        assert db.table[b"k%d" % i] == (b"v%d" % i, i)
    assert _ask(sim, replies, DbRead(key=b"k7")) == DbRow(key=b"k7", value=b"v7", version=7)
    assert _ask(sim, replies, DbRead(key=b"nope")) == DbRow(key=b"nope", value=None, version=0)


def test_tail_reads_the_commit_log_from_an_offset() -> None:
    """mcsqueal's read: records from ``from_seq`` on, at most ``records_max``."""
    sim, acked, replies = _sim(2, 10)
    sim.run(until_ms=DEADLINE_MS, until=lambda: len(acked) == 10)
    batch = _ask(sim, replies, TailCommitLog(from_seq=4, records_max=3))
    assert isinstance(batch, CommitLogBatch)
    assert [r.seq for r in batch.records] == [4, 5, 6]
    assert batch.last_seq == 10
    assert _ask(sim, replies, TailCommitLog(from_seq=11, records_max=3)).records == ()


def test_a_corrupt_record_is_detected_kept_aside_and_not_used() -> None:
    """Flip a bit inside the payload of record 5 on disk: on restart the
    checksum catches it, a warning names it, the damaged file is kept
    aside, record 5's write is not served (k5 has no row), and the records
    after it are kept; the rewritten log scans clean."""
    sim, acked, replies = _sim(3, 10)
    sim.run(until_ms=DEADLINE_MS, until=lambda: len(acked) == 10)
    sim.crash("db")
    disk = sim.hosts["db"].disk
    raw = bytearray(disk.read(COMMIT_LOG_PATH) or b"")
    offsets = []
    pos = 0
    for _ in range(10):
        offsets.append(pos)
        length = int.from_bytes(raw[pos:pos + 4], "big")
        pos += 12 + length
    raw[offsets[4] + 12 + 3] ^= 0x10
    db, warnings = _restart_over(sim, bytes(raw))
    assert len(warnings) == 1, warnings
    assert "corrupt" in warnings[0]["message"]
    assert warnings[0]["lost_seqs"] == "5..5"
    assert disk.list(DAMAGED_DIR) == [DAMAGED_DIR + "commit_log.1"]
    assert disk.read(DAMAGED_DIR + "commit_log.1") == bytes(raw)
    assert b"k5" not in db.table
    assert db.table[b"k6"] == (b"v6", 6)
    assert db.last_seq == 10
    scan = scan_records(disk.read(COMMIT_LOG_PATH) or b"")
    assert scan.error is None
    assert [decode(p, CommitRecord).seq for p in scan.records] == [1, 2, 3, 4, 6, 7, 8, 9, 10]
    # The next write continues after the last seq, never reusing 5.
    assert _ask(sim, replies, DbWrite(key=b"k5", value=b"again")) == DbCommitted(key=b"k5", version=11)


def test_a_torn_tail_is_cut_without_a_warning() -> None:
    """A crash during the last append leaves a prefix of it: cut, traced, not warned."""
    sim, acked, replies = _sim(4, 3)
    sim.run(until_ms=DEADLINE_MS, until=lambda: len(acked) == 3)
    sim.crash("db")
    disk = sim.hosts["db"].disk
    raw = disk.read(COMMIT_LOG_PATH) or b""
    db, warnings = _restart_over(sim, raw[:-4])
    assert warnings == []
    assert db.last_seq == 2
    assert sorted(db.table) == [b"k1", b"k2"]
    assert disk.list(DAMAGED_DIR) == []


def _rec(seq: int) -> CommitRecord:
    return CommitRecord(seq=seq, key=b"k", value=b"v%d" % seq, commit_unix_ms=0)


def test_out_of_order_shipments_and_tails_are_refused_not_asserted() -> None:
    """Peer input is validated at the boundary: a replica refuses shipped
    records that are not the seqs after its own in order, and mcsqueal a
    tail whose seqs go backwards; neither changes state."""
    from tests._fuzzhost import FuzzHost

    from synod.memcache.mcsqueal import McsquealNode

    replica = DatabaseNode(master="m")
    host = FuzzHost(replica, "r", ("m", "r"))
    for records in ((_rec(2), _rec(1)), (_rec(1), _rec(3)), (_rec(2),)):
        assert host.feed("m", CommitLogBatch(from_seq=1, records=records, last_seq=3)) is False, records
    assert (replica.last_seq, replica.table) == (0, {})
    assert host.feed("m", CommitLogBatch(from_seq=1, records=(_rec(1), _rec(2)), last_seq=2)) is True
    assert replica.last_seq == 2

    squeal = McsquealNode(database="db", endpoints=("c1",))
    sq_host = FuzzHost(squeal, "sq", ("db", "c1", "sq"))
    for records in ((_rec(3), _rec(2)), (_rec(0),)):
        assert sq_host.feed("db", CommitLogBatch(from_seq=1, records=records, last_seq=3)) is False, records
    assert squeal.batch_seq == 0
