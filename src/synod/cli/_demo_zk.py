"""``synod demo``'s third act: ZooKeeper on Zab, its leader killed under a
lock and an election.

A 3-server :mod:`synod.zk` ensemble on this machine (real processes, each
serving ZooKeeper's protocol on its own client port), driven by kazoo, the
Python ZooKeeper client (the ``test`` extra; without it the act is skipped
and says so). Two clients, *alice* and *bob*:

1. the ensemble elects a leader (Zab's Fast Leader Election, discovery and
   synchronization; it is *established* once it broadcasts);
2. alice, connected to the leader, takes the kazoo ``Lock`` and wins the
   ``Election`` (each an ephemeral sequential znode; the lowest holds it);
   bob, connected to a follower, waits behind her in both;
3. the ensemble's leader is killed with SIGKILL: the followers stop
   serving, elect a new leader among themselves and synchronize with it;
   alice's client, which knows all three servers (the leader first), tries
   the others: a server still electing closes the connection without a
   word (as ZooKeeper does), and once one serves she reconnects there
   *with her session* (Hunt et al. 4.2: a session moves between servers;
   its ephemerals stay), so she still holds the lock and bob does not get
   it;
4. alice releases the lock: bob gets it; alice closes her session: her
   election znode goes with it (deleted through Zab, on every server at one
   zxid) and bob wins the election;
5. the clients and the ensemble are stopped; the act checks that none of
   its processes runs.

A few seconds; it stops its processes on every path out.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from synod.cli._demo_kv import _still_running, _wait

__all__ = ["run_zk_demo", "ZkDemo"]

ZK_NODES = 3
DEADLINE_S = 20.0              # for the clients' connects and lock acquires (each other wait: _demo_kv's, 15 s)
SESSION_TIMEOUT_S = 10.0       # the clients' session timeout asked for
RECONNECT_DELAY_MAX_S = 0.25   # the clients' longest pause between reconnect attempts
LOCK_PATH = "/demo/lock"
ELECTION_PATH = "/demo/election"


@dataclass
class ZkDemo:
    """What the act saw."""

    failures: list[str] = field(default_factory=list)
    elected: list[str] = field(default_factory=list)        # election winners, in order
    bob_locked: bool = False
    left_running: list[int] = field(default_factory=list)   # pids still running after the stop

    @property
    def ok(self) -> bool:
        return not self.failures and self.elected == ["alice", "bob"] and self.bob_locked and not self.left_running


def run_zk_demo(console: Console, run_dir: Path) -> bool:
    """Run the act in ``run_dir`` (created; left for the caller to delete)
    and print its story. True if alice kept the lock across the leader's
    death, bob got it after her release and won the election after her
    session closed, and no process of the ensemble runs afterwards."""
    console.rule("[bold]synod demo, act 3: ZooKeeper on Zab")
    try:
        import kazoo  # noqa: F401 - the test extra
    except ImportError:
        console.print("[yellow]skipped[/]: this act drives the ensemble with kazoo (pip install 'synod[test]')")
        return True
    from kazoo.exceptions import KazooException

    from synod.harness.zk_real import ensemble_spec
    from synod.runtime import LocalCluster, write_config

    kazoo_log = logging.getLogger("kazoo")
    log_level = kazoo_log.level
    kazoo_log.setLevel(logging.ERROR)  # its reconnect warnings would cut into the story
    _, path = write_config(ensemble_spec(run_dir, ZK_NODES))
    cl = LocalCluster(path)
    demo = ZkDemo()
    story = _Story(console, cl, demo)
    try:
        story.run()
    except (TimeoutError, OSError, KazooException) as e:
        demo.failures.append(f"{e or type(e).__name__}; node logs in {run_dir}")
    finally:
        story.close_clients()
        kazoo_log.setLevel(log_level)
        pids = [p for p in (cl.pid(nid) for nid in cl.node_ids) if p is not None]
        cl.stop()
        demo.left_running = _still_running(pids)
    for failure in demo.failures:
        console.print(f"[red]the ZooKeeper act failed[/]: {failure}")
    if demo.left_running:
        console.print(f"[red]processes still running after the stop: {demo.left_running}[/]")
    else:
        console.print(f"stopped the clients and the {ZK_NODES} servers; none of the ensemble's processes runs")
    return demo.ok


class _Story:
    """The act's steps over one ensemble and two kazoo clients."""

    def __init__(self, console: Console, cl: Any, demo: ZkDemo) -> None:
        self.console = console
        self.cl = cl
        self.demo = demo
        self.t0 = time.monotonic()
        self.clients: list[Any] = []
        self.hold = {"alice": threading.Event(), "bob": threading.Event()}  # set: the leader function returns

    def say(self, text: str) -> None:
        self.console.print(f"{time.monotonic() - self.t0:5.2f} s: {text}")

    def client(self, ports: list[int]) -> Any:
        from kazoo.client import KazooClient

        from synod.harness.zk_real import hosts_of

        # reconnect attempts at most RECONNECT_DELAY_MAX_S apart (kazoo's back off to minutes): the session
        # (2 s at the ensemble's tickTime of 100 ms) must move before it expires
        retry = {"max_tries": -1, "delay": 0.05, "backoff": 1.5, "max_jitter": 0.2, "max_delay": RECONNECT_DELAY_MAX_S}
        zk = KazooClient(hosts=hosts_of(ports), timeout=SESSION_TIMEOUT_S, randomize_hosts=False,
                         connection_retry=retry)
        zk.start(timeout=DEADLINE_S)
        self.clients.append(zk)
        return zk

    def contend(self, zk: Any, name: str) -> None:
        """Run ``name``'s side of the election in a thread: when elected, say
        so and hold the leadership until ``self.hold[name]`` is set."""
        from kazoo.recipe.election import Election

        def lead() -> None:
            self.demo.elected.append(name)
            self.say(f"[bold]{name} wins the election[/] (her znode is the lowest under {ELECTION_PATH})"
                     if name == "alice" else f"[bold]{name} wins the election[/]")
            self.hold[name].wait()

        def run() -> None:
            try:
                Election(zk, ELECTION_PATH, identifier=name).run(lead)
            except Exception:  # noqa: BLE001 - the session closed under it: the znode went with it
                pass

        threading.Thread(target=run, name=f"zk-demo-{name}", daemon=True).start()

    def run(self) -> None:
        from synod.harness.zk_real import client_ports, established_leader

        cl, demo = self.cl, self.demo
        cl.start()
        leader, status = _wait("established leader", lambda: established_leader(cl))
        ports = client_ports(cl.config)
        f1, f2 = (nid for nid in cl.node_ids if nid != leader)
        self.say(f"{ZK_NODES} ZooKeeper servers on 127.0.0.1, client ports {', '.join(map(str, ports.values()))}; "
                 f"{leader} leads epoch {status.current_epoch} (Zab: election, discovery, synchronization)")
        alice = self.client([ports[leader], ports[f1], ports[f2]])
        bob = self.client([ports[f2], ports[f1]])
        bob_session = bob.client_id[0]
        self.say(f"kazoo clients: alice on {leader} (the leader; her client knows all three servers), "
                 f"session 0x{alice.client_id[0]:x}; "
                 f"bob on {f2}, session 0x{bob.client_id[0]:x}")
        lock_a, lock_b = alice.Lock(LOCK_PATH, "alice"), bob.Lock(LOCK_PATH, "bob")
        if not lock_a.acquire(timeout=DEADLINE_S):
            raise TimeoutError("alice did not get the lock")
        self.say(f"alice holds the lock {LOCK_PATH}")
        self.contend(alice, "alice")
        _wait("election of alice", lambda: demo.elected == ["alice"])
        bob_got = threading.Event()
        threading.Thread(target=lambda: lock_b.acquire(timeout=60) and bob_got.set(), daemon=True).start()
        self.contend(bob, "bob")
        _wait("bob queued behind alice", lambda: lock_a.contenders() == ["alice", "bob"]
              and len(bob.get_children(ELECTION_PATH)) == 2)
        self.say("bob waits for the lock and in the election")
        self._kill_leader(leader, [f1, f2], alice, lock_a, bob_got)
        lock_a.release()
        self.say("alice releases the lock")
        _wait("bob holds the lock", bob_got.is_set)
        demo.bob_locked = True
        self.say(f"[bold]bob holds the lock[/] (contenders now: {lock_b.contenders()})")
        if demo.elected != ["alice"]:
            demo.failures.append(f"the election was won by {demo.elected} while alice's session was open")
        self.say("alice closes her session: her election znode is deleted with it")
        alice.stop()
        alice.close()
        self.hold["alice"].set()
        _wait("bob elected", lambda: demo.elected == ["alice", "bob"])
        now = bob.client_id[0]
        self.say("bob's session across it all: " + (f"the same, 0x{now:x}" if now == bob_session else
                 f"expired (0x{bob_session:x}; kazoo opened 0x{now:x} and its recipes carried on)"))
        self._check_one_holder(bob, lock_b)

    def _kill_leader(self, leader: str, survivors: list[str], alice: Any, lock_a: Any, bob_got: Any) -> None:
        """SIGKILL the leader; wait for a new one and for alice's session on
        a survivor; check she still holds the lock and bob does not."""
        from kazoo.protocol.states import KazooState

        from synod.harness.zk_real import client_ports, established_leader

        session = alice.client_id[0]
        states: list[tuple[float, str]] = []
        alice.add_listener(lambda state: states.append((time.monotonic(), state)) and False)
        kill_s = time.monotonic()
        self.cl.kill(leader)
        self.say(f"[yellow]killed {leader}, the ensemble's leader, with SIGKILL[/]")
        new, status = _wait("new leader", lambda: established_leader(self.cl, survivors))
        self.say(f"[bold]{new} established as leader of epoch {status.current_epoch}[/], "
                 f"{time.monotonic() - kill_s:.2f} s after the kill")
        ports = client_ports(self.cl.config)
        _wait("alice reconnected", lambda: alice.connected and any(s == KazooState.CONNECTED for _, s in states))
        where = _server_of(alice, ports)
        back_s = max(t for t, s in states if s == KazooState.CONNECTED)
        kept = alice.client_id[0] == session and KazooState.LOST not in [s for _, s in states]
        if not kept:
            self.demo.failures.append(f"alice's session 0x{session:x} was lost")
        self.say(f"alice's client reconnected to {where} {back_s - kill_s:.2f} s after the kill, "
                 + (f"with the same session 0x{session:x}: her lock and election znodes are still there" if kept
                    else f"[red]with a new session 0x{alice.client_id[0]:x}[/]"))
        held = lock_a.is_acquired and lock_a.contenders()[:1] == ["alice"]
        if not held or bob_got.is_set():
            self.demo.failures.append("alice lost the lock across the leader's death")
        self.say("alice still holds the lock; bob still waits" if held and not bob_got.is_set()
                 else "[red]alice lost the lock[/]")

    def _check_one_holder(self, bob: Any, lock_b: Any) -> None:
        """Bob holds both; nothing of alice is left in either."""
        contenders = lock_b.contenders()
        voters = bob.get_children(ELECTION_PATH)
        if contenders != ["bob"] or len(voters) != 1:
            self.demo.failures.append(f"left over: lock contenders {contenders}, election znodes {voters}")
        else:
            self.console.print("[green]the lock and the election moved on correctly[/]: alice held both across "
                               "the leader's death (her session moved), bob got each only after she let go")

    def close_clients(self) -> None:
        for name in self.hold:
            self.hold[name].set()
        for zk in self.clients:
            try:
                zk.stop()
                zk.close()
            except Exception:  # noqa: BLE001 - already closed, or the ensemble is gone
                pass


def _server_of(zk: Any, ports: dict[str, int]) -> str:
    """The server a kazoo client is connected to now (from its socket's
    peer port), or "a survivor" when that cannot be told."""
    try:
        port = zk._connection._socket.getpeername()[1]  # kazoo keeps no public record of it
    except (AttributeError, OSError, IndexError, TypeError):
        return "a survivor"
    return next((nid for nid, p in ports.items() if p == port), "a survivor")
