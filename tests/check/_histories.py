"""Helpers for the checker tests: a compact way to write histories, a
brute-force reference checker, and hypothesis strategies for histories."""

from __future__ import annotations

import json
from collections.abc import Hashable
from functools import cache

from hypothesis import strategies as st

from synod.check import INF, Event, Model, Operation, make_model, operations
from synod.check.models import ILLEGAL


def hist(*lines: str) -> list[Event]:
    """Events from lines ``"PROCESS TYPE F [@KEY] [JSON VALUE]"``, e.g.
    ``"0 invoke cas [1, 2]"``, ``"1 ok get @x \\"ab\\""``; time = position."""
    out = []
    for n, line in enumerate(lines):
        proc, kind, f, *rest = line.split(maxsplit=3)
        tail = rest[0] if rest else ""
        key = None
        if tail.startswith("@"):
            key, _, tail = tail[1:].partition(" ")
        value = json.loads(tail) if tail.strip() else None
        out.append(Event(process=int(proc), type=kind, f=f, key=key, value=value, time=n, line=n + 1))
    return out


def brute_force(model: Model, ops: list[Operation]) -> bool:
    """Linearizability by plain enumeration (Herlihy & Wing's definition):
    some order of the operations respects real time (a before b when
    a.ret < b.call), every ``ok`` operation is legal in it, and ``info``
    operations are placed after their invoke or left out. One state per
    key, all keys together (no partitioning). Uses ``model.step``, not the
    compiled steppers."""
    live = [op for op in ops if op.status != "fail" or model.keeps_failed(op)]
    keys = sorted({op.key for op in live}, key=repr)
    init = tuple(model.init() for _ in keys)
    kidx = {k: i for i, k in enumerate(keys)}
    n = len(live)
    must = frozenset(i for i, op in enumerate(live) if op.ret != INF)

    @cache
    def go(placed: frozenset[int], state: tuple[Hashable, ...]) -> bool:
        if must <= placed:
            return True
        for i in range(n):
            if i in placed:
                continue
            op = live[i]
            if any(live[j].ret < op.call for j in must - placed if j != i):
                continue
            k = kidx[op.key]
            nxt = model.step(state[k], op)
            if nxt is ILLEGAL:
                continue
            if go(placed | {i}, state[:k] + (nxt,) + state[k + 1:]):
                return True
        return False

    return go(frozenset(), init)


# --- sequential runs of each model, for generated legal histories --------

VALUES = (0, 1, 2)


def run_sequentially(model_name: str, steps: list[tuple[str, object, str | None]]
                     ) -> list[tuple[str, object, object, str, str | None]]:
    """Apply (f, argument, key) steps to the model's sequential semantics.
    Returns (f, invoke value, completion value, type, key) per step; a cas
    that does not apply is a ``fail`` (it did not happen)."""
    state: dict[object, object] = {}
    out = []
    for f, arg, key in steps:
        s = state.get(key, make_model(model_name).init())
        if model_name in ("register", "cas-register"):
            if f == "read":
                out.append((f, None, s, "ok", key))
            elif f == "write":
                s = arg
                out.append((f, arg, arg, "ok", key))
            else:
                old, new = arg  # type: ignore[misc]
                if s == old:
                    s = new
                    out.append((f, [old, new], [old, new], "ok", key))
                else:
                    out.append((f, [old, new], [old, new], "fail", key))
        elif model_name == "kv":
            if f == "get":
                out.append((f, None, s, "ok", key))
            elif f == "put":
                s = str(arg)
                out.append((f, s, s, "ok", key))
            else:
                s = s + str(arg)  # type: ignore[operator]
                out.append((f, str(arg), str(arg), "ok", key))
        elif model_name == "set":
            if f == "add":
                s = s | {arg}  # type: ignore[operator]
                out.append((f, arg, arg, "ok", key))
            else:
                out.append((f, None, sorted(s), "ok", key))  # type: ignore[call-overload]
        elif model_name == "queue":
            if f == "enqueue":
                s = s + (arg,)  # type: ignore[operator]
                out.append((f, arg, arg, "ok", key))
            else:
                head = s[0] if s else None  # type: ignore[index]
                s = s[1:]  # type: ignore[index]
                out.append((f, None, head, "ok", key))
        elif model_name == "mutex":
            f = "release" if s else "acquire"
            s = not s
            out.append((f, None, None, "ok", key))
        state[key] = s
    return out


FUNCTIONS = {
    "register": ("read", "write"), "cas-register": ("read", "write", "cas"), "kv": ("get", "put", "append"),
    "set": ("add", "read"), "queue": ("enqueue", "dequeue"), "mutex": ("acquire",),
}
KEYED = ("kv", "register")


@st.composite
def steps_for(draw: st.DrawFn, model_name: str, n_max: int = 12) -> list[tuple[str, object, str | None]]:
    n = draw(st.integers(1, n_max))
    out = []
    for _ in range(n):
        f = draw(st.sampled_from(FUNCTIONS[model_name]))
        arg: object = draw(st.sampled_from(VALUES))
        if f == "cas":
            arg = (draw(st.sampled_from(VALUES)), draw(st.sampled_from(VALUES)))
        key = draw(st.sampled_from(("a", "b"))) if model_name in KEYED else None
        out.append((f, arg, key))
    return out


@st.composite
def legal_history(draw: st.DrawFn, model_name: str) -> list[Event]:
    """A history made by running the model sequentially, giving operation i
    the linearization point 10*i and an interval around it of random width,
    some completions turned into ``info`` (possibly never written), plus
    ``info`` operations that never took effect; processes are assigned so
    that none has two operations outstanding. Always linearizable."""
    run = run_sequentially(model_name, draw(steps_for(model_name)))
    spans = []
    for i, (f, inv, done, kind, key) in enumerate(run):
        t = 10 * i + 10
        call = t - draw(st.integers(0, 25))
        ret: float = t + draw(st.integers(0, 25))
        if kind == "ok" and draw(st.integers(0, 5)) == 0:
            kind, done = "info", None
            if draw(st.booleans()):
                ret = INF
        spans.append((call, ret, f, inv, done, kind, key))
    for _ in range(draw(st.integers(0, 2))):  # info operations that never took effect
        f = draw(st.sampled_from(FUNCTIONS[model_name]))
        arg: object = draw(st.sampled_from(VALUES))
        if f == "cas":
            arg = [draw(st.sampled_from(VALUES)), 9]
        if model_name == "kv":
            arg = "never"
        if f in ("read", "get", "dequeue", "acquire", "release"):
            arg = None
        key = draw(st.sampled_from(("a", "b"))) if model_name in KEYED else None
        spans.append((draw(st.integers(0, 10 * len(run) + 10)), INF, f, arg, None, "info", key))
    return _assign_processes(spans)


def _assign_processes(spans: list[tuple]) -> list[Event]:
    busy_until: list[float] = []
    timed: list[tuple[float, int, int, dict]] = []
    for call, ret, f, inv, done, kind, key in sorted(spans, key=lambda s: s[0]):
        proc = next((p for p, until in enumerate(busy_until) if until < call), None)
        if proc is None:
            proc = len(busy_until)
            busy_until.append(ret)
        busy_until[proc] = ret
        timed.append((call, 0, len(timed), dict(process=proc, type="invoke", f=f, key=key, value=inv)))
        if ret != INF:
            timed.append((ret, 1, len(timed), dict(process=proc, type=kind, f=f, key=key, value=done)))
    timed.sort(key=lambda x: (x[0], x[1], x[2]))
    return [Event(time=t, line=n + 1, **fields) for n, (t, _, _, fields) in enumerate(timed)]


def mutate_read(events: list[Event], model_name: str, index: int) -> list[Event] | None:
    """The events with the ``index``-th (mod count) ok read-like completion
    returning a value nothing ever wrote; None if there is no such read."""
    reads = [i for i, e in enumerate(events) if e.type == "ok" and e.f in ("read", "get", "dequeue")]
    if not reads:
        return None
    i = reads[index % len(reads)]
    e = events[i]
    bogus: object = {"kv": "never-written", "set": [99]}.get(model_name, 99)
    mutated = list(events)
    mutated[i] = Event(process=e.process, type=e.type, f=e.f, key=e.key, value=bogus, time=e.time, line=e.line)
    return mutated


@st.composite
def random_history(draw: st.DrawFn, model_name: str, n_max: int = 6, info_heavy: bool = False
                   ) -> list[Operation]:
    """Arbitrary small histories (often not linearizable): random intervals,
    random results, some ``info`` and some ``fail`` (with ``info_heavy``,
    half the operations are ``info``, to exercise the search's reductions)."""
    n = draw(st.integers(1, n_max))
    spans = []
    for _ in range(n):
        f = draw(st.sampled_from(FUNCTIONS[model_name] + (("release",) if model_name == "mutex" else ())))
        inv: object = None
        done: object = None
        if f in ("write", "enqueue", "add"):
            inv = done = draw(st.sampled_from(VALUES))
        elif f in ("put", "append"):
            inv = done = draw(st.sampled_from(("x", "y")))
        elif f == "cas":
            inv = done = [draw(st.sampled_from(VALUES)), draw(st.sampled_from(VALUES))]
        elif f in ("read", "dequeue"):
            done = draw(st.sampled_from((None, *VALUES))) if model_name != "set" else draw(
                st.lists(st.sampled_from(VALUES), max_size=3, unique=True))
        elif f == "get":
            done = draw(st.sampled_from(("", "x", "y", "xy", "yx")))
        kind = draw(st.sampled_from(("ok", "info") if info_heavy else ("ok", "ok", "ok", "info", "fail")))
        call = draw(st.integers(0, 40))
        ret: float = call + draw(st.integers(0, 20))
        if kind == "info" and draw(st.booleans()):
            ret = INF
        key = draw(st.sampled_from(("a", "b"))) if model_name in KEYED else None
        spans.append((call, ret, f, inv, done if kind == "ok" else None, kind, key))
    return operations(_assign_processes(spans))
