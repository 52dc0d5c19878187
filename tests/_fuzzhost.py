"""A host for driving one node by hand (the fuzz tests): the shared
:class:`synod.core.Host` with effects recorded instead of performed.

Sends pile up in ``sent``; timers in ``timers`` (name -> delay); a sync
makes the in-memory :class:`~synod.sim.disk.SimDisk` durable; an exit stops
the host. The clock is ``now_ms``, moved by the test.

:meth:`FuzzHost.feed` delivers one message and checks the fuzz contract: a
handler either runs normally or raises ``RemoteProtocolError`` having
queued no effect (no send, timer, sync or exit). Anything else propagates:
that is a crash.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from typing import Any

from synod.core import Context, Host, Node
from synod.core.errors import RemoteProtocolError
from synod.sim.disk import SimDisk
from synod.sim.simulator import new_memory_fs

__all__ = ["FuzzHost", "fuzz_messages"]


def fuzz_messages(default: int) -> int:
    """Messages a fuzz test feeds one system: ``SYNOD_FUZZ_MESSAGES`` or ``default``."""
    return int(os.environ.get("SYNOD_FUZZ_MESSAGES", default))


class FuzzHost(Host):
    def __init__(self, node: Node, node_id: str, peers: tuple[str, ...], *, seed: int = 1,
                 fs: Any = None) -> None:
        super().__init__()
        self.now_ms = 0.0
        self.sent: list[tuple[str, Any, int]] = []
        self.timers: dict[Any, float] = {}
        self.exit_code: int | None = None
        self.events: Counter[str] = Counter()  # trace events by kind
        self.rejected = 0   # messages refused with RemoteProtocolError
        self.handled = 0    # messages handled normally
        disk = SimDisk(random.Random(f"disk:{seed}"))
        ctx = Context(self, node_id, peers, random.Random(f"{seed}:{node_id}"), disk,
                      fs if fs is not None else new_memory_fs())
        self.boot(node, ctx)

    # -- Host hooks ------------------------------------------------------------
    def clock_ms(self) -> float:
        return self.now_ms

    def trace(self, event: str, fields: dict[str, Any]) -> None:
        self.events[event] += 1
        if event == "state":
            self.events[f"state:{fields.get('role')}"] += 1

    def _apply(self, ctx: Context) -> None:
        if ctx.disk.sync_requested:
            ctx.disk.make_durable()
        effects = ctx.take_effects()
        self.sent.extend(effects.sends)
        for name, delay_ms in effects.timer_ops:
            if delay_ms is None:
                self.timers.pop(name, None)
            else:
                self.timers[name] = delay_ms
        if effects.exit_code is not None:
            self.exit_code = effects.exit_code
            self.shutdown()

    # -- driving ---------------------------------------------------------------
    def feed(self, src: str, msg: Any, corr: int = 0) -> bool:
        """Deliver ``msg``; True if handled, False if refused with
        RemoteProtocolError (after checking it queued no effect)."""
        assert not self.stopped, "feeding a stopped node"
        ctx = self.ctx
        try:
            self.deliver(src, msg, corr)
        except RemoteProtocolError:
            effects = ctx.effects
            assert not effects.sends, f"refused {msg!r} but queued sends {effects.sends!r}"
            assert not effects.timer_ops, f"refused {msg!r} but queued timers"
            assert not ctx.disk.sync_requested, f"refused {msg!r} but asked for a sync"
            assert effects.exit_code is None, f"refused {msg!r} but asked to exit"
            ctx.end_request()
            self.rejected += 1
            return False
        self.handled += 1
        return True

    def fire(self, name: Any) -> None:
        """Fire timer ``name`` (it must be armed)."""
        del self.timers[name]
        self.fire_timer(name)

    def take_sent(self) -> list[tuple[str, Any, int]]:
        out, self.sent = self.sent, []
        return out
