"""Helpers shared by the keyspace unit tests (test_lists, test_hashes):
run a command line on a KeySpace at a fixed log time, build replies, and
check whether a command bumped a key's version (what WATCH sees)."""

from __future__ import annotations

import shlex

from synod.kv.replies import Array, BulkString, SimpleError
from synod.kv.store import KeySpace

NOW = 1_000


def run(ks: KeySpace, line: str):
    """Apply ``line`` (shell-split words) at log time NOW; the reply."""
    return ks.execute(tuple(w.encode() for w in shlex.split(line)), NOW)


def bulks(*items: str) -> Array:
    return Array(items=tuple(BulkString(data=x.encode()) for x in items))


def err(text: str) -> SimpleError:
    return SimpleError(text=text)


def bumped(ks: KeySpace, key: str, line: str):
    """Run ``line``; assert ``key``'s version changed; return the reply."""
    before = ks.version(key.encode())
    reply = run(ks, line)
    assert ks.version(key.encode()) != before, (line, reply)
    return reply


def unchanged(ks: KeySpace, key: str, line: str):
    """Run ``line``; assert ``key``'s version did not change; return the reply."""
    before = ks.version(key.encode())
    reply = run(ks, line)
    assert ks.version(key.encode()) == before, (line, reply)
    return reply
