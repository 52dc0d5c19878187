"""Inverted index (paper section 2.3; the lab's indexer.go): for each word, how
many documents contain it and which, sorted."""

from __future__ import annotations

from collections.abc import Iterable

from synod.mapreduce.apps._words import words


def map(filename: str, contents: str) -> Iterable[tuple[str, str]]:
    return [(w, filename) for w in dict.fromkeys(words(contents))]


# No combiner: a map task may see several documents (small files packed into
# one split), and a word's values are then several names, which no single
# value can stand for; map already names each document once per word.


def reduce(key: str, values: list[str]) -> str:
    docs = sorted(set(values))
    return f"{len(docs)} {','.join(docs)}"
