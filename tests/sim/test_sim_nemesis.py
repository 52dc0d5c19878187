"""The nemesis (DESIGN.md section 5): a seeded fault schedule, separate from
workloads and checkers, with a heal-and-stop liveness phase."""

from __future__ import annotations

import json

import pytest
from simkit import Gossip

from synod.core import ConfigError, LocalProtocolError
from synod.sim import PARTITION_KINDS, LinkModel, Nemesis, Network, Simulator, Tracer

IDS = ("n0", "n1", "n2", "n3", "n4")


def _cluster(seed: int, nemesis: Nemesis, *, tracer: Tracer | None = None,
             clients: tuple[str, ...] = ()) -> tuple[Simulator, list]:
    log: list = []
    sim = Simulator(seed, tracer=tracer or Tracer(keep=True))
    ids = IDS + clients
    for i in ids:
        sim.add_node(i, lambda: Gossip(sim, log), peers=ids)
    nemesis.install(sim)
    return sim, log


def _nemesis_lines(tracer: Tracer) -> list[dict]:
    return [json.loads(line) for line in tracer.lines or [] if '"kind":"nemesis"' in line]


def test_config_is_validated() -> None:
    with pytest.raises(ConfigError):
        Nemesis(crash_probability=2.0)
    with pytest.raises(ConfigError):
        Nemesis(interval_ms=0)
    with pytest.raises(ConfigError):
        Nemesis(partition_kinds=("symmetric", "sideways"))
    with pytest.raises(ConfigError):
        Nemesis(pause_duration_ms=-1)
    with pytest.raises(ConfigError):
        Nemesis(clock_drift_max=1.0)
    assert set(PARTITION_KINDS) == {"symmetric", "one_way", "isolate", "majority_minority", "bridge"}


def test_install_checks_targets_and_only_once() -> None:
    sim = Simulator(1)
    with pytest.raises(LocalProtocolError):
        Nemesis(targets=("nobody",)).install(sim)
    nemesis = Nemesis()
    with pytest.raises(LocalProtocolError):
        nemesis.heal_and_stop(10.0)
    nemesis.install(sim)
    with pytest.raises(LocalProtocolError):
        nemesis.install(sim)


def test_crashes_restart_and_respect_the_faulty_bound() -> None:
    tracer = Tracer(keep=True)
    nemesis = Nemesis(interval_ms=20.0, crash_probability=0.8, restart_delay_ms=100.0)
    sim, _ = _cluster(3, nemesis, tracer=tracer)
    worst = [0]

    def sample() -> None:
        worst[0] = max(worst[0], sum(not sim.hosts[i].up for i in IDS))
        sim.call_after(1.0, sample)

    sim.call_at(0.0, sample)
    sim.run(until_ms=2000.0)
    actions = [line["action"] for line in _nemesis_lines(tracer)]
    assert actions.count("crash") >= 10
    assert actions.count("restart") >= actions.count("crash") - nemesis.faulty_nodes_limit
    assert nemesis.faulty_nodes_limit == 2  # a minority of 5
    assert worst[0] == 2


def test_pauses_resume_after_their_duration() -> None:
    tracer = Tracer(keep=True)
    nemesis = Nemesis(interval_ms=50.0, pause_probability=1.0, pause_duration_ms=30.0,
                      faulty_nodes_max=1)
    sim, _ = _cluster(4, nemesis, tracer=tracer)
    sim.run(until_ms=1000.0)
    lines = _nemesis_lines(tracer)
    pauses = [(x["t_ms"], x["target"]) for x in lines if x["action"] == "pause"]
    resumes = [(x["t_ms"], x["target"]) for x in lines if x["action"] == "resume"]
    assert len(pauses) >= 10
    for (t_p, node_p), (t_r, node_r) in zip(pauses, resumes):
        assert node_p == node_r
        assert t_r == pytest.approx(t_p + 30.0)


@pytest.mark.parametrize("kind", PARTITION_KINDS)
def test_each_partition_kind_cuts_the_targets_then_heals(kind: str) -> None:
    tracer = Tracer(keep=True)
    nemesis = Nemesis(interval_ms=100.0, partition_probability=1.0, partition_kinds=(kind,),
                      partition_duration_ms=40.0, targets=IDS)
    sim, _ = _cluster(5, nemesis, tracer=tracer, clients=("client",))
    net = sim.network
    shapes = []

    def look() -> None:
        shapes.append(set(net.blocked))

    line_count = 0
    while not shapes or len(shapes) < 3:
        sim.run(until=lambda n=line_count: len(_nemesis_lines(tracer)) > n)
        line_count = len(_nemesis_lines(tracer))
        if _nemesis_lines(tracer)[-1]["action"] == "partition":
            look()
    for blocked in shapes:
        assert blocked, "a partition blocks something"
        assert all("client" not in pair for pair in blocked), "only targets are cut"
    detail = [x for x in _nemesis_lines(tracer) if x["action"] == "partition"][0]
    assert detail["partition"] == kind
    first = shapes[0]
    if kind == "one_way":
        assert all((b, a) not in first for a, b in first)
    else:
        assert all((b, a) in first for a, b in first)
    if kind == "isolate":
        assert {x for pair in first for x in pair} == set(IDS)
        assert len(first) == 2 * 4
    if kind == "majority_minority":
        assert len(detail["majority"]) == 3
        assert len(detail["minority"]) == 2
    if kind == "bridge":
        assert all(detail["bridge"] not in pair for pair in first)
    # Each partition is healed after its duration.
    sim.run(until_ms=sim.now_ms + 40.0)
    assert net.blocked == set()


def test_partition_heal_leaves_the_tests_own_blocks_alone() -> None:
    nemesis = Nemesis(interval_ms=30.0, partition_probability=1.0, partition_duration_ms=10.0)
    sim, _ = _cluster(6, nemesis)
    sim.network.block("n0", "n1")
    nemesis.heal_and_stop(500.0)
    sim.run(until_ms=600.0)
    assert sim.network.blocked == {("n0", "n1")}


def test_clock_faults_skew_and_drift_then_reset() -> None:
    tracer = Tracer(keep=True)
    nemesis = Nemesis(interval_ms=50.0, clock_probability=1.0, clock_skew_ms_max=1000.0,
                      clock_drift_max=0.5)
    sim, _ = _cluster(7, nemesis, tracer=tracer)
    sim.run(until_ms=500.0)
    skews = [abs(sim.hosts[i].clock_ms() - sim.now_ms) for i in IDS]
    assert max(skews) > 10.0
    clocks = [x for x in _nemesis_lines(tracer) if x["action"] == "clock"]
    assert all(abs(x["jump_ms"]) <= 1000.0 and abs(x["drift"]) <= 0.5 for x in clocks)
    nemesis.heal_and_stop(600.0)
    sim.run(until_ms=700.0)
    for i in IDS:
        assert sim.hosts[i].clock_ms() == sim.now_ms
        assert sim.hosts[i].clock_rate == 1.0


def test_link_faults_raise_loss_and_duplication_then_restore_the_link() -> None:
    tracer = Tracer(keep=True)
    original = LinkModel()
    nemesis = Nemesis(interval_ms=100.0, link_fault_probability=0.5, loss_probability_max=0.5,
                      duplicate_probability_max=0.5, link_fault_duration_ms=80.0)
    log: list = []
    sim = Simulator(8, network=Network(original), tracer=tracer)
    for i in IDS:
        sim.add_node(i, lambda: Gossip(sim, log, period_ms=1.0), peers=IDS)
    nemesis.install(sim)
    sim.run(until_ms=3000.0)
    links = [x for x in _nemesis_lines(tracer) if x["action"] == "link"]
    assert len(links) >= 5
    assert all(0 <= x["loss_probability"] <= 0.5 for x in links)
    assert sim.drops > 0
    nemesis.heal_and_stop(3000.0)
    sim.run(until_ms=3001.0)
    assert sim.network.default == original
    assert sim.network.fast_latency is not None


def test_targets_limit_who_is_hit() -> None:
    tracer = Tracer(keep=True)
    nemesis = Nemesis(interval_ms=10.0, crash_probability=1.0, pause_probability=1.0,
                      clock_probability=1.0, clock_skew_ms_max=5.0, targets=("n1", "n2"),
                      faulty_nodes_max=1)
    sim, _ = _cluster(9, nemesis, tracer=tracer)
    sim.run(until_ms=1000.0)
    hit = {x["target"] for x in _nemesis_lines(tracer) if "target" in x}
    assert hit == {"n1", "n2"}


def test_heal_and_stop_restores_everything_and_the_cluster_makes_progress() -> None:
    """The liveness phase: after heal_and_stop every node is up, unpaused and
    connected, no fault is injected any more, and every node hears from the
    others within a bound."""
    tracer = Tracer(keep=True)
    nemesis = Nemesis(interval_ms=30.0, crash_probability=0.3, pause_probability=0.3,
                      partition_probability=0.3, clock_probability=0.2, clock_skew_ms_max=50.0,
                      clock_drift_max=0.2, link_fault_probability=0.2, loss_probability_max=0.3,
                      duplicate_probability_max=0.1, restart_delay_ms=10_000.0,
                      pause_duration_ms=10_000.0, partition_duration_ms=10_000.0)
    sim, log = _cluster(10, nemesis, tracer=tracer)
    nemesis.heal_and_stop(2000.0)
    sim.run(until_ms=1999.0)
    assert sum(not sim.hosts[i].ready for i in IDS) >= 1  # faults were still in force
    sim.run(until_ms=2000.0)
    assert nemesis.stopped
    assert all(sim.hosts[i].ready for i in IDS)
    assert sim.network.blocked == set()
    assert sim.network.fast_latency is not None
    healed_at = len(_nemesis_lines(tracer))
    sim.run(until_ms=2500.0)
    assert len(_nemesis_lines(tracer)) == healed_at  # no more faults
    after = {(src, dst) for t, src, dst in log if t > 2000.0}
    assert {dst for _, dst in after} == set(IDS)
    assert {src for src, _ in after} == set(IDS)


def test_the_schedule_is_a_function_of_the_seed() -> None:
    def schedule(seed: int) -> list[str]:
        tracer = Tracer(keep=True)
        nemesis = Nemesis(interval_ms=25.0, crash_probability=0.3, pause_probability=0.3,
                          partition_probability=0.3, clock_probability=0.3, clock_skew_ms_max=10.0)
        sim, _ = _cluster(seed, nemesis, tracer=tracer)
        sim.run(until_ms=1000.0)
        return [line for line in tracer.lines or [] if '"kind":"nemesis"' in line]

    a, b, c = schedule(11), schedule(11), schedule(12)
    assert len(a) > 20
    assert a == b
    assert a != c
