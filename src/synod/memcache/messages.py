"""Requests to a cache server and its replies, as typed messages.

A client's command reaches the :class:`~synod.memcache.node.CacheNode` as
one of the requests below, whether it came through a memcached port (the
runtime's client gateway parses the bytes with
:class:`~synod.memcache.protocol.MemcacheProtocol`) or from a simulated
client node, so one state machine serves both worlds. The node answers each
with one reply; the protocol object writes it in memcached's words.

Numbers are kept as memcached reads them off the line: ``exptime`` is the
raw signed 32-bit exptime (0: never; up to 30 days: seconds from now; above:
a Unix time in seconds; negative: already expired), ``client_flags`` an
unsigned 32-bit value, ``cas_unique`` / ``delta`` unsigned 64-bit.

Text protocol (memcached ``doc/protocol.txt``, "Commands")
    :class:`Get` (get, gets, gat, gats), :class:`Store` (set, add, replace,
    append, prepend, cas), :class:`Delete`, :class:`Arith` (incr, decr),
    :class:`Touch`, :class:`FlushAll`, :class:`Version`, :class:`Stats`,
    :class:`Verbosity`, :class:`CacheMemlimit`, :class:`Quit`.

Meta protocol ("Meta Commands")
    :class:`MetaGet` (mg), :class:`MetaSet` (ms), :class:`MetaDelete` (md),
    :class:`MetaArith` (ma), :class:`MetaNoop` (mn), :class:`MetaDebug` (me);
    their flags in a :class:`MetaFlags`.

Refused input
    :class:`Invalid` carries the error line the parser chose (``ERROR``,
    ``CLIENT_ERROR ...``); :class:`Disconnect` asks for the connection to be
    closed after the replies before it (an over-long line, an HTTP request).

Replies
    :class:`Line` (one line: ``STORED``, ``EN``, ``CLIENT_ERROR ...``, a
    number), :class:`Values` (get's ``VALUE`` lines then ``END``),
    :class:`MetaReply` (a meta status line, its return flags and an optional
    value), :class:`StatsReply` (``STAT`` lines then ``END``), :class:`Close`
    (no bytes; the connection closes).
"""

from __future__ import annotations

from synod.core.codec import Message

__all__ = [
    "Get", "Store", "STORE_MODES", "Delete", "Arith", "Touch", "FlushAll", "Version", "Stats", "Verbosity",
    "CacheMemlimit", "Quit", "Invalid", "Disconnect", "MetaFlags", "MetaGet", "MetaSet", "MetaDelete",
    "MetaArith", "MetaNoop", "MetaDebug", "Request", "Line", "Value", "Values", "MetaReply", "StatsReply",
    "Close", "Reply", "DbRead", "DbRow", "DbWrite", "DbCommitted", "CommitRecord", "TailCommitLog",
    "CommitLogBatch", "McsquealCursor", "DatabaseRequest", "DbNotMaster",
]

# Store.mode values: the text command that made it (ms's M flag maps onto these).
STORE_MODES = ("set", "add", "replace", "append", "prepend", "cas")


# -- text protocol ---------------------------------------------------------------------------------


class Get(Message, tag="mc.Get"):
    """get / gets (``return_cas``) / gat / gats (``touch``, with ``exptime``).

    ``error``: when set, a key in the line was invalid (over 250 bytes):
    ``keys`` are those before it, which memcached looks up (counting hits
    and touching) before answering only this error line."""

    keys: tuple[bytes, ...]
    return_cas: bool = False
    touch: bool = False
    exptime: int = 0
    error: str = ""


class Store(Message, tag="mc.Store"):
    """A storage command with its data block: ``mode`` is one of
    :data:`STORE_MODES`; ``cas_unique`` is the cas command's (0 otherwise)."""

    mode: str
    key: bytes
    client_flags: int
    exptime: int
    data: bytes
    cas_unique: int = 0
    noreply: bool = False

    def __post_init__(self) -> None:
        if self.mode not in STORE_MODES:
            raise ValueError(f"unknown store mode {self.mode!r}")


class Delete(Message, tag="mc.Delete"):
    key: bytes
    noreply: bool = False


class Arith(Message, tag="mc.Arith"):
    """incr (``incr`` True) or decr of ``key``'s decimal value by ``delta``."""

    key: bytes
    incr: bool
    delta: int
    noreply: bool = False


class Touch(Message, tag="mc.Touch"):
    key: bytes
    exptime: int
    noreply: bool = False


class FlushAll(Message, tag="mc.FlushAll"):
    """Invalidate every item now (``delay_s`` <= 0) or ``delay_s`` seconds from now."""

    delay_s: int = 0
    noreply: bool = False


class Version(Message, tag="mc.Version"):
    pass


class Stats(Message, tag="mc.Stats"):
    """``stats`` (``args`` empty), ``stats reset``, ``stats settings``,
    ``stats detail ...``, or another group (unknown: ``ERROR``)."""

    args: tuple[bytes, ...] = ()


class Verbosity(Message, tag="mc.Verbosity"):
    level: int
    noreply: bool = False


class CacheMemlimit(Message, tag="mc.CacheMemlimit"):
    """Change the memory limit to ``memory_limit_mb`` MiB."""

    memory_limit_mb: int
    noreply: bool = False


class Quit(Message, tag="mc.Quit"):
    pass


class Invalid(Message, tag="mc.Invalid"):
    """A command the parser refused: the reply is ``text`` (no CRLF), or
    nothing when ``noreply`` (memcached hides some errors of noreply commands).
    ``unlink_key``: a key whose item memcached drops on this refusal (a set
    of a value too large must not leave the old value behind)."""

    text: str
    noreply: bool = False
    unlink_key: bytes | None = None


class Disconnect(Message, tag="mc.Disconnect"):
    """Close the connection after the replies to the requests before this one
    (memcached closes on a line over 2048 bytes, or an HTTP request line)."""

    reason: str


# -- meta protocol ---------------------------------------------------------------------------------


class MetaFlags(Message, tag="mc.MetaFlags"):
    """A meta command's flags, parsed (1.6.18's ``_meta_flag_preparse``).

    ``tokens``: the flag tokens as sent (``b"c"``, ``b"N30"``, ``b"Oab"``);
    return flags are written in this order. The rest: b (``key_binary``), q
    (``quiet``), v (``value``), u (``no_update``), I (``invalidate``), N
    (``vivify_ttl``), T (``ttl``), R (``recache_ttl``), F
    (``client_flags``), C (``compare_cas``), M (``mode``, one byte), D
    (``delta``), J (``initial``); None / default when absent."""

    tokens: tuple[bytes, ...] = ()
    key_binary: bool = False
    quiet: bool = False
    value: bool = False
    no_update: bool = False
    invalidate: bool = False
    vivify_ttl: int | None = None
    ttl: int | None = None
    recache_ttl: int | None = None
    client_flags: int = 0
    compare_cas: int | None = None
    mode: bytes = b""
    delta: int = 1
    initial: int = 0


class MetaGet(Message, tag="mc.MetaGet"):
    """mg: ``key`` (base64-decoded when ``flags.key_binary``)."""

    key: bytes
    flags: MetaFlags


class MetaSet(Message, tag="mc.MetaSet"):
    """ms with its data block."""

    key: bytes
    flags: MetaFlags
    data: bytes


class MetaDelete(Message, tag="mc.MetaDelete"):
    key: bytes
    flags: MetaFlags


class MetaArith(Message, tag="mc.MetaArith"):
    key: bytes
    flags: MetaFlags


class MetaNoop(Message, tag="mc.MetaNoop"):
    pass


class MetaDebug(Message, tag="mc.MetaDebug"):
    key: bytes
    key_binary: bool = False


Request = (Get | Store | Delete | Arith | Touch | FlushAll | Version | Stats | Verbosity | CacheMemlimit | Quit
           | Invalid | Disconnect | MetaGet | MetaSet | MetaDelete | MetaArith | MetaNoop | MetaDebug)


# -- replies ---------------------------------------------------------------------------------------


class Line(Message, tag="mc.Line"):
    """One reply line, without its CRLF (``b"STORED"``, ``b"42"``)."""

    text: bytes


class Value(Message, tag="mc.Value"):
    """One item of a get reply."""

    key: bytes
    client_flags: int
    data: bytes
    cas_unique: int = 0


class Values(Message, tag="mc.Values"):
    """A get reply: ``VALUE <key> <flags> <bytes> [<cas unique>]`` and the
    data per item, then ``END``; or, when ``error`` is set, only that line."""

    values: tuple[Value, ...] = ()
    return_cas: bool = False
    error: str = ""


class MetaReply(Message, tag="mc.MetaReply"):
    """A meta reply: ``code`` (``HD``, ``VA``, ``EN``, ``NF``, ``NS``, ``EX``,
    ``MN``), the return flags already rendered (``b"c42"``, ``b"W"``), and
    for ``VA`` the value (``VA <len(value)> <flags>`` then the value)."""

    code: bytes
    flags: tuple[bytes, ...] = ()
    value: bytes | None = None


class StatsReply(Message, tag="mc.StatsReply"):
    """``STAT <name> <value>`` per pair, then ``END``."""

    stats: tuple[tuple[str, str], ...]


class Close(Message, tag="mc.Close"):
    """No bytes: the connection closes (the reply to Quit and Disconnect)."""


Reply = Line | Values | MetaReply | StatsReply | Close


# -- database and invalidation (Nishtala et al. 3.2.1, 4.1) ----------------------------------------
#
# The database the look-aside cache sits in front of (DatabaseNode), its
# commit log as mcsqueal tails it (McsquealNode), and its durable records.
# ``version`` is the commit log sequence number of the write that made a row
# (0: no row); ``seq`` numbers commit log records 1, 2, 3, ... in commit order.


class DbRead(Message, tag="mc.DbRead"):
    """Read one row: answered with a :class:`DbRow`."""

    key: bytes


class DbRow(Message, tag="mc.DbRow"):
    """A row as committed: ``value`` (None: no row) and its ``version``."""

    key: bytes
    value: bytes | None
    version: int


class DbWrite(Message, tag="mc.DbWrite"):
    """Write one row: answered with :class:`DbCommitted` once the commit log
    record is synced to disk (by the master region's database; a replica
    answers :class:`DbNotMaster`). ``remote_marker``: the token this write
    added to the remote marker ``r<key>`` in its region's regional pool
    (section 5: the marker is embedded in the write, and the replica
    region's mcsqueal takes the token out when the record reaches that
    region); empty: none."""

    key: bytes
    value: bytes
    remote_marker: bytes = b""


class DbCommitted(Message, tag="mc.DbCommitted"):
    """The write is durable: the row's new ``version`` (its commit log ``seq``)."""

    key: bytes
    version: int


class CommitRecord(Message, tag="mc.CommitRecord"):
    """One commit log record, on disk (checksummed, :mod:`synod.core.records`)
    and in tail replies: the write of ``value`` to ``key`` as record ``seq``,
    committed at the master database's ``commit_unix_ms``;
    ``remote_marker`` the write's marker token (see :class:`DbWrite`). A
    replica region's database keeps the master's records as they are (same
    ``seq``)."""

    seq: int
    key: bytes
    value: bytes
    commit_unix_ms: int
    remote_marker: bytes = b""


class TailCommitLog(Message, tag="mc.TailCommitLog"):
    """mcsqueal's read of the commit log from an offset: the records from
    ``from_seq`` on, at most ``records_max`` (and at most
    ``COMMIT_LOG_TAIL_RECORDS_MAX``); answered with :class:`CommitLogBatch`."""

    from_seq: int
    records_max: int


class CommitLogBatch(Message, tag="mc.CommitLogBatch"):
    """The records asked for (none: nothing committed from ``from_seq`` on),
    and ``last_seq``, the log's last record."""

    from_seq: int
    records: tuple[CommitRecord, ...]
    last_seq: int


class McsquealCursor(Message, tag="mc.McsquealCursor"):
    """mcsqueal's durable cursor (on its disk): every record up to
    ``acked_seq`` had its deletes acknowledged by every cache endpoint."""

    acked_seq: int


class DbNotMaster(Message, tag="mc.DbNotMaster"):
    """A replica region's database's answer to a :class:`DbWrite`: writes
    go to the master region's database, ``master`` (section 5)."""

    key: bytes
    master: str


DatabaseRequest = DbRead | DbWrite | TailCommitLog
