"""The node contract and its host (DESIGN.md section 2), driven by the simulator:
calls and their timeouts, sleep, reply, exit, and the order of effects."""

from __future__ import annotations

from typing import Any

import pytest

from synod.core import Context, LocalProtocolError, Message, Node, pack_record, scan_records
from synod.sim import Constant, LinkModel, Network, Simulator, Tracer


class Request(Message, tag="test.host.Request"):
    x: int


class Response(Message, tag="test.host.Response"):
    y: int


class Note(Message, tag="test.host.Note"):
    text: str


def _sim(delay_ms: float = 5.0, *, tracer: Tracer | None = None, seed: int = 1) -> Simulator:
    """A simulator whose every link takes exactly ``delay_ms``."""
    return Simulator(seed, network=Network(LinkModel(latency=Constant(delay_ms))), tracer=tracer)


class Doubler(Node):
    """Replies 2x to every Request; stays silent if x < 0."""

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        if type(msg) is Request and msg.x >= 0:
            ctx.reply(Response(y=2 * msg.x))


class Silent(Node):
    pass


class Caller(Node):
    """On start, calls ``server`` once and records (reply, local time)."""

    def __init__(self, log: list, x: int = 21, timeout_ms: float = 100.0) -> None:
        self.log = log
        self.x = x
        self.timeout_ms = timeout_ms

    async def on_start(self, ctx: Context) -> None:
        reply = await ctx.call("server", Request(x=self.x), self.timeout_ms)
        self.log.append((reply, ctx.now_ms))


# -- ctx.call -------------------------------------------------------------------------

def test_call_resumes_with_the_reply() -> None:
    log: list = []
    sim = _sim(5.0)
    sim.add_node("server", Doubler)
    sim.add_node("client", lambda: Caller(log))
    sim.run()
    assert log == [(Response(y=42), 10.0)]  # request 5 ms + reply 5 ms


def test_call_times_out_with_none_on_the_callers_clock() -> None:
    log: list = []
    sim = _sim(5.0)
    sim.add_node("server", Silent)
    sim.add_node("client", lambda: Caller(log, timeout_ms=100.0))
    sim.run()
    assert log == [(None, 100.0)]


def test_a_reply_after_the_timeout_is_ignored_and_traced() -> None:
    log: list = []
    tracer = Tracer(keep=True)
    sim = _sim(60.0, tracer=tracer)  # the reply comes back at 120 ms, after the 100 ms timeout
    sim.add_node("server", Doubler)
    sim.add_node("client", lambda: Caller(log, timeout_ms=100.0))
    sim.run()
    assert log == [(None, 100.0)]
    assert tracer.lines is not None
    ignored = [line for line in tracer.lines if '"kind":"ignore_reply"' in line]
    assert len(ignored) == 1
    assert '"t_ms":120.0' in ignored[0]


def test_only_the_called_node_may_answer_a_call() -> None:
    """A reply is matched by its correlation number, which another node could
    guess: a "reply" from any node but the one called is ignored (traced), and
    the real answer still resumes the call."""
    log: list = []
    tracer = Tracer(keep=True)
    sim = _sim(5.0, tracer=tracer)
    sim.add_node("server", Silent)
    sim.add_node("client", lambda: Caller(log, timeout_ms=100.0))
    sim.add_node("impostor", Silent)
    sim.run(until_ms=1.0)
    client = sim.hosts["client"]
    [wait_id] = list(client._waiting)
    client.deliver("impostor", Response(y=666), -wait_id)
    assert log == []
    assert any('"reason":"the call went to server"' in line for line in tracer.lines or [])
    client.deliver("server", Response(y=1), -wait_id)
    assert log == [(Response(y=1), 1.0)]


def test_a_reply_cancels_the_call_timer() -> None:
    log: list = []
    tracer = Tracer(keep=True)
    sim = _sim(5.0, tracer=tracer)
    sim.add_node("server", Doubler)
    sim.add_node("client", lambda: Caller(log, timeout_ms=100.0))
    client = sim.hosts["client"]
    sim.run(until_ms=10.0)
    assert log == [(Response(y=42), 10.0)]
    assert client.timers == {}  # the timeout is disarmed
    sim.run()
    assert log == [(Response(y=42), 10.0)]  # and resumes nothing at 100 ms
    assert [line for line in tracer.lines or [] if '"kind":"timer"' in line] == []


class SequentialCaller(Node):
    """Several calls in sequence from one coroutine; the server sees each in turn."""

    def __init__(self, log: list) -> None:
        self.log = log

    async def on_start(self, ctx: Context) -> None:
        for x in (1, 2, -1, 3):
            reply = await ctx.call("server", Request(x=x), 50.0)
            self.log.append((x, reply, ctx.now_ms))


def test_sequential_calls_match_replies_to_requests() -> None:
    log: list = []
    sim = _sim(5.0)
    sim.add_node("server", Doubler)
    sim.add_node("client", lambda: SequentialCaller(log))
    sim.run()
    assert log == [
        (1, Response(y=2), 10.0),
        (2, Response(y=4), 20.0),
        (-1, None, 70.0),          # no reply: timed out 50 ms after 20
        (3, Response(y=6), 80.0),
    ]


# -- ctx.sleep --------------------------------------------------------------------------

class Sleeper(Node):
    def __init__(self, log: list) -> None:
        self.log = log

    async def on_start(self, ctx: Context) -> None:
        self.log.append(("start", ctx.now_ms))
        await ctx.sleep(30.0)
        self.log.append(("woke", ctx.now_ms))
        await ctx.sleep(0.0)
        self.log.append(("woke again", ctx.now_ms))


def test_sleep_resumes_after_the_delay() -> None:
    log: list = []
    sim = _sim()
    sim.add_node("a", lambda: Sleeper(log))
    sim.run()
    assert log == [("start", 0.0), ("woke", 30.0), ("woke again", 30.0)]


class BadAwait(Node):
    async def on_start(self, ctx: Context) -> None:
        import asyncio

        await asyncio.sleep(0)


def test_awaiting_anything_but_call_or_sleep_is_a_local_error() -> None:
    sim = _sim()
    with pytest.raises(LocalProtocolError, match="only ctx.call, ctx.gather and ctx.sleep"):
        sim.add_node("a", BadAwait)


# -- ctx.reply ----------------------------------------------------------------------------

class Pinger(Node):
    """Sends a plain Note (not a call) and records what comes back."""

    def __init__(self, log: list) -> None:
        self.log = log

    def on_start(self, ctx: Context) -> None:
        ctx.send("echo", Note(text="hi"))

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        self.log.append((src, msg))


class Echo(Node):
    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        ctx.reply(Note(text=msg.text + " back"))


def test_reply_to_a_plain_message_is_an_ordinary_send() -> None:
    log: list = []
    sim = _sim()
    sim.add_node("echo", Echo)
    sim.add_node("a", lambda: Pinger(log))
    sim.run()
    assert log == [("echo", Note(text="hi back"))]


class ReplyMisuse(Node):
    def __init__(self, errors: list) -> None:
        self.errors = errors

    def on_start(self, ctx: Context) -> None:
        self._try(ctx, "on_start")
        ctx.set_timer("t", 1.0)

    def on_timer(self, ctx: Context, name: str) -> None:
        self._try(ctx, "on_timer")

    def _try(self, ctx: Context, where: str) -> None:
        try:
            ctx.reply(Note(text="x"))
        except LocalProtocolError:
            self.errors.append(where)


def test_reply_outside_on_message_is_a_local_error() -> None:
    errors: list = []
    sim = _sim()
    sim.add_node("a", lambda: ReplyMisuse(errors))
    sim.run()
    assert errors == ["on_start", "on_timer"]


class AsyncServer(Node):
    """A coroutine on_message: replies before its first await, then tries
    again after it (which is outside the synchronous part)."""

    def __init__(self, errors: list) -> None:
        self.errors = errors

    async def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        ctx.reply(Response(y=msg.x + 1))
        await ctx.sleep(1.0)
        try:
            ctx.reply(Response(y=-1))
        except LocalProtocolError:
            self.errors.append("after await")


def test_async_on_message_may_reply_before_its_first_await_only() -> None:
    log: list = []
    errors: list = []
    sim = _sim(5.0)
    sim.add_node("server", lambda: AsyncServer(errors))
    sim.add_node("client", lambda: Caller(log, x=1))
    sim.run()
    assert log == [(Response(y=2), 10.0)]
    assert errors == ["after await"]


# -- ctx.exit -------------------------------------------------------------------------------

class Quitter(Node):
    """Writes, sends, arms a timer and exits, all in one handler."""

    def __init__(self, log: list) -> None:
        self.log = log

    def on_start(self, ctx: Context) -> None:
        ctx.disk.write("state", b"written before exit")
        ctx.send("sink", Note(text="last words"))
        ctx.set_timer("never", 1.0)
        ctx.exit(3)

    def on_timer(self, ctx: Context, name: str) -> None:
        self.log.append(("timer", name))

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        self.log.append(("message", msg))


class Sink(Node):
    def __init__(self, log: list) -> None:
        self.log = log

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer("poke", 20.0)

    def on_timer(self, ctx: Context, name: str) -> None:
        ctx.send("q", Note(text="are you there?"))

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        self.log.append((src, msg, ctx.now_ms))


def test_exit_applies_the_handlers_effects_then_stops_the_node() -> None:
    q_log: list = []
    sink_log: list = []
    sim = _sim(5.0)
    sim.add_node("sink", lambda: Sink(sink_log))
    q = sim.add_node("q", lambda: Quitter(q_log))
    sim.run()
    assert sink_log == [("q", Note(text="last words"), 5.0)]  # the send went out
    assert not q.up
    assert q.exit_code == 3
    assert q_log == []          # the timer never fired; the later message was dropped
    assert sim.drops == 1
    assert q.disk.read("state") == b"written before exit"
    sim.restart("q")            # what it wrote survives an exit
    assert q.disk.read("state") == b"written before exit"


# -- the order of effects -----------------------------------------------------------------

class Writer(Node):
    """On start: append a record, sync if asked, then tell the reader."""

    def __init__(self, sync: bool, starts: list) -> None:
        self.sync = sync
        self.starts = starts  # outside the node, so it survives the crash

    def on_start(self, ctx: Context) -> None:
        self.starts.append(ctx.now_ms)
        if len(self.starts) > 1:
            return  # a restart: stay quiet
        ctx.disk.append("log", pack_record(b"promise"))
        if self.sync:
            ctx.disk.sync()
        ctx.send("reader", Note(text="it is written"))


class Reader(Node):
    """When told, looks at the writer's disk (as a test oracle would)."""

    def __init__(self, sim: Simulator, seen: list) -> None:
        self.sim = sim
        self.seen = seen

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        writer = self.sim.hosts[src]
        self.seen.append((writer.up, writer.disk.read("log")))


@pytest.mark.parametrize("sync", [True, False])
def test_sync_is_durable_before_the_message_that_follows_it_arrives(sync: bool) -> None:
    """The writer crashes right after its handler (before the message lands)
    and restarts; when the reader gets the message, the record is on the
    writer's disk only if the writer synced (the Ready rule)."""
    seen: list = []
    starts: list = []
    sim = _sim(5.0)
    sim.add_node("reader", lambda: Reader(sim, seen))
    sim.add_node("writer", lambda: Writer(sync, starts), start=False)
    sim.call_at(1.0, sim.restart, "writer")   # the writer's handler runs at 1 ms
    sim.call_at(1.0, sim.crash, "writer")     # and it dies right after
    sim.call_at(2.0, sim.restart, "writer")
    sim.run()
    assert starts == [1.0, 2.0]
    assert len(seen) == 1, "the message was sent before the crash, so it arrives"
    up, log = seen[0]
    assert up
    if sync:
        assert log is not None
        assert scan_records(log).records == [b"promise"]
    else:
        assert log is None


class OrderProbe(Node):
    """Records the order in which the host applies one handler's effects."""

    def __init__(self, sim: Simulator, events: list) -> None:
        self.sim = sim
        self.events = events

    def on_start(self, ctx: Context) -> None:
        ctx.set_timer("t", 0.0)
        ctx.send("peer", Note(text="m"))
        ctx.disk.write("f", b"x")
        ctx.disk.sync()
        self.events.append(("in handler", self.sim.pending_events(),
                            ctx.disk.sync_requested))

    def on_timer(self, ctx: Context, name: str) -> None:
        self.events.append(("timer", ctx.now_ms))


def test_effects_are_queued_until_the_handler_returns() -> None:
    events: list = []
    sim = _sim(5.0)
    sim.add_node("peer", Silent)
    host = sim.add_node("a", lambda: OrderProbe(sim, events))
    # Inside the handler nothing was sent or armed yet, and the sync was pending.
    assert events == [("in handler", 0, True)]
    assert host.disk.sync_requested is False
    assert sim.pending_events() == 2  # the message and the timer
    sim.crash("a")
    sim.restart("a")
    assert host.disk.read("f") == b"x"


# -- deferred replies and input from outside a handler (issue 10 part 1) ---------------

class Deferring(Node):
    """Keeps each Request's reply handle; answers them all, newest first,
    when a Note arrives (or when a driver invokes ``answer_all``)."""

    def __init__(self) -> None:
        self.waiting: list = []

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        if type(msg) is Request:
            self.waiting.append((ctx.reply_handle(), msg.x))
        elif type(msg) is Note:
            self.answer_all(ctx)

    def answer_all(self, ctx: Context) -> None:
        for handle, x in reversed(self.waiting):
            ctx.reply_to(handle, Response(y=x + 1))
        self.waiting.clear()


def test_reply_to_answers_a_call_from_a_later_handler_and_invoke_gives_outside_input() -> None:
    log: list = []
    sim = _sim(5.0)
    sim.add_node("server", Deferring)
    for i in range(3):
        sim.add_node(f"c{i}", lambda i=i: Caller(log, x=i, timeout_ms=1000.0))
    sim.run(until_ms=50.0)
    assert log == [] and len(sim.hosts["server"].node.waiting) == 3
    host = sim.hosts["server"]
    host.invoke(host.node.answer_all)  # a driver's input, applied like a handler's effects
    sim.run()
    assert sorted(r.y for r, _ in log) == [1, 2, 3]


def test_reply_handle_outside_on_message_and_invoke_on_a_stopped_node_are_errors() -> None:
    sim = _sim(5.0)
    sim.add_node("server", Deferring)
    sim.run()
    host = sim.hosts["server"]
    with pytest.raises(LocalProtocolError, match="outside on_message"):
        host.ctx.reply_handle()
    sim.stop_node("server", 0)
    with pytest.raises(LocalProtocolError, match="not running"):
        host.invoke(host.node.answer_all)


# -- ctx.gather -----------------------------------------------------------------------

class Gatherer(Node):
    """On start, gathers calls to ``server`` with each x, records (replies, time)."""

    def __init__(self, log: list, xs: list[int], timeout_ms: float = 100.0, then: int | None = None) -> None:
        self.log = log
        self.xs = xs
        self.timeout_ms = timeout_ms
        self.then = then

    async def on_start(self, ctx: Context) -> None:
        replies = await ctx.gather([ctx.call("server", Request(x=x), self.timeout_ms) for x in self.xs])
        self.log.append((replies, ctx.now_ms))
        if self.then is not None:   # a plain call after a gather still works
            self.log.append(await ctx.call("server", Request(x=self.then), self.timeout_ms))


def test_gather_sends_every_call_at_once_and_resumes_with_the_replies_in_order() -> None:
    log: list = []
    sim = _sim(5.0)
    sim.add_node("server", Doubler)
    sim.add_node("client", lambda: Gatherer(log, [1, 2, 3], then=4))
    sim.run()
    # all three out at once: the replies are in after one round trip, not three
    assert log == [([Response(y=2), Response(y=4), Response(y=6)], 10.0), Response(y=8)]


def test_gather_gives_none_for_a_call_that_timed_out_and_waits_for_the_last() -> None:
    log: list = []
    sim = _sim(5.0)
    sim.add_node("server", Doubler)   # silent for x < 0
    sim.add_node("client", lambda: Gatherer(log, [5, -1, 7], timeout_ms=50.0))
    sim.run()
    assert log == [([Response(y=10), None, Response(y=14)], 50.0)]


def test_gather_of_nothing_resumes_at_once() -> None:
    log: list = []
    sim = _sim(5.0)
    sim.add_node("server", Doubler)
    sim.add_node("client", lambda: Gatherer(log, []))
    sim.run()
    assert log == [([], 0.0)]


def test_gather_takes_only_calls() -> None:
    ctx_holder: list = []

    class Bad(Node):
        def on_start(self, ctx: Context) -> None:
            with pytest.raises(LocalProtocolError, match="ctx.gather takes ctx.call"):
                ctx.gather([ctx.sleep(1.0)])  # type: ignore[list-item]
            ctx_holder.append(True)

    sim = _sim(5.0)
    sim.add_node("client", Bad)
    sim.run()
    assert ctx_holder == [True]


def test_a_crash_during_a_gather_drops_it() -> None:
    log: list = []
    sim = _sim(5.0)
    sim.add_node("server", Silent)
    sim.add_node("client", lambda: Gatherer(log, [1, 2], timeout_ms=100.0))
    sim.run(until_ms=20.0)
    sim.crash("client")
    sim.run(until_ms=300.0)
    assert log == []
