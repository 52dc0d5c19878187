"""A large simulated job under random worker crashes and partitions, over many
seeds (paper section 3.3; the issue's 50 workers and 200 map tasks).

``SYNOD_CI_SEEDS`` sets how many seeds run (CI: 20). A failure names the seed
and the command that replays it.
"""

from __future__ import annotations

import pytest
from tests.conftest import ci_seeds
from tests.mapreduce._jobs import lines_of, load_books, reference, spec

from synod.cli._mr_sim import kill_nemesis
from synod.harness.mapreduce import run_sim_job, scripted_crashes

SPLIT_SIZE_BYTES = 16_890  # cuts the eight books into exactly 200 map tasks
COMPUTE_MS_PER_MB = 20_000.0  # a map task of 16.9 KB takes ~340 ms of virtual time
KILL_PROBABILITY = 0.004  # per worker per virtual second: 50 workers lose one every 5 s
PARTITION_PROBABILITY = 0.1
SCRIPTED_CRASHES = (("worker-1", 700.0), ("worker-2", 1400.0))


@pytest.mark.parametrize("seed", range(1, ci_seeds() + 1))
def test_fifty_workers_two_hundred_maps_under_crashes_and_partitions(gutenberg_files, seed: int) -> None:
    books = load_books(gutenberg_files)
    job = spec("wc", books, nreduce=10, split_size_bytes=SPLIT_SIZE_BYTES, sim_compute_ms_per_mb=COMPUTE_MS_PER_MB)
    # Besides the random faults, two workers always die mid-job, so every seed
    # exercises re-execution of completed map tasks (section 3.3).
    result = run_sim_job(job, books, seed=seed, workers=50, setup=scripted_crashes(SCRIPTED_CRASHES),
                         nemesis=kill_nemesis(KILL_PROBABILITY, PARTITION_PROBABILITY, 50))
    replay = (f"seed {seed}; replay: synod mr run --sim --seed {seed} --app wc --workers 50 --reduces 10 "
              f"--split-size {SPLIT_SIZE_BYTES} --sim-compute-ms-per-mb {COMPUTE_MS_PER_MB:g} "
              f"--kill-workers {KILL_PROBABILITY} --partitions {PARTITION_PROBABILITY} "
              + "".join(f"--crash {node}@{t_ms:g} " for node, t_ms in SCRIPTED_CRASHES) + "--out OUT "
              "../shared/data/gutenberg/pg-*.txt")
    assert result.status.maps_total == 200, replay
    assert result.done, replay
    assert lines_of(result.outputs) == _reference(books), replay
    assert result.crashes >= 2, replay
    assert result.status.reexecutions > 0, f"{replay}: no completed map task was re-executed"


_cache: dict[int, list[str]] = {}


def _reference(books: dict[str, bytes]) -> list[str]:
    key = len(books)
    if key not in _cache:
        _cache[key] = reference("wc", books)
    return _cache[key]
