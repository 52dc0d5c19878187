"""The database behind the look-aside cache (Nishtala et al., NSDI 2013,
sections 2 and 4.1: the storage layer whose commit log mcsqueal tails).

Theory of operation. A :class:`DatabaseNode` keeps a table ``key -> (value,
version)`` and a durable commit log. A :class:`~synod.memcache.messages.DbWrite`
appends one :class:`~synod.memcache.messages.CommitRecord` (checksummed with
:func:`synod.core.records.pack_record`) to ``db/commit_log``, asks for a sync,
applies it to the table and replies :class:`~synod.memcache.messages.DbCommitted`;
the runtime sends the reply only after the sync (DESIGN.md section 2), so an
acknowledged write survives a crash. The record's ``seq`` (1, 2, 3, ...)
is the row's ``version`` and the offset mcsqueal reads from
(:class:`~synod.memcache.messages.TailCommitLog`); log shipping reads the
same way.

Replica regions (section 5, "Across Regions: Consistency"). One region is the
master: its database takes the writes. A database built with ``master=<id>``
is a replica: it answers reads from its own table, refuses writes with
:class:`~synod.memcache.messages.DbNotMaster`, and is fed by *log shipping*:
it pulls the master's commit log from its own ``last_seq + 1`` every
``shipping_interval_ms`` (again at once while a pull comes back full), and
appends each record it did not have, unchanged (same ``seq``, so a row's
version is the same in every region), to its own durable commit log, synced
before the next pull. Records are applied in ``seq`` order and exactly once:
only records above ``last_seq`` are taken, from a batch that starts where
it asked. The replication lag is the shipping interval plus the network's
delay (and any partition or crash on the way); ``ship_lag_ms_max`` records
the worst seen (apply time minus the master's commit time). A replica's
own mcsqueal tails the replica's log, so its region's caches are
invalidated when the replicated write arrives there, as in the paper.

Recovery (``on_start``). The table is the replay of the commit log. A torn
tail (a crash during the last append: never synced, never acknowledged) is
cut. A corrupt record (a checksum mismatch in a record that is all there:
damage at rest) is reported with ``ctx.warn``, the damaged file is kept aside
under ``db/damaged/``, and the log is rebuilt from the good records before and
after it; the write it held is lost (a single database has no replica to
repair from) and the warning says which ``seq`` range.

Invariants: ``seq`` of the log's records strictly increase; the table holds
for each key the value of its record with the highest ``seq``;
``last_seq`` is the last record's ``seq`` (0: empty log); a replica's log
is a prefix of the master's (the records of a salvaged master aside).

Simplified: one table, no transactions; the commit log is also kept in
memory for tailing (a real one would read the file from an offset); a read
handled while a write's sync is still under way (a slow real disk) may see
that write.
"""

from __future__ import annotations

import bisect
from typing import Any

from synod.core import Context, Node, decode, encode, pack_record, resync, scan_records
from synod.core.clients import CopyFilter
from synod.core.errors import RemoteProtocolError
from synod.core.records import RecordScan
from synod.memcache import constants as C
from synod.memcache.messages import (
    CommitLogBatch,
    CommitRecord,
    DbCommitted,
    DbNotMaster,
    DbRead,
    DbRow,
    DbWrite,
    TailCommitLog,
)

__all__ = ["DatabaseNode", "COMMIT_LOG_PATH", "DAMAGED_DIR", "read_checked"]

COMMIT_LOG_PATH = "db/commit_log"
DAMAGED_DIR = "db/damaged/"
_SHIP = "ship"


class DatabaseNode(Node):
    """The database: a table and its commit log (see the module docstring).

    Args:
        master: None for the master region's database; else the master's
            node id, and this database is a replica fed by log shipping.
        shipping_interval_ms: a replica's pull interval once caught up
            (virtual or real ms).

    Requests (calls): :class:`DbRead` -> :class:`DbRow`; :class:`DbWrite` ->
    :class:`DbCommitted` (after the sync; a replica: :class:`DbNotMaster`);
    :class:`TailCommitLog` -> :class:`CommitLogBatch` (mcsqueal's and the
    replicas' pulls). Anything else is ignored with a trace event.

    Attributes (read by checkers): ``table`` key -> (value, version);
    ``commit_log`` the records in ``seq`` order; ``last_seq``; ``reads`` key ->
    number of DbRead served since the start of this incarnation; a
    replica's ``shipped`` (records applied from the master, this
    incarnation) and ``ship_lag_ms_max``.
    """

    def __init__(self, *, master: str | None = None,
                 shipping_interval_ms: float = C.LOG_SHIPPING_INTERVAL_MS) -> None:
        assert shipping_interval_ms > 0, shipping_interval_ms
        self.master, self.shipping_interval_ms = master, shipping_interval_ms
        self.table: dict[bytes, tuple[bytes, int]] = {}
        self.commit_log: list[CommitRecord] = []
        # Invariant: last_seq == commit_log[-1].seq, or 0 when the log is empty.
        self.last_seq = 0
        self.reads: dict[bytes, int] = {}
        self.shipped = 0
        self.ship_lag_ms_max = 0.0
        self._copies = CopyFilter(C.DB_REQUESTS_REMEMBERED_MAX)  # a write delivered twice commits once

    def on_start(self, ctx: Context) -> None:
        self.recover(ctx)
        if self.master is not None:
            self._pull(ctx)

    def on_timer(self, ctx: Context, name: str) -> None:
        if name == _SHIP:
            self._pull(ctx)

    # -- requests --------------------------------------------------------------------
    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        t = type(msg)
        if t is DbRead:
            self.reads[msg.key] = self.reads.get(msg.key, 0) + 1
            row = self.table.get(msg.key)
            ctx.reply(DbRow(key=msg.key, value=None if row is None else row[0], version=0 if row is None else row[1]))
        elif t is DbWrite and self.master is not None:
            ctx.reply(DbNotMaster(key=msg.key, master=self.master))
        elif t is DbWrite:
            if self._copies.is_copy(ctx.reply_handle()):
                ctx.trace("ignore_write", src=src, reason="duplicate delivery")
                return
            rec = self.commit(ctx, msg.key, msg.value, msg.remote_marker)
            ctx.reply(DbCommitted(key=msg.key, version=rec.seq))
        elif t is TailCommitLog:
            ctx.reply(self.tail(msg.from_seq, msg.records_max))
        elif t is CommitLogBatch and self.master is not None and src == self.master:
            self._shipped(ctx, msg)
        else:
            ctx.trace("ignore_message", type=t.__name__, reason="not a database request")

    def commit(self, ctx: Context, key: bytes, value: bytes, remote_marker: bytes = b"") -> CommitRecord:
        """Append the write as the next commit log record, ask for a sync
        (the reply waits for it) and apply it to the table (the master only)."""
        assert self.master is None, "a replica takes no writes"
        rec = CommitRecord(seq=self.last_seq + 1, key=key, value=value, commit_unix_ms=int(ctx.unix_ms),
                           remote_marker=remote_marker)
        ctx.disk.append(COMMIT_LOG_PATH, pack_record(encode(rec)))
        ctx.disk.sync()
        self._apply(rec)
        return rec

    # -- log shipping (a replica region's database, section 5) -------------------------
    def _pull(self, ctx: Context) -> None:
        """Ask the master for the records after ``last_seq``; ask again
        after the shipping interval whatever happens (a lost pull or reply
        costs one interval)."""
        ctx.send(self.master, TailCommitLog(from_seq=self.last_seq + 1, records_max=C.LOG_SHIPPING_RECORDS_MAX))
        ctx.set_timer(_SHIP, self.shipping_interval_ms)

    def _shipped(self, ctx: Context, msg: CommitLogBatch) -> None:
        """Append the records above ``last_seq``, in order, once each; sync
        before the next pull (effects order: the sync precedes the send)."""
        if msg.from_seq != self.last_seq + 1:
            ctx.trace("ignore_shipped", from_seq=msg.from_seq, last_seq=self.last_seq,
                      reason="not the pull in flight (late or duplicated)")
            return
        fresh = [r for r in msg.records if r.seq > self.last_seq]
        if not fresh:
            return
        if any(r.seq != self.last_seq + 1 + i for i, r in enumerate(fresh)):
            raise RemoteProtocolError(f"shipped records are not the seqs after {self.last_seq} in order: "
                                      f"{[r.seq for r in fresh[:5]]}")
        ctx.disk.append(COMMIT_LOG_PATH, b"".join(pack_record(encode(r)) for r in fresh))
        ctx.disk.sync()
        for rec in fresh:
            self._apply(rec)
            self.ship_lag_ms_max = max(self.ship_lag_ms_max, ctx.unix_ms - rec.commit_unix_ms)
        self.shipped += len(fresh)
        ctx.trace("log_shipped", first_seq=fresh[0].seq, last_seq=self.last_seq, master_last_seq=msg.last_seq)
        if msg.last_seq > self.last_seq:
            self._pull(ctx)  # behind by more than one pull: at once

    def tail(self, from_seq: int, records_max: int) -> CommitLogBatch:
        """The records with ``seq >= from_seq``, at most ``records_max``
        (bounded by ``COMMIT_LOG_TAIL_RECORDS_MAX``; at least 1)."""
        n = max(1, min(records_max, C.COMMIT_LOG_TAIL_RECORDS_MAX))
        i = bisect.bisect_left(self.commit_log, from_seq, key=lambda r: r.seq)
        return CommitLogBatch(from_seq=from_seq, records=tuple(self.commit_log[i:i + n]), last_seq=self.last_seq)

    def _apply(self, rec: CommitRecord) -> None:
        # Callers pass records in seq order: commit makes the next seq,
        # recovery and shipping validate the order first.
        assert rec.seq > self.last_seq, (rec.seq, self.last_seq)
        self.commit_log.append(rec)
        self.last_seq = rec.seq
        self.table[rec.key] = (rec.value, rec.seq)

    # -- recovery --------------------------------------------------------------------
    def recover(self, ctx: Context) -> None:
        """Rebuild the table from ``db/commit_log`` (see the module docstring):
        cut a torn tail; keep a corrupt file aside, warn, and keep the good
        records before and after the damage."""
        raw, scan = self._read(ctx)
        records, damage = _decode_all(scan.records)
        good = list(records)
        if damage is None and scan.error is None:
            for rec in good:
                self._apply(rec)
            return
        if damage is not None or scan.corrupt:
            good, lost = _salvage(raw, scan, records, damage)
            n = len(ctx.disk.list(DAMAGED_DIR + "commit_log.")) + 1
            ctx.disk.write(f"{DAMAGED_DIR}commit_log.{n}", raw)
            ctx.warn("memcache database: commit log corrupt; the damaged file is kept aside",
                     file=COMMIT_LOG_PATH, kept_aside=f"{DAMAGED_DIR}commit_log.{n}", offset=scan.valid_bytes,
                     error=damage or scan.error, kept_records=len(good), lost_seqs=lost)
        else:
            ctx.trace("commit_log_torn_tail", error=scan.error, kept_bytes=scan.valid_bytes)
        for rec in good:
            self._apply(rec)
        ctx.disk.write(COMMIT_LOG_PATH, b"".join(pack_record(encode(r)) for r in good))
        ctx.disk.sync()

    def _read(self, ctx: Context) -> tuple[bytes, RecordScan]:
        return read_checked(ctx, COMMIT_LOG_PATH)


def read_checked(ctx: Context, path: str) -> tuple[bytes, RecordScan]:
    """The file's bytes (empty if absent) and their record scan; while a
    checksum fails it is read again, up to ``DB_READ_ATTEMPTS_MAX`` reads,
    and the read with the longest good prefix wins (the simulator's read
    faults are transient; damage at rest is not)."""
    data = ctx.disk.read(path) or b""
    scan = scan_records(data)
    attempts = 1
    while scan.error is not None and attempts < C.DB_READ_ATTEMPTS_MAX:
        attempts += 1
        again = ctx.disk.read(path) or b""
        rescan = scan_records(again)
        if rescan.valid_bytes > scan.valid_bytes or rescan.error is None:
            data, scan = again, rescan
    return data, scan


def _decode_all(payloads: list[bytes]) -> tuple[list[CommitRecord], str | None]:
    """The records of the good prefix, stopping at one that does not decode
    or breaks the seq order (its checksum matched: a bug, or a false match)."""
    out: list[CommitRecord] = []
    for i, p in enumerate(payloads):
        try:
            rec = decode(p, CommitRecord)
        except RemoteProtocolError as e:
            return out, f"record {i} does not decode: {e}"
        if out and rec.seq <= out[-1].seq:
            return out, f"record {i} has seq {rec.seq} after {out[-1].seq}"
        out.append(rec)
    return out, None


def _salvage(raw: bytes, scan: RecordScan, records: list[CommitRecord],
             damage: str | None) -> tuple[list[CommitRecord], str]:
    """The good records before the damage and those found after it
    (:func:`~synod.core.records.resync`), and the seqs lost ("a..b", "a.."
    when nothing after the damage could be read)."""
    good = list(records)
    last = good[-1].seq if good else 0
    if damage is not None:
        return good, f"{last + 1}.."  # a record that decodes badly: keep only the prefix
    pos = resync(raw, scan.valid_bytes)
    after: list[CommitRecord] = []
    while pos is not None:
        rest = scan_records(raw[pos:])
        recs, bad = _decode_all(rest.records)
        after += [r for r in recs if r.seq > (after[-1].seq if after else last)]
        if rest.error is None or rest.torn or bad is not None:
            break
        pos = resync(raw, pos + rest.valid_bytes)
    if not after:
        return good, f"{last + 1}.."
    return good + after, f"{last + 1}..{after[0].seq - 1}"
