"""Limits and default timings of synod's Raft, in one place.

Times are in logical ticks (``Raft.tick()``); the node adapter turns a tick
into ``TICK_INTERVAL_MS`` of its clock. Defaults follow MIT 6.5840 Lab 3's
bounds: at most ten heartbeats a second, a new leader within five seconds.
"""

TICK_INTERVAL_MS = 20              # one Raft tick, in the adapter's clock
HEARTBEAT_TICKS = 5                # leader heartbeat period (100 ms)
ELECTION_TICKS = 15                # T: election timeout drawn from [T, 2T) ticks (300-600 ms)

INFLIGHT_MESSAGES_MAX = 64         # AppendEntries in flight per follower (pipelining window)
MESSAGE_ENTRIES_BYTES_MAX = 64 * 1024   # payload bytes of entries in one AppendEntries
MESSAGE_ENTRIES_MAX = 256          # entries in one AppendEntries
SNAPSHOT_CHUNK_BYTES = 16 * 1024   # bytes of snapshot data in one InstallSnapshot
COMMITTED_ENTRIES_MAX = 1024       # entries handed out for apply in one Ready
COMMIT_PERSIST_INTERVAL_ENTRIES = 4096  # a commit index alone is written once it moved this far (raft/_storage.py)
PROPOSALS_PENDING_MAX = 4096       # uncommitted entries a leader accepts before refusing proposals
READS_PENDING_MAX = 4096           # ReadIndex requests waiting for a quorum
LEASE_ROUNDS_MAX = 64              # heartbeat rounds awaiting a quorum's ack for the lease (thesis 6.4.1)
READ_CTX_BYTES_MAX = 256           # size of one ReadIndex context
LEARNER_LAG_ENTRIES_MAX = 8        # a learner this close to the leader's last index may be promoted (thesis 4.2.1)

# Bounds on what a peer may send (checked at the node boundary, synod.raft._validate).
TERM_MAX = 1 << 62                 # a term or index above this could overflow the WAL's 64-bit fields
INDEX_MAX = 1 << 62
READ_SEQ_MAX = 1 << 62             # ReadIndex round numbers
SNAPSHOT_BYTES_MAX = 1 << 30       # one snapshot being received, in bytes (chunks are assembled in memory)
