"""The transport's address book, in-process (:mod:`synod.runtime.transport`,
"Address book"): a node missing from the config its peers started with
announces itself in the authenticated handshake of its kept-open links;
they dial it from then on as a configured peer, fault layer included, and
never learn from an unproven connection or from a client. Raft thesis 4.1
needs this: the leader must reach a learner that never sends first."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import pytest
from tests.runtime.test_transport_limits import KEY, MAX, _addrs, _authenticated, _until

from synod.runtime import transport as transport_mod
from synod.runtime.auth import ROLE_NODE, Credentials
from synod.runtime.config import free_ports
from synod.runtime.framing import pack_frame
from synod.runtime.messages import Faults
from synod.runtime.testing import Echo
from synod.runtime.transport import Transport


class _Node:
    """A transport and what it delivered."""

    def __init__(self, node_id: str, addrs: dict[str, tuple[str, int]], creds: Credentials | None = KEY) -> None:
        self.inbox: list[tuple[str, Any, int]] = []
        self.t = Transport(node_id, addrs, frame_size_bytes_max=MAX, deliver=lambda *m: self.inbox.append(m),
                           trace=lambda e, f: None, rng=random.Random(0), credentials=creds)

    async def serve(self) -> _Node:
        await self.t.listen(*self.t.links[self.t.node_id].addr)
        await self.t.start_serving()
        return self

    def got(self, text: str) -> bool:
        return any(type(m) is Echo and m.text == text for _, m, _ in self.inbox)


async def _node_connection(addr: tuple[str, int], node_id: str, listen_addr: tuple[str, int]) -> asyncio.StreamWriter:
    """A connection that proves the key as node ``node_id`` listening at
    ``listen_addr`` (a node's announcement, made by hand)."""
    _, writer = await _authenticated(addr, node_id, role=ROLE_NODE, listen_addr=listen_addr)
    await writer.drain()
    return writer


def test_an_added_node_is_learned_and_dialed_though_it_never_sends() -> None:
    """n3 is in no config n1 and n2 started with and sends nothing: its
    kept-open links announce it, and both send to it as to a configured
    peer, each over a link of its own."""
    old = _addrs("n1", "n2")
    new = {**old, **_addrs("n3")}

    async def scenario() -> None:
        n1, n2 = await _Node("n1", old).serve(), await _Node("n2", old).serve()
        n3 = await _Node("n3", new).serve()
        await _until(lambda: "n3" in n1.t.learned and "n3" in n2.t.learned)
        assert n1.t.links["n3"].learned and n1.t.links["n3"].addr == new["n3"]
        assert n1.t.peer_conns.keys() == {"n2", "n3"} and not n1.t.client_conns
        n1.t.send("n3", Echo(text="from n1"), 0)
        n2.t.send("n3", Echo(text="from n2"), 0)
        await _until(lambda: n3.got("from n1") and n3.got("from n2"))
        assert n1.t.links["n3"].proto is not None, "n1 dialed n3 itself"
        assert {src for src, _, _ in n3.inbox} == {"n1", "n2"}
        for n in (n1, n2, n3):
            n.t.close()

    asyncio.run(scenario())


def test_the_fault_layer_applies_to_a_learned_node() -> None:
    old = _addrs("n1")
    new = {**old, **_addrs("n2")}

    async def scenario() -> None:
        n1 = await _Node("n1", old).serve()
        n2 = await _Node("n2", new).serve()
        await _until(lambda: "n2" in n1.t.learned)
        n1.t.set_faults(Faults(blocked_out=("n2",), blocked_in=("n2",)))
        n1.t.send("n2", Echo(text="blocked out"), 0)
        assert n1.t.messages_dropped == 1
        n2.t.send("n1", Echo(text="blocked in"), 0)
        await _until(lambda: n1.t.messages_dropped == 2)
        n1.t.set_faults(Faults(drop_probability=1.0))
        n1.t.send("n2", Echo(text="dropped"), 0)
        assert n1.t.messages_dropped == 3
        n1.t.set_faults(Faults())
        n1.t.send("n2", Echo(text="healed"), 0)
        n2.t.send("n1", Echo(text="healed too"), 0)
        await _until(lambda: n2.got("healed") and n1.got("healed too"))
        assert not n2.got("blocked out") and not n2.got("dropped") and not n1.got("blocked in")
        n1.t.close()
        n2.t.close()

    asyncio.run(scenario())


def test_a_node_back_elsewhere_is_readdressed_but_configured_ids_and_clients_are_not_learned() -> None:
    old = _addrs("n1", "n2")
    n3_first, n3_second = _addrs("a", "b").values()

    async def scenario() -> None:
        n1 = await _Node("n1", old).serve()
        w = await _node_connection(old["n1"], "n3", n3_first)
        await _until(lambda: n1.t.links.get("n3") is not None)
        assert n1.t.links["n3"].addr == n3_first
        w.close()
        w = await _node_connection(old["n1"], "n3", n3_second)  # n3 restarted on another port
        await _until(lambda: n1.t.links["n3"].addr == n3_second)
        w.close()
        w = await _node_connection(old["n1"], "n2", n3_first)  # a configured id keeps its configured address
        await _until(lambda: "n2" in n1.t.peer_conns)
        assert n1.t.links["n2"].addr == old["n2"] and "n2" not in n1.t.learned
        w.close()
        w = await _node_connection(old["n1"], "n4", ("0.0.0.0", n3_first[1]))  # a wildcard: the source address
        await _until(lambda: "n4" in n1.t.learned)
        assert n1.t.links["n4"].addr == ("127.0.0.1", n3_first[1])
        w.close()
        _, w = await _authenticated(old["n1"], "n5")  # a client (role client) announces nothing
        w.write(pack_frame("n5", 1, Echo(text="a client"), MAX))
        await _until(lambda: "n5" in n1.t.clients)
        assert "n5" not in n1.t.learned and "n5" not in n1.t.links
        w.close()
        n1.t.close()

    asyncio.run(scenario())


def test_without_a_key_nothing_is_announced_or_learned() -> None:
    """Without a key nothing proves an announcement: the added node stays a
    client, answered on the connection it opened and sent on (as before)."""
    old = _addrs("n1")
    new = {**old, **_addrs("n2")}

    async def scenario() -> None:
        n1 = await _Node("n1", old, creds=None).serve()
        n2 = await _Node("n2", new, creds=None).serve()
        assert n2.t.links["n1"].task is None and not n2.t.links["n1"].keep, "no link is opened before a send"
        n2.t.send("n1", Echo(text="hello"), 7)  # the first frame identifies it
        await _until(lambda: n1.got("hello"))
        assert not n1.t.learned and "n2" not in n1.t.links and "n2" in n1.t.clients
        n1.t.send("n2", Echo(text="reply"), -7)
        await _until(lambda: n2.got("reply"))
        n1.t.close()
        n2.t.close()

    asyncio.run(scenario())


def test_the_address_book_is_bounded(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Full: a new node replaces the least recently announced one that has
    no connection open; if every one has, the new one stays a client."""
    monkeypatch.setattr(transport_mod, "LEARNED_PEERS_MAX", 2)
    old = _addrs("n1")
    elsewhere = free_ports(1)[0]

    async def scenario() -> None:
        n1 = await _Node("n1", old).serve()
        a = await _node_connection(old["n1"], "a", ("127.0.0.1", elsewhere))
        b = await _node_connection(old["n1"], "b", ("127.0.0.1", elsewhere))
        await _until(lambda: list(n1.t.learned) == ["a", "b"])
        a.close()
        await _until(lambda: "a" not in n1.t.peer_conns)
        c = await _node_connection(old["n1"], "c", ("127.0.0.1", elsewhere))
        await _until(lambda: list(n1.t.learned) == ["b", "c"])
        assert "a" not in n1.t.links, "a's link went with its entry"
        with caplog.at_level(logging.WARNING, logger="synod.runtime"):
            d = await _node_connection(old["n1"], "d", ("127.0.0.1", elsewhere))
            d.write(pack_frame("d", 1, Echo(text="as a client"), MAX))
            await _until(lambda: "d" in n1.t.clients)
        assert list(n1.t.learned) == ["b", "c"] and "d" not in n1.t.links
        assert "the address book holds 2 nodes, each connected (LEARNED_PEERS_MAX)" in caplog.text
        for w in (b, c, d):
            w.close()
        n1.t.close()

    asyncio.run(scenario())
