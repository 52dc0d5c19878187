"""Differential test: synod.zk's prepare + apply against Apache ZooKeeper 3.8.

One standalone ZooKeeper (Debian's ``zookeeper`` package, installed with
apt-get if absent and possible) runs on 127.0.0.1 on a free port with a
temporary data dir. For each seed two kazoo clients (one authenticated with
digest alice:secret) run a random sequence of create (persistent, ephemeral,
sequential, create2), delete, setData, setACL with versions, exists,
getData, getChildren2, multi (create/delete/set/check, failing or not),
pipelined batches of writes (so ZooKeeper's outstanding changes are in
play) and session closes; the same sequence goes through
:func:`synod.zk.prep.prepare` and :meth:`synod.zk.tree.DataTree.apply` on a
fresh tree. Each result is compared: the error code, the created path, and
the Stat's version, cversion, aversion, numChildren, dataLength and
ephemeralOwner (zxids and times differ by construction).

A failure names the seed, the op index and both results; replay one seed
with ``ZK_DIFF_SEEDS=17 .venv/bin/python -m pytest -q tests/zk/test_vs_zookeeper.py``.
If ZooKeeper cannot be installed or started, the test skips and says why.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import struct
import subprocess
import time
from collections import Counter, namedtuple
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import ZookeeperError
from kazoo.protocol.serialization import (
    Create2,
    MultiHeader,
    Watch,
    read_buffer,
    read_string,
    stat_struct,
    write_string,
)
from kazoo.protocol.states import ZnodeStat
from kazoo.security import ACL as KACL
from kazoo.security import OPEN_ACL_UNSAFE as K_OPEN
from kazoo.security import READ_ACL_UNSAFE as K_READ
from kazoo.security import Id as KId
from kazoo.security import make_digest_acl

from synod.zk import messages as m
from synod.zk.constants import AddWatchMode, Code, CreateMode, Perms, WatcherType
from synod.zk.prep import TreeView, check_acl, digest_id, prepare, prepare_delete_container, visible_acl
from synod.zk.tree import DataTree
from synod.zk.txn import CreateSessionTxn

ZK_JAR = Path("/usr/share/java/zookeeper.jar")
START_DEADLINE_S = 60.0
OPS_PER_SEED = 200
SEEDS = [int(s) for s in os.environ.get("ZK_DIFF_SEEDS", "").split(",") if s] or list(range(1, 31))
ALICE = ("alice", "secret")

# Figures of the last run, printed at the end (pytest -s) and asserted on.
FIGURES = {"ops": 0, "errors_compared": 0, "differences": 0, "notifications": 0, "check_watches_skipped": 0}
OUTCOMES: Counter[tuple[str, str]] = Counter()  # (op kind, outcome: ok or the error code)


def _install_reason() -> str | None:
    """None if ZooKeeper can run here, else why not (after trying apt-get)."""
    if shutil.which("java") and ZK_JAR.exists():
        return None
    if not shutil.which("apt-get") or os.geteuid() != 0:
        return "Debian's zookeeper package is not installed and apt-get cannot install it here (not root)"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    done = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "zookeeper"], env=env,
                          capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0 or not ZK_JAR.exists() or not shutil.which("java"):
        return f"apt-get install zookeeper failed: {done.stderr[-500:]}"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ruok(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
            s.sendall(b"ruok")
            return s.recv(4) == b"imok"
    except OSError:
        return False


@contextlib.contextmanager
def _zookeeper_server(home: Path, container_check_ms: int) -> Iterator[str]:
    """One standalone ZooKeeper on a free port (TTL nodes enabled; its
    ContainerManager every ``container_check_ms``), stopped at the end."""
    reason = _install_reason()
    if reason is not None:
        pytest.skip(reason)
    port = _free_port()
    (home / "data").mkdir()
    cfg = home / "zoo.cfg"
    cfg.write_text(f"tickTime=2000\ndataDir={home / 'data'}\nclientPort={port}\nclientPortAddress=127.0.0.1\n"
                   "admin.enableServer=false\n4lw.commands.whitelist=ruok\n")
    log = (home / "server.log").open("wb")
    proc = subprocess.Popen(
        ["java", "-Dzookeeper.extendedTypesEnabled=true", f"-Dznode.container.checkIntervalMs={container_check_ms}",
         f"-Dzookeeper.log.dir={home}", "-cp", f"/etc/zookeeper/conf:{ZK_JAR}",
         "org.apache.zookeeper.server.ZooKeeperServerMain", str(cfg)],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_DEADLINE_S
        while not _ruok(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.skip(f"ZooKeeper did not start: {(home / 'server.log').read_text()[-800:]}")
            time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def zookeeper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The server of the random sequences: its ContainerManager never runs
    during the test (an hour), so containers and TTL nodes stay put on both sides."""
    with _zookeeper_server(tmp_path_factory.mktemp("zookeeper"), container_check_ms=3_600_000) as hosts:
        yield hosts


class _CreateContainer(Create2):
    """kazoo 2.11 has no createContainer: the same body under op 19."""

    type = 19


class _CreateTTL(namedtuple("_CreateTTL", "path data acl flags ttl")):
    """kazoo 2.11 has no createTTL (op 21): Create2's body and a long."""

    type = 21

    def serialize(self) -> bytearray:
        return Create2(self.path, self.data, self.acl, self.flags).serialize() + struct.pack("!q", self.ttl)

    deserialize = Create2.deserialize


class _PathInt(namedtuple("_PathInt", "path value")):
    """A request body of a path and an int (addWatch, checkWatches,
    removeWatches: kazoo 2.11 sends none of them); the reply body is ignored."""

    type = 0

    def serialize(self) -> bytearray:
        return bytearray(write_string(self.path) + struct.pack("!i", self.value))

    @classmethod
    def deserialize(cls, buffer: bytes, offset: int) -> bool:
        return True


class _AddWatch(_PathInt):
    type = 106


class _CheckWatches(_PathInt):
    type = 17


class _RemoveWatches(_PathInt):
    type = 18


def _read_strings(buffer: bytes, offset: int) -> tuple[tuple[str, ...], int]:
    """A jute vector<ustring>, sorted, and the offset after it."""
    (count,) = struct.unpack_from("!i", buffer, offset)
    offset += 4
    out = []
    for _ in range(count):
        text, offset = read_string(buffer, offset)
        out.append(text)
    return tuple(sorted(out)), offset


class _GetEphemerals(namedtuple("_GetEphemerals", "path")):
    """getEphemerals (op 103), which kazoo 2.11 lacks: the session's
    ephemerals under a prefix."""

    type = 103

    def serialize(self) -> bytearray:
        return bytearray(write_string(self.path))

    @classmethod
    def deserialize(cls, buffer: bytes, offset: int) -> tuple[str, tuple[str, ...]]:
        return ("ephemerals", _read_strings(buffer, offset)[0])


class _GetAllChildrenNumber(namedtuple("_GetAllChildrenNumber", "path")):
    """getAllChildrenNumber (op 104), which kazoo 2.11 lacks."""

    type = 104

    def serialize(self) -> bytearray:
        return bytearray(write_string(self.path))

    @classmethod
    def deserialize(cls, buffer: bytes, offset: int) -> tuple[str, int]:
        return ("number", struct.unpack_from("!i", buffer, offset)[0])


class _MultiRead(namedtuple("_MultiRead", "ops")):
    """multiRead (op 22), which kazoo 2.11 lacks: ``ops`` are (op code,
    path, watch) of getChildren (8) and getData (4)."""

    type = 22

    def serialize(self) -> bytearray:
        b = bytearray()
        for op, path, watch in self.ops:
            b.extend(MultiHeader(op, False, -1).serialize() + write_string(path) + struct.pack("!?", watch))
        b.extend(MultiHeader(-1, True, -1).serialize())
        return b

    @classmethod
    def deserialize(cls, buffer: bytes, offset: int) -> tuple[str, tuple[Any, ...]]:
        results: list[Any] = []
        header, offset = MultiHeader.deserialize(buffer, offset)
        while not header.done:
            if header.type == 8:
                names, offset = _read_strings(buffer, offset)
                results.append(("children", names))
            elif header.type == 4:
                data, offset = read_buffer(buffer, offset)
                stat = ZnodeStat._make(stat_struct.unpack_from(buffer, offset))
                offset += stat_struct.size
                results.append(("data", data or b"", _s(stat)))
            else:
                assert header.type == -1, header
                results.append(("err", struct.unpack_from("!i", buffer, offset)[0]))
                offset += 4
            header, offset = MultiHeader.deserialize(buffer, offset)
        return ("multi_read", tuple(results))


def _raw(client: KazooClient, request: Any) -> Any:
    result = client.handler.async_result()
    client._call(request, result)
    return _kazoo(result.get, timeout=10)


# -- the model: prepare + apply, one request at a time or a batch ----------------------------------


class Model:
    """synod.zk's two halves, as one leader that applies what it prepares."""

    def __init__(self) -> None:
        self.tree = DataTree(may_read=lambda sid, acl: check_acl(acl, Perms.READ, self.auth[sid]))
        self.view = TreeView(self.tree)
        self.zxid = 0
        self.auth: dict[int, tuple[m.Id, ...]] = {}
        self.events: dict[int, list[tuple[int, str]]] = {}  # session -> (type, path) fired, oldest first

    def open_session(self, session_id: int, authed: bool) -> None:
        ids = [m.Id(scheme="ip", id="127.0.0.1")]
        if authed:
            ids.append(m.Id(scheme="digest", id=digest_id(*ALICE)))
        self.auth[session_id] = tuple(ids)
        self.zxid += 1
        self.tree.apply(CreateSessionTxn(session_id=session_id, timeout_ms=10_000), self.zxid, self.zxid)
        self.view.applied(self.zxid)

    def batch(self, requests: list[tuple[Any, int]]) -> list[Any]:
        """Prepare every request, then apply them in order (outstanding
        changes in play), then normalise the results."""
        txns = []
        for request, session_id in requests:
            self.zxid += 1
            txns.append((self.zxid, prepare(request, session_id=session_id, zxid=self.zxid, view=self.view,
                                            auth_ids=self.auth[session_id])))
        results = []
        for zxid, txn in txns:
            applied = self.tree.apply(txn, zxid, zxid)
            for watcher, event in applied.fired:
                self.events.setdefault(watcher, []).append((event.type_, event.path))
            results.append(_norm_applied(applied))
            self.view.applied(zxid)
        return results


def _s(stat: Any) -> tuple[int, ...]:
    return (stat.version, stat.cversion, stat.aversion, stat.numChildren, stat.dataLength, stat.ephemeralOwner)


def _norm_response(r: Any) -> tuple[Any, ...]:
    if isinstance(r, m.CreateResponse):
        return ("path", r.path)
    if isinstance(r, m.Create2Response):
        return ("path", r.path, _s(r.stat))
    if isinstance(r, (m.SetDataResponse, m.SetACLResponse)):
        return ("stat", _s(r.stat))
    if isinstance(r, m.ErrorResponse):
        return ("err", int(r.err))
    if isinstance(r, m.MultiResponse):
        return ("multi", tuple(_norm_response(x) for x in r.results))
    assert r is None or isinstance(r, (m.DeleteResult, m.CheckResult)), r
    return ("ok",)


def _norm_applied(result: Any) -> tuple[Any, ...]:
    if result.err != Code.OK and not isinstance(result.response, m.MultiResponse):
        return ("err", int(result.err))
    return _norm_response(result.response)


def _norm_kazoo(r: Any) -> tuple[Any, ...]:
    """kazoo's answer (or exception) in the model's terms."""
    if isinstance(r, ZookeeperError):
        return ("err", int(r.code))
    if isinstance(r, str):
        return ("path", r)
    if isinstance(r, tuple) and len(r) == 2 and isinstance(r[0], str) and isinstance(r[1], ZnodeStat):
        return ("path", r[0], _s(r[1]))
    if isinstance(r, ZnodeStat):
        return ("stat", _s(r))
    if isinstance(r, list):
        return ("multi", tuple(_norm_kazoo(x) for x in r))
    if isinstance(r, tuple) and r[0] in ("ephemerals", "number", "multi_read"):
        return r
    assert r is True, r
    return ("ok",)


def _kazoo(call: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return call(*args, **kwargs)
    except ZookeeperError as e:
        return e


def _k_acl(acl: tuple[m.ACL, ...]) -> list[KACL]:
    return [KACL(a.perms, KId(a.id.scheme, a.id.id)) for a in acl]


# -- the workload ---------------------------------------------------------------------------------

_OPEN = (m.ACL(perms=31, id=m.Id(scheme="world", id="anyone")),)
_READ = (m.ACL(perms=1, id=m.Id(scheme="world", id="anyone")),)
_ALICE_ALL = (m.ACL(perms=31, id=m.Id(scheme="digest", id=digest_id(*ALICE))),)
_AUTH = (m.ACL(perms=31, id=m.Id(scheme="auth", id="")),)
_IP = (m.ACL(perms=31, id=m.Id(scheme="ip", id="127.0.0.0/8")),)
_ACLS = [_OPEN, _OPEN, _OPEN, _READ, _ALICE_ALL, _AUTH, _IP]


class Workload:
    """Random operations under one base path, run on both sides."""

    def __init__(self, seed: int, base: str, clients: list[KazooClient], model: Model) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.base = base
        self.clients = clients
        self.model = model
        self.names = [base + p for p in ("/a", "/b", "/a/x", "/a/y", "/b/x", "/a/x/z", "/e", "/e/x")]
        self.log: list[str] = []

    def path(self) -> str:
        """Half the time a node that exists (in the model), else a name that may."""
        if self.rng.random() < 0.5:
            existing = [p for p, _, _ in _model_subtree(self.model.tree, self.base)[1:]]
            if existing:
                return self.rng.choice(existing)
        return self.rng.choice(self.names)

    def session(self, i: int) -> int:
        return int(self.clients[i].client_id[0])

    def version(self, path: str, field: str = "version") -> int:
        stat = self.model.tree.stat(path)
        choice = self.rng.random()
        if choice < 0.4 or stat is None:
            return -1
        current = getattr(stat, field)
        return current if choice < 0.8 else current + self.rng.choice((1, 2))

    def data(self) -> bytes:
        return self.rng.choice((b"", b"x", b"hello", bytes(self.rng.randrange(256) for _ in range(40))))

    def create_op(self) -> tuple[m.CreateRequest | m.Create2Request, dict[str, Any]]:
        path = self.path()
        flags = self.rng.choice(list(CreateMode)[:4])
        acl = self.rng.choice(_ACLS) if self.rng.random() < 0.3 else _OPEN
        data = self.data()
        two = self.rng.random() < 0.4
        cls = m.Create2Request if two else m.CreateRequest
        kw = dict(path=path, value=data, acl=_k_acl(acl), ephemeral=flags in (1, 3), sequence=flags in (2, 3),
                  include_data=two)
        return cls(path=path, data=data, acl=acl, flags=int(flags)), kw

    def create_extended(self, client: KazooClient, sid: int) -> tuple[Any, Any]:
        """A container or a TTL node (ttl 0 is refused: BADARGUMENTS)."""
        path, data = self.path(), self.data()
        if self.rng.random() < 0.5:
            self.log[-1] += f" container {path}"
            request: Any = m.CreateContainerRequest(path=path, data=data, acl=_OPEN, flags=int(CreateMode.CONTAINER))
            raw: Any = _CreateContainer(path, data, _k_acl(_OPEN), int(CreateMode.CONTAINER))
        else:
            flags = int(self.rng.choice((CreateMode.PERSISTENT_WITH_TTL, CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL)))
            ttl = self.rng.choice((0, 1000, 3_600_000))
            self.log[-1] += f" ttl {path} flags={flags} ttl={ttl}"
            request = m.CreateTTLRequest(path=path, data=data, acl=_OPEN, flags=flags, ttl=ttl)
            raw = _CreateTTL(path, data, _k_acl(_OPEN), flags, ttl)
        return self.model.batch([(request, sid)])[0], _norm_kazoo(_raw(client, raw))

    def watch_op(self, client: KazooClient, sid: int) -> tuple[Any, Any]:
        """addWatch (persistent, recursive), checkWatches, removeWatches
        (NOWATCHER when there is none of the type)."""
        path = self.path()
        watches = self.model.tree.watches
        op = self.rng.choice(["add", "add", "check", "remove"])
        if op == "add":
            mode = self.rng.choice(list(AddWatchMode))
            self.log[-1] += f" addWatch {path} mode={mode}"
            watches.add_watch(path, sid, mode)
            return ("ok",), _norm_kazoo(_raw(client, _AddWatch(path, int(mode))))
        # ZooKeeper 3.8 takes types Children, Data, Any here (4 and 5: MARSHALLINGERROR).
        kind = self.rng.choice((WatcherType.Children, WatcherType.Data, WatcherType.Any))
        self.log[-1] += f" {op}Watches {path} type={kind}"
        tables = [t for t, k in ((watches.data, WatcherType.Data), (watches.child, WatcherType.Children))
                  if kind in (k, WatcherType.Any)]
        anyone = any(t.watchers(path) for t in tables)
        ok = (watches.check_watches if op == "check" else watches.remove_watches)(path, kind, sid)
        request = (_CheckWatches if op == "check" else _RemoveWatches)(path, int(kind))
        theirs = _norm_kazoo(_raw(client, request))
        if op == "check" and anyone and not ok:
            # ZooKeeper 3.8 says yes if any session watches the path (see WatchManager.check_watches).
            FIGURES["check_watches_skipped"] += 1
            return ("ok",), theirs
        return ("ok",) if ok else ("err", int(Code.NOWATCHER)), theirs

    def step(self, index: int) -> tuple[Any, Any]:
        """One op on both sides: (model result, zookeeper result)."""
        rng = self.rng
        who = rng.randrange(2)
        client, sid = self.clients[who], self.session(who)
        kind = rng.choices(["create", "delete", "set", "acl", "exists", "get", "children", "multi", "batch",
                            "close", "extended", "watch", "getacl", "number", "ephemerals", "multiread"],
                           weights=[30, 14, 14, 4, 6, 6, 6, 10, 8, 2, 6, 6, 3, 3, 3, 4])[0]
        self.log.append(f"{index}: client {who} {kind}")
        if kind == "create":
            request, kw = self.create_op()
            self.log[-1] += f" {request.path} flags={request.flags}"
            return self.model.batch([(request, sid)])[0], _norm_kazoo(_kazoo(client.create, **kw))
        if kind == "delete":
            path = self.path()
            version = self.version(path)
            self.log[-1] += f" {path} version={version}"
            return (self.model.batch([(m.DeleteRequest(path=path, version=version), sid)])[0],
                    _norm_kazoo(_kazoo(client.delete, path, version)))
        if kind == "set":
            path, data = self.path(), self.data()
            version = self.version(path)
            self.log[-1] += f" {path} version={version}"
            return (self.model.batch([(m.SetDataRequest(path=path, data=data, version=version), sid)])[0],
                    _norm_kazoo(_kazoo(client.set, path, data, version)))
        if kind == "acl":
            path, acl = self.path(), rng.choice(_ACLS)
            version = self.version(path, "aversion")
            return (self.model.batch([(m.SetACLRequest(path=path, acl=acl, version=version), sid)])[0],
                    _norm_kazoo(_kazoo(client.set_acls, path, _k_acl(acl), version)))
        if kind in ("exists", "get", "children"):
            return self.read(kind, client, sid)
        if kind == "multi":
            return self.multi(client, sid)
        if kind == "batch":
            return self.batch(client, sid)
        if kind == "extended":
            return self.create_extended(client, sid)
        if kind == "watch":
            return self.watch_op(client, sid)
        if kind in ("getacl", "number", "ephemerals", "multiread"):
            return self.read_more(kind, client, sid)
        return self.close(who)

    def read_more(self, kind: str, client: KazooClient, sid: int) -> tuple[Any, Any]:
        """getACL (READ or ADMIN; digest hashes hidden without ADMIN),
        getAllChildrenNumber (READ), getEphemerals (the session's, a string
        prefix), multiRead (each op on its own; watch flags ignored)."""
        tree, ids = self.model.tree, self.model.auth[sid]
        if kind == "multiread":
            ops = [(self.rng.choice((4, 8)), self.path(), self.rng.random() < 0.3) for _ in range(self.rng.randint(1, 4))]
            self.log[-1] += f" {ops}"
            reads = [(m.GetDataRequest if op == 4 else m.GetChildrenRequest)(path=p, watch=w) for op, p, w in ops]
            got = tree.multi_read(reads, lambda acl: check_acl(acl, Perms.READ, ids))
            mine_results = tuple(
                ("err", int(r.err)) if isinstance(r, m.ErrorResponse) else
                ("data", r.data or b"", _s(r.stat)) if isinstance(r, m.GetDataResponse) else ("children", r.children)
                for r in got.results)
            return ("multi_read", mine_results), _norm_kazoo(_raw(client, _MultiRead(ops)))
        if kind == "ephemerals":
            prefix = self.rng.choice((self.base, self.base + "/a", self.base + "/e", "/"))
            self.log[-1] += f" {prefix}"
            return ("ephemerals", tree.get_ephemerals(sid, prefix)), _norm_kazoo(_raw(client, _GetEphemerals(prefix)))
        path = self.path()
        self.log[-1] += f" {path}"
        got = tree.get_acl(path)
        perm = Perms.READ | Perms.ADMIN if kind == "getacl" else Perms.READ
        if got is None:
            mine: tuple[Any, ...] = ("err", int(Code.NONODE))
        elif not check_acl(got.acl, perm, ids):
            mine = ("err", int(Code.NOAUTH))
        elif kind == "getacl":
            mine = ("acl", tuple(_k_acl(visible_acl(got.acl, ids))), _s(got.stat))
        else:
            mine = ("number", tree.get_all_children_number(path))
        if kind == "number":
            return mine, _norm_kazoo(_raw(client, _GetAllChildrenNumber(path)))
        theirs = _kazoo(client.get_acls, path)
        if isinstance(theirs, ZookeeperError):
            return mine, _norm_kazoo(theirs)
        return mine, ("acl", tuple(theirs[0]), _s(theirs[1]))

    def read(self, kind: str, client: KazooClient, sid: int) -> tuple[Any, Any]:
        """A read as the server answers it: NONODE, then NOAUTH without READ
        (exists checks no ACL), then the tree's answer."""
        path = self.path()
        tree = self.model.tree
        acl = tree.get_acl(path)
        if kind != "exists" and acl is not None and not check_acl(acl.acl, Perms.READ, self.model.auth[sid]):
            call = client.get if kind == "get" else client.get_children
            return ("err", int(Code.NOAUTH)), _norm_kazoo(_kazoo(call, path))
        watch = _ignore if self.rng.random() < 0.5 else None
        watcher = sid if watch else None
        self.log[-1] += f" {path}{' watch' if watch else ''}"
        if kind == "exists":
            stat = tree.exists(path, watcher)
            got = _kazoo(client.exists, path, watch)
            return ("none",) if stat is None else ("stat", _s(stat)), ("none",) if got is None else _norm_kazoo(got)
        if kind == "get":
            data = tree.get_data(path, watcher)
            got = _kazoo(client.get, path, watch)
            mine = ("err", int(Code.NONODE)) if data is None else ("data", data.data or b"", _s(data.stat))
            theirs = _norm_kazoo(got) if isinstance(got, ZookeeperError) else ("data", got[0], _s(got[1]))
            return mine, theirs
        kids = tree.get_children2(path, watcher)
        got = _kazoo(client.get_children, path, watch, include_data=True)
        mine = ("err", int(Code.NONODE)) if kids is None else ("children", tuple(kids.children), _s(kids.stat))
        theirs = _norm_kazoo(got) if isinstance(got, ZookeeperError) else (
            "children", tuple(sorted(got[0])), _s(got[1]))
        return mine, theirs

    def multi(self, client: KazooClient, sid: int) -> tuple[Any, Any]:
        t = client.transaction()
        ops: list[Any] = []
        for _ in range(self.rng.randint(1, 4)):
            op = self.rng.choice(["create", "delete", "set", "check"])
            path = self.path()
            if op == "create":
                request, kw = self.create_op()
                request = m.CreateRequest(path=request.path, data=request.data, acl=request.acl,
                                          flags=request.flags)
                t.create(kw["path"], kw["value"], kw["acl"], kw["ephemeral"], kw["sequence"])
                ops.append(request)
            elif op == "delete":
                version = self.version(path)
                t.delete(path, version)
                ops.append(m.DeleteRequest(path=path, version=version))
            elif op == "set":
                version, data = self.version(path), self.data()
                t.set_data(path, data, version)
                ops.append(m.SetDataRequest(path=path, data=data, version=version))
            else:
                version = max(self.version(path), 0)
                t.check(path, version)
                ops.append(m.CheckVersionRequest(path=path, version=version))
        mine = self.model.batch([(m.MultiRequest(ops=tuple(ops)), sid)])[0]
        return mine, _norm_kazoo(_kazoo(t.commit))

    def batch(self, client: KazooClient, sid: int) -> tuple[Any, Any]:
        """Writes sent without waiting (kazoo's *_async): ZooKeeper prepares
        each against its outstanding changes, as the model does."""
        requests, waits = [], []
        for _ in range(self.rng.randint(2, 6)):
            op = self.rng.choice(["create", "create", "delete", "set"])
            if op == "create":
                request, kw = self.create_op()
                requests.append(request)
                waits.append(client.create_async(**kw))
            elif op == "delete":
                path = self.path()
                requests.append(m.DeleteRequest(path=path, version=-1))
                waits.append(client.delete_async(path, -1))
            else:
                path, data = self.path(), self.data()
                requests.append(m.SetDataRequest(path=path, data=data, version=-1))
                waits.append(client.set_async(path, data, -1))
        theirs = tuple(_norm_kazoo(_kazoo(w.get, timeout=10)) for w in waits)
        mine = tuple(self.model.batch([(r, sid) for r in requests]))
        return ("batch", mine), ("batch", theirs)

    def close(self, who: int) -> tuple[Any, Any]:
        """Close a session (its ephemerals go) and open a new one."""
        old = self.clients[who]
        sid = self.session(who)
        mine = self.model.batch([(m.CloseSessionRequest(), sid)])[0]
        old.stop()
        old.close()
        self.model.tree.watches.remove_watcher(sid)
        self.model.events.pop(sid, None)
        self.clients[who] = _client(old.hosts, authed=who == 0)
        self.model.open_session(self.session(who), authed=who == 0)
        return mine, ("ok",)


def _ignore(event: Any) -> None:
    """A kazoo watch callback: the notifications are recorded off the wire."""


# client -> the (type, path) of each notification ZooKeeper sent it, in order.
NOTIFIED: dict[int, list[tuple[int, str]]] = {}


def _record_notifications(client: KazooClient) -> None:
    """Record each notification as kazoo's reader thread reads it, before
    the replies behind it: once a later request is answered, every
    notification sent before that reply is in the list."""
    conn = client._connection
    read = conn._read_watch_event
    seen = NOTIFIED[id(client)] = []  # a fresh list: ids of stopped clients are reused

    def recording(buffer: Any, offset: int) -> Any:
        watch, _ = Watch.deserialize(buffer, offset)
        seen.append((watch.type, watch.path))
        return read(buffer, offset)

    conn._read_watch_event = recording


def _client(hosts: Any, authed: bool) -> KazooClient:
    client = KazooClient(hosts=hosts if isinstance(hosts, str) else ",".join(f"{h}:{p}" for h, p in hosts),
                         timeout=10.0)
    _record_notifications(client)
    client.start(timeout=15)
    if authed:
        client.add_auth("digest", ":".join(ALICE))
    return client


def _subtree(client: KazooClient, path: str) -> list[tuple[str, tuple[int, ...], bytes]]:
    data, stat = client.get(path)
    out = [(path, _s(stat), data)]
    for child in sorted(client.get_children(path)):
        out += _subtree(client, f"{path}/{child}")
    return out


def _model_subtree(tree: DataTree, path: str) -> list[tuple[str, tuple[int, ...], bytes]]:
    got = tree.get_data(path)
    assert got is not None
    out = [(path, _s(got.stat), got.data or b"")]
    kids = tree.get_children(path)
    assert kids is not None
    for child in kids.children:
        out += _model_subtree(tree, f"{path}/{child}")
    return out


@pytest.mark.parametrize("seed", SEEDS)
def test_random_sequence_matches_zookeeper(zookeeper: str, seed: int) -> None:
    """Every op's outcome (error code, path, Stat counters) equals Apache
    ZooKeeper 3.8's, and so does the whole subtree at the end."""
    clients = [_client(zookeeper, authed=True), _client(zookeeper, authed=False)]
    model = Model()
    base = f"/seed{seed}"
    try:
        clients[0].create(base)
        for i, c in enumerate(clients):
            model.open_session(int(c.client_id[0]), authed=i == 0)
        model.batch([(m.CreateRequest(path=base, data=b"", acl=_OPEN, flags=0), int(clients[0].client_id[0]))])
        work = Workload(seed, base, clients, model)
        for i in range(OPS_PER_SEED):
            mine, theirs = work.step(i)
            FIGURES["ops"] += 1
            FIGURES["errors_compared"] += mine[0] == "err"
            OUTCOMES[(work.log[-1].split()[3], str(mine[1]) if mine[0] == "err" else "ok")] += 1
            if mine != theirs:
                FIGURES["differences"] += 1
            assert mine == theirs, (f"seed {seed} op {i} ({work.log[-1]}): synod {mine} != ZooKeeper {theirs}; "
                                    f"replay: ZK_DIFF_SEEDS={seed} .venv/bin/python -m pytest -q {__file__}")
            for who, client in enumerate(work.clients):
                client.exists("/")  # a round trip: every notification sent before its reply is recorded
                theirs_events = NOTIFIED.setdefault(id(client), [])
                mine_events = model.events.setdefault(work.session(who), [])
                if work.log[-1].endswith("close"):  # ZooKeeper deletes a session's ephemerals in hash order
                    theirs_events.sort()
                    mine_events.sort()
                FIGURES["notifications"] += len(mine_events)
                assert mine_events == theirs_events, (
                    f"seed {seed} op {i} ({work.log[-1]}): client {who} notified {theirs_events} by ZooKeeper, "
                    f"{mine_events} by synod")
                theirs_events.clear()
                mine_events.clear()
        assert _model_subtree(model.tree, base) == _subtree(clients[0], base), f"seed {seed}: final trees differ"
    finally:
        for c in clients:
            c.stop()
            c.close()


def test_initial_tree_matches_zookeeper(zookeeper: str) -> None:
    """The nodes a fresh ZooKeeper 3.8 has (/, /zookeeper, quota, config):
    same Stat counters (/ reports cversion -1) and ACLs."""
    client = _client(zookeeper, authed=False)
    tree = DataTree()
    try:
        for path in ("/zookeeper", "/zookeeper/quota", "/zookeeper/config"):
            acl, stat = client.get_acls(path)
            mine = tree.get_acl(path)
            assert mine is not None
            assert _s(mine.stat) == _s(stat), path
            assert _k_acl(mine.acl) == acl, path
        theirs = client.get_acls("/")[1]
        root = tree.stat("/")
        assert root is not None
        assert (root.version, root.aversion, root.ephemeralOwner) == (theirs.version, theirs.aversion, 0)
        assert make_digest_acl("alice", "secret", all=True).id.id == digest_id(*ALICE)
        assert K_OPEN == _k_acl(_OPEN)
        assert K_READ == _k_acl(_READ)
    finally:
        client.stop()
        client.close()


def test_figures(zookeeper: str) -> None:
    """Runs after the sequences: they compared ops and found no difference."""
    print(f"\nvs ZooKeeper: {FIGURES}\n{sorted(OUTCOMES.items())}")
    if FIGURES["ops"]:
        assert FIGURES["differences"] == 0
        assert FIGURES["errors_compared"] > 0
        assert FIGURES["notifications"] > 0


def test_container_and_ttl_expiry_matches_zookeepers_container_manager(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """ZooKeeper's ContainerManager (every 100 ms here) deletes a container
    that had a child and has none, and a childless TTL node unmodified for
    its TTL; it keeps a container that never had a child and a TTL node with
    a child. DataTree.expired_containers_and_ttls names the same paths, and
    prepare_delete_container + apply leave the same tree."""
    with _zookeeper_server(tmp_path_factory.mktemp("zookeeper_containers"), container_check_ms=100) as hosts:
        client = _client(hosts, authed=False)
        model = Model()
        sid = int(client.client_id[0])
        model.open_session(sid, authed=False)
        ttl_ms = 300
        steps: list[tuple[Any, Any]] = [
            (m.CreateContainerRequest(path="/k", data=b"", acl=_OPEN, flags=4), _CreateContainer("/k", b"", K_OPEN, 4)),
            (m.CreateRequest(path="/k/x", data=b"", acl=_OPEN, flags=0), None),
            (m.CreateContainerRequest(path="/never", data=b"", acl=_OPEN, flags=4),
             _CreateContainer("/never", b"", K_OPEN, 4)),
            (m.CreateTTLRequest(path="/t", data=b"", acl=_OPEN, flags=5, ttl=ttl_ms),
             _CreateTTL("/t", b"", K_OPEN, 5, ttl_ms)),
            (m.CreateTTLRequest(path="/tp", data=b"", acl=_OPEN, flags=5, ttl=ttl_ms),
             _CreateTTL("/tp", b"", K_OPEN, 5, ttl_ms)),
            (m.CreateRequest(path="/tp/x", data=b"", acl=_OPEN, flags=0), None),
            (m.DeleteRequest(path="/k/x", version=-1), None),
        ]
        try:
            for request, raw in steps:
                if raw is not None:
                    theirs = _norm_kazoo(_raw(client, raw))
                elif isinstance(request, m.DeleteRequest):
                    theirs = _norm_kazoo(_kazoo(client.delete, request.path))
                else:
                    theirs = _norm_kazoo(_kazoo(client.create, request.path))
                assert model.batch([(request, sid)])[0] == theirs
            created = model.tree.stat("/t")
            assert created is not None
            # The model's clock is its zxids; its rule at the TTL's end, and after.
            assert model.tree.expired_containers_and_ttls(now_ms=created.mtime) == ["/k"]
            expired = model.tree.expired_containers_and_ttls(now_ms=created.mtime + ttl_ms + 1)
            assert expired == ["/k", "/t"]
            deadline = time.monotonic() + 20.0
            while client.exists("/k") is not None or client.exists("/t") is not None:
                assert time.monotonic() < deadline, "ZooKeeper's ContainerManager did not delete /k and /t"
                time.sleep(0.05)
            for path in expired:
                model.zxid += 1
                txn = prepare_delete_container(path, zxid=model.zxid, view=model.view)
                assert model.tree.apply(txn, model.zxid, model.zxid).err == Code.OK
                model.view.applied(model.zxid)
            time.sleep(0.3)  # three more ContainerManager rounds: what should stay, stays
            assert sorted(client.get_children("/")) == ["never", "tp", "zookeeper"]
            kids = model.tree.get_children("/")
            assert kids is not None
            assert kids.children == ("never", "tp", "zookeeper")
            for path in ("/never", "/tp", "/tp/x"):
                assert _model_subtree(model.tree, path) == _subtree(client, path)
        finally:
            client.stop()
            client.close()
