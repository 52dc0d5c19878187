"""The router's async log of missed writes (mcrouter's async log; issue
11; Nishtala et al. 3.3): the writes a cache server may have missed while
the router sent its keys to the gutter or timed out, on the router's disk,
so a router that crashes still replays them before it trusts that server
again. See :mod:`synod.memcache.router` for when records are written,
compacted and reloaded."""

from __future__ import annotations

from synod.core import Context, Message, decode, encode, pack_record
from synod.core.errors import RemoteProtocolError
from synod.memcache.database import read_checked

__all__ = ["AsyncLog", "MissedWrite", "MISSED_LOG_PATH", "DAMAGED_DIR"]

MISSED_LOG_PATH = "router/missed_log"  # the async log of missed writes
DAMAGED_DIR = "router/damaged/"  # a corrupt async log is kept aside here


class MissedWrite(Message, tag="mc.MissedWrite"):
    """One record of the router's async log (mcrouter's): ``server`` may
    have missed a write of ``key`` (deleted there before it is trusted
    again); ``key`` None: ``server`` is owed a flush_all."""

    server: str
    key: bytes | None = None


class AsyncLog:
    """The router's async log of missed writes on ``ctx.disk`` (see the
    module docstring): appends synced at once, a rewrite when replays
    clear a server, and the reload of ``on_start``."""

    __slots__ = ("logged",)

    def __init__(self) -> None:
        self.logged: set[str] = set()  # servers that have records in the file

    def append(self, ctx: Context, server: str, key: bytes | None) -> None:
        """Log that ``server`` owes ``key`` (None: a flush_all); synced
        before anything this handler step sends, the write's answer included."""
        ctx.disk.append(MISSED_LOG_PATH, pack_record(encode(MissedWrite(server=server, key=key))))
        ctx.disk.sync()
        self.logged.add(server)

    def rewrite(self, ctx: Context, missed: dict[str, dict[bytes, None]], flush_owed: set[str]) -> None:
        """Compact: the log becomes exactly what is owed (deleted when
        nothing is), synced."""
        records = [MissedWrite(server=s) for s in sorted(flush_owed)]
        records += [MissedWrite(server=s, key=k) for s in sorted(missed) if s not in flush_owed for k in missed[s]]
        if records:
            ctx.disk.write(MISSED_LOG_PATH, b"".join(pack_record(encode(r)) for r in records))
        else:
            ctx.disk.delete(MISSED_LOG_PATH)
        ctx.disk.sync()
        self.logged = {r.server for r in records}
        ctx.trace("missed_log_compacted", records=len(records))

    def load(self, ctx: Context, servers: tuple[str, ...]) -> tuple[list[MissedWrite], bool]:
        """The log's records (only those naming one of ``servers``), and
        whether it was corrupt: then the records are none of it, the file is
        kept aside under ``DAMAGED_DIR`` and ``ctx.warn`` says so. A torn
        tail is cut (never synced, so never acknowledged)."""
        raw, scan = read_checked(ctx, MISSED_LOG_PATH)
        records: list[MissedWrite] = []
        damage = scan.error if scan.corrupt else None
        for i, payload in enumerate(scan.records):
            try:
                records.append(decode(payload, MissedWrite))
            except RemoteProtocolError as e:
                damage = f"record {i} does not decode: {e}"
                break
        if damage is not None:
            n = len(ctx.disk.list(DAMAGED_DIR + "missed_log.")) + 1
            ctx.disk.write(f"{DAMAGED_DIR}missed_log.{n}", raw)
            ctx.warn("memcache router: async log of missed writes corrupt; the damaged file is kept aside and "
                     "every server is owed a flush_all", file=MISSED_LOG_PATH, kept_aside=f"{DAMAGED_DIR}missed_log.{n}",
                     offset=scan.valid_bytes, error=damage)
            return [], True
        if scan.torn:
            ctx.trace("missed_log_torn_tail", error=scan.error, kept_bytes=scan.valid_bytes)
        known = set(servers)
        for r in records:
            if r.server not in known:
                ctx.trace("ignore_missed_write", server=r.server, reason="not a server of any pool")
        return [r for r in records if r.server in known], False
