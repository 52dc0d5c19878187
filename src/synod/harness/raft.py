"""Raft under faults: the runs of ``synod sim raft`` as scenarios of the
shared fault runner (:mod:`synod.harness.runner`).

Each run is a Raft cluster (the servers of Lab 3's tester,
:class:`~synod.raft.sim.LabCluster`, built in the runner's simulator) whose
every Ready feeds the safety checker (Figure 3: election safety, log
matching, leader completeness, state machine safety; plus in-order apply).
Three workloads:

- chaos (:func:`run_chaos`): the chaos nemesis (:func:`raft_nemesis`) for
  ``time_ms`` while a client proposes a command every
  ``propose_interval_ms`` to a random live server; after the heal the
  cluster settles for ``RECOVERY_SETTLE_MS``, then must commit a new entry
  that every server applies within ``liveness_ms`` (a probe proposes every
  ``RECOVERY_PROBE_MS``);
- figure8 (:func:`run_figure8_chaos`): a fault driver of its own that makes
  Raft's Figure 8 (section 5.4.2) likely: one entry per AppendEntries, lossy
  links, short-lived leaders crashed as their commit index advances or cut
  off one-way; then every server restarts and a new entry must commit
  within ``FIGURE8_RECOVERY_MS``;
- kv (:func:`run_kv_linearizability`): Raft's key-value machine under the
  nemesis while Jepsen-style clients (:class:`~synod.workload.kv.KVClient`,
  :class:`~synod.raft.kv_sim.RaftKVAdapter`) issue get, put and append; after
  the heal outstanding operations finish for ``DRAIN_MS``; the history is
  checked for linearizability against the ``kv`` model (Herlihy & Wing). With
  a tracer, every client operation is in the trace and one ``check`` record
  (node ``checker``) ends it, naming the failing window's history lines.

Each ``run_*`` returns the result in Raft's terms (violations, committed,
recovered ...) as the CLI, the benchmarks and the tests read it. Nothing here
reads a clock or global random: the seed decides everything (the tester's
client draws from the cluster's own seeded rng).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from synod.check import KV, CheckResult, check_events
from synod.harness.runner import ILLEGAL, OK, UNKNOWN, RunResult, Scenario, Verdict, run_simulated
from synod.kv.simple import SimpleKV
from synod.raft._safety import SafetyChecker
from synod.raft.kv_sim import RaftKVAdapter, check_record
from synod.raft.node import RaftNode, RaftNodeConfig
from synod.raft.raft import LEADER
from synod.raft.sim import LabCluster
from synod.sim import LinkModel, Network, Simulator, Tracer, Uniform
from synod.sim.nemesis import NEMESIS_KINDS, Nemesis, chaos_nemesis
from synod.workload import HistoryRecorder, KVClient, KVWorkload

__all__ = ["ChaosResult", "KVRunResult", "run_chaos", "run_figure8_chaos", "run_kv_linearizability",
           "raft_nemesis", "safety_verdict", "linearizability_verdict", "RAFT_DISK_PATHS", "SNAPSHOT_INTERVAL_ENTRIES",
           "NEMESIS_KINDS"]

RAFT_DISK_PATHS = ("raft/wal", "raft/hardstate", "raft/snapshot")   # the files the corrupt nemesis may hit
RECOVERY_SETTLE_MS = 2000.0    # chaos: after the heal, before the first recovery probe
RECOVERY_PROBE_MS = 200.0      # a recovery probe proposes, then looks again this much later
FIGURE8_POLL_MS = 0.5          # how often the Figure 8 workload looks at the leaders
FIGURE8_PROPOSE_MS = 10.0      # the Figure 8 client proposes to every live server this often
FIGURE8_RECOVERY_MS = 10_000.0
CHECK_TIMEOUT_S = 60.0
CHECK_NODE = "checker"   # the trace's check record is written under this name (it gets no lane)
DRAIN_MS = 3000.0        # kv: after the faults stop, outstanding operations complete or time out
SNAPSHOT_INTERVAL_ENTRIES = 200   # kv servers compact often, so snapshots and InstallSnapshot carry sessions


def raft_nemesis(kinds: tuple[str, ...], sim: Simulator, *, interval_ms: float = 300.0) -> Nemesis:
    """:func:`~synod.sim.nemesis.chaos_nemesis` for Raft servers: ``corrupt``
    flips a bit of a synced file under ``raft/``, one server at a time (the
    next only once the last no longer needs its peers to repair its log).

    Raises:
        ConfigError: a kind not in ``NEMESIS_KINDS``.
    """
    def repaired(node_id: str) -> bool:
        raft = getattr(sim.hosts[node_id].node, "raft", None)
        return raft is not None and raft.repair_bound is None

    return chaos_nemesis(kinds, interval_ms=interval_ms, disk_paths=RAFT_DISK_PATHS, disk_repaired=repaired)


@dataclass(slots=True, kw_only=True)
class ChaosResult:
    """What a chaos or Figure 8 run saw: ``violations`` (empty: safe),
    commands ``proposed`` and the highest ``committed`` index, whether the
    cluster ``recovered`` (committed after faults stopped), simulator
    counters, and the runner's ``verdicts``."""

    seed: int
    violations: list[str]
    proposed: int
    committed: int
    recovered: bool
    virtual_ms: float
    deliveries: int
    faults: dict[str, int] = field(default_factory=dict)  # nemesis action -> count
    verdicts: list[Verdict] = field(default_factory=list)


def safety_verdict(violations: list[str]) -> Verdict:
    """Raft's safety properties (Figure 3) as a verdict: illegal with the first violations, if any."""
    return Verdict("raft-safety", ILLEGAL if violations else OK, "; ".join(violations[:3])
                   or "election safety, log matching, leader completeness, state machine safety held")


def _violations(c: LabCluster, r: RunResult) -> list[str]:
    """The tester's errors, a failed assertion inside a server, the checker's violations."""
    return c.errors + [v.summary for v in r.verdicts if v.checker == "assertion"] + c.checker.violations


class _Recovery:
    """After the faults stop, Lab 3's way: wait ``settle_ms``, then every
    ``RECOVERY_PROBE_MS`` propose a no-op command (-1) to the first live
    server that takes it and see whether ``recovered()`` holds; give up
    once ``within_ms`` have passed. A runner's tester: each call returns
    when to call it next."""

    def __init__(self, c: LabCluster, recovered: Callable[[], bool], settle_ms: float, within_ms: float) -> None:
        self.c = c
        self.recovered = recovered
        self.settle_ms = settle_ms
        self.within_ms = within_ms
        self.deadline_ms: float | None = None
        self.done = False

    def wake(self, now_ms: float, healed: bool) -> float | None:
        if not healed or self.done:
            return None
        if self.deadline_ms is None:
            if self.settle_ms > 0:
                settle_ms, self.settle_ms = self.settle_ms, 0.0
                return now_ms + settle_ms
            self.deadline_ms = now_ms + self.within_ms
        else:
            self.done = self.recovered()
        if self.done or now_ms >= self.deadline_ms:
            return None
        c = self.c
        for i in range(c.n):
            if c.up(i) and c.start(i, -1)[2]:
                break
        return now_ms + RECOVERY_PROBE_MS


def _chaos_result(seed: int, c: LabCluster, r: RunResult, proposed: int, recovery: _Recovery) -> ChaosResult:
    return ChaosResult(seed=seed, violations=_violations(c, r), proposed=proposed, committed=c.max_index,
                       recovered=recovery.done, virtual_ms=r.virtual_ms, deliveries=r.deliveries,
                       faults=r.faults, verdicts=r.verdicts)


class _Chaos:
    """The chaos workload: one run's cluster, client and recovery probe."""

    cluster: LabCluster     # set by build(), in the runner's simulator
    recovery: _Recovery

    def __init__(self, nodes: int, time_ms: float, kinds: tuple[str, ...], node_config: RaftNodeConfig | None,
                 propose_interval_ms: float, liveness_ms: float, replay: str) -> None:
        self.nodes, self.time_ms, self.kinds, self.node_config = nodes, time_ms, kinds, node_config
        self.propose_interval_ms, self.liveness_ms, self.replay = propose_interval_ms, liveness_ms, replay
        self.proposed = 0
        self.healed = False
        self.committed_before = 0   # the highest committed index when the faults stopped

    def build(self, sim: Simulator) -> Scenario:
        c = self.cluster = LabCluster(self.nodes, sim.seed, node_config=self.node_config, sim=sim)
        self.recovery = _Recovery(c, self._caught_up, RECOVERY_SETTLE_MS, self.liveness_ms)
        return Scenario(
            servers=c.servers(), nemesis=raft_nemesis(self.kinds, sim), driver=self._start_client,
            tester=lambda now_ms: self.recovery.wake(now_ms, self.healed),
            safety_ms=self.time_ms, stop_early=lambda: bool(c.checker.violations or c.errors),
            after_heal=self._heal, liveness_done=lambda: self.recovery.done,
            # settle, probe for up to liveness_ms, and one probe interval for the last look
            liveness_ms=RECOVERY_SETTLE_MS + self.liveness_ms + RECOVERY_PROBE_MS,
            check=lambda: [safety_verdict(c.errors + c.checker.violations)], replay=self.replay)

    def _start_client(self, sim: Simulator) -> None:
        sim.call_after(self.propose_interval_ms, self._propose)

    def _propose(self) -> None:
        c = self.cluster
        if c.now_ms >= self.time_ms:
            return
        i = c.rng.randrange(self.nodes)
        if c.up(i):
            self.proposed += 1
            c.start(i, self.proposed)
        c.sim.call_after(self.propose_interval_ms, self._propose)

    def _heal(self, now_ms: float) -> None:
        c = self.cluster
        for i in range(self.nodes):
            c.connect(i)
        self.committed_before = c.max_index
        self.healed = True

    def _caught_up(self) -> bool:
        c, before = self.cluster, self.committed_before
        return c.max_index > before and all(c.last_applied[i] >= before for i in range(self.nodes))


def run_chaos(seed: int, *, nodes: int = 5, time_ms: float = 20_000.0,
              kinds: tuple[str, ...] = NEMESIS_KINDS, node_config: RaftNodeConfig | None = None,
              tracer: Tracer | None = None, propose_interval_ms: float = 10.0,
              liveness_ms: float = 10_000.0, replay: str = "",
              progress: Callable[[float, float], None] | None = None) -> ChaosResult:
    """``nodes`` servers under the nemesis ``kinds`` for ``time_ms`` while a
    client proposes a command every ``propose_interval_ms`` to a random live
    server; then faults stop and the cluster must commit again within
    ``liveness_ms`` (after ``RECOVERY_SETTLE_MS``). ``progress(now_ms,
    total_ms)`` is called as virtual time passes; ``replay``: the command
    that replays the run (``{seed}`` where the seed goes).

    Raises:
        ConfigError: an unknown nemesis kind.
    """
    w = _Chaos(nodes, time_ms, kinds, node_config, propose_interval_ms, liveness_ms, replay)
    r = run_simulated(seed, w.build, tracer=tracer, progress=progress)
    return _chaos_result(seed, w.cluster, r, w.proposed, w.recovery)


# -- the Figure 8 workload: short-lived leaders, one entry per AppendEntries ------------------

class _Figure8:
    """The Figure 8 workload's fault driver and client (see :func:`run_figure8_chaos`)."""

    cluster: LabCluster     # set by build(), in the runner's simulator
    recovery: _Recovery

    def __init__(self, nodes: int, time_ms: float, node_config: RaftNodeConfig | None,
                 crash_on_commit_probability: float, leader_lifetime_ms_max: float,
                 restart_delay_ms_max: float, replay: str) -> None:
        cfg = node_config or RaftNodeConfig()
        self.node_config = replace(cfg, raft=replace(cfg.raft, message_entries_max=1))
        self.nodes, self.time_ms, self.replay = nodes, time_ms, replay
        self.crash_on_commit_probability = crash_on_commit_probability
        self.leader_lifetime_ms_max = leader_lifetime_ms_max
        self.restart_delay_ms_max = restart_delay_ms_max
        self.proposed = 0
        self.started = self.healed = False
        self.committed_before = 0   # the highest committed index when the faults stopped
        self.next_propose_ms = 0.0
        self.seen_commit: dict[int, tuple[int, int]] = {}   # server -> (term, commit index) when last polled
        self.deadline: dict[tuple[int, int], float] = {}    # (server, term) -> when the workload acts on it
        self.restart_at: dict[int, float] = {}
        self.muted: set[tuple[int, int]] = set()

    def build(self, sim: Simulator) -> Scenario:
        c = self.cluster = LabCluster(self.nodes, sim.seed, node_config=self.node_config, sim=sim)
        self.recovery = _Recovery(c, lambda: c.max_index > self.committed_before, 0.0, FIGURE8_RECOVERY_MS)
        return Scenario(
            servers=c.servers(), tester=self._wake, safety_ms=self.time_ms,
            stop_early=lambda: bool(c.checker.violations or c.errors), after_heal=self._heal,
            liveness_done=lambda: self.recovery.done, liveness_ms=FIGURE8_RECOVERY_MS + RECOVERY_PROBE_MS,
            check=lambda: [safety_verdict(c.errors + c.checker.violations)], replay=self.replay)

    def _wake(self, now_ms: float) -> float | None:
        """The tester: every ``FIGURE8_POLL_MS`` look at the leaders (not
        at the start), then propose if due; after the heal, the recovery
        probes."""
        if self.healed:
            return self.recovery.wake(now_ms, True)
        if self.started:
            self._poll()
        self.started = True
        if now_ms >= self.time_ms:
            return None
        self._propose_if_due()
        return now_ms + FIGURE8_POLL_MS

    def _propose_if_due(self) -> None:
        c = self.cluster
        if c.now_ms >= self.next_propose_ms:
            self.next_propose_ms = c.now_ms + FIGURE8_PROPOSE_MS
            for i in range(self.nodes):
                self.proposed += 1
                c.start(i, self.proposed)

    def _restart(self, i: int) -> None:
        self.restart_at.pop(i, None)
        self.cluster.start1(i)
        self.cluster.connect(i)

    def _crash(self, i: int) -> None:
        c = self.cluster
        c.crash1(i)
        self.restart_at[i] = c.now_ms + c.rng.uniform(0.0, self.restart_delay_ms_max)
        self.seen_commit.pop(i, None)

    def _mute(self, i: int) -> None:
        # A one-way cut: what the leader has sent still arrives and replies
        # still reach it, but nothing it sends from now on does. Any crash or
        # restart rewires the network and lifts it.
        c = self.cluster
        for j in range(self.nodes):
            if j != i:
                c.network.block(c.ids[i], c.ids[j])

    def _poll(self) -> None:
        c, rng = self.cluster, self.cluster.rng
        for i in range(self.nodes):
            if not c.up(i):
                if c.now_ms >= self.restart_at.get(i, 0.0):
                    self._restart(i)
                continue
            raft = c.node(i).raft
            if raft.role != LEADER:
                self.seen_commit.pop(i, None)
                continue
            key = (i, raft.term)
            self.deadline.setdefault(key, c.now_ms + rng.uniform(0.0, self.leader_lifetime_ms_max))
            before = self.seen_commit.get(i)
            self.seen_commit[i] = (raft.term, raft.log.commit_index)
            advanced = before is not None and before[0] == raft.term and raft.log.commit_index > before[1]
            if advanced and rng.random() < self.crash_on_commit_probability:
                self._crash(i)
            elif c.now_ms >= self.deadline[key]:
                if key in self.muted:
                    self._crash(i)
                else:
                    self._mute(i)
                    self.muted.add(key)
                    self.deadline[key] = c.now_ms + rng.uniform(0.0, self.leader_lifetime_ms_max)
        quorum = self.nodes // 2 + 1
        while sum(1 for i in range(self.nodes) if c.up(i)) < quorum:
            self._restart(rng.choice([i for i in range(self.nodes) if not c.up(i)]))

    def _heal(self, now_ms: float) -> None:
        # Faults stop: every server up, one-way cuts lifted, and a new command must commit.
        c = self.cluster
        for i in range(self.nodes):
            if not c.up(i):
                self._restart(i)
        c.rewire()
        self.committed_before = c.max_index
        self.healed = True


def run_figure8_chaos(seed: int, *, nodes: int = 5, time_ms: float = 30_000.0,
                      node_config: RaftNodeConfig | None = None, tracer: Tracer | None = None,
                      loss_probability: float = 0.2, crash_on_commit_probability: float = 1.0,
                      leader_lifetime_ms_max: float = 200.0, restart_delay_ms_max: float = 300.0,
                      replay: str = "", progress: Callable[[float, float], None] | None = None) -> ChaosResult:
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
    ``leader_lifetime_ms_max`` (first cut off one-way, then crashed: its own
    entries then reach few servers, so logs diverge). A client proposes to
    every live server every ``FIGURE8_PROPOSE_MS``. Crashed servers restart
    over their disks after up to ``restart_delay_ms_max``, and at once if
    fewer than a majority are up. The run stops at the first violation."""
    w = _Figure8(nodes, time_ms, node_config, crash_on_commit_probability, leader_lifetime_ms_max,
                 restart_delay_ms_max, replay)
    network = Network(LinkModel(latency=Uniform(1.0, 5.0), loss_probability=loss_probability))
    r = run_simulated(seed, w.build, network=network, tracer=tracer, progress=progress)
    return _chaos_result(seed, w.cluster, r, w.proposed, w.recovery)


# -- Raft's KV machine, checked for linearizability -------------------------------------------

@dataclass(slots=True, kw_only=True)
class KVRunResult:
    """What one run saw: the linearizability ``check`` (its ``verdict`` is
    ok, illegal or unknown), the Raft safety ``violations``, the
    ``history``, simulator counters and the runner's ``verdicts``."""

    seed: int
    reads: str
    check: CheckResult
    violations: list[str]
    history: HistoryRecorder
    virtual_ms: float
    deliveries: int
    faults: dict[str, int] = field(default_factory=dict)  # nemesis action -> count
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return self.check.verdict

    @property
    def safe(self) -> bool:
        return self.check.verdict == "ok" and not self.violations


def linearizability_verdict(sim: Simulator, history: HistoryRecorder, timeout_s: float | None) -> Verdict:
    """Check ``history`` against the ``kv`` model, write the trace's
    ``check`` record (node ``checker``), and say it as a verdict whose
    ``detail`` is the :class:`~synod.check.CheckResult`."""
    result = check_events(KV(), history.events, timeout_s=timeout_s, source=f"seed {sim.seed}")
    record = check_record(result)
    sim.emit(CHECK_NODE, "check", **record)
    return Verdict("linearizability", {"ok": OK, "illegal": ILLEGAL}.get(result.verdict, UNKNOWN),
                   record.get("summary", ""), result)


def _kv_scenario(sim: Simulator, checker: SafetyChecker, *, nodes: int, clients: int, time_ms: float,
                 kinds: tuple[str, ...], reads: str, workload: KVWorkload | None,
                 node_config: RaftNodeConfig | None, check_timeout_s: float | None, replay: str) -> Scenario:
    adapter = RaftKVAdapter(reads)
    cfg = node_config or RaftNodeConfig(snapshot_interval_entries=SNAPSHOT_INTERVAL_ENTRIES)
    if cfg.raft.lease_read != (reads == "lease"):
        cfg = replace(cfg, raft=replace(cfg.raft, lease_read=reads == "lease"))
    ids = tuple(f"s{i}" for i in range(1, nodes + 1))
    history = HistoryRecorder(lambda: sim.now_ms)
    wl = workload or KVWorkload(stop_ms=time_ms)
    if wl.stop_ms > time_ms:
        wl = replace(wl, stop_ms=time_ms)
    return Scenario(
        servers={sid: (lambda: RaftNode(cfg, SimpleKV(), checker)) for sid in ids},
        clients={f"c{i + 1}": (lambda i=i: KVClient(i, clients, ids, adapter, wl, history)) for i in range(clients)},
        nemesis=replace(raft_nemesis(kinds, sim), targets=ids),
        safety_ms=time_ms, liveness_ms=DRAIN_MS + wl.op_timeout_ms, stop_early=lambda: bool(checker.violations),
        check=lambda: [safety_verdict(checker.violations), linearizability_verdict(sim, history, check_timeout_s)],
        replay=replay, history=history)


def run_kv_linearizability(seed: int, *, nodes: int = 5, clients: int = 5, time_ms: float = 20_000.0,
                           kinds: tuple[str, ...] = NEMESIS_KINDS, reads: str = "read-index",
                           workload: KVWorkload | None = None, node_config: RaftNodeConfig | None = None,
                           tracer: Tracer | None = None, check_timeout_s: float | None = CHECK_TIMEOUT_S,
                           replay: str = "", progress: Callable[[float, float], None] | None = None) -> KVRunResult:
    """Run ``nodes`` servers and ``clients`` clients for ``time_ms`` of
    virtual time under the nemesis ``kinds`` (only servers are hit), stop
    the faults, let outstanding operations finish for ``DRAIN_MS`` (and one
    operation timeout), and check the history. ``reads="lease"`` turns
    leader leases on in the servers' RaftConfig (and any other mode off).

    Raises:
        ConfigError: an unknown read mode or nemesis kind.
    """
    checker = SafetyChecker()

    def build(sim: Simulator) -> Scenario:
        return _kv_scenario(sim, checker, nodes=nodes, clients=clients, time_ms=time_ms, kinds=kinds, reads=reads,
                            workload=workload, node_config=node_config, check_timeout_s=check_timeout_s,
                            replay=replay)

    r = run_simulated(seed, build, tracer=tracer, progress=progress)
    by = {v.checker: v for v in r.verdicts}
    violations = [v.summary for v in r.verdicts if v.checker == "assertion"] + checker.violations
    return KVRunResult(seed=seed, reads=reads, check=by["linearizability"].detail, violations=violations,
                       history=r.scenario.history, virtual_ms=r.virtual_ms, deliveries=r.deliveries,
                       faults=r.faults, verdicts=r.verdicts)
