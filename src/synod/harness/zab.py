"""Zab under faults (issue 12 section 1), as a scenario of the shared fault
runner (:mod:`synod.harness.runner`).

``servers`` Zab servers ``z1..`` (voters) and ``observers`` observers
``o1..`` (:class:`~synod.zab.node.ZabNode`, each feeding one
:class:`~synod.zab.checker.ZabChecker`); ``clients`` clients ``c1..`` that
propose unique transactions one at a time to the leader they know (any
server, at first; a server that does not lead names the leader it knows;
an unanswered proposal is retried, so a transaction may be broadcast
twice: Zab promises order, not exactly-once). The nemesis (``kinds``, the
shared :func:`~synod.sim.nemesis.chaos_nemesis`) crashes servers (a crash
loses what was not synced), pauses them, partitions, loses and duplicates
messages and skews clocks; after the heal the run must deliver again
(liveness).

Verdicts: ``zab`` (the checker's properties: integrity, primary
uniqueness, total order, agreement, primary order, primary integrity) and
``acknowledged`` (every transaction a client was told is delivered is
delivered, with its bytes, in the run's one order: a lost acknowledged
write shows here and as an agreement violation).

The unsafe switches of :class:`~synod.zab.zab.ZabConfig` (``unsafe``:
``commit-before-quorum``, ``skip-sync``, ``reuse-epoch``) must each be
caught within a bounded number of seeds (tests/zab/test_zab_sim.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from synod.core import Context, Node
from synod.core.errors import ConfigError
from synod.harness.runner import ILLEGAL, OK, RunResult, Scenario, Verdict, run_simulated
from synod.sim import Simulator, Tracer
from synod.sim.nemesis import chaos_nemesis
from synod.zab.checker import ZabChecker
from synod.zab.messages import Propose, ProposeReply
from synod.zab.node import ZabNode, ZabNodeConfig
from synod.zab.zab import ZabConfig
from synod.zab.zxid import zxid_str

__all__ = ["ZAB_NEMESIS_KINDS", "UNSAFE_OPTIONS", "zab_scenario", "run_zab", "replay_command", "ZabRun", "ZabClient",
           "ChainMachine", "Acknowledgements"]

ZAB_NEMESIS_KINDS: tuple[str, ...] = ("partition", "kill", "pause", "loss", "skew")
UNSAFE_OPTIONS: dict[str, str] = {
    "commit-before-quorum": "unsafe_commit_before_quorum",
    "skip-sync": "unsafe_skip_sync",
    "reuse-epoch": "unsafe_reuse_epoch",
}
TICK_MS = 50.0
CALL_TIMEOUT_MS = 500.0
RETRY_DELAY_MS = 50.0


class ChainMachine:
    """The replicated state of the scenario: a hash chain over the delivered
    transactions (zxid and bytes), so two servers at the same zxid must hold
    the same digest, whether they delivered one by one or restored a
    snapshot (SNAP, or their own after a restart). Every digest is reported
    to ``states`` (zxid -> digest); a second, different one is a violation."""

    def __init__(self, states: dict[int, bytes], conflicts: list[str]) -> None:
        self.states = states
        self.conflicts = conflicts
        self.zxid = 0
        self.digest = b""

    def apply(self, zxid: int, data: bytes) -> bytes | None:
        self.zxid = zxid
        self.digest = hashlib.sha256(self.digest + zxid.to_bytes(8, "big") + data).digest()
        seen = self.states.setdefault(zxid, self.digest)
        if seen != self.digest and len(self.conflicts) < 5:
            self.conflicts.append(f"state: two digests at {zxid_str(zxid)}")
        return None

    def snapshot(self) -> bytes:
        return self.zxid.to_bytes(8, "big") + self.digest

    def restore(self, zxid: int, data: bytes) -> None:
        self.zxid, self.digest = int.from_bytes(data[:8], "big"), data[8:]
        if self.zxid != zxid and len(self.conflicts) < 5:
            self.conflicts.append(f"state: a snapshot labelled {zxid_str(zxid)} holds {zxid_str(self.zxid)}")


@dataclass(slots=True)
class Acknowledgements:
    """The clients' acknowledgements: data -> the zxid they were told."""

    acked: dict[bytes, int]
    last_ack_ms: float = -1.0


class ZabClient(Node):
    """Proposes ``<client>:<n>`` one at a time; follows leader hints."""

    def __init__(self, servers: tuple[str, ...], record: Acknowledgements) -> None:
        self.servers = servers
        self.record = record

    def on_start(self, ctx: Context) -> Any:
        return self._loop(ctx)

    async def _loop(self, ctx: Context) -> None:
        target = self.servers[ctx.rng.randrange(len(self.servers))]
        n = 0
        while True:
            n += 1
            data = f"{ctx.node_id}:{n}".encode()
            while True:
                reply = await ctx.call(target, Propose(data=data), CALL_TIMEOUT_MS)
                if type(reply) is ProposeReply and reply.zxid > 0:
                    self.record.acked[data] = reply.zxid
                    self.record.last_ack_ms = ctx.now_ms
                    break
                if type(reply) is ProposeReply and reply.leader in self.servers and reply.leader != target:
                    target = reply.leader
                else:
                    target = self.servers[ctx.rng.randrange(len(self.servers))]
                    await ctx.sleep(RETRY_DELAY_MS)


def replay_command(seed: int | str, *, servers: int, observers: int, kinds: tuple[str, ...], unsafe: str,
                   time_ms: float, snapshot_every: int) -> str:
    """The ``synod sim zab`` command that replays one run."""
    flags = f" --observers {observers}" if observers else ""
    flags += f" --snapshot-every {snapshot_every}" if snapshot_every else ""
    flags += f" --unsafe {unsafe}" if unsafe else ""
    return (f"synod sim zab --seed {seed} --time {time_ms:g}ms --servers {servers} "
            f"--nemesis {','.join(kinds) or chr(39) * 2}{flags}")


@dataclass(slots=True)
class ZabRun:
    """A scenario's handles, for the caller that reads the run afterwards."""

    checker: ZabChecker
    record: Acknowledgements


def zab_scenario(sim: Simulator, *, servers: int = 3, observers: int = 0, clients: int = 3,
                 kinds: tuple[str, ...] = ("partition", "kill", "pause", "loss"), unsafe: str = "",
                 time_ms: float = 10_000.0, liveness_ms: float = 10_000.0, snapshot_interval_txns: int = 0,
                 out: list[ZabRun] | None = None) -> Scenario:
    """The scenario (see the module docstring).

    Raises:
        ConfigError: an unknown nemesis kind or unsafe option.
    """
    for k in kinds:
        if k not in ZAB_NEMESIS_KINDS:
            raise ConfigError(f"unknown nemesis {k!r} for zab; choose from {', '.join(ZAB_NEMESIS_KINDS)}")
    if unsafe and unsafe not in UNSAFE_OPTIONS:
        raise ConfigError(f"unknown unsafe option {unsafe!r}; choose from {', '.join(UNSAFE_OPTIONS)}")
    voters = tuple(f"z{i}" for i in range(1, servers + 1))
    obs = tuple(f"o{i}" for i in range(1, observers + 1))
    checker = ZabChecker()
    record = Acknowledgements({})
    if out is not None:
        out.append(ZabRun(checker, record))
    flags = {UNSAFE_OPTIONS[unsafe]: True} if unsafe else {}

    states: dict[int, bytes] = {}
    conflicts: list[str] = []

    def server(sid: str) -> Callable[[], Node]:
        cfg = ZabNodeConfig(zab=ZabConfig(server_id=sid, voters=voters, observers=obs, **flags), tick_ms=TICK_MS,
                            snapshot_interval_txns=snapshot_interval_txns)
        return lambda: ZabNode(cfg, lambda: ChainMachine(states, conflicts), observer=checker)

    everyone = voters + obs
    heal_ms: list[float] = []

    def check() -> list[Verdict]:
        problems = checker.violations() + conflicts
        delivered = checker.delivered()
        lost = [d for d, z in record.acked.items() if delivered.get(z) != d]
        return [
            Verdict("zab", ILLEGAL if problems else OK, "; ".join(problems[:3]) or
                    "integrity, total order, agreement, primary order, primary integrity held",
                    detail=checker.summary()),
            Verdict("acknowledged", ILLEGAL if lost else OK,
                    f"{len(lost)} acknowledged transactions not delivered as acknowledged, e.g. {lost[0]!r}"
                    if lost else f"{len(record.acked)} acknowledged transactions all delivered"),
        ]

    nemesis = replace(chaos_nemesis(kinds), targets=everyone) if kinds else None
    return Scenario(
        servers={sid: server(sid) for sid in everyone},
        clients={f"c{i}": (lambda: ZabClient(voters, record)) for i in range(1, clients + 1)},
        nemesis=nemesis,
        safety_ms=time_ms,
        liveness_ms=liveness_ms,
        after_heal=heal_ms.append,
        liveness_done=lambda: bool(heal_ms) and record.last_ack_ms > heal_ms[0],
        stop_early=lambda: bool(checker.problems),
        check=check,
        replay=replay_command("{seed}", servers=servers, observers=observers, kinds=kinds, unsafe=unsafe,
                              time_ms=time_ms, snapshot_every=snapshot_interval_txns),
    )


def run_zab(seed: int, *, tracer: Tracer | None = None, progress: Callable[[float, float], None] | None = None,
            **options: Any) -> tuple[RunResult, ZabRun]:
    """One seeded run of :func:`zab_scenario` (``options`` are its
    keywords); returns the runner's result and the run's checker and
    acknowledgements.

    Raises:
        ConfigError: an unknown nemesis kind or unsafe option.
    """
    out: list[ZabRun] = []
    r = run_simulated(seed, lambda sim: zab_scenario(sim, out=out, **options), tracer=tracer, progress=progress)
    return r, out[0]
