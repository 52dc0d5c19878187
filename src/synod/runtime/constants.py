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
    "INBOUND_CONNECTIONS_MAX",
    "NODE_ID_BYTES_MAX",
    "RECONNECT_BACKOFF_MS_MIN",
    "RECONNECT_BACKOFF_MS_MAX",
    "CONNECT_TIMEOUT_MS",
    "EXIT_FLUSH_MS_MAX",
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
# Open inbound connections per node (peers and clients together).
INBOUND_CONNECTIONS_MAX = 1024
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
