"""``synod mr run`` and ``synod demo`` from the command line, as a user runs them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
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
    assert "--force" in proc.stderr, "the refusal does not say how to replace the output"
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


# -- issue 9: what a newcomer hits first ----------------------------------------------------

STDLIB = Path(sysconfig.get_paths()["stdlib"])
SYNOD_SCRIPT = Path(sys.executable).parent / "synod"  # the console script: sys.path[0] is not the cwd
# the README's fault-injection example (it injected no fault when --kill-workers was a probability per
# 0.5 s and the job lasted 0.5 s of virtual time); robust over seeds 1-30 on asyncio's and email's sources
FAULT_EXAMPLE = ["--sim", "--seed", "7", "--kill-workers", "0.1", "--sim-compute-ms-per-mb", "20000",
                 "--trace", "run.jsonl", "--app", "wc", "--workers", "20", "--reduces", "8", "--glob", "*.py"]


def _text_inputs(d: Path) -> dict[str, bytes]:
    d.mkdir()
    books = {}
    for name in ("a.txt", "b.txt"):
        books[str(d / name)] = f"the quick brown fox {name} jumps over the lazy dog the end\n".encode() * 50
        (d / name).write_bytes(books[str(d / name)])
    return books


def _out_lines(out: Path) -> list[str]:
    return sorted(line for f in sorted(out.glob("mr-out-*")) for line in f.read_text().splitlines())


def test_force_replaces_old_output_and_leaves_nothing_beside_it(tmp_path: Path) -> None:
    books = _text_inputs(tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()
    for name in ("mr-out-0", "mr-out-7", "_SUCCESS", "stray"):
        (out / name).write_text("old 1\n")
    proc = synod("mr", "run", "--sim", "--force", "--app", "wc", "--reduces", "2", "--out", "out", "in",
                 cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["_SUCCESS", "mr-out-0", "mr-out-1"]
    assert _out_lines(out) == reference("wc", books)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"], "a temp output dir was left behind"


def test_force_swap_is_all_or_nothing(tmp_path: Path) -> None:
    """The new output replaces the old one only on commit; a failed job's
    directory goes and the old output stays as it was."""
    from synod.cli._mr_out import plan_output

    out = tmp_path / "out"
    out.mkdir()
    (out / "mr-out-0").write_text("old\n")
    plan = plan_output(out, force=True)
    assert plan.replacing
    (plan.write_dir / "mr-out-0").write_text("new\n")
    assert (out / "mr-out-0").read_text() == "old\n", "the old output changed before the commit"
    plan.abandon()
    assert (out / "mr-out-0").read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    plan = plan_output(out, force=True)
    (plan.write_dir / "mr-out-0").write_text("new\n")
    plan.commit()
    assert [p.name for p in out.iterdir()] == ["mr-out-0"]
    assert (out / "mr-out-0").read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_binary_input_files_are_skipped_with_a_warning(tmp_path: Path) -> None:
    books = _text_inputs(tmp_path / "in")
    (tmp_path / "in" / "image.bin").write_bytes(bytes(range(256)) * 40)
    (tmp_path / "in" / "latin1.txt").write_bytes("caf\xe9 na\xefve ".encode("latin-1") * 10)
    proc = synod("mr", "run", "--sim", "--app", "wc", "--reduces", "2", "--out", "out", "in", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    warned = [line for line in proc.stderr.splitlines() if "skipping binary file" in line]
    assert sorted(Path(line.split()[-1]).name for line in warned) == ["image.bin", "latin1.txt"]
    assert _out_lines(tmp_path / "out") == reference("wc", books)


def test_app_module_in_the_current_directory_is_found(tmp_path: Path) -> None:
    """``--app mymodule`` finds ./mymodule.py, as ``python -m`` would: in the
    simulator, and in real worker processes."""
    books = _text_inputs(tmp_path / "in")
    (tmp_path / "mywc.py").write_text("from synod.mapreduce.apps.wc import map, reduce\n")
    for mode in (["--sim"], ["--workers", "2"]):
        out = f"out{len(mode)}"
        proc = subprocess.run([str(SYNOD_SCRIPT), "mr", "run", *mode, "--app", "mywc", "--reduces", "2",
                               "--out", out, "in"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert _out_lines(tmp_path / out) == reference("wc", books)


def test_real_run_removes_its_temp_dir_unless_kept(tmp_path: Path) -> None:
    _text_inputs(tmp_path / "in")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp)}
    common = [*SYNOD, "mr", "run", "--app", "wc", "--workers", "2", "--reduces", "2", "in"]
    proc = subprocess.run([*common, "--out", "o1"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert list(tmp.iterdir()) == [], "the run left its temp dir behind"
    proc = subprocess.run([*common, "--out", "o2", "--keep", "--json"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    kept = [p for p in tmp.iterdir() if p.name.startswith("synod-mr-")]
    assert len(kept) == 1
    assert report["run_dir"] == str(kept[0])
    assert f"node logs kept in {kept[0]}" in proc.stderr
    assert (kept[0] / "worker-1" / "node.log").exists()
    assert report["verdict"] == "SUCCEEDED"
    assert report["outputs"] == ["mr-out-0", "mr-out-1"]
    assert report["reexecutions"] == 0 and report["map_tasks"] == 2 and report["wall_s"] > 0


def test_fault_injection_example_injects_faults(tmp_path: Path) -> None:
    """The README's fault-injection example over the standard library's
    asyncio sources (every machine has them) crashes workers and re-executes
    tasks, and still gets the sequential answer."""
    src = STDLIB / "asyncio"
    proc = synod("mr", "run", *FAULT_EXAMPLE, "--out", "out-faults", str(src), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    m = re.search(r"(\d+) re-executions, (\d+) worker crashes", proc.stdout)
    assert m, proc.stdout
    assert int(m.group(1)) >= 1 and int(m.group(2)) >= 1, proc.stdout
    assert b'"kind":"crash"' in (tmp_path / "run.jsonl").read_bytes()
    books = {str(p): p.read_bytes() for p in sorted(src.rglob("*.py"))}
    assert _out_lines(tmp_path / "out-faults") == reference("wc", books)
    proc = synod("mr", "run", *FAULT_EXAMPLE, "--json", "--out", "out-json", str(src), cwd=tmp_path)
    report = json.loads(proc.stdout)
    assert report["verdict"] == "SUCCEEDED" and report["seed"] == 7
    assert report["crashes"] >= 1 and report["reexecutions"] >= 1
    assert report["worker_deaths"], report


def test_every_mr_run_option_has_help() -> None:
    from synod.cli.mr_cmd import run

    missing = [p.name for p in run.params if isinstance(p, __import__("click").Option) and not p.help]
    assert missing == []
