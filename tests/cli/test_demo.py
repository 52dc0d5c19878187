"""``synod demo`` from the command line, as ``make demo`` runs it: small files
packed into a few dozen map tasks, one worker killed and its lost map output
re-executed, the same job in the simulator, and a trace-view page written;
then the KV store on Raft with its leader killed, every acknowledged key
read back from the survivors, and nothing left running; then ZooKeeper on
Zab, its leader killed while one kazoo client holds a lock and leads an
election: she keeps both (her session moves), the other client gets each
only after she lets go, and nothing is left running."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from synod.cli.demo_cmd import DEMO_SPLIT_SIZE_BYTES, stdlib_sources
from synod.mapreduce._splits import plan_splits

SYNOD = [sys.executable, "-m", "synod.cli.main"]


def test_demo_explains_the_kill_and_writes_a_trace_view(tmp_path: Path) -> None:
    root, files = stdlib_sources()
    nsplits = len(plan_splits([(str(p), p.stat().st_size) for p in files], DEMO_SPLIT_SIZE_BYTES))
    assert nsplits < len(files) // 20  # ~1,800 files, a few dozen map tasks
    env = {**os.environ, "TMPDIR": str(tmp_path), "COLUMNS": "200"}
    proc = subprocess.run([*SYNOD, "demo"], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert f"packed into {nsplits} map tasks" in out
    victim = re.search(r"killed (worker-\d) \(SIGKILL\) with (\d+)/(\d+) map tasks done", out)
    assert victim is not None, out
    assert int(victim.group(3)) == nsplits
    assert int(victim.group(2)) >= nsplits / 2
    # the coordinator's side of the story, from its trace
    assert f"coordinator: {victim.group(1)} came back as a new incarnation" in out
    assert "re-execute" in out and "lived on the dead worker's disk" in out
    reexecuted = re.search(r"│ re-executions\s+│\s+(\d+) │", out)
    assert reexecuted is not None and int(reexecuted.group(1)) >= 1, out
    assert out.count("identical") == 2  # the real job and the simulated one, against the sequential run
    assert re.search(r"the job committed its output after [\d.]+ s and took [\d.]+ s in all .* against [\d.]+ s "
                     r"for the sequential run", out)
    page = re.search(r"trace view: (\S+\.html)", out)
    assert page is not None, out
    html = Path(page.group(1))
    assert html.is_relative_to(tmp_path)
    assert html.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    trace = html.with_name("sim-trace.jsonl")
    kinds = trace.read_text(encoding="utf-8")
    assert '"kind":"crash"' in kinds and '"kind":"reexecute"' in kinds
    # act 2: the KV store on Raft, its leader killed mid-stream
    assert "act 2: a Redis-compatible KV store on Raft" in out
    killed = re.search(r"killed (n\d), the leader, with SIGKILL \((\d+) keys acknowledged", out)
    assert killed is not None, out
    elected = re.search(r"(n\d) elected leader of term (\d+), ([\d.]+) s after the kill", out)
    assert elected is not None and elected.group(1) != killed.group(1) and int(elected.group(2)) >= 2, out
    present = re.search(r"all (\d+) keys present on (n\d) and (n\d)", out)
    assert present is not None and int(present.group(1)) > int(killed.group(2)), out
    assert killed.group(1) not in present.group(2, 3)
    assert "none of the cluster's processes runs" in out
    # act 3: ZooKeeper on Zab, its leader killed under a lock and an election
    act3 = out[out.index("act 3: ZooKeeper on Zab"):]
    zk_killed = re.search(r"killed (zk\d), the ensemble's leader, with SIGKILL", act3)
    assert zk_killed is not None, act3
    zk_elected = re.search(r"(zk\d) established as leader of epoch (\d+), [\d.]+ s after the kill", act3)
    assert zk_elected is not None and zk_elected.group(1) != zk_killed.group(1), act3
    assert int(zk_elected.group(2)) >= 2
    moved = re.search(r"alice's client reconnected to (zk\d) [\d.]+ s after the kill, with the same session", act3)
    assert moved is not None and moved.group(1) != zk_killed.group(1), act3
    story = ["alice holds the lock", "alice wins the election", "bob waits for the lock and in the election",
             "killed zk", "alice still holds the lock; bob still waits", "alice releases the lock",
             "bob holds the lock", "alice closes her session", "bob wins the election",
             "the lock and the election moved on correctly", "none of the ensemble's processes runs"]
    at = [act3.find(line) for line in story]
    assert -1 not in at and at == sorted(at), act3
    assert "failed" not in act3
    # only the trace and its page are left behind
    assert sorted(p.name for p in html.parent.iterdir()) == ["sim-trace.html", "sim-trace.jsonl"]
