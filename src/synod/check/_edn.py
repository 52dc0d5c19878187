"""A small reader for EDN, the notation Jepsen writes histories in.

Enough of https://github.com/edn-format/edn for one history event per line:
maps, vectors, lists, sets, keywords, strings (with escapes), integers,
floats, ratios (as floats), ``nil``/``true``/``false``, symbols, characters,
comments, and tagged values (``#inst "..."``: the tag is dropped). Keywords
come back as :class:`Keyword` (a ``str`` without the colon), vectors and
lists as Python lists, sets as frozensets, maps as dicts.

:func:`read_edn_items` reads a whole-file history, one vector ``[...]`` or
list ``(...)`` of events, and gives each element's 1-based source line, so
that a failing window can name real file lines.

Errors are :class:`EdnError` with the column where reading stopped (for a
multi-line text: the 1-based offset into it).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["EdnError", "Keyword", "Symbol", "read_edn", "read_edn_items", "skip_blank"]


class EdnError(ValueError):
    """Malformed EDN; ``column`` is 1-based."""

    def __init__(self, message: str, column: int) -> None:
        self.column = column
        super().__init__(f"{message} (column {column})")


class Keyword(str):
    """An EDN keyword such as ``:invoke``, held without its colon."""

    __slots__ = ()

    def __repr__(self) -> str:
        return ":" + str(self)


class Symbol(str):
    """An EDN symbol other than nil/true/false."""

    __slots__ = ()


_WS = re.compile(r"(?:[\s,]+|;[^\n]*)*")
_NUMBER = re.compile(r"[+-]?\d+(?:/\d+|N|(?:\.\d*)?(?:[eE][+-]?\d+)?M?)")
_TOKEN = re.compile(r"[^\s,()\[\]{}\"\\;]+")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "b": "\b", "f": "\f", "/": "/"}
_CHARS = {"newline": "\n", "space": " ", "tab": "\t", "return": "\r", "backspace": "\b", "formfeed": "\f"}
_CLOSE = {"(": ")", "[": "]", "{": "}"}
_DEPTH_MAX = 100


def read_edn(text: str) -> Any:
    """The single EDN value in ``text``; :class:`EdnError` if there is not
    exactly one, or it is malformed."""
    value, pos = _read(text, _skip(text, 0), 0)
    pos = _skip(text, pos)
    if pos != len(text):
        raise EdnError(f"unexpected {text[pos]!r} after the value", pos + 1)
    return value


def read_edn_items(text: str) -> list[tuple[Any, int]]:
    """The elements of the one vector or list that is all of ``text``
    (comments and blanks around it allowed), each with its 1-based line.
    :class:`EdnError` if ``text`` is not one such sequence."""
    pos = skip_blank(text, 0)
    if pos >= len(text) or text[pos] not in "[(":
        raise EdnError("expected a vector '[' or a list '(' of events", pos + 1)
    close = _CLOSE[text[pos]]
    start = pos
    pos += 1
    line = 1 + text.count("\n", 0, pos)
    counted = pos  # Invariant: line is the line of offset `counted`.
    items = []
    while True:
        pos = _skip(text, pos)
        if pos >= len(text):
            raise EdnError(f"missing {close!r}", start + 1)
        if text[pos] == close:
            break
        line += text.count("\n", counted, pos)
        counted = pos
        value, pos = _read(text, pos, 1)
        items.append((value, line))
    pos = _skip(text, pos + 1)
    if pos != len(text):
        raise EdnError(f"unexpected {text[pos]!r} after the history", pos + 1)
    return items


def skip_blank(text: str, pos: int) -> int:
    """The offset of the first form at or after ``pos``: blanks, commas and
    ``;`` comments skipped."""
    return _skip(text, pos)


def _skip(text: str, pos: int) -> int:
    return _WS.match(text, pos).end()  # type: ignore[union-attr]


def _read(text: str, pos: int, depth: int) -> tuple[Any, int]:
    if pos >= len(text):
        raise EdnError("unexpected end of input", pos + 1)
    if depth > _DEPTH_MAX:
        raise EdnError(f"nested deeper than {_DEPTH_MAX}", pos + 1)
    c = text[pos]
    if c in _CLOSE:
        items, end = _read_seq(text, pos + 1, _CLOSE[c], depth)
        if c != "{":
            return items, end
        if len(items) % 2:
            raise EdnError("a map needs an even number of forms", pos + 1)
        try:
            return {items[i]: items[i + 1] for i in range(0, len(items), 2)}, end
        except TypeError:
            raise EdnError("a map key must be a keyword, string, number or symbol", pos + 1) from None
    if c == '"':
        return _read_string(text, pos)
    if c == "#":
        if text.startswith("#{", pos):
            items, end = _read_seq(text, pos + 2, "}", depth)
            try:
                return frozenset(items), end
            except TypeError:
                raise EdnError("a set element must be hashable", pos + 1) from None
        if text.startswith("#_", pos):
            _, end = _read(text, _skip(text, pos + 2), depth + 1)
            return _read(text, _skip(text, end), depth)
        tag = _TOKEN.match(text, pos + 1)
        if tag is None:
            raise EdnError("bad tag after '#'", pos + 1)
        return _read(text, _skip(text, tag.end()), depth + 1)
    if c == "\\":
        tok = _TOKEN.match(text, pos + 1)
        name = text[pos + 1] if tok is None else tok.group()
        if len(name) == 1:
            return name, pos + 2
        if name in _CHARS:
            return _CHARS[name], pos + 1 + len(name)
        raise EdnError(f"unknown character \\{name}", pos + 1)
    if c in ")]}":
        raise EdnError(f"unexpected {c!r}", pos + 1)
    num = _NUMBER.match(text, pos)
    tok = _TOKEN.match(text, pos)
    assert tok is not None
    if num is not None and num.end() == tok.end():
        return _number(num.group(), pos), num.end()
    word = tok.group()
    if word.startswith(":"):
        if len(word) == 1:
            raise EdnError("empty keyword", pos + 1)
        return Keyword(word[1:]), tok.end()
    if word == "nil":
        return None, tok.end()
    if word in ("true", "false"):
        return word == "true", tok.end()
    if word[0].isdigit():
        raise EdnError(f"bad number {word!r}", pos + 1)
    return Symbol(word), tok.end()


def _number(word: str, pos: int) -> int | float:
    w = word.rstrip("MN")
    if "/" in w:
        a, b = w.split("/")
        if int(b) == 0:
            raise EdnError(f"ratio {word} divides by zero", pos + 1)
        return int(a) / int(b)
    if any(ch in w for ch in ".eE"):
        return float(w)
    return int(w)


def _read_seq(text: str, pos: int, close: str, depth: int) -> tuple[list[Any], int]:
    items = []
    start = pos
    while True:
        pos = _skip(text, pos)
        if pos >= len(text):
            raise EdnError(f"missing {close!r}", start)
        if text[pos] == close:
            return items, pos + 1
        value, pos = _read(text, pos, depth + 1)
        items.append(value)


def _read_string(text: str, pos: int) -> tuple[str, int]:
    out = []
    i = pos + 1
    while True:
        j = i
        while j < len(text) and text[j] not in '"\\':
            j += 1
        out.append(text[i:j])
        if j >= len(text):
            raise EdnError("unterminated string", pos + 1)
        if text[j] == '"':
            return "".join(out), j + 1
        esc = text[j + 1:j + 2]
        if esc in _ESCAPES:
            out.append(_ESCAPES[esc])
            i = j + 2
        elif esc == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[j + 2:j + 6]):
            out.append(chr(int(text[j + 2:j + 6], 16)))
            i = j + 6
        else:
            raise EdnError(f"bad escape \\{esc}", j + 1)
