"""GFS's limits and defaults (Ghemawat, Gobioff, Leung, SOSP 2003), with units."""

from __future__ import annotations

CHUNK_SIZE_BYTES_DEFAULT = 64 * 1024 * 1024   # section 2.5; smaller in tests
CHUNK_SIZE_BYTES_MIN = 64 * 1024              # one checksum block
BLOCK_SIZE_BYTES = 64 * 1024                  # a checksum block of a chunk (section 5.2)
LEASE_DURATION_MS = 60_000                    # a primary's chunk lease (section 3.1)
REPLICATION_GOAL_DEFAULT = 3                  # replicas per chunk (section 2.2)
REPLICATION_GOAL_MAX = 16
PATH_BYTES_MAX = 4096                         # a full pathname, UTF-8
PATH_COMPONENTS_MAX = 128                     # names in a pathname
NAMESPACE_ENTRIES_MAX = 10_000_000            # files and directories the master holds
CHUNKS_PER_FILE_MAX = 1_000_000
LOCK_WAITERS_MAX = 100_000                    # master operations queued for namespace locks
HIDDEN_PREFIX = ".deleted-"                   # a deleted file's hidden name (section 4.4)
RECORD_APPEND_FRACTION_MAX = 4                # a record append is at most 1/4 of a chunk (section 3.3)
PUSH_BUFFER_BYTES_MAX = 64 * 1024 * 1024      # pushed data a chunkserver holds before it is used (3.2)
PUSH_BUFFER_AGE_MS_MAX = 60_000               # pushed data not used within this is dropped (3.2, "aged out")
PUSH_DATA_BYTES_MAX = 16 * 1024 * 1024        # one push (a client's write is cut into pushes of this size)
HEARTBEAT_INTERVAL_MS = 1_000                 # a chunkserver's heartbeat to the masters (2.3)
CHUNKSERVER_TIMEOUT_MS = 10_000               # no heartbeat this long: the master counts the server lost
LEASE_SAFETY_FRACTION = 0.9                   # a primary trusts its lease for this share of it (clock drift)
DELETED_RETENTION_MS = 3 * 24 * 3600 * 1000   # a hidden file is reclaimed after this (4.4: three days)
MASTER_TICK_MS = 1_000                        # the master's regular scan (4.3-4.4)
CLONES_IN_FLIGHT_MAX = 8                      # re-replications the master runs at once (4.3)
CHECKPOINT_RECORDS = 10_000                   # log records after which the master writes a checkpoint (2.6.3)
RPC_TIMEOUT_MS = 5_000                        # a master's or chunkserver's call to another
PUSH_PIECE_BYTES = 1024 * 1024                # a push is cut into pieces this large, pipelined (3.2)
SERVERS_MAX = 10_000                          # chunkservers a master tracks
LOCK_POLL_MS = 2                              # how often an operation waiting for a lock looks again
LOCK_WAIT_MS_MAX = 5_000                      # an operation not granted its locks this long is told RETRY
PENDING_REPLIES_MAX = 100_000                 # mutations answered once their record is on the shadows
LOG_APPEND_ENTRIES_MAX = 1_000                # records in one LogAppend to a shadow
CORRUPT_REPLICAS_KEPT_MAX = 16                # corrupt replicas a chunkserver keeps aside (5.2)
VERSION_ROUNDS_MAX = 3                        # version bumps tried for one new lease when replicas do not confirm
SCRUB_INTERVAL_MS = 10_000                    # a chunkserver verifies one idle replica whole this often (5.2)
WRITE_QUORUM_DEFAULT = 2                      # current replicas a chunk needs before a lease (synod's, like HDFS's
                                              # minimum replication; the paper writes to whatever replicas there are)
