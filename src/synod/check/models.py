"""Sequential specifications ("models") that a history is checked against.

A model is a pure state machine (Herlihy & Wing 1990, section 2: a
sequential specification): ``init()`` gives the initial state, and
``step(state, op)`` gives the state after ``op`` or :data:`ILLEGAL` when
``op`` (with its recorded output) cannot happen in ``state``. States are
hashable values (None, ints, strings, tuples, frozensets, bools), so the
search can memoize on them.

Keys: an operation's ``key`` names an independent object; the checker runs
one copy of the model per key (P-compositionality, Herlihy & Wing's
locality theorem), each from ``init()``.

Outputs. ``ok`` operations are checked against their output. For ``info``
operations the output is unknown: ``step`` then applies the operation's
effect without a constraint, and an operation with neither effect nor
constraint left (a read whose result is unknown) is dropped by
:meth:`Model.compile`. ``fail`` operations did not happen and are dropped,
with one documented exception: :class:`CasRegister` with
``fail_means_mismatch=True`` reads a failed cas as "the compare found another
value" (how Porcupine's tests read Jepsen's etcd logs).

The models: :class:`Register` (read/write), :class:`CasRegister`
(read/write/cas), :class:`KV` (get/put/append/incr/cas on string values; a
missing key reads as ""), :class:`SetModel` (add/read), :class:`Queue`
(enqueue/dequeue, FIFO) and :class:`Mutex` (acquire/release).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, ClassVar

from synod.check.history import Operation

__all__ = ["CasRegister", "ILLEGAL", "KV", "MODELS", "Model", "Mutex", "Queue", "Register", "SetModel",
           "Stepper", "make_model"]


class _Illegal:
    __slots__ = ()

    def __repr__(self) -> str:
        return "ILLEGAL"


ILLEGAL: Any = _Illegal()
"""What a step returns when the operation cannot happen in the state."""

Stepper = Callable[[Hashable], Hashable]
"""One operation compiled for the search: state -> next state or ILLEGAL."""


def _fmt(value: Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, tuple):
        return "[" + " ".join(_fmt(v) for v in value) + "]"
    if isinstance(value, frozenset):
        return "#{" + " ".join(sorted(_fmt(v) for v in value)) + "}"
    if isinstance(value, str):
        return repr(value) if not value.isidentifier() else value
    return str(value)


class Model:
    """Base class: subclasses set ``name`` and ``functions`` and implement
    ``init``, ``step`` and ``check_op``; ``compile`` may be overridden with a
    faster closure that must agree with ``step``."""

    name: ClassVar[str] = ""
    functions: ClassVar[tuple[str, ...]] = ()
    read_functions: ClassVar[tuple[str, ...]] = ()

    def init(self) -> Hashable:
        raise NotImplementedError

    def step(self, state: Hashable, op: Operation) -> Hashable:
        """The state after ``op``, or ILLEGAL. ``op.status`` is ``ok`` (output
        known) or ``info`` (output unknown)."""
        raise NotImplementedError

    def check_op(self, op: Operation) -> str | None:
        """Why ``op`` is not an operation of this model, or None if it is."""
        if op.f not in self.functions:
            return f"{self.name} has no operation {op.f!r} (it has {', '.join(self.functions)})"
        return None

    def keeps_failed(self, op: Operation) -> bool:
        """True if a ``fail`` completion of ``op`` is a definite response to
        check (default: a failed operation did not happen, and is dropped)."""
        return False

    def prune(self, ops: list[Operation]) -> list[Operation]:
        """Operations of one key that cannot change the verdict, removed
        before the search (default: none). Must be exact: the history with
        and without them is equally linearizable."""
        return ops

    def compile(self, op: Operation) -> Stepper | None:
        """``op`` as a stepper for the search, or None when it cannot affect
        the verdict (a failed op, or a read whose output is unknown)."""
        if op.status == "fail" and not self.keeps_failed(op):
            return None
        if op.status != "ok" and op.f in self.read_functions:
            return None
        step = self.step
        return lambda state: step(state, op)

    def describe(self, op: Operation) -> str:
        """``op`` in one short line: ``cas [1 4] -> ok``, ``read -> 3``."""
        arg = "" if op.f in self.read_functions else " " + _fmt(op.value)
        if op.status == "info":
            return f"{op.f}{arg} -> ?"
        if op.status == "fail":
            return f"{op.f}{arg} -> fail"
        out = _fmt(op.output) if op.f in self.read_functions else "ok"
        return f"{op.f}{arg} -> {out}"

    def describe_state(self, state: Hashable) -> str:
        return _fmt(state)


class Register(Model):
    """A read/write register. ``read`` returns the value. It starts as
    ``initial`` (nil by default; Jepsen's cas-register tests start at 0)."""

    name = "register"
    functions = ("read", "write")
    read_functions = ("read",)

    def __init__(self, *, initial: Hashable = None) -> None:
        assert isinstance(initial, Hashable), "the initial value must be hashable"
        self.initial = initial

    def init(self) -> Hashable:
        return self.initial

    def step(self, state: Hashable, op: Operation) -> Hashable:
        if op.f == "write":
            return op.value
        if op.status != "ok" or op.output == state:
            return state
        return ILLEGAL

    def compile(self, op: Operation) -> Stepper | None:
        if op.status == "fail" or (op.status != "ok" and op.f == "read"):
            return None
        if op.f == "write":
            v = op.value
            return lambda s: v
        out = op.output
        return lambda s: s if s == out else ILLEGAL


class CasRegister(Register):
    """A register with compare-and-set: ``cas`` with value ``[old, new]``
    sets ``new`` if the value is ``old``. An ``ok`` cas applied; with
    ``fail_means_mismatch`` a ``fail`` cas is a response saying the value
    was not ``old`` (nothing applied); otherwise a failed cas is dropped.
    ``initial`` as for :class:`Register`."""

    name = "cas-register"
    functions = ("read", "write", "cas")

    def __init__(self, *, initial: Hashable = None, fail_means_mismatch: bool = False) -> None:
        super().__init__(initial=initial)
        self.fail_means_mismatch = fail_means_mismatch

    def check_op(self, op: Operation) -> str | None:
        if (why := super().check_op(op)) is not None:
            return why
        if op.f == "cas" and not (isinstance(op.value, tuple) and len(op.value) == 2):
            return f"cas value must be [old, new], not {_fmt(op.value)}"
        return None

    def keeps_failed(self, op: Operation) -> bool:
        return self.fail_means_mismatch and op.f == "cas"

    def step(self, state: Hashable, op: Operation) -> Hashable:
        if op.f != "cas":
            return super().step(state, op)
        old, new = op.value
        if op.status == "fail":
            return state if state != old else ILLEGAL
        if state == old:
            return new
        return state if op.status == "info" else ILLEGAL

    def compile(self, op: Operation) -> Stepper | None:
        if op.f != "cas":
            return super().compile(op)
        if op.status == "fail" and not self.fail_means_mismatch:
            return None
        old, new = op.value
        if op.status == "fail":
            return lambda s: s if s != old else ILLEGAL
        if op.status == "info":
            return lambda s: new if s == old else s
        return lambda s: new if s == old else ILLEGAL


_INT64_MAX = 2**63 - 1


def _integer(s: str) -> int | None:
    """``s`` as Redis's INCR reads it (``string2ll``): "0" or a decimal
    without leading zeros, in 64 bits; a missing key ("") is 0. None if it
    is no integer."""
    if s == "" or s == "0":
        return 0
    digits = s[1:] if s[:1] == "-" else s
    if not (digits.isascii() and digits.isdigit()) or digits[0] == "0":
        return None
    n = int(s)
    return n if -_INT64_MAX - 1 <= n <= _INT64_MAX else None


class KV(Model):
    """A key-value map of strings, one register per key (ops with the same
    key):

    - ``get`` returns the key's value (a missing key reads as ""; a null
      result means "");
    - ``put`` sets it, ``append`` concatenates;
    - ``incr`` adds one to a value that reads as an integer (Redis's INCR: a
      missing key is 0; anything else is an error, so an ``incr`` there is
      illegal) and returns the new number, an int; the value becomes its
      decimal string, so a ``get`` of a counter reads ``"3"``;
    - ``cas`` with value ``[old, new]`` (``old`` null: the empty string)
      sets ``new`` if the value is ``old``: legal only then when ``ok``; an
      ``info`` cas applies where the value is ``old`` and nowhere else; a
      failed cas did not happen (a watch that tripped, a refusal)."""

    name = "kv"
    functions = ("get", "put", "append", "incr", "cas")
    read_functions = ("get",)

    def init(self) -> Hashable:
        return ""

    def check_op(self, op: Operation) -> str | None:
        if (why := super().check_op(op)) is not None:
            return why
        if op.f in ("put", "append") and not isinstance(op.value, str):
            return f"{op.f} value must be a string, not {_fmt(op.value)}"
        if op.f == "get" and op.status == "ok" and not isinstance(op.output, str | None):
            return f"get result must be a string or nil, not {_fmt(op.output)}"
        if op.f == "incr" and op.status == "ok" and (type(op.output) is not int):
            return f"incr result must be an integer, not {_fmt(op.output)}"
        if op.f == "cas" and not (isinstance(op.value, tuple) and len(op.value) == 2
                                  and isinstance(op.value[0], str | None) and isinstance(op.value[1], str)):
            return f"cas value must be [old, new] (strings; old may be nil), not {_fmt(op.value)}"
        return None

    def step(self, state: Hashable, op: Operation) -> Hashable:
        assert isinstance(state, str)
        if op.f == "put":
            return op.value
        if op.f == "append":
            return state + op.value
        if op.f == "incr":
            n = _integer(state)
            if n is None or n == _INT64_MAX:
                return ILLEGAL  # Redis answers an error and changes nothing
            if op.status == "ok" and op.output != n + 1:
                return ILLEGAL
            return str(n + 1)
        if op.f == "cas":
            old, new = op.value
            if state == (old or ""):
                return new
            return state if op.status == "info" else ILLEGAL
        if op.status != "ok" or (op.output or "") == state:
            return state
        return ILLEGAL

    def prune(self, ops: list[Operation]) -> list[Operation]:
        """Drop unknown-outcome writes that nothing observed: a put, an
        append, or a cas's ``new``, of a value ``v`` (non-empty) that no
        ``ok`` get returned inside its result and no cas expected inside its
        ``old``.

        Why this is exact. Without them the history is at least as
        linearizable (an ``info`` operation may never happen). Conversely,
        take a linearization in which such a write took effect: ``v`` is
        part of the value from then until a put replaces it (a cas replaces
        it only if its ``old``, the whole value, contains ``v``: observed;
        an incr cannot apply to a value holding a written string, see
        below), and every get in between would return it (observed). So
        only appends and info operations that changed nothing lie in
        between; leave out the write and those info operations, and every
        remaining operation is as legal as before, and from the put on the
        states agree. Incr is the exception: it reads the value as a number,
        so a written ``"5"`` shows as ``6`` with no ``"5"`` in sight; a key
        with any incr is left whole.

        Unique written values (the workloads' ``[process.n]`` tokens) make
        this prune almost every write that timed out, which the search would
        otherwise carry to the end as a candidate."""
        if any(op.f == "incr" and op.status != "fail" for op in ops):
            return ops
        seen = [op.output for op in ops if op.f == "get" and op.status == "ok" and isinstance(op.output, str)]
        seen += [op.value[0] for op in ops if op.f == "cas" and op.status != "fail" and isinstance(op.value[0], str)]
        out = []
        for op in ops:
            written = op.value[1] if op.f == "cas" else op.value if op.f in ("put", "append") else None
            if (op.status == "info" and isinstance(written, str) and written
                    and not any(written in r for r in seen)):
                continue
            out.append(op)
        return out

    def compile(self, op: Operation) -> Stepper | None:
        if op.status == "fail" or (op.status != "ok" and op.f == "get"):
            return None
        v = op.value
        if op.f == "put":
            return lambda s: v
        if op.f == "append":
            return lambda s: s + v
        if op.f in ("incr", "cas"):
            step = self.step
            return lambda s: step(s, op)
        out = op.output or ""
        return lambda s: s if s == out else ILLEGAL

    def describe(self, op: Operation) -> str:
        if op.f != "incr":
            return super().describe(op)
        return f"incr -> {'?' if op.status == 'info' else 'fail' if op.status == 'fail' else _fmt(op.output)}"


class SetModel(Model):
    """A grow-only set: ``add`` inserts the value, ``read`` returns every
    element (a list, order ignored)."""

    name = "set"
    functions = ("add", "read")
    read_functions = ("read",)

    def init(self) -> Hashable:
        return frozenset()

    def check_op(self, op: Operation) -> str | None:
        if (why := super().check_op(op)) is not None:
            return why
        if op.f == "read" and op.status == "ok" and not isinstance(op.output, tuple | frozenset | None):
            return f"read result must be a list, not {_fmt(op.output)}"
        return None

    def step(self, state: Hashable, op: Operation) -> Hashable:
        assert isinstance(state, frozenset)
        if op.f == "add":
            return state | {op.value}
        if op.status != "ok" or frozenset(op.output or ()) == state:
            return state
        return ILLEGAL

    def compile(self, op: Operation) -> Stepper | None:
        if op.status == "fail" or (op.status != "ok" and op.f == "read"):
            return None
        if op.f == "add":
            v = frozenset((op.value,))
            return lambda s: s | v
        out = frozenset(op.output or ())
        return lambda s: s if s == out else ILLEGAL


class Queue(Model):
    """A FIFO queue: ``enqueue`` appends the value, ``dequeue`` returns the
    head (nil when the queue is empty)."""

    name = "queue"
    functions = ("enqueue", "dequeue")
    read_functions = ()

    def init(self) -> Hashable:
        return ()

    def step(self, state: Hashable, op: Operation) -> Hashable:
        assert isinstance(state, tuple)
        if op.f == "enqueue":
            return state + (op.value,)
        if op.status != "ok":
            return state[1:]
        if not state:
            return state if op.output is None else ILLEGAL
        return state[1:] if state[0] == op.output else ILLEGAL

    def describe(self, op: Operation) -> str:
        if op.f == "dequeue":
            return f"dequeue -> {'?' if op.status == 'info' else _fmt(op.output)}"
        return super().describe(op)


class Mutex(Model):
    """A lock: ``acquire`` when free takes it, ``release`` when held frees it
    (the state is True while held). An acquire or release whose outcome is
    unknown may still happen only where it is legal."""

    name = "mutex"
    functions = ("acquire", "release")
    read_functions = ()

    def init(self) -> Hashable:
        return False

    def step(self, state: Hashable, op: Operation) -> Hashable:
        if op.f == "acquire":
            return True if not state else ILLEGAL
        return False if state else ILLEGAL


MODELS: dict[str, Callable[[], Model]] = {
    "register": Register, "cas-register": CasRegister, "kv": KV, "set": SetModel, "queue": Queue,
    "mutex": Mutex,
}


def make_model(name: str, **options: Any) -> Model:
    """The model called ``name`` (a key of :data:`MODELS`); ValueError if unknown."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r} (want one of {', '.join(MODELS)})")
    return MODELS[name](**options)
