"""Linearizability checking: the Wing-Gong/Lowe search, as Porcupine does it.

Theory. A history is linearizable (Herlihy & Wing, TOPLAS 1990) if every
operation can be given a point between its invoke and its completion such
that, taken in the order of those points, the operations are a legal run of
the model. The search (Wing & Gong 1993, with Lowe's memoization, "Testing
for linearizability", 2017; the shape of Porcupine's ``checkSingle``):

- The history becomes a doubly linked list of *call* and *return* entries
  sorted by time (a call before a return at equal times, so touching
  intervals count as concurrent).
- Walking the list from the head, a call entry is a candidate: if the model
  allows the operation in the current state, the search *lifts* it (unlinks
  its call and its return), pushes (entry, state, linearized set) on a stack
  and starts again from the head. Reaching a return entry means the
  operation it belongs to should already have taken effect: the search pops
  the last choice, *unlifts* it and tries the next candidate after it.
- The linearized set is a bitset (an int); a configuration (linearized set,
  model state) that was already explored is never explored again (the
  cache), which makes the search exponential only in the concurrency, not
  in the history's length.
- Per key (P-compositionality): linearizability is local (Herlihy & Wing,
  Theorem 1), so the history is split by ``key`` and each object is checked
  on its own, from the model's initial state.

Operations whose outcome is unknown (``info``, or never completed) may take
effect at any point after their invoke, or never: they get no return entry,
so they stay candidates to the end and the search succeeds once every
operation with a return entry is linearized. Two reductions keep their
number from blowing the search up, both sound and complete (see
docs/checker.md): an unknown-outcome operation is not linearized where it
would not change the state (not linearizing it dominates), and among such
operations with the same function and argument only the earliest-invoked
unused one may be linearized next (they are interchangeable, and an earlier
invoke can stand in for a later one).

Answer: ``ok``; ``illegal`` with a :class:`Counterexample` (the longest
linearizable prefix the search found, the operation it could not place
before its return, and the operations concurrent with it: the failing
window); or ``unknown`` when the time limit ran out.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Hashable, Iterable, Sequence
from dataclasses import dataclass, field

from synod.check.history import INF, Event, HistoryError, Operation, operations
from synod.check.models import ILLEGAL, Model, Stepper

__all__ = ["CheckResult", "Counterexample", "check_events", "check_operations"]

VERDICTS = ("ok", "illegal", "unknown")
CONFIGURATIONS_MAX = 10_000_000  # cache entries over all keys (~2 GB) before answering unknown
_SLICE_PUSHES = 1024  # configurations a key explores per turn (and between clock checks)


@dataclass(frozen=True, slots=True, kw_only=True)
class Counterexample:
    """Where the search failed, in one key's history.

    ``prefix``: the longest partial linearization found, in linearization
    order, with ``states[i]`` the model state after ``prefix[i]``.
    ``stuck``: the operation whose return the search could not get past in
    that configuration: nothing left could be linearized before it.
    ``window``: ``stuck`` and every operation of the key whose interval
    overlaps it (open-ended ``info`` operations invoked before it returned
    included), by invoke; ``pending`` the ones of them not in ``prefix``:
    the candidates the search tried and found no way to place.
    """

    key: Hashable | None
    prefix: tuple[Operation, ...]
    states: tuple[Hashable, ...]
    stuck: Operation
    window: tuple[Operation, ...]
    pending: tuple[Operation, ...]
    initial_state: Hashable


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    """The verdict (``ok`` | ``illegal`` | ``unknown``) and how it was reached.

    ``operations``: all operations checked; ``partitions``: number of keys;
    ``dropped``: operations that cannot affect the verdict (failed ones,
    reads with unknown results); ``configurations``: cache entries explored
    in total; ``counterexample`` is set when ``verdict == "illegal"``;
    ``reason`` says why an ``unknown`` verdict gave up (the time limit or
    the configuration bound).
    """

    verdict: str
    model: str
    operations: tuple[Operation, ...]
    partitions: int
    dropped: int
    configurations: int
    counterexample: Counterexample | None = None
    timed_out_key: Hashable | None = field(default=None)
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"


def check_events(model: Model, events: Iterable[Event], *, timeout_s: float | None = None,
                 source: str = "", configurations_max: int = CONFIGURATIONS_MAX) -> CheckResult:
    """Pair ``events`` into operations and check them (see
    :func:`check_operations`). Raises HistoryError on a malformed history."""
    return check_operations(model, operations(events, source=source), timeout_s=timeout_s, source=source,
                            configurations_max=configurations_max)


def check_operations(model: Model, ops: Sequence[Operation], *, timeout_s: float | None = None,
                     source: str = "", reductions: bool = True,
                     configurations_max: int = CONFIGURATIONS_MAX) -> CheckResult:
    """Check ``ops`` for linearizability against ``model``, key by key.

    ``timeout_s`` bounds the whole check (None: no limit); when it runs out
    the verdict is ``unknown``, as it is when the search has memoized
    ``configurations_max`` configurations (its memory). ``reductions=False`` turns off the two
    reductions for unknown-outcome operations (the plain search, for
    cross-checking them). Raises :class:`HistoryError` naming the line of
    the first operation the model does not know.
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    by_key: dict[Hashable, list[Operation]] = {}
    for op in ops:
        why = model.check_op(op)
        if why is not None:
            raise HistoryError(why, source=source, line=op.lines[0])
        by_key.setdefault(op.key, []).append(op)
    parts: dict[Hashable, list[tuple[Operation, Stepper]]] = {}
    dropped = 0
    for key, key_ops in by_key.items():
        kept = model.prune(key_ops) if reductions else key_ops
        dropped += len(key_ops) - len(kept)
        for op in kept:
            step = model.compile(op)
            if step is None:
                dropped += 1
                continue
            parts.setdefault(key, []).append((op, step))
    searches = {key: _Search(model, key, part, reductions) for key, part in parts.items()}
    verdict, key, reason = _round_robin(searches, deadline, configurations_max)
    explored = sum(s.explored for s in searches.values())
    cex = searches[key].counterexample() if verdict == "illegal" else None
    return CheckResult(verdict=verdict, model=model.name, operations=tuple(ops), partitions=len(parts),
                       dropped=dropped, configurations=explored, counterexample=cex,
                       timed_out_key=key if verdict == "unknown" else None, reason=reason)


def _round_robin(searches: dict[Hashable, _Search], deadline: float | None, configurations_max: int
                 ) -> tuple[str, Hashable | None, str]:
    """Run the keys' searches in turns of a slice each, as Porcupine runs
    them in parallel: the first illegal key ends the check, so one hard key
    does not hide an easy counterexample in another. Returns (verdict, the
    illegal or unfinished key, why an unknown verdict gave up)."""
    running = list(searches.items())
    explored = 0  # configurations memoized, all keys together
    while running:
        still = []
        for key, search in running:
            before = search.explored
            verdict = search.run(_SLICE_PUSHES)
            explored += search.explored - before
            if verdict == "illegal":
                return "illegal", key, ""
            if verdict is None:
                still.append((key, search))
            if deadline is not None and time.monotonic() > deadline:
                return "unknown", key, "time limit"
            if explored > configurations_max:
                return "unknown", key, f"more than {configurations_max} configurations"
        running = still
    return "ok", None, ""


class _Search:
    """One key's search, resumable in slices (a generator underneath)."""

    def __init__(self, model: Model, key: Hashable, part: list[tuple[Operation, Stepper]],
                 reductions: bool) -> None:
        self.key = key
        self.ops = [op for op, _ in part]
        self.init = model.init()
        self.explored = 0
        self.budget = 0
        self.result: tuple[str, list[Operation], list[Hashable], Operation | None] | None = None
        self._gen = _search(self.ops, [s for _, s in part], self.init, self, reductions)

    def run(self, pushes: int) -> str | None:
        """Explore up to ``pushes`` more configurations; the verdict if done, else None."""
        if self.result is None:
            self.budget = pushes
            try:
                next(self._gen)
            except StopIteration as stop:
                self.result = stop.value
        return None if self.result is None else self.result[0]

    def counterexample(self) -> Counterexample:
        assert self.result is not None
        verdict, prefix, states, stuck = self.result
        assert verdict == "illegal"
        assert stuck is not None
        done = {op.id for op in prefix}
        window = tuple(op for op in self.ops if op.call <= stuck.ret and op.ret >= stuck.call)
        pending = tuple(op for op in window if op.id not in done)
        return Counterexample(key=self.key, prefix=tuple(prefix), states=tuple(states), stuck=stuck,
                              window=window, pending=pending, initial_state=self.init)


def _entries(ops: Sequence[Operation]) -> list[tuple[float, int, int]]:
    """(time, kind, op index) sorted: kind 0 = call, 1 = return; a call sorts
    before a return at the same time (Porcupine's order). Unknown-outcome
    operations (``ret`` infinite) get no return entry."""
    out = [(op.call, 0, i) for i, op in enumerate(ops)]
    out += [(op.ret, 1, i) for i, op in enumerate(ops) if op.ret != INF]
    out.sort()
    return out


def _interchangeable(ops: Sequence[Operation]) -> list[int]:
    """For each unknown-outcome operation, the index of the previous one
    (by invoke) with the same function and argument, else -1."""
    last: dict[tuple[str, Hashable], int] = {}
    pred = [-1] * len(ops)
    for i in sorted(range(len(ops)), key=lambda j: ops[j].call):
        op = ops[i]
        if op.ret == INF:
            k = (op.f, op.value)
            pred[i] = last.get(k, -1)
            last[k] = i
    return pred


def _search(ops: Sequence[Operation], steps: Sequence[Stepper], init: Hashable, owner: _Search,
            reductions: bool = True
            ) -> Generator[None, None, tuple[str, list[Operation], list[Hashable], Operation | None]]:
    """The Wing-Gong/Lowe search over one key's operations.

    A generator: it yields after every ``owner.budget`` pushes (keeping
    ``owner.explored`` current) and returns (verdict, longest prefix, states
    after each, stuck operation). The linked list lives in two int arrays:
    node 0 is the head, nodes 1..m the entries in time order, node m+1 the
    tail. With ``reductions=False`` unknown-outcome operations are plain
    candidates (still without return entries).

    One long function on purpose: it is the hot loop, and in CPython local
    variables are fast where calls and attribute lookups are not.
    """
    n = len(ops)
    entries = _entries(ops)
    m = len(entries)
    tail = m + 1
    nxt = list(range(1, m + 2)) + [tail]
    prv = [0] + list(range(0, m + 1))
    call_op = [-1] * (m + 2)           # node -> op index, for call nodes
    ret_node = [0] * n                 # op index -> its return node, 0 if none
    ret_op = [-1] * (m + 2)            # node -> op index, for return nodes
    for node, (_, kind, i) in enumerate(entries, 1):
        if kind == 0:
            call_op[node] = i
        else:
            ret_node[i] = node
            ret_op[node] = i
    optional = [op.ret == INF and reductions for op in ops]
    pred = _interchangeable(ops)
    lin = bytearray(n)
    # Invariant: left == number of return nodes still linked.
    left = m - n
    if left == 0:
        return "ok", [], [], None

    cache: set[tuple[int, Hashable]] = set()
    stack: list[tuple[int, Hashable, int]] = []
    best_depth = -1
    best_stack: list[tuple[int, Hashable, int]] = []
    best_stuck = 0
    best_state = init
    state = init
    bits = 0
    pushes = 0
    e = nxt[0]
    while True:
        i = call_op[e]
        if i >= 0:
            ns = steps[i](state)
            if ns is ILLEGAL or (optional[i] and (ns == state or (pred[i] >= 0 and not lin[pred[i]]))):
                e = nxt[e]
                continue
            nbits = bits | (1 << i)
            k = (nbits, ns)
            if k in cache:
                e = nxt[e]
                continue
            cache.add(k)
            stack.append((e, state, bits))
            state = ns
            bits = nbits
            lin[i] = 1
            p = prv[e]
            q = nxt[e]
            nxt[p] = q
            prv[q] = p
            r = ret_node[i]
            if r:
                p = prv[r]
                q = nxt[r]
                nxt[p] = q
                prv[q] = p
                left -= 1
                if not left:
                    owner.explored = len(cache)
                    return "ok", [], [], None
            pushes += 1
            if pushes >= owner.budget:
                owner.explored = len(cache)
                yield
                pushes = 0
            e = nxt[0]
            continue
        assert e != tail, "reached the tail with return entries still linked"
        if len(stack) > best_depth:
            best_depth = len(stack)
            best_stack = stack[:]
            best_state = state
            best_stuck = e
        if not stack:
            break
        e, state, bits = stack.pop()
        i = call_op[e]
        lin[i] = 0
        r = ret_node[i]
        if r:
            nxt[prv[r]] = r
            prv[nxt[r]] = r
            left += 1
        nxt[prv[e]] = e
        prv[nxt[e]] = e
        e = nxt[e]

    prefix = [ops[call_op[node]] for node, _, _ in best_stack]
    states = [s for _, s, _ in best_stack[1:]] + ([best_state] if best_stack else [])
    owner.explored = len(cache)
    return "illegal", prefix, states, ops[ret_op[best_stuck]]
