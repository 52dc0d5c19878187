"""Primary/backup replication by deterministic replay under faults (issue 15
sections 2-3; Scales et al. 2010): seeded runs of synod.harness.ft with
its checkers, the unsafe options caught, a run replayed exactly, and the
paper's mechanisms one at a time (going live, the output rule, restoring
redundancy, execution lag)."""

from __future__ import annotations

from typing import Any

import pytest
from tests.conftest import ci_seeds

from synod.core import Node
from synod.ft.machine import BlockReadComplete
from synod.ft.messages import Attach, ConsoleIn, InputAck, LogEntry, Output
from synod.ft.node import LISTENERS_MAX, UNSAFE_OPTIONS, FtConfig, FtNode, StorageNode
from synod.ft.programs import PROGRAMS, disk_image, program_image
from synod.harness.ft import reference_run, run_ft
from synod.sim import Simulator, Tracer


def _failures(seeds: range, **options: Any) -> list[str]:
    out = []
    for seed in seeds:
        r = run_ft(seed, **options)
        bad = [f"{v.checker}: {v.summary}" for v in r.verdicts if v.status == "illegal"]
        if bad:
            out.append(f"seed {seed}: {bad}\n  replay: {r.replay}")
    return out


@pytest.mark.parametrize("program", [p for p in PROGRAMS if p != "spew"])   # (spew: 100,001 outputs, the benchmark's)
def test_the_guarantees_hold_under_crashes_partitions_pauses_and_a_lossy_channel(program: str) -> None:
    """Section 2: outputs consistent and complete, the fault-free output
    (echo, primes, netecho), one live primary, equal state hashes."""
    seeds = {"disk": max(3, ci_seeds(20) // 4), "ticks": max(3, ci_seeds(20) // 4)}.get(program, ci_seeds(20))
    bad = _failures(range(1, seeds + 1), program=program)
    assert not bad, "\n".join(bad)


def test_faults_really_happen_and_the_backup_really_goes_live() -> None:
    r = run_ft(1)
    assert sum(r.faults.values()) >= 3, r.faults
    summaries = {v.checker: v.summary for v in r.verdicts}
    assert "generations" in summaries["one-live-primary"]
    assert not summaries["one-live-primary"].startswith("1 generations")      # at least one failover
    assert not summaries["state-hashes"].startswith("0 compared")


@pytest.mark.parametrize(("unsafe", "program"), [("release-output-early", "reads"), ("skip-test-and-set", "echo")])
def test_each_unsafe_option_is_caught_within_a_few_seeds(unsafe: str, program: str) -> None:
    """release-output-early: output leaves before the backup has the log;
    skip-test-and-set: both sides go live after a partition."""
    assert unsafe in UNSAFE_OPTIONS
    for seed in range(1, 21):
        r = run_ft(seed, program=program, unsafe=unsafe)
        if any(v.status == "illegal" for v in r.verdicts):
            assert f"--seed {seed}" in r.replay and f"--unsafe {unsafe}" in r.replay
            return
    pytest.fail(f"--unsafe {unsafe} was not caught in 20 seeds")


def test_a_seed_replays_to_the_same_trace() -> None:
    traces = []
    for _ in range(2):
        tracer = Tracer(keep=True)
        run_ft(5, program="reads", tracer=tracer)
        traces.append(tracer.lines)
    assert traces[0] == traces[1] and len(traces[0]) > 1000


# -- the mechanisms, one at a time -----------------------------------------------------------------------------


class _Console(Node):
    def __init__(self) -> None:
        self.outputs: dict[int, Output] = {}
        self.copies = 0
        self.acked = 0

    def on_message(self, ctx: Any, src: str, msg: Any) -> None:
        if isinstance(msg, Output):
            self.copies += msg.index in self.outputs
            self.outputs.setdefault(msg.index, msg)
        elif isinstance(msg, InputAck):
            self.acked = max(self.acked, msg.input_seq)


def _pair(program: str = "primes", seed: int = 1, disk: bytes = b"", **config: Any) -> tuple[Simulator, _Console]:
    sim = Simulator(seed)
    image = program_image(program)
    sim.add_node("storage", StorageNode)
    for nid, peer in (("p1", "p2"), ("p2", "p1")):
        cfg = FtConfig(peer=peer, first=nid == "p1", console_client="console", **config)
        sim.add_node(nid, lambda cfg=cfg: FtNode(cfg, image, disk))
    console = _Console()
    sim.add_node("console", lambda: console)
    sim.set_peers(("storage", "p1", "p2", "console"))
    return sim, console


def _node(sim: Simulator, nid: str) -> FtNode:
    node = sim.hosts[nid].node
    assert isinstance(node, FtNode)
    return node


def _finished(console: _Console) -> bool:
    """The exit and every output before it arrived (the network may reorder them)."""
    exits = [i for i, o in console.outputs.items() if o.kind == "exit"]
    return bool(exits) and all(i in console.outputs for i in range(exits[0]))


def _text(console: _Console) -> bytes:
    return b"".join(o.data for i, o in sorted(console.outputs.items()) if o.kind == "console")


def test_the_backup_follows_at_the_same_instructions_and_its_state_hashes_match() -> None:
    """2.1: the backup executes the same instruction stream from the log."""
    sim, console = _pair(slice_instructions=20_000)
    sim.run(until=lambda: _finished(console), until_ms=30_000)
    sim.run(until_ms=sim.now_ms + 500)
    p1, p2 = _node(sim, "p1"), _node(sim, "p2")
    assert (p1.role, p2.role) == ("primary", "backup")
    assert p1.machine is not None and p2.machine is not None
    assert p2.machine.instret == p1.machine.instret
    assert p2.machine.state_hash() == p1.machine.state_hash()
    assert p2.state_checks > 10 and p2.state_mismatches == 0
    assert _text(console) == reference_run("primes", [])[0]


def test_the_primary_killed_mid_run_the_backup_goes_live_and_nothing_is_lost() -> None:
    """2.3: the backup replays its log, wins the test-and-set, goes live and
    sends again what the primary may not have sent; the output is whole."""
    sim, console = _pair(slice_instructions=5_000)
    sim.run(until=lambda: len(console.outputs) >= 2, until_ms=30_000)
    sim.crash("p1")
    sim.run(until=lambda: _finished(console), until_ms=60_000)
    p2 = _node(sim, "p2")
    assert p2.role == "alone" and p2.generation == 1
    assert _text(console) == reference_run("primes", [])[0]
    assert sorted(console.outputs) == list(range(len(console.outputs)))


def test_with_start_with_backup_the_program_waits_for_the_backups_acknowledged_snapshot() -> None:
    """Fault tolerant from the first instruction: the first replica runs
    nothing until a backup has loaded its snapshot. (It once started when
    the snapshot left: killed at once, the snapshot lost with it, the VM was
    gone and the backup waited for it for ever.)"""
    sim, console = _pair(slice_instructions=5_000, start_with_backup=True)
    sim.network.block("p1", "p2")   # (the snapshot does not arrive)
    sim.run(until=lambda: _node(sim, "p1").role == "primary", until_ms=5_000)
    sim.run(until_ms=sim.now_ms + 200)   # (less than failure_timeout_ms: p1 does not go on alone)
    p1 = _node(sim, "p1")
    assert p1.role == "primary" and p1.machine is not None and p1.machine.instret == 0
    assert _node(sim, "p2").role in ("joining", "starting")
    sim.network.unblock("p1", "p2")
    sim.run(until=lambda: _node(sim, "p2").role == "backup" and p1.machine is not None and p1.machine.instret > 0,
            until_ms=sim.now_ms + 5_000)
    assert _node(sim, "p2").role == "backup" and p1.machine is not None and p1.machine.instret > 0
    sim.crash("p1")
    sim.run(until=lambda: _finished(console), until_ms=sim.now_ms + 60_000)
    assert _node(sim, "p2").role == "alone"
    assert _text(console) == reference_run("primes", [])[0]


def test_output_waits_for_the_backups_acknowledgement() -> None:
    """2.2: with the logging channel cut, the primary goes on executing but
    releases nothing until it has gone live alone (test-and-set won)."""
    sim, console = _pair(slice_instructions=5_000, failure_timeout_ms=2_000.0, lag_instructions_max=10_000_000)
    sim.run(until=lambda: _node(sim, "p2").role == "backup", until_ms=5_000)
    sim.network.block("p1", "p2")
    sim.network.block("p2", "p1")
    released = len(console.outputs)
    before = _node(sim, "p1").machine.instret   # type: ignore[union-attr]
    sim.run(until_ms=sim.now_ms + 1_500)
    p1 = _node(sim, "p1")
    assert p1.role == "primary" and p1.machine is not None and p1.machine.instret > before
    assert len(console.outputs) == released and p1.outputs > released
    sim.run(until=lambda: _finished(console), until_ms=sim.now_ms + 30_000)
    live = [n for n in ("p1", "p2") if _node(sim, n).role == "alone"]
    halted = [n for n in ("p1", "p2") if _node(sim, n).role == "halted"]
    assert len(live) == 1 and len(halted) == 1
    assert _text(console) == reference_run("primes", [])[0]


def test_a_restarted_replica_comes_back_as_a_backup_from_a_snapshot() -> None:
    """2.3, restoring redundancy: the live replica sends a snapshot of its
    running machine; the new backup follows the log from there."""
    sim, console = _pair(slice_instructions=2_000)
    sim.run(until=lambda: len(console.outputs) >= 1, until_ms=30_000)
    sim.crash("p2")
    sim.run(until=lambda: _node(sim, "p1").role == "alone", until_ms=sim.now_ms + 5_000)
    sim.restart("p2")
    sim.run(until=lambda: _node(sim, "p2").role == "backup", until_ms=sim.now_ms + 5_000)
    p1, p2 = _node(sim, "p1"), _node(sim, "p2")
    assert p1.role == "primary" and p2.machine is not None and p2.machine.instret > 0
    sim.run(until=lambda: _finished(console), until_ms=sim.now_ms + 60_000)
    sim.run(until_ms=sim.now_ms + 500)
    assert p2.machine.state_hash() == p1.machine.state_hash()   # type: ignore[union-attr]
    assert _text(console) == reference_run("primes", [])[0]


def test_a_backup_that_lags_slows_the_primary() -> None:
    """3.4: the primary does not run while the backup is more than
    lag_instructions_max behind."""
    sim, console = _pair(slice_instructions=5_000, lag_instructions_max=20_000)
    sim.run(until=lambda: _node(sim, "p2").role == "backup", until_ms=5_000)
    sim.pause("p2")
    sim.run(until_ms=sim.now_ms + 100)
    p1 = _node(sim, "p1")
    assert p1.slowed_slices > 10
    assert p1.machine is not None and p1.writer is not None
    assert p1.machine.instret - p1.writer.backup_executed <= 20_000 + 5_000
    sim.resume("p2")
    sim.run(until=lambda: _finished(console), until_ms=sim.now_ms + 60_000)
    assert _text(console) == reference_run("primes", [])[0]


def test_console_input_is_acknowledged_only_once_logged_on_the_backup() -> None:
    sim, console = _pair("echo", slice_instructions=5_000)
    sim.run(until=lambda: _node(sim, "p2").role == "backup", until_ms=5_000)
    sim.network.block("p1", "p2")
    sim.hosts["console"].node.outputs.clear()
    sim.transmit("console", "p1", ConsoleIn(input_seq=1, data=b"abc\n"), 0)
    sim.run(until_ms=sim.now_ms + 100)
    assert console.acked == 0                                  # delivered on the primary, not yet logged
    sim.network.unblock("p1", "p2")
    sim.run(until=lambda: console.acked == 1, until_ms=sim.now_ms + 1_000)
    assert console.acked == 1


def _hash_lines(console: _Console) -> list[bytes]:
    return [line for line in _text(console).split(b"\n") if line.startswith(b"sectors")]


def test_dma_racing_the_program_is_replayed_exactly_through_the_bounce_buffer() -> None:
    """3.5: the program writes into the buffer a read is filling; the read's
    data reaches guest memory only when its completion is delivered, at an
    instruction count the log carries, so the backup sees what the primary
    saw. A disk slower than a slice makes the race real: what the program
    reads depends on the latency (two latencies, two outputs), yet the
    backup's state always equals the primary's."""
    disk = disk_image(64)
    outputs = []
    for latency_ms in (0.0, 7.0):
        sim, console = _pair("disk", disk=disk, slice_instructions=300, disk_latency_ms=latency_ms)
        sim.run(until=lambda console=console: _finished(console), until_ms=60_000)
        sim.run(until_ms=sim.now_ms + 500)
        p1, p2 = _node(sim, "p1"), _node(sim, "p2")
        assert p1.machine is not None and p2.machine is not None
        assert p2.machine.state_hash() == p1.machine.state_hash()
        assert p2.state_checks > 0 and p2.state_mismatches == 0
        assert len(_hash_lines(console)) == 8
        outputs.append(_hash_lines(console))
    assert outputs[0] != outputs[1]      # the race is real: its outcome depends on when the data came


def test_a_read_in_flight_at_failover_is_issued_again_by_the_new_primary() -> None:
    """3.5: the primary dies with a disk read outstanding; the backup, live,
    finds the request in its replayed machine with no completion logged and
    completes it itself; the program runs to its end."""
    sim, console = _pair("disk", disk=disk_image(64), slice_instructions=300, disk_latency_ms=50.0)
    sim.run(until=lambda: len(_hash_lines(console)) >= 2 and _node(sim, "p1").block_due_ms is not None,
            until_ms=60_000)
    p1 = _node(sim, "p1")
    assert p1.machine is not None and p1.machine.pending_block_request is not None
    sim.crash("p1")
    sim.run(until=lambda: _node(sim, "p2").role == "alone", until_ms=sim.now_ms + 5_000)
    p2 = _node(sim, "p2")
    assert p2.machine is not None and p2.machine.pending_block_request is not None
    assert p2.block_due_ms is not None                     # issued again on going live
    sim.run(until=lambda: _finished(console), until_ms=sim.now_ms + 60_000)
    assert len(_hash_lines(console)) == 8
    assert [o.fd for o in console.outputs.values() if o.kind == "exit"] == [0]


def test_a_backup_whose_machine_cannot_follow_the_log_halts_and_rejoins_from_a_snapshot() -> None:
    """A log entry the backup's machine cannot take (here a read completion
    with no read pending) means its copy is not the primary's: it halts
    (exit 75) rather than ever go live with it, and started again it joins
    as a new backup from a snapshot."""
    sim, console = _pair(slice_instructions=5_000)
    sim.run(until=lambda: _node(sim, "p2").role == "backup" and len(console.outputs) >= 1, until_ms=10_000)
    p2 = _node(sim, "p2")
    assert p2.reader is not None and p2.machine is not None
    bogus = LogEntry(seq=p2.reader.received_seq + 1, instret=p2.machine.instret,
                     event=BlockReadComplete(request_id=99, data=b"x"))
    p2.reader.pending.appendleft(bogus)
    sim.run(until=lambda: not sim.hosts["p2"].up, until_ms=sim.now_ms + 1_000)
    assert not sim.hosts["p2"].up and p2.role == "halted"
    sim.restart("p2")
    sim.run(until=lambda: _node(sim, "p2").role == "backup", until_ms=sim.now_ms + 5_000)
    sim.run(until=lambda: _finished(console), until_ms=sim.now_ms + 60_000)
    p1, p2 = _node(sim, "p1"), _node(sim, "p2")
    sim.run(until_ms=sim.now_ms + 500)
    assert p1.machine is not None and p2.machine is not None
    assert p2.machine.state_hash() == p1.machine.state_hash()
    assert _text(console) == reference_run("primes", [])[0]


def test_a_primary_serves_a_client_that_reconnected_many_times_and_ignores_far_future_input() -> None:
    """Every reconnection is a new client id with no word of the old one
    leaving: the oldest attachment gives way (at most LISTENERS_MAX), so the
    100th attachment still gets its outputs; an input numbered far ahead
    of the window takes no place in it."""
    sim, console = _pair("echo", slice_instructions=5_000)
    sim.run(until=lambda: _node(sim, "p2").role == "backup", until_ms=5_000)
    p1 = _node(sim, "p1")
    for i in range(100):   # (one at a time: the network may reorder messages sent together)
        sim.transmit(f"client{i}", "p1", Attach(from_index=0), 0)
        sim.run(until_ms=sim.now_ms + 10)
    sim.transmit("console", "p1", ConsoleIn(input_seq=10_000, data=b"far\n"), 0)
    sim.transmit("console", "p1", ConsoleIn(input_seq=1, data=b"near\n"), 0)
    sim.run(until_ms=sim.now_ms + 200)
    assert len(p1.listeners) == LISTENERS_MAX and "client99" in p1.listeners and "client0" not in p1.listeners
    assert 10_000 not in p1.pending_inputs and p1.last_input_seq == 1
