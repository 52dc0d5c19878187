"""Raft over real TCP processes, driven only through the command line (issue
4, part 2): ``synod cluster`` starts, kills and restarts the node processes,
``synod raft`` reads their state and submits commands and membership changes.

Every wait is a poll with a deadline (``wait_until``); each CLI call has its
own ``--timeout``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from synod.kv.simple import FACTORY
from synod.runtime.testing import wait_until

IDS = ("n1", "n2", "n3")
ELECTION_DEADLINE_S = 15.0   # Lab 3: a new leader within five seconds; three times that for a loaded CI box
CATCH_UP_DEADLINE_S = 15.0
CLI_TIMEOUT_S = 60.0


def synod(run_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``synod ARGS --run-dir RUN_DIR`` as a separate process."""
    done = subprocess.run([sys.executable, "-m", "synod.cli.main", *args, "--run-dir", str(run_dir)],
                          capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
    if check:
        assert done.returncode == 0, f"synod {' '.join(args)}: exit {done.returncode}\n{done.stdout}{done.stderr}"
    return done


def statuses(run_dir: Path) -> dict[str, dict[str, Any] | None]:
    return json.loads(synod(run_dir, "raft", "status", "--json").stdout)


def leader(run_dir: Path, among: tuple[str, ...], term_above: int = 0) -> dict[str, Any] | None:
    """The status (with its ``node``) of the highest-term leader among ``among``, above ``term_above``."""
    st = statuses(run_dir)
    leaders = [dict(s, node=n) for n, s in st.items() if n in among and s is not None and s["role"] == "leader"]
    best = max(leaders, key=lambda s: s["term"], default=None)
    return best if best is not None and best["term"] > term_above else None


def put(run_dir: Path, key: str, value: str) -> int:
    """``synod raft put``; the log index it was applied at."""
    out = synod(run_dir, "raft", "put", key, value, "--timeout", str(ELECTION_DEADLINE_S)).stdout
    assert out.startswith("index "), out
    return int(out.split()[1].rstrip(":"))


def applied_everywhere(run_dir: Path, nodes: tuple[str, ...], index: int) -> bool:
    st = statuses(run_dir)
    return all(st[n] is not None and st[n]["applied_index"] >= index for n in nodes)


def test_leader_killed_new_leader_commits_old_catches_up(tmp_path: Path) -> None:
    """Raft sections 5.2-5.4 on real processes: after SIGKILL of the leader
    the two survivors elect a leader of a higher term that commits new
    entries; the restarted old leader recovers from its disk and applies them."""
    run = tmp_path / "run"
    synod(run, "cluster", "up", "--nodes", "3", "--factory", FACTORY)
    try:
        first = wait_until(lambda: leader(run, IDS), ELECTION_DEADLINE_S, "a first leader")
        before = [put(run, f"k{i}", "before") for i in range(3)]
        assert before == sorted(before) and len(set(before)) == 3, f"distinct rising indexes: {before}"

        old = first["node"]
        synod(run, "cluster", "kill", old)
        assert statuses(run)[old] is None, f"{old} still answers after SIGKILL"
        survivors = tuple(n for n in IDS if n != old)
        second = wait_until(lambda: leader(run, survivors, term_above=first["term"]), ELECTION_DEADLINE_S,
                            f"a new leader among {survivors} after {old} was killed")
        after = [put(run, f"k{i}", "after") for i in range(3)]
        assert min(after) > max(before), (before, after)

        synod(run, "cluster", "restart", old)
        wait_until(lambda: applied_everywhere(run, IDS, max(after)), CATCH_UP_DEADLINE_S,
                   f"every server, {old} too, applying index {max(after)}")
        back = statuses(run)[old]
        assert back is not None and back["term"] >= second["term"]
        for how in ((), ("--via-log",)):
            out = synod(run, "raft", "get", "k0", *how).stdout
            assert out.rstrip().endswith('k0 = "after"'), (how, out)
    finally:
        synod(run, "cluster", "down", check=False)


def test_membership_changes_while_serving_traffic(tmp_path: Path) -> None:
    """Thesis 4.1-4.2 on real processes: n4 starts outside the voters, joins
    as a learner, is promoted once caught up, and n1 is removed, while a
    client keeps appending; every acknowledged append is in the final value,
    in order, and the last configuration is n2,n3,n4."""
    run = tmp_path / "run"
    synod(run, "cluster", "up", "--nodes", "4", "--factory", FACTORY,
          "--params", json.dumps({"voters": list(IDS)}))
    acked: list[str] = []
    stop = threading.Event()

    def client() -> None:
        i = 0
        while not stop.is_set():
            token = f"<{i}>"
            done = synod(run, "raft", "append", "log", token, "--timeout", str(ELECTION_DEADLINE_S), check=False)
            if done.returncode == 0:
                acked.append(token)
            i += 1

    try:
        wait_until(lambda: leader(run, IDS), ELECTION_DEADLINE_S, "a first leader")
        assert statuses(run)["n4"]["learners"] == ["n4"], "n4 starts as a learner of its own"
        traffic = threading.Thread(target=client, daemon=True)
        traffic.start()
        wait_until(lambda: len(acked) >= 2, ELECTION_DEADLINE_S, "traffic flowing")
        timeout = ("--timeout", str(ELECTION_DEADLINE_S))
        refused = synod(run, "raft", "member", "promote", "n4", "--timeout", "0.5", check=False)
        assert refused.returncode == 1 and "not a learner" in refused.stderr, refused.stderr
        unknown = synod(run, "raft", "member", "add-learner", "n9", check=False)
        assert unknown.returncode == 2 and "no node 'n9'" in unknown.stderr, unknown.stderr
        synod(run, "raft", "member", "add-learner", "n4", *timeout)
        synod(run, "raft", "member", "promote", "n4", *timeout)
        synod(run, "raft", "member", "remove", "n1", *timeout)
        n_before = len(acked)
        wait_until(lambda: len(acked) >= n_before + 2, ELECTION_DEADLINE_S, "traffic after removing n1")
        stop.set()
        traffic.join(CLI_TIMEOUT_S)
        st = statuses(run)
        for n in ("n2", "n3", "n4"):
            assert st[n] is not None and st[n]["voters"] == ["n2", "n3", "n4"], (n, st[n])
        out = synod(run, "raft", "get", "log", *timeout).stdout
        value = json.loads(out.split(" = ", 1)[1])
        positions = [value.find(t) for t in acked]
        assert -1 not in positions, f"acknowledged appends missing: {acked} vs {value!r}"
        assert positions == sorted(positions), f"appends out of order: {value!r}"
    finally:
        stop.set()
        synod(run, "cluster", "down", check=False)
