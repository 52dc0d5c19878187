"""GFS's typed records and messages (Ghemawat et al., SOSP 2003).

Messages (Figure 1, sections 2.4-3.4, 4.5, 5.2): a client asks the master
for metadata (``Client*`` requests, answered by :class:`StatusReply`,
:class:`ListReply`, :class:`StatReply`, :class:`LocateReply`,
:class:`LeaseReply`) and moves data with the chunkservers only
(:class:`PushData` along a chain, then :class:`WriteChunk` or
:class:`AppendRecord` to the primary, :class:`ReadChunk` from any
replica). The primary forwards each mutation to the secondaries in its
serial order (:class:`ApplyMutation`). Chunkservers report to the master
in :class:`Heartbeat` calls; the master commands them with
:class:`CreateChunk`, :class:`NewVersion` (a lease's version bump, before
any client hears of the lease), :class:`RevokeLease`, :class:`CloneChunk`
(re-replication) and :class:`CopyChunkLocal` (copy-on-write), each
answered by :class:`Ack`. Shadow masters receive the operation log in
:class:`LogAppend` (acknowledged by :class:`LogAck`) and ask for what they
missed with :class:`LogFetch`.

Log records (2.6.3):
The master's operation log holds one :data:`LogRecord` per metadata
mutation, numbered by a log sequence number (lsn) from 1; a
:class:`Checkpoint` is the whole metadata image after some lsn, so a
restart (or a shadow master) loads the newest good checkpoint and replays
only the records after it. Replica locations are in neither: the master
asks the chunkservers (2.6.2).
"""

from __future__ import annotations

from synod.core import Message

__all__ = ["Mkdirs", "CreateFile", "DeleteFile", "Rename", "Undelete", "RemoveHidden", "AddChunk", "SetChunkVersion",
           "ConfirmVersion", "Snapshot", "CopyChunk", "LogRecord", "FileRecord", "Checkpoint", "LogEntry",
           "ClientMkdirs", "ClientCreate", "ClientDelete", "ClientRename", "ClientUndelete", "ClientSnapshot", "ClientList",
           "ClientStat", "ClientLocate", "ClientLease", "ClientNodes", "NodesReply", "ClientFsck", "ServerHealth",
           "ChunkHealth", "FsckReply",
           "StatusReply", "ListReply", "StatReply", "ChunkLocation",
           "LocateReply", "LeaseReply", "PushData", "WriteChunk", "AppendRecord", "ApplyMutation", "ReadChunk",
           "ReadReply", "ChunkSize", "MutationReply", "Heartbeat", "HeartbeatReply", "CreateChunk", "NewVersion",
           "RevokeLease", "CloneChunk", "CopyChunkLocal", "Ack", "LogAppend", "LogAck", "LogFetch",
           "ClientRequest", "MasterCommand"]


class Mkdirs(Message, tag="gfs.Mkdirs"):
    """Create directory ``path`` and its missing parents."""

    path: str


class CreateFile(Message, tag="gfs.CreateFile"):
    """Create an empty file (and its missing parent directories) whose
    chunks are kept at ``replication`` replicas."""

    path: str
    replication: int


class DeleteFile(Message, tag="gfs.DeleteFile"):
    """Hide a file under a name carrying ``now_ms``, the deletion time (4.4),
    or remove an empty directory."""

    path: str
    now_ms: int


class Rename(Message, tag="gfs.Rename"):
    """Rename file ``src`` to ``dst`` at once, a file at ``dst`` deleted
    (hidden with ``now_ms``) first."""

    src: str
    dst: str
    now_ms: int


class Undelete(Message, tag="gfs.Undelete"):
    """Rename hidden file ``hidden`` back to ``path`` (4.4)."""

    hidden: str
    path: str


class RemoveHidden(Message, tag="gfs.RemoveHidden"):
    """The regular scan drops a hidden file for good; its chunks become orphans (4.4)."""

    hidden: str


class AddChunk(Message, tag="gfs.AddChunk"):
    """Chunk ``handle`` (version 1) is the next chunk of file ``path``."""

    path: str
    handle: int


class SetChunkVersion(Message, tag="gfs.SetChunkVersion"):
    """Chunk ``handle`` is now at ``version`` (a new lease's bump, or a
    higher version a chunkserver reported, 4.5)."""

    handle: int
    version: int


class ConfirmVersion(Message, tag="gfs.ConfirmVersion"):
    """Every replica of the new lease on ``handle`` confirmed ``version``:
    mutations may run under it (3.1, 4.5)."""

    handle: int
    version: int


class Snapshot(Message, tag="gfs.Snapshot"):
    """Copy file or directory tree ``src`` to ``dst`` at once (3.4): the
    copy's files share their chunks with the source's until one is written."""

    src: str
    dst: str


class CopyChunk(Message, tag="gfs.CopyChunk"):
    """Copy-on-write (3.4): chunk number ``index`` of file ``path``, shared
    with a snapshot, becomes the new chunk ``new_handle`` (copied locally by
    each chunkserver holding the old one) before it is written."""

    path: str
    index: int
    new_handle: int


LogRecord = Mkdirs | CreateFile | DeleteFile | Rename | Undelete | RemoveHidden | AddChunk | SetChunkVersion | \
    ConfirmVersion | Snapshot | CopyChunk


class FileRecord(Message, tag="gfs.FileRecord"):
    """One file or directory of a checkpoint."""

    path: str
    is_dir: bool
    replication: int
    chunk_handles: tuple[int, ...]
    deleted_at_ms: int | None


class Checkpoint(Message, tag="gfs.Checkpoint"):
    """The metadata after record ``lsn`` (2.6.3): every namespace entry but
    the root, parents before children; every chunk's (handle, version); the
    next chunk handle to allocate."""

    lsn: int
    entries: tuple[FileRecord, ...]
    chunks: tuple[tuple[int, int], ...]
    next_handle: int
    confirmed: tuple[tuple[int, int], ...] = ()   # (handle, confirmed version) where below the version


class LogEntry(Message, tag="gfs.LogEntry"):
    """One operation-log record on disk and on the wire to the shadows."""

    lsn: int
    record: LogRecord


# -- client -> master (answers carry a Status value, synod.gfs.Status) ---------------------------

class ClientMkdirs(Message, tag="gfs.ClientMkdirs"):
    path: str


class ClientCreate(Message, tag="gfs.ClientCreate"):
    """Create an empty file; its chunks get ``replication`` replicas (0: the master's default)."""

    path: str
    replication: int = 0


class ClientDelete(Message, tag="gfs.ClientDelete"):
    """Delete a file (it is hidden and reclaimed later, 4.4) or an empty directory."""

    path: str


class ClientRename(Message, tag="gfs.ClientRename"):
    """Rename file ``path`` to ``dst`` at once (replacing a file there)."""

    path: str
    dst: str


class ClientUndelete(Message, tag="gfs.ClientUndelete"):
    hidden: str
    path: str


class ClientSnapshot(Message, tag="gfs.ClientSnapshot"):
    """Copy file or tree ``src`` to ``dst`` (3.4)."""

    src: str
    dst: str


class ClientList(Message, tag="gfs.ClientList"):
    path: str
    include_hidden: bool = False


class ClientStat(Message, tag="gfs.ClientStat"):
    path: str


class ClientLocate(Message, tag="gfs.ClientLocate"):
    """The chunks ``first_index`` .. ``first_index + count - 1`` of a file
    (fewer at its end), with their up-to-date replicas (2.4, Figure 1)."""

    path: str
    first_index: int
    count: int


class ClientLease(Message, tag="gfs.ClientLease"):
    """The lease of chunk ``index`` of a file, for a mutation (3.1):
    ``index`` equal to the file's chunk count allocates that chunk; -1
    means the last chunk (allocating the first of an empty file), for
    record append."""

    path: str
    index: int


class ClientNodes(Message, tag="gfs.ClientNodes"):
    """The cell's node addresses, for a client that knows only the master's
    (``gfs://HOST:PORT/path``)."""


class NodesReply(Message, tag="gfs.NodesReply"):
    """Node id -> ``host:port`` of every node of the cell the master knows of."""

    status: int
    nodes: tuple[tuple[str, str], ...] = ()


class ClientFsck(Message, tag="gfs.ClientFsck"):
    """The cell's health, as the master sees it (for ``synod gfs fsck``)."""


class ServerHealth(Message, tag="gfs.ServerHealth"):
    """One live chunkserver: its rack, replicas, bytes, and what its last
    heartbeat reported corrupt (since it joined) and orphaned (now)."""

    server: str
    rack: str
    replicas: int
    used_bytes: int
    corrupt_reported: int
    orphans: int


class ChunkHealth(Message, tag="gfs.ChunkHealth"):
    """A chunk below its goal: ``replicas`` current ones of ``goal`` (0: lost)."""

    path: str
    index: int
    handle: int
    replicas: int
    goal: int


class FsckReply(Message, tag="gfs.FsckReply"):
    status: int
    files: int = 0
    chunks: int = 0
    servers: tuple[ServerHealth, ...] = ()
    under_replicated: tuple[ChunkHealth, ...] = ()
    lsn: int = 0


class StatusReply(Message, tag="gfs.StatusReply"):
    status: int
    detail: str = ""


class ListReply(Message, tag="gfs.ListReply"):
    status: int
    names: tuple[str, ...] = ()


class StatReply(Message, tag="gfs.StatReply"):
    """A file's or directory's metadata; ``chunks`` is a file's chunk count."""

    status: int
    is_dir: bool = False
    replication: int = 0
    chunks: int = 0
    chunk_size_bytes: int = 0


class ChunkLocation(Message, tag="gfs.ChunkLocation"):
    index: int
    handle: int
    version: int
    replicas: tuple[str, ...]


class LocateReply(Message, tag="gfs.LocateReply"):
    """``chunk_count``: the file's chunks in all; ``chunks``: those asked for."""

    status: int
    chunk_count: int = 0
    chunk_size_bytes: int = 0
    chunks: tuple[ChunkLocation, ...] = ()


class LeaseReply(Message, tag="gfs.LeaseReply"):
    """Figure 2 steps 1-2: the primary and the secondaries of chunk ``index``
    (its ``handle`` at ``version``). ``retry_ms`` > 0 with a non-OK status:
    ask again after that long (a lease still held by an unreachable
    primary, a snapshot in progress)."""

    status: int
    index: int = 0
    handle: int = 0
    version: int = 0
    primary: str = ""
    secondaries: tuple[str, ...] = ()
    chunk_size_bytes: int = 0
    retry_ms: int = 0
    detail: str = ""


# -- the data path (client <-> chunkservers, 3.1-3.3) -----------------------------------------

class PushData(Message, tag="gfs.PushData"):
    """Piece ``piece`` of the data a client numbered ``data_id`` (3.2):
    the receiver keeps it and pushes it on to ``chain[0]``, which pushes to
    the rest; the reply (:class:`Ack`) comes when every server of the
    chain has it.

    ``data`` is decoded as a view of the received frame, not copied out of
    it (a chunkserver keeps it, sends it on and writes it: one copy of each
    1 MB piece fewer); built in a process, it may be any bytes-like object."""

    client: str
    data_id: int
    piece: int
    data: memoryview
    chain: tuple[str, ...]


class WriteChunk(Message, tag="gfs.WriteChunk"):
    """Figure 2 step 4: write the pushed data (pieces ``0..pieces-1`` of
    ``data_id``) at ``offset`` of chunk ``handle`` at ``version`` (the
    primary knows its secondaries from the master)."""

    client: str
    data_id: int
    pieces: int
    handle: int
    version: int
    offset: int


class AppendRecord(Message, tag="gfs.AppendRecord"):
    """Record append (3.3): the primary picks the offset."""

    client: str
    data_id: int
    pieces: int
    handle: int
    version: int


class MutationReply(Message, tag="gfs.MutationReply"):
    """A mutation's outcome (Figure 2 step 7). ``status``: a
    :class:`~synod.gfs.chunkserver.MutationStatus` value; ``offset``: where
    a record was appended; ``detail``: why one failed."""

    status: int
    offset: int = -1
    detail: str = ""


class ApplyMutation(Message, tag="gfs.ApplyMutation"):
    """Figure 2 step 5: the primary's mutation number ``serial`` of chunk
    ``handle`` at ``version``: write the pushed data (``pieces`` of
    ``client``'s ``data_id``) at ``offset``; or, with ``pad_bytes`` > 0,
    pad from ``offset`` with that many zero bytes (3.3)."""

    handle: int
    version: int
    serial: int
    offset: int
    client: str
    data_id: int
    pieces: int
    pad_bytes: int = 0


class ReadChunk(Message, tag="gfs.ReadChunk"):
    """At most ``length`` bytes of chunk ``handle`` from ``offset``; the
    replica must be at ``version`` (4.5: a stale one refuses)."""

    handle: int
    version: int
    offset: int
    length: int


class ReadReply(Message, tag="gfs.ReadReply"):
    status: int
    data: bytes = b""
    size_bytes: int = 0
    detail: str = ""


class ChunkSize(Message, tag="gfs.ChunkSize"):
    """How many bytes the replica of ``handle`` at ``version`` holds (a
    file's length is its last chunk's end)."""

    handle: int
    version: int


# -- chunkserver <-> master (2.6.2, 3.1, 4.3-4.5, 5.2) ---------------------------------------

class Heartbeat(Message, tag="gfs.Heartbeat"):
    """A chunkserver's report: every replica it holds as (handle,
    version), the handles it holds a lease on and wants extended (3.1),
    the replicas it found corrupt (5.2), its rack and space."""

    rack: str
    capacity_bytes: int
    used_bytes: int
    chunks: tuple[tuple[int, int], ...]
    extend: tuple[int, ...] = ()
    corrupt: tuple[int, ...] = ()


class HeartbeatReply(Message, tag="gfs.HeartbeatReply"):
    """``delete``: replicas to delete as (handle, version): delete the
    replica if it is below that version (stale: a heartbeat may have
    crossed a version bump), or whatever it is if the version is 0 (an
    orphan, or a replica over the chunk's goal; 4.3-4.5); ``extended``:
    the leases extended from the heartbeat's sending; ``lease_ms``: the
    lease duration."""

    delete: tuple[tuple[int, int], ...] = ()
    extended: tuple[int, ...] = ()
    lease_ms: int = 0
    primary_master: bool = True


class CreateChunk(Message, tag="gfs.CreateChunk"):
    """Make a new, empty replica of ``handle`` at ``version`` (replacing
    any leftover of that handle)."""

    handle: int
    version: int


class NewVersion(Message, tag="gfs.NewVersion"):
    """A new lease (4.5): the replica of ``handle`` at ``previous`` is
    now at ``version``. ``lease_ms`` > 0: this server is the primary for
    that long from receipt (3.1), and forwards every mutation to
    ``secondaries`` (the lease's other replicas). ``grant`` numbers the
    master's grants (increasing, across its restarts): a copy of an old
    NewVersion that the network delayed or duplicated never starts a
    lease again, nor does one whose lease was revoked."""

    handle: int
    previous: int
    version: int
    grant: int
    lease_ms: int = 0
    secondaries: tuple[str, ...] = ()


class RevokeLease(Message, tag="gfs.RevokeLease"):
    """Give up the lease on ``handle`` granted as ``grant`` now (a snapshot,
    3.4; a clone, 4.3); a later grant's lease stays."""

    handle: int
    grant: int


class CloneChunk(Message, tag="gfs.CloneChunk"):
    """Re-replication (4.3): copy ``handle`` at ``version`` from ``source``."""

    handle: int
    version: int
    source: str


class CopyChunkLocal(Message, tag="gfs.CopyChunkLocal"):
    """Copy-on-write (3.4): copy the local replica of ``handle`` to ``new_handle``."""

    handle: int
    new_handle: int


class Ack(Message, tag="gfs.Ack"):
    ok: bool
    detail: str = ""


# -- master -> shadow masters (2.6.3, 5.1.3) ---------------------------------------------------

class LogAppend(Message, tag="gfs.LogAppend"):
    """Operation-log records in lsn order, the first right after the
    receiver's last if it is up to date; ``checkpoint`` when the receiver
    asked from before the master's oldest kept record."""

    entries: tuple[LogEntry, ...]
    checkpoint: Checkpoint | None = None


class LogAck(Message, tag="gfs.LogAck"):
    """The shadow holds the log durably up to ``lsn``."""

    lsn: int


class LogFetch(Message, tag="gfs.LogFetch"):
    """A shadow has the log up to ``lsn``: send what follows."""

    lsn: int


ClientRequest = ClientMkdirs | ClientCreate | ClientDelete | ClientRename | ClientUndelete | ClientSnapshot | ClientList | \
    ClientStat | ClientLocate | ClientLease
MasterCommand = CreateChunk | NewVersion | RevokeLease | CloneChunk | CopyChunkLocal
