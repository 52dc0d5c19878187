"""One node in one OS process (DESIGN.md sections 2 and 6).

:class:`RealHost` is the real-world twin of :class:`synod.sim.SimHost`: it
subclasses :class:`synod.core.Host` and says how a handler's effects reach
the world, in the contract's order:

1. disk: if the handler called ``ctx.disk.sync()``, the touched files and
   directories are fsynced (:meth:`FileDisk.make_durable`) *before* anything
   is sent: nothing a node says gets ahead of what it has persisted. This
   is a *group commit*, as ZooKeeper's SyncRequestProcessor and etcd's WAL
   do it: at the end of the loop turn in which a handler asked, the touched
   files' descriptors are handed to one fsync thread, and the loop goes on
   handling input while it runs; the sends of that handler and of every
   handler after it wait, in order, and go out when their group's fsync has
   returned. Groups are fsynced one at a time, so a burst of client writes
   costs one fsync per group, not one per write. At most
   ``GROUP_COMMIT_SENDS_MAX`` sends wait; past it the loop waits for the
   fsyncs itself. An fsync that fails is a crash;
2. sends: each message is framed and handed to the :class:`Transport`;
3. timers: ``loop.call_later``, one per name (re-arming replaces), the host's
   own tuple-named timers (``ctx.call`` timeouts, ``ctx.sleep``) included;
   armed at once (a timer tells the world nothing);
4. exit: ``ctx.exit(code)`` stops the node; the process flushes its sends
   for at most ``EXIT_FLUSH_MS_MAX`` and exits with ``code``. Stopping for
   any reason first makes every waiting group durable and sends it.

Handlers run one at a time on one asyncio loop. A handler that raises is a
crash: the traceback goes to the log and the process exits with
``EXIT_CODE_HANDLER_ERROR``; effects queued by that handler are not applied.
One exception: ``on_message`` raising :class:`RemoteProtocolError` means the
message was impossible (a node validates peer input before it changes any
state). Then the message is treated as never received: the handler's queued
sends, timers and exit are discarded, the sender's connections are closed
(:meth:`Transport.reject_src`, one WARNING line, counted in
``protocol_errors``) and the node runs on. If that handler had already asked
for a disk sync, its state did change, and it is a crash as above.

Every connection to the node's port proves the cluster key when the config
has one (:mod:`synod.runtime.auth`); the transport bounds connections and
memory for frames being received (``partial_frame_bytes_max``).

The world of a node: ``ctx.now_ms`` is ``time.monotonic()`` in ms;
``ctx.rng`` is ``random.Random(f"{seed}:{node_id}:{nonce}")`` with a fresh
nonce per start (logged in the ``start`` trace event), so a restarted node
does not replay its earlier random choices; ``ctx.disk`` is a
:class:`FileDisk` in ``run_dir/<id>/data``; ``ctx.fs`` is the filesystem the
config's ``fs`` names (an fsspec protocol and its options: ``gfs`` for a
synod GFS cell), else fsspec's local file system (absolute paths;
``fs_root``, when configured, is created at start and is where shared files
belong by convention). ``ctx.trace`` writes JSON lines
``{"t_ms", "unix_ms", "node", "kind", ...}`` to ``run_dir/<id>/trace.jsonl``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import gc
import json
import logging
import os
import random
import secrets
import signal
import sys
import time
from pathlib import Path
from typing import IO, Any

import fsspec

from synod.core.codec import to_jsonable
from synod.core.errors import ConfigError, RemoteProtocolError
from synod.core.node import Context, Host, Node, TimerName, TimerOp
from synod.runtime.auth import Credentials
from synod.runtime.config import ClusterConfig, NodeConfig, build_node
from synod.runtime.constants import (
    EXIT_CODE_CONFIG_ERROR,
    EXIT_CODE_HANDLER_ERROR,
    EXIT_FLUSH_MS_MAX,
    GROUP_COMMIT_SENDS_MAX,
    OPEN_FILES_WANTED,
    PARENT_CHECK_INTERVAL_MS,
)
from synod.runtime.disk import FileDisk, fsync_and_close
from synod.runtime.gateway import Gateway
from synod.runtime.messages import Faults
from synod.runtime.transport import Transport

__all__ = ["RealHost", "run_node", "FAULTS_FILE_NAME", "TRACE_FILE_NAME", "LOG_FILE_NAME"]

log = logging.getLogger("synod.runtime")

FAULTS_FILE_NAME = "faults.json"
TRACE_FILE_NAME = "trace.jsonl"
LOG_FILE_NAME = "node.log"
# The cyclic collector's thresholds once the node runs (CPython's default is
# (700, 10, 10)). A node's long-lived state (a data tree of a million znodes,
# a log) is walked by every older-generation collection, and the default
# first threshold, 700 container allocations, starts one every few hundred
# messages: with it, collection took a sixth of a ZooKeeper server's CPU
# under 1 KiB creates. Most of a node's garbage is acyclic and freed by
# reference counting at once; what is cyclic waits for at most 50,000
# allocations.
GC_THRESHOLDS = (50_000, 20, 10)


class RealHost(Host):
    """Hosts one node in this process on the running asyncio loop.

    Args:
        config: the cluster config.
        node_id: which node of it this process runs.

    Raises:
        ConfigError: ``node_id`` is not in the config, or the cluster key or
            a TLS file the config names cannot be loaded.
    """

    def __init__(self, config: ClusterConfig, node_id: str) -> None:
        super().__init__()
        if node_id not in config.nodes:
            raise ConfigError(f"node {node_id!r} is not in the config (nodes: {', '.join(config.nodes)})")
        self.config = config
        self.node_id = node_id
        self.node_dir = config.node_dir(node_id)
        self.node_dir.mkdir(parents=True, exist_ok=True)
        self.nonce = secrets.token_hex(4)
        self.disk = FileDisk(self.node_dir / "data")
        self.exit_code: int | None = None
        # Group commit: the sends of handlers that asked for a sync (and of
        # every handler after them) waiting for this loop turn's fsync;
        # None when nothing waits.
        self._group: list[tuple[str, Any, int]] | None = None
        # The group whose fsync runs on the fsync thread, and its sends.
        self._inflight: tuple[concurrent.futures.Future[None], list[tuple[str, Any, int]]] | None = None
        self._fsync_pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="fsync")
        self.group_commits = 0
        self._timers: dict[TimerName, asyncio.TimerHandle] = {}
        self._exited: asyncio.Event | None = None
        self._trace_file: IO[str] | None = None
        if config.trace:
            self._trace_file = open(self.node_dir / TRACE_FILE_NAME, "a", buffering=1, encoding="utf-8")
        self._trace_messages = config.trace_messages
        # Client-facing ports (synod.runtime.gateway), by protocol name; started
        # once the node is built, since the node names its protocols.
        self.gateways: dict[str, Gateway] = {}
        self.transport = Transport(
            node_id,
            {nid: n.addr for nid, n in config.nodes.items()},
            frame_size_bytes_max=config.frame_size_bytes_max,
            deliver=self._on_deliver,
            trace=self.trace,
            rng=random.Random(f"transport:{config.seed}:{node_id}:{self.nonce}"),
            credentials=Credentials.from_config(config, node_id),
            partial_frame_bytes_max=config.partial_frame_bytes_max,
        )

    # -- Host hooks ----------------------------------------------------------------
    def _shared_fs(self) -> Any:
        """``ctx.fs``: the config's ``fs`` (an fsspec protocol and its
        options), else the local file system.

        Raises:
            ConfigError: the protocol is unknown or refuses its options.
        """
        spec = self.config.fs
        if spec is None:
            return fsspec.filesystem("file")
        try:
            return fsspec.filesystem(spec["protocol"], **spec["options"])
        except (ValueError, TypeError, ImportError, OSError) as e:
            raise ConfigError(f"node {self.node_id}: ctx.fs {spec['protocol']!r}: {e}") from None

    def clock_ms(self) -> float:
        return time.monotonic() * 1000.0

    def unix_ms(self) -> float:
        return time.time() * 1000.0

    def trace(self, event: str, fields: dict[str, Any]) -> None:
        out = self._trace_file
        if out is None:
            return
        record: dict[str, Any] = {"t_ms": round(self.clock_ms(), 3), "unix_ms": round(time.time() * 1000.0, 3),
                                  "node": self.node_id, "kind": event}
        for k, v in fields.items():
            record[k] = to_jsonable(v)
        out.write(json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=repr) + "\n")

    def warn(self, message: str, fields: dict[str, Any]) -> None:
        detail = " ".join(f"{k}={v}" for k, v in fields.items())
        log.warning("%s%s", message, f" ({detail})" if detail else "")
        self.trace("warning", {"message": message, **fields})

    def _apply(self, ctx: Context) -> None:
        disk = ctx.disk
        effects = ctx.effects
        if effects.early_sends:
            # Marked ahead_of_sync: they wait for no group (copied first, as in _send_all).
            early = effects.early_sends.copy()
            effects.early_sends.clear()
            self._send_list(early)
        if effects.timer_ops:
            # Armed at once: a timer says nothing to the world, and its
            # handler's own effects wait behind the group like any other's.
            self._arm(effects.timer_ops)
            effects.timer_ops.clear()
        exit_code = effects.exit_code
        if exit_code is not None:
            effects.exit_code = None
            self._drain_groups()
            if disk.sync_requested:
                disk.make_durable()  # type: ignore[attr-defined]
            self._send_all(effects)
            self.stop(exit_code, reason="ctx.exit")
            return
        group = self._group
        if disk.sync_requested:
            disk.sync_requested = False
            if group is None:
                group = self._group = []
                if self._inflight is None:
                    asyncio.get_running_loop().call_soon(self._commit_group)
        elif group is None and self._inflight is not None and effects.sends:
            # Says nothing that may not depend on the fsync in progress:
            # waits behind it (the next group, with nothing to sync of its own).
            group = self._group = []
        if effects.sends:
            if group is not None:
                group.extend(effects.sends)
                effects.sends.clear()
                if len(group) > GROUP_COMMIT_SENDS_MAX:
                    self._drain_groups()
            else:
                self._send_all(effects)

    def _commit_group(self) -> None:
        """Start the fsync of the open group on the fsync thread, unless one
        is in progress (its end starts the next). Called at the end of the
        loop turn in which the group opened."""
        if self._inflight is not None or self._group is None or self.exit_code is not None:
            return
        sends, self._group = self._group, None
        fds = self.disk.take_unsynced()
        done = self._fsync_pool.submit(fsync_and_close, fds)
        self._inflight = (done, sends)
        loop = asyncio.get_running_loop()
        done.add_done_callback(lambda f: loop.call_soon_threadsafe(self._group_durable, f))

    def _group_durable(self, done: concurrent.futures.Future[None]) -> None:
        """The fsync thread finished a group: send what its handlers said, in
        order, and start the next group's fsync."""
        inflight = self._inflight
        if inflight is None or inflight[0] is not done:
            return  # already drained (the node stopped)
        self._inflight = None
        error = done.exception()
        if error is not None:
            # Not durable: nothing that depends on it may be said.
            self._group = None
            self._crash(error, "fsync failed")  # type: ignore[arg-type]
            return
        self.group_commits += 1
        self._send_list(inflight[1])
        if self._group is not None:
            self._commit_group()

    def _drain_groups(self) -> None:
        """Make everything waiting durable and send it, on this thread (at
        exit, and as back-pressure when too much waits)."""
        inflight = self._inflight
        if inflight is not None:
            self._inflight = None
            inflight[0].result()   # an fsync error is a crash: raises
            self.group_commits += 1
            self._send_list(inflight[1])
        group = self._group
        if group is not None:
            self._group = None
            self.disk.make_durable()
            self.group_commits += 1
            self._send_list(group)

    def _send_all(self, effects: Any) -> None:
        if effects.sends:
            # Copied and emptied before sending: a send can run a nested
            # handler (a gateway closing a client delivers ClientClosed)
            # whose own _apply must not send these again.
            sends = effects.sends.copy()
            effects.sends.clear()
            self._send_list(sends)

    def _send_list(self, sends: list[tuple[str, Any, int]]) -> None:
        send = self.transport.send
        gateways = self.gateways
        for dst, msg, corr in sends:
            if self._trace_messages:
                self.trace("send", {"dst": dst, "corr": corr, "msg": msg})
            if gateways and ":" in dst:  # a client of a gateway: ids are "<protocol>:<n>"
                gw = gateways.get(dst.split(":", 1)[0])
                if gw is not None:
                    gw.reply(dst, corr, msg)
                    continue
            send(dst, msg, corr)

    def _arm(self, timer_ops: list[TimerOp]) -> None:
        loop = asyncio.get_running_loop()
        timers = self._timers
        for name, delay_ms in timer_ops:
            old = timers.pop(name, None)
            if old is not None:
                old.cancel()
            if delay_ms is not None:
                timers[name] = loop.call_later(delay_ms / 1000.0, self._on_timer, name)

    # -- inputs from the loop ----------------------------------------------------------
    def _on_deliver(self, src: str, msg: Any, corr: int) -> None:
        if self.stopped:
            return
        if self._trace_messages:
            self.trace("recv", {"src": src, "corr": corr, "msg": msg})
        self._guard(self.deliver, src, msg, corr, sender=src)

    def _on_timer(self, name: TimerName) -> None:
        self._timers.pop(name, None)
        if self.stopped:
            return
        if self._trace_messages and type(name) is str:
            self.trace("timer", {"name": name})
        self._guard(self.fire_timer, name)

    def _guard(self, fn: Any, *args: Any, sender: str | None = None) -> None:
        try:
            fn(*args)
        except RemoteProtocolError as e:
            if sender is not None and self._forget_handler():
                self.trace("invalid_message", {"src": sender, "error": str(e)})
                gw = self.gateways.get(sender.split(":", 1)[0]) if ":" in sender else None
                if gw is not None and gw.owns(sender):
                    gw.close_client(sender, f"protocol error: {e}", protocol_error=True)
                else:
                    self.transport.reject_src(sender, e)
                return
            self._crash(e, "a handler raised RemoteProtocolError after asking for a disk sync" if sender else "")
        except Exception as e:  # a handler bug is a crash of this node, not of the loop
            self._crash(e, "")

    def _crash(self, e: Exception, why: str) -> None:
        log.exception("node %s crashed in a handler%s", self.node_id, f" ({why})" if why else "")
        self.trace("crash", {"error": f"{type(e).__name__}: {e}"})
        self.stop(EXIT_CODE_HANDLER_ERROR, reason="handler raised")

    def _forget_handler(self) -> bool:
        """Discard the effects a handler queued before it raised, as if its
        message never arrived. False if it cannot be taken back (it asked for
        a disk sync: its durable state changed)."""
        ctx = self.ctx
        if ctx is None or ctx.disk.sync_requested:
            return False
        ctx.effects.clear()
        ctx.end_request()
        return True

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        """Bind the port, load the fault state, build and boot the node, then
        accept connections.

        Raises:
            ConfigError: the factory fails, or the port cannot be bound.
        """
        if self._exited is None:
            self._exited = asyncio.Event()
        node_cfg = self.config.nodes[self.node_id]
        if self.config.fs_root is not None:
            self.config.fs_root.mkdir(parents=True, exist_ok=True)
        node = build_node(self.config, self.node_id)
        try:
            await self.transport.listen(node_cfg.host, node_cfg.port)
        except OSError as e:
            raise ConfigError(f"node {self.node_id}: cannot listen on {node_cfg.host}:{node_cfg.port}: {e}") from None
        faults = load_faults(self.node_dir)
        if faults is not None:
            self.transport.set_faults(faults)
        rng = random.Random(f"{self.config.seed}:{self.node_id}:{self.nonce}")
        ctx = Context(self, self.node_id, tuple(self.config.nodes), rng, self.disk, self._shared_fs())
        if self.exit_code is not None:
            return  # stopped (a signal) before the node was booted
        self.trace("start", {"pid": os.getpid(), "nonce": self.nonce, "port": node_cfg.port})
        # Call ids start at a random point in each process, so a late reply to
        # a call of an earlier process of this node matches no new call.
        self._next_wait_id = int(self.nonce, 16) << 20 | 1
        log.info("node %s starting on %s:%d (pid %d)", self.node_id, node_cfg.host, node_cfg.port, os.getpid())
        self._guard(self.boot, node, ctx)
        if self.exit_code is None:  # on_start may have crashed or exited
            await self._start_gateways(node, node_cfg)
        if self.exit_code is None:
            await self.transport.start_serving()

    async def _start_gateways(self, node: Node, node_cfg: NodeConfig) -> None:
        """Serve each client protocol the config gives a port.

        Raises:
            ConfigError: the config names a protocol the node does not
                speak, or a port cannot be bound.
        """
        protocols = node.client_protocols() if node_cfg.client_ports else {}
        for name, port in node_cfg.client_ports.items():
            factory = protocols.get(name)
            if factory is None:
                raise ConfigError(f"node {self.node_id}: client_ports names {name!r}, but the node speaks "
                                  f"{sorted(protocols) or 'no client protocol'}")
            gw = Gateway(name, factory, self._on_client_input, self.trace)
            try:
                await gw.listen(node_cfg.host, port)
            except OSError as e:
                raise ConfigError(f"node {self.node_id}: cannot serve {name} on {node_cfg.host}:{port}: {e}") from None
            self.gateways[name] = gw
            log.info("node %s serving %s clients on %s:%d", self.node_id, name, node_cfg.host, port)

    def _on_client_input(self, src: str, msg: Any, corr: int) -> None:
        """A gateway's input (a client's request, ClientOpened/Closed)."""
        self._on_deliver(src, msg, corr)

    def stop(self, code: int, *, reason: str) -> None:
        """Stop the node: no handler runs after this; the process exits with
        ``code`` once :meth:`serve` has flushed the sends."""
        if self.exit_code is not None:
            return
        try:
            self._drain_groups()  # what earlier handlers said stands
        except OSError as e:
            log.error("node %s: fsync failed while stopping: %s", self.node_id, e)
        self.exit_code = code
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        self.shutdown()
        self.transport.stop_receiving()
        for gw in self.gateways.values():
            gw.close()
        self.trace("exit", {"code": code, "reason": reason})
        log.info("node %s stopping (%s), exit code %d", self.node_id, reason, code)
        if self._exited is not None:
            self._exited.set()

    async def serve(self, *, parent_pid: int | None = None) -> int:
        """Run until the node stops; returns the process exit code."""
        loop = asyncio.get_running_loop()
        self._exited = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, functools.partial(self.stop, 0, reason=f"signal {sig.name}"))
        # Resumed after a pause: the supervisor may have changed faults.json
        # meanwhile (it cannot authenticate to a paused node to tell it).
        loop.add_signal_handler(signal.SIGCONT, self._reload_faults)
        if parent_pid is not None:
            self._watch_parent(parent_pid)
        await self.start()
        # Start-up's objects (modules, the node's own state) live as long as
        # the process: keep the cyclic collector from walking them again on
        # every full collection (CPython's gc.freeze, as forking servers do).
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        assert self._exited is not None
        await self._exited.wait()
        await self.transport.flush(EXIT_FLUSH_MS_MAX)
        self.transport.close()
        await asyncio.sleep(0)  # let the closes reach the sockets
        self._fsync_pool.shutdown(wait=True)
        self.disk.close()
        if self._trace_file is not None:
            self._trace_file.close()
            self._trace_file = None
        assert self.exit_code is not None
        return self.exit_code

    def _reload_faults(self) -> None:
        if self.exit_code is not None:
            return
        faults = load_faults(self.node_dir)
        if faults is not None and faults != self.transport.faults:
            self.transport.set_faults(faults)

    def _watch_parent(self, parent_pid: int) -> None:
        loop = asyncio.get_running_loop()

        def check() -> None:
            if self.exit_code is not None:
                return
            if os.getppid() != parent_pid:
                self.stop(0, reason=f"supervisor {parent_pid} is gone")
                return
            loop.call_later(PARENT_CHECK_INTERVAL_MS / 1000.0, check)

        check()


def load_faults(node_dir: Path) -> Faults | None:
    """The fault state the supervisor left in ``node_dir/faults.json``, if any."""
    path = node_dir / FAULTS_FILE_NAME
    try:
        raw = json.loads(path.read_text())
        return Faults.from_json(raw)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, AttributeError) as e:
        log.warning("ignoring unreadable %s: %s", path, e)
        return None


def _raise_open_files_limit(wanted: int) -> None:
    """Raise this process's soft limit on open files towards ``wanted`` (as
    far as the hard limit allows), so the transport's connection pools fit."""
    try:
        import resource
    except ImportError:  # not POSIX
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as e:
            log.warning("cannot raise the open-files limit from %d to %d: %s", soft, target, e)


def _setup_logging(node_id: str, stream: IO[str]) -> None:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(
        f"%(asctime)s.%(msecs)03d %(levelname)s {node_id} %(message)s", datefmt="%Y-%m-%dT%H:%M:%S"))
    root = logging.getLogger("synod")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False


def run_node(config: ClusterConfig, node_id: str, *, parent_pid: int | None = None,
             log_stream: IO[str] | None = None) -> int:
    """Run node ``node_id`` in this process until it exits; returns the exit
    code (0 after SIGTERM/SIGINT, the node's ``ctx.exit`` code,
    ``EXIT_CODE_HANDLER_ERROR`` after a handler raised,
    ``EXIT_CODE_CONFIG_ERROR`` if it could not start).

    ``parent_pid``: exit when that process (the supervisor) is gone.
    Log lines go to ``log_stream`` (default stderr).
    """
    _setup_logging(node_id, log_stream or sys.stderr)
    _raise_open_files_limit(OPEN_FILES_WANTED)

    async def main() -> int:
        host = RealHost(config, node_id)
        return await host.serve(parent_pid=parent_pid)

    try:
        return asyncio.run(main())
    except ConfigError as e:
        log.error("cannot start: %s", e)
        return EXIT_CODE_CONFIG_ERROR
    finally:
        logging.getLogger("synod").handlers[0].flush()
