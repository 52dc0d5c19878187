"""The Google File System (Ghemawat, Gobioff, Leung, SOSP 2003), in progress
(issue 13).

What exists: the master's metadata as deterministic, I/O-free parts that
the master node (and its shadows, replaying the same operation log) will
drive:

- :class:`Namespace` and :class:`LockTable` (sections 4.1, 4.4): a lookup
  table of full pathnames with per-name read-write locks taken whole per
  operation, first come first granted; deletion by renaming to a hidden
  name with the deletion time, reclaimed after an interval.
- :class:`ChunkTable` (sections 2.6.2, 3.1, 4.3, 4.5): chunk versions
  (persistent), replica locations learned from chunkserver reports (not
  persistent), leases with a version bump per new lease, stale replicas
  never handed out, the master taking a higher reported version as
  current, re-replication ordered by how far below its goal a chunk is.
- :class:`Metadata` (2.6, 2.6.3): what the master persists, changed only
  by applying operation-log records (:mod:`synod.gfs.messages`) in lsn
  order (a mutation that fails changes nothing and is not logged), with
  checkpoints that a restart or a shadow master loads before replaying the
  records after them. Snapshots (3.4) copy the metadata of a file or a
  tree at once; its files share chunks (reference counts) until a write
  makes a copy first (``CopyChunk``).
- :class:`ChunkStore` (2.5, 5.2): a chunkserver's replicas as plain files
  on ``ctx.disk``, read and written in place, 64 KB blocks each with a
  CRC-32C kept in an append-only record file beside it; every read
  verifies the blocks it touches (:class:`ChunkCorrupt`), and a partial
  overwrite verifies the block it keeps bytes of.
- :func:`place_replicas` and :func:`replica_to_remove` (4.2, 4.3): racks
  first, then recent creations, then utilization.
- The data path's chunkserver state (3.1-3.3): :class:`PushBuffer` (pushed
  data in a bounded LRU until a write uses it or it ages out),
  :class:`SerialOrder` (mutations applied in the primary's serial order on
  every replica), :func:`plan_record_append` (pad and retry on the next
  chunk when a record does not fit; records at most a quarter of a chunk).

Not yet: the master and chunkserver nodes (heartbeats, leases handed out,
re-replication and garbage collection carried out), the operation log on
disk and its shadows, the data path (pipelined pushes, the primary's serial order,
record append), snapshots, the client library, the fsspec filesystem, the
simulator workload and checkers, the CLI, the benchmark.
"""

from __future__ import annotations

from synod.gfs._chunk_store import ChunkCorrupt, ChunkStore
from synod.gfs._chunks import ChunkInfo, ChunkTable, Lease, Report
from synod.gfs._data_path import AppendPlan, PushBuffer, SerialOrder, plan_record_append
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
           "place_replicas", "replica_to_remove", "PushBuffer", "SerialOrder", "AppendPlan", "plan_record_append"]
