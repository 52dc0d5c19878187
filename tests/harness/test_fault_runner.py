"""The fault runner's phases and hooks (DESIGN.md section 8), on toy nodes:
the tester acts between events at the times it asks, a batch workload ends
the safety phase itself, a failed assertion inside a node is a verdict,
and the liveness phase asks for progress after the heal."""

from __future__ import annotations

from typing import Any

from synod.core import Context, Node
from synod.harness.runner import ILLEGAL, OK, Scenario, Verdict, run_simulated
from synod.sim import Nemesis, Simulator

TICK_MS = 20.0


class Ticker(Node):
    """Counts its ticks, one every ``TICK_MS``; asserts on a message ``boom``."""

    def __init__(self, seen: list[tuple[float, str]]) -> None:
        self.seen = seen

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer("tick", TICK_MS)

    def on_timer(self, ctx: Context, name: str) -> None:
        self.seen.append((ctx.now_ms, ctx.node_id))
        ctx.set_timer("tick", TICK_MS)

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        assert msg != "boom", "told to fail"


def test_the_tester_runs_after_every_event_up_to_its_time() -> None:
    """A tester asking for t = 100 ms sees the ticks at exactly 100 ms
    already run (Lab 3's tester: sleep until t, then look), and is asked
    again after the heal."""
    seen: list[tuple[float, str]] = []
    calls: list[tuple[float, int]] = []

    def tester(now_ms: float) -> float | None:
        calls.append((now_ms, sum(1 for t, _ in seen if t <= now_ms)))
        return 100.0 if now_ms < 100.0 else None

    r = run_simulated(1, lambda sim: Scenario(servers={"a": lambda: Ticker(seen), "b": lambda: Ticker(seen)},
                                              tester=tester, safety_ms=200.0, liveness_ms=50.0))
    assert calls[0] == (0.0, 0)
    assert calls[1] == (100.0, 10), calls   # both servers' ticks at 20, 40, ..., 100 ms
    assert calls[2][0] == 200.0             # once more after the heal
    assert len(calls) == 3
    assert r.virtual_ms == 250.0
    assert r.verdict == OK


def test_safety_done_ends_the_safety_phase_and_heals_then() -> None:
    """A batch workload: once it is done the nemesis heals at once and the
    liveness phase starts from there."""
    seen: list[tuple[float, str]] = []
    healed: list[float] = []

    def build(sim: Simulator) -> Scenario:
        return Scenario(servers={"a": lambda: Ticker(seen), "b": lambda: Ticker(seen), "c": lambda: Ticker(seen)},
                        nemesis=Nemesis(interval_ms=50.0, pause_probability=0.5),
                        safety_ms=10_000.0, safety_done=lambda: len(seen) >= 30, after_heal=healed.append,
                        liveness_ms=1_000.0, liveness_done=lambda: len(seen) >= 40)
    r = run_simulated(2, build)
    assert len(healed) == 1
    assert healed[0] < 10_000.0
    assert [v.checker for v in r.verdicts] == ["liveness"]
    assert r.verdicts[0].status == OK
    assert r.faults.get("heal_and_stop") == 1


def test_an_assertion_inside_a_node_is_a_verdict_and_ends_the_run() -> None:
    seen: list[tuple[float, str]] = []
    checked: list[bool] = []

    def driver(sim: Simulator) -> None:  # the nodes are up: schedule a poisoned message for "a"
        sim.call_at(55.0, sim.hosts["a"].deliver, "b", "boom", 0)

    def check() -> list[Verdict]:
        checked.append(True)
        return [Verdict("toy", OK, "checked")]

    def build(sim: Simulator) -> Scenario:
        return Scenario(servers={"a": lambda: Ticker(seen), "b": lambda: Ticker(seen)}, driver=driver,
                        safety_ms=1_000.0, liveness_done=lambda: True, check=check, replay="replay --seed {seed}")
    r = run_simulated(3, build)
    assert r.virtual_ms == 55.0
    assert [(v.checker, v.status) for v in r.verdicts] == [("assertion", ILLEGAL), ("toy", OK)]
    assert "told to fail" in r.verdicts[0].summary
    assert checked == [True]
    assert not r.safe
    assert r.replay == "replay --seed 3"


def test_no_progress_after_the_heal_is_a_liveness_failure() -> None:
    seen: list[tuple[float, str]] = []
    r = run_simulated(4, lambda sim: Scenario(servers={"a": lambda: Ticker(seen)}, safety_ms=100.0,
                                              liveness_ms=100.0, liveness_done=lambda: False))
    assert [(v.checker, v.status) for v in r.verdicts] == [("liveness", ILLEGAL)]
    assert r.virtual_ms == 200.0
