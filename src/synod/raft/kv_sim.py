"""Raft's key-value state machine checked for linearizability in the
simulator, Jepsen-style: the three parts of issue 4 proving each other.

``nodes`` Raft servers (:class:`~synod.raft.node.RaftNode` with the
:class:`~synod.raft.node.KVStateMachine`) run under the nemesis while
``clients`` :class:`~synod.workload.kv.KVClient` nodes issue get, put and
append on a few keys; every invoke and completion goes into a history,
which :func:`synod.check.check_events` judges against the ``kv`` model
(Herlihy & Wing linearizability). The safety checker watches every server
as well.

Read paths (``reads``):

- ``read-index``: a ``Read`` message; the server gets a read index (thesis
  6.4; a follower asks its leader) and answers once it has applied that far;
- ``lease``: the same with leader leases on (thesis 6.4.1); safe only under
  the lease's assumptions (clock *rates* within ``clock_drift_bound``, no
  process pauses), so a run with the ``pause`` or ``skew`` nemesis may be
  caught serving stale reads, as the docs explain;
- ``log``: the get is a log entry like a write (section 8 of the paper).

Traced runs. With a ``tracer``, every client operation is in the trace
(``client_op`` events naming their ``history_line``, see
:mod:`synod.workload.kv`), and after the check one ``check`` record (node
``checker``, at the end) gives the verdict and, when it is illegal, names the
operations of the failing window by their history lines (``failing``), so
``synod trace view`` highlights them (see docs/trace-viewer.md). The history
lines are those of :meth:`HistoryRecorder.jsonl`, the file ``--history``
writes and the checker's "(lines a-b)" refer to.

Nothing here reads a clock or global random: the seed decides everything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from synod.check import KV, CheckResult, Operation, check_events, explain
from synod.core import decode, encode
from synod.core.errors import ConfigError
from synod.raft._safety import SafetyChecker
from synod.raft.messages import Propose, ProposeReply, Read
from synod.raft.node import KVStateMachine, RaftNode, RaftNodeConfig
from synod.raft.sim import NEMESIS_KINDS, chaos_nemesis
from synod.sim import LinkModel, Network, Simulator, Tracer, Uniform
from synod.workload import HistoryRecorder, KVClient, KVWorkload, Outcome
from synod.workload.kv import FAIL, INFO, OK

__all__ = ["READ_MODES", "RaftKVAdapter", "KVRunResult", "run_kv_linearizability", "check_record"]

READ_MODES = ("read-index", "lease", "log")
CHECK_TIMEOUT_S = 60.0
CHECK_NODE = "checker"   # the trace's check record is written under this name (it gets no lane)
DRAIN_MS = 3000.0    # after the faults stop: outstanding operations complete or time out
SNAPSHOT_INTERVAL_ENTRIES = 200   # servers compact often, so snapshots and InstallSnapshot carry sessions


class RaftKVAdapter:
    """Requests and replies of a Raft KV server for :class:`KVClient`: puts
    and appends are ``Propose`` commands; a get is a ``Read`` (``reads``
    read-index or lease) or a ``Propose`` (log)."""

    def __init__(self, reads: str) -> None:
        if reads not in READ_MODES:
            raise ConfigError(f"unknown read mode {reads!r}; choose from {', '.join(READ_MODES)}")
        self.reads = reads

    def request(self, f: str, key: str, value: str | None, request_id: int) -> Any:
        if f == "get" and self.reads != "log":
            return Read(request_id=request_id, query=encode(["get", key]))
        return Propose(request_id=request_id, command=encode([f, key, value]))

    def reply_id(self, msg: Any) -> int | None:
        return msg.request_id if type(msg) is ProposeReply else None

    def outcome(self, f: str, msg: Any) -> Outcome:
        if msg.ok:
            return Outcome(OK, decode(msg.result) if f == "get" and msg.result is not None else None,
                           msg.leader_hint)
        return Outcome(INFO if msg.indeterminate else FAIL, None, msg.leader_hint)


@dataclass(slots=True, kw_only=True)
class KVRunResult:
    """What one run saw: the linearizability ``check`` (its ``verdict`` is
    ok, illegal or unknown), the Raft safety ``violations``, the
    ``history`` and simulator counters."""

    seed: int
    reads: str
    check: CheckResult
    violations: list[str]
    history: HistoryRecorder
    virtual_ms: float
    deliveries: int
    faults: dict[str, int] = field(default_factory=dict)  # nemesis action -> count

    @property
    def verdict(self) -> str:
        return self.check.verdict

    @property
    def safe(self) -> bool:
        return self.check.verdict == "ok" and not self.violations


def _failing(op: Operation, role: str) -> dict[str, Any]:
    return {"history_line": op.lines[0], "complete_line": op.lines[1] or None, "role": role,
            "process": op.process, "f": op.f, "key": op.key}


def check_record(check: CheckResult) -> dict[str, Any]:
    """The fields of the trace's ``check`` record: ``checker``, ``model``,
    ``verdict``, ``summary`` (the checker's explanation, one line) and, when
    illegal, ``key`` and ``failing``: the failing window's operations as
    ``{history_line, complete_line, role, process, f, key}``, ``role``
    ``stuck`` for the one the search could not place, ``pending`` for the
    concurrent ones it could not linearize, ``window`` for the others."""
    fields: dict[str, Any] = {"checker": "linearizability", "model": check.model, "verdict": check.verdict}
    c = check.counterexample
    if c is None:
        fields["summary"] = check.reason or f"{len(check.operations)} operations, {check.partitions} keys"
        return fields
    lines = [line.strip() for line in explain(check, KV())[1:]]
    why = [line[len("why:"):].strip() for line in lines if line.startswith("why:")]
    fields["summary"] = why[0] if why else "; ".join(lines)
    fields["key"] = c.key
    pending = {op.id for op in c.pending}
    fields["failing"] = [_failing(op, "stuck" if op.id == c.stuck.id else "pending" if op.id in pending
                                  else "window") for op in c.window]
    return fields


def run_kv_linearizability(seed: int, *, nodes: int = 5, clients: int = 5, time_ms: float = 20_000.0,
                           kinds: tuple[str, ...] = NEMESIS_KINDS, reads: str = "read-index",
                           workload: KVWorkload | None = None, node_config: RaftNodeConfig | None = None,
                           tracer: Tracer | None = None,
                           check_timeout_s: float | None = CHECK_TIMEOUT_S,
                           progress: Callable[[float, float], None] | None = None) -> KVRunResult:
    """Run ``nodes`` servers and ``clients`` clients for ``time_ms`` of
    virtual time under the nemesis ``kinds`` (only servers are hit), stop
    the faults, let outstanding operations finish for ``DRAIN_MS``, and
    check the history. ``reads="lease"`` turns leader leases on in the
    servers' RaftConfig.

    Raises ConfigError on an unknown read mode or nemesis kind.
    """
    adapter = RaftKVAdapter(reads)
    cfg = node_config or RaftNodeConfig(snapshot_interval_entries=SNAPSHOT_INTERVAL_ENTRIES)
    if reads == "lease" and not cfg.raft.lease_read:
        cfg = replace(cfg, raft=replace(cfg.raft, lease_read=True))
    elif reads != "lease" and cfg.raft.lease_read:
        cfg = replace(cfg, raft=replace(cfg.raft, lease_read=False))
    sim = Simulator(seed, network=Network(LinkModel(latency=Uniform(1.0, 5.0))))
    if tracer is not None:
        sim.tracer = tracer
    checker = SafetyChecker()
    servers = tuple(f"s{i}" for i in range(1, nodes + 1))
    for sid in servers:
        sim.add_node(sid, lambda: RaftNode(cfg, KVStateMachine(), checker), peers=servers)
    history = HistoryRecorder(lambda: sim.now_ms)
    wl = workload or KVWorkload(stop_ms=time_ms)
    if wl.stop_ms > time_ms:
        wl = replace(wl, stop_ms=time_ms)
    for i in range(clients):
        sim.add_node(f"c{i + 1}", lambda i=i: KVClient(i, clients, servers, adapter, wl, history), peers=())
    nemesis = replace(chaos_nemesis(kinds, sim=sim), targets=servers)
    nemesis.install(sim)
    sim.report_progress(time_ms, progress)
    sim.run(until_ms=time_ms, until=lambda: bool(checker.violations))
    nemesis.heal_and_stop(sim.now_ms)
    sim.run(until_ms=sim.now_ms + DRAIN_MS + wl.op_timeout_ms, until=lambda: bool(checker.violations))
    check = check_events(KV(), history.events, timeout_s=check_timeout_s, source=f"seed {seed}")
    sim.emit(CHECK_NODE, "check", **check_record(check))
    return KVRunResult(seed=seed, reads=reads, check=check, violations=list(checker.violations),
                       history=history, virtual_ms=sim.now_ms, deliveries=sim.deliveries,
                       faults=dict(sorted(nemesis.counts.items())))
