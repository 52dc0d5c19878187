"""Limits and timings of the real runtime (STYLE.md: "put a limit on everything").

Every queue, buffer and retry in :mod:`synod.runtime` is bounded by one of
these; the bound is checked where items are added.
"""

from __future__ import annotations

from synod.core.codec import FRAME_SIZE_BYTES_MAX as _CODEC_FRAME_SIZE_BYTES_MAX

__all__ = [
    "FRAME_HEADER_BYTES",
    "FRAME_SIZE_BYTES_MAX",
    "SEND_QUEUE_MESSAGES_MAX",
    "WRITE_BATCH_FRAMES_MAX",
    "CLIENT_WRITE_BUFFER_BYTES_MAX",
    "CLIENT_WRITE_BUFFERS_BYTES_MAX",
    "CLIENT_WRITE_BUFFER_CHECK_BYTES",
    "PENDING_CONNECTIONS_MAX",
    "CLIENT_CONNECTIONS_MAX",
    "GATEWAY_CONNECTIONS_MAX",
    "GATEWAY_INFLIGHT_REQUESTS_MAX",
    "GATEWAY_OUTPUT_BUFFER_BYTES_MAX",
    "PEER_CONNECTIONS_PER_NODE_MAX",
    "LEARNED_PEERS_MAX",
    "LISTEN_BACKLOG",
    "HANDSHAKE_TIMEOUT_MS",
    "HANDSHAKE_FRAME_BYTES_MAX",
    "CLIENT_IDLE_TIMEOUT_MS",
    "PARTIAL_FRAME_BYTES_MAX",
    "SMALL_FRAME_BYTES_MAX",
    "FRAME_RECEIVE_TIMEOUT_MS_MIN",
    "FRAME_RECEIVE_BYTES_PER_S_MIN",
    "SWEEP_INTERVAL_MS",
    "WARNING_INTERVAL_MS",
    "WARNINGS_PER_INTERVAL_MAX",
    "CLUSTER_KEY_BYTES",
    "OPEN_FILES_WANTED",
    "NODE_ID_BYTES_MAX",
    "RECONNECT_BACKOFF_MS_MIN",
    "RECONNECT_BACKOFF_MS_MAX",
    "CONNECT_TIMEOUT_MS",
    "EXIT_FLUSH_MS_MAX",
    "GROUP_COMMIT_SENDS_MAX",
    "OPEN_APPEND_FILES_MAX",
    "PARENT_CHECK_INTERVAL_MS",
    "CLIENT_INBOX_MESSAGES_MAX",
    "RESPAWNS_MAX",
    "RESPAWN_DELAY_MS",
    "MONITOR_INTERVAL_MS",
    "STOP_TIMEOUT_S",
    "READY_TIMEOUT_S",
    "EXIT_CODE_HANDLER_ERROR",
    "EXIT_CODE_CONFIG_ERROR",
]

# A frame on the wire: 4-byte big-endian payload length, then the payload.
FRAME_HEADER_BYTES = 4
# Default bound on one frame's payload; a cluster config may set a smaller one.
FRAME_SIZE_BYTES_MAX = _CODEC_FRAME_SIZE_BYTES_MAX
# Messages waiting for one peer (queued or held by the delay fault); beyond
# this the newest message is dropped, as a congested network would.
SEND_QUEUE_MESSAGES_MAX = 10_000
# Frames joined into one socket write when a connection's corked frames flush.
WRITE_BATCH_FRAMES_MAX = 1024
# Bytes buffered towards one client connection (replies to non-node callers).
CLIENT_WRITE_BUFFER_BYTES_MAX = 16 * 1024 * 1024
# Node-wide bound on the bytes buffered towards all inbound connections
# (clients that do not read their replies). Checked only once a connection
# holds more than CLIENT_WRITE_BUFFER_CHECK_BYTES, so the common path stays
# O(1); beyond it a reply is dropped, as for a full per-connection buffer.
CLIENT_WRITE_BUFFERS_BYTES_MAX = 256 * 1024 * 1024
CLIENT_WRITE_BUFFER_CHECK_BYTES = 1024 * 1024
# Inbound connections (issue 8 part 4). Three pools with their own limits,
# so a flood of one kind cannot starve another:
# - pending: not yet authenticated (with a cluster key) or not yet identified
#   by a first frame (without one). When the pool is full, the oldest pending
#   connection that has sent nothing (else the oldest) is closed to make room:
#   a flood of idle connections cannot keep a peer or a client out, since a
#   real one sends its hello at once and finishes in a round trip, long
#   before the flood turns the pool over.
PENDING_CONNECTIONS_MAX = 256
# - clients: identified connections whose id is not a configured node; a new
#   one beyond this is refused (closed).
CLIENT_CONNECTIONS_MAX = 1024
# Client-facing protocol ports (synod.runtime.gateway), per port: connections
# beyond this are closed at once (Redis's maxclients default is 10,000).
GATEWAY_CONNECTIONS_MAX = 10_000
# Unanswered requests one connection may have (a pipeline); beyond it the
# gateway stops reading that socket until half have been answered.
GATEWAY_INFLIGHT_REQUESTS_MAX = 1024
# Replies buffered towards one client connection that does not read them;
# beyond it the connection is closed (Redis's client-output-buffer-limit).
GATEWAY_OUTPUT_BUFFER_BYTES_MAX = 64 * 1024 * 1024
# - peers: connections from each configured node (room is always reserved for
#   every configured peer); a new one beyond this closes that peer's oldest
#   (a restarted peer replaces its stale connections).
PEER_CONNECTIONS_PER_NODE_MAX = 4
# The address book: nodes missing from this node's config whose address it
# learned from their authenticated handshake (a server added to a running
# cluster). Full: a new one replaces the least recently announced one that
# holds no connection to this node; if every one does, the new one is not
# learned (it stays a client, answered on its own connections).
LEARNED_PEERS_MAX = 64
# A node process raises its soft open-files limit towards this (the hard
# limit permitting), so the pools above fit with room for files and links.
OPEN_FILES_WANTED = 8192
# Connections the kernel may queue before the node accepts them. asyncio
# also accepts at most this many per loop turn, so it stays well below
# PENDING_CONNECTIONS_MAX: a real connector's hello is read before a flood
# accepted after it can push it out of the pending pool.
LISTEN_BACKLOG = 64
# A pending connection must finish its handshake (TLS, then the key
# challenge-response; or its first frame without a key) within this.
HANDSHAKE_TIMEOUT_MS = 2000.0
# Bound on one frame before a connection is authenticated: only handshake
# messages (ids <= NODE_ID_BYTES_MAX, nonces, MACs) fit.
HANDSHAKE_FRAME_BYTES_MAX = 1024
# A client connection that sends nothing for this long is closed.
CLIENT_IDLE_TIMEOUT_MS = 600_000.0
# Random bytes in a cluster key (HMAC-SHA256 key).
CLUSTER_KEY_BYTES = 32

# Memory for frames being received (issue 8 part 4). A frame's announced
# length is reserved from this node-wide budget when its header arrives and
# the body does not; a frame that does not fit closes its connection.
PARTIAL_FRAME_BYTES_MAX = 256 * 1024 * 1024
# Frames up to this size are not charged to the budget (each connection
# buffers at most one of them at a time), so small messages (heartbeats,
# votes, client requests) always get through while big ones wait their turn.
SMALL_FRAME_BYTES_MAX = 64 * 1024
# A partial frame must complete within FRAME_RECEIVE_TIMEOUT_MS_MIN plus its
# length at FRAME_RECEIVE_BYTES_PER_S_MIN (64 MiB: 10 s + 64 s); a slower
# sender's connection is closed and its reservation returned.
FRAME_RECEIVE_TIMEOUT_MS_MIN = 10_000.0
FRAME_RECEIVE_BYTES_PER_S_MIN = 1024 * 1024
# How often the transport checks the deadlines above.
SWEEP_INTERVAL_MS = 250.0
# Warnings of one kind (a flood) beyond this many per interval are held back
# and counted in one summary line.
WARNING_INTERVAL_MS = 1000.0
WARNINGS_PER_INTERVAL_MAX = 10
# Length of a node or client id in an envelope.
NODE_ID_BYTES_MAX = 256

# Reconnecting to a peer: exponential backoff between these, with jitter.
RECONNECT_BACKOFF_MS_MIN = 20.0
RECONNECT_BACKOFF_MS_MAX = 1000.0
CONNECT_TIMEOUT_MS = 1000.0
# After ctx.exit or SIGTERM: how long the process tries to flush its sends.
EXIT_FLUSH_MS_MAX = 500.0

# FileDisk keeps append handles open for the hottest files (WAL segments).
OPEN_APPEND_FILES_MAX = 64

# Group commit (synod.runtime.host): sends that may wait behind the fsyncs in
# progress. At the limit the loop waits for the fsyncs itself (back-pressure:
# no more input is read until what waits is durable and sent).
GROUP_COMMIT_SENDS_MAX = 65_536

# A node started with --parent-pid exits when that process is gone.
PARENT_CHECK_INTERVAL_MS = 500.0

# Client: messages that arrive while waiting for a different reply.
CLIENT_INBOX_MESSAGES_MAX = 10_000

# Supervisor: restarts of one node after it exited by itself with a non-zero code.
RESPAWNS_MAX = 1000
RESPAWN_DELAY_MS = 50.0
MONITOR_INTERVAL_MS = 20.0
# Supervisor: SIGTERM grace period before SIGKILL, and start-up wait.
STOP_TIMEOUT_S = 5.0
READY_TIMEOUT_S = 20.0

# Process exit codes of `synod node run`.
EXIT_CODE_HANDLER_ERROR = 1  # a handler raised: the node crashed
EXIT_CODE_CONFIG_ERROR = 2  # bad config, unknown id, factory import failed, port taken
