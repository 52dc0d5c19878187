"""GFS under the nemesis (issue 13 section 4): seeded runs of
synod.harness.gfs with the checkers of section 2.7, the unsafe options
caught, and a run replayed exactly."""

from __future__ import annotations

import pytest
from tests.conftest import ci_seeds

from synod.harness.gfs import UNSAFE_OPTIONS, run_gfs
from synod.sim import Tracer


def _failures(seeds: range, **options: object) -> list[tuple[int, list[str], str]]:
    out = []
    for seed in seeds:
        r = run_gfs(seed, **options)  # type: ignore[arg-type]
        if r.verdict != "ok":
            out.append((seed, [f"{v.checker}: {v.summary}" for v in r.verdicts if v.status != "ok"], r.replay))
    return out


def test_the_section_2_7_guarantees_hold_under_the_full_nemesis() -> None:
    bad = _failures(range(1, ci_seeds(20) + 1))
    assert not bad, "\n".join(f"seed {s}: {why}\n  replay: {cmd}" for s, why, cmd in bad)


def test_without_faults_every_operation_succeeds() -> None:
    r = run_gfs(7, kinds=(), disk_faults=False)
    assert r.verdict == "ok", [v.summary for v in r.verdicts]
    ops = r.scenario.history.ops
    assert ops and all(op.ok for op in ops)
    assert {op.kind for op in ops} == {"write", "append", "read"}


@pytest.mark.parametrize("unsafe", UNSAFE_OPTIONS)
def test_each_unsafe_option_is_caught_within_a_few_seeds(unsafe: str) -> None:
    """skip-version-bump: a replica that missed mutations while down passes
    for current; skip-checksums: flipped bits reach a reader."""
    for seed in range(1, 16):
        r = run_gfs(seed, unsafe=unsafe)
        if r.verdict == "illegal":
            assert f"--seed {seed}" in r.replay and f"--unsafe {unsafe}" in r.replay
            return
    pytest.fail(f"--unsafe {unsafe} was not caught in 15 seeds")


def test_a_seed_replays_to_the_same_trace() -> None:
    traces = []
    for _ in range(2):
        tracer = Tracer(keep=True)
        run_gfs(3, tracer=tracer, time_ms=3_000.0)
        traces.append(tracer.lines)
    assert traces[0] == traces[1] and len(traces[0]) > 1000
