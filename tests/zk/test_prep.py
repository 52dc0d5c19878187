"""synod.zk.prep: the leader's PrepRequestProcessor (Hunt et al. section 4.1;
ZooKeeper 3.8): checks in ZooKeeper's order, outstanding changes, multi,
ACLs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kazoo.security import make_digest_acl_credential

from synod.core.codec import decode, encode
from synod.zk import messages as m
from synod.zk.constants import Code, CreateMode, Perms
from synod.zk.prep import (
    TreeView,
    check_acl,
    digest_id,
    fixup_acl,
    prepare,
    prepare_delete_container,
    validate_path,
    visible_acl,
)
from synod.zk.tree import OPEN_ACL_UNSAFE, DataTree
from synod.zk.txn import CloseSessionTxn, CreateTxn, DeleteTxn, ErrorTxn, MultiTxn, NodeKind, SetDataTxn, Txn

OPEN = OPEN_ACL_UNSAFE
READ_ONLY = (m.ACL(perms=int(Perms.READ), id=m.Id(scheme="world", id="anyone")),)


class Leader:
    """prepare + apply, with a switch to hold transactions back (outstanding)."""

    def __init__(self) -> None:
        self.tree = DataTree()
        self.view = TreeView(self.tree)
        self.zxid = 0
        self.held: list[tuple[int, object]] = []

    def prepare(self, request: object, session_id: int = 1, auth: tuple[m.Id, ...] = ()) -> object:
        self.zxid += 1
        txn = prepare(request, session_id=session_id, zxid=self.zxid, view=self.view, auth_ids=auth)
        self.held.append((self.zxid, txn))
        return txn

    def commit(self) -> list[object]:
        out = []
        for zxid, txn in self.held:
            out.append(self.tree.apply(txn, zxid, zxid))  # type: ignore[arg-type]
            self.view.applied(zxid)
        self.held.clear()
        return out

    def do(self, request: object, session_id: int = 1, auth: tuple[m.Id, ...] = ()) -> object:
        txn = self.prepare(request, session_id, auth)
        self.commit()
        return txn


def mk(path: str, flags: int = 0, acl: tuple[m.ACL, ...] = OPEN, data: bytes = b"") -> m.CreateRequest:
    return m.CreateRequest(path=path, data=data, acl=acl, flags=flags)


@pytest.mark.parametrize(("path", "ok"), [
    ("/", True), ("/a", True), ("/a/b-c_d.e", True), ("/a/..b", True), ("/zoo\u00e9", True),
    ("", False), ("a", False), ("/a/", False), ("//a", False), ("/a//b", False), ("/.", False), ("/a/..", False),
    ("/a/./b", False), ("/a\0b", False), ("/a\x1fb", False), ("/a\x7f", False), ("/a\ud800", False),
    ("/a\uf8ff", False), ("/a\ufff0", False), ("/a\U0001F600", False),
])
def test_validate_path_is_pathutils(path: str, ok: bool) -> None:
    assert validate_path(path) is ok


def test_sequential_names_come_from_the_parents_cversion() -> None:
    """10-digit counter, the parent's stored cversion (creates, not deletes)."""
    z = Leader()
    z.do(mk("/q"))
    a = z.do(mk("/q/n-", CreateMode.PERSISTENT_SEQUENTIAL))
    b = z.do(mk("/q/n-", CreateMode.EPHEMERAL_SEQUENTIAL), session_id=5)
    assert isinstance(a, CreateTxn)
    assert isinstance(b, CreateTxn)
    assert (a.path, b.path) == ("/q/n-0000000000", "/q/n-0000000001")
    assert b.ephemeral_owner == 5
    assert b.kind == NodeKind.EPHEMERAL
    z.do(m.DeleteRequest(path=a.path, version=-1))
    c = z.do(mk("/q/", CreateMode.PERSISTENT_SEQUENTIAL))
    assert isinstance(c, CreateTxn)
    assert c.path == "/q/0000000002"


def test_outstanding_changes_make_prepared_creates_conflict() -> None:
    """Two creates of one path prepared before either is applied: the second
    sees the first (ChangeRecord), NODEEXISTS; two sequential creates get two
    numbers; a delete of the prepared node passes."""
    z = Leader()
    first = z.prepare(mk("/a"))
    assert isinstance(first, CreateTxn)
    assert z.prepare(mk("/a")) == ErrorTxn(err=Code.NODEEXISTS)
    s1 = z.prepare(mk("/a/s", CreateMode.PERSISTENT_SEQUENTIAL))
    s2 = z.prepare(mk("/a/s", CreateMode.PERSISTENT_SEQUENTIAL))
    assert isinstance(s1, CreateTxn)
    assert isinstance(s2, CreateTxn)
    assert (s1.path, s2.path) == ("/a/s0000000000", "/a/s0000000001")
    assert z.prepare(m.DeleteRequest(path="/a", version=-1)) == ErrorTxn(err=Code.NOTEMPTY)
    assert isinstance(z.prepare(m.SetDataRequest(path="/a", data=b"", version=0)), SetDataTxn)
    assert z.prepare(m.SetDataRequest(path="/a", data=b"", version=0)) == ErrorTxn(err=Code.BADVERSION)
    assert len(z.view) > 0
    results = z.commit()
    assert [r.err for r in results] == [0, Code.NODEEXISTS, 0, 0, Code.NOTEMPTY, 0, Code.BADVERSION]
    assert len(z.view) == 0
    stat = z.tree.stat("/a")
    assert stat is not None
    assert (stat.version, stat.numChildren) == (1, 2)


def test_errors_in_zookeepers_order() -> None:
    z = Leader()
    z.do(mk("/a"))
    z.do(mk("/eph", CreateMode.EPHEMERAL))
    z.do(mk("/ro", acl=READ_ONLY))
    assert z.do(mk("/x/y")) == ErrorTxn(err=Code.NONODE)
    assert z.do(mk("/a")) == ErrorTxn(err=Code.NODEEXISTS)
    assert z.do(mk("/")) == ErrorTxn(err=Code.NODEEXISTS)
    assert z.do(mk("/a/")) == ErrorTxn(err=Code.BADARGUMENTS)
    assert z.do(mk("/x/")) == ErrorTxn(err=Code.NONODE)  # the parent is looked up before the path is validated
    assert z.do(mk("a")) == ErrorTxn(err=Code.BADARGUMENTS)
    assert z.do(mk("/eph/c")) == ErrorTxn(err=Code.NOCHILDRENFOREPHEMERALS)
    assert z.do(mk("/ro/c")) == ErrorTxn(err=Code.NOAUTH)
    assert z.do(mk("/b", flags=99)) == ErrorTxn(err=Code.BADARGUMENTS)
    assert z.do(mk("/b", acl=())) == ErrorTxn(err=Code.INVALIDACL)
    assert z.do(mk("/b", data=b"x" * (1 << 20))) == ErrorTxn(err=Code.BADARGUMENTS)
    assert z.do(m.DeleteRequest(path="/nope", version=-1)) == ErrorTxn(err=Code.NONODE)
    assert z.do(m.DeleteRequest(path="/a", version=3)) == ErrorTxn(err=Code.BADVERSION)
    for special in ("/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"):
        assert z.do(m.DeleteRequest(path=special, version=-1)) == ErrorTxn(err=Code.BADARGUMENTS)
    assert z.do(m.SetDataRequest(path="/ro", data=b"", version=-1)) == ErrorTxn(err=Code.NOAUTH)
    assert z.do(m.SetDataRequest(path="/a/", data=b"", version=-1)) == ErrorTxn(err=Code.BADARGUMENTS)
    assert z.do(m.SetACLRequest(path="/ro", acl=OPEN, version=-1)) == ErrorTxn(err=Code.NOAUTH)
    assert z.do(m.SetACLRequest(path="/a", acl=OPEN, version=1)) == ErrorTxn(err=Code.BADVERSION)
    assert z.do(m.CheckVersionRequest(path="/a", version=2)) == ErrorTxn(err=Code.BADVERSION)
    ttl = m.CreateTTLRequest(path="/t", data=b"", acl=OPEN, flags=int(CreateMode.PERSISTENT_WITH_TTL), ttl=0)
    assert z.do(ttl) == ErrorTxn(err=Code.BADARGUMENTS)
    z.zxid += 1
    assert prepare(ttl, session_id=1, zxid=z.zxid, view=z.view,
                   extended_types_enabled=False) == ErrorTxn(err=Code.UNIMPLEMENTED)


def test_multi_first_failure_wins_and_rolls_back() -> None:
    """The failing op gets its code, later ops RUNTIMEINCONSISTENCY, earlier
    ones OK; the view forgets the earlier ops' records."""
    z = Leader()
    z.do(mk("/a"))
    txn = z.prepare(m.MultiRequest(ops=(mk("/b"), m.SetDataRequest(path="/a", data=b"", version=0),
                                        m.DeleteRequest(path="/nope", version=-1), mk("/c"))))
    assert isinstance(txn, MultiTxn)
    assert [type(t).__name__ for t in txn.txns] == ["CreateTxn", "SetDataTxn", "ErrorTxn", "ErrorTxn"]
    assert txn.txns[2:] == (ErrorTxn(err=Code.NONODE), ErrorTxn(err=Code.RUNTIMEINCONSISTENCY))
    assert z.view.record("/b") is None  # rolled back
    assert isinstance(z.prepare(mk("/b")), CreateTxn)
    result = z.commit()[0]
    assert result.response == m.MultiResponse(results=(m.ErrorResponse(err=0), m.ErrorResponse(err=0),
                                                       m.ErrorResponse(err=Code.NONODE),
                                                       m.ErrorResponse(err=Code.RUNTIMEINCONSISTENCY)))
    a = z.tree.stat("/a")
    assert a is not None
    assert a.version == 0


def test_multi_sees_its_own_earlier_ops() -> None:
    z = Leader()
    txn = z.do(m.MultiRequest(ops=(mk("/a"), mk("/a/s", CreateMode.PERSISTENT_SEQUENTIAL),
                                   mk("/a/s", CreateMode.PERSISTENT_SEQUENTIAL),
                                   m.CheckVersionRequest(path="/a", version=0))))
    assert isinstance(txn, MultiTxn)
    assert [getattr(t, "path", None) for t in txn.txns] == ["/a", "/a/s0000000000", "/a/s0000000001", "/a"]
    assert z.tree.get_all_children_number("/a") == 2
    assert z.do(m.MultiRequest(ops=())) == MultiTxn(txns=())


def test_close_session_deletes_ephemerals_including_outstanding_ones() -> None:
    z = Leader()
    z.do(mk("/e1", CreateMode.EPHEMERAL), session_id=7)
    z.prepare(mk("/e2", CreateMode.EPHEMERAL), session_id=7)
    z.prepare(m.DeleteRequest(path="/e1", version=-1), session_id=7)
    z.prepare(mk("/e3", CreateMode.EPHEMERAL), session_id=7)
    assert z.view.ephemerals(7) == ["/e2", "/e3"]
    assert z.prepare(m.CloseSessionRequest(), session_id=7) == CloseSessionTxn(session_id=7)
    assert z.view.ephemerals(7) == []
    assert isinstance(z.prepare(mk("/e2")), CreateTxn)  # the view knows /e2 will be gone
    z.commit()
    assert z.tree.get_ephemerals(7) == ()
    e2 = z.tree.stat("/e2")
    assert e2 is not None
    assert e2.ephemeralOwner == 0


def test_delete_container() -> None:
    z = Leader()
    z.do(m.CreateContainerRequest(path="/c", data=b"", acl=OPEN, flags=int(CreateMode.CONTAINER)))
    z.do(mk("/p"))
    z.do(mk("/c/x"))
    z.zxid += 1
    assert prepare_delete_container("/c", zxid=z.zxid, view=z.view) == ErrorTxn(err=Code.NOTEMPTY)
    assert prepare_delete_container("/p", zxid=z.zxid, view=z.view) == ErrorTxn(err=Code.BADARGUMENTS)
    assert prepare_delete_container("/zz", zxid=z.zxid, view=z.view) == ErrorTxn(err=Code.NONODE)
    z.do(m.DeleteRequest(path="/c/x", version=-1))
    z.zxid += 1
    assert prepare_delete_container("/c", zxid=z.zxid, view=z.view) == DeleteTxn(path="/c")
    assert z.view.record("/c") is None


def test_digest_id_matches_kazoos() -> None:
    assert digest_id("alice", "secret") == make_digest_acl_credential("alice", "secret")
    assert digest_id("super", "") == make_digest_acl_credential("super", "")


def test_acl_schemes() -> None:
    alice = m.Id(scheme="digest", id=digest_id("alice", "pw"))
    ip = m.Id(scheme="ip", id="10.0.0.7")
    world = m.Id(scheme="world", id="anyone")
    auth = (m.ACL(perms=31, id=m.Id(scheme="auth", id="")),)
    assert fixup_acl(auth, (ip,)) is None  # no authenticated id: INVALIDACL
    assert fixup_acl(auth, (ip, alice)) == (m.ACL(perms=31, id=alice),)
    assert fixup_acl((m.ACL(perms=31, id=m.Id(scheme="world", id="bob")),), ()) is None
    assert fixup_acl((m.ACL(perms=31, id=m.Id(scheme="digest", id="nocolon")),), ()) is None
    assert fixup_acl((m.ACL(perms=31, id=m.Id(scheme="ip", id="10.0.0.0/33")),), ()) is None
    assert fixup_acl((m.ACL(perms=31, id=m.Id(scheme="ip", id="10.0.0.0/8")),) * 2, ()) == (
        m.ACL(perms=31, id=m.Id(scheme="ip", id="10.0.0.0/8")),)
    subnet = (m.ACL(perms=int(Perms.READ), id=m.Id(scheme="ip", id="10.0.0.0/8")),)
    assert check_acl(subnet, Perms.READ, (ip,))
    assert not check_acl(subnet, Perms.WRITE, (ip,))
    assert not check_acl(subnet, Perms.READ, (m.Id(scheme="ip", id="11.0.0.1"),))
    assert check_acl((m.ACL(perms=31, id=alice),), Perms.ADMIN, (alice,))
    assert not check_acl((m.ACL(perms=31, id=alice),), Perms.ADMIN, (ip,))
    assert check_acl((m.ACL(perms=31, id=alice),), Perms.ADMIN, (m.Id(scheme="super", id="root"),))
    assert check_acl((m.ACL(perms=int(Perms.READ), id=world),), Perms.READ, ())
    assert check_acl((), Perms.ADMIN, ())  # an empty ACL allows everything, as ZooKeeper


def test_acl_enforced_through_prepare() -> None:
    z = Leader()
    alice = (m.Id(scheme="digest", id=digest_id("alice", "pw")),)
    mine = (m.ACL(perms=31, id=m.Id(scheme="auth", id="")),)
    assert isinstance(z.do(mk("/a", acl=mine), auth=alice), CreateTxn)
    assert z.do(m.SetDataRequest(path="/a", data=b"", version=-1)) == ErrorTxn(err=Code.NOAUTH)
    assert isinstance(z.do(m.SetDataRequest(path="/a", data=b"", version=-1), auth=alice), SetDataTxn)
    assert z.do(mk("/a/b")) == ErrorTxn(err=Code.NOAUTH)
    assert z.do(mk("/b", acl=mine)) == ErrorTxn(err=Code.INVALIDACL)


# -- pipelined = one at a time ----------------------------------------------------------------------

_names = st.sampled_from(["/a", "/b", "/a/c", "/a/d", "/a/s-"])
_ops = st.one_of(
    st.builds(lambda p, f: mk(p, f), _names, st.sampled_from([0, 1, 2, 3])),
    st.builds(lambda p, v: m.DeleteRequest(path=p, version=v), _names, st.sampled_from([-1, 0, 1])),
    st.builds(lambda p, v: m.SetDataRequest(path=p, data=b"x", version=v), _names, st.sampled_from([-1, 0, 1])),
    st.builds(lambda p, v: m.CheckVersionRequest(path=p, version=v), _names, st.sampled_from([-1, 0, 1])),
)
_requests = st.one_of(_ops, st.builds(lambda ops: m.MultiRequest(ops=tuple(ops)), st.lists(_ops, max_size=3)),
                      st.just(m.CloseSessionRequest()))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_requests, st.sampled_from([7, 8]), st.booleans()), max_size=30))
def test_outstanding_changes_equal_one_at_a_time(steps: list[tuple[object, int, bool]]) -> None:
    """Preparing against the view while earlier txns are still in flight gives
    the same txns, results and tree as applying each before the next is
    prepared (the point of ZooKeeper's outstanding changes); every txn
    survives synod's codec."""
    serial, pipelined = Leader(), Leader()
    serial_results, pipelined_results = [], []
    for request, session, commit_now in steps:
        txn = serial.prepare(request, session)
        assert txn == pipelined.prepare(request, session)
        assert decode(encode(txn), Txn) == txn  # Zab carries it through synod's codec
        serial_results += serial.commit()
        if commit_now:
            pipelined_results += pipelined.commit()
    pipelined_results += pipelined.commit()
    assert [(r.err, r.response) for r in serial_results] == [(r.err, r.response) for r in pipelined_results]
    assert serial.tree.digest() == pipelined.tree.digest()


def test_visible_acl_hides_digests_without_admin() -> None:
    """getACL without ADMIN shows ``user:x`` for digest ids (ZOOKEEPER-1392)."""
    alice = m.Id(scheme="digest", id=digest_id("alice", "pw"))
    acl = (m.ACL(perms=int(Perms.READ), id=m.Id(scheme="world", id="anyone")), m.ACL(perms=31, id=alice))
    assert visible_acl(acl, (alice,)) == acl
    assert visible_acl(acl, ()) == (acl[0], m.ACL(perms=31, id=m.Id(scheme="digest", id="alice:x")))


# -- anything a client can send ----------------------------------------------------------------------

_any_path = st.one_of(st.text(max_size=12), st.sampled_from(["/", "/a", "/a/", "/a/b", "/a\0", "/zookeeper", "//"]),
                      st.builds(lambda s: "/a/" + s, st.text(max_size=6)))
_int32 = st.integers(-(1 << 31), (1 << 31) - 1)
_any_acl = st.lists(st.builds(lambda p, s, i: m.ACL(perms=p, id=m.Id(scheme=s, id=i)), _int32,
                              st.sampled_from(["world", "auth", "digest", "ip", "super", "x"]),
                              st.one_of(st.text(max_size=10), st.sampled_from(["anyone", "a:b", "10.0.0.0/8",
                                                                                "::1/200", "1.2.3.4"]))),
                    max_size=3).map(tuple)
_any_op = st.one_of(
    st.builds(lambda c, p, a, f: c(path=p, data=b"", acl=a, flags=f),
              st.sampled_from([m.CreateRequest, m.Create2Request, m.CreateContainerRequest]), _any_path, _any_acl,
              st.one_of(_int32, st.integers(0, 7))),
    st.builds(lambda p, a, f, t: m.CreateTTLRequest(path=p, data=None, acl=a, flags=f, ttl=t), _any_path, _any_acl,
              st.integers(0, 7), st.integers(-(1 << 63), (1 << 63) - 1)),
    st.builds(lambda p, v: m.DeleteRequest(path=p, version=v), _any_path, _int32),
    st.builds(lambda p, v: m.SetDataRequest(path=p, data=None, version=v), _any_path, _int32),
    st.builds(lambda p, v: m.CheckVersionRequest(path=p, version=v), _any_path, _int32),
)
_any_request = st.one_of(
    _any_op, st.builds(lambda ops: m.MultiRequest(ops=tuple(ops)), st.lists(_any_op, max_size=4)),
    st.builds(lambda p, a, v: m.SetACLRequest(path=p, acl=a, version=v), _any_path, _any_acl, _int32),
    st.just(m.CloseSessionRequest()))


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.tuples(_any_request, st.sampled_from([1, 2]), st.booleans()), max_size=12))
def test_any_request_gives_a_txn_and_applies(steps: list[tuple[object, int, bool]]) -> None:
    """Whatever a client sends (any path text, flags, versions, ACL schemes
    and ids), prepare answers a transaction (an ErrorTxn when refused) and the
    tree applies it without raising: nothing a client sends stops the leader."""
    z = Leader()
    auth = (m.Id(scheme="digest", id=digest_id("u", "p")), m.Id(scheme="ip", id="10.1.2.3"))
    for request, session, authed in steps:
        txn = z.prepare(request, session, auth if authed else ())
        assert decode(encode(txn), Txn) == txn
        for result in z.commit():
            assert result.err in {int(c) for c in Code}
    assert DataTree.deserialize(z.tree.serialize()).digest() == z.tree.digest()
