"""synod.zk.tree: ZooKeeper's DataTree (Hunt et al. sections 2.1, 4.1;
ZooKeeper 3.8's DataTree.processTxn), applied transactions, reads,
snapshots and replay."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from synod.core.codec import decode, encode
from synod.core.errors import RemoteProtocolError
from synod.zk import messages as m
from synod.zk import txn as tx
from synod.zk.constants import AddWatchMode, Code, EventType
from synod.zk.prep import TreeView, prepare
from synod.zk.tree import OPEN_ACL_UNSAFE, READ_ACL_UNSAFE, DataTree, TreeSnapshot

OPEN = OPEN_ACL_UNSAFE


def create(path: str, parent_cversion: int, **kw: object) -> tx.CreateTxn:
    return tx.CreateTxn(path=path, data=kw.pop("data", b""), acl=OPEN, parent_cversion=parent_cversion, **kw)  # type: ignore[arg-type]


def test_initial_tree_is_zookeeper_38s() -> None:
    t = DataTree()
    assert t.get_children("/") == m.GetChildrenResponse(children=("zookeeper",))
    assert t.get_children("/zookeeper") == m.GetChildrenResponse(children=("config", "quota"))
    root, zk = t.stat("/"), t.stat("/zookeeper")
    assert root is not None and zk is not None
    assert (root.cversion, root.numChildren) == (-1, 1)  # 2 * 0 creates - 1 child, as ZooKeeper reports it
    assert (zk.cversion, zk.numChildren) == (-2, 2)
    config = t.get_acl("/zookeeper/config")
    assert config is not None
    assert config.acl == READ_ACL_UNSAFE
    assert config.stat.aversion == -1
    assert len(t) == 4
    assert t.last_zxid == 0


def test_create_stat_and_parent_counters() -> None:
    """czxid = mzxid = pzxid = zxid; ctime = mtime = time; the parent's
    cversion and pzxid move."""
    t = DataTree()
    r = t.apply(create("/a", 1, data=b"xyz", reply_stat=True), zxid=5, time_ms=1000)
    assert r.err == Code.OK
    assert r.response == m.Create2Response(path="/a", stat=m.Stat(
        czxid=5, mzxid=5, ctime=1000, mtime=1000, version=0, cversion=0, aversion=0, ephemeralOwner=0,
        dataLength=3, numChildren=0, pzxid=5))
    root = t.stat("/")
    assert root is not None
    assert (root.cversion, root.numChildren, root.pzxid) == (0, 2, 5)
    assert t.apply(create("/b", 2), 6, 1001).response == m.CreateResponse(path="/b")
    assert t.last_zxid == 6


def test_delete_keeps_stored_cversion_reports_one_more() -> None:
    """ZooKeeper 3.8: deleteNode leaves the stored cversion (the sequence
    counter) and reports 2 * creates - children."""
    t = DataTree()
    t.apply(create("/q", 1), 1, 0)
    t.apply(create("/q/a", 1), 2, 0)
    t.apply(create("/q/b", 2), 3, 0)
    assert t.apply(tx.DeleteTxn(path="/q/a"), 4, 0).response is None
    q = t.stat("/q")
    assert q is not None
    assert (q.cversion, q.numChildren, q.pzxid) == (3, 1, 4)
    record = t.record("/q")
    assert record is not None
    assert record.cversion == 2


def test_set_data_and_acl_write_the_versions_they_carry() -> None:
    t = DataTree()
    t.apply(create("/a", 1), 1, 100)
    r = t.apply(tx.SetDataTxn(path="/a", data=b"hello", version=7), 2, 200)
    assert isinstance(r.response, m.SetDataResponse)
    stat = r.response.stat
    assert (stat.version, stat.mzxid, stat.mtime, stat.dataLength, stat.czxid) == (7, 2, 200, 5, 1)
    r = t.apply(tx.SetACLTxn(path="/a", acl=READ_ACL_UNSAFE, version=3), 3, 300)
    assert isinstance(r.response, m.SetACLResponse)
    assert r.response.stat.aversion == 3
    assert r.response.stat.mzxid == 2  # setACL is not a data change
    assert t.apply(tx.SetDataTxn(path="/nope", data=b"", version=1), 4, 0).err == Code.NONODE


def test_apply_twice_is_harmless() -> None:
    """Section 4.1: transactions are idempotent (replay after a fuzzy snapshot)."""
    t = DataTree()
    txns = [create("/a", 1), create("/a/b", 1, kind=tx.NodeKind.EPHEMERAL, ephemeral_owner=9),
            tx.SetDataTxn(path="/a", data=b"x", version=1), tx.DeleteTxn(path="/a/b"), create("/a/c", 2)]
    for zxid, txn in enumerate(txns, 1):
        t.apply(txn, zxid, zxid)
        once = t.digest()
        again = t.apply(txn, zxid, zxid)
        assert again.err in (Code.OK, Code.NODEEXISTS, Code.NONODE)
        assert again.fired == []
        assert t.digest() == once


def test_ephemerals_per_session_and_close_session() -> None:
    t = DataTree()
    t.apply(tx.CreateSessionTxn(session_id=9, timeout_ms=4000), 1, 0)
    t.apply(create("/a", 1), 2, 0)
    t.apply(create("/a/e1", 1, kind=tx.NodeKind.EPHEMERAL, ephemeral_owner=9), 3, 0)
    t.apply(create("/e2", 2, kind=tx.NodeKind.EPHEMERAL, ephemeral_owner=9), 4, 0)
    t.apply(create("/x", 3, kind=tx.NodeKind.EPHEMERAL, ephemeral_owner=8), 5, 0)
    assert t.get_ephemerals(9) == ("/a/e1", "/e2")
    assert t.get_ephemerals(9, "/a") == ("/a/e1",)
    e = t.stat("/e2")
    assert e is not None
    assert e.ephemeralOwner == 9
    assert t.sessions == {9: 4000}
    t.watches.add_data_watch("/e2", "w")
    r = t.apply(tx.CloseSessionTxn(session_id=9), 6, 0)
    assert [(w, e.type_, e.path) for w, e in r.fired] == [("w", EventType.NodeDeleted, "/e2")]
    assert "/a/e1" not in t
    assert "/e2" not in t
    assert "/x" in t
    assert t.get_ephemerals(9) == ()
    assert t.sessions == {}
    assert t.ephemeral_sessions() == [8]


def test_multi_all_or_nothing() -> None:
    t = DataTree()
    ok = t.apply(tx.MultiTxn(txns=(create("/a", 1), create("/a/b", 1, reply_stat=True),
                                tx.CheckVersionTxn(path="/a", version=1))), 1, 0)
    assert ok.err == Code.OK
    assert isinstance(ok.response, m.MultiResponse)
    assert [type(x) for x in ok.response.results] == [m.CreateResponse, m.Create2Response, m.CheckResult]
    before = t.digest()
    bad = t.apply(tx.MultiTxn(txns=(tx.DeleteTxn(path="/a/b"), tx.ErrorTxn(err=Code.BADVERSION),
                                 tx.ErrorTxn(err=Code.RUNTIMEINCONSISTENCY))), 2, 0)
    assert bad.err == Code.BADVERSION
    assert bad.response == m.MultiResponse(results=(
        m.ErrorResponse(err=0), m.ErrorResponse(err=Code.BADVERSION), m.ErrorResponse(err=Code.RUNTIMEINCONSISTENCY)))
    assert t.digest() == before
    assert t.apply(tx.ErrorTxn(err=Code.NONODE), 3, 0).response is None


def test_watches_fire_from_apply() -> None:
    t = DataTree()
    assert t.exists("/a", watcher=1) is None  # an exists watch on a missing node
    t.apply(create("/a", 1), 1, 0)
    assert t.get_children("/a", watcher=2) is not None
    assert t.get_data("/a", watcher=3) is not None
    assert t.get_data("/missing", watcher=4) is None  # no watch left on NONODE
    r = t.apply(create("/a/b", 1), 2, 0)
    assert [(w, e.type_) for w, e in r.fired] == [(2, EventType.NodeChildrenChanged)]
    r = t.apply(tx.SetDataTxn(path="/a", data=b"1", version=1), 3, 0)
    assert [(w, e.type_) for w, e in r.fired] == [(3, EventType.NodeDataChanged)]
    assert t.watches.count() == 0


def test_may_read_filters_notifications() -> None:
    t = DataTree(may_read=lambda watcher, acl: watcher != "blind")
    t.apply(create("/a", 1), 1, 0)
    t.get_data("/a", watcher="blind")
    t.get_data("/a", watcher="sees")
    r = t.apply(tx.SetDataTxn(path="/a", data=b"1", version=1), 2, 0)
    assert [w for w, _ in r.fired] == ["sees"]
    assert t.watches.count() == 0


def test_set_watches_after_reconnect() -> None:
    """DataTree.setWatches: what changed after relativeZxid fires now."""
    t = DataTree()
    t.apply(create("/a", 1), 1, 0)
    t.apply(create("/b", 2), 2, 0)
    t.apply(tx.SetDataTxn(path="/b", data=b"x", version=1), 3, 0)
    fired = t.set_watches(2, "s", data=["/a", "/b", "/gone"], exist=["/a", "/new"], child=["/a", "/"],
                          persistent=["/p"], persistent_recursive=["/r"])
    assert [(e.type_, e.path) for _, e in fired] == [
        (EventType.NodeDataChanged, "/b"), (EventType.NodeDeleted, "/gone"), (EventType.NodeCreated, "/a")]
    assert t.watches.check_watches("/a", 2, "s")  # data watch set again
    assert t.watches.check_watches("/new", 2, "s")
    assert t.watches.check_watches("/", 1, "s")
    assert t.watches.count() == 8  # the recursive watch is in both tables


def test_reads() -> None:
    t = DataTree()
    t.apply(create("/a", 1), 1, 0)
    t.apply(create("/a/b", 1), 2, 0)
    t.apply(create("/a/b/c", 1), 3, 0)
    assert t.get_all_children_number("/a") == 2
    assert t.get_all_children_number("/") == 6
    assert t.get_all_children_number("/zz") is None
    got = t.get_children2("/a")
    assert got is not None
    assert got.children == ("b",)
    assert got.stat.numChildren == 1
    assert t.get_acl("/zz") is None
    assert t.get_data("/a") == m.GetDataResponse(data=b"", stat=t.stat("/a"))
    t.watches.add_watch("/a", 5, AddWatchMode.persistentRecursive)
    r = t.apply(tx.DeleteTxn(path="/a/b/c"), 4, 0)
    assert [(w, e.path) for w, e in r.fired] == [(5, "/a/b/c")]


def test_multi_read_answers_each_op_alone_and_leaves_no_watch() -> None:
    t = DataTree()
    t.apply(create("/a", 1, data=b"x"), 1, 0)
    t.apply(tx.CreateTxn(path="/secret", data=b"", acl=(
        m.ACL(perms=31, id=m.Id(scheme="digest", id="bob:h")),), parent_cversion=2), 2, 0)
    got = t.multi_read([m.GetDataRequest(path="/a", watch=True), m.GetChildrenRequest(path="/", watch=True),
                        m.GetDataRequest(path="/nope", watch=False), m.GetDataRequest(path="/secret", watch=False)],
                       can_read=lambda acl: acl == OPEN)
    assert got.results == (t.get_data("/a"), t.get_children("/"), m.ErrorResponse(err=Code.NONODE),
                           m.ErrorResponse(err=Code.NOAUTH))
    assert t.watches.count() == 0  # ZooKeeper 3.8 drops a multiRead op's watch flag


def test_containers_and_ttls_expire_by_containermanagers_rule() -> None:
    t = DataTree()
    t.apply(create("/c", 1, kind=tx.NodeKind.CONTAINER), 1, 1000)
    t.apply(create("/never", 2, kind=tx.NodeKind.CONTAINER), 2, 1000)
    t.apply(create("/ttl", 3, kind=tx.NodeKind.TTL, ttl_ms=500), 3, 1000)
    t.apply(create("/ttlp", 4, kind=tx.NodeKind.TTL, ttl_ms=500), 4, 1000)
    t.apply(create("/ttlp/k", 1), 5, 1000)
    c = t.stat("/c")
    assert c is not None
    assert c.ephemeralOwner == 0  # a container's is not reported
    assert t.expired_containers_and_ttls(now_ms=1400) == []
    assert t.expired_containers_and_ttls(now_ms=1600) == ["/ttl"]  # /ttlp has a child
    t.apply(create("/c/x", 1), 6, 1000)
    t.apply(tx.DeleteTxn(path="/c/x"), 7, 1000)
    assert t.expired_containers_and_ttls(now_ms=1600) == ["/c", "/ttl"]
    assert t.expired_containers_and_ttls(now_ms=5000, container_never_used_ms=3000) == ["/c", "/never", "/ttl"]
    t.apply(tx.DeleteTxn(path="/c"), 8, 0)
    assert t.expired_containers_and_ttls(now_ms=1600) == ["/ttl"]


def test_snapshot_round_trip_and_corruption() -> None:
    t = DataTree()
    t.apply(tx.CreateSessionTxn(session_id=3, timeout_ms=6000), 1, 0)
    t.apply(create("/a", 1, data=b"d"), 2, 10)
    t.apply(create("/a/e", 1, kind=tx.NodeKind.EPHEMERAL, ephemeral_owner=3), 3, 11)
    t.apply(create("/t", 2, kind=tx.NodeKind.TTL, ttl_ms=50), 4, 12)
    t.apply(tx.DeleteTxn(path="/a/e"), 5, 13)
    t.apply(create("/a/e", 2, kind=tx.NodeKind.EPHEMERAL, ephemeral_owner=3), 6, 14)
    blob = t.serialize()
    u = DataTree.deserialize(blob)
    assert u.digest() == t.digest()
    assert u.serialize() == blob
    assert u.last_zxid == 6
    assert u.get_ephemerals(3) == ("/a/e",)
    assert u.expired_containers_and_ttls(now_ms=100) == ["/t"]
    assert u.record("/a") == t.record("/a")
    with pytest.raises(RemoteProtocolError):
        DataTree.deserialize(blob[:-3])
    snap = decode(blob, TreeSnapshot)
    orphan = TreeSnapshot(last_zxid=6, sessions=(), nodes=tuple(r for r in snap.nodes if r.path != "/a"))
    with pytest.raises(ValueError, match="without its parent"):
        DataTree.deserialize(encode(orphan))
    lying = TreeSnapshot(last_zxid=6, sessions=(), nodes=tuple(r for r in snap.nodes if r.path != "/a/e"))
    with pytest.raises(ValueError, match="does not match"):
        DataTree.deserialize(encode(lying))


def test_digest_tracks_content_not_history() -> None:
    a, b = DataTree(), DataTree()
    assert a.digest() == b.digest()
    a.apply(create("/x", 1), 1, 0)
    assert a.digest() != b.digest()
    b.apply(create("/x", 1), 1, 0)
    assert a.digest() == b.digest()
    b.apply(tx.SetDataTxn(path="/x", data=b"", version=0), 2, 0)  # same values, new mzxid
    assert a.digest() != b.digest()


# -- replay after a snapshot, against the live tree ------------------------------------------------

_names = st.sampled_from(["/a", "/b", "/a/c", "/a/d", "/b/e"])
_requests = st.one_of(
    st.builds(lambda p, f: m.CreateRequest(path=p, data=b"v", acl=OPEN, flags=f), _names, st.sampled_from([0, 1, 2, 3])),
    st.builds(lambda p: m.DeleteRequest(path=p, version=-1), _names),
    st.builds(lambda p, d: m.SetDataRequest(path=p, data=d, version=-1), _names, st.binary(max_size=3)),
    st.builds(lambda p: m.SetACLRequest(path=p, acl=OPEN, version=-1), _names),
    st.builds(lambda: m.CloseSessionRequest()),
    st.builds(lambda a, b: m.MultiRequest(ops=(
        m.CreateRequest(path=a, data=b"", acl=OPEN, flags=0), m.DeleteRequest(path=b, version=-1))), _names, _names),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_requests, st.sampled_from([7, 8])), max_size=40), st.data())
def test_replay_from_a_snapshot_reaches_the_same_tree(requests: list[tuple[object, int]], data: st.DataObject) -> None:
    """A snapshot taken at zxid k, replayed from any j <= k to the end, gives
    the live tree's digest (the property fuzzy snapshots rely on, section 4.1)."""
    t = DataTree()
    view = TreeView(t)
    txns, snaps = [], [t.serialize()]
    for zxid, (request, session) in enumerate(requests, 1):
        txn = prepare(request, session_id=session, zxid=zxid, view=view)
        t.apply(txn, zxid, zxid)
        view.applied(zxid)
        txns.append(txn)
        snaps.append(t.serialize())
    k = data.draw(st.integers(0, len(txns)), label="snapshot at")
    j = data.draw(st.integers(0, k), label="replay from")
    u = DataTree.deserialize(snaps[k])
    for zxid in range(j + 1, len(txns) + 1):
        u.apply(txns[zxid - 1], zxid, zxid)
    assert u.digest() == t.digest()


# -- a state machine against a dictionary model ---------------------------------------------------


class TreeMachine(RuleBasedStateMachine):
    """prepare + apply against a model of the tree as a dict (path -> data,
    version, children created, owner): every outcome and counter agrees,
    and the tree's indexes stay consistent."""

    def __init__(self) -> None:
        super().__init__()
        self.tree = DataTree()
        self.view = TreeView(self.tree)
        self.zxid = 0
        # path -> [data, version, child creates, ephemeral owner]
        self.model: dict[str, list] = {"/": [b"", 0, 0, 0]}

    def _run(self, request: object, session: int = 1) -> tx.Txn:
        self.zxid += 1
        txn = prepare(request, session_id=session, zxid=self.zxid, view=self.view)
        self.tree.apply(txn, self.zxid, self.zxid)
        self.view.applied(self.zxid)
        return txn

    def _children(self, path: str) -> list[str]:
        prefix = path.rstrip("/") + "/"
        return [p for p in self.model if p != path and p.startswith(prefix) and "/" not in p[len(prefix):]]

    @rule(path=_names, flags=st.sampled_from([0, 1, 2, 3]), session=st.sampled_from([7, 8]))
    def create(self, path: str, flags: int, session: int) -> None:
        parent = path.rsplit("/", 1)[0] or "/"
        txn = self._run(m.CreateRequest(path=path, data=b"d", acl=OPEN, flags=flags), session)
        if parent not in self.model:
            assert txn == tx.ErrorTxn(err=Code.NONODE)
            return
        name = f"{path}{self.model[parent][2]:010d}" if flags in (2, 3) else path
        if name in self.model:
            assert txn == tx.ErrorTxn(err=Code.NODEEXISTS)
        elif self.model[parent][3]:
            assert txn == tx.ErrorTxn(err=Code.NOCHILDRENFOREPHEMERALS)
        else:
            assert isinstance(txn, tx.CreateTxn)
            assert txn.path == name
            self.model[parent][2] += 1
            self.model[name] = [b"d", 0, 0, session if flags in (1, 3) else 0]

    @rule(path=_names, version=st.sampled_from([-1, 0, 1]))
    def delete(self, path: str, version: int) -> None:
        txn = self._run(m.DeleteRequest(path=path, version=version))
        if path not in self.model:
            assert txn == tx.ErrorTxn(err=Code.NONODE)
        elif version not in (-1, self.model[path][1]):
            assert txn == tx.ErrorTxn(err=Code.BADVERSION)
        elif self._children(path):
            assert txn == tx.ErrorTxn(err=Code.NOTEMPTY)
        else:
            assert txn == tx.DeleteTxn(path=path)
            del self.model[path]

    @rule(path=_names, version=st.sampled_from([-1, 0, 1]), data=st.binary(max_size=4))
    def set_data(self, path: str, version: int, data: bytes) -> None:
        txn = self._run(m.SetDataRequest(path=path, data=data, version=version))
        if path not in self.model:
            assert txn == tx.ErrorTxn(err=Code.NONODE)
        elif version not in (-1, self.model[path][1]):
            assert txn == tx.ErrorTxn(err=Code.BADVERSION)
        else:
            self.model[path][0] = data
            self.model[path][1] += 1

    @rule(session=st.sampled_from([7, 8]))
    def close_session(self, session: int) -> None:
        self._run(m.CloseSessionRequest(), session)
        for path in [p for p, v in self.model.items() if v[3] == session]:
            del self.model[path]

    @invariant()
    def tree_matches_model(self) -> None:
        assert len(self.tree) == len(self.model) + 3  # /zookeeper, quota, config
        for path, (data, version, creates, owner) in self.model.items():
            got = self.tree.get_data(path)
            assert got is not None, path
            kids = len(self._children(path)) + (path == "/")  # and /zookeeper
            assert (got.data, got.stat.version, got.stat.ephemeralOwner, got.stat.numChildren) == (
                data, version, owner, kids)
            assert got.stat.cversion == 2 * creates - kids  # creates + deletes, as ZooKeeper reports it
        for session in (7, 8):
            assert list(self.tree.get_ephemerals(session)) == sorted(
                p for p, v in self.model.items() if v[3] == session)
        assert len(self.view) == 0


TreeMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
test_tree_against_a_dict_model = TreeMachine.TestCase
