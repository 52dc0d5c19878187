"""The master's namespace and its locks (Ghemawat et al., SOSP 2003, sections
4.1 and 4.4).

The namespace is a lookup table from full pathnames to metadata: there is
no per-directory data structure listing the files in it (the paper's
table is prefix-compressed; here a dict, with a children index so that
``list`` need not scan it). A directory is a name in the table like a file;
creating a file creates its missing parent directories.

Locks (4.1): an operation on ``/d1/d2/.../dn/leaf`` takes read locks on
``/d1``, ``/d1/d2``, ..., ``/d1/d2/.../dn`` and a read or a write lock on
the full pathname. A file creation takes a read lock on its directory and
a write lock on its own name: two creations in one directory run
concurrently, while a snapshot of the directory (a write lock on it) and
a creation in it are serialized. An operation takes its whole lock set at
once or waits in line for it (first come, first granted, so a writer is
not starved by a stream of readers); as no operation holds some of its
locks while waiting for others, no deadlock can form.

Deletion (4.4): a deleted file is renamed to a hidden name carrying the
deletion time; the regular scan removes hidden files older than the
interval, and until then the file can be read under its hidden name and
undeleted by renaming it back. Its chunks become orphans when the hidden
file is removed, and are reclaimed by the chunk garbage collection.

Everything here is deterministic and does no I/O: the master applies the
same operation-log records on restart and on shadow masters.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from enum import IntEnum

from synod.core.errors import LocalProtocolError
from synod.gfs.constants import (
    HIDDEN_PREFIX,
    LOCK_WAITERS_MAX,
    NAMESPACE_ENTRIES_MAX,
    PATH_BYTES_MAX,
    PATH_COMPONENTS_MAX,
)

__all__ = ["Namespace", "FileMeta", "Status", "LockTable", "check_path", "lock_set", "snapshot_lock_set", "parent_of"]

ROOT = "/"


class Status(IntEnum):
    """Outcomes of master operations (replies carry them). The last three
    are the master node's: RETRY (ask again after the reply's ``retry_ms``:
    a lock or a lease is held), READ_ONLY (a shadow master refuses a
    mutation, 5.1.3), UNAVAILABLE (no chunkserver can take it now)."""

    OK = 0
    NOT_FOUND = 1
    EXISTS = 2
    NOT_A_DIRECTORY = 3
    IS_A_DIRECTORY = 4
    NOT_EMPTY = 5
    BAD_PATH = 6
    FULL = 7
    BAD_ARGUMENT = 8
    RETRY = 9
    READ_ONLY = 10
    UNAVAILABLE = 11


@dataclass(slots=True)
class FileMeta:
    """A file: its chunk handles in order and its replication goal; a
    directory has ``is_dir`` and no chunks. ``deleted_at_ms`` is set on a
    hidden (deleted) file."""

    is_dir: bool
    replication: int = 0
    chunk_handles: list[int] = field(default_factory=list)
    deleted_at_ms: int | None = None


def check_path(path: object) -> str | None:
    """Why ``path`` is not a valid full pathname, or None: absolute,
    '/'-separated, no empty, '.' or '..' component, no NUL, no trailing '/'
    (but the root), at most ``PATH_BYTES_MAX`` bytes and
    ``PATH_COMPONENTS_MAX`` names."""
    if not isinstance(path, str) or not path.startswith("/"):
        return "not an absolute path"
    if path == ROOT:
        return None
    if len(path.encode("utf-8", errors="replace")) > PATH_BYTES_MAX:
        return f"longer than {PATH_BYTES_MAX} bytes"
    if "\x00" in path:
        return "contains NUL"
    parts = path[1:].split("/")
    if len(parts) > PATH_COMPONENTS_MAX:
        return f"more than {PATH_COMPONENTS_MAX} names"
    if any(p in ("", ".", "..") for p in parts):
        return "an empty, '.' or '..' name"
    return None


def parent_of(path: str) -> str:
    """The directory holding ``path`` (the root's parent is the root)."""
    head = path.rpartition("/")[0]
    return head or ROOT


def _ancestors(path: str) -> list[str]:
    """``/d1``, ``/d1/d2``, ... up to (not including) ``path``; the root is
    not locked (it is never created, deleted or snapshotted)."""
    parts = path[1:].split("/")
    return ["/" + "/".join(parts[:i]) for i in range(1, len(parts))]


def lock_set(path: str, *, write: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(read-locked names, write-locked names) for an operation on ``path``
    (section 4.1): read locks on every ancestor directory, and a read or
    write lock on ``path`` itself."""
    ancestors = tuple(_ancestors(path)) if path != ROOT else ()
    if write:
        return ancestors, (path,)
    return ancestors + (path,), ()


def _clash(reads: tuple[str, ...], writes: tuple[str, ...], reads2: tuple[str, ...], writes2: tuple[str, ...]) -> bool:
    """Whether two lock sets cannot be held at once."""
    return (any(n in writes2 for n in reads) or any(n in writes2 or n in reads2 for n in writes))


def snapshot_lock_set(src: str, dst: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The locks of a snapshot of ``src`` to ``dst`` (4.1's example): read
    locks on the ancestors of both, write locks on both names."""
    reads = tuple(dict.fromkeys(_ancestors(src) + _ancestors(dst)))
    return tuple(n for n in reads if n not in (src, dst)), (src, dst)


class LockTable:
    """Read-write locks on pathnames, taken whole per operation (section 4.1).

    ``acquire(op, reads, writes)`` grants the whole set now if no holder and
    no earlier waiter conflicts with it, else queues the operation (a later
    operation never overtakes an earlier one it conflicts with, so a writer
    is not starved by a stream of readers); ``release(op)`` frees an
    operation's locks (or withdraws it from the line) and returns the
    operations granted in consequence, oldest first.
    """

    def __init__(self, waiters_max: int = LOCK_WAITERS_MAX) -> None:
        self.waiters_max = waiters_max
        self._readers: dict[str, set[int]] = {}
        self._writer: dict[str, int] = {}
        self._held: dict[int, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        # Invariant: an op is in at most one of _held and _waiting.
        self._waiting: OrderedDict[int, tuple[tuple[str, ...], tuple[str, ...]]] = OrderedDict()

    def acquire(self, op: int, reads: tuple[str, ...], writes: tuple[str, ...]) -> bool:
        """True: granted. False: queued (``release`` will name it when granted).

        Raises:
            LocalProtocolError: ``op`` already holds or waits, or the line is
                full (``waiters_max``; the caller refuses the operation first).
        """
        if op in self._held or op in self._waiting:
            raise LocalProtocolError(f"operation {op} already holds or waits for locks")
        writes = tuple(dict.fromkeys(writes))   # a name named twice is locked once, the stronger way
        reads = tuple(n for n in dict.fromkeys(reads) if n not in writes)
        if self._free(reads, writes) and not any(_clash(reads, writes, r, w) for r, w in self._waiting.values()):
            self._grant(op, reads, writes)
            return True
        if len(self._waiting) >= self.waiters_max:
            raise LocalProtocolError("the namespace lock line is full")
        self._waiting[op] = (reads, writes)
        return False

    @property
    def full(self) -> bool:
        return len(self._waiting) >= self.waiters_max

    def holds(self, op: int) -> bool:
        return op in self._held

    def release(self, op: int) -> list[int]:
        """Free ``op``'s locks (or take it out of the line); the operations
        now granted, in the order they asked."""
        if self._waiting.pop(op, None) is not None:
            return self._grant_waiters()
        held = self._held.pop(op, None)
        if held is None:
            return []
        reads, writes = held
        for name in reads:
            readers = self._readers[name]
            readers.discard(op)
            if not readers:
                del self._readers[name]
        for name in writes:
            del self._writer[name]
        return self._grant_waiters()

    def _free(self, reads: tuple[str, ...], writes: tuple[str, ...]) -> bool:
        return (all(name not in self._writer for name in reads)
                and all(name not in self._writer and name not in self._readers for name in writes))

    def _grant(self, op: int, reads: tuple[str, ...], writes: tuple[str, ...]) -> None:
        for name in reads:
            self._readers.setdefault(name, set()).add(op)
        for name in writes:
            assert name not in self._writer
            self._writer[name] = op
        self._held[op] = (reads, writes)

    def _grant_waiters(self) -> list[int]:
        """Grant waiters in order while each is free of held locks and of the
        locks of every earlier waiter still in line."""
        granted: list[int] = []
        blocked_reads: set[str] = set()
        blocked_writes: set[str] = set()
        for op, (reads, writes) in list(self._waiting.items()):
            clash = (any(n in blocked_writes for n in reads)
                     or any(n in blocked_writes or n in blocked_reads for n in writes))
            if not clash and self._free(reads, writes):
                del self._waiting[op]
                self._grant(op, reads, writes)
                granted.append(op)
            else:
                blocked_reads.update(reads)
                blocked_writes.update(writes)
        return granted


class Namespace:
    """The table of full pathnames (sections 4.1, 4.4). Mutations return a
    :class:`Status`; they change nothing unless it is OK."""

    def __init__(self, entries_max: int = NAMESPACE_ENTRIES_MAX) -> None:
        self.entries_max = entries_max
        self._entries: dict[str, FileMeta] = {ROOT: FileMeta(is_dir=True)}
        # Invariant: _children[d] holds the last name of every entry whose parent is d.
        self._children: dict[str, set[str]] = {ROOT: set()}

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, path: str) -> FileMeta | None:
        return self._entries.get(path)

    def list(self, path: str, *, include_hidden: bool = False) -> tuple[Status, list[str]]:
        """The names in directory ``path``, sorted (hidden ones only if asked)."""
        meta = self._entries.get(path)
        if meta is None:
            return Status.NOT_FOUND, []
        if not meta.is_dir:
            return Status.NOT_A_DIRECTORY, []
        names = sorted(self._children[path])
        if not include_hidden:
            names = [n for n in names if not n.startswith(HIDDEN_PREFIX)]
        return Status.OK, names

    def mkdirs(self, path: str) -> Status:
        """Create directory ``path`` and its missing parents (EXISTS if it is
        there already, NOT_A_DIRECTORY if a file is in the way)."""
        if check_path(path) is not None:
            return Status.BAD_PATH
        missing = self._missing_dirs(path)
        if isinstance(missing, Status):
            return missing
        if not missing:
            return Status.EXISTS
        if len(self._entries) + len(missing) > self.entries_max:
            return Status.FULL
        for d in missing:
            self._add(d, FileMeta(is_dir=True))
        return Status.OK

    def create_file(self, path: str, replication: int) -> Status:
        """Create an empty file (and its missing parent directories)."""
        if check_path(path) is not None or path == ROOT:
            return Status.BAD_PATH
        if path in self._entries:
            return Status.EXISTS
        missing = self._missing_dirs(parent_of(path))
        if isinstance(missing, Status):
            return missing
        if len(self._entries) + len(missing) + 1 > self.entries_max:
            return Status.FULL
        for d in missing:
            self._add(d, FileMeta(is_dir=True))
        self._add(path, FileMeta(is_dir=False, replication=replication))
        return Status.OK

    def delete(self, path: str, now_ms: int) -> tuple[Status, str | None]:
        """Delete a file by renaming it to a hidden name with the deletion
        time (section 4.4), or remove an empty directory. Returns the hidden
        name of a file."""
        meta = self._entries.get(path)
        if meta is None or path == ROOT:
            return (Status.NOT_FOUND if meta is None else Status.BAD_PATH), None
        if meta.is_dir:
            if self._children[path]:
                return Status.NOT_EMPTY, None
            self._remove(path)
            return Status.OK, None
        parent, _, name = path.rpartition("/")
        hidden = f"{parent}/{HIDDEN_PREFIX}{now_ms}-{name}"
        n = 0
        while hidden in self._entries:   # deleted twice in one ms
            n += 1
            hidden = f"{parent}/{HIDDEN_PREFIX}{now_ms}.{n}-{name}"
        self._remove(path)
        meta.deleted_at_ms = now_ms
        self._add(hidden, meta)
        return Status.OK, hidden

    def undelete(self, hidden: str, path: str) -> Status:
        """Rename a hidden file back to ``path`` (section 4.4)."""
        meta = self._entries.get(hidden)
        if meta is None or meta.deleted_at_ms is None:
            return Status.NOT_FOUND
        if check_path(path) is not None or parent_of(path) != parent_of(hidden):
            return Status.BAD_PATH
        if path in self._entries:
            return Status.EXISTS
        self._remove(hidden)
        meta.deleted_at_ms = None
        self._add(path, meta)
        return Status.OK

    def rename(self, src: str, dst: str, now_ms: int) -> Status:
        """Rename file ``src`` to ``dst`` at once (MapReduce's output commit
        relies on an atomic rename: Dean & Ghemawat, OSDI 2004, 3.3). A file
        at ``dst`` is deleted first (hidden with ``now_ms``, 4.4); missing
        parents of ``dst`` are made. Directories are not renamed."""
        meta = self._entries.get(src)
        if meta is None or meta.deleted_at_ms is not None:
            return Status.NOT_FOUND
        if meta.is_dir:
            return Status.IS_A_DIRECTORY
        if check_path(dst) is not None or dst == ROOT or dst.rpartition("/")[2].startswith(HIDDEN_PREFIX):
            return Status.BAD_PATH
        if dst == src:
            return Status.OK
        existing = self._entries.get(dst)
        if existing is not None and existing.is_dir:
            return Status.IS_A_DIRECTORY
        missing = self._missing_dirs(parent_of(dst))
        if isinstance(missing, Status):
            return missing
        if len(self._entries) + len(missing) + 1 > self.entries_max:
            return Status.FULL
        if existing is not None:
            self.delete(dst, now_ms)
        for d in missing:
            self._add(d, FileMeta(is_dir=True))
        self._remove(src)
        self._add(dst, meta)
        return Status.OK

    def expired_hidden(self, now_ms: int, interval_ms: int) -> list[str]:
        """Hidden files deleted at least ``interval_ms`` ago, sorted: the
        regular scan's to remove (section 4.4)."""
        return sorted(p for p, m in self._entries.items()
                      if m.deleted_at_ms is not None and now_ms - m.deleted_at_ms >= interval_ms)

    def remove_hidden(self, hidden: str) -> list[int]:
        """Drop a hidden file for good; its chunk handles (now orphans)."""
        meta = self._entries.get(hidden)
        if meta is None or meta.deleted_at_ms is None:
            return []
        self._remove(hidden)
        return list(meta.chunk_handles)

    def copy_tree(self, src: str, dst: str) -> tuple[Status, list[FileMeta]]:
        """Snapshot (3.4): a copy of file or directory tree ``src`` at ``dst``
        (which must not exist; its missing parents are made), hidden files
        left out. Returns the new files, whose chunk handles are the
        source's (the caller counts the shared references)."""
        meta = self._entries.get(src)
        if meta is None or meta.deleted_at_ms is not None:
            return Status.NOT_FOUND, []
        if check_path(dst) is not None or dst == ROOT or src == ROOT or dst == src or dst.startswith(src + "/"):
            return Status.BAD_PATH, []
        if dst in self._entries:
            return Status.EXISTS, []
        missing = self._missing_dirs(parent_of(dst))
        if isinstance(missing, Status):
            return missing, []
        prefix = src + "/"
        tree = [(src, meta)] + [(p, m) for p, m in sorted(self._entries.items(), key=lambda pm: pm[0])
                                if p.startswith(prefix) and m.deleted_at_ms is None
                                and not any(part.startswith(HIDDEN_PREFIX) for part in p[len(prefix):].split("/"))]
        if len(self._entries) + len(missing) + len(tree) > self.entries_max:
            return Status.FULL, []
        for d in missing:
            self._add(d, FileMeta(is_dir=True))
        copies = []
        for p, m in tree:
            copy = FileMeta(is_dir=m.is_dir, replication=m.replication, chunk_handles=list(m.chunk_handles))
            self._add(dst + p[len(src):], copy)
            if not m.is_dir:
                copies.append(copy)
        return Status.OK, copies

    def files(self) -> list[tuple[str, FileMeta]]:
        """Every file (hidden ones included), sorted by path."""
        return sorted(((p, m) for p, m in self._entries.items() if not m.is_dir), key=lambda pm: pm[0])

    def entries(self) -> list[tuple[str, FileMeta]]:
        """Every entry but the root, sorted by path (a parent before its children)."""
        return sorted(((p, m) for p, m in self._entries.items() if p != ROOT), key=lambda pm: pm[0])

    def restore_entry(self, path: str, meta: FileMeta) -> None:
        """Put back an entry of a checkpoint, its parent put back before it.

        Raises:
            ValueError: a bad path, an entry there already, or no parent directory.
        """
        if check_path(path) is not None or path == ROOT:
            raise ValueError(f"bad path {path!r} in a checkpoint")
        if path in self._entries:
            raise ValueError(f"{path!r} twice in a checkpoint")
        parent = self._entries.get(parent_of(path))
        if parent is None or not parent.is_dir:
            raise ValueError(f"{path!r} before its parent directory in a checkpoint")
        if len(self._entries) >= self.entries_max:
            raise ValueError("a checkpoint over the namespace's bound")
        self._add(path, meta)

    # -- helpers -------------------------------------------------------------------
    def _missing_dirs(self, path: str) -> list[str] | Status:
        """The directories to create for ``path`` to be a directory, outermost
        first; NOT_A_DIRECTORY if a file is on the way."""
        missing = []
        d = path
        while d not in self._entries:
            missing.append(d)
            d = parent_of(d)
        if not self._entries[d].is_dir:
            return Status.NOT_A_DIRECTORY
        missing.reverse()
        return missing

    def _add(self, path: str, meta: FileMeta) -> None:
        assert path not in self._entries
        self._entries[path] = meta
        self._children[parent_of(path)].add(path.rpartition("/")[2])
        if meta.is_dir:
            self._children[path] = set()

    def _remove(self, path: str) -> None:
        meta = self._entries.pop(path)
        self._children[parent_of(path)].discard(path.rpartition("/")[2])
        if meta.is_dir:
            assert not self._children[path]
            del self._children[path]
