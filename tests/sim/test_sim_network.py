"""The simulated network (DESIGN.md section 5): loss, duplication, reordering,
bandwidth, clogging, every partition shape and heal; and the fast path giving
the same run as the general one."""

from __future__ import annotations

import dataclasses
import random

import pytest
from simkit import PingPong, Probe, Recorder, Sender, all_to_all, delivered_pairs, start_all

from synod.core import ConfigError, encoded_size_bytes
from synod.sim import Constant, LinkModel, Network, Simulator, Tracer, Uniform

IDS = ["n0", "n1", "n2", "n3", "n4"]
ALL_PAIRS = {(a, b) for a in IDS for b in IDS if a != b}


def _net(**link: object) -> Network:
    return Network(LinkModel(**link))  # type: ignore[arg-type]


def _one_way_traffic(network: Network, count: int, seed: int = 7, payload: bytes = b"") -> tuple[Simulator, list]:
    """``a`` sends ``count`` probes to ``b``; returns the sim (run) and b's log."""
    log: list = []
    sim = Simulator(seed, network=network)
    sim.add_node("b", lambda: Recorder(log))
    sim.add_node("a", lambda: Sender(log, ["b"], count=count, payload=payload))
    sim.run()
    return sim, log


# -- link faults ------------------------------------------------------------------------

def test_no_faults_delivers_everything_once() -> None:
    sim, log = _one_way_traffic(_net(), 500)
    assert sorted(seq for *_, seq in log) == list(range(500))
    assert sim.drops == 0
    assert all(1.0 <= t <= 10.0 for t, *_ in log)  # the default uniform 1-10 ms


def test_loss_drops_about_the_given_fraction() -> None:
    sim, log = _one_way_traffic(_net(loss_probability=0.3), 2000)
    assert len(log) + sim.drops == 2000
    assert 0.25 < sim.drops / 2000 < 0.35
    assert len({seq for *_, seq in log}) == len(log)  # no duplicates


def test_total_loss_delivers_nothing() -> None:
    sim, log = _one_way_traffic(_net(loss_probability=1.0), 100)
    assert log == []
    assert sim.drops == 100


def test_duplication_delivers_some_messages_twice() -> None:
    sim, log = _one_way_traffic(_net(duplicate_probability=0.5), 2000)
    seqs = [seq for *_, seq in log]
    assert set(seqs) == set(range(2000))
    twice = len(seqs) - 2000
    assert 0.45 < twice / 2000 < 0.55
    assert max(seqs.count(s) for s in set(seqs)) == 2


def test_constant_latency_without_reordering_is_fifo() -> None:
    _, log = _one_way_traffic(_net(latency=Constant(3.0)), 200)
    assert [seq for *_, seq in log] == list(range(200))


def test_reordering_delays_some_messages_past_later_ones() -> None:
    _, log = _one_way_traffic(_net(latency=Constant(3.0), reorder_probability=0.3,
                                   reorder_delay_ms=20.0), 200)
    seqs = [seq for *_, seq in log]
    assert sorted(seqs) == list(range(200))       # nothing lost
    assert seqs != list(range(200))               # but not in order
    late = [t for t, *_ in log if t > 3.0]
    assert 40 < len(late) < 80                    # about 30% took the detour
    assert max(t for t, *_ in log) <= 23.0


def test_bandwidth_serialises_messages_and_grows_with_size() -> None:
    bw = 100.0  # bytes per ms
    first_arrival = {}
    for payload in (b"x" * 100, b"x" * 10_000):
        size = encoded_size_bytes(Probe(seq=0, payload=payload))
        _, log = _one_way_traffic(_net(latency=Constant(1.0), bandwidth_bytes_per_ms=bw), 3,
                                  payload=payload)
        times = [t for t, *_ in log]
        # Back to back on one link: the k-th message finishes serialising at
        # k * size / bw, then takes the 1 ms latency.
        assert times == pytest.approx([(k + 1) * size / bw + 1.0 for k in range(3)])
        first_arrival[len(payload)] = times[0]
    # The serialisation delay grows with the message: 100x the payload, about 80x the delay.
    assert first_arrival[10_000] - 1.0 > 50 * (first_arrival[100] - 1.0)


def test_bandwidth_is_per_directed_link() -> None:
    log: list = []
    payload = b"y" * 1000
    sim = Simulator(1, network=_net(latency=Constant(1.0), bandwidth_bytes_per_ms=10.0))
    sim.add_node("b", lambda: Recorder(log))
    sim.add_node("c", lambda: Recorder(log))
    sim.add_node("a", lambda: Sender(log, ["b", "c"], payload=payload))
    sim.run()
    size = encoded_size_bytes(Probe(seq=0, payload=payload))
    assert sorted(t for t, *_ in log) == pytest.approx([size / 10.0 + 1.0] * 2)


def test_clog_holds_a_link_until_its_time_then_the_fast_path_returns() -> None:
    net = _net(latency=Constant(2.0))
    log: list = []
    sim = Simulator(1, network=net)
    sim.add_node("a", lambda: Sender(log, ["b"]), start=False)
    sim.add_node("b", lambda: Sender(log, ["a"]), start=False)
    net.clog("a", "b", until_ms=50.0)
    assert net.fast_latency is None
    start_all(sim)
    sim.run()
    assert sorted((t, src, dst) for t, src, dst, _ in log) == [(2.0, "b", "a"), (52.0, "a", "b")]
    # An expired clog is forgotten at the next send on that link.
    assert net.fast_latency is None
    sim.crash("a")
    sim.restart("a")
    sim.run()
    assert net.fast_latency is not None


def test_link_models_validate_and_are_frozen() -> None:
    with pytest.raises(ConfigError):
        LinkModel(loss_probability=1.5)
    with pytest.raises(ConfigError):
        LinkModel(bandwidth_bytes_per_ms=0)
    with pytest.raises(ConfigError):
        Uniform(5.0, 1.0)
    link = LinkModel()
    with pytest.raises(dataclasses.FrozenInstanceError):
        link.loss_probability = 0.5  # type: ignore[misc]


def test_per_link_model_overrides_the_default() -> None:
    net = _net(latency=Constant(1.0))
    net.set_link("a", "b", LinkModel(latency=Constant(7.0)))
    log: list = []
    sim = Simulator(1, network=net)
    sim.add_node("b", lambda: Sender(log, ["a"]), start=False)
    sim.add_node("a", lambda: Sender(log, ["b"]), start=False)
    start_all(sim)
    sim.run()
    assert sorted((t, src) for t, src, _, _ in log) == [(1.0, "b"), (7.0, "a")]
    net.set_link("a", "b", None)
    assert net.fast_latency is not None


# -- partitions ----------------------------------------------------------------------------

def _pairs_after(shape) -> tuple[set, object]:  # type: ignore[no-untyped-def]
    net = Network()
    sim = Simulator(3, network=net)
    log = all_to_all(sim, IDS)
    detail = shape(net)
    start_all(sim)
    sim.run()
    return delivered_pairs(log), detail


def _cut(*groups: list[str]) -> set[tuple[str, str]]:
    return {(a, b) for i, g in enumerate(groups) for j, h in enumerate(groups) if i != j
            for a in g for b in h}


def test_symmetric_partition() -> None:
    pairs, _ = _pairs_after(lambda net: net.partition([["n0", "n1"], ["n2", "n3", "n4"]]))
    assert pairs == ALL_PAIRS - _cut(["n0", "n1"], ["n2", "n3", "n4"])


def test_one_way_partition_blocks_one_direction_only() -> None:
    pairs, _ = _pairs_after(lambda net: net.one_way(["n0", "n1"], ["n2"]))
    assert pairs == ALL_PAIRS - {("n0", "n2"), ("n1", "n2")}
    assert ("n2", "n0") in pairs


def test_isolate_cuts_one_node_off() -> None:
    pairs, _ = _pairs_after(lambda net: net.isolate("n3", IDS))
    assert pairs == {(a, b) for a, b in ALL_PAIRS if "n3" not in (a, b)}


def test_majority_minority() -> None:
    pairs, sides = _pairs_after(lambda net: net.majority_minority(IDS, random.Random(5)))
    major, minor = sides  # type: ignore[misc]
    assert len(major) == 3
    assert len(minor) == 2
    assert sorted(major + minor) == IDS
    assert pairs == ALL_PAIRS - _cut(major, minor)


def test_bridge_talks_to_both_halves_that_cannot_talk_to_each_other() -> None:
    pairs, shape = _pairs_after(lambda net: net.bridge(IDS, random.Random(5)))
    left, bridge, right = shape  # type: ignore[misc]
    assert len(left) == 2
    assert len(right) == 2
    assert sorted(left + right + [bridge]) == IDS
    assert pairs == ALL_PAIRS - _cut(left, right)
    assert all((bridge, x) in pairs and (x, bridge) in pairs for x in left + right)


def test_heal_restores_every_link_and_block_unblock() -> None:
    net = Network()
    net.partition([["n0"], ["n1", "n2"]])
    net.clog("n3", "n4", 1e9)
    net.heal()
    assert net.blocked == set()
    assert net.fast_latency is not None
    pairs, _ = _pairs_after(lambda n: (n.block("n0", "n1"), n.unblock("n0", "n1")))
    assert pairs == ALL_PAIRS


def test_partition_drops_are_traced_with_a_reason() -> None:
    tracer = Tracer(keep=True)
    net = Network()
    sim = Simulator(1, network=net, tracer=tracer)
    all_to_all(sim, ["a", "b"])
    net.block("a", "b")
    start_all(sim)
    sim.run()
    drops = [line for line in tracer.lines or [] if '"kind":"drop"' in line]
    assert len(drops) == 1
    assert '"node":"a","kind":"drop","dst":"b","corr":0,"reason":"partition"' in drops[0]


# -- the fast path is the general path --------------------------------------------------------

def _pingpong_observations(network: Network, tracer: Tracer | None) -> list:
    seen: list = []

    class Observed(PingPong):
        def on_message(self, ctx, src, msg):  # type: ignore[no-untyped-def]
            seen.append((ctx.now_ms, src, ctx.node_id, msg.seq))
            super().on_message(ctx, src, msg)

    counts: dict = {}
    sim = Simulator(11, network=network, tracer=tracer)
    ids = tuple(f"n{i}" for i in range(4))
    for i in ids:
        sim.add_node(i, lambda: Observed(counts, k=3), peers=ids, start=False)
    start_all(sim)
    sim.run(max_events=3000)
    return seen


def test_fast_path_tracing_and_general_path_give_the_same_run() -> None:
    fast = Network()
    assert fast.fast_latency is not None
    general = Network()
    general.set_link("nobody", "nowhere", LinkModel())  # forces the general path
    assert general.fast_latency is None
    a = _pingpong_observations(fast, None)
    b = _pingpong_observations(general, None)
    c = _pingpong_observations(Network(), Tracer())
    assert len(a) > 2000
    assert a == b
    assert a == c


def test_changing_the_network_mid_run_leaves_the_fast_path() -> None:
    """A loss setting applied while running must take effect (the inlined fast
    path follows the network's configuration)."""
    counts: dict = {}
    net = Network()
    sim = Simulator(2, network=net)
    ids = ("a", "b")
    for i in ids:
        sim.add_node(i, lambda: PingPong(counts, k=4), peers=ids)
    sim.run(until_ms=100.0)
    assert sim.drops == 0
    net.set_default(LinkModel(loss_probability=1.0))
    sim.run(until_ms=200.0)
    assert sim.drops == 8  # the 8 messages in flight are lost on their next hop
    assert sim.pending_events() == 0


def test_replacing_the_network_or_the_tracer_takes_effect() -> None:
    counts: dict = {}
    sim = Simulator(4)
    ids = ("a", "b")
    for i in ids:
        sim.add_node(i, lambda: PingPong(counts, k=2), peers=ids)
    sim.run(until_ms=50.0)
    tracer = Tracer(keep=True)
    sim.tracer = tracer
    sim.run(until_ms=100.0)
    assert any('"kind":"send"' in line for line in tracer.lines or [])
    old = sim.network
    sim.network = Network(LinkModel(loss_probability=1.0))
    sim.run(until_ms=200.0)
    assert sim.drops == 4
    assert sim.pending_events() == 0
    old.set_default(LinkModel())  # the old network no longer steers this simulator
    assert sim.network.fast_latency is None
