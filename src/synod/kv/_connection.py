"""Commands the node serves itself, never logged: connection state (HELLO,
SELECT, CLIENT, QUIT), introspection (COMMAND, CONFIG, INFO) and the
transaction verbs (MULTI, EXEC, DISCARD, WATCH, UNWATCH). They are in the
command table (flag CONNECTION, no handler) so COMMAND lists them and the
node can tell them from keyspace commands; :mod:`synod.kv.node` answers them.

Flags and key positions are Redis 7.0's ``COMMAND INFO``.
"""

from __future__ import annotations

from synod.kv.commands import ADMIN, CONNECTION, FAST, NOSCRIPT, CommandSpec, register

__all__ = ["CONFIG_DEFAULTS", "CONFIG_WRITABLE"]


def _node(name: str, arity: int, flags: tuple[str, ...], summary: str, first_key: int = 0, last_key: int = 0,
          step: int = 0) -> None:
    register(CommandSpec(name=name, arity=arity, flags=frozenset((CONNECTION, *flags)), first_key=first_key,
                         last_key=last_key, step=step, handler=None, summary=summary))


_node("ping", -1, (FAST,), "Returns the server's liveliness response.")
_node("echo", 2, (FAST,), "Returns the given string.")
_node("hello", -1, (FAST, NOSCRIPT), "Handshakes with the Redis server (RESP2 or RESP3).")
_node("select", 2, (FAST,), "Changes the selected database (only database 0 exists here).")
_node("quit", -1, (FAST,), "Closes the connection.")
_node("client", -2, (), "A container for client connection commands (ID, GETNAME, SETNAME, LIST, INFO, SETINFO).")
_node("command", -1, (), "Returns detailed information about all commands (COUNT, DOCS, INFO, LIST).")
_node("config", -2, (ADMIN, NOSCRIPT), "Gets or sets a documented handful of configuration parameters.")
_node("info", -1, (), "Returns information and statistics about the server.")
_node("multi", 1, (FAST, NOSCRIPT), "Starts a transaction.")
_node("exec", 1, (NOSCRIPT,), "Executes all commands in a transaction, as one log entry.")
_node("discard", 1, (FAST, NOSCRIPT), "Discards a transaction.")
_node("watch", -2, (FAST, NOSCRIPT), "Monitors changes to keys to determine the execution of a transaction.",
      1, -1, 1)
_node("unwatch", 1, (FAST, NOSCRIPT), "Forgets about watched keys of a transaction.")

# CONFIG GET answers these; CONFIG SET accepts the writable ones and records
# them (they change nothing the store does: there is no eviction or
# persistence policy to tune; Raft's timings are the node's params).
CONFIG_DEFAULTS: dict[str, str] = {
    "save": "",
    "appendonly": "no",
    "appendfsync": "always",
    "databases": "1",
    "maxclients": "10000",
    "maxmemory": "0",
    "maxmemory-policy": "noeviction",
    "proto-max-bulk-len": str(512 * 1024 * 1024),
    "timeout": "0",
    "port": "0",
    "bind": "127.0.0.1",
}
CONFIG_WRITABLE = frozenset({"timeout", "maxmemory", "maxmemory-policy", "save", "appendonly"})
