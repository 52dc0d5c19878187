"""RealHost in-process: the node contract's effect order (DESIGN.md section 2)
and timers on the asyncio loop, with the transport replaced by a recorder."""

from __future__ import annotations

import asyncio
import json
import os
import random
from pathlib import Path
from typing import Any

import pytest

from synod.core.errors import RemoteProtocolError
from synod.core.node import Context, Node
from synod.runtime.config import parse_config
from synod.runtime.constants import EXIT_CODE_HANDLER_ERROR
from synod.runtime.host import RealHost
from synod.runtime.testing import Echo, EchoReply


def _host(tmp_path: Path, events: list[tuple], monkeypatch: pytest.MonkeyPatch) -> RealHost:
    config = parse_config({
        "run_dir": str(tmp_path), "seed": 1, "fs_root": None,
        "nodes": {nid: {"port": 9000 + i, "factory": "synod.runtime.testing:make_node"}
                  for i, nid in enumerate(("n1", "n2"))},
    })
    host = RealHost(config, "n1")
    host.transport.send = lambda dst, msg, corr: events.append(("send", dst, msg, corr))  # type: ignore[method-assign]
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        events.append(("fsync", os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return host


def _boot(host: RealHost, node: Node) -> Context:
    ctx = Context(host, "n1", ("n1", "n2"), random.Random(0), host.disk, None)
    host.boot(node, ctx)
    return ctx


async def _until(predicate: Any, timeout_s: float = 2.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.002)


def test_sync_happens_before_sends_and_timers_follow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DESIGN.md section 2: disk made durable, then messages sent, then timers armed."""
    events: list[tuple] = []

    class Probe(Node):
        def on_start(self, ctx: Context) -> None:
            ctx.disk.append("wal", b"entry")
            ctx.disk.sync()
            ctx.send("n2", Echo(text="after sync"))
            ctx.set_timer("t", 5)
            ctx.set_timer("t", 30)  # re-arming replaces
            ctx.set_timer("u", 5)
            ctx.cancel_timer("u")
            assert events == []  # nothing happens inside the handler

        def on_timer(self, ctx: Context, name: str) -> None:
            events.append(("timer", name, ctx.now_ms))

    async def scenario() -> None:
        host = _host(tmp_path, events, monkeypatch)
        started_ms = host.clock_ms()
        _boot(host, Probe())
        assert events == []  # the group commits at the end of this loop turn
        await _until(lambda: any(e[0] == "send" for e in events))
        assert [e[:2] for e in events] == [("fsync", "wal"), ("fsync", "data"), ("send", "n2")]
        await _until(lambda: any(e[0] == "timer" for e in events))
        # "t" fired once, after the re-armed 30 ms: the 5 ms arming and "u"
        # (also 5 ms) would have fired before it had they been kept.
        timers = [e for e in events if e[0] == "timer"]
        assert [t[1] for t in timers] == ["t"]
        assert timers[0][2] - started_ms >= 30

    asyncio.run(scenario())


class _WalLogger(Node):
    """Logs and syncs each message whose text starts with "log", then acks every message."""

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        if msg.text.startswith("log"):
            ctx.disk.append("wal", msg.text.encode())
            ctx.disk.sync()
        ctx.send("n2", Echo(text=f"ack {msg.text}"))


def test_group_commit_one_fsync_per_loop_turn_and_order_kept(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Handlers run in one loop turn share one fsync; a handler that asked for
    no sync but ran after one that did still waits for that fsync (what it says
    may depend on the unsynced state), and every send keeps its order."""
    events: list[tuple] = []

    async def scenario() -> None:
        host = _host(tmp_path, events, monkeypatch)
        _boot(host, _WalLogger())
        host.deliver("n2", Echo(text="read 0"), 1)   # no group waits: sent at once
        assert [e[:2] for e in events] == [("send", "n2")]
        for i, text in enumerate(("log 1", "log 2", "read 3", "log 4")):
            host.deliver("n2", Echo(text=text), i + 2)
        assert len(events) == 1   # all four wait for the group's fsync
        await _until(lambda: len([e for e in events if e[0] == "send"]) == 5)
        assert [e[0] for e in events] == ["send", "fsync", "fsync", "send", "send", "send", "send"]
        assert [e[2].text for e in events if e[0] == "send"] == ["ack read 0", "ack log 1", "ack log 2",
                                                                  "ack read 3", "ack log 4"]
        assert host.group_commits == 1
        assert host.disk.read("wal") == b"log 1log 2log 4"

    asyncio.run(scenario())


class _EarlyForwarder(Node):
    """Logs and syncs "log" messages; answers each with an ordinary ack and
    forwards it ahead_of_sync (a plain send and a call)."""

    def on_message(self, ctx: Context, src: str, msg: Any) -> Any:
        if msg.text.startswith("log"):
            ctx.disk.append("wal", msg.text.encode())
            ctx.disk.sync()
        ctx.send("n2", Echo(text=f"ack {msg.text}"))
        ctx.send("n2", Echo(text=f"early {msg.text}"), ahead_of_sync=True)
        return self._ask(ctx, msg.text)

    async def _ask(self, ctx: Context, text: str) -> None:
        await ctx.call("n2", Echo(text=f"call {text}"), 1_000, ahead_of_sync=True)


def test_ahead_of_sync_sends_leave_before_the_group_fsync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A message marked ahead_of_sync (send or call) is sent as its handler
    ends, while the group's fsync is pending or running; the ordinary
    sends still wait for it, in order."""
    events: list[tuple] = []

    async def scenario() -> None:
        host = _host(tmp_path, events, monkeypatch)
        _boot(host, _EarlyForwarder())
        host.deliver("n2", Echo(text="log 1"), 1)
        host.deliver("n2", Echo(text="read 2"), 2)
        texts = [e[2].text for e in events if e[0] == "send"]
        assert texts == ["early log 1", "call log 1", "early read 2", "call read 2"]
        assert not any(e[0] == "fsync" for e in events)
        await _until(lambda: len([e for e in events if e[0] == "send"]) == 6)
        kinds = [e[0] if e[0] != "send" else e[2].text for e in events]
        assert kinds == ["early log 1", "call log 1", "early read 2", "call read 2", "fsync", "fsync",
                         "ack log 1", "ack read 2"]

    asyncio.run(scenario())


def test_failed_group_fsync_is_a_crash_and_says_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An fsync that fails (EIO) on the fsync thread stops the node as a
    handler crash would, and nothing that waited for it is sent; a stop while
    a group waits first makes it durable and sends it."""
    events: list[tuple] = []

    async def scenario() -> None:
        host = _host(tmp_path, events, monkeypatch)
        _boot(host, _WalLogger())
        host.deliver("n2", Echo(text="log a"), 1)
        host.stop(0, reason="test")   # the waiting group is made durable and sent first
        assert [e[0] for e in events] == ["fsync", "fsync", "send"]

        events.clear()
        failing = _host(tmp_path / "2", events, monkeypatch)

        def eio(fd: int) -> None:
            raise OSError(5, "Input/output error")

        monkeypatch.setattr(os, "fsync", eio)
        _boot(failing, _WalLogger())
        failing.deliver("n2", Echo(text="log b"), 1)
        await _until(lambda: failing.exit_code is not None)
        assert failing.exit_code == EXIT_CODE_HANDLER_ERROR
        assert events == []

    asyncio.run(scenario())


def test_call_resumes_with_reply_or_none_on_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[tuple] = []
    results: list[Any] = []

    class Caller(Node):
        def on_start(self, ctx: Context) -> Any:
            return self.run(ctx)

        async def run(self, ctx: Context) -> None:
            results.append(await ctx.call("n2", Echo(text="first"), 1000))
            results.append(await ctx.call("n2", Echo(text="second"), 20))
            await ctx.sleep(5)
            results.append("slept")

    async def scenario() -> None:
        host = _host(tmp_path, events, monkeypatch)
        _boot(host, Caller())
        (_, dst, msg, corr), = events
        assert (dst, msg) == ("n2", Echo(text="first"))
        assert corr > 0
        host._on_deliver("n2", EchoReply(node_id="n2", text="first"), -corr)
        await _until(lambda: len(results) == 3)
        assert results == [EchoReply(node_id="n2", text="first"), None, "slept"]
        assert host._timers == {}  # the answered call's timeout was cancelled

    asyncio.run(scenario())


def test_handler_exception_stops_the_node_with_code_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[tuple] = []

    class Crashy(Node):
        def on_message(self, ctx: Context, src: str, msg: Any) -> None:
            ctx.send("n2", Echo(text="never sent"))
            raise RuntimeError("bug")

    async def scenario() -> RealHost:
        host = _host(tmp_path, events, monkeypatch)
        _boot(host, Crashy())
        host._on_deliver("n2", Echo(text="x"), 0)
        host._on_deliver("n2", Echo(text="ignored after the crash"), 0)
        return host

    host = asyncio.run(scenario())
    assert host.exit_code == 1
    assert host.stopped
    assert events == []  # the crashed handler's effects were not applied
    lines = [json.loads(x) for x in (tmp_path / "n1" / "trace.jsonl").read_text().splitlines()]
    assert [x["kind"] for x in lines] == ["crash", "exit"]
    assert lines[0]["error"] == "RuntimeError: bug"


def test_exit_applies_the_handlers_sends_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[tuple] = []

    class Quitter(Node):
        def on_start(self, ctx: Context) -> None:
            ctx.send("n2", Echo(text="bye"))
            ctx.set_timer("never", 1)
            ctx.exit(7)

    async def scenario() -> RealHost:
        host = _host(tmp_path, events, monkeypatch)
        _boot(host, Quitter())
        return host

    host = asyncio.run(scenario())
    assert [e[:2] for e in events] == [("send", "n2")]
    assert host.exit_code == 7
    assert host._timers == {}


def test_start_builds_the_node_with_its_world(tmp_path: Path) -> None:
    """ctx.peers in config order, ctx.fs the local file system, fs_root created,
    the supervisor's faults.json applied before the node runs."""
    from fsspec.implementations.local import LocalFileSystem

    from synod.runtime.config import free_ports
    from synod.runtime.testing import EchoNode

    port_a, port_b = free_ports(2)
    config = parse_config({
        "run_dir": str(tmp_path / "run"), "seed": 1, "fs_root": str(tmp_path / "shared"),
        "nodes": {"b": {"port": port_b, "factory": "synod.runtime.testing:make_node",
                        "params": {"ping_interval_ms": 0}},
                  "a": {"port": port_a, "factory": "synod.runtime.testing:make_node"}},
    })
    (tmp_path / "run" / "a").mkdir(parents=True)
    (tmp_path / "run" / "a" / "faults.json").write_text(json.dumps({"blocked_out": ["b"]}))

    async def scenario() -> RealHost:
        host = RealHost(config, "a")
        await host.start()
        host.stop(0, reason="test over")
        host.transport.close()
        return host

    host = asyncio.run(scenario())
    assert isinstance(host.node, EchoNode)
    assert host.ctx is not None
    assert host.ctx.peers == ("b", "a")
    assert isinstance(host.ctx.fs, LocalFileSystem)
    assert (tmp_path / "shared").is_dir()
    assert host.transport.faults.blocked_out == ("b",)
    assert host.node.boots == 1
    assert (tmp_path / "run" / "a" / "data" / "state").exists()


def test_remote_protocol_error_drops_the_handlers_effects_and_the_sender_not_the_node(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 8: an impossible message (on_message raises RemoteProtocolError
    before changing state) is treated as never received: no send, no reply,
    no timer, no exit; the sender's connections are closed; the node runs on."""
    events: list[tuple] = []
    rejected: list[tuple[str, str]] = []

    class Validating(Node):
        def on_message(self, ctx: Context, src: str, msg: Any) -> None:
            if msg.text == "impossible":
                ctx.reply(EchoReply(node_id="n1", text="never"))
                ctx.send("n2", Echo(text="never sent"))
                ctx.set_timer("never", 1)
                ctx.exit(9)
                raise RemoteProtocolError("entries must be consecutive")
            ctx.reply(EchoReply(node_id="n1", text=msg.text))

    async def scenario() -> RealHost:
        host = _host(tmp_path, events, monkeypatch)
        host.transport.reject_src = lambda src, e: rejected.append((src, str(e)))  # type: ignore[method-assign]
        _boot(host, Validating())
        host._on_deliver("mallory", Echo(text="impossible"), 3)
        host._on_deliver("c1", Echo(text="fine"), 4)
        return host

    host = asyncio.run(scenario())
    assert rejected == [("mallory", "entries must be consecutive")]
    assert host.exit_code is None
    assert not host.stopped
    assert host._timers == {}
    assert events == [("send", "c1", EchoReply(node_id="n1", text="fine"), -4)]
    lines = [json.loads(x) for x in (tmp_path / "n1" / "trace.jsonl").read_text().splitlines()]
    assert [x["kind"] for x in lines] == ["invalid_message"]
    assert lines[0]["src"] == "mallory"


def test_remote_protocol_error_after_a_disk_sync_is_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A handler that already changed durable state cannot be taken back."""
    events: list[tuple] = []

    class Late(Node):
        def on_message(self, ctx: Context, src: str, msg: Any) -> None:
            ctx.disk.write("term", b"7")
            ctx.disk.sync()
            raise RemoteProtocolError("validated too late")

    async def scenario() -> RealHost:
        host = _host(tmp_path, events, monkeypatch)
        _boot(host, Late())
        host._on_deliver("n2", Echo(text="x"), 0)
        return host

    host = asyncio.run(scenario())
    assert host.exit_code == 1
    assert [e for e in events if e[0] == "send"] == []
