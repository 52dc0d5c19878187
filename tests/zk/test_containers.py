"""Container and TTL nodes deleted by the leader (issue 12 section 2;
ZooKeeper 3.8's ContainerManager, PrepRequestProcessor's deleteContainer).

- In the simulator: a container that had a child and has none, and a TTL
  node left alone past its TTL, are deleted on every server through Zab
  (the same tree, digest for digest); a container that never had a child
  and a TTL node with a child stay; a TTL node whose data keeps being set
  stays while it is renewed and goes once left alone.
- The leader's check against what it has already proposed: a setData or a
  child's create proposed after the node was found expired wins.
- Over real processes, driven by kazoo 2.11 (raw createContainer and
  createTTL requests: kazoo has no call for them): the same sequence on a
  3-server synod ensemble and on a 3-server Apache ZooKeeper 3.8 ensemble
  (ContainerManager every 100 ms, TTL nodes enabled) leaves the same names.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.security import OPEN_ACL_UNSAFE as K_OPEN
from tests.kv.test_real_clients import wait_until
from tests.zk._real_zookeeper import zookeeper_ensemble
from tests.zk.test_server_sim import _Client, _connect
from tests.zk.test_vs_zookeeper import _CreateContainer, _CreateTTL, _raw

from synod.core import Context
from synod.harness.zk_real import running_ensemble
from synod.sim import Simulator
from synod.zab import ZabNodeConfig
from synod.zab.zab import ZabConfig
from synod.zk import messages as m
from synod.zk.constants import Code, CreateMode
from synod.zk.prep import TreeView, prepare, prepare_delete_container
from synod.zk.server import ZkServerConfig, ZkServerNode
from synod.zk.tree import OPEN_ACL_UNSAFE, DataTree
from synod.zk.txn import CreateTxn, DeleteTxn, ErrorTxn, NodeKind

IDS = ("zk1", "zk2", "zk3")
TTL_MS = 300
CHECK_MS = 100
WAIT_S = 30.0


def _sim_servers(sim: Simulator) -> None:
    for i, nid in enumerate(IDS):
        cfg = ZkServerConfig(node=ZabNodeConfig(zab=ZabConfig(server_id=nid, voters=IDS), tick_ms=50.0),
                             server_index=i + 1, container_check_interval_ms=CHECK_MS)
        sim.add_node(nid, lambda cfg=cfg: ZkServerNode(cfg), peers=IDS)


def _trees(sim: Simulator) -> dict[str, DataTree]:
    return {nid: sim.hosts[nid].node.tree for nid in IDS}  # type: ignore[attr-defined]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_leader_deletes_expired_containers_and_ttl_nodes_on_every_server(seed: int) -> None:
    """Replay: ``.venv/bin/python -m pytest -q 'tests/zk/test_containers.py::
    test_the_leader_deletes_expired_containers_and_ttl_nodes_on_every_server[<seed>]'``."""
    sim = Simulator(seed)
    _sim_servers(sim)
    out: dict[str, Any] = {"renewals": []}

    async def script(ctx: Context, out: dict[str, Any]) -> None:
        await _connect(ctx, "zk1")

        async def call(request: Any) -> m.Reply:
            reply = await ctx.call("zk1", request, 1000)
            assert isinstance(reply, m.Reply), reply
            return reply

        def container(path: str) -> Any:
            return m.CreateContainerRequest(path=path, data=b"", acl=OPEN_ACL_UNSAFE, flags=int(CreateMode.CONTAINER))

        def ttl(path: str) -> Any:
            return m.CreateTTLRequest(path=path, data=b"", acl=OPEN_ACL_UNSAFE,
                                      flags=int(CreateMode.PERSISTENT_WITH_TTL), ttl=TTL_MS)

        for request in (container("/k"), m.CreateRequest(path="/k/x", data=b"", acl=OPEN_ACL_UNSAFE, flags=0),
                        m.DeleteRequest(path="/k/x", version=-1), container("/never"), ttl("/t"), ttl("/tp"),
                        m.CreateRequest(path="/tp/x", data=b"", acl=OPEN_ACL_UNSAFE, flags=0), ttl("/renewed")):
            assert (await call(request)).err == 0, request
        out["created"] = True
        for _ in range(10):   # 1 s of setData every TTL / 3: /renewed must stay all along
            await ctx.sleep(TTL_MS // 3)
            out["renewals"].append((await call(m.SetDataRequest(path="/renewed", data=b"r", version=-1))).err)
        out["renewed"] = True

    sim.add_node("c1", lambda: _Client(script, out), peers=IDS)
    sim.run(until=lambda: "renewed" in out, until_ms=60_000)
    assert out.get("renewed"), f"seed {seed}: the client did not finish"
    assert out["renewals"] == [0] * 10, f"seed {seed}: /renewed was deleted while renewed: {out['renewals']}"

    def settled() -> bool:
        trees = _trees(sim)
        return all("/k" not in t and "/t" not in t and "/renewed" not in t for t in trees.values()) and \
            len({t.last_zxid for t in trees.values()}) == 1
    sim.run(until=settled, until_ms=sim.now_ms + 30_000)
    trees = _trees(sim)
    assert settled(), f"seed {seed}: not deleted everywhere: {[t.get_children('/') for t in trees.values()]}"
    assert len({t.digest() for t in trees.values()}) == 1, f"seed {seed}: the servers' trees differ"
    for t in trees.values():
        root = t.get_children("/")
        assert root is not None
        assert root.children == ("never", "tp", "zookeeper")
        assert "/tp/x" in t


def test_a_change_proposed_after_the_check_wins() -> None:
    """The leader found /t expired, but a setData of /t (renewing it) or a
    child's create is already proposed: the delete is refused, the node
    stays (BADVERSION, NOTEMPTY); with nothing in between it goes."""
    tree = DataTree()
    view = TreeView(tree)
    for zxid, path in ((1, "/t"), (2, "/u"), (3, "/v")):
        txn = prepare(m.CreateTTLRequest(path=path, data=b"", acl=OPEN_ACL_UNSAFE,
                                         flags=int(CreateMode.PERSISTENT_WITH_TTL), ttl=TTL_MS),
                      session_id=1, zxid=zxid, view=view)
        assert isinstance(txn, CreateTxn) and txn.kind == NodeKind.TTL
        assert tree.apply(txn, zxid, time_ms=0).err == 0
        view.applied(zxid)
    assert tree.expired_containers_and_ttls(now_ms=TTL_MS + 1) == ["/t", "/u", "/v"]
    found = {p: tree.record(p) for p in ("/t", "/u", "/v")}
    prepare(m.SetDataRequest(path="/t", data=b"new", version=-1), session_id=1, zxid=4, view=view)
    prepare(m.CreateRequest(path="/u/x", data=b"", acl=OPEN_ACL_UNSAFE, flags=0), session_id=1, zxid=5, view=view)
    results = {p: prepare_delete_container(p, zxid=6, view=view, version=r.version)  # type: ignore[union-attr]
               for p, r in found.items()}
    assert results == {"/t": ErrorTxn(err=Code.BADVERSION), "/u": ErrorTxn(err=Code.NOTEMPTY),
                       "/v": DeleteTxn(path="/v")}
    # A second check before the delete applies finds it already proposed.
    assert prepare_delete_container("/v", zxid=7, view=view, version=0) == ErrorTxn(err=Code.NONODE)


# -- real processes ---------------------------------------------------------------------------------


@pytest.fixture
def synod_ports(tmp_path: Path) -> Iterator[list[int]]:
    with running_ensemble(tmp_path / "synod", len(IDS), params={"container_check_interval_ms": CHECK_MS}) as (_, ports):
        yield ports


def _names(client: KazooClient, path: str) -> list[str]:
    client.sync(path)
    return sorted(client.get_children(path))


def _run_sequence(ports: list[int]) -> dict[str, Any]:
    """The sequence through kazoo on the first server; each server's view
    of ``/`` (after a sync) once /k and /t are gone and a later container
    (/k2) went too, so the ContainerManager ran again after them."""
    clients = [KazooClient(hosts=f"127.0.0.1:{p}", timeout=10) for p in ports]
    for zk in clients:
        zk.start(timeout=WAIT_S)
    zk = clients[0]
    try:
        assert _raw(zk, _CreateContainer("/k", b"", K_OPEN, int(CreateMode.CONTAINER)))[0] == "/k"
        zk.create("/k/x")
        assert _raw(zk, _CreateContainer("/never", b"", K_OPEN, int(CreateMode.CONTAINER)))[0] == "/never"
        for path in ("/t", "/tp"):
            assert _raw(zk, _CreateTTL(path, b"", K_OPEN, int(CreateMode.PERSISTENT_WITH_TTL), TTL_MS))[0] == path
        zk.create("/tp/x")
        ttl_stat = zk.exists("/t")
        zk.delete("/k/x")
        for c in clients:
            wait_until("/k and /t deleted", lambda c=c: not {"k", "t"} & set(_names(c, "/")), WAIT_S)
        assert _raw(zk, _CreateContainer("/k2", b"", K_OPEN, int(CreateMode.CONTAINER)))[0] == "/k2"
        zk.create("/k2/x")
        zk.delete("/k2/x")
        for c in clients:
            wait_until("/k2 deleted", lambda c=c: "k2" not in _names(c, "/"), WAIT_S)
        return {"names": [_names(c, "/") for c in clients], "tp": [_names(c, "/tp") for c in clients],
                "root_pzxid": {c.exists("/").pzxid for c in clients}, "ttl_owner": ttl_stat.ephemeralOwner}
    finally:
        for c in clients:
            c.stop()
            c.close()


@pytest.mark.parametrize("system", ["synod", "zookeeper"])
def test_kazoo_sees_containers_and_ttl_nodes_expire_as_on_zookeeper(system: str, request: pytest.FixtureRequest,
                                                                     tmp_path: Path) -> None:
    if system == "synod":
        got = _run_sequence(request.getfixturevalue("synod_ports"))
    else:
        with zookeeper_ensemble(tmp_path / "zookeeper", container_check_ms=CHECK_MS) as ports:
            got = _run_sequence(ports)
    assert got["names"] == [["never", "tp", "zookeeper"]] * len(IDS), got
    assert got["tp"] == [["x"]] * len(IDS), got
    assert len(got["root_pzxid"]) == 1, f"{system}: servers differ on / after the deletes: {got['root_pzxid']}"
    assert got["ttl_owner"] == 0, got   # a TTL node shows ephemeralOwner 0 to clients
