"""Small input files packed into shared splits (Hadoop's
CombineFileInputFormat), end to end in the simulator: fewer map tasks, the
same answer, with and without a worker crash (paper sections 3.1, 3.3)."""

from __future__ import annotations

import random

import pytest
from tests.mapreduce._jobs import lines_of, reference, spec

from synod.harness.mapreduce import run_sim_job
from synod.mapreduce._splits import plan_splits
from synod.mapreduce.simjob import COORDINATOR_ID
from synod.sim import Simulator

WORDS = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma "
         "tau upsilon phi chi psi omega").split()
SPLIT_BYTES = 8192


def documents(n_small: int = 120, n_large: int = 2, seed: int = 5) -> dict[str, bytes]:
    """``n_small`` documents of 50-1500 bytes and ``n_large`` of ~20 KB (cut
    into several ranges at ``SPLIT_BYTES``)."""
    rng = random.Random(seed)
    docs = {}
    for i in range(n_small + n_large):
        size = rng.randint(50, 1500) if i < n_small else 20_000
        lines, length = [], 0
        while length < size:
            line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12)))
            lines.append(line)
            length += len(line) + 1
        docs[f"/in/doc-{i:03d}.txt"] = ("\n".join(lines) + "\n").encode()
    return docs


@pytest.mark.parametrize("app", ["wc", "indexer"])
def test_small_files_share_map_tasks_and_the_answer_is_unchanged(app: str) -> None:
    """122 files run as ~20 map tasks (section 3.1's M pieces, small files
    packed, large ones cut); the output equals the sequential run's."""
    docs = documents()
    sizes = [(p, len(docs[p])) for p in sorted(docs)]
    splits = plan_splits(sizes, SPLIT_BYTES)
    assert len(splits) < len(docs) // 4
    assert any(len(s) > 1 for s in splits)  # packed small files
    assert any(n > 0 for s in splits for _, _, n in s)  # a cut large file
    result = run_sim_job(spec(app, docs, nreduce=3, split_size_bytes=SPLIT_BYTES), docs, seed=11, workers=3)
    assert result.outcome.succeeded
    assert result.status.maps_total == len(splits)
    assert lines_of(result.outputs) == reference(app, docs)


def test_split_size_zero_keeps_one_map_task_per_file() -> None:
    """The lab's rule (its tests count map tasks by input file)."""
    docs = documents(n_small=10, n_large=1)
    result = run_sim_job(spec("wc", docs, nreduce=2), docs, seed=12, workers=2)
    assert result.status.maps_total == len(docs)
    assert lines_of(result.outputs) == reference("wc", docs)


def test_packed_map_output_lost_with_its_worker_is_re_executed() -> None:
    """Section 3.3: a worker crashed with half the map tasks done holds the
    output of packed splits; after it restarts (a new incarnation) the
    coordinator re-executes them, and the answer is still the sequential one."""
    docs = documents()
    job = spec("indexer", docs, nreduce=3, split_size_bytes=SPLIT_BYTES, sim_compute_ms_per_mb=2_000.0)
    crashed: list[tuple[str, int]] = []

    def watch(sim: Simulator) -> None:
        st = sim.hosts[COORDINATOR_ID].node.status()
        held = st.map_outputs_by_worker
        if st.maps_total and st.maps_done >= st.maps_total / 2 and held:
            victim = max(sorted(held), key=lambda w: held[w])
            crashed.append((victim, held[victim]))
            sim.crash(victim)
            sim.call_after(100.0, sim.restart, victim)
            return
        sim.call_after(5.0, watch, sim)

    result = run_sim_job(job, docs, seed=13, workers=3, setup=lambda sim: sim.call_after(5.0, watch, sim))
    assert result.outcome.succeeded
    (victim, held), = crashed
    assert held >= 1
    assert result.status.reexecutions >= held
    assert result.status.worker_deaths == ((victim, "restarted"),)
    assert lines_of(result.outputs) == reference("indexer", docs)
