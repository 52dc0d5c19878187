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

The fault runs of ``synod sim raft`` (the chaos, Figure 8 and KV workloads)
use the same cluster inside the shared fault runner: see
:mod:`synod.harness.raft`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from synod.core import decode, encode
from synod.raft._confchange import ConfChange
from synod.raft._safety import SafetyChecker
from synod.raft.node import MessageStats, RaftNode, RaftNodeConfig
from synod.raft.raft import LEADER
from synod.sim import LinkModel, Network, Simulator, Uniform

__all__ = ["LabCluster", "ClusterFailure", "REQUEST_TYPES", "NOOP"]

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
    ``snapshot_interval`` applied entries (Lab 3D's SnapShotInterval).

    ``sim``: a simulator built by a fault runner
    (:func:`synod.harness.runner.run_simulated`, seeded with ``seed``): the
    cluster then adds no servers (the runner adds :meth:`servers`) and
    leaves the simulator's network as it is (``unreliable`` must be off).
    Without it the cluster builds its own, 1-5 ms links, and starts its
    servers."""

    def __init__(self, n: int, seed: int, *, unreliable: bool = False, snapshot: bool = False,
                 snapshot_interval: int = 10, node_config: RaftNodeConfig | None = None,
                 count_bytes: bool = False, replay: str = "", sim: Simulator | None = None) -> None:
        self.n = n
        self.seed = seed
        self.replay = replay
        self.ids = [f"s{i}" for i in range(1, n + 1)]
        cfg = node_config or RaftNodeConfig()
        if snapshot:
            cfg = replace(cfg, snapshot_interval_entries=snapshot_interval)
        self.node_config = cfg
        runner_sim = sim is not None
        if sim is None:
            sim = Simulator(seed, network=Network(LinkModel(latency=Uniform(1.0, 5.0))))
        else:
            assert sim.seed == seed, f"the runner's simulator has seed {sim.seed}, the cluster {seed}"
            assert not unreliable, "the runner's network model decides how reliable links are"
        self.sim = sim
        self.network = sim.network
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
        if runner_sim:
            return  # the runner adds the servers
        peers = tuple(self.ids)
        for node_id, make in self.servers().items():
            self.sim.add_node(node_id, make, peers=peers)
        self.set_unreliable(unreliable)

    def servers(self) -> dict[str, Callable[[], RaftNode]]:
        """Server id -> factory of a fresh server over its disk (for a runner's ``Scenario.servers``)."""
        return {node_id: self._factory(i) for i, node_id in enumerate(self.ids)}

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

    def rewire(self) -> None:
        """Cut exactly the links of disconnected servers (lifting any other cut)."""
        self.network.heal()
        for a in range(self.n):
            for b in range(self.n):
                if a != b and not (self.connected[a] and self.connected[b]):
                    self.network.block(self.ids[a], self.ids[b])

    def connect(self, i: int) -> None:
        self.connected[i] = True
        self.rewire()

    def disconnect(self, i: int) -> None:
        self.connected[i] = False
        self.rewire()

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
