"""Pairing each message's send with its receipt or its drop.

A trace says ``send {dst, corr, msg}`` on the sender's lane and, later,
either ``recv {src, corr, msg}`` on the receiver's lane or ``drop {dst, corr,
reason}`` on the sender's lane. Nothing in a line names the send it answers,
so the viewer pairs them by these rules, reading lines in time order:

1. A **recv** at ``dst`` from ``src`` pairs with the oldest still unpaired
   send from ``src`` to ``dst`` with the same ``corr`` and the same message
   (type and every field, compared as canonical JSON). Identical messages
   cannot be told apart, so they pair first-in first-out.
2. A recv with no such unpaired send, but an earlier paired one, is a
   network **duplicate** of the latest such send: one more arrow from it.
3. A **drop** written right after its send (the line just before is a
   send by the same node, at the same ``t_ms``, with the same ``dst`` and
   ``corr``: the simulator's loss and partition drops, decided when the
   message is sent) pairs with that send and is drawn as a short stub. Any other
   drop stands in for a receipt (the simulator's ``node down``, decided on
   arrival) and pairs with the oldest unpaired send on the link
   (``src``, ``dst``, ``corr``), whatever its type, since a drop line
   carries no message; failing that it duplicates the link's latest send.
4. A send left unpaired at the end is **in flight**. A recv or drop that
   matches no send at all (a trace cut at its start, or one file of a real
   run missing) is kept as an **orphan** and drawn as a point.

``corr`` is the call correlation of ``ctx.call``: ``+k`` a request, ``-k``
the reply to request ``k``, ``0`` a plain message. A restarted node numbers
its calls from 1 again; rule 1's message comparison and the first-in
first-out order keep its new calls apart from answers to the old ones.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from synod.viz._load import Record

__all__ = ["Arrow", "Pairing", "pair_messages", "message_type"]

DELIVERED = "delivered"
DROPPED = "dropped"
IN_FLIGHT = "in_flight"


@dataclass(slots=True)
class Arrow:
    """One message from ``send`` to its ``end`` (the recv or drop record; None
    while in flight). ``status``: delivered, dropped or in_flight;
    ``duplicate``: a second arrival of a send that already had one;
    ``at_send``: a drop decided when it was sent (rule 3), not on arrival."""

    send: Record
    src: str
    dst: str
    corr: int
    msg_type: str
    status: str = IN_FLIGHT
    end: Record | None = None
    duplicate: bool = False
    at_send: bool = False  # dropped by the sender's side (loss, partition), not on arrival

    @property
    def t_send_ms(self) -> float:
        return self.send.t_ms

    @property
    def t_end_ms(self) -> float | None:
        return None if self.end is None else self.end.t_ms

    @property
    def reason(self) -> str | None:
        if self.status != DROPPED or self.end is None:
            return None
        reason = self.end.fields.get("reason")
        return None if reason is None else str(reason)


@dataclass(slots=True)
class Pairing:
    """Arrows in the order of their send lines (a duplicate right after its
    first arrival), and the orphan recv and drop records."""

    arrows: list[Arrow] = field(default_factory=list)
    orphans: list[Record] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for a in self.arrows if a.status == status)


def message_type(msg: Any) -> str:
    """The message's type tag (``msg["type"]`` as the codec renders it)."""
    if type(msg) is dict:
        tag = msg.get("type")
        if type(tag) is str:
            return tag
        return "object"
    return type(msg).__name__ if msg is not None else "none"


_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def _corr(fields: dict[str, Any]) -> Any:
    corr = fields.get("corr", 0)
    return corr if type(corr) is int else 0


def _oldest(queue: deque[int] | None, arrows: list[Arrow]) -> int | None:
    """Pop and return the oldest arrow of ``queue`` still in flight."""
    if queue is None:
        return None
    while queue:
        i = queue.popleft()
        if arrows[i].status == IN_FLIGHT:
            return i
    return None


class _Pairer:
    def __init__(self) -> None:
        self.out = Pairing()
        self._by_body: dict[tuple[str, str, int, str], deque[int]] = {}
        self._by_link: dict[tuple[str, str, int], deque[int]] = {}
        self._last_by_body: dict[tuple[str, str, int, str], int] = {}
        self._last_by_link: dict[tuple[str, str, int], int] = {}
        self._prev: Record | None = None
        self._prev_arrow: int | None = None

    def feed(self, r: Record) -> None:
        prev_arrow, self._prev_arrow = self._prev_arrow, None
        prev, self._prev = self._prev, r
        kind = r.kind
        if kind == "send":
            self._send(r)
        elif kind == "recv":
            self._recv(r)
        elif kind == "drop":
            self._drop(r, prev, prev_arrow)

    def _send(self, r: Record) -> None:
        dst = r.fields.get("dst")
        if type(dst) is not str:
            self.out.orphans.append(r)
            return
        msg = r.fields.get("msg")
        corr = _corr(r.fields)
        arrows = self.out.arrows
        i = len(arrows)
        arrows.append(Arrow(send=r, src=r.node, dst=dst, corr=corr, msg_type=message_type(msg)))
        body = (r.node, dst, corr, _canonical(msg))
        link = (r.node, dst, corr)
        self._by_body.setdefault(body, deque()).append(i)
        self._by_link.setdefault(link, deque()).append(i)
        self._last_by_body[body] = i
        self._last_by_link[link] = i
        self._prev_arrow = i

    def _recv(self, r: Record) -> None:
        src = r.fields.get("src")
        if type(src) is not str:
            self.out.orphans.append(r)
            return
        body = (src, r.node, _corr(r.fields), _canonical(r.fields.get("msg")))
        i = _oldest(self._by_body.get(body), self.out.arrows)
        if i is not None:
            self._end(i, r, DELIVERED)
            return
        self._duplicate(self._last_by_body.get(body), r, DELIVERED)

    def _drop(self, r: Record, prev: Record | None, prev_arrow: int | None) -> None:
        dst = r.fields.get("dst")
        if type(dst) is not str:
            self.out.orphans.append(r)
            return
        corr = _corr(r.fields)
        arrows = self.out.arrows
        if (prev_arrow is not None and prev is not None and prev.node == r.node and prev.t_ms == r.t_ms
                and arrows[prev_arrow].dst == dst and arrows[prev_arrow].corr == corr
                and arrows[prev_arrow].status == IN_FLIGHT):
            self._end(prev_arrow, r, DROPPED)
            arrows[prev_arrow].at_send = True
            return
        link = (r.node, dst, corr)
        i = _oldest(self._by_link.get(link), arrows)
        if i is not None:
            self._end(i, r, DROPPED)
            return
        self._duplicate(self._last_by_link.get(link), r, DROPPED)

    def _end(self, i: int, r: Record, status: str) -> None:
        arrow = self.out.arrows[i]
        assert arrow.status == IN_FLIGHT, arrow
        assert r.t_ms >= arrow.send.t_ms, (arrow, r)
        arrow.status = status
        arrow.end = r

    def _duplicate(self, i: int | None, r: Record, status: str) -> None:
        if i is None:
            self.out.orphans.append(r)
            return
        first = self.out.arrows[i]
        self.out.arrows.append(Arrow(send=first.send, src=first.src, dst=first.dst, corr=first.corr,
                                     msg_type=first.msg_type, status=status, end=r, duplicate=True))


def pair_messages(records: list[Record]) -> Pairing:
    """Pair the sends, recvs and drops of time-sorted ``records`` (rules in
    this module's docstring). Every recv and drop ends up in exactly one
    arrow or among the orphans."""
    pairer = _Pairer()
    for r in records:
        pairer.feed(r)
    pairer.out.arrows.sort(key=lambda a: a.send.index)  # stable: duplicates after their first
    return pairer.out
