"""Simulator throughput: message deliveries per second, side by side.

Workload (the same for every model): N nodes; each node starts ``k`` pings to
peers ``(i + j) mod (N - 1)`` of the others (j < k), and every receiver sends
the message straight back to its sender, so N * k messages are always in
flight. Each hop takes a uniform 1-10 ms of virtual time, drawn from a seeded
``random.Random``. A delivery is one message handed to its receiving node.

Models:

- ``synod``: the real node contract: a ``Message`` struct, a ``Node``
  whose ``on_message`` calls ``ctx.send``, the host applying effects, the
  simulator's network model; tracing off.
- ``synod_traced``: the same with a :class:`Tracer` writing JSON lines to
  ``os.devnull`` (two lines per delivery: send and recv).
- ``simpy_idiomatic``: SimPy 4 as its docs teach it: a ``simpy.Store`` per
  node, a process per node reading it, and a process per message in transit.
- ``simpy_lean``: SimPy with bare ``Timeout`` events and callbacks.
- ``bare_heapq``: a heap of (time, seq, dst, src, msg) tuples dispatching to
  a node object's ``on_message``: the floor cost of a pure-Python simulator.

The receiver bounces the message object it got (as an echo reply does), in
every model, so message construction is not part of any figure.

Method: every (model, N) is first calibrated with a short run, then measured
``--repeats`` times (models interleaved, so drift on a shared machine hits all
of them alike), each run sized to take about ``--seconds`` of wall time; the
best run is reported. Setup is not timed. Prints a table, then, as its last
line, one JSON object with every figure and ratio.

Usage::

    python benchmarks/sim_throughput.py [--quick] [--seconds S] [--repeats R]
                                        [--nodes 2,10,100] [--in-flight K]
"""

from __future__ import annotations

import argparse
import gc
import heapq
import itertools
import json
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from typing import Any

import simpy
from rich.console import Console
from rich.table import Table

from synod.core import Context, Message, Node
from synod.sim import LinkModel, Network, Simulator, Tracer, Uniform

SEED = 1
LATENCY_LOW_MS = 1.0
LATENCY_SPAN_MS = 9.0
MEAN_LATENCY_MS = LATENCY_LOW_MS + LATENCY_SPAN_MS / 2

# Targets from the issue: synod (tracing off) >= 3x idiomatic SimPy and
# >= 0.35x the bare heapq loop, at every N.
TARGET_VS_SIMPY_IDIOMATIC = 3.0
TARGET_VS_BARE = 0.35

MODELS = ("synod", "synod_traced", "simpy_idiomatic", "simpy_lean", "bare_heapq")


def initial_pings(n: int, k: int) -> list[tuple[int, int]]:
    """(src, dst) of the messages each node starts with."""
    out = []
    for i in range(n):
        peers = [p for p in range(n) if p != i]
        for j in range(k):
            out.append((i, peers[(i + j) % len(peers)]))
    return out


# -- synod -----------------------------------------------------------------------------

class Ping(Message, tag="bench.Ping"):
    origin: int


class PingNode(Node):
    """Starts its pings; bounces every message back to its sender."""

    def __init__(self, targets: list[str]) -> None:
        self.targets = targets

    def on_start(self, ctx: Context) -> None:
        for dst in self.targets:
            ctx.send(dst, Ping(origin=0))

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        ctx.send(src, msg)


def _synod(n: int, k: int, until_ms: float, traced: bool) -> tuple[int, float]:
    sink = open(os.devnull, "w", encoding="utf-8") if traced else None  # noqa: SIM115
    try:
        tracer = Tracer(sink) if sink is not None else None
        network = Network(LinkModel(latency=Uniform(LATENCY_LOW_MS, LATENCY_LOW_MS + LATENCY_SPAN_MS)))
        sim = Simulator(SEED, network=network, tracer=tracer)
        ids = [f"n{i}" for i in range(n)]
        targets: dict[str, list[str]] = {i: [] for i in ids}
        for src, dst in initial_pings(n, k):
            targets[ids[src]].append(ids[dst])
        for i in ids:
            sim.add_node(i, lambda i=i: PingNode(targets[i]), peers=tuple(ids))
        t0 = time.perf_counter()
        sim.run(until_ms=until_ms)
        return sim.deliveries, time.perf_counter() - t0
    finally:
        if sink is not None:
            sink.close()


def synod(n: int, k: int, until_ms: float) -> tuple[int, float]:
    return _synod(n, k, until_ms, traced=False)


def synod_traced(n: int, k: int, until_ms: float) -> tuple[int, float]:
    return _synod(n, k, until_ms, traced=True)


# -- SimPy, idiomatic ------------------------------------------------------------------------

def simpy_idiomatic(n: int, k: int, until_ms: float) -> tuple[int, float]:
    env = simpy.Environment()
    rnd = random.Random(SEED).random
    stores = [simpy.Store(env) for _ in range(n)]
    delivered = [0]

    def transit(dst: int, item: tuple[int, Any]) -> Any:
        yield env.timeout(LATENCY_LOW_MS + LATENCY_SPAN_MS * rnd())
        stores[dst].put(item)

    def node(i: int) -> Any:
        inbox = stores[i]
        while True:
            src, msg = yield inbox.get()
            delivered[0] += 1
            env.process(transit(src, (i, msg)))

    for i in range(n):
        env.process(node(i))
    for src, dst in initial_pings(n, k):
        env.process(transit(dst, (src, 0)))
    t0 = time.perf_counter()
    env.run(until=until_ms)
    return delivered[0], time.perf_counter() - t0


# -- SimPy, lean --------------------------------------------------------------------------------

def simpy_lean(n: int, k: int, until_ms: float) -> tuple[int, float]:
    env = simpy.Environment()
    rnd = random.Random(SEED).random
    timeout = env.timeout
    delivered = [0]

    def send(src: int, dst: int, msg: Any) -> None:
        timeout(LATENCY_LOW_MS + LATENCY_SPAN_MS * rnd(), (src, dst, msg)).callbacks.append(arrive)

    def arrive(event: Any) -> None:
        src, dst, msg = event.value
        delivered[0] += 1
        send(dst, src, msg)

    for src, dst in initial_pings(n, k):
        send(src, dst, 0)
    t0 = time.perf_counter()
    env.run(until=until_ms)
    return delivered[0], time.perf_counter() - t0


# -- bare heapq ---------------------------------------------------------------------------------

class _BareNode:
    __slots__ = ("node_id", "send")

    def __init__(self, node_id: int, send: Callable[[int, int, Any], None]) -> None:
        self.node_id = node_id
        self.send = send

    def on_message(self, src: int, msg: Any) -> None:
        self.send(self.node_id, src, msg)


def bare_heapq(n: int, k: int, until_ms: float) -> tuple[int, float]:
    rnd = random.Random(SEED).random
    heap: list[tuple] = []
    push, pop = heapq.heappush, heapq.heappop
    next_seq = itertools.count().__next__
    clock = [0.0]

    def send(src: int, dst: int, msg: Any) -> None:
        push(heap, (clock[0] + (LATENCY_LOW_MS + LATENCY_SPAN_MS * rnd()), next_seq(), dst, src, msg))

    nodes = [_BareNode(i, send) for i in range(n)]
    for src, dst in initial_pings(n, k):
        send(src, dst, 0)
    delivered = 0
    t0 = time.perf_counter()
    while True:
        if not heap:
            break
        ev = pop(heap)
        if ev[0] > until_ms:
            push(heap, ev)
            break
        clock[0] = ev[0]
        delivered += 1
        nodes[ev[2]].on_message(ev[3], ev[4])
    return delivered, time.perf_counter() - t0


RUNNERS: dict[str, Callable[[int, int, float], tuple[int, float]]] = {
    "synod": synod,
    "synod_traced": synod_traced,
    "simpy_idiomatic": simpy_idiomatic,
    "simpy_lean": simpy_lean,
    "bare_heapq": bare_heapq,
}


# -- measuring ----------------------------------------------------------------------------------

def virtual_ms_for(deliveries: float, n: int, k: int) -> float:
    """Virtual time in which N * k messages in flight make ``deliveries``."""
    return deliveries * MEAN_LATENCY_MS / (n * k)


def measure(nodes: list[int], k: int, seconds: float, repeats: int) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for n in nodes:
        sized: dict[str, float] = {}
        for model in MODELS:  # calibration, which also warms the code up
            got, dt = RUNNERS[model](n, k, virtual_ms_for(5_000, n, k))
            rate = got / max(dt, 1e-9)
            sized[model] = virtual_ms_for(rate * seconds, n, k)
        best = {model: 0.0 for model in MODELS}
        per_virtual_ms = {}
        for _ in range(repeats):
            for model in MODELS:
                gc.collect()
                got, dt = RUNNERS[model](n, k, sized[model])
                best[model] = max(best[model], got / max(dt, 1e-9))
                per_virtual_ms[model] = got / sized[model]
        row: dict[str, Any] = {model: round(best[model]) for model in MODELS}
        row["ratio_synod_vs_simpy_idiomatic"] = round(best["synod"] / best["simpy_idiomatic"], 3)
        row["ratio_synod_vs_simpy_lean"] = round(best["synod"] / best["simpy_lean"], 3)
        row["ratio_synod_vs_bare"] = round(best["synod"] / best["bare_heapq"], 3)
        row["ratio_traced_vs_untraced"] = round(best["synod_traced"] / best["synod"], 3)
        # Sanity: every model ran the same workload (deliveries per virtual ms
        # agree to within a few percent; they are N * k / 5.5 in expectation).
        row["deliveries_per_virtual_ms"] = {m: round(v, 3) for m, v in per_virtual_ms.items()}
        row["targets_met"] = (row["ratio_synod_vs_simpy_idiomatic"] >= TARGET_VS_SIMPY_IDIOMATIC
                              and row["ratio_synod_vs_bare"] >= TARGET_VS_BARE)
        results[str(n)] = row
    return results


def print_table(results: dict[str, dict[str, Any]], console: Console) -> None:
    ns = list(results)
    table = Table(title="Simulator throughput: message deliveries per second (best run)")
    table.add_column("model")
    for n in ns:
        table.add_column(f"N={n}", justify="right")
    labels = {
        "synod": "synod (tracing off)",
        "synod_traced": "synod (tracing to /dev/null)",
        "simpy_idiomatic": "SimPy 4, idiomatic (Store + process/msg)",
        "simpy_lean": "SimPy 4, lean (Timeout + callbacks)",
        "bare_heapq": "bare heapq loop",
    }
    for model in MODELS:
        table.add_row(labels[model], *[f"{results[n][model]:,}" for n in ns])
    table.add_section()
    for key, label in (
        ("ratio_synod_vs_simpy_idiomatic", f"synod / SimPy idiomatic (target >= {TARGET_VS_SIMPY_IDIOMATIC})"),
        ("ratio_synod_vs_bare", f"synod / bare heapq (target >= {TARGET_VS_BARE})"),
        ("ratio_synod_vs_simpy_lean", "synod / SimPy lean"),
        ("ratio_traced_vs_untraced", "synod traced / untraced"),
    ):
        table.add_row(label, *[f"{results[n][key]:.2f}x" for n in ns])
    table.add_row("targets met", *["yes" if results[n]["targets_met"] else "NO" for n in ns])
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="a few seconds in all: short runs, one repeat (for tests; figures are rough)")
    parser.add_argument("--seconds", type=float, default=None,
                        help="wall time of each measured run (default 1.0; 0.05 with --quick)")
    parser.add_argument("--repeats", type=int, default=None, help="measured runs per model and N (default 3)")
    parser.add_argument("--nodes", default="2,10,100", help="comma-separated cluster sizes")
    parser.add_argument("--in-flight", type=int, default=4, help="messages each node starts (k)")
    args = parser.parse_args(argv)
    seconds = args.seconds if args.seconds is not None else (0.05 if args.quick else 1.0)
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    nodes = [int(x) for x in args.nodes.split(",") if x.strip()]
    if seconds <= 0 or repeats < 1 or args.in_flight < 1 or any(n < 2 for n in nodes):
        parser.error("need --seconds > 0, --repeats >= 1, --in-flight >= 1 and every N >= 2")

    console = Console(stderr=False)
    console.print(f"python {platform.python_version()} ({platform.python_implementation()}), "
                  f"simpy {simpy.__version__}; N * {args.in_flight} messages in flight, "
                  f"uniform {LATENCY_LOW_MS:g}-{LATENCY_LOW_MS + LATENCY_SPAN_MS:g} ms; "
                  f"{repeats} x {seconds:g} s per figure")
    results = measure(nodes, args.in_flight, seconds, repeats)
    print_table(results, console)
    summary = {
        "benchmark": "sim_throughput",
        "unit": "deliveries_per_second",
        "python": platform.python_version(),
        "simpy": simpy.__version__,
        "quick": bool(args.quick),
        "seconds": seconds,
        "repeats": repeats,
        "in_flight_per_node": args.in_flight,
        "nodes": nodes,
        "targets": {"synod_vs_simpy_idiomatic_min": TARGET_VS_SIMPY_IDIOMATIC,
                    "synod_vs_bare_min": TARGET_VS_BARE},
        "results": results,
        "targets_met": all(row["targets_met"] for row in results.values()),
    }
    sys.stdout.flush()
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
