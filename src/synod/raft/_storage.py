"""A Raft server's durable state on ``ctx.disk``, and how it is read back
after a crash or a disk fault.

Files (all checksummed records, :mod:`synod.core.records`):

- ``raft/wal``: one record per log entry, ``[index, term, data,
  conf_change]``; a later record for an index overwrites the earlier one
  (that is how a truncation is logged); rewritten whole after a snapshot;
- ``raft/hardstate``: ``[term, vote, commit, repair_term, repair_index]``,
  written whole; ``raft/hardstate.copy`` holds the same and is rewritten
  whenever term, vote or the repair bound change (not for the commit index
  alone), so that one corrupt copy never loses a vote;
- ``raft/snapshot``: ``[index, term, data, configuration]``, written whole.

Recovery tells the two kinds of damage apart (Alagappan et al.,
"Protocol-Aware Recovery for Consensus-Based Storage", FAST 2018):

- a *torn tail* (the last append cut by a crash) held nothing that was ever
  synced, so nothing acknowledged: it is cut off and the server goes on;
- *corruption* (a checksum mismatch in a whole record, in the snapshot, or
  a record that does not decode) may have destroyed entries this server
  acknowledged. The damaged file is copied to ``raft/damaged/`` (never
  deleted), a WARNING names the file, offset and record index, and the
  server keeps its term and vote but records a *repair bound*: a (term,
  index) at or beyond the last entry it may have held. Raft then never
  campaigns and votes only for candidates at least that up to date until a
  leader has given it its log back that far (see ``Raft.repair_bound``).
  Its recovered commit index falls back to the snapshot: a lost record may
  have overwritten kept ones, so only a leader's AppendEntries re-confirms
  them. The bound is made durable before the WAL is rewritten.

The commit index is persisted no further than the entries already durable
before the Ready that carries it, so a crash can never leave a commit index
that covers entries whose truncation record was lost with an unsynced append.

The commit index is volatile state in Raft (Figure 2): a Ready whose hard
state differs from the last one written only in its commit index is not
written at once (etcd's MustSync rule: term, vote and new entries need an
fsync before messages go out; the commit index does not). It is written with
the next change of term, vote or repair bound, or once it has advanced
``COMMIT_PERSIST_INTERVAL_ENTRIES`` past the last written value, so a
restarted server replays at most that many entries less than it could; a
leader's next AppendEntries gives it the rest. This takes a whole-file
rewrite (temp file, fsync, rename, directory fsync) off every Ready, the
largest cost of a write under load (MEASUREMENTS.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from synod.core import Context, decode, encode, pack_record, resync, scan_records
from synod.core.errors import LocalProtocolError, RemoteProtocolError
from synod.core.records import RECORD_HEADER_BYTES, RecordScan
from synod.raft import constants as C
from synod.raft._confchange import ConfState
from synod.raft._log import Snapshot
from synod.raft._ready import HardState, Ready, Recovered
from synod.raft.messages import Entry

__all__ = ["RaftStorage", "WAL_PATH", "HARDSTATE_PATH", "HARDSTATE_COPY_PATH", "SNAPSHOT_PATH", "DAMAGED_DIR",
           "REPAIR_INDEX_UNKNOWN"]

WAL_PATH = "raft/wal"
HARDSTATE_PATH = "raft/hardstate"
HARDSTATE_COPY_PATH = "raft/hardstate.copy"
SNAPSHOT_PATH = "raft/snapshot"
DAMAGED_DIR = "raft/damaged/"
READ_ATTEMPTS_MAX = 3          # re-reads of a file whose checksum failed (transient read faults)
# The smallest WAL record: header plus msgpack [index, term, nil, false].
WAL_RECORD_BYTES_MIN = RECORD_HEADER_BYTES + 5
# A repair bound whose index is unknown (the snapshot was lost and no WAL
# record says how far the log went): only a later term satisfies it.
REPAIR_INDEX_UNKNOWN = 1 << 62


def entry_record(e: Entry) -> bytes:
    return pack_record(encode([e.index, e.term, e.data, e.conf_change]))


def _is_int(v: Any) -> bool:
    return type(v) is int and v >= 0


@dataclass(frozen=True, slots=True, kw_only=True)
class _WalScan:
    entries: tuple[Entry, ...]
    valid_bytes: int             # bytes of the good prefix
    damage: str | None           # why the scan stopped early, None if clean
    torn: bool                   # the damage is a torn tail
    record_index: int            # records before the damage
    last_index: int              # index of the last record seen anywhere (0: none)
    bound_index: int             # at or beyond the last index the lost log held


class RaftStorage:
    """Reads and writes a server's durable state; see the module docstring.
    ``skip_fsync``: never sync (RaftNodeConfig.unsafe_skip_fsync).
    ``cut_corruption``: treat corruption like a torn tail, cutting the WAL
    there and forgetting what it held (the behaviour PAR shows unsafe;
    RaftNodeConfig.unsafe_cut_corrupt_wal, test-only)."""

    def __init__(self, *, skip_fsync: bool = False, cut_corruption: bool = False) -> None:
        self.skip_fsync = skip_fsync
        self.cut_corruption = cut_corruption
        # (term, vote, repair_term, repair_index) last written to the copy.
        self._copied: tuple[Any, ...] | None = None
        # The hard state last written to raft/hardstate (None: not yet this run).
        self._written: HardState | None = None

    # -- writing ---------------------------------------------------------------------
    def persist(self, ctx: Context, rd: Ready, entries: list[Entry], stable_index: int) -> None:
        """Persist what ``rd`` asks (Ready's order). ``entries``: the whole log
        after the snapshot (rewritten with a new snapshot); ``stable_index``:
        the last entry already durable before this Ready."""
        disk = ctx.disk
        if rd.snapshot is not None:
            s = rd.snapshot
            conf = s.conf.encode() if s.conf is not None else b""
            disk.write(SNAPSHOT_PATH, pack_record(encode([s.index, s.term, s.data, conf])))
            # The log after the snapshot, whole: the WAL never holds a gap.
            disk.write(WAL_PATH, b"".join(entry_record(e) for e in entries))
        elif rd.entries:
            disk.append(WAL_PATH, b"".join(entry_record(e) for e in rd.entries))
        sync = bool(rd.entries) or rd.snapshot is not None
        if rd.hard_state is not None:
            hs = rd.hard_state
            commit = min(hs.commit, max(stable_index, rd.snapshot.index if rd.snapshot is not None else 0))
            hs = dataclasses.replace(hs, commit=commit)
            last = self._written
            if (last is None or (hs.term, hs.vote, hs.repair_term, hs.repair_index)
                    != (last.term, last.vote, last.repair_term, last.repair_index)
                    or hs.commit < last.commit or hs.commit - last.commit >= C.COMMIT_PERSIST_INTERVAL_ENTRIES
                    or rd.snapshot is not None):
                self._write_hard_state(ctx, hs)
                sync = True
        if sync and not self.skip_fsync:
            disk.sync()

    def _write_hard_state(self, ctx: Context, hs: HardState) -> None:
        record = pack_record(encode([hs.term, hs.vote, hs.commit, hs.repair_term, hs.repair_index]))
        ctx.disk.write(HARDSTATE_PATH, record)
        self._written = hs
        key = (hs.term, hs.vote, hs.repair_term, hs.repair_index)
        if key != self._copied:
            ctx.disk.write(HARDSTATE_COPY_PATH, record)
            self._copied = key

    # -- reading back ------------------------------------------------------------------
    def recover(self, ctx: Context) -> Recovered:
        """The durable state after a (re)start; see the module docstring.

        Raises:
            LocalProtocolError: both hard state copies are damaged, so the
                server cannot know its term and vote (it must not vote
                again): it refuses to start, after a WARNING.
        """
        hard = self._recover_hard_state(ctx)
        snap, snap_damage, snap_raw = self._read_snapshot(ctx)
        base = snap.index if snap is not None else 0
        wal_raw, wal_scan = self._read(ctx, WAL_PATH)
        wal = _scan_wal(wal_raw, wal_scan, base)
        if self.cut_corruption and wal.damage is not None:
            wal = dataclasses.replace(wal, torn=True)
        entries = wal.entries
        bound_index = 0
        if snap_damage is not None:
            self._keep_aside(ctx, SNAPSHOT_PATH, snap_raw)
            ctx.warn("raft: snapshot corrupt; its entries are repaired from the leader",
                     file=SNAPSHOT_PATH, offset=0, record_index=0, error=snap_damage)
            if wal_raw:
                self._keep_aside(ctx, WAL_PATH, wal_raw)
            snap, entries = None, ()
            # The WAL's last record is the log's last entry; none: unknown.
            bound_index = max(wal.bound_index, wal.last_index) if wal.last_index else REPAIR_INDEX_UNKNOWN
        elif wal.damage is not None and not wal.torn:
            self._keep_aside(ctx, WAL_PATH, wal_raw)
            ctx.warn("raft: WAL corrupt; entries from here on are repaired from the leader", file=WAL_PATH,
                     offset=wal.valid_bytes, record_index=wal.record_index, error=wal.damage,
                     kept_entries=len(entries), lost_through_index_at_most=wal.bound_index)
            bound_index = wal.bound_index
        if bound_index:
            bound = max((hard.term, bound_index), (hard.repair_term, hard.repair_index))
            hard = dataclasses.replace(hard, commit=snap.index if snap is not None else 0,
                                       repair_term=bound[0], repair_index=bound[1])
            # The bound is durable before the damaged WAL is replaced.
            self._write_hard_state(ctx, hard)
            ctx.disk.sync()
        if bound_index or wal.damage is not None:
            if wal.torn:
                ctx.trace("wal_recovery", error=wal.damage, kept_bytes=wal.valid_bytes)
            ctx.disk.write(WAL_PATH, b"".join(entry_record(e) for e in entries))
            ctx.disk.sync()
        return Recovered(hard_state=hard, snapshot=snap, entries=entries)

    def _read(self, ctx: Context, path: str) -> tuple[bytes, RecordScan]:
        """The file's bytes; re-read a few times while a checksum fails, and
        keep the read with the longest good prefix (the simulator's read
        faults are transient; corruption at rest is not), with its scan."""
        best: tuple[bytes, RecordScan] | None = None
        for _ in range(READ_ATTEMPTS_MAX):
            data = ctx.disk.read(path) or b""
            scan = scan_records(data)
            if best is None or scan.valid_bytes > best[1].valid_bytes:
                best = (data, scan)
            if scan.error is None:
                break
        assert best is not None
        return best

    def _read_one(self, ctx: Context, path: str) -> tuple[Any, str | None, bytes]:
        """(decoded single record or None if absent, damage, raw bytes)."""
        raw, scan = self._read(ctx, path)
        if not raw:
            return None, None, raw
        if scan.error is not None or len(scan.records) != 1:
            return None, scan.error or f"{len(scan.records)} records, expected 1", raw
        try:
            return decode(scan.records[0]), None, raw
        except RemoteProtocolError as e:
            return None, f"undecodable record: {e}", raw

    def _read_hard_state(self, ctx: Context, path: str) -> tuple[HardState | None, str | None, bytes]:
        value, damage, raw = self._read_one(ctx, path)
        if value is None:
            return None, damage, raw
        ok = (type(value) is list and len(value) in (3, 5) and _is_int(value[0])
              and (value[1] is None or type(value[1]) is str) and all(_is_int(v) for v in value[2:]))
        if not ok:
            return None, f"not a hard state: {value!r:.80}", raw
        hs = HardState(term=value[0], vote=value[1], commit=value[2],
                       repair_term=value[3] if len(value) == 5 else 0,
                       repair_index=value[4] if len(value) == 5 else 0)
        return hs, None, raw

    def _recover_hard_state(self, ctx: Context) -> HardState:
        primary, damage, raw = self._read_hard_state(ctx, HARDSTATE_PATH)
        copy, copy_damage, copy_raw = self._read_hard_state(ctx, HARDSTATE_COPY_PATH)
        if damage is not None:
            self._keep_aside(ctx, HARDSTATE_PATH, raw)
            ctx.warn("raft: hard state corrupt", file=HARDSTATE_PATH, offset=0, record_index=0, error=damage,
                     using_copy=copy is not None)
        if copy_damage is not None:
            self._keep_aside(ctx, HARDSTATE_COPY_PATH, copy_raw)
            ctx.warn("raft: hard state copy corrupt", file=HARDSTATE_COPY_PATH, offset=0, record_index=0,
                     error=copy_damage, using_primary=primary is not None)
        hard = primary or copy
        if hard is None:
            if damage is not None or copy_damage is not None:
                raise LocalProtocolError("raft: no readable hard state (both copies damaged, kept in "
                                         f"{DAMAGED_DIR}); refusing to start, since this server could vote twice")
            return HardState()
        if primary is None or copy is None or damage is not None or copy_damage is not None:
            self._copied = None  # rewrite both: one was damaged or missing
            self._write_hard_state(ctx, hard)
            ctx.disk.sync()
        else:
            self._copied = (copy.term, copy.vote, copy.repair_term, copy.repair_index)
            if self._copied != (hard.term, hard.vote, hard.repair_term, hard.repair_index):
                self._write_hard_state(ctx, hard)  # a crash came between the two writes
                ctx.disk.sync()
        return hard

    def _read_snapshot(self, ctx: Context) -> tuple[Snapshot | None, str | None, bytes]:
        value, damage, raw = self._read_one(ctx, SNAPSHOT_PATH)
        if value is None:
            return None, damage, raw
        # [index, term, data, configuration bytes] (b"": the initial configuration).
        ok = (type(value) is list and len(value) in (3, 4) and _is_int(value[0]) and _is_int(value[1])
              and type(value[2]) is bytes and (len(value) == 3 or type(value[3]) is bytes))
        if not ok:
            return None, f"not a snapshot: {value!r:.80}", raw
        conf = None
        if len(value) > 3 and value[3]:
            try:
                conf = ConfState.decode(value[3])
            except (LocalProtocolError, RemoteProtocolError) as e:
                return None, f"snapshot configuration unreadable: {e}", raw
        return Snapshot(index=value[0], term=value[1], data=value[2], conf=conf), None, raw

    def _keep_aside(self, ctx: Context, path: str, raw: bytes) -> None:
        """Copy a damaged file to ``raft/damaged/<name>.<n>`` for inspection."""
        name = path.rsplit("/", 1)[-1]
        n = len(ctx.disk.list(f"{DAMAGED_DIR}{name}.")) + 1
        ctx.disk.write(f"{DAMAGED_DIR}{name}.{n}", raw)


def _decode_entry(rec: bytes) -> Entry | None:
    try:
        value = decode(rec)
    except RemoteProtocolError:
        return None
    if type(value) is not list or len(value) not in (3, 4):
        return None
    index, term, data = value[0], value[1], value[2]
    conf = value[3] if len(value) == 4 else False
    if not (_is_int(index) and index >= 1 and _is_int(term) and (data is None or type(data) is bytes)
            and type(conf) is bool):
        return None
    return Entry(term=term, index=index, data=data, conf_change=conf)


def _scan_wal(data: bytes, scan: RecordScan, base: int) -> _WalScan:
    """The entries after ``base`` (the snapshot's index) of a WAL, and, if it
    is damaged, how far the log it held may have gone."""
    entries: list[Entry] = []
    offset = 0
    last_index = 0
    for n, rec in enumerate(scan.records):
        e = _decode_entry(rec)
        why = None
        if e is None:
            why = f"undecodable record at {offset}"
        elif e.index > base and e.index > base + len(entries) + 1:
            why = f"record for index {e.index} after index {base + len(entries)} at {offset}"
        if why is not None:
            return _bounded(data, entries, offset, n, why, last_index, base)
        last_index = e.index
        offset += RECORD_HEADER_BYTES + len(rec)
        if e.index <= base:
            continue
        del entries[e.index - base - 1:]
        entries.append(e)
    if scan.corrupt:
        return _bounded(data, entries, scan.valid_bytes, len(scan.records), scan.error, last_index, base)
    return _WalScan(entries=tuple(entries), valid_bytes=scan.valid_bytes, damage=scan.error, torn=scan.torn,
                    record_index=len(scan.records), last_index=last_index, bound_index=0)


def _bounded(data: bytes, entries: list[Entry], pos: int, record_index: int, damage: str, last_index: int,
             base: int) -> _WalScan:
    """A WAL corrupt at ``pos``: bound the last index it held. Records are
    appended one index at a time (an overwrite goes back), so a stretch of
    ``k`` unreadable bytes holds at most ``k / WAL_RECORD_BYTES_MIN`` more
    indexes; readable records past the damage are found by resync."""
    seen = max(last_index, base)
    bound = seen
    start = pos
    while True:
        q = resync(data, pos)
        hole = (q if q is not None else len(data)) - pos
        bound = max(bound, seen + -(-hole // WAL_RECORD_BYTES_MIN))
        if q is None:
            break
        after = scan_records(data[q:])
        for rec in after.records:
            e = _decode_entry(rec)
            if e is not None:
                seen = e.index
                bound = max(bound, seen)
        if after.error is None or after.torn:
            break
        pos = q + after.valid_bytes
    return _WalScan(entries=tuple(entries), valid_bytes=start, damage=damage, torn=False,
                    record_index=record_index, last_index=max(last_index, seen), bound_index=bound)
