"""The real-process fault suite for Raft (issue 8, part 7): one client
session appends tokens to one key of a 3-node ``synod.kv.simple:factory``
cluster while faults hit the processes, then everything is healed and the
final value is read (ReadIndex, thesis 6.4) and checked.

Faults, one every ``interval_s`` in the order the seeded rng picks:

- ``kill``: SIGKILL the leader, restart it;
- ``pause``: SIGSTOP the leader for a second, SIGCONT;
- ``isolate``: cut the leader off from its peers (the transport's fault
  layer), heal;
- ``kill_all``: SIGKILL every node at once, restart them all;
- ``corrupt``: issue 8's steps: a follower down while appends are
  acknowledged, every node down, a byte flipped in the middle of the other
  follower's WAL, both followers restarted while the old leader stays down
  (the corrupt one must report it at WARNING in node.log, keep the file
  aside, and neither may be elected without the acknowledged appends), then
  the old leader;
- ``forge``: a process without the cluster key sends an AppendEntries with
  non-consecutive entries as ``n3`` (refused at the handshake), then a
  process with the key does (the node closes that connection); the node
  must stay up;
- ``garbage``: random bytes on the leader's port; it must stay up;
- ``flood``: ``FLOOD_CONNECTIONS`` idle connections to the leader while
  the client goes on; the client must keep being served.

What must hold (:attr:`FaultReport.ok`): every acknowledged append is in the
final value exactly once; no token twice; tokens in the order the session
issued them; nothing refused as not applied is there; every node process
stays under ``rss_mb_max``; every check of a fault above passed.
"""

from __future__ import annotations

import random
import socket
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psutil

from synod.core import encode
from synod.core.codec import decode
from synod.harness.raft_client import RaftSessionClient, leader_of, status_of
from synod.raft.messages import AppendEntries, Entry, Propose, Read

__all__ = ["FAULT_KINDS", "FaultReport", "run_raft_faults", "FLOOD_CONNECTIONS"]

FAULT_KINDS = ("kill", "pause", "isolate", "kill_all", "corrupt", "forge", "garbage", "flood")
FLOOD_CONNECTIONS = 300
KEY = "faults"
OP_TIMEOUT_S = 10.0
SETTLE_TIMEOUT_S = 30.0
RSS_MB_MAX = 300.0


@dataclass(slots=True)
class FaultReport:
    """What a run saw. ``lost``: acknowledged tokens missing from the final
    value; ``duplicated``: tokens there more than once; ``out_of_order``:
    places where a token follows a later one; ``problems``: failed checks
    of the faults themselves (a node crashed, a corruption not reported)."""

    acked: int = 0
    unknown: int = 0
    not_applied: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    lost: list[int] = field(default_factory=list)
    duplicated: list[int] = field(default_factory=list)
    out_of_order: list[int] = field(default_factory=list)
    applied_not_acked: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    rss_mb_max: float = 0.0
    problems: list[str] = field(default_factory=list)
    final_tokens: int = 0

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.out_of_order or self.problems)

    @property
    def latency_ms_max(self) -> float:
        return max(self.latencies_ms, default=0.0)

    @property
    def latency_ms_p50(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else 0.0

    def summary(self) -> dict[str, Any]:
        return {"ops_acked": self.acked, "ops_unknown": self.unknown, "ops_not_applied": self.not_applied,
                "faults": dict(sorted(self.faults.items())), "lost": len(self.lost),
                "duplicated": len(self.duplicated), "out_of_order": len(self.out_of_order),
                "applied_not_acked": self.applied_not_acked, "latency_ms_p50": round(self.latency_ms_p50, 1),
                "latency_ms_max": round(self.latency_ms_max, 1), "rss_mb_max": round(self.rss_mb_max, 1),
                "problems": self.problems[:10], "ok": self.ok}


class _Appender(threading.Thread):
    """The client: appends "k," for k = 1, 2, ... one at a time, each one
    logical operation of one session (one request id across retries)."""

    def __init__(self, cl: Any, ops_max: int) -> None:
        super().__init__(daemon=True, name="raft-faults-client")
        self.client = RaftSessionClient(cl)
        self.ops_max = ops_max
        self.stop = threading.Event()
        self.outcomes: list[tuple[int, str, float]] = []  # (k, kind, latency ms)

    def run(self) -> None:
        k = 0
        try:
            while not self.stop.is_set() and k < self.ops_max:
                k += 1
                command = encode(["append", KEY, f"{k},"])
                t0 = time.monotonic()
                outcome = self.client.run(lambda rid, c=command: Propose(request_id=rid, command=c), OP_TIMEOUT_S)
                self.outcomes.append((k, outcome.kind, (time.monotonic() - t0) * 1000.0))
        finally:
            self.client.close()

    def acked_since(self, n: int) -> int:
        return sum(1 for _, kind, _ in self.outcomes[n:] if kind == "applied")


def _wait(cond: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


class _Faults:
    def __init__(self, cl: Any, rng: random.Random, report: FaultReport, appender: _Appender) -> None:
        self.cl = cl
        self.rng = rng
        self.report = report
        self.appender = appender

    def target(self) -> str:
        return leader_of(self.cl) or self.rng.choice(self.cl.node_ids)

    def alive(self, node_id: str, why: str) -> None:
        if not _wait(lambda: status_of(self.cl, node_id) is not None, 10.0):
            self.report.problems.append(f"{node_id} stopped answering after {why}")

    def kill(self) -> None:
        n = self.target()
        self.cl.kill(n)
        time.sleep(0.5)
        self.cl.restart(n)

    def pause(self) -> None:
        n = self.target()
        self.cl.pause(n)
        time.sleep(1.0)
        self.cl.resume(n)

    def isolate(self) -> None:
        self.cl.isolate(self.target())
        time.sleep(1.5)
        self.cl.heal()

    def kill_all(self) -> None:
        for n in self.cl.node_ids:
            self.cl.kill(n)
        for n in self.cl.node_ids:
            self.cl.restart(n)

    def corrupt(self) -> None:
        """Issue 8's steps: a follower down while writes are acknowledged;
        every node down; one byte flipped in the middle of the other
        follower's WAL; the two followers restart while the old leader stays
        down (without protocol-aware recovery one of them is elected without
        the acknowledged writes); then the old leader restarts."""
        leader = leader_of(self.cl)
        followers = [n for n in self.cl.node_ids if n != leader]
        if leader is None or len(followers) < 2:
            return
        bad, behind = self.rng.sample(followers, 2)
        self.cl.kill(behind)
        mark = len(self.appender.outcomes)
        _wait(lambda: self.appender.acked_since(mark) >= 20, 10.0)
        self.cl.kill(leader)
        self.cl.kill(bad)
        wal = self.cl.data_dir(bad) / "raft" / "wal"
        data = bytearray(wal.read_bytes()) if wal.exists() else bytearray()
        if len(data) >= 64:
            data[len(data) // 2] ^= 0x20
            wal.write_bytes(bytes(data))
        damaged = self.cl.data_dir(bad) / "raft" / "damaged"
        before = len(list(damaged.glob("wal.*")))
        self.cl.restart(bad)
        self.cl.restart(behind)
        if len(data) >= 64:
            if not _wait(lambda: "WAL corrupt" in self.cl.read_log(bad), 10.0):
                self.report.problems.append(f"{bad}: WAL corruption not reported at WARNING in node.log")
            if len(list(damaged.glob("wal.*"))) <= before:
                self.report.problems.append(f"{bad}: the corrupt WAL was not kept aside")
        time.sleep(2.0)
        self.cl.restart(leader)
        if not _wait(lambda: (s := status_of(self.cl, bad)) is not None and s.leader is not None
                     and s.applied_index > 0, 15.0):
            self.report.problems.append(f"{bad}: not serving after its WAL was repaired")

    def _forged_append(self) -> Any:
        # Entries that skip index 2: "entries must be consecutive".
        return AppendEntries(term=10_000, prev_log_index=0, prev_log_term=0, leader_commit=0,
                             entries=(Entry(term=1, index=1, data=b"x"), Entry(term=1, index=3, data=b"y")))

    def forge(self) -> None:
        from synod.runtime.framing import pack_frame

        n = self.target()
        host, port = self.cl.addr(n)
        with socket.create_connection((host, port), timeout=2.0) as s:  # no key
            try:
                s.sendall(pack_frame("n3", 0, self._forged_append(), 1 << 20))
                s.settimeout(3.0)
                while s.recv(4096):
                    pass
            except OSError:
                pass
        client = self.cl.client(n, client_id="forger")  # with the key: an insider
        try:
            client.send(self._forged_append())
            client.recv(2.0)
        except Exception:  # the node closes the connection: that is the point
            pass
        finally:
            client.close()
        self.alive(n, "a forged AppendEntries")

    def garbage(self) -> None:
        n = self.target()
        with socket.create_connection(self.cl.addr(n), timeout=2.0) as s:
            try:
                s.sendall(self.rng.randbytes(4096))
            except OSError:
                pass
        self.alive(n, "garbage input")

    def flood(self) -> None:
        n = self.target()
        socks = []
        try:
            for _ in range(FLOOD_CONNECTIONS):
                try:
                    socks.append(socket.create_connection(self.cl.addr(n), timeout=1.0))
                except OSError:
                    break
            mark = len(self.appender.outcomes)
            if not _wait(lambda: self.appender.acked_since(mark) >= 3, 15.0):
                self.report.problems.append(f"client not served during a flood of {len(socks)} connections to {n}")
        finally:
            for s in socks:
                s.close()
        self.alive(n, "a connection flood")


def _rss_mb(cl: Any) -> float:
    """The largest resident memory of the cluster's node processes, in MB."""
    largest = 0.0
    for n in cl.node_ids:
        pid = cl.pid(n)
        if pid is None:
            continue
        try:
            largest = max(largest, psutil.Process(pid).memory_info().rss / 2**20)
        except psutil.Error:
            continue
    return largest


def run_raft_faults(cl: Any, *, duration_s: float, seed: int = 1, kinds: tuple[str, ...] = FAULT_KINDS,
                    interval_s: float = 2.0, ops_max: int = 1_000_000, rss_mb_max: float = RSS_MB_MAX,
                    on_fault: Any = None) -> FaultReport:
    """Run the suite against ``cl``, a started 3-node :class:`LocalCluster`
    of ``synod.kv.simple:factory``: faults for ``duration_s`` seconds (every
    kind in ``kinds`` at least once, first in a shuffled order), then heal,
    stop the client, read and check. ``on_fault(kind)`` is called after each."""
    rng = random.Random(f"raft-faults:{seed}")
    report = FaultReport()
    appender = _Appender(cl, ops_max)
    faults = _Faults(cl, rng, report, appender)
    order = list(kinds)
    rng.shuffle(order)
    appender.start()
    start = time.monotonic()
    i = 0
    while i < len(order) or time.monotonic() - start < duration_s:
        time.sleep(interval_s * (0.5 + rng.random()))
        kind = order[i] if i < len(order) else rng.choice(kinds)
        i += 1
        getattr(faults, kind)()
        report.faults[kind] += 1
        report.rss_mb_max = max(report.rss_mb_max, _rss_mb(cl))
        if on_fault is not None:
            on_fault(kind)
        if not appender.is_alive():
            break
    cl.heal()
    for n in cl.node_ids:
        if not cl.is_alive(n):
            cl.restart(n)
    appender.stop.set()
    appender.join(OP_TIMEOUT_S + SETTLE_TIMEOUT_S)
    report.rss_mb_max = max(report.rss_mb_max, _rss_mb(cl))
    if report.rss_mb_max > rss_mb_max:
        report.problems.append(f"a node used {report.rss_mb_max:.0f} MB, over {rss_mb_max:.0f} MB")
    _check(cl, appender, report)
    return report


def _check(cl: Any, appender: _Appender, report: FaultReport) -> None:
    reader = RaftSessionClient(cl)
    try:
        outcome = reader.run(lambda rid: Read(request_id=rid, query=encode(["get", KEY])), SETTLE_TIMEOUT_S)
    finally:
        reader.close()
    if outcome.kind != "applied" or outcome.reply is None:
        report.problems.append(f"final read not served: {outcome.why}")
        return
    value = decode(outcome.reply.result) if outcome.reply.result is not None else ""
    tokens = [int(t) for t in (value or "").split(",") if t]
    report.final_tokens = len(tokens)
    counts = Counter(tokens)
    report.duplicated = sorted(k for k, c in counts.items() if c > 1)
    report.out_of_order = [tokens[j + 1] for j in range(len(tokens) - 1) if tokens[j + 1] <= tokens[j]]
    for k, kind, latency_ms in appender.outcomes:
        if kind == "applied":
            report.acked += 1
            report.latencies_ms.append(latency_ms)
            if counts[k] == 0:
                report.lost.append(k)
        elif kind == "unknown":
            report.unknown += 1
            report.applied_not_acked += counts[k] > 0
        else:
            report.not_applied += 1
            if counts[k]:
                report.problems.append(f"token {k} was refused as not applied but is in the value")

