"""A node's boot count: a small durable counter, one checksummed record.

Systems number their incarnations with it so that ids stay unique across
restarts: the KV server's at-most-once origin (``n1.3``), the cache
server's cas uniques (a lease token of an earlier incarnation must never
match a placeholder of a later one). Each call counts one boot: it reads
the count at ``path`` on the node's disk, writes the count plus one and
syncs it before returning, so a crash right after still never reuses a
number.

A damaged file (checksum mismatch, torn, or not a count) is reported with
``ctx.warn``, kept aside next to it (``<path>.damaged``), and never used:
the count then restarts above every count this node could have reached,
from the node's wall clock in ms (a node boots far less than once per ms).
A file of bare decimal digits (the KV server's format before this module)
is read as the count.
"""

from __future__ import annotations

from synod.core.node import Context
from synod.core.records import pack_record, scan_records

__all__ = ["count_boot"]

DAMAGED_SUFFIX = ".damaged"


def count_boot(ctx: Context, path: str) -> int:
    """Count this boot of the node in the file ``path`` of ``ctx.disk``
    and return the count: 1 on the first boot, then 2, 3, ... (after a
    damaged file, a count above any earlier one; see the module docstring).
    The new count is durable when this returns."""
    raw = ctx.disk.read(path)
    previous = 0
    if raw is not None:
        scan = scan_records(raw)
        if scan.error is None and len(scan.records) == 1 and scan.records[0].isdigit():
            previous = int(scan.records[0])
        elif raw.isdigit() and len(raw) <= 20:
            previous = int(raw)
        else:
            aside = path + DAMAGED_SUFFIX
            ctx.disk.write(aside, raw)
            previous = max(0, int(ctx.unix_ms))
            ctx.warn(f"boot count {path} is damaged ({scan.error or 'not a count'}); kept aside as {aside}; "
                     f"counting on from {previous}", path=path, kept_as=aside)
    boots = previous + 1
    ctx.disk.write(path, pack_record(str(boots).encode()))
    ctx.disk.sync()
    return boots
