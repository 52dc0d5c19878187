"""The ZooKeeper server (synod.zk.server) as real processes on 127.0.0.1,
driven by kazoo 2.11, a client nobody here wrote (issue 12 section 2):
a 3-server ensemble, znodes, versions, sequential and ephemeral nodes,
watches, the Lock and Election recipes, and the ensemble's leader killed
with SIGKILL while clients hold a lock: nothing acknowledged is lost and
the recipes move on."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError
from kazoo.recipe.election import Election
from tests.kv.test_real_clients import wait_until

from synod.runtime.cluster import LocalCluster
from synod.runtime.config import ClusterSpec, NodeSpec, free_ports, write_config
from synod.zab.messages import ZabStatus, ZabStatusRequest
from synod.zk.server import FACTORY

IDS = ("zk1", "zk2", "zk3")
CONNECT_TIMEOUT_S = 20.0
WAIT_S = 20.0


class Ensemble:
    def __init__(self, run_dir: Path) -> None:
        ports = free_ports(len(IDS))
        nodes = {nid: NodeSpec(factory=FACTORY, params={"voters": list(IDS), "server_index": i + 1},
                               client_ports={"zk": ports[i]}) for i, nid in enumerate(IDS)}
        config, _ = write_config(ClusterSpec(run_dir=run_dir, nodes=nodes))
        self.cluster = LocalCluster(config)
        self.ports = dict(zip(IDS, ports, strict=True))
        self.hosts = ",".join(f"127.0.0.1:{p}" for p in ports)

    def status(self, nid: str) -> ZabStatus | None:
        try:
            reply = self.cluster.call(nid, ZabStatusRequest(), timeout_s=2.0)
        except OSError:
            return None
        return reply if isinstance(reply, ZabStatus) else None

    def leader(self) -> str | None:
        for nid in IDS:
            s = self.status(nid)
            if s is not None and s.role == "leading" and s.extra.get("established"):
                return nid
        return None

    def client(self, **kw: object) -> KazooClient:
        zk = KazooClient(hosts=self.hosts, timeout=10, **kw)
        zk.start(timeout=CONNECT_TIMEOUT_S)
        return zk


@pytest.fixture
def ensemble(tmp_path: Path) -> Iterator[Ensemble]:
    e = Ensemble(tmp_path / "run")
    e.cluster.start(list(IDS))
    try:
        wait_until("a leader established", lambda: e.leader() is not None, WAIT_S)
        yield e
    finally:
        e.cluster.stop()


def test_kazoo_znodes_versions_sequential_ephemeral_and_errors(ensemble: Ensemble) -> None:
    zk = ensemble.client()
    other = ensemble.client()
    try:
        assert zk.create("/app", b"v1") == "/app"
        data, stat = zk.get("/app")
        assert data == b"v1" and stat.version == 0 and stat.dataLength == 2 and stat.ephemeralOwner == 0
        with pytest.raises(NodeExistsError):
            zk.create("/app", b"again")
        assert zk.set("/app", b"v2", version=0).version == 1
        with pytest.raises(BadVersionError):
            zk.set("/app", b"v3", version=0)
        with pytest.raises(NoNodeError):
            zk.get("/nothing")
        first = zk.create("/app/job-", b"", sequence=True)
        second = zk.create("/app/job-", b"", sequence=True)
        assert (first, second) == ("/app/job-0000000000", "/app/job-0000000001")
        other.sync("/app")   # other's server may lag zk's: reads are local (sequentially consistent)
        assert sorted(other.get_children("/app")) == ["job-0000000000", "job-0000000001"]
        zk.create("/app/owner", b"", ephemeral=True)
        other.sync("/app/owner")
        assert other.exists("/app/owner").ephemeralOwner == zk.client_id[0]
        transaction = zk.transaction()
        transaction.create("/app/t1", b"")
        transaction.set_data("/app", b"v4", version=1)
        # all of it applied; the writer reads its own write (another client's
        # server may not have applied it yet: reads are only sequentially consistent)
        assert transaction.commit() == ["/app/t1", zk.exists("/app")]
        zk.stop()
        zk.close()
        wait_until("the ephemeral gone with its session", lambda: other.exists("/app/owner") is None, WAIT_S)
    finally:
        other.stop()
        other.close()


def test_a_watch_fires_before_the_reply_to_a_later_read(ensemble: Ensemble) -> None:
    """ZooKeeper's ordering guarantee (Hunt et al. 2.3): a client sees a
    watch event before it sees the new state that triggered it. Checked
    where kazoo reads the socket: its connection thread hands the watch
    event to the callback thread (which runs it whenever it gets to it)
    before it reads the reply carrying the new state."""
    zk = ensemble.client()
    writer = ensemble.client()
    dispatched: list[str] = []   # what kazoo's connection thread dispatched, in the order it read it
    dispatch = zk.handler.dispatch_callback

    def record(callback: Any) -> Any:
        dispatched.append(callback.type)
        return dispatch(callback)

    zk.handler.dispatch_callback = record
    try:
        zk.create("/w", b"0")
        events: list[str] = []
        zk.get("/w", watch=lambda event: events.append(event.type))
        writer.set("/w", b"1")
        data, _ = zk.get("/w")
        if data == b"1":
            assert "watch" in dispatched, "the new state was read before its watch event"
        wait_until("the watch event", lambda: events == ["CHANGED"], WAIT_S)
    finally:
        for c in (zk, writer):
            c.stop()
            c.close()


def test_leader_killed_lock_and_election_move_on_and_nothing_acknowledged_is_lost(ensemble: Ensemble) -> None:
    holder = ensemble.client()
    waiter = ensemble.client()
    try:
        acknowledged = [holder.create("/acked-", str(i).encode(), sequence=True) for i in range(20)]
        lock_h = holder.Lock("/lock", "holder")
        lock_w = waiter.Lock("/lock", "waiter")
        assert lock_h.acquire(timeout=WAIT_S)
        got: list[bool] = []
        t = threading.Thread(target=lambda: got.append(lock_w.acquire(timeout=60)), daemon=True)
        t.start()
        leaders: list[str] = []
        elections = [Election(c, "/election", identifier=name) for c, name in ((holder, "h"), (waiter, "w"))]
        threading.Thread(target=elections[0].run, args=(lambda: leaders.append("h") or time.sleep(3600),),
                         daemon=True).start()
        wait_until("h elected", lambda: leaders == ["h"], WAIT_S)
        old = ensemble.leader()
        assert old is not None
        sessions = (holder.client_id[0], waiter.client_id[0])
        ensemble.cluster.kill(old)
        wait_until("a new leader after the kill", lambda: (ensemble.leader() or old) != old, 60.0)
        # every acknowledged create survived the leader's death
        wait_until("the waiter served again", lambda: _children_or_none(waiter, "/") is not None, WAIT_S)
        assert sorted(p.lstrip("/") for p in acknowledged) == sorted(
            c for c in waiter.get_children("/") if c.startswith("acked-"))
        assert not got, "the waiter took the lock while the holder held it"
        # both clients moved their sessions (a server not yet serving closes
        # the connection without a word, so kazoo tries the next one)
        wait_until("both clients connected again", lambda: holder.connected and waiter.connected
                   and holder.client_id is not None and waiter.client_id is not None, WAIT_S)
        assert (holder.client_id[0], waiter.client_id[0]) == sessions
        lock_h.release()
        wait_until("the waiter holds the lock after its release", lambda: got == [True], 60.0)
        holder.stop()
        holder.close()   # the election's leader leaves: its ephemeral vote goes with its session
        threading.Thread(target=elections[1].run, args=(lambda: leaders.append("w") or time.sleep(3600),),
                         daemon=True).start()
        wait_until("w elected after h left", lambda: leaders == ["h", "w"], 60.0)
    finally:
        for c in (holder, waiter):
            try:
                c.stop()
                c.close()
            except Exception:  # noqa: BLE001 - already closed above
                pass


def _children_or_none(zk: KazooClient, path: str) -> list[str] | None:
    try:
        return zk.get_children(path)
    except Exception:  # noqa: BLE001 - connection loss while the ensemble elects
        return None


_DYING_CLIENT = """
import sys, time
from kazoo.client import KazooClient
zk = KazooClient(hosts=sys.argv[1], timeout=2.0)
zk.start(timeout=20)
zk.create("/dying", b"", ephemeral=True)
print(zk.client_id[0], flush=True)
time.sleep(3600)
"""


def test_a_session_whose_client_dies_expires_and_its_ephemerals_go(ensemble: Ensemble, tmp_path: Path) -> None:
    """A client process SIGKILLed (no closeSession): after its session
    timeout the leader expires the session through Zab and every server
    deletes its ephemeral; its watchers are told."""
    import signal
    import subprocess
    import sys

    script = tmp_path / "dying.py"
    script.write_text(_DYING_CLIENT)
    proc = subprocess.Popen([sys.executable, str(script), ensemble.hosts], stdout=subprocess.PIPE, text=True)
    try:
        session_id = int(proc.stdout.readline())
        watcher = ensemble.client()
        stat = watcher.exists("/dying")
        assert stat is not None and stat.ephemeralOwner == session_id
        events: list[str] = []
        watcher.exists("/dying", watch=lambda event: events.append(event.type))
        proc.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        wait_until("the dead client's ephemeral deleted", lambda: events == ["DELETED"], WAIT_S)
        assert time.monotonic() - killed_at >= 1.0, "deleted before the session could have expired"
        for nid in IDS:   # every server deleted it
            one = KazooClient(hosts=f"127.0.0.1:{ensemble.ports[nid]}", timeout=10)
            one.start(timeout=CONNECT_TIMEOUT_S)
            try:
                wait_until(f"{nid} without /dying", lambda one=one: one.exists("/dying") is None, WAIT_S)
            finally:
                one.stop()
                one.close()
        watcher.stop()
        watcher.close()
    finally:
        proc.kill()
        proc.wait()


def test_a_server_that_stops_serving_closes_without_a_word_and_the_session_survives(ensemble: Ensemble) -> None:
    """A client whose server is cut off from the others (it stops serving:
    no leader) must keep its session: the server closes the connection
    without answering its reconnects (ZooKeeper's "not running"), and once
    the server serves again the client reconnects with the same session and
    its ephemeral is still there. (A zero-timeout ConnectResponse, which
    the server sent before, made kazoo drop the session as expired.)"""
    lonely = next(nid for nid in IDS if nid != ensemble.leader())
    zk = KazooClient(hosts=f"127.0.0.1:{ensemble.ports[lonely]}", timeout=10)
    zk.start(timeout=CONNECT_TIMEOUT_S)
    states: list[str] = []
    zk.add_listener(lambda state: states.append(state))
    try:
        zk.create("/mine", b"", ephemeral=True)
        session = zk.client_id[0]
        ensemble.cluster.isolate(lonely)
        wait_until(f"{lonely} not serving", lambda: (s := ensemble.status(lonely)) is not None
                   and s.role == "looking", WAIT_S)
        wait_until("the client saw its connection go", lambda: "SUSPENDED" in states, WAIT_S)
        ensemble.cluster.heal()
        wait_until("the client connected again", lambda: zk.connected and zk.client_id is not None, WAIT_S)
        assert "LOST" not in states, states
        assert zk.client_id[0] == session
        assert zk.exists("/mine") is not None
    finally:
        ensemble.cluster.heal()
        zk.stop()
        zk.close()


def test_a_sessions_pipelined_writes_and_reads_keep_fifo_order_on_every_server(ensemble: Ensemble) -> None:
    """Hunt et al. section 2.3, FIFO client order: kazoo's async calls put
    many requests of one session on the wire before any reply. Writes are
    pipelined (forwarded to the leader without waiting for the earlier ones'
    commits), reads wait behind the session's earlier writes: on a session
    of each server (the leader's own and two followers'), 200 setData
    interleaved with getData each return in issue order, their mzxids
    strictly increase, and every read sees exactly the write issued just
    before it."""
    wait_until("an established leader", lambda: ensemble.leader() is not None, WAIT_S)
    for nid in IDS:
        zk = KazooClient(hosts=f"127.0.0.1:{ensemble.ports[nid]}", timeout=10)
        zk.start(timeout=CONNECT_TIMEOUT_S)
        try:
            path = f"/pipe-{nid}"
            zk.create(path, b"0")
            sets, gets = [], []
            for i in range(1, 201):
                sets.append(zk.set_async(path, str(i).encode()))
                gets.append(zk.get_async(path))
            stats = [r.get(timeout=WAIT_S) for r in sets]
            reads = [r.get(timeout=WAIT_S) for r in gets]
            assert [s.version for s in stats] == list(range(1, 201)), nid
            mzxids = [s.mzxid for s in stats]
            assert mzxids == sorted(mzxids) and len(set(mzxids)) == 200, nid
            assert [data for data, _ in reads] == [str(i).encode() for i in range(1, 201)], nid
            assert [st.mzxid for _, st in reads] == mzxids, nid
        finally:
            zk.stop()
            zk.close()
