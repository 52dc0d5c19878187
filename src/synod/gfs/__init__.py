"""The Google File System (Ghemawat, Gobioff, Leung, SOSP 2003), issue 13.

The nodes: :class:`~synod.gfs.master.MasterNode` (the master, or a shadow
master replaying its operation log, 2.6 and 5.1.3) and
:class:`~synod.gfs.chunkserver.ChunkserverNode` (replicas checksummed by
block, the data path, leases' serial order, record append, 2.5, 3, 5.2).
The client library, :class:`~synod.gfs.client.GfsClient`, is written
against ``ctx`` only: simulated client nodes run it, and so do ordinary
programs through :class:`synod.runtime.driver.Driver` (``synod gfs ...``,
and fsspec's ``gfs://`` in :mod:`synod.gfs.fs`).

The deterministic parts they drive, each tested on its own:

- :class:`Namespace` and :class:`LockTable` (sections 4.1, 4.4): a lookup
  table of full pathnames with per-name read-write locks taken whole per
  operation, first come first granted; deletion by renaming to a hidden
  name with the deletion time, reclaimed after an interval.
- :class:`ChunkTable` (sections 2.6.2, 3.1, 4.3, 4.5): chunk versions and
  the confirmed version (persistent), replica locations learned from
  chunkserver reports (not persistent), leases with a version bump per
  new lease, stale replicas never handed out, re-replication ordered by
  how far below its goal a chunk is.
- :class:`Metadata` (2.6, 2.6.3): what the master persists, changed only
  by applying operation-log records (:mod:`synod.gfs.messages`) in lsn
  order, with checkpoints; snapshots (3.4) share chunks by reference
  count until a write makes a copy first (``CopyChunk``).
- :class:`ChunkStore` (2.5, 5.2): replicas as plain files on ``ctx.disk``,
  64 KB blocks each with a CRC-32C kept in an append-only record file.
- :func:`place_replicas` and :func:`replica_to_remove` (4.2, 4.3).
- :class:`PushBuffer` and :func:`plan_record_append` (3.1-3.3).

docs/gfs.md is the theory of operation by paper section, what is
simplified, and how it is tested.
"""

from __future__ import annotations

from synod.gfs._chunk_store import ChunkCorrupt, ChunkStore
from synod.gfs._chunks import ChunkInfo, ChunkTable, Lease, Report
from synod.gfs._data_path import AppendPlan, PushBuffer, plan_record_append
from synod.gfs._metadata import Metadata
from synod.gfs._namespace import (
    FileMeta,
    LockTable,
    Namespace,
    Status,
    check_path,
    lock_set,
    parent_of,
    snapshot_lock_set,
)
from synod.gfs._placement import ServerInfo, place_replicas, replica_to_remove

__all__ = ["Namespace", "LockTable", "FileMeta", "Status", "check_path", "lock_set", "snapshot_lock_set", "parent_of",
           "ChunkTable", "ChunkInfo", "Lease", "Report", "Metadata", "ChunkStore", "ChunkCorrupt", "ServerInfo",
           "place_replicas", "replica_to_remove", "PushBuffer", "AppendPlan", "plan_record_append"]
