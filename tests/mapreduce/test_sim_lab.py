"""MIT 6.5840 lab 1's test-mr.sh, in the simulator, on the eight books.

Each test names the lab test it mirrors; MapReduce paper sections in the
docstrings.
"""

from __future__ import annotations

import re

import pytest
from tests.mapreduce._jobs import lines_of, load_books, reference, replay_hint, spec

from synod.harness.mapreduce import run_sim_job


@pytest.fixture
def books(gutenberg_files):
    return load_books(gutenberg_files)


def test_wc_equals_sequential_reference(books) -> None:
    """Lab 'wc test'; paper section 2.1. 22,107 distinct words, case kept."""
    result = run_sim_job(spec("wc", books), books, seed=1, workers=3)
    assert result.done
    got = lines_of(result.outputs)
    assert got == reference("wc", books)
    assert len(got) == 22_107
    assert sorted(result.outputs) == [f"mr-out-{r}" for r in range(10)]


def test_wc_without_combiner_equals_reference(books) -> None:
    """Paper section 4.3: the combiner changes cost, never the answer."""
    result = run_sim_job(spec("wc", books, use_combiner=False), books, seed=2, workers=3)
    assert lines_of(result.outputs) == reference("wc", books)


def test_indexer_equals_sequential_reference(books) -> None:
    """Lab 'indexer test'; paper section 2.3 (inverted index)."""
    result = run_sim_job(spec("indexer", books), books, seed=3, workers=2)
    assert lines_of(result.outputs) == reference("indexer", books)


def test_map_parallelism(books) -> None:
    """Lab 'map parallelism test': two workers run map tasks at the same time."""
    result = run_sim_job(spec("mtiming", books), books, seed=4, workers=2)
    lines = lines_of(result.outputs)
    assert sum(1 for line in lines if line.startswith("times-")) == 2
    parallel = [line for line in lines if line.startswith("parallel-")]
    assert len(parallel) == 2
    # as the lab: some map saw both workers inside nparallel at once
    assert any(re.search(r" 2\b", line) for line in parallel), parallel


def test_reduce_parallelism(books) -> None:
    """Lab 'reduce parallelism test': two workers run reduce tasks at once."""
    result = run_sim_job(spec("rtiming", books), books, seed=5, workers=2)
    lines = lines_of(result.outputs)
    assert len(lines) == 10
    assert sum(1 for line in lines if re.fullmatch(r"[a-j] 2", line)) >= 2, lines


def test_job_count(books) -> None:
    """Lab 'job count test': without faults, exactly 8 map executions."""
    result = run_sim_job(spec("jobcount", books), books, seed=6, workers=2)
    assert lines_of(result.outputs) == ["a 8"]
    assert result.status.map_executions == 8


def test_early_exit(books) -> None:
    """Lab 'early exit test': no worker exits before every output is committed
    (paper section 3.1 step 7: the master wakes the user program when all
    tasks are done)."""
    result = run_sim_job(spec("early_exit", books), books, seed=7, workers=3)
    assert result.done
    assert len(lines_of(result.outputs)) == 8
    worker_exits = {n: t for n, t in result.exit_ms.items() if n.startswith("worker-")}
    assert len(worker_exits) == 3
    assert min(worker_exits.values()) >= result.commit_ms


def test_crash_output_equals_nocrash(books) -> None:
    """Lab 'crash test': workers exit or stall at random inside map and reduce
    (paper section 3.3); the output equals the nocrash app's."""
    expected = reference("nocrash", books)
    respawns = 0
    for seed in range(11, 16):
        result = run_sim_job(spec("crash", books), books, seed=seed, workers=3)
        assert result.done, replay_hint(seed, "--app crash --workers 3 ...")
        assert lines_of(result.outputs) == expected, replay_hint(seed, "--app crash --workers 3 ...")
        respawns += result.respawns
    assert respawns > 0, "the crash app never crashed a worker in five seeds"


def test_sort_outputs_are_globally_sorted(books) -> None:
    """Paper section 5.3: with a range partitioner, concatenated outputs are sorted."""
    result = run_sim_job(spec("sort", books, nreduce=4), books, seed=8, workers=3)
    concatenated: list[str] = []
    for r in range(4):
        part = result.outputs[f"mr-out-{r}"].decode().splitlines()
        assert part, f"mr-out-{r} is empty: the sample put no keys there"
        concatenated.extend(part)
    keys = [line.rsplit(" ", 1)[0] for line in concatenated]
    assert keys == sorted(keys)
    assert concatenated == reference("sort", books)


def test_grep_finds_matching_lines(books) -> None:
    """Paper section 2.3 (distributed grep)."""
    args = {"pattern": r"\bWatson\b"}
    result = run_sim_job(spec("grep", books, app_args=args), books, seed=9, workers=2)
    got = lines_of(result.outputs)
    assert got == reference("grep", books, args)
    assert got and all("Watson" in line for line in got)
