"""``synod demo``'s second act: the KV store on Raft, with its leader killed.

A 3-server :mod:`synod.kv` cluster on this machine (real processes, each
serving RESP on its own port), driven by redis-py, the Python Redis client
(it is the ``test`` extra; without it the act is skipped and says so):

1. the cluster starts and elects a leader (Raft section 5.2);
2. a client connected to a *follower* writes keys; the follower forwards
   each write to the leader, which answers once the entry is committed on a
   majority (section 5.3); a few of them are shown;
3. mid-stream the leader is killed with SIGKILL; the client keeps writing
   and retries the same SET when told ``TRYAGAIN`` (nothing applied) or
   ``UNCERTAIN`` (maybe applied: a SET of the same value is safe to repeat);
4. the two survivors elect a new leader; the act says which, and how long
   after the kill it was elected and the next write acknowledged;
5. every key acknowledged before and after is read back from each
   survivor ("all N keys present": leader completeness, section 5.4);
6. the cluster is stopped, and the act checks that none of its processes
   runs.

About 5 s; it stops its processes on every path out.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from synod.cli.kv_cmd import info_replication, wait_for_write

__all__ = ["run_kv_demo", "KvDemo"]

KV_NODES = 3
WRITES_BEFORE_KILL = 150        # keys acknowledged before the leader is killed
WRITES_AFTER_ELECTION = 150     # and after the new leader is elected
DEADLINE_S = 15.0               # for each wait: a leader, an election, the writes
SHOWN = 4                       # writes printed as they happen
RETRY_PAUSE_S = 0.02            # the client's pause before sending a refused write again
POLL_S = 0.01


@dataclass
class KvDemo:
    """What the act saw. Times are ``time.monotonic()`` seconds."""

    leader: str = ""
    term: int = 0
    new_leader: str = ""
    new_term: int = 0
    kill_s: float = 0.0
    elected_s: float = 0.0           # when the survivors first reported the new leader
    acked: dict[str, str] = field(default_factory=dict)
    acked_at: list[float] = field(default_factory=list)  # when each write of the writer thread was acknowledged
    tryagain: int = 0
    uncertain: int = 0
    missing: dict[str, int] = field(default_factory=dict)  # node -> keys missing or wrong
    left_running: list[int] = field(default_factory=list)  # pids still running after the stop

    @property
    def stall_s(self) -> float:
        """The longest gap between two acknowledgements of the writer thread, seconds."""
        times = self.acked_at
        return max((b - a for a, b in zip(times, times[1:])), default=0.0)

    @property
    def ok(self) -> bool:
        return bool(self.new_leader) and not any(self.missing.values()) and not self.left_running


class _Writer(threading.Thread):
    """Writes ``key:<i>`` = ``value-<i>`` through one redis-py connection,
    one at a time, retrying a refused or uncertain SET until acknowledged."""

    def __init__(self, port: int, demo: KvDemo) -> None:
        super().__init__(name="kv-demo-writer", daemon=True)
        import redis

        self.redis = redis
        self.client = redis.Redis(port=port, socket_timeout=5, decode_responses=True)
        self.demo = demo
        self.stop = threading.Event()
        self.error: Exception | None = None

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            key, value = f"key:{i:04d}", f"value-{i}"
            try:
                self.client.set(key, value)
            except self.redis.exceptions.TryAgainError:  # -TRYAGAIN: not applied
                self.demo.tryagain += 1
                time.sleep(RETRY_PAUSE_S)
                continue
            except self.redis.ResponseError as e:
                if not str(e).startswith("UNCERTAIN"):
                    self.error = e
                    return
                self.demo.uncertain += 1  # maybe applied: the same SET again is harmless
                time.sleep(RETRY_PAUSE_S)
                continue
            except self.redis.RedisError as e:
                self.error = e
                return
            self.demo.acked_at.append(time.monotonic())
            self.demo.acked[key] = value
            i += 1


def _wait(what: str, check: Any) -> Any:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() >= deadline:
            raise TimeoutError(f"no {what} within {DEADLINE_S:g} s")
        time.sleep(POLL_S)


def _leader(ports: dict[str, int], *, term_above: int = 0) -> tuple[str, int] | None:
    best = None
    for nid, port in ports.items():
        info = info_replication(port, timeout_s=0.5)
        if info and info.get("raft_role") == "leader" and int(info["raft_term"]) > term_above:
            if best is None or int(info["raft_term"]) > best[1]:
                best = (nid, int(info["raft_term"]))
    return best


def run_kv_demo(console: Console, run_dir: Path) -> bool:
    """Run the act in ``run_dir`` (created; left for the caller to delete)
    and print its story. True if a new leader was elected, every
    acknowledged key was read back from every survivor, and no process of
    the cluster runs afterwards."""
    console.rule("[bold]synod demo, act 2: a Redis-compatible KV store on Raft")
    try:
        import redis  # noqa: F401 - the test extra
    except ImportError:
        console.print("[yellow]skipped[/]: this act drives the cluster with redis-py (pip install 'synod[test]')")
        return True
    from synod.kv.node import FACTORY
    from synod.runtime import LocalCluster, local_spec, write_config

    _, path = write_config(local_spec(KV_NODES, FACTORY, run_dir, client_protocols=("resp",)))
    cl = LocalCluster(path)
    demo = KvDemo()
    try:
        _story(console, cl, demo)
    except (TimeoutError, OSError) as e:
        console.print(f"[red]the KV act failed[/]: {e}; node logs in {run_dir}")
        demo.new_leader = ""
    finally:
        pids = [p for p in (cl.pid(nid) for nid in cl.node_ids) if p is not None]
        cl.stop()
        demo.left_running = _still_running(pids)
    if demo.left_running:
        console.print(f"[red]processes still running after the stop: {demo.left_running}[/]")
    else:
        console.print(f"stopped the {KV_NODES} servers; none of the cluster's processes runs")
    return demo.ok


def _still_running(pids: list[int]) -> list[int]:
    import psutil

    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            continue
    return alive


def _story(console: Console, cl: Any, demo: KvDemo) -> None:
    t0 = time.monotonic()
    cl.start()
    ports = {nid: cl.config.nodes[nid].client_ports["resp"] for nid in cl.node_ids}
    wait_for_write(ports, DEADLINE_S)
    demo.leader, demo.term = _wait("leader", lambda: _leader(ports))
    console.print(f"{KV_NODES} KV servers on 127.0.0.1, RESP ports {', '.join(map(str, ports.values()))} "
                  f"(any Redis client: redis-cli -p {ports[demo.leader]}); {demo.leader} leads (term {demo.term}) "
                  f"{time.monotonic() - t0:.1f} s after the start")
    follower = next(nid for nid in cl.node_ids if nid != demo.leader)
    console.print(f"redis-py connects to {follower}, a follower: it forwards each write to the leader, which "
                  "answers once a majority has the entry on disk")
    writer = _Writer(ports[follower], demo)
    import redis

    other = next(nid for nid in cl.node_ids if nid not in (demo.leader, follower))
    reader = redis.Redis(port=ports[other], socket_timeout=5, decode_responses=True)
    for i in range(SHOWN):
        key, value = f"key:{i:04d}", f"value-{i}"
        done = writer.client.set(key, value)
        console.print(f"  {follower}: r.set({key!r}, {value!r}) -> {done}    {other}: r.get({key!r}) -> "
                      f"{reader.get(key)!r}")
        demo.acked[key] = value
    writer.start()  # from key 0 again: the same values
    try:
        _wait(f"{WRITES_BEFORE_KILL} acknowledged writes", lambda: len(demo.acked) >= WRITES_BEFORE_KILL)
        before = len(demo.acked)
        demo.kill_s = time.monotonic()
        cl.kill(demo.leader)
        console.print(f"[yellow]{demo.kill_s - t0:5.2f} s: killed {demo.leader}, the leader, with SIGKILL[/] "
                      f"({before} keys acknowledged; the client keeps writing)")
        survivors = {nid: p for nid, p in ports.items() if nid != demo.leader}
        demo.new_leader, demo.new_term = _wait("new leader", lambda: _leader(survivors, term_above=demo.term))
        demo.elected_s = time.monotonic()
        _wait(f"{WRITES_AFTER_ELECTION} writes after the election",
              lambda: len(demo.acked) >= before + WRITES_AFTER_ELECTION)
    finally:
        writer.stop.set()
        writer.join(DEADLINE_S)
    if writer.error is not None:
        raise OSError(f"the client failed: {writer.error}")
    console.print(f"[bold]{demo.elected_s - t0:5.2f} s: {demo.new_leader} elected[/] leader of term {demo.new_term}, "
                  f"{demo.elected_s - demo.kill_s:.2f} s after the kill")
    console.print(f"the client's writes stalled for {demo.stall_s:.2f} s (the longest wait between two "
                  f"acknowledgements); meanwhile it was told TRYAGAIN {_times(demo.tryagain)} and UNCERTAIN "
                  f"{_times(demo.uncertain)}, and sent the same SET again; {len(demo.acked)} keys acknowledged in all")
    _read_back(console, survivors, demo)


def _times(n: int) -> str:
    return f"{n} time{'' if n == 1 else 's'}"


def _read_back(console: Console, survivors: dict[str, int], demo: KvDemo) -> None:
    """Read every acknowledged key from each survivor; say what is there."""
    import redis

    keys = sorted(demo.acked)
    table = Table(title="every acknowledged key, read back (GET by ReadIndex, thesis 6.4)")
    for col in ("server", "role", "keys read", "as written"):
        table.add_column(col)
    for nid, port in survivors.items():
        r = redis.Redis(port=port, socket_timeout=5, decode_responses=True)
        values = _wait(f"reads from {nid}", lambda r=r: _mget(redis, r, keys))
        demo.missing[nid] = sum(1 for k, v in zip(keys, values) if v != demo.acked[k])
        role = "leader" if nid == demo.new_leader else "follower"
        table.add_row(nid, role, str(len(keys)), "all" if not demo.missing[nid] else
                      f"[red]{demo.missing[nid]} missing or wrong[/]")
    console.print(table)
    if not any(demo.missing.values()):
        console.print(f"[green]all {len(keys)} keys present[/] on {' and '.join(survivors)}: every write "
                      f"acknowledged before the kill survived it (Raft section 5.4: a new leader holds every "
                      f"committed entry)")


def _mget(redis: Any, r: Any, keys: list[str]) -> list[Any] | None:
    try:
        return r.mget(keys)
    except redis.exceptions.TryAgainError:
        return None
