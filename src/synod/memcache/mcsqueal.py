"""mcsqueal: the invalidation daemon (Nishtala et al., NSDI 2013, section
4.1, "Reducing Latency" of invalidations: "mcsqueal ... tails the commit log,
extracts the deletes and broadcasts them to the memcache deployment").

Theory of operation. A :class:`McsquealNode` *pulls* the database's commit
log from an offset: it asks :class:`~synod.memcache.messages.TailCommitLog`
for the records after ``acked_seq``, at most ``batch_max`` of them; the keys
they wrote (each once, in log order) are one batch. Every key of the batch is
deleted on every cache endpoint (node ids of cache servers, or of routers:
the same request) with an ``md <key> k O<seq>`` (``I`` too when
``invalidate`` is set, marking the value stale instead of dropping it: 3.2.1's
stale values), sent as plain messages so the whole batch is in flight at
once. A reply's ``k`` and ``O`` flags name the key and the batch it
acknowledges (``O`` is the batch's last ``seq``, which never repeats: a late
reply to an earlier batch acknowledges nothing). ``HD`` and ``NF`` both
acknowledge (a key not cached is as good as deleted). Unacknowledged deletes
are re-sent every ``retry_ms``, for as long as it takes. When the whole
batch is acknowledged, ``acked_seq`` moves to its last record and is written
durably (``mcsqueal/cursor``, a checksummed record) before the next tail.
With nothing new in the log, mcsqueal tails again after ``batch_delay_ms``:
that delay is what batches the deletes of concurrent writes.

Regions and remote markers (section 5). Every region runs its own mcsqueal
over its own database: a replica region's tails the replica's log, so it
deletes a key in that region's caches only when the replicated write has
arrived there. Given the region's regional ``pool``, it also takes each
record's remote marker token out of the marker ``r<key>`` there, as part of
the same batch: ``mg r<key> v c k O<seq>``; the value is the tokens of the
writes not yet replicated (one per write, space-separated); without this
batch's tokens it is written back with ``ms ... C<cas>``, or deleted with
``md ... C<cas>`` when none is left; a cas mismatch (``EX``, ``NS``: a writer
added its token meanwhile) or no answer reads it again. So a marker stays
while *any* write it stands for is still on its way to this region: the
paper deletes ``r<key>`` when the write arrives, and a plain delete would
drop a later write's marker with an earlier write's arrival (measured: a
read-your-writes violation in every seed). Removing a token is idempotent,
so at-least-once still holds.

Why pull. The daemon restarts from its durable cursor and the database
restarts from its durable log; nothing either keeps in memory is needed
after a crash. A delete may be sent more than once (a restart before the
cursor is written re-sends the batch), never lost: the paper's at-least-once
delivery, safe because deletes are idempotent.

Invariants: ``acked_seq`` only grows and is durable before it is used;
``pending`` holds (endpoint, key) pairs of the current batch only;
``markers`` the tokens to take out of each marker key of the batch.

A corrupt cursor file is kept aside (``mcsqueal/damaged/``), reported with
``ctx.warn``, and mcsqueal starts from 0: every committed write is
invalidated again (at least once, never silently skipped).
"""

from __future__ import annotations

from typing import Any

from synod.core import Context, Node, decode, encode, pack_record
from synod.core.errors import RemoteProtocolError
from synod.memcache import constants as C
from synod.memcache.database import read_checked
from synod.memcache.messages import (
    CommitLogBatch,
    McsquealCursor,
    MetaDelete,
    MetaGet,
    MetaReply,
    MetaSet,
    TailCommitLog,
)
from synod.memcache.webclient import meta_flags, remote_marker

__all__ = ["McsquealNode", "CURSOR_PATH"]

_uncached_flags = meta_flags.__wrapped__  # flags naming a cas unique: not worth keeping
CURSOR_PATH = "mcsqueal/cursor"
DAMAGED_DIR = "mcsqueal/damaged/"
_TAIL, _RETRY = "tail", "retry"


class McsquealNode(Node):
    """The invalidation daemon of one database (see the module docstring).

    Args:
        database: the database's node id.
        endpoints: the cache endpoints (cache server or router node ids)
            every delete goes to.
        batch_max: most commit log records (so keys) in one batch.
        batch_delay_ms: the wait before tailing again when the log had
            nothing new (virtual or real ms).
        retry_ms: unacknowledged deletes are re-sent this often.
        invalidate: send ``md I`` (mark stale) instead of a plain delete.
        pool: the region's regional pool, whose remote markers it updates
            (None: no remote markers; section 5).

    Attributes (read by tests and checkers): ``acked_seq``, ``deletes_sent``
    (every md sent, re-sends included), ``batches`` (batches acknowledged
    in this incarnation).
    """

    def __init__(self, *, database: str, endpoints: tuple[str, ...], batch_max: int = C.MCSQUEAL_BATCH_MAX,
                 batch_delay_ms: float = C.MCSQUEAL_BATCH_DELAY_MS, retry_ms: float = C.MCSQUEAL_RETRY_MS,
                 invalidate: bool = False, pool: str | None = None) -> None:
        assert endpoints, "mcsqueal needs at least one cache endpoint"
        assert 1 <= batch_max <= C.COMMIT_LOG_TAIL_RECORDS_MAX, batch_max
        self.database, self.endpoints = database, endpoints
        self.batch_max, self.batch_delay_ms, self.retry_ms = batch_max, batch_delay_ms, retry_ms
        self.invalidate, self.pool = invalidate, pool
        self.acked_seq = 0
        self.deletes_sent = 0
        self.batches = 0
        # The batch in flight: its last seq (0: none), and (endpoint, key) -> unacknowledged.
        self.batch_seq = 0
        self.pending: dict[tuple[str, bytes], None] = {}
        self.markers: dict[bytes, frozenset[bytes]] = {}

    def on_start(self, ctx: Context) -> None:
        self.acked_seq = self._read_cursor(ctx)
        ctx.trace("mcsqueal_start", acked_seq=self.acked_seq)
        self._tail(ctx)

    def on_timer(self, ctx: Context, name: str) -> None:
        if name == _TAIL:
            self._tail(ctx)
        elif name == _RETRY:
            self._send_pending(ctx)

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        t = type(msg)
        if t is CommitLogBatch:
            self._on_batch(ctx, msg)
        elif t is MetaReply:
            self._on_ack(ctx, src, msg)
        else:
            ctx.trace("ignore_message", type=t.__name__, reason="not a tail reply or a delete acknowledgement")

    # -- tailing -------------------------------------------------------------------
    def _tail(self, ctx: Context) -> None:
        """Ask for the records after ``acked_seq``; ask again if no answer
        comes within the tail timeout."""
        if self.batch_seq:
            return  # a batch is in flight: the next tail follows its acknowledgement
        ctx.send(self.database, TailCommitLog(from_seq=self.acked_seq + 1, records_max=self.batch_max))
        ctx.set_timer(_TAIL, C.MCSQUEAL_TAIL_TIMEOUT_MS)

    def _on_batch(self, ctx: Context, msg: CommitLogBatch) -> None:
        if self.batch_seq or msg.from_seq != self.acked_seq + 1:
            ctx.trace("ignore_tail", from_seq=msg.from_seq, reason="not the tail asked for")
            return
        if not msg.records:
            ctx.set_timer(_TAIL, self.batch_delay_ms)
            return
        seqs = [r.seq for r in msg.records]
        if seqs[0] < msg.from_seq or any(a >= b for a, b in zip(seqs, seqs[1:])):
            raise RemoteProtocolError(f"commit log batch from {msg.from_seq} holds seqs out of order: {seqs[:5]}")
        keys = list(dict.fromkeys(r.key for r in msg.records[:self.batch_max]))
        self.batch_seq = msg.records[min(len(msg.records), self.batch_max) - 1].seq
        self.pending = {(ep, k): None for ep in self.endpoints for k in keys}
        self.markers = {}
        if self.pool is not None:
            for r in msg.records[:self.batch_max]:
                if r.remote_marker:
                    mk = remote_marker(r.key)
                    self.markers[mk] = self.markers.get(mk, frozenset()) | {r.remote_marker}
            self.pending.update({(self.pool, mk): None for mk in self.markers})
        ctx.cancel_timer(_TAIL)
        ctx.trace("mcsqueal_batch", first_seq=msg.records[0].seq, last_seq=self.batch_seq, keys=len(keys))
        self._send_pending(ctx)

    # -- deletes -------------------------------------------------------------------
    def _send_pending(self, ctx: Context) -> None:
        if not self.batch_seq:
            return
        for ep, key in self.pending:
            if ep == self.pool and key in self.markers:
                ctx.send(ep, MetaGet(key=key, flags=meta_flags(b"mg", b"v c k O%d" % self.batch_seq)))
                continue
            flags = meta_flags(b"md", b"I k O%d" % self.batch_seq if self.invalidate else b"k O%d" % self.batch_seq)
            ctx.send(ep, MetaDelete(key=key, flags=flags))
            self.deletes_sent += 1
        ctx.set_timer(_RETRY, self.retry_ms)

    def _on_marker(self, ctx: Context, key: bytes, msg: MetaReply) -> bool:
        """A reply about remote marker ``key``: True when this batch's
        tokens are out of it (or it is gone); else the next step is sent."""
        if msg.code in (b"EX", b"NS"):  # a writer changed the marker since it was read: read it again
            ctx.send(self.pool, MetaGet(key=key, flags=meta_flags(b"mg", b"v c k O%d" % self.batch_seq)))
            return False
        if msg.code != b"VA":
            if msg.code in (b"EN", b"HD", b"NF"):
                return True
            ctx.trace("ignore_ack", key=key, code=msg.code.decode(), reason="marker update refused; re-read")
            return False
        tokens = (msg.value or b"").split()
        left = [t for t in tokens if t not in self.markers[key]]
        if len(left) == len(tokens):
            return True
        cas = next(f[1:] for f in msg.flags if f[:1] == b"c")
        opaque = b"k O%d C%s" % (self.batch_seq, cas)
        if left:
            flags = _uncached_flags(b"ms", opaque + b" T%d" % C.REMOTE_MARKER_TTL_S)
            ctx.send(self.pool, MetaSet(key=key, flags=flags, data=b" ".join(left)))
        else:
            ctx.send(self.pool, MetaDelete(key=key, flags=_uncached_flags(b"md", opaque)))
        return False

    def _on_ack(self, ctx: Context, src: str, msg: MetaReply) -> None:
        key = next((f[1:] for f in msg.flags if f[:1] == b"k"), None)
        opaque = next((f[1:] for f in msg.flags if f[:1] == b"O"), None)
        if key is None or opaque is None or not self.batch_seq or opaque != b"%d" % self.batch_seq:
            ctx.trace("ignore_ack", src=src, reason="not an acknowledgement of the batch in flight")
            return
        if src == self.pool and key in self.markers:
            if (src, key) in self.pending and not self._on_marker(ctx, key, msg):
                return
        elif msg.code not in (b"HD", b"NF"):
            ctx.trace("ignore_ack", src=src, code=msg.code.decode(), reason="delete refused; re-sent")
            return
        self.pending.pop((src, key), None)
        if self.pending:
            return
        self.acked_seq = self.batch_seq
        self.batch_seq = 0
        self.batches += 1
        ctx.cancel_timer(_RETRY)
        # The cursor is durable before the next tail is asked for (effects order: sync, then sends).
        ctx.disk.write(CURSOR_PATH, pack_record(encode(McsquealCursor(acked_seq=self.acked_seq))))
        ctx.disk.sync()
        self._tail(ctx)

    # -- the cursor ----------------------------------------------------------------
    def _read_cursor(self, ctx: Context) -> int:
        if ctx.disk.read(CURSOR_PATH) is None:
            return 0
        raw, scan = read_checked(ctx, CURSOR_PATH)
        if scan.error is None and len(scan.records) == 1:
            try:
                return decode(scan.records[0], McsquealCursor).acked_seq
            except RemoteProtocolError:
                pass
        n = len(ctx.disk.list(DAMAGED_DIR + "cursor.")) + 1
        ctx.disk.write(f"{DAMAGED_DIR}cursor.{n}", raw)
        ctx.warn("memcache mcsqueal: cursor corrupt; kept aside, invalidating the whole commit log again",
                 file=CURSOR_PATH, kept_aside=f"{DAMAGED_DIR}cursor.{n}", error=scan.error or "undecodable")
        ctx.disk.delete(CURSOR_PATH)
        ctx.disk.sync()
        return 0
