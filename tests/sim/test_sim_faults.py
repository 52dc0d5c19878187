"""Node and disk faults in the simulator (DESIGN.md sections 4 and 5): crash,
restart, pause/resume, clock jumps and drift, torn appends, read corruption
and slow syncs."""

from __future__ import annotations

from typing import Any

import pytest
from simkit import Probe, Recorder, Sender

from synod.core import Context, LocalProtocolError, Node, pack_record, scan_records
from synod.sim import Constant, DiskFaults, LinkModel, Network, Simulator, Tracer


def _sim(delay_ms: float = 5.0, seed: int = 1, tracer: Tracer | None = None) -> Simulator:
    return Simulator(seed, network=Network(LinkModel(latency=Constant(delay_ms))), tracer=tracer)


# -- crash and restart -----------------------------------------------------------------------

class Keeper(Node):
    """Volatile counter, one synced and one unsynced file, and a timer."""

    def __init__(self, events: list) -> None:
        self.events = events
        self.counter = 0

    def on_start(self, ctx: Context) -> None:
        self.events.append(("start", ctx.now_ms, ctx.disk.read("synced"), ctx.disk.read("unsynced")))
        if ctx.disk.read("synced") is None:
            ctx.disk.write("synced", b"kept")
            ctx.disk.sync()
            ctx.disk.write("unsynced", b"lost")  # after the sync call, but...
            # ...the sync is applied after the handler, so this write is durable too.
            ctx.set_timer("old", 50.0)
        else:
            ctx.set_timer("new", 100.0)

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        self.counter += 1
        ctx.disk.write("late", b"never synced")
        self.events.append(("msg", ctx.now_ms, self.counter))

    def on_timer(self, ctx: Context, name: str) -> None:
        self.events.append(("timer", ctx.now_ms, name))


def test_crash_loses_volatile_state_unsynced_writes_and_old_timers() -> None:
    events: list = []
    tracer = Tracer(keep=True)
    sim = _sim(tracer=tracer)
    host = sim.add_node("k", lambda: Keeper(events))
    sim.add_node("s", lambda: Sender([], ["k"], count=2))
    sim.run(until_ms=10.0)
    assert events[-1] == ("msg", 5.0, 2)
    assert host.disk.read("late") == b"never synced"
    sim.crash("k")
    assert host.disk.read("late") is None           # unsynced: gone
    assert host.disk.read("synced") == b"kept"      # synced: kept
    sim.call_at(20.0, sim.restart, "k")
    sim.run()
    starts = [e for e in events if e[0] == "start"]
    assert starts == [("start", 0.0, None, None), ("start", 20.0, b"kept", b"lost")]
    timers = [e for e in events if e[0] == "timer"]
    assert timers == [("timer", 120.0, "new")]      # "old" (due at 50) died with its incarnation
    assert host.incarnation == 1
    assert '"kind":"crash"' in "".join(tracer.lines or [])


def test_restart_builds_a_fresh_node_object() -> None:
    events: list = []
    sim = _sim()
    host = sim.add_node("k", lambda: Keeper(events))
    first = host.node
    sim.crash("k")
    sim.restart("k")
    assert host.node is not first
    assert host.node.counter == 0  # type: ignore[union-attr]
    assert host.up


def test_messages_to_a_crashed_node_are_dropped() -> None:
    log: list = []
    tracer = Tracer(keep=True)
    sim = _sim(tracer=tracer)
    sim.add_node("b", lambda: Recorder(log))
    sim.add_node("a", lambda: Sender(log, ["b"], count=3))
    sim.crash("b")
    sim.run()
    assert log == []
    assert sim.drops == 3
    assert sum('"reason":"node down"' in line for line in tracer.lines or []) == 3


def test_crash_and_restart_of_unknown_or_stopped_nodes() -> None:
    sim = _sim()
    with pytest.raises(LocalProtocolError):
        sim.crash("ghost")
    sim.add_node("a", lambda: Recorder([]))
    sim.crash("a")
    sim.crash("a")  # already down: no-op
    sim.restart("a")
    sim.restart("a")  # already up: no-op
    assert sim.hosts["a"].incarnation == 1
    with pytest.raises(LocalProtocolError):
        sim.add_node("a", lambda: Recorder([]))


class Napper(Node):
    """A coroutine that sleeps; records whether it finished or was killed."""

    def __init__(self, events: list) -> None:
        self.events = events

    async def on_start(self, ctx: Context) -> None:
        try:
            await ctx.sleep(50.0)
            self.events.append("woke")
        except GeneratorExit:
            self.events.append("killed")
            raise


def test_crash_kills_suspended_coroutines() -> None:
    events: list = []
    sim = _sim()
    sim.add_node("a", lambda: Napper(events), start=False)
    sim.restart("a")
    sim.call_at(10.0, sim.crash, "a")
    sim.run()
    assert events == ["killed"]


# -- pause and resume ---------------------------------------------------------------------------

class Ticker(Recorder):
    def __init__(self, log: list) -> None:
        super().__init__(log)

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer("tick", 30.0)

    def on_timer(self, ctx: Context, name: str) -> None:
        self.log.append((ctx.now_ms, "timer", name, -1))
        ctx.send("a", Probe(seq=99))


def test_pause_delays_inputs_without_losing_them() -> None:
    log: list = []
    a_log: list = []
    sim = _sim(5.0)
    sim.add_node("a", lambda: Recorder(a_log))
    sim.add_node("b", lambda: Ticker(log))
    sim.pause("b")
    sim.add_node("s", lambda: Sender([], ["b"], count=3))
    sim.call_at(100.0, sim.resume, "b")
    sim.run(until_ms=99.0)
    assert log == []            # paused: nothing handled, not even the timer due at 30
    assert a_log == []          # and nothing said
    assert sim.hosts["b"].paused
    sim.run()
    # At resume: the three messages (arrived at 5) in order, then the timer (due at 30).
    assert log == [(100.0, "s", "b", 0), (100.0, "s", "b", 1), (100.0, "s", "b", 2),
                   (100.0, "timer", "tick", -1)]
    assert a_log == [(105.0, "b", "a", 99)]
    assert sim.drops == 0


def test_crash_while_paused_discards_the_waiting_inputs() -> None:
    log: list = []
    sim = _sim(5.0)
    sim.add_node("b", lambda: Recorder(log))
    sim.pause("b")
    sim.add_node("s", lambda: Sender([], ["b"], count=2))
    sim.run(until_ms=10.0)
    sim.crash("b")
    sim.resume("b")  # not paused any more (down): no-op
    sim.restart("b")
    sim.run()
    assert log == []


# -- clocks --------------------------------------------------------------------------------------

class ClockWatcher(Node):
    def __init__(self, events: list, delay_ms: float) -> None:
        self.events = events
        self.delay_ms = delay_ms

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer("t", self.delay_ms)

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        ctx.set_timer("t", self.delay_ms)

    def on_timer(self, ctx: Context, name: str) -> None:
        self.events.append((ctx.node_id, ctx.now_ms))


def test_clock_jump_moves_now_but_not_armed_timers() -> None:
    events: list = []
    sim = _sim()
    sim.add_node("a", lambda: ClockWatcher(events, 100.0))
    sim.run(until_ms=10.0)
    sim.set_clock("a", jump_ms=1000.0)
    assert sim.hosts["a"].ctx.now_ms == 1010.0  # type: ignore[union-attr]
    sim.run()
    assert sim.now_ms == 100.0
    assert events == [("a", 1100.0)]
    sim.set_clock("a", jump_ms=-2000.0)  # clocks may go backwards
    assert sim.hosts["a"].ctx.now_ms == -900.0  # type: ignore[union-attr]


@pytest.mark.parametrize("drift,fires_at", [(1.0, 50.0), (-0.5, 200.0), (0.25, 80.0)])
def test_drift_runs_the_nodes_clock_and_timers_at_its_rate(drift: float, fires_at: float) -> None:
    events: list = []
    sim = _sim()
    sim.add_node("a", lambda: ClockWatcher(events, 100.0), start=False)
    sim.set_clock("a", drift=drift)
    sim.restart("a")
    sim.run(until_ms=10.0)
    assert sim.hosts["a"].ctx.now_ms == pytest.approx(10.0 * (1 + drift))  # type: ignore[union-attr]
    sim.run()
    # The timer is 100 ms of the node's clock: it fires when that clock says 100.
    assert sim.now_ms == pytest.approx(fires_at)
    assert events == [("a", pytest.approx(100.0))]


def test_reset_clock_and_bad_drift() -> None:
    sim = _sim()
    host = sim.add_node("a", lambda: ClockWatcher([], 1.0))
    sim.set_clock("a", jump_ms=500.0, drift=0.5)
    sim.run(until_ms=10.0)
    assert host.clock_ms() == pytest.approx(515.0)
    sim.reset_clock("a")
    assert host.clock_ms() == 10.0
    with pytest.raises(LocalProtocolError):
        sim.set_clock("a", drift=-1.0)


# -- disk faults ---------------------------------------------------------------------------------

class LogWriter(Node):
    """Appends a record per message; syncs only every ``sync_every`` records.
    On start, reports what recovery found (records, error)."""

    def __init__(self, recovered: list, sync_every: int = 1000) -> None:
        self.recovered = recovered
        self.sync_every = sync_every
        self.n = 0

    def on_start(self, ctx: Context) -> None:
        data = ctx.disk.read("wal")
        if data is not None:
            scan = scan_records(data)
            self.recovered.append((scan.records, scan.error))

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        self.n += 1
        ctx.disk.append("wal", pack_record(b"entry-%d" % msg.seq))
        if self.n % self.sync_every == 0:
            ctx.disk.sync()


def _torn_run(seed: int) -> tuple[list, bytes]:
    recovered: list = []
    sim = Simulator(seed, network=Network(LinkModel(latency=Constant(1.0))))
    sim.add_node("w", lambda: LogWriter(recovered, sync_every=3),
                 disk_faults=DiskFaults(torn_append_probability=1.0))
    sim.add_node("s", lambda: Sender([], ["w"], count=5))
    sim.run()
    sim.crash("w")
    sim.restart("w")
    raw = sim.hosts["w"].disk.read("wal")
    assert raw is not None
    return recovered, raw


def test_torn_last_append_is_detected_by_scan_records() -> None:
    """Records 0-2 were synced; 3 and 4 were not, and the crash tears them."""
    synced = [b"entry-0", b"entry-1", b"entry-2"]
    durable_len = len(b"".join(pack_record(p) for p in synced))
    full_len = durable_len + len(pack_record(b"entry-3")) + len(pack_record(b"entry-4"))
    errors = 0
    for seed in range(10):
        recovered, raw = _torn_run(seed)
        records, error = recovered[0]
        assert durable_len < len(raw) < full_len, seed  # a strict, non-empty part of the unsynced tail
        assert records[:3] == synced
        assert records in (synced, synced + [b"entry-3"]), seed
        if error is not None:
            assert error.startswith("torn"), error
            errors += 1
        else:
            assert len(raw) == durable_len + len(pack_record(b"entry-3")), seed
    assert errors >= 5


def test_without_torn_appends_a_crash_keeps_exactly_the_synced_records() -> None:
    recovered: list = []
    sim = Simulator(1, network=Network(LinkModel(latency=Constant(1.0))))
    sim.add_node("w", lambda: LogWriter(recovered, sync_every=3))
    sim.add_node("s", lambda: Sender([], ["w"], count=5))
    sim.run()
    sim.crash("w")
    sim.restart("w")
    assert recovered == [([b"entry-0", b"entry-1", b"entry-2"], None)]


def test_read_corruption_is_caught_by_the_checksum() -> None:
    sim = _sim()
    host = sim.add_node("w", lambda: Recorder([]),
                        disk_faults=DiskFaults(read_corruption_probability=1.0))
    payloads = [b"a" * 40, b"b" * 40]
    good = b"".join(pack_record(p) for p in payloads)
    host.disk.write("wal", good)
    for _ in range(50):
        data = host.disk.read("wal")
        assert data is not None
        assert len(data) == len(good)
        assert sum(bin(x ^ y).count("1") for x, y in zip(data, good)) == 1  # one bit flipped
        scan = scan_records(data)
        assert scan.error is not None
        assert scan.records == payloads[: len(scan.records)]


class SyncThenSend(Node):
    """On each message: append, sync (if asked) and forward to ``dst``."""

    def __init__(self, sync: bool) -> None:
        self.sync = sync

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        ctx.disk.append("wal", pack_record(b"x"))
        if self.sync and msg.seq == 0:
            ctx.disk.sync()
        ctx.send("sink", Probe(seq=msg.seq))


@pytest.mark.parametrize("sync", [True, False])
def test_slow_sync_delays_the_sends_that_follow_it(sync: bool) -> None:
    log: list = []
    sim = _sim(1.0)
    sim.add_node("sink", lambda: Recorder(log))
    sim.add_node("w", lambda: SyncThenSend(sync), disk_faults=DiskFaults(sync_latency_ms=30.0))
    sim.add_node("s", lambda: Sender([], ["w"], count=2))
    sim.run()
    times = [(t, seq) for t, _, _, seq in log]
    if sync:
        # Both arrive at 1 (in) + 30 (sync) + 1 (out); the second message,
        # handled during the sync, keeps its place behind the first.
        assert times == [(32.0, 0), (32.0, 1)]
    else:
        assert times == [(2.0, 0), (2.0, 1)]


class SyncThenSendEarly(Node):
    """On each message: append and sync, then an ordinary send and one ahead_of_sync."""

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        ctx.disk.append("wal", pack_record(b"x"))
        ctx.disk.sync()
        ctx.send("sink", Probe(seq=msg.seq))
        ctx.send("sink", Probe(seq=100 + msg.seq), ahead_of_sync=True)


def test_ahead_of_sync_sends_do_not_wait_for_a_slow_sync() -> None:
    log: list = []
    sim = _sim(1.0)
    sim.add_node("sink", lambda: Recorder(log))
    sim.add_node("w", SyncThenSendEarly, disk_faults=DiskFaults(sync_latency_ms=30.0))
    sim.add_node("s", lambda: Sender([], ["w"], count=2))
    sim.run()
    # in at 1; the early ones out at once (2), the ordinary ones after the sync (1 + 30 + 1)
    assert [(t, seq) for t, _, _, seq in log] == [(2.0, 100), (2.0, 101), (32.0, 0), (32.0, 1)]


def test_a_crash_during_a_slow_sync_loses_the_held_sends() -> None:
    log: list = []
    sim = _sim(1.0)
    sim.add_node("sink", lambda: Recorder(log))
    host = sim.add_node("w", lambda: SyncThenSend(True), disk_faults=DiskFaults(sync_latency_ms=30.0))
    sim.add_node("s", lambda: Sender([], ["w"], count=1))
    sim.call_at(10.0, sim.crash, "w")
    sim.call_at(11.0, sim.restart, "w")
    sim.run()
    assert log == []
    assert host.disk.read("wal") == pack_record(b"x")  # the data reached the disk first


def test_a_pause_during_a_slow_sync_holds_the_sends_until_resume() -> None:
    log: list = []
    sim = _sim(1.0)
    sim.add_node("sink", lambda: Recorder(log))
    sim.add_node("w", lambda: SyncThenSend(True), disk_faults=DiskFaults(sync_latency_ms=30.0))
    sim.add_node("s", lambda: Sender([], ["w"], count=1))
    sim.call_at(10.0, sim.pause, "w")
    sim.call_at(60.0, sim.resume, "w")
    sim.run()
    assert [(t, seq) for t, _, _, seq in log] == [(61.0, 0)]


def test_disk_paths_must_be_relative() -> None:
    sim = _sim()
    host = sim.add_node("a", lambda: Recorder([]))
    for bad in ("", "/abs", "a/../b"):
        with pytest.raises(LocalProtocolError):
            host.disk.write(bad, b"x")


def test_disk_rename_delete_list_follow_the_crash_model() -> None:
    sim = _sim()
    host = sim.add_node("a", lambda: Recorder([]))
    disk = host.disk
    disk.write("dir/tmp", b"new")
    disk.write("dir/keep", b"k")
    disk.make_durable()
    disk.rename("dir/tmp", "dir/final")
    disk.delete("dir/keep")
    assert disk.list("dir/") == ["dir/final"]
    sim.crash("a")  # neither the rename nor the delete was synced
    assert disk.list("dir/") == ["dir/keep", "dir/tmp"]
    disk.rename("dir/tmp", "dir/final")
    disk.sync()
    disk.make_durable()
    sim.restart("a")
    sim.crash("a")
    assert disk.read("dir/final") == b"new"
    assert disk.read("dir/tmp") is None
