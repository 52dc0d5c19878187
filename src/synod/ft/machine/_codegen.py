"""The Python source of a region (see ``_translate``): its blocks' statements
joined by their terminators into one function ``_r(room) -> (pc, retired)``.

Two shapes:

- *flat*, a region of one block that does not branch to itself: its
  statements on the registers list ``x``, then a ``return`` of the next pc
  and the block's instruction count;
- *looped*, a region whose blocks branch among themselves: the registers
  it uses are copied into locals (``r5 = x[5]``) on entry and the ones it
  writes copied back on every way out (the loop's ``break``, and an
  ``except Slow`` that writes back and re-raises, so the precise path sees
  every register as the instructions before it left them). A ``while True``
  loop selects the block by ``pc``; a block that branches to itself becomes
  an inner ``while`` loop of its own. A local is a Python fast local, the
  list item a subscript: the loop bodies that run millions of times do
  about half the work.

Every block first checks its instruction count against ``room`` (the
budget the run loop passed): the region stops before a block it could not
finish, and the run loop goes on one instruction at a time.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from synod.ft.machine._emit import Term

_REG = re.compile(r"\bx\[(\d+)\]")
_N_PLUS = re.compile(r"\bn \+ (\d+)")
# The names translated code may use, bound as default arguments (fast locals) by ``_translate``.
HELPERS = ("x", "mem", "pf", "u32", "u16", "s16", "p32", "p16", "slow", "Slow", "store", "div", "rem")
_NAME = re.compile(r"\b(" + "|".join(HELPERS) + r")\b")


def _header(body: str) -> str:
    """``def _r(room, ...)`` binding the helpers ``body`` uses, in a fixed order."""
    used = set(_NAME.findall(body))
    return "def _r(room" + "".join(f", {h}={h}" for h in HELPERS if h in used) + "):"
_ASSIGNED = re.compile(r"^(?:if .*: |else: )?r(\d+) = ")


def _exit_return(n_after: str) -> Callable[[str], str]:
    return lambda target: f"return {target}, {n_after}"


def _exit_break(target: str) -> str:
    return f"pc = {target}; break"


def terminator(term: Term, n_after: str, inside: frozenset[int] | set[int],
               leave: Callable[[str], str]) -> list[str]:
    """The statements that end a block: to a block ``inside`` the region by
    ``pc = target``, out of it by ``leave(target)``; ``n_after`` is the
    instructions retired including the whole block."""
    if term.kind == "jump":
        (target,) = term.successors
        return [f"pc = {target}"] if target in inside else [leave(str(target))]
    if term.kind == "leave":
        return [leave(str(term.pc))]
    if term.kind == "indirect":
        return ["pc = t"] if inside else [leave("t")]
    if term.kind == "slow":
        return [f"raise Slow({term.pc}, {n_after} - 1)"]
    assert term.kind == "branch"
    taken, fall = term.successors
    if taken in inside and fall in inside:
        return [f"pc = {taken} if {term.cond} else {fall}"]
    if taken in inside:
        return [f"if {term.cond}: pc = {taken}", f"else: {leave(str(fall))}"]
    if fall in inside:
        return [f"if {term.cond}: {leave(str(taken))}", f"pc = {fall}"]
    return [leave(f"({taken} if {term.cond} else {fall})")]


def flat(entry: int, lines: list[str], count: int, term: Term) -> str:
    """A region of one block that does not loop (``n``, the instructions before
    the block, is 0: folded into the constants)."""
    out = [f"    if {count} > room: return {entry}, 0"]
    out += ["    " + _N_PLUS.sub(r"\1", line) for line in lines]
    out += ["    " + line for line in terminator(term, str(count), frozenset(), _exit_return(str(count)))]
    text = "\n".join(out) + "\n"
    return _header(text) + "\n" + text


def looped(entry: int, blocks: list[tuple[int, list[str], int, Term]]) -> str:
    """A region of blocks that branch among themselves, registers in locals."""
    inside = {pc for pc, _, _, _ in blocks}
    body: list[str] = []
    for i, (pc, lines, count, term) in enumerate(blocks):
        lines = [_REG.sub(r"r\1", line) for line in lines]
        cond = _REG.sub(r"r\1", term.cond)
        term = Term(term.kind, term.successors, cond, term.pc, term.returns_to)
        body.append(f"{'if' if i == 0 else 'elif'} pc == {pc}:")
        if term.kind == "branch" and pc in term.successors:
            body += ["    " + line for line in _self_loop(pc, lines, count, term, inside)]
            continue
        body.append(f"    if n + {count} > room: break")
        body += ["    " + line for line in lines]
        body.append(f"    n += {count}")
        body += ["    " + line for line in terminator(term, "n", inside, _exit_break)]
    body += ["else:", "    break"]
    text = "\n".join(body)
    used = sorted({int(r) for r in re.findall(r"\br(\d+)\b", text)})
    written = sorted({int(m.group(1)) for line in body if (m := _ASSIGNED.match(line.strip()))})
    load = [f"    r{r} = x[{r}]" for r in used]
    store = [f"x[{r}] = r{r}" for r in written] or ["pass"]
    out = ["    n = 0", f"    pc = {entry}", *load, "    try:", "        while True:"]
    out += ["            " + line for line in body]
    out += ["    except Slow:", *("        " + s for s in store), "        raise"]
    out += ["    " + s for s in store if s != "pass"]
    out.append("    return pc, n")
    text = "\n".join(out) + "\n"
    return _header(text) + "\n" + text


def _self_loop(pc: int, lines: list[str], count: int, term: Term, inside: set[int]) -> list[str]:
    """A block whose branch returns to itself: an inner loop, left by the
    other successor or, its budget spent (``while``'s ``else``), out of the region."""
    taken, fall = term.successors
    other, stay = (fall, term.cond) if taken == pc else (taken, f"not ({term.cond})")
    out = [f"while n + {count} <= room:"]
    out += ["    " + line for line in lines]
    out += [f"    n += {count}", f"    if not ({stay}): pc = {other}; break", "else:", "    break"]
    if other not in inside:
        out.append("break")
    return out
