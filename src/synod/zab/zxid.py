"""ZooKeeper's transaction ids: a zxid is one 64-bit number, the epoch in
the high 32 bits and a counter in the low 32 (ZooKeeper's ``ZxidUtils``),
so comparing zxids compares (epoch, counter) pairs."""

from __future__ import annotations

__all__ = ["make_zxid", "epoch_of", "counter_of", "zxid_str", "COUNTER_MAX", "EPOCH_MAX"]

COUNTER_MAX = (1 << 32) - 1
EPOCH_MAX = (1 << 31) - 1


def make_zxid(epoch: int, counter: int) -> int:
    """The zxid of ``counter`` in ``epoch`` (both within 32 bits)."""
    return (epoch << 32) | counter


def epoch_of(zxid: int) -> int:
    return zxid >> 32


def counter_of(zxid: int) -> int:
    return zxid & COUNTER_MAX


def zxid_str(zxid: int) -> str:
    """``0x<hex>`` as ZooKeeper prints zxids, with (epoch, counter)."""
    return f"0x{zxid:x}({epoch_of(zxid)},{counter_of(zxid)})"
