"""A simulated Raft cluster for tests, mirroring MIT 6.5840 Lab 3's
``config.go``: N servers in one :class:`~synod.sim.Simulator`, a tester that
connects and disconnects them, crashes and restarts them over their durable
disks, submits commands with ``one()`` and watches what every server applies.

Every server also feeds a :class:`~synod.raft._safety.SafetyChecker`; a
violation, an out-of-order apply or an assertion inside a server fails the run
with a message naming the seed and the command that replays it.

Time is virtual: ``sleep(ms)`` runs the simulator for ``ms``. The tester's
own random choices come from ``random.Random`` seeded by the run seed (the
harness lives outside the protocol, like the simulator).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from synod.core import decode, encode
from synod.core.errors import ConfigError
from synod.raft._confchange import ConfChange
from synod.raft._safety import SafetyChecker
from synod.raft.node import MessageStats, RaftNode, RaftNodeConfig
from synod.raft.raft import LEADER
from synod.sim import LinkModel, Nemesis, Network, Simulator, Tracer, Uniform

__all__ = ["LabCluster", "ClusterFailure", "REQUEST_TYPES", "ChaosResult", "run_chaos", "chaos_nemesis",
           "NEMESIS_KINDS", "run_figure8_chaos"]

ELECTION_TIMEOUT_MS = 1000   # Lab 3's RaftElectionTimeout
REQUEST_TYPES = ("RequestVote", "AppendEntries", "Heartbeat", "InstallSnapshot", "TimeoutNow",
                 "ReadIndexRequest")


NOOP = "<no-op>"  # what the tester records for a leader's no-op entry


class ClusterFailure(AssertionError):
    pass


class _LabStateMachine:
    """Lab 3's applier: reports each applied command to the tester; a
    snapshot is the list of applied commands (Lab 3D's ``xlog``)."""

    def __init__(self, cluster: LabCluster, i: int) -> None:
        self.cluster = cluster
        self.i = i
        cluster.last_applied[i] = 0  # a fresh server applies from its snapshot on

    def apply(self, index: int, command: bytes | None) -> bytes | None:
        self.cluster._on_apply(self.i, index, command)
        return None

    def snapshot(self) -> bytes:
        log = self.cluster.logs[self.i]
        last = self.cluster.last_applied[self.i]
        return encode([last, [log.get(k) for k in range(1, last + 1)]])

    def restore(self, data: bytes) -> None:
        self.cluster._on_restore(self.i, data)


class LabCluster:
    """``n`` servers ``s1..sn``; ``snapshot``: servers compact every
    ``snapshot_interval`` applied entries (Lab 3D's SnapShotInterval)."""

    def __init__(self, n: int, seed: int, *, unreliable: bool = False, snapshot: bool = False,
                 snapshot_interval: int = 10, node_config: RaftNodeConfig | None = None,
                 count_bytes: bool = False, replay: str = "") -> None:
        self.n = n
        self.seed = seed
        self.replay = replay
        self.ids = [f"s{i}" for i in range(1, n + 1)]
        cfg = node_config or RaftNodeConfig()
        if snapshot:
            cfg = replace(cfg, snapshot_interval_entries=snapshot_interval)
        self.node_config = cfg
        self.network = Network(LinkModel(latency=Uniform(1.0, 5.0)))
        self.sim = Simulator(seed, network=self.network)
        # The tester's own choices: a Random of the simulator's kind, seeded apart.
        self.rng = type(self.sim.rng)(f"raft-tester:{seed}")
        self.checker = SafetyChecker()
        self.stats = MessageStats(count_bytes=count_bytes)
        self.connected = [True] * n
        self.logs: list[dict[int, Any]] = [{} for _ in range(n)]
        self.last_applied = [0] * n
        self.errors: list[str] = []
        self.max_index = 0
        self.unreliable = False
        self.long_reordering = False
        self._flush_scheduled: set[int] = set()
        self._background: set[Any] = set()  # commands of one_background still running
        peers = tuple(self.ids)
        for i, node_id in enumerate(self.ids):
            self.sim.add_node(node_id, self._factory(i), peers=peers)
        self.set_unreliable(unreliable)

    def _factory(self, i: int):  # type: ignore[no-untyped-def]
        return lambda: RaftNode(self.node_config, _LabStateMachine(self, i), self.checker, self.stats)

    # -- failures ------------------------------------------------------------------------
    def fail(self, text: str) -> None:
        how = f"; replay: {self.replay}" if self.replay else ""
        raise ClusterFailure(f"{text} (seed {self.seed}{how})")

    def _check(self) -> None:
        problems = self.errors + self.checker.violations
        if problems:
            self.fail("; ".join(problems[:5]))

    # -- the applier -----------------------------------------------------------------------
    def _on_apply(self, i: int, index: int, command: bytes | None) -> None:
        value = NOOP if command is None else decode(command)
        if index != self.last_applied[i] + 1:
            self.errors.append(f"server {self.ids[i]} apply out of order: index {index} after "
                               f"{self.last_applied[i]}")
        for j, log in enumerate(self.logs):
            old = log.get(index)
            if old is not None and old != value:
                self.errors.append(f"commit index={index} server={self.ids[i]} {value!r} != "
                                   f"server={self.ids[j]} {old!r}")
        self.logs[i][index] = value
        self.last_applied[i] = index
        self.max_index = max(self.max_index, index)

    def _on_restore(self, i: int, data: bytes) -> None:
        last, xlog = decode(data)
        for k, v in enumerate(xlog, start=1):
            old = next((log.get(k) for log in self.logs if log.get(k) is not None), None)
            if old is not None and old != v:
                self.errors.append(f"snapshot at {last} on {self.ids[i]} holds {v!r} at {k}, others {old!r}")
            self.logs[i][k] = v
        self.last_applied[i] = last

    # -- time ----------------------------------------------------------------------------------
    @property
    def now_ms(self) -> float:
        return self.sim.now_ms

    def sleep(self, ms: float) -> None:
        try:
            self.sim.run(until_ms=self.sim.now_ms + ms)
        except AssertionError as e:
            self.fail(f"assertion inside a server: {e!r}")
        self._check()

    # -- network and faults -----------------------------------------------------------------------
    def _link(self) -> LinkModel:
        if not self.unreliable:
            return LinkModel(latency=Uniform(1.0, 5.0))
        return LinkModel(latency=Uniform(1.0, 27.0), loss_probability=0.1,
                         reorder_probability=0.3 if self.long_reordering else 0.0, reorder_delay_ms=2000.0)

    def set_unreliable(self, unreliable: bool) -> None:
        self.unreliable = unreliable
        self.network.set_default(self._link())

    def set_long_reordering(self, on: bool) -> None:
        self.long_reordering = on
        self.network.set_default(self._link())

    def _rewire(self) -> None:
        self.network.heal()
        for a in range(self.n):
            for b in range(self.n):
                if a != b and not (self.connected[a] and self.connected[b]):
                    self.network.block(self.ids[a], self.ids[b])

    def connect(self, i: int) -> None:
        self.connected[i] = True
        self._rewire()

    def disconnect(self, i: int) -> None:
        self.connected[i] = False
        self._rewire()

    def crash1(self, i: int) -> None:
        """Lab 3's crash1: disconnect and kill; unsynced writes are lost."""
        self.disconnect(i)
        self.sim.crash(self.ids[i])

    def start1(self, i: int) -> None:
        """Lab 3's start1: a fresh server over server i's durable disk (still disconnected)."""
        self.crash1(i)
        self.sim.restart(self.ids[i])

    def up(self, i: int) -> bool:
        return self.sim.hosts[self.ids[i]].ready

    def node(self, i: int) -> RaftNode:
        return self.sim.hosts[self.ids[i]].node  # type: ignore[return-value]

    # -- the Lab 3 API -----------------------------------------------------------------------------
    def start(self, i: int, cmd: Any) -> tuple[int, int, bool]:
        """``rf.Start(cmd)`` on server i, as if called from a client thread."""
        host = self.sim.hosts[self.ids[i]]
        if not host.ready:
            return -1, 0, False
        node = self.node(i)
        index, term, ok = node.start(encode(cmd))
        if ok and i not in self._flush_scheduled:
            # Like a Go Start() that appends and wakes the replicator: the
            # Ready is handled once, later in this same virtual instant, so
            # commands started together go out in one AppendEntries.
            self._flush_scheduled.add(i)
            self.sim.call_after(0.0, self._flush, i, host.incarnation)
        return index, term, ok

    def _flush(self, i: int, incarnation: int) -> None:
        self._flush_scheduled.discard(i)
        host = self.sim.hosts[self.ids[i]]
        if not host.ready or host.incarnation != incarnation:
            return  # crashed (the proposals were never persisted) or paused (its next input flushes)
        host.invoke(self.node(i).flush)  # as a handler: its effects in the contract's order

    def propose_conf_change(self, i: int, cc: ConfChange) -> tuple[int, int] | str:
        """A membership change proposed to server i, flushed like ``start``."""
        host = self.sim.hosts[self.ids[i]]
        if not host.ready:
            return "down"
        placed = self.node(i).raft.propose_conf_change(cc)
        if not isinstance(placed, str) and i not in self._flush_scheduled:
            self._flush_scheduled.add(i)
            self.sim.call_after(0.0, self._flush, i, host.incarnation)
        return placed

    def campaign(self, i: int) -> None:
        """Start an election on server i now, as a TimeoutNow would (no
        pre-vote, no leader stickiness; the log check still applies): lets a
        scripted scenario choose who runs."""
        host = self.sim.hosts[self.ids[i]]
        assert host.ready, f"{self.ids[i]} is down"
        if self.node(i).raft.role != LEADER:
            self.node(i).raft.campaign(transfer=True)
        self._flush(i, host.incarnation)

    def get_state(self, i: int) -> tuple[int, bool]:
        raft = self.node(i).raft
        return raft.term, raft.role == LEADER

    def check_one_leader(self) -> str:
        for _ in range(10):
            self.sleep(450 + self.rng.randrange(100))
            leaders: dict[int, list[int]] = {}
            for i in range(self.n):
                if self.connected[i] and self.up(i):
                    term, is_leader = self.get_state(i)
                    if is_leader:
                        leaders.setdefault(term, []).append(i)
            for term, ls in leaders.items():
                if len(ls) > 1:
                    self.fail(f"term {term} has {len(ls)} (>1) leaders")
            if leaders:
                return leaders[max(leaders)][0]
        self.fail("expected one leader, got none")
        raise AssertionError  # unreachable

    def check_terms(self) -> int:
        term = -1
        for i in range(self.n):
            if self.connected[i] and self.up(i):
                t, _ = self.get_state(i)
                if term == -1:
                    term = t
                elif t != term:
                    self.fail("servers disagree on term")
        return term

    def check_no_leader(self) -> None:
        for i in range(self.n):
            if self.connected[i] and self.up(i) and self.get_state(i)[1]:
                self.fail(f"expected no leader among connected servers, but {self.ids[i]} claims to be leader")

    def n_committed(self, index: int) -> tuple[int, Any]:
        count, cmd = 0, None
        for i in range(self.n):
            self._check()
            v = self.logs[i].get(index)
            if v is not None and self.last_applied[i] >= index:
                if count > 0 and cmd != v:
                    self.fail(f"committed values do not match: index {index}, {cmd!r}, {v!r}")
                count += 1
                cmd = v
        return count, cmd

    def wait(self, index: int, n: int, start_term: int) -> Any:
        to = 10.0
        for _ in range(30):
            nd, _ = self.n_committed(index)
            if nd >= n:
                break
            self.sleep(to)
            if to < 1000:
                to *= 2
            if start_term > -1:
                for i in range(self.n):
                    if self.up(i) and self.get_state(i)[0] > start_term:
                        return -1  # someone moved on; can no longer guarantee that we'll "win"
        nd, cmd = self.n_committed(index)
        if nd < n:
            self.fail(f"only {nd} decided for index {index}; wanted {n}")
        return cmd

    def one(self, cmd: Any, expected_servers: int, retry: bool) -> int:
        t0 = self.now_ms
        starts = 0
        while self.now_ms - t0 < 10_000:
            index = -1
            for _ in range(self.n):
                starts = (starts + 1) % self.n
                if self.connected[starts] and self.up(starts):
                    idx, _, ok = self.start(starts, cmd)
                    if ok:
                        index = idx
                        break
            if index != -1:
                t1 = self.now_ms
                while self.now_ms - t1 < 2000:
                    nd, cmd1 = self.n_committed(index)
                    if nd > 0 and nd >= expected_servers and cmd1 == cmd:
                        return index
                    self.sleep(20)
                if not retry:
                    self.fail(f"one({cmd!r}) failed to reach agreement")
            else:
                self.sleep(50)
        self.fail(f"one({cmd!r}) failed to reach agreement")
        raise AssertionError  # unreachable

    def one_background(self, cmd: Any, expected_servers: int, retry: bool) -> None:
        """Lab 3's ``go cfg.one(cmd, expected, retry)``: the same loop as
        :meth:`one`, run inside the simulation (polled every 20 virtual ms)
        while the test goes on. Its failure is recorded and raised by the
        next :meth:`sleep` or :meth:`wait_background`."""
        t0 = self.now_ms
        state = {"index": -1, "t1": 0.0, "starts": 0}
        self._background.add(cmd)

        def submit() -> None:
            for _ in range(self.n):
                state["starts"] = (state["starts"] + 1) % self.n
                s = state["starts"]
                if self.connected[s] and self.up(s):
                    idx, _, ok = self.start(s, cmd)
                    if ok:
                        state["index"], state["t1"] = idx, self.now_ms
                        return
            state["index"] = -1

        def poll() -> None:
            if state["index"] != -1:
                nd, cmd1 = self._n_committed_quiet(state["index"])
                if nd > 0 and nd >= expected_servers and cmd1 == cmd:
                    self._background.discard(cmd)
                    return
                if self.now_ms - state["t1"] >= 2000:
                    if not retry:
                        self.errors.append(f"background one({cmd!r}) failed to reach agreement")
                        return
                    state["index"] = -1
            if self.now_ms - t0 >= 10_000:
                self.errors.append(f"background one({cmd!r}) failed to reach agreement in 10 s")
                return
            if state["index"] == -1:
                submit()
            self.sim.call_after(20.0 if state["index"] != -1 else 50.0, poll)

        self.sim.call_after(0.0, poll)

    def wait_background(self) -> None:
        """Wait (virtual time) until every :meth:`one_background` ended;
        fail if one of them failed."""
        while self._background:
            self.sleep(50)
        self._check()

    def _n_committed_quiet(self, index: int) -> tuple[int, Any]:
        count, cmd = 0, None
        for i in range(self.n):
            v = self.logs[i].get(index)
            if v is not None and self.last_applied[i] >= index:
                count, cmd = count + 1, v
        return count, cmd

    def rpc_total(self) -> int:
        return self.stats.total(REQUEST_TYPES)

    def bytes_total(self) -> int:
        return sum(self.stats.bytes_by_type.values())

    def finish(self) -> None:
        """End of a test: heal, let the cluster settle, and check safety once more."""
        self._check()


# -- chaos runs: a nemesis, a steady client, the safety checker -----------------------------

NEMESIS_KINDS = ("partition", "kill", "pause", "skew", "loss", "corrupt")


@dataclass(slots=True, kw_only=True)
class ChaosResult:
    """What :func:`run_chaos` saw: ``violations`` (empty: safe), commands
    ``proposed`` and the highest ``committed`` index, whether the cluster
    ``recovered`` (committed after faults stopped), and simulator counters."""

    seed: int
    violations: list[str]
    proposed: int
    committed: int
    recovered: bool
    virtual_ms: float
    deliveries: int
    faults: dict[str, int] = field(default_factory=dict)  # nemesis action -> count


def chaos_nemesis(kinds: tuple[str, ...], interval_ms: float = 300.0,
                  sim: Simulator | None = None) -> Nemesis:
    """The fault schedule of ``synod sim raft --nemesis ...``. ``corrupt``
    flips a bit of a synced file under ``raft/`` of a crashed server (one
    server at a time: the next only once the last has repaired its log;
    pass ``sim`` so the nemesis can ask)."""
    for k in kinds:
        if k not in NEMESIS_KINDS:
            raise ConfigError(f"unknown nemesis {k!r}; choose from {', '.join(NEMESIS_KINDS)}")
    return Nemesis(
        interval_ms=interval_ms,
        crash_probability=0.3 if "kill" in kinds else 0.0, restart_delay_ms=400.0,
        pause_probability=0.2 if "pause" in kinds else 0.0, pause_duration_ms=500.0,
        partition_probability=0.3 if "partition" in kinds else 0.0, partition_duration_ms=800.0,
        clock_probability=0.2 if "skew" in kinds else 0.0, clock_skew_ms_max=500.0, clock_drift_max=0.2,
        link_fault_probability=0.2 if "loss" in kinds else 0.0, loss_probability_max=0.3,
        duplicate_probability_max=0.1, link_fault_duration_ms=800.0,
        disk_corruption_probability=0.3 if "corrupt" in kinds else 0.0,
        disk_corruption_paths=("raft/wal", "raft/hardstate", "raft/snapshot"),
        disk_repaired=_repaired_in(sim) if sim is not None else None,
    )


def _repaired_in(sim: Simulator) -> Callable[[str], bool]:
    def repaired(node_id: str) -> bool:
        node = sim.hosts[node_id].node
        raft = getattr(node, "raft", None)
        return raft is not None and raft.repair_bound is None
    return repaired


def run_chaos(seed: int, *, nodes: int = 5, time_ms: float = 20_000.0,
              kinds: tuple[str, ...] = NEMESIS_KINDS, node_config: RaftNodeConfig | None = None,
              tracer: Tracer | None = None, propose_interval_ms: float = 10.0,
              liveness_ms: float = 10_000.0,
              progress: Callable[[float, float], None] | None = None) -> ChaosResult:
    """``nodes`` servers under the nemesis ``kinds`` for ``time_ms`` while a
    client proposes a command every ``propose_interval_ms`` to a random live
    server; then faults stop and the cluster must commit again within
    ``liveness_ms``. Every server's Ready feeds the safety checker.
    ``progress(now_ms, time_ms)`` is called as virtual time passes."""
    c = LabCluster(nodes, seed, node_config=node_config)
    if tracer is not None:
        c.sim.tracer = tracer
    nemesis = chaos_nemesis(kinds, sim=c.sim)
    nemesis.install(c.sim)
    c.sim.report_progress(time_ms, progress)
    proposed = [0]

    def client() -> None:
        if c.sim.now_ms >= time_ms:
            return
        i = c.rng.randrange(nodes)
        if c.up(i):
            proposed[0] += 1
            c.start(i, proposed[0])
        c.sim.call_after(propose_interval_ms, client)

    c.sim.call_after(propose_interval_ms, client)
    try:
        c.sim.run(until_ms=time_ms, until=lambda: bool(c.checker.violations or c.errors))
    except AssertionError as e:
        c.errors.append(f"assertion inside a server: {e!r}")
    recovered = False
    if not (c.checker.violations or c.errors):
        nemesis.heal_and_stop(c.sim.now_ms)
        for i in range(nodes):
            c.connect(i)
        before = c.max_index
        try:
            c.sim.run(until_ms=c.sim.now_ms + 2000.0)
            deadline = c.sim.now_ms + liveness_ms
            while c.sim.now_ms < deadline and not recovered:
                for i in range(nodes):
                    if c.up(i) and c.start(i, -1)[2]:
                        break
                c.sim.run(until_ms=c.sim.now_ms + 200.0)
                recovered = c.max_index > before and all(
                    c.last_applied[i] >= before for i in range(nodes))
        except AssertionError as e:
            c.errors.append(f"assertion inside a server: {e!r}")
    return ChaosResult(seed=seed, violations=c.errors + c.checker.violations, proposed=proposed[0],
                       committed=c.max_index, recovered=recovered, virtual_ms=c.sim.now_ms,
                       deliveries=c.sim.deliveries, faults=dict(sorted(nemesis.counts.items())))



# -- the Figure 8 workload: short-lived leaders, one entry per AppendEntries ------------------

FIGURE8_POLL_MS = 0.5  # how often the Figure 8 workload looks at the leaders


def run_figure8_chaos(seed: int, *, nodes: int = 5, time_ms: float = 30_000.0,
                      node_config: RaftNodeConfig | None = None, tracer: Tracer | None = None,
                      loss_probability: float = 0.2, crash_on_commit_probability: float = 1.0,
                      leader_lifetime_ms_max: float = 200.0, restart_delay_ms_max: float = 300.0,
                      progress: Callable[[float, float], None] | None = None) -> ChaosResult:
    """A workload that makes Raft's Figure 8 (section 5.4.2) likely under
    random faults, in the spirit of Lab 3's Figure8 test.

    AppendEntries carry one entry each, so a new leader backing up a lagging
    follower sends an older term's entry and its own no-op in separate
    messages, the no-op only once the first is acknowledged; links lose
    ``loss_probability`` of messages. Leaders are short-lived: every
    ``FIGURE8_POLL_MS`` the workload looks at each leader and crashes it
    with ``crash_on_commit_probability`` when its commit index has just
    advanced (it has just replicated to a bare majority; what it sent next
    is lost), and in any case once it has led for a random time up to
    ``leader_lifetime_ms_max`` (its own entries then reach few servers, so
    logs diverge). A client proposes to every live server every 10 ms.
    Crashed servers restart over their disks after up to
    ``restart_delay_ms_max``, and at once if fewer than a majority are up.
    Every server's Ready feeds the safety checker; the run stops at the
    first violation."""
    cfg = node_config or RaftNodeConfig()
    cfg = replace(cfg, raft=replace(cfg.raft, message_entries_max=1))
    c = LabCluster(nodes, seed, node_config=cfg)
    c.sim.report_progress(time_ms, progress)
    c.network.set_default(LinkModel(latency=Uniform(1.0, 5.0), loss_probability=loss_probability))
    if tracer is not None:
        c.sim.tracer = tracer
    rng = c.rng
    quorum = nodes // 2 + 1
    cmd = [0]
    seen_commit: dict[int, tuple[int, int]] = {}   # server -> (term, commit index) when last polled
    deadline: dict[tuple[int, int], float] = {}    # (server, term) -> when the workload crashes it
    restart_at: dict[int, float] = {}
    muted: set[tuple[int, int]] = set()

    def restart(i: int) -> None:
        restart_at.pop(i, None)
        c.start1(i)
        c.connect(i)

    def crash(i: int) -> None:
        c.crash1(i)
        restart_at[i] = c.now_ms + rng.uniform(0.0, restart_delay_ms_max)

    def mute(i: int) -> None:
        # A one-way cut: what the leader has sent still arrives and replies
        # still reach it, but nothing it sends from now on does. Any crash or
        # restart rewires the network and lifts it.
        for j in range(nodes):
            if j != i:
                c.network.block(c.ids[i], c.ids[j])

    def poll() -> None:
        for i in range(nodes):
            if not c.up(i):
                if c.now_ms >= restart_at.get(i, 0.0):
                    restart(i)
                continue
            raft = c.node(i).raft
            if raft.role != LEADER:
                seen_commit.pop(i, None)
                continue
            key = (i, raft.term)
            deadline.setdefault(key, c.now_ms + rng.uniform(0.0, leader_lifetime_ms_max))
            before = seen_commit.get(i)
            seen_commit[i] = (raft.term, raft.log.commit_index)
            advanced = before is not None and before[0] == raft.term and raft.log.commit_index > before[1]
            if advanced and rng.random() < crash_on_commit_probability:
                crash(i)
                seen_commit.pop(i, None)
            elif c.now_ms >= deadline[key]:
                if key in muted:
                    crash(i)
                    seen_commit.pop(i, None)
                else:
                    mute(i)
                    muted.add(key)
                    deadline[key] = c.now_ms + rng.uniform(0.0, leader_lifetime_ms_max)
        while sum(1 for i in range(nodes) if c.up(i)) < quorum:
            restart(rng.choice([i for i in range(nodes) if not c.up(i)]))

    recovered = False
    try:
        next_propose = 0.0
        while c.now_ms < time_ms:
            if c.now_ms >= next_propose:
                next_propose = c.now_ms + 10.0
                for i in range(nodes):
                    cmd[0] += 1
                    c.start(i, cmd[0])
            c.sleep(FIGURE8_POLL_MS)
            poll()
        # Faults stop: every server up, and a new command must commit.
        for i in range(nodes):
            if not c.up(i):
                restart(i)
        c._rewire()  # lift one-way cuts
        before = c.max_index
        end = c.now_ms + 10_000.0
        while c.now_ms < end and not recovered:
            for i in range(nodes):
                if c.start(i, -1)[2]:
                    break
            c.sleep(200.0)
            recovered = c.max_index > before
    except ClusterFailure:
        pass
    return ChaosResult(seed=seed, violations=c.errors + c.checker.violations, proposed=cmd[0],
                       committed=c.max_index, recovered=recovered, virtual_ms=c.sim.now_ms,
                       deliveries=c.sim.deliveries)
