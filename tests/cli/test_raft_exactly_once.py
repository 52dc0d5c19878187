"""``synod raft append`` retried over slow links applies once (issue 8, part 2;
Ongaro's thesis, section 6.3): the CLI keeps one client id and one request id
across its retries, so the leader's session table recognises each resend;
a write whose outcome is unknown says so and exits with its own status.

Real processes over TCP; every wait is a poll with a deadline.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.raft.test_real_smoke import statuses, synod

from synod.cli.raft_cmd import EXIT_UNKNOWN
from synod.harness.raft_client import CALL_TIMEOUT_S
from synod.kv.simple import FACTORY
from synod.runtime.testing import wait_until

# Elections after 3-6 s without a heartbeat (20 ms ticks): a 1.5 s delay on
# the leader's links holds every commit back for longer than one attempt
# waits, without deposing the leader.
PARAMS = {"election_ticks": 150}
DELAY_MS = 1500.0
ELECTION_DEADLINE_S = 30.0
assert DELAY_MS / 1000.0 > CALL_TIMEOUT_S


def stable_leader(run_dir: Path) -> str | None:
    """The leader every server names, in one term; None until there is one."""
    st = statuses(run_dir)
    if any(s is None for s in st.values()):
        return None
    leaders = {s["leader"] for s in st.values()}
    terms = {s["term"] for s in st.values()}
    return leaders.pop() if len(leaders) == 1 and len(terms) == 1 and None not in leaders else None


def all_applied(run_dir: Path) -> bool:
    """Every server has applied every entry the leader holds."""
    st = statuses(run_dir)
    if any(s is None for s in st.values()):
        return False
    last = max(s["last_index"] for s in st.values())
    return all(s["applied_index"] == last for s in st.values())


def test_delayed_leader_retried_append_applies_once_and_unknown_outcome_exits_3(tmp_path: Path) -> None:
    """Thesis 6.3: with the leader's links delayed past one attempt's wait,
    ``append --timeout 1`` ends with "outcome unknown" (status 3), and
    ``append`` with time to retry succeeds; after healing, the value holds
    each token at most once, the retried one exactly once."""
    run = tmp_path / "run"
    synod(run, "cluster", "up", "--nodes", "3", "--factory", FACTORY, "--params", json.dumps(PARAMS))
    try:
        leader = wait_until(lambda: stable_leader(run), ELECTION_DEADLINE_S, "a leader all servers know")
        synod(run, "raft", "put", "d", "[", "--timeout", "10")
        synod(run, "cluster", "delay", str(DELAY_MS), "--node", leader)

        unknown = synod(run, "raft", "append", "d", "<unknown>", "--timeout", "1", check=False)
        assert unknown.returncode == EXIT_UNKNOWN, unknown
        message = unknown.stderr.strip()
        assert "outcome unknown (may have been applied)" in message, message
        assert "failed" not in message and "gave up" not in message, message
        assert len(message.splitlines()) == 1, message

        started = time.monotonic()
        once = synod(run, "raft", "append", "d", "<once>", "--timeout", "8", check=False)
        took_s = time.monotonic() - started
        assert once.returncode == 0, once
        assert took_s > CALL_TIMEOUT_S, f"answered in {took_s:.2f} s: the delay did not make the CLI retry"

        synod(run, "cluster", "heal", "--all")
        assert stable_leader(run) == leader, "the delay deposed the leader; the test's premise failed"
        wait_until(lambda: all_applied(run), ELECTION_DEADLINE_S, "every server to apply the whole log")
        out = synod(run, "raft", "get", "d", "--timeout", "10").stdout
        value = json.loads(out.split(" = ", 1)[1])
        assert value.count("<once>") == 1, value
        assert value.count("<unknown>") <= 1, value
        assert value.startswith("["), value
    finally:
        synod(run, "cluster", "down", check=False)
