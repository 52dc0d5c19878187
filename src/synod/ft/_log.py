"""The two ends of the logging channel (Scales et al. 2010, sections 2.1-2.2).

:class:`LogWriter` (the primary's end) numbers the log entries, keeps those
the backup has not acknowledged (sent again in every :class:`Log` until it
does: the channel may lose or repeat messages), holds the machine's
outputs until the backup has the log through the instruction that
produced each one (the output rule: the output is held, not the
execution), and holds each console input's acknowledgement the same way,
so a client sends again whatever input a failover lost.

:class:`LogReader` (the backup's end) takes entries strictly in sequence (a
gap waits for the primary to send again), delivers each at exactly its
instruction count, and lets the machine run only up to ``through_instret``
of the last whole log it holds: never ahead of the log.

Invariants: ``LogWriter.acked_seq <= LogWriter.next_seq - 1``; an output at
``instret`` i is released only when ``acked_instret >= i`` (the log through
i holds every input delivered before that instruction), a console input
acknowledged only when ``acked_seq`` reaches its entry (unless the unsafe
option says otherwise); ``LogReader.received_instret`` only grows,
and every entry with an ``instret`` below it has been received.
"""

from __future__ import annotations

from collections import deque

from synod.core.errors import RemoteProtocolError
from synod.ft.machine import Machine, StopReason
from synod.ft.messages import Log, LogEntry, Output

__all__ = ["LogWriter", "LogReader", "UNACKED_ENTRIES_MAX", "HELD_OUTPUTS_MAX"]

UNACKED_ENTRIES_MAX = 1024     # log entries sent and not yet acknowledged; then no new input is delivered
HELD_OUTPUTS_MAX = 8192        # outputs held for the backup's acknowledgement; then the machine is not run
ENTRIES_PER_LOG_MAX = 256      # entries in one Log message


class LogWriter:
    """The primary's end, for one generation's backup."""

    def __init__(self, generation: int, next_seq: int) -> None:
        self.generation = generation
        self.pairing = next_seq - 1       # the snapshot's place in the log: this backup's joining
        self.next_seq = next_seq          # the seq of the next entry
        self.acked_seq = next_seq - 2     # the backup holds every entry up to here (next_seq - 1: the
                                          # snapshot it joined with, once it acknowledges that)
        self.acked_instret = -1           # ... and the log through this count (-1: nothing acknowledged)
        self.backup_executed = 0          # how far the backup has executed (the lag, section 3.4)
        self.unacked: deque[LogEntry] = deque()
        self.held: deque[Output] = deque()                 # outputs waiting for the output rule
        self.held_instret: deque[int] = deque()            # ... the count that produced each
        self.input_acks: deque[tuple[int, int]] = deque()  # (input_seq, its entry's seq) waiting for that entry

    def append(self, entry: LogEntry) -> None:
        assert entry.seq == self.next_seq
        self.unacked.append(entry)
        self.next_seq += 1

    @property
    def room(self) -> bool:
        """Whether a new input may be delivered (unacknowledged entries under their limit)."""
        return len(self.unacked) < UNACKED_ENTRIES_MAX

    def hold(self, output: Output, instret: int) -> None:
        self.held.append(output)
        self.held_instret.append(instret)

    def log(self, through_instret: int, released_outputs: int, client_acked: int, exited: bool) -> Log:
        """The next message: every unacknowledged entry (up to a batch), through ``through_instret``."""
        entries = tuple(self.unacked)[:ENTRIES_PER_LOG_MAX]
        through = through_instret if len(entries) == len(self.unacked) else entries[-1].instret
        return Log(generation=self.generation, pairing=self.pairing, entries=entries, through_instret=through,
                   released_outputs=released_outputs, client_acked=client_acked,
                   exited=exited and len(entries) == len(self.unacked))

    def acknowledge(self, received_seq: int, received_instret: int, executed_instret: int) -> None:
        """The backup's LogAck. Raises RemoteProtocolError: it claims entries never sent."""
        if received_seq >= self.next_seq:
            raise RemoteProtocolError(f"ack of entry {received_seq}, only {self.next_seq - 1} sent")
        while self.unacked and self.unacked[0].seq <= received_seq:
            self.unacked.popleft()
        self.acked_seq = max(self.acked_seq, received_seq)
        self.acked_instret = max(self.acked_instret, received_instret)
        self.backup_executed = max(self.backup_executed, executed_instret)

    def releasable(self, release_all: bool = False) -> list[Output]:
        """Held outputs the output rule now lets out (all with ``release_all``), oldest first."""
        out = []
        while self.held and (release_all or self.held_instret[0] <= self.acked_instret):
            out.append(self.held.popleft())
            self.held_instret.popleft()
        return out

    def ackable_inputs(self, release_all: bool = False) -> int:
        """The highest console input whose entry the backup now holds (0:
        none new). By entry, not by count: two inputs delivered at one count
        may travel in two messages, the first already acknowledged."""
        last = 0
        while self.input_acks and (release_all or self.input_acks[0][1] <= self.acked_seq):
            last = self.input_acks.popleft()[0]
        return last


class _Check:
    """The primary's state hash after the log entries before it, at
    ``instret``; ``waiting``: its program was blocked there, waiting for input."""

    __slots__ = ("instret", "state_hash", "waiting")

    def __init__(self, instret: int, state_hash: bytes, waiting: bool) -> None:
        self.instret = instret
        self.state_hash = state_hash
        self.waiting = waiting


class LogReader:
    """The backup's end: the log received, delivered into ``machine`` in order."""

    def __init__(self, generation: int, received_seq: int, received_instret: int) -> None:
        self.generation = generation
        self.pairing = received_seq       # the snapshot's place in the log
        self.received_seq = received_seq
        self.received_instret = received_instret
        self.pending: deque[LogEntry | _Check] = deque()   # received, not yet delivered (or compared)
        self.released_outputs = 0                 # what the primary said it had released
        self.last_input_seq = 0                   # the last console input the log brought
        self.client_acked = 0                     # the client has every output below this index
        self.exited = False                       # the primary's machine has exited (through received_instret)
        self.compared: list[tuple[int, bool]] = []   # (count, equal) of state hashes compared, until taken

    def receive(self, log: Log) -> None:
        """Take the entries that follow in sequence; advance through the
        log's end (and take its state hash) only when every one of its
        entries followed. Repeats are dropped. Raises RemoteProtocolError:
        entries out of order inside one message, or past the log's end."""
        expected = self.received_seq + 1
        complete = True
        last_instret = self.received_instret
        for entry in log.entries:
            if entry.seq < expected:
                continue
            if entry.seq > expected:
                complete = False      # (an earlier message was lost: the primary sends the gap again)
                break
            if entry.instret < last_instret or entry.instret > log.through_instret:
                raise RemoteProtocolError(f"log entry {entry.seq} at {entry.instret} out of order")
            self.pending.append(entry)
            self.received_seq = expected
            if entry.input_seq:
                self.last_input_seq = entry.input_seq
            last_instret = entry.instret
            expected += 1
        if not complete:
            return
        if log.through_instret > self.received_instret:
            self.received_instret = log.through_instret
            if log.state_hash:
                self.pending.append(_Check(log.through_instret, log.state_hash, log.waiting))
        if log.exited:
            self.exited = True
        self.released_outputs = max(self.released_outputs, log.released_outputs)
        self.client_acked = max(self.client_acked, log.client_acked)

    def replay(self, machine: Machine, budget: int) -> StopReason | None:
        """Run ``machine`` at most ``budget`` instructions along the log:
        each entry delivered at its count (each state hash compared there),
        never past ``received_instret``. Returns the machine's last stop
        reason (None: it did not run). Raises RemoteProtocolError: the
        machine stopped where the log says it went on (it diverged)."""
        stop = None
        limit = machine.instret + budget
        pending = self.pending
        while True:
            if pending and pending[0].instret <= machine.instret:
                item = pending.popleft()
                if item.instret != machine.instret:
                    raise RemoteProtocolError(f"the log's next item is at {item.instret}, the machine at "
                                              f"{machine.instret}: the backup diverged")
                if isinstance(item, _Check):
                    if item.waiting and not machine.waiting:
                        # (the primary tried the instruction here and blocked; so must we, to compare:
                        # with no input delivered it blocks again and retires nothing)
                        if machine.run(1) is not StopReason.WAITING:
                            raise RemoteProtocolError(f"the primary waited for input at {item.instret}, "
                                                      "the backup does not: it diverged")
                    self.compared.append((item.instret, machine.state_hash() == item.state_hash))
                else:
                    machine.deliver(item.event)
                continue
            target = min(pending[0].instret if pending else self.received_instret, limit)
            if target <= machine.instret:
                return stop
            stop = machine.run_to(target)
            if stop is StopReason.BUDGET:
                continue
            if stop is StopReason.WAITING and pending and pending[0].instret == machine.instret:
                continue   # (the program waits for exactly the input logged next)
            if stop is StopReason.WAITING and pending:
                raise RemoteProtocolError(f"the backup waits at {machine.instret}, the log's next item is at "
                                          f"{pending[0].instret}: it diverged")
            return stop
