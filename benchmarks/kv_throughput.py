"""Replicated KV throughput on 127.0.0.1: synod.kv against etcd, PySyncObj and Redis.

Side by side in one run, one contender up at a time (started, measured,
stopped), every process on 127.0.0.1:

- ``synod``: a 3-node synod.kv cluster (``LocalCluster``); a write is fsynced
  on a majority before its reply (group commit), a GET is linearizable
  (ReadIndex);
- ``etcd``: 3 etcd members (Debian etcd-server, installed with apt-get if
  missing), data dirs in a temp dir, default fsync, driven through the v3
  JSON gateway (``POST /v3/kv/put``, ``/v3/kv/range``: linearizable by
  default) over HTTP/1.1 keep-alive;
- ``pysyncobj`` and ``pysyncobj-unbatched``: 3 PySyncObj processes each
  holding a ``ReplDict`` behind the small RESP front of
  benchmarks/_pysyncobj_server.py; PySyncObj's defaults (log in memory, no
  fsync), the second with ``appendEntriesUseBatch=False`` (batched, a
  command waits for the next 100 ms ``appendEntriesPeriod``). Its GETs are
  LOCAL reads of the leader's dict, not linearizable (PySyncObj has no
  ReadIndex or lease read);
- ``redis``: one redis-server, no persistence, the unreplicated upper bound;
  ``redis-fsync``: the same with ``--appendonly yes --appendfsync always``.

One load generator for all: this process, Python asyncio, N concurrent
clients (1 and 50), each one connection doing sequential requests (no
pipelining) of 100-byte values over a 10,000-key space, chosen uniformly,
for ``--seconds`` per cell, always to the leader (synod: the node whose
``INFO replication`` says ``raft_role:leader``; etcd: the member that
``etcdctl endpoint status`` names leader; PySyncObj: the same INFO from its
front). RESP contenders share one tiny RESP client written on asyncio
streams; etcd gets one raw HTTP/1.1 client on the same streams. Before the
first cell every key is written once (not timed), so a GET must return the
100-byte value: a missing value, an error reply, a dropped connection or a
request still out 10 s after the cell ends each count as one error.
Latency is per request, send to reply, p50 and p99.

Then ``redis-benchmark -t set,get -c 50 -d 100 -r 10000 -n 50000 --csv``,
without and with ``-P 16``, against the synod leader's RESP port and the
plain redis-server.

The load generator shares the machine's cores with the servers (and with
whatever else runs there): a Redis figure is bound by this Python client,
not by Redis. Prints two tables, then as its last line one JSON object with
every figure, the anchors and the ratios.

Usage::

    python benchmarks/kv_throughput.py [--seconds 10] [--quick] [--only synod,etcd,...]
        [--clients 1,50] [--keys 10000] [--bench-requests 50000]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import csv
import io
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parent.parent
CONTENDERS = ("synod", "etcd", "pysyncobj", "pysyncobj-unbatched", "redis", "redis-fsync")
READ_KIND = {"synod": "GET (ReadIndex)", "etcd": "range (linearizable)", "pysyncobj": "GET (local read)",
             "pysyncobj-unbatched": "GET (local read)", "redis": "GET", "redis-fsync": "GET"}
WRITE_KIND = {"synod": "SET", "etcd": "put", "pysyncobj": "SET", "pysyncobj-unbatched": "SET", "redis": "SET",
              "redis-fsync": "SET (fsync always)"}
# From issue 10, measured on this kind of machine: (contender, op, clients) -> (ops/s, note).
ANCHORS: dict[tuple[str, str, int], tuple[float, str]] = {
    ("etcd", "write", 50): (3937.0, "3,937/s (p99 27 ms)"),
    ("etcd", "read", 50): (5165.0, "5,165/s"),
    ("pysyncobj", "write", 50): (475.0, "475/s"),
    ("pysyncobj-unbatched", "write", 50): (2366.0, "2,366/s"),
    ("redis", "write", 50): (13924.0, "13,924/s (client-bound)"),
    ("redis-fsync", "write", 50): (12436.0, "12,436/s"),
}
VALUE_BYTES = 100
START_TIMEOUT_S = 60.0
GRACE_S = 10.0            # a request still out this long after its cell ends is an error
PRELOAD_CLIENTS = 50
REPLY_LINE_BYTES_MAX = 1 << 16


# ----------------------------------------------------------------- wire clients

class WireError(Exception):
    """A reply that is not what the request needs (error reply, bad status)."""


class RespConn:
    """One RESP2 connection: a request is a pre-encoded command, a reply is
    parsed only as far as SET and GET need (+, -, :, $)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> RespConn:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=REPLY_LINE_BYTES_MAX)
        return cls(reader, writer)

    async def call(self, frame: bytes) -> bytes | None:
        self.writer.write(frame)
        line = await self.reader.readline()
        kind = line[:1]
        if kind == b"$":
            n = int(line[1:])
            return None if n < 0 else (await self.reader.readexactly(n + 2))[:-2]
        if kind in (b"+", b":"):
            return line[1:-2]
        if not line:
            raise ConnectionError("connection closed")
        raise WireError(line.decode(errors="replace").strip())

    def close(self) -> None:
        self.writer.close()


def resp_frame(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


class HttpConn:
    """One HTTP/1.1 keep-alive connection: a request is pre-encoded bytes,
    the reply is (status, body), Content-Length or chunked."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> HttpConn:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=REPLY_LINE_BYTES_MAX)
        return cls(reader, writer)

    async def call(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("connection closed")
        status = int(status_line.split()[1])
        length, chunked = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
        if not chunked:
            return status, await self.reader.readexactly(length)
        parts = []
        while (size := int((await self.reader.readline()).split(b";")[0], 16)) > 0:
            parts.append((await self.reader.readexactly(size + 2))[:-2])
        while await self.reader.readline() not in (b"\r\n", b""):
            pass  # trailers
        return status, b"".join(parts)

    def close(self) -> None:
        self.writer.close()


# ----------------------------------------------------------------- workloads

@dataclass
class Workload:
    """How to open a connection to the leader and do request ``i`` of a kind
    (``write`` or ``read``) on it; returns when the reply checks out, raises
    otherwise."""

    open: Callable[[], Any]
    do: Callable[[Any, str, int], Any]


def key_name(i: int) -> bytes:
    return b"key:%05d" % i


def resp_workload(port: int, keys: int, value: bytes) -> Workload:
    sets = [resp_frame(b"SET", key_name(i), value) for i in range(keys)]
    gets = [resp_frame(b"GET", key_name(i)) for i in range(keys)]

    async def do(conn: RespConn, kind: str, i: int) -> None:
        if kind == "write":
            if (reply := await conn.call(sets[i])) != b"OK":
                raise WireError(f"SET answered {reply!r}")
        elif (reply := await conn.call(gets[i])) != value:
            raise WireError(f"GET {key_name(i)!r} answered {reply[:40] if reply else reply!r}")

    return Workload(open=lambda: RespConn.open(port), do=do)


def etcd_workload(port: int, keys: int, value: bytes) -> Workload:
    def post(path: str, body: dict[str, str]) -> bytes:
        data = json.dumps(body).encode()
        return (b"POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (path.encode(), port, len(data), data))

    def b64(b: bytes) -> str:
        return base64.b64encode(b).decode()

    puts = [post("/v3/kv/put", {"key": b64(key_name(i)), "value": b64(value)}) for i in range(keys)]
    ranges = [post("/v3/kv/range", {"key": b64(key_name(i))}) for i in range(keys)]
    value_b64 = b64(value).encode()

    async def do(conn: HttpConn, kind: str, i: int) -> None:
        status, body = await conn.call(puts[i] if kind == "write" else ranges[i])
        if status != 200 or (kind == "read" and value_b64 not in body):
            raise WireError(f"HTTP {status}: {body[:120]!r}")

    return Workload(open=lambda: HttpConn.open(port), do=do)


@dataclass
class Cell:
    ops: int = 0
    errors: int = 0
    elapsed_s: float = 0.0
    latencies_ns: list[int] = field(default_factory=list)
    first_error: str = ""

    def error(self, e: BaseException | str) -> None:
        self.errors += 1
        self.first_error = self.first_error or (str(e) or type(e).__name__)[:200]

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ns)

        def pct(q: float) -> float:
            return round(lat[min(len(lat) - 1, int(len(lat) * q))] / 1e6, 3) if lat else 0.0

        out = {"ops_per_s": round(self.ops / self.elapsed_s, 1) if self.elapsed_s else 0.0, "ops": self.ops,
               "p50_ms": pct(0.50), "p99_ms": pct(0.99), "errors": self.errors}
        if self.first_error:
            out["first_error"] = self.first_error
        return out


async def client_loop(wl: Workload, conn: Any, kind: str, deadline: float, rng: random.Random, keys: int,
                      cell: Cell) -> None:
    """Sequential requests on one connection until ``deadline``; a broken
    connection is an error, then a new one."""
    perf_ns = time.perf_counter_ns
    lat = cell.latencies_ns
    try:
        while time.perf_counter() < deadline:
            i = rng.randrange(keys)
            t0 = perf_ns()
            try:
                await wl.do(conn, kind, i)
            except WireError as e:
                cell.error(e)
                continue
            except (OSError, EOFError, ValueError, IndexError) as e:  # IncompleteReadError is an EOFError
                cell.error(e)
                conn.close()
                conn = await wl.open()
                continue
            lat.append(perf_ns() - t0)
    finally:
        conn.close()


async def run_cell(wl: Workload, kind: str, clients: int, seconds: float, keys: int, seed: int) -> Cell:
    cell = Cell()
    conns = [await wl.open() for _ in range(clients)]
    t0 = time.perf_counter()
    deadline = t0 + seconds
    tasks = [asyncio.create_task(client_loop(wl, conn, kind, deadline, random.Random(seed * 1000 + c), keys, cell))
             for c, conn in enumerate(conns)]
    done, pending = await asyncio.wait(tasks, timeout=seconds + GRACE_S)
    cell.elapsed_s = time.perf_counter() - t0
    for t in pending:
        t.cancel()
        cell.error(f"request still out {GRACE_S:g} s after the cell ended")
    for t in done:
        if t.exception() is not None:
            cell.error(t.exception())  # type: ignore[arg-type]
    await asyncio.gather(*pending, return_exceptions=True)
    cell.ops = len(cell.latencies_ns)
    if pending:  # a stuck client's count stops at the deadline
        cell.elapsed_s = seconds
    return cell


async def preload(wl: Workload, keys: int) -> Cell:
    """Write every key once, ``PRELOAD_CLIENTS`` connections in parallel."""
    cell = Cell()

    async def one(c: int) -> None:
        conn = await wl.open()
        try:
            for i in range(c, keys, PRELOAD_CLIENTS):
                try:
                    await wl.do(conn, "write", i)
                except (WireError, OSError, EOFError, ValueError) as e:
                    cell.error(e)
        finally:
            conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(one(c) for c in range(PRELOAD_CLIENTS)))
    cell.elapsed_s = time.perf_counter() - t0
    return cell


# ----------------------------------------------------------------- processes

class Procs:
    """Every server process this run started: each in its own session, with
    its output in the temp dir; ``stop_all`` ends them (SIGTERM, then
    SIGKILL), and psutil makes sure none of their children lingers."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"{name}.log", "wb")  # the child keeps its own copy
        try:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, **kwargs)
        finally:
            log.close()
        self.procs.append(proc)
        return proc

    def log_tail(self, name: str, lines: int = 5) -> str:
        path = self.log_dir / f"{name}.log"
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop_all(self) -> None:
        family = []
        for proc in self.procs:
            try:
                family += psutil.Process(proc.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                pass
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for p in family:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        self.procs.clear()


def reap_children() -> None:
    """Kill whatever child of this process is still alive (the last line of
    defence: a synod node, a server)."""
    children = psutil.Process().children(recursive=True)
    for p in children:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(children, timeout=10)


def wait_until(what: str, check: Callable[[], Any], timeout_s: float = START_TIMEOUT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as e:  # a server not up yet fails in many ways
            last = e
        else:
            if last:
                return last
        time.sleep(0.1)
    raise TimeoutError(f"{what} not within {timeout_s:g} s (last: {last!r})")


def resp_once(port: int, *args: bytes, timeout_s: float = 5.0) -> bytes | None:
    async def go() -> bytes | None:
        conn = await asyncio.wait_for(RespConn.open(port), timeout_s)
        try:
            return await asyncio.wait_for(conn.call(resp_frame(*args)), timeout_s)
        finally:
            conn.close()
    return asyncio.run(go())


def info_fields(port: int) -> dict[str, str]:
    text = (resp_once(port, b"INFO", b"replication") or b"").decode(errors="replace")
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in text.splitlines()) if _}


# ----------------------------------------------------------------- contenders

class Skipped(Exception):
    """A contender that cannot run on this machine (a package missing)."""


@dataclass
class Up:
    """A started contender: its workload, the RESP port of its leader (for
    redis-benchmark; None for etcd) and how to stop it."""

    workload: Workload
    resp_port: int | None
    stop: Callable[[], None]
    leader: str


def start_synod(procs: Procs, tmp: Path, keys: int, value: bytes) -> Up:
    from synod.kv.node import FACTORY
    from synod.runtime import LocalCluster, local_spec, write_config

    _, path = write_config(local_spec(3, FACTORY, tmp / "synod", client_protocols=("resp",)))
    cl = LocalCluster(path)
    try:
        cl.start()
        ports = {nid: cl.config.nodes[nid].client_ports["resp"] for nid in cl.node_ids}

        def leader() -> str | None:
            for nid, port in ports.items():  # a SET answered TRYAGAIN while a leader is elected
                if resp_once(port, b"SET", b"bench:ready", b"1") == b"OK" and info_fields(port).get("raft_role") == "leader":
                    return nid
            return None

        nid = wait_until("a synod leader that commits a SET", leader)
    except BaseException:
        cl.stop()
        raise
    return Up(resp_workload(ports[nid], keys, value), ports[nid], cl.stop, nid)


def ensure_etcd() -> None:
    """Install Debian's etcd-server and etcd-client if etcd is missing (root)."""
    if shutil.which("etcd") and shutil.which("etcdctl"):
        return
    policy = subprocess.run(["apt-cache", "policy", "etcd-server"], capture_output=True, text=True)
    if "Candidate:" not in policy.stdout or "Candidate: (none)" in policy.stdout:
        raise Skipped("etcd-server is not installable here (apt-cache policy etcd-server: no candidate)")
    got = subprocess.run(["apt-get", "install", "-y", "etcd-server", "etcd-client"], capture_output=True, text=True,
                         env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if got.returncode != 0 or not shutil.which("etcd") or not shutil.which("etcdctl"):
        raise Skipped(f"apt-get install etcd-server etcd-client failed: {got.stderr.strip()[-200:]}")


def start_etcd(procs: Procs, tmp: Path, keys: int, value: bytes) -> Up:
    from synod.runtime import free_ports

    ensure_etcd()
    ports = free_ports(6)
    client = {f"e{i}": ports[2 * i] for i in range(3)}
    peer = {f"e{i}": ports[2 * i + 1] for i in range(3)}
    cluster = ",".join(f"{name}=http://127.0.0.1:{p}" for name, p in peer.items())
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD")}
    for name in client:
        procs.start(name, ["etcd", "--name", name, "--data-dir", str(tmp / "etcd" / name),
                           "--listen-client-urls", f"http://127.0.0.1:{client[name]}",
                           "--advertise-client-urls", f"http://127.0.0.1:{client[name]}",
                           "--listen-peer-urls", f"http://127.0.0.1:{peer[name]}",
                           "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer[name]}",
                           "--initial-cluster", cluster, "--initial-cluster-state", "new",
                           "--initial-cluster-token", "synod-bench", "--log-level", "warn"], env=env)
    endpoints = ",".join(f"http://127.0.0.1:{p}" for p in client.values())

    def leader() -> str | None:
        out = subprocess.run(["etcdctl", "--endpoints", endpoints, "endpoint", "status", "-w", "json"],
                             capture_output=True, text=True, timeout=10, env={**env, "ETCDCTL_API": "3"})
        status = json.loads(out.stdout or "[]")
        if len(status) != 3:
            return None
        return next((s["Endpoint"] for s in status if s["Status"]["leader"] == s["Status"]["header"]["member_id"]
                     and s["Status"]["leader"] != 0), None)

    endpoint = wait_until("an etcd leader", leader)
    port = int(endpoint.rsplit(":", 1)[1])
    return Up(etcd_workload(port, keys, value), None, procs.stop_all, next(n for n, p in client.items() if p == port))


def start_pysyncobj(procs: Procs, tmp: Path, keys: int, value: bytes, *, unbatched: bool) -> Up:
    from synod.runtime import free_ports

    try:
        import pysyncobj  # noqa: F401 - only its presence is checked here; the members import it
    except ImportError as e:
        raise Skipped("pysyncobj is not installed (pip install -e '.[bench]')") from e
    ports = free_ports(6)
    raft = [f"127.0.0.1:{p}" for p in ports[:3]]
    resp = ports[3:]
    for i in range(3):
        argv = [sys.executable, str(REPO / "benchmarks" / "_pysyncobj_server.py"), "--self", raft[i],
                "--partners", ",".join(a for a in raft if a != raft[i]), "--resp-port", str(resp[i])]
        procs.start(f"pysyncobj{i}", argv + (["--unbatched"] if unbatched else []))

    def leader() -> int | None:
        for port in resp:
            info = info_fields(port)
            if info.get("raft_role") == "leader" and resp_once(port, b"SET", b"bench:ready", b"1") == b"OK":
                return port
        return None

    port = wait_until("a PySyncObj leader that applies a SET", leader)
    return Up(resp_workload(port, keys, value), port, procs.stop_all, raft[resp.index(port)])


def start_redis(procs: Procs, tmp: Path, keys: int, value: bytes, *, fsync: bool) -> Up:
    from synod.runtime import free_ports

    if not shutil.which("redis-server"):
        raise Skipped("redis-server is not on PATH (apt-get install redis-server)")
    (port,) = free_ports(1)
    data = tmp / ("redis-fsync" if fsync else "redis")
    data.mkdir()
    persistence = ["--appendonly", "yes", "--appendfsync", "always"] if fsync else ["--appendonly", "no"]
    procs.start(data.name, ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                            "--dir", str(data), "--daemonize", "no", *persistence])
    wait_until("redis-server answering PING", lambda: resp_once(port, b"PING") == b"PONG")
    return Up(resp_workload(port, keys, value), port, procs.stop_all, f"127.0.0.1:{port}")


STARTERS: dict[str, Callable[[Procs, Path, int, bytes], Up]] = {
    "synod": start_synod,
    "etcd": start_etcd,
    "pysyncobj": lambda *a: start_pysyncobj(*a, unbatched=False),
    "pysyncobj-unbatched": lambda *a: start_pysyncobj(*a, unbatched=True),
    "redis": lambda *a: start_redis(*a, fsync=False),
    "redis-fsync": lambda *a: start_redis(*a, fsync=True),
}


def redis_benchmark(port: int, pipeline: int, requests: int) -> dict[str, Any]:
    """``redis-benchmark -t set,get -c 50 -d 100 -r 10000 -n N --csv [-P 16]``:
    rps per test, and the error replies it printed."""
    argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-t", "set,get", "-c", "50", "-d", "100",
            "-r", "10000", "-n", str(requests), "--csv"] + (["-P", str(pipeline)] if pipeline > 1 else [])
    got = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    rows = {r[0]: r for r in csv.reader(io.StringIO(got.stdout)) if r and r[0] in ("SET", "GET")}
    errors = sum(1 for line in (got.stdout + got.stderr).splitlines() if "error" in line.lower())
    if got.returncode != 0 or set(rows) != {"SET", "GET"}:
        raise RuntimeError(f"redis-benchmark exited {got.returncode}: {(got.stderr or got.stdout).strip()[-300:]}")
    return {"set_rps": float(rows["SET"][1]), "get_rps": float(rows["GET"][1]), "errors": errors}


# ----------------------------------------------------------------- the run

async def measure(wl: Workload, clients: list[int], seconds: float, keys: int, seed: int) -> dict[str, Any]:
    """Preload, then a cell per (kind, clients): kind -> clients -> summary."""
    loaded = await preload(wl, keys)
    out: dict[str, Any] = {"preload_s": round(loaded.elapsed_s, 2), "preload_errors": loaded.errors}
    if loaded.first_error:
        out["preload_first_error"] = loaded.first_error
    for kind in ("write", "read"):
        out[kind] = {str(c): (await run_cell(wl, kind, c, seconds, keys, seed)).summary() for c in clients}
    return out


def run_contender(name: str, args: argparse.Namespace, tmp: Path, procs: Procs, console: Console) -> dict[str, Any]:
    value = bytes(random.Random(args.seed).choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(VALUE_BYTES))
    console.print(f"[bold]{name}[/]: starting", highlight=False)
    up = STARTERS[name](procs, tmp, args.keys, value)
    try:
        console.print(f"[bold]{name}[/]: leader {up.leader}; preload {args.keys:,} keys, then "
                      f"{2 * len(args.clients)} cells of {args.seconds:g} s", highlight=False)
        result = asyncio.run(measure(up.workload, args.clients, args.seconds, args.keys, args.seed))
        result["leader"] = up.leader
        if name in ("synod", "redis") and up.resp_port is not None:
            if shutil.which("redis-benchmark"):
                result["redis_benchmark"] = {f"P{p}": redis_benchmark(up.resp_port, p, args.bench_requests)
                                             for p in (1, 16)}
            else:
                result["redis_benchmark_skipped"] = "redis-benchmark is not on PATH (apt-get install redis-tools)"
        return result
    finally:
        up.stop()


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def ratios(results: dict[str, dict[str, Any]], top: int) -> dict[str, float]:
    """synod over each other contender and over the anchors, at ``top`` clients."""

    def rate(name: str, kind: str) -> float | None:
        return results.get(name, {}).get(kind, {}).get(str(top), {}).get("ops_per_s")

    out: dict[str, float | None] = {}
    for kind in ("write", "read"):
        for other in ("etcd", "redis", "redis-fsync", "pysyncobj", "pysyncobj-unbatched"):
            out[f"synod_over_{other.replace('-', '_')}_{kind}_c{top}"] = ratio(rate("synod", kind), rate(other, kind))
    for (name, kind, clients), (anchor, _) in ANCHORS.items():
        key = f"{name.replace('-', '_')}_{kind}_c{clients}"
        out[f"synod_over_anchor_{key}"] = ratio(rate("synod", kind), anchor)
        out[f"measured_over_anchor_{key}"] = ratio(rate(name, kind), anchor)
    rb = {n: results.get(n, {}).get("redis_benchmark", {}) for n in ("synod", "redis")}
    for p in ("P1", "P16"):
        for test in ("set", "get"):
            out[f"synod_over_redis_redis_benchmark_{test}_{p}"] = ratio(rb["synod"].get(p, {}).get(f"{test}_rps"),
                                                                       rb["redis"].get(p, {}).get(f"{test}_rps"))
    return {k: v for k, v in out.items() if v is not None}


def tables(results: dict[str, dict[str, Any]], not_run: dict[str, str], args: argparse.Namespace) -> list[Table]:
    t = Table(title=f"KV throughput on 127.0.0.1, {args.seconds:g} s per cell, {VALUE_BYTES}-byte values over "
                    f"{args.keys:,} keys, each client one connection, sequential requests to the leader")
    for col in ("contender", "op", "clients", "ops/s", "p50 ms", "p99 ms", "errors", "anchor (issue 10)"):
        t.add_column(col, justify="left" if col in ("contender", "op", "anchor (issue 10)") else "right")
    for name, r in results.items():
        for kind in ("write", "read"):
            for c in args.clients:
                s = r[kind][str(c)]
                anchor = ANCHORS.get((name, kind, c), (0, ""))[1]
                t.add_row(name, WRITE_KIND[name] if kind == "write" else READ_KIND[name], str(c),
                          f"{s['ops_per_s']:,.0f}", f"{s['p50_ms']:.2f}", f"{s['p99_ms']:.2f}", str(s["errors"]), anchor)
        t.add_section()
    for name, why in not_run.items():
        t.add_row(name, "not run", "", "", "", "", "", why)
    rb = Table(title=f"redis-benchmark -t set,get -c 50 -d 100 -r 10000 -n {args.bench_requests} --csv")
    for col in ("target", "pipeline", "SET rps", "GET rps", "error lines"):
        rb.add_column(col, justify="left" if col == "target" else "right")
    for name, r in results.items():
        for p, s in r.get("redis_benchmark", {}).items():
            rb.add_row(f"{name} ({'leader RESP port' if name == 'synod' else 'redis-server'})", f"-{p}" if p != "P1"
                       else "none", f"{s['set_rps']:,.0f}", f"{s['get_rps']:,.0f}", str(s["errors"]))
    return [t, rb] if rb.row_count else [t]


def errors_total(results: dict[str, dict[str, Any]]) -> int:
    n = 0
    for r in results.values():
        n += r["preload_errors"] + sum(s["errors"] for kind in ("write", "read") for s in r[kind].values())
        n += sum(s["errors"] for s in r.get("redis_benchmark", {}).values())
    return n


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="seconds per cell (default 10)")
    ap.add_argument("--quick", action="store_true", help="2 s per cell and redis-benchmark -n 5000 (CI smoke)")
    ap.add_argument("--only", default=",".join(CONTENDERS), help=f"contenders, comma-separated, among {CONTENDERS}")
    ap.add_argument("--clients", default="1,50", help="concurrent clients per cell, comma-separated (default 1,50)")
    ap.add_argument("--keys", type=int, default=10_000, help="key space (default 10,000)")
    ap.add_argument("--bench-requests", type=int, default=50_000, help="redis-benchmark -n (default 50,000)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the key choices (default 1)")
    args = ap.parse_args(argv)
    args.only = [n for n in args.only.split(",") if n]
    args.clients = [int(c) for c in args.clients.split(",") if c]
    if args.quick:
        args.seconds, args.bench_requests = 2.0, 5_000
    unknown = [n for n in args.only if n not in CONTENDERS]
    if unknown or not args.only or not args.clients or min(args.clients) < 1 or args.seconds <= 0 or args.keys < 1:
        ap.error(f"--only among {CONTENDERS} (got {unknown or 'none'}), --clients >= 1, --seconds > 0, --keys >= 1")
    return args


def interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, interrupt)  # clean up on SIGTERM as on Ctrl-C
    console = Console(width=150, stderr=True)
    results: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    failed: dict[str, str] = {}
    load_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    tmp = Path(tempfile.mkdtemp(prefix="synod-kv-throughput-"))
    procs = Procs(tmp)
    try:
        for name in args.only:
            try:
                results[name] = run_contender(name, args, tmp, procs, console)
            except Skipped as e:
                skipped[name] = str(e)
            except Exception as e:
                failed[name] = f"{type(e).__name__}: {e}"[:300]
                tails = [f"{log.stem}: {procs.log_tail(log.stem, 3)}" for log in sorted(tmp.glob("*.log"))]
                console.print(f"[red]{name} failed[/]: {failed[name]}", *tails, sep="\n", highlight=False)
            finally:
                procs.stop_all()
    finally:
        procs.stop_all()
        reap_children()
        shutil.rmtree(tmp, ignore_errors=True)
    out = Console(width=150)
    for t in tables(results, {**skipped, **failed}, args):
        out.print(t)
    top = max(args.clients)
    out.print(f"Notes: PySyncObj GETs are local reads on its leader (not linearizable) and its log is in memory "
              f"(no fsync); the load generator is one Python process sharing {os.cpu_count()} cores with the servers "
              f"and other work (load average {load_start} at the start), so expect noise, and Redis figures bound "
              "by the client.", highlight=False)
    n_errors = errors_total(results)
    summary: dict[str, Any] = {
        "benchmark": "kv_throughput", "quick": args.quick, "seconds": args.seconds, "clients": args.clients,
        "keys": args.keys, "value_bytes": VALUE_BYTES, "redis_benchmark_requests": args.bench_requests,
        "python": platform.python_version(), "cpus": os.cpu_count(), "loadavg_start": load_start,
        "tmp_dir": str(tmp),
        "contenders": results, "skipped": skipped, "failed": failed, "errors_total": n_errors,
        "anchors": {f"{n.replace('-', '_')}_{k}_c{c}": v for (n, k, c), (v, _) in ANCHORS.items()},
        "ratios": ratios(results, top),
    }
    print(json.dumps(summary))
    return 1 if failed or n_errors else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as e:
        print(f"kv_throughput: interrupted ({str(e) or 'Ctrl-C'}); every server stopped, temp dir removed", file=sys.stderr)
        sys.exit(130)
