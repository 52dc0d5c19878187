"""A fault-tolerant machine: one replica of a primary/backup pair (Scales,
Nelson, Venkitachalam, "The Design of a Practical System for
Fault-Tolerant Virtual Machines", SIGOPS OSR 2010, section 2), and the
shared storage's test-and-set (:class:`StorageNode`).

Roles (``FtNode.role``; changed only in ``_become``)::

    starting --(storage: nobody yet, I am first)--> claiming --won--> alone
    starting --(storage: X is primary)-----------> joining --Snapshot--> backup
    alone    --(JoinRequest, Snapshot sent)------> primary
    primary  --(no LogAck for failure_timeout)---> claiming --won--> alone
    backup   --(no Log for failure_timeout)------> claiming --won--> alone (after replaying its log)
    claiming --lost------------------------------> halted (the other side went live: the process
                                                   exits with HALTED_EXIT_CODE; restarted, it joins as backup)

Deterministic replay (2.1): the *primary* runs the machine in slices of
``slice_instructions``; every input from outside (console input from the
client, a timer interrupt every ``timer_interval_ms``, the completion of a
block read ``disk_latency_ms`` after the program asked for it) is delivered
between two slices and logged with the retired-instruction count at which
it was delivered (:mod:`synod.ft._log`). The *backup* executes the same
program from the same state (the snapshot it joined with) and delivers
each logged input at exactly its count, never running past what the log
covers. A sample of the primary's state hashes rides on the log; the
backup compares its own at the same count (trace ``ft_state_mismatch``).

Output rule (2.2): an output (console bytes, a network packet, the exit)
leaves the primary only when the backup has acknowledged the log through
the instruction that produced it; a console input is acknowledged to the
client the same way. Execution continues meanwhile: only the output waits.

Going live (2.3): each side watches the other (the log's traffic and
heartbeats every ``heartbeat_interval_ms``); after ``failure_timeout_ms``
of silence it asks the shared storage for an atomic test-and-set of the
pair's generation. Only the first claimant wins; it goes live alone in the
next generation. The loser halts itself: there are never two live
primaries. A backup that wins first executes everything it has logged,
then sends again the outputs the primary may not have released (those
after the last release the log told it of: a duplicate is possible only
there, as the paper argues TCP absorbs), and issues again a block read
that was in flight.

Restoring redundancy (2.3): a replica that starts asks the storage who is
primary and asks that one to take it as backup; the primary sends a
snapshot of the running machine (FT VMotion's role) and the log from
there on. Execution lag (3.4): while the backup has executed more than
``lag_instructions_max`` fewer instructions than the primary, the primary
does not run (slowed, counted in ``slowed_slices``).

Simplified against the paper: the machine is an emulated RV32IM
(:mod:`synod.ft.machine`), not a VM on a hypervisor; the disk image is
each replica's own copy (kept identical by replay; the paper's is shared
storage, with the backup's writes dropped); a replica's state lives in
memory only, as a VM's does: a crashed replica comes back as a new backup.
"""

from __future__ import annotations

from typing import Any

from synod.core import Context, Node, Params
from synod.core.codec import encoded_size_bytes
from synod.core.errors import LocalProtocolError, RemoteProtocolError
from synod.core.records import pack_record, scan_records
from synod.ft._log import HELD_OUTPUTS_MAX, LogReader, LogWriter
from synod.ft.constants import NET_PACKET_BYTES_MAX
from synod.ft.machine import (
    BlockWrite,
    ConsoleInput,
    ConsoleOutput,
    Machine,
    MachineError,
    NetworkOutput,
    NetworkPacket,
    OutputEvent,
    TimerInterrupt,
)
from synod.ft.messages import (
    Attach,
    ConsoleIn,
    GetStatus,
    InputAck,
    JoinRequest,
    Log,
    LogAck,
    LogEntry,
    NotPrimary,
    Output,
    OutputAck,
    PrimaryIs,
    Snapshot,
    Status,
    TasResult,
    TestAndSet,
    WhoIsPrimary,
)

__all__ = ["FtConfig", "FtNode", "StorageNode", "UNSAFE_OPTIONS", "OUTPUT_HISTORY_MAX", "HALTED_EXIT_CODE"]

UNSAFE_OPTIONS = ("release-output-early", "skip-test-and-set")
OUTPUT_HISTORY_MAX = 4096         # released outputs the client has not acknowledged; then the primary waits
PENDING_INPUTS_MAX = 256          # console inputs received ahead of delivery (a window of input_seq)
LISTENERS_MAX = 64                # attached console clients (the oldest gives way to a new one)
STATE_HASH_EVERY_LOGS = 4         # a state hash rides on a Log at most this often (in Log messages)
STORAGE_FILE = "tas"
SLOWED_SLICE_INTERVAL_MS = 1.0   # a primary that may not run looks again this much later
HALTED_EXIT_CODE = 75             # a replica that lost the test-and-set halts: its process exits with this


class FtConfig(Params):
    """A replica's settings (times in ms of its clock).

    Raises:
        ValueError: a value out of range (a ConfigError from a config).
    """

    peer: str = ""                          # the other replica of the pair
    storage: str = "storage"                # the shared storage's node id (its test-and-set)
    first: bool = False                     # this replica starts the program when nobody has
    console_client: str = ""                # a client node to send outputs to unasked (the simulator's)
    slice_instructions: int = 20_000        # instructions per slice of execution
    slice_interval_ms: float = 1.0          # time between slices (the simulator's model of speed)
    heartbeat_interval_ms: float = 20.0
    failure_timeout_ms: float = 300.0
    lag_instructions_max: int = 2_000_000   # the backup's execution lag beyond which the primary waits
                                            # (about 80 ms of this machine's execution: the paper keeps
                                            # its lag "typically less than 100 milliseconds")
    timer_interval_ms: float = 0.0          # a timer interrupt this often (0: none)
    disk_latency_ms: float = 2.0            # a block read completes this long after its request
    unsafe: str = ""                        # one of UNSAFE_OPTIONS, to show the checkers catch it
    program: str = "echo"                   # what runs: a program of synod.ft.programs, or an ELF file's path
                                            # (read by the factory, synod.ft.factories)
    start_with_backup: bool = False         # the first replica starts the program only once a backup has
                                            # acknowledged its snapshot (a primary lost before then loses the VM)
                                            # (a VM started fault tolerant; the benchmark's FT runs)
    crash_at_instret: int = 0               # a test's fault: the process dies (exit 137, as SIGKILL's) once
                                            # this replica, live, has retired this many instructions (0: never)

    def __post_init__(self) -> None:
        if self.slice_instructions < 1 or self.lag_instructions_max < self.slice_instructions:
            raise ValueError("slice_instructions: at least 1, and at most lag_instructions_max")
        if min(self.heartbeat_interval_ms, self.failure_timeout_ms) <= 0 or self.slice_interval_ms < 0:
            raise ValueError("heartbeat_interval_ms and failure_timeout_ms must be positive")
        if self.failure_timeout_ms <= 2 * self.heartbeat_interval_ms:
            raise ValueError("failure_timeout_ms must exceed two heartbeat intervals")
        if min(self.timer_interval_ms, self.disk_latency_ms) < 0:
            raise ValueError("timer_interval_ms and disk_latency_ms: at least 0")
        if self.unsafe and self.unsafe not in UNSAFE_OPTIONS:
            raise ValueError(f"unsafe: one of {', '.join(UNSAFE_OPTIONS)}")
        if self.crash_at_instret < 0:
            raise ValueError("crash_at_instret: at least 0")


class FtNode(Node):
    """One replica. ``image`` is the program's ELF file, ``disk`` its disk image."""

    def __init__(self, config: FtConfig, image: bytes, disk: bytes = b"") -> None:
        self.config = config
        self.image = image
        self.initial_disk = disk
        self._reset()

    def _reset(self) -> None:
        self.role = "starting"
        self.generation = -1
        self.machine: Machine | None = None
        self.writer: LogWriter | None = None      # primary: the log to the backup
        self.reader: LogReader | None = None      # backup: the log from the primary
        self.outputs = 0                          # outputs the machine has produced (their next index)
        self.released = 0                         # outputs released to the world
        self.history: list[Output] = []           # released and not yet received by the client (live), or
                                                  # produced and maybe not received (backup): sent again on Attach
        self.client_acked = 0                     # the client has every output below this index
        self.listeners: dict[str, int] = {}       # attached client -> the next index it gets
        self.pending_inputs: dict[int, ConsoleIn] = {}
        self.last_input_seq = 0                   # console inputs delivered (logged)
        self.input_acked = 0                      # acknowledged to the client
        self.last_heard_ms = 0.0
        self.last_log_sent_ms = 0.0
        self.next_timer_ms = 0.0
        self.block_due_ms: float | None = None
        self.exit_announced = False
        self.logs_sent = 0
        self.log_bytes = 0                        # their size, encoded
        self.hashed_at_log = 0                    # logs_sent when a state hash last rode on a log
        self.slowed_slices = 0
        self.claimed_at: float | None = None
        self.claiming_from = ""                   # the role a claim was made from
        self.primary = ""                         # backup: the primary it follows
        self.input_client = ""                    # the client console input last came from
        self.alone_held: list[Output] = []        # alone: outputs of this slice, released at its end
        self.state_checks = 0                     # backup: state hashes compared with the primary's ...
        self.state_mismatches = 0                 # ... and how many differed
        self.awaiting_backup = False              # start_with_backup: live, the program not started yet
        self.run_started_ms: float | None = None  # when the program's first slice ran (this replica's clock)
        self.exit_released_ms: float | None = None   # when its exit left for the world

    # -- start and roles -------------------------------------------------------------------------------
    def on_start(self, ctx: Context) -> None:
        self._reset()
        ctx.send(self.config.storage, WhoIsPrimary())
        ctx.set_timer("tick", self.config.heartbeat_interval_ms)

    def _become(self, ctx: Context, role: str) -> None:
        ctx.trace("ft_role", role=role, generation=self.generation, was=self.role)
        self.role = role

    @property
    def live(self) -> bool:
        """Releasing output to the world (alone, or primary of a pair)."""
        return self.role in ("alone", "primary")

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        handler = self._HANDLERS.get(type(msg))
        if handler is None:
            ctx.trace("ignore_message", src=src, type=type(msg).__name__, reason="not an ft message")
            return
        handler(self, ctx, src, msg)

    def _on_primary_is(self, ctx: Context, src: str, msg: PrimaryIs) -> None:
        if self.role != "starting":
            return
        if msg.generation < 0:
            if self.config.first:
                self._claim(ctx, -1)
            return   # (the other replica starts the program; ask again at the next tick)
        if msg.holder == ctx.node_id:
            return   # I was live and lost my machine with my memory: the VM is gone unless my backup goes live
        self.generation = msg.generation
        self._become(ctx, "joining")
        self.last_heard_ms = ctx.now_ms
        ctx.send(msg.holder, JoinRequest(generation=msg.generation))

    def _claim(self, ctx: Context, generation: int) -> None:
        """Ask the shared storage for its test-and-set of ``generation`` (2.3)."""
        self.claimed_at = ctx.now_ms
        self.claiming_from = self.role
        self._become(ctx, "claiming")
        if self.config.unsafe == "skip-test-and-set" and generation >= 0:
            self._on_tas_result(ctx, self.config.storage, TasResult(won=True, generation=generation + 1,
                                                                    holder=ctx.node_id))
            return
        ctx.send(self.config.storage, TestAndSet(generation=generation))

    def _on_tas_result(self, ctx: Context, src: str, msg: TasResult) -> None:
        if self.role != "claiming":
            return
        was = self.claiming_from
        if not msg.won:
            ctx.trace("ft_halt", generation=msg.generation, holder=msg.holder)
            self.generation = msg.generation
            if was == "starting":
                self._become(ctx, "starting")
                return
            self.machine = None
            self._become(ctx, "halted")
            ctx.exit(HALTED_EXIT_CODE)   # (a supervisor starts it again: a new backup, 2.3)
            return
        self.generation = msg.generation
        if was == "starting":
            self.machine = Machine.from_elf(self.image, disk=self.initial_disk)
        elif was == "backup":
            try:
                self._replay_all(ctx)
            except (RemoteProtocolError, LocalProtocolError) as e:
                self._diverged(ctx, e)   # (the pair's machine is lost with it: better than a wrong one live)
                return
        self._go_live(ctx, was)

    def _go_live(self, ctx: Context, was: str) -> None:
        assert self.machine is not None
        resend_from = self.released
        if was == "backup":
            assert self.reader is not None
            resend_from = self.reader.released_outputs
            self.last_input_seq = self.reader.last_input_seq
            self.client_acked = self.reader.client_acked
        if was == "primary":
            assert self.writer is not None
            held = self.writer.releasable(release_all=True)
            self._release(ctx, held, alone=True)
            self._ack_inputs(ctx, self.writer.ackable_inputs(release_all=True))
        self.writer = None
        self.reader = None
        self._become(ctx, "alone")
        ctx.trace("ft_live", generation=self.generation, instret=self.machine.instret, was=was)
        if was == "backup":   # what the primary may not have sent: again (the one point of duplicates)
            for out in self.history:
                if out.index >= resend_from:
                    self._emit(ctx, out, alone=True)
            self.released = self.outputs
            self.input_acked = 0
            self._ack_inputs(ctx, self.last_input_seq)
            if self.machine.pending_block_request is not None:   # I/O outstanding at failover: issue again (3.5)
                self.block_due_ms = ctx.now_ms + self.config.disk_latency_ms
        # (start_with_backup: the program starts once a backup has loaded its snapshot)
        self.awaiting_backup = was == "starting" and self.config.start_with_backup
        if not self.awaiting_backup:
            self._schedule_slice(ctx)

    # -- the pair: joining, snapshot, log --------------------------------------------------------------
    def _on_join_request(self, ctx: Context, src: str, msg: JoinRequest) -> None:
        if not self.live or src != self.config.peer or msg.generation != self.generation:
            ctx.trace("ignore_message", src=src, type="JoinRequest", reason=f"role {self.role}, gen {self.generation}")
            return
        assert self.machine is not None
        # (a backup that asks again has restarted: what it had acknowledged went with it, so
        # outputs still held stay held, handed to the new log and to the snapshot)
        old = self.writer
        held = list(zip(old.held, old.held_instret, strict=True)) if old is not None else []
        start = old.next_seq if old is not None else 1
        inputs = [(input_seq, start - 1) for input_seq, _ in old.input_acks] if old is not None else []
        self.writer = LogWriter(self.generation, next_seq=start)
        for out, instret in held:
            self.writer.hold(out, instret)
        self.writer.input_acks.extend(inputs)   # (in the snapshot: acknowledged with it)
        ctx.send(src, Snapshot(generation=self.generation, machine=self.machine.snapshot(), disk=self.machine.disk,
                               last_seq=start - 1, outputs=self.outputs, released_outputs=self.released,
                               client_acked=self.client_acked, unacked=tuple(self.history),
                               last_input_seq=self.last_input_seq, held=tuple(out for out, _ in held)))
        self.last_heard_ms = ctx.now_ms
        self._become(ctx, "primary")

    def _on_snapshot(self, ctx: Context, src: str, msg: Snapshot) -> None:
        if self.role != "joining" or msg.generation != self.generation:
            return
        try:
            self.machine = Machine.from_snapshot(msg.machine, disk=msg.disk)
        except (MachineError, LocalProtocolError, ValueError) as e:   # (the primary's word, but checked)
            ctx.trace("ignore_message", src=src, type="Snapshot", reason=f"not a machine this one can load: {e}")
            return
        self.reader = LogReader(msg.generation, received_seq=msg.last_seq, received_instret=self.machine.instret)
        self.reader.released_outputs = msg.released_outputs
        self.reader.last_input_seq = msg.last_input_seq
        self.outputs, self.released, self.last_input_seq = msg.outputs, msg.released_outputs, msg.last_input_seq
        self.history = list(msg.unacked) + list(msg.held)
        self.client_acked = msg.client_acked
        self.reader.client_acked = msg.client_acked
        self.exit_announced = self.machine.exit_code is not None
        self.primary = src
        self.last_heard_ms = ctx.now_ms
        self._become(ctx, "backup")
        self._send_ack(ctx)
        self._schedule_slice(ctx)

    def _on_log(self, ctx: Context, src: str, msg: Log) -> None:
        if self.role != "backup" or msg.generation != self.generation or src != self.primary:
            return
        assert self.reader is not None
        if msg.pairing != self.reader.pairing:
            return   # (a late log to this replica's earlier incarnation)
        try:
            self.reader.receive(msg)
        except RemoteProtocolError as e:
            ctx.trace("ignore_message", src=src, type="Log", reason=str(e))
            return
        self.last_heard_ms = ctx.now_ms
        self._send_ack(ctx)

    def _send_ack(self, ctx: Context) -> None:
        assert self.reader is not None and self.machine is not None
        ctx.send(self.primary, LogAck(generation=self.generation, pairing=self.reader.pairing,
                                      received_seq=self.reader.received_seq,
                                      received_instret=self.reader.received_instret,
                                      executed_instret=self.machine.instret))

    def _on_log_ack(self, ctx: Context, src: str, msg: LogAck) -> None:
        if self.role != "primary" or msg.generation != self.generation or src != self.config.peer:
            return
        assert self.writer is not None
        if msg.pairing != self.writer.pairing:
            return   # (from the backup's earlier incarnation)
        try:
            self.writer.acknowledge(msg.received_seq, msg.received_instret, msg.executed_instret)
        except RemoteProtocolError as e:
            ctx.trace("ignore_message", src=src, type="LogAck", reason=str(e))
            return
        self.last_heard_ms = ctx.now_ms
        if self.awaiting_backup:   # the backup has loaded the snapshot: fault tolerant from the first instruction
            self.awaiting_backup = False
            self._schedule_slice(ctx)
        self._release(ctx, self.writer.releasable(release_all=self.config.unsafe == "release-output-early"),
                      alone=False)
        self._ack_inputs(ctx, self.writer.ackable_inputs(release_all=self.config.unsafe == "release-output-early"))

    # -- the outside world ------------------------------------------------------------------------------
    def _on_console_in(self, ctx: Context, src: str, msg: ConsoleIn) -> None:
        if msg.net and len(msg.data) > NET_PACKET_BYTES_MAX:
            ctx.trace("ignore_message", src=src, type="ConsoleIn", reason="a packet over NET_PACKET_BYTES_MAX")
            return
        if not self.live:
            ctx.send(src, NotPrimary(holder=""))
            return
        if msg.input_seq <= self.last_input_seq:
            if msg.input_seq <= self.input_acked:
                ctx.send(src, InputAck(input_seq=self.input_acked))
            return
        if msg.input_seq <= self.last_input_seq + PENDING_INPUTS_MAX:   # (a window: no far-future seq holds a place)
            self.pending_inputs[msg.input_seq] = msg
        self.input_client = src

    def _on_attach(self, ctx: Context, src: str, msg: Attach) -> None:
        if not self.live:
            ctx.send(src, NotPrimary(holder=""))
            return
        self.listeners.pop(src, None)
        if len(self.listeners) >= LISTENERS_MAX:   # (the one attached longest ago makes room: clients reconnect
            del self.listeners[next(iter(self.listeners))]   # under new ids, and nothing says when one left)
        self.listeners[src] = msg.from_index
        self._client_acked(msg.from_index)
        for out in self.history:
            if out.index >= msg.from_index and out.index < self.released:
                ctx.send(src, out)
        self.listeners[src] = max(msg.from_index, self.released)

    def _on_output_ack(self, ctx: Context, src: str, msg: OutputAck) -> None:
        if self.live:
            self._client_acked(msg.index)

    def _client_acked(self, index: int) -> None:
        """The client has every output below ``index``: forget them (an
        index beyond what was released is not believed)."""
        if index > self.client_acked:
            self.client_acked = min(index, self.released)
            keep = 0
            while keep < len(self.history) and self.history[keep].index < self.client_acked:
                keep += 1
            del self.history[:keep]

    def _release(self, ctx: Context, outputs: list[Output], *, alone: bool) -> None:
        """Send ``outputs`` to the world: ``alone`` (live with no backup)
        or under the output rule (the backup has the log through them)."""
        for out in outputs:
            self.released = max(self.released, out.index + 1)
            self._emit(ctx, out, alone=alone)
            if out.kind == "exit" and self.exit_released_ms is None:
                self.exit_released_ms = ctx.now_ms
        if self.live:   # (kept until the client has them: bounded, as the slices stop at OUTPUT_HISTORY_MAX)
            self.history.extend(o for o in outputs if o.index >= self.client_acked
                                and (not self.history or o.index > self.history[-1].index))

    def _emit(self, ctx: Context, out: Output, *, alone: bool) -> None:
        ctx.trace("ft_output", index=out.index, kind=out.kind, bytes=len(out.data), generation=self.generation,
                  alone=alone)
        targets = set(self.listeners)
        if self.config.console_client:
            targets.add(self.config.console_client)
        for client in sorted(targets):
            ctx.send(client, out)

    def _ack_inputs(self, ctx: Context, input_seq: int) -> None:
        if input_seq > self.input_acked:
            self.input_acked = input_seq
            client = self.input_client or self.config.console_client
            if client:
                ctx.send(client, InputAck(input_seq=input_seq))

    def _on_who_is_primary(self, ctx: Context, src: str, msg: WhoIsPrimary) -> None:
        """Whether this replica is live: NotPrimary naming itself if so (a client's question)."""
        ctx.reply(NotPrimary(holder=ctx.node_id if self.live else ""))

    def _on_get_status(self, ctx: Context, src: str, msg: GetStatus) -> None:
        m = self.machine
        run_ms = -1.0
        if self.run_started_ms is not None and self.exit_released_ms is not None:
            run_ms = self.exit_released_ms - self.run_started_ms
        lag = 0
        if self.writer is not None and m is not None:
            lag = m.instret - self.writer.backup_executed
        ctx.reply(Status(role=self.role, generation=self.generation, instret=m.instret if m else 0,
                         outputs=self.outputs, released_outputs=self.released, lag_instructions=lag,
                         exited=bool(m and m.exit_code is not None), exit_code=m.exit_code if m else None,
                         state_hash=m.state_hash() if m else b"", log_bytes=self.log_bytes,
                         slowed_slices=self.slowed_slices, run_ms=run_ms))

    # -- time -------------------------------------------------------------------------------------------
    def on_timer(self, ctx: Context, name: Any) -> None:
        if name == "tick":
            self._tick(ctx)
            ctx.set_timer("tick", self.config.heartbeat_interval_ms)
        elif name == "slice":
            self._slice(ctx)

    def _tick(self, ctx: Context) -> None:
        """Heartbeats and failure detection (2.3)."""
        silent = ctx.now_ms - self.last_heard_ms > self.config.failure_timeout_ms
        if self.role == "starting":
            ctx.send(self.config.storage, WhoIsPrimary())
        elif self.role == "joining" and silent:
            self._become(ctx, "starting")
        elif self.role == "claiming" and self.claimed_at is not None \
                and ctx.now_ms - self.claimed_at > self.config.failure_timeout_ms:
            self.claimed_at = ctx.now_ms   # the storage did not answer: ask again (the claim stands)
            ctx.send(self.config.storage, TestAndSet(generation=self.generation))
        elif self.role == "backup":
            assert self.reader is not None
            if silent:
                self._claim(ctx, self.generation)
            else:
                self._send_ack(ctx)
        elif self.role == "primary":
            if silent:
                self._claim(ctx, self.generation)
            elif ctx.now_ms - self.last_log_sent_ms >= self.config.heartbeat_interval_ms:
                self._send_log(ctx)

    def _schedule_slice(self, ctx: Context) -> None:
        ctx.set_timer("slice", self.config.slice_interval_ms)

    def _slice(self, ctx: Context) -> None:
        if self.role in ("alone", "primary"):
            slowed = self.slowed_slices
            self._run_primary(ctx)
            if self.slowed_slices > slowed:   # (waiting for the backup or the client: leave them the CPU)
                ctx.set_timer("slice", max(self.config.slice_interval_ms, SLOWED_SLICE_INTERVAL_MS))
            else:
                self._schedule_slice(ctx)
        elif self.role == "backup":
            self._run_backup(ctx)
            self._schedule_slice(ctx)

    def _run_primary(self, ctx: Context) -> None:
        m = self.machine
        assert m is not None
        self._deliver_inputs(ctx, m)
        writer = self.writer
        lagging = writer is not None and m.instret - writer.backup_executed > self.config.lag_instructions_max
        held_full = writer is not None and len(writer.held) >= HELD_OUTPUTS_MAX
        unread = self.released - self.client_acked >= OUTPUT_HISTORY_MAX   # (the client's window is full)
        if lagging or held_full or unread:
            self.slowed_slices += 1
        elif m.exit_code is None and m.fault is None:
            if self.run_started_ms is None:
                self.run_started_ms = ctx.now_ms
            budget = self.config.slice_instructions
            crash_at = self.config.crash_at_instret
            if crash_at and m.instret < crash_at:
                budget = min(budget, crash_at - m.instret)
            m.run(budget)
            if crash_at and m.instret >= crash_at:
                ctx.trace("ft_crash_at_instret", instret=m.instret)
                ctx.exit(137)
        self._collect_outputs(ctx, m)
        if m.pending_block_request is not None and self.block_due_ms is None:
            self.block_due_ms = ctx.now_ms + self.config.disk_latency_ms
        if writer is None:
            outputs, self.alone_held = self.alone_held, []
            self._release(ctx, outputs, alone=True)
            self._ack_inputs(ctx, self.last_input_seq)
            return
        self._send_log(ctx)
        if self.config.unsafe == "release-output-early":   # (the output rule broken on purpose)
            self._release(ctx, writer.releasable(release_all=True), alone=False)
            self._ack_inputs(ctx, writer.ackable_inputs(release_all=True))

    def _deliver_inputs(self, ctx: Context, m: Machine) -> None:
        """Console input, the timer, a block read's completion: now, logged (2.1)."""
        if self.writer is not None and not self.writer.room:
            return
        nxt = self.pending_inputs.pop(self.last_input_seq + 1, None)
        while nxt is not None:
            event = NetworkPacket(data=nxt.data) if nxt.net else ConsoleInput(data=nxt.data, eof=nxt.eof)
            self._deliver(m, event, input_seq=nxt.input_seq)
            self.last_input_seq = nxt.input_seq
            nxt = self.pending_inputs.pop(self.last_input_seq + 1, None)
        if self.config.timer_interval_ms and ctx.now_ms >= self.next_timer_ms:
            self.next_timer_ms = ctx.now_ms + self.config.timer_interval_ms
            self._deliver(m, TimerInterrupt())
        if self.block_due_ms is not None and ctx.now_ms >= self.block_due_ms:
            self.block_due_ms = None
            req = m.pending_block_request
            if req is not None:
                event = m.complete_block_read()
                assert event is not None
                self._log(m, event, 0)

    def _deliver(self, m: Machine, event: Any, input_seq: int = 0) -> None:
        m.deliver(event)
        self._log(m, event, input_seq)

    def _log(self, m: Machine, event: Any, input_seq: int) -> None:
        if self.writer is not None:
            seq = self.writer.next_seq
            self.writer.append(LogEntry(seq=seq, instret=m.instret, event=event, input_seq=input_seq))
            if input_seq:
                self.writer.input_acks.append((input_seq, seq))

    def _collect_outputs(self, ctx: Context, m: Machine) -> None:
        """The machine's new outputs, numbered; held by the writer (or by the
        list the next release takes when alone); the exit becomes an output too."""
        for event in m.take_outputs():
            out = _output(self.outputs, event)
            if out is not None:
                self._hold(ctx, out, event.instret)
        if m.exit_code is not None and not self.exit_announced:
            self.exit_announced = True
            self._hold(ctx, Output(index=self.outputs, kind="exit", data=b"", fd=m.exit_code), m.instret)

    def _hold(self, ctx: Context, out: Output, instret: int) -> None:
        """Output ``out``, produced at ``instret``: held for the output rule
        (primary), kept to resend if this backup goes live, or released at
        the end of the slice (alone)."""
        self.outputs = out.index + 1
        if self.writer is not None:
            self.writer.hold(out, instret)
        elif self.reader is not None:
            keep_from = self.reader.client_acked
            if self.history and self.history[0].index < keep_from:
                self.history = [o for o in self.history if o.index >= keep_from]
            self.history.append(out)   # (bounded: the primary runs only while its client keeps up)
        else:
            self.alone_held.append(out)

    def _send_log(self, ctx: Context) -> None:
        assert self.writer is not None and self.machine is not None
        m = self.machine
        log = self.writer.log(m.instret, self.released, self.client_acked, exited=m.exit_code is not None)
        self.logs_sent += 1
        if self.logs_sent - self.hashed_at_log >= STATE_HASH_EVERY_LOGS and log.through_instret == m.instret:
            self.hashed_at_log = self.logs_sent
            log = Log(generation=log.generation, pairing=log.pairing, entries=log.entries,
                      through_instret=log.through_instret,
                      released_outputs=log.released_outputs, client_acked=log.client_acked, exited=log.exited,
                      state_hash=m.state_hash(),
                      waiting=m.waiting)
        ctx.send(self.config.peer, log)
        self.log_bytes += encoded_size_bytes(log)
        self.last_log_sent_ms = ctx.now_ms

    def _run_backup(self, ctx: Context) -> None:
        m, reader = self.machine, self.reader
        assert m is not None and reader is not None
        try:
            reader.replay(m, self.config.slice_instructions)
        except (RemoteProtocolError, LocalProtocolError) as e:
            self._diverged(ctx, e)
            return
        self._note_checks(ctx, reader)
        self._collect_outputs(ctx, m)

    def _diverged(self, ctx: Context, error: Exception) -> None:
        """The log asks what this machine cannot do (it stopped where the log
        goes on, or an input does not fit): this backup's copy is not the
        primary's. It halts, so that it comes back as a new backup from a
        snapshot, rather than go live with a wrong machine one day."""
        ctx.trace("ft_diverged", error=str(error))
        ctx.warn(f"the backup diverged from its primary ({error}); halting to rejoin from a snapshot")
        self.machine = None
        self._become(ctx, "halted")
        ctx.exit(HALTED_EXIT_CODE)

    def _note_checks(self, ctx: Context, reader: LogReader) -> None:
        """Trace the state hashes compared since the last call (the harness checks them)."""
        for instret, equal in reader.compared:
            ctx.trace("ft_state_check", instret=instret, match=equal)
            self.state_checks += 1
            if not equal:
                self.state_mismatches += 1
        reader.compared.clear()

    def _replay_all(self, ctx: Context) -> None:
        """Before going live: execute everything the log brought (2.3)."""
        m, reader = self.machine, self.reader
        assert m is not None and reader is not None
        while True:
            before = (m.instret, len(reader.pending))
            stop = reader.replay(m, self.config.lag_instructions_max)
            self._note_checks(ctx, reader)
            self._collect_outputs(ctx, m)
            if stop is None or (m.instret, len(reader.pending)) == before:
                break

    _HANDLERS: dict[type, Any] = {}


FtNode._HANDLERS = {
    PrimaryIs: FtNode._on_primary_is, TasResult: FtNode._on_tas_result, JoinRequest: FtNode._on_join_request,
    Snapshot: FtNode._on_snapshot, Log: FtNode._on_log, LogAck: FtNode._on_log_ack,
    ConsoleIn: FtNode._on_console_in, Attach: FtNode._on_attach, OutputAck: FtNode._on_output_ack,
    WhoIsPrimary: FtNode._on_who_is_primary,
    GetStatus: FtNode._on_get_status,
}


def _output(index: int, event: OutputEvent) -> Output | None:
    if isinstance(event, ConsoleOutput):
        return Output(index=index, kind="console", data=event.data, fd=event.fd)
    if isinstance(event, NetworkOutput):
        return Output(index=index, kind="net", data=event.data)
    assert isinstance(event, BlockWrite)
    return None   # (a disk write: applied to the replica's own image, not output to the world)


class StorageNode(Node):
    """The shared storage's atomic test-and-set (2.3): the record
    (generation, holder), durable on disk. ``TestAndSet(g)`` from X
    succeeds only while the record's generation is g: it becomes (g + 1, X)."""

    def on_start(self, ctx: Context) -> None:
        self.generation, self.holder = -1, ""
        scan = scan_records(ctx.disk.read(STORAGE_FILE) or b"")
        if scan.records:
            last = scan.records[-1].decode()
            gen, _, holder = last.partition(" ")
            self.generation, self.holder = int(gen), holder

    def on_message(self, ctx: Context, src: str, msg: Any) -> None:
        if isinstance(msg, TestAndSet):
            if msg.generation == self.generation:
                self.generation, self.holder = self.generation + 1, src
                ctx.disk.append(STORAGE_FILE, pack_record(f"{self.generation} {src}".encode()))
                ctx.disk.sync()
                ctx.trace("ft_tas", generation=self.generation, holder=src)
                ctx.reply(TasResult(won=True, generation=self.generation, holder=src))
            else:
                ctx.reply(TasResult(won=False, generation=self.generation, holder=self.holder))
        elif isinstance(msg, WhoIsPrimary):
            ctx.reply(PrimaryIs(generation=self.generation, holder=self.holder))
        else:
            ctx.trace("ignore_message", src=src, type=type(msg).__name__, reason="not a storage request")
