"""ZooKeeper-protocol throughput on 127.0.0.1: a 3-server synod.zk ensemble
against a 3-server Apache ZooKeeper 3.8 (issue 12 section 5).

Side by side in one run, one ensemble up at a time (started, measured,
stopped), every process on 127.0.0.1:

- ``zookeeper``: Debian's ``zookeeper`` package (3.8, /usr/share/java/zookeeper.jar),
  3 ``QuorumPeerMain`` JVMs, a zoo.cfg and a myid file per server in a temp
  dir, ``server.N=127.0.0.1:peerport:electionport``; defaults otherwise
  (``forceSync=yes``, written out: the transaction log is fsynced before a
  server acks a proposal, so an acknowledged write is on a quorum's disks);
- ``synod``: 3 synod.zk servers (``synod.zk.server:factory``, a
  ``LocalCluster`` of 3 voters, default params). Zab as the paper has it
  (Junqueira et al., DSN 2011, section IV): a server persists and fsyncs a
  proposal before it sends its ACK (``ZabNode``: persist, ``ctx.disk.sync()``,
  then send), the leader commits on a quorum of ACKs, so here too an
  acknowledged write is fsynced on a quorum.

One load generator for both: ``--processes`` (4) worker processes, each one
session on one connection, worker ``i`` on server ``i mod 3`` (reads are
served by that server; writes are forwarded to the leader, by both
systems). Each speaks ZooKeeper's wire protocol on a plain blocking socket
(a raw wire client, no kazoo): frames built with synod.zk's client helpers
(``connect_frame``, ``request_frame``; the xid patched into a pre-built
frame), replies read with ``read_connect_response`` and ``read_response``,
every reply decoded and checked (its xid in order, err 0, the created path,
a getData's 1 KiB of data), and a ping sent when nothing was written for
a third of the negotiated session timeout, as ZooKeeper's own client does
(ZooKeeper grants the 30 s asked for, within its 2..20 x tickTime of
2,000 ms; synod's default tick of 100 ms caps a session at 2 s). Each keeps ``--outstanding`` (128) requests in
flight: 128 written at once, then each batch of replies read is answered by
as many new requests, written together. One phase per operation, in this
order, each ``--seconds`` long, every worker starting at the same instant:

- ``create``: persistent znodes ``/bench/p<i>/<n>`` with 1 KiB of data,
  world:anyone;
- ``set``: setData (version -1, 1 KiB) over the znodes that worker created,
  in turn;
- ``get``: getData of the same znodes;
- ``exists``: exists (no watch) of the same znodes.

Before them an untimed warm-up (``--warmup`` seconds of creates under
``/warm``) for the JVM's JIT and synod's caches alike. ops/s counts the
replies that arrived within the phase; latency is per request, written to
answered, p50 and p99 over every worker. An error reply, a reply out of
order or unreadable, a dropped connection or no reply for 10 s each count as
an error (a stall ends that worker's phase). Each system's run dir (logs,
data dirs) is kept when an error occurred and its path printed.

The load generator shares the machine's cores with the servers: with 2
cores, the 4 Python workers and the 3 servers compete for CPU, and so do
whatever else runs there (load average printed at the start and the end).

Targets (issue 12): synod >= Apache ZooKeeper on create and on set; reads
reported as measured. Reference figures of the issue (Apache ZK 3.8, 3
nodes, a raw wire client, this kind of machine): create 2,552/s, set
4,037/s, get 14,207/s, exists 19,145/s.

Prints a table, then as its last line one JSON object with every figure,
the ratios synod/ZooKeeper and the targets.

Usage::

    python benchmarks/zk_throughput.py [--seconds 10] [--quick] [--only zookeeper,synod]
        [--processes 4] [--outstanding 128] [--warmup 3]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import shutil
import signal
import socket
import struct
import sys
import tempfile
import time
from array import array
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.table import Table

from kv_throughput import Procs, Skipped, interrupt, ratio, reap_children, wait_until
from memcache_throughput import leftovers

SYSTEMS = ("zookeeper", "synod")
OPS = ("create", "set", "get", "exists")
DATA_BYTES = 1024
SESSION_TIMEOUT_MS = 30_000
STALL_S = 10.0            # no reply this long with requests out: the worker's phase ends in an error
START_MARGIN_S = 1.5      # workers get this long to connect and build frames before the phase starts
NODES_PER_WORKER_MAX = 50_000  # znodes one worker's set/get/exists phases cycle over
RECV_BYTES = 1 << 20
ZK_JAR = Path("/usr/share/java/zookeeper.jar")
ZK_LOG_JARS = (Path("/usr/share/java/slf4j-log4j12.jar"), Path("/usr/share/java/log4j-1.2.jar"))
ZK_IDS = (1, 2, 3)
SYNOD_IDS = ("zk1", "zk2", "zk3")
# Issue 12 section 5: Apache ZK 3.8, 3 nodes, a raw wire client, this kind of machine.
ANCHORS = {"create": 2552.0, "set": 4037.0, "get": 14207.0, "exists": 19145.0}
TARGET_OPS = ("create", "set")   # synod >= ZooKeeper on these
SYNOD_OVER_ZOOKEEPER_MIN = 1.0
_HEADER = struct.Struct(">iqi")  # ReplyHeader: xid, zxid, err
_LEN = struct.Struct(">i")


# ----------------------------------------------------------------- the wire client (worker side)

@dataclass(frozen=True)
class Job:
    """One worker's part of one phase."""

    port: int
    op: str                 # create | set | get | exists
    prefix: str             # its znodes: <prefix>/<n>
    nodes: int              # set/get/exists: znodes 0..nodes-1 exist under prefix
    seconds: float
    outstanding: int
    start_at: float         # time.time() at which every worker starts
    data: bytes


@dataclass
class Result:
    ops: int = 0            # replies within the phase
    errors: int = 0
    first_error: str = ""
    late_replies: int = 0   # replies after the phase ended (drained, not counted)
    latencies_ns: bytes = b""
    created: int = 0        # create: znodes 0..created-1 acknowledged (a gap ends the count)
    started_late_s: float = 0.0
    session_timeout_ms: int = 0  # negotiated

    def error(self, e: BaseException | str) -> None:
        self.errors += 1
        self.first_error = self.first_error or (str(e) or type(e).__name__)[:300]


def _messages() -> Any:
    from synod.zk import messages as m
    return m


def recv_frame(sock: socket.socket, buf: bytearray) -> bytes:
    """One length-prefixed frame (blocking), ``buf`` holding what was read past it."""
    while True:
        if len(buf) >= 4:
            (n,) = _LEN.unpack_from(buf)
            if len(buf) >= 4 + n:
                body = bytes(buf[4:4 + n])
                del buf[:4 + n]
                return body
        chunk = sock.recv(RECV_BYTES)
        if not chunk:
            raise ConnectionError("connection closed by the server")
        buf += chunk


def open_session(port: int) -> tuple[socket.socket, bytearray, int]:
    """A new session on ``port`` (ConnectRequest, ConnectResponse): the
    socket, the bytes read past the response, the negotiated timeout (ms)."""
    from synod.zk import connect_frame, read_connect_response
    from synod.zk.jute import JuteReader

    m = _messages()
    sock = socket.create_connection(("127.0.0.1", port), timeout=STALL_S)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(connect_frame(m.ConnectRequest(protocolVersion=0, lastZxidSeen=0, timeOut=SESSION_TIMEOUT_MS,
                                                sessionId=0, passwd=b"\x00" * 16)))
    buf = bytearray()
    rsp = read_connect_response(JuteReader(recv_frame(sock, buf)))
    if rsp.sessionId == 0 or rsp.timeOut <= 0:
        sock.close()
        raise ConnectionError(f"session refused by 127.0.0.1:{port}: {rsp}")
    return sock, buf, rsp.timeOut


def close_session(sock: socket.socket, buf: bytearray, xid: int) -> None:
    """closeSession, its reply awaited (best effort: the phase is over)."""
    from synod.zk import request_frame

    try:
        sock.sendall(request_frame(xid, _messages().CloseSessionRequest()))
        recv_frame(sock, buf)
    except OSError:
        pass
    finally:
        sock.close()


def call(sock: socket.socket, buf: bytearray, xid: int, req: Any) -> tuple[int, bytes]:
    """One request, its reply: (err, body after the ReplyHeader)."""
    from synod.zk import request_frame

    sock.sendall(request_frame(xid, req))
    body = recv_frame(sock, buf)
    got_xid, _, err = _HEADER.unpack_from(body)
    assert got_xid == xid, f"reply to xid {got_xid}, expected {xid}"
    return err, body[_HEADER.size:]


def _world() -> tuple[Any, ...]:
    m = _messages()
    return (m.ACL(perms=31, id=m.Id(scheme="world", id="anyone")),)


def _request(job: Job, n: int) -> Any:
    m = _messages()
    path = f"{job.prefix}/{n}"
    if job.op == "create":
        return m.CreateRequest(path=path, data=job.data, acl=_world(), flags=0)
    if job.op == "set":
        return m.SetDataRequest(path=path, data=job.data, version=-1)
    if job.op == "get":
        return m.GetDataRequest(path=path, watch=False)
    return m.ExistsRequest(path=path, watch=False)


class _Frames:
    """Request frames with the xid patched in: request ``n`` of the phase is
    ``head + xid + tails[n % len(tails)]`` (create: built per request, its path new)."""

    def __init__(self, job: Job) -> None:
        from synod.zk import request_frame

        self.job = job
        self.request_frame = request_frame
        self.tails: list[bytes] = []
        if job.op != "create":
            if job.nodes < 1:
                raise ValueError(f"{job.op}: no znode under {job.prefix} to work on")
            self.tails = [request_frame(0, _request(job, n))[8:] for n in range(min(job.nodes, NODES_PER_WORKER_MAX))]

    def frame(self, xid: int, n: int) -> bytes:
        if self.job.op == "create":
            return self.request_frame(xid, _request(self.job, n))
        tail = self.tails[n % len(self.tails)]
        return _LEN.pack(len(tail) + 4) + _LEN.pack(xid) + tail


def _checker(job: Job) -> Callable[[int, bytes], None]:
    """Checks one reply body (after its header) of request ``n``; raises ValueError."""
    from synod.zk import read_response
    from synod.zk.jute import JuteReader

    m = _messages()
    cls = {"create": m.CreateResponse, "set": m.SetDataResponse, "get": m.GetDataResponse,
           "exists": m.ExistsResponse}[job.op]

    def check(n: int, body: bytes) -> None:
        rsp = read_response(cls, JuteReader(body))
        if job.op == "create":
            if rsp.path != f"{job.prefix}/{n}":
                raise ValueError(f"create {job.prefix}/{n} answered path {rsp.path!r}")
        elif job.op == "get":
            if rsp.data != job.data:
                raise ValueError(f"getData {job.prefix}/{n % NODES_PER_WORKER_MAX}: other data "
                                 f"({len(rsp.data or b'')} bytes)")
        elif rsp.stat.dataLength != len(job.data):
            raise ValueError(f"{job.op}: stat.dataLength {rsp.stat.dataLength}")

    return check


def _code_name(err: int) -> str:
    from synod.zk.constants import Code

    try:
        return Code(err).name
    except ValueError:
        return "unknown"


class _Pipeline:
    """One worker's session during a phase: requests written in batches,
    replies read in order and checked, pings when nothing was written for
    a third of the negotiated session timeout (as ZooKeeper's ClientCnxn
    does; synod's default tick of 100 ms caps a session at 2 s)."""

    def __init__(self, job: Job, sock: socket.socket, buf: bytearray, session_timeout_ms: int) -> None:
        from synod.zk import request_frame
        from synod.zk.constants import PING_XID

        self.job, self.sock, self.buf, self.res = job, sock, buf, Result()
        self.frames, self.check = _Frames(job), _checker(job)
        self.ping_xid = PING_XID
        self.ping_frame = request_frame(PING_XID, _messages().PingRequest())
        self.ping_every_ns = session_timeout_ms * 1_000_000 // 3
        sock.settimeout(min(STALL_S, session_timeout_ms / 3000))
        self.lat = array("q")
        self.acked = bytearray()  # create: 1 per znode acknowledged
        self.out: deque[tuple[int, int, int]] = deque()  # (xid, n, sent at ns), oldest first
        self.xid = self.n = 0
        self.deadline = self.last_sent = self.last_reply = 0

    def send(self, count: int, now: int) -> None:
        batch = []
        for _ in range(count):
            self.xid += 1
            batch.append(self.frames.frame(self.xid, self.n))
            self.out.append((self.xid, self.n, now))
            self.n += 1
        self.sock.sendall(b"".join(batch))
        self.last_sent = now

    def ping_if_idle(self, now: int) -> None:
        if now - self.last_reply > STALL_S * 1e9:
            raise TimeoutError(f"no reply for {STALL_S:g} s with {len(self.out)} requests out "
                               f"(xid {self.out[0][0]} oldest)")
        if now - self.last_sent >= self.ping_every_ns:
            self.sock.sendall(self.ping_frame)
            self.last_sent = now

    def replies(self, now: int) -> int:
        """Reads the complete replies in ``buf``; how many requests they answered."""
        buf, pos, answered, job = self.buf, 0, 0, self.job
        while len(buf) - pos >= 4:
            (size,) = _LEN.unpack_from(buf, pos)
            if len(buf) - pos - 4 < size:
                break
            got_xid, _, err = _HEADER.unpack_from(buf, pos + 4)
            body = bytes(buf[pos + 4 + _HEADER.size:pos + 4 + size])
            pos += 4 + size
            if got_xid == self.ping_xid:
                continue
            if got_xid < 0:
                raise ValueError(f"unexpected reply with xid {got_xid} (no watch was asked for)")
            want_xid, i, sent = self.out.popleft()
            if got_xid != want_xid:
                raise ValueError(f"reply to xid {got_xid}, expected {want_xid} (out of order)")
            answered += 1
            if err != 0:
                self.res.error(f"{job.op} {job.prefix}/{i}: err {err} ({_code_name(err)})")
                continue
            self.check(i, body)
            if job.op == "create":
                self.acked.extend(b"\x00" * (i + 1 - len(self.acked)))
                self.acked[i] = 1
            if now <= self.deadline:
                self.lat.append(now - sent)
            else:
                self.res.late_replies += 1
        del buf[:pos]
        if answered:
            self.last_reply = now
        return answered

    def run(self) -> None:
        """``outstanding`` requests in flight until the deadline, then the tail drained."""
        perf_ns = time.perf_counter_ns
        t0 = self.last_reply = perf_ns()
        self.deadline = t0 + int(self.job.seconds * 1e9)
        self.send(self.job.outstanding, t0)
        while self.out:
            try:
                chunk = self.sock.recv(RECV_BYTES)
            except TimeoutError:
                self.ping_if_idle(perf_ns())
                continue
            if not chunk:
                raise ConnectionError("connection closed by the server")
            self.buf += chunk
            now = perf_ns()
            answered = self.replies(now)
            if answered and now < self.deadline:
                self.send(answered, now)
            else:
                self.ping_if_idle(now)


def run_job(job: Job) -> Result:
    """One worker's phase: a session, ``outstanding`` requests in flight
    until ``seconds`` after ``start_at``, the tail drained, the session closed."""
    try:
        sock, buf, timeout_ms = open_session(job.port)
        pipe = _Pipeline(job, sock, buf, timeout_ms)
    except (OSError, ValueError, AssertionError) as e:
        res = Result()
        res.error(f"setup: {type(e).__name__}: {e}")
        return res
    res = pipe.res
    res.session_timeout_ms = timeout_ms
    wait = job.start_at - time.time()
    if wait > 0:
        time.sleep(wait)
    else:
        res.started_late_s = round(-wait, 3)
    try:
        pipe.run()
    except (OSError, ValueError, EOFError, AssertionError) as e:  # RemoteProtocolError is a ValueError
        res.error(f"{type(e).__name__}: {e}")
        sock.close()
    else:
        close_session(sock, buf, pipe.xid + 1)
    res.ops = len(pipe.lat)
    res.latencies_ns = pipe.lat.tobytes()
    res.created = pipe.acked.find(0) if 0 in pipe.acked else len(pipe.acked)
    return res


# ----------------------------------------------------------------- the ensembles

@dataclass
class Up:
    """A started ensemble: client ports (server order), its leader, how to stop it."""

    ports: list[int]
    leader: str
    what: str
    run_dir: Path
    stop: Callable[[], None]
    pids: list[int]


def four_letter(port: int, word: bytes) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=2.0) as s:
        s.sendall(word)
        got = b""
        while chunk := s.recv(65536):
            got += chunk
    return got.decode(errors="replace")


def zookeeper_reason() -> str | None:
    """None if Apache ZooKeeper can run here, else why not."""
    if not shutil.which("java"):
        return "java is not on PATH (apt-get install zookeeper)"
    if not ZK_JAR.exists():
        return f"{ZK_JAR} is missing (apt-get install zookeeper)"
    return None


def start_zookeeper(procs: Procs, tmp: Path, zk_jar: Path) -> Up:
    from synod.runtime import free_ports

    if reason := zookeeper_reason() if zk_jar == ZK_JAR else (None if zk_jar.exists() else f"{zk_jar} is missing"):
        raise Skipped(reason)
    ports = free_ports(3 * len(ZK_IDS))
    client = ports[:3]
    servers = "".join(f"server.{sid}=127.0.0.1:{ports[3 + 2 * k]}:{ports[4 + 2 * k]}\n" for k, sid in enumerate(ZK_IDS))
    run_dir = tmp / "zookeeper"
    cp = ":".join(["/etc/zookeeper/conf", str(zk_jar), *(str(j) for j in ZK_LOG_JARS if j.exists())])
    for k, sid in enumerate(ZK_IDS):
        home = run_dir / f"zk{sid}"
        (home / "data").mkdir(parents=True)
        (home / "data" / "myid").write_text(f"{sid}\n")
        cfg = home / "zoo.cfg"
        cfg.write_text(f"tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={home / 'data'}\n"
                       f"clientPort={client[k]}\nclientPortAddress=127.0.0.1\nforceSync=yes\n"
                       "admin.enableServer=false\n4lw.commands.whitelist=ruok,srvr\n" + servers)
        procs.start(f"zookeeper/zk{sid}/server", ["java", f"-Dzookeeper.log.dir={home}",
                                                 "-Dzookeeper.root.logger=INFO,CONSOLE", "-cp", cp,
                                                 "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(cfg)])
    pids = [p.pid for p in procs.procs[-len(ZK_IDS):]]

    def modes() -> dict[int, str] | None:
        got = {}
        for k, sid in enumerate(ZK_IDS):
            text = four_letter(client[k], b"srvr")
            mode = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Mode:")), "")
            got[sid] = mode
        return got if sorted(got.values()) == ["follower", "follower", "leader"] else None

    try:
        got = wait_until("a ZooKeeper leader and 2 followers (srvr)", modes)
        leader = next(f"zk{sid}" for sid, mode in got.items() if mode == "leader")
    except BaseException:
        procs.stop_all()
        raise
    return Up(client, leader, "Apache ZooKeeper 3.8 x3 (QuorumPeerMain, forceSync=yes)", run_dir, procs.stop_all, pids)


def start_synod(tmp: Path) -> Up:
    from synod.runtime.cluster import LocalCluster
    from synod.runtime.config import ClusterSpec, NodeSpec, free_ports, write_config
    from synod.zab.messages import ZabStatus, ZabStatusRequest
    from synod.zk.server import FACTORY

    ports = free_ports(len(SYNOD_IDS))
    nodes = {nid: NodeSpec(factory=FACTORY, params={"voters": list(SYNOD_IDS), "server_index": i + 1},
                           client_ports={"zk": ports[i]}) for i, nid in enumerate(SYNOD_IDS)}
    run_dir = tmp / "synod"
    config, _ = write_config(ClusterSpec(run_dir=run_dir, nodes=nodes, trace=False))
    cl = LocalCluster(config)

    def leader() -> str | None:
        """The established leader, once every server serves clients (isro
        "rw": a follower still synchronizing closes a client's connection,
        as ZooKeeper does)."""
        from synod.harness.zk_real import four_letter_word

        if any(four_letter_word(port, "isro") != "rw" for port in ports):
            return None
        for nid in SYNOD_IDS:
            try:
                s = cl.call(nid, ZabStatusRequest(), timeout_s=2.0)
            except OSError:
                continue
            if isinstance(s, ZabStatus) and s.role == "leading" and s.extra.get("established"):
                return nid
        return None

    before = {p.pid for p in psutil.Process().children(recursive=True)}  # the load generator's workers
    try:
        cl.start(list(SYNOD_IDS))
        nid = wait_until("a synod Zab leader established", leader)
    except BaseException:
        cl.stop()
        raise
    pids = sorted(p.pid for p in psutil.Process().children(recursive=True) if p.pid not in before)
    return Up(ports, nid, "synod.zk x3 (Zab: fsync before ACK)", run_dir, cl.stop, pids)


# ----------------------------------------------------------------- the run

def setup_parents(port: int, parents: list[str]) -> None:
    """Create the phase's parent znodes (sequentially, one session)."""
    m = _messages()
    sock, buf, _ = open_session(port)
    try:
        for xid, path in enumerate(parents, start=1):
            err, _ = call(sock, buf, xid, m.CreateRequest(path=path, data=b"", acl=_world(), flags=0))
            if err != 0:
                raise RuntimeError(f"create {path}: err {err}")
        close_session(sock, buf, len(parents) + 1)
    finally:
        sock.close()


def summarize(results: list[Result], seconds: float) -> dict[str, Any]:
    lat = array("q")
    for r in results:
        lat.frombytes(r.latencies_ns)
    ordered = sorted(lat)

    def pct(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))] / 1e6, 2) if ordered else 0.0

    out: dict[str, Any] = {"ops_per_s": round(len(ordered) / seconds, 1), "ops": len(ordered), "p50_ms": pct(0.50),
                           "p99_ms": pct(0.99), "max_ms": round(ordered[-1] / 1e6, 2) if ordered else 0.0,
                           "errors": sum(r.errors for r in results),
                           "late_replies": sum(r.late_replies for r in results),
                           "started_late_s_max": max(r.started_late_s for r in results),
                           "session_timeout_ms": min(r.session_timeout_ms for r in results)}
    first = next((r.first_error for r in results if r.first_error), "")
    if first:
        out["first_error"] = first
    return out


def phase(pool: Any, up: Up, op: str, prefix: str, nodes: list[int], seconds: float, args: argparse.Namespace,
          data: bytes) -> list[Result]:
    jobs = [Job(port=up.ports[i % len(up.ports)], op=op, prefix=f"{prefix}/p{i}", nodes=nodes[i], seconds=seconds,
                outstanding=args.outstanding, start_at=time.time() + START_MARGIN_S, data=data)
            for i in range(args.processes)]
    return pool.map(run_job, jobs, chunksize=1)


def measure(pool: Any, up: Up, args: argparse.Namespace, console: Console, name: str) -> dict[str, Any]:
    """The warm-up, then a phase per operation: op -> summary."""
    data = bytes(random.Random(args.seed).choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(DATA_BYTES))
    workers = range(args.processes)
    setup_parents(up.ports[0], ["/warm", *(f"/warm/p{i}" for i in workers), "/bench",
                                *(f"/bench/p{i}" for i in workers)])
    time.sleep(0.5)  # the parents applied on every server before the workers' sessions read them
    out: dict[str, Any] = {}
    if args.warmup > 0:
        warm = phase(pool, up, "create", "/warm", [0] * args.processes, args.warmup, args, data)
        out["warmup"] = summarize(warm, args.warmup)
    nodes = [0] * args.processes
    for op in OPS:
        got = phase(pool, up, op, "/bench", nodes, args.seconds, args, data)
        if op == "create":
            nodes = [r.created for r in got]
        out[op] = s = summarize(got, args.seconds)
        console.print(f"[bold]{name}[/] {op}: {s['ops_per_s']:,.0f}/s, p99 {s['p99_ms']:.1f} ms, "
                      f"{s['errors']} errors" + (f" ({s['first_error']})" if s["errors"] else ""), highlight=False)
    out["znodes_created"] = sum(nodes)
    return out


def run_system(name: str, pool: Any, args: argparse.Namespace, tmp: Path, console: Console) -> dict[str, Any]:
    procs = Procs(tmp)
    console.print(f"[bold]{name}[/]: starting", highlight=False)
    up = start_zookeeper(procs, tmp, Path(args.zk_jar)) if name == "zookeeper" else start_synod(tmp)
    try:
        console.print(f"[bold]{name}[/]: {up.what}, leader {up.leader}, client ports {up.ports}; "
                      f"{args.processes} workers x {args.outstanding} outstanding, {args.seconds:g} s per op",
                      highlight=False)
        result = measure(pool, up, args, console, name)
    finally:
        up.stop()
        procs.stop_all()
    result.update(server=up.what, leader=up.leader, pids=up.pids, run_dir=str(up.run_dir))
    return result


def ratios(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    s, z = results.get("synod", {}), results.get("zookeeper", {})
    out: dict[str, Any] = {}
    for op in OPS:
        out[f"synod_over_zookeeper_{op}_ops"] = ratio(s.get(op, {}).get("ops_per_s"), z.get(op, {}).get("ops_per_s"))
        out[f"synod_over_zookeeper_{op}_p99"] = ratio(s.get(op, {}).get("p99_ms"), z.get(op, {}).get("p99_ms"))
        for name in SYSTEMS:
            out[f"{name}_over_anchor_{op}_ops"] = ratio(results.get(name, {}).get(op, {}).get("ops_per_s"), ANCHORS[op])
    return out


def targets(r: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"synod_over_zookeeper_min": SYNOD_OVER_ZOOKEEPER_MIN, "ops": list(TARGET_OPS)}
    for op in TARGET_OPS:
        v = r.get(f"synod_over_zookeeper_{op}_ops")
        out[f"synod_at_least_zookeeper_{op}"] = None if v is None else v >= SYNOD_OVER_ZOOKEEPER_MIN
    return out


def table(results: dict[str, dict[str, Any]], not_run: dict[str, str], r: dict[str, Any],
          args: argparse.Namespace) -> Table:
    t = Table(title=f"ZooKeeper wire protocol on 127.0.0.1, 3 servers each, {args.processes} processes x "
                    f"{args.outstanding} outstanding (raw wire client), {DATA_BYTES}-byte data, "
                    f"{args.seconds:g} s per op")
    for col in ("system", "op", "ops/s", "p50 ms", "p99 ms", "errors", "synod/ZK ops", "synod/ZK p99",
                "issue's ZK ops/s"):
        t.add_column(col, justify="left" if col in ("system", "op") else "right")
    for name, res in results.items():
        for op in OPS:
            s = res[op]
            vs, p99 = r.get(f"synod_over_zookeeper_{op}_ops"), r.get(f"synod_over_zookeeper_{op}_p99")
            t.add_row(name, op, f"{s['ops_per_s']:,.0f}", f"{s['p50_ms']:.1f}", f"{s['p99_ms']:.1f}", str(s["errors"]),
                      "" if vs is None or name != "synod" else f"{vs:.2f}",
                      "" if p99 is None or name != "synod" else f"{p99:.2f}",
                      f"{ANCHORS[op]:,.0f}" if name == "zookeeper" else "")
        t.add_section()
    for name, why in not_run.items():
        t.add_row(name, "not run: " + why, "", "", "", "", "", "", "")
    return t


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=None, help="seconds per operation (default 10; --quick: 1)")
    ap.add_argument("--warmup", type=float, default=None, help="seconds of untimed creates first (default 3; "
                                                               "--quick: 0.5)")
    ap.add_argument("--quick", action="store_true", help="1 s per operation, 0.5 s warm-up, 32 outstanding (CI smoke)")
    ap.add_argument("--only", default=",".join(SYSTEMS), help=f"systems, comma-separated, among {SYSTEMS}")
    ap.add_argument("--processes", type=int, default=4, help="load generator processes, one session each (default 4)")
    ap.add_argument("--outstanding", type=int, default=None, help="requests in flight per process (default 128; "
                                                                  "--quick: 32)")
    ap.add_argument("--zk-jar", default=str(ZK_JAR), help=f"Apache ZooKeeper's jar (default {ZK_JAR})")
    ap.add_argument("--seed", type=int, default=1, help="seed of the data bytes (default 1)")
    args = ap.parse_args(argv)
    args.only = [n for n in args.only.split(",") if n]
    quick = {"seconds": 1.0, "warmup": 0.5, "outstanding": 32}
    full = {"seconds": 10.0, "warmup": 3.0, "outstanding": 128}
    for name, default in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    unknown = [n for n in args.only if n not in SYSTEMS]
    if unknown or not args.only or args.seconds <= 0 or args.warmup < 0 or args.processes < 1 \
            or args.outstanding < 1:
        ap.error(f"--only among {SYSTEMS} (got {unknown or 'none'}), --seconds > 0, --warmup >= 0, "
                 "--processes >= 1, --outstanding >= 1")
    return args


def errors_total(results: dict[str, dict[str, Any]]) -> int:
    return sum(res[op]["errors"] for res in results.values() for op in OPS)


def attempt(run: Callable[[], dict[str, Any]]) -> tuple[str, Any]:
    """(``systems``, its result), (``skipped``, why) or (``failed``, the exception in words)."""
    try:
        return "systems", run()
    except Skipped as e:
        return "skipped", str(e)
    except Exception as e:
        return "failed", f"{type(e).__name__}: {e}"[:500]


def run_all(args: argparse.Namespace, console: Console) -> tuple[dict[str, dict[str, Any]], Path, bool, list[str]]:
    """Every system in turn: outcome (``systems``, ``skipped``, ``failed``)
    -> name -> result or reason; the temp dir (kept after an error); whether
    it was removed; the processes still alive after cleanup."""
    # The workers are forked before any server or thread exists.
    pool = multiprocessing.get_context("fork").Pool(args.processes)
    outcomes: dict[str, dict[str, Any]] = {"systems": {}, "skipped": {}, "failed": {}}
    tmp = Path(tempfile.mkdtemp(prefix="synod-zk-throughput-"))
    try:
        for name in args.only:
            kind, got = attempt(lambda n=name: run_system(n, pool, args, tmp, console))
            outcomes[kind][name] = got
            if kind != "systems":
                console.print(f"[{'yellow' if kind == 'skipped' else 'red'}]{name} {kind}[/]: {got}", highlight=False)
    finally:
        pool.close()
        pool.join()
        reap_children()
    keep = bool(outcomes["failed"]) or errors_total(outcomes["systems"]) > 0
    if keep:
        console.print(f"[red]errors[/]: run dirs and logs kept in {tmp}", highlight=False)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    started = [pid for res in outcomes["systems"].values() for pid in res["pids"]]
    return outcomes, tmp, not tmp.exists(), leftovers(tmp, started)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, interrupt)  # clean up on SIGTERM as on Ctrl-C
    load_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    outcomes, tmp, removed, left = run_all(args, Console(width=160, stderr=True))
    results, skipped, failed = outcomes["systems"], outcomes["skipped"], outcomes["failed"]
    load_end = " ".join(f"{x:.2f}" for x in os.getloadavg())
    r = ratios(results)
    goals = targets(r)
    out = Console(width=160)
    out.print(table(results, {**skipped, **failed}, r, args))
    out.print("Target (issue 12): synod >= Apache ZooKeeper on " + " and ".join(TARGET_OPS) + ": "
              + ", ".join(f"{op} {goals[f'synod_at_least_zookeeper_{op}']} "
                          f"({r.get(f'synod_over_zookeeper_{op}_ops')})" for op in TARGET_OPS)
              + f". Every acknowledged write fsynced on a quorum (ZooKeeper forceSync=yes; synod's Zab fsyncs "
              f"before ACK). One Python load generator ({args.processes} processes) shares {os.cpu_count()} cores "
              f"with the servers (load average {load_start} at the start, {load_end} at the end).", highlight=False)
    n_errors = errors_total(results)
    summary: dict[str, Any] = {
        "benchmark": "zk_throughput", "quick": args.quick, "seconds": args.seconds, "warmup_s": args.warmup,
        "processes": args.processes, "outstanding": args.outstanding, "data_bytes": DATA_BYTES, "ops": list(OPS),
        "client": "raw wire (synod.zk connect_frame/request_frame/read_connect_response/read_response, "
                  "blocking sockets, pipelined)",
        "durability": {"zookeeper": "forceSync=yes: txn log fsynced before ACK, commit on a quorum",
                       "synod": "Zab: log appended and fsynced before ACK, commit on a quorum"},
        "python": platform.python_version(), "cpus": os.cpu_count(), "loadavg_start": load_start,
        "loadavg_end": load_end, "tmp_dir": str(tmp), "tmp_dir_removed": removed, "processes_left": left,
        "systems": results, "skipped": skipped, "failed": failed, "errors_total": n_errors,
        "anchors_zookeeper_ops_per_s": ANCHORS, "ratios": r, "targets": goals,
    }
    print(json.dumps(summary))
    return 1 if failed or n_errors or left else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as e:
        print(f"zk_throughput: interrupted ({str(e) or 'Ctrl-C'}); every server stopped", file=sys.stderr)
        sys.exit(130)
