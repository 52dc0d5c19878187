"""synod.kv under faults as real processes, checked (issue 10 part 3).

A 3- or 5-node cluster of KV servers on 127.0.0.1, ``clients`` threads each
with a redis-py connection to a server (any: followers forward writes),
sending ``GET`` and ``APPEND`` of unique tokens (``"[process.n]"``) on a
few keys, one at a time, while the simulator's nemesis (through
:mod:`synod.harness.real`) kills (-9), pauses (SIGSTOP) and partitions the
servers and drops messages between them. Every operation goes into a
Jepsen-shaped history with wall-clock times. Then:

- liveness: after the heal, every client completes an operation;
- linearizability of the history (``kv`` model, per key);
- durability: every server is stopped and started again (all of them, over
  their data directories), and the final value of every key, read through
  the log, must hold every acknowledged append exactly once: an
  acknowledged write lost, or any write applied twice, is a violation.

Replies are read as Jepsen reads them: ``-TRYAGAIN`` is ``fail`` (not
applied); ``-UNCERTAIN``, other errors, timeouts and broken connections are
``info`` (the client then continues as a new process, on a new connection).
"""

from __future__ import annotations

import random
import re
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import redis

from synod.check import KV, check_events
from synod.harness.real import RealRunResult, RealScenario, run_real
from synod.harness.runner import ILLEGAL, OK, UNKNOWN, Verdict
from synod.kv.node import FACTORY
from synod.runtime import LocalCluster, local_spec, write_config
from synod.sim.nemesis import Nemesis
from synod.workload import HistoryRecorder

__all__ = ["run_kv_real", "real_nemesis", "REAL_KINDS"]

REAL_KINDS = ("kill", "pause", "partition", "loss")
OP_TIMEOUT_S = 2.0
KEYS = 24               # many keys, so each key's history stays small enough to check
THINK_S = 0.005         # between one completion and the next invoke
GET_FRACTION = 0.4
_TOKEN = re.compile(r"\[\d+\.\d+\]")


def real_nemesis(kinds: tuple[str, ...], servers: tuple[str, ...]) -> Nemesis:
    """The fault schedule of a real run: every ~1.5 s (jittered), a kill -9
    (restarted 1.5 s later), a 1.5 s SIGSTOP, a partition of any kind for
    2 s, or 2 s of 20% message loss; a minority faulty at once."""
    return Nemesis(
        interval_ms=1500.0, targets=servers,
        crash_probability=0.4 if "kill" in kinds else 0.0, restart_delay_ms=1500.0,
        pause_probability=0.25 if "pause" in kinds else 0.0, pause_duration_ms=1500.0,
        partition_probability=0.4 if "partition" in kinds else 0.0, partition_duration_ms=2000.0,
        link_fault_probability=0.2 if "loss" in kinds else 0.0, loss_probability_max=0.2,
        duplicate_probability_max=0.0, link_fault_duration_ms=2000.0,
    )


class _Client(threading.Thread):
    """One Jepsen-style client: one operation at a time; after an ``info``
    it continues as a new process (process + clients) on a new connection."""

    def __init__(self, index: int, clients: int, ports: list[int], history: HistoryRecorder,
                 lock: threading.Lock, stop: threading.Event, seed: int) -> None:
        super().__init__(daemon=True, name=f"kv-client-{index}")
        self.process = index
        self.clients = clients
        self.ports = ports
        self.history = history
        self.lock = lock
        self.stop_event = stop
        self.rng = random.Random(f"kv-real-client:{seed}:{index}")
        self.conn: redis.Redis | None = None
        self.ops = 0
        self.acked: list[tuple[str, str]] = []   # (key, token) of acknowledged appends

    def _record(self, type_: str, f: str, key: str, value: Any) -> None:
        with self.lock:
            self.history.record(self.process, type_, f, key, value)

    def _connect(self) -> redis.Redis:
        if self.conn is None:
            port = self.ports[self.rng.randrange(len(self.ports))]
            self.conn = redis.Redis(port=port, socket_timeout=OP_TIMEOUT_S, socket_connect_timeout=OP_TIMEOUT_S,
                                    retry=None)
        return self.conn

    def _new_process(self) -> None:
        self.process += self.clients
        if self.conn is not None:
            self.conn.close()
        self.conn = None

    def run(self) -> None:
        while not self.stop_event.is_set():
            key = f"k{self.rng.randrange(KEYS)}"
            self.ops += 1
            if self.rng.random() < GET_FRACTION:
                f, value = "get", None
            else:
                f, value = "append", f"[{self.process}.{self.ops}]"
            self._record("invoke", f, key, value)
            try:
                r = self._connect()
                if f == "get":
                    out = r.get(key)
                    self._record("ok", f, key, None if out is None else out.decode())
                else:
                    r.append(key, value)
                    self._record("ok", f, key, value)
                    self.acked.append((key, value))
            except redis.ResponseError as e:
                # redis-py raises -TRYAGAIN as TryAgainError, without the word.
                if isinstance(e, redis.exceptions.TryAgainError) or str(e).startswith("TRYAGAIN"):
                    self._record("fail", f, key, value)
                    time.sleep(0.05)
                else:
                    self._record("info", f, key, value)
                    self._new_process()
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                self._record("info", f, key, value)
                self._new_process()
                time.sleep(0.05)
            time.sleep(THINK_S)
        if self.conn is not None:
            self.conn.close()


def _read_all(cluster: LocalCluster, ports: list[int], timeout_s: float) -> dict[str, str] | None:
    """Every key's value, read through the leader (retrying while elections
    run); None if no server answered in time."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for port in ports:
            try:
                r = redis.Redis(port=port, socket_timeout=OP_TIMEOUT_S)
                try:
                    return {f"k{i}": (v or b"").decode() for i, v in
                            enumerate(r.mget([f"k{i}" for i in range(KEYS)]))}
                finally:
                    r.close()
            except (redis.ResponseError, redis.ConnectionError, redis.TimeoutError, OSError):
                continue
        time.sleep(0.2)
    return None


def run_kv_real(seed: int, run_dir: str | Path, *, nodes: int = 3, clients: int = 5, safety_s: float = 30.0,
                liveness_s: float = 20.0, kinds: tuple[str, ...] = REAL_KINDS) -> RealRunResult:
    """One real-process run in ``run_dir`` (created); see the module doc.
    The result's ``scenario.data`` holds ``history``, ``acked`` (appends
    acknowledged), ``final`` (values read back after the full restart) and
    ``lost``/``duplicated`` (tokens)."""
    _, path = write_config(local_spec(nodes, FACTORY, run_dir, client_protocols=("resp",), seed=seed,
                                      params={"snapshot_interval_entries": 500}))
    cluster = LocalCluster(path)
    cluster.start()
    try:
        servers = tuple(cluster.node_ids)
        ports = [cluster.config.nodes[n].client_ports["resp"] for n in servers]
        t0 = time.monotonic()
        history = HistoryRecorder(lambda: (time.monotonic() - t0) * 1000.0)
        lock = threading.Lock()
        stop = threading.Event()
        workers = [_Client(i, clients, ports, history, lock, stop, seed) for i in range(clients)]
        data: dict[str, Any] = {"history": history}
        since: dict[str, Any] = {"from": None, "seen": set()}

        def after_heal() -> None:
            with lock:
                since["from"] = len(history.events)

        def liveness_done() -> bool:
            if since["from"] is None:
                return False
            with lock:
                events = history.events[since["from"]:]
            since["seen"].update(e.process % clients for e in events if e.type == "ok")
            return len(since["seen"]) == clients

        def stop_clients() -> None:
            stop.set()
            for w in workers:
                w.join(timeout=OP_TIMEOUT_S * 3)

        def check() -> list[Verdict]:
            out = []
            result = check_events(KV(), history.events, timeout_s=120.0, source=f"real seed {seed}")
            out.append(Verdict("linearizability", {"ok": OK, "illegal": ILLEGAL}.get(result.verdict, UNKNOWN),
                               f"{len(result.operations)} operations, {result.partitions} keys: {result.verdict}",
                               result))
            cluster.stop()
            cluster.start()  # every server again, over its data directory
            final = _read_all(cluster, ports, 60.0)
            acked = [a for w in workers for a in w.acked]
            data.update(acked=acked, final=final)
            if final is None:
                out.append(Verdict("durability", UNKNOWN, "no server answered the final read within 60 s"))
                return out
            lost = [(k, t) for k, t in acked if t not in final.get(k, "")]
            seen: dict[str, int] = {}
            for k, v in final.items():
                for t in _TOKEN.findall(v):
                    seen[f"{k}{t}"] = seen.get(f"{k}{t}", 0) + 1
            duplicated = sorted(t for t, n in seen.items() if n > 1)
            data.update(lost=lost, duplicated=duplicated)
            out.append(Verdict("durability", ILLEGAL if lost or duplicated else OK,
                               f"{len(acked)} acknowledged appends; after a restart of every server "
                               f"{len(lost)} lost, {len(duplicated)} applied twice"))
            return out

        scenario = RealScenario(cluster=cluster, nemesis=replace(real_nemesis(kinds, servers)),
                                start_clients=lambda: [w.start() for w in workers], stop_clients=stop_clients,
                                safety_s=safety_s, liveness_s=liveness_s, liveness_done=liveness_done,
                                after_heal=after_heal, check=check, data=data)
        return run_real(seed, scenario)
    finally:
        cluster.stop()
