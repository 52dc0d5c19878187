"""Fuzzy snapshots of the data tree (Hunt et al., USENIX ATC 2010, section
4.3; Junqueira et al., DSN 2011, section IV): a snapshot taken while
transactions keep applying, tagged with the last zxid applied at its start,
restored and followed by a replay of every transaction after that zxid,
gives the tree that applied each transaction once."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synod.core.codec import decode, encode
from synod.core.errors import RemoteProtocolError
from synod.harness.zk import run_zk
from synod.sim import Tracer
from synod.zk import messages as m
from synod.zk import txn as tx
from synod.zk.prep import TreeView, prepare
from synod.zk.tree import OPEN_ACL_UNSAFE, DataTree, FuzzyTreeSnapshot, ZnodeRecord

OPEN = OPEN_ACL_UNSAFE
SESSIONS = (7, 8, 9)
_names = st.sampled_from(["/a", "/b", "/a/c", "/a/d", "/a/c/x", "/b/e", "/a/s-", "/b/e/f"])

# One write: a client request as the leader prepares it, or a session's
# CreateSession (the leader makes it without prepare).
_ops = st.one_of(
    st.builds(lambda p, f, s: (m.CreateRequest(path=p, data=b"v", acl=OPEN, flags=f), s),
              _names, st.sampled_from([0, 1, 2, 3]), st.sampled_from(SESSIONS)),
    st.builds(lambda p: (m.DeleteRequest(path=p, version=-1), 7), _names),
    st.builds(lambda p, d: (m.SetDataRequest(path=p, data=d, version=-1), 7), _names, st.binary(max_size=3)),
    st.builds(lambda p: (m.SetACLRequest(path=p, acl=OPEN, version=-1), 7), _names),
    st.builds(lambda s: (m.CloseSessionRequest(), s), st.sampled_from(SESSIONS)),
    st.builds(lambda s: (tx.CreateSessionTxn(session_id=s, timeout_ms=4000 + s), s), st.sampled_from(SESSIONS)),
    st.builds(lambda a, b: (m.MultiRequest(ops=(
        m.DeleteRequest(path=a, version=-1), m.CreateRequest(path=b, data=b"", acl=OPEN, flags=0))), 7),
              _names, _names),
)


class _Leader:
    """A tree with the leader's preparation in front: each write becomes
    the transaction a ZooKeeper leader would propose, applied at once."""

    def __init__(self) -> None:
        self.tree = DataTree()
        self.view = TreeView(self.tree)
        self.txns: list[tx.Txn] = []   # the one at zxid z is txns[z - 1]

    def write(self, request: object, session: int) -> None:
        zxid = len(self.txns) + 1
        if isinstance(request, tx.CreateSessionTxn):
            txn: tx.Txn = request if session not in self.tree.sessions else tx.ErrorTxn(err=0)
        elif isinstance(request, m.CloseSessionRequest) and session not in self.tree.sessions:
            txn = tx.ErrorTxn(err=0)    # only an open session closes
        else:
            txn = prepare(request, session_id=session, zxid=zxid, view=self.view)
            owner = txn.ephemeral_owner if isinstance(txn, tx.CreateTxn) else 0
            if owner and owner not in self.tree.sessions:
                txn = tx.ErrorTxn(err=0)   # the server takes requests of open sessions only
                self.view = TreeView(self.tree)
        self.tree.apply(txn, zxid, zxid)
        self.view.applied(zxid)
        self.txns.append(txn)


def _replay(blob: bytes, txns: list[tx.Txn], base: int) -> DataTree:
    """Restore ``blob`` and replay every transaction after ``base``,
    checking after each what synod's simulator checks after every applied
    transaction: each ephemeral's owner is an open session."""
    u = DataTree.deserialize(blob)
    assert u.last_zxid == base
    for zxid in range(base + 1, len(txns) + 1):
        u.apply(txns[zxid - 1], zxid, zxid)
        for owner in u.ephemeral_sessions():
            assert owner in u.sessions, f"ephemeral of {owner} not open after zxid {zxid}"
    return u


@settings(max_examples=1000, deadline=None)
@given(before=st.lists(_ops, max_size=30), during=st.lists(st.tuples(_ops, st.integers(0, 2)), max_size=40),
       after=st.lists(_ops, max_size=5), items_max=st.integers(1, 3))
def test_fuzzy_snapshot_and_replay_reach_the_live_tree(before: list, during: list, after: list, items_max: int) -> None:
    """Section 4.3: writes (creates, sequential and ephemeral ones, deletes
    of parents and children, recreations, sets, session opens and closes,
    multis) applied between every step of a fuzzy snapshot; the snapshot
    restored and the log replayed from its base equals, byte for byte, the
    tree that applied everything once."""
    live = _Leader()
    for request, session in before:
        live.write(request, session)
    base = live.tree.last_zxid
    fuzzy = live.tree.fuzzy_snapshot()
    blob = None
    for (request, session), steps in during:
        live.write(request, session)
        for _ in range(steps):
            if blob is None:
                blob = fuzzy.step(items_max)
    while blob is None:
        blob = fuzzy.step(items_max)
    for request, session in after:
        live.write(request, session)
    u = _replay(blob, live.txns, base)
    assert u.serialize() == live.tree.serialize()
    assert u.digest() == live.tree.digest()


def _steps(tree: DataTree, items_max: int, between: list) -> tuple[int, bytes]:
    """A fuzzy snapshot of ``tree``, one callable of ``between`` run before each step."""
    fuzzy = tree.fuzzy_snapshot()
    base = fuzzy.base_zxid
    for act in between:
        act()
        blob = fuzzy.step(items_max)
        if blob is not None:
            return base, blob
    while (blob := fuzzy.step(items_max)) is None:
        pass
    return base, blob


def test_a_parent_deleted_and_recreated_meanwhile() -> None:
    """Section 4.3 (and ZooKeeper's ZOOKEEPER-1046, -3145): /a is serialized,
    then its children are deleted (one by its session's close), /a deleted and
    created again with a new sequential child, all before the children's turn:
    the snapshot holds the old /a with a stale pzxid and cversion; the replay
    fixes both."""
    live = _Leader()
    live.write(tx.CreateSessionTxn(session_id=7, timeout_ms=4000), 7)
    live.write(m.CreateRequest(path="/a", data=b"1", acl=OPEN, flags=0), 7)
    live.write(m.CreateRequest(path="/a/e", data=b"", acl=OPEN, flags=1), 7)      # ephemeral of 7
    live.write(m.CreateRequest(path="/a/p", data=b"", acl=OPEN, flags=0), 7)
    base = live.tree.last_zxid
    writes = [
        (m.SetDataRequest(path="/a", data=b"2", version=-1), 7),    # before the first step: /a serialized after it
        (m.CloseSessionRequest(), 7),                                # deletes /a/e after /a's turn
        (m.DeleteRequest(path="/a/p", version=-1), 7),
        (m.DeleteRequest(path="/a", version=-1), 7),
        (m.CreateRequest(path="/a", data=b"3", acl=OPEN, flags=0), 7),
        (m.CreateRequest(path="/a/s-", data=b"", acl=OPEN, flags=2), 7),   # sequential: /a/s-0000000000
    ]
    base, blob = _steps(live.tree, 1, [lambda w=w: live.write(*w) for w in writes])
    snap = decode(blob, FuzzyTreeSnapshot)
    assert snap.base_zxid == base
    assert [r.path for r in snap.nodes if r.path.startswith("/a")] == ["/a"]   # /a/e, /a/p gone at their turn
    u = _replay(blob, live.txns, base)
    assert u.serialize() == live.tree.serialize()
    assert u.get_children("/a") == m.GetChildrenResponse(children=("s-0000000000",))


def test_a_child_closed_with_its_session_before_its_turn() -> None:
    """/a is serialized, then its ephemeral child /a/e goes with its
    session's close before /a/e's turn: the replayed close finds no /a/e and
    moves no pzxid, so /a's record carries the pzxid of that close (what
    ZOOKEEPER-3145 fixed in ZooKeeper), which an earlier replayed create
    must not lower."""
    live = _Leader()
    live.write(tx.CreateSessionTxn(session_id=7, timeout_ms=4000), 7)
    live.write(m.CreateRequest(path="/a", data=b"", acl=OPEN, flags=0), 7)
    live.write(m.CreateRequest(path="/a/e", data=b"", acl=OPEN, flags=1), 7)
    # Steps: /, /a, then a create under /a and the close, then /a/e (gone). The
    # create's replay raises /a's cversion and must not lower its pzxid.
    writes = [[], [], [(m.CreateRequest(path="/a/c", data=b"", acl=OPEN, flags=0), 7), (m.CloseSessionRequest(), 7)]]
    base, blob = _steps(live.tree, 1, [lambda ws=ws: [live.write(*w) for w in ws] for ws in writes])
    stat = live.tree.stat("/a")
    assert stat is not None
    assert stat.pzxid == len(live.txns)
    u = _replay(blob, live.txns, base)
    assert u.serialize() == live.tree.serialize()


def test_sessions_are_those_open_at_any_step() -> None:
    """A session opened and closed while the snapshot runs, whose ephemeral
    was serialized meanwhile, is in the snapshot (neither the sessions at the
    start nor those at the end hold it): its owner is open at every point of
    the replay until its close is replayed."""
    live = _Leader()
    live.write(tx.CreateSessionTxn(session_id=7, timeout_ms=4000), 7)
    live.write(m.CreateRequest(path="/e", data=b"", acl=OPEN, flags=1), 7)
    live.write(m.CreateRequest(path="/z", data=b"", acl=OPEN, flags=0), 7)
    writes = [
        [(m.CloseSessionRequest(), 7), (tx.CreateSessionTxn(session_id=8, timeout_ms=5000), 8),
         (m.CreateRequest(path="/e", data=b"", acl=OPEN, flags=1), 8)],   # before /e's turn (the second)
        [(m.SetDataRequest(path="/z", data=b"z", version=-1), 8)],
        [(m.CloseSessionRequest(), 8)],                                   # after it
    ]
    base, blob = _steps(live.tree, 1, [lambda ws=ws: [live.write(*w) for w in ws] for ws in writes])
    snap = decode(blob, FuzzyTreeSnapshot)
    assert {s.session_id for s in snap.sessions} == {7, 8}
    assert [r.ephemeral_owner for r in snap.nodes if r.path == "/e"] == [8]
    assert live.tree.sessions == {}
    u = _replay(blob, live.txns, base)
    assert u.serialize() == live.tree.serialize()


def test_an_orphan_is_dropped_and_bad_snapshots_refused() -> None:
    """A correct server's fuzzy snapshot may hold a node without its parent
    (the parent deleted before its turn, the child recreated after): it is
    dropped on load; bytes that are not a snapshot raise RemoteProtocolError,
    a snapshot that is not a tree ValueError."""
    t = DataTree()
    t.apply(tx.CreateTxn(path="/a", data=b"", acl=OPEN, parent_cversion=1), 1, 0)
    blob = t.fuzzy_snapshot().step(100)
    assert blob is not None
    snap = decode(blob, FuzzyTreeSnapshot)
    rogue = ZnodeRecord(path="/q/r", data=b"", acl=OPEN, stat=snap.nodes[0].stat, kind=0, ephemeral_owner=0,
                        ttl_ms=0, child_creates=0)
    nodes = tuple(sorted((*snap.nodes, rogue), key=lambda r: r.path))
    u = DataTree.deserialize(encode(FuzzyTreeSnapshot(base_zxid=1, sessions=(), nodes=nodes)))
    assert "/q/r" not in u
    assert u.serialize() == t.serialize()
    with pytest.raises(RemoteProtocolError):
        DataTree.deserialize(blob[:-2])
    with pytest.raises(ValueError, match="out of path order"):
        DataTree.deserialize(encode(FuzzyTreeSnapshot(base_zxid=1, sessions=(), nodes=snap.nodes[::-1])))
    with pytest.raises(ValueError, match="no root"):
        DataTree.deserialize(encode(FuzzyTreeSnapshot(base_zxid=1, sessions=(), nodes=snap.nodes[1:])))
    owned = tuple(r if r.path != "/a" else ZnodeRecord(**{**{f: getattr(r, f) for f in r.__struct_fields__},
                                                         "ephemeral_owner": 5}) for r in snap.nodes)
    with pytest.raises(ValueError, match="owned by"):
        DataTree.deserialize(encode(FuzzyTreeSnapshot(base_zxid=1, sessions=(), nodes=owned)))


def test_fuzzy_snapshots_under_the_nemesis_keep_the_servers_in_agreement() -> None:
    """The zk simulation (a snapshot every 50 transactions, crashes, SNAP
    syncs): every verdict holds; fuzzy snapshots complete over several steps
    with transactions delivered during them; and any two servers that
    delivered up to the same zxid hold the same tree (digest), each a tree
    the strict loader accepts."""
    done = multi_step = snaps = 0
    for seed in range(1, 7):
        buf = io.StringIO()
        r, run = run_zk(seed, tracer=Tracer(buf), time_ms=5000.0)
        assert r.verdict == "ok", f"seed {seed}: {[(v.checker, v.summary[:200]) for v in r.verdicts]}; {r.replay}"
        events = [json.loads(line) for line in buf.getvalue().splitlines()]
        finished = [e for e in events if e["kind"] == "fuzzy_snapshot_done"]
        done += len(finished)
        multi_step += sum(1 for e in finished if e["steps"] > 1 and e["txns_during"] > 0 and e["delivered"] > e["base"])
        snaps += sum(1 for e in events if e["kind"] == "zab_sync" and e["mode"] == "snap")
        by_zxid: dict[int, set[int]] = {}
        for node in run.live.values():
            assert node.zab is not None
            assert DataTree.deserialize(node.tree.serialize()).digest() == node.tree.digest()
            by_zxid.setdefault(node.zab.delivered_zxid, set()).add(node.tree.digest())
        assert all(len(digests) == 1 for digests in by_zxid.values()), f"seed {seed}: {by_zxid}"
    print(f"fuzzy snapshots done {done}, over several steps with transactions during {multi_step}; SNAP syncs {snaps}")
    assert multi_step >= 10, (done, multi_step)
    assert snaps >= 1
