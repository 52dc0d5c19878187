"""Running a client library written against ``ctx`` in an ordinary program.

A system's client library (the GFS client, :class:`synod.gfs.GfsClient`)
is a coroutine that only awaits ``ctx.call``, ``ctx.gather`` and
``ctx.sleep`` and reads ``ctx.now_ms``, ``ctx.node_id`` and ``ctx.rng``
(DESIGN.md section 2). In the simulator a client node runs it; here
:class:`Driver` runs it against real processes: it hosts the coroutine in
a :class:`~synod.core.Host` (the same resumption, gather and timeout
rules as everywhere) and carries each call over a
:class:`~synod.runtime.client.Client` connection, a few in parallel (a
gather's calls go out at once, each on its own connection; connections are
kept for reuse, at most ``CONNECTIONS_MAX``). A node answers a client on
the one connection it knows that client id by, so each connection is its
own client id, ``<client_id>.<n>``: two calls in flight to one node on two
connections each get their own reply. (A driven client library names
itself in its messages where the protocol needs it, as GFS's pushes do.)

The program calls :meth:`Driver.run` with a function of ``ctx`` returning
the coroutine; it returns the coroutine's result or raises its exception.
One :class:`Driver` runs one coroutine at a time (it is not thread-safe).

A call to a node that is down or refuses the connection answers ``None``
after its timeout, as a lost message would in the simulator.
"""

from __future__ import annotations

import concurrent.futures
import heapq
import queue
import random
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from synod.core import Context, Host, Node
from synod.core.errors import LocalProtocolError, RemoteProtocolError
from synod.runtime.auth import Credentials
from synod.runtime.client import Addr, Client, new_client_id

__all__ = ["Driver", "CONNECTIONS_MAX", "CALLS_IN_FLIGHT_MAX"]

CONNECTIONS_MAX = 64          # idle connections kept, over all nodes
CALLS_IN_FLIGHT_MAX = 32      # calls carried at once (threads)


class _NoDisk:
    """A driven client has no disk."""

    sync_requested = False

    def __getattr__(self, name: str) -> Any:
        raise LocalProtocolError("a driven client has no ctx.disk")


class _Main(Node):
    def __init__(self, make: Callable[[Context], Coroutine[Any, Any, Any]], done: list[Any]) -> None:
        self.make = make
        self.done = done

    async def on_start(self, ctx: Context) -> None:
        try:
            self.done.append(("ok", await self.make(ctx)))
        except Exception as e:  # handed back to the caller of Driver.run
            self.done.append(("error", e))


class Driver(Host):
    """Runs ``ctx`` coroutines against real nodes.

    Args:
        addrs: node id -> (host, port) of every node the coroutine may call.
        client_id: this client's id (its ``src``; default a fresh one).
        credentials: the cluster key when the cluster has one.
        seed: seeds ``ctx.rng`` (default: from the system's entropy).
    """

    def __init__(self, addrs: Mapping[str, Addr], *, client_id: str | None = None,
                 credentials: Credentials | None = None, seed: int | None = None) -> None:
        super().__init__()
        self.addrs = dict(addrs)
        self.client_id = client_id or new_client_id("gfs-client")
        self.credentials = credentials
        self.rng = random.Random(seed)
        self._t0 = time.monotonic()
        self._replies: queue.Queue[tuple[str, Any, int]] = queue.Queue()
        self._timers: list[tuple[float, int, Any]] = []
        self._armed: dict[Any, int] = {}        # timer name -> token of its live deadline
        self._token = 0
        self._idle: dict[str, list[Client]] = {}
        self._idle_count = 0
        self._connections_opened = 0
        self._lock = threading.Lock()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=CALLS_IN_FLIGHT_MAX,
                                                           thread_name_prefix="synod-driver")

    # -- Host hooks ---------------------------------------------------------------------------------
    def clock_ms(self) -> float:
        return (time.monotonic() - self._t0) * 1000.0

    def unix_ms(self) -> float:
        return time.time() * 1000.0

    def trace(self, event: str, fields: dict[str, Any]) -> None:
        return None

    def _apply(self, ctx: Context) -> None:
        effects = ctx.effects
        call_timeouts = {name[1]: delay for name, delay in effects.timer_ops
                         if type(name) is tuple and name[0] == "call" and delay is not None}
        for dst, msg, corr in effects.early_sends + effects.sends:
            if corr < 0:
                continue   # a client answers nobody
            # the thread waits a little longer than the call's timeout: the host's timer decides
            self._pool.submit(self._carry, dst, msg, corr, call_timeouts.get(corr, 10_000.0) + 50.0)
        now = self.clock_ms()
        for name, delay in effects.timer_ops:
            self._token += 1
            if delay is None:
                self._armed.pop(name, None)
            else:
                self._armed[name] = self._token
                heapq.heappush(self._timers, (now + delay, self._token, name))
        effects.clear()

    # -- calls over connections ---------------------------------------------------------------------
    def _client(self, dst: str) -> Client | None:
        with self._lock:
            idle = self._idle.get(dst)
            if idle:
                self._idle_count -= 1
                return idle.pop()
            addr = self.addrs.get(dst)
            if addr is None:
                return None
            self._connections_opened += 1
            connection_id = f"{self.client_id}.{self._connections_opened}"
        return Client(addr, client_id=connection_id, credentials=self.credentials, server_id=dst)

    def _release(self, dst: str, client: Client) -> None:
        with self._lock:
            if self._idle_count < CONNECTIONS_MAX:
                self._idle.setdefault(dst, []).append(client)
                self._idle_count += 1
                return
        client.close()

    def _carry(self, dst: str, msg: Any, corr: int, timeout_ms: float) -> None:
        """On a pool thread: one call (corr > 0) or plain send (0)."""
        client = self._client(dst)
        if client is None:
            return
        try:
            if corr == 0:
                client.send(msg)
                reply = None
            else:
                reply = client.call(msg, timeout_ms / 1000.0)
        except (OSError, RemoteProtocolError):
            client.close()
            return
        self._release(dst, client)
        if reply is not None:
            self._replies.put((dst, reply, -corr))

    # -- the loop -----------------------------------------------------------------------------------
    def run(self, make: Callable[[Context], Coroutine[Any, Any, Any]]) -> Any:
        """Run ``make(ctx)`` to its end; its result, or its exception raised here."""
        done: list[Any] = []
        ctx = Context(self, self.client_id, tuple(self.addrs), self.rng, _NoDisk(), None)  # type: ignore[arg-type]
        self.boot(_Main(make, done), ctx)
        while not done:
            timeout = None
            while self._timers:
                deadline, token, name = self._timers[0]
                if self._armed.get(name) != token:
                    heapq.heappop(self._timers)
                    continue
                timeout = max(deadline - self.clock_ms(), 0.0) / 1000.0
                break
            try:
                src, msg, corr = self._replies.get(timeout=timeout)
            except queue.Empty:
                deadline, token, name = heapq.heappop(self._timers)
                del self._armed[name]
                self.fire_timer(name)
                continue
            self.deliver(src, msg, corr)
        self.shutdown()
        kind, value = done[0]
        if kind == "error":
            raise value
        return value

    def close(self) -> None:
        """Close every kept connection and the call threads."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            for clients in self._idle.values():
                for c in clients:
                    c.close()
            self._idle.clear()
            self._idle_count = 0

    def __enter__(self) -> Driver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
