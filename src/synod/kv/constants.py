"""Limits and defaults of synod.kv, each with its unit (STYLE.md: "put a
limit on everything").

The RESP limits follow Redis 7's own (src/server.h, src/config.c), so a
client that works against Redis is not refused here, and what Redis refuses
is refused with the same words (see :mod:`synod.kv.protocol`).
"""

from __future__ import annotations

__all__ = [
    "BULK_BYTES_MAX", "MULTIBULK_LEN_MAX", "INLINE_BYTES_MAX", "QUERY_BUFFER_BYTES_MAX",
    "READER_BULK_BYTES_MAX", "READER_AGGREGATE_LEN_MAX", "READER_DEPTH_MAX", "READER_LINE_BYTES_MAX",
    "READER_BUFFER_BYTES_MAX",
]

# --- Requests (server side, RespProtocol) ---

# Largest bulk string argument a client may declare: Redis's proto-max-bulk-len
# (512 MiB). A larger `$<len>` is refused as soon as its header line arrives.
BULK_BYTES_MAX = 512 * 1024 * 1024

# Most arguments one multibulk request may declare (`*<n>`). Redis 2.6-6.2
# refused n > 1024*1024 ("invalid multibulk length"); Redis 7 allows up to
# INT_MAX but never preallocates. We keep the old bound: no command needs more.
MULTIBULK_LEN_MAX = 1024 * 1024

# Longest inline command line, and longest `*<n>` / `$<len>` header line,
# in bytes: Redis's PROTO_INLINE_MAX_SIZE (64 KiB).
INLINE_BYTES_MAX = 64 * 1024

# Most bytes one connection may have received that are not yet a whole
# command: Redis's client-query-buffer-limit (1 GiB).
QUERY_BUFFER_BYTES_MAX = 1024 * 1024 * 1024

# --- Replies (client side, RespReader) ---

# Largest bulk / verbatim / blob-error string a reply may declare, in bytes
# (the server's proto-max-bulk-len).
READER_BULK_BYTES_MAX = 512 * 1024 * 1024

# Most elements one aggregate reply may declare (`*n`, `~n`, `>n`; `%n` and
# `|n` count pairs). Nothing is preallocated from it; it bounds the count.
READER_AGGREGATE_LEN_MAX = 2**32

# Deepest nesting of aggregate replies (Redis's replies nest a few levels:
# COMMAND DOCS about 6; a Lua table can nest deeper).
READER_DEPTH_MAX = 128

# Longest line-typed reply (`+`, `-`, `:`, `,`, `(`, `#`, `_`) and longest
# length header, in bytes.
READER_LINE_BYTES_MAX = 64 * 1024

# Most bytes the reader may hold that are not yet a whole top-level reply.
READER_BUFFER_BYTES_MAX = 1024 * 1024 * 1024
