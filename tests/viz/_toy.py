"""A toy cluster for the viewer's tests (not a test module): real simulator
traces with every kind the viewer draws.

Servers ``n1..nN`` take turns as "leader" (one term per ``term_ms``) and
report it with ``state`` events; the leader broadcasts identical heartbeats
(corr 0, no sequence number: the hardest case for pairing). A client ``c1``
writes to the current leader with ``ctx.call`` and records ``client_op``
invoke and ok/info events. The network may lose, duplicate and reorder, and
a nemesis may crash, pause and partition, so every pairing rule is used.
"""

from __future__ import annotations

from typing import Any

from synod.core import Context, Message, Node
from synod.sim import LinkModel, Nemesis, Network, Simulator, Tracer, Uniform


class Heartbeat(Message, tag="test.viz.Heartbeat"):
    term: int


class Put(Message, tag="test.viz.Put"):
    value: int


class PutOk(Message, tag="test.viz.PutOk"):
    value: int


HEARTBEAT_MS = 50.0


def leader_of(term: int, servers: list[str]) -> str:
    return servers[term % len(servers)]


class Server(Node):
    def __init__(self, servers: list[str], term_ms: float) -> None:
        self.servers = servers
        self.term_ms = term_ms
        self.reported: tuple[str, int] | None = None

    def on_start(self, ctx: Context) -> None:
        self.reported = None
        self._report(ctx)
        ctx.set_timer("heartbeat", HEARTBEAT_MS)

    def _term(self, ctx: Context) -> int:
        return int(ctx.now_ms // self.term_ms)

    def _report(self, ctx: Context) -> None:
        term = self._term(ctx)
        role = "leader" if leader_of(term, self.servers) == ctx.node_id else "follower"
        if self.reported != (role, term):
            self.reported = (role, term)
            ctx.trace("state", role=role, term=term)

    def on_timer(self, ctx: Context, name: str) -> None:
        self._report(ctx)
        if self.reported is not None and self.reported[0] == "leader":
            for peer in self.servers:
                if peer != ctx.node_id:
                    ctx.send(peer, Heartbeat(term=self.reported[1]))
        ctx.set_timer("heartbeat", HEARTBEAT_MS)

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        match msg:
            case Put(value=value):
                ctx.trace("apply", value=value)
                ctx.reply(PutOk(value=value))
            case Heartbeat():
                pass


class Client(Node):
    def __init__(self, servers: list[str], term_ms: float, ops: int) -> None:
        self.servers = servers
        self.term_ms = term_ms
        self.ops = ops

    async def on_start(self, ctx: Context) -> None:
        for value in range(self.ops):
            leader = leader_of(int(ctx.now_ms // self.term_ms), self.servers)
            ctx.trace("client_op", type="invoke", process=0, f="write", value=value)
            reply = await ctx.call(leader, Put(value=value), 100.0)
            outcome = "ok" if reply is not None else "info"
            ctx.trace("client_op", type=outcome, process=0, f="write", value=value)
            await ctx.sleep(20.0)


def run_toy(*, seed: int = 1, servers: int = 3, time_ms: float = 3000.0, term_ms: float = 700.0,
            ops: int = 1_000_000, loss: float = 0.05, duplicate: float = 0.05, reorder: float = 0.1,
            nemesis: bool = True) -> tuple[Simulator, list[str]]:
    """Run the toy cluster; returns the simulator and its trace lines."""
    link = LinkModel(latency=Uniform(1.0, 8.0), loss_probability=loss, duplicate_probability=duplicate,
                     reorder_probability=reorder, reorder_delay_ms=20.0)
    tracer = Tracer(keep=True)
    sim = Simulator(seed, network=Network(link), tracer=tracer)
    ids = [f"n{i}" for i in range(1, servers + 1)]
    peers = (*ids, "c1")
    for nid in ids:
        sim.add_node(nid, lambda: Server(ids, term_ms), peers=peers)
    sim.add_node("c1", lambda: Client(ids, term_ms, ops), peers=peers)
    if nemesis:
        Nemesis(interval_ms=300.0, targets=tuple(ids), crash_probability=0.15, restart_delay_ms=250.0,
                pause_probability=0.15, pause_duration_ms=150.0, partition_probability=0.1,
                partition_duration_ms=200.0).install(sim)
    sim.run(until_ms=time_ms)
    assert tracer.lines is not None
    return sim, tracer.lines
