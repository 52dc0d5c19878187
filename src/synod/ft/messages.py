"""The messages of primary/backup replication (Scales, Nelson, Venkitachalam,
"The Design of a Practical System for Fault-Tolerant Virtual Machines",
SIGOPS OSR 2010, section 2).

Logging channel (2.1-2.2), primary -> backup: :class:`Log` carries log
entries, each a non-deterministic input with the retired-instruction count
at which the primary delivered it, and ``through_instret``: the primary has
executed that far and every input before it is in the log, so the backup
may execute up to there and never further. The backup answers each with a
:class:`LogAck` (what it has received and how far it has executed). When a
backup joins (2.3, "restoring redundancy"), the primary sends a
:class:`Snapshot` of the running machine first.

Shared storage (2.3), either replica -> the storage node: the atomic
:class:`TestAndSet` a replica must win before it goes live, and
:class:`WhoIsPrimary`, which a starting replica asks to find the pair.

The outside world (a console client): :class:`ConsoleIn` brings input
(numbered by the client, answered by :class:`InputAck` once the input is
logged on the backup, so the client sends again what a failover lost);
:class:`Attach` asks the live primary for the output from an index on,
and :class:`OutputAck` tells it what arrived;
:class:`Output` is one output event, numbered from 0 in the order the
machine produced it: a copy after a failover carries the same number and,
by the output rule, the same bytes.
"""

from __future__ import annotations

from synod.core.codec import Message
from synod.ft.machine import InputEvent, MachineSnapshot

__all__ = [
    "LogEntry", "Log", "LogAck", "JoinRequest", "Snapshot", "TestAndSet", "TasResult", "WhoIsPrimary", "PrimaryIs",
    "ConsoleIn", "InputAck", "Attach", "OutputAck", "Output", "NotPrimary", "GetStatus", "Status",
]


class LogEntry(Message, tag="ft.LogEntry"):
    """Input ``event`` delivered with ``instret`` instructions retired;
    ``seq`` numbers entries from 1 within a generation's log; ``input_seq``
    is the client's number of a console input (0 for other inputs)."""

    seq: int
    instret: int
    event: InputEvent
    input_seq: int = 0


class Log(Message, tag="ft.Log"):
    """Entries in seq order (may be empty: a heartbeat). The primary has
    executed ``through_instret`` instructions and logged every input before
    them; it has released outputs ``0 .. released_outputs - 1`` to the world."""

    generation: int
    pairing: int                # the snapshot's last_seq: which joining of a backup this log follows
    entries: tuple[LogEntry, ...]
    through_instret: int
    released_outputs: int
    client_acked: int = 0       # the console client has every output below this index
    exited: bool = False
    state_hash: bytes = b""     # the primary's, at through_instret after these entries (a sample of logs)
    waiting: bool = False       # ... taken while its program waited for input there


class LogAck(Message, tag="ft.LogAck"):
    """The backup holds every entry up to ``received_seq`` and the log
    through ``received_instret``; it has executed ``executed_instret``."""

    generation: int
    pairing: int
    received_seq: int
    received_instret: int
    executed_instret: int


class JoinRequest(Message, tag="ft.JoinRequest"):
    """A spare asks the live primary of ``generation`` to take it as backup."""

    generation: int


class OutputAck(Message, tag="ft.OutputAck"):
    """The client has every output below ``index`` (TCP's acknowledgement:
    the live replica may forget them; until it can, it holds at most
    OUTPUT_HISTORY_MAX and then waits)."""

    index: int


class Output(Message, tag="ft.Output"):
    """Output number ``index`` of the machine: console bytes (``kind``
    "console", ``fd``) or a network packet ("net")."""

    index: int
    kind: str
    data: bytes
    fd: int = 1


class Snapshot(Message, tag="ft.Snapshot"):
    """The primary's machine as it is after ``last_seq`` log entries (FT
    VMotion's role, 2.3): the backup starts from it, then follows the log
    of ``generation`` from entry ``last_seq + 1`` (entries are numbered on
    across joinings, so a late log of an earlier backup's is told apart). ``outputs`` the machine
    had produced, ``released_outputs`` of them released; ``last_input_seq``
    the last console input delivered."""

    generation: int
    machine: MachineSnapshot
    disk: bytes
    last_seq: int
    outputs: int
    released_outputs: int
    last_input_seq: int
    client_acked: int = 0            # the client has every output below this index ...
    unacked: tuple[Output, ...] = ()  # ... not these, released since
    held: tuple[Output, ...] = ()    # outputs produced and not yet released: the backup must be able to resend them


class TestAndSet(Message, tag="ft.TestAndSet"):
    """Go live after ``generation`` (2.3): succeeds for the first claimant
    only, which becomes the primary of ``generation + 1``."""

    __test__ = False   # (not a pytest class)
    generation: int


class TasResult(Message, tag="ft.TasResult"):
    """``won``: the caller is the primary of ``generation``; else ``holder`` is."""

    won: bool
    generation: int
    holder: str


class WhoIsPrimary(Message, tag="ft.WhoIsPrimary"):
    """Asked of the storage node by a replica at start and by clients."""


class PrimaryIs(Message, tag="ft.PrimaryIs"):
    """The storage's record: ``holder`` went live for ``generation`` ("" and
    -1: no replica has started the program yet)."""

    generation: int
    holder: str


class ConsoleIn(Message, tag="ft.ConsoleIn"):
    """Input number ``input_seq`` from the client (from 1, in order): console
    bytes (``eof`` ends them), or with ``net`` one packet for the machine's
    network device."""

    input_seq: int
    data: bytes
    eof: bool = False
    net: bool = False


class InputAck(Message, tag="ft.InputAck"):
    """Console inputs up to ``input_seq`` are delivered and logged on the backup."""

    input_seq: int


class Attach(Message, tag="ft.Attach"):
    """Send me outputs from ``from_index`` on (and every later one); I have
    every one below it (an :class:`OutputAck` too)."""

    from_index: int


class NotPrimary(Message, tag="ft.NotPrimary"):
    """The replica asked is not the live primary; ``holder``: who the storage named last."""

    holder: str


class GetStatus(Message, tag="ft.GetStatus"):
    """A replica's role and counters, for tests and ``synod ft status``."""


class Status(Message, tag="ft.Status"):
    role: str
    generation: int
    instret: int
    outputs: int
    released_outputs: int
    lag_instructions: int
    exited: bool
    exit_code: int | None
    state_hash: bytes
    log_bytes: int = 0          # bytes of Log messages sent to the backup (the logging channel's traffic)
    slowed_slices: int = 0      # slices not run: the backup lagged, or the client's window was full
    run_ms: float = -1.0        # from the program's first slice to its exit's release, this replica's clock
