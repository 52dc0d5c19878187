"""``synod mr run`` and ``synod demo`` from the command line, as a user runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.mapreduce._jobs import load_books, reference

SYNOD = [sys.executable, "-m", "synod.cli.main"]


def synod(*args: str, cwd: Path, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SYNOD, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout_s)


@pytest.mark.parametrize("args, message", [
    (["--app", "wc", "--out", "out", "/no/such/input"], "input '/no/such/input' does not exist"),
    (["--app", "nosuch_app_module", "--out", "out", "INPUT"], "app module 'nosuch_app_module' not found"),
    (["--app", "noreduce.py", "--out", "out", "INPUT"], "has no reduce() function"),
    (["--app", "wc", "--reduces", "0", "--out", "out", "INPUT"], "--reduces must be between 1"),
    (["--app", "grep", "--out", "out", "INPUT"], "grep needs --app-arg pattern=REGEX"),
    (["--app", "wc", "--kill-workers", "0.5", "--out", "out", "INPUT"], "need --sim"),
])
def test_bad_input_fails_with_one_line_and_status_2(tmp_path: Path, gutenberg_files, args, message) -> None:
    (tmp_path / "noreduce.py").write_text("def map(filename, contents):\n    return []\n")
    args = [str(gutenberg_files[0]) if a == "INPUT" else a for a in args]
    proc = synod("mr", "run", *args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert message in lines[0]
    assert not (tmp_path / "out").exists(), "bad input left an output directory behind"


@pytest.mark.parametrize("old", ["mr-out-0", "_SUCCESS"])
def test_refuses_an_output_directory_with_old_outputs(tmp_path: Path, gutenberg_files, old: str) -> None:
    """An old output or an old _SUCCESS (which would vouch for this run's
    outputs) makes the command refuse, changing nothing."""
    out = tmp_path / "out"
    out.mkdir()
    (out / old).write_text("old 1\n")
    proc = synod("mr", "run", "--app", "wc", "--out", str(out), str(gutenberg_files[0]), cwd=tmp_path)
    assert proc.returncode == 2
    assert (out / old).read_text() == "old 1\n"
    assert [p.name for p in out.iterdir()] == [old]


def test_simulated_run_same_seed_gives_byte_identical_trace(tmp_path: Path, gutenberg_files) -> None:
    """The same seed and arguments give a byte-identical trace file; the
    command prints its seed and replay command."""
    books = [str(p) for p in gutenberg_files[:4]]
    common = ["--sim", "--seed", "5", "--kill-workers", "0.6", "--sim-compute-ms-per-mb", "10000",
              "--app", "wc", "--workers", "4", "--reduces", "3"]
    runs = []
    for i in (1, 2):
        proc = synod("mr", "run", *common, "--trace", f"t{i}.jsonl", "--out", f"out{i}", *books, cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "seed 5" in proc.stdout
        assert "replay: synod mr run --sim --seed 5" in proc.stdout
        runs.append((tmp_path / f"t{i}.jsonl").read_bytes())
    assert runs[0] == runs[1]
    assert runs[0].count(b"\n") > 100
    assert b'"kind":"crash"' in runs[0], "the nemesis killed no worker"
    out = sorted(line for f in sorted((tmp_path / "out1").glob("mr-out-*")) for line in f.read_text().splitlines())
    assert out == reference("wc", load_books([Path(b) for b in books]))
    assert (tmp_path / "out1" / "_SUCCESS").read_text() == "mr-out-0\nmr-out-1\nmr-out-2\n"


def test_check_determinism_reports_identical_traces(tmp_path: Path, gutenberg_files) -> None:
    proc = synod("mr", "run", "--sim", "--seed", "9", "--check-determinism", "--kill-workers", "0.5",
                 "--app", "indexer", "--workers", "3", "--reduces", "2", "--out", "out",
                 *[str(p) for p in gutenberg_files[:3]], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "deterministic: seed 9 gave the same trace twice" in proc.stdout


def test_real_run_from_the_command_line(tmp_path: Path, gutenberg_files) -> None:
    """A real cluster of 2 worker processes; the output equals the sequential wc."""
    books = gutenberg_files[:3]
    proc = synod("mr", "run", "--app", "wc", "--workers", "2", "--reduces", "3", "--out", "out",
                 "--run-dir", "run", *[str(p) for p in books], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCEEDED" in proc.stdout and "MB/s" in proc.stdout
    out = sorted(line for f in sorted((tmp_path / "out").glob("mr-out-*")) for line in f.read_text().splitlines())
    assert out == reference("wc", load_books(books))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["_SUCCESS", "mr-out-0", "mr-out-1", "mr-out-2"]
