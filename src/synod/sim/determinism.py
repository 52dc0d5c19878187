"""Determinism checks for simulated runs (DESIGN.md section 5).

"The same seed twice gives a byte-identical trace." :func:`check_determinism`
runs a build-and-run callable twice, each time with a fresh in-memory
:class:`~synod.sim.trace.Tracer`, and reports the first line where the two
traces differ. A divergence means something outside the seed steered the
run: the wall clock, the global ``random``, ``id()``, iteration over a set
or dict whose order depends on hashing, or state leaking from one run into
the next (a module-level counter, a cache).

:func:`replay_command` formats the shell command that replays a failing run;
every failing simulation prints it with its seed.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from synod.sim.trace import Tracer

__all__ = ["Divergence", "check_determinism", "first_divergence", "replay_command"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Divergence:
    """Where two traces of the same run first differ.

    ``index``: 0-based line number. ``line_a`` / ``line_b``: the two lines at
    that index; None when that trace had already ended.
    """

    index: int
    line_a: str | None
    line_b: str | None

    def __str__(self) -> str:
        return (f"traces diverge at line {self.index}:\n"
                f"  run A: {self.line_a if self.line_a is not None else '<end of trace>'}\n"
                f"  run B: {self.line_b if self.line_b is not None else '<end of trace>'}")


def first_divergence(a: Sequence[str], b: Sequence[str]) -> Divergence | None:
    """The first index where line sequences ``a`` and ``b`` differ, or None."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return Divergence(index=i, line_a=x, line_b=y)
    if len(a) != len(b):
        i = min(len(a), len(b))
        return Divergence(index=i, line_a=a[i] if i < len(a) else None,
                          line_b=b[i] if i < len(b) else None)
    return None


def check_determinism(run: Callable[[Tracer], object]) -> Divergence | None:
    """Run ``run(tracer)`` twice, each with a fresh in-memory tracer, and
    compare the traces line by line.

    ``run`` must build everything it uses (simulator, nodes, nemesis) from
    its seed and pass the tracer to the simulator. Returns None when the two
    traces are identical, else the first :class:`Divergence`. An empty trace
    counts as identical, so callers should also check that something ran.
    """
    traces = []
    for _ in range(2):
        tracer = Tracer(keep=True)
        run(tracer)
        assert tracer.lines is not None
        traces.append(tracer.lines)
    return first_divergence(traces[0], traces[1])


def replay_command(argv: list[str]) -> str:
    """The shell command that replays a run: ``synod`` followed by ``argv``
    (for example ``["mr", "sim", "--seed", "17"]``), quoted for a POSIX shell."""
    return shlex.join(["synod", *argv])
