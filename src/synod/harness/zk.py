"""ZooKeeper (synod.zk) under the full nemesis, with its guarantees checked
(issue 12 section 3, "Proof under faults"; Hunt et al., USENIX ATC 2010,
section 2.3), as a scenario of the shared fault runner
(:mod:`synod.harness.runner`).

``servers`` :class:`~synod.zk.server.ZkServerNode` s ``z1..`` (Zab
voters, tickTime 50 ms) and ``clients`` client nodes ``c1..`` that speak
the typed requests of :mod:`synod.zk.messages` (a ConnectRequest first, to
a random server; on a refusal or a timeout, to another, with the session
id, its password and the last zxid seen). Each client, one request at a
time, loops over:

- **cas** on one of :data:`REGISTERS`: getData (a plain read), then
  setData with the version read; a missing znode is created instead
  (a cas from nil). Written values are unique (``c<i>:<n>``), so a version
  names one value and the conditional setData is a compare-and-set of the
  value;
- **sync + getData** on a register (a linearizable read);
- **getData** on a register (a plain read: sequentially consistent only);
- **create** of an ephemeral sequential znode under ``/e`` (``/e/c<i>-``),
  or a persistent sequential one under ``/s``;
- **lock**: kazoo's Lock recipe on :data:`LOCK_PATH` (an ephemeral
  sequential child; the lowest holds; a waiter polls), held a moment, then
  released (see :meth:`ZkClient._lock` for what counts as a hold);
- rarely, **close** its session (and open a new one), or **die**: stop
  sending for good, so its session expires through the leader.

The first ``watchers`` clients also **watch**: on each session they add
persistent and persistent-recursive watches (addWatch, ZooKeeper 3.6+;
:data:`WATCH_SETS`) on what the workload writes, re-set them with
SetWatches2 on each new connection (with the one-shot watches they hold),
now and then set a one-shot watch (exists, getData, getChildren), and
record every notification with the connection it came on, and every
reply's zxid (:class:`~synod.harness.zk_watches.ConnectionLog`).

A client that cannot reach any server for two session timeouts gives its
session up and opens a new one. Replies are read as Jepsen reads them: an
answer says ok (err 0) or fail (BADVERSION, NONODE, NODEEXISTS: nothing
applied); CONNECTIONLOSS, any other error and no answer within
:data:`CALL_TIMEOUT_MS` leave a write unknown (``info``) and make the
client reconnect.

The nemesis is the shared :func:`~synod.sim.nemesis.chaos_nemesis` on the
servers (partition, kill with unsynced loss, pause, loss with duplication,
skew). Verdicts:

- ``zab``: :class:`~synod.zab.checker.ZabChecker`'s properties over the
  same servers;
- ``linearizability``: the cas ops and the sync+reads, per znode, against
  the ``cas-register`` model of the znode's value (nil: no znode), with a
  failed cas (BADVERSION, NONODE; NODEEXISTS for a create) read as "the
  value was not the one expected" (``fail_means_mismatch``): exact, since
  every value is written once;
- ``sequential``: every read (plain, the cas's, the sync's) and every
  acknowledged write, per client in issue order, against the one write
  order the servers applied (zxids of SetData/Create transactions of the
  registers, observed at delivery):
  :func:`~synod.check.sequential.check_sequential`;
- ``sequence``: no two acknowledged creates of sequential znodes got the
  same path;
- ``lock``: no two verified holds of the lock overlap in true time
  (:func:`mutual_exclusion`);
- ``watches``: on each watcher's connection, exactly the watched changes
  (from the servers' one apply order) after each watch was set, in zxid
  order, each before the replies that follow its change; one-shot watches
  once; SetWatches2 firing what ZooKeeper's does
  (:func:`~synod.harness.zk_watches.check_watches`; its module docstring
  says what ZooKeeper guarantees);
- ``ephemerals``: on every server, after every applied transaction, each
  ephemeral's owner is an open session, and a CloseSession (an expiry or a
  close) leaves none of its session's ephemerals: so every server deletes
  them at the session's first CloseSession, one zxid of Zab's one order (a
  second CloseSession of the session, which the leader should not propose,
  finds nothing left and is counted, not failed); and by the end every
  session a client gave up (closed, died, abandoned) is closed on every
  server.

Deliberately broken modes, for the tests that the checkers have teeth:
``unsafe`` (Zab's ``commit-before-quorum``, ``skip-sync``,
``reuse-epoch``) and ``broken="stale-reads"`` (every server answers
getData, getChildren and exists from a copy of its tree refreshed every
:data:`STALE_REFRESH_TXNS` transactions: an older tree) and
``broken="lock-no-wait"`` (a client takes the lock as soon as its node
exists, lowest or not) and ``broken="drop-notification"`` (each server
drops one notification in :data:`DROP_NOTIFICATION_EVERY`).

Not here: the lock's waiters poll instead of watching their predecessor;
removeWatches, multi, ACLs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from synod.check import CasRegister, ClientOp, OrderedWrite, check_events, check_sequential
from synod.check.sequential import READ, WRITE
from synod.core import Context, Node
from synod.core.errors import ConfigError
from synod.harness.runner import ILLEGAL, OK, UNKNOWN, RunResult, Scenario, Verdict, run_simulated
from synod.harness.zab import UNSAFE_OPTIONS
from synod.harness.zk_watches import ChangeLog, ConnectionLog, Watch, WatchingClient, WatchKind, check_watches
from synod.sim import Constant, LinkModel, Simulator, Tracer
from synod.sim.nemesis import chaos_nemesis
from synod.workload import HistoryRecorder
from synod.zab.checker import ZabChecker
from synod.zab.messages import Txn as ZabTxn
from synod.zab.node import ZabNodeConfig
from synod.zab.zab import ZabConfig
from synod.zab.zxid import zxid_str
from synod.zk import messages as m
from synod.zk.constants import Code, CreateMode
from synod.zk.server import ZkServerConfig, ZkServerNode
from synod.zk.tree import OPEN_ACL_UNSAFE, DataTree
from synod.zk.txn import CloseSessionTxn, CreateTxn, NodeKind, SetDataTxn

__all__ = ["ZK_NEMESIS_KINDS", "UNSAFE_OPTIONS", "BROKEN_MODES", "REGISTERS", "zk_scenario", "run_zk",
           "replay_command", "ZkRun", "ZkClient", "Observations", "mutual_exclusion"]

ZK_NEMESIS_KINDS: tuple[str, ...] = ("partition", "kill", "pause", "loss", "skew")
BROKEN_MODES: tuple[str, ...] = ("stale-reads", "lock-no-wait", "drop-notification")
REGISTERS: tuple[str, ...] = ("/r0", "/r1", "/r2")
TICK_MS = 50.0
SESSION_TIMEOUT_MS = 1_000         # asked for; granted within [2, 20] ticks
CALL_TIMEOUT_MS = 600.0
RETRY_DELAY_MS = 50.0
STALE_REFRESH_TXNS = 8
LOCK_PATH = "/lock"
LOCK_WAIT_MS_MAX = 3_000           # a waiter gives up (deletes its node) after this long
LOCK_HOLD_MS_MAX = 100
CHECK_TIMEOUT_S = 60.0
CLOSE_PROBABILITY = 0.01           # per operation: close the session and open a new one
DIE_PROBABILITY = 0.003            # per operation: stop for good (never the last live client)
PROBLEMS_MAX = 20
WATCHERS = 2                       # clients c1.. that also watch, by default
# The persistent watches of watcher k (the k % len-th set): the workload's whole tree, or a
# register, the lock's children and the ephemerals' subtree.
WATCH_SETS: tuple[tuple[Watch, ...], ...] = (
    (Watch(WatchKind.RECURSIVE, "/"),),
    (Watch(WatchKind.PERSISTENT, "/r0"), Watch(WatchKind.PERSISTENT, LOCK_PATH), Watch(WatchKind.RECURSIVE, "/e")),
)
ONE_SHOT_PROBABILITY = 0.08        # per operation of a watcher: set a one-shot watch
WATCHER_LINK_MS = 3.0              # a watcher's links: the mean latency of the others', no loss (TCP's order; see zk_scenario)
DROP_NOTIFICATION_EVERY = 40       # broken="drop-notification": each server drops every 40th notification
_UNKNOWN_ERRS = frozenset({int(Code.CONNECTIONLOSS), int(Code.SESSIONEXPIRED), int(Code.SESSIONMOVED),
                           int(Code.OPERATIONTIMEOUT)})


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", errors="replace")


@dataclass(slots=True)
class Observations:
    """What the servers applied, as they applied it (see the module
    docstring): the registers' write order (zxid -> write), each session's
    CloseSession zxids (session -> {zxid}), ephemerals created per session,
    and the ephemeral invariants' violations."""

    writes: dict[int, OrderedWrite] = field(default_factory=dict)
    closes: dict[int, set[int]] = field(default_factory=dict)
    ephemerals: dict[int, int] = field(default_factory=dict)
    seen_zxids: set[int] = field(default_factory=set)
    changes: ChangeLog | None = None   # kept when some client watches
    problems: list[str] = field(default_factory=list)
    reported: set[tuple[str, int]] = field(default_factory=set)

    def problem(self, text: str, about: tuple[str, int]) -> None:
        """Record ``text``, once per ``about`` (a server or "", and a session)."""
        if about not in self.reported and len(self.problems) < PROBLEMS_MAX:
            self.reported.add(about)
            self.problems.append(text)

    def on_delivered(self, node_id: str, zxid: int, env: Any, err: int, tree: DataTree) -> None:
        txn = env.txn
        t = type(txn)
        first = zxid not in self.seen_zxids
        self.seen_zxids.add(zxid)
        if first and self.changes is not None:
            self.changes.on_txn(zxid, txn, err)
        if t is CloseSessionTxn:
            sid = txn.session_id
            self.closes.setdefault(sid, set()).add(zxid)   # a second close finds nothing left: see below
            left = tree.get_ephemerals(sid)
            if left:
                self.problem(f"{node_id}: {len(left)} ephemerals of session {sid:#x} left after its close at "
                             f"{zxid_str(zxid)}, e.g. {left[0]}", (node_id, sid))
        elif first and not err and t is CreateTxn and txn.kind == NodeKind.EPHEMERAL:
            self.ephemerals[txn.ephemeral_owner] = self.ephemerals.get(txn.ephemeral_owner, 0) + 1
        if first and not err and (t is SetDataTxn or t is CreateTxn) and txn.path in REGISTERS:
            self.writes[zxid] = OrderedWrite(position=zxid, key=txn.path, value=_text(txn.data))
        for owner in tree.ephemeral_sessions():
            if owner not in tree.sessions:
                paths = tree.get_ephemerals(owner)
                self.problem(f"{node_id} at {zxid_str(zxid)}: ephemeral {paths[0]} of session {owner:#x}, "
                             f"which is not open", (node_id, owner))


_STALE_READS = {m.GetDataRequest: "get_data", m.GetChildrenRequest: "get_children", m.ExistsRequest: "exists"}


class _ObservedServer(ZkServerNode):
    """A ZooKeeper server whose deliveries are observed (and, in the broken
    mode ``stale-reads``, whose getData reads an older copy of its tree)."""

    def __init__(self, config: ZkServerConfig, checker: ZabChecker, obs: Observations,
                 live: dict[str, ZkServerNode], broken: str) -> None:
        super().__init__(config)
        self.observer = checker
        self.obs = obs
        self.live = live
        self.stale_reads = broken == "stale-reads"
        self.stale_tree: DataTree | None = None
        self.since_refresh = 0

    def on_start(self, ctx: Context) -> None:
        self.live[ctx.node_id] = self
        super().on_start(ctx)

    def delivered(self, ctx: Context, txn: ZabTxn, result: Any) -> None:
        env, applied = result
        super().delivered(ctx, txn, result)
        self.obs.on_delivered(ctx.node_id, txn.zxid, env, int(applied.err), self.tree)
        if self.stale_reads:
            self.since_refresh += 1
            if self.stale_tree is None or self.since_refresh >= STALE_REFRESH_TXNS:
                self.stale_tree, self.since_refresh = DataTree.deserialize(self.tree.serialize()), 0

    def _read(self, conn: Any, msg: Any) -> tuple[int, Any]:
        t = type(msg)
        if self.stale_reads and self.stale_tree is not None and t in _STALE_READS:
            got = getattr(self.stale_tree, _STALE_READS[t])(msg.path)
            if t is m.ExistsRequest and got is not None:
                got = m.ExistsResponse(stat=got)
            return (0, got) if got is not None else (int(Code.NONODE), None)
        return super()._read(conn, msg)


class _DroppingServer(_ObservedServer):
    """Broken mode ``drop-notification``: an observed server that drops
    every :data:`DROP_NOTIFICATION_EVERY`-th notification it pushes."""

    pushed = 0

    def _push(self, ctx: Context, fired: list[Any]) -> None:
        kept = []
        for one in fired:
            self.pushed += 1
            if self.pushed % DROP_NOTIFICATION_EVERY:
                kept.append(one)
        super()._push(ctx, kept)


@dataclass(slots=True)
class _Shared:
    """State the clients share with the checkers: the linearizable history,
    each client's operations for the sequential checker, sequential paths
    created, sessions given up, clients alive, progress after the heal, and
    what the watchers saw on each connection."""

    history: HistoryRecorder
    ops: dict[int, list[ClientOp]] = field(default_factory=dict)
    sequential_paths: dict[str, int] = field(default_factory=dict)
    duplicate_paths: list[str] = field(default_factory=list)
    holds: list[tuple[float, float, int]] = field(default_factory=list)   # (start, end, client): verified
    abandoned: set[int] = field(default_factory=set)
    alive: set[int] = field(default_factory=set)
    healed_ms: float | None = None
    progressed: set[int] = field(default_factory=set)
    connections: list[ConnectionLog] = field(default_factory=list)   # the watchers'
    counts: dict[str, int] = field(default_factory=dict)

    def count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1


class ZkClient(WatchingClient, Node):
    """One simulated ZooKeeper client (see the module docstring); ``index``
    is its history process. ``watches``: the persistent watches it keeps
    (a watcher: see :class:`~synod.harness.zk_watches.WatchingClient`);
    none for the others."""

    def __init__(self, index: int, servers: tuple[str, ...], shared: _Shared, *, lock_no_wait: bool = False,
                 watches: tuple[Watch, ...] = ()) -> None:
        self.index = index
        self.lock_no_wait = lock_no_wait   # broken: holds the lock as soon as its node exists
        self.servers = servers
        self.shared = shared
        self.server: str | None = None
        self.session_id = 0
        self.passwd = bytes(16)
        self.timeout_ms = SESSION_TIMEOUT_MS
        self.last_zxid = 0
        self.n = 0
        self.watches = watches
        self.watched_session = 0           # the session the watches were added to (addWatch)
        self.one_shots: list[Watch] = []   # one-shot watches set and not yet seen to fire
        self.epoch = 0                     # connections made
        self.log: ConnectionLog | None = None   # what the current connection carried (a watcher's)

    def on_start(self, ctx: Context) -> Any:
        self.shared.alive.add(self.index)
        self.shared.ops[self.index] = []
        return self._loop(ctx)

    # -- connection --------------------------------------------------------------------------
    async def _connect(self, ctx: Context) -> None:
        tried_since = ctx.now_ms
        while True:
            server = self.servers[ctx.rng.randrange(len(self.servers))]
            reply = await ctx.call(server, m.ConnectRequest(
                protocolVersion=0, lastZxidSeen=self.last_zxid, timeOut=SESSION_TIMEOUT_MS,
                sessionId=self.session_id, passwd=self.passwd), CALL_TIMEOUT_MS)
            if type(reply) is m.ConnectResponse and reply.timeOut > 0:
                assert not self.session_id or reply.sessionId == self.session_id
                self.session_id, self.passwd, self.timeout_ms = reply.sessionId, reply.passwd or bytes(16), \
                    reply.timeOut
                self.server = server
                self.shared.count("connects")
                if await self._register(ctx):
                    return
            elif self.session_id and ctx.now_ms - tried_since > 2 * self.timeout_ms:
                self._give_up_session()     # it has expired, or soon will: start afresh
                tried_since = ctx.now_ms
            await ctx.sleep(RETRY_DELAY_MS)

    def _give_up_session(self) -> None:
        if self.session_id:
            self.shared.abandoned.add(self.session_id)
        self.session_id, self.passwd, self.server = 0, bytes(16), None

    async def _request(self, ctx: Context, msg: Any, *, log_reply: bool = True) -> m.Reply | None:
        """Send one request on the session's connection (connecting first if
        there is none); None: no answer (the client will reconnect).
        ``log_reply``: a watcher logs the reply's zxid."""
        if self.server is None:
            await self._connect(ctx)
        assert self.server is not None
        reply = await ctx.call(self.server, msg, CALL_TIMEOUT_MS)
        if type(reply) is not m.Reply:
            self.server = None
            return None
        if log_reply and self.log is not None and reply.err != Code.CONNECTIONLOSS:
            # (CONNECTIONLOSS stands for the connection's end, maybe from a server's next life)
            self.log.items.append(("reply", reply.zxid))
        self.last_zxid = max(self.last_zxid, reply.zxid)
        if reply.err == Code.SESSIONEXPIRED:
            self._give_up_session()   # closed or closing at the leader: a new session, at once
        elif reply.err in _UNKNOWN_ERRS:
            self.server = None
        return reply

    # -- the workload ------------------------------------------------------------------------
    async def _loop(self, ctx: Context) -> None:
        await self._connect(ctx)
        for parent in ("/e", "/s", LOCK_PATH):
            await self._request(ctx, m.CreateRequest(path=parent, data=b"", acl=OPEN_ACL_UNSAFE, flags=0))
        while True:
            roll = ctx.rng.random()
            key = REGISTERS[ctx.rng.randrange(len(REGISTERS))]
            if self.watches and ctx.rng.random() < ONE_SHOT_PROBABILITY:
                await self._one_shot(ctx, key)
            elif roll < 0.35:
                await self._cas(ctx, key)
            elif roll < 0.55:
                await self._sync_read(ctx, key)
            elif roll < 0.74:
                await self._plain_read(ctx, key)
            elif roll < 0.80:
                await self._lock(ctx)
            elif roll < 0.95:
                await self._create(ctx, ephemeral=roll < 0.9)
            # the last 5%: rarely a close or a death, else a plain read
            elif (rare := ctx.rng.random()) < CLOSE_PROBABILITY / 0.05:
                await self._close(ctx)
            elif rare < (CLOSE_PROBABILITY + DIE_PROBABILITY) / 0.05 and len(self.shared.alive) > 1:
                self.shared.alive.discard(self.index)
                self.shared.count("deaths")
                self._give_up_session()
                return
            else:
                await self._plain_read(ctx, key)

    def _progress(self) -> None:
        if self.shared.healed_ms is not None:
            self.shared.progressed.add(self.index)

    def _record(self, type_: str, f: str, key: str, value: Any) -> None:
        self.shared.history.record(self.index, type_, f, key, value)

    async def _read(self, ctx: Context, key: str) -> tuple[bool, str | None, int]:
        """getData: (answered, value, version); NONODE reads nil."""
        reply = await self._request(ctx, m.GetDataRequest(path=key, watch=False))
        if reply is None or reply.err not in (0, int(Code.NONODE)):
            return False, None, -1
        if reply.err:
            value, version = None, -1
        else:
            assert type(reply.response) is m.GetDataResponse
            value, version = _text(reply.response.data), reply.response.stat.version
        self.shared.ops[self.index].append(ClientOp(kind=READ, key=key, value=value, label=f"getData {key}"))
        return True, value, version

    async def _plain_read(self, ctx: Context, key: str) -> None:
        answered, _, _ = await self._read(ctx, key)
        if answered:
            self.shared.count("plain reads")
            self._progress()

    async def _sync_read(self, ctx: Context, key: str) -> None:
        self._record("invoke", "read", key, None)
        reply = await self._request(ctx, m.SyncRequest(path=key))
        if reply is None or reply.err:
            self._record("fail", "read", key, None)   # a read changes nothing
            return
        answered, value, _ = await self._read(ctx, key)
        self._record("ok" if answered else "fail", "read", key, value)
        if answered:
            self.shared.count("sync reads")
            self._progress()

    async def _cas(self, ctx: Context, key: str) -> None:
        answered, old, version = await self._read(ctx, key)
        if not answered:
            return
        self.n += 1
        new = f"c{self.index + 1}:{self.n}"
        request: Any
        if old is None:
            request = m.CreateRequest(path=key, data=new.encode(), acl=OPEN_ACL_UNSAFE, flags=0)
        else:
            request = m.SetDataRequest(path=key, data=new.encode(), version=version)
        self._record("invoke", "cas", key, (old, new))
        reply = await self._request(ctx, request)
        if reply is not None and reply.err == 0:
            self._record("ok", "cas", key, (old, new))
            self.shared.ops[self.index].append(ClientOp(kind=WRITE, key=key, value=new, position=reply.zxid,
                                                        label=f"cas {key} {old}->{new}"))
            self.shared.count("cas ok")
            self._progress()
        elif reply is not None and reply.err in (int(Code.BADVERSION), int(Code.NONODE), int(Code.NODEEXISTS)):
            self._record("fail", "cas", key, (old, new))
            self.shared.count("cas failed")
            self._progress()
        else:
            self._record("info", "cas", key, (old, new))
            self.shared.count("cas unknown")

    async def _create(self, ctx: Context, *, ephemeral: bool) -> None:
        mode = CreateMode.EPHEMERAL_SEQUENTIAL if ephemeral else CreateMode.PERSISTENT_SEQUENTIAL
        prefix = f"/e/c{self.index + 1}-" if ephemeral else "/s/n-"
        reply = await self._request(ctx, m.CreateRequest(path=prefix, data=b"", acl=OPEN_ACL_UNSAFE,
                                                         flags=int(mode)))
        if reply is None or reply.err:
            return
        assert type(reply.response) is m.CreateResponse
        path = reply.response.path
        if path in self.shared.sequential_paths and len(self.shared.duplicate_paths) < PROBLEMS_MAX:
            self.shared.duplicate_paths.append(f"{path} created by c{self.shared.sequential_paths[path] + 1} "
                                               f"and c{self.index + 1}")
        self.shared.sequential_paths[path] = self.index
        self.shared.count("ephemerals" if ephemeral else "sequentials")
        self._progress()

    async def _lock(self, ctx: Context) -> None:
        """kazoo's Lock: an ephemeral sequential child of :data:`LOCK_PATH`;
        the lowest holds. A hold counts for the mutual exclusion check only
        between a sync+getChildren that showed this node lowest (its reply)
        and a sync+exists that found it still there (its invoke): both reads
        are linearizable, a node is never recreated, and no lower sequence
        number can appear later, so the node was lowest throughout."""
        self.n += 1
        reply = await self._request(ctx, m.CreateRequest(path=f"{LOCK_PATH}/c{self.index + 1}-{self.n}-",
                                                         data=b"", acl=OPEN_ACL_UNSAFE,
                                                         flags=int(CreateMode.EPHEMERAL_SEQUENTIAL)))
        if reply is None or reply.err:
            if reply is None or reply.err in _UNKNOWN_ERRS:
                self._give_up_session()   # its node may exist, unknown to it: its session's close removes it
            return
        assert type(reply.response) is m.CreateResponse
        mine = reply.response.path
        name = mine.rsplit("/", 1)[1]
        deadline = self.shared.history.clock() + LOCK_WAIT_MS_MAX
        start = None
        while start is None and self.shared.history.clock() < deadline:
            children = await self._children(ctx)
            if children is None or name not in children:
                self._give_up_session()   # lost the connection or the session: the lock is not ours
                return
            if self.lock_no_wait or min(children, key=lambda c: c[-10:]) == name:
                start = self.shared.history.clock()
            else:
                await ctx.sleep(RETRY_DELAY_MS)
        if start is not None:
            self.shared.count("locks held")
            await ctx.sleep(ctx.rng.uniform(0, LOCK_HOLD_MS_MAX))
            end = self.shared.history.clock()
            if await self._still_there(ctx, mine):
                self.shared.holds.append((start, end, self.index))
                self._progress()
        released = await self._request(ctx, m.DeleteRequest(path=mine, version=-1))
        if released is None or released.err not in (0, int(Code.NONODE)):
            self._give_up_session()

    async def _children(self, ctx: Context) -> tuple[str, ...] | None:
        """sync + getChildren of the lock: linearizable; None: no answer."""
        reply = await self._request(ctx, m.SyncRequest(path=LOCK_PATH))
        if reply is None or reply.err:
            return None
        reply = await self._request(ctx, m.GetChildrenRequest(path=LOCK_PATH, watch=False))
        if reply is None or reply.err or type(reply.response) is not m.GetChildrenResponse:
            return None
        return reply.response.children

    async def _still_there(self, ctx: Context, path: str) -> bool:
        reply = await self._request(ctx, m.SyncRequest(path=LOCK_PATH))
        if reply is None or reply.err:
            return False
        reply = await self._request(ctx, m.ExistsRequest(path=path, watch=False))
        return reply is not None and reply.err == 0

    async def _close(self, ctx: Context) -> None:
        if self.server is None:
            return
        await self._request(ctx, m.CloseSessionRequest())
        self.shared.count("closes")
        self._give_up_session()


def replay_command(seed: int | str, *, servers: int, clients: int, kinds: tuple[str, ...], unsafe: str,
                   broken: str, time_ms: float, watchers: int = WATCHERS) -> str:
    """The ``synod sim zk`` command that replays one run."""
    flags = f" --watchers {watchers}" if watchers != WATCHERS else ""
    flags += f" --unsafe {unsafe}" if unsafe else ""
    flags += f" --broken {broken}" if broken else ""
    return (f"synod sim zk --seed {seed} --time {time_ms:g}ms --servers {servers} --clients {clients} "
            f"--nemesis {','.join(kinds) or chr(39) * 2}{flags}")


@dataclass(slots=True)
class ZkRun:
    """A scenario's handles, for the caller that reads the run afterwards."""

    checker: ZabChecker
    observations: Observations
    shared: _Shared
    live: dict[str, ZkServerNode]   # node id -> its server object of the current (or last) life


def _verdicts(run: ZkRun, sim: Simulator, check_timeout_s: float | None) -> list[Verdict]:
    checker, obs, shared = run.checker, run.observations, run.shared
    problems = checker.violations()
    out = [Verdict("zab", ILLEGAL if problems else OK, "; ".join(problems[:3]) or
                   "integrity, total order, agreement, primary order, primary integrity held",
                   detail=checker.summary())]
    model = CasRegister(fail_means_mismatch=True)
    lin = check_events(model, shared.history.events, timeout_s=check_timeout_s,
                       source=f"seed {sim.seed}")
    n_ops = sum(1 for e in shared.history.events if e.type == "invoke")
    if lin.verdict == "illegal" and lin.counterexample is not None:
        cex = lin.counterexample
        text = (f"znode {cex.key}: no linearization past {model.describe(cex.stuck)} (c{cex.stuck.process + 1}, "
                f"history line {cex.stuck.lines[0]}; {len(cex.pending)} operations overlap it)")
    else:
        text = (f"{n_ops} cas and sync+read operations on {lin.partitions} znodes: {lin.verdict}"
                + (f" ({lin.reason})" if lin.reason else ""))
    out.append(Verdict("linearizability", {"ok": OK, "illegal": ILLEGAL}.get(lin.verdict, UNKNOWN), text, lin))
    try:
        seq = check_sequential(obs.writes.values(), {f"c{i + 1}": ops for i, ops in shared.ops.items()})
    except ValueError as e:   # a client was told its write is at a zxid where the servers applied another
        out.append(Verdict("sequential", ILLEGAL, f"write order: {e}"))
    else:
        out.append(Verdict("sequential", OK if seq.ok else ILLEGAL,
                           "; ".join(seq.violations[:2]) if not seq.ok else
                           f"{seq.reads_checked} reads against {len(obs.writes)} applied writes: sequentially "
                           f"consistent, FIFO per client", seq))
    out.append(Verdict("sequence", ILLEGAL if shared.duplicate_paths else OK,
                       f"two creates got one path: {shared.duplicate_paths[0]}" if shared.duplicate_paths else
                       f"{len(shared.sequential_paths)} sequential znodes, all paths distinct"))
    overlaps = mutual_exclusion(shared.holds)
    out.append(Verdict("lock", ILLEGAL if overlaps else OK, "; ".join(overlaps[:2]) or
                       f"{len(shared.holds)} verified holds of the lock, no two at once"))
    out.append(_watch_verdict(run))
    eph = list(obs.problems) + _unclosed(run, sim)
    closed_with = sum(1 for sid in obs.closes if obs.ephemerals.get(sid))
    out.append(Verdict("ephemerals", ILLEGAL if eph else OK, "; ".join(eph[:3]) or
                       f"{len(obs.closes)} sessions closed ({closed_with} with ephemerals, "
                       f"{sum(obs.ephemerals.get(s, 0) for s in obs.closes)} ephemerals, "
                       f"{sum(1 for zs in obs.closes.values() if len(zs) > 1)} closed twice), each at its first close, "
                       f"none left on any server; {len(shared.abandoned)} sessions given up, all closed"))
    return out


def _watch_verdict(run: ZkRun) -> Verdict:
    shared = run.shared
    if run.observations.changes is None:
        return Verdict("watches", OK, "no client watches")
    report = check_watches(run.observations.changes, shared.connections)
    watchers = len({log.client for log in shared.connections})
    return Verdict("watches", ILLEGAL if report.violations else OK, "; ".join(report.violations[:2]) or
                   f"{report.notifications} notifications on {report.connections} connections of {watchers} "
                   f"watchers ({shared.counts.get('one-shot watches', 0)} one-shot watches set): on each "
                   f"connection exactly the watched changes from each watch's setting on, in zxid "
                   f"order, each before the replies after it", report)


def mutual_exclusion(holds: list[tuple[float, float, int]]) -> list[str]:
    """Two holds of the lock at once: each ``(start, end, client)`` is an
    interval of true time in which the client's lock node was, verifiably,
    the lowest (see :meth:`ZkClient._lock`); none may overlap another's."""
    out: list[str] = []
    latest: tuple[float, float, int] | None = None    # the hold that ends last among those started so far
    for hold in sorted(holds):
        if latest is not None and hold[0] < latest[1] and len(out) < PROBLEMS_MAX:
            out.append(f"c{latest[2] + 1} held the lock over {latest[0]:.1f}..{latest[1]:.1f} ms and "
                       f"c{hold[2] + 1} over {hold[0]:.1f}..{hold[1]:.1f} ms")
        if latest is None or hold[1] > latest[1]:
            latest = hold
    return out


def _unclosed(run: ZkRun, sim: Simulator) -> list[str]:
    """Sessions a client gave up that some running server still holds."""
    out = []
    for nid, node in sorted(run.live.items()):
        if not sim.hosts[nid].up:
            continue
        left = sorted(sid for sid in run.shared.abandoned if sid in node.tree.sessions)
        if left:
            out.append(f"{nid}: {len(left)} sessions given up by their clients still open at the end, "
                       f"e.g. {left[0]:#x}")
    return out


def zk_scenario(sim: Simulator, *, servers: int = 3, clients: int = 5, watchers: int = WATCHERS,
                kinds: tuple[str, ...] = ("partition", "kill", "pause", "loss", "skew"), unsafe: str = "",
                broken: str = "", time_ms: float = 10_000.0, liveness_ms: float = 10_000.0,
                snapshot_interval_txns: int = 50, check_timeout_s: float | None = CHECK_TIMEOUT_S,
                stop_on_zab: bool = True, out: list[ZkRun] | None = None) -> Scenario:
    """The scenario (see the module docstring). ``stop_on_zab=False``
    runs on after the Zab checker saw a violation (to see what the
    clients' checkers make of it); ``snapshot_interval_txns``: each server
    snapshots its tree after that many transactions (0: never);
    ``watchers``: the first that many clients also watch (the k-th keeps
    :data:`WATCH_SETS` [k % 2]). A watcher's links to and from the servers
    have one latency and no loss or duplication, whatever the nemesis does
    to the others': a ZooKeeper connection is TCP, in order and lossless
    until it breaks, and a notification carries no number a client could
    reorder or miss it by. Its connections break as TCP's do: a server
    crashes, pauses past the call timeout, or stops serving.

    Raises:
        ConfigError: an unknown nemesis kind, unsafe option or broken mode.
    """
    for k in kinds:
        if k not in ZK_NEMESIS_KINDS:
            raise ConfigError(f"unknown nemesis {k!r} for zk; choose from {', '.join(ZK_NEMESIS_KINDS)}")
    if unsafe and unsafe not in UNSAFE_OPTIONS:
        raise ConfigError(f"unknown unsafe option {unsafe!r}; choose from {', '.join(UNSAFE_OPTIONS)}")
    if broken and broken not in BROKEN_MODES:
        raise ConfigError(f"unknown broken mode {broken!r}; choose from {', '.join(BROKEN_MODES)}")
    if not 0 <= watchers <= clients:
        raise ConfigError(f"watchers must be within 0..{clients} (the clients)")
    voters = tuple(f"z{i}" for i in range(1, servers + 1))
    flags = {UNSAFE_OPTIONS[unsafe]: True} if unsafe else {}
    run = ZkRun(ZabChecker(), Observations(changes=ChangeLog() if watchers else None),
                _Shared(HistoryRecorder(lambda: sim.now_ms)), {})
    if out is not None:
        out.append(run)

    def server(i: int, sid: str) -> Callable[[], Node]:
        cfg = ZkServerConfig(node=ZabNodeConfig(zab=ZabConfig(server_id=sid, voters=voters, **flags), tick_ms=TICK_MS,
                                                snapshot_interval_txns=snapshot_interval_txns), server_index=i,
                             max_session_timeout_ms=None)   # 20 ticks: a dead client's session ends within the run
        kind = _DroppingServer if broken == "drop-notification" else _ObservedServer
        return lambda: kind(cfg, run.checker, run.observations, run.live, broken)

    shared = run.shared
    tcp = LinkModel(latency=Constant(WATCHER_LINK_MS))
    for i in range(watchers):
        for sid in voters:
            sim.network.set_link(f"c{i + 1}", sid, tcp)
            sim.network.set_link(sid, f"c{i + 1}", tcp)

    def client(i: int) -> ZkClient:
        return ZkClient(i, voters, shared, lock_no_wait=broken == "lock-no-wait",
                        watches=WATCH_SETS[i % len(WATCH_SETS)] if i < watchers else ())

    def after_heal(now_ms: float) -> None:
        shared.healed_ms = now_ms

    def liveness_done() -> bool:
        if shared.healed_ms is None or not shared.alive <= shared.progressed:
            return False
        return all(shared.abandoned.isdisjoint(node.tree.sessions) for node in run.live.values())

    return Scenario(
        servers={sid: server(i, sid) for i, sid in enumerate(voters, start=1)},
        clients={f"c{i + 1}": (lambda i=i: client(i)) for i in range(clients)},
        nemesis=replace(chaos_nemesis(kinds), targets=voters) if kinds else None,
        safety_ms=time_ms, liveness_ms=liveness_ms, after_heal=after_heal, liveness_done=liveness_done,
        stop_early=(lambda: bool(run.checker.problems)) if stop_on_zab else None,
        check=lambda: _verdicts(run, sim, check_timeout_s),
        replay=replay_command("{seed}", servers=servers, clients=clients, kinds=kinds, unsafe=unsafe,
                              broken=broken, time_ms=time_ms, watchers=watchers),
        history=shared.history,
    )


def run_zk(seed: int, *, tracer: Tracer | None = None, progress: Callable[[float, float], None] | None = None,
           **options: Any) -> tuple[RunResult, ZkRun]:
    """One seeded run of :func:`zk_scenario` (``options`` are its
    keywords); returns the runner's result and the run's observations.

    Raises:
        ConfigError: an unknown nemesis kind, unsafe option or broken mode.
    """
    out: list[ZkRun] = []
    r = run_simulated(seed, lambda sim: zk_scenario(sim, out=out, **options), tracer=tracer, progress=progress)
    return r, out[0]
