"""The master's operation log and checkpoint on disk (Ghemawat et al.,
SOSP 2003, section 2.6.3), shared by the master and its shadows.

Two files on ``ctx.disk``: ``checkpoint``, one checksummed record holding
a :class:`~synod.gfs.messages.Checkpoint` (written whole: atomically), and
``oplog``, an append-only file of checksummed records, each a
:class:`~synod.gfs.messages.LogEntry` (lsn and record). A checkpoint is
written, then the log restarts empty: a crash between the two leaves a
log whose records the checkpoint already holds, and loading skips them.

Loading (start-up): the checkpoint if there is one, then the log's records
after it in lsn order. Damage is told apart (:mod:`synod.core.records`): a
torn tail (a crash during the last append, never synced, never
acknowledged) is cut off; a corrupt record or checkpoint is kept aside
(``<name>.corrupt-<n>``), reported through ``ctx.warn``, and the good
prefix is used; the loader says so (``damaged``), and the master fetches
what followed from a shadow before it serves (its records were
acknowledged once a quorum of the log's copies held them).

Deterministic; the node gives it ``ctx``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from synod.core import Context, RemoteProtocolError, decode, encode, pack_record, scan_records
from synod.gfs._metadata import Metadata
from synod.gfs.messages import Checkpoint, LogEntry

__all__ = ["OpLog", "Loaded", "CHECKPOINT_PATH", "OPLOG_PATH"]

CHECKPOINT_PATH = "checkpoint"
OPLOG_PATH = "oplog"


@dataclass(slots=True)
class Loaded:
    """What :meth:`OpLog.load` found: the metadata, the records after the
    checkpoint (kept for shadows that lag), and whether anything was
    damaged (``damaged``: a why, for the log)."""

    metadata: Metadata
    checkpoint: Checkpoint
    tail: list[LogEntry] = field(default_factory=list)
    damaged: str | None = None


class OpLog:
    """The log of one master or shadow: :meth:`load` once, then
    :meth:`append` each record and :meth:`write_checkpoint` now and then."""

    def __init__(self) -> None:
        self.records_since_checkpoint = 0

    def load(self, ctx: Context) -> Loaded:
        """Read the checkpoint and the log (see the module docstring)."""
        damaged: str | None = None
        cp = Checkpoint(lsn=0, entries=(), chunks=(), next_handle=1)
        raw = ctx.disk.read(CHECKPOINT_PATH)
        if raw is not None:
            scan = scan_records(raw)
            try:
                if scan.error is not None or len(scan.records) != 1:
                    raise ValueError(scan.error or "not one record")
                cp = decode(scan.records[0], Checkpoint)
                metadata = Metadata.restore(cp)
            except (ValueError, RemoteProtocolError) as e:
                damaged = f"checkpoint: {e}"
                self._keep_aside(ctx, CHECKPOINT_PATH, raw, damaged)
                cp = Checkpoint(lsn=0, entries=(), chunks=(), next_handle=1)
                metadata = Metadata()
        else:
            metadata = Metadata()
        tail: list[LogEntry] = []
        raw = ctx.disk.read(OPLOG_PATH) or b""
        scan = scan_records(raw)
        good = 0
        for i, payload in enumerate(scan.records):
            try:
                entry = decode(payload, LogEntry)
                if entry.lsn <= metadata.lsn:
                    good = i + 1
                    continue
                if damaged is not None and damaged.startswith("checkpoint"):
                    break   # the records after a lost checkpoint do not apply to an empty namespace
                metadata.replay(entry.lsn, entry.record)
            except (ValueError, RemoteProtocolError) as e:
                damaged = damaged or f"log record {i}: {e}"
                break
            tail.append(entry)
            good = i + 1
        if scan.corrupt and damaged is None:
            damaged = f"log: {scan.error}"
        if damaged is not None and raw:
            self._keep_aside(ctx, OPLOG_PATH, raw, damaged)
        if good < len(scan.records) or scan.error is not None:
            # rewrite the good prefix (a torn tail cut; a damaged file kept aside above)
            kept = b"".join(pack_record(p) for p in scan.records[:good])
            ctx.disk.write(OPLOG_PATH, kept)
            ctx.disk.sync()
        self.records_since_checkpoint = len(tail)
        return Loaded(metadata=metadata, checkpoint=cp, tail=tail, damaged=damaged)

    def append(self, ctx: Context, entries: list[LogEntry]) -> None:
        """Append records and ask for a sync (the node's effects wait for it)."""
        ctx.disk.append(OPLOG_PATH, b"".join(pack_record(encode(e)) for e in entries))
        ctx.disk.sync()
        self.records_since_checkpoint += len(entries)

    def write_checkpoint(self, ctx: Context, cp: Checkpoint) -> None:
        """Write ``cp`` and start an empty log (2.6.3; the image is built from
        the in-memory metadata in one handler, so mutations never wait on
        it beyond that)."""
        ctx.disk.write(CHECKPOINT_PATH, pack_record(encode(cp)))
        ctx.disk.write(OPLOG_PATH, b"")
        ctx.disk.sync()
        self.records_since_checkpoint = 0

    @staticmethod
    def _keep_aside(ctx: Context, path: str, raw: bytes, why: str) -> None:
        n = 1
        existing = set(ctx.disk.list(path + ".corrupt-"))
        while f"{path}.corrupt-{n}" in existing:
            n += 1
        ctx.disk.write(f"{path}.corrupt-{n}", raw)
        ctx.warn(f"{path} is damaged ({why}); kept aside as {path}.corrupt-{n}", path=path)
