"""Single-server membership changes with learners (Ongaro's thesis chapter
4), driving ``Raft`` directly (and, for restarts, the scenario environment's
storage). Voters a, b, c unless said; d and e join as learners."""

from __future__ import annotations

import random
from typing import Any

import pytest
from tests.raft._host import drain

from synod.core import Context, Node
from synod.raft import ADD_LEARNER, FOLLOWER, LEADER, PROMOTE, REMOVE, ConfChange, ConfState, Raft, RaftConfig
from synod.raft.messages import (
    AppendEntries,
    AppendEntriesReply,
    ConfChangeRequest,
    Entry,
    InstallSnapshot,
    ProposeReply,
    RequestVote,
    RequestVoteReply,
)
from synod.raft.node import RaftNodeConfig
from synod.raft.scenario import InteractionEnv
from synod.raft.sim import LabCluster

PEERS = ("a", "b", "c")


def _raft(node_id: str = "a", learners: tuple[str, ...] = (), **config: Any) -> Raft:
    return Raft(node_id, PEERS, random.Random(1), RaftConfig(**config), learners=learners)


def _leader() -> Raft:
    """a, leader of term 1 with its no-op at index 1 committed (b acked)."""
    r = _raft()
    r.campaign(transfer=True)
    r.step("b", RequestVoteReply(term=1, vote_granted=True))
    assert r.role == LEADER
    drain(r)
    r.step("b", AppendEntriesReply(term=1, success=True, match_index=1))
    assert r.log.commit_index == 1
    drain(r)
    return r


def _ack(r: Raft, src: str, index: int) -> None:
    r.step(src, AppendEntriesReply(term=r.term, success=True, match_index=index))


def test_learner_reply_does_not_count_toward_commit() -> None:
    """Thesis 4.2.1: a learner receives the log but is not part of any
    majority. With voters a, b, c and learner d, d's acknowledgement does
    not commit; b's does."""
    r = _leader()
    index, _ = r.propose_conf_change(ConfChange(op=ADD_LEARNER, node_id="d"))
    assert r.conf == ConfState(voters=frozenset(PEERS), learners=frozenset({"d"}))
    assert "d" in r.progress
    _ack(r, "b", index)
    assert r.log.commit_index == index
    placed = r.propose(b"x")
    assert placed is not None
    drain(r)
    _ack(r, "d", placed[0])
    assert r.log.commit_index == index, "a learner's ack alone committed"
    _ack(r, "c", placed[0])
    assert r.log.commit_index == placed[0]


def test_learner_vote_does_not_count_and_learner_is_not_asked() -> None:
    """A candidate asks only the voters of its configuration and counts only
    their votes (thesis 4.2.1)."""
    r = _raft("a", learners=("d",), pre_vote=False)
    r.campaign(transfer=False)
    asked = {to for to, m in drain(r) if type(m) is RequestVote}
    assert asked == {"b", "c"}
    r.step("d", RequestVoteReply(term=1, vote_granted=True))
    assert r.role != LEADER, "a learner's vote made a quorum"
    r.step("b", RequestVoteReply(term=1, vote_granted=True))
    assert r.role == LEADER


def test_learner_never_campaigns() -> None:
    """A learner's election timeout passes without an election, and an
    explicit campaign or TimeoutNow is ignored (thesis 4.2.1)."""
    r = _raft("d", learners=("d",))
    for _ in range(10 * r.config.election_ticks):
        r.tick()
    r.campaign(transfer=True)
    assert r.role == FOLLOWER
    assert r.term == 0
    assert not [m for _, m in drain(r) if type(m) is RequestVote]


def test_one_uncommitted_change_at_a_time() -> None:
    """Thesis 4.1: the leader refuses a change while another is uncommitted,
    and before an entry of its own term has committed."""
    fresh = _raft()
    fresh.campaign(transfer=True)
    fresh.step("b", RequestVoteReply(term=1, vote_granted=True))
    assert fresh.propose_conf_change(ConfChange(op=ADD_LEARNER, node_id="d")) == \
        "no entry of this term committed yet"

    r = _leader()
    first = r.propose_conf_change(ConfChange(op=ADD_LEARNER, node_id="d"))
    assert isinstance(first, tuple)
    refused = r.propose_conf_change(ConfChange(op=ADD_LEARNER, node_id="e"))
    assert refused == f"change at {first[0]} not committed yet"
    drain(r)
    _ack(r, "b", first[0])
    second = r.propose_conf_change(ConfChange(op=ADD_LEARNER, node_id="e"))
    assert isinstance(second, tuple)
    assert r.conf.learners == {"d", "e"}


def test_promote_needs_a_caught_up_learner() -> None:
    """Thesis 4.2.1: a learner is promoted only once its log has caught up
    (here: the leader replicates to it and it lags by at most
    LEARNER_LAG_ENTRIES_MAX entries)."""
    r = _leader()
    index, _ = r.propose_conf_change(ConfChange(op=ADD_LEARNER, node_id="d"))
    drain(r)
    _ack(r, "b", index)
    assert r.propose_conf_change(ConfChange(op=PROMOTE, node_id="d")) == "learner d not caught up"
    assert not r.learner_caught_up("d")
    _ack(r, "d", index)
    assert r.learner_caught_up("d")
    placed = r.propose_conf_change(ConfChange(op=PROMOTE, node_id="d"))
    assert isinstance(placed, tuple)
    assert r.conf.voters == {"a", "b", "c", "d"}
    assert r.propose_conf_change(ConfChange(op=PROMOTE, node_id="b")) == \
        f"change at {placed[0]} not committed yet"


def test_removed_leader_steps_down_after_commit() -> None:
    """Thesis 4.2.2: a leader removed from the voters keeps managing the
    cluster, not counting itself, until the change commits; then it steps
    down, and never campaigns again."""
    r = _leader()
    index, _ = r.propose_conf_change(ConfChange(op=REMOVE, node_id="a"))
    assert r.conf.voters == {"b", "c"}
    assert r.role == LEADER
    drain(r)
    _ack(r, "b", index)
    assert r.log.commit_index < index, "the removed leader counted itself"
    assert r.role == LEADER
    _ack(r, "c", index)
    assert r.log.commit_index == index
    assert r.role == FOLLOWER
    for _ in range(10 * r.config.election_ticks):
        r.tick()
    assert r.role == FOLLOWER


def test_removing_a_voter_shrinks_the_quorum() -> None:
    """After removing c, voters a and b commit with b alone (2 of 2)."""
    r = _leader()
    index, _ = r.propose_conf_change(ConfChange(op=REMOVE, node_id="c"))
    assert "c" not in r.progress
    drain(r)
    _ack(r, "b", index)
    assert r.log.commit_index == index
    assert r.role == LEADER


def test_truncated_change_is_undone() -> None:
    """Thesis 4.1: a server uses the latest configuration in its log,
    committed or not, so when a new leader overwrites an uncommitted change
    the server goes back to the configuration before it."""
    f = _raft("b")
    conf = ConfState(voters=frozenset(PEERS), learners=frozenset({"d"}))
    f.step("a", AppendEntries(term=1, prev_log_index=0, prev_log_term=0, leader_commit=0, entries=(
        Entry(term=1, index=1, data=None), Entry(term=1, index=2, data=conf.encode(), conf_change=True))))
    assert f.conf == conf
    assert f.conf_index == 2
    f.step("c", AppendEntries(term=2, prev_log_index=1, prev_log_term=1, leader_commit=0,
                              entries=(Entry(term=2, index=2, data=None),)))
    assert f.conf == ConfState(voters=frozenset(PEERS))
    assert f.log.last_index == 2


def test_snapshot_carries_the_configuration() -> None:
    """Thesis 5.1: a snapshot's metadata holds the configuration as of its
    last index; a follower that installs it uses that configuration."""
    r = _leader()
    index, _ = r.propose_conf_change(ConfChange(op=ADD_LEARNER, node_id="d"))
    drain(r)
    _ack(r, "b", index)
    drain(r)
    r.log.applied_to(index)
    r.compact(index, b"state")
    assert r.log.snapshot.conf == r.conf
    # d, empty, rejects the probe: the leader no longer has index 1.
    r.step("d", AppendEntriesReply(term=1, success=False, match_index=index, conflict_index=1, conflict_term=0))
    snaps = [m for to, m in drain(r) if to == "d" and type(m) is InstallSnapshot]
    assert snaps
    assert snaps[-1].conf == r.conf.encode()
    d = _raft("d", learners=("d",))
    d.conf = ConfState(voters=frozenset({"a"}), learners=frozenset({"d"}))  # a stale guess
    d.step("a", snaps[-1])
    assert d.conf == r.conf
    assert d.conf_index == index


def _run(env: InteractionEnv, *lines: str) -> str:
    return "\n".join(env.handle(line) for line in lines)


def test_configuration_survives_restart_from_log_and_snapshot() -> None:
    """A restarted server recovers the latest configuration from its
    persisted log (an uncommitted change included) and, once compacted,
    from its snapshot's metadata."""
    env = InteractionEnv(lambda nid: random.Random(int(nid)))
    _run(env, "add-nodes 3", "campaign 1", "stabilize", "add-learner 1 4", "stabilize")
    _run(env, "propose 1 x", "stabilize")
    want = ConfState(voters=frozenset({"1", "2", "3"}), learners=frozenset({"4"}))
    _run(env, "crash 2", "restart 2")
    assert env.rafts["2"].conf == want
    assert env.rafts["2"].conf_index == 2
    # Compact 2 through the change; the restart reads it from the snapshot.
    _run(env, "stabilize", "tick-heartbeat 1", "stabilize", "compact 2 3", "process-ready 2", "crash 2", "restart 2")
    r2 = env.rafts["2"]
    assert r2.log.snapshot.index == 3
    assert r2.log.snapshot.conf == want
    assert r2.conf == want
    # An uncommitted promotion in the log is in effect after a restart too.
    _run(env, "stabilize", "promote 1 4", "process-ready 1", "deliver-msgs 3", "process-ready 3",
         "crash 3", "restart 3")
    assert env.rafts["3"].conf.voters == {"1", "2", "3", "4"}
    assert env.rafts["3"].log.commit_index < env.rafts["3"].conf_index


# -- in the simulator: changes while a client keeps proposing ----------------------------

def _in_effect(conf: ConfState, cc: ConfChange) -> bool:
    if cc.op == ADD_LEARNER:
        return cc.node_id in conf.members
    if cc.op == PROMOTE:
        return cc.node_id in conf.voters
    return cc.node_id not in conf.members


def _leader_index(c: LabCluster) -> int | None:
    best: tuple[int, int] | None = None
    for i in range(c.n):
        if c.up(i) and c.node(i).raft.role == LEADER:
            term = c.node(i).raft.term
            if best is None or term > best[0]:
                best = (term, i)
    return None if best is None else best[1]


def _client(c: LabCluster, counter: list[int], ms: float) -> None:
    """Propose one command to the leader every 10 ms for ``ms``."""
    t0 = c.now_ms
    while c.now_ms - t0 < ms:
        i = _leader_index(c)
        if i is not None:
            counter[0] += 1
            c.start(i, f"cmd{counter[0]}")
        c.sleep(10)


def _change(c: LabCluster, counter: list[int], cc: ConfChange) -> None:
    """Propose ``cc`` to whoever leads until a leader has it committed."""
    t0 = c.now_ms
    while c.now_ms - t0 < 20_000:
        i = _leader_index(c)
        if i is not None:
            r = c.node(i).raft
            if _in_effect(r.conf, cc) and r.log.commit_index >= r.conf_index:
                return
            if not _in_effect(r.conf, cc):
                c.propose_conf_change(i, cc)
        _client(c, counter, 50)
    c.fail(f"{cc.op} {cc.node_id} not committed within 20 s")


@pytest.mark.seeds(3)
def test_membership_changes_under_load_are_safe(seed: int) -> None:
    """Thesis 4.1-4.2: servers s4 and s5 join as learners, are promoted,
    and s1, s2 (the leader, when it is one) are removed, one change at a
    time, while a client proposes every 10 ms over a lossy network; the
    safety checker watches every server throughout, and the final cluster
    (s3, s4, s5) still commits, also after each of its servers restarts
    from disk."""
    c = LabCluster(5, seed, unreliable=True, snapshot=True, snapshot_interval=50,
                   node_config=RaftNodeConfig(voters=("s1", "s2", "s3")),
                   replay=f"pytest tests/raft/test_membership.py --raft-seed {seed}")
    counter = [0]
    c.check_one_leader()
    for op, nid in [(ADD_LEARNER, "s4"), (PROMOTE, "s4"), (ADD_LEARNER, "s5"), (PROMOTE, "s5"),
                    (REMOVE, "s1"), (REMOVE, "s2")]:
        _change(c, counter, ConfChange(op=op, node_id=nid))
        _client(c, counter, 300)
    final = ConfState(voters=frozenset({"s3", "s4", "s5"}))
    i = _leader_index(c)
    assert i is not None
    assert c.ids[i] in final.voters, f"removed server {c.ids[i]} leads (seed {seed})"
    assert c.node(i).raft.conf == final
    # Every server restarts from its WAL and snapshot (compacted past the
    # changes, so the configuration comes from the snapshot's metadata). A
    # lagging server may compact before the last change reaches its log
    # (seed 177 of 200): wait until each has it, too.
    t0 = c.now_ms
    while any(c.node(j).raft.conf != final or c.node(j).raft.log.snapshot.index <= c.node(j).raft.conf_index
              for j in (2, 3, 4)):
        if c.now_ms - t0 > 10_000:
            c.fail("not every server has the last change, compacted past it, within 10 s")
        _client(c, counter, 100)
    for j in (2, 3, 4):
        c.start1(j)
        c.connect(j)
        assert c.node(j).raft.conf == final, f"{c.ids[j]} recovered {c.node(j).raft.conf} (seed {seed})"
    before = c.max_index
    c.one("final", 3, True)
    assert c.max_index > before
    assert counter[0] > 100, f"seed {seed}: the client proposed only {counter[0]} commands"
    c.finish()


class _MembershipClient(Node):
    """Sends each ConfChangeRequest of ``script`` to ``leader`` in turn, the
    next once the previous is answered; keeps the replies."""

    def __init__(self, leader: str, script: list[tuple[str, str]]) -> None:
        self.leader, self.script, self.replies = leader, script, []  # type: ignore[var-annotated]

    def on_start(self, ctx: Context) -> None:
        self._next(ctx)

    def _next(self, ctx: Context) -> None:
        if len(self.replies) < len(self.script):
            op, node_id = self.script[len(self.replies)]
            ctx.send(self.leader, ConfChangeRequest(request_id=len(self.replies), op=op, node_id=node_id))

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        assert type(msg) is ProposeReply
        self.replies.append(msg)
        self._next(ctx)


def test_conf_change_request_through_the_node() -> None:
    """The node adapter's client path for membership changes: a malformed
    change and one that does not apply are refused at once with the reason;
    a valid one is answered when it commits, and every server's status then
    shows the new configuration."""
    c = LabCluster(3, seed=3)
    leader = c.check_one_leader()
    c.one(1, 3, True)
    script = [("grow", "s9"), ("promote", "s9"), ("remove", "s3")]
    client = _MembershipClient(c.ids[leader], script)
    c.sim.add_node("client", lambda: client, peers=())
    c.sleep(2000)
    assert [r.ok for r in client.replies] == [False, False, True], client.replies
    assert "unknown configuration change" in client.replies[0].error
    assert client.replies[1].error == "s9 is not a learner"
    assert client.replies[2].index > 1
    # s3 itself may never hear of its removal (the leader stops replicating
    # to it, thesis 4.2.3); the remaining voters all use the new configuration.
    c.sleep(500)
    for i in range(2):
        assert c.node(i).raft.conf.voters == {"s1", "s2"}, (i, c.node(i).raft.conf)
    c.finish()


def test_a_retried_change_that_committed_is_answered_ok() -> None:
    """A client that retries a change it never heard back about (the first
    reply lost) must not be told "refused": membership changes are not in
    the session table, so a change already in effect in the leader's
    committed configuration is answered ok (issue 8, part 2)."""
    c = LabCluster(3, seed=3)
    leader = c.check_one_leader()
    c.one(1, 3, True)
    script = [("remove", "s3"), ("remove", "s3")]
    if c.ids[leader] == "s3":
        script = [("remove", "s2"), ("remove", "s2")]
    client = _MembershipClient(c.ids[leader], script)
    c.sim.add_node("client", lambda: client, peers=())
    c.sleep(2000)
    assert [r.ok for r in client.replies] == [True, True], client.replies
    assert client.replies[1].index == client.replies[0].index
    c.finish()
