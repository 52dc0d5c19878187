"""The host's side of the node contract (DESIGN.md section 2): what a handler
queued is ``ctx.effects``, taken whole with ``ctx.take_effects()``; which
request ``ctx.reply`` answers is set by ``ctx.begin_request`` and
``ctx.end_request``. Hosts use only these calls, never a private field of
the context."""

from __future__ import annotations

import random
from typing import Any

import pytest

from synod.core import Context, Host, LocalProtocolError, Message
from synod.core.node import Effects, ReplyHandle
from synod.sim.disk import SimDisk


class Note(Message, tag="test.effects.Note"):
    text: str


class BareHost(Host):
    """Enough of a host to build a context; nothing is ever applied."""

    def clock_ms(self) -> float:
        return 0.0

    def trace(self, event: str, fields: dict[str, Any]) -> None:
        pass


def _ctx() -> Context:
    return Context(BareHost(), "a", ("a", "b"), random.Random(1), SimDisk(random.Random(1)), None)


def test_effects_are_queued_in_order_and_taken_whole() -> None:
    ctx = _ctx()
    assert not ctx.effects
    ctx.send("b", Note(text="one"))
    ctx.set_timer("election", 150.0)
    ctx.send("b", Note(text="two"))
    ctx.cancel_timer("heartbeat")
    ctx.exit(3)
    assert ctx.effects
    taken = ctx.take_effects()
    assert taken.sends == [("b", Note(text="one"), 0), ("b", Note(text="two"), 0)]
    assert taken.timer_ops == [("election", 150.0), ("heartbeat", None)]
    assert taken.exit_code == 3
    assert not ctx.effects, "take_effects leaves nothing queued"
    assert ctx.effects is not taken
    ctx.send("b", Note(text="three"))
    assert taken.sends[-1] == ("b", Note(text="two"), 0), "what was taken no longer grows"


ONE_EFFECT = {
    "send": lambda ctx: ctx.send("b", Note(text="x")),
    "set_timer": lambda ctx: ctx.set_timer("t", 0.0),
    "cancel_timer": lambda ctx: ctx.cancel_timer("t"),
    "exit": lambda ctx: ctx.exit(0),
}


@pytest.mark.parametrize("queue", sorted(ONE_EFFECT))
def test_any_one_effect_makes_the_queue_true_and_clear_empties_it(queue: str) -> None:
    ctx = _ctx()
    ONE_EFFECT[queue](ctx)
    effects = ctx.effects
    assert effects
    effects.clear()
    assert not effects
    assert ctx.effects is effects, "clear keeps the queue (and its lists) in place"
    assert (effects.sends, effects.timer_ops, effects.exit_code) == ([], [], None)


def test_reply_answers_the_request_between_begin_and_end() -> None:
    ctx = _ctx()
    with pytest.raises(LocalProtocolError):
        ctx.reply(Note(text="too early"))
    ctx.begin_request("client-1", 7)
    ctx.reply(Note(text="answer"))
    assert ctx.reply_handle() == ReplyHandle("client-1", 7)
    ctx.end_request()
    with pytest.raises(LocalProtocolError):
        ctx.reply(Note(text="too late"))
    with pytest.raises(LocalProtocolError):
        ctx.reply_handle()
    assert ctx.take_effects().sends == [("client-1", Note(text="answer"), -7)]


def test_a_plain_message_is_answered_with_an_ordinary_send() -> None:
    ctx = _ctx()
    ctx.begin_request("b", 0)
    ctx.reply(Note(text="hi back"))
    ctx.end_request()
    assert ctx.effects.sends == [("b", Note(text="hi back"), 0)]


def test_effects_repr_names_its_fields() -> None:
    effects = Effects()
    effects.exit_code = 1
    assert repr(effects) == "Effects(sends=[], early_sends=[], timer_ops=[], exit_code=1)"


def test_begin_request_refuses_a_reply_correlation() -> None:
    with pytest.raises(LocalProtocolError):
        _ctx().begin_request("b", -3)
