"""Fuzzing a live RaftNode with well-typed but semantically invalid messages
(issue 8, part 3): hypothesis strategies built from the Raft message types,
fed to server n1 of a three-server KV cluster in each role (leader, follower,
candidate). Every message is either handled or refused with
RemoteProtocolError before any state changes; nothing else may escape, and
the node's invariants hold after every message and every tick.

A strategy draws a *recipe* whose numbers are mostly relative to the live
node (its term + d, its last index + d, the term it holds at that index, the
offset it expects of a snapshot...) and sometimes absolute extremes (-1,
2**62 + 1, 2**63), so that many messages are nearly right: consecutive
entries but one off, a matching prev_log_term with a decreasing batch, a
reply matching one past the leader's log. Each hypothesis example is a batch:
its recipes are materialized against the node again on each of ``ROUNDS``
passes, as the node's state moves on.

Messages per role: ``SYNOD_FUZZ_MESSAGES`` / 3 (default: ``DEFAULT_MESSAGES``
in all, about 100,000).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests._fuzzhost import FuzzHost, fuzz_messages

from synod.core import encode
from synod.core.errors import RemoteProtocolError
from synod.kv.simple import SimpleKV
from synod.raft import CANDIDATE, FOLLOWER, LEADER, PRE_CANDIDATE, RaftConfig
from synod.raft._confchange import ConfState
from synod.raft._sessions import ClientCommand, ClientSessions, NodeSnapshot
from synod.raft.messages import (
    AppendEntries,
    AppendEntriesReply,
    ConfChangeRequest,
    Entry,
    Heartbeat,
    HeartbeatReply,
    InstallSnapshot,
    InstallSnapshotReply,
    Propose,
    RaftStatusRequest,
    Read,
    ReadIndexReply,
    ReadIndexRequest,
    RequestVote,
    RequestVoteReply,
    TimeoutNow,
)
from synod.raft.node import RaftNode, RaftNodeConfig

PEERS = ("n1", "n2", "n3")
ROUNDS = 5                 # passes over one example's recipes
RECIPES = 100              # recipes per example: 500 messages
DEFAULT_MESSAGES = 100_500  # over the three roles
CHUNK = 64                 # snapshot chunk bytes (small, so snapshots take several chunks)
RAFT = RaftConfig(message_entries_max=8, message_entries_bytes_max=1024, snapshot_chunk_bytes=CHUNK)
EXTREMES = (-1, -(2**63), 2**62 + 1, 2**63)


def _kv_snapshot() -> bytes:
    sm = SimpleKV()
    sm.data = {f"k{i}": "v" * i for i in range(5)}
    sessions = ClientSessions()
    sessions.record("c1", 7, encode("v"), 3)
    return encode(NodeSnapshot(sessions=sessions.encode(), data=sm.snapshot()))


VALID_SNAPSHOT = _kv_snapshot()
CONFS = (ConfState(voters=frozenset(PEERS)).encode(),
         ConfState(voters=frozenset(PEERS), learners=frozenset({"n4"})).encode(),
         ConfState(voters=frozenset({"n1", "n2"})).encode())
BAD_CONFS = (b"", b"|n1", b"n1|n1", b"\xff\xfe|", b"n1,n2", b"a|b|c")
DATA = st.sampled_from(["kv", "none", "kv", "kv-bad", "raw", "conf", "conf-bad", "conf-none"])
SRC = st.sampled_from(["n2"] * 6 + ["n3"] * 5 + ["n1", "c1", "mallory"])


def _num(deltas: tuple[int, ...] = (0, 0, 0, 1, -1, 2, -2)) -> st.SearchStrategy[tuple[str, int]]:
    """("d", delta) relative to a base taken from the live node (most of the
    time), or ("a", v) absolute."""
    return st.sampled_from([("d", d) for d in deltas] * 4 + [("a", v) for v in EXTREMES + (0, 1)])


TERM = _num((0, 0, 0, 0, 1, 1, -1, 2))
INDEX = _num()


def _at(spec: tuple[str, int], base: int) -> int:
    kind, v = spec
    return base + v if kind == "d" else v


@st.composite
def _entries(draw: Any) -> tuple:
    n = draw(st.sampled_from([1, 0, 1, 2, 3, 4, 9]))  # 9 > message_entries_max
    return tuple((draw(st.sampled_from([0, 0, 0, 0, 0, 0, 1, -1])),        # index offset
                  draw(st.sampled_from(["same", "same", "same", "up", "down", "msg", "abs"])),
                  draw(DATA), draw(st.booleans())) for _ in range(n))


RECIPE = st.one_of(
    st.tuples(st.just("append"), SRC, TERM, INDEX, st.sampled_from(["match", "match", "d", "abs"]),
              _entries(), INDEX, st.sampled_from(["last", "commit"])),
    st.tuples(st.just("append_reply"), SRC, TERM, st.booleans(), INDEX, INDEX, _num((0, -1, 1))),
    st.tuples(st.just("vote"), SRC, TERM, INDEX, _num((0, -1, 1)), st.booleans(), st.booleans()),
    st.tuples(st.just("vote_reply"), SRC, TERM, st.booleans(), st.booleans()),
    st.tuples(st.just("heartbeat"), SRC, TERM, INDEX, _num((0, -1, 1))),
    st.tuples(st.just("heartbeat_reply"), SRC, TERM, _num((0, 0, -1, 1))),
    st.tuples(st.just("snapshot"), SRC, TERM, _num((1, 0, -1, 1, 2, 5)), st.sampled_from(["ok", "ok", "d", "abs"]),
              st.sampled_from(["expect", "expect", "zero", "d", "abs"]), st.sampled_from(["ok", "ok", "junk", "big"]),
              st.sampled_from(["none", "none", "ok", "bad"])),
    st.tuples(st.just("snapshot_reply"), SRC, TERM, _num((0, 0, 1, -1)), _num((0, -1, 1, 64)), st.booleans()),
    st.tuples(st.just("timeout_now"), SRC, TERM),
    st.tuples(st.just("read_request"), SRC, TERM, st.sampled_from([0, 8, 300])),
    st.tuples(st.just("read_reply"), SRC, TERM, st.booleans(), _num((0, -1, 1, 5))),
    st.tuples(st.just("client"), st.sampled_from(["propose", "propose-bad", "read", "read-bad", "conf",
                                                  "conf-bad", "status"]),
              st.integers(-1, 50), st.sampled_from(["n4", "n2", "", "a,b", "n1"])),
    st.tuples(st.just("tick"), st.integers(1, 20)),
)


# -- materializing a recipe against the live node ---------------------------------------

def _data(kind: str, i: int) -> tuple[bytes | None, bool]:
    """(entry data, conf_change) of a data kind."""
    if kind == "none":
        return None, False
    if kind == "kv":
        return encode(ClientCommand(client="c9", request_id=i, command=encode(["append", "k1", f"x{i}"]))), False
    if kind == "kv-bad":
        return encode(ClientCommand(client="c9", request_id=i, command=encode(["put", ["k"], 5]))), False
    if kind == "raw":
        return bytes([i % 256, 0xC1, 7]), False
    if kind == "conf":
        return CONFS[i % len(CONFS)], True
    if kind == "conf-bad":
        return BAD_CONFS[i % len(BAD_CONFS)], True
    return None, True  # a membership change without a configuration


def _append(node: RaftNode, r: Any, src: str, t: tuple, term: int) -> AppendEntries:
    _, _, _, prev_s, prev_term_mode, entries_r, commit_s, commit_base = t
    log = r.log
    prev = _at(prev_s, log.last_index)
    held = log.term(prev) if 0 <= prev <= log.last_index else None
    if prev_term_mode == "match" and held is not None:
        prev_term = held
    elif prev_term_mode == "abs":
        prev_term = EXTREMES[prev % len(EXTREMES)]
    else:
        prev_term = max(0, (held or 0) + (prev % 3) - 1)
    entries, index, et = [], prev + 1, max(prev_term, 1)
    for i, (off, term_mode, data_kind, bump) in enumerate(entries_r):
        index += off
        et = {"same": et, "up": et + 1, "down": et - 1, "msg": term, "abs": EXTREMES[i % len(EXTREMES)]}[term_mode]
        et = min(et, term) if term_mode != "abs" and bump else et
        data, conf = _data(data_kind, index)
        entries.append(Entry(term=et, index=index, data=data, conf_change=conf))
        index += 1
    if len(entries_r) == 4 and entries_r[0][3]:
        entries = [Entry(term=e.term, index=e.index, data=b"x" * 600) for e in entries]  # over the byte limit
    commit = _at(commit_s, log.last_index if commit_base == "last" else log.commit_index)
    return AppendEntries(term=term, prev_log_index=prev, prev_log_term=prev_term, entries=tuple(entries),
                         leader_commit=commit)


def _snapshot(r: Any, t: tuple, term: int) -> InstallSnapshot:
    _, _, _, idx_s, term_mode, offset_mode, data_mode, conf_mode = t
    idx = _at(idx_s, r.log.commit_index)
    inc = r._incoming
    commit_term = r.log.term(r.log.commit_index) or 0
    last_term = {"ok": max(commit_term, min(term, commit_term + 1)), "d": commit_term - 1,
                 "abs": EXTREMES[idx % len(EXTREMES)]}[term_mode]
    if offset_mode == "expect":
        offset = len(inc[2]) if inc is not None and inc[0] == idx and inc[1] == last_term else 0
    else:
        offset = {"zero": 0, "d": (len(inc[2]) if inc else 0) + 1, "abs": EXTREMES[idx % len(EXTREMES)]}[offset_mode]
    if data_mode == "ok":
        data = VALID_SNAPSHOT[max(offset, 0): max(offset, 0) + CHUNK]
        done = max(offset, 0) + len(data) >= len(VALID_SNAPSHOT)
    else:
        data = bytes([0xC1, idx % 256]) * (4 if data_mode == "junk" else 100)
        done = idx % 2 == 0
    conf = {"none": b"", "ok": CONFS[idx % len(CONFS)], "bad": BAD_CONFS[idx % len(BAD_CONFS)]}[conf_mode]
    return InstallSnapshot(term=term, last_included_index=idx, last_included_term=last_term, offset=offset,
                           data=data, done=done, conf=conf)


def _client(node: RaftNode, t: tuple) -> Any:
    _, kind, rid, node_id = t
    if kind == "propose":
        return Propose(request_id=rid, command=encode(["put" if rid % 2 else "append", f"k{rid % 5}", f"v{rid}"]))
    if kind == "propose-bad":
        return Propose(request_id=rid, command=encode(["append", f"k{rid % 5}", rid]) if rid % 2 else b"\xc1")
    if kind == "read":
        return Read(request_id=rid, query=encode(["get", f"k{rid % 5}"]))
    if kind == "read-bad":
        return Read(request_id=rid, query=encode(["get", [rid]]) if rid % 2 else encode(["scan", "k"]))
    if kind == "conf":
        return ConfChangeRequest(request_id=rid, op=("add-learner", "promote", "remove")[rid % 3], node_id=node_id)
    if kind == "conf-bad":
        return ConfChangeRequest(request_id=rid, op="explode", node_id=node_id)
    return RaftStatusRequest()


def materialize(node: RaftNode, t: tuple) -> tuple[str, Any]:
    """The (src, message) a recipe stands for, given the node's state now."""
    r = node.raft
    kind = t[0]
    if kind == "client":
        return "c1", _client(node, t)
    src, term = t[1], _at(t[2], r.term)
    if kind == "append":
        return src, _append(node, r, src, t, term)
    if kind == "append_reply":
        _, _, _, success, match_s, conflict_s, cterm_s = t
        return src, AppendEntriesReply(term=term, success=success, match_index=_at(match_s, r.log.last_index),
                                       conflict_index=_at(conflict_s, r.log.last_index),
                                       conflict_term=_at(cterm_s, r.log.last_term))
    if kind == "vote":
        _, _, _, last_s, lterm_s, pre_vote, transfer = t
        return src, RequestVote(term=term, last_log_index=_at(last_s, r.log.last_index),
                                last_log_term=_at(lterm_s, r.log.last_term), pre_vote=pre_vote, transfer=transfer)
    if kind == "vote_reply":
        return src, RequestVoteReply(term=term, vote_granted=t[3], pre_vote=t[4])
    if kind == "heartbeat":
        return src, Heartbeat(term=term, commit=_at(t[3], r.log.commit_index), read_seq=_at(t[4], r.read_seq))
    if kind == "heartbeat_reply":
        return src, HeartbeatReply(term=term, read_seq=_at(t[3], r.read_seq))
    if kind == "snapshot":
        return src, _snapshot(r, t, term)
    if kind == "snapshot_reply":
        pr = r.progress.get(src)
        base = pr.snapshot_offset if pr is not None else 0
        return src, InstallSnapshotReply(term=term, last_included_index=_at(t[3], r.log.snapshot.index),
                                         next_offset=_at(t[4], base), done=t[5])
    if kind == "timeout_now":
        return src, TimeoutNow(term=term)
    if kind == "read_request":
        return src, ReadIndexRequest(term=term, ctx=b"r" * t[3])
    assert kind == "read_reply"
    waiting = sorted(node._reads_unindexed)
    ctx = waiting[0] if waiting and t[3] else b"unknown"
    return src, ReadIndexReply(term=term, ctx=ctx, index=_at(t[4], r.log.commit_index))


# -- the node, its roles and its invariants -------------------------------------------

def _tick(host: FuzzHost, n: int = 1) -> None:
    for _ in range(n):
        host.now_ms += 20
        host.fire("tick")


def new_node(role: str, seed: int) -> tuple[FuzzHost, RaftNode]:
    """Server n1 of (n1, n2, n3), brought into ``role`` by messages from n2."""
    node = RaftNode(RaftNodeConfig(raft=RAFT, snapshot_interval_entries=6), SimpleKV())
    host = FuzzHost(node, "n1", PEERS, seed=seed)
    r = node.raft
    if role == FOLLOWER:
        entries = tuple(Entry(term=1 + i // 6, index=i + 1, data=_data("kv", i + 1)[0]) for i in range(8))
        assert host.feed("n2", AppendEntries(term=2, prev_log_index=0, prev_log_term=0, entries=entries,
                                             leader_commit=5))
        assert (r.role, r.leader, r.log.commit_index) == (FOLLOWER, "n2", 5)
        return host, node
    while r.role != PRE_CANDIDATE:
        _tick(host)
    assert host.feed("n2", RequestVoteReply(term=r.term + 1, vote_granted=True, pre_vote=True))
    assert r.role == CANDIDATE
    if role == CANDIDATE:
        return host, node
    assert host.feed("n2", RequestVoteReply(term=r.term, vote_granted=True))
    assert r.role == LEADER
    for rid in range(1, 9):
        assert host.feed("c1", Propose(request_id=rid, command=encode(["append", "k", f"{rid}"])))
    assert host.feed("n2", AppendEntriesReply(term=r.term, success=True, match_index=r.log.last_index))
    assert r.log.commit_index == r.log.last_index
    return host, node


def fingerprint(node: RaftNode) -> tuple:
    r, log = node.raft, node.raft.log
    return (r.term, r.vote, r.role, r.leader, r.election_elapsed, r.read_seq, r.conf, log.snapshot.index,
            log.last_index, log.last_term, log.commit_index, log.applied_index, len(r._msgs), node._applied_index,
            tuple(sorted(node.sm.data.items())), r._incoming and (r._incoming[0], len(r._incoming[2])),
            tuple((p, pr.match_index, pr.next_index, pr.state, pr.read_seq) for p, pr in sorted(r.progress.items())))


def check_invariants(node: RaftNode, *, whole_log: bool) -> None:
    r, log = node.raft, node.raft.log
    assert log.snapshot.index <= log.applied_index <= log.commit_index <= log.last_index
    assert log.stable_index == log.last_index  # the node persisted every Ready
    assert node._applied_index == log.applied_index
    entries = log.entries if whole_log else log.entries[-4:]
    first = log.last_index - len(entries) + 1
    prev_term = log.term(first - 1)
    for i, e in enumerate(entries):
        assert e.index == first + i, f"log not consecutive at {first + i}: {e}"
        assert prev_term <= e.term <= r.term, f"entry {e.index} of term {e.term} after {prev_term}, term {r.term}"
        prev_term = e.term
    assert r.role in (FOLLOWER, PRE_CANDIDATE, CANDIDATE, LEADER)
    assert (r.role == LEADER) == (r.leader == "n1")
    assert r.vote in (None, "n1", "n2", "n3")
    assert r.conf.voters
    assert all(type(v) is str for v in node.sm.data.values())
    if r.role == LEADER:
        for pr in r.progress.values():
            assert pr.match_index <= log.last_index
            assert pr.match_index < pr.next_index


def fuzz_batch(host: FuzzHost, node: RaftNode, recipes: list[tuple], kinds: Counter) -> None:
    for _ in range(ROUNDS):
        for t in recipes:
            if t[0] == "tick":
                _tick(host, t[1])
                kinds["tick"] += 1
            else:
                src, msg = materialize(node, t)
                before = fingerprint(node)
                if host.feed(src, msg, corr=1 if t[0] == "client" else 0):
                    kinds["handled"] += 1
                else:
                    assert fingerprint(node) == before, f"{msg!r} was refused after changing state"
                    kinds["refused"] += 1
                kinds[type(msg).__name__] += 1
            check_invariants(node, whole_log=False)
            host.take_sent()
    check_invariants(node, whole_log=True)


# Paths the fuzz must reach in every role (trace events of the node).
REACHED = ("snapshot_installed", "conf_changed", "state:leader", "state:follower")


@pytest.mark.parametrize("role", [LEADER, FOLLOWER, CANDIDATE])
def test_fuzz_raft_node(role: str) -> None:
    """No message a peer or client can send crashes a RaftNode, whatever its
    role: each is handled or refused (RemoteProtocolError) with no state
    changed, and the log stays consecutive with commit <= last."""
    target = fuzz_messages(DEFAULT_MESSAGES) // 3
    # about 7 % of recipes are tick batches, not messages
    examples = max(1, -(-target * 100 // 92 // (RECIPES * ROUNDS)))
    kinds: Counter = Counter()
    events: Counter = Counter()
    seeds = iter(range(1, 10**9))

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.lists(RECIPE, min_size=RECIPES, max_size=RECIPES))
    def run(recipes: list[tuple]) -> None:
        host, node = new_node(role, next(seeds))
        fuzz_batch(host, node, recipes, kinds)
        events.update(host.events)

    run()
    messages = kinds["handled"] + kinds["refused"]
    print(f"\nraft fuzz ({role}): {messages} messages ({kinds['handled']} handled, {kinds['refused']} refused), "
          f"{kinds['tick']} tick batches, 0 crashes; by type: "
          + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()) if k[0].isupper())
          + "; reached: " + ", ".join(f"{k} {events[k]}" for k in REACHED))
    assert messages >= target * 0.97
    assert kinds["refused"] > messages // 10, "the fuzz must reach the validation"
    assert kinds["handled"] > messages // 3, "the fuzz must reach normal handling"
    assert all(events[k] for k in REACHED), events


def test_non_consecutive_append_from_a_peer_is_refused() -> None:
    """Issue 8's reproduction: an AppendEntries from "n3" whose entries are
    not consecutive used to end the node ("entries must be consecutive");
    now it is refused and the node runs on."""
    host, node = new_node(FOLLOWER, 1)
    r = node.raft
    bad = AppendEntries(term=r.term, prev_log_index=r.log.last_index, prev_log_term=r.log.last_term,
                        entries=(Entry(term=r.term, index=r.log.last_index + 1, data=None),
                                 Entry(term=r.term, index=r.log.last_index + 3, data=None)), leader_commit=0)
    with pytest.raises(RemoteProtocolError, match="consecutive"):
        host.deliver("n2", bad, 0)
    assert r.log.last_index == 8
    assert host.feed("n2", AppendEntries(term=r.term, prev_log_index=8, prev_log_term=2,
                                         entries=(Entry(term=2, index=9, data=None),), leader_commit=9))
    assert r.log.commit_index == 9


def test_match_beyond_the_leaders_log_is_refused() -> None:
    """Issue 8: 'AssertionError: a follower matched beyond the leader's log'
    took the leader down; such a reply is now refused before any change."""
    host, node = new_node(LEADER, 1)
    r = node.raft
    before = fingerprint(node)
    with pytest.raises(RemoteProtocolError, match="beyond the leader's last index"):
        host.deliver("n3", AppendEntriesReply(term=r.term, success=True, match_index=r.log.last_index + 5), 0)
    assert fingerprint(node) == before
    assert host.feed("n3", AppendEntriesReply(term=r.term, success=True, match_index=r.log.last_index))
    assert r.progress["n3"].match_index == r.log.last_index


@pytest.mark.parametrize("src", ["mallory", "n1"])
def test_raft_message_from_a_stranger_or_itself_is_refused(src: str) -> None:
    """A vote request from an id that is neither configured nor a member,
    or claiming to be this node, is refused; the node's vote is untouched."""
    host, node = new_node(FOLLOWER, 1)
    r = node.raft
    with pytest.raises(RemoteProtocolError):
        host.deliver(src, RequestVote(term=r.term + 1, last_log_index=99, last_log_term=r.term), 0)
    assert (r.term, r.vote) == (2, None)


def test_second_leader_in_a_term_is_refused() -> None:
    """Election Safety: n3 cannot lead the term n2 leads."""
    host, node = new_node(FOLLOWER, 1)
    r = node.raft
    with pytest.raises(RemoteProtocolError, match="whose leader is n2"):
        host.deliver("n3", Heartbeat(term=r.term, commit=8, read_seq=0), 0)
    assert (r.leader, r.log.commit_index) == ("n2", 5)


def test_malformed_kv_command_is_refused_at_the_door() -> None:
    """A Propose whose command the KV machine cannot apply (a list as key)
    would crash every server when applied; it is refused where it enters,
    and so is an entry carrying one."""
    host, node = new_node(LEADER, 1)
    with pytest.raises(RemoteProtocolError):
        host.deliver("c1", Propose(request_id=50, command=encode(["put", ["k"], "v"])), 1)
    host2, follower = new_node(FOLLOWER, 1)
    r = follower.raft
    bad = Entry(term=2, index=9, data=_data("kv-bad", 9)[0])
    with pytest.raises(RemoteProtocolError, match="entry 9: a command that is not encode"):
        host2.deliver("n2", AppendEntries(term=2, prev_log_index=8, prev_log_term=2, entries=(bad,),
                                          leader_commit=9), 0)
    assert r.log.last_index == 8
