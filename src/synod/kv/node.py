"""A KV server: Redis commands over a Raft-replicated keyspace.

Theory of operation. Each server is a :class:`~synod.raft.node.RaftNode`
whose state machine is a :class:`KvStateMachine` (the keyspace of
:mod:`synod.kv.store` plus an at-most-once table). Clients reach any server,
as RESP connections through the runtime's gateway or as simulated client
nodes, with :class:`~synod.kv.messages.Command` requests; the server:

- serves connection-level commands itself (PING, HELLO, CLIENT, COMMAND,
  CONFIG, INFO, SELECT, QUIT, MULTI/EXEC/DISCARD/WATCH/UNWATCH);
- puts every write in the log as a :class:`KvEntry` stamped with the
  leader's wall clock (expiry is decided from log time, so every replica
  agrees) and answers once it applies (Raft section 8); on a follower the
  write is forwarded to the leader (:class:`KvForward`) and the leader's
  answer relayed;
- answers reads by ReadIndex (thesis 6.4: the leader confirms its
  leadership with a heartbeat round; a follower asks the leader for the read
  index and serves from its own state once applied that far); leases are
  opt-in (``RaftConfig.lease_read``);
- with no leader, or when the leader changes under a request, answers an
  error and never a wrong or stale answer: ``-TRYAGAIN`` when nothing was
  applied, ``-UNCERTAIN`` when the write may or may not have been (a
  client, like a Jepsen client, must treat that as indeterminate).

Per connection, commands are handled in order: writes pipeline with writes
and reads with reads (consecutive ones are in flight together, writes in log
order), but a read waits for the connection's earlier writes to apply and a
write for its earlier reads, so a pipeline sees its own writes; connection
commands wait until nothing is in flight.

Blocking pops (BLPOP ...): a blocking command goes through the log like any
write (forwarded by a follower); when its list is empty it applies as
"blocked" and the server the client is connected to parks it, in arrival
order per key. Each later applied write that touches a parked key puts the
first parked client's command in the log again (forwarded by a follower);
the client is answered when one applies with an element, or with the
timeout reply when its timeout passes. A parked client lives only on its
own server, so a client that disconnects leaves nothing behind that could
pop an element later (an attempt already in the log may still pop, as a
reply in flight is lost when a Redis connection closes). A change of leader
leaves parked clients parked (an attempt in flight is answered
``-UNCERTAIN``, as any write) and wakes them all once, in case an element
arrived while no attempt could be made.

At most once: a command gets a unique ``(origin, seq)`` where it enters the
cluster (``origin`` is the server's id and boot count, durable); the state
machine remembers the replies of the last ``APPLIED_IDS_MAX`` ids, so a
copy (a duplicated forward) applies once and gets the first reply.
"""

from __future__ import annotations

import collections
import fnmatch
from dataclasses import dataclass, field
from typing import Any

from synod.core import Context, Message, Params, decode, encode, parse_params
from synod.core.boots import count_boot
from synod.core.clients import ClientClosed, ClientOpened, CopyFilter
from synod.core.errors import RemoteProtocolError
from synod.kv import _connection  # noqa: F401 (registers the node-served commands)
from synod.kv._connection import CONFIG_DEFAULTS, CONFIG_WRITABLE
from synod.kv.commands import BLOCKING, CONNECTION, READONLY, WRITE, all_commands, arity_ok, keys_of, lookup
from synod.kv.messages import Command
from synod.kv.replies import (
    NIL_ARRAY,
    OK,
    Array,
    BulkString,
    Integer,
    Map,
    Reply,
    SimpleError,
    SimpleString,
    VerbatimString,
    unknown_command,
    wrong_arity,
)
from synod.kv.store import KeySpace
from synod.raft import constants as RC
from synod.raft.messages import ProposeReply
from synod.raft.node import RaftNode, RaftNodeConfig
from synod.raft.raft import RaftConfig

__all__ = ["KvNode", "KvStateMachine", "KvEntry", "KvForward", "KvForwardReply", "Blocked", "KvNodeParams",
           "factory", "FACTORY"]

# The src under which this server's own clients' requests wait in RaftNode.
LOCAL_SRC = "kv:local"
BOOTS_PATH = "kv/boots"
APPLIED_IDS_MAX = 100_000          # replies remembered for at-most-once
FORWARD_TIMEOUT_MS = 3000.0        # a follower's wait for the leader's answer
CLIENT_QUEUE_MAX = 4096            # commands queued behind one connection's in-flight ones
PARKED_CLIENTS_MAX = 10_000        # blocked clients parked on this leader
REQUESTS_REMEMBERED_MAX = 100_000  # client requests remembered to drop network copies
VERSIONS_QUERY = b"\x00versions"   # a state-machine query: versions of keys (WATCH)
SERVER_VERSION = "7.0.15"          # the Redis version whose behaviour synod.kv follows

TRYAGAIN_NO_LEADER = "TRYAGAIN no leader: the cluster has no quorum or is electing one; nothing was applied"


class KvEntry(Message, tag="kv.Entry"):
    """One log entry: a command (or a MULTI's queue, ``multi``) with its
    at-most-once id ``(origin, seq)`` and the leader's wall clock ``now_ms``
    (Unix ms). ``watched``: (key, version) pairs an EXEC checks."""

    origin: str
    seq: int
    now_ms: int
    commands: tuple[tuple[bytes, ...], ...]
    watched: tuple[tuple[bytes, int], ...] = ()
    multi: bool = False


class Blocked(Message, tag="kv.Blocked"):
    """The result of a blocking command that found nothing to pop."""


class KvForward(Message, tag="kv.Forward"):
    """Follower -> leader: put this write in the log for me. Answered with
    a :class:`KvForwardReply` of the same ``request_id``."""

    request_id: int
    origin: str
    seq: int
    commands: tuple[tuple[bytes, ...], ...]
    watched: tuple[tuple[bytes, int], ...] = ()
    multi: bool = False


class KvForwardReply(Message, tag="kv.ForwardReply"):
    """Leader -> follower: the answer to :class:`KvForward` ``request_id``;
    :class:`Blocked` when a blocking command found nothing to pop (the
    follower parks its client)."""

    request_id: int
    reply: Reply | Blocked


@dataclass(frozen=True, slots=True)
class _ForwardHandle:
    """Where a forwarded write's answer goes: the follower, and its id."""

    src: str
    request_id: int


class _MachineSnapshot(Message, tag="kv.MachineSnapshot"):
    keyspace: bytes
    applied: tuple[tuple[str, int, bytes], ...]


class KvStateMachine:
    """The replicated state: a :class:`KeySpace` and the replies of the
    last ``APPLIED_IDS_MAX`` entry ids. Deterministic; ``apply`` never raises
    on any bytes (a committed entry is replayed on every restart)."""

    def __init__(self) -> None:
        self.keyspace = KeySpace()
        self.applied: collections.OrderedDict[tuple[str, int], bytes] = collections.OrderedDict()

    def apply(self, index: int, command: bytes | None) -> bytes | None:
        if command is None:
            return None
        try:
            entry = decode(command, KvEntry)
        except RemoteProtocolError:
            return None  # not a KV entry: a no-op here
        key = (entry.origin, entry.seq)
        done = self.applied.get(key)
        if done is not None:
            return done
        ks = self.keyspace
        if entry.multi:
            reply: Any = ks.execute_multi(list(entry.commands), list(entry.watched), entry.now_ms)
        elif len(entry.commands) == 1:
            reply = ks.execute(entry.commands[0], entry.now_ms)
        else:
            reply = SimpleError(text="ERR malformed entry")
        result = encode(Blocked() if not isinstance(reply, Message) else reply)
        self.applied[key] = result
        if len(self.applied) > APPLIED_IDS_MAX:
            self.applied.popitem(last=False)
        return result

    def query(self, query: bytes) -> bytes | None:
        """A read: ``encode(args)`` of a READONLY command, or
        ``[VERSIONS_QUERY, key...]`` (the versions WATCH records)."""
        try:
            args = decode(query, tuple[bytes, ...])
        except RemoteProtocolError:
            return encode(SimpleError(text="ERR malformed read"))
        if args and args[0] == VERSIONS_QUERY:
            return encode(Array(items=tuple(Integer(value=self.keyspace.version(k)) for k in args[1:])))
        return encode(self.keyspace.read(args))

    def snapshot(self) -> bytes:
        return encode(_MachineSnapshot(keyspace=self.keyspace.snapshot(),
                                       applied=tuple((o, s, r) for (o, s), r in self.applied.items())))

    def restore(self, data: bytes) -> None:
        """Raises RemoteProtocolError: ``data`` is not a snapshot of this machine."""
        self.keyspace = KeySpace()
        self.applied = collections.OrderedDict()
        if not data:
            return
        snap = decode(data, _MachineSnapshot)
        self.keyspace.restore(snap.keyspace)
        for origin, seq, result in snap.applied:
            self.applied[(origin, seq)] = result


@dataclass(slots=True)
class _Client:
    """What a server keeps per client connection (volatile)."""

    number: int                     # CLIENT ID
    addr: str
    name: bytes = b""
    lib: str = ""
    multi: list[tuple[bytes, ...]] | None = None
    multi_error: bool = False
    watched: dict[bytes, int] = field(default_factory=dict)
    queue: collections.deque = field(default_factory=collections.deque)  # (handle, args) waiting their turn
    inflight_kind: str = ""         # "read" | "write" | "barrier" | "" (nothing in flight)
    inflight: int = 0


@dataclass(slots=True)
class _Pending:
    """A request of this server's clients, waiting in RaftNode under LOCAL_SRC."""

    client: str
    handle: Any
    kind: str                       # "read" | "write" | "watch" | "forwarded"
    entry: KvEntry | None = None
    keys: tuple[bytes, ...] = ()   # a WATCH's keys
    parked: _Parked | None = None
    leader: str = ""               # a forward: the leader it went to


@dataclass(slots=True)
class _Parked:
    """A blocked client of this server."""

    client: str
    handle: Any
    commands: tuple[tuple[bytes, ...], ...]
    keys: tuple[bytes, ...]
    timeout_reply: Reply
    timeout_ms: float               # 0: forever
    timer: str = ""                 # the unblock timer's name once parked ("": not parked)
    inflight: bool = False
    timed_out: bool = False
    done: bool = False


class KvNode(RaftNode):
    """A KV server; see the module docstring. ``config``: Raft's (a
    :class:`RaftNodeConfig`)."""

    def __init__(self, config: RaftNodeConfig | None = None, **kwargs: Any) -> None:
        super().__init__(config, KvStateMachine(), **kwargs)
        self.machine: KvStateMachine = self.sm  # type: ignore[assignment]
        self.origin = ""
        self._seq = 0
        self._rid = 0
        self._local: dict[int, _Pending] = {}
        self._clients_by_id: dict[str, _Client] = {}
        self._next_client_number = 1
        self._parked: dict[bytes, collections.deque[_Parked]] = {}
        self._parked_count = 0
        self._timers_parked: dict[str, _Parked] = {}   # unblock timer name -> parked client
        self._parked_seq = 0
        self._forwards: dict[int, _Pending] = {}        # forward request id -> the client waiting for it
        self._known_leader: str | None = None
        self._copies = CopyFilter(REQUESTS_REMEMBERED_MAX)  # a request delivered twice runs once
        self.config_values = dict(CONFIG_DEFAULTS)

    def client_protocols(self) -> dict[str, Any]:
        from synod.kv.protocol import RespProtocol

        return {"resp": RespProtocol}

    # -- lifecycle ------------------------------------------------------------------------
    def on_start(self, ctx: Context) -> None:
        # An origin is never reused: ids stay unique across restarts.
        self.origin = f"{ctx.node_id}.{count_boot(ctx, BOOTS_PATH)}"
        super().on_start(ctx)

    # -- inputs ---------------------------------------------------------------------------
    def on_message(self, ctx: Context, src: str, msg: Any) -> Any:
        t = type(msg)
        if t is Command:
            handle = ctx.reply_handle()
            if self._copies.is_copy(handle):
                return None
            self._enqueue(ctx, src, handle, msg.args)
            self.flush_soon(ctx)
        elif t is KvForward:
            self._forwarded(ctx, _ForwardHandle(src, msg.request_id), msg)
            self.flush_soon(ctx)
        elif t is KvForwardReply:
            self._forward_answered(ctx, src, msg.request_id, msg.reply)
        elif t is ClientOpened:
            self._client(src, msg.addr)
        elif t is ClientClosed:
            self._forget_client(ctx, src)
        else:
            super().on_message(ctx, src, msg)
        self._leadership(ctx)
        return None

    def on_timer(self, ctx: Context, name: str) -> None:
        if name.startswith("unblock:"):
            self._unblock_timeout(ctx, name)
        elif name.startswith("forward:"):
            self._forward_answered(ctx, None, int(name[8:]), None)
        else:
            super().on_timer(ctx, name)
        self._leadership(ctx)

    # -- per-client order -------------------------------------------------------------------
    def _client(self, src: str, addr: str = "") -> _Client:
        c = self._clients_by_id.get(src)
        if c is None:
            c = _Client(number=self._next_client_number, addr=addr or src)
            self._next_client_number += 1
            self._clients_by_id[src] = c
        return c

    def _forget_client(self, ctx: Context, src: str) -> None:
        """The client left: forget its connection state and its blocked
        commands; one in the log right now may still pop an element (its
        answer goes nowhere, as in Redis) but is not parked again."""
        self._clients_by_id.pop(src, None)
        attempts = [p.parked for p in (*self._local.values(), *self._forwards.values()) if p.parked is not None]
        for parked in (*self._timers_parked.values(), *attempts):
            if parked.client == src and not parked.done:
                parked.done = True
                if not parked.inflight:
                    self._unpark(ctx, parked)

    def _enqueue(self, ctx: Context, src: str, handle: Any, args: tuple[bytes, ...]) -> None:
        c = self._client(src)
        if len(c.queue) >= CLIENT_QUEUE_MAX:
            self._reply(ctx, handle, SimpleError(text="ERR too many commands queued on this connection"))
            return
        c.queue.append((handle, args))
        self._pump(ctx, src, c)

    def _pump(self, ctx: Context, src: str, c: _Client) -> None:
        """Start queued commands while they may run alongside what is in flight."""
        while c.queue:
            handle, args = c.queue[0]
            spec = lookup(args[0]) if args else None
            kind = self._kind(c, spec, len(args))
            if c.inflight and (kind != c.inflight_kind or kind == "barrier"):
                return
            c.queue.popleft()
            # Counted in flight before it starts: its answer may come back
            # synchronously (a refusal), through _done, before this returns.
            c.inflight += 1
            c.inflight_kind = kind
            if not self._dispatch(ctx, src, c, handle, args, spec, kind):
                c.inflight -= 1  # answered at once, not through _done
                if not c.inflight:
                    c.inflight_kind = ""

    def _done(self, ctx: Context, src: str) -> None:
        c = self._clients_by_id.get(src)
        if c is None:
            return
        c.inflight = max(0, c.inflight - 1)
        if not c.inflight:
            c.inflight_kind = ""
        self._pump(ctx, src, c)

    @staticmethod
    def _kind(c: _Client, spec: Any, nwords: int) -> str:
        if spec is None or not arity_ok(spec, nwords):
            return "local"
        if c.multi is not None and spec.name not in ("exec", "discard", "multi", "watch"):
            return "local"  # queued: answered QUEUED at once
        if CONNECTION in spec.flags:
            return "barrier" if spec.name in ("exec", "watch") else "local"
        return "read" if READONLY in spec.flags else "write"

    # -- dispatch -----------------------------------------------------------------------------
    def _dispatch(self, ctx: Context, src: str, c: _Client, handle: Any, args: tuple[bytes, ...], spec: Any,
                  kind: str) -> bool:
        """Handle one command (``spec``: its table entry, None if unknown);
        True if it is now in flight (answered later)."""
        if not args:
            self._reply(ctx, handle, SimpleError(text="ERR empty command"))
            return False
        if spec is None:
            self._queue_error(c)
            self._reply(ctx, handle, unknown_command(args))
            return False
        if not arity_ok(spec, len(args)):
            self._queue_error(c)
            self._reply(ctx, handle, wrong_arity(spec.name))
            return False
        if c.multi is not None and spec.name not in ("exec", "discard", "multi", "watch"):
            if CONNECTION in spec.flags and spec.name not in ("ping", "echo"):
                self._reply(ctx, handle, SimpleError(text=f"ERR Command not allowed inside a transaction: {spec.name}"))
                return False
            c.multi.append(args)
            self._reply(ctx, handle, SimpleString(text="QUEUED"))
            return False
        if CONNECTION in spec.flags:
            return self._connection_command(ctx, src, c, handle, spec.name, args)
        if kind == "read":
            self._start_read(ctx, src, handle, args)
            return True
        return self._start_write(ctx, src, handle, (args,), (), multi=False, blocking=BLOCKING in spec.flags)

    @staticmethod
    def _queue_error(c: _Client) -> None:
        if c.multi is not None:
            c.multi_error = True

    def _next_rid(self) -> int:
        self._rid += 1
        return self._rid

    def _start_read(self, ctx: Context, src: str, handle: Any, args: tuple[bytes, ...], kind: str = "read") -> None:
        rid = self._next_rid()
        self._local[rid] = _Pending(client=src, handle=handle, kind=kind, keys=args[1:] if kind == "watch" else ())
        self.read_for(ctx, LOCAL_SRC, rid, encode(args))

    def _start_write(self, ctx: Context, src: str, handle: Any, commands: tuple[tuple[bytes, ...], ...],
                     watched: tuple[tuple[bytes, int], ...], *, multi: bool, blocking: bool = False,
                     origin: str | None = None, seq: int | None = None, forwarded: bool = False) -> bool:
        """Log the write here if leader, else forward it. True: in flight.
        ``blocking``: a blocking command of a client of this server (it is
        parked here if it finds nothing to pop)."""
        raft = self.raft
        if origin is None:
            self._seq += 1
            origin, seq = self.origin, self._seq
        parked = None
        if blocking and (raft.is_leader or raft.leader is not None):
            parked = self._parked_for(src, handle, commands, lookup(commands[0][0]))
            if isinstance(parked, SimpleError):
                self._reply(ctx, handle, parked)
                return False
        if raft.is_leader:
            entry = KvEntry(origin=origin, seq=seq, now_ms=int(ctx.unix_ms), commands=commands, watched=watched,
                            multi=multi)
            rid = self._next_rid()
            self._local[rid] = _Pending(client=src, handle=handle, kind="forwarded" if forwarded else "write",
                                        entry=entry, parked=parked)
            if not self.propose_for(ctx, LOCAL_SRC, rid, encode(entry)):
                del self._local[rid]
                self._reply(ctx, handle, SimpleError(text="TRYAGAIN too many writes waiting; nothing was applied"))
                return False
            return True
        if raft.leader is None or forwarded:
            self._reply(ctx, handle, SimpleError(text=TRYAGAIN_NO_LEADER))
            return False
        self._forward(ctx, src, handle, raft.leader, KvForward(request_id=self._next_rid(), origin=origin, seq=seq,
                                                               commands=commands, watched=watched, multi=multi),
                      parked)
        return True

    def _parked_for(self, src: str, handle: Any, commands: tuple[tuple[bytes, ...], ...], spec: Any) -> Any:
        from synod.kv._lists import BLOCKING_TIMEOUT_REPLY, blocking_timeout_ms

        args = commands[0]
        timeout = blocking_timeout_ms(spec.name, list(args[1:]))
        if isinstance(timeout, SimpleError):
            return timeout
        return _Parked(client=src, handle=handle, commands=commands, keys=tuple(keys_of(spec, list(args[1:]))),
                       timeout_reply=BLOCKING_TIMEOUT_REPLY[spec.name], timeout_ms=timeout)

    def _forward(self, ctx: Context, src: str, handle: Any, leader: str, fwd: KvForward,
                 parked: _Parked | None = None) -> None:
        """Send a write to the leader (``parked``: the blocked client it is
        an attempt for). Its answer is awaited for FORWARD_TIMEOUT_MS; a
        change of leader ends the wait too (UNCERTAIN)."""
        self._forwards[fwd.request_id] = _Pending(client=src, handle=handle, kind="forwarded", leader=leader,
                                                  parked=parked)
        ctx.send(leader, fwd)
        ctx.set_timer(f"forward:{fwd.request_id}", FORWARD_TIMEOUT_MS)

    def _forward_answered(self, ctx: Context, src: str | None, request_id: int, reply: Any) -> None:
        """The leader's answer to a forward (src, reply), or its timeout (None, None)."""
        p = self._forwards.get(request_id)
        if p is None or (src is not None and src != p.leader):
            return  # answered already, or an answer from a node it did not go to
        del self._forwards[request_id]
        ctx.cancel_timer(f"forward:{request_id}")
        if src is None:
            reply = SimpleError(text=f"UNCERTAIN no answer from the leader {p.leader} (it did not answer "
                                     "in time, or lost leadership); the write may or may not have been applied")
        self._finish(ctx, p, reply)

    def _finish(self, ctx: Context, p: _Pending, out: Any) -> None:
        """A write of this server's client has its answer ``out``: relay it,
        or park a blocking command that found nothing to pop."""
        parked = p.parked
        if parked is None:
            self._reply(ctx, p.handle, out)
            if p.client:
                self._done(ctx, p.client)
        elif type(out) is Blocked:
            self._park(ctx, parked)
        elif parked.timer and type(out) is SimpleError and out.text.startswith("TRYAGAIN"):
            parked.inflight = False  # a retry that was not applied: it stays parked
        else:
            self._finish_parked(ctx, parked, out)

    def _reply(self, ctx: Context, handle: Any, reply: Any) -> None:
        """Answer a local client (a ReplyHandle) or a follower's forward."""
        if type(handle) is _ForwardHandle:
            ctx.send(handle.src, KvForwardReply(request_id=handle.request_id, reply=reply))
        elif handle is not None:
            ctx.reply_to(handle, reply)

    def _forwarded(self, ctx: Context, handle: Any, fwd: KvForward) -> None:
        """A follower's write: logged here (a blocking command that finds
        nothing to pop is answered :class:`Blocked`; the follower parks it)."""
        self._start_write(ctx, "", handle, fwd.commands, fwd.watched, multi=fwd.multi, origin=fwd.origin,
                          seq=fwd.seq, forwarded=True)

    # -- answers from RaftNode ------------------------------------------------------------------
    def _answer(self, ctx: Context, src: str, reply: ProposeReply) -> None:
        if src != LOCAL_SRC:
            super()._answer(ctx, src, reply)
            return
        p = self._local.pop(reply.request_id, None)
        if p is None:
            return
        if not reply.ok:
            if p.kind == "forwarded" or reply.indeterminate or (p.kind == "write" and reply.index):
                text = (f"UNCERTAIN {reply.error or 'the leader changed before the write committed'}; "
                        "the write may or may not have been applied")
            else:
                text = f"TRYAGAIN {reply.error or 'no leader'}; nothing was applied"
            out: Any = SimpleError(text=text)
        else:
            try:
                out = decode(reply.result, Message) if reply.result is not None else OK
            except RemoteProtocolError:
                out = SimpleError(text="ERR undecodable result")
            if p.kind == "watch":
                c = self._clients_by_id.get(p.client)
                if c is not None and type(out) is Array:
                    for k, v in zip(p.keys, out.items or ()):
                        c.watched[k] = v.value
                out = OK
        self._finish(ctx, p, out)

    # -- blocked clients (leader) ---------------------------------------------------------------
    def _park(self, ctx: Context, parked: _Parked) -> None:
        parked.inflight = False
        if parked.done:
            self._unpark(ctx, parked)  # its client left while it was in the log
            return
        if parked.timed_out:
            self._finish_parked(ctx, parked, parked.timeout_reply)
            return
        if parked.timer:
            return  # a retry that found nothing again: it keeps its place
        if self._parked_count >= PARKED_CLIENTS_MAX:
            self._finish_parked(ctx, parked, SimpleError(text="ERR too many blocked clients"))
            return
        self._parked_count += 1
        self._parked_seq += 1
        parked.timer = f"unblock:{self._parked_seq}"
        self._timers_parked[parked.timer] = parked
        for k in parked.keys:
            self._parked.setdefault(k, collections.deque()).append(parked)
        if parked.timeout_ms > 0:
            ctx.set_timer(parked.timer, parked.timeout_ms)

    def _remove_parked(self, parked: _Parked) -> None:
        for k in parked.keys:
            q = self._parked.get(k)
            if q is not None:
                try:
                    q.remove(parked)
                except ValueError:
                    pass
                if not q:
                    del self._parked[k]
        self._parked_count = max(0, self._parked_count - 1)

    def _unpark(self, ctx: Context, parked: _Parked) -> None:
        """No longer blocked (served, answered, or its client gone)."""
        parked.inflight = False
        if parked.timer:
            ctx.cancel_timer(parked.timer)
            self._timers_parked.pop(parked.timer, None)
            self._remove_parked(parked)
            parked.timer = ""

    def _finish_parked(self, ctx: Context, parked: _Parked, reply: Reply) -> None:
        if parked.done:
            return
        parked.done = True
        self._unpark(ctx, parked)
        self._reply(ctx, parked.handle, reply)
        if parked.client:
            self._done(ctx, parked.client)

    def _unblock_timeout(self, ctx: Context, name: str) -> None:
        parked = self._timers_parked.pop(name, None)
        if parked is None or parked.done:
            return
        if parked.inflight:
            parked.timed_out = True  # its retry may still pop: answered when it applies
            return
        self._finish_parked(ctx, parked, parked.timeout_reply)

    def _applied(self, ctx: Context, e: Any, result: bytes | None) -> None:
        if not self._parked or e.data is None or e.conf_change:
            return
        try:
            entry = decode(e.data, KvEntry)
        except RemoteProtocolError:
            return
        touched: list[bytes] = []
        for args in entry.commands:
            spec = lookup(args[0]) if args else None
            if spec is not None and WRITE in spec.flags:
                touched.extend(keys_of(spec, list(args[1:])))
        for k in touched:
            q = self._parked.get(k)
            if q:
                self._wake(ctx, q[0])

    def _wake(self, ctx: Context, parked: _Parked) -> None:
        """Put a parked client's command in the log again (forwarded from a
        follower); with no leader known it waits for the next wake."""
        if parked.inflight or parked.done:
            return
        raft = self.raft
        self._seq += 1
        rid = self._next_rid()
        if raft.is_leader:
            entry = KvEntry(origin=self.origin, seq=self._seq, now_ms=int(ctx.unix_ms), commands=parked.commands)
            self._local[rid] = _Pending(client=parked.client, handle=parked.handle, kind="write", entry=entry,
                                        parked=parked)
            if not self.propose_for(ctx, LOCAL_SRC, rid, encode(entry)):
                del self._local[rid]
                return
        elif raft.leader is not None:
            self._forward(ctx, parked.client, parked.handle, raft.leader,
                          KvForward(request_id=rid, origin=self.origin, seq=self._seq, commands=parked.commands),
                          parked)
        else:
            return
        parked.inflight = True

    def _leadership(self, ctx: Context) -> None:
        """After each input, if the leader changed: forwards to a leader
        that is no longer the leader are answered UNCERTAIN (they may have
        been applied), and once a leader is known every key's first parked
        client tries again (an element may have arrived meanwhile)."""
        raft = self.raft
        if raft is None or raft.leader == self._known_leader:
            return
        if self._forwards:
            for rid, p in list(self._forwards.items()):
                if p.leader != raft.leader:
                    self._forward_answered(ctx, None, rid, None)
        if raft.leader is not None:
            for q in list(self._parked.values()):
                if q:
                    self._wake(ctx, q[0])
        self._known_leader = raft.leader

    # -- connection-level commands ----------------------------------------------------------------
    def _connection_command(self, ctx: Context, src: str, c: _Client, handle: Any, name: str,
                            args: tuple[bytes, ...]) -> bool:
        reply: Any
        if name == "ping":
            reply = SimpleString(text="PONG") if len(args) == 1 else BulkString(data=args[1])
            if len(args) > 2:
                reply = wrong_arity("ping")
        elif name == "echo":
            reply = BulkString(data=args[1])
        elif name == "select":
            reply = OK if args[1] == b"0" else SimpleError(text="ERR DB index is out of range")
        elif name == "quit":
            reply = OK
        elif name == "hello":
            reply = self._hello(c, args)
        elif name == "client":
            reply = self._client_command(src, c, args)
        elif name == "command":
            reply = self._command_command(args)
        elif name == "config":
            reply = self._config(args)
        elif name == "info":
            reply = self._info(args)
        elif name == "multi":
            if c.multi is not None:
                reply = SimpleError(text="ERR MULTI calls can not be nested")
            else:
                c.multi, c.multi_error = [], False
                reply = OK
        elif name == "discard":
            if c.multi is None:
                reply = SimpleError(text="ERR DISCARD without MULTI")
            else:
                c.multi, c.multi_error = None, False
                c.watched.clear()
                reply = OK
        elif name == "unwatch":
            c.watched.clear()
            reply = OK
        elif name == "watch":
            if c.multi is not None:
                reply = SimpleError(text="ERR WATCH inside MULTI is not allowed")
            else:
                self._start_read(ctx, src, handle, (VERSIONS_QUERY, *args[1:]), kind="watch")
                return True
        elif name == "exec":
            if c.multi is None:
                reply = SimpleError(text="ERR EXEC without MULTI")
            elif c.multi_error:
                c.multi, c.multi_error = None, False
                c.watched.clear()
                reply = SimpleError(text="EXECABORT Transaction discarded because of previous errors.")
            else:
                commands, watched = tuple(c.multi), tuple(c.watched.items())
                c.multi = None
                c.watched.clear()
                return self._start_write(ctx, src, handle, commands, watched, multi=True)
        else:
            reply = SimpleError(text=f"ERR '{name}' is not served here")
        self._reply(ctx, handle, reply)
        return False

    def _hello(self, c: _Client, args: tuple[bytes, ...]) -> Reply:
        version = 2
        i = 1
        if len(args) > 1:
            try:
                version = int(args[1])
            except ValueError:
                return SimpleError(text="ERR Protocol version is not an integer or out of range")
            if version not in (2, 3):
                return SimpleError(text="NOPROTO unsupported protocol version")
            i = 2
        while i < len(args):
            opt = args[i].lower()
            if opt == b"setname" and i + 1 < len(args):
                c.name = args[i + 1]
                i += 2
            elif opt == b"auth" and i + 2 < len(args):
                i += 3  # no users here: any credentials are accepted, as with Redis's default user
            else:
                return SimpleError(text=f"ERR Syntax error in HELLO option '{args[i].decode(errors='replace')}'")
        role = "master" if self.raft is not None and self.raft.is_leader else "replica"
        return Map(pairs=(
            (BulkString(data=b"server"), BulkString(data=b"redis")),
            (BulkString(data=b"version"), BulkString(data=SERVER_VERSION.encode())),
            (BulkString(data=b"proto"), Integer(value=version)),
            (BulkString(data=b"id"), Integer(value=c.number)),
            (BulkString(data=b"mode"), BulkString(data=b"standalone")),
            (BulkString(data=b"role"), BulkString(data=role.encode())),
            (BulkString(data=b"modules"), Array(items=())),
        ))

    def _client_command(self, src: str, c: _Client, args: tuple[bytes, ...]) -> Reply:
        sub = args[1].lower()
        if sub == b"id" and len(args) == 2:
            return Integer(value=c.number)
        if sub == b"getname" and len(args) == 2:
            return BulkString(data=c.name or None)
        if sub == b"setname" and len(args) == 3:
            if any(b <= 32 or b >= 127 for b in args[2]):
                return SimpleError(text="ERR Client names cannot contain spaces, newlines or special characters.")
            c.name = args[2]
            return OK
        if sub == b"setinfo" and len(args) == 4:
            c.lib = args[3].decode(errors="replace")
            return OK
        if sub in (b"list", b"info"):
            rows = [self._client_line(cid, cl) for cid, cl in self._clients_by_id.items()
                    if sub == b"list" or cid == src]
            return BulkString(data="".join(rows).encode())
        return SimpleError(text=f"ERR unknown subcommand or wrong number of arguments for '{sub.decode(errors='replace')}'"
                                ". Try CLIENT HELP.")

    @staticmethod
    def _client_line(cid: str, c: _Client) -> str:
        flags = "x" if c.multi is not None else "N"
        return (f"id={c.number} addr={c.addr} laddr= fd=-1 name={c.name.decode(errors='replace')} age=0 idle=0 "
                f"flags={flags} db=0 sub=0 psub=0 ssub=0 multi={len(c.multi) if c.multi is not None else -1} "
                f"watch={len(c.watched)} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 obl=0 oll=0 omem=0 tot-mem=0 "
                f"events=r cmd=client|list user=default redir=-1 resp=2 lib-name={c.lib} lib-ver=\n")

    def _command_command(self, args: tuple[bytes, ...]) -> Reply:
        table = all_commands()
        sub = args[1].lower() if len(args) > 1 else b""
        if sub == b"count":
            return Integer(value=len(table))
        if sub == b"list":
            return Array(items=tuple(BulkString(data=n.encode()) for n in sorted(table)))
        if sub == b"docs":
            names = [a.decode(errors="replace").lower() for a in args[2:]] or sorted(table)
            pairs = []
            for n in names:
                spec = table.get(n)
                if spec is not None:
                    pairs.append((BulkString(data=n.encode()), Map(pairs=(
                        (BulkString(data=b"summary"), BulkString(data=spec.summary.encode())),
                        (BulkString(data=b"since"), BulkString(data=b"1.0.0")),
                        (BulkString(data=b"group"), BulkString(data=b"generic")),
                    ))))
            return Map(pairs=tuple(pairs))
        if sub in (b"", b"info"):
            names = [a.decode(errors="replace").lower() for a in args[2:]] if sub else sorted(table)
            return Array(items=tuple(self._command_info(table.get(n)) for n in names))
        return SimpleError(text=f"ERR unknown subcommand '{sub.decode(errors='replace')}'. Try COMMAND HELP.")

    @staticmethod
    def _command_info(spec: Any) -> Reply:
        if spec is None:
            return NIL_ARRAY
        return Array(items=(
            BulkString(data=spec.name.encode()), Integer(value=spec.arity),
            Array(items=tuple(SimpleString(text=f) for f in sorted(spec.flags) if f != CONNECTION)),
            Integer(value=spec.first_key), Integer(value=spec.last_key), Integer(value=spec.step),
            Array(items=()), Array(items=()), Array(items=()), Array(items=()),
        ))

    def _config(self, args: tuple[bytes, ...]) -> Reply:
        sub = args[1].lower()
        if sub == b"get" and len(args) >= 3:
            pairs = []
            for pattern in args[2:]:
                pat = pattern.decode(errors="replace").lower()
                for name in sorted(self.config_values):
                    if fnmatch.fnmatchcase(name, pat):
                        pairs.append((BulkString(data=name.encode()),
                                      BulkString(data=self.config_values[name].encode())))
            return Map(pairs=tuple(pairs))
        if sub == b"set" and len(args) >= 4 and len(args) % 2 == 0:
            for i in range(2, len(args), 2):
                name = args[i].decode(errors="replace").lower()
                if name not in CONFIG_WRITABLE:
                    return SimpleError(text=f"ERR Unknown option or number of arguments for CONFIG SET - '{name}'")
            for i in range(2, len(args), 2):
                self.config_values[args[i].decode().lower()] = args[i + 1].decode(errors="replace")
            return OK
        if sub == b"resetstat" and len(args) == 2:
            return OK
        return SimpleError(text=f"ERR unknown subcommand or wrong number of arguments for "
                                f"'{sub.decode(errors='replace')}'. Try CONFIG HELP.")

    def _info(self, args: tuple[bytes, ...]) -> Reply:
        raft = self.raft
        wanted = {a.decode(errors="replace").lower() for a in args[1:]} or {"default"}
        everything = bool(wanted & {"all", "everything", "default"})
        keys, expires = self.machine.keyspace.keys_count(self.machine.keyspace.applied_time_ms)
        blocked = sum(1 for p in self._timers_parked.values() if not p.done)
        sections = {
            "server": [("redis_version", SERVER_VERSION), ("synod", "kv on raft"), ("redis_mode", "standalone"),
                       ("run_id", self.origin)],
            "clients": [("connected_clients", str(len(self._clients_by_id))), ("blocked_clients", str(blocked)),
                        ("maxclients", self.config_values["maxclients"])],
            "replication": [
                ("role", "master" if raft.is_leader else "slave"), ("raft_role", raft.role),
                ("raft_term", str(raft.term)), ("raft_leader", raft.leader or ""),
                ("raft_commit_index", str(raft.log.commit_index)),
                ("raft_applied_index", str(raft.log.applied_index)),
                ("raft_members", ",".join(sorted(raft.conf.voters))),
                ("raft_learners", ",".join(sorted(raft.conf.learners))),
            ],
            "keyspace": [("db0", f"keys={keys},expires={expires},avg_ttl=0")] if keys else [],
        }
        out = []
        for name, rows in sections.items():
            if everything or name in wanted:
                out.append(f"# {name.capitalize()}\r\n" + "".join(f"{k}:{v}\r\n" for k, v in rows))
        return VerbatimString(format="txt", text="\r\n".join(out))


# -- the real runtime ------------------------------------------------------------------------

FACTORY = "synod.kv.node:factory"


class KvNodeParams(Params):
    """The params of ``synod.kv.node:factory`` (all optional): Raft's
    ``tick_interval_ms``, ``election_ticks``, ``heartbeat_ticks``,
    ``snapshot_interval_entries`` (0: never), ``lease_read`` (serve reads
    under the leader's lease instead of a ReadIndex round, thesis 6.4.1);
    ``voters``: the initial voters (default every node of the cluster; a
    node not among them starts as a learner waiting to be added, thesis
    4.2.1, as ``synod kv member add`` starts a new server)."""

    tick_interval_ms: float = RC.TICK_INTERVAL_MS
    election_ticks: int = RC.ELECTION_TICKS
    heartbeat_ticks: int = RC.HEARTBEAT_TICKS
    snapshot_interval_entries: int = 10_000
    lease_read: bool = False
    voters: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not all(self.voters):
            raise ValueError("voters must be non-empty node ids")


def factory(node_id: str, params: dict[str, Any]) -> KvNode:
    """Cluster-config factory ``synod.kv.node:factory``.

    Raises:
        ConfigError: params that are not :class:`KvNodeParams`.
    """
    p = parse_params(params, KvNodeParams)
    raft = RaftConfig(election_ticks=p.election_ticks, heartbeat_ticks=p.heartbeat_ticks, lease_read=p.lease_read)
    return KvNode(RaftNodeConfig(raft=raft, voters=p.voters, tick_interval_ms=p.tick_interval_ms,
                                 snapshot_interval_entries=p.snapshot_interval_entries))
