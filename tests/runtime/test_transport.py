"""The transport in-process (DESIGN.md section 6): delivery between two
transports, reconnect with backoff, bounded send queues, client routing."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import pytest

from synod.runtime import _links as links_mod
from synod.runtime import transport as transport_mod
from synod.runtime.client import call_async
from synod.runtime.config import free_ports
from synod.runtime.framing import FrameSplitter, open_envelope, pack_frame
from synod.runtime.messages import Faults, Status, StatusRequest
from synod.runtime.testing import Echo, EchoReply
from synod.runtime.transport import Transport

MAX = 1 << 20


def _pair() -> tuple[dict[str, tuple[str, int]], dict[str, list[tuple[str, Any, int]]]]:
    ports = free_ports(2)
    addrs = {"a": ("127.0.0.1", ports[0]), "b": ("127.0.0.1", ports[1])}
    return addrs, {"a": [], "b": []}


def _transport(node_id: str, addrs: dict, inbox: dict, traces: list | None = None) -> Transport:
    return Transport(node_id, addrs, frame_size_bytes_max=MAX,
                     deliver=lambda src, msg, corr: inbox[node_id].append((src, msg, corr)),
                     trace=lambda event, fields: traces.append((event, fields)) if traces is not None else None,
                     rng=random.Random(0))


async def _until(predicate: Any, timeout_s: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


async def _serve(t: Transport) -> None:
    host, port = t.links[t.node_id].addr
    await t.listen(host, port)
    await t.start_serving()


def test_messages_flow_and_a_link_reconnects_after_the_peer_restarts() -> None:
    addrs, inbox = _pair()

    async def scenario() -> None:
        a = _transport("a", addrs, inbox)
        b = _transport("b", addrs, inbox)
        await _serve(a)
        await _serve(b)
        for i in range(100):
            a.send("b", Echo(text=str(i)), 0)
        await _until(lambda: len(inbox["b"]) == 100)
        assert [m.text for _, m, _ in inbox["b"]] == [str(i) for i in range(100)]  # in order
        assert {src for src, _, _ in inbox["b"]} == {"a"}
        b.close()
        await _until(lambda: a.links["b"].proto is None)
        a.send("b", Echo(text="while b is down"), 0)  # queued; connect attempts back off
        assert list(a.links["b"].queue)
        b2 = _transport("b", addrs, inbox)
        await _serve(b2)
        await _until(lambda: inbox["b"][-1][1] == Echo(text="while b is down"))
        a.close()
        b2.close()

    asyncio.run(scenario())


def test_full_send_queue_drops_and_logs_once(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(transport_mod, "SEND_QUEUE_MESSAGES_MAX", 50)
    monkeypatch.setattr(links_mod, "SEND_QUEUE_MESSAGES_MAX", 50)
    addrs, inbox = _pair()
    traces: list = []

    async def scenario() -> Transport:
        a = _transport("a", addrs, inbox, traces)  # b never listens: everything queues
        for i in range(60):
            a.send("b", Echo(text=str(i)), 0)
        a.close()
        return a

    with caplog.at_level(logging.WARNING, logger="synod.runtime"):
        a = asyncio.run(scenario())
    assert len(a.links["b"].queue) == 50
    assert a.messages_dropped == 10
    assert [r.getMessage() for r in caplog.records] == ["send queue to b full (50 messages): dropping until it drains"]
    assert [f["reason"] for e, f in traces if e == "drop"] == ["send queue full"] * 10


def test_client_gets_replies_on_its_own_connection_and_faults_spare_it() -> None:
    addrs, inbox = _pair()

    async def scenario() -> None:
        b = _transport("b", addrs, inbox)
        b._deliver = lambda src, msg, corr: b.send(src, EchoReply(node_id="b", text=msg.text), -corr)
        await _serve(b)
        b.set_faults(Faults(drop_probability=1.0, blocked_in=("a",), blocked_out=("a",)))
        assert await call_async(addrs["b"], Echo(text="hi"), 2.0) == EchoReply(node_id="b", text="hi")
        status = await call_async(addrs["b"], StatusRequest(), 2.0)
        assert type(status) is Status
        assert status.faults.drop_probability == 1.0
        assert status.clients == 1  # the connection asking
        # A raw connection claiming to be peer "a" is blocked by the partition.
        reader, writer = await asyncio.open_connection(*addrs["b"])
        writer.write(pack_frame("a", 1, Echo(text="blocked"), MAX) + pack_frame("a", 2, StatusRequest(), MAX))
        splitter = FrameSplitter(MAX)
        got: list = []
        while not got:
            got += [open_envelope(p, MAX) for p in splitter.feed(await reader.read(1 << 16))]
        (src, corr, reply), = got  # only the control request was answered
        assert (src, corr) == ("b", -2)
        assert type(reply) is Status
        assert reply.messages_dropped == 1
        writer.close()
        b.close()

    asyncio.run(scenario())
