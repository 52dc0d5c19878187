"""synod.kv under faults: the Jepsen-style run of issue 10 part 3.

``nodes`` KV servers (:class:`~synod.kv.node.KvNode`, Raft underneath) run
in the simulator under the nemesis while ``clients``
:class:`~synod.workload.kv.KVClient` nodes send Redis commands (``GET``,
``SET``, ``APPEND``) through any server, one at a time each, recording a
history. Every server's Raft Ready feeds the safety checker (election
safety, log matching, leader completeness, state machine safety); the
history is checked for linearizability against the ``kv`` model
(Herlihy & Wing; per key). Replies are read as Jepsen reads them:
``-TRYAGAIN`` says the write was not applied (``fail``); ``-UNCERTAIN``, any
other error and no reply within the timeout leave it unknown (``info``).

``unsafe_local_reads`` answers reads from the server's own state with no
read index: a follower or a deposed leader then serves stale reads, which
the checker must catch within a few seeds (the test that the proof has
teeth).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from synod.core.errors import ConfigError
from synod.harness.raft import linearizability_verdict, raft_nemesis, safety_verdict
from synod.harness.runner import RunResult, Scenario, Verdict, run_simulated
from synod.kv.messages import Command
from synod.kv.node import KvNode
from synod.kv.replies import BulkString, Integer, SimpleError, SimpleString
from synod.raft._safety import SafetyChecker
from synod.raft.node import RaftNodeConfig
from synod.raft.raft import RaftConfig
from synod.sim import Simulator, Tracer
from synod.sim.nemesis import NEMESIS_KINDS
from synod.workload import HistoryRecorder, KVClient, KVWorkload, Outcome
from synod.workload.kv import FAIL, INFO
from synod.workload.kv import OK as OP_OK

__all__ = ["RedisKVAdapter", "kv_scenario", "run_kv", "NEMESIS_KINDS", "READ_MODES"]

READ_MODES = ("read-index", "lease", "unsafe-local")
CHECK_TIMEOUT_S = 60.0
SNAPSHOT_INTERVAL_ENTRIES = 200   # servers compact often, so snapshots and InstallSnapshot are exercised


class RedisKVAdapter:
    """The workload's get/put/append as Redis commands, answered through
    ``ctx.call`` with the server's typed replies."""

    calls = True

    def request(self, f: str, key: str, value: str | None, request_id: int) -> Any:
        if f == "get":
            return Command(args=(b"GET", key.encode()))
        verb = b"SET" if f == "put" else b"APPEND"
        return Command(args=(verb, key.encode(), (value or "").encode()))

    def reply_id(self, msg: Any) -> int | None:
        return None

    def outcome(self, f: str, msg: Any) -> Outcome:
        t = type(msg)
        if t is SimpleError:
            return Outcome(FAIL if msg.text.startswith("TRYAGAIN") else INFO)
        if f == "get" and t is BulkString:
            return Outcome(OP_OK, None if msg.data is None else msg.data.decode("utf-8", errors="replace"))
        if (f == "put" and t is SimpleString) or (f == "append" and t is Integer):
            return Outcome(OP_OK)
        return Outcome(INFO)  # a reply no correct server gives: count it as unknown, the checker decides


def kv_scenario(sim: Simulator, *, nodes: int = 5, clients: int = 5, time_ms: float = 20_000.0,
                kinds: tuple[str, ...] = NEMESIS_KINDS, reads: str = "read-index",
                workload: KVWorkload | None = None, liveness_ms: float = 10_000.0,
                check_timeout_s: float | None = CHECK_TIMEOUT_S, replay: str = "") -> Scenario:
    """The scenario: ``nodes`` servers ``s1..``, ``clients`` clients
    ``c1..``, the chaos nemesis of ``kinds`` for ``time_ms``, then up to
    ``liveness_ms`` for every client to complete an operation after the
    heal; checkers: Raft safety and linearizability.

    Raises:
        ConfigError: an unknown read mode or nemesis kind.
    """
    if reads not in READ_MODES:
        raise ConfigError(f"unknown read mode {reads!r}; choose from {', '.join(READ_MODES)}")
    cfg = RaftNodeConfig(raft=RaftConfig(lease_read=reads == "lease"), snapshot_interval_entries=SNAPSHOT_INTERVAL_ENTRIES,
                         unsafe_local_reads=reads == "unsafe-local")
    safety = SafetyChecker()
    servers = {f"s{i}": (lambda: KvNode(cfg, observer=safety)) for i in range(1, nodes + 1)}
    history = HistoryRecorder(lambda: sim.now_ms)
    wl = workload or KVWorkload(stop_ms=float("inf"))
    adapter = RedisKVAdapter()
    ids = tuple(servers)

    # Liveness: after the heal, every client completes an operation (ok).
    # The history is scanned incrementally: the predicate runs often.
    since_heal: dict[str, Any] = {"from": None, "seen": set()}

    def after_heal(now_ms: float) -> None:
        since_heal["from"] = len(history.events)

    def liveness_done() -> bool:
        start = since_heal["from"]
        if start is None:
            return False
        seen: set[int] = since_heal["seen"]
        events = history.events
        for e in events[start:]:
            if e.type == "ok":
                seen.add(e.process % clients)
        since_heal["from"] = len(events)
        return len(seen) == clients

    def check() -> list[Verdict]:
        return [safety_verdict(safety.violations), linearizability_verdict(sim, history, check_timeout_s)]

    return Scenario(
        servers=servers,
        clients={f"c{i + 1}": (lambda i=i: KVClient(i, clients, ids, adapter, wl, history)) for i in range(clients)},
        nemesis=replace(raft_nemesis(kinds, sim), targets=ids),
        safety_ms=time_ms, liveness_ms=liveness_ms, liveness_done=liveness_done,
        stop_early=lambda: bool(safety.violations), check=check, after_heal=after_heal, replay=replay,
        history=history,
    )


def run_kv(seed: int, *, tracer: Tracer | None = None, progress: Any = None, **options: Any) -> RunResult:
    """One seeded run of :func:`kv_scenario` (``options`` are its keyword
    arguments); the result's ``scenario`` holds the history."""
    return run_simulated(seed, lambda sim: kv_scenario(sim, **options), tracer=tracer, progress=progress)
