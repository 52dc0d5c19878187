"""VMware FT as real processes on 127.0.0.1 (issue 15 sections 3-4): the
cluster spec of a primary/backup pair and its shared storage, and the
console client that feeds a program its input and prints its output
across a failover.

Nodes: ``storage`` (the test-and-set, :class:`~synod.ft.node.StorageNode`),
``p1`` (starts the program) and, with a backup, ``p2``; each replica a
:class:`~synod.ft.node.FtNode` (factory :data:`~synod.ft.factories.FT_FACTORY`)
over the runtime's transport. Replicas that exit by themselves (a
``crash_at_instret`` fault, a lost test-and-set) are respawned by the
supervisor: a restarted replica asks the storage who is live and joins it
as a new backup (restoring redundancy).

:class:`Console` speaks synod's own wire protocol to the replicas
(:class:`synod.runtime.client.Client`): it finds the live one (each
replica answers ``WhoIsPrimary`` with itself when live), attaches from the
first output index it has not seen, sends its console input numbered and
again until acknowledged, and keeps every output by index, so a failover
costs it at most copies of outputs it already has.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from synod.ft.factories import FT_FACTORY, STORAGE_FACTORY
from synod.ft.messages import Attach, ConsoleIn, InputAck, NotPrimary, Output, OutputAck, WhoIsPrimary
from synod.runtime.client import Client
from synod.runtime.cluster import LocalCluster
from synod.runtime.config import ClusterSpec, NodeSpec

__all__ = ["pair_spec", "Console", "REPLICAS", "INPUT_CHUNK_BYTES_MAX"]

REPLICAS = ("p1", "p2")
INPUT_CHUNK_BYTES_MAX = 4096       # console input per ConsoleIn message
RESEND_INTERVAL_S = 0.2
ACK_EVERY_OUTPUTS = 512        # outputs received between two OutputAcks (besides one every RESEND_INTERVAL_S)
FIND_TIMEOUT_S = 0.5


def pair_spec(run_dir: str | os.PathLike[str], *, program: str = "echo", backup: bool = True,
              crash_at_instret: int = 0, **replica_params: Any) -> ClusterSpec:
    """The spec of ``storage``, ``p1`` and (with ``backup``) ``p2`` running
    ``program`` (a name of synod.ft.programs or an ELF path);
    ``crash_at_instret``: p1 dies (exit 137) when, live, it reaches that
    count. With a backup, the program starts once the backup has loaded its snapshot
    (``start_with_backup``: fault tolerant from its first instruction).
    ``replica_params`` are more FtConfig fields for both replicas."""
    replicas = REPLICAS if backup else REPLICAS[:1]
    nodes = {"storage": NodeSpec(factory=STORAGE_FACTORY)}
    for nid in replicas:
        peer = REPLICAS[1] if nid == REPLICAS[0] else REPLICAS[0]
        params = {"peer": peer if backup else "", "first": nid == REPLICAS[0], "program": program,
                  "slice_interval_ms": 0.0, "start_with_backup": backup, **replica_params}
        if nid == REPLICAS[0] and crash_at_instret:
            params["crash_at_instret"] = crash_at_instret
        nodes[nid] = NodeSpec(factory=FT_FACTORY, params=params)
    return ClusterSpec(run_dir=run_dir, nodes=nodes, trace=False)


class Console:
    """The outside world of one run: input in, output out (see the module docstring)."""

    def __init__(self, cluster: LocalCluster, replicas: tuple[str, ...] = REPLICAS) -> None:
        self.cluster = cluster
        self.replicas = tuple(r for r in replicas if r in cluster.node_ids)
        self.outputs: dict[int, Output] = {}
        self.copies = 0
        self.acked = 0
        self.sent: list[ConsoleIn] = []
        self.live: str | None = None
        self.failovers = 0
        self._client: Client | None = None
        self._first_missing = 0
        self._exit: Output | None = None
        self._acked_output = 0

    # -- input ------------------------------------------------------------------------------------------------
    def feed(self, data: bytes, *, eof: bool = False) -> None:
        """Queue console input (in chunks of at most INPUT_CHUNK_BYTES_MAX); sent by :meth:`pump`."""
        for i in range(0, len(data), INPUT_CHUNK_BYTES_MAX):
            self.sent.append(ConsoleIn(input_seq=len(self.sent) + 1, data=data[i:i + INPUT_CHUNK_BYTES_MAX]))
        if eof:
            self.sent.append(ConsoleIn(input_seq=len(self.sent) + 1, data=b"", eof=True))

    def feed_packets(self, packets: list[bytes], *, end: bool = False) -> None:
        """Queue packets for the machine's network device (each at most
        NET_PACKET_BYTES_MAX); ``end``: then an empty packet (synod's network
        programs stop at one)."""
        for data in [*packets, b""] if end else packets:
            self.sent.append(ConsoleIn(input_seq=len(self.sent) + 1, data=data, net=True))

    def packets(self) -> list[bytes]:
        """The packets the program sent, in index order."""
        return [o.data for _, o in sorted(self.outputs.items()) if o.kind == "net"]

    # -- the exchange -----------------------------------------------------------------------------------------
    @property
    def exit_code(self) -> int | None:
        """The program's exit code, once its exit and every output before it arrived."""
        if self._exit is None or self._contiguous() <= self._exit.index:
            return None
        return self._exit.fd

    def text(self, fd: int | None = None) -> bytes:
        """The console bytes in index order (of ``fd`` only, if given)."""
        return b"".join(o.data for _, o in sorted(self.outputs.items())
                        if o.kind == "console" and (fd is None or o.fd == fd))

    def run(self, timeout_s: float, on_output: Callable[[Output], None] | None = None) -> int | None:
        """Exchange input and output until the program's exit arrived (its
        code) or ``timeout_s`` passed (None)."""
        deadline = time.monotonic() + timeout_s
        next_send = 0.0
        while self.exit_code is None and time.monotonic() < deadline:
            client = self._connected()
            if client is None:
                time.sleep(0.05)
                continue
            now = time.monotonic()
            try:
                if now >= next_send:   # input not yet acknowledged, and what output arrived (TCP's acks)
                    for msg in self.sent[self.acked:self.acked + 64]:
                        client.send(msg)
                    client.send(OutputAck(index=self._contiguous()))
                    next_send = now + RESEND_INTERVAL_S
                got = client.recv(timeout_s=0.05)
            except (ConnectionError, OSError):
                self._drop()
                continue
            if got is not None:
                self._take(got[1], on_output)
        return self.exit_code

    def close(self) -> None:
        self._drop()

    def _take(self, msg: Any, on_output: Callable[[Output], None] | None) -> None:
        if isinstance(msg, Output):
            if msg.index in self.outputs:
                self.copies += 1
                return
            self.outputs[msg.index] = msg
            if msg.kind == "exit":
                self._exit = msg
            if msg.index >= self._acked_output + ACK_EVERY_OUTPUTS and self._client is not None:
                self._acked_output = self._contiguous()   # (as TCP acknowledges every few segments)
                try:
                    self._client.send(OutputAck(index=self._acked_output))
                except OSError:
                    self._drop()
            if on_output is not None:
                on_output(msg)
        elif isinstance(msg, InputAck):
            self.acked = max(self.acked, min(msg.input_seq, len(self.sent)))
        elif isinstance(msg, NotPrimary):
            self._drop()   # (it stopped being live: find the one that is)

    def _connected(self) -> Client | None:
        if self._client is not None:
            return self._client
        for nid in self.replicas:
            if not self.cluster.is_alive(nid):
                continue
            try:
                client = self.cluster.client(nid)
                reply = client.call(WhoIsPrimary(), FIND_TIMEOUT_S)
            except (ConnectionError, OSError):
                continue
            if isinstance(reply, NotPrimary) and reply.holder == nid:
                if self.live is not None and self.live != nid:
                    self.failovers += 1
                self.live, self._client = nid, client
                client.send(Attach(from_index=self._contiguous()))
                return client
            client.close()
        return None

    def _contiguous(self) -> int:
        """The first output index not yet received."""
        first = self._first_missing
        while first in self.outputs:
            first += 1
        self._first_missing = first
        return first

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
