"""Memcached-protocol throughput on 127.0.0.1: synod's cache server against
memcached ``-t 1``, the same through synod's router, and the thundering herd
with and without leases (issue 11 section 6; Nishtala et al., NSDI 2013,
sections 3.2.1 and 3.1).

Side by side in one run, one contender up at a time (started, measured,
stopped), every process on 127.0.0.1, every cache with the same memory
limit (``--memory-limit-mb``, memcached's ``-m``, default 64):

- ``memcached``: Debian's ``/usr/bin/memcached -t 1`` (one worker thread);
- ``synod``: one synod cache server (``synod.memcache.node:factory``, a
  one-node ``LocalCluster``, the same process ``synod memcache serve`` runs);
- ``synod-router``: a synod router (``synod.memcache.router:factory``, one
  pool) in front of 3 synod cache servers, each a process.

One load generator for all: this process, Python asyncio speaking
memcached's text protocol directly on sockets (``get``/``set``), the
request loop of benchmarks/kv_throughput.py. Blocking sockets in threads
(what pymemcache in threads would do, without its overhead) were measured
against memcached as well: about 25 % faster with 1 client, slower with 50
(the GIL); asyncio is used for every cell and every contender. Every key of a 10,000-key space is
written once before the first cell (not timed); then each cell is a
get/set mix (90/10 or 50/50, keys uniform, 100-byte values), a pipeline
depth (1: one request, wait for its reply; 16: 16 requests written at once,
then their 16 replies read) and a number of concurrent clients (1 and 50),
each one connection, for ``--seconds``. Every reply is checked byte for
byte (a get must return the 100-byte value: the key space fits the memory
limit many times over, so a miss is an error), as are ``STORED`` replies; an
error reply, a miss, a dropped connection or a request out 10 s after the
cell ended each count as one error. Latency is per round trip (a whole
pipeline of 16 for depth 16), p50 and p99; ops/s counts requests.

Then the herd (3.2.1): 50 clients keep one hot key cached look-aside; per
round the key is deleted (the invalidation), then all 50 read it at once.
Without leases each does ``get``; on a miss it reads the "database" (a 10
ms sleep, counted) and ``set``s the value. With leases each does
``mg herd:hot v c N30``; the one answered ``W`` (the lease) reads the
database and fills with ``ms herd:hot 100 C<token>``, one answered ``Z`` waits 5 ms and
asks again. The figure is database reads per invalidation; the same on
every contender (memcached 1.6's meta commands give the same leases).

Then, against each contender, libmemcached's C load generator
(``memaslap``, Debian's ``memcaslap``: ``-T 2 -c 50 -X 100``, the same two
mixes, ``--seconds`` each), which is not bound by Python: what the server
itself can do.

Targets (issue 11): synod's server at least half of memcached -t 1's
ops/s under the same client, per cell; the router adding under 30 % to the
p50 latency of a direct server. The load generator shares the machine's
cores with the servers: a memcached figure is bound by this Python client,
not by memcached. Prints a table per part, then as its last line one JSON
object with every figure, the ratios and the targets.

Usage::

    python benchmarks/memcache_throughput.py [--seconds 5] [--quick] [--only memcached,synod,synod-router]
        [--clients 1,50] [--keys 10000] [--herd-rounds 20] [--memory-limit-mb 64]
        [--memcached /usr/bin/memcached] [--memaslap /usr/bin/memcaslap]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.table import Table

from kv_throughput import GRACE_S, Procs, Workload, interrupt, preload, ratio, reap_children, run_cell, wait_until

CONTENDERS = ("memcached", "synod", "synod-router")
MIXES = {"get90_set10": 0.10, "get50_set50": 0.50}  # mix name -> share of sets
PIPELINES = (1, 16)
ROUTED_SERVERS = 3
VALUE_BYTES = 100
REPLY_LINE_BYTES_MAX = 1 << 16
HERD_READERS = 50
HERD_DB_READ_MS = 10.0     # the "database" read a miss (or a lease win) costs
HERD_RETRY_MS = 5.0        # a lease loser (Z) asks again after this long
HERD_RETRIES_MAX = 400     # per reader per round: 2 s of retries is an error
HERD_KEY = b"herd:hot"
ROUTER_P50_OVERHEAD_MAX = 0.30
SYNOD_OVER_MEMCACHED_MIN = 0.5
MEMASLAP_THREADS = 2
MEMASLAP_CONCURRENCY = 50


class WireError(ValueError):
    """A reply that is not the one the request needs (a ValueError: see
    :func:`workload`)."""


# ----------------------------------------------------------------- the memcached text protocol

@dataclass(frozen=True)
class Frames:
    """Pre-encoded requests and their expected replies, per key index."""

    sets: list[bytes]
    gets: list[bytes]
    get_headers: list[bytes]  # b"VALUE <key> 0 100\r\n"
    get_tail: bytes           # value + b"\r\nEND\r\n"

    @classmethod
    def build(cls, keys: int, value: bytes) -> Frames:
        names = [b"key:%05d" % i for i in range(keys)]
        return cls(sets=[b"set %s 0 0 %d\r\n%s\r\n" % (k, len(value), value) for k in names],
                   gets=[b"get %s\r\n" % k for k in names],
                   get_headers=[b"VALUE %s 0 %d\r\n" % (k, len(value)) for k in names],
                   get_tail=value + b"\r\nEND\r\n")


class McConn:
    """One connection: write a batch of requests, then read and check each
    reply in order (:meth:`batch`)."""

    def __init__(self, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.port, self.reader, self.writer = port, reader, writer
        self.rng = random.Random(0)

    @classmethod
    async def open(cls, port: int) -> McConn:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=REPLY_LINE_BYTES_MAX)
        return cls(port, reader, writer)

    async def line(self) -> bytes:
        got = await self.reader.readline()
        if not got:
            raise ConnectionError("connection closed")
        return got

    async def batch(self, frames: Frames, ops: list[tuple[bool, int]]) -> None:
        """``ops``: (is a set, key index) each; raises WireError on the first
        reply that differs from the expected one."""
        self.writer.write(b"".join(frames.sets[i] if is_set else frames.gets[i] for is_set, i in ops))
        for is_set, i in ops:
            line = await self.line()
            if is_set:
                if line != b"STORED\r\n":
                    raise WireError(f"set answered {line[:80]!r}")
            elif line != frames.get_headers[i]:
                raise WireError(f"get key:{i:05d} answered {line[:80]!r}")
            elif (tail := await self.reader.readexactly(len(frames.get_tail))) != frames.get_tail:
                raise WireError(f"get key:{i:05d}: value {tail[:40]!r}")

    def close(self) -> None:
        self.writer.close()


def workload(port: int, frames: Frames, seed: int) -> Workload:
    """kv_throughput's load generator over memcached's protocol. A request
    kind is ``write`` (set key ``i``, the preload) or a cell's
    ``<mix>/P<depth>``: ``depth`` requests of the mix, keys uniform, drawn
    from the connection's own seeded generator (``i`` unused). A reply out
    of step raises WireError, a ValueError, so the loop opens a new
    connection (the old one's later replies would be out of step too)."""
    keys = len(frames.gets)
    conn_seeds = itertools.count(seed * 100_000)
    kinds = {f"{mix}/P{d}": (share, d) for mix, share in MIXES.items() for d in PIPELINES}

    async def open_conn() -> McConn:
        conn = await McConn.open(port)
        conn.rng = random.Random(next(conn_seeds))
        return conn

    async def do(conn: McConn, kind: str, i: int) -> None:
        if kind == "write":
            return await conn.batch(frames, [(True, i)])
        share, depth = kinds[kind]
        rng = conn.rng
        await conn.batch(frames, [(rng.random() < share, rng.randrange(keys)) for _ in range(depth)])

    return Workload(open=open_conn, do=do)


# ----------------------------------------------------------------- the herd (3.2.1)

@dataclass
class Herd:
    db_reads: list[int]          # per round
    round_ms: list[float]        # per round: until every reader has the value
    errors: int = 0
    first_error: str = ""

    def error(self, e: BaseException | str) -> None:
        self.errors += 1
        self.first_error = self.first_error or (str(e) or type(e).__name__)[:200]

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rounds": len(self.db_reads), "readers": HERD_READERS,
                               "db_reads_per_invalidation_mean": round(statistics.fmean(self.db_reads), 2)
                               if self.db_reads else 0.0,
                               "db_reads_per_invalidation_max": max(self.db_reads, default=0),
                               "round_ms_p50": round(statistics.median(self.round_ms), 2) if self.round_ms else 0.0,
                               "errors": self.errors}
        if self.first_error:
            out["first_error"] = self.first_error
        return out


async def read_plain(conn: McConn, value: bytes, reads: list[int]) -> None:
    """One look-aside read of the hot key without leases: ``get``; on a miss
    a database read (appended to ``reads``), then ``set``."""
    conn.writer.write(b"get %s\r\n" % HERD_KEY)
    if (line := await conn.line()) != b"END\r\n":
        if not line.startswith(b"VALUE "):
            raise WireError(f"get answered {line[:80]!r}")
        if (await conn.reader.readexactly(len(value) + 7))[:-7] != value:
            raise WireError("get: another value")
        return
    reads.append(1)
    await asyncio.sleep(HERD_DB_READ_MS / 1000)
    conn.writer.write(b"set %s 0 0 %d\r\n%s\r\n" % (HERD_KEY, len(value), value))
    if (line := await conn.line()) != b"STORED\r\n":
        raise WireError(f"set answered {line[:80]!r}")


async def read_leased(conn: McConn, value: bytes, reads: list[int]) -> None:
    """One look-aside read of the hot key with leases (3.2.1): ``mg N30``;
    the lease (``W``) reads the database (appended to ``reads``) and fills
    with ``ms C<token>``; ``Z`` (another holds the lease) asks again."""
    for _ in range(HERD_RETRIES_MAX):
        conn.writer.write(b"mg %s v c N30\r\n" % HERD_KEY)
        head = (await conn.line()).split()
        if head[:1] != [b"VA"]:
            raise WireError(f"mg answered {b' '.join(head)[:80]!r}")
        data = (await conn.reader.readexactly(int(head[1]) + 2))[:-2]
        flags = head[2:]
        if b"W" in flags:
            token = next(f for f in flags if f.startswith(b"c"))[1:]
            reads.append(1)
            await asyncio.sleep(HERD_DB_READ_MS / 1000)
            conn.writer.write(b"ms %s %d C%s\r\n%s\r\n" % (HERD_KEY, len(value), token, value))
            if (line := await conn.line()) != b"HD\r\n":
                raise WireError(f"ms with the lease answered {line[:80]!r}")
            return
        if b"Z" in flags:
            await asyncio.sleep(HERD_RETRY_MS / 1000)
            continue
        if data != value:
            raise WireError(f"mg hit with {data[:40]!r}")
        return
    raise WireError(f"no value after {HERD_RETRIES_MAX} retries")


async def herd(port: int, value: bytes, leases: bool, rounds: int) -> Herd:
    """``rounds`` invalidations of the hot key, each read by ``HERD_READERS``
    clients at once; database reads per round."""
    out = Herd(db_reads=[], round_ms=[])
    control = await McConn.open(port)
    conns = [await McConn.open(port) for _ in range(HERD_READERS)]
    try:
        for _ in range(rounds):
            control.writer.write(b"delete %s\r\n" % HERD_KEY)
            if (line := await control.line()) not in (b"DELETED\r\n", b"NOT_FOUND\r\n"):
                out.error(f"delete answered {line[:80]!r}")
            reads: list[int] = []
            read = read_leased if leases else read_plain
            t0 = time.perf_counter()
            got = await asyncio.gather(*(asyncio.wait_for(read(c, value, reads), GRACE_S) for c in conns),
                                       return_exceptions=True)
            out.round_ms.append((time.perf_counter() - t0) * 1000)
            for i, g in enumerate(got):
                if isinstance(g, BaseException):
                    out.error(g)
                    conns[i].close()
                    conns[i] = await McConn.open(port)
            out.db_reads.append(len(reads))
    finally:
        for c in (control, *conns):
            c.close()
    return out


# ----------------------------------------------------------------- contenders

class Skipped(Exception):
    """A contender that cannot run on this machine (its binary missing)."""


@dataclass
class Up:
    port: int
    stop: Callable[[], None]
    what: str


def answers_version(port: int) -> bool:
    from synod.harness.memcache_real import version_of

    return version_of(port) is not None


def start_memcached(procs: Procs, binary: str, memory_mb: int) -> Up:
    from synod.runtime import free_ports

    if not os.access(binary, os.X_OK) or Path(binary).is_dir():
        raise Skipped(f"no memcached binary at {binary} (apt-get install memcached)")
    (port,) = free_ports(1)
    user = ["-u", "nobody"] if os.geteuid() == 0 else []  # memcached refuses to run as root without -u
    procs.start("memcached", [binary, "-t", "1", "-m", str(memory_mb), "-p", str(port), "-l", "127.0.0.1", "-U", "0",
                              "-c", "1024", *user])
    wait_until("memcached answering version", lambda: answers_version(port))
    return Up(port, procs.stop_all, f"{binary} -t 1 -m {memory_mb}")


def start_synod(tmp: Path, memory_mb: int, *, routed: bool) -> Up:
    from synod.memcache.node import FACTORY as CACHE_FACTORY
    from synod.memcache.router import FACTORY as ROUTER_FACTORY
    from synod.runtime import ClusterSpec, LocalCluster, NodeSpec, write_config

    caches = [f"mc{j}" for j in range(1, (ROUTED_SERVERS if routed else 1) + 1)]
    nodes = {nid: NodeSpec(factory=CACHE_FACTORY, params={"memory_limit_mb": memory_mb}, client_ports={"memcache": 0})
             for nid in caches}
    if routed:
        nodes["router"] = NodeSpec(factory=ROUTER_FACTORY, params={"pools": {"main": caches}, "default_pool": "main"},
                                   client_ports={"memcache": 0})
    run_dir = tmp / ("synod-router" if routed else "synod")
    _, path = write_config(ClusterSpec(run_dir=run_dir, nodes=nodes, trace=False))
    cl = LocalCluster(path)
    try:
        cl.start()
        ports = {nid: cl.config.nodes[nid].client_ports["memcache"] for nid in cl.node_ids}
        for nid, port in ports.items():
            wait_until(f"{nid} answering version", lambda p=port: answers_version(p))
    except BaseException:
        cl.stop()
        raise
    front = "router" if routed else "mc1"
    what = (f"router -> {ROUTED_SERVERS} cache servers (-m {memory_mb} each)" if routed
            else f"one cache server (-m {memory_mb})")
    return Up(ports[front], cl.stop, what)


def start(name: str, procs: Procs, tmp: Path, args: argparse.Namespace) -> Up:
    if name == "memcached":
        return start_memcached(procs, args.memcached, args.memory_limit_mb)
    return start_synod(tmp, args.memory_limit_mb, routed=name == "synod-router")


def memaslap(binary: str, port: int, tmp: Path, set_share: float, seconds: float) -> dict[str, Any]:
    """``memaslap -T 2 -c 50 -X 100 -t <seconds>s`` (libmemcached's C load
    generator, text protocol) with a config of 16-byte keys, 100-byte values
    and ``set_share`` sets: its TPS, get misses, and the lines of its output
    that say error or fail."""
    cfg = tmp / f"memaslap-{set_share:g}.cfg"
    cfg.write_text(f"key\n16 16 1\nvalue\n{VALUE_BYTES} {VALUE_BYTES} 1\ncmd\n0 {set_share:g}\n1 {1 - set_share:g}\n")
    argv = [binary, "-s", f"127.0.0.1:{port}", "-T", str(MEMASLAP_THREADS), "-c", str(MEMASLAP_CONCURRENCY),
            "-X", str(VALUE_BYTES), "-t", f"{max(1, round(seconds))}s", "-F", str(cfg)]
    got = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    fields = dict(re.findall(r"(\w+): ([\d.]+)", got.stdout))
    if got.returncode != 0 or "TPS" not in fields:
        raise RuntimeError(f"memaslap exited {got.returncode}: {(got.stderr or got.stdout).strip()[-300:]}")
    errors = sum(1 for line in (got.stdout + got.stderr).splitlines() if re.search(r"error|fail", line, re.I))
    return {"ops_per_s": float(fields["TPS"]), "ops": int(fields["Ops"]), "get_misses": int(fields["get_misses"]),
            "errors": errors}


# ----------------------------------------------------------------- the run

async def measure(port: int, frames: Frames, value: bytes, args: argparse.Namespace) -> dict[str, Any]:
    """Preload, a cell per (mix, pipeline depth, clients), then the herd."""
    wl = workload(port, frames, args.seed)
    loaded = await preload(wl, args.keys)
    out: dict[str, Any] = {"preload_s": round(loaded.elapsed_s, 2), "preload_errors": loaded.errors}
    if loaded.first_error:
        out["preload_first_error"] = loaded.first_error
    cells: dict[str, Any] = {}
    for mix in MIXES:
        for depth in PIPELINES:
            for c in args.clients:
                cell = await run_cell(wl, f"{mix}/P{depth}", c, args.seconds, args.keys, args.seed)
                cell.ops *= depth  # run_cell counts round trips
                cells.setdefault(mix, {}).setdefault(f"P{depth}", {})[f"c{c}"] = cell.summary()
    out["cells"] = cells
    out["herd"] = {mode: (await herd(port, value, mode == "leases", args.herd_rounds)).summary()
                   for mode in ("no_leases", "leases")}
    return out


def run_contender(name: str, args: argparse.Namespace, tmp: Path, procs: Procs, console: Console) -> dict[str, Any]:
    value = bytes(random.Random(args.seed).choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(VALUE_BYTES))
    console.print(f"[bold]{name}[/]: starting", highlight=False)
    up = start(name, procs, tmp, args)
    pids = sorted(p.pid for p in psutil.Process().children(recursive=True))
    try:
        n_cells = len(MIXES) * len(PIPELINES) * len(args.clients)
        console.print(f"[bold]{name}[/]: {up.what} on port {up.port}; preload {args.keys:,} keys, {n_cells} cells "
                      f"of {args.seconds:g} s, herd {args.herd_rounds} rounds x 2", highlight=False)
        result = asyncio.run(measure(up.port, Frames.build(args.keys, value), value, args))
        result["server"] = up.what
        if args.memaslap:
            result["memaslap"] = {mix: memaslap(args.memaslap, up.port, tmp, share, args.seconds)
                                  for mix, share in MIXES.items()}
        result["pids"] = pids
        return result
    finally:
        up.stop()


def each_cell(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    return [(mix, f"P{d}", f"c{c}") for mix in MIXES for d in PIPELINES for c in args.clients]


def ratios(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    """Per cell: synod / memcached ops/s (direct and routed), and the
    router's p50 overhead over the direct server ((routed - direct) / direct,
    and routed - direct in ms)."""

    def get(name: str, mix: str, p: str, c: str, what: str) -> float | None:
        return results.get(name, {}).get("cells", {}).get(mix, {}).get(p, {}).get(c, {}).get(what)

    out: dict[str, Any] = {}
    for mix, p, c in each_cell(args):
        cell = f"{mix}_{p}_{c}"
        out[f"synod_over_memcached_{cell}"] = ratio(get("synod", mix, p, c, "ops_per_s"),
                                                    get("memcached", mix, p, c, "ops_per_s"))
        out[f"synod_router_over_memcached_{cell}"] = ratio(get("synod-router", mix, p, c, "ops_per_s"),
                                                           get("memcached", mix, p, c, "ops_per_s"))
        direct, routed = get("synod", mix, p, c, "p50_ms"), get("synod-router", mix, p, c, "p50_ms")
        out[f"router_p50_overhead_{cell}"] = round(routed / direct - 1, 3) if direct and routed else None
        out[f"router_p50_added_ms_{cell}"] = round(routed - direct, 3) if direct and routed else None
    slap = {n: results.get(n, {}).get("memaslap", {}) for n in CONTENDERS}
    for mix in MIXES:
        for name in ("synod", "synod-router"):
            out[f"memaslap_{name.replace('-', '_')}_over_memcached_{mix}"] = ratio(
                slap[name].get(mix, {}).get("ops_per_s"), slap["memcached"].get(mix, {}).get("ops_per_s"))
    return {k: v for k, v in out.items() if v is not None}


def targets(r: dict[str, Any]) -> dict[str, Any]:
    """Issue 11's two targets over every cell measured (None: not measured)."""
    speed = [v for k, v in r.items() if k.startswith("synod_over_memcached_")]
    overhead = [v for k, v in r.items() if k.startswith("router_p50_overhead_")]
    slap = [v for k, v in r.items() if k.startswith("memaslap_synod_over_memcached_")]
    return {
        "memaslap_synod_over_memcached_min": min(slap, default=None),
        "synod_over_memcached_min": min(speed, default=None),
        "synod_over_memcached_target": SYNOD_OVER_MEMCACHED_MIN,
        "synod_at_least_half_of_memcached_every_cell": all(v >= SYNOD_OVER_MEMCACHED_MIN for v in speed) if speed
        else None,
        "router_p50_overhead_max": max(overhead, default=None),
        "router_p50_overhead_target": ROUTER_P50_OVERHEAD_MAX,
        "router_under_30pct_p50_every_cell": all(v < ROUTER_P50_OVERHEAD_MAX for v in overhead) if overhead else None,
    }


def tables(results: dict[str, dict[str, Any]], not_run: dict[str, str], r: dict[str, Any],
           args: argparse.Namespace) -> list[Table]:
    t = Table(title=f"memcached text protocol on 127.0.0.1, {args.seconds:g} s per cell, {VALUE_BYTES}-byte values "
                    f"over {args.keys:,} keys, -m {args.memory_limit_mb}, one asyncio load generator")
    for col in ("contender", "mix", "pipeline", "clients", "ops/s", "p50 ms", "p99 ms", "errors", "synod/memcached",
                "router p50 +"):
        t.add_column(col, justify="left" if col in ("contender", "mix") else "right")
    for name, res in results.items():
        for mix, p, c in each_cell(args):
            s = res["cells"][mix][p][c]
            cell = f"{mix}_{p}_{c}"
            vs = r.get(f"{'synod_router' if name == 'synod-router' else 'synod'}_over_memcached_{cell}")
            over = r.get(f"router_p50_overhead_{cell}") if name == "synod-router" else None
            t.add_row(name, mix.replace("_", " "), p[1:], c[1:], f"{s['ops_per_s']:,.0f}", f"{s['p50_ms']:.3f}",
                      f"{s['p99_ms']:.3f}", str(s["errors"]), "" if vs is None or name == "memcached" else f"{vs:.2f}",
                      "" if over is None else f"{over:+.0%}")
        t.add_section()
    for name, why in not_run.items():
        t.add_row(name, "not run: " + why, "", "", "", "", "", "", "", "")
    h = Table(title=f"Thundering herd (3.2.1): one hot key deleted, then read by {HERD_READERS} clients at once; "
                    f"database read {HERD_DB_READ_MS:g} ms, lease retry {HERD_RETRY_MS:g} ms")
    for col in ("contender", "reads", "rounds", "db reads / invalidation (mean)", "max", "round p50 ms", "errors"):
        h.add_column(col, justify="left" if col in ("contender", "reads") else "right")
    for name, res in results.items():
        for mode, label in (("no_leases", "get / set"), ("leases", "mg N30 / ms C (leases)")):
            s = res["herd"][mode]
            h.add_row(name, label, str(s["rounds"]), f"{s['db_reads_per_invalidation_mean']:.2f}",
                      str(s["db_reads_per_invalidation_max"]), f"{s['round_ms_p50']:.1f}", str(s["errors"]))
    m = Table(title=f"memaslap -T {MEMASLAP_THREADS} -c {MEMASLAP_CONCURRENCY} -X {VALUE_BYTES} "
                    f"-t {max(1, round(args.seconds))}s (libmemcached's C load generator, 16-byte keys)")
    for col in ("contender", "mix", "ops/s", "get misses", "error lines", "/ memcached"):
        m.add_column(col, justify="left" if col in ("contender", "mix") else "right")
    for name, res in results.items():
        for mix, s in res.get("memaslap", {}).items():
            vs = r.get(f"memaslap_{name.replace('-', '_')}_over_memcached_{mix}")
            m.add_row(name, mix.replace("_", " "), f"{s['ops_per_s']:,.0f}", str(s["get_misses"]), str(s["errors"]),
                      "" if vs is None else f"{vs:.2f}")
    return [t, h, m] if m.row_count else [t, h]


def errors_total(results: dict[str, dict[str, Any]]) -> int:
    n = 0
    for res in results.values():
        n += res["preload_errors"] + sum(s["errors"] for mix in res["cells"].values() for p in mix.values()
                                         for s in p.values())
        n += sum(s["errors"] for s in res["herd"].values())
        n += sum(s["errors"] for s in res.get("memaslap", {}).values())
    return n


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=None, help="seconds per cell (default 5; --quick: 0.5)")
    ap.add_argument("--quick", action="store_true", help="0.5 s cells, 2,000 keys, 3 herd rounds (CI smoke)")
    ap.add_argument("--only", default=",".join(CONTENDERS), help=f"contenders, comma-separated, among {CONTENDERS}")
    ap.add_argument("--clients", default="1,50", help="concurrent clients per cell, comma-separated (default 1,50)")
    ap.add_argument("--keys", type=int, default=None, help="key space (default 10,000)")
    ap.add_argument("--herd-rounds", type=int, default=None, help="invalidations per herd mode (default 20)")
    ap.add_argument("--memory-limit-mb", type=int, default=64, help="every cache's -m (default 64)")
    ap.add_argument("--memcached", default=shutil.which("memcached") or "/usr/bin/memcached",
                    help="the memcached binary (default: memcached on PATH, else /usr/bin/memcached)")
    ap.add_argument("--memaslap", default=shutil.which("memaslap") or shutil.which("memcaslap") or "",
                    help="libmemcached's memaslap (Debian: memcaslap); '' skips its table")
    ap.add_argument("--seed", type=int, default=1, help="seed of the key and op choices (default 1)")
    args = ap.parse_args(argv)
    args.only = [n for n in args.only.split(",") if n]
    args.clients = [int(c) for c in args.clients.split(",") if c]
    quick = {"seconds": 0.5, "keys": 2_000, "herd_rounds": 3}
    full = {"seconds": 5.0, "keys": 10_000, "herd_rounds": 20}
    for name, default in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    unknown = [n for n in args.only if n not in CONTENDERS]
    if unknown or not args.only or not args.clients or min(args.clients) < 1 or args.seconds <= 0 or args.keys < 1 \
            or args.herd_rounds < 1 or args.memory_limit_mb < 1:
        ap.error(f"--only among {CONTENDERS} (got {unknown or 'none'}), --clients >= 1, --seconds > 0, --keys >= 1, "
                 "--herd-rounds >= 1, --memory-limit-mb >= 1")
    return args


def leftovers(tmp: Path, started: list[int]) -> list[str]:
    """Processes still alive that this run started (children, the servers'
    pids seen while they ran, or any naming the temp dir)."""
    mine = [p.pid for p in psutil.Process().children(recursive=True)]
    for pid in started:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                mine.append(pid)
        except psutil.NoSuchProcess:
            pass
    named = [p.info["pid"] for p in psutil.process_iter(["pid", "cmdline"]) if str(tmp) in " ".join(p.info["cmdline"]
                                                                                                    or [])]
    return [str(pid) for pid in sorted(set(mine + named))]


def run_all(args: argparse.Namespace, console: Console) -> tuple[dict[str, Any], Path, list[str]]:
    """Every contender in turn, in a temp dir removed at the end: outcome
    (``contenders``, ``skipped``, ``failed``) -> name -> result or reason;
    the temp dir's path; the processes still alive after cleanup."""
    outcomes: dict[str, dict[str, Any]] = {"contenders": {}, "skipped": {}, "failed": {}}
    tmp = Path(tempfile.mkdtemp(prefix="synod-memcache-throughput-"))
    procs = Procs(tmp)
    try:
        for name in args.only:
            kind, got = "contenders", None
            try:
                got = run_contender(name, args, tmp, procs, console)
            except Skipped as e:
                kind, got = "skipped", str(e)
            except Exception as e:
                kind, got = "failed", f"{type(e).__name__}: {e}"[:300]
            finally:
                procs.stop_all()
            outcomes[kind][name] = got
            if kind != "contenders":
                console.print(f"[{'yellow' if kind == 'skipped' else 'red'}]{name} {kind}[/]: {got}", highlight=False)
    finally:
        procs.stop_all()
        reap_children()
        shutil.rmtree(tmp, ignore_errors=True)
    started = [pid for res in outcomes["contenders"].values() for pid in res["pids"]]
    return outcomes, tmp, leftovers(tmp, started)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, interrupt)  # clean up on SIGTERM as on Ctrl-C
    load_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    outcomes, tmp, left = run_all(args, Console(width=160, stderr=True))
    results, skipped, failed = outcomes["contenders"], outcomes["skipped"], outcomes["failed"]
    load_end = " ".join(f"{x:.2f}" for x in os.getloadavg())
    r = ratios(results, args)
    out = Console(width=160)
    for t in tables(results, {**skipped, **failed}, r, args):
        out.print(t)
    goals = targets(r)
    out.print(f"Targets (issue 11): synod >= {SYNOD_OVER_MEMCACHED_MIN:g} x memcached -t 1 in every cell: "
              f"{goals['synod_at_least_half_of_memcached_every_cell']} (lowest {goals['synod_over_memcached_min']}); "
              f"router p50 overhead < {ROUTER_P50_OVERHEAD_MAX:.0%} in every cell: "
              f"{goals['router_under_30pct_p50_every_cell']} (highest {goals['router_p50_overhead_max']}). "
              f"One Python load generator shares {os.cpu_count()} cores with the servers (load average {load_start} "
              f"at the start, {load_end} at the end): memcached's figures are bound by the client.", highlight=False)
    n_errors = errors_total(results)
    summary: dict[str, Any] = {
        "benchmark": "memcache_throughput", "quick": args.quick, "seconds": args.seconds, "clients": args.clients,
        "keys": args.keys, "value_bytes": VALUE_BYTES, "pipelines": list(PIPELINES), "mixes": MIXES,
        "memory_limit_mb": args.memory_limit_mb, "herd_readers": HERD_READERS, "herd_rounds": args.herd_rounds,
        "herd_db_read_ms": HERD_DB_READ_MS, "herd_retry_ms": HERD_RETRY_MS,
        "python": platform.python_version(), "cpus": os.cpu_count(), "loadavg_start": load_start,
        "loadavg_end": load_end, "tmp_dir": str(tmp), "tmp_dir_removed": not tmp.exists(), "processes_left": left,
        "contenders": results, "skipped": skipped, "failed": failed, "errors_total": n_errors,
        "ratios": r, "targets": goals,
    }
    print(json.dumps(summary))
    return 1 if failed or n_errors or left else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as e:
        print(f"memcache_throughput: interrupted ({str(e) or 'Ctrl-C'}); every server stopped, temp dir removed",
              file=sys.stderr)
        sys.exit(130)
