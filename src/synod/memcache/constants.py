"""Limits and defaults of synod.memcache, each with its unit (STYLE.md: "put a
limit on everything").

The protocol limits are memcached 1.6.18's own (``memcached.h``,
``proto_text.c``), so a client that works against memcached is not refused
here, and what memcached refuses is refused with the same words.
"""

from __future__ import annotations

__all__ = [
    "KEY_BYTES_MAX", "LINE_BYTES_MAX", "GET_LINE_BYTES_MAX", "TOKENS_MAX", "META_TOKENS_MAX",
    "OPAQUE_BYTES_MAX", "ITEM_SIZE_BYTES_MAX", "ITEM_HEADER_BYTES", "MEMORY_LIMIT_MB", "RELATIVE_EXPTIME_S_MAX",
    "LEASE_INTERVAL_MS", "VERSION", "VERBOSITY_MAX", "MEMLIMIT_MB_MIN", "MEMLIMIT_MB_MAX", "SLAB_GROWTH_FACTOR",
    "SLAB_CHUNK_BYTES_MIN", "SLAB_CHUNK_BYTES_MAX", "SLAB_CHUNK_ALIGN_BYTES", "REQUESTS_REMEMBERED_MAX",
    "GET_REPLY_BYTES_MAX", "ROUTER_REQUESTS_INFLIGHT_MAX", "ROUTER_CLIENT_REQUESTS_INFLIGHT_MAX",
    "ROUTER_MULTIGET_KEYS_MAX", "ROUTER_POOLS_MAX", "ROUTER_POOL_SERVERS_MAX", "ROUTER_ROUTES_MAX",
    "ROUTER_SERVER_TIMEOUT_MS", "ROUTER_TIMEOUTS_UNTIL_DOWN", "ROUTER_GUTTER_TTL_S", "ROUTER_DOWN_PROBE_INTERVAL_MS",
    "ROUTER_MISSED_KEYS_MAX",
]

# --- Protocol (MemcacheProtocol) ---

# Longest key, bytes (KEY_MAX_LENGTH). Longer: "CLIENT_ERROR bad command line format".
KEY_BYTES_MAX = 250

# A command line without its "\n" longer than this closes the connection, as
# memcached's try_read_command_ascii does (2048 bytes), unless it is a get.
LINE_BYTES_MAX = 2048

# A get / gets / gat / gats line may be longer (memcached lets a multiget grow
# its read buffer without bound); we bound it: beyond this the connection closes.
GET_LINE_BYTES_MAX = 1024 * 1024

# Tokens the command tokenizer splits off at a time, the terminal one included
# (MAX_TOKENS); a get takes the rest of its keys in further rounds.
TOKENS_MAX = 24

# Most tokens (the terminal one included) a meta command may have
# (MFLAG_MAX_OPT_LENGTH): "CLIENT_ERROR options flags are too long" beyond.
META_TOKENS_MAX = 20

# Longest opaque token (O flag), bytes, its 'O' included (MFLAG_MAX_OPAQUE_LENGTH).
OPAQUE_BYTES_MAX = 32

# --- Items and memory (Cache) ---

# Largest item, header included (memcached's -I, item_size_max: 1 MiB).
# A value that does not fit: "SERVER_ERROR object too large for cache".
ITEM_SIZE_BYTES_MAX = 1024 * 1024

# An item's bytes besides its key and value: memcached's struct _stritem (48
# bytes on 64-bit) plus the 8-byte cas unique; the key's NUL (1), the value's
# CRLF (2) and 4 bytes of client flags when non-zero are added per item
# (ITEM_ntotal). Counted against the memory limit and in the `bytes` stat.
ITEM_HEADER_BYTES = 48 + 8

# Largest reply to one get / gets / gat / gats, bytes: a multiget naming a
# large item again and again would otherwise build a reply of any size.
# Beyond it: "SERVER_ERROR out of memory writing get response" (memcached's
# answer when it cannot allocate the response).
GET_REPLY_BYTES_MAX = 32 * 1024 * 1024

# Memory limit, MiB (memcached's -m default).
MEMORY_LIMIT_MB = 64

# An exptime up to this many seconds is relative; above it, a Unix time
# (REALTIME_MAXDELTA, 30 days).
RELATIVE_EXPTIME_S_MAX = 60 * 60 * 24 * 30

# Nishtala et al. 3.2.1: a lease token is issued at most once per key per
# this interval; a placeholder whose winner has not set it by then lets the
# next reader win again (memcached itself waits for the placeholder's TTL).
LEASE_INTERVAL_MS = 10_000

# The version we answer to "version" and in stats: the memcached release
# whose protocol this one follows byte for byte (clients gate meta support
# on it).
VERSION = "1.6.18"

# memcached's MAX_VERBOSITY_LEVEL.
VERBOSITY_MAX = 2

# cache_memlimit bounds, MiB (memcached's).
MEMLIMIT_MB_MIN = 8
MEMLIMIT_MB_MAX = 1_000_000_000

# memcached's default slab classes (slabs_init: -f 1.25, -n 48, 512 KiB chunk
# max): only used to report `cls` in `me` the way memcached does.
SLAB_GROWTH_FACTOR = 1.25
SLAB_CHUNK_BYTES_MIN = 48 + 48
SLAB_CHUNK_BYTES_MAX = 512 * 1024
SLAB_CHUNK_ALIGN_BYTES = 8

# --- Node ---

# Requests (client, correlation) from non-gateway clients remembered, to drop
# a copy the simulator's network delivers twice.
REQUESTS_REMEMBERED_MAX = 4096

# -- router (RouterNode: mcrouter's role, Nishtala et al. 3, 3.3) --

# Requests a router holds unanswered, over all clients and per client: one
# more is answered "SERVER_ERROR router busy" at once (the gateway already
# stops reading a connection with too many unanswered requests).
ROUTER_REQUESTS_INFLIGHT_MAX = 65_536
ROUTER_CLIENT_REQUESTS_INFLIGHT_MAX = 1_024

# Keys in one get / gets / gat / gats through the router; more: "SERVER_ERROR
# too many keys" (memcached has no such limit; a router fans them out).
ROUTER_MULTIGET_KEYS_MAX = 10_000

# Pools, servers per pool and prefix routes a router is configured with.
ROUTER_POOLS_MAX = 64
ROUTER_POOL_SERVERS_MAX = 1_024
ROUTER_ROUTES_MAX = 1_024

# mcrouter's defaults: --server-timeout (1 s), --timeouts-until-tko (3), the
# failover exptime of sets into the gutter (10 s), and a probe of a server
# marked down (TKO) this often.
ROUTER_SERVER_TIMEOUT_MS = 1_000
ROUTER_TIMEOUTS_UNTIL_DOWN = 3
ROUTER_GUTTER_TTL_S = 10
ROUTER_DOWN_PROBE_INTERVAL_MS = 1_000

# Keys whose writes one server may have missed (sent to the gutter, or timed
# out), deleted there before it is marked up again; beyond, it is owed one
# flush_all instead (mcrouter replays such deletes from its async log).
ROUTER_MISSED_KEYS_MAX = 10_000

# -- database (DatabaseNode, McsquealNode, WebServerNode: Nishtala et al. 3.2.1, 4.1) --

__all__ += [
    "COMMIT_LOG_TAIL_RECORDS_MAX", "DB_REQUESTS_REMEMBERED_MAX", "DB_READ_ATTEMPTS_MAX", "MCSQUEAL_BATCH_MAX",
    "MCSQUEAL_BATCH_DELAY_MS", "MCSQUEAL_RETRY_MS", "MCSQUEAL_TAIL_TIMEOUT_MS", "WEB_REQUEST_TIMEOUT_MS",
    "WEB_LEASE_RETRY_MS", "WEB_LEASE_RETRIES_MAX", "WEB_LEASE_VIVIFY_TTL_S", "WEB_HISTORY_OPS_MAX",
]

# Commit-log records one TailCommitLog reply carries at most (mcsqueal reads
# the log from an offset, this many records at a time).
COMMIT_LOG_TAIL_RECORDS_MAX = 1_024

# Requests (client, correlation) the database remembers, to apply a write the
# simulator's network delivers twice only once.
DB_REQUESTS_REMEMBERED_MAX = 4_096

# Reads of the commit log on recovery while a checksum fails (a transient
# read fault passes; corruption at rest does not).
DB_READ_ATTEMPTS_MAX = 3

# mcsqueal: keys in one batch of deletes (the records of one tail read), and
# how long it waits before tailing again when the log had nothing new: the
# batching delay (4.1: deletes are batched into fewer packets).
MCSQUEAL_BATCH_MAX = 64
MCSQUEAL_BATCH_DELAY_MS = 5

# mcsqueal re-sends the unacknowledged deletes of a batch this often (at
# least once: 4.1), and a tail request unanswered this long.
MCSQUEAL_RETRY_MS = 50
MCSQUEAL_TAIL_TIMEOUT_MS = 100

# Web server (look-aside client): a cache or database request unanswered this
# long has failed; a reader told to wait (Z, another holds the lease) retries
# this often, at most this many times (3.2.1: "wait a short time and retry").
WEB_REQUEST_TIMEOUT_MS = 200
WEB_LEASE_RETRY_MS = 10
WEB_LEASE_RETRIES_MAX = 50

# The TTL of the placeholder a lease miss creates (mg N<ttl>), seconds.
WEB_LEASE_VIVIFY_TTL_S = 30

# Operations a look-aside history records (reads and writes); beyond, they
# are counted but not kept.
WEB_HISTORY_OPS_MAX = 1_000_000

# -- regions (replica databases, log shipping, remote markers: Nishtala et al. 4.2, 5) --

__all__ += [
    "LOG_SHIPPING_INTERVAL_MS", "LOG_SHIPPING_RECORDS_MAX", "REMOTE_MARKER_TTL_S", "REMOTE_MARKER_PREFIX",
    "WEB_DELETE_ATTEMPTS_MAX", "WEB_MARKER_ATTEMPTS_MAX", "REGIONS_MAX",
]

# A replica region's database pulls the master's commit log this often when
# it has caught up (at once again while a pull comes back full), at most this
# many records a pull: with the network's delay, the replication lag.
LOG_SHIPPING_INTERVAL_MS = 100
LOG_SHIPPING_RECORDS_MAX = 256

# A remote marker r<key> in a replica region's regional pool (section 5):
# its TTL, seconds (mcsqueal deletes it when the replicated write arrives;
# the TTL only bounds a marker whose write never committed), and its prefix.
REMOTE_MARKER_TTL_S = 60
REMOTE_MARKER_PREFIX = b"r"

# A web server's delete after its write is sent this many times at most
# while the cache does not answer (deletes are idempotent): 8 x 200 ms
# outlasts the simulator's 800 ms partitions and 400 ms restarts, so the
# writer does not read its old value back (4.1: read-after-write).
WEB_DELETE_ATTEMPTS_MAX = 8

# A web server's tries to add its token to a remote marker (append, else add:
# each refused only when another writer created or removed the marker meanwhile).
WEB_MARKER_ATTEMPTS_MAX = 4

# Regions in one simulated deployment (one master, the rest replicas).
REGIONS_MAX = 8

# Distinct (command, flags) lines whose parsed MetaFlags a web server keeps
# (webclient.meta_flags: lines carrying a lease token are never cached).
META_FLAGS_CACHED_MAX = 1024

# -- cold-cluster warmup (Nishtala et al. 4.3) --

__all__ += ["HOLD_OFF_KEYS_MAX", "HOLD_OFF_MS"]

# A cache server with a hold-off
# remembers this many recently deleted keys (the oldest forgotten first), and
# the paper's hold-off is two seconds.
HOLD_OFF_KEYS_MAX = 100_000
HOLD_OFF_MS = 2_000
