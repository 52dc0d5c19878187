"""count_boot: a durable boot count in one checksummed record; a damaged
file is reported, kept aside, and the count goes on above any earlier one."""

from __future__ import annotations

import random
from typing import Any

from synod.core import Context, Host
from synod.core.boots import DAMAGED_SUFFIX, count_boot
from synod.core.records import pack_record
from synod.sim.disk import SimDisk

PATH = "sys/boots"


class ClockHost(Host):
    """Enough of a host for a context: a fixed clock, warnings recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.warnings: list[tuple[str, dict[str, Any]]] = []

    def clock_ms(self) -> float:
        return 5_000.0

    def unix_ms(self) -> float:
        return 1_700_000_000_000.0

    def trace(self, event: str, fields: dict[str, Any]) -> None:
        pass

    def warn(self, message: str, fields: dict[str, Any]) -> None:
        self.warnings.append((message, fields))


def _ctx() -> tuple[Context, ClockHost, SimDisk]:
    host = ClockHost()
    disk = SimDisk(random.Random(1))
    return Context(host, "a", ("a",), random.Random(1), disk, None), host, disk


def test_counts_each_boot_durably() -> None:
    ctx, host, disk = _ctx()
    assert [count_boot(ctx, PATH) for _ in range(3)] == [1, 2, 3]
    assert disk.read(PATH) == pack_record(b"3")
    assert disk.sync_requested  # the count is made durable before the node goes on
    assert host.warnings == []


def test_reads_the_old_bare_digits_format() -> None:
    ctx, host, disk = _ctx()
    disk.write(PATH, b"41")
    assert count_boot(ctx, PATH) == 42
    assert host.warnings == []


def test_a_damaged_count_is_kept_aside_warned_and_never_reused() -> None:
    for damage in (lambda b: b[:-1] + bytes([b[-1] ^ 1]), lambda b: b[:5], lambda b: b"\x00garbage"):
        ctx, host, disk = _ctx()
        count_boot(ctx, PATH)
        count_boot(ctx, PATH)
        bad = damage(disk.read(PATH))
        disk.write(PATH, bad)
        boots = count_boot(ctx, PATH)
        assert boots > 2, boots  # above every count reached before
        assert boots == 1_700_000_000_001
        assert disk.read(PATH + DAMAGED_SUFFIX) == bad
        assert len(host.warnings) == 1 and "damaged" in host.warnings[0][0]
        assert count_boot(ctx, PATH) == boots + 1
