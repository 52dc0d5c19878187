"""Word splitting shared by ``wc`` and ``indexer``: a word is a maximal run of
letters (Unicode ``str.isalpha``), case kept, as the lab's
``strings.FieldsFunc(contents, func(r) bool { return !unicode.IsLetter(r) })``."""

from __future__ import annotations

import re

_ASCII_WORD = re.compile(r"[A-Za-z]+")
# Letters, approximately: word characters without digits and underscore. It can
# still take in a few non-letters (e.g. '²'), which words() splits off exactly.
_WORD = re.compile(r"[^\W\d_]+")


def words(text: str) -> list[str]:
    """The maximal runs of letters in ``text``, in order."""
    if text.isascii():
        return _ASCII_WORD.findall(text)
    out: list[str] = []
    for token in _WORD.findall(text):
        if token.isalpha():
            out.append(token)
            continue
        run: list[str] = []
        for ch in token:
            if ch.isalpha():
                run.append(ch)
            elif run:
                out.append("".join(run))
                run = []
        if run:
            out.append("".join(run))
    return out
