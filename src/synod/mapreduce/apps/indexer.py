"""Inverted index (paper section 2.3; the lab's indexer.go): for each word, how
many documents contain it and which, sorted."""

from __future__ import annotations

from collections.abc import Iterable

from synod.mapreduce.apps._words import words


def map(filename: str, contents: str) -> Iterable[tuple[str, str]]:
    return [(w, filename) for w in dict.fromkeys(words(contents))]


def combine(key: str, values: list[str]) -> str:
    # One map task sees one document, so its values for a word are one name.
    return values[0]


def reduce(key: str, values: list[str]) -> str:
    docs = sorted(set(values))
    return f"{len(docs)} {','.join(docs)}"
