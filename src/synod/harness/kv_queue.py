"""The job-queue pattern under faults: RPUSH producers, BLPOP consumers.

Issue 10 part 2 asks of blocking pops that a blocked client "on a leader
change gets an error it can retry, never a lost or doubly delivered
element". This scenario proves it the way Jepsen's queue workloads do
(total-queue checker): ``producers`` client nodes push unique elements
(``RPUSH q p<i>.<n>``) and ``consumers`` client nodes pop them with
``BLPOP q <timeout>``, each through any server, one request at a time,
while the nemesis runs. Every request is classified as Jepsen classifies
it: ``ok``, ``fail`` (``-TRYAGAIN``: nothing was applied; a BLPOP that timed
out with nil) or ``info`` (``-UNCERTAIN``, another error, or no answer: the
outcome is unknown).

After the heal and the liveness phase (every consumer pops an element),
the final queue is read from the server that applied the most entries, and
the checker (:func:`queue_verdict`) requires:

- no element delivered twice (two ok pops, or an ok pop of an element still
  queued);
- no element delivered that was never pushed;
- every element whose push was acknowledged is delivered or still queued,
  except at most as many as there were pops of unknown outcome (each may
  have taken one element whose answer was lost; Jepsen counts them the same).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from synod.core import Context, Node
from synod.harness.raft import raft_nemesis, safety_verdict
from synod.harness.runner import ILLEGAL, OK, RunResult, Scenario, Verdict, run_simulated
from synod.kv.messages import Command
from synod.kv.node import KvNode
from synod.kv.replies import Array, BulkString, Integer, SimpleError
from synod.raft._safety import SafetyChecker
from synod.raft.node import RaftNodeConfig
from synod.sim import Simulator
from synod.sim.nemesis import NEMESIS_KINDS

__all__ = ["QueueLog", "queue_scenario", "queue_verdict", "run_queue"]

QUEUE_KEY = b"q"
SNAPSHOT_INTERVAL_ENTRIES = 200
REQUEST_TIMEOUT_MS = 3000.0          # a request with no answer by then is of unknown outcome
THINK_MS = 20.0


@dataclass(slots=True)
class QueueLog:
    """What the clients saw: elements whose push was acknowledged
    (``pushed``), invoked at all (``attempted``), delivered by an ok pop
    (``popped``, in order, repeats kept); how many pushes and pops had an
    unknown outcome; ok pops since the heal, per consumer."""

    pushed: set[bytes] = field(default_factory=set)
    attempted: set[bytes] = field(default_factory=set)
    popped: list[bytes] = field(default_factory=list)
    unknown_pushes: int = 0
    unknown_pops: int = 0
    pops_after_heal: Counter[str] = field(default_factory=Counter)
    healed: bool = False


def _outcome(reply: Any) -> str:
    """``fail`` for -TRYAGAIN (nothing applied), ``info`` for any other
    error or no answer."""
    if type(reply) is SimpleError:
        return "fail" if reply.text.startswith("TRYAGAIN") else "info"
    return "info" if reply is None else "ok"


class _QueueClient(Node):
    """Producer (``pop_timeout_s`` None) or consumer: one request at a
    time, each to a server chosen with the node's seeded rng."""

    def __init__(self, name: str, servers: tuple[str, ...], log: QueueLog, pop_timeout_s: float | None) -> None:
        self.name, self.servers, self.log, self.pop_timeout_s = name, servers, log, pop_timeout_s
        self.n = 0

    async def on_start(self, ctx: Context) -> None:
        while True:
            await ctx.sleep(THINK_MS)
            server = ctx.rng.choice(self.servers)
            if self.pop_timeout_s is None:
                await self._push(ctx, server)
            else:
                await self._pop(ctx, server)

    async def _push(self, ctx: Context, server: str) -> None:
        self.n += 1
        element = f"{self.name}.{self.n}".encode()
        self.log.attempted.add(element)
        reply = await ctx.call(server, Command(args=(b"RPUSH", QUEUE_KEY, element)), REQUEST_TIMEOUT_MS)
        outcome = _outcome(reply)
        if outcome == "ok" and type(reply) is Integer:
            self.log.pushed.add(element)
        elif outcome != "fail":
            self.log.unknown_pushes += 1

    async def _pop(self, ctx: Context, server: str) -> None:
        timeout_s = self.pop_timeout_s or 0.0
        reply = await ctx.call(server, Command(args=(b"BLPOP", QUEUE_KEY, str(timeout_s).encode())),
                               REQUEST_TIMEOUT_MS + timeout_s * 1000.0)
        outcome = _outcome(reply)
        if outcome == "ok" and type(reply) is Array and reply.items is not None:
            item = reply.items[1]
            if type(item) is BulkString and item.data is not None:
                self.log.popped.append(item.data)
                if self.log.healed:
                    self.log.pops_after_heal[self.name] += 1
        elif outcome == "ok":
            pass  # nil: the timeout passed with nothing to pop
        elif outcome == "info":
            self.log.unknown_pops += 1


def queue_verdict(log: QueueLog, final: list[bytes] | None) -> Verdict:
    """The total-queue check of the module docstring; ``final``: the queue
    at the end (None: no server could be read)."""
    if final is None:
        return Verdict("queue", ILLEGAL, "no server holds the final queue")
    counts = Counter(log.popped)
    twice = sorted(e for e, n in counts.items() if n > 1)
    popped_and_queued = sorted(set(counts) & set(final))
    unknown = sorted(set(counts) - log.attempted)
    present = set(counts) | set(final)
    lost = sorted(log.pushed - present)
    problems = []
    if twice:
        problems.append(f"{len(twice)} delivered twice: {twice[:3]}")
    if popped_and_queued:
        problems.append(f"{len(popped_and_queued)} delivered and still queued: {popped_and_queued[:3]}")
    if unknown:
        problems.append(f"{len(unknown)} delivered but never pushed: {unknown[:3]}")
    if len(lost) > log.unknown_pops:
        problems.append(f"{len(lost)} acknowledged pushes missing, more than the {log.unknown_pops} pops "
                        f"of unknown outcome: {lost[:3]}")
    summary = "; ".join(problems) or (
        f"{len(log.pushed)} pushes acknowledged, {len(log.popped)} delivered once each, {len(final)} still queued, "
        f"{len(lost)} unaccounted for (<= {log.unknown_pops} pops of unknown outcome)")
    return Verdict("queue", ILLEGAL if problems else OK, summary,
                   {"lost": lost, "twice": twice, "unknown_pops": log.unknown_pops})


def _final_queue(sim: Simulator, servers: tuple[str, ...]) -> list[bytes] | None:
    """The queue in the state of the server that applied the most entries."""
    best: tuple[int, KvNode] | None = None
    for sid in servers:
        node = sim.hosts[sid].node
        if isinstance(node, KvNode) and node.raft is not None:
            applied = node.raft.log.applied_index
            if best is None or applied > best[0]:
                best = (applied, node)
    if best is None:
        return None
    reply = best[1].machine.keyspace.read((b"LRANGE", QUEUE_KEY, b"0", b"-1"))
    if type(reply) is not Array:
        return []  # the key does not exist (nil) or holds no list
    return [item.data for item in reply.items or () if type(item) is BulkString and item.data is not None]


def queue_scenario(sim: Simulator, *, nodes: int = 3, producers: int = 2, consumers: int = 3,
                   time_ms: float = 20_000.0, kinds: tuple[str, ...] = NEMESIS_KINDS,
                   pop_timeout_s: float = 1.0, liveness_ms: float = 20_000.0, log: QueueLog | None = None,
                   replay: str = "") -> Scenario:
    """Servers ``s1..``, producers ``p1..``, consumers ``q1..``, the chaos
    nemesis of ``kinds`` for ``time_ms``; liveness: after the heal every
    consumer delivers an element; checkers: Raft safety and the queue.

    Raises:
        ConfigError: an unknown nemesis kind.
    """
    cfg = RaftNodeConfig(snapshot_interval_entries=SNAPSHOT_INTERVAL_ENTRIES)
    safety = SafetyChecker()
    ids = tuple(f"s{i}" for i in range(1, nodes + 1))
    qlog = log if log is not None else QueueLog()
    clients: dict[str, Any] = {}
    for i in range(1, producers + 1):
        clients[f"p{i}"] = lambda i=i: _QueueClient(f"p{i}", ids, qlog, None)
    for i in range(1, consumers + 1):
        clients[f"q{i}"] = lambda i=i: _QueueClient(f"q{i}", ids, qlog, pop_timeout_s)

    def after_heal(now_ms: float) -> None:
        qlog.healed = True

    return Scenario(
        servers={sid: (lambda: KvNode(cfg, observer=safety)) for sid in ids},
        clients=clients,
        nemesis=replace(raft_nemesis(kinds, sim), targets=ids),
        safety_ms=time_ms, liveness_ms=liveness_ms,
        liveness_done=lambda: len(qlog.pops_after_heal) == consumers,
        stop_early=lambda: bool(safety.violations), after_heal=after_heal, replay=replay,
        check=lambda: [safety_verdict(safety.violations), queue_verdict(qlog, _final_queue(sim, ids))],
    )


def run_queue(seed: int, **options: Any) -> RunResult:
    """One seeded run of :func:`queue_scenario` (``options``: its keyword arguments)."""
    return run_simulated(seed, lambda sim: queue_scenario(sim, **options))
