"""A small faulty simulation that writes its trace to a file; run as a script
by test_sim_determinism.py under different PYTHONHASHSEED values.

    python trace_probe.py OUT_PATH SEED [--hash-dependent]

``--hash-dependent`` adds one deliberately hash-dependent trace line (the
iteration order of a set of strings), to show the comparison can fail.
"""

from __future__ import annotations

import sys
from typing import Any

from synod.core import Context, Message, Node, pack_record
from synod.sim import DiskFaults, LinkModel, LongTail, Nemesis, Network, Simulator, Tracer


class Put(Message, tag="test.probe.Put"):
    key: str
    value: int


class Replica(Node):
    def __init__(self, hash_dependent: bool) -> None:
        self.hash_dependent = hash_dependent
        self.store: dict[str, int] = {}

    def on_start(self, ctx: Context) -> None:
        ctx.trace("recovered", files=ctx.disk.list())
        if self.hash_dependent:
            ctx.trace("peers_in_set_order", order=list({p for p in ctx.peers}))
        ctx.set_timer("put", 5.0)

    def on_timer(self, ctx: Context, name: str) -> None:
        key = f"k{ctx.rng.randrange(20)}"
        for p in ctx.peers:
            if p != ctx.node_id:
                ctx.send(p, Put(key=key, value=ctx.rng.randrange(1000)))
        ctx.set_timer("put", 5.0 + 10.0 * ctx.rng.random())

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        self.store[msg.key] = msg.value
        ctx.disk.append(f"wal-{msg.key}", pack_record(b"%d" % msg.value))
        if ctx.rng.random() < 0.5:
            ctx.disk.sync()


def main(out_path: str, seed: int, hash_dependent: bool) -> None:
    with open(out_path, "w", encoding="utf-8") as out:
        tracer = Tracer(out)
        net = Network(LinkModel(latency=LongTail(), loss_probability=0.05, duplicate_probability=0.05,
                                reorder_probability=0.1))
        sim = Simulator(seed, network=net, tracer=tracer)
        ids = tuple(f"replica-{name}" for name in ("alpha", "bravo", "charlie", "delta", "echo"))
        for i in ids:
            sim.add_node(i, lambda: Replica(hash_dependent), peers=ids,
                         disk_faults=DiskFaults(torn_append_probability=0.5, sync_latency_ms=2.0))
        nemesis = Nemesis(interval_ms=40.0, crash_probability=0.2, pause_probability=0.2,
                          partition_probability=0.3, clock_probability=0.2, clock_skew_ms_max=30.0,
                          clock_drift_max=0.1, link_fault_probability=0.1, loss_probability_max=0.2)
        nemesis.install(sim)
        nemesis.heal_and_stop(1500.0)
        sim.run(until_ms=2000.0)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), "--hash-dependent" in sys.argv[3:])
