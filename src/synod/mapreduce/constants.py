"""Limits and default timings of synod's MapReduce, in one place.

Defaults follow MIT 6.5840 lab 1 where the paper leaves room (a task not
reported within 10 s is given to another worker).
"""

# Coordinator
TASK_TIMEOUT_MS = 10_000          # reassign a task not reported within this
TICK_INTERVAL_MS = 500            # coordinator's housekeeping period
HEARTBEAT_INTERVAL_MS = 1_000     # coordinator pings each known worker (paper section 3.3)
DONE_GRACE_MS = 3_000             # after the job, the coordinator waits this long for workers to hear "exit"
WORKER_RESPONSIVE_MS = 3 * HEARTBEAT_INTERVAL_MS  # a worker not heard this long cannot be counted on to take a task
WAIT_DELAY_MS = 200               # a worker with nothing to do asks again after this
INPUT_POLL_MS = 100               # a coordinator waiting for an input file looks again after this
BACKUP_TASKS_MAX = 64             # backup executions scheduled at most (paper section 3.6)
WORKER_DEATHS_MAX = 1_000         # worker deaths remembered for the job's status (the first ones)
SUCCESS_MARKER = "_SUCCESS"       # written in out_dir once every output is committed (Hadoop's convention)

# Worker
RPC_TIMEOUT_MS = 2_000            # one call to the coordinator
JOIN_CHECK_INTERVAL_MS = 100      # a worker not yet answered by the coordinator looks for _SUCCESS this often
COORDINATOR_UNREACHABLE_MAX = 10  # consecutive failed calls before a worker gives up and exits
FETCH_TIMEOUT_MS = 5_000          # one region chunk fetched from a map worker
FETCH_CHUNK_BYTES_MAX = 4 * 1024 * 1024  # region bytes in one reply (RegionChunk, or all parts of Regions)
FETCH_BATCH_REGIONS_MAX = 1_024   # map tasks named in one FetchRegions call
READ_AHEAD_BYTES = 64 * 1024      # how far past a split's end a map reads to finish its last line

# Job
SPLIT_SIZE_BYTES_DEFAULT = 64 * 1024 * 1024  # the paper's typical split (section 3.1)
SPLIT_RANGES_MAX = 4_096          # file ranges packed into one map task's split (small files)
REDUCES_MAX = 10_000
MAP_TASKS_MAX = 100_000

# Bounds on what a peer may send (checked at the node boundary, synod.mapreduce._validate)
REGION_BYTES_MAX = 1 << 32        # one map task's region for one reduce task
MAP_OUTPUT_BYTES_MAX = 1 << 40    # no region of a map output file lies beyond this (bounds what its index names)
REASON_CHARS_MAX = 1_000          # the reason a FetchFailed gives
WAIT_DELAY_MS_MAX = 60_000        # a WaitTask's delay
SIM_COMPUTE_MS_PER_MB_MAX = 1e9   # JobSpec.sim_compute_ms_per_mb
