"""The master's persistent metadata and its operation log's replay
(Ghemawat et al., SOSP 2003, sections 2.6 and 2.6.3).

:class:`Metadata` is the namespace, each file's chunk handles, each chunk's
version and the next handle: everything the master persists. It changes
only by :meth:`Metadata.apply` of a log record with the next log sequence
number: the master applies a mutation and logs it only if it succeeded
(one that fails changes nothing and takes no lsn), and a restart or a
shadow master replays the log with :meth:`Metadata.replay`, so all of them
reach the same state. A record that does not apply in replay means the log
does not belong to this checkpoint (a bug, or damage the record checksums
did not catch): ValueError.

:meth:`Metadata.checkpoint` is the image after the last applied record; a
restart loads the newest good one and replays the records after its lsn.
"""

from __future__ import annotations

from synod.core.errors import LocalProtocolError
from synod.gfs._chunks import ChunkTable
from synod.gfs._namespace import FileMeta, Namespace, Status
from synod.gfs.constants import CHUNKS_PER_FILE_MAX, REPLICATION_GOAL_MAX
from synod.gfs.messages import (
    AddChunk,
    Checkpoint,
    ConfirmVersion,
    CopyChunk,
    CreateFile,
    DeleteFile,
    FileRecord,
    LogRecord,
    Mkdirs,
    RemoveHidden,
    Rename,
    SetChunkVersion,
    Snapshot,
    Undelete,
)

__all__ = ["Metadata"]


class Metadata:
    """Namespace + chunk table + the lsn of the last applied record."""

    def __init__(self, namespace: Namespace | None = None, chunks: ChunkTable | None = None, lsn: int = 0) -> None:
        self.namespace = Namespace() if namespace is None else namespace
        self.chunks = ChunkTable() if chunks is None else chunks   # an empty table is falsy (len 0)
        self.lsn = lsn   # Invariant: the state is the result of records 1..lsn
        # Invariant: refs[h] is the number of file entries (hidden ones
        # included) whose chunk list holds h, >= 1 for every chunk in the
        # table; a chunk shared with a snapshot has more than one (3.4).
        self.refs: dict[int, int] = {}
        for _, meta in self.namespace.files():
            for handle in meta.chunk_handles:
                self.refs[handle] = self.refs.get(handle, 0) + 1

    def shared(self, handle: int) -> bool:
        """Chunk ``handle`` is shared with a snapshot: it must be copied
        (:class:`CopyChunk`) before a lease for a write is granted (3.4)."""
        return self.refs.get(handle, 0) > 1

    def _check(self, record: CreateFile | AddChunk) -> Status:
        """What the namespace does not check of these two records."""
        if type(record) is CreateFile:
            return Status.OK if 1 <= record.replication <= REPLICATION_GOAL_MAX else Status.BAD_ARGUMENT
        meta = self.namespace.lookup(record.path)
        if meta is None or meta.is_dir or meta.deleted_at_ms is not None:
            return Status.NOT_FOUND
        if self.chunks.get(record.handle) is not None:
            return Status.EXISTS
        if len(meta.chunk_handles) >= CHUNKS_PER_FILE_MAX:
            return Status.FULL
        return Status.OK

    def apply(self, lsn: int, record: LogRecord) -> Status:
        """Apply ``record`` as number ``lsn`` (the next one). Returns its
        outcome: on OK it is applied and ``self.lsn`` is ``lsn``; otherwise
        nothing changed.

        Raises:
            LocalProtocolError: ``lsn`` is not the next one.
        """
        if lsn != self.lsn + 1:
            raise LocalProtocolError(f"record {lsn} applied after {self.lsn}")
        ns = self.namespace
        t = type(record)
        if t is Mkdirs:
            status = ns.mkdirs(record.path)
        elif t is CreateFile:
            status = self._check(record)
            if status == Status.OK:
                status = ns.create_file(record.path, record.replication)
        elif t is DeleteFile:
            status, _ = ns.delete(record.path, record.now_ms)
        elif t is Rename:
            status = ns.rename(record.src, record.dst, record.now_ms)
        elif t is Undelete:
            status = ns.undelete(record.hidden, record.path)
        elif t is RemoveHidden:
            meta = ns.lookup(record.hidden)
            if meta is None or meta.deleted_at_ms is None:
                status = Status.NOT_FOUND
            else:
                for handle in ns.remove_hidden(record.hidden):
                    self._unref(handle)
                status = Status.OK
        elif t is AddChunk:
            status = self._check(record)
            if status == Status.OK:
                self.chunks.add(record.handle)
                meta = ns.lookup(record.path)
                assert meta is not None
                meta.chunk_handles.append(record.handle)
                self.refs[record.handle] = 1
        elif t is Snapshot:
            status, copies = ns.copy_tree(record.src, record.dst)
            for meta in copies:
                for handle in meta.chunk_handles:
                    self.refs[handle] += 1
        elif t is CopyChunk:
            status = self._copy_chunk(record)
        elif t is ConfirmVersion:
            info = self.chunks.get(record.handle)
            if info is None:
                status = Status.NOT_FOUND
            elif not info.confirmed < record.version <= info.version:
                status = Status.BAD_ARGUMENT
            else:
                self.chunks.confirm(record.handle, record.version)
                status = Status.OK
        elif t is SetChunkVersion:
            info = self.chunks.get(record.handle)
            if info is None:
                status = Status.NOT_FOUND
            elif record.version <= info.version:
                status = Status.BAD_ARGUMENT
            else:
                self.chunks.set_version(record.handle, record.version)
                status = Status.OK
        else:
            raise LocalProtocolError(f"not a log record: {t.__name__}")
        if status == Status.OK:
            self.lsn = lsn
        return status

    def _copy_chunk(self, record: CopyChunk) -> Status:
        meta = self.namespace.lookup(record.path)
        if meta is None or meta.is_dir or meta.deleted_at_ms is not None \
                or not 0 <= record.index < len(meta.chunk_handles):
            return Status.NOT_FOUND
        old = meta.chunk_handles[record.index]
        if not self.shared(old):
            return Status.BAD_ARGUMENT   # nothing to copy: the chunk is this file's alone
        if self.chunks.get(record.new_handle) is not None or record.new_handle < self.chunks.next_handle:
            return Status.EXISTS
        info = self.chunks.get(old)
        assert info is not None
        self.chunks.add(record.new_handle, info.version, info.confirmed)
        meta.chunk_handles[record.index] = record.new_handle
        self.refs[record.new_handle] = 1
        self._unref(old)
        return Status.OK

    def _unref(self, handle: int) -> None:
        """A file entry let go of ``handle``; the last one takes it out of the table."""
        left = self.refs[handle] - 1
        if left:
            self.refs[handle] = left
        else:
            del self.refs[handle]
            self.chunks.remove(handle)

    def replay(self, lsn: int, record: LogRecord) -> None:
        """Apply logged record ``lsn``, which applied when it was logged.

        Raises:
            ValueError: it does not apply (the log is not this metadata's).
            LocalProtocolError: ``lsn`` is not the next one.
        """
        status = self.apply(lsn, record)
        if status != Status.OK:
            raise ValueError(f"logged record {lsn} ({type(record).__name__}) does not apply: {status.name}")

    def checkpoint(self) -> Checkpoint:
        """The image after record ``lsn``."""
        entries = tuple(FileRecord(path=p, is_dir=m.is_dir, replication=m.replication,
                                   chunk_handles=tuple(m.chunk_handles), deleted_at_ms=m.deleted_at_ms)
                        for p, m in self.namespace.entries())
        chunks = tuple((h, self.chunks.get(h).version) for h in self.chunks.handles())  # type: ignore[union-attr]
        confirmed = tuple((h, i.confirmed) for h in self.chunks.handles()
                          if (i := self.chunks.get(h)) is not None and i.confirmed != i.version)
        return Checkpoint(lsn=self.lsn, entries=entries, chunks=chunks, next_handle=self.chunks.next_handle,
                          confirmed=confirmed)

    @classmethod
    def restore(cls, cp: Checkpoint) -> Metadata:
        """The metadata of a checkpoint.

        Raises:
            ValueError: the checkpoint is not one (an entry before its parent,
                a chunk of no file or of two, a bad number).
        """
        if cp.lsn < 0 or cp.next_handle < 1:
            raise ValueError("a negative lsn or handle in a checkpoint")
        chunks = ChunkTable()
        for handle, version in cp.chunks:
            if handle < 1 or version < 1 or handle >= cp.next_handle or chunks.get(handle) is not None:
                raise ValueError(f"chunk {handle} (version {version}) is not a chunk of this checkpoint")
            chunks.add(handle, version)
        for handle, version in cp.confirmed:
            info = chunks.get(handle)
            if info is None or not 1 <= version < info.version:
                raise ValueError(f"chunk {handle}: confirmed version {version} is not below its version")
            info.confirmed = version
        chunks.next_handle = cp.next_handle
        ns = Namespace()
        owned: set[int] = set()
        for e in cp.entries:
            if e.is_dir and (e.chunk_handles or e.deleted_at_ms is not None):
                raise ValueError(f"directory {e.path!r} with chunks or a deletion time")
            if len(set(e.chunk_handles)) != len(e.chunk_handles):
                raise ValueError(f"{e.path!r} holds a chunk twice")
            for handle in e.chunk_handles:
                if chunks.get(handle) is None:
                    raise ValueError(f"{e.path!r}: chunk {handle} unknown")
                owned.add(handle)
            ns.restore_entry(e.path, FileMeta(is_dir=e.is_dir, replication=e.replication,
                                              chunk_handles=list(e.chunk_handles), deleted_at_ms=e.deleted_at_ms))
        if len(owned) != len(cp.chunks):
            raise ValueError("a chunk of no file in a checkpoint")
        return cls(ns, chunks, cp.lsn)
