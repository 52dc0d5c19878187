"""Replies of the Redis-compatible store, as typed messages.

The store's state machine answers every command with one of these; the RESP
protocol object (:mod:`synod.kv.protocol`) writes them as RESP2 or RESP3
bytes, and the same values travel between nodes (a follower forwarding to
the leader) and through the Raft log's results, so they are codec messages.

RESP2 / RESP3 rendering (https://redis.io/docs/latest/develop/reference/protocol-spec/):

=====================  ==========================  =====================
reply                  RESP2                       RESP3
=====================  ==========================  =====================
SimpleString("OK")     ``+OK``                     ``+OK``
SimpleError(text)      ``-text``                   ``-text``
Integer(n)             ``:n``                      ``:n``
BulkString(b)          ``$len`` b                  ``$len`` b
BulkString(None)       ``$-1`` (nil)               ``_`` (null)
Array(items)           ``*n`` items                ``*n`` items
Array(None)            ``*-1`` (nil array)         ``_`` (null)
Double(x)              bulk string of x            ``,x``
Boolean(b)             ``:1`` / ``:0``             ``#t`` / ``#f``
Map(pairs)             flat array k1 v1 k2 v2      ``%n`` pairs
Set(items)             array                       ``~n`` items
VerbatimString(f, t)   bulk string t               ``=len`` f:t
=====================  ==========================  =====================

A ``SimpleError``'s text starts with its error word, as Redis's do:
``ERR ...``, ``WRONGTYPE ...``, ``TRYAGAIN ...``, ``EXECABORT ...``.
"""

from __future__ import annotations

from synod.core.codec import Message

__all__ = [
    "SimpleString", "SimpleError", "Integer", "BulkString", "Array", "Double", "Boolean", "Map", "Set",
    "VerbatimString", "Reply", "OK", "NIL", "NIL_ARRAY", "EMPTY_ARRAY",
    "WRONGTYPE", "NOT_INTEGER", "NOT_FLOAT", "SYNTAX", "NO_SUCH_KEY", "wrong_arity", "unknown_command",
]


class SimpleString(Message, tag="kv.SimpleString"):
    text: str


class SimpleError(Message, tag="kv.SimpleError"):
    """``text``: the error word then the message (``"ERR unknown command 'FOO'"``)."""

    text: str


class Integer(Message, tag="kv.Integer"):
    value: int


class BulkString(Message, tag="kv.BulkString"):
    """``data`` None: nil (RESP2 ``$-1``, RESP3 null)."""

    data: bytes | None


class Array(Message, tag="kv.Array"):
    """``items`` None: nil array (RESP2 ``*-1``, RESP3 null)."""

    items: tuple[Reply, ...] | None


class Double(Message, tag="kv.Double"):
    value: float


class Boolean(Message, tag="kv.Boolean"):
    value: bool


class Map(Message, tag="kv.Map"):
    pairs: tuple[tuple[Reply, Reply], ...]


class Set(Message, tag="kv.Set"):
    items: tuple[Reply, ...]


class VerbatimString(Message, tag="kv.VerbatimString"):
    """``format``: three letters (``txt``, ``mkd``); RESP2 sends ``text`` alone."""

    format: str
    text: str


Reply = SimpleString | SimpleError | Integer | BulkString | Array | Double | Boolean | Map | Set | VerbatimString

OK = SimpleString(text="OK")
NIL = BulkString(data=None)
NIL_ARRAY = Array(items=None)
EMPTY_ARRAY = Array(items=())

# Redis's own error texts, word for word (src/server.c, src/t_*.c of Redis 7).
WRONGTYPE = SimpleError(text="WRONGTYPE Operation against a key holding the wrong kind of value")
NOT_INTEGER = SimpleError(text="ERR value is not an integer or out of range")
NOT_FLOAT = SimpleError(text="ERR value is not a valid float")
SYNTAX = SimpleError(text="ERR syntax error")
NO_SUCH_KEY = SimpleError(text="ERR no such key")


def wrong_arity(name: str) -> SimpleError:
    """``-ERR wrong number of arguments for 'get' command`` (``name`` as the client spelled it, lower-cased)."""
    return SimpleError(text=f"ERR wrong number of arguments for '{name.lower()}' command")


def unknown_command(args: tuple[bytes, ...] | list[bytes]) -> SimpleError:
    """``-ERR unknown command 'foo', with args beginning with: 'a' 'b' `` as Redis 7 words it."""
    name = args[0].decode("utf-8", errors="replace") if args else ""
    rest = "".join(f"'{a.decode('utf-8', errors='replace')[:128]}' " for a in args[1:])
    return SimpleError(text=f"ERR unknown command '{name[:128]}', with args beginning with: {rest}")
