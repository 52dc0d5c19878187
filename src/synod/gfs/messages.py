"""GFS's typed records (Ghemawat et al., SOSP 2003, section 2.6.3).

The master's operation log holds one :data:`LogRecord` per metadata
mutation, numbered by a log sequence number (lsn) from 1; a
:class:`Checkpoint` is the whole metadata image after some lsn, so a
restart (or a shadow master) loads the newest good checkpoint and replays
only the records after it. Replica locations are in neither: the master
asks the chunkservers (2.6.2).
"""

from __future__ import annotations

from synod.core import Message

__all__ = ["Mkdirs", "CreateFile", "DeleteFile", "Undelete", "RemoveHidden", "AddChunk", "SetChunkVersion",
           "Snapshot", "CopyChunk", "LogRecord", "FileRecord", "Checkpoint"]


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


LogRecord = Mkdirs | CreateFile | DeleteFile | Undelete | RemoveHidden | AddChunk | SetChunkVersion | Snapshot | \
    CopyChunk


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
