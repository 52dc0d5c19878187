"""synod.kv under faults: the Jepsen-style run of issue 10 part 3.

``nodes`` KV servers (:class:`~synod.kv.node.KvNode`, Raft underneath) run
in the simulator under the nemesis while ``clients``
:class:`~synod.workload.kv.KVClient` nodes send Redis commands through any
server, one operation at a time each, recording a history: ``GET``,
``SET``, ``APPEND`` on string keys, ``INCR`` on counter keys, and cas as
optimistic locking (``WATCH``, ``GET``, then ``MULTI``, ``SET``, ``EXEC`` on
the client's one connection). Every server's Raft Ready feeds the safety
checker (election safety, log matching, leader completeness, state machine
safety); the history is checked for linearizability against the ``kv``
model (Herlihy & Wing; per key). Replies are read as Jepsen reads them:
``-TRYAGAIN`` says the write was not applied (``fail``), as does an EXEC
answered with a nil array (a watched key changed); ``-UNCERTAIN``, any
other error and no reply within the timeout leave it unknown (``info``).

Two deliberately broken modes, for the tests that the proof has teeth:
``reads="unsafe-local"`` answers reads from the server's own state with no
read index (a follower or a deposed leader then serves stale reads), and
``cas_watch=False`` does the cas without WATCH (lost updates). The checker
must catch each within a few seeds.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from synod.core.errors import ConfigError
from synod.harness.raft import linearizability_verdict, raft_nemesis, safety_verdict
from synod.harness.runner import RunResult, Scenario, Verdict, run_simulated
from synod.kv.messages import Command
from synod.kv.node import KvNode
from synod.kv.replies import Array, BulkString, Integer, SimpleError, SimpleString
from synod.raft._safety import SafetyChecker
from synod.raft.node import RaftNodeConfig
from synod.raft.raft import RaftConfig
from synod.sim import Simulator, Tracer
from synod.sim.nemesis import NEMESIS_KINDS
from synod.workload import HistoryRecorder, KVClient, KVWorkload, Outcome
from synod.workload.kv import FAIL, INFO, Step
from synod.workload.kv import OK as OP_OK

__all__ = ["DEFAULT_WORKLOAD", "RedisKVAdapter", "kv_scenario", "run_kv", "NEMESIS_KINDS", "READ_MODES"]

READ_MODES = ("read-index", "lease", "unsafe-local")
CHECK_TIMEOUT_S = 60.0
SNAPSHOT_INTERVAL_ENTRIES = 200   # servers compact often, so snapshots and InstallSnapshot are exercised
DEFAULT_WORKLOAD = KVWorkload(get_fraction=0.4, put_fraction=0.15, incr_fraction=0.15, cas_fraction=0.15)
"""The op mix of ``synod sim kv``: 40% gets, 15% each of puts, incrs, cas
(each with its watched get) and appends."""


def _error(msg: Any) -> Outcome:
    """An error reply: ``-TRYAGAIN`` says nothing was applied (fail); any
    other (``-UNCERTAIN`` ...) leaves it unknown (info)."""
    return Outcome(FAIL if msg.text.startswith("TRYAGAIN") else INFO)


def _expect(text: str) -> Any:
    """A transaction step before the commit: ``+text`` goes on, anything
    else ends the cas as failed (nothing was written)."""
    return lambda msg: Outcome(OP_OK if type(msg) is SimpleString and msg.text == text else FAIL)


def _answered(msg: Any) -> Outcome:
    return Outcome(OP_OK)


class RedisKVAdapter:
    """The workload's operations as Redis commands, answered through
    ``ctx.call`` with the server's typed replies: get, put, append and incr
    are GET, SET, APPEND and INCR; a cas is optimistic locking (WATCH k;
    GET k, then MULTI; SET k new; EXEC: the commit applies only if k did not
    change since the WATCH, else EXEC answers a nil array).

    ``watch=False`` is a broken cas for the tests that the checker has
    teeth: no WATCH, so EXEC always applies the SET, whatever was written
    between the GET and it (a lost update the history shows as an ``ok`` cas
    from a value that was no longer there).

    A transaction relies on the server keeping its connection state between
    the steps; a server that restarts forgets it, and a command it then gets
    runs outside any transaction (a SET answered ``+OK`` instead of
    ``+QUEUED``, a cas that cannot be told from a plain put: recorded
    ``info``, the nearest the model has). In the simulator a restart takes
    ``restart_delay_ms`` (400 ms), far longer than the one round trip
    between two steps, so it does not happen there."""

    calls = True
    functions = ("get", "put", "append", "incr", "cas")

    def __init__(self, *, watch: bool = True) -> None:
        self.watch = watch

    def request(self, f: str, key: str, value: str | None, request_id: int) -> Any:
        if f == "get":
            return Command(args=(b"GET", key.encode()))
        if f == "incr":
            return Command(args=(b"INCR", key.encode()))
        verb = b"SET" if f == "put" else b"APPEND"
        return Command(args=(verb, key.encode(), (value or "").encode()))

    def reply_id(self, msg: Any) -> int | None:
        return None

    def outcome(self, f: str, msg: Any) -> Outcome:
        t = type(msg)
        if t is SimpleError:
            return _error(msg)
        if f == "get" and t is BulkString:
            return Outcome(OP_OK, None if msg.data is None else msg.data.decode("utf-8", errors="replace"))
        if f == "incr" and t is Integer:
            return Outcome(OP_OK, msg.value)
        if (f == "put" and t is SimpleString and msg.text == "OK") or (f == "append" and t is Integer):
            return Outcome(OP_OK)
        return Outcome(INFO)  # a reply no correct server gives: count it as unknown, the checker decides

    def steps(self, phase: str, key: str, value: Any) -> tuple[Step, ...]:
        """The cas's requests (see :class:`~synod.workload.kv.KVAdapter`)."""
        k = key.encode()
        if phase == "cas-read":
            read = Step(Command(args=(b"GET", k)), lambda msg: self.outcome("get", msg))
            if not self.watch:
                return (read,)
            return (Step(Command(args=(b"WATCH", k)), _expect("OK")), read)
        if phase == "cas-write":
            _, new = value
            return (Step(Command(args=(b"MULTI",)), _expect("OK")),
                    Step(Command(args=(b"SET", k, new.encode())), self._queued),
                    Step(Command(args=(b"EXEC",)), self._committed, may_apply=True))
        assert phase == "reset", phase
        return (Step(Command(args=(b"DISCARD",)), _answered), Step(Command(args=(b"UNWATCH",)), _answered))

    @staticmethod
    def _queued(msg: Any) -> Outcome:
        if type(msg) is SimpleString and msg.text == "QUEUED":
            return Outcome(OP_OK)
        if type(msg) is SimpleError:
            return Outcome(FAIL)  # refused: nothing queued, nothing written
        return Outcome(INFO)  # run outside a transaction (see the class docstring)

    @staticmethod
    def _committed(msg: Any) -> Outcome:
        """EXEC's answer: ``[OK]`` the SET applied; a nil array: a watched
        key changed, nothing applied; ``-EXECABORT``/``-TRYAGAIN``: nothing
        applied; ``-UNCERTAIN`` or no answer: unknown."""
        t = type(msg)
        if t is Array:
            if msg.items is None:
                return Outcome(FAIL)
            if len(msg.items) == 1 and type(msg.items[0]) is SimpleString and msg.items[0].text == "OK":
                return Outcome(OP_OK)
            return Outcome(INFO)
        if t is SimpleError:
            return Outcome(FAIL) if msg.text.startswith("EXECABORT") else _error(msg)
        return Outcome(INFO)


def kv_scenario(sim: Simulator, *, nodes: int = 5, clients: int = 5, time_ms: float = 20_000.0,
                kinds: tuple[str, ...] = NEMESIS_KINDS, reads: str = "read-index",
                workload: KVWorkload | None = None, liveness_ms: float = 10_000.0,
                check_timeout_s: float | None = CHECK_TIMEOUT_S, replay: str = "", cas_watch: bool = True) -> Scenario:
    """The scenario: ``nodes`` servers ``s1..``, ``clients`` clients
    ``c1..``, the chaos nemesis of ``kinds`` for ``time_ms``, then up to
    ``liveness_ms`` for every client to complete an operation after the
    heal; checkers: Raft safety and linearizability. The default
    ``workload`` mixes all five operations (:data:`DEFAULT_WORKLOAD`);
    ``cas_watch=False`` breaks the cas (see :class:`RedisKVAdapter`).

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
    wl = workload or DEFAULT_WORKLOAD
    adapter = RedisKVAdapter(watch=cas_watch)
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
