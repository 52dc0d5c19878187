"""The KV server on Raft in the simulator: writes through the log, reads by
ReadIndex, forwarding from followers, MULTI/EXEC with WATCH, blocking pops
woken by another client's push (issue 10 part 2)."""

from __future__ import annotations

from typing import Any

from synod.core import Context, Node
from synod.core.clients import ClientClosed
from synod.kv.messages import Command
from synod.kv.node import KvNode
from synod.kv.replies import NIL_ARRAY, OK, Array, BulkString, Integer, SimpleError, SimpleString
from synod.sim import Simulator

SERVERS = ("n1", "n2", "n3")


class Client(Node):
    """Sends its commands one at a time to ``target`` after ``start_ms``;
    records (command, reply)."""

    def __init__(self, target: str, commands: list[str], log: list, start_ms: float = 2000.0) -> None:
        self.target, self.commands, self.log, self.start_ms = target, commands, log, start_ms

    async def on_start(self, ctx: Context) -> None:
        await ctx.sleep(self.start_ms)
        for c in self.commands:
            reply = await ctx.call(self.target, Command(args=tuple(a.encode() for a in c.split())), 20_000.0)
            self.log.append((c, reply))


def _run(clients: dict[str, tuple[str, list[str], float]], seed: int = 1) -> dict[str, list[tuple[str, Any]]]:
    sim = Simulator(seed)
    for s in SERVERS:
        sim.add_node(s, KvNode, peers=SERVERS)
    logs: dict[str, list] = {}
    for name, (target, commands, start_ms) in clients.items():
        logs[name] = []
        sim.add_node(name, lambda t=target, c=commands, log=logs[name], s=start_ms: Client(t, c, log, s),
                     peers=SERVERS)
    sim.run(until_ms=30_000.0)
    return logs


def test_writes_reads_and_transactions_through_any_server() -> None:
    logs = _run({
        "c1": ("n1", ["SET k 1", "INCR k", "GET k", "MULTI", "INCR k", "GET k", "EXEC", "NOSUCH x"], 2000.0),
        "c2": ("n2", ["SET j 5", "GET j", "WATCH j", "MULTI", "GET j", "EXEC", "EXEC"], 2000.0),
        "c3": ("n3", ["GET k", "PING", "ECHO hi", "SELECT 1"], 8000.0),
    })
    assert [r for _, r in logs["c1"]] == [
        OK, Integer(value=2), BulkString(data=b"2"), OK, SimpleString(text="QUEUED"), SimpleString(text="QUEUED"),
        Array(items=(Integer(value=3), BulkString(data=b"3"))),
        SimpleError(text="ERR unknown command 'NOSUCH', with args beginning with: 'x' "),
    ]
    assert [r for _, r in logs["c2"]][:6] == [
        OK, BulkString(data=b"5"), OK, OK, SimpleString(text="QUEUED"), Array(items=(BulkString(data=b"5"),))]
    assert logs["c2"][6][1] == SimpleError(text="ERR EXEC without MULTI")
    assert [r for _, r in logs["c3"]] == [BulkString(data=b"3"), SimpleString(text="PONG"), BulkString(data=b"hi"),
                                          SimpleError(text="ERR DB index is out of range")]


def test_a_watched_key_written_by_another_client_aborts_the_exec() -> None:
    logs = _run({"c1": ("n1", ["SET w 1", "WATCH w", "MULTI", "SET w 3", "EXEC"], 2000.0),
                 "c2": ("n2", ["SET w 2"], 2000.0)}, seed=3)
    exec_reply = logs["c1"][-1][1]
    assert exec_reply in (NIL_ARRAY, Array(items=(OK,)))  # aborted iff c2's SET came between WATCH and EXEC


def test_a_blocked_pop_is_served_when_another_client_pushes() -> None:
    logs = _run({
        "waiter": ("n3", ["BLPOP q 0", "BLPOP q 0.5"], 2000.0),
        "pusher": ("n1", ["RPUSH q x", "LLEN q"], 6000.0),
    })
    assert logs["waiter"][0][1] == Array(items=(BulkString(data=b"q"), BulkString(data=b"x")))
    assert logs["waiter"][1][1] == NIL_ARRAY  # timed out after 0.5 s with nothing to pop
    assert logs["pusher"] == [("RPUSH q x", Integer(value=1)), ("LLEN q", Integer(value=0))]


class LeavingClient(Node):
    """Blocks on ``BLPOP q 0`` at 2 s, then closes its connection at 3 s
    (without waiting for the reply)."""

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer("block", 2000.0)
        ctx.set_timer("leave", 3000.0)

    def on_timer(self, ctx: Context, name: str) -> None:
        if name == "block":
            ctx.send("n1", Command(args=(b"BLPOP", b"q", b"0")))
        else:
            ctx.send("n1", ClientClosed(reason="client closed"))


def test_a_blocked_client_that_leaves_does_not_hold_up_the_next_one() -> None:
    """A client blocked on a key disconnects: the next client blocked on the
    same key is served when an element arrives (the first must not stay
    at the head of the key's queue)."""
    sim = Simulator(1)  # n1 leads from 2 s on: the clients' commands are parked there, not forwarded
    for s in SERVERS:
        sim.add_node(s, KvNode, peers=SERVERS)
    sim.add_node("leaver", LeavingClient, peers=SERVERS)
    logs: dict[str, list] = {"waiter": [], "pusher": []}
    sim.add_node("waiter", lambda: Client("n1", ["BLPOP q 0"], logs["waiter"], 4000.0), peers=SERVERS)
    sim.add_node("pusher", lambda: Client("n1", ["RPUSH q x"], logs["pusher"], 6000.0), peers=SERVERS)
    sim.run(until_ms=30_000.0)
    assert sim.hosts["n1"].node.raft.is_leader
    assert logs["waiter"] == [("BLPOP q 0", Array(items=(BulkString(data=b"q"), BulkString(data=b"x"))))]
    assert not sim.hosts["n1"].node._timers_parked  # nothing left parked


class LeavingFollowerClient(Node):
    """Blocks on ``BLPOP q 0`` through the follower ``target`` at 2 s, then
    closes its connection at 3 s (without waiting for the reply)."""

    def __init__(self, target: str) -> None:
        self.target = target

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer("block", 2000.0)
        ctx.set_timer("leave", 3000.0)

    def on_timer(self, ctx: Context, name: str) -> None:
        if name == "block":
            ctx.send(self.target, Command(args=(b"BLPOP", b"q", b"0")))
        else:
            ctx.send(self.target, ClientClosed(reason="client closed"))


def test_a_client_that_leaves_a_follower_while_blocked_pops_nothing() -> None:
    """A client blocked through a follower disconnects: an element pushed
    later stays in the list (nobody is left to receive it), as in Redis,
    where a closed connection never pops."""
    sim = Simulator(1)  # n1 leads from 2 s on
    for s in SERVERS:
        sim.add_node(s, KvNode, peers=SERVERS)
    sim.add_node("leaver", lambda: LeavingFollowerClient("n3"), peers=SERVERS)
    logs: dict[str, list] = {"pusher": []}
    sim.add_node("pusher", lambda: Client("n1", ["RPUSH q x", "LLEN q"], logs["pusher"], 6000.0), peers=SERVERS)
    sim.run(until_ms=30_000.0)
    assert sim.hosts["n1"].node.raft.is_leader
    assert logs["pusher"] == [("RPUSH q x", Integer(value=1)), ("LLEN q", Integer(value=1))]
    for s in SERVERS:
        assert not sim.hosts[s].node._timers_parked, s  # nothing left parked anywhere


def test_blocked_clients_on_every_server_are_each_served_once() -> None:
    """Three clients block on one list through three servers; three pushes
    are each popped by exactly one of them."""
    logs = _run({
        "w1": ("n1", ["BLPOP q 0"], 2000.0),
        "w2": ("n2", ["BLPOP q 0"], 2000.0),
        "w3": ("n3", ["BLPOP q 0"], 2000.0),
        "pusher": ("n2", ["RPUSH q a", "RPUSH q b", "RPUSH q c", "LLEN q"], 6000.0),
    }, seed=2)
    popped = sorted(logs[w][0][1].items[1].data for w in ("w1", "w2", "w3"))
    assert popped == [b"a", b"b", b"c"]
    assert logs["pusher"][-1] == ("LLEN q", Integer(value=0))


class QuickLeaver(Node):
    """Sends ``BLPOP q 0`` to ``target`` at 2 s and closes its connection
    1 ms later, while the command is still on its way through the log."""

    def __init__(self, target: str) -> None:
        self.target = target

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer("block", 2000.0)

    def on_timer(self, ctx: Context, name: str) -> None:
        if name == "block":
            ctx.send(self.target, Command(args=(b"BLPOP", b"q", b"0")))
            ctx.set_timer("leave", 1.0)
        else:
            ctx.send(self.target, ClientClosed(reason="client closed"))


def test_a_client_that_leaves_while_its_first_attempt_is_in_the_log_is_not_parked() -> None:
    for target in SERVERS:  # the leader n1 and both followers
        sim = Simulator(1)
        for s in SERVERS:
            sim.add_node(s, KvNode, peers=SERVERS)
        sim.add_node("leaver", lambda t=target: QuickLeaver(t), peers=SERVERS)
        log: list = []
        sim.add_node("pusher", lambda log=log: Client("n1", ["RPUSH q x", "LLEN q"], log, 6000.0), peers=SERVERS)
        sim.run(until_ms=30_000.0)
        assert log == [("RPUSH q x", Integer(value=1)), ("LLEN q", Integer(value=1))], target
        for s in SERVERS:
            assert not sim.hosts[s].node._timers_parked, (target, s)
