"""Small nodes and helpers shared by the simulator tests (not a test module)."""

from __future__ import annotations

from typing import Any

from synod.core import Context, Message, Node
from synod.sim import Simulator


class Probe(Message, tag="test.sim.Probe"):
    seq: int
    payload: bytes = b""


class Recorder(Node):
    """Logs every message as (local time, src, dst, seq) into ``log`` (a
    list owned by the test)."""

    def __init__(self, log: list) -> None:
        self.log = log

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        self.log.append((ctx.now_ms, src, ctx.node_id, msg.seq))


class Sender(Recorder):
    """On start, sends ``count`` probes to each of ``dsts`` (sizes from ``payload``)."""

    def __init__(self, log: list, dsts: list[str], count: int = 1, payload: bytes = b"") -> None:
        super().__init__(log)
        self.dsts = dsts
        self.count = count
        self.payload = payload

    def on_start(self, ctx: Context) -> None:
        for seq in range(self.count):
            for dst in self.dsts:
                ctx.send(dst, Probe(seq=seq, payload=self.payload))


def all_to_all(sim: Simulator, ids: list[str]) -> list:
    """Add nodes ``ids`` (not started); each sends one probe to every other
    when started. Returns the shared receive log."""
    log: list = []
    for i in ids:
        others = [j for j in ids if j != i]
        sim.add_node(i, lambda others=others: Sender(log, others), peers=tuple(ids), start=False)
    return log


def start_all(sim: Simulator) -> None:
    for node_id in sim.hosts:
        sim.restart(node_id)


def delivered_pairs(log: list) -> set[tuple[str, str]]:
    return {(src, dst) for _, src, dst, _ in log}


class PingPong(Node):
    """Keeps ``k`` messages bouncing with its peers; counts what it receives
    in ``counts`` (owned by the test)."""

    def __init__(self, counts: dict, k: int = 2) -> None:
        self.counts = counts
        self.k = k

    def on_start(self, ctx: Context) -> None:
        peers = [p for p in ctx.peers if p != ctx.node_id]
        for j in range(self.k):
            ctx.send(peers[j % len(peers)], Probe(seq=0))

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        self.counts[ctx.node_id] = self.counts.get(ctx.node_id, 0) + 1
        ctx.send(src, Probe(seq=msg.seq + 1))


class Gossip(Node):
    """Every ``period_ms`` of its own clock sends a probe to a peer chosen by
    ``ctx.rng``; logs (virtual time, src, dst) of each receipt into ``log``.
    Survives any loss (unlike ping-pong), so it measures liveness."""

    def __init__(self, sim: Simulator, log: list, period_ms: float = 10.0) -> None:
        self.sim = sim
        self.log = log
        self.period_ms = period_ms
        self.sent = 0

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer("tick", self.period_ms)

    def on_timer(self, ctx: Context, name: str) -> None:
        peers = [p for p in ctx.peers if p != ctx.node_id]
        self.sent += 1
        ctx.send(peers[ctx.rng.randrange(len(peers))], Probe(seq=self.sent))
        ctx.set_timer("tick", self.period_ms)

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        self.log.append((self.sim.now_ms, src, ctx.node_id))
