"""The transport's guards in-process (issue 8 parts 3 and 4): keyed links,
the pending/peer/client pools, handshake and slow-frame timeouts, the
partial-frame budget, and closing a src whose message the node rejected.

Limits are monkeypatched small so each case runs in well under a second;
the real-process figures are in test_limits_real.py."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import pytest

from synod.core.codec import encode
from synod.core.errors import RemoteProtocolError
from synod.runtime import transport as transport_mod
from synod.runtime.auth import ROLE_CLIENT, ClientHandshake, Credentials
from synod.runtime.client import call_async
from synod.runtime.config import free_ports
from synod.runtime.constants import HANDSHAKE_FRAME_BYTES_MAX
from synod.runtime.framing import FrameSplitter, frame, open_envelope, pack_frame
from synod.runtime.testing import Echo, EchoReply
from synod.runtime.transport import Transport

MAX = 1 << 20
KEY = Credentials(key=b"K" * 32)
OTHER = Credentials(key=b"O" * 32)


def _addrs(*ids: str) -> dict[str, tuple[str, int]]:
    return {nid: ("127.0.0.1", port) for nid, port in zip(ids, free_ports(len(ids)))}


def _transport(node_id: str, addrs: dict, inbox: list, creds: Credentials | None = KEY,
               partial_frame_bytes_max: int = 64 * MAX) -> Transport:
    t = Transport(node_id, addrs, frame_size_bytes_max=MAX, deliver=lambda *m: inbox.append(m),
                  trace=lambda e, f: None, rng=random.Random(0), credentials=creds,
                  partial_frame_bytes_max=partial_frame_bytes_max)
    return t


def _echoing(t: Transport) -> Transport:
    t._deliver = lambda src, msg, corr: t.send(src, EchoReply(node_id=t.node_id, text=msg.text), -corr)
    return t


async def _serve(t: Transport) -> None:
    await t.listen(*t.links[t.node_id].addr)
    await t.start_serving()


async def _until(predicate: Any, timeout_s: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


async def _closed(reader: asyncio.StreamReader, timeout_s: float = 5.0) -> bool:
    """Whether the other end closes the connection within ``timeout_s``."""
    try:
        while await asyncio.wait_for(reader.read(1 << 16), timeout_s):
            pass
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


async def _authenticated(addr: tuple[str, int], client_id: str, creds: Credentials = KEY, *, role: str = ROLE_CLIENT,
                         listen_addr: tuple[str, int] | None = None,
                         ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection that passed the handshake as ``client_id`` (as a node
    announcing ``listen_addr`` with ``role="node"``)."""
    reader, writer = await asyncio.open_connection(*addr)
    hs = ClientHandshake(creds.key, role, client_id, listen_addr=listen_addr)
    writer.write(frame(hs.hello()))
    splitter = FrameSplitter(HANDSHAKE_FRAME_BYTES_MAX)
    got: list[bytes] = []
    while not got:
        data = await reader.read(4096)
        assert data, "closed during the handshake"
        got += splitter.feed(data)
    writer.write(frame(hs.receive(got[0])))
    return reader, writer


def test_keyed_links_carry_messages_and_another_clusters_node_never_gets_in() -> None:
    addrs = _addrs("a", "b")
    inbox_a: list = []
    inbox_b: list = []

    async def scenario() -> None:
        a, b = _transport("a", addrs, inbox_a), _transport("b", addrs, inbox_b)
        await _serve(a)
        await _serve(b)
        for i in range(20):
            a.send("b", Echo(text=str(i)), 0)
        await _until(lambda: len(inbox_b) == 20)
        assert {src for src, _, _ in inbox_b} == {"a"}
        assert b.peer_conns.keys() == {"a"}
        # "a" of another cluster (another key), configured with b's address.
        impostor = _transport("a", addrs, [], creds=OTHER)
        impostor.send("b", Echo(text="let me in"), 0)
        await _until(lambda: b.auth_failures >= 2)  # refused, and refused again after backoff
        assert impostor.links["b"].proto is None
        assert Echo(text="let me in") not in [m for _, m, _ in inbox_b]
        impostor.close()
        a.close()
        b.close()

    asyncio.run(scenario())


def test_a_silent_connection_is_closed_after_the_handshake_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport_mod, "HANDSHAKE_TIMEOUT_MS", 150.0)
    addrs = _addrs("b")

    async def scenario() -> None:
        b = _transport("b", addrs, [])
        await _serve(b)
        loop = asyncio.get_running_loop()
        reader, writer = await asyncio.open_connection(*addrs["b"])
        started = loop.time()
        assert await _closed(reader)
        assert loop.time() - started >= 0.14
        assert b.connections_refused == 1
        assert not b.pending and not b.inbound
        writer.close()
        b.close()

    asyncio.run(scenario())


def test_a_full_pending_pool_evicts_the_oldest_so_clients_and_peers_still_get_in(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(transport_mod, "PENDING_CONNECTIONS_MAX", 8)
    addrs = _addrs("a", "b")
    inbox_b: list = []

    async def scenario() -> None:
        b = _echoing(_transport("b", addrs, inbox_b))
        await _serve(b)
        flood = [await asyncio.open_connection(*addrs["b"]) for _ in range(60)]
        await _until(lambda: b.connections_refused == 52)
        assert len(b.pending) == 8
        assert await call_async(addrs["b"], Echo(text="hi"), 3.0, credentials=KEY) == EchoReply(node_id="b", text="hi")
        a = _transport("a", addrs, [])
        b._deliver = lambda src, msg, corr: inbox_b.append((src, msg, corr))
        a.send("b", Echo(text="peer"), 0)
        await _until(lambda: ("a", Echo(text="peer"), 0) in inbox_b)
        for _, writer in flood:
            writer.close()
        a.close()
        b.close()

    with caplog.at_level(logging.WARNING, logger="synod.runtime"):
        asyncio.run(scenario())
    evictions = [r for r in caplog.records if "oldest unauthenticated" in r.getMessage()]
    assert 1 <= len(evictions) <= 10  # a flood is a few lines, not 52


def test_the_client_pool_is_bounded_and_peers_keep_their_room(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport_mod, "CLIENT_CONNECTIONS_MAX", 3)
    addrs = _addrs("a", "b")
    inbox_b: list = []

    async def scenario() -> None:
        b = _transport("b", addrs, inbox_b)
        await _serve(b)
        clients = [await _authenticated(addrs["b"], f"c{i}") for i in range(3)]
        await _until(lambda: len(b.client_conns) == 3)
        reader, writer = await _authenticated(addrs["b"], "c3")
        assert await _closed(reader)
        assert b.connections_refused == 1
        a = _transport("a", addrs, [])
        a.send("b", Echo(text="peer"), 0)
        await _until(lambda: ("a", Echo(text="peer"), 0) in inbox_b)
        for _, w in [*clients, (reader, writer)]:
            w.close()
        a.close()
        b.close()

    asyncio.run(scenario())


def test_a_partial_frame_sent_too_slowly_is_timed_out_and_its_budget_returned(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport_mod, "FRAME_RECEIVE_TIMEOUT_MS_MIN", 150.0)
    monkeypatch.setattr(transport_mod, "SWEEP_INTERVAL_MS", 20.0)
    addrs = _addrs("b")

    async def scenario() -> None:
        b = _transport("b", addrs, [])
        await _serve(b)
        reader, writer = await _authenticated(addrs["b"], "slowpoke")
        writer.write((200_000).to_bytes(4, "big") + b"x" * 1000)  # 64 KiB+ frame: charged
        await _until(lambda: b.budget.bytes_reserved == 200_000)
        assert await _closed(reader)
        assert b.budget.bytes_reserved == 0
        assert b.connections_refused == 1
        writer.close()
        b.close()

    asyncio.run(scenario())


def test_a_frame_that_does_not_fit_the_budget_closes_its_connection_only() -> None:
    addrs = _addrs("b")
    inbox: list = []

    async def scenario() -> None:
        b = _transport("b", addrs, inbox, partial_frame_bytes_max=300_000)
        await _serve(b)
        big = pack_frame("first", 0, Echo(text="y" * 200_000), MAX)
        r1, w1 = await _authenticated(addrs["b"], "first")
        w1.write(big[:100_000])
        await _until(lambda: b.budget.bytes_reserved == len(big) - 4)
        r2, w2 = await _authenticated(addrs["b"], "second")
        w2.write((200_000).to_bytes(4, "big") + b"z" * 10)
        assert await _closed(r2)
        assert b.budget.refused == 1
        w1.write(big[100_000:])  # the first one finishes its frame
        await _until(lambda: len(inbox) == 1)
        assert inbox[0][:2] == ("first", Echo(text="y" * 200_000))
        assert b.budget.bytes_reserved == 0
        w1.close()
        w2.close()
        b.close()

    asyncio.run(scenario())


def test_before_authentication_only_handshake_sized_frames_are_read() -> None:
    addrs = _addrs("b")

    async def scenario() -> None:
        b = _transport("b", addrs, [])
        await _serve(b)
        reader, writer = await asyncio.open_connection(*addrs["b"])
        writer.write((64 * 1024 * 1024).to_bytes(4, "big") + b"x" * 4096)
        assert await _closed(reader)
        assert b.auth_failures == 1
        assert b.budget.bytes_reserved == 0  # nothing was reserved for it
        writer.close()
        b.close()

    asyncio.run(scenario())


def test_reject_src_closes_that_senders_connections(caplog: pytest.LogCaptureFixture) -> None:
    addrs = _addrs("b")
    inbox: list = []

    async def scenario() -> None:
        b = _transport("b", addrs, inbox)
        await _serve(b)
        reader, writer = await _authenticated(addrs["b"], "liar")
        other_r, other_w = await _authenticated(addrs["b"], "honest")
        writer.write(pack_frame("liar", 0, Echo(text="impossible"), MAX))
        await _until(lambda: len(inbox) == 1)
        assert b.reject_src("liar", RemoteProtocolError("entries must be consecutive")) == 1
        assert await _closed(reader)
        assert b.protocol_errors == 1
        other_w.write(pack_frame("honest", 0, Echo(text="fine"), MAX))
        await _until(lambda: len(inbox) == 2)
        for w in (writer, other_w):
            w.close()
        b.close()

    with caplog.at_level(logging.WARNING, logger="synod.runtime"):
        asyncio.run(scenario())
    assert [r.getMessage() for r in caplog.records] == [
        "closed 1 connection(s) of liar: invalid message: entries must be consecutive"]


def test_an_authenticated_connection_cannot_speak_under_another_id() -> None:
    addrs = _addrs("a", "b")
    inbox: list = []

    async def scenario() -> None:
        b = _transport("b", addrs, inbox)
        await _serve(b)
        reader, writer = await _authenticated(addrs["b"], "c1")
        writer.write(pack_frame("a", 0, Echo(text="I am peer a"), MAX))
        assert await _closed(reader)
        assert inbox == []
        assert b.protocol_errors == 1
        writer.close()
        b.close()

    asyncio.run(scenario())


def test_without_a_key_a_keyed_node_answers_with_a_refusal() -> None:
    addrs = _addrs("b")

    async def scenario() -> None:
        b = _transport("b", addrs, [])
        await _serve(b)
        reader, writer = await asyncio.open_connection(*addrs["b"])
        writer.write(pack_frame("c", 1, Echo(text="hi"), MAX))
        data = await reader.read(1 << 16)
        (payload,) = list(FrameSplitter(MAX).feed(data))
        with pytest.raises(RemoteProtocolError):
            open_envelope(payload, MAX)
        assert b"requires the cluster key" in payload
        assert await _closed(reader)
        writer.close()
        b.close()

    asyncio.run(scenario())


def test_keyless_transports_still_work_and_identify_by_first_frame() -> None:
    """Hand-built configs without a key: no handshake, as before."""
    addrs = _addrs("a", "b")
    inbox: list = []

    async def scenario() -> None:
        a, b = _transport("a", addrs, [], creds=None), _transport("b", addrs, inbox, creds=None)
        await _serve(b)
        a.send("b", Echo(text="plain"), 0)
        await _until(lambda: inbox == [("a", Echo(text="plain"), 0)])
        reader, writer = await asyncio.open_connection(*addrs["b"])
        writer.write(frame(encode(["c", 0, Echo(text="client")])))
        await _until(lambda: len(inbox) == 2)
        assert "c" in b.clients
        writer.close()
        a.close()
        b.close()

    asyncio.run(scenario())


def test_idle_clients_are_closed_but_idle_peers_are_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport_mod, "CLIENT_IDLE_TIMEOUT_MS", 150.0)
    monkeypatch.setattr(transport_mod, "SWEEP_INTERVAL_MS", 20.0)
    addrs = _addrs("a", "b")
    inbox: list = []

    async def scenario() -> None:
        b = _transport("b", addrs, inbox)
        await _serve(b)
        a = _transport("a", addrs, [])
        a.send("b", Echo(text="hello"), 0)
        reader, writer = await _authenticated(addrs["b"], "sleepy")
        writer.write(pack_frame("sleepy", 0, Echo(text="then nothing"), MAX))
        await _until(lambda: len(inbox) == 2)
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await _closed(reader)
        assert loop.time() - started >= 0.1
        assert "a" in b.peer_conns  # the equally idle peer keeps its connection
        writer.close()
        a.close()
        b.close()

    asyncio.run(scenario())


class _StuckTransport:
    """An asyncio transport whose peer never reads: its buffer only grows."""

    def __init__(self) -> None:
        self.buffered = 0

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def write(self, data: bytes) -> None:
        self.buffered += len(data)


def test_replies_to_clients_that_never_read_stop_at_the_node_wide_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each connection's buffer is bounded, and so are all of them together
    (1,024 clients x 16 MiB would otherwise be 16 GiB)."""
    from synod.runtime import constants
    from synod.runtime._conn import _Conn

    monkeypatch.setattr(constants, "CLIENT_WRITE_BUFFER_BYTES_MAX", 1000)
    monkeypatch.setattr(constants, "CLIENT_WRITE_BUFFER_CHECK_BYTES", 100)
    monkeypatch.setattr(constants, "CLIENT_WRITE_BUFFERS_BYTES_MAX", 2500)
    t = _transport("n1", _addrs("n1"), [])
    conns = []
    for _ in range(5):
        conn = _Conn(t)
        conn.transport = _StuckTransport()  # type: ignore[assignment]
        t.inbound.add(conn)  # type: ignore[arg-type]
        conns.append(conn)
    t._schedule_flush = lambda: None  # type: ignore[method-assign]
    accepted = 0
    for _ in range(100):
        for conn in conns:
            if conn.write(b"x" * 50):
                accepted += 1
            conn.flush_pending()
    assert t.write_buffered_bytes() <= 2500 + 50
    assert all(c.transport.buffered <= 1000 + 50 for c in conns)  # type: ignore[union-attr]
    assert accepted * 50 == t.write_buffered_bytes()
    assert accepted < 100 * 5
