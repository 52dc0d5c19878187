"""VMware FT as real processes (issue 15 section 3): a primary and a backup
on 127.0.0.1 running synod's RV32IM programs, the primary killed with
SIGKILL or stopped with SIGSTOP mid-run, or the logging channel cut; the
backup goes live and the program's output, as a client sees it, is whole
and equal to a run without faults. Every wait has a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from synod.ft.messages import GetStatus, Status
from synod.harness.ft import reference_run
from synod.harness.ft_real import Console, pair_spec
from synod.runtime.cluster import LocalCluster
from synod.runtime.config import write_config

pytestmark = pytest.mark.timeout(120)

ECHO_INPUT = [f"line {i} of the console input\n".encode() for i in range(200)]


@contextmanager
def _pair(tmp_path: Path, program: str, **options: Any) -> Iterator[LocalCluster]:
    _, path = write_config(pair_spec(tmp_path, program=program, **options))
    with LocalCluster(path, respawn=True) as cl:
        cl.start()
        yield cl


def _status(cl: LocalCluster, nid: str) -> Status | None:
    try:
        reply = cl.call(nid, GetStatus(), 1.0)
    except OSError:
        return None
    return reply if isinstance(reply, Status) else None


def _wait(pred: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def _run_until(console: Console, pred: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():
        assert time.monotonic() < deadline, "the program made no progress"
        console.run(0.1)


def test_the_primary_killed_with_sigkill_mid_run_the_backup_goes_live_and_the_output_is_whole(tmp_path: Path) -> None:
    with _pair(tmp_path, "primes") as cl:
        _wait(lambda: (s := _status(cl, "p2")) is not None and s.role == "backup", 10, "p2 to become the backup")
        console = Console(cl)
        _run_until(console, lambda: len(console.outputs) >= 2, 30)
        assert console.live == "p1"
        cl.kill("p1")
        assert console.run(60) == 0
        assert console.live == "p2" and console.failovers == 1
        assert console.text() == reference_run("primes", [])[0]
        assert sorted(console.outputs) == list(range(len(console.outputs)))
        # started again (a killed node is not respawned), it follows the new primary as its backup
        cl.restart("p1")
        _wait(lambda: (s := _status(cl, "p1")) is not None and s.role == "backup", 20, "p1 back as the backup")


def test_console_input_survives_a_sigkill_of_the_primary_between_inputs(tmp_path: Path) -> None:
    with _pair(tmp_path, "echo") as cl:
        _wait(lambda: (s := _status(cl, "p2")) is not None and s.role == "backup", 10, "p2 to become the backup")
        console = Console(cl)
        console.feed(b"".join(ECHO_INPUT[:100]))
        _run_until(console, lambda: console.acked >= 1 and len(console.outputs) >= 1, 30)
        cl.kill("p1")
        console.feed(b"".join(ECHO_INPUT[100:]), eof=True)
        assert console.run(60) == 0
        assert console.live == "p2"
        assert console.text() == reference_run("echo", ECHO_INPUT)[0]


def test_a_primary_stopped_with_sigstop_halts_when_resumed_and_never_two_are_live(tmp_path: Path) -> None:
    """2.3: the backup wins the test-and-set while the primary is stopped;
    resumed, the old primary asks the storage too, loses, and halts (its
    process exits and is started again as the backup)."""
    with _pair(tmp_path, "primes", failure_timeout_ms=300.0) as cl:
        _wait(lambda: (s := _status(cl, "p2")) is not None and s.role == "backup", 10, "p2 to become the backup")
        console = Console(cl)
        _run_until(console, lambda: len(console.outputs) >= 1, 30)
        cl.pause("p1")
        _wait(lambda: (s := _status(cl, "p2")) is not None and s.role in ("alone", "primary"), 10, "p2 to go live")
        cl.resume("p1")
        assert console.run(60) == 0
        assert console.text() == reference_run("primes", [])[0]
        _wait(lambda: 75 in cl.exit_codes("p1"), 10, "p1 to halt (exit 75)")
        _wait(lambda: (s := _status(cl, "p1")) is not None and s.role == "backup", 20, "p1 back as the backup")


def test_a_cut_logging_channel_leaves_one_live_replica_and_the_output_whole(tmp_path: Path) -> None:
    with _pair(tmp_path, "primes", failure_timeout_ms=300.0) as cl:
        _wait(lambda: (s := _status(cl, "p2")) is not None and s.role == "backup", 10, "p2 to become the backup")
        console = Console(cl)
        _run_until(console, lambda: len(console.outputs) >= 1, 30)
        cl.partition_one_way(["p1"], ["p2"])      # (the storage still reaches both)
        cl.partition_one_way(["p2"], ["p1"])
        _wait(lambda: any(75 in cl.exit_codes(n) for n in ("p1", "p2")), 15, "one replica to lose the test-and-set")
        cl.heal()
        assert console.run(60) == 0
        assert console.text() == reference_run("primes", [])[0]


def test_crash_at_instret_kills_the_primary_at_that_instruction(tmp_path: Path) -> None:
    with _pair(tmp_path, "primes", crash_at_instret=2_000_000) as cl:
        console = Console(cl)
        assert console.run(60) == 0
        assert 137 in cl.exit_codes("p1")
        assert console.live == "p2"
        assert console.text() == reference_run("primes", [])[0]


def test_network_packets_survive_a_sigkill_of_the_primary(tmp_path: Path) -> None:
    packets = [f"packet {i}".encode() for i in range(60)]
    with _pair(tmp_path, "netecho") as cl:
        _wait(lambda: (s := _status(cl, "p2")) is not None and s.role == "backup", 10, "p2 to become the backup")
        console = Console(cl)
        console.feed_packets(packets[:30])
        _run_until(console, lambda: len(console.packets()) >= 5, 30)
        cl.kill("p1")
        console.feed_packets(packets[30:], end=True)
        assert console.run(60) == 0
        want = reference_run("netecho", packets)
        assert console.packets() == list(want.packets) == [p[::-1] for p in packets]
        assert console.text() == want.console == b"packets=60\n"
