"""etcd's datadriven test files, minimal: a script is a text file of
commands, each followed by ``----`` and the output it must produce, ended
by a blank line. Lines starting with ``#`` and blank lines between commands
are comments, kept as they are when the file is rewritten::

    # S1 wins the first election.
    campaign 1
    ----
    ok

Outputs hold no blank lines (the one-separator form of datadriven only).
With rewrite on (``SYNOD_REWRITE=1`` or ``pytest --rewrite``) the file is
written back with every actual output in place of the expected one.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SEPARATOR = "----"


@dataclass(slots=True)
class Case:
    line_no: int          # 1-based line of the command
    command: str
    expected: str


Chunk = str | Case        # a comment/blank line, or a command with its output


def parse(text: str, path: Path) -> list[Chunk]:
    lines = text.splitlines()
    chunks: list[Chunk] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip() or line.startswith("#"):
            chunks.append(line)
            i += 1
            continue
        if i + 1 >= len(lines) or lines[i + 1] != SEPARATOR:
            raise ValueError(f"{path}:{i + 1}: command {line!r} is not followed by {SEPARATOR!r}")
        j = i + 2
        while j < len(lines) and lines[j].strip():
            j += 1
        chunks.append(Case(line_no=i + 1, command=line.strip(), expected="\n".join(lines[i + 2:j])))
        i = j + 1  # the blank line that ends the output
    return chunks


def render(chunks: list[Chunk]) -> str:
    out: list[str] = []
    for c in chunks:
        if isinstance(c, str):
            if c.strip() or not out or out[-1].strip():  # blank lines: at most one in a row
                out.append(c)
        else:
            out += [c.command, SEPARATOR] + ([c.expected] if c.expected else []) + [""]
    return "\n".join(out).rstrip("\n") + "\n"


def run_file(path: Path, handle: Callable[[str], str], rewrite: bool) -> None:
    """Run every command of ``path`` through ``handle`` (one fresh
    environment per file); fail at the first output that differs, or, with
    ``rewrite``, write the actual outputs back into the file."""
    chunks = parse(path.read_text(), path)
    for c in chunks:
        if isinstance(c, str):
            continue
        actual = handle(c.command)
        assert "\n\n" not in actual and actual.strip(), f"{path}:{c.line_no}: blank output line"
        if rewrite:
            c.expected = actual
        elif actual != c.expected:
            diff = "\n".join(difflib.unified_diff(c.expected.splitlines(), actual.splitlines(),
                                                  "expected", "actual", lineterm=""))
            raise AssertionError(f"{path}:{c.line_no}: {c.command}\n{diff}\n"
                                 f"(rewrite with SYNOD_REWRITE=1 or pytest --rewrite, then read the diff)")
    if rewrite:
        path.write_text(render(chunks))
